/* sip.h - the SIP side: a Sofia-SIP nua stack on the gateway's reactor, peering trust, and
 * pager-mode MESSAGE transactions in both directions. */
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
	const char *body;		/* not NUL-terminated */
	size_t body_len;
	const char *subject;		/* or NULL */
	const char *language;		/* first Content-Language, or NULL */
};

struct sip_cbs {
	/* A trusted MESSAGE for the XMPP domain.  The callee owns `in` and must answer it once,
	 * now or later, with sip_incoming_respond(). */
	void (*message)(void *arg, struct sip_incoming *in, const struct sip_message_info *info);
	/* sip_stack_shutdown() finished. */
	void (*shutdown_done)(void *arg);
};

/* Binds the configured listen addresses and starts answering.  NULL on failure (logged). */
struct sip_stack *sip_stack_new(struct reactor *reactor, const struct conf *conf,
				const struct sip_cbs *cbs, void *arg);

/* Sends the final response and frees `in`.  phrase may be NULL (the standard one is used) and
 * is sanitised to one line.  retry_after > 0 adds Retry-After; accept adds Accept. */
void sip_incoming_respond(struct sip_incoming *in, int status, const char *phrase,
			  unsigned retry_after, const char *accept);

/* An outgoing pager-mode MESSAGE.  Strings are copied by sip_send_message(). */
struct sip_out_message {
	const struct conf_peer *peer;	/* sent to this peer's route */
	const char *from_uri;		/* addr-spec in the XMPP domain */
	const char *to_uri;		/* addr-spec in the peer's domain: Request-URI and To */
	const char *content_type;	/* e.g. "text/plain;charset=UTF-8" */
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
/* Detaches the callback; the transaction itself runs to its end. */
void sip_outgoing_cancel(struct sip_outgoing *out);

/* The standard reason phrase of a status code ("Not Found"), or "Unknown". */
const char *sip_status_phrase_of(int status);

/* Number of requests received and not answered yet, and of outgoing transactions pending. */
size_t sip_stack_pending_in(const struct sip_stack *stack);
size_t sip_stack_pending_out(const struct sip_stack *stack);

/* Answers every request still held with 503, stops the stack, then calls shutdown_done. */
void sip_stack_shutdown(struct sip_stack *stack);
/* Frees the stack after shutdown_done.  NULL is allowed. */
void sip_stack_free(struct sip_stack *stack);

#endif
