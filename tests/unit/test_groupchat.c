/* test_groupchat.c - table-driven tests of groupchat.c's tables: the MUC error of a failed INVITE
 * to a focus and of a NICKNAME answer (RFC 7702 section 4, RFC 7701 5.2), the SIP status of a MUC
 * join error (RFC 7702 section 6), and the BYE Reason of a MUC removal (XEP-0045 status codes). */
#include <stddef.h>
#include <string.h>

#include "mapping/map.h"
#include "tests/unit/test.h"

static const struct {
	int status;
	const char *condition;
} invite_cases[] = {
	{ 401, "registration-required" }, { 407, "registration-required" },
	{ 403, "forbidden" }, { 603, "forbidden" },
	{ 404, "item-not-found" }, { 410, "item-not-found" }, { 484, "item-not-found" },
	{ 408, "remote-server-not-found" },
	{ 480, "recipient-unavailable" },
	{ 486, "service-unavailable" }, { 600, "service-unavailable" },
	{ 488, "not-acceptable" },
	{ 500, "remote-server-not-found" }, { 502, "remote-server-not-found" },
	{ 503, "remote-server-not-found" }, { 504, "remote-server-not-found" },
	/* not in the table: any 5xx is the focus unreachable, others RFC 7247's mapping */
	{ 555, "remote-server-not-found" }, { 405, "feature-not-implemented" },
	{ 415, "not-acceptable" }, { 400, "bad-request" },
};

static const struct {
	int status;
	const char *condition;
} nickname_cases[] = {
	{ 425, "conflict" }, { 424, "jid-malformed" }, { 403, "forbidden" },
	{ 408, "remote-server-timeout" }, { 423, "not-acceptable" }, { 481, "item-not-found" },
	{ 501, "feature-not-implemented" },
	{ 400, "not-acceptable" }, { 500, "not-acceptable" }, { 0, "not-acceptable" },
};

static const struct {
	const char *condition;
	int status;
	const char *phrase;
} join_cases[] = {
	{ "not-authorized", 403, "Room Password Required" },
	{ "forbidden", 403, "Banned From The Room" },
	{ "registration-required", 403, "Members Only Room" },
	{ "item-not-found", 404, "No Such Room" },
	{ "not-allowed", 404, "Room Creation Not Allowed" },
	{ "not-acceptable", 488, "Nickname Not Acceptable" },
	{ "conflict", 486, "Nickname In Use" },
	{ "service-unavailable", 486, "Room Full" },
	{ "jid-malformed", 484, "Nickname Malformed" },
	{ "remote-server-not-found", 404, "MUC Service Not Found" },
	{ "remote-server-timeout", 504, "MUC Service Timeout" },
	/* not MUC join errors: RFC 7247's table */
	{ "bad-request", 400, "Join Refused" },
	{ "internal-server-error", 500, "Join Refused" },
	{ "undefined-condition", 400, "Join Refused" },
	{ "no-such-condition", 500, "Join Refused" },
	{ NULL, 500, "Join Refused" },
};

static const struct {
	int code;
	int cause;
	const char *text;	/* NULL: not a removal */
} removal_cases[] = {
	{ 301, 403, "banned from the room" },
	{ 307, 200, "kicked from the room" },
	{ 321, 403, "removed: affiliation changed" },
	{ 322, 403, "removed: the room is now members-only" },
	{ 332, 503, "removed: the MUC service is shutting down" },
	{ 333, 500, "removed: technical problem" },
	{ 110, 0, NULL }, { 303, 0, NULL }, { 210, 0, NULL }, { 201, 0, NULL }, { 0, 0, NULL },
};

static void test_invite_errors(void)
{
	for (size_t i = 0; i < NELEM(invite_cases); i++) {
		const char *c = map_muc_invite_error(invite_cases[i].status);

		CHECK_STR(c, invite_cases[i].condition, "map_muc_invite_error(%d)",
			  invite_cases[i].status);
		CHECK_INT(map_error_known(c), 1, "map_muc_invite_error(%d) is a condition",
			  invite_cases[i].status);
	}
}

static void test_nickname_errors(void)
{
	for (size_t i = 0; i < NELEM(nickname_cases); i++) {
		const char *c = map_muc_nickname_error(nickname_cases[i].status);

		CHECK_STR(c, nickname_cases[i].condition, "map_muc_nickname_error(%d)",
			  nickname_cases[i].status);
		CHECK_INT(map_error_known(c), 1, "map_muc_nickname_error(%d) is a condition",
			  nickname_cases[i].status);
	}
}

static void test_join_errors(void)
{
	for (size_t i = 0; i < NELEM(join_cases); i++) {
		const char *phrase = NULL;
		const char *c = join_cases[i].condition;
		int status = map_muc_join_error(c, &phrase);

		CHECK_INT(status, join_cases[i].status, "map_muc_join_error(\"%s\")", c ? c : "(null)");
		CHECK_STR(phrase, join_cases[i].phrase, "map_muc_join_error(\"%s\") phrase",
			  c ? c : "(null)");
		CHECK_INT(status >= 400 && status <= 699, 1, "a failure status for \"%s\"",
			  c ? c : "(null)");
		CHECK_INT(map_muc_join_error(c, NULL), status, "phrase NULL allowed");
	}
}

static void test_removals(void)
{
	for (size_t i = 0; i < NELEM(removal_cases); i++) {
		const char *text = NULL;
		int cause = map_muc_removal(removal_cases[i].code, &text);

		CHECK_INT(cause, removal_cases[i].cause, "map_muc_removal(%d)", removal_cases[i].code);
		if (removal_cases[i].text)
			CHECK_STR(text, removal_cases[i].text, "map_muc_removal(%d) text",
				  removal_cases[i].code);
		else
			CHECK_INT(text == NULL, 1, "map_muc_removal(%d): no text", removal_cases[i].code);
	}
}

int main(void)
{
	test_invite_errors();
	test_nickname_errors();
	test_join_errors();
	test_removals();
	TEST_DONE();
}
