/* admin.c - ad-hoc admin commands (XEP-0050, XEP-0133 style) for the JIDs of <admin>.
 * (Being written: until then every command is refused.) */
#include <string.h>

#include <strophe.h>

#include "../mapping/map.h"
#include "../xmpp/xmpp.h"
#include "gw.h"

int admin_allowed(const struct gw *gw, const char *from)
{
	size_t blen;

	if (!from)
		return 0;
	blen = strcspn(from, "/");
	for (size_t i = 0; i < gw->conf->nadmins; i++) {
		const char *a = gw->conf->admins[i];

		if (strlen(a) == blen && strncasecmp(a, from, blen) == 0)
			return 1;
	}
	return 0;
}

void admin_command(struct gw *gw, struct xmpp_link *link, xmpp_stanza_t *iq,
		   xmpp_stanza_t *command)
{
	xmpp_stanza_t *e = map_error_reply(gw->xctx, iq, admin_allowed(gw,
				xmpp_stanza_get_from(iq)) ? "feature-not-implemented" : "forbidden", NULL);

	xmpp_link_send(link, e);
	xmpp_stanza_release(e);
}

void admin_disco_items(struct gw *gw, const char *from, const char *to, xmpp_stanza_t *query)
{
}

int admin_disco_info(struct gw *gw, const char *from, const char *node, xmpp_stanza_t *query)
{
	return 0;
}
