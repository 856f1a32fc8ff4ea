/* test_session.c - table-driven tests of the chat-session translation tables (session.c): MSRP
 * failure status -> XMPP condition, and XMPP bounce condition -> failure REPORT status. */
#include <stddef.h>

#include "mapping/map.h"
#include "tests/unit/test.h"

static const struct {
	int status;
	const char *condition;
} to_xmpp[] = {
	{ 400, "bad-request" },
	{ 403, "forbidden" },
	{ 408, "remote-server-timeout" },
	{ 413, "policy-violation" },
	{ 415, "not-acceptable" },
	{ 423, "bad-request" },
	{ 481, "item-not-found" },
	{ 501, "feature-not-implemented" },
	{ 506, "conflict" },
	/* not RFC 4975 codes: the generic condition */
	{ 200, "undefined-condition" },
	{ 404, "undefined-condition" },
	{ 500, "undefined-condition" },
	{ 0, "undefined-condition" },
	{ -1, "undefined-condition" },
};

static const struct {
	const char *condition;
	int status;
} to_report[] = {
	{ "bad-request", 400 },
	{ "jid-malformed", 400 },
	{ "forbidden", 403 },
	{ "not-allowed", 403 },
	{ "not-authorized", 403 },
	{ "policy-violation", 413 },
	{ "not-acceptable", 415 },
	{ "item-not-found", 481 },
	{ "recipient-unavailable", 481 },
	{ "gone", 481 },
	{ "service-unavailable", 481 },
	{ "remote-server-not-found", 481 },
	{ "remote-server-timeout", 408 },
	/* everything else: 400 */
	{ "undefined-condition", 400 },
	{ "internal-server-error", 400 },
	{ "Forbidden", 400 },		/* conditions are case-sensitive */
	{ "", 400 },
	{ NULL, 400 },
};

int main(void)
{
	for (size_t i = 0; i < NELEM(to_xmpp); i++)
		CHECK_STR(map_msrp_error(to_xmpp[i].status), to_xmpp[i].condition, "MSRP %d",
			  to_xmpp[i].status);
	for (size_t i = 0; i < NELEM(to_report); i++) {
		const char *c = to_report[i].condition;

		CHECK_INT(map_msrp_report_status(c), to_report[i].status, "condition %s",
			  c ? c : "(null)");
		/* every condition that has its own row names a real stanza error condition */
		if (c && to_report[i].status != 400)
			CHECK(map_error_known(c), "row %zu: %s is an RFC 6120 condition", i, c);
	}
	/* the two tables agree where both speak: a report status maps back to a condition */
	for (size_t i = 0; i < NELEM(to_report); i++)
		if (to_report[i].condition)
			CHECK(map_msrp_error(map_msrp_report_status(to_report[i].condition))[0] != '\0',
			      "row %zu round trip", i);
	TEST_DONE();
}
