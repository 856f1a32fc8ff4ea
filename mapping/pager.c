/* pager.c - pager-mode IM both ways (RFC 7572), where no message is ever lost silently.
 *
 * SIP -> XMPP.  The MESSAGE is checked (addresses, content type, size, UTF-8), becomes a
 * <message/>, and its SIP transaction is held until the gateway knows what happened to it:
 *  - an XMPP error reply with the stanza's id answers it with the mapped status (errors.c);
 *  - otherwise a "barrier" settles it: <im barrier-window> (10 ms) after a message is forwarded
 *    over a link, one <iq type='get'><ping/></iq> to the XMPP domain follows it and every
 *    message forwarded over that link meanwhile.  The server handles a
 *    component's stanzas in order, and bounces a message to an unknown or unavailable local user
 *    while routing it, so by the time the ping's reply (result or error, either will do) comes
 *    back, any such bounce has arrived first.  The held MESSAGEs the barrier covers get 200.
 *    That holds where the server refuses a message while it routes it.  ejabberd checks an
 *    online user's block list (XEP-0191) later, in the user's session process, after it has
 *    answered the ping: there the barrier only shows the server took the message, and the held
 *    MESSAGEs get 202 Accepted instead.  <im verdict> says which; "auto" asks the server's
 *    disco#info identity when the link comes up and gives 200 only for servers known to refuse
 *    while routing (pager_servers[]), 202 to the rest and until the answer is in.
 *  - if no barrier reply comes within <im delivery-wait>, 202 Accepted (taken over, outcome
 *    unknown); if the link drops first, 503 with Retry-After.
 * An error arriving after the 200 (a client's own bounce, say) is still reported: for
 * delivery-wait after the answer, the gateway sends the SIP sender a MESSAGE saying the message
 * was not delivered and why (an extension beyond RFC 7572, see docs/interworking.md).
 *
 * XMPP -> SIP.  A <message/> with a body becomes a MESSAGE to the peer's route, if the peer's
 * <peer services> include pager (else service-unavailable, and typing notices and receipts for
 * it are dropped: nothing is sent to a network that does not take pager mode).  A failure
 * response, or a transaction timeout (nta's local 408), bounces the stanza back to its sender
 * with the mapped condition (RFC 7247 8.2).  Chat-state-only and receipt-only stanzas carry no
 * message and are not turned into empty MESSAGEs.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/queue.h>
#include <time.h>

#include <event2/event.h>

#include "../gateway/dict.h"
#include "../gateway/gw.h"
#include "../sip/sip.h"
#include "../xmpp/xmpp.h"
#include "addr.h"
#include "map.h"

#define PAGER_SWEEP_MS 100
#define PAGER_MAX_OUT 20000		/* outgoing MESSAGE transactions in flight */
#define PAGER_MAX_IN 20000		/* held incoming MESSAGEs */
#define PAGER_SUBJECT_MAX 512
#define NS_PING "urn:xmpp:ping"
#define NS_DISCO_INFO "http://jabber.org/protocol/disco#info"
#define NS_DELAY "urn:xmpp:delay"
#define NS_RECEIPTS "urn:xmpp:receipts"
#define NS_MARKERS "urn:xmpp:chat-markers:0"
#define NS_CHATSTATES "http://jabber.org/protocol/chatstates"
#define CT_TEXT SIP_CT_TEXT
#define CT_COMPOSING "application/im-iscomposing+xml"
#define CT_IMDN "message/imdn+xml"
#define CT_CPIM "message/cpim"
#define ACCEPT_TYPES "text/plain, message/cpim"
#define PAGER_INFLATE_MAX (64 * 1024)	/* bytes a deflated body may inflate to */

struct pager_link;

/* A SIP MESSAGE forwarded to XMPP whose outcome is being watched. */
struct pager_in {
	char id[320];			/* the stanza id, key of pg->ins (notices.c: may carry an
					 * IMDN request) */
	struct pager_link *pl;
	struct sip_incoming *in;	/* held transaction; NULL once answered */
	unsigned long barrier;		/* the barrier that settles it */
	uint64_t t_ms;			/* forwarded at, then answered at */
	uint64_t rx_us;			/* received at (stats_now_us), for the latency */
	const struct conf_peer *peer;
	char *sip_from;			/* the SIP sender */
	char *sip_to;			/* the XMPP user, as a SIP URI */
	char *jid_to;			/* the XMPP user, as addressed */
	TAILQ_ENTRY(pager_in) entry;	/* in pl->held, or pg->recent once answered */
};

TAILQ_HEAD(pager_list, pager_in);	/* oldest first */

/* Per component link: the held messages in the order they were sent, and barrier state. */
struct pager_link {
	struct pager *pg;
	struct xmpp_link *link;
	struct pager_list held;
	unsigned long next_barrier;	/* the barrier messages sent now will be covered by */
	struct event *barrier_ev;	/* sends the barrier when <im barrier-window> has passed
					 * since the first message it covers (0: at the end of the
					 * loop pass) */
	int conclusive;			/* a barrier reply means no refusal will follow: 200 */
	unsigned long disco_seq;	/* the server identity query in flight (<prefix>-d<n>) */
};

/* XMPP servers by the name of their disco#info identity, and whether the barrier is conclusive
 * there (it refuses a message for a local user before it answers an iq sent after it). */
static const struct pager_server {
	const char *name;
	int conclusive;
} pager_servers[] = {
	{ "Prosody", 1 },	/* blocking, privacy and unknown users all decided while routing */
	{ "ejabberd", 0 },	/* an online user's block list is checked in the session process */
};

/* An XMPP message sent as a SIP MESSAGE, awaiting the final response. */
struct pager_out {
	struct pager *pg;
	struct xmpp_link *link;
	xmpp_stanza_t *stanza;		/* the original (a reference), to bounce on failure */
	const struct conf_peer *peer;
	char *from_uri, *to_uri;
	unsigned dispositions;		/* IMDNs asked for (receipt request, markable) */
	char *imdn_id;			/* their imdn.Message-ID (carries the stanza id), or NULL */
	int cpim;			/* sent as CPIM with the request (until a 415) */
	struct sip_outgoing *out;
	uint64_t rx_us;			/* received at (stats_now_us), for the latency */
	LIST_ENTRY(pager_out) entry;	/* in pg->outs */
};

struct pager {
	struct gw *gw;
	struct dict *ins;		/* stanza id -> struct pager_in */
	struct pager_link **links;	/* one per component link, each its own allocation (the
					 * barrier event points at it; a reload adds links) */
	size_t nlinks;
	struct pager_list recent;	/* answered, kept for late errors */
	LIST_HEAD(, pager_out) outs;
	size_t nout, nheld;
	struct event *sweep_ev;
	int closing;
	struct log_limit refusal_log;	/* refused MESSAGEs */
	struct log_limit notice_log;	/* typing notices and IMDNs the SIP side refused */
	char inflated[PAGER_INFLATE_MAX];	/* a deflated body, while it is handled */
	struct xmpp_text text;			/* a chat message from SIP, being written */
};

static struct pager_link *pager_link_of(struct pager *pg, struct xmpp_link *link)
{
	for (size_t i = 0; i < pg->nlinks; i++)
		if (pg->links[i]->link == link)
			return pg->links[i];
	return NULL;
}

/* Counts a message's verdict (gateway/stats.h); a delivered one's latency from rx_us, when it
 * was received. */
static void pager_count(struct pager *pg, const struct conf_peer *peer, enum stats_dir dir,
			enum stats_verdict verdict, uint64_t rx_us)
{
	stats_message(&pg->gw->stats, gw_peer_stats(pg->gw, peer), dir, verdict,
		      verdict == STATS_DELIVERED ? stats_now_us() - rx_us : UINT64_MAX);
}

static void pager_in_free(struct pager_in *e)
{
	free(e->sip_from);
	free(e->sip_to);
	free(e->jid_to);
	free(e);
}

/* Answers a held MESSAGE and moves it to the recent list (2xx) or drops it (failure). */
static void pager_in_settle(struct pager *pg, struct pager_in *e, int status, const char *phrase,
			    unsigned retry_after)
{
	TAILQ_REMOVE(&e->pl->held, e, entry);
	pg->nheld--;
	pager_count(pg, e->peer, STATS_SIP_TO_XMPP, status < 300 ? STATS_DELIVERED : STATS_FAILED,
		    e->rx_us);
	sip_incoming_respond(e->in, status, phrase, retry_after, NULL);
	e->in = NULL;
	if (status >= 200 && status < 300) {
		e->t_ms = gw_now_ms(pg->gw);
		TAILQ_INSERT_TAIL(&pg->recent, e, entry);
	} else {
		dict_del(pg->ins, e->id);
		pager_in_free(e);
	}
}

/* A notice (typing, IMDN, a late "not delivered") was answered: nobody waits for it, and a
 * refusal is only logged. */
static void pager_notice_answered(void *arg, int status, const char *phrase)
{
	struct pager *pg = arg;

	if (status >= 300)
		log_refusal(&pg->notice_log, "typing notice or delivery notification refused: %d %s",
			    status, phrase ? phrase : "");
}

/* Sends a notice: a MESSAGE nobody waits for. */
static void pager_send_notice(struct pager *pg, const struct conf_peer *peer, const char *from_uri,
			      const char *to_uri, const char *content_type, const char *body)
{
	struct sip_out_message m;

	memset(&m, 0, sizeof(m));
	m.peer = peer;
	m.from_uri = from_uri;
	m.to_uri = to_uri;
	m.content_type = content_type;
	m.body = body;
	sip_send_message(pg->gw->sip, &m, pager_notice_answered, pg);
}

static int pager_send_imdn(struct pager *pg, const struct conf_peer *peer, const char *from_uri,
			   const char *to_uri, const char *id, enum map_imdn_kind kind,
			   const char *status, unsigned asked);

/* An error came back for a message already answered 2xx: tell the SIP sender, with a failed
 * IMDN where it asked for negative delivery notifications, else in a text MESSAGE. */
static void pager_late_error(struct pager *pg, struct pager_in *e, const char *condition,
			     const char *text)
{
	char *body = gw_xasprintf("Your message to %s was not delivered: %s%s%s%s", e->jid_to,
				  condition, text ? " (" : "", text ? text : "", text ? ")" : "");
	char clean[1024];

	if (pager_send_imdn(pg, e->peer, e->sip_to, e->sip_from, e->id, MAP_IMDN_DELIVERY,
			    strcmp(condition, "forbidden") == 0 ? "forbidden" : "failed",
			    MAP_DISP_NEGATIVE) == 0) {
		log_info("late error %s for %s -> %s: failed IMDN to the sender", condition,
			 e->sip_from, e->jid_to);
		free(body);
		return;
	}
	/* the peer's text goes into a SIP body: keep it to valid UTF-8, one paragraph */
	map_header_text(body, clean, sizeof(clean));
	if (map_text_check(clean, strlen(clean)) != 0)
		snprintf(clean, sizeof(clean), "Your message to %s was not delivered: %s", e->jid_to,
			 condition);
	log_info("late error %s for %s -> %s: notifying the sender", condition, e->sip_from,
		 e->jid_to);
	pager_send_notice(pg, e->peer, e->sip_to, e->sip_from, CT_TEXT, clean);
	free(body);
}

/* ---- SIP -> XMPP */

static xmpp_stanza_t *pager_tag(struct pager *pg, const char *name, const char *ns)
{
	return map_tag(pg->gw->xctx, name, ns);
}

/* Now, as an RFC 3339 date-time in UTC ("2026-12-04T15:00:00Z"). */
static void pager_now_rfc3339(char *buf, size_t len)
{
	time_t t = time(NULL);
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* "2000-12-13T13:40:00-08:00" or with Z and fractions: the XEP-0082 profile of RFC 3339. */
static int pager_datetime_ok(const char *s, size_t n)
{
	static const char shape[] = "dddd-dd-ddTdd:dd:dd";
	size_t i;

	if (n < sizeof(shape) - 1 || n > 40)
		return 0;
	for (i = 0; i < sizeof(shape) - 1; i++)
		if (shape[i] == 'd' ? !(s[i] >= '0' && s[i] <= '9') : s[i] != shape[i])
			return 0;
	if (i < n && s[i] == '.')
		for (i++; i < n && s[i] >= '0' && s[i] <= '9'; i++)
			;
	if (i < n && s[i] == 'Z')
		return i + 1 == n;
	return n - i == 6 && (s[i] == '+' || s[i] == '-') && s[i + 3] == ':';
}

/* An <iq type='get'> with one empty payload from the component to the XMPP server itself. */
static int pager_server_iq(struct pager *pg, struct pager_link *pl, const char *id,
			   const char *name, const char *ns)
{
	struct xmpp_text *t = &pg->text;

	/* written as text (the barrier ping goes out once per window: through libstrophe's
	 * objects it cost ~11 700 instructions, 4 200 per SIP -> XMPP message at 200/s) */
	t->len = 0;
	xmpp_text_add(t, "<iq type='get' id='", 19);
	xmpp_text_attr(t, id);
	xmpp_text_add(t, "' from='", 8);
	xmpp_text_attr(t, xmpp_link_domain(pl->link));
	xmpp_text_add(t, "' to='", 6);
	xmpp_text_attr(t, pg->gw->conf->xmpp_domain);
	xmpp_text_add(t, "'><", 3);
	xmpp_text_add(t, name, strlen(name));
	xmpp_text_add(t, " xmlns='", 8);
	xmpp_text_attr(t, ns);
	xmpp_text_add(t, "'/></iq>", 8);
	return xmpp_link_send_text(pl->link, t);
}

static void pager_barrier_cb(evutil_socket_t fd, short what, void *arg)
{
	struct pager_link *pl = arg;
	struct pager *pg = pl->pg;
	struct pager_in *last;
	char id[48];

	last = TAILQ_LAST(&pl->held, pager_list);
	if (!last || last->barrier != pl->next_barrier)
		return;		/* nothing new to cover */
	snprintf(id, sizeof(id), "%s-b%lu", gw_id_prefix(pg->gw), pl->next_barrier);
	if (pager_server_iq(pg, pl, id, "ping", NS_PING) == 0)
		pl->next_barrier++;
}

/* A message was held: the barrier that will cover it goes out at the end of the window that
 * began with the first message not covered yet.  One ping per window, not per message: at the
 * rates a gateway really runs (one message per wakeup) a ping each cost two more stanzas and
 * about as much CPU as the message itself (issue 16). */
static void pager_barrier_arm(struct pager *pg, struct pager_link *pl)
{
	unsigned ms = pg->gw->conf->im_barrier_window_ms;
	struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };

	if (ms == 0)
		event_active(pl->barrier_ev, EV_TIMEOUT, 0);
	else if (!event_pending(pl->barrier_ev, EV_TIMEOUT, NULL))
		event_add(pl->barrier_ev, &tv);
}

/* The answer to the server identity query: decides what a barrier reply is worth on this link. */
static void pager_server_identity(struct pager *pg, struct pager_link *pl, xmpp_stanza_t *iq)
{
	xmpp_stanza_t *q = xmpp_stanza_get_child_by_ns(iq, NS_DISCO_INFO);
	const char *name = NULL;

	for (xmpp_stanza_t *c = q ? xmpp_stanza_get_children(q) : NULL; c && !name;
	     c = xmpp_stanza_get_next(c)) {
		const char *cat = xmpp_stanza_is_tag(c) ? xmpp_stanza_get_attribute(c, "category") :
				  NULL;

		if (cat && strcmp(xmpp_stanza_get_name(c), "identity") == 0 &&
		    strcmp(cat, "server") == 0)
			name = xmpp_stanza_get_attribute(c, "name");
	}
	pl->conclusive = 0;
	for (size_t i = 0; name && i < sizeof(pager_servers) / sizeof(pager_servers[0]); i++)
		if (strcasecmp(name, pager_servers[i].name) == 0)
			pl->conclusive = pager_servers[i].conclusive;
	log_notice("component %s: the XMPP server is %s: a SIP MESSAGE it takes without a bounce is "
		   "answered %s", xmpp_link_domain(pl->link), name ? name : "unknown",
		   pl->conclusive ? "200 OK" : "202 Accepted (it may still refuse it later)");
}

static void pager_ask_identity(struct pager *pg, struct pager_link *pl)
{
	char id[48];

	snprintf(id, sizeof(id), "%s-d%lu", gw_id_prefix(pg->gw), ++pl->disco_seq);
	pager_server_iq(pg, pl, id, "query", NS_DISCO_INFO);
}

int pager_iq_reply(struct pager *pg, struct xmpp_link *link, xmpp_stanza_t *iq)
{
	struct pager_link *pl = pager_link_of(pg, link);
	const char *id = xmpp_stanza_get_id(iq), *prefix = gw_id_prefix(pg->gw);
	size_t plen = strlen(prefix);
	struct pager_in *e;
	char *end;
	unsigned long n;

	if (!pl || !id || strncmp(id, prefix, plen) != 0 || id[plen] != '-' ||
	    (id[plen + 1] != 'b' && id[plen + 1] != 'd'))
		return 0;
	n = strtoul(id + plen + 2, &end, 10);
	if (*end || end == id + plen + 2)
		return 0;
	if (id[plen + 1] == 'd') {
		if (n == pl->disco_seq)
			pager_server_identity(pg, pl, iq);
		return 1;
	}
	while ((e = TAILQ_FIRST(&pl->held)) && e->barrier <= n) {
		if (pl->conclusive)
			pager_in_settle(pg, e, 200, "OK", 0);
		else
			pager_in_settle(pg, e, 202, "Accepted", 0);
	}
	return 1;
}

/* What a SIP MESSAGE carries, once its content is understood. */
enum pager_kind {
	PK_TEXT,		/* a message: body, subject, maybe a request for IMDNs */
	PK_COMPOSING,		/* an isComposing document (RFC 3994) */
	PK_IMDN,		/* a delivery or display notification (RFC 5438) */
};

struct pager_content {
	enum pager_kind kind;
	const char *body;		/* PK_TEXT: the text, inside the request or inflated */
	size_t body_len;
	const char *subject;		/* or NULL */
	size_t subject_len;
	char subject_lang[36];
	char stamp[48];			/* CPIM DateTime in the XEP-0082 profile, or "" */
	unsigned dispositions;		/* IMDNs the sender asked for (MAP_DISP_*) */
	char message_id[MAP_IMDN_ID_MAX + 1];	/* its imdn.Message-ID, when it asked */
	char datetime[48];		/* its DateTime, copied into the IMDNs */
	const char *chatstate;		/* PK_COMPOSING: "composing" or "paused" */
	struct map_imdn imdn;		/* PK_IMDN */
};

#define ACCEPT_ALL ACCEPT_TYPES ", " CT_COMPOSING ", " CT_IMDN

/* A refusal of a SIP MESSAGE: logged (at a bounded rate) and answered. */
static void pager_refuse(struct pager *pg, struct sip_incoming *in,
			 const struct sip_message_info *info, int status, const char *phrase,
			 const char *accept)
{
	log_refusal(&pg->refusal_log, "MESSAGE %s -> %s from %s (%s%s%s): %d %s", info->from_uri,
		    info->request_uri, info->source, info->content_type ? info->content_type : "no body",
		    info->content_encoding ? ", encoding " : "",
		    info->content_encoding ? info->content_encoding : "", status, phrase);
	pager_count(pg, info->peer, STATS_SIP_TO_XMPP, STATS_REFUSED, 0);
	sip_incoming_respond(in, status, phrase, 0, accept);
}

/* Lower-cased "type/subtype" of a span, for the content table. */
static void pager_type_of(struct map_span t, char *buf, size_t len)
{
	size_t n = t.n < len - 1 ? t.n : len - 1;

	for (size_t i = 0; i < n; i++)
		buf[i] = (t.p[i] >= 'A' && t.p[i] <= 'Z') ? (char)(t.p[i] + 'a' - 'A') : t.p[i];
	buf[n] = '\0';
}

static int pager_charset_ok(const char *cs, size_t n)
{
	return !cs || (n == 5 && strncasecmp(cs, "utf-8", 5) == 0) ||
	       (n == 8 && strncasecmp(cs, "us-ascii", 8) == 0);
}

/* The content of type `type` (lower case) in body: fills c, or returns the refusal status. */
static int pager_content_of(const char *type, const char *charset, size_t charset_len,
			    const char *body, size_t len, struct pager_content *c,
			    const char **phrase)
{
	if (strcmp(type, "text/plain") == 0) {
		if (!pager_charset_ok(charset, charset_len)) {
			*phrase = "Unsupported Charset";
			return 415;
		}
		c->kind = PK_TEXT;
		c->body = body;
		c->body_len = len;
		return 0;
	}
	if (strcmp(type, CT_COMPOSING) == 0) {
		const char *state = map_iscomposing_parse(body, len, NULL);

		if (!state) {
			*phrase = "Malformed isComposing Document";
			return 400;
		}
		c->kind = PK_COMPOSING;
		c->chatstate = map_composing_to_chatstate(state);
		return 0;
	}
	if (strcmp(type, CT_IMDN) == 0) {
		if (map_imdn_parse(body, len, &c->imdn) != 0) {
			*phrase = "Malformed IMDN Document";
			return 400;
		}
		c->kind = PK_IMDN;
		return 0;
	}
	*phrase = "Unsupported Media Type";
	return 415;
}

/* Understands a MESSAGE's body (inflating it into inflated, PAGER_INFLATE_MAX bytes, when it
 * says Content-Encoding: deflate).  0, or a refusal status with *phrase. */
static int pager_classify(const struct sip_message_info *info, char *inflated,
			  struct pager_content *c, const char **phrase)
{
	const char *body = info->body;
	size_t len = info->body_len;
	struct map_cpim cpim;
	char type[64];
	int r;

	memset(c, 0, sizeof(*c));
	if (info->content_encoding) {
		if (strcmp(info->content_encoding, "deflate") != 0) {
			*phrase = "Unsupported Content-Encoding";
			return 415;
		}
		if (gw_inflate_zlib(body, len, inflated, PAGER_INFLATE_MAX, &len) != 0) {
			*phrase = "Malformed Or Too Large Deflate Body";
			return 400;
		}
		body = inflated;
	}
	if (!info->content_type || !len) {
		*phrase = "Empty Message";
		return 400;
	}
	if (strcmp(info->content_type, "message/cpim") != 0)
		return pager_content_of(info->content_type, info->charset,
					info->charset ? strlen(info->charset) : 0, body, len, c,
					phrase);
	if (map_cpim_parse(body, len, &cpim) != 0) {
		*phrase = "Malformed CPIM";
		return 400;
	}
	if (cpim.content_encoding.p) {
		*phrase = "Unsupported CPIM Content-Encoding";
		return 415;
	}
	pager_type_of(cpim.content_type, type, sizeof(type));
	r = pager_content_of(type, cpim.charset.p, cpim.charset.n, cpim.body.p, cpim.body.n, c,
			     phrase);
	if (r == 415 && strcmp(*phrase, "Unsupported Media Type") == 0)
		*phrase = "Unsupported CPIM Content";
	if (r != 0 || c->kind != PK_TEXT)
		return r;
	if (!info->subject && cpim.subject.p) {
		c->subject = cpim.subject.p;
		c->subject_len = cpim.subject.n;
		if (cpim.subject_lang.p && cpim.subject_lang.n < sizeof(c->subject_lang))
			snprintf(c->subject_lang, sizeof(c->subject_lang), "%.*s",
				 (int)cpim.subject_lang.n, cpim.subject_lang.p);
	}
	if (cpim.datetime.p && pager_datetime_ok(cpim.datetime.p, cpim.datetime.n))
		snprintf(c->stamp, sizeof(c->stamp), "%.*s", (int)cpim.datetime.n, cpim.datetime.p);
	/* a request for IMDNs (RFC 5438 6): an id to answer with, and what to send */
	if (cpim.imdn_message_id.p && cpim.imdn_disposition.p &&
	    cpim.imdn_message_id.n <= MAP_IMDN_ID_MAX) {
		c->dispositions = map_imdn_dispositions(cpim.imdn_disposition.p,
							cpim.imdn_disposition.n);
		snprintf(c->message_id, sizeof(c->message_id), "%.*s", (int)cpim.imdn_message_id.n,
			 cpim.imdn_message_id.p);
		if (cpim.datetime.p && cpim.datetime.n < sizeof(c->datetime))
			snprintf(c->datetime, sizeof(c->datetime), "%.*s", (int)cpim.datetime.n,
				 cpim.datetime.p);
		else
			pager_now_rfc3339(c->datetime, sizeof(c->datetime));
		if (map_text_check(c->message_id, strlen(c->message_id)) != 0 ||
		    map_text_check(c->datetime, strlen(c->datetime)) != 0)
			c->dispositions = 0;
	}
	if (!c->body_len) {
		*phrase = "Empty Message";
		return 400;
	}
	return 0;
}

/* The stanza for an IMDN: a receipt, a marker or an error for the message it reports on, or
 * NULL (and *why) when there is nothing to forward. */
static xmpp_stanza_t *pager_imdn_stanza(struct pager *pg, const struct map_imdn *imdn,
					const char *to_jid, const char *from_jid, const char *id,
					const char **why)
{
	const struct map_imdn_rule *rule = map_imdn_rule(imdn->kind, imdn->status);
	char original[MAP_JID_MAX + 1], resource[MAP_JID_MAX + 1], full[2 * MAP_JID_MAX + 2];
	xmpp_stanza_t *msg, *el;

	if (!rule || rule->to == MAP_TO_NOTHING) {
		*why = rule ? "nothing to report on the XMPP side" : "a status the gateway does not know";
		return NULL;
	}
	if (map_imdn_stanza_of(imdn->message_id, original, sizeof(original), resource,
			       sizeof(resource)) != 0) {
		*why = "about a message the gateway did not send with a request for it";
		return NULL;
	}
	if (rule->to == MAP_TO_ERROR) {
		char text[96];
		xmpp_stanza_t *orig, *r;

		/* a server drops an error stanza for a bare JID (RFC 6121 8.5.2.1.1): it goes to
		 * the resource that sent the message, when its Message-ID said which */
		if (!resource[0]) {
			*why = "its sender's resource is not known, and an error needs one";
			return NULL;
		}
		snprintf(full, sizeof(full), "%s/%s", to_jid, resource);
		orig = xmpp_message_new(pg->gw->xctx, NULL, from_jid, original);
		if (!orig)
			gw_fatal("pager: out of memory");
		xmpp_stanza_set_from(orig, full);
		snprintf(text, sizeof(text), "the SIP recipient reports delivery %s (IMDN)",
			 imdn->status);
		r = map_error_reply(pg->gw->xctx, orig, rule->condition, text);
		xmpp_stanza_release(orig);
		return r;
	}
	msg = xmpp_message_new(pg->gw->xctx, rule->to == MAP_TO_DISPLAYED ? "chat" : NULL, to_jid,
			       id);
	if (!msg)
		gw_fatal("pager: out of memory");
	xmpp_stanza_set_from(msg, from_jid);
	el = rule->to == MAP_TO_RECEIVED ? pager_tag(pg, "received", NS_RECEIPTS) :
	     pager_tag(pg, "displayed", NS_MARKERS);
	xmpp_stanza_set_attribute(el, "id", original);
	xmpp_stanza_add_child_ex(msg, el, 0);
	return msg;
}

void pager_from_sip(struct pager *pg, struct sip_incoming *in, const struct sip_message_info *info)
{
	const struct conf *conf = pg->gw->conf;
	const struct conf_peer *peer = info->peer;
	char to_jid[MAP_JID_MAX + 1], from_jid[MAP_JID_MAX + 1], base[40];
	struct xmpp_link *link;
	struct pager_link *pl;
	struct pager_content c;
	const char *phrase = NULL, *lang = info->language, *why = NULL;
	struct pager_in *e;
	xmpp_stanza_t *msg;
	int r;
	uint64_t rx_us = stats_now_us();

	if (pg->closing) {
		pager_count(pg, peer, STATS_SIP_TO_XMPP, STATS_REFUSED, 0);
		sip_incoming_respond(in, 503, "Shutting Down", 5, NULL);
		return;
	}
	/* addresses: the Request-URI names the XMPP user, From the SIP user */
	r = map_sip_to_jid(info->request_uri, to_jid, sizeof(to_jid));
	if (r < 0 || !strchr(to_jid, '@')) {
		pager_refuse(pg, in, info, r < 0 ? 484 : 404, r == MAP_ADDR_ENOTCANON ?
			     "User Part Not One-To-One" : r < 0 ? "Address Not Mappable" :
			     "No User Part", NULL);
		return;
	}
	r = map_peer_sip_to_jid(peer, info->from_uri, from_jid, sizeof(from_jid));
	if (r < 0) {
		/* a From the XMPP server would turn into another user's address: 484 too */
		pager_refuse(pg, in, info, r == MAP_ADDR_ENOTCANON ? 484 : 400,
			     r == MAP_ADDR_ENOTCANON ? "From User Part Not One-To-One" :
			     "From Address Not Mappable", NULL);
		return;
	}
	/* the XMPP side must be reachable and keeping up */
	link = gw_link_for_component(pg->gw, peer->component);
	pl = link ? pager_link_of(pg, link) : NULL;
	if (!pl || !xmpp_link_is_up(link)) {
		unsigned ms = link ? xmpp_link_retry_in_ms(link) : 0;

		pager_count(pg, peer, STATS_SIP_TO_XMPP, STATS_FAILED, 0);
		sip_incoming_respond(in, 503, "XMPP Server Unreachable",
				     ms ? (ms + 999) / 1000 : (conf->reconnect_min_ms + 999) / 1000,
				     NULL);
		return;
	}
	if (xmpp_link_congested(link) || pg->nheld >= PAGER_MAX_IN) {
		pager_count(pg, peer, STATS_SIP_TO_XMPP, STATS_REFUSED, 0);
		sip_incoming_respond(in, 503, "Overloaded", 1, NULL);
		return;
	}
	/* content: text, maybe in CPIM with a request for IMDNs; a typing notice; an IMDN */
	r = pager_classify(info, pg->inflated, &c, &phrase);
	if (r != 0) {
		pager_refuse(pg, in, info, r, phrase, r == 415 ? ACCEPT_ALL : NULL);
		return;
	}
	if (c.kind == PK_TEXT && c.body_len > conf->im_max_body) {
		pager_refuse(pg, in, info, 413, "Message Body Too Large", NULL);
		return;
	}
	if (c.kind == PK_TEXT && ((r = map_text_check(c.body, c.body_len)) != 0 ||
				  (c.subject && (r = map_text_check(c.subject, c.subject_len)) != 0))) {
		pager_refuse(pg, in, info, 400, r == MAP_TEXT_EUTF8 ? "Invalid UTF-8" :
			     "Forbidden Control Character", NULL);
		return;
	}
	if (info->subject && c.kind == PK_TEXT) {
		c.subject = info->subject;
		c.subject_len = strlen(info->subject);
		if (map_text_check(c.subject, c.subject_len) != 0) {
			pager_refuse(pg, in, info, 400, "Invalid Subject", NULL);
			return;
		}
	}

	/* the stanza: its id carries the IMDN request, if there is one (notices.c) */
	e = gw_xcalloc(1, sizeof(*e));
	gw_make_id(pg->gw, "m", base, sizeof(base));
	if (c.kind != PK_TEXT ||
	    !(c.dispositions & (MAP_DISP_POSITIVE | MAP_DISP_NEGATIVE | MAP_DISP_DISPLAY)) ||
	    map_imdn_stanza_id(base, c.dispositions, c.message_id, c.datetime, e->id,
			       sizeof(e->id)) != 0)
		memcpy(e->id, base, sizeof(base));
	_Static_assert(sizeof(e->id) >= sizeof(base), "a stanza id holds its base");
	msg = NULL;
	switch (c.kind) {
	case PK_TEXT: {
		/* the hot path: written straight to text (im.c), no stanza objects */
		struct map_chat m = {
			.type = conf->im_type == CONF_IM_NORMAL ? "normal" : "chat",
			.to = to_jid, .from = from_jid, .id = e->id,
			.lang = lang && map_lang_ok(lang) ? lang : NULL,
			.subject = c.subject, .subject_len = c.subject ? c.subject_len : 0,
			.subject_lang = c.subject_lang[0] && map_lang_ok(c.subject_lang) ?
					c.subject_lang : NULL,
			.body = c.body, .body_len = c.body_len,
			.thread = info->call_id && map_call_id_ok(info->call_id) ? info->call_id :
				  NULL,
			.stamp = c.stamp[0] ? c.stamp : NULL, .stamp_from = peer->domain,
			.receipt_request = strcmp(e->id, base) != 0 &&
					   (c.dispositions & MAP_DISP_POSITIVE),
			.markable = strcmp(e->id, base) != 0 && (c.dispositions & MAP_DISP_DISPLAY),
		};

		pg->text.len = 0;
		map_chat_text(&pg->text, &m);
		break;
	}
	case PK_COMPOSING:
		msg = xmpp_message_new(pg->gw->xctx, "chat", to_jid, e->id);
		if (!msg)
			gw_fatal("pager: out of memory");
		xmpp_stanza_set_from(msg, from_jid);
		xmpp_stanza_add_child_ex(msg, pager_tag(pg, c.chatstate, NS_CHATSTATES), 0);
		break;
	case PK_IMDN:
	default:
		msg = pager_imdn_stanza(pg, &c.imdn, to_jid, from_jid, e->id, &why);
		if (!msg) {
			log_info("IMDN %s %s for %s from %s: %s; not forwarded",
				 c.imdn.kind == MAP_IMDN_DELIVERY ? "delivery" :
				 c.imdn.kind == MAP_IMDN_DISPLAY ? "display" : "processing",
				 c.imdn.status, c.imdn.message_id, info->from_uri, why);
			pager_count(pg, peer, STATS_SIP_TO_XMPP, STATS_REFUSED, 0);
			sip_incoming_respond(in, 200, "OK", 0, NULL);
			free(e);
			return;
		}
		break;
	}
	if (msg) {
		r = xmpp_link_send(link, msg);
		xmpp_stanza_release(msg);
	} else {
		r = xmpp_link_send_text(link, &pg->text);
	}
	if (r != 0) {
		free(e);
		pager_count(pg, peer, STATS_SIP_TO_XMPP, STATS_FAILED, 0);
		sip_incoming_respond(in, 503, "XMPP Server Unreachable", 1, NULL);
		return;
	}
	log_debug("MESSAGE %s -> %s (%s) forwarded as %s", info->from_uri, to_jid,
		  c.kind == PK_TEXT ? "text" : c.kind == PK_COMPOSING ? c.chatstate : "IMDN", e->id);
	if (conf->im_delivery_wait_ms == 0) {
		/* configured not to wait for a verdict */
		pager_count(pg, peer, STATS_SIP_TO_XMPP, STATS_DELIVERED, rx_us);
		sip_incoming_respond(in, 202, "Accepted", 0, NULL);
		free(e);
		return;
	}
	e->pl = pl;
	e->in = in;
	e->peer = peer;
	e->rx_us = rx_us;
	e->t_ms = gw_now_ms(pg->gw);
	e->barrier = pl->next_barrier;
	e->sip_from = gw_xstrdup(info->from_uri);
	e->sip_to = gw_xstrdup(info->request_uri);
	e->jid_to = gw_xstrdup(to_jid);
	dict_set(pg->ins, e->id, e);
	TAILQ_INSERT_TAIL(&pl->held, e, entry);
	pg->nheld++;
	pager_barrier_arm(pg, pl);
}

/* First child element's name inside <error/> in the stanza-errors namespace, and its <text/>. */
static const char *pager_error_condition(xmpp_stanza_t *stanza, const char **text)
{
	xmpp_stanza_t *err = xmpp_stanza_get_child_by_name(stanza, "error");
	const char *cond = "undefined-condition";

	*text = NULL;
	for (xmpp_stanza_t *c = err ? xmpp_stanza_get_children(err) : NULL; c;
	     c = xmpp_stanza_get_next(c)) {
		const char *ns = xmpp_stanza_get_ns(c), *name = xmpp_stanza_get_name(c);

		if (!xmpp_stanza_is_tag(c) || !ns || strcmp(ns, XMPP_NS_STANZA_ERRORS) != 0)
			continue;
		if (strcmp(name, "text") == 0) {
			xmpp_stanza_t *t = xmpp_stanza_get_children(c);

			*text = t ? xmpp_stanza_get_text_ptr(t) : NULL;
		} else if (map_error_known(name)) {
			cond = name;
		}
	}
	return cond;
}

/* An error stanza: the verdict on a message we forwarded from SIP, if its id is ours. */
static void pager_xmpp_error(struct pager *pg, struct xmpp_link *link, xmpp_stanza_t *stanza)
{
	const char *id = xmpp_stanza_get_id(stanza), *text, *cond;
	struct pager_in *e = id ? dict_get(pg->ins, id) : NULL;
	char phrase[160], bare[MAP_JID_MAX + 1];
	const char *from = xmpp_stanza_get_from(stanza);

	if (!e || e->pl->link != link) {
		log_debug("error stanza %s for nothing pending: dropped", id ? id : "(no id)");
		return;
	}
	/* the error must come from the address the message went to */
	if (!from || map_jid_bare(from, bare, sizeof(bare)) < 0 ||
	    (strcmp(bare, e->jid_to) != 0 && strcmp(from, pg->gw->conf->xmpp_domain) != 0)) {
		log_notice("error stanza %s from %s, not from %s: ignored", id, from ? from : "-",
			   e->jid_to);
		return;
	}
	cond = pager_error_condition(stanza, &text);
	if (e->in) {
		int status = map_error_to_sip(cond);

		snprintf(phrase, sizeof(phrase), "%s (XMPP %s)", sip_status_phrase_of(status), cond);
		log_info("MESSAGE %s -> %s refused by XMPP: %s%s%s -> %d", e->sip_from, e->jid_to,
			 cond, text ? ": " : "", text ? text : "", status);
		pager_in_settle(pg, e, status, phrase, 0);
		return;
	}
	pager_late_error(pg, e, cond, text);
	TAILQ_REMOVE(&pg->recent, e, entry);
	dict_del(pg->ins, e->id);
	pager_in_free(e);
}

/* ---- XMPP -> SIP */

static void pager_bounce(struct pager *pg, struct xmpp_link *link, xmpp_stanza_t *stanza,
			 const char *condition, const char *text)
{
	xmpp_stanza_t *reply = map_error_reply(pg->gw->xctx, stanza, condition, text);

	if (xmpp_link_send(link, reply) != 0)
		log_warn("cannot return error %s for message %s to %s: the link is down", condition,
			 xmpp_stanza_get_id(stanza) ? xmpp_stanza_get_id(stanza) : "-",
			 xmpp_stanza_get_from(stanza) ? xmpp_stanza_get_from(stanza) : "-");
	xmpp_stanza_release(reply);
}

static void pager_out_unlink(struct pager *pg, struct pager_out *o)
{
	LIST_REMOVE(o, entry);
	pg->nout--;
}

static void pager_out_free(struct pager_out *o)
{
	xmpp_stanza_release(o->stanza);
	free(o->from_uri);
	free(o->to_uri);
	free(o->imdn_id);
	free(o);
}

static void pager_out_done(void *arg, int status, const char *phrase);

/* A body as message/cpim asking for IMDNs (RFC 5438 7.1): the imdn.Message-ID carries the
 * stanza id (notices.c).  Caller frees. */
static char *pager_cpim_request(const struct pager_out *o, const char *body)
{
	char when[32], disp[64];

	pager_now_rfc3339(when, sizeof(when));
	map_imdn_dispositions_text(o->dispositions, disp, sizeof(disp));
	return gw_xasprintf("From: <%s>\r\nTo: <%s>\r\nNS: imdn <urn:ietf:params:imdn>\r\n"
			    "imdn.Message-ID: %s\r\nDateTime: %s\r\n"
			    "imdn.Disposition-Notification: %s\r\n\r\n"
			    "Content-Type: " CT_TEXT "\r\n\r\n%s", o->from_uri, o->to_uri,
			    o->imdn_id, when, disp, body);
}

/* Sends o's message: as CPIM with the IMDN request while o->imdn_id is set, else as text. */
static int pager_out_send(struct pager *pg, struct pager_out *o)
{
	struct map_im_fields f;
	struct sip_out_message m;
	char subject[PAGER_SUBJECT_MAX], *cpim = NULL;

	map_im_fields(o->stanza, &f);
	memset(&m, 0, sizeof(m));
	m.peer = o->peer;
	m.from_uri = o->from_uri;
	m.to_uri = o->to_uri;
	m.content_type = CT_TEXT;
	m.body = f.body;
	if (f.subject && map_header_text(f.subject, subject, sizeof(subject)))
		m.subject = subject;
	if (f.lang && map_lang_ok(f.lang))
		m.language = f.lang;
	if (f.thread && map_call_id_ok(f.thread))
		m.call_id = f.thread;
	else if (o->imdn_id)
		m.call_id = o->imdn_id;	/* linphone reports on a text/plain MESSAGE by Call-ID */
	if (o->imdn_id && o->cpim) {
		cpim = pager_cpim_request(o, f.body);
		m.content_type = CT_CPIM;
		m.body = cpim;
	}
	o->out = sip_send_message(pg->gw->sip, &m, pager_out_done, o);
	free(cpim);
	return o->out ? 0 : -1;
}

static void pager_out_done(void *arg, int status, const char *phrase)
{
	struct pager_out *o = arg;
	struct pager *pg = o->pg;

	pager_out_unlink(pg, o);
	if ((status == 415 || status == 488) && o->cpim) {
		/* a client that takes no CPIM (baresip: 415) or not this CPIM (liblinphone 5.1 answers
		 * 488 to a DateTime in January or on 29 February) gets the text alone, without the
		 * IMDN request; the Call-ID still carries it for clients that report on any MESSAGE */
		log_info("MESSAGE %s -> %s: message/cpim refused (%d): sent again as text/plain",
			 o->from_uri, o->to_uri, status);
		o->cpim = 0;
		if (pager_out_send(pg, o) == 0) {
			LIST_INSERT_HEAD(&pg->outs, o, entry);
			pg->nout++;
			return;
		}
	}
	pager_count(pg, o->peer, STATS_XMPP_TO_SIP, status < 300 ? STATS_DELIVERED : STATS_FAILED,
		    o->rx_us);
	if (status >= 300) {
		const char *cond = map_error_from_sip(status);
		char text[160];

		snprintf(text, sizeof(text), "SIP %d %s", status, phrase ? phrase : "");
		log_info("MESSAGE %s -> %s failed: %d %s -> %s",
			 xmpp_stanza_get_from(o->stanza), xmpp_stanza_get_to(o->stanza), status,
			 phrase ? phrase : "", cond);
		pager_bounce(pg, o->link, o->stanza, cond, text);
	}
	pager_out_free(o);
}

/* Checks a stanza's addresses for the way to SIP: the sender in the XMPP domain the gateway
 * serves, the recipient a SIP user of a peer network behind this component.  Returns the peer,
 * or NULL with *condition and *text saying why. */
static const struct conf_peer *pager_route(struct pager *pg, struct xmpp_link *link,
					   xmpp_stanza_t *stanza, char *from_uri, char *to_uri,
					   const char **condition, const char **text)
{
	const struct conf *conf = pg->gw->conf;
	const char *from = xmpp_stanza_get_from(stanza), *to = xmpp_stanza_get_to(stanza);
	const struct conf_peer *peer;
	int r, in_domain;

	/* the gateway asserts identities only in the XMPP domain it serves */
	r = map_jid_to_sip_in(from, conf->xmpp_domain, from_uri, MAP_URI_MAX, &in_domain);
	if (!in_domain) {
		*condition = "forbidden";
		*text = "only users of the gateway's XMPP domain can write to SIP users";
		return NULL;
	}
	if (r < 0) {
		*condition = "jid-malformed";
		*text = "the sender's address has no SIP form";
		return NULL;
	}
	if (!to) {
		*condition = "jid-malformed";
		*text = "no recipient";
		return NULL;
	}
	peer = map_peer_for_jid(conf, xmpp_link_domain(link), to, to_uri, MAP_URI_MAX, &r);
	if (!peer) {
		*condition = r != MAP_ADDR_EDOMAIN ? "jid-malformed" : "item-not-found";
		*text = r != MAP_ADDR_EDOMAIN ? map_addr_strerror(r) :
			"no SIP peer network serves that address";
		return NULL;
	}
	if (!strchr(to_uri + 4, '@')) {
		*condition = "service-unavailable";
		*text = "the gateway itself does not take messages";
		return NULL;
	}
	return peer;
}

/* One IMDN for a receipt or marker (received_id) from the XMPP user: back to the SIP sender of
 * the message it names, if that message asked for it (the id says, notices.c). */
static int pager_send_imdn(struct pager *pg, const struct conf_peer *peer, const char *from_uri,
			   const char *to_uri, const char *id, enum map_imdn_kind kind,
			   const char *status, unsigned asked)
{
	char message_id[MAP_IMDN_ID_MAX + 1], datetime[48], fresh[MAP_IMDN_ID_MAX + 1], when[32];
	unsigned disp;
	char *doc, *body;

	if (map_imdn_from_stanza_id(id, &disp, message_id, sizeof(message_id), datetime,
				    sizeof(datetime)) != 0 || !(disp & asked)) {
		log_debug("%s for %s: its sender asked for no such IMDN; not forwarded", status, id);
		return -1;
	}
	map_imdn_message_id("n", NULL, fresh, sizeof(fresh));
	pager_now_rfc3339(when, sizeof(when));
	doc = map_imdn_build(kind, status, message_id, datetime, from_uri);
	body = gw_xasprintf("From: <%s>\r\nTo: <%s>\r\nNS: imdn <urn:ietf:params:imdn>\r\n"
			    "imdn.Message-ID: %s\r\nDateTime: %s\r\n\r\n"
			    "Content-Type: " CT_IMDN "\r\nContent-Disposition: notification\r\n"
			    "Content-Length: %zu\r\n\r\n%s", from_uri, to_uri, fresh, when,
			    strlen(doc), doc);
	log_debug("%s IMDN (%s) %s -> %s for %s", kind == MAP_IMDN_DISPLAY ? "display" :
		  "delivery", status, from_uri, to_uri, message_id);
	pager_send_notice(pg, peer, from_uri, to_uri, CT_CPIM, body);
	free(doc);
	free(body);
	return 0;
}

/* A message without a body: typing notices and delivery notifications, translated where the
 * other side has a form for them; nothing else is sent (and no error comes back for them). */
static void pager_notices_from_xmpp(struct pager *pg, struct xmpp_link *link,
				    xmpp_stanza_t *stanza, const struct map_im_fields *f)
{
	char from_uri[MAP_URI_MAX], to_uri[MAP_URI_MAX];
	const char *cond, *text, *state;
	const struct conf_peer *peer;

	if (!f->chatstate && !f->received_id && !f->marker_received_id && !f->displayed_id) {
		log_debug("message %s -> %s carries nothing the SIP side has a form for: dropped",
			  xmpp_stanza_get_from(stanza) ? xmpp_stanza_get_from(stanza) : "-",
			  xmpp_stanza_get_to(stanza) ? xmpp_stanza_get_to(stanza) : "-");
		return;
	}
	peer = pager_route(pg, link, stanza, from_uri, to_uri, &cond, &text);
	if (!peer) {
		log_refusal(&pg->notice_log, "notice %s -> %s not sent: %s (%s)",
			    xmpp_stanza_get_from(stanza) ? xmpp_stanza_get_from(stanza) : "-",
			    xmpp_stanza_get_to(stanza) ? xmpp_stanza_get_to(stanza) : "-", cond, text);
		return;
	}
	if (!sip_peer_allows(peer, CONF_SVC_PAGER)) {
		log_refusal(&pg->notice_log, "notice %s -> %s not sent: the peer network %s does not "
			    "take pager messages", from_uri, to_uri, peer->name);
		return;
	}
	if (f->received_id || f->marker_received_id)
		pager_send_imdn(pg, peer, from_uri, to_uri,
				f->received_id ? f->received_id : f->marker_received_id,
				MAP_IMDN_DELIVERY, "delivered", MAP_DISP_POSITIVE);
	if (f->displayed_id)
		pager_send_imdn(pg, peer, from_uri, to_uri, f->displayed_id, MAP_IMDN_DISPLAY,
				"displayed", MAP_DISP_DISPLAY);
	if (f->chatstate && (state = map_chatstate_to_composing(f->chatstate))) {
		char *doc = map_iscomposing_build(state, 0);

		log_debug("chat state %s %s -> %s sent as isComposing %s", f->chatstate, from_uri,
			  to_uri, state);
		pager_send_notice(pg, peer, from_uri, to_uri, CT_COMPOSING, doc);
		free(doc);
	}
}

void pager_from_xmpp(struct pager *pg, struct xmpp_link *link, xmpp_stanza_t *stanza)
{
	const struct conf *conf = pg->gw->conf;
	const char *type = xmpp_stanza_get_type(stanza), *cond, *why, *id, *slash;
	const struct conf_peer *peer;
	char from_uri[MAP_URI_MAX], to_uri[MAP_URI_MAX], *text;
	char imdn_id[MAP_IMDN_ID_MAX + 1];
	struct map_im_fields f;
	struct pager_out *o;

	if (type && strcmp(type, "error") == 0) {
		pager_xmpp_error(pg, link, stanza);
		return;
	}
	if (pg->closing) {
		pager_count(pg, NULL, STATS_XMPP_TO_SIP, STATS_REFUSED, 0);
		pager_bounce(pg, link, stanza, "service-unavailable", "the gateway is shutting down");
		return;
	}
	if (type && strcmp(type, "groupchat") == 0) {
		pager_count(pg, NULL, STATS_XMPP_TO_SIP, STATS_REFUSED, 0);
		pager_bounce(pg, link, stanza, "feature-not-implemented",
			     "groupchat messages cannot be sent to a SIP user");
		return;
	}
	map_im_fields(stanza, &f);
	if (!f.body) {
		if (f.subject) {
			pager_count(pg, NULL, STATS_XMPP_TO_SIP, STATS_REFUSED, 0);
			pager_bounce(pg, link, stanza, "not-acceptable",
				     "a message without a body cannot be sent to SIP");
			return;
		}
		pager_notices_from_xmpp(pg, link, stanza, &f);
		return;
	}
	peer = pager_route(pg, link, stanza, from_uri, to_uri, &cond, &why);
	if (!peer) {
		pager_count(pg, NULL, STATS_XMPP_TO_SIP, STATS_REFUSED, 0);
		pager_bounce(pg, link, stanza, cond, why);
		return;
	}
	if (!sip_peer_allows(peer, CONF_SVC_PAGER)) {
		/* <peer services>: nothing goes to a network that does not take pager mode */
		log_refusal(&pg->refusal_log, "message %s -> %s refused: the peer network %s does not "
			    "take pager messages", from_uri, to_uri, peer->name);
		text = gw_xasprintf("the peer network %s does not accept pager messages through this "
				    "gateway", peer->name);
		pager_count(pg, peer, STATS_XMPP_TO_SIP, STATS_REFUSED, 0);
		pager_bounce(pg, link, stanza, "service-unavailable", text);
		free(text);
		return;
	}
	if (strlen(f.body) > conf->im_max_body) {
		text = gw_xasprintf("the message body exceeds %zu bytes", conf->im_max_body);
		pager_count(pg, peer, STATS_XMPP_TO_SIP, STATS_REFUSED, 0);
		pager_bounce(pg, link, stanza, "policy-violation", text);
		free(text);
		return;
	}
	if (pg->nout >= PAGER_MAX_OUT) {
		pager_count(pg, peer, STATS_XMPP_TO_SIP, STATS_REFUSED, 0);
		pager_bounce(pg, link, stanza, "resource-constraint", "too many messages in flight");
		return;
	}
	o = gw_xcalloc(1, sizeof(*o));
	o->pg = pg;
	o->link = link;
	o->peer = peer;
	o->rx_us = stats_now_us();
	o->from_uri = gw_xstrdup(from_uri);
	o->to_uri = gw_xstrdup(to_uri);
	/* a reference, not a copy: nothing changes a received stanza once it is parsed, and the
	 * copy was a tenth of this path's CPU at 1 000 messages/s (an allocation per attribute and
	 * text node, each one a trip into malloc's bins once its cache runs dry) */
	o->stanza = xmpp_stanza_clone(stanza);
	/* a request for a receipt or markers: IMDNs asked for in CPIM (RFC 5438), when the id fits */
	id = xmpp_stanza_get_id(stanza);
	o->dispositions = (f.has_receipt_request ? MAP_DISP_POSITIVE | MAP_DISP_NEGATIVE : 0) |
			  (f.markable ? MAP_DISP_DISPLAY : 0);
	slash = xmpp_stanza_get_from(stanza) ? strchr(xmpp_stanza_get_from(stanza), '/') : NULL;
	if (o->dispositions && id &&
	    map_imdn_message_id(id, slash ? slash + 1 : NULL, imdn_id, sizeof(imdn_id)) == 0) {
		o->imdn_id = gw_xstrdup(imdn_id);
		o->cpim = 1;
	}
	if (pager_out_send(pg, o) != 0) {
		pager_out_free(o);
		pager_count(pg, peer, STATS_XMPP_TO_SIP, STATS_REFUSED, 0);
		pager_bounce(pg, link, stanza, "service-unavailable", "the SIP side is shutting down");
		return;
	}
	LIST_INSERT_HEAD(&pg->outs, o, entry);
	pg->nout++;
	log_debug("message %s -> %s sent as SIP MESSAGE%s", from_uri, to_uri,
		  o->cpim ? " (CPIM with an IMDN request)" : "");
}

/* ---- time, link state, lifecycle */

static void pager_sweep_cb(evutil_socket_t fd, short what, void *arg)
{
	struct pager *pg = arg;
	uint64_t now = gw_now_ms(pg->gw), wait = pg->gw->conf->im_delivery_wait_ms;
	struct pager_in *e;

	for (size_t i = 0; i < pg->nlinks; i++) {
		struct pager_link *pl = pg->links[i];

		while ((e = TAILQ_FIRST(&pl->held)) && now - e->t_ms >= wait) {
			log_info("no delivery verdict for %s within %llu ms: 202", e->id,
				 (unsigned long long)wait);
			pager_in_settle(pg, e, 202, "Accepted", 0);
		}
	}
	while ((e = TAILQ_FIRST(&pg->recent)) && now - e->t_ms >= wait) {
		TAILQ_REMOVE(&pg->recent, e, entry);
		dict_del(pg->ins, e->id);
		pager_in_free(e);
	}
}

void pager_link_state(struct pager *pg, struct xmpp_link *link, int up)
{
	struct pager_link *pl = pager_link_of(pg, link);
	struct pager_in *e;

	if (!pl)
		return;
	if (up) {
		pl->conclusive = pg->gw->conf->im_verdict == CONF_VERDICT_BARRIER;
		if (pg->gw->conf->im_verdict == CONF_VERDICT_AUTO)
			pager_ask_identity(pg, pl);
		return;
	}
	while ((e = TAILQ_FIRST(&pl->held))) {
		log_info("link %s lost before a verdict on %s: 503", xmpp_link_domain(link), e->id);
		pager_in_settle(pg, e, 503, "XMPP Link Lost", 1);
	}
}

void pager_link_added(struct pager *pg, struct xmpp_link *link)
{
	struct pager_link *pl = gw_xcalloc(1, sizeof(*pl));

	pl->pg = pg;
	TAILQ_INIT(&pl->held);
	pl->link = link;
	pl->next_barrier = 1;
	pl->barrier_ev = event_new(pg->gw->base, -1, 0, pager_barrier_cb, pl);
	if (!pl->barrier_ev)
		gw_fatal("event_new failed");
	pg->links = gw_xrealloc(pg->links, (pg->nlinks + 1) * sizeof(*pg->links));
	pg->links[pg->nlinks++] = pl;
}

struct pager *pager_new(struct gw *gw)
{
	struct pager *pg = gw_xcalloc(1, sizeof(*pg));
	struct timeval tv = { 0, PAGER_SWEEP_MS * 1000 };

	pg->gw = gw;
	pg->ins = dict_new();
	TAILQ_INIT(&pg->recent);
	for (size_t i = 0; i < gw->nlinks; i++)
		pager_link_added(pg, gw->links[i]);
	pg->sweep_ev = event_new(gw->base, -1, EV_PERSIST, pager_sweep_cb, pg);
	if (!pg->sweep_ev || event_add(pg->sweep_ev, &tv) != 0)
		gw_fatal("event_new failed");
	return pg;
}

size_t pager_pending(const struct pager *pg)
{
	return pg->nheld + pg->nout;
}

void pager_abort(struct pager *pg)
{
	struct pager_in *e;
	struct pager_out *o;

	pg->closing = 1;
	for (size_t i = 0; i < pg->nlinks; i++)
		while ((e = TAILQ_FIRST(&pg->links[i]->held)))
			pager_in_settle(pg, e, 503, "Shutting Down", 5);
	while ((o = LIST_FIRST(&pg->outs))) {
		sip_outgoing_cancel(o->out);
		pager_out_unlink(pg, o);
		pager_count(pg, o->peer, STATS_XMPP_TO_SIP, STATS_FAILED, 0);
		pager_bounce(pg, o->link, o->stanza, "service-unavailable",
			     "the gateway shut down before the SIP side answered");
		pager_out_free(o);
	}
}

void pager_close(struct pager *pg)
{
	pg->closing = 1;
}

void pager_free(struct pager *pg)
{
	struct pager_in *e;

	if (!pg)
		return;
	pager_abort(pg);
	while ((e = TAILQ_FIRST(&pg->recent))) {
		TAILQ_REMOVE(&pg->recent, e, entry);
		pager_in_free(e);
	}
	for (size_t i = 0; i < pg->nlinks; i++) {
		event_free(pg->links[i]->barrier_ev);
		free(pg->links[i]);
	}
	free(pg->links);
	event_free(pg->sweep_ev);
	dict_free(pg->ins);
	xmpp_text_free(&pg->text);
	free(pg);
}
