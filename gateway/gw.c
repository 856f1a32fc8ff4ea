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
	char digits[20];
	size_t np = strlen(gw->id_prefix), nk = strlen(kind);
	size_t nd = (size_t)(gw_put_uint(digits, ++gw->id_seq) - digits);

	/* as snprintf("%s-%s%llu") wrote it, truncated alike, without its ~1 200 instructions
	 * (one id per SIP -> XMPP message, docs/benchmarks.md) */
	if (len == 0)
		return;
	if (np + 1 + nk + nd >= len) {
		snprintf(buf, len, "%s-%s%.*s", gw->id_prefix, kind, (int)nd, digits);
		return;
	}
	memcpy(buf, gw->id_prefix, np);
	buf[np] = '-';
	memcpy(buf + np + 1, kind, nk);
	memcpy(buf + np + 1 + nk, digits, nd);
	buf[np + 1 + nk + nd] = '\0';
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
		iq_from_xmpp(gw, link, stanza);
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

static int gw_link_is_old(const struct gw *gw, const struct xmpp_link *link)
{
	for (size_t i = 0; i < gw->nold_links; i++)
		if (gw->old_links[i] == link)
			return 1;
	return 0;
}

static void gw_on_link_state(void *arg, struct xmpp_link *link, int up)
{
	struct gw *gw = arg;

	/* every transition passes here (a link stopped for the shutdown, or by a reload that
	 * left its component no peer, is not lost) */
	if (up)
		gw->stats.link_connects++;
	else if (gw->state == GW_RUNNING && !gw_link_is_old(gw, link))
		gw->stats.link_losses++;
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

/* Where the SIP stack counts a peer's requests (sip_stack_set_stats). */
static struct stats_peer *gw_sip_peer_stats(void *arg, const struct conf_peer *peer)
{
	return gw_peer_stats(arg, peer);
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

	h->armed_ms = ms;
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
		/* what a running gateway may take again without dropping anyone: the gateway file
		 * (gw_reload), the TLS certificates (for new connections) and the audit log
		 * (logrotate) */
		log_notice("received SIGHUP: reloading the gateway file and the TLS files, reopening "
			   "the audit log");
		gw_reload(gw, NULL);
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

/* ---- live reload: the gateway file read again (SIGHUP, the admin command).  A file with errors
 * changes nothing.  What a running gateway can take is applied: the peers (added, removed,
 * changed: route, trust, services, limits, TLS requirement, health interval...), <admin>, the
 * log level and <im>.  What it cannot (the listening sockets, the component link's server and
 * secret, the store...) is reported as needing a restart and left as it was.  A peer that
 * remains keeps its address in memory (conf->peers holds pointers), its dialogs, sessions and
 * counters; a removed one's end with their users told, and it is kept readable ("retired")
 * until the gateway is freed, for whatever still finishes with it. */

struct reload_text {
	char *buf;
	size_t len;
	unsigned errors;
};

static void reload_say(struct reload_text *t, const char *fmt, ...) GW_PRINTF(2, 3);

static void reload_say(struct reload_text *t, const char *fmt, ...)
{
	va_list ap;
	char line[1024];
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n >= sizeof(line))
		n = sizeof(line) - 1;
	t->buf = gw_xrealloc(t->buf, t->len + (size_t)n + 2);
	memcpy(t->buf + t->len, line, (size_t)n);
	t->len += (size_t)n;
	t->buf[t->len++] = '\n';
	t->buf[t->len] = '\0';
}

static void reload_error(void *arg, const char *file, unsigned line, const char *msg)
{
	struct reload_text *t = arg;

	t->errors++;
	if (line)
		reload_say(t, "%s:%u: %s", file, line, msg);
	else
		reload_say(t, "%s: %s", file, msg);
}

enum reload_type { RL_STR, RL_INT, RL_SIZE };

#define RL(what, type, field) { what, type, offsetof(struct conf, field) }
/* What a running gateway cannot take: a change is reported ("restart to apply") and ignored. */
static const struct reload_field {
	const char *what;
	enum reload_type type;
	size_t off;
} reload_fixed[] = {
	RL("<log stderr>", RL_INT, log_stderr),
	RL("<log syslog>", RL_INT, log_syslog),
	RL("<log facility>", RL_INT, log_facility),
	RL("<xmpp domain>", RL_STR, xmpp_domain),
	RL("<xmpp server>", RL_STR, xmpp_server),
	RL("<xmpp port>", RL_INT, xmpp_port),
	RL("<xmpp secret>", RL_STR, secret),
	RL("<xmpp reconnect-min>", RL_INT, reconnect_min_ms),
	RL("<xmpp reconnect-max>", RL_INT, reconnect_max_ms),
	RL("<xmpp max-stanza>", RL_SIZE, max_stanza),
	RL("<xmpp tls>", RL_INT, xmpp_tls),
	RL("<xmpp ca>", RL_STR, xmpp_ca),
	RL("<tls certificate>", RL_STR, tls_cert),
	RL("<tls key>", RL_STR, tls_key),
	RL("<tls ca>", RL_STR, tls_ca),
	RL("<tls verify-depth>", RL_INT, tls_verify_depth),
	RL("<audit file>", RL_STR, audit_file),
	RL("<audit syslog>", RL_INT, audit_syslog),
	RL("<audit content>", RL_INT, audit_content),
	RL("<sip max-message>", RL_SIZE, max_sip_message),
	RL("<sip t1>", RL_INT, sip_t1_ms),
	RL("<sip t4>", RL_INT, sip_t4_ms),
	RL("<sip max-connections>", RL_INT, sip_max_conns),
	RL("<sip max-connections-per-source>", RL_INT, sip_max_conns_per_source),
	RL("<sip tcp-idle>", RL_INT, sip_tcp_idle_ms),
	RL("<presence enabled>", RL_INT, presence_enabled),
	RL("<presence database>", RL_STR, presence_db),
	RL("<presence expires>", RL_INT, presence_expires_s),
	RL("<presence min-expires>", RL_INT, presence_min_expires_s),
	RL("<presence max-expires>", RL_INT, presence_max_expires_s),
	RL("<presence roster-lists>", RL_INT, presence_roster_lists),
	RL("<presence agent>", RL_STR, presence_agent),
	RL("<presence max-per-user>", RL_INT, presence_max_per_user),
	RL("<presence max-pending-per-user>", RL_INT, presence_max_pending_per_user),
	RL("<presence max-per-watcher>", RL_INT, presence_max_per_watcher),
	RL("<presence max-per-peer>", RL_INT, presence_max_per_peer),
	RL("<presence max-watchers>", RL_INT, presence_max_watchers),
	RL("<presence max-subscriptions>", RL_INT, presence_max_subscriptions),
	RL("<presence notify-interval>", RL_INT, presence_notify_interval_ms),
	RL("<presence max-document>", RL_SIZE, presence_max_doc),
	RL("<sessions enabled>", RL_INT, sessions_enabled),
	RL("<sessions msrp-address>", RL_STR, msrp_address),
	RL("<sessions msrp-port>", RL_INT, msrp_port),
	RL("<sessions msrps-port>", RL_INT, msrps_port),
	RL("<sessions relay>", RL_STR, msrp_relay),
	RL("<sessions max-per-user>", RL_INT, sessions_max_per_user),
	RL("<sessions max-total>", RL_INT, sessions_max_total),
	RL("<sessions max-queued>", RL_SIZE, sessions_max_queued),
	RL("<sessions max-message>", RL_SIZE, sessions_max_message),
	RL("<sessions chunk-size>", RL_SIZE, sessions_chunk_size),
	RL("<sessions connect-timeout>", RL_INT, sessions_connect_ms),
	RL("<sessions idle-timeout>", RL_INT, sessions_idle_s),
	RL("<groupchat enabled>", RL_INT, groupchat_enabled),
	RL("<groupchat max-total>", RL_INT, groupchat_max_total),
	RL("<groupchat max-per-room>", RL_INT, groupchat_max_per_room),
	RL("<groupchat max-per-user>", RL_INT, groupchat_max_per_user),
	RL("<groupchat max-rooms>", RL_INT, groupchat_max_rooms),
	RL("<groupchat join-timeout>", RL_INT, groupchat_join_ms),
	RL("<metrics address>", RL_STR, metrics_address),
	RL("<metrics port>", RL_INT, metrics_port),
};

/* What it takes as it is: copied from the new file. */
static const struct reload_field reload_applied[] = {
	RL("<log level>", RL_INT, log_level),
	RL("<im max-body>", RL_SIZE, im_max_body),
	RL("<im delivery-wait>", RL_INT, im_delivery_wait_ms),
	RL("<im barrier-window>", RL_INT, im_barrier_window_ms),
	RL("<im type>", RL_INT, im_type),
	RL("<im verdict>", RL_INT, im_verdict),
};
#undef RL

#define PF(what, type, field) { what, type, offsetof(struct conf_peer, field) }
/* A peer's settings that a reload changes in place (the rest make it a new peer). */
static const struct reload_field reload_peer_fields[] = {
	PF("name", RL_STR, name),
	PF("<route address>", RL_STR, route_address),
	PF("<route port>", RL_INT, route_port),
	PF("<route transport>", RL_INT, route_transport),
	PF("<route options-interval>", RL_INT, options_interval_ms),
	PF("sessions", RL_INT, sessions),
	PF("groupchat", RL_INT, groupchat),
	PF("tls", RL_INT, tls),
	PF("services", RL_INT, services),
	PF("<limits rate>", RL_INT, rate),
	PF("<limits burst>", RL_INT, burst),
	PF("<limits subscriptions>", RL_INT, max_subscriptions),
	PF("<limits sessions>", RL_INT, max_sessions),
	PF("<limits max-document>", RL_SIZE, max_document),
	PF("<limits retry-after>", RL_INT, retry_after_s),
	PF("<authorization refresh>", RL_INT, xcap_refresh_ms),
};

/* ... and those that make it a new peer when they change (its users' dialogs depend on them). */
static const struct reload_field reload_peer_identity[] = {
	PF("component", RL_STR, component),
	PF("addressing", RL_INT, addressing),
	PF("<authorization mode>", RL_INT, authz),
	PF("<authorization xcap-root>", RL_STR, xcap_root),
	PF("<rls xcap-root>", RL_STR, rls_xcap_root),
	PF("<rls service>", RL_STR, rls_service),
};
#undef PF

static int reload_same(const struct reload_field *f, const void *a, const void *b)
{
	const char *pa = (const char *)a + f->off, *pb = (const char *)b + f->off;

	switch (f->type) {
	case RL_STR: {
		const char *sa = *(char *const *)(const void *)pa, *sb = *(char *const *)(const void *)pb;

		return (!sa && !sb) || (sa && sb && strcmp(sa, sb) == 0);
	}
	case RL_INT:
		return memcmp(pa, pb, sizeof(int)) == 0;
	case RL_SIZE:
		return memcmp(pa, pb, sizeof(size_t)) == 0;
	}
	return 0;
}

static int reload_trust_same(const struct conf_peer *a, const struct conf_peer *b)
{
	if (a->ntrust != b->ntrust)
		return 0;
	for (size_t i = 0; i < a->ntrust; i++)
		if (strcmp(a->trust[i].text, b->trust[i].text) != 0)
			return 0;
	return 1;
}

static int reload_listen_same(const struct conf *a, const struct conf *b)
{
	if (a->nlisten != b->nlisten)
		return 0;
	for (size_t i = 0; i < a->nlisten; i++)
		if (a->listen[i].transport != b->listen[i].transport ||
		    a->listen[i].port != b->listen[i].port ||
		    strcmp(a->listen[i].address, b->listen[i].address) != 0)
			return 0;
	return 1;
}

static int reload_strv_same(char *const *a, size_t na, char *const *b, size_t nb)
{
	if (na != nb)
		return 0;
	for (size_t i = 0; i < na; i++)
		if (strcmp(a[i], b[i]) != 0)
			return 0;
	return 1;
}

static int reload_lists_same(const struct conf *a, const struct conf *b)
{
	if (a->nlists != b->nlists)
		return 0;
	for (size_t i = 0; i < a->nlists; i++)
		if (strcmp(a->lists[i].name, b->lists[i].name) != 0 ||
		    !reload_strv_same(a->lists[i].members, a->lists[i].nmembers,
				      b->lists[i].members, b->lists[i].nmembers))
			return 0;
	return 1;
}

/* The remaining peer keep takes from's settings; the strings its identity is made of (equal in
 * both) stay the ones already lent out.  from, left with keep's old settings, is freed with the
 * new file's configuration. */
static void reload_peer_take(struct conf_peer *keep, struct conf_peer *from)
{
	struct conf_peer old = *keep;
	char *nd = from->domain, *nc = from->component, *nx = from->xcap_root;
	char *nr = from->rls_xcap_root, *ns = from->rls_service;

	*keep = *from;
	keep->domain = old.domain;
	keep->component = old.component;
	keep->xcap_root = old.xcap_root;
	keep->rls_xcap_root = old.rls_xcap_root;
	keep->rls_service = old.rls_service;
	*from = old;
	from->domain = nd;
	from->component = nc;
	from->xcap_root = nx;
	from->rls_xcap_root = nr;
	from->rls_service = ns;
}

static int gw_component_used(const struct conf *conf, const char *component)
{
	for (size_t i = 0; i < conf->npeers; i++)
		if (gw_strcaseeq(conf->peers[i]->component, component))
			return 1;
	return 0;
}

static void gw_link_retired(void *arg)
{
}

static const struct xmpp_link_cbs gw_link_cbs = {
	.stanza = gw_on_stanza,
	.state = gw_on_link_state,
	.conflict = gw_on_link_conflict,
	.skipped = gw_on_skipped,
};

static void reload_apply(struct gw *gw, struct conf *nc, struct reload_text *t)
{
	struct conf *c = gw->conf;
	size_t n = nc->npeers, nold = c->npeers;
	struct conf_peer **keep = gw_xcalloc(n, sizeof(*keep));
	struct conf_peer **peers = gw_xcalloc(n, sizeof(*peers));
	size_t *old_index = gw_xcalloc(n, sizeof(*old_index));
	struct gw_peer **rt = gw_xcalloc(n, sizeof(*rt));
	unsigned char *kept = gw_xcalloc(nold ? nold : 1, 1);
	size_t added = 0, removed = 0, changed = 0;

	for (size_t i = 0; i < sizeof(reload_fixed) / sizeof(reload_fixed[0]); i++)
		if (!reload_same(&reload_fixed[i], c, nc))
			reload_say(t, "%s changed: not applied, restart to apply it",
				   reload_fixed[i].what);
	if (!reload_listen_same(c, nc))
		reload_say(t, "<listen> changed: not applied, restart to apply it");
	if (!reload_strv_same(c->muc_services, c->nmuc_services, nc->muc_services,
			      nc->nmuc_services))
		reload_say(t, "<muc> changed: not applied, restart to apply it");
	if (!reload_lists_same(c, nc))
		reload_say(t, "<list> changed: not applied, restart to apply it");

	/* which peers remain: the same domain and the same identity */
	for (size_t j = 0; j < n; j++) {
		const struct conf_peer *np = nc->peers[j];

		old_index[j] = SIZE_MAX;
		for (size_t i = 0; i < nold; i++) {
			const struct conf_peer *op = c->peers[i];
			size_t k;

			if (kept[i] || strcmp(op->domain, np->domain) != 0)
				continue;
			for (k = 0; k < sizeof(reload_peer_identity) / sizeof(reload_peer_identity[0]);
			     k++)
				if (!reload_same(&reload_peer_identity[k], op, np))
					break;
			if (k < sizeof(reload_peer_identity) / sizeof(reload_peer_identity[0])) {
				reload_say(t, "peer %s: %s changed: it is removed and added again",
					   op->name, reload_peer_identity[k].what);
				break;
			}
			keep[j] = c->peers[i];
			old_index[j] = i;
			kept[i] = 1;
			break;
		}
	}

	/* the removed peers' users are told while the peers are still configured */
	for (size_t i = 0; i < nold; i++) {
		struct conf_peer *op = c->peers[i];

		if (kept[i])
			continue;
		removed++;
		reload_say(t, "peer %s (%s) removed: its dialogs and sessions end", op->name,
			   op->domain);
		log_notice("reload: peer %s (%s) removed: ending its dialogs and sessions", op->name,
			   op->domain);
		groupchat_peer_removed(gw->groupchat, op);
		sessions_peer_removed(gw->sessions, op);
		presence_peer_removed(gw->presence, op);
		gw_peer_free(gw->peer_rt[i]);
		gw->peer_rt[i] = NULL;
		op->index = SIZE_MAX;
		gw->retired = gw_xrealloc(gw->retired, (gw->nretired + 1) * sizeof(*gw->retired));
		gw->retired[gw->nretired++] = op;
	}

	/* the new list of peers: the remaining ones updated in place, the new ones taken over */
	for (size_t j = 0; j < n; j++) {
		struct conf_peer *np = nc->peers[j];

		if (keep[j]) {
			unsigned diffs = 0;
			char what[512] = "";
			size_t wl = 0;

			for (size_t k = 0;
			     k < sizeof(reload_peer_fields) / sizeof(reload_peer_fields[0]); k++)
				if (!reload_same(&reload_peer_fields[k], keep[j], np)) {
					diffs++;
					wl += (size_t)snprintf(what + wl, wl < sizeof(what) ?
							       sizeof(what) - wl : 0, "%s%s",
							       wl ? ", " : "",
							       reload_peer_fields[k].what);
					if (wl >= sizeof(what))
						wl = sizeof(what) - 1;
				}
			if (!reload_trust_same(keep[j], np)) {
				diffs++;
				snprintf(what + wl, sizeof(what) - wl, "%s<trust>", wl ? ", " : "");
			}
			if (diffs) {
				changed++;
				reload_say(t, "peer %s: %s changed", np->name, what);
			}
			reload_peer_take(keep[j], np);
			peers[j] = keep[j];
			rt[j] = gw->peer_rt[old_index[j]];
		} else {
			added++;
			reload_say(t, "peer %s (%s) added", np->name, np->domain);
			peers[j] = np;
			nc->peers[j] = NULL;
		}
		peers[j]->index = j;
	}

	/* conf_free(nc) frees what nc->peers still holds: the remaining peers' old settings */
	free(c->peers);
	c->peers = peers;
	c->npeers = n;
	free(gw->peer_rt);
	gw->peer_rt = rt;
	for (size_t j = 0; j < n; j++) {
		if (!rt[j])
			rt[j] = gw_peer_new(gw, peers[j]);
		else if (rt[j]->armed_ms != peers[j]->options_interval_ms)
			gw_health_arm(rt[j]);
		rt[j]->peer = peers[j];
	}

	/* whatever depends on every peer */
	sip_peers_changed(gw->sip, old_index, n);
	presence_peers_changed(gw->presence, old_index, n);
	sessions_peers_changed(gw->sessions);

	/* the scalars a running gateway takes */
	for (size_t i = 0; i < sizeof(reload_applied) / sizeof(reload_applied[0]); i++) {
		const struct reload_field *f = &reload_applied[i];

		if (reload_same(f, c, nc))
			continue;
		reload_say(t, "%s changed", f->what);
		memcpy((char *)c + f->off, (const char *)nc + f->off,
		       f->type == RL_SIZE ? sizeof(size_t) : sizeof(int));
	}
	if (!gw->log_forced)
		log_set_level(c->log_level);
	if (!reload_strv_same(c->admins, c->nadmins, nc->admins, nc->nadmins)) {
		char **a = c->admins;
		size_t na = c->nadmins;

		reload_say(t, "<admin> changed: %zu admin(s)", nc->nadmins);
		c->admins = nc->admins;
		c->nadmins = nc->nadmins;
		nc->admins = a;
		nc->nadmins = na;
	}

	/* component links: one for each component now served, none for one no longer served */
	for (size_t j = 0; j < n; j++) {
		struct xmpp_link *l;

		if (gw_link_for_component(gw, peers[j]->component))
			continue;
		l = xmpp_link_new(gw->base, gw->xctx, c, peers[j]->component, &gw_link_cbs, gw);
		if (!l) {
			reload_say(t, "component %s: its link cannot be made (logged)",
				   peers[j]->component);
			continue;
		}
		gw->links = gw_xrealloc(gw->links, (gw->nlinks + 1) * sizeof(*gw->links));
		gw->links[gw->nlinks++] = l;
		pager_link_added(gw->pager, l);
		xmpp_link_start(l);
		reload_say(t, "component %s: connecting", peers[j]->component);
	}
	for (size_t i = 0; i < gw->nlinks;) {
		struct xmpp_link *l = gw->links[i];

		if (gw_component_used(c, xmpp_link_domain(l))) {
			i++;
			continue;
		}
		reload_say(t, "component %s: no peer left, its link is closed", xmpp_link_domain(l));
		gw->old_links = gw_xrealloc(gw->old_links, (gw->nold_links + 1) *
					    sizeof(*gw->old_links));
		gw->old_links[gw->nold_links++] = l;
		xmpp_link_stop(l, gw_link_retired, gw);
		memmove(&gw->links[i], &gw->links[i + 1], (gw->nlinks - i - 1) * sizeof(*gw->links));
		gw->nlinks--;
	}
	reload_say(t, "reload applied: %zu peer(s), %zu added, %zu removed, %zu changed", n, added,
		   removed, changed);
	free(keep);
	free(old_index);
	free(kept);
}

int gw_reload(struct gw *gw, char **report)
{
	struct reload_text t = { NULL, 0, 0 };
	struct conf *nc;

	if (gw->state != GW_RUNNING) {
		if (report)
			*report = gw_xstrdup("the gateway is shutting down: not reloaded\n");
		return -1;
	}
	nc = conf_load(gw->conf->path, reload_error, &t);
	if (!nc) {
		gw->stats.reloads_failed++;
		reload_say(&t, "%s: %u error%s: nothing changed", gw->conf->path, t.errors,
			   t.errors == 1 ? "" : "s");
		log_error("reload refused:\n%s", t.buf);
		if (report)
			*report = t.buf;
		else
			free(t.buf);
		return -1;
	}
	reload_apply(gw, nc, &t);
	conf_free(nc);
	gw->stats.reloads++;
	log_notice("reload of %s:\n%s", gw->conf->path, t.buf);
	if (report)
		*report = t.buf;
	else
		free(t.buf);
	return 0;
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
	stats_start(&gw->stats, gw_now_ms(gw));
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
						      conf->peers[i]->component, &gw_link_cbs, gw);
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
	sip_stack_set_stats(gw->sip, &gw->stats, gw_sip_peer_stats, gw);
	gw->pager = pager_new(gw);
	gw->sessions = sessions_new(gw);
	if (!gw->sessions)
		goto fail;
	gw->groupchat = groupchat_new(gw);
	if (conf->metrics_address && !(gw->metrics = metrics_new(gw)))
		goto fail;	/* logged: the port is in use, say */
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
	metrics_free(gw->metrics);
	for (size_t i = 0; i < sizeof(gw->sig_ev) / sizeof(gw->sig_ev[0]); i++)
		if (gw->sig_ev[i])
			event_free(gw->sig_ev[i]);
	if (gw->drain_ev)
		event_free(gw->drain_ev);
	if (gw->trim_ev)
		event_free(gw->trim_ev);
	gw_health_free(gw);
	admin_free(gw->admin);
	pager_free(gw->pager);
	groupchat_free(gw->groupchat);	/* before its legs' sessions */
	sessions_free(gw->sessions);	/* before the stack too */
	presence_free(gw->presence);	/* before the stack: it lets go of the stack's objects */
	sip_stack_free(gw->sip);
	for (size_t i = 0; i < gw->nlinks; i++)
		xmpp_link_free(gw->links[i]);
	free(gw->links);
	for (size_t i = 0; i < gw->nold_links; i++)
		xmpp_link_free(gw->old_links[i]);
	free(gw->old_links);
	for (size_t i = 0; i < gw->nretired; i++)
		conf_peer_free(gw->retired[i]);
	free(gw->retired);
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
