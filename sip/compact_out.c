/* compact_out.c - a MESSAGE of ours over UDP sent without nta's client transaction.
 *
 * nta's client transaction for a MESSAGE keeps the request and, once answered, the response
 * until Timer K ends it, T4 after the final response over UDP (RFC 3261 17.1.2.2): ~7 KB per
 * MESSAGE sent, and the freeing of both, cold, T4 later (docs/benchmarks.md).  What the
 * transaction does in that time is absorb retransmissions of the final response, which a user
 * agent's core would drop anyway (RFC 3261 18.1.2: a response matching no transaction goes to
 * the core; sip.c's message callback drops stray responses).  Here the request goes to the
 * transport directly (tport_tsend, with a Via as nta would add it) and a record of about 250
 * bytes does the rest of a non-INVITE client transaction's job (RFC 3261 17.1.2):
 *   - Timer E: the request sent again T1, 2T1, 4T1 ... apart, at most T2, and T2 apart once a
 *     provisional response came (Proceeding);
 *   - Timer F: no final response 64*T1 after the request: 408, as nta reports it;
 *   - a transport error for the request's destination before its final response (an ICMP
 *     port unreachable, through tport_pend() as nta registers it): 503, as nta reports it;
 *   - a response belongs to a record by its top Via's branch and its CSeq method (17.1.3);
 *     the branch is "z9hG4bK" and 64 random bits of ours, which name the record;
 *   - the final response is reported and the record and the request freed at once (no Timer
 *     K: a duplicate of the response is then a stray one, dropped).
 * Over TCP and TLS, nta's transaction already ends with its final response (Timer K is zero
 * there) and knows what to do when a connection fails, so those requests stay nta's, as do
 * routes whose address is a name (nta resolves it) and requests nta would have to send by TCP
 * for their size (sip.c decides, sip_cout_send() says).
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>

#include <event2/event.h>

#include "sip_int.h"
#include "../gateway/stats.h"

#include <sofia-sip/msg_addr.h>
#include <sofia-sip/tport.h>

#define SIP_COUT_T2_MS 4000u	/* RFC 3261 T2, nta's too */
#define SIP_COUT_BRANCH_MAGIC "z9hG4bK"
#define SIP_COUT_TOKEN 13	/* 13 x 5 bits: the 64 bits of the id */

struct sip_cout {
	struct sip_cout *hnext;		/* the bucket's chain */
	struct sip_stack *st;
	uint64_t id;			/* its branch's bits */
	msg_t *req;			/* a reference: sent again by Timer E */
	tport_t *tp;			/* the primary transport it goes by (a reference) */
	int pending;			/* tport_pend()'s handle, or 0 */
	sip_cout_fn *fn;		/* told of the final response (408, 503), once */
	void *arg;
	uint64_t deadline_ms;		/* Timer F */
	uint32_t interval_ms;		/* Timer E's next */
	int proceeding;			/* a provisional response came */
	int failed;			/* could not be sent: 503 from the loop, as nta reports it */
	int last;			/* the timer is armed for Timer F's deadline */
	tp_name_t tpn[1];		/* the destination; its strings in names */
	char names[64];			/* host, NUL, port, NUL */
	struct event *ev;		/* Timer E and F: event_assign()ed in the tail */
};

struct sip_couts {
	struct sip_cout **buckets;
	size_t nbuckets;		/* a power of two */
	size_t n;
	const struct timeval *t1_tv;	/* libevent's common timeout of T1: an O(1) queue */
	uint32_t t1_ms, t2_ms;
};

static uint64_t sip_cout_now_ms(void)
{
	return stats_now_us() / 1000;
}

void sip_cout_init(struct sip_stack *st)
{
	struct sip_couts *t = gw_xcalloc(1, sizeof(*t));
	struct timeval tv;

	t->nbuckets = 256;
	t->buckets = gw_xcalloc(t->nbuckets, sizeof(*t->buckets));
	t->t1_ms = st->conf->sip_t1_ms;
	t->t2_ms = t->t1_ms > SIP_COUT_T2_MS ? t->t1_ms : SIP_COUT_T2_MS;
	tv.tv_sec = t->t1_ms / 1000;
	tv.tv_usec = (t->t1_ms % 1000) * 1000;
	t->t1_tv = event_base_init_common_timeout(st->base, &tv);
	st->couts = t;
}

static void sip_cout_unlink(struct sip_couts *t, struct sip_cout *c)
{
	struct sip_cout **pp = &t->buckets[c->id & (t->nbuckets - 1)];

	while (*pp && *pp != c)
		pp = &(*pp)->hnext;
	if (*pp) {
		*pp = c->hnext;
		t->n--;
	}
}

/* Ends c: out of the table, its timer stopped, its request released and freed. */
static void sip_cout_destroy(struct sip_stack *st, struct sip_cout *c)
{
	sip_cout_unlink(st->couts, c);
	event_del(c->ev);
	if (c->pending)
		tport_release(c->tp, c->pending, c->req, NULL, (tp_client_t *)c, 0);
	tport_unref(c->tp);
	msg_destroy(c->req);
	free(c);
}

void sip_cout_free(struct sip_stack *st)
{
	struct sip_couts *t = st->couts;

	if (!t)
		return;
	for (size_t i = 0; i < t->nbuckets; i++)
		while (t->buckets[i])
			sip_cout_destroy(st, t->buckets[i]);
	free(t->buckets);
	free(t);
	st->couts = NULL;
}

static void sip_cout_grow(struct sip_couts *t)
{
	size_t n = t->nbuckets * 2;
	struct sip_cout **b = gw_xcalloc(n, sizeof(*b));

	for (size_t i = 0; i < t->nbuckets; i++) {
		struct sip_cout *c = t->buckets[i], *next;

		for (; c; c = next) {
			next = c->hnext;
			c->hnext = b[c->id & (n - 1)];
			b[c->id & (n - 1)] = c;
		}
	}
	free(t->buckets);
	t->buckets = b;
	t->nbuckets = n;
}

static struct sip_cout *sip_cout_find(const struct sip_couts *t, uint64_t id)
{
	struct sip_cout *c = t->buckets[id & (t->nbuckets - 1)];

	while (c && c->id != id)
		c = c->hnext;
	return c;
}

static const char sip_cout_alphabet[] = "0123456789abcdefghijklmnopqrstuv";

void sip_cout_branch(uint64_t id, char out[SIP_COUT_BRANCH_LEN])
{
	size_t m = sizeof(SIP_COUT_BRANCH_MAGIC) - 1;

	memcpy(out, SIP_COUT_BRANCH_MAGIC, m);
	for (int i = SIP_COUT_TOKEN - 1; i >= 0; i--, id >>= 5)
		out[m + (size_t)i] = sip_cout_alphabet[id & 31];
	out[m + SIP_COUT_TOKEN] = '\0';
}

int sip_cout_branch_id(const char *branch, uint64_t *id)
{
	size_t m = sizeof(SIP_COUT_BRANCH_MAGIC) - 1;
	uint64_t v = 0;

	if (!branch || strlen(branch) != m + SIP_COUT_TOKEN ||
	    strncasecmp(branch, SIP_COUT_BRANCH_MAGIC, m) != 0)
		return -1;
	for (size_t i = 0; i < SIP_COUT_TOKEN; i++) {
		char ch = branch[m + i];
		unsigned d;

		if (ch >= '0' && ch <= '9')
			d = (unsigned)(ch - '0');
		else if (ch >= 'a' && ch <= 'v')
			d = (unsigned)(ch - 'a') + 10;
		else if (ch >= 'A' && ch <= 'V')
			d = (unsigned)(ch - 'A') + 10;
		else
			return -1;
		if (i == 0 && d > 15)
			return -1;	/* 65 bits: the first character holds 4 */
		v = (v << 5) | d;
	}
	*id = v;
	return 0;
}

uint32_t sip_cout_next_interval(uint32_t interval_ms, int proceeding, uint32_t t2_ms)
{
	if (proceeding || interval_ms >= t2_ms / 2)
		return t2_ms;
	return interval_ms * 2;
}

static void sip_cout_arm(struct sip_cout *c, uint64_t now_ms)
{
	uint64_t at = now_ms + c->interval_ms;
	struct timeval tv;

	if (at >= c->deadline_ms) {
		at = c->deadline_ms;
		c->last = 1;	/* its firing is Timer F's, whatever the clock reads then */
	}
	tv.tv_sec = (time_t)((at - now_ms) / 1000);
	tv.tv_usec = (suseconds_t)((at - now_ms) % 1000) * 1000;
	evtimer_add(c->ev, &tv);
}

/* Reports status to c's owner and ends c. */
static void sip_cout_end(struct sip_cout *c, sip_t const *sip, int status, const char *phrase)
{
	struct sip_stack *st = c->st;
	sip_cout_fn *fn = c->fn;
	void *arg = c->arg;
	msg_t *req = msg_ref_create(c->req);	/* the request, for the owner's audit */

	sip_cout_destroy(st, c);
	fn(arg, sip ? sip : sip_object(req), status, phrase);
	msg_destroy(req);
}

static int sip_cout_send_now(struct sip_cout *c)
{
	return tport_tsend(c->tp, c->req, c->tpn, TAG_END()) ? 0 : -1;
}

static void sip_cout_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct sip_cout *c = arg;
	uint64_t now = sip_cout_now_ms();

	(void)fd;
	(void)what;
	if (c->failed) {
		sip_cout_end(c, NULL, 503, "Service Unavailable");
		return;
	}
	if (c->last || now >= c->deadline_ms) {
		sip_cout_end(c, NULL, 408, "Request Timeout");		/* Timer F */
		return;
	}
	/* Timer E: a failed resend is left to the next one, or to Timer F, as nta does */
	(void)sip_cout_send_now(c);
	c->interval_ms = sip_cout_next_interval(c->interval_ms, c->proceeding, c->st->couts->t2_ms);
	sip_cout_arm(c, now);
}

/* tport's report of an error for the request's destination (tport_pend). */
static void sip_cout_tport_error(tp_stack_t *stack, tp_client_t *client, tport_t *tp, msg_t *msg,
				 int error)
{
	struct sip_cout *c = (struct sip_cout *)client;

	(void)stack;
	(void)tp;
	(void)msg;
	log_debug("a transport error for a SIP MESSAGE of ours: %s", strerror(error));
	sip_cout_end(c, NULL, 503, "Service Unavailable");	/* released there, as nta does */
}

/* The top Via nta would add for tp (nta keeps its Via for each transport as the transport's
 * magic, the last of the list being the one it puts in requests) with rport (NTATAG_CLIENT_RPORT)
 * and our branch. */
static int sip_cout_via(msg_t *msg, sip_t *sip, tport_t *tp, const char *branch)
{
	sip_via_t const *tv = (sip_via_t const *)tport_magic(tp);
	su_home_t *home = msg_home(msg);
	sip_via_t *v;

	while (tv && tv->v_next)
		tv = tv->v_next;
	if (!tv || !(v = sip_via_create(home, tv->v_host, tv->v_port, tv->v_protocol, "rport",
					branch, NULL)))
		return -1;
	return msg_header_insert(msg, (msg_pub_t *)sip, (msg_header_t *)v);
}

struct sip_cout *sip_cout_send(struct sip_stack *st, msg_t *msg, const char *host,
			       const char *port, sip_cout_fn *fn, void *arg)
{
	struct sip_couts *t = st->couts;
	sip_t *sip = sip_object(msg);
	size_t hl = strlen(host) + 1, pl = strlen(port) + 1;
	size_t off = (sizeof(struct sip_cout) + 15) & ~(size_t)15;
	char branch[sizeof("branch=") + SIP_COUT_BRANCH_LEN];
	struct sip_cout *c;
	tport_t *tp;
	uint64_t id;

	if (!t || !sip || hl + pl > sizeof(c->names))
		return NULL;
	c = gw_xcalloc(1, off + event_get_struct_event_size());
	c->ev = (struct event *)((char *)c + off);
	c->st = st;
	c->fn = fn;
	c->arg = arg;
	memcpy(c->names, host, hl);
	memcpy(c->names + hl, port, pl);
	c->tpn->tpn_proto = "udp";
	c->tpn->tpn_canon = c->tpn->tpn_host = c->names;
	c->tpn->tpn_port = c->names + hl;
	tp = tport_by_name(nta_agent_tports(st->agent), c->tpn);
	if (!tp || !tport_is_udp(tp)) {
		free(c);
		return NULL;		/* no UDP transport for it: nta's transaction says why */
	}
	/* from here on msg is c's */
	c->tp = tport_ref(tp);
	c->req = msg;
	do
		sip_random_bits(st, &id);
	while (sip_cout_find(t, id));
	c->id = id;
	memcpy(branch, "branch=", 7);
	sip_cout_branch(id, branch + 7);
	event_assign(c->ev, st->base, -1, 0, sip_cout_timer_cb, c);
	if (sip_complete_message(msg) < 0 || msg_serialize(msg, (msg_pub_t *)sip) < 0 ||
	    sip_cout_via(msg, sip, tp, branch) < 0 || sip_cout_send_now(c) < 0) {
		/* reported from the loop, as nta's transaction reports a request it cannot
		 * send (its owner is not told before this returns) */
		log_debug("cannot send a SIP MESSAGE to %s:%s over UDP", host, port);
		struct timeval now = { 0, 0 };

		c->failed = 1;
		evtimer_add(c->ev, &now);
	} else {
		c->pending = tport_pend(tp, msg, sip_cout_tport_error, (tp_client_t *)c);
		if (c->pending < 0)
			c->pending = 0;
		c->interval_ms = t->t1_ms;
		c->deadline_ms = sip_cout_now_ms() + 64 * (uint64_t)t->t1_ms;
		evtimer_add(c->ev, t->t1_tv);
	}
	if (t->n >= t->nbuckets)
		sip_cout_grow(t);
	c->hnext = t->buckets[id & (t->nbuckets - 1)];
	t->buckets[id & (t->nbuckets - 1)] = c;
	t->n++;
	return c;
}

void sip_cout_forget(struct sip_stack *st, struct sip_cout *c)
{
	sip_cout_destroy(st, c);
}

int sip_cout_response(struct sip_stack *st, sip_t const *sip)
{
	struct sip_cout *c;
	uint64_t id;
	int status;

	if (!st->couts || !sip->sip_status || !sip->sip_via || !sip->sip_cseq ||
	    sip->sip_cseq->cs_method != sip_method_message ||
	    sip_cout_branch_id(sip->sip_via->v_branch, &id) < 0 ||
	    !(c = sip_cout_find(st->couts, id)))
		return 0;
	status = sip->sip_status->st_status;
	if (status < 200) {
		c->proceeding = 1;	/* Timer E goes on, T2 apart, from its next firing */
		return 1;
	}
	sip_cout_end(c, sip, status, sip->sip_status->st_phrase);
	return 1;
}
