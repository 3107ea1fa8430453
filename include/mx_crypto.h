/*
 * mx_crypto.h - Matrix end-to-end encryption over libolm: the device's Olm
 * account, Olm sessions (to-device messages), inbound Megolm sessions (room
 * messages from others) and one outbound Megolm session per room (replies).
 *
 * The module does no network and no SQLite I/O.  It consumes and produces
 * jansson values shaped as the Client-Server API wants them, and pickles:
 * NUL-terminated strings the caller persists and hands back after a restart.
 * Every pickle holds the libolm state encrypted with the caller's pickle key
 * plus public metadata in clear (room and session ids, public keys).
 *
 * Ownership, for every function below:
 *   - handles (struct mx_account *, mx_olm_session *, mx_megolm_in *,
 *     mx_megolm_out *) are owned by the caller and released with their
 *     _free, which accepts NULL;
 *   - `char *` results are owned by the caller: free();
 *   - `json_t *` results are new references: json_decref();
 *   - `const char *` accessors are borrowed from the handle, valid until it
 *     is freed;
 *   - json_t and string arguments are borrowed, never stolen.
 * Errors: a function that can fail returns -1 or NULL and writes one sentence
 * into err (errlen bytes, may be NULL/0).  The sentence never holds a key, a
 * pickle, a plaintext or a ciphertext: it is safe to log.
 *
 * What the caller must persist, and when: see "changed" below.  libolm
 * advances a ratchet on every encrypt and decrypt, and an Olm pre-key
 * message consumes a one-time key of the account, so the new pickles must
 * be stored in the same transaction as the message's outcome.
 */
#ifndef FAQBOT_MX_CRYPTO_H
#define FAQBOT_MX_CRYPTO_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#define MX_ALG_OLM "m.olm.v1.curve25519-aes-sha2"
#define MX_ALG_MEGOLM "m.megolm.v1.aes-sha2"

/* The spec's defaults for m.room.encryption (one week, 100 messages). */
#define MX_ROTATION_MS_DEFAULT 604800000LL
#define MX_ROTATION_MSGS_DEFAULT 100

struct mx_account;
struct mx_olm_session;
struct mx_megolm_in;
struct mx_megolm_out;

/* "3.2.13": the libolm linked in (static string). */
const char *mx_crypto_olm_version(void);

/* ==== Canonical JSON and signatures ==== */

/* The Matrix canonical JSON of obj (keys sorted by code point, no spaces,
 * UTF-8 unescaped) without its top-level "signatures" and "unsigned": the
 * bytes a signature covers.  NULL (with err) if obj holds a float or an
 * integer outside +-(2^53 - 1), which canonical JSON forbids.  Caller frees. */
char *mx_canonical_json(const json_t *obj, char *err, size_t errlen);

/* Checks obj.signatures[user_id]["ed25519:" key_id] against ed25519_key
 * (unpadded base64) over the canonical JSON of obj.  0 valid, -1 not. */
int mx_verify_signature(const json_t *obj, const char *user_id, const char *key_id,
			const char *ed25519_key, char *err, size_t errlen);

/* Checks one device of a /keys/query answer (device_keys[user][device]):
 * user_id and device_id match the map keys it came from, both algorithms
 * are listed, and it is signed by its own ed25519 key.  On success *curve
 * and *ed point into obj (borrowed, valid while obj lives). */
int mx_device_keys_check(const json_t *obj, const char *user_id, const char *device_id,
			 const char **curve, const char **ed, char *err, size_t errlen);

/* ==== Account: the device's identity ==== */

/* A new account (fresh identity keys) for user_id / device_id. */
struct mx_account *mx_account_new(const char *user_id, const char *device_id, char *err,
				  size_t errlen);
/* The pickle of the account, encrypted with key[0..keylen). */
char *mx_account_pickle(struct mx_account *a, const void *key, size_t keylen, char *err,
			size_t errlen);
/* Back from a pickle; NULL with "wrong pickle key" when key differs. */
struct mx_account *mx_account_unpickle(const char *pickle, const void *key, size_t keylen,
				       char *err, size_t errlen);
void mx_account_free(struct mx_account *a);

const char *mx_account_user_id(const struct mx_account *a);
const char *mx_account_device_id(const struct mx_account *a);
const char *mx_account_curve25519(const struct mx_account *a);
const char *mx_account_ed25519(const struct mx_account *a);

/* Adds signatures[user_id]["ed25519:" device_id] over obj's canonical JSON,
 * keeping other signatures.  0 / -1. */
int mx_account_sign_json(struct mx_account *a, json_t *obj, char *err, size_t errlen);

/* The signed `device_keys` object for /keys/upload. */
json_t *mx_account_device_keys(struct mx_account *a, char *err, size_t errlen);

/* How many new one-time keys to make so the server holds half of what
 * libolm can keep (50), given the server's `device_one_time_keys_count`
 * .signed_curve25519 (negative = unknown: counts as 0) and the keys made
 * but not yet marked published. */
size_t mx_account_otk_wanted(const struct mx_account *a, long long server_count);

/* The body of POST /keys/upload: `device_keys` when with_device_keys, and
 * `one_time_keys` (signed_curve25519, each signed) after generating
 * mx_account_otk_wanted(server_count) new ones; every unpublished key is
 * included, so a retried upload sends the same keys.  Changes the account
 * when it generates keys: re-pickle.  After a 200 from the server call
 * mx_account_mark_published (and re-pickle). */
json_t *mx_account_keys_upload_body(struct mx_account *a, int with_device_keys,
				    long long server_count, char *err, size_t errlen);
void mx_account_mark_published(struct mx_account *a);

/* A new fallback key (spec v1.2: used by others when the one-time keys run
 * out; the server hands it out until replaced) as the signed `fallback_keys`
 * object for /keys/upload: {"signed_curve25519:ID": {"key", "fallback":
 * true, "signatures"}}.  Make one when /sync's
 * device_unused_fallback_key_types lacks "signed_curve25519"; libolm keeps
 * the previous one too, so messages made with it still decrypt, until
 * mx_account_forget_old_fallback_key.  mx_account_mark_published covers it.
 * Changes the account: re-pickle. */
json_t *mx_account_fallback_keys(struct mx_account *a, char *err, size_t errlen);
void mx_account_forget_old_fallback_key(struct mx_account *a);

/* ==== Olm: to-device messages ==== */

/* A session with the peer device whose curve25519 key is peer_key. */
const char *mx_olm_session_id(const struct mx_olm_session *s);
const char *mx_olm_session_peer_key(const struct mx_olm_session *s);
char *mx_olm_session_pickle(struct mx_olm_session *s, const void *key, size_t keylen,
			    char *err, size_t errlen);
struct mx_olm_session *mx_olm_session_unpickle(const char *pickle, const void *key,
					       size_t keylen, char *err, size_t errlen);
void mx_olm_session_free(struct mx_olm_session *s);

/* A decrypted to-device event.  All fields owned by the struct; release
 * with mx_olm_decrypted_release.  `changed`: what the caller must re-pickle
 * and store with the event's outcome. */
struct mx_olm_decrypted {
	json_t *payload;          /* the whole plaintext {type, content, sender, ...} */
	const char *type;         /* payload.type, borrowed from payload */
	json_t *content;          /* payload.content, borrowed from payload */
	char *sender;             /* the event's sender (user id), checked against the payload */
	char *sender_key;         /* the sender device's curve25519 key */
	char *sender_ed25519;     /* its ed25519 key as the payload claims it (payload.keys) */
	struct mx_olm_session *new_session; /* a session made by this pre-key message: store it */
	int session_index;        /* else the index in sessions[] that decrypted it (re-pickle it) */
	int account_changed;      /* a one-time key was used up: re-pickle the account */
};
void mx_olm_decrypted_release(struct mx_olm_decrypted *d);

/* Decrypts an m.room.encrypted to-device event ({type, sender, content})
 * using sessions[0..n): every stored session with content.sender_key (n may
 * be 0).  A pre-key message (type 0) that no session matches creates an
 * inbound session and consumes the one-time key it names (the fallback key
 * is not consumed); one that a session matches but cannot decrypt is a
 * replay and is refused, so pass them all.  The plaintext
 * must name event.sender as sender, this account as recipient (user id and
 * ed25519 key) and carry keys.ed25519; else -1.  Fills *out (zeroed first;
 * release it even on failure). */
int mx_olm_decrypt(struct mx_account *a, struct mx_olm_session **sessions, size_t n,
		   const json_t *event, struct mx_olm_decrypted *out, char *err, size_t errlen);

/* An outbound session to a peer device from a key /keys/claim returned:
 * otk is the one-entry object {"signed_curve25519:ID": {"key", "signatures"}}
 * found at one_time_keys[peer_user][peer_device]; its signature must verify
 * with peer_ed25519 (from /keys/query) or the session is refused. */
struct mx_olm_session *mx_olm_session_new_outbound(struct mx_account *a, const char *peer_user,
						   const char *peer_device,
						   const char *peer_curve25519,
						   const char *peer_ed25519, const json_t *otk,
						   char *err, size_t errlen);

/* The content of an m.room.encrypted to-device message carrying {type,
 * content} to the device of s, with the sender / recipient / keys fields
 * the spec requires: PUT it under messages[recipient][device] of
 * /sendToDevice/m.room.encrypted/{txnId}.  The session advances: re-pickle. */
json_t *mx_olm_encrypt(struct mx_account *a, struct mx_olm_session *s, const char *recipient,
		       const char *recipient_ed25519, const char *type, const json_t *content,
		       char *err, size_t errlen);

/* ==== Megolm inbound: room messages from other devices ==== */

/* From an m.room_key content {algorithm, room_id, session_id, session_key}
 * received over Olm from sender (user) / sender_key / sender_ed25519, as
 * mx_olm_decrypt reports them.  The session id must match the key.  When
 * the caller already holds (room_id, session_id), it keeps the copy with
 * the lower mx_megolm_in_first_index and the same sender_key (a different
 * one is an impostor). */
struct mx_megolm_in *mx_megolm_in_new(const json_t *room_key, const char *sender,
				      const char *sender_key, const char *sender_ed25519,
				      char *err, size_t errlen);
/* From an m.forwarded_room_key content (the answer to a key request),
 * received over Olm from sender / sender_key.  Accepted only when the
 * forwarding device is the one that made the session (content.sender_key ==
 * sender_key, empty forwarding chain): faqbot verifies no device, so a key
 * relayed by a third one could come from anyone.  The session may start
 * after message 0 (mx_megolm_in_first_index). */
struct mx_megolm_in *mx_megolm_in_from_forwarded(const json_t *fwd, const char *sender,
						const char *sender_key, char *err, size_t errlen);

/* The content of an m.room_key_request to-device message (send it in clear
 * to the sender's devices, or "*"): action "request" for the session
 * (room_id, session_id) made by the device sender_key, or
 * "request_cancellation" once the key arrived (then only request_id and
 * requesting_device_id are used).  NULL if a string is not UTF-8. */
json_t *mx_room_key_request(const char *action, const char *room_id, const char *session_id,
			    const char *sender_key, const char *request_id,
			    const char *requesting_device_id);

const char *mx_megolm_in_room_id(const struct mx_megolm_in *s);
const char *mx_megolm_in_session_id(const struct mx_megolm_in *s);
const char *mx_megolm_in_sender_key(const struct mx_megolm_in *s);
uint32_t mx_megolm_in_first_index(const struct mx_megolm_in *s);
char *mx_megolm_in_pickle(struct mx_megolm_in *s, const void *key, size_t keylen, char *err,
			  size_t errlen);
struct mx_megolm_in *mx_megolm_in_unpickle(const char *pickle, const void *key, size_t keylen,
					   char *err, size_t errlen);
void mx_megolm_in_free(struct mx_megolm_in *s);

/* The session to look a room event up by: content.session_id (borrowed from
 * event), or NULL when the event is not Megolm-encrypted.  Sessions are
 * keyed by (room_id, session_id). */
const char *mx_megolm_event_session_id(const json_t *event);

struct mx_megolm_decrypted {
	json_t *event;            /* a copy of the event, type and content decrypted */
	uint32_t message_index;
	int session_changed;      /* a new message index was remembered: re-pickle */
};
void mx_megolm_decrypted_release(struct mx_megolm_decrypted *d);

/* Decrypts the m.room.encrypted room event (as /sync gives it, without
 * room_id; the room is room_id) with s, which must be the session of
 * (room_id, content.session_id).  The sender must be the user who shared
 * the session, the plaintext's room_id must be room_id, and a message index
 * already seen with another event_id is refused as a replay.  An
 * m.relates_to left in clear beside the ciphertext is put back into the
 * decrypted content. */
int mx_megolm_decrypt(struct mx_megolm_in *s, const char *room_id, const json_t *event,
		      struct mx_megolm_decrypted *out, char *err, size_t errlen);

/* ==== Megolm outbound: one per encrypted room ==== */

struct mx_megolm_out *mx_megolm_out_new(const char *room_id, int64_t now_ms, char *err,
					size_t errlen);
const char *mx_megolm_out_room_id(const struct mx_megolm_out *s);
const char *mx_megolm_out_session_id(const struct mx_megolm_out *s);
/* Messages encrypted so far (the ratchet's index). */
uint32_t mx_megolm_out_message_count(const struct mx_megolm_out *s);
char *mx_megolm_out_pickle(struct mx_megolm_out *s, const void *key, size_t keylen, char *err,
			   size_t errlen);
struct mx_megolm_out *mx_megolm_out_unpickle(const char *pickle, const void *key, size_t keylen,
					     char *err, size_t errlen);
void mx_megolm_out_free(struct mx_megolm_out *s);

/* The m.room_key content to send (through mx_olm_encrypt) to every device
 * of the room's members before the first message they must read: it lets
 * them decrypt from the current index on. */
json_t *mx_megolm_out_room_key(struct mx_megolm_out *s, char *err, size_t errlen);

/* The content of the m.room.encrypted event for PUT /rooms/{id}/send/
 * m.room.encrypted/{txnId}: content's m.relates_to (reply, thread) moves
 * out of the ciphertext into the clear, as the spec asks, so servers can
 * aggregate relations.  The ratchet advances: re-pickle before sending. */
json_t *mx_megolm_out_encrypt(struct mx_megolm_out *s, struct mx_account *a, const char *type,
			      const json_t *content, char *err, size_t errlen);

/* 1 when the session must be replaced before the next message: older than
 * rotation_ms, or rotation_msgs messages sent (<= 0: the spec's defaults),
 * or a member left (member_left) since it was shared.  Else 0. */
int mx_megolm_out_needs_rotation(const struct mx_megolm_out *s, int64_t now_ms,
				 int64_t rotation_ms, int64_t rotation_msgs, int member_left);

#endif
