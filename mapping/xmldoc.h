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
	unsigned max_depth;	/* set by the caller: deeper nesting fails the parse */
	unsigned depth;		/* of the element being handled (0: outside the root) */
	unsigned skip;		/* > 0: inside an element skipped with its content, at this depth */
};

struct xmldoc_handlers {
	XML_StartElementHandler start;
	XML_EndElementHandler end;
	XML_CharacterDataHandler chars;	/* may be NULL */
};

/* Stops the parse with "line N: <message>" in d->err (the first failure wins). */
void xmldoc_fail(struct xmldoc *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* At an element's start: 0 if the caller handles it (and then enters it with ++d->depth), -1
 * if not: the parse failed, the element is too deep (the parse fails now), or it is inside a
 * skipped element (counted here). */
int xmldoc_start(struct xmldoc *d);
/* Called at the start of an element the caller skips with its content, before it enters it. */
void xmldoc_skip(struct xmldoc *d);
/* At an element's end: 0 if the caller handles it (and then leaves it with d->depth--), -1 if
 * not (failed, or inside a skipped element: counted here). */
int xmldoc_end(struct xmldoc *d);

/* The value of attribute name (no namespace) in expat's attrs, or NULL. */
const char *xmldoc_attr(const XML_Char **attrs, const char *name);

/* The local part of an element name expat gave ("namespace\1local") if its namespace is ns,
 * else NULL (another namespace, or none).  Borrowed from name. */
const char *xmldoc_local(const char *name, const char *ns);

/* An attribute value that is all decimal digits (no sign, no space), in range, into *out.
 * Returns 0, or -1 (NULL, empty, other characters, overflow). */
int xmldoc_ulong(const char *s, unsigned long *out);

/* Parses buf (len bytes, already checked against the caller's size limit) with h; d (the
 * first member of the caller's parser) is the user data.  Returns 0, or -1 with d->err set. */
int xmldoc_run(struct xmldoc *d, const char *buf, size_t len, const struct xmldoc_handlers *h);

#endif
