/*
 * strbuf.h - the one growable byte buffer of faqbot.
 *
 * Invariants (as in git's strbuf): after strbuf_init, `buf` is never NULL
 * and is always NUL-terminated at buf[len]; `len` never exceeds `cap` when
 * a cap is set.  An append that would pass the cap fails with -1 and leaves
 * the buffer unchanged, so a 10 MB HTTP body or a pathological answer can
 * never grow memory without bound (curl's dynbuf "toobig").
 *
 * Ownership: the struct is embedded by its user; strbuf_release frees the
 * bytes, strbuf_detach hands them to the caller (free() them).
 */
#ifndef FAQBOT_STRBUF_H
#define FAQBOT_STRBUF_H

#include <stdarg.h>
#include <stddef.h>

struct strbuf {
	char *buf;
	size_t len;
	size_t alloc; /* bytes allocated, 0 while buf points to a static "" */
	size_t cap;   /* maximum len; 0 = unlimited */
};

#define STRBUF_INIT { (char *)strbuf_empty, 0, 0, 0 }
extern const char strbuf_empty[1];

void strbuf_init(struct strbuf *sb, size_t cap);
void strbuf_release(struct strbuf *sb);
void strbuf_reset(struct strbuf *sb);
char *strbuf_detach(struct strbuf *sb, size_t *len);

int strbuf_add(struct strbuf *sb, const void *data, size_t n);
int strbuf_addstr(struct strbuf *sb, const char *s);
int strbuf_addch(struct strbuf *sb, char c);
int strbuf_addf(struct strbuf *sb, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
int strbuf_vaddf(struct strbuf *sb, const char *fmt, va_list ap)
	__attribute__((format(printf, 2, 0)));
/* Shortens to n bytes (n <= len). */
void strbuf_truncate(struct strbuf *sb, size_t n);

/* Appends s with & < > (and " when attr) as HTML entities. */
int strbuf_add_html_escaped(struct strbuf *sb, const char *s, size_t n, int attr);

/* Appends s with JSON string escaping (no surrounding quotes). */
int strbuf_add_json_escaped(struct strbuf *sb, const char *s, size_t n);

/* Appends s percent-encoded for one URL path segment: every byte but
 * RFC 3986's unreserved characters (A-Z a-z 0-9 - _ . ~) as %XX. */
int strbuf_add_path_escaped(struct strbuf *sb, const char *s);

#endif
