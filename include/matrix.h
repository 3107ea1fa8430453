/*
 * matrix.h - the Matrix Client-Server API transport (/sync long polling).
 *
 * Start: the homeserver URL (or /.well-known discovery from a server
 * name), an access token (configured, stored from an earlier login, or from
 * m.login.password with the stored device_id, so restarts keep one device),
 * whoami (the bot's user id), a sync filter created once and stored.
 *
 * Loop: /sync since the stored next_batch; each batch (timeline events,
 * invites, leaves; a "limited" timeline first filled from /messages back to
 * the previous token) is stored in the inbox with the new next_batch in one
 * commit (gap events held are bounded: 32 MB).  An answer over the body
 * cap shrinks the next request: the /sync filter's timeline limit, or the
 * /messages page limit, halves down to one event, then gets a 16 MB cap.
 * A 429 holds every room's sends (homeservers limit the account).  The
 * first sync ever answers no history.  Replies are m.notice
 * events with a txnId derived from the question's event_id and the part
 * number, stored with the outbox row and reused on every retry and after
 * restarts, so the homeserver deduplicates them; the bot's own echo in
 * /sync (unsigned.transaction_id) marks a row sent even when the PUT's
 * answer was lost.  One request in flight per room, parts in order.
 *
 * Encryption (matrix_encryption, mx_e2ee.h): after the filter the device's
 * keys are loaded (or made) and uploaded once; each sync's to_device room
 * keys, device lists and m.room.encryption state are stored with the
 * batch; m.room.encrypted events are decrypted before the service sees
 * them (or wait for their key); a reply into an encrypted room is
 * encrypted when it is sent (after the room key went to every member's
 * devices), never sent in clear.  An invited room's hello waits for the
 * sync that shows the room joined, so its state is known.
 *
 * Protocol only: it runs on the transport skeleton (transport.h), which
 * owns start-up, polls, the pump and the sender; what happens around the
 * bot (flood, cooldown, metrics, the reply log) is the service's
 * (service.h).
 *
 * Ownership: mx_new returns a transport freed with transport_free; it
 * borrows bot, store and http, which must outlive it.
 */
#ifndef FAQBOT_MATRIX_H
#define FAQBOT_MATRIX_H

#include "bot.h"
#include "http.h"
#include "store.h"
#include "transport.h"

struct mx_options {
	const char *homeserver;     /* https://... or a server name */
	const char *token;          /* NULL: log in with user + password */
	const char *user, *password;
	char prefix;                /* command prefix, '!' */
	const char *invite_allow;   /* NULL/empty: accept every invite */
	int encrypted_notice;
	long sync_timeout_s;
	int record_unanswered;
	int log_questions;
	const char *admin_room;    /* told about invalid FAQ edits, or NULL */
	const char *allowed_rooms; /* comma-separated room ids or servers, NULL: all */
	long flood_max, flood_window_s, flood_pause_s;
	int encryption;            /* matrix_encryption: answer in encrypted rooms */
	const void *pickle_key;    /* key of the stored encryption state (copied) */
	size_t pickle_key_len;
};

struct config;
/* The transport_kinds row (transport.h): matrix_homeserver set; the
 * matrix_* settings checked; the transport made from them. */
int mx_configured(const struct config *c);
int mx_config_check(const struct config *c, struct strbuf *errors);
struct transport *mx_from_config(const struct config *c, struct bot *bot, struct store *store,
				 struct http *http);

struct transport *mx_new(const struct mx_options *o, struct bot *bot, struct store *store,
			 struct http *http);
/* For tests and fuzzing: handles body[0..len) as the answer to a /sync
 * request (HTTP 200), as if the transport were running as @faqbot:localhost. */
void mx_feed_sync(struct transport *t, const char *body, size_t len);

#endif
