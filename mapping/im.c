/* im.c - pure helpers for pager-mode IM (RFC 7572): text checks, CPIM, header-safe text,
 * picking a message's body and subject, and error replies. */
#include <stdlib.h>
#include <string.h>

#include "../gateway/gw.h"
#include "../xmpp/xmpp.h"
#include "map.h"

#define NS_RECEIPTS "urn:xmpp:receipts"
#define NS_CHATSTATES "http://jabber.org/protocol/chatstates"
#define NS_MARKERS "urn:xmpp:chat-markers:0"
#define NS_DELAY "urn:xmpp:delay"
#define NS_STANZAS "urn:ietf:params:xml:ns:xmpp-stanzas"
#define CPIM_MAX_NS 4		/* IMDN namespace prefixes remembered per message */

int map_text_check(const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0;

	while (i < len) {
		unsigned long c;
		size_t n = gw_utf8_decode(p + i, len - i, &c);

		if (!n)
			return MAP_TEXT_EUTF8;
		/* XML 1.0 Char: #x9 | #xA | #xD | [#x20-#xD7FF] | [#xE000-#xFFFD] | [#x10000-] */
		if ((c < 0x20 && c != 0x9 && c != 0xa && c != 0xd) || c == 0xfffe || c == 0xffff)
			return MAP_TEXT_ECHAR;
		i += n;
	}
	return 0;
}

static int cpim_ieq(struct map_span s, const char *lit)
{
	size_t n = strlen(lit);

	if (s.n != n)
		return 0;
	for (size_t i = 0; i < n; i++) {
		char a = s.p[i], b = lit[i];

		if (a >= 'A' && a <= 'Z')
			a += 'a' - 'A';
		if (a != b)
			return 0;
	}
	return 1;
}

static struct map_span span_trim(const char *p, size_t n)
{
	struct map_span s;

	while (n && (*p == ' ' || *p == '\t'))
		p++, n--;
	while (n && (p[n - 1] == ' ' || p[n - 1] == '\t'))
		n--;
	s.p = p;
	s.n = n;
	return s;
}

/* Reads one header line at *pos.  Returns 1 with name and value, 0 at the blank line ending a
 * block (consumed), -1 if malformed or out of input. */
static int cpim_line(const char *buf, size_t len, size_t *pos, struct map_span *name,
		     struct map_span *value)
{
	size_t start = *pos, end, colon;

	if (start >= len)
		return -1;
	for (end = start; end < len && buf[end] != '\n'; end++)
		;
	if (end == len)
		return -1;
	*pos = end + 1;
	if (end > start && buf[end - 1] == '\r')
		end--;
	if (end == start)
		return 0;
	if (buf[start] == ' ' || buf[start] == '\t')
		return -1;	/* no folding in CPIM (RFC 3862 3.3) */
	for (colon = start; colon < end && buf[colon] != ':'; colon++)
		if (buf[colon] == ' ' || (unsigned char)buf[colon] < 0x21)
			return -1;
	if (colon == end || colon == start)
		return -1;
	name->p = buf + start;
	name->n = colon - start;
	*value = span_trim(buf + colon + 1, end - colon - 1);
	return 1;
}

/* "text/plain; charset=utf-8" -> type span and unquoted charset span */
static void cpim_content_type(struct map_span v, struct map_cpim *out)
{
	size_t i = 0;

	while (i < v.n && v.p[i] != ';')
		i++;
	out->content_type = span_trim(v.p, i);
	while (i < v.n) {
		size_t start = ++i, eq;

		while (i < v.n && v.p[i] != ';')
			i++;
		for (eq = start; eq < i && v.p[eq] != '='; eq++)
			;
		if (eq < i && cpim_ieq(span_trim(v.p + start, eq - start), "charset")) {
			struct map_span c = span_trim(v.p + eq + 1, i - eq - 1);

			if (c.n >= 2 && c.p[0] == '"' && c.p[c.n - 1] == '"')
				c.p++, c.n -= 2;
			out->charset = c;
		}
	}
}

/* Non-zero if name is "<prefix>.<local>" for one of the prefixes; local gets the rest. */
static int cpim_prefixed(struct map_span name, const struct map_span *prefixes, size_t n,
			 struct map_span *local)
{
	for (size_t i = 0; i < n; i++) {
		size_t pl = prefixes[i].n;

		if (name.n > pl + 1 && name.p[pl] == '.' && memcmp(name.p, prefixes[i].p, pl) == 0) {
			local->p = name.p + pl + 1;
			local->n = name.n - pl - 1;
			return 1;
		}
	}
	return 0;
}

int map_cpim_parse(const char *buf, size_t len, struct map_cpim *out)
{
	size_t pos = 0;
	struct map_span name, value;
	int r;

	struct map_span imdn[CPIM_MAX_NS];	/* prefixes declared for urn:ietf:params:imdn */
	size_t nimdn = 0;

	memset(out, 0, sizeof(*out));
	/* message headers */
	while ((r = cpim_line(buf, len, &pos, &name, &value)) == 1) {
		struct map_span local;

		if (cpim_ieq(name, "ns")) {
			/* NS: prefix <uri> (RFC 3862 3.3.1): only the IMDN namespace is of interest */
			size_t sp = 0;

			while (sp < value.n && value.p[sp] != ' ' && value.p[sp] != '<')
				sp++;
			if (nimdn < CPIM_MAX_NS && sp &&
			    cpim_ieq(span_trim(value.p + sp, value.n - sp), "<urn:ietf:params:imdn>"))
				imdn[nimdn++] = span_trim(value.p, sp);
		} else if (cpim_prefixed(name, imdn, nimdn, &local)) {
			if (cpim_ieq(local, "message-id"))
				out->imdn_message_id = value;
			else if (cpim_ieq(local, "disposition-notification"))
				out->imdn_disposition = value;
		} else if (cpim_ieq(name, "from"))
			out->from = value;
		else if (cpim_ieq(name, "to"))
			out->to = value;
		else if (cpim_ieq(name, "datetime"))
			out->datetime = value;
		else if (cpim_ieq(name, "subject")) {
			struct map_span lang = { NULL, 0 };

			/* Subject:;lang=fr text */
			if (value.n && value.p[0] == ';') {
				size_t i = 1;

				while (i < value.n && value.p[i] != ' ')
					i++;
				if (i > 6 && strncmp(value.p + 1, "lang=", 5) == 0)
					lang = span_trim(value.p + 6, i - 6);
				value = span_trim(value.p + i, value.n - i);
			}
			/* the first Subject wins, and only its own language goes with it */
			if (!out->subject.p) {
				out->subject = value;
				out->subject_lang = lang;
			}
		} else if (cpim_ieq(name, "require")) {
			return -1;	/* no CPIM extension is implemented */
		}
	}
	if (r < 0)
		return -1;
	/* MIME headers of the encapsulated content */
	while ((r = cpim_line(buf, len, &pos, &name, &value)) == 1) {
		if (cpim_ieq(name, "content-type"))
			cpim_content_type(value, out);
		else if (cpim_ieq(name, "content-disposition"))
			out->content_disposition = value;
		else if (cpim_ieq(name, "content-encoding"))
			out->content_encoding = value;
	}
	if (r < 0 || !out->content_type.p)
		return -1;
	out->body.p = buf + pos;
	out->body.n = len - pos;
	return 0;
}

size_t map_header_text(const char *src, char *dst, size_t len)
{
	size_t n = 0, cut;

	if (!len)
		return 0;
	/* controls become spaces, so leading ones go with the leading spaces */
	while (*src && ((unsigned char)*src <= ' ' || *src == 0x7f))
		src++;
	for (; *src && n + 1 < len; src++)
		dst[n++] = ((unsigned char)*src < 0x20 || *src == 0x7f) ? ' ' : *src;
	/* never end inside a UTF-8 sequence, but keep a last one that is complete */
	if (*src) {
		cut = n;
		while (cut && ((unsigned char)dst[cut - 1] & 0xc0) == 0x80)
			cut--;
		if (cut && ((unsigned char)dst[cut - 1] & 0xc0) == 0xc0) {
			unsigned char lead = (unsigned char)dst[cut - 1];
			size_t need = lead >= 0xf0 ? 4 : lead >= 0xe0 ? 3 : 2;

			if (n - (cut - 1) < need)
				n = cut - 1;
		}
	}
	while (n && dst[n - 1] == ' ')
		n--;
	dst[n] = '\0';
	return n;
}

int map_lang_ok(const char *tag)
{
	size_t n = 0, sub = 0;

	if (!tag || !((*tag >= 'a' && *tag <= 'z') || (*tag >= 'A' && *tag <= 'Z')))
		return 0;
	for (const char *p = tag; *p; p++, n++) {
		if (*p == '-') {
			if (!sub || !p[1])
				return 0;
			sub = 0;
		} else if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
			   (*p >= '0' && *p <= '9')) {
			if (++sub > 8)
				return 0;
		} else {
			return 0;
		}
	}
	return n <= 35;
}

int map_call_id_ok(const char *s)
{
	/* RFC 3261 word characters */
	static const char extra[] = "-.!%*_+`'~()<>:\\\"/[]?{}";
	size_t n = 0;
	int at = 0;

	if (!s || !*s)
		return 0;
	for (const char *p = s; *p; p++, n++) {
		if (*p == '@') {
			if (at++ || p == s || !p[1])
				return 0;
		} else if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
			     (*p >= '0' && *p <= '9') || strchr(extra, *p))) {
			return 0;
		}
	}
	return n <= 128;
}

static const char *stanza_text(xmpp_stanza_t *el)
{
	xmpp_stanza_t *t = xmpp_stanza_get_children(el);
	const char *s = t && xmpp_stanza_is_text(t) ? xmpp_stanza_get_text_ptr(t) : NULL;

	return s ? s : "";
}

void map_im_fields(xmpp_stanza_t *message, struct map_im_fields *f)
{
	const char *msg_lang = xmpp_stanza_get_attribute(message, "xml:lang");
	xmpp_stanza_t *body = NULL, *subject = NULL;
	int body_match = 0, subject_match = 0;

	memset(f, 0, sizeof(*f));
	for (xmpp_stanza_t *c = xmpp_stanza_get_children(message); c; c = xmpp_stanza_get_next(c)) {
		const char *name, *ns, *lang;
		int match;

		if (!xmpp_stanza_is_tag(c))
			continue;
		name = xmpp_stanza_get_name(c);
		ns = xmpp_stanza_get_ns(c);
		lang = xmpp_stanza_get_attribute(c, "xml:lang");
		/* a child in the default namespace has no xmlns of its own */
		match = !lang || (msg_lang && strcmp(lang, msg_lang) == 0);
		if (!ns && strcmp(name, "body") == 0) {
			if (!body || (match && !body_match))
				body = c, body_match = match;
			/* several bodies with text in one of them: prefer the matching one */
		} else if (!ns && strcmp(name, "subject") == 0) {
			if (!subject || (match && !subject_match))
				subject = c, subject_match = match;
		} else if (!ns && strcmp(name, "thread") == 0) {
			f->thread = stanza_text(c);
		} else if (ns && strcmp(ns, NS_RECEIPTS) == 0 && strcmp(name, "request") == 0) {
			f->has_receipt_request = 1;
		} else if (ns && strcmp(ns, NS_RECEIPTS) == 0 && strcmp(name, "received") == 0) {
			f->received_id = xmpp_stanza_get_attribute(c, "id");
		} else if (ns && strcmp(ns, NS_CHATSTATES) == 0) {
			f->chatstate = name;
		} else if (ns && strcmp(ns, NS_MARKERS) == 0) {
			if (strcmp(name, "markable") == 0)
				f->markable = 1;
			else if (strcmp(name, "received") == 0)
				f->marker_received_id = xmpp_stanza_get_attribute(c, "id");
			else if (strcmp(name, "displayed") == 0 || strcmp(name, "acknowledged") == 0)
				f->displayed_id = xmpp_stanza_get_attribute(c, "id");
		}
	}
	if (body) {
		f->body = stanza_text(body);
		f->lang = xmpp_stanza_get_attribute(body, "xml:lang");
	}
	if (subject)
		f->subject = stanza_text(subject);
	if (!f->lang)
		f->lang = msg_lang;
}

xmpp_stanza_t *map_tag(xmpp_ctx_t *ctx, const char *name, const char *ns)
{
	xmpp_stanza_t *s = xmpp_stanza_new(ctx);

	if (!s || xmpp_stanza_set_name(s, name) != XMPP_EOK ||
	    (ns && xmpp_stanza_set_ns(s, ns) != XMPP_EOK))
		gw_fatal("map: out of memory");
	return s;
}

xmpp_stanza_t *map_child(xmpp_ctx_t *ctx, xmpp_stanza_t *parent, const char *name, const char *ns)
{
	xmpp_stanza_t *c = map_tag(ctx, name, ns);

	xmpp_stanza_add_child_ex(parent, c, 0);
	return c;
}

xmpp_stanza_t *map_text_child(xmpp_ctx_t *ctx, xmpp_stanza_t *parent, const char *name,
			      const char *text, size_t len)
{
	xmpp_stanza_t *c = map_child(ctx, parent, name, NULL), *t = xmpp_stanza_new(ctx);

	if (!t || xmpp_stanza_set_text_with_size(t, text, len) != XMPP_EOK)
		gw_fatal("map: out of memory");
	xmpp_stanza_add_child_ex(c, t, 0);
	return c;
}

xmpp_stanza_t *map_error_reply(xmpp_ctx_t *ctx, xmpp_stanza_t *stanza, const char *condition,
			       const char *text)
{
	xmpp_stanza_t *reply = xmpp_stanza_copy(stanza), *err, *cond;
	const char *from = xmpp_stanza_get_from(stanza), *to = xmpp_stanza_get_to(stanza);
	char *from_copy = from ? gw_xstrdup(from) : NULL, *to_copy = to ? gw_xstrdup(to) : NULL;

	if (!reply)
		gw_fatal("map: out of memory");
	xmpp_stanza_del_attribute(reply, "from");
	xmpp_stanza_del_attribute(reply, "to");
	if (from_copy)
		xmpp_stanza_set_to(reply, from_copy);
	if (to_copy)
		xmpp_stanza_set_from(reply, to_copy);
	free(from_copy);
	free(to_copy);
	xmpp_stanza_set_type(reply, "error");

	err = map_tag(ctx, "error", NULL);
	xmpp_stanza_set_attribute(err, "type", map_error_type(condition));
	cond = map_tag(ctx, condition, NS_STANZAS);
	xmpp_stanza_add_child_ex(err, cond, 0);
	if (text) {
		xmpp_stanza_t *t = map_tag(ctx, "text", NS_STANZAS), *tt = xmpp_stanza_new(ctx);

		if (!tt || xmpp_stanza_set_text(tt, text) != XMPP_EOK)
			gw_fatal("map: out of memory");
		xmpp_stanza_set_attribute(t, "xml:lang", "en");
		xmpp_stanza_add_child_ex(t, tt, 0);
		xmpp_stanza_add_child_ex(err, t, 0);
	}
	xmpp_stanza_add_child_ex(reply, err, 0);
	return reply;
}

/* ---- a chat message from SIP, written as text */

static void chat_add(struct xmpp_text *t, const char *s)
{
	xmpp_text_add(t, s, strlen(s));
}

static void chat_attr(struct xmpp_text *t, const char *name, const char *value)
{
	if (!value)
		return;
	xmpp_text_add(t, " ", 1);
	chat_add(t, name);
	xmpp_text_add(t, "='", 2);
	xmpp_text_attr(t, value);
	xmpp_text_add(t, "'", 1);
}

static void chat_child(struct xmpp_text *t, const char *name, const char *lang, const char *text,
		       size_t len)
{
	xmpp_text_add(t, "<", 1);
	chat_add(t, name);
	chat_attr(t, "xml:lang", lang);
	xmpp_text_add(t, ">", 1);
	xmpp_text_cdata(t, text, len);
	xmpp_text_add(t, "</", 2);
	chat_add(t, name);
	xmpp_text_add(t, ">", 1);
}

void map_chat_text(struct xmpp_text *t, const struct map_chat *m)
{
	chat_add(t, "<message");
	chat_attr(t, "type", m->type);
	chat_attr(t, "to", m->to);
	chat_attr(t, "id", m->id);
	chat_attr(t, "from", m->from);
	chat_attr(t, "xml:lang", m->lang);
	xmpp_text_add(t, ">", 1);
	if (m->subject && m->subject_len)
		chat_child(t, "subject", m->subject_lang, m->subject, m->subject_len);
	chat_child(t, "body", NULL, m->body, m->body_len);
	if (m->thread)
		chat_child(t, "thread", NULL, m->thread, strlen(m->thread));
	if (m->stamp) {
		chat_add(t, "<delay xmlns='" NS_DELAY "'");
		chat_attr(t, "stamp", m->stamp);
		chat_attr(t, "from", m->stamp_from);
		xmpp_text_add(t, "/>", 2);
	}
	if (m->receipt_request)
		chat_add(t, "<request xmlns='" NS_RECEIPTS "'/>");
	if (m->markable)
		chat_add(t, "<markable xmlns='" NS_MARKERS "'/>");
	chat_add(t, "</message>");
}
