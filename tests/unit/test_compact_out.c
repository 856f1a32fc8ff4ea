/* test_compact_out.c - table-driven tests of compact_out.c's pure parts (sip/sip_int.h): the
 * branch that names a record and its reading back from a response's Via (anything else is not
 * ours), and Timer E's intervals (RFC 3261 17.1.2.2). */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "sip/sip_int.h"
#include "tests/unit/test.h"

static void test_branch_round_trip(void)
{
	static const uint64_t ids[] = {
		0, 1, 31, 32, 0x8000000000000000ULL, 0xffffffffffffffffULL, 0x0123456789abcdefULL,
		0xfedcba9876543210ULL, 0x5555555555555555ULL,
	};

	for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
		char b[SIP_COUT_BRANCH_LEN];
		uint64_t back = 42;

		sip_cout_branch(ids[i], b);
		CHECK_INT(strlen(b), SIP_COUT_BRANCH_LEN - 1, "id %" PRIx64 ": length", ids[i]);
		CHECK(strncmp(b, "z9hG4bK", 7) == 0, "id %" PRIx64 ": the magic cookie: %s", ids[i], b);
		CHECK_INT(sip_cout_branch_id(b, &back), 0, "id %" PRIx64 ": read back", ids[i]);
		CHECK(back == ids[i], "id %" PRIx64 ": read back as %" PRIx64, ids[i], back);
	}
}

static void test_branch_not_ours(void)
{
	static const struct {
		const char *branch;
		int ok;
		uint64_t id;
	} rows[] = {
		{ "z9hG4bK0000000000000", 0, 0 },
		{ "z9hG4bK000000000000v", 0, 31 },
		{ "z9hG4bKfvvvvvvvvvvvv", 0, 0xffffffffffffffffULL },
		{ "Z9HG4BKFVVVVVVVVVVVV", 0, 0xffffffffffffffffULL },	/* case-blind, as nta is */
		{ "z9hG4bKgvvvvvvvvvvvv", -1, 0 },	/* 65 bits */
		{ "z9hG4bK000000000000", -1, 0 },	/* a character short */
		{ "z9hG4bK00000000000000", -1, 0 },	/* one too many */
		{ "z9hG4bK000000000000w", -1, 0 },	/* not base 32 */
		{ "z9hG4bK00000000000-0", -1, 0 },
		{ "z9hG4bL0000000000000", -1, 0 },	/* not the cookie */
		{ "0000000000000000000000", -1, 0 },
		{ "", -1, 0 },
		{ NULL, -1, 0 },
		{ "z9hG4bK.cA6lKb3fQkWb", -1, 0 },	/* a branch nta or a peer made */
	};

	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		uint64_t id = 7;
		int rc = sip_cout_branch_id(rows[i].branch, &id);

		CHECK_INT(rc, rows[i].ok, "row %zu (%s): accepted", i, rows[i].branch ? rows[i].branch : "NULL");
		if (rc == 0)
			CHECK(id == rows[i].id, "row %zu: id %" PRIx64, i, id);
	}
}

static void test_timer_e(void)
{
	static const struct {
		uint32_t t1, t2;
		int proceeding;
		uint32_t want[8];	/* the intervals from T1 on */
	} rows[] = {
		{ 500, 4000, 0, { 500, 1000, 2000, 4000, 4000, 4000, 4000, 4000 } },
		{ 100, 4000, 0, { 100, 200, 400, 800, 1600, 3200, 4000, 4000 } },
		{ 500, 4000, 1, { 500, 4000, 4000, 4000, 4000, 4000, 4000, 4000 } },
		{ 3000, 4000, 0, { 3000, 4000, 4000, 4000, 4000, 4000, 4000, 4000 } },
		{ 4000, 4000, 0, { 4000, 4000, 4000, 4000, 4000, 4000, 4000, 4000 } },
		{ 10, 4000, 0, { 10, 20, 40, 80, 160, 320, 640, 1280 } },
	};

	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		uint32_t iv = rows[i].t1;

		for (size_t k = 0; k < 8; k++) {
			CHECK_INT(iv, rows[i].want[k], "row %zu: interval %zu", i, k);
			iv = sip_cout_next_interval(iv, rows[i].proceeding, rows[i].t2);
		}
	}
}

int main(void)
{
	test_branch_round_trip();
	test_branch_not_ours();
	test_timer_e();
	TEST_DONE();
}
