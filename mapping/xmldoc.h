/* xmldoc.h - one whole XML document through expat, the way every document parser here wants it:
 * namespace-aware (names arrive as "namespace\1local"), no DOCTYPE and no entity declarations
 * (no expansion at all), errors as "line N: ..." in the caller's buffer. */
#ifndef GW_XMLDOC_H
#define GW_XMLDOC_H

#include <stddef.h>

#include <expat.h>

#define XMLDOC_NS_SEP '\1'

/* The state every parser keeps: put it first in the parser's own struct (its address is the
 * expat user data the handlers get). */
struct xmldoc {
	XML_Parser xp;
	int failed;
	char *err;
	size_t errlen;
};

struct xmldoc_handlers {
	XML_StartElementHandler start;
	XML_EndElementHandler end;
	XML_CharacterDataHandler chars;	/* may be NULL */
};

/* Stops the parse with "line N: <message>" in d->err (the first failure wins). */
void xmldoc_fail(struct xmldoc *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The value of attribute name (no namespace) in expat's attrs, or NULL. */
const char *xmldoc_attr(const XML_Char **attrs, const char *name);

/* Parses buf (len bytes, already checked against the caller's size limit) with h; d (the
 * first member of the caller's parser) is the user data.  Returns 0, or -1 with d->err set. */
int xmldoc_run(struct xmldoc *d, const char *buf, size_t len, const struct xmldoc_handlers *h);

#endif
