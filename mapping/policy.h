/* policy.h - presence authorization rules: RFC 4745 common-policy documents with the RFC 5025
 * presence-rules actions and transformations, parsed and evaluated per watcher.
 *
 * A presentity's owner writes a ruleset; each rule has conditions (identity, sphere, validity:
 * all that are present must hold; a condition this code does not know makes the rule never
 * apply, the safe reading of RFC 4745 section 10), an action (<sub-handling>) and
 * transformations (what the watcher may see).  The permissions of every rule that applies are
 * combined (RFC 4745 section 10.2): <sub-handling> takes the highest value, booleans are ORed,
 * <provide-user-input> takes the highest value.  When no rule gives a <sub-handling>, it is
 * block (privacy by default).
 *
 * The rule tables (names, values, namespaces) are in policy.c; the evaluation examples of both
 * RFCs are rows of tests/unit/test_policy.c.
 */
#ifndef GW_POLICY_H
#define GW_POLICY_H

#include <stddef.h>
#include <time.h>

#define POLICY_NS_CP "urn:ietf:params:xml:ns:common-policy"
#define POLICY_NS_PR "urn:ietf:params:xml:ns:pres-rules"

/* <sub-handling>, in the order RFC 5025 section 3.2.1 gives them their values */
enum policy_sub {
	POLICY_BLOCK = 0,
	POLICY_CONFIRM = 10,
	POLICY_POLITE_BLOCK = 20,
	POLICY_ALLOW = 30,
};

/* Boolean transformations (RFC 5025 section 3.3), as bits of policy_decision.provide. */
enum policy_provide {
	POLICY_PROVIDE_ACTIVITIES = 1u << 0,
	POLICY_PROVIDE_CLASS = 1u << 1,
	POLICY_PROVIDE_DEVICE_ID = 1u << 2,
	POLICY_PROVIDE_MOOD = 1u << 3,
	POLICY_PROVIDE_PLACE_IS = 1u << 4,
	POLICY_PROVIDE_PLACE_TYPE = 1u << 5,
	POLICY_PROVIDE_PRIVACY = 1u << 6,
	POLICY_PROVIDE_RELATIONSHIP = 1u << 7,
	POLICY_PROVIDE_STATUS_ICON = 1u << 8,
	POLICY_PROVIDE_SPHERE = 1u << 9,
	POLICY_PROVIDE_TIME_OFFSET = 1u << 10,
	POLICY_PROVIDE_NOTE = 1u << 11,
	POLICY_PROVIDE_ALL_SERVICES = 1u << 12,		/* <provide-services><all-services/> */
	POLICY_PROVIDE_ALL_PERSONS = 1u << 13,		/* <provide-persons><all-persons/> */
	POLICY_PROVIDE_ALL_DEVICES = 1u << 14,		/* <provide-devices><all-devices/> */
	POLICY_PROVIDE_ALL_ATTRIBUTES = 1u << 15,	/* <provide-all-attributes/> */
};

/* <provide-user-input>, by value */
enum policy_user_input {
	POLICY_INPUT_FALSE = 0,
	POLICY_INPUT_BARE = 10,
	POLICY_INPUT_THRESHOLDS = 20,
	POLICY_INPUT_FULL = 30,
};

struct policy;

/* What one watcher is allowed. */
struct policy_decision {
	enum policy_sub sub;
	unsigned provide;		/* enum policy_provide bits */
	enum policy_user_input user_input;
	size_t rules;			/* how many rules applied */
};

/* Parses a ruleset document of len bytes (at most max_len).  Returns 0 with *out (the caller
 * frees it with policy_free), or -1 with a message in err. */
int policy_parse(const char *doc, size_t len, size_t max_len, struct policy **out, char *err,
		 size_t errlen);

/* Decides for the watcher with the authenticated identity `watcher` (a sip:, sips: or pres: URI)
 * at time `now`, the presentity being in `sphere` (NULL: unknown, so a rule with a <sphere>
 * condition does not apply). */
void policy_decide(const struct policy *p, const char *watcher, const char *sphere, time_t now,
		   struct policy_decision *out);

struct pidf_doc;

/* Applies d's transformations to doc, in place, for a watcher d allows (RFC 5025 section 3.3,
 * on the document model of pidf.h): the tuples (services) stay only with <all-services> (or
 * <provide-all-attributes>), their show (the RPID activities) only with <provide-activities>,
 * their notes only with <provide-note>; contact, priority and timestamp belong to the service
 * and stay with it.  A watcher that is not allowed is shown nothing at all: the caller's part. */
void policy_filter(const struct policy_decision *d, struct pidf_doc *doc);

/* Number of rules in the document. */
size_t policy_rules(const struct policy *p);

/* NULL is allowed. */
void policy_free(struct policy *p);

/* The name of a <sub-handling> value ("allow"...). */
const char *policy_sub_name(enum policy_sub sub);

#endif
