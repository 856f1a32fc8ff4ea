/* component.c - one XEP-0114 component link to the XMPP server, on libevent, with back-off.
 *
 * libstrophe's own connection layer cannot be used: in component mode it dereferences an
 * unallocated stream-management state on the first stanza received (Debian 0.12.2 and upstream
 * 0.13.0), runs its own select() loop and resolves names with a blocking getaddrinfo().  So this
 * file owns the stream: a bufferevent carries the bytes, parser.c turns them into libstrophe
 * stanzas, and xmpp_text_stanza() (parser.c) serialises what we send.
 *
 * States (changed only by link_enter_state, which logs each transition):
 *   idle -> connecting -> opening -> handshaking -> up -> (lost) waiting -> connecting ...
 *   any -> closing -> stopped   (xmpp_link_stop)
 * A connection is never freed inside its own callback: link_drop() parks the bufferevent and an
 * event frees it on the next loop pass.
 *
 * A second gateway connected as the same component: Prosody refuses it (stream error conflict),
 * ejabberd accepts it and hands each stanza for the domain to one of the connections at random,
 * so verdicts and replies reach the wrong instance.  Once up, the link sends LINK_PROBES headline
 * messages from and to addresses of its own domain, each carrying this link's random token.
 * Alone, it gets every one back; with another connection for the domain, some of them go there.
 * A probe with another token is another instance's: the older instance logs it as an error and
 * stays; the newer one, missing some of its own, refuses to run (first connection of the process)
 * or backs off and tries again later (a reconnection: the other may be its own stale connection).
 * A server that routes none of them back cannot be checked, and the log says so.
 *
 * With <xmpp tls="direct"> the stream runs over TLS from the first byte (the component port
 * speaks TLS, as XEP-0368 does for clients): a libevent-openssl bufferevent in place of the
 * socket one, so everything above the bytes stays the same.  "connecting" then covers the TCP
 * connection and the TLS handshake, which must verify the server's certificate against the XMPP
 * domain (<xmpp domain>): a chain to the configured CAs and a DNS subjectAltName naming the
 * domain (RFC 6125 / RFC 7590; OpenSSL's host check, wildcards only as a whole left-most label,
 * never the CommonName).  A failed handshake is logged with OpenSSL's reason and the names the
 * certificate gives, and the back-off applies as for any failed attempt.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/random.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/util.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "../gateway/gw.h"
#include "../gateway/tls.h"
#include "xmpp.h"

#define LINK_HANDSHAKE_TIMEOUT_MS 10000
#define LINK_STOP_GRACE_MS 2000
#define LINK_MAX_DEPTH 32
#define LINK_OUT_HIGH_WATER (1u << 20)	/* queued output beyond which we push back */
#define LINK_READ_SIZE 65536		/* plain TCP: at most this much per read */
#define LINK_PROBES 16			/* with two connections, all 16 stay here 1 time in 65 536 */
#define LINK_PROBE_WAIT_MS 3000
#define LINK_FOREIGN_LOG_MS 60000	/* another instance's probes: one error line per minute */
#define NS_INSTANCE "urn:simplegw:instance:0"

enum link_state {
	LINK_IDLE,
	LINK_CONNECTING,	/* TCP connect (and with TLS, the handshake) in progress */
	LINK_OPENING,		/* our stream header sent, waiting for the server's */
	LINK_HANDSHAKING,	/* <handshake/> sent, waiting for the empty reply */
	LINK_UP,
	LINK_WAITING,		/* lost; the reconnect timer runs */
	LINK_CLOSING,		/* </stream:stream> sent on shutdown */
	LINK_STOPPED,
};

static const char *const link_state_names[] = {
	[LINK_IDLE] = "idle",
	[LINK_CONNECTING] = "connecting",
	[LINK_OPENING] = "opening",
	[LINK_HANDSHAKING] = "handshaking",
	[LINK_UP] = "up",
	[LINK_WAITING] = "waiting",
	[LINK_CLOSING] = "closing",
	[LINK_STOPPED] = "stopped",
};

struct xmpp_link {
	struct event_base *base;
	xmpp_ctx_t *ctx;
	const struct conf *conf;
	char *domain;
	struct xmpp_link_cbs cbs;
	void *arg;

	SSL_CTX *tls_ctx;		/* tls="direct": the client context; NULL for plain TCP */
	enum link_state state;
	struct bufferevent *bev;
	struct bufferevent *dead_bev;	/* freed by reap_ev on the next loop pass */
	struct event *read_ev;		/* plain TCP: reads the socket itself (see link_recv_cb) */
	struct event *dead_read_ev;	/* freed with dead_bev */
	char *rbuf;			/* read_ev's buffer, LINK_READ_SIZE bytes */
	struct xmpp_parser *parser;
	struct event *timer_ev;		/* connect/handshake timeout, reconnect, stop grace */
	struct event *reap_ev;
	unsigned backoff_ms;		/* delay before the next attempt */
	struct timeval retry_at;	/* when the reconnect timer fires */
	char *stream_id;
	void (*stop_done)(void *arg);
	void *stop_arg;
	unsigned long attempts;		/* failed attempts since the last success */
	struct xmpp_text out;		/* reused for every stanza sent */
	struct evbuffer *cork;		/* plain TCP: what was sent during this pass of the loop */
	struct event *flush_ev;		/* writes cork to the socket once the pass's callbacks ran */

	char token[17];			/* this link's probe token, random hex */
	struct event *probe_ev;		/* the probe deadline */
	unsigned probes_back;		/* own probes received on this connection */
	int probing;
	unsigned long ups;		/* connections of this process that came up */
	uint64_t foreign_logged_ms;
};

static void link_connect(struct xmpp_link *link);

static void link_enter_state(struct xmpp_link *link, enum link_state state)
{
	if (link->state == state)
		return;
	log_info("component %s: %s -> %s", link->domain, link_state_names[link->state],
		 link_state_names[state]);
	link->state = state;
}

static void link_arm(struct xmpp_link *link, unsigned ms)
{
	struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };

	evtimer_add(link->timer_ev, &tv);
}

static void link_arm_probe(struct xmpp_link *link)
{
	struct timeval tv = { LINK_PROBE_WAIT_MS / 1000, (LINK_PROBE_WAIT_MS % 1000) * 1000 };

	evtimer_add(link->probe_ev, &tv);
}

/* Parks the connection for freeing outside the current callback. */
static void link_drop(struct xmpp_link *link)
{
	if (!link->bev)
		return;
	bufferevent_disable(link->bev, EV_READ | EV_WRITE);
	bufferevent_setcb(link->bev, NULL, NULL, NULL, NULL);
	if (link->dead_bev)
		bufferevent_free(link->dead_bev);	/* an older one, surely not in a callback now */
	/* what this pass sent (a stream error, say) goes out if the socket takes it at once; the
	 * rest is dropped with the connection, as the bufferevent's output is */
	if (evbuffer_get_length(link->cork))
		(void)evbuffer_write(link->cork, bufferevent_getfd(link->bev));
	evbuffer_drain(link->cork, evbuffer_get_length(link->cork));
	link->dead_bev = link->bev;
	link->bev = NULL;
	if (link->read_ev) {
		event_del(link->read_ev);
		if (link->dead_read_ev)
			event_free(link->dead_read_ev);
		link->dead_read_ev = link->read_ev;
		link->read_ev = NULL;
	}
	event_active(link->reap_ev, EV_TIMEOUT, 0);
}

static void link_reap_cb(evutil_socket_t fd, short what, void *arg)
{
	struct xmpp_link *link = arg;

	if (link->dead_read_ev) {
		event_free(link->dead_read_ev);
		link->dead_read_ev = NULL;
	}
	if (link->dead_bev) {
		bufferevent_free(link->dead_bev);
		link->dead_bev = NULL;
	}
}

/* On shutdown over TLS: a close_notify before the TCP close, so the server sees the end of the
 * stream as a clean one (RFC 8446 6.1).  Best effort: only once our output has gone out, and
 * whatever OpenSSL says is not acted upon, the connection is dropped next anyway. */
static void link_tls_close_notify(struct xmpp_link *link)
{
	SSL *ssl = link->bev ? bufferevent_openssl_get_ssl(link->bev) : NULL;

	if (!ssl || !SSL_is_init_finished(ssl) ||
	    evbuffer_get_length(bufferevent_get_output(link->bev)) != 0)
		return;
	SSL_shutdown(ssl);
	ERR_clear_error();
}

static void link_finish_stop(struct xmpp_link *link)
{
	void (*done)(void *) = link->stop_done;

	link_tls_close_notify(link);
	link_drop(link);
	evtimer_del(link->timer_ev);
	link_enter_state(link, LINK_STOPPED);
	link->stop_done = NULL;
	if (done)
		done(link->stop_arg);
}

/* The connection failed or was lost: tell the owner, then retry after the back-off delay. */
static void link_fail(struct xmpp_link *link, const char *why)
{
	int was_up = link->state == LINK_UP;
	unsigned delay;

	if (link->state == LINK_CLOSING) {
		link_finish_stop(link);
		return;
	}
	if (link->state == LINK_WAITING || link->state == LINK_STOPPED || link->state == LINK_IDLE)
		return;
	link_drop(link);
	link->probing = 0;
	evtimer_del(link->probe_ev);
	delay = link->backoff_ms;
	link->backoff_ms = link->backoff_ms * 2 > link->conf->reconnect_max_ms ?
			   link->conf->reconnect_max_ms : link->backoff_ms * 2;
	link->attempts++;
	if (was_up)
		log_warn("component %s: link lost (%s); reconnecting in %u.%03u s", link->domain,
			 why, delay / 1000, delay % 1000);
	else
		log_warn("component %s: cannot connect to %s:%u (%s); attempt %lu, next in %u.%03u s",
			 link->domain, link->conf->xmpp_server, link->conf->xmpp_port, why,
			 link->attempts, delay / 1000, delay % 1000);
	link_enter_state(link, LINK_WAITING);
	evutil_gettimeofday(&link->retry_at, NULL);
	link->retry_at.tv_sec += delay / 1000;
	link->retry_at.tv_usec += (delay % 1000) * 1000;
	if (link->retry_at.tv_usec >= 1000000) {
		link->retry_at.tv_sec++;
		link->retry_at.tv_usec -= 1000000;
	}
	evtimer_del(link->timer_ev);
	link_arm(link, delay);
	if (was_up && link->cbs.state)
		link->cbs.state(link->arg, link, 0);
}

/* Output over plain TCP does not go through the bufferevent while the socket takes it: it is
 * gathered in cork and written with one writev once the callbacks the loop has active in this
 * pass have run (flush_ev is made active behind them: libevent runs an event made active during
 * a pass in that same pass).  bufferevent_write() would add the socket's write event (an
 * epoll_ctl), wait for the next pass to write, and take the event off again (another): one
 * more wakeup and two system calls per pass that sends anything, which, with one stanza per SIP
 * message at the rates a gateway runs, is per message.  What the socket does not take (EAGAIN,
 * a partial write, an error) goes to the bufferevent, which writes it when it can or reports
 * the error as before; from then on output goes there until it has drained, so the order
 * holds.  Over TLS everything goes through the bufferevent. */
static void link_flush_cb(evutil_socket_t fd, short what, void *arg)
{
	struct xmpp_link *link = arg;

	(void)fd;
	(void)what;
	if (!link->bev || !evbuffer_get_length(link->cork))
		return;
	(void)evbuffer_write(link->cork, bufferevent_getfd(link->bev));
	if (evbuffer_get_length(link->cork))
		bufferevent_write_buffer(link->bev, link->cork);
}

static void link_write(struct xmpp_link *link, const char *data, size_t len)
{
	if (!link->bev)
		return;
	if (link->read_ev && (evbuffer_get_length(link->cork) ||
			      !evbuffer_get_length(bufferevent_get_output(link->bev)))) {
		evbuffer_add(link->cork, data, len);
		event_active(link->flush_ev, EV_TIMEOUT, 0);	/* once: again is a no-op */
		return;
	}
	bufferevent_write(link->bev, data, len);
}

/* Sends a stream error and gives up on this connection (RFC 6120 4.9). */
static void link_stream_error(struct xmpp_link *link, const char *cond, const char *text)
{
	char *s = gw_xasprintf("<stream:error><%s xmlns='" XMPP_NS_STREAM_ERRORS "'/>"
			       "</stream:error></stream:stream>", cond);

	log_warn("component %s: stream error %s: %s", link->domain, cond, text ? text : "");
	link_write(link, s, strlen(s));
	free(s);
	link_fail(link, cond);
}

static int link_handshake_digest(const char *id, const char *secret, char hex[41])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	size_t idlen = strlen(id), slen = strlen(secret);
	char *buf = gw_xmalloc(idlen + slen);
	int ok;

	memcpy(buf, id, idlen);
	memcpy(buf + idlen, secret, slen);
	ok = EVP_Digest(buf, idlen + slen, md, &mdlen, EVP_sha1(), NULL) == 1 && mdlen == 20;
	OPENSSL_cleanse(buf, idlen + slen);
	free(buf);
	if (!ok)
		return -1;
	for (unsigned i = 0; i < mdlen; i++)
		snprintf(hex + 2 * i, 3, "%02x", md[i]);
	return 0;
}

static void link_on_open(void *arg, const char **attrs)
{
	struct xmpp_link *link = arg;
	const char *id = NULL;
	char hex[41], *s;

	if (link->state != LINK_OPENING)
		return;
	for (size_t i = 0; attrs[i]; i += 2)
		if (strcmp(attrs[i], "id") == 0)
			id = attrs[i + 1];
	if (!id || !*id) {
		link_stream_error(link, "invalid-id", "the server's stream header has no id");
		return;
	}
	free(link->stream_id);
	link->stream_id = gw_xstrdup(id);
	if (link_handshake_digest(id, link->conf->secret, hex) != 0) {
		link_stream_error(link, "internal-server-error", "SHA-1 unavailable");
		return;
	}
	s = gw_xasprintf("<handshake>%s</handshake>", hex);
	link_write(link, s, strlen(s));
	free(s);
	link_enter_state(link, LINK_HANDSHAKING);
}

/* Names the condition of a <stream:error/>, for the log. */
static const char *link_error_condition(xmpp_stanza_t *err, const char **text)
{
	const char *cond = "undefined-condition";

	*text = NULL;
	for (xmpp_stanza_t *c = xmpp_stanza_get_children(err); c; c = xmpp_stanza_get_next(c)) {
		const char *name = xmpp_stanza_get_name(c);

		if (!name || !xmpp_stanza_is_tag(c))
			continue;
		if (strcmp(name, "text") == 0) {
			xmpp_stanza_t *t = xmpp_stanza_get_children(c);

			/* <text/> may be empty: libstrophe's getter does not accept NULL. */
			*text = t && xmpp_stanza_is_text(t) ? xmpp_stanza_get_text_ptr(t) : NULL;
		}
		else
			cond = name;
	}
	return cond;
}

static uint64_t link_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Another connection holds the domain too.  On the process's first connection the owner is told
 * and the link stops (the owner refuses to run); on a reconnection the link backs off and tries
 * again, since the other connection may be its own, not yet noticed dead by the server. */
static void link_conflict(struct xmpp_link *link, const char *why)
{
	int was_up = link->state == LINK_UP;

	link->probing = 0;
	evtimer_del(link->probe_ev);
	if (link->ups > (was_up ? 1u : 0u) || !link->cbs.conflict) {
		log_error("component %s: another connection holds this component (%s): backing off",
			  link->domain, why);
		link_write(link, "</stream:stream>", 16);
		link_fail(link, "another connection holds the component");
		return;
	}
	log_error("component %s: another connection holds this component at %s:%u (%s): refusing "
		  "to run as a second instance", link->domain, link->conf->xmpp_server,
		  link->conf->xmpp_port, why);
	link_write(link, "</stream:stream>", 16);
	link_drop(link);
	evtimer_del(link->timer_ev);
	link_enter_state(link, LINK_STOPPED);
	if (was_up && link->cbs.state)
		link->cbs.state(link->arg, link, 0);
	link->cbs.conflict(link->arg, link);
}

static void link_send_probes(struct xmpp_link *link)
{
	char buf[512];

	link->probes_back = 0;
	link->probing = 1;
	for (unsigned i = 0; i < LINK_PROBES; i++) {
		/* varying both addresses: a server balancing by source or destination spreads them */
		int n = snprintf(buf, sizeof(buf), "<message type='headline' id='probe-%s-%u' "
				 "from='simplegw-probe-%u@%s' to='simplegw-probe-%u@%s'>"
				 "<instance xmlns='" NS_INSTANCE "' token='%s'/></message>",
				 link->token, i, i, link->domain, i, link->domain, link->token);

		if (n > 0 && (size_t)n < sizeof(buf))
			link_write(link, buf, (size_t)n);
	}
	link_arm_probe(link);
}

/* A probe came in: ours (count it) or another instance's (it splits our traffic). */
static void link_on_probe(struct xmpp_link *link, xmpp_stanza_t *probe)
{
	const char *token = xmpp_stanza_get_attribute(probe, "token");
	uint64_t now;

	if (token && strcmp(token, link->token) == 0) {
		if (link->probing && ++link->probes_back == LINK_PROBES) {
			link->probing = 0;
			evtimer_del(link->probe_ev);
			log_debug("component %s: all %u instance probes came back: no other instance",
				  link->domain, LINK_PROBES);
		}
		return;
	}
	now = link_now_ms();
	if (!link->foreign_logged_ms || now - link->foreign_logged_ms >= LINK_FOREIGN_LOG_MS) {
		link->foreign_logged_ms = now;
		log_error("component %s: another gateway instance (probe token %s) is connected to "
			  "the XMPP server as this component; the server splits the domain's traffic "
			  "between us, so replies and verdicts go astray.  Stop one of them.",
			  link->domain, token ? token : "-");
	}
}

static void link_probe_cb(evutil_socket_t fd, short what, void *arg)
{
	struct xmpp_link *link = arg;
	char why[96];

	if (!link->probing || link->state != LINK_UP)
		return;
	link->probing = 0;
	if (link->probes_back == 0) {
		log_notice("component %s: the server routed none of %u instance probes back: a second "
			   "instance connected as this component could not be detected", link->domain,
			   LINK_PROBES);
		return;
	}
	snprintf(why, sizeof(why), "%u of %u probes went to another connection",
		 LINK_PROBES - link->probes_back, LINK_PROBES);
	link_conflict(link, why);
}

static void link_on_stanza(void *arg, xmpp_stanza_t *stanza)
{
	struct xmpp_link *link = arg;
	const char *name = xmpp_stanza_get_name(stanza);

	if (strcmp(name, "stream:error") == 0) {
		const char *text, *cond = link_error_condition(stanza, &text);

		if (link->state == LINK_HANDSHAKING && strcmp(cond, "not-authorized") == 0)
			log_error("component %s: the server refused our secret (not-authorized)",
				  link->domain);
		else if (strcmp(cond, "conflict") == 0) {
			link_conflict(link, "the server says conflict");
			return;
		} else
			log_warn("component %s: server sent stream error %s%s%s", link->domain, cond,
				 text ? ": " : "", text ? text : "");
		link_write(link, "</stream:stream>", 16);
		link_fail(link, cond);
		return;
	}
	switch (link->state) {
	case LINK_HANDSHAKING:
		if (strcmp(name, "handshake") != 0) {
			link_stream_error(link, "not-authorized", "stanza before the handshake");
			return;
		}
		evtimer_del(link->timer_ev);
		link->backoff_ms = link->conf->reconnect_min_ms;
		link->attempts = 0;
		link_enter_state(link, LINK_UP);
		log_notice("component %s: connected to %s:%u", link->domain,
			   link->conf->xmpp_server, link->conf->xmpp_port);
		link->ups++;
		link_send_probes(link);
		if (link->cbs.state)
			link->cbs.state(link->arg, link, 1);
		break;
	case LINK_UP:
		if (log_enabled(CONF_LOG_DEBUG)) {
			struct xmpp_text t = { 0 };

			xmpp_text_stanza(&t, stanza);
			log_debug("component %s: received %.*s", link->domain,
				  t.len > 600 ? 600 : (int)t.len, t.p);
			xmpp_text_free(&t);
		}
		if (strcmp(name, "message") == 0) {
			xmpp_stanza_t *probe = xmpp_stanza_get_child_by_ns(stanza, NS_INSTANCE);

			if (probe) {
				link_on_probe(link, probe);
				break;
			}
		}
		if (link->cbs.stanza)
			link->cbs.stanza(link->arg, link, stanza);
		break;
	default:
		break;		/* closing: whatever still arrives is not acted upon */
	}
}

/* The server sent a stanza over our bounds: it was skipped; the owner tells its sender. */
static void link_on_skipped(void *arg, xmpp_stanza_t *head, const char *condition,
			    const char *text)
{
	struct xmpp_link *link = arg;

	if (link->state == LINK_UP && link->cbs.skipped)
		link->cbs.skipped(link->arg, link, head, condition, text);
}

static void link_on_close(void *arg)
{
	struct xmpp_link *link = arg;

	if (link->state == LINK_CLOSING) {
		link_finish_stop(link);
		return;
	}
	link_write(link, "</stream:stream>", 16);
	link_fail(link, "stream closed by the server");
}

/* What was just read is acknowledged now rather than up to 40 ms later (Linux's delayed ACK).
 * A server that keeps Nagle's algorithm on (Prosody does unless network_settings says nagle =
 * false) sends nothing more while its last segment is unacknowledged: stanzas piled up behind
 * each delayed ACK and came as bursts of up to 40 ms of traffic (44 messages at 1 000/s, 178 at
 * 3 600/s), the last of which waited for the gateway's work on all the others.  The kernel
 * drops out of quick-ACK mode by itself, so every read asks again: asking only on the first read
 * after a write of ours (Linux enters its delayed "pingpong" mode when an application writes
 * soon after reading) was tried, and the bursts came back (144 messages per segment at half of
 * the peak rate, docs/benchmarks.md). */
#ifndef LINK_QUICKACK	/* (-D for bench/ experiments) */
#define LINK_QUICKACK 1
#endif
static void link_quickack(evutil_socket_t fd)
{
	int on = 1;

	if (LINK_QUICKACK)
		(void)setsockopt(fd, IPPROTO_TCP, TCP_QUICKACK, &on, sizeof(on));
}

/* Feeds what was read to the stream's parser.  Returns -1 once the connection bev is gone (the
 * stanzas' callbacks may drop it, or the data broke the stream), 0 otherwise. */
static int link_feed(struct xmpp_link *link, struct bufferevent *bev, const char *data, size_t len)
{
	if (xmpp_parser_feed(link->parser, data, len) != 0) {
		const char *text, *cond = xmpp_parser_error(link->parser, &text);

		if (link->bev == bev)
			link_stream_error(link, cond, text);
		return -1;
	}
	return link->bev == bev ? 0 : -1;
}

/* TLS: libevent's OpenSSL bufferevent reads and decrypts. */
static void link_read_cb(struct bufferevent *bev, void *arg)
{
	struct xmpp_link *link = arg;
	struct evbuffer *in = bufferevent_get_input(bev);

	link_quickack(bufferevent_getfd(bev));
	while (link->bev == bev && evbuffer_get_length(in)) {
		struct evbuffer_iovec v;
		int rc;

		if (evbuffer_peek(in, -1, NULL, &v, 1) < 1)
			break;
		rc = link_feed(link, bev, v.iov_base, v.iov_len);
		evbuffer_drain(in, v.iov_len);
		if (rc != 0)
			return;
	}
}

static void link_event_cb(struct bufferevent *bev, short what, void *arg);

/* Plain TCP: the link reads its socket itself, into one buffer it keeps, and the bufferevent
 * only writes.  libevent's own read asks the kernel how much is queued first (FIONREAD, a
 * system call per read) and fills a buffer chain it allocates and frees each time: at the
 * rates a gateway runs at that is a read per stanza.  End of stream and errors go to
 * link_event_cb() as libevent would report them. */
static void link_recv_cb(evutil_socket_t fd, short what, void *arg)
{
	struct xmpp_link *link = arg;
	struct bufferevent *bev = link->bev;
	ssize_t n;

	if (!bev)
		return;
	n = recv(fd, link->rbuf, LINK_READ_SIZE, 0);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
		return;
	if (n <= 0) {
		link_event_cb(bev, BEV_EVENT_READING | (n == 0 ? BEV_EVENT_EOF : BEV_EVENT_ERROR),
			      link);
		return;
	}
	link_quickack(fd);
	(void)link_feed(link, bev, link->rbuf, (size_t)n);
}

/* The server's own certificate: on the client side the peer chain starts with it, and it is
 * there even when the verification failed (SSL_get0_peer_certificate is not).  Borrowed. */
static X509 *link_tls_server_cert(SSL *ssl)
{
	STACK_OF(X509) *chain = SSL_get_peer_cert_chain(ssl);

	return chain && sk_X509_num(chain) > 0 ? sk_X509_value(chain, 0) : NULL;
}

/* The first OpenSSL error libevent moved from OpenSSL's queue into bev (the cause), or 0.
 * libevent queues SSL_get_error()'s own code there too (SSL_ERROR_SYSCALL, 5: a library of 0),
 * which is no OpenSSL error: skipped. */
static unsigned long link_tls_error(struct bufferevent *bev)
{
	unsigned long e, first = 0;

	while ((e = bufferevent_get_openssl_error(bev)) != 0)
		if (!first && ERR_GET_LIB(e) != 0)
			first = e;
	return first;
}

/* Why the TLS handshake on bev failed, for the log: the certificate check's verdict with the
 * names the server's certificate gives, else OpenSSL's reason, else what the socket said. */
static void link_tls_why(struct bufferevent *bev, short what, int sock_err, char *buf,
			 size_t len)
{
	SSL *ssl = bufferevent_openssl_get_ssl(bev);
	long verdict = SSL_get_verify_result(ssl);
	unsigned long first = link_tls_error(bev);
	const char *reason;
	char ids[256];

	if (verdict != X509_V_OK) {
		tls_cert_identities(link_tls_server_cert(ssl), ids, sizeof(ids));
		snprintf(buf, len, "certificate verify failed: %s (server certificate names %s)",
			 X509_verify_cert_error_string(verdict), ids);
		return;
	}
	reason = first ? ERR_reason_error_string(first) : NULL;
	if (reason && ERR_GET_LIB(first) == ERR_LIB_SSL &&
	    ERR_GET_REASON(first) == SSL_R_WRONG_VERSION_NUMBER)
		/* what the first bytes of a plain XML stream read as */
		snprintf(buf, len, "%s (does the port speak TLS?)", reason);
	else if (reason)
		snprintf(buf, len, "%s", reason);
	else if (first)
		ERR_error_string_n(first, buf, len);
	else if (sock_err && !(what & BEV_EVENT_EOF))
		snprintf(buf, len, "%s", evutil_socket_error_to_string(sock_err));
	else
		snprintf(buf, len, "the server closed the connection during the handshake");
}

/* Non-zero once our first handshake bytes were written: the TCP connection was up, so a failure
 * is TLS's, not the connect's (with dirty shutdowns allowed, libevent reports both as EOF). */
static int link_tls_started(struct bufferevent *bev)
{
	SSL *ssl = bufferevent_openssl_get_ssl(bev);
	BIO *wbio = ssl ? SSL_get_wbio(ssl) : NULL;

	return wbio && BIO_number_written(wbio) > 0;
}

static void link_tls_log_up(struct xmpp_link *link, struct bufferevent *bev)
{
	SSL *ssl = bufferevent_openssl_get_ssl(bev);
	char ids[256];

	tls_cert_identities(link_tls_server_cert(ssl), ids, sizeof(ids));
	log_notice("component %s: TLS with %s:%u: %s, %s; server certificate (%s) verified for %s",
		   link->domain, link->conf->xmpp_server, link->conf->xmpp_port,
		   SSL_get_version(ssl), SSL_get_cipher_name(ssl), ids, link->conf->xmpp_domain);
}

static void link_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct xmpp_link *link = arg;
	int sock_err = EVUTIL_SOCKET_ERROR();	/* before anything below changes it */
	unsigned long tls_err;
	char why[512];

	if (what & BEV_EVENT_CONNECTED) {
		char *hdr = gw_xasprintf("<?xml version='1.0'?><stream:stream xmlns='"
					 XMPP_NS_COMPONENT "' xmlns:stream='" XMPP_NS_STREAMS
					 "' to='%s'>", link->domain);
		evutil_socket_t fd = bufferevent_getfd(bev);
		int on = 1;

		/* a silent dead peer is noticed by TCP keepalives */
		setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof(on));
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
		if (link->tls_ctx) {
			link_tls_log_up(link, bev);
		} else {
			bufferevent_disable(bev, EV_READ);
			if (!link->rbuf)
				link->rbuf = gw_xmalloc(LINK_READ_SIZE);
			link->read_ev = event_new(link->base, fd, EV_READ | EV_PERSIST, link_recv_cb,
						  link);
			if (!link->read_ev || event_add(link->read_ev, NULL) != 0)
				gw_fatal("component %s: cannot watch the connection", link->domain);
		}
		link_enter_state(link, LINK_OPENING);
		link_write(link, hdr, strlen(hdr));
		free(hdr);
		return;
	}
	if (link->tls_ctx && link->state == LINK_CONNECTING) {
		if (link_tls_started(bev)) {
			link_tls_why(bev, what, sock_err, why, sizeof(why));
			log_error("component %s: TLS with %s:%u failed: %s", link->domain,
				  link->conf->xmpp_server, link->conf->xmpp_port, why);
			link_fail(link, "TLS handshake failed");
		} else {
			snprintf(why, sizeof(why), "%s", sock_err ?
				 evutil_socket_error_to_string(sock_err) : "connection failed");
			link_fail(link, why);
		}
		return;
	}
	if (what & BEV_EVENT_EOF)
		snprintf(why, sizeof(why), "connection closed by the server");
	else if (link->tls_ctx && (tls_err = link_tls_error(bev)) != 0)
		/* after the handshake: e.g. a record that fails its integrity check */
		snprintf(why, sizeof(why), "TLS: %s", ERR_reason_error_string(tls_err) ?
			 ERR_reason_error_string(tls_err) : "error");
	else
		snprintf(why, sizeof(why), "%s", evutil_socket_error_to_string(sock_err));
	link_fail(link, why);
}

static void link_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct xmpp_link *link = arg;

	switch (link->state) {
	case LINK_WAITING:
	case LINK_IDLE:
		link_connect(link);
		break;
	case LINK_CONNECTING:
	case LINK_OPENING:
	case LINK_HANDSHAKING:
		link_fail(link, "timed out");
		break;
	case LINK_CLOSING:
		link_finish_stop(link);
		break;
	case LINK_STOPPED:
		if (link->stop_done)
			link_finish_stop(link);
		break;
	case LINK_UP:
		break;
	}
}

/* A bufferevent that connects, then runs the TLS handshake as a client of the XMPP domain: SNI
 * and the certificate's host check both name it.  It owns its SSL (freed with it). */
static struct bufferevent *link_tls_bev_new(struct xmpp_link *link)
{
	const char *host = link->conf->xmpp_domain;
	struct bufferevent *bev;
	SSL *ssl = SSL_new(link->tls_ctx);

	if (!ssl || SSL_set_tlsext_host_name(ssl, host) != 1 || SSL_set1_host(ssl, host) != 1)
		gw_fatal("component %s: cannot set up a TLS connection for %s", link->domain, host);
	/* RFC 6125 6.4.4, RFC 9525: the DNS subjectAltName only, never the CommonName; a wildcard
	 * only as a whole left-most label */
	SSL_set_hostflags(ssl, X509_CHECK_FLAG_NEVER_CHECK_SUBJECT |
			  X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
	bev = bufferevent_openssl_socket_new(link->base, -1, ssl, BUFFEREVENT_SSL_CONNECTING,
					     BEV_OPT_CLOSE_ON_FREE);
	if (!bev)
		gw_fatal("bufferevent_openssl_socket_new failed");
	/* a server that closes without close_notify is taken as a TCP close (see
	 * SSL_OP_IGNORE_UNEXPECTED_EOF in link_tls_ctx_new()) */
	bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
	return bev;
}

static void link_connect(struct xmpp_link *link)
{
	struct sockaddr_storage ss;
	int sslen = sizeof(ss);
	char addr[80];

	/* the configuration holds a numeric address: no resolver is ever involved */
	if (strchr(link->conf->xmpp_server, ':'))
		snprintf(addr, sizeof(addr), "[%s]:%u", link->conf->xmpp_server, link->conf->xmpp_port);
	else
		snprintf(addr, sizeof(addr), "%s:%u", link->conf->xmpp_server, link->conf->xmpp_port);
	if (evutil_parse_sockaddr_port(addr, (struct sockaddr *)&ss, &sslen) != 0) {
		log_error("component %s: bad server address %s", link->domain, addr);
		return;
	}
	xmpp_parser_reset(link->parser);
	link->bev = link->tls_ctx ? link_tls_bev_new(link) :
		    bufferevent_socket_new(link->base, -1, BEV_OPT_CLOSE_ON_FREE);
	if (!link->bev)
		gw_fatal("bufferevent_socket_new failed");
	bufferevent_setcb(link->bev, link_read_cb, NULL, link_event_cb, link);
	bufferevent_enable(link->bev, EV_READ | EV_WRITE);
	link_enter_state(link, LINK_CONNECTING);
	link_arm(link, LINK_HANDSHAKE_TIMEOUT_MS);
	if (bufferevent_socket_connect(link->bev, (struct sockaddr *)&ss, sslen) != 0)
		link_fail(link, evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
}

/* The client context of tls="direct": TLS 1.2 at least, the server's certificate verified against
 * <xmpp ca>, else <tls ca>, else the system's CAs.  Aborts if they cannot be loaded: conf_load()
 * checked the file, so it changed since, and the link must not run unverified. */
static SSL_CTX *link_tls_ctx_new(const struct conf *conf, const char *domain)
{
	const char *ca = conf->xmpp_ca ? conf->xmpp_ca : conf->tls_ca;
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	char ebuf[256];
	int ok;

	if (!ctx)
		gw_fatal("component %s: SSL_CTX_new: %s", domain, tls_error_text(ebuf, sizeof(ebuf)));
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	if (conf->tls_verify_depth)
		SSL_CTX_set_verify_depth(ctx, (int)conf->tls_verify_depth);
	/* libevent may retry a blocked SSL_write from another place in its output buffer */
	SSL_CTX_set_mode(ctx, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	/* OpenSSL 3 reports a close without close_notify as an error ("unexpected eof while
	 * reading"), which libevent 2.1 cannot tell from others: as an EOF it reaches libevent's
	 * dirty-shutdown handling and is a plain close, as over TCP.  The XMPP stream has its own
	 * end (</stream:stream>), so a truncation is noticed anyway. */
	SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
	ok = ca ? SSL_CTX_load_verify_locations(ctx, ca, NULL) :
		  SSL_CTX_set_default_verify_paths(ctx);
	if (ok != 1) {
		log_error("component %s: cannot load the CAs for the XMPP server's certificate from "
			  "%s: %s", domain, ca ? ca : "the system's default store",
			  tls_error_text(ebuf, sizeof(ebuf)));
		SSL_CTX_free(ctx);
		return NULL;
	}
	ERR_clear_error();
	log_info("component %s: TLS to the XMPP server, its certificate checked against %s",
		 domain, ca ? ca : "the system's CAs");
	return ctx;
}

struct xmpp_link *xmpp_link_new(struct event_base *base, xmpp_ctx_t *ctx,
				const struct conf *conf, const char *domain,
				const struct xmpp_link_cbs *cbs, void *arg)
{
	static const struct xmpp_parser_cbs pcbs = {
		.open = link_on_open,
		.stanza = link_on_stanza,
		.close = link_on_close,
		.skipped = link_on_skipped,
	};
	struct xmpp_link *link = gw_xcalloc(1, sizeof(*link));
	unsigned char rnd[8];

	link->base = base;
	link->ctx = ctx;
	link->conf = conf;
	link->domain = gw_xstrdup(domain);
	link->cbs = *cbs;
	link->arg = arg;
	link->backoff_ms = conf->reconnect_min_ms;
	link->parser = xmpp_parser_new(ctx, conf->max_stanza, LINK_MAX_DEPTH, &pcbs, link);
	link->timer_ev = evtimer_new(base, link_timer_cb, link);
	link->reap_ev = event_new(base, -1, 0, link_reap_cb, link);
	link->probe_ev = evtimer_new(base, link_probe_cb, link);
	link->flush_ev = event_new(base, -1, 0, link_flush_cb, link);
	link->cork = evbuffer_new();
	if (!link->timer_ev || !link->reap_ev || !link->probe_ev || !link->flush_ev || !link->cork)
		gw_fatal("event_new failed");
	if (conf->xmpp_tls == CONF_XMPP_TLS_DIRECT) {
		link->tls_ctx = link_tls_ctx_new(conf, link->domain);
		if (!link->tls_ctx) {
			xmpp_link_free(link);
			return NULL;
		}
	}
	if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
		gw_fatal("getrandom: %s", strerror(errno));
	for (size_t i = 0; i < sizeof(rnd); i++)
		snprintf(link->token + 2 * i, 3, "%02x", rnd[i]);
	return link;
}

void xmpp_link_start(struct xmpp_link *link)
{
	if (link->state == LINK_IDLE)
		link_connect(link);
}

/* Writes a serialised stanza held in t (logged at debug level), and lets one huge stanza's
 * buffer go rather than keep it. */
static void link_write_text(struct xmpp_link *link, struct xmpp_text *t)
{
	if (log_enabled(CONF_LOG_DEBUG))
		log_debug("component %s: sent %.*s", link->domain,
			  t->len > 600 ? 600 : (int)t->len, t->p);
	link_write(link, t->p, t->len);
	if (t->cap > 64 * 1024)
		xmpp_text_free(t);
}

int xmpp_link_send(struct xmpp_link *link, xmpp_stanza_t *stanza)
{
	if (link->state != LINK_UP || !link->bev)
		return -1;
	link->out.len = 0;
	xmpp_text_stanza(&link->out, stanza);
	link_write_text(link, &link->out);
	return 0;
}

int xmpp_link_send_text(struct xmpp_link *link, struct xmpp_text *t)
{
	if (link->state != LINK_UP || !link->bev)
		return -1;
	link_write_text(link, t);
	return 0;
}

int xmpp_link_send_to(struct xmpp_link *link, const char *text, size_t len, const char *to)
{
	struct xmpp_text *t = &link->out;
	size_t name = 0;

	if (link->state != LINK_UP || !link->bev || !len)
		return -1;
	while (name + 1 < len && text[name + 1] != ' ' && text[name + 1] != '>' &&
	       text[name + 1] != '/')
		name++;
	t->len = 0;
	xmpp_text_add(t, text, name + 1);
	xmpp_text_add(t, " to='", 5);
	xmpp_text_attr(t, to);
	xmpp_text_add(t, "'", 1);
	xmpp_text_add(t, text + name + 1, len - name - 1);
	link_write_text(link, t);
	return 0;
}

int xmpp_link_is_up(const struct xmpp_link *link)
{
	return link->state == LINK_UP;
}

int xmpp_link_congested(const struct xmpp_link *link)
{
	size_t high = link->conf->max_stanza * 16 > LINK_OUT_HIGH_WATER ?
		      link->conf->max_stanza * 16 : LINK_OUT_HIGH_WATER;

	return link->bev && evbuffer_get_length(bufferevent_get_output(link->bev)) +
			    evbuffer_get_length(link->cork) > high;
}

unsigned xmpp_link_retry_in_ms(const struct xmpp_link *link)
{
	struct timeval now, d;

	if (link->state != LINK_WAITING)
		return 0;
	evutil_gettimeofday(&now, NULL);
	if (evutil_timercmp(&link->retry_at, &now, <))
		return 0;
	evutil_timersub(&link->retry_at, &now, &d);
	return (unsigned)(d.tv_sec * 1000 + d.tv_usec / 1000);
}

const char *xmpp_link_domain(const struct xmpp_link *link)
{
	return link->domain;
}

void xmpp_link_stop(struct xmpp_link *link, void (*done)(void *arg), void *arg)
{
	int was_up = link->state == LINK_UP;

	link->stop_done = done;
	link->stop_arg = arg;
	link->probing = 0;
	evtimer_del(link->probe_ev);
	evtimer_del(link->timer_ev);
	if (link->bev && link->state != LINK_CONNECTING) {
		link_write(link, "</stream:stream>", 16);
		link_enter_state(link, LINK_CLOSING);
		link_arm(link, LINK_STOP_GRACE_MS);
	} else {
		link_drop(link);
		link_enter_state(link, LINK_STOPPED);
		link_arm(link, 0);	/* `done` runs from the loop, not from inside this call */
	}
	if (was_up && link->cbs.state)
		link->cbs.state(link->arg, link, 0);
}

void xmpp_link_free(struct xmpp_link *link)
{
	if (!link)
		return;
	if (link->read_ev)
		event_free(link->read_ev);	/* before its socket closes with the bufferevent */
	if (link->dead_read_ev)
		event_free(link->dead_read_ev);
	free(link->rbuf);
	if (link->bev)
		bufferevent_free(link->bev);
	if (link->dead_bev)
		bufferevent_free(link->dead_bev);
	event_free(link->timer_ev);
	event_free(link->reap_ev);
	event_free(link->probe_ev);
	event_free(link->flush_ev);
	evbuffer_free(link->cork);
	xmpp_parser_free(link->parser);
	SSL_CTX_free(link->tls_ctx);	/* after the bufferevents: their SSLs hold references */
	free(link->stream_id);
	free(link->domain);
	xmpp_text_free(&link->out);
	free(link);
}
