/* rlmi.h - resource list notifications (RFC 4662): the RLMI document (application/rlmi+xml) and
 * the multipart/related body (RFC 2387) that carries it with one part per resource instance.
 *
 * A list NOTIFY's body is multipart/related; its root part (the "start" parameter, else the first
 * part) is the RLMI document, which names every resource of the list, with each instance's state
 * and, when the instance has a document, the Content-ID of the part holding it (cid).  The
 * parser takes both apart; the builder writes both (for lists the gateway serves).
 */
#ifndef GW_RLMI_H
#define GW_RLMI_H

#include <stddef.h>

#define RLMI_NS "urn:ietf:params:xml:ns:rlmi"
#define RLMI_CT "application/rlmi+xml"

enum rlmi_state { RLMI_ACTIVE, RLMI_PENDING, RLMI_TERMINATED };

struct rlmi_instance {
	char *id;		/* owned */
	enum rlmi_state state;
	char *reason;		/* owned; terminated only, or NULL */
	char *cid;		/* owned; the part with its document, or NULL */
};

struct rlmi_resource {
	char *uri;		/* owned */
	char *name;		/* owned; the first <name>, or NULL */
	struct rlmi_instance *instances;	/* owned */
	size_t ninstances;
};

struct rlmi_list {
	char *uri;		/* owned */
	unsigned long version;
	int full_state;
	struct rlmi_resource *resources;	/* owned */
	size_t nresources;
};

/* One part of a multipart/related body: pointers into the caller's buffer. */
struct rlmi_part {
	const char *content_type;	/* the value, trimmed, not terminated: ct_len bytes */
	size_t ct_len;
	const char *content_id;		/* without <>, or NULL */
	size_t cid_len;
	const char *body;
	size_t body_len;
};

/* Parses an RLMI document (at most max_len bytes, at most max_resources resources of at most 16
 * instances each).  Returns 0 and *out (free with rlmi_list_free), or -1 with a reason in err. */
int rlmi_parse(const char *doc, size_t len, size_t max_len, size_t max_resources,
	       struct rlmi_list **out, char *err, size_t errlen);
void rlmi_list_free(struct rlmi_list *l);

/* Splits a multipart/related body by the boundary of its Content-Type value (content_type, e.g.
 * "multipart/related;type=\"application/rlmi+xml\";start=\"<x@y>\";boundary=abc") into at most
 * max_parts parts (*parts: a new array the caller frees; the parts point into body).  *root is
 * the index of the part named by "start", else 0.  Returns the number of parts, or -1 with a
 * reason in err. */
int rlmi_multipart_split(const char *content_type, const char *body, size_t len, size_t max_parts,
			 struct rlmi_part **parts, size_t *root, char *err, size_t errlen);

/* The state's name ("active"...). */
const char *rlmi_state_name(enum rlmi_state s);

/* Writes l as an RLMI document: a new string the caller frees, its length in *len. */
char *rlmi_build(const struct rlmi_list *l, size_t *len);

/* Writes a multipart/related body (RFC 2387) of nparts parts, the first being the root (the RLMI
 * document): each part gets its Content-ID (content_id without <>), Content-Type and
 * Content-Transfer-Encoding: binary; the boundary is chosen so that no part contains it.  Returns
 * the body (a new string the caller frees, its length in *len) and in *content_type a new string,
 * the header value: multipart/related;type="application/rlmi+xml";start="<cid>";boundary="..." */
char *rlmi_multipart_build(const struct rlmi_part *parts, size_t nparts, char **content_type,
			   size_t *len);

#endif
