/*
 * xapian_bench.cc - the yardstick for faqbot's matcher in make bench: Xapian
 * C++ (Debian libxapian-dev) on the same FAQ and the same questions.
 *
 *   xapian_bench FAQ QUESTIONS [ROUNDS]
 *
 * Load: parse the FAQ JSON (jansson, as faqbot does) and build a Xapian index
 * of one document per entry (its questions, keywords and answer) with the
 * Snowball stemmer of the FAQ's language and French-style stemming of
 * unprefixed terms (STEM_SOME), in a glass database in a fresh temporary
 * folder, committed: what a Xapian-based bot would do at start and on each
 * reload.  Median over ROUNDS builds (load_ms); then the median time to open
 * the built database (open_ms), what a restart costs a Xapian-based bot
 * that kept its database (it parses nothing: the answers would be read
 * from the documents).
 *
 * Match: for each question, parse it (QueryParser, same stemmer, OR) and ask
 * for the 3 best entries under BM25; median over ROUNDS passes of the mean
 * time per question.  Prints lines in bench.c's "key value" format.
 * Figures, not a pass/fail test.
 */
#include <xapian.h>
#include <jansson.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include <unistd.h>

static double now_ms()
{
	using namespace std::chrono;
	return duration<double, std::milli>(steady_clock::now().time_since_epoch()).count();
}

static double median(std::vector<double> v)
{
	std::sort(v.begin(), v.end());
	return v[v.size() / 2];
}

static void rm_rf(const std::string &dir)
{
	std::string cmd = "rm -rf '" + dir + "'";
	if (std::system(cmd.c_str()) != 0)
		std::fprintf(stderr, "xapian_bench: could not remove %s\n", dir.c_str());
}

/* Parses the FAQ and indexes it into a new glass database at dir. */
static size_t build(const char *faq, const std::string &dir, std::string &lang)
{
	json_error_t e;
	json_t *root = json_load_file(faq, 0, &e);
	if (!root) {
		std::fprintf(stderr, "xapian_bench: %s:%d: %s\n", faq, e.line, e.text);
		std::exit(1);
	}
	const char *l = json_string_value(json_object_get(root, "language"));
	lang = l ? l : "french";
	Xapian::WritableDatabase db(dir, Xapian::DB_CREATE_OR_OVERWRITE | Xapian::DB_BACKEND_GLASS);
	Xapian::TermGenerator tg;
	tg.set_stemmer(Xapian::Stem(lang));
	tg.set_stemming_strategy(Xapian::TermGenerator::STEM_SOME);
	json_t *entries = json_object_get(root, "entries");
	size_t i;
	json_t *en;
	json_array_foreach(entries, i, en) {
		Xapian::Document doc;
		tg.set_document(doc);
		size_t k;
		json_t *q;
		json_array_foreach(json_object_get(en, "questions"), k, q) {
			tg.index_text(json_string_value(q), 2);	/* phrasings weigh more */
			tg.increase_termpos();
		}
		json_array_foreach(json_object_get(en, "keywords"), k, q) {
			tg.index_text(json_string_value(q), 2);
			tg.increase_termpos();
		}
		const char *ans = json_string_value(json_object_get(en, "answer"));
		if (ans)
			tg.index_text(ans);
		const char *id = json_string_value(json_object_get(en, "id"));
		doc.set_data(id ? id : "");
		db.add_document(doc);
	}
	db.commit();
	size_t n = json_array_size(entries);
	json_decref(root);
	return n;
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		std::fprintf(stderr, "usage: xapian_bench FAQ QUESTIONS [ROUNDS]\n");
		return 2;
	}
	int rounds = argc > 3 ? std::max(1, std::atoi(argv[3])) : 7;
	char tmpl[] = "/tmp/faqbot-xapian-XXXXXX";
	if (!mkdtemp(tmpl)) {
		std::perror("mkdtemp");
		return 1;
	}
	std::string dir = std::string(tmpl) + "/db", lang;
	std::vector<double> t;
	size_t entries = 0;
	for (int r = 0; r < rounds; r++) {
		rm_rf(dir);
		double t0 = now_ms();
		entries = build(argv[1], dir, lang);
		t.push_back(now_ms() - t0);
	}
	double build_ms = median(t);
	/* opening the built database, as a restart would (nothing parsed) */
	t.clear();
	for (int r = 0; r < rounds; r++) {
		double t0 = now_ms();
		Xapian::Database o(dir);
		if (o.get_doccount() != entries)
			std::exit(1);
		t.push_back(now_ms() - t0);
	}
	Xapian::Database db(dir);
	std::printf("load_ms %.2f open_ms %.3f entries %zu terms %llu\n", build_ms, median(t), entries,
		    (unsigned long long)std::distance(db.allterms_begin(), db.allterms_end()));

	std::ifstream in(argv[2]);
	std::vector<std::string> qs;
	for (std::string line; std::getline(in, line);)
		qs.push_back(line);
	Xapian::Enquire enq(db);
	enq.set_weighting_scheme(Xapian::BM25Weight());
	Xapian::QueryParser qp;
	qp.set_stemmer(Xapian::Stem(lang));
	qp.set_stemming_strategy(Xapian::QueryParser::STEM_SOME);
	qp.set_database(db);
	qp.set_default_op(Xapian::Query::OP_OR);
	t.clear();
	size_t found = 0;
	for (int r = 0; r < rounds; r++) {
		found = 0;
		double t0 = now_ms();
		for (const std::string &q : qs) {
			enq.set_query(qp.parse_query(q, 0));
			Xapian::MSet m = enq.get_mset(0, 3);
			found += !m.empty();
		}
		t.push_back((now_ms() - t0) * 1000.0 / (double)(qs.empty() ? 1 : qs.size()));
	}
	std::printf("match_us %.2f questions %zu found %zu\n", median(t), qs.size(), found);
	rm_rf(tmpl);
	return 0;
}
