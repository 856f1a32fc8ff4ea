/* presence.c - presence interworking both ways (RFC 8048, 3856, 3863, 6665), each XMPP watcher
 * subscribing to a SIP presentity as itself, so that the presentity's own authorization decides.
 *
 * XMPP watcher -> SIP presentity (struct spres, one per SIP URI and XMPP watcher: the owner).
 * The gateway holds one SUBSCRIBE dialog per pair, From the owner's SIP URI (RFC 8048 section 4),
 * and turns each NOTIFY into presence stanzas for the owner.  The dialog's state machine
 * (spres_enter_state logs every change):
 *
 *   IDLE --subscribe--> SUBSCRIBING --NOTIFY pending--> PENDING --NOTIFY active--> ACTIVE
 *     any --terminated/failure--> (row of sub_end_rules) WAITING --timer--> SUBSCRIBING
 *                                                     or REJECTED: the watcher unsubscribed
 *
 * The watcher is PENDING until its dialog is first active, then SUBSCRIBED.  Nothing else reaches
 * a pending or refused watcher, so the two are indistinguishable on the wire.
 *
 * Authorization migration (<peer><authorization mode>, enum spres_kind): with "policy" the one
 * dialog per presentity is the gateway's (SP_POLICY, From its agent) and the owner's RFC 5025
 * rules (struct prules, fetched over XCAP and stored) decide, and transform, per watcher at each
 * delivery; with "views" each group of watchers the rules treat alike has one dialog made as one
 * of them (SP_VIEW: the SIP side filters), and the watchers the rules do not allow wait in a
 * holder without a dialog (SP_HOLD).  A change of the rules revokes, approves, re-shows or moves
 * watchers (spres_reauthorize, views_regroup).
 *
 * SIP watcher -> XMPP presentity (struct xview, one per XMPP user and SIP watcher pair).  The
 * gateway is the notifier: SUBSCRIBE -> 200 + NOTIFY pending + <presence type='subscribe'> to the
 * user; 'subscribed' -> NOTIFY active with PIDF; each presence stanza the XMPP server sends to the
 * watcher's JID -> NOTIFY to that watcher's dialogs only (so directed presence and privacy lists
 * stay the XMPP server's business); 'unsubscribed' -> NOTIFY terminated;reason=rejected.
 *
 * State that lasts (store.h): XMPP watchers of SIP presentities with their approval (xwatch:
 * uri, jid), the last document each watcher's dialog got (xdoc: uri, jid; rows with an empty jid
 * are a shared dialog's from earlier versions and are dropped), and which SIP watchers each XMPP
 * user approved.  After a restart the dialogs are set up again, probes are answered from the
 * stored documents, and an approved SIP watcher that subscribes again is active at once.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <time.h>

#include <event2/event.h>

#include "../gateway/dict.h"
#include "../gateway/gw.h"
#include "../gateway/store.h"
#include "../sip/sip.h"
#include "../sip/xcap.h"
#include "../xmpp/xmpp.h"
#include "addr.h"
#include "map.h"
#include "pidf.h"
#include "policy.h"
#include "rlmi.h"

#define CT_PIDF "application/pidf+xml"
#define PRES_MAX_TUPLES 64
#define PRES_RETRY_MIN_S 1
#define PRES_RETRY_MAX_S 300
/* SUBSCRIBEs in flight at once; the rest wait their turn (a restart re-subscribes everything,
 * and a burst of dialogs both loads the peer and fragments memory with transaction state) */
#define PRES_MAX_SUBSCRIBING 32
/* A SIP watcher's first active NOTIFY waits this long for the user's presence, so that a user
 * who is online does not first show as offline (the XMPP server sends presence right after an
 * approval or a probe, but not in the same stanza). */
#define PRES_HOLD_MS 1000
/* Retry-After of a SUBSCRIBE refused for a limit: dialogs end and free their places soon; an
 * XMPP user answers pending requests at human speed */
#define PRES_LIMIT_RETRY_S 60
#define PRES_PENDING_RETRY_S 600
/* Presence rules over XCAP (authorization migration): a fetch that failed is tried again after
 * this long (or the refresh period, if shorter); documents are at most this large */
#define RULES_RETRY_MS 30000
#define RULES_MAX_DOC (256 * 1024)
#define RULES_AUID "pres-rules"		/* RFC 5025 section 9 */
#define RULES_DOC "index"
/* Distinct authorizations a delivery builds its stanzas for once (more are built per watcher) */
#define DELIVERY_GROUPS 8

/* What one XMPP user, one SIP watcher or one peer may hold (<presence max-per-*>), counted in
 * pr->counts under "<kind>\n<jid>" (peers in pr->peer_dialogs, by index in conf->peers). */
enum pres_count {
	COUNT_WATCHING = 'u',	/* SIP presentities an XMPP user watches */
	COUNT_PENDING = 'p',	/* SIP watchers awaiting an XMPP user's answer */
	COUNT_DIALOGS = 'w',	/* dialogs a SIP watcher holds */
	COUNT_WATCHERS = 'P',	/* XMPP watchers of a SIP presentity (its URI) */
};

/* What a struct spres is: whose dialog, and who decides for its watchers. */
enum spres_kind {
	SP_WATCHER,	/* one watcher's own dialog, From the watcher: the SIP side decides */
	SP_MEMBER,	/* as SP_WATCHER, carried on the watcher's list subscription to the peer's
			 * RLS (struct xrls) instead of a dialog of its own */
	SP_POLICY,	/* the gateway's dialog, From its agent: the owner's rules decide here */
	SP_VIEW,	/* one view: watchers the owner's rules treat alike, From one of them (rep);
			 * the SIP side filters, the gateway groups */
	SP_HOLD,	/* no dialog: the watchers no view takes (blocked, pending, rules unknown) */
};

enum spres_state {
	SPRES_IDLE,
	SPRES_QUEUED,		/* waiting for one of the PRES_MAX_SUBSCRIBING slots */
	SPRES_SUBSCRIBING,	/* SUBSCRIBE sent, no NOTIFY yet */
	SPRES_PENDING,		/* the presence server has not authorized us yet */
	SPRES_ACTIVE,
	SPRES_WAITING,		/* dialog over, re-subscribing when the timer fires */
	SPRES_CLOSED,		/* the gateway is shutting down */
};

static const char *const spres_state_names[] = {
	[SPRES_IDLE] = "idle",
	[SPRES_QUEUED] = "queued",
	[SPRES_SUBSCRIBING] = "subscribing",
	[SPRES_PENDING] = "pending",
	[SPRES_ACTIVE] = "active",
	[SPRES_WAITING] = "waiting",
	[SPRES_CLOSED] = "closed",
};

/* An XMPP watcher's approval, as dict values and as stored text. */
enum watcher_state {
	WATCHER_PENDING = 1,
	WATCHER_SUBSCRIBED = 2,
};

struct presence {
	struct gw *gw;
	struct store *store;
	struct dict *spres;	/* SIP presentity URI -> struct spres */
	struct dict *views;	/* "jid\nwatcher-jid" -> struct xview */
	size_t nwatchers;	/* XMPP watchers of SIP presentities, all presentities */
	size_t nsubscribing;	/* presentities in SPRES_SUBSCRIBING */
	struct dict *counts;
	struct log_limit limit_log;	/* refusals for the limits */	/* "<enum pres_count>\n<jid>" -> (void *)(uintptr_t)count */
	size_t *peer_dialogs;	/* SIP watcher dialogs of each conf->peers[i] */
	TAILQ_HEAD(, spres) queue;	/* SPRES_QUEUED, oldest first */
	struct event *queue_ev;	/* starts queued SUBSCRIBEs on the next loop pass */
	struct xcap *xcap;	/* fetches presence rules; NULL until a peer migrates authorization */
	struct dict *rules;	/* SIP presentity URI -> struct prules (migrated peers only) */
	int started;		/* presence_start() ran: dialogs may be opened */
	LIST_HEAD(, xlist) lists;	/* SIP watchers' subscriptions to the lists we serve */
	struct dict *rls;	/* "owner\npeer domain" -> struct xrls */
	struct dict *roster_reqs;	/* iq id -> struct roster_req */
	struct dict *privileged;	/* component domain -> PRIV_* (XEP-0356 advertisement) */
	unsigned long roster_seq;
	int *rls_off;		/* per conf->peers[i]: its RLS failed, per-presentity dialogs */
	size_t retired_dialogs;	/* dialogs of peers a reload removed, still ending */
	int closing;
};

/* A SIP presentity owner's presence rules (RFC 5025), for the peers that migrate authorization
 * to the gateway (<authorization mode="policy"> or "views"): fetched from the peer's XCAP server,
 * kept current by a conditional GET every <authorization refresh>, and stored.  Shared by the
 * presentity's dialogs (one in policy mode; the views and the holder in views mode). */
struct prules {
	struct presence *pr;
	char *uri;
	char *jid;		/* the presentity as the XMPP side calls it */
	const struct conf_peer *peer;
	struct policy *policy;	/* NULL: no rules (every watcher is blocked, RFC 4745 section 10) */
	int known;		/* fetched, or restored from the store, at least once */
	char *etag;		/* of the document held, for If-None-Match; NULL when none */
	struct xcap_fetch *fetch;	/* in flight, or NULL */
	struct event *timer;	/* the next fetch */
	LIST_HEAD(, spres) dialogs;	/* the presentity's dialogs (struct spres) using them */
	int dirty;		/* a change not yet applied to the watchers (the link was down) */
	int busy;		/* being applied: kept even when no dialog is left, until done */
};

struct spres {
	struct presence *pr;
	char *key;		/* in pr->spres: "uri\nowner" */
	char *uri;		/* sip:bob@sip.example */
	char *jid;		/* bob@sip.example: what the XMPP side calls it */
	char *owner;		/* alice@xmpp.example: the one XMPP watcher this dialog is for */
	char *from;		/* sip:alice@xmpp.example: the SUBSCRIBE's From, the owner's SIP URI */
	const struct conf_peer *peer;
	enum spres_state state;
	struct sip_sub *sub;
	struct event *timer;
	unsigned failures;	/* consecutive dialogs that ended without going active */
	struct dict *watchers;	/* bare JID -> (void *)(intptr_t)enum watcher_state */
	struct pidf_doc *doc;	/* last document, NULL when none */
	TAILQ_ENTRY(spres) qentry;	/* in pr->queue while SPRES_QUEUED */
	int fresh;		/* a new dialog that has not been active yet */
	enum spres_kind kind;
	struct prules *rules;	/* SP_POLICY, SP_VIEW, SP_HOLD: the owner's rules; else NULL */
	LIST_ENTRY(spres) rentry;	/* in rules->dialogs */
	char *rep;		/* SP_VIEW: the watcher whose address the dialog uses */
	struct xrls *rls;	/* SP_MEMBER: the list subscription carrying it */
};

/* An XMPP watcher's list subscription to one peer's resource list server (RFC 4662; <peer><rls>):
 * the watcher's SIP contacts on that peer in one rls-services document (RFC 4826) the gateway
 * keeps on the peer's XCAP server under the watcher's own XUI, and one SUBSCRIBE to the list's
 * URI made as the watcher, so the RLS subscribes to each member as the watcher and each owner's
 * authorization still decides.  The members are struct spres of kind SP_MEMBER, fed from the
 * list's NOTIFYs as if each had a dialog of its own.  If the peer offers no list server (the
 * document cannot be stored, the SUBSCRIBE is refused, or the URI is not a list), every member
 * gets a dialog of its own and the peer is not asked again until a restart. */
struct xrls {
	struct presence *pr;
	char *key;		/* in pr->rls */
	char *owner;		/* alice@xmpp.example */
	char *from;		/* sip:alice@xmpp.example */
	char *service;		/* sip:<rls service>.<hash>@<peer domain> */
	const struct conf_peer *peer;
	struct dict *members;	/* SIP URI -> struct spres (SP_MEMBER) */
	struct sip_sub *sub;
	struct xcap_fetch *put;	/* the document being stored */
	int dirty;		/* the members changed since the document in flight or stored */
	int listed;		/* a list NOTIFY came: the peer has a list server */
	unsigned long version;	/* of the last RLMI document applied */
	int have_version;
	unsigned failures;
	struct event *timer;	/* stores the document, or re-subscribes */
};

/* One XMPP user as one SIP watcher sees them (what the XMPP server sends to that watcher). */
struct xview {
	struct presence *pr;
	char *key;
	char *user;		/* alice@xmpp.example */
	char *watcher_jid;	/* bob@sip.example */
	int asked;		/* counted in COUNT_PENDING: the user was asked and has not answered */
	struct dict *resources;	/* resource -> struct pidf_tuple * (available ones) */
	LIST_HEAD(, xdialog) dialogs;
	struct event *hold_ev;	/* releases held dialogs; NULL until first needed */
	struct event *rate_ev;	/* sends the NOTIFYs the rate limit deferred; NULL until needed */
};

/* One SIP watcher dialog (a watcher may hold several: one per device), or one member of a list
 * subscription (list set, w NULL: its changes go into the list's NOTIFYs). */
struct xdialog {
	int is_list;		/* 0: tells it from a struct xlist behind sip_watch_arg() */
	struct xview *view;
	struct xlist *list;	/* the list subscription this member belongs to, or NULL */
	int rejected;		/* list member: 1 the user refused (told once), 2 told */
	const struct conf_peer *peer;	/* counted in pr->peer_dialogs */
	struct sip_watch *w;
	int active;
	int held;		/* active, first NOTIFY waiting for the user's presence */
	int due;		/* a change the rate limit deferred: NOTIFY when it allows */
	uint64_t sent_ms;	/* when the last presence NOTIFY went (gw_now_ms) */
	uint64_t sent_hash;	/* of its document: the same document is not sent twice */
	LIST_ENTRY(xdialog) entry;	/* in view->dialogs */
};

/* A SIP watcher's subscription to a list the gateway serves (RFC 4662; <presence><list>): one
 * member xdialog per list member, in that member's view, so each member's own approval decides
 * what the watcher sees of them; the members' changes go out as multipart/related NOTIFYs with
 * an RLMI root, full state first, then partial state (only the members that changed), each with
 * the next version, at most one per <presence notify-interval>. */
struct xlist {
	int is_list;		/* 1 */
	struct presence *pr;
	struct sip_watch *w;
	const struct conf_peer *peer;
	char *uri;		/* sip:team@xmpp.example, sip:alice/Friends@xmpp.example */
	char *watcher_jid;
	unsigned long version;	/* of the next NOTIFY */
	char **jids;		/* the members, bare JIDs (owned) */
	size_t n;
	struct xdialog **members;	/* one per jids[i] */
	char *owner;		/* a roster group's list: the user whose group it is, else NULL */
	char *group;		/* and the group */
	struct roster_req *refetch;	/* the roster being read again (a refresh), or NULL */
	int sent;		/* the first, full, NOTIFY went */
	int ended;		/* its terminating NOTIFY went (a reload removed its peer) */
	uint64_t sent_ms;
	struct event *ev;	/* first NOTIFY (after the hold) and rate limit */
	LIST_ENTRY(xlist) entry;	/* in pr->lists */
};

/* A roster read in flight (XEP-0356 privileged roster get), for a new list subscription (w) or
 * for a refresh of an open one (l). */
struct roster_req {
	struct presence *pr;
	char *id;		/* the iq's id, in pr->roster_reqs */
	struct sip_watch *w;	/* a SUBSCRIBE waiting for its answer, or NULL */
	struct xlist *l;	/* a list being refreshed, or NULL */
	const struct conf_peer *peer;
	char *watcher_jid, *owner, *group, *uri;
	unsigned expires;
	struct event *timer;
	int sent;		/* the iq went (once the server advertised roster access) */
};

/* What the XMPP server said a component may do with rosters (XEP-0356), per link connection. */
enum { PRIV_UNKNOWN, PRIV_ROSTER, PRIV_NONE };

/* ---------------------------------------------------------------- tables */

/* How a presence dialog's end is handled (RFC 6665 4.1.3 reasons; RFC 8048 section 5).  status 0
 * rows match the Subscription-State reason of a terminating NOTIFY; others the SUBSCRIBE's final
 * status (x00 rows match their whole class). */
static const struct sub_end_rule {
	int status;
	const char *reason;
	enum presence_end_action action;
	unsigned delay_s;
} sub_end_rules[] = {
	{ 0, "rejected", END_REJECT, 0 },
	{ 0, "noresource", END_REJECT, 0 },
	{ 0, "timeout", END_RESUBSCRIBE, 0 },
	{ 0, "deactivated", END_RESUBSCRIBE, 0 },
	{ 0, "probation", END_RESUBSCRIBE, 30 },
	{ 0, "giveup", END_RESUBSCRIBE, 30 },
	{ 0, NULL, END_BACKOFF, 0 },		/* no or unknown reason */
	{ 408, NULL, END_BACKOFF, 0 },		/* no answer: the peer may be restarting */
	{ 423, NULL, END_BACKOFF, 0 },		/* interval too brief: stack retries higher */
	{ 480, NULL, END_BACKOFF, 0 },
	{ 481, NULL, END_RESUBSCRIBE, 0 },	/* the notifier lost the dialog (restart) */
	{ 482, NULL, END_BACKOFF, 0 },
	{ 491, NULL, END_BACKOFF, 0 },
	{ 500, NULL, END_BACKOFF, 0 },		/* every 5xx */
	{ 600, NULL, END_REJECT, 0 },		/* every 6xx */
	{ 400, NULL, END_REJECT, 0 },		/* every other 4xx: 403, 404, 489 ... */
};

static const struct sub_end_rule *sub_end_rule_for(int status, const char *reason)
{
	size_t n = sizeof(sub_end_rules) / sizeof(sub_end_rules[0]);

	for (size_t i = 0; i < n; i++) {
		const struct sub_end_rule *r = &sub_end_rules[i];

		if (status == 0 && r->status == 0 &&
		    (!r->reason || (reason && strcasecmp(reason, r->reason) == 0)))
			return r;
		if (status != 0 && r->status == status)
			return r;
	}
	for (size_t i = 0; i < n; i++)
		if (status != 0 && sub_end_rules[i].status == status / 100 * 100)
			return &sub_end_rules[i];
	return &sub_end_rules[6];
}

enum presence_end_action presence_end_rule(int status, const char *reason, unsigned *delay_s)
{
	const struct sub_end_rule *r = sub_end_rule_for(status, reason);

	if (delay_s)
		*delay_s = r->delay_s;
	return r->action;
}

static const char *watcher_state_text(enum watcher_state s)
{
	return s == WATCHER_SUBSCRIBED ? "subscribed" : "pending";
}

/* ---------------------------------------------------------------- XMPP output */

static struct xmpp_link *pres_link(struct presence *pr, const struct conf_peer *peer)
{
	struct xmpp_link *link = gw_link_for_component(pr->gw, peer->component);

	return link && xmpp_link_is_up(link) ? link : NULL;
}

static xmpp_stanza_t *pres_stanza(struct presence *pr, const char *type, const char *from,
				  const char *to)
{
	xmpp_stanza_t *s = xmpp_stanza_new(pr->gw->xctx);

	if (!s || xmpp_stanza_set_name(s, "presence") != XMPP_EOK)
		gw_fatal("out of memory");
	if (type)
		xmpp_stanza_set_type(s, type);
	if (from)
		xmpp_stanza_set_from(s, from);
	if (to)
		xmpp_stanza_set_to(s, to);
	return s;
}

static void pres_send(struct xmpp_link *link, xmpp_stanza_t *s)
{
	if (link)
		xmpp_link_send(link, s);
	xmpp_stanza_release(s);
}

/* A presence error reply (RFC 6120 8.3) to a stanza from the XMPP side. */
static void pres_bounce(struct presence *pr, struct xmpp_link *link, xmpp_stanza_t *stanza,
			const char *condition, const char *text)
{
	const char *type = xmpp_stanza_get_type(stanza);

	if (type && strcmp(type, "error") == 0)
		return;
	log_info("presence %s from %s to %s refused: %s (%s)", type ? type : "available",
		 xmpp_stanza_get_from(stanza) ? xmpp_stanza_get_from(stanza) : "-",
		 xmpp_stanza_get_to(stanza) ? xmpp_stanza_get_to(stanza) : "-", condition,
		 text ? text : "");
	pres_send(link, map_error_reply(pr->gw->xctx, stanza, condition, text));
}

/* ---------------------------------------------------------------- SIP presentities */

static void spres_subscribe(struct spres *sp);

static void spres_enter_state(struct spres *sp, enum spres_state state)
{
	struct presence *pr = sp->pr;

	if (sp->state == state)
		return;
	log_info("presence %s: %s -> %s (%zu watchers)", sp->uri, spres_state_names[sp->state],
		 spres_state_names[state], dict_count(sp->watchers));
	if (sp->state == SPRES_QUEUED)
		TAILQ_REMOVE(&pr->queue, sp, qentry);
	if (sp->state == SPRES_SUBSCRIBING && pr->nsubscribing-- == PRES_MAX_SUBSCRIBING &&
	    !TAILQ_EMPTY(&pr->queue))
		event_active(pr->queue_ev, EV_TIMEOUT, 0);	/* a slot is free */
	if (state == SPRES_SUBSCRIBING)
		pr->nsubscribing++;
	if (state == SPRES_QUEUED)
		TAILQ_INSERT_TAIL(&pr->queue, sp, qentry);
	sp->state = state;
}

static void queue_cb(evutil_socket_t fd, short what, void *arg)
{
	struct presence *pr = arg;

	while (!pr->closing && !TAILQ_EMPTY(&pr->queue) && pr->nsubscribing < PRES_MAX_SUBSCRIBING)
		spres_subscribe(TAILQ_FIRST(&pr->queue));
}

static void spres_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct spres *sp = arg;

	if (sp->state == SPRES_WAITING)
		spres_subscribe(sp);
}

/* ---------------------------------------------------------------- limits */

static size_t count_get(struct presence *pr, enum pres_count kind, const char *jid)
{
	char key[MAP_URI_MAX + 3];	/* a JID, or a URI for COUNT_WATCHERS */

	snprintf(key, sizeof(key), "%c\n%s", (char)kind, jid);
	return (size_t)(uintptr_t)dict_get(pr->counts, key);
}

static void count_add(struct presence *pr, enum pres_count kind, const char *jid, int delta)
{
	char key[MAP_URI_MAX + 3];	/* a JID, or a URI for COUNT_WATCHERS */
	size_t n;

	snprintf(key, sizeof(key), "%c\n%s", (char)kind, jid);
	n = (size_t)(uintptr_t)dict_get(pr->counts, key);
	if (delta < 0 && n <= (size_t)-delta)
		dict_del(pr->counts, key);
	else
		dict_set(pr->counts, key, (void *)(uintptr_t)(n + (size_t)(long)delta));
}

static size_t *peer_count(struct presence *pr, const struct conf_peer *peer)
{
	const struct conf *c = pr->gw->conf;

	/* a peer a reload removed counts its last dialogs' ends nowhere */
	if (peer->index >= c->npeers || c->peers[peer->index] != peer)
		return &pr->retired_dialogs;
	return &pr->peer_dialogs[peer->index];
}

static void view_set_asked(struct xview *v, int asked)
{
	if (v->asked == asked)
		return;
	v->asked = asked;
	count_add(v->pr, COUNT_PENDING, v->user, asked ? 1 : -1);
}

static char *spres_key(const char *uri, const char *owner)
{
	return gw_xasprintf("%s\n%s", uri, owner);
}

static struct prules *prules_get(struct presence *pr, const char *uri, const char *jid,
				 const struct conf_peer *peer);
static void prules_release(struct spres *sp);

static void rls_join(struct spres *sp);
static void rls_leave(struct spres *sp);
static void rls_changed(struct xrls *x);

/* One watcher's own subscription (a dialog of its own, or a member of its list). */
static int spres_own(const struct spres *sp)
{
	return sp->kind == SP_WATCHER || sp->kind == SP_MEMBER;
}

/* A dialog of one SIP presentity.  SP_WATCHER: owner is the watcher; SP_POLICY and SP_HOLD: owner
 * is ""; SP_VIEW: owner is the view's key and rep the watcher it subscribes as.  NULL if the
 * address to subscribe as has no SIP form (checked before anything is created). */
static struct spres *spres_new(struct presence *pr, const char *uri, const char *jid,
			       const struct conf_peer *peer, const char *owner,
			       enum spres_kind kind, const char *rep)
{
	char from[MAP_URI_MAX];
	struct spres *sp;

	if (kind == SP_POLICY || kind == SP_HOLD)
		snprintf(from, sizeof(from), "sip:%s@%s", pr->gw->conf->presence_agent,
			 pr->gw->conf->xmpp_domain);
	else if (map_jid_to_sip(kind == SP_VIEW ? rep : owner, 0, from, sizeof(from)) < 0)
		return NULL;
	sp = gw_xcalloc(1, sizeof(*sp));
	sp->pr = pr;
	sp->kind = kind;
	sp->key = spres_key(uri, owner);
	sp->uri = gw_xstrdup(uri);
	sp->jid = gw_xstrdup(jid);
	sp->owner = gw_xstrdup(owner);
	sp->from = gw_xstrdup(from);
	sp->rep = rep ? gw_xstrdup(rep) : NULL;
	sp->peer = peer;
	if (kind == SP_WATCHER || kind == SP_MEMBER)
		count_add(pr, COUNT_WATCHERS, uri, 1);	/* else counted per watcher */
	sp->watchers = dict_new();
	sp->timer = evtimer_new(pr->gw->base, spres_timer_cb, sp);
	if (!sp->timer)
		gw_fatal("evtimer_new failed");
	dict_set(pr->spres, sp->key, sp);
	if (kind != SP_WATCHER && kind != SP_MEMBER) {
		sp->rules = prules_get(pr, uri, jid, peer);
		LIST_INSERT_HEAD(&sp->rules->dialogs, sp, rentry);
	}
	return sp;
}

/* The dialog a new watcher of uri joins, by the peer's <authorization mode>: its own, the
 * gateway's, or (views) the holder, from which the owner's rules move it to its view. */
static struct spres *spres_new_for(struct presence *pr, const char *uri, const char *jid,
				   const struct conf_peer *peer, const char *watcher)
{
	switch (peer->authz) {
	case CONF_AUTHZ_POLICY:
		return spres_new(pr, uri, jid, peer, "", SP_POLICY, NULL);
	case CONF_AUTHZ_VIEWS:
		return spres_new(pr, uri, jid, peer, "", SP_HOLD, NULL);
	case CONF_AUTHZ_WATCHER:
		break;
	}
	if (peer->rls_xcap_root && peer->index < pr->gw->conf->npeers &&
	    !pr->rls_off[peer->index]) {
		struct spres *sp = spres_new(pr, uri, jid, peer, watcher, SP_MEMBER, NULL);

		if (sp)
			rls_join(sp);	/* (a watcher with no list becomes SP_WATCHER) */
		return sp;
	}
	return spres_new(pr, uri, jid, peer, watcher, SP_WATCHER, NULL);
}

/* Of the dialogs sharing r, the one holding watcher, or NULL. */
static struct spres *rules_holder(struct prules *r, const char *watcher)
{
	struct spres *sp;

	LIST_FOREACH(sp, &r->dialogs, rentry)
		if (dict_get(sp->watchers, watcher))
			return sp;
	return NULL;
}

/* The dialog of uri that holds watcher; failing that, the one a new watcher would join if it
 * exists (the gateway's, or the holder of views); NULL if none. */
static struct spres *spres_lookup(struct presence *pr, const struct conf_peer *peer,
				  const char *uri, const char *watcher)
{
	char *key = spres_key(uri, peer->authz == CONF_AUTHZ_WATCHER ? watcher : "");
	struct spres *sp = dict_get(pr->spres, key);
	struct prules *r;

	free(key);
	if (peer->authz == CONF_AUTHZ_VIEWS && (r = dict_get(pr->rules, uri))) {
		struct spres *h = rules_holder(r, watcher);

		if (h)
			return h;
	}
	return sp;
}

/* Forgets the presentity (its watchers must be gone or told already). */
static void uncount_watcher(void *arg, const char *jid, void *value)
{
	count_add(arg, COUNT_WATCHING, jid, -1);
}

static void spres_free(struct spres *sp)
{
	struct presence *pr = sp->pr;

	if (sp->sub)
		sip_sub_end(sp->sub);
	sp->sub = NULL;
	if (sp->rls)
		rls_leave(sp);
	spres_enter_state(sp, SPRES_CLOSED);	/* leaves the queue, frees its slot */
	pr->nwatchers -= dict_count(sp->watchers);
	dict_foreach(sp->watchers, uncount_watcher, pr);
	dict_del(pr->spres, sp->key);
	count_add(pr, COUNT_WATCHERS, sp->uri,
		  spres_own(sp) ? -1 : -(int)dict_count(sp->watchers));
	event_free(sp->timer);
	dict_free(sp->watchers);
	pidf_doc_free(sp->doc);
	prules_release(sp);
	free(sp->rep);
	free(sp->key);
	free(sp->uri);
	free(sp->jid);
	free(sp->owner);
	free(sp->from);
	free(sp);
}

/* The XMPP form of one tuple, from the presentity's JID and the tuple id as resource. */
static xmpp_stanza_t *spres_tuple_stanza(struct spres *sp, const struct pidf_tuple *t)
{
	xmpp_stanza_t *s = pidf_tuple_to_presence(sp->pr->gw->xctx, t);
	char *from;

	if (!s)
		gw_fatal("out of memory");
	from = gw_xasprintf("%s/%s", sp->jid, t->id && t->id[0] ? t->id : "sip");
	xmpp_stanza_set_from(s, from);
	free(from);
	if (t->open)	/* XEP-0115: what this full JID answers to disco#info (iq.c) */
		iq_caps_add(sp->pr->gw, sp->peer, s);
	return s;
}

/* ---------------------------------------------------------------- delivery to XMPP watchers */

/* Stanzas serialised once, sent to several watchers. */
struct outbox {
	struct xmpp_text *v;
	size_t n, cap;
};

static void outbox_put(struct outbox *o, xmpp_stanza_t *s)
{
	if (o->n == o->cap) {
		o->cap = o->cap ? 2 * o->cap : 4;
		o->v = gw_xrealloc(o->v, o->cap * sizeof(*o->v));
	}
	memset(&o->v[o->n], 0, sizeof(o->v[o->n]));
	xmpp_text_stanza(&o->v[o->n++], s);
	xmpp_stanza_release(s);
}

static void outbox_clear(struct outbox *o)
{
	for (size_t i = 0; i < o->n; i++)
		xmpp_text_free(&o->v[i]);
	free(o->v);
	memset(o, 0, sizeof(*o));
}

static size_t outbox_send(const struct outbox *o, struct xmpp_link *link, const char *jid)
{
	size_t sent = 0;

	for (size_t i = 0; link && i < o->n; i++)
		sent += xmpp_link_send_to(link, o->v[i].p, o->v[i].len, jid) == 0;
	return sent;
}

static const struct pidf_tuple *doc_tuple(const struct pidf_doc *doc, const char *id)
{
	for (size_t i = 0; doc && i < doc->ntuples; i++)
		if (strcmp(doc->tuples[i].id ? doc->tuples[i].id : "", id ? id : "") == 0)
			return &doc->tuples[i];
	return NULL;
}

/* The presentity's whole state (every tuple; unavailable when none is open). */
static void build_state(struct spres *sp, const struct pidf_doc *doc, struct outbox *o)
{
	size_t open = 0;

	for (size_t i = 0; doc && i < doc->ntuples; i++) {
		open += doc->tuples[i].open != 0;
		outbox_put(o, spres_tuple_stanza(sp, &doc->tuples[i]));
	}
	if (!open)
		outbox_put(o, pres_stanza(sp->pr, "unavailable", sp->jid, NULL));
}

/* What a watcher who was shown `old` (NULL: nothing yet) is sent when `doc` replaces it: every
 * tuple of doc, resources that are gone as unavailable. */
static void build_changes(struct spres *sp, const struct pidf_doc *old, const struct pidf_doc *doc,
			  struct outbox *o)
{
	size_t open = 0, was_open = 0;

	for (size_t i = 0; i < doc->ntuples; i++) {
		open += doc->tuples[i].open != 0;
		outbox_put(o, spres_tuple_stanza(sp, &doc->tuples[i]));
	}
	for (size_t i = 0; old && i < old->ntuples; i++) {
		const struct pidf_tuple *t = &old->tuples[i];

		was_open += t->open != 0;
		if (t->open && !doc_tuple(doc, t->id)) {
			struct pidf_tuple gone = { .id = t->id, .open = 0 };

			outbox_put(o, spres_tuple_stanza(sp, &gone));
		}
	}
	if (!open && !doc->ntuples && (!old || was_open))
		outbox_put(o, pres_stanza(sp->pr, "unavailable", sp->jid, NULL));
}

/* What one watcher may see under rules p (RFC 5025): allowed or not, and the transformations.
 * The watcher is identified by its SIP form (sip:alice@xmpp.example), as a SIP presence server
 * would see it.  Without migrated authorization every watcher the dialog serves may see
 * everything (the SIP side authorized the dialog for that watcher). */
static void decide_with(const struct spres *sp, const struct policy *p, const char *jid,
			struct policy_decision *d)
{
	char uri[MAP_URI_MAX];

	memset(d, 0, sizeof(*d));
	if (spres_own(sp) || sp->kind == SP_VIEW) {
		/* the SIP side authorized the dialog for this watcher, or for one the owner's
		 * rules treat alike, and filtered its documents */
		d->sub = POLICY_ALLOW;
		d->provide = ~0u;
		return;
	}
	if (sp->kind == SP_HOLD || !p || map_jid_to_sip(jid, 0, uri, sizeof(uri)) < 0)
		return;		/* no rules: blocked */
	policy_decide(p, uri, NULL, time(NULL), d);
}

/* The decision of rules p alone (views: which view a watcher belongs to). */
static void rules_decide(const struct policy *p, const char *jid, struct policy_decision *d)
{
	char uri[MAP_URI_MAX];

	memset(d, 0, sizeof(*d));
	if (p && map_jid_to_sip(jid, 0, uri, sizeof(uri)) >= 0)
		policy_decide(p, uri, NULL, time(NULL), d);
}

static void watcher_decide(const struct spres *sp, const char *jid, struct policy_decision *d)
{
	decide_with(sp, sp->rules ? sp->rules->policy : NULL, jid, d);
}

static int decision_same(const struct policy_decision *a, const struct policy_decision *b)
{
	return a->sub == b->sub && a->provide == b->provide && a->user_input == b->user_input;
}

/* `doc` as a watcher with decision d sees it (a new document; NULL for NULL). */
static struct pidf_doc *doc_seen(const struct spres *sp, const struct pidf_doc *doc,
				 const struct policy_decision *d)
{
	struct pidf_doc *c = pidf_doc_copy(doc);

	if (c && sp->kind == SP_POLICY)
		policy_filter(d, c);
	return c;
}

/* One change of a presentity's state, delivered to allowed watchers: the stanzas are built once
 * per distinct decision (with migrated authorization, watchers see different documents). */
struct delivery {
	struct spres *sp;
	struct xmpp_link *link;
	const struct pidf_doc *old;	/* what watchers saw; NULL: nothing */
	const struct pidf_doc *doc;	/* what they see now */
	int state;			/* the whole state of doc, not the changes from old */
	struct {
		struct policy_decision d;
		struct outbox o;
	} groups[DELIVERY_GROUPS];
	size_t ngroups;
	size_t sent;
};

static void delivery_build(struct delivery *dl, const struct policy_decision *d, struct outbox *o)
{
	int filter = dl->sp->kind == SP_POLICY;
	struct pidf_doc *old = filter ? doc_seen(dl->sp, dl->old, d) : NULL;
	struct pidf_doc *doc = filter ? doc_seen(dl->sp, dl->doc, d) : NULL;
	const struct pidf_doc *o_old = filter ? old : dl->old;
	const struct pidf_doc *o_doc = filter ? doc : dl->doc;

	if (dl->state || !o_doc)
		build_state(dl->sp, o_doc, o);
	else
		build_changes(dl->sp, o_old, o_doc, o);
	pidf_doc_free(old);
	pidf_doc_free(doc);
}

/* Sends the change to one watcher, if the owner's rules allow them to see. */
static void delivery_to(struct delivery *dl, const char *jid)
{
	struct policy_decision d;
	struct outbox tmp = { 0 };

	if (!dl->link)
		return;
	watcher_decide(dl->sp, jid, &d);
	if (d.sub != POLICY_ALLOW)
		return;
	for (size_t i = 0; i < dl->ngroups; i++) {
		if (decision_same(&dl->groups[i].d, &d)) {
			dl->sent += outbox_send(&dl->groups[i].o, dl->link, jid);
			return;
		}
	}
	if (dl->ngroups < DELIVERY_GROUPS) {
		size_t i = dl->ngroups++;

		dl->groups[i].d = d;
		memset(&dl->groups[i].o, 0, sizeof(dl->groups[i].o));
		delivery_build(dl, &d, &dl->groups[i].o);
		dl->sent += outbox_send(&dl->groups[i].o, dl->link, jid);
		return;
	}
	delivery_build(dl, &d, &tmp);
	dl->sent += outbox_send(&tmp, dl->link, jid);
	outbox_clear(&tmp);
}

static void delivery_one(void *arg, const char *jid, void *value)
{
	if ((intptr_t)value == WATCHER_SUBSCRIBED)
		delivery_to(arg, jid);
}

static void delivery_done(struct delivery *dl)
{
	for (size_t i = 0; i < dl->ngroups; i++)
		outbox_clear(&dl->groups[i].o);
}

/* Sends the presentity's whole state to every subscribed watcher, or to `only`. */
static void spres_send_state(struct spres *sp, struct xmpp_link *link, const char *only)
{
	struct delivery dl = { .sp = sp, .link = link, .doc = sp->doc, .state = 1 };

	if (only)
		delivery_to(&dl, only);
	else
		dict_foreach(sp->watchers, delivery_one, &dl);
	delivery_done(&dl);
}

/* A new document replaces the old: what changed goes to every subscribed watcher. */
static void spres_apply(struct spres *sp, struct pidf_doc *doc)
{
	struct delivery dl = { .sp = sp, .link = pres_link(sp->pr, sp->peer), .old = sp->doc,
			       .doc = doc };

	dict_foreach(sp->watchers, delivery_one, &dl);
	delivery_done(&dl);
	pidf_doc_free(sp->doc);
	sp->doc = doc;
}

/* Sends one stanza (released here) to every subscribed watcher the owner's rules allow. */
struct send_all {
	struct spres *sp;
	struct xmpp_link *link;
	struct outbox o;
};

static void send_all_one(void *arg, const char *jid, void *value)
{
	struct send_all *a = arg;
	struct policy_decision d;

	if ((intptr_t)value != WATCHER_SUBSCRIBED)
		return;
	watcher_decide(a->sp, jid, &d);
	if (d.sub == POLICY_ALLOW)
		outbox_send(&a->o, a->link, jid);
}

static void spres_send_all(struct spres *sp, struct xmpp_link *link, xmpp_stanza_t *s)
{
	struct send_all a = { sp, link, { 0 } };

	outbox_put(&a.o, s);
	if (link)
		dict_foreach(sp->watchers, send_all_one, &a);
	outbox_clear(&a.o);
}

/* Takes jid out of sp's watchers, its stored row left as it is (views: it moves). */
static void watcher_drop(struct spres *sp, const char *jid)
{
	if (dict_del(sp->watchers, jid)) {
		sp->pr->nwatchers--;
		count_add(sp->pr, COUNT_WATCHING, jid, -1);
		if (!spres_own(sp))
			count_add(sp->pr, COUNT_WATCHERS, sp->uri, -1);
	}
}

static void watcher_set(struct spres *sp, const char *jid, enum watcher_state state)
{
	const char *text = watcher_state_text(state);

	if (!dict_set(sp->watchers, jid, (void *)(intptr_t)state)) {
		sp->pr->nwatchers++;
		count_add(sp->pr, COUNT_WATCHING, jid, 1);
		if (!spres_own(sp))
			count_add(sp->pr, COUNT_WATCHERS, sp->uri, 1);
	}
	store_put(sp->pr->store, STORE_XWATCH, sp->uri, jid, text, strlen(text));
}

static void watcher_del(struct spres *sp, const char *jid)
{
	watcher_drop(sp, jid);
	store_del(sp->pr->store, STORE_XWATCH, sp->uri, jid);
}

struct approve {
	struct spres *sp;
	struct xmpp_link *link;
	int send_state;		/* 0 when a new document follows for everybody anyway */
};

/* A pending watcher becomes subscribed once the dialog is active and, with migrated
 * authorization, once the owner's rules allow them; a watcher they block, politely block or
 * leave to be confirmed stays pending and sees nothing, like any pending one (RFC 5025 3.2.1
 * asks a blocked watcher to be told "terminated": the gateway tells nobody, so that a refusal
 * cannot be told from an owner who did not answer yet). */
static void approve_one(void *arg, const char *jid, void *value)
{
	struct approve *a = arg;
	const char *text = watcher_state_text(WATCHER_SUBSCRIBED);
	struct policy_decision d;

	if ((intptr_t)value != WATCHER_PENDING || !a->link)
		return;
	watcher_decide(a->sp, jid, &d);
	if (d.sub != POLICY_ALLOW)
		return;
	pres_send(a->link, pres_stanza(a->sp->pr, "subscribed", a->sp->jid, jid));
	dict_set(a->sp->watchers, jid, (void *)(intptr_t)WATCHER_SUBSCRIBED);
	store_put(a->sp->pr->store, STORE_XWATCH, a->sp->uri, jid, text, strlen(text));
	if (a->send_state)
		spres_send_state(a->sp, a->link, jid);
}

static int spres_on_notify(void *arg, struct sip_sub *sub, const struct sip_notify_info *n)
{
	struct spres *sp = arg;
	struct pidf_doc *doc = NULL;
	char err[160];

	if (sp->pr->closing)
		return 200;
	if (n->state == SIP_SUBSTATE_TERMINATED)
		return 200;	/* the end rules run in spres_on_ended */
	spres_enter_state(sp, n->state == SIP_SUBSTATE_ACTIVE ? SPRES_ACTIVE : SPRES_PENDING);
	if (n->body && n->body_len) {
		if (!n->content_type || strcmp(n->content_type, CT_PIDF) != 0) {
			log_warn("presence %s: NOTIFY with %s ignored (not %s)", sp->uri,
				 n->content_type ? n->content_type : "no type", CT_PIDF);
			return 415;
		}
		if (pidf_parse(n->body, n->body_len, map_doc_limit(sp->pr->gw->conf, sp->peer),
			       PRES_MAX_TUPLES, &doc, err, sizeof(err)) != 0) {
			log_warn("presence %s: malformed PIDF refused, state kept: %s", sp->uri, err);
			return 400;
		}
		store_put(sp->pr->store, STORE_XDOC, sp->uri, sp->owner, n->body, n->body_len);
	} else if (n->state == SIP_SUBSTATE_ACTIVE && sp->fresh) {
		/* a new dialog whose first state has no document: the presence server knows
		 * nothing of the presentity (Kamailio after a restart, a user who never published),
		 * so whatever was held before is stale */
		doc = gw_xcalloc(1, sizeof(*doc));
		doc->entity = gw_xstrdup(sp->uri);
		store_del(sp->pr->store, STORE_XDOC, sp->uri, sp->owner);
	}
	if (n->state == SIP_SUBSTATE_ACTIVE)
		sp->fresh = 0;
	if (n->state == SIP_SUBSTATE_ACTIVE) {
		struct approve a = { sp, pres_link(sp->pr, sp->peer), doc == NULL };

		sp->failures = 0;
		/* approvals first; with a new document, everybody (the new watchers too) gets it
		 * once from spres_apply */
		dict_foreach(sp->watchers, approve_one, &a);
		if (doc)
			spres_apply(sp, doc);
	} else if (doc) {
		pidf_doc_free(sp->doc);	/* pending: kept for when it is active, shown to nobody */
		sp->doc = doc;
	}
	return 200;
}

struct reject {
	struct spres *sp;
	struct xmpp_link *link;
};

static void reject_one(void *arg, const char *jid, void *value)
{
	struct reject *r = arg;

	if (r->link) {
		if ((intptr_t)value == WATCHER_SUBSCRIBED)
			pres_send(r->link, pres_stanza(r->sp->pr, "unavailable", r->sp->jid, jid));
		pres_send(r->link, pres_stanza(r->sp->pr, "unsubscribed", r->sp->jid, jid));
	}
	store_del(r->sp->pr->store, STORE_XWATCH, r->sp->uri, jid);
}

/* The SIP side refused the dialog's watchers: each is told (unsubscribed) and sp is freed. */
static void spres_rejected(struct spres *sp, int status, const char *reason)
{
	struct reject r = { sp, pres_link(sp->pr, sp->peer) };

	log_notice("presence %s: refused by the SIP side (%d %s): %zu watchers unsubscribed",
		   sp->uri, status, reason ? reason : "", dict_count(sp->watchers));
	dict_foreach(sp->watchers, reject_one, &r);
	store_del(sp->pr->store, STORE_XDOC, sp->uri, sp->owner);
	spres_free(sp);
}

static void spres_on_ended(void *arg, struct sip_sub *sub, int status, const char *reason,
			   unsigned retry_after)
{
	struct spres *sp = arg;
	const struct sub_end_rule *rule = sub_end_rule_for(status, reason);
	unsigned delay = rule->delay_s;
	struct timeval tv;

	sp->sub = NULL;
	if (sp->pr->closing)
		return;
	log_info("presence %s: dialog ended (%d%s%s)", sp->uri, status, reason ? ", " : "",
		 reason ? reason : "");
	if (rule->action == END_REJECT) {
		spres_rejected(sp, status, reason);
		return;
	}
	if (sp->state != SPRES_ACTIVE)
		sp->failures++;
	if (rule->action == END_BACKOFF || sp->failures > 2) {
		unsigned n = sp->failures > 8 ? 8 : sp->failures;

		delay = PRES_RETRY_MIN_S << n;
		if (delay > PRES_RETRY_MAX_S)
			delay = PRES_RETRY_MAX_S;
	}
	if (retry_after)
		delay = retry_after > 3600 ? 3600 : retry_after;
	spres_enter_state(sp, SPRES_WAITING);
	tv.tv_sec = delay;
	tv.tv_usec = delay ? 0 : 50000;
	evtimer_add(sp->timer, &tv);
}

static void spres_subscribe(struct spres *sp)
{
	static const struct sip_sub_cbs cbs = {
		.notify = spres_on_notify,
		.ended = spres_on_ended,
	};
	struct presence *pr = sp->pr;
	const struct conf *conf = pr->gw->conf;
	if (pr->closing || sp->sub || sp->kind == SP_HOLD || !pr->started)
		return;
	if (!sip_peer_allows(sp->peer, CONF_SVC_PRESENCE)) {
		/* a subscription restored from before <peer services> excluded presence: kept for
		 * the day they include it again, but nothing is sent */
		log_debug("presence %s: peer %s does not take presence: not subscribing", sp->uri,
			  sp->peer->name);
		return;
	}
	if (sp->rls) {
		/* carried by the watcher's list: the list's document gains the member */
		sp->fresh = 1;
		spres_enter_state(sp, SPRES_PENDING);
		rls_changed(sp->rls);
		return;
	}
	if (sp->state != SPRES_QUEUED && pr->nsubscribing >= PRES_MAX_SUBSCRIBING) {
		spres_enter_state(sp, SPRES_QUEUED);
		return;
	}
	/* as the watcher: the presentity's own authorization decides (RFC 8048 section 4) */
	sp->sub = sip_subscribe(pr->gw->sip, sp->peer, sp->from, sp->uri, "presence", CT_PIDF,
				conf->presence_expires_s, 0, &cbs, sp);
	if (sp->sub) {
		sp->fresh = 1;
		spres_enter_state(sp, SPRES_SUBSCRIBING);
	} else {
		struct timeval tv = { PRES_RETRY_MIN_S, 0 };

		spres_enter_state(sp, SPRES_WAITING);
		evtimer_add(sp->timer, &tv);
	}
}

/* ---------------------------------------------------------------- the owners' rules */

static void prules_fetch(struct prules *r);

static void prules_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	prules_fetch(arg);
}

static void prules_schedule(struct prules *r, unsigned ms)
{
	struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };

	evtimer_add(r->timer, &tv);
}

static struct xcap *pres_xcap(struct presence *pr)
{
	if (!pr->xcap) {
		/* rules fetched and lists stored at once: a restart or a burst of logins */
		struct xcap_limits lim = { .max_body = RULES_MAX_DOC, .max_fetches = 64 };

		pr->xcap = xcap_new(pr->gw->base, &lim);
	}
	return pr->xcap;
}

/* The rules held for uri: shared, or new and restored from the store (fetched again at once,
 * conditionally). */
static struct prules *prules_get(struct presence *pr, const char *uri, const char *jid,
				 const struct conf_peer *peer)
{
	struct prules *r = dict_get(pr->rules, uri);
	char *text = NULL, *nl, err[160];
	size_t len = 0;

	if (r)
		return r;
	r = gw_xcalloc(1, sizeof(*r));
	r->pr = pr;
	r->uri = gw_xstrdup(uri);
	r->jid = gw_xstrdup(jid);
	r->peer = peer;
	LIST_INIT(&r->dialogs);
	dict_set(pr->rules, uri, r);
	r->timer = evtimer_new(pr->gw->base, prules_timer_cb, r);
	if (!r->timer)
		gw_fatal("evtimer_new failed");
	pres_xcap(pr);
	if (store_get(pr->store, STORE_POLICY, uri, "", &text, &len) == 1 &&
	    (nl = memchr(text, '\n', len))) {
		size_t dlen = len - (size_t)(nl + 1 - text);

		if (dlen == 0 || policy_parse(nl + 1, dlen, RULES_MAX_DOC, &r->policy, err,
					       sizeof(err)) == 0) {
			r->known = 1;
			r->dirty = peer->authz == CONF_AUTHZ_VIEWS;	/* restored watchers wait
									 * in the holder */
			if (nl > text)
				r->etag = gw_xstrndup(text, (size_t)(nl - text));
		} else {
			log_warn("presence rules of %s: stored document unreadable (%s)", uri, err);
		}
	}
	free(text);
	prules_schedule(r, 0);
	return r;
}

static void prules_free(struct prules *r)
{
	if (!r)
		return;
	dict_del(r->pr->rules, r->uri);
	if (r->fetch)
		xcap_cancel(r->fetch);
	event_free(r->timer);
	policy_free(r->policy);
	free(r->etag);
	free(r->uri);
	free(r->jid);
	free(r);
}

/* sp no longer uses its rules; the last dialog to go frees them (unless they are being applied). */
static void prules_release(struct spres *sp)
{
	struct prules *r = sp->rules;

	if (!r)
		return;
	LIST_REMOVE(sp, rentry);
	sp->rules = NULL;
	if (LIST_EMPTY(&r->dialogs) && !r->busy)
		prules_free(r);
}

static void prules_fetched(void *arg, const struct xcap_result *res);

static void prules_fetch(struct prules *r)
{
	char *url;

	if (r->fetch || r->pr->closing)
		return;
	url = xcap_document_url(r->peer->xcap_root, RULES_AUID, r->uri, RULES_DOC);
	if (!url) {
		log_warn("presence rules of %s: no XCAP URL for it under %s", r->uri,
			 r->peer->xcap_root);
		prules_schedule(r, r->peer->xcap_refresh_ms);
		return;
	}
	r->fetch = xcap_get(r->pr->xcap, url, r->etag, prules_fetched, r);
	free(url);
}

struct reauth {
	struct spres *sp;
	const struct policy *old;
	struct xmpp_link *link;
	char **revoked;
	size_t nrevoked;
};

/* A subscribed watcher under new rules: still allowed (shown what changed for them, if their
 * transformations did), or no longer (collected, to be told after the walk). */
static void reauth_one(void *arg, const char *jid, void *value)
{
	struct reauth *a = arg;
	struct spres *sp = a->sp;
	struct policy_decision was, now;
	struct pidf_doc *before, *after;
	struct outbox o = { 0 };

	if ((intptr_t)value != WATCHER_SUBSCRIBED)
		return;
	decide_with(sp, a->old, jid, &was);
	decide_with(sp, sp->rules->policy, jid, &now);
	if (now.sub != POLICY_ALLOW) {
		a->revoked = gw_xrealloc(a->revoked, (a->nrevoked + 1) * sizeof(*a->revoked));
		a->revoked[a->nrevoked++] = gw_xstrdup(jid);
		return;
	}
	if ((was.sub == POLICY_ALLOW && decision_same(&was, &now)) || !a->link || !sp->doc)
		return;
	before = was.sub == POLICY_ALLOW ? doc_seen(sp, sp->doc, &was) : NULL;
	after = doc_seen(sp, sp->doc, &now);
	if (before)
		build_changes(sp, before, after, &o);
	else
		build_state(sp, after, &o);
	outbox_send(&o, a->link, jid);
	outbox_clear(&o);
	pidf_doc_free(before);
	pidf_doc_free(after);
}

/* The owner's rules changed from `old` (freed here): subscribed watchers they no longer allow
 * are told the contact is unavailable and their subscription is cancelled (RFC 6121 3.2); those
 * whose transformations changed see the difference; pending watchers they now allow are
 * approved.  May free sp (when nobody is left). */
static void spres_reauthorize(struct spres *sp, struct policy *old)
{
	struct presence *pr = sp->pr;
	struct reauth a = { .sp = sp, .old = old, .link = pres_link(pr, sp->peer) };

	dict_foreach(sp->watchers, reauth_one, &a);
	policy_free(old);
	for (size_t i = 0; i < a.nrevoked; i++) {
		log_notice("presence %s: the owner's rules no longer allow %s: unsubscribed",
			   sp->uri, a.revoked[i]);
		if (a.link) {
			pres_send(a.link, pres_stanza(pr, "unavailable", sp->jid, a.revoked[i]));
			pres_send(a.link, pres_stanza(pr, "unsubscribed", sp->jid, a.revoked[i]));
		}
		watcher_del(sp, a.revoked[i]);
		free(a.revoked[i]);
	}
	free(a.revoked);
	if (sp->state == SPRES_ACTIVE) {
		struct approve ap = { sp, a.link, 1 };

		dict_foreach(sp->watchers, approve_one, &ap);
	}
	if (dict_count(sp->watchers) == 0) {
		log_info("presence %s: no watcher left", sp->uri);
		store_del(pr->store, STORE_XDOC, sp->uri, sp->owner);
		store_del(pr->store, STORE_POLICY, sp->uri, "");
		spres_free(sp);
	}
}

/* ---- views: one dialog per group of watchers the owner's rules treat alike */

/* The view a decision puts a watcher in: "view:<sub-handling>.<provide bits>.<user input>", or
 * "" (the holder) for a watcher the rules do not allow. */
static void view_key(const struct policy_decision *d, char *buf, size_t n)
{
	if (d->sub != POLICY_ALLOW)
		snprintf(buf, n, "%s", "");
	else
		snprintf(buf, n, "view:%d.%x.%d", (int)d->sub, d->provide, (int)d->user_input);
}

struct move {
	char *jid;
	struct spres *from;
	intptr_t state;
	char key[48];
};

struct regroup {
	struct prules *r;
	struct spres *sp;
	struct move *moves;
	size_t nmoves;
};

static void regroup_one(void *arg, const char *jid, void *value)
{
	struct regroup *g = arg;
	struct policy_decision d;
	char key[48];

	rules_decide(g->r->policy, jid, &d);
	view_key(&d, key, sizeof(key));
	if (strcmp(key, g->sp->owner) == 0)
		return;
	g->moves = gw_xrealloc(g->moves, (g->nmoves + 1) * sizeof(*g->moves));
	g->moves[g->nmoves].jid = gw_xstrdup(jid);
	g->moves[g->nmoves].from = g->sp;
	g->moves[g->nmoves].state = (intptr_t)value;
	snprintf(g->moves[g->nmoves].key, sizeof(g->moves[g->nmoves].key), "%s", key);
	g->nmoves++;
}

static void first_key(void *arg, const char *jid, void *value)
{
	const char **first = arg;

	if (!*first)
		*first = jid;
}

/* A view whose watcher it subscribes as has left: it subscribes again as another of its watchers
 * (the SIP side must decide for someone who is in the view). */
static void view_new_rep(struct spres *sp)
{
	const char *first = NULL;
	char from[MAP_URI_MAX];

	dict_foreach(sp->watchers, first_key, &first);
	if (!first || map_jid_to_sip(first, 0, from, sizeof(from)) < 0)
		return;
	log_info("presence %s: %s subscribes as %s now (%s left it)", sp->uri, sp->owner, first,
		 sp->rep);
	free(sp->rep);
	sp->rep = gw_xstrdup(first);
	free(sp->from);
	sp->from = gw_xstrdup(from);
	if (sp->sub)
		sip_sub_end(sp->sub);
	sp->sub = NULL;
	evtimer_del(sp->timer);
	spres_enter_state(sp, SPRES_IDLE);
	spres_subscribe(sp);
}

/* Puts every watcher of the presentity in the view its owner's rules give it now: allowed
 * watchers in views (a dialog each, made as the first watcher to arrive), the others in the
 * holder; a subscribed watcher the rules no longer allow is told, as in policy mode.  Empty views
 * end their dialogs.  Frees r (and the dialogs) when nobody is left. */
static void views_regroup(struct prules *r)
{
	struct presence *pr = r->pr;
	struct xmpp_link *link = pres_link(pr, r->peer);
	struct regroup g = { .r = r };
	struct spres *sp, *next;

	r->busy = 1;
	LIST_FOREACH(sp, &r->dialogs, rentry) {
		g.sp = sp;
		dict_foreach(sp->watchers, regroup_one, &g);
	}
	for (size_t i = 0; i < g.nmoves; i++)
		watcher_drop(g.moves[i].from, g.moves[i].jid);
	for (size_t i = 0; i < g.nmoves; i++) {
		struct move *m = &g.moves[i];
		char *key = spres_key(r->uri, m->key);
		struct spres *to = dict_get(pr->spres, key);

		free(key);
		if (!m->key[0] && m->state == WATCHER_SUBSCRIBED) {
			log_notice("presence %s: the owner's rules no longer allow %s: unsubscribed",
				   r->uri, m->jid);
			if (link) {
				pres_send(link, pres_stanza(pr, "unavailable", r->jid, m->jid));
				pres_send(link, pres_stanza(pr, "unsubscribed", r->jid, m->jid));
			}
			store_del(pr->store, STORE_XWATCH, r->uri, m->jid);
			continue;
		}
		if (!to)
			to = spres_new(pr, r->uri, r->jid, r->peer, m->key,
				       m->key[0] ? SP_VIEW : SP_HOLD, m->key[0] ? m->jid : NULL);
		if (!to) {
			store_del(pr->store, STORE_XWATCH, r->uri, m->jid);
			continue;
		}
		if (to->kind == SP_VIEW && !to->sub && to->state == SPRES_IDLE)
			log_info("presence %s: new %s, subscribing as %s", r->uri, m->key, m->jid);
		watcher_set(to, m->jid, WATCHER_PENDING);
		if (to->state == SPRES_ACTIVE) {
			struct approve a = { to, link, 1 };

			approve_one(&a, m->jid, (void *)(intptr_t)WATCHER_PENDING);
		} else if (to->state == SPRES_IDLE) {
			spres_subscribe(to);
		}
	}
	for (sp = LIST_FIRST(&r->dialogs); sp; sp = next) {
		next = LIST_NEXT(sp, rentry);
		if (dict_count(sp->watchers) == 0) {
			if (sp->kind == SP_VIEW) {
				log_info("presence %s: %s has no watcher left", r->uri, sp->owner);
				store_del(pr->store, STORE_XDOC, sp->uri, sp->owner);
			}
			spres_free(sp);
		} else if (sp->kind == SP_VIEW && !dict_get(sp->watchers, sp->rep)) {
			view_new_rep(sp);
		}
	}
	for (size_t i = 0; i < g.nmoves; i++)
		free(g.moves[i].jid);
	free(g.moves);
	r->busy = 0;
	r->dirty = 0;
	if (LIST_EMPTY(&r->dialogs)) {
		store_del(pr->store, STORE_POLICY, r->uri, "");
		prules_free(r);
	}
}

/* Applies rules that changed (from `old`, freed here) to the watchers, once the link is up to
 * tell them (else later: presence_link_state).  May free r. */
static void prules_apply(struct prules *r, struct policy *old)
{
	if (!r->dirty || !pres_link(r->pr, r->peer) || !r->pr->started) {
		policy_free(old);
		return;
	}
	if (r->peer->authz == CONF_AUTHZ_VIEWS) {
		policy_free(old);
		if (r->known)
			views_regroup(r);	/* unknown rules: everyone waits in the holder */
		return;
	}
	r->dirty = 0;
	if (LIST_FIRST(&r->dialogs))
		spres_reauthorize(LIST_FIRST(&r->dialogs), old);	/* may free r */
	else
		policy_free(old);
}

static void prules_fetched(void *arg, const struct xcap_result *res)
{
	struct prules *r = arg;
	struct presence *pr = r->pr;
	struct policy *np = NULL, *old = r->policy;
	unsigned next = r->peer->xcap_refresh_ms;
	int was_known = r->known;
	char err[160];

	r->fetch = NULL;
	if (res->status == 304) {
		log_debug("presence rules of %s: unchanged", r->uri);
	} else if (res->status == 200 && policy_parse(res->body, res->len, RULES_MAX_DOC, &np, err,
						      sizeof(err)) != 0) {
		log_warn("presence rules of %s from %s: unreadable, the rules held are kept: %s",
			 r->uri, r->peer->name, err);
		next = next < RULES_RETRY_MS ? next : RULES_RETRY_MS;
	} else if (res->status == 200 || res->status == 404) {
		char *row;

		r->policy = np;		/* 404: the owner has no rules: every watcher is blocked */
		r->known = 1;
		free(r->etag);
		r->etag = res->status == 200 && res->etag ? gw_xstrdup(res->etag) : NULL;
		if (res->status == 200) {
			row = gw_xasprintf("%s\n%.*s", r->etag ? r->etag : "", (int)res->len,
					   res->body);
			store_put(pr->store, STORE_POLICY, r->uri, "", row, strlen(row));
			free(row);
		} else {
			store_put(pr->store, STORE_POLICY, r->uri, "", "\n", 1);
		}
		log_info("presence rules of %s: %zu rules%s%s", r->uri, np ? policy_rules(np) : 0,
			 r->etag ? ", entity tag " : " (no document)", r->etag ? r->etag : "");
	} else {
		log_warn("presence rules of %s from %s: %s%s%d; the rules held are kept", r->uri,
			 r->peer->name, res->error ? res->error : "", res->error ? ", status " : "status ",
			 res->status);
		next = next < RULES_RETRY_MS ? next : RULES_RETRY_MS;
	}
	prules_schedule(r, next);
	if (r->policy != old || (r->known && !was_known))
		r->dirty = 1;
	prules_apply(r, r->policy != old ? old : NULL);		/* may free r */
}

/* ---------------------------------------------------------------- lists at the peer's RLS */

#define RLS_ACCEPT "multipart/related, application/rlmi+xml, application/pidf+xml"
#define RLS_DOC_CT "application/rls-services+xml"
#define RLS_MAX_PARTS 4096
/* changes of a watcher's contacts within this long are stored as one document (a login's
 * roster of subscribes, a restart's restored subscriptions) */
#define RLS_BATCH_MS 200

static void rls_timer_cb(evutil_socket_t fd, short what, void *arg);

static struct xrls *rls_get(struct presence *pr, const struct conf_peer *peer, const char *owner)
{
	char from[MAP_URI_MAX], *key = gw_xasprintf("%s\n%s", owner, peer->domain);
	struct xrls *x = dict_get(pr->rls, key);

	if (x || map_jid_to_sip(owner, 0, from, sizeof(from)) < 0) {
		free(key);
		return x;
	}
	x = gw_xcalloc(1, sizeof(*x));
	x->pr = pr;
	x->key = key;
	x->owner = gw_xstrdup(owner);
	x->from = gw_xstrdup(from);
	x->service = gw_xasprintf("sip:%s.%016llx@%s", peer->rls_service,
				  (unsigned long long)gw_hash64(owner, strlen(owner)), peer->domain);
	x->peer = peer;
	x->members = dict_new();
	if (!(x->timer = evtimer_new(pr->gw->base, rls_timer_cb, x)))
		gw_fatal("evtimer_new failed");
	dict_set(pr->rls, key, x);
	return x;
}

static void rls_join(struct spres *sp)
{
	struct xrls *x = rls_get(sp->pr, sp->peer, sp->owner);

	if (!x) {
		sp->kind = SP_WATCHER;
		return;
	}
	sp->rls = x;
	dict_set(x->members, sp->uri, sp);
}

static void rls_deleted(void *arg, const struct xcap_result *res)
{
	if (res->status < 200 || res->status >= 300)
		log_info("presence: a list document could not be removed (%d %s)", res->status,
			 res->error ? res->error : "");
}

/* Ends x: its dialog (unless end is 0: the SIP stack is going), its document on the XCAP server
 * (with forget), and x itself.  Its members must have left it. */
static void rls_free(struct xrls *x, int end, int forget)
{
	struct presence *pr = x->pr;

	if (forget && pr->xcap && !pr->closing) {
		char *url = xcap_document_url(x->peer->rls_xcap_root, "rls-services", x->from,
					      "index");

		if (url)
			xcap_delete(pr->xcap, url, NULL, rls_deleted, NULL);
		free(url);
	}
	dict_del(pr->rls, x->key);
	if (x->put)
		xcap_cancel(x->put);
	if (end && x->sub)
		sip_sub_end(x->sub);
	event_free(x->timer);
	dict_free(x->members);
	free(x->key);
	free(x->owner);
	free(x->from);
	free(x->service);
	free(x);
}

static void rls_leave(struct spres *sp)
{
	struct xrls *x = sp->rls;

	dict_del(x->members, sp->uri);
	sp->rls = NULL;
	if (x->pr->closing)
		return;
	if (dict_count(x->members) == 0)
		rls_free(x, 1, 1);
	else
		rls_changed(x);
}

static void rls_changed(struct xrls *x)
{
	struct timeval soon = { 0, RLS_BATCH_MS * 1000 };

	x->dirty = 1;
	if (!x->put && x->pr->started && !evtimer_pending(x->timer, NULL))
		evtimer_add(x->timer, &soon);
}

struct rls_doc {
	FILE *f;
};

static void rls_doc_entry(void *arg, const char *uri, void *value)
{
	struct rls_doc *d = arg;
	char *esc = pidf_escape(uri, 1);

	fprintf(d->f, "   <rl:entry uri=\"%s\"/>\n", esc);
	free(esc);
}

/* The watcher's rls-services document (RFC 4826): one service, the list URI, with its members. */
static char *rls_document(struct xrls *x, size_t *len)
{
	struct rls_doc d;
	char *p = NULL, *esc = pidf_escape(x->service, 1);

	if (!(d.f = open_memstream(&p, len)))
		gw_fatal("open_memstream failed");
	fprintf(d.f, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
		"<rls-services xmlns=\"urn:ietf:params:xml:ns:rls-services\" "
		"xmlns:rl=\"urn:ietf:params:xml:ns:resource-lists\">\n"
		" <service uri=\"%s\">\n  <list name=\"contacts\">\n", esc);
	dict_foreach(x->members, rls_doc_entry, &d);
	fputs("  </list>\n  <packages><package>presence</package></packages>\n </service>\n"
	      "</rls-services>\n", d.f);
	if (fclose(d.f) != 0)
		gw_fatal("open_memstream failed");
	free(esc);
	return p;
}

struct collect {
	struct spres **v;
	size_t n;
};

static void collect_member(void *arg, const char *uri, void *value)
{
	struct collect *c = arg;

	c->v[c->n++] = value;
}

/* The peer offers no list server: every member gets a dialog of its own, and the peer's other
 * watchers do too from now on.  Frees x. */
static void rls_fallback(struct xrls *x, const char *why)
{
	struct presence *pr = x->pr;
	struct collect c = { gw_xcalloc(dict_count(x->members) + 1, sizeof(*c.v)), 0 };

	log_warn("presence: peer %s has no list server for %s (%s): its %zu contacts there get a "
		 "dialog each, as will every watcher's on that peer until a restart", x->peer->name,
		 x->owner, why, dict_count(x->members));
	if (x->peer->index < pr->gw->conf->npeers && pr->gw->conf->peers[x->peer->index] == x->peer)
		pr->rls_off[x->peer->index] = 1;
	dict_foreach(x->members, collect_member, &c);
	for (size_t i = 0; i < c.n; i++) {
		dict_del(x->members, c.v[i]->uri);
		c.v[i]->rls = NULL;
		c.v[i]->kind = SP_WATCHER;
	}
	rls_free(x, 1, 1);
	for (size_t i = 0; i < c.n; i++) {
		spres_enter_state(c.v[i], SPRES_IDLE);
		spres_subscribe(c.v[i]);
	}
	free(c.v);
}

static void rls_subscribe(struct xrls *x);

static void rls_stored(void *arg, const struct xcap_result *res)
{
	struct xrls *x = arg;
	struct timeval now = { 0, 0 };
	char why[160];

	x->put = NULL;
	if (res->err == XCAP_ERR_BUSY) {
		/* other watchers' lists are being stored (a burst of logins): a turn later */
		struct timeval later = { 0, 100000 + (long)(gw_hash64(x->key, strlen(x->key)) % 400) * 1000 };

		x->dirty = 1;
		evtimer_add(x->timer, &later);
		return;
	}
	if (res->status < 200 || res->status >= 300) {
		snprintf(why, sizeof(why), "storing its list over XCAP: %d %s", res->status,
			 res->error ? res->error : "");
		if ((res->status == 0 || res->status >= 500) && ++x->failures <= 3) {
			/* the XCAP server may be restarting: tried again, then given up */
			struct timeval later = { PRES_RETRY_MIN_S << x->failures, 0 };

			log_info("presence: list of %s at %s not stored (%s): trying again in %lds",
				 x->owner, x->peer->name, why, (long)later.tv_sec);
			x->dirty = 1;
			evtimer_add(x->timer, &later);
			return;
		}
		rls_fallback(x, why);
		return;
	}
	x->failures = 0;
	log_debug("presence: list of %s at %s stored (%zu members)", x->owner, x->peer->name,
		  dict_count(x->members));
	if (x->dirty)
		evtimer_add(x->timer, &now);	/* changed meanwhile: stored again */
	else if (!x->sub)
		rls_subscribe(x);
	else
		sip_sub_refresh(x->sub);	/* the RLS reads the list again */
}

static void rls_store(struct xrls *x)
{
	char *url = xcap_document_url(x->peer->rls_xcap_root, "rls-services", x->from, "index");
	size_t len = 0;
	char *doc;

	if (!url) {
		rls_fallback(x, "no XCAP URL for the watcher");
		return;
	}
	doc = rls_document(x, &len);
	x->dirty = 0;
	x->put = xcap_put(pres_xcap(x->pr), url, RLS_DOC_CT, doc, len, NULL, rls_stored, x);
	free(doc);
	free(url);
}

struct member_notify {
	struct spres *sp;
	enum rlmi_state state;
	const char *reason;
	const char *body;	/* PIDF, or NULL */
	size_t len;
};

/* One list NOTIFY: the RLMI root and its parts, each member's instance handed to the member as
 * if its own dialog had notified it.  Returns the status to answer. */
static int rls_on_list(struct xrls *x, const struct sip_notify_info *n)
{
	struct presence *pr = x->pr;
	char *ct = gw_xasprintf("%s%s", n->content_type, n->content_params ? n->content_params : "");
	struct rlmi_part *parts = NULL;
	struct rlmi_list *rl = NULL;
	struct member_notify *mn = NULL;
	size_t root = 0, nmn = 0;
	char err[160];
	int nparts, status = 200;

	nparts = rlmi_multipart_split(ct, n->body, n->body_len, RLS_MAX_PARTS, &parts, &root, err,
				      sizeof(err));
	free(ct);
	if (nparts < 0 || parts[root].ct_len < strlen(RLMI_CT) ||
	    strncasecmp(parts[root].content_type, RLMI_CT, strlen(RLMI_CT)) != 0 ||
	    rlmi_parse(parts[root].body, parts[root].body_len,
		       4 * map_doc_limit(pr->gw->conf, x->peer),
		       dict_count(x->members) + 64, &rl, err, sizeof(err)) != 0) {
		log_warn("presence: list NOTIFY for %s from %s refused: %s", x->owner, x->peer->name,
			 nparts < 0 || rl == NULL ? err : "its root is not RLMI");
		free(parts);
		return 400;
	}
	log_debug("presence: list NOTIFY for %s: version %lu, %s state, %zu resources, %d parts",
		  x->owner, rl->version, rl->full_state ? "full" : "partial", rl->nresources, nparts);
	if (x->have_version && rl->version <= x->version) {
		log_debug("presence: list NOTIFY version %lu for %s seen already", rl->version,
			  x->owner);
		goto done;
	}
	x->version = rl->version;
	x->have_version = 1;
	x->listed = 1;
	x->failures = 0;
	mn = gw_xcalloc(rl->nresources + 1, sizeof(*mn));
	for (size_t i = 0; i < rl->nresources; i++) {
		const struct rlmi_resource *r = &rl->resources[i];
		struct spres *sp = dict_get(x->members, r->uri);
		const struct rlmi_instance *in = NULL;

		int twice = 0;

		for (size_t k = 0; sp && k < nmn; k++)
			twice |= mn[k].sp == sp;
		if (!sp || !r->ninstances || twice)
			continue;	/* (a resource listed twice counts once) */
		for (size_t k = 0; k < r->ninstances; k++)
			if (!in || r->instances[k].state == RLMI_ACTIVE)
				in = &r->instances[k];
		mn[nmn].sp = sp;
		mn[nmn].state = in->state;
		mn[nmn].reason = in->reason;
		for (int k = 0; in->cid && k < nparts; k++) {
			const struct rlmi_part *pt = &parts[k];

			if (pt->content_id && pt->cid_len == strlen(in->cid) &&
			    memcmp(pt->content_id, in->cid, pt->cid_len) == 0 &&
			    pt->ct_len >= strlen(CT_PIDF) &&
			    strncasecmp(pt->content_type, CT_PIDF, strlen(CT_PIDF)) == 0) {
				mn[nmn].body = pt->body;
				mn[nmn].len = pt->body_len;
			}
		}
		nmn++;
	}
	/* applied after the walk: a refusal frees its member, and the last one frees x */
	for (size_t i = 0; i < nmn; i++) {
		struct sip_notify_info ni = { .content_params = "" };
		const struct sub_end_rule *rule;

		if (mn[i].state == RLMI_TERMINATED) {
			rule = sub_end_rule_for(0, mn[i].reason);
			if (rule->action == END_REJECT)
				spres_rejected(mn[i].sp, 0, mn[i].reason);	/* may free x */
			continue;	/* else the RLS subscribes to it again itself */
		}
		ni.state = mn[i].state == RLMI_ACTIVE ? SIP_SUBSTATE_ACTIVE : SIP_SUBSTATE_PENDING;
		if (mn[i].body) {
			ni.content_type = CT_PIDF;
			ni.body = mn[i].body;
			ni.body_len = mn[i].len;
		}
		(void)spres_on_notify(mn[i].sp, NULL, &ni);
	}
done:
	free(mn);
	rlmi_list_free(rl);
	free(parts);
	return status;
}

static int rls_on_notify(void *arg, struct sip_sub *sub, const struct sip_notify_info *n)
{
	struct xrls *x = arg;

	if (x->pr->closing || n->state == SIP_SUBSTATE_TERMINATED || !n->body || !n->body_len)
		return 200;	/* the end in rls_on_ended; states come with the RLMI document */
	if (n->content_type && strcmp(n->content_type, "multipart/related") == 0)
		return rls_on_list(x, n);
	if (!x->listed) {
		/* a document of one resource: the URI is not a list here */
		rls_fallback(x, n->content_type ? n->content_type : "a NOTIFY without a list");
		return 200;
	}
	log_warn("presence: list NOTIFY for %s with %s ignored", x->owner,
		 n->content_type ? n->content_type : "no type");
	return 415;
}

static void rls_on_ended(void *arg, struct sip_sub *sub, int status, const char *reason,
			 unsigned retry_after)
{
	struct xrls *x = arg;
	const struct sub_end_rule *rule = sub_end_rule_for(status, reason);
	struct timeval tv = { 0, 0 };
	char why[96];

	x->sub = NULL;
	if (x->pr->closing)
		return;
	log_info("presence: list subscription of %s at %s ended (%d%s%s)", x->owner, x->peer->name,
		 status, reason ? ", " : "", reason ? reason : "");
	if (!x->listed && (rule->action == END_REJECT || status == 420 || status == 421)) {
		snprintf(why, sizeof(why), "the list SUBSCRIBE got %d%s%s", status,
			 reason ? " " : "", reason ? reason : "");
		rls_fallback(x, why);
		return;
	}
	if (rule->action != END_RESUBSCRIBE || ++x->failures > 2) {
		unsigned n = x->failures > 8 ? 8 : x->failures;

		tv.tv_sec = PRES_RETRY_MIN_S << n;
		if (tv.tv_sec > PRES_RETRY_MAX_S)
			tv.tv_sec = PRES_RETRY_MAX_S;
	}
	if (retry_after)
		tv.tv_sec = retry_after > 3600 ? 3600 : retry_after;
	evtimer_add(x->timer, &tv);
}

static void rls_on_answered(void *arg, struct sip_sub *sub, int eventlist)
{
	struct xrls *x = arg;

	if (!eventlist && !x->listed && !x->pr->closing)
		rls_fallback(x, "its 2xx to the list SUBSCRIBE has no Require: eventlist");
}

static void rls_subscribe(struct xrls *x)
{
	static const struct sip_sub_cbs cbs = {
		.notify = rls_on_notify,
		.ended = rls_on_ended,
		.answered = rls_on_answered,
	};
	struct timeval tv = { PRES_RETRY_MIN_S, 0 };

	if (x->sub || x->pr->closing)
		return;
	x->have_version = 0;	/* versions count per dialog */
	x->sub = sip_subscribe(x->pr->gw->sip, x->peer, x->from, x->service, "presence", RLS_ACCEPT,
			       x->pr->gw->conf->presence_expires_s, SIP_SUB_EVENTLIST, &cbs, x);
	if (!x->sub)
		evtimer_add(x->timer, &tv);
}

static void rls_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct xrls *x = arg;

	if (x->pr->closing)
		return;
	if (x->dirty && !x->put)
		rls_store(x);
	else if (!x->sub && !x->put)
		rls_subscribe(x);
}

/* ---------------------------------------------------------------- from XMPP */

static void pres_from_xmpp_watcher(struct presence *pr, struct xmpp_link *link,
				   xmpp_stanza_t *stanza, const char *type, const char *from_bare,
				   const char *to_bare)
{
	const struct conf *conf = pr->gw->conf;
	const struct conf_peer *peer;
	char uri[MAP_URI_MAX];
	struct spres *sp;
	intptr_t state;
	int err;

	peer = map_peer_for_jid(conf, xmpp_link_domain(link), to_bare, uri, sizeof(uri), &err);
	if (!peer) {
		if (strcmp(type, "subscribe") == 0)
			pres_bounce(pr, link, stanza, err == MAP_ADDR_EDOMAIN ? "item-not-found" :
				    "jid-malformed", map_addr_strerror(err));
		return;
	}
	if (!sip_peer_allows(peer, CONF_SVC_PRESENCE) && strcmp(type, "unsubscribe") != 0) {
		/* <peer services>: nothing goes to a network that does not take presence, and a
		 * probe learns nothing (an unsubscribe still ends what a watcher held before) */
		if (strcmp(type, "subscribe") == 0) {
			char *text = gw_xasprintf("the peer network %s does not accept presence "
						  "subscriptions through this gateway", peer->name);

			pres_bounce(pr, link, stanza, "service-unavailable", text);
			free(text);
		}
		return;
	}
	sp = spres_lookup(pr, peer, uri, from_bare);
	state = sp ? (intptr_t)dict_get(sp->watchers, from_bare) : 0;

	if (strcmp(type, "subscribe") == 0) {
		if (!sp && dict_count(pr->spres) >= conf->presence_max_subscriptions) {
			pres_bounce(pr, link, stanza, "resource-constraint",
				    "the gateway holds too many subscriptions");
			return;
		}
		if (!state && count_get(pr, COUNT_WATCHERS, uri) >= conf->presence_max_watchers) {
			pres_bounce(pr, link, stanza, "resource-constraint",
				    "too many watchers of this contact");
			return;
		}
		if (!state && count_get(pr, COUNT_WATCHING, from_bare) >= conf->presence_max_per_user) {
			log_limited(&pr->limit_log, CONF_LOG_NOTICE, __func__,
				    "presence: %s watches %u SIP contacts already: subscription to %s "
				    "refused", from_bare, conf->presence_max_per_user, uri);
			pres_bounce(pr, link, stanza, "resource-constraint",
				    "you watch as many SIP contacts as the gateway allows one user");
			return;
		}
		if (!sp && !(sp = spres_new_for(pr, uri, to_bare, peer, from_bare))) {
			pres_bounce(pr, link, stanza, "jid-malformed",
				    "your address has no SIP form to subscribe with");
			return;
		}
		if (sp->state == SPRES_ACTIVE) {
			/* already authorized by the SIP side: approved now (RFC 6121 3.1.3) */
			struct approve a = { sp, link, 1 };

			watcher_set(sp, from_bare, WATCHER_PENDING);
			approve_one(&a, from_bare, (void *)(intptr_t)WATCHER_PENDING);
		} else if (state != WATCHER_SUBSCRIBED) {
			watcher_set(sp, from_bare, WATCHER_PENDING);
		}
		if (sp->kind == SP_HOLD) {
			/* views: the owner's rules move the watcher to its view */
			sp->rules->dirty = 1;
			prules_apply(sp->rules, NULL);	/* may free sp */
			return;
		}
		if (sp->state == SPRES_IDLE)
			spres_subscribe(sp);
	} else if (strcmp(type, "unsubscribe") == 0) {
		if (!state)
			return;
		if (state == WATCHER_SUBSCRIBED)
			pres_send(link, pres_stanza(pr, "unavailable", sp->jid, from_bare));
		watcher_del(sp, from_bare);
		if (dict_count(sp->watchers) == 0) {
			log_info("presence %s: %s left", sp->uri, from_bare);
			store_del(pr->store, STORE_XDOC, sp->uri, sp->owner);
			spres_free(sp);
			if (peer->authz != CONF_AUTHZ_WATCHER && !dict_get(pr->rules, uri))
				store_del(pr->store, STORE_POLICY, uri, "");	/* nobody left */
		} else if (sp->kind == SP_VIEW && strcmp(sp->rep, from_bare) == 0) {
			view_new_rep(sp);
		}
	} else if (strcmp(type, "probe") == 0) {
		/* answered only for approved watchers: a pending or refused one learns nothing */
		if (state == WATCHER_SUBSCRIBED)
			spres_send_state(sp, link, xmpp_stanza_get_from(stanza));
	}
}

static struct xview *view_get(struct presence *pr, const char *user, const char *watcher_jid,
			      int create)
{
	char *key = gw_xasprintf("%s\n%s", user, watcher_jid);
	struct xview *v = dict_get(pr->views, key);

	if (!v && create) {
		v = gw_xcalloc(1, sizeof(*v));
		v->pr = pr;
		v->key = key;
		v->user = gw_xstrdup(user);
		v->watcher_jid = gw_xstrdup(watcher_jid);
		v->resources = dict_new();
		dict_set(pr->views, key, v);
		return v;
	}
	free(key);
	return v;
}

static void view_free_tuple(void *arg, const char *key, void *value)
{
	struct pidf_tuple *t = value;

	pidf_tuple_clear(t);
	free(t);
}

static void view_free(struct xview *v)
{
	view_set_asked(v, 0);
	if (v->hold_ev)
		event_free(v->hold_ev);
	if (v->rate_ev)
		event_free(v->rate_ev);
	dict_del(v->pr->views, v->key);
	dict_foreach(v->resources, view_free_tuple, NULL);
	dict_free(v->resources);
	free(v->key);
	free(v->user);
	free(v->watcher_jid);
	free(v);
}

struct doc_build {
	struct pidf_doc *doc;
};

static void doc_add_tuple(void *arg, const char *key, void *value)
{
	struct doc_build *b = arg;

	b->doc->tuples[b->doc->ntuples++] = *(struct pidf_tuple *)value;	/* borrowed */
}

/* The PIDF document of the view: one tuple per available resource. */
static char *view_document(struct xview *v, size_t *len)
{
	struct pidf_doc doc;
	struct doc_build b = { &doc };
	char *uri = gw_xasprintf("pres:%s", v->user), *text;

	memset(&doc, 0, sizeof(doc));
	doc.entity = uri;
	doc.tuples = gw_xcalloc(dict_count(v->resources) + 1, sizeof(*doc.tuples));
	dict_foreach(v->resources, doc_add_tuple, &b);
	text = pidf_build(&doc, len);
	free(doc.tuples);	/* the tuples themselves are the view's */
	free(uri);
	return text;
}

/* NOTIFYs d with doc (built on first use into *doc). */
static void view_notify_one(struct xview *v, struct xdialog *d, char **doc, size_t *len,
			    uint64_t now)
{
	if (!*doc)
		*doc = view_document(v, len);
	d->held = d->due = 0;
	d->sent_ms = now;
	d->sent_hash = gw_hash64(*doc, *len);
	sip_watch_notify(d->w, SIP_SUBSTATE_ACTIVE, NULL, CT_PIDF, *doc, *len);
}

static void view_rate_cb(evutil_socket_t fd, short what, void *arg);
static void list_schedule(struct xlist *l);

/* Sends the due NOTIFYs whose dialog's interval allows, and arms the timer for the others. */
static void view_flush(struct xview *v)
{
	uint64_t now = gw_now_ms(v->pr->gw), gap = v->pr->gw->conf->presence_notify_interval_ms;
	uint64_t wait = 0;
	struct xdialog *d;
	size_t len = 0;
	char *doc = NULL;

	if (v->pr->closing)
		return;	/* see view_notify() */
	LIST_FOREACH(d, &v->dialogs, entry) {
		if (!d->active || !d->due || d->list)
			continue;
		if (!d->sent_ms || now >= d->sent_ms + gap) {
			if (!doc)
				doc = view_document(v, &len);
			if (d->sent_ms && gw_hash64(doc, len) == d->sent_hash)
				d->due = 0;	/* what the watcher has already */
			else
				view_notify_one(v, d, &doc, &len, now);
			continue;
		}
		if (!wait || d->sent_ms + gap - now < wait)
			wait = d->sent_ms + gap - now;
	}
	free(doc);
	if (wait) {
		struct timeval tv = { (time_t)(wait / 1000), (suseconds_t)(wait % 1000) * 1000 };

		if (!v->rate_ev && !(v->rate_ev = evtimer_new(v->pr->gw->base, view_rate_cb, v)))
			gw_fatal("evtimer_new failed");
		evtimer_add(v->rate_ev, &tv);
	}
}

static void view_rate_cb(evutil_socket_t fd, short what, void *arg)
{
	view_flush(arg);
}

/* NOTIFYs the active dialogs with the view's document, each at most once per <presence
 * notify-interval> (RFC 6665 4.2.2, RFC 3856 6.4): a change inside a dialog's interval is
 * deferred to its end, when the document of that moment goes, so a flood of changes costs one
 * NOTIFY per interval and the last state is never lost.  `only` (a dialog's first NOTIFY) goes
 * at once. */
static void view_notify(struct xview *v, struct xdialog *only)
{
	struct xdialog *d;
	size_t len = 0;
	char *doc = NULL;

	/* presence_close() sent every dialog its last NOTIFY, and the SIP stack's shutdown may
	 * free a watch without telling us: a timer that fires later sends nothing */
	if (v->pr->closing)
		return;
	if (only) {
		if (only->list) {
			only->held = 0;
			only->due = 1;
			list_schedule(only->list);
		} else if (only->active) {
			view_notify_one(v, only, &doc, &len, gw_now_ms(v->pr->gw));
		}
		free(doc);
		return;
	}
	LIST_FOREACH(d, &v->dialogs, entry) {
		if (!d->list) {
			d->due = d->active;
		} else if (d->active) {
			/* a list member: its change goes in the list's next NOTIFY (a refusal
			 * still due stays due) */
			d->held = 0;
			d->due = 1;
			list_schedule(d->list);
		}
	}
	view_flush(v);
}

static void view_probe(struct presence *pr, struct xview *v, const struct conf_peer *peer);

static void view_hold_cb(evutil_socket_t fd, short what, void *arg)
{
	struct xview *v = arg;
	struct xdialog *d;

	/* the server normally sends the user's presence right after an approval (RFC 6121
	 * 3.1.5), but not when it answered by itself from a roster that had approved the watcher
	 * already (ejabberd): asked for now; meanwhile the user shows offline */
	if (!dict_count(v->resources) && (d = LIST_FIRST(&v->dialogs)))
		view_probe(v->pr, v, d->peer);

	LIST_FOREACH(d, &v->dialogs, entry)
		if (d->held)
			view_notify(v, d);
}

/* Activates d: at once when the user's presence is known, else when it arrives (or after
 * PRES_HOLD_MS, showing the user offline). */
static void view_activate(struct xview *v, struct xdialog *d)
{
	struct timeval tv = { PRES_HOLD_MS / 1000, (PRES_HOLD_MS % 1000) * 1000 };

	d->active = 1;
	if (dict_count(v->resources)) {
		view_notify(v, d);
		return;
	}
	d->held = 1;
	if (!v->hold_ev && !(v->hold_ev = evtimer_new(v->pr->gw->base, view_hold_cb, v)))
		gw_fatal("evtimer_new failed");
	evtimer_add(v->hold_ev, &tv);
}

/* The XMPP server sends the user's presence (or probe answer) to the SIP watcher's JID. */
static void view_on_presence(struct presence *pr, xmpp_stanza_t *stanza, const char *type,
			     const char *from, const char *from_bare, const char *to_bare)
{
	struct xview *v = view_get(pr, from_bare, to_bare, 0);
	const char *slash = strchr(from, '/');
	const char *resource = slash ? slash + 1 : "";
	struct pidf_tuple *t, *old;

	if (!v)
		return;		/* nobody on the SIP side watches through this pair now */
	t = gw_xcalloc(1, sizeof(*t));
	if (pidf_tuple_from_presence(stanza, resource, t) != 0) {
		free(t);
		return;
	}
	t->contact = gw_xasprintf("xmpp:%s", from);
	if (type && strcmp(type, "unavailable") == 0) {
		old = dict_del(v->resources, resource);
		if (!slash) {	/* unavailable from the bare JID: every resource is gone */
			dict_foreach(v->resources, view_free_tuple, NULL);
			dict_free(v->resources);
			v->resources = dict_new();
		}
		pidf_tuple_clear(t);
		free(t);
	} else {
		old = dict_set(v->resources, resource, t);
	}
	if (old) {
		pidf_tuple_clear(old);
		free(old);
	}
	view_notify(v, NULL);
}

static void view_probe(struct presence *pr, struct xview *v, const struct conf_peer *peer)
{
	struct xmpp_link *link = pres_link(pr, peer);

	pres_send(link, pres_stanza(pr, "probe", v->watcher_jid, v->user));
}

/* The XMPP user answered (or withdrew) a SIP watcher's subscription. */
static void view_on_decision(struct presence *pr, const char *type, const char *user,
			     const char *watcher_jid)
{
	struct xview *v = view_get(pr, user, watcher_jid, 0);
	struct xdialog *d;
	int approved = strcmp(type, "subscribed") == 0;

	if (approved)
		store_put(pr->store, STORE_SWATCH, user, watcher_jid, "approved", 8);
	else
		store_del(pr->store, STORE_SWATCH, user, watcher_jid);
	if (!v)
		return;
	view_set_asked(v, 0);
	LIST_FOREACH(d, &v->dialogs, entry) {
		if (approved && !d->active) {
			view_activate(v, d);
		} else if (!approved && d->list) {
			d->active = d->held = 0;	/* the member's instance ends */
			d->rejected = 1;
			d->due = 1;
			list_schedule(d->list);
		} else if (!approved) {
			sip_watch_notify(d->w, SIP_SUBSTATE_TERMINATED, "rejected", NULL, NULL, 0);
			d->active = d->held = 0;
		}
	}
	/* after an approval the XMPP server sends the user's presence by itself (RFC 6121 3.1.5) */
}

void presence_from_xmpp(struct presence *pr, struct xmpp_link *link, xmpp_stanza_t *stanza)
{
	const struct conf *conf = pr->gw->conf;
	const char *type = xmpp_stanza_get_type(stanza);
	const char *from = xmpp_stanza_get_from(stanza), *to = xmpp_stanza_get_to(stanza);
	char from_bare[MAP_JID_MAX + 1], to_bare[MAP_JID_MAX + 1], domain[MAP_JID_MAX + 1];

	if (!from || !to || map_jid_bare(from, from_bare, sizeof(from_bare)) < 0 ||
	    map_jid_bare(to, to_bare, sizeof(to_bare)) < 0) {
		pres_bounce(pr, link, stanza, "jid-malformed", "bad from or to address");
		return;
	}
	if (type && strcmp(type, "error") == 0) {
		log_info("presence error from %s to %s", from, to);
		return;
	}
	if (!conf->presence_enabled || pr->closing) {
		if (type && strcmp(type, "subscribe") == 0)
			pres_bounce(pr, link, stanza, "service-unavailable",
				    pr->closing ? "the gateway is shutting down" :
				    "presence interworking is disabled");
		return;
	}
	/* the gateway asserts identities only in the XMPP domain it serves */
	if (map_jid_domain(from, domain, sizeof(domain)) < 0 ||
	    strcmp(domain, conf->xmpp_domain) != 0) {
		pres_bounce(pr, link, stanza, "forbidden",
			    "only users of the gateway's XMPP domain can reach SIP users");
		return;
	}
	if (!strchr(to_bare, '@')) {
		/* presence to the component itself: nothing to map */
		log_debug("presence %s from %s to the component ignored", type ? type : "", from);
		return;
	}
	if (!type || strcmp(type, "unavailable") == 0) {
		view_on_presence(pr, stanza, type, from, from_bare, to_bare);
	} else if (strcmp(type, "subscribed") == 0 || strcmp(type, "unsubscribed") == 0) {
		view_on_decision(pr, type, from_bare, to_bare);
	} else if (strcmp(type, "subscribe") == 0 || strcmp(type, "unsubscribe") == 0 ||
		   strcmp(type, "probe") == 0) {
		pres_from_xmpp_watcher(pr, link, stanza, type, from_bare, to_bare);
	} else {
		pres_bounce(pr, link, stanza, "bad-request", "unknown presence type");
	}
}

/* ---------------------------------------------------------------- from SIP */

/* ---------------------------------------------------------------- lists we serve (RFC 4662) */

#define LIST_MAX_MEMBERS_SHOWN 1000	/* members in one NOTIFY; the file may hold more */

static int presence_over_limit(struct presence *pr, struct sip_watch *w,
			       const struct sip_subscribe_info *info, const char *user,
			       const char *watcher_jid, int approved);

/* The list a Request-URI names (sip:<name>@<xmpp domain>), or NULL. */
static const struct conf_list *list_for_uri(const struct conf *conf, const char *request_uri)
{
	char jid[MAP_JID_MAX + 1];
	const char *at;

	if (!conf->nlists || map_sip_to_jid(request_uri, jid, sizeof(jid)) < 0 ||
	    map_jid_bare(jid, jid, sizeof(jid)) < 0 || !(at = strchr(jid, '@')) ||
	    strcmp(at + 1, conf->xmpp_domain) != 0)
		return NULL;
	for (size_t i = 0; i < conf->nlists; i++)
		if (strlen(conf->lists[i].name) == (size_t)(at - jid) &&
		    strncmp(conf->lists[i].name, jid, (size_t)(at - jid)) == 0)
			return &conf->lists[i];
	return NULL;
}

enum member_state { MEMBER_PENDING, MEMBER_ACTIVE, MEMBER_TERMINATED, MEMBER_GONE };

static enum member_state member_state(const struct xdialog *d)
{
	if (d->rejected)
		return d->rejected == 1 ? MEMBER_TERMINATED : MEMBER_GONE;
	return d->active && !d->held ? MEMBER_ACTIVE : MEMBER_PENDING;
}

/* Sends one NOTIFY: every member (full) or those that changed (partial), in `state`. */
static void list_send(struct xlist *l, int full, enum sip_substate state, const char *reason)
{
	size_t n = l->n < LIST_MAX_MEMBERS_SHOWN ? l->n :
		   LIST_MAX_MEMBERS_SHOWN;
	struct rlmi_list rl = { .uri = l->uri, .version = l->version++, .full_state = full };
	struct rlmi_resource *res = gw_xcalloc(n ? n : 1, sizeof(*res));
	struct rlmi_instance *ins = gw_xcalloc(n ? n : 1, sizeof(*ins));
	struct rlmi_part *parts = gw_xcalloc(n + 1, sizeof(*parts));
	char **docs = gw_xcalloc(n ? n : 1, sizeof(*docs)), **strs = gw_xcalloc(3 * n + 1, sizeof(*strs));
	size_t nparts = 1, nstr = 0, rlmi_len = 0, body_len = 0;
	char *rlmi, *body, *ct;

	for (size_t i = 0; i < n; i++) {
		struct xdialog *d = l->members[i];
		enum member_state ms = member_state(d);
		char uri[MAP_URI_MAX];
		struct rlmi_resource *r;

		if (!full && !d->due)
			continue;
		d->due = 0;
		if (map_jid_to_sip(l->jids[i], 0, uri, sizeof(uri)) < 0)
			continue;
		r = &res[rl.nresources++];
		r->uri = strs[nstr++] = gw_xstrdup(uri);
		if (ms == MEMBER_GONE)
			continue;	/* told once that it ended: no instance any more */
		r->instances = &ins[i];
		r->ninstances = 1;
		ins[i].id = strs[nstr++] = gw_xasprintf("m%zu", i);
		ins[i].state = ms == MEMBER_ACTIVE ? RLMI_ACTIVE : ms == MEMBER_PENDING ?
			       RLMI_PENDING : RLMI_TERMINATED;
		if (ms == MEMBER_TERMINATED) {
			ins[i].reason = "rejected";
			d->rejected = 2;
		}
		if (ms == MEMBER_ACTIVE) {
			size_t len = 0;

			docs[i] = view_document(d->view, &len);
			d->sent_hash = gw_hash64(docs[i], len);
			ins[i].cid = strs[nstr++] = gw_xasprintf("m%zu.%lu.%p@%s", i, rl.version,
								  (void *)l, l->pr->gw->conf->xmpp_domain);
			parts[nparts].content_type = CT_PIDF;
			parts[nparts].ct_len = strlen(CT_PIDF);
			parts[nparts].content_id = ins[i].cid;
			parts[nparts].cid_len = strlen(ins[i].cid);
			parts[nparts].body = docs[i];
			parts[nparts].body_len = len;
			nparts++;
		}
	}
	rl.resources = res;
	rlmi = rlmi_build(&rl, &rlmi_len);
	strs[nstr++] = gw_xasprintf("list.%lu.%p@%s", rl.version, (void *)l,
				    l->pr->gw->conf->xmpp_domain);
	parts[0].content_type = RLMI_CT;
	parts[0].ct_len = strlen(RLMI_CT);
	parts[0].content_id = strs[nstr - 1];
	parts[0].cid_len = strlen(strs[nstr - 1]);
	parts[0].body = rlmi;
	parts[0].body_len = rlmi_len;
	body = rlmi_multipart_build(parts, nparts, &ct, &body_len);
	sip_watch_notify(l->w, state, reason, ct, body, body_len);
	l->sent = 1;
	l->sent_ms = gw_now_ms(l->pr->gw);
	free(body);
	free(ct);
	free(rlmi);
	for (size_t i = 0; i < n; i++)
		free(docs[i]);
	for (size_t i = 0; i < nstr; i++)
		free(strs[i]);
	free(docs);
	free(strs);
	free(parts);
	free(ins);
	free(res);
}

/* Sends what is due: the first, full, NOTIFY, then the members that changed, at most one NOTIFY
 * per <presence notify-interval>; a member whose document is what the watcher has is not due. */
static void list_flush(struct xlist *l)
{
	uint64_t now = gw_now_ms(l->pr->gw), gap = l->pr->gw->conf->presence_notify_interval_ms;
	int due = 0;

	if (l->pr->closing || l->ended)
		return;	/* see view_notify() */
	if (!l->sent) {
		list_send(l, 1, SIP_SUBSTATE_ACTIVE, NULL);
		return;
	}
	for (size_t i = 0; i < l->n && i < LIST_MAX_MEMBERS_SHOWN; i++) {
		struct xdialog *d = l->members[i];

		if (d->due && member_state(d) == MEMBER_ACTIVE) {
			size_t len = 0;
			char *doc = view_document(d->view, &len);

			if (gw_hash64(doc, len) == d->sent_hash)
				d->due = 0;	/* what the watcher has */
			free(doc);
		}
		due |= d->due;
	}
	if (!due)
		return;
	if (now < l->sent_ms + gap) {
		uint64_t wait = l->sent_ms + gap - now;
		struct timeval tv = { (time_t)(wait / 1000), (suseconds_t)(wait % 1000) * 1000 };

		evtimer_add(l->ev, &tv);
		return;
	}
	list_send(l, 0, SIP_SUBSTATE_ACTIVE, NULL);
}

static void list_ev_cb(evutil_socket_t fd, short what, void *arg)
{
	list_flush(arg);
}

/* A member changed: the list's NOTIFY goes on the next loop pass (several changes of one pass
 * share it), or when the rate limit or the first NOTIFY's hold allows. */
static void list_schedule(struct xlist *l)
{
	struct timeval now = { 0, 0 };

	if (!l->sent || l->ended || evtimer_pending(l->ev, NULL))
		return;
	evtimer_add(l->ev, &now);
}

static void list_free(struct xlist *l, int withdraw)
{
	struct presence *pr = l->pr;

	for (size_t i = 0; i < l->n; i++) {
		struct xdialog *d = l->members[i];
		struct xview *v;

		if (!d)
			continue;
		v = d->view;
		LIST_REMOVE(d, entry);
		if (withdraw && LIST_EMPTY(&v->dialogs) && v->asked && !pr->closing) {
			struct xmpp_link *link = pres_link(pr, l->peer);

			if (link)
				pres_send(link, pres_stanza(pr, "unsubscribe", v->watcher_jid, v->user));
		}
		free(d);
		if (LIST_EMPTY(&v->dialogs))
			view_free(v);
	}
	LIST_REMOVE(l, entry);
	--*peer_count(pr, l->peer);
	count_add(pr, COUNT_DIALOGS, l->watcher_jid, -1);
	event_free(l->ev);
	if (l->refetch)
		l->refetch->l = NULL;	/* its answer finds nobody */
	for (size_t i = 0; i < l->n; i++)
		free(l->jids[i]);
	free(l->jids);
	free(l->owner);
	free(l->group);
	free(l->members);
	free(l->uri);
	free(l->watcher_jid);
	free(l);
}

/* The checks every list SUBSCRIBE passes (RFC 4662 5.1, expiry, link, limits).  Returns 0 with
 * the watcher's JID and the granted expiry, or -1 after refusing w. */
static int list_check(struct presence *pr, struct sip_watch *w,
		      const struct sip_subscribe_info *info, const char *name, char *watcher_jid,
		      size_t jlen, unsigned *expires)
{
	const struct conf *conf = pr->gw->conf;
	int r;

	if (!info->eventlist) {
		sip_watch_refuse(w, 421, "Extension Required", 0);	/* Require: eventlist */
		return -1;
	}
	sip_watch_set_eventlist(w);
	if (!info->accepts_rlmi) {
		sip_watch_refuse(w, 406, "List Needs multipart/related and application/rlmi+xml", 0);
		return -1;
	}
	if ((r = map_peer_sip_to_jid(info->peer, info->from_uri, watcher_jid, jlen)) < 0 ||
	    map_jid_bare(watcher_jid, watcher_jid, jlen) < 0) {
		sip_watch_refuse(w, r == MAP_ADDR_ENOTCANON ? 484 : 400,
				 r == MAP_ADDR_ENOTCANON ? "From User Part Not One-To-One" :
				 "From Address Not Mappable", 0);
		return -1;
	}
	if (info->expires > 0 && (unsigned long)info->expires < conf->presence_min_expires_s) {
		sip_watch_refuse(w, 423, "Interval Too Brief", conf->presence_min_expires_s);
		return -1;
	}
	if (!pres_link(pr, info->peer)) {
		sip_watch_refuse(w, 503, "XMPP Server Unreachable", 0);
		return -1;
	}
	if (sip_stack_watches(pr->gw->sip) > conf->presence_max_subscriptions) {
		sip_watch_refuse(w, 503, "Too Many Subscriptions", 0);
		return -1;
	}
	*expires = info->expires < 0 || (unsigned long)info->expires > conf->presence_max_expires_s ?
		   conf->presence_max_expires_s : (unsigned)info->expires;
	if (presence_over_limit(pr, w, info, name, watcher_jid, 1))
		return -1;
	return 0;
}

/* Accepts w as a subscription to the list uri of the n members jids (copied), each shown as
 * that member's approval of the watcher allows, and sends the first NOTIFY. */
static struct xlist *list_open(struct presence *pr, struct sip_watch *w,
			       const struct conf_peer *peer, const char *watcher_jid,
			       unsigned expires, const char *uri, char *const *jids, size_t n)
{
	const struct conf *conf = pr->gw->conf;
	struct xmpp_link *link = pres_link(pr, peer);
	struct timeval hold = { 0, 0 };
	struct xlist *l;
	int r;

	sip_watch_accept(w, expires);
	l = gw_xcalloc(1, sizeof(*l));
	l->is_list = 1;
	l->pr = pr;
	l->w = w;
	l->peer = peer;
	l->uri = gw_xstrdup(uri);
	l->watcher_jid = gw_xstrdup(watcher_jid);
	l->n = n;
	l->jids = gw_xcalloc(n ? n : 1, sizeof(*l->jids));
	l->members = gw_xcalloc(n ? n : 1, sizeof(*l->members));
	if (!(l->ev = evtimer_new(pr->gw->base, list_ev_cb, l)))
		gw_fatal("evtimer_new failed");
	LIST_INSERT_HEAD(&pr->lists, l, entry);
	++*peer_count(pr, l->peer);
	count_add(pr, COUNT_DIALOGS, watcher_jid, 1);
	sip_watch_set_arg(w, l);
	for (size_t i = 0; i < n; i++) {
		const char *member = l->jids[i] = gw_xstrdup(jids[i]);
		struct xview *v = view_get(pr, member, watcher_jid, 1);
		struct xdialog *d = gw_xcalloc(1, sizeof(*d));
		char *approved = NULL;

		d->view = v;
		d->list = l;
		d->peer = l->peer;
		LIST_INSERT_HEAD(&v->dialogs, d, entry);
		l->members[i] = d;
		r = store_get(pr->store, STORE_SWATCH, member, watcher_jid, &approved, NULL);
		free(approved);
		if (r == 1) {
			d->active = 1;
			if (!dict_count(v->resources)) {
				/* shown once the user's presence arrives, or offline after the hold */
				if (expires)
					view_probe(pr, v, l->peer);
				hold.tv_sec = PRES_HOLD_MS / 1000;
				hold.tv_usec = (PRES_HOLD_MS % 1000) * 1000;
			}
		} else if (expires && link && !v->asked && count_get(pr, COUNT_PENDING, member) <
			   conf->presence_max_pending_per_user) {
			view_set_asked(v, 1);
			pres_send(link, pres_stanza(pr, "subscribe", watcher_jid, member));
		}
	}
	log_info("presence: %s watches list %s (%zu members, %us)", watcher_jid, l->uri, n,
		 expires);
	if (expires == 0) {
		/* a fetch (RFC 6665 4.4.3): the state now, and the dialog ends */
		list_send(l, 1, SIP_SUBSTATE_TERMINATED, "timeout");
		return l;
	}
	evtimer_add(l->ev, &hold);	/* the first, full, NOTIFY */
	return l;
}

/* A SUBSCRIBE to one of the lists of the gateway file. */
static void list_from_sip(struct presence *pr, struct sip_watch *w,
			  const struct sip_subscribe_info *info, const struct conf_list *def)
{
	char watcher_jid[MAP_JID_MAX + 1], *uri;
	unsigned expires;

	if (list_check(pr, w, info, def->name, watcher_jid, sizeof(watcher_jid), &expires) < 0)
		return;
	uri = gw_xasprintf("sip:%s@%s", def->name, pr->gw->conf->xmpp_domain);
	list_open(pr, w, info->peer, watcher_jid, expires, uri, def->members, def->nmembers);
	free(uri);
}

/* ---- an XMPP user's roster group as a list: sip:<user>/<group>@<xmpp domain>, without the
 * group's SIP users of other peer networks than the watcher's (members_for_peer) */

#define ROSTER_TIMEOUT_MS 5000
#define ROSTER_MAX_MEMBERS 1000

/* Splits a Request-URI naming a roster group: the user part (percent-decoded) is
 * "<local>/<group>"; owner gets "<local>@<xmpp domain>" (checked as a JID) and group the rest.
 * Returns 0, or -1 if the URI names no roster group. */
static int roster_list_parse(const struct conf *conf, const char *request_uri, char *owner,
			     size_t olen, char *group, size_t glen)
{
	const char *u = request_uri, *at, *slash;
	char local[MAP_JID_MAX + 1], raw[MAP_URI_MAX];
	size_t n = 0;

	if (strncasecmp(u, "sip:", 4) == 0)
		u += 4;
	else if (strncasecmp(u, "sips:", 5) == 0)
		u += 5;
	else
		return -1;
	if (!(at = strchr(u, '@')) || (size_t)(at - u) >= sizeof(raw))
		return -1;
	for (const char *c = u; c < at; c++) {	/* %XX-decode the user part */
		int hi, lo;

		if (*c == '%' && c + 2 < at && (hi = gw_hexval(c[1])) >= 0 &&
		    (lo = gw_hexval(c[2])) >= 0) {
			raw[n++] = (char)(hi * 16 + lo);
			c += 2;
		} else if (*c == '%') {
			return -1;
		} else {
			raw[n++] = *c;
		}
	}
	raw[n] = '\0';
	if (strlen(raw) != n || !(slash = strchr(raw, '/')) || slash == raw || !slash[1] ||
	    (size_t)(slash - raw) >= sizeof(local) || strlen(slash + 1) >= glen)
		return -1;
	{
		const char *host = at + 1;
		size_t hl = strcspn(host, ";?>:");

		if (hl != strlen(conf->xmpp_domain) || strncasecmp(host, conf->xmpp_domain, hl) != 0)
			return -1;
	}
	memcpy(local, raw, (size_t)(slash - raw));
	local[slash - raw] = '\0';
	if ((size_t)snprintf(owner, olen, "%s@%s", local, conf->xmpp_domain) >= olen ||
	    map_jid_bare(owner, owner, olen) < 0 || strchr(local, '@'))
		return -1;
	snprintf(group, glen, "%s", slash + 1);
	return 0;
}

static void roster_req_free(struct roster_req *q)
{
	dict_del(q->pr->roster_reqs, q->id);
	event_free(q->timer);
	free(q->id);
	free(q->watcher_jid);
	free(q->owner);
	free(q->group);
	free(q->uri);
	free(q);
}

/* The roster could not be read: a waiting SUBSCRIBE is refused, a refreshed list goes on. */
static void roster_req_failed(struct roster_req *q, const char *why)
{
	log_warn("presence: the roster of %s could not be read for list %s (%s); the XMPP server "
		 "must grant the component roster \"get\" (XEP-0356)", q->owner, q->uri, why);
	if (q->w)
		sip_watch_refuse(q->w, 503, "Roster Unavailable", 60);
	if (q->l)
		q->l->refetch = NULL;
	roster_req_free(q);
}

static void roster_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
	struct roster_req *q = arg;

	roster_req_failed(q, q->sent ? "no answer" : "no XEP-0356 roster access advertised");
}

/* Sends q's iq: the server advertised roster access to the component (ejabberd refuses a read
 * that comes before its advertisement, Prosody does not). */
static void roster_send(struct roster_req *q)
{
	struct xmpp_link *link = pres_link(q->pr, q->peer);
	xmpp_stanza_t *iq, *query;

	if (!link || q->sent)
		return;
	q->sent = 1;
	iq = xmpp_iq_new(q->pr->gw->xctx, "get", q->id);
	query = xmpp_stanza_new(q->pr->gw->xctx);
	if (!iq || !query || xmpp_stanza_set_name(query, "query") != XMPP_EOK ||
	    xmpp_stanza_set_ns(query, "jabber:iq:roster") != XMPP_EOK)
		gw_fatal("out of memory");
	xmpp_stanza_set_from(iq, q->peer->component);
	xmpp_stanza_set_to(iq, q->owner);
	xmpp_stanza_add_child(iq, query);
	xmpp_stanza_release(query);
	pres_send(link, iq);
}

static struct roster_req *roster_read(struct presence *pr, const struct conf_peer *peer,
				      const char *owner)
{
	struct timeval tv = { ROSTER_TIMEOUT_MS / 1000, (ROSTER_TIMEOUT_MS % 1000) * 1000 };
	intptr_t priv = (intptr_t)dict_get(pr->privileged, peer->component);
	struct roster_req *q;

	if (!pres_link(pr, peer))
		return NULL;
	q = gw_xcalloc(1, sizeof(*q));
	q->pr = pr;
	q->peer = peer;
	q->owner = gw_xstrdup(owner);
	q->id = gw_xasprintf("%s-r%lu", gw_id_prefix(pr->gw), ++pr->roster_seq);
	if (!(q->timer = evtimer_new(pr->gw->base, roster_timeout_cb, q)))
		gw_fatal("evtimer_new failed");
	evtimer_add(q->timer, &tv);
	dict_set(pr->roster_reqs, q->id, q);
	if (priv == PRIV_ROSTER)
		roster_send(q);
	else if (priv == PRIV_NONE)
		event_active(q->timer, EV_TIMEOUT, 0);	/* refused from the loop */
	return q;
}

struct priv_walk {
	const char *domain;
	int granted;
};

static void priv_one(void *arg, const char *id, void *value)
{
	struct priv_walk *w = arg;
	struct roster_req *q = value;

	if (q->sent || !gw_strcaseeq(q->peer->component, w->domain))
		return;
	if (w->granted)
		roster_send(q);
	else
		event_active(q->timer, EV_TIMEOUT, 0);
}

int presence_privilege(struct presence *pr, struct xmpp_link *link, xmpp_stanza_t *message)
{
	xmpp_stanza_t *priv = xmpp_stanza_get_child_by_name_and_ns(message, "privilege",
								      "urn:xmpp:privilege:2");
	struct priv_walk w = { xmpp_link_domain(link), 0 };
	const char *from = xmpp_stanza_get_from(message);

	if (!priv)
		priv = xmpp_stanza_get_child_by_name_and_ns(message, "privilege",
							    "urn:xmpp:privilege:1");
	/* only the server itself grants privileges */
	if (!priv || !from || !gw_strcaseeq(from, pr->gw->conf->xmpp_domain))
		return 0;
	for (xmpp_stanza_t *p = xmpp_stanza_get_children(priv); p; p = xmpp_stanza_get_next(p)) {
		const char *access = xmpp_stanza_get_attribute(p, "access");
		const char *type = xmpp_stanza_get_attribute(p, "type");

		if (xmpp_stanza_is_tag(p) && access && type && strcmp(access, "roster") == 0 &&
		    (strcmp(type, "get") == 0 || strcmp(type, "both") == 0))
			w.granted = 1;
	}
	log_notice("component %s: the XMPP server %s roster access (XEP-0356)%s", w.domain,
		   w.granted ? "grants" : "does not grant",
		   w.granted || !pr->gw->conf->presence_roster_lists ? "" :
		   ": roster groups cannot be served as lists");
	dict_set(pr->privileged, w.domain, (void *)(intptr_t)(w.granted ? PRIV_ROSTER : PRIV_NONE));
	dict_foreach(pr->roster_reqs, priv_one, &w);
	return 1;
}

static int jid_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The bare JIDs of the roster items in group (sorted, at most ROSTER_MAX_MEMBERS). */
static size_t roster_group_members(xmpp_stanza_t *query, const char *group, char ***out)
{
	size_t n = 0;
	char **v = NULL;

	for (xmpp_stanza_t *it = xmpp_stanza_get_children(query); it; it = xmpp_stanza_get_next(it)) {
		const char *jid = xmpp_stanza_get_attribute(it, "jid");
		char bare[MAP_JID_MAX + 1];
		int in = 0;

		if (!xmpp_stanza_is_tag(it) || strcmp(xmpp_stanza_get_name(it), "item") != 0 || !jid ||
		    map_jid_bare(jid, bare, sizeof(bare)) < 0 || !strchr(bare, '@'))
			continue;
		for (xmpp_stanza_t *g = xmpp_stanza_get_children(it); g && !in; g = xmpp_stanza_get_next(g)) {
			char *text;

			if (!xmpp_stanza_is_tag(g) || strcmp(xmpp_stanza_get_name(g), "group") != 0)
				continue;
			text = xmpp_stanza_get_text(g);
			in = text && strcmp(text, group) == 0;
			if (text)
				xmpp_free(xmpp_stanza_get_context(g), text);
		}
		if (!in || n >= ROSTER_MAX_MEMBERS)
			continue;
		v = gw_xrealloc(v, (n + 1) * sizeof(*v));
		v[n++] = gw_xstrdup(bare);
	}
	if (n)
		qsort(v, n, sizeof(*v), jid_cmp);
	*out = v;
	return n;
}

/* Leaves out of jids (n of them, owned) the SIP users of peer networks other than the
 * watcher's (peer): a list served to one peer network names none of another's users, nor does
 * the gateway ask about them on that watcher's behalf (docs/security.md, "Federation hub").
 * Returns how many are left. */
static size_t members_for_peer(const struct conf *conf, const struct conf_peer *peer,
			       const char *list, char **jids, size_t n)
{
	size_t k = 0;

	for (size_t i = 0; i < n; i++) {
		const struct conf_peer *p = map_peer_of_jid(conf, jids[i]);

		if (p && p != peer) {
			log_debug("presence: list %s as served to peer %s: %s (of peer %s) left out",
				  list, peer->name, jids[i], p->name);
			free(jids[i]);
			continue;
		}
		jids[k++] = jids[i];
	}
	return k;
}

static int same_members(const struct xlist *l, char *const *jids, size_t n)
{
	if (l->n != n)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (strcmp(l->jids[i], jids[i]) != 0)
			return 0;
	return 1;
}

/* The answer to a roster read (an iq result or error whose id is ours).  Returns 1 if it was
 * one of ours. */
int presence_iq_reply(struct presence *pr, struct xmpp_link *link, xmpp_stanza_t *iq)
{
	const char *id = xmpp_stanza_get_id(iq), *type = xmpp_stanza_get_type(iq);
	struct roster_req *q = id ? dict_get(pr->roster_reqs, id) : NULL;
	xmpp_stanza_t *query;
	char **jids = NULL;
	size_t n;

	if (!q)
		return 0;
	query = xmpp_stanza_get_child_by_name_and_ns(iq, "query", "jabber:iq:roster");
	if (!type || strcmp(type, "result") != 0 || !query) {
		roster_req_failed(q, type && strcmp(type, "error") == 0 ? "an error" :
				  "a result without a roster");
		return 1;
	}
	n = roster_group_members(query, q->group, &jids);
	n = members_for_peer(pr->gw->conf, q->peer, q->uri ? q->uri : "-", jids, n);
	if (q->w && !n) {
		/* an empty group and a group that does not exist look the same */
		sip_watch_refuse(q->w, 404, "No Such List", 0);
	} else if (q->w) {
		struct xlist *l = list_open(pr, q->w, q->peer, q->watcher_jid, q->expires, q->uri,
					    jids, n);

		l->owner = gw_xstrdup(q->owner);
		l->group = gw_xstrdup(q->group);
	} else if (q->l) {
		q->l->refetch = NULL;
		if (!same_members(q->l, jids, n)) {
			/* the group changed: the watcher subscribes again and gets the new list
			 * (RFC 6665 4.1.3: deactivated, subscribe again at once) */
			log_info("presence: list %s changed (%zu members now): %s subscribes again",
				 q->l->uri, n, q->l->watcher_jid);
			sip_watch_notify(q->l->w, SIP_SUBSTATE_TERMINATED, "deactivated", NULL, NULL, 0);
		}
	}
	for (size_t i = 0; i < n; i++)
		free(jids[i]);
	free(jids);
	roster_req_free(q);
	return 1;
}

/* A SUBSCRIBE to a roster group's list.  Only a SIP watcher the group's owner approved (to see
 * the owner's own presence) may see who is in the owner's group; anyone else gets what a group
 * that does not exist gets: 404. */
static void roster_list_from_sip(struct presence *pr, struct sip_watch *w,
				 const struct sip_subscribe_info *info, const char *owner,
				 const char *group)
{
	char watcher_jid[MAP_JID_MAX + 1], *approved = NULL;
	struct roster_req *q;
	unsigned expires;
	int r;

	if (list_check(pr, w, info, owner, watcher_jid, sizeof(watcher_jid), &expires) < 0)
		return;
	r = store_get(pr->store, STORE_SWATCH, owner, watcher_jid, &approved, NULL);
	free(approved);
	if (r != 1) {
		log_info("presence: %s may not see the roster group %s of %s (not approved): 404",
			 watcher_jid, group, owner);
		sip_watch_refuse(w, 404, "No Such List", 0);
		return;
	}
	if (!(q = roster_read(pr, info->peer, owner))) {
		sip_watch_refuse(w, 503, "XMPP Server Unreachable", 0);
		return;
	}
	q->w = w;
	q->watcher_jid = gw_xstrdup(watcher_jid);
	q->group = gw_xstrdup(group);
	q->uri = gw_xstrdup(info->request_uri);
	q->expires = expires;
}

/* The limits on a new SIP watcher dialog: of its peer, of the watcher, and of requests pending
 * with the user.  Returns 1 after refusing w (503 with Retry-After). */
static int presence_over_limit(struct presence *pr, struct sip_watch *w,
			       const struct sip_subscribe_info *info, const char *user,
			       const char *watcher_jid, int approved)
{
	const struct conf *conf = pr->gw->conf;
	const struct xview *v = view_get(pr, user, watcher_jid, 0);
	const char *why = NULL;
	unsigned retry = PRES_LIMIT_RETRY_S;

	if (*peer_count(pr, info->peer) >= conf->presence_max_per_peer) {
		why = "Too Many Subscriptions From This Peer";
	} else if (count_get(pr, COUNT_DIALOGS, watcher_jid) >= conf->presence_max_per_watcher) {
		why = "Too Many Subscriptions From This Watcher";
	} else if (!approved && !(v && v->asked) &&
		   count_get(pr, COUNT_PENDING, user) >= conf->presence_max_pending_per_user) {
		why = "Too Many Requests Pending With This User";
		retry = PRES_PENDING_RETRY_S;
	}
	if (!why)
		return 0;
	log_limited(&pr->limit_log, CONF_LOG_NOTICE, __func__, "presence: %s watching %s "
		    "(peer %s) refused: 503 %s", info->from_uri, user, info->peer->name, why);
	sip_watch_refuse(w, 503, why, retry);
	return 1;
}

void presence_from_sip(struct presence *pr, struct sip_watch *w,
		       const struct sip_subscribe_info *info)
{
	const struct conf *conf = pr->gw->conf;
	const struct conf_peer *peer = info->peer;
	char user[MAP_JID_MAX + 1], watcher_jid[MAP_JID_MAX + 1], *approved = NULL;
	char group[256];
	const struct conf_list *def;
	struct xmpp_link *link;
	struct xview *v;
	struct xdialog *d;
	unsigned expires;
	int r;

	if (!conf->presence_enabled || strcmp(info->event, "presence") != 0) {
		sip_watch_refuse(w, 489, "Bad Event", 0);
		return;
	}
	if (pr->closing) {
		sip_watch_refuse(w, 503, "Shutting Down", 0);
		return;
	}
	if ((def = list_for_uri(conf, info->request_uri))) {
		list_from_sip(pr, w, info, def);
		return;
	}
	if (conf->presence_roster_lists &&
	    roster_list_parse(conf, info->request_uri, user, sizeof(user), group,
			      sizeof(group)) == 0) {
		roster_list_from_sip(pr, w, info, user, group);
		return;
	}
	if (!info->accepts_pidf) {
		sip_watch_refuse(w, 406, "Only application/pidf+xml", 0);
		return;
	}
	r = map_sip_to_jid(info->request_uri, user, sizeof(user));
	if (r < 0 || !strchr(user, '@')) {
		sip_watch_refuse(w, r < 0 ? 484 : 404, r == MAP_ADDR_ENOTCANON ?
				 "User Part Not One-To-One" : r < 0 ? "Address Not Mappable" :
				 "No User Part", 0);
		return;
	}
	if (map_jid_bare(user, user, sizeof(user)) < 0 ||
	    (r = map_peer_sip_to_jid(peer, info->from_uri, watcher_jid, sizeof(watcher_jid))) < 0 ||
	    map_jid_bare(watcher_jid, watcher_jid, sizeof(watcher_jid)) < 0) {
		sip_watch_refuse(w, r == MAP_ADDR_ENOTCANON ? 484 : 400,
				 r == MAP_ADDR_ENOTCANON ? "From User Part Not One-To-One" :
				 "From Address Not Mappable", 0);
		return;
	}
	if (info->expires > 0 && (unsigned long)info->expires < conf->presence_min_expires_s) {
		sip_watch_refuse(w, 423, "Interval Too Brief", conf->presence_min_expires_s);
		return;
	}
	link = pres_link(pr, peer);
	if (!link) {
		sip_watch_refuse(w, 503, "XMPP Server Unreachable", 0);
		return;
	}
	if (sip_stack_watches(pr->gw->sip) > conf->presence_max_subscriptions) {
		sip_watch_refuse(w, 503, "Too Many Subscriptions", 0);
		return;
	}
	expires = info->expires < 0 || (unsigned long)info->expires > conf->presence_max_expires_s ?
		  conf->presence_max_expires_s : (unsigned)info->expires;
	r = store_get(pr->store, STORE_SWATCH, user, watcher_jid, &approved, NULL);
	free(approved);
	if (expires > 0 && presence_over_limit(pr, w, info, user, watcher_jid, r == 1))
		return;
	sip_watch_accept(w, expires);
	v = view_get(pr, user, watcher_jid, 1);
	if (expires == 0) {
		/* a fetch (RFC 6665 4.4.3): the state now, and the dialog ends */
		size_t len = 0;
		char *doc = r == 1 ? view_document(v, &len) : NULL;

		sip_watch_notify(w, SIP_SUBSTATE_TERMINATED, "timeout", doc ? CT_PIDF : NULL, doc,
				 len);
		free(doc);
		if (LIST_EMPTY(&v->dialogs))
			view_free(v);
		return;
	}
	d = gw_xcalloc(1, sizeof(*d));
	d->view = v;
	d->w = w;
	d->peer = peer;
	++*peer_count(pr, peer);
	count_add(pr, COUNT_DIALOGS, watcher_jid, 1);
	LIST_INSERT_HEAD(&v->dialogs, d, entry);
	sip_watch_set_arg(w, d);
	log_info("presence: %s watches %s (%s, %us)", info->from_uri, user,
		 r == 1 ? "approved before" : "asking the user", expires);
	if (r == 1) {
		if (!dict_count(v->resources))
			view_probe(pr, v, peer);
		view_activate(v, d);
	} else {
		sip_watch_notify(w, SIP_SUBSTATE_PENDING, NULL, NULL, NULL, 0);
		view_set_asked(v, 1);
		pres_send(link, pres_stanza(pr, "subscribe", watcher_jid, user));
	}
}

void presence_watch_refreshed(struct presence *pr, struct sip_watch *w)
{
	struct xlist *l = sip_watch_arg(w);

	/* RFC 4662: a refresh is answered with the full state (after the stack's repeat of the
	 * last NOTIFY, whose version the watcher has seen and discards) */
	if (l && l->is_list && l->sent && !pr->closing) {
		evtimer_del(l->ev);
		list_send(l, 1, SIP_SUBSTATE_ACTIVE, NULL);
		if (l->owner && !l->refetch) {
			/* a roster group: its membership is read again */
			struct roster_req *q = roster_read(pr, l->peer, l->owner);

			if (q) {
				q->l = l;
				q->group = gw_xstrdup(l->group);
				q->uri = gw_xstrdup(l->uri);
				l->refetch = q;
			}
		}
	}
}

void presence_watch_ended(struct presence *pr, struct sip_watch *w, int status)
{
	struct xdialog *d = sip_watch_arg(w);
	struct xview *v;

	if (!d)
		return;
	if (((struct xlist *)(void *)d)->is_list) {
		struct xlist *l = (struct xlist *)(void *)d;

		log_info("presence: %s's subscription to list %s ended (%d)", l->watcher_jid, l->uri,
			 status);
		list_free(l, 1);
		return;
	}
	v = d->view;
	LIST_REMOVE(d, entry);
	--*peer_count(pr, d->peer);
	count_add(pr, COUNT_DIALOGS, v->watcher_jid, -1);
	log_info("presence: a dialog of %s watching %s ended (%d)", v->watcher_jid, v->user, status);
	if (LIST_EMPTY(&v->dialogs) && v->asked && !pr->closing) {
		/* nobody waits for the user's answer any more: the request is withdrawn, so that
		 * the XMPP server does not keep it (and a flood of watchers does not fill the
		 * user's roster); a later SUBSCRIBE asks again */
		struct xmpp_link *link = pres_link(pr, d->peer);

		log_info("presence: %s gave up before %s answered: its request is withdrawn",
			 v->watcher_jid, v->user);
		if (link)
			pres_send(link, pres_stanza(pr, "unsubscribe", v->watcher_jid, v->user));
	}
	free(d);
	if (LIST_EMPTY(&v->dialogs))
		view_free(v);
}

/* ---------------------------------------------------------------- lifecycle */

static int restore_watcher(void *arg, const char *uri, const char *jid, const char *val,
			   size_t vlen)
{
	struct presence *pr = arg;
	const struct conf *conf = pr->gw->conf;
	const struct conf_peer *peer;
	char host[MAP_JID_MAX + 1], pjid[MAP_JID_MAX + 1];
	struct spres *sp;

	if (map_sip_domain(uri, host, sizeof(host)) < 0 ||
	    !(peer = conf_peer_by_domain(conf, host))) {
		log_warn("presence: stored subscription of %s to %s no longer maps to a peer; "
			 "dropped", jid, uri);
		return 0;
	}
	/* views: everyone waits in the holder until the rules place them (prules_apply) */
	sp = spres_lookup(pr, peer, uri, jid);
	if (!sp) {
		if (map_peer_sip_to_jid(peer, uri, pjid, sizeof(pjid)) < 0 ||
		    !(sp = spres_new_for(pr, uri, pjid, peer, jid))) {
			log_warn("presence: stored subscription of %s to %s no longer maps to a "
				 "peer; dropped", jid, uri);
			return 0;
		}
	}
	if (!dict_set(sp->watchers, jid, (void *)(intptr_t)(strcmp(val, "subscribed") == 0 ?
			  WATCHER_SUBSCRIBED : WATCHER_PENDING))) {
		pr->nwatchers++;
		count_add(pr, COUNT_WATCHING, jid, 1);
		if (!spres_own(sp))
			count_add(pr, COUNT_WATCHERS, uri, 1);
	}
	return 0;
}

static void restore_drop_watcher_doc(void *arg, const char *jid, void *value)
{
	struct spres *sp = arg;

	store_del(sp->pr->store, STORE_XDOC, sp->uri, jid);
}

static void restore_doc(void *arg, const char *key, void *value)
{
	struct spres *sp = value;
	struct presence *pr = arg;
	char *text = NULL, err[160];
	size_t len = 0;

	if (store_get(pr->store, STORE_XDOC, sp->uri, sp->owner, &text, &len) == 1 &&
	    pidf_parse(text, len, map_doc_limit(pr->gw->conf, sp->peer), PRES_MAX_TUPLES, &sp->doc,
		       err, sizeof(err)) != 0)
		log_warn("presence %s: stored document unreadable (%s)", sp->uri, err);
	free(text);
	if (!spres_own(sp)) {
		/* the gateway's own dialog: documents of per-watcher dialogs (the peer migrated
		 * authorization since) are of no use any more */
		dict_foreach(sp->watchers, restore_drop_watcher_doc, sp);
		return;
	}
	/* a document a shared dialog got (before per-watcher dialogs, schema 1 rows with no
	 * watcher, or a peer that no longer migrates authorization) was authorized for the
	 * gateway, not for this watcher: never shown, dropped, with the rules it came with */
	store_del(pr->store, STORE_XDOC, sp->uri, "");
	store_del(pr->store, STORE_POLICY, sp->uri, "");
}

/* Dropped rows (e.g. a peer removed from the file) leave the database too. */
static int restore_collect_stale(void *arg, const char *uri, const char *jid, const char *val,
				 size_t vlen)
{
	struct presence *pr = ((void **)arg)[0];
	struct dict *stale = ((void **)arg)[1];
	char *key = spres_key(uri, jid);
	struct prules *r = dict_get(pr->rules, uri);

	if (!dict_get(pr->spres, key) && !(r && rules_holder(r, jid)))
		dict_set(stale, key, pr);
	free(key);
	return 0;
}

static void restore_drop(void *arg, const char *key, void *value)
{
	struct presence *pr = arg;
	const char *nl = strchr(key, '\n');
	char *uri = gw_xstrndup(key, (size_t)(nl - key));

	store_del(pr->store, STORE_XWATCH, uri, nl + 1);
	store_del(pr->store, STORE_XDOC, uri, nl + 1);
	free(uri);
}

static void start_one(void *arg, const char *uri, void *value)
{
	struct spres *sp = value;

	if (sp->state == SPRES_IDLE)
		spres_subscribe(sp);
}

struct presence *presence_new(struct gw *gw)
{
	struct presence *pr = gw_xcalloc(1, sizeof(*pr));
	const char *path = gw->conf->presence_db ? gw->conf->presence_db : ":memory:";
	char err[256];
	struct dict *stale;
	void *args[2];

	pr->gw = gw;
	TAILQ_INIT(&pr->queue);
	LIST_INIT(&pr->lists);
	pr->spres = dict_new();
	pr->rules = dict_new();
	pr->rls = dict_new();
	pr->roster_reqs = dict_new();
	pr->privileged = dict_new();
	pr->rls_off = gw_xcalloc(gw->conf->npeers ? gw->conf->npeers : 1, sizeof(*pr->rls_off));
	pr->views = dict_new();
	pr->counts = dict_new();
	pr->peer_dialogs = gw_xcalloc(gw->conf->npeers ? gw->conf->npeers : 1,
				      sizeof(*pr->peer_dialogs));
	pr->queue_ev = event_new(gw->base, -1, 0, queue_cb, pr);
	if (!pr->queue_ev)
		gw_fatal("event_new failed");
	pr->store = store_open(gw->base, path, err, sizeof(err));
	if (!pr->store) {
		log_error("presence database %s: %s", path, err);
		event_free(pr->queue_ev);
		dict_free(pr->spres);
		dict_free(pr->rules);
		dict_free(pr->rls);
		dict_free(pr->roster_reqs);
		dict_free(pr->privileged);
		free(pr->rls_off);
		dict_free(pr->views);
		dict_free(pr->counts);
		free(pr->peer_dialogs);
		free(pr);
		return NULL;
	}
	store_count_errors(pr->store, &gw->stats.store_errors);
	store_foreach(pr->store, STORE_XWATCH, NULL, restore_watcher, pr);
	dict_foreach(pr->spres, restore_doc, pr);
	stale = dict_new();
	args[0] = pr;
	args[1] = stale;
	store_foreach(pr->store, STORE_XWATCH, NULL, restore_collect_stale, args);
	dict_foreach(stale, restore_drop, pr);
	dict_free(stale);
	if (dict_count(pr->spres))
		log_notice("presence: %zu subscriptions of XMPP watchers to SIP presentities "
			   "restored from %s", dict_count(pr->spres), path);
	return pr;
}

void presence_start(struct presence *pr)
{
	pr->started = 1;
	if (pr->gw->conf->presence_enabled)
		dict_foreach(pr->spres, start_one, NULL);
}

struct link_change {
	struct presence *pr;
	struct xmpp_link *link;
	int up;
};

static void view_link_change(void *arg, const char *key, void *value)
{
	struct link_change *c = arg;
	struct xview *v = value;
	const struct conf_peer *peer = NULL;
	struct xdialog *d;
	int any_active = 0;

	LIST_FOREACH(d, &v->dialogs, entry)
		any_active |= d->active;
	if (!any_active)
		return;
	if (!c->up) {
		/* the XMPP users are out of reach: unavailable until the server says more */
		dict_foreach(v->resources, view_free_tuple, NULL);
		dict_free(v->resources);
		v->resources = dict_new();
		view_notify(v, NULL);
		return;
	}
	for (size_t i = 0; i < c->pr->gw->conf->npeers && !peer; i++) {
		const struct conf_peer *p = c->pr->gw->conf->peers[i];

		if (gw_strcaseeq(p->component, xmpp_link_domain(c->link)))
			peer = p;
	}
	if (peer)
		view_probe(c->pr, v, peer);
}

/* The link is (back) up: what XMPP watchers missed while it was down (e.g. documents that came
 * while the gateway was starting) goes out now. */
static void spres_link_up(void *arg, const char *uri, void *value)
{
	struct link_change *c = arg;
	struct spres *sp = value;

	if (sp->doc && sp->state == SPRES_ACTIVE &&
	    gw_strcaseeq(sp->peer->component, xmpp_link_domain(c->link)))
		spres_send_state(sp, c->link, NULL);
}

struct dirty_rules {
	char **uris;
	size_t n;
};

static void collect_dirty(void *arg, const char *uri, void *value)
{
	struct dirty_rules *d = arg;
	struct prules *r = value;

	if (r->dirty) {
		d->uris = gw_xrealloc(d->uris, (d->n + 1) * sizeof(*d->uris));
		d->uris[d->n++] = gw_xstrdup(uri);
	}
}

void presence_link_state(struct presence *pr, struct xmpp_link *link, int up)
{
	struct link_change c = { pr, link, up };
	struct dirty_rules d = { NULL, 0 };

	dict_foreach(pr->views, view_link_change, &c);
	if (!up) {
		dict_del(pr->privileged, xmpp_link_domain(link));	/* advertised again on the next */
		return;
	}
	dict_foreach(pr->spres, spres_link_up, &c);
	/* rule changes that waited for the link to tell the watchers */
	dict_foreach(pr->rules, collect_dirty, &d);
	for (size_t i = 0; i < d.n; i++) {
		struct prules *r = dict_get(pr->rules, d.uris[i]);

		if (r)
			prules_apply(r, NULL);
		free(d.uris[i]);
	}
	free(d.uris);
}

struct peer_up {
	const struct conf_peer *peer;
	size_t refreshed, retried;
};

/* The peer network answers again after it did not: a notifier that restarted has lost our
 * dialogs without telling us, so each is refreshed now (481 -> a quiet new dialog) instead of at
 * its next refresh, and dialogs waiting out a back-off are tried at once. */
static void spres_peer_up(void *arg, const char *uri, void *value)
{
	struct peer_up *u = arg;
	struct spres *sp = value;
	struct timeval now = { 0, 0 };

	if (!gw_strcaseeq(sp->peer->domain, u->peer->domain))
		return;
	if (sp->sub && (sp->state == SPRES_ACTIVE || sp->state == SPRES_PENDING)) {
		sip_sub_refresh(sp->sub);
		u->refreshed++;
	} else if (sp->state == SPRES_WAITING) {
		sp->failures = 0;
		evtimer_add(sp->timer, &now);
		u->retried++;
	}
}

void presence_peer_up(struct presence *pr, const struct conf_peer *peer)
{
	struct peer_up u = { peer, 0, 0 };

	if (pr->closing)
		return;
	dict_foreach(pr->spres, spres_peer_up, &u);
	log_notice("presence: peer %s is back: %zu dialogs refreshed, %zu re-subscribing now",
		   peer->name, u.refreshed, u.retried);
}

size_t presence_watchers(const struct presence *pr)
{
	return pr->nwatchers;
}

size_t presence_presentities(const struct presence *pr)
{
	return dict_count(pr->spres);
}

static void close_spres(void *arg, const char *uri, void *value)
{
	struct spres *sp = value;
	struct xmpp_link *link = pres_link(sp->pr, sp->peer);
	xmpp_stanza_t *s;

	/* watchers see the contact go offline while the gateway is away; the rows stay */
	if (link && sp->doc) {
		s = pres_stanza(sp->pr, "unavailable", sp->jid, NULL);
		spres_send_all(sp, link, s);
	}
	/* the dialog itself is ended by the SIP stack's shutdown, which follows (ending it here
	 * too would send a second un-SUBSCRIBE) */
	evtimer_del(sp->timer);
	spres_enter_state(sp, SPRES_CLOSED);
}

static void close_view(void *arg, const char *key, void *value)
{
	struct xview *v = value;
	struct xdialog *d;

	LIST_FOREACH(d, &v->dialogs, entry)
		if (d->w)
			sip_watch_notify(d->w, SIP_SUBSTATE_TERMINATED, "deactivated", NULL, NULL, 0);
}

static void close_rls(void *arg, const char *key, void *value)
{
	struct xrls *x = value;

	/* the dialog is ended by the SIP stack's shutdown; the document stays for the restart */
	evtimer_del(x->timer);
	if (x->put)
		xcap_cancel(x->put);
	x->put = NULL;
}

static void close_roster_req(void *arg, const char *id, void *value)
{
	struct roster_req *q = value;

	if (q->w)
		sip_watch_refuse(q->w, 503, "Shutting Down", 0);
	q->w = NULL;
	if (q->l)
		q->l->refetch = NULL;
	q->l = NULL;
}

void presence_close(struct presence *pr)
{
	struct xlist *l;

	if (pr->closing)
		return;
	pr->closing = 1;
	dict_foreach(pr->spres, close_spres, NULL);
	dict_foreach(pr->views, close_view, NULL);
	LIST_FOREACH(l, &pr->lists, entry)
		sip_watch_notify(l->w, SIP_SUBSTATE_TERMINATED, "deactivated", NULL, NULL, 0);
	dict_foreach(pr->rls, close_rls, NULL);
	dict_foreach(pr->roster_reqs, close_roster_req, NULL);
	store_flush(pr->store);
}

/* ---------------------------------------------------------------- reload */

void presence_peers_changed(struct presence *pr, const size_t *old_index, size_t n)
{
	size_t *dialogs = gw_xcalloc(n ? n : 1, sizeof(*dialogs));
	int *rls_off = gw_xcalloc(n ? n : 1, sizeof(*rls_off));

	for (size_t i = 0; i < n; i++) {
		if (old_index[i] == SIZE_MAX)
			continue;
		dialogs[i] = pr->peer_dialogs[old_index[i]];
		rls_off[i] = pr->rls_off[old_index[i]];
	}
	free(pr->peer_dialogs);
	free(pr->rls_off);
	pr->peer_dialogs = dialogs;
	pr->rls_off = rls_off;
}

struct peer_gone {
	const struct conf_peer *peer;
	void **v;
	size_t n, cap;
	size_t ended;
};

static void gone_push(struct peer_gone *g, void *p)
{
	if (g->n == g->cap) {
		g->cap = g->cap ? 2 * g->cap : 16;
		g->v = gw_xrealloc(g->v, g->cap * sizeof(*g->v));
	}
	g->v[g->n++] = p;
}

static void gone_spres(void *arg, const char *key, void *value)
{
	struct peer_gone *g = arg;
	struct spres *sp = value;

	if (sp->peer == g->peer)
		gone_push(g, sp);
}

static void gone_view(void *arg, const char *key, void *value)
{
	struct peer_gone *g = arg;
	struct xview *v = value;
	struct xdialog *d;

	LIST_FOREACH(d, &v->dialogs, entry)
		if (d->w && d->peer == g->peer) {
			sip_watch_notify(d->w, SIP_SUBSTATE_TERMINATED, "noresource", NULL, NULL, 0);
			/* nothing more on it until the stack reports its end (RFC 6665 4.1.3) */
			d->active = d->held = d->due = 0;
			g->ended++;
		}
}

static void gone_roster_req(void *arg, const char *id, void *value)
{
	struct peer_gone *g = arg;
	struct roster_req *q = value;

	if (q->peer != g->peer || !q->w)
		return;
	sip_watch_refuse(q->w, 403, "Peer Network Removed", 0);
	q->w = NULL;
}

/* A reload removed peer: its users' dialogs end now, with everyone told.  XMPP users watching
 * its SIP users see them go offline (their roster subscriptions and the stored rows stay: put
 * the peer back and a restart resumes them); its SIP watchers get a terminating NOTIFY with
 * reason=noresource (RFC 6665 4.2.2: do not re-subscribe).  The peer stays readable until
 * every dialog has ended. */
void presence_peer_removed(struct presence *pr, const struct conf_peer *peer)
{
	struct peer_gone g = { peer, NULL, 0, 0, 0 };
	struct xlist *l;
	size_t lists = 0;

	dict_foreach(pr->spres, gone_spres, &g);
	for (size_t i = 0; i < g.n; i++) {
		struct spres *sp = g.v[i];
		struct xmpp_link *link = pres_link(pr, sp->peer);

		if (link && sp->doc)
			spres_send_all(sp, link, pres_stanza(pr, "unavailable", sp->jid, NULL));
	}
	for (size_t i = 0; i < g.n; i++)
		spres_free(g.v[i]);
	dict_foreach(pr->views, gone_view, &g);
	LIST_FOREACH(l, &pr->lists, entry)
		if (l->peer == peer && !l->ended) {
			sip_watch_notify(l->w, SIP_SUBSTATE_TERMINATED, "noresource", NULL, NULL, 0);
			l->ended = 1;
			evtimer_del(l->ev);
			lists++;
		}
	dict_foreach(pr->roster_reqs, gone_roster_req, &g);
	log_notice("presence: peer %s removed: %zu subscriptions to its users ended, %zu of its "
		   "watchers' dialogs and %zu list subscriptions being ended", peer->name, g.n,
		   g.ended, lists);
	free(g.v);
}

static void free_spres(void *arg, const char *uri, void *value)
{
	struct spres *sp = value;

	sp->sub = NULL;		/* the SIP stack frees its own objects */
	spres_free(sp);
}

static void free_view(void *arg, const char *key, void *value)
{
	struct presence *pr = arg;
	struct xview *v = value;
	struct xdialog *d;

	while ((d = LIST_FIRST(&v->dialogs))) {
		LIST_REMOVE(d, entry);
		/* after presence_close() comes the SIP stack's shutdown, which owns the watches
		 * from then on and frees one whose final NOTIFY is answered (or times out) without
		 * telling us: they are not touched then */
		if (d->w && !pr->closing)
			sip_watch_set_arg(d->w, NULL);
		free(d);
	}
	view_free(v);
}

/* dict_foreach() callback: the first value into *(void **)arg. */
static void first_value(void *arg, const char *key, void *value)
{
	void **first = arg;

	if (!*first)
		*first = value;
}

void presence_free(struct presence *pr)
{
	if (!pr)
		return;
	while (!LIST_EMPTY(&pr->lists)) {
		struct xlist *l = LIST_FIRST(&pr->lists);

		if (!pr->closing)	/* as in free_view() */
			sip_watch_set_arg(l->w, NULL);	/* the SIP stack frees its own objects */
		list_free(l, 0);
	}
	while (dict_count(pr->roster_reqs)) {
		void *first = NULL;
		struct roster_req *q;

		dict_foreach(pr->roster_reqs, first_value, &first);
		q = first;
		if (q->l)
			q->l->refetch = NULL;
		roster_req_free(q);
	}
	while (dict_count(pr->rls)) {
		void *first = NULL;
		struct xrls *x;
		struct collect c;

		dict_foreach(pr->rls, first_value, &first);
		x = first;
		c.v = gw_xcalloc(dict_count(x->members) + 1, sizeof(*c.v));
		c.n = 0;
		dict_foreach(x->members, collect_member, &c);
		for (size_t i = 0; i < c.n; i++)
			c.v[i]->rls = NULL;
		free(c.v);
		x->sub = NULL;		/* the SIP stack frees its own objects */
		rls_free(x, 0, 0);
	}
	dict_foreach(pr->spres, free_spres, NULL);
	dict_foreach(pr->views, free_view, pr);
	dict_free(pr->spres);
	dict_free(pr->rules);
	dict_free(pr->rls);
	dict_free(pr->roster_reqs);
	dict_free(pr->privileged);
	free(pr->rls_off);
	dict_free(pr->views);
	dict_free(pr->counts);
	free(pr->peer_dialogs);
	store_free(pr->store);
	xcap_free(pr->xcap);
	event_free(pr->queue_ev);
	free(pr);
}
