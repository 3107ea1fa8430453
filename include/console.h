/*
 * console.h - the terminal chat: the same bot logic as the chat transports,
 * one question per line.  With a terminal on stdin it offers line editing
 * and history (libedit); from a pipe it reads plain lines, so scripts and
 * tests can drive it.
 */
#ifndef FAQBOT_CONSOLE_H
#define FAQBOT_CONSOLE_H

#include <stdio.h>

#include "bot.h"

/* Runs until end of input or "/quit"; returns 0. */
int console_run(struct bot *b, FILE *in, FILE *out, int interactive);

#endif
