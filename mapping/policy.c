/* policy.c - presence authorization rules (RFC 4745 common-policy, RFC 5025 presence-rules):
 * an expat parser into rules, and their evaluation for one watcher.
 *
 * Invariants:
 * - The grammar is the table `elements`: which element may sit inside which.  An element that
 *   is not in it is skipped with its content, except directly inside <conditions>, where it
 *   makes its rule never apply (a condition not understood cannot be taken as met).
 * - Values are tables too (sub_values, input_values, provide_names).
 * - Bounds: POLICY_MAX_RULES rules, POLICY_MAX_ITEMS identities/spheres/intervals per rule,
 *   POLICY_MAX_DEPTH nesting, the caller's byte limit; a DOCTYPE or an entity is refused.
 */
#include <ctype.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../gateway/gw.h"
#include "map.h"
#include "pidf.h"
#include "policy.h"
#include "xmldoc.h"

#define NS_SEP XMLDOC_NS_SEP
#define POLICY_MAX_RULES 1000
#define POLICY_MAX_ITEMS 1000
#define POLICY_MAX_DEPTH 32
#define POLICY_MAX_TEXT 1024

/* ---------------------------------------------------------------- tables */

enum el {
	EL_NONE, EL_ROOT, EL_RULESET, EL_RULE, EL_CONDITIONS, EL_IDENTITY, EL_ONE, EL_MANY,
	EL_EXCEPT, EL_SPHERE, EL_VALIDITY, EL_FROM, EL_UNTIL, EL_ACTIONS, EL_SUB,
	EL_TRANSFORMATIONS, EL_PROVIDE_BOOL, EL_PROVIDE_SET, EL_ALL, EL_ALL_ATTRIBUTES,
	EL_USER_INPUT, EL_SKIP,
};

enum ns { NS_CP, NS_PR };

static const struct element {
	enum el parent;
	enum ns ns;
	const char *name;
	enum el el;
} elements[] = {
	{ EL_ROOT, NS_CP, "ruleset", EL_RULESET },
	{ EL_RULESET, NS_CP, "rule", EL_RULE },
	{ EL_RULE, NS_CP, "conditions", EL_CONDITIONS },
	{ EL_RULE, NS_CP, "actions", EL_ACTIONS },
	{ EL_RULE, NS_CP, "transformations", EL_TRANSFORMATIONS },
	{ EL_CONDITIONS, NS_CP, "identity", EL_IDENTITY },
	{ EL_CONDITIONS, NS_CP, "sphere", EL_SPHERE },
	{ EL_CONDITIONS, NS_CP, "validity", EL_VALIDITY },
	{ EL_IDENTITY, NS_CP, "one", EL_ONE },
	{ EL_IDENTITY, NS_CP, "many", EL_MANY },
	{ EL_MANY, NS_CP, "except", EL_EXCEPT },
	{ EL_VALIDITY, NS_CP, "from", EL_FROM },
	{ EL_VALIDITY, NS_CP, "until", EL_UNTIL },
	{ EL_ACTIONS, NS_PR, "sub-handling", EL_SUB },
	{ EL_TRANSFORMATIONS, NS_PR, "provide-user-input", EL_USER_INPUT },
	{ EL_TRANSFORMATIONS, NS_PR, "provide-all-attributes", EL_ALL_ATTRIBUTES },
	{ EL_TRANSFORMATIONS, NS_PR, "provide-services", EL_PROVIDE_SET },
	{ EL_TRANSFORMATIONS, NS_PR, "provide-persons", EL_PROVIDE_SET },
	{ EL_TRANSFORMATIONS, NS_PR, "provide-devices", EL_PROVIDE_SET },
	{ EL_PROVIDE_SET, NS_PR, "all-services", EL_ALL },
	{ EL_PROVIDE_SET, NS_PR, "all-persons", EL_ALL },
	{ EL_PROVIDE_SET, NS_PR, "all-devices", EL_ALL },
	/* boolean transformations: any child of <transformations> named in provide_names */
};

static const struct {
	const char *name;
	unsigned bit;
} provide_names[] = {
	{ "provide-activities", POLICY_PROVIDE_ACTIVITIES },
	{ "provide-class", POLICY_PROVIDE_CLASS },
	{ "provide-deviceID", POLICY_PROVIDE_DEVICE_ID },
	{ "provide-mood", POLICY_PROVIDE_MOOD },
	{ "provide-place-is", POLICY_PROVIDE_PLACE_IS },
	{ "provide-place-type", POLICY_PROVIDE_PLACE_TYPE },
	{ "provide-privacy", POLICY_PROVIDE_PRIVACY },
	{ "provide-relationship", POLICY_PROVIDE_RELATIONSHIP },
	{ "provide-status-icon", POLICY_PROVIDE_STATUS_ICON },
	{ "provide-sphere", POLICY_PROVIDE_SPHERE },
	{ "provide-time-offset", POLICY_PROVIDE_TIME_OFFSET },
	{ "provide-note", POLICY_PROVIDE_NOTE },
	/* the sets, by their <all-*> child */
	{ "all-services", POLICY_PROVIDE_ALL_SERVICES },
	{ "all-persons", POLICY_PROVIDE_ALL_PERSONS },
	{ "all-devices", POLICY_PROVIDE_ALL_DEVICES },
};

static const struct {
	const char *name;
	int value;
} sub_values[] = {
	{ "block", POLICY_BLOCK },
	{ "confirm", POLICY_CONFIRM },
	{ "polite-block", POLICY_POLITE_BLOCK },
	{ "allow", POLICY_ALLOW },
}, input_values[] = {
	{ "false", POLICY_INPUT_FALSE },
	{ "bare", POLICY_INPUT_BARE },
	{ "thresholds", POLICY_INPUT_THRESHOLDS },
	{ "full", POLICY_INPUT_FULL },
};

/* ---------------------------------------------------------------- model */

struct pol_except {
	char *id, *domain;	/* one of the two */
};

struct pol_many {
	char *domain;		/* NULL: any authenticated identity */
	struct pol_except *except;
	size_t nexcept;
};

struct pol_interval {
	time_t from, until;	/* [from, until) */
};

struct pol_rule {
	char *id;
	int has_identity, has_sphere, has_validity, unknown_condition;
	char **one;
	size_t none;
	struct pol_many *many;
	size_t nmany;
	char **spheres;
	size_t nspheres;
	struct pol_interval *valid;
	size_t nvalid;
	int sub;		/* -1: no <sub-handling> */
	unsigned provide;
	int user_input;		/* -1: none */
	size_t items;		/* counted against POLICY_MAX_ITEMS */
};

struct policy {
	struct pol_rule *rules;
	size_t nrules;
};

/* ---------------------------------------------------------------- parsing */

struct parser {
	struct xmldoc d;	/* first: the expat user data */
	struct policy *p;
	enum el stack[POLICY_MAX_DEPTH + 2];
	char text[POLICY_MAX_TEXT + 1];
	size_t tlen;
	int text_over;
	const char *provide_name;	/* the boolean transformation being read */
	time_t from;		/* of the <validity> interval being read; -1 none */
};

#define pfail(ps, ...) xmldoc_fail(&(ps)->d, __VA_ARGS__)

static struct pol_rule *cur_rule(struct parser *ps)
{
	return ps->p->nrules ? &ps->p->rules[ps->p->nrules - 1] : NULL;
}

static int rule_item(struct parser *ps, struct pol_rule *r)
{
	if (++r->items > POLICY_MAX_ITEMS) {
		pfail(ps, "more than %d conditions in one rule", POLICY_MAX_ITEMS);
		return -1;
	}
	return 0;
}

/* "2026-12-04T10:00:00Z", fractions and a +hh:mm/-hh:mm offset allowed (xs:dateTime). */
static int parse_datetime(const char *s, time_t *out)
{
	struct tm tm;
	int y, mo, d, h, mi, sec, n = 0, oh = 0, om = 0, sign = 0;
	const char *p;

	while (isspace((unsigned char)*s))
		s++;
	if (sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &y, &mo, &d, &h, &mi, &sec, &n) != 6 || n != 19)
		return -1;
	p = s + n;
	if (*p == '.') {
		p++;
		if (!isdigit((unsigned char)*p))
			return -1;
		while (isdigit((unsigned char)*p))
			p++;
	}
	if (*p == 'Z') {
		p++;
	} else if (*p == '+' || *p == '-') {
		sign = *p == '-' ? -1 : 1;
		if (sscanf(p + 1, "%2d:%2d%n", &oh, &om, &n) != 2 || n != 5 || oh > 14 || om > 59)
			return -1;
		p += 6;
	} else {
		return -1;	/* no zone: ambiguous, refused */
	}
	while (isspace((unsigned char)*p))
		p++;
	if (*p || y < 1970 || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60)
		return -1;
	memset(&tm, 0, sizeof(tm));
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = sec;
	*out = timegm(&tm) - sign * (oh * 3600 + om * 60);
	return 0;
}

static enum el element_of(enum el parent, const char *name)
{
	const char *sep = strchr(name, NS_SEP), *local = sep ? sep + 1 : name;
	int ns = xmldoc_local(name, POLICY_NS_CP) ? NS_CP : xmldoc_local(name, POLICY_NS_PR) ? NS_PR : -1;

	for (size_t i = 0; i < sizeof(elements) / sizeof(elements[0]); i++)
		if (elements[i].parent == parent && (int)elements[i].ns == ns &&
		    strcmp(elements[i].name, local) == 0)
			return elements[i].el;
	if (parent == EL_TRANSFORMATIONS && ns == NS_PR)
		for (size_t i = 0; i < sizeof(provide_names) / sizeof(provide_names[0]); i++)
			if (strncmp(provide_names[i].name, "provide-", 8) == 0 &&
			    strcmp(provide_names[i].name, local) == 0)
				return EL_PROVIDE_BOOL;
	return EL_NONE;
}

static const char *local_name(const char *name)
{
	const char *sep = strchr(name, NS_SEP);

	return sep ? sep + 1 : name;
}

static void XMLCALL on_start(void *ud, const XML_Char *name, const XML_Char **attrs)
{
	struct parser *ps = ud;
	enum el parent = ps->stack[ps->d.depth], el;
	struct pol_rule *r = cur_rule(ps);
	const char *v;

	if (xmldoc_start(&ps->d) < 0)
		return;
	el = element_of(parent, name);
	ps->tlen = 0;
	ps->text_over = 0;
	switch (el) {
	case EL_NONE:
		if (parent == EL_ROOT) {
			pfail(ps, "the document element is not a common-policy <ruleset>");
			return;
		}
		if (parent == EL_CONDITIONS && r)
			r->unknown_condition = 1;
		xmldoc_skip(&ps->d);
		el = EL_SKIP;
		break;
	case EL_RULE:
		if (ps->p->nrules >= POLICY_MAX_RULES) {
			pfail(ps, "more than %d rules", POLICY_MAX_RULES);
			return;
		}
		ps->p->rules = gw_xrealloc(ps->p->rules, (ps->p->nrules + 1) * sizeof(*ps->p->rules));
		r = &ps->p->rules[ps->p->nrules++];
		memset(r, 0, sizeof(*r));
		r->sub = -1;
		r->user_input = -1;
		if ((v = xmldoc_attr(attrs, "id")))
			r->id = gw_xstrdup(v);
		break;
	case EL_IDENTITY:
		r->has_identity = 1;
		break;
	case EL_ONE:
		if (!(v = xmldoc_attr(attrs, "id"))) {
			pfail(ps, "<one> without an id");
			return;
		}
		if (rule_item(ps, r) < 0)
			return;
		r->one = gw_xrealloc(r->one, (r->none + 1) * sizeof(*r->one));
		r->one[r->none++] = gw_xstrdup(v);
		break;
	case EL_MANY:
		if (rule_item(ps, r) < 0)
			return;
		r->many = gw_xrealloc(r->many, (r->nmany + 1) * sizeof(*r->many));
		memset(&r->many[r->nmany], 0, sizeof(*r->many));
		if ((v = xmldoc_attr(attrs, "domain")))
			r->many[r->nmany].domain = gw_xstrdup(v);
		r->nmany++;
		break;
	case EL_EXCEPT: {
		struct pol_many *m = &r->many[r->nmany - 1];
		const char *id = xmldoc_attr(attrs, "id"), *domain = xmldoc_attr(attrs, "domain");

		if (!id == !domain) {
			pfail(ps, "<except> needs exactly one of id and domain");
			return;
		}
		if (rule_item(ps, r) < 0)
			return;
		m->except = gw_xrealloc(m->except, (m->nexcept + 1) * sizeof(*m->except));
		m->except[m->nexcept].id = id ? gw_xstrdup(id) : NULL;
		m->except[m->nexcept].domain = domain ? gw_xstrdup(domain) : NULL;
		m->nexcept++;
		break;
	}
	case EL_SPHERE: {
		char *list, *tok, *save = NULL;

		if (!(v = xmldoc_attr(attrs, "value"))) {
			pfail(ps, "<sphere> without a value");
			return;
		}
		r->has_sphere = 1;
		list = gw_xstrdup(v);
		for (tok = strtok_r(list, " \t\r\n", &save); tok; tok = strtok_r(NULL, " \t\r\n", &save)) {
			if (rule_item(ps, r) < 0)
				break;
			r->spheres = gw_xrealloc(r->spheres, (r->nspheres + 1) * sizeof(*r->spheres));
			r->spheres[r->nspheres++] = gw_xstrdup(tok);
		}
		free(list);
		break;
	}
	case EL_VALIDITY:
		r->has_validity = 1;
		ps->from = -1;
		break;
	case EL_PROVIDE_BOOL:
		ps->provide_name = NULL;
		for (size_t i = 0; i < sizeof(provide_names) / sizeof(provide_names[0]); i++)
			if (strcmp(provide_names[i].name, local_name(name)) == 0)
				ps->provide_name = provide_names[i].name;
		break;
	case EL_ALL:
		for (size_t i = 0; i < sizeof(provide_names) / sizeof(provide_names[0]); i++)
			if (strcmp(provide_names[i].name, local_name(name)) == 0)
				r->provide |= provide_names[i].bit;
		break;
	case EL_ALL_ATTRIBUTES:
		r->provide |= POLICY_PROVIDE_ALL_ATTRIBUTES;
		break;
	default:
		break;
	}
	ps->stack[++ps->d.depth] = el;
}

static void XMLCALL on_chars(void *ud, const XML_Char *s, int len)
{
	struct parser *ps = ud;

	if (ps->d.failed || ps->d.skip)
		return;
	if (ps->tlen + (size_t)len > POLICY_MAX_TEXT) {
		ps->text_over = 1;
		return;
	}
	memcpy(ps->text + ps->tlen, s, (size_t)len);
	ps->tlen += (size_t)len;
}

/* The element's text without surrounding white space (xs:token), or NULL if too long. */
static const char *trimmed(struct parser *ps)
{
	char *t = ps->text, *e;

	if (ps->text_over)
		return NULL;
	ps->text[ps->tlen] = '\0';
	while (isspace((unsigned char)*t))
		t++;
	e = t + strlen(t);
	while (e > t && isspace((unsigned char)e[-1]))
		*--e = '\0';
	return t;
}

static int value_of(const char *text, int is_sub)
{
	size_t n = is_sub ? sizeof(sub_values) / sizeof(sub_values[0]) :
			    sizeof(input_values) / sizeof(input_values[0]);

	for (size_t i = 0; text && i < n; i++)
		if (strcmp(text, is_sub ? sub_values[i].name : input_values[i].name) == 0)
			return is_sub ? sub_values[i].value : input_values[i].value;
	return -1;
}

static void XMLCALL on_end(void *ud, const XML_Char *name)
{
	struct parser *ps = ud;
	enum el el = ps->stack[ps->d.depth];
	struct pol_rule *r = cur_rule(ps);
	const char *t;
	time_t when;
	int v;

	if (xmldoc_end(&ps->d) < 0)
		return;
	switch (el) {
	case EL_SUB:
		if ((v = value_of(t = trimmed(ps), 1)) < 0) {
			pfail(ps, "<sub-handling> \"%s\" is not block, confirm, polite-block or allow",
			      t ? t : "(too long)");
			return;
		}
		if (v > r->sub)
			r->sub = v;
		break;
	case EL_USER_INPUT:
		if ((v = value_of(t = trimmed(ps), 0)) < 0) {
			pfail(ps, "<provide-user-input> \"%s\" is not false, bare, thresholds or full",
			      t ? t : "(too long)");
			return;
		}
		if (v > r->user_input)
			r->user_input = v;
		break;
	case EL_PROVIDE_BOOL:
		t = trimmed(ps);
		if (!t || (strcmp(t, "true") && strcmp(t, "false") && strcmp(t, "1") &&
			   strcmp(t, "0"))) {
			pfail(ps, "a boolean transformation holds \"%s\"", t ? t : "(too long)");
			return;
		}
		if (!strcmp(t, "true") || !strcmp(t, "1"))
			for (size_t i = 0; i < sizeof(provide_names) / sizeof(provide_names[0]); i++)
				if (provide_names[i].name == ps->provide_name)
					r->provide |= provide_names[i].bit;
		break;
	case EL_FROM:
	case EL_UNTIL:
		if (!(t = trimmed(ps)) || parse_datetime(t, &when) < 0) {
			pfail(ps, "<validity> time \"%s\" is not an xs:dateTime with a zone",
			      t ? t : "(too long)");
			return;
		}
		if (el == EL_FROM) {
			if (ps->from != -1) {
				pfail(ps, "<from> without its <until>");
				return;
			}
			ps->from = when;
		} else {
			if (ps->from == -1) {
				pfail(ps, "<until> without a <from> before it");
				return;
			}
			if (rule_item(ps, r) < 0)
				return;
			r->valid = gw_xrealloc(r->valid, (r->nvalid + 1) * sizeof(*r->valid));
			r->valid[r->nvalid].from = ps->from;
			r->valid[r->nvalid].until = when;
			r->nvalid++;
			ps->from = -1;
		}
		break;
	case EL_VALIDITY:
		if (ps->from != -1) {
			pfail(ps, "<from> without its <until>");
			return;
		}
		break;
	default:
		break;
	}
	ps->d.depth--;
}

int policy_parse(const char *doc, size_t len, size_t max_len, struct policy **out, char *err,
		 size_t errlen)
{
	struct parser ps;

	*out = NULL;
	if (len > max_len || len > INT_MAX) {
		if (errlen)
			snprintf(err, errlen, "document of %zu bytes is larger than %zu", len, max_len);
		return -1;
	}
	static const struct xmldoc_handlers h = { on_start, on_end, on_chars };

	memset(&ps, 0, sizeof(ps));
	ps.d.err = err;
	ps.d.errlen = errlen;
	ps.d.max_depth = POLICY_MAX_DEPTH;
	ps.p = gw_xcalloc(1, sizeof(*ps.p));
	ps.stack[0] = EL_ROOT;
	ps.from = -1;
	if (xmldoc_run(&ps.d, doc, len, &h) < 0) {
		policy_free(ps.p);
		return -1;
	}
	*out = ps.p;
	return 0;
}

void policy_free(struct policy *p)
{
	if (!p)
		return;
	for (size_t i = 0; i < p->nrules; i++) {
		struct pol_rule *r = &p->rules[i];

		free(r->id);
		for (size_t j = 0; j < r->none; j++)
			free(r->one[j]);
		free(r->one);
		for (size_t j = 0; j < r->nmany; j++) {
			for (size_t k = 0; k < r->many[j].nexcept; k++) {
				free(r->many[j].except[k].id);
				free(r->many[j].except[k].domain);
			}
			free(r->many[j].except);
			free(r->many[j].domain);
		}
		free(r->many);
		for (size_t j = 0; j < r->nspheres; j++)
			free(r->spheres[j]);
		free(r->spheres);
		free(r->valid);
	}
	free(p->rules);
	free(p);
}

size_t policy_rules(const struct policy *p)
{
	return p ? p->nrules : 0;
}

const char *policy_sub_name(enum policy_sub sub)
{
	for (size_t i = 0; i < sizeof(sub_values) / sizeof(sub_values[0]); i++)
		if (sub_values[i].value == (int)sub)
			return sub_values[i].name;
	return "?";
}

/* ---------------------------------------------------------------- evaluation */

/* A URI split for comparison: scheme and host compare without case, the user part with it
 * (RFC 3261 19.1.4); parameters and headers are not part of an identity. */
struct uri_parts {
	const char *scheme, *user, *host;
	size_t slen, ulen, hlen;
};

static int uri_split(const char *uri, struct uri_parts *u)
{
	const char *colon = strchr(uri, ':'), *at, *end;

	if (!colon)
		return -1;
	u->scheme = uri;
	u->slen = (size_t)(colon - uri);
	at = strchr(colon + 1, '@');
	if (at) {
		u->user = colon + 1;
		u->ulen = (size_t)(at - u->user);
		u->host = at + 1;
	} else {
		u->user = "";
		u->ulen = 0;
		u->host = colon + 1;
	}
	end = u->host + strcspn(u->host, ";?>:");
	u->hlen = (size_t)(end - u->host);
	return u->hlen ? 0 : -1;
}

/* sip:, sips: and pres: name the same identity here (RFC 4745 section 7.1 leaves the
 * scheme to the using protocol; RFC 5025 section 3.1.1.2 computes a sip: or pres: URI). */
static int scheme_class(const struct uri_parts *u)
{
	if ((u->slen == 3 && !strncasecmp(u->scheme, "sip", 3)) ||
	    (u->slen == 4 && !strncasecmp(u->scheme, "sips", 4)) ||
	    (u->slen == 4 && !strncasecmp(u->scheme, "pres", 4)))
		return 1;
	return 0;
}

static int uri_eq(const struct uri_parts *a, const char *other)
{
	struct uri_parts b;

	if (uri_split(other, &b) < 0)
		return 0;
	if (scheme_class(a) && scheme_class(&b)) {
		/* same class */
	} else if (a->slen != b.slen || strncasecmp(a->scheme, b.scheme, a->slen)) {
		return 0;
	}
	return a->ulen == b.ulen && !memcmp(a->user, b.user, a->ulen) && a->hlen == b.hlen &&
	       !strncasecmp(a->host, b.host, a->hlen);
}

static int host_is(const struct uri_parts *u, const char *domain)
{
	return strlen(domain) == u->hlen && !strncasecmp(u->host, domain, u->hlen);
}

static int identity_matches(const struct pol_rule *r, const struct uri_parts *w)
{
	for (size_t i = 0; i < r->none; i++)
		if (uri_eq(w, r->one[i]))
			return 1;
	for (size_t i = 0; i < r->nmany; i++) {
		const struct pol_many *m = &r->many[i];
		int excepted = 0;

		if (m->domain && !host_is(w, m->domain))
			continue;
		for (size_t k = 0; k < m->nexcept && !excepted; k++)
			excepted = m->except[k].id ? uri_eq(w, m->except[k].id) :
						     host_is(w, m->except[k].domain);
		if (!excepted)
			return 1;
	}
	return 0;
}

static int rule_applies(const struct pol_rule *r, const struct uri_parts *w, const char *sphere,
			time_t now)
{
	int ok;

	if (r->unknown_condition)
		return 0;
	if (r->has_identity && (!w || !identity_matches(r, w)))
		return 0;
	if (r->has_sphere) {
		ok = 0;
		for (size_t i = 0; sphere && i < r->nspheres && !ok; i++)
			ok = strcmp(r->spheres[i], sphere) == 0;
		if (!ok)
			return 0;
	}
	if (r->has_validity) {
		ok = 0;
		for (size_t i = 0; i < r->nvalid && !ok; i++)
			ok = now >= r->valid[i].from && now < r->valid[i].until;
		if (!ok)
			return 0;
	}
	return 1;
}

void policy_decide(const struct policy *p, const char *watcher, const char *sphere, time_t now,
		   struct policy_decision *out)
{
	struct uri_parts w;
	int sub = -1, input = -1, have = watcher && uri_split(watcher, &w) == 0;

	memset(out, 0, sizeof(*out));
	for (size_t i = 0; p && i < p->nrules; i++) {
		const struct pol_rule *r = &p->rules[i];

		if (!rule_applies(r, have ? &w : NULL, sphere, now))
			continue;
		out->rules++;
		if (r->sub > sub)
			sub = r->sub;
		if (r->user_input > input)
			input = r->user_input;
		out->provide |= r->provide;
	}
	out->sub = sub < 0 ? POLICY_BLOCK : (enum policy_sub)sub;
	out->user_input = input < 0 ? POLICY_INPUT_FALSE : (enum policy_user_input)input;
}

void policy_filter(const struct policy_decision *d, struct pidf_doc *doc)
{
	int all = (d->provide & POLICY_PROVIDE_ALL_ATTRIBUTES) != 0;

	if (!doc)
		return;
	if (!all && !(d->provide & POLICY_PROVIDE_ALL_SERVICES)) {
		for (size_t i = 0; i < doc->ntuples; i++)
			pidf_tuple_clear(&doc->tuples[i]);
		doc->ntuples = 0;
		return;
	}
	for (size_t i = 0; i < doc->ntuples; i++) {
		struct pidf_tuple *t = &doc->tuples[i];

		if (!all && !(d->provide & POLICY_PROVIDE_ACTIVITIES))
			t->show = PIDF_SHOW_NONE;
		if (!all && !(d->provide & POLICY_PROVIDE_NOTE)) {
			for (size_t k = 0; k < t->nnotes; k++) {
				free(t->notes[k].text);
				free(t->notes[k].lang);
			}
			free(t->notes);
			t->notes = NULL;
			t->nnotes = 0;
		}
	}
}
