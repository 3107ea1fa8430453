/*
 * bench.c - speed figures of the matching core (make bench).
 *
 *   bench FAQ QUESTIONS [ROUNDS]
 *   bench --store DIR N
 *
 * Prints the median FAQ load time over ROUNDS loads, cold (parse + build
 * the index: load_ms) and warm (parse + key + map and check the index
 * cache faqindex.c keeps in the state dir: load_cached_ms, what a restart
 * or reload costs), and the median over ROUNDS passes of the mean time to
 * match one question (analysis, ranking and decision) over every line of
 * QUESTIONS, on the built index and on the mapped one (with how many
 * decisions are identical: all of them, or the cache is wrong).
 *
 * --store: N questions through the store as a transport stores them (the
 * polled batch with its offset in one commit; the ledger, the reply and
 * the inbox row's deletion in the next; the send's outcome in a third),
 * one question every simulated 100 ms with retention every simulated
 * minute; then the state dir's size, and the time of one due-row lookup
 * with 50,000 rows queued behind a row in flight.
 * Figures, not a pass/fail test.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <dirent.h>
#include <unistd.h>
#include <sys/stat.h>

#include "faq.h"
#include "faqindex.h"
#include "index.h"
#include "lexfile.h"
#include "match.h"
#include "store.h"
#include "util.h"

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static struct index *load(const char *path)
{
	struct faq_diags d;
	faq_diags_init(&d);
	struct faq *f = faq_load_file(path, &d);
	struct index *idx = f ? index_build(f, &d) : NULL;
	for (size_t i = 0; i < d.n && !idx; i++)
		fprintf(stderr, "%s\n", d.items[i].text);
	faq_diags_release(&d);
	return idx;
}

static long dir_bytes(const char *dir)
{
	long n = 0;
	DIR *d = opendir(dir);
	struct dirent *e;
	char path[4096];
	struct stat st;
	while (d && (e = readdir(d))) {
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		if (stat(path, &st) == 0 && S_ISREG(st.st_mode))
			n += (long)st.st_size;
	}
	if (d)
		closedir(d);
	return n;
}

#define CHECK(x) do { if ((x) < 0) { fprintf(stderr, "bench: %s failed\n", #x); exit(1); } } while (0)

static void store_question(struct store *s, long i, int64_t now, const char *text, const char *answer)
{
	char uid[32], trigger[64], chat[32], payload[1200], body[1200];
	snprintf(uid, sizeof(uid), "%ld", i);
	snprintf(chat, sizeof(chat), "%ld", 1000 + i % 500);
	snprintf(trigger, sizeof(trigger), "m:%s:%ld", chat, i);
	snprintf(payload, sizeof(payload), "{\"update_id\":%ld,\"message\":{\"message_id\":%ld,"
		 "\"date\":%lld,\"chat\":{\"id\":%s,\"type\":\"private\"},\"from\":{\"id\":%s,"
		 "\"is_bot\":false,\"first_name\":\"U\"},\"text\":\"%s\"}}", i, i,
		 (long long)(now / 1000), chat, chat, text);
	snprintf(body, sizeof(body), "{\"chat_id\":%s,\"text\":\"%s\",\"parse_mode\":\"HTML\"}", chat,
		 answer);
	CHECK(store_begin(s));
	CHECK(store_inbox_add(s, "telegram", uid, payload, now));
	CHECK(store_kv_set(s, "telegram.offset", uid));
	CHECK(store_commit(s));
	CHECK(store_begin(s));
	struct inbox_row row;
	if (store_inbox_next(s, "telegram", &row) != 1)
		exit(1);
	CHECK(store_ledger_has(s, "telegram", trigger));
	CHECK(store_ledger_add(s, "telegram", trigger, now));
	struct outbox_row r = { 0 };
	r.transport = "telegram";
	r.chat = chat;
	r.trigger = trigger;
	r.method = "sendMessage";
	r.body = body;
	r.alt_body = body;
	r.created_at = r.next_at = now;
	CHECK(store_outbox_add(s, &r));
	CHECK(store_inbox_done(s, row.id));
	inbox_row_release(&row);
	struct outbox_row due;
	size_t n = store_outbox_due(s, "telegram", now, &due, 1);
	if (n) {
		due.state = OUT_SENDING;
		CHECK(store_outbox_set(s, &due));
	}
	CHECK(store_commit(s));
	if (n) {
		CHECK(store_begin(s));
		due.state = OUT_SENT;
		free(due.result);
		due.result = xstrdup("777");
		CHECK(store_outbox_set(s, &due));
		CHECK(store_commit(s));
		outbox_row_release(&due);
	}
}

static int bench_store(const char *dir, long n)
{
	char err[512];
	struct store *s = store_open(dir, err, sizeof(err));
	if (!s) {
		fprintf(stderr, "bench: %s\n", err);
		return 1;
	}
	static const char text[] = "Bonjour, combien coûte la souscription pour une étude de marché ?";
	char answer[600];
	memset(answer, 'a', sizeof(answer) - 1);
	answer[sizeof(answer) - 1] = '\0';
	struct store_retention keep = { STORE_DEDUP_MS, STORE_RECENT_MS, 30LL * 86400000, 90LL * 86400000 };
	int64_t t = 1700000000000LL, retain_at = t;
	uint64_t t0 = now_ns();
	for (long i = 1; i <= n; i++, t += 100) {
		store_question(s, i, t, text, answer);
		if (t >= retain_at) {
			CHECK(store_begin(s));
			CHECK(store_retain(s, t, &keep));
			CHECK(store_commit(s));
			retain_at = t + 60000;
		}
	}
	double per_q = (double)(now_ns() - t0) / 1e3 / (double)n;
	printf("store_questions %ld us_per_question %.1f state_bytes %ld simulated_hours %.1f\n", n, per_q,
	       dir_bytes(dir), (double)n * 0.1 / 3600);
	/* 50,000 rows queued in one chat behind a row in flight, one due elsewhere */
	CHECK(store_begin(s));
	char trig[32];
	for (int i = 0; i < 50000; i++) {
		struct outbox_row r = { 0 };
		snprintf(trig, sizeof(trig), "hol:%d", i);
		r.transport = "telegram";
		r.chat = "-100";
		r.trigger = trig;
		r.method = "sendMessage";
		r.body = "{}";
		r.created_at = r.next_at = t;
		CHECK(store_outbox_add(s, &r));
	}
	struct outbox_row head;
	if (store_outbox_due(s, "telegram", t, &head, 1) != 1)
		return 1;
	head.state = OUT_SENDING;
	CHECK(store_outbox_set(s, &head));
	outbox_row_release(&head);
	struct outbox_row other = { 0 };
	other.transport = "telegram";
	other.chat = "42";
	other.trigger = "other";
	other.method = "sendMessage";
	other.body = "{}";
	other.created_at = other.next_at = t + 1;
	CHECK(store_outbox_add(s, &other));
	CHECK(store_commit(s));
	t0 = now_ns();
	int rounds = 1000;
	for (int i = 0; i < rounds; i++) {
		struct outbox_row r;
		if (store_outbox_due(s, "telegram", t + 1, &r, 1) != 1)
			return 1;
		outbox_row_release(&r);
	}
	printf("due_us %.1f queued 50000\n", (double)(now_ns() - t0) / 1e3 / rounds);
	store_close(s);
	return 0;
}

static double median(double *t, int n)
{
	qsort(t, (size_t)n, sizeof(double), cmp_double);
	return t[n / 2];
}

/* Median of rounds passes of the mean time to match one question; the
 * decisions of the last pass go to out (nq of them). */
static double match_all(struct index *idx, char **qs, size_t nq, int rounds, struct match *out,
			size_t *answered)
{
	double *t = xcalloc((size_t)rounds, sizeof(double));
	for (int r = 0; r < rounds; r++) {
		*answered = 0;
		uint64_t t0 = now_ns();
		for (size_t i = 0; i < nq; i++) {
			match_question(idx, qs[i], strlen(qs[i]), -1, &out[i]);
			*answered += out[i].kind != MATCH_FALLBACK;
		}
		t[r] = (double)(now_ns() - t0) / 1e3 / (double)(nq ? nq : 1);
	}
	double m = median(t, rounds);
	free(t);
	return m;
}

static int same_match(const struct match *a, const struct match *b)
{
	if (a->kind != b->kind || a->entry != b->entry || a->confidence != b->confidence ||
	    a->n_sugg != b->n_sugg || a->ranked.n_cand != b->ranked.n_cand)
		return 0;
	for (size_t i = 0; i < a->n_sugg; i++)
		if (a->sugg[i] != b->sugg[i])
			return 0;
	for (size_t i = 0; i < a->ranked.n_cand; i++)
		if (a->ranked.cand[i].entry != b->ranked.cand[i].entry ||
		    a->ranked.cand[i].score != b->ranked.cand[i].score)
			return 0;
	return 1;
}

/* Removes the cache files faqindex wrote into dir, then dir. */
static void remove_dir(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	char path[4096];
	while (d && (e = readdir(d)))
		if (e->d_name[0] != '.') {
			snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
			unlink(path);
		}
	if (d)
		closedir(d);
	rmdir(dir);
}

static struct index *load_cached(const char *path)
{
	struct faq_diags d;
	faq_diags_init(&d);
	struct index *idx = faqindex_load(path, &d);
	faq_diags_release(&d);
	return idx;
}

int main(int argc, char **argv)
{
	if (argc == 4 && !strcmp(argv[1], "--store"))
		return bench_store(argv[2], strtol(argv[3], NULL, 10));
	if (argc < 3) {
		fprintf(stderr, "usage: bench FAQ QUESTIONS [ROUNDS]\n");
		return 2;
	}
	int rounds = argc > 3 ? atoi(argv[3]) : 7;
	if (rounds < 1)
		rounds = 1;
	double *t = xcalloc((size_t)rounds, sizeof(double));
	uint64_t l0 = now_ns();
	int tables = lexfile_load("build");
	printf("lexicon_ms %.2f tables %d\n", (double)(now_ns() - l0) / 1e6, tables);

	/* cold: parse + build, as without a cache (or with a new FAQ) */
	struct index *idx = NULL;
	for (int r = 0; r < rounds; r++) {
		index_free(idx);
		uint64_t t0 = now_ns();
		idx = load(argv[1]);
		t[r] = (double)(now_ns() - t0) / 1e6;
		if (!idx)
			return 1;
	}
	printf("load_ms %.2f entries %zu terms %zu\n", median(t, rounds), index_faq(idx)->n_entries,
	       index_vocabulary_size(idx));

	/* warm: what a restart or a reload costs with the cache written:
	 * parse + key + map and check the saved index */
	char dir[] = "/tmp/faqbot-bench-cache-XXXXXX";
	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return 1;
	}
	faqindex_set_cache_dir(dir);
	uint64_t t0 = now_ns();
	struct index *cached = load_cached(argv[1]); /* builds and writes the cache */
	double first_ms = (double)(now_ns() - t0) / 1e6;
	for (int r = 0; r < rounds; r++) {
		index_free(cached);
		t0 = now_ns();
		cached = load_cached(argv[1]);
		t[r] = (double)(now_ns() - t0) / 1e6;
		if (!cached)
			return 1;
	}
	long cache_bytes = dir_bytes(dir);
	printf("load_cached_ms %.2f first_load_ms %.1f cache_bytes %ld\n", median(t, rounds), first_ms,
	       cache_bytes);
	faqindex_set_cache_dir(NULL);
	remove_dir(dir);

	FILE *fq = fopen(argv[2], "r");
	if (!fq) {
		perror(argv[2]);
		return 1;
	}
	char **qs = NULL, *line = NULL;
	size_t nq = 0, qalloc = 0, cap = 0;
	ssize_t n;
	while ((n = getline(&line, &cap, fq)) > 0) {
		line[n - 1] = line[n - 1] == '\n' ? '\0' : line[n - 1];
		xgrow(&qs, &qalloc, nq + 1, sizeof(char *));
		qs[nq++] = xstrdup(line);
	}
	free(line);
	fclose(fq);
	struct match *mb = xcalloc(nq + 1, sizeof(struct match));
	struct match *mc = xcalloc(nq + 1, sizeof(struct match));
	size_t answered = 0, answered_c = 0, same = 0;
	double built_us = match_all(idx, qs, nq, rounds, mb, &answered);
	double cached_us = match_all(cached, qs, nq, rounds, mc, &answered_c);
	for (size_t i = 0; i < nq; i++)
		same += same_match(&mb[i], &mc[i]);
	printf("match_us %.2f questions %zu answered %zu\n", built_us, nq, answered);
	printf("match_cached_us %.2f identical %zu\n", cached_us, same);
	for (size_t i = 0; i < nq; i++)
		free(qs[i]);
	free(qs);
	free(mb);
	free(mc);
	free(t);
	index_free(idx);
	index_free(cached);
	return 0;
}
