/* Shared helpers for the unit tests: build an index from JSON text. */
#ifndef FAQBOT_TEST_HELPERS_H
#define FAQBOT_TEST_HELPERS_H

#include <stdio.h>
#include <string.h>

#include "faq.h"
#include "index.h"

/* Parses json and builds its index; fails the test on any error. */
static inline struct index *index_from_json(const char *json)
{
	struct faq_diags d;
	faq_diags_init(&d);
	struct faq *f = faq_parse(json, strlen(json), "test.json", &d);
	for (size_t i = 0; i < d.n; i++)
		printf("  %s\n", d.items[i].text);
	struct index *idx = f ? index_build(f, &d) : NULL;
	faq_diags_release(&d);
	return idx;
}

static const char *const FR_FAQ =
	"{\"language\": \"french\", \"threshold\": 0.35,"
	" \"fallback\": {\"text\": \"Pas de réponse.\", \"url\": \"https://example.org/souscrire\"},"
	" \"synonyms\": [[\"PLH\", \"programme local de l'habitat\"], [\"numérique\", \"digital\"]],"
	" \"entries\": ["
	"  {\"id\": \"souscription\", \"questions\": [\"C'est quoi une étude en souscription ?\","
	"    \"comment fonctionne la souscription\"], \"answer\": \"Plusieurs souscripteurs financent l'étude.\"},"
	"  {\"id\": \"cout\", \"questions\": [\"Combien coûte la souscription ?\", \"quel est le prix\"],"
	"    \"answer\": \"Le ticket d'entrée est modeste.\", \"keywords\": [\"tarif\"]},"
	"  {\"id\": \"plh\", \"questions\": [\"Comment faire un PLH numérique ?\"],"
	"    \"answer\": \"En y réfléchissant à plusieurs.\"},"
	"  {\"id\": \"calendrier\", \"questions\": [\"Quand commence l'étude ?\"],"
	"    \"answer\": \"Les travaux démarrent au printemps, le tarif reste fixe.\"},"
	"  {\"id\": \"jumeau-a\", \"questions\": [\"Où se trouvent les archives ?\"], \"answer\": \"Ici.\"},"
	"  {\"id\": \"jumeau-b\", \"questions\": [\"Où se trouvent les archives ?\"], \"answer\": \"Là.\"}"
	" ]}";

#endif
