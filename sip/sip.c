/* sip.c - the Sofia-SIP nua stack: listening, peering trust, and MESSAGE transactions.
 *
 * Trust (RFC 7247 section 4, peering use cases): every request nua hands us is checked before
 * anything else is looked at.  Its From domain must belong to a configured peer network and its
 * source address must be one that peer is trusted to send from; otherwise 403.  Its Request-URI
 * must be in the XMPP domain the gateway serves; otherwise 404.  Requests nua would answer by
 * itself (OPTIONS, REGISTER, ...) are routed to us with NUTAG_APPL_METHOD so that the same checks
 * apply to them.
 *
 * Ownership: an incoming request is held as a struct sip_incoming (with a reference on the
 * request message, needed by nua_respond's NUTAG_WITH) until the mapping layer answers it; an
 * outgoing MESSAGE is a struct sip_outgoing bound to its nua handle as the handle's magic, freed
 * once its final response has been reported.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <unistd.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <event2/event.h>

#define NUA_MAGIC_T struct sip_stack
#define NUA_HMAGIC_T struct sip_hobj
#include <sofia-sip/msg_addr.h>
#include <sofia-sip/nua.h>
#include <sofia-sip/nua_tag.h>
#include <sofia-sip/sip_header.h>
#include <sofia-sip/sip_status.h>
#include <sofia-sip/su.h>
#include <sofia-sip/su_string.h>
#include <sofia-sip/su_wait.h>
#include <sofia-sip/su_tag_io.h>
#include <sofia-sip/tport_tag.h>
#include <sofia-sip/nta_tag.h>

/* SO_RCVBUF/SO_SNDBUF of the UDP sockets (the kernel caps it at net.core.[rw]mem_max unless we
 * may force it) */
#define SIP_UDP_BUFFER (4u << 20)

#include "../gateway/audit.h"
#include "../gateway/gw.h"
#include "sip.h"

#define SIP_USER_AGENT "simplegw/0.1"
#define SIP_ALLOW "INVITE, ACK, BYE, CANCEL, UPDATE, OPTIONS, MESSAGE, SUBSCRIBE, NOTIFY"
/* nua answers 405 itself to a method not in its Allow list, before the application sees the
 * request, so an untrusted REGISTER learnt what we support instead of getting 403.  nua's list
 * is SIP_ALLOW plus the methods we refuse ourselves after the trust check; what we send carries
 * SIP_ALLOW (st->allow on our handles and replies). */
#define SIP_NUA_ALLOW SIP_ALLOW ", REGISTER, PUBLISH, INFO, REFER"
#define SIP_CONN_QUEUE 4096	/* requests queued per connection while it opens */

/* Requests nua hands to us instead of answering 200 by itself (nua_server.c: anything not in
 * this list gets an automatic 200, INVITE included) */
#define SIP_APPL_METHODS "INVITE, MESSAGE, OPTIONS, REGISTER, PUBLISH, SUBSCRIBE, INFO, REFER, UPDATE"

/* What a nua handle's magic points to: every object bound to a handle starts with this, and
 * every object the stack tracks is on its kind's list through it (shutdown walks the lists). */
enum sip_hkind {
	SIP_H_OUTGOING,
	SIP_H_SUB,
	SIP_H_WATCH,
	SIP_H_CALL,
	SIP_H_INCOMING,		/* never a handle's magic: only listed */
};

struct sip_hobj {
	enum sip_hkind kind;
	const struct conf_peer *peer;	/* a dialog's: every request in it must come from this
					 * peer's networks (NULL for SIP_H_OUTGOING/INCOMING) */
	LIST_ENTRY(sip_hobj) link;
};

/* One of the stack's lists of tracked objects (<sys/queue.h>; all zeroes is empty). */
struct sip_list {
	LIST_HEAD(, sip_hobj) head;
	size_t n;
};

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

/* The first object of l, or NULL: each kind's struct sip_hobj is its first member (asserted
 * below), so the object is where its struct sip_hobj is. */
static void *sip_list_first(struct sip_list *l)
{
	return LIST_FIRST(&l->head);
}

/* What the audit log says of a request the gateway sends or answers later (gateway/audit.h),
 * kept from the request until its final response. */
struct sip_audit {
	char *from, *to, *call_id;	/* NULL: unknown */
	const char *method, *service;	/* static strings; method NULL: not audited */
	char *content;			/* with <audit content="yes"> only */
	size_t content_len;
	char source[64];		/* of an incoming request */
	int in;				/* 1: the peer sent the request */
};

/* The federation hub's state of one peer network (conf->peers[i]): its request budget (a
 * token bucket of <limits rate burst>) and its dialogs. */
struct sip_peer_state {
	double tokens;
	uint64_t refill_ms;	/* when tokens was last brought up to date */
	unsigned subs, calls;	/* SIP watcher dialogs plus our subscriptions; INVITE dialogs */
	unsigned long limited;	/* requests answered 503 for a limit */
};

static struct sip_peer_state *sip_pst(struct sip_stack *st, const struct conf_peer *peer);

/* sip_list_add/del for the dialogs, counted per peer for its <limits>. */
static void sip_track(struct sip_stack *st, struct sip_list *l, struct sip_hobj *h, int add)
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
	nua_handle_t *nh;
	msg_t *msg;		/* a reference on the request, for NUTAG_WITH */
};

struct sip_outgoing {
	struct sip_hobj h;
	struct sip_stack *stack;
	nua_handle_t *nh;
	sip_response_fn *cb;	/* NULL once cancelled */
	void *arg;
	const struct conf_peer *peer;	/* for the audit */
	struct sip_audit au;	/* the request (none for OPTIONS health checks) */
};

struct sip_stack {
	struct reactor *reactor;
	struct event_base *base;
	const struct conf *conf;
	struct sip_cbs cbs;
	void *arg;
	nua_t *nua;
	char **routes;		/* conf->peers[i]'s route URL */
	size_t nroutes;
	char *retired_route;	/* the last one made for a peer no longer configured */
	sip_allow_t *allow;	/* SIP_ALLOW, parsed once, in home */
	su_home_t home[1];
	struct sip_list in, out, subs, watches, calls;	/* of the objects' struct sip_hobj */
	int shutting_down;
	int shutdown_final;		/* nua reported nua_r_shutdown 200 */
	struct log_limit refused_log;	/* requests refused by the trust check */
	struct log_limit limit_log;	/* requests refused by a peer's <limits> */
	struct sip_peer_state *pst;	/* conf->npeers of them */
	struct event *destroy_ev;	/* nua_destroy() may not run inside nua's own callback */
	struct stats *stats;		/* sip_stack_set_stats(), or NULL */
	struct stats_peer *(*peer_stats)(void *arg, const struct conf_peer *peer);
	void *stats_arg;
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

static void sip_count_status(struct sip_stack *st, int sent, int status)
{
	if (st->stats)
		stats_sip_status(st->stats, sent, status);
}

static struct stats_peer *sip_peer_stats(struct sip_stack *st, const struct conf_peer *peer)
{
	return st->stats && st->peer_stats && peer ? st->peer_stats(st->stats_arg, peer) : NULL;
}

/* A request sent to peer. */
static void sip_count_out(struct sip_stack *st, const struct conf_peer *peer)
{
	struct stats_peer *ps = sip_peer_stats(st, peer);

	if (ps)
		ps->requests_out++;
}

/* nua's events for requests received (ACK gets no response). */
static int sip_request_event(nua_event_t event)
{
	switch (event) {
	case nua_i_invite: case nua_i_cancel: case nua_i_ack: case nua_i_bye: case nua_i_notify:
	case nua_i_subscribe: case nua_i_message: case nua_i_options: case nua_i_refer:
	case nua_i_update: case nua_i_info: case nua_i_prack: case nua_i_register:
	case nua_i_publish:
		return 1;
	default:
		return 0;
	}
}

/* The statuses of what nua reports: a response to a request of ours (nua_r_*, with the 408
 * and 503 it makes up itself), or a request it has already answered (the automatic 200 to a
 * NOTIFY, a BYE, a subscription refresh...).  Those answered here are counted where they are
 * sent. */
static void sip_count_event(struct sip_stack *st, nua_event_t event, int status)
{
	switch (event) {
	case nua_r_invite: case nua_r_cancel: case nua_r_bye: case nua_r_options:
	case nua_r_refer: case nua_r_publish: case nua_r_unpublish: case nua_r_info:
	case nua_r_prack: case nua_r_update: case nua_r_message: case nua_r_subscribe:
	case nua_r_unsubscribe: case nua_r_notify: case nua_r_register: case nua_r_unregister:
		sip_count_status(st, 0, status);
		break;
	default:
		if (status >= 200 && event != nua_i_ack && sip_request_event(event))
			sip_count_status(st, 1, status);
		break;
	}
}

/* A request from peer that passed the trust checks. */
static void sip_count_in(struct sip_stack *st, const struct conf_peer *peer)
{
	struct stats_peer *ps = sip_peer_stats(st, peer);

	if (ps)
		ps->requests_in++;
}

/* Copies src into dst (len bytes, NUL included) in ASCII lower case, cut to fit: header tokens
 * (media types, event packages) compare case-insensitively. */
static const char *sip_lower_copy(const char *src, char *dst, size_t len)
{
	size_t n = 0;

	for (; *src && n + 1 < len; src++)
		dst[n++] = (*src >= 'A' && *src <= 'Z') ? (char)(*src - 'A' + 'a') : *src;
	dst[n] = '\0';
	return dst;
}

/* A handle for a request of ours from from_uri to to_uri, bound to hobj (may be NULL). */
/* "<uri>" into buf; 0 when it does not fit.  (On every request's path: no printf.) */
static int sip_bracket(char *buf, size_t size, const char *uri)
{
	size_t n = strlen(uri);

	if (n + 3 > size)
		return 0;
	buf[0] = '<';
	memcpy(buf + 1, uri, n);
	buf[n + 1] = '>';
	buf[n + 2] = '\0';
	return 1;
}

static nua_handle_t *sip_new_handle(struct sip_stack *st, struct sip_hobj *hobj,
				    const char *from_uri, const char *to_uri)
{
	char from_buf[512], to_buf[512];
	char *from = from_buf, *to = to_buf;
	nua_handle_t *nh;

	/* the usual short URIs on the stack; long ones on the heap */
	if (!sip_bracket(from_buf, sizeof(from_buf), from_uri))
		from = gw_xasprintf("<%s>", from_uri);
	if (!sip_bracket(to_buf, sizeof(to_buf), to_uri))
		to = gw_xasprintf("<%s>", to_uri);
	nh = nua_handle(st->nua, hobj, SIPTAG_FROM_STR(from), SIPTAG_TO_STR(to),
			SIPTAG_ALLOW(st->allow), TAG_END());
	if (!nh)
		gw_fatal("nua_handle failed");
	if (from != from_buf)
		free(from);
	if (to != to_buf)
		free(to);
	return nh;
}

/* Groups the listen entries by address and port: nua takes two URLs (NUTAG_URL and
 * NUTAG_SIPS_URL).  A URL without a transport parameter binds UDP and TCP; a comma-separated
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

/* "sip:127.0.0.1:5080;transport=udp" for a peer's route.  Caller frees. */
static char *sip_route_url_new(const struct conf_peer *peer)
{
	int v6 = strchr(peer->route_address, ':') != NULL;

	return gw_xasprintf("sip:%s%s%s:%u;transport=%s", v6 ? "[" : "", peer->route_address,
			    v6 ? "]" : "", peer->route_port, conf_transport_name(peer->route_transport));
}

static void sip_routes_free(struct sip_stack *st)
{
	for (size_t i = 0; st->routes && i < st->nroutes; i++)
		free(st->routes[i]);
	free(st->routes);
	st->routes = NULL;
	free(st->retired_route);
	st->retired_route = NULL;
}

/* The same, made once per peer at start (it is on every request's path).  Borrowed. */
static const char *sip_route_url(const struct sip_stack *st, const struct conf_peer *peer)
{
	struct sip_stack *mst = (struct sip_stack *)st;
	size_t i = peer->index;

	if (i < st->conf->npeers && st->conf->peers[i] == peer)
		return st->routes[i];
	/* a peer a reload removed, still finishing what it had (its ending BYEs and NOTIFYs) */
	free(mst->retired_route);
	mst->retired_route = sip_route_url_new(peer);
	return mst->retired_route;
}

static int sip_over_tls(sip_t const *sip);

/* "address:port/transport" of a request's source, for logs. */
static void sip_source_text(const su_addrinfo_t *ai, sip_t const *sip, char *buf, size_t len)
{
	char addr[INET6_ADDRSTRLEN + 16];

	gw_sockaddr_text(ai ? ai->ai_addr : NULL, addr, sizeof(addr));
	snprintf(buf, len, "%s/%s", addr, sip_over_tls(sip) ? "tls" :
		 ai && ai->ai_protocol == IPPROTO_TCP ? "tcp" : "udp");
}

static void sip_incoming_link(struct sip_stack *st, struct sip_incoming *in)
{
	in->h.kind = SIP_H_INCOMING;
	sip_list_add(&st->in, &in->h);
}

static void sip_incoming_unlink(struct sip_incoming *in)
{
	sip_list_del(&in->stack->in, &in->h);
}

/* One line of printable ASCII for a reason phrase: peer-supplied text must not break the
 * status line. */
static void sip_clean_phrase(const char *src, char *dst, size_t len)
{
	size_t n = 0;

	for (; src && *src && n + 1 < len; src++)
		dst[n++] = (*src >= 0x20 && *src < 0x7f) ? *src : ' ';
	dst[n] = '\0';
}

static void sip_audit_answer(struct sip_stack *st, msg_t *msg, int status, const char *phrase);

/* Answers a request nua gave us and drops our interest in its handle. */
static void sip_reply(struct sip_stack *st, nua_handle_t *nh, msg_t *msg, int status,
		      const char *phrase, unsigned retry_after, const char *accept)
{
	char clean[128], retry[16];
	const char *kept;

	sip_clean_phrase(phrase ? phrase : sip_status_phrase(status), clean, sizeof(clean));
	if (!clean[0])
		snprintf(clean, sizeof(clean), "%s", "Unknown");
	snprintf(retry, sizeof(retry), "%u", retry_after);
	/* nua_respond() keeps the phrase pointer until the stack runs the signal (tags are copied,
	 * the phrase is not): it must live in the handle's home */
	kept = su_strdup(nua_handle_home(nh), clean);
	sip_audit_answer(st, msg, status, clean);
	sip_count_status(st, 1, status);
	/* an INVITE is answered through its handle's own server transaction */
	if (msg && sip_object(msg) && sip_object(msg)->sip_request &&
	    sip_object(msg)->sip_request->rq_method == sip_method_invite)
		msg = NULL;
	nua_respond(nh, status, kept ? kept : "Unknown",
		    TAG_IF(msg, NUTAG_WITH(msg)),
		    TAG_IF(retry_after, SIPTAG_RETRY_AFTER_STR(retry)),
		    TAG_IF(accept, SIPTAG_ACCEPT_STR(accept)),
		    SIPTAG_ALLOW(st->allow),	/* parsed once: this is on every request's path */
		    TAG_END());
	nua_handle_destroy(nh);
	reactor_kick(st->reactor);
}

void sip_incoming_respond(struct sip_incoming *in, int status, const char *phrase,
			  unsigned retry_after, const char *accept)
{
	struct sip_stack *st = in->stack;

	sip_incoming_unlink(in);
	sip_reply(st, in->nh, in->msg, status, phrase, retry_after, accept);
	msg_destroy(in->msg);
	free(in);
}

/* 1 if the request came over TLS: nta drops a request whose top Via transport is not the one
 * it arrived on, so the Via says it truly. */
static int sip_over_tls(sip_t const *sip)
{
	return sip && sip->sip_via && sip->sip_via->v_protocol &&
	       su_casematch(sip->sip_via->v_protocol, "SIP/2.0/TLS");
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
	char **routes = gw_xcalloc(n ? n : 1, sizeof(*routes));

	for (size_t i = 0; i < n; i++) {
		if (old_index[i] != SIZE_MAX) {
			pst[i] = st->pst[old_index[i]];
			if (pst[i].tokens > conf->peers[i]->burst)
				pst[i].tokens = conf->peers[i]->burst;
		} else {
			pst[i].tokens = conf->peers[i]->burst;
		}
		routes[i] = sip_route_url_new(conf->peers[i]);
	}
	for (size_t i = 0; i < st->nroutes; i++)
		free(st->routes[i]);
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

static const char *sip_service_name(unsigned svc)
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

static int sip_auditing(const struct sip_stack *st)
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

static void sip_audit_clear(struct sip_audit *a)
{
	free(a->from);
	free(a->to);
	free(a->call_id);
	free(a->content);
	memset(a, 0, sizeof(*a));
}

/* Writes a's line with the final status (0: none) and clears it; nothing if a is empty. */
static void sip_audit_emit(const struct conf_peer *peer, struct sip_audit *a, int status,
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
static void sip_audit_fill(struct sip_stack *st, struct sip_audit *a, sip_t const *sip, int in,
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
static void sip_audit_out(struct sip_stack *st, struct sip_audit *a, const char *method,
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

/* The Call-ID nua chose for a request of ours, from its response. */
static void sip_audit_call_id(struct sip_audit *a, sip_t const *sip)
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
static void sip_audit_answer(struct sip_stack *st, msg_t *msg, int status, const char *phrase)
{
	sip_t const *sip = msg ? sip_object(msg) : NULL;
	struct sip_audit a;
	char source[96];

	if (!sip_auditing(st) || !sip || !sip->sip_request)
		return;
	memset(&a, 0, sizeof(a));
	sip_source_text(msg_addrinfo(msg), sip, source, sizeof(source));
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

static void sip_on_message(struct sip_stack *st, nua_handle_t *nh, msg_t *msg, sip_t const *sip,
			   const struct conf_peer *peer, const char *source)
{
	struct sip_message_info info;
	struct sip_incoming *in;
	su_home_t home[1] = { SU_HOME_INIT(home) };
	char ctype[128], charset[64], cenc[32];

	memset(&info, 0, sizeof(info));
	info.peer = peer;
	info.source = source;
	info.request_uri = url_as_string(home, sip->sip_request->rq_url);
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
	in->nh = nh;
	in->msg = msg_ref_create(msg);
	sip_incoming_link(st, in);
	if ((!info.request_uri || !info.from_uri || st->shutting_down) && st->stats)
		stats_message(st->stats, sip_peer_stats(st, peer), STATS_SIP_TO_XMPP, STATS_REFUSED,
			      UINT64_MAX);	/* the pager never sees it */
	if (!info.request_uri || !info.from_uri) {
		sip_incoming_respond(in, 500, "Internal Server Error", 0, NULL);
	} else if (st->shutting_down) {
		sip_incoming_respond(in, 503, "Shutting Down", 5, NULL);
	} else {
		st->cbs.message(st->arg, in, &info);	/* ownership of `in` passes */
	}
	su_home_deinit(home);
}

static void sip_outgoing_unlink(struct sip_outgoing *out)
{
	sip_list_del(&out->stack->out, &out->h);
}

static void sip_on_response(struct sip_stack *st, nua_handle_t *nh, struct sip_outgoing *out,
			    int status, const char *phrase, sip_t const *sip)
{
	if (status < 200 || !out)
		return;
	sip_audit_call_id(&out->au, sip);
	sip_audit_emit(out->peer, &out->au, status, phrase);
	nua_handle_bind(nh, NULL);
	nua_handle_destroy(nh);
	sip_outgoing_unlink(out);
	if (out->cb)
		out->cb(out->arg, status, phrase);
	free(out);
}

/* ---- subscriptions where the gateway notifies (SIP watchers of XMPP users) */

struct sip_watch {
	struct sip_hobj h;
	struct sip_stack *stack;
	nua_handle_t *nh;
	msg_t *msg;		/* the initial SUBSCRIBE, until it is answered */
	void *arg;
	int accepted;
	int eventlist;		/* a list subscription: Require: eventlist on 200 and NOTIFYs */
	char event[16];		/* "presence" or "conference": the Event of our NOTIFYs */
};

const char *sip_substate_name(enum sip_substate s)
{
	static const char *const names[] = {
		[SIP_SUBSTATE_PENDING] = "pending",
		[SIP_SUBSTATE_ACTIVE] = "active",
		[SIP_SUBSTATE_TERMINATED] = "terminated",
	};

	return (unsigned)s < sizeof(names) / sizeof(names[0]) ? names[s] : "?";
}

static void sip_watch_unlink(struct sip_watch *w)
{
	sip_track(w->stack, &w->stack->watches, &w->h, 0);
}

/* The dialog is over: tells the owner (if it had accepted) and frees w. */
static void sip_watch_finish(struct sip_watch *w, int status)
{
	struct sip_stack *st = w->stack;

	sip_watch_unlink(w);
	nua_handle_bind(w->nh, NULL);
	nua_handle_destroy(w->nh);
	reactor_kick(st->reactor);
	if (w->msg)
		msg_destroy(w->msg);
	if (w->accepted && st->cbs.watch_ended)
		st->cbs.watch_ended(st->arg, w, status);
	free(w);
}

void sip_watch_accept(struct sip_watch *w, unsigned expires)
{
	char ex[16];

	snprintf(ex, sizeof(ex), "%u", expires);
	sip_audit_answer(w->stack, w->msg, 200, "OK");
	sip_count_status(w->stack, 1, 200);
	nua_respond(w->nh, 200, "OK", NUTAG_WITH(w->msg), SIPTAG_EXPIRES_STR(ex),
		    SIPTAG_ALLOW_STR(SIP_ALLOW), TAG_IF(w->eventlist, SIPTAG_REQUIRE_STR("eventlist")),
		    TAG_END());
	msg_destroy(w->msg);
	w->msg = NULL;
	w->accepted = 1;
	reactor_kick(w->stack->reactor);
}

void sip_watch_refuse(struct sip_watch *w, int status, const char *phrase, unsigned seconds)
{
	char min[16];
	struct sip_stack *st = w->stack;

	snprintf(min, sizeof(min), "%u", seconds);
	sip_watch_unlink(w);
	nua_handle_bind(w->nh, NULL);
	if ((status == 423 && seconds) || status == 421) {
		sip_audit_answer(st, w->msg, status, phrase);
		sip_count_status(st, 1, status);
		nua_respond(w->nh, status, phrase ? phrase : sip_status_phrase_of(status),
			    NUTAG_WITH(w->msg), TAG_IF(status == 423, SIPTAG_MIN_EXPIRES_STR(min)),
			    TAG_IF(status == 421, SIPTAG_REQUIRE_STR("eventlist")), TAG_END());
		nua_handle_destroy(w->nh);
		reactor_kick(st->reactor);
	} else if (status == 406 && w->eventlist) {
		sip_reply(st, w->nh, w->msg, status, phrase, seconds,
			  "multipart/related, application/rlmi+xml, application/pidf+xml");
	} else {
		sip_reply(st, w->nh, w->msg, status, phrase, seconds, NULL);
	}
	msg_destroy(w->msg);
	free(w);
}

void sip_watch_notify(struct sip_watch *w, enum sip_substate state, const char *reason,
		      const char *content_type, const char *body, size_t len)
{
	char *ss = NULL;

	if (state == SIP_SUBSTATE_TERMINATED)
		ss = gw_xasprintf("terminated%s%s", reason ? ";reason=" : "", reason ? reason : "");
	nua_notify(w->nh,
		   NUTAG_SUBSTATE(state == SIP_SUBSTATE_ACTIVE ? nua_substate_active :
				  state == SIP_SUBSTATE_PENDING ? nua_substate_pending :
				  nua_substate_terminated),
		   TAG_IF(ss, SIPTAG_SUBSCRIPTION_STATE_STR(ss)),
		   SIPTAG_EVENT_STR(w->event),
		   TAG_IF(w->eventlist, SIPTAG_REQUIRE_STR("eventlist")),
		   TAG_IF(body && content_type, SIPTAG_CONTENT_TYPE_STR(content_type)),
		   TAG_IF(body, SIPTAG_PAYLOAD_STR(body)),
		   TAG_END());
	(void)len;
	free(ss);
	sip_count_out(w->stack, w->h.peer);
	reactor_kick(w->stack->reactor);
}

void sip_watch_set_eventlist(struct sip_watch *w)
{
	w->eventlist = 1;
}

void sip_watch_set_arg(struct sip_watch *w, void *arg)
{
	w->arg = arg;
}

void *sip_watch_arg(const struct sip_watch *w)
{
	return w->arg;
}

size_t sip_stack_watches(const struct sip_stack *st)
{
	return st->watches.n;
}

/* Non-zero if the Supported header lists option-tag. */
static int sip_supports(sip_supported_t const *k, const char *tag)
{
	for (; k; k = k->k_next)
		for (size_t i = 0; k->k_items && k->k_items[i]; i++)
			if (strcasecmp(k->k_items[i], tag) == 0)
				return 1;
	return 0;
}

/* Non-zero if Accept lists both multipart/related and application/rlmi+xml (RFC 4662 5.1). */
static int sip_accepts_rlmi(sip_accept_t const *ac)
{
	int multipart = 0, rlmi = 0;

	for (; ac; ac = ac->ac_next) {
		if (!ac->ac_type)
			continue;
		multipart |= strcasecmp(ac->ac_type, "multipart/related") == 0 ||
			     strcasecmp(ac->ac_type, "multipart/*") == 0 ||
			     strcasecmp(ac->ac_type, "*/*") == 0;
		rlmi |= strcasecmp(ac->ac_type, "application/rlmi+xml") == 0 ||
			strcasecmp(ac->ac_type, "application/*") == 0 ||
			strcasecmp(ac->ac_type, "*/*") == 0;
	}
	return multipart && rlmi;
}

/* Non-zero if an Accept header (or its absence) allows PIDF. */
static int sip_accepts_pidf(sip_accept_t const *ac)
{
	if (!ac)
		return 1;
	for (; ac; ac = ac->ac_next) {
		if (!ac->ac_type)
			continue;
		if (strcasecmp(ac->ac_type, "application/pidf+xml") == 0 ||
		    strcasecmp(ac->ac_type, "application/*") == 0 ||
		    strcasecmp(ac->ac_type, "*/*") == 0)
			return 1;
	}
	return 0;
}

static void sip_on_subscribe(struct sip_stack *st, nua_handle_t *nh, msg_t *msg, sip_t const *sip,
			     const struct conf_peer *peer, const char *source)
{
	struct sip_subscribe_info info;
	struct sip_watch *w;
	su_home_t home[1] = { SU_HOME_INIT(home) };
	char event[64];

	if (sip->sip_to && sip->sip_to->a_tag) {
		/* a refresh of a dialog this process does not know (e.g. from before a restart) */
		sip_reply(st, nh, msg, 481, "Subscription Does Not Exist", 0, NULL);
		return;
	}
	if (!st->cbs.subscribe || !sip->sip_event || !sip->sip_event->o_type) {
		sip_reply(st, nh, msg, 489, "Bad Event", 0, NULL);
		return;
	}
	sip_lower_copy(sip->sip_event->o_type, event, sizeof(event));
	memset(&info, 0, sizeof(info));
	info.peer = peer;
	info.source = source;
	info.request_uri = url_as_string(home, sip->sip_request->rq_url);
	info.from_uri = url_as_string(home, sip->sip_from->a_url);
	info.event = event;
	info.call_id = sip->sip_call_id ? sip->sip_call_id->i_id : NULL;
	info.expires = sip->sip_expires ? (long)sip->sip_expires->ex_delta : -1;
	info.accepts_pidf = sip_accepts_pidf(sip->sip_accept);
	info.eventlist = sip_supports(sip->sip_supported, "eventlist");
	info.accepts_rlmi = sip_accepts_rlmi(sip->sip_accept);
	if (!info.request_uri || !info.from_uri) {
		sip_reply(st, nh, msg, 500, "Internal Server Error", 0, NULL);
		su_home_deinit(home);
		return;
	}
	if (st->shutting_down) {
		sip_reply(st, nh, msg, 503, "Shutting Down", 5, NULL);
		su_home_deinit(home);
		return;
	}
	w = gw_xcalloc(1, sizeof(*w));
	w->h.kind = SIP_H_WATCH;
	w->h.peer = peer;
	w->stack = st;
	w->nh = nh;
	w->msg = msg_ref_create(msg);
	snprintf(w->event, sizeof(w->event), "%s",
		 strcmp(event, "conference") == 0 ? "conference" : "presence");
	sip_track(st, &st->watches, &w->h, 1);
	nua_handle_bind(nh, &w->h);
	st->cbs.subscribe(st->arg, w, &info);	/* accepts or refuses (and frees) */
	su_home_deinit(home);
}

static enum nua_substate sip_tag_substate(tagi_t tags[])
{
	tagi_t const *t = tl_find(tags, nutag_substate);

	return t ? (enum nua_substate)t->t_value : nua_substate_terminated;
}

static void sip_watch_event(struct sip_watch *w, nua_event_t event, int status, tagi_t tags[])
{
	switch (event) {
	case nua_i_subscribe:
		/* a refresh or an unsubscribe, answered by the stack; an unsubscribe is followed
		 * by the final NOTIFY, whose report ends the dialog below */
		log_debug("watcher dialog: SUBSCRIBE %d, %s", status,
			  nua_substate_name(sip_tag_substate(tags)));
		if (status < 300 && w->accepted && w->stack->cbs.watch_refreshed &&
		    sip_tag_substate(tags) == nua_substate_active)
			w->stack->cbs.watch_refreshed(w->stack->arg, w);
		break;
	case nua_r_notify:
		if (status < 200)
			break;
		if (status >= 300 || sip_tag_substate(tags) == nua_substate_terminated)
			sip_watch_finish(w, status >= 300 ? status : 0);
		break;
	default:
		log_debug("watcher dialog: %s %d", nua_event_name(event), status);
		break;
	}
}

/* ---- subscriptions the gateway holds (XMPP watchers of SIP presentities) */

struct sip_sub {
	struct sip_hobj h;
	struct sip_stack *stack;
	nua_handle_t *nh;
	struct sip_sub_cbs cbs;
	void *arg;
	int ending;		/* sip_sub_end(): no more callbacks, the dialog is closing */
	char *event, *accept;	/* for refreshes */
	unsigned expires;
	unsigned flags;		/* SIP_SUB_* */
	struct sip_audit au;	/* the first SUBSCRIBE, until its final response */
};

static void sip_sub_unlink(struct sip_sub *sub)
{
	sip_track(sub->stack, &sub->stack->subs, &sub->h, 0);
}

static void sip_sub_free(struct sip_sub *sub)
{
	sip_audit_emit(sub->h.peer, &sub->au, 0, NULL);
	free(sub->event);
	free(sub->accept);
	free(sub);
}

static void sip_sub_finish(struct sip_sub *sub, int status, const char *reason,
			   unsigned retry_after)
{
	struct sip_stack *st = sub->stack;

	sip_sub_unlink(sub);
	nua_handle_bind(sub->nh, NULL);
	nua_handle_destroy(sub->nh);
	reactor_kick(st->reactor);
	if (!sub->ending && sub->cbs.ended)
		sub->cbs.ended(sub->arg, sub, status, reason, retry_after);
	sip_sub_free(sub);
}

struct sip_sub *sip_subscribe(struct sip_stack *st, const struct conf_peer *peer,
			      const char *from_uri, const char *to_uri, const char *event,
			      const char *accept, unsigned expires, unsigned flags,
			      const struct sip_sub_cbs *cbs, void *arg)
{
	struct sip_sub *sub;
	const char *route;
	char ex[16];

	if (st->shutting_down || !st->nua)
		return NULL;
	sub = gw_xcalloc(1, sizeof(*sub));
	sub->h.kind = SIP_H_SUB;
	sub->h.peer = peer;
	sub->stack = st;
	sub->cbs = *cbs;
	sub->arg = arg;
	sub->event = gw_xstrdup(event);
	sub->accept = gw_xstrdup(accept);
	sub->expires = expires;
	sub->flags = flags;
	sip_audit_out(st, &sub->au, "SUBSCRIBE", strcasecmp(event, "conference") == 0 ?
		      CONF_SVC_GROUPCHAT : CONF_SVC_PRESENCE, from_uri, to_uri, NULL);
	route = sip_route_url(st, peer);
	snprintf(ex, sizeof(ex), "%u", expires);
	sub->nh = sip_new_handle(st, &sub->h, from_uri, to_uri);
	nua_subscribe(sub->nh, NUTAG_URL(to_uri), NUTAG_PROXY(route), SIPTAG_EVENT_STR(event),
		      SIPTAG_ACCEPT_STR(accept), SIPTAG_EXPIRES_STR(ex),
		      TAG_IF(flags & SIP_SUB_EVENTLIST, SIPTAG_SUPPORTED_STR("eventlist")),
		      TAG_END());
	sip_count_out(st, peer);
	reactor_kick(st->reactor);
	sip_track(st, &st->subs, &sub->h, 1);
	return sub;
}

void sip_sub_refresh(struct sip_sub *sub)
{
	char ex[16];

	if (sub->ending || sub->stack->shutting_down)
		return;
	snprintf(ex, sizeof(ex), "%u", sub->expires);
	nua_subscribe(sub->nh, SIPTAG_EVENT_STR(sub->event), SIPTAG_ACCEPT_STR(sub->accept),
		      SIPTAG_EXPIRES_STR(ex),
		      TAG_IF(sub->flags & SIP_SUB_EVENTLIST, SIPTAG_SUPPORTED_STR("eventlist")),
		      TAG_END());
	sip_count_out(sub->stack, sub->h.peer);
	reactor_kick(sub->stack->reactor);
}

void sip_sub_end(struct sip_sub *sub)
{
	if (sub->ending)
		return;
	sub->ending = 1;
	nua_unsubscribe(sub->nh, SIPTAG_EXPIRES_STR("0"), TAG_END());
	sip_count_out(sub->stack, sub->h.peer);
	reactor_kick(sub->stack->reactor);
}

size_t sip_stack_subs(const struct sip_stack *st)
{
	return st->subs.n;
}

static void sip_sub_on_notify(struct sip_sub *sub, sip_t const *sip)
{
	sip_subscription_state_t const *ss = sip ? sip->sip_subscription_state : NULL;
	struct sip_notify_info n;
	char ctype[128], params[512] = "";
	const char *reason = NULL;

	memset(&n, 0, sizeof(n));
	if (!ss || !ss->ss_substate || strcasecmp(ss->ss_substate, "terminated") == 0) {
		n.state = SIP_SUBSTATE_TERMINATED;
		reason = ss ? ss->ss_reason : NULL;
		n.retry_after = ss && ss->ss_retry_after ?
			(unsigned)strtoul(ss->ss_retry_after, NULL, 10) : 0;
	} else if (strcasecmp(ss->ss_substate, "pending") == 0) {
		n.state = SIP_SUBSTATE_PENDING;
	} else {
		n.state = SIP_SUBSTATE_ACTIVE;	/* RFC 6665: unknown states count as active */
	}
	n.reason = reason;
	if (sip && sip->sip_content_type && sip->sip_content_type->c_type)
		n.content_type = sip_lower_copy(sip->sip_content_type->c_type, ctype, sizeof(ctype));
	if (n.content_type && sip->sip_content_type->c_params) {
		size_t used = 0;

		for (msg_param_t const *pp = sip->sip_content_type->c_params; *pp; pp++) {
			int w = snprintf(params + used, sizeof(params) - used, ";%s", *pp);

			if (w < 0 || (size_t)w >= sizeof(params) - used) {
				params[used] = '\0';	/* too long: the parameters are dropped */
				break;
			}
			used += (size_t)w;
		}
	}
	n.content_params = params;
	if (sip && sip->sip_payload && sip->sip_payload->pl_len) {
		n.body = sip->sip_payload->pl_data;
		n.body_len = sip->sip_payload->pl_len;
	}
	if (!sub->ending && sub->cbs.notify)
		(void)sub->cbs.notify(sub->arg, sub, &n);
	if (n.state == SIP_SUBSTATE_TERMINATED) {
		char *why = reason ? gw_xstrdup(reason) : NULL;

		sip_sub_finish(sub, 0, why, n.retry_after);
		free(why);
	}
}

static void sip_sub_event(struct sip_sub *sub, nua_event_t event, int status, const char *phrase,
			  sip_t const *sip, tagi_t tags[])
{
	switch (event) {
	case nua_r_subscribe:
		if (status >= 200) {
			sip_audit_call_id(&sub->au, sip);
			sip_audit_emit(sub->h.peer, &sub->au, status, phrase);
		}
		if (status >= 200 && status < 300 && !sub->ending && sub->cbs.answered) {
			int list = 0;

			for (sip_require_t const *k = sip ? sip->sip_require : NULL; k; k = k->k_next)
				for (size_t i = 0; k->k_items && k->k_items[i]; i++)
					list |= strcasecmp(k->k_items[i], "eventlist") == 0;
			sub->cbs.answered(sub->arg, sub, list);
		}
		if (status >= 300) {
			unsigned retry = sip && sip->sip_retry_after ?
				(unsigned)sip->sip_retry_after->af_delta : 0;

			log_info("SUBSCRIBE failed: %03d %s", status, phrase ? phrase : "");
			sip_sub_finish(sub, status, NULL, retry);
		}
		break;
	case nua_i_notify:
		sip_sub_on_notify(sub, sip);
		break;
	case nua_r_unsubscribe:
		if (status < 200)
			break;
		if (status < 300) {
			int substate = nua_substate_terminated;

			tl_gets(tags, NUTAG_SUBSTATE_REF(substate), TAG_END());
			/* nua keeps the dialog for the final NOTIFY (RFC 6665 4.1.2.3), and reports
			 * it, or its absence after 64*T1, as nua_i_notify: that ends the sub, so the
			 * final NOTIFY is answered 200, not 481 */
			if (substate != nua_substate_terminated)
				break;
		}
		sip_sub_finish(sub, status >= 300 ? status : 0, NULL, 0);
		break;
	default:
		log_debug("subscription: %s %d %s", nua_event_name(event), status,
			  phrase ? phrase : "");
		break;
	}
}

/* ---- INVITE sessions */

struct sip_call {
	struct sip_hobj h;
	struct sip_stack *stack;
	nua_handle_t *nh;
	struct sip_call_cbs cbs;
	void *arg;
	char *our_sdp;		/* repeated in answers to re-INVITEs */
	int ending;		/* sip_call_end(): no more callbacks */
	int answered;
	int last_status;
	char last_phrase[64];
	char bye_reason[64];	/* the text of a received BYE's Reason header */
	struct sip_audit au;	/* the INVITE, until its final response */
};

static struct sip_call *sip_call_new(struct sip_stack *st, nua_handle_t *nh,
				     const struct conf_peer *peer)
{
	struct sip_call *call = gw_xcalloc(1, sizeof(*call));

	call->h.kind = SIP_H_CALL;
	call->h.peer = peer;
	call->stack = st;
	call->nh = nh;
	sip_track(st, &st->calls, &call->h, 1);
	return call;
}

static void sip_call_unlink(struct sip_call *call)
{
	sip_track(call->stack, &call->stack->calls, &call->h, 0);
}

static void sip_call_finish(struct sip_call *call, int status, const char *phrase)
{
	struct sip_stack *st = call->stack;

	sip_call_unlink(call);
	nua_handle_bind(call->nh, NULL);
	nua_handle_destroy(call->nh);
	reactor_kick(st->reactor);
	sip_audit_emit(call->h.peer, &call->au, status ? status : call->last_status,
		       status ? phrase : call->last_status ? call->last_phrase : NULL);
	if (!call->ending && call->cbs.ended)
		call->cbs.ended(call->arg, call, status, phrase);
	free(call->our_sdp);
	free(call);
}

void sip_call_accept(struct sip_call *call, const char *sdp, const struct sip_call_cbs *cbs,
		     void *arg)
{
	call->cbs = *cbs;
	call->arg = arg;
	call->our_sdp = gw_xstrdup(sdp);
	call->answered = 1;
	log_debug("call: answering 200 with %zu bytes of SDP", strlen(sdp));
	sip_audit_emit(call->h.peer, &call->au, 200, "OK");
	sip_count_status(call->stack, 1, 200);
	nua_respond(call->nh, 200, "OK", SIPTAG_CONTENT_TYPE_STR("application/sdp"),
		    SIPTAG_PAYLOAD_STR(call->our_sdp), SIPTAG_ALLOW_STR(SIP_ALLOW), TAG_END());
	reactor_kick(call->stack->reactor);
}

void sip_call_hold(struct sip_call *call, const struct sip_call_cbs *cbs, void *arg)
{
	call->cbs = *cbs;
	call->arg = arg;
}

void sip_call_refuse(struct sip_call *call, int status, const char *phrase, const char *warning)
{
	struct sip_stack *st = call->stack;
	char clean[128], *w = NULL;
	const char *kept;

	sip_clean_phrase(phrase ? phrase : sip_status_phrase(status), clean, sizeof(clean));
	kept = su_strdup(nua_handle_home(call->nh), clean[0] ? clean : "Unknown");
	if (warning) {
		char text[200];

		sip_clean_phrase(warning, text, sizeof(text));
		for (char *q = text; *q; q++)
			if (*q == '"' || *q == '\\')
				*q = '\'';
		w = gw_xasprintf("399 simplegw \"%s\"", text);
	}
	sip_audit_emit(call->h.peer, &call->au, status, clean[0] ? clean : NULL);
	sip_count_status(st, 1, status);
	nua_respond(call->nh, status, kept, TAG_IF(w, SIPTAG_WARNING_STR(w)),
		    SIPTAG_ALLOW_STR(SIP_ALLOW), TAG_END());
	free(w);
	call->ending = 1;	/* the terminated state that follows frees it */
	reactor_kick(st->reactor);
}

struct sip_call *sip_call_invite(struct sip_stack *st, const struct conf_peer *peer,
				 const char *from_uri, const char *to_uri, const char *sdp,
				 const struct sip_call_cbs *cbs, void *arg)
{
	struct sip_call *call;
	const char *route;
	nua_handle_t *nh;

	if (st->shutting_down || !st->nua)
		return NULL;
	nh = sip_new_handle(st, NULL, from_uri, to_uri);
	call = sip_call_new(st, nh, peer);
	call->cbs = *cbs;
	call->arg = arg;
	call->our_sdp = gw_xstrdup(sdp);
	sip_audit_out(st, &call->au, "INVITE", CONF_SVC_SESSIONS, from_uri, to_uri, NULL);
	nua_handle_bind(nh, &call->h);
	route = sip_route_url(st, peer);
	nua_invite(nh, NUTAG_URL(to_uri), NUTAG_PROXY(route),
		   SIPTAG_CONTENT_TYPE_STR("application/sdp"), SIPTAG_PAYLOAD_STR(call->our_sdp),
		   TAG_END());
	sip_count_out(st, peer);
	reactor_kick(st->reactor);
	return call;
}

void sip_call_set_groupchat(struct sip_call *call)
{
	if (call->au.method)
		call->au.service = sip_service_name(CONF_SVC_GROUPCHAT);
}

void sip_call_end(struct sip_call *call)
{
	sip_call_end_reason(call, 0, NULL);
}

void sip_call_end_reason(struct sip_call *call, int cause, const char *text)
{
	char *reason = NULL;

	if (call->ending)
		return;
	call->ending = 1;
	if (cause) {
		char clean[128];

		sip_clean_phrase(text ? text : "", clean, sizeof(clean));
		for (char *q = clean; *q; q++)
			if (*q == '"' || *q == '\\')
				*q = '\'';
		reason = gw_xasprintf("SIP;cause=%d;text=\"%s\"", cause, clean);
	}
	if (call->answered)
		nua_bye(call->nh, TAG_IF(reason, SIPTAG_REASON_STR(reason)), TAG_END());
	else
		nua_cancel(call->nh, TAG_IF(reason, SIPTAG_REASON_STR(reason)), TAG_END());
	sip_count_out(call->stack, call->h.peer);
	free(reason);
	reactor_kick(call->stack->reactor);
}

size_t sip_stack_calls(const struct sip_stack *st)
{
	return st->calls.n;
}

static void sip_on_invite(struct sip_stack *st, nua_handle_t *nh, msg_t *msg, sip_t const *sip,
			  const struct conf_peer *peer, const char *source)
{
	struct sip_invite_info info;
	struct sip_call *call;
	su_home_t home[1] = { SU_HOME_INIT(home) };
	char ctype[128];

	if (!st->cbs.invite || st->shutting_down) {
		sip_reply(st, nh, msg, st->shutting_down ? 503 : 488,
			  st->shutting_down ? "Shutting Down" : "Sessions Not Supported", 0, NULL);
		return;
	}
	memset(&info, 0, sizeof(info));
	info.peer = peer;
	info.source = source;
	info.request_uri = url_as_string(home, sip->sip_request->rq_url);
	info.from_uri = url_as_string(home, sip->sip_from->a_url);
	info.call_id = sip->sip_call_id ? sip->sip_call_id->i_id : NULL;
	if (sip->sip_content_type && sip->sip_content_type->c_type)
		info.content_type = sip_lower_copy(sip->sip_content_type->c_type, ctype, sizeof(ctype));
	if (sip->sip_payload && sip->sip_payload->pl_len) {
		info.body = sip->sip_payload->pl_data;
		info.body_len = sip->sip_payload->pl_len;
	}
	if (!info.request_uri || !info.from_uri) {
		sip_reply(st, nh, msg, 500, "Internal Server Error", 0, NULL);
		su_home_deinit(home);
		return;
	}
	call = sip_call_new(st, nh, peer);
	sip_audit_fill(st, &call->au, sip, 1, source);
	nua_handle_bind(nh, &call->h);
	st->cbs.invite(st->arg, call, &info);	/* accepts or refuses */
	su_home_deinit(home);
}

static void sip_call_event(struct sip_call *call, nua_t *nua, nua_event_t event, int status,
			   const char *phrase, sip_t const *sip, tagi_t tags[])
{
	msg_t *msg;

	switch (event) {
	case nua_i_update:	/* a session refresh (RFC 4028) without SDP */
	case nua_i_info:
	case nua_i_refer:
	case nua_i_message:
	case nua_i_options:
	case nua_i_subscribe:
	case nua_i_publish:
	case nua_i_register:
		/* a request inside the call's dialog: only UPDATE means anything here */
		msg = nua_current_request(nua);
		sip_count_status(call->stack, 1, event == nua_i_update ? 200 : 405);
		if (event == nua_i_update)
			nua_respond(call->nh, 200, "OK", TAG_IF(msg, NUTAG_WITH(msg)), TAG_END());
		else
			nua_respond(call->nh, 405, "Method Not Allowed", TAG_IF(msg, NUTAG_WITH(msg)),
				    SIPTAG_ALLOW_STR(SIP_ALLOW), TAG_END());
		reactor_kick(call->stack->reactor);
		break;
	case nua_i_invite:
		/* a re-INVITE (session refresh, or a new offer): the session stays as it is */
		log_debug("call: re-INVITE answered with the same SDP");
		sip_count_status(call->stack, 1, 200);
		nua_respond(call->nh, 200, "OK", TAG_IF(call->our_sdp,
			    SIPTAG_CONTENT_TYPE_STR("application/sdp")),
			    TAG_IF(call->our_sdp, SIPTAG_PAYLOAD_STR(call->our_sdp)), TAG_END());
		reactor_kick(call->stack->reactor);
		break;
	case nua_i_bye:
		/* nua answered it; keep its Reason text (RFC 3326) for the ended callback */
		if (sip && sip->sip_reason && sip->sip_reason->re_params) {
			const char *v = msg_params_find(sip->sip_reason->re_params, "text");
			size_t n = 0;

			if (v && *v == '"')
				v++;
			for (; v && *v && *v != '"' && n + 1 < sizeof(call->bye_reason); v++)
				call->bye_reason[n++] = *v;
			call->bye_reason[n] = '\0';
		}
		break;
	case nua_r_invite:
		if (status >= 200) {
			sip_audit_call_id(&call->au, sip);
			sip_audit_emit(call->h.peer, &call->au, status, phrase);
		}
		if (status >= 200 && status < 300 && !call->answered) {
			call->answered = 1;
			if (!call->ending && call->cbs.answered)
				call->cbs.answered(call->arg, call,
						   sip && sip->sip_payload ? sip->sip_payload->pl_data : "",
						   sip && sip->sip_payload ? sip->sip_payload->pl_len : 0);
		}
		break;
	case nua_i_state: {
		tagi_t const *t = tl_find(tags, nutag_callstate);

		if (status >= 300) {
			call->last_status = status;
			snprintf(call->last_phrase, sizeof(call->last_phrase), "%s",
				 phrase ? phrase : "");
		}
		if (t && (enum nua_callstate)t->t_value == nua_callstate_terminated)
			sip_call_finish(call, call->answered ? 0 : call->last_status ?
					call->last_status : 408,
					call->answered ? (call->bye_reason[0] ? call->bye_reason : NULL) :
					call->last_phrase[0] ? call->last_phrase : NULL);
		break;
	}
	default:
		log_debug("call: %s %d %s", nua_event_name(event), status, phrase ? phrase : "");
		break;
	}
}

static void sip_destroy_cb(evutil_socket_t fd, short what, void *arg)
{
	struct sip_stack *st = arg;

	if (st->nua)
		nua_destroy(st->nua);
	st->nua = NULL;
	if (st->cbs.shutdown_done)
		st->cbs.shutdown_done(st->arg);
}

/* A request inside a dialog must come from the networks of the dialog's own peer, as any other
 * request must.  Untrusted sources never get this far (guard.c keeps them from Sofia); this
 * is for another peer's networks.  Returns 1 if the event is to be handled.  A request nua has
 * already answered itself (status >= 200: NOTIFY, BYE) is not acted on, which is all that can
 * be done for it here: a BYE's session has ended inside nua by then. */
static int sip_dialog_source_ok(struct sip_stack *st, nua_t *nua, nua_handle_t *nh,
				const struct sip_hobj *hobj, nua_event_t event, int status)
{
	msg_t *msg;
	su_addrinfo_t *ai;
	sip_t const *sip;
	const char *why = "not one of its networks";
	char source[96];

	switch (event) {
	case nua_i_invite: case nua_i_update: case nua_i_info: case nua_i_refer:
	case nua_i_message: case nua_i_options: case nua_i_subscribe: case nua_i_publish:
	case nua_i_register: case nua_i_notify: case nua_i_bye: case nua_i_prack:
		break;
	default:
		return 1;	/* responses and states */
	}
	msg = nua_current_request(nua);
	ai = msg ? msg_addrinfo(msg) : NULL;
	sip = msg ? sip_object(msg) : NULL;
	if (ai && ai->ai_addr && conf_peer_trusts(hobj->peer, ai->ai_addr)) {
		if (sip_over_tls(sip) ? sip_tls_names(ai->ai_addr, hobj->peer->domain) :
		    hobj->peer->tls != CONF_PEER_TLS_REQUIRED)
			return 1;
		why = sip_over_tls(sip) ? "the TLS certificate does not name it" :
		      "not over TLS, which it requires";
	}
	sip_source_text(ai, sip, source, sizeof(source));
	log_limited(&st->refused_log, CONF_LOG_NOTICE, __func__,
		    "refused %s from %s inside a dialog with peer %s: %s%s",
		    nua_event_name(event) + 6, source, hobj->peer->name, why,
		    status >= 200 ? " (already answered by the SIP stack, not applied)" : ": 403");
	if (status < 200) {
		sip_count_status(st, 1, 403);
		nua_respond(nh, 403, "Not From This Dialog's Peer", TAG_IF(msg, NUTAG_WITH(msg)),
			    TAG_END());
		reactor_kick(st->reactor);
	}
	return 0;
}

static void sip_nua_event(nua_event_t event, int status, char const *phrase, nua_t *nua,
		      struct sip_stack *st, nua_handle_t *nh, struct sip_hobj *hobj,
		      sip_t const *sip, tagi_t tags[])
{
	msg_t *msg;
	su_addrinfo_t *ai;
	const struct conf_peer *peer;
	char source[96];
	int refuse = 0;
	unsigned retry = 0;
	const char *why = NULL;

	sip_count_event(st, event, status);
	if (hobj && hobj->peer && !sip_dialog_source_ok(st, nua, nh, hobj, event, status))
		return;
	if (hobj && hobj->peer && sip_request_event(event))
		sip_count_in(st, hobj->peer);
	if (hobj && hobj->kind == SIP_H_SUB) {
		sip_sub_event((struct sip_sub *)hobj, event, status, phrase, sip, tags);
		return;
	}
	if (hobj && hobj->kind == SIP_H_WATCH) {
		sip_watch_event((struct sip_watch *)hobj, event, status, tags);
		return;
	}
	if (hobj && hobj->kind == SIP_H_CALL) {
		sip_call_event((struct sip_call *)hobj, nua, event, status, phrase, sip, tags);
		return;
	}
	switch (event) {
	case nua_r_message:
	case nua_r_options:
	case nua_r_refer:
		sip_on_response(st, nh, hobj && hobj->kind == SIP_H_OUTGOING ?
				(struct sip_outgoing *)hobj : NULL, status, phrase, sip);
		return;
	case nua_r_shutdown:
		if (status >= 200) {
			st->shutdown_final = 1;
			event_active(st->destroy_ev, EV_TIMEOUT, 0);
		}
		return;
	case nua_i_error:
		log_warn("Sofia-SIP reports %03d %s", status, phrase ? phrase : "");
		return;
	case nua_i_message:
	case nua_i_options:
	case nua_i_register:
	case nua_i_publish:
	case nua_i_subscribe:
	case nua_i_info:
	case nua_i_refer:
	case nua_i_update:
	case nua_i_invite:
		break;
	default:
		log_debug("nua event %s (%d %s)", nua_event_name(event), status,
			  phrase ? phrase : "");
		return;
	}

	/* a request: peering trust first */
	msg = nua_current_request(nua);
	ai = msg ? msg_addrinfo(msg) : NULL;
	sip_source_text(ai, sip, source, sizeof(source));
	peer = sip_authorize(st, ai, sip, &refuse, &why);
	if (!peer) {
		const char *from_host = sip && sip->sip_from ? sip->sip_from->a_url->url_host : NULL;

		log_limited(&st->refused_log, CONF_LOG_NOTICE, __func__,
			    "refused %s from %s (From %s): %d %s", nua_event_name(event) + 6, source,
			    from_host ? from_host : "-", refuse, why);
		sip_reply(st, nh, msg, refuse, why, 0, NULL);
		return;
	}
	sip_count_in(st, peer);
	if (sip_policy(st, peer, sip, &refuse, &why, &retry) != 0) {
		struct stats_peer *ps = sip_peer_stats(st, peer);

		if (ps)
			ps->refused++;
		if (event == nua_i_message && st->stats)	/* the pager never sees it */
			stats_message(st->stats, ps, STATS_SIP_TO_XMPP, STATS_REFUSED, UINT64_MAX);
		log_limited(refuse == 503 ? &st->limit_log : &st->refused_log, CONF_LOG_NOTICE,
			    __func__, "refused %s from %s (peer %s): %d %s", nua_event_name(event) + 6,
			    source, peer->name, refuse, why);
		sip_reply(st, nh, msg, refuse, why, retry, NULL);
		return;
	}
	switch (event) {
	case nua_i_message:
		sip_on_message(st, nh, msg, sip, peer, source);
		break;
	case nua_i_options:
		sip_reply(st, nh, msg, 200, "OK", 0, "text/plain, message/cpim");
		break;
	case nua_i_invite:
		sip_on_invite(st, nh, msg, sip, peer, source);
		break;
	case nua_i_subscribe:
		sip_on_subscribe(st, nh, msg, sip, peer, source);
		break;
	default:
		sip_reply(st, nh, msg, 405, "Method Not Allowed", 0, NULL);
		break;
	}
}

/* Checks that every listen address:port can be bound, so that a busy port is reported clearly
 * and nua_create() is not called to fail (Debian's Sofia-SIP leaks its homes when it does). */
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
			continue;	/* the config parser checked it: nua will say more */
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

struct sip_stack *sip_stack_new(struct reactor *reactor, const struct conf *conf,
				const struct sip_cbs *cbs, void *arg)
{
	struct sip_stack *st = gw_xcalloc(1, sizeof(*st));
	char *urls[2];
	const char *certdir;
	size_t nudp = 0;

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
	st->conf = conf;
	st->cbs = *cbs;
	st->routes = gw_xcalloc(conf->npeers ? conf->npeers : 1, sizeof(*st->routes));
	st->pst = gw_xcalloc(conf->npeers ? conf->npeers : 1, sizeof(*st->pst));
	for (size_t i = 0; i < conf->npeers; i++)
		st->pst[i].tokens = conf->peers[i]->burst;
	for (size_t i = 0; i < conf->npeers; i++)
		st->routes[i] = sip_route_url_new(conf->peers[i]);
	st->nroutes = conf->npeers;
	st->arg = arg;
	su_home_init(st->home);
	st->allow = sip_allow_make(st->home, SIP_ALLOW);
	if (!st->allow)
		gw_fatal("sip_allow_make failed");
	guard_install(conf, reactor_event_base(reactor));
	log_debug("binding %s%s%s", urls[0], urls[1] ? " and " : "", urls[1] ? urls[1] : "");
	st->nua = nua_create(reactor_su_root(reactor), sip_nua_event, st,
			     NUTAG_URL(urls[0]),
			     TAG_IF(urls[1], NUTAG_SIPS_URL(urls[1])),
			     NUTAG_MEDIA_ENABLE(0),
			     NUTAG_ENABLEMESSAGE(1),
			     NUTAG_ALLOW_EVENTS("presence, conference"),
			     /* RFC 4028 session timers, refreshed with UPDATE (no SDP needed) */
			     NUTAG_SESSION_TIMER(1800),
			     NUTAG_MIN_SE(90),
			     NUTAG_UPDATE_REFRESH(1),
			     NUTAG_SUB_EXPIRES(conf->presence_max_expires_s),
			     /* Debian's Sofia-SIP crashes (msg_params_join) merging a method list
			      * into its default one: clear the default first, then set ours */
			     NUTAG_APPL_METHOD(NULL),
			     NUTAG_APPL_METHOD(SIP_APPL_METHODS),
			     SIPTAG_ALLOW_STR(SIP_NUA_ALLOW),
			     SIPTAG_USER_AGENT_STR(SIP_USER_AGENT),
			     NTATAG_MAXSIZE(conf->max_sip_message),
			     NTATAG_SIP_T1(conf->sip_t1_ms),
			     NTATAG_SIP_T1X64(64 * conf->sip_t1_ms),
			     /* requests over the MTU would switch to TCP (RFC 3261 18.1.1); the
			      * peer's route says which transport it takes */
			     NTATAG_UDP_MTU(65535),
			     /* bursts: on loopback a datagram counts against the sender's buffer
			      * until the receiver reads it, and a full one made Sofia fail requests
			      * with a local 503 (seen at 6 000 MESSAGEs/s into sipp) */
			     TPTAG_UDP_RMEM(SIP_UDP_BUFFER),
			     TPTAG_UDP_WMEM(SIP_UDP_BUFFER),
			     /* a TCP connection that carries nothing, or only an incomplete
			      * message, this long is closed (guard.c limits how many there are) */
			     TPTAG_IDLE(conf->sip_tcp_idle_ms),
			     TPTAG_TIMEOUT(conf->sip_tcp_idle_ms),
			     NTATAG_USE_NAPTR(0),
			     NTATAG_USE_SRV(0),
			     /* TLS (sip_tls.c): mutual, both ways; the identities checked there */
			     TAG_IF(certdir, NUTAG_CERTIFICATE_DIR(certdir)),
			     TAG_IF(certdir, TPTAG_TLS_VERIFY_POLICY(TPTLS_VERIFY_ALL)),
			     TAG_IF(certdir, TPTAG_TLS_VERIFY_DEPTH(conf->tls_verify_depth)),
			     TAG_IF(certdir, TPTAG_TLS_VERIFY_DATE(1)),
			     /* a connection that closes (a TLS handshake refused, say) fails the
			      * requests waiting on it at once (503), not after 64*T1 */
			     TPTAG_SDWN_ERROR(1),
			     /* requests waiting for a connection to open (a TLS handshake, a
			      * burst at start, the BYEs of a shutdown): Sofia's default of 64
			      * failed the 65th with a local 503 */
			     TPTAG_QUEUESIZE(SIP_CONN_QUEUE),
			     TAG_END());
	reactor_kick(reactor);
	if (st->nua && sip_tls_started() != 0) {
		/* the TLS files changed since they were checked: stop as nua wants it stopped */
		st->shutting_down = 1;
		nua_shutdown(st->nua);
		for (int i = 0; i < 60 && !st->shutdown_final; i++)
			su_root_step(reactor_su_root(reactor), 50);
		nua_destroy(st->nua);
		st->nua = NULL;
	}
	if (!st->nua) {
		sip_tls_stop();
		log_error("cannot start the SIP stack on %s%s%s (address in use?)", urls[0],
			  urls[1] ? " and " : "", urls[1] ? urls[1] : "");
		free(urls[0]);
		free(urls[1]);
		su_home_deinit(st->home);
		sip_routes_free(st);
		guard_remove();
		free(st->pst);
		free(st);
		return NULL;
	}
	for (int i = 0; i < 2 && urls[i]; i++)
		log_notice("SIP listening on %s", urls[i]);
	for (size_t i = 0; i < conf->nlisten; i++)
		nudp += conf->listen[i].transport == CONF_TRANSPORT_UDP;
	if (guard_adopt_udp() != nudp)
		gw_fatal("the SIP UDP sockets are not all found: peering trust cannot be applied");
	free(urls[0]);
	free(urls[1]);
	st->destroy_ev = event_new(reactor_event_base(reactor), -1, 0, sip_destroy_cb, st);
	if (!st->destroy_ev)
		gw_fatal("event_new failed");
	return st;
}

/* A tracked request handle: cb runs once with the final response (sip_on_response). */
static struct sip_outgoing *sip_outgoing_new(struct sip_stack *st, const char *from_uri,
					     const char *to_uri, sip_response_fn *cb, void *arg)
{
	struct sip_outgoing *out = gw_xcalloc(1, sizeof(*out));

	out->stack = st;
	out->cb = cb;
	out->arg = arg;
	out->h.kind = SIP_H_OUTGOING;
	out->nh = sip_new_handle(st, &out->h, from_uri, to_uri);
	sip_list_add(&st->out, &out->h);
	return out;
}

struct sip_outgoing *sip_send_message(struct sip_stack *st, const struct sip_out_message *m,
				      sip_response_fn *cb, void *arg)
{
	struct sip_outgoing *out;
	const char *route;

	if (st->shutting_down || !st->nua)
		return NULL;
	out = sip_outgoing_new(st, m->from_uri, m->to_uri, cb, arg);
	out->peer = m->peer;
	sip_audit_out(st, &out->au, "MESSAGE", CONF_SVC_PAGER, m->from_uri, m->to_uri, m->body);
	route = sip_route_url(st, m->peer);
	nua_message(out->nh,
		    NUTAG_URL(m->to_uri),
		    NUTAG_PROXY(route),
		    SIPTAG_CONTENT_TYPE_STR(m->content_type),
		    SIPTAG_PAYLOAD_STR(m->body),
		    TAG_IF(m->subject, SIPTAG_SUBJECT_STR(m->subject)),
		    TAG_IF(m->language, SIPTAG_CONTENT_LANGUAGE_STR(m->language)),
		    TAG_IF(m->call_id, SIPTAG_CALL_ID_STR(m->call_id)),
		    TAG_END());
	sip_count_out(st, m->peer);
	reactor_kick(st->reactor);
	return out;
}

struct sip_outgoing *sip_send_options(struct sip_stack *st, const struct conf_peer *peer,
				      const char *from_uri, sip_response_fn *cb, void *arg)
{
	struct sip_outgoing *out;
	const char *route;
	char *to;

	if (st->shutting_down || !st->nua)
		return NULL;
	to = gw_xasprintf("sip:%s", peer->domain);
	out = sip_outgoing_new(st, from_uri, to, cb, arg);
	route = sip_route_url(st, peer);
	nua_options(out->nh, NUTAG_URL(to), NUTAG_PROXY(route), SIPTAG_MAX_FORWARDS_STR("0"),
		    TAG_END());
	sip_count_out(st, peer);
	reactor_kick(st->reactor);
	free(to);
	return out;
}

struct sip_outgoing *sip_send_refer(struct sip_stack *st, const struct conf_peer *peer,
				    const char *from_uri, const char *to_uri, const char *refer_to,
				    const char *subject, sip_response_fn *cb, void *arg)
{
	struct sip_outgoing *out;
	char *target, clean[128];

	if (st->shutting_down || !st->nua)
		return NULL;
	out = sip_outgoing_new(st, from_uri, to_uri, cb, arg);
	out->peer = peer;
	sip_audit_out(st, &out->au, "REFER", CONF_SVC_GROUPCHAT, from_uri, to_uri, NULL);
	target = gw_xasprintf("<%s>", refer_to);
	if (subject)
		sip_clean_phrase(subject, clean, sizeof(clean));
	/* RFC 4488: no implicit subscription, the final response is all the gateway waits for */
	nua_refer(out->nh, NUTAG_URL(to_uri), NUTAG_PROXY(sip_route_url(st, peer)),
		  SIPTAG_REFER_TO_STR(target), SIPTAG_HEADER_STR("Refer-Sub: false"),
		  SIPTAG_SUPPORTED_STR("norefersub"), TAG_IF(subject, SIPTAG_SUBJECT_STR(clean)),
		  TAG_END());
	sip_count_out(st, peer);
	reactor_kick(st->reactor);
	free(target);
	return out;
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

/* the lists hold struct sip_hobj pointers and are walked as the objects they start */
_Static_assert(offsetof(struct sip_incoming, h) == 0, "sip_incoming: h first");
_Static_assert(offsetof(struct sip_outgoing, h) == 0, "sip_outgoing: h first");
_Static_assert(offsetof(struct sip_sub, h) == 0, "sip_sub: h first");
_Static_assert(offsetof(struct sip_watch, h) == 0, "sip_watch: h first");
_Static_assert(offsetof(struct sip_call, h) == 0, "sip_call: h first");

void sip_stack_shutdown(struct sip_stack *st)
{
	struct sip_incoming *in;
	struct sip_outgoing *out;
	struct sip_hobj *h;

	if (st->shutting_down)
		return;
	st->shutting_down = 1;
	while ((in = sip_list_first(&st->in)))
		sip_incoming_respond(in, 503, "Shutting Down", 5, NULL);
	/* transactions still waiting for an answer would hold nua_shutdown() up until they time
	 * out: their owners are told now and the handles go */
	while ((out = sip_list_first(&st->out))) {
		sip_outgoing_unlink(out);
		nua_handle_bind(out->nh, NULL);
		nua_handle_destroy(out->nh);
		sip_audit_emit(out->peer, &out->au, 503, "Shutting Down");
		if (out->cb)
			out->cb(out->arg, 503, "Shutting Down");
		free(out);
	}
	/* subscriptions: nua_shutdown() ends their dialogs (un-SUBSCRIBE, final NOTIFY); their
	 * owners are not called any more */
	LIST_FOREACH(h, &st->subs.head, link)
		((struct sip_sub *)h)->ending = 1;
	LIST_FOREACH(h, &st->watches.head, link)
		((struct sip_watch *)h)->accepted = 0;
	LIST_FOREACH(h, &st->calls.head, link)
		((struct sip_call *)h)->ending = 1;
	nua_shutdown(st->nua);
	reactor_kick(st->reactor);
}

void sip_stack_free(struct sip_stack *st)
{
	struct sip_incoming *in;
	struct sip_outgoing *out;
	struct sip_sub *sub;
	struct sip_call *call;
	struct sip_watch *w;

	if (!st)
		return;
	guard_remove();
	sip_routes_free(st);
	while ((in = sip_list_first(&st->in))) {
		sip_incoming_unlink(in);
		msg_destroy(in->msg);
		free(in);
	}
	while ((out = sip_list_first(&st->out))) {
		sip_outgoing_unlink(out);
		sip_audit_clear(&out->au);
		free(out);
	}
	while ((sub = sip_list_first(&st->subs))) {
		sip_sub_unlink(sub);
		sip_sub_free(sub);
	}
	while ((call = sip_list_first(&st->calls))) {
		sip_call_unlink(call);
		sip_audit_clear(&call->au);
		free(call->our_sdp);
		free(call);
	}
	while ((w = sip_list_first(&st->watches))) {
		sip_watch_unlink(w);
		if (w->msg)
			msg_destroy(w->msg);
		free(w);
	}
	if (st->nua) {
		/* the loop is gone: drive the stack's shutdown by hand, briefly */
		su_root_t *root = reactor_su_root(st->reactor);

		if (!st->shutting_down) {
			st->shutting_down = 1;
			nua_shutdown(st->nua);
		}
		for (int i = 0; i < 60 && !st->shutdown_final; i++)
			su_root_step(root, 50);
		if (st->shutdown_final)
			nua_destroy(st->nua);
		else
			log_warn("the SIP stack did not shut down in time");
	}
	sip_tls_stop();
	if (st->destroy_ev)
		event_free(st->destroy_ev);
	su_home_deinit(st->home);
	free(st->pst);
	free(st);
}
