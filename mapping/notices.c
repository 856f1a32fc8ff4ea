/* notices.c - typing notices (RFC 3994 isComposing <-> XEP-0085 chat states) and delivery
 * notifications (RFC 5438 IMDN <-> XEP-0184 receipts and XEP-0333 chat markers): the tables,
 * the two small XML documents, and the ids that let a notification find its message again.
 *
 * Correlation is stateless, so it survives restarts and costs no memory per message:
 *  - a SIP MESSAGE that asks for IMDNs becomes a stanza whose id carries the IMDN Message-ID
 *    and DateTime ("<id>~<dispositions>~<b64 Message-ID>~<b64 DateTime>"); the XMPP client's
 *    <received id=.../> or <displayed id=.../> brings them back for the IMDN;
 *  - a stanza that asks for receipts or markers becomes a MESSAGE whose imdn.Message-ID carries
 *    the stanza id ("<32 random bits in hex>~<b64 stanza id>"); the SIP client's IMDN names it
 *    in <message-id>.
 * Nothing in either is trusted beyond what its sender could say anyway: a forged id only makes
 * its sender claim delivery of something to the party it is writing to.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include <expat.h>

#include "../gateway/gw.h"
#include "map.h"

#define NS_SEP '\x01'
#define NOTICE_MAX_DOC 16384	/* bytes of an isComposing or IMDN document */
#define NOTICE_MAX_DEPTH 8
#define NOTICE_TEXT_MAX 256	/* characters of one element's text */
#define NS_ISCOMPOSING "urn:ietf:params:xml:ns:im-iscomposing"
#define NS_IMDN "urn:ietf:params:xml:ns:imdn"

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

/* ---- tables */

/* XEP-0085 chat state -> RFC 3994 state sent in pager mode.  <gone/> ends a conversation, which a
 * pager-mode peer has no notion of: the user stopped composing, as far as it can tell. */
static const struct {
	const char *chatstate;
	const char *composing;
} chatstate_rows[] = {
	{ "composing", "active" },
	{ "paused", "idle" },
	{ "active", "idle" },
	{ "inactive", "idle" },
	{ "gone", "idle" },
};

const char *map_chatstate_to_composing(const char *chatstate)
{
	for (size_t i = 0; chatstate && i < NELEM(chatstate_rows); i++)
		if (strcmp(chatstate, chatstate_rows[i].chatstate) == 0)
			return chatstate_rows[i].composing;
	return NULL;
}

/* RFC 3994 state -> XEP-0085 chat state.  "idle" is what follows composing: paused. */
static const struct {
	const char *composing;
	const char *chatstate;
} composing_rows[] = {
	{ "active", "composing" },
	{ "idle", "paused" },
};

const char *map_composing_to_chatstate(const char *state)
{
	for (size_t i = 0; state && i < NELEM(composing_rows); i++)
		if (strcmp(state, composing_rows[i].composing) == 0)
			return composing_rows[i].chatstate;
	return NULL;
}

/* IMDN (kind, status) -> what the XMPP side gets. */
static const struct map_imdn_rule imdn_rules[] = {
	{ MAP_IMDN_DELIVERY, "delivered", MAP_TO_RECEIVED, NULL },
	{ MAP_IMDN_DELIVERY, "failed", MAP_TO_ERROR, "recipient-unavailable" },
	{ MAP_IMDN_DELIVERY, "forbidden", MAP_TO_ERROR, "forbidden" },
	{ MAP_IMDN_DELIVERY, "error", MAP_TO_ERROR, "undefined-condition" },
	{ MAP_IMDN_DISPLAY, "displayed", MAP_TO_DISPLAYED, NULL },
	{ MAP_IMDN_DISPLAY, "forbidden", MAP_TO_NOTHING, NULL },
	{ MAP_IMDN_DISPLAY, "error", MAP_TO_NOTHING, NULL },
	{ MAP_IMDN_PROCESSING, "processed", MAP_TO_NOTHING, NULL },
	{ MAP_IMDN_PROCESSING, "stored", MAP_TO_NOTHING, NULL },
	{ MAP_IMDN_PROCESSING, "forbidden", MAP_TO_NOTHING, NULL },
	{ MAP_IMDN_PROCESSING, "error", MAP_TO_NOTHING, NULL },
};

const struct map_imdn_rule *map_imdn_rule(enum map_imdn_kind kind, const char *status)
{
	for (size_t i = 0; i < NELEM(imdn_rules); i++)
		if (imdn_rules[i].kind == kind && strcmp(imdn_rules[i].status, status) == 0)
			return &imdn_rules[i];
	return NULL;
}

static const char *const imdn_kind_names[] = {
	[MAP_IMDN_DELIVERY] = "delivery-notification",
	[MAP_IMDN_DISPLAY] = "display-notification",
	[MAP_IMDN_PROCESSING] = "processing-notification",
};

/* Disposition-Notification values (RFC 5438 6.2) and their bits. */
static const struct {
	const char *name;
	unsigned bit;
} disposition_rows[] = {
	{ "positive-delivery", MAP_DISP_POSITIVE },
	{ "negative-delivery", MAP_DISP_NEGATIVE },
	{ "display", MAP_DISP_DISPLAY },
	{ "processing", MAP_DISP_PROCESSING },
};

unsigned map_imdn_dispositions(const char *value, size_t len)
{
	unsigned bits = 0;
	size_t i = 0;

	while (i < len) {
		size_t start, end;

		while (i < len && (value[i] == ' ' || value[i] == '\t' || value[i] == ','))
			i++;
		start = i;
		while (i < len && value[i] != ',')
			i++;
		end = i;
		while (end > start && (value[end - 1] == ' ' || value[end - 1] == '\t'))
			end--;
		for (size_t r = 0; r < NELEM(disposition_rows); r++)
			if (end - start == strlen(disposition_rows[r].name) &&
			    strncasecmp(value + start, disposition_rows[r].name, end - start) == 0)
				bits |= disposition_rows[r].bit;
	}
	return bits;
}

size_t map_imdn_dispositions_text(unsigned bits, char *buf, size_t len)
{
	size_t n = 0;

	if (len)
		buf[0] = '\0';
	for (size_t r = 0; r < NELEM(disposition_rows); r++) {
		int w;

		if (!(bits & disposition_rows[r].bit))
			continue;
		w = snprintf(buf + n, len > n ? len - n : 0, "%s%s", n ? ", " : "",
			     disposition_rows[r].name);
		if (w < 0 || (size_t)w >= (len > n ? len - n : 0))
			return 0;
		n += (size_t)w;
	}
	return n;
}

/* ---- the two documents, parsed with expat: elements of the document's namespace as a path of
 * local names, each one's text; elements of other namespaces (extensions) are skipped whole. */

struct notice_doc {
	XML_Parser xp;
	const char *ns;
	char path[160];
	size_t pathlen[NOTICE_MAX_DEPTH + 1];
	unsigned depth, foreign;
	char text[NOTICE_TEXT_MAX + 1];
	size_t tlen;
	int failed;
	void (*element)(struct notice_doc *d, const char *path, const char *text);
	void *out;
};

static void notice_fail(struct notice_doc *d)
{
	if (!d->failed) {
		d->failed = 1;
		XML_StopParser(d->xp, XML_FALSE);
	}
}

static void XMLCALL notice_start(void *ud, const XML_Char *name, const XML_Char **attrs)
{
	struct notice_doc *d = ud;
	const char *sep = strchr(name, NS_SEP), *local = sep ? sep + 1 : name;
	size_t nslen = sep ? (size_t)(sep - name) : 0;
	int ours = sep && nslen == strlen(d->ns) && memcmp(name, d->ns, nslen) == 0;
	size_t at = d->pathlen[d->depth];

	if (d->failed)
		return;
	if (d->foreign || (!ours && d->depth)) {
		d->foreign++;
		return;
	}
	if (!ours || d->depth >= NOTICE_MAX_DEPTH ||
	    at + 1 + strlen(local) >= sizeof(d->path)) {
		notice_fail(d);
		return;
	}
	d->path[at] = '/';
	strcpy(d->path + at + 1, local);
	d->pathlen[++d->depth] = at + 1 + strlen(local);
	d->tlen = 0;
	d->text[0] = '\0';
}

static void XMLCALL notice_chars(void *ud, const XML_Char *s, int len)
{
	struct notice_doc *d = ud;

	if (d->failed || d->foreign || !d->depth)
		return;
	if (d->tlen + (size_t)len > NOTICE_TEXT_MAX) {
		notice_fail(d);
		return;
	}
	memcpy(d->text + d->tlen, s, (size_t)len);
	d->tlen += (size_t)len;
	d->text[d->tlen] = '\0';
}

static void XMLCALL notice_end(void *ud, const XML_Char *name)
{
	struct notice_doc *d = ud;
	size_t a = 0, b;

	if (d->failed)
		return;
	if (d->foreign) {
		d->foreign--;
		return;
	}
	/* the element's text, trimmed */
	b = d->tlen;
	while (a < b && strchr(" \t\r\n", d->text[a]))
		a++;
	while (b > a && strchr(" \t\r\n", d->text[b - 1]))
		b--;
	d->text[b] = '\0';
	d->path[d->pathlen[d->depth]] = '\0';
	d->element(d, d->path, d->text + a);
	d->depth--;
	d->path[d->pathlen[d->depth]] = '\0';
	d->tlen = 0;
	d->text[0] = '\0';
}

static void XMLCALL notice_doctype(void *ud, const XML_Char *name, const XML_Char *sysid,
				   const XML_Char *pubid, int has_internal_subset)
{
	notice_fail(ud);	/* no DTDs: no entity tricks */
}

static int notice_parse(struct notice_doc *d, const char *buf, size_t len)
{
	int ok;

	if (len > NOTICE_MAX_DOC)
		return -1;
	d->xp = XML_ParserCreateNS("UTF-8", NS_SEP);
	if (!d->xp)
		gw_fatal("notices: out of memory");
	XML_SetUserData(d->xp, d);
	XML_SetElementHandler(d->xp, notice_start, notice_end);
	XML_SetCharacterDataHandler(d->xp, notice_chars);
	XML_SetStartDoctypeDeclHandler(d->xp, notice_doctype);
	ok = XML_Parse(d->xp, buf, (int)len, XML_TRUE) == XML_STATUS_OK && !d->failed;
	XML_ParserFree(d->xp);
	return ok ? 0 : -1;
}

/* isComposing: /isComposing/state is required, /isComposing/refresh optional. */
struct composing_out {
	const char *state;	/* a static string from composing_rows, once seen */
	unsigned refresh_s;
	int root;
};

static void composing_element(struct notice_doc *d, const char *path, const char *text)
{
	struct composing_out *o = d->out;

	if (strcmp(path, "/isComposing") == 0) {
		o->root = 1;
	} else if (strcmp(path, "/isComposing/state") == 0) {
		o->state = NULL;
		for (size_t i = 0; i < NELEM(composing_rows); i++)
			if (strcmp(text, composing_rows[i].composing) == 0)
				o->state = composing_rows[i].composing;
		if (!o->state)
			notice_fail(d);
	} else if (strcmp(path, "/isComposing/refresh") == 0) {
		char *end;
		unsigned long v = strtoul(text, &end, 10);

		if (*end || end == text || v > 86400)
			notice_fail(d);
		else
			o->refresh_s = (unsigned)v;
	}
}

const char *map_iscomposing_parse(const char *doc, size_t len, unsigned *refresh_s)
{
	struct composing_out o = { 0 };
	struct notice_doc d = { .ns = NS_ISCOMPOSING, .element = composing_element, .out = &o };

	if (notice_parse(&d, doc, len) != 0 || !o.root || !o.state)
		return NULL;
	if (refresh_s)
		*refresh_s = o.refresh_s;
	return o.state;
}

char *map_iscomposing_build(const char *state, unsigned refresh_s)
{
	char refresh[48] = "";

	if (refresh_s)
		snprintf(refresh, sizeof(refresh), "<refresh>%u</refresh>", refresh_s);
	return gw_xasprintf("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
			    "<isComposing xmlns=\"" NS_ISCOMPOSING "\">"
			    "<state>%s</state><contenttype>text/plain</contenttype>%s"
			    "</isComposing>\n", state, refresh);
}

/* IMDN: /imdn/message-id and /imdn/datetime, one notification with its status element. */
static void imdn_element(struct notice_doc *d, const char *path, const char *text)
{
	struct map_imdn *o = d->out;

	if (strcmp(path, "/imdn") == 0) {
		if (!o->message_id[0] || o->kind == MAP_IMDN_NONE || !o->status[0])
			notice_fail(d);
		return;
	}
	if (strcmp(path, "/imdn/message-id") == 0) {
		if (!*text || strlen(text) > MAP_IMDN_ID_MAX)
			notice_fail(d);
		else
			snprintf(o->message_id, sizeof(o->message_id), "%s", text);
		return;
	}
	if (strcmp(path, "/imdn/datetime") == 0) {
		snprintf(o->datetime, sizeof(o->datetime), "%s", text);
		return;
	}
	for (int k = MAP_IMDN_DELIVERY; k <= MAP_IMDN_PROCESSING; k++) {
		size_t n = strlen(imdn_kind_names[k]);

		/* /imdn/<kind>-notification/status/<status> */
		if (strncmp(path, "/imdn/", 6) == 0 && strncmp(path + 6, imdn_kind_names[k], n) == 0 &&
		    strncmp(path + 6 + n, "/status/", 8) == 0 && !strchr(path + 14 + n, '/')) {
			if (o->kind != MAP_IMDN_NONE) {
				notice_fail(d);	/* one notification per document */
				return;
			}
			o->kind = (enum map_imdn_kind)k;
			snprintf(o->status, sizeof(o->status), "%s", path + 14 + n);
			return;
		}
	}
}

int map_imdn_parse(const char *doc, size_t len, struct map_imdn *out)
{
	struct notice_doc d = { .ns = NS_IMDN, .element = imdn_element, .out = out };

	memset(out, 0, sizeof(*out));
	out->kind = MAP_IMDN_NONE;
	if (notice_parse(&d, doc, len) != 0 || out->kind == MAP_IMDN_NONE)
		return -1;
	return 0;
}

/* Appends s XML-escaped. */
static void xml_escape_into(char *buf, size_t len, size_t *n, const char *s)
{
	for (; *s && *n + 7 < len; s++) {
		const char *rep = *s == '&' ? "&amp;" : *s == '<' ? "&lt;" : *s == '>' ? "&gt;" :
				  *s == '"' ? "&quot;" : NULL;

		if (rep) {
			memcpy(buf + *n, rep, strlen(rep));
			*n += strlen(rep);
		} else {
			buf[(*n)++] = *s;
		}
	}
	buf[*n] = '\0';
}

char *map_imdn_build(enum map_imdn_kind kind, const char *status, const char *message_id,
		     const char *datetime, const char *recipient_uri)
{
	size_t cap = 512 + 6 * (strlen(message_id) + strlen(datetime) + strlen(recipient_uri));
	char *buf = gw_xmalloc(cap);
	size_t n = 0;

	n += (size_t)snprintf(buf, cap, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
			      "<imdn xmlns=\"" NS_IMDN "\"><message-id>");
	xml_escape_into(buf, cap, &n, message_id);
	n += (size_t)snprintf(buf + n, cap - n, "</message-id><datetime>");
	xml_escape_into(buf, cap, &n, datetime);
	n += (size_t)snprintf(buf + n, cap - n, "</datetime><recipient-uri>");
	xml_escape_into(buf, cap, &n, recipient_uri);
	n += (size_t)snprintf(buf + n, cap - n, "</recipient-uri><original-recipient-uri>");
	xml_escape_into(buf, cap, &n, recipient_uri);
	snprintf(buf + n, cap - n, "</original-recipient-uri><%s><status><%s/></status></%s>"
		 "</imdn>\n", imdn_kind_names[kind], status, imdn_kind_names[kind]);
	return buf;
}

/* ---- ids */

static const char b64url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* base64url without padding; returns the length written, or 0 if it does not fit. */
static size_t b64_encode(const char *src, size_t n, char *dst, size_t len)
{
	const unsigned char *s = (const unsigned char *)src;
	size_t o = 0;

	for (size_t i = 0; i < n; i += 3) {
		unsigned v = (unsigned)s[i] << 16 | (i + 1 < n ? (unsigned)s[i + 1] << 8 : 0) |
			     (i + 2 < n ? s[i + 2] : 0);
		size_t out = n - i >= 3 ? 4 : n - i + 1;

		if (o + out >= len)
			return 0;
		for (size_t k = 0; k < out; k++)
			dst[o++] = b64url[(v >> (18 - 6 * k)) & 63];
	}
	dst[o] = '\0';
	return o;
}

/* Decodes n base64url characters; returns the bytes written (NUL-terminated), or -1 if the
 * input is not base64url, does not fit, or decodes to bytes unfit for an id (controls, NUL). */
static long b64_decode(const char *src, size_t n, char *dst, size_t len)
{
	size_t o = 0;
	unsigned v = 0, bits = 0;

	if (n % 4 == 1)
		return -1;
	for (size_t i = 0; i < n; i++) {
		const char *p = memchr(b64url, src[i], 64);

		if (!p || !src[i])
			return -1;
		v = v << 6 | (unsigned)(p - b64url);
		bits += 6;
		if (bits >= 8) {
			unsigned char c = (unsigned char)(v >> (bits - 8));

			bits -= 8;
			if (o + 1 >= len || c < 0x20 || c == 0x7f)
				return -1;
			dst[o++] = (char)c;
		}
	}
	dst[o] = '\0';
	return (long)o;
}

int map_imdn_stanza_id(const char *base, unsigned dispositions, const char *message_id,
		       const char *datetime, char *buf, size_t len)
{
	char m[2 * MAP_IMDN_ID_MAX], t[128];
	int n;

	if (!b64_encode(message_id, strlen(message_id), m, sizeof(m)) ||
	    !b64_encode(datetime, strlen(datetime), t, sizeof(t)))
		return -1;
	n = snprintf(buf, len, "%s~%x~%s~%s", base, dispositions & 0xf, m, t);
	return n > 0 && (size_t)n < len ? 0 : -1;
}

int map_imdn_from_stanza_id(const char *id, unsigned *dispositions, char *message_id,
			    size_t mlen, char *datetime, size_t dlen)
{
	const char *t = strrchr(id, '~'), *m, *f;
	char *end;
	unsigned long bits;

	if (!t || t == id)
		return -1;
	for (m = t - 1; m > id && *m != '~'; m--)
		;
	if (*m != '~' || m == id)
		return -1;
	for (f = m - 1; f > id && *f != '~'; f--)
		;
	if (*f != '~' || f == id || f + 1 == m)
		return -1;	/* no base id before it, or no dispositions */
	bits = strtoul(f + 1, &end, 16);
	if (end != m || bits > 0xf)
		return -1;
	if (b64_decode(m + 1, (size_t)(t - m - 1), message_id, mlen) <= 0 ||
	    b64_decode(t + 1, strlen(t + 1), datetime, dlen) <= 0)
		return -1;
	*dispositions = (unsigned)bits;
	return 0;
}

int map_imdn_message_id(const char *stanza_id, const char *resource, char *buf, size_t len)
{
	unsigned char rnd[4];
	char enc[2 * MAP_IMDN_ID_MAX], res[2 * MAP_IMDN_ID_MAX];
	size_t cap = len < MAP_IMDN_ID_MAX + 1 ? len : MAP_IMDN_ID_MAX + 1;
	int n;

	if (!b64_encode(stanza_id, strlen(stanza_id), enc, sizeof(enc)))
		return -1;
	if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
		gw_fatal("getrandom failed");
	/* the sender's resource too, where it fits: an error for the message must go to it */
	if (resource && *resource && b64_encode(resource, strlen(resource), res, sizeof(res))) {
		n = snprintf(buf, cap, "%02x%02x%02x%02x~%s~%s", rnd[0], rnd[1], rnd[2], rnd[3], enc,
			     res);
		if (n > 0 && (size_t)n < cap)
			return 0;
	}
	n = snprintf(buf, cap, "%02x%02x%02x%02x~%s", rnd[0], rnd[1], rnd[2], rnd[3], enc);
	return n > 0 && (size_t)n < cap ? 0 : -1;
}

int map_imdn_stanza_of(const char *message_id, char *stanza_id, size_t len, char *resource,
		       size_t rlen)
{
	const char *t = strchr(message_id, '~'), *r;

	if (!t || t - message_id != 8 || strspn(message_id, "0123456789abcdef") < 8 || !rlen)
		return -1;
	r = strchr(t + 1, '~');
	if (b64_decode(t + 1, r ? (size_t)(r - t - 1) : strlen(t + 1), stanza_id, len) <= 0)
		return -1;
	resource[0] = '\0';
	if (r && b64_decode(r + 1, strlen(r + 1), resource, rlen) <= 0)
		return -1;
	return 0;
}
