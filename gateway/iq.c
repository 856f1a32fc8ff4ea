/* iq.c - iq requests to the gateway's addresses: service discovery (XEP-0030), the gateway
 * prompt (XEP-0100), version (XEP-0092), ping (XEP-0199), entity capabilities (XEP-0115), and the
 * entry points of the admin commands (admin.c); results and errors go to the modules that asked.
 *
 * Who answers is decided by the address an iq is sent to (iq_classify()), on the link of one
 * component domain C:
 *
 *   T_COMPONENT  C (no localpart)                    the gateway itself: identity gateway/sip
 *   T_NETWORK    sip.example@C (escaped mode only)   a peer network, the JID of sip:sip.example:
 *                                                    identity gateway/sip named after the peer
 *   T_ACCOUNT    bob@C, bob\40sip.example@C          a SIP user's bare JID: the gateway answers
 *                                                    as a server does for its accounts
 *                                                    (XEP-0030 3.1: account/registered)
 *   T_CLIENT     bob@C/phone                         a SIP user's full JID (the resources of the
 *                                                    presence the gateway sends): client/pc with
 *                                                    the features the gateway carries to SIP users
 *
 * A JID of a domain no peer behind C owns is item-not-found, an unmappable one jid-malformed,
 * whatever the request: one peer network's component never answers for another's users.  The
 * answers do not depend on whether the SIP user exists (the gateway does not know), so they
 * reveal nothing about accounts; a bare JID's disco#items are empty (its resources are
 * presence, which only approved watchers see).
 *
 * Every request is a row of iq_rules (type, payload namespace, the targets it applies to);
 * anything else is service-unavailable (RFC 6120 8.4), a get or set without an id or with other
 * than one payload bad-request.  The disco#info features of a target are the namespaces of its
 * rows plus the rows of iq_features, so nothing is claimed that no handler or mapping does.
 *
 * Replies go back from the address the request was sent to: ejabberd closes a component stream
 * on a reply without 'from' or one that keeps type='get' (iq_result()).
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>
#include <strophe.h>

#include "../mapping/addr.h"
#include "../mapping/map.h"
#include "../xmpp/xmpp.h"
#include "gw.h"

#define NS_DISCO_INFO "http://jabber.org/protocol/disco#info"
#define NS_DISCO_ITEMS "http://jabber.org/protocol/disco#items"
#define NS_GATEWAY "jabber:iq:gateway"
#define NS_VERSION "jabber:iq:version"
#define NS_PING "urn:xmpp:ping"
#define NS_CAPS "http://jabber.org/protocol/caps"
#define NS_CHATSTATES "http://jabber.org/protocol/chatstates"
#define NS_RECEIPTS "urn:xmpp:receipts"
#define NS_MARKERS "urn:xmpp:chat-markers:0"
#define NS_MUC "http://jabber.org/protocol/muc"

#define NROWS(t) (sizeof(t) / sizeof((t)[0]))
#define IQ_MAX_FEATURES 16
#define IQ_MAX_TYPED 1024	/* bytes of a typed SIP address (XEP-0100 prompt) */
#define IQ_CLIENT_NAME "simplegw (SIP)"	/* the identity of a SIP user's full JID */

enum iq_target {
	T_COMPONENT = 1u << 0,
	T_NETWORK = 1u << 1,
	T_ACCOUNT = 1u << 2,
	T_CLIENT = 1u << 3,
};
#define T_ALL (T_COMPONENT | T_NETWORK | T_ACCOUNT | T_CLIENT)

/* One request being answered. */
struct iq_req {
	struct gw *gw;
	struct xmpp_link *link;
	xmpp_stanza_t *iq, *payload;
	const char *from, *to;
	enum iq_target target;
	/* T_NETWORK, T_ACCOUNT, T_CLIENT: the peer network of the address; T_COMPONENT: the one
	 * peer the component serves, NULL when it serves several (escaped mode) */
	const struct conf_peer *peer;
};

/* ---------------------------------------------------------------- stanzas */

static void iq_send(struct xmpp_link *link, xmpp_stanza_t *s)
{
	xmpp_link_send(link, s);
	xmpp_stanza_release(s);
}

static void iq_error(struct iq_req *r, const char *condition, const char *text)
{
	log_debug("iq %s %s from %s to %s: %s", xmpp_stanza_get_type(r->iq),
		  r->payload && xmpp_stanza_get_ns(r->payload) ? xmpp_stanza_get_ns(r->payload) : "-",
		  r->from ? r->from : "-", r->to ? r->to : "-", condition);
	iq_send(r->link, map_error_reply(r->gw->xctx, r->iq, condition, text));
}

static xmpp_stanza_t *iq_tag(struct gw *gw, const char *name, const char *ns)
{
	return map_tag(gw->xctx, name, ns);
}

/* <name>text</name> added to parent. */
static void iq_add_text(struct gw *gw, xmpp_stanza_t *parent, const char *name, const char *text)
{
	map_text_child(gw->xctx, parent, name, text, strlen(text));
}

/* An iq result to the request (RFC 6120 8.2.3): type='result', the same id, from the address
 * the request was sent to, to its sender.  ejabberd closes the component stream on a reply that
 * keeps type='get' or lacks 'from' (improper-addressing); libstrophe's xmpp_stanza_reply() does
 * both.  payload (may be NULL) passes to the result, which is sent. */
static void iq_result(struct iq_req *r, xmpp_stanza_t *payload)
{
	xmpp_stanza_t *res = xmpp_iq_new(r->gw->xctx, "result", xmpp_stanza_get_id(r->iq));

	if (!res)
		gw_fatal("out of memory");
	xmpp_stanza_set_from(res, r->to ? r->to : xmpp_link_domain(r->link));
	if (r->from)
		xmpp_stanza_set_to(res, r->from);
	if (payload)
		xmpp_stanza_add_child_ex(res, payload, 0);
	iq_send(r->link, res);
}

/* ---------------------------------------------------------------- what each target is */

/* 1 if the peer takes part in rooms (RFC 7702) through the gateway. */
static int peer_has_rooms(const struct gw *gw, const struct conf_peer *p)
{
	return gw->conf->groupchat_enabled && p->groupchat && (p->services & CONF_SVC_GROUPCHAT);
}

/* Extra features (those that are not iq namespaces): a SIP user's chats carry chat states
 * and receipts in both chat modes (pager.c, session.c), chat markers in pager mode only; a
 * component or network whose peer takes part in groupchat hosts the peer's rooms as
 * room@<its JID> (groupchat.c).  applies NULL: always. */
static int applies_markers(const struct iq_req *r)
{
	return r->peer && !map_peer_chat_sessions(r->peer);
}

static int applies_muc(const struct iq_req *r)
{
	const struct conf *conf = r->gw->conf;

	if (r->target == T_NETWORK)
		return peer_has_rooms(r->gw, r->peer);
	for (size_t i = 0; i < conf->npeers; i++)
		if (gw_strcaseeq(conf->peers[i]->component, xmpp_link_domain(r->link)) &&
		    peer_has_rooms(r->gw, conf->peers[i]))
			return 1;
	return 0;
}

static const struct iq_feature {
	const char *var;
	unsigned targets;
	int (*applies)(const struct iq_req *r);
} iq_features[] = {
	{ NS_CAPS, T_CLIENT, NULL },
	{ NS_CHATSTATES, T_CLIENT, NULL },
	{ NS_RECEIPTS, T_CLIENT, NULL },
	{ NS_MARKERS, T_CLIENT, applies_markers },
	{ NS_MUC, T_COMPONENT | T_NETWORK, applies_muc },
};

static const struct iq_identity *target_identity(const struct iq_req *r, struct iq_identity *id)
{
	memset(id, 0, sizeof(*id));
	switch (r->target) {
	case T_COMPONENT:
		*id = (struct iq_identity){ "gateway", "sip", NULL, "SIP/SIMPLE gateway" };
		break;
	case T_NETWORK:
		*id = (struct iq_identity){ "gateway", "sip", NULL, r->peer->name };
		break;
	case T_ACCOUNT:
		*id = (struct iq_identity){ "account", "registered", NULL, NULL };
		break;
	case T_CLIENT:
		*id = (struct iq_identity){ "client", "pc", NULL, IQ_CLIENT_NAME };
		break;
	}
	return id;
}

static size_t target_features(const struct iq_req *r, const char **out, size_t cap);

/* ---------------------------------------------------------------- XEP-0115 */

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int cmp_identity(const void *a, const void *b)
{
	const struct iq_identity *x = *(const struct iq_identity *const *)a;
	const struct iq_identity *y = *(const struct iq_identity *const *)b;
	int c = strcmp(x->category, y->category);

	if (!c)
		c = strcmp(x->type, y->type);
	if (!c)
		c = strcmp(x->lang ? x->lang : "", y->lang ? y->lang : "");
	return c;
}

int iq_caps_ver(const struct iq_identity *ids, size_t nids, const char *const *features,
		size_t nfeatures, char *buf, size_t len)
{
	const struct iq_identity **idv = gw_xcalloc(nids ? nids : 1, sizeof(*idv));
	const char **fv = gw_xcalloc(nfeatures ? nfeatures : 1, sizeof(*fv));
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned mdlen = 0;
	size_t n = 1, off = 0;
	char *s;
	int ok;

	for (size_t i = 0; i < nids; i++) {
		idv[i] = &ids[i];
		n += strlen(ids[i].category) + strlen(ids[i].type) + 4 +
		     strlen(ids[i].lang ? ids[i].lang : "") + strlen(ids[i].name ? ids[i].name : "");
	}
	for (size_t i = 0; i < nfeatures; i++) {
		fv[i] = features[i];
		n += strlen(features[i]) + 1;
	}
	/* 5.1: identities by category, type and xml:lang, features, each in i;octet order */
	qsort(idv, nids, sizeof(*idv), cmp_identity);
	qsort(fv, nfeatures, sizeof(*fv), cmp_str);
	s = gw_xmalloc(n);
	for (size_t i = 0; i < nids; i++)
		off += (size_t)snprintf(s + off, n - off, "%s/%s/%s/%s<", idv[i]->category,
					idv[i]->type, idv[i]->lang ? idv[i]->lang : "",
					idv[i]->name ? idv[i]->name : "");
	for (size_t i = 0; i < nfeatures; i++)
		off += (size_t)snprintf(s + off, n - off, "%s<", fv[i]);
	ok = EVP_Digest(s, off, md, &mdlen, EVP_sha1(), NULL) == 1 && mdlen == 20;
	free(s);
	free(idv);
	free(fv);
	if (!ok || len < 29)	/* base64 of 20 bytes: 28 characters */
		return -1;
	return EVP_EncodeBlock((unsigned char *)buf, md, 20);
}

/* The ver of what a SIP user's full JID of peer answers (T_CLIENT), computed once per chat
 * mode: it depends on nothing else. */
static const char *client_caps_ver(struct gw *gw, const struct conf_peer *peer)
{
	struct iq_req r = { .gw = gw, .target = T_CLIENT, .peer = peer };
	char *ver = gw->caps_ver[applies_markers(&r)];
	const char *features[IQ_MAX_FEATURES];
	struct iq_identity id;
	size_t n;

	if (ver[0])
		return ver;
	n = target_features(&r, features, NROWS(features));
	if (iq_caps_ver(target_identity(&r, &id), 1, features, n, ver, sizeof(gw->caps_ver[0])) < 0)
		gw_fatal("iq: the XEP-0115 hash failed");
	log_debug("XEP-0115 ver of a SIP user (%s mode): %s", applies_markers(&r) ? "pager" :
		  "session", ver);
	return ver;
}

void iq_caps_add(struct gw *gw, const struct conf_peer *peer, xmpp_stanza_t *presence)
{
	xmpp_stanza_t *c = iq_tag(gw, "c", NS_CAPS);

	xmpp_stanza_set_attribute(c, "hash", "sha-1");
	xmpp_stanza_set_attribute(c, "node", IQ_CAPS_NODE);
	xmpp_stanza_set_attribute(c, "ver", client_caps_ver(gw, peer));
	xmpp_stanza_add_child_ex(presence, c, 0);
}

/* ---------------------------------------------------------------- XEP-0100 */

static int is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* 1 if s (n bytes) starts with a URI scheme and its colon (RFC 3986 3.1) before any '@'. */
static int has_scheme(const char *s, size_t n)
{
	size_t i = 0;

	if (!n || !((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= 'A' && s[0] <= 'Z')))
		return 0;
	while (i < n && ((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
			 (s[i] >= '0' && s[i] <= '9') || s[i] == '+' || s[i] == '-' || s[i] == '.'))
		i++;
	return i < n && s[i] == ':';
}

int iq_gateway_jid(const struct conf *conf, const struct conf_peer *only, const char *typed,
		   char *jid, size_t len, const char **condition, const char **text)
{
	char uri[MAP_URI_MAX], host[MAP_JID_MAX + 1], full[MAP_JID_MAX + 1];
	const struct conf_peer *peer;
	const char *p = typed, *end = typed + strlen(typed), *lt, *gt, *user;
	int r;

	*condition = "not-acceptable";
	while (p < end && is_space(*p))
		p++;
	while (end > p && is_space(end[-1]))
		end--;
	/* a name-addr ("Bob" <sip:bob@sip.example>): the addr-spec between the last '<' and '>' */
	if ((lt = memrchr(p, '<', (size_t)(end - p)))) {
		gt = memchr(lt, '>', (size_t)(end - lt));
		if (!gt || gt + 1 != end) {
			*text = "an address in angle brackets must end with '>'";
			return -1;
		}
		p = lt + 1;
		end = gt;
		while (p < end && is_space(*p))
			p++;
		while (end > p && is_space(end[-1]))
			end--;
	}
	if (p == end) {
		*text = "no address";
		return -1;
	}
	if ((size_t)(end - p) > IQ_MAX_TYPED) {
		*text = "the address is too long";
		return -1;
	}
	if (memchr(p, '@', (size_t)(end - p)) || has_scheme(p, (size_t)(end - p))) {
		snprintf(uri, sizeof(uri), "%s%.*s", has_scheme(p, (size_t)(end - p)) ? "" : "sip:",
			 (int)(end - p), p);
	} else if (only) {
		/* a user part alone, where one peer network is meant */
		snprintf(uri, sizeof(uri), "sip:%.*s@%s", (int)(end - p), p, only->domain);
	} else {
		*text = "write the address as user@domain (several SIP domains are reachable here)";
		return -1;
	}
	if ((r = map_sip_domain(uri, host, sizeof(host))) < 0) {
		*text = r == MAP_ADDR_ESCHEME ?
			"only sip:, sips:, im: and pres: addresses can be reached (not tel:)" :
			map_addr_strerror(r);
		return -1;
	}
	user = strchr(uri, ':') + 1;
	if (!memchr(user, '@', strcspn(user, ";?"))) {
		*text = "not the address of a user";
		return -1;
	}
	if (!(peer = conf_peer_by_domain(conf, host))) {
		*condition = "item-not-found";
		*text = "no SIP peer network reachable through this gateway has that domain";
		return -1;
	}
	/* the contact's bare JID: a gr= parameter would be a resource */
	if ((r = map_peer_sip_to_jid(peer, uri, full, sizeof(full))) < 0 ||
	    (r = map_jid_bare(full, jid, len)) < 0) {
		*text = map_addr_strerror(r);
		return -1;
	}
	return 0;
}

/* ---------------------------------------------------------------- handlers */

static void iq_ping(struct iq_req *r)
{
	iq_result(r, NULL);
}

static void iq_version(struct iq_req *r)
{
	xmpp_stanza_t *q = iq_tag(r->gw, "query", NS_VERSION);

	/* no <os/>: XEP-0092 7 wants a way to withhold it, and it tells an attacker more than it
	 * tells a user (docs/operations.md) */
	iq_add_text(r->gw, q, "name", "simplegw");
	iq_add_text(r->gw, q, "version", SIMPLEGW_VERSION);
	iq_result(r, q);
}

static void iq_command(struct iq_req *r)
{
	admin_command(r->gw, r->link, r->iq, r->payload);
}

/* desc (freed) with a and b (may be NULL) appended: a new string. */
static char *str_append(char *desc, const char *a, const char *b)
{
	char *s = gw_xasprintf("%s%s%s", desc, a, b ? b : "");

	free(desc);
	return s;
}

/* The XEP-0100 prompt: what to type, and which domains it may name. */
static void iq_gateway_get(struct iq_req *r)
{
	const struct conf *conf = r->gw->conf;
	xmpp_stanza_t *q = iq_tag(r->gw, "query", NS_GATEWAY);
	char *desc;

	if (r->target == T_NETWORK) {
		desc = gw_xasprintf("Enter the address of the person at %s you would like to contact: "
				    "the user name, or sip:user@%s.", r->peer->domain,
				    r->peer->domain);
	} else {
		desc = gw_xstrdup("Enter the SIP address of the person you would like to contact, "
				  "as sip:user@domain or user@domain");
		if (r->peer) {
			desc = str_append(desc, " (a user name alone is at ", r->peer->domain);
			desc = str_append(desc, ")", NULL);
		}
		for (size_t i = 0; i < conf->npeers; i++)
			desc = str_append(desc, i ? ", " : ". SIP domains reachable here: ",
					  conf->peers[i]->domain);
		desc = str_append(desc, ".", NULL);
	}
	iq_add_text(r->gw, q, "desc", desc);
	iq_add_text(r->gw, q, "prompt", "SIP address");
	free(desc);
	iq_result(r, q);
}

/* A typed address -> the JID to write to, in <jid/> (XEP-0100 6.3) and, for clients written
 * against gateways that answered so, in <prompt/> too. */
static void iq_gateway_set(struct iq_req *r)
{
	xmpp_stanza_t *prompt = NULL, *q;
	const char *condition, *text;
	char jid[MAP_JID_MAX + 1], *typed;
	size_t nprompt = 0;

	for (xmpp_stanza_t *c = xmpp_stanza_get_children(r->payload); c;
	     c = xmpp_stanza_get_next(c))
		if (xmpp_stanza_is_tag(c) && strcmp(xmpp_stanza_get_name(c), "prompt") == 0 &&
		    !nprompt++)
			prompt = c;
	if (nprompt != 1) {
		iq_error(r, "bad-request", "one <prompt/> with the address is expected");
		return;
	}
	typed = xmpp_stanza_get_text(prompt);
	if (iq_gateway_jid(r->gw->conf, r->peer, typed ? typed : "", jid, sizeof(jid), &condition,
			   &text) < 0) {
		log_info("gateway prompt from %s: \"%.100s\": %s (%s)", r->from ? r->from : "-",
			 typed ? typed : "", condition, text);
		if (typed)
			xmpp_free(r->gw->xctx, typed);
		iq_error(r, condition, text);
		return;
	}
	if (typed)
		xmpp_free(r->gw->xctx, typed);
	q = iq_tag(r->gw, "query", NS_GATEWAY);
	iq_add_text(r->gw, q, "jid", jid);
	iq_add_text(r->gw, q, "prompt", jid);
	iq_result(r, q);
}

static void iq_add_identity(struct gw *gw, xmpp_stanza_t *query, const struct iq_identity *id)
{
	xmpp_stanza_t *el = iq_tag(gw, "identity", NULL);

	xmpp_stanza_set_attribute(el, "category", id->category);
	xmpp_stanza_set_attribute(el, "type", id->type);
	if (id->lang)
		xmpp_stanza_set_attribute(el, "xml:lang", id->lang);
	if (id->name)
		xmpp_stanza_set_attribute(el, "name", id->name);
	xmpp_stanza_add_child_ex(query, el, 0);
}

/* The disco#info of r's target into query: its identity and features, sorted. */
static void fill_info(struct iq_req *r, xmpp_stanza_t *query)
{
	const char *features[IQ_MAX_FEATURES];
	struct iq_identity id;
	size_t n = target_features(r, features, NROWS(features));

	qsort(features, n, sizeof(features[0]), cmp_str);
	iq_add_identity(r->gw, query, target_identity(r, &id));
	for (size_t i = 0; i < n; i++) {
		xmpp_stanza_t *f = iq_tag(r->gw, "feature", NULL);

		xmpp_stanza_set_attribute(f, "var", features[i]);
		xmpp_stanza_add_child_ex(query, f, 0);
	}
}

static void iq_disco_info(struct iq_req *r)
{
	const char *node = xmpp_stanza_get_attribute(r->payload, "node");
	xmpp_stanza_t *q = iq_tag(r->gw, "query", NS_DISCO_INFO);
	size_t nlen = strlen(IQ_CAPS_NODE);

	if (!node) {
		fill_info(r, q);
		iq_result(r, q);
		return;
	}
	xmpp_stanza_set_attribute(q, "node", node);
	/* the commands' nodes (XEP-0050) */
	if (r->target == T_COMPONENT && admin_disco_info(r->gw, r->from, node, q)) {
		iq_result(r, q);
		return;
	}
	/* the node of the caps a SIP user's presence carries: what its full JID answers */
	if ((r->target == T_ACCOUNT || r->target == T_CLIENT) &&
	    strncmp(node, IQ_CAPS_NODE, nlen) == 0 && node[nlen] == '#' &&
	    strcmp(node + nlen + 1, client_caps_ver(r->gw, r->peer)) == 0) {
		enum iq_target t = r->target;

		r->target = T_CLIENT;
		fill_info(r, q);
		r->target = t;
		iq_result(r, q);
		return;
	}
	xmpp_stanza_release(q);
	iq_error(r, "item-not-found", NULL);
}

/* The component's items: every peer network (the JID sip:<its domain> maps to: the component in
 * domain mode, <domain>@<component> in escaped mode) but the one asked, and the XMPP MUC services
 * SIP users may join when a peer takes part in groupchat.  The node of the commands goes to
 * admin.c. */
static void iq_disco_items(struct iq_req *r)
{
	const struct conf *conf = r->gw->conf;
	const char *node = xmpp_stanza_get_attribute(r->payload, "node");
	xmpp_stanza_t *q = iq_tag(r->gw, "query", NS_DISCO_ITEMS);
	int rooms = 0;

	if (node) {
		if (r->target != T_COMPONENT || strcmp(node, NS_COMMANDS) != 0) {
			xmpp_stanza_release(q);
			iq_error(r, "item-not-found", NULL);
			return;
		}
		xmpp_stanza_set_attribute(q, "node", node);
		admin_disco_items(r->gw, r->from, r->to, q);
		iq_result(r, q);
		return;
	}
	for (size_t i = 0; r->target == T_COMPONENT && i < conf->npeers; i++) {
		const struct conf_peer *p = conf->peers[i];
		char uri[MAP_URI_MAX], jid[MAP_JID_MAX + 1];
		xmpp_stanza_t *item;

		rooms |= peer_has_rooms(r->gw, p);
		snprintf(uri, sizeof(uri), "sip:%s", p->domain);
		if (map_peer_sip_to_jid(p, uri, jid, sizeof(jid)) < 0 || gw_strcaseeq(jid, r->to))
			continue;
		item = iq_tag(r->gw, "item", NULL);
		xmpp_stanza_set_attribute(item, "jid", jid);
		xmpp_stanza_set_attribute(item, "name", p->name);
		xmpp_stanza_add_child_ex(q, item, 0);
	}
	for (size_t i = 0; rooms && i < conf->nmuc_services; i++) {
		xmpp_stanza_t *item = iq_tag(r->gw, "item", NULL);

		xmpp_stanza_set_attribute(item, "jid", conf->muc_services[i]);
		xmpp_stanza_set_attribute(item, "name", "Rooms SIP users can join");
		xmpp_stanza_add_child_ex(q, item, 0);
	}
	iq_result(r, q);
}

/* The requests answered: type, payload namespace, the targets, handler.  Their namespaces are
 * the targets' disco#info features. */
static const struct iq_rule {
	const char *type;
	const char *ns;
	unsigned targets;
	void (*handle)(struct iq_req *r);
} iq_rules[] = {
	{ "get", NS_DISCO_INFO, T_ALL, iq_disco_info },
	{ "get", NS_DISCO_ITEMS, T_COMPONENT | T_NETWORK | T_ACCOUNT, iq_disco_items },
	{ "get", NS_GATEWAY, T_COMPONENT | T_NETWORK, iq_gateway_get },
	{ "set", NS_GATEWAY, T_COMPONENT | T_NETWORK, iq_gateway_set },
	{ "get", NS_VERSION, T_COMPONENT, iq_version },
	/* a full JID is a SIP device the gateway cannot ping for the asker: not answered for it */
	{ "get", NS_PING, T_COMPONENT | T_NETWORK | T_ACCOUNT, iq_ping },
	{ "set", NS_COMMANDS, T_COMPONENT, iq_command },
};

static size_t target_features(const struct iq_req *r, const char **out, size_t cap)
{
	size_t n = 0;

	for (size_t i = 0; i < NROWS(iq_rules); i++) {
		int dup = 0;

		if (!(iq_rules[i].targets & r->target))
			continue;
		for (size_t k = 0; k < n; k++)
			dup |= strcmp(out[k], iq_rules[i].ns) == 0;
		if (!dup && n < cap)
			out[n++] = iq_rules[i].ns;
	}
	for (size_t i = 0; i < NROWS(iq_features); i++)
		if ((iq_features[i].targets & r->target) &&
		    (!iq_features[i].applies || iq_features[i].applies(r)) && n < cap)
			out[n++] = iq_features[i].var;
	return n;
}

/* ---------------------------------------------------------------- dispatch */

/* Which of the gateway's entities r->to names (see the top of the file).  0, or -1 with the
 * error condition to answer. */
static int iq_classify(struct iq_req *r, const char **condition)
{
	const struct conf *conf = r->gw->conf;
	const char *domain = xmpp_link_domain(r->link), *to = r->to;
	const char *slash = to ? strchr(to, '/') : NULL, *at = to ? strchr(to, '@') : NULL;
	char uri[MAP_URI_MAX];
	int err;

	if (!to || !at || (slash && at > slash)) {
		size_t dlen = to ? (slash ? (size_t)(slash - to) : strlen(to)) : 0, n = 0;

		if (!to)	/* servers stamp it; one that does not means the component */
			r->to = domain;
		if (to && (dlen != strlen(domain) || strncasecmp(to, domain, dlen) != 0)) {
			*condition = "service-unavailable";
			return -1;
		}
		r->target = T_COMPONENT;
		for (size_t i = 0; i < conf->npeers; i++)
			if (gw_strcaseeq(conf->peers[i]->component, domain)) {
				r->peer = conf->peers[i];
				if (++n > 1)
					break;
			}
		if (n != 1)
			r->peer = NULL;
		return 0;
	}
	r->peer = map_peer_for_jid(conf, domain, to, uri, sizeof(uri), &err);
	if (!r->peer) {
		*condition = err == MAP_ADDR_EDOMAIN ? "item-not-found" : "jid-malformed";
		return -1;
	}
	if (!strchr(uri + 4, '@')) {
		/* sip:<domain>: the peer network itself (escaped mode) */
		if (slash) {
			*condition = "service-unavailable";
			return -1;
		}
		r->target = T_NETWORK;
		return 0;
	}
	r->target = slash ? T_CLIENT : T_ACCOUNT;
	return 0;
}

void iq_from_xmpp(struct gw *gw, struct xmpp_link *link, xmpp_stanza_t *iq)
{
	struct iq_req r = { .gw = gw, .link = link, .iq = iq, .from = xmpp_stanza_get_from(iq),
			    .to = xmpp_stanza_get_to(iq) };
	const char *type = xmpp_stanza_get_type(iq), *ns, *condition;
	size_t npayload = 0;

	if (!type || strcmp(type, "result") == 0 || strcmp(type, "error") == 0) {
		if (!pager_iq_reply(gw->pager, link, iq) &&
		    !(gw->presence && presence_iq_reply(gw->presence, link, iq)))
			log_debug("unexpected iq %s from %s: dropped", type ? type : "without type",
				  r.from ? r.from : "-");
		return;
	}
	for (xmpp_stanza_t *c = xmpp_stanza_get_children(iq); c; c = xmpp_stanza_get_next(c))
		if (xmpp_stanza_is_tag(c) && !npayload++)
			r.payload = c;
	if ((strcmp(type, "get") != 0 && strcmp(type, "set") != 0) || npayload != 1 ||
	    !xmpp_stanza_get_id(iq)) {
		log_info("iq from %s: type %s with %zu payloads%s: bad-request",
			 r.from ? r.from : "-", type, npayload,
			 xmpp_stanza_get_id(iq) ? "" : " and no id");
		iq_error(&r, "bad-request", NULL);
		return;
	}
	if (iq_classify(&r, &condition) < 0) {
		iq_error(&r, condition, NULL);
		return;
	}
	ns = xmpp_stanza_get_ns(r.payload);
	for (size_t i = 0; ns && i < NROWS(iq_rules); i++)
		if (strcmp(type, iq_rules[i].type) == 0 && strcmp(ns, iq_rules[i].ns) == 0 &&
		    (iq_rules[i].targets & r.target)) {
			iq_rules[i].handle(&r);
			return;
		}
	iq_error(&r, "service-unavailable", NULL);
}
