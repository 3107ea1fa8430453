/*
 * strbuf.c - growable, optionally capped byte buffer.  See strbuf.h for the
 * invariants.  Growth doubles, so appends are amortised O(1).
 */
#include "strbuf.h"
#include "util.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char strbuf_empty[1] = "";

void strbuf_init(struct strbuf *sb, size_t cap)
{
	sb->buf = (char *)strbuf_empty;
	sb->len = 0;
	sb->alloc = 0;
	sb->cap = cap;
}

void strbuf_release(struct strbuf *sb)
{
	if (sb->alloc)
		free(sb->buf);
	strbuf_init(sb, sb->cap);
}

void strbuf_reset(struct strbuf *sb)
{
	if (sb->alloc)
		sb->buf[0] = '\0';
	sb->len = 0;
}

char *strbuf_detach(struct strbuf *sb, size_t *len)
{
	char *p = sb->alloc ? sb->buf : xstrdup("");
	if (len)
		*len = sb->len;
	strbuf_init(sb, sb->cap);
	return p;
}

static int grow(struct strbuf *sb, size_t extra)
{
	if (extra > SIZE_MAX - sb->len - 1)
		return -1;
	size_t need = sb->len + extra;
	if (sb->cap && need > sb->cap)
		return -1;
	if (need + 1 <= sb->alloc)
		return 0;
	if (!sb->alloc) {
		size_t n = 0;
		char *p = NULL;
		xgrow(&p, &n, need + 1, 1);
		p[0] = '\0';
		sb->buf = p;
		sb->alloc = n;
		return 0;
	}
	xgrow(&sb->buf, &sb->alloc, need + 1, 1);
	return 0;
}

int strbuf_add(struct strbuf *sb, const void *data, size_t n)
{
	if (grow(sb, n) < 0)
		return -1;
	if (n)
		memcpy(sb->buf + sb->len, data, n);
	sb->len += n;
	sb->buf[sb->len] = '\0';
	return 0;
}

int strbuf_addstr(struct strbuf *sb, const char *s)
{
	return strbuf_add(sb, s, strlen(s));
}

int strbuf_addch(struct strbuf *sb, char c)
{
	return strbuf_add(sb, &c, 1);
}

int strbuf_vaddf(struct strbuf *sb, const char *fmt, va_list ap)
{
	va_list cp;
	va_copy(cp, ap);
	/* the analyzer loses va_start across strbuf_addf's call (a known false positive) */
	int n = vsnprintf(NULL, 0, fmt, cp); /* NOLINT(clang-analyzer-valist.Uninitialized) */
	va_end(cp);
	if (n < 0 || grow(sb, (size_t)n) < 0)
		return -1;
	vsnprintf(sb->buf + sb->len, (size_t)n + 1, fmt, ap);
	sb->len += (size_t)n;
	return 0;
}

int strbuf_addf(struct strbuf *sb, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int r = strbuf_vaddf(sb, fmt, ap);
	va_end(ap);
	return r;
}

void strbuf_truncate(struct strbuf *sb, size_t n)
{
	if (n >= sb->len)
		return;
	sb->len = n;
	sb->buf[n] = '\0';
}

int strbuf_add_html_escaped(struct strbuf *sb, const char *s, size_t n, int attr)
{
	for (size_t i = 0; i < n; i++) {
		int r;
		switch (s[i]) {
		case '&': r = strbuf_add(sb, "&amp;", 5); break;
		case '<': r = strbuf_add(sb, "&lt;", 4); break;
		case '>': r = strbuf_add(sb, "&gt;", 4); break;
		case '"': r = attr ? strbuf_add(sb, "&quot;", 6) : strbuf_addch(sb, '"'); break;
		default: r = strbuf_addch(sb, s[i]);
		}
		if (r < 0)
			return -1;
	}
	return 0;
}

int strbuf_add_json_escaped(struct strbuf *sb, const char *s, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		int r;
		switch (c) {
		case '"': r = strbuf_add(sb, "\\\"", 2); break;
		case '\\': r = strbuf_add(sb, "\\\\", 2); break;
		case '\n': r = strbuf_add(sb, "\\n", 2); break;
		case '\r': r = strbuf_add(sb, "\\r", 2); break;
		case '\t': r = strbuf_add(sb, "\\t", 2); break;
		default:
			if (c < 0x20) {
				char u[6] = { '\\', 'u', '0', '0', hex[c >> 4], hex[c & 15] };
				r = strbuf_add(sb, u, 6);
			} else {
				r = strbuf_addch(sb, (char)c);
			}
		}
		if (r < 0)
			return -1;
	}
	return 0;
}

int strbuf_add_path_escaped(struct strbuf *sb, const char *s)
{
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		int rc = isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~' ? strbuf_addch(sb, (char)c)
										  : strbuf_addf(sb, "%%%02X", c);
		if (rc < 0)
			return -1;
	}
	return 0;
}
