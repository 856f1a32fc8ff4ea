/* test_xcap.c - XCAP fetches (sip/xcap.h) against an evhttp server and a scripted raw TCP server on
 * 127.0.0.1 in the same event base, as tables: URL checks, document URLs, fetch outcomes (200,
 * 304, 404, 3xx, limits, hostile servers, timeouts, refused connections), writes (PUT and DELETE
 * on the evhttp server's one writable document: 201, 200, 412, 409, 404, refusals), cancel and
 * free. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/listener.h>

#include "gateway/gw.h"
#include "sip/xcap.h"
#include "tests/unit/test.h"

static struct event_base *base;

/* ---- running the loop */

static void guard_cb(evutil_socket_t fd, short what, void *arg)
{
	*(int *)arg = 1;
}

/* Runs the loop until *flag is set or ms have passed. */
static void run_until(const int *flag, unsigned ms)
{
	struct timeval tv = { (time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000 };
	int expired = 0;
	struct event *guard = evtimer_new(base, guard_cb, &expired);

	evtimer_add(guard, &tv);
	while (!*flag && !expired)
		event_base_loop(base, EVLOOP_ONCE);
	event_free(guard);
}

static void run_for(unsigned ms)
{
	static const int never;

	run_until(&never, ms);
}

/* ---- what a callback got */

struct got {
	int called;
	int status;
	enum xcap_error err;
	char *error, *etag, *content_type, *body;
	size_t len;
	struct xcap *free_x;		/* freed from inside the callback, when set */
};

static char *dup_or_null(const char *s)
{
	return s ? gw_xstrdup(s) : NULL;
}

static void got_cb(void *arg, const struct xcap_result *r)
{
	struct got *g = arg;

	g->called++;
	g->status = r->status;
	g->err = r->err;
	g->error = dup_or_null(r->error);
	g->etag = dup_or_null(r->etag);
	g->content_type = dup_or_null(r->content_type);
	g->body = r->body ? gw_xstrndup(r->body, r->len) : NULL;
	g->len = r->len;
	if (g->body && r->body[r->len] != '\0')
		g->len = (size_t)-1;	/* not terminated: caught by the length check */
	if (g->free_x)
		xcap_free(g->free_x);
}

static void got_clear(struct got *g)
{
	free(g->error);
	free(g->etag);
	free(g->content_type);
	free(g->body);
	memset(g, 0, sizeof(*g));
}

/* ---- the evhttp server */

#define DOC "<?xml version=\"1.0\"?><cr:ruleset xmlns:cr=\"urn:ietf:params:xml:ns:common-policy\"/>"
#define DOC_ETAG "\"e1\""
#define DOC_CT "application/auth-policy+xml"

/* The one writable document (RFC 4825 section 8), with ETags "v<version>" */
#define STORE_PATH "/xcap-root/pres-rules/users/sip:alice@sip.example/index"
#define CONFLICT_PATH "/xcap-root/pres-rules/users/sip:alice@sip.example/conflict"
#define DOC2 "<?xml version=\"1.0\"?><cr:ruleset xmlns:cr=\"urn:ietf:params:xml:ns:common-policy\">" \
	"<cr:rule id=\"a\"/></cr:ruleset>"
#define ERR_DOC "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<xcap-error " \
	"xmlns=\"urn:ietf:params:xml:ns:xcap-error\"><not-well-formed/></xcap-error>"
#define ERR_CT "application/xcap-error+xml"

static unsigned http_port;

static void send_body(struct evhttp_request *req, int code, const char *text, size_t n)
{
	struct evbuffer *b = evbuffer_new();

	evbuffer_add(b, text, n);
	evhttp_send_reply(req, code, code == 200 ? "OK" : "Other", b);
	evbuffer_free(b);
}

static struct {
	char *doc;		/* NULL: none */
	unsigned version;
} store;

/* What the evhttp server last received (every request, reset by the write tests) */
static struct {
	int requests;
	const char *method;
	char *content_type, *content_length, *if_match, *body;
} seen;

static void seen_clear(void)
{
	free(seen.content_type);
	free(seen.content_length);
	free(seen.if_match);
	free(seen.body);
	memset(&seen, 0, sizeof(seen));
}

static void seen_record(struct evhttp_request *req)
{
	struct evkeyvalq *in = evhttp_request_get_input_headers(req);
	struct evbuffer *b = evhttp_request_get_input_buffer(req);
	int requests = seen.requests;
	size_t n = evbuffer_get_length(b);

	seen_clear();
	seen.requests = requests + 1;
	switch (evhttp_request_get_command(req)) {
	case EVHTTP_REQ_GET: seen.method = "GET"; break;
	case EVHTTP_REQ_PUT: seen.method = "PUT"; break;
	case EVHTTP_REQ_DELETE: seen.method = "DELETE"; break;
	default: seen.method = "other"; break;
	}
	seen.content_type = dup_or_null(evhttp_find_header(in, "Content-Type"));
	seen.content_length = dup_or_null(evhttp_find_header(in, "Content-Length"));
	seen.if_match = dup_or_null(evhttp_find_header(in, "If-Match"));
	seen.body = gw_xmalloc(n + 1);
	evbuffer_copyout(b, seen.body, n);
	seen.body[n] = '\0';
}

/* An RFC 4825 server's behaviour for one document: If-Match (RFC 9110 section 13.1.1: false when
 * there is no document), PUT creating or replacing, DELETE, GET. */
static void store_cb(struct evhttp_request *req)
{
	struct evkeyvalq *in = evhttp_request_get_input_headers(req);
	struct evkeyvalq *out = evhttp_request_get_output_headers(req);
	const char *im = evhttp_find_header(in, "If-Match");
	char etag[32];
	int created;

	snprintf(etag, sizeof(etag), "\"v%u\"", store.version);
	if (im && (!store.doc || (strcmp(im, "*") != 0 && strcmp(im, etag) != 0))) {
		evhttp_send_reply(req, 412, "Precondition Failed", NULL);
		return;
	}
	switch (evhttp_request_get_command(req)) {
	case EVHTTP_REQ_GET:
		if (!store.doc)
			break;
		evhttp_add_header(out, "ETag", etag);
		evhttp_add_header(out, "Content-Type", DOC_CT);
		send_body(req, 200, store.doc, strlen(store.doc));
		return;
	case EVHTTP_REQ_PUT:
		created = !store.doc;
		free(store.doc);
		store.doc = gw_xstrdup(seen.body);
		snprintf(etag, sizeof(etag), "\"v%u\"", ++store.version);
		evhttp_add_header(out, "ETag", etag);
		evhttp_send_reply(req, created ? 201 : 200, created ? "Created" : "OK", NULL);
		return;
	case EVHTTP_REQ_DELETE:
		if (!store.doc)
			break;
		free(store.doc);
		store.doc = NULL;
		store.version++;
		evhttp_send_reply(req, 200, "OK", NULL);
		return;
	default:
		evhttp_send_error(req, 405, NULL);
		return;
	}
	evhttp_send_error(req, 404, NULL);
}

static void http_cb(struct evhttp_request *req, void *arg)
{
	const char *path = evhttp_request_get_uri(req);
	struct evkeyvalq *in = evhttp_request_get_input_headers(req);
	struct evkeyvalq *out = evhttp_request_get_output_headers(req);
	static char big[4000];

	memset(big, 'x', sizeof(big));
	seen_record(req);
	if (!strcmp(path, STORE_PATH)) {
		store_cb(req);
	} else if (!strcmp(path, CONFLICT_PATH)) {
		evhttp_add_header(out, "Content-Type", ERR_CT);
		send_body(req, 409, ERR_DOC, strlen(ERR_DOC));
	} else if (!strcmp(path, "/xcap-root/pres-rules/users/sip:bob@sip.example/index")) {
		const char *inm = evhttp_find_header(in, "If-None-Match");

		evhttp_add_header(out, "ETag", DOC_ETAG);
		if (inm && !strcmp(inm, DOC_ETAG)) {
			evhttp_send_reply(req, 304, "Not Modified", NULL);
			return;
		}
		evhttp_add_header(out, "Content-Type", DOC_CT);
		send_body(req, 200, DOC, strlen(DOC));
	} else if (!strcmp(path, "/big")) {
		send_body(req, 200, big, 2000);
	} else if (!strcmp(path, "/fits")) {
		send_body(req, 200, big, 1000);
	} else if (!strcmp(path, "/bigchunked")) {
		struct evbuffer *b = evbuffer_new();

		evhttp_send_reply_start(req, 200, "OK");
		for (int i = 0; i < 4; i++) {
			evbuffer_add(b, big, 500);
			evhttp_send_reply_chunk(req, b);
		}
		evhttp_send_reply_end(req);
		evbuffer_free(b);
	} else if (!strcmp(path, "/redirect")) {
		evhttp_add_header(out, "Location", "http://127.0.0.1:1/elsewhere");
		send_body(req, 302, "moved", 5);
	} else if (!strcmp(path, "/forbidden")) {
		send_body(req, 403, "no", 2);
	} else {
		evhttp_send_error(req, 404, NULL);
	}
}

/* ---- the raw server: answers each connection with the current script */

enum script {
	RAW_SILENT,		/* reads, never answers */
	RAW_DRIBBLE,		/* a body of 1000 bytes, one byte every 20 ms */
	RAW_CLOSE_EARLY,	/* 3 of 100 bytes, then closes */
	RAW_ENDLESS_BODY,	/* no Content-Length, no end */
	RAW_ENDLESS_HEADER,	/* a header line without end */
	RAW_ENDLESS_CHUNKLINE,	/* a chunk-size line without end */
	RAW_HUGE_LENGTH,	/* Content-Length: 10^12 */
	RAW_BAD_STATUS,		/* status 999 */
	RAW_GARBAGE,		/* not HTTP */
	RAW_GZIP,		/* a Content-Encoding we did not ask for */
	RAW_BAD_ETAG,		/* an ETag with a control character */
	RAW_ECHO_OK,		/* 200 with a body, after recording the request */
};

static unsigned raw_port;
static enum script raw_script;
static struct bufferevent *raw_bev;	/* the connection being answered */
static struct event *raw_timer;
static char raw_request[4096];		/* the last request's head */
static int raw_answered;
static int raw_accepts;			/* connections accepted */

static void raw_close(void)
{
	if (raw_timer)
		event_free(raw_timer);
	raw_timer = NULL;
	if (raw_bev)
		bufferevent_free(raw_bev);
	raw_bev = NULL;
}

static void raw_write(const char *s)
{
	bufferevent_write(raw_bev, s, strlen(s));
}

/* The endless scripts keep about 64 KiB queued: more whenever the client takes it. */
static void raw_refill(void)
{
	static char fill[65536];
	struct evbuffer *out = bufferevent_get_output(raw_bev);
	char c = raw_script == RAW_ENDLESS_CHUNKLINE ? '1' : 'a';

	if (evbuffer_get_length(out) >= sizeof(fill))
		return;
	memset(fill, c, sizeof(fill));
	bufferevent_write(raw_bev, fill, sizeof(fill));
}

static void raw_tick(evutil_socket_t fd, short what, void *arg)
{
	struct timeval tv = { 0, 20000 };

	raw_write("d");
	evtimer_add(raw_timer, &tv);
}

static void raw_answer(void)
{
	static const char *const heads[] = {
		[RAW_DRIBBLE] = "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n",
		[RAW_CLOSE_EARLY] = "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nabc",
		[RAW_ENDLESS_BODY] = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n",
		[RAW_ENDLESS_HEADER] = "HTTP/1.1 200 OK\r\nX-Long: ",
		[RAW_ENDLESS_CHUNKLINE] = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
		[RAW_HUGE_LENGTH] = "HTTP/1.1 200 OK\r\nContent-Length: 1000000000000\r\n\r\nab",
		[RAW_BAD_STATUS] = "HTTP/1.1 999 Odd\r\nContent-Length: 0\r\n\r\n",
		[RAW_GARBAGE] = "SSH-2.0-OpenSSH_9.2\r\n\r\n",
		[RAW_GZIP] = "HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: 3\r\n\r\nabc",
		[RAW_BAD_ETAG] = "HTTP/1.1 200 OK\r\nETag: \"a\x01z\"\r\nContent-Length: 2\r\n\r\nok",
		[RAW_ECHO_OK] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
	};

	raw_answered = 1;
	if (raw_script == RAW_SILENT)
		return;
	raw_write(heads[raw_script]);
	switch (raw_script) {
	case RAW_DRIBBLE:
		raw_timer = evtimer_new(base, raw_tick, NULL);
		raw_tick(-1, 0, NULL);
		break;
	case RAW_ENDLESS_BODY:
	case RAW_ENDLESS_HEADER:
	case RAW_ENDLESS_CHUNKLINE:
		raw_refill();
		break;
	case RAW_CLOSE_EARLY:
	case RAW_GARBAGE:
		/* closed once written (raw_write_cb) */
		break;
	default:
		break;
	}
}

static void raw_read_cb(struct bufferevent *bev, void *arg)
{
	struct evbuffer *in = bufferevent_get_input(bev);
	struct evbuffer_ptr end;
	size_t n;

	if (raw_answered) {
		evbuffer_drain(in, evbuffer_get_length(in));
		return;
	}
	end = evbuffer_search(in, "\r\n\r\n", 4, NULL);
	if (end.pos < 0)
		return;
	n = (size_t)end.pos + 4 < sizeof(raw_request) - 1 ? (size_t)end.pos + 4
							   : sizeof(raw_request) - 1;
	evbuffer_remove(in, raw_request, n);
	raw_request[n] = '\0';
	raw_answer();
}

/* Also called once the connection is set up, before any request: nothing to do then. */
static void raw_write_cb(struct bufferevent *bev, void *arg)
{
	if (!raw_answered)
		return;
	switch (raw_script) {
	case RAW_ENDLESS_BODY:
	case RAW_ENDLESS_HEADER:
	case RAW_ENDLESS_CHUNKLINE:
		raw_refill();
		break;
	case RAW_CLOSE_EARLY:
	case RAW_GARBAGE:
		raw_close();
		break;
	default:
		break;
	}
}

static void raw_event_cb(struct bufferevent *bev, short what, void *arg)
{
	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR))
		raw_close();
}

static void raw_accept_cb(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
			  int salen, void *arg)
{
	raw_close();	/* one connection at a time */
	raw_accepts++;
	raw_answered = 0;
	raw_request[0] = '\0';
	raw_bev = bufferevent_socket_new(base, fd, BEV_OPT_CLOSE_ON_FREE);
	bufferevent_setcb(raw_bev, raw_read_cb, raw_write_cb, raw_event_cb, NULL);
	bufferevent_enable(raw_bev, EV_READ | EV_WRITE);
}

static unsigned bound_port(evutil_socket_t fd)
{
	struct sockaddr_in sin;
	socklen_t len = sizeof(sin);

	if (getsockname(fd, (struct sockaddr *)&sin, &len) < 0)
		gw_fatal("getsockname failed");
	return ntohs(sin.sin_port);
}

/* ---- URL checks */

static const struct url_case {
	const char *url;
	const char *want_err;	/* NULL: accepted */
} url_cases[] = {
	{ "http://192.0.2.7:5060/xcap-root", NULL },
	{ "http://192.0.2.7:5060", NULL },
	{ "http://192.0.2.7/xcap-root/", NULL },
	{ "HTTP://127.0.0.1:80/x", NULL },
	{ "http://[2001:db8::7]:8080/xcap-root", NULL },
	{ "http://[::1]/x", NULL },
	{ "http://192.0.2.7:5060/xcap-root/pres-rules/users/sip:bob@sip.example/index", NULL },
	{ "http://192.0.2.7:5060/a/sip:a%20b%2Fc/~x-y_z.(1)!$&'*+,;=", NULL },
	{ "https://192.0.2.7/xcap-root", "TLS comes with issue 14" },
	{ "ftp://192.0.2.7/x", "not an http:// URL" },
	{ "192.0.2.7:5060/x", "not an http:// URL" },
	{ "", "empty URL" },
	{ "http://xcap.example.com/xcap-root", "does no DNS" },
	{ "http://localhost:5060/x", "does no DNS" },
	{ "http://192.0.2/x", "does no DNS" },
	{ "http://192.0.2.007/x", "does no DNS" },
	{ "http://bob@192.0.2.7/x", "user information" },
	{ "http://bob:pw@192.0.2.7/x", "user information" },
	{ "http://192.0.2.7/x?a=b", "query" },
	{ "http://192.0.2.7/x#frag", "fragment" },
	{ "http://192.0.2.7:/x", "empty port" },
	{ "http://192.0.2.7:0/x", "port 0" },
	{ "http://192.0.2.7:65536/x", "over 65535" },
	{ "http://192.0.2.7:50a/x", "not a number" },
	{ "http:///x", "no host" },
	{ "http://[2001:db8::7/x", "no ']'" },
	{ "http://[fe80::1%25eth0]/x", "not an IPv6 address" },
	{ "http://[192.0.2.7]/x", "not an IPv6 address" },
	{ "http://2001:db8::7/x", "in brackets" },
	{ "http://192.0.2.7/a b", "byte 0x20 at offset 18" },
	{ "http://192.0.2.7/a\r\nX: y", "byte 0x0d" },
	{ "http://192.0.2.7/caf\xc3\xa9", "byte 0xc3" },
	{ "http://192.0.2.7/a%2", "two hex digits" },
	{ "http://192.0.2.7/a%zz", "two hex digits" },
	{ "http://192.0.2.7/a\"b", "byte 0x22" },
};

static void test_url_check(void)
{
	for (size_t i = 0; i < NELEM(url_cases); i++) {
		const struct url_case *c = &url_cases[i];
		char err[256] = "";
		int r = xcap_url_check(c->url, err, sizeof(err));

		if (!c->want_err) {
			CHECK(r == 0, "%s: accepted (%s)", c->url, err);
		} else {
			CHECK(r == -1, "%s: refused", c->url);
			CHECK(strstr(err, c->want_err) != NULL, "%s: \"%s\" says \"%s\"", c->url, err,
			      c->want_err);
		}
	}
	{
		char longurl[XCAP_MAX_URL + 32], err[128] = "";

		memset(longurl, 'a', sizeof(longurl) - 1);
		longurl[sizeof(longurl) - 1] = '\0';
		memcpy(longurl, "http://127.0.0.1/", 17);
		CHECK(xcap_url_check(longurl, err, sizeof(err)) == -1 && strstr(err, "longer"),
		      "a long URL refused (%s)", err);
		CHECK(xcap_url_check(NULL, err, sizeof(err)) == -1, "NULL refused");
		CHECK(xcap_url_check("http://x/", NULL, 0) == -1, "no error buffer");
	}
}

/* ---- document URLs */

static const struct doc_case {
	const char *what, *root, *auid, *xui, *doc;
	const char *want;	/* NULL: refused */
} doc_cases[] = {
	{ "Kamailio pres-rules", "http://192.0.2.7:5060/xcap-root", "pres-rules",
	  "sip:bob@sip.example", "index",
	  "http://192.0.2.7:5060/xcap-root/pres-rules/users/sip:bob@sip.example/index" },
	{ "root with a trailing slash", "http://192.0.2.7:5060/xcap-root/", "pres-rules",
	  "sip:bob@sip.example", "index",
	  "http://192.0.2.7:5060/xcap-root/pres-rules/users/sip:bob@sip.example/index" },
	{ "root without a path", "http://192.0.2.7", "org.openmobilealliance.pres-rules",
	  "sip:bob@sip.example", "pres-rules",
	  "http://192.0.2.7/org.openmobilealliance.pres-rules/users/sip:bob@sip.example/pres-rules" },
	{ "IPv6 root", "http://[2001:db8::7]:8080/x", "pres-rules", "sip:b@s", "index",
	  "http://[2001:db8::7]:8080/x/pres-rules/users/sip:b@s/index" },
	{ "escaping in the XUI", "http://192.0.2.7/r", "pres-rules", "sip:a b/c?d#e%f", "index",
	  "http://192.0.2.7/r/pres-rules/users/sip:a%20b%2Fc%3Fd%23e%25f/index" },
	{ "sub-delims and unreserved stay", "http://192.0.2.7/r", "a", "sip:x;user=phone~!$&'()*+,=-._",
	  "d", "http://192.0.2.7/r/a/users/sip:x;user=phone~!$&'()*+,=-._/d" },
	{ "non-ASCII, controls, brackets", "http://192.0.2.7/r", "a", "sip:j\xc3\xb6rg\t[1]<>\"@x",
	  "d", "http://192.0.2.7/r/a/users/sip:j%C3%B6rg%09%5B1%5D%3C%3E%22@x/d" },
	{ "tel URI", "http://192.0.2.7/r", "a", "tel:+1-201-555-0123", "d",
	  "http://192.0.2.7/r/a/users/tel:+1-201-555-0123/d" },
	{ "a slash in the document name", "http://192.0.2.7/r", "a", "sip:b@s", "x/y",
	  "http://192.0.2.7/r/a/users/sip:b@s/x%2Fy" },
	{ "a bad root", "http://xcap.example/r", "a", "sip:b@s", "d", NULL },
	{ "an https root", "https://192.0.2.7/r", "a", "sip:b@s", "d", NULL },
	{ "an empty XUI", "http://192.0.2.7/r", "a", "", "d", NULL },
	{ "a dot-dot XUI", "http://192.0.2.7/r", "a", "..", "d", NULL },
	{ "a dot document", "http://192.0.2.7/r", "a", "sip:b@s", ".", NULL },
	{ "no AUID", "http://192.0.2.7/r", NULL, "sip:b@s", "d", NULL },
};

static void test_document_url(void)
{
	for (size_t i = 0; i < NELEM(doc_cases); i++) {
		const struct doc_case *c = &doc_cases[i];
		char *url = xcap_document_url(c->root, c->auid, c->xui, c->doc);
		char err[256] = "";

		CHECK_STR(url, c->want, "%s", c->what);
		if (url)
			CHECK(xcap_url_check(url, err, sizeof(err)) == 0, "%s: the result passes the "
			      "check (%s)", c->what, err);
		free(url);
	}
}

/* ---- fetches */

enum server { SRV_HTTP, SRV_RAW, SRV_CLOSED };

static const struct fetch_case {
	const char *what;
	enum server server;
	enum script script;	/* SRV_RAW */
	const char *path;
	const char *etag;	/* sent as If-None-Match */
	size_t max_body;	/* 0: default */
	unsigned timeout_ms;	/* 0: 2000 */
	int want_status;
	enum xcap_error want_err;
	const char *want_etag;
	const char *want_ct;
	const char *want_body;	/* NULL: none */
	const char *want_error;	/* a part of the error text, or NULL (no error) */
	const char *want_request; /* SRV_RAW: a part of the request the server saw */
} fetch_cases[] = {
	{ "200 with body, ETag and type", SRV_HTTP, 0,
	  "/xcap-root/pres-rules/users/sip:bob@sip.example/index", NULL, 0, 0, 200, XCAP_OK,
	  DOC_ETAG, DOC_CT, DOC, NULL, NULL },
	{ "304 for a matching If-None-Match", SRV_HTTP, 0,
	  "/xcap-root/pres-rules/users/sip:bob@sip.example/index", DOC_ETAG, 0, 0, 304, XCAP_OK,
	  DOC_ETAG, NULL, NULL, NULL, NULL },
	{ "200 for an old ETag", SRV_HTTP, 0,
	  "/xcap-root/pres-rules/users/sip:bob@sip.example/index", "\"e0\"", 0, 0, 200, XCAP_OK,
	  DOC_ETAG, DOC_CT, DOC, NULL, NULL },
	{ "404", SRV_HTTP, 0, "/xcap-root/pres-rules/users/sip:nobody@x/index", NULL, 0, 0, 404,
	  XCAP_OK, NULL, "text/html", NULL, NULL, NULL },
	{ "403: no body reported", SRV_HTTP, 0, "/forbidden", NULL, 0, 0, 403, XCAP_OK, NULL,
	  "text/html; charset=ISO-8859-1", NULL, NULL, NULL },
	{ "302 not followed", SRV_HTTP, 0, "/redirect", NULL, 0, 0, 302, XCAP_OK, NULL,
	  "text/html; charset=ISO-8859-1", NULL, NULL, NULL },
	{ "a body of exactly the limit", SRV_HTTP, 0, "/fits", NULL, 1000, 0, 200, XCAP_OK, NULL,
	  "text/html; charset=ISO-8859-1", NULL, NULL, NULL },
	{ "a body over the limit (Content-Length)", SRV_HTTP, 0, "/big", NULL, 1000, 0, 0,
	  XCAP_ERR_TOO_BIG, NULL, NULL, NULL, "over 1000 bytes", NULL },
	{ "a chunked body over the limit", SRV_HTTP, 0, "/bigchunked", NULL, 1000, 0, 0,
	  XCAP_ERR_TOO_BIG, NULL, NULL, NULL, "over 1000 bytes", NULL },
	{ "a body without length or end", SRV_RAW, RAW_ENDLESS_BODY, "/x", NULL, 1000, 0, 0,
	  XCAP_ERR_TOO_BIG, NULL, NULL, NULL, "over 1000 bytes", NULL },
	{ "Content-Length of 10^12", SRV_RAW, RAW_HUGE_LENGTH, "/x", NULL, 1000, 0, 0,
	  XCAP_ERR_TOO_BIG, NULL, NULL, NULL, "over 1000 bytes", NULL },
	{ "a header line without end", SRV_RAW, RAW_ENDLESS_HEADER, "/x", NULL, 0, 0, 0,
	  XCAP_ERR_PROTOCOL, NULL, NULL, NULL, "malformed response header", NULL },
	{ "a chunk-size line without end", SRV_RAW, RAW_ENDLESS_CHUNKLINE, "/x", NULL, 1000, 0,
	  0, XCAP_ERR_TOO_BIG, NULL, NULL, NULL, "without a usable response", NULL },
	{ "a server that never answers", SRV_RAW, RAW_SILENT, "/x", NULL, 0, 200, 0,
	  XCAP_ERR_TIMEOUT, NULL, NULL, NULL, "no complete response from 127.0.0.1:", NULL },
	{ "a server that dribbles (never idle, never done)", SRV_RAW, RAW_DRIBBLE, "/x", NULL, 0,
	  200, 0, XCAP_ERR_TIMEOUT, NULL, NULL, NULL, "within 200 ms", NULL },
	{ "closed in the middle of the body", SRV_RAW, RAW_CLOSE_EARLY, "/x", NULL, 0, 0, 0,
	  XCAP_ERR_PROTOCOL, NULL, NULL, NULL, "closed the connection", NULL },
	{ "status 999", SRV_RAW, RAW_BAD_STATUS, "/x", NULL, 0, 0, 0, XCAP_ERR_PROTOCOL, NULL, NULL,
	  NULL, "sent status 999", NULL },
	{ "not HTTP at all", SRV_RAW, RAW_GARBAGE, "/x", NULL, 0, 0, 0, XCAP_ERR_PROTOCOL, NULL,
	  NULL, NULL, "malformed", NULL },
	{ "a Content-Encoding not asked for", SRV_RAW, RAW_GZIP, "/x", NULL, 0, 0, 0,
	  XCAP_ERR_PROTOCOL, NULL, NULL, NULL, "Content-Encoding \"gzip\"", NULL },
	{ "a control character in the ETag: not reported", SRV_RAW, RAW_BAD_ETAG, "/x", NULL, 0,
	  0, 200, XCAP_OK, NULL, NULL, "ok", NULL, NULL },
	{ "the request we send", SRV_RAW, RAW_ECHO_OK, "/xcap-root/a/users/sip:b@s/index",
	  "\"v7\"", 0, 0, 200, XCAP_OK, NULL, NULL, "ok", NULL,
	  "GET /xcap-root/a/users/sip:b@s/index HTTP/1.1\r\n" },
	{ "the request's headers", SRV_RAW, RAW_ECHO_OK, "/x", "\"v7\"", 0, 0, 200, XCAP_OK, NULL,
	  NULL, "ok", NULL, "If-None-Match: \"v7\"\r\n" },
	{ "the request's Host", SRV_RAW, RAW_ECHO_OK, "/x", NULL, 0, 0, 200, XCAP_OK, NULL, NULL,
	  "ok", NULL, "Host: 127.0.0.1:" },
	{ "the request asks to close", SRV_RAW, RAW_ECHO_OK, "/x", NULL, 0, 0, 200, XCAP_OK, NULL,
	  NULL, "ok", NULL, "Connection: close\r\n" },
	{ "connection refused", SRV_CLOSED, 0, "/x", NULL, 0, 0, 0, XCAP_ERR_CONNECT, NULL, NULL,
	  NULL, "could not connect to 127.0.0.1:", NULL },
	{ "a bad ETag to send", SRV_HTTP, 0, "/x", "\"a\r\nX-Evil: 1\"", 0, 0, 0, XCAP_ERR_ARG,
	  NULL, NULL, NULL, "bad ETag", NULL },
};

static unsigned closed_port;

static void test_fetch(void)
{
	for (size_t i = 0; i < NELEM(fetch_cases); i++) {
		const struct fetch_case *c = &fetch_cases[i];
		struct xcap_limits lim = { c->max_body, c->timeout_ms ? c->timeout_ms : 2000, 0 };
		struct xcap *x = xcap_new(base, &lim);
		struct got g = { 0 };
		unsigned port = c->server == SRV_HTTP ? http_port
			      : c->server == SRV_RAW ? raw_port : closed_port;
		char *url = gw_xasprintf("http://127.0.0.1:%u%s", port, c->path);

		raw_script = c->script;
		raw_request[0] = '\0';
		xcap_get(x, url, c->etag, got_cb, &g);
		CHECK_INT(g.called, 0, "%s: no callback from inside xcap_get", c->what);
		run_until(&g.called, lim.timeout_ms + 3000);
		CHECK_INT(g.called, 1, "%s: one callback", c->what);
		CHECK_INT(g.status, c->want_status, "%s: status (%s)", c->what,
			  g.error ? g.error : "no error");
		CHECK_INT(g.err, c->want_err, "%s: error kind %s", c->what, xcap_error_name(g.err));
		CHECK_STR(g.etag, c->want_etag, "%s: ETag", c->what);
		if (c->want_ct || c->server != SRV_HTTP)
			CHECK_STR(g.content_type, c->want_ct, "%s: Content-Type", c->what);
		if (c->want_body) {
			CHECK_STR(g.body, c->want_body, "%s: body", c->what);
			CHECK_INT(g.len, strlen(c->want_body), "%s: length", c->what);
		} else if (c->want_status == 200) {
			CHECK(g.body && g.len == c->max_body, "%s: a body of %zu bytes", c->what,
			      c->max_body);
		} else {
			CHECK(!g.body && g.len == 0, "%s: no body", c->what);
		}
		if (c->want_error)
			CHECK(g.error && strstr(g.error, c->want_error), "%s: \"%s\" says \"%s\"",
			      c->what, g.error ? g.error : "(none)", c->want_error);
		else
			CHECK(!g.error, "%s: no error (%s)", c->what, g.error);
		if (c->want_request)
			CHECK(strstr(raw_request, c->want_request) != NULL, "%s: the request has "
			      "\"%s\":\n%s", c->what, c->want_request, raw_request);
		got_clear(&g);
		free(url);
		xcap_free(x);
		raw_close();
	}
}

/* ---- writes */

enum op { OP_GET, OP_PUT, OP_DELETE };

#define BIG_CT "application/auth-policy+xml; charset=\"utf-8\" ;q=x"

/* In order: the rows on SRV_HTTP build on each other's document (ETags "v1", "v2"...). */
static const struct write_case {
	const char *what;
	enum op op;
	enum server server;
	enum script script;	/* SRV_RAW */
	const char *path;
	const char *content_type;	/* PUT */
	const char *body;	/* PUT */
	const char *if_match;	/* PUT, DELETE */
	size_t max_body;	/* 0: default */
	unsigned timeout_ms;	/* 0: 2000 */
	int want_status;
	enum xcap_error want_err;
	const char *want_etag;
	const char *want_ct;
	const char *want_body;	/* NULL: none */
	const char *want_error;	/* a part of the error text, or NULL (no error) */
	const char *want_method; /* SRV_HTTP: what the server got (and the request's headers and
				  * body as sent); NULL: no request reached it */
	const char *want_request; /* SRV_RAW: a part of the request's head; NULL: no connection */
} write_cases[] = {
	{ "PUT creates: 201", OP_PUT, SRV_HTTP, 0, STORE_PATH, DOC_CT, DOC, NULL, 0, 0, 201,
	  XCAP_OK, "\"v1\"", NULL, NULL, NULL, "PUT", NULL },
	{ "PUT replaces with If-Match: 200", OP_PUT, SRV_HTTP, 0, STORE_PATH, BIG_CT, DOC2,
	  "\"v1\"", 0, 0, 200, XCAP_OK, "\"v2\"", NULL, "", NULL, "PUT", NULL },
	{ "PUT with an old If-Match: 412", OP_PUT, SRV_HTTP, 0, STORE_PATH, DOC_CT, DOC, "\"v1\"",
	  0, 0, 412, XCAP_OK, NULL, NULL, NULL, NULL, "PUT", NULL },
	{ "GET: the 412 changed nothing", OP_GET, SRV_HTTP, 0, STORE_PATH, NULL, NULL, NULL, 0, 0,
	  200, XCAP_OK, "\"v2\"", DOC_CT, DOC2, NULL, "GET", NULL },
	{ "PUT with If-Match *: 200", OP_PUT, SRV_HTTP, 0, STORE_PATH, DOC_CT, DOC, "*", 0, 0, 200,
	  XCAP_OK, "\"v3\"", NULL, "", NULL, "PUT", NULL },
	{ "PUT refused by a constraint: 409 and its body", OP_PUT, SRV_HTTP, 0, CONFLICT_PATH,
	  DOC_CT, "<cr:ruleset", NULL, 0, 0, 409, XCAP_OK, NULL, ERR_CT, ERR_DOC, NULL, "PUT",
	  NULL },
	{ "a 409 body over the limit", OP_PUT, SRV_HTTP, 0, CONFLICT_PATH, DOC_CT, "<a/>", NULL,
	  sizeof(ERR_DOC) - 2, 0, 0, XCAP_ERR_TOO_BIG, NULL, NULL, NULL, "over", "PUT", NULL },
	{ "DELETE with an old If-Match: 412", OP_DELETE, SRV_HTTP, 0, STORE_PATH, NULL, NULL,
	  "\"v2\"", 0, 0, 412, XCAP_OK, NULL, NULL, NULL, NULL, "DELETE", NULL },
	{ "DELETE: 200", OP_DELETE, SRV_HTTP, 0, STORE_PATH, NULL, NULL, "\"v3\"", 0, 0, 200,
	  XCAP_OK, NULL, NULL, "", NULL, "DELETE", NULL },
	{ "DELETE again: 404", OP_DELETE, SRV_HTTP, 0, STORE_PATH, NULL, NULL, NULL, 0, 0, 404,
	  XCAP_OK, NULL, "text/html", NULL, NULL, "DELETE", NULL },
	{ "GET after DELETE: 404", OP_GET, SRV_HTTP, 0, STORE_PATH, NULL, NULL, NULL, 0, 0, 404,
	  XCAP_OK, NULL, "text/html", NULL, NULL, "GET", NULL },
	{ "PUT with If-Match and no document: 412", OP_PUT, SRV_HTTP, 0, STORE_PATH, DOC_CT, DOC,
	  "*", 0, 0, 412, XCAP_OK, NULL, NULL, NULL, NULL, "PUT", NULL },
	{ "PUT an empty body: 201", OP_PUT, SRV_HTTP, 0, STORE_PATH, "text/plain", "", NULL, 0, 0,
	  201, XCAP_OK, "\"v5\"", NULL, NULL, NULL, "PUT", NULL },
	{ "PUT a body of exactly the limit", OP_PUT, SRV_HTTP, 0, STORE_PATH, DOC_CT, DOC, NULL,
	  sizeof(DOC) - 1, 0, 200, XCAP_OK, "\"v6\"", NULL, "", NULL, "PUT", NULL },
	{ "GET reads back what PUT wrote", OP_GET, SRV_HTTP, 0, STORE_PATH, NULL, NULL, NULL, 0,
	  0, 200, XCAP_OK, "\"v6\"", DOC_CT, DOC, NULL, "GET", NULL },

	{ "a PUT body over the limit: not sent", OP_PUT, SRV_RAW, RAW_ECHO_OK, "/x", DOC_CT, DOC,
	  NULL, sizeof(DOC) - 2, 0, 0, XCAP_ERR_ARG, NULL, NULL, NULL, "over the limit of",
	  NULL, NULL },
	{ "CRLF in the Content-Type: not sent", OP_PUT, SRV_RAW, RAW_ECHO_OK, "/x",
	  "text/plain\r\nX-Evil: 1", "a", NULL, 0, 0, 0, XCAP_ERR_ARG, NULL, NULL, NULL,
	  "bad Content-Type", NULL, NULL },
	{ "CRLF in a Content-Type parameter", OP_PUT, SRV_RAW, RAW_ECHO_OK, "/x",
	  "text/plain; a=\"b\r\nX-Evil: 1\"", "a", NULL, 0, 0, 0, XCAP_ERR_ARG, NULL, NULL, NULL,
	  "bad Content-Type", NULL, NULL },
	{ "no Content-Type", OP_PUT, SRV_RAW, RAW_ECHO_OK, "/x", NULL, "a", NULL, 0, 0, 0,
	  XCAP_ERR_ARG, NULL, NULL, NULL, "bad Content-Type", NULL, NULL },
	{ "a Content-Type without subtype", OP_PUT, SRV_RAW, RAW_ECHO_OK, "/x", "application",
	  "a", NULL, 0, 0, 0, XCAP_ERR_ARG, NULL, NULL, NULL, "bad Content-Type", NULL, NULL },
	{ "a space in the Content-Type", OP_PUT, SRV_RAW, RAW_ECHO_OK, "/x", "text /plain", "a",
	  NULL, 0, 0, 0, XCAP_ERR_ARG, NULL, NULL, NULL, "bad Content-Type", NULL, NULL },
	{ "a parameter without value", OP_PUT, SRV_RAW, RAW_ECHO_OK, "/x", "text/plain; charset",
	  "a", NULL, 0, 0, 0, XCAP_ERR_ARG, NULL, NULL, NULL, "bad Content-Type", NULL, NULL },
	{ "an unterminated quoted parameter", OP_PUT, SRV_RAW, RAW_ECHO_OK, "/x",
	  "text/plain; a=\"b\\\"", "a", NULL, 0, 0, 0, XCAP_ERR_ARG, NULL, NULL, NULL,
	  "bad Content-Type", NULL, NULL },
	{ "a non-ASCII Content-Type", OP_PUT, SRV_RAW, RAW_ECHO_OK, "/x", "text/pl\xc3\xa4in", "a",
	  NULL, 0, 0, 0, XCAP_ERR_ARG, NULL, NULL, NULL, "bad Content-Type", NULL, NULL },
	{ "CRLF in If-Match (PUT)", OP_PUT, SRV_RAW, RAW_ECHO_OK, "/x", DOC_CT, "a",
	  "\"a\r\nX-Evil: 1\"", 0, 0, 0, XCAP_ERR_ARG, NULL, NULL, NULL, "bad ETag", NULL, NULL },
	{ "CRLF in If-Match (DELETE)", OP_DELETE, SRV_RAW, RAW_ECHO_OK, "/x", NULL, NULL,
	  "\"a\r\nX-Evil: 1\"", 0, 0, 0, XCAP_ERR_ARG, NULL, NULL, NULL, "bad ETag", NULL, NULL },
	{ "a PUT to a host name", OP_PUT, SRV_RAW, RAW_ECHO_OK, NULL, DOC_CT, "a", NULL, 0, 0, 0,
	  XCAP_ERR_ARG, NULL, NULL, NULL, "bad URL", NULL, NULL },

	{ "the PUT request line", OP_PUT, SRV_RAW, RAW_ECHO_OK, "/xcap-root/a/users/sip:b@s/index",
	  DOC_CT, DOC, NULL, 0, 0, 200, XCAP_OK, NULL, NULL, "ok", NULL, NULL,
	  "PUT /xcap-root/a/users/sip:b@s/index HTTP/1.1\r\n" },
	{ "the PUT's Content-Type", OP_PUT, SRV_RAW, RAW_ECHO_OK, "/x", BIG_CT, DOC, NULL, 0, 0,
	  200, XCAP_OK, NULL, NULL, "ok", NULL, NULL, "\r\nContent-Type: " BIG_CT "\r\n" },
	{ "the PUT's Content-Length", OP_PUT, SRV_RAW, RAW_ECHO_OK, "/x", DOC_CT, "12345", NULL, 0,
	  0, 200, XCAP_OK, NULL, NULL, "ok", NULL, NULL, "\r\nContent-Length: 5\r\n" },
	{ "the PUT's If-Match", OP_PUT, SRV_RAW, RAW_ECHO_OK, "/x", DOC_CT, DOC, "\"v7\"", 0, 0,
	  200, XCAP_OK, NULL, NULL, "ok", NULL, NULL, "\r\nIf-Match: \"v7\"\r\n" },
	{ "the DELETE request line", OP_DELETE, SRV_RAW, RAW_ECHO_OK, "/x", NULL, NULL, NULL, 0, 0,
	  200, XCAP_OK, NULL, NULL, "ok", NULL, NULL, "DELETE /x HTTP/1.1\r\n" },
	{ "the DELETE's If-Match", OP_DELETE, SRV_RAW, RAW_ECHO_OK, "/x", NULL, NULL, "*", 0, 0,
	  200, XCAP_OK, NULL, NULL, "ok", NULL, NULL, "\r\nIf-Match: *\r\n" },
	{ "a PUT to a server that never answers", OP_PUT, SRV_RAW, RAW_SILENT, "/x", DOC_CT, DOC,
	  NULL, 0, 200, 0, XCAP_ERR_TIMEOUT, NULL, NULL, NULL, "within 200 ms", NULL,
	  "PUT /x HTTP/1.1\r\n" },
	{ "a PUT, connection refused", OP_PUT, SRV_CLOSED, 0, "/x", DOC_CT, DOC, NULL, 0, 0, 0,
	  XCAP_ERR_CONNECT, NULL, NULL, NULL, "could not connect", NULL, NULL },
};

static void test_write(void)
{
	free(store.doc);
	memset(&store, 0, sizeof(store));
	for (size_t i = 0; i < NELEM(write_cases); i++) {
		const struct write_case *c = &write_cases[i];
		struct xcap_limits lim = { c->max_body, c->timeout_ms ? c->timeout_ms : 2000, 0 };
		struct xcap *x = xcap_new(base, &lim);
		struct got g = { 0 };
		unsigned port = c->server == SRV_HTTP ? http_port
			      : c->server == SRV_RAW ? raw_port : closed_port;
		char *url = c->path ? gw_xasprintf("http://127.0.0.1:%u%s", port, c->path)
				    : gw_xstrdup("http://xcap.example/x");
		size_t len = c->body ? strlen(c->body) : 0;

		raw_script = c->script;
		raw_request[0] = '\0';
		raw_accepts = 0;
		seen_clear();
		if (c->op == OP_GET)
			xcap_get(x, url, NULL, got_cb, &g);
		else if (c->op == OP_PUT)
			xcap_put(x, url, c->content_type, c->body, len, c->if_match, got_cb, &g);
		else
			xcap_delete(x, url, c->if_match, got_cb, &g);
		CHECK_INT(g.called, 0, "%s: no callback from inside the call", c->what);
		run_until(&g.called, lim.timeout_ms + 3000);
		CHECK_INT(g.called, 1, "%s: one callback", c->what);
		CHECK_INT(g.status, c->want_status, "%s: status (%s)", c->what,
			  g.error ? g.error : "no error");
		CHECK_INT(g.err, c->want_err, "%s: error kind %s", c->what, xcap_error_name(g.err));
		CHECK_STR(g.etag, c->want_etag, "%s: ETag", c->what);
		if (c->want_ct || c->server != SRV_HTTP)	/* evhttp adds its own */
			CHECK_STR(g.content_type, c->want_ct, "%s: Content-Type", c->what);
		CHECK_STR(g.body, c->want_body, "%s: body", c->what);
		CHECK_INT(g.len, c->want_body ? strlen(c->want_body) : 0, "%s: length", c->what);
		if (c->want_error)
			CHECK(g.error && strstr(g.error, c->want_error), "%s: \"%s\" says \"%s\"",
			      c->what, g.error ? g.error : "(none)", c->want_error);
		else
			CHECK(!g.error, "%s: no error (%s)", c->what, g.error);
		if (c->server == SRV_HTTP) {
			CHECK_INT(seen.requests, c->want_method ? 1 : 0, "%s: requests the server got",
				  c->what);
			CHECK_STR(seen.method, c->want_method, "%s: method", c->what);
		}
		if (c->server == SRV_HTTP && c->want_method) {
			char n[32];

			snprintf(n, sizeof(n), "%zu", len);
			CHECK_STR(seen.content_type, c->op == OP_PUT ? c->content_type : NULL,
				  "%s: the Content-Type sent", c->what);
			CHECK_STR(seen.content_length, c->op == OP_PUT ? n : NULL,
				  "%s: the Content-Length sent", c->what);
			CHECK_STR(seen.if_match, c->if_match, "%s: the If-Match sent", c->what);
			CHECK_STR(seen.body, c->op == OP_PUT ? c->body : "", "%s: the body sent",
				  c->what);
		}
		if (c->server == SRV_RAW) {
			CHECK_INT(raw_accepts, c->want_request ? 1 : 0, "%s: connections to the "
				  "server", c->what);
			if (c->want_request)
				CHECK(strstr(raw_request, c->want_request) != NULL, "%s: the request "
				      "has \"%s\":\n%s", c->what, c->want_request, raw_request);
		}
		got_clear(&g);
		free(url);
		xcap_free(x);
		raw_close();
	}
	seen_clear();
	free(store.doc);
	memset(&store, 0, sizeof(store));
}

/* A PUT cancelled while the server holds it never calls back; xcap_free with writes at every
 * stage (waiting, connecting, refused): no callback, no leak (LeakSanitizer). */
static void test_write_cancel_free(void)
{
	struct xcap_limits lim = { 0, 300, 0 };
	struct xcap *x = xcap_new(base, &lim);
	struct got g[5] = { { 0 } };
	char *slow = gw_xasprintf("http://127.0.0.1:%u/x", raw_port);
	char *doc = gw_xasprintf("http://127.0.0.1:%u%s", http_port, STORE_PATH);
	char *refused = gw_xasprintf("http://127.0.0.1:%u/x", closed_port);
	char *big = gw_xmalloc(60000);
	struct xcap_fetch *f;

	memset(big, 'x', 60000);
	raw_script = RAW_SILENT;
	raw_request[0] = '\0';
	f = xcap_put(x, slow, DOC_CT, big, 60000, "*", got_cb, &g[0]);
	run_for(50);		/* connected, request sent, waiting */
	CHECK(strstr(raw_request, "PUT /x HTTP/1.1\r\n") != NULL, "cancel: the PUT was in flight "
	      "(%s)", raw_request);
	xcap_cancel(f);
	run_for(400);		/* past the cancelled fetch's deadline */
	CHECK_INT(g[0].called, 0, "cancelled PUT: no callback");

	raw_close();
	xcap_put(x, slow, DOC_CT, big, 60000, NULL, got_cb, &g[1]);
	run_for(30);						/* waiting */
	xcap_put(x, doc, DOC_CT, big, 60000, NULL, got_cb, &g[2]);	/* connecting */
	xcap_delete(x, refused, NULL, got_cb, &g[3]);			/* connecting */
	xcap_put(x, slow, "bad", "a", 1, NULL, got_cb, &g[4]);		/* refused, not delivered */
	free(big);		/* the fetches hold copies */
	xcap_free(x);
	run_for(100);
	for (int i = 1; i < 5; i++)
		CHECK_INT(g[i].called, 0, "freed write %d: no callback", i);
	free(slow);
	free(doc);
	free(refused);
	free(store.doc);
	memset(&store, 0, sizeof(store));
	raw_close();
}

/* A fetch refused at once (bad URL) is delivered from the loop, and can be cancelled. */
static void test_refused_later(void)
{
	struct xcap *x = xcap_new(base, NULL);
	struct got g1 = { 0 }, g2 = { 0 };
	struct xcap_fetch *f;

	xcap_get(x, "http://xcap.example/x", NULL, got_cb, &g1);
	f = xcap_get(x, "http://xcap.example/y", NULL, got_cb, &g2);
	CHECK(f != NULL, "refused fetches still have a handle");
	CHECK_INT(g1.called, 0, "bad URL: not called from inside xcap_get");
	xcap_cancel(f);
	run_for(50);
	CHECK_INT(g1.called, 1, "bad URL: called from the loop");
	CHECK_INT(g1.err, XCAP_ERR_ARG, "bad URL: XCAP_ERR_ARG");
	CHECK(g1.error && strstr(g1.error, "bad URL: ") && strstr(g1.error, "DNS"),
	      "bad URL: says why (%s)", g1.error);
	CHECK_INT(g2.called, 0, "cancelled refusal: no callback");
	xcap_cancel(NULL);
	got_clear(&g1);
	xcap_free(x);
}

/* Cancelled before completion: never called; the others carry on. */
static void test_cancel(void)
{
	struct xcap_limits lim = { 0, 300, 0 };
	struct xcap *x = xcap_new(base, &lim);
	struct got g1 = { 0 }, g2 = { 0 };
	char *slow = gw_xasprintf("http://127.0.0.1:%u/x", raw_port);
	char *doc = gw_xasprintf("http://127.0.0.1:%u/fits", http_port);
	struct xcap_fetch *f;

	raw_script = RAW_SILENT;
	f = xcap_get(x, slow, NULL, got_cb, &g1);
	run_for(50);		/* connected, request sent, waiting */
	xcap_cancel(f);
	xcap_get(x, doc, NULL, got_cb, &g2);
	run_for(500);		/* past the cancelled fetch's deadline */
	CHECK_INT(g1.called, 0, "cancelled: no callback");
	CHECK_INT(g2.called, 1, "the other fetch: one callback");
	CHECK_INT(g2.status, 200, "the other fetch: 200");
	got_clear(&g2);
	free(slow);
	free(doc);
	xcap_free(x);
	raw_close();
}

/* xcap_free with fetches at every stage: no callback, no leak (LeakSanitizer). */
static void test_free_in_flight(void)
{
	struct xcap *x = xcap_new(base, NULL);
	struct got g[4] = { { 0 } };
	char *slow = gw_xasprintf("http://127.0.0.1:%u/x", raw_port);
	char *doc = gw_xasprintf("http://127.0.0.1:%u/fits", http_port);
	char *refused = gw_xasprintf("http://127.0.0.1:%u/x", closed_port);

	raw_script = RAW_SILENT;
	xcap_get(x, slow, NULL, got_cb, &g[0]);
	run_for(30);					/* waiting for the response */
	xcap_get(x, doc, NULL, got_cb, &g[1]);		/* connecting */
	xcap_get(x, refused, NULL, got_cb, &g[2]);	/* connecting */
	xcap_get(x, "http://h/", NULL, got_cb, &g[3]);	/* refused, not delivered yet */
	xcap_free(x);
	run_for(100);
	for (int i = 0; i < 4; i++)
		CHECK_INT(g[i].called, 0, "freed fetch %d: no callback", i);
	free(slow);
	free(doc);
	free(refused);
	raw_close();
}

/* A callback may free the fetcher: the other fetches then never call back. */
static void test_free_in_callback(void)
{
	struct xcap *x = xcap_new(base, NULL);
	struct got g1 = { 0 }, g2 = { 0 };
	char *slow = gw_xasprintf("http://127.0.0.1:%u/x", raw_port);

	raw_script = RAW_SILENT;
	g1.free_x = x;
	xcap_get(x, slow, NULL, got_cb, &g2);
	xcap_get(x, "http://h/", NULL, got_cb, &g1);
	run_for(100);
	CHECK_INT(g1.called, 1, "the freeing callback ran");
	CHECK_INT(g2.called, 0, "the slow fetch: no callback after xcap_free");
	got_clear(&g1);
	free(slow);
	raw_close();
}

/* At max_fetches, more are refused; a finished fetch frees its slot. */
static void test_busy(void)
{
	struct xcap_limits lim = { 0, 200, 2 };
	struct xcap *x = xcap_new(base, &lim);
	struct got g[4] = { { 0 } };
	char *doc = gw_xasprintf("http://127.0.0.1:%u/fits", http_port);
	char *refused = gw_xasprintf("http://127.0.0.1:%u/x", closed_port);

	xcap_get(x, refused, NULL, got_cb, &g[0]);
	xcap_get(x, doc, NULL, got_cb, &g[1]);
	xcap_get(x, doc, NULL, got_cb, &g[2]);
	run_until(&g[1].called, 1000);
	run_until(&g[0].called, 1000);
	CHECK_INT(g[0].err, XCAP_ERR_CONNECT, "first: refused connection");
	CHECK_INT(g[1].status, 200, "second: 200");
	CHECK_INT(g[2].err, XCAP_ERR_BUSY, "third: busy");
	CHECK(g[2].error && strstr(g[2].error, "2 XCAP fetches"), "busy says why (%s)",
	      g[2].error);
	xcap_get(x, doc, NULL, got_cb, &g[3]);
	run_until(&g[3].called, 1000);
	CHECK_INT(g[3].status, 200, "a slot is free again");
	for (int i = 0; i < 4; i++)
		got_clear(&g[i]);
	free(doc);
	free(refused);
	xcap_free(x);
}

/* IPv6: a refused connection to [::1] is still a clean XCAP_ERR_CONNECT. */
static void test_ipv6(void)
{
	struct xcap *x = xcap_new(base, NULL);
	struct got g = { 0 };
	char *url = gw_xasprintf("http://[::1]:%u/x", closed_port);

	xcap_get(x, url, NULL, got_cb, &g);
	run_until(&g.called, 2000);
	CHECK_INT(g.called, 1, "IPv6: one callback");
	CHECK_INT(g.err, XCAP_ERR_CONNECT, "IPv6: connect error (%s)", g.error);
	CHECK(g.error && strstr(g.error, "[::1]:"), "IPv6: address in brackets (%s)", g.error);
	got_clear(&g);
	free(url);
	xcap_free(x);
}

static void quiet_libevent(int severity, const char *msg)
{
	(void)severity;
	(void)msg;
}

int main(void)
{
	struct evhttp *http;
	struct evhttp_bound_socket *bound;
	struct evconnlistener *raw;
	struct sockaddr_in sin;
	evutil_socket_t closed;

	event_set_log_callback(quiet_libevent);
	signal(SIGPIPE, SIG_IGN);	/* as the gateway does: a peer may close while we write */
	test_url_check();
	test_document_url();

	base = event_base_new();
	http = evhttp_new(base);
	evhttp_set_gencb(http, http_cb, NULL);
	bound = evhttp_bind_socket_with_handle(http, "127.0.0.1", 0);
	if (!bound)
		gw_fatal("cannot bind the HTTP server");
	http_port = bound_port(evhttp_bound_socket_get_fd(bound));

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	raw = evconnlistener_new_bind(base, raw_accept_cb, NULL, LEV_OPT_CLOSE_ON_FREE, -1,
				      (struct sockaddr *)&sin, sizeof(sin));
	if (!raw)
		gw_fatal("cannot bind the raw server");
	raw_port = bound_port(evconnlistener_get_fd(raw));

	/* bound, never listening: connections to it are refused */
	closed = socket(AF_INET, SOCK_STREAM, 0);
	if (closed < 0 || bind(closed, (struct sockaddr *)&sin, sizeof(sin)) < 0)
		gw_fatal("cannot bind the closed port");
	closed_port = bound_port(closed);

	test_fetch();
	test_write();
	test_write_cancel_free();
	test_refused_later();
	test_cancel();
	test_free_in_flight();
	test_free_in_callback();
	test_busy();
	test_ipv6();

	seen_clear();
	close(closed);
	evconnlistener_free(raw);
	evhttp_free(http);
	event_base_free(base);
	TEST_DONE();
}
