/* notifier.c - a SIP watcher's SUBSCRIBE dialog with the gateway (RFC 6665, the notifier's
 * role): struct sip_watch.
 *
 * States: OFFERED (the first SUBSCRIBE is with the mapping layer, which accepts or refuses it
 * before its callback returns) -> ACTIVE (a dialog leg; NOTIFYs go out one at a time, in order:
 * RFC 6665 4.2.2 allows no new NOTIFY before the last one's final response) -> TERMINATING (a
 * NOTIFY terminated is queued or in flight: the watcher unsubscribed, the subscription expired,
 * the mapping ended it, or the gateway shuts down) -> freed once it is answered.  A refresh
 * (an in-dialog SUBSCRIBE) is answered 200 with the granted Expires and the last NOTIFY is
 * repeated (RFC 6665 4.2.1.2); Expires: 0 is answered 200 and ends with a final NOTIFY carrying
 * the last document (terminated;reason=timeout).  A NOTIFY refused (>= 300, or unanswered: 408)
 * ends the dialog.
 *
 * Ownership: the stack owns every struct sip_watch (its watches list); the mapping layer's
 * pointer (sip_watch_set_arg) is borrowed and is told of the end by cbs.watch_ended.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/event.h>

#include "sip_int.h"

#include <sofia-sip/nta_tag.h>
#include <sofia-sip/sip_status.h>
#include <sofia-sip/su_tag_io.h>

/* A NOTIFY waiting for the one in flight. */
struct sip_note {
	STAILQ_ENTRY(sip_note) next;
	enum sip_substate state;
	char *reason;		/* terminated: the reason, or NULL */
	char *ctype;		/* NULL: no body */
	char *body;
	size_t len;
};
STAILQ_HEAD(sip_notes, sip_note);

struct sip_watch {
	struct sip_hobj h;
	struct sip_stack *stack;
	nta_incoming_t *irq;	/* the first SUBSCRIBE, until it is answered */
	msg_t *msg;		/* its request (a reference), until then */
	nta_leg_t *leg;		/* the dialog, once accepted */
	nta_outgoing_t *orq;	/* the NOTIFY in flight */
	struct sip_notes queue;	/* the NOTIFYs after it */
	struct sip_note *last;	/* the last one sent that was not terminated (refreshes repeat
				 * it, the final NOTIFY carries its document) */
	struct event *expiry_ev;
	uint64_t expires_at_ms;
	void *arg;
	int accepted;		/* the mapping layer is told of the end */
	int terminating;	/* a NOTIFY terminated is queued or sent */
	int sent_terminated;	/* ... and the one in flight is it */
	int eventlist;		/* a list subscription: Require: eventlist on 200 and NOTIFYs */
	char event[16];		/* "presence" or "conference": the Event of our NOTIFYs */
};

static uint64_t sip_watch_now_ms(void)
{
	return stats_now_us() / 1000;
}

const char *sip_substate_name(enum sip_substate s)
{
	static const char *const names[] = {
		[SIP_SUBSTATE_PENDING] = "pending",
		[SIP_SUBSTATE_ACTIVE] = "active",
		[SIP_SUBSTATE_TERMINATED] = "terminated",
	};

	return (unsigned)s < sizeof(names) / sizeof(names[0]) ? names[s] : "?";
}

static void sip_note_free(struct sip_note *n)
{
	if (!n)
		return;
	free(n->reason);
	free(n->ctype);
	free(n->body);
	free(n);
}

static struct sip_note *sip_note_new(enum sip_substate state, const char *reason,
				     const char *ctype, const char *body, size_t len)
{
	struct sip_note *n = gw_xcalloc(1, sizeof(*n));

	n->state = state;
	n->reason = reason ? gw_xstrdup(reason) : NULL;
	if (body && ctype) {
		n->ctype = gw_xstrdup(ctype);
		n->body = gw_xmalloc(len + 1);
		memcpy(n->body, body, len);
		n->body[len] = '\0';
		n->len = len;
	}
	return n;
}

/* The dialog is over: tells the owner (if it had accepted) and frees w. */
static void sip_watch_finish(struct sip_watch *w, int status)
{
	struct sip_stack *st = w->stack;
	struct sip_note *n;

	sip_track(st, &st->watches, &w->h, 0);
	if (w->orq)
		nta_outgoing_destroy(w->orq);
	if (w->leg)
		nta_leg_destroy(w->leg);
	if (w->irq)
		nta_incoming_destroy(w->irq);
	if (w->msg)
		msg_destroy(w->msg);
	while ((n = STAILQ_FIRST(&w->queue))) {
		STAILQ_REMOVE_HEAD(&w->queue, next);
		sip_note_free(n);
	}
	sip_note_free(w->last);
	if (w->expiry_ev)
		event_free(w->expiry_ev);
	if (w->accepted && st->cbs.watch_ended)
		st->cbs.watch_ended(st->arg, w, status);
	free(w);
	sip_shutdown_check(st);
}

static void sip_watch_send_next(struct sip_watch *w);

static void sip_watch_notify_final(void *obj, nta_outgoing_t *orq, sip_t const *sip, int status,
				   const char *phrase)
{
	struct sip_watch *w = obj;

	if (status >= 300) {
		log_info("watcher dialog: NOTIFY answered %03d %s: the dialog ends", status,
			 phrase ? phrase : "");
		sip_watch_finish(w, status);
	} else if (w->sent_terminated) {
		sip_watch_finish(w, 0);
	} else {
		sip_watch_send_next(w);
	}
}

static int sip_watch_notify_response(void *magic, nta_outgoing_t *orq, sip_t const *sip)
{
	struct sip_watch *w = magic;

	return sip_final_response(w->stack, orq, sip, &w->orq, sip_watch_notify_final, w);
}

/* Sends the first queued NOTIFY if none is in flight. */
static void sip_watch_send_next(struct sip_watch *w)
{
	struct sip_stack *st = w->stack;
	struct sip_note *n = STAILQ_FIRST(&w->queue);
	char ss[96];
	sip_payload_t pl[1];

	if (w->orq || !n || !w->leg)
		return;
	STAILQ_REMOVE_HEAD(&w->queue, next);
	if (n->state == SIP_SUBSTATE_TERMINATED) {
		snprintf(ss, sizeof(ss), "terminated%s%s", n->reason ? ";reason=" : "",
			 n->reason ? n->reason : "");
	} else {
		uint64_t now = sip_watch_now_ms();
		unsigned left = w->expires_at_ms > now ?
				(unsigned)((w->expires_at_ms - now + 999) / 1000) : 0;

		snprintf(ss, sizeof(ss), "%s;expires=%u", sip_substate_name(n->state), left);
	}
	sip_payload_init(pl);
	pl->pl_data = n->body;
	pl->pl_len = n->len;
	w->orq = nta_outgoing_tcreate(w->leg, sip_watch_notify_response, w, NULL,
				      SIP_METHOD_NOTIFY, NULL,
				      SIPTAG_EVENT_STR(w->event),
				      SIPTAG_SUBSCRIPTION_STATE_STR(ss),
				      SIPTAG_CONTACT(sip_contact_for(st, w->h.peer)),
				      TAG_IF(w->eventlist, SIPTAG_REQUIRE_STR("eventlist")),
				      TAG_IF(n->body, SIPTAG_CONTENT_TYPE_STR(n->ctype)),
				      TAG_IF(n->body, SIPTAG_PAYLOAD(pl)),
				      SIPTAG_USER_AGENT(st->user_agent),
				      TAG_END());
	if (!w->orq) {
		log_warn("watcher dialog: cannot send a NOTIFY: the dialog ends");
		sip_note_free(n);
		sip_watch_finish(w, 500);
		return;
	}
	sip_count_out(st, w->h.peer);
	reactor_kick(st->reactor);
	if (n->state == SIP_SUBSTATE_TERMINATED) {
		w->sent_terminated = 1;
		sip_note_free(n);
	} else {
		sip_note_free(w->last);
		w->last = n;
	}
}

static void sip_watch_queue(struct sip_watch *w, struct sip_note *n)
{
	if (w->terminating) {
		sip_note_free(n);
		return;
	}
	if (n->state == SIP_SUBSTATE_TERMINATED) {
		w->terminating = 1;
		if (w->expiry_ev)
			evtimer_del(w->expiry_ev);
	}
	STAILQ_INSERT_TAIL(&w->queue, n, next);
	sip_watch_send_next(w);
}

/* Ends the dialog with a final NOTIFY carrying the last document. */
static void sip_watch_terminate(struct sip_watch *w, const char *reason)
{
	struct sip_note *l = w->last;

	sip_watch_queue(w, sip_note_new(SIP_SUBSTATE_TERMINATED, reason, l ? l->ctype : NULL,
					l ? l->body : NULL, l ? l->len : 0));
}

static void sip_watch_expired(evutil_socket_t fd, short what, void *arg)
{
	struct sip_watch *w = arg;

	(void)fd, (void)what;
	log_debug("watcher dialog: the subscription expired");
	sip_watch_terminate(w, "timeout");
}

static void sip_watch_arm(struct sip_watch *w, unsigned expires)
{
	struct timeval tv = { expires, 0 };

	w->expires_at_ms = sip_watch_now_ms() + (uint64_t)expires * 1000;
	if (!w->expiry_ev) {
		w->expiry_ev = evtimer_new(w->stack->base, sip_watch_expired, w);
		if (!w->expiry_ev)
			gw_fatal("event_new failed");
	}
	evtimer_add(w->expiry_ev, &tv);
}

/* A request inside the dialog: refreshes and un-SUBSCRIBEs; nothing else belongs here. */
static int sip_watch_request(void *magic, nta_leg_t *leg, nta_incoming_t *irq, sip_t const *sip)
{
	struct sip_watch *w = magic;
	struct sip_stack *st = w->stack;
	sip_method_t method = sip->sip_request->rq_method;
	char ex[16], event[64];
	unsigned expires;

	(void)leg;
	if (!sip_dialog_source_ok(st, w->h.peer, irq, sip))
		return 0;
	if (method == sip_method_ack) {
		nta_incoming_destroy(irq);
		return 0;
	}
	if (method != sip_method_subscribe) {
		sip_answer(st, irq, 405, "Method Not Allowed", 0, NULL);
		return 0;
	}
	if (!sip->sip_event || !sip->sip_event->o_type ||
	    strcmp(sip_lower_copy(sip->sip_event->o_type, event, sizeof(event)), w->event) != 0) {
		sip_answer(st, irq, 489, "Bad Event", 0, NULL);
		return 0;
	}
	if (w->terminating) {
		sip_answer(st, irq, 481, "Subscription Does Not Exist", 0, NULL);
		return 0;
	}
	expires = !sip->sip_expires ? st->conf->presence_max_expires_s :
		  sip->sip_expires->ex_delta > st->conf->presence_max_expires_s ?
		  st->conf->presence_max_expires_s : (unsigned)sip->sip_expires->ex_delta;
	snprintf(ex, sizeof(ex), "%u", expires);
	sip_answer_ex(st, irq, 200, "OK", 0, NULL, SIPTAG_EXPIRES_STR(ex),
		      SIPTAG_CONTACT(sip_contact_for(st, w->h.peer)),
		      TAG_IF(w->eventlist, SIPTAG_REQUIRE_STR("eventlist")), TAG_END());
	nta_incoming_destroy(irq);
	if (expires == 0) {
		log_debug("watcher dialog: un-SUBSCRIBE");
		w->expires_at_ms = sip_watch_now_ms();
		sip_watch_terminate(w, "timeout");
		return 0;
	}
	log_debug("watcher dialog: refreshed for %us", expires);
	sip_watch_arm(w, expires);
	if (w->last)	/* RFC 6665 4.2.1.2: the current state follows a refresh */
		sip_watch_queue(w, sip_note_new(w->last->state, NULL, w->last->ctype,
						w->last->body, w->last->len));
	if (w->accepted && st->cbs.watch_refreshed)
		st->cbs.watch_refreshed(st->arg, w);
	return 0;
}

void sip_watch_accept(struct sip_watch *w, unsigned expires)
{
	struct sip_stack *st = w->stack;
	sip_t const *sip = sip_object(w->msg);
	char ex[16];

	snprintf(ex, sizeof(ex), "%u", expires);
	w->leg = nta_leg_tcreate(st->agent, sip_watch_request, w,
				 SIPTAG_CALL_ID(sip->sip_call_id),
				 SIPTAG_FROM(sip->sip_to),	/* ours */
				 SIPTAG_TO(sip->sip_from),	/* the watcher's, with its tag */
				 NTATAG_REMOTE_CSEQ(sip->sip_cseq ? sip->sip_cseq->cs_seq : 0),
				 TAG_END());
	if (!w->leg) {
		log_warn("watcher dialog: cannot make the dialog");
		sip_watch_refuse(w, 500, "Internal Server Error", 0);
		return;
	}
	nta_leg_tag(w->leg, nta_incoming_tag(w->irq, NULL));
	nta_leg_server_route(w->leg, sip->sip_record_route, sip->sip_contact);
	sip_audit_answer(st, w->msg, 200, "OK");
	sip_answer_ex(st, w->irq, 200, "OK", 0, NULL, SIPTAG_EXPIRES_STR(ex),
		      SIPTAG_CONTACT(sip_contact_for(st, w->h.peer)),
		      TAG_IF(w->eventlist, SIPTAG_REQUIRE_STR("eventlist")), TAG_END());
	nta_incoming_destroy(w->irq);
	w->irq = NULL;
	msg_destroy(w->msg);
	w->msg = NULL;
	w->accepted = 1;
	if (expires)
		sip_watch_arm(w, expires);
	else
		w->expires_at_ms = sip_watch_now_ms();
	reactor_kick(st->reactor);
}

void sip_watch_refuse(struct sip_watch *w, int status, const char *phrase, unsigned seconds)
{
	struct sip_stack *st = w->stack;
	char min[16], clean[128];

	snprintf(min, sizeof(min), "%u", seconds);
	sip_clean_phrase(phrase ? phrase : sip_status_phrase_of(status), clean, sizeof(clean));
	sip_audit_answer(st, w->msg, status, clean);
	if ((status == 423 && seconds) || status == 421)
		sip_answer_ex(st, w->irq, status, phrase, 0, NULL,
			      TAG_IF(status == 423, SIPTAG_MIN_EXPIRES_STR(min)),
			      TAG_IF(status == 421, SIPTAG_REQUIRE_STR("eventlist")), TAG_END());
	else
		sip_answer_ex(st, w->irq, status, phrase, seconds,
			      status == 406 && w->eventlist ? "multipart/related, "
			      "application/rlmi+xml, application/pidf+xml" : NULL, TAG_END());
	nta_incoming_destroy(w->irq);
	w->irq = NULL;
	w->accepted = 0;
	sip_watch_finish(w, status);
}

void sip_watch_notify(struct sip_watch *w, enum sip_substate state, const char *reason,
		      const char *content_type, const char *body, size_t len)
{
	sip_watch_queue(w, sip_note_new(state, reason, content_type, body, len));
}

void sip_watch_set_eventlist(struct sip_watch *w)
{
	w->eventlist = 1;
}

void sip_watch_set_arg(struct sip_watch *w, void *arg)
{
	w->arg = arg;
}

void *sip_watch_arg(const struct sip_watch *w)
{
	return w->arg;
}

size_t sip_stack_watches(const struct sip_stack *st)
{
	return st->watches.n;
}

/* Non-zero if the Supported header lists option-tag. */
static int sip_supports(sip_supported_t const *k, const char *tag)
{
	for (; k; k = k->k_next)
		for (size_t i = 0; k->k_items && k->k_items[i]; i++)
			if (strcasecmp(k->k_items[i], tag) == 0)
				return 1;
	return 0;
}

/* Non-zero if Accept lists both multipart/related and application/rlmi+xml (RFC 4662 5.1). */
static int sip_accepts_rlmi(sip_accept_t const *ac)
{
	int multipart = 0, rlmi = 0;

	for (; ac; ac = ac->ac_next) {
		if (!ac->ac_type)
			continue;
		multipart |= strcasecmp(ac->ac_type, "multipart/related") == 0 ||
			     strcasecmp(ac->ac_type, "multipart/*") == 0 ||
			     strcasecmp(ac->ac_type, "*/*") == 0;
		rlmi |= strcasecmp(ac->ac_type, "application/rlmi+xml") == 0 ||
			strcasecmp(ac->ac_type, "application/*") == 0 ||
			strcasecmp(ac->ac_type, "*/*") == 0;
	}
	return multipart && rlmi;
}

/* Non-zero if an Accept header (or its absence) allows PIDF. */
static int sip_accepts_pidf(sip_accept_t const *ac)
{
	if (!ac)
		return 1;
	for (; ac; ac = ac->ac_next) {
		if (!ac->ac_type)
			continue;
		if (strcasecmp(ac->ac_type, "application/pidf+xml") == 0 ||
		    strcasecmp(ac->ac_type, "application/*") == 0 ||
		    strcasecmp(ac->ac_type, "*/*") == 0)
			return 1;
	}
	return 0;
}

void sip_watch_on_subscribe(struct sip_stack *st, nta_incoming_t *irq, sip_t const *sip,
			    const struct conf_peer *peer, const char *source)
{
	struct sip_subscribe_info info;
	struct sip_watch *w;
	su_home_t home[1] = { SU_HOME_INIT(home) };
	char event[64];

	sip_lower_copy(sip->sip_event->o_type, event, sizeof(event));
	memset(&info, 0, sizeof(info));
	info.peer = peer;
	info.source = source;
	info.request_uri = url_as_string(home, sip->sip_request->rq_url);
	info.from_uri = url_as_string(home, sip->sip_from->a_url);
	info.event = event;
	info.call_id = sip->sip_call_id ? sip->sip_call_id->i_id : NULL;
	info.expires = sip->sip_expires ? (long)sip->sip_expires->ex_delta : -1;
	info.accepts_pidf = sip_accepts_pidf(sip->sip_accept);
	info.eventlist = sip_supports(sip->sip_supported, "eventlist");
	info.accepts_rlmi = sip_accepts_rlmi(sip->sip_accept);
	w = gw_xcalloc(1, sizeof(*w));
	w->h.kind = SIP_H_WATCH;
	w->h.peer = peer;
	w->stack = st;
	w->irq = irq;
	w->msg = nta_incoming_getrequest(irq);
	STAILQ_INIT(&w->queue);
	snprintf(w->event, sizeof(w->event), "%s",
		 strcmp(event, "conference") == 0 ? "conference" : "presence");
	sip_track(st, &st->watches, &w->h, 1);
	if (!info.request_uri || !info.from_uri || !w->msg)
		sip_watch_refuse(w, 500, "Internal Server Error", 0);
	else
		st->cbs.subscribe(st->arg, w, &info);	/* accepts or refuses (and frees) */
	su_home_deinit(home);
}

/* The gateway shuts down: the watcher is told (terminated;reason=noresource), its owner not. */
void sip_watch_shutdown(struct sip_watch *w)
{
	w->accepted = 0;
	if (!w->leg) {
		sip_watch_finish(w, 0);
		return;
	}
	sip_watch_terminate(w, "noresource");
	if (!w->orq)
		sip_watch_finish(w, 0);
}

void sip_watch_free_all(struct sip_stack *st)
{
	struct sip_watch *w;

	while ((w = (struct sip_watch *)LIST_FIRST(&st->watches.head))) {
		w->accepted = 0;
		sip_watch_finish(w, 0);
	}
}

_Static_assert(offsetof(struct sip_watch, h) == 0, "sip_watch: h first");
