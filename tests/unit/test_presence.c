/* test_presence.c - table-driven tests of how a shared SIP subscription's end is handled
 * (presence_end_rule in presence.c): every row of the rule table has a row here. */
#include <stddef.h>

#include "mapping/map.h"
#include "tests/unit/test.h"

static const struct {
	int status;
	const char *reason;
	enum presence_end_action action;
	unsigned delay;
} cases[] = {
	/* NOTIFY terminated (RFC 6665 4.1.3): the reason decides */
	{ 0, "rejected", END_REJECT, 0 },
	{ 0, "REJECTED", END_REJECT, 0 },		/* tokens compare case-insensitively */
	{ 0, "noresource", END_REJECT, 0 },
	{ 0, "timeout", END_RESUBSCRIBE, 0 },
	{ 0, "deactivated", END_RESUBSCRIBE, 0 },
	{ 0, "probation", END_RESUBSCRIBE, 30 },
	{ 0, "giveup", END_RESUBSCRIBE, 30 },
	{ 0, NULL, END_BACKOFF, 0 },			/* no reason: retry, never unsubscribe */
	{ 0, "", END_BACKOFF, 0 },
	{ 0, "invariant", END_BACKOFF, 0 },		/* an extension reason */
	{ 0, "rejected;x", END_BACKOFF, 0 },		/* not the token itself */
	/* SUBSCRIBE (or refresh) failed: the status decides */
	{ 408, NULL, END_BACKOFF, 0 },
	{ 423, NULL, END_BACKOFF, 0 },
	{ 480, NULL, END_BACKOFF, 0 },
	{ 481, NULL, END_RESUBSCRIBE, 0 },		/* the notifier restarted */
	{ 482, NULL, END_BACKOFF, 0 },
	{ 491, NULL, END_BACKOFF, 0 },
	{ 500, NULL, END_BACKOFF, 0 },
	{ 503, NULL, END_BACKOFF, 0 },			/* the 5xx row */
	{ 504, NULL, END_BACKOFF, 0 },
	{ 599, NULL, END_BACKOFF, 0 },
	{ 600, NULL, END_REJECT, 0 },
	{ 603, NULL, END_REJECT, 0 },			/* the 6xx row */
	{ 400, NULL, END_REJECT, 0 },
	{ 401, NULL, END_REJECT, 0 },
	{ 403, NULL, END_REJECT, 0 },			/* the 4xx row */
	{ 404, NULL, END_REJECT, 0 },
	{ 489, NULL, END_REJECT, 0 },
	{ 499, NULL, END_REJECT, 0 },
	{ 403, "timeout", END_REJECT, 0 },		/* a status wins over any reason */
	{ 300, NULL, END_BACKOFF, 0 },			/* a redirect is not followed: retried */
	{ 302, NULL, END_BACKOFF, 0 },
};

int main(void)
{
	for (size_t i = 0; i < NELEM(cases); i++) {
		unsigned delay = 12345;
		enum presence_end_action a = presence_end_rule(cases[i].status, cases[i].reason,
							       &delay);

		CHECK_INT(a, cases[i].action, "row %zu: %d %s", i, cases[i].status,
			  cases[i].reason ? cases[i].reason : "(none)");
		CHECK_INT(delay, cases[i].delay, "row %zu: delay", i);
		CHECK_INT(presence_end_rule(cases[i].status, cases[i].reason, NULL), a,
			  "row %zu: delay pointer optional", i);
	}
	TEST_DONE();
}
