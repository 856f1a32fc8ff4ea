/* confinfo.h - conference state documents (RFC 4575, application/conference-info+xml): parsed
 * from what a SIP conference focus notifies, merged into one model per room, and built when the
 * gateway is the focus itself (a MUC seen from SIP).
 *
 * The model is one struct confinfo: the conference (entity, version, subject), its users keyed
 * by entity, each user's endpoints keyed by entity, each endpoint's media keyed by id.  Every
 * level has a state (RFC 4575 section 5.1): full (all of it is here), partial (only what changed
 * is here) or deleted (it is gone).  In a partial document a NULL text or a *_NONE value means
 * "not said, unchanged"; in a full one it means "absent".
 *
 * Keeping a room (RFC 4575 section 4.6):
 *	1. SUBSCRIBE; the first NOTIFY holds a full document: confinfo_parse() it, keep it as the room.
 *	2. Each later NOTIFY: confinfo_parse() it, then confinfo_merge(room, update):
 *	   0  applied (a full state replaced the room, a partial one was merged element by element);
 *	   1  stale (version not above the room's): ignored, as RFC 4575 asks;
 *	  -1  the update cannot be applied (another conference, a version gap, a partial update to a
 *	      deleted room, or the merge would break a bound): the room is unchanged; refresh the
 *	      subscription to get a full state.
 *
 * Nicknames: RFC 7701 (multi-party chat over MSRP) has a nickname extension, but its schema and
 * namespace could not be checked from here, so it is not read or written: the name shown for a
 * user is <display-text>.
 */
#ifndef GW_CONFINFO_H
#define GW_CONFINFO_H

#include <stddef.h>

#define CONFINFO_NS "urn:ietf:params:xml:ns:conference-info"
#define CONFINFO_CT "application/conference-info+xml"
#define CONFINFO_MAX_ENDPOINTS 16	/* per user */
#define CONFINFO_MAX_MEDIA 8		/* per endpoint */

enum confinfo_state { CONFINFO_FULL, CONFINFO_PARTIAL, CONFINFO_DELETED };

/* <status> of an endpoint (RFC 4575 section 5.6.3). */
enum confinfo_status {
	CONFINFO_STATUS_NONE, CONFINFO_PENDING, CONFINFO_DIALING_OUT, CONFINFO_DIALING_IN,
	CONFINFO_ALERTING, CONFINFO_ON_HOLD, CONFINFO_CONNECTED, CONFINFO_MUTED_VIA_FOCUS,
	CONFINFO_DISCONNECTING, CONFINFO_DISCONNECTED,
};

/* <joining-method> (RFC 4575 section 5.6.4). */
enum confinfo_joining {
	CONFINFO_JOIN_NONE, CONFINFO_DIALED_IN, CONFINFO_DIALED_OUT, CONFINFO_FOCUS_OWNER,
};

/* <disconnection-method> (RFC 4575 section 5.6.6). */
enum confinfo_disconnection {
	CONFINFO_DISC_NONE, CONFINFO_DEPARTED, CONFINFO_BOOTED, CONFINFO_FAILED, CONFINFO_BUSY,
};

struct confinfo_media {
	char *id;		/* owned; the key */
	enum confinfo_state state;
	char *type;		/* owned; <type> ("message" for a chat), or NULL */
};

struct confinfo_endpoint {
	char *entity;		/* owned; the key (the endpoint's URI) */
	enum confinfo_state state;
	char *display_text;	/* owned, or NULL */
	enum confinfo_status status;
	enum confinfo_joining joining;
	enum confinfo_disconnection disconnection;
	struct confinfo_media *media;	/* owned; at most CONFINFO_MAX_MEDIA */
	size_t nmedia;
};

struct confinfo_user {
	char *entity;		/* owned; the key (the user's AOR) */
	enum confinfo_state state;
	char *display_text;	/* owned, or NULL */
	struct confinfo_endpoint *endpoints;	/* owned; at most CONFINFO_MAX_ENDPOINTS */
	size_t nendpoints;
};

struct confinfo {
	char *entity;		/* owned; the conference URI */
	enum confinfo_state state;
	unsigned long version;
	char *subject;		/* owned; <conference-description><subject>, or NULL */
	int has_users;		/* a <users> element was there (partial: absent = unchanged) */
	enum confinfo_state users_state;
	struct confinfo_user *users;	/* owned */
	size_t nusers;
	size_t max_users;	/* the bound confinfo_merge() keeps; 0: none (set by the caller) */
};

/* Parses a conference-info document.  Strict: len > max_len, bad UTF-8 or a character XML
 * forbids, not well-formed, a DOCTYPE or an entity declaration, nesting deeper than 32, a root
 * other than <conference-info> in CONFINFO_NS, a conference without entity or version (an
 * unsigned integer), a user or endpoint without entity, a media without id, a state other than
 * full/partial/deleted, the same user (or endpoint of a user, or media of an endpoint) twice,
 * more than max_users users, CONFINFO_MAX_ENDPOINTS endpoints of a user or CONFINFO_MAX_MEDIA
 * media of an endpoint -> -1 with a one-line reason in err (the caller's buffer of errlen bytes;
 * NULL allowed when errlen is 0).  Elements it does not know are skipped with their content; a
 * <status>, <joining-method> or <disconnection-method> value it does not know reads as *_NONE
 * (foci send private values such as "connect-fail").  Texts are kept up to 1024 bytes.
 * Returns 0 and *out, a new model the caller frees with confinfo_free() (its max_users is set
 * to max_users); *out is NULL on failure. */
int confinfo_parse(const char *doc, size_t len, size_t max_len, size_t max_users,
		   struct confinfo **out, char *err, size_t errlen);

/* Applies update (borrowed, unchanged) to room (the caller's, a full model): see the steps in
 * the comment at the top for what 0, 1 and -1 mean.  On -1 err holds the reason and room is as
 * it was.  After 0 room->state is full, or deleted when the conference ended. */
int confinfo_merge(struct confinfo *room, const struct confinfo *update, char *err, size_t errlen);

/* Writes c (borrowed) as a document.  full != 0: state="full" everywhere, and users, endpoints
 * and media whose state is deleted are left out.  full == 0: state="partial" on the root (or
 * "deleted" when c->state is) and on <users> (written only when c->has_users), each user,
 * endpoint and media with its own state (the caller fills c with only what changed; a new user
 * is "full").
 * Every text and attribute is escaped as pidf_escape() does, so the result is well-formed.
 * Returns a new NUL-terminated string the caller frees with free(); its length in *len (len may
 * be NULL). */
char *confinfo_build(const struct confinfo *c, int full, size_t *len);

/* A deep copy of c (NULL for NULL), freed with confinfo_free(). */
struct confinfo *confinfo_copy(const struct confinfo *c);
/* Frees c and everything it owns.  NULL allowed. */
void confinfo_free(struct confinfo *c);

/* The names of the values, as the document writes them ("full", "connected", "dialed-in",
 * "departed"); static strings, NULL for *_NONE or a value out of range. */
const char *confinfo_state_name(enum confinfo_state s);
const char *confinfo_status_name(enum confinfo_status s);
const char *confinfo_joining_name(enum confinfo_joining j);
const char *confinfo_disconnection_name(enum confinfo_disconnection d);

#endif
