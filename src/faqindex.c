/*
 * faqindex.c - load and index an FAQ file; the checks of `faqbot check`;
 * the index cache.  See faqindex.h.
 *
 * The cache: building the index of a large FAQ costs a second or more
 * (every word analysed, typo tables filled), parsing it a tenth of that.
 * So the daemon keeps the built index as a file in the state dir,
 * index-<key>.cache, and a start or a reload with the same FAQ parses the
 * JSON, computes the key (index_key: a hash of the FAQ's indexed text, the
 * language tables, the format version and this binary's build ids) and
 * maps the file read-only instead of building.  The file is checked before
 * use (index_from_image); a damaged, truncated or foreign one is logged,
 * deleted and rebuilt, never trusted.  It is written atomically (a 0600
 * temporary file, fsync, rename), and a failure to write (disk full,
 * read-only state dir) is logged and changes nothing else: the index
 * built in memory serves.  One file is kept per role: writing a new one
 * removes the others ("index" for the editor's FAQ, "learned" for it with
 * the phrasings live learning added, feedback.c).  Deleting them is always
 * safe (the next start rebuilds them).
 */
#define _GNU_SOURCE
#include "faqindex.h"
#include "log.h"
#include "markup.h"
#include "match.h"
#include "text.h"
#include "util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <link.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* ==== The index cache ==== */

static char *cache_dir; /* NULL: no cache (check, ask, console, report) */

void faqindex_set_cache_dir(const char *dir)
{
	free(cache_dir);
	cache_dir = dir ? xstrdup(dir) : NULL;
}

/* Folds the GNU build id of one loaded object into *(uint64_t *)arg. */
static void fold_build_id(struct dl_phdr_info *info, uint64_t *h)
{
	for (int i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		if (ph->p_type != PT_NOTE)
			continue;
		/* the loader gives the object's base as a number */
		/* NOLINTNEXTLINE(performance-no-int-to-ptr) */
		const unsigned char *p = (const unsigned char *)(info->dlpi_addr + ph->p_vaddr);
		size_t off = 0, len = ph->p_memsz;
		while (off + sizeof(ElfW(Nhdr)) <= len) {
			ElfW(Nhdr) nh;
			memcpy(&nh, p + off, sizeof(nh));
			size_t name = off + sizeof(nh), desc = name + ((nh.n_namesz + 3) & ~3u);
			size_t next = desc + ((nh.n_descsz + 3) & ~3u);
			if (next > len)
				break;
			if (nh.n_type == NT_GNU_BUILD_ID && nh.n_namesz == 4 && !memcmp(p + name, "GNU", 4))
				*h = (*h ^ hash_bytes(p + desc, nh.n_descsz)) * 1099511628211ULL;
			off = next;
		}
	}
}

/* The objects whose code decides the index: this binary (the analysis,
 * the stopwords, the weights), Snowball, utf8proc's folding and libm
 * (the weights' logarithms). */
static int build_id_cb(struct dl_phdr_info *info, size_t size, void *arg)
{
	(void)size;
	const char *name = info->dlpi_name ? info->dlpi_name : "";
	const char *base = strrchr(name, '/');
	base = base ? base + 1 : name;
	if (!*name || !strncmp(base, "libstemmer", 10) || !strncmp(base, "libutf8proc", 11) ||
	    !strncmp(base, "libm.", 5))
		fold_build_id(info, arg);
	return 0;
}

static uint64_t build_seed(void)
{
	static uint64_t seed;
	if (!seed) {
		uint64_t h = hash_bytes("faqbot index", 12);
		dl_iterate_phdr(build_id_cb, &h);
		seed = h ? h : 1;
	}
	return seed;
}

struct mapping {
	void *p;
	size_t len;
};

static void unmap(void *arg)
{
	struct mapping *m = arg;
	munmap(m->p, m->len);
	free(m);
}

static void cache_path(char *out, size_t size, const char *dir, const char *role, uint64_t key,
		       const char *ext)
{
	snprintf(out, size, "%s/%s-%016llx%s", dir, role, (unsigned long long)key, ext);
}

/* The index from dir's cache file for key, or NULL (none, or refused:
 * then the file is deleted and the reason logged). */
static struct index *cache_read(struct faq *f, const char *dir, const char *role, uint64_t key)
{
	char path[4096];
	cache_path(path, sizeof(path), dir, role, key, ".cache");
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	struct stat st;
	void *p = MAP_FAILED;
	if (!fstat(fd, &st) && st.st_size > 0)
		p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE | MAP_POPULATE, fd, 0);
	close(fd);
	const char *why = "empty or unreadable";
	struct index *idx = NULL;
	if (p != MAP_FAILED) {
		struct mapping *m = xmalloc(sizeof(*m));
		m->p = p;
		m->len = (size_t)st.st_size;
		idx = index_from_image(f, p, m->len, key, unmap, m, &why);
		if (idx)
			return idx;
		munmap(p, m->len);
		free(m);
	}
	log_warn("index_cache", "file=%s problem=%s msg=%s", log_q(path), log_q(why),
		 log_q("the saved index is not usable: rebuilt from the FAQ"));
	unlink(path);
	return NULL;
}

/* Removes dir's files of role other than keep (older FAQs, and temporary
 * files a crash left). */
static void cache_prune(const char *dir, const char *role, const char *keep)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	char path[4096];
	size_t rl = strlen(role);
	while (d && (e = readdir(d))) {
		size_t n = strlen(e->d_name);
		int ours = !strncmp(e->d_name, role, rl) && e->d_name[rl] == '-' &&
			   ((n > 6 && !strcmp(e->d_name + n - 6, ".cache")) || strstr(e->d_name, ".tmp"));
		if (!ours || !strcmp(e->d_name, keep))
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		unlink(path);
	}
	if (d)
		closedir(d);
}

static int write_all(int fd, const char *p, size_t len)
{
	while (len) {
		ssize_t n = write(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Saves idx's image for key in dir; 0, or -1 (logged; nothing else
 * changes). */
static int cache_write(const struct index *idx, const char *dir, const char *role, uint64_t key)
{
	char path[4096], tmp[4096];
	cache_path(path, sizeof(path), dir, role, key, ".cache");
	cache_path(tmp, sizeof(tmp), dir, role, key, ".tmpXXXXXX");
	size_t len;
	void *img = index_image(idx, key, &len);
	int fd = mkostemp(tmp, O_CLOEXEC); /* mode 0600 */
	int rc = fd < 0 || write_all(fd, img, len) < 0 || fsync(fd) < 0 ? -1 : 0;
	int err = errno;
	if (fd >= 0 && close(fd) < 0 && !rc) {
		rc = -1;
		err = errno;
	}
	if (!rc && rename(tmp, path) < 0) {
		rc = -1;
		err = errno;
	}
	free(img);
	if (rc < 0) {
		if (fd >= 0)
			unlink(tmp);
		log_warn("index_cache", "dir=%s error=%s msg=%s", log_q(dir), log_q(strerror(err)),
			 log_q("could not save the index (it serves from memory; the next start "
			       "builds it again)"));
		return -1;
	}
	int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0) {
		(void)fsync(dfd); /* the rename survives a crash; harmless if not */
		close(dfd);
	}
	cache_prune(dir, role, strrchr(path, '/') + 1);
	log_debug("index_cache", "file=%s bytes=%zu", log_q(path), len);
	return 0;
}

struct index *faqindex_build(struct faq *f, const char *role, struct faq_diags *d)
{
	if (!cache_dir)
		return index_build(f, d);
	uint64_t key = index_key(f, build_seed());
	struct index *idx = cache_read(f, cache_dir, role, key);
	if (idx)
		return idx;
	idx = index_build(f, d);
	if (idx)
		cache_write(idx, cache_dir, role, key);
	return idx;
}

struct index *faqindex_load(const char *path, struct faq_diags *d)
{
	struct faq *f = faq_load_file(path, d);
	return f ? faqindex_build(f, "index", d) : NULL;
}

/* Asks every phrasing of every entry and warns when it lands elsewhere or
 * gets the fallback; warns about synonyms with no searchable word. */
static void self_test(struct index *idx, struct faq_diags *d)
{
	const struct faq *f = index_faq(idx);
	struct text *t = text_new(f->language);
	struct termlist tl;
	termlist_init(&tl);
	for (size_t g = 0; g < f->n_synonyms; g++)
		for (size_t p = 0; p < f->synonyms[g].n; p++) {
			termlist_clear(&tl);
			if (!text_analyze(t, f->synonyms[g].phrases[p], strlen(f->synonyms[g].phrases[p]), &tl, 0))
				faq_diags_add(d, FAQ_WARNING, "%s: warning: synonyms[%zu]: \"%s\" has no "
					      "searchable word (only common words) and is ignored",
					      f->source, g, f->synonyms[g].phrases[p]);
		}
	for (size_t e = 0; e < f->n_entries; e++) {
		const struct faq_entry *en = &f->entries[e];
		for (size_t q = 0; q < en->n_questions; q++) {
			struct match m;
			const char *qs = en->questions[q];
			match_question(idx, qs, strlen(qs), -1, &m);
			const char *where = "entries";
			if (!m.ranked.n_terms)
				faq_diags_add(d, FAQ_WARNING, "%s: warning: %s[%zu] (id \"%s\"): questions[%zu] "
					      "\"%s\" has no searchable word (only common words)",
					      f->source, where, e, en->id, q, qs);
			else if (m.entry != (long)e)
				faq_diags_add(d, FAQ_WARNING, "%s: warning: %s[%zu] (id \"%s\"): questions[%zu] "
					      "\"%s\" is matched to entry \"%s\" instead; reword it or "
					      "add keywords", f->source, where, e, en->id, q, qs,
					      m.entry >= 0 ? f->entries[m.entry].id : "(none)");
			else if (m.kind == MATCH_FALLBACK)
				faq_diags_add(d, FAQ_WARNING, "%s: warning: %s[%zu] (id \"%s\"): questions[%zu] "
					      "\"%s\" would get the fallback (confidence %.2f, threshold "
					      "%.2f)", f->source, where, e, en->id, q, qs, m.confidence,
					      m.threshold);
		}
	}
	termlist_release(&tl);
	text_free(t);
}

/* Markup problems in one text: a warning each (the text is still shown,
 * with the broken part as typed). */
static void check_markup_of(const struct faq *f, const char *where, const char *src,
			    struct faq_diags *d)
{
	struct markup_problem *p;
	size_t n = markup_check(src, strlen(src), &p);
	for (size_t i = 0; i < n; i++)
		faq_diags_add(d, FAQ_WARNING, "%s: warning: %s, line %zu, column %zu: %s", f->source,
			      where, p[i].line, p[i].column, p[i].text);
	markup_problems_free(p, n);
}

static void check_markup(const struct faq *f, struct faq_diags *d)
{
	check_markup_of(f, "fallback: \"text\"", f->fallback_text, d);
	for (size_t e = 0; e < f->n_entries; e++) {
		char where[160];
		snprintf(where, sizeof(where), "entries[%zu] (id \"%.60s\"): \"answer\"", e,
			 f->entries[e].id);
		check_markup_of(f, where, f->entries[e].answer, d);
	}
}

void faqindex_check(struct index *idx, struct faq_diags *d)
{
	check_markup(index_faq(idx), d);
	self_test(idx, d);
}
