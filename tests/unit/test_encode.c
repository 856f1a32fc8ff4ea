/* test_encode.c - table-driven tests of encode.c (sip/sip_int.h): a request or an answer whose
 * fixed parts were written by sip_encode_fixed() goes out octet for octet as Sofia's own
 * encoders would write it, and a part it leaves to Sofia (too long, or changed after) is still
 * right. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sip/sip_int.h"
#include "tests/unit/test.h"

#include <sofia-sip/msg.h>
#include <sofia-sip/msg_addr.h>
#include <sofia-sip/msg_header.h>
#include <sofia-sip/sip_header.h>
#include <sofia-sip/sip_parser.h>

struct row {
	const char *what;
	const char *request_line;	/* parsed by Sofia into the request's object */
	unsigned cseq;
	const char *max_forwards;	/* NULL: none */
	const char *content_length;	/* NULL: none; else a value that may be wrong */
	size_t body;			/* octets of body */
	int want_line_set;		/* the request line's text is ours (1) or Sofia's (0) */
};

static const struct row rows[] = {
	{ "a plain MESSAGE", "MESSAGE sip:bob@sip.example SIP/2.0", 1, "70", NULL, 5, 1 },
	{ "IPv6 host, port, parameters", "MESSAGE sip:b%40ob@[2001:db8::1]:5070;transport=udp;lr "
	  "SIP/2.0", 4294967295u, "0", NULL, 0, 1 },
	{ "password and user parameter", "MESSAGE sip:user:pw@example.com;user=phone SIP/2.0", 77,
	  "70", NULL, 3000, 1 },
	{ "sips, escaped user", "MESSAGE sips:%61lice%20x@example.com:5061 SIP/2.0", 2, NULL,
	  NULL, 1, 1 },
	{ "a tel URI", "MESSAGE tel:+1-555-0100;phone-context=example.com SIP/2.0", 3, "69", NULL,
	  12, 1 },
	{ "a Content-Length already right", "MESSAGE sip:a@b SIP/2.0", 9, "70", "5", 5, 1 },
	{ "a Content-Length that is wrong (Sofia corrects it)", "MESSAGE sip:a@b SIP/2.0", 9, "70",
	  "99", 5, 1 },
	{ "another method", "OPTIONS sip:sip.example SIP/2.0", 100, "0", NULL, 0, 1 },
};

/* The request of row r; long_user > 0 makes its URI's user that long. */
static msg_t *make(const struct row *r, size_t long_user, int encode)
{
	msg_t *m = msg_create(sip_default_mclass(), 0);
	sip_t *sip = sip_object(m);
	su_home_t *home = msg_home(m);
	char line[4096], cseq[64], *body;
	const char *method;
	size_t mlen;

	if (long_user) {
		char user[3000];

		memset(user, 'u', long_user);
		user[long_user] = '\0';
		snprintf(line, sizeof(line), "MESSAGE sip:%s@sip.example SIP/2.0", user);
	} else {
		snprintf(line, sizeof(line), "%s", r->request_line);
	}
	mlen = strcspn(line, " ");
	method = su_strndup(home, line, mlen);
	snprintf(cseq, sizeof(cseq), "%u %s", r->cseq, method);
	body = su_alloc(home, r->body + 1);
	memset(body, 'x', r->body);
	body[r->body] = '\0';
	if (sip_add_make(m, sip, sip_request_class, line) < 0 ||
	    sip_add_make(m, sip, sip_via_class, "SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKx") < 0 ||
	    sip_add_make(m, sip, sip_from_class, "<sip:alice@xmpp.example>;tag=f1") < 0 ||
	    sip_add_make(m, sip, sip_to_class, "<sip:bob@sip.example>") < 0 ||
	    sip_add_make(m, sip, sip_call_id_class, "c1@xmpp.example") < 0 ||
	    sip_add_make(m, sip, sip_cseq_class, cseq) < 0 ||
	    (r->max_forwards && sip_add_make(m, sip, sip_max_forwards_class, r->max_forwards) < 0) ||
	    (r->content_length &&
	     sip_add_make(m, sip, sip_content_length_class, r->content_length) < 0) ||
	    sip_add_make(m, sip, sip_content_type_class, "text/plain;charset=UTF-8") < 0 ||
	    msg_header_insert(m, (msg_pub_t *)sip, (msg_header_t *)
			      sip_payload_create(home, body, r->body)) < 0) {
		TEST_FAIL("%s: cannot build the request", r->what);
		msg_destroy(m);
		return NULL;
	}
	if (encode)
		CHECK_INT(sip_encode_fixed(m, sip), 0, "%s: sip_encode_fixed", r->what);
	return m;
}

/* The octets Sofia would send for m: completed and serialized as nta does, then its iovecs. */
static char *wire(msg_t *m, size_t *len)
{
	sip_t *sip = sip_object(m);
	msg_iovec_t vec[64];
	isize_t n;
	char *out;
	size_t used = 0;

	if (sip_complete_message(m) < 0 || msg_serialize(m, (msg_pub_t *)sip) < 0 ||
	    msg_prepare(m) < 0)
		return NULL;
	n = msg_iovec(m, vec, 64);
	if (n <= 0 || n > 64)
		return NULL;
	out = malloc(msg_size(m) + 1);
	for (isize_t i = 0; i < n; i++) {
		memcpy(out + used, vec[i].mv_base, vec[i].mv_len);
		used += vec[i].mv_len;
	}
	out[used] = '\0';
	*len = used;
	return out;
}

/* Frees what a comparison made (any of them may be NULL). */
static void release(char *a, char *b, msg_t *ours, msg_t *sofias)
{
	free(a);
	free(b);
	if (ours)
		msg_destroy(ours);
	if (sofias)
		msg_destroy(sofias);
}

static void compare(const struct row *r, size_t long_user, int want_line_set)
{
	msg_t *ours = make(r, long_user, 1), *sofias = make(r, long_user, 0);
	char *a = NULL, *b = NULL;
	size_t alen = 0, blen = 0;

	if (!ours || !sofias)
		goto out;
	CHECK_INT(sip_object(ours)->sip_request->rq_common->h_data != NULL, want_line_set,
		  "%s: whose request line", r->what);
	CHECK(sip_object(ours)->sip_cseq->cs_common->h_data &&
	      (sip_object(ours)->sip_content_length->l_common->h_data ||
	       (r->content_length && strtoul(r->content_length, NULL, 10) != r->body)) &&
	      (!r->max_forwards || sip_object(ours)->sip_max_forwards->mf_common->h_data),
	      "%s: CSeq, Content-Length and Max-Forwards written by encode.c", r->what);
	a = wire(ours, &alen);
	b = wire(sofias, &blen);
	CHECK(a && b, "%s: serialized", r->what);
	if (a && b) {
		CHECK_INT(alen, blen, "%s: length", r->what);
		CHECK_STR(a, b, "%s: the octets sent", r->what);
	}
	/* what a reader of the wire finds: the body's length, and the request parses back */
	if (a) {
		msg_t *back = msg_make(sip_default_mclass(), 0, a, (isize_t)alen);
		sip_t *bs = back ? sip_object(back) : NULL;

		CHECK(bs && bs->sip_content_length && bs->sip_content_length->l_length == r->body &&
		      (r->body == 0 ? !bs->sip_payload :
		       bs->sip_payload && bs->sip_payload->pl_len == r->body),
		      "%s: parses back with its body", r->what);
		if (back)
			msg_destroy(back);
	}
out:
	release(a, b, ours, sofias);
}

/* Answers as compact.c sends them: the status line, CSeq and Content-Length written here. */
static const struct answer {
	const char *what;
	unsigned status;
	const char *phrase;
} answers[] = {
	{ "200", 200, "OK" },
	{ "202 with its phrase", 202, "Accepted" },
	{ "403 with a phrase of several words", 403, "Only users of the gateway's domain" },
	{ "503", 503, "Service Unavailable" },
	{ "an empty phrase", 488, "" },
	{ "a status of 6xx", 699, "Whatever" },
};

static msg_t *make_answer(const struct answer *a, int encode)
{
	msg_t *m = msg_create(sip_default_mclass(), 0);
	sip_t *sip = sip_object(m);
	su_home_t *home = msg_home(m);

	if (msg_header_insert(m, (msg_pub_t *)sip, (msg_header_t *)
			      sip_status_create(home, a->status, a->phrase, NULL)) < 0 ||
	    sip_add_make(m, sip, sip_via_class, "SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKx;"
			 "received=127.0.0.1;rport=5060") < 0 ||
	    sip_add_make(m, sip, sip_from_class, "<sip:bob@sip.example>;tag=f1") < 0 ||
	    sip_add_make(m, sip, sip_to_class, "<sip:alice@xmpp.example>;tag=t1") < 0 ||
	    sip_add_make(m, sip, sip_call_id_class, "c1@sip.example") < 0 ||
	    sip_add_make(m, sip, sip_cseq_class, "4711 MESSAGE") < 0 ||
	    sip_add_make(m, sip, sip_allow_class, "MESSAGE, OPTIONS") < 0) {
		TEST_FAIL("%s: cannot build the answer", a->what);
		msg_destroy(m);
		return NULL;
	}
	if (encode) {
		CHECK_INT(sip_encode_fixed(m, sip), 0, "%s: sip_encode_fixed", a->what);
		CHECK(sip->sip_status->st_common->h_data && sip->sip_cseq->cs_common->h_data,
		      "%s: status line and CSeq written by encode.c", a->what);
	}
	return m;
}

static void compare_answer(const struct answer *ans)
{
	msg_t *ours = make_answer(ans, 1), *sofias = make_answer(ans, 0);
	char *a = NULL, *b = NULL;
	size_t alen = 0, blen = 0;

	if (ours && sofias) {
		a = wire(ours, &alen);
		b = wire(sofias, &blen);
		CHECK(a && b, "%s: serialized", ans->what);
		if (a && b)
			CHECK_STR(a, b, "%s: the octets sent", ans->what);
	}
	release(a, b, ours, sofias);
}

/* A header Sofia changes after sip_encode_fixed(): cleared by Sofia, encoded by it again. */
static void changed_after(void)
{
	const struct row *r = &rows[0];
	msg_t *m = make(r, 0, 1);
	sip_t *sip = m ? sip_object(m) : NULL;
	char *a;
	size_t alen = 0;

	if (!sip)
		return;
	sip->sip_cseq->cs_seq = 42;
	msg_fragment_clear(sip->sip_cseq->cs_common);
	a = wire(m, &alen);
	CHECK(a && strstr(a, "\r\nCSeq: 42 MESSAGE\r\n"), "a CSeq changed after: the new one sent");
	free(a);
	msg_destroy(m);
}

int main(void)
{
	for (size_t i = 0; i < NELEM(rows); i++)
		compare(&rows[i], 0, rows[i].want_line_set);
	/* a request line longer than encode.c's line: left to Sofia, still right */
	compare(&rows[0], 1100, 0);
	compare(&rows[0], 900, 1);
	for (size_t i = 0; i < NELEM(answers); i++)
		compare_answer(&answers[i]);
	changed_after();
	TEST_DONE();
}
