/* pidf.h - presence documents: PIDF (RFC 3863) with RPID (RFC 4480) <-> XMPP <presence/>, as tables.
 *
 * The model is one struct pidf_doc of tuples; one tuple is one XMPP resource (RFC 8048).  The
 * translation rules are tables in pidf.c: <show> <-> RPID activity (one table, read through
 * pidf_show_row()), the document grammar (which element may sit inside which), and the priority
 * scaling below.
 *
 * Beyond the standard: PIDF/RPID cannot say XMPP "xa" or "chat", and a <contact priority> needs a
 * contact URI.  So every tuple pidf_build() writes also carries <sg:show> (the exact XMPP show,
 * empty for none) and, when there is no contact to hang the q-value on, <sg:priority> (the exact
 * integer), in the namespace PIDF_NS_SG.  Standard peers ignore them (RFC 3863 4.1.2 lets a tuple
 * hold any element of another namespace); pidf_parse() prefers them.  A tuple holding a valid
 * <sg:show> is "exact": its show and notes are its own, nothing falls back to <dm:person>.
 *
 * Priority <-> q-value (thousandths, 0..1000), piecewise linear so that the common values meet:
 *	p >= 0: q = 500 + round(p * 500 / 127)		127 -> 1.000, 0 -> 0.500
 *	p <  0: q = 500 - round(-p * 500 / 128)		-1 -> 0.496, -128 -> 0.000
 *	q >= 500: p = round((q - 500) * 127 / 500)	(rounding half away from zero)
 *	q <  500: p = -round((500 - q) * 128 / 500)
 * One priority step is about 4 thousandths, so priority -> q -> priority is exact for all 256
 * priorities; q -> priority -> q is exact only for the 256 q-values in the image (0, 0.5 and 1
 * among them).
 *
 * Tuple ids: PIDF wants an xs:ID (an XML NCName), XMPP resources may hold anything.  A tuple id
 * matching [A-Za-z][A-Za-z0-9._-]* is written as it is; any other is written as "_" followed by the
 * id with every byte outside [A-Za-z0-9.-] as "_hh" (two lower-case hex digits): "Psi+ laptop" ->
 * "_Psi_2b_20laptop".  Parsing undoes exactly the canonical form and keeps any other id as it is,
 * so every resource survives XMPP -> PIDF -> XMPP, and every id matching the plain pattern (or
 * already canonical) survives PIDF -> XMPP -> PIDF.
 */
#ifndef GW_PIDF_H
#define GW_PIDF_H

#include <stddef.h>
#include <strophe.h>

#define PIDF_NS "urn:ietf:params:xml:ns:pidf"
#define PIDF_NS_DM "urn:ietf:params:xml:ns:pidf:data-model"
#define PIDF_NS_RPID "urn:ietf:params:xml:ns:pidf:rpid"
#define PIDF_NS_SG "urn:simplegw:pidf:1"	/* ours: exact XMPP values (see above) */

enum pidf_show { PIDF_SHOW_NONE, PIDF_SHOW_AWAY, PIDF_SHOW_XA, PIDF_SHOW_DND, PIDF_SHOW_CHAT };

struct pidf_note {
	char *text;		/* owned; may be "" */
	char *lang;		/* owned; NULL when no xml:lang applies */
};

/* One tuple = one XMPP resource (RFC 8048). */
struct pidf_tuple {
	char *id;		/* owned; the tuple id, decoded (see above); from XMPP: the resource */
	int open;		/* <basic>open</basic> = 1; closed or no <basic> = 0 */
	enum pidf_show show;
	struct pidf_note *notes;	/* owned; <status xml:lang> <-> <note xml:lang>, all kept, in order */
	size_t nnotes;
	int has_priority;
	int priority;		/* XMPP -128..127 when has_priority */
	char *contact;		/* owned; <contact> URI or NULL */
	char *timestamp;	/* owned; <timestamp> (RFC 3339) <-> XEP-0203 <delay stamp>, or NULL */
};

struct pidf_doc {
	char *entity;		/* owned; the presentity URI ("pres:" or "sip:"); NULL writes "" */
	struct pidf_tuple *tuples;	/* owned */
	size_t ntuples;
};

/* Frees doc and everything it owns.  NULL allowed. */
void pidf_doc_free(struct pidf_doc *doc);
/* A deep copy of doc (NULL for NULL), freed with pidf_doc_free(). */
struct pidf_doc *pidf_doc_copy(const struct pidf_doc *doc);
/* Frees what t owns and zeroes it (t itself is the caller's).  NULL allowed. */
void pidf_tuple_clear(struct pidf_tuple *t);

/* Parses a PIDF document (namespace-aware expat; PIDF, data model, RPID and our namespace).
 * Strict: len > max_len, bad UTF-8 or a character XML forbids, not well-formed, a DOCTYPE or
 * entity declaration (no entity expansion at all), nesting deeper than 64, a root other than
 * PIDF <presence entity=...>, a tuple without id or <status>, a <basic> other than open/closed,
 * or more than max_tuples tuples -> -1 with a one-line reason in err (the caller's buffer of
 * errlen bytes; err may be NULL when errlen is 0).  The document is read as UTF-8 whatever its
 * XML declaration says.  Unknown elements are ignored with everything inside them.
 * A tuple that is not exact and has no notes takes the notes of <dm:person> (<dm:note> and
 * <rpid:note> inside <rpid:activities>), else the document's own <note>s; with no activity of
 * its own (inside the tuple or its <status>, as RPID drafts put them) it takes the person's.
 * Of several activities the strongest counts: dnd > xa > away.
 * Returns 0 and *out, a new doc the caller frees with pidf_doc_free(); *out is NULL on failure. */
int pidf_parse(const char *buf, size_t len, size_t max_len, size_t max_tuples,
	       struct pidf_doc **out, char *err, size_t errlen);

/* Serialises doc as PIDF: tuples (with <sg:show>, and <sg:priority> when needed), then one
 * <dm:person> with the RPID activity and notes of the lead tuple (open first, then highest
 * priority, then first) when it has either.  Every text and attribute is escaped; bytes that are
 * not UTF-8 or characters XML forbids become U+FFFD, so the result is always well-formed.
 * Returns a new NUL-terminated string the caller frees with free(); its length in *len (len may
 * be NULL). */
char *pidf_build(const struct pidf_doc *doc, size_t *len);

/* An XMPP availability <presence/> (no type, or type='unavailable') -> one tuple in *out, which
 * the caller clears with pidf_tuple_clear().  presence is borrowed.  resource (borrowed, NULL
 * means "") becomes the tuple id.  <show> counts only when available; <status> languages come
 * from the status, else the presence's xml:lang; an out-of-range <priority> is ignored; the
 * first <delay xmlns='urn:xmpp:delay' stamp> becomes the timestamp.  contact is left NULL: set it
 * (e.g. the full JID as an xmpp: URI) so standard peers see the priority.  Returns 0, or -1 (out
 * zeroed) if presence is not an availability presence. */
int pidf_tuple_from_presence(xmpp_stanza_t *presence, const char *resource, struct pidf_tuple *out);

/* One tuple (borrowed) -> a new <presence/> stanza in ctx: type='unavailable' when closed, then
 * <show> (only when open), <status xml:lang> per note, <priority>, <delay stamp>.  No to/from:
 * the caller sets them and releases the stanza. */
xmpp_stanza_t *pidf_tuple_to_presence(xmpp_ctx_t *ctx, const struct pidf_tuple *t);

/* s escaped for XML text (attr 0) or a double-quoted attribute value (attr 1), as pidf_build()
 * writes them: bytes that are not UTF-8 or not XML characters become U+FFFD.  A new string the
 * caller frees. */
char *pidf_escape(const char *s, int attr);

/* ---- the tables, for callers and tests */

/* XMPP <show> text for show ("away", "chat", "dnd", "xa"; NULL for none).  Static string. */
const char *pidf_show_name(enum pidf_show show);
/* The show named by XMPP text name; -1 if name is not one.  NULL and "" are PIDF_SHOW_NONE. */
int pidf_show_parse(const char *name);
/* Direction bits of a show table row. */
#define PIDF_TO_XMPP 1u		/* the RPID activity is read as this show */
#define PIDF_TO_SIP 2u		/* this show is written as this activity */
/* Row i of the show <-> RPID activity table: activity is a static string, NULL meaning "no
 * activity element".  Returns 0, or -1 past the last row. */
int pidf_show_row(size_t i, const char **activity, enum pidf_show *show, unsigned *dir);
/* The show an RPID activity (local name) reads as; PIDF_SHOW_NONE for NULL or an unknown one. */
enum pidf_show pidf_show_from_activity(const char *activity);
/* The RPID activity written for show (static string), or NULL for no activity element. */
const char *pidf_show_to_activity(enum pidf_show show);
/* The scaling documented above: priority (clamped to -128..127) -> q in thousandths, and q in
 * thousandths (clamped to 0..1000) -> priority. */
int pidf_priority_to_q(int priority);
int pidf_q_to_priority(int q);

#endif
