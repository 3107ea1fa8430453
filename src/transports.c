/*
 * transports.c - the table of the transports faqbot has.  Adding a
 * transport adds its row here; main.c, loop.c and http.c stay as they are.
 * See "Adding a transport" in README.md.
 */
#include "matrix.h"
#include "telegram.h"
#include "transport.h"
#include "util.h"

const struct transport_kind transport_kinds[] = {
	{ "telegram", tg_configured, tg_config_check, tg_from_config },
	{ "matrix", mx_configured, mx_config_check, mx_from_config },
};
const size_t n_transport_kinds = ARRAY_LEN(transport_kinds);

size_t transports_configured(const struct config *c)
{
	size_t n = 0;
	for (size_t i = 0; i < n_transport_kinds; i++)
		n += transport_kinds[i].configured(c) ? 1 : 0;
	return n;
}
