/*
 * markup.c - faqbot's Markdown subset: parse, render, check, split.
 * See markup.h for the rules.
 *
 * The source is read one line at a time.  Lines group into blocks
 * (paragraphs, bullet lists) separated by blank lines; inside a line a
 * tokenizer finds text, marker runs (* _ ** __) and complete links, and a
 * stack pairs markers as CommonMark's delimiter algorithm does (a closer
 * takes the nearest opener of the same kind; openers skipped over stay
 * literal), so pairs always nest and the HTML is always well formed.
 * Anything unpaired is printed as typed.  The splitter works on the
 * rendered HTML: it walks it atom by atom (a tag, an entity, one UTF-8
 * character) with a stack of open tags, so a cut can close and reopen them.
 */
#include "markup.h"
#include "util.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MARKUP_MAX_TOKENS 4096 /* per line; past it the rest of the line is text */

/* ==== Inline tokens ==== */

enum tok_kind { TOK_TEXT, TOK_DELIM, TOK_LINK };

struct tok {
	enum tok_kind kind;
	const char *p;    /* text, marker run, or link text */
	size_t n;
	const char *url;  /* TOK_LINK */
	size_t url_n;
	char ch;          /* TOK_DELIM: '*' or '_' */
	int can_open, can_close;
	int match;        /* TOK_DELIM: index of the partner, -1 when literal */
};

struct line_toks {
	struct tok *t;
	size_t n, alloc;
};

/* A problem found while reading a line (only collected when checking). */
struct probs {
	struct markup_problem *p;
	size_t n, alloc;
	size_t line;
	const char *line_start;
};

static int is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\0';
}

/* Letters and digits, with any non-ASCII byte counted as a letter. */
static int is_wordch(char c)
{
	unsigned char u = (unsigned char)c;
	return (u >= 'a' && u <= 'z') || (u >= 'A' && u <= 'Z') || (u >= '0' && u <= '9') || u >= 0x80;
}

static int is_escapable(char c)
{
	return c && strchr("\\*_[]()", c) != NULL;
}

static void tok_push(struct line_toks *lt, struct tok t)
{
	xgrow(&lt->t, &lt->alloc, lt->n + 1, sizeof(*lt->t));
	lt->t[lt->n++] = t;
}

static void tok_text(struct line_toks *lt, const char *p, size_t n)
{
	if (!n)
		return;
	if (lt->n && lt->t[lt->n - 1].kind == TOK_TEXT && lt->t[lt->n - 1].p + lt->t[lt->n - 1].n == p) {
		lt->t[lt->n - 1].n += n;
		return;
	}
	struct tok t = { TOK_TEXT, p, n, NULL, 0, 0, 0, 0, -1 };
	tok_push(lt, t);
}

static void prob_add(struct probs *pr, const char *at, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void prob_add(struct probs *pr, const char *at, const char *fmt, ...)
{
	if (!pr)
		return;
	size_t col = 1;
	for (const char *q = pr->line_start; q < at; q++)
		if (((unsigned char)*q & 0xC0) != 0x80)
			col++;
	struct strbuf sb = STRBUF_INIT;
	va_list ap;
	va_start(ap, fmt);
	strbuf_vaddf(&sb, fmt, ap);
	va_end(ap);
	xgrow(&pr->p, &pr->alloc, pr->n + 1, sizeof(*pr->p));
	pr->p[pr->n].line = pr->line;
	pr->p[pr->n].column = col;
	pr->p[pr->n].text = strbuf_detach(&sb, NULL);
	pr->n++;
}

static int url_is_web(const char *u, size_t n)
{
	size_t skip;
	if (n > 8 && !strncmp(u, "https://", 8))
		skip = 8;
	else if (n > 7 && !strncmp(u, "http://", 7))
		skip = 7;
	else
		return 0;
	char c = u[skip];
	if (c == '/' || c == ':' || c == '?' || c == '#')
		return 0;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)u[i] <= ' ' || u[i] == '"' || u[i] == '<' || u[i] == '>' || u[i] == 0x7f)
			return 0;
	return 1;
}

/* Tries a link "[text](url)" at s[i] == '['.  Returns the bytes it spans
 * (and fills t) or 0 when it is not a link, reporting link-shaped text that
 * is broken. */
static size_t try_link(const char *s, size_t i, size_t e, struct tok *t, struct probs *pr)
{
	size_t j = i + 1;
	while (j < e && s[j] != ']' && s[j] != '[') {
		if (s[j] == '\\' && j + 1 < e && is_escapable(s[j + 1]))
			j++;
		j++;
	}
	if (j >= e || s[j] != ']' || j + 1 >= e || s[j + 1] != '(')
		return 0; /* "[sic]", "[a] (b)": plain text */
	size_t u = j + 2, k = u;
	int depth = 0;
	while (k < e && !(s[k] == ')' && depth == 0)) {
		if (s[k] == '(')
			depth++;
		else if (s[k] == ')')
			depth--;
		k++;
	}
	if (k >= e) {
		prob_add(pr, s + i, "the link \"[%.*s]\" has no closing \")\" after its address",
			 (int)(j - i - 1), s + i + 1);
		return 0;
	}
	if (j == i + 1) {
		prob_add(pr, s + i, "a link needs a text between the brackets, as in "
			 "[the study](https://...)");
		return 0;
	}
	if (!url_is_web(s + u, k - u)) {
		prob_add(pr, s + i, "the link \"[%.*s]\" goes to \"%.*s\", which is not a web address "
			 "starting with https:// or http:// with no spaces; it is shown as typed",
			 (int)(j - i - 1), s + i + 1, (int)(k - u), s + u);
		return 0;
	}
	t->kind = TOK_LINK;
	t->p = s + i + 1;
	t->n = j - i - 1;
	t->url = s + u;
	t->url_n = k - u;
	t->match = -1;
	return k + 1 - i;
}

/* Splits the line s[b..e) into tokens and pairs its markers. */
static void tokenize(const char *s, size_t b, size_t e, struct line_toks *lt, struct probs *pr)
{
	lt->n = 0;
	size_t i = b;
	while (i < e) {
		char c = s[i];
		if (lt->n >= MARKUP_MAX_TOKENS) {
			tok_text(lt, s + i, e - i);
			break;
		}
		if (c == '\\' && i + 1 < e && is_escapable(s[i + 1])) {
			struct tok t = { TOK_TEXT, s + i + 1, 1, NULL, 0, 0, 0, 0, -1 };
			tok_push(lt, t); /* its own token so it never merges with the backslash */
			i += 2;
		} else if (c == '*' || c == '_') {
			size_t r = i;
			while (r < e && s[r] == c)
				r++;
			size_t run = r - i;
			char prev = i > b ? s[i - 1] : ' ', next = r < e ? s[r] : ' ';
			if (run > 2 || (c == '_' && run == 2)) { /* __init__ stays as typed */
				tok_text(lt, s + i, run);
			} else {
				int left = !is_space(next), right = !is_space(prev);
				struct tok t = { TOK_DELIM, s + i, run, NULL, 0, c, left, right, -1 };
				if (c == '_') {
					t.can_open = left && !is_wordch(prev);
					t.can_close = right && !is_wordch(next);
				}
				tok_push(lt, t);
			}
			i = r;
		} else if (c == '[') {
			struct tok t = { TOK_TEXT, NULL, 0, NULL, 0, 0, 0, 0, -1 };
			size_t n = try_link(s, i, e, &t, pr);
			if (n) {
				tok_push(lt, t);
				i += n;
			} else {
				tok_text(lt, s + i, 1);
				i++;
			}
		} else {
			size_t j = i + 1;
			while (j < e && !strchr("\\*_[", s[j]))
				j++;
			tok_text(lt, s + i, j - i);
			i = j;
		}
	}
	/* pair markers: a closer takes the nearest opener of the same kind */
	size_t *stack = xcalloc(lt->n + 1, sizeof(size_t));
	size_t top = 0;
	for (size_t k = 0; k < lt->n; k++) {
		struct tok *t = &lt->t[k];
		if (t->kind != TOK_DELIM)
			continue;
		if (t->can_close) {
			size_t d = top;
			while (d > 0 && !(lt->t[stack[d - 1]].ch == t->ch && lt->t[stack[d - 1]].n == t->n))
				d--;
			if (d > 0) {
				lt->t[stack[d - 1]].match = (int)k;
				t->match = (int)stack[d - 1];
				top = d - 1;
				continue;
			}
		}
		if (t->can_open)
			stack[top++] = k;
	}
	free(stack);
	if (pr) {
		for (size_t k = 0; k < lt->n; k++) {
			const struct tok *t = &lt->t[k];
			if (t->kind != TOK_DELIM || t->match >= 0 || t->can_open == t->can_close)
				continue;
			const char *what = t->n == 2 ? "bold" : "italic";
			char shown[8];
			snprintf(shown, sizeof(shown), t->n == 2 ? "\\%c\\%c" : "\\%c", t->ch, t->ch);
			if (t->can_open)
				prob_add(pr, t->p, "\"%.*s\" starts %s text that is not closed on the same line; "
					 "close it, or write %s to show it as typed", (int)t->n, t->p, what, shown);
			else
				prob_add(pr, t->p, "\"%.*s\" ends %s text that was not opened on the same line; "
					 "open it, or write %s to show it as typed", (int)t->n, t->p, what, shown);
		}
	}
}

/* ==== Rendering ==== */

struct render {
	struct strbuf *out;
	enum markup_target tg;
};

static void esc(struct render *r, const char *s, size_t n)
{
	if (r->tg == MARKUP_PLAIN)
		strbuf_add(r->out, s, n);
	else
		strbuf_add_html_escaped(r->out, s, n, r->tg == MARKUP_MATRIX);
}

/* Text inside a token, with backslash escapes removed (links only: plain
 * tokens already dropped their backslashes). */
static void esc_unescaping(struct render *r, const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '\\' && i + 1 < n && is_escapable(s[i + 1]))
			i++;
		esc(r, s + i, 1);
	}
}

static void emph(struct render *r, size_t run, int open)
{
	static const char *const tg[2][2] = { { "<i>", "</i>" }, { "<b>", "</b>" } };
	static const char *const mx[2][2] = { { "<em>", "</em>" }, { "<strong>", "</strong>" } };
	if (r->tg == MARKUP_TELEGRAM)
		strbuf_addstr(r->out, tg[run == 2][!open]);
	else if (r->tg == MARKUP_MATRIX)
		strbuf_addstr(r->out, mx[run == 2][!open]);
}

static void render_link(struct render *r, const struct tok *t)
{
	if (r->tg == MARKUP_PLAIN) {
		esc_unescaping(r, t->p, t->n);
		if (t->n != t->url_n || memcmp(t->p, t->url, t->n)) {
			strbuf_addstr(r->out, " (");
			strbuf_add(r->out, t->url, t->url_n);
			strbuf_addch(r->out, ')');
		}
		return;
	}
	strbuf_addstr(r->out, "<a href=\"");
	strbuf_add_html_escaped(r->out, t->url, t->url_n, 1);
	strbuf_addstr(r->out, "\">");
	esc_unescaping(r, t->p, t->n);
	strbuf_addstr(r->out, "</a>");
}

static void render_line(struct render *r, const char *s, size_t b, size_t e, struct line_toks *lt)
{
	tokenize(s, b, e, lt, NULL);
	for (size_t k = 0; k < lt->n; k++) {
		const struct tok *t = &lt->t[k];
		if (t->kind == TOK_LINK)
			render_link(r, t);
		else if (t->kind == TOK_DELIM && t->match >= 0)
			emph(r, t->n, t->match > (int)k);
		else
			esc(r, t->p, t->n);
	}
}

/* Line [b, e) without its "\r"; *body is where its content starts and
 * the result says whether it is a bullet ("- x", "* x"). */
static int line_shape(const char *s, size_t b, size_t *e, size_t *body, int *blank)
{
	if (*e > b && s[*e - 1] == '\r')
		(*e)--;
	size_t i = b;
	while (i < *e && (s[i] == ' ' || s[i] == '\t'))
		i++;
	*blank = i == *e;
	*body = b;
	if (i - b <= 3 && i + 1 < *e && (s[i] == '-' || s[i] == '*') && s[i + 1] == ' ') {
		size_t j = i + 2;
		while (j < *e && s[j] == ' ')
			j++;
		if (j < *e) {
			*body = j;
			return 1;
		}
	}
	return 0;
}

enum block { B_NONE, B_PARA, B_LIST };

static void close_block(struct render *r, enum block bk, int multi)
{
	if (r->tg != MARKUP_MATRIX)
		return;
	if (bk == B_LIST)
		strbuf_addstr(r->out, "</li></ul>");
	else if (bk == B_PARA && multi)
		strbuf_addstr(r->out, "</p>");
}

/* Counts the blocks, so a single paragraph in Matrix needs no <p>. */
static size_t count_blocks(const char *s, size_t len)
{
	size_t n = 0;
	enum block cur = B_NONE;
	for (size_t b = 0; b <= len;) {
		const char *nl = memchr(s + b, '\n', len - b);
		size_t e = nl ? (size_t)(nl - s) : len, ee = e, body;
		int blank;
		int bullet = line_shape(s, b, &ee, &body, &blank);
		enum block k = blank ? B_NONE : bullet ? B_LIST : B_PARA;
		if (k != B_NONE && k != cur)
			n++;
		cur = k;
		if (!nl)
			break;
		b = e + 1;
	}
	return n;
}

void markup_render(const char *s, size_t len, enum markup_target tg, struct strbuf *out)
{
	struct render r = { out, tg };
	struct line_toks lt = { 0 };
	int multi = count_blocks(s, len) > 1;
	enum block cur = B_NONE;
	int pending_blank = 0;
	for (size_t b = 0; b <= len;) {
		const char *nl = memchr(s + b, '\n', len - b);
		size_t e = nl ? (size_t)(nl - s) : len, ee = e, body;
		int blank;
		int bullet = line_shape(s, b, &ee, &body, &blank);
		if (blank) {
			if (cur != B_NONE)
				pending_blank = 1;
		} else {
			enum block k = bullet ? B_LIST : B_PARA;
			int new_block = cur == B_NONE || k != cur || pending_blank;
			if (new_block && cur != B_NONE) {
				close_block(&r, cur, multi);
				if (tg != MARKUP_MATRIX) /* a list right under a line stays under it */
					strbuf_addstr(out, pending_blank ? "\n\n" : "\n");
			} else if (!new_block) {
				if (tg == MARKUP_MATRIX)
					strbuf_addstr(out, k == B_LIST ? "</li><li>" : "<br>");
				else
					strbuf_addch(out, '\n');
			}
			if (new_block && tg == MARKUP_MATRIX)
				strbuf_addstr(out, k == B_LIST ? "<ul><li>" : multi ? "<p>" : "");
			if (k == B_LIST && tg != MARKUP_MATRIX)
				strbuf_addstr(out, "• ");
			render_line(&r, s, k == B_LIST ? body : b, ee, &lt);
			cur = k;
			pending_blank = 0;
		}
		if (!nl)
			break;
		b = e + 1;
	}
	close_block(&r, cur, multi);
	free(lt.t);
}

void markup_add_text(struct strbuf *out, const char *s, size_t len, enum markup_target tg)
{
	if (tg == MARKUP_PLAIN) {
		strbuf_add(out, s, len);
		return;
	}
	for (size_t i = 0; i < len; i++) {
		if (s[i] == '\n' && tg == MARKUP_MATRIX)
			strbuf_addstr(out, "<br>");
		else if (s[i] != '\r')
			strbuf_add_html_escaped(out, s + i, 1, tg == MARKUP_MATRIX);
	}
}

void markup_add_link(struct strbuf *out, const char *label, const char *url, const char *sep,
		     enum markup_target tg)
{
	if (tg == MARKUP_PLAIN) {
		strbuf_addf(out, "%s%s%s", label, sep, url);
		return;
	}
	strbuf_addstr(out, "<a href=\"");
	strbuf_add_html_escaped(out, url, strlen(url), 1);
	strbuf_addstr(out, "\">");
	markup_add_text(out, label, strlen(label), tg);
	strbuf_addstr(out, "</a>");
}

static char *render_new(const char *s, enum markup_target tg)
{
	struct strbuf sb = STRBUF_INIT;
	markup_render(s, strlen(s), tg, &sb);
	return strbuf_detach(&sb, NULL);
}

char *markup_to_plain(const char *s)
{
	return render_new(s, MARKUP_PLAIN);
}

char *markup_to_telegram_html(const char *s)
{
	return render_new(s, MARKUP_TELEGRAM);
}

char *markup_to_matrix_html(const char *s)
{
	return render_new(s, MARKUP_MATRIX);
}

/* ==== Checking ==== */

size_t markup_check(const char *s, size_t len, struct markup_problem **out)
{
	struct probs pr = { 0 };
	struct line_toks lt = { 0 };
	pr.line = 1;
	for (size_t b = 0; b <= len;) {
		const char *nl = memchr(s + b, '\n', len - b);
		size_t e = nl ? (size_t)(nl - s) : len, body;
		int blank;
		int bullet = line_shape(s, b, &e, &body, &blank);
		pr.line_start = s + b;
		if (!blank)
			tokenize(s, bullet ? body : b, e, &lt, &pr);
		if (!nl)
			break;
		b = (size_t)(nl - s) + 1;
		pr.line++;
	}
	free(lt.t);
	*out = pr.p;
	return pr.n;
}

void markup_problems_free(struct markup_problem *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(p[i].text);
	free(p);
}

/* ==== Splitting ==== */

#define SPLIT_DEPTH 32 /* nesting kept across a cut; deeper tags are not reopened */

enum atom_kind { A_CHAR, A_ENTITY, A_OPEN, A_CLOSE, A_VOID };

struct atom {
	enum atom_kind kind;
	size_t len;   /* bytes */
	size_t units; /* counted units */
};

struct tagstack {
	const char *open[SPLIT_DEPTH]; /* the opening tag's bytes, to reopen it */
	size_t open_len[SPLIT_DEPTH];
	size_t name_len[SPLIT_DEPTH];
	size_t n;
};

static size_t utf8_len(const char *s, size_t avail)
{
	unsigned char c = (unsigned char)s[0];
	size_t n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 1;
	if (n > avail)
		return 1;
	for (size_t i = 1; i < n; i++)
		if (((unsigned char)s[i] & 0xC0) != 0x80)
			return 1;
	return n;
}

static int is_void_tag(const char *s, size_t n)
{
	return (n >= 4 && !strncmp(s, "<br", 3) && (s[3] == '>' || s[3] == '/' || s[3] == ' ')) ||
	       s[n - 2] == '/';
}

static struct atom atom_at(const char *s, size_t pos, size_t len, enum markup_unit unit)
{
	struct atom a = { A_CHAR, 1, 1 };
	const char *p = s + pos;
	size_t avail = len - pos;
	if (*p == '<') {
		const char *gt = memchr(p, '>', avail);
		if (gt) {
			a.len = (size_t)(gt - p) + 1;
			a.kind = p[1] == '/' ? A_CLOSE : is_void_tag(p, a.len) ? A_VOID : A_OPEN;
			a.units = unit == MARKUP_UTF16_TEXT ? 0 : a.len;
			return a;
		}
	} else if (*p == '&') {
		size_t i = 1;
		while (i < avail && i < 12 && p[i] != ';' && (is_wordch(p[i]) || p[i] == '#'))
			i++;
		if (i < avail && p[i] == ';' && i > 1) {
			a.kind = A_ENTITY;
			a.len = i + 1;
			a.units = unit == MARKUP_UTF16_TEXT ? 1 : a.len;
			return a;
		}
	}
	a.len = utf8_len(p, avail);
	a.units = unit == MARKUP_BYTES ? a.len : a.len == 4 ? 2 : 1;
	return a;
}

/* Length of the name of the opening tag at s[pos] ("a" in <a href=...>). */
static size_t tag_name_len(const char *s, size_t pos, const struct atom *a)
{
	size_t nl = 1;
	while (nl < a->len && !is_space(s[pos + nl]) && s[pos + nl] != '>')
		nl++;
	return nl - 1;
}

static void stack_apply(struct tagstack *st, const char *s, size_t pos, const struct atom *a)
{
	if (a->kind == A_OPEN && st->n < SPLIT_DEPTH) {
		st->open[st->n] = s + pos;
		st->open_len[st->n] = a->len;
		st->name_len[st->n] = tag_name_len(s, pos, a);
		st->n++;
	} else if (a->kind == A_CLOSE && st->n) {
		st->n--;
	}
}

static size_t close_cost(const struct tagstack *st, enum markup_unit unit)
{
	if (unit == MARKUP_UTF16_TEXT)
		return 0;
	size_t c = 0;
	for (size_t i = 0; i < st->n; i++)
		c += st->name_len[i] + 3;
	return c;
}

static size_t open_cost(const struct tagstack *st, enum markup_unit unit)
{
	if (unit == MARKUP_UTF16_TEXT)
		return 0;
	size_t c = 0;
	for (size_t i = 0; i < st->n; i++)
		c += st->open_len[i];
	return c;
}

/* Walks html[from..to) applying its tags to st. */
static void stack_walk(struct tagstack *st, const char *s, size_t from, size_t to)
{
	while (from < to) {
		struct atom a = atom_at(s, from, to, MARKUP_BYTES);
		stack_apply(st, s, from, &a);
		from += a.len;
	}
}

enum cut_class { CUT_PARA, CUT_LINE, CUT_WORD, CUT_CLASSES };

/* What kind of boundary lies right after the atom at pos. */
static int boundary_after(const char *s, size_t pos, const struct atom *a)
{
	const char *p = s + pos;
	if (a->kind == A_CHAR && *p == '\n')
		return pos > 0 && s[pos - 1] == '\n' ? CUT_PARA : CUT_LINE;
	if (a->kind == A_CHAR && *p == ' ')
		return CUT_WORD;
	if (a->kind == A_CLOSE && (!strncmp(p, "</p>", 4) || !strncmp(p, "</ul>", 5) ||
				   !strncmp(p, "</ol>", 5)))
		return CUT_PARA;
	if ((a->kind == A_CLOSE && !strncmp(p, "</li>", 5)) || (a->kind == A_VOID && !strncmp(p, "<br", 3)))
		return CUT_LINE;
	return -1;
}

/* Skips whitespace and <br> at the start of a part. */
static size_t skip_gap(const char *s, size_t pos, size_t len)
{
	for (;;) {
		if (pos < len && (s[pos] == ' ' || s[pos] == '\n' || s[pos] == '\r' || s[pos] == '\t')) {
			pos++;
		} else if (pos + 3 < len && !strncmp(s + pos, "<br", 3)) {
			const char *gt = memchr(s + pos, '>', len - pos);
			if (!gt)
				return pos;
			pos = (size_t)(gt - s) + 1;
		} else {
			return pos;
		}
	}
}

static void add_part(char ***parts, size_t *n, size_t *alloc, const struct tagstack *from,
		     const char *s, size_t b, size_t e, const struct tagstack *to)
{
	struct strbuf sb = STRBUF_INIT;
	for (size_t i = 0; i < from->n; i++)
		strbuf_add(&sb, from->open[i], from->open_len[i]);
	while (e > b && (s[e - 1] == ' ' || s[e - 1] == '\n' || s[e - 1] == '\t'))
		e--;
	strbuf_add(&sb, s + b, e - b);
	for (size_t i = to->n; i-- > 0;) {
		strbuf_addstr(&sb, "</");
		strbuf_add(&sb, to->open[i] + 1, to->name_len[i]);
		strbuf_addch(&sb, '>');
	}
	xgrow(parts, alloc, *n + 1, sizeof(**parts));
	(*parts)[(*n)++] = strbuf_detach(&sb, NULL);
}

char **markup_split(const char *s, size_t len, size_t limit, enum markup_unit unit, size_t *n_out)
{
	char **parts = NULL;
	size_t n = 0, alloc = 0;
	struct tagstack st = { 0 };
	size_t pos = skip_gap(s, 0, len);
	while (pos < len) {
		struct tagstack start = st, cur = st;
		size_t used = open_cost(&start, unit), i = pos, cc = close_cost(&cur, unit);
		size_t cut_at[CUT_CLASSES] = { 0 }, cut_used[CUT_CLASSES] = { 0 };
		while (i < len) {
			struct atom a = atom_at(s, i, len, unit);
			size_t next_cc = cc; /* what closing the open tags would cost after a */
			if (unit != MARKUP_UTF16_TEXT && a.kind == A_OPEN && cur.n < SPLIT_DEPTH)
				next_cc += tag_name_len(s, i, &a) + 3;
			else if (unit != MARKUP_UTF16_TEXT && a.kind == A_CLOSE && cur.n)
				next_cc -= cur.name_len[cur.n - 1] + 3;
			if (used + a.units + next_cc > limit && i > pos)
				break;
			used += a.units;
			cc = next_cc;
			stack_apply(&cur, s, i, &a);
			int k = boundary_after(s, i, &a);
			i += a.len;
			if (k >= 0) {
				cut_at[k] = i;
				cut_used[k] = used;
			}
		}
		size_t cut = i;
		if (i < len) {
			int chosen = -1;
			for (int k = CUT_PARA; k < CUT_CLASSES && chosen < 0; k++)
				if (cut_at[k] && cut_used[k] >= limit / 2)
					chosen = k;
			int first_half = chosen < 0;
			for (int k = CUT_PARA; first_half && k < CUT_CLASSES; k++) /* else the latest */
				if (cut_at[k] && (chosen < 0 || cut_at[k] > cut_at[chosen]))
					chosen = k;
			if (chosen >= 0)
				cut = cut_at[chosen];
		}
		struct tagstack end = start;
		stack_walk(&end, s, pos, cut);
		add_part(&parts, &n, &alloc, &start, s, pos, cut, &end);
		st = end;
		pos = skip_gap(s, cut, len);
		/* a cut right before closing tags leaves them to close nothing: skip them */
		while (pos + 1 < len && s[pos] == '<' && s[pos + 1] == '/' && st.n) {
			struct atom a = atom_at(s, pos, len, unit);
			stack_apply(&st, s, pos, &a);
			pos = skip_gap(s, pos + a.len, len);
		}
	}
	if (!n)
		add_part(&parts, &n, &alloc, &st, s, 0, 0, &st);
	*n_out = n;
	return parts;
}

void markup_parts_free(char **parts, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(parts[i]);
	free(parts);
}

/* ==== HTML back to plain text ==== */

static void add_decoded(struct strbuf *out, const char *p, size_t n)
{
	static const struct {
		const char *ent, *ch;
	} ents[] = { { "&amp;", "&" }, { "&lt;", "<" }, { "&gt;", ">" }, { "&quot;", "\"" }, { "&#39;", "'" },
		     { "&apos;", "'" }, { "&nbsp;", " " } };
	for (size_t i = 0; i < ARRAY_LEN(ents); i++)
		if (strlen(ents[i].ent) == n && !memcmp(p, ents[i].ent, n)) {
			strbuf_addstr(out, ents[i].ch);
			return;
		}
	strbuf_add(out, p, n);
}

static void ensure_break(struct strbuf *out, size_t newlines)
{
	if (!out->len)
		return;
	size_t have = 0;
	while (have < out->len && have < newlines && out->buf[out->len - 1 - have] == '\n')
		have++;
	while (have++ < newlines)
		strbuf_addch(out, '\n');
}

static int tag_is(const char *p, size_t n, const char *name)
{
	size_t k = strlen(name);
	return n > k && !strncmp(p, name, k) && (p[k] == '>' || p[k] == ' ' || p[k] == '/');
}

char *markup_html_to_plain(const char *s, size_t len)
{
	struct strbuf out = STRBUF_INIT, href = STRBUF_INIT;
	size_t link_start = 0, item = 0;
	int in_ol = 0, block_done = 0;
	for (size_t pos = 0; pos < len;) {
		struct atom a = atom_at(s, pos, len, MARKUP_BYTES);
		const char *p = s + pos;
		if (a.kind == A_CHAR || a.kind == A_ENTITY) {
			if (block_done) {
				ensure_break(&out, 2);
				block_done = 0;
			}
			if (a.kind == A_ENTITY)
				add_decoded(&out, p, a.len);
			else
				strbuf_add(&out, p, a.len);
		} else if (tag_is(p, a.len, "<br")) {
			strbuf_addch(&out, '\n');
		} else if (tag_is(p, a.len, "<p") || tag_is(p, a.len, "<ul") || tag_is(p, a.len, "<ol")) {
			ensure_break(&out, 2);
			block_done = 0;
			in_ol = tag_is(p, a.len, "<ol");
			item = 0;
		} else if (tag_is(p, a.len, "</p") || tag_is(p, a.len, "</ul") || tag_is(p, a.len, "</ol")) {
			block_done = 1;
		} else if (tag_is(p, a.len, "<li")) {
			ensure_break(&out, 1);
			if (in_ol)
				strbuf_addf(&out, "%zu. ", ++item);
			else
				strbuf_addstr(&out, "• ");
		} else if (tag_is(p, a.len, "<a")) {
			strbuf_reset(&href);
			const char *h = NULL;
			for (size_t k = 0; k + 6 <= a.len && !h; k++)
				if (!memcmp(p + k, "href=\"", 6))
					h = p + k;
			if (h) {
				h += 6;
				const char *q = memchr(h, '"', (size_t)(p + a.len - h));
				for (size_t k = 0; q && h + k < q;) {
					struct atom e = atom_at(h, k, (size_t)(q - h), MARKUP_BYTES);
					if (e.kind == A_ENTITY)
						add_decoded(&href, h + k, e.len);
					else
						strbuf_add(&href, h + k, e.len);
					k += e.len;
				}
			}
			link_start = out.len;
		} else if (tag_is(p, a.len, "</a")) {
			if (href.len && (out.len - link_start != href.len ||
					 memcmp(out.buf + link_start, href.buf, href.len)))
				strbuf_addf(&out, " (%s)", href.buf);
			strbuf_reset(&href);
		}
		pos += a.len;
	}
	strbuf_release(&href);
	return strbuf_detach(&out, NULL);
}
