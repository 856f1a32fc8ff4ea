/* xcap.c - XCAP document fetches and writes over libevent's evhttp client: URL grammar, document
 * URLs, and one bounded GET, PUT or DELETE per fetch (see xcap.h).
 *
 * Lifetime of a fetch: RUNNING (a connection and a request inside evhttp, the deadline armed)
 * -> DONE (the result is copied out, the connection idle or failed, delivery scheduled) ->
 * DELIVERING (unlinked from the fetcher, the user's callback running) -> freed.  One event does
 * both jobs: it is the deadline while RUNNING and is made active to deliver once DONE.  Nothing
 * evhttp owns is freed inside an evhttp callback: the connection is freed from that event (or from
 * xcap_cancel/xcap_free, which the user calls from outside evhttp), and evhttp_connection_free()
 * drops a request still queued on it without calling the request's callback.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "gateway/gw.h"
#include "sip/xcap.h"

enum fetch_state { FETCH_RUNNING, FETCH_DONE, FETCH_DELIVERING };

/* Bytes past max_body + XCAP_MAX_HEADERS the input buffer may hold: one read adds at most 16 KiB
 * (libevent's default single read) to what evhttp has not consumed yet. */
#define XCAP_READ_SLACK 65536

/* What one fetch sends; every pointer is borrowed until fetch_begin() returns. */
struct request {
	enum evhttp_cmd_type method;	/* EVHTTP_REQ_GET, _PUT or _DELETE */
	const char *name;		/* "xcap_get"... for messages */
	const char *url;
	const char *if_none_match;	/* GET; NULL for none */
	const char *if_match;		/* PUT, DELETE; NULL for none */
	const char *content_type;	/* PUT */
	const char *body;		/* PUT: len bytes (NULL when len is 0) */
	size_t len;
};

/* A URL taken apart by url_parse(); path points into the URL. */
struct url_parts {
	char host[48];		/* the numeric address, without brackets */
	char authority[64];	/* host[:port] as written: the Host header */
	int family;
	unsigned port;
	const char *path;	/* "" or starts with '/' */
};

struct xcap_fetch {
	struct xcap *x;			/* NULL once unlinked (DELIVERING) */
	struct xcap_fetch *prev, *next;
	enum fetch_state state;
	xcap_done_fn *cb;
	void *arg;
	struct event *ev;		/* the deadline, then the delivery */
	struct evhttp_connection *evcon;	/* owned; NULL when none */
	struct evbuffer *input;		/* evcon's input buffer, watched by input_guard_cb */
	struct evbuffer_cb_entry *input_cb;
	int counted;			/* holds one of x->lim.max_fetches */
	int http_err;			/* from evhttp's error callback, or -1 */
	char where[80];			/* "host:port" for messages */

	struct xcap_result r;		/* what the callback gets; strings below */
	char *etag, *content_type, *body;	/* owned */
	char errbuf[160];
};

struct xcap {
	struct event_base *base;
	struct xcap_limits lim;
	struct xcap_fetch *fetches;	/* RUNNING and DONE ones */
	unsigned active;		/* fetches holding a connection */
};

static const char *const error_names[] = {
	[XCAP_OK] = "ok",
	[XCAP_ERR_ARG] = "bad argument",
	[XCAP_ERR_BUSY] = "busy",
	[XCAP_ERR_CONNECT] = "connect",
	[XCAP_ERR_TIMEOUT] = "timeout",
	[XCAP_ERR_TOO_BIG] = "too big",
	[XCAP_ERR_PROTOCOL] = "protocol",
};

const char *xcap_error_name(enum xcap_error e)
{
	if ((size_t)e >= sizeof(error_names) / sizeof(error_names[0]))
		return "?";
	return error_names[e];
}

/* ---- URLs */

/* RFC 3986: unreserved / sub-delims / ":" / "@" (pct-encoded is handled by the callers) */
static int is_pchar(unsigned char c)
{
	if (c == 0 || c >= 0x80)
		return 0;
	return isalnum(c) || strchr("-._~!$&'()*+,;=:@", c) != NULL;
}

static int is_hex(unsigned char c)
{
	return c < 0x80 && isxdigit(c);
}

static int fail(char *err, size_t errlen, const char *fmt, ...) GW_PRINTF(3, 4);

static int fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err && errlen) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return -1;
}

static int url_parse(const char *url, struct url_parts *u, char *err, size_t errlen)
{
	const char *p, *auth, *auth_end, *host, *host_end, *s;
	size_t hlen;
	unsigned char addr[16];

	memset(u, 0, sizeof(*u));
	if (!url || !*url)
		return fail(err, errlen, "empty URL");
	if (strlen(url) > XCAP_MAX_URL)
		return fail(err, errlen, "URL longer than %d bytes", XCAP_MAX_URL);
	if (!strncasecmp(url, "https://", 8))
		return fail(err, errlen, "https is not supported yet (TLS comes with issue 14): "
			    "use an http:// URL");
	if (strncasecmp(url, "http://", 7) != 0)
		return fail(err, errlen, "not an http:// URL");
	auth = url + 7;
	auth_end = auth + strcspn(auth, "/?#");
	for (s = auth; s < auth_end; s++)
		if (*s == '@')
			return fail(err, errlen, "user information (\"...@\") is not allowed in "
				    "the URL");

	if (*auth == '[') {
		host = auth + 1;
		host_end = memchr(host, ']', (size_t)(auth_end - host));
		if (!host_end)
			return fail(err, errlen, "no ']' after the IPv6 address");
		p = host_end + 1;
		u->family = AF_INET6;
	} else {
		host = auth;
		host_end = memchr(host, ':', (size_t)(auth_end - host));
		if (host_end && memchr(host_end + 1, ':', (size_t)(auth_end - host_end - 1)))
			return fail(err, errlen, "an IPv6 address goes in brackets: "
				    "http://[2001:db8::1]:port/...");
		if (!host_end)
			host_end = auth_end;
		p = host_end;
		u->family = AF_INET;
	}
	hlen = (size_t)(host_end - host);
	if (hlen == 0)
		return fail(err, errlen, "no host in the URL");
	if (hlen >= sizeof(u->host))
		return fail(err, errlen, "the host is not a numeric address (the gateway does no "
			    "DNS: use an IPv4 address or an [IPv6] address)");
	memcpy(u->host, host, hlen);
	u->host[hlen] = '\0';
	if (inet_pton(u->family, u->host, addr) != 1) {
		if (u->family == AF_INET6)
			return fail(err, errlen, "\"%s\" is not an IPv6 address (zones are not "
				    "allowed)", u->host);
		return fail(err, errlen, "\"%s\" is not a numeric address (the gateway does no "
			    "DNS: use an IPv4 address or an [IPv6] address)", u->host);
	}

	u->port = 80;
	if (p < auth_end) {
		unsigned long port = 0;

		if (*p != ':')
			return fail(err, errlen, "unexpected text after the host");
		p++;
		if (p == auth_end)
			return fail(err, errlen, "empty port after ':'");
		for (; p < auth_end; p++) {
			if (*p < '0' || *p > '9')
				return fail(err, errlen, "the port is not a number");
			port = port * 10 + (unsigned long)(*p - '0');
			if (port > 65535)
				return fail(err, errlen, "the port is over 65535");
		}
		if (port == 0)
			return fail(err, errlen, "port 0");
		u->port = (unsigned)port;
	}
	if ((size_t)(auth_end - auth) >= sizeof(u->authority))
		return fail(err, errlen, "the host and port are too long");
	memcpy(u->authority, auth, (size_t)(auth_end - auth));
	u->authority[auth_end - auth] = '\0';

	u->path = auth_end;
	for (s = u->path; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '?')
			return fail(err, errlen, "a query (\"?...\") is not allowed in the URL");
		if (c == '#')
			return fail(err, errlen, "a fragment (\"#...\") is not allowed in the URL");
		if (c == '%') {
			if (!is_hex((unsigned char)s[1]) || !is_hex((unsigned char)s[2]))
				return fail(err, errlen, "a '%%' not followed by two hex digits at "
					    "offset %zu", (size_t)(s - url));
			s += 2;
			continue;
		}
		if (c != '/' && !is_pchar(c))
			return fail(err, errlen, "byte 0x%02x at offset %zu is not allowed in a "
				    "path (percent-encode it)", c, (size_t)(s - url));
	}
	return 0;
}

int xcap_url_check(const char *url, char *err, size_t errlen)
{
	struct url_parts u;

	return url_parse(url, &u, err, errlen);
}

/* Appends segment s, percent-encoded, at *out (room: 3 bytes per input byte). */
static char *put_segment(char *out, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";

	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (is_pchar(c)) {
			*out++ = (char)c;
		} else {
			*out++ = '%';
			*out++ = hex[c >> 4];
			*out++ = hex[c & 15];
		}
	}
	return out;
}

/* Empty, "." and ".." segments would change which document a server normalizes the path to. */
static int bad_segment(const char *s)
{
	return !s || !*s || !strcmp(s, ".") || !strcmp(s, "..");
}

char *xcap_document_url(const char *xcap_root, const char *auid, const char *xui,
			const char *docname)
{
	struct url_parts u;
	size_t rlen, cap;
	char *url, *p;

	if (!xcap_root || url_parse(xcap_root, &u, NULL, 0) < 0)
		return NULL;
	if (bad_segment(auid) || bad_segment(xui) || bad_segment(docname))
		return NULL;
	rlen = strlen(xcap_root);
	if (rlen && xcap_root[rlen - 1] == '/')
		rlen--;
	cap = rlen + 3 * (strlen(auid) + strlen(xui) + strlen(docname)) + sizeof("//users//");
	url = gw_xmalloc(cap);
	memcpy(url, xcap_root, rlen);
	p = url + rlen;
	*p++ = '/';
	p = put_segment(p, auid);
	memcpy(p, "/users/", 7);
	p += 7;
	p = put_segment(p, xui);
	*p++ = '/';
	p = put_segment(p, docname);
	*p = '\0';
	return url;
}

/* ---- fetches */

struct xcap *xcap_new(struct event_base *base, const struct xcap_limits *lim)
{
	struct xcap *x = gw_xcalloc(1, sizeof(*x));

	x->base = base;
	if (lim)
		x->lim = *lim;
	if (!x->lim.max_body)
		x->lim.max_body = XCAP_DEFAULT_MAX_BODY;
	if (!x->lim.timeout_ms)
		x->lim.timeout_ms = XCAP_DEFAULT_TIMEOUT_MS;
	if (!x->lim.max_fetches)
		x->lim.max_fetches = XCAP_DEFAULT_MAX_FETCHES;
	return x;
}

/* Gives back the connection and the fetch's slot; leaves the fetch linked. */
static void fetch_release(struct xcap_fetch *f)
{
	if (f->input_cb) {
		evbuffer_remove_cb_entry(f->input, f->input_cb);
		f->input_cb = NULL;
		f->input = NULL;
	}
	if (f->evcon) {
		/* drops a request still queued on it, without its callback */
		evhttp_connection_free(f->evcon);
		f->evcon = NULL;
	}
	if (f->counted) {
		f->x->active--;
		f->counted = 0;
	}
}

static void fetch_unlink(struct xcap_fetch *f)
{
	struct xcap *x = f->x;

	if (f->prev)
		f->prev->next = f->next;
	else
		x->fetches = f->next;
	if (f->next)
		f->next->prev = f->prev;
	f->prev = f->next = NULL;
	f->x = NULL;
}

static void fetch_destroy(struct xcap_fetch *f)
{
	event_free(f->ev);
	free(f->etag);
	free(f->content_type);
	free(f->body);
	free(f);
}

/* Records a failure; the caller then calls fetch_done(). */
static void fetch_error(struct xcap_fetch *f, enum xcap_error e, const char *fmt, ...)
	GW_PRINTF(3, 4);

static void fetch_error(struct xcap_fetch *f, enum xcap_error e, const char *fmt, ...)
{
	va_list ap;

	free(f->etag);
	free(f->content_type);
	free(f->body);
	f->etag = f->content_type = f->body = NULL;
	va_start(ap, fmt);
	vsnprintf(f->errbuf, sizeof(f->errbuf), fmt, ap);
	va_end(ap);
	memset(&f->r, 0, sizeof(f->r));
	f->r.err = e;
	f->r.error = f->errbuf;
}

/* The result is complete: deliver it from the loop, outside whatever called us. */
static void fetch_done(struct xcap_fetch *f)
{
	f->state = FETCH_DONE;
	event_del(f->ev);
	event_active(f->ev, EV_TIMEOUT, 1);
}

/* The deadline while RUNNING; the delivery once DONE. */
static void fetch_event_cb(evutil_socket_t fd, short what, void *arg)
{
	struct xcap_fetch *f = arg;

	(void)fd;
	(void)what;
	if (f->state == FETCH_RUNNING)
		fetch_error(f, XCAP_ERR_TIMEOUT, "no complete response from %s within %u ms",
			    f->where, f->x->lim.timeout_ms);
	fetch_release(f);
	fetch_unlink(f);
	f->state = FETCH_DELIVERING;
	f->cb(f->arg, &f->r);
	fetch_destroy(f);
}

/* An ETag worth sending back: printable ASCII, bounded (also keeps CR/LF out of our request). */
static int etag_ok(const char *e)
{
	size_t n = 0;

	if (!e || !*e)
		return 0;
	for (; *e; e++, n++)
		if (*e < 0x20 || *e > 0x7e || n >= XCAP_MAX_ETAG)
			return 0;
	return 1;
}

/* RFC 9110 tchar */
static int is_tchar(unsigned char c)
{
	return c && c < 0x80 && (isalnum(c) || strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

static const char *skip_token(const char *s)
{
	while (is_tchar((unsigned char)*s))
		s++;
	return s;
}

static const char *skip_ows(const char *s)
{
	while (*s == ' ' || *s == '\t')
		s++;
	return s;
}

/* A Content-Type worth sending (RFC 9110 section 8.3): type "/" subtype *( OWS ";" OWS token "="
 * ( token / quoted-string ) ) OWS, printable ASCII only, bounded: no CR/LF can reach the request. */
static int content_type_ok(const char *s)
{
	const char *p;

	if (!s || strnlen(s, XCAP_MAX_CONTENT_TYPE + 1) > XCAP_MAX_CONTENT_TYPE)
		return 0;
	p = skip_token(s);
	if (p == s || *p != '/')
		return 0;
	s = p + 1;
	p = skip_token(s);
	if (p == s)
		return 0;
	for (;;) {
		p = skip_ows(p);
		if (!*p)
			return 1;
		if (*p != ';')
			return 0;
		s = skip_ows(p + 1);
		p = skip_token(s);
		if (p == s || *p != '=')
			return 0;
		p++;
		if (*p != '"') {
			s = p;
			p = skip_token(s);
			if (p == s)
				return 0;
			continue;
		}
		for (p++; *p != '"'; p++) {
			if (*p == '\\')	/* quoted-pair */
				p++;
			if (*p != '\t' && (*p < 0x20 || *p > 0x7e))	/* also the end */
				return 0;
		}
		p++;
	}
}

/* Server text fit for a message: at most len - 1 bytes, anything not printable ASCII as '?'. */
static const char *printable(const char *s, char *buf, size_t len)
{
	size_t i;

	for (i = 0; s[i] && i + 1 < len; i++)
		buf[i] = s[i] >= 0x20 && s[i] <= 0x7e ? s[i] : '?';
	buf[i] = '\0';
	return buf;
}

static void http_error_cb(enum evhttp_request_error e, void *arg)
{
	struct xcap_fetch *f = arg;

	f->http_err = (int)e;
}

/* The responses whose body the caller gets: a document (200), or an XCAP error document (409,
 * RFC 4825 section 11), which says what a PUT or DELETE would have broken. */
static int body_reported(int code)
{
	return code == 200 || code == 409;
}

/* The request finished, well or not: req is NULL after a failure evhttp_connection_fail_()
 * reports (its error callback came first); a request with status 0 means no connection. */
static void http_done_cb(struct evhttp_request *req, void *arg)
{
	struct xcap_fetch *f = arg;
	struct evkeyvalq *h;
	struct evbuffer *in;
	const char *v;
	int code;

	if (f->state != FETCH_RUNNING)
		return;
	if (!req) {
		switch (f->http_err) {
		case EVREQ_HTTP_DATA_TOO_LONG:
			fetch_error(f, XCAP_ERR_TOO_BIG, "%s sent a body over %zu bytes (or a "
				    "malformed chunk)", f->where, f->x->lim.max_body);
			break;
		case EVREQ_HTTP_INVALID_HEADER:
			fetch_error(f, XCAP_ERR_PROTOCOL, "%s sent a malformed response header (or "
				    "headers over %d bytes)", f->where, XCAP_MAX_HEADERS);
			break;
		case EVREQ_HTTP_TIMEOUT:
			fetch_error(f, XCAP_ERR_TIMEOUT, "%s: timed out", f->where);
			break;
		case EVREQ_HTTP_EOF:
			fetch_error(f, XCAP_ERR_PROTOCOL, "%s closed the connection before the "
				    "response was complete", f->where);
			break;
		default:
			fetch_error(f, XCAP_ERR_PROTOCOL, "%s: connection failed (evhttp error %d)",
				    f->where, f->http_err);
			break;
		}
		fetch_done(f);
		return;
	}
	code = evhttp_request_get_response_code(req);
	if (code == 0) {
		fetch_error(f, XCAP_ERR_CONNECT, "could not connect to %s", f->where);
		fetch_done(f);
		return;
	}
	if (code < 100 || code > 599) {
		fetch_error(f, XCAP_ERR_PROTOCOL, "%s sent status %d", f->where, code);
		fetch_done(f);
		return;
	}
	h = evhttp_request_get_input_headers(req);
	v = evhttp_find_header(h, "Content-Encoding");
	if (body_reported(code) && v && strcasecmp(v, "identity") != 0) {
		char shown[33];

		fetch_error(f, XCAP_ERR_PROTOCOL, "%s sent Content-Encoding \"%s\", which was "
			    "not asked for", f->where, printable(v, shown, sizeof(shown)));
		fetch_done(f);
		return;
	}
	v = evhttp_find_header(h, "ETag");
	if (etag_ok(v))
		f->etag = gw_xstrdup(v);
	v = evhttp_find_header(h, "Content-Type");
	if (v)
		f->content_type = gw_xstrdup(v);
	if (body_reported(code)) {
		size_t len;

		in = evhttp_request_get_input_buffer(req);
		len = evbuffer_get_length(in);
		if (len > f->x->lim.max_body) {	/* evhttp checks too; cheap to be sure */
			fetch_error(f, XCAP_ERR_TOO_BIG, "%s sent a body over %zu bytes", f->where,
				    f->x->lim.max_body);
			fetch_done(f);
			return;
		}
		f->body = gw_xmalloc(len + 1);
		evbuffer_copyout(in, f->body, len);
		f->body[len] = '\0';
		f->r.body = f->body;
		f->r.len = len;
	}
	f->r.status = code;
	f->r.err = XCAP_OK;
	f->r.etag = f->etag;
	f->r.content_type = f->content_type;
	fetch_done(f);
}

/* Bounds the connection's input buffer.  evhttp leaves there what it has not parsed yet: a
 * Content-Length body until all of it is in, a chunk, or a line it is looking for the end of, and
 * nothing bounds a chunk-size line (a server sending "1111..." without CRLF would fill memory
 * until the deadline).  A read high-water mark is no cure: libevent 2.1 then re-runs evhttp's
 * read callback on every loop pass while evhttp waits for more, spinning the CPU.  So past the
 * bound (a whole body, the headers, and a few reads of slack), reading stops and the fetch fails.
 * Runs inside libevent's read: it only disables reading and records the result. */
static void input_guard_cb(struct evbuffer *buf, const struct evbuffer_cb_info *info, void *arg)
{
	struct xcap_fetch *f = arg;
	size_t bound = f->x->lim.max_body + XCAP_MAX_HEADERS + XCAP_READ_SLACK;

	(void)info;
	if (evbuffer_get_length(buf) <= bound || !f->evcon)
		return;
	bufferevent_disable(evhttp_connection_get_bufferevent(f->evcon), EV_READ);
	if (f->state != FETCH_RUNNING)
		return;
	fetch_error(f, XCAP_ERR_TOO_BIG, "%s sent over %zu bytes without a usable response (a "
		    "line or chunk without end?)", f->where, bound);
	fetch_done(f);
}

/* Starts the request; 0, or -1 with the failure recorded in f. */
static int fetch_start(struct xcap_fetch *f, const struct url_parts *u,
		       const struct request *rq)
{
	struct xcap *x = f->x;
	struct evhttp_request *req;
	struct evkeyvalq *out;
	struct timeval tv;

	/* A NULL evdns_base: evhttp resolves with evutil_getaddrinfo(), which handles the numeric
	 * address url_parse() guaranteed without asking DNS. */
	f->evcon = evhttp_connection_base_new(x->base, NULL, u->host, (unsigned short)u->port);
	if (!f->evcon) {
		fetch_error(f, XCAP_ERR_CONNECT, "cannot create a connection to %s", f->where);
		return -1;
	}
	evhttp_connection_set_family(f->evcon, u->family);
	evhttp_connection_set_retries(f->evcon, 0);
	evhttp_connection_set_max_headers_size(f->evcon, XCAP_MAX_HEADERS);
	evhttp_connection_set_max_body_size(f->evcon, (ev_ssize_t)x->lim.max_body);
	f->input = bufferevent_get_input(evhttp_connection_get_bufferevent(f->evcon));
	f->input_cb = evbuffer_add_cb(f->input, input_guard_cb, f);
	if (!f->input_cb) {
		fetch_error(f, XCAP_ERR_CONNECT, "cannot watch a connection to %s", f->where);
		return -1;
	}

	req = evhttp_request_new(http_done_cb, f);
	if (!req) {
		fetch_error(f, XCAP_ERR_CONNECT, "cannot create a request to %s", f->where);
		return -1;
	}
	evhttp_request_set_error_cb(req, http_error_cb);
	out = evhttp_request_get_output_headers(req);
	/* evhttp adds no Host header of its own */
	evhttp_add_header(out, "Host", u->authority);
	evhttp_add_header(out, "Connection", "close");
	if (rq->if_none_match)
		evhttp_add_header(out, "If-None-Match", rq->if_none_match);
	if (rq->if_match)
		evhttp_add_header(out, "If-Match", rq->if_match);
	if (rq->method == EVHTTP_REQ_PUT) {
		char n[32];

		/* evhttp would add the length itself; said here so an empty body says 0 too */
		snprintf(n, sizeof(n), "%zu", rq->len);
		evhttp_add_header(out, "Content-Type", rq->content_type);
		evhttp_add_header(out, "Content-Length", n);
		if (rq->len && evbuffer_add(evhttp_request_get_output_buffer(req), rq->body,
					    rq->len) < 0) {
			evhttp_request_free(req);
			fetch_error(f, XCAP_ERR_CONNECT, "cannot queue a request to %s", f->where);
			return -1;
		}
	}

	/* evhttp's own timeouts stay at their defaults (tens of seconds, and only for inactivity):
	 * this deadline covers the whole fetch and always comes first. */
	tv.tv_sec = x->lim.timeout_ms / 1000;
	tv.tv_usec = (long)(x->lim.timeout_ms % 1000) * 1000;
	event_add(f->ev, &tv);
	f->counted = 1;
	x->active++;
	/* May call http_done_cb before it returns (a failed connect): that only records the
	 * result and schedules the delivery. */
	if (evhttp_make_request(f->evcon, req, rq->method, *u->path ? u->path : "/") < 0 &&
	    f->state == FETCH_RUNNING) {
		fetch_error(f, XCAP_ERR_CONNECT, "cannot send a request to %s", f->where);
		return -1;
	}
	return 0;
}

/* The one way a fetch starts: checks rq, refusing (from the loop) what cannot be sent. */
static struct xcap_fetch *fetch_begin(struct xcap *x, const struct request *rq, xcap_done_fn *cb,
				      void *arg)
{
	struct xcap_fetch *f = gw_xcalloc(1, sizeof(*f));
	struct url_parts u;
	char err[128];

	f->x = x;
	f->cb = cb;
	f->arg = arg;
	f->http_err = -1;
	f->state = FETCH_RUNNING;
	f->ev = evtimer_new(x->base, fetch_event_cb, f);
	if (!f->ev)
		gw_fatal("%s: evtimer_new failed", rq->name);
	f->next = x->fetches;
	if (x->fetches)
		x->fetches->prev = f;
	x->fetches = f;

	if (url_parse(rq->url, &u, err, sizeof(err)) < 0) {
		fetch_error(f, XCAP_ERR_ARG, "bad URL: %s", err);
		goto fail;
	}
	if (u.family == AF_INET6)
		snprintf(f->where, sizeof(f->where), "[%s]:%u", u.host, u.port);
	else
		snprintf(f->where, sizeof(f->where), "%s:%u", u.host, u.port);
	if ((rq->if_none_match && !etag_ok(rq->if_none_match)) ||
	    (rq->if_match && !etag_ok(rq->if_match))) {
		fetch_error(f, XCAP_ERR_ARG, "bad ETag (empty, over %d bytes or not printable "
			    "ASCII)", XCAP_MAX_ETAG);
		goto fail;
	}
	if (rq->method == EVHTTP_REQ_PUT) {
		if (!content_type_ok(rq->content_type)) {
			fetch_error(f, XCAP_ERR_ARG, "bad Content-Type (not type/subtype with "
				    "parameters, printable ASCII, at most %d bytes)",
				    XCAP_MAX_CONTENT_TYPE);
			goto fail;
		}
		if (rq->len > x->lim.max_body) {
			fetch_error(f, XCAP_ERR_ARG, "a body of %zu bytes, over the limit of %zu",
				    rq->len, x->lim.max_body);
			goto fail;
		}
		if (rq->len && !rq->body) {
			fetch_error(f, XCAP_ERR_ARG, "no body, but a length of %zu", rq->len);
			goto fail;
		}
	}
	if (x->active >= x->lim.max_fetches) {
		fetch_error(f, XCAP_ERR_BUSY, "%u XCAP fetches already in flight",
			    x->lim.max_fetches);
		goto fail;
	}
	if (fetch_start(f, &u, rq) < 0)
		goto fail;
	return f;

fail:
	fetch_done(f);
	return f;
}

struct xcap_fetch *xcap_get(struct xcap *x, const char *url, const char *etag, xcap_done_fn *cb,
			    void *arg)
{
	struct request rq = { .method = EVHTTP_REQ_GET, .name = "xcap_get", .url = url,
			      .if_none_match = etag };

	return fetch_begin(x, &rq, cb, arg);
}

struct xcap_fetch *xcap_put(struct xcap *x, const char *url, const char *content_type,
			    const char *body, size_t len, const char *if_match, xcap_done_fn *cb,
			    void *arg)
{
	struct request rq = { .method = EVHTTP_REQ_PUT, .name = "xcap_put", .url = url,
			      .if_match = if_match, .content_type = content_type, .body = body,
			      .len = len };

	return fetch_begin(x, &rq, cb, arg);
}

struct xcap_fetch *xcap_delete(struct xcap *x, const char *url, const char *if_match,
			       xcap_done_fn *cb, void *arg)
{
	struct request rq = { .method = EVHTTP_REQ_DELETE, .name = "xcap_delete", .url = url,
			      .if_match = if_match };

	return fetch_begin(x, &rq, cb, arg);
}

void xcap_cancel(struct xcap_fetch *f)
{
	if (!f || f->state == FETCH_DELIVERING)
		return;
	fetch_release(f);
	fetch_unlink(f);
	fetch_destroy(f);
}

void xcap_free(struct xcap *x)
{
	if (!x)
		return;
	while (x->fetches)
		xcap_cancel(x->fetches);
	free(x);
}
