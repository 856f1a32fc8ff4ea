/* sip.h - the SIP side: Sofia-SIP's transaction layer (nta) on the gateway's reactor, peering
 * trust and the hub's policy, MESSAGE transactions, SUBSCRIBE/NOTIFY and INVITE dialogs. */
#ifndef GW_SIP_H
#define GW_SIP_H

#include <stddef.h>

#include "../conf/conf.h"

struct reactor;
struct sip_stack;
struct sip_incoming;	/* a received request the gateway has not answered yet */
struct sip_outgoing;	/* a request the gateway sent and whose final response is awaited */

/* A MESSAGE that passed the peering checks, as the mapping layer sees it.  Every pointer is
 * borrowed from the request and valid during the callback only. */
struct sip_message_info {
	const struct conf_peer *peer;	/* the peer network it came from (source and From checked) */
	const char *source;		/* "address:port/transport", for logs */
	const char *request_uri;	/* addr-spec, e.g. "sip:alice@xmpp.example" */
	const char *from_uri;		/* addr-spec of From, without tag */
	const char *call_id;
	const char *content_type;	/* lower case type/subtype, or NULL when there is no body */
	const char *charset;		/* lower case, or NULL */
	const char *content_encoding;	/* lower case ("deflate"), or NULL: none or identity */
	const char *body;		/* not NUL-terminated */
	size_t body_len;
	const char *subject;		/* or NULL */
	const char *language;		/* first Content-Language, or NULL */
};

struct sip_watch;	/* a SUBSCRIBE dialog a SIP watcher holds with the gateway (we notify) */
struct sip_call;	/* an INVITE dialog whose media (MSRP) the mapping layer handles */

/* An INVITE that passed the peering checks.  Pointers are borrowed for the callback only. */
struct sip_invite_info {
	const struct conf_peer *peer;
	const char *source;
	const char *request_uri;
	const char *from_uri;
	const char *call_id;
	const char *content_type;	/* lower case, or NULL */
	const char *body;		/* the offer, not NUL-terminated; NULL when none */
	size_t body_len;
};
struct sip_sub;		/* a SUBSCRIBE dialog the gateway holds toward the SIP network (it notifies) */

/* A SUBSCRIBE for an XMPP user that passed the peering checks.  Pointers are borrowed for the
 * callback only. */
struct sip_subscribe_info {
	const struct conf_peer *peer;
	const char *source;		/* "address:port/transport", for logs */
	const char *request_uri;	/* addr-spec */
	const char *from_uri;		/* addr-spec of the watcher, without tag */
	const char *event;		/* the Event package, lower case ("presence") */
	const char *call_id;
	long expires;			/* requested seconds, -1 when absent */
	int accepts_pidf;		/* no Accept, or one that lists application/pidf+xml */
	int eventlist;			/* Supported: eventlist (RFC 4662 section 5.1) */
	int accepts_rlmi;		/* an Accept listing multipart/related and
					 * application/rlmi+xml (a list's NOTIFY bodies) */
};

struct sip_cbs {
	/* A trusted MESSAGE for the XMPP domain.  The callee owns `in` and must answer it once,
	 * now or later, with sip_incoming_respond(). */
	void (*message)(void *arg, struct sip_incoming *in, const struct sip_message_info *info);
	/* A new subscription.  Before returning, the callee calls sip_watch_accept() (and then
	 * sends the first NOTIFY with sip_watch_notify()) or sip_watch_refuse().  NULL: every
	 * SUBSCRIBE is answered 489. */
	void (*subscribe)(void *arg, struct sip_watch *w, const struct sip_subscribe_info *info);
	/* The dialog of an accepted subscription is over: the watcher unsubscribed, it expired
	 * (the stack sent the final NOTIFY), or a NOTIFY failed (status >= 300).  w is freed when
	 * this returns. */
	void (*watch_ended)(void *arg, struct sip_watch *w, int status);
	/* The watcher refreshed its subscription (the stack answered it and repeated the last
	 * NOTIFY).  May be NULL. */
	void (*watch_refreshed)(void *arg, struct sip_watch *w);
	/* A new INVITE.  Before returning, the callee calls sip_call_accept(), sip_call_refuse()
	 * or sip_call_hold().  NULL: every INVITE is answered 488. */
	void (*invite)(void *arg, struct sip_call *call, const struct sip_invite_info *info);
	/* sip_stack_shutdown() finished. */
	void (*shutdown_done)(void *arg);
};

/* Binds the configured listen addresses and starts answering.  NULL on failure (logged). */
struct sip_stack *sip_stack_new(struct reactor *reactor, const struct conf *conf,
				const struct sip_cbs *cbs, void *arg);

/* Where the stack counts (gateway/stats.h): the statuses it sends and receives in *stats; a
 * peer network's requests in and out and the hub's refusals of its requests in what
 * peer_stats(arg, peer) returns (NULL: not counted, e.g. a peer a reload removed).  Both are
 * borrowed and must outlive the stack; stats NULL counts nothing (the default). */
struct stats;
struct stats_peer;
void sip_stack_set_stats(struct sip_stack *stack, struct stats *stats,
			 struct stats_peer *(*peer_stats)(void *arg, const struct conf_peer *peer),
			 void *arg);

/* Sends the final response and frees `in`.  phrase may be NULL (the standard one is used) and
 * is sanitised to one line.  retry_after > 0 adds Retry-After; accept adds Accept. */
void sip_incoming_respond(struct sip_incoming *in, int status, const char *phrase,
			  unsigned retry_after, const char *accept);

/* Plain text, the pager's usual type: a MESSAGE of this type gets a copy of a Content-Type
 * parsed and written once, any other type is parsed from its string. */
#define SIP_CT_TEXT "text/plain;charset=UTF-8"

/* An outgoing pager-mode MESSAGE.  Strings are copied by sip_send_message(). */
struct sip_out_message {
	const struct conf_peer *peer;	/* sent to this peer's route */
	const char *from_uri;		/* addr-spec in the XMPP domain */
	const char *to_uri;		/* addr-spec in the peer's domain: Request-URI and To */
	const char *content_type;	/* e.g. SIP_CT_TEXT */
	const char *body;		/* NUL-terminated */
	const char *subject;		/* one line, or NULL */
	const char *language;		/* a language tag, or NULL */
	const char *call_id;		/* or NULL for a fresh one */
};

/* Final response (or a local 408/503 when the transaction times out or cannot be sent). */
typedef void sip_response_fn(void *arg, int status, const char *phrase);

/* Starts the transaction.  cb runs exactly once unless sip_outgoing_cancel() comes first.
 * Returns NULL (and does not call cb) if the stack is shutting down. */
struct sip_outgoing *sip_send_message(struct sip_stack *stack, const struct sip_out_message *m,
				      sip_response_fn *cb, void *arg);
/* A REFER out of any dialog (RFC 3515) asking to_uri (through the peer's route) to send a
 * request to refer_to, e.g. to INVITE a chat room (RFC 4579 5.5); with Refer-Sub: false
 * (RFC 4488), so only the final response counts.  subject (one line, may be NULL) goes in a
 * Subject header.  Strings are copied; cb as for sip_send_message(). */
struct sip_outgoing *sip_send_refer(struct sip_stack *stack, const struct conf_peer *peer,
				    const char *from_uri, const char *to_uri, const char *refer_to,
				    const char *subject, sip_response_fn *cb, void *arg);
/* Detaches the callback; the transaction itself runs to its end. */
void sip_outgoing_cancel(struct sip_outgoing *out);
/* An OPTIONS to the peer network's domain (sip:<domain>, Max-Forwards 0: the next hop answers
 * itself) through its route: the health check.  from_uri is copied.  cb as for
 * sip_send_message(); NULL while shutting down. */
struct sip_outgoing *sip_send_options(struct sip_stack *stack, const struct conf_peer *peer,
				      const char *from_uri, sip_response_fn *cb, void *arg);

/* ---- subscriptions where the gateway is the notifier (SIP watcher of an XMPP user) */
enum sip_substate {
	SIP_SUBSTATE_PENDING,
	SIP_SUBSTATE_ACTIVE,
	SIP_SUBSTATE_TERMINATED,
};
const char *sip_substate_name(enum sip_substate s);

/* Answers the SUBSCRIBE 200 granting `expires` seconds.  Refreshes are then answered by the
 * stack (200 and a repeat of the last NOTIFY, then watch_refreshed), and expiry or an
 * un-SUBSCRIBE sends a final NOTIFY with the last document by itself. */
void sip_watch_accept(struct sip_watch *w, unsigned expires);
/* Refuses it; seconds > 0 adds Min-Expires to a 423 and Retry-After to anything else; a 421
 * carries Require: eventlist, a 406 of a list subscription the Accept it needs.  w is freed. */
void sip_watch_refuse(struct sip_watch *w, int status, const char *phrase, unsigned seconds);
/* Sends a NOTIFY in the dialog (body may be NULL).  TERMINATED ends the dialog: reason is the
 * Subscription-State reason, e.g. "rejected"; watch_ended follows once it is sent. */
void sip_watch_notify(struct sip_watch *w, enum sip_substate state, const char *reason,
		      const char *content_type, const char *body, size_t len);
/* Marks w as a resource list subscription (RFC 4662): its 200 and every NOTIFY carry
 * Require: eventlist, and NOTIFYs have Event: presence with multipart/related bodies.  Call
 * before sip_watch_accept(). */
void sip_watch_set_eventlist(struct sip_watch *w);
/* The caller's pointer for this watcher (NULL until set). */
void sip_watch_set_arg(struct sip_watch *w, void *arg);
void *sip_watch_arg(const struct sip_watch *w);
size_t sip_stack_watches(const struct sip_stack *stack);

/* ---- subscriptions the gateway holds toward the SIP network (XMPP watchers) */
struct sip_notify_info {
	enum sip_substate state;
	const char *reason;		/* terminated: the reason parameter, or NULL */
	unsigned retry_after;		/* seconds, 0 when absent */
	const char *content_type;	/* lower case type/subtype, or NULL */
	const char *content_params;	/* its parameters as sent (";boundary=..."), or "" */
	const char *body;		/* not NUL-terminated; NULL when there is none */
	size_t body_len;
};

struct sip_sub_cbs {
	/* A NOTIFY in the dialog.  Returns the status to answer with: 200, or 400/415 for a
	 * document the callee refuses (the dialog continues). */
	int (*notify)(void *arg, struct sip_sub *sub, const struct sip_notify_info *n);
	/* The dialog is over: status >= 300 when the SUBSCRIBE (or a refresh) failed, 408 when
	 * unanswered, 0 when a NOTIFY terminated it (reason and retry_after from it).  sub is
	 * freed when this returns; it is not called after sip_sub_end(). */
	void (*ended)(void *arg, struct sip_sub *sub, int status, const char *reason,
		      unsigned retry_after);
	/* A 2xx to the SUBSCRIBE or a refresh; eventlist: it carried Require: eventlist (the
	 * notifier treats the URI as a resource list, RFC 4662).  May be NULL; the callee may end
	 * the dialog (sip_sub_end) from it. */
	void (*answered)(void *arg, struct sip_sub *sub, int eventlist);
};

#define SIP_SUB_EVENTLIST 1u	/* a resource list subscription: Supported: eventlist (RFC 4662) */

/* Starts a SUBSCRIBE dialog (refreshed by the stack before expiry).  Strings are copied.
 * flags: SIP_SUB_*.  Returns NULL if the stack is shutting down. */
struct sip_sub *sip_subscribe(struct sip_stack *stack, const struct conf_peer *peer,
			      const char *from_uri, const char *to_uri, const char *event,
			      const char *accept, unsigned expires, unsigned flags,
			      const struct sip_sub_cbs *cbs, void *arg);
/* Ends it with SUBSCRIBE Expires: 0; no callback runs after this, and the stack frees sub
 * once the dialog is over.  Safe to call from the sub's own callbacks. */
void sip_sub_end(struct sip_sub *sub);
/* Refreshes the dialog now (an in-dialog SUBSCRIBE with the same Event, Accept and Expires): a
 * notifier that lost it answers 481 and the dialog ends through cbs->ended. */
void sip_sub_refresh(struct sip_sub *sub);
size_t sip_stack_subs(const struct sip_stack *stack);

/* ---- INVITE sessions (RFC 3261): no media here, the SDP is the caller's */
struct sip_call_cbs {
	/* An outgoing INVITE was answered 2xx (the stack has ACKed it); sdp is the answer. */
	void (*answered)(void *arg, struct sip_call *call, const char *sdp, size_t len);
	/* The call is over: status >= 300 when the INVITE failed (408 unanswered), 0 when a BYE
	 * or CANCEL ended it (phrase: then the BYE's Reason text, or NULL).  call is freed when this returns; not called after sip_call_end(). */
	void (*ended)(void *arg, struct sip_call *call, int status, const char *phrase);
};

/* Accepts an incoming INVITE: 200 with the SDP answer (copied; also repeated for re-INVITEs). */
void sip_call_accept(struct sip_call *call, const char *sdp, const struct sip_call_cbs *cbs,
		     void *arg);
/* Answers it later: the callbacks are set now (ended runs if the caller CANCELs meanwhile, with
 * status 487), and sip_call_accept() or sip_call_refuse() follows from some later event. */
void sip_call_hold(struct sip_call *call, const struct sip_call_cbs *cbs, void *arg);
/* Refuses it (warning: a Warning header text, or NULL).  call is freed. */
void sip_call_refuse(struct sip_call *call, int status, const char *phrase, const char *warning);
/* 1 if the peer's <peer services=""> include every CONF_SVC_* bit of service. */
int sip_peer_allows(const struct conf_peer *peer, unsigned service);
/* The call is a groupchat leg (for the audit log's "service"). */
void sip_call_set_groupchat(struct sip_call *call);
/* Sends an INVITE with an SDP offer to a peer (strings copied).  NULL if shutting down. */
struct sip_call *sip_call_invite(struct sip_stack *stack, const struct conf_peer *peer,
				 const char *from_uri, const char *to_uri, const char *sdp,
				 const struct sip_call_cbs *cbs, void *arg);
/* Ends the call (BYE, or CANCEL before the answer); no callback runs after this.  Safe from the
 * call's own callbacks. */
void sip_call_end(struct sip_call *call);
/* The same with a Reason header (RFC 3326) "SIP;cause=<cause>;text=\"<text>\"" (cause 0: none). */
void sip_call_end_reason(struct sip_call *call, int cause, const char *text);
size_t sip_stack_calls(const struct sip_stack *stack);

/* The standard reason phrase of a status code ("Not Found"), or "Unknown". */
const char *sip_status_phrase_of(int status);

/* Number of requests received and not answered yet, and of outgoing transactions pending. */
size_t sip_stack_pending_in(const struct sip_stack *stack);
size_t sip_stack_pending_out(const struct sip_stack *stack);

/* Answers every request still held with 503, stops the stack, then calls shutdown_done. */
void sip_stack_shutdown(struct sip_stack *stack);
/* Frees the stack after shutdown_done.  NULL is allowed. */
void sip_stack_free(struct sip_stack *stack);

/* ---- sip_tls.c: SIP over TLS (see the file).  One per process: OpenSSL's callbacks carry no
 * context.  conf must outlive it, until sip_tls_stop. */
struct sockaddr;
/* Writes the files Sofia-SIP's TLS transport reads into a private directory and starts
 * keeping the contexts it makes.  Returns the directory for NUTAG_CERTIFICATE_DIR, or NULL
 * when conf has no <tls> (or the files could not be written: logged). */
const char *sip_tls_prepare(const struct conf *conf);
/* The stack has started: removes the directory and loads the full files into the contexts.
 * Returns 0, or -1 (logged) when a TLS transport has no usable context. */
int sip_tls_started(void);
/* 1 if the TLS connection from remote presented a certificate naming domain (RFC 5922). */
int sip_tls_names(const struct sockaddr *remote, const char *domain);
/* SIGHUP: the certificate, key and CA files read again for new connections; a bad set is
 * logged and the one in use stays. */
void sip_tls_reload(void);
unsigned long sip_tls_refused(void);	/* handshakes refused so far */
void sip_tls_stop(void);

/* ---- guard.c: trust and limits below Sofia-SIP (see the file).  One guard per process:
 * accept() and recvmsg() have no argument to carry a context. */
struct event_base;
struct guard_stats {
	unsigned long accepted;		/* TCP connections let through to Sofia */
	unsigned long untrusted, per_source, total;	/* connections refused, by reason */
	unsigned long emfile;		/* accepts failed for want of a descriptor */
	unsigned long idle;		/* connections closed for silence */
	unsigned long datagrams;	/* UDP datagrams from untrusted sources, kept from Sofia */
};
/* Applies conf's trust and limits to every accept() from now on, and sweeps idle connections on
 * base (conf and base must outlive it, until guard_remove). */
void guard_install(const struct conf *conf, struct event_base *base);
/* Finds Sofia's SIP UDP sockets (those bound to a UDP <listen>) once they exist, and applies
 * the trust to what is received on them; returns how many were found. */
size_t guard_adopt_udp(void);
void guard_remove(void);
const struct guard_stats *guard_stats(void);
/* The descriptor limit was reached accepting on lfd: takes one pending connection off its queue
 * with the reserve descriptor and closes it, so a level-triggered listener does not spin.  what
 * names the listener in the log ("SIP", "MSRP"). */
void guard_shed(int lfd, const char *what);

/* What a peer network holds now, against its <limits>. */
struct sip_peer_usage {
	unsigned subscriptions;		/* its watchers' dialogs plus our subscriptions to it */
	unsigned calls;			/* INVITE dialogs (MSRP sessions, room legs) */
	unsigned long limited;		/* its requests answered 503 for a limit, ever */
};
void sip_peer_usage(struct sip_stack *st, const struct conf_peer *peer,
		    struct sip_peer_usage *u);

/* A reload renumbered conf->peers (the same struct conf, updated in place): new peer i was
 * old_index[i], SIZE_MAX for a new one.  Routes are made again, budgets and counts kept. */
void sip_peers_changed(struct sip_stack *st, const size_t *old_index, size_t n);

#endif
