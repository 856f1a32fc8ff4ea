/* admin.c - ad-hoc admin commands (XEP-0050, XEP-0133 style) for the JIDs of <admin>.
 *
 * Each command is a row of admin_cmds: its node (ADMIN_NODE "#" verb, as XEP-0133 names its
 * own), its name, a first stage, and for commands that ask something first, a second stage that
 * takes the submitted data form (XEP-0004).  Results are data forms of type 'result' (FORM_TYPE
 * ADMIN_FORM_TYPE) and <note/>s.
 *
 * Only <admin>'s bare JIDs may run them: anyone else gets <forbidden/> whatever they ask, and an
 * empty command list.  A command that shows a form first holds a session (struct admin_sess)
 * between the two stages, keyed by its sessionid and the requester's full JID; at most
 * ADMIN_MAX_SESSIONS are held (a new one pushes out the oldest: clients often leave a form
 * without cancelling it) and each lives ADMIN_SESSION_MS.  A sessionid that is not held (never
 * was, completed, cancelled, expired, or another requester's) is bad-request with XEP-0050's
 * <bad-sessionid/>; a form without the fields asked for is bad-request with <bad-payload/>.
 * The stage that acts (reload, end a session) asks gw_reload() or sessions_end() and says in a
 * <note/> what came of it; each such act is logged with the admin's JID.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include <strophe.h>

#include "../mapping/addr.h"
#include "../mapping/map.h"
#include "../sip/sip.h"
#include "../xmpp/xmpp.h"
#include "gw.h"

#define ADMIN_NODE "urn:simplegw:admin"		/* commands are ADMIN_NODE "#" verb */
#define ADMIN_FORM_TYPE "urn:simplegw:admin"	/* FORM_TYPE of our forms (XEP-0068) */
#define NS_DATA "jabber:x:data"
#define NS_DISCO_INFO "http://jabber.org/protocol/disco#info"
#define ADMIN_MAX_SESSIONS 32		/* command sessions held between stages, all admins */
#define ADMIN_SESSION_MS 600000		/* a session not completed within 10 minutes expires */
#define ADMIN_MAX_OPTIONS 200		/* sessions offered by end-session (the oldest first) */
#define ADMIN_NOTE_MAX 4000		/* bytes of a reload report shown in a note */
#define ADMIN_VALUE_MAX 256		/* bytes of a submitted field value we look at */

/* One request being answered. */
struct admin_req {
	struct gw *gw;
	struct xmpp_link *link;
	xmpp_stanza_t *iq;
	const char *from;		/* the requester's full JID */
	const struct admin_cmd *cmd;
	xmpp_stanza_t *form;		/* the submitted <x type='submit'/>, second stage only */
	char sessionid[64];
};

struct admin_cmd {
	const char *verb;		/* the node is ADMIN_NODE "#" verb */
	const char *name;
	/* First stage: answers r (a completed command, or a form with admin_held()). */
	void (*start)(struct admin_req *r);
	/* Second stage with r->form, or NULL for a single-stage command.  Returns 0 when it
	 * answered r, -1 when the form lacks what it needs (then bad-payload, the session kept). */
	int (*submit)(struct admin_req *r);
};

/* A command between its stages. */
struct admin_sess {
	TAILQ_ENTRY(admin_sess) entry;	/* oldest first */
	char id[64];
	char *requester;		/* full JID */
	const struct admin_cmd *cmd;
	uint64_t started_ms;
};

struct admin {
	TAILQ_HEAD(, admin_sess) sessions;
	size_t nsessions;
	struct log_limit refusal_log;	/* anyone may send commands: refusals are logged within it */
};

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

static struct admin *admin_get(struct gw *gw)
{
	if (!gw->admin) {
		gw->admin = gw_xcalloc(1, sizeof(*gw->admin));
		TAILQ_INIT(&gw->admin->sessions);
	}
	return gw->admin;
}

/* ---------------------------------------------------------------- stanzas */

static xmpp_stanza_t *admin_tag(struct gw *gw, const char *name, const char *ns)
{
	return map_tag(gw->xctx, name, ns);
}

static xmpp_stanza_t *admin_child(struct gw *gw, xmpp_stanza_t *parent, const char *name,
				  const char *ns)
{
	return map_child(gw->xctx, parent, name, ns);
}

static void admin_text_child(struct gw *gw, xmpp_stanza_t *parent, const char *name,
			     const char *text)
{
	map_text_child(gw->xctx, parent, name, text, strlen(text));
}

/* An error for the request: condition (RFC 6120) and, when not NULL, XEP-0050's specific one. */
static void admin_error(struct admin_req *r, const char *condition, const char *specific,
			const char *text)
{
	xmpp_stanza_t *e = map_error_reply(r->gw->xctx, r->iq, condition, text);

	if (specific)
		admin_child(r->gw, xmpp_stanza_get_child_by_name(e, "error"), specific,
			    NS_COMMANDS);
	log_refusal(&admin_get(r->gw)->refusal_log, "admin: %s from %s: %s%s%s",
		    r->cmd ? r->cmd->verb : "command", r->from ? r->from : "-", condition,
		    specific ? "/" : "", specific ? specific : "");
	xmpp_link_send(r->link, e);
	xmpp_stanza_release(e);
}

/* The <command/> of a reply, in status (executing, completed, canceled). */
static xmpp_stanza_t *reply_command(struct admin_req *r, const char *status)
{
	xmpp_stanza_t *c = admin_tag(r->gw, "command", NS_COMMANDS);
	char node[128];

	snprintf(node, sizeof(node), ADMIN_NODE "#%s", r->cmd->verb);
	xmpp_stanza_set_attribute(c, "node", node);
	if (!r->sessionid[0])
		gw_make_id(r->gw, "cmd", r->sessionid, sizeof(r->sessionid));
	xmpp_stanza_set_attribute(c, "sessionid", r->sessionid);
	xmpp_stanza_set_attribute(c, "status", status);
	return c;
}

/* Sends the iq result carrying command (ownership passes). */
static void reply_send(struct admin_req *r, xmpp_stanza_t *command)
{
	xmpp_stanza_t *res = xmpp_iq_new(r->gw->xctx, "result", xmpp_stanza_get_id(r->iq));
	const char *to = xmpp_stanza_get_to(r->iq);

	if (!res)
		gw_fatal("out of memory");
	if (to)
		xmpp_stanza_set_from(res, to);
	xmpp_stanza_set_to(res, r->from);
	xmpp_stanza_add_child_ex(res, command, 0);
	xmpp_link_send(r->link, res);
	xmpp_stanza_release(res);
}

/* A completed command whose result is a note, and the form when not NULL (ownership passes). */
static void reply_done(struct admin_req *r, const char *note_type, const char *note,
		       xmpp_stanza_t *form)
{
	xmpp_stanza_t *c = reply_command(r, "completed");

	if (form)
		xmpp_stanza_add_child_ex(c, form, 0);
	if (note) {
		xmpp_stanza_t *n = admin_child(r->gw, c, "note", NULL), *t = xmpp_stanza_new(r->gw->xctx);

		if (!t || xmpp_stanza_set_text(t, note) != XMPP_EOK)
			gw_fatal("out of memory");
		xmpp_stanza_set_attribute(n, "type", note_type);
		xmpp_stanza_add_child_ex(n, t, 0);
	}
	reply_send(r, c);
}

/* ---------------------------------------------------------------- data forms (XEP-0004) */

static xmpp_stanza_t *form_new(struct gw *gw, const char *type, const char *title,
			       const char *instructions)
{
	xmpp_stanza_t *x = admin_tag(gw, "x", NS_DATA), *f;

	xmpp_stanza_set_attribute(x, "type", type);
	admin_text_child(gw, x, "title", title);
	if (instructions)
		admin_text_child(gw, x, "instructions", instructions);
	f = admin_child(gw, x, "field", NULL);
	xmpp_stanza_set_attribute(f, "var", "FORM_TYPE");
	xmpp_stanza_set_attribute(f, "type", "hidden");
	admin_text_child(gw, f, "value", ADMIN_FORM_TYPE);
	return x;
}

static xmpp_stanza_t *form_field(struct gw *gw, xmpp_stanza_t *x, const char *var,
				 const char *type, const char *label)
{
	xmpp_stanza_t *f = admin_child(gw, x, "field", NULL);

	xmpp_stanza_set_attribute(f, "var", var);
	xmpp_stanza_set_attribute(f, "type", type);
	if (label)
		xmpp_stanza_set_attribute(f, "label", label);
	return f;
}

static void form_text(struct gw *gw, xmpp_stanza_t *x, const char *var, const char *label,
		      const char *value)
{
	admin_text_child(gw, form_field(gw, x, var, "text-single", label), "value", value);
}

static void form_num(struct gw *gw, xmpp_stanza_t *x, const char *var, const char *label,
		     unsigned long long n)
{
	char v[32];

	snprintf(v, sizeof(v), "%llu", n);
	form_text(gw, x, var, label, v);
}

/* A limit: its number, or "unlimited" for 0. */
static void form_limit(struct gw *gw, xmpp_stanza_t *x, const char *var, const char *label,
		       unsigned long long n)
{
	if (n)
		form_num(gw, x, var, label, n);
	else
		form_text(gw, x, var, label, "unlimited");
}

static void field_option(struct gw *gw, xmpp_stanza_t *field, const char *label,
			 const char *value)
{
	xmpp_stanza_t *o = admin_child(gw, field, "option", NULL);

	xmpp_stanza_set_attribute(o, "label", label);
	admin_text_child(gw, o, "value", value);
}

/* The submitted form of a command, or NULL.  XEP-0050 3.4: a requester should only submit, and
 * a responder take type='cancel' as 'submit'; a FORM_TYPE, when given, must be ours. */
static xmpp_stanza_t *form_submitted(struct gw *gw, xmpp_stanza_t *command)
{
	xmpp_stanza_t *x = xmpp_stanza_get_child_by_name_and_ns(command, "x", NS_DATA);
	const char *type = x ? xmpp_stanza_get_type(x) : NULL;

	if (!type || (strcmp(type, "submit") != 0 && strcmp(type, "cancel") != 0))
		return NULL;
	for (xmpp_stanza_t *f = xmpp_stanza_get_children(x); f; f = xmpp_stanza_get_next(f)) {
		const char *var = xmpp_stanza_is_tag(f) ? xmpp_stanza_get_attribute(f, "var") : NULL;
		xmpp_stanza_t *v;
		char *text;
		int ours;

		if (!var || strcmp(var, "FORM_TYPE") != 0)
			continue;
		v = xmpp_stanza_get_child_by_name(f, "value");
		text = v ? xmpp_stanza_get_text(v) : NULL;
		ours = text && strcmp(text, ADMIN_FORM_TYPE) == 0;
		if (text)
			xmpp_free(gw->xctx, text);
		if (!ours)
			return NULL;
	}
	return x;
}

/* The first value of field var in the submitted form, copied to buf; 0, or -1 when the field is
 * absent, empty or longer than the buffer. */
static int form_value(struct admin_req *r, const char *var, char *buf, size_t len)
{
	for (xmpp_stanza_t *f = xmpp_stanza_get_children(r->form); f; f = xmpp_stanza_get_next(f)) {
		const char *v = xmpp_stanza_is_tag(f) ? xmpp_stanza_get_attribute(f, "var") : NULL;
		xmpp_stanza_t *val;
		char *text;
		int ok;

		if (!v || strcmp(v, var) != 0 || strcmp(xmpp_stanza_get_name(f), "field") != 0)
			continue;
		val = xmpp_stanza_get_child_by_name(f, "value");
		text = val ? xmpp_stanza_get_text(val) : NULL;
		ok = text && text[0] && strlen(text) < len;
		if (ok)
			memcpy(buf, text, strlen(text) + 1);
		if (text)
			xmpp_free(r->gw->xctx, text);
		return ok ? 0 : -1;
	}
	return -1;
}

/* ---------------------------------------------------------------- sessions between stages */

static void sess_drop(struct admin *ad, struct admin_sess *s)
{
	TAILQ_REMOVE(&ad->sessions, s, entry);
	ad->nsessions--;
	free(s->requester);
	free(s);
}

static void sess_expire(struct gw *gw, struct admin *ad)
{
	uint64_t now = gw_now_ms(gw);
	struct admin_sess *s;

	while ((s = TAILQ_FIRST(&ad->sessions)) && now - s->started_ms >= ADMIN_SESSION_MS) {
		log_info("admin: %s's session %s (%s) expired", s->requester, s->id, s->cmd->verb);
		sess_drop(ad, s);
	}
}

static struct admin_sess *sess_find(struct admin *ad, const char *id, const char *requester,
				    const struct admin_cmd *cmd)
{
	struct admin_sess *s;

	TAILQ_FOREACH(s, &ad->sessions, entry)
		if (strcmp(s->id, id) == 0 && strcmp(s->requester, requester) == 0 &&
		    s->cmd == cmd)
			return s;
	return NULL;
}

/* Holds r's command between its stages, under the sessionid its reply carries. */
static void admin_held(struct admin_req *r)
{
	struct admin *ad = admin_get(r->gw);
	struct admin_sess *s;

	if (ad->nsessions >= ADMIN_MAX_SESSIONS) {
		s = TAILQ_FIRST(&ad->sessions);
		log_notice("admin: %zu command sessions held: %s's oldest (%s) dropped",
			   ad->nsessions, s->requester, s->cmd->verb);
		sess_drop(ad, s);
	}
	s = gw_xcalloc(1, sizeof(*s));
	if (!r->sessionid[0])
		gw_make_id(r->gw, "cmd", r->sessionid, sizeof(r->sessionid));
	snprintf(s->id, sizeof(s->id), "%s", r->sessionid);
	s->requester = gw_xstrdup(r->from);
	s->cmd = r->cmd;
	s->started_ms = gw_now_ms(r->gw);
	TAILQ_INSERT_TAIL(&ad->sessions, s, entry);
	ad->nsessions++;
}

/* An executing command showing form (ownership passes), whose next step completes it. */
static void reply_form(struct admin_req *r, xmpp_stanza_t *form)
{
	xmpp_stanza_t *c, *actions;

	admin_held(r);
	c = reply_command(r, "executing");
	actions = admin_child(r->gw, c, "actions", NULL);
	xmpp_stanza_set_attribute(actions, "execute", "complete");
	admin_child(r->gw, actions, "complete", NULL);
	xmpp_stanza_add_child_ex(c, form, 0);
	reply_send(r, c);
}

void admin_free(struct admin *ad)
{
	struct admin_sess *s;

	if (!ad)
		return;
	while ((s = TAILQ_FIRST(&ad->sessions)))
		sess_drop(ad, s);
	free(ad);
}

/* ---------------------------------------------------------------- what the commands show */

static const char *const gw_state_names[] = {
	[GW_RUNNING] = "running",
	[GW_DRAINING] = "draining",
	[GW_STOPPING] = "stopping",
	[GW_DONE] = "done",
};

static const char *const dir_names[STATS_NDIR] = {
	[STATS_SIP_TO_XMPP] = "sip-to-xmpp",
	[STATS_XMPP_TO_SIP] = "xmpp-to-sip",
};

static const char *const verdict_names[STATS_NVERDICT] = {
	[STATS_DELIVERED] = "delivered",
	[STATS_FAILED] = "failed",
	[STATS_REFUSED] = "refused",
};

/* Six fields messages-<direction>-<verdict>. */
static void form_messages(struct gw *gw, xmpp_stanza_t *x,
			  unsigned long long m[STATS_NDIR][STATS_NVERDICT])
{
	for (int d = 0; d < STATS_NDIR; d++)
		for (int v = 0; v < STATS_NVERDICT; v++) {
			char var[64], label[80];

			snprintf(var, sizeof(var), "messages-%s-%s", dir_names[d], verdict_names[v]);
			snprintf(label, sizeof(label), "Messages %s, %s",
				 d == STATS_SIP_TO_XMPP ? "SIP to XMPP" : "XMPP to SIP",
				 verdict_names[v]);
			form_num(gw, x, var, label, m[d][v]);
		}
}

/* "up", "down" or "unknown" in word, and a sentence about it in buf. */
static const char *peer_health(struct gw *gw, const struct conf_peer *p, char *buf, size_t len)
{
	const struct gw_peer *h = gw_peer_of(gw, p);
	unsigned long long s = h ? (gw_now_ms(gw) - h->changed_ms) / 1000 : 0;

	if (h && h->up > 0) {
		snprintf(buf, len, "up for %llu s", s);
		return "up";
	}
	if (h && h->up == 0) {
		snprintf(buf, len, "down for %llu s", s);
		return "down";
	}
	snprintf(buf, len, "unknown (%s)", p->options_interval_ms ? "no answer to OPTIONS yet" :
		 "health checks off");
	return "unknown";
}

static const struct {
	unsigned bit;
	const char *name;
} service_names[] = {
	{ CONF_SVC_PAGER, "pager" },
	{ CONF_SVC_PRESENCE, "presence" },
	{ CONF_SVC_SESSIONS, "sessions" },
	{ CONF_SVC_GROUPCHAT, "groupchat" },
};

static void admin_status(struct admin_req *r)
{
	struct gw *gw = r->gw;
	const struct conf *conf = gw->conf;
	xmpp_stanza_t *x = form_new(gw, "result", "Gateway status", NULL), *f;
	size_t up = 0;
	char line[512];

	form_text(gw, x, "state", "State", gw->state <= GW_DONE ? gw_state_names[gw->state] : "?");
	form_num(gw, x, "uptime", "Uptime (seconds)",
		 (gw_now_ms(gw) - gw->stats.started_ms) / 1000);
	f = form_field(gw, x, "links", "text-multi", "Component links");
	for (size_t i = 0; i < gw->nlinks; i++) {
		const struct xmpp_link *l = gw->links[i];
		unsigned retry = xmpp_link_retry_in_ms(l);

		if (xmpp_link_is_up(l)) {
			up++;
			snprintf(line, sizeof(line), "%s: up", xmpp_link_domain(l));
		} else if (retry) {
			snprintf(line, sizeof(line), "%s: down, next attempt in %u ms",
				 xmpp_link_domain(l), retry);
		} else {
			snprintf(line, sizeof(line), "%s: connecting", xmpp_link_domain(l));
		}
		admin_text_child(gw, f, "value", line);
	}
	form_num(gw, x, "links-up", "Component links up", up);
	form_num(gw, x, "link-connects", "Component streams opened", gw->stats.link_connects);
	form_num(gw, x, "link-losses", "Component streams lost", gw->stats.link_losses);
	f = form_field(gw, x, "peers", "text-multi", "Peer networks");
	for (size_t i = 0; i < conf->npeers; i++) {
		const struct conf_peer *p = conf->peers[i];
		char health[96];

		peer_health(gw, p, health, sizeof(health));
		snprintf(line, sizeof(line), "%s (%s): %s", p->name, p->domain, health);
		admin_text_child(gw, f, "value", line);
	}
	form_num(gw, x, "presence-watchers", "XMPP watchers of SIP presentities",
		 gw->presence ? presence_watchers(gw->presence) : 0);
	form_num(gw, x, "presence-presentities", "SIP presentities watched",
		 gw->presence ? presence_presentities(gw->presence) : 0);
	form_num(gw, x, "sip-watchers", "SIP watchers' dialogs",
		 gw->sip ? sip_stack_watches(gw->sip) : 0);
	form_num(gw, x, "sessions", "Chat sessions",
		 gw->sessions ? sessions_count(gw->sessions) : 0);
	form_num(gw, x, "sessions-started", "Chat sessions started", gw->stats.sessions_started);
	form_num(gw, x, "sessions-ended", "Chat sessions ended", gw->stats.sessions_ended);
	form_num(gw, x, "groupchat-occupants", "Bridged room occupants",
		 gw->groupchat ? groupchat_count(gw->groupchat) : 0);
	form_num(gw, x, "groupchat-rooms", "Rooms with SIP occupants",
		 gw->groupchat ? groupchat_rooms(gw->groupchat) : 0);
	form_num(gw, x, "pending-messages", "Messages awaiting their outcome",
		 gw->pager ? pager_pending(gw->pager) : 0);
	form_messages(gw, x, gw->stats.messages);
	form_num(gw, x, "reloads", "Reloads applied", gw->stats.reloads);
	form_num(gw, x, "reloads-failed", "Reloads refused", gw->stats.reloads_failed);
	form_num(gw, x, "store-errors", "State store errors", gw->stats.store_errors);
	log_info("admin: %s asked for the status", r->from);
	reply_done(r, NULL, NULL, x);
}

/* ---- peer statistics: which peer, then its counters, health, limits and services */

static void admin_peer_form(struct admin_req *r)
{
	const struct conf *conf = r->gw->conf;
	xmpp_stanza_t *x, *f;

	if (!conf->npeers) {
		reply_done(r, "info", "No peer networks are configured.", NULL);
		return;
	}
	x = form_new(r->gw, "form", "Peer statistics", "Choose a peer network.");
	f = form_field(r->gw, x, "peer", "list-single", "Peer network");
	admin_child(r->gw, f, "required", NULL);
	admin_text_child(r->gw, f, "value", conf->peers[0]->name);
	for (size_t i = 0; i < conf->npeers; i++) {
		char label[300];

		snprintf(label, sizeof(label), "%s (%s)", conf->peers[i]->name,
			 conf->peers[i]->domain);
		field_option(r->gw, f, label, conf->peers[i]->name);
	}
	reply_form(r, x);
}

static int admin_peer_stats(struct admin_req *r)
{
	struct gw *gw = r->gw;
	const struct conf *conf = gw->conf;
	const struct conf_peer *p = NULL;
	struct gw_peer *h;
	struct sip_peer_usage use;
	xmpp_stanza_t *x;
	char name[ADMIN_VALUE_MAX], buf[300];
	size_t n = 0;

	if (form_value(r, "peer", name, sizeof(name)) != 0)
		return -1;
	for (size_t i = 0; i < conf->npeers && !p; i++)
		if (strcmp(conf->peers[i]->name, name) == 0)
			p = conf->peers[i];
	h = p ? gw_peer_of(gw, p) : NULL;
	if (!h) {	/* not one of the form's options, or a reload removed it meanwhile */
		snprintf(buf, sizeof(buf), "No peer network is named %s.", name);
		reply_done(r, "error", buf, NULL);
		return 0;
	}
	x = form_new(gw, "result", "Peer statistics", NULL);
	form_text(gw, x, "peer", "Peer network", p->name);
	form_text(gw, x, "domain", "SIP domain", p->domain);
	form_text(gw, x, "component", "XMPP component", p->component);
	snprintf(buf, sizeof(buf), "%s%s%s:%u %s", strchr(p->route_address, ':') ? "[" : "",
		 p->route_address, strchr(p->route_address, ':') ? "]" : "", p->route_port,
		 conf_transport_name(p->route_transport));
	form_text(gw, x, "route", "Route", buf);
	form_text(gw, x, "health", "Health", peer_health(gw, p, buf, sizeof(buf)));
	form_text(gw, x, "health-detail", "Health (detail)", buf);
	form_num(gw, x, "health-checks-failed", "Health checks not answered",
		 h->stats.options_failed);
	form_num(gw, x, "requests-in", "SIP requests received", h->stats.requests_in);
	form_num(gw, x, "requests-out", "SIP requests sent", h->stats.requests_out);
	form_num(gw, x, "refused", "Requests refused by its limits and services", h->stats.refused);
	sip_peer_usage(gw->sip, p, &use);
	form_num(gw, x, "subscriptions", "Subscriptions now (watchers' and ours)", use.subscriptions);
	form_num(gw, x, "calls", "INVITE dialogs now (sessions, room legs)", use.calls);
	form_num(gw, x, "limited", "Requests answered 503 for a limit", use.limited);
	form_messages(gw, x, h->stats.messages);
	buf[0] = '\0';
	for (size_t i = 0; i < sizeof(service_names) / sizeof(service_names[0]); i++)
		if (p->services & service_names[i].bit)
			n += (size_t)snprintf(buf + n, sizeof(buf) - n, "%s%s", n ? " " : "",
					      service_names[i].name);
	form_text(gw, x, "services", "Services", n ? buf : "none");
	form_text(gw, x, "tls", "TLS", p->tls == CONF_PEER_TLS_REQUIRED ? "required" : "no");
	form_limit(gw, x, "rate", "Requests per second", p->rate);
	form_limit(gw, x, "burst", "Burst", p->rate ? p->burst : 0);
	form_limit(gw, x, "max-subscriptions", "Subscriptions", p->max_subscriptions);
	form_limit(gw, x, "max-sessions", "Sessions", p->max_sessions);
	form_num(gw, x, "max-document", "Largest document (bytes)", map_doc_limit(conf, p));
	form_num(gw, x, "retry-after", "Retry-After (seconds)", p->retry_after_s);
	log_info("admin: %s asked for peer %s's statistics", r->from, p->name);
	reply_done(r, NULL, NULL, x);
	return 0;
}

/* ---- reload the gateway file */

/* A report longer than ADMIN_NOTE_MAX is cut after a whole line (else on a UTF-8 boundary). */
static void note_cut(char *note)
{
	size_t n = ADMIN_NOTE_MAX - 4;

	if (strlen(note) <= ADMIN_NOTE_MAX)
		return;
	while (n > 0 && note[n] != '\n')
		n--;
	if (!n)
		for (n = ADMIN_NOTE_MAX - 4; n > 0 && ((unsigned char)note[n] & 0xc0) == 0x80; n--)
			;
	memcpy(note + n, "\n...", 5);
}

static void admin_reload(struct admin_req *r)
{
	char *report = NULL, *note;
	int rc;

	log_notice("admin: %s reloads the gateway file", r->from);
	rc = gw_reload(r->gw, &report);
	note = report && report[0] ? report : gw_xstrdup(rc == 0 ? "Reloaded." : "Reload failed.");
	if (note != report)
		free(report);
	note_cut(note);
	for (size_t n = strlen(note); n > 0 && note[n - 1] == '\n'; n--)
		note[n - 1] = '\0';
	reply_done(r, rc == 0 ? "info" : "error", note, NULL);
	free(note);
}

/* ---- end a stuck session: which one, then it ends */

static int info_older_first(const void *a, const void *b)
{
	const struct map_session_info *x = a, *y = b;

	return x->age_ms < y->age_ms ? 1 : x->age_ms > y->age_ms ? -1 : strcmp(x->id, y->id);
}

static void session_label(const struct map_session_info *s, char *buf, size_t len)
{
	snprintf(buf, len, "%s %s <-> %s, %s for %llu s", s->kind == MAP_SESSION_CHAT ? "chat" :
		 "groupchat", s->xmpp, s->sip_uri, s->state, (unsigned long long)(s->age_ms / 1000));
}

/* The open sessions, oldest first (caller frees); *n gets how many. */
static struct map_session_info *sessions_sorted(struct gw *gw, size_t *n)
{
	struct map_session_info *v;

	*n = gw->sessions ? sessions_list(gw->sessions, NULL, 0) : 0;
	if (!*n)
		return NULL;
	v = gw_xcalloc(*n, sizeof(*v));
	*n = sessions_list(gw->sessions, v, *n);	/* the same loop pass: the same sessions */
	qsort(v, *n, sizeof(*v), info_older_first);
	return v;
}

static void admin_end_form(struct admin_req *r)
{
	size_t n;
	struct map_session_info *v = sessions_sorted(r->gw, &n);
	xmpp_stanza_t *x, *f;
	char text[200];

	if (!n) {
		reply_done(r, "info", "No chat sessions or bridged room occupants are open.", NULL);
		return;
	}
	if (n > ADMIN_MAX_OPTIONS)
		snprintf(text, sizeof(text), "Choose the session to end (the %d oldest of %zu).",
			 ADMIN_MAX_OPTIONS, n);
	else
		snprintf(text, sizeof(text), "Choose the session to end.");
	x = form_new(r->gw, "form", "End a session", text);
	f = form_field(r->gw, x, "session", "list-single", "Session");
	admin_child(r->gw, f, "required", NULL);
	for (size_t i = 0; i < n && i < ADMIN_MAX_OPTIONS; i++) {
		char label[MAP_JID_MAX + 600];

		session_label(&v[i], label, sizeof(label));
		field_option(r->gw, f, label, v[i].id);
	}
	free(v);
	reply_form(r, x);
}

static int admin_end_session(struct admin_req *r)
{
	char id[ADMIN_VALUE_MAX], label[MAP_JID_MAX + 600] = "", *note;
	struct map_session_info *v;
	size_t n;

	if (form_value(r, "session", id, sizeof(id)) != 0)
		return -1;
	v = sessions_sorted(r->gw, &n);
	for (size_t i = 0; i < n; i++)
		if (strcmp(v[i].id, id) == 0)
			session_label(&v[i], label, sizeof(label));
	free(v);		/* the labels are copied: the strings go with the session */
	if (!label[0] || sessions_end(r->gw->sessions, id, "ended by the gateway's administrator")
	    != 0) {
		note = gw_xasprintf("No open session has the id %s: it has ended already.", id);
		reply_done(r, "error", note, NULL);
		free(note);
		return 0;
	}
	log_notice("admin: %s ended session %s (%s)", r->from, id, label);
	note = gw_xasprintf("Ended session %s: %s.", id, label);
	reply_done(r, "info", note, NULL);
	free(note);
	return 0;
}

/* ---------------------------------------------------------------- the commands */

static const struct admin_cmd admin_cmds[] = {
	{ "status", "Gateway status", admin_status, NULL },
	{ "peer-stats", "Peer network statistics", admin_peer_form, admin_peer_stats },
	{ "reload", "Reload the gateway file", admin_reload, NULL },
	{ "end-session", "End a chat session", admin_end_form, admin_end_session },
};

#define ADMIN_NCMDS (sizeof(admin_cmds) / sizeof(admin_cmds[0]))

static const struct admin_cmd *admin_cmd_of(const char *node)
{
	size_t plen = strlen(ADMIN_NODE "#");

	if (!node || strncmp(node, ADMIN_NODE "#", plen) != 0)
		return NULL;
	for (size_t i = 0; i < ADMIN_NCMDS; i++)
		if (strcmp(node + plen, admin_cmds[i].verb) == 0)
			return &admin_cmds[i];
	return NULL;
}

/* XEP-0050's actions.  'execute' (the default) and 'next' both mean "the default next step":
 * the first stage without a session, the second with one; 'complete' too, as our second stages
 * are the last; 'prev' is never offered. */
static const char *const admin_actions[] = { "execute", "next", "complete", "prev", "cancel" };

void admin_command(struct gw *gw, struct xmpp_link *link, xmpp_stanza_t *iq,
		   xmpp_stanza_t *command)
{
	struct admin_req r = { gw, link, iq, xmpp_stanza_get_from(iq), NULL, NULL, "" };
	const char *to = xmpp_stanza_get_to(iq), *action = xmpp_stanza_get_attribute(command,
									      "action");
	const char *sid = xmpp_stanza_get_attribute(command, "sessionid");
	struct admin_sess *s;
	size_t a;

	if (!to || strchr(to, '@') || strchr(to, '/')) {
		/* a SIP user's address: commands are the gateway's own */
		admin_error(&r, "service-unavailable", NULL, NULL);
		return;
	}
	if (!admin_allowed(gw, r.from)) {
		admin_error(&r, "forbidden", NULL, NULL);
		return;
	}
	r.cmd = admin_cmd_of(xmpp_stanza_get_attribute(command, "node"));
	if (!r.cmd) {
		admin_error(&r, "item-not-found", NULL, NULL);
		return;
	}
	for (a = 0; a < sizeof(admin_actions) / sizeof(admin_actions[0]); a++)
		if (strcmp(action ? action : "execute", admin_actions[a]) == 0)
			break;
	if (a == sizeof(admin_actions) / sizeof(admin_actions[0])) {
		admin_error(&r, "bad-request", "malformed-action", NULL);
		return;
	}
	action = admin_actions[a];
	if (!sid) {
		if (strcmp(action, "prev") == 0 || strcmp(action, "cancel") == 0) {
			admin_error(&r, "bad-request", "bad-sessionid",
				    "this action continues a session: it needs its sessionid");
			return;
		}
		log_debug("admin: %s runs %s", r.from, r.cmd->verb);
		r.cmd->start(&r);
		return;
	}
	sess_expire(gw, admin_get(gw));
	s = sess_find(admin_get(gw), sid, r.from, r.cmd);
	if (!s) {
		admin_error(&r, "bad-request", "bad-sessionid",
			    "no such session (completed, cancelled, expired, or never begun)");
		return;
	}
	snprintf(r.sessionid, sizeof(r.sessionid), "%s", sid);
	if (strcmp(action, "cancel") == 0) {
		sess_drop(gw->admin, s);
		reply_send(&r, reply_command(&r, "canceled"));
		return;
	}
	if (strcmp(action, "prev") == 0) {
		admin_error(&r, "bad-request", "bad-action", "this command has no previous stage");
		return;
	}
	r.form = form_submitted(gw, command);
	if (!r.form || !r.cmd->submit || r.cmd->submit(&r) != 0) {
		admin_error(&r, "bad-request", "bad-payload",
			    r.form ? "the form lacks a field this command needs" :
			    "a submitted data form (jabber:x:data) is needed");
		return;
	}
	sess_drop(gw->admin, s);	/* the last stage answered: the session is over */
}

void admin_disco_items(struct gw *gw, const char *from, const char *to, xmpp_stanza_t *query)
{
	if (!to || !admin_allowed(gw, from))
		return;
	for (size_t i = 0; i < ADMIN_NCMDS; i++) {
		xmpp_stanza_t *item = admin_child(gw, query, "item", NULL);
		char node[128];

		snprintf(node, sizeof(node), ADMIN_NODE "#%s", admin_cmds[i].verb);
		xmpp_stanza_set_attribute(item, "jid", to);
		xmpp_stanza_set_attribute(item, "node", node);
		xmpp_stanza_set_attribute(item, "name", admin_cmds[i].name);
	}
}

static void disco_identity(struct gw *gw, xmpp_stanza_t *query, const char *type,
			   const char *name)
{
	xmpp_stanza_t *id = admin_child(gw, query, "identity", NULL);

	xmpp_stanza_set_attribute(id, "category", "automation");
	xmpp_stanza_set_attribute(id, "type", type);
	xmpp_stanza_set_attribute(id, "name", name);
}

static void disco_feature(struct gw *gw, xmpp_stanza_t *query, const char *var)
{
	xmpp_stanza_set_attribute(admin_child(gw, query, "feature", NULL), "var", var);
}

int admin_disco_info(struct gw *gw, const char *from, const char *node, xmpp_stanza_t *query)
{
	const struct admin_cmd *cmd;

	if (node && strcmp(node, NS_COMMANDS) == 0) {
		/* the command list itself (XEP-0050 registrar: command-list), empty for others */
		disco_identity(gw, query, "command-list", "Commands");
		disco_feature(gw, query, NS_DISCO_INFO);
		return 1;
	}
	cmd = admin_cmd_of(node);
	if (!cmd || !admin_allowed(gw, from))
		return 0;
	disco_identity(gw, query, "command-node", cmd->name);
	disco_feature(gw, query, NS_DISCO_INFO);
	disco_feature(gw, query, NS_COMMANDS);
	disco_feature(gw, query, NS_DATA);
	return 1;
}
