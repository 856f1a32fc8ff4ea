/* session.c - session-mode IM (RFC 7573): SIP INVITE + MSRP (RFC 4975) <-> XMPP chat.
 *
 * One struct msess per chat session between an XMPP user and a SIP user.  Its state changes only
 * in msess_enter_state(), which logs `old -> new`:
 *
 *   SIP-initiated:  INVITE -> 200 (SDP answer) -> CONNECTING -> ACTIVE -> CLOSED
 *   XMPP-initiated: first chat message -> INVITING -> (2xx) CONNECTING -> ACTIVE -> CLOSED
 *
 * CONNECTING waits for the MSRP connection: we connect when our role is active (and send a
 * bodyless SEND to bind it, RFC 4975 section 5.4), or accept one on the MSRP listener whose first
 * request's To-Path names this session.  Messages from XMPP wait in a bounded queue until the
 * session is ACTIVE; if it fails they go back to their senders as errors, never dropped.
 *
 * Mapping (RFC 7573): each complete MSRP SEND (chunks reassembled, bounded) becomes a <message
 * type='chat'> with the session's <thread>, to the XMPP user's bare JID until they answer from a
 * resource, then to that resource; isComposing (RFC 3994) <-> XEP-0085 chat states; a
 * Success-Report request <-> an XEP-0184 receipt request; BYE <-> <gone/>; an idle session is
 * closed with BYE and <gone/>.  Sessions are freed once per loop pass, never inside their own
 * callbacks.
 *
 * MSRP over TLS (RFC 4975 section 14, "msrps:"): with <tls>, a second listener takes TLS on
 * <sessions msrps-port>.  A session is secure (TCP/TLS/MSRP, msrps: paths) when the peer's offer
 * is, or, for our offers, when the peer is a TLS peer (route transport tls, or tls="required").
 * TLS is mutual both ways: the other end's certificate must chain to <tls ca>, always, and when
 * its SDP carried a=fingerprint (RFC 8122) the certificate must also match one of them; else the
 * connection is closed and the session fails as if the connection had failed (BYE, the XMPP
 * user told), both fingerprints logged.  Our own SDP carries the SHA-256 fingerprint of our
 * certificate.  So a self-signed certificate, which the fingerprint alone would vouch for in
 * RFC 4975's model, is refused: the SDP reaches the gateway through a peer network's proxies,
 * and the CA is the one thing both sides of the federation agreed on.
 *
 * MSRP relay (RFC 4976): with <sessions relay="msrp[s]://host:port;tcp">, the sessions whose
 * transport matches the relay's scheme go through it.  One connection to the relay, shared by
 * them all, is opened at start and authorised with AUTH (RFC 4976 5.1); the Use-Path of its 200
 * goes before our URI in the a=path we offer or answer, and before the peer's path in the
 * To-Path of what we send.  Frames coming back on that connection are dispatched by the session
 * id of their To-Path (the relay has taken itself off it).  AUTH is renewed before the granted
 * Expires; a lost relay connection ends the sessions that used it and is reopened with back-off.
 * The relay's certificate (msrps) is checked against <tls ca>; fingerprints are not used through a
 * relay (the peer's TLS connection ends at the relay, not here).  Through the relay the gateway
 * takes the active role (RFC 6135): it offers a=setup:active and answers actpass with active,
 * and binds the session with a bodyless SEND through the relay, which then opens the connection
 * to the peer's path.  The peer listens; a relay that can only reach a client by the connection
 * it authorised (Kamailio's msrp module) could not otherwise get our frames to a peer that
 * connected to it and stopped listening.  A peer offering active (or no a=setup) still connects
 * to the relay itself.  A 401 to AUTH is not answered (no credentials are configured): the relay
 * must accept the gateway by its certificate or address.  The shared connection has a cost: a
 * frame our parser refuses on it breaks the stream, so it ends every session through the relay
 * (the connection is then reopened).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/random.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "../gateway/dict.h"
#include "../gateway/gw.h"
#include "../gateway/tls.h"
#include "../sip/msrp.h"
#include "../sip/msrp_sdp.h"
#include "../sip/sip.h"
#include "../xmpp/xmpp.h"
#include "addr.h"
#include "map.h"

#define NS_CHATSTATES "http://jabber.org/protocol/chatstates"
#define NS_RECEIPTS "urn:xmpp:receipts"
#define CT_COMPOSING "application/im-iscomposing+xml"
#define SESS_UNBOUND_PER_SOURCE 16	/* accepted, not yet bound MSRP connections per address */
#define SESS_CONNECTS_PER_SEC 50	/* outgoing MSRP connections started per second */
#define SESS_MAX_FRAME_SLACK 4096	/* headers around a chunk */
#define RELAY_RETRY_MIN_MS 1000		/* a relay connection lost or refused: first retry */
#define RELAY_RETRY_MAX_MS 60000
#define RELAY_DEFAULT_EXPIRES 1800	/* seconds, when the relay's 200 has no Expires */
#define RELAY_MIN_REFRESH 10		/* seconds: AUTH is renewed no more often */

enum msess_state {
	MS_INVITING,		/* our INVITE is out */
	MS_CONNECTING,		/* SDP agreed, waiting for the MSRP connection */
	MS_ACTIVE,
	MS_CLOSED,		/* over: scheduled to be freed */
};

static const char *const msess_state_names[] = {
	[MS_INVITING] = "inviting",
	[MS_CONNECTING] = "connecting",
	[MS_ACTIVE] = "active",
	[MS_CLOSED] = "closed",
};

struct mconn;

/* A message from XMPP on its way to the SIP user. */
struct mout {
	STAILQ_ENTRY(mout) qentry;	/* in se->queue */
	char *stanza_id;	/* the XMPP id, for errors and receipts; may be NULL */
	char *from;		/* the XMPP sender's full JID; NULL: nobody to tell of a failure */
	char *to;		/* what it was sent to (an error comes from there); NULL: sip_jid */
	const char *type;	/* the stanza type of an error's copy: "chat" or "groupchat" */
	char *ctype;
	char *body;
	size_t len;
	int receipt;		/* XEP-0184 request: ask for a success REPORT */
	char message_id[24];
	unsigned chunks_out;	/* chunks sent, not answered */
	int failed;
};

/* A SIP message whose success report waits for the XMPP user's receipt. */
struct mreport {
	char message_id[80];
	unsigned long long total;
};

/* A SIP message handed to XMPP, remembered so that a late XMPP error can still be reported to
 * the SIP sender (a failure REPORT, RFC 4975 7.1.2).  A ring of the last ones per session. */
#define SESS_DELIVERED 16
struct mdelivered {
	char stanza_id[64];
	char message_id[80];
	unsigned long long total;
	int failure_report;	/* the SEND's Failure-Report: 1 yes (also when absent), 0 no, 2 partial */
};

struct msess {
	struct sessions *ss;
	enum msess_state state;
	char id[24];		/* our MSRP session id */
	char *our_path;		/* msrp[s]://addr:port/id;tcp: our URI (From-Path of what we send) */
	char *peer_path;	/* the peer's a=path */
	struct msrp_uri peer_uri;	/* the last URI of it: the peer itself */
	struct msrp_uri hop_uri;	/* the first: where we connect when we are active */
	int secure;		/* msrps: TCP/TLS/MSRP (RFC 4975 14) */
	struct msrp_sdp_fingerprint *peer_fp;	/* the peer's a=fingerprint (RFC 8122): its */
	size_t npeer_fp;			/* certificate must match; NULL/0: the CA alone */
	int via_relay;		/* through the relay's connection (RFC 4976) */
	char *relay_path;	/* via_relay: the relay's Use-Path when the session began */
	char *sdp_path;		/* via_relay: our a=path, relay_path then our_path */
	char *to_path;		/* via_relay: To-Path of our requests, relay_path then peer_path */
	struct event *start_ev;	/* via_relay, active: binds the session on the next loop pass */
	struct msrp_uri our_uri;	/* our_path, parsed once */
	char *pair_key;		/* "xmpp-bare\nsip-uri" */
	char *xmpp_bare;
	char *xmpp_full;	/* set once the user writes from a resource */
	char *sip_uri;
	char *sip_jid;		/* the SIP user as XMPP sees them */
	const struct conf_peer *peer;
	struct xmpp_link *link;
	char thread[40];
	struct sip_call *call;
	int we_connect;
	enum msrp_setup offered;	/* our a=setup when we offered */
	struct mconn *conn;
	STAILQ_HEAD(, mout) queue;	/* waiting for ACTIVE, oldest first */
	size_t q_bytes;
	struct dict *sent;	/* tid -> struct mout (chunks in flight) */
	struct dict *by_msgid;	/* Message-ID -> struct mout (waiting for a REPORT) */
	struct dict *reports;	/* XMPP stanza id -> struct mreport */
	struct mdelivered *delivered;	/* SESS_DELIVERED of them, allocated with the first */
	unsigned ndelivered;	/* total so far; the ring holds the last SESS_DELIVERED */
	/* reassembly of the incoming message (one at a time per session) */
	char in_msgid[80];
	char *in_buf;
	size_t in_len;
	char in_ctype[128];
	int in_report;		/* Success-Report: yes */
	struct event *timer;	/* connect timeout, then idle timeout */
	uint64_t started_ms;	/* gw_now_ms() when made: its age in sessions_list() */
	SLIST_ENTRY(msess) dead_entry;	/* in ss->dead once closed */
	/* a leg of groupchat.c: its callbacks get what a 1:1 session would give XMPP */
	const struct sess_leg_cbs *leg;
	void *leg_arg;
	char *nick_out;		/* a NICKNAME to send once active; then sent, awaiting its answer */
	char nick_tid[MSRP_TID_MAX + 1];	/* our NICKNAME in flight */
	char nick_in_tid[MSRP_TID_MAX + 1];	/* a NICKNAME received, answered later */
	int nick_in_report;	/* its Failure-Report */
	int end_status;		/* for the leg's ended callback: the INVITE's failure status */
	int bye_cause;		/* a Reason for our BYE (0: none) */
	char *bye_text;
};

struct mconn {
	struct sessions *ss;
	struct bufferevent *bev;
	struct msrp_parser *parser;
	struct msess *sess;	/* NULL until bound */
	char peer[64];
	struct sockaddr_storage addr;	/* the other end (accepted connections) */
	int accepted;
	struct event *bind_ev;	/* accepted: closes it if no session binds it in time */
	int tls;		/* an msrps connection: bev is a libevent-openssl bufferevent */
	int relay;		/* the connection to the relay: carries many sessions, sess NULL */
	int dead;
	LIST_ENTRY(mconn) entry;	/* in ss->conns */
};

/* The connection to the MSRP relay (RFC 4976), shared by every session through it.  Its state
 * changes only in relay_enter_state(). */
enum relay_state {
	RELAY_DOWN,		/* waiting to (re)connect */
	RELAY_CONNECTING,	/* TCP (and TLS) under way */
	RELAY_AUTHORISING,	/* AUTH sent, waiting for its 200 */
	RELAY_UP,		/* authorised: use_path is valid */
};

static const char *const relay_state_names[] = {
	[RELAY_DOWN] = "down",
	[RELAY_CONNECTING] = "connecting",
	[RELAY_AUTHORISING] = "authorising",
	[RELAY_UP] = "up",
};

struct mrelay {
	enum relay_state state;
	struct msrp_uri uri;	/* <sessions relay>, parsed */
	char *uri_text;
	char *client_path;	/* our URI in AUTH's From-Path */
	char *use_path;		/* the 200's Use-Path (one or more URIs); NULL unless UP */
	struct mconn *conn;
	char auth_tid[MSRP_TID_MAX + 1];	/* the AUTH in flight, "" when none */
	struct event *timer;	/* retry, AUTH timeout, then the AUTH refresh */
	unsigned retry_ms;
	unsigned expires;	/* seconds granted by the last 200 */
};

struct sessions {
	struct gw *gw;
	struct evconnlistener *listener;
	struct evconnlistener *tls_listener;	/* msrps, with <tls> */
	char listen_addr[64];
	unsigned listen_port;
	unsigned tls_port;
	SSL_CTX *tls_server, *tls_client;	/* NULL without <tls> */
	char fingerprint[MSRP_SDP_FINGERPRINT_TEXT];	/* of our certificate, "sha-256 ..." */
	struct mrelay *relay;	/* NULL without <sessions relay> */
	struct dict *by_id;	/* our session id -> struct msess */
	struct dict *by_pair;	/* pair key -> struct msess */
	struct dict *per_user;	/* XMPP bare JID -> (intptr) sessions */
	size_t count;
	SLIST_HEAD(, msess) dead;	/* closed sessions, freed by reap_ev */
	LIST_HEAD(, mconn) conns;
	struct event *reap_ev;
	int closing;
	int xmpp_opens;		/* some peer has sessions="yes": XMPP chats may open sessions */
	size_t nconns;		/* MSRP connections, bound or not */
	uint64_t connect_second;	/* rate of outgoing connections: this second's count */
	unsigned connects;
	struct log_limit refusal_log;	/* connections and paths refused */
};

/* ---------------------------------------------------------------- small tables */

/* MSRP status of a failed SEND -> XMPP condition (RFC 4975 section 7.2 codes). */
static const struct {
	int status;
	const char *condition;
} msrp_error_table[] = {
	{ 400, "bad-request" },
	{ 403, "forbidden" },
	{ 408, "remote-server-timeout" },
	{ 413, "policy-violation" },
	{ 415, "not-acceptable" },
	{ 423, "bad-request" },
	{ 481, "item-not-found" },
	{ 501, "feature-not-implemented" },
	{ 506, "conflict" },
};

const char *map_msrp_error(int status)
{
	for (size_t i = 0; i < sizeof(msrp_error_table) / sizeof(msrp_error_table[0]); i++)
		if (msrp_error_table[i].status == status)
			return msrp_error_table[i].condition;
	return "undefined-condition";
}

/* The comment of an MSRP status the gateway sends (RFC 4975 7.2, RFC 7701 5.2), as a table. */
static const struct {
	int status;
	const char *comment;
} msrp_comment_table[] = {
	{ 200, "OK" },
	{ 400, "Bad Request" },
	{ 403, "Forbidden" },
	{ 408, "Timeout" },
	{ 413, "Message Too Large" },
	{ 415, "Unsupported Media Type" },
	{ 423, "Parameter Out Of Bounds" },
	{ 424, "Malformed Nickname" },
	{ 425, "Nickname Reserved Or Already In Use" },
	{ 428, "Private Messages Not Supported" },
	{ 481, "No Such Session" },
	{ 501, "Unknown Method" },
	{ 506, "Session Already Bound" },
};

static const char *msrp_status_comment(int status)
{
	for (size_t i = 0; i < sizeof(msrp_comment_table) / sizeof(msrp_comment_table[0]); i++)
		if (msrp_comment_table[i].status == status)
			return msrp_comment_table[i].comment;
	return "Error";
}

/* ---------------------------------------------------------------- helpers */

static void mout_free(struct mout *m)
{
	free(m->stanza_id);
	free(m->from);
	free(m->to);
	free(m->ctype);
	free(m->body);
	free(m);
}

static xmpp_stanza_t *sess_tag(struct sessions *ss, const char *name, const char *ns)
{
	return map_tag(ss->gw->xctx, name, ns);
}

static void sess_send_xmpp(struct msess *se, xmpp_stanza_t *s)
{
	if (se->link && xmpp_link_is_up(se->link))
		xmpp_link_send(se->link, s);
	xmpp_stanza_release(s);
}

/* An error back to the XMPP sender of a queued or failed message. */
static void mout_bounce(struct msess *se, struct mout *m, const char *condition, const char *text)
{
	xmpp_stanza_t *msg, *body, *t, *reply;

	if (!m->from)
		return;		/* e.g. a room's message to a SIP occupant: nobody to tell */
	msg = sess_tag(se->ss, "message", NULL);
	log_info("session %s: message from %s bounced: %s (%s)", se->id, m->from, condition,
		 text ? text : "");
	xmpp_stanza_set_type(msg, m->type ? m->type : "chat");
	xmpp_stanza_set_from(msg, m->from);
	xmpp_stanza_set_to(msg, m->to ? m->to : se->sip_jid);
	if (m->stanza_id)
		xmpp_stanza_set_id(msg, m->stanza_id);
	if (m->body && m->ctype && strncmp(m->ctype, "text/plain", 10) == 0) {
		body = sess_tag(se->ss, "body", NULL);
		t = xmpp_stanza_new(se->ss->gw->xctx);
		xmpp_stanza_set_text_with_size(t, m->body, m->len);
		xmpp_stanza_add_child_ex(body, t, 0);
		xmpp_stanza_add_child_ex(msg, body, 0);
	}
	reply = map_error_reply(se->ss->gw->xctx, msg, condition, text);
	xmpp_stanza_release(msg);
	sess_send_xmpp(se, reply);
}

/* Every message still waiting for the session to become active goes back to its sender. */
static void msess_bounce_queued(struct msess *se, const char *condition, const char *text)
{
	struct mout *m;

	while ((m = STAILQ_FIRST(&se->queue))) {
		STAILQ_REMOVE_HEAD(&se->queue, qentry);
		se->q_bytes -= m->len;
		mout_bounce(se, m, condition, text);
		mout_free(m);
	}
}

/* ---------------------------------------------------------------- lifecycle */

static void msess_close(struct msess *se, int send_bye, int tell_xmpp, const char *why);

static void msess_enter_state(struct msess *se, enum msess_state state)
{
	if (se->state == state)
		return;
	log_info("session %s (%s <-> %s): %s -> %s", se->id, se->xmpp_bare, se->sip_uri,
		 msess_state_names[se->state], msess_state_names[state]);
	se->state = state;
}

static void msess_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct msess *se = arg;

	if (se->state == MS_ACTIVE)
		msess_close(se, 1, 1, "idle timeout");
	else
		msess_close(se, 1, 1, "no MSRP connection");
}

static void msess_arm(struct msess *se, unsigned ms)
{
	struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };

	evtimer_add(se->timer, &tv);
}

static void random_id(char *buf, size_t len)
{
	msrp_make_id(buf, len);
}

/* Whether a session of this transport goes through the relay: 1 (the relay is up), 0 (no relay
 * for this transport: direct), -1 (it would, but the relay is not up: the session is refused). */
static int sess_relay_use(const struct sessions *ss, int secure)
{
	if (!ss->relay || ss->relay->uri.secure != secure)
		return 0;
	return ss->relay->state == RELAY_UP ? 1 : -1;
}

/* Our offers to a TLS peer (its route over TLS, or tls="required") are msrps (TCP/TLS/MSRP),
 * when <tls> is there; to any other peer, plain. */
static int sess_wants_tls(const struct sessions *ss, const struct conf_peer *peer)
{
	return ss->tls_server && (peer->route_transport == CONF_TRANSPORT_TLS ||
				  peer->tls == CONF_PEER_TLS_REQUIRED);
}

/* The To-Path of our requests: through the relay, its Use-Path first (RFC 4976 6). */
static const char *msess_to_path(const struct msess *se)
{
	return se->to_path ? se->to_path : se->peer_path;
}

/* A session; leg NULL: a 1:1 chat of xmpp_bare with sip_uri (sip_jid as XMPP sees the SIP
 * user), counted in the per-user and total limits.  leg set: a leg of groupchat.c (xmpp_bare and
 * sip_jid only name the ends in logs; groupchat.c counts its own). */
static struct msess *msess_new(struct sessions *ss, const char *xmpp_bare, const char *sip_uri,
			       const char *sip_jid, const struct conf_peer *peer, int secure,
			       const struct sess_leg_cbs *leg, void *leg_arg)
{
	struct msess *se = gw_xcalloc(1, sizeof(*se));
	const char *addr = ss->listen_addr;
	int v6 = strchr(addr, ':') != NULL;
	intptr_t n;

	se->ss = ss;
	STAILQ_INIT(&se->queue);
	random_id(se->id, 21);
	se->secure = secure;
	se->our_path = gw_xasprintf("%s://%s%s%s:%u/%s;tcp", secure ? "msrps" : "msrp",
				    v6 ? "[" : "", addr, v6 ? "]" : "",
				    secure ? ss->tls_port : ss->listen_port, se->id);
	if (msrp_uri_parse(se->our_path, strlen(se->our_path), &se->our_uri) != 0)
		gw_fatal("our own MSRP URI %s does not parse", se->our_path);
	se->offered = MSRP_SETUP_ACTPASS;
	if (sess_relay_use(ss, secure) > 0) {
		se->via_relay = 1;
		se->relay_path = gw_xstrdup(ss->relay->use_path);
		se->sdp_path = gw_xasprintf("%s %s", se->relay_path, se->our_path);
		/* through the relay we are the active side: see the file's comment */
		se->offered = MSRP_SETUP_ACTIVE;
	}
	se->xmpp_bare = gw_xstrdup(xmpp_bare);
	se->sip_uri = gw_xstrdup(sip_uri);
	se->sip_jid = gw_xstrdup(sip_jid);
	se->peer = peer;
	se->link = gw_link_for_component(ss->gw, peer->component);
	se->pair_key = gw_xasprintf("%s\n%s", xmpp_bare, sip_uri);
	snprintf(se->thread, sizeof(se->thread), "msrp-%s", se->id);
	se->sent = dict_new();
	se->by_msgid = dict_new();
	se->reports = dict_new();
	se->timer = evtimer_new(ss->gw->base, msess_timer_cb, se);
	if (!se->timer)
		gw_fatal("evtimer_new failed");
	dict_set(ss->by_id, se->id, se);
	se->started_ms = gw_now_ms(ss->gw);
	se->state = MS_CONNECTING;
	se->leg = leg;
	se->leg_arg = leg_arg;
	if (leg)
		return se;
	dict_set(ss->by_pair, se->pair_key, se);
	n = (intptr_t)dict_get(ss->per_user, xmpp_bare);
	dict_set(ss->per_user, xmpp_bare, (void *)(n + 1));
	ss->count++;
	ss->gw->stats.sessions_started++;	/* started - ended = count, for the metrics */
	return se;
}

static void mconn_close(struct mconn *c);

static void free_report(void *arg, const char *key, void *value)
{
	free(value);
}

static void msess_free(struct msess *se)
{
	evtimer_del(se->timer);
	event_free(se->timer);
	if (se->start_ev)
		event_free(se->start_ev);
	free(se->peer_fp);
	free(se->relay_path);
	free(se->sdp_path);
	free(se->to_path);
	dict_free(se->sent);	/* its values are also in by_msgid or the queue */
	dict_foreach(se->reports, free_report, NULL);
	dict_free(se->reports);
	dict_free(se->by_msgid);
	free(se->in_buf);
	free(se->delivered);
	free(se->our_path);
	free(se->peer_path);
	free(se->pair_key);
	free(se->xmpp_bare);
	free(se->xmpp_full);
	free(se->sip_uri);
	free(se->sip_jid);
	free(se->nick_out);
	free(se->bye_text);
	free(se);
}

static void reap_cb(evutil_socket_t fd, short what, void *arg)
{
	struct sessions *ss = arg;
	struct msess *se;

	while ((se = SLIST_FIRST(&ss->dead))) {
		SLIST_REMOVE_HEAD(&ss->dead, dead_entry);
		msess_free(se);
	}
	for (struct mconn *c = LIST_FIRST(&ss->conns), *next; c; c = next) {
		next = LIST_NEXT(c, entry);
		if (!c->dead)
			continue;
		LIST_REMOVE(c, entry);
		ss->nconns--;
		if (c->bev)
			bufferevent_free(c->bev);
		if (c->bind_ev)
			event_free(c->bind_ev);
		msrp_parser_free(c->parser);
		free(c);
	}
}

struct bounce_all {
	struct msess *se;
	const char *condition;
	const char *text;
};

static void bounce_pending(void *arg, const char *key, void *value)
{
	struct bounce_all *b = arg;
	struct mout *m = value;

	if (!m->failed)
		mout_bounce(b->se, m, b->condition, b->text);
	m->failed = 1;
}

/* Collects each message once, by address: one may sit under several chunk tids and its
 * Message-ID at the same time. */
static void free_mout_once(void *arg, const char *key, void *value)
{
	struct dict *seen = arg;
	char addr[32];

	snprintf(addr, sizeof(addr), "%p", value);
	dict_set(seen, addr, value);
}

static void free_seen(void *arg, const char *key, void *value)
{
	mout_free(value);
}

/* Ends the session: BYE if asked, <gone/> to the XMPP user if asked, every message not
 * delivered back to its sender as an error. */
static void msess_close(struct msess *se, int send_bye, int tell_xmpp, const char *why)
{
	struct sessions *ss = se->ss;
	struct bounce_all b = { se, "recipient-unavailable", why };
	struct dict *seen;
	intptr_t n;

	if (se->state == MS_CLOSED)
		return;
	log_info("session %s: closing (%s)", se->id, why);
	msess_enter_state(se, MS_CLOSED);
	evtimer_del(se->timer);
	if (se->call) {
		if (send_bye)
			sip_call_end_reason(se->call, se->bye_cause, se->bye_text);
		se->call = NULL;
	}
	msess_bounce_queued(se, "recipient-unavailable", why);
	/* in flight: bounced once each; a message may be in both tables */
	dict_foreach(se->sent, bounce_pending, &b);
	seen = dict_new();
	dict_foreach(se->sent, free_mout_once, seen);
	dict_foreach(se->by_msgid, free_mout_once, seen);
	dict_foreach(seen, free_seen, NULL);
	dict_free(seen);
	dict_free(se->sent);
	dict_free(se->by_msgid);
	se->sent = dict_new();
	se->by_msgid = dict_new();
	if (tell_xmpp && se->leg) {
		se->leg->ended(se->leg_arg, se, se->end_status, why);
	} else if (tell_xmpp) {
		xmpp_stanza_t *msg = sess_tag(ss, "message", NULL);

		xmpp_stanza_set_type(msg, "chat");
		xmpp_stanza_set_from(msg, se->sip_jid);
		xmpp_stanza_set_to(msg, se->xmpp_full ? se->xmpp_full : se->xmpp_bare);
		xmpp_stanza_add_child_ex(msg, sess_tag(ss, "gone", NS_CHATSTATES), 0);
		{
			xmpp_stanza_t *th = sess_tag(ss, "thread", NULL), *t = xmpp_stanza_new(ss->gw->xctx);

			xmpp_stanza_set_text(t, se->thread);
			xmpp_stanza_add_child_ex(th, t, 0);
			xmpp_stanza_add_child_ex(msg, th, 0);
		}
		sess_send_xmpp(se, msg);
	}
	if (se->conn) {
		if (!se->conn->relay) {		/* the relay's connection serves others */
			se->conn->sess = NULL;
			mconn_close(se->conn);
		}
		se->conn = NULL;
	}
	if (se->start_ev)
		evtimer_del(se->start_ev);
	dict_del(ss->by_id, se->id);
	if (se->leg)
		goto dead;
	if (dict_get(ss->by_pair, se->pair_key) == se)
		dict_del(ss->by_pair, se->pair_key);
	n = (intptr_t)dict_get(ss->per_user, se->xmpp_bare);
	if (n <= 1)
		dict_del(ss->per_user, se->xmpp_bare);
	else
		dict_set(ss->per_user, se->xmpp_bare, (void *)(n - 1));
	ss->count--;
	ss->gw->stats.sessions_ended++;
dead:
	SLIST_INSERT_HEAD(&ss->dead, se, dead_entry);
	event_active(ss->reap_ev, EV_TIMEOUT, 0);
}

/* ---------------------------------------------------------------- MSRP output */

static void mconn_write(struct mconn *c, char *frame, size_t len)
{
	if (!frame) {
		log_warn("MSRP frame not built (invalid argument): not sent");
		return;
	}
	if (c && c->bev && !c->dead)
		bufferevent_write(c->bev, frame, len);
	free(frame);
}

static void msess_touch(struct msess *se)
{
	if (se->state == MS_ACTIVE && !se->leg)
		msess_arm(se, se->ss->gw->conf->sessions_idle_s * 1000);
}

/* Sends one message in chunks of chunk-size. */
static void msess_send(struct msess *se, struct mout *m)
{
	size_t chunk = se->ss->gw->conf->sessions_chunk_size, off = 0;

	if (!m->message_id[0])
		random_id(m->message_id, 17);
	do {
		size_t n = m->len - off > chunk ? chunk : m->len - off;
		char tid[17], flag = off + n < m->len ? MSRP_MORE : MSRP_END;
		size_t flen;
		char *frame;

		random_id(tid, sizeof(tid));
		frame = msrp_build_send(tid, msess_to_path(se), se->our_path, m->message_id, off + 1,
					m->len, m->ctype, m->body + off, n, flag,
					m->receipt ? 1 : 0, 1, &flen);
		dict_set(se->sent, tid, m);
		m->chunks_out++;
		mconn_write(se->conn, frame, flen);
		off += n;
	} while (off < m->len);
	if (m->receipt)
		dict_set(se->by_msgid, m->message_id, m);
	msess_touch(se);
}

static void msess_flush(struct msess *se)
{
	struct mout *m;

	while ((m = STAILQ_FIRST(&se->queue)) && se->state == MS_ACTIVE) {
		STAILQ_REMOVE_HEAD(&se->queue, qentry);
		se->q_bytes -= m->len;
		msess_send(se, m);
	}
}

/* An isComposing document (RFC 3994) for a chat state. */
static void msess_send_composing(struct msess *se, const char *state)
{
	struct mout *m = gw_xcalloc(1, sizeof(*m));

	m->from = gw_xstrdup(se->xmpp_full ? se->xmpp_full : se->xmpp_bare);
	m->ctype = gw_xstrdup(CT_COMPOSING);
	m->body = map_iscomposing_build(state, 0);
	m->len = strlen(m->body);
	m->failed = 1;		/* nobody to bounce it to: a lost chat state is not a message */
	msess_send(se, m);
}

/* Our NICKNAME (RFC 7701 5.1): its answer goes to the leg's nickname_answered. */
static void msess_send_nickname(struct msess *se)
{
	size_t len;
	char *frame;

	random_id(se->nick_tid, sizeof(se->nick_tid) > 17 ? 17 : sizeof(se->nick_tid));
	frame = msrp_build_nickname(se->nick_tid, msess_to_path(se), se->our_path, se->nick_out,
				    &len);
	if (!frame) {
		se->nick_tid[0] = '\0';
		se->leg->nickname_answered(se->leg_arg, se, 424);
		return;
	}
	mconn_write(se->conn, frame, len);
}

static void msess_activate(struct msess *se, struct mconn *c)
{
	se->conn = c;
	if (!c->relay)
		c->sess = se;
	if (c->bind_ev)
		evtimer_del(c->bind_ev);
	msess_enter_state(se, MS_ACTIVE);
	evtimer_del(se->timer);		/* the connect timeout */
	msess_touch(se);
	if (se->leg && se->nick_out && !se->nick_tid[0])
		msess_send_nickname(se);
	msess_flush(se);
	if (se->leg && se->state == MS_ACTIVE)
		se->leg->active(se->leg_arg, se);
}

/* ---------------------------------------------------------------- MSRP input */

/* Answers request f received on c for session se (NULL: none owns it). */
static void mconn_respond(struct mconn *c, struct msess *se, const struct msrp_frame *f,
			  int status, const char *comment)
{
	size_t len;
	char *frame;

	if (f->failure_report == 0 && status == 200)
		return;		/* Failure-Report: no asks for no responses at all */
	if (f->failure_report == 2 && status == 200)
		return;		/* partial: failures only */
	{
		/* RFC 4975 7.2: to the first URI of the request's From-Path, from ours (or the
		 * URI the request was sent to, when no session owns it) */
		size_t n1 = msrp_path_first(f->from_path, f->from_path_len);
		size_t n2 = msrp_path_first(f->to_path, f->to_path_len);
		char *to = gw_xstrndup(f->from_path, n1), *from = gw_xstrndup(f->to_path, n2);

		frame = msrp_build_response(f->tid, status, comment, to,
					    se ? se->our_path : from, &len);
		free(to);
		free(from);
	}
	mconn_write(c, frame, len);
}

/* The ring slot for the next message handed to XMPP (the ring is allocated on first use: a
 * room's leg that only receives never needs it). */
static struct mdelivered *msess_delivered_slot(struct msess *se)
{
	if (!se->delivered)
		se->delivered = gw_xcalloc(SESS_DELIVERED, sizeof(*se->delivered));
	return &se->delivered[se->ndelivered++ % SESS_DELIVERED];
}

/* A complete message from the SIP user: to the XMPP user. */
static void msess_deliver(struct msess *se, const char *ctype, const char *body, size_t len,
			  int report, const char *message_id, int failure_report)
{
	struct sessions *ss = se->ss;
	xmpp_stanza_t *msg = sess_tag(ss, "message", NULL), *el, *t;
	struct map_cpim cpim;
	char id[64];

	xmpp_stanza_set_type(msg, "chat");
	xmpp_stanza_set_from(msg, se->sip_jid);
	xmpp_stanza_set_to(msg, se->xmpp_full ? se->xmpp_full : se->xmpp_bare);
	gw_make_id(ss->gw, "s", id, sizeof(id));
	xmpp_stanza_set_id(msg, id);
	if (message_id && failure_report != 0) {
		struct mdelivered *d = msess_delivered_slot(se);

		snprintf(d->stanza_id, sizeof(d->stanza_id), "%s", id);
		snprintf(d->message_id, sizeof(d->message_id), "%s", message_id);
		d->total = len;
		d->failure_report = failure_report;
	}
	if (strncmp(ctype, CT_COMPOSING, strlen(CT_COMPOSING)) == 0) {
		/* RFC 3994 -> XEP-0085; a malformed document is taken as "stopped composing" */
		const char *state = map_composing_to_chatstate(map_iscomposing_parse(body, len,
										     NULL));

		xmpp_stanza_add_child_ex(msg, sess_tag(ss, state ? state : "paused", NS_CHATSTATES),
					 0);
	} else {
		if (strncmp(ctype, "message/cpim", 12) == 0 && map_cpim_parse(body, len, &cpim) == 0) {
			body = cpim.body.p;
			len = cpim.body.n;
		}
		el = sess_tag(ss, "body", NULL);
		t = xmpp_stanza_new(ss->gw->xctx);
		xmpp_stanza_set_text_with_size(t, body, len);
		xmpp_stanza_add_child_ex(el, t, 0);
		xmpp_stanza_add_child_ex(msg, el, 0);
		xmpp_stanza_add_child_ex(msg, sess_tag(ss, "active", NS_CHATSTATES), 0);
		if (report && message_id) {
			struct mreport *r = gw_xcalloc(1, sizeof(*r));

			snprintf(r->message_id, sizeof(r->message_id), "%s", message_id);
			r->total = len;
			dict_set(se->reports, id, r);
			xmpp_stanza_add_child_ex(msg, sess_tag(ss, "request", NS_RECEIPTS), 0);
		}
	}
	el = sess_tag(ss, "thread", NULL);
	t = xmpp_stanza_new(ss->gw->xctx);
	xmpp_stanza_set_text(t, se->thread);
	xmpp_stanza_add_child_ex(el, t, 0);
	xmpp_stanza_add_child_ex(msg, el, 0);
	sess_send_xmpp(se, msg);
}

static int text_ok(const char *ctype, const char *body, size_t len)
{
	if (strncmp(ctype, "text/plain", 10) == 0 || strncmp(ctype, "message/cpim", 12) == 0)
		return map_text_check(body, len) == 0;
	return 1;
}

static void mconn_on_send(struct mconn *c, struct msess *se, const struct msrp_frame *f)
{
	size_t max = se->ss->gw->conf->sessions_max_message;
	char msgid[80];

	msess_touch(se);
	if (!f->body_len && !f->content_type) {
		mconn_respond(c, se, f, 200, "OK");	/* the binding SEND (RFC 4975 5.4) */
		return;
	}
	snprintf(msgid, sizeof(msgid), "%.*s", (int)(f->message_id_len < 79 ? f->message_id_len : 79),
		 f->message_id ? f->message_id : "");
	if (!f->content_type && f->body_len) {
		mconn_respond(c, se, f, 400, "Body Without Content-Type");
		return;
	}
	if (!se->link || !xmpp_link_is_up(se->link)) {
		mconn_respond(c, se, f, 403, "XMPP Server Unreachable");
		return;
	}
	/* a new message starts (first chunk), or continues the one being reassembled */
	if (!f->has_byte_range || f->range_start == 1 || strcmp(msgid, se->in_msgid) != 0) {
		free(se->in_buf);
		se->in_buf = NULL;
		se->in_len = 0;
		snprintf(se->in_msgid, sizeof(se->in_msgid), "%s", msgid);
		snprintf(se->in_ctype, sizeof(se->in_ctype), "%.*s",
			 (int)(f->content_type_len < 127 ? f->content_type_len : 127),
			 f->content_type ? f->content_type : "text/plain");
		se->in_report = f->success_report == 1;
		if (f->has_byte_range && f->range_start != 1) {
			mconn_respond(c, se, f, 400, "Chunk Out Of Order");
			return;
		}
	} else if (f->range_start != se->in_len + 1) {
		mconn_respond(c, se, f, 400, "Chunk Out Of Order");
		return;
	}
	if (f->oversized ||
	    (f->has_byte_range && f->range_total != MSRP_UNKNOWN && f->range_total > max) ||
	    se->in_len + f->body_len > max) {
		free(se->in_buf);
		se->in_buf = NULL;
		se->in_len = 0;
		se->in_msgid[0] = '\0';
		mconn_respond(c, se, f, 413, "Message Too Large");
		return;
	}
	if (f->flag == MSRP_ABORT) {
		free(se->in_buf);
		se->in_buf = NULL;
		se->in_len = 0;
		se->in_msgid[0] = '\0';
		mconn_respond(c, se, f, 200, "OK");
		return;
	}
	se->in_buf = gw_xrealloc(se->in_buf, se->in_len + f->body_len + 1);
	memcpy(se->in_buf + se->in_len, f->body, f->body_len);
	se->in_len += f->body_len;
	if (f->flag == MSRP_MORE) {
		mconn_respond(c, se, f, 200, "OK");
		return;
	}
	if (!text_ok(se->in_ctype, se->in_buf, se->in_len)) {
		mconn_respond(c, se, f, 415, "Invalid UTF-8");
	} else if (strncmp(se->in_ctype, "text/plain", 10) != 0 &&
		   strncmp(se->in_ctype, "message/cpim", 12) != 0 &&
		   strncmp(se->in_ctype, CT_COMPOSING, strlen(CT_COMPOSING)) != 0) {
		mconn_respond(c, se, f, 415, "Unsupported Media Type");
	} else if (se->leg) {
		char sid[64] = "";
		int status = 200;

		if (strncmp(se->in_ctype, CT_COMPOSING, strlen(CT_COMPOSING)) != 0)
			status = se->leg->message(se->leg_arg, se, se->in_ctype, se->in_buf,
						  se->in_len, sid, sizeof(sid));
		if (c->dead || se->state == MS_CLOSED)
			goto out;
		mconn_respond(c, se, f, status, status == 200 ? "OK" : msrp_status_comment(status));
		if (status == 200 && sid[0] && f->failure_report != 0) {
			struct mdelivered *d = msess_delivered_slot(se);

			snprintf(d->stanza_id, sizeof(d->stanza_id), "%s", sid);
			snprintf(d->message_id, sizeof(d->message_id), "%s", se->in_msgid);
			d->total = se->in_len;
			d->failure_report = f->failure_report;
		}
	} else {
		mconn_respond(c, se, f, 200, "OK");
		msess_deliver(se, se->in_ctype, se->in_buf, se->in_len, se->in_report, se->in_msgid,
			      f->failure_report);
	}
out:
	free(se->in_buf);
	se->in_buf = NULL;
	se->in_len = 0;
	se->in_msgid[0] = '\0';
}

static void mconn_on_response(struct mconn *c, struct msess *se, const struct msrp_frame *f)
{
	struct mout *m;

	if (se->leg && se->nick_tid[0] && strcmp(f->tid, se->nick_tid) == 0) {
		se->nick_tid[0] = '\0';
		free(se->nick_out);
		se->nick_out = NULL;
		se->leg->nickname_answered(se->leg_arg, se, f->status);
		return;
	}
	m = dict_del(se->sent, f->tid);

	if (!m)
		return;
	m->chunks_out--;
	if (f->status != 200 && !m->failed) {
		char text[96];

		snprintf(text, sizeof(text), "MSRP %03d%s%s", f->status, f->comment ? " " : "",
			 f->comment ? f->comment : "");
		mout_bounce(se, m, map_msrp_error(f->status), text);
		m->failed = 1;
	}
	if (!m->chunks_out && (m->failed || !m->receipt)) {
		if (dict_get(se->by_msgid, m->message_id) == m)
			dict_del(se->by_msgid, m->message_id);
		mout_free(m);
	}
}

static void mconn_on_report(struct mconn *c, struct msess *se, const struct msrp_frame *f)
{
	char msgid[80];
	struct mout *m;

	snprintf(msgid, sizeof(msgid), "%.*s", (int)(f->message_id_len < 79 ? f->message_id_len : 79),
		 f->message_id ? f->message_id : "");
	m = dict_get(se->by_msgid, msgid);
	if (!m)
		return;		/* REPORTs get no response (RFC 4975 7.1.2) */
	if (f->has_status && f->status_code == 200 && m->stanza_id && !m->failed) {
		/* XEP-0184: the SIP user's client received it */
		xmpp_stanza_t *msg = sess_tag(se->ss, "message", NULL), *r;

		xmpp_stanza_set_from(msg, se->sip_jid);
		xmpp_stanza_set_to(msg, m->from);
		r = sess_tag(se->ss, "received", NS_RECEIPTS);
		xmpp_stanza_set_attribute(r, "id", m->stanza_id);
		xmpp_stanza_add_child_ex(msg, r, 0);
		sess_send_xmpp(se, msg);
	} else if (f->has_status && f->status_code != 200 && !m->failed) {
		mout_bounce(se, m, map_msrp_error(f->status_code), "failure report");
		m->failed = 1;
	}
	dict_del(se->by_msgid, msgid);
	if (!m->chunks_out)
		mout_free(m);
}

/* A NICKNAME (RFC 7701 5.1) on a leg: malformed 424 here, else the leg answers, now or later. */
static void mconn_on_nickname(struct mconn *c, struct msess *se, const struct msrp_frame *f)
{
	char nick[MSRP_NICKNAME_MAX + 1];
	int status;

	msess_touch(se);
	if (!f->use_nickname ||
	    msrp_nickname_parse(f->use_nickname, f->use_nickname_len, nick, sizeof(nick)) < 0) {
		mconn_respond(c, se, f, 424, msrp_status_comment(424));
		return;
	}
	if (se->nick_in_tid[0]) {
		mconn_respond(c, se, f, 403, "Another NICKNAME Is Pending");
		return;
	}
	snprintf(se->nick_in_tid, sizeof(se->nick_in_tid), "%s", f->tid);
	se->nick_in_report = f->failure_report;
	status = se->leg->nickname(se->leg_arg, se, nick);
	if (status && se->state != MS_CLOSED)
		sessions_leg_nickname_answer(se, status);
}

/* RFC 4975 7.3.1: the first URI of To-Path must be ours and the last of From-Path the peer's. */
static int msess_paths_ok(const struct msess *se, const struct msrp_frame *f)
{
	struct msrp_uri to, from;
	size_t n = msrp_path_first(f->to_path, f->to_path_len);
	const char *last = f->from_path;

	for (const char *p = f->from_path; p < f->from_path + f->from_path_len; p++)
		if (*p == ' ')
			last = p + 1;
	return n && msrp_uri_parse(f->to_path, n, &to) == 0 && msrp_uri_equal(&to, &se->our_uri) &&
	       msrp_uri_parse(last, (size_t)(f->from_path + f->from_path_len - last), &from) == 0 &&
	       msrp_uri_equal(&from, &se->peer_uri);
}

/* Finds the session a request on an unbound connection is for: the session id of the To-Path's
 * first URI must be ours, and the From-Path must end with the peer's path. */
static struct msess *mconn_bind(struct mconn *c, const struct msrp_frame *f)
{
	struct msrp_uri to;
	const char *sp;
	size_t n;
	struct msess *se;

	sp = memchr(f->to_path, ' ', f->to_path_len);
	n = sp ? (size_t)(sp - f->to_path) : f->to_path_len;
	if (msrp_uri_parse(f->to_path, n, &to) != 0)
		return NULL;
	se = dict_get(c->ss->by_id, to.session);
	if (!se || se->state != MS_CONNECTING || se->we_connect || se->via_relay)
		return NULL;
	/* an msrps session only over TLS, an msrp one only without */
	if (se->secure != c->tls) {
		log_refusal(&c->ss->refusal_log, "MSRP connection from %s for session %s: %s "
			    "connection for an %s session", c->peer, se->id, c->tls ? "a TLS" : "a plain",
			    se->secure ? "msrps" : "msrp");
		return NULL;
	}
	/* the session's own peer network, not just any, must trust the connection's source */
	if (!conf_peer_trusts(se->peer, (const struct sockaddr *)&c->addr)) {
		log_refusal(&c->ss->refusal_log, "MSRP connection from %s for session %s: peer %s "
			    "does not trust this address", c->peer, se->id, se->peer->name);
		return NULL;
	}
	return se;
}

/* The fingerprint of cert under hash h into text (RFC 8122 form); "(none)" when it cannot be
 * computed.  Returns the digest length (0 on failure) with the digest in d. */
static unsigned cert_fingerprint(X509 *cert, enum msrp_hash h, unsigned char d[EVP_MAX_MD_SIZE],
				 char *text, size_t len)
{
	const EVP_MD *md = EVP_get_digestbyname(msrp_sdp_hash_openssl_name(h));
	unsigned n = 0;

	snprintf(text, len, "(none)");
	if (!cert || !md || X509_digest(cert, md, d, &n) != 1) {
		ERR_clear_error();
		return 0;
	}
	msrp_sdp_fingerprint_format(h, d, n, text, len);
	return n;
}

/* RFC 8122 (RFC 4975 14.2): the certificate at the other end of c matches one of the session's
 * a=fingerprint, checked with the strongest hash function among them.  A session without any
 * relies on the handshake's check against <tls ca> alone.  Returns 1, or 0 after logging both
 * sides of the mismatch. */
static int mconn_fingerprint_ok(struct mconn *c, struct msess *se)
{
	SSL *ssl;
	X509 *cert;
	unsigned char d[EVP_MAX_MD_SIZE];
	char got[MSRP_SDP_FINGERPRINT_TEXT], want[2 * MSRP_SDP_FINGERPRINT_TEXT];
	size_t w = 0;
	unsigned n;
	int h;

	if (!c->tls || !se->npeer_fp)
		return 1;
	ssl = bufferevent_openssl_get_ssl(c->bev);
	cert = ssl ? SSL_get0_peer_certificate(ssl) : NULL;
	h = msrp_sdp_fingerprint_strongest(se->peer_fp, se->npeer_fp);
	n = cert_fingerprint(cert, (enum msrp_hash)h, d, got, sizeof(got));
	if (n && msrp_sdp_fingerprint_match(se->peer_fp, se->npeer_fp, (enum msrp_hash)h, d, n))
		return 1;
	want[0] = '\0';
	for (size_t i = 0; i < se->npeer_fp && w + 4 < sizeof(want); i++) {
		char one[MSRP_SDP_FINGERPRINT_TEXT];

		if ((int)se->peer_fp[i].hash != h)
			continue;
		msrp_sdp_fingerprint_format(se->peer_fp[i].hash, se->peer_fp[i].digest,
					    se->peer_fp[i].len, one, sizeof(one));
		w += (size_t)snprintf(want + w, sizeof(want) - w, "%s%s", w ? ", " : "", one);
	}
	log_notice("session %s: the MSRP certificate of %s has the fingerprint %s, its a=fingerprint "
		   "says %s: connection closed", se->id, c->peer, got, want);
	return 0;
}

/* A request or response for session se, received on c (its own connection, or the relay's). */
static void mconn_dispatch(struct mconn *c, struct msess *se, const struct msrp_frame *f)
{
	if (f->is_request && !msess_paths_ok(se, f)) {
		log_info("MSRP from %s: To-Path or From-Path does not match session %s: 481", c->peer,
			 se->id);
		if (f->method != MSRP_REPORT)
			mconn_respond(c, se, f, 481, "Paths Do Not Match The Session");
		return;
	}
	if (!f->is_request) {
		mconn_on_response(c, se, f);
	} else if (f->method == MSRP_SEND) {
		mconn_on_send(c, se, f);
	} else if (f->method == MSRP_REPORT) {
		mconn_on_report(c, se, f);
	} else if (f->method == MSRP_NICKNAME && se->leg) {
		mconn_on_nickname(c, se, f);
	} else {
		mconn_respond(c, se, f, 501, "Unknown Method");
	}
}

static void relay_frame(struct mconn *c, const struct msrp_frame *f);

static void mconn_frame(void *arg, const struct msrp_frame *f)
{
	struct mconn *c = arg;

	if (c->dead)
		return;
	if (c->relay) {
		relay_frame(c, f);
		return;
	}
	if (!c->sess) {
		struct msess *se = f->is_request ? mconn_bind(c, f) : NULL;

		if (!se) {
			log_info("MSRP from %s: no session for this To-Path: 481", c->peer);
			if (f->is_request && f->method != MSRP_REPORT)
				mconn_respond(c, NULL, f, 481, "No Such Session");
			return;
		}
		if (!mconn_fingerprint_ok(c, se)) {
			mconn_close(c);
			msess_close(se, 1, 1, "the MSRP peer's certificate does not match its "
				    "a=fingerprint");
			return;
		}
		msess_activate(se, c);
	}
	mconn_dispatch(c, c->sess, f);
}

static void mconn_close(struct mconn *c)
{
	if (c->dead)
		return;
	c->dead = 1;
	if (c->bind_ev)
		evtimer_del(c->bind_ev);
	if (c->bev)
		bufferevent_disable(c->bev, EV_READ | EV_WRITE);
	event_active(c->ss->reap_ev, EV_TIMEOUT, 0);
}

static void mconn_event_cb(struct bufferevent *bev, short what, void *arg);

static void relay_lost(struct sessions *ss, struct mconn *c, const char *why);

/* The connection broke: its session ends (BYE, <gone/>), then the connection goes. */
static void mconn_broken(struct mconn *c)
{
	struct msess *se = c->sess;

	if (c->relay) {
		relay_lost(c->ss, c, "malformed MSRP from the relay");
		return;
	}
	if (se) {
		se->conn = NULL;
		c->sess = NULL;
		msess_close(se, 1, 1, "malformed MSRP");
	}
	mconn_close(c);
}

static void mconn_flushed_cb(struct bufferevent *bev, void *arg)
{
	mconn_broken(arg);
}

/* Ends the connection and its session once what is queued (a last response) is written, so
 * the peer reads the answer before the BYE. */
static void mconn_flush_close(struct mconn *c)
{
	if (!c->bev || !evbuffer_get_length(bufferevent_get_output(c->bev))) {
		mconn_broken(c);
		return;
	}
	bufferevent_disable(c->bev, EV_READ);
	bufferevent_setcb(c->bev, NULL, mconn_flushed_cb, mconn_event_cb, c);
}

static void mconn_read_cb(struct bufferevent *bev, void *arg)
{
	struct mconn *c = arg;
	struct evbuffer *in = bufferevent_get_input(bev);

	c->ss->gw->activity++;	/* MSRP traffic too keeps the memory trimmer away (gw.c) */
	while (!c->dead && evbuffer_get_length(in)) {
		struct evbuffer_iovec v;
		int status = 0;
		char tid[33] = "";

		if (evbuffer_peek(in, -1, NULL, &v, 1) < 1)
			break;
		if (msrp_parser_feed(c->parser, v.iov_base, v.iov_len) != 0) {
			const char *why = msrp_parser_error(c->parser, &status, tid);

			log_notice("MSRP from %s: %s (%d %s): connection closed", c->peer, why, status,
				   tid);
			if (c->sess) {
				struct msess *se = c->sess;

				if (status && tid[0]) {
					/* the request is answered before the connection goes */
					size_t len, n = msrp_path_first(se->peer_path,
									strlen(se->peer_path));
					char *to = gw_xstrndup(se->peer_path, n), *frame;

					frame = msrp_build_response(tid, status, why, to, se->our_path,
								    &len);
					mconn_write(c, frame, len);
					free(to);
				}
			}
			mconn_flush_close(c);
			return;
		}
		evbuffer_drain(in, v.iov_len);
	}
}

/* We are active: the connection is bound with our first request, a bodyless SEND (RFC 4975
 * 5.4), and the session is active from now on. */
static void msess_bind_send(struct msess *se, struct mconn *c)
{
	char tid[17], msgid[17], *frame;
	size_t len;

	msrp_make_id(tid, sizeof(tid));
	msrp_make_id(msgid, sizeof(msgid));
	frame = msrp_build_send(tid, msess_to_path(se), se->our_path, msgid, 1, 0, NULL, NULL, 0,
				MSRP_END, -1, 0, &len);
	mconn_write(c, frame, len);
	msess_activate(se, c);
}

/* Why a connection failed, for the log: OpenSSL's reason on a TLS connection, else errno's. */
static const char *mconn_error_text(struct mconn *c, char *buf, size_t len)
{
	unsigned long e = c->tls ? bufferevent_get_openssl_error(c->bev) : 0;

	if (e) {
		ERR_error_string_n(e, buf, len);
		while (bufferevent_get_openssl_error(c->bev))
			;
		return buf;
	}
	snprintf(buf, len, "%s", evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
	return buf;
}

static void relay_connected(struct sessions *ss);

static void mconn_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct mconn *c = arg;
	char why[256] = "";

	if (what & BEV_EVENT_CONNECTED) {
		/* TCP is up, and over TLS the handshake has verified the certificate's chain */
		struct msess *se = c->sess;

		if (c->relay) {
			relay_connected(c->ss);
			return;
		}
		if (!se)
			return;		/* accepted: the first request binds it */
		if (!mconn_fingerprint_ok(c, se)) {
			se->conn = NULL;
			c->sess = NULL;
			mconn_close(c);
			msess_close(se, 1, 1, "the MSRP peer's certificate does not match its "
				    "a=fingerprint");
			return;
		}
		msess_bind_send(se, c);
		return;
	}
	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) {
		if (what & BEV_EVENT_ERROR)
			mconn_error_text(c, why, sizeof(why));
		log_info("MSRP %sconnection %s %s%s%s", c->tls ? "TLS " : "", c->peer,
			 what & BEV_EVENT_EOF ? "closed by the peer" : "failed", why[0] ? ": " : "",
			 why);
		if (c->relay) {
			relay_lost(c->ss, c, what & BEV_EVENT_EOF ? "the relay closed the connection" :
				   "the relay connection failed");
			return;
		}
		if (c->sess) {
			struct msess *se = c->sess;

			se->conn = NULL;
			c->sess = NULL;
			msess_close(se, 1, 1, "MSRP connection lost");
		}
		mconn_close(c);
	}
}

static struct mconn *mconn_new(struct sessions *ss, struct bufferevent *bev, const char *peer)
{
	static const struct msrp_parser_cbs cbs = { mconn_frame };
	struct mconn *c = gw_xcalloc(1, sizeof(*c));
	size_t max = ss->gw->conf->sessions_chunk_size > 65536 ? ss->gw->conf->sessions_chunk_size :
		     65536;

	c->ss = ss;
	c->bev = bev;
	c->parser = msrp_parser_new(max + SESS_MAX_FRAME_SLACK, &cbs, c);
	snprintf(c->peer, sizeof(c->peer), "%s", peer);
	LIST_INSERT_HEAD(&ss->conns, c, entry);
	ss->nconns++;
	bufferevent_setcb(bev, mconn_read_cb, NULL, mconn_event_cb, c);
	bufferevent_enable(bev, EV_READ | EV_WRITE);
	return c;
}

/* Non-zero if some peer network trusts the address (any peer: the session is not known yet). */
static int sess_trusted_anywhere(const struct sessions *ss, const struct sockaddr *sa)
{
	for (size_t i = 0; i < ss->gw->conf->npeers; i++)
		if (conf_peer_trusts(ss->gw->conf->peers[i], sa))
			return 1;
	return 0;
}

/* Accepted MSRP connections from this address that no session has bound yet. */
static size_t sess_unbound_from(const struct sessions *ss, const struct sockaddr *sa)
{
	const struct mconn *c;
	size_t n = 0;

	LIST_FOREACH(c, &ss->conns, entry)
		if (c->accepted && !c->sess && !c->dead &&
		    evutil_sockaddr_cmp((const struct sockaddr *)&c->addr, sa, 0) == 0)
			n++;
	return n;
}

static void mconn_bind_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct mconn *c = arg;

	if (c->sess || c->dead)
		return;
	log_refusal(&c->ss->refusal_log, "MSRP connection from %s bound no session within %u ms: "
		    "closed", c->peer, c->ss->gw->conf->sessions_connect_ms);
	mconn_close(c);
}

/* OpenSSL's verdict on each certificate of the other end's chain (against <tls ca>): a refusal
 * is logged with its reason and the names the certificate carries. */
static int sess_tls_verify(int ok, X509_STORE_CTX *store)
{
	SSL *ssl = X509_STORE_CTX_get_ex_data(store, SSL_get_ex_data_X509_STORE_CTX_idx());
	struct mconn *c = ssl ? SSL_get_app_data(ssl) : NULL;
	char ids[256];

	if (ok || !c)
		return ok;
	tls_cert_identities(X509_STORE_CTX_get_current_cert(store), ids, sizeof(ids));
	log_refusal(&c->ss->refusal_log, "MSRP TLS %s %s refused: %s (certificate %s at depth %d)",
		    c->accepted ? "connection from" : "connection to", c->peer,
		    X509_verify_cert_error_string(X509_STORE_CTX_get_error(store)), ids,
		    X509_STORE_CTX_get_error_depth(store));
	return 0;
}

/* A TLS bufferevent for one MSRP connection (fd -1: to be connected).  Mutual: the other end's
 * certificate is always verified against <tls ca>, and as a server we require one.  Per SSL
 * object, not per context: the contexts stay as tls_ctx_load() made them. */
static struct bufferevent *sess_tls_bev(struct sessions *ss, evutil_socket_t fd, int server)
{
	SSL *ssl = SSL_new(server ? ss->tls_server : ss->tls_client);
	struct bufferevent *bev;

	if (!ssl)
		gw_fatal("SSL_new failed");
	SSL_set_verify(ssl, SSL_VERIFY_PEER | (server ? SSL_VERIFY_FAIL_IF_NO_PEER_CERT : 0),
		       sess_tls_verify);
	bev = bufferevent_openssl_socket_new(ss->gw->base, fd, ssl, server ?
					     BUFFEREVENT_SSL_ACCEPTING : BUFFEREVENT_SSL_CONNECTING,
					     BEV_OPT_CLOSE_ON_FREE);
	if (!bev) {
		SSL_free(ssl);
		return NULL;
	}
	/* a peer that closes without close_notify ends the session the same way as one that does */
	bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
	return bev;
}

/* Gives a TLS connection's SSL object its mconn, for sess_tls_verify()'s logs. */
static void mconn_set_tls(struct mconn *c)
{
	c->tls = 1;
	SSL_set_app_data(bufferevent_openssl_get_ssl(c->bev), c);
}

/* A connection to an MSRP port: only from the peers' trusted networks, a bounded number of
 * them per address not yet bound to a session, and each closed if no session binds it soon. */
static void sess_accept(struct sessions *ss, evutil_socket_t fd, struct sockaddr *sa, int salen,
			int tls)
{
	const struct conf *conf = ss->gw->conf;
	struct bufferevent *bev;
	struct mconn *c;
	char peer[64];
	struct timeval tv = { conf->sessions_connect_ms / 1000,
			      (conf->sessions_connect_ms % 1000) * 1000 };

	gw_sockaddr_text(sa, peer, sizeof(peer));
	if (!sess_trusted_anywhere(ss, sa)) {
		log_refusal(&ss->refusal_log, "MSRP connection from %s refused: no peer network "
			    "trusts this address", peer);
		evutil_closesocket(fd);
		return;
	}
	if (sess_unbound_from(ss, sa) >= SESS_UNBOUND_PER_SOURCE ||
	    ss->nconns >= conf->sessions_max_total + SESS_UNBOUND_PER_SOURCE) {
		log_refusal(&ss->refusal_log, "MSRP connection from %s refused: too many connections",
			    peer);
		evutil_closesocket(fd);
		return;
	}
	bev = tls ? sess_tls_bev(ss, fd, 1) : bufferevent_socket_new(ss->gw->base, fd,
								      BEV_OPT_CLOSE_ON_FREE);
	if (!bev) {
		evutil_closesocket(fd);
		return;
	}
	c = mconn_new(ss, bev, peer);
	c->accepted = 1;
	if (tls)
		mconn_set_tls(c);
	memcpy(&c->addr, sa, (size_t)salen < sizeof(c->addr) ? (size_t)salen : sizeof(c->addr));
	c->bind_ev = evtimer_new(ss->gw->base, mconn_bind_timeout, c);
	if (!c->bind_ev || evtimer_add(c->bind_ev, &tv) != 0)
		gw_fatal("event_new failed");
}

static void listener_cb(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
			int salen, void *arg)
{
	sess_accept(arg, fd, sa, salen, 0);
}

static void tls_listener_cb(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
			    int salen, void *arg)
{
	sess_accept(arg, fd, sa, salen, 1);
}

/* accept() failed on the MSRP listener.  At the descriptor limit, libevent would try again at
 * once, for ever: the pending connection is taken off the queue and closed instead. */
static void listener_error_cb(struct evconnlistener *l, void *arg)
{
	int err = EVUTIL_SOCKET_ERROR();

	if (err == EMFILE || err == ENFILE)
		guard_shed(evconnlistener_get_fd(l), "MSRP");
}

/* The socket address of u's host (numeric only: nothing is looked up) and port.  0 or -1. */
static int uri_sockaddr(const struct msrp_uri *u, unsigned port, struct sockaddr_storage *sa,
			int *salen)
{
	char spec[300];
	int bracket = u->host[0] != '[' && strchr(u->host, ':') != NULL;

	snprintf(spec, sizeof(spec), "%s%s%s:%u", bracket ? "[" : "", u->host, bracket ? "]" : "",
		 port);
	memset(sa, 0, sizeof(*sa));
	*salen = sizeof(*sa);
	return evutil_parse_sockaddr_port(spec, (struct sockaddr *)sa, salen);
}

/* We are the active party: connect to the first URI of the peer's path (the peer itself, or a
 * relay of its own), over TLS for an msrps session. */
static int msess_connect(struct msess *se)
{
	struct sockaddr_storage sa;
	int salen;
	char spec[300];
	struct bufferevent *bev;

	if (uri_sockaddr(&se->hop_uri, se->hop_uri.port ? se->hop_uri.port : 2855, &sa, &salen) != 0)
		return -1;
	gw_sockaddr_text((struct sockaddr *)&sa, spec, sizeof(spec));
	bev = se->secure ? sess_tls_bev(se->ss, -1, 0) :
	      bufferevent_socket_new(se->ss->gw->base, -1, BEV_OPT_CLOSE_ON_FREE);
	if (!bev)
		gw_fatal("bufferevent_socket_new failed");
	se->conn = mconn_new(se->ss, bev, spec);
	se->conn->sess = se;
	if (se->secure)
		mconn_set_tls(se->conn);
	if (bufferevent_socket_connect(bev, (struct sockaddr *)&sa, salen) != 0) {
		se->conn->sess = NULL;
		mconn_close(se->conn);
		se->conn = NULL;
		return -1;
	}
	return 0;
}

/* Through the relay, active: the relay's connection is up already; the session is bound by our
 * bodyless SEND on the next loop pass (the callers may still be setting the session up). */
static void msess_relay_start_cb(evutil_socket_t fd, short what, void *arg)
{
	struct msess *se = arg;
	struct mrelay *r = se->ss->relay;

	if (se->state != MS_CONNECTING)
		return;
	if (!r || r->state != RELAY_UP || !r->conn) {
		msess_close(se, 1, 1, "the MSRP relay is not available");
		return;
	}
	msess_bind_send(se, r->conn);
}

/* We are the active party (RFC 6135): connect, or bind through the relay. */
static int msess_start_active(struct msess *se)
{
	static const struct timeval now = { 0, 0 };

	if (!se->via_relay)
		return msess_connect(se);
	if (!se->start_ev && !(se->start_ev = evtimer_new(se->ss->gw->base, msess_relay_start_cb, se)))
		gw_fatal("evtimer_new failed");
	evtimer_add(se->start_ev, &now);
	return 0;
}

/* Non-zero if the session's peer network is trusted from the host we would connect to. */
static int msess_peer_trusts_host(const struct msess *se)
{
	struct sockaddr_storage sa;
	int salen;

	return uri_sockaddr(&se->hop_uri, 1, &sa, &salen) == 0 &&
	       conf_peer_trusts(se->peer, (const struct sockaddr *)&sa);
}

/* Outgoing MSRP connections are started at most SESS_CONNECTS_PER_SEC a second: an answer is
 * 503 beyond that. */
static int sess_connect_allowed(struct sessions *ss)
{
	uint64_t now = gw_now_ms(ss->gw) / 1000;

	if (now != ss->connect_second) {
		ss->connect_second = now;
		ss->connects = 0;
	}
	return ss->connects++ < SESS_CONNECTS_PER_SEC;
}

/* The peer's path from its SDP: kept whole (our To-Path, after the relay's Use-Path when we
 * use one); its last URI is the peer itself, its first the next hop, which must have a numeric
 * host (no name is ever looked up).  The transport must be the session's; the fingerprints
 * are kept to check the certificate with (not through a relay: the TLS connection that would
 * carry it ends at the relay). */
static int msess_set_peer(struct msess *se, const struct msrp_sdp_media *m, char *err, size_t len)
{
	const char *last = strrchr(m->path, ' ');
	size_t first = msrp_path_first(m->path, strlen(m->path));
	struct sockaddr_storage sa;
	int salen;

	if (m->secure != se->secure) {
		snprintf(err, len, "the MSRP transport (%s) is not the offer's", m->secure ?
			 "TCP/TLS/MSRP" : "TCP/MSRP");
		return -1;
	}
	last = last ? last + 1 : m->path;
	if (msrp_uri_parse(last, strlen(last), &se->peer_uri) != 0 || !first ||
	    msrp_uri_parse(m->path, first, &se->hop_uri) != 0) {
		snprintf(err, len, "bad MSRP URI in a=path");
		return -1;
	}
	if (uri_sockaddr(&se->hop_uri, 1, &sa, &salen) != 0) {
		snprintf(err, len, "the MSRP host must be a numeric address");
		return -1;
	}
	/* the gateway connects, or takes a connection, only within the peer's own networks: an
	 * SDP must not make it open connections to a third party */
	if (!msess_peer_trusts_host(se)) {
		log_refusal(&se->ss->refusal_log, "session %s: MSRP path %.*s is outside the networks "
			    "peer %s is trusted from: refused", se->id, (int)first, m->path,
			    se->peer->name);
		snprintf(err, len, "the MSRP path is outside the peer's networks");
		return -1;
	}
	free(se->peer_path);
	se->peer_path = gw_xstrdup(m->path);
	free(se->peer_fp);
	se->peer_fp = NULL;
	se->npeer_fp = 0;
	if (m->nfingerprints && !se->via_relay) {
		se->peer_fp = gw_xcalloc(m->nfingerprints, sizeof(*se->peer_fp));
		memcpy(se->peer_fp, m->fingerprints, m->nfingerprints * sizeof(*se->peer_fp));
		se->npeer_fp = m->nfingerprints;
	}
	if (se->via_relay) {
		free(se->to_path);
		se->to_path = gw_xasprintf("%s %s", se->relay_path, se->peer_path);
	}
	return 0;
}

static const char *const our_types[] = { "text/plain", "message/cpim", CT_COMPOSING };

/* Parses an SDP offer and intersects its accept-types with ours.  0 with *m and *types (the
 * caller clears both), or -1 with a reason in err and nothing to clear: the answer is 488. */
static int sess_offer(struct sessions *ss, const char *body, size_t len, struct msrp_sdp_media *m,
		      char ***types, size_t *ntypes, char *err, size_t errlen)
{
	*types = NULL;
	*ntypes = 0;
	/* TCP/TLS/MSRP only with <tls> (then the answer is TLS as well) */
	if (msrp_sdp_parse_offer(body, len, ss->tls_server != NULL, m, NULL, NULL, err, errlen) != 0)
		return -1;
	if (msrp_sdp_types_intersect(our_types, sizeof(our_types) / sizeof(our_types[0]),
				     m->accept_types, m->naccept_types, types, ntypes) != 0) {
		msrp_sdp_media_clear(m);
		snprintf(err, errlen, "no common accept-types");
		return -1;
	}
	return 0;
}

static char *msess_sdp(struct msess *se, const struct msrp_sdp_media *offer, enum msrp_setup setup,
		       char *const *types, size_t ntypes, const char *chatroom)
{
	struct msrp_sdp_local l;
	static const char *const wrapped[] = { "text/plain" };
	unsigned long long sid;

	memset(&l, 0, sizeof(l));
	if (getrandom(&sid, sizeof(sid), 0) != (ssize_t)sizeof(sid))
		gw_fatal("getrandom: %s", strerror(errno));
	l.addr = se->ss->listen_addr;
	l.port = se->secure ? se->ss->tls_port : se->ss->listen_port;
	l.path = se->sdp_path ? se->sdp_path : se->our_path;
	l.secure = se->secure;
	/* RFC 8122: our certificate, which the peer sees only when it connects to us directly */
	l.fingerprint = se->secure && !se->via_relay ? se->ss->fingerprint : NULL;
	l.setup = setup;
	l.accept_types = types ? (const char *const *)types : our_types;
	l.naccept_types = types ? ntypes : sizeof(our_types) / sizeof(our_types[0]);
	l.accept_wrapped_types = wrapped;
	l.naccept_wrapped = 1;
	l.max_size = se->ss->gw->conf->sessions_max_message;
	l.direction = offer ? msrp_sdp_answer_direction(offer->direction) : NULL;	/* RFC 3264 */
	l.chatroom = chatroom;
	l.sess_id = sid >> 2;
	l.sess_version = 1;
	return msrp_sdp_build(&l, offer, NULL);
}

/* ---------------------------------------------------------------- SIP side */

static void call_answered(void *arg, struct sip_call *call, const char *sdp, size_t len)
{
	struct msess *se = arg;
	struct msrp_sdp_media m;
	enum msrp_setup ours;
	char err[160];

	err[0] = '\0';
	if (msrp_sdp_parse_offer(sdp, len, se->secure, &m, NULL, NULL, err, sizeof(err)) != 0 ||
	    msrp_sdp_offer_result(se->offered, m.setup, &ours) != 0 ||
	    msess_set_peer(se, &m, err, sizeof(err)) != 0) {
		if (!err[0])
			snprintf(err, sizeof(err), "unusable answer");
		msrp_sdp_media_clear(&m);
		msess_close(se, 1, 1, err);
		return;
	}
	msrp_sdp_media_clear(&m);
	msess_enter_state(se, MS_CONNECTING);
	msess_arm(se, se->ss->gw->conf->sessions_connect_ms);
	se->we_connect = ours == MSRP_SETUP_ACTIVE;
	if (se->we_connect && !se->via_relay && !sess_connect_allowed(se->ss))
		msess_close(se, 1, 1, "too many MSRP connections started this second");
	else if (se->we_connect && msess_start_active(se) != 0)
		msess_close(se, 1, 1, "cannot connect to the MSRP peer");
}

static void call_ended(void *arg, struct sip_call *call, int status, const char *phrase)
{
	struct msess *se = arg;

	se->call = NULL;
	if (status >= 300 && se->state == MS_INVITING) {
		/* the INVITE failed: the queued messages go back with the mapped condition */
		char text[96];

		snprintf(text, sizeof(text), "SIP %03d %s", status, phrase ? phrase : "");
		msess_bounce_queued(se, map_error_from_sip(status), text);
		se->end_status = status;
		msess_close(se, 0, se->leg != NULL, se->leg && phrase ? phrase : text);
		return;
	}
	se->end_status = status;
	msess_close(se, 0, 1, status ? "the SIP session failed" : phrase ? phrase : "BYE");
}

static const struct sip_call_cbs call_cbs = { call_answered, call_ended };

void sessions_from_sip(struct sessions *ss, struct sip_call *call,
		       const struct sip_invite_info *info)
{
	const struct conf *conf = ss->gw->conf;
	char user[MAP_JID_MAX + 1], sip_jid[MAP_JID_MAX + 1], err[160];
	struct msrp_sdp_media m;
	char **types = NULL, *sdp;
	size_t ntypes = 0;
	struct msess *se;
	struct xmpp_link *link;
	enum msrp_setup setup;
	int r;

	if (!conf->sessions_enabled || ss->closing) {
		sip_call_refuse(call, ss->closing ? 503 : 488, ss->closing ? "Shutting Down" :
				"Sessions Not Supported", NULL);
		return;
	}
	r = map_sip_to_jid(info->request_uri, user, sizeof(user));
	if (r < 0 || !strchr(user, '@') || map_jid_bare(user, user, sizeof(user)) < 0) {
		sip_call_refuse(call, r < 0 ? 484 : 404, r == MAP_ADDR_ENOTCANON ?
				"User Part Not One-To-One" : r < 0 ? "Address Not Mappable" :
				"No User Part", NULL);
		return;
	}
	r = map_peer_sip_to_jid(info->peer, info->from_uri, sip_jid, sizeof(sip_jid));
	if (r < 0 || map_jid_bare(sip_jid, sip_jid, sizeof(sip_jid)) < 0) {
		sip_call_refuse(call, r == MAP_ADDR_ENOTCANON ? 484 : 400,
				r == MAP_ADDR_ENOTCANON ? "From User Part Not One-To-One" :
				"From Address Not Mappable", NULL);
		return;
	}
	if (!info->body || !info->content_type || strcmp(info->content_type, "application/sdp")) {
		sip_call_refuse(call, 488, "Not Acceptable Here", "an SDP offer is required");
		return;
	}
	if (sess_offer(ss, info->body, info->body_len, &m, &types, &ntypes, err, sizeof(err)) != 0) {
		sip_call_refuse(call, 488, "Not Acceptable Here", err);
		return;
	}
	link = gw_link_for_component(ss->gw, info->peer->component);
	if (!link || !xmpp_link_is_up(link)) {
		sip_call_refuse(call, 503, "XMPP Server Unreachable", NULL);
		goto out;
	}
	if (ss->count >= conf->sessions_max_total) {
		sip_call_refuse(call, 503, "Too Many Sessions", NULL);
		goto out;
	}
	if ((uintptr_t)dict_get(ss->per_user, user) >= conf->sessions_max_per_user) {
		sip_call_refuse(call, 486, "Busy Here", "too many sessions for this user");
		goto out;
	}
	if (sess_relay_use(ss, m.secure) < 0) {
		log_refusal(&ss->refusal_log, "INVITE from %s: the MSRP relay is not available: 503",
			    info->from_uri);
		sip_call_refuse(call, 503, "MSRP Relay Unavailable", "retry later");
		goto out;
	}
	se = msess_new(ss, user, info->from_uri, sip_jid, info->peer, m.secure, NULL, NULL);
	if (msess_set_peer(se, &m, err, sizeof(err)) != 0) {
		sip_call_refuse(call, 488, "Not Acceptable Here", err);
		msess_close(se, 0, 0, err);
		goto out;
	}
	setup = msrp_sdp_answer_setup(m.setup, se->via_relay);
	if (setup == MSRP_SETUP_ACTIVE && !se->via_relay && !sess_connect_allowed(ss)) {
		log_refusal(&ss->refusal_log, "session %s: too many MSRP connections started this "
			    "second: 503", se->id);
		sip_call_refuse(call, 503, "Too Many Connection Attempts", "retry later");
		msess_close(se, 0, 0, "connection rate");
		goto out;
	}
	sdp = msess_sdp(se, &m, setup, types, ntypes, NULL);
	se->call = call;
	sip_call_accept(call, sdp, &call_cbs, se);
	free(sdp);
	log_info("session %s: %s opens a%s chat with %s%s", se->id, info->from_uri,
		 se->secure ? "n msrps" : "", user, se->via_relay ? " (through the MSRP relay)" : "");
	msess_arm(se, se->ss->gw->conf->sessions_connect_ms);
	se->we_connect = setup == MSRP_SETUP_ACTIVE;
	if (se->we_connect && msess_start_active(se) != 0)
		msess_close(se, 1, 0, "cannot connect to the MSRP peer");
out:
	msrp_sdp_strv_free(types, ntypes);
	msrp_sdp_media_clear(&m);
}

/* ---------------------------------------------------------------- XMPP side */

static const char *chatstate_of(xmpp_stanza_t *stanza)
{
	for (xmpp_stanza_t *c = xmpp_stanza_get_children(stanza); c; c = xmpp_stanza_get_next(c)) {
		const char *ns = xmpp_stanza_is_tag(c) ? xmpp_stanza_get_ns(c) : NULL;

		if (ns && strcmp(ns, NS_CHATSTATES) == 0)
			return xmpp_stanza_get_name(c);
	}
	return NULL;
}

static const char *receipt_received_id(xmpp_stanza_t *stanza)
{
	xmpp_stanza_t *r = xmpp_stanza_get_child_by_name_and_ns(stanza, "received", NS_RECEIPTS);

	return r ? xmpp_stanza_get_attribute(r, "id") : NULL;
}

static void msess_report(struct msess *se, const char *stanza_id)
{
	struct mreport *r = dict_del(se->reports, stanza_id);
	char tid[17], *frame;
	size_t len;

	if (!r)
		return;
	random_id(tid, sizeof(tid));
	frame = msrp_build_report(tid, msess_to_path(se), se->our_path, r->message_id, 1, r->total,
				  r->total, 200, "OK", &len);
	mconn_write(se->conn, frame, len);
	free(r);
}

/* XMPP condition of a bounce -> MSRP status of the failure REPORT, as a table. */
static const struct {
	const char *condition;
	int status;
} report_status_table[] = {
	{ "bad-request", 400 },
	{ "jid-malformed", 400 },
	{ "forbidden", 403 },
	{ "not-allowed", 403 },
	{ "not-authorized", 403 },
	{ "policy-violation", 413 },
	{ "not-acceptable", 415 },
	{ "item-not-found", 481 },
	{ "recipient-unavailable", 481 },
	{ "gone", 481 },
	{ "service-unavailable", 481 },
	{ "remote-server-not-found", 481 },
	{ "remote-server-timeout", 408 },
};

int map_msrp_report_status(const char *condition)
{
	for (size_t i = 0; condition && i < sizeof(report_status_table) / sizeof(report_status_table[0]);
	     i++)
		if (strcmp(report_status_table[i].condition, condition) == 0)
			return report_status_table[i].status;
	return 400;
}

const char *map_stanza_error_condition(xmpp_stanza_t *stanza)
{
	xmpp_stanza_t *err = xmpp_stanza_get_child_by_name(stanza, "error");

	for (xmpp_stanza_t *c = err ? xmpp_stanza_get_children(err) : NULL; c;
	     c = xmpp_stanza_get_next(c)) {
		const char *ns = xmpp_stanza_is_tag(c) ? xmpp_stanza_get_ns(c) : NULL;
		const char *name = ns ? xmpp_stanza_get_name(c) : NULL;

		if (name && strcmp(ns, XMPP_NS_STANZA_ERRORS) == 0 && strcmp(name, "text") != 0)
			return name;
	}
	return "undefined-condition";
}

/* The delivered message that became stanza_id was bounced by XMPP with condition: a failure
 * REPORT to the SIP sender.  Returns 1 if the ring held it. */
static int msess_failure_report(struct msess *se, const char *stanza_id, const char *condition)
{
	for (unsigned i = 0; se->delivered && i < SESS_DELIVERED && i < se->ndelivered; i++) {
		struct mdelivered *d = &se->delivered[i];
		int status = map_msrp_report_status(condition);
		char tid[17], *frame;
		size_t len;

		if (strcmp(d->stanza_id, stanza_id) != 0)
			continue;
		log_info("session %s: message %s bounced by XMPP (%s): failure REPORT %d", se->id,
			 d->message_id, condition, status);
		if (se->state == MS_ACTIVE) {
			random_id(tid, sizeof(tid));
			frame = msrp_build_report(tid, msess_to_path(se), se->our_path, d->message_id,
						  1, d->total, d->total, status, condition, &len);
			mconn_write(se->conn, frame, len);
		}
		d->stanza_id[0] = '\0';
		return 1;
	}
	return 0;
}

/* An XMPP bounce of a message a session delivered: a failure REPORT to the SIP sender (unless
 * its Failure-Report said no).  Returns 1 if it was a session's. */
static int sessions_xmpp_error(struct sessions *ss, struct xmpp_link *link, xmpp_stanza_t *stanza)
{
	const char *id = xmpp_stanza_get_id(stanza);
	char from_bare[MAP_JID_MAX + 1], uri[MAP_URI_MAX], key[MAP_JID_MAX + MAP_URI_MAX + 2];
	const struct conf_peer *peer;
	struct msess *se;
	int err;

	if (!id || map_jid_bare(xmpp_stanza_get_from(stanza), from_bare, sizeof(from_bare)) < 0)
		return 0;
	peer = map_peer_for_jid(ss->gw->conf, xmpp_link_domain(link), xmpp_stanza_get_to(stanza),
				uri, sizeof(uri), &err);
	if (!peer)
		return 0;
	snprintf(key, sizeof(key), "%s\n%s", from_bare, uri);
	se = dict_get(ss->by_pair, key);
	return se && msess_failure_report(se, id, map_stanza_error_condition(stanza));
}

int sessions_from_xmpp(struct sessions *ss, struct xmpp_link *link, xmpp_stanza_t *stanza)
{
	const struct conf *conf = ss->gw->conf;
	const char *type = xmpp_stanza_get_type(stanza);
	const char *from = xmpp_stanza_get_from(stanza), *to = xmpp_stanza_get_to(stanza);
	char from_bare[MAP_JID_MAX + 1], uri[MAP_URI_MAX], key[MAP_JID_MAX + MAP_URI_MAX + 2];
	const struct conf_peer *peer;
	struct map_im_fields f;
	const char *state, *received;
	struct msess *se;
	struct mout *m;
	int err;

	if (conf->sessions_enabled && from && to && type && strcmp(type, "error") == 0)
		return sessions_xmpp_error(ss, link, stanza);
	if (!conf->sessions_enabled || !from || !to || (type && strcmp(type, "chat") != 0))
		return 0;
	if (!ss->xmpp_opens && dict_count(ss->by_pair) == 0)
		return 0;	/* no session to continue, none to open: the pager's, unmapped */
	if (map_jid_bare(from, from_bare, sizeof(from_bare)) < 0)
		return 0;
	peer = map_peer_for_jid(conf, xmpp_link_domain(link), to, uri, sizeof(uri), &err);
	if (!peer || !strchr(uri + 4, '@'))
		return 0;
	snprintf(key, sizeof(key), "%s\n%s", from_bare, uri);
	se = dict_get(ss->by_pair, key);
	map_im_fields(stanza, &f);
	state = chatstate_of(stanza);
	received = receipt_received_id(stanza);
	if (!se) {
		if (!map_peer_chat_sessions(peer) || !f.body || ss->closing)
			return 0;	/* the pager takes it (or it is only a chat state) */
		if (ss->count >= conf->sessions_max_total ||
		    (uintptr_t)dict_get(ss->per_user, from_bare) >= conf->sessions_max_per_user) {
			xmpp_stanza_t *e = map_error_reply(ss->gw->xctx, stanza, "resource-constraint",
							   "too many chat sessions");

			xmpp_link_send(link, e);
			xmpp_stanza_release(e);
			return 1;
		}
		{
			char sip_jid[MAP_JID_MAX + 1], from_uri[MAP_URI_MAX], *sdp;

			int secure = sess_wants_tls(ss, peer);

			if (map_jid_to_sip(from, 0, from_uri, sizeof(from_uri)) < 0 ||
			    map_jid_bare(to, sip_jid, sizeof(sip_jid)) < 0)
				return 0;
			if (sess_relay_use(ss, secure) < 0) {
				xmpp_stanza_t *e = map_error_reply(ss->gw->xctx, stanza,
								   "remote-server-timeout",
								   "the MSRP relay is not available");

				xmpp_link_send(link, e);
				xmpp_stanza_release(e);
				return 1;
			}
			se = msess_new(ss, from_bare, uri, sip_jid, peer, secure, NULL, NULL);
			msess_enter_state(se, MS_INVITING);
			sdp = msess_sdp(se, NULL, se->offered, NULL, 0, NULL);
			se->call = sip_call_invite(ss->gw->sip, peer, from_uri, uri, sdp, &call_cbs, se);
			free(sdp);
			if (!se->call) {
				msess_close(se, 0, 0, "the SIP stack is shutting down");
				return 0;
			}
			msess_arm(se, 64 * conf->sip_t1_ms + conf->sessions_connect_ms);
			log_info("session %s: %s opens a%s chat with %s%s", se->id, from,
				 se->secure ? "n msrps" : "", uri,
				 se->via_relay ? " (through the MSRP relay)" : "");
		}
	}
	if (se->state == MS_CLOSED)
		return 0;
	if (strchr(from, '/')) {
		free(se->xmpp_full);
		se->xmpp_full = gw_xstrdup(from);	/* answers go to this resource now */
	}
	if (received && !f.body) {
		if (se->state == MS_ACTIVE)
			msess_report(se, received);
		return 1;
	}
	if (state && strcmp(state, "gone") == 0 && !f.body) {
		msess_close(se, 1, 0, "<gone/> from the XMPP user");
		return 1;
	}
	if (!f.body) {
		const char *composing = map_chatstate_to_composing(state);

		if (composing && se->state == MS_ACTIVE)
			msess_send_composing(se, composing);
		return 1;
	}
	if (strlen(f.body) > conf->sessions_max_message) {
		xmpp_stanza_t *e = map_error_reply(ss->gw->xctx, stanza, "policy-violation",
						   "the message body is too large");

		xmpp_link_send(link, e);
		xmpp_stanza_release(e);
		return 1;
	}
	m = gw_xcalloc(1, sizeof(*m));
	m->stanza_id = xmpp_stanza_get_id(stanza) ? gw_xstrdup(xmpp_stanza_get_id(stanza)) : NULL;
	m->from = gw_xstrdup(from);
	m->ctype = gw_xstrdup("text/plain;charset=UTF-8");
	m->body = gw_xstrdup(f.body);
	m->len = strlen(f.body);
	m->receipt = f.has_receipt_request;
	if (se->state == MS_ACTIVE) {
		msess_send(se, m);
		return 1;
	}
	if (se->q_bytes + m->len > conf->sessions_max_queued) {
		mout_bounce(se, m, "resource-constraint", "too much waiting for the chat session");
		mout_free(m);
		return 1;
	}
	se->q_bytes += m->len;
	STAILQ_INSERT_TAIL(&se->queue, m, qentry);
	return 1;
}

/* ---------------------------------------------------------------- legs (groupchat.c) */

int sessions_offer_check(struct sessions *ss, const char *body, size_t len, char *err,
			 size_t errlen)
{
	struct msrp_sdp_media m;
	char **types;
	size_t ntypes;

	if (!ss->gw->conf->sessions_enabled || ss->closing) {
		snprintf(err, errlen, "%s", ss->closing ? "shutting down" : "sessions are disabled");
		return -1;
	}
	if (sess_offer(ss, body, len, &m, &types, &ntypes, err, errlen) != 0)
		return -1;
	msrp_sdp_strv_free(types, ntypes);
	msrp_sdp_media_clear(&m);
	return 0;
}

struct msess *sessions_leg_accept(struct sessions *ss, struct sip_call *call,
				  const struct conf_peer *peer, const char *remote_uri,
				  const char *local, const char *offer, size_t offer_len,
				  const char *chatroom, const struct sess_leg_cbs *cbs, void *arg)
{
	struct msrp_sdp_media m;
	char **types = NULL, *sdp, err[160] = "";
	size_t ntypes = 0;
	enum msrp_setup setup;
	struct msess *se;

	if (sess_offer(ss, offer, offer_len, &m, &types, &ntypes, err, sizeof(err)) != 0) {
		sip_call_refuse(call, 488, "Not Acceptable Here", err);
		return NULL;
	}
	if (sess_relay_use(ss, m.secure) < 0) {
		sip_call_refuse(call, 503, "MSRP Relay Unavailable", "retry later");
		se = NULL;
		goto out;
	}
	se = msess_new(ss, local, remote_uri, local, peer, m.secure, cbs, arg);
	setup = msrp_sdp_answer_setup(m.setup, se->via_relay);
	if (msess_set_peer(se, &m, err, sizeof(err)) != 0 ||
	    (setup == MSRP_SETUP_ACTIVE && !se->via_relay && !sess_connect_allowed(ss))) {
		sip_call_refuse(call, setup == MSRP_SETUP_ACTIVE && !err[0] ? 503 : 488,
				"Not Acceptable Here", err[0] ? err : "connection rate");
		msess_close(se, 0, 0, err);
		se = NULL;
		goto out;
	}
	sdp = msess_sdp(se, &m, setup, types, ntypes, chatroom);
	se->call = call;
	sip_call_accept(call, sdp, &call_cbs, se);
	free(sdp);
	msess_arm(se, ss->gw->conf->sessions_connect_ms);
	se->we_connect = setup == MSRP_SETUP_ACTIVE;
	if (se->we_connect && msess_start_active(se) != 0) {
		msess_close(se, 1, 0, "cannot connect to the MSRP peer");
		se = NULL;
	}
out:
	msrp_sdp_strv_free(types, ntypes);
	msrp_sdp_media_clear(&m);
	return se;
}

struct msess *sessions_leg_invite(struct sessions *ss, const struct conf_peer *peer,
				  const char *from_uri, const char *to_uri, const char *local,
				  const struct sess_leg_cbs *cbs, void *arg)
{
	int secure = sess_wants_tls(ss, peer);
	struct msess *se;
	char *sdp;

	if (!ss->gw->conf->sessions_enabled || ss->closing || sess_relay_use(ss, secure) < 0)
		return NULL;
	se = msess_new(ss, local, to_uri, local, peer, secure, cbs, arg);
	msess_enter_state(se, MS_INVITING);
	sdp = msess_sdp(se, NULL, se->offered, NULL, 0, NULL);
	se->call = sip_call_invite(ss->gw->sip, peer, from_uri, to_uri, sdp, &call_cbs, se);
	if (se->call)
		sip_call_set_groupchat(se->call);
	free(sdp);
	if (!se->call) {
		msess_close(se, 0, 0, "the SIP stack is shutting down");
		return NULL;
	}
	msess_arm(se, 64 * ss->gw->conf->sip_t1_ms + ss->gw->conf->sessions_connect_ms);
	return se;
}

int sessions_leg_send(struct msess *se, const char *ctype, const char *body, size_t len,
		      const char *stanza_id, const char *err_from, const char *err_to,
		      const char *err_type)
{
	const struct conf *conf = se->ss->gw->conf;
	struct mout *m;

	if (se->state == MS_CLOSED)
		return -1;
	if (len > conf->sessions_max_message)
		return -1;
	m = gw_xcalloc(1, sizeof(*m));
	m->stanza_id = stanza_id ? gw_xstrdup(stanza_id) : NULL;
	m->from = err_to ? gw_xstrdup(err_to) : NULL;
	m->to = err_from ? gw_xstrdup(err_from) : NULL;
	m->type = err_type;
	m->ctype = gw_xstrdup(ctype);
	m->body = gw_xstrndup(body, len);
	m->len = len;
	if (!m->from)
		m->failed = 1;	/* nobody to tell: logged only */
	if (se->state == MS_ACTIVE) {
		msess_send(se, m);
		return 0;
	}
	if (se->q_bytes + m->len > conf->sessions_max_queued) {
		mout_free(m);
		return -1;
	}
	se->q_bytes += m->len;
	STAILQ_INSERT_TAIL(&se->queue, m, qentry);
	return 0;
}

int sessions_leg_nickname(struct msess *se, const char *nick)
{
	if (se->state == MS_CLOSED || se->nick_tid[0])
		return -1;
	free(se->nick_out);
	se->nick_out = gw_xstrdup(nick);
	if (se->state == MS_ACTIVE)
		msess_send_nickname(se);
	return 0;
}

void sessions_leg_nickname_answer(struct msess *se, int status)
{
	size_t len, n;
	char *frame, *to;

	if (!se->nick_in_tid[0] || se->state != MS_ACTIVE)
		return;
	n = msrp_path_first(se->peer_path, strlen(se->peer_path));
	to = gw_xstrndup(se->peer_path, n);
	frame = msrp_build_response(se->nick_in_tid, status, msrp_status_comment(status), to,
				    se->our_path, &len);
	free(to);
	se->nick_in_tid[0] = '\0';
	if (status == 200 && se->nick_in_report == 0) {
		free(frame);
		return;
	}
	mconn_write(se->conn, frame, len);
}

void sessions_leg_failed(struct msess *se, const char *stanza_id, const char *condition)
{
	msess_failure_report(se, stanza_id, condition);
}

void sessions_leg_end(struct msess *se, int cause, const char *text)
{
	if (se->state == MS_CLOSED)
		return;
	se->bye_cause = cause;
	free(se->bye_text);
	se->bye_text = text ? gw_xstrdup(text) : NULL;
	msess_close(se, 1, 0, text ? text : "ended by groupchat");
}

int sessions_leg_active(const struct msess *se)
{
	return se->state == MS_ACTIVE;
}

const char *sessions_leg_id(const struct msess *se)
{
	return se->id;
}

/* ---------------------------------------------------------------- the MSRP relay (RFC 4976) */

static void relay_enter_state(struct sessions *ss, enum relay_state state)
{
	struct mrelay *r = ss->relay;

	if (r->state == state)
		return;
	log_notice("MSRP relay %s: %s -> %s", r->uri_text, relay_state_names[r->state],
		   relay_state_names[state]);
	r->state = state;
}

static void relay_arm(struct mrelay *r, unsigned ms)
{
	struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };

	evtimer_add(r->timer, &tv);
}

struct sess_list {
	struct msess **v;
	size_t n;
};

static void collect_relayed(void *arg, const char *key, void *value)
{
	struct sess_list *l = arg;
	struct msess *se = value;

	if (se->via_relay && se->state != MS_CLOSED) {
		l->v = gw_xrealloc(l->v, (l->n + 1) * sizeof(*l->v));
		l->v[l->n++] = se;
	}
}

/* The relay's connection c is gone or useless: every session through it ends (BYE, <gone/>),
 * and a new connection is tried after a back-off (RELAY_RETRY_MIN_MS doubling to _MAX_MS). */
static void relay_lost(struct sessions *ss, struct mconn *c, const char *why)
{
	struct mrelay *r = ss->relay;
	struct sess_list l = { NULL, 0 };

	if (!r || (c && c != r->conn))
		return;		/* an old connection already replaced */
	log_notice("MSRP relay %s: %s", r->uri_text, why);
	if (r->conn)
		mconn_close(r->conn);
	r->conn = NULL;
	r->auth_tid[0] = '\0';
	free(r->use_path);
	r->use_path = NULL;
	relay_enter_state(ss, RELAY_DOWN);
	/* collected first: a session's end may start or end others (groupchat legs) */
	dict_foreach(ss->by_id, collect_relayed, &l);
	for (size_t i = 0; i < l.n; i++)
		msess_close(l.v[i], 1, 1, "the MSRP relay connection was lost");
	free(l.v);
	if (ss->closing)
		return;
	relay_arm(r, r->retry_ms);
	r->retry_ms = r->retry_ms * 2 > RELAY_RETRY_MAX_MS ? RELAY_RETRY_MAX_MS : r->retry_ms * 2;
}

static void relay_connect(struct sessions *ss)
{
	struct mrelay *r = ss->relay;
	struct sockaddr_storage sa;
	struct bufferevent *bev;
	char spec[300];
	int salen;

	if (ss->closing || uri_sockaddr(&r->uri, r->uri.port, &sa, &salen) != 0)
		return;		/* the address was checked when the configuration was read */
	gw_sockaddr_text((struct sockaddr *)&sa, spec, sizeof(spec));
	bev = r->uri.secure ? sess_tls_bev(ss, -1, 0) :
	      bufferevent_socket_new(ss->gw->base, -1, BEV_OPT_CLOSE_ON_FREE);
	if (!bev)
		gw_fatal("bufferevent_socket_new failed");
	r->conn = mconn_new(ss, bev, spec);
	r->conn->relay = 1;
	if (r->uri.secure)
		mconn_set_tls(r->conn);
	relay_enter_state(ss, RELAY_CONNECTING);
	relay_arm(r, ss->gw->conf->sessions_connect_ms);
	if (bufferevent_socket_connect(bev, (struct sockaddr *)&sa, salen) != 0)
		relay_lost(ss, r->conn, "cannot connect");
}

/* AUTH (RFC 4976 5.1) to the relay's URI, from ours; no Expires: the relay grants what it
 * will.  Its answer is awaited for connect-timeout. */
static void relay_send_auth(struct sessions *ss)
{
	struct mrelay *r = ss->relay;
	size_t len;
	char *frame;

	random_id(r->auth_tid, 17);
	frame = msrp_build_auth(r->auth_tid, r->uri_text, r->client_path, 0, &len);
	mconn_write(r->conn, frame, len);
	relay_arm(r, ss->gw->conf->sessions_connect_ms);
}

/* TCP is up, and for msrps the relay's certificate chains to <tls ca>: authorise. */
static void relay_connected(struct sessions *ss)
{
	struct mrelay *r = ss->relay;

	if (r->conn && r->conn->tls) {
		SSL *ssl = bufferevent_openssl_get_ssl(r->conn->bev);
		char ids[256];

		tls_cert_identities(ssl ? SSL_get0_peer_certificate(ssl) : NULL, ids, sizeof(ids));
		log_info("MSRP relay %s: TLS with a certificate for %s", r->uri_text, ids);
	}
	relay_enter_state(ss, RELAY_AUTHORISING);
	relay_send_auth(ss);
}

/* The Use-Path of a 200 to AUTH: one or more URIs of the relay's scheme (RFC 4976 5.1). */
static int use_path_ok(const struct mrelay *r, const char *v, size_t len)
{
	size_t at = 0;

	if (len == 0 || len > 1024)
		return 0;
	while (at < len) {
		size_t n = 0;
		struct msrp_uri u;

		while (at + n < len && v[at + n] != ' ')
			n++;
		if (msrp_uri_parse(v + at, n, &u) != 0 || u.secure != r->uri.secure)
			return 0;
		at += n + 1;
	}
	return v[len - 1] != ' ';
}

static void relay_on_auth_response(struct sessions *ss, const struct msrp_frame *f)
{
	struct mrelay *r = ss->relay;
	const struct msrp_header_field *up = msrp_frame_header(f, "Use-Path");
	const struct msrp_header_field *ex = msrp_frame_header(f, "Expires");
	unsigned long expires = RELAY_DEFAULT_EXPIRES;
	char why[160];

	r->auth_tid[0] = '\0';
	if (f->status == 401) {
		/* RFC 4976 5.1's digest: the gateway has no relay credentials to answer it with */
		relay_lost(ss, r->conn, "AUTH answered 401: the gateway has no credentials for the "
			   "relay (it must accept the gateway by its certificate or address)");
		return;
	}
	if (f->status != 200) {
		snprintf(why, sizeof(why), "AUTH answered %03d", f->status);
		relay_lost(ss, r->conn, why);
		return;
	}
	if (!up || !use_path_ok(r, up->value, up->value_len)) {
		relay_lost(ss, r->conn, "the 200 to AUTH has no usable Use-Path");
		return;
	}
	if (ex) {
		char *end;

		errno = 0;
		expires = strtoul(ex->value, &end, 10);
		if (errno || end == ex->value || *end || expires == 0 || expires > 86400 * 365)
			expires = RELAY_DEFAULT_EXPIRES;
	}
	free(r->use_path);
	r->use_path = gw_xstrndup(up->value, up->value_len);
	r->expires = (unsigned)expires;
	r->retry_ms = RELAY_RETRY_MIN_MS;
	log_info("MSRP relay %s: Use-Path %s for %u s", r->uri_text, r->use_path, r->expires);
	relay_enter_state(ss, RELAY_UP);
	/* renewed at three quarters of the time granted: new sessions take the new Use-Path */
	relay_arm(r, 1000 * (r->expires * 3 / 4 > RELAY_MIN_REFRESH ? r->expires * 3 / 4 :
			     RELAY_MIN_REFRESH));
}

static void relay_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct sessions *ss = arg;
	struct mrelay *r = ss->relay;

	switch (r->state) {
	case RELAY_DOWN:
		relay_connect(ss);
		break;
	case RELAY_CONNECTING:
		relay_lost(ss, r->conn, "no connection within connect-timeout");
		break;
	case RELAY_AUTHORISING:
		relay_lost(ss, r->conn, "no answer to AUTH within connect-timeout");
		break;
	case RELAY_UP:
		if (r->auth_tid[0])
			relay_lost(ss, r->conn, "no answer to the renewed AUTH within connect-timeout");
		else
			relay_send_auth(ss);
		break;
	}
}

/* The session a frame from the relay is for: the session id of its To-Path's first URI (the
 * relay has taken itself off the path: that URI is ours). */
static struct msess *relay_session_of(struct sessions *ss, const struct msrp_frame *f)
{
	size_t n = msrp_path_first(f->to_path, f->to_path_len);
	struct msrp_uri to;

	if (!n || msrp_uri_parse(f->to_path, n, &to) != 0 || !to.session[0])
		return NULL;
	return dict_get(ss->by_id, to.session);
}

/* A frame on the relay's connection: the AUTH's answer, or a frame of one of its sessions.  A
 * session waiting for the peer (we are passive) is bound by its first request. */
static void relay_frame(struct mconn *c, const struct msrp_frame *f)
{
	struct sessions *ss = c->ss;
	struct mrelay *r = ss->relay;
	struct msess *se;

	if (!r || c != r->conn)
		return;
	if (!f->is_request && r->auth_tid[0] && strcmp(f->tid, r->auth_tid) == 0) {
		relay_on_auth_response(ss, f);
		return;
	}
	se = relay_session_of(ss, f);
	if (se && (!se->via_relay || se->state == MS_CLOSED || se->state == MS_INVITING))
		se = NULL;
	if (!f->is_request) {
		if (se && se->conn == c)
			mconn_on_response(c, se, f);
		return;
	}
	if (se && se->state == MS_CONNECTING && !se->we_connect && msess_paths_ok(se, f))
		msess_activate(se, c);
	if (!se || se->conn != c) {
		log_info("MSRP from the relay %s: no session for this To-Path: 481", c->peer);
		if (f->method != MSRP_REPORT)
			mconn_respond(c, NULL, f, 481, "No Such Session");
		return;
	}
	mconn_dispatch(c, se, f);
}

/* The relay of <sessions relay>: parsed, our URI for AUTH, and the first connection tried at
 * once.  Sessions through it are refused until it is up. */
static void relay_new(struct sessions *ss)
{
	const struct conf *conf = ss->gw->conf;
	struct mrelay *r = gw_xcalloc(1, sizeof(*r));
	const char *addr = ss->listen_addr;
	int v6 = strchr(addr, ':') != NULL;
	char id[17];

	if (msrp_uri_parse(conf->msrp_relay, strlen(conf->msrp_relay), &r->uri) != 0)
		gw_fatal("relay %s does not parse", conf->msrp_relay);	/* conf.c checked it */
	ss->relay = r;
	r->uri_text = gw_xstrdup(conf->msrp_relay);
	random_id(id, sizeof(id));
	r->client_path = gw_xasprintf("%s://%s%s%s:%u/%s;tcp", r->uri.secure ? "msrps" : "msrp",
				      v6 ? "[" : "", addr, v6 ? "]" : "",
				      r->uri.secure ? ss->tls_port : ss->listen_port, id);
	r->retry_ms = RELAY_RETRY_MIN_MS;
	r->timer = evtimer_new(ss->gw->base, relay_timer_cb, ss);
	if (!r->timer)
		gw_fatal("evtimer_new failed");
	relay_connect(ss);
}

static void relay_free(struct mrelay *r)
{
	if (!r)
		return;
	event_free(r->timer);
	free(r->uri_text);
	free(r->client_path);
	free(r->use_path);
	free(r);
}

/* ---------------------------------------------------------------- TLS (RFC 4975 14) */

/* The two contexts of msrps (server and client, both mutual), from <tls>, and the SHA-256
 * fingerprint of our certificate for our SDP.  0 or -1 (logged). */
static int sess_tls_new(struct sessions *ss)
{
	const struct conf *conf = ss->gw->conf;
	static const unsigned char sid_ctx[] = "simplegw-msrp";
	unsigned char d[EVP_MAX_MD_SIZE];
	char err[512];
	SSL_CTX **ctx[] = { &ss->tls_server, &ss->tls_client };

	for (size_t i = 0; i < 2; i++) {
		*ctx[i] = SSL_CTX_new(i == 0 ? TLS_server_method() : TLS_client_method());
		if (!*ctx[i])
			gw_fatal("SSL_CTX_new failed");
		if (tls_ctx_load(*ctx[i], conf->tls_cert, conf->tls_key, conf->tls_ca,
				 conf->tls_verify_depth, err, sizeof(err)) != 0) {
			log_error("MSRP TLS: %s", err);
			return -1;
		}
	}
	/* a resumed session with client certificates needs its context named */
	SSL_CTX_set_session_id_context(ss->tls_server, sid_ctx, sizeof(sid_ctx) - 1);
	if (!cert_fingerprint(SSL_CTX_get0_certificate(ss->tls_server), MSRP_HASH_SHA256, d,
			      ss->fingerprint, sizeof(ss->fingerprint))) {
		log_error("MSRP TLS: cannot compute the fingerprint of %s", conf->tls_cert);
		return -1;
	}
	log_info("MSRP TLS: our certificate's fingerprint is %s", ss->fingerprint);
	return 0;
}

int sessions_tls_reload(struct sessions *ss)
{
	const struct conf *conf = ss->gw->conf;
	unsigned char d[EVP_MAX_MD_SIZE];
	char err[512], fp[sizeof(ss->fingerprint)];
	SSL_CTX *ctx[2] = { ss->tls_server, ss->tls_client };

	if (!ss->tls_server)
		return 0;
	/* tls_ctx_load() checks the files before it changes a context: a bad file changes none */
	for (size_t i = 0; i < 2; i++)
		if (tls_ctx_load(ctx[i], conf->tls_cert, conf->tls_key, conf->tls_ca,
				 conf->tls_verify_depth, err, sizeof(err)) != 0) {
			log_error("MSRP TLS: reload refused, the files in use stay: %s", err);
			return -1;
		}
	if (cert_fingerprint(SSL_CTX_get0_certificate(ss->tls_server), MSRP_HASH_SHA256, d, fp,
			     sizeof(fp)))
		memcpy(ss->fingerprint, fp, sizeof(fp));
	log_notice("MSRP TLS: files reloaded for new connections; our fingerprint is now %s",
		   ss->fingerprint);
	return 0;
}

/* A listener on addr:port for MSRP (tls: msrps).  NULL on failure (logged). */
static struct evconnlistener *sess_listen(struct sessions *ss, const char *addr, unsigned port,
					  int tls)
{
	struct sockaddr_storage sa;
	int salen = sizeof(sa);
	char spec[128];
	struct evconnlistener *l;

	snprintf(spec, sizeof(spec), "%s%s%s:%u", strchr(addr, ':') ? "[" : "", addr,
		 strchr(addr, ':') ? "]" : "", port);
	memset(&sa, 0, sizeof(sa));
	if (evutil_parse_sockaddr_port(spec, (struct sockaddr *)&sa, &salen) != 0) {
		log_error("MSRP listen address %s is not usable", spec);
		return NULL;
	}
	l = evconnlistener_new_bind(ss->gw->base, tls ? tls_listener_cb : listener_cb, ss,
				    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE, 64,
				    (struct sockaddr *)&sa, salen);
	if (!l) {
		log_error("cannot listen for MSRP%s on %s: %s", tls ? " over TLS" : "", spec,
			  strerror(errno));
		return NULL;
	}
	evconnlistener_set_error_cb(l, listener_error_cb);
	log_notice("MSRP%s listening on %s", tls ? " over TLS (msrps)" : "", spec);
	return l;
}

/* ---------------------------------------------------------------- lifecycle */

struct sessions *sessions_new(struct gw *gw)
{
	struct sessions *ss = gw_xcalloc(1, sizeof(*ss));
	const struct conf *conf = gw->conf;
	const char *addr = conf->msrp_address ? conf->msrp_address : conf->listen[0].address;

	ss->gw = gw;
	ss->by_id = dict_new();
	ss->by_pair = dict_new();
	ss->per_user = dict_new();
	ss->reap_ev = event_new(gw->base, -1, 0, reap_cb, ss);
	if (!ss->reap_ev)
		gw_fatal("event_new failed");
	snprintf(ss->listen_addr, sizeof(ss->listen_addr), "%s", addr);
	ss->listen_port = conf->msrp_port;
	ss->tls_port = conf->msrps_port;
	for (size_t i = 0; i < conf->npeers; i++)
		ss->xmpp_opens |= conf->peers[i]->sessions;
	if (!conf->sessions_enabled)
		return ss;
	ss->listener = sess_listen(ss, addr, conf->msrp_port, 0);
	if (!ss->listener)
		goto fail;
	if (conf->tls_cert) {
		if (sess_tls_new(ss) != 0)
			goto fail;
		ss->tls_listener = sess_listen(ss, addr, conf->msrps_port, 1);
		if (!ss->tls_listener)
			goto fail;
	}
	if (conf->msrp_relay)
		relay_new(ss);
	return ss;

fail:
	sessions_free(ss);
	return NULL;
}

static void close_one(void *arg, const char *key, void *value)
{
	struct msess *se = value;

	msess_close(se, 1, 1, "the gateway is shutting down");
}

void sessions_close(struct sessions *ss)
{
	if (ss->closing)
		return;
	ss->closing = 1;
	dict_foreach(ss->by_id, close_one, NULL);
}

struct sess_gone {
	const struct conf_peer *peer;
	struct msess **v;
	size_t n, cap;
};

static void gone_one(void *arg, const char *key, void *value)
{
	struct sess_gone *g = arg;
	struct msess *se = value;

	if (se->peer != g->peer)
		return;
	if (g->n == g->cap) {
		g->cap = g->cap ? 2 * g->cap : 16;
		g->v = gw_xrealloc(g->v, g->cap * sizeof(*g->v));
	}
	g->v[g->n++] = se;
}

void sessions_peer_removed(struct sessions *ss, const struct conf_peer *peer)
{
	struct sess_gone g = { peer, NULL, 0, 0 };

	dict_foreach(ss->by_id, gone_one, &g);
	for (size_t i = 0; i < g.n; i++)
		msess_close(g.v[i], 1, 1, "the SIP network was removed from the gateway");
	if (g.n)
		log_notice("sessions: peer %s removed: %zu sessions ended", peer->name, g.n);
	free(g.v);
}

void sessions_peers_changed(struct sessions *ss)
{
	const struct conf *conf = ss->gw->conf;

	ss->xmpp_opens = 0;
	for (size_t i = 0; i < conf->npeers; i++)
		ss->xmpp_opens |= conf->peers[i]->sessions;
}

size_t sessions_count(const struct sessions *ss)
{
	return ss->count;
}

struct list_ctx {
	struct sessions *ss;
	struct map_session_info *out;
	size_t max, n;
	uint64_t now;
};

static void list_one(void *arg, const char *key, void *value)
{
	struct list_ctx *l = arg;
	struct msess *se = value;
	struct map_session_info *i;

	if (l->n++ >= l->max)
		return;
	i = &l->out[l->n - 1];
	snprintf(i->id, sizeof(i->id), "%s", se->id);
	i->kind = se->leg ? MAP_SESSION_GROUPCHAT : MAP_SESSION_CHAT;
	i->xmpp = se->xmpp_full ? se->xmpp_full : se->xmpp_bare;
	i->sip_uri = se->sip_uri;
	i->state = msess_state_names[se->state];
	i->age_ms = l->now - se->started_ms;
}

size_t sessions_list(struct sessions *ss, struct map_session_info *out, size_t max)
{
	struct list_ctx l = { ss, out, out ? max : 0, 0, gw_now_ms(ss->gw) };

	dict_foreach(ss->by_id, list_one, &l);	/* open sessions only: closing takes them out */
	return l.n;
}

/* The idle timeout's path: BYE (CANCEL while our INVITE rings), the XMPP user told (<gone/>, or
 * the leg's callback, so that groupchat.c takes the occupant out of its room), every message not
 * delivered back to its sender. */
int sessions_end(struct sessions *ss, const char *id, const char *why)
{
	struct msess *se = id ? dict_get(ss->by_id, id) : NULL;

	if (!se || se->state == MS_CLOSED)
		return -1;
	msess_close(se, 1, 1, why);
	return 0;
}

void sessions_free(struct sessions *ss)
{
	struct mconn *c;

	if (!ss)
		return;
	ss->closing = 1;
	dict_foreach(ss->by_id, close_one, NULL);
	LIST_FOREACH(c, &ss->conns, entry)
		c->dead = 1;
	reap_cb(-1, 0, ss);
	if (ss->listener)
		evconnlistener_free(ss->listener);
	if (ss->tls_listener)
		evconnlistener_free(ss->tls_listener);
	relay_free(ss->relay);
	SSL_CTX_free(ss->tls_server);
	SSL_CTX_free(ss->tls_client);
	event_free(ss->reap_ev);
	dict_free(ss->by_id);
	dict_free(ss->by_pair);
	dict_free(ss->per_user);
	free(ss);
}
