/*
 * config.h - faqbot's settings, parsed once into a struct and validated.
 *
 * One table row per key (name, type, bounds, default, help): the parser,
 * the environment variables (FAQBOT_<KEY>), the *_file variants of secrets
 * (Docker secrets) and `faqbot config` all come from it.  Sources, later
 * ones winning: defaults, the file given with --config (key = value lines,
 * '#' comments), the environment.
 *
 * Errors name the key and where it came from ("config/faqbot.conf:12:
 * unknown key "telegarm_token"", "FAQBOT_TELEGRAM_COOLDOWN: "soon" is not a
 * whole number of seconds").
 *
 * Ownership: config_load fills a struct config owned by the caller and
 * released with config_release.
 */
#ifndef FAQBOT_CONFIG_H
#define FAQBOT_CONFIG_H

#include <stddef.h>

#include "log.h"
#include "strbuf.h"

/* The choices of the enum settings, in the order of their table row's
 * values ("logfmt|json"): parsed once, compared as enums. */
enum config_log_format { CONFIG_LOG_LOGFMT, CONFIG_LOG_JSON };
enum config_group_mode { CONFIG_GROUP_ADDRESSED, CONFIG_GROUP_ALL };
enum config_backlog { CONFIG_BACKLOG_ANSWER, CONFIG_BACKLOG_SKIP };

struct config {
	char *faq;
	char *state_dir;
	enum log_level log_level;           /* debug|info|warn|error, log.h's order */
	enum config_log_format log_format;
	double threshold;         /* -1: the FAQ's own */
	char *subscribe_url;      /* NULL: the FAQ's fallback url */
	char *ca_bundle;
	long unanswered_retention_days; /* 0: do not record */
	long feedback_retention_days;   /* votes and choices; 0: do not record */
	long learn_min_users;           /* live learning: distinct users; 0: off */
	int log_questions;
	long health_max_age;            /* seconds */
	char *metrics_address;          /* NULL: no metrics */
	char *admin_telegram_chat;      /* chat id that receives FAQ reload errors */
	char *admin_matrix_room;        /* room id that receives FAQ reload errors */
	long flood_max, flood_window, flood_pause;
	char *telegram_allowed_chats;   /* comma-separated chat ids; NULL: all */
	char *matrix_allowed_rooms;     /* comma-separated room ids or servers; NULL: all */

	char *telegram_token;
	char *telegram_api_url;
	enum config_group_mode telegram_group_mode;
	enum config_backlog telegram_backlog;
	long telegram_backlog_minutes;
	long telegram_cooldown;        /* seconds; 0 = off */
	int telegram_delete_webhook;
	long telegram_poll_timeout;    /* seconds */
	long telegram_send_timeout;    /* seconds */
	int telegram_rate_limits;
	long telegram_parallel_sends;  /* sends at once across chats */

	char *matrix_homeserver;       /* base URL, or a server name to discover */
	char *matrix_token;
	char *matrix_user;
	char *matrix_password;
	char *matrix_command_prefix;
	char *matrix_invite_allow;     /* comma-separated users (@a:hs) or servers (hs) */
	int matrix_encryption;         /* answer in encrypted rooms (libolm) */
	char *matrix_pickle_key;       /* NULL: <state_dir>/pickle.key */
	int matrix_encrypted_notice;
	long matrix_sync_timeout;      /* seconds */
};

/* Loads defaults, then file (NULL: none), then the environment.  Returns 0,
 * or -1 with one line per problem appended to errors. */
int config_load(struct config *c, const char *file, struct strbuf *errors);
void config_release(struct config *c);
/* Appends "key = value" lines, secrets masked. */
void config_print(const struct config *c, struct strbuf *out);
/* Settings that only make sense together, beyond each key's own type and
 * bounds (the transports check their own: transport.h): 0, or -1 with
 * one sentence a line appended to errors. */
int config_check(const struct config *c, struct strbuf *errors);
/* Calls fn with the value of every secret key that is set (log_add_secret). */
void config_each_secret(const struct config *c, void (*fn)(const char *secret));
/* Appends the list of keys with their help, for --help texts. */
void config_help(struct strbuf *out);

#endif
