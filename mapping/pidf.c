/* pidf.c - PIDF/RPID presence documents <-> XMPP <presence/>: parser, writer and the mapping tables (pidf.h). */
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <expat.h>

#include "../gateway/gw.h"
#include "map.h"
#include "pidf.h"

#define NS_XML "http://www.w3.org/XML/1998/namespace"
#define NS_DELAY "urn:xmpp:delay"
/* expat's namespace separator: \1 cannot occur in XML 1.0 text, so no URI can hold it */
#define NS_SEP '\1'
#define MAX_DEPTH 64
#define PERSON_ID "_person_"	/* never a plain id, never a canonical encoded one */

/* ---- the tables */

/* <show> <-> RPID activity (RFC 4480 3.2), one table.  Rows are read top-down: the first
 * PIDF_TO_SIP row for a show is what is written; every PIDF_TO_XMPP row is read. */
#define BOTH (PIDF_TO_XMPP | PIDF_TO_SIP)
static const struct {
	const char *activity;	/* NULL: no activity element */
	enum pidf_show show;
	unsigned dir;
} show_table[] = {
	{ NULL, PIDF_SHOW_NONE, BOTH },
	{ NULL, PIDF_SHOW_CHAT, PIDF_TO_SIP },		/* no RPID "chat": exact via <sg:show> */
	{ "away", PIDF_SHOW_AWAY, BOTH },
	{ "away", PIDF_SHOW_XA, PIDF_TO_SIP },		/* no RPID "xa": exact via <sg:show> */
	{ "busy", PIDF_SHOW_DND, BOTH },
	/* busy with something: do not disturb */
	{ "on-the-phone", PIDF_SHOW_DND, PIDF_TO_XMPP },
	{ "meeting", PIDF_SHOW_DND, PIDF_TO_XMPP },
	{ "presentation", PIDF_SHOW_DND, PIDF_TO_XMPP },
	/* gone for a long while: extended away */
	{ "vacation", PIDF_SHOW_XA, PIDF_TO_XMPP },
	{ "holiday", PIDF_SHOW_XA, PIDF_TO_XMPP },
	{ "sleeping", PIDF_SHOW_XA, PIDF_TO_XMPP },
	{ "permanent-absence", PIDF_SHOW_XA, PIDF_TO_XMPP },
	/* somewhere else for a while: away */
	{ "appointment", PIDF_SHOW_AWAY, PIDF_TO_XMPP },
	{ "breakfast", PIDF_SHOW_AWAY, PIDF_TO_XMPP },
	{ "dinner", PIDF_SHOW_AWAY, PIDF_TO_XMPP },
	{ "lunch", PIDF_SHOW_AWAY, PIDF_TO_XMPP },
	{ "meal", PIDF_SHOW_AWAY, PIDF_TO_XMPP },
	{ "travel", PIDF_SHOW_AWAY, PIDF_TO_XMPP },
	{ "steering", PIDF_SHOW_AWAY, PIDF_TO_XMPP },
	{ "in-transit", PIDF_SHOW_AWAY, PIDF_TO_XMPP },
	{ "looking-for-work", PIDF_SHOW_AWAY, PIDF_TO_XMPP },
	{ "shopping", PIDF_SHOW_AWAY, PIDF_TO_XMPP },
	{ "playing", PIDF_SHOW_AWAY, PIDF_TO_XMPP },
	{ "worship", PIDF_SHOW_AWAY, PIDF_TO_XMPP },
	{ "spectator", PIDF_SHOW_AWAY, PIDF_TO_XMPP },
	{ "performance", PIDF_SHOW_AWAY, PIDF_TO_XMPP },
	{ "tv", PIDF_SHOW_AWAY, PIDF_TO_XMPP },
	/* "working", "unknown", "other" and anything else: no show */
};

/* XMPP <show> text, indexed by enum pidf_show */
static const char *const show_names[] = {
	[PIDF_SHOW_NONE] = NULL,
	[PIDF_SHOW_AWAY] = "away",
	[PIDF_SHOW_XA] = "xa",
	[PIDF_SHOW_DND] = "dnd",
	[PIDF_SHOW_CHAT] = "chat",
};

/* When a person lists several activities, the strongest wins. */
static int show_rank(enum pidf_show s)
{
	static const int rank[] = {
		[PIDF_SHOW_NONE] = 0, [PIDF_SHOW_CHAT] = 1, [PIDF_SHOW_AWAY] = 2,
		[PIDF_SHOW_XA] = 3, [PIDF_SHOW_DND] = 4,
	};

	return (unsigned)s < sizeof(rank) / sizeof(rank[0]) ? rank[s] : 0;
}

const char *pidf_show_name(enum pidf_show show)
{
	return (unsigned)show < sizeof(show_names) / sizeof(show_names[0]) ? show_names[show] : NULL;
}

int pidf_show_parse(const char *name)
{
	if (!name || !*name)
		return PIDF_SHOW_NONE;
	for (size_t i = 0; i < sizeof(show_names) / sizeof(show_names[0]); i++)
		if (show_names[i] && strcmp(show_names[i], name) == 0)
			return (int)i;
	return -1;
}

int pidf_show_row(size_t i, const char **activity, enum pidf_show *show, unsigned *dir)
{
	if (i >= sizeof(show_table) / sizeof(show_table[0]))
		return -1;
	*activity = show_table[i].activity;
	*show = show_table[i].show;
	*dir = show_table[i].dir;
	return 0;
}

enum pidf_show pidf_show_from_activity(const char *activity)
{
	if (!activity)
		return PIDF_SHOW_NONE;
	for (size_t i = 0; i < sizeof(show_table) / sizeof(show_table[0]); i++)
		if ((show_table[i].dir & PIDF_TO_XMPP) && show_table[i].activity &&
		    strcmp(show_table[i].activity, activity) == 0)
			return show_table[i].show;
	return PIDF_SHOW_NONE;
}

const char *pidf_show_to_activity(enum pidf_show show)
{
	for (size_t i = 0; i < sizeof(show_table) / sizeof(show_table[0]); i++)
		if ((show_table[i].dir & PIDF_TO_SIP) && show_table[i].show == show)
			return show_table[i].activity;
	return NULL;
}

int pidf_priority_to_q(int p)
{
	if (p > 127)
		p = 127;
	if (p < -128)
		p = -128;
	if (p >= 0)
		return 500 + (p * 1000 + 127) / 254;		/* round(p * 500 / 127) */
	return 500 - (-p * 1000 + 128) / 256;			/* round(-p * 500 / 128) */
}

int pidf_q_to_priority(int q)
{
	if (q > 1000)
		q = 1000;
	if (q < 0)
		q = 0;
	if (q >= 500)
		return ((q - 500) * 254 + 500) / 1000;		/* round((q - 500) * 127 / 500) */
	return -(((500 - q) * 256 + 500) / 1000);		/* -round((500 - q) * 128 / 500) */
}

/* ---- small helpers */

static void notes_free(struct pidf_note *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(v[i].text);
		free(v[i].lang);
	}
	free(v);
}

static void notes_add(struct pidf_note **v, size_t *n, const char *text, size_t textlen,
		      const char *lang)
{
	*v = gw_xrealloc(*v, (*n + 1) * sizeof(**v));
	(*v)[*n].text = gw_xstrndup(text, textlen);
	(*v)[*n].lang = lang ? gw_xstrdup(lang) : NULL;
	(*n)++;
}

static void notes_copy(struct pidf_note **v, size_t *n, const struct pidf_note *src, size_t nsrc)
{
	for (size_t i = 0; i < nsrc; i++)
		notes_add(v, n, src[i].text, strlen(src[i].text), src[i].lang);
}

void pidf_tuple_clear(struct pidf_tuple *t)
{
	if (!t)
		return;
	free(t->id);
	notes_free(t->notes, t->nnotes);
	free(t->contact);
	free(t->timestamp);
	memset(t, 0, sizeof(*t));
}

void pidf_doc_free(struct pidf_doc *doc)
{
	if (!doc)
		return;
	for (size_t i = 0; i < doc->ntuples; i++)
		pidf_tuple_clear(&doc->tuples[i]);
	free(doc->tuples);
	free(doc->entity);
	free(doc);
}

static char *dup_or_null(const char *s)
{
	return s ? gw_xstrdup(s) : NULL;
}

struct pidf_doc *pidf_doc_copy(const struct pidf_doc *doc)
{
	struct pidf_doc *c;

	if (!doc)
		return NULL;
	c = gw_xcalloc(1, sizeof(*c));
	c->entity = dup_or_null(doc->entity);
	c->ntuples = doc->ntuples;
	c->tuples = doc->ntuples ? gw_xcalloc(doc->ntuples, sizeof(*c->tuples)) : NULL;
	for (size_t i = 0; i < doc->ntuples; i++) {
		const struct pidf_tuple *t = &doc->tuples[i];
		struct pidf_tuple *u = &c->tuples[i];

		*u = *t;
		u->id = dup_or_null(t->id);
		u->contact = dup_or_null(t->contact);
		u->timestamp = dup_or_null(t->timestamp);
		u->notes = t->nnotes ? gw_xcalloc(t->nnotes, sizeof(*u->notes)) : NULL;
		for (size_t j = 0; j < t->nnotes; j++) {
			u->notes[j].text = gw_xstrdup(t->notes[j].text ? t->notes[j].text : "");
			u->notes[j].lang = dup_or_null(t->notes[j].lang);
		}
	}
	return c;
}

static int is_xml_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* A trimmed copy of s[0..n), or NULL when nothing is left. */
static char *trimmed_dup(const char *s, size_t n)
{
	while (n && is_xml_space(*s))
		s++, n--;
	while (n && is_xml_space(s[n - 1]))
		n--;
	return n ? gw_xstrndup(s, n) : NULL;
}

/* "-128".."127" (an optional sign, digits only) -> 0 and *out; else -1. */
static int parse_priority(const char *s, int *out)
{
	long v = 0;
	int neg = 0;

	if (*s == '-' || *s == '+')
		neg = *s++ == '-';
	if (!*s)
		return -1;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return -1;
		v = v * 10 + (*s - '0');
		if (v > 1000)
			return -1;
	}
	v = neg ? -v : v;
	if (v < -128 || v > 127)
		return -1;
	*out = (int)v;
	return 0;
}

/* RFC 3261 qvalue ("0" ["." 0*3DIGIT] / "1" ["." 0*3"0"]) -> thousandths; -1 if malformed. */
static int parse_qvalue(const char *s)
{
	int q, scale = 100;

	while (is_xml_space(*s))
		s++;
	if (*s != '0' && *s != '1')
		return -1;
	q = (*s++ - '0') * 1000;
	if (*s == '.') {
		s++;
		for (int i = 0; i < 3 && *s >= '0' && *s <= '9'; i++, s++, scale /= 10)
			q += (*s - '0') * scale;
	}
	while (is_xml_space(*s))
		s++;
	return (*s || q > 1000) ? -1 : q;
}

/* ---- tuple ids (the encoding is described in pidf.h) */

static int id_plain(const char *s)
{
	if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z')))
		return 0;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		      (*s >= '0' && *s <= '9') || *s == '.' || *s == '-' || *s == '_'))
			return 0;
	return 1;
}

/* a byte written as itself inside an encoded id */
static int id_keep(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '.' || c == '-';
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;	/* upper case is not canonical */
}

/* The resource an id stands for, as a new string: the decoded canonical form, else the id. */
static char *id_decode(const char *x)
{
	size_t n = strlen(x), k = 0;
	char *r;

	if (x[0] != '_')
		return gw_xstrdup(x);
	r = gw_xmalloc(n);
	for (size_t i = 1; i < n; i++) {
		if (id_keep((unsigned char)x[i])) {
			r[k++] = x[i];
		} else if (x[i] == '_' && i + 2 < n && hexval(x[i + 1]) >= 0 &&
			   hexval(x[i + 2]) >= 0) {
			int c = hexval(x[i + 1]) * 16 + hexval(x[i + 2]);

			if (c == 0 || id_keep((unsigned char)c))
				goto verbatim;
			r[k++] = (char)c;
			i += 2;
		} else {
			goto verbatim;
		}
	}
	r[k] = '\0';
	/* canonical only if the encoder would have encoded it, and it is text a resource holds */
	if (id_plain(r) || map_text_check(r, k) != 0)
		goto verbatim;
	return r;
verbatim:
	free(r);
	return gw_xstrdup(x);
}

/* ---- the parser */

enum el {
	EL_OTHER,		/* unknown: ignored with its contents */
	EL_ROOT,		/* outside the document element */
	EL_PRESENCE,
	EL_TUPLE,
	EL_STATUS,
	EL_BASIC,
	EL_CONTACT,
	EL_NOTE,
	EL_TIMESTAMP,
	EL_PERSON,
	EL_ACTIVITIES,
	EL_ACTIVITY,
	EL_SG_SHOW,
	EL_SG_PRIORITY,
};

/* The document grammar: which element, in which namespace, is understood inside which parent.
 * name NULL: any element of that namespace. */
static const struct {
	enum el parent;
	const char *ns, *name;
	enum el el;
} grammar[] = {
	{ EL_ROOT, PIDF_NS, "presence", EL_PRESENCE },
	{ EL_PRESENCE, PIDF_NS, "tuple", EL_TUPLE },
	{ EL_PRESENCE, PIDF_NS, "note", EL_NOTE },
	{ EL_PRESENCE, PIDF_NS_DM, "person", EL_PERSON },
	{ EL_TUPLE, PIDF_NS, "status", EL_STATUS },
	{ EL_TUPLE, PIDF_NS, "contact", EL_CONTACT },
	{ EL_TUPLE, PIDF_NS, "note", EL_NOTE },
	{ EL_TUPLE, PIDF_NS, "timestamp", EL_TIMESTAMP },
	{ EL_TUPLE, PIDF_NS_SG, "show", EL_SG_SHOW },
	{ EL_TUPLE, PIDF_NS_SG, "priority", EL_SG_PRIORITY },
	{ EL_TUPLE, PIDF_NS_RPID, "activities", EL_ACTIVITIES },	/* RPID drafts put them here */
	{ EL_STATUS, PIDF_NS, "basic", EL_BASIC },
	{ EL_STATUS, PIDF_NS_RPID, "activities", EL_ACTIVITIES },	/* ... or here */
	{ EL_PERSON, PIDF_NS_RPID, "activities", EL_ACTIVITIES },	/* RFC 4480 */
	{ EL_PERSON, PIDF_NS_DM, "note", EL_NOTE },
	{ EL_ACTIVITIES, PIDF_NS_RPID, "note", EL_NOTE },		/* a note on the activity */
	{ EL_ACTIVITIES, PIDF_NS_RPID, NULL, EL_ACTIVITY },
};

/* what the parser learns about a tuple besides struct pidf_tuple */
struct tuple_extra {
	int has_status, has_basic, has_contact;
	int exact;			/* a valid <sg:show> was seen */
	enum pidf_show activity;	/* strongest RPID activity inside the tuple */
	int has_sg_priority, sg_priority;
	int q;				/* contact priority in thousandths, -1 if none */
};

struct parser {
	XML_Parser xp;
	size_t max_tuples;
	struct pidf_doc *doc;
	struct tuple_extra *extra;	/* parallel to doc->tuples */
	enum el stack[MAX_DEPTH + 1];	/* [0] = EL_ROOT */
	char *langs[MAX_DEPTH + 1];	/* xml:lang set on each open element, or NULL */
	unsigned depth;
	char *text;			/* character data of the innermost element */
	size_t textlen, textcap;
	struct pidf_note *person_notes, *doc_notes;
	size_t nperson_notes, ndoc_notes;
	enum pidf_show person_activity;
	int saw_root;
	char *err;
	size_t errlen;
	int failed;
};

static void pfail(struct parser *p, const char *fmt, ...) GW_PRINTF(2, 3);

static void pfail(struct parser *p, const char *fmt, ...)
{
	va_list ap;

	if (p->failed)
		return;
	p->failed = 1;
	if (p->errlen) {
		va_start(ap, fmt);
		vsnprintf(p->err, p->errlen, fmt, ap);
		va_end(ap);
	}
	XML_StopParser(p->xp, XML_FALSE);
}

/* "uri\1local" -> local, with the namespace in *ns (NULL when none) and its length in *nslen */
static const char *split_name(const char *name, const char **ns, size_t *nslen)
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

static int ns_is(const char *ns, size_t nslen, const char *want)
{
	return ns && strlen(want) == nslen && memcmp(ns, want, nslen) == 0;
}

static const char *attr(const char **attrs, const char *name)
{
	for (size_t i = 0; attrs[i]; i += 2)
		if (strcmp(attrs[i], name) == 0)
			return attrs[i + 1];
	return NULL;
}

/* the xml:lang in effect for the innermost element */
static const char *cur_lang(const struct parser *p)
{
	for (unsigned d = p->depth; d > 0; d--)
		if (p->langs[d])
			return p->langs[d];
	return NULL;
}

static struct pidf_tuple *cur_tuple(struct parser *p)
{
	return p->doc->ntuples ? &p->doc->tuples[p->doc->ntuples - 1] : NULL;
}

static struct tuple_extra *cur_extra(struct parser *p)
{
	return p->doc->ntuples ? &p->extra[p->doc->ntuples - 1] : NULL;
}

static int inside(const struct parser *p, enum el el)
{
	for (unsigned d = 1; d <= p->depth; d++)
		if (p->stack[d] == el)
			return 1;
	return 0;
}

/* Elements whose character data is kept (text inside their unknown children is skipped). */
static int holds_text(enum el el)
{
	return el == EL_BASIC || el == EL_CONTACT || el == EL_NOTE || el == EL_TIMESTAMP ||
	       el == EL_SG_SHOW || el == EL_SG_PRIORITY;
}

static void start_tuple(struct parser *p, const char **attrs)
{
	struct pidf_doc *doc = p->doc;
	const char *id = attr(attrs, "id");

	if (doc->ntuples >= p->max_tuples) {
		pfail(p, "more than %zu tuples", p->max_tuples);
		return;
	}
	if (!id) {
		pfail(p, "line %lu: tuple without id",
		      (unsigned long)XML_GetCurrentLineNumber(p->xp));
		return;
	}
	doc->tuples = gw_xrealloc(doc->tuples, (doc->ntuples + 1) * sizeof(*doc->tuples));
	p->extra = gw_xrealloc(p->extra, (doc->ntuples + 1) * sizeof(*p->extra));
	memset(&doc->tuples[doc->ntuples], 0, sizeof(*doc->tuples));
	memset(&p->extra[doc->ntuples], 0, sizeof(*p->extra));
	p->extra[doc->ntuples].q = -1;
	doc->tuples[doc->ntuples].id = id_decode(id);
	doc->ntuples++;
}

static void XMLCALL on_start(void *ud, const XML_Char *name, const XML_Char **attrs)
{
	struct parser *p = ud;
	enum el parent, el = EL_OTHER;
	const char *ns, *local, *lang;
	size_t nslen;

	if (p->failed)
		return;
	if (p->depth >= MAX_DEPTH) {
		pfail(p, "elements nested deeper than %d", MAX_DEPTH);
		return;
	}
	parent = p->stack[p->depth];
	local = split_name(name, &ns, &nslen);
	for (size_t i = 0; i < sizeof(grammar) / sizeof(grammar[0]) && parent != EL_OTHER; i++)
		if (grammar[i].parent == parent && ns_is(ns, nslen, grammar[i].ns) &&
		    (!grammar[i].name || strcmp(grammar[i].name, local) == 0)) {
			el = grammar[i].el;
			break;
		}
	if (parent == EL_ROOT) {
		if (el != EL_PRESENCE) {
			pfail(p, "the root element is not a PIDF <presence> (%s%.*s%s%s)",
			      ns ? "{" : "", (int)nslen, ns ? ns : "", ns ? "}" : "", local);
			return;
		}
		if (!attr(attrs, "entity")) {
			pfail(p, "<presence> without entity");
			return;
		}
		p->doc->entity = gw_xstrdup(attr(attrs, "entity"));
		p->saw_root = 1;
	}
	p->depth++;
	p->stack[p->depth] = el;
	lang = attr(attrs, NS_XML "\1lang");
	p->langs[p->depth] = lang ? gw_xstrdup(lang) : NULL;
	if (holds_text(el))
		p->textlen = 0;

	switch (el) {
	case EL_TUPLE:
		start_tuple(p, attrs);
		break;
	case EL_STATUS:
		cur_extra(p)->has_status = 1;
		break;
	case EL_CONTACT: {
		const char *prio = attr(attrs, "priority");

		if (!cur_extra(p)->has_contact && prio)
			cur_extra(p)->q = parse_qvalue(prio);
		break;
	}
	case EL_ACTIVITY: {
		enum pidf_show s = pidf_show_from_activity(local);

		if (inside(p, EL_TUPLE)) {
			if (show_rank(s) > show_rank(cur_extra(p)->activity))
				cur_extra(p)->activity = s;
		} else if (show_rank(s) > show_rank(p->person_activity)) {
			p->person_activity = s;
		}
		break;
	}
	default:
		break;
	}
}

/* Character data: kept for the innermost element only, and only for elements that hold text. */
static void XMLCALL on_chars(void *ud, const XML_Char *s, int len)
{
	struct parser *p = ud;

	if (p->failed || len <= 0 || !holds_text(p->stack[p->depth]))
		return;
	if (p->textlen + (size_t)len + 1 > p->textcap) {
		size_t cap = p->textcap ? p->textcap : 128;

		while (cap < p->textlen + (size_t)len + 1)
			cap *= 2;
		p->text = gw_xrealloc(p->text, cap);
		p->textcap = cap;
	}
	memcpy(p->text + p->textlen, s, (size_t)len);
	p->textlen += (size_t)len;
	p->text[p->textlen] = '\0';
}

static void end_text_element(struct parser *p, enum el el)
{
	struct pidf_tuple *t = cur_tuple(p);
	struct tuple_extra *x = cur_extra(p);
	enum el parent = p->stack[p->depth - 1];
	const char *text = p->textlen ? p->text : "";
	char *v;

	if (el == EL_NOTE) {
		if (parent == EL_TUPLE || (parent == EL_ACTIVITIES && inside(p, EL_TUPLE)))
			notes_add(&t->notes, &t->nnotes, text, p->textlen, cur_lang(p));
		else if (parent == EL_PERSON || parent == EL_ACTIVITIES)
			notes_add(&p->person_notes, &p->nperson_notes, text, p->textlen, cur_lang(p));
		else
			notes_add(&p->doc_notes, &p->ndoc_notes, text, p->textlen, cur_lang(p));
		return;
	}
	v = trimmed_dup(text, p->textlen);
	switch (el) {
	case EL_BASIC:
		if (x->has_basic)
			break;
		x->has_basic = 1;
		if (v && strcmp(v, "open") == 0)
			t->open = 1;
		else if (!v || strcmp(v, "closed") != 0)
			pfail(p, "line %lu: <basic> is neither open nor closed",
			      (unsigned long)XML_GetCurrentLineNumber(p->xp));
		break;
	case EL_CONTACT:
		if (!x->has_contact) {
			x->has_contact = 1;
			t->contact = v;
			v = NULL;
		}
		break;
	case EL_TIMESTAMP:
		if (!t->timestamp) {
			t->timestamp = v;
			v = NULL;
		}
		break;
	case EL_SG_SHOW: {
		int s = pidf_show_parse(v);

		if (s >= 0 && !x->exact) {
			x->exact = 1;
			t->show = (enum pidf_show)s;
		}
		break;
	}
	case EL_SG_PRIORITY:
		if (!x->has_sg_priority && v && parse_priority(v, &x->sg_priority) == 0)
			x->has_sg_priority = 1;
		break;
	default:
		break;
	}
	free(v);
}

static void XMLCALL on_end(void *ud, const XML_Char *name)
{
	struct parser *p = ud;
	enum el el;

	if (p->failed)
		return;
	el = p->stack[p->depth];
	if (holds_text(el))
		end_text_element(p, el);
	else if (el == EL_TUPLE && !cur_extra(p)->has_status)
		pfail(p, "line %lu: tuple without <status>",
		      (unsigned long)XML_GetCurrentLineNumber(p->xp));
	free(p->langs[p->depth]);
	p->langs[p->depth] = NULL;
	p->depth--;
}

static void XMLCALL on_doctype(void *ud, const XML_Char *name, const XML_Char *sysid,
			       const XML_Char *pubid, int has_internal_subset)
{
	pfail(ud, "a DOCTYPE is not allowed in a presence document");
}

static void XMLCALL on_entity(void *ud, const XML_Char *name, int is_param, const XML_Char *value,
			      int value_len, const XML_Char *base, const XML_Char *sysid,
			      const XML_Char *pubid, const XML_Char *notation)
{
	pfail(ud, "entity declarations are not allowed");
}

/* After the document: tuple fields the standard elements or the person supply. */
static void resolve(struct parser *p)
{
	for (size_t i = 0; i < p->doc->ntuples; i++) {
		struct pidf_tuple *t = &p->doc->tuples[i];
		struct tuple_extra *x = &p->extra[i];

		if (x->has_sg_priority) {
			t->has_priority = 1;
			t->priority = x->sg_priority;
		} else if (x->q >= 0) {
			t->has_priority = 1;
			t->priority = pidf_q_to_priority(x->q);
		}
		if (x->exact)
			continue;
		t->show = x->activity != PIDF_SHOW_NONE ? x->activity : p->person_activity;
		if (t->nnotes)
			continue;
		if (p->nperson_notes)
			notes_copy(&t->notes, &t->nnotes, p->person_notes, p->nperson_notes);
		else
			notes_copy(&t->notes, &t->nnotes, p->doc_notes, p->ndoc_notes);
	}
}

static int set_err(char *err, size_t errlen, const char *msg)
{
	if (errlen)
		snprintf(err, errlen, "%s", msg);
	return -1;
}

int pidf_parse(const char *buf, size_t len, size_t max_len, size_t max_tuples,
	       struct pidf_doc **out, char *err, size_t errlen)
{
	struct parser p;
	int r;

	*out = NULL;
	if (len > max_len || len > INT_MAX) {
		if (errlen)
			snprintf(err, errlen, "document of %zu bytes is larger than %zu", len, max_len);
		return -1;
	}
	r = map_text_check(buf, len);
	if (r == MAP_TEXT_EUTF8)
		return set_err(err, errlen, "document is not UTF-8");
	if (r != 0)
		return set_err(err, errlen, "document holds a character XML does not allow");

	memset(&p, 0, sizeof(p));
	p.max_tuples = max_tuples;
	p.err = err;
	p.errlen = errlen;
	p.doc = gw_xcalloc(1, sizeof(*p.doc));
	p.stack[0] = EL_ROOT;
	p.xp = XML_ParserCreateNS("UTF-8", NS_SEP);
	if (!p.xp)
		gw_fatal("pidf_parse: out of memory");
	XML_SetUserData(p.xp, &p);
	XML_SetElementHandler(p.xp, on_start, on_end);
	XML_SetCharacterDataHandler(p.xp, on_chars);
	XML_SetStartDoctypeDeclHandler(p.xp, on_doctype);
	XML_SetEntityDeclHandler(p.xp, on_entity);
	if (XML_Parse(p.xp, buf, (int)len, XML_TRUE) == XML_STATUS_ERROR && !p.failed) {
		p.failed = 1;
		if (errlen)
			snprintf(err, errlen, "line %lu: not well-formed XML: %s",
				 (unsigned long)XML_GetCurrentLineNumber(p.xp),
				 XML_ErrorString(XML_GetErrorCode(p.xp)));
	}
	if (!p.failed && !p.saw_root)
		pfail(&p, "no document element");
	if (!p.failed)
		resolve(&p);

	XML_ParserFree(p.xp);
	for (unsigned d = 0; d <= MAX_DEPTH; d++)
		free(p.langs[d]);
	free(p.text);
	free(p.extra);
	notes_free(p.person_notes, p.nperson_notes);
	notes_free(p.doc_notes, p.ndoc_notes);
	if (p.failed) {
		pidf_doc_free(p.doc);
		return -1;
	}
	*out = p.doc;
	return 0;
}

/* ---- the writer */

struct sbuf {
	char *p;
	size_t n, cap;
};

static void sb_add(struct sbuf *b, const char *s, size_t n)
{
	if (b->n + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 512;

		while (cap < b->n + n + 1)
			cap *= 2;
		b->p = gw_xrealloc(b->p, cap);
		b->cap = cap;
	}
	memcpy(b->p + b->n, s, n);
	b->n += n;
	b->p[b->n] = '\0';
}

static void sb_str(struct sbuf *b, const char *s)
{
	sb_add(b, s, strlen(s));
}

/* Length of the valid UTF-8 sequence of an XML Char at s, or 0. */
static size_t xml_char_len(const unsigned char *s)
{
	size_t n = s[0] < 0x80 ? 1 : (s[0] & 0xe0) == 0xc0 ? 2 : (s[0] & 0xf0) == 0xe0 ? 3 :
		   (s[0] & 0xf8) == 0xf0 ? 4 : 0;

	for (size_t i = 1; i < n; i++)
		if ((s[i] & 0xc0) != 0x80)
			return 0;	/* also stops at the NUL */
	return n && map_text_check((const char *)s, n) == 0 ? n : 0;
}

/* Escaped text (attr: for a double-quoted attribute value, where white space is escaped too,
 * or attribute-value normalisation would turn it into spaces). */
static void sb_esc(struct sbuf *b, const char *s, int attr)
{
	const unsigned char *u = (const unsigned char *)s;

	while (*u) {
		size_t n = xml_char_len(u);

		if (!n) {
			sb_str(b, "\xef\xbf\xbd");	/* U+FFFD for whatever is not a character */
			u++;
			continue;
		}
		switch (*u) {
		case '<': sb_str(b, "&lt;"); break;
		case '>': sb_str(b, "&gt;"); break;	/* so "]]>" can never appear */
		case '&': sb_str(b, "&amp;"); break;
		case '"': sb_str(b, attr ? "&quot;" : "\""); break;
		case '\r': sb_str(b, "&#13;"); break;	/* else read back as \n */
		case '\n': sb_str(b, attr ? "&#10;" : "\n"); break;
		case '\t': sb_str(b, attr ? "&#9;" : "\t"); break;
		default: sb_add(b, (const char *)u, n); break;
		}
		u += n;
	}
}

char *pidf_escape(const char *s, int attr)
{
	struct sbuf b = { 0 };

	sb_esc(&b, s ? s : "", attr);
	return b.p ? b.p : gw_xstrdup("");
}

static void sb_id(struct sbuf *b, const char *id)
{
	char hex[4];

	if (id_plain(id)) {
		sb_str(b, id);
		return;
	}
	sb_str(b, "_");
	for (const unsigned char *u = (const unsigned char *)id; *u; u++) {
		if (id_keep(*u)) {
			sb_add(b, (const char *)u, 1);
		} else {
			snprintf(hex, sizeof(hex), "_%02x", *u);
			sb_str(b, hex);
		}
	}
}

static void sb_notes(struct sbuf *b, const char *tag, const struct pidf_note *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		sb_str(b, "<");
		sb_str(b, tag);
		if (v[i].lang) {
			sb_str(b, " xml:lang=\"");
			sb_esc(b, v[i].lang, 1);
			sb_str(b, "\"");
		}
		sb_str(b, ">");
		sb_esc(b, v[i].text ? v[i].text : "", 0);
		sb_str(b, "</");
		sb_str(b, tag);
		sb_str(b, ">");
	}
}

static void sb_tuple(struct sbuf *b, const struct pidf_tuple *t)
{
	const char *show = pidf_show_name(t->show);
	char num[32];

	sb_str(b, "<tuple id=\"");
	sb_id(b, t->id ? t->id : "");
	sb_str(b, t->open ? "\"><status><basic>open</basic></status>" :
			    "\"><status><basic>closed</basic></status>");
	/* extension elements come between <status> and <contact> (RFC 3863 4.1.2) */
	sb_str(b, "<sg:show>");
	sb_str(b, show ? show : "");
	sb_str(b, "</sg:show>");
	if (t->has_priority && !t->contact) {
		snprintf(num, sizeof(num), "<sg:priority>%d</sg:priority>", t->priority);
		sb_str(b, num);
	}
	if (t->contact) {
		sb_str(b, "<contact");
		if (t->has_priority) {
			int q = pidf_priority_to_q(t->priority);

			snprintf(num, sizeof(num), " priority=\"%d.%03d\"", q / 1000, q % 1000);
			sb_str(b, num);
		}
		sb_str(b, ">");
		sb_esc(b, t->contact, 0);
		sb_str(b, "</contact>");
	}
	sb_notes(b, "note", t->notes, t->nnotes);
	if (t->timestamp) {
		sb_str(b, "<timestamp>");
		sb_esc(b, t->timestamp, 0);
		sb_str(b, "</timestamp>");
	}
	sb_str(b, "</tuple>");
}

/* The tuple the person element speaks for: open first, then highest priority, then first. */
static const struct pidf_tuple *lead_tuple(const struct pidf_doc *doc)
{
	const struct pidf_tuple *best = NULL;

	for (size_t i = 0; i < doc->ntuples; i++) {
		const struct pidf_tuple *t = &doc->tuples[i];
		int prio = t->has_priority ? t->priority : 0;

		if (!best || (t->open && !best->open) ||
		    (t->open == best->open && prio > (best->has_priority ? best->priority : 0)))
			best = t;
	}
	return best;
}

char *pidf_build(const struct pidf_doc *doc, size_t *len)
{
	const struct pidf_tuple *lead = lead_tuple(doc);
	const char *activity = lead ? pidf_show_to_activity(lead->show) : NULL;
	int person = lead && (activity || lead->nnotes);
	struct sbuf b = { NULL, 0, 0 };

	sb_str(&b, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
		   "<presence xmlns=\"" PIDF_NS "\"");
	if (person)
		sb_str(&b, " xmlns:dm=\"" PIDF_NS_DM "\" xmlns:rpid=\"" PIDF_NS_RPID "\"");
	sb_str(&b, " xmlns:sg=\"" PIDF_NS_SG "\" entity=\"");
	sb_esc(&b, doc->entity ? doc->entity : "", 1);
	sb_str(&b, "\">");
	for (size_t i = 0; i < doc->ntuples; i++)
		sb_tuple(&b, &doc->tuples[i]);
	if (person) {
		sb_str(&b, "<dm:person id=\"" PERSON_ID "\">");
		if (activity) {
			sb_str(&b, "<rpid:activities><rpid:");
			sb_str(&b, activity);
			sb_str(&b, "/></rpid:activities>");
		}
		sb_notes(&b, "dm:note", lead->notes, lead->nnotes);
		sb_str(&b, "</dm:person>");
	}
	sb_str(&b, "</presence>\n");
	if (len)
		*len = b.n;
	return b.p;
}

/* ---- XMPP <presence/> */

/* A child in the stanza's own namespace: none of its own, or a client/component one. */
static int default_ns(xmpp_stanza_t *el)
{
	const char *ns = xmpp_stanza_get_ns(el);

	return !ns || strcmp(ns, "jabber:client") == 0 ||
	       strcmp(ns, "jabber:component:accept") == 0;
}

static const char *child_text(xmpp_stanza_t *el)
{
	xmpp_stanza_t *t = xmpp_stanza_get_children(el);
	const char *s = t && xmpp_stanza_is_text(t) ? xmpp_stanza_get_text_ptr(t) : NULL;

	return s ? s : "";
}

int pidf_tuple_from_presence(xmpp_stanza_t *presence, const char *resource, struct pidf_tuple *out)
{
	const char *type = xmpp_stanza_get_type(presence);
	const char *plang = xmpp_stanza_get_attribute(presence, "xml:lang");
	const char *name = xmpp_stanza_get_name(presence);
	int show = PIDF_SHOW_NONE;

	memset(out, 0, sizeof(*out));
	if (!name || strcmp(name, "presence") != 0 || (type && strcmp(type, "unavailable") != 0))
		return -1;
	out->open = !type;
	out->id = gw_xstrdup(resource ? resource : "");
	for (xmpp_stanza_t *c = xmpp_stanza_get_children(presence); c; c = xmpp_stanza_get_next(c)) {
		const char *cname, *text;

		if (!xmpp_stanza_is_tag(c))
			continue;
		cname = xmpp_stanza_get_name(c);
		if (default_ns(c) && strcmp(cname, "show") == 0) {
			int s = pidf_show_parse(child_text(c));

			if (s > 0 && show == PIDF_SHOW_NONE)
				show = s;
		} else if (default_ns(c) && strcmp(cname, "status") == 0) {
			const char *lang = xmpp_stanza_get_attribute(c, "xml:lang");

			text = child_text(c);
			notes_add(&out->notes, &out->nnotes, text, strlen(text), lang ? lang : plang);
		} else if (default_ns(c) && strcmp(cname, "priority") == 0) {
			if (!out->has_priority && parse_priority(child_text(c), &out->priority) == 0)
				out->has_priority = 1;
		} else if (!out->timestamp && strcmp(cname, "delay") == 0 &&
			   xmpp_stanza_get_ns(c) && strcmp(xmpp_stanza_get_ns(c), NS_DELAY) == 0) {
			const char *stamp = xmpp_stanza_get_attribute(c, "stamp");

			if (stamp && *stamp)
				out->timestamp = gw_xstrdup(stamp);
		}
	}
	/* <show> qualifies availability only (RFC 6121 4.7.2.1) */
	out->show = out->open ? (enum pidf_show)show : PIDF_SHOW_NONE;
	return 0;
}

static xmpp_stanza_t *new_tag(xmpp_ctx_t *ctx, xmpp_stanza_t *parent, const char *name,
			      const char *text)
{
	xmpp_stanza_t *s = xmpp_stanza_new(ctx);

	if (!s || xmpp_stanza_set_name(s, name) != XMPP_EOK)
		gw_fatal("pidf: out of memory");
	if (text && *text) {
		xmpp_stanza_t *t = xmpp_stanza_new(ctx);

		if (!t || xmpp_stanza_set_text(t, text) != XMPP_EOK)
			gw_fatal("pidf: out of memory");
		xmpp_stanza_add_child_ex(s, t, 0);	/* s owns it */
	}
	xmpp_stanza_add_child_ex(parent, s, 0);		/* parent owns it */
	return s;
}

xmpp_stanza_t *pidf_tuple_to_presence(xmpp_ctx_t *ctx, const struct pidf_tuple *t)
{
	xmpp_stanza_t *pres = xmpp_presence_new(ctx), *el;
	char num[16];

	if (!pres)
		gw_fatal("pidf: out of memory");
	if (!t->open)
		xmpp_stanza_set_type(pres, "unavailable");
	if (t->open && pidf_show_name(t->show))
		new_tag(ctx, pres, "show", pidf_show_name(t->show));
	for (size_t i = 0; i < t->nnotes; i++) {
		el = new_tag(ctx, pres, "status", t->notes[i].text);
		if (t->notes[i].lang)
			xmpp_stanza_set_attribute(el, "xml:lang", t->notes[i].lang);
	}
	if (t->has_priority) {
		snprintf(num, sizeof(num), "%d", t->priority);
		new_tag(ctx, pres, "priority", num);
	}
	if (t->timestamp) {
		el = new_tag(ctx, pres, "delay", NULL);
		xmpp_stanza_set_ns(el, NS_DELAY);
		xmpp_stanza_set_attribute(el, "stamp", t->timestamp);
	}
	return pres;
}
