/* stats.c - counting (stats.h). */
#include <stddef.h>
#include <time.h>

#include "stats.h"

void stats_start(struct stats *st, uint64_t now_ms)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	st->started_ms = now_ms;
	st->started_wall_ms = (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

void stats_message(struct stats *st, struct stats_peer *ps, enum stats_dir dir,
		   enum stats_verdict verdict, uint64_t latency_us)
{
	static const unsigned bounds_ms[STATS_NLATENCY] = STATS_LATENCY_BOUNDS_MS;
	size_t b = 0;

	if (dir >= STATS_NDIR || verdict >= STATS_NVERDICT)
		return;
	st->messages[dir][verdict]++;
	if (ps)
		ps->messages[dir][verdict]++;
	if (latency_us == UINT64_MAX)
		return;
	while (b < STATS_NLATENCY && latency_us > (uint64_t)bounds_ms[b] * 1000u)
		b++;
	st->latency[dir][b]++;
	st->latency_sum_us[dir] += latency_us;
	st->latency_count[dir]++;
}

void stats_sip_status(struct stats *st, int sent, int status)
{
	if (status < STATS_SIP_MIN || status >= STATS_SIP_MIN + STATS_NSIP)
		return;
	if (sent)
		st->sip_sent[status - STATS_SIP_MIN]++;
	else
		st->sip_received[status - STATS_SIP_MIN]++;
}

uint64_t stats_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}
