/* metrics.c - the Prometheus text endpoint: GET /metrics on <metrics address port>.
 *
 * libevent's HTTP server on the gateway's event base, on a listener bound here to the numeric
 * address of <metrics> (so a port in use stops the start, as a SIP port does).  Every scrape is
 * rendered at once from the counters (stats.h) and the gauges the modules keep: a few hundred
 * lines written into one evbuffer, no allocation per sample beyond it, nothing waited for.
 * Only GET (and HEAD) of /metrics: another path is 404, another method 405.
 *
 * Bounds: request headers (request line included) at most METRICS_MAX_HEADERS bytes and a body
 * at most METRICS_MAX_BODY (413 beyond); a connection silent for METRICS_TIMEOUT_S is closed.
 * libevent 2.1's evhttp has no cap on simultaneous connections (2.2 adds
 * evhttp_set_max_connections): each costs a descriptor and a buffer until it closes or times out,
 * which is why the endpoint, which has no authentication either, belongs on loopback or a
 * management network (docs/operations.md).
 *
 * The format is the text exposition format 0.0.4: # HELP and # TYPE before each family's
 * samples, label values escaped (metrics_escape), histogram buckets cumulative with +Inf equal to
 * _count.  docs/operations.md lists every metric; tests/e2e/test_metrics.py parses a scrape
 * strictly and checks that each counter moves with its traffic.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>

#include "../mapping/map.h"
#include "../sip/sip.h"
#include "../xmpp/xmpp.h"
#include "gw.h"

#define METRICS_MAX_HEADERS 8192	/* request line and headers */
#define METRICS_MAX_BODY 1024		/* a GET has none; a small one still gets its 405 */
#define METRICS_TIMEOUT_S 10		/* a connection silent this long is closed */
#define METRICS_BACKLOG 16
#define METRICS_CTYPE "text/plain; version=0.0.4; charset=utf-8"

struct metrics {
	struct gw *gw;
	struct evhttp *http;		/* owns the listener */
	unsigned long long scrapes;
};

size_t metrics_escape(const char *s, char *out, size_t outlen)
{
	size_t n = 0;

	for (; *s; s++) {
		const char *rep = *s == '\\' ? "\\\\" : *s == '"' ? "\\\"" : *s == '\n' ? "\\n" : NULL;
		size_t k = rep ? 2 : 1;

		for (size_t i = 0; i < k; i++, n++)
			if (n + 1 < outlen)
				out[n] = rep ? rep[i] : *s;
	}
	if (outlen)
		out[n < outlen ? n : outlen - 1] = '\0';
	return n;
}

/* ---- writing the exposition */

struct mlabel {
	const char *name;	/* a constant label name */
	const char *value;	/* escaped as it is written */
};

static void put_escaped(struct evbuffer *b, const char *s)
{
	char buf[256], *p = buf;
	size_t n = metrics_escape(s, buf, sizeof(buf));

	if (n >= sizeof(buf)) {
		p = gw_xmalloc(n + 1);
		metrics_escape(s, p, n + 1);
	}
	evbuffer_add(b, p, n);
	if (p != buf)
		free(p);
}

/* "# HELP" and "# TYPE" of a family: help is a constant without backslashes or line feeds. */
static void family(struct evbuffer *b, const char *name, const char *type, const char *help)
{
	evbuffer_add_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* name[suffix]{labels} and the space before the value. */
static void sample_head(struct evbuffer *b, const char *name, const char *suffix,
			const struct mlabel *l, size_t n)
{
	evbuffer_add_printf(b, "%s%s", name, suffix ? suffix : "");
	for (size_t i = 0; i < n; i++) {
		evbuffer_add_printf(b, "%c%s=\"", i ? ',' : '{', l[i].name);
		put_escaped(b, l[i].value);
		evbuffer_add(b, "\"", 1);
	}
	evbuffer_add(b, n ? "} " : " ", n ? 2 : 1);
}

static void sample_u(struct evbuffer *b, const char *name, const struct mlabel *l, size_t n,
		     unsigned long long v)
{
	sample_head(b, name, NULL, l, n);
	evbuffer_add_printf(b, "%llu\n", v);
}

static void one_u(struct evbuffer *b, const char *name, const char *type, const char *help,
		  unsigned long long v)
{
	family(b, name, type, help);
	sample_u(b, name, NULL, 0, v);
}

static const char *const dir_names[STATS_NDIR] = {
	[STATS_SIP_TO_XMPP] = "sip_to_xmpp",
	[STATS_XMPP_TO_SIP] = "xmpp_to_sip",
};

static const char *const verdict_names[STATS_NVERDICT] = {
	[STATS_DELIVERED] = "delivered",
	[STATS_FAILED] = "failed",
	[STATS_REFUSED] = "refused",
};

/* The messages counters (m[direction][verdict], flat) of st or of a peer (peer: its name,
 * else NULL). */
static void messages(struct evbuffer *b, const char *name, const char *peer,
		     const unsigned long long *m)
{
	for (int d = 0; d < STATS_NDIR; d++)
		for (int v = 0; v < STATS_NVERDICT; v++) {
			struct mlabel l[3] = { { "peer", peer }, { "direction", dir_names[d] },
					       { "verdict", verdict_names[v] } };

			if (peer)
				sample_u(b, name, l, 3, m[d * STATS_NVERDICT + v]);
			else
				sample_u(b, name, l + 1, 2, m[d * STATS_NVERDICT + v]);
		}
}

static void latency(struct evbuffer *b, const struct stats *st)
{
	static const unsigned bounds_ms[STATS_NLATENCY] = STATS_LATENCY_BOUNDS_MS;
	static const char name[] = "simplegw_message_delivery_seconds";

	family(b, name, "histogram", "Time from a message's arrival to the delivery verdict the "
	       "gateway gave its sender, for messages delivered");
	for (int d = 0; d < STATS_NDIR; d++) {
		unsigned long long cum = 0;
		char le[32];

		for (int i = 0; i <= STATS_NLATENCY; i++) {
			struct mlabel l[2] = { { "direction", dir_names[d] }, { "le", le } };

			if (i < STATS_NLATENCY)
				snprintf(le, sizeof(le), "%g", bounds_ms[i] / 1000.0);
			else
				snprintf(le, sizeof(le), "+Inf");
			cum += st->latency[d][i];
			sample_head(b, name, "_bucket", l, 2);
			evbuffer_add_printf(b, "%llu\n", cum);
		}
		{
			struct mlabel l[1] = { { "direction", dir_names[d] } };

			sample_head(b, name, "_sum", l, 1);
			evbuffer_add_printf(b, "%llu.%06llu\n", st->latency_sum_us[d] / 1000000u,
					    st->latency_sum_us[d] % 1000000u);
			sample_u(b, "simplegw_message_delivery_seconds_count", l, 1,
				 st->latency_count[d]);
		}
	}
}

static void sip_statuses(struct evbuffer *b, const char *name, const char *help,
			 const unsigned long long *counts)
{
	family(b, name, "counter", help);
	for (int i = 0; i < STATS_NSIP; i++) {
		char code[16];
		struct mlabel l[1] = { { "code", code } };

		if (!counts[i])
			continue;	/* the codes seen so far */
		snprintf(code, sizeof(code), "%d", STATS_SIP_MIN + i);
		sample_u(b, name, l, 1, counts[i]);
	}
}

/* One per-peer counter family: field's value for each configured peer. */
static void per_peer(struct evbuffer *b, struct gw *gw, const char *name, const char *help,
		     size_t offset)
{
	family(b, name, "counter", help);
	for (size_t i = 0; i < gw->conf->npeers; i++) {
		const struct conf_peer *peer = gw->conf->peers[i];
		struct stats_peer *ps = gw_peer_stats(gw, peer);
		struct mlabel l[1] = { { "peer", peer->name } };

		if (ps)
			sample_u(b, name, l, 1,
				 *(const unsigned long long *)((const char *)ps + offset));
	}
}

static void render(struct gw *gw, struct evbuffer *b)
{
	const struct stats *st = &gw->stats;
	const struct conf *conf = gw->conf;

	family(b, "simplegw_build_info", "gauge", "The running simplegw's version (always 1)");
	{
		struct mlabel l[1] = { { "version", SIMPLEGW_VERSION } };

		sample_u(b, "simplegw_build_info", l, 1, 1);
	}
	family(b, "simplegw_start_time_seconds", "gauge",
	       "When the gateway started, in seconds since the Unix epoch");
	evbuffer_add_printf(b, "simplegw_start_time_seconds %llu.%03llu\n",
			    (unsigned long long)(st->started_wall_ms / 1000u),
			    (unsigned long long)(st->started_wall_ms % 1000u));

	/* messages */
	family(b, "simplegw_messages_total", "counter",
	       "Messages by direction and by the verdict their sender got");
	messages(b, "simplegw_messages_total", NULL, &st->messages[0][0]);
	latency(b, st);
	one_u(b, "simplegw_pending_messages", "gauge",
	      "Messages whose verdict is not known yet, both directions",
	      gw->pager ? pager_pending(gw->pager) : 0);

	/* SIP */
	sip_statuses(b, "simplegw_sip_responses_sent_total",
		     "SIP responses the gateway sent, by status code", st->sip_sent);
	sip_statuses(b, "simplegw_sip_responses_received_total",
		     "SIP responses to the gateway's requests, by status code (with the 408 and 503 "
		     "the SIP stack reports itself for a request unanswered or not sent)",
		     st->sip_received);
	family(b, "simplegw_sip_dialogs", "gauge", "SIP dialogs by kind: watcher (a SIP watcher's "
	       "subscription to an XMPP user or a room), subscription (the gateway's to a SIP "
	       "presentity or list), call (INVITE)");
	{
		struct mlabel l[3][1] = { { { "kind", "watcher" } }, { { "kind", "subscription" } },
					  { { "kind", "call" } } };

		sample_u(b, "simplegw_sip_dialogs", l[0], 1, gw->sip ? sip_stack_watches(gw->sip) : 0);
		sample_u(b, "simplegw_sip_dialogs", l[1], 1, gw->sip ? sip_stack_subs(gw->sip) : 0);
		sample_u(b, "simplegw_sip_dialogs", l[2], 1, gw->sip ? sip_stack_calls(gw->sip) : 0);
	}

	/* presence, sessions, rooms */
	one_u(b, "simplegw_presence_watchers", "gauge",
	      "XMPP users watching SIP presentities (one per watcher and presentity)",
	      gw->presence ? presence_watchers(gw->presence) : 0);
	one_u(b, "simplegw_presence_presentities", "gauge", "SIP presentities watched",
	      gw->presence ? presence_presentities(gw->presence) : 0);
	one_u(b, "simplegw_sessions", "gauge", "Chat sessions (SIP INVITE and MSRP) open",
	      gw->sessions ? sessions_count(gw->sessions) : 0);
	one_u(b, "simplegw_sessions_started_total", "counter", "Chat sessions begun",
	      st->sessions_started);
	one_u(b, "simplegw_sessions_ended_total", "counter", "Chat sessions over",
	      st->sessions_ended);
	one_u(b, "simplegw_groupchat_rooms", "gauge", "XMPP rooms with SIP occupants",
	      gw->groupchat ? groupchat_rooms(gw->groupchat) : 0);
	one_u(b, "simplegw_groupchat_occupants", "gauge", "Occupants bridged, both ways",
	      gw->groupchat ? groupchat_count(gw->groupchat) : 0);

	/* the component links */
	family(b, "simplegw_xmpp_link_up", "gauge",
	       "1 while the component stream to the XMPP server is up, else 0");
	for (size_t i = 0; i < gw->nlinks; i++) {
		struct mlabel l[1] = { { "component", xmpp_link_domain(gw->links[i]) } };

		sample_u(b, "simplegw_xmpp_link_up", l, 1, xmpp_link_is_up(gw->links[i]) ? 1 : 0);
	}
	one_u(b, "simplegw_xmpp_link_connects_total", "counter",
	      "Component streams that came up (handshake accepted)", st->link_connects);
	one_u(b, "simplegw_xmpp_link_losses_total", "counter",
	      "Component streams lost while the gateway was running", st->link_losses);

	/* the peer networks */
	family(b, "simplegw_peer_up", "gauge", "1 while the peer network answers its OPTIONS "
	       "health check, 0 while it does not; absent until known");
	for (size_t i = 0; i < conf->npeers; i++) {
		struct gw_peer *h = gw_peer_of(gw, conf->peers[i]);
		struct mlabel l[1] = { { "peer", conf->peers[i]->name } };

		if (h && h->up >= 0)
			sample_u(b, "simplegw_peer_up", l, 1, (unsigned long long)h->up);
	}
	family(b, "simplegw_peer_dialogs", "gauge", "SIP dialogs with the peer network, as its "
	       "<limits> count them: subscription (its watchers' and the gateway's), call (INVITE)");
	for (size_t i = 0; gw->sip && i < conf->npeers; i++) {
		struct sip_peer_usage u;
		struct mlabel l[2][2] = { { { "peer", conf->peers[i]->name },
					    { "kind", "subscription" } },
					  { { "peer", conf->peers[i]->name }, { "kind", "call" } } };

		sip_peer_usage(gw->sip, conf->peers[i], &u);
		sample_u(b, "simplegw_peer_dialogs", l[0], 2, u.subscriptions);
		sample_u(b, "simplegw_peer_dialogs", l[1], 2, u.calls);
	}
	family(b, "simplegw_peer_messages_total", "counter",
	       "Messages by peer network, direction and verdict");
	for (size_t i = 0; i < conf->npeers; i++) {
		struct stats_peer *ps = gw_peer_stats(gw, conf->peers[i]);

		if (ps)
			messages(b, "simplegw_peer_messages_total", conf->peers[i]->name,
				 &ps->messages[0][0]);
	}
	per_peer(b, gw, "simplegw_peer_sip_requests_received_total",
		 "SIP requests received from the peer network (its trust checks passed)",
		 offsetof(struct stats_peer, requests_in));
	per_peer(b, gw, "simplegw_peer_sip_requests_sent_total",
		 "SIP requests the gateway sent to the peer network",
		 offsetof(struct stats_peer, requests_out));
	per_peer(b, gw, "simplegw_peer_refused_total", "Requests of the peer network the hub "
		 "refused: a service it may not use (403), a limit reached (503)",
		 offsetof(struct stats_peer, refused));
	per_peer(b, gw, "simplegw_peer_options_failed_total",
		 "OPTIONS health checks the peer network did not answer",
		 offsetof(struct stats_peer, options_failed));

	/* the rest */
	one_u(b, "simplegw_store_errors_total", "counter",
	      "Failures of the state store (SQLite): reads, writes, commits, dropped writes",
	      st->store_errors);
	family(b, "simplegw_reloads_total", "counter",
	       "Reloads of the gateway file: applied, or failed (the file had errors)");
	{
		struct mlabel l[2][1] = { { { "result", "applied" } }, { { "result", "failed" } } };

		sample_u(b, "simplegw_reloads_total", l[0], 1, st->reloads);
		sample_u(b, "simplegw_reloads_total", l[1], 1, st->reloads_failed);
	}
}

/* ---- the HTTP side */

/* A refusal in plain text (evhttp_send_error() would drop our Allow header). */
static void metrics_refuse(struct evhttp_request *req, int status, const char *phrase,
			   struct evbuffer *body)
{
	struct evkeyvalq *h = evhttp_request_get_output_headers(req);

	evbuffer_add_printf(body, "%d %s\n", status, phrase);
	evhttp_add_header(h, "Content-Type", "text/plain; charset=utf-8");
	if (status == HTTP_BADMETHOD)
		evhttp_add_header(h, "Allow", "GET, HEAD");
	evhttp_send_reply(req, status, phrase, body);
}

/* A response larger than one segment would otherwise wait for the client's delayed ACK of the
 * one before (Nagle): ~40 ms per scrape of a kept-alive connection past 64 KiB (bench/ops.py). */
static void metrics_nodelay(struct evhttp_request *req)
{
	struct evhttp_connection *c = evhttp_request_get_connection(req);
	struct bufferevent *bev = c ? evhttp_connection_get_bufferevent(c) : NULL;
	evutil_socket_t fd = bev ? bufferevent_getfd(bev) : -1;
	int one = 1;

	if (fd >= 0)
		(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

static void metrics_request(struct evhttp_request *req, void *arg)
{
	struct metrics *m = arg;
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
	const char *path = uri ? evhttp_uri_get_path(uri) : NULL;
	enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
	struct evbuffer *body = evbuffer_new();

	if (!body)
		gw_fatal("metrics: out of memory");
	metrics_nodelay(req);
	if (!path || strcmp(path, "/metrics") != 0) {
		metrics_refuse(req, HTTP_NOTFOUND, "Not Found", body);
	} else if (cmd != EVHTTP_REQ_GET && cmd != EVHTTP_REQ_HEAD) {
		metrics_refuse(req, HTTP_BADMETHOD, "Method Not Allowed", body);
	} else {
		render(m->gw, body);
		m->scrapes++;
		log_debug("metrics: scrape %llu, %zu bytes", m->scrapes, evbuffer_get_length(body));
		evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
				  METRICS_CTYPE);
		evhttp_send_reply(req, HTTP_OK, "OK", body);
	}
	evbuffer_free(body);
}

static void metrics_listener_error(struct evconnlistener *l, void *arg)
{
	int err = EVUTIL_SOCKET_ERROR();

	if (err == EMFILE || err == ENFILE)
		guard_shed(evconnlistener_get_fd(l), "metrics");
}

struct metrics *metrics_new(struct gw *gw)
{
	const struct conf *conf = gw->conf;
	struct sockaddr_storage sa;
	socklen_t salen;
	struct evconnlistener *lev;
	struct metrics *m;

	memset(&sa, 0, sizeof(sa));
	if (inet_pton(AF_INET, conf->metrics_address,
		      &((struct sockaddr_in *)&sa)->sin_addr) == 1) {
		sa.ss_family = AF_INET;
		((struct sockaddr_in *)&sa)->sin_port = htons((uint16_t)conf->metrics_port);
		salen = sizeof(struct sockaddr_in);
	} else if (inet_pton(AF_INET6, conf->metrics_address,
			     &((struct sockaddr_in6 *)&sa)->sin6_addr) == 1) {
		sa.ss_family = AF_INET6;
		((struct sockaddr_in6 *)&sa)->sin6_port = htons((uint16_t)conf->metrics_port);
		salen = sizeof(struct sockaddr_in6);
	} else {
		log_error("metrics: \"%s\" is not a numeric address (conf line %u)",
			  conf->metrics_address, conf->metrics_line);
		return NULL;
	}
	lev = evconnlistener_new_bind(gw->base, NULL, NULL, LEV_OPT_CLOSE_ON_FREE |
				      LEV_OPT_CLOSE_ON_EXEC | LEV_OPT_REUSEABLE, METRICS_BACKLOG,
				      (struct sockaddr *)&sa, (int)salen);
	if (!lev) {
		log_error("cannot listen for metrics on %s port %u (conf line %u): %s",
			  conf->metrics_address, conf->metrics_port, conf->metrics_line,
			  strerror(errno));
		return NULL;
	}
	m = gw_xcalloc(1, sizeof(*m));
	m->gw = gw;
	m->http = evhttp_new(gw->base);
	if (!m->http || !evhttp_bind_listener(m->http, lev))
		gw_fatal("metrics: cannot start the HTTP server");
	/* out of descriptors, a failed accept() would leave the listener readable and the reactor
	 * spinning: the guard sheds the pending connection instead, as for SIP and MSRP */
	evconnlistener_set_error_cb(lev, metrics_listener_error);
	/* every method reaches metrics_request, which answers 405 (evhttp itself would say 501) */
	evhttp_set_allowed_methods(m->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD |
				   EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE | EVHTTP_REQ_OPTIONS |
				   EVHTTP_REQ_TRACE | EVHTTP_REQ_CONNECT | EVHTTP_REQ_PATCH);
	evhttp_set_max_headers_size(m->http, METRICS_MAX_HEADERS);
	evhttp_set_max_body_size(m->http, METRICS_MAX_BODY);
	evhttp_set_timeout(m->http, METRICS_TIMEOUT_S);
	evhttp_set_gencb(m->http, metrics_request, m);
	log_notice("metrics at http://%s%s%s:%u/metrics", strchr(conf->metrics_address, ':') ?
		   "[" : "", conf->metrics_address, strchr(conf->metrics_address, ':') ? "]" : "",
		   conf->metrics_port);
	return m;
}

void metrics_free(struct metrics *m)
{
	if (!m)
		return;
	if (m->http)
		evhttp_free(m->http);
	free(m);
}
