/* accept.c - the gateway's own accept(): connection limits for Sofia-SIP's TCP listeners.
 *
 * Sofia-SIP's tport owns its listening sockets and accepts every connection offered: no limit
 * per source or in total, and at the descriptor limit it takes the EMFILE as an event and tries
 * again at once, for ever (160 000 failed accepts in 2 s were seen, and 1.1 GB of log).  Its
 * call to accept() goes through the dynamic linker, and a definition in the executable comes
 * first, so this file defines accept() and decides there:
 *  - a connection from an address no peer network trusts is closed at once: such a source could
 *    only ever be answered 403;
 *  - a trusted source may hold at most conf's per-source number of connections, and all sources
 *    together the total; beyond that new ones are closed at once;
 *  - at the descriptor limit one descriptor is kept in reserve: it is given up to accept the
 *    pending connection and close it, so the listener is never left readable and spinning
 *    (accept_shed(), which the MSRP listener's error callback uses as well).
 * Every refusal is counted and logged at a bounded rate.  Nothing else in the process calls
 * accept(): libevent's listeners use accept4().
 *
 * Idle connections.  Sofia arms its idle timer (TPTAG_IDLE) on an accepted connection only once
 * something has been received on it, so one that never sends a byte would stay for ever.  A
 * sweep every half idle period asks the kernel (TCP_INFO) when data last went either way on each
 * accepted connection, and shuts down the ones silent for conf's tcp-idle: Sofia then reads the
 * end of stream and closes its side as after any peer's close.  The descriptor stays Sofia's.
 *
 * The state is the one global besides logging: accept() has no argument to carry a context.
 * sip.c installs it (accept_guard_install) once the configuration is known, and removes it.
 */
#include <errno.h>
#include <fcntl.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "gw.h"

struct accept_conn {
	int fd;
	dev_t dev;		/* the socket's identity, so a reused descriptor number is not taken */
	ino_t ino;		/* for the same connection */
	struct sockaddr_storage peer;
	struct timespec since;	/* accepted at (CLOCK_MONOTONIC) */
};

static struct {
	const struct conf *conf;	/* NULL: not installed, accept() just accepts */
	struct accept_conn *conns;
	size_t nconns;
	int reserve;			/* a descriptor kept for the EMFILE case, or -1 */
	struct event *sweep;		/* the idle sweep, while installed */
	struct accept_stats stats;
	struct log_limit log;		/* refusals */
	struct log_limit idle_log;	/* idle connections closed */
} guard = { .reserve = -1 };

static int same_address(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
	if (a->ss_family != b->ss_family)
		return 0;
	if (a->ss_family == AF_INET)
		return ((const struct sockaddr_in *)a)->sin_addr.s_addr ==
		       ((const struct sockaddr_in *)b)->sin_addr.s_addr;
	if (a->ss_family == AF_INET6)
		return memcmp(&((const struct sockaddr_in6 *)a)->sin6_addr,
			      &((const struct sockaddr_in6 *)b)->sin6_addr, 16) == 0;
	return 0;
}

/* Forgets the connections Sofia has closed since: their descriptor is gone, or is another
 * socket now. */
static void accept_prune(void)
{
	size_t kept = 0;

	for (size_t i = 0; i < guard.nconns; i++) {
		struct stat st;
		struct accept_conn *c = &guard.conns[i];

		if (fstat(c->fd, &st) == 0 && st.st_dev == c->dev && st.st_ino == c->ino)
			guard.conns[kept++] = *c;
	}
	guard.nconns = kept;
}

static size_t accept_from(const struct sockaddr_storage *peer)
{
	size_t n = 0;

	for (size_t i = 0; i < guard.nconns; i++)
		n += same_address(&guard.conns[i].peer, peer);
	return n;
}

static int accept_trusted(const struct sockaddr *sa)
{
	for (size_t i = 0; i < guard.conf->npeers; i++)
		if (conf_peer_trusts(&guard.conf->peers[i], sa))
			return 1;
	return 0;
}

static void accept_refuse(int fd, const char *why, const struct sockaddr_storage *peer,
			  unsigned long *counter)
{
	char text[64];

	close(fd);
	(*counter)++;
	gw_sockaddr_text((const struct sockaddr *)peer, text, sizeof(text));
	log_limited(&guard.log, CONF_LOG_NOTICE, "accept", "SIP connection from %s refused: %s",
		    text, why);
}

void accept_shed(int lfd, const char *what)
{
	int fd;

	guard.stats.emfile++;
	log_limited(&guard.log, CONF_LOG_WARNING, "accept",
		    "%s connection refused: no descriptor left (%s)", what, strerror(errno));
	if (guard.reserve < 0)
		return;
	/* give up the reserve to take the connection off the queue, and close it */
	close(guard.reserve);
	guard.reserve = -1;
	fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	if (fd >= 0)
		close(fd);
	guard.reserve = open("/dev/null", O_RDONLY | O_CLOEXEC);
}

int accept(int lfd, struct sockaddr *addr, socklen_t *addrlen)
{
	struct sockaddr_storage peer;
	socklen_t plen = sizeof(peer);
	struct stat st;
	int fd = accept4(lfd, (struct sockaddr *)&peer, &plen, SOCK_CLOEXEC);

	if (fd < 0 && (errno == EMFILE || errno == ENFILE) && guard.conf) {
		int saved = errno;

		accept_shed(lfd, "SIP");
		errno = saved;
		return -1;
	}
	if (fd < 0 || !guard.conf)
		goto out;
	if (!accept_trusted((const struct sockaddr *)&peer)) {
		accept_refuse(fd, "no peer network trusts this address", &peer, &guard.stats.untrusted);
		errno = ECONNABORTED;
		return -1;
	}
	if (accept_from(&peer) >= guard.conf->sip_max_conns_per_source ||
	    guard.nconns >= guard.conf->sip_max_conns) {
		accept_prune();
		if (accept_from(&peer) >= guard.conf->sip_max_conns_per_source) {
			accept_refuse(fd, "too many connections from this address", &peer,
				      &guard.stats.per_source);
			errno = ECONNABORTED;
			return -1;
		}
		if (guard.nconns >= guard.conf->sip_max_conns) {
			accept_refuse(fd, "too many connections", &peer, &guard.stats.total);
			errno = ECONNABORTED;
			return -1;
		}
	}
	if (fstat(fd, &st) == 0) {
		struct accept_conn *c;

		guard.conns = gw_xrealloc(guard.conns, (guard.nconns + 1) * sizeof(*guard.conns));
		c = &guard.conns[guard.nconns++];
		c->fd = fd;
		c->dev = st.st_dev;
		c->ino = st.st_ino;
		c->peer = peer;
		clock_gettime(CLOCK_MONOTONIC, &c->since);
	}
	guard.stats.accepted++;
out:
	if (fd >= 0 && addr && addrlen) {
		memcpy(addr, &peer, *addrlen < plen ? *addrlen : plen);
		*addrlen = plen;
	}
	return fd;
}

/* Milliseconds since c was accepted, from now. */
static unsigned long accept_age_ms(const struct accept_conn *c, const struct timespec *now)
{
	return (unsigned long)(now->tv_sec - c->since.tv_sec) * 1000UL +
	       (unsigned long)((now->tv_nsec - c->since.tv_nsec) / 1000000L);
}

static void accept_sweep(evutil_socket_t fd, short what, void *arg)
{
	unsigned idle = guard.conf->sip_tcp_idle_ms;
	struct timespec now;

	(void)fd, (void)what, (void)arg;
	accept_prune();
	clock_gettime(CLOCK_MONOTONIC, &now);
	for (size_t i = 0; i < guard.nconns; i++) {
		struct accept_conn *c = &guard.conns[i];
		struct tcp_info ti;
		socklen_t len = sizeof(ti);
		char text[64];

		if (accept_age_ms(c, &now) < idle)
			continue;
		if (getsockopt(c->fd, IPPROTO_TCP, TCP_INFO, &ti, &len) != 0 ||
		    ti.tcpi_last_data_recv < idle || ti.tcpi_last_data_sent < idle)
			continue;
		/* already shut down and not yet closed by Sofia: nothing more to do */
		if (ti.tcpi_state != TCP_ESTABLISHED && ti.tcpi_state != TCP_CLOSE_WAIT)
			continue;
		shutdown(c->fd, SHUT_RDWR);
		guard.stats.idle++;
		gw_sockaddr_text((const struct sockaddr *)&c->peer, text, sizeof(text));
		log_limited(&guard.idle_log, CONF_LOG_INFO, "accept",
			    "SIP connection from %s closed: nothing sent either way for %u ms", text,
			    idle);
	}
}

void accept_guard_install(const struct conf *conf, struct event_base *base)
{
	unsigned every = conf->sip_tcp_idle_ms / 2;
	struct timeval tv = { every / 1000, (every % 1000) * 1000 };

	guard.conf = conf;
	guard.nconns = 0;
	if (guard.reserve < 0)
		guard.reserve = open("/dev/null", O_RDONLY | O_CLOEXEC);
	guard.sweep = event_new(base, -1, EV_PERSIST, accept_sweep, NULL);
	if (!guard.sweep || event_add(guard.sweep, &tv) != 0)
		gw_fatal("accept: cannot arm the idle sweep");
}

void accept_guard_remove(void)
{
	if (guard.sweep)
		event_free(guard.sweep);
	guard.sweep = NULL;
	guard.conf = NULL;
	free(guard.conns);
	guard.conns = NULL;
	guard.nconns = 0;
	if (guard.reserve >= 0)
		close(guard.reserve);
	guard.reserve = -1;
}

const struct accept_stats *accept_guard_stats(void)
{
	return &guard.stats;
}
