/* sip.c - the SIP side on Sofia-SIP's transaction layer (nta): listening, peering trust, the
 * federation hub's policy and audit, and the requests outside dialogs.
 *
 * One nta agent binds the configured listen addresses.  Its default leg takes every request that
 * matches no dialog (sip_on_request): the peering trust is checked before anything else is
 * looked at (RFC 7247 section 4): the From domain must belong to a configured peer network and
 * the source address must be one that peer is trusted to send from (403), the Request-URI must
 * be in the XMPP domain or a MUC service the gateway serves (404); then the peer's policy
 * (services, rate, subscriptions and sessions: 403 or 503 + Retry-After).  A MESSAGE goes to the
 * mapping layer, which answers it later (struct sip_incoming holds the server transaction); an
 * OPTIONS is answered here; the first SUBSCRIBE and INVITE of a dialog go to notifier.c and
 * call.c, which make the dialog's leg.  A request carrying a To tag for a dialog this process
 * does not hold gets 481 (before the trust checks: its Request-URI is a dialog's Contact).
 *
 * Requests of ours outside dialogs (MESSAGE, OPTIONS health checks, REFER) are built on the
 * default leg with the peer's route as the next hop (numeric: nothing is ever resolved) and
 * reported once, with the final response or nta's own 408/503 (struct sip_outgoing).
 *
 * Ownership: an incoming request is held by its struct sip_incoming until the mapping layer
 * answers it; an outgoing one is a struct sip_outgoing, freed once its final response has been
 * reported; each dialog is its role's object (sip_int.h).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <event2/event.h>

#include "sip_int.h"

#include <sofia-sip/msg_addr.h>
#include <sofia-sip/nta_tag.h>
#include <sofia-sip/sip_status.h>
#include <sofia-sip/hostdomain.h>
#include <sofia-sip/su.h>
#include <sofia-sip/su_string.h>
#include <sofia-sip/tport.h>
#include <sofia-sip/tport_tag.h>
#include <sofia-sip/url_tag.h>

#include "../gateway/audit.h"

/* SO_RCVBUF/SO_SNDBUF of the UDP sockets (the kernel caps it at net.core.[rw]mem_max unless we
 * may force it) */
#define SIP_UDP_BUFFER (4u << 20)
#define SIP_CONN_QUEUE 4096	/* requests queued per connection while it opens */
#ifndef SIP_MSG_PRELOAD	/* (-D for bench/ experiments) */
#define SIP_MSG_PRELOAD 1536	/* bytes preloaded into each SIP message's memory home */
#endif
#define SIP_SHUTDOWN_MS 5000	/* the longest a shutdown waits for the dialogs' last requests */
#define SIP_SHUTDOWN_POLL_MS 20

static void sip_list_add(struct sip_list *l, struct sip_hobj *h)
{
	LIST_INSERT_HEAD(&l->head, h, link);
	l->n++;
}

static void sip_list_del(struct sip_list *l, struct sip_hobj *h)
{
	LIST_REMOVE(h, link);
	l->n--;
}

/* The first object of l, or NULL: each kind's struct sip_hobj is its first member. */
static void *sip_list_first(struct sip_list *l)
{
	return LIST_FIRST(&l->head);
}

static struct sip_peer_state *sip_pst(struct sip_stack *st, const struct conf_peer *peer);

/* sip_list_add/del for the dialogs, counted per peer for its <limits>. */
void sip_track(struct sip_stack *st, struct sip_list *l, struct sip_hobj *h, int add)
{
	struct sip_peer_state *ps = sip_pst(st, h->peer);
	unsigned *n = !ps ? NULL : h->kind == SIP_H_CALL ? &ps->calls : &ps->subs;

	if (add)
		sip_list_add(l, h);
	else
		sip_list_del(l, h);
	if (n)
		*n = add ? *n + 1 : *n - 1;
}

struct sip_incoming {
	struct sip_hobj h;
	struct sip_stack *stack;
	nta_incoming_t *irq;	/* NULL: a compact one (compact.c) */
	struct sip_ctr *ctr;	/* the compact one's record */
	tport_t *tp;		/* the compact one's transport (a reference) */
	msg_t *msg;		/* a reference on the request (its source, for the audit) */
};

/* A request outside dialogs while it is checked: nta's server transaction, or a compact one
 * (MESSAGE and OPTIONS only). */
struct sip_req {
	nta_incoming_t *irq;	/* NULL: compact */
	struct sip_ctr *ctr;
	tport_t *tp;		/* compact: a reference, released by the answer or passed on */
	msg_t *msg;		/* a reference on the request, the caller's */
};

struct sip_outgoing {
	struct sip_hobj h;
	struct sip_stack *stack;
	nta_outgoing_t *orq;
	struct sip_cout *cout;	/* instead of orq: a MESSAGE over UDP (compact_out.c) */
	sip_response_fn *cb;	/* NULL once cancelled */
	void *arg;
	const struct conf_peer *peer;	/* for the audit */
	struct sip_audit au;	/* the request (none for OPTIONS health checks) */
};

/* ---- counting (sip_stack_set_stats): plain increments on every request's path */

void sip_stack_set_stats(struct sip_stack *st, struct stats *stats,
			 struct stats_peer *(*peer_stats)(void *arg, const struct conf_peer *peer),
			 void *arg)
{
	st->stats = stats;
	st->peer_stats = peer_stats;
	st->stats_arg = arg;
}

void sip_count_status(struct sip_stack *st, int sent, int status)
{
	if (st->stats)
		stats_sip_status(st->stats, sent, status);
}

static struct stats_peer *sip_peer_stats(struct sip_stack *st, const struct conf_peer *peer)
{
	return st->stats && st->peer_stats && peer ? st->peer_stats(st->stats_arg, peer) : NULL;
}

/* A request sent to peer. */
void sip_count_out(struct sip_stack *st, const struct conf_peer *peer)
{
	struct stats_peer *ps = sip_peer_stats(st, peer);

	if (ps)
		ps->requests_out++;
}

/* A request from peer that passed the trust checks. */
void sip_count_in(struct sip_stack *st, const struct conf_peer *peer)
{
	struct stats_peer *ps = sip_peer_stats(st, peer);

	if (ps)
		ps->requests_in++;
}

/* Copies src into dst (len bytes, NUL included) in ASCII lower case, cut to fit: header tokens
 * (media types, event packages) compare case-insensitively. */
const char *sip_lower_copy(const char *src, char *dst, size_t len)
{
	size_t n = 0;

	for (; *src && n + 1 < len; src++)
		dst[n++] = (*src >= 'A' && *src <= 'Z') ? (char)(*src - 'A' + 'a') : *src;
	dst[n] = '\0';
	return dst;
}

/* One line of printable ASCII for a reason phrase: peer-supplied text must not break the
 * status line. */
void sip_clean_phrase(const char *src, char *dst, size_t len)
{
	size_t n = 0;

	for (; src && *src && n + 1 < len; src++)
		dst[n++] = (*src >= 0x20 && *src < 0x7f) ? *src : ' ';
	dst[n] = '\0';
}

/* 1 if the request came over TLS: nta drops a request whose top Via transport is not the one
 * it arrived on, so the Via says it truly. */
int sip_over_tls(sip_t const *sip)
{
	return sip && sip->sip_via && sip->sip_via->v_protocol &&
	       su_casematch(sip->sip_via->v_protocol, "SIP/2.0/TLS");
}

/* "address:port/transport" of a request's source, for logs. */
void sip_source_text(msg_t *msg, sip_t const *sip, char *buf, size_t len)
{
	su_addrinfo_t *ai = msg ? msg_addrinfo(msg) : NULL;
	const char *tp = sip_over_tls(sip) ? "/tls" : ai && ai->ai_protocol == IPPROTO_TCP ?
			 "/tcp" : "/udp";
	size_t n;

	/* on every request's path: no printf */
	gw_sockaddr_text(ai ? ai->ai_addr : NULL, buf, len);
	n = strlen(buf);
	if (n + 5 <= len)
		memcpy(buf + n, tp, 5);
}

/* ---- routes, contacts, tags */

/* A peer's route, parsed once ("sip:127.0.0.1:5080;transport=udp"), in the stack's home. */
static url_t *sip_route_url_new(struct sip_stack *st, const struct conf_peer *peer)
{
	int v6 = strchr(peer->route_address, ':') != NULL;
	char *text = gw_xasprintf("sip:%s%s%s:%u;transport=%s", v6 ? "[" : "",
				  peer->route_address, v6 ? "]" : "", peer->route_port,
				  conf_transport_name(peer->route_transport));
	url_t *url = url_make(st->home, text);

	if (!url)
		gw_fatal("cannot parse the route %s", text);
	free(text);
	return url;
}

url_string_t const *sip_peer_route(struct sip_stack *st, const struct conf_peer *peer)
{
	size_t i = peer->index;

	if (i < st->conf->npeers && st->conf->peers[i] == peer && i < st->nroutes)
		return (url_string_t const *)st->routes[i];
	/* a peer a reload removed, still finishing what it had (its ending BYEs and NOTIFYs) */
	st->retired_route = sip_route_url_new(st, peer);
	return (url_string_t const *)st->retired_route;
}

sip_contact_t const *sip_contact_for(struct sip_stack *st, const struct conf_peer *peer)
{
	if (st->contact_tls && peer && (peer->route_transport == CONF_TRANSPORT_TLS ||
					peer->tls == CONF_PEER_TLS_REQUIRED))
		return st->contact_tls;
	return st->contact;
}

/* A Call-ID for a request of ours outside dialogs: a random value drawn at start and a
 * counter, in hexadecimal, without printf (nta's own is a formatted GUID per request). */
static const char *sip_new_call_id(struct sip_stack *st, char *buf, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	uint64_t parts[2] = { st->call_id_base, ++st->call_ids };
	size_t n = 0;

	if (len < 35)
		return NULL;
	for (int k = 0; k < 2; k++) {
		for (int i = 15; i >= 0; i--)
			buf[n++] = hex[(parts[k] >> (4 * i)) & 15];
		buf[n++] = k == 0 ? '-' : '\0';
	}
	memcpy(buf + n - 1, "@sgw", 5);
	return buf;
}

nta_leg_t *sip_uac_leg(struct sip_stack *st, const char *from_uri, const char *to_uri,
		       nta_request_f *cb, void *magic)
{
	su_home_t home[1] = { SU_HOME_INIT(home) };
	char *from_text = gw_xasprintf("<%s>", from_uri), *to_text = gw_xasprintf("<%s>", to_uri);
	sip_from_t *from = sip_from_make(home, from_text);
	sip_to_t *to = sip_to_make(home, to_text);
	nta_leg_t *leg = from && to ? nta_leg_tcreate(st->agent, cb, magic, SIPTAG_FROM(from),
						      SIPTAG_TO(to), TAG_END()) : NULL;

	if (leg)
		nta_leg_tag(leg, NULL);	/* our From tag, made by nta */
	su_home_deinit(home);
	free(from_text);
	free(to_text);
	return leg;
}

/* ---- answers */

void sip_answer_ex(struct sip_stack *st, nta_incoming_t *irq, int status, const char *phrase,
		   unsigned retry_after, const char *accept, tag_type_t tag, tag_value_t value, ...)
{
	char clean[128];
	sip_retry_after_t ra[1];
	msg_t *msg = nta_msg_create(st->agent, 0);
	const char *kept;
	ta_list ta;

	sip_clean_phrase(phrase ? phrase : sip_status_phrase(status), clean, sizeof(clean));
	/* nta keeps the phrase's pointer with the response (retransmissions): it lives in the
	 * response's own home */
	kept = msg ? su_strdup(msg_home(msg), clean[0] ? clean : "Unknown") : NULL;
	sip_retry_after_init(ra);
	ra->af_delta = retry_after;
	sip_count_status(st, 1, status);
	if (status > 100)
		nta_incoming_tag(irq, NULL);
	ta_start(ta, tag, value);
	if (!kept || nta_incoming_complete_response(irq, msg, status, kept,
			TAG_IF(retry_after, SIPTAG_RETRY_AFTER(ra)),
			TAG_IF(accept, SIPTAG_ACCEPT_STR(accept)),
			SIPTAG_ALLOW(st->allow),
			SIPTAG_USER_AGENT(st->user_agent),
			ta_tags(ta)) < 0) {
		if (msg)
			msg_destroy(msg);
		log_warn("cannot make the %d answer to a SIP request", status);
	} else if (nta_incoming_mreply(irq, msg) < 0) {	/* takes msg, sent or not */
		log_warn("cannot send the %d answer to a SIP request", status);
	}
	ta_end(ta);
}

void sip_answer(struct sip_stack *st, nta_incoming_t *irq, int status, const char *phrase,
		unsigned retry_after, const char *accept)
{
	sip_answer_ex(st, irq, status, phrase, retry_after, accept, TAG_END());
	nta_incoming_destroy(irq);
}

int sip_final_response(struct sip_stack *st, nta_outgoing_t *orq, sip_t const *sip,
		       nta_outgoing_t **slot, sip_final_fn *fn, void *obj)
{
	int status = sip && sip->sip_status ? sip->sip_status->st_status : nta_outgoing_status(orq);
	const char *phrase = sip && sip->sip_status ? sip->sip_status->st_phrase :
			     sip_status_phrase(status);

	if (status < 200)
		return 0;
	sip_count_status(st, 0, status);
	if (slot)
		*slot = NULL;
	fn(obj, orq, sip, status, phrase);
	nta_outgoing_destroy(orq);
	return 0;
}

/* ---- the federation hub: services, limits and the audit log of each peer network */

void sip_peer_usage(struct sip_stack *st, const struct conf_peer *peer,
		    struct sip_peer_usage *u)
{
	struct sip_peer_state *ps = sip_pst(st, peer);

	memset(u, 0, sizeof(*u));
	if (!ps)
		return;
	u->subscriptions = ps->subs;
	u->calls = ps->calls;
	u->limited = ps->limited;
}

void sip_peers_changed(struct sip_stack *st, const size_t *old_index, size_t n)
{
	const struct conf *conf = st->conf;
	struct sip_peer_state *pst = gw_xcalloc(n ? n : 1, sizeof(*pst));
	url_t **routes = gw_xcalloc(n ? n : 1, sizeof(*routes));

	for (size_t i = 0; i < n; i++) {
		if (old_index[i] != SIZE_MAX) {
			pst[i] = st->pst[old_index[i]];
			if (pst[i].tokens > conf->peers[i]->burst)
				pst[i].tokens = conf->peers[i]->burst;
		} else {
			pst[i].tokens = conf->peers[i]->burst;
		}
		routes[i] = sip_route_url_new(st, conf->peers[i]);
	}
	/* the old routes stay in the home (a few per reload) */
	free(st->routes);
	free(st->pst);
	st->routes = routes;
	st->nroutes = n;
	st->pst = pst;
}

static struct sip_peer_state *sip_pst(struct sip_stack *st, const struct conf_peer *peer)
{
	size_t i;

	if (!peer || !st->pst)
		return NULL;
	i = peer->index;
	return i < st->conf->npeers && st->conf->peers[i] == peer ? &st->pst[i] : NULL;
}

static int sip_is_muc_host(const struct conf *conf, const char *host)
{
	for (size_t i = 0; host && i < conf->nmuc_services; i++)
		if (gw_strcaseeq(host, conf->muc_services[i]))
			return 1;
	return 0;
}

/* The service (CONF_SVC_*) a request of a peer belongs to; 0 for none (OPTIONS, say). */
static unsigned sip_service_of(const struct conf *conf, sip_t const *sip)
{
	int muc = sip->sip_request && sip_is_muc_host(conf, sip->sip_request->rq_url->url_host);
	int conference = sip->sip_event && sip->sip_event->o_type &&
			 strcasecmp(sip->sip_event->o_type, "conference") == 0;

	switch (sip->sip_request ? sip->sip_request->rq_method : sip_method_unknown) {
	case sip_method_message:
		return muc ? CONF_SVC_GROUPCHAT : CONF_SVC_PAGER;
	case sip_method_subscribe:
	case sip_method_notify:
	case sip_method_publish:
		return muc || conference ? CONF_SVC_GROUPCHAT : CONF_SVC_PRESENCE;
	case sip_method_invite:
	case sip_method_refer:
		return muc ? CONF_SVC_GROUPCHAT : CONF_SVC_SESSIONS;
	default:
		return 0;
	}
}

const char *sip_service_name(unsigned svc)
{
	switch (svc) {
	case CONF_SVC_PAGER: return "pager";
	case CONF_SVC_PRESENCE: return "presence";
	case CONF_SVC_SESSIONS: return "sessions";
	case CONF_SVC_GROUPCHAT: return "groupchat";
	default: return "other";
	}
}

/* Takes one request from the peer's <limits rate burst> budget: 0 when it is spent. */
static int sip_rate_take(struct sip_stack *st, const struct conf_peer *peer)
{
	struct sip_peer_state *ps = sip_pst(st, peer);
	struct timespec ts;
	uint64_t now;

	if (!ps || !peer->rate)
		return 1;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	now = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
	ps->tokens += (double)(now - ps->refill_ms) * peer->rate / 1000.0;
	if (ps->tokens > peer->burst)
		ps->tokens = peer->burst;
	ps->refill_ms = now;
	if (ps->tokens < 1.0)
		return 0;
	ps->tokens -= 1.0;
	return 1;
}

/* The peer's policy for a request that passed the trust checks: 0, or the refusal (status,
 * phrase, Retry-After) chosen. */
static int sip_policy(struct sip_stack *st, const struct conf_peer *peer, sip_t const *sip,
		      int *status, const char **phrase, unsigned *retry)
{
	struct sip_peer_state *ps = sip_pst(st, peer);
	unsigned svc = sip_service_of(st->conf, sip);
	sip_method_t m = sip->sip_request->rq_method;

	*retry = peer->retry_after_s;
	/* the budget first: refused requests spend it too */
	if (!sip_rate_take(st, peer)) {
		*status = 503, *phrase = "Request Rate Limit Exceeded";
	} else if (svc && !(peer->services & svc)) {
		*status = 403, *phrase = "Service Not Allowed For This Peer";
		*retry = 0;
		return -1;
	} else if (ps && peer->max_subscriptions && m == sip_method_subscribe &&
		   ps->subs >= peer->max_subscriptions) {
		*status = 503, *phrase = "Too Many Subscriptions From This Peer";
	} else if (ps && peer->max_sessions && m == sip_method_invite &&
		   ps->calls >= peer->max_sessions) {
		*status = 503, *phrase = "Too Many Sessions With This Peer";
	} else {
		*retry = 0;
		return 0;
	}
	if (ps)
		ps->limited++;
	return -1;
}

int sip_peer_allows(const struct conf_peer *peer, unsigned service)
{
	return peer && (peer->services & service) == service;
}

int sip_auditing(const struct sip_stack *st)
{
	return st->conf->audit_file || st->conf->audit_syslog;
}

/* addr-spec of url, malloc'ed (NULL for NULL). */
static char *sip_url_text(url_t const *url)
{
	isize_t n;
	char *buf;

	if (!url)
		return NULL;
	n = url_e(NULL, 0, url);
	buf = gw_xmalloc((size_t)n + 1);
	url_e(buf, n + 1, url);
	buf[n] = '\0';
	return buf;
}

void sip_audit_clear(struct sip_audit *a)
{
	free(a->from);
	free(a->to);
	free(a->call_id);
	free(a->content);
	memset(a, 0, sizeof(*a));
}

/* Writes a's line with the final status (0: none) and clears it; nothing if a is empty. */
void sip_audit_emit(const struct conf_peer *peer, struct sip_audit *a, int status,
			   const char *phrase)
{
	struct audit_rec r;

	if (!a->method)
		return;
	memset(&r, 0, sizeof(r));
	r.peer = peer ? peer->name : NULL;
	r.direction = a->in ? "in" : "out";
	r.service = a->service;
	r.method = a->method;
	r.from = a->from;
	r.to = a->to;
	r.call_id = a->call_id;
	r.source = a->source[0] ? a->source : NULL;
	r.status = status;
	r.phrase = phrase ? phrase : status ? sip_status_phrase(status) : "no final response";
	r.content = a->content;
	r.content_len = a->content_len;
	audit_record(&r);
	sip_audit_clear(a);
}

/* Fills a from a request (incoming: in = 1). */
void sip_audit_fill(struct sip_stack *st, struct sip_audit *a, sip_t const *sip, int in,
			   const char *source)
{
	if (!sip_auditing(st) || !sip || !sip->sip_request)
		return;
	sip_audit_clear(a);
	a->in = in;
	a->method = sip->sip_request->rq_method_name;
	a->service = sip_service_name(sip_service_of(st->conf, sip));
	a->from = sip->sip_from ? sip_url_text(sip->sip_from->a_url) : NULL;
	a->to = sip->sip_to ? sip_url_text(sip->sip_to->a_url) : NULL;
	a->call_id = sip->sip_call_id ? gw_xstrdup(sip->sip_call_id->i_id) : NULL;
	if (source)
		snprintf(a->source, sizeof(a->source), "%s", source);
	if (st->conf->audit_content && sip->sip_payload && sip->sip_payload->pl_len &&
	    sip->sip_request->rq_method == sip_method_message) {
		a->content_len = sip->sip_payload->pl_len;
		a->content = gw_xmalloc(a->content_len + 1);
		memcpy(a->content, sip->sip_payload->pl_data, a->content_len);
		a->content[a->content_len] = '\0';
	}
}

/* Fills a for a request the gateway sends (the strings copied). */
void sip_audit_out(struct sip_stack *st, struct sip_audit *a, const char *method,
			  unsigned svc, const char *from, const char *to, const char *body)
{
	if (!sip_auditing(st))
		return;
	sip_audit_clear(a);
	a->method = method;
	a->service = sip_service_name(svc);
	a->from = from ? gw_xstrdup(from) : NULL;
	a->to = to ? gw_xstrdup(to) : NULL;
	if (st->conf->audit_content && body) {
		a->content = gw_xstrdup(body);
		a->content_len = strlen(body);
	}
}

/* The Call-ID nta chose for a request of ours, from its response. */
void sip_audit_call_id(struct sip_audit *a, sip_t const *sip)
{
	if (a->method && !a->call_id && sip && sip->sip_call_id)
		a->call_id = gw_xstrdup(sip->sip_call_id->i_id);
}

/* The peer network an incoming request comes from, for the audit: the owner of its From
 * domain when that peer trusts the source, else none. */
static const struct conf_peer *sip_audit_peer(struct sip_stack *st, msg_t *msg, sip_t const *sip)
{
	su_addrinfo_t *ai = msg ? msg_addrinfo(msg) : NULL;
	const struct conf_peer *peer;

	if (!sip || !sip->sip_from || !sip->sip_from->a_url->url_host)
		return NULL;
	peer = conf_peer_by_domain(st->conf, sip->sip_from->a_url->url_host);
	return peer && ai && ai->ai_addr && conf_peer_trusts(peer, ai->ai_addr) ? peer : NULL;
}

/* One line for an incoming request answered now. */
void sip_audit_answer(struct sip_stack *st, msg_t *msg, int status, const char *phrase)
{
	sip_t const *sip = msg ? sip_object(msg) : NULL;
	struct sip_audit a;
	char source[96];

	if (!sip_auditing(st) || !sip || !sip->sip_request)
		return;
	memset(&a, 0, sizeof(a));
	sip_source_text(msg, sip, source, sizeof(source));
	sip_audit_fill(st, &a, sip, 1, source);
	sip_audit_emit(sip_audit_peer(st, msg, sip), &a, status, phrase);
}


/* Applies the peering rules.  Returns the peer, or NULL after choosing the refusal. */
static const struct conf_peer *sip_authorize(struct sip_stack *st, const su_addrinfo_t *ai,
					     sip_t const *sip, int *status, const char **phrase)
{
	const struct conf *conf = st->conf;
	const struct conf_peer *peer = NULL;
	const char *from_host = sip && sip->sip_from ? sip->sip_from->a_url->url_host : NULL;
	int trusted_anywhere = 0;

	if (!ai || !ai->ai_addr) {
		*status = 403, *phrase = "Untrusted Source";
		return NULL;
	}
	for (size_t i = 0; i < conf->npeers; i++)
		trusted_anywhere |= conf_peer_trusts(conf->peers[i], ai->ai_addr);
	if (!trusted_anywhere) {
		*status = 403, *phrase = "Untrusted Source";
		return NULL;
	}
	if (from_host)
		peer = conf_peer_by_domain(conf, from_host);
	if (!peer || !conf_peer_trusts(peer, ai->ai_addr)) {
		*status = 403, *phrase = "From Domain Not Owned By This Peer";
		return NULL;
	}
	/* RFC 5922: over TLS the certificate is who the peer is */
	if (sip_over_tls(sip) && !sip_tls_names(ai->ai_addr, peer->domain)) {
		*status = 403, *phrase = "From Domain Not Named By The TLS Certificate";
		return NULL;
	}
	if (!sip_over_tls(sip) && peer->tls == CONF_PEER_TLS_REQUIRED) {
		*status = 403, *phrase = "TLS Required For This Peer";
		return NULL;
	}
	if (!sip->sip_request || !sip->sip_request->rq_url->url_host) {
		*status = 404, *phrase = "Domain Not Served Here";
		return NULL;
	}
	if (gw_strcaseeq(sip->sip_request->rq_url->url_host, conf->xmpp_domain))
		return peer;
	/* a room of an XMPP MUC service (RFC 7702 section 6): INVITE and SUBSCRIBE (conference
	 * event package) only, from a peer allowed groupchat */
	for (size_t i = 0; i < conf->nmuc_services; i++) {
		if (!gw_strcaseeq(sip->sip_request->rq_url->url_host, conf->muc_services[i]))
			continue;
		if (!conf->groupchat_enabled || !peer->groupchat) {
			*status = 403, *phrase = "Groupchat Not Allowed For This Peer";
			return NULL;
		}
		if (sip->sip_request->rq_method != sip_method_invite &&
		    sip->sip_request->rq_method != sip_method_subscribe) {
			*status = 405, *phrase = "Method Not Allowed";
			return NULL;
		}
		return peer;
	}
	*status = 404, *phrase = "Domain Not Served Here";
	return NULL;
}

static const char *sip_param_value(msg_param_t const *params, const char *name, char *buf,
				   size_t len)
{
	const char *v = params ? msg_params_find(params, name) : NULL;
	size_t n = 0;

	if (!v)
		return NULL;
	if (*v == '"')
		v++;
	for (; *v && *v != '"' && n + 1 < len; v++)
		buf[n++] = (*v >= 'A' && *v <= 'Z') ? (char)(*v - 'A' + 'a') : *v;
	buf[n] = '\0';
	return buf;
}


/* Groups the listen entries by address and port into at most two URLs (a sip: one and a sips:
 * one, each bound with nta_agent_add_tport()).  A URL without a transport parameter binds UDP and TCP; a comma-separated
 * "transport=udp,tcp" must not be used: Debian's nta_agent_add_tport() keeps a pointer to an
 * array whose scope has ended and crashes on it. */
static int sip_listen_urls(const struct conf *conf, char *urls[2])
{
	size_t n = 0;

	urls[0] = urls[1] = NULL;
	for (size_t i = 0; i < conf->nlisten; i++) {
		const struct conf_listen *l = &conf->listen[i];
		int udp = 0, tcp = 0, tls = l->transport == CONF_TRANSPORT_TLS, seen = 0;
		int v6 = strchr(l->address, ':') != NULL;

		for (size_t j = 0; j < conf->nlisten && !tls; j++) {
			const struct conf_listen *k = &conf->listen[j];

			if (k->port != l->port || strcmp(k->address, l->address) != 0 ||
			    k->transport == CONF_TRANSPORT_TLS)
				continue;
			seen |= j < i;
			udp |= k->transport == CONF_TRANSPORT_UDP;
			tcp |= k->transport == CONF_TRANSPORT_TCP;
		}
		if (seen)
			continue;
		if (n == 2) {
			log_error("at most two distinct SIP listen address:port pairs are supported "
				  "(UDP and TCP on one port count as one, TLS as another)");
			free(urls[0]);
			free(urls[1]);
			return -1;
		}
		/* nta binds TLS for a sips: URL only (a sip: one lists udp, tcp, sctp) */
		urls[n++] = gw_xasprintf("%s:%s%s%s:%u%s", tls ? "sips" : "sip", v6 ? "[" : "",
					 l->address, v6 ? "]" : "", l->port, tls || (udp && tcp) ?
					 "" : udp ? ";transport=udp" : ";transport=tcp");
	}
	return 0;
}


/* Checks that every listen address:port can be bound, so that a busy port is reported clearly
 * and nta is not asked to bind what cannot be bound. */
static int sip_listen_check(const struct conf *conf)
{
	for (size_t i = 0; i < conf->nlisten; i++) {
		const struct conf_listen *l = &conf->listen[i];
		struct sockaddr_storage sa;
		socklen_t salen;
		int fd, one = 1, ok;

		memset(&sa, 0, sizeof(sa));
		if (inet_pton(AF_INET, l->address, &((struct sockaddr_in *)&sa)->sin_addr) == 1) {
			sa.ss_family = AF_INET;
			((struct sockaddr_in *)&sa)->sin_port = htons((uint16_t)l->port);
			salen = sizeof(struct sockaddr_in);
		} else if (inet_pton(AF_INET6, l->address,
				     &((struct sockaddr_in6 *)&sa)->sin6_addr) == 1) {
			sa.ss_family = AF_INET6;
			((struct sockaddr_in6 *)&sa)->sin6_port = htons((uint16_t)l->port);
			salen = sizeof(struct sockaddr_in6);
		} else {
			continue;	/* the config parser checked it: nta will say more */
		}
		fd = socket(sa.ss_family, l->transport != CONF_TRANSPORT_UDP ? SOCK_STREAM :
			    SOCK_DGRAM, 0);
		if (fd < 0)
			continue;
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		ok = bind(fd, (struct sockaddr *)&sa, salen) == 0;
		if (!ok)
			log_error("cannot listen for SIP on %s %s port %u (conf line %u): %s",
				  conf_transport_name(l->transport), l->address, l->port, l->line,
				  strerror(errno));
		close(fd);
		if (!ok)
			return -1;
	}
	return 0;
}



/* ---- requests outside dialogs */

static void sip_incoming_link(struct sip_stack *st, struct sip_incoming *in)
{
	in->h.kind = SIP_H_INCOMING;
	sip_list_add(&st->in, &in->h);
}

static void sip_incoming_unlink(struct sip_incoming *in)
{
	sip_list_del(&in->stack->in, &in->h);
}

void sip_incoming_respond(struct sip_incoming *in, int status, const char *phrase,
			  unsigned retry_after, const char *accept)
{
	struct sip_stack *st = in->stack;
	char clean[128];

	sip_incoming_unlink(in);
	sip_clean_phrase(phrase ? phrase : sip_status_phrase(status), clean, sizeof(clean));
	sip_audit_answer(st, in->msg, status, clean[0] ? clean : "Unknown");
	if (in->irq)
		sip_answer(st, in->irq, status, phrase, retry_after, accept);
	else
		sip_compact_answer(st, in->ctr, in->msg, in->tp, status, phrase, retry_after,
				   accept, NULL);
	msg_destroy(in->msg);
	free(in);
}

/* Answers a request outside dialogs now, with its audit line.  unsupported: for a 420. */
static void sip_reply(struct sip_stack *st, struct sip_req *rq, int status, const char *phrase,
		      unsigned retry_after, const char *accept, const char *unsupported)
{
	char clean[128];

	sip_clean_phrase(phrase ? phrase : sip_status_phrase(status), clean, sizeof(clean));
	sip_audit_answer(st, rq->msg, status, clean[0] ? clean : "Unknown");
	if (rq->irq) {
		sip_answer_ex(st, rq->irq, status, phrase, retry_after, accept,
			      TAG_IF(unsupported, SIPTAG_UNSUPPORTED_STR(unsupported)), TAG_END());
		nta_incoming_destroy(rq->irq);
	} else {
		sip_compact_answer(st, rq->ctr, rq->msg, rq->tp, status, phrase, retry_after,
				   accept, unsupported);
	}
	rq->irq = NULL;
	rq->ctr = NULL;
	rq->tp = NULL;
}

/* addr-spec of url into buf (NULL when it does not fit). */
static const char *sip_url_into(url_t const *url, char *buf, size_t len)
{
	isize_t n = url_e(buf, (isize_t)len, url);

	if (n < 0 || (size_t)n >= len)
		return NULL;
	buf[n] = '\0';
	return buf;
}

static void sip_on_message(struct sip_stack *st, struct sip_req *rq, sip_t const *sip,
			   const struct conf_peer *peer, const char *source)
{
	struct sip_message_info info;
	struct sip_incoming *in;
	char ctype[128], charset[64], cenc[32], ruri[512], from[512];
	su_home_t home[1] = { SU_HOME_INIT(home) };	/* for long addresses only */

	memset(&info, 0, sizeof(info));
	info.peer = peer;
	info.source = source;
	info.request_uri = sip_url_into(sip->sip_request->rq_url, ruri, sizeof(ruri));
	if (!info.request_uri)
		info.request_uri = url_as_string(home, sip->sip_request->rq_url);
	info.from_uri = sip_url_into(sip->sip_from->a_url, from, sizeof(from));
	if (!info.from_uri)
		info.from_uri = url_as_string(home, sip->sip_from->a_url);
	info.call_id = sip->sip_call_id ? sip->sip_call_id->i_id : NULL;
	if (sip->sip_content_type && sip->sip_content_type->c_type) {
		info.content_type = sip_lower_copy(sip->sip_content_type->c_type, ctype, sizeof(ctype));
		info.charset = sip_param_value(sip->sip_content_type->c_params, "charset",
					       charset, sizeof(charset));
	}
	if (sip->sip_payload) {
		info.body = sip->sip_payload->pl_data;
		info.body_len = sip->sip_payload->pl_len;
	}
	if (sip->sip_content_encoding && sip->sip_content_encoding->k_items &&
	    sip->sip_content_encoding->k_items[0]) {
		const char *enc = sip_lower_copy(sip->sip_content_encoding->k_items[0], cenc,
						 sizeof(cenc));

		/* several codings, or one that does not fit: no known coding matches it */
		info.content_encoding = sip->sip_content_encoding->k_items[1] ? "(several)" :
					strcmp(enc, "identity") == 0 ? NULL : enc;
	}
	if (sip->sip_subject)
		info.subject = sip->sip_subject->g_string;
	if (sip->sip_content_language && sip->sip_content_language->k_items)
		info.language = sip->sip_content_language->k_items[0];

	in = gw_xcalloc(1, sizeof(*in));
	in->stack = st;
	in->irq = rq->irq;
	in->ctr = rq->ctr;
	in->tp = rq->tp;
	in->msg = msg_ref_create(rq->msg);
	rq->irq = NULL;
	rq->ctr = NULL;
	rq->tp = NULL;
	sip_incoming_link(st, in);
	if ((!info.request_uri || !info.from_uri || st->shutting_down) && st->stats)
		stats_message(st->stats, sip_peer_stats(st, peer), STATS_SIP_TO_XMPP, STATS_REFUSED,
			      UINT64_MAX);	/* the pager never sees it */
	if (!info.request_uri || !info.from_uri)
		sip_incoming_respond(in, 500, "Internal Server Error", 0, NULL);
	else if (st->shutting_down)
		sip_incoming_respond(in, 503, "Shutting Down", 5, NULL);
	else
		st->cbs.message(st->arg, in, &info);	/* ownership of `in` passes */
	su_home_deinit(home);
}

/* A request inside a dialog must come from the networks of the dialog's own peer, as any other
 * request must.  Untrusted sources never get this far (guard.c keeps them from Sofia); this
 * is for another peer's networks, or a peer that must use TLS and did not. */
int sip_dialog_source_ok(struct sip_stack *st, const struct conf_peer *peer, nta_incoming_t *irq,
			 sip_t const *sip)
{
	msg_t *msg = nta_incoming_getrequest(irq);
	su_addrinfo_t *ai = msg ? msg_addrinfo(msg) : NULL;
	const char *why = "not one of its networks";
	char source[96], name[32];

	if (ai && ai->ai_addr && conf_peer_trusts(peer, ai->ai_addr)) {
		if (sip_over_tls(sip) ? sip_tls_names(ai->ai_addr, peer->domain) :
		    peer->tls != CONF_PEER_TLS_REQUIRED) {
			msg_destroy(msg);
			sip_count_in(st, peer);
			return 1;
		}
		why = sip_over_tls(sip) ? "the TLS certificate does not name it" :
		      "not over TLS, which it requires";
	}
	sip_source_text(msg, sip, source, sizeof(source));
	log_limited(&st->refused_log, CONF_LOG_NOTICE, __func__,
		    "refused %s from %s inside a dialog with peer %s: %s: 403",
		    sip_lower_copy(sip->sip_request->rq_method_name, name, sizeof(name)), source,
		    peer->name, why);
	msg_destroy(msg);
	if (sip->sip_request->rq_method == sip_method_ack)
		nta_incoming_destroy(irq);
	else
		sip_answer(st, irq, 403, "Not From This Dialog's Peer", 0, NULL);
	return 0;
}

/* The option tags of the request's Require that the gateway does not support, comma-separated
 * into buf: 1 if there is any.  Supported: eventlist in a SUBSCRIBE (RFC 4662). */
static int sip_unsupported_tags(sip_t const *sip, sip_method_t method, char *buf, size_t len)
{
	size_t n = 0;

	buf[0] = '\0';
	for (sip_require_t const *k = sip->sip_require; k; k = k->k_next)
		for (size_t i = 0; k->k_items && k->k_items[i]; i++) {
			const char *tag = k->k_items[i];
			size_t tl = strlen(tag);

			if (method == sip_method_subscribe && strcasecmp(tag, "eventlist") == 0)
				continue;
			if (n + tl + 3 > len)
				return 1;
			if (n) {
				memcpy(buf + n, ", ", 2);
				n += 2;
			}
			memcpy(buf + n, tag, tl);
			n += tl;
			buf[n] = '\0';
		}
	return n > 0;
}

/* A request outside dialogs: answered here or passed to its owner (rq->irq, rq->ctr and rq->tp
 * are then theirs); rq->msg stays the caller's.  A compact one is a MESSAGE or OPTIONS. */
static void sip_on_request(struct sip_stack *st, struct sip_req *rq, sip_t const *sip)
{
	sip_method_t method = sip->sip_request->rq_method;
	char name[32];		/* the method for logs, lower case ("refused message from ...") */
	char unsupported[256];
	const struct conf_peer *peer;
	const char *why = NULL;
	int refuse = 0;
	unsigned retry = 0;
	char source[96];

	sip_lower_copy(sip->sip_request->rq_method_name, name, sizeof(name));
	if (sip->sip_to && sip->sip_to->a_tag) {
		/* inside a dialog this process does not hold (ended, or from before a restart);
		 * its Request-URI is the Contact of a dialog, so the trust checks do not apply */
		sip_reply(st, rq, 481, "Call/Transaction Does Not Exist", 0, NULL, NULL);
		return;
	}
	/* peering trust first */
	sip_source_text(rq->msg, sip, source, sizeof(source));
	peer = sip_authorize(st, rq->msg ? msg_addrinfo(rq->msg) : NULL, sip, &refuse, &why);
	if (!peer) {
		const char *from_host = sip->sip_from ? sip->sip_from->a_url->url_host : NULL;

		log_limited(&st->refused_log, CONF_LOG_NOTICE, __func__,
			    "refused %s from %s (From %s): %d %s", name, source,
			    from_host ? from_host : "-", refuse, why);
		sip_reply(st, rq, refuse, why, 0, NULL, NULL);
		return;
	}
	sip_count_in(st, peer);
	if (sip_policy(st, peer, sip, &refuse, &why, &retry) != 0) {
		struct stats_peer *ps = sip_peer_stats(st, peer);

		if (ps)
			ps->refused++;
		if (method == sip_method_message && st->stats)	/* the pager never sees it */
			stats_message(st->stats, ps, STATS_SIP_TO_XMPP, STATS_REFUSED, UINT64_MAX);
		log_limited(refuse == 503 ? &st->limit_log : &st->refused_log, CONF_LOG_NOTICE,
			    __func__, "refused %s from %s (peer %s): %d %s", name, source,
			    peer->name, refuse, why);
		sip_reply(st, rq, refuse, why, retry, NULL, NULL);
		return;
	}
	if (sip->sip_require && sip_unsupported_tags(sip, method, unsupported, sizeof(unsupported))) {
		/* RFC 3261 8.2.2.3: an extension the request requires and we do not support */
		sip_reply(st, rq, 420, "Bad Extension", 0, NULL, unsupported);
		return;
	}
	switch (method) {
	case sip_method_message:
		sip_on_message(st, rq, sip, peer, source);
		break;
	case sip_method_options:
		sip_reply(st, rq, 200, "OK", 0, "text/plain, message/cpim", NULL);
		break;
	case sip_method_invite:
		if (!st->cbs.invite || st->shutting_down)
			sip_reply(st, rq, st->shutting_down ? 503 : 488,
				  st->shutting_down ? "Shutting Down" : "Sessions Not Supported",
				  0, NULL, NULL);
		else
			sip_call_on_invite(st, rq->irq, sip, peer, source);
		break;
	case sip_method_subscribe:
		if (!st->cbs.subscribe || !sip->sip_event || !sip->sip_event->o_type)
			sip_reply(st, rq, 489, "Bad Event", 0, NULL, NULL);
		else if (st->shutting_down)
			sip_reply(st, rq, 503, "Shutting Down", 5, NULL, NULL);
		else
			sip_watch_on_subscribe(st, rq->irq, sip, peer, source);
		break;
	case sip_method_bye:
	case sip_method_notify:
	case sip_method_prack:
	case sip_method_cancel:
		sip_reply(st, rq, 481, "Call/Transaction Does Not Exist", 0, NULL, NULL);
		break;
	default:
		sip_reply(st, rq, 405, "Method Not Allowed", 0, NULL, NULL);
		break;
	}
}

/* nta's message callback: every request that matches no transaction and no dialog, and every
 * response that matches no request of ours.  Takes msg.  MESSAGE and OPTIONS get compact
 * records (compact.c); any other request gets nta's server transaction. */
static int sip_on_agent_message(struct sip_stack *st, nta_agent_t *agent, msg_t *msg, sip_t *sip)
{
	struct sip_req rq = { .msg = msg };
	int taken = -1;

	(void)agent;
	if (!sip || !sip->sip_request || sip->sip_request->rq_method == sip_method_ack) {
		/* a response to a MESSAGE of ours sent without nta's transaction; else a stray
		 * response, or an ACK for no dialog of ours (an INVITE's transaction absorbs
		 * the others) */
		if (sip && sip->sip_status)
			sip_cout_response(st, sip);
		msg_destroy(msg);
		return 0;
	}
	if (sip_compact_takes(sip))
		taken = sip_compact_receive(st, msg, sip, &rq.ctr, &rq.tp);
	if (taken == 1) {
		msg_destroy(msg);
		return 0;
	}
	if (taken < 0) {
		/* takes a reference on msg (ours stays for the audit and the checks) */
		rq.irq = nta_incoming_create(st->agent, NULL, msg_ref_create(msg), sip, TAG_END());
		if (!rq.irq) {
			log_warn("cannot make a SIP server transaction: 500");
			nta_msg_treply(st->agent, msg, 500, "Internal Server Error", TAG_END());
			return 0;
		}
	}
	sip_on_request(st, &rq, sip);
	msg_destroy(msg);
	return 0;
}

/* A request for the send leg's own address (SIP_SEND_LEG_URL): nobody's, but someone may send
 * one; it is checked and refused as any other (404). */
static int sip_on_send_leg_request(void *magic, nta_leg_t *leg, nta_incoming_t *irq,
				   sip_t const *sip)
{
	struct sip_req rq = { .irq = irq };

	(void)leg;
	if (sip->sip_request->rq_method == sip_method_ack) {
		nta_incoming_destroy(irq);
		return 0;
	}
	rq.msg = nta_incoming_getrequest(irq);
	sip_on_request(magic, &rq, sip);
	msg_destroy(rq.msg);
	return 0;
}


/* ---- requests of ours outside dialogs */

static void sip_outgoing_unlink(struct sip_outgoing *out)
{
	sip_list_del(&out->stack->out, &out->h);
}

static void sip_outgoing_final(void *obj, nta_outgoing_t *orq, sip_t const *sip, int status,
			       const char *phrase)
{
	struct sip_outgoing *out = obj;

	sip_audit_call_id(&out->au, sip);
	sip_audit_emit(out->peer, &out->au, status, phrase);
	sip_outgoing_unlink(out);
	if (out->cb)
		out->cb(out->arg, status, phrase);
	free(out);
}

static int sip_outgoing_response(void *magic, nta_outgoing_t *orq, sip_t const *sip)
{
	struct sip_outgoing *out = magic;

	return sip_final_response(out->stack, orq, sip, &out->orq, sip_outgoing_final, out);
}

/* compact_out.c's report: the final response (sip), or 408 / 503 with the request as sip. */
static void sip_outgoing_cout_final(void *arg, sip_t const *sip, int status, const char *phrase)
{
	struct sip_outgoing *out = arg;

	out->cout = NULL;
	sip_count_status(out->stack, 0, status);
	sip_outgoing_final(out, NULL, sip, status, phrase);
}

/* Ends out's request without telling its owner (shutdown, the stack freed). */
static void sip_outgoing_abandon(struct sip_outgoing *out)
{
	if (out->cout)
		sip_cout_forget(out->stack, out->cout);
	else
		nta_outgoing_destroy(out->orq);
	out->cout = NULL;
	out->orq = NULL;
}

static struct sip_outgoing *sip_outgoing_new(struct sip_stack *st, const struct conf_peer *peer,
					     sip_response_fn *cb, void *arg)
{
	struct sip_outgoing *out = gw_xcalloc(1, sizeof(*out));

	out->stack = st;
	out->cb = cb;
	out->arg = arg;
	out->peer = peer;
	out->h.kind = SIP_H_OUTGOING;
	return out;
}

/* A request's From and To as header objects without printf or the heap: each address is
 * copied into its caller's buffer (SIP_ADDR_BUF bytes) and parsed there.  -1 when one does not
 * fit or does not parse (the caller then goes through the strings). */
#define SIP_ADDR_BUF 512
static int sip_from_to_parse(const char *from_uri, const char *to_uri, char *from_buf,
			     char *to_buf, sip_from_t *from, sip_to_t *to)
{
	sip_from_init(from);
	sip_to_init(to);
	if (strlen(from_uri) + 1 > SIP_ADDR_BUF || strlen(to_uri) + 1 > SIP_ADDR_BUF ||
	    url_d(from->a_url, strcpy(from_buf, from_uri)) < 0 ||
	    url_d(to->a_url, strcpy(to_buf, to_uri)) < 0)
		return -1;
	return 0;
}

/* After nta_outgoing_*create(): out is listed and counted if out->orq was made, freed if not. */
static int sip_outgoing_started(struct sip_stack *st, struct sip_outgoing *out, const char *name,
				const char *to_uri)
{
	if (!out->orq && !out->cout) {
		log_warn("cannot send a SIP %s to %s", name, to_uri);
		sip_audit_clear(&out->au);
		free(out);
		return -1;
	}
	sip_list_add(&st->out, &out->h);
	sip_count_out(st, out->peer);
	if (out->orq)
		reactor_kick(st->reactor);	/* its retransmission timer */
	return 0;
}

/* Sends out's request (tags: its headers beyond the usual ones); 0, or -1 when nta refused it
 * (out is then freed and nothing is reported). */
static int sip_outgoing_send(struct sip_stack *st, struct sip_outgoing *out, sip_method_t method,
			     const char *name, const char *from_uri, const char *to_uri,
			     tag_type_t tag, tag_value_t value, ...)
{
	char from_buf[SIP_ADDR_BUF], to_buf[SIP_ADDR_BUF];
	sip_from_t from[1];
	sip_to_t to[1];
	ta_list ta;

	/* long or odd addresses are parsed by nta from their strings */
	ta_start(ta, tag, value);
	if (sip_from_to_parse(from_uri, to_uri, from_buf, to_buf, from, to) < 0) {
		out->orq = nta_outgoing_tcreate(st->send_leg, sip_outgoing_response, out,
						sip_peer_route(st, out->peer), method, name,
						URL_STRING_MAKE(to_uri),
						SIPTAG_FROM_STR(from_uri), SIPTAG_TO_STR(to_uri),
						SIPTAG_USER_AGENT(st->user_agent),
						ta_tags(ta));
	} else {
		out->orq = nta_outgoing_tcreate(st->send_leg, sip_outgoing_response, out,
						sip_peer_route(st, out->peer), method, name,
						(url_string_t *)to->a_url,
						SIPTAG_FROM(from), SIPTAG_TO(to),
						SIPTAG_USER_AGENT(st->user_agent),
						ta_tags(ta));
	}
	ta_end(ta);
	return sip_outgoing_started(st, out, name, to_uri);
}

/* Writes h's line once, into home, as its text (h_data): a copy of h (msg_header_copy, as
 * compact.c makes of Allow and User-Agent for every answer) is then sent as it stands instead
 * of being encoded again.  Returns 0, or -1 when the line does not fit or memory runs out. */
static int sip_header_text(su_home_t *home, msg_header_t *h)
{
	char buf[512], *text;
	issize_t n = msg_header_e(buf, sizeof(buf), h, 0);

	if (n <= 0 || (size_t)n >= sizeof(buf) || !(text = su_alloc(home, (size_t)n)))
		return -1;
	memcpy(text, buf, (size_t)n);
	h->sh_data = text;
	h->sh_len = (usize_t)n;
	return 0;
}

/* The octets of a From tag's random token: 12 characters of 5 random bits, 60 bits (RFC 3261
 * section 19.3 asks for 32 at least; nta_agent_newtag() makes 13). */
#define SIP_TAG_TOKEN 12

/* The octets come from a pool that one getrandom() fills 2 048 at a time (a From tag and a
 * branch per MESSAGE sent: one system call per 128 of them): msg_random_token(),
 * which nta_agent_newtag() uses, reads /dev/urandom through stdio 8 octets per character
 * (~2 400 instructions per tag, docs/benchmarks.md). */
void sip_random_bits(struct sip_stack *st, uint64_t *bits)
{
	if (st->rnd_used + 8 > sizeof(st->rnd)) {
		/* over 256 octets getrandom() may return fewer, or EINTR */
		for (size_t got = 0; got < sizeof(st->rnd);) {
			ssize_t n = getrandom(st->rnd + got, sizeof(st->rnd) - got, 0);

			if (n < 0 && errno != EINTR)
				gw_fatal("getrandom: %s", strerror(errno));
			got += n > 0 ? (size_t)n : 0;
		}
		st->rnd_used = 0;
	}
	memcpy(bits, st->rnd + st->rnd_used, 8);
	memset(st->rnd + st->rnd_used, 0, 8);	/* an octet is used once */
	st->rnd_used += 8;
}

/* n (<= 12) characters of [0-9a-v] from the kernel's random generator, 5 bits each, into dst
 * (not terminated). */
static void sip_random_token(struct sip_stack *st, char *dst, size_t n)
{
	static const char alphabet[] = "0123456789abcdefghijklmnopqrstuv";
	uint64_t bits;
	size_t i;

	sip_random_bits(st, &bits);
	for (i = 0; i < n && i < 12; i++, bits >>= 5)	/* 12 x 5 of the 64 bits */
		dst[i] = alphabet[bits & 31];
}

/* From (with a new tag), To, Call-ID and User-Agent of a MESSAGE, made in one block of msg's
 * home where copying them and letting nta add the tag took six: a message's home keeps a table
 * of its blocks, which Sofia grows from 31 to 127 entries (~2 KB) once 21 are in use, and a
 * MESSAGE used 25 (docs/benchmarks.md).  The tag is made as nta_agent_newtag() makes it
 * (msg_random_token), and nta_msg_request_complete() leaves a From with a tag as it is.
 * Returns the To, or NULL when an address does not parse or memory runs out (the caller
 * then takes the general path). */
static sip_to_t *sip_message_ids(struct sip_stack *st, msg_t *msg, sip_t *sip,
				 const char *from_uri, const char *to_uri, const char *cid)
{
	struct ids {
		sip_from_t from;
		sip_to_t to;
		sip_call_id_t call_id;
		sip_user_agent_t ua;
		msg_param_t params[2];
		char tag[4 + SIP_TAG_TOKEN + 1];
	} *b;
	const char *ua = st->user_agent->g_string;
	size_t fl = strlen(from_uri) + 1, tl = strlen(to_uri) + 1, cl = strlen(cid) + 1,
	       ul = strlen(ua) + 1;
	char *p;

	b = su_alloc(msg_home(msg), sizeof(*b) + fl + tl + cl + ul);
	if (!b)
		return NULL;
	p = (char *)(b + 1);
	sip_from_init(&b->from);
	sip_to_init(&b->to);
	if (url_d(b->from.a_url, memcpy(p, from_uri, fl)) < 0 ||
	    url_d(b->to.a_url, memcpy(p + fl, to_uri, tl)) < 0) {
		su_free(msg_home(msg), b);
		return NULL;
	}
	p += fl + tl;
	memcpy(b->tag, "tag=", 4);
	sip_random_token(st, b->tag + 4, SIP_TAG_TOKEN);
	b->tag[4 + SIP_TAG_TOKEN] = '\0';
	b->params[0] = b->tag;
	b->params[1] = NULL;
	b->from.a_params = b->params;
	b->from.a_tag = b->tag + 4;
	sip_call_id_init(&b->call_id);
	b->call_id.i_id = memcpy(p, cid, cl);
	b->call_id.i_hash = msg_hash_string(b->call_id.i_id);
	p += cl;
	sip_user_agent_init(&b->ua);
	b->ua.g_string = memcpy(p, ua, ul);
	if (msg_header_insert(msg, (msg_pub_t *)sip, (msg_header_t *)&b->from) < 0 ||
	    msg_header_insert(msg, (msg_pub_t *)sip, (msg_header_t *)&b->to) < 0 ||
	    msg_header_insert(msg, (msg_pub_t *)sip, (msg_header_t *)&b->call_id) < 0 ||
	    msg_header_insert(msg, (msg_pub_t *)sip, (msg_header_t *)&b->ua) < 0)
		return NULL;	/* not for headers of these kinds; if it did, the general path */
	return &b->to;
}

/* A MESSAGE to a peer whose route is UDP to a numeric address goes without nta's client
 * transaction (compact_out.c); NULL (msg untouched) for the others, which nta sends. */
static struct sip_cout *sip_message_send_compact(struct sip_stack *st, struct sip_outgoing *out,
						 msg_t *msg)
{
	url_t const *route = (url_t const *)sip_peer_route(st, out->peer);
	sip_t const *sip = sip_object(msg);
	char port[8];

	/* a body this long is nearer UDP's limit than headers can make up for: nta's transaction
	 * would send it by TCP instead (RFC 3261 18.1.1), so it is nta's */
	if (out->peer->route_transport != CONF_TRANSPORT_UDP || !route || !route->url_host ||
	    !host_is_ip_address(route->url_host) ||
	    (sip->sip_payload && sip->sip_payload->pl_len > SIP_COUT_MAX_BODY))
		return NULL;
	snprintf(port, sizeof(port), "%u", out->peer->route_port);
	return sip_cout_send(st, msg, route->url_host, route->url_port ? route->url_port : port,
			     sip_outgoing_cout_final, out);
}

/* MESSAGE is the hot path: its request is built here header by header, From, To, Call-ID and
 * User-Agent in one block (sip_message_ids), and handed whole to compact_out.c over UDP, else
 * to nta (nta_outgoing_mcreate), without the tag lists of nta_outgoing_tcreate (sip_add_tl() and nta's
 * filtering of them were ~8 % of an XMPP -> SIP message's instructions), with its request line,
 * CSeq, Max-Forwards and Content-Length already written as text (encode.c).  The same headers as
 * sip_outgoing_send() would put.  Returns 0 when sent (out listed), -1 when it failed (out
 * freed), 1 when an address does not parse (nothing done). */
static int sip_message_send(struct sip_stack *st, struct sip_outgoing *out,
			    const struct sip_out_message *m, const char *cid)
{
	msg_t *msg = nta_msg_create(st->agent, 0);
	sip_t *sip = msg ? sip_object(msg) : NULL;
	sip_payload_t *pl;
	msg_header_t *ct;
	sip_to_t *to = sip ? sip_message_ids(st, msg, sip, m->from_uri, m->to_uri, cid) : NULL;

	if (sip && !to) {
		msg_destroy(msg);
		return 1;	/* an address Sofia's URL parser refuses: the general path says why */
	}
	pl = sip ? sip_payload_create(msg_home(msg), m->body, strlen(m->body)) : NULL;
	/* the pager's plain text is a copy of the stack's Content-Type, its text already written
	 * (no parse, no encoding); any other type is parsed from its string */
	ct = pl && strcmp(m->content_type, SIP_CT_TEXT) == 0 ?
		(msg_header_t *)sip_content_type_copy(msg_home(msg), st->ct_text) : NULL;
	if (!pl || (ct ? msg_header_insert(msg, (msg_pub_t *)sip, ct) < 0 :
		    sip_add_make(msg, sip, sip_content_type_class, m->content_type) < 0) ||
	    (m->subject && sip_add_make(msg, sip, sip_subject_class, m->subject) < 0) ||
	    (m->language && sip_add_make(msg, sip, sip_content_language_class, m->language) < 0) ||
	    msg_header_insert(msg, (msg_pub_t *)sip, (msg_header_t *)pl) < 0 ||
	    nta_msg_request_complete(msg, st->send_leg, SIP_METHOD_MESSAGE,
				     (url_string_t *)to->a_url) < 0 ||
	    sip_encode_fixed(msg, sip) < 0)
		out->orq = NULL;
	else if (!(out->cout = sip_message_send_compact(st, out, msg)))
		out->orq = nta_outgoing_mcreate(st->agent, sip_outgoing_response, out,
						sip_peer_route(st, out->peer), msg, TAG_END());
	if (!out->orq && !out->cout && msg)
		msg_destroy(msg);	/* nta takes the message only with the transaction */
	return sip_outgoing_started(st, out, "MESSAGE", m->to_uri);
}

struct sip_outgoing *sip_send_message(struct sip_stack *st, const struct sip_out_message *m,
				      sip_response_fn *cb, void *arg)
{
	struct sip_outgoing *out;
	char call_id[40];
	const char *cid;

	if (st->shutting_down || !st->agent)
		return NULL;
	cid = m->call_id ? m->call_id : sip_new_call_id(st, call_id, sizeof(call_id));
	out = sip_outgoing_new(st, m->peer, cb, arg);
	sip_audit_out(st, &out->au, "MESSAGE", CONF_SVC_PAGER, m->from_uri, m->to_uri, m->body);
	switch (sip_message_send(st, out, m, cid)) {
	case 0:
		return out;
	case -1:
		return NULL;	/* out is freed */
	default:
		break;		/* addresses the stack buffers do not take: the general path */
	}
	if (sip_outgoing_send(st, out, SIP_METHOD_MESSAGE, m->from_uri, m->to_uri,
			      SIPTAG_CONTENT_TYPE_STR(m->content_type),
			      SIPTAG_PAYLOAD_STR(m->body),
			      TAG_IF(m->subject, SIPTAG_SUBJECT_STR(m->subject)),
			      TAG_IF(m->language, SIPTAG_CONTENT_LANGUAGE_STR(m->language)),
			      TAG_IF(cid, SIPTAG_CALL_ID_STR(cid)),
			      TAG_END()) != 0)
		return NULL;
	return out;
}

struct sip_outgoing *sip_send_options(struct sip_stack *st, const struct conf_peer *peer,
				      const char *from_uri, sip_response_fn *cb, void *arg)
{
	struct sip_outgoing *out;
	char *to;
	int r;

	if (st->shutting_down || !st->agent)
		return NULL;
	to = gw_xasprintf("sip:%s", peer->domain);
	out = sip_outgoing_new(st, peer, cb, arg);	/* health checks are not audited */
	r = sip_outgoing_send(st, out, SIP_METHOD_OPTIONS, from_uri, to,
			      SIPTAG_MAX_FORWARDS_STR("0"), TAG_END());
	free(to);
	return r == 0 ? out : NULL;
}

struct sip_outgoing *sip_send_refer(struct sip_stack *st, const struct conf_peer *peer,
				    const char *from_uri, const char *to_uri, const char *refer_to,
				    const char *subject, sip_response_fn *cb, void *arg)
{
	struct sip_outgoing *out;
	char *target, clean[128];
	int r;

	if (st->shutting_down || !st->agent)
		return NULL;
	out = sip_outgoing_new(st, peer, cb, arg);
	sip_audit_out(st, &out->au, "REFER", CONF_SVC_GROUPCHAT, from_uri, to_uri, NULL);
	target = gw_xasprintf("<%s>", refer_to);
	if (subject)
		sip_clean_phrase(subject, clean, sizeof(clean));
	/* RFC 4488: no implicit subscription, the final response is all the gateway waits for */
	r = sip_outgoing_send(st, out, SIP_METHOD_REFER, from_uri, to_uri,
			      SIPTAG_REFER_TO_STR(target), SIPTAG_HEADER_STR("Refer-Sub: false"),
			      SIPTAG_SUPPORTED_STR("norefersub"),
			      SIPTAG_CONTACT(sip_contact_for(st, peer)),
			      TAG_IF(subject, SIPTAG_SUBJECT_STR(clean)), TAG_END());
	free(target);
	return r == 0 ? out : NULL;
}

void sip_outgoing_cancel(struct sip_outgoing *out)
{
	out->cb = NULL;
	out->arg = NULL;
}

const char *sip_status_phrase_of(int status)
{
	const char *p = sip_status_phrase(status);

	return p ? p : "Unknown";
}

size_t sip_stack_pending_in(const struct sip_stack *st)
{
	return st->in.n;
}

size_t sip_stack_pending_out(const struct sip_stack *st)
{
	return st->out.n;
}


/* Our Contact for dialogs over one listen entry: its address, or the agent's own for a
 * wildcard; NULL when there is none of that kind. */
static sip_contact_t *sip_make_contact(struct sip_stack *st, int tls)
{
	const struct conf *conf = st->conf;
	sip_contact_t const *agent = nta_agent_contact(st->agent);
	const char *host = agent && agent->m_url->url_host ? agent->m_url->url_host : "127.0.0.1";

	for (size_t i = 0; i < conf->nlisten; i++) {
		const struct conf_listen *l = &conf->listen[i];
		int wild = strcmp(l->address, "0.0.0.0") == 0 || strcmp(l->address, "::") == 0;
		const char *a = wild ? host : l->address;
		int v6 = strchr(a, ':') != NULL && a[0] != '[';
		char *text;
		sip_contact_t *m;

		if ((l->transport == CONF_TRANSPORT_TLS) != tls)
			continue;
		text = gw_xasprintf("<sip:%s%s%s:%u%s>", v6 ? "[" : "", a, v6 ? "]" : "", l->port,
				    l->transport == CONF_TRANSPORT_TLS ? ";transport=tls" :
				    l->transport == CONF_TRANSPORT_TCP ? ";transport=tcp" : "");
		m = sip_contact_make(st->home, text);
		free(text);
		if (!m)
			gw_fatal("cannot make the SIP Contact");
		/* UDP and TCP on the same port: one Contact without a transport serves both */
		if (l->transport == CONF_TRANSPORT_TCP)
			for (size_t j = 0; j < conf->nlisten; j++)
				if (conf->listen[j].transport == CONF_TRANSPORT_UDP &&
				    conf->listen[j].port == l->port &&
				    strcmp(conf->listen[j].address, l->address) == 0)
					goto next;
		return m;
next:
		continue;
	}
	return NULL;
}

struct sip_stack *sip_stack_new(struct reactor *reactor, const struct conf *conf,
				const struct sip_cbs *cbs, void *arg)
{
	struct sip_stack *st = gw_xcalloc(1, sizeof(*st));
	char *urls[2];
	const char *certdir;
	size_t nudp = 0;
	int bound = 0;

	if (sip_listen_check(conf) != 0 || sip_listen_urls(conf, urls) != 0) {
		free(st);
		return NULL;
	}
	certdir = sip_tls_prepare(conf);
	if (conf->tls_cert && !certdir) {
		free(urls[0]);
		free(urls[1]);
		free(st);
		return NULL;
	}
	st->reactor = reactor;
	st->base = reactor_event_base(reactor);
	st->conf = conf;
	st->cbs = *cbs;
	st->arg = arg;
	su_home_init(st->home);
	st->routes = gw_xcalloc(conf->npeers ? conf->npeers : 1, sizeof(*st->routes));
	st->pst = gw_xcalloc(conf->npeers ? conf->npeers : 1, sizeof(*st->pst));
	for (size_t i = 0; i < conf->npeers; i++) {
		st->pst[i].tokens = conf->peers[i]->burst;
		st->routes[i] = sip_route_url_new(st, conf->peers[i]);
	}
	st->nroutes = conf->npeers;
	if (getrandom(&st->call_id_base, sizeof(st->call_id_base), 0) !=
	    (ssize_t)sizeof(st->call_id_base))
		st->call_id_base = ((uint64_t)time(NULL) << 20) ^ (uint64_t)getpid();
	st->rnd_used = sizeof(st->rnd);	/* empty: the first tag fills it */
	st->allow = sip_allow_make(st->home, SIP_ALLOW);
	st->user_agent = sip_user_agent_make(st->home, SIP_USER_AGENT);
	st->ct_text = sip_content_type_make(st->home, SIP_CT_TEXT);
	if (!st->allow || !st->user_agent || !st->ct_text ||
	    sip_header_text(st->home, (msg_header_t *)st->allow) < 0 ||
	    sip_header_text(st->home, (msg_header_t *)st->user_agent) < 0 ||
	    sip_header_text(st->home, (msg_header_t *)st->ct_text) < 0)
		gw_fatal("cannot make the SIP headers");
	guard_install(conf, st->base);
	log_debug("binding %s%s%s", urls[0], urls[1] ? " and " : "", urls[1] ? urls[1] : "");
	/* (url_string_t *)-1: no transport yet (they are added below, as nua does) */
	st->agent = nta_agent_create(reactor_su_root(reactor), (url_string_t *)-1,
				     sip_on_agent_message, st,
				     /* a user agent: 2xx to INVITE retransmitted until the ACK,
				      * in-dialog CSeq checked */
				     NTATAG_UA(1),
				     NTATAG_MERGE_482(1),
				     NTATAG_CLIENT_RPORT(1),
				     NTATAG_MAXSIZE(conf->max_sip_message),
				     NTATAG_SIP_T1(conf->sip_t1_ms),
				     NTATAG_SIP_T1X64(64 * conf->sip_t1_ms),
				     /* a completed client transaction over UDP (Timer K) and an
				      * INVITE's server one once ACKed (Timer I) only absorb
				      * duplicates, which the message callback would drop anyway:
				      * each holds its request and response (~7 KB) meanwhile */
				     NTATAG_SIP_T4(conf->sip_t4_ms),
				     /* requests over the MTU would switch to TCP (RFC 3261 18.1.1);
				      * the peer's route says which transport it takes */
				     NTATAG_UDP_MTU(65535),
				     NTATAG_USE_NAPTR(0),
				     NTATAG_USE_SRV(0),
				     /* each message's parsed headers carved from one block of its
				      * own instead of a malloc each (a received MESSAGE has ~20) */
				     NTATAG_PRELOAD(SIP_MSG_PRELOAD),
				     TAG_END());
	if (st->agent) {
		/* our requests outside dialogs go on a leg; without a dialog or a destination it
		 * would be nta's default leg and take every request (server transactions and
		 * all), so it has a destination no request names */
		st->send_leg = nta_leg_tcreate(st->agent, sip_on_send_leg_request, st,
					       NTATAG_NO_DIALOG(1), URLTAG_URL(SIP_SEND_LEG_URL),
					       TAG_END());
		bound = st->send_leg != NULL;
		for (int i = 0; i < 2 && urls[i] && bound; i++)
			bound = nta_agent_add_tport(st->agent, URL_STRING_MAKE(urls[i]),
				TPTAG_IDENT(strncmp(urls[i], "sips:", 5) == 0 ? "sips" : "sip"),
				/* bursts: on loopback a datagram counts against the sender's
				 * buffer until the receiver reads it, and a full one failed
				 * requests with a local 503 (seen at 6 000 MESSAGEs/s into sipp) */
				TPTAG_UDP_RMEM(SIP_UDP_BUFFER),
				TPTAG_UDP_WMEM(SIP_UDP_BUFFER),
				/* a TCP connection that carries nothing, or only an incomplete
				 * message, this long is closed (guard.c limits how many) */
				TPTAG_IDLE(conf->sip_tcp_idle_ms),
				TPTAG_TIMEOUT(conf->sip_tcp_idle_ms),
				/* TLS (sip_tls.c): mutual, both ways; identities checked there */
				TAG_IF(certdir, TPTAG_CERTIFICATE(certdir)),
				TAG_IF(certdir, TPTAG_TLS_VERIFY_POLICY(TPTLS_VERIFY_ALL)),
				TAG_IF(certdir, TPTAG_TLS_VERIFY_DEPTH(conf->tls_verify_depth)),
				TAG_IF(certdir, TPTAG_TLS_VERIFY_DATE(1)),
				/* a connection that closes (a TLS handshake refused, say) fails
				 * the requests waiting on it at once (503), not after 64*T1 */
				TPTAG_SDWN_ERROR(1),
				/* requests waiting for a connection to open (a TLS handshake, a
				 * burst at start, the BYEs of a shutdown): Sofia's default of 64
				 * failed the 65th with a local 503 */
				TPTAG_QUEUESIZE(SIP_CONN_QUEUE),
				TAG_END()) == 0;
	}
	if (bound && sip_tls_started() != 0)
		bound = 0;	/* the TLS files changed since they were checked (logged) */
	if (!bound) {
		sip_tls_stop();
		log_error("cannot start the SIP stack on %s%s%s (address in use?)", urls[0],
			  urls[1] ? " and " : "", urls[1] ? urls[1] : "");
		if (st->send_leg)
			nta_leg_destroy(st->send_leg);
		if (st->agent)
			nta_agent_destroy(st->agent);
		free(urls[0]);
		free(urls[1]);
		guard_remove();
		su_home_deinit(st->home);
		free(st->routes);
		free(st->pst);
		free(st);
		return NULL;
	}
	for (int i = 0; i < 2 && urls[i]; i++)
		log_notice("SIP listening on %s", urls[i]);
	st->contact = sip_make_contact(st, 0);
	st->contact_tls = sip_make_contact(st, 1);
	if (!st->contact)
		st->contact = st->contact_tls;
	for (size_t i = 0; i < conf->nlisten; i++)
		nudp += conf->listen[i].transport == CONF_TRANSPORT_UDP;
	if (guard_adopt_udp() != nudp)
		gw_fatal("the SIP UDP sockets are not all found: peering trust cannot be applied");
	free(urls[0]);
	free(urls[1]);
	sip_compact_init(st);
	sip_cout_init(st);
	st->shutdown_ev = evtimer_new(st->base, NULL, NULL);
	if (!st->shutdown_ev)
		gw_fatal("event_new failed");
	return st;
}

/* ---- shutdown */

static void sip_shutdown_cb(evutil_socket_t fd, short what, void *arg)
{
	struct sip_stack *st = arg;
	struct timeval tv = { 0, SIP_SHUTDOWN_POLL_MS * 1000 };

	(void)fd, (void)what;
	if ((st->subs.n || st->watches.n || st->calls.n || st->out.n) &&
	    stats_now_us() / 1000 < st->shutdown_deadline_ms) {
		evtimer_add(st->shutdown_ev, &tv);
		return;
	}
	if (st->subs.n || st->watches.n || st->calls.n)
		log_warn("shutdown: %zu subscriptions, %zu watchers and %zu calls did not end in "
			 "time", st->subs.n, st->watches.n, st->calls.n);
	if (st->cbs.shutdown_done)
		st->cbs.shutdown_done(st->arg);
}

void sip_shutdown_check(struct sip_stack *st)
{
	if (st->shutting_down && !st->subs.n && !st->watches.n && !st->calls.n && !st->out.n)
		event_active(st->shutdown_ev, EV_TIMEOUT, 0);
}

void sip_stack_shutdown(struct sip_stack *st)
{
	struct sip_incoming *in;
	struct sip_outgoing *out;
	struct sip_hobj *h, *next;

	if (st->shutting_down)
		return;
	st->shutting_down = 1;
	st->shutdown_deadline_ms = stats_now_us() / 1000 + SIP_SHUTDOWN_MS;
	event_assign(st->shutdown_ev, st->base, -1, 0, sip_shutdown_cb, st);
	while ((in = sip_list_first(&st->in)))
		sip_incoming_respond(in, 503, "Shutting Down", 5, NULL);
	/* transactions still waiting for an answer: their owners are told now */
	while ((out = sip_list_first(&st->out))) {
		sip_outgoing_unlink(out);
		sip_outgoing_abandon(out);
		sip_audit_emit(out->peer, &out->au, 503, "Shutting Down");
		if (out->cb)
			out->cb(out->arg, 503, "Shutting Down");
		free(out);
	}
	/* dialogs end as they do (un-SUBSCRIBE, final NOTIFY, BYE or CANCEL) without telling
	 * their owners; the shutdown is over when they have */
	for (h = LIST_FIRST(&st->subs.head); h; h = next) {
		next = LIST_NEXT(h, link);
		sip_sub_shutdown((struct sip_sub *)h);
	}
	for (h = LIST_FIRST(&st->watches.head); h; h = next) {
		next = LIST_NEXT(h, link);
		sip_watch_shutdown((struct sip_watch *)h);
	}
	for (h = LIST_FIRST(&st->calls.head); h; h = next) {
		next = LIST_NEXT(h, link);
		sip_call_shutdown((struct sip_call *)h);
	}
	reactor_kick(st->reactor);
	sip_shutdown_check(st);
	if (!event_pending(st->shutdown_ev, EV_TIMEOUT, NULL)) {
		struct timeval tv = { 0, SIP_SHUTDOWN_POLL_MS * 1000 };

		evtimer_add(st->shutdown_ev, &tv);
	}
}

void sip_stack_free(struct sip_stack *st)
{
	struct sip_incoming *in;
	struct sip_outgoing *out;

	if (!st)
		return;
	guard_remove();
	while ((in = sip_list_first(&st->in))) {
		sip_incoming_unlink(in);
		if (in->irq)
			nta_incoming_destroy(in->irq);
		else
			sip_ctrs_forget(st->ctrs, in->ctr);
		if (in->tp)
			tport_unref(in->tp);
		msg_destroy(in->msg);
		free(in);
	}
	while ((out = sip_list_first(&st->out))) {
		sip_outgoing_unlink(out);
		sip_outgoing_abandon(out);
		sip_audit_clear(&out->au);
		free(out);
	}
	sip_cout_free(st);
	sip_sub_free_all(st);
	sip_call_free_all(st);
	sip_watch_free_all(st);
	if (st->agent) {
		/* what the last requests sent still needs: a few steps of the loop, briefly */
		su_root_t *root = reactor_su_root(st->reactor);

		for (int i = 0; i < 4; i++)
			su_root_step(root, 10);
		nta_leg_destroy(st->send_leg);
		nta_agent_destroy(st->agent);
	}
	sip_compact_free(st);
	sip_tls_stop();
	if (st->shutdown_ev)
		event_free(st->shutdown_ev);
	su_home_deinit(st->home);
	free(st->routes);
	free(st->pst);
	free(st);
}

/* the lists hold struct sip_hobj pointers and are walked as the objects they start */
_Static_assert(offsetof(struct sip_incoming, h) == 0, "sip_incoming: h first");
_Static_assert(offsetof(struct sip_outgoing, h) == 0, "sip_outgoing: h first");
