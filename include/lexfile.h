/*
 * lexfile.h - maps the compiled lexicon and thesaurus files read-only and
 * registers them with the text module (which does no I/O itself).
 *
 * Files: <dir>/<language>.lex (tools/gen_lexicon.py, from hunspell) and
 * <dir>/<language>.ths (tools/gen_thesaurus.py, from MyThes), for french
 * and english.  dir is the first of: $FAQBOT_LEXICON_DIR, <binary's
 * directory>/lexicon, <binary's directory>/../lexicon, <datadir>/lexicon
 * that holds any of them.  A missing lexicon is not an error: matching
 * falls back to Snowball alone, and lexfile_load says so in its log line.
 *
 * Ownership: the mappings live until the process exits (the registered
 * analyzers point into them).
 */
#ifndef FAQBOT_LEXFILE_H
#define FAQBOT_LEXFILE_H

/* Maps and registers what it finds; returns how many files it mapped.
 * Logs one line (info when all four are there, warning otherwise). */
int lexfile_load(const char *datadir);

/* Drops the tables' resident pages (they are clean: a later look-up reads
 * its page again from the page cache).  Building an index looks up every
 * word of the FAQ, which leaves megabytes of the tables resident that
 * answering rarely needs: called after each load of the FAQ. */
void lexfile_release(void);

#endif
