/* xmpp.h - the XMPP side: a bounded stream parser (expat -> libstrophe stanzas) and the XEP-0114
 * component link that runs on the gateway's libevent base. */
#ifndef GW_XMPP_H
#define GW_XMPP_H

#include <stddef.h>
#include <strophe.h>

#include "../conf/conf.h"

#define XMPP_NS_COMPONENT "jabber:component:accept"
#define XMPP_NS_STREAMS "http://etherx.jabber.org/streams"
#define XMPP_NS_STREAM_ERRORS "urn:ietf:params:xml:ns:xmpp-streams"
#define XMPP_NS_STANZA_ERRORS "urn:ietf:params:xml:ns:xmpp-stanzas"

/* ---- parser.c: one XML stream, fed in arbitrary pieces */
struct xmpp_parser;

struct xmpp_parser_cbs {
	/* The stream header: attrs is expat's NULL-terminated name/value array, names with
	 * namespaces rendered as "prefix:local" for xml: and bare local names otherwise. */
	void (*open)(void *arg, const char **attrs);
	/* A complete top-level element.  The stanza is borrowed: clone it to keep it. */
	void (*stanza)(void *arg, xmpp_stanza_t *stanza);
	/* </stream:stream> */
	void (*close)(void *arg);
	/* A stanza over a bound was skipped (parser.c): head is its top-level element with only
	 * its id, type, from, to and xml:lang (borrowed); condition is "policy-violation" (size)
	 * or "not-acceptable" (nesting), text says which bound. */
	void (*skipped)(void *arg, xmpp_stanza_t *head, const char *condition, const char *text);
};

/* max_stanza bounds the bytes of one top-level element, max_depth its nesting: a stanza over
 * either is skipped.  Unfinished markup over 16 * max_stanza ends the stream. */
struct xmpp_parser *xmpp_parser_new(xmpp_ctx_t *ctx, size_t max_stanza, unsigned max_depth,
				    const struct xmpp_parser_cbs *cbs, void *arg);
/* Returns 0, or -1 once the stream is broken; then xmpp_parser_error() names the stream error
 * condition (RFC 6120 4.9.3) and a text.  Callbacks may run during the call; they must not free
 * the parser (schedule that instead). */
int xmpp_parser_feed(struct xmpp_parser *p, const char *buf, size_t len);
const char *xmpp_parser_error(const struct xmpp_parser *p, const char **text);
/* Forgets everything for a new stream on a new connection. */
void xmpp_parser_reset(struct xmpp_parser *p);
void xmpp_parser_free(struct xmpp_parser *p);

/* ---- parser.c: stanza -> XML text, without libstrophe's printf-based xmpp_stanza_to_text() */
struct xmpp_text {
	char *p;        /* malloc'ed, NUL-terminated once anything was written; owned by the holder */
	size_t len, cap;
};

/* Appends the stanza (borrowed) as XML to t, growing t->p as needed (aborts when out of memory).
 * Text escapes &, < and >, and CR as &#13; attribute values (in '...') escape &, <, ', " and TAB,
 * LF, CR as character references, so every parser reads back exactly what the stanza holds. */
void xmpp_text_stanza(struct xmpp_text *t, xmpp_stanza_t *stanza);
/* Appends n bytes as they are. */
void xmpp_text_add(struct xmpp_text *t, const char *s, size_t n);
/* Appends value escaped for an attribute in '...', as xmpp_text_stanza() writes attributes. */
void xmpp_text_attr(struct xmpp_text *t, const char *value);
/* Appends the n bytes at s (need not be terminated) escaped as element text, as
 * xmpp_text_stanza() writes text; a NUL byte is left out. */
void xmpp_text_cdata(struct xmpp_text *t, const char *s, size_t n);
/* Frees t->p and empties t. */
void xmpp_text_free(struct xmpp_text *t);

/* ---- component.c: one XEP-0114 link, reconnecting with back-off; over TLS with
 * <xmpp tls="direct"> (the server's certificate must name <xmpp domain>) */
struct event_base;
struct xmpp_link;

struct xmpp_link_cbs {
	/* A stanza from the server, addressed to the component's domain.  Borrowed. */
	void (*stanza)(void *arg, struct xmpp_link *link, xmpp_stanza_t *stanza);
	/* The link came up (up = 1, handshake accepted) or went down (up = 0). */
	void (*state)(void *arg, struct xmpp_link *link, int up);
	/* On the process's first connection, another connection holds the component (the server
	 * said conflict, or splits the domain's stanzas between us): the owner should stop.  The
	 * link stays as it is until xmpp_link_stop(). */
	void (*conflict)(void *arg, struct xmpp_link *link);
	/* A stanza over the link's bounds was skipped (see struct xmpp_parser_cbs); the stream
	 * goes on.  head is borrowed. */
	void (*skipped)(void *arg, struct xmpp_link *link, xmpp_stanza_t *head,
			const char *condition, const char *text);
};

/* Creates a link for the component domain (copied); conf must outlive it.  Call
 * xmpp_link_start() to connect.  With conf->xmpp_tls direct, the TLS context is made here, its
 * CAs loaded from conf->xmpp_ca, else conf->tls_ca, else the system's store; if they cannot be
 * loaded (conf_load() checked the file, so it changed since) it logs why and returns NULL. */
struct xmpp_link *xmpp_link_new(struct event_base *base, xmpp_ctx_t *ctx,
				const struct conf *conf, const char *domain,
				const struct xmpp_link_cbs *cbs, void *arg);
void xmpp_link_start(struct xmpp_link *link);
/* Serialises and queues a stanza (borrowed).  Returns 0, or -1 if the link is not up. */
int xmpp_link_send(struct xmpp_link *link, xmpp_stanza_t *stanza);
/* Queues a serialised stanza (text, from xmpp_text_stanza() of a stanza without `to`) with
 * to='...' inserted after its element name: one serialisation fanned out to many recipients.
 * `to` is escaped here.  Returns 0, or -1 if the link is not up. */
int xmpp_link_send_to(struct xmpp_link *link, const char *text, size_t len, const char *to);
/* Queues a stanza already serialised into t (one element, well formed, written with the
 * xmpp_text functions; t stays the caller's, its buffer freed here when over 64 KB as the
 * link's own is).  Returns 0, or -1 if the link is not up. */
int xmpp_link_send_text(struct xmpp_link *link, struct xmpp_text *t);
int xmpp_link_is_up(const struct xmpp_link *link);
/* Non-zero while more output is queued than the server is taking (backpressure). */
int xmpp_link_congested(const struct xmpp_link *link);
/* Milliseconds until the next connection attempt while down (0 when up or connecting). */
unsigned xmpp_link_retry_in_ms(const struct xmpp_link *link);
const char *xmpp_link_domain(const struct xmpp_link *link);
/* Ends the stream politely (</stream:stream>) and stops reconnecting; `done` runs once the
 * connection is closed or after a short grace period. */
void xmpp_link_stop(struct xmpp_link *link, void (*done)(void *arg), void *arg);
/* Frees the link.  Must not be called from the link's own callbacks. */
void xmpp_link_free(struct xmpp_link *link);

#endif
