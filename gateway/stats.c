/* stats.c - counting (stats.h). */
#include <stddef.h>

#include "stats.h"

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
