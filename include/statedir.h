/*
 * statedir.h - the state directory's permissions and its secret key.
 *
 * The state directory holds the database (with the Matrix access token
 * and chat history), hash.key and, with Matrix encryption, pickle.key.
 * At every start, before the database is opened, statedir_secure makes
 * the directory 0700 and every file in it 0600 (an existing 0755
 * directory or a 0644 database is fixed, and said so in the log), and
 * sets the umask so new files are created 0600.
 */
#ifndef FAQBOT_STATEDIR_H
#define FAQBOT_STATEDIR_H

#include <stddef.h>
#include <stdint.h>

#define STATEDIR_KEY_FILE "hash.key"
#define STATEDIR_PICKLE_KEY_FILE "pickle.key"
#define STATEDIR_PICKLE_KEY_BYTES 32

/* Creates dir (0700) if missing and fixes the modes; 0, or -1 with a
 * sentence in err. */
int statedir_secure(const char *dir, char *err, size_t errlen);
/* Reads the 16-byte secret key of dir/hash.key, creating it (0600, random
 * bytes from the kernel) on the first start; 0, or -1 with a sentence. */
int statedir_key(const char *dir, uint8_t key[16], char *err, size_t errlen);

/* Reads the 32-byte key of dir/pickle.key that encrypts the Matrix
 * encryption state (libolm pickles) when matrix_pickle_key is not set,
 * creating it (0600, random) on the first start; 0, or -1 with a sentence. */
int statedir_pickle_key(const char *dir, uint8_t key[STATEDIR_PICKLE_KEY_BYTES], char *err, size_t errlen);

#endif
