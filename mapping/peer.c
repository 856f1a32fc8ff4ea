/* peer.c - which peer network an address belongs to, and its form on the other side, in the
 * addressing mode (domain-preserving or escaped) that peer is configured for; and what the
 * mapping layer takes from a peer's own policy (document limits, the chat mode). */
#include <string.h>

#include "../gateway/gw.h"
#include "addr.h"
#include "map.h"

const struct conf_peer *map_peer_for_jid(const struct conf *conf, const char *component,
					 const char *jid, char *uri, size_t len, int *err)
{
	char host[MAP_JID_MAX + 1];
	int r = MAP_ADDR_EDOMAIN;

	for (size_t i = 0; i < conf->npeers; i++) {
		const struct conf_peer *p = conf->peers[i];

		if (!gw_strcaseeq(p->component, component))
			continue;
		if (p->addressing == CONF_ADDR_ESCAPED) {
			r = map_jid_to_sip_escaped(jid, component, uri, len);
			if (r >= 0 && map_sip_domain(uri, host, sizeof(host)) >= 0 &&
			    gw_strcaseeq(host, p->domain)) {
				*err = 0;
				return p;
			}
		} else {
			/* the JID's domain must be the peer's own: a stanza for another peer's user
			 * that reaches this component (one connection serving several domains, as
			 * ejabberd's listener with several hosts does) must not go to this peer */
			r = map_jid_to_sip(jid, 0, uri, len);
			if (r >= 0 && map_sip_domain(uri, host, sizeof(host)) >= 0 &&
			    gw_strcaseeq(host, p->domain)) {
				*err = 0;
				return p;
			}
		}
	}
	*err = r < 0 ? r : MAP_ADDR_EDOMAIN;
	return NULL;
}

int map_peer_sip_to_jid(const struct conf_peer *peer, const char *uri, char *jid, size_t len)
{
	if (peer->addressing == CONF_ADDR_ESCAPED)
		return map_sip_to_jid_escaped(uri, peer->component, jid, len);
	return map_sip_to_jid(uri, jid, len);
}

const struct conf_peer *map_peer_of_jid(const struct conf *conf, const char *jid)
{
	char domain[MAP_JID_MAX + 1], uri[MAP_URI_MAX];
	int err;

	if (map_jid_domain(jid, domain, sizeof(domain)) < 0 || !conf_peer_by_component(conf, domain))
		return NULL;
	return map_peer_for_jid(conf, domain, jid, uri, sizeof(uri), &err);
}

size_t map_doc_limit(const struct conf *conf, const struct conf_peer *peer)
{
	return peer && peer->max_document ? peer->max_document : conf->presence_max_doc;
}

int map_peer_chat_sessions(const struct conf_peer *peer)
{
	return peer->sessions && (peer->services & CONF_SVC_SESSIONS) != 0;
}
