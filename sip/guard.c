/* guard.c - what reaches Sofia-SIP's sockets: trust and limits below the SIP stack.
 *
 * Sofia-SIP's tport owns the SIP sockets, and nua acts on some requests before the gateway sees
 * them: an in-dialog NOTIFY is answered 200 and a BYE ends its session whoever sent it.  So the
 * peering trust must hold before Sofia reads a byte.  Sofia's calls to accept() and recvmsg()
 * go through the dynamic linker, and a definition in the executable comes first, so this file
 * defines both and decides there:
 *  - accept(): a connection from an address no peer network trusts is closed at once; a trusted
 *    source may hold at most conf's per-source number of connections, and all sources together
 *    the total; beyond that new ones are closed at once.  At the descriptor limit one descriptor
 *    kept in reserve is given up to accept the pending connection and close it, so the listener
 *    is never left readable and spinning (guard_shed(), which the MSRP listener uses as well).
 *  - recvmsg() on the SIP UDP sockets: a datagram from an address no peer network trusts never
 *    reaches Sofia.  A request other than ACK is answered 403 here, statelessly (RFC 3261
 *    section 8.2.6); a response or anything unparsable is dropped.
 *  - idle connections: Sofia arms its idle timer (TPTAG_IDLE) on an accepted connection only
 *    once something has been received on it, so one that never sends a byte would stay for
 *    ever.  A sweep every half idle period asks the kernel (TCP_INFO) when data last went either
 *    way on each accepted connection, and shuts down the ones silent for conf's tcp-idle: Sofia
 *    then reads the end of stream and closes its side as after any peer's close.
 * Every refusal is counted and logged at a bounded rate.  Nothing else in the process calls
 * accept() or recvmsg() on these sockets: libevent's listeners use accept4(), the XMPP link
 * recv().
 *
 * The state is the one global besides logging: accept() and recvmsg() have no argument to
 * carry a context.  sip.c installs it (guard_install) once the configuration is known, tells it
 * which descriptors are the SIP UDP sockets (guard_adopt_udp), and removes it.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <sofia-sip/msg.h>
#include <sofia-sip/msg_header.h>
#include <sofia-sip/sip.h>
#include <sofia-sip/sip_header.h>

#include "../gateway/gw.h"
#include "sip.h"

#define GUARD_MAX_UDP 16		/* SIP UDP sockets recognised (one per <listen>) */
#define GUARD_MAX_DATAGRAM 65536	/* the most a refused datagram is read for its answer */

struct guard_conn {
	int fd;
	dev_t dev;		/* the socket's identity, so a reused descriptor number is not taken */
	ino_t ino;		/* for the same connection */
	struct sockaddr_storage peer;
	struct timespec since;	/* accepted at (CLOCK_MONOTONIC) */
};

static struct {
	const struct conf *conf;	/* NULL: not installed, accept() and recvmsg() just do it */
	struct guard_conn *conns;
	size_t nconns;
	int udp[GUARD_MAX_UDP];		/* the SIP UDP sockets */
	size_t nudp;
	int reserve;			/* a descriptor kept for the EMFILE case, or -1 */
	struct event *sweep;		/* the idle sweep, while installed */
	struct guard_stats stats;
	struct log_limit log;		/* connections refused */
	struct log_limit udp_log;	/* datagrams refused */
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

static int guard_trusted(const struct sockaddr *sa)
{
	for (size_t i = 0; i < guard.conf->npeers; i++)
		if (conf_peer_trusts(guard.conf->peers[i], sa))
			return 1;
	return 0;
}

/* ---------------------------------------------------------------- accept() */

/* Forgets the connections Sofia has closed since: their descriptor is gone, or is another
 * socket now. */
static void guard_prune(void)
{
	size_t kept = 0;

	for (size_t i = 0; i < guard.nconns; i++) {
		struct stat st;
		struct guard_conn *c = &guard.conns[i];

		if (fstat(c->fd, &st) == 0 && st.st_dev == c->dev && st.st_ino == c->ino)
			guard.conns[kept++] = *c;
	}
	guard.nconns = kept;
}

static size_t guard_conns_from(const struct sockaddr_storage *peer)
{
	size_t n = 0;

	for (size_t i = 0; i < guard.nconns; i++)
		n += same_address(&guard.conns[i].peer, peer);
	return n;
}

static void guard_refuse_conn(int fd, const char *why, const struct sockaddr_storage *peer,
			      unsigned long *counter)
{
	char text[64];

	close(fd);
	(*counter)++;
	gw_sockaddr_text((const struct sockaddr *)peer, text, sizeof(text));
	log_limited(&guard.log, CONF_LOG_NOTICE, "guard", "SIP connection from %s refused: %s",
		    text, why);
}

void guard_shed(int lfd, const char *what)
{
	int fd;

	guard.stats.emfile++;
	log_limited(&guard.log, CONF_LOG_WARNING, "guard",
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

		guard_shed(lfd, "SIP");
		errno = saved;
		return -1;
	}
	if (fd < 0 || !guard.conf)
		goto out;
	if (!guard_trusted((const struct sockaddr *)&peer)) {
		guard_refuse_conn(fd, "no peer network trusts this address", &peer,
				  &guard.stats.untrusted);
		errno = ECONNABORTED;
		return -1;
	}
	if (guard_conns_from(&peer) >= guard.conf->sip_max_conns_per_source ||
	    guard.nconns >= guard.conf->sip_max_conns) {
		guard_prune();
		if (guard_conns_from(&peer) >= guard.conf->sip_max_conns_per_source) {
			guard_refuse_conn(fd, "too many connections from this address", &peer,
					  &guard.stats.per_source);
			errno = ECONNABORTED;
			return -1;
		}
		if (guard.nconns >= guard.conf->sip_max_conns) {
			guard_refuse_conn(fd, "too many connections", &peer, &guard.stats.total);
			errno = ECONNABORTED;
			return -1;
		}
	}
	if (fstat(fd, &st) == 0) {
		struct guard_conn *c;

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

/* ---------------------------------------------------------------- recvmsg() */

static int guard_is_sip_udp(int fd)
{
	for (size_t i = 0; i < guard.nudp; i++)
		if (guard.udp[i] == fd)
			return 1;
	return 0;
}

/* Appends the header h ("Name: value\r\n") to out; 0, or -1 if it does not fit. */
static int guard_put_header(char *out, size_t cap, size_t *len, const sip_header_t *h)
{
	issize_t n = msg_header_e(out + *len, (isize_t)(cap - *len), (const msg_header_t *)h, 0);

	if (n < 0 || (size_t)n >= cap - *len)
		return -1;
	*len += (size_t)n;
	return 0;
}

/* The stateless 403 to a request from an untrusted source (RFC 3261 section 8.2.6: the Vias,
 * From, To with a tag, Call-ID and CSeq of the request).  Returns its length, or 0 when the
 * datagram gets no answer: a response, an ACK, or not a SIP request at all. */
static size_t guard_refusal(const char *data, size_t len, char *out, size_t cap,
			    char *method, size_t mcap, char *from, size_t fcap)
{
	msg_t *msg = msg_make(sip_default_mclass(), 0, data, (ssize_t)len);
	sip_t const *sip = msg ? sip_object(msg) : NULL;
	size_t n = 0;
	int ok;

	ok = sip && sip->sip_request && sip->sip_request->rq_method != sip_method_ack &&
	     sip->sip_via && sip->sip_from && sip->sip_to && sip->sip_call_id && sip->sip_cseq &&
	     !sip->sip_error;
	if (ok) {
		snprintf(method, mcap, "%s", sip->sip_request->rq_method_name);
		snprintf(from, fcap, "%s", sip->sip_from->a_url->url_host ?
			 sip->sip_from->a_url->url_host : "-");
		n = (size_t)snprintf(out, cap, "SIP/2.0 403 Untrusted Source\r\n");
		for (sip_via_t const *v = sip->sip_via; ok && v; v = v->v_next)
			ok = guard_put_header(out, cap, &n, (const sip_header_t *)v) == 0;
		ok = ok && guard_put_header(out, cap, &n, (const sip_header_t *)sip->sip_from) == 0;
		if (ok && sip->sip_to->a_tag) {
			ok = guard_put_header(out, cap, &n, (const sip_header_t *)sip->sip_to) == 0;
		} else if (ok) {
			/* the To with a tag of ours, so the answer names a (refused) dialog */
			size_t before = n;

			ok = guard_put_header(out, cap, &n, (const sip_header_t *)sip->sip_to) == 0 &&
			     n - before > 2 && n + 16 < cap;
			if (ok) {
				n -= 2;	/* before the CRLF */
				n += (size_t)snprintf(out + n, cap - n, ";tag=sgw403\r\n");
			}
		}
		ok = ok && guard_put_header(out, cap, &n, (const sip_header_t *)sip->sip_call_id) == 0;
		ok = ok && guard_put_header(out, cap, &n, (const sip_header_t *)sip->sip_cseq) == 0;
		ok = ok && n + 32 < cap;
		if (ok)
			n += (size_t)snprintf(out + n, cap - n, "Content-Length: 0\r\n\r\n");
	}
	if (msg)
		msg_destroy(msg);
	return ok ? n : 0;
}

/* A datagram from an untrusted source was read from fd into m (n bytes): answer it. */
static void guard_refuse_datagram(int fd, const struct msghdr *m, size_t n)
{
	static char data[GUARD_MAX_DATAGRAM], out[8192];
	char method[32] = "?", from[256] = "-", text[64];
	size_t len = 0, olen;

	for (size_t i = 0; i < m->msg_iovlen && len < n; i++) {
		size_t k = m->msg_iov[i].iov_len < n - len ? m->msg_iov[i].iov_len : n - len;

		memcpy(data + len, m->msg_iov[i].iov_base, k);
		len += k;
	}
	gw_sockaddr_text(m->msg_name, text, sizeof(text));
	guard.stats.datagrams++;
	olen = guard_refusal(data, len, out, sizeof(out), method, sizeof(method), from,
			     sizeof(from));
	if (olen) {
		sendto(fd, out, olen, MSG_DONTWAIT | MSG_NOSIGNAL, m->msg_name, m->msg_namelen);
		log_limited(&guard.udp_log, CONF_LOG_NOTICE, "guard", "refused %s from %s/udp "
			    "(From %s): 403 Untrusted Source", method, text, from);
	} else {
		log_limited(&guard.udp_log, CONF_LOG_NOTICE, "guard", "dropped a datagram from "
			    "%s/udp (%zu bytes, not a request to answer): no peer network trusts "
			    "this address", text, len);
	}
}

ssize_t recvmsg(int fd, struct msghdr *m, int flags)
{
	ssize_t n = syscall(SYS_recvmsg, fd, m, flags);

	if (n < 0 || !guard.conf || !m->msg_name || !guard_is_sip_udp(fd) ||
	    guard_trusted(m->msg_name))
		return n;
	/* the datagram never reaches Sofia: for it, there was nothing to read */
	if (!(flags & MSG_PEEK))
		guard_refuse_datagram(fd, m, (size_t)n);
	errno = EAGAIN;
	return -1;
}

/* ---------------------------------------------------------------- idle connections */

/* Milliseconds since c was accepted, from now. */
static unsigned long guard_age_ms(const struct guard_conn *c, const struct timespec *now)
{
	return (unsigned long)(now->tv_sec - c->since.tv_sec) * 1000UL +
	       (unsigned long)((now->tv_nsec - c->since.tv_nsec) / 1000000L);
}

static void guard_sweep(evutil_socket_t fd, short what, void *arg)
{
	unsigned idle = guard.conf->sip_tcp_idle_ms;
	struct timespec now;

	guard_prune();
	clock_gettime(CLOCK_MONOTONIC, &now);
	for (size_t i = 0; i < guard.nconns; i++) {
		struct guard_conn *c = &guard.conns[i];
		struct tcp_info ti;
		socklen_t len = sizeof(ti);
		char text[64];

		if (guard_age_ms(c, &now) < idle)
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
		log_limited(&guard.idle_log, CONF_LOG_INFO, "guard",
			    "SIP connection from %s closed: nothing sent either way for %u ms", text,
			    idle);
	}
}

/* ---------------------------------------------------------------- life cycle */

void guard_install(const struct conf *conf, struct event_base *base)
{
	unsigned every = conf->sip_tcp_idle_ms / 2;
	struct timeval tv = { every / 1000, (every % 1000) * 1000 };

	guard.conf = conf;
	guard.nconns = 0;
	guard.nudp = 0;
	if (guard.reserve < 0)
		guard.reserve = open("/dev/null", O_RDONLY | O_CLOEXEC);
	guard.sweep = event_new(base, -1, EV_PERSIST, guard_sweep, NULL);
	if (!guard.sweep || event_add(guard.sweep, &tv) != 0)
		gw_fatal("guard: cannot arm the idle sweep");
}

/* Non-zero if sa is the address of one of conf's UDP <listen> sockets. */
static int guard_is_udp_listen(const struct sockaddr *sa)
{
	for (size_t i = 0; i < guard.conf->nlisten; i++) {
		const struct conf_listen *l = &guard.conf->listen[i];
		struct sockaddr_storage want;
		char spec[128];
		int wlen = sizeof(want);

		if (l->transport != CONF_TRANSPORT_UDP)
			continue;
		snprintf(spec, sizeof(spec), strchr(l->address, ':') ? "[%s]:%u" : "%s:%u",
			 l->address, l->port);
		memset(&want, 0, sizeof(want));
		if (evutil_parse_sockaddr_port(spec, (struct sockaddr *)&want, &wlen) == 0 &&
		    evutil_sockaddr_cmp(sa, (struct sockaddr *)&want, 1) == 0)
			return 1;
	}
	return 0;
}

size_t guard_adopt_udp(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;

	if (!d)
		gw_fatal("guard: cannot list /proc/self/fd (%s)", strerror(errno));
	while ((e = readdir(d)) && guard.nudp < GUARD_MAX_UDP) {
		struct sockaddr_storage sa;
		socklen_t salen = sizeof(sa);
		int fd = atoi(e->d_name), type = 0;
		socklen_t tlen = sizeof(type);

		if (e->d_name[0] < '0' || e->d_name[0] > '9' || fd == dirfd(d))
			continue;
		if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tlen) != 0 || type != SOCK_DGRAM ||
		    getsockname(fd, (struct sockaddr *)&sa, &salen) != 0)
			continue;
		if (guard_is_udp_listen((struct sockaddr *)&sa))
			guard.udp[guard.nudp++] = fd;
	}
	closedir(d);
	return guard.nudp;
}

void guard_remove(void)
{
	if (guard.sweep)
		event_free(guard.sweep);
	guard.sweep = NULL;
	guard.conf = NULL;
	free(guard.conns);
	guard.conns = NULL;
	guard.nconns = 0;
	guard.nudp = 0;
	if (guard.reserve >= 0)
		close(guard.reserve);
	guard.reserve = -1;
}

const struct guard_stats *guard_stats(void)
{
	return &guard.stats;
}
