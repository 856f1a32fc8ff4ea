/* rlmi.c - RLMI documents (RFC 4662 section 5) and multipart/related bodies (RFC 2387).
 *
 * Invariants:
 * - The RLMI grammar is the table `rl_elements`; anything else is skipped with its content
 *   (RFC 4662 lets other namespaces extend the document).
 * - Bounds: the caller's byte and resource limits, RLMI_MAX_INSTANCES per resource,
 *   RLMI_MAX_DEPTH nesting; a DOCTYPE or an entity is refused.
 * - The multipart splitter never copies: parts point into the caller's body.
 */
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../gateway/gw.h"
#include "pidf.h"
#include "rlmi.h"
#include "xmldoc.h"

#define NS_SEP XMLDOC_NS_SEP
#define RLMI_MAX_INSTANCES 16
#define RLMI_MAX_DEPTH 32
#define RLMI_MAX_NAME 1024

enum rl_el { RL_NONE, RL_ROOT, RL_LIST, RL_RESOURCE, RL_NAME, RL_INSTANCE, RL_SKIP };

static const struct {
	enum rl_el parent;
	const char *name;
	enum rl_el el;
} rl_elements[] = {
	{ RL_ROOT, "list", RL_LIST },
	{ RL_LIST, "resource", RL_RESOURCE },
	{ RL_LIST, "name", RL_SKIP },	/* the list's own names: not kept */
	{ RL_RESOURCE, "name", RL_NAME },
	{ RL_RESOURCE, "instance", RL_INSTANCE },
};

static const char *const state_names[] = {
	[RLMI_ACTIVE] = "active",
	[RLMI_PENDING] = "pending",
	[RLMI_TERMINATED] = "terminated",
};

const char *rlmi_state_name(enum rlmi_state s)
{
	return (unsigned)s < sizeof(state_names) / sizeof(state_names[0]) ? state_names[s] : "?";
}

/* ---------------------------------------------------------------- RLMI parsing */

struct rparser {
	struct xmldoc d;	/* first: the expat user data */
	struct rlmi_list *l;
	size_t max_resources;
	enum rl_el stack[RLMI_MAX_DEPTH + 2];
	char text[RLMI_MAX_NAME + 1];
	size_t tlen;
};

#define rfail(ps, ...) xmldoc_fail(&(ps)->d, __VA_ARGS__)

static enum rl_el rl_element(enum rl_el parent, const char *name)
{
	const char *local = xmldoc_local(name, RLMI_NS);

	if (!local)
		return RL_NONE;
	for (size_t i = 0; i < sizeof(rl_elements) / sizeof(rl_elements[0]); i++)
		if (rl_elements[i].parent == parent && strcmp(rl_elements[i].name, local) == 0)
			return rl_elements[i].el;
	return RL_NONE;
}

static void XMLCALL r_start(void *ud, const XML_Char *name, const XML_Char **attrs)
{
	struct rparser *ps = ud;
	enum rl_el parent = ps->stack[ps->d.depth], el;
	struct rlmi_resource *r = ps->l->nresources ? &ps->l->resources[ps->l->nresources - 1] : NULL;
	const char *v;

	if (xmldoc_start(&ps->d) < 0)
		return;
	el = rl_element(parent, name);
	ps->tlen = 0;
	switch (el) {
	case RL_NONE:
	case RL_SKIP:	/* skipped with its content */
		if (el == RL_NONE && parent == RL_ROOT) {
			rfail(ps, "the document element is not an RLMI <list>");
			return;
		}
		xmldoc_skip(&ps->d);
		el = RL_SKIP;
		break;
	case RL_LIST: {
		const char *full = xmldoc_attr(attrs, "fullState");

		if (!(v = xmldoc_attr(attrs, "uri")) || !*v) {
			rfail(ps, "<list> without a uri");
			return;
		}
		ps->l->uri = gw_xstrdup(v);
		if (xmldoc_ulong(xmldoc_attr(attrs, "version"), &ps->l->version) < 0) {
			rfail(ps, "<list> without a version (an unsigned integer)");
			return;
		}
		if (!full || (strcmp(full, "true") && strcmp(full, "false") && strcmp(full, "1") &&
			      strcmp(full, "0"))) {
			rfail(ps, "<list> fullState is not a boolean");
			return;
		}
		ps->l->full_state = !strcmp(full, "true") || !strcmp(full, "1");
		break;
	}
	case RL_RESOURCE:
		if (ps->l->nresources >= ps->max_resources) {
			rfail(ps, "more than %zu resources", ps->max_resources);
			return;
		}
		if (!(v = xmldoc_attr(attrs, "uri")) || !*v) {
			rfail(ps, "<resource> without a uri");
			return;
		}
		ps->l->resources = gw_xrealloc(ps->l->resources,
					       (ps->l->nresources + 1) * sizeof(*ps->l->resources));
		r = &ps->l->resources[ps->l->nresources++];
		memset(r, 0, sizeof(*r));
		r->uri = gw_xstrdup(v);
		break;
	case RL_INSTANCE: {
		struct rlmi_instance *in;
		const char *state = xmldoc_attr(attrs, "state"), *id = xmldoc_attr(attrs, "id");
		int s = -1;

		for (size_t i = 0; state && i < sizeof(state_names) / sizeof(state_names[0]); i++)
			if (strcmp(state, state_names[i]) == 0)
				s = (int)i;
		if (!id || s < 0) {
			rfail(ps, "<instance> needs an id and a state of active, pending or terminated");
			return;
		}
		if (r->ninstances >= RLMI_MAX_INSTANCES) {
			rfail(ps, "more than %d instances of one resource", RLMI_MAX_INSTANCES);
			return;
		}
		r->instances = gw_xrealloc(r->instances, (r->ninstances + 1) * sizeof(*r->instances));
		in = &r->instances[r->ninstances++];
		memset(in, 0, sizeof(*in));
		in->id = gw_xstrdup(id);
		in->state = (enum rlmi_state)s;
		if ((v = xmldoc_attr(attrs, "reason")))
			in->reason = gw_xstrdup(v);
		if ((v = xmldoc_attr(attrs, "cid")))
			in->cid = gw_xstrdup(v);
		break;
	}
	default:
		break;
	}
	ps->stack[++ps->d.depth] = el;
}

static void XMLCALL r_chars(void *ud, const XML_Char *s, int len)
{
	struct rparser *ps = ud;

	if (ps->d.failed || ps->d.skip || ps->stack[ps->d.depth] != RL_NAME)
		return;
	if (ps->tlen + (size_t)len > RLMI_MAX_NAME)
		len = (int)(RLMI_MAX_NAME - ps->tlen);	/* a name is kept cut */
	memcpy(ps->text + ps->tlen, s, (size_t)len);
	ps->tlen += (size_t)len;
}

static void XMLCALL r_end(void *ud, const XML_Char *name)
{
	struct rparser *ps = ud;
	struct rlmi_resource *r = ps->l->nresources ? &ps->l->resources[ps->l->nresources - 1] : NULL;

	if (xmldoc_end(&ps->d) < 0)
		return;
	if (ps->stack[ps->d.depth] == RL_NAME && r && !r->name) {
		ps->text[ps->tlen] = '\0';
		r->name = gw_xstrdup(ps->text);
	}
	ps->d.depth--;
}

int rlmi_parse(const char *doc, size_t len, size_t max_len, size_t max_resources,
	       struct rlmi_list **out, char *err, size_t errlen)
{
	struct rparser ps;

	*out = NULL;
	if (len > max_len || len > INT_MAX) {
		if (errlen)
			snprintf(err, errlen, "document of %zu bytes is larger than %zu", len, max_len);
		return -1;
	}
	static const struct xmldoc_handlers h = { r_start, r_end, r_chars };

	memset(&ps, 0, sizeof(ps));
	ps.d.err = err;
	ps.d.errlen = errlen;
	ps.d.max_depth = RLMI_MAX_DEPTH;
	ps.max_resources = max_resources;
	ps.l = gw_xcalloc(1, sizeof(*ps.l));
	ps.stack[0] = RL_ROOT;
	if (xmldoc_run(&ps.d, doc, len, &h) < 0) {
		rlmi_list_free(ps.l);
		return -1;
	}
	*out = ps.l;
	return 0;
}

void rlmi_list_free(struct rlmi_list *l)
{
	if (!l)
		return;
	for (size_t i = 0; i < l->nresources; i++) {
		struct rlmi_resource *r = &l->resources[i];

		for (size_t k = 0; k < r->ninstances; k++) {
			free(r->instances[k].id);
			free(r->instances[k].reason);
			free(r->instances[k].cid);
		}
		free(r->instances);
		free(r->uri);
		free(r->name);
	}
	free(l->resources);
	free(l->uri);
	free(l);
}

/* ---------------------------------------------------------------- building */

/* Writes s escaped (attr: for a double-quoted attribute value). */
static void put_esc(FILE *f, const char *s, int attr)
{
	char *e = pidf_escape(s, attr);

	fputs(e, f);
	free(e);
}

char *rlmi_build(const struct rlmi_list *l, size_t *len)
{
	char *p = NULL;
	size_t n = 0;
	FILE *f = open_memstream(&p, &n);

	if (!f)
		gw_fatal("rlmi_build: out of memory");
	fputs("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<list xmlns=\"" RLMI_NS "\" uri=\"", f);
	put_esc(f, l->uri, 1);
	fprintf(f, "\" version=\"%lu\" fullState=\"%s\">\n", l->version,
		l->full_state ? "true" : "false");
	for (size_t i = 0; i < l->nresources; i++) {
		const struct rlmi_resource *r = &l->resources[i];

		fputs(" <resource uri=\"", f);
		put_esc(f, r->uri, 1);
		fputs("\">", f);
		if (r->name) {
			fputs("<name>", f);
			put_esc(f, r->name, 0);
			fputs("</name>", f);
		}
		for (size_t k = 0; k < r->ninstances; k++) {
			const struct rlmi_instance *in = &r->instances[k];

			fputs("<instance id=\"", f);
			put_esc(f, in->id, 1);
			fprintf(f, "\" state=\"%s", rlmi_state_name(in->state));
			if (in->reason) {
				fputs("\" reason=\"", f);
				put_esc(f, in->reason, 1);
			}
			if (in->cid) {
				fputs("\" cid=\"", f);
				put_esc(f, in->cid, 1);
			}
			fputs("\"/>", f);
		}
		fputs("</resource>\n", f);
	}
	fputs("</list>\n", f);
	if (fclose(f) != 0 || !p)
		gw_fatal("rlmi_build: out of memory");
	if (len)
		*len = n;
	return p;
}

/* ---------------------------------------------------------------- multipart/related */

/* The value of parameter `name` in a Content-Type value (quoted or token), into buf. */
static int ct_param(const char *ct, const char *name, char *buf, size_t cap)
{
	size_t nl = strlen(name);
	const char *p = strchr(ct, ';');

	while (p) {
		p++;
		while (*p == ' ' || *p == '\t')
			p++;
		if (!strncasecmp(p, name, nl) && (p[nl] == '=' || p[nl] == ' ')) {
			size_t n = 0;

			p += nl;
			while (*p == ' ')
				p++;
			if (*p++ != '=')
				return -1;
			while (*p == ' ')
				p++;
			if (*p == '"') {
				for (p++; *p && *p != '"'; p++) {
					if (*p == '\\' && p[1])
						p++;
					if (n + 1 >= cap)
						return -1;
					buf[n++] = *p;
				}
				if (*p != '"')
					return -1;
			} else {
				for (; *p && *p != ';' && *p != ' ' && *p != '\t'; p++) {
					if (n + 1 >= cap)
						return -1;
					buf[n++] = *p;
				}
			}
			buf[n] = '\0';
			return n ? 0 : -1;
		}
		p = strchr(p, ';');
	}
	return -1;
}

static const char *mem_find(const char *h, size_t hl, const char *n, size_t nl)
{
	if (nl == 0 || hl < nl)
		return NULL;
	for (const char *p = h; p + nl <= h + hl; p++) {
		p = memchr(p, n[0], (size_t)(h + hl - p));
		if (!p || p + nl > h + hl)
			return NULL;
		if (!memcmp(p, n, nl))
			return p;
	}
	return NULL;
}

static int set_err(char *err, size_t errlen, const char *msg)
{
	if (errlen)
		snprintf(err, errlen, "%s", msg);
	return -1;
}

/* Headers of one part: Content-Type and Content-ID (folded lines are not accepted). */
static int part_headers(const char *h, size_t hl, struct rlmi_part *part)
{
	const char *p = h, *end = h + hl;

	while (p < end) {
		const char *eol = mem_find(p, (size_t)(end - p), "\r\n", 2), *colon, *v, *ve;

		if (!eol)
			eol = end;
		colon = memchr(p, ':', (size_t)(eol - p));
		if (!colon)
			return -1;
		for (v = colon + 1; v < eol && (*v == ' ' || *v == '\t'); v++)
			;
		for (ve = eol; ve > v && (ve[-1] == ' ' || ve[-1] == '\t'); ve--)
			;
		if ((size_t)(colon - p) == 12 && !strncasecmp(p, "Content-Type", 12)) {
			part->content_type = v;
			part->ct_len = (size_t)(ve - v);
		} else if ((size_t)(colon - p) == 10 && !strncasecmp(p, "Content-ID", 10)) {
			if (ve - v >= 2 && *v == '<' && ve[-1] == '>') {
				v++;
				ve--;
			}
			part->content_id = v;
			part->cid_len = (size_t)(ve - v);
		}
		p = eol + 2;
	}
	return 0;
}

int rlmi_multipart_split(const char *content_type, const char *body, size_t len, size_t max_parts,
			 struct rlmi_part **parts, size_t *root, char *err, size_t errlen)
{
	char boundary[128], delim[132], start[256];
	size_t dl, n = 0;
	const char *p, *next;
	struct rlmi_part *out = NULL;

	*parts = NULL;
	*root = 0;
	if (!content_type || strncasecmp(content_type, "multipart/related", 17))
		return set_err(err, errlen, "not multipart/related");
	if (ct_param(content_type, "boundary", boundary, sizeof(boundary)) < 0)
		return set_err(err, errlen, "multipart/related without a boundary (1..70 characters)");
	dl = (size_t)snprintf(delim, sizeof(delim), "--%s", boundary);
	/* the first delimiter: at the start of the body or after a CRLF (a preamble) */
	if (len >= dl && !memcmp(body, delim, dl)) {
		p = body;
	} else {
		char crlfd[134];
		size_t cl = (size_t)snprintf(crlfd, sizeof(crlfd), "\r\n%s", delim);

		p = mem_find(body, len, crlfd, cl);
		if (!p)
			return set_err(err, errlen, "no boundary delimiter in the body");
		p += 2;
	}
	for (;;) {
		const char *after = p + dl, *hend, *bstart;
		struct rlmi_part part;
		char crlfd[134];
		size_t cl;

		if ((size_t)(body + len - after) >= 2 && after[0] == '-' && after[1] == '-')
			break;	/* the close delimiter */
		/* transport padding, then CRLF */
		while (after < body + len && (*after == ' ' || *after == '\t'))
			after++;
		if ((size_t)(body + len - after) < 2 || after[0] != '\r' || after[1] != '\n')
			goto bad;
		after += 2;
		if ((size_t)(body + len - after) >= 2 && after[0] == '\r' && after[1] == '\n') {
			hend = after;	/* no headers */
			bstart = after + 2;
		} else if ((hend = mem_find(after, (size_t)(body + len - after), "\r\n\r\n", 4))) {
			bstart = hend + 4;
		} else {
			goto bad;
		}
		cl = (size_t)snprintf(crlfd, sizeof(crlfd), "\r\n%s", delim);
		next = mem_find(bstart, (size_t)(body + len - bstart), crlfd, cl);
		if (!next) {
			free(out);
			return set_err(err, errlen, "a part without the delimiter after it");
		}
		memset(&part, 0, sizeof(part));
		if (part_headers(after, (size_t)(hend - after), &part) < 0)
			goto bad;
		part.body = bstart;
		part.body_len = (size_t)(next - bstart);
		if (n >= max_parts) {
			free(out);
			if (errlen)
				snprintf(err, errlen, "more than %zu parts", max_parts);
			return -1;
		}
		out = gw_xrealloc(out, (n + 1) * sizeof(*out));
		out[n++] = part;
		p = next + 2;
	}
	if (!n) {
		free(out);
		return set_err(err, errlen, "multipart/related without parts");
	}
	if (ct_param(content_type, "start", start, sizeof(start)) == 0) {
		const char *s = start;
		size_t sl = strlen(s);
		int found = 0;

		if (sl >= 2 && s[0] == '<' && s[sl - 1] == '>') {
			s++;
			sl -= 2;
		}
		for (size_t i = 0; i < n && !found; i++)
			if (out[i].content_id && out[i].cid_len == sl &&
			    !memcmp(out[i].content_id, s, sl)) {
				*root = i;
				found = 1;
			}
		if (!found) {
			free(out);
			return set_err(err, errlen, "no part has the Content-ID named by start");
		}
	}
	*parts = out;
	return (int)n;

bad:
	free(out);
	return set_err(err, errlen, "malformed multipart body (part headers)");
}

/* Non-zero if the boundary delimiter "--b" occurs in any part. */
static int boundary_clashes(const char *b, const struct rlmi_part *parts, size_t nparts)
{
	size_t bl = strlen(b);

	for (size_t i = 0; i < nparts; i++)
		for (size_t k = 0; k + bl + 2 <= parts[i].body_len; k++)
			if (parts[i].body[k] == '-' && parts[i].body[k + 1] == '-' &&
			    memcmp(parts[i].body + k + 2, b, bl) == 0)
				return 1;
	return 0;
}

char *rlmi_multipart_build(const struct rlmi_part *parts, size_t nparts, char **content_type,
			   size_t *len)
{
	char boundary[48], *p = NULL;
	size_t n = 0;
	uint64_t salt = 0;
	FILE *f;

	for (;;) {
		uint64_t h = salt++;

		for (size_t i = 0; i < nparts; i++)
			h ^= gw_hash64(parts[i].body, parts[i].body_len) + i;
		snprintf(boundary, sizeof(boundary), "simplegw-%016llx", (unsigned long long)h);
		if (!boundary_clashes(boundary, parts, nparts))
			break;
	}
	if (!(f = open_memstream(&p, &n)))
		gw_fatal("rlmi_multipart_build: out of memory");
	for (size_t i = 0; i < nparts; i++) {
		fprintf(f, "--%s\r\nContent-Transfer-Encoding: binary\r\nContent-ID: <%.*s>\r\n"
			"Content-Type: %.*s\r\n\r\n", boundary, (int)parts[i].cid_len,
			parts[i].content_id, (int)parts[i].ct_len, parts[i].content_type);
		fwrite(parts[i].body, 1, parts[i].body_len, f);
		fputs("\r\n", f);
	}
	fprintf(f, "--%s--\r\n", boundary);
	if (fclose(f) != 0)
		gw_fatal("rlmi_multipart_build: out of memory");
	*content_type = gw_xasprintf("multipart/related;type=\"" RLMI_CT "\";start=\"<%.*s>\";"
				     "boundary=\"%s\"", nparts ? (int)parts[0].cid_len : 0,
				     nparts ? parts[0].content_id : "", boundary);
	if (len)
		*len = n;
	return p;
}
