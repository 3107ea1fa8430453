/* Unit tests for the index cache (faqindex.c, index.c's image): an index
 * mapped from the cache answers exactly as the built one, on the shipped
 * FAQ and on a generated one; a damaged, truncated, foreign or outdated
 * cache file is refused and rebuilt; an edit of the FAQ invalidates it; a
 * cache that cannot be written changes nothing but the log. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "faqindex.h"
#include "index.h"
#include "lexfile.h"
#include "log.h"
#include "match.h"
#include "strbuf.h"
#include "util.h"

static char dir[64];
static char faq_path[128];

/* ==== Fixtures and helpers ==== */

static int setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/faqbot-idxcache-XXXXXX");
	if (!mkdtemp(dir))
		return -1;
	snprintf(faq_path, sizeof(faq_path), "%s.json", dir);
	faqindex_set_cache_dir(dir);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	faqindex_set_cache_dir(NULL);
	DIR *d = opendir(dir);
	struct dirent *e;
	char p[512];
	while (d && (e = readdir(d)))
		if (e->d_name[0] != '.') {
			snprintf(p, sizeof(p), "%s/%.200s", dir, e->d_name);
			unlink(p);
		}
	if (d)
		closedir(d);
	rmdir(dir);
	unlink(faq_path);
	return 0;
}

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	assert_int_equal(fclose(f), 0);
}

/* The cache files in dir: how many, and the last one's path in out. */
static int cache_files(char *out, size_t size)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;
	while (d && (e = readdir(d)))
		if (!strncmp(e->d_name, "index-", 6) && strlen(e->d_name) < 200) {
			snprintf(out, size, "%s/%.200s", dir, e->d_name);
			n++;
		}
	if (d)
		closedir(d);
	return n;
}

static struct index *load(const char *path)
{
	struct faq_diags d;
	faq_diags_init(&d);
	struct index *idx = faqindex_load(path, &d);
	faq_diags_release(&d);
	assert_non_null(idx);
	return idx;
}

/* Asks both indexes q and fails on the first difference: the decision,
 * the confidence, every candidate and its figures, the explanation and
 * the grouping terms. */
static void assert_same_answer(struct index *a, struct index *b, const char *q)
{
	struct match ma, mb;
	size_t len = strlen(q);
	match_question(a, q, len, -1, &ma);
	match_question(b, q, len, -1, &mb);
	if (ma.kind != mb.kind || ma.entry != mb.entry || ma.confidence != mb.confidence ||
	    ma.n_sugg != mb.n_sugg || ma.ranked.n_cand != mb.ranked.n_cand ||
	    ma.ranked.n_terms != mb.ranked.n_terms || ma.ranked.n_unknown != mb.ranked.n_unknown)
		fail_msg("\"%s\": decisions differ (entry %ld / %ld)", q, ma.entry, mb.entry);
	for (size_t i = 0; i < ma.n_sugg; i++)
		assert_int_equal(ma.sugg[i], mb.sugg[i]);
	for (size_t i = 0; i < ma.ranked.n_cand; i++) {
		const struct index_cand *x = &ma.ranked.cand[i], *y = &mb.ranked.cand[i];
		if (x->entry != y->entry || x->score != y->score || x->qcov != y->qcov ||
		    x->dcov != y->dcov || x->evidence != y->evidence)
			fail_msg("\"%s\": candidate %zu differs", q, i);
	}
	struct strbuf ea = STRBUF_INIT, eb = STRBUF_INIT;
	index_explain(a, q, len, &ma.ranked, &ea);
	index_explain(b, q, len, &mb.ranked, &eb);
	assert_string_equal(ea.buf, eb.buf);
	strbuf_reset(&ea);
	strbuf_reset(&eb);
	index_terms(a, q, len, &ea);
	index_terms(b, q, len, &eb);
	assert_string_equal(ea.buf, eb.buf);
	strbuf_release(&ea);
	strbuf_release(&eb);
}

/* Every phrasing of every entry as written, with two letters swapped
 * (typos), cut short (prefixes), and mixed with another entry's words. */
static size_t assert_same_on_phrasings(struct index *a, struct index *b)
{
	const struct faq *f = index_faq(a);
	size_t n = 0;
	char buf[1024];
	for (size_t e = 0; e < f->n_entries; e++)
		for (size_t q = 0; q < f->entries[e].n_questions; q++) {
			const char *s = f->entries[e].questions[q];
			assert_same_answer(a, b, s);
			snprintf(buf, sizeof(buf), "%s", s);
			size_t len = strlen(buf);
			if (len > 6) {
				char c = buf[len / 2];
				buf[len / 2] = buf[len / 2 + 1];
				buf[len / 2 + 1] = c;
				assert_same_answer(a, b, buf);
				buf[len * 2 / 3] = '\0';
				assert_same_answer(a, b, buf);
			}
			const struct faq_entry *o = &f->entries[(e * 7 + 3) % f->n_entries];
			snprintf(buf, sizeof(buf), "%.40s %s", s, o->questions[0]);
			assert_same_answer(a, b, buf);
			n += 4;
		}
	return n;
}

/* Asks every phrasing, explained, of an index whose figures may be
 * anything (no comparison: only that nothing reads out of bounds). */
static void exercise(struct index *idx)
{
	const struct faq *f = index_faq(idx);
	struct strbuf out = STRBUF_INIT;
	for (size_t e = 0; e < f->n_entries; e++)
		for (size_t q = 0; q < f->entries[e].n_questions; q++) {
			const char *s = f->entries[e].questions[q];
			struct match m;
			match_question(idx, s, strlen(s), -1, &m);
			index_explain(idx, s, strlen(s), &m.ranked, &out);
			index_terms(idx, s, strlen(s), &out);
			match_question(idx, "souscirption pour le permis", 27, -1, &m);
			strbuf_reset(&out);
		}
	strbuf_release(&out);
}

/* The labelled evaluation questions (answerable and not). */
static size_t assert_same_on_eval(struct index *a, struct index *b)
{
	static const char *const files[] = { "tests/eval/answerable.tsv", "tests/eval/unanswerable.txt",
					      "tests/eval/heldout.tsv" };
	size_t n = 0;
	for (size_t i = 0; i < 3; i++) {
		FILE *f = fopen(files[i], "r");
		assert_non_null(f);
		char line[2048];
		while (fgets(line, sizeof(line), f)) {
			line[strcspn(line, "\n")] = '\0';
			if (!*line || *line == '#')
				continue;
			const char *tab = strrchr(line, '\t');
			assert_same_answer(a, b, tab ? tab + 1 : line);
			n++;
		}
		fclose(f);
	}
	return n;
}

/* A generated FAQ of n entries: words made of syllables (most unknown to
 * the lexicon: typos and prefixes are tried), real words, an editor's
 * synonym group and an acronym spelled out in the FAQ. */
static void write_generated_faq(const char *path, size_t n)
{
	static const char *const syl[] = { "ba", "ro", "ti", "que", "lan", "mo", "ser", "vi",
					   "du", "cha", "pel", "gna", "tri", "sou", "fer", "lo" };
	static const char *const real[] = { "mairie", "passeport", "déchets", "bibliothèque",
					    "inscription", "horaires", "tarif", "collecte",
					    "urbanisme", "permis", "construire", "école" };
	uint64_t r = 42;
	struct strbuf s = STRBUF_INIT;
	strbuf_addstr(&s, "{\"language\": \"french\", \"fallback\": {\"text\": \"Non.\", \"url\": "
		      "\"https://example.org\"}, \"synonyms\": [[\"déchetterie\", \"centre de tri\"]],"
		      " \"entries\": [");
	for (size_t e = 0; e < n; e++) {
		strbuf_addf(&s, "%s{\"id\": \"g%zu\", \"questions\": [", e ? "," : "", e);
		for (int q = 0; q < 3; q++) {
			strbuf_addf(&s, "%s\"", q ? "," : "");
			for (int w = 0; w < 5; w++) {
				r = r * 6364136223846793005ULL + 1442695040888963407ULL;
				if ((r >> 60) < 4)
					strbuf_addf(&s, "%s ", real[(r >> 33) % 12]);
				else
					strbuf_addf(&s, "%s%s%s ", syl[(r >> 33) % 16], syl[(r >> 41) % 16],
						    syl[(r >> 49) % 16]);
			}
			strbuf_addstr(&s, "?\"");
		}
		strbuf_addf(&s, "], \"keywords\": [\"%s\"], \"answer\": \"%s\"}", real[e % 12],
			    e == 0 ? "Voir le PLU, le plan local d'urbanisme." : "Réponse donnée en mairie.");
	}
	strbuf_addstr(&s, "]}");
	write_file(path, s.buf);
	strbuf_release(&s);
}

/* ==== Round trips ==== */

static void round_trip(const char *path, int eval)
{
	char file[512];
	faqindex_set_cache_dir(NULL);
	struct index *built = load(path);          /* no cache at all */
	faqindex_set_cache_dir(dir);
	struct index *first = load(path);          /* builds and writes the cache */
	assert_false(index_mapped(first));
	assert_int_equal(cache_files(file, sizeof(file)), 1);
	struct stat st;
	assert_int_equal(stat(file, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	struct index *mapped = load(path);         /* maps it */
	assert_true(index_mapped(mapped));
	assert_int_equal(index_vocabulary_size(mapped), index_vocabulary_size(built));
	size_t n = assert_same_on_phrasings(built, mapped);
	if (eval)
		n += assert_same_on_eval(built, mapped);
	assert_true(n > 20);
	for (size_t e = 0; e < index_faq(built)->n_entries; e += 17)
		assert_int_equal(index_find(mapped, index_faq(built)->entries[e].id), (long)e);
	assert_int_equal(index_find(mapped, "no such id"), -1);
	/* the advice for editors reads the same tables */
	struct faq_diags da, db;
	faq_diags_init(&da);
	faq_diags_init(&db);
	index_advise(built, &da);
	index_advise(mapped, &db);
	assert_int_equal(da.n, db.n);
	for (size_t i = 0; i < da.n; i++)
		assert_string_equal(da.items[i].text, db.items[i].text);
	faq_diags_release(&da);
	faq_diags_release(&db);
	index_free(built);
	index_free(first);
	index_free(mapped);
}

static void round_trip_shipped_faq(void **state)
{
	(void)state;
	round_trip("faq/faq.json", 1);
}

static void round_trip_generated_faq(void **state)
{
	(void)state;
	write_generated_faq(faq_path, 400);
	round_trip(faq_path, 0);
}

/* ==== Damage ==== */

static void *read_all(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	assert_non_null(f);
	fseek(f, 0, SEEK_END);
	long n = ftell(f);
	fseek(f, 0, SEEK_SET);
	void *p = xmalloc((size_t)n + 1);
	assert_int_equal(fread(p, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	*len = (size_t)n;
	return p;
}

static void write_all_to(const char *path, const void *p, size_t len)
{
	FILE *f = fopen(path, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(p, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
}

enum damage { TRUNCATE_HALF, TRUNCATE_ONE, EMPTY, FLIP_BODY, FLIP_LAST, WRONG_VERSION, WRONG_KEY,
	      WRONG_MAGIC, N_DAMAGE };

/* Writes a valid cache, damages it, and checks the next load refuses it
 * (builds: not mapped), answers right, and leaves a valid cache that the
 * load after maps. */
static void damaged_cache_is_rebuilt(void **state)
{
	(void)state;
	write_generated_faq(faq_path, 60);
	struct index *ref = load(faq_path);
	char file[512];
	assert_int_equal(cache_files(file, sizeof(file)), 1);
	size_t len;
	unsigned char *good = read_all(file, &len);
	for (int k = 0; k < N_DAMAGE; k++) {
		unsigned char *img = xmalloc(len);
		memcpy(img, good, len);
		size_t n = len;
		switch (k) {
		case TRUNCATE_HALF: n = len / 2; break;
		case TRUNCATE_ONE: n = len - 1; break;
		case EMPTY: n = 0; break;
		case FLIP_BODY: img[len / 2] ^= 0x10; break;
		case FLIP_LAST: img[len - 1] ^= 0x01; break;
		case WRONG_VERSION: img[12] ^= 0x01; break; /* magic 8, byte order 4, version */
		case WRONG_KEY: img[16] ^= 0x80; break;
		case WRONG_MAGIC: img[0] = 'X'; break;
		}
		write_all_to(file, img, n);
		free(img);
		struct index *idx = load(faq_path);
		if (index_mapped(idx))
			fail_msg("damage %d: the damaged cache was used", k);
		assert_same_on_phrasings(ref, idx);
		index_free(idx);
		char again[512];
		assert_int_equal(cache_files(again, sizeof(again)), 1);
		assert_string_equal(again, file);
		idx = load(faq_path);
		if (!index_mapped(idx))
			fail_msg("damage %d: no valid cache was written back", k);
		index_free(idx);
	}
	free(good);
	index_free(ref);
}

/* The image checks on their own: every truncation, and damage at spread
 * positions both as is (the checksum catches it) and behind a recomputed
 * checksum (the other checks must hold the bounds: run under ASan). */
static void image_checks_hold_bounds(void **state)
{
	(void)state;
	write_generated_faq(faq_path, 30);
	faqindex_set_cache_dir(NULL);
	struct index *idx = load(faq_path);
	uint64_t key = index_key(index_faq(idx), 7);
	size_t len;
	void *img = index_image(idx, key, &len);
	struct faq_diags d;
	faq_diags_init(&d);
	uint64_t *buf = xmalloc(len + 8); /* 8-byte aligned */
	size_t refused = 0, accepted = 0;
	for (size_t n = 0; n < len; n += n < 512 ? 1 : 97) {
		struct faq *f = faq_load_file(faq_path, &d);
		memcpy(buf, img, n);
		const char *why = NULL;
		struct index *bad = index_from_image(f, buf, n, key, NULL, NULL, &why);
		assert_null(bad);
		assert_non_null(why);
		faq_free(f);
		refused++;
	}
	for (size_t pos = 0; pos < len; pos += 1 + len / 700) {
		for (int sealed = 0; sealed < 2; sealed++) {
			struct faq *f = faq_load_file(faq_path, &d);
			memcpy(buf, img, len);
			((unsigned char *)buf)[pos] ^= (unsigned char)(1u << (pos % 8));
			if (sealed)
				index_image_seal(buf, len);
			const char *why = NULL;
			struct index *m = index_from_image(f, buf, len, key, NULL, NULL, &why);
			if (!sealed && m)
				fail_msg("a flipped bit at %zu passed the checks", pos);
			if (m) {
				/* damage the checks cannot see (a weight, a
				 * string): queries still stay in bounds */
				accepted++;
				exercise(m);
				index_free(m);
			} else {
				faq_free(f);
			}
		}
	}
	/* the intact image maps */
	struct faq *f = faq_load_file(faq_path, &d);
	memcpy(buf, img, len);
	struct index *m = index_from_image(f, buf, len, key, NULL, NULL, NULL);
	assert_non_null(m);
	assert_same_on_phrasings(idx, m);
	index_free(m);
	/* another key is refused */
	f = faq_load_file(faq_path, &d);
	assert_null(index_from_image(f, buf, len, key + 1, NULL, NULL, NULL));
	faq_free(f);
	printf("  %zu truncations refused, %zu sealed damages accepted (harmless values)\n", refused,
	       accepted);
	faq_diags_release(&d);
	free(buf);
	free(img);
	index_free(idx);
}

/* ==== FAQ edits, write failures ==== */

static void faq_edit_invalidates(void **state)
{
	(void)state;
	write_file(faq_path, "{\"language\": \"french\", \"threshold\": 0.35, \"fallback\": {\"text\": \"Non.\","
		   " \"url\": \"https://example.org\"}, \"entries\": ["
		   " {\"id\": \"a\", \"questions\": [\"horaires de la piscine\"], \"answer\": \"9 h.\"},"
		   " {\"id\": \"b\", \"questions\": [\"tarif de la cantine\"], \"answer\": \"3 euros.\"}]}");
	index_free(load(faq_path));
	char old[512], now[512];
	assert_int_equal(cache_files(old, sizeof(old)), 1);
	struct index *idx = load(faq_path);
	assert_true(index_mapped(idx));
	index_free(idx);
	/* a new phrasing: a new key, a rebuild, and the old file goes */
	write_file(faq_path, "{\"language\": \"french\", \"threshold\": 0.35, \"fallback\": {\"text\": \"Non.\","
		   " \"url\": \"https://example.org\"}, \"entries\": ["
		   " {\"id\": \"a\", \"questions\": [\"horaires de la piscine\"], \"answer\": \"9 h.\"},"
		   " {\"id\": \"b\", \"questions\": [\"tarif de la cantine\", \"prix du repas scolaire\"],"
		   " \"answer\": \"3 euros.\"}]}");
	idx = load(faq_path);
	assert_false(index_mapped(idx));
	struct match m;
	match_question(idx, "prix du repas scolaire", 22, -1, &m);
	assert_int_equal(m.entry, 1);
	assert_int_equal(m.kind, MATCH_ANSWER);
	index_free(idx);
	assert_int_equal(cache_files(now, sizeof(now)), 1);
	assert_string_not_equal(old, now);
	/* an edit the index does not read (the threshold): the cache stays,
	 * and the new threshold is the FAQ's */
	write_file(faq_path, "{\"language\": \"french\", \"threshold\": 0.9, \"fallback\": {\"text\": \"Non.\","
		   " \"url\": \"https://example.org\"}, \"entries\": ["
		   " {\"id\": \"a\", \"questions\": [\"horaires de la piscine\"], \"answer\": \"9 h.\"},"
		   " {\"id\": \"b\", \"questions\": [\"tarif de la cantine\", \"prix du repas scolaire\"],"
		   " \"answer\": \"3 euros.\"}]}");
	idx = load(faq_path);
	assert_true(index_mapped(idx));
	assert_true(index_faq(idx)->threshold > 0.89);
	index_free(idx);
	/* an answer is indexed too: editing it invalidates */
	write_file(faq_path, "{\"language\": \"french\", \"threshold\": 0.9, \"fallback\": {\"text\": \"Non.\","
		   " \"url\": \"https://example.org\"}, \"entries\": ["
		   " {\"id\": \"a\", \"questions\": [\"horaires de la piscine\"], \"answer\": \"9 h 30.\"},"
		   " {\"id\": \"b\", \"questions\": [\"tarif de la cantine\", \"prix du repas scolaire\"],"
		   " \"answer\": \"3 euros.\"}]}");
	idx = load(faq_path);
	assert_false(index_mapped(idx));
	index_free(idx);
}

static void write_failure_is_not_fatal(void **state)
{
	(void)state;
	write_generated_faq(faq_path, 20);
	faqindex_set_cache_dir(NULL);
	struct index *ref = load(faq_path);
	/* a state dir that does not exist, and one that is a file */
	const char *bad[] = { "/nonexistent/faqbot-state", faq_path };
	for (size_t i = 0; i < 2; i++) {
		faqindex_set_cache_dir(bad[i]);
		struct index *idx = load(faq_path);
		assert_false(index_mapped(idx));
		assert_same_on_phrasings(ref, idx);
		index_free(idx);
	}
	faqindex_set_cache_dir(dir);
	index_free(ref);
}

/* The index with learned phrasings (feedback.c) is kept under its own
 * role: the editor's file and the learned one live side by side, and a
 * new learned phrasing replaces only the learned file. */
static void learned_index_has_its_own_file(void **state)
{
	(void)state;
	write_generated_faq(faq_path, 40);
	index_free(load(faq_path));
	struct faq_diags d;
	faq_diags_init(&d);
	const char *learned[] = { "sermogna lotiba", "titivi chaque" };
	char names[2][512];
	for (int round = 0; round < 2; round++) {
		struct faq *f = faq_load_file(faq_path, &d);
		assert_non_null(f);
		for (int k = 0; k <= round; k++)
			faq_entry_add_question(&f->entries[k], learned[k]);
		struct faq *copy = faq_copy(f);
		struct index *built = faqindex_build(f, "learned", &d);
		assert_false(index_mapped(built));
		struct index *mapped = faqindex_build(copy, "learned", &d);
		assert_true(index_mapped(mapped));
		assert_same_on_phrasings(built, mapped);
		index_free(built);
		index_free(mapped);
		/* one editor's file and one learned file */
		DIR *dd = opendir(dir);
		struct dirent *e;
		int n_index = 0, n_learned = 0;
		while (dd && (e = readdir(dd))) {
			n_index += !strncmp(e->d_name, "index-", 6);
			if (!strncmp(e->d_name, "learned-", 8)) {
				n_learned++;
				snprintf(names[round], sizeof(names[round]), "%.200s", e->d_name);
			}
		}
		closedir(dd);
		assert_int_equal(n_index, 1);
		assert_int_equal(n_learned, 1);
	}
	assert_string_not_equal(names[0], names[1]);
	struct index *idx = load(faq_path); /* the editor's is still there */
	assert_true(index_mapped(idx));
	index_free(idx);
	faq_diags_release(&d);
}

int main(void)
{
	log_set_level(LOG_ERROR); /* the cache's warnings are expected here */
	if (lexfile_load("build") != 4) /* the real analysis, as in service */
		fprintf(stderr, "test_idxcache: lexicon tables missing: run 'make' first\n");
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(round_trip_shipped_faq, setup, teardown),
		cmocka_unit_test_setup_teardown(round_trip_generated_faq, setup, teardown),
		cmocka_unit_test_setup_teardown(damaged_cache_is_rebuilt, setup, teardown),
		cmocka_unit_test_setup_teardown(image_checks_hold_bounds, setup, teardown),
		cmocka_unit_test_setup_teardown(faq_edit_invalidates, setup, teardown),
		cmocka_unit_test_setup_teardown(write_failure_is_not_fatal, setup, teardown),
		cmocka_unit_test_setup_teardown(learned_index_has_its_own_file, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
