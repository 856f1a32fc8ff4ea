/* xcap.h - fetching and writing XCAP (RFC 4825) documents, e.g. RFC 5025 presence rules, over HTTP
 * on the gateway's event base (libevent's evhttp client), asynchronously and bounded.
 *
 * URLs: the gateway never does DNS, so an XCAP URL names its server by a numeric address:
 *
 *	http://192.0.2.7:5060/xcap-root				an XCAP root (path may be empty)
 *	http://[2001:db8::7]/xcap-root				IPv6 in brackets; port 80 when omitted
 *	http://192.0.2.7:5060/xcap-root/pres-rules/users/sip:bob@sip.example/index
 *
 * Refused: another scheme (https waits for TLS, issue 14), a host name, userinfo ("user@"), an
 * empty or out-of-range port, a query or fragment, an IPv6 zone, and any path byte that is not an
 * RFC 3986 pchar or '/' (percent-encode it) or a malformed %XX.  The path is sent as written.
 *
 * Document URLs (RFC 4825 section 6): <root>/<auid>/users/<xui>/<docname>, each of auid, xui and
 * docname one path segment, percent-encoded as such (RFC 3986 pchar: unreserved, sub-delims, ':'
 * and '@' stay; '/', '?', '#', '%', space, controls and non-ASCII bytes become %XX):
 *
 *	root "http://192.0.2.7:5060/xcap-root/", auid "pres-rules", xui "sip:bob@sip.example",
 *	docname "index"  ->  http://192.0.2.7:5060/xcap-root/pres-rules/users/sip:bob@sip.example/index
 *	xui "sip:a b/c?d#e%f"  ->  .../users/sip:a%20b%2Fc%3Fd%23e%25f/...
 *
 * A fetch is one request (a GET, or a PUT or DELETE that writes) on its own connection ("Connection:
 * close": documents are fetched rarely, and a connection per fetch keeps evhttp's idle-connection
 * handling out of the picture).  Redirects are not followed (a 3xx is reported as such).  A hostile server is bounded: the whole fetch
 * (connect, headers, body) has one deadline, so a server that dribbles still times out; headers
 * are limited to XCAP_MAX_HEADERS bytes and the body to max_body, and a fetch whose unparsed input
 * grows past max_body + XCAP_MAX_HEADERS + 64 KiB (a line or chunk without end) stops reading and
 * fails: a fetch never holds much more than twice max_body.
 *
 * Writes (RFC 4825 section 8): a PUT creates (201) or replaces (200) a whole document, a DELETE
 * removes it (200; 404 when there is none).  Either may be conditional: an If-Match ETag ("*" for
 * any existing document) makes the server refuse with 412 when the document changed meanwhile, and
 * the response's ETag is the document's new one.  A 409 says the document would break a
 * constraint (not well-formed, schema, uniqueness...): its body, a small XCAP error document
 * (application/xcap-error+xml, RFC 4825 section 11), is reported like a 200's.  A PUT's body is at
 * most max_body bytes, sent with Content-Type and Content-Length, without "Expect: 100-continue".
 * Each write is one attempt: a fetch that fails (a timeout...) may or may not have reached the
 * server, so a caller retrying a write makes it conditional.
 *
 * The callback runs from the event loop, never from inside xcap_get(), xcap_put() or
 * xcap_delete() and never from inside a libevent HTTP callback, so it may start fetches, call
 * xcap_cancel() on other fetches, and xcap_free().  Not thread-safe: one xcap, one loop, one
 * thread.
 */
#ifndef GW_XCAP_H
#define GW_XCAP_H

#include <stddef.h>

#define XCAP_MAX_URL 2048		/* bytes of a URL, longer ones are refused */
#define XCAP_MAX_HEADERS 8192		/* bytes of a response's status line and headers */
#define XCAP_MAX_ETAG 256		/* longer or non-printable ETags are not reported */
#define XCAP_MAX_CONTENT_TYPE 256	/* bytes of a PUT's Content-Type */
#define XCAP_DEFAULT_MAX_BODY 65536
#define XCAP_DEFAULT_TIMEOUT_MS 5000
#define XCAP_DEFAULT_MAX_FETCHES 16

struct xcap;
struct xcap_fetch;
struct event_base;

/* A zero field means its default. */
struct xcap_limits {
	size_t max_body;		/* bytes of a 200's or 409's body, and of a PUT's; a larger
					 * one is refused */
	unsigned timeout_ms;		/* whole fetch: connect, request, response */
	unsigned max_fetches;		/* in flight at once; more are refused (XCAP_ERR_BUSY) */
};

/* Why a fetch has no HTTP status (status is 0 exactly when err is not XCAP_OK). */
enum xcap_error {
	XCAP_OK,		/* a response: status is its HTTP status */
	XCAP_ERR_ARG,		/* not sent: a bad URL, ETag or Content-Type, or a PUT body
				 * over max_body */
	XCAP_ERR_BUSY,		/* not sent: max_fetches already in flight */
	XCAP_ERR_CONNECT,	/* no connection (refused, unreachable) */
	XCAP_ERR_TIMEOUT,	/* no complete response within timeout_ms */
	XCAP_ERR_TOO_BIG,	/* a body over max_body, or a line or chunk without end
				 * (evhttp also says so for a malformed chunk) */
	XCAP_ERR_PROTOCOL,	/* malformed (or over XCAP_MAX_HEADERS) headers, a bad status,
				 * an unasked-for Content-Encoding on a body we report, or
				 * closed too early */
};

/* What a fetch got.  Every pointer is borrowed for the duration of the callback only; header values
 * come from the server: treat them as untrusted text. */
struct xcap_result {
	int status;			/* the HTTP status (100..599), or 0 (see err) */
	enum xcap_error err;
	const char *error;		/* why status is 0, else NULL */
	const char *etag;		/* the ETag header as sent (quotes included), or NULL */
	const char *content_type;	/* the Content-Type header, or NULL */
	const char *body;		/* status 200 or 409 only (else NULL): len bytes,
					 * NUL-terminated */
	size_t len;
};

/* Called exactly once per fetch, unless xcap_cancel() or xcap_free() came first.  The fetch handle
 * is invalid once it returns. */
typedef void xcap_done_fn(void *arg, const struct xcap_result *r);

/* A fetcher on base (borrowed: must outlive the fetcher); lim may be NULL (all defaults) and is
 * copied.  Returns a new fetcher (free with xcap_free). */
struct xcap *xcap_new(struct event_base *base, const struct xcap_limits *lim);

/* Cancels every fetch in flight without calling its callback, and frees x.  NULL is allowed. */
void xcap_free(struct xcap *x);

/* Checks url against the grammar above.  Returns 0, or -1 with the reason in err (the caller's
 * buffer of errlen bytes). */
int xcap_url_check(const char *url, char *err, size_t errlen);

/* <xcap_root>/<auid>/users/<xui>/<docname> with auid, xui and docname percent-encoded as path
 * segments (a '/' at the end of xcap_root is dropped).  Returns a new string the caller frees, or
 * NULL when xcap_root fails xcap_url_check() or a segment is empty, "." or "..". */
char *xcap_document_url(const char *xcap_root, const char *auid, const char *xui,
			const char *docname);

/* Starts a GET of url (copied).  etag (copied; NULL for none) is sent as If-None-Match, and a 304
 * then means the document is unchanged.  cb(arg, result) comes later, from the loop, also for a
 * fetch refused at once (XCAP_ERR_ARG, XCAP_ERR_BUSY).  Returns the fetch, owned by x: valid until
 * its callback returns or xcap_cancel(); never NULL. */
struct xcap_fetch *xcap_get(struct xcap *x, const char *url, const char *etag, xcap_done_fn *cb,
			    void *arg);

/* Starts a PUT of len bytes of body (copied; NULL when len is 0) to url (copied), replacing or
 * creating the document.  content_type (copied) is sent as Content-Type: type/subtype with
 * parameters, e.g. "application/auth-policy+xml" or "application/xcap-el+xml; charset=utf-8".
 * if_match (copied; NULL for none) is sent as If-Match.  Refused (XCAP_ERR_ARG, from the loop,
 * nothing sent): a bad URL, a bad or missing content_type, a bad if_match, len over max_body.
 * Otherwise as xcap_get(). */
struct xcap_fetch *xcap_put(struct xcap *x, const char *url, const char *content_type,
			    const char *body, size_t len, const char *if_match, xcap_done_fn *cb,
			    void *arg);

/* Starts a DELETE of url (copied); if_match (copied; NULL for none) is sent as If-Match.
 * Otherwise as xcap_get(). */
struct xcap_fetch *xcap_delete(struct xcap *x, const char *url, const char *if_match,
			       xcap_done_fn *cb, void *arg);

/* Stops f and frees it; its callback is not called.  NULL is allowed; so is a call from f's own
 * callback, which does nothing (f is freed when the callback returns). */
void xcap_cancel(struct xcap_fetch *f);

/* The name of e ("timeout"...), a static string. */
const char *xcap_error_name(enum xcap_error e);

#endif
