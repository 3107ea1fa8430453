/*
 * log.c - logfmt (or JSON) lines on stderr, secrets scrubbed.  See log.h.
 */
#define _POSIX_C_SOURCE 200809L
#include "log.h"
#include "strbuf.h"
#include "util.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#define MAX_SECRETS 16

static enum log_level min_level = LOG_INFO;
static int as_json;
static char *secrets[MAX_SECRETS];
static size_t n_secrets;

void log_set_level(enum log_level level)
{
	min_level = level;
}

void log_set_json(int json)
{
	as_json = json;
}

int log_level_parse(const char *s)
{
	static const char *const names[] = { "debug", "info", "warn", "error" };
	for (int i = 0; i < 4; i++)
		if (!strcmp(s, names[i]))
			return i;
	return -1;
}

void log_add_secret(const char *s)
{
	if (!s || strlen(s) < 4 || n_secrets == MAX_SECRETS)
		return;
	for (size_t i = 0; i < n_secrets; i++)
		if (!strcmp(secrets[i], s))
			return;
	secrets[n_secrets++] = xstrdup(s);
}

void log_clear_secrets(void)
{
	for (size_t i = 0; i < n_secrets; i++)
		free(secrets[i]);
	n_secrets = 0;
}

const char *log_q(const char *s)
{
	static char ring[8][640];
	static int next;
	char *out = ring[next++ % 8];
	size_t k = 0;
	int quote = !*s;
	for (const char *p = s; *p; p++)
		if (*p == ' ' || *p == '"' || *p == '=' || *p == '\\' || (unsigned char)*p < 0x20)
			quote = 1;
	if (!quote) {
		snprintf(out, 640, "%.300s", s);
		return out;
	}
	out[k++] = '"';
	for (const char *p = s; *p && k < 620 && p - s < 300; p++) {
		unsigned char c = (unsigned char)*p;
		if (c == '"' || c == '\\') {
			out[k++] = '\\';
			out[k++] = (char)c;
		} else if (c == '\n') {
			out[k++] = '\\';
			out[k++] = 'n';
		} else if (c < 0x20) {
			out[k++] = ' ';
		} else {
			out[k++] = (char)c;
		}
	}
	out[k++] = '"';
	out[k] = '\0';
	return out;
}

static void scrub(struct strbuf *line)
{
	for (size_t i = 0; i < n_secrets; i++) {
		size_t sl = strlen(secrets[i]);
		char *p;
		while ((p = strstr(line->buf, secrets[i]))) {
			struct strbuf o = STRBUF_INIT;
			strbuf_add(&o, line->buf, (size_t)(p - line->buf));
			strbuf_addstr(&o, "<redacted>");
			strbuf_addstr(&o, p + sl);
			strbuf_release(line);
			*line = o;
		}
	}
}

/* Re-emits a logfmt line as a JSON object. */
static void to_json(const char *s, struct strbuf *out)
{
	strbuf_addch(out, '{');
	int first = 1;
	while (*s) {
		while (*s == ' ')
			s++;
		const char *eq = strchr(s, '=');
		if (!eq)
			break;
		strbuf_addf(out, "%s\"", first ? "" : ",");
		strbuf_add_json_escaped(out, s, (size_t)(eq - s));
		strbuf_addstr(out, "\":\"");
		first = 0;
		s = eq + 1;
		if (*s == '"') {
			s++;
			while (*s && *s != '"') {
				if (*s == '\\' && s[1]) {
					/* cppcheck-suppress knownConditionTrueFalse ; s[1] is any escaped character */
					if (s[1] == 'n')
						strbuf_addstr(out, "\\n");
					else
						strbuf_add_json_escaped(out, s + 1, 1);
					s += 2;
				} else {
					strbuf_add_json_escaped(out, s++, 1);
				}
			}
			if (*s == '"')
				s++;
		} else {
			const char *e = strchr(s, ' ');
			size_t n = e ? (size_t)(e - s) : strlen(s);
			strbuf_add_json_escaped(out, s, n);
			s += n;
		}
		strbuf_addch(out, '"');
	}
	strbuf_addch(out, '}');
}

void log_event(enum log_level level, const char *event, const char *fmt, ...)
{
	static const char *const names[] = { "debug", "info", "warn", "error" };
	if (level < min_level)
		return;
	struct timeval tv;
	gettimeofday(&tv, NULL);
	struct tm tm;
	gmtime_r(&tv.tv_sec, &tm);
	struct strbuf line = STRBUF_INIT;
	strbuf_addf(&line, "ts=%04d-%02d-%02dT%02d:%02d:%02d.%03dZ level=%s event=%s",
		    tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
		    (int)(tv.tv_usec / 1000), names[level], event);
	if (fmt && *fmt) {
		va_list ap;
		va_start(ap, fmt);
		strbuf_addch(&line, ' ');
		strbuf_vaddf(&line, fmt, ap);
		va_end(ap);
	}
	scrub(&line);
	if (as_json) {
		struct strbuf j = STRBUF_INIT;
		to_json(line.buf, &j);
		fprintf(stderr, "%s\n", j.buf);
		strbuf_release(&j);
	} else {
		fprintf(stderr, "%s\n", line.buf);
	}
	strbuf_release(&line);
}
