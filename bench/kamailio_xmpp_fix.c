/* kamailio_xmpp_fix.c - LD_PRELOAD shim so that Debian's Kamailio 5.6 xmpp module survives
 * Prosody's stream header; bench/compare.py builds and uses it, nothing else does.
 *
 * The module's expat start-element callback walks the attribute array until it finds an empty
 * name, not until the terminating NULL, and so reads through the NULL (Kamailio issue #4154:
 * a crash on the first element carrying attributes).  We interpose XML_SetElementHandler and
 * give the module's callback a copy of the array with an extra "" before the NULL.
 * Build: cc -shared -fPIC -O2 -o kamailio_xmpp_fix.so kamailio_xmpp_fix.c -ldl
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <expat.h>
#include <stdio.h>
#include <stdlib.h>

typedef void (*set_handler_fn)(XML_Parser, XML_StartElementHandler, XML_EndElementHandler);

/* the module registers one start handler; remember it to call it from ours */
static XML_StartElementHandler module_start;

static void padded_start(void *user, const XML_Char *name, const XML_Char **attrs)
{
	enum { ON_STACK = 64 };
	const XML_Char *stack[ON_STACK], **copy = stack;
	size_t n = 0;

	while (attrs && attrs[n])
		n++;
	if (n + 2 > ON_STACK) {
		copy = malloc((n + 2) * sizeof(*copy));
		if (!copy)
			abort();
	}
	for (size_t i = 0; i < n; i++)
		copy[i] = attrs[i];
	copy[n] = "";       /* the end marker the module looks for */
	copy[n + 1] = NULL; /* and the one expat promises */
	module_start(user, name, copy);
	if (copy != stack)
		free(copy);
}

void XML_SetElementHandler(XML_Parser parser, XML_StartElementHandler start, XML_EndElementHandler end)
{
	static set_handler_fn real;

	if (!real) {
		/* libexpat is loaded with xmpp.so (dlopen), after us: look it up by name */
		void *lib = dlopen("libexpat.so.1", RTLD_NOW | RTLD_NOLOAD);
		if (!lib)
			lib = dlopen("libexpat.so.1", RTLD_NOW);
		real = lib ? (set_handler_fn)dlsym(lib, "XML_SetElementHandler") : NULL;
		if (!real) {
			fprintf(stderr, "kamailio_xmpp_fix: libexpat's XML_SetElementHandler not found\n");
			abort();
		}
	}
	module_start = start;
	real(parser, start ? padded_start : NULL, end);
}
