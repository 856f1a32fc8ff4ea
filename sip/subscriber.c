/* subscriber.c - a SUBSCRIBE dialog the gateway holds toward the SIP network (RFC 6665, the
 * subscriber's role): struct sip_sub, for an XMPP watcher of a SIP presentity or an XMPP
 * occupant of a SIP conference.
 *
 * States: SENT (the first SUBSCRIBE is in flight; a NOTIFY may come first and make the dialog)
 * -> ACTIVE (a 2xx: the refresh timer runs at three quarters of the granted Expires) ->
 * ENDING (sip_sub_end() or the stack's shutdown: SUBSCRIBE Expires: 0 once the first one is
 * answered, then the final NOTIFY is awaited, at most 64*T1, and answered 200) -> freed.  A
 * NOTIFY terminated, a failed SUBSCRIBE or refresh (>= 300, 408 when unanswered) end it too.
 * A NOTIFY is answered with what the mapping layer says of its document: 200, or 400/415 for
 * one it refuses (the dialog goes on, and is refreshed 200 ms later: the notifier may have
 * removed it, RFC 6665 4.2.2); 400 without Subscription-State, 489 for another Event.
 *
 * Ownership: the stack owns every struct sip_sub (its subs list); after sip_sub_end() no
 * callback runs and the stack frees it once the dialog is over.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/event.h>

#include "sip_int.h"

#include <sofia-sip/nta_tag.h>
#include <sofia-sip/sip_status.h>

#define SIP_SUB_REFUSED_REFRESH_MS 30000
#define SIP_SUB_MAX_UNSUBSCRIBING 1000	/* un-SUBSCRIBEs outstanding at once */
#define SIP_SUB_REFUSED_DELAY_MS 200

struct sip_sub {
	struct sip_hobj h;
	struct sip_stack *stack;
	nta_leg_t *leg;
	nta_outgoing_t *orq;	/* the SUBSCRIBE in flight */
	int orq_unsub;		/* ... and it has Expires: 0 */
	struct sip_sub_cbs cbs;
	void *arg;
	int ending;		/* no more callbacks; the dialog is closing */
	int answered;		/* the first SUBSCRIBE had its 2xx */
	int unsub_sent;
	char *event, *accept;	/* for refreshes */
	char event_lc[32];	/* the Event package, lower case, for the NOTIFYs' check */
	unsigned expires;
	unsigned flags;		/* SIP_SUB_* */
	struct event *timer_ev;	/* the refresh, or the wait for the final NOTIFY */
	uint64_t refused_ms;	/* when a refused NOTIFY last made a refresh */
	struct sip_audit au;	/* the first SUBSCRIBE, until its final response */
};

static void sip_sub_finish(struct sip_sub *sub, int status, const char *reason,
			   unsigned retry_after)
{
	struct sip_stack *st = sub->stack;

	sip_track(st, &st->subs, &sub->h, 0);
	if (sub->unsub_sent)
		st->unsubscribing--;
	if (sub->orq)
		nta_outgoing_destroy(sub->orq);
	if (sub->leg)
		nta_leg_destroy(sub->leg);
	if (sub->timer_ev)
		event_free(sub->timer_ev);
	if (!sub->ending && sub->cbs.ended)
		sub->cbs.ended(sub->arg, sub, status, reason, retry_after);
	sip_audit_emit(sub->h.peer, &sub->au, 0, NULL);
	free(sub->event);
	free(sub->accept);
	free(sub);
	sip_shutdown_check(st);
}

static int sip_sub_response(void *magic, nta_outgoing_t *orq, sip_t const *sip);

/* Sends a SUBSCRIBE in the dialog (the first one too), Expires: expires. */
static int sip_sub_send(struct sip_sub *sub, unsigned expires)
{
	struct sip_stack *st = sub->stack;
	char ex[16];

	snprintf(ex, sizeof(ex), "%u", expires);
	if (sub->orq)
		nta_outgoing_destroy(sub->orq);	/* a refresh overtaken by an un-SUBSCRIBE */
	sub->orq = nta_outgoing_tcreate(sub->leg, sip_sub_response, sub, sip_peer_route(st, sub->h.peer),
					SIP_METHOD_SUBSCRIBE, NULL,
					SIPTAG_EVENT_STR(sub->event),
					SIPTAG_ACCEPT_STR(sub->accept),
					SIPTAG_EXPIRES_STR(ex),
					TAG_IF(sub->flags & SIP_SUB_EVENTLIST,
					       SIPTAG_SUPPORTED_STR("eventlist")),
					SIPTAG_CONTACT(sip_contact_for(st, sub->h.peer)),
					SIPTAG_ALLOW(st->allow),
					SIPTAG_USER_AGENT(st->user_agent),
					TAG_END());
	if (!sub->orq)
		return -1;
	sub->orq_unsub = expires == 0;
	sip_count_out(st, sub->h.peer);
	reactor_kick(st->reactor);
	return 0;
}

static void sip_sub_timer(evutil_socket_t fd, short what, void *arg);

static void sip_sub_arm(struct sip_sub *sub, unsigned ms)
{
	struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };

	if (!sub->timer_ev) {
		sub->timer_ev = evtimer_new(sub->stack->base, sip_sub_timer, sub);
		if (!sub->timer_ev)
			gw_fatal("event_new failed");
	}
	evtimer_add(sub->timer_ev, &tv);
}

/* Un-SUBSCRIBEs: the final NOTIFY is then awaited. */
static void sip_sub_unsubscribe(struct sip_sub *sub)
{
	if (sub->unsub_sent)
		return;
	if (!sub->answered && sub->orq)
		return;		/* after the first SUBSCRIBE's answer (sip_sub_response) */
	if (sub->stack->unsubscribing >= SIP_SUB_MAX_UNSUBSCRIBING) {
		/* a burst of ends (a shutdown with 100 000 dialogs): beyond this many at once
		 * the dialog is dropped and the notifier's subscription left to expire; Sofia's
		 * transaction timer list is sorted by walking it, so 100 000 requests made at
		 * once cost it minutes */
		if (!sub->stack->unsub_dropped_logged++)
			log_notice("more than %u subscriptions ending at once: the rest are left to "
				   "expire at their notifiers", SIP_SUB_MAX_UNSUBSCRIBING);
		sip_sub_finish(sub, 0, NULL, 0);
		return;
	}
	sub->unsub_sent = 1;
	sub->stack->unsubscribing++;
	if (sub->timer_ev)
		evtimer_del(sub->timer_ev);
	if (sip_sub_send(sub, 0) != 0)
		sip_sub_finish(sub, 0, NULL, 0);
}

static void sip_sub_timer(evutil_socket_t fd, short what, void *arg)
{
	struct sip_sub *sub = arg;

	(void)fd, (void)what;
	if (sub->unsub_sent) {
		/* no final NOTIFY came (RFC 6665 4.1.2.3 waits 64*T1 for it) */
		sip_sub_finish(sub, 0, NULL, 0);
		return;
	}
	sip_sub_refresh(sub);
}

/* A final response to a SUBSCRIBE of ours. */
static void sip_sub_final(void *obj, nta_outgoing_t *orq, sip_t const *sip, int status,
			  const char *phrase)
{
	struct sip_sub *sub = obj;
	int first = !sub->answered;
	int unsub = sub->orq_unsub;

	if (first && sub->au.method) {
		sip_audit_call_id(&sub->au, sip);
		sip_audit_emit(sub->h.peer, &sub->au, status, phrase);
	}
	if (status >= 300) {
		unsigned retry = sip && sip->sip_retry_after ?
				 (unsigned)sip->sip_retry_after->af_delta : 0;

		log_info("SUBSCRIBE failed: %03d %s", status, phrase ? phrase : "");
		sip_sub_finish(sub, status, NULL, retry);
		return;
	}
	if (sip && sip->sip_to && sip->sip_to->a_tag && !nta_leg_get_rtag(sub->leg))
		nta_leg_rtag(sub->leg, sip->sip_to->a_tag);
	if (sip && first)
		nta_leg_client_reroute(sub->leg, sip->sip_record_route, sip->sip_contact, 1);
	sub->answered = 1;
	if (unsub) {
		/* the final NOTIFY follows; at most 64*T1 */
		sip_sub_arm(sub, 64 * sub->stack->conf->sip_t1_ms);
		return;
	}
	if (sub->ending) {
		sip_sub_unsubscribe(sub);
		return;
	}
	{
		unsigned granted = sip && sip->sip_expires ? (unsigned)sip->sip_expires->ex_delta :
				   sub->expires;

		if (granted == 0)
			granted = sub->expires;
		/* refreshed at three quarters of what was granted (at least 1 s ahead) */
		sip_sub_arm(sub, granted > 1 ? granted * 750u : 1000u);
	}
	if (sub->cbs.answered) {
		int list = 0;

		for (sip_require_t const *k = sip ? sip->sip_require : NULL; k; k = k->k_next)
			for (size_t i = 0; k->k_items && k->k_items[i]; i++)
				list |= strcasecmp(k->k_items[i], "eventlist") == 0;
		sub->cbs.answered(sub->arg, sub, list);
	}
}

static int sip_sub_response(void *magic, nta_outgoing_t *orq, sip_t const *sip)
{
	struct sip_sub *sub = magic;

	return sip_final_response(sub->stack, orq, sip, &sub->orq, sip_sub_final, sub);
}

/* A NOTIFY in the dialog: the mapping layer's verdict on its document is the answer. */
static void sip_sub_on_notify(struct sip_sub *sub, nta_incoming_t *irq, sip_t const *sip)
{
	struct sip_stack *st = sub->stack;
	sip_subscription_state_t const *ss = sip->sip_subscription_state;
	struct sip_notify_info n;
	char ctype[128], params[512] = "", event[64], why[64] = "";
	int status = 200;

	if (!sip->sip_event || !sip->sip_event->o_type ||
	    strcmp(sip_lower_copy(sip->sip_event->o_type, event, sizeof(event)),
		   sub->event_lc) != 0) {
		sip_answer(st, irq, 489, "Bad Event", 0, NULL);
		return;
	}
	if (!ss || !ss->ss_substate) {
		sip_answer(st, irq, 400, "Missing Subscription-State", 0, NULL);
		return;
	}
	if (!nta_leg_get_rtag(sub->leg) && sip->sip_from && sip->sip_from->a_tag) {
		/* the NOTIFY came before the 2xx: it makes the dialog (RFC 6665 4.1.2.4) */
		nta_leg_rtag(sub->leg, sip->sip_from->a_tag);
		nta_leg_server_route(sub->leg, sip->sip_record_route, sip->sip_contact);
	}
	memset(&n, 0, sizeof(n));
	if (strcasecmp(ss->ss_substate, "terminated") == 0) {
		n.state = SIP_SUBSTATE_TERMINATED;
		if (ss->ss_reason)
			snprintf(why, sizeof(why), "%s", ss->ss_reason);
		n.reason = ss->ss_reason ? why : NULL;
		n.retry_after = ss->ss_retry_after ?
			(unsigned)strtoul(ss->ss_retry_after, NULL, 10) : 0;
	} else if (strcasecmp(ss->ss_substate, "pending") == 0) {
		n.state = SIP_SUBSTATE_PENDING;
	} else {
		n.state = SIP_SUBSTATE_ACTIVE;	/* RFC 6665: unknown states count as active */
	}
	if (sip->sip_content_type && sip->sip_content_type->c_type)
		n.content_type = sip_lower_copy(sip->sip_content_type->c_type, ctype, sizeof(ctype));
	if (n.content_type && sip->sip_content_type->c_params) {
		size_t used = 0;

		for (msg_param_t const *pp = sip->sip_content_type->c_params; *pp; pp++) {
			int w = snprintf(params + used, sizeof(params) - used, ";%s", *pp);

			if (w < 0 || (size_t)w >= sizeof(params) - used) {
				params[used] = '\0';	/* too long: the parameters are dropped */
				break;
			}
			used += (size_t)w;
		}
	}
	n.content_params = params;
	if (sip->sip_payload && sip->sip_payload->pl_len) {
		n.body = sip->sip_payload->pl_data;
		n.body_len = sip->sip_payload->pl_len;
	}
	if (!sub->ending && sub->cbs.notify)
		status = sub->cbs.notify(sub->arg, sub, &n);
	if (status < 200 || status > 699)
		status = 500;
	sip_answer(st, irq, status, NULL, 0, status == 415 ?
		   "application/pidf+xml, application/conference-info+xml, multipart/related, "
		   "application/rlmi+xml" : NULL);
	if (n.state == SIP_SUBSTATE_TERMINATED) {
		sip_sub_finish(sub, 0, n.reason, n.retry_after);
	} else if (status >= 300 && !sub->ending) {
		/* RFC 6665 4.2.2: a notifier may remove a subscription whose NOTIFY failed.  A
		 * refresh asks: 200 and the whole state again (a partial document lost is made good
		 * too), or 481 and the owner subscribes again.  At most once per
		 * SIP_SUB_REFUSED_REFRESH_MS, so a notifier that keeps sending what is refused
		 * cannot make a loop of it. */
		uint64_t now = stats_now_us() / 1000;

		if (!sub->refused_ms || now - sub->refused_ms >= SIP_SUB_REFUSED_REFRESH_MS) {
			sub->refused_ms = now;
			log_info("subscription: a NOTIFY answered %d: refreshing in %u ms", status,
				 SIP_SUB_REFUSED_DELAY_MS);
			/* not at once: the notifier's own handling of the failed NOTIFY comes first
			 * (a refresh that overtook it was seen accepted by a notifier that removed
			 * the subscription a moment later) */
			sip_sub_arm(sub, SIP_SUB_REFUSED_DELAY_MS);
		}
	}
}

static int sip_sub_request(void *magic, nta_leg_t *leg, nta_incoming_t *irq, sip_t const *sip)
{
	struct sip_sub *sub = magic;
	struct sip_stack *st = sub->stack;

	(void)leg;
	if (!sip_dialog_source_ok(st, sub->h.peer, irq, sip))
		return 0;
	switch (sip->sip_request->rq_method) {
	case sip_method_ack:
		nta_incoming_destroy(irq);
		break;
	case sip_method_notify:
		sip_sub_on_notify(sub, irq, sip);
		break;
	default:
		sip_answer(st, irq, 405, "Method Not Allowed", 0, NULL);
		break;
	}
	return 0;
}

struct sip_sub *sip_subscribe(struct sip_stack *st, const struct conf_peer *peer,
			      const char *from_uri, const char *to_uri, const char *event,
			      const char *accept, unsigned expires, unsigned flags,
			      const struct sip_sub_cbs *cbs, void *arg)
{
	struct sip_sub *sub;
	int ok;

	if (st->shutting_down || !st->agent)
		return NULL;
	sub = gw_xcalloc(1, sizeof(*sub));
	sub->h.kind = SIP_H_SUB;
	sub->h.peer = peer;
	sub->stack = st;
	sub->cbs = *cbs;
	sub->arg = arg;
	sub->event = gw_xstrdup(event);
	sub->accept = gw_xstrdup(accept);
	sip_lower_copy(event, sub->event_lc, sizeof(sub->event_lc));
	sub->expires = expires;
	sub->flags = flags;
	sub->leg = sip_uac_leg(st, from_uri, to_uri, sip_sub_request, sub);
	sip_track(st, &st->subs, &sub->h, 1);
	sip_audit_out(st, &sub->au, "SUBSCRIBE", strcasecmp(event, "conference") == 0 ?
		      CONF_SVC_GROUPCHAT : CONF_SVC_PRESENCE, from_uri, to_uri, NULL);
	ok = sub->leg != NULL;
	if (ok) {
		/* the first SUBSCRIBE: to the presentity's address (the leg has no target yet) */
		char ex[16];

		snprintf(ex, sizeof(ex), "%u", expires);
		sub->orq = nta_outgoing_tcreate(sub->leg, sip_sub_response, sub, sip_peer_route(st, peer),
						SIP_METHOD_SUBSCRIBE, URL_STRING_MAKE(to_uri),
						SIPTAG_EVENT_STR(event),
						SIPTAG_ACCEPT_STR(accept),
						SIPTAG_EXPIRES_STR(ex),
						TAG_IF(flags & SIP_SUB_EVENTLIST,
						       SIPTAG_SUPPORTED_STR("eventlist")),
						SIPTAG_CONTACT(sip_contact_for(st, peer)),
						SIPTAG_ALLOW(st->allow),
						SIPTAG_USER_AGENT(st->user_agent),
						TAG_END());
		ok = sub->orq != NULL;
	}
	if (!ok) {
		log_warn("cannot send a SUBSCRIBE to %s", to_uri);
		sub->ending = 1;	/* the caller gets NULL, not a callback */
		sip_sub_finish(sub, 500, NULL, 0);
		return NULL;
	}
	sip_count_out(st, peer);
	reactor_kick(st->reactor);
	return sub;
}

void sip_sub_refresh(struct sip_sub *sub)
{
	if (sub->ending || sub->stack->shutting_down || sub->unsub_sent)
		return;
	if (sub->orq)
		return;		/* one is in flight already */
	if (sip_sub_send(sub, sub->expires) != 0)
		sip_sub_finish(sub, 500, NULL, 0);
}

void sip_sub_end(struct sip_sub *sub)
{
	if (sub->ending)
		return;
	sub->ending = 1;
	sip_sub_unsubscribe(sub);
}

size_t sip_stack_subs(const struct sip_stack *st)
{
	return st->subs.n;
}

void sip_sub_shutdown(struct sip_sub *sub)
{
	sub->ending = 1;
	sip_sub_unsubscribe(sub);
}

void sip_sub_free_all(struct sip_stack *st)
{
	struct sip_sub *sub;

	while ((sub = (struct sip_sub *)LIST_FIRST(&st->subs.head))) {
		sub->ending = 1;
		sip_sub_finish(sub, 0, NULL, 0);
	}
}

_Static_assert(offsetof(struct sip_sub, h) == 0, "sip_sub: h first");
