/* groupchat.c - multi-party chat both ways: XMPP MUC (XEP-0045) <-> SIP/MSRP chat rooms
 * (RFC 7702, RFC 7701 multi-party MSRP, RFC 4575 conference event package).
 *
 * Two kinds of bridged occupant, each a state machine whose state changes only in its
 * enter_state() (which logs `old -> new`), each with one MSRP leg of session.c:
 *
 * struct xocc - an XMPP user in a room the SIP network holds (RFC 7702 sections 4-5).
 *	The user's join presence to room@<peer component>/nick (with the MUC <x/>) INVITEs the
 *	room's URI (the peer's conference focus) with an MSRP chat stream:
 *	  XO_INVITING -(MSRP up)-> XO_NAMING (NICKNAME out) -(200)-> XO_LISTING (SUBSCRIBE
 *	  conference, waiting for the first NOTIFY) -> XO_JOINED -> XO_CLOSED
 *	Entering XO_JOINED sends the occupants (conference-info users) as presence, the user's own
 *	presence with status 110 last, then the subject.  Focus messages (CPIM From = a participant)
 *	become groupchat messages from room/nick; the user's groupchat messages go out as SEND and
 *	are echoed back as a MUC does; CPIM To = one participant <-> private messages.
 *
 * struct socc - a SIP user in a room of an XMPP MUC service (RFC 7702 sections 6-7): the
 *	gateway is the SIP user's conference focus and an occupant of the MUC in their name
 *	(real JID <user as XMPP sees them>/gc-<id>).  The INVITE to sip:room@<muc service> is held
 *	while the gateway joins:
 *	  SO_JOINING (join presence out, INVITE held) -(self-presence)-> SO_CONNECTING (200 with
 *	  SDP, MSRP coming) -(MSRP up)-> SO_JOINED -> SO_CLOSED
 *	A MUC join error refuses the INVITE with the mapped status; NICKNAME renames the occupant
 *	(425 for a conflict); what the MUC sends the occupant goes out as MSRP SENDs in CPIM
 *	(From = the sender's occupant URI sip:room@service;gr=nick, RFC 7247 section 6); SUBSCRIBE
 *	to the room URI (Event: conference) is answered with conference-info documents built from
 *	the MUC's occupant presence (struct mroom, one per room with SIP occupants); kicks, bans and
 *	room destruction end the call with a BYE carrying a Reason.
 *
 * The federation hub: SIP users of several peer networks may share one MUC room; each sees the
 * others only as occupants (sip:room@service;gr=nick, the nickname as display name), never by
 * their SIP URIs or the real JIDs a non-anonymous room shows.  A peer whose <peer services>
 * exclude groupchat gets no INVITE, SUBSCRIBE or REFER from here (sip.c refuses its requests).
 *
 * Nothing a user writes is dropped silently: a message that cannot go is answered with an XMPP
 * error or an MSRP failure status or REPORT.  Limits (total, per room, per user, rooms) come
 * from <groupchat>.  Occupants are freed once per loop pass (reap_ev), never in their own
 * callbacks.  The tables (errors, MUC status codes) are at the top.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <time.h>

#include <event2/event.h>

#include "../gateway/dict.h"
#include "../gateway/gw.h"
#include "../sip/msrp.h"
#include "../sip/sip.h"
#include "../xmpp/xmpp.h"
#include "addr.h"
#include "confinfo.h"
#include "map.h"

#define NS_MUC "http://jabber.org/protocol/muc"
#define NS_MUC_USER "http://jabber.org/protocol/muc#user"
#define NS_MUC_OWNER "http://jabber.org/protocol/muc#owner"
#define NS_DATA "jabber:x:data"
#define NS_DELAY "urn:xmpp:delay"
#define GC_CHATROOM "nickname private-messages"	/* our a=chatroom as a focus (RFC 7701 8) */
#define GC_HISTORY "20"				/* messages of history asked for on a join */
#define GC_LIST_WAIT_MS 3000			/* first conference NOTIFY awaited this long */
#define GC_MAX_CONFINFO (256 * 1024)		/* bytes of a conference-info document */
#define GC_SUB_EXPIRES 3600
#define GC_RESUBSCRIBE_MS 60000			/* a forgotten subscription made again */
#define GC_NICK_BUF 1040			/* a resourcepart is at most 1023 bytes */

/* ---------------------------------------------------------------- tables */

struct status_row {
	int status;
	const char *condition;
};

#define NROWS(t) (sizeof(t) / sizeof((t)[0]))

/* The condition of status's row, or dflt. */
static const char *status_row_find(const struct status_row *rows, size_t n, int status,
				   const char *dflt)
{
	for (size_t i = 0; i < n; i++)
		if (rows[i].status == status)
			return rows[i].condition;
	return dflt;
}

/* A SIP final status of our INVITE to a focus -> the MUC join error (RFC 7702 section 4). */
static const struct status_row invite_error_table[] = {
	{ 401, "registration-required" },
	{ 403, "forbidden" },
	{ 404, "item-not-found" },
	{ 407, "registration-required" },
	{ 408, "remote-server-not-found" },
	{ 410, "item-not-found" },
	{ 480, "recipient-unavailable" },
	{ 484, "item-not-found" },
	{ 486, "service-unavailable" },
	{ 488, "not-acceptable" },
	{ 500, "remote-server-not-found" },
	{ 502, "remote-server-not-found" },
	{ 503, "remote-server-not-found" },
	{ 504, "remote-server-not-found" },
	{ 600, "service-unavailable" },
	{ 603, "forbidden" },
};

const char *map_muc_invite_error(int status)
{
	return status_row_find(invite_error_table, NROWS(invite_error_table), status,
			       status >= 500 ? "remote-server-not-found" : map_error_from_sip(status));
}

/* The answer to our NICKNAME (RFC 7701 5.2) -> the MUC error of the join or nick change. */
static const struct status_row nickname_error_table[] = {
	{ 403, "forbidden" },
	{ 408, "remote-server-timeout" },
	{ 423, "not-acceptable" },
	{ 424, "jid-malformed" },
	{ 425, "conflict" },
	{ 481, "item-not-found" },
	{ 501, "feature-not-implemented" },
};

const char *map_muc_nickname_error(int status)
{
	return status_row_find(nickname_error_table, NROWS(nickname_error_table), status,
			       "not-acceptable");
}

/* A MUC join error (XEP-0045 7.2) -> the SIP status of the held INVITE (RFC 7702 section 6). */
static const struct {
	const char *condition;
	int status;
	const char *phrase;
} join_error_table[] = {
	{ "not-authorized", 403, "Room Password Required" },
	{ "forbidden", 403, "Banned From The Room" },
	{ "registration-required", 403, "Members Only Room" },
	{ "item-not-found", 404, "No Such Room" },
	{ "not-allowed", 404, "Room Creation Not Allowed" },
	{ "not-acceptable", 488, "Nickname Not Acceptable" },
	{ "conflict", 486, "Nickname In Use" },
	{ "service-unavailable", 486, "Room Full" },
	{ "jid-malformed", 484, "Nickname Malformed" },
	{ "remote-server-not-found", 404, "MUC Service Not Found" },
	{ "remote-server-timeout", 504, "MUC Service Timeout" },
};

int map_muc_join_error(const char *condition, const char **phrase)
{
	for (size_t i = 0; condition && i < sizeof(join_error_table) / sizeof(join_error_table[0]);
	     i++)
		if (strcmp(join_error_table[i].condition, condition) == 0) {
			if (phrase)
				*phrase = join_error_table[i].phrase;
			return join_error_table[i].status;
		}
	if (phrase)
		*phrase = "Join Refused";
	return condition ? map_error_to_sip(condition) : 500;
}

/* MUC status codes on a SIP occupant's unavailable self-presence (XEP-0045 15.6) -> the BYE's
 * Reason (RFC 3326): why the SIP user left the room. */
static const struct {
	int code;
	int cause;
	const char *text;
} removal_table[] = {
	{ 301, 403, "banned from the room" },
	{ 307, 200, "kicked from the room" },
	{ 321, 403, "removed: affiliation changed" },
	{ 322, 403, "removed: the room is now members-only" },
	{ 332, 503, "removed: the MUC service is shutting down" },
	{ 333, 500, "removed: technical problem" },
};

int map_muc_removal(int code, const char **text)
{
	for (size_t i = 0; i < sizeof(removal_table) / sizeof(removal_table[0]); i++)
		if (removal_table[i].code == code) {
			if (text)
				*text = removal_table[i].text;
			return removal_table[i].cause;
		}
	return 0;
}

/* ---------------------------------------------------------------- state */

enum xocc_state {
	XO_INVITING,	/* INVITE out, MSRP not up yet */
	XO_NAMING,	/* NICKNAME out */
	XO_LISTING,	/* conference SUBSCRIBE out, first NOTIFY awaited */
	XO_JOINED,
	XO_CLOSED,
};

static const char *const xocc_state_names[] = {
	[XO_INVITING] = "inviting", [XO_NAMING] = "naming", [XO_LISTING] = "listing",
	[XO_JOINED] = "joined", [XO_CLOSED] = "closed",
};

enum socc_state {
	SO_JOINING,	/* join presence out, INVITE held */
	SO_CONNECTING,	/* INVITE answered, MSRP coming */
	SO_JOINED,
	SO_CLOSED,
};

static const char *const socc_state_names[] = {
	[SO_JOINING] = "joining", [SO_CONNECTING] = "connecting", [SO_JOINED] = "joined",
	[SO_CLOSED] = "closed",
};

struct groupchat;

/* An XMPP user in a SIP conference room. */
struct xocc {
	struct groupchat *gc;
	enum xocc_state state;
	char *key;		/* "user full JID\nroom bare JID" */
	char *user;		/* the XMPP user's full JID */
	char *room;		/* the room's bare JID (component domain) */
	char *room_uri;		/* the focus: sip:room@peer */
	char *our_uri;		/* the user as SIP sees them (From of INVITE and SUBSCRIBE) */
	char *nick;		/* the nickname the room knows */
	char *new_nick;		/* a nickname change in flight (NULL: none) */
	const struct conf_peer *peer;
	struct xmpp_link *link;
	struct msess *leg;
	struct croom *cr;	/* the room's shared state */
	struct event *timer;
	LIST_ENTRY(xocc) cr_entry;
	SLIST_ENTRY(xocc) dead_entry;
};

/* A SIP conference room with XMPP occupants: one conference subscription and one copy of its
 * state for all of them (per-occupant copies would cost N * N for a room of N). */
struct croom {
	struct groupchat *gc;
	char *room_uri;		/* the key in gc->crooms */
	char *room;		/* the room's JID */
	const struct conf_peer *peer;
	struct sip_sub *sub;	/* made as one occupant (sub_as), re-made if that one leaves */
	char *sub_as;
	uint64_t resubscribed_ms;	/* when a subscription the focus forgot was made again */
	int listed;		/* the first NOTIFY came, or the subscription failed */
	struct confinfo *conf;	/* the room as the focus last said (NULL: no document yet) */
	struct dict *nicks;	/* participant entity -> nick (char *) shown to the occupants */
	char *subject;		/* the subject last shown */
	LIST_HEAD(, xocc) xoccs;
};

/* One occupant of an XMPP MUC room, as the MUC's presence shows it. */
struct rocc {
	char *nick;
	char *role;
	char *affiliation;
};

/* An XMPP MUC room with SIP occupants; it is the conference SIP watchers subscribe to. */
struct mroom {
	struct groupchat *gc;
	char *jid;		/* room@service */
	char *uri;		/* sip:room@service */
	struct dict *occupants;	/* nick -> struct rocc */
	char *subject;
	unsigned long version;	/* of the conference-info documents */
	struct dict *watches;	/* "%p" -> struct sip_watch */
	size_t nsocc;		/* SIP occupants */
	LIST_HEAD(, socc) soccs;
};

/* A SIP user in an XMPP MUC room. */
struct socc {
	struct groupchat *gc;
	enum socc_state state;
	struct mroom *room;
	char *jid;		/* our occupant's real JID: <SIP user as XMPP sees them>/gc-<id> */
	char *sip_uri;		/* the SIP user (From of the INVITE) */
	char *nick;		/* the nickname in the room (asked for, then as the MUC says) */
	char *new_nick;		/* a NICKNAME being tried */
	int default_nick;	/* nick was not chosen by the user: a conflict may retry */
	const struct conf_peer *peer;
	struct xmpp_link *link;
	struct sip_call *call;	/* held until joined; then the leg owns it */
	char *offer;		/* the INVITE's SDP offer, kept while held */
	size_t offer_len;
	struct msess *leg;
	struct event *timer;
	LIST_ENTRY(socc) room_entry;
	SLIST_ENTRY(socc) dead_entry;
};

/* A MUC's invitation of a SIP user, on its way as a REFER. */
struct ginvite {
	struct groupchat *gc;
	struct sip_outgoing *out;
	struct xmpp_link *link;
	char *room;		/* the room's JID */
	char *invitee;		/* the SIP user's bare JID */
	char *inviter;		/* as the MUC named them, or NULL */
	xmpp_stanza_t *direct;	/* a direct invitation (XEP-0249): bounced if refused */
	LIST_ENTRY(ginvite) entry;
};

struct groupchat {
	struct gw *gw;
	LIST_HEAD(, ginvite) invites;	/* REFERs awaiting their final response */
	struct dict *xoccs;	/* key -> struct xocc */
	struct dict *crooms;	/* room URI -> struct croom */
	struct dict *soccs;	/* real JID -> struct socc */
	struct dict *rooms;	/* room JID -> struct mroom */
	struct dict *per_user;	/* user (bare JID or SIP URI) -> (intptr) rooms joined */
	struct dict *watches;	/* "%p" -> struct mroom, for every conference watcher (the
				 * groupchat itself once its room is gone, until the dialog ends) */
	size_t count;		/* bridged occupants, both kinds */
	SLIST_HEAD(, xocc) dead_x;
	SLIST_HEAD(, socc) dead_s;
	struct event *reap_ev;
	int closing;
	int leaving_all;	/* every occupant is being ended (link lost) */
	struct log_limit refusal_log;
};

/* ---------------------------------------------------------------- helpers */

static xmpp_stanza_t *gc_tag(struct groupchat *gc, const char *name, const char *ns)
{
	return map_tag(gc->gw->xctx, name, ns);
}

static xmpp_stanza_t *gc_child(struct groupchat *gc, xmpp_stanza_t *parent, const char *name,
			       const char *ns)
{
	return map_child(gc->gw->xctx, parent, name, ns);
}

static void gc_text_child(struct groupchat *gc, xmpp_stanza_t *parent, const char *name,
			  const char *text, size_t len)
{
	map_text_child(gc->gw->xctx, parent, name, text, len);
}

static void gc_send(struct xmpp_link *link, xmpp_stanza_t *s)
{
	if (link && xmpp_link_is_up(link))
		xmpp_link_send(link, s);
	xmpp_stanza_release(s);
}

static void gc_bounce(struct groupchat *gc, struct xmpp_link *link, xmpp_stanza_t *stanza,
		      const char *condition, const char *text)
{
	gc_send(link, map_error_reply(gc->gw->xctx, stanza, condition, text));
}

static void gc_arm(struct event *ev, unsigned ms)
{
	struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };

	evtimer_add(ev, &tv);
}

static int gc_is_muc_service(const struct conf *conf, const char *domain)
{
	for (size_t i = 0; i < conf->nmuc_services; i++)
		if (gw_strcaseeq(conf->muc_services[i], domain))
			return 1;
	return 0;
}

static const char *gc_body(xmpp_stanza_t *stanza, const char *name, char **owned)
{
	xmpp_stanza_t *b = xmpp_stanza_get_child_by_name(stanza, name);

	*owned = b ? xmpp_stanza_get_text(b) : NULL;
	return *owned ? *owned : (b ? "" : NULL);
}

/* Per-user room counts (the <groupchat max-per-user> limit). */
static size_t gc_user_rooms(struct groupchat *gc, const char *user)
{
	return (size_t)(uintptr_t)dict_get(gc->per_user, user);
}

static void gc_user_add(struct groupchat *gc, const char *user, int delta)
{
	intptr_t n = (intptr_t)dict_get(gc->per_user, user) + delta;

	if (n <= 0)
		dict_del(gc->per_user, user);
	else
		dict_set(gc->per_user, user, (void *)n);
}

/* "now" as RFC 3339 (CPIM DateTime, RFC 3862). */
static void gc_now_text(char *buf, size_t len)
{
	time_t t = time(NULL);
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* A CPIM header value's formal name, quoted: ", \ escaped, controls dropped. */
static void gc_quote(const char *s, char *buf, size_t len)
{
	size_t o = 0;

	for (; *s && o + 3 < len; s++) {
		unsigned char c = (unsigned char)*s;

		if (c < 0x20 || c == 0x7f)
			continue;
		if (c == '"' || c == '\\')
			buf[o++] = '\\';
		buf[o++] = (char)c;
	}
	buf[o] = '\0';
}

/* A message/cpim wrapper (RFC 3862) around a text/plain body.  Caller frees. */
static char *gc_cpim(const char *from_name, const char *from_uri, const char *to_uri,
		     const char *datetime, const char *subject, const char *body, size_t len,
		     size_t *outlen)
{
	char name[512], now[40], subj[512];
	char *head, *out;
	size_t hl;

	if (!datetime) {
		gc_now_text(now, sizeof(now));
		datetime = now;
	}
	if (from_name)
		gc_quote(from_name, name, sizeof(name));
	if (subject)
		map_header_text(subject, subj, sizeof(subj));
	head = gw_xasprintf("From: %s%s%s<%s>\r\nTo: <%s>\r\nDateTime: %s\r\n%s%s%s\r\n"
			    "Content-Type: text/plain;charset=UTF-8\r\n\r\n",
			    from_name ? "\"" : "", from_name ? name : "", from_name ? "\" " : "",
			    from_uri, to_uri, datetime, subject ? "Subject: " : "",
			    subject ? subj : "", subject ? "\r\n" : "");
	hl = strlen(head);
	out = gw_xrealloc(head, hl + len + 1);
	memcpy(out + hl, body, len);
	out[hl + len] = '\0';
	*outlen = hl + len;
	return out;
}

/* The URI inside a CPIM address ("Name <uri>" or "<uri>"), and its formal name (may be ""). */
static int gc_cpim_addr(const struct map_span *v, char *uri, size_t ulen, char *name,
			size_t nlen)
{
	const char *lt, *gt;
	size_t n;

	uri[0] = name[0] = '\0';
	if (!v->p)
		return -1;
	lt = memchr(v->p, '<', v->n);
	gt = lt ? memchr(lt, '>', v->n - (size_t)(lt - v->p)) : NULL;
	if (!lt || !gt || (size_t)(gt - lt - 1) >= ulen)
		return -1;
	n = (size_t)(gt - lt - 1);
	memcpy(uri, lt + 1, n);
	uri[n] = '\0';
	/* the formal name: a quoted string or the words before '<' */
	{
		const char *p = v->p, *e = lt;
		size_t o = 0;

		while (p < e && *p == ' ')
			p++;
		while (e > p && e[-1] == ' ')
			e--;
		if (e - p >= 2 && *p == '"' && e[-1] == '"') {
			p++, e--;
			for (; p < e && o + 1 < nlen; p++) {
				if (*p == '\\' && p + 1 < e)
					p++;
				name[o++] = *p;
			}
		} else {
			for (; p < e && o + 1 < nlen; p++)
				name[o++] = *p;
		}
		name[o] = '\0';
	}
	return 0;
}

/* The user part of a SIP URI ("bob" of "sip:bob@sip.example"), as written, into buf. */
static void gc_user_part(const char *uri, char *buf, size_t len)
{
	const char *p = strchr(uri, ':'), *e;

	p = p ? p + 1 : uri;
	e = strchr(p, '@');
	snprintf(buf, len, "%.*s", (int)(e ? e - p : (ptrdiff_t)strlen(p)), p);
}

/* A leg's message as text: a message/cpim wrapper parsed into *cpim (*is_cpim 1) and its inner
 * text/plain, or the text/plain body itself.  0, or the MSRP status to refuse it with. */
static int gc_unwrap(const char *ctype, const char *body, size_t len, struct map_cpim *cpim,
		     int *is_cpim, const char **text, size_t *tlen)
{
	*text = body;
	*tlen = len;
	*is_cpim = strncmp(ctype, "message/cpim", 12) == 0;
	if (!*is_cpim)
		return 0;
	if (map_cpim_parse(body, len, cpim) != 0)
		return 400;
	if (cpim->content_type.p && !(cpim->content_type.n >= 10 &&
				      strncasecmp(cpim->content_type.p, "text/plain", 10) == 0))
		return 415;
	*text = cpim->body.p;
	*tlen = cpim->body.n;
	return 0;
}

/* Two SIP URIs name the same participant: compared without parameters, scheme and host
 * case-insensitively. */
static int gc_uri_same(const char *a, const char *b)
{
	size_t na = strcspn(a, ";?>"), nb = strcspn(b, ";?>");

	return na == nb && strncasecmp(a, b, na) == 0;
}

/* The text of a MUC <x xmlns=muc#user> status code list: 1 if code is present. */
static int gc_has_status(xmpp_stanza_t *x, int code)
{
	char want[8];

	snprintf(want, sizeof(want), "%d", code);
	for (xmpp_stanza_t *c = x ? xmpp_stanza_get_children(x) : NULL; c;
	     c = xmpp_stanza_get_next(c)) {
		const char *v;

		if (!xmpp_stanza_is_tag(c) || strcmp(xmpp_stanza_get_name(c), "status") != 0)
			continue;
		v = xmpp_stanza_get_attribute(c, "code");
		if (v && strcmp(v, want) == 0)
			return 1;
	}
	return 0;
}

static void gc_add_status(struct groupchat *gc, xmpp_stanza_t *x, int code)
{
	xmpp_stanza_t *s = gc_child(gc, x, "status", NULL);
	char v[8];

	snprintf(v, sizeof(v), "%d", code);
	xmpp_stanza_set_attribute(s, "code", v);
}

static void reap_cb(evutil_socket_t fd, short what, void *arg);

/* ================================================================ XMPP user -> SIP conference */

static void xocc_close(struct xocc *x, const char *why);

static void xocc_enter_state(struct xocc *x, enum xocc_state state)
{
	if (x->state == state)
		return;
	log_info("groupchat: %s in %s: %s -> %s", x->user, x->room_uri,
		 xocc_state_names[x->state], xocc_state_names[state]);
	x->state = state;
}

/* An occupant presence from room/nick to the user (XEP-0045 7.2.3), available or not. */
static void xocc_presence(struct xocc *x, const char *nick, int available, const char *role,
			  const int *codes, size_t ncodes, const char *new_nick, const char *reason)
{
	struct groupchat *gc = x->gc;
	xmpp_stanza_t *p = gc_tag(gc, "presence", NULL), *mx, *item;
	char *from = gw_xasprintf("%s/%s", x->room, nick);

	xmpp_stanza_set_from(p, from);
	xmpp_stanza_set_to(p, x->user);
	if (!available)
		xmpp_stanza_set_type(p, "unavailable");
	mx = gc_child(gc, p, "x", NS_MUC_USER);
	item = gc_child(gc, mx, "item", NULL);
	xmpp_stanza_set_attribute(item, "affiliation", "none");
	xmpp_stanza_set_attribute(item, "role", available ? role : "none");
	if (new_nick)
		xmpp_stanza_set_attribute(item, "nick", new_nick);
	if (reason)
		gc_text_child(gc, item, "reason", reason, strlen(reason));
	for (size_t i = 0; i < ncodes; i++)
		gc_add_status(gc, mx, codes[i]);
	gc_send(x->link, p);
	free(from);
}

/* The MUC error presence of a failed join or nick change (XEP-0045 7.2.x, 7.6). */
static void xocc_error_presence(struct xocc *x, const char *nick, const char *condition,
				const char *text)
{
	struct groupchat *gc = x->gc;
	xmpp_stanza_t *p = gc_tag(gc, "presence", NULL), *reply;
	char *from = gw_xasprintf("%s/%s", x->room, nick);

	xmpp_stanza_set_from(p, x->user);	/* as if the user's join came back */
	xmpp_stanza_set_to(p, from);
	gc_child(gc, p, "x", NS_MUC);
	reply = map_error_reply(gc->gw->xctx, p, condition, text);
	xmpp_stanza_release(p);
	gc_send(x->link, reply);
	free(from);
}

/* The nickname a conference-info user shows: its display-text, else its first endpoint's,
 * else the user part of its entity. */
static void xocc_user_nick(const struct confinfo_user *u, char *buf, size_t len)
{
	if (u->display_text && u->display_text[0]) {
		snprintf(buf, len, "%s", u->display_text);
		return;
	}
	for (size_t i = 0; i < u->nendpoints; i++)
		if (u->endpoints[i].display_text && u->endpoints[i].display_text[0]) {
			snprintf(buf, len, "%s", u->endpoints[i].display_text);
			return;
		}
	gc_user_part(u->entity, buf, len);
}

/* 1 if room/nick is a JID the XMPP server takes: the nickname comes from the SIP side (a
 * display-text, a CPIM display name) and becomes a resourcepart. */
static int nick_ok(const char *room, const char *nick)
{
	char *jid, bare[MAP_JID_MAX + 1];
	int ok;

	if (!nick[0] || strlen(nick) > 1023)
		return 0;
	jid = gw_xasprintf("%s/%s", room, nick);
	ok = map_jid_bare(jid, bare, sizeof(bare)) >= 0;
	free(jid);
	return ok;
}

static int xocc_user_present(const struct confinfo_user *u)
{
	if (u->state == CONFINFO_DELETED)
		return 0;
	for (size_t i = 0; i < u->nendpoints; i++)
		if (u->endpoints[i].state != CONFINFO_DELETED &&
		    (u->endpoints[i].status == CONFINFO_CONNECTED ||
		     u->endpoints[i].status == CONFINFO_STATUS_NONE ||
		     u->endpoints[i].status == CONFINFO_ON_HOLD ||
		     u->endpoints[i].status == CONFINFO_MUTED_VIA_FOCUS))
			return 1;
	return u->nendpoints == 0;
}

static void free_value(void *arg, const char *key, void *value)
{
	free(value);
}

/* 1 if a participant entity is this occupant's own (or shown under its own nick). */
static int xocc_is_self(const struct xocc *x, const char *entity, const char *nick)
{
	return gc_uri_same(entity, x->our_uri) || (x->nick && strcmp(nick, x->nick) == 0);
}

struct nick_diff {
	struct croom *cr;
	struct dict *other;	/* gone: the new map; new: the old one */
	struct xocc *x;
};

static void diff_gone(void *arg, const char *entity, void *value)
{
	struct nick_diff *d = arg;
	const char *now = dict_get(d->other, entity);
	static const int c303[] = { 303 };

	if (xocc_is_self(d->x, entity, value))
		return;
	if (!now)
		xocc_presence(d->x, value, 0, NULL, NULL, 0, NULL, NULL);
	else if (strcmp(now, value) != 0)
		xocc_presence(d->x, value, 0, NULL, c303, 1, now, NULL);
}

static void diff_new(void *arg, const char *entity, void *value)
{
	struct nick_diff *d = arg;
	const char *was = d->other ? dict_get(d->other, entity) : NULL;

	if (!xocc_is_self(d->x, entity, value) && (!was || strcmp(was, value) != 0))
		xocc_presence(d->x, value, 1, "participant", NULL, 0, NULL, NULL);
}

static void xocc_subject(struct xocc *x)
{
	struct groupchat *gc = x->gc;
	xmpp_stanza_t *m = gc_tag(gc, "message", NULL);
	const char *subject = x->cr->subject ? x->cr->subject : "";
	char id[64];

	xmpp_stanza_set_type(m, "groupchat");
	xmpp_stanza_set_from(m, x->room);
	xmpp_stanza_set_to(m, x->user);
	gw_make_id(gc->gw, "g", id, sizeof(id));
	xmpp_stanza_set_id(m, id);
	gc_text_child(gc, m, "subject", subject, strlen(subject));
	gc_send(x->link, m);
}

/* XO_JOINED: the occupants, our own presence (110) last, then the subject (XEP-0045 7.2). */
static void xocc_joined(struct xocc *x)
{
	static const int c110[] = { 110 };
	struct nick_diff d = { x->cr, NULL, x };

	evtimer_del(x->timer);
	xocc_enter_state(x, XO_JOINED);
	dict_foreach(x->cr->nicks, diff_new, &d);
	xocc_presence(x, x->nick, 1, "participant", c110, 1, NULL, NULL);
	xocc_subject(x);
}

/* The room's state changed (or came): each joined occupant sees what changed, the listing
 * ones join now. */
static void croom_update(struct croom *cr)
{
	struct dict *now = dict_new();
	const char *subject = cr->conf && cr->conf->subject ? cr->conf->subject : "";
	int subject_changed = strcmp(subject, cr->subject ? cr->subject : "") != 0;
	struct xocc *x, *next;

	for (size_t i = 0; cr->conf && i < cr->conf->nusers; i++) {
		const struct confinfo_user *u = &cr->conf->users[i];
		char nick[GC_NICK_BUF];

		if (!xocc_user_present(u))
			continue;
		xocc_user_nick(u, nick, sizeof(nick));
		if (nick_ok(cr->room, nick))	/* else no usable name to show */
			free(dict_set(now, u->entity, gw_xstrdup(nick)));
	}
	for (x = LIST_FIRST(&cr->xoccs); x; x = next) {
		struct nick_diff gone = { cr, now, x }, added = { cr, cr->nicks, x };

		next = LIST_NEXT(x, cr_entry);
		if (x->state != XO_JOINED)
			continue;
		dict_foreach(cr->nicks, diff_gone, &gone);
		dict_foreach(now, diff_new, &added);
	}
	dict_foreach(cr->nicks, free_value, NULL);
	dict_free(cr->nicks);
	cr->nicks = now;
	free(cr->subject);
	cr->subject = gw_xstrdup(subject);
	cr->listed = 1;
	for (x = LIST_FIRST(&cr->xoccs); x; x = next) {
		next = LIST_NEXT(x, cr_entry);
		if (x->state == XO_LISTING)
			xocc_joined(x);
		else if (x->state == XO_JOINED && subject_changed)
			xocc_subject(x);
	}
}

static const struct sip_sub_cbs xsub_cbs;

/* The conference subscription, made as occupant x. */
static void croom_subscribe(struct croom *cr, struct xocc *x)
{
	free(cr->sub_as);
	cr->sub_as = gw_xstrdup(x->our_uri);
	cr->sub = sip_subscribe(cr->gc->gw->sip, cr->peer, x->our_uri, cr->room_uri, "conference",
				CONFINFO_CT, GC_SUB_EXPIRES, 0, &xsub_cbs, cr);
	if (!cr->sub)
		croom_update(cr);	/* shutting down: joined with what is known */
}

static struct croom *croom_get(struct groupchat *gc, const struct conf_peer *peer,
			       const char *room, const char *room_uri)
{
	struct croom *cr = dict_get(gc->crooms, room_uri);

	if (cr)
		return cr;
	cr = gw_xcalloc(1, sizeof(*cr));
	cr->gc = gc;
	cr->room_uri = gw_xstrdup(room_uri);
	cr->room = gw_xstrdup(room);
	cr->peer = peer;
	cr->nicks = dict_new();
	LIST_INIT(&cr->xoccs);
	dict_set(gc->crooms, room_uri, cr);
	return cr;
}

/* Occupant x leaves the room's shared state: the last one ends the subscription; if the
 * subscription was made as x, it is made again as another occupant. */
static void croom_leave(struct croom *cr, struct xocc *x)
{
	struct xocc *o;

	LIST_REMOVE(x, cr_entry);
	x->cr = NULL;
	if (!LIST_EMPTY(&cr->xoccs)) {
		if (!cr->sub || !cr->sub_as || strcmp(cr->sub_as, x->our_uri) != 0 ||
		    cr->gc->closing || cr->gc->leaving_all)
			return;		/* everyone is leaving: no new subscription */
		LIST_FOREACH(o, &cr->xoccs, cr_entry)
			if (o->state == XO_LISTING || o->state == XO_JOINED)
				break;
		if (o && strcmp(o->our_uri, cr->sub_as) == 0)
			return;		/* the same user from another resource: still in */
		sip_sub_end(cr->sub);
		cr->sub = NULL;
		if (o)
			croom_subscribe(cr, o);
		else
			cr->listed = 0;	/* the next to get this far subscribes */
		return;
	}
	if (cr->sub)
		sip_sub_end(cr->sub);
	dict_del(cr->gc->crooms, cr->room_uri);
	dict_foreach(cr->nicks, free_value, NULL);
	dict_free(cr->nicks);
	confinfo_free(cr->conf);
	free(cr->room_uri);
	free(cr->room);
	free(cr->sub_as);
	free(cr->subject);
	free(cr);
}

/* The nick a participant URI shows in the room (NULL: none known). */
static const char *croom_nick_of(struct croom *cr, const char *uri, char *buf, size_t len)
{
	const char *known = dict_get(cr->nicks, uri);

	for (size_t i = 0; !known && cr->conf && i < cr->conf->nusers; i++)
		if (gc_uri_same(cr->conf->users[i].entity, uri)) {
			xocc_user_nick(&cr->conf->users[i], buf, len);
			known = buf;
		}
	return known;
}

struct nick_find {
	const char *nick;
	const char *entity;
};

static void nick_find_cb(void *arg, const char *entity, void *value)
{
	struct nick_find *f = arg;

	if (!f->entity && strcmp(value, f->nick) == 0)
		f->entity = entity;
}

/* The participant entity shown as nick (NULL: nobody). */
static const char *croom_entity_of(struct croom *cr, const char *nick)
{
	struct nick_find f = { nick, NULL };

	dict_foreach(cr->nicks, nick_find_cb, &f);
	return f.entity;
}

/* Ends it: BYE unless already over; the user hears nothing more here. */
static void xocc_close(struct xocc *x, const char *why)
{
	struct groupchat *gc = x->gc;

	if (x->state == XO_CLOSED)
		return;
	log_info("groupchat: %s leaves %s (%s)", x->user, x->room_uri, why);
	xocc_enter_state(x, XO_CLOSED);
	evtimer_del(x->timer);
	if (x->cr)
		croom_leave(x->cr, x);
	if (x->leg) {
		sessions_leg_end(x->leg, 0, NULL);
		x->leg = NULL;
	}
	dict_del(gc->xoccs, x->key);
	{
		char bare[MAP_JID_MAX + 1];

		if (map_jid_bare(x->user, bare, sizeof(bare)) >= 0)
			gc_user_add(gc, bare, -1);
	}
	gc->count--;
	SLIST_INSERT_HEAD(&gc->dead_x, x, dead_entry);
	event_active(gc->reap_ev, EV_TIMEOUT, 0);
}

/* Removed by the SIP side (BYE, failure): unavailable self-presence with a status. */
static void xocc_removed(struct xocc *x, int code, const char *reason)
{
	int codes[2] = { 110, code };

	if (x->state == XO_JOINED)
		xocc_presence(x, x->nick, 0, NULL, codes, code ? 2 : 1, NULL, reason);
	xocc_close(x, reason ? reason : "removed");
}

static void xocc_free(struct xocc *x)
{
	evtimer_del(x->timer);
	event_free(x->timer);
	free(x->key);
	free(x->user);
	free(x->room);
	free(x->room_uri);
	free(x->our_uri);
	free(x->nick);
	free(x->new_nick);
	free(x);
}

static void xocc_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct xocc *x = arg;

	if (x->state == XO_LISTING) {
		/* no conference state from the focus yet: joined with what we know */
		log_info("groupchat: %s: no conference-info from %s within %u ms", x->user,
			 x->room_uri, GC_LIST_WAIT_MS);
		xocc_joined(x);
		return;
	}
	if (x->state == XO_INVITING || x->state == XO_NAMING) {
		xocc_error_presence(x, x->nick, "remote-server-timeout", "the conference focus did "
				    "not answer in time");
		xocc_close(x, "join timeout");
	} else if (x->state == XO_JOINED && x->new_nick) {
		xocc_error_presence(x, x->new_nick, "remote-server-timeout", "the conference focus did "
				    "not answer the nickname change");
		free(x->new_nick);
		x->new_nick = NULL;
	}
}

/* ---- the conference subscription (RFC 4575), one per room */

static int xsub_notify(void *arg, struct sip_sub *sub, const struct sip_notify_info *n)
{
	struct croom *cr = arg;
	struct confinfo *doc = NULL;
	char err[160];

	if (n->state == SIP_SUBSTATE_TERMINATED)
		cr->sub = NULL;	/* the stack ends it after this */
	if (!n->body || !n->content_type)
		return 200;	/* pending, or a body-less NOTIFY */
	if (strcmp(n->content_type, CONFINFO_CT) != 0)
		return 415;
	/* the peer's <limits max-document> when it has one, else the bound for rooms */
	if (confinfo_parse(n->body, n->body_len,
			   cr->peer->max_document ? cr->peer->max_document : GC_MAX_CONFINFO,
			   cr->gc->gw->conf->groupchat_max_per_room + 1, &doc, err,
			   sizeof(err)) != 0) {
		log_notice("groupchat: conference-info from %s (subscribed as %s) refused: %s",
			   cr->room_uri, cr->sub_as ? cr->sub_as : "-", err);
		return 400;
	}
	if (!cr->conf || doc->state == CONFINFO_FULL) {
		if (doc->state != CONFINFO_FULL) {
			confinfo_free(doc);
			if (cr->sub)
				sip_sub_refresh(cr->sub);
			return 200;
		}
		confinfo_free(cr->conf);
		cr->conf = doc;
		doc = NULL;
	} else if (confinfo_merge(cr->conf, doc, err, sizeof(err)) < 0) {
		log_info("groupchat: conference-info of %s not applied (%s): asking for full state",
			 cr->room_uri, err);
		if (cr->sub)
			sip_sub_refresh(cr->sub);
	}
	confinfo_free(doc);
	croom_update(cr);
	return 200;
}

static void xsub_ended(void *arg, struct sip_sub *sub, int status, const char *reason,
		       unsigned retry_after)
{
	struct croom *cr = arg;
	uint64_t now = gw_now_ms(cr->gc->gw);
	struct xocc *x;

	cr->sub = NULL;
	log_info("groupchat: conference subscription to %s over (%d %s)", cr->room_uri, status,
		 reason ? reason : "");
	if (!cr->listed) {
		croom_update(cr);	/* a focus without the conference package */
		return;
	}
	/* the focus forgot it (481: a restart, or it removed the subscription after a NOTIFY we
	 * refused, RFC 6665 4.2.2): made again as a joined occupant, at most once a minute */
	if (status == 481 && (!cr->resubscribed_ms ||
			      now - cr->resubscribed_ms >= GC_RESUBSCRIBE_MS)) {
		LIST_FOREACH(x, &cr->xoccs, cr_entry)
			if (x->state == XO_JOINED)
				break;
		if (x) {
			cr->resubscribed_ms = now;
			croom_subscribe(cr, x);
		}
	}
}

static const struct sip_sub_cbs xsub_cbs = { xsub_notify, xsub_ended, NULL };

/* ---- the leg */

static void xleg_active(void *arg, struct msess *leg)
{
	struct xocc *x = arg;

	if (x->state == XO_INVITING)
		xocc_enter_state(x, XO_NAMING);	/* the NICKNAME went out on activation */
}

static int xleg_message(void *arg, struct msess *leg, const char *ctype, const char *body,
			size_t len, char *stanza_id, size_t idlen)
{
	struct xocc *x = arg;
	struct groupchat *gc = x->gc;
	char uri[1024], name[GC_NICK_BUF], nick[GC_NICK_BUF], to[1024], tname[GC_NICK_BUF];
	const char *text, *type = "groupchat", *from_nick = NULL;
	size_t tlen;
	struct map_cpim cpim;
	xmpp_stanza_t *m;
	int is_cpim, status;
	char *from;

	if (x->state != XO_JOINED)
		return 403;
	if ((status = gc_unwrap(ctype, body, len, &cpim, &is_cpim, &text, &tlen)) != 0)
		return status;
	if (is_cpim) {
		if (gc_cpim_addr(&cpim.from, uri, sizeof(uri), name, sizeof(name)) == 0) {
			const char *known = croom_nick_of(x->cr, uri, nick, sizeof(nick));

			if (!known && name[0])
				known = name;
			if (!known) {
				gc_user_part(uri, nick, sizeof(nick));
				known = nick;
			}
			from_nick = nick_ok(x->room, known) ? known : NULL;
			if (gc_uri_same(uri, x->our_uri))
				return 200;	/* our own message back: the gateway echoed it */
		}
		if (gc_cpim_addr(&cpim.to, to, sizeof(to), tname, sizeof(tname)) == 0 &&
		    !gc_uri_same(to, x->room_uri))
			type = "chat";	/* private (RFC 7701 7.1): to this participant only */
	}
	m = gc_tag(gc, "message", NULL);
	xmpp_stanza_set_type(m, type);
	from = from_nick && from_nick[0] ? gw_xasprintf("%s/%s", x->room, from_nick) :
	       gw_xstrdup(x->room);
	xmpp_stanza_set_from(m, from);
	free(from);
	xmpp_stanza_set_to(m, x->user);
	gw_make_id(gc->gw, "g", stanza_id, idlen);
	xmpp_stanza_set_id(m, stanza_id);
	gc_text_child(gc, m, "body", text, tlen);
	if (strcmp(type, "chat") == 0)
		gc_child(gc, m, "x", NS_MUC_USER);	/* XEP-0045 7.5: a private message */
	gc_send(x->link, m);
	return 200;
}

static int xleg_nickname(void *arg, struct msess *leg, const char *nick)
{
	return 501;	/* we are the participant: a focus does not name us */
}

static void xleg_nickname_answered(void *arg, struct msess *leg, int status)
{
	struct xocc *x = arg;

	if (x->state == XO_NAMING || x->state == XO_INVITING) {
		if (status != 200) {
			xocc_error_presence(x, x->nick, map_muc_nickname_error(status),
					    "the conference focus refused the nickname");
			xocc_close(x, "nickname refused");
			return;
		}
		xocc_enter_state(x, XO_LISTING);
		if (x->cr->listed) {
			xocc_joined(x);		/* the room's state is known already */
			return;
		}
		gc_arm(x->timer, GC_LIST_WAIT_MS);
		if (!x->cr->sub)
			croom_subscribe(x->cr, x);
		return;
	}
	if (x->state == XO_JOINED && x->new_nick) {
		char *want = x->new_nick;

		evtimer_del(x->timer);
		x->new_nick = NULL;
		if (status == 200) {
			static const int c303[] = { 110, 303 }, c110[] = { 110 };

			xocc_presence(x, x->nick, 0, NULL, c303, 2, want, NULL);
			free(x->nick);
			x->nick = want;
			xocc_presence(x, x->nick, 1, "participant", c110, 1, NULL, NULL);
			return;
		}
		xocc_error_presence(x, want, map_muc_nickname_error(status),
				    "the conference focus refused the nickname");
		free(want);
	}
}

static void xleg_ended(void *arg, struct msess *leg, int status, const char *why)
{
	struct xocc *x = arg;

	x->leg = NULL;
	if (x->state == XO_JOINED) {
		xocc_removed(x, 307, why && why[0] ? why : "the conference ended the session");
		return;
	}
	if (status >= 300)
		xocc_error_presence(x, x->nick, map_muc_invite_error(status), why);
	else
		xocc_error_presence(x, x->nick, "remote-server-not-found", why);
	xocc_close(x, why ? why : "ended");
}

static const struct sess_leg_cbs xleg_cbs = {
	xleg_active, xleg_message, xleg_nickname, xleg_nickname_answered, xleg_ended,
};

/* ---- from the XMPP user */

static struct xocc *xocc_find(struct groupchat *gc, const char *user, const char *room)
{
	char *key = gw_xasprintf("%s\n%s", user, room);
	struct xocc *x = dict_get(gc->xoccs, key);

	free(key);
	return x;
}

/* A join presence to room/nick: the INVITE goes out. */
static void xocc_join(struct groupchat *gc, struct xmpp_link *link, xmpp_stanza_t *stanza,
		      const struct conf_peer *peer, const char *room, const char *room_uri,
		      const char *nick)
{
	const struct conf *conf = gc->gw->conf;
	const char *user = xmpp_stanza_get_from(stanza);
	char bare[MAP_JID_MAX + 1], our_uri[MAP_URI_MAX];
	struct xocc *x;

	if (map_jid_bare(user, bare, sizeof(bare)) < 0 ||
	    map_jid_to_sip(user, 0, our_uri, sizeof(our_uri)) < 0) {
		gc_bounce(gc, link, stanza, "jid-malformed", NULL);
		return;
	}
	if (gc->closing || !conf->groupchat_enabled || !peer->groupchat) {
		gc_bounce(gc, link, stanza, "service-unavailable", gc->closing ?
			  "the gateway is shutting down" : "groupchat with this network is not enabled");
		return;
	}
	if (!sip_peer_allows(peer, CONF_SVC_GROUPCHAT)) {
		char *text = gw_xasprintf("the peer network %s does not accept groupchat through this "
					  "gateway", peer->name);

		log_refusal(&gc->refusal_log, "groupchat: %s may not join %s: peer %s does not take "
			    "groupchat", user, room_uri, peer->name);
		gc_bounce(gc, link, stanza, "service-unavailable", text);
		free(text);
		return;
	}
	if (gc->count >= conf->groupchat_max_total ||
	    gc_user_rooms(gc, bare) >= conf->groupchat_max_per_user) {
		gc_bounce(gc, link, stanza, "resource-constraint", "too many rooms");
		return;
	}
	if (nick[0] == '\0' || strlen(nick) > MSRP_NICKNAME_MAX) {
		gc_bounce(gc, link, stanza, "jid-malformed", "bad nickname");
		return;
	}
	x = gw_xcalloc(1, sizeof(*x));
	x->gc = gc;
	x->state = XO_INVITING;
	x->user = gw_xstrdup(user);
	x->room = gw_xstrdup(room);
	x->key = gw_xasprintf("%s\n%s", user, room);
	x->room_uri = gw_xstrdup(room_uri);
	x->our_uri = gw_xstrdup(our_uri);
	x->nick = gw_xstrdup(nick);
	x->peer = peer;
	x->link = link;
	x->cr = croom_get(gc, peer, room, room_uri);
	LIST_INSERT_HEAD(&x->cr->xoccs, x, cr_entry);
	x->timer = evtimer_new(gc->gw->base, xocc_timer_cb, x);
	if (!x->timer)
		gw_fatal("evtimer_new failed");
	dict_set(gc->xoccs, x->key, x);
	gc_user_add(gc, bare, 1);
	gc->count++;
	log_info("groupchat: %s joins %s as \"%s\"", user, room_uri, nick);
	x->leg = sessions_leg_invite(gc->gw->sessions, peer, our_uri, room_uri, user, &xleg_cbs, x);
	if (!x->leg) {
		xocc_error_presence(x, nick, "service-unavailable", "sessions are not available");
		xocc_close(x, "no leg");
		return;
	}
	sessions_leg_nickname(x->leg, nick);
	gc_arm(x->timer, conf->groupchat_join_ms);
}

static int xocc_from_presence(struct groupchat *gc, struct xmpp_link *link, xmpp_stanza_t *stanza,
			      const struct conf_peer *peer, const char *room, const char *room_uri)
{
	const char *type = xmpp_stanza_get_type(stanza), *to = xmpp_stanza_get_to(stanza);
	const char *user = xmpp_stanza_get_from(stanza);
	const char *slash = strchr(to, '/');
	const char *nick = slash ? slash + 1 : "";
	struct xocc *x = xocc_find(gc, user, room);
	int muc = xmpp_stanza_get_child_by_name_and_ns(stanza, "x", NS_MUC) != NULL;

	if (!x && !(muc && (!type || strcmp(type, "available") == 0)))
		return 0;	/* not a join, not an occupant: presence.c's */
	if (type && strcmp(type, "error") == 0) {
		if (x)
			xocc_close(x, "the user's client bounced our presence");
		return 1;
	}
	if (type && strcmp(type, "unavailable") == 0) {
		static const int c110[] = { 110 };

		if (x->state == XO_JOINED)
			xocc_presence(x, x->nick, 0, NULL, c110, 1, NULL, NULL);
		xocc_close(x, "the user left");
		return 1;
	}
	if (type) {
		gc_bounce(gc, link, stanza, "bad-request", "not a presence a room takes");
		return 1;
	}
	if (!x) {
		if (!slash) {
			gc_bounce(gc, link, stanza, "jid-malformed", "a join needs a nickname");
			return 1;
		}
		xocc_join(gc, link, stanza, peer, room, room_uri, nick);
		return 1;
	}
	/* an occupant's presence: a nick change, or a status update (nothing to carry) */
	if (slash && x->state == XO_JOINED && strcmp(nick, x->nick) != 0) {
		if (x->new_nick) {
			gc_bounce(gc, link, stanza, "resource-constraint", "a nickname change is pending");
			return 1;
		}
		if (strlen(nick) > MSRP_NICKNAME_MAX) {
			gc_bounce(gc, link, stanza, "jid-malformed", "bad nickname");
			return 1;
		}
		if (sessions_leg_nickname(x->leg, nick) != 0) {
			gc_bounce(gc, link, stanza, "resource-constraint", "a nickname change is pending");
			return 1;
		}
		x->new_nick = gw_xstrdup(nick);
		gc_arm(x->timer, gc->gw->conf->groupchat_join_ms);
	}
	return 1;
}

static int xocc_from_message(struct groupchat *gc, struct xmpp_link *link, xmpp_stanza_t *stanza,
			     const char *room)
{
	const char *type = xmpp_stanza_get_type(stanza), *to = xmpp_stanza_get_to(stanza);
	const char *user = xmpp_stanza_get_from(stanza), *slash = strchr(to, '/');
	struct xocc *x = xocc_find(gc, user, room);
	char *owned = NULL, *subj_owned = NULL, *cpim, *ourid = NULL;
	const char *body, *subject;
	size_t len;
	int priv = slash != NULL;
	char target_uri[1024];

	if (type && strcmp(type, "error") == 0)
		return x != NULL;	/* the user's client bounced a room message: nothing to do */
	if (!x) {
		if (type && strcmp(type, "groupchat") == 0) {
			gc_bounce(gc, link, stanza, "not-acceptable", "you are not in this room");
			return 1;
		}
		return 0;
	}
	body = gc_body(stanza, "body", &owned);
	subject = gc_body(stanza, "subject", &subj_owned);
	if (x->state != XO_JOINED) {
		gc_bounce(gc, link, stanza, "not-acceptable", "not in the room yet");
		goto out;
	}
	if (!body) {
		if (subject)
			gc_bounce(gc, link, stanza, "forbidden", "the SIP conference's subject cannot "
				  "be changed from here");
		goto out;	/* a chat state or receipt: nothing for the room */
	}
	if (strlen(body) > gc->gw->conf->sessions_max_message) {
		gc_bounce(gc, link, stanza, "policy-violation", "the message body is too large");
		goto out;
	}
	if (priv) {
		/* a private message to room/nick: to that participant (RFC 7701 7.1) */
		const char *entity = croom_entity_of(x->cr, slash + 1);

		if (!entity) {
			gc_bounce(gc, link, stanza, "item-not-found", "no such occupant");
			goto out;
		}
		snprintf(target_uri, sizeof(target_uri), "%s", entity);
	} else {
		snprintf(target_uri, sizeof(target_uri), "%s", x->room_uri);
	}
	cpim = gc_cpim(x->nick, x->our_uri, target_uri, NULL, NULL, body, strlen(body), &len);
	if (!xmpp_stanza_get_id(stanza)) {
		char id[64];

		gw_make_id(gc->gw, "g", id, sizeof(id));
		ourid = gw_xstrdup(id);
	}
	if (sessions_leg_send(x->leg, "message/cpim", cpim, len,
			      ourid ? ourid : xmpp_stanza_get_id(stanza), to, user,
			      priv ? "chat" : "groupchat") != 0)
		gc_bounce(gc, link, stanza, "resource-constraint", "the room's session is congested");
	else if (!priv) {
		/* the echo a MUC gives its sender (XEP-0045 7.4) */
		xmpp_stanza_t *echo = xmpp_stanza_copy(stanza);
		char *from = gw_xasprintf("%s/%s", x->room, x->nick);

		xmpp_stanza_set_from(echo, from);
		xmpp_stanza_set_to(echo, user);
		if (ourid)
			xmpp_stanza_set_id(echo, ourid);
		gc_send(link, echo);
		free(from);
	}
	free(cpim);
out:
	free(ourid);
	xmpp_free(gc->gw->xctx, owned);
	xmpp_free(gc->gw->xctx, subj_owned);
	return 1;
}

/* ================================================================ SIP user -> XMPP MUC */

static void socc_close(struct socc *s, int tell_muc, int bye_cause, const char *why);

static void socc_enter_state(struct socc *s, enum socc_state state)
{
	if (s->state == state)
		return;
	log_info("groupchat: %s in %s: %s -> %s", s->sip_uri, s->room->jid,
		 socc_state_names[s->state], socc_state_names[state]);
	s->state = state;
}

/* The occupant URI of a nick in a room: sip:room@service;gr=nick (RFC 7247 section 6). */
static int room_occupant_uri(const struct mroom *r, const char *nick, char *buf, size_t len)
{
	char *jid = gw_xasprintf("%s/%s", r->jid, nick);
	int n = map_jid_to_sip(jid, 1, buf, len);

	free(jid);
	return n;
}

/* The room as a conference-info document: full, or the one occupant that changed. */
struct room_doc {
	struct mroom *r;
	struct confinfo *c;
};

static void room_doc_user(struct confinfo *c, struct mroom *r, const struct rocc *o,
			  enum confinfo_state state)
{
	char uri[MAP_URI_MAX];
	struct confinfo_user *u;

	if (room_occupant_uri(r, o->nick, uri, sizeof(uri)) < 0)
		return;
	c->users = gw_xrealloc(c->users, (c->nusers + 1) * sizeof(*c->users));
	u = &c->users[c->nusers++];
	memset(u, 0, sizeof(*u));
	u->entity = gw_xstrdup(uri);
	u->state = state;
	if (state == CONFINFO_DELETED)
		return;
	u->display_text = gw_xstrdup(o->nick);
	u->endpoints = gw_xcalloc(1, sizeof(*u->endpoints));
	u->nendpoints = 1;
	u->endpoints[0].entity = gw_xstrdup(uri);
	u->endpoints[0].state = CONFINFO_FULL;
	u->endpoints[0].display_text = gw_xstrdup(o->nick);
	u->endpoints[0].status = CONFINFO_CONNECTED;
	u->endpoints[0].joining = CONFINFO_DIALED_IN;
}

static void room_doc_each(void *arg, const char *key, void *value)
{
	struct room_doc *d = arg;

	room_doc_user(d->c, d->r, value, CONFINFO_FULL);
}

static struct confinfo *room_doc(struct mroom *r, int full)
{
	struct confinfo *c = gw_xcalloc(1, sizeof(*c));

	c->entity = gw_xstrdup(r->uri);
	c->state = full ? CONFINFO_FULL : CONFINFO_PARTIAL;
	c->version = r->version;
	c->subject = r->subject ? gw_xstrdup(r->subject) : NULL;
	c->has_users = 1;
	c->users_state = full ? CONFINFO_FULL : CONFINFO_PARTIAL;
	if (full) {
		struct room_doc d = { r, c };

		dict_foreach(r->occupants, room_doc_each, &d);
	}
	return c;
}

struct watch_send {
	const char *doc;
	size_t len;
};

static void watch_send_one(void *arg, const char *key, void *value)
{
	struct watch_send *w = arg;

	sip_watch_notify(value, SIP_SUBSTATE_ACTIVE, NULL, CONFINFO_CT, w->doc, w->len);
}

/* A change of the room: version + 1, one partial document to every watcher (RFC 4575 4.6). */
static void room_notify(struct mroom *r, struct confinfo *c)
{
	struct watch_send w;
	char *doc;

	if (!dict_count(r->watches)) {
		confinfo_free(c);
		return;
	}
	c->version = ++r->version;
	doc = confinfo_build(c, 0, &w.len);
	w.doc = doc;
	dict_foreach(r->watches, watch_send_one, &w);
	free(doc);
	confinfo_free(c);
}

static void room_occupant_set(struct mroom *r, const char *nick, const char *role,
			      const char *affiliation)
{
	struct rocc *o = dict_get(r->occupants, nick);
	struct confinfo *c;

	if (o && strcmp(o->role, role) == 0 && strcmp(o->affiliation, affiliation) == 0)
		return;
	if (!o) {
		o = gw_xcalloc(1, sizeof(*o));
		o->nick = gw_xstrdup(nick);
		dict_set(r->occupants, nick, o);
	} else {
		free(o->role);
		free(o->affiliation);
	}
	o->role = gw_xstrdup(role);
	o->affiliation = gw_xstrdup(affiliation);
	c = room_doc(r, 0);
	room_doc_user(c, r, o, CONFINFO_FULL);
	room_notify(r, c);
}

static void rocc_free(struct rocc *o)
{
	free(o->nick);
	free(o->role);
	free(o->affiliation);
	free(o);
}

static void room_occupant_gone(struct mroom *r, const char *nick)
{
	struct rocc *o = dict_del(r->occupants, nick);
	struct confinfo *c;

	if (!o)
		return;
	c = room_doc(r, 0);
	room_doc_user(c, r, o, CONFINFO_DELETED);
	room_notify(r, c);
	rocc_free(o);
}

static void room_subject(struct mroom *r, const char *subject)
{
	struct confinfo *c;

	if (r->subject && strcmp(r->subject, subject) == 0)
		return;
	free(r->subject);
	r->subject = gw_xstrdup(subject);
	c = room_doc(r, 0);
	c->has_users = 0;
	room_notify(r, c);
}

static struct mroom *room_get(struct groupchat *gc, const char *jid)
{
	struct mroom *r = dict_get(gc->rooms, jid);
	char uri[MAP_URI_MAX];

	if (r)
		return r;
	if (map_jid_to_sip(jid, 0, uri, sizeof(uri)) < 0)
		return NULL;
	r = gw_xcalloc(1, sizeof(*r));
	r->gc = gc;
	r->jid = gw_xstrdup(jid);
	r->uri = gw_xstrdup(uri);
	r->occupants = dict_new();
	r->watches = dict_new();
	LIST_INIT(&r->soccs);
	dict_set(gc->rooms, jid, r);
	return r;
}

static void rocc_free_cb(void *arg, const char *key, void *value)
{
	rocc_free(value);
}

static void watch_end_cb(void *arg, const char *key, void *value)
{
	struct groupchat *gc = arg;

	dict_set(gc->watches, key, gc);	/* ours until watch_ended, roomless */
	sip_watch_notify(value, SIP_SUBSTATE_TERMINATED, "noresource", NULL, NULL, 0);
}

/* The last SIP occupant left: the room's conference is over for its watchers. */
static void room_release(struct mroom *r)
{
	struct groupchat *gc = r->gc;

	if (r->nsocc)
		return;
	dict_foreach(r->watches, watch_end_cb, gc);
	dict_free(r->watches);
	dict_foreach(r->occupants, rocc_free_cb, NULL);
	dict_free(r->occupants);
	dict_del(gc->rooms, r->jid);
	free(r->jid);
	free(r->uri);
	free(r->subject);
	free(r);
}

static void socc_send_presence(struct socc *s, const char *nick, const char *type, int join)
{
	struct groupchat *gc = s->gc;
	xmpp_stanza_t *p = gc_tag(gc, "presence", NULL);
	char *to = gw_xasprintf("%s/%s", s->room->jid, nick);

	xmpp_stanza_set_from(p, s->jid);
	xmpp_stanza_set_to(p, to);
	if (type)
		xmpp_stanza_set_type(p, type);
	if (join) {
		xmpp_stanza_t *x = gc_child(gc, p, "x", NS_MUC), *h = gc_child(gc, x, "history", NULL);

		xmpp_stanza_set_attribute(h, "maxstanzas", GC_HISTORY);
	}
	gc_send(s->link, p);
	free(to);
}

static void socc_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct socc *s = arg;

	if (s->state == SO_JOINING) {
		if (s->call)
			sip_call_refuse(s->call, 480, "MUC Join Timed Out", NULL);
		s->call = NULL;
		socc_close(s, 1, 0, "the MUC did not answer the join in time");
	} else if (s->new_nick) {
		log_info("groupchat: %s: the MUC did not answer the nick change to \"%s\"",
			 s->sip_uri, s->new_nick);
		free(s->new_nick);
		s->new_nick = NULL;
		sessions_leg_nickname_answer(s->leg, 408);
	}
}

/* A message from the SIP user, to the room or (CPIM To = an occupant) privately. */
static int sleg_message(void *arg, struct msess *leg, const char *ctype, const char *body,
			size_t len, char *stanza_id, size_t idlen)
{
	struct socc *s = arg;
	struct groupchat *gc = s->gc;
	const char *text, *type = "groupchat";
	char to_uri[1024], name[256], jid[MAP_JID_MAX + 1];
	size_t tlen;
	struct map_cpim cpim;
	const struct map_span *subject = NULL;
	xmpp_stanza_t *m;
	char *to = NULL;
	int is_cpim, status;

	if (s->state != SO_JOINED)
		return 403;
	if ((status = gc_unwrap(ctype, body, len, &cpim, &is_cpim, &text, &tlen)) != 0)
		return status;
	if (is_cpim) {
		if (cpim.subject.p)
			subject = &cpim.subject;
		if (gc_cpim_addr(&cpim.to, to_uri, sizeof(to_uri), name, sizeof(name)) == 0) {
			/* the room, or privately an occupant: sip:room@service;gr=nick */
			const char *slash;
			char bare[MAP_JID_MAX + 1];

			if (map_sip_to_jid(to_uri, jid, sizeof(jid)) < 0 ||
			    map_jid_bare(jid, bare, sizeof(bare)) < 0 || strcmp(bare, s->room->jid) != 0)
				return 403;	/* neither the room nor one of its occupants */
			slash = strchr(jid, '/');
			if (slash && !dict_get(s->room->occupants, slash + 1))
				return 403;
			if (slash) {
				to = gw_xstrdup(jid);
				type = "chat";
			}
		}
	}
	if (!to)
		to = gw_xstrdup(s->room->jid);
	m = gc_tag(gc, "message", NULL);
	xmpp_stanza_set_type(m, type);
	xmpp_stanza_set_from(m, s->jid);
	xmpp_stanza_set_to(m, to);
	gw_make_id(gc->gw, "g", stanza_id, idlen);
	xmpp_stanza_set_id(m, stanza_id);
	if (subject && tlen == 0 && strcmp(type, "groupchat") == 0)
		/* a CPIM Subject without text: the room's subject (XEP-0045 8.1); the MUC decides
		 * whether this occupant may change it */
		gc_text_child(gc, m, "subject", subject->p, subject->n);
	else
		gc_text_child(gc, m, "body", text, tlen);
	if (strcmp(type, "chat") == 0)
		gc_child(gc, m, "x", NS_MUC_USER);
	gc_send(s->link, m);
	free(to);
	return 200;
}

static int sleg_nickname(void *arg, struct msess *leg, const char *nick)
{
	struct socc *s = arg;

	if (s->state != SO_JOINED && s->state != SO_CONNECTING)
		return 403;
	if (strcmp(nick, s->nick) == 0)
		return 200;
	if (s->new_nick)
		return 403;
	if (dict_get(s->room->occupants, nick))
		return 425;
	s->new_nick = gw_xstrdup(nick);
	socc_send_presence(s, nick, NULL, 0);	/* XEP-0045 7.6: change nickname */
	gc_arm(s->timer, s->gc->gw->conf->groupchat_join_ms);
	return 0;
}

static void sleg_active(void *arg, struct msess *leg)
{
	struct socc *s = arg;

	if (s->state == SO_CONNECTING)
		socc_enter_state(s, SO_JOINED);
}

static void sleg_nickname_answered(void *arg, struct msess *leg, int status)
{
}

static void sleg_ended(void *arg, struct msess *leg, int status, const char *why)
{
	struct socc *s = arg;

	s->leg = NULL;
	socc_close(s, 1, 0, why ? why : "BYE");
}

static const struct sess_leg_cbs sleg_cbs = {
	sleg_active, sleg_message, sleg_nickname, sleg_nickname_answered, sleg_ended,
};

static void scall_answered(void *arg, struct sip_call *call, const char *sdp, size_t len)
{
}

static void scall_ended(void *arg, struct sip_call *call, int status, const char *phrase)
{
	struct socc *s = arg;

	s->call = NULL;	/* CANCEL while held */
	socc_close(s, 1, 0, "the SIP user cancelled");
}

static const struct sip_call_cbs scall_cbs = { scall_answered, scall_ended };

/* Ends a SIP occupant: leaves the MUC (tell_muc), BYE with a Reason (bye_cause) if the call is
 * up, refuses it if still held. */
static void socc_close(struct socc *s, int tell_muc, int bye_cause, const char *why)
{
	struct groupchat *gc = s->gc;
	struct mroom *r = s->room;

	if (s->state == SO_CLOSED)
		return;
	log_info("groupchat: %s leaves %s (%s)", s->sip_uri, r->jid, why);
	if (tell_muc)
		socc_send_presence(s, s->nick, "unavailable", 0);
	socc_enter_state(s, SO_CLOSED);
	evtimer_del(s->timer);
	if (s->call) {
		sip_call_refuse(s->call, 480, "Left The Room", why);
		s->call = NULL;
	}
	if (s->leg) {
		sessions_leg_end(s->leg, bye_cause ? bye_cause : 200, why);
		s->leg = NULL;
	}
	dict_del(gc->soccs, s->jid);
	gc_user_add(gc, s->sip_uri, -1);
	gc->count--;
	LIST_REMOVE(s, room_entry);
	r->nsocc--;
	room_release(r);
	s->room = NULL;
	SLIST_INSERT_HEAD(&gc->dead_s, s, dead_entry);
	event_active(gc->reap_ev, EV_TIMEOUT, 0);
}

static void socc_free(struct socc *s)
{
	evtimer_del(s->timer);
	event_free(s->timer);
	free(s->jid);
	free(s->sip_uri);
	free(s->nick);
	free(s->new_nick);
	free(s->offer);
	free(s);
}

void groupchat_from_sip_invite(struct groupchat *gc, struct sip_call *call,
			       const struct sip_invite_info *info)
{
	const struct conf *conf = gc->gw->conf;
	char room[MAP_JID_MAX + 1], user[MAP_JID_MAX + 1], err[160], id[24], nick[256];
	struct xmpp_link *link;
	struct mroom *r;
	struct socc *s;

	if (gc->closing) {
		sip_call_refuse(call, 503, "Shutting Down", NULL);
		return;
	}
	if (map_sip_to_jid(info->request_uri, room, sizeof(room)) < 0 || !strchr(room, '@') ||
	    strchr(room, '/')) {
		sip_call_refuse(call, 404, "No Such Room", "the room address does not map to a JID");
		return;
	}
	if (map_peer_sip_to_jid(info->peer, info->from_uri, user, sizeof(user)) < 0 ||
	    map_jid_bare(user, user, sizeof(user)) < 0) {
		sip_call_refuse(call, 400, "From Address Not Mappable", NULL);
		return;
	}
	if (!info->body || !info->content_type || strcmp(info->content_type, "application/sdp") ||
	    sessions_offer_check(gc->gw->sessions, info->body, info->body_len, err,
				 sizeof(err)) != 0) {
		sip_call_refuse(call, 488, "Not Acceptable Here", info->body ? err :
				"an SDP offer is required");
		return;
	}
	link = gw_link_for_component(gc->gw, info->peer->component);
	if (!link || !xmpp_link_is_up(link)) {
		sip_call_refuse(call, 503, "XMPP Server Unreachable", NULL);
		return;
	}
	r = dict_get(gc->rooms, room);
	if (gc->count >= conf->groupchat_max_total ||
	    (!r && dict_count(gc->rooms) >= conf->groupchat_max_rooms)) {
		sip_call_refuse(call, 503, "Too Many Groupchat Occupants", NULL);
		return;
	}
	if (r && r->nsocc >= conf->groupchat_max_per_room) {
		sip_call_refuse(call, 486, "Too Many SIP Occupants In This Room", NULL);
		return;
	}
	if (gc_user_rooms(gc, info->from_uri) >= conf->groupchat_max_per_user) {
		sip_call_refuse(call, 486, "Busy Here", "too many rooms for this user");
		return;
	}
	r = room_get(gc, room);
	if (!r) {
		sip_call_refuse(call, 404, "No Such Room", NULL);
		return;
	}
	/* the default nickname: the SIP user part (RFC 7702 section 6) until NICKNAME */
	gc_user_part(info->from_uri, nick, sizeof(nick));
	{
		char un[256];

		if (map_jid_unescape(nick, strlen(nick), un, sizeof(un)) >= 0)
			snprintf(nick, sizeof(nick), "%s", un);
	}
	s = gw_xcalloc(1, sizeof(*s));
	s->gc = gc;
	s->state = SO_JOINING;
	s->room = r;
	msrp_make_id(id, 13);
	s->jid = gw_xasprintf("%s/gc-%s", user, id);
	s->sip_uri = gw_xstrdup(info->from_uri);
	s->nick = gw_xstrdup(nick[0] ? nick : "sip");
	s->default_nick = 1;
	s->peer = info->peer;
	s->link = link;
	s->call = call;
	s->offer = gw_xstrndup(info->body, info->body_len);
	s->offer_len = info->body_len;
	s->timer = evtimer_new(gc->gw->base, socc_timer_cb, s);
	if (!s->timer)
		gw_fatal("evtimer_new failed");
	dict_set(gc->soccs, s->jid, s);
	gc_user_add(gc, s->sip_uri, 1);
	gc->count++;
	LIST_INSERT_HEAD(&r->soccs, s, room_entry);
	r->nsocc++;
	sip_call_hold(call, &scall_cbs, s);
	log_info("groupchat: %s joins %s as \"%s\" (occupant %s)", s->sip_uri, r->jid, s->nick,
		 s->jid);
	socc_send_presence(s, s->nick, NULL, 1);
	gc_arm(s->timer, conf->groupchat_join_ms);
}

/* The join succeeded (self-presence): the INVITE is answered and the leg starts. */
static void socc_joined(struct socc *s)
{
	struct groupchat *gc = s->gc;
	struct sip_call *call = s->call;

	evtimer_del(s->timer);
	s->call = NULL;
	socc_enter_state(s, SO_CONNECTING);
	s->leg = sessions_leg_accept(gc->gw->sessions, call, s->peer, s->sip_uri, s->jid, s->offer,
				     s->offer_len, GC_CHATROOM, &sleg_cbs, s);
	free(s->offer);
	s->offer = NULL;
	if (!s->leg)
		socc_close(s, 1, 0, "the session could not start");
}

/* The owner's form of a new room accepted as it is (XEP-0045 10.1.2, an instant room). */
static void socc_unlock_room(struct socc *s)
{
	struct groupchat *gc = s->gc;
	xmpp_stanza_t *iq = gc_tag(gc, "iq", NULL), *q, *x;
	char id[64];

	gw_make_id(gc->gw, "gq", id, sizeof(id));
	xmpp_stanza_set_type(iq, "set");
	xmpp_stanza_set_id(iq, id);
	xmpp_stanza_set_from(iq, s->jid);
	xmpp_stanza_set_to(iq, s->room->jid);
	q = gc_child(gc, iq, "query", NS_MUC_OWNER);
	x = gc_child(gc, q, "x", NS_DATA);
	xmpp_stanza_set_attribute(x, "type", "submit");
	gc_send(s->link, iq);
}

/* Presence from the MUC to one of our SIP occupants. */
static void socc_on_presence(struct socc *s, xmpp_stanza_t *stanza, const char *nick)
{
	struct groupchat *gc = s->gc;
	struct mroom *r = s->room;
	const char *type = xmpp_stanza_get_type(stanza);
	xmpp_stanza_t *x = xmpp_stanza_get_child_by_name_and_ns(stanza, "x", NS_MUC_USER);
	xmpp_stanza_t *item = x ? xmpp_stanza_get_child_by_name(x, "item") : NULL;
	const char *role = item && xmpp_stanza_get_attribute(item, "role") ?
			   xmpp_stanza_get_attribute(item, "role") : "participant";
	const char *aff = item && xmpp_stanza_get_attribute(item, "affiliation") ?
			  xmpp_stanza_get_attribute(item, "affiliation") : "none";
	int self = gc_has_status(x, 110);

	if (type && strcmp(type, "error") == 0) {
		const char *cond = map_stanza_error_condition(stanza), *phrase;
		int status;

		if (s->new_nick && strcmp(nick, s->new_nick) == 0) {
			/* a nick change refused (XEP-0045 7.6) */
			evtimer_del(s->timer);
			free(s->new_nick);
			s->new_nick = NULL;
			sessions_leg_nickname_answer(s->leg, strcmp(cond, "conflict") == 0 ? 425 :
						     403);
			return;
		}
		if (s->state != SO_JOINING)
			return;
		if (strcmp(cond, "conflict") == 0 && s->default_nick) {
			/* our default nickname is taken: once more with a suffix */
			char id[6], *again;

			msrp_make_id(id, sizeof(id));
			again = gw_xasprintf("%s (%s)", s->nick, id);
			free(s->nick);
			s->nick = again;
			s->default_nick = 0;
			socc_send_presence(s, s->nick, NULL, 1);
			return;
		}
		status = map_muc_join_error(cond, &phrase);
		log_info("groupchat: %s could not join %s: %s -> %d", s->sip_uri, r->jid, cond, status);
		if (s->call)
			sip_call_refuse(s->call, status, phrase, cond);
		s->call = NULL;
		socc_close(s, 0, 0, cond);
		return;
	}
	if (type && strcmp(type, "unavailable") == 0) {
		if (self && gc_has_status(x, 303) && item && xmpp_stanza_get_attribute(item, "nick")) {
			/* our nick change: the new one's presence follows */
			room_occupant_gone(r, nick);
			return;
		}
		if (self || strcmp(nick, s->nick) == 0) {
			xmpp_stanza_t *destroy = x ? xmpp_stanza_get_child_by_name(x, "destroy") : NULL;
			const char *text = "left the room";
			int cause = 200;
			int code = 0;

			for (size_t i = 0; i < sizeof(removal_table) / sizeof(removal_table[0]); i++)
				if (gc_has_status(x, removal_table[i].code)) {
					code = removal_table[i].code;
					cause = map_muc_removal(code, &text);
				}
			if (destroy)
				text = "the room was destroyed", cause = 410;
			if (code || destroy) {
				xmpp_stanza_t *rs = item ? xmpp_stanza_get_child_by_name(item, "reason") :
						    NULL;
				char *rt = rs ? xmpp_stanza_get_text(rs) : NULL;
				char *full = rt && rt[0] ? gw_xasprintf("%s: %s", text, rt) : NULL;

				room_occupant_gone(r, nick);
				socc_close(s, 0, cause, full ? full : text);
				free(full);
				xmpp_free(gc->gw->xctx, rt);
				return;
			}
			room_occupant_gone(r, nick);
			if (s->state != SO_JOINING)
				socc_close(s, 0, 200, text);
			return;
		}
		room_occupant_gone(r, nick);
		return;
	}
	if (type)
		return;
	room_occupant_set(r, nick, role, aff);
	if (!self)
		return;
	if (gc_has_status(x, 201))
		socc_unlock_room(s);
	if (s->new_nick && s->state == SO_JOINED && strcmp(nick, s->nick) != 0) {
		/* our nick change took (the MUC may have adjusted the nickname asked for) */
		evtimer_del(s->timer);
		free(s->nick);
		s->nick = gw_xstrdup(nick);
		free(s->new_nick);
		s->new_nick = NULL;
		sessions_leg_nickname_answer(s->leg, 200);
		return;
	}
	if (strcmp(nick, s->nick) != 0) {
		free(s->nick);
		s->nick = gw_xstrdup(nick);	/* the MUC may change it (status 210) */
	}
	if (s->state == SO_JOINING)
		socc_joined(s);
}

/* A message from the MUC to one of our SIP occupants: an MSRP SEND in CPIM. */
static void socc_on_message(struct socc *s, xmpp_stanza_t *stanza, const char *nick)
{
	struct groupchat *gc = s->gc;
	struct mroom *r = s->room;
	const char *type = xmpp_stanza_get_type(stanza);
	char *owned = NULL, *subj_owned = NULL, *cpim;
	const char *body, *subject, *stamp = NULL;
	char from_uri[MAP_URI_MAX], dt[64];
	xmpp_stanza_t *delay;
	size_t len;

	if (type && strcmp(type, "error") == 0) {
		const char *id = xmpp_stanza_get_id(stanza);

		if (id && s->leg)
			sessions_leg_failed(s->leg, id, map_stanza_error_condition(stanza));
		return;
	}
	body = gc_body(stanza, "body", &owned);
	subject = gc_body(stanza, "subject", &subj_owned);
	if (subject && !body && (!type || strcmp(type, "groupchat") == 0)) {
		room_subject(r, subject);
		if (s->leg && subject[0]) {
			char *text = gw_xasprintf("%s%s set the subject: %s", nick ? nick : "",
						  nick ? "" : "The room", subject);

			cpim = gc_cpim(NULL, r->uri, s->sip_uri, NULL, subject, text, strlen(text),
				       &len);
			sessions_leg_send(s->leg, "message/cpim", cpim, len, NULL, NULL, NULL, NULL);
			free(cpim);
			free(text);
		}
		goto out;
	}
	if (!body || !s->leg)
		goto out;	/* chat states, receipts: no MSRP equivalent here */
	if (nick && type && strcmp(type, "groupchat") == 0 && strcmp(nick, s->nick) == 0 &&
	    !xmpp_stanza_get_child_by_name_and_ns(stanza, "delay", NS_DELAY))
		goto out;	/* our own message echoed: an MSRP focus does not echo */
	delay = xmpp_stanza_get_child_by_name_and_ns(stanza, "delay", NS_DELAY);
	if (delay && (stamp = xmpp_stanza_get_attribute(delay, "stamp"))) {
		snprintf(dt, sizeof(dt), "%s", stamp);
		for (char *q = dt; *q; q++)
			if ((unsigned char)*q < 0x20)
				*q = ' ';
		stamp = dt;
	}
	if (nick) {
		if (room_occupant_uri(r, nick, from_uri, sizeof(from_uri)) < 0)
			goto out;
	} else {
		snprintf(from_uri, sizeof(from_uri), "%s", r->uri);
	}
	/* RFC 7701 7.1: To is the room for the room, the participant for a private message */
	cpim = gc_cpim(nick, from_uri, type && strcmp(type, "groupchat") == 0 ? r->uri : s->sip_uri,
		       stamp, NULL, body, strlen(body), &len);
	if (sessions_leg_send(s->leg, "message/cpim", cpim, len, xmpp_stanza_get_id(stanza),
			      type && strcmp(type, "groupchat") == 0 ? NULL : s->jid,
			      type && strcmp(type, "groupchat") == 0 ? NULL :
			      xmpp_stanza_get_from(stanza), "chat") != 0)
		log_notice("groupchat: message from %s to %s not relayed: the session's queue is full",
			   xmpp_stanza_get_from(stanza), s->sip_uri);
	free(cpim);
out:
	xmpp_free(gc->gw->xctx, owned);
	xmpp_free(gc->gw->xctx, subj_owned);
}

/* ---- conference watchers (RFC 4575): the room as SIP sees it */

void groupchat_from_sip_subscribe(struct groupchat *gc, struct sip_watch *w,
				  const struct sip_subscribe_info *info)
{
	const struct conf *conf = gc->gw->conf;
	char room[MAP_JID_MAX + 1], key[32];
	struct mroom *r;
	struct socc *s;
	struct confinfo *c;
	unsigned expires;
	size_t len;
	char *doc;
	int member = 0;

	if (strcmp(info->event, "conference") != 0) {
		sip_watch_refuse(w, 489, "Bad Event", 0);
		return;
	}
	if (gc->closing) {
		sip_watch_refuse(w, 503, "Shutting Down", 5);
		return;
	}
	if (map_sip_to_jid(info->request_uri, room, sizeof(room)) < 0 || strchr(room, '/') ||
	    !(r = dict_get(gc->rooms, room))) {
		sip_watch_refuse(w, 404, "Not A Room With SIP Occupants", 0);
		return;
	}
	/* the occupant list is for the room's occupants: one of them must be this watcher */
	LIST_FOREACH(s, &r->soccs, room_entry)
		if (gc_uri_same(s->sip_uri, info->from_uri))
			member = 1;
	if (!member) {
		sip_watch_refuse(w, 403, "Not An Occupant Of This Room", 0);
		return;
	}
	snprintf(key, sizeof(key), "%p", (void *)w);
	if (info->expires == 0) {
		dict_set(gc->watches, key, gc);
		sip_watch_accept(w, 0);
		sip_watch_notify(w, SIP_SUBSTATE_TERMINATED, "timeout", NULL, NULL, 0);
		return;
	}
	expires = info->expires < 0 ? conf->presence_max_expires_s : (unsigned)info->expires;
	if (expires < conf->presence_min_expires_s) {
		sip_watch_refuse(w, 423, "Interval Too Brief", conf->presence_min_expires_s);
		return;
	}
	if (expires > conf->presence_max_expires_s)
		expires = conf->presence_max_expires_s;
	dict_set(r->watches, key, w);
	dict_set(gc->watches, key, r);
	sip_watch_accept(w, expires);
	c = room_doc(r, 1);
	doc = confinfo_build(c, 1, &len);
	sip_watch_notify(w, SIP_SUBSTATE_ACTIVE, NULL, CONFINFO_CT, doc, len);
	free(doc);
	confinfo_free(c);
}

int groupchat_watch_ended(struct groupchat *gc, struct sip_watch *w)
{
	char key[32];
	struct mroom *r;

	snprintf(key, sizeof(key), "%p", (void *)w);
	r = dict_del(gc->watches, key);
	if (!r)
		return 0;
	if ((void *)r != (void *)gc)
		dict_del(r->watches, key);
	return 1;
}

int groupchat_watch_refreshed(struct groupchat *gc, struct sip_watch *w)
{
	char key[32];

	snprintf(key, sizeof(key), "%p", (void *)w);
	return dict_get(gc->watches, key) != NULL;
}

int groupchat_owns_uri(const struct groupchat *gc, const char *request_uri)
{
	char domain[MAP_JID_MAX + 1];

	return map_sip_domain(request_uri, domain, sizeof(domain)) >= 0 &&
	       gc_is_muc_service(gc->gw->conf, domain);
}

/* ---- invitations: a MUC's mediated invitation (XEP-0045 7.8.2) of a SIP user becomes a REFER
 * asking the user to INVITE the room (RFC 4579 5.5, RFC 7702); a failure is the invitee's
 * decline (XEP-0045 7.8.2, <decline/>) with the SIP status as its reason. */

static void ginvite_free(struct ginvite *v)
{
	LIST_REMOVE(v, entry);
	if (v->direct)
		xmpp_stanza_release(v->direct);
	free(v->room);
	free(v->invitee);
	free(v->inviter);
	free(v);
}

static void ginvite_decline(struct groupchat *gc, struct xmpp_link *link, const char *room,
			    const char *invitee, const char *inviter, const char *reason)
{
	xmpp_stanza_t *m = gc_tag(gc, "message", NULL), *x, *d;

	xmpp_stanza_set_from(m, invitee);
	xmpp_stanza_set_to(m, room);
	x = gc_child(gc, m, "x", NS_MUC_USER);
	d = gc_child(gc, x, "decline", NULL);
	if (inviter)
		xmpp_stanza_set_attribute(d, "to", inviter);
	gc_text_child(gc, d, "reason", reason, strlen(reason));
	gc_send(link, m);
}

static void ginvite_answered(void *arg, int status, const char *phrase)
{
	struct ginvite *v = arg;

	log_info("groupchat: invitation of %s to %s: REFER answered %d %s", v->invitee, v->room,
		 status, phrase ? phrase : "");
	if (status >= 300) {
		char *reason = gw_xasprintf("SIP %d %s", status, phrase ? phrase : "");

		if (v->direct)
			gc_bounce(v->gc, v->link, v->direct, map_error_from_sip(status), reason);
		else
			ginvite_decline(v->gc, v->link, v->room, v->invitee, v->inviter, reason);
		free(reason);
	}
	ginvite_free(v);
}

/* A message from a MUC room itself (no nick) to a peer user: 1 if it was an invitation. */
static int ginvite_from_muc(struct groupchat *gc, struct xmpp_link *link, xmpp_stanza_t *stanza,
			    const char *room)
{
	const struct conf *conf = gc->gw->conf;
	xmpp_stanza_t *x = xmpp_stanza_get_child_by_name_and_ns(stanza, "x", NS_MUC_USER);
	xmpp_stanza_t *inv = x ? xmpp_stanza_get_child_by_name(x, "invite") : NULL;
	xmpp_stanza_t *rs = inv ? xmpp_stanza_get_child_by_name(inv, "reason") : NULL;
	const char *to = xmpp_stanza_get_to(stanza), *inviter;
	char invitee[MAP_JID_MAX + 1], uri[MAP_URI_MAX], room_uri[MAP_URI_MAX], from_uri[MAP_URI_MAX];
	char domain[MAP_JID_MAX + 1], *reason;
	const struct conf_peer *peer;
	struct ginvite *v;
	int err;

	if (!inv || map_jid_bare(to, invitee, sizeof(invitee)) < 0)
		return 0;
	inviter = xmpp_stanza_get_attribute(inv, "from");
	peer = map_peer_for_jid(conf, xmpp_link_domain(link), invitee, uri, sizeof(uri), &err);
	if (!peer)
		return 0;	/* not one of our SIP users: the pager refuses it */
	if (!conf->groupchat_enabled || !peer->groupchat || gc->closing ||
	    !sip_peer_allows(peer, CONF_SVC_GROUPCHAT) ||
	    map_jid_to_sip(room, 0, room_uri, sizeof(room_uri)) < 0) {
		ginvite_decline(gc, link, room, invitee, inviter, "groupchat with this SIP network is "
				"not enabled");
		return 1;
	}
	/* From: the inviter when one of our users; the inviter's occupant URI (room;gr=nick) when
	 * the room names them by nickname (semi-anonymous rooms); else the room itself */
	if (inviter && map_jid_domain(inviter, domain, sizeof(domain)) >= 0 &&
	    strcmp(domain, conf->xmpp_domain) == 0 &&
	    map_jid_to_sip(inviter, 0, from_uri, sizeof(from_uri)) >= 0)
		;
	else if (!inviter || strncmp(inviter, room, strlen(room)) != 0 ||
		 inviter[strlen(room)] != '/' ||
		 map_jid_to_sip(inviter, 1, from_uri, sizeof(from_uri)) < 0)
		snprintf(from_uri, sizeof(from_uri), "%s", room_uri);
	reason = rs ? xmpp_stanza_get_text(rs) : NULL;
	v = gw_xcalloc(1, sizeof(*v));
	v->gc = gc;
	v->link = link;
	v->room = gw_xstrdup(room);
	v->invitee = gw_xstrdup(invitee);
	v->inviter = inviter ? gw_xstrdup(inviter) : NULL;
	LIST_INSERT_HEAD(&gc->invites, v, entry);
	v->out = sip_send_refer(gc->gw->sip, peer, from_uri, uri, room_uri, reason,
				ginvite_answered, v);
	xmpp_free(gc->gw->xctx, reason);
	if (!v->out) {
		ginvite_decline(gc, link, room, invitee, inviter, "the gateway is shutting down");
		ginvite_free(v);
	} else {
		log_info("groupchat: %s invites %s to %s: REFER", inviter ? inviter : room, uri,
			 room_uri);
	}
	return 1;
}

/* A direct invitation (XEP-0249) from one of our users to a SIP user, to a room of a <muc>
 * service: the same REFER, from the inviter.  1 if it was one. */
static int ginvite_direct(struct groupchat *gc, struct xmpp_link *link, xmpp_stanza_t *stanza)
{
	const struct conf *conf = gc->gw->conf;
	xmpp_stanza_t *x = xmpp_stanza_get_child_by_name_and_ns(stanza, "x", "jabber:x:conference");
	const char *room = x ? xmpp_stanza_get_attribute(x, "jid") : NULL;
	const char *from = xmpp_stanza_get_from(stanza), *to = xmpp_stanza_get_to(stanza);
	const char *reason = x ? xmpp_stanza_get_attribute(x, "reason") : NULL;
	char invitee[MAP_JID_MAX + 1], uri[MAP_URI_MAX], room_uri[MAP_URI_MAX];
	char from_uri[MAP_URI_MAX], domain[MAP_JID_MAX + 1];
	const struct conf_peer *peer;
	struct ginvite *v;
	int err;

	if (!room || !from || !to || xmpp_stanza_get_type(stanza) ||
	    map_jid_bare(to, invitee, sizeof(invitee)) < 0)
		return 0;
	peer = map_peer_for_jid(conf, xmpp_link_domain(link), invitee, uri, sizeof(uri), &err);
	if (!peer)
		return 0;
	if (!conf->groupchat_enabled || !peer->groupchat || gc->closing ||
	    !sip_peer_allows(peer, CONF_SVC_GROUPCHAT)) {
		gc_bounce(gc, link, stanza, "service-unavailable", "groupchat with this SIP network is "
			  "not enabled");
		return 1;
	}
	if (map_jid_domain(room, domain, sizeof(domain)) < 0 || !gc_is_muc_service(conf, domain) ||
	    map_jid_to_sip(room, 0, room_uri, sizeof(room_uri)) < 0 ||
	    map_jid_to_sip(from, 0, from_uri, sizeof(from_uri)) < 0) {
		gc_bounce(gc, link, stanza, "not-acceptable", "not a room of a MUC service the SIP "
			  "network may join");
		return 1;
	}
	v = gw_xcalloc(1, sizeof(*v));
	v->gc = gc;
	v->link = link;
	v->room = gw_xstrdup(room);
	v->invitee = gw_xstrdup(invitee);
	v->direct = xmpp_stanza_copy(stanza);
	LIST_INSERT_HEAD(&gc->invites, v, entry);
	v->out = sip_send_refer(gc->gw->sip, peer, from_uri, uri, room_uri, reason,
				ginvite_answered, v);
	if (!v->out) {
		gc_bounce(gc, link, stanza, "service-unavailable", "the gateway is shutting down");
		ginvite_free(v);
	} else {
		log_info("groupchat: %s invites %s to %s (direct): REFER", from, uri, room_uri);
	}
	return 1;
}

/* ================================================================ dispatch from XMPP */

/* A stanza from a MUC service to one of our SIP occupants. */
static int socc_dispatch(struct groupchat *gc, struct xmpp_link *link, xmpp_stanza_t *stanza,
			 int is_presence, const char *from_domain)
{
	const char *from = xmpp_stanza_get_from(stanza), *to = xmpp_stanza_get_to(stanza);
	char bare[MAP_JID_MAX + 1];
	const char *slash;
	struct socc *s;

	if (!from || !to || !from_domain[0] || !gc_is_muc_service(gc->gw->conf, from_domain) ||
	    map_jid_bare(from, bare, sizeof(bare)) < 0)
		return 0;
	s = dict_get(gc->soccs, to);
	slash = strchr(from, '/');
	if (!s && !slash && !is_presence && ginvite_from_muc(gc, link, stanza, bare))
		return 1;
	if (!s || !s->room || strcmp(s->room->jid, bare) != 0) {
		const char *type = xmpp_stanza_get_type(stanza);

		/* an occupant we do not know (from before a restart): it leaves */
		if (is_presence && !type && slash && strstr(to, "/gc-")) {
			xmpp_stanza_t *p = gc_tag(gc, "presence", NULL);

			xmpp_stanza_set_type(p, "unavailable");
			xmpp_stanza_set_from(p, to);
			xmpp_stanza_set_to(p, from);
			gc_send(link, p);
		}
		return strstr(to, "/gc-") != NULL;
	}
	if (is_presence) {
		if (slash)
			socc_on_presence(s, stanza, slash + 1);
	} else {
		socc_on_message(s, stanza, slash ? slash + 1 : NULL);
	}
	return 1;
}

/* A stanza from an XMPP user (from_local: the sender is of the gateway's XMPP domain) to a
 * room JID of a peer network. */
static int xocc_dispatch(struct groupchat *gc, struct xmpp_link *link, xmpp_stanza_t *stanza,
			 int is_presence, int from_local)
{
	const char *from = xmpp_stanza_get_from(stanza), *to = xmpp_stanza_get_to(stanza);
	const char *type = is_presence ? NULL : xmpp_stanza_get_type(stanza);
	int is_groupchat = type && strcmp(type, "groupchat") == 0;
	char room[MAP_JID_MAX + 1], room_uri[MAP_URI_MAX];
	const struct conf_peer *peer;
	int err;

	if (!from || !to || !from_local)
		return 0;
	/* a message concerns a room only if it is a groupchat one or its sender is an occupant of
	 * the room: a chat message (every pager message) goes on at once, without the room's
	 * address parsed or the peer's mapping */
	if (!is_presence && (!gc->gw->conf->groupchat_enabled ||
			     (!is_groupchat && dict_count(gc->xoccs) == 0)))
		return 0;
	if (map_jid_bare(to, room, sizeof(room)) < 0 || !strchr(room, '@'))
		return 0;
	if (!is_presence && !is_groupchat && !xocc_find(gc, from, room))
		return 0;
	peer = map_peer_for_jid(gc->gw->conf, xmpp_link_domain(link), room, room_uri,
				sizeof(room_uri), &err);
	if (!peer)
		return 0;
	if (is_presence)
		return xocc_from_presence(gc, link, stanza, peer, room, room_uri);
	if (!peer->groupchat || !gc->gw->conf->groupchat_enabled ||
	    !sip_peer_allows(peer, CONF_SVC_GROUPCHAT))
		return 0;	/* no rooms with this peer: the pager refuses a groupchat message */
	return xocc_from_message(gc, link, stanza, room);
}

int groupchat_from_xmpp(struct groupchat *gc, struct xmpp_link *link, xmpp_stanza_t *stanza)
{
	int is_presence = strcmp(xmpp_stanza_get_name(stanza), "presence") == 0;
	const char *from = xmpp_stanza_get_from(stanza);
	char domain[MAP_JID_MAX + 1];
	int from_local;

	/* the sender's domain, parsed once for the three dispatchers ("" if it has none) */
	if (!from || map_jid_domain(from, domain, sizeof(domain)) < 0)
		domain[0] = '\0';
	from_local = domain[0] && strcmp(domain, gc->gw->conf->xmpp_domain) == 0;
	if (!is_presence && from_local && ginvite_direct(gc, link, stanza))
		return 1;
	return socc_dispatch(gc, link, stanza, is_presence, domain) ||
	       xocc_dispatch(gc, link, stanza, is_presence, from_local);
}

/* ================================================================ lifecycle */

static void reap_cb(evutil_socket_t fd, short what, void *arg)
{
	struct groupchat *gc = arg;
	struct xocc *x;
	struct socc *s;

	while ((x = SLIST_FIRST(&gc->dead_x))) {
		SLIST_REMOVE_HEAD(&gc->dead_x, dead_entry);
		xocc_free(x);
	}
	while ((s = SLIST_FIRST(&gc->dead_s))) {
		SLIST_REMOVE_HEAD(&gc->dead_s, dead_entry);
		socc_free(s);
	}
}

struct groupchat *groupchat_new(struct gw *gw)
{
	struct groupchat *gc = gw_xcalloc(1, sizeof(*gc));

	gc->gw = gw;
	gc->xoccs = dict_new();
	gc->crooms = dict_new();
	gc->soccs = dict_new();
	gc->rooms = dict_new();
	gc->per_user = dict_new();
	gc->watches = dict_new();
	LIST_INIT(&gc->invites);
	gc->reap_ev = event_new(gw->base, -1, 0, reap_cb, gc);
	if (!gc->reap_ev)
		gw_fatal("event_new failed");
	return gc;
}

static void close_x(void *arg, const char *key, void *value)
{
	struct xocc *x = value;
	const char *why = arg;

	xocc_removed(x, 332, why);
}

static void close_s(void *arg, const char *key, void *value)
{
	socc_close(value, 1, 503, arg);
}

void groupchat_link_state(struct groupchat *gc, struct xmpp_link *link, int up)
{
	if (up)
		return;
	/* the rooms cannot hear from or reach these users any more */
	gc->leaving_all = 1;
	dict_foreach(gc->soccs, close_s, "the XMPP server is unreachable");
	dict_foreach(gc->xoccs, close_x, "the XMPP server is unreachable");
	gc->leaving_all = 0;
}

struct gc_gone {
	const struct conf_peer *peer;
	size_t n;
};

static void gone_s(void *arg, const char *key, void *value)
{
	struct gc_gone *g = arg;
	struct socc *so = value;

	if (so->peer != g->peer)
		return;
	g->n++;
	socc_close(so, 1, 503, "the SIP network was removed from the gateway");
}

static void gone_x(void *arg, const char *key, void *value)
{
	struct gc_gone *g = arg;
	struct xocc *x = value;

	if (x->peer != g->peer)
		return;
	g->n++;
	xocc_removed(x, 332, "the SIP network was removed from the gateway");
}

void groupchat_peer_removed(struct groupchat *gc, const struct conf_peer *peer)
{
	struct gc_gone g = { peer, 0 };

	gc->leaving_all = 1;
	dict_foreach(gc->soccs, gone_s, &g);
	dict_foreach(gc->xoccs, gone_x, &g);
	gc->leaving_all = 0;
	if (g.n)
		log_notice("groupchat: peer %s removed: %zu bridged occupants ended", peer->name,
			   g.n);
}

size_t groupchat_count(const struct groupchat *gc)
{
	return gc->count;
}

size_t groupchat_rooms(const struct groupchat *gc)
{
	return dict_count(gc->rooms);
}

void groupchat_close(struct groupchat *gc)
{
	if (gc->closing)
		return;
	gc->closing = 1;
	dict_foreach(gc->soccs, close_s, "the gateway is shutting down");
	dict_foreach(gc->xoccs, close_x, "the gateway is shutting down");
}

void groupchat_free(struct groupchat *gc)
{
	if (!gc)
		return;
	groupchat_close(gc);
	while (!LIST_EMPTY(&gc->invites)) {
		struct ginvite *v = LIST_FIRST(&gc->invites);

		sip_outgoing_cancel(v->out);
		ginvite_free(v);
	}
	reap_cb(-1, 0, gc);
	event_free(gc->reap_ev);
	dict_free(gc->xoccs);
	dict_free(gc->crooms);
	dict_free(gc->soccs);
	dict_free(gc->rooms);
	dict_free(gc->per_user);
	dict_free(gc->watches);
	free(gc);
}
