/*
 * mx_e2ee.h - end-to-end encryption of the Matrix transport: the glue
 * between mx_crypto (libolm, no I/O), the store (the mx_* tables) and the
 * homeserver's key endpoints.  matrix.c calls it at four places:
 *
 *   start   mx_e2ee_load (the device's account, from the store or new) and
 *           mx_e2ee_upload (device keys, one-time keys, a fallback key);
 *   sync    before the batch's transaction, mx_e2ee_prepare queries the
 *           device lists of to-device Olm senders it does not know; then,
 *           inside the batch's transaction: mx_e2ee_room_event for every
 *           state and timeline event of a joined room (m.room.encryption
 *           marks the room encrypted, m.room.member changes who gets the
 *           room key), mx_e2ee_sync for to_device (Olm -> m.room_key /
 *           m.forwarded_room_key -> inbound Megolm sessions; events waiting
 *           for that key go back to the inbox) and device_lists; after the
 *           commit mx_e2ee_after_sync tops up one-time / fallback keys;
 *   inbox   mx_e2ee_decrypt turns an m.room.encrypted event into the plain
 *           event (same event_id, sender, origin_server_ts) before the
 *           service sees it, or keeps it waiting for its key (and requests
 *           the key once, as an outbox row);
 *   send    mx_e2ee_send: a reply to an encrypted room is Megolm-encrypted
 *           with the room's outbound session, shared first (joined_members,
 *           /keys/query, /keys/claim, /sendToDevice) with every device of
 *           every joined member that does not have it yet; mx_e2ee_mend
 *           sends the "olm_mend" rows mx_e2ee_sync queues (a new Olm
 *           session and an m.dummy for a device whose message failed).
 *
 * Persistence (see mx_crypto.h): pickles that a sync or an inbox row
 * changes are written in that step's transaction; the outbound session is
 * committed after each encryption, before its ciphertext leaves, so no
 * message index is ever used twice, and an interrupted send is encrypted
 * again under the same txnId (the homeserver keeps the first).
 *
 * Ownership: mx_e2ee_new returns a handle freed with mx_e2ee_free (which
 * frees the requests' contexts: free the http handle first).  The store is
 * borrowed.
 */
#ifndef FAQBOT_MX_E2EE_H
#define FAQBOT_MX_E2EE_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "http.h"
#include "sender.h"
#include "store.h"

/* How long an encrypted event waits for its key before it is given up
 * (recorded as lost; answered if the key comes before), and how long
 * before the room is told (once) that messages could not be decrypted: a
 * sender shares the key before its message, so a key that has not come
 * after 30 s is most likely lost (it was requested meanwhile). */
#define MX_KEY_WAIT_MS (10LL * 60 * 1000)
#define MX_KEY_NOTICE_MS (30LL * 1000)

struct mx_e2ee;

/* Starts a request to the homeserver (path from /_matrix/...); 0 or -1. */
typedef int (*mx_e2ee_request_fn)(void *arg, const char *method, const char *path, const char *body,
				  http_done_fn done, void *cb_arg);

/* enabled = 0: matrix_encryption is off; rooms are still tracked (so
 * nothing is ever sent in clear into an encrypted one) but nothing is
 * decrypted or encrypted.  key[0..keylen) is the pickle key (copied). */
struct mx_e2ee *mx_e2ee_new(struct store *st, const void *key, size_t keylen, int enabled,
			    mx_e2ee_request_fn request, void *arg);
void mx_e2ee_free(struct mx_e2ee *e);
/* 1 when encryption is on and the account is loaded. */
int mx_e2ee_ready(const struct mx_e2ee *e);
/* Wait before an undecryptable event is given up (tests shorten it). */
void mx_e2ee_set_key_wait(struct mx_e2ee *e, int64_t ms);

/* ==== Start ==== */

/* Loads the account of user_id / device_id from the store, or makes and
 * stores a new one (a different device than the stored one starts
 * afresh).  0; -1 with a sentence for the operator (a wrong pickle key). */
int mx_e2ee_load(struct mx_e2ee *e, const char *user_id, const char *device_id, char *err,
		 size_t errlen);
/* Before the encryption state is reset (store_mx_reset: a new device,
 * `faqbot matrix-reset`): every event still waiting for its key is
 * recorded as given up (ledger, log, faqbot_events_lost_total), inside
 * the caller's transaction.  How many, or -1. */
int mx_e2ee_give_up_waiting(struct store *st);
/* 1 when this device's keys were never uploaded. */
int mx_e2ee_needs_upload(struct mx_e2ee *e);
/* POST /keys/upload: device keys when never published, the one-time keys
 * the server lacks, a fallback key when asked (or on the first upload).
 * The account is stored before the request; done(arg, ok, status, error)
 * after its answer.  0 started, -1 not (a store error, or one in flight). */
int mx_e2ee_upload(struct mx_e2ee *e, int with_fallback,
		   void (*done)(void *arg, int ok, long status, const char *error), void *arg);

/* ==== Sync (inside the batch's transaction) ==== */

/* A state or timeline event of joined room: 1 when it made the room
 * encrypted just now, 0, -1 store error. */
int mx_e2ee_room_event(struct mx_e2ee *e, const char *room, const json_t *ev, const char *own_user);
/* Before the batch's transaction: when a to-device Olm message comes from
 * a user whose device list is unknown, outdated, changed in this batch or
 * without the sending device, POSTs /keys/query for those users (their
 * room keys are checked against it) and returns 0: ready(arg) is called
 * once it is answered or failed (a failed list counts as unknown).  1:
 * nothing to ask (or it could not start), go on now. */
int mx_e2ee_prepare(struct mx_e2ee *e, const json_t *batch, void (*ready)(void *arg), void *arg);
/* to_device events (a room key whose Olm payload names another ed25519
 * key than the sending device's is refused), device_lists, key counts of
 * the batch; -1 store error (bad events are logged, counted and skipped). */
int mx_e2ee_sync(struct mx_e2ee *e, const json_t *batch, int64_t now);
/* After the commit: uploads keys when the server runs short. */
void mx_e2ee_after_sync(struct mx_e2ee *e);
/* The bot left room. */
int mx_e2ee_room_left(struct mx_e2ee *e, const char *room);

/* ==== Inbox ==== */

/* 1 when room is encrypted, 0 not, -1 store error. */
int mx_e2ee_room_encrypted(struct mx_e2ee *e, const char *room);

#define MX_DECRYPTED 1
#define MX_WAITING 0          /* kept until its key comes (mx_waiting) */
#define MX_STORE_FAILED (-1)
#define MX_UNDECRYPTABLE (-2) /* bad ciphertext or a refused session: logged and counted */
#define MX_E2EE_OFF (-3)      /* encryption is off or not ready */
/* Decrypts the m.room.encrypted event ev of room (payload: its inbox
 * payload, kept while waiting).  MX_DECRYPTED: *out is the plain event (a
 * new reference).  Writes in the open transaction. */
int mx_e2ee_decrypt(struct mx_e2ee *e, const char *room, const json_t *ev, const char *payload,
		    json_t **out, int64_t now);

/* ==== Send ==== */

/* Sends x->row (an m.room.message content) encrypted into x->row.chat;
 * done(x, answer) once, with the PUT's answer or the first step that
 * failed (a malformed answer or a store error reads as a 5xx: retried).
 * 0 started, -1 not. */
int mx_e2ee_send(struct mx_e2ee *e, struct send_ctx *x, http_done_fn done);

/* Sends an outbox row of method "olm_mend" (queued by mx_e2ee_sync when an
 * Olm message could not be decrypted; body {"user", "curve"}): the device
 * whose curve25519 key is curve (/keys/query when unknown) gets a new Olm
 * session (/keys/claim, stored before anything leaves) and an m.dummy over
 * it (PUT /sendToDevice under the row's txnId), as the spec's "Recovering
 * from undecryptable messages" asks.  done(x, answer) once, as above; a
 * device the server does not list reads as a 404 (the row is dropped).
 * 0 started, -1 not. */
int mx_e2ee_mend(struct mx_e2ee *e, struct send_ctx *x, http_done_fn done);

#endif
