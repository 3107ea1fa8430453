/*
 * bench.c - speed figures of the matching core (make bench).
 *
 *   bench FAQ QUESTIONS [ROUNDS]
 *
 * Prints the median FAQ load time (parse + index) over ROUNDS loads, and
 * the median over ROUNDS passes of the mean time to match one question
 * (analysis, ranking and decision) over every line of QUESTIONS.
 * Figures, not a pass/fail test.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "faq.h"
#include "index.h"
#include "lexfile.h"
#include "match.h"
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

int main(int argc, char **argv)
{
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
