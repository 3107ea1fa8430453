/*
 * config.c - the settings table and its parser.  See config.h.
 */
#define _POSIX_C_SOURCE 200809L
#include "config.h"
#include "metrics.h"
#include "util.h"

#include <ctype.h>
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum kind { K_STR, K_SECRET, K_INT, K_BOOL, K_DOUBLE, K_ENUM, K_URL };

struct key {
	const char *name;
	enum kind kind;
	size_t off;
	const char *def;    /* default, as text; NULL = unset */
	long min, max;      /* K_INT bounds */
	const char *values; /* K_ENUM: "a|b" */
	const char *help;
};

#define F(x) offsetof(struct config, x)

static const struct key keys[] = {
	{ "faq", K_STR, F(faq), "faq/faq.json", 0, 0, NULL, "the FAQ file" },
	{ "state_dir", K_STR, F(state_dir), "state", 0, 0, NULL,
	  "directory of the durable state (SQLite database, lock)" },
	{ "log_level", K_ENUM, F(log_level), "info", 0, 0, "debug|info|warn|error", "least level logged" },
	{ "log_format", K_ENUM, F(log_format), "logfmt", 0, 0, "logfmt|json", "log line format" },
	{ "threshold", K_DOUBLE, F(threshold), NULL, 0, 0, NULL,
	  "confidence below which the fallback is given (default: the FAQ's)" },
	{ "subscribe_url", K_URL, F(subscribe_url), NULL, 0, 0, NULL,
	  "subscription link (default: the FAQ's fallback url)" },
	{ "log_questions", K_BOOL, F(log_questions), "false", 0, 0, NULL,
	  "write the text of each question in the log (off: privacy)" },
	{ "unanswered_retention_days", K_INT, F(unanswered_retention_days), "30", 0, 3650, NULL,
	  "days unanswered questions are kept for 'faqbot report' (0: not recorded)" },
	{ "feedback_retention_days", K_INT, F(feedback_retention_days), "90", 0, 3650, NULL,
	  "days votes on answers and users' choices are kept for 'faqbot report' (0: not recorded)" },
	{ "learn_min_users", K_INT, F(learn_min_users), "0", 0, 1000, NULL,
	  "live learning: a question chosen for the same entry by this many different users "
	  "answers it directly until the editor decides (0: off; at least 2)" },
	{ "health_max_age", K_INT, F(health_max_age), "120", 5, 86400, NULL,
	  "'faqbot health' fails when a transport's last successful poll is older (seconds)" },
	{ "metrics_address", K_STR, F(metrics_address), NULL, 0, 0, NULL,
	  "serve Prometheus metrics on this loopback address (127.0.0.1:9464); empty: off" },
	{ "admin_telegram_chat", K_STR, F(admin_telegram_chat), NULL, 0, 0, NULL,
	  "Telegram chat id that is told when an FAQ edit is invalid" },
	{ "admin_matrix_room", K_STR, F(admin_matrix_room), NULL, 0, 0, NULL,
	  "Matrix room id that is told when an FAQ edit is invalid" },
	{ "flood_max", K_INT, F(flood_max), "10", 0, 10000, NULL,
	  "questions one user may ask in flood_window seconds in one chat (0: no limit)" },
	{ "flood_window", K_INT, F(flood_window), "30", 1, 86400, NULL,
	  "seconds of the flood limit's window" },
	{ "flood_pause", K_INT, F(flood_pause), "300", 1, 86400, NULL,
	  "seconds a flooding user is ignored, after one notice" },
	{ "telegram_allowed_chats", K_STR, F(telegram_allowed_chats), NULL, 0, 0, NULL,
	  "answer only in these Telegram chat ids (comma-separated); empty: every chat" },
	{ "matrix_allowed_rooms", K_STR, F(matrix_allowed_rooms), NULL, 0, 0, NULL,
	  "answer only in these Matrix rooms or rooms of these servers (comma-separated); empty: all" },
	{ "ca_bundle", K_STR, F(ca_bundle), NULL, 0, 0, NULL,
	  "CA certificates file trusted in addition to the system's (a private homeserver's CA)" },
	{ "telegram_token", K_SECRET, F(telegram_token), NULL, 0, 0, NULL,
	  "Telegram bot token from BotFather (or telegram_token_file)" },
	{ "telegram_api_url", K_URL, F(telegram_api_url), "https://api.telegram.org", 0, 0, NULL,
	  "Bot API root; requests go to <root>/bot<token>/<method>" },
	{ "telegram_group_mode", K_ENUM, F(telegram_group_mode), "addressed", 0, 0, "addressed|all",
	  "in groups, answer only when addressed, or every message" },
	{ "telegram_backlog", K_ENUM, F(telegram_backlog), "answer", 0, 0, "answer|skip",
	  "questions older than telegram_backlog_minutes at start: answer or skip" },
	{ "telegram_backlog_minutes", K_INT, F(telegram_backlog_minutes), "60", 0, 100000, NULL,
	  "age in minutes from which a question counts as backlog" },
	{ "telegram_cooldown", K_INT, F(telegram_cooldown), "300", 0, 86400, NULL,
	  "seconds during which the same entry asked again in a group gets a pointer, not a repost" },
	{ "telegram_delete_webhook", K_BOOL, F(telegram_delete_webhook), "false", 0, 0, NULL,
	  "delete a webhook set on the bot (pending updates are kept) instead of stopping" },
	{ "telegram_poll_timeout", K_INT, F(telegram_poll_timeout), "30", 0, 50, NULL,
	  "long-poll timeout of getUpdates, seconds" },
	{ "telegram_send_timeout", K_INT, F(telegram_send_timeout), "30", 1, 300, NULL,
	  "seconds a send may take before its outcome counts as unknown (it is then sent again)" },
	{ "telegram_rate_limits", K_BOOL, F(telegram_rate_limits), "true", 0, 0, NULL,
	  "respect Telegram's published send limits (turn off only against a test server)" },
	{ "telegram_parallel_sends", K_INT, F(telegram_parallel_sends), "6", 1, 16, NULL,
	  "replies sent at once to different chats (one at a time per chat); a crash may "
	  "duplicate at most this many replies (1: one at a time)" },
	{ "matrix_homeserver", K_STR, F(matrix_homeserver), NULL, 0, 0, NULL,
	  "Matrix homeserver: base URL (https://matrix.example.org) or server name to discover" },
	{ "matrix_token", K_SECRET, F(matrix_token), NULL, 0, 0, NULL,
	  "Matrix access token of the bot account (or matrix_user + matrix_password)" },
	{ "matrix_user", K_STR, F(matrix_user), NULL, 0, 0, NULL,
	  "Matrix user to log in as (@bot:example.org or bot)" },
	{ "matrix_password", K_SECRET, F(matrix_password), NULL, 0, 0, NULL,
	  "password of matrix_user (or matrix_password_file)" },
	{ "matrix_command_prefix", K_STR, F(matrix_command_prefix), "!", 0, 0, NULL,
	  "prefix of commands in Matrix rooms (one character)" },
	{ "matrix_invite_allow", K_STR, F(matrix_invite_allow), NULL, 0, 0, NULL,
	  "join rooms only when invited by these users or servers (comma-separated); empty: any" },
	{ "matrix_encryption", K_BOOL, F(matrix_encryption), "true", 0, 0, NULL,
	  "answer in end-to-end encrypted rooms (off: encrypted rooms are left silent, and logged)" },
	{ "matrix_pickle_key", K_SECRET, F(matrix_pickle_key), NULL, 0, 0, NULL,
	  "key that encrypts the Matrix encryption keys in the state database (or "
	  "matrix_pickle_key_file); empty: a random key in <state_dir>/pickle.key" },
	{ "matrix_encrypted_notice", K_BOOL, F(matrix_encrypted_notice), "true", 0, 0, NULL,
	  "post one (encrypted) notice in a room where messages could not be decrypted" },
	{ "matrix_sync_timeout", K_INT, F(matrix_sync_timeout), "30", 0, 120, NULL,
	  "long-poll timeout of /sync, seconds" },
};

static void *field(struct config *c, const struct key *k)
{
	return (char *)c + k->off;
}

static const struct key *find_key(const char *name)
{
	for (size_t i = 0; i < ARRAY_LEN(keys); i++)
		if (!strcmp(keys[i].name, name))
			return &keys[i];
	return NULL;
}

static int parse_bool(const char *v, int *out)
{
	static const char *const yes[] = { "true", "yes", "on", "1" }, *const no[] = { "false", "no", "off", "0" };
	for (size_t i = 0; i < 4; i++) {
		if (!strcmp(v, yes[i])) {
			*out = 1;
			return 0;
		}
		if (!strcmp(v, no[i])) {
			*out = 0;
			return 0;
		}
	}
	return -1;
}

/* Sets one key from text; returns NULL or a sentence about the value. */
static const char *set_value(struct config *c, const struct key *k, const char *v, char *why,
			     size_t whylen)
{
	void *p = field(c, k);
	switch (k->kind) {
	case K_STR:
	case K_SECRET:
		free(*(char **)p);
		*(char **)p = *v ? xstrdup(v) : NULL;
		return NULL;
	case K_URL:
		if (*v && strncmp(v, "https://", 8) && strncmp(v, "http://", 7)) {
			snprintf(why, whylen, "\"%s\" is not a web address (https://...)", v);
			return why;
		}
		free(*(char **)p);
		*(char **)p = *v ? xstrdup(v) : NULL;
		return NULL;
	case K_INT: {
		char *end;
		errno = 0;
		long n = strtol(v, &end, 10);
		if (!*v || *end || errno || n < k->min || n > k->max) {
			snprintf(why, whylen, "\"%s\" is not a whole number from %ld to %ld", v, k->min, k->max);
			return why;
		}
		*(long *)p = n;
		return NULL;
	}
	case K_DOUBLE: {
		char *end;
		double d = strtod(v, &end);
		if (!*v || *end || d < 0 || d > 1) {
			snprintf(why, whylen, "\"%s\" is not a number from 0 to 1", v);
			return why;
		}
		*(double *)p = d;
		return NULL;
	}
	case K_BOOL:
		if (parse_bool(v, (int *)p) < 0) {
			snprintf(why, whylen, "\"%s\" is not true or false", v);
			return why;
		}
		return NULL;
	case K_ENUM: {
		size_t n = strlen(v);
		int idx = 0;
		for (const char *a = k->values; *a; idx++) {
			size_t m = strcspn(a, "|");
			if (m == n && !strncmp(a, v, n)) {
				*(int *)p = idx; /* the enum's value: the values are in its order */
				return NULL;
			}
			a += m + (a[m] == '|');
		}
		snprintf(why, whylen, "\"%s\" is not one of %s", v, k->values);
		return why;
	}
	}
	return NULL;
}

static void defaults(struct config *c)
{
	memset(c, 0, sizeof(*c));
	c->threshold = -1;
	char why[256];
	for (size_t i = 0; i < ARRAY_LEN(keys); i++)
		if (keys[i].def)
			set_value(c, &keys[i], keys[i].def, why, sizeof(why));
}

/* Reads a secret from a file (Docker secrets): first line, trimmed. */
static int read_secret(const char *path, char **out, char *why, size_t whylen)
{
	FILE *f = fopen(path, "r");
	if (!f) {
		snprintf(why, whylen, "cannot read %s: %s", path, strerror(errno));
		return -1;
	}
	char buf[4096];
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	(void)fclose(f); /* read only: what was read is all that counts */
	buf[n] = '\0';
	buf[strcspn(buf, "\r\n")] = '\0';
	char *s = buf;
	while (isspace((unsigned char)*s))
		s++;
	size_t l = strlen(s);
	while (l && isspace((unsigned char)s[l - 1]))
		s[--l] = '\0';
	if (!l) {
		snprintf(why, whylen, "%s is empty", path);
		return -1;
	}
	free(*out);
	*out = xstrdup(s);
	return 0;
}

/* name may be "key" or "key_file" for a secret. */
static void apply(struct config *c, const char *name, const char *value, const char *where,
		  struct strbuf *errors)
{
	char why[512];
	const struct key *k = find_key(name);
	size_t nl = strlen(name);
	if (!k && nl > 5 && !strcmp(name + nl - 5, "_file")) {
		char base[128];
		snprintf(base, sizeof(base), "%.*s", (int)(nl - 5), name);
		k = find_key(base);
		if (k && k->kind == K_SECRET) {
			if (read_secret(value, (char **)field(c, k), why, sizeof(why)) < 0)
				strbuf_addf(errors, "%s: %s: %s\n", where, name, why);
			return;
		}
		k = NULL;
	}
	if (!k) {
		strbuf_addf(errors, "%s: unknown key \"%s\" (check its spelling; 'faqbot run --help' lists the keys)\n",
			    where, name);
		return;
	}
	if (set_value(c, k, value, why, sizeof(why)))
		strbuf_addf(errors, "%s: %s: %s\n", where, name, why);
}

static void load_file(struct config *c, const char *file, struct strbuf *errors)
{
	FILE *f = fopen(file, "r");
	if (!f) {
		strbuf_addf(errors, "%s: cannot open the configuration file: %s\n", file, strerror(errno));
		return;
	}
	char *line = NULL;
	size_t cap = 0;
	int lineno = 0;
	while (getline(&line, &cap, f) >= 0) {
		lineno++;
		char *s = line;
		s[strcspn(s, "\r\n")] = '\0';
		while (isspace((unsigned char)*s))
			s++;
		if (!*s || *s == '#')
			continue;
		char where[4200];
		snprintf(where, sizeof(where), "%s:%d", file, lineno);
		char *eq = strchr(s, '=');
		if (!eq) {
			/* the line is not echoed: it may be a secret pasted on its own */
			strbuf_addf(errors, "%s: expected \"key = value\" (this line has no \"=\"; its "
				    "content is not shown, it may be a secret)\n", where);
			continue;
		}
		char *ke = eq;
		while (ke > s && isspace((unsigned char)ke[-1]))
			ke--;
		*ke = '\0';
		char *v = eq + 1;
		while (isspace((unsigned char)*v))
			v++;
		size_t vl = strlen(v);
		while (vl && isspace((unsigned char)v[vl - 1]))
			v[--vl] = '\0';
		if (vl >= 2 && ((v[0] == '"' && v[vl - 1] == '"') || (v[0] == '\'' && v[vl - 1] == '\''))) {
			v[vl - 1] = '\0';
			v++;
		}
		apply(c, s, v, where, errors);
	}
	free(line);
	(void)fclose(f); /* read only */
}

/* "telegram_token" -> "FAQBOT_TELEGRAM_TOKEN" */
static void env_name(const char *key, char *out, size_t n)
{
	snprintf(out, n, "FAQBOT_%s", key);
	for (char *p = out; *p; p++)
		*p = (char)toupper((unsigned char)*p);
}

static void load_env(struct config *c, struct strbuf *errors)
{
	for (size_t i = 0; i < ARRAY_LEN(keys); i++) {
		for (int file = 0; file < 2; file++) {
			if (file && keys[i].kind != K_SECRET)
				continue;
			char name[128], env[160];
			snprintf(name, sizeof(name), "%s%s", keys[i].name, file ? "_file" : "");
			env_name(name, env, sizeof(env));
			const char *v = getenv(env);
			if (v && *v)
				apply(c, name, v, env, errors);
		}
	}
}

int config_load(struct config *c, const char *file, struct strbuf *errors)
{
	size_t before = errors->len;
	defaults(c);
	if (file)
		load_file(c, file, errors);
	load_env(c, errors);
	if (c->learn_min_users == 1)
		strbuf_addstr(errors, "learn_min_users: 1 would let one user teach the bot alone; set 0 "
			      "(off) or at least 2\n");
	return errors->len > before ? -1 : 0;
}

void config_release(struct config *c)
{
	for (size_t i = 0; i < ARRAY_LEN(keys); i++)
		if (keys[i].kind == K_STR || keys[i].kind == K_SECRET || keys[i].kind == K_URL)
			free(*(char **)field(c, &keys[i]));
	memset(c, 0, sizeof(*c));
}

void config_print(const struct config *c, struct strbuf *out)
{
	struct config *cc = (struct config *)c;
	for (size_t i = 0; i < ARRAY_LEN(keys); i++) {
		const struct key *k = &keys[i];
		void *p = field(cc, k);
		strbuf_addf(out, "%s = ", k->name);
		switch (k->kind) {
		case K_SECRET:
			strbuf_addstr(out, *(char **)p ? "********" : "");
			break;
		case K_STR: case K_URL:
			strbuf_addstr(out, *(char **)p ? *(char **)p : "");
			break;
		case K_ENUM: {
			const char *a = k->values;
			for (int n = *(int *)p; n > 0 && *a; n--)
				a += strcspn(a, "|") + (a[strcspn(a, "|")] == '|');
			strbuf_add(out, a, strcspn(a, "|"));
			break;
		}
		case K_INT:
			strbuf_addf(out, "%ld", *(long *)p);
			break;
		case K_BOOL:
			strbuf_addstr(out, *(int *)p ? "true" : "false");
			break;
		case K_DOUBLE:
			if (*(double *)p >= 0)
				strbuf_addf(out, "%g", *(double *)p);
			break;
		}
		strbuf_addch(out, '\n');
	}
}

void config_help(struct strbuf *out)
{
	for (size_t i = 0; i < ARRAY_LEN(keys); i++) {
		char env[160];
		env_name(keys[i].name, env, sizeof(env));
		strbuf_addf(out, "  %-26s %s%s%s%s\n", keys[i].name, keys[i].help,
			    keys[i].def ? " [" : "", keys[i].def ? keys[i].def : "", keys[i].def ? "]" : "");
		strbuf_addf(out, "  %-26s   env %s%s\n", "", env, keys[i].kind == K_SECRET ? ", or *_FILE" : "");
	}
}

int config_check(const struct config *c, struct strbuf *errors)
{
	if (!c->metrics_address || !*c->metrics_address)
		return 0;
	char why[256];
	struct sockaddr_storage sa;
	socklen_t salen;
	if (metrics_address_parse(c->metrics_address, &sa, &salen, why, sizeof(why)) < 0) {
		strbuf_addf(errors, "metrics_address: %s\n", why);
		return -1;
	}
	return 0;
}

void config_each_secret(const struct config *c, void (*fn)(const char *secret))
{
	for (size_t i = 0; i < ARRAY_LEN(keys); i++) {
		const char *v = keys[i].kind == K_SECRET ? *(char *const *)((const char *)c + keys[i].off) : NULL;
		if (v && *v)
			fn(v);
	}
}
