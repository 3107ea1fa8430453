/*
 * faq.h - the FAQ document: parse and validate the JSON editors write.
 *
 * faq_parse never stops at the first problem: it collects every error and
 * warning as a line a non-programmer can act on, in the style
 *     faq/faq.json:12:5: JSON syntax error: ...          (syntax, with line:col)
 *     faq/faq.json: entries[3] (id "x"): "answer" is empty (content)
 * and returns NULL when any error was found.  Unknown keys are warnings, so
 * a file written for a newer faqbot still loads (forward compatible).
 *
 * Ownership: a struct faq is plain, read-only data after parsing, owned by
 * the caller and freed with faq_free.  struct faq_diags is embedded by the
 * caller, filled by faq_parse and released with faq_diags_release.
 */
#ifndef FAQBOT_FAQ_H
#define FAQBOT_FAQ_H

#include <stddef.h>

#define FAQ_DEFAULT_THRESHOLD 0.35
#define FAQ_MAX_ID 48            /* keeps "a:<id>" inside Telegram's 64-byte callback_data */
#define FAQ_MAX_FILE (64u << 20) /* a larger file is refused, not read */

struct faq_entry {
	char *id;
	char **questions;
	size_t n_questions;
	char *answer;
	char **keywords;
	size_t n_keywords;
};

struct faq_synonyms {
	char **phrases; /* two or more; the first is the canonical form */
	size_t n;
};

struct faq_message {
	char *key, *text;
};

struct faq {
	char *source;          /* the file name used in messages */
	char *language;
	double threshold;      /* FAQ_DEFAULT_THRESHOLD when absent */
	char *fallback_text;
	char *fallback_url;
	char *fallback_label;  /* the link's label, or NULL for the bot's default */
	struct faq_synonyms *synonyms;
	size_t n_synonyms;
	struct faq_entry *entries;
	size_t n_entries;
	struct faq_message *messages; /* optional overrides of the bot's texts */
	size_t n_messages;
};

enum faq_level { FAQ_ERROR, FAQ_WARNING };

struct faq_diag {
	enum faq_level level;
	char *text; /* one complete line, without the trailing newline */
};

struct faq_diags {
	struct faq_diag *items;
	size_t n, alloc;
	size_t errors, warnings;
};

void faq_diags_init(struct faq_diags *d);
void faq_diags_release(struct faq_diags *d);
/* Adds a diagnostic (printf-style text). */
void faq_diags_add(struct faq_diags *d, enum faq_level level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Parses data[0..len) read from `source` (a name for messages).  Returns a
 * new FAQ, or NULL when d->errors > 0.  Pure: no I/O. */
struct faq *faq_parse(const char *data, size_t len, const char *source, struct faq_diags *d);
/* Reads `path` and parses it; read failures are diagnostics too. */
struct faq *faq_load_file(const char *path, struct faq_diags *d);
void faq_free(struct faq *f);

/* A deep copy of f (freed with faq_free). */
struct faq *faq_copy(const struct faq *f);
/* Appends a copy of question to e's phrasings. */
void faq_entry_add_question(struct faq_entry *e, const char *question);
/* Index of the entry with this id, or -1. */
long faq_find(const struct faq *f, const char *id);
/* The override for a bot message key, or NULL (borrowed). */
const char *faq_message(const struct faq *f, const char *key);

/* Message keys the FAQ may override (NULL-terminated, static). */
extern const char *const faq_message_keys[];

#endif
