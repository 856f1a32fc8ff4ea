/* fuzz_xmpp_parser.c - libFuzzer harness for xmpp/parser.c: chunked feeding, chunking independence, and a serialise/re-parse round trip of every stanza. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <strophe.h>

#include "xmpp/xmpp.h"

/*
 * Input: byte 0 chooses how the rest is cut into chunks (0: whole; bit 7 clear: chunks of 1..128
 * bytes; bit 7 set: chunks of up to 8 KiB, sizes drawn from a generator seeded with the byte),
 * bytes 1.. are the stream.
 *
 * Invariants, each a trap when broken:
 *  - the same stream fed whole (after xmpp_parser_reset() of the same parser) gives the same
 *    events, or, when one run was stopped by a bound, one event log is a prefix of the other;
 *  - a failed feed names a stream error with a text, and the failure is final;
 *  - nothing follows close;
 *  - every stanza, serialised with xmpp_text_stanza() and parsed again inside a fresh
 *    stream by a second parser bounded to exactly its length, gives back the same stanza.
 *    Compared in a canonical form with attributes sorted (libstrophe keeps them in a hash whose
 *    order depends on insertion order), and exactly: xmpp_text_stanza() writes CR in text and
 *    TAB/CR/LF in attribute values as character references, so nothing is normalised away
 *    (canon()'s normalising mode is what libstrophe's own serialiser would need).  The one stanza allowed not to come back is one with a namespace no
 *    default declaration can carry (see ns_unwritable()).
 */

#define MAX_STANZA 4096
#define MAX_DEPTH 16
#define SYN_OPEN \
	"<stream:stream xmlns='jabber:component:accept' " \
	"xmlns:stream='http://etherx.jabber.org/streams' id='rt'>"
#define SYN_CLOSE "</stream:stream>"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static xmpp_ctx_t *ctx;

static void must(int cond)
{
	if (!cond)
		__builtin_trap();
}

/* ---- a growing byte buffer ---------------------------------------------------------------- */

struct buf {
	char *p;
	size_t len, cap;
};

static void buf_add(struct buf *b, const char *s, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		b->cap = (b->len + n + 1) * 2;
		b->p = realloc(b->p, b->cap);
		must(b->p != NULL);
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void buf_str(struct buf *b, const char *s)
{
	buf_add(b, s, strlen(s));
}

/* ---- canonical form of a stanza ----------------------------------------------------------- */

enum norm { NORM_NONE, NORM_TEXT, NORM_ATTR };

/* Appends s as a length-prefixed field, normalised as a parser would read it back. */
static void canon_field(struct buf *b, const char *s, enum norm how)
{
	struct buf t = { 0 };
	char len[32];

	buf_add(&t, "", 0);
	for (; *s; s++) {
		char c = *s;

		if (how != NORM_NONE && c == '\r') {
			if (s[1] == '\n')
				s++;
			c = '\n';
		}
		if (how == NORM_ATTR && (c == '\n' || c == '\t'))
			c = ' ';
		buf_add(&t, &c, 1);
	}
	snprintf(len, sizeof(len), "%zu:", t.len);
	buf_str(b, len);
	buf_add(b, t.p, t.len);
	free(t.p);
}

/* qsort over pointers to (key, value) pairs: order by key */
static int cmp_key(const void *a, const void *b)
{
	const char *const *pa = *(const char *const *const *)a;
	const char *const *pb = *(const char *const *const *)b;

	return strcmp(pa[0], pb[0]);
}

static void canon(struct buf *b, xmpp_stanza_t *s, int normalise)
{
	if (xmpp_stanza_is_text(s)) {
		buf_str(b, "T");
		canon_field(b, xmpp_stanza_get_text_ptr(s), normalise ? NORM_TEXT : NORM_NONE);
		return;
	}
	must(xmpp_stanza_is_tag(s));
	int n = xmpp_stanza_get_attribute_count(s);
	const char **attrs = calloc((size_t)n * 2 + 1, sizeof(*attrs));

	must(attrs != NULL);
	must(xmpp_stanza_get_attributes(s, attrs, n * 2) == n * 2);
	/* pairs sorted by key: sort an array of pair starts */
	const char **pairs[64 + 1];
	const char ***sorted = n <= 64 ? pairs : calloc((size_t)n, sizeof(*sorted));

	must(sorted != NULL);
	for (int i = 0; i < n; i++)
		sorted[i] = &attrs[2 * i];
	qsort(sorted, (size_t)n, sizeof(*sorted), cmp_key);
	buf_str(b, "<");
	canon_field(b, xmpp_stanza_get_name(s), NORM_NONE);
	for (int i = 0; i < n; i++) {
		buf_str(b, " ");
		canon_field(b, sorted[i][0], NORM_NONE);
		canon_field(b, sorted[i][1], normalise ? NORM_ATTR : NORM_NONE);
	}
	buf_str(b, ">");
	for (xmpp_stanza_t *c = xmpp_stanza_get_children(s); c; c = xmpp_stanza_get_next(c))
		canon(b, c, normalise);
	buf_str(b, "</>");
	if (sorted != pairs)
		free(sorted);
	free(attrs);
}

/* ---- the round trip ----------------------------------------------------------------------- */

struct rt {
	int stanzas, closed;
	struct buf canon;	/* of the one stanza it parsed */
};

static void rt_stanza(void *arg, xmpp_stanza_t *s)
{
	struct rt *r = arg;

	must(!r->closed);
	if (r->stanzas++ == 0)
		canon(&r->canon, s, 0);
}

static void rt_close(void *arg)
{
	struct rt *r = arg;

	must(!r->closed);
	r->closed = 1;
}

static const struct xmpp_parser_cbs rt_cbs = { NULL, rt_stanza, rt_close, NULL };

/* Non-zero if s holds a namespace that cannot be written as a default namespace declaration:
 * the xml namespace (an element spelt <xml:x/>) may not be declared as a default namespace. */
static int ns_unwritable(xmpp_stanza_t *s)
{
	const char *ns;

	if (!xmpp_stanza_is_tag(s))
		return 0;
	if ((ns = xmpp_stanza_get_ns(s)) != NULL &&
	    strcmp(ns, "http://www.w3.org/XML/1998/namespace") == 0)
		return 1;
	for (xmpp_stanza_t *c = xmpp_stanza_get_children(s); c; c = xmpp_stanza_get_next(c))
		if (ns_unwritable(c))
			return 1;
	return 0;
}

static void round_trip(xmpp_stanza_t *s, const char *text, size_t len)
{
	struct rt r = { 0 };
	struct buf want = { 0 };
	/* a stanza of exactly max_stanza bytes is within the bound */
	struct xmpp_parser *p = xmpp_parser_new(ctx, len, MAX_DEPTH, &rt_cbs, &r);
	const char *cond;

	must(xmpp_parser_feed(p, SYN_OPEN, strlen(SYN_OPEN)) == 0);
	if (xmpp_parser_feed(p, text, len) != 0) {
		cond = xmpp_parser_error(p, NULL);
		must(ns_unwritable(s) && strcmp(cond, "not-well-formed") == 0 && r.stanzas == 0);
		goto done;
	}
	must(xmpp_parser_feed(p, SYN_CLOSE, strlen(SYN_CLOSE)) == 0);
	must(r.stanzas == 1 && r.closed);
	canon(&want, s, 0);	/* exact: xmpp_text_stanza() escapes what a parser would normalise */
	must(want.len == r.canon.len && memcmp(want.p, r.canon.p, want.len) == 0);
done:
	xmpp_parser_free(p);
	free(want.p);
	free(r.canon.p);
}

/* ---- the run under test ------------------------------------------------------------------- */

struct run {
	struct buf log;
	int closed;
};

static void on_open(void *arg, const char **attrs)
{
	struct run *r = arg;

	must(!r->closed);
	buf_str(&r->log, "O");
	for (size_t i = 0; attrs[i]; i += 2) {
		must(attrs[i + 1] != NULL);
		buf_str(&r->log, " ");
		buf_str(&r->log, attrs[i]);
		buf_str(&r->log, "=");
		buf_str(&r->log, attrs[i + 1]);
	}
	buf_str(&r->log, "\n");
}

static void on_stanza(void *arg, xmpp_stanza_t *s)
{
	struct run *r = arg;
	struct xmpp_text t = { 0 };

	must(!r->closed);
	xmpp_text_stanza(&t, s);
	must(t.p && strlen(t.p) == t.len);
	buf_str(&r->log, "S");
	buf_add(&r->log, t.p, t.len);
	buf_str(&r->log, "\n");
	round_trip(s, t.p, t.len);
	xmpp_text_free(&t);
}

static void on_close(void *arg)
{
	struct run *r = arg;

	must(!r->closed);
	r->closed = 1;
	buf_str(&r->log, "C\n");
}

/* A skipped stanza: its head has a name and no children, the condition is one of two, and
 * the log records it so that chunked runs must agree with the whole one. */
static void on_skipped(void *arg, xmpp_stanza_t *head, const char *cond, const char *text)
{
	struct run *r = arg;
	struct xmpp_text t = { 0 };

	must(!r->closed);
	must(xmpp_stanza_get_name(head) && !xmpp_stanza_get_children(head));
	must(strcmp(cond, "policy-violation") == 0 || strcmp(cond, "not-acceptable") == 0);
	must(text && *text);
	xmpp_text_stanza(&t, head);
	buf_str(&r->log, "K");
	buf_add(&r->log, t.p, t.len);
	buf_str(&r->log, cond);
	buf_str(&r->log, "\n");
	xmpp_text_free(&t);
}

static const struct xmpp_parser_cbs run_cbs = { on_open, on_stanza, on_close, on_skipped };

static const char *const conditions[] = {
	"not-well-formed", "restricted-xml", "policy-violation", "invalid-namespace",
};

/* Feeds in in chunks drawn from sel; returns the error condition or NULL. */
static const char *feed(struct xmpp_parser *p, const uint8_t *in, size_t len, uint8_t sel)
{
	uint32_t rng = 0x9e3779b9u * (sel + 1u);
	size_t maxchunk = sel & 0x80 ? 1 + (size_t)(sel & 0x7f) * 64 : 1 + (size_t)(sel & 0x7f);
	const char *cond, *text;
	int failed = 0;

	for (size_t off = 0; off < len;) {
		size_t n = len - off;

		if (sel) {
			rng ^= rng << 13;
			rng ^= rng >> 17;
			rng ^= rng << 5;
			n = 1 + rng % maxchunk;
			if (n > len - off)
				n = len - off;
		}
		if (xmpp_parser_feed(p, (const char *)in + off, n) != 0)
			failed = 1;
		else
			must(!failed);	/* a broken stream stays broken */
		off += n;
	}
	cond = xmpp_parser_error(p, &text);
	must(failed == (cond != NULL));
	if (cond) {
		size_t i;

		for (i = 0; i < sizeof(conditions) / sizeof(conditions[0]); i++)
			if (strcmp(cond, conditions[i]) == 0)
				break;
		must(i < sizeof(conditions) / sizeof(conditions[0]));
		must(text != NULL && *text);
		must(xmpp_parser_feed(p, "<a/>", 4) == -1);
	} else {
		must(text == NULL);
	}
	return cond;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct run r = { 0 };
	struct buf first;
	struct xmpp_parser *p;
	const char *ca, *cb;
	size_t shorter;

	if (!ctx) {
		xmpp_initialize();
		ctx = xmpp_ctx_new(NULL, NULL);
		must(ctx != NULL);
	}
	if (size < 1)
		return 0;
	p = xmpp_parser_new(ctx, MAX_STANZA, MAX_DEPTH, &run_cbs, &r);
	buf_add(&r.log, "", 0);
	ca = feed(p, data + 1, size - 1, data[0]);

	/* the same parser, reset, and the same stream in one piece */
	first = r.log;
	memset(&r, 0, sizeof(r));
	buf_add(&r.log, "", 0);
	xmpp_parser_reset(p);
	must(xmpp_parser_error(p, NULL) == NULL);
	cb = feed(p, data + 1, size - 1, 0);
	xmpp_parser_free(p);

	/* chunking cannot change what is parsed, only where a bound on buffered markup trips;
	 * and when one run failed, the other may still be waiting for the rest of an incomplete
	 * token (expat decides some errors at the document start only once it has 4 bytes) */
	shorter = first.len < r.log.len ? first.len : r.log.len;
	must(memcmp(first.p, r.log.p, shorter) == 0);
	if (!(ca && strcmp(ca, "policy-violation") == 0) &&
	    !(cb && strcmp(cb, "policy-violation") == 0)) {
		must(first.len == r.log.len);
		if (ca && cb)
			must(strcmp(ca, cb) == 0);
	}
	free(first.p);
	free(r.log.p);
	return 0;
}
