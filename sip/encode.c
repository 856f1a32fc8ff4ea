/* encode.c - the fixed parts of an outgoing request written once, as plain text, instead of by
 * Sofia's encoders when the request is first sent.
 *
 * Sofia turns each header of an outgoing message into text in msg_headers_prepare(); a header
 * whose text is already set (msg_common_t's h_data and h_len, public fields) is sent as it
 * stands.  Its encoders write the request line, CSeq, Max-Forwards and Content-Length through
 * snprintf(): about 7 400 of the ~108 000 instructions per XMPP -> SIP message (docs/
 * benchmarks.md), for text that is a method, a URI and three numbers.  Here the same octets are
 * written with copies.  The request line's URI is encoded by Sofia's own url_e(), so the text
 * is what sip_request_e() would write; a header that Sofia changes afterwards is cleared by it
 * (msg_fragment_clear) and encoded by it again, as it would be without this.  The unit test
 * (tests/unit/test_encode.c) holds the result against Sofia's own encoding, octet for octet.
 */
#include <string.h>

#include "sip_int.h"

#include <sofia-sip/msg_header.h>
#include <sofia-sip/url.h>

/* The longest line written here; a longer request line is left to Sofia. */
#define ENC_LINE_MAX 1024

struct enc {
	char buf[ENC_LINE_MAX];
	size_t len;
	int overflow;
};

static void enc_put(struct enc *e, const char *s, size_t n)
{
	if (e->overflow || n > sizeof(e->buf) - e->len) {
		e->overflow = 1;
		return;
	}
	memcpy(e->buf + e->len, s, n);
	e->len += n;
}

static void enc_puts(struct enc *e, const char *s)
{
	enc_put(e, s, strlen(s));
}

static void enc_num(struct enc *e, unsigned long v)
{
	char d[24];
	size_t i = sizeof(d);

	do {
		d[--i] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	enc_put(e, d + i, sizeof(d) - i);
}

/* h's text becomes e's, copied into home (the message's).  0, or -1 (nothing set). */
static int enc_set(su_home_t *home, msg_common_t *h, struct enc *e)
{
	char *text;

	enc_put(e, "\r\n", 2);
	if (e->overflow || !(text = su_alloc(home, e->len)))
		return -1;
	memcpy(text, e->buf, e->len);
	h->h_data = text;
	h->h_len = e->len;
	return 0;
}

static void enc_request_line(su_home_t *home, sip_request_t *rq)
{
	struct enc e = { .len = 0 };
	issize_t n;

	if (!rq->rq_method_name)
		return;
	enc_puts(&e, rq->rq_method_name);
	enc_put(&e, " ", 1);
	n = url_e(e.buf + e.len, sizeof(e.buf) - e.len, rq->rq_url);
	if (n < 0 || (size_t)n >= sizeof(e.buf) - e.len)
		return;		/* url_e() truncated it: Sofia's own encoder does the line */
	e.len += (size_t)n;
	enc_put(&e, " ", 1);
	enc_puts(&e, rq->rq_version ? rq->rq_version : "");
	(void)enc_set(home, rq->rq_common, &e);
}

static void enc_numeric(su_home_t *home, msg_common_t *h, const char *name, unsigned long v)
{
	struct enc e = { .len = 0 };

	enc_puts(&e, name);
	enc_num(&e, v);
	(void)enc_set(home, h, &e);
}

int sip_encode_fixed(msg_t *msg, sip_t *sip)
{
	su_home_t *home = msg_home(msg);
	size_t body = sip->sip_payload ? sip->sip_payload->pl_len : 0;

	if (sip->sip_multipart)
		return -1;	/* its length is known only once Sofia has put it together */
	if (!sip->sip_content_length) {
		sip_content_length_t *l = sip_content_length_create(home, (uint32_t)body);

		if (!l || msg_header_insert(msg, (msg_pub_t *)sip, (msg_header_t *)l) < 0)
			return -1;
	}
	if (sip->sip_request && !sip->sip_request->rq_common->h_data)
		enc_request_line(home, sip->sip_request);
	if (sip->sip_cseq && sip->sip_cseq->cs_method_name && !sip->sip_cseq->cs_common->h_data) {
		struct enc e = { .len = 0 };

		enc_puts(&e, "CSeq: ");
		enc_num(&e, sip->sip_cseq->cs_seq);
		enc_put(&e, " ", 1);
		enc_puts(&e, sip->sip_cseq->cs_method_name);
		(void)enc_set(home, sip->sip_cseq->cs_common, &e);
	}
	if (sip->sip_max_forwards && !sip->sip_max_forwards->mf_common->h_data)
		enc_numeric(home, sip->sip_max_forwards->mf_common, "Max-Forwards: ",
			    sip->sip_max_forwards->mf_count);
	if (sip->sip_content_length->l_length == body && !sip->sip_content_length->l_common->h_data)
		enc_numeric(home, sip->sip_content_length->l_common, "Content-Length: ", body);
	return 0;
}
