/* confinfo.c - conference-info documents (RFC 4575): parse, merge into a room, build.
 *
 * Invariants:
 * - The grammar is the table `ci_elements`; anything else is skipped with its content (RFC 4575
 *   lets other namespaces extend every element).  Values are tables too (the *_names arrays).
 * - Bounds: the caller's byte and user limits, CONFINFO_MAX_ENDPOINTS per user,
 *   CONFINFO_MAX_MEDIA per endpoint, CI_MAX_DEPTH nesting, CI_MAX_TEXT bytes of text; a DOCTYPE,
 *   an entity or bytes that are not UTF-8 are refused.
 * - Keys (user entity, endpoint entity, media id) are unique at their level in a parsed model,
 *   which is what lets confinfo_merge() find the element an update speaks of.
 * - confinfo_merge() works on a copy and swaps it in only on success: a refused update leaves
 *   the room as it was.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../gateway/gw.h"
#include "confinfo.h"
#include "map.h"
#include "pidf.h"
#include "xmldoc.h"

#define NS_SEP XMLDOC_NS_SEP
#define CI_MAX_DEPTH 32
#define CI_MAX_TEXT 1024

#define NELEMS(a) (sizeof(a) / sizeof((a)[0]))

/* ---------------------------------------------------------------- tables */

static const char *const state_names[] = {
	[CONFINFO_FULL] = "full",
	[CONFINFO_PARTIAL] = "partial",
	[CONFINFO_DELETED] = "deleted",
};

static const char *const status_names[] = {
	[CONFINFO_STATUS_NONE] = NULL,
	[CONFINFO_PENDING] = "pending",
	[CONFINFO_DIALING_OUT] = "dialing-out",
	[CONFINFO_DIALING_IN] = "dialing-in",
	[CONFINFO_ALERTING] = "alerting",
	[CONFINFO_ON_HOLD] = "on-hold",
	[CONFINFO_CONNECTED] = "connected",
	[CONFINFO_MUTED_VIA_FOCUS] = "muted-via-focus",
	[CONFINFO_DISCONNECTING] = "disconnecting",
	[CONFINFO_DISCONNECTED] = "disconnected",
};

static const char *const joining_names[] = {
	[CONFINFO_JOIN_NONE] = NULL,
	[CONFINFO_DIALED_IN] = "dialed-in",
	[CONFINFO_DIALED_OUT] = "dialed-out",
	[CONFINFO_FOCUS_OWNER] = "focus-owner",
};

static const char *const disconnection_names[] = {
	[CONFINFO_DISC_NONE] = NULL,
	[CONFINFO_DEPARTED] = "departed",
	[CONFINFO_BOOTED] = "booted",
	[CONFINFO_FAILED] = "failed",
	[CONFINFO_BUSY] = "busy",
};

#define NAME_OF(table, v) ((unsigned)(v) < NELEMS(table) ? (table)[v] : NULL)

const char *confinfo_state_name(enum confinfo_state s)
{
	return NAME_OF(state_names, s);
}

const char *confinfo_status_name(enum confinfo_status s)
{
	return NAME_OF(status_names, s);
}

const char *confinfo_joining_name(enum confinfo_joining j)
{
	return NAME_OF(joining_names, j);
}

const char *confinfo_disconnection_name(enum confinfo_disconnection d)
{
	return NAME_OF(disconnection_names, d);
}

/* The index of name in table (index 0, the NONE value, for an unknown or NULL name). */
static int value_of(const char *const *table, size_t n, const char *name)
{
	for (size_t i = 0; name && i < n; i++)
		if (table[i] && strcmp(table[i], name) == 0)
			return (int)i;
	return 0;
}

enum ci_el {
	CI_NONE, CI_ROOT, CI_CONF, CI_DESC, CI_SUBJECT, CI_USERS, CI_USER, CI_USER_TEXT,
	CI_ENDPOINT, CI_EP_TEXT, CI_STATUS, CI_JOINING, CI_DISCONNECTION, CI_MEDIA, CI_MEDIA_TYPE,
	CI_SKIP,
};

static const struct {
	enum ci_el parent;
	const char *name;
	enum ci_el el;
} ci_elements[] = {
	{ CI_ROOT, "conference-info", CI_CONF },
	{ CI_CONF, "conference-description", CI_DESC },
	{ CI_DESC, "subject", CI_SUBJECT },
	{ CI_CONF, "users", CI_USERS },
	{ CI_USERS, "user", CI_USER },
	{ CI_USER, "display-text", CI_USER_TEXT },
	{ CI_USER, "endpoint", CI_ENDPOINT },
	{ CI_ENDPOINT, "display-text", CI_EP_TEXT },
	{ CI_ENDPOINT, "status", CI_STATUS },
	{ CI_ENDPOINT, "joining-method", CI_JOINING },
	{ CI_ENDPOINT, "disconnection-method", CI_DISCONNECTION },
	{ CI_ENDPOINT, "media", CI_MEDIA },
	{ CI_MEDIA, "type", CI_MEDIA_TYPE },
};

/* ---------------------------------------------------------------- freeing and copying */

static void media_clear(struct confinfo_media *m)
{
	free(m->id);
	free(m->type);
	memset(m, 0, sizeof(*m));
}

static void endpoint_clear(struct confinfo_endpoint *e)
{
	for (size_t i = 0; i < e->nmedia; i++)
		media_clear(&e->media[i]);
	free(e->media);
	free(e->entity);
	free(e->display_text);
	memset(e, 0, sizeof(*e));
}

static void user_clear(struct confinfo_user *u)
{
	for (size_t i = 0; i < u->nendpoints; i++)
		endpoint_clear(&u->endpoints[i]);
	free(u->endpoints);
	free(u->entity);
	free(u->display_text);
	memset(u, 0, sizeof(*u));
}

static void users_clear(struct confinfo *c)
{
	for (size_t i = 0; i < c->nusers; i++)
		user_clear(&c->users[i]);
	free(c->users);
	c->users = NULL;
	c->nusers = 0;
}

void confinfo_free(struct confinfo *c)
{
	if (!c)
		return;
	users_clear(c);
	free(c->entity);
	free(c->subject);
	free(c);
}

static char *dup_or_null(const char *s)
{
	return s ? gw_xstrdup(s) : NULL;
}

static void media_copy(struct confinfo_media *dst, const struct confinfo_media *src)
{
	*dst = *src;
	dst->id = dup_or_null(src->id);
	dst->type = dup_or_null(src->type);
}

static void endpoint_copy(struct confinfo_endpoint *dst, const struct confinfo_endpoint *src)
{
	*dst = *src;
	dst->entity = dup_or_null(src->entity);
	dst->display_text = dup_or_null(src->display_text);
	dst->media = src->nmedia ? gw_xcalloc(src->nmedia, sizeof(*dst->media)) : NULL;
	for (size_t i = 0; i < src->nmedia; i++)
		media_copy(&dst->media[i], &src->media[i]);
}

static void user_copy(struct confinfo_user *dst, const struct confinfo_user *src)
{
	*dst = *src;
	dst->entity = dup_or_null(src->entity);
	dst->display_text = dup_or_null(src->display_text);
	dst->endpoints = src->nendpoints ? gw_xcalloc(src->nendpoints, sizeof(*dst->endpoints))
					 : NULL;
	for (size_t i = 0; i < src->nendpoints; i++)
		endpoint_copy(&dst->endpoints[i], &src->endpoints[i]);
}

struct confinfo *confinfo_copy(const struct confinfo *c)
{
	struct confinfo *n;

	if (!c)
		return NULL;
	n = gw_xmalloc(sizeof(*n));
	*n = *c;
	n->entity = dup_or_null(c->entity);
	n->subject = dup_or_null(c->subject);
	n->users = c->nusers ? gw_xcalloc(c->nusers, sizeof(*n->users)) : NULL;
	for (size_t i = 0; i < c->nusers; i++)
		user_copy(&n->users[i], &c->users[i]);
	return n;
}

/* ---------------------------------------------------------------- parsing */

struct cparser {
	struct xmldoc d;	/* first: the expat user data */
	struct confinfo *c;
	size_t max_users;
	enum ci_el stack[CI_MAX_DEPTH + 2];
	char text[CI_MAX_TEXT + 1];
	size_t tlen;
	int cut;		/* the text reached CI_MAX_TEXT */
};

#define cfail(ps, ...) xmldoc_fail(&(ps)->d, __VA_ARGS__)

static enum ci_el ci_element(enum ci_el parent, const char *name)
{
	const char *local = xmldoc_local(name, CONFINFO_NS);

	if (!local)
		return CI_NONE;
	for (size_t i = 0; i < NELEMS(ci_elements); i++)
		if (ci_elements[i].parent == parent && strcmp(ci_elements[i].name, local) == 0)
			return ci_elements[i].el;
	return CI_NONE;
}

/* The state attribute (absent: def); -1 and the parse failed if it is not one of the three. */
static int state_attr(struct cparser *ps, const XML_Char **attrs, enum confinfo_state def,
		      const char *what, enum confinfo_state *out)
{
	const char *v = xmldoc_attr(attrs, "state");

	*out = def;
	if (!v)
		return 0;
	for (size_t i = 0; i < NELEMS(state_names); i++)
		if (strcmp(v, state_names[i]) == 0) {
			*out = (enum confinfo_state)i;
			return 0;
		}
	cfail(ps, "<%s> state is not full, partial or deleted", what);
	return -1;
}

/* The key attribute of an element (a non-empty string); NULL and the parse failed if absent. */
static const char *key_attr(struct cparser *ps, const XML_Char **attrs, const char *key,
			    const char *what)
{
	const char *v = xmldoc_attr(attrs, key);

	if (!v || !*v) {
		cfail(ps, "<%s> without %s", what, key);
		return NULL;
	}
	return v;
}

static struct confinfo_user *cur_user(struct cparser *ps)
{
	return ps->c->nusers ? &ps->c->users[ps->c->nusers - 1] : NULL;
}

static struct confinfo_endpoint *cur_endpoint(struct cparser *ps)
{
	struct confinfo_user *u = cur_user(ps);

	return u && u->nendpoints ? &u->endpoints[u->nendpoints - 1] : NULL;
}

static int start_conf(struct cparser *ps, const XML_Char **attrs)
{
	const char *v = key_attr(ps, attrs, "entity", "conference-info");

	if (!v)
		return -1;
	ps->c->entity = gw_xstrdup(v);
	if (xmldoc_ulong(xmldoc_attr(attrs, "version"), &ps->c->version) < 0) {
		cfail(ps, "<conference-info> without a version (an unsigned integer)");
		return -1;
	}
	return state_attr(ps, attrs, CONFINFO_FULL, "conference-info", &ps->c->state);
}

static int start_user(struct cparser *ps, const XML_Char **attrs)
{
	struct confinfo *c = ps->c;
	struct confinfo_user *u;
	const char *v = key_attr(ps, attrs, "entity", "user");
	enum confinfo_state st;

	if (!v || state_attr(ps, attrs, CONFINFO_FULL, "user", &st) < 0)
		return -1;
	if (c->nusers >= ps->max_users) {
		cfail(ps, "more than %zu users", ps->max_users);
		return -1;
	}
	for (size_t i = 0; i < c->nusers; i++)
		if (strcmp(c->users[i].entity, v) == 0) {
			cfail(ps, "user %s listed twice", v);
			return -1;
		}
	c->users = gw_xrealloc(c->users, (c->nusers + 1) * sizeof(*c->users));
	u = &c->users[c->nusers++];
	memset(u, 0, sizeof(*u));
	u->entity = gw_xstrdup(v);
	u->state = st;
	return 0;
}

static int start_endpoint(struct cparser *ps, const XML_Char **attrs)
{
	struct confinfo_user *u = cur_user(ps);
	struct confinfo_endpoint *e;
	const char *v = key_attr(ps, attrs, "entity", "endpoint");
	enum confinfo_state st;

	if (!v || state_attr(ps, attrs, CONFINFO_FULL, "endpoint", &st) < 0)
		return -1;
	if (u->nendpoints >= CONFINFO_MAX_ENDPOINTS) {
		cfail(ps, "more than %d endpoints of one user", CONFINFO_MAX_ENDPOINTS);
		return -1;
	}
	for (size_t i = 0; i < u->nendpoints; i++)
		if (strcmp(u->endpoints[i].entity, v) == 0) {
			cfail(ps, "endpoint %s listed twice", v);
			return -1;
		}
	u->endpoints = gw_xrealloc(u->endpoints, (u->nendpoints + 1) * sizeof(*u->endpoints));
	e = &u->endpoints[u->nendpoints++];
	memset(e, 0, sizeof(*e));
	e->entity = gw_xstrdup(v);
	e->state = st;
	return 0;
}

static int start_media(struct cparser *ps, const XML_Char **attrs)
{
	struct confinfo_endpoint *e = cur_endpoint(ps);
	struct confinfo_media *m;
	const char *v = key_attr(ps, attrs, "id", "media");
	enum confinfo_state st;

	if (!v || state_attr(ps, attrs, CONFINFO_FULL, "media", &st) < 0)
		return -1;
	if (e->nmedia >= CONFINFO_MAX_MEDIA) {
		cfail(ps, "more than %d media of one endpoint", CONFINFO_MAX_MEDIA);
		return -1;
	}
	for (size_t i = 0; i < e->nmedia; i++)
		if (strcmp(e->media[i].id, v) == 0) {
			cfail(ps, "media %s listed twice", v);
			return -1;
		}
	e->media = gw_xrealloc(e->media, (e->nmedia + 1) * sizeof(*e->media));
	m = &e->media[e->nmedia++];
	memset(m, 0, sizeof(*m));
	m->id = gw_xstrdup(v);
	m->state = st;
	return 0;
}

static void XMLCALL c_start(void *ud, const XML_Char *name, const XML_Char **attrs)
{
	struct cparser *ps = ud;
	enum ci_el parent = ps->stack[ps->d.depth], el;
	int r = 0;

	if (xmldoc_start(&ps->d) < 0)
		return;
	el = ci_element(parent, name);
	switch (el) {
	case CI_NONE:
	case CI_SKIP:
		if (parent == CI_ROOT) {
			cfail(ps, "the document element is not a <conference-info> of %s", CONFINFO_NS);
			return;
		}
		xmldoc_skip(&ps->d);
		el = CI_SKIP;
		break;
	case CI_CONF:
		r = start_conf(ps, attrs);
		break;
	case CI_USERS:
		ps->c->has_users = 1;
		r = state_attr(ps, attrs, CONFINFO_FULL, "users", &ps->c->users_state);
		break;
	case CI_USER:
		r = start_user(ps, attrs);
		break;
	case CI_ENDPOINT:
		r = start_endpoint(ps, attrs);
		break;
	case CI_MEDIA:
		r = start_media(ps, attrs);
		break;
	default:
		break;
	}
	if (r < 0)
		return;
	if (el != CI_SKIP) {	/* text around a skipped extension still counts */
		ps->tlen = 0;
		ps->cut = 0;
	}
	ps->stack[++ps->d.depth] = el;
}

static void XMLCALL c_chars(void *ud, const XML_Char *s, int len)
{
	struct cparser *ps = ud;
	size_t n = (size_t)len;

	if (ps->d.failed || ps->d.skip || ps->d.depth == 0)
		return;
	switch (ps->stack[ps->d.depth]) {
	case CI_SUBJECT: case CI_USER_TEXT: case CI_EP_TEXT: case CI_STATUS: case CI_JOINING:
	case CI_DISCONNECTION: case CI_MEDIA_TYPE:
		break;
	default:
		return;
	}
	if (ps->cut)
		return;
	if (ps->tlen + n > CI_MAX_TEXT) {
		/* a text is kept cut, at a character boundary, and nothing after the cut */
		n = CI_MAX_TEXT - ps->tlen;
		while (n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80)
			n--;
		ps->cut = 1;
	}
	memcpy(ps->text + ps->tlen, s, n);
	ps->tlen += n;
}

/* The text collected, with leading and trailing XML white space removed (for token values). */
static char *trimmed(struct cparser *ps)
{
	char *p = ps->text, *e = ps->text + ps->tlen;

	while (p < e && (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n'))
		p++;
	while (e > p && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r' || e[-1] == '\n'))
		e--;
	*e = '\0';
	return p;
}

static void set_text(char **dst, const char *text)
{
	free(*dst);
	*dst = gw_xstrdup(text);
}

static void XMLCALL c_end(void *ud, const XML_Char *name)
{
	struct cparser *ps = ud;
	struct confinfo_user *u = cur_user(ps);
	struct confinfo_endpoint *e = cur_endpoint(ps);

	if (xmldoc_end(&ps->d) < 0)
		return;
	ps->text[ps->tlen] = '\0';
	switch (ps->stack[ps->d.depth]) {
	case CI_SUBJECT:
		set_text(&ps->c->subject, ps->text);
		break;
	case CI_USER_TEXT:
		set_text(&u->display_text, ps->text);
		break;
	case CI_EP_TEXT:
		set_text(&e->display_text, ps->text);
		break;
	case CI_STATUS:
		e->status = (enum confinfo_status)value_of(status_names, NELEMS(status_names),
							   trimmed(ps));
		break;
	case CI_JOINING:
		e->joining = (enum confinfo_joining)value_of(joining_names, NELEMS(joining_names),
							     trimmed(ps));
		break;
	case CI_DISCONNECTION:
		e->disconnection = (enum confinfo_disconnection)value_of(
			disconnection_names, NELEMS(disconnection_names), trimmed(ps));
		break;
	case CI_MEDIA_TYPE:
		set_text(&e->media[e->nmedia - 1].type, trimmed(ps));
		break;
	default:
		break;
	}
	ps->tlen = 0;
	ps->cut = 0;
	ps->d.depth--;
}

static int set_err(char *err, size_t errlen, const char *msg)
{
	if (errlen)
		snprintf(err, errlen, "%s", msg);
	return -1;
}

int confinfo_parse(const char *doc, size_t len, size_t max_len, size_t max_users,
		   struct confinfo **out, char *err, size_t errlen)
{
	static const struct xmldoc_handlers h = { c_start, c_end, c_chars };
	struct cparser ps;
	int r;

	*out = NULL;
	if (len > max_len || len > INT_MAX) {
		if (errlen)
			snprintf(err, errlen, "document of %zu bytes is larger than %zu", len, max_len);
		return -1;
	}
	r = map_text_check(doc, len);
	if (r == MAP_TEXT_EUTF8)
		return set_err(err, errlen, "document is not UTF-8");
	if (r != 0)
		return set_err(err, errlen, "document holds a character XML does not allow");
	memset(&ps, 0, sizeof(ps));
	ps.d.err = err;
	ps.d.errlen = errlen;
	ps.d.max_depth = CI_MAX_DEPTH;
	ps.max_users = max_users;
	ps.c = gw_xcalloc(1, sizeof(*ps.c));
	ps.c->max_users = max_users;
	ps.stack[0] = CI_ROOT;
	if (xmldoc_run(&ps.d, doc, len, &h) < 0) {
		confinfo_free(ps.c);
		return -1;
	}
	if (!ps.c->entity) {	/* defensive: a parse without a root does not succeed */
		confinfo_free(ps.c);
		return set_err(err, errlen, "no <conference-info>");
	}
	*out = ps.c;
	return 0;
}

/* ---------------------------------------------------------------- merging (RFC 4575 4.6) */

/* Text fields: an update's NULL keeps the old value. */
static void merge_text(char **dst, const char *src)
{
	if (src)
		set_text(dst, src);
}

static void merge_media(struct confinfo_endpoint *e, const struct confinfo_media *m)
{
	size_t i;

	for (i = 0; i < e->nmedia && strcmp(e->media[i].id, m->id); i++)
		;
	if (m->state == CONFINFO_DELETED) {
		if (i < e->nmedia) {
			media_clear(&e->media[i]);
			e->media[i] = e->media[--e->nmedia];
		}
		return;
	}
	if (i == e->nmedia) {	/* the caller checked the bound */
		e->media = gw_xrealloc(e->media, (e->nmedia + 1) * sizeof(*e->media));
		media_copy(&e->media[e->nmedia++], m);
	} else if (m->state == CONFINFO_FULL) {
		media_clear(&e->media[i]);
		media_copy(&e->media[i], m);
	} else {
		merge_text(&e->media[i].type, m->type);
	}
	e->media[i].state = CONFINFO_FULL;
}

/* An update's endpoint e into user u: a new one is added, a full one replaces the old, a
 * partial one changes only what it says. */
static int merge_endpoint(struct confinfo_user *u, const struct confinfo_endpoint *e,
			  char *err, size_t errlen)
{
	struct confinfo_endpoint *dst;
	size_t i;

	for (i = 0; i < u->nendpoints && strcmp(u->endpoints[i].entity, e->entity); i++)
		;
	if (e->state == CONFINFO_DELETED) {
		if (i < u->nendpoints) {
			endpoint_clear(&u->endpoints[i]);
			u->endpoints[i] = u->endpoints[--u->nendpoints];
		}
		return 0;
	}
	if (i == u->nendpoints) {
		if (u->nendpoints >= CONFINFO_MAX_ENDPOINTS)
			return set_err(err, errlen, "the merge would give a user too many endpoints");
		u->endpoints = gw_xrealloc(u->endpoints, (u->nendpoints + 1) * sizeof(*u->endpoints));
		dst = &u->endpoints[u->nendpoints++];
		memset(dst, 0, sizeof(*dst));
		dst->entity = gw_xstrdup(e->entity);
	} else {
		dst = &u->endpoints[i];
		if (e->state == CONFINFO_FULL) {
			char *entity = dst->entity;

			dst->entity = NULL;
			endpoint_clear(dst);
			dst->entity = entity;
		}
	}
	dst->state = CONFINFO_FULL;
	merge_text(&dst->display_text, e->display_text);
	if (e->status != CONFINFO_STATUS_NONE)
		dst->status = e->status;
	if (e->joining != CONFINFO_JOIN_NONE)
		dst->joining = e->joining;
	if (e->disconnection != CONFINFO_DISC_NONE)
		dst->disconnection = e->disconnection;
	for (size_t k = 0; k < e->nmedia; k++) {
		int found = 0;

		for (size_t j = 0; j < dst->nmedia && !found; j++)
			found = strcmp(dst->media[j].id, e->media[k].id) == 0;
		if (!found && e->media[k].state != CONFINFO_DELETED &&
		    dst->nmedia >= CONFINFO_MAX_MEDIA)
			return set_err(err, errlen, "the merge would give an endpoint too many media");
		merge_media(dst, &e->media[k]);
	}
	return 0;
}

/* An update's user u into the room, the same way; users_state is the <users> container's. */
static int merge_user(struct confinfo *room, const struct confinfo_user *u,
		      enum confinfo_state users_state, char *err, size_t errlen)
{
	struct confinfo_user *dst;
	enum confinfo_state st = users_state == CONFINFO_DELETED ? CONFINFO_DELETED : u->state;
	size_t i;

	for (i = 0; i < room->nusers && strcmp(room->users[i].entity, u->entity); i++)
		;
	if (st == CONFINFO_DELETED) {
		if (i < room->nusers) {
			user_clear(&room->users[i]);
			room->users[i] = room->users[--room->nusers];
		}
		return 0;
	}
	if (i == room->nusers) {
		if (room->max_users && room->nusers >= room->max_users)
			return set_err(err, errlen, "the merge would give the room too many users");
		room->users = gw_xrealloc(room->users, (room->nusers + 1) * sizeof(*room->users));
		dst = &room->users[room->nusers++];
		memset(dst, 0, sizeof(*dst));
		dst->entity = gw_xstrdup(u->entity);
	} else {
		dst = &room->users[i];
		if (st == CONFINFO_FULL) {
			char *entity = dst->entity;

			dst->entity = NULL;
			user_clear(dst);
			dst->entity = entity;
		}
	}
	dst->state = CONFINFO_FULL;
	merge_text(&dst->display_text, u->display_text);
	for (size_t k = 0; k < u->nendpoints; k++)
		if (merge_endpoint(dst, &u->endpoints[k], err, errlen) < 0)
			return -1;
	return 0;
}

/* The room's users become the update's (a full <users>), without those said deleted. */
static int replace_users(struct confinfo *room, const struct confinfo *update, char *err,
			 size_t errlen)
{
	users_clear(room);
	room->has_users = 1;
	room->users_state = CONFINFO_FULL;
	if (!update->has_users || update->users_state == CONFINFO_DELETED)
		return 0;
	for (size_t i = 0; i < update->nusers; i++)
		if (merge_user(room, &update->users[i], CONFINFO_FULL, err, errlen) < 0)
			return -1;
	return 0;
}

int confinfo_merge(struct confinfo *room, const struct confinfo *update, char *err, size_t errlen)
{
	struct confinfo *work, tmp;

	if (!room->entity || !update->entity || strcmp(room->entity, update->entity) != 0) {
		if (errlen)
			snprintf(err, errlen, "update for %s, not for this room",
				 update->entity ? update->entity : "(none)");
		return -1;
	}
	if (room->state == CONFINFO_PARTIAL)
		return set_err(err, errlen, "the room is not a full state");
	if (update->version <= room->version)
		return 1;
	if (update->state == CONFINFO_PARTIAL) {
		if (update->version != room->version + 1) {
			if (errlen)
				snprintf(err, errlen, "version %lu after %lu: notifications were lost",
					 update->version, room->version);
			return -1;
		}
		if (room->state == CONFINFO_DELETED)
			return set_err(err, errlen, "partial update of a deleted conference");
	}
	work = confinfo_copy(room);
	work->version = update->version;
	work->state = update->state == CONFINFO_DELETED ? CONFINFO_DELETED : CONFINFO_FULL;
	if (update->state == CONFINFO_DELETED) {
		users_clear(work);
	} else if (update->state == CONFINFO_FULL) {
		free(work->subject);
		work->subject = dup_or_null(update->subject);
		if (replace_users(work, update, err, errlen) < 0)
			goto fail;
	} else {
		merge_text(&work->subject, update->subject);
		if (update->has_users && update->users_state == CONFINFO_FULL) {
			if (replace_users(work, update, err, errlen) < 0)
				goto fail;
		} else if (update->has_users) {
			for (size_t i = 0; i < update->nusers; i++)
				if (merge_user(work, &update->users[i], update->users_state, err,
					       errlen) < 0)
					goto fail;
		}
	}
	/* swap: the room takes the merged model, work the old one, to be freed */
	tmp = *room;
	*room = *work;
	*work = tmp;
	confinfo_free(work);
	return 0;

fail:
	confinfo_free(work);
	return -1;
}

/* ---------------------------------------------------------------- building */

/* Writes s escaped (attr: for a double-quoted attribute value). */
static void put_esc(FILE *f, const char *s, int attr)
{
	char *e = pidf_escape(s, attr);

	fputs(e, f);
	free(e);
}

static void put_text_el(FILE *f, const char *indent, const char *name, const char *text)
{
	if (!text)
		return;
	fprintf(f, "%s<%s>", indent, name);
	put_esc(f, text, 0);
	fprintf(f, "</%s>\n", name);
}

static const char *state_out(enum confinfo_state s, int full)
{
	return full ? "full" : confinfo_state_name(s) ? confinfo_state_name(s) : "full";
}

static void build_endpoint(FILE *f, const struct confinfo_endpoint *e, int full)
{
	fputs("   <endpoint entity=\"", f);
	put_esc(f, e->entity ? e->entity : "", 1);
	fprintf(f, "\" state=\"%s\">\n", state_out(e->state, full));
	put_text_el(f, "    ", "display-text", e->display_text);
	put_text_el(f, "    ", "status", confinfo_status_name(e->status));
	put_text_el(f, "    ", "joining-method", confinfo_joining_name(e->joining));
	put_text_el(f, "    ", "disconnection-method",
		    confinfo_disconnection_name(e->disconnection));
	for (size_t i = 0; i < e->nmedia; i++) {
		const struct confinfo_media *m = &e->media[i];

		if (full && m->state == CONFINFO_DELETED)
			continue;
		fputs("    <media id=\"", f);
		put_esc(f, m->id ? m->id : "", 1);
		if (!full && m->state != CONFINFO_FULL)
			fprintf(f, "\" state=\"%s", state_out(m->state, 0));
		fputs("\">", f);
		if (m->type) {
			fputs("<type>", f);
			put_esc(f, m->type, 0);
			fputs("</type>", f);
		}
		fputs("</media>\n", f);
	}
	fputs("   </endpoint>\n", f);
}

char *confinfo_build(const struct confinfo *c, int full, size_t *len)
{
	char *p = NULL;
	size_t n = 0;
	FILE *f = open_memstream(&p, &n);

	if (!f)
		gw_fatal("confinfo_build: out of memory");
	fputs("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<conference-info xmlns=\"" CONFINFO_NS
	      "\" entity=\"", f);
	put_esc(f, c->entity ? c->entity : "", 1);
	fprintf(f, "\" state=\"%s\" version=\"%lu\">\n",
		full ? "full" : c->state == CONFINFO_DELETED ? "deleted" : "partial", c->version);
	if (c->subject) {
		fputs(" <conference-description>\n", f);
		put_text_el(f, "  ", "subject", c->subject);
		fputs(" </conference-description>\n", f);
	}
	if (full || c->has_users) {
		fprintf(f, " <users state=\"%s\">\n", full ? "full" : "partial");
		for (size_t i = 0; i < c->nusers; i++) {
			const struct confinfo_user *u = &c->users[i];

			if (full && u->state == CONFINFO_DELETED)
				continue;
			fputs("  <user entity=\"", f);
			put_esc(f, u->entity ? u->entity : "", 1);
			fprintf(f, "\" state=\"%s\">\n", state_out(u->state, full));
			put_text_el(f, "   ", "display-text", u->display_text);
			for (size_t k = 0; k < u->nendpoints; k++)
				if (!full || u->endpoints[k].state != CONFINFO_DELETED)
					build_endpoint(f, &u->endpoints[k], full);
			fputs("  </user>\n", f);
		}
		fputs(" </users>\n", f);
	}
	fputs("</conference-info>\n", f);
	if (fclose(f) != 0 || !p)
		gw_fatal("confinfo_build: out of memory");
	if (len)
		*len = n;
	return p;
}
