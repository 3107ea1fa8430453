/* Unit tests for the answer markup (src/markup.c): rendering, checking, splitting. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "markup.h"

static void expect(const char *src, const char *plain, const char *tg, const char *mx)
{
	char *p = markup_to_plain(src), *t = markup_to_telegram_html(src), *m = markup_to_matrix_html(src);
	assert_string_equal(p, plain);
	assert_string_equal(t, tg);
	assert_string_equal(m, mx);
	free(p);
	free(t);
	free(m);
}

static void renders_each_target(void **state)
{
	(void)state;
	expect("Un **mot** et un *autre* et un _troisième_.",
	       "Un mot et un autre et un troisième.",
	       "Un <b>mot</b> et un <i>autre</i> et un <i>troisième</i>.",
	       "Un <strong>mot</strong> et un <em>autre</em> et un <em>troisième</em>.");
	expect("Voir [l'étude](https://example.org/a?b=1&c=2).",
	       "Voir l'étude (https://example.org/a?b=1&c=2).",
	       "Voir <a href=\"https://example.org/a?b=1&amp;c=2\">l'étude</a>.",
	       "Voir <a href=\"https://example.org/a?b=1&amp;c=2\">l'étude</a>.");
	expect("Ligne 1\nLigne 2\n\nNous proposons :\n- un **atelier**\n* un rapport\n\nFin.",
	       "Ligne 1\nLigne 2\n\nNous proposons :\n• un atelier\n• un rapport\n\nFin.",
	       "Ligne 1\nLigne 2\n\nNous proposons :\n• un <b>atelier</b>\n• un rapport\n\nFin.",
	       "<p>Ligne 1<br>Ligne 2</p><p>Nous proposons :</p><ul><li>un <strong>atelier</strong>"
	       "</li><li>un rapport</li></ul><p>Fin.</p>");
	/* a link whose text is its address is not repeated in plain text */
	expect("[https://e.org/x](https://e.org/x)", "https://e.org/x",
	       "<a href=\"https://e.org/x\">https://e.org/x</a>",
	       "<a href=\"https://e.org/x\">https://e.org/x</a>");
	/* \r\n line ends, blank lines made of spaces */
	expect("a\r\n  \r\nb", "a\n\nb", "a\n\nb", "<p>a</p><p>b</p>");
}

/* Text written without markup must come out as typed. */
static void plain_text_survives(void **state)
{
	(void)state;
	static const char *const same[] = {
		"3 * 4 = 12", "snake_case et __init__ restent", "un [sic] ici", "a ** b ** c",
		"***trois***", "prix*", "_", "*", "-5 degrés", "le 2*3 du tableau",
		"voir [ce lien](javascript:alert(1))", "[vide]()", "C:\\dossier\\fichier",
		"mail: x_y@example.org", "2 * 3 * 4",
	};
	for (size_t i = 0; i < sizeof(same) / sizeof(same[0]); i++) {
		char *p = markup_to_plain(same[i]);
		assert_string_equal(p, same[i]);
		free(p);
	}
	/* escapes show the marker itself */
	char *p = markup_to_plain("\\*pas en italique\\* et \\[pas un lien\\](https://e.org)");
	assert_string_equal(p, "*pas en italique* et [pas un lien](https://e.org)");
	free(p);
	/* HTML in an answer is text, not markup */
	expect("Prix <b>HT</b> & \"TVA\"", "Prix <b>HT</b> & \"TVA\"",
	       "Prix &lt;b&gt;HT&lt;/b&gt; &amp; \"TVA\"",
	       "Prix &lt;b&gt;HT&lt;/b&gt; &amp; &quot;TVA&quot;");
}

static void markers_nest_and_pair_nearest(void **state)
{
	(void)state;
	/* a run of three markers is text, so nothing pairs here */
	expect("**gras *et italique***x", "**gras *et italique***x",
	       "**gras *et italique***x", "**gras *et italique***x");
	expect("**gras _et italique_**", "gras et italique", "<b>gras <i>et italique</i></b>",
	       "<strong>gras <em>et italique</em></strong>");
	/* an opener skipped over by a closer stays literal and tags nest */
	expect("*a **b* c**", "a **b c**", "<i>a **b</i> c**", "<em>a **b</em> c**");
	/* formatting never crosses a line */
	expect("**début\nfin**", "**début\nfin**", "**début\nfin**", "**début<br>fin**");
	expect("*[lien](https://e.org)*", "lien (https://e.org)",
	       "<i><a href=\"https://e.org\">lien</a></i>", "<em><a href=\"https://e.org\">lien</a></em>");
}

static void html_to_plain_matches_plain(void **state)
{
	(void)state;
	static const char *const srcs[] = {
		"Un **mot** et [un lien](https://e.org/?a=1&b=\"2\").",
		"Ligne 1\nLigne 2\n\nListe :\n\n- a\n- b\n\nFin < 3 & > 2.",
		"- seul\n- liste",
		"a\n\n\n\nb",
		"[https://e.org/x](https://e.org/x)",
	};
	for (size_t i = 0; i < sizeof(srcs) / sizeof(srcs[0]); i++) {
		char *p = markup_to_plain(srcs[i]);
		char *t = markup_to_telegram_html(srcs[i]), *m = markup_to_matrix_html(srcs[i]);
		char *pt = markup_html_to_plain(t, strlen(t)), *pm = markup_html_to_plain(m, strlen(m));
		assert_string_equal(pt, p);
		assert_string_equal(pm, p);
		free(p);
		free(t);
		free(m);
		free(pt);
		free(pm);
	}
}

static void check_reports_line_and_column(void **state)
{
	(void)state;
	struct markup_problem *p;
	size_t n = markup_check("Tout va bien : 3 * 4, snake_case, **gras**, [lien](https://e.org).\n- puce", 73, &p);
	assert_int_equal(n, 0);
	assert_null(p);
	const char *src = "Première ligne\nécrit **gras sans fin\nun [lien](ftp://e.org) et "
			  "[autre](https://e.org\n_début seul et fin** ";
	n = markup_check(src, strlen(src), &p);
	assert_int_equal(n, 5);
	assert_int_equal(p[0].line, 2);
	assert_int_equal(p[0].column, 7); /* characters, not bytes: "é" is one */
	assert_non_null(strstr(p[0].text, "\"**\" starts bold text"));
	assert_int_equal(p[1].line, 3);
	assert_int_equal(p[1].column, 4);
	assert_non_null(strstr(p[1].text, "\"ftp://e.org\", which is not a web address"));
	assert_int_equal(p[2].line, 3);
	assert_int_equal(p[2].column, 27);
	assert_non_null(strstr(p[2].text, "no closing \")\""));
	assert_int_equal(p[3].line, 4);
	assert_int_equal(p[3].column, 1);
	assert_non_null(strstr(p[3].text, "\"_\" starts italic text"));
	assert_int_equal(p[4].line, 4);
	assert_non_null(strstr(p[4].text, "\"**\" ends bold text"));
	markup_problems_free(p, n);
}

/* UTF-16 code units of s (what Telegram counts). */
static size_t utf16_units(const char *s)
{
	size_t n = 0;
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if ((*p & 0xC0) != 0x80)
			n++;
		if (*p >= 0xF0)
			n++;
	}
	return n;
}

/* UTF-16 units of html once Telegram has parsed it: tags dropped, an
 * entity is one character. */
static size_t visible_units(const char *html)
{
	struct strbuf sb = STRBUF_INIT;
	for (const char *p = html; *p; p++) {
		if (*p == '<')
			p = strchr(p, '>');
		else if (*p == '&') {
			p = strchr(p, ';');
			strbuf_addch(&sb, '&');
		} else
			strbuf_addch(&sb, *p);
	}
	size_t n = utf16_units(sb.buf);
	strbuf_release(&sb);
	return n;
}

/* Tags in s open and close in order; entities are complete; UTF-8 valid. */
static void assert_well_formed(const char *s)
{
	const char *stack[32];
	size_t depth = 0;
	for (const char *p = s; *p;) {
		if (*p == '<') {
			const char *gt = strchr(p, '>');
			assert_non_null(gt);
			if (p[1] == '/') {
				assert_true(depth > 0);
				size_t n = (size_t)(gt - p) - 2;
				assert_memory_equal(stack[depth - 1], p + 2, n);
				depth--;
			} else if (strncmp(p, "<br", 3)) {
				assert_true(depth < 32);
				stack[depth++] = p + 1;
			}
			p = gt + 1;
		} else if (*p == '&') {
			const char *semi = strchr(p, ';');
			assert_non_null(semi);
			assert_true(semi - p <= 6);
			p = semi + 1;
		} else {
			unsigned char c = (unsigned char)*p;
			size_t n = c < 0x80 ? 1 : c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : 2;
			assert_true(c < 0x80 || c >= 0xC0);
			for (size_t i = 1; i < n; i++)
				assert_int_equal((unsigned char)p[i] & 0xC0, 0x80);
			p += n;
		}
	}
	assert_int_equal(depth, 0);
}

static void split_keeps_tags_entities_and_characters(void **state)
{
	(void)state;
	/* one long bold paragraph with entities and astral characters, then a list */
	struct strbuf src = STRBUF_INIT;
	strbuf_addstr(&src, "**");
	for (int i = 0; i < 300; i++)
		strbuf_addstr(&src, i % 7 ? "mot&fin " : "😀é ");
	strbuf_addstr(&src, "fin**\n\nListe :\n");
	for (int i = 0; i < 40; i++)
		strbuf_addf(&src, "- élément [n°%d](https://e.org/%d) & <suite>\n", i, i);
	static const enum markup_target targets[] = { MARKUP_TELEGRAM, MARKUP_MATRIX };
	static const enum markup_unit units[] = { MARKUP_UTF16, MARKUP_BYTES, MARKUP_UTF16_TEXT };
	for (size_t t = 0; t < 2; t++)
		for (size_t u = 0; u < 3; u++) {
			struct strbuf html = STRBUF_INIT;
			markup_render(src.buf, src.len, targets[t], &html);
			size_t n, limit = 500;
			char **parts = markup_split(html.buf, html.len, limit, units[u], &n);
			assert_true(n >= 4);
			struct strbuf joined_plain = STRBUF_INIT;
			for (size_t i = 0; i < n; i++) {
				assert_well_formed(parts[i]);
				if (units[u] == MARKUP_BYTES)
					assert_true(strlen(parts[i]) <= limit);
				else if (units[u] == MARKUP_UTF16)
					assert_true(utf16_units(parts[i]) <= limit);
				else
					assert_true(visible_units(parts[i]) <= limit);
				assert_true(strlen(parts[i]) > 0);
				/* every part of the first paragraph is bold */
				if (i == 0 || (i == 1 && strstr(parts[0], "fin</") == NULL))
					assert_true(!strncmp(parts[i], targets[t] == MARKUP_TELEGRAM ? "<b>" :
							     "<p><strong>", 3 + 8 * (targets[t] == MARKUP_MATRIX)));
				char *pl = markup_html_to_plain(parts[i], strlen(parts[i]));
				strbuf_addstr(&joined_plain, pl);
				free(pl);
			}
			/* nothing lost: the text survives, up to whitespace at the cuts */
			char *plain = markup_to_plain(src.buf);
			size_t a = 0, b = 0;
			while (plain[a] && joined_plain.buf[b]) {
				if (plain[a] == ' ' || plain[a] == '\n' || plain[a] == '\r') {
					a++;
					continue;
				}
				if (joined_plain.buf[b] == ' ' || joined_plain.buf[b] == '\n') {
					b++;
					continue;
				}
				/* a list item cut in two shows a second bullet */
				if (!strncmp(joined_plain.buf + b, "• ", 4) && strncmp(plain + a, "• ", 4)) {
					b += 4;
					continue;
				}
				assert_int_equal(plain[a], joined_plain.buf[b]);
				a++;
				b++;
			}
			free(plain);
			strbuf_release(&joined_plain);
			markup_parts_free(parts, n);
			strbuf_release(&html);
		}
	strbuf_release(&src);
}

static void split_prefers_paragraphs_then_lines(void **state)
{
	(void)state;
	struct strbuf src = STRBUF_INIT;
	for (int i = 0; i < 3; i++) {
		for (int j = 0; j < 30; j++)
			strbuf_addstr(&src, "abcdefghi ");
		strbuf_addstr(&src, "\n\n");
	}
	char *tg = markup_to_telegram_html(src.buf);
	size_t n;
	char **parts = markup_split(tg, strlen(tg), 700, MARKUP_UTF16, &n);
	assert_int_equal(n, 2);
	assert_int_equal(strlen(parts[0]), 300 + 2 + 300 - 1); /* two paragraphs, no trailing space */
	markup_parts_free(parts, n);
	/* a short text is one part, unchanged */
	parts = markup_split("court &amp; <b>net</b>", 22, 4096, MARKUP_UTF16_TEXT, &n);
	assert_int_equal(n, 1);
	assert_string_equal(parts[0], "court &amp; <b>net</b>");
	markup_parts_free(parts, n);
	/* Telegram's count: tags are free, an entity is one unit */
	parts = markup_split("<b>&amp;&amp;&amp;&amp;</b>", 27, 4, MARKUP_UTF16_TEXT, &n);
	assert_int_equal(n, 1);
	markup_parts_free(parts, n);
	parts = markup_split("<b>&amp;&amp;&amp;&amp;</b>", 27, 3, MARKUP_UTF16_TEXT, &n);
	assert_int_equal(n, 2);
	assert_string_equal(parts[0], "<b>&amp;&amp;&amp;</b>");
	assert_string_equal(parts[1], "<b>&amp;</b>");
	markup_parts_free(parts, n);
	/* an astral character is two UTF-16 units and is never cut */
	parts = markup_split("😀😀😀", 12, 4, MARKUP_UTF16, &n);
	assert_int_equal(n, 2);
	assert_string_equal(parts[0], "😀😀");
	markup_parts_free(parts, n);
	parts = markup_split("", 0, 10, MARKUP_BYTES, &n);
	assert_int_equal(n, 1);
	assert_string_equal(parts[0], "");
	markup_parts_free(parts, n);
	free(tg);
	strbuf_release(&src);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(renders_each_target),
		cmocka_unit_test(plain_text_survives),
		cmocka_unit_test(markers_nest_and_pair_nearest),
		cmocka_unit_test(html_to_plain_matches_plain),
		cmocka_unit_test(check_reports_line_and_column),
		cmocka_unit_test(split_keeps_tags_entities_and_characters),
		cmocka_unit_test(split_prefers_paragraphs_then_lines),
	};
	return cmocka_run_group_tests_name("markup", tests, NULL, NULL);
}
