/* parser.c - turns one XMPP stream into libstrophe stanzas with expat, within strict bounds.
 *
 * Bounds: a top-level element (stanza) may use at most max_stanza bytes of the stream, counted
 * from its first byte, and nest at most max_depth deep.  A stanza over either bound is not a
 * reason to end the stream: any user of the XMPP server can send one (Prosody lets 256 KiB
 * through), and one such stanza must not cut every user off.  It is skipped: what was built of
 * it is dropped, the parser keeps its place until the stanza's end tag, and the skipped callback
 * gets its head (name and addressing attributes) so that its sender can be told.  What expat
 * holds unparsed, a single piece of markup it has not finished (an endless start tag or
 * attribute), cannot be skipped that way and is bounded by PARSER_TOKEN_FACTOR * max_stanza:
 * beyond it the stream ends with policy-violation.  DOCTYPE, entity declarations, processing
 * instructions and comments are refused (RFC 6120 11.1, restricted-xml), which also rules out
 * entity-expansion bombs.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <expat.h>

#include "../gateway/gw.h"
#include "probe.h"
#include "xmpp.h"

/* Expat refuses a namespace name holding the separator.  Prosody (separator "\1") forwards names
 * with spaces, or with raw line ends that read back as spaces, so a space here would let any
 * remote user break the stream; \1 cannot occur in XML 1.0 text at all. */
#define NS_SEP '\1'
#define NS_XML "http://www.w3.org/XML/1998/namespace"
#define FEED_CHUNK 4096		/* bytes handed to expat per call: bounds the overshoot past a limit */
/* Unparsed markup may reach this many times max_stanza: a stanza at the XMPP servers' own limits
 * (Prosody: 256 KiB from clients, 512 KiB over s2s) is made of tokens this parser sees whole. */
#define PARSER_TOKEN_FACTOR 16

struct xmpp_parser {
	xmpp_ctx_t *ctx;
	XML_Parser xp;
	size_t max_stanza;
	unsigned max_depth;
	struct xmpp_parser_cbs cbs;
	void *arg;

	unsigned depth;			/* 0: outside the stream, 1: in the stream, 2: in a stanza */
	xmpp_stanza_t **stack;		/* open elements of the current stanza, [0] = the stanza */
	char **nsstack;			/* the namespace in effect for each of them */
	unsigned long long fed;		/* bytes fed since the stream started */
	unsigned long long mark;	/* offset the stanza size bound counts from */
	unsigned long long seen;	/* end of the last event: expat holds the rest unparsed */
	size_t max_token;		/* bound on unparsed markup */
	xmpp_stanza_t *skip;		/* the head of a stanza being skipped, or NULL */
	unsigned skip_nest;		/* its elements still open */
	const char *skip_cond;
	char skip_text[96];
	char *text;			/* character data not yet attached to the open element */
	size_t textlen, textcap;
	int closed;			/* the stream ended: ignore whatever follows */
	const char *error;		/* stream error condition, or NULL */
	char error_text[160];
};

static void parser_fail(struct xmpp_parser *p, const char *cond, const char *fmt, ...)
	GW_PRINTF(3, 4);

static void parser_fail(struct xmpp_parser *p, const char *cond, const char *fmt, ...)
{
	va_list ap;

	if (p->error)
		return;
	p->error = cond;
	va_start(ap, fmt);
	vsnprintf(p->error_text, sizeof(p->error_text), fmt, ap);
	va_end(ap);
	XML_StopParser(p->xp, XML_FALSE);
}

static int parser_failed(const struct xmpp_parser *p)
{
	return p->error != NULL;
}

static void parser_set(xmpp_stanza_t *s, const char *name, const char *value)
{
	if (xmpp_stanza_set_attribute(s, name, value) != XMPP_EOK)
		gw_fatal("xmpp_parser: out of memory");
}

/* The end of the current event in the stream. */
static unsigned long long parser_event_end(struct xmpp_parser *p)
{
	return (unsigned long long)XML_GetCurrentByteIndex(p->xp) +
	       (unsigned long long)XML_GetCurrentByteCount(p->xp);
}

/* Gives up on the stanza under construction: keeps its head (the top-level element's name and
 * addressing attributes) for the skipped callback and drops the rest.  p->depth - 1 of its
 * elements are open; the parser follows them to the stanza's end tag without building. */
static void parser_skip(struct xmpp_parser *p, const char *cond, const char *fmt, ...)
	GW_PRINTF(3, 4);

static void parser_skip(struct xmpp_parser *p, const char *cond, const char *fmt, ...)
{
	static const char *const keep[] = { "id", "type", "from", "to", "xml:lang" };
	xmpp_stanza_t *whole = p->stack[0], *head = xmpp_stanza_new(p->ctx);
	va_list ap;

	if (!head || xmpp_stanza_set_name(head, xmpp_stanza_get_name(whole)) != XMPP_EOK)
		gw_fatal("xmpp_parser: out of memory");
	for (size_t i = 0; i < sizeof(keep) / sizeof(keep[0]); i++) {
		const char *v = xmpp_stanza_get_attribute(whole, keep[i]);

		if (v)
			parser_set(head, keep[i], v);
	}
	xmpp_stanza_release(whole);
	memset(p->stack, 0, (p->max_depth + 1) * sizeof(*p->stack));
	p->textlen = 0;
	p->skip = head;
	p->skip_nest = p->depth - 1;
	p->skip_cond = cond;
	va_start(ap, fmt);
	vsnprintf(p->skip_text, sizeof(p->skip_text), fmt, ap);
	va_end(ap);
}

/* The skipped stanza's end tag: the callback, and the parser is between stanzas again. */
static void parser_skip_done(struct xmpp_parser *p)
{
	xmpp_stanza_t *head = p->skip;

	p->skip = NULL;
	p->depth = 1;
	p->mark = parser_event_end(p);
	if (p->cbs.skipped)
		p->cbs.skipped(p->arg, head, p->skip_cond, p->skip_text);
	xmpp_stanza_release(head);
}

static void parser_check_size(struct xmpp_parser *p)
{
	/* up to the end of the current event: a stanza's end tag (or its whole self-closing
	 * start tag) counts too */
	unsigned long long at = parser_event_end(p);

	if (p->depth >= 2 && !p->skip && at > p->mark && at - p->mark > p->max_stanza)
		parser_skip(p, "policy-violation", "stanza larger than %zu bytes", p->max_stanza);
}

/* Attaches pending character data to the innermost open element. */
static void parser_flush_text(struct xmpp_parser *p)
{
	xmpp_stanza_t *t;

	if (!p->textlen)
		return;
	t = xmpp_stanza_new(p->ctx);
	if (!t || xmpp_stanza_set_text_with_size(t, p->text, p->textlen) != XMPP_EOK)
		gw_fatal("xmpp_parser: out of memory");
	xmpp_stanza_add_child_ex(p->stack[p->depth - 2], t, 0);	/* ownership passes */
	p->textlen = 0;
}

/* Splits expat's "uri local" name.  *ns gets a pointer into name or NULL; returns the local
 * name, copied into buf when a namespace was present. */
static const char *parser_split(const char *name, const char **ns, size_t *nslen)
{
	const char *sep = strchr(name, NS_SEP);

	if (!sep) {
		*ns = NULL;
		*nslen = 0;
		return name;
	}
	*ns = name;
	*nslen = (size_t)(sep - name);
	return sep + 1;
}

static int parser_ns_eq(const char *ns, size_t nslen, const char *want)
{
	return ns && strlen(want) == nslen && memcmp(ns, want, nslen) == 0;
}

static void XMLCALL parser_start(void *ud, const XML_Char *name, const XML_Char **attrs)
{
	struct xmpp_parser *p = ud;
	const char *ns, *local;
	size_t nslen;
	xmpp_stanza_t *s;

	if (parser_failed(p))
		return;
	p->seen = parser_event_end(p);
	if (p->skip) {
		p->skip_nest++;
		return;
	}
	local = parser_split(name, &ns, &nslen);
	if (p->depth == 0) {
		const char *hdr[64];
		size_t n = 0;

		if (strcmp(local, "stream") != 0 || !parser_ns_eq(ns, nslen, XMPP_NS_STREAMS)) {
			parser_fail(p, "invalid-namespace", "the stream does not start with <stream:stream>");
			return;
		}
		/* hand the header attributes over with xml:lang spelt as such */
		for (size_t i = 0; attrs[i] && n + 2 < sizeof(hdr) / sizeof(hdr[0]); i += 2) {
			const char *ans, *key = parser_split(attrs[i], &ans, &nslen);

			if (ans) {
				if (!parser_ns_eq(ans, nslen, NS_XML) || strcmp(key, "lang") != 0)
					continue;
				key = "xml:lang";
			}
			hdr[n++] = key;
			hdr[n++] = attrs[i + 1];
		}
		hdr[n] = NULL;
		p->depth = 1;
		p->mark = p->seen;
		if (p->cbs.open)
			p->cbs.open(p->arg, hdr);
		return;
	}
	parser_flush_text(p);
	if (parser_failed(p))
		return;
	if (p->depth == 1)
		p->mark = (unsigned long long)XML_GetCurrentByteIndex(p->xp);
	if (p->depth - 1 >= p->max_depth) {
		if (p->depth == 1) {
			/* no stanza at all is allowed: nothing to skip (max_depth 0) */
			parser_fail(p, "policy-violation", "elements nested deeper than %u",
				    p->max_depth);
			return;
		}
		parser_skip(p, "not-acceptable", "elements nested deeper than %u", p->max_depth);
		p->skip_nest++;		/* this element is open too */
		return;
	}

	s = xmpp_stanza_new(p->ctx);
	if (!s)
		gw_fatal("xmpp_parser: out of memory");
	if (p->depth == 1 && parser_ns_eq(ns, nslen, XMPP_NS_STREAMS)) {
		char *full = gw_xasprintf("stream:%s", local);

		xmpp_stanza_set_name(s, full);
		free(full);
		/* the name carries the prefix, not a default namespace: unprefixed children are
		 * still in the stream's default namespace */
		free(p->nsstack[0]);
		p->nsstack[0] = gw_xstrdup(XMPP_NS_COMPONENT);
	} else {
		const char *parent_ns = p->depth == 1 ? XMPP_NS_COMPONENT : p->nsstack[p->depth - 2];
		char *nsbuf = ns ? gw_xstrndup(ns, nslen) : gw_xstrdup(parent_ns);

		xmpp_stanza_set_name(s, local);
		/* a stanza in the client namespace is one in the stream's default namespace, and
		 * so are its children that inherit jabber:client from it */
		if (strcmp(parent_ns, XMPP_NS_COMPONENT) == 0 &&
		    strcmp(nsbuf, "jabber:client") == 0) {
			free(nsbuf);
			nsbuf = gw_xstrdup(XMPP_NS_COMPONENT);
		}
		/* declare the namespace only where it changes, as a serialiser would */
		if (strcmp(parent_ns, nsbuf) != 0)
			xmpp_stanza_set_ns(s, nsbuf);
		free(p->nsstack[p->depth - 1]);
		p->nsstack[p->depth - 1] = nsbuf;
	}
	for (size_t i = 0; attrs[i]; i += 2) {
		const char *ans, *alocal = parser_split(attrs[i], &ans, &nslen);

		if (!ans)
			parser_set(s, alocal, attrs[i + 1]);
		else if (parser_ns_eq(ans, nslen, NS_XML) && strcmp(alocal, "lang") == 0)
			parser_set(s, "xml:lang", attrs[i + 1]);
		/* other namespaced attributes have no meaning for a gateway: dropped */
	}
	if (p->depth >= 2)
		xmpp_stanza_add_child_ex(p->stack[p->depth - 2], s, 0);	/* parent owns it */
	p->stack[p->depth - 1] = s;
	p->depth++;
	parser_check_size(p);
}

static void XMLCALL parser_end(void *ud, const XML_Char *name)
{
	struct xmpp_parser *p = ud;

	if (parser_failed(p))
		return;
	p->seen = parser_event_end(p);
	if (p->skip) {
		if (--p->skip_nest == 0)
			parser_skip_done(p);
		return;
	}
	parser_check_size(p);
	if (p->skip) {		/* the end tag took it over the bound */
		if (--p->skip_nest == 0)
			parser_skip_done(p);
		return;
	}
	parser_flush_text(p);
	if (parser_failed(p))
		return;
	if (p->depth == 1) {
		p->depth = 0;
		p->closed = 1;
		XML_StopParser(p->xp, XML_FALSE);
		if (p->cbs.close)
			p->cbs.close(p->arg);
		return;
	}
	p->depth--;
	if (p->depth == 1) {
		xmpp_stanza_t *s = p->stack[0];

		p->stack[0] = NULL;
		p->mark = parser_event_end(p);
		if (p->cbs.stanza)
			p->cbs.stanza(p->arg, s);
		xmpp_stanza_release(s);
	}
}

static void XMLCALL parser_chars(void *ud, const XML_Char *s, int len)
{
	struct xmpp_parser *p = ud;

	if (parser_failed(p) || len <= 0)
		return;
	p->seen = parser_event_end(p);
	if (p->skip)
		return;
	if (p->depth < 2) {
		/* between stanzas only whitespace (keepalives) may appear; nothing is kept */
		for (int i = 0; i < len; i++)
			if (!strchr(" \t\r\n", s[i]) || !s[i]) {
				parser_fail(p, "not-well-formed", "text outside any stanza");
				return;
			}
		p->mark = p->seen;
		return;
	}
	if (p->textlen + (size_t)len > p->max_stanza) {
		parser_skip(p, "policy-violation", "stanza larger than %zu bytes", p->max_stanza);
		return;
	}
	if (p->textlen + (size_t)len > p->textcap) {
		size_t cap = p->textcap ? p->textcap : 256;

		while (cap < p->textlen + (size_t)len)
			cap *= 2;
		p->text = gw_xrealloc(p->text, cap);
		p->textcap = cap;
	}
	memcpy(p->text + p->textlen, s, (size_t)len);
	p->textlen += (size_t)len;
	parser_check_size(p);
}

static void XMLCALL parser_doctype(void *ud, const XML_Char *name, const XML_Char *sysid,
				   const XML_Char *pubid, int has_internal_subset)
{
	parser_fail(ud, "restricted-xml", "a DOCTYPE is not allowed in an XMPP stream");
}

static void XMLCALL parser_entity(void *ud, const XML_Char *name, int is_param,
				  const XML_Char *value, int value_len, const XML_Char *base,
				  const XML_Char *sysid, const XML_Char *pubid, const XML_Char *notation)
{
	parser_fail(ud, "restricted-xml", "entity declarations are not allowed");
}

static void XMLCALL parser_pi(void *ud, const XML_Char *target, const XML_Char *data)
{
	parser_fail(ud, "restricted-xml", "processing instructions are not allowed");
}

static void XMLCALL parser_comment(void *ud, const XML_Char *data)
{
	parser_fail(ud, "restricted-xml", "comments are not allowed");
}

static void parser_setup(struct xmpp_parser *p)
{
	p->xp = XML_ParserCreateNS("UTF-8", NS_SEP);
	if (!p->xp)
		gw_fatal("xmpp_parser: out of memory");
	XML_SetUserData(p->xp, p);
	/* Expat >= 2.6 (and Debian 12's backport, which still says 2.5) may hold back a token
	 * completed by a small read until more data arrives; a stream peer waits for our answer
	 * instead, so a stanza would sit unparsed until the next keepalive.  Whether the call
	 * exists is probed at build time (tools/probe-libs), not read from version macros. */
#ifdef HAVE_XML_SETREPARSEDEFERRALENABLED
	XML_SetReparseDeferralEnabled(p->xp, XML_FALSE);
#endif
	XML_SetElementHandler(p->xp, parser_start, parser_end);
	XML_SetCharacterDataHandler(p->xp, parser_chars);
	XML_SetStartDoctypeDeclHandler(p->xp, parser_doctype);
	XML_SetEntityDeclHandler(p->xp, parser_entity);
	XML_SetProcessingInstructionHandler(p->xp, parser_pi);
	XML_SetCommentHandler(p->xp, parser_comment);
}

struct xmpp_parser *xmpp_parser_new(xmpp_ctx_t *ctx, size_t max_stanza, unsigned max_depth,
				    const struct xmpp_parser_cbs *cbs, void *arg)
{
	struct xmpp_parser *p = gw_xcalloc(1, sizeof(*p));

	p->ctx = ctx;
	p->max_stanza = max_stanza;
	p->max_token = max_stanza * PARSER_TOKEN_FACTOR > FEED_CHUNK ?
		       max_stanza * PARSER_TOKEN_FACTOR : FEED_CHUNK;
	p->max_depth = max_depth ? max_depth : 1;
	p->cbs = *cbs;
	p->arg = arg;
	p->stack = gw_xcalloc(p->max_depth + 1, sizeof(*p->stack));
	p->nsstack = gw_xcalloc(p->max_depth + 1, sizeof(*p->nsstack));
	parser_setup(p);
	return p;
}

/* Drops a stanza still under construction. */
static void parser_drop_partial(struct xmpp_parser *p)
{
	if (p->depth >= 2 && p->stack[0])
		xmpp_stanza_release(p->stack[0]);
	if (p->skip)
		xmpp_stanza_release(p->skip);
	p->skip = NULL;
	if (p->max_depth)
		memset(p->stack, 0, (p->max_depth + 1) * sizeof(*p->stack));
}

void xmpp_parser_reset(struct xmpp_parser *p)
{
	parser_drop_partial(p);
	XML_ParserFree(p->xp);
	p->depth = 0;
	p->fed = p->mark = p->seen = 0;
	p->textlen = 0;
	p->closed = 0;
	p->error = NULL;
	p->error_text[0] = '\0';
	parser_setup(p);
}

void xmpp_parser_free(struct xmpp_parser *p)
{
	if (!p)
		return;
	parser_drop_partial(p);
	XML_ParserFree(p->xp);
	for (unsigned i = 0; i <= p->max_depth; i++)
		free(p->nsstack[i]);
	free(p->nsstack);
	free(p->stack);
	free(p->text);
	free(p);
}

int xmpp_parser_feed(struct xmpp_parser *p, const char *buf, size_t len)
{
	while (len && !p->closed && !p->error) {
		size_t n = len < FEED_CHUNK ? len : FEED_CHUNK;

		if (XML_Parse(p->xp, buf, (int)n, XML_FALSE) == XML_STATUS_ERROR && !p->error &&
		    !p->closed)
			parser_fail(p, "not-well-formed", "%s at line %lu",
				    XML_ErrorString(XML_GetErrorCode(p->xp)),
				    (unsigned long)XML_GetCurrentLineNumber(p->xp));
		p->fed += n;
		buf += n;
		len -= n;
		/* what expat holds unparsed, one piece of markup it has not finished, and a stanza
		 * being skipped (expat still keeps its open elements) are bounded too */
		if (!p->error && !p->closed && p->fed - p->seen > p->max_token + FEED_CHUNK)
			parser_fail(p, "policy-violation", "unfinished markup longer than %zu bytes",
				    p->max_token);
		if (!p->error && !p->closed && p->skip && p->fed - p->mark > p->max_token + FEED_CHUNK)
			parser_fail(p, "policy-violation", "skipped stanza longer than %zu bytes",
				    p->max_token);
	}
	return p->error ? -1 : 0;
}

const char *xmpp_parser_error(const struct xmpp_parser *p, const char **text)
{
	if (text)
		*text = p->error ? p->error_text : NULL;
	return p->error;
}

/* ---- serialisation ------------------------------------------------------------------------- */

static void text_reserve(struct xmpp_text *t, size_t more)
{
	size_t cap;

	if (t->len + more + 1 <= t->cap)
		return;
	cap = t->cap ? t->cap : 256;
	while (cap < t->len + more + 1)
		cap *= 2;
	t->p = realloc(t->p, cap);
	if (!t->p)
		gw_fatal("xmpp_text: out of memory");
	t->cap = cap;
}

void xmpp_text_add(struct xmpp_text *t, const char *s, size_t n)
{
	text_reserve(t, n);
	memcpy(t->p + t->len, s, n);
	t->len += n;
	t->p[t->len] = '\0';
}

/* Appends the n bytes at s escaped: runs of plain bytes are copied in one go; a NUL, which
 * XML cannot carry, is left out.  in_attr selects the set. */
static void text_escaped_n(struct xmpp_text *t, const char *s, size_t n, int in_attr)
{
	const char *run = s, *end = s + n;

	for (const char *p = s; p < end; p++) {
		const char *e;

		switch (*p) {
		case '\0': e = ""; break;
		case '&': e = "&amp;"; break;
		case '<': e = "&lt;"; break;
		case '>': e = in_attr ? NULL : "&gt;"; break;
		case '\'': e = in_attr ? "&apos;" : NULL; break;
		case '"': e = in_attr ? "&quot;" : NULL; break;
		case '\r': e = "&#13;"; break;
		case '\n': e = in_attr ? "&#10;" : NULL; break;
		case '\t': e = in_attr ? "&#9;" : NULL; break;
		default: e = NULL; break;
		}
		if (e) {
			xmpp_text_add(t, run, (size_t)(p - run));
			xmpp_text_add(t, e, strlen(e));
			run = p + 1;
		}
	}
	xmpp_text_add(t, run, (size_t)(end - run));
}

static void text_escaped(struct xmpp_text *t, const char *s, int in_attr)
{
	text_escaped_n(t, s, strlen(s), in_attr);
}

void xmpp_text_attr(struct xmpp_text *t, const char *value)
{
	text_escaped(t, value, 1);
}

void xmpp_text_cdata(struct xmpp_text *t, const char *s, size_t n)
{
	text_escaped_n(t, s, n, 0);
}

void xmpp_text_stanza(struct xmpp_text *t, xmpp_stanza_t *stanza)
{
	const char *name, *attrs[2 * 32], **a = attrs;
	int n;
	xmpp_stanza_t *child;

	text_reserve(t, 0);
	if (xmpp_stanza_is_text(stanza)) {
		const char *s = xmpp_stanza_get_text_ptr(stanza);

		text_escaped(t, s ? s : "", 0);
		return;
	}
	name = xmpp_stanza_get_name(stanza);
	if (!name)
		return;
	xmpp_text_add(t, "<", 1);
	xmpp_text_add(t, name, strlen(name));
	n = xmpp_stanza_get_attribute_count(stanza);
	if (n > 32 && !(a = malloc((size_t)n * 2 * sizeof(*a))))
		gw_fatal("xmpp_text: out of memory");
	n = xmpp_stanza_get_attributes(stanza, a, n * 2);
	for (int i = 0; i + 1 < n; i += 2) {
		xmpp_text_add(t, " ", 1);
		xmpp_text_add(t, a[i], strlen(a[i]));
		xmpp_text_add(t, "='", 2);
		xmpp_text_attr(t, a[i + 1] ? a[i + 1] : "");
		xmpp_text_add(t, "'", 1);
	}
	if (a != attrs)
		free(a);
	child = xmpp_stanza_get_children(stanza);
	if (!child) {
		xmpp_text_add(t, "/>", 2);
		return;
	}
	xmpp_text_add(t, ">", 1);
	for (; child; child = xmpp_stanza_get_next(child))
		xmpp_text_stanza(t, child);
	xmpp_text_add(t, "</", 2);
	xmpp_text_add(t, name, strlen(name));
	xmpp_text_add(t, ">", 1);
}

void xmpp_text_free(struct xmpp_text *t)
{
	free(t->p);
	t->p = NULL;
	t->len = t->cap = 0;
}
