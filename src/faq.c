/*
 * faq.c - load and validate the FAQ JSON.  See faq.h.
 *
 * Validation walks the document once, knowing every key it accepts; each
 * check adds a sentence naming where the problem is ("entries[3] (id
 * "x")") and what to do, so an editor can fix the file without reading
 * code.  The JSON itself is parsed by jansson with duplicate keys rejected,
 * whose line and column we pass on for syntax errors.
 */
#define _POSIX_C_SOURCE 200809L
#include "faq.h"
#include "strbuf.h"
#include "strmap.h"
#include "text.h"
#include "util.h"

#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *const faq_message_keys[] = {
	"welcome", "help", "faq_intro", "subscribe", "suggest_intro",
	"fallback_suggest_intro", "empty_question", "choice_unknown", "link_label", "cooldown", "hello", "encrypted_room", "undecryptable", "flood", "faq_refused", NULL
};

static const char *const root_keys[] = {
	"$schema", "language", "threshold", "fallback", "synonyms", "entries", "messages", NULL
};
static const char *const entry_keys[] = { "id", "questions", "answer", "keywords", NULL };
static const char *const fallback_keys[] = { "text", "url", "label", NULL };

/* ==== Diagnostics ==== */

void faq_diags_init(struct faq_diags *d)
{
	memset(d, 0, sizeof(*d));
}

void faq_diags_release(struct faq_diags *d)
{
	for (size_t i = 0; i < d->n; i++)
		free(d->items[i].text);
	free(d->items);
	faq_diags_init(d);
}

void faq_diags_add(struct faq_diags *d, enum faq_level level, const char *fmt, ...)
{
	struct strbuf sb = STRBUF_INIT;
	va_list ap;
	va_start(ap, fmt);
	strbuf_vaddf(&sb, fmt, ap);
	va_end(ap);
	xgrow(&d->items, &d->alloc, d->n + 1, sizeof(*d->items));
	d->items[d->n].level = level;
	d->items[d->n].text = strbuf_detach(&sb, NULL);
	d->n++;
	if (level == FAQ_ERROR)
		d->errors++;
	else
		d->warnings++;
}

/* ==== Helpers ==== */

struct ctx {
	const char *src;
	struct faq_diags *d;
};

#define ERR(c, ...) faq_diags_add((c)->d, FAQ_ERROR, __VA_ARGS__)
#define WARN(c, ...) faq_diags_add((c)->d, FAQ_WARNING, __VA_ARGS__)

static const char *json_kind(const json_t *v)
{
	if (!v)
		return "nothing";
	switch (json_typeof(v)) {
	case JSON_OBJECT: return "an object";
	case JSON_ARRAY: return "a list";
	case JSON_STRING: return "a text";
	case JSON_INTEGER: case JSON_REAL: return "a number";
	case JSON_TRUE: case JSON_FALSE: return "true/false";
	default: return "null";
	}
}

static int blank(const char *s)
{
	for (; *s; s++)
		if (*s != ' ' && *s != '\t' && *s != '\n' && *s != '\r')
			return 0;
	return 1;
}

static void warn_unknown_keys(struct ctx *c, json_t *obj, const char *where,
			      const char *const *known)
{
	const char *key;
	json_t *v;
	json_object_foreach(obj, key, v) {
		int ok = 0;
		for (const char *const *k = known; *k; k++)
			if (!strcmp(key, *k))
				ok = 1;
		if (!ok)
			WARN(c, "%s: warning: %s: unknown key \"%s\" is ignored (check its spelling)",
			     c->src, where, key);
	}
}

/* A required or optional non-blank string.  Returns a copy or NULL. */
static char *get_text(struct ctx *c, json_t *obj, const char *key, const char *where, int required)
{
	json_t *v = json_object_get(obj, key);
	if (!v) {
		if (required)
			ERR(c, "%s: %s: \"%s\" is missing", c->src, where, key);
		return NULL;
	}
	if (!json_is_string(v)) {
		ERR(c, "%s: %s: \"%s\" must be a text in quotes, not %s", c->src, where, key,
		    json_kind(v));
		return NULL;
	}
	if (blank(json_string_value(v))) {
		ERR(c, "%s: %s: \"%s\" is empty", c->src, where, key);
		return NULL;
	}
	return xstrdup(json_string_value(v));
}

/* A list of non-blank strings; returns the count and sets *out (or -1 on
 * a type error, already reported). */
static long get_text_list(struct ctx *c, json_t *obj, const char *key, const char *where,
			  int required, char ***out)
{
	*out = NULL;
	json_t *v = json_object_get(obj, key);
	if (!v) {
		if (required) {
			ERR(c, "%s: %s: \"%s\" is missing", c->src, where, key);
			return -1;
		}
		return 0;
	}
	if (!json_is_array(v)) {
		ERR(c, "%s: %s: \"%s\" must be a list of texts [\"...\", \"...\"], not %s",
		    c->src, where, key, json_kind(v));
		return -1;
	}
	size_t n = json_array_size(v), k = 0;
	if (!n && required) {
		ERR(c, "%s: %s: \"%s\" is empty; give at least one", c->src, where, key);
		return -1;
	}
	char **list = xcalloc(n + 1, sizeof(char *));
	int bad = 0;
	for (size_t i = 0; i < n; i++) {
		json_t *s = json_array_get(v, i);
		if (!json_is_string(s)) {
			ERR(c, "%s: %s: \"%s\"[%zu] must be a text in quotes, not %s", c->src,
			    where, key, i, json_kind(s));
			bad = 1;
		} else if (blank(json_string_value(s))) {
			ERR(c, "%s: %s: \"%s\"[%zu] is empty", c->src, where, key, i);
			bad = 1;
		} else {
			list[k++] = xstrdup(json_string_value(s));
		}
	}
	*out = list;
	return bad ? -1 : (long)k;
}

static void free_list(char **list, size_t n)
{
	if (!list)
		return;
	for (size_t i = 0; i < n; i++)
		free(list[i]);
	free(list);
}

/* http(s)://host[...] with no spaces or control characters. */
static int url_ok(const char *u)
{
	const char *rest;
	if (!strncmp(u, "https://", 8))
		rest = u + 8;
	else if (!strncmp(u, "http://", 7))
		rest = u + 7;
	else
		return 0;
	if (!*rest || *rest == '/' || *rest == ':' || *rest == '?' || *rest == '#')
		return 0;
	for (const unsigned char *p = (const unsigned char *)u; *p; p++)
		if (*p <= ' ' || *p == 0x7f || *p == '"' || *p == '<' || *p == '>')
			return 0;
	return 1;
}

static int id_ok(const char *id)
{
	size_t n = strlen(id);
	if (!n || n > FAQ_MAX_ID)
		return 0;
	for (size_t i = 0; i < n; i++) {
		char ch = id[i];
		int ok = (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
			 ((ch == '-' || ch == '_' || ch == '.') && i > 0);
		if (!ok)
			return 0;
	}
	return 1;
}

/* ==== Sections ==== */

static void parse_language(struct ctx *c, json_t *root, struct faq *f)
{
	f->language = get_text(c, root, "language", "top level", 1);
	if (!f->language)
		return;
	struct text *t = text_new(f->language);
	if (t) {
		text_free(t);
		return;
	}
	struct strbuf sb = STRBUF_INIT;
	for (const char **l = text_languages(); *l; l++)
		strbuf_addf(&sb, "%s%s", sb.len ? ", " : "", *l);
	ERR(c, "%s: \"language\": \"%s\" is not a language faqbot knows; use one of: %s",
	    c->src, f->language, sb.buf);
	strbuf_release(&sb);
	free(f->language);
	f->language = NULL;
}

static void parse_threshold(struct ctx *c, json_t *root, struct faq *f)
{
	json_t *v = json_object_get(root, "threshold");
	f->threshold = FAQ_DEFAULT_THRESHOLD;
	if (!v)
		return;
	if (!json_is_number(v)) {
		ERR(c, "%s: \"threshold\" must be a number between 0 and 1 (e.g. 0.35), not %s",
		    c->src, json_kind(v));
		return;
	}
	double t = json_number_value(v);
	if (t < 0 || t > 1)
		ERR(c, "%s: \"threshold\" is %g; it must be between 0 and 1 (e.g. 0.35)", c->src, t);
	else
		f->threshold = t;
}

static void parse_fallback(struct ctx *c, json_t *root, struct faq *f)
{
	json_t *fb = json_object_get(root, "fallback");
	if (!fb) {
		ERR(c, "%s: \"fallback\" is missing: give {\"text\": \"...\", \"url\": \"https://...\"} "
		    "for questions the FAQ cannot answer", c->src);
		return;
	}
	if (!json_is_object(fb)) {
		ERR(c, "%s: \"fallback\" must be an object {\"text\": ..., \"url\": ...}, not %s",
		    c->src, json_kind(fb));
		return;
	}
	warn_unknown_keys(c, fb, "fallback", fallback_keys);
	f->fallback_text = get_text(c, fb, "text", "fallback", 1);
	f->fallback_url = get_text(c, fb, "url", "fallback", 1);
	f->fallback_label = get_text(c, fb, "label", "fallback", 0);
	if (f->fallback_url && !url_ok(f->fallback_url))
		ERR(c, "%s: fallback: \"url\" \"%s\" is not a web address; it must start with "
		    "https:// (or http://) and contain no spaces", c->src, f->fallback_url);
}

static void parse_synonyms(struct ctx *c, json_t *root, struct faq *f)
{
	json_t *v = json_object_get(root, "synonyms");
	if (!v)
		return;
	if (!json_is_array(v)) {
		ERR(c, "%s: \"synonyms\" must be a list of groups, e.g. [[\"numérique\", \"digital\"]], "
		    "not %s", c->src, json_kind(v));
		return;
	}
	size_t n = json_array_size(v);
	f->synonyms = xcalloc(n + 1, sizeof(*f->synonyms));
	for (size_t i = 0; i < n; i++) {
		json_t *g = json_array_get(v, i);
		char where[64];
		snprintf(where, sizeof(where), "synonyms[%zu]", i);
		if (!json_is_array(g)) {
			ERR(c, "%s: %s must be a list of two or more words, e.g. [\"numérique\", "
			    "\"digital\"], not %s", c->src, where, json_kind(g));
			continue;
		}
		json_t *wrap = json_pack("{sO}", "g", g);
		char **list;
		long k = get_text_list(c, wrap, "g", where, 1, &list);
		json_decref(wrap);
		if (k >= 0 && k < 2) {
			ERR(c, "%s: %s has %ld word(s); a synonym group needs at least two",
			    c->src, where, k);
		}
		if (k < 2) {
			free_list(list, k > 0 ? (size_t)k : json_array_size(g));
			continue;
		}
		f->synonyms[f->n_synonyms].phrases = list;
		f->synonyms[f->n_synonyms].n = (size_t)k;
		f->n_synonyms++;
	}
}

static void parse_messages(struct ctx *c, json_t *root, struct faq *f)
{
	json_t *v = json_object_get(root, "messages");
	if (!v)
		return;
	if (!json_is_object(v)) {
		ERR(c, "%s: \"messages\" must be an object {\"help\": \"...\"}, not %s", c->src,
		    json_kind(v));
		return;
	}
	warn_unknown_keys(c, v, "messages", (const char *const *)faq_message_keys);
	f->messages = xcalloc(json_object_size(v) + 1, sizeof(*f->messages));
	const char *key;
	json_t *val;
	json_object_foreach(v, key, val) {
		char *text = get_text(c, v, key, "messages", 1);
		if (!text)
			continue;
		f->messages[f->n_messages].key = xstrdup(key);
		f->messages[f->n_messages].text = text;
		f->n_messages++;
	}
}

static void parse_entry(struct ctx *c, json_t *e, size_t i, struct faq *f, struct strmap *ids)
{
	char where[160];
	json_t *idv = json_is_object(e) ? json_object_get(e, "id") : NULL;
	if (json_is_string(idv))
		snprintf(where, sizeof(where), "entries[%zu] (id \"%.60s\")", i, json_string_value(idv));
	else
		snprintf(where, sizeof(where), "entries[%zu]", i);
	if (!json_is_object(e)) {
		ERR(c, "%s: %s must be an object {\"id\": ..., \"questions\": [...], \"answer\": ...}, "
		    "not %s", c->src, where, json_kind(e));
		return;
	}
	warn_unknown_keys(c, e, where, entry_keys);
	struct faq_entry *en = &f->entries[f->n_entries];
	memset(en, 0, sizeof(*en));
	int ok = 1;
	en->id = get_text(c, e, "id", where, 1);
	if (en->id && !id_ok(en->id)) {
		ERR(c, "%s: %s: \"id\" must be 1 to %d lower-case letters, digits, '-', '_' or '.', "
		    "starting with a letter or digit (e.g. \"cout-souscription\")", c->src, where,
		    FAQ_MAX_ID);
		ok = 0;
	} else if (en->id) {
		int added;
		uint32_t first = strmap_put(ids, en->id, strlen(en->id), (uint32_t)i, &added);
		if (!added) {
			ERR(c, "%s: %s: \"id\" is already used by entries[%u]; each id must be unique",
			    c->src, where, first);
			ok = 0;
		}
	}
	long nq = get_text_list(c, e, "questions", where, 1, &en->questions);
	en->n_questions = nq > 0 ? (size_t)nq : 0;
	en->answer = get_text(c, e, "answer", where, 1);
	long nk = get_text_list(c, e, "keywords", where, 0, &en->keywords);
	en->n_keywords = nk > 0 ? (size_t)nk : 0;
	if (!ok || !en->id || nq <= 0 || !en->answer || nk < 0) {
		free(en->id);
		free_list(en->questions, json_array_size(json_object_get(e, "questions")));
		free(en->answer);
		free_list(en->keywords, json_array_size(json_object_get(e, "keywords")));
		memset(en, 0, sizeof(*en));
		return;
	}
	f->n_entries++;
}

static void parse_entries(struct ctx *c, json_t *root, struct faq *f)
{
	json_t *v = json_object_get(root, "entries");
	if (!v) {
		ERR(c, "%s: \"entries\" is missing: the FAQ needs a list of entries", c->src);
		return;
	}
	if (!json_is_array(v)) {
		ERR(c, "%s: \"entries\" must be a list [{...}, {...}], not %s", c->src, json_kind(v));
		return;
	}
	size_t n = json_array_size(v);
	if (!n) {
		ERR(c, "%s: \"entries\" is empty: add at least one question and its answer", c->src);
		return;
	}
	f->entries = xcalloc(n, sizeof(*f->entries));
	struct strmap *ids = strmap_new(n);
	for (size_t i = 0; i < n; i++)
		parse_entry(c, json_array_get(v, i), i, f, ids);
	strmap_free(ids);
}

/* ==== Entry points ==== */

/* The token jansson names in "... near 'TOKEN'", copied into tok. */
static int near_token(const char *text, char *tok, size_t size)
{
	const char *p = strstr(text, "near '");
	if (!p)
		return 0;
	p += 6;
	const char *end = strrchr(p, '\'');
	if (!end || end < p || (size_t)(end - p) >= size)
		return 0;
	memcpy(tok, p, (size_t)(end - p));
	tok[end - p] = '\0';
	return 1;
}

/* A sentence for the mistakes people make editing JSON by hand, read from
 * the bytes around the error rather than from jansson's wording. */
static const char *syntax_hint(const json_error_t *je, const char *data, size_t len,
			       const char *tok, int have_tok)
{
	if (strstr(je->text, "duplicate object key"))
		return "the same key appears twice in one object";
	if (strstr(je->text, "unable to decode") || strstr(je->text, "invalid UTF-8"))
		return "the file must be saved as UTF-8";
	if (strstr(je->text, "near end of file"))
		return "the file ends too early: is a closing } or ] or a quote missing?";
	if (strstr(je->text, "end of file expected"))
		return "there is something after the last closing }";
	if (!have_tok)
		return NULL;
	size_t tl = strlen(tok), pos = (size_t)je->position;
	if ((!strcmp(tok, "]") || !strcmp(tok, "}")) && pos >= tl && pos <= len) {
		size_t i = pos - tl;
		while (i > 0 && strchr(" \t\r\n", data[i - 1]))
			i--;
		if (i > 0 && data[i - 1] == ',')
			return "JSON allows no comma before a closing } or ]: remove it";
	}
	if (tok[0] == '\'')
		return "texts and keys need \"double quotes\", not 'single quotes'";
	if (strstr(je->text, "':' expected"))
		return "a key must be followed by a colon, as in \"answer\": \"...\"";
	if (strstr(je->text, "'}' expected") || strstr(je->text, "']' expected"))
		return "is a comma missing before this item, or a bracket left open?";
	if (strstr(je->text, "invalid token"))
		return "texts need \"double quotes\"; true, false and null are lower case";
	return NULL;
}

static void syntax_error(struct ctx *c, const json_error_t *je, const char *data, size_t len)
{
	char tok[64];
	int have_tok = near_token(je->text, tok, sizeof(tok));
	const char *hint = syntax_hint(je, data, len, tok, have_tok);
	/* jansson points at the last character of the token; editors want its first */
	int col = je->column;
	if (have_tok && col > (int)strlen(tok))
		col -= (int)strlen(tok) - 1;
	if (je->line > 0)
		ERR(c, "%s:%d:%d: JSON syntax error: %s%s%s%s", c->src, je->line, col, je->text,
		    hint ? " (" : "", hint ? hint : "", hint ? ")" : "");
	else
		ERR(c, "%s: JSON syntax error: %s%s%s%s", c->src, je->text,
		    hint ? " (" : "", hint ? hint : "", hint ? ")" : "");
}

struct faq *faq_parse(const char *data, size_t len, const char *source, struct faq_diags *d)
{
	struct ctx c = { source, d };
	size_t errors_before = d->errors;
	json_error_t je;
	json_t *root = json_loadb(data, len, JSON_REJECT_DUPLICATES, &je);
	if (!root) {
		syntax_error(&c, &je, data, len);
		return NULL;
	}
	if (!json_is_object(root)) {
		ERR(&c, "%s: the file must hold one JSON object {...}, not %s", source, json_kind(root));
		json_decref(root);
		return NULL;
	}
	struct faq *f = xcalloc(1, sizeof(*f));
	f->source = xstrdup(source);
	warn_unknown_keys(&c, root, "top level", root_keys);
	parse_language(&c, root, f);
	parse_threshold(&c, root, f);
	parse_fallback(&c, root, f);
	parse_synonyms(&c, root, f);
	parse_messages(&c, root, f);
	parse_entries(&c, root, f);
	json_decref(root);
	if (d->errors > errors_before) {
		faq_free(f);
		return NULL;
	}
	return f;
}

struct faq *faq_load_file(const char *path, struct faq_diags *d)
{
	FILE *fp = fopen(path, "rb");
	if (!fp) {
		faq_diags_add(d, FAQ_ERROR, "%s: cannot open the FAQ file: %s", path, strerror(errno));
		return NULL;
	}
	struct strbuf sb;
	strbuf_init(&sb, FAQ_MAX_FILE);
	char buf[65536];
	size_t n;
	int toobig = 0;
	while ((n = fread(buf, 1, sizeof(buf), fp)) > 0) {
		if (strbuf_add(&sb, buf, n) < 0) {
			toobig = 1;
			break;
		}
	}
	int rerr = ferror(fp);
	(void)fclose(fp); /* read only: ferror above says whether the read failed */
	struct faq *f = NULL;
	if (toobig)
		faq_diags_add(d, FAQ_ERROR, "%s: the FAQ file is larger than %u MB; is it the right file?",
			      path, FAQ_MAX_FILE >> 20);
	else if (rerr)
		faq_diags_add(d, FAQ_ERROR, "%s: cannot read the FAQ file", path);
	else
		f = faq_parse(sb.buf, sb.len, path, d);
	strbuf_release(&sb);
	return f;
}

void faq_free(struct faq *f)
{
	if (!f)
		return;
	for (size_t i = 0; i < f->n_entries; i++) {
		struct faq_entry *e = &f->entries[i];
		free(e->id);
		free_list(e->questions, e->n_questions);
		free(e->answer);
		free_list(e->keywords, e->n_keywords);
	}
	free(f->entries);
	for (size_t i = 0; i < f->n_synonyms; i++)
		free_list(f->synonyms[i].phrases, f->synonyms[i].n);
	free(f->synonyms);
	for (size_t i = 0; i < f->n_messages; i++) {
		free(f->messages[i].key);
		free(f->messages[i].text);
	}
	free(f->messages);
	free(f->source);
	free(f->language);
	free(f->fallback_text);
	free(f->fallback_url);
	free(f->fallback_label);
	free(f);
}

static char *dup_or_null(const char *s)
{
	return s ? xstrdup(s) : NULL;
}

static char **dup_list(char *const *list, size_t n)
{
	char **out = xcalloc(n ? n : 1, sizeof(*out));
	for (size_t i = 0; i < n; i++)
		out[i] = xstrdup(list[i]);
	return out;
}

/* Keep in step with faq_free: every field it frees is copied here. */
struct faq *faq_copy(const struct faq *f)
{
	struct faq *c = xcalloc(1, sizeof(*c));
	*c = *f;
	c->source = dup_or_null(f->source);
	c->language = dup_or_null(f->language);
	c->fallback_text = dup_or_null(f->fallback_text);
	c->fallback_url = dup_or_null(f->fallback_url);
	c->fallback_label = dup_or_null(f->fallback_label);
	c->synonyms = xcalloc(f->n_synonyms ? f->n_synonyms : 1, sizeof(*c->synonyms));
	for (size_t i = 0; i < f->n_synonyms; i++) {
		c->synonyms[i].n = f->synonyms[i].n;
		c->synonyms[i].phrases = dup_list(f->synonyms[i].phrases, f->synonyms[i].n);
	}
	c->entries = xcalloc(f->n_entries ? f->n_entries : 1, sizeof(*c->entries));
	for (size_t i = 0; i < f->n_entries; i++) {
		const struct faq_entry *e = &f->entries[i];
		struct faq_entry *d = &c->entries[i];
		d->id = xstrdup(e->id);
		d->questions = dup_list(e->questions, e->n_questions);
		d->n_questions = e->n_questions;
		d->answer = dup_or_null(e->answer);
		d->keywords = dup_list(e->keywords, e->n_keywords);
		d->n_keywords = e->n_keywords;
	}
	c->messages = xcalloc(f->n_messages ? f->n_messages : 1, sizeof(*c->messages));
	for (size_t i = 0; i < f->n_messages; i++) {
		c->messages[i].key = xstrdup(f->messages[i].key);
		c->messages[i].text = xstrdup(f->messages[i].text);
	}
	return c;
}

void faq_entry_add_question(struct faq_entry *e, const char *question)
{
	e->questions = xrealloc(e->questions, (e->n_questions + 1) * sizeof(*e->questions));
	e->questions[e->n_questions++] = xstrdup(question);
}

long faq_find(const struct faq *f, const char *id)
{
	for (size_t i = 0; i < f->n_entries; i++)
		if (!strcmp(f->entries[i].id, id))
			return (long)i;
	return -1;
}

const char *faq_message(const struct faq *f, const char *key)
{
	for (size_t i = 0; i < f->n_messages; i++)
		if (!strcmp(f->messages[i].key, key))
			return f->messages[i].text;
	return NULL;
}
