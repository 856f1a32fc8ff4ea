/* test_errors.c - table-driven tests of the XMPP error condition <-> SIP status tables (errors.c). */
#include <stddef.h>

#include "mapping/map.h"
#include "tests/unit/test.h"

/* ---- XMPP condition -> SIP status and RFC 6120 8.3.3 error type: one row per table row --- */

static const struct {
	const char *condition;
	int status;
	const char *type;
} to_sip_cases[] = {
	{ "bad-request", 400, "modify" },
	{ "conflict", 400, "cancel" },
	{ "feature-not-implemented", 501, "cancel" },	/* deviation: 501, not 405 */
	{ "forbidden", 403, "auth" },
	{ "gone", 410, "cancel" },			/* RFC 7247 allows 301 or 410 */
	{ "internal-server-error", 500, "cancel" },
	{ "item-not-found", 404, "cancel" },
	{ "jid-malformed", 484, "modify" },
	{ "not-acceptable", 406, "modify" },
	{ "not-allowed", 405, "cancel" },
	{ "not-authorized", 403, "auth" },		/* deviation: 403, not 401 */
	{ "policy-violation", 403, "modify" },
	{ "recipient-unavailable", 480, "wait" },
	{ "redirect", 302, "modify" },
	{ "registration-required", 400, "auth" },
	{ "remote-server-not-found", 404, "cancel" },	/* RFC 7247 allows 404 or 408 */
	{ "remote-server-timeout", 408, "wait" },
	{ "resource-constraint", 500, "wait" },
	{ "service-unavailable", 480, "cancel" },
	{ "subscription-required", 400, "auth" },
	{ "undefined-condition", 400, "cancel" },
	{ "unexpected-request", 400, "wait" },		/* deviation: 400, not 491 */
};

/* Not conditions: the table's defaults apply. */
static const char *const unknown_conditions[] = {
	"", "Bad-Request", "bad-request ", "not-well-formed", "host-unknown", "error",
	"urn:ietf:params:xml:ns:xmpp-stanzas", "payment-required",	/* RFC 3920, gone in 6120 */
};

/* ---- SIP status -> XMPP condition: one row per table row, then the class fallbacks ------ */

static const struct {
	int status;
	const char *condition;
} from_sip_cases[] = {
	/* RFC 7247 section 8.2, row by row */
	{ 300, "redirect" }, { 301, "redirect" }, { 302, "redirect" }, { 305, "redirect" },
	{ 380, "redirect" },
	{ 400, "bad-request" }, { 401, "not-authorized" }, { 402, "bad-request" },
	{ 403, "forbidden" }, { 404, "item-not-found" }, { 405, "feature-not-implemented" },
	{ 406, "not-acceptable" }, { 407, "not-authorized" }, { 408, "remote-server-timeout" },
	{ 410, "gone" }, { 413, "policy-violation" }, { 414, "policy-violation" },
	{ 415, "not-acceptable" }, { 416, "jid-malformed" }, { 420, "feature-not-implemented" },
	{ 421, "not-acceptable" }, { 423, "resource-constraint" },
	{ 430, "recipient-unavailable" }, { 433, "policy-violation" },
	{ 480, "recipient-unavailable" }, { 481, "item-not-found" }, { 482, "not-acceptable" },
	{ 483, "not-acceptable" }, { 484, "item-not-found" }, { 485, "item-not-found" },
	{ 486, "recipient-unavailable" }, { 487, "service-unavailable" },
	{ 488, "not-acceptable" }, { 489, "policy-violation" }, { 491, "unexpected-request" },
	{ 493, "service-unavailable" },
	{ 500, "internal-server-error" }, { 501, "feature-not-implemented" },
	{ 502, "remote-server-not-found" }, { 503, "service-unavailable" },
	{ 504, "remote-server-timeout" }, { 505, "not-acceptable" }, { 513, "policy-violation" },
	{ 600, "service-unavailable" }, { 603, "service-unavailable" },
	{ 604, "item-not-found" }, { 606, "not-acceptable" },
	/* unlisted codes are their class's x00 (RFC 3261 8.1.3.2) */
	{ 303, "redirect" }, { 399, "redirect" },
	{ 409, "bad-request" }, { 411, "bad-request" }, { 412, "bad-request" },
	{ 417, "bad-request" }, { 422, "bad-request" }, { 428, "bad-request" },
	{ 429, "bad-request" }, { 437, "bad-request" }, { 470, "bad-request" },
	{ 490, "bad-request" }, { 494, "bad-request" }, { 499, "bad-request" },
	{ 506, "internal-server-error" }, { 555, "internal-server-error" },
	{ 580, "internal-server-error" }, { 599, "internal-server-error" },
	{ 601, "service-unavailable" }, { 607, "service-unavailable" },
	{ 608, "service-unavailable" }, { 699, "service-unavailable" },
	/* not failures at all: no class to fall back on */
	{ 0, "undefined-condition" }, { -1, "undefined-condition" }, { 100, "undefined-condition" },
	{ 180, "undefined-condition" }, { 200, "undefined-condition" },
	{ 299, "undefined-condition" }, { 700, "undefined-condition" },
	{ 999, "undefined-condition" },
};

/* The deliberate departures from RFC 7247 listed at the top of errors.c, each with the value
 * the RFC row would have given, so a silent "fix" back to the RFC is caught. */
static const struct {
	const char *condition;
	int status;
	int rfc_alternative;
} deviations[] = {
	{ "not-authorized", 403, 401 },
	{ "feature-not-implemented", 501, 405 },
	{ "gone", 410, 301 },
	{ "remote-server-not-found", 404, 408 },
	{ "unexpected-request", 400, 491 },
	{ "service-unavailable", 480, 503 },
};

static void test_to_sip(void)
{
	for (size_t i = 0; i < NELEM(to_sip_cases); i++) {
		const char *c = to_sip_cases[i].condition;

		CHECK_INT(map_error_to_sip(c), to_sip_cases[i].status, "map_error_to_sip(\"%s\")", c);
		CHECK_STR(map_error_type(c), to_sip_cases[i].type, "map_error_type(\"%s\")", c);
		CHECK_INT(map_error_known(c), 1, "map_error_known(\"%s\")", c);
	}
	for (size_t i = 0; i < NELEM(unknown_conditions); i++) {
		const char *c = unknown_conditions[i];

		CHECK_INT(map_error_to_sip(c), 500, "map_error_to_sip(\"%s\") unknown", c);
		CHECK_STR(map_error_type(c), "cancel", "map_error_type(\"%s\") unknown", c);
		CHECK_INT(map_error_known(c), 0, "map_error_known(\"%s\")", c);
	}
	CHECK_INT(map_error_to_sip(NULL), 500, "map_error_to_sip(NULL)");
	CHECK_STR(map_error_type(NULL), "cancel", "map_error_type(NULL)");
	CHECK_INT(map_error_known(NULL), 0, "map_error_known(NULL)");
}

static void test_from_sip(void)
{
	for (size_t i = 0; i < NELEM(from_sip_cases); i++) {
		int s = from_sip_cases[i].status;
		const char *c = map_error_from_sip(s);

		CHECK_STR(c, from_sip_cases[i].condition, "map_error_from_sip(%d)", s);
		/* whatever comes back must be a condition we can put in a stanza */
		CHECK_INT(map_error_known(c), 1, "map_error_from_sip(%d) = \"%s\" is known", s,
			  c ? c : "(null)");
	}
}

/* Every answer of both directions, for every status and every condition, is a defined value:
 * a SIP failure status, a known condition. */
static void test_consistency(void)
{
	for (size_t i = 0; i < NELEM(to_sip_cases); i++) {
		const char *c = to_sip_cases[i].condition;
		int s = map_error_to_sip(c);

		CHECK(s >= 300 && s <= 699, "map_error_to_sip(\"%s\") = %d is a failure", c, s);
		CHECK_INT(map_error_known(map_error_from_sip(s)), 1,
			  "the way back from %d (for \"%s\")", s, c);
	}
	for (int s = -1; s <= 1000; s++) {
		const char *c = map_error_from_sip(s);

		CHECK(c != NULL && map_error_known(c), "map_error_from_sip(%d) = \"%s\"", s,
		      c ? c : "(null)");
	}
	/* the conditions whose SIP status has its own row map back to themselves */
	static const char *const round_trip[] = {
		"bad-request", "feature-not-implemented", "forbidden", "gone",
		"internal-server-error", "item-not-found", "not-acceptable",
		"recipient-unavailable", "redirect", "remote-server-timeout",
	};
	for (size_t i = 0; i < NELEM(round_trip); i++)
		CHECK_STR(map_error_from_sip(map_error_to_sip(round_trip[i])), round_trip[i],
			  "\"%s\" -> SIP -> XMPP", round_trip[i]);
}

static void test_deviations(void)
{
	for (size_t i = 0; i < NELEM(deviations); i++) {
		const char *c = deviations[i].condition;
		int s = map_error_to_sip(c);

		CHECK_INT(s, deviations[i].status, "deviation: map_error_to_sip(\"%s\")", c);
		CHECK(s != deviations[i].rfc_alternative,
		      "deviation: \"%s\" must not map to %d", c, deviations[i].rfc_alternative);
	}
	/* a 401 from SIP still reads as not-authorized even though we never send one */
	CHECK_STR(map_error_from_sip(401), "not-authorized", "401 the other way");
	CHECK_STR(map_error_from_sip(491), "unexpected-request", "491 the other way");
}

int main(void)
{
	test_to_sip();
	test_from_sip();
	test_consistency();
	test_deviations();
	TEST_DONE();
}
