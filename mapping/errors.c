/* errors.c - the two error tables of RFC 7247 section 8: XMPP condition -> SIP status and
 * SIP status -> XMPP condition, plus each condition's RFC 6120 error type.
 *
 * Where this project departs from RFC 7247's rows it says so here and in docs/interworking.md:
 *  - not-authorized -> 403, not 401: a 401 must carry a WWW-Authenticate challenge (RFC 3261
 *    21.4.2) that a gateway cannot produce for the XMPP server's decision.
 *  - feature-not-implemented -> 501 (the RFC allows 405 or 501; 405 would need an Allow header
 *    about a method the request did use).
 *  - gone -> 410 and redirect -> 302 (the RFC allows 301 or 410, and 302).
 *  - remote-server-not-found -> 404 (404 or 408 allowed); unexpected-request -> 400 (491 or 400
 *    allowed; 491 is meant for INVITE glare).
 *  - service-unavailable -> 480, not 503.  XMPP servers answer service-unavailable for a user
 *    who does not exist, is offline without storage or has blocked the sender (RFC 6120 8.3.3.19
 *    asks them not to tell these apart).  503 would tell the SIP side the server is broken: a
 *    proxy turns it into 500 (RFC 3261 16.7) and may fail over or retry.  480 says "not
 *    reachable now" without claiming a fault; the gateway keeps 503 (with Retry-After) for its
 *    own overload and a lost component link, which are not in this table.
 */
#include <string.h>

#include "map.h"

struct map_condition {
	const char *condition;
	const char *type;	/* RFC 6120 8.3.3 */
	int status;		/* XMPP -> SIP */
};

/* One row per RFC 6120 8.3.3 condition. */
static const struct map_condition map_conditions[] = {
	{ "bad-request", "modify", 400 },
	{ "conflict", "cancel", 400 },
	{ "feature-not-implemented", "cancel", 501 },
	{ "forbidden", "auth", 403 },
	{ "gone", "cancel", 410 },
	{ "internal-server-error", "cancel", 500 },
	{ "item-not-found", "cancel", 404 },
	{ "jid-malformed", "modify", 484 },
	{ "not-acceptable", "modify", 406 },
	{ "not-allowed", "cancel", 405 },
	{ "not-authorized", "auth", 403 },
	{ "policy-violation", "modify", 403 },
	{ "recipient-unavailable", "wait", 480 },
	{ "redirect", "modify", 302 },
	{ "registration-required", "auth", 400 },
	{ "remote-server-not-found", "cancel", 404 },
	{ "remote-server-timeout", "wait", 408 },
	{ "resource-constraint", "wait", 500 },
	{ "service-unavailable", "cancel", 480 },
	{ "subscription-required", "auth", 400 },
	{ "undefined-condition", "cancel", 400 },
	{ "unexpected-request", "wait", 400 },
};

struct map_status {
	int status;
	const char *condition;
};

/* SIP -> XMPP, RFC 7247 section 8.2.  The x00 rows also serve unlisted codes of their class. */
static const struct map_status map_statuses[] = {
	{ 300, "redirect" }, { 301, "redirect" }, { 302, "redirect" }, { 305, "redirect" },
	{ 380, "redirect" },
	{ 400, "bad-request" }, { 401, "not-authorized" }, { 402, "bad-request" },
	{ 403, "forbidden" }, { 404, "item-not-found" }, { 405, "feature-not-implemented" },
	{ 406, "not-acceptable" }, { 407, "not-authorized" }, { 408, "remote-server-timeout" },
	{ 410, "gone" }, { 413, "policy-violation" }, { 414, "policy-violation" },
	{ 415, "not-acceptable" }, { 416, "jid-malformed" }, { 420, "feature-not-implemented" },
	{ 421, "not-acceptable" }, { 423, "resource-constraint" }, { 430, "recipient-unavailable" },
	{ 433, "policy-violation" }, { 480, "recipient-unavailable" },
	{ 481, "item-not-found" }, { 482, "not-acceptable" }, { 483, "not-acceptable" },
	{ 484, "item-not-found" }, { 485, "item-not-found" }, { 486, "recipient-unavailable" },
	{ 487, "service-unavailable" }, { 488, "not-acceptable" }, { 489, "policy-violation" },
	{ 491, "unexpected-request" }, { 493, "service-unavailable" },
	{ 500, "internal-server-error" }, { 501, "feature-not-implemented" },
	{ 502, "remote-server-not-found" }, { 503, "service-unavailable" },
	{ 504, "remote-server-timeout" }, { 505, "not-acceptable" }, { 513, "policy-violation" },
	{ 600, "service-unavailable" }, { 603, "service-unavailable" },
	{ 604, "item-not-found" }, { 606, "not-acceptable" },
};

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

static const struct map_condition *map_condition_find(const char *condition)
{
	for (size_t i = 0; condition && i < NELEM(map_conditions); i++)
		if (strcmp(map_conditions[i].condition, condition) == 0)
			return &map_conditions[i];
	return NULL;
}

int map_error_to_sip(const char *condition)
{
	const struct map_condition *c = map_condition_find(condition);

	return c ? c->status : 500;
}

const char *map_error_type(const char *condition)
{
	const struct map_condition *c = map_condition_find(condition);

	return c ? c->type : "cancel";
}

int map_error_known(const char *condition)
{
	return map_condition_find(condition) != NULL;
}

static const char *map_status_find(int status)
{
	for (size_t i = 0; i < NELEM(map_statuses); i++)
		if (map_statuses[i].status == status)
			return map_statuses[i].condition;
	return NULL;
}

const char *map_error_from_sip(int status)
{
	const char *c = map_status_find(status);

	if (!c && status >= 300 && status <= 699)
		c = map_status_find(status / 100 * 100);
	return c ? c : "undefined-condition";
}
