/*
 * console.c - interactive chat on the terminal.  See console.h.
 *
 * Lines are capped (CONSOLE_MAX_LINE) so a pasted megabyte cannot grow
 * memory; the excess of an over-long line is read and dropped.  Built with
 * -DFAQBOT_NO_LIBEDIT (make LIBEDIT=no, as the container image is), a
 * terminal gets a prompt and plain lines, without editing or history.
 *
 * libedit decodes keystrokes with the C library's multibyte functions, so
 * in the "C" locale (a container's default) every byte of "ç" or "û" is
 * refused and "combien ça coûte" arrives as "combien a cote".  The bot
 * speaks UTF-8 both ways, so the terminal session sets a UTF-8 LC_CTYPE for
 * its duration: the user's own when it is UTF-8, else C.UTF-8.  Only
 * LC_CTYPE changes: LC_NUMERIC stays "C", so numbers in logs and JSON keep
 * their decimal point.
 */
#define _POSIX_C_SOURCE 200809L

#include "console.h"
#include "strbuf.h"
#include "util.h"

#ifndef FAQBOT_NO_LIBEDIT
#include <editline/readline.h>
#endif
#include <langinfo.h>
#include <locale.h>
#include <stdlib.h>
#include <string.h>

#define CONSOLE_MAX_LINE 65536

/* Reads one line into sb (without the newline); returns 0 at end of input. */
static int read_plain(FILE *in, struct strbuf *sb)
{
	strbuf_reset(sb);
	int c, any = 0;
	while ((c = fgetc(in)) != EOF) {
		any = 1;
		if (c == '\n')
			break;
		if (sb->len < CONSOLE_MAX_LINE)
			strbuf_addch(sb, (char)c);
	}
	if (sb->len && sb->buf[sb->len - 1] == '\r')
		strbuf_truncate(sb, sb->len - 1);
	return any;
}

#ifdef FAQBOT_NO_LIBEDIT
/* Built without libedit (make LIBEDIT=no): a prompt and plain lines. */
static int read_edit(struct strbuf *sb)
{
	fputs("vous> ", stdout);
	fflush(stdout);
	return read_plain(stdin, sb);
}
#else
static int read_edit(struct strbuf *sb)
{
	char *line = readline("vous> ");
	if (!line)
		return 0;
	strbuf_reset(sb);
	size_t n = strlen(line);
	strbuf_add(sb, line, n > CONSOLE_MAX_LINE ? CONSOLE_MAX_LINE : n);
	if (n)
		add_history(line);
	free(line);
	return 1;
}
#endif

static int codeset_is_utf8(void)
{
	const char *cs = nl_langinfo(CODESET);
	return cs && (!strcmp(cs, "UTF-8") || !strcmp(cs, "utf8"));
}

/*
 * Sets a UTF-8 LC_CTYPE for libedit; returns the previous LC_CTYPE (caller
 * frees, NULL when it could not be read) for console_locale_restore.  When no
 * UTF-8 locale exists, the C locale stays and accents are lost as before.
 */
static char *console_locale_set(void)
{
	const char *old = setlocale(LC_CTYPE, NULL);
	char *saved = old ? xstrdup(old) : NULL;
	if (setlocale(LC_CTYPE, "") && codeset_is_utf8())
		return saved;
	static const char *const utf8[] = { "C.UTF-8", "C.utf8", "en_US.UTF-8" };
	for (size_t i = 0; i < ARRAY_LEN(utf8); i++)
		if (setlocale(LC_CTYPE, utf8[i]) && codeset_is_utf8())
			return saved;
	(void)setlocale(LC_CTYPE, saved ? saved : "C"); /* back to what it was; "C" cannot fail */
	return saved;
}

static void console_locale_restore(char *saved)
{
	if (saved)
		(void)setlocale(LC_CTYPE, saved); /* it was in use a moment ago */
	free(saved);
}

static int is_blank(const char *s)
{
	for (; *s; s++)
		if (*s != ' ' && *s != '\t')
			return 0;
	return 1;
}

int console_run(struct bot *b, FILE *in, FILE *out, int interactive)
{
	struct strbuf line = STRBUF_INIT, text = STRBUF_INIT;
	char *saved_locale = NULL;
	if (interactive) {
		saved_locale = console_locale_set();
		fprintf(out, "faqbot : console (%zu questions). Tapez /aide pour l'aide, /quit pour sortir.\n",
			index_faq(bot_index(b))->n_entries);
#ifndef FAQBOT_NO_LIBEDIT
		using_history();
#endif
	}
	for (;;) {
		int ok = interactive ? read_edit(&line) : read_plain(in, &line);
		if (!ok)
			break;
		if (is_blank(line.buf))
			continue;
		if (!strcmp(line.buf, "/quit") || !strcmp(line.buf, "/exit"))
			break;
		struct inbound_msg m = { line.buf, line.len, CHAT_PRIVATE, 1, "console", '/' };
		struct reply r;
		bot_handle(b, &m, &r);
		strbuf_reset(&text);
		reply_format_plain(&r, &text);
		fprintf(out, "%s%s\n", interactive ? "bot> " : "", text.buf);
		(void)fflush(out); /* a closed terminal ends the next read */
		reply_release(&r);
	}
	strbuf_release(&line);
	strbuf_release(&text);
	if (interactive)
		console_locale_restore(saved_locale);
	return 0;
}
