/* encode.c - the fixed parts of an outgoing request written once, as plain text, instead of by
 * Sofia's encoders when the request is first sent.
 *
 * Sofia turns each header of an outgoing message into text in msg_headers_prepare(); a header
 * whose text is already set (msg_common_t's h_data and h_len, public fields) is sent as it
 * stands.  Its encoders write the request line (or a response's status line), CSeq,
 * Max-Forwards and Content-Length through snprintf(): about 7 400 of the ~108 000 instructions
 * per XMPP -> SIP message (docs/benchmarks.md), for text that is a method, a URI and three
 * numbers, and ~3 000 of a SIP -> XMPP message's answer.  Here the same octets are written with
 * copies.  The request line's URI is encoded by Sofia's own url_e(), so the text
 * is what sip_request_e() would write; a header that Sofia changes afterwards is cleared by it
 * (msg_fragment_clear) and encoded by it again, as it would be without this.  The unit test
 * (tests/unit/test_encode.c) holds the result against Sofia's own encoding, octet for octet.
 */
#include <string.h>

#include "sip_int.h"

#include <sofia-sip/msg_header.h>
#include <sofia-sip/url.h>

/* The room for all the lines written here; a request line that does not fit is left to Sofia. */
#define ENC_MAX 1024

/* The lines, one after the other in buf (not zeroed: only len octets are ever read); each
 * header's line is recorded and set once they are all written, from one allocation. */
struct enc {
	size_t len;
	int overflow;
	size_t nlines;
	struct {
		msg_common_t *h;
		size_t at, len;
	} line[5];
	char buf[ENC_MAX];
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

/* A line for h starts: the state to go back to if it does not fit. */
static size_t enc_begin(const struct enc *e)
{
	return e->len;
}

/* The line for h that began at start ends here; one that did not fit is dropped (Sofia
 * encodes that header) and the room is free again for the others. */
static void enc_end(struct enc *e, msg_common_t *h, size_t start)
{
	enc_put(e, "\r\n", 2);
	if (e->overflow || e->nlines == sizeof(e->line) / sizeof(e->line[0])) {
		e->len = start;
		e->overflow = 0;
		return;
	}
	e->line[e->nlines].h = h;
	e->line[e->nlines].at = start;
	e->line[e->nlines].len = e->len - start;
	e->nlines++;
}

static void enc_request_line(struct enc *e, sip_request_t *rq)
{
	size_t start = enc_begin(e);
	issize_t n;

	if (!rq->rq_method_name)
		return;
	enc_puts(e, rq->rq_method_name);
	enc_put(e, " ", 1);
	if (e->overflow)
		n = -1;
	else
		n = url_e(e->buf + e->len, sizeof(e->buf) - e->len, rq->rq_url);
	if (n < 0 || (size_t)n >= sizeof(e->buf) - e->len) {
		/* url_e() truncated it: Sofia's own encoder does the line */
		e->len = start;
		e->overflow = 0;
		return;
	}
	e->len += (size_t)n;
	enc_put(e, " ", 1);
	enc_puts(e, rq->rq_version ? rq->rq_version : "");
	enc_end(e, rq->rq_common, start);
}

/* As sip_status_e(): a status outside 100..999 is written as 000. */
static void enc_status_line(struct enc *e, sip_status_t *st)
{
	size_t start = enc_begin(e);
	unsigned status = st->st_status >= 100 && st->st_status <= 999 ? (unsigned)st->st_status : 0;
	char digits[3] = { (char)('0' + status / 100), (char)('0' + status / 10 % 10),
			   (char)('0' + status % 10) };

	enc_puts(e, st->st_version ? st->st_version : "");
	enc_put(e, " ", 1);
	enc_put(e, digits, 3);
	enc_put(e, " ", 1);
	enc_puts(e, st->st_phrase ? st->st_phrase : "");
	enc_end(e, st->st_common, start);
}

static void enc_numeric(struct enc *e, msg_common_t *h, const char *name, unsigned long v)
{
	size_t start = enc_begin(e);

	enc_puts(e, name);
	enc_num(e, v);
	enc_end(e, h, start);
}

int sip_encode_fixed(msg_t *msg, sip_t *sip)
{
	su_home_t *home = msg_home(msg);
	size_t body = sip->sip_payload ? sip->sip_payload->pl_len : 0;
	sip_content_length_t *l = sip->sip_content_length;
	msg_common_t dummy[1];	/* the Content-Length's line until its header exists */
	struct enc e;
	char *text;

	if (sip->sip_multipart)
		return -1;	/* its length is known only once Sofia has put it together */
	e.len = 0;
	e.overflow = 0;
	e.nlines = 0;
	if (sip->sip_request && !sip->sip_request->rq_common->h_data)
		enc_request_line(&e, sip->sip_request);
	if (sip->sip_status && !sip->sip_status->st_common->h_data)
		enc_status_line(&e, sip->sip_status);
	if (sip->sip_cseq && sip->sip_cseq->cs_method_name && !sip->sip_cseq->cs_common->h_data) {
		size_t start = enc_begin(&e);

		enc_puts(&e, "CSeq: ");
		enc_num(&e, sip->sip_cseq->cs_seq);
		enc_put(&e, " ", 1);
		enc_puts(&e, sip->sip_cseq->cs_method_name);
		enc_end(&e, sip->sip_cseq->cs_common, start);
	}
	if (sip->sip_max_forwards && !sip->sip_max_forwards->mf_common->h_data)
		enc_numeric(&e, sip->sip_max_forwards->mf_common, "Max-Forwards: ",
			    sip->sip_max_forwards->mf_count);
	/* a Content-Length added here is written into its own header's block, which also holds
	 * the other lines: a message's home keeps a table of its blocks, and one block more per
	 * message can be the one that makes it grow (su_alloc.c: from 31 to 127 entries once 21
	 * blocks are in use, ~2 KB more per message and ~3 000 instructions) */
	if (!l || (l->l_length == body && !l->l_common->h_data))
		enc_numeric(&e, l ? l->l_common : dummy, "Content-Length: ", body);
	if (!l) {
		l = (sip_content_length_t *)msg_header_alloc(home, sip_content_length_class, e.len);
		if (!l)
			return -1;
		l->l_length = (uint32_t)body;
		text = (char *)l + sip_content_length_class->hc_size;
		for (size_t i = 0; i < e.nlines; i++)
			if (e.line[i].h == dummy)
				e.line[i].h = l->l_common;
		if (msg_header_insert(msg, (msg_pub_t *)sip, (msg_header_t *)l) < 0)
			return -1;
	} else if (!e.nlines || !(text = su_alloc(home, e.len))) {
		return 0;	/* nothing written, or no memory: Sofia encodes them all */
	}
	memcpy(text, e.buf, e.len);
	for (size_t i = 0; i < e.nlines; i++) {
		e.line[i].h->h_data = text + e.line[i].at;
		e.line[i].h->h_len = e.line[i].len;
	}
	return 0;
}
