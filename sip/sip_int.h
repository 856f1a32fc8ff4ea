/* sip_int.h - what the files of the SIP side share: the stack object and its helpers.  Not for
 * the rest of the gateway, which sees sip.h only.
 *
 * The SIP side drives Sofia-SIP's transaction layer (nta) itself, as Sofia's own proxies do: one
 * agent, whose message callback takes every request outside a dialog (sip.c), and one leg per
 * dialog, owned by the object of its role:
 *   sip.c         the stack, trust and the hub's policy, requests outside dialogs (MESSAGE,
 *                 OPTIONS, REFER, and the first request of each dialog), shutdown
 *   compact.c     MESSAGE and OPTIONS outside dialogs answered without nta's server
 *                 transaction: a compact record per request matches retransmissions
 *   compact_out.c a MESSAGE of ours over UDP sent without nta's client transaction: a
 *                 compact record per request until its final response
 *   notifier.c    struct sip_watch: a SIP watcher's SUBSCRIBE dialog; we send the NOTIFYs
 *   subscriber.c  struct sip_sub: our SUBSCRIBE dialog; the SIP side sends the NOTIFYs
 *   call.c        struct sip_call: an INVITE dialog (MSRP sessions, groupchat legs)
 * Each dialog's state (route set, CSeq, tags, remote target) is its nta leg's; expiry and
 * refresh timers are the object's own libevent timers.
 */
#ifndef GW_SIP_INT_H
#define GW_SIP_INT_H

#include <stdint.h>
#include <sys/queue.h>

#define NTA_AGENT_MAGIC_T struct sip_stack
#define NTA_LEG_MAGIC_T void
#define NTA_OUTGOING_MAGIC_T void
#define NTA_INCOMING_MAGIC_T void
#include <sofia-sip/nta.h>
#include <sofia-sip/nta_stateless.h>
#include <sofia-sip/nta_tport.h>
#include <sofia-sip/sip.h>
#include <sofia-sip/sip_header.h>
#include <sofia-sip/su_tagarg.h>
#include <sofia-sip/su_tag.h>

#include "../gateway/gw.h"
#include "sip.h"

#define SIP_USER_AGENT "simplegw/0.1"
/* the send leg's destination: nta gives it the requests for this address, which no one uses */
#define SIP_SEND_LEG_URL "sip:send-leg.simplegw.invalid"
#define SIP_ALLOW "INVITE, ACK, BYE, CANCEL, UPDATE, OPTIONS, MESSAGE, SUBSCRIBE, NOTIFY"

/* Every object the stack tracks starts with this and is on its kind's list through it
 * (shutdown walks the lists). */
enum sip_hkind {
	SIP_H_OUTGOING,
	SIP_H_SUB,
	SIP_H_WATCH,
	SIP_H_CALL,
	SIP_H_INCOMING,
};

struct sip_hobj {
	enum sip_hkind kind;
	const struct conf_peer *peer;	/* a dialog's: every request in it must come from this
					 * peer's networks (NULL for SIP_H_OUTGOING/INCOMING) */
	LIST_ENTRY(sip_hobj) link;
};

struct sip_list {
	LIST_HEAD(, sip_hobj) head;
	size_t n;
};

/* What the audit log says of a request the gateway sends or answers later. */
struct sip_audit {
	char *from, *to, *call_id;	/* NULL: unknown */
	const char *method, *service;	/* static strings; method NULL: not audited */
	char *content;			/* with <audit content="yes"> only */
	size_t content_len;
	char source[64];		/* of an incoming request */
	int in;				/* 1: the peer sent the request */
};

/* The federation hub's state of one peer network (conf->peers[i]). */
struct sip_peer_state {
	double tokens;
	uint64_t refill_ms;
	unsigned subs, calls;
	unsigned long limited;
};

struct sip_stack {
	struct reactor *reactor;
	struct event_base *base;
	const struct conf *conf;
	struct sip_cbs cbs;
	void *arg;
	nta_agent_t *agent;
	nta_leg_t *send_leg;		/* our requests outside dialogs go on it */
	struct sip_ctrs *ctrs;		/* compact.c's records of MESSAGE and OPTIONS */
	struct event *ctr_ev;		/* ends them 64*T1 after their answer */
	struct sip_couts *couts;	/* compact_out.c's records of MESSAGEs of ours */
	url_t **routes;			/* conf->peers[i]'s route, parsed once (in home) */
	size_t nroutes;
	url_t *retired_route;		/* the last one made for a peer no longer configured */
	sip_allow_t *allow;		/* SIP_ALLOW, parsed once */
	sip_contact_t *contact;		/* ours in dialogs: plain, and over TLS (or NULL) */
	sip_contact_t *contact_tls;
	sip_user_agent_t *user_agent;
	sip_content_type_t *ct_text;	/* SIP_CT_TEXT, parsed once, its text written */
	su_home_t home[1];
	struct sip_list in, out, subs, watches, calls;
	int shutting_down;
	uint64_t shutdown_deadline_ms;
	struct event *shutdown_ev;	/* polls for the dialogs' end while shutting down */
	struct log_limit refused_log;
	struct log_limit limit_log;
	struct sip_peer_state *pst;
	struct stats *stats;
	struct stats_peer *(*peer_stats)(void *arg, const struct conf_peer *peer);
	void *stats_arg;
	unsigned unsubscribing;		/* our dialogs ending: un-SUBSCRIBE sent, not over yet */
	unsigned long unsub_dropped_logged;
	uint64_t call_id_base;		/* random, drawn at start */
	uint64_t call_ids;		/* Call-IDs made so far */
	unsigned char rnd[2048];	/* getrandom() octets for tags and branches (sip_random_bits) */
	size_t rnd_used;		/* of rnd; sizeof(rnd) when it must be refilled */
};

/* sip.c: lists, counting, replies, the hub and the audit, shared by the roles */
void sip_track(struct sip_stack *st, struct sip_list *l, struct sip_hobj *h, int add);
void sip_count_status(struct sip_stack *st, int sent, int status);
void sip_count_out(struct sip_stack *st, const struct conf_peer *peer);
void sip_count_in(struct sip_stack *st, const struct conf_peer *peer);
const char *sip_lower_copy(const char *src, char *dst, size_t len);
void sip_clean_phrase(const char *src, char *dst, size_t len);
int sip_over_tls(sip_t const *sip);
void sip_source_text(msg_t *msg, sip_t const *sip, char *buf, size_t len);
/* The peer's route as nta takes it (borrowed). */
url_string_t const *sip_peer_route(struct sip_stack *st, const struct conf_peer *peer);
/* Our Contact for a dialog with peer (over TLS when it peers over TLS). */
sip_contact_t const *sip_contact_for(struct sip_stack *st, const struct conf_peer *peer);
/* Answers irq (phrase NULL: the standard one; sanitised) and destroys it: the final response
 * of a request outside dialogs or inside one.  retry_after > 0 adds Retry-After, accept adds
 * Accept, and every answer carries Allow. */
void sip_answer(struct sip_stack *st, nta_incoming_t *irq, int status, const char *phrase,
		unsigned retry_after, const char *accept);
/* The same with more headers (tags), and irq is not destroyed (an INVITE's 2xx, say). */
void sip_answer_ex(struct sip_stack *st, nta_incoming_t *irq, int status, const char *phrase,
		   unsigned retry_after, const char *accept, tag_type_t tag, tag_value_t value, ...);
/* A request inside a dialog with peer must come from that peer's networks: 1 if it does;
 * otherwise it is refused 403 (and logged) here, and 0. */
int sip_dialog_source_ok(struct sip_stack *st, const struct conf_peer *peer,
			 nta_incoming_t *irq, sip_t const *sip);
int sip_auditing(const struct sip_stack *st);
void sip_audit_clear(struct sip_audit *a);
void sip_audit_emit(const struct conf_peer *peer, struct sip_audit *a, int status,
		    const char *phrase);
void sip_audit_fill(struct sip_stack *st, struct sip_audit *a, sip_t const *sip, int in,
		    const char *source);
void sip_audit_out(struct sip_stack *st, struct sip_audit *a, const char *method, unsigned svc,
		   const char *from, const char *to, const char *body);
void sip_audit_call_id(struct sip_audit *a, sip_t const *sip);
const char *sip_service_name(unsigned svc);
/* One audit line for an incoming request answered now (msg: the request). */
void sip_audit_answer(struct sip_stack *st, msg_t *msg, int status, const char *phrase);
/* The shutdown may be over: every dialog has ended (the roles call it when one does). */
void sip_shutdown_check(struct sip_stack *st);
/* A dialog leg for a request of ours that begins one (SUBSCRIBE, INVITE), from from_uri to
 * to_uri (addr-specs), with our From tag; its requests go to cb with magic.  NULL when an
 * address does not parse. */
nta_leg_t *sip_uac_leg(struct sip_stack *st, const char *from_uri, const char *to_uri,
		       nta_request_f *cb, void *magic);
/* What an owner does with the final response to a request of its (obj: the owner; sip and
 * phrase are the response's, valid during the call only). */
typedef void sip_final_fn(void *obj, nta_outgoing_t *orq, sip_t const *sip, int status,
			  const char *phrase);
/* The body of every nta_response_f here: a provisional response is ignored; a final one (nta's
 * own 408/503 included) is counted in st's statistics, *slot (the owner's pointer to orq)
 * cleared, fn called, and then orq destroyed (the response is the transaction's, so it must
 * outlive fn).  Returns 0. */
int sip_final_response(struct sip_stack *st, nta_outgoing_t *orq, sip_t const *sip,
		       nta_outgoing_t **slot, sip_final_fn *fn, void *obj);

/* encode.c: sets the text of msg's request line or status line, CSeq, Max-Forwards and
 * Content-Length (added when missing, for its payload) as Sofia's encoders would write it, so
 * that sending the message does not format them again.  Call it once they are final, before
 * nta_outgoing_mcreate() or nta_msg_mreply().  0, or -1 (a multipart body, or no memory for
 * the Content-Length: Sofia encodes them as usual). */
int sip_encode_fixed(msg_t *msg, sip_t *sip);
/* 64 bits from the stack's pool of getrandom() octets, each octet used once. */
void sip_random_bits(struct sip_stack *st, uint64_t *bits);

/* compact.c: a MESSAGE or OPTIONS outside dialogs has a compact record instead of nta's
 * server transaction (see the file's comment).  The table (its own functions, for the unit
 * tests): */
struct sip_ctr;
struct sip_ctrs;
enum sip_ctr_match {
	SIP_CTR_NEW,		/* a record made for it, its answer pending */
	SIP_CTR_RETRANSMISSION,	/* of the record's request */
	SIP_CTR_MERGED,		/* the record's request, arrived by another branch */
	SIP_CTR_TOO_LONG,	/* its Call-ID, tags and Via are too long for a record: none made */
};
/* Records live lifetime_ms after their answer over UDP.  Never NULL. */
struct sip_ctrs *sip_ctrs_new(uint32_t lifetime_ms);
void sip_ctrs_free(struct sip_ctrs *t);
size_t sip_ctrs_count(const struct sip_ctrs *t);
/* Finds sip's record (sane request: Call-ID, CSeq, From, Via present) or makes one (NEW).
 * *out: the record (the table's), or NULL for TOO_LONG. */
enum sip_ctr_match sip_ctrs_find(struct sip_ctrs *t, sip_t const *sip, struct sip_ctr **out);
/* 0 while pending, else the status it was answered. */
int sip_ctr_status(const struct sip_ctr *c);
/* c was answered: kept until now_ms + lifetime (1) or, when reliable, freed now (0).  The
 * strings are copied; phrase is kept only when it is not the standard one. */
int sip_ctr_answered(struct sip_ctrs *t, struct sip_ctr *c, int status, const char *phrase,
		     unsigned retry_after, const char *accept, const char *unsupported,
		     int reliable, uint64_t now_ms);
/* Frees c, unanswered (the stack is going away). */
void sip_ctrs_forget(struct sip_ctrs *t, struct sip_ctr *c);
/* Frees the records whose time is up: ms until the next one's, or -1 when none is left. */
int64_t sip_ctrs_expire(struct sip_ctrs *t, uint64_t now_ms);
/* The stack's use of it: */
void sip_compact_init(struct sip_stack *st);
void sip_compact_free(struct sip_stack *st);
/* 1 if the request (from nta's message callback) is handled here: MESSAGE or OPTIONS with
 * no To tag. */
int sip_compact_takes(sip_t const *sip);
/* A request sip_compact_takes(): 1 if it was a retransmission or merged request and is dealt
 * with; 0 if it is new: *out is its record and *tp a reference on the transport it came by
 * (for sip_compact_answer); -1 if it has no record and goes to nta as other requests do.  msg
 * stays the caller's. */
int sip_compact_receive(struct sip_stack *st, msg_t *msg, sip_t const *sip,
			struct sip_ctr **out, tport_t **tp);
/* Answers req (borrowed: the request, or a reference on it) as c's answer, sends it over tp
 * and releases tp.  phrase NULL: the standard one; sanitised.  c is kept for
 * retransmissions (UDP) or freed. */
void sip_compact_answer(struct sip_stack *st, struct sip_ctr *c, msg_t *req, tport_t *tp,
			int status, const char *phrase, unsigned retry_after, const char *accept,
			const char *unsupported);

/* compact_out.c: a MESSAGE of ours over UDP without nta's client transaction (see the file's
 * comment). */
struct sip_cout;
struct sip_couts;
/* The final response (sip: the response), or 408 (Timer F) / 503 (a transport error; sip:
 * the request then), once. */
typedef void sip_cout_fn(void *arg, sip_t const *sip, int status, const char *phrase);
#define SIP_COUT_MAX_BODY 60000	/* longer: nta's transaction (it would go by TCP) */
void sip_cout_init(struct sip_stack *st);
/* Ends every record without telling their owners. */
void sip_cout_free(struct sip_stack *st);
/* Sends msg, a complete request but for its Via, over UDP to host:port (a numeric address;
 * the strings are copied) and keeps a record until its final response, reported to fn(arg)
 * from the loop, never before this returns.  NULL when there is no UDP transport for host:
 * msg is then untouched and the caller's.  Else msg is taken, sent or not (a send that fails
 * is reported as 503). */
struct sip_cout *sip_cout_send(struct sip_stack *st, msg_t *msg, const char *host,
			       const char *port, sip_cout_fn *fn, void *arg);
/* Ends c without telling its owner. */
void sip_cout_forget(struct sip_stack *st, struct sip_cout *c);
/* A response from nta's message callback (sip borrowed): 1 if it was a record's (a final one
 * ends the record), 0 if not. */
int sip_cout_response(struct sip_stack *st, sip_t const *sip);
/* The branch's text for a record's 64 bits, and back (-1: not one of ours); the interval of
 * Timer E after interval_ms.  For the unit tests. */
#define SIP_COUT_BRANCH_LEN 21	/* "z9hG4bK", 13 characters, NUL */
void sip_cout_branch(uint64_t id, char out[SIP_COUT_BRANCH_LEN]);
int sip_cout_branch_id(const char *branch, uint64_t *id);
uint32_t sip_cout_next_interval(uint32_t interval_ms, int proceeding, uint32_t t2_ms);

/* notifier.c */
void sip_watch_on_subscribe(struct sip_stack *st, nta_incoming_t *irq, sip_t const *sip,
			    const struct conf_peer *peer, const char *source);
void sip_watch_shutdown(struct sip_watch *w);
void sip_watch_free_all(struct sip_stack *st);

/* subscriber.c */
void sip_sub_shutdown(struct sip_sub *sub);
void sip_sub_free_all(struct sip_stack *st);

/* call.c */
void sip_call_on_invite(struct sip_stack *st, nta_incoming_t *irq, sip_t const *sip,
			const struct conf_peer *peer, const char *source);
void sip_call_shutdown(struct sip_call *call);
void sip_call_free_all(struct sip_stack *st);

#endif
