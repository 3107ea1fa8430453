/*
 * statedir.c - permissions of the state directory and its secret key.
 * See statedir.h.
 *
 * Modes are checked at every start, not only when faqbot creates the
 * directory: a directory made by hand (or by an older version) with the
 * default umask would otherwise leave the access token readable by every
 * local user.
 */
#define _POSIX_C_SOURCE 200809L
#include "statedir.h"
#include "log.h"
#include "util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int statedir_secure(const char *dir, char *err, size_t errlen)
{
	umask(077);
	if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
		snprintf(err, errlen, "%s: cannot create the state directory: %s", dir, strerror(errno));
		return -1;
	}
	struct stat st;
	if (stat(dir, &st) < 0 || !S_ISDIR(st.st_mode)) {
		snprintf(err, errlen, "%s: the state directory is not a directory", dir);
		return -1;
	}
	if ((st.st_mode & 07777) != 0700) {
		if (chmod(dir, 0700) < 0) {
			snprintf(err, errlen, "%s: cannot make the state directory private (mode 0700): %s",
				 dir, strerror(errno));
			return -1;
		}
		log_warn("permissions_fixed", "path=%s was=%04o now=0700", log_q(dir),
			 (unsigned)(st.st_mode & 07777));
	}
	DIR *d = opendir(dir);
	if (!d) {
		snprintf(err, errlen, "%s: cannot read the state directory: %s", dir, strerror(errno));
		return -1;
	}
	int dfd = dirfd(d), rc = 0;
	struct dirent *e;
	while ((e = readdir(d))) {
		if (fstatat(dfd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(st.st_mode) ||
		    (st.st_mode & 077) == 0)
			continue;
		if (fchmodat(dfd, e->d_name, st.st_mode & 0700, 0) < 0) {
			snprintf(err, errlen, "%s/%s: cannot make the file private (mode 0600): %s", dir,
				 e->d_name, strerror(errno));
			rc = -1;
			break;
		}
		log_warn("permissions_fixed", "path=%s was=%04o now=%04o", log_q(e->d_name),
			 (unsigned)(st.st_mode & 07777), (unsigned)(st.st_mode & 0700));
	}
	closedir(d);
	return rc;
}

/* Reads the n-byte secret of dir/name, creating it (random bytes from the
 * kernel, written under a temporary name then renamed: never half a key)
 * on the first start; what it protects is said in the log (note) and in
 * the error when the file is damaged (lost). */
static int key_file(const char *dir, const char *name, uint8_t *key, size_t n, const char *note,
		    const char *lost, char *err, size_t errlen)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0 && errno == ENOENT) {
		uint8_t fresh[64];
		if (n > sizeof(fresh) || random_bytes(fresh, n) < 0) {
			snprintf(err, errlen, "cannot get random bytes from the kernel for %s", path);
			return -1;
		}
		char tmp[4200];
		snprintf(tmp, sizeof(tmp), "%s.tmp", path);
		int w = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
		if (w < 0 || write(w, fresh, n) != (ssize_t)n || fsync(w) < 0 || close(w) < 0 ||
		    rename(tmp, path) < 0) {
			snprintf(err, errlen, "%s: cannot create the secret key: %s", path, strerror(errno));
			if (w >= 0)
				unlink(tmp);
			return -1;
		}
		log_info("key_created", "path=%s note=%s", log_q(path), log_q(note));
		fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	}
	if (fd < 0) {
		snprintf(err, errlen, "%s: cannot read the secret key: %s", path, strerror(errno));
		return -1;
	}
	ssize_t got = read(fd, key, n);
	close(fd);
	if (got != (ssize_t)n) {
		snprintf(err, errlen, "%s: the secret key file is damaged (expected %zu bytes); %s", path, n,
			 lost);
		return -1;
	}
	return 0;
}

int statedir_key(const char *dir, uint8_t key[16], char *err, size_t errlen)
{
	return key_file(dir, STATEDIR_KEY_FILE, key, 16,
			"secret key of the chat pseudonyms in the unanswered table",
			"remove it to create a new one (older unanswered questions then lose their "
			"grouping by chat)", err, errlen);
}

int statedir_pickle_key(const char *dir, uint8_t key[STATEDIR_PICKLE_KEY_BYTES], char *err, size_t errlen)
{
	return key_file(dir, STATEDIR_PICKLE_KEY_FILE, key, STATEDIR_PICKLE_KEY_BYTES,
			"key of the Matrix encryption keys stored in the database (keep it with the database)",
			"restore it from a backup, or reset the Matrix device (README: End-to-end "
			"encryption)", err, errlen);
}
