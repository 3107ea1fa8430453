/*
 * report.h - the FAQ editors' feedback loop: questions the bot could not
 * answer well, grouped by their analysed terms (so "combien ça coûte" and
 * "ça coûte combien ?" are one line), most frequent first; or, as JSON,
 * draft entries in the FAQ's own shape, ready to paste and complete.
 */
#ifndef FAQBOT_REPORT_H
#define FAQBOT_REPORT_H

#include <stdint.h>

#include "index.h"
#include "store.h"
#include "strbuf.h"

/* Appends the report of records since `since` (wall ms) to out. */
int report_build(struct store *st, struct index *idx, int64_t since, int json, struct strbuf *out);

#endif
