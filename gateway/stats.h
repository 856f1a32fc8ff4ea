/* stats.h - what the gateway counts, for the metrics endpoint (metrics.c) and the admin commands
 * (admin.c).  Counters only grow; gauges (subscriptions, dialogs, sessions, rooms, pending
 * messages) are read from their modules when asked.  One thread: plain integers.
 *
 * The whole-process counters live in struct gw (gw->stats); a peer network's in its runtime
 * record (gw_peer_of(gw, peer)->stats), which a reload keeps for a peer that remains. */
#ifndef GW_STATS_H
#define GW_STATS_H

#include <stdint.h>

/* Which way a message went. */
enum stats_dir {
	STATS_SIP_TO_XMPP,
	STATS_XMPP_TO_SIP,
	STATS_NDIR,
};

/* What became of it. */
enum stats_verdict {
	STATS_DELIVERED,	/* SIP 2xx / the XMPP server took it (no bounce) */
	STATS_FAILED,		/* the other side refused it or did not answer */
	STATS_REFUSED,		/* the gateway refused it (policy, limits, malformed, shutting down) */
	STATS_NVERDICT,
};

/* Delivery latency histogram: upper bounds in milliseconds, then +Inf. */
#define STATS_LATENCY_BOUNDS_MS { 1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000 }
#define STATS_NLATENCY 13

/* SIP status codes 100..699 counted one by one. */
#define STATS_SIP_MIN 100
#define STATS_NSIP 600

struct stats_peer {
	unsigned long long messages[STATS_NDIR][STATS_NVERDICT];
	unsigned long long requests_in;		/* SIP requests received from the peer */
	unsigned long long requests_out;	/* SIP requests sent to it */
	unsigned long long refused;		/* its requests answered 403/503 by the hub policy */
	unsigned long long options_failed;	/* health checks it did not answer */
};

struct stats {
	uint64_t started_ms;			/* gw_now_ms() at start */
	uint64_t started_wall_ms;		/* the same moment on the wall clock (Unix time) */
	unsigned long long messages[STATS_NDIR][STATS_NVERDICT];
	unsigned long long sip_sent[STATS_NSIP];	/* final and provisional statuses we sent */
	unsigned long long sip_received[STATS_NSIP];	/* statuses of our requests' answers */
	unsigned long long latency[STATS_NDIR][STATS_NLATENCY + 1];	/* last: +Inf */
	unsigned long long latency_sum_us[STATS_NDIR];
	unsigned long long latency_count[STATS_NDIR];
	unsigned long long link_connects;	/* component streams that came up */
	unsigned long long link_losses;		/* ... and went down again */
	unsigned long long store_errors;
	unsigned long long sessions_started;
	unsigned long long sessions_ended;
	unsigned long long reloads;		/* applied */
	unsigned long long reloads_failed;	/* refused: the file had errors */
};

/* Sets the start time (started_ms, and the wall clock's). */
void stats_start(struct stats *st, uint64_t now_ms);
/* Counts one message's verdict and, when latency_us is not UINT64_MAX, its delivery latency. */
void stats_message(struct stats *st, struct stats_peer *ps, enum stats_dir dir,
		   enum stats_verdict verdict, uint64_t latency_us);
/* Counts a SIP status sent or received (codes outside 100..699 are ignored). */
void stats_sip_status(struct stats *st, int sent, int status);
/* Monotonic microseconds, for latencies (a vDSO call: cheap on every message's path). */
uint64_t stats_now_us(void);

#endif
