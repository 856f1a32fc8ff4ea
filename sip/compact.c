/* compact.c - MESSAGE and OPTIONS outside dialogs answered without nta's server transaction.
 *
 * Over UDP a non-INVITE server transaction lives 64*T1 after its final response (RFC 3261
 * 17.2.2, Timer J) so that a retransmitted request gets the same answer again instead of being
 * taken for a new one.  nta keeps the whole request for that, its response, and copies of their
 * parsed headers: about 10.5 KB per MESSAGE for 32 s (docs/benchmarks.md).  A request that makes
 * no dialog needs far less to do the same job: which request it was (Call-ID, CSeq, From tag,
 * the top Via's branch and sent-by) and how it was answered (status, phrase, our To tag and the
 * few headers of ours).  That is struct sip_ctr, about 150 bytes plus the request's strings.
 *
 * The rules are those nta applies (RFC 3261 17.2.2, 17.2.3 and 8.2.2.2):
 *   - a request matching a record by Call-ID, CSeq, From tag and the top Via's branch and
 *     sent-by is a retransmission: absorbed while its answer is pending (no 100 Trying, as nta
 *     sends none for a non-INVITE), else answered again, identically;
 *   - one that matches Call-ID, CSeq and From tag but came by another branch is the same
 *     request reaching us by another path (a merged request): 482, and nothing else happens;
 *   - a record lives 64*T1 after its answer over UDP, and not at all over TCP or TLS.
 * The records are the table's; the request waiting for its answer is held by the caller
 * (struct sip_incoming in sip.c), with the transport it came by, so that a TCP answer goes back
 * on its connection as RFC 3261 18.2.2 says.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <sys/random.h>

#include <event2/event.h>

#include "sip_int.h"
#include "../gateway/stats.h"

#include <sofia-sip/nta_tag.h>
#include <sofia-sip/sip_status.h>
#include <sofia-sip/tport.h>

/* What identifies a request: the merge key (Call-ID, From tag, with the CSeq) and its path. */
enum { SIP_CTR_CALL_ID, SIP_CTR_FROM_TAG, SIP_CTR_BRANCH, SIP_CTR_HOST, SIP_CTR_PORT,
       SIP_CTR_NKEY };

struct sip_ctr {
	struct sip_ctr *hnext;		/* the bucket's chain */
	TAILQ_ENTRY(sip_ctr) done;	/* answered over UDP: on the table's list, by expiry */
	uint64_t expires_ms;
	char *phrase;			/* the answer's when not the standard one; else NULL */
	char *accept;			/* the answer's Accept, or NULL */
	char *unsupported;		/* the answer's Unsupported, or NULL */
	uint32_t hash;
	uint32_t cseq;
	uint32_t retry_after;
	uint16_t status;		/* 0 while the answer is pending */
	uint8_t method;			/* sip_method_t */
	uint8_t answered_done;		/* on the done list */
	uint16_t off[SIP_CTR_NKEY];	/* of each field in key */
	char tag[24];			/* "tag=" and our To tag */
	char key[];			/* the fields, each NUL-terminated */
};

struct sip_ctrs {
	struct sip_ctr **buckets;
	size_t nbuckets;		/* a power of two */
	size_t n;
	TAILQ_HEAD(, sip_ctr) done;
	uint64_t seed;			/* of the bucket hash: Call-IDs are the peers' choice */
	uint64_t tags;			/* To tags made so far */
	uint32_t lifetime_ms;
};

#define SIP_CTR_MAX_KEY 4096		/* longer keys: a full nta transaction instead */

static uint64_t sip_ctr_mix(uint64_t h)
{
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdULL;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ULL;
	h ^= h >> 33;
	return h;
}

static uint64_t sip_ctr_bytes(uint64_t h, const char *s)
{
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return (h ^ 0xff) * 1099511628211ULL;	/* the end of a field */
}

/* The merge key (Call-ID, CSeq number, From tag), seeded and mixed. */
static uint32_t sip_ctr_hash(const struct sip_ctrs *t, const char *call_id, uint32_t cseq,
			     const char *from_tag)
{
	uint64_t h = sip_ctr_bytes(t->seed, call_id);

	h = sip_ctr_bytes(h ^ cseq, from_tag);
	return (uint32_t)(sip_ctr_mix(h) >> 32);
}

struct sip_ctrs *sip_ctrs_new(uint32_t lifetime_ms)
{
	struct sip_ctrs *t = gw_xcalloc(1, sizeof(*t));

	t->nbuckets = 256;
	t->buckets = gw_xcalloc(t->nbuckets, sizeof(*t->buckets));
	TAILQ_INIT(&t->done);
	t->lifetime_ms = lifetime_ms;
	if (getrandom(&t->seed, sizeof(t->seed), 0) != (ssize_t)sizeof(t->seed))
		t->seed = ((uint64_t)time(NULL) << 17) ^ (uint64_t)(uintptr_t)t;
	t->tags = sip_ctr_mix(t->seed ^ 0x9e3779b97f4a7c15ULL);
	return t;
}

static void sip_ctr_destroy(struct sip_ctr *c)
{
	free(c->phrase);
	free(c->accept);
	free(c->unsupported);
	free(c);
}

static void sip_ctrs_unlink(struct sip_ctrs *t, struct sip_ctr *c)
{
	struct sip_ctr **pp = &t->buckets[c->hash & (t->nbuckets - 1)];

	while (*pp && *pp != c)
		pp = &(*pp)->hnext;
	if (*pp)
		*pp = c->hnext;
	if (c->answered_done)
		TAILQ_REMOVE(&t->done, c, done);
	t->n--;
}

void sip_ctrs_free(struct sip_ctrs *t)
{
	if (!t)
		return;
	for (size_t i = 0; i < t->nbuckets; i++) {
		struct sip_ctr *c = t->buckets[i], *next;

		for (; c; c = next) {
			next = c->hnext;
			sip_ctr_destroy(c);
		}
	}
	free(t->buckets);
	free(t);
}

size_t sip_ctrs_count(const struct sip_ctrs *t)
{
	return t ? t->n : 0;
}

static void sip_ctrs_grow(struct sip_ctrs *t)
{
	size_t nb = t->nbuckets * 2;
	struct sip_ctr **b = gw_xcalloc(nb, sizeof(*b));

	for (size_t i = 0; i < t->nbuckets; i++) {
		struct sip_ctr *c = t->buckets[i], *next;

		for (; c; c = next) {
			next = c->hnext;
			c->hnext = b[c->hash & (nb - 1)];
			b[c->hash & (nb - 1)] = c;
		}
	}
	free(t->buckets);
	t->buckets = b;
	t->nbuckets = nb;
}

static const char *sip_ctr_str(const char *s)
{
	return s ? s : "";
}

enum sip_ctr_match sip_ctrs_find(struct sip_ctrs *t, sip_t const *sip, struct sip_ctr **out)
{
	const char *f[SIP_CTR_NKEY] = {
		[SIP_CTR_CALL_ID] = sip->sip_call_id->i_id,
		[SIP_CTR_FROM_TAG] = sip_ctr_str(sip->sip_from->a_tag),
		[SIP_CTR_BRANCH] = sip_ctr_str(sip->sip_via->v_branch),
		[SIP_CTR_HOST] = sip_ctr_str(sip->sip_via->v_host),
		[SIP_CTR_PORT] = sip_ctr_str(sip->sip_via->v_port),
	};
	uint32_t cseq = sip->sip_cseq->cs_seq;
	uint8_t method = (uint8_t)sip->sip_request->rq_method;
	uint32_t h = sip_ctr_hash(t, f[SIP_CTR_CALL_ID], cseq, f[SIP_CTR_FROM_TAG]);
	size_t lens[SIP_CTR_NKEY], total = 0;
	struct sip_ctr *c;
	uint64_t bits;

	*out = NULL;
	for (c = t->buckets[h & (t->nbuckets - 1)]; c; c = c->hnext) {
		if (c->hash != h || c->cseq != cseq || c->method != method ||
		    strcmp(c->key + c->off[SIP_CTR_CALL_ID], f[SIP_CTR_CALL_ID]) != 0 ||
		    strcmp(c->key + c->off[SIP_CTR_FROM_TAG], f[SIP_CTR_FROM_TAG]) != 0)
			continue;
		*out = c;
		/* branch and host compared without case, as nta does */
		return strcasecmp(c->key + c->off[SIP_CTR_BRANCH], f[SIP_CTR_BRANCH]) == 0 &&
		       strcasecmp(c->key + c->off[SIP_CTR_HOST], f[SIP_CTR_HOST]) == 0 &&
		       strcmp(c->key + c->off[SIP_CTR_PORT], f[SIP_CTR_PORT]) == 0 ?
		       SIP_CTR_RETRANSMISSION : SIP_CTR_MERGED;
	}
	for (int k = 0; k < SIP_CTR_NKEY; k++) {
		lens[k] = strlen(f[k]) + 1;
		total += lens[k];
	}
	if (total > SIP_CTR_MAX_KEY)
		return SIP_CTR_TOO_LONG;
	c = gw_xcalloc(1, sizeof(*c) + total);
	c->hash = h;
	c->cseq = cseq;
	c->method = method;
	for (int k = 0, off = 0; k < SIP_CTR_NKEY; off += (int)lens[k], k++) {
		c->off[k] = (uint16_t)off;
		memcpy(c->key + off, f[k], lens[k]);
	}
	/* a To tag per request, the same in every retransmitted answer */
	bits = sip_ctr_mix(++t->tags);
	memcpy(c->tag, "tag=", 4);
	for (int i = 0; i < 16; i++)
		c->tag[4 + i] = "0123456789abcdef"[(bits >> (4 * i)) & 15];
	c->tag[20] = '\0';
	if (t->n >= t->nbuckets)
		sip_ctrs_grow(t);
	c->hnext = t->buckets[h & (t->nbuckets - 1)];
	t->buckets[h & (t->nbuckets - 1)] = c;
	t->n++;
	*out = c;
	return SIP_CTR_NEW;
}

int sip_ctr_status(const struct sip_ctr *c)
{
	return c->status;
}

void sip_ctrs_forget(struct sip_ctrs *t, struct sip_ctr *c)
{
	sip_ctrs_unlink(t, c);
	sip_ctr_destroy(c);
}

int sip_ctr_answered(struct sip_ctrs *t, struct sip_ctr *c, int status, const char *phrase,
		     unsigned retry_after, const char *accept, const char *unsupported,
		     int reliable, uint64_t now_ms)
{
	const char *standard = sip_status_phrase(status);

	if (reliable) {
		/* Timer J is 0 over TCP and TLS: nothing is retransmitted there */
		sip_ctrs_forget(t, c);
		return 0;
	}
	c->status = (uint16_t)status;
	c->retry_after = retry_after;
	if (phrase && (!standard || strcmp(phrase, standard) != 0))
		c->phrase = gw_xstrdup(phrase);
	if (accept)
		c->accept = gw_xstrdup(accept);
	if (unsupported)
		c->unsupported = gw_xstrdup(unsupported);
	c->expires_ms = now_ms + t->lifetime_ms;
	TAILQ_INSERT_TAIL(&t->done, c, done);
	c->answered_done = 1;
	return 1;
}

int64_t sip_ctrs_expire(struct sip_ctrs *t, uint64_t now_ms)
{
	struct sip_ctr *c;

	while ((c = TAILQ_FIRST(&t->done)) && c->expires_ms <= now_ms)
		sip_ctrs_forget(t, c);
	return c ? (int64_t)(c->expires_ms - now_ms) : -1;
}

/* ---- the stack's side: receiving, answering and answering again */

static uint64_t sip_compact_now_ms(void)
{
	return stats_now_us() / 1000;
}

/* The answer to req (borrowed) with our To tag, over tp when given (the transport the request
 * came by; else the one it is being delivered by, or the one its Via names).
 *
 * The headers it echoes (Via, From, To, Call-ID, CSeq) and our Allow and User-Agent are copies
 * of the structures only (msg_header_copy: the strings stay the request's, or the stack's),
 * where nta's complete_response() and sip_add_dup() copied every string (docs/benchmarks.md).
 * The answer holds a reference on the request (msg_set_parent), so that what its headers point
 * at lives as long as it does, queued on a connection or not.  Allow and User-Agent keep the
 * text written once at start, which Sofia sends as it stands; the echoed headers are encoded,
 * as before (Sofia keeps no text of a received header unless MSG_FLG_EXTRACT_COPY makes every
 * received message copy it). */
static void sip_compact_send(struct sip_stack *st, const char *tag, msg_t *req, tport_t *tp,
			     int status, const char *phrase, unsigned retry_after,
			     const char *accept, const char *unsupported)
{
	msg_t *reply = nta_msg_create(st->agent, 0);
	sip_t *rsip = reply ? sip_object(reply) : NULL;
	sip_t const *q = sip_object(req);
	su_home_t *home = reply ? msg_home(reply) : NULL;
	sip_to_t *to;
	sip_retry_after_t ra[1];

	if (!rsip || !q || !q->sip_to || !q->sip_via || !q->sip_from || !q->sip_call_id)
		goto fail;
	msg_set_parent(reply, req);
	to = sip_to_copy(home, q->sip_to);
	if (!to || sip_to_tag(home, to, tag) < 0 ||
	    msg_header_insert(reply, (msg_pub_t *)rsip, (msg_header_t *)to) < 0 ||
	    !(phrase = su_strdup(home, phrase)) ||
	    !(rsip->sip_via = sip_via_copy(home, q->sip_via)) ||
	    !(rsip->sip_from = sip_from_copy(home, q->sip_from)) ||
	    !(rsip->sip_call_id = sip_call_id_copy(home, q->sip_call_id)) ||
	    msg_header_insert(reply, (msg_pub_t *)rsip,
			      (msg_header_t *)sip_allow_copy(home, st->allow)) < 0 ||
	    msg_header_insert(reply, (msg_pub_t *)rsip,
			      (msg_header_t *)sip_user_agent_copy(home, st->user_agent)) < 0)
		goto fail;
	if (retry_after) {
		sip_retry_after_init(ra);
		ra->af_delta = retry_after;
		if (sip_add_dup(reply, rsip, (sip_header_t const *)ra) < 0)
			goto fail;
	}
	if ((accept && sip_add_make(reply, rsip, sip_accept_class, accept) < 0) ||
	    (unsupported && sip_add_make(reply, rsip, sip_unsupported_class, unsupported) < 0))
		goto fail;
	/* the status line and CSeq that nta would add, here so that their text is written once
	 * (encode.c) rather than by Sofia's encoders */
	if (!q->sip_cseq ||
	    msg_header_insert(reply, (msg_pub_t *)rsip, (msg_header_t *)
			      sip_status_create(home, (unsigned)status, phrase, NULL)) < 0 ||
	    msg_header_insert(reply, (msg_pub_t *)rsip, (msg_header_t *)
			      sip_cseq_copy(home, q->sip_cseq)) < 0 ||
	    sip_encode_fixed(reply, rsip) < 0)
		goto fail;
	/* takes reply and the reference on req, sent or not */
	if (nta_msg_mreply(st->agent, reply, rsip, status, phrase, msg_ref_create(req),
			   TAG_IF(tp, NTATAG_TPORT(tp)), TAG_END()) < 0)
		log_warn("cannot send the %d answer to a SIP request", status);
	return;
fail:
	if (reply)
		msg_destroy(reply);
	log_warn("cannot make the %d answer to a SIP request", status);
}

static void sip_compact_timer_cb(evutil_socket_t fd, short what, void *arg);

static void sip_compact_arm(struct sip_stack *st, int64_t in_ms)
{
	struct timeval tv;

	if (in_ms < 0 || evtimer_pending(st->ctr_ev, NULL))
		return;
	/* records end in batches: one wakeup covers those of the next 100 ms */
	in_ms += 100;
	tv.tv_sec = in_ms / 1000;
	tv.tv_usec = (in_ms % 1000) * 1000;
	evtimer_add(st->ctr_ev, &tv);
}

static void sip_compact_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct sip_stack *st = arg;

	(void)fd;
	(void)what;
	sip_compact_arm(st, sip_ctrs_expire(st->ctrs, sip_compact_now_ms()));
}

void sip_compact_init(struct sip_stack *st)
{
	st->ctrs = sip_ctrs_new(64 * st->conf->sip_t1_ms);
	st->ctr_ev = evtimer_new(st->base, sip_compact_timer_cb, st);
	if (!st->ctr_ev)
		gw_fatal("event_new failed");
}

void sip_compact_free(struct sip_stack *st)
{
	if (st->ctr_ev)
		event_free(st->ctr_ev);
	st->ctr_ev = NULL;
	sip_ctrs_free(st->ctrs);
	st->ctrs = NULL;
}

int sip_compact_takes(sip_t const *sip)
{
	sip_method_t m = sip->sip_request->rq_method;

	return (m == sip_method_message || m == sip_method_options) && !sip->sip_to->a_tag &&
	       sip->sip_call_id && sip->sip_cseq && sip->sip_from && sip->sip_via;
}

int sip_compact_receive(struct sip_stack *st, msg_t *msg, sip_t const *sip,
			struct sip_ctr **out, tport_t **tp)
{
	struct sip_ctr *c;

	*out = NULL;
	*tp = NULL;
	switch (sip_ctrs_find(st->ctrs, sip, &c)) {
	case SIP_CTR_NEW:
		*out = c;
		*tp = tport_delivered_by(nta_agent_tports(st->agent), msg);
		if (*tp)
			*tp = tport_ref(*tp);
		return 0;
	case SIP_CTR_RETRANSMISSION:
		/* answered: the same answer again; pending: absorbed (RFC 3261 17.2.2) */
		if (c->status)
			sip_compact_send(st, c->tag, msg, NULL, c->status,
					 c->phrase ? c->phrase : sip_status_phrase(c->status),
					 c->retry_after, c->accept, c->unsupported);
		return 1;
	case SIP_CTR_MERGED:
		/* RFC 3261 8.2.2.2: the same request by another path */
		nta_msg_treply(st->agent, msg_ref_create(msg), 482, "Loop Detected", TAG_END());
		return 1;
	case SIP_CTR_TOO_LONG:
		break;
	}
	return -1;
}

void sip_compact_answer(struct sip_stack *st, struct sip_ctr *c, msg_t *req, tport_t *tp,
			int status, const char *phrase, unsigned retry_after, const char *accept,
			const char *unsupported)
{
	char clean[128];
	const char *standard = sip_status_phrase(status);
	uint64_t now = sip_compact_now_ms();

	sip_clean_phrase(phrase ? phrase : standard ? standard : "", clean, sizeof(clean));
	if (!clean[0])
		strcpy(clean, "Unknown");
	sip_count_status(st, 1, status);
	sip_compact_send(st, c->tag, req, tp, status, clean, retry_after, accept, unsupported);
	if (sip_ctr_answered(st->ctrs, c, status, clean, retry_after, accept, unsupported,
			     tp ? tport_is_reliable(tp) : 0, now))
		sip_compact_arm(st, sip_ctrs_expire(st->ctrs, now));
	if (tp)
		tport_unref(tp);
}
