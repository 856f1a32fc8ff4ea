/* call.c - INVITE dialogs (RFC 3261) whose media (MSRP) the mapping layer handles: struct
 * sip_call, for MSRP sessions and groupchat legs.  No media here: the SDP is the caller's.
 *
 * Incoming: OFFERED (the INVITE is with the mapping layer: accepted, refused, or held to be
 * answered later; a CANCEL meanwhile is answered by nta, 200 to it and 487 to the INVITE, and
 * ends the call with 487) -> CONFIRMED (200 sent with our SDP; nta repeats it until the ACK) ->
 * ENDING (our BYE in flight) -> freed.
 * Outgoing: CALLING (our INVITE in flight; sip_call_end() CANCELs it) -> CONFIRMED (its 2xx
 * ACKed: the ACK is nta's transaction, which repeats itself for a repeated 2xx) -> ENDING ->
 * freed.
 * In the dialog: BYE ends it (its Reason text goes to the owner), a re-INVITE is answered with
 * the same SDP and UPDATE with 200 (the session stays as it is), anything else 405.
 *
 * Ownership: the stack owns every struct sip_call (its calls list); after sip_call_end() or
 * sip_call_refuse() no callback runs.
 */
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "sip_int.h"

#include <sofia-sip/msg_header.h>
#include <sofia-sip/nta_tag.h>
#include <sofia-sip/sip_status.h>

struct sip_call {
	struct sip_hobj h;
	struct sip_stack *stack;
	nta_leg_t *leg;
	nta_incoming_t *irq;	/* an incoming INVITE not answered yet */
	msg_t *msg;		/* its request (a reference), until then */
	nta_outgoing_t *orq;	/* our INVITE until its final response, then our BYE */
	struct sip_call_cbs cbs;
	void *arg;
	char *our_sdp;		/* repeated in answers to re-INVITEs */
	int outgoing;		/* we sent the INVITE */
	int ending;		/* sip_call_end() or refused: no more callbacks */
	int answered;		/* a 2xx went out or came in */
	int bye_sent;
	char bye_reason[64];	/* the text of a received BYE's Reason header */
	struct sip_audit au;	/* the INVITE, until its final response */
};

static void sip_call_finish(struct sip_call *call, int status, const char *phrase)
{
	struct sip_stack *st = call->stack;

	sip_track(st, &st->calls, &call->h, 0);
	if (call->orq)
		nta_outgoing_destroy(call->orq);
	if (call->irq)
		nta_incoming_destroy(call->irq);
	if (call->msg)
		msg_destroy(call->msg);
	if (call->leg)
		nta_leg_destroy(call->leg);
	sip_audit_emit(call->h.peer, &call->au, status, phrase);
	if (!call->ending && call->cbs.ended)
		call->cbs.ended(call->arg, call, status, phrase);
	free(call->our_sdp);
	free(call);
	sip_shutdown_check(st);
}

static struct sip_call *sip_call_new(struct sip_stack *st, const struct conf_peer *peer)
{
	struct sip_call *call = gw_xcalloc(1, sizeof(*call));

	call->h.kind = SIP_H_CALL;
	call->h.peer = peer;
	call->stack = st;
	sip_track(st, &st->calls, &call->h, 1);
	return call;
}

/* The next hop of requests in the dialog: our own INVITE's went through the peer's route, as
 * every request of ours does; a dialog the peer began follows its route set and Contact. */
static url_string_t const *sip_call_route(struct sip_call *call)
{
	return call->outgoing ? sip_peer_route(call->stack, call->h.peer) : NULL;
}

static void sip_call_bye_final(void *obj, nta_outgoing_t *orq, sip_t const *sip, int status,
			       const char *phrase)
{
	struct sip_call *call = obj;

	sip_call_finish(call, 0, NULL);
}

static int sip_call_bye_response(void *magic, nta_outgoing_t *orq, sip_t const *sip)
{
	struct sip_call *call = magic;

	return sip_final_response(call->stack, orq, sip, &call->orq, sip_call_bye_final, call);
}

static void sip_call_send_bye(struct sip_call *call, const char *reason)
{
	struct sip_stack *st = call->stack;

	if (call->bye_sent)
		return;
	call->bye_sent = 1;
	if (call->orq)
		nta_outgoing_destroy(call->orq);
	call->orq = nta_outgoing_tcreate(call->leg, sip_call_bye_response, call,
					 sip_call_route(call), SIP_METHOD_BYE, NULL,
					 TAG_IF(reason, SIPTAG_REASON_STR(reason)),
					 SIPTAG_USER_AGENT(st->user_agent), TAG_END());
	if (!call->orq) {
		sip_call_finish(call, 0, NULL);
		return;
	}
	sip_count_out(st, call->h.peer);
	reactor_kick(st->reactor);
}

/* ---- incoming INVITE */

/* A CANCEL for the INVITE not answered yet (nta has answered it 200 and the INVITE 487). */
static int sip_call_ack_cancel(void *magic, nta_incoming_t *irq, sip_t const *sip)
{
	struct sip_call *call = magic;

	if (!sip || sip->sip_request->rq_method != sip_method_cancel)
		return 0;
	log_debug("call: CANCELled before the answer");
	sip_count_status(call->stack, 1, 487);
	(void)irq;
	sip_call_finish(call, 487, "Request Terminated");
	return 0;
}

static int sip_call_request(void *magic, nta_leg_t *leg, nta_incoming_t *irq, sip_t const *sip);

void sip_call_accept(struct sip_call *call, const char *sdp, const struct sip_call_cbs *cbs,
		     void *arg)
{
	struct sip_stack *st = call->stack;
	sip_t const *sip = sip_object(call->msg);
	sip_payload_t pl[1];

	call->cbs = *cbs;
	call->arg = arg;
	call->our_sdp = gw_xstrdup(sdp);
	call->leg = nta_leg_tcreate(st->agent, sip_call_request, call,
				    SIPTAG_CALL_ID(sip->sip_call_id),
				    SIPTAG_FROM(sip->sip_to),
				    SIPTAG_TO(sip->sip_from),
				    NTATAG_REMOTE_CSEQ(sip->sip_cseq ? sip->sip_cseq->cs_seq : 0),
				    TAG_END());
	if (!call->leg) {
		sip_call_refuse(call, 500, "Internal Server Error", NULL);
		return;
	}
	nta_leg_tag(call->leg, nta_incoming_tag(call->irq, NULL));
	nta_leg_server_route(call->leg, sip->sip_record_route, sip->sip_contact);
	call->answered = 1;
	log_debug("call: answering 200 with %zu bytes of SDP", strlen(sdp));
	sip_audit_emit(call->h.peer, &call->au, 200, "OK");
	sip_payload_init(pl);
	pl->pl_data = call->our_sdp;
	pl->pl_len = strlen(call->our_sdp);
	nta_incoming_bind(call->irq, NULL, NULL);
	sip_answer_ex(st, call->irq, 200, "OK", 0, NULL,
		      SIPTAG_CONTACT(sip_contact_for(st, call->h.peer)),
		      SIPTAG_CONTENT_TYPE_STR("application/sdp"), SIPTAG_PAYLOAD(pl), TAG_END());
	/* nta repeats the 200 until the ACK comes (and then absorbs it) */
	nta_incoming_destroy(call->irq);
	call->irq = NULL;
	msg_destroy(call->msg);
	call->msg = NULL;
	reactor_kick(st->reactor);
}

void sip_call_hold(struct sip_call *call, const struct sip_call_cbs *cbs, void *arg)
{
	call->cbs = *cbs;
	call->arg = arg;
}

void sip_call_refuse(struct sip_call *call, int status, const char *phrase, const char *warning)
{
	struct sip_stack *st = call->stack;
	char clean[128], *w = NULL;

	sip_clean_phrase(phrase ? phrase : sip_status_phrase(status), clean, sizeof(clean));
	if (warning) {
		char text[200];

		sip_clean_phrase(warning, text, sizeof(text));
		for (char *q = text; *q; q++)
			if (*q == '"' || *q == '\\')
				*q = '\'';
		w = gw_xasprintf("399 simplegw \"%s\"", text);
	}
	call->ending = 1;
	if (call->irq) {
		nta_incoming_bind(call->irq, NULL, NULL);
		sip_answer_ex(st, call->irq, status, clean[0] ? clean : NULL, 0, NULL,
			      TAG_IF(w, SIPTAG_WARNING_STR(w)), TAG_END());
	}
	free(w);
	sip_call_finish(call, status, clean[0] ? clean : NULL);
}

void sip_call_on_invite(struct sip_stack *st, nta_incoming_t *irq, sip_t const *sip,
			const struct conf_peer *peer, const char *source)
{
	struct sip_invite_info info;
	struct sip_call *call;
	su_home_t home[1] = { SU_HOME_INIT(home) };
	char ctype[128];

	memset(&info, 0, sizeof(info));
	info.peer = peer;
	info.source = source;
	info.request_uri = url_as_string(home, sip->sip_request->rq_url);
	info.from_uri = url_as_string(home, sip->sip_from->a_url);
	info.call_id = sip->sip_call_id ? sip->sip_call_id->i_id : NULL;
	if (sip->sip_content_type && sip->sip_content_type->c_type)
		info.content_type = sip_lower_copy(sip->sip_content_type->c_type, ctype, sizeof(ctype));
	if (sip->sip_payload && sip->sip_payload->pl_len) {
		info.body = sip->sip_payload->pl_data;
		info.body_len = sip->sip_payload->pl_len;
	}
	call = sip_call_new(st, peer);
	call->irq = irq;
	call->msg = nta_incoming_getrequest(irq);
	sip_audit_fill(st, &call->au, sip, 1, source);
	nta_incoming_bind(irq, sip_call_ack_cancel, call);
	if (!info.request_uri || !info.from_uri || !call->msg)
		sip_call_refuse(call, 500, "Internal Server Error", NULL);
	else
		st->cbs.invite(st->arg, call, &info);	/* accepts, refuses or holds */
	su_home_deinit(home);
}

/* ---- outgoing INVITE */

/* A final response to our INVITE. */
static void sip_call_invite_final(void *obj, nta_outgoing_t *orq, sip_t const *sip, int status,
				  const char *phrase)
{
	struct sip_call *call = obj;
	struct sip_stack *st = call->stack;

	sip_audit_call_id(&call->au, sip);
	if (status >= 300) {
		sip_call_finish(call, status, phrase && phrase[0] ? phrase : NULL);
		return;
	}
	/* 2xx: the dialog; the ACK (a transaction of its own, which answers a repeated 2xx) */
	if (sip->sip_to && sip->sip_to->a_tag && !nta_leg_get_rtag(call->leg))
		nta_leg_rtag(call->leg, sip->sip_to->a_tag);
	nta_leg_client_reroute(call->leg, sip->sip_record_route, sip->sip_contact, 1);
	{
		sip_cseq_t cseq[1];
		nta_outgoing_t *ack;

		sip_cseq_init(cseq);
		cseq->cs_seq = sip->sip_cseq ? sip->sip_cseq->cs_seq : nta_outgoing_cseq(orq);
		cseq->cs_method = sip_method_ack;
		cseq->cs_method_name = "ACK";
		ack = nta_outgoing_tcreate(call->leg, NULL, NULL, sip_call_route(call),
					   SIP_METHOD_ACK, NULL, SIPTAG_CSEQ(cseq),
					   NTATAG_ACK_BRANCH(nta_outgoing_branch(orq)),
					   SIPTAG_USER_AGENT(st->user_agent), TAG_END());
		if (ack)
			nta_outgoing_destroy(ack);	/* nta keeps it for the repeated 2xx */
	}
	call->answered = 1;
	sip_audit_emit(call->h.peer, &call->au, status, phrase);
	if (call->ending) {
		/* ended while it was ringing, and answered all the same: hang up */
		sip_call_send_bye(call, NULL);
		return;
	}
	if (call->cbs.answered)
		call->cbs.answered(call->arg, call, sip->sip_payload ? sip->sip_payload->pl_data : "",
				   sip->sip_payload ? sip->sip_payload->pl_len : 0);
}

static int sip_call_invite_response(void *magic, nta_outgoing_t *orq, sip_t const *sip)
{
	struct sip_call *call = magic;

	return sip_final_response(call->stack, orq, sip, &call->orq, sip_call_invite_final, call);
}

struct sip_call *sip_call_invite(struct sip_stack *st, const struct conf_peer *peer,
				 const char *from_uri, const char *to_uri, const char *sdp,
				 const struct sip_call_cbs *cbs, void *arg)
{
	struct sip_call *call;
	sip_payload_t pl[1];

	if (st->shutting_down || !st->agent)
		return NULL;
	call = sip_call_new(st, peer);
	call->outgoing = 1;
	call->cbs = *cbs;
	call->arg = arg;
	call->our_sdp = gw_xstrdup(sdp);
	sip_audit_out(st, &call->au, "INVITE", CONF_SVC_SESSIONS, from_uri, to_uri, NULL);
	call->leg = sip_uac_leg(st, from_uri, to_uri, sip_call_request, call);
	if (call->leg) {
		sip_payload_init(pl);
		pl->pl_data = call->our_sdp;
		pl->pl_len = strlen(call->our_sdp);
		call->orq = nta_outgoing_tcreate(call->leg, sip_call_invite_response, call,
						 sip_peer_route(st, peer), SIP_METHOD_INVITE,
						 URL_STRING_MAKE(to_uri),
						 SIPTAG_CONTACT(sip_contact_for(st, peer)),
						 SIPTAG_ALLOW(st->allow),
						 SIPTAG_CONTENT_TYPE_STR("application/sdp"),
						 SIPTAG_PAYLOAD(pl),
						 SIPTAG_USER_AGENT(st->user_agent), TAG_END());
	}
	if (!call->orq) {
		log_warn("cannot send an INVITE to %s", to_uri);
		call->ending = 1;
		sip_call_finish(call, 500, NULL);
		return NULL;
	}
	sip_count_out(st, peer);
	reactor_kick(st->reactor);
	return call;
}

/* ---- in the dialog */

static int sip_call_request(void *magic, nta_leg_t *leg, nta_incoming_t *irq, sip_t const *sip)
{
	struct sip_call *call = magic;
	struct sip_stack *st = call->stack;
	sip_payload_t pl[1];

	(void)leg;
	if (!sip_dialog_source_ok(st, call->h.peer, irq, sip))
		return 0;
	switch (sip->sip_request->rq_method) {
	case sip_method_ack:
		nta_incoming_destroy(irq);
		break;
	case sip_method_bye:
		/* its Reason text (RFC 3326) goes to the owner */
		if (sip->sip_reason && sip->sip_reason->re_params) {
			const char *v = msg_params_find(sip->sip_reason->re_params, "text");
			size_t n = 0;

			if (v && *v == '"')
				v++;
			for (; v && *v && *v != '"' && n + 1 < sizeof(call->bye_reason); v++)
				call->bye_reason[n++] = *v;
			call->bye_reason[n] = '\0';
		}
		sip_answer(st, irq, 200, "OK", 0, NULL);
		sip_call_finish(call, 0, call->bye_reason[0] ? call->bye_reason : NULL);
		break;
	case sip_method_invite:
		/* a re-INVITE (session refresh, or a new offer): the session stays as it is */
		log_debug("call: re-INVITE answered with the same SDP");
		sip_payload_init(pl);
		pl->pl_data = call->our_sdp;
		pl->pl_len = call->our_sdp ? strlen(call->our_sdp) : 0;
		sip_answer_ex(st, irq, 200, "OK", 0, NULL,
			      SIPTAG_CONTACT(sip_contact_for(st, call->h.peer)),
			      TAG_IF(call->our_sdp, SIPTAG_CONTENT_TYPE_STR("application/sdp")),
			      TAG_IF(call->our_sdp, SIPTAG_PAYLOAD(pl)), TAG_END());
		nta_incoming_destroy(irq);
		break;
	case sip_method_update:	/* a session refresh (RFC 4028) without SDP */
		sip_answer(st, irq, 200, "OK", 0, NULL);
		break;
	default:
		sip_answer(st, irq, 405, "Method Not Allowed", 0, NULL);
		break;
	}
	return 0;
}

void sip_call_set_groupchat(struct sip_call *call)
{
	if (call->au.method)
		call->au.service = sip_service_name(CONF_SVC_GROUPCHAT);
}

void sip_call_end(struct sip_call *call)
{
	sip_call_end_reason(call, 0, NULL);
}

void sip_call_end_reason(struct sip_call *call, int cause, const char *text)
{
	char *reason = NULL;

	if (call->ending)
		return;
	call->ending = 1;
	if (cause) {
		char clean[128];

		sip_clean_phrase(text ? text : "", clean, sizeof(clean));
		for (char *q = clean; *q; q++)
			if (*q == '"' || *q == '\\')
				*q = '\'';
		reason = gw_xasprintf("SIP;cause=%d;text=\"%s\"", cause, clean);
	}
	if (call->answered) {
		sip_call_send_bye(call, reason);
	} else if (call->irq) {
		/* an INVITE held and given up */
		nta_incoming_bind(call->irq, NULL, NULL);
		sip_answer_ex(call->stack, call->irq, 480, "Temporarily Unavailable", 0, NULL,
			      TAG_IF(reason, SIPTAG_REASON_STR(reason)), TAG_END());
		sip_call_finish(call, 480, NULL);
	} else if (call->orq) {
		/* ours, still ringing: CANCEL; its 487 (or a 2xx, then hung up) ends it */
		nta_outgoing_cancel(call->orq);
		sip_count_out(call->stack, call->h.peer);
	} else {
		sip_call_finish(call, 0, NULL);
	}
	free(reason);
	reactor_kick(call->stack->reactor);
}

size_t sip_stack_calls(const struct sip_stack *st)
{
	return st->calls.n;
}

void sip_call_shutdown(struct sip_call *call)
{
	if (call->irq && !call->answered) {
		call->ending = 1;
		nta_incoming_bind(call->irq, NULL, NULL);
		sip_answer_ex(call->stack, call->irq, 503, "Shutting Down", 5, NULL, TAG_END());
		sip_call_finish(call, 503, NULL);
		return;
	}
	if (call->ending)
		return;		/* its BYE or CANCEL is out already */
	call->cbs.ended = NULL;	/* the owner is not told */
	sip_call_end_reason(call, 0, NULL);
}

void sip_call_free_all(struct sip_stack *st)
{
	struct sip_call *call;

	while ((call = (struct sip_call *)LIST_FIRST(&st->calls.head))) {
		call->ending = 1;
		sip_call_finish(call, 0, NULL);
	}
}

_Static_assert(offsetof(struct sip_call, h) == 0, "sip_call: h first");
