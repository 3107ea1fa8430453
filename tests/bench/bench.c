/*
 * bench.c - speed figures of the matching core (make bench).
 *
 *   bench FAQ QUESTIONS [ROUNDS]
 *   bench --store DIR N
 *
 * Prints the median FAQ load time (parse + index) over ROUNDS loads, and
 * the median over ROUNDS passes of the mean time to match one question
 * (analysis, ranking and decision) over every line of QUESTIONS.
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
#include <sys/stat.h>

#include "faq.h"
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

	struct index *idx = NULL;
	for (int r = 0; r < rounds; r++) {
		index_free(idx);
		uint64_t t0 = now_ns();
		idx = load(argv[1]);
		t[r] = (double)(now_ns() - t0) / 1e6;
		if (!idx)
			return 1;
	}
	qsort(t, (size_t)rounds, sizeof(double), cmp_double);
	printf("load_ms %.2f entries %zu terms %zu\n", t[rounds / 2], index_faq(idx)->n_entries,
	       index_vocabulary_size(idx));

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
	size_t answered = 0;
	for (int r = 0; r < rounds; r++) {
		answered = 0;
		uint64_t t0 = now_ns();
		for (size_t i = 0; i < nq; i++) {
			struct match m;
			match_question(idx, qs[i], strlen(qs[i]), -1, &m);
			answered += m.kind != MATCH_FALLBACK;
		}
		t[r] = (double)(now_ns() - t0) / 1e3 / (double)(nq ? nq : 1);
	}
	qsort(t, (size_t)rounds, sizeof(double), cmp_double);
	printf("match_us %.2f questions %zu answered %zu\n", t[rounds / 2], nq, answered);
	for (size_t i = 0; i < nq; i++)
		free(qs[i]);
	free(qs);
	free(t);
	index_free(idx);
	return 0;
}
