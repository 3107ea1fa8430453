/*
 * log.h - one greppable line per event on stderr.
 *
 *   ts=2026-11-29T17:20:00.123Z level=info event=answer transport=telegram chat=42 entry=cout confidence=0.91
 *
 * Callers give the event name and the rest as logfmt "key=value" pairs;
 * values that may contain spaces or quotes go through log_q(), which quotes
 * and escapes them.  With log_set_json(1) each line is re-emitted as one
 * JSON object with the same keys.
 *
 * Secrets registered with log_add_secret() are replaced by "<redacted>" in
 * every line, whatever path they took to get there (a URL with the
 * Telegram token in it, an error message quoting a request...).
 *
 * Not thread-safe (faqbot is single-threaded).  log_q returns a pointer
 * into a small ring of static buffers: valid for the next 8 calls.
 */
#ifndef FAQBOT_LOG_H
#define FAQBOT_LOG_H

enum log_level { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR };

void log_set_level(enum log_level level);
void log_set_json(int json);
/* Parses "debug", "info", "warn", "error"; returns -1 if unknown. */
int log_level_parse(const char *s);
/* Never print s (a token, a password); copies it. Strings under 4 bytes are ignored. */
void log_add_secret(const char *s);
void log_clear_secrets(void);

void log_event(enum log_level level, const char *event, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
#define log_debug(ev, ...) log_event(LOG_DEBUG, ev, __VA_ARGS__)
#define log_info(ev, ...) log_event(LOG_INFO, ev, __VA_ARGS__)
#define log_warn(ev, ...) log_event(LOG_WARN, ev, __VA_ARGS__)
#define log_error(ev, ...) log_event(LOG_ERROR, ev, __VA_ARGS__)

/* s quoted for logfmt ("a b" -> "\"a b\""), cut at 300 bytes. */
const char *log_q(const char *s);

#endif
