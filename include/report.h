/*
 * report.h - the FAQ editors' feedback loop:
 *   - questions the bot could not answer well, grouped by their analysed
 *     terms (so "combien ça coûte" and "ça coûte combien ?" are one line),
 *     most frequent first;
 *   - each entry's helpfulness: 👍/👎 counts and the questions whose answer
 *     got a 👎 (feedback.h);
 *   - proposed phrasings: the questions users chose an entry for from a
 *     list, grouped per entry with their counts and distinct users
 *     (questions the FAQ already answers with that entry are left out; one
 *     another entry answers confidently is shown but not proposed).
 * With json, one change object an editor reviews, edits and applies:
 *   {"add_questions": {"entry id": ["question", ...]},
 *    "add_entries": [draft entries in the FAQ's shape, answer ""],
 *    "review": {"phrasings": [{entry, question, users, choices, votes,
 *               proposed}], "helpfulness": [{entry, up, down,
 *               down_questions}]}}
 * report_apply writes it into the FAQ file ("review" is information only;
 * drafts whose answer is still empty are skipped).  Chat text printed by
 * the text report is escaped (no terminal control, no forged lines).
 */
#ifndef FAQBOT_REPORT_H
#define FAQBOT_REPORT_H

#include <stdint.h>

#include "index.h"
#include "store.h"
#include "strbuf.h"

/* Appends the report of records since `since` (wall ms) to out. */
int report_build(struct store *st, struct index *idx, int64_t since, int json, struct strbuf *out);

/* Applies the change in change_path ("-": standard input) to the FAQ file
 * faq_path and writes the new FAQ to output: NULL replaces faq_path
 * atomically (a temporary file renamed over it) after keeping the old
 * one as faq_path.bak; "-" writes to standard output; else the file
 * output, written atomically, faq_path untouched.  The new FAQ must parse
 * (faq_parse) or nothing is written.  Lines for the user (what was added,
 * skipped, refused) are appended to msgs.  0, or -1. */
int report_apply(const char *change_path, const char *faq_path, const char *output, struct strbuf *msgs);
/* `faqbot apply [--faq F] [--output NEW|-] CHANGE.json`: parses its
 * arguments, applies, prints the messages; the exit status (0, 1, 2). */
int report_apply_cmd(int argc, char **argv, const char *default_faq);

#endif
