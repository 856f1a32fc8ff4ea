/* map.h - the mapping layer: translation tables (errors), pager-mode IM translation (RFC 7572)
 * and the pager itself, which moves messages between the two stacks.  Addresses: addr.h. */
#ifndef GW_MAP_H
#define GW_MAP_H

#include <stddef.h>
#include <stdint.h>
#include <strophe.h>

struct gw;
struct sip_incoming;
struct sip_subscribe_info;
struct sip_watch;
struct sip_message_info;
struct xmpp_link;

/* ---- errors.c: XMPP stanza error conditions <-> SIP status codes (RFC 7247 section 8) */

/* SIP status for an XMPP error condition; 500 for a condition the table does not know. */
int map_error_to_sip(const char *condition);
/* XMPP condition for a SIP failure status 300..699.  A code the table does not list is treated
 * as the x00 code of its class (RFC 3261 8.1.3.2). */
const char *map_error_from_sip(int status);
/* RFC 6120 8.3.2 error type for a condition ("cancel", "modify", "auth", "wait"); "cancel" for
 * one the table does not know. */
const char *map_error_type(const char *condition);
/* Non-zero if condition is a defined stanza error condition (RFC 6120 8.3.3). */
int map_error_known(const char *condition);

/* ---- im.c: pure helpers for pager-mode messages */

/* Checks that len bytes are UTF-8 (RFC 3629) holding only characters XML 1.0 allows.
 * Returns 0, MAP_TEXT_EUTF8 for bad UTF-8 or MAP_TEXT_ECHAR for a forbidden character. */
#define MAP_TEXT_EUTF8 (-1)
#define MAP_TEXT_ECHAR (-2)
int map_text_check(const char *s, size_t len);

/* A span of bytes inside a caller's buffer. */
struct map_span {
	const char *p;
	size_t n;
};

/* message/cpim (RFC 3862), as far as a gateway needs it.  Spans point into the parsed buffer;
 * an absent header has p == NULL. */
struct map_cpim {
	struct map_span from, to, subject, subject_lang, datetime;
	/* RFC 5438 headers, in whatever prefix an NS header declared for urn:ietf:params:imdn */
	struct map_span imdn_message_id, imdn_disposition;
	struct map_span content_type;	/* inner type/subtype, e.g. "text/plain" */
	struct map_span charset;	/* inner charset parameter, unquoted */
	struct map_span content_disposition;	/* inner, e.g. "notification" */
	struct map_span content_encoding;	/* inner, e.g. "deflate" */
	struct map_span body;
};
/* Parses a CPIM wrapper.  Returns 0, or -1 if it is malformed or demands (Require) an
 * extension the gateway does not implement. */
int map_cpim_parse(const char *buf, size_t len, struct map_cpim *out);

/* Copies src to dst as one header-safe line: CR, LF, TAB and other controls become spaces,
 * leading and trailing spaces go, and the copy is cut (on a UTF-8 boundary) to fit.  Returns
 * the length written. */
size_t map_header_text(const char *src, char *dst, size_t len);

/* Non-zero if tag looks like a language tag (RFC 5646 shape: alphanumeric subtags of 1..8
 * separated by hyphens, the first alphabetic, 35 octets at most). */
int map_lang_ok(const char *tag);

/* Non-zero if s can be used as a SIP Call-ID (RFC 3261 word ["@" word], 1..128 octets). */
int map_call_id_ok(const char *s);

/* The parts of an XMPP <message/> a pager-mode MESSAGE carries, borrowed from the stanza.
 * body is the <body/> whose xml:lang matches the message's (or has none), else the first;
 * likewise subject.  lang is the language of the chosen body. */
struct map_im_fields {
	const char *body;	/* NULL when the stanza has no <body/> */
	const char *subject;	/* NULL when absent */
	const char *lang;	/* NULL when unknown */
	const char *thread;	/* NULL when absent */
	int has_receipt_request;	/* XEP-0184 <request/> present */
	const char *received_id;	/* XEP-0184 <received id/> */
	const char *chatstate;		/* XEP-0085 element name, e.g. "composing" */
	int markable;			/* XEP-0333 <markable/> */
	const char *marker_received_id;	/* XEP-0333 <received id/> */
	const char *displayed_id;	/* XEP-0333 <displayed id/> or <acknowledged id/> */
};
void map_im_fields(xmpp_stanza_t *message, struct map_im_fields *f);

/* Builds an error reply to stanza (XMPP "bounce"): to/from swapped, same id, type='error',
 * the original children kept (RFC 6120 8.3.1 allows it), plus <error type=.../> with the
 * condition and, if text is not NULL, a <text/>.  Caller releases the result. */
/* A new element (ns may be NULL), one added to parent (returned borrowed: parent owns it), and
 * <name>text</name> (len bytes, need not be terminated) added to parent.  Out of memory aborts. */
xmpp_stanza_t *map_tag(xmpp_ctx_t *ctx, const char *name, const char *ns);
xmpp_stanza_t *map_child(xmpp_ctx_t *ctx, xmpp_stanza_t *parent, const char *name, const char *ns);
xmpp_stanza_t *map_text_child(xmpp_ctx_t *ctx, xmpp_stanza_t *parent, const char *name,
			      const char *text, size_t len);
xmpp_stanza_t *map_error_reply(xmpp_ctx_t *ctx, xmpp_stanza_t *stanza, const char *condition,
			       const char *text);

/* A chat message from a SIP user as the component sends it: written straight to text, without
 * stanza objects (SIP -> XMPP pager IM is the hot path).  Strings are borrowed; NULL (or a
 * length of 0 for the subject) leaves the part out. */
struct map_chat {
	const char *type, *to, *from, *id;	/* type, to, id required */
	const char *lang;			/* xml:lang of the message */
	const char *subject;			/* subject_len bytes */
	size_t subject_len;
	const char *subject_lang;		/* xml:lang of the subject */
	const char *body;			/* body_len bytes; required */
	size_t body_len;
	const char *thread;
	const char *stamp, *stamp_from;		/* XEP-0203 <delay/> */
	int receipt_request;			/* XEP-0184 <request/> */
	int markable;				/* XEP-0333 <markable/> */
};
struct xmpp_text;
/* Appends m as one <message/> element to t (xmpp/xmpp.h), escaped as xmpp_text_stanza() would. */
void map_chat_text(struct xmpp_text *t, const struct map_chat *m);

/* ---- notices.c: typing notices (RFC 3994 isComposing <-> XEP-0085 chat states) and delivery
 * notifications (RFC 5438 IMDN <-> XEP-0184 receipts, XEP-0333 chat markers) in pager mode */

/* The RFC 3994 state ("active"/"idle") sent for a XEP-0085 chat state, NULL for none known. */
const char *map_chatstate_to_composing(const char *chatstate);
/* The XEP-0085 chat state for an RFC 3994 state ("composing"/"paused"), NULL for none known. */
const char *map_composing_to_chatstate(const char *state);
/* Parses an isComposing document: its state ("active" or "idle", static), with the refresh
 * interval in seconds (0 if absent) in *refresh_s (may be NULL).  NULL if malformed. */
const char *map_iscomposing_parse(const char *doc, size_t len, unsigned *refresh_s);
/* An isComposing document for state (refresh 0: none).  Caller frees. */
char *map_iscomposing_build(const char *state, unsigned refresh_s);

#define MAP_IMDN_ID_MAX 128	/* bytes of an imdn.Message-ID the gateway takes or makes */
enum map_imdn_kind {
	MAP_IMDN_DELIVERY,
	MAP_IMDN_DISPLAY,
	MAP_IMDN_PROCESSING,
	MAP_IMDN_NONE,
};
/* A parsed message/imdn+xml document. */
struct map_imdn {
	enum map_imdn_kind kind;
	char status[24];		/* the status element's name: "delivered", "displayed"... */
	char message_id[MAP_IMDN_ID_MAX + 1];
	char datetime[48];
};
/* Parses an IMDN document (one notification).  0, or -1 if malformed. */
int map_imdn_parse(const char *doc, size_t len, struct map_imdn *out);
/* An IMDN document; the strings are escaped here.  Caller frees. */
char *map_imdn_build(enum map_imdn_kind kind, const char *status, const char *message_id,
		     const char *datetime, const char *recipient_uri);

/* What an IMDN becomes on the XMPP side, as a table. */
enum map_imdn_to {
	MAP_TO_RECEIVED,	/* XEP-0184 <received/> */
	MAP_TO_DISPLAYED,	/* XEP-0333 <displayed/> */
	MAP_TO_ERROR,		/* an error stanza for the original message: condition */
	MAP_TO_NOTHING,		/* logged only */
};
struct map_imdn_rule {
	enum map_imdn_kind kind;
	const char *status;
	enum map_imdn_to to;
	const char *condition;
};
/* The rule for (kind, status), NULL for a status the table does not know. */
const struct map_imdn_rule *map_imdn_rule(enum map_imdn_kind kind, const char *status);

/* imdn.Disposition-Notification values as bits, and back to a header value. */
#define MAP_DISP_POSITIVE 1u
#define MAP_DISP_NEGATIVE 2u
#define MAP_DISP_DISPLAY 4u
#define MAP_DISP_PROCESSING 8u
unsigned map_imdn_dispositions(const char *value, size_t len);
/* Writes "positive-delivery, display"...; returns the length, 0 if none or it does not fit. */
size_t map_imdn_dispositions_text(unsigned bits, char *buf, size_t len);

/* Stateless correlation (see notices.c).  SIP -> XMPP: the stanza id for a message that asked
 * for IMDNs, made from base (a fresh stanza id), and the IMDN fields read back from such an id.
 * XMPP -> SIP: the imdn.Message-ID for a stanza that asked for receipts, with its sender's
 * resource where it fits (resource may be NULL; an error stanza must go to a full JID), and the
 * stanza id and resource ("" when absent) read back from it.  Each returns 0, or -1 (does not
 * fit, or not one of ours). */
int map_imdn_stanza_id(const char *base, unsigned dispositions, const char *message_id,
		       const char *datetime, char *buf, size_t len);
int map_imdn_from_stanza_id(const char *id, unsigned *dispositions, char *message_id,
			    size_t mlen, char *datetime, size_t dlen);
int map_imdn_message_id(const char *stanza_id, const char *resource, char *buf, size_t len);
int map_imdn_stanza_of(const char *message_id, char *stanza_id, size_t len, char *resource,
		       size_t rlen);

/* ---- peer.c: addresses as a given peer network writes them */
struct conf;
struct conf_peer;
/* The peer network behind XMPP component `component` that owns jid, with jid's SIP URI written
 * to uri.  NULL when none does; *err is then a negative enum map_addr_status (MAP_ADDR_EDOMAIN:
 * well-formed, but no peer owns it). */
const struct conf_peer *map_peer_for_jid(const struct conf *conf, const char *component,
					 const char *jid, char *uri, size_t len, int *err);
/* A SIP URI of that peer's domain as a JID (escaped mode or not).  Length or a negative
 * enum map_addr_status. */
int map_peer_sip_to_jid(const struct conf_peer *peer, const char *uri, char *jid, size_t len);
/* The peer network whose SIP user jid (bare or full) is, whichever component serves it; NULL
 * for the XMPP domain's users, other XMPP domains and addresses no peer owns. */
const struct conf_peer *map_peer_of_jid(const struct conf *conf, const char *jid);
/* Bytes a presence (PIDF) or conference-info document from peer may have: its <limits
 * max-document>, else <presence max-document>.  (An RLMI list document may have four times
 * that; conference-info without the peer's limit keeps groupchat.c's own bound.) */
size_t map_doc_limit(const struct conf *conf, const struct conf_peer *peer);
/* 1 if an XMPP user's chat with a user of peer opens an MSRP session (RFC 7573): the peer has
 * sessions="yes" and <peer services> include sessions.  0: the chat goes in pager mode, where
 * pager.c refuses it if the services exclude pager too. */
int map_peer_chat_sessions(const struct conf_peer *peer);

/* ---- pager.c: pager-mode IM both ways, with delivery verdicts correlated by stanza id */
struct pager;

struct pager *pager_new(struct gw *gw);
/* A trusted SIP MESSAGE.  The pager owns `in` and answers it. */
void pager_from_sip(struct pager *pg, struct sip_incoming *in, const struct sip_message_info *info);
/* A <message/> that came from the XMPP server through link. */
void pager_from_xmpp(struct pager *pg, struct xmpp_link *link, xmpp_stanza_t *stanza);
/* An <iq/> result or error addressed to the component: returns 1 if it was the pager's. */
int pager_iq_reply(struct pager *pg, struct xmpp_link *link, xmpp_stanza_t *iq);
/* The link went up or down. */
void pager_link_state(struct pager *pg, struct xmpp_link *link, int up);
/* A component link the pager did not know (a reload added a peer with a new component). */
void pager_link_added(struct pager *pg, struct xmpp_link *link);
/* Messages whose outcome is not settled yet, both directions. */
size_t pager_pending(const struct pager *pg);
/* Draining: refuse new messages (503 / service-unavailable), let pending ones settle. */
void pager_close(struct pager *pg);
/* Shutdown: settle everything still pending now (errors to senders) and refuse new work. */
void pager_abort(struct pager *pg);
void pager_free(struct pager *pg);

/* ---- presence.c: presence both ways (RFC 8048), one SIP dialog per XMPP watcher and SIP presentity */
struct presence;

/* What ends a shared SIP subscription, as a table (RFC 6665 4.1.3, RFC 8048 section 5). */
enum presence_end_action {
	END_REJECT,		/* the SIP side refused: every XMPP watcher gets 'unsubscribed' */
	END_RESUBSCRIBE,	/* quietly, after the row's delay (or the Retry-After) */
	END_BACKOFF,		/* quietly, with exponential back-off */
};
/* The row for a dialog that ended with SUBSCRIBE status `status` (>= 300), or by a NOTIFY
 * terminated with `reason` (status 0; reason may be NULL).  *delay_s (may be NULL) gets the
 * row's delay in seconds. */
enum presence_end_action presence_end_rule(int status, const char *reason, unsigned *delay_s);

/* Opens the state store (conf's presence database) and restores what it holds.  NULL on
 * failure (logged). */
struct presence *presence_new(struct gw *gw);
/* Sets up the SIP subscriptions restored from the store (call once the SIP stack runs). */
void presence_start(struct presence *pr);
/* A <presence/> that came from the XMPP server through link. */
void presence_from_xmpp(struct presence *pr, struct xmpp_link *link, xmpp_stanza_t *stanza);
/* A trusted SUBSCRIBE for an XMPP user: accepted or refused before this returns. */
void presence_from_sip(struct presence *pr, struct sip_watch *w,
		       const struct sip_subscribe_info *info);
/* A SIP watcher's dialog is over. */
void presence_watch_ended(struct presence *pr, struct sip_watch *w, int status);
/* A <message> from the XMPP server advertising XEP-0356 privileges to the component: returns 1
 * if it was one (taken), else 0. */
int presence_privilege(struct presence *pr, struct xmpp_link *link, xmpp_stanza_t *message);
/* An iq result or error that answers presence's roster reads; returns 0 if it is not one. */
int presence_iq_reply(struct presence *pr, struct xmpp_link *link, xmpp_stanza_t *iq);
/* A SIP watcher refreshed its subscription: a list subscription gets full state again. */
void presence_watch_refreshed(struct presence *pr, struct sip_watch *w);
/* The link went up or down. */
void presence_link_state(struct presence *pr, struct xmpp_link *link, int up);
/* The peer network answers its health check again after it did not (gw.c). */
void presence_peer_up(struct presence *pr, const struct conf_peer *peer);
/* XMPP watchers of SIP presentities, and SIP presentities watched (one dialog each). */
size_t presence_watchers(const struct presence *pr);
/* A reload renumbered the peers: new peer i was old_index[i] (SIZE_MAX: a new peer). */
void presence_peers_changed(struct presence *pr, const size_t *old_index, size_t n);
/* A reload removes peer (still in the configuration while this runs): its dialogs end. */
void presence_peer_removed(struct presence *pr, const struct conf_peer *peer);
size_t presence_presentities(const struct presence *pr);
/* Shutdown: ends the SIP dialogs (watchers keep their rows), tells XMPP watchers the contacts
 * are unavailable and SIP watchers that their subscriptions are over. */
void presence_close(struct presence *pr);
void presence_free(struct presence *pr);

/* ---- session.c: session-mode IM (RFC 7573), SIP INVITE + MSRP <-> XMPP chat */
struct sessions;
struct sip_call;
struct sip_invite_info;

/* Listens for MSRP (conf's <sessions>; with <tls>, MSRP over TLS too), and with <sessions
 * relay> starts the relay's connection.  NULL on failure (logged). */
struct sessions *sessions_new(struct gw *gw);
/* SIGHUP: the <tls> files loaded again into the MSRP contexts, for new connections (established
 * ones keep theirs); on a problem the files in use stay (logged).  0 or -1. */
int sessions_tls_reload(struct sessions *ss);
/* A trusted INVITE: accepted or refused before this returns. */
void sessions_from_sip(struct sessions *ss, struct sip_call *call,
		       const struct sip_invite_info *info);
/* A <message/> from XMPP: returns 1 if it belongs to a chat session (then it is handled), 0 if
 * the pager should take it. */
int sessions_from_xmpp(struct sessions *ss, struct xmpp_link *link, xmpp_stanza_t *stanza);
/* The XMPP condition for an MSRP failure status (RFC 4975 7.2), as a table. */
const char *map_msrp_error(int status);
/* The MSRP status of a failure REPORT for an XMPP error condition, as a table (400 default). */
int map_msrp_report_status(const char *condition);
/* The defined condition of an error stanza's <error/> (RFC 6120 8.3.3), "undefined-condition"
 * when it has none; borrowed from the stanza. */
const char *map_stanza_error_condition(xmpp_stanza_t *stanza);
size_t sessions_count(const struct sessions *ss);
/* One open session as an operator sees it (sessions_list()): a 1:1 chat, or a leg of a room
 * (groupchat.c's: an XMPP user in a SIP conference, or a SIP user in a MUC room). */
enum map_session_kind {
	MAP_SESSION_CHAT,
	MAP_SESSION_GROUPCHAT,
};
struct map_session_info {
	char id[24];		/* the session's MSRP id: what sessions_end() takes */
	enum map_session_kind kind;
	const char *xmpp;	/* chat: the XMPP user (full JID once known); leg: the XMPP end as
				 * groupchat.c named it (the user, or the SIP occupant's real JID) */
	const char *sip_uri;	/* chat: the SIP user; leg: the focus, or the SIP occupant */
	const char *state;	/* "inviting", "connecting", "active" */
	uint64_t age_ms;
};
/* Writes at most max of the open sessions (legs included) to out, in no particular order, and
 * returns how many are open (out NULL or max 0: only counts).  The strings are borrowed: use
 * them before the loop runs again. */
size_t sessions_list(struct sessions *ss, struct map_session_info *out, size_t max);
/* Ends an open session as the idle timeout does: BYE to the SIP side, the XMPP side told (<gone/>;
 * for a leg, groupchat.c takes the occupant out of the room), messages not delivered bounced with
 * why as the error's text.  0, or -1 when no open session has that id. */
int sessions_end(struct sessions *ss, const char *id, const char *why);
/* A reload removes peer: its sessions end (BYE, the XMPP users told). */
void sessions_peer_removed(struct sessions *ss, const struct conf_peer *peer);
/* A reload changed the peers: what depends on all of them is worked out again. */
void sessions_peers_changed(struct sessions *ss);

/* Legs: an INVITE dialog with its MSRP session that groupchat.c owns instead of a 1:1 chat.
 * The callbacks get what a chat would have given XMPP; the leg answers SENDs, REPORTs and
 * NICKNAMEs with what they return.  No idle timeout (a quiet room is not a dead session). */
struct msess;
struct sess_leg_cbs {
	/* The MSRP connection is up and bound: queued messages and our NICKNAME have gone. */
	void (*active)(void *arg, struct msess *leg);
	/* A complete message (chunks reassembled; text/plain or message/cpim, UTF-8 checked;
	 * isComposing is not passed on).  Returns the MSRP status for it (200: taken); the callee
	 * may write the id of the stanza it became into stanza_id (idlen bytes), so that an XMPP
	 * error for it can come back as a failure REPORT (sessions_leg_failed()). */
	int (*message)(void *arg, struct msess *leg, const char *ctype, const char *body,
		       size_t len, char *stanza_id, size_t idlen);
	/* A well-formed NICKNAME (a malformed one was answered 424).  Returns the status now, or 0
	 * to answer later with sessions_leg_nickname_answer(). */
	int (*nickname)(void *arg, struct msess *leg, const char *nick);
	/* The answer to our NICKNAME (sessions_leg_nickname()); 424 when it could not be built. */
	void (*nickname_answered)(void *arg, struct msess *leg, int status);
	/* The leg is over (not called after sessions_leg_end()): status >= 300 when our INVITE
	 * failed, else 0; why: the BYE's Reason text or what happened.  leg is invalid after. */
	void (*ended)(void *arg, struct msess *leg, int status, const char *why);
};
/* 0 if an SDP offer (borrowed) would be accepted for a leg, else -1 with a reason in err. */
int sessions_offer_check(struct sessions *ss, const char *body, size_t len, char *err,
			 size_t errlen);
/* Answers a held INVITE (sip_call_hold()) with an MSRP answer to offer (borrowed); chatroom, if
 * not NULL, goes in a=chatroom (RFC 7701 8).  NULL after refusing the call itself (488/503).
 * local and remote_uri name the ends in logs; strings are copied. */
struct msess *sessions_leg_accept(struct sessions *ss, struct sip_call *call,
				  const struct conf_peer *peer, const char *remote_uri,
				  const char *local, const char *offer, size_t offer_len,
				  const char *chatroom, const struct sess_leg_cbs *cbs, void *arg);
/* INVITEs to_uri (the peer's route) as from_uri with an MSRP offer.  NULL if it cannot start. */
struct msess *sessions_leg_invite(struct sessions *ss, const struct conf_peer *peer,
				  const char *from_uri, const char *to_uri, const char *local,
				  const struct sess_leg_cbs *cbs, void *arg);
/* Sends (or queues until active) one message.  If it fails, an error <message type=err_type>
 * from err_from to err_to with stanza_id goes to XMPP (err_to NULL: logged only).  Strings are
 * copied.  0, or -1 when the leg is closed, the message too large or the queue full. */
int sessions_leg_send(struct msess *leg, const char *ctype, const char *body, size_t len,
		      const char *stanza_id, const char *err_from, const char *err_to,
		      const char *err_type);
/* Sends a NICKNAME (now, or once active); the answer comes to nickname_answered.  0, or -1
 * when the leg is closed or an earlier NICKNAME is still unanswered. */
int sessions_leg_nickname(struct msess *leg, const char *nick);
/* Answers the NICKNAME the leg's nickname callback deferred. */
void sessions_leg_nickname_answer(struct msess *leg, int status);
/* The message that became stanza_id was refused by XMPP: a failure REPORT (RFC 4975 7.1.2). */
void sessions_leg_failed(struct msess *leg, const char *stanza_id, const char *condition);
/* BYE (or CANCEL) with a Reason (cause 0: none); no callback runs after this. */
void sessions_leg_end(struct msess *leg, int cause, const char *text);
int sessions_leg_active(const struct msess *leg);
const char *sessions_leg_id(const struct msess *leg);
/* Shutdown: BYE to every session, <gone/> to the XMPP users, queued messages bounced. */
void sessions_close(struct sessions *ss);
void sessions_free(struct sessions *ss);

/* ---- groupchat.c: XMPP MUC <-> SIP/MSRP multi-party chat (RFC 7702, RFC 7701, RFC 4575) */
struct groupchat;
struct sip_watch;

/* The tables (each a row lookup): the MUC error for our INVITE's failure status; for the answer
 * to our NICKNAME; the SIP status (and phrase) of a held INVITE for a MUC join error; the BYE
 * Reason cause (0: not a removal) and text for a MUC status code on an occupant's unavailable
 * presence (301 banned, 307 kicked, 321, 322, 332, 333). */
const char *map_muc_invite_error(int status);
const char *map_muc_nickname_error(int status);
int map_muc_join_error(const char *condition, const char **phrase);
int map_muc_removal(int code, const char **text);

struct groupchat *groupchat_new(struct gw *gw);
/* 1 if a SIP request URI is a room of one of <groupchat>'s MUC services. */
int groupchat_owns_uri(const struct groupchat *gc, const char *request_uri);
/* An INVITE to such a room: held while the gateway joins the MUC, or refused now. */
void groupchat_from_sip_invite(struct groupchat *gc, struct sip_call *call,
			       const struct sip_invite_info *info);
/* A SUBSCRIBE to such a room (Event: conference), accepted or refused before this returns. */
void groupchat_from_sip_subscribe(struct groupchat *gc, struct sip_watch *w,
				  const struct sip_subscribe_info *info);
/* A watcher's dialog ended, or was refreshed: 1 if it was one of groupchat's. */
int groupchat_watch_ended(struct groupchat *gc, struct sip_watch *w);
int groupchat_watch_refreshed(struct groupchat *gc, struct sip_watch *w);
/* A <presence/> or <message/> from the XMPP server: 1 if it was groupchat's (handled). */
int groupchat_from_xmpp(struct groupchat *gc, struct xmpp_link *link, xmpp_stanza_t *stanza);
void groupchat_link_state(struct groupchat *gc, struct xmpp_link *link, int up);
/* Bridged occupants (both ways), and XMPP rooms with SIP occupants. */
size_t groupchat_count(const struct groupchat *gc);
/* A reload removes peer: its users' room memberships end, everyone told. */
void groupchat_peer_removed(struct groupchat *gc, const struct conf_peer *peer);
size_t groupchat_rooms(const struct groupchat *gc);
/* Shutdown: every occupant leaves (BYE, unavailable presence with status 332). */
void groupchat_close(struct groupchat *gc);
void groupchat_free(struct groupchat *gc);

#endif
