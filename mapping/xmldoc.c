/* xmldoc.c - one whole XML document through expat (see xmldoc.h). */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "../gateway/gw.h"
#include "xmldoc.h"

void xmldoc_fail(struct xmldoc *d, const char *fmt, ...)
{
	va_list ap;
	char msg[256];

	if (d->failed)
		return;
	d->failed = 1;
	if (d->errlen) {
		va_start(ap, fmt);
		vsnprintf(msg, sizeof(msg), fmt, ap);
		va_end(ap);
		snprintf(d->err, d->errlen, "line %lu: %s",
			 (unsigned long)XML_GetCurrentLineNumber(d->xp), msg);
	}
	XML_StopParser(d->xp, XML_FALSE);
}

int xmldoc_start(struct xmldoc *d)
{
	if (d->failed)
		return -1;
	if (d->depth >= d->max_depth) {
		xmldoc_fail(d, "elements nested deeper than %u", d->max_depth);
		return -1;
	}
	if (d->skip) {
		d->depth++;
		return -1;
	}
	return 0;
}

void xmldoc_skip(struct xmldoc *d)
{
	d->skip = d->depth + 1;
}

int xmldoc_end(struct xmldoc *d)
{
	if (d->failed)
		return -1;
	if (d->skip) {
		if (d->skip == d->depth)
			d->skip = 0;
		d->depth--;
		return -1;
	}
	return 0;
}

const char *xmldoc_attr(const XML_Char **attrs, const char *name)
{
	for (size_t i = 0; attrs[i]; i += 2)
		if (strcmp(attrs[i], name) == 0)
			return attrs[i + 1];
	return NULL;
}

static void XMLCALL on_doctype(void *ud, const XML_Char *name, const XML_Char *sysid,
			       const XML_Char *pubid, int has_internal_subset)
{
	xmldoc_fail(ud, "a DOCTYPE is not allowed");
}

static void XMLCALL on_entity(void *ud, const XML_Char *name, int is_param, const XML_Char *value,
			      int value_len, const XML_Char *base, const XML_Char *sysid,
			      const XML_Char *pubid, const XML_Char *notation)
{
	xmldoc_fail(ud, "entity declarations are not allowed");
}

int xmldoc_run(struct xmldoc *d, const char *buf, size_t len, const struct xmldoc_handlers *h)
{
	if (len > INT_MAX) {
		if (d->errlen)
			snprintf(d->err, d->errlen, "document of %zu bytes is too large", len);
		return -1;
	}
	d->failed = 0;
	d->depth = d->skip = 0;
	d->xp = XML_ParserCreateNS("UTF-8", XMLDOC_NS_SEP);
	if (!d->xp)
		gw_fatal("xmldoc_run: out of memory");
	XML_SetUserData(d->xp, d);
	XML_SetElementHandler(d->xp, h->start, h->end);
	if (h->chars)
		XML_SetCharacterDataHandler(d->xp, h->chars);
	XML_SetStartDoctypeDeclHandler(d->xp, on_doctype);
	XML_SetEntityDeclHandler(d->xp, on_entity);
	if (XML_Parse(d->xp, buf, (int)len, XML_TRUE) == XML_STATUS_ERROR && !d->failed) {
		d->failed = 1;
		if (d->errlen)
			snprintf(d->err, d->errlen, "line %lu: not well-formed XML: %s",
				 (unsigned long)XML_GetCurrentLineNumber(d->xp),
				 XML_ErrorString(XML_GetErrorCode(d->xp)));
	}
	XML_ParserFree(d->xp);
	d->xp = NULL;
	return d->failed ? -1 : 0;
}

const char *xmldoc_local(const char *name, const char *ns)
{
	const char *sep = strchr(name, XMLDOC_NS_SEP);
	size_t nslen = strlen(ns);

	if (!sep || (size_t)(sep - name) != nslen || strncmp(name, ns, nslen) != 0)
		return NULL;
	return sep + 1;
}

int xmldoc_ulong(const char *s, unsigned long *out)
{
	char *end;

	if (!s || !isdigit((unsigned char)*s))
		return -1;
	errno = 0;
	*out = strtoul(s, &end, 10);
	return *end || errno ? -1 : 0;
}
