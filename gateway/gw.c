/* gw.c - the gateway's lifecycle: building the stacks on one event base, routing what arrives
 * to the mapping layer, and a clean shutdown on SIGTERM/SIGINT.
 *
 * Shutdown order: stop taking new messages; wait (up to GW_DRAIN_MS) for pending ones to settle;
 * answer whatever is left (503 to SIP senders, service-unavailable to XMPP senders); shut the
 * SIP stack down; end each component stream with </stream:stream>; leave the loop.
 */
#include <errno.h>
#include <malloc.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include <event2/event.h>
#include <strophe.h>

#include "../mapping/map.h"
#include "../sip/sip.h"
#include "../xmpp/xmpp.h"
#include "audit.h"
#include "gw.h"

#define GW_DRAIN_MS 5000
#define GW_TRIM_CHECK_MS 2000	/* how often the trimmer looks */
#define GW_TRIM_FORCE_MS 300000	/* trims anyway after this long without an idle period */
#define GW_DRAIN_POLL_MS 20
#define NS_PING "urn:xmpp:ping"
#define NS_DISCO_INFO "http://jabber.org/protocol/disco#info"

uint64_t gw_now_ms(const struct gw *gw)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

const char *gw_id_prefix(const struct gw *gw)
{
	return gw->id_prefix;
}

void gw_make_id(struct gw *gw, const char *kind, char *buf, size_t len)
{
	snprintf(buf, len, "%s-%s%llu", gw->id_prefix, kind, ++gw->id_seq);
}

struct xmpp_link *gw_link_for_component(struct gw *gw, const char *domain)
{
	for (size_t i = 0; i < gw->nlinks; i++)
		if (gw_strcaseeq(xmpp_link_domain(gw->links[i]), domain))
			return gw->links[i];
	return NULL;
}

/* ---- XMPP side */

static void gw_send_release(struct xmpp_link *link, xmpp_stanza_t *s)
{
	xmpp_link_send(link, s);
	xmpp_stanza_release(s);
}

static xmpp_stanza_t *gw_tag(struct gw *gw, const char *name, const char *ns)
{
	xmpp_stanza_t *s = xmpp_stanza_new(gw->xctx);

	if (!s || xmpp_stanza_set_name(s, name) != XMPP_EOK ||
	    (ns && xmpp_stanza_set_ns(s, ns) != XMPP_EOK))
		gw_fatal("out of memory");
	return s;
}

/* An iq result to iq (RFC 6120 8.2.3): type='result', the same id, from the address the request
 * was sent to, to its sender.  ejabberd closes the component stream on a reply that keeps
 * type='get' or lacks 'from' (improper-addressing); libstrophe's xmpp_stanza_reply() does both.
 * Caller releases the result. */
static xmpp_stanza_t *gw_iq_result(struct gw *gw, xmpp_stanza_t *iq)
{
	xmpp_stanza_t *r = xmpp_iq_new(gw->xctx, "result", xmpp_stanza_get_id(iq));
	const char *from = xmpp_stanza_get_from(iq), *to = xmpp_stanza_get_to(iq);

	if (!r)
		gw_fatal("out of memory");
	if (to)
		xmpp_stanza_set_from(r, to);
	if (from)
		xmpp_stanza_set_to(r, from);
	return r;
}

static void gw_iq_ping(struct gw *gw, struct xmpp_link *link, xmpp_stanza_t *iq,
		       xmpp_stanza_t *payload)
{
	gw_send_release(link, gw_iq_result(gw, iq));
}

/* disco#info of the gateway's own address (XEP-0030).  It has no nodes (item-not-found); a SIP
 * user's address is not the gateway's to describe (service-unavailable, RFC 6120 8.4). */
static void gw_iq_disco_info(struct gw *gw, struct xmpp_link *link, xmpp_stanza_t *iq,
			     xmpp_stanza_t *payload)
{
	static const char *const features[] = { NS_DISCO_INFO, NS_PING };
	const char *to = xmpp_stanza_get_to(iq);
	xmpp_stanza_t *query, *id, *reply;

	if (!to || !gw_strcaseeq(to, xmpp_link_domain(link))) {
		gw_send_release(link, map_error_reply(gw->xctx, iq, "service-unavailable", NULL));
		return;
	}
	if (xmpp_stanza_get_attribute(payload, "node")) {
		gw_send_release(link, map_error_reply(gw->xctx, iq, "item-not-found", NULL));
		return;
	}
	query = gw_tag(gw, "query", NS_DISCO_INFO);
	id = gw_tag(gw, "identity", NULL);
	xmpp_stanza_set_attribute(id, "category", "gateway");
	xmpp_stanza_set_attribute(id, "type", "sip");
	xmpp_stanza_set_attribute(id, "name", "SIP/SIMPLE gateway");
	xmpp_stanza_add_child_ex(query, id, 0);
	for (size_t i = 0; i < sizeof(features) / sizeof(features[0]); i++) {
		xmpp_stanza_t *f = gw_tag(gw, "feature", NULL);

		xmpp_stanza_set_attribute(f, "var", features[i]);
		xmpp_stanza_add_child_ex(query, f, 0);
	}
	reply = gw_iq_result(gw, iq);
	xmpp_stanza_add_child_ex(reply, query, 0);
	gw_send_release(link, reply);
}

/* The iq requests the gateway answers: type, payload namespace, handler.  Anything else gets
 * service-unavailable (RFC 6120 8.4). */
static const struct gw_iq_rule {
	const char *type;
	const char *ns;
	void (*handle)(struct gw *gw, struct xmpp_link *link, xmpp_stanza_t *iq,
		       xmpp_stanza_t *payload);
} gw_iq_rules[] = {
	{ "get", NS_PING, gw_iq_ping },
	{ "get", NS_DISCO_INFO, gw_iq_disco_info },
};

/* IQs to the component or its users (RFC 6120 8.2.3): get and set are answered with exactly one
 * result or error; results and errors are the pager's barrier replies or nobody's. */
static void gw_on_iq(struct gw *gw, struct xmpp_link *link, xmpp_stanza_t *iq)
{
	const char *type = xmpp_stanza_get_type(iq), *ns;
	xmpp_stanza_t *payload = NULL;
	size_t npayload = 0;

	if (!type || strcmp(type, "result") == 0 || strcmp(type, "error") == 0) {
		if (!pager_iq_reply(gw->pager, link, iq) &&
		    !(gw->presence && presence_iq_reply(gw->presence, link, iq)))
			log_debug("unexpected iq %s from %s: dropped", type ? type : "without type",
				  xmpp_stanza_get_from(iq) ? xmpp_stanza_get_from(iq) : "-");
		return;
	}
	for (xmpp_stanza_t *c = xmpp_stanza_get_children(iq); c; c = xmpp_stanza_get_next(c))
		if (xmpp_stanza_is_tag(c) && !npayload++)
			payload = c;
	if ((strcmp(type, "get") != 0 && strcmp(type, "set") != 0) || npayload != 1 ||
	    !xmpp_stanza_get_id(iq)) {
		log_info("iq from %s: type %s with %zu payloads%s: bad-request",
			 xmpp_stanza_get_from(iq) ? xmpp_stanza_get_from(iq) : "-", type, npayload,
			 xmpp_stanza_get_id(iq) ? "" : " and no id");
		gw_send_release(link, map_error_reply(gw->xctx, iq, "bad-request", NULL));
		return;
	}
	ns = xmpp_stanza_get_ns(payload);
	for (size_t i = 0; ns && i < sizeof(gw_iq_rules) / sizeof(gw_iq_rules[0]); i++)
		if (strcmp(type, gw_iq_rules[i].type) == 0 && strcmp(ns, gw_iq_rules[i].ns) == 0) {
			gw_iq_rules[i].handle(gw, link, iq, payload);
			return;
		}
	log_debug("iq %s %s from %s: service-unavailable", type, ns ? ns : "(no namespace)",
		  xmpp_stanza_get_from(iq) ? xmpp_stanza_get_from(iq) : "-");
	gw_send_release(link, map_error_reply(gw->xctx, iq, "service-unavailable", NULL));
}

static void gw_on_stanza(void *arg, struct xmpp_link *link, xmpp_stanza_t *stanza)
{
	struct gw *gw = arg;
	const char *name = xmpp_stanza_get_name(stanza);

	gw->activity++;
	if (strcmp(name, "message") == 0) {
		if (gw->presence && presence_privilege(gw->presence, link, stanza))
			return;
		if (gw->groupchat && groupchat_from_xmpp(gw->groupchat, link, stanza))
			return;
		if (!gw->sessions || !sessions_from_xmpp(gw->sessions, link, stanza))
			pager_from_xmpp(gw->pager, link, stanza);
	}
	else if (strcmp(name, "iq") == 0)
		gw_on_iq(gw, link, stanza);
	else if (strcmp(name, "presence") == 0) {
		if (!(gw->groupchat && groupchat_from_xmpp(gw->groupchat, link, stanza)))
			presence_from_xmpp(gw->presence, link, stanza);
	}
	else
		log_info("component %s: unexpected <%s/> ignored", xmpp_link_domain(link), name);
}

/* A stanza over the link's bounds (<xmpp max-stanza>, nesting) was skipped: its sender gets an
 * error (never an error for an error, nor for an iq result), and the link stays up. */
static void gw_on_skipped(void *arg, struct xmpp_link *link, xmpp_stanza_t *head,
			  const char *condition, const char *text)
{
	struct gw *gw = arg;
	const char *name = xmpp_stanza_get_name(head), *type = xmpp_stanza_get_type(head);
	const char *from = xmpp_stanza_get_from(head);

	gw->activity++;
	log_limited(&gw->skipped_log, CONF_LOG_NOTICE, __func__,
		    "component %s: <%s> from %s (id %s) skipped: %s (%s)", xmpp_link_domain(link),
		    name, from ? from : "-", xmpp_stanza_get_id(head) ? xmpp_stanza_get_id(head) : "-",
		    text, condition);
	if (!from || (type && (strcmp(type, "error") == 0 || strcmp(type, "result") == 0)) ||
	    (strcmp(name, "message") != 0 && strcmp(name, "presence") != 0 &&
	     strcmp(name, "iq") != 0))
		return;
	gw_send_release(link, map_error_reply(gw->xctx, head, condition, text));
}

static void gw_on_link_state(void *arg, struct xmpp_link *link, int up)
{
	struct gw *gw = arg;

	if (gw->pager)
		pager_link_state(gw->pager, link, up);
	if (gw->presence)
		presence_link_state(gw->presence, link, up);
	if (gw->groupchat)
		groupchat_link_state(gw->groupchat, link, up);
}

/* Another gateway holds our component at the XMPP server (component.c says how it knows): one
 * domain served by two instances that share no state loses replies and verdicts, so this one,
 * the newcomer, refuses to run. */
static void gw_on_link_conflict(void *arg, struct xmpp_link *link)
{
	struct gw *gw = arg;

	log_error("another instance serves %s: shutting down (exit status 1)",
		  xmpp_link_domain(link));
	gw->exit_status = 1;
	gw_shutdown(gw);
}

/* ---- SIP side */

static void gw_on_sip_message(void *arg, struct sip_incoming *in,
			      const struct sip_message_info *info)
{
	struct gw *gw = arg;

	gw->activity++;
	pager_from_sip(gw->pager, in, info);
}

static void gw_on_sip_subscribe(void *arg, struct sip_watch *w,
				const struct sip_subscribe_info *info)
{
	struct gw *gw = arg;

	gw->activity++;
	if (groupchat_owns_uri(gw->groupchat, info->request_uri))
		groupchat_from_sip_subscribe(gw->groupchat, w, info);
	else
		presence_from_sip(gw->presence, w, info);
}

static void gw_on_sip_invite(void *arg, struct sip_call *call, const struct sip_invite_info *info)
{
	struct gw *gw = arg;

	gw->activity++;
	if (groupchat_owns_uri(gw->groupchat, info->request_uri))
		groupchat_from_sip_invite(gw->groupchat, call, info);
	else
		sessions_from_sip(gw->sessions, call, info);
}

static void gw_on_sip_watch_ended(void *arg, struct sip_watch *w, int status)
{
	struct gw *gw = arg;

	if (!groupchat_watch_ended(gw->groupchat, w))
		presence_watch_ended(gw->presence, w, status);
}

static void gw_on_sip_watch_refreshed(void *arg, struct sip_watch *w)
{
	struct gw *gw = arg;

	if (!groupchat_watch_refreshed(gw->groupchat, w))
		presence_watch_refreshed(gw->presence, w);
}

/* ---- housekeeping */

/* Completed SIP transactions are kept 64*T1 (32 s) to absorb retransmissions, so a burst of
 * messages leaves much freed memory behind it, scattered between live allocations; glibc gives
 * it back only through malloc_trim(), which walks every free chunk: about 70 ms after a burst of
 * 20 000 messages, a stall nobody should see in their latency.  So it runs once traffic (SIP
 * requests, stanzas and MSRP data received) has stopped for longer than the transactions are kept, or,
 * under a load that never pauses, at most every GW_TRIM_FORCE_MS. */
static void gw_trim_cb(evutil_socket_t fd, short what, void *arg)
{
	struct gw *gw = arg;
	uint64_t now = gw_now_ms(gw), quiet_ms = 64u * gw->conf->sip_t1_ms + GW_TRIM_CHECK_MS;
	int idle;

	if (gw->activity != gw->trim_activity) {
		gw->trim_activity = gw->activity;
		gw->active_ms = now;
		gw->trim_wanted = 1;
	}
	idle = now - gw->active_ms >= quiet_ms;
	if (!gw->trim_wanted || (!idle && now - gw->trimmed_ms < GW_TRIM_FORCE_MS))
		return;
#ifdef __GLIBC__
	malloc_trim(0);
#endif
	gw->trim_wanted = 0;
	gw->trimmed_ms = now;
	log_debug("memory trimmed in %llu ms (%s)", (unsigned long long)(gw_now_ms(gw) - now),
		  idle ? "idle" : "forced");
}

/* ---- peer health: OPTIONS to each peer network's next hop every <route options-interval>.
 * A peer that answered nothing (408) or could not be reached (503, also what Sofia reports for
 * a refused datagram) is down; when it answers again, presence refreshes its dialogs at once
 * (a restarted presence server forgets them without a word). */

struct gw_peer *gw_peer_of(struct gw *gw, const struct conf_peer *peer)
{
	if (!peer || !gw->peer_rt || peer->index >= gw->conf->npeers ||
	    gw->conf->peers[peer->index] != peer)
		return NULL;
	return gw->peer_rt[peer->index];
}

struct stats_peer *gw_peer_stats(struct gw *gw, const struct conf_peer *peer)
{
	struct gw_peer *h = gw_peer_of(gw, peer);

	return h ? &h->stats : NULL;
}

static void gw_health_answer(void *arg, int status, const char *phrase)
{
	struct gw_peer *h = arg;
	int up = status != 408 && status != 503;

	h->out = NULL;
	if (!up)
		h->stats.options_failed++;
	if (h->gw->state != GW_RUNNING || up == h->up)
		return;
	if (!up)
		log_warn("peer %s: no answer to OPTIONS (%d %s): counted as down", h->peer->name,
			 status, phrase ? phrase : "");
	else if (h->up == 0)
		log_notice("peer %s: answers OPTIONS again (%d)", h->peer->name, status);
	if (up && h->up == 0 && h->gw->presence)
		presence_peer_up(h->gw->presence, h->peer);
	h->up = up;
	h->changed_ms = gw_now_ms(h->gw);
}

static void gw_health_cb(evutil_socket_t fd, short what, void *arg)
{
	struct gw_peer *h = arg;
	char *from;

	if (h->out || h->gw->state != GW_RUNNING)
		return;
	from = gw_xasprintf("sip:%s@%s", h->gw->conf->presence_agent, h->gw->conf->xmpp_domain);
	h->out = sip_send_options(h->gw->sip, h->peer, from, gw_health_answer, h);
	free(from);
}

/* Starts (or, with a new interval, restarts) a peer's health timer. */
static void gw_health_arm(struct gw_peer *h)
{
	unsigned ms = h->peer->options_interval_ms;
	struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };

	if (h->ev)
		event_del(h->ev);
	if (!ms)
		return;
	if (!h->ev)
		h->ev = event_new(h->gw->base, -1, EV_PERSIST, gw_health_cb, h);
	if (!h->ev || event_add(h->ev, &tv) != 0)
		gw_fatal("cannot install the peer health timer");
}

static struct gw_peer *gw_peer_new(struct gw *gw, const struct conf_peer *peer)
{
	struct gw_peer *h = gw_xcalloc(1, sizeof(*h));

	h->gw = gw;
	h->peer = peer;
	h->up = -1;
	h->changed_ms = gw_now_ms(gw);
	gw_health_arm(h);
	return h;
}

static void gw_peer_free(struct gw_peer *h)
{
	if (!h)
		return;
	if (h->out)
		sip_outgoing_cancel(h->out);
	if (h->ev)
		event_free(h->ev);
	free(h);
}

static void gw_health_start(struct gw *gw)
{
	gw->peer_rt = gw_xcalloc(gw->conf->npeers, sizeof(*gw->peer_rt));
	for (size_t i = 0; i < gw->conf->npeers; i++)
		gw->peer_rt[i] = gw_peer_new(gw, gw->conf->peers[i]);
}

static void gw_health_free(struct gw *gw)
{
	for (size_t i = 0; gw->peer_rt && i < gw->conf->npeers; i++)
		gw_peer_free(gw->peer_rt[i]);
	free(gw->peer_rt);
	gw->peer_rt = NULL;
}

/* ---- shutdown */

static void gw_link_stopped(void *arg)
{
	struct gw *gw = arg;

	if (gw->links_open && --gw->links_open == 0) {
		gw->state = GW_DONE;
		log_notice("shutdown complete");
		event_base_loopexit(gw->base, NULL);
	}
}

static void gw_on_sip_down(void *arg)
{
	struct gw *gw = arg;

	gw->links_open = gw->nlinks;
	if (!gw->nlinks) {
		gw->state = GW_DONE;
		event_base_loopexit(gw->base, NULL);
		return;
	}
	for (size_t i = 0; i < gw->nlinks; i++)
		xmpp_link_stop(gw->links[i], gw_link_stopped, gw);
}

static void gw_drain_cb(evutil_socket_t fd, short what, void *arg)
{
	struct gw *gw = arg;
	size_t pending = pager_pending(gw->pager);

	if (gw->state != GW_DRAINING)
		return;
	if (pending && gw_now_ms(gw) - gw->drain_started_ms < GW_DRAIN_MS) {
		struct timeval tv = { 0, GW_DRAIN_POLL_MS * 1000 };

		evtimer_add(gw->drain_ev, &tv);
		return;
	}
	if (pending)
		log_warn("shutdown: %zu messages still pending after %u ms: answering them now",
			 pending, GW_DRAIN_MS);
	gw->state = GW_STOPPING;
	pager_abort(gw->pager);
	sip_stack_shutdown(gw->sip);
}

void gw_shutdown(struct gw *gw)
{
	if (gw->state != GW_RUNNING)
		return;
	log_notice("shutting down: %zu messages pending", pager_pending(gw->pager));
	gw->state = GW_DRAINING;
	gw->drain_started_ms = gw_now_ms(gw);
	pager_close(gw->pager);
	presence_close(gw->presence);
	groupchat_close(gw->groupchat);
	sessions_close(gw->sessions);
	event_active(gw->drain_ev, EV_TIMEOUT, 0);
}

static void gw_signal_cb(evutil_socket_t sig, short what, void *arg)
{
	struct gw *gw = arg;

	if (sig == SIGHUP) {
		/* the files a running gateway may take again without dropping anyone: the TLS
		 * certificates (for new connections) and the audit log (logrotate); the gateway
		 * file itself is read at start only (issue 15 brings its reload) */
		log_notice("received SIGHUP: reloading the TLS files and reopening the audit log "
			   "(the gateway file is not read again: restart to apply its changes)");
		sip_tls_reload();
		sessions_tls_reload(gw->sessions);
		audit_reopen();
		return;
	}
	log_notice("received %s", sig == SIGTERM ? "SIGTERM" : "SIGINT");
	if (gw->state == GW_RUNNING) {
		gw_shutdown(gw);
	} else {
		log_warn("second signal: leaving at once");
		event_base_loopexit(gw->base, NULL);
	}
}

/* ---- live reload */

int gw_reload(struct gw *gw, char **report)
{
	if (report)
		*report = gw_xstrdup("reload: not available yet: restart to apply changes\n");
	gw->stats.reloads_failed++;
	return -1;
}

/* ---- construction */

static void gw_xmpp_log(void *userdata, xmpp_log_level_t level, const char *area, const char *msg)
{
	log_msg(level == XMPP_LEVEL_ERROR ? CONF_LOG_WARNING : CONF_LOG_DEBUG, "libstrophe",
		"%s: %s", area, msg);
}

static const xmpp_log_t gw_strophe_log = { gw_xmpp_log, NULL };

struct gw *gw_new(struct conf *conf)
{
	struct gw *gw = gw_xcalloc(1, sizeof(*gw));
	static const struct xmpp_link_cbs link_cbs = {
		.stanza = gw_on_stanza,
		.state = gw_on_link_state,
		.conflict = gw_on_link_conflict,
		.skipped = gw_on_skipped,
	};
	static const struct sip_cbs sip_cbs = {
		.message = gw_on_sip_message,
		.shutdown_done = gw_on_sip_down,
		.subscribe = gw_on_sip_subscribe,
		.watch_ended = gw_on_sip_watch_ended,
		.watch_refreshed = gw_on_sip_watch_refreshed,
		.invite = gw_on_sip_invite,
	};
	unsigned char rnd[4];
	struct timeval trim_tv = { GW_TRIM_CHECK_MS / 1000, (GW_TRIM_CHECK_MS % 1000) * 1000 };

	gw->conf = conf;
	gw->stats.started_ms = gw_now_ms(gw);
	gw->trimmed_ms = gw->active_ms = gw_now_ms(gw);
	if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
		gw_fatal("getrandom: %s", strerror(errno));
	snprintf(gw->id_prefix, sizeof(gw->id_prefix), "sgw%02x%02x%02x%02x", rnd[0], rnd[1],
		 rnd[2], rnd[3]);

	gw->base = event_base_new();
	if (!gw->base)
		gw_fatal("event_base_new failed");
	xmpp_initialize();
	gw->xctx = xmpp_ctx_new(NULL, &gw_strophe_log);
	if (!gw->xctx)
		gw_fatal("xmpp_ctx_new failed");
	gw->reactor = reactor_new(gw->base);
	if (!gw->reactor)
		goto fail;

	/* one component stream per distinct component domain */
	gw->links = gw_xcalloc(conf->npeers, sizeof(*gw->links));
	for (size_t i = 0; i < conf->npeers; i++) {
		if (gw_link_for_component(gw, conf->peers[i]->component))
			continue;
		gw->links[gw->nlinks] = xmpp_link_new(gw->base, gw->xctx, conf,
						      conf->peers[i]->component, &link_cbs, gw);
		if (!gw->links[gw->nlinks])
			goto fail;	/* its TLS context could not be made: logged */
		gw->nlinks++;
	}
	if (audit_open(conf) != 0)
		goto fail;
	gw->presence = presence_new(gw);
	if (!gw->presence)
		goto fail;
	gw->sip = sip_stack_new(gw->reactor, conf, &sip_cbs, gw);
	if (!gw->sip)
		goto fail;
	gw->pager = pager_new(gw);
	gw->sessions = sessions_new(gw);
	if (!gw->sessions)
		goto fail;
	gw->groupchat = groupchat_new(gw);
	presence_start(gw->presence);
	gw_health_start(gw);

	gw->sig_ev[0] = evsignal_new(gw->base, SIGTERM, gw_signal_cb, gw);
	gw->sig_ev[1] = evsignal_new(gw->base, SIGINT, gw_signal_cb, gw);
	gw->sig_ev[2] = evsignal_new(gw->base, SIGHUP, gw_signal_cb, gw);
	gw->drain_ev = evtimer_new(gw->base, gw_drain_cb, gw);
	gw->trim_ev = event_new(gw->base, -1, EV_PERSIST, gw_trim_cb, gw);
	if (!gw->trim_ev || event_add(gw->trim_ev, &trim_tv) != 0)
		gw_fatal("cannot install the housekeeping timer");
	for (size_t i = 0; i < sizeof(gw->sig_ev) / sizeof(gw->sig_ev[0]); i++)
		if (!gw->sig_ev[i] || evsignal_add(gw->sig_ev[i], NULL) != 0)
			gw_fatal("cannot install signal events");
	if (!gw->drain_ev)
		gw_fatal("cannot create the drain timer");
	return gw;
fail:
	gw_free(gw);
	return NULL;
}

int gw_run(struct gw *gw)
{
	log_notice("simplegw serving %s towards SIP with %zu peer network(s)",
		   gw->conf->xmpp_domain, gw->conf->npeers);
	for (size_t i = 0; i < gw->nlinks; i++)
		xmpp_link_start(gw->links[i]);
	if (event_base_dispatch(gw->base) < 0) {
		log_error("event loop failed");
		return 1;
	}
	return gw->exit_status;
}

void gw_free(struct gw *gw)
{
	if (!gw)
		return;
	for (size_t i = 0; i < sizeof(gw->sig_ev) / sizeof(gw->sig_ev[0]); i++)
		if (gw->sig_ev[i])
			event_free(gw->sig_ev[i]);
	if (gw->drain_ev)
		event_free(gw->drain_ev);
	if (gw->trim_ev)
		event_free(gw->trim_ev);
	gw_health_free(gw);
	pager_free(gw->pager);
	groupchat_free(gw->groupchat);	/* before its legs' sessions */
	sessions_free(gw->sessions);	/* before the stack too */
	presence_free(gw->presence);	/* before the stack: it lets go of the stack's objects */
	sip_stack_free(gw->sip);
	for (size_t i = 0; i < gw->nlinks; i++)
		xmpp_link_free(gw->links[i]);
	free(gw->links);
	reactor_free(gw->reactor);
	if (gw->xctx)
		xmpp_ctx_free(gw->xctx);
	xmpp_shutdown();
	if (gw->base)
		event_base_free(gw->base);
	audit_close();
	conf_free(gw->conf);
	free(gw);
}
