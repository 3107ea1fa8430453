/*
 * markup.h - the small Markdown subset editors may use in answers, rendered
 * for each chat network, split into message-sized parts, and checked.
 *
 * The subset (README "Formatting answers" is the editor's version):
 *   **bold**, *italic* or _italic_, [text](https://url) (http/https only),
 *   "- " or "* " at the start of a line for a bullet, a newline for a line
 *   break and a blank line between paragraphs; a backslash before one of
 *   \ * _ [ ] ( ) shows that character as typed.
 * Markers follow CommonMark's flanking rules, simplified: a marker opens
 * when the next character is not a space, closes when the previous one is
 * not a space, and "_" never opens or closes inside a word (snake_case).
 * Runs of three or more markers, markers without a partner on the same
 * line, and link syntax that is not complete stay as typed, so text
 * written without markup ("3 * 4", "snake_case", "[sic]") never changes.
 * Formatting does not cross a line break.
 *
 * Ownership: every char * returned is new and freed by the caller with
 * free(); lists come with their own free function.  Pure: no I/O.
 */
#ifndef FAQBOT_MARKUP_H
#define FAQBOT_MARKUP_H

#include <stddef.h>

#include "strbuf.h"

enum markup_target {
	MARKUP_PLAIN,    /* text: links as "text (url)", bullets as "• " */
	MARKUP_TELEGRAM, /* Bot API parse_mode HTML: <b> <i> <a href>, "• " lines, \n */
	MARKUP_MATRIX    /* formatted_body: <strong> <em> <a href> <ul><li> <p> <br> */
};

/* Appends src[0..len) rendered for target. */
void markup_render(const char *src, size_t len, enum markup_target target, struct strbuf *out);
/* Appends text that is NOT markup (a built-in text, a question) escaped for
 * target: as is for PLAIN, HTML-escaped for TELEGRAM, escaped with <br>
 * for line breaks for MATRIX. */
void markup_add_text(struct strbuf *out, const char *s, size_t len, enum markup_target target);
/* Appends a link with a plain (non-markup) label: "label: url" in PLAIN
 * (sep is what goes between them, e.g. " : " in French), <a href> else. */
void markup_add_link(struct strbuf *out, const char *label, const char *url, const char *sep,
		     enum markup_target target);

/* NUL-terminated renderings of s (caller frees). */
char *markup_to_plain(const char *s);
char *markup_to_telegram_html(const char *s);
char *markup_to_matrix_html(const char *s);

/* ==== Checking (for faqbot check) ==== */

struct markup_problem {
	size_t line, column; /* 1-based; column counts characters, not bytes */
	char *text;          /* one sentence for an editor */
};

/* Lists the problems in src (unclosed markers, links that are not http(s),
 * broken link syntax).  Returns the count; *out is a new array (NULL when
 * none), freed with markup_problems_free. */
size_t markup_check(const char *src, size_t len, struct markup_problem **out);
void markup_problems_free(struct markup_problem *p, size_t n);

/* ==== Splitting rendered text into messages ==== */

enum markup_unit {
	MARKUP_BYTES,      /* bytes of the HTML as sent (Matrix event size) */
	MARKUP_UTF16,      /* UTF-16 code units of the HTML as sent, tags and entities included */
	MARKUP_UTF16_TEXT  /* UTF-16 code units after entity parsing, tags not counted:
			    * what Telegram counts against its 4096 limit */
};

/* Splits html[0..len) (as produced by markup_render, or any HTML with
 * properly nested tags) into parts of at most limit units each.  A cut
 * never falls inside a tag, an entity (&amp;) or a UTF-8 sequence; the tags
 * open at a cut are closed at the end of the part and reopened at the start
 * of the next (both counted).  Cuts prefer, in order, a paragraph break, a
 * line break or list item, a space, in the second half of a part; then any
 * space; then any character.  Whitespace and <br> at a cut are dropped.
 * Plain text (no '<' or '&') splits the same way.  A single tag longer than
 * limit goes whole into its part.  Returns a new array of *n new strings,
 * freed with markup_parts_free; "" gives one empty part. */
char **markup_split(const char *html, size_t len, size_t limit, enum markup_unit unit, size_t *n);
void markup_parts_free(char **parts, size_t n);

/* The plain text of a part of HTML produced here (tags dropped, <br> and
 * blocks as line breaks, list items as "• ", links as "text (url)",
 * entities decoded): the `body` that goes beside a formatted part.  New
 * string, caller frees. */
char *markup_html_to_plain(const char *html, size_t len);

#endif
