/* test_metrics.c - tests of the metrics' label escaping (gateway/metrics.c) and the counting it reads (stats.c, store.c). */
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include <event2/event.h>

#include "gateway/gw.h"
#include "gateway/store.h"
#include "tests/unit/test.h"

/* metrics_escape(): the text format's label value escapes, and nothing else */
static const struct {
	const char *in;
	const char *want;
} escapes[] = {
	{ "", "" },
	{ "sipnet", "sipnet" },
	{ "a\"b", "a\\\"b" },			/* double quote */
	{ "a\\b", "a\\\\b" },			/* backslash */
	{ "a\nb", "a\\nb" },			/* line feed */
	{ "\"\\\n", "\\\"\\\\\\n" },		/* all three, nothing between */
	{ "\\n", "\\\\n" },			/* a backslash and an n are not a line feed */
	{ "tab\there", "tab\there" },		/* other control characters are left alone */
	{ "cr\rlf", "cr\rlf" },
	{ "h\xc3\xa9llo \xe2\x98\x83", "h\xc3\xa9llo \xe2\x98\x83" },	/* UTF-8 as it is */
	{ "{a=\"1\",b=\"2\"}", "{a=\\\"1\\\",b=\\\"2\\\"}" },	/* no way out of the quotes */
	{ "sip.example", "sip.example" },
};

/* A buffer too small: cut, always terminated, and the length of the whole text returned. */
static const struct {
	const char *in;
	size_t outlen;
	const char *want;
	size_t ret;
} cuts[] = {
	{ "abc", 0, NULL, 3 },		/* nothing written */
	{ "abc", 1, "", 3 },
	{ "abc", 3, "ab", 3 },
	{ "abc", 4, "abc", 3 },
	{ "a\"c", 3, "a\\", 4 },	/* an escape may be cut in the middle: the return says so */
	{ "a\"c", 4, "a\\\"", 4 },
	{ "a\"c", 5, "a\\\"c", 4 },
};

/* stats_message(): which bucket a latency lands in (STATS_LATENCY_BOUNDS_MS, le: <= bound) */
static const struct {
	uint64_t us;
	int bucket;		/* STATS_NLATENCY: +Inf */
} buckets[] = {
	{ 0, 0 },
	{ 1000, 0 },		/* exactly 1 ms is in le="0.001" */
	{ 1001, 1 },
	{ 2000, 1 },
	{ 4999, 2 },
	{ 10000, 3 },
	{ 10001, 4 },
	{ 999999, 9 },
	{ 1000000, 9 },
	{ 10000000, 12 },
	{ 10000001, STATS_NLATENCY },
	{ 32000000, STATS_NLATENCY },	/* a SIP transaction timeout */
};

/* store_count_errors(): a store that works counts nothing; a commit the disk refuses (the file
 * may not grow: RLIMIT_FSIZE) is counted. */
static void test_store_errors(void)
{
	char dir[] = "/tmp/test_metrics.XXXXXX", err[256] = "", *path, *p;
	char *big = gw_xmalloc(256 * 1024);
	struct event_base *base = event_base_new();
	unsigned long long errors = 0, after;
	struct rlimit old, small;
	struct store *s;

	if (!base || !mkdtemp(dir)) {
		perror("test_store_errors");
		exit(2);
	}
	path = gw_xasprintf("%s/m.db", dir);
	s = store_open(base, path, err, sizeof(err));
	CHECK(s != NULL, "store: open (%s)", err);
	if (!s)
		goto out;
	store_count_errors(s, &errors);
	store_put(s, STORE_XDOC, "sip:a@sip.example", "", "small", 5);
	CHECK_INT(store_flush(s), 0, "store: a commit that works");
	CHECK_INT(errors, 0, "store: nothing counted");
	memset(big, 'p', 256 * 1024);
	if (getrlimit(RLIMIT_FSIZE, &old) < 0) {
		perror("getrlimit");
		exit(2);
	}
	small = old;
	small.rlim_cur = 64 * 1024;
	signal(SIGXFSZ, SIG_IGN);
	setrlimit(RLIMIT_FSIZE, &small);
	log_init("test_metrics", CONF_LOG_INFO, 0, 0, 0);	/* the expected errors, quietly */
	store_put(s, STORE_XDOC, "sip:b@sip.example", "", big, 256 * 1024);
	CHECK_INT(store_flush(s), -1, "store: the commit fails while the file cannot grow");
	setrlimit(RLIMIT_FSIZE, &old);
	signal(SIGXFSZ, SIG_DFL);
	CHECK(errors >= 1, "store: the failure counted (%llu)", errors);
	after = errors;
	CHECK_INT(store_flush(s), 0, "store: the retry commits");
	log_init("test_metrics", CONF_LOG_INFO, 1, 0, 0);
	CHECK_INT(errors, after, "store: a retry that works counts nothing");
	store_free(s);
out:
	unlink(path);
	p = gw_xasprintf("%s-wal", path);
	unlink(p);
	free(p);
	p = gw_xasprintf("%s-shm", path);
	unlink(p);
	free(p);
	rmdir(dir);
	free(path);
	free(big);
	event_base_free(base);
}

int main(void)
{
	char buf[256];

	log_init("test_metrics", CONF_LOG_INFO, 1, 0, 0);
	test_store_errors();

	for (size_t i = 0; i < NELEM(escapes); i++) {
		size_t n = metrics_escape(escapes[i].in, buf, sizeof(buf));

		CHECK_STR(buf, escapes[i].want, "escape row %zu", i);
		CHECK_INT(n, strlen(escapes[i].want), "escape row %zu: length", i);
	}
	for (size_t i = 0; i < NELEM(cuts); i++) {
		char out[16];
		size_t n;

		memset(out, 'X', sizeof(out));
		n = metrics_escape(cuts[i].in, out, cuts[i].outlen);
		CHECK_INT(n, cuts[i].ret, "cut row %zu: return", i);
		if (cuts[i].want)
			CHECK_STR(out, cuts[i].want, "cut row %zu", i);
		else
			CHECK(out[0] == 'X', "cut row %zu: outlen 0 writes nothing", i);
		CHECK(out[cuts[i].outlen] == 'X', "cut row %zu: nothing past outlen", i);
	}
	{
		/* longer than the caller's stack buffer in metrics.c */
		char in[600], out[1300];

		memset(in, '"', sizeof(in) - 1);
		in[sizeof(in) - 1] = '\0';
		CHECK_INT(metrics_escape(in, out, sizeof(out)), 2 * (sizeof(in) - 1), "long value");
		CHECK(out[0] == '\\' && out[1] == '"' && out[2 * (sizeof(in) - 1)] == '\0',
		      "long value: escaped whole");
	}

	for (size_t i = 0; i < NELEM(buckets); i++) {
		struct stats st;
		struct stats_peer ps;

		memset(&st, 0, sizeof(st));
		memset(&ps, 0, sizeof(ps));
		stats_message(&st, &ps, STATS_XMPP_TO_SIP, STATS_DELIVERED, buckets[i].us);
		for (int b = 0; b <= STATS_NLATENCY; b++)
			CHECK_INT(st.latency[STATS_XMPP_TO_SIP][b], b == buckets[i].bucket,
				  "bucket row %zu (%llu us): bucket %d", i,
				  (unsigned long long)buckets[i].us, b);
		CHECK_INT(st.latency_count[STATS_XMPP_TO_SIP], 1, "bucket row %zu: count", i);
		CHECK_INT(st.latency_sum_us[STATS_XMPP_TO_SIP], buckets[i].us, "bucket row %zu: sum",
			  i);
		CHECK_INT(st.messages[STATS_XMPP_TO_SIP][STATS_DELIVERED], 1, "row %zu: total", i);
		CHECK_INT(ps.messages[STATS_XMPP_TO_SIP][STATS_DELIVERED], 1, "row %zu: peer", i);
		CHECK_INT(st.latency_count[STATS_SIP_TO_XMPP], 0, "row %zu: other direction", i);
	}
	{
		/* no latency (UINT64_MAX), no peer (NULL), and values out of range are ignored */
		struct stats st;

		memset(&st, 0, sizeof(st));
		stats_message(&st, NULL, STATS_SIP_TO_XMPP, STATS_REFUSED, UINT64_MAX);
		stats_message(&st, NULL, STATS_NDIR, STATS_REFUSED, 5);
		stats_message(&st, NULL, STATS_SIP_TO_XMPP, STATS_NVERDICT, 5);
		CHECK_INT(st.messages[STATS_SIP_TO_XMPP][STATS_REFUSED], 1, "refused counted");
		CHECK_INT(st.latency_count[STATS_SIP_TO_XMPP], 0, "without latency");
		stats_sip_status(&st, 1, 200);
		stats_sip_status(&st, 0, 408);
		stats_sip_status(&st, 1, 99);
		stats_sip_status(&st, 1, 700);
		stats_sip_status(&st, 1, 699);
		CHECK_INT(st.sip_sent[200 - STATS_SIP_MIN], 1, "200 sent");
		CHECK_INT(st.sip_received[408 - STATS_SIP_MIN], 1, "408 received");
		CHECK_INT(st.sip_sent[699 - STATS_SIP_MIN], 1, "699 is the last code counted");
	}
	TEST_DONE();
}
