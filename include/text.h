/*
 * text.h - turns UTF-8 text into the folded, stemmed terms the matcher
 * compares.  Pure: no I/O (the stopword lists are data files under
 * faq/stopwords/ compiled into the binary by the Makefile).
 *
 * Pipeline, per input string:
 *   1. invalid UTF-8 bytes are treated as separators (never reach output);
 *   2. each code point is case-folded and compatibility-normalised with
 *      utf8proc, and accents are stripped from Latin, Greek and Cyrillic
 *      letters, so "NUMÉRIQUE", "numérique" and "numerique" fold alike;
 *      ligatures such as œ become "oe";
 *   3. tokens are runs of letters, digits and marks; hyphens, apostrophes
 *      (' and ’) and punctuation split them; a dot or comma between digits
 *      stays, so versions and decimals ("2.0", "0,1" -> "0.1") are one token;
 *   4. chat spellings (faq/chat/<language>.txt, compiled in: "mdp", "rdv",
 *      "pls") are read as the words they stand for; an ordinal is its
 *      number ("16e", "1er", "21st" -> "16", "1", "21"); an elision typed
 *      without apostrophe ("jarrive", "lassurance") loses its letter when
 *      the whole is not a word of the lexicon and the rest is; stopwords of
 *      the language are dropped; French elisions (l' d' qu' jusqu' ...) are
 *      stopwords, so "l'habitat" gives "habitat";
 *   5. words are stemmed: a word the language's lexicon knows (a table
 *      compiled from hunspell's dictionary, tools/gen_lexicon.py) becomes
 *      its lemma, which Snowball stems with its accents, then the stem is
 *      folded ("financée", "financee" -> "financer" -> "financ"; "sert" ->
 *      "servir" -> "serv"; "composteur" -> "compost"); any other word is
 *      stemmed by Snowball as folded.  Without a lexicon, Snowball alone.
 *
 * Lexicon and thesaurus tables are bytes the caller maps (lexfile.c) and
 * registers once per language with text_register before creating
 * analyzers; they must stay mapped as long as any analyzer lives.  The
 * module itself reads no file.
 *
 * Ownership: text_new returns an analyzer freed with text_free.  It holds a
 * libstemmer object and scratch space, so one analyzer must not be used by
 * two threads at once (faqbot is single-threaded).
 */
#ifndef FAQBOT_TEXT_H
#define FAQBOT_TEXT_H

#include <stddef.h>
#include <stdint.h>

#include "strbuf.h"

/* Longest token kept, in bytes of folded UTF-8; longer runs are dropped. */
#define TEXT_MAX_TOKEN 64

/* A list of terms: for each, the stem and the folded unstemmed word.  The
 * strings live in `arena`; pointers from termlist_stem/_word are borrowed
 * until the next append, clear or release. */
struct termlist {
	struct strbuf arena;
	uint32_t *stem_off;
	uint32_t *word_off;
	size_t n, alloc;
};

void termlist_init(struct termlist *tl);
void termlist_release(struct termlist *tl);
void termlist_clear(struct termlist *tl);
const char *termlist_stem(const struct termlist *tl, size_t i);
const char *termlist_word(const struct termlist *tl, size_t i);

struct text;

enum text_data { TEXT_LEXICON, TEXT_THESAURUS };

/* Registers a compiled table for a language (borrowed: data must outlive
 * every analyzer created afterwards).  Returns -1 when the data is not a
 * valid table of that kind, or too many are registered. */
int text_register(const char *language, enum text_data kind, const void *data, size_t len);
/* Forgets every registered table (for tests; analyzers already created
 * keep pointers into the data). */
void text_unregister_all(void);
/* An identity of the tables registered for a language (which are there,
 * their sizes, and bytes sampled across them): it changes when a table is
 * rebuilt from other data, so an index cached with other tables is not
 * trusted (index_key).  Touches a few pages of each table. */
uint64_t text_tables_id(const char *language);
/* 1 when the analyzer has a lexicon. */
int text_has_lexicon(const struct text *t);
/* 1 when the folded word is a word of the lexicon (0 without one). */
int text_known_word(const struct text *t, const char *folded);
/* The thesaurus neighbours of a folded word (or of its lemma), closest
 * first, separated by tabs; NULL when none (borrowed from the mapping). */
const char *text_neighbours(const struct text *t, const char *folded);

/* Creates an analyzer for a libstemmer algorithm name ("french",
 * "english", "fr", ...).  Returns NULL for an unknown language. */
struct text *text_new(const char *language);
void text_free(struct text *t);
/* 1 when a stopword list ships for this analyzer's language. */
int text_has_stopwords(const struct text *t);
/* The canonical list of languages, NULL-terminated (borrowed, static). */
const char **text_languages(void);

/* Appends the terms of s[0..len) to out, at most max_terms of them (0 = no
 * limit).  Returns the number appended.  Never fails on bad input. */
size_t text_analyze(struct text *t, const char *s, size_t len,
		    struct termlist *out, size_t max_terms);

/* Folds s (case, accents, compatibility forms) without tokenising or
 * stemming, appending to out; invalid UTF-8 bytes become U+FFFD. */
void text_fold(const char *s, size_t len, struct strbuf *out);

/* 1 when s[0..len) is valid UTF-8 (no overlongs, surrogates or NULs). */
int text_utf8_valid(const char *s, size_t len);
/* Appends s to out with every invalid UTF-8 sequence replaced by U+FFFD. */
void text_utf8_sanitize(const char *s, size_t len, struct strbuf *out);
/* Length of s in UTF-16 code units (Telegram's unit for text limits). */
size_t text_utf16_len(const char *s, size_t len);

/* Length in bytes of the first chunk of s[0..len) holding at most max
 * units (UTF-16 code units when utf16, else bytes), cut after a paragraph
 * break if one fits, else a line break, a sentence end, a space, and only
 * then inside a word (never inside a UTF-8 sequence).  Returns len when it
 * all fits. */
size_t text_split_point(const char *s, size_t len, size_t max, int utf16);

/* 1 when an analysed term is a word, 0 when it is a number ("2.0"). */
int text_is_word(const char *term);

/* Damerau (optimal string alignment) edit distance between two byte
 * strings, giving up and returning max+1 once it exceeds max. */
int text_edit_distance(const char *a, size_t alen, const char *b, size_t blen, int max);

#endif
