/* test_compact.c - table-driven tests of compact.c's records (sip/sip_int.h): which received
 * request is new, a retransmission of a recorded one, or the same request by another branch;
 * how long an answered record lives (UDP) or does not (TCP). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sip/sip_int.h"
#include "tests/unit/test.h"

#include <sofia-sip/msg.h>
#include <sofia-sip/sip_parser.h>

#define LIFETIME 32000

/* A MESSAGE with the fields that identify it. */
static msg_t *request(const char *method, const char *call_id, unsigned cseq,
		      const char *from_tag, const char *branch, const char *sent_by)
{
	char text[8192];
	int n;
	msg_t *m;

	n = snprintf(text, sizeof(text),
		     "%s sip:alice@xmpp.example SIP/2.0\r\n"
		     "Via: SIP/2.0/UDP %s%s%s\r\n"
		     "From: <sip:bob@sip.example>%s%s\r\n"
		     "To: <sip:alice@xmpp.example>\r\n"
		     "Call-ID: %s\r\n"
		     "CSeq: %u %s\r\n"
		     "Content-Length: 0\r\n\r\n",
		     method, sent_by, branch ? ";branch=" : "", branch ? branch : "",
		     from_tag ? ";tag=" : "", from_tag ? from_tag : "", call_id, cseq, method);
	if (n < 0 || (size_t)n >= sizeof(text))
		TEST_FAIL("request too long for the test's buffer");
	m = msg_make(sip_default_mclass(), 0, text, n);
	if (!m || !sip_object(m) || !sip_object(m)->sip_via)
		TEST_FAIL("cannot parse: %s", text);
	return m;
}

struct step {
	const char *what;
	const char *method, *call_id;
	unsigned cseq;
	const char *from_tag, *branch, *sent_by;
	enum sip_ctr_match want;
	int answer;		/* answer the record found/made with this status (0: leave it) */
	int reliable;
	unsigned long at_ms;	/* the clock for this step */
};

static const struct step steps[] = {
	{ "a first MESSAGE", "MESSAGE", "c1", 1, "f1", "z9hG4bK1", "192.0.2.1:5060",
	  SIP_CTR_NEW, 0, 0, 0 },
	{ "its retransmission while pending", "MESSAGE", "c1", 1, "f1", "z9hG4bK1",
	  "192.0.2.1:5060", SIP_CTR_RETRANSMISSION, 200, 0, 10 },
	{ "its retransmission once answered", "MESSAGE", "c1", 1, "f1", "z9hG4bK1",
	  "192.0.2.1:5060", SIP_CTR_RETRANSMISSION, 0, 0, 500 },
	{ "branch compared without case", "MESSAGE", "c1", 1, "f1", "Z9HG4BK1",
	  "192.0.2.1:5060", SIP_CTR_RETRANSMISSION, 0, 0, 600 },
	{ "another branch: merged", "MESSAGE", "c1", 1, "f1", "z9hG4bK2", "192.0.2.1:5060",
	  SIP_CTR_MERGED, 0, 0, 700 },
	{ "another sent-by: merged", "MESSAGE", "c1", 1, "f1", "z9hG4bK1", "192.0.2.9:5060",
	  SIP_CTR_MERGED, 0, 0, 700 },
	{ "another port: merged", "MESSAGE", "c1", 1, "f1", "z9hG4bK1", "192.0.2.1:5070",
	  SIP_CTR_MERGED, 0, 0, 700 },
	{ "the next CSeq: new", "MESSAGE", "c1", 2, "f1", "z9hG4bK3", "192.0.2.1:5060",
	  SIP_CTR_NEW, 200, 0, 800 },
	{ "another From tag: new", "MESSAGE", "c1", 1, "f2", "z9hG4bK1", "192.0.2.1:5060",
	  SIP_CTR_NEW, 403, 0, 900 },
	{ "another Call-ID: new", "MESSAGE", "c2", 1, "f1", "z9hG4bK1", "192.0.2.1:5060",
	  SIP_CTR_NEW, 200, 1, 1000 },
	{ "over TCP the record is gone once answered", "MESSAGE", "c2", 1, "f1", "z9hG4bK1",
	  "192.0.2.1:5060", SIP_CTR_NEW, 200, 1, 1100 },
	{ "OPTIONS of the same Call-ID and CSeq: new", "OPTIONS", "c1", 1, "f1", "z9hG4bK1",
	  "192.0.2.1:5060", SIP_CTR_NEW, 200, 0, 1200 },
	{ "no From tag, no branch (RFC 2543)", "MESSAGE", "c3", 7, NULL, NULL, "192.0.2.1",
	  SIP_CTR_NEW, 200, 0, 1300 },
	{ "its retransmission", "MESSAGE", "c3", 7, NULL, NULL, "192.0.2.1",
	  SIP_CTR_RETRANSMISSION, 0, 0, 1400 },
	{ "still there just before 64*T1", "MESSAGE", "c1", 1, "f1", "z9hG4bK1",
	  "192.0.2.1:5060", SIP_CTR_RETRANSMISSION, 0, 0, 10 + LIFETIME - 1 },
	{ "gone at 64*T1 after the answer", "MESSAGE", "c1", 1, "f1", "z9hG4bK1",
	  "192.0.2.1:5060", SIP_CTR_NEW, 0, 0, 10 + LIFETIME },
};

static void test_steps(void)
{
	struct sip_ctrs *t = sip_ctrs_new(LIFETIME);

	for (size_t i = 0; i < NELEM(steps); i++) {
		const struct step *s = &steps[i];
		msg_t *m = request(s->method, s->call_id, s->cseq, s->from_tag, s->branch,
				   s->sent_by);
		struct sip_ctr *c = NULL;

		sip_ctrs_expire(t, s->at_ms);
		CHECK_INT(sip_ctrs_find(t, sip_object(m), &c), s->want, "%s", s->what);
		CHECK(c != NULL, "%s: a record", s->what);
		if (c && s->answer && sip_ctr_status(c) == 0)
			CHECK_INT(sip_ctr_answered(t, c, s->answer, NULL, 0, NULL, NULL, s->reliable,
						   s->at_ms), !s->reliable, "%s: kept", s->what);
		msg_destroy(m);
	}
	sip_ctrs_free(t);
}

/* Expiry: the time to the next record's end, and every record freed at its time. */
static void test_expiry(void)
{
	struct sip_ctrs *t = sip_ctrs_new(LIFETIME);
	char cid[32];

	CHECK_INT(sip_ctrs_expire(t, 0), -1, "empty: nothing to wait for");
	for (unsigned i = 0; i < 3000; i++) {	/* past several growths of the table */
		msg_t *m;
		struct sip_ctr *c;

		snprintf(cid, sizeof(cid), "call-%u", i);
		m = request("MESSAGE", cid, 1, "f", "z9hG4bKx", "192.0.2.1:5060");
		CHECK_INT(sip_ctrs_find(t, sip_object(m), &c), SIP_CTR_NEW, "record %u", i);
		sip_ctr_answered(t, c, 200, "OK", 0, NULL, NULL, 0, i);
		msg_destroy(m);
	}
	CHECK_INT(sip_ctrs_count(t), 3000, "all kept");
	for (unsigned i = 0; i < 3000; i += 7) {
		msg_t *m;
		struct sip_ctr *c;

		snprintf(cid, sizeof(cid), "call-%u", i);
		m = request("MESSAGE", cid, 1, "f", "z9hG4bKx", "192.0.2.1:5060");
		CHECK_INT(sip_ctrs_find(t, sip_object(m), &c), SIP_CTR_RETRANSMISSION,
			  "record %u found after growth", i);
		CHECK_INT(c ? sip_ctr_status(c) : 0, 200, "record %u answered", i);
		msg_destroy(m);
	}
	CHECK_INT(sip_ctrs_expire(t, LIFETIME + 999), LIFETIME + 1000 - (LIFETIME + 999),
		  "the next in 1 ms");
	CHECK_INT(sip_ctrs_count(t), 2000, "the first 1000 gone");
	CHECK_INT(sip_ctrs_expire(t, LIFETIME + 5000), -1, "all gone");
	CHECK_INT(sip_ctrs_count(t), 0, "empty");
	sip_ctrs_free(t);
}

/* A key too long for a record is not recorded (the request then goes to nta). */
static void test_too_long(void)
{
	struct sip_ctrs *t = sip_ctrs_new(LIFETIME);
	char cid[1800];
	msg_t *m;
	struct sip_ctr *c = (struct sip_ctr *)&c;

	memset(cid, 'a', sizeof(cid) - 1);
	cid[sizeof(cid) - 1] = '\0';
	m = request("MESSAGE", cid, 1, cid + 1000, "z9hG4bK1", "192.0.2.1:5060");
	{
		/* three long fields: over the limit */
		sip_t *sip = sip_object(m);

		sip->sip_via->v_branch = cid + 200;
		CHECK_INT(sip_ctrs_find(t, sip, &c), SIP_CTR_TOO_LONG, "too long");
		CHECK(c == NULL, "no record");
		CHECK_INT(sip_ctrs_count(t), 0, "nothing kept");
	}
	msg_destroy(m);
	sip_ctrs_free(t);
}

int main(void)
{
	test_steps();
	test_expiry();
	test_too_long();
	TEST_DONE();
}
