/* floor_relay.c - the least a pager gateway can do, for bench/compare.py to measure beside simplegw.
 *
 * It does the job simplegw and Kamailio do in compare.py's runs, and nothing more: a SIP MESSAGE
 * received over UDP becomes a <message/> on an XEP-0114 component link and is answered 200 at
 * once; a <message/> read from the link becomes a SIP MESSAGE sent over UDP, whose answer is read
 * and dropped.  One thread, one epoll loop, every socket drained per wakeup with one system call
 * (recvmmsg, read), what a wakeup produces sent with one call per socket (sendmmsg, write), a
 * minimal parse (a few header lines, a few attributes), no transaction state: per SIP -> XMPP
 * message one wakeup, a parse and two sends.  Its CPU per message at a given rate is the floor
 * that issue 16 measures simplegw against ("at 1 000/s within 2 x of the floor"): what the
 * machine charges for the wakeups and system calls alone.
 *
 * The one timer is what UDP cannot do without: a MESSAGE it sent is kept until its answer and
 * sent again every 500 ms until then (checked when the loop wakes, at most every 100 ms; the loop
 * sleeps 500 ms at most, and only while one is unanswered).  Its sends come in bursts (up to 64
 * datagrams per sendmmsg), which can overflow sipp's 64 KB receive buffer at saturation: its
 * XMPP -> SIP figures at rates it cannot carry are not a floor, only those at rates it carries.
 *
 * It is a benchmark tool, not a gateway: it trusts its peers (compare.py's sipp and Prosody) and
 * is never run against anything else.
 *
 * Usage: floor_relay COMPONENT_PORT SECRET DOMAIN SIP_PORT PEER_SIP_PORT   (all on 127.0.0.1)
 * Exit status: 0 on SIGTERM, 1 on a setup or link failure.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "relay_common.h"

#define BATCH 64		/* datagrams per recvmmsg / sendmmsg */
#define DGRAM 8192		/* largest datagram handled */

static char in_bufs[BATCH][DGRAM];	/* received datagrams */
static char out_bufs[BATCH][2048];	/* datagrams to send */
static struct mmsghdr out_msgs[BATCH];
static struct iovec out_iov[BATCH];
static unsigned out_n;

static char *link_in;			/* component stream read, not yet parsed */
static size_t link_in_len, link_in_cap;
static char *link_out;			/* component stream to write */
static size_t link_out_len, link_out_cap;

static int udp_fd, link_fd, ep_fd;
static struct sockaddr_in peer_addr;
static int sip_port;
static const char *domain;
static unsigned long seq;

/* MESSAGEs sent and not answered yet, by sequence number (their Call-ID) modulo PENDING. */
#define PENDING 65536
struct pending {
	unsigned long seq;
	long long last_ms;
	size_t len;
	char data[];
};
static struct pending *pending[PENDING];
static unsigned long pending_lo = 1;	/* no unanswered MESSAGE below this sequence number */
static unsigned long pending_n;
static long long checked_ms;
static volatile sig_atomic_t stopping;

static void grow(char **buf, size_t *cap, size_t need)
{
	if (need <= *cap)
		return;
	*cap = need * 2;
	*buf = realloc(*buf, *cap);
	if (!*buf)
		die("out of memory");
}

/* link_put() of a string literal */
#define link_put_lit(lit) link_put(lit, sizeof(lit) - 1)

static void link_put(const char *s, size_t n)
{
	grow(&link_out, &link_out_cap, link_out_len + n);
	memcpy(link_out + link_out_len, s, n);
	link_out_len += n;
}

/* Appends s[0..n) XML-escaped (text and single-quoted attributes). */
static void link_put_escaped(const char *s, size_t n)
{
	size_t run = 0;

	for (size_t i = 0; i < n; i++) {
		const char *ent = relay_entity(s[i]);

		if (!ent)
			continue;
		link_put(s + run, i - run);
		link_put(ent, strlen(ent));
		run = i + 1;
	}
	link_put(s + run, n - run);
}

/* Watches the link for writability only while something waits to be written. */
static void link_want_out(int want)
{
	static int watching;
	struct epoll_event ev = { .events = EPOLLIN | (want ? EPOLLOUT : 0), .data.fd = link_fd };

	if (want != watching && ep_fd > 0)
		epoll_ctl(ep_fd, EPOLL_CTL_MOD, link_fd, &ev);
	watching = want;
}

/* Writes what the link has to send; the rest waits for EPOLLOUT. */
static void link_flush(void)
{
	while (link_out_len) {
		ssize_t w = write(link_fd, link_out, link_out_len);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && errno == EAGAIN) {
			link_want_out(1);
			return;
		}
		if (w <= 0)
			die("component link write: %s", strerror(errno));
		memmove(link_out, link_out + w, link_out_len - (size_t)w);
		link_out_len -= (size_t)w;
	}
	link_want_out(0);
}

/* Reads once from the link into link_in; 0 when the server closed it. */
static ssize_t link_read(void)
{
	grow(&link_in, &link_in_cap, link_in_len + 65536);
	for (;;) {
		ssize_t r = read(link_fd, link_in + link_in_len, link_in_cap - link_in_len);

		if (r < 0 && errno == EINTR)
			continue;
		if (r > 0)
			link_in_len += (size_t)r;
		return r;
	}
}

/* A header's value in a SIP message's head (full name, or compact form unless compact is 0), or NULL. */
static const char *sip_header(const char *head, const char *end, const char *name, char compact,
			      size_t *len)
{
	size_t nl = strlen(name);

	for (const char *p = memchr(head, '\n', (size_t)(end - head)); p && p + 1 < end;
	     p = memchr(p + 1, '\n', (size_t)(end - p - 1))) {
		const char *h = p + 1, *v = NULL;

		if ((size_t)(end - h) > nl && strncasecmp(h, name, nl) == 0 && (h[nl] == ':' || h[nl] == ' '))
			v = h + nl;
		else if (compact && end - h > 1 && (h[0] == compact || h[0] == (compact ^ 0x20)) &&
			 (h[1] == ':' || h[1] == ' '))
			v = h + 1;
		if (!v)
			continue;
		while (v < end && (*v == ' ' || *v == ':'))
			v++;
		const char *e = memchr(v, '\r', (size_t)(end - v));

		if (!e)
			return NULL;
		*len = (size_t)(e - v);
		return v;
	}
	return NULL;
}

/* The user@host of the first sip: URI in s[0..n), or NULL. */
static const char *sip_aor(const char *s, size_t n, size_t *len)
{
	const char *p = memmem(s, n, "sip:", 4), *e;

	if (!p)
		return NULL;
	p += 4;
	for (e = p; e < s + n && *e != '>' && *e != ';' && *e != ' ' && *e != '?'; e++)
		;
	*len = (size_t)(e - p);
	return p;
}

static void out_flush(void);

/* The buffer for the next datagram out (out_push() sends BATCH of them when they fill up). */
static char *out_next(void)
{
	return out_bufs[out_n];
}

static void out_push(size_t len, const struct sockaddr_in *to)
{
	static struct sockaddr_in addrs[BATCH];

	addrs[out_n] = *to;
	out_iov[out_n] = (struct iovec){ out_bufs[out_n], len };
	out_msgs[out_n].msg_hdr = (struct msghdr){ .msg_name = &addrs[out_n], .msg_namelen = sizeof(*to),
						   .msg_iov = &out_iov[out_n], .msg_iovlen = 1 };
	if (++out_n == BATCH)
		out_flush();
}

static void out_flush(void)
{
	unsigned done = 0;

	while (done < out_n) {
		int s = sendmmsg(udp_fd, out_msgs + done, out_n - done, 0);

		if (s < 0 && errno == EINTR)
			continue;
		if (s <= 0)
			break;		/* a full socket buffer drops the rest, as UDP may */
		done += (unsigned)s;
	}
	out_n = 0;
}

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Keeps a copy of MESSAGE number sq (the datagram just pushed) until its answer. */
static void pending_keep(unsigned long sq, const char *data, size_t len)
{
	struct pending *p = malloc(sizeof(*p) + len), **slot = &pending[sq % PENDING];

	if (!p)
		die("out of memory");
	if (*slot) {		/* PENDING messages later and still unanswered: given up */
		free(*slot);
		pending_n--;
	}
	*p = (struct pending){ .seq = sq, .len = len };
	p->last_ms = now_ms();
	memcpy(p->data, data, len);
	*slot = p;
	pending_n++;
}

/* An answer to one of our MESSAGEs: its copy goes. */
static void pending_answered(const char *msg, size_t n)
{
	const char *end = memmem(msg, n, "\r\n\r\n", 4), *cid;
	size_t cid_n;

	if (!end || strncmp(msg + 8, "1", 1) == 0)	/* provisional */
		return;
	cid = sip_header(msg, end + 2, "Call-ID", 'i', &cid_n);
	if (!cid || cid_n < 3 || strncmp(cid, "fl", 2) != 0)
		return;
	unsigned long sq = strtoul(cid + 2, NULL, 10);
	struct pending **slot = &pending[sq % PENDING];

	if (*slot && (*slot)->seq == sq) {
		free(*slot);
		*slot = NULL;
		pending_n--;
	}
}

/* Sends again what has waited 500 ms for its answer, until it is answered: a benchmark run
 * waits for every message, and a burst of sendmmsg() can overflow sipp's receive buffer. */
static void pending_check(void)
{
	long long now = now_ms();

	if (!pending_n || now - checked_ms < 100)
		return;
	checked_ms = now;
	while (pending_lo < seq && !pending[pending_lo % PENDING])
		pending_lo++;
	for (unsigned long sq = pending_lo; sq <= seq; sq++) {
		struct pending *p = pending[sq % PENDING];

		if (!p || p->seq != sq || now - p->last_ms < 500)
			continue;
		p->last_ms = now;
		memcpy(out_next(), p->data, p->len);
		out_push(p->len, &peer_addr);
	}
	out_flush();
}

/* A SIP MESSAGE received: the stanza onto the link, the 200 into the datagrams to send. */
static void sip_request(char *msg, size_t n, const struct sockaddr_in *from)
{
	char *end = memmem(msg, n, "\r\n\r\n", 4);
	size_t via_n, from_n, to_n, cid_n, cseq_n, cl_n, f_n, t_n;
	const char *via, *fromh, *toh, *cid, *cseq, *cl, *f, *t, *body;
	size_t body_n;

	if (!end || strncmp(msg, "MESSAGE ", 8) != 0)
		return;
	via = sip_header(msg, end + 2, "Via", 'v', &via_n);
	fromh = sip_header(msg, end + 2, "From", 'f', &from_n);
	toh = sip_header(msg, end + 2, "To", 't', &to_n);
	cid = sip_header(msg, end + 2, "Call-ID", 'i', &cid_n);
	cseq = sip_header(msg, end + 2, "CSeq", '\0', &cseq_n);
	cl = sip_header(msg, end + 2, "Content-Length", 'l', &cl_n);
	if (!via || !fromh || !toh || !cid || !cseq)
		return;
	body = end + 4;
	body_n = cl ? strtoul(cl, NULL, 10) : n - (size_t)(body - msg);
	if (body_n > n - (size_t)(body - msg))
		return;
	f = sip_aor(fromh, from_n, &f_n);
	t = sip_aor(toh, to_n, &t_n);
	if (!f || !t)
		return;

	link_put_lit("<message type='chat' from='");
	link_put_escaped(f, f_n);
	link_put_lit("' to='");
	link_put_escaped(t, t_n);
	link_put_lit("'><body>");
	link_put_escaped(body, body_n);
	link_put_lit("</body></message>");

	char *r = out_next();
	int len = snprintf(r, sizeof(out_bufs[0]),
			   "SIP/2.0 200 OK\r\nVia: %.*s\r\nFrom: %.*s\r\nTo: %.*s%s\r\nCall-ID: %.*s\r\n"
			   "CSeq: %.*s\r\nContent-Length: 0\r\n\r\n",
			   (int)via_n, via, (int)from_n, fromh, (int)to_n, toh,
			   memmem(toh, to_n, "tag=", 4) ? "" : ";tag=floor", (int)cid_n, cid,
			   (int)cseq_n, cseq);
	if (len > 0 && (size_t)len < sizeof(out_bufs[0]))
		out_push((size_t)len, from);
}

static void on_udp(void)
{
	static struct mmsghdr msgs[BATCH];
	static struct iovec iov[BATCH];
	static struct sockaddr_in from[BATCH];

	for (int i = 0; i < BATCH; i++) {
		iov[i] = (struct iovec){ in_bufs[i], DGRAM - 1 };
		msgs[i].msg_hdr = (struct msghdr){ .msg_name = &from[i], .msg_namelen = sizeof(from[i]),
						   .msg_iov = &iov[i], .msg_iovlen = 1 };
	}
	int got = recvmmsg(udp_fd, msgs, BATCH, MSG_DONTWAIT, NULL);

	for (int i = 0; i < got; i++) {
		in_bufs[i][msgs[i].msg_len] = '\0';
		if (strncmp(in_bufs[i], "SIP/2.0 ", 8) != 0)
			sip_request(in_bufs[i], msgs[i].msg_len, &from[i]);
		else
			pending_answered(in_bufs[i], msgs[i].msg_len);
	}
	out_flush();
	link_flush();
}

/* The value of attribute name in the start tag s[0..n), or NULL. */
static const char *xml_attr(const char *s, size_t n, const char *name, size_t *len)
{
	size_t nl = strlen(name);

	for (const char *p = s; (p = memmem(p, (size_t)(s + n - p), name, nl)); p += nl) {
		if (p[-1] != ' ' || p + nl + 1 >= s + n || p[nl] != '=')
			continue;
		char q = p[nl + 1];
		const char *v = p + nl + 2, *e = memchr(v, q, (size_t)(s + n - v));

		if (!e)
			return NULL;
		*len = (size_t)(e - v);
		return v;
	}
	return NULL;
}

/* Appends s[0..n) with the five predefined XML entities unescaped. */
static size_t xml_unescape(char *dst, const char *s, size_t n)
{
	static const struct { const char *ent; char c; } ents[] = {
		{ "&amp;", '&' }, { "&lt;", '<' }, { "&gt;", '>' }, { "&apos;", '\'' }, { "&quot;", '"' },
	};
	size_t o = 0;

	for (size_t i = 0; i < n; i++) {
		size_t k;

		for (k = 0; s[i] == '&' && k < sizeof(ents) / sizeof(ents[0]); k++) {
			size_t l = strlen(ents[k].ent);

			if (n - i >= l && memcmp(s + i, ents[k].ent, l) == 0) {
				dst[o++] = ents[k].c;
				i += l - 1;
				break;
			}
		}
		if (s[i] != '&' || k == sizeof(ents) / sizeof(ents[0]))
			dst[o++] = s[i];
	}
	return o;
}

/* A <message/> from the link: a SIP MESSAGE to the peer. */
static void xmpp_message(const char *s, size_t n)
{
	const char *gt = memchr(s, '>', n), *to, *from, *b, *be;
	size_t to_n, from_n;
	char *r, *slash;
	char body[4096];
	size_t body_n;

	if (!gt || !(to = xml_attr(s, (size_t)(gt - s), "to", &to_n)) ||
	    !(from = xml_attr(s, (size_t)(gt - s), "from", &from_n)))
		return;
	if ((slash = memchr(from, '/', from_n)))	/* the sender's bare JID */
		from_n = (size_t)(slash - from);
	b = memmem(s, n, "<body>", 6);
	be = b ? memmem(b, (size_t)(s + n - b), "</body>", 7) : NULL;
	if (!b || !be || (size_t)(be - b - 6) > sizeof(body))
		return;
	body_n = xml_unescape(body, b + 6, (size_t)(be - b - 6));
	seq++;
	r = out_next();
	int len = snprintf(r, sizeof(out_bufs[0]),
			   "MESSAGE sip:%.*s SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:%d;branch=z9hG4bKfl%lu\r\n"
			   "Max-Forwards: 70\r\nFrom: <sip:%.*s>;tag=fl%lu\r\nTo: <sip:%.*s>\r\n"
			   "Call-ID: fl%lu@127.0.0.1\r\nCSeq: 1 MESSAGE\r\n"
			   "Content-Type: text/plain;charset=UTF-8\r\nContent-Length: %zu\r\n\r\n%.*s",
			   (int)to_n, to, sip_port, seq, (int)from_n, from, seq, (int)to_n, to, seq,
			   body_n, (int)body_n, body);
	if (len > 0 && (size_t)len < sizeof(out_bufs[0])) {
		pending_keep(seq, r, (size_t)len);
		out_push((size_t)len, &peer_addr);
	}
}

/* The end of the element that starts at s (after its end tag), or NULL if it is not all here. */
static const char *xml_element_end(const char *s, const char *end)
{
	int depth = 0;

	for (const char *p = s; p < end; p++) {
		if (*p != '<')
			continue;
		const char *gt = memchr(p, '>', (size_t)(end - p));

		if (!gt)
			return NULL;
		if (p + 1 < end && p[1] == '/')
			depth--;
		else if (gt[-1] != '/')
			depth++;
		if (depth == 0)
			return gt + 1;
		p = gt;
	}
	return NULL;
}

static void on_link(void)
{
	ssize_t r = link_read();
	const char *p = link_in, *end;

	if (r == 0)
		die("the XMPP server closed the component link");
	if (r < 0)
		return;
	end = link_in + link_in_len;
	for (;;) {
		while (p < end && *p != '<')
			p++;
		if (p == end)
			break;
		if (end - p >= 2 && p[1] == '/')	/* </stream:stream> */
			die("the XMPP server ended the component stream");
		const char *e = xml_element_end(p, end);

		if (!e)
			break;
		if (strncmp(p, "<message", 8) == 0 && (p[8] == ' ' || p[8] == '>'))
			xmpp_message(p, (size_t)(e - p));
		p = e;
	}
	memmove(link_in, p, (size_t)(end - p));
	link_in_len = (size_t)(end - p);
	out_flush();
	link_flush();
}

/* XEP-0114: the stream header, the server's stream id, the handshake. */
static void link_open(int port, const char *secret)
{
	char hex[2 * EVP_MAX_MD_SIZE + 1], *id, *q;

	link_fd = relay_connect(port);
	link_put_lit("<?xml version='1.0'?><stream:stream xmlns='jabber:component:accept' "
		 "xmlns:stream='http://etherx.jabber.org/streams' to='");
	link_put(domain, strlen(domain));
	link_put_lit("'>");
	link_flush();
	while (!(id = memmem(link_in, link_in_len, " id='", 5)) || !memchr(id + 5, '\'', link_in_len - (size_t)(id + 5 - link_in)))
		if (link_read() <= 0)
			die("no stream header from the XMPP server");
	id += 5;
	q = memchr(id, '\'', link_in_len - (size_t)(id - link_in));
	size_t hex_n = relay_handshake(id, (size_t)(q - id), secret, hex);

	link_in_len = 0;
	link_put_lit("<handshake>");
	link_put(hex, hex_n);
	link_put_lit("</handshake>");
	link_flush();
	while (!memmem(link_in, link_in_len, "<handshake", 10))
		if (link_read() <= 0 || memmem(link_in, link_in_len, "<stream:error", 13))
			die("the XMPP server refused the handshake");
	char *h = memmem(link_in, link_in_len, "<handshake", 10), *he;

	while (!(he = memchr(h, '>', link_in_len - (size_t)(h - link_in))))
		if (link_read() <= 0)
			die("link closed during the handshake");
	he++;
	link_in_len -= (size_t)(he - link_in);
	memmove(link_in, he, link_in_len);
}

static void on_term(int sig)
{
	(void)sig;
	stopping = 1;
}

int main(int argc, char **argv)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	struct epoll_event ev;
	int rcvbuf = 4 << 20;

	relay_name = "floor_relay";
	if (argc != 6)
		die("usage: floor_relay COMPONENT_PORT SECRET DOMAIN SIP_PORT PEER_SIP_PORT");
	domain = argv[3];
	sip_port = atoi(argv[4]);
	peer_addr = (struct sockaddr_in){ .sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(argv[5])) };
	inet_pton(AF_INET, "127.0.0.1", &peer_addr.sin_addr);
	signal(SIGPIPE, SIG_IGN);
	sigaction(SIGTERM, &(struct sigaction){ .sa_handler = on_term }, NULL);
	sigaction(SIGINT, &(struct sigaction){ .sa_handler = on_term }, NULL);

	udp_fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
	a.sin_port = htons((uint16_t)sip_port);
	inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
	setsockopt(udp_fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
	if (udp_fd < 0 || bind(udp_fd, (struct sockaddr *)&a, sizeof(a)) != 0)
		die("cannot bind 127.0.0.1:%d: %s", sip_port, strerror(errno));
	link_open(atoi(argv[1]), argv[2]);
	if (ioctl(link_fd, FIONBIO, &(int){ 1 }) != 0)
		die("FIONBIO: %s", strerror(errno));
	ep_fd = epoll_create1(0);
	ev = (struct epoll_event){ .events = EPOLLIN, .data.fd = udp_fd };
	epoll_ctl(ep_fd, EPOLL_CTL_ADD, udp_fd, &ev);
	ev = (struct epoll_event){ .events = EPOLLIN, .data.fd = link_fd };
	epoll_ctl(ep_fd, EPOLL_CTL_ADD, link_fd, &ev);
	fprintf(stderr, "floor_relay: component %s up, SIP on 127.0.0.1:%d\n", domain, sip_port);

	while (!stopping) {
		struct epoll_event evs[4];
		int n = epoll_wait(ep_fd, evs, 4, pending_n ? 500 : -1);

		for (int i = 0; i < n; i++) {
			if (evs[i].data.fd == udp_fd)
				on_udp();
			else if (evs[i].events & EPOLLIN)
				on_link();		/* flushes as well */
			else
				link_flush();
		}
		pending_check();
	}
	return 0;
}
