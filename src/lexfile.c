/*
 * lexfile.c - finds and maps the lexicon and thesaurus tables.  See
 * lexfile.h.  The tables are large (the French lexicon is about 14 MB) but
 * mapped read-only: a question touches a few pages, so the resident cost
 * is what the FAQ's and questions' words touch, and start-up does not read
 * them.
 */
#define _GNU_SOURCE
#include "lexfile.h"
#include "log.h"
#include "text.h"
#include "util.h"

#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *const languages[] = { "french", "english" };

/* out = a + b (+ c); 0, or -1 when it does not fit (the path is skipped). */
static int join(char *out, size_t size, const char *a, const char *b, const char *c)
{
	int n = snprintf(out, size, "%s%s%s", a, b, c);
	return n < 0 || (size_t)n >= size ? -1 : 0;
}

/* The mappings, for lexfile_release. */
#define MAX_MAPS 8
static struct {
	void *p;
	size_t len;
} maps[MAX_MAPS];
static size_t n_maps;

void lexfile_release(void)
{
	for (size_t i = 0; i < n_maps; i++)
		madvise(maps[i].p, maps[i].len, MADV_DONTNEED);
}

/* Maps path and registers it; 1 when done, 0 when absent or refused. */
static int map_one(const char *path, const char *lang, enum text_data kind)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	struct stat st;
	void *p = MAP_FAILED;
	if (!fstat(fd, &st) && st.st_size > 0)
		p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	close(fd);
	if (p == MAP_FAILED)
		return 0;
	/* look-ups are random: no read-ahead, so only the pages a word
	 * touches become resident */
	madvise(p, (size_t)st.st_size, MADV_RANDOM);
	madvise(p, (size_t)st.st_size, MADV_NOHUGEPAGE);
	if (text_register(lang, kind, p, (size_t)st.st_size) < 0) {
		log_warn("lexicon", "file=%s msg=%s", log_q(path),
			 log_q("not a faqbot table (damaged, or from another version): ignored"));
		munmap(p, (size_t)st.st_size);
		return 0;
	}
	if (n_maps < MAX_MAPS) {
		maps[n_maps].p = p;
		maps[n_maps++].len = (size_t)st.st_size;
	}
	return 1;
}

static int has_tables(const char *dir)
{
	char path[PATH_MAX];
	for (size_t i = 0; i < ARRAY_LEN(languages); i++) {
		if (!join(path, sizeof(path), dir, "/", languages[i]) &&
		    !join(path + strlen(path), sizeof(path) - strlen(path), ".lex", "", "") &&
		    !access(path, R_OK))
			return 1;
	}
	return 0;
}

static const char *find_dir(const char *datadir)
{
	static char exe[PATH_MAX], buf[PATH_MAX];
	const char *env = getenv("FAQBOT_LEXICON_DIR");
	if (env && *env)
		return env;
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n > 0) {
		exe[n] = '\0';
		char *slash = strrchr(exe, '/');
		if (slash)
			*slash = '\0';
		if (!join(buf, sizeof(buf), exe, "/lexicon", "") && has_tables(buf))
			return buf;
		if (!join(buf, sizeof(buf), exe, "/../lexicon", "") && has_tables(buf))
			return buf;
	}
	if (!join(buf, sizeof(buf), datadir, "/lexicon", "") && has_tables(buf))
		return buf;
	return NULL;
}

int lexfile_load(const char *datadir)
{
	const char *dir = find_dir(datadir);
	int mapped = 0;
	char path[PATH_MAX];
	for (size_t i = 0; dir && i < ARRAY_LEN(languages); i++) {
		char name[32];
		snprintf(name, sizeof(name), "/%s.lex", languages[i]);
		if (!join(path, sizeof(path), dir, name, ""))
			mapped += map_one(path, languages[i], TEXT_LEXICON);
		snprintf(name, sizeof(name), "/%s.ths", languages[i]);
		if (!join(path, sizeof(path), dir, name, ""))
			mapped += map_one(path, languages[i], TEXT_THESAURUS);
	}
	if (mapped == 2 * (int)ARRAY_LEN(languages))
		log_debug("lexicon", "dir=%s files=%d", log_q(dir), mapped);
	else
		log_warn("lexicon", "dir=%s files=%d msg=%s", log_q(dir ? dir : "(none)"), mapped,
			 log_q("lexicon or thesaurus files missing: matching uses Snowball stems "
			       "alone for those languages (run 'make' to build them)"));
	return mapped;
}

