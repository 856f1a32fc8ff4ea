/* test_im.c - table-driven tests of the pager-mode IM helpers (mapping/im.c): text checks, CPIM, stanza fields, bounces. */
#include <stdlib.h>
#include <string.h>

#include <strophe.h>

#include "mapping/map.h"
#include "xmpp/xmpp.h"
#include "tests/unit/test.h"

#define EUTF8 MAP_TEXT_EUTF8
#define ECHAR MAP_TEXT_ECHAR
/* a byte string with its length, so embedded NULs count */
#define B(s) s, sizeof(s) - 1

/* ---- map_text_check ------------------------------------------------------------------------ */

static const struct {
	const char *s;
	size_t len;
	int want;
} text_cases[] = {
	{ B(""), 0 },
	{ B("hello, world"), 0 },
	{ B("tab\there\r\nand\nnewline\r"), 0 },
	{ B(" !~\x7f"), 0 },				/* DEL is an XML 1.0 Char */
	{ B("caf\xc3\xa9"), 0 },			/* 2 bytes: U+00E9 */
	{ B("\xc2\x80"), 0 },				/* U+0080, smallest 2-byte */
	{ B("\xdf\xbf"), 0 },				/* U+07FF */
	{ B("\xe0\xa0\x80"), 0 },			/* U+0800, smallest 3-byte */
	{ B("\xe2\x82\xac"), 0 },			/* U+20AC euro */
	{ B("\xed\x9f\xbf"), 0 },			/* U+D7FF, just below the surrogates */
	{ B("\xee\x80\x80"), 0 },			/* U+E000, just above them */
	{ B("\xef\xbf\xbd"), 0 },			/* U+FFFD */
	{ B("\xf0\x90\x80\x80"), 0 },			/* U+10000, smallest 4-byte */
	{ B("\xf0\x9f\x98\x80"), 0 },			/* U+1F600 */
	{ B("\xf4\x8f\xbf\xbf"), 0 },			/* U+10FFFF, the last one */
	{ B("\xe4\xb8\xad\xe6\x96\x87 \xd0\x9f\xd1\x80\xd0\xb8"), 0 },
	/* characters XML 1.0 does not allow */
	{ B("\x00"), ECHAR },
	{ B("a\x00" "b"), ECHAR },
	{ B("\x0b"), ECHAR },
	{ B("\x0c"), ECHAR },
	{ B("a\x1b[0m"), ECHAR },
	{ B("\xef\xbf\xbe"), ECHAR },			/* U+FFFE */
	{ B("\xef\xbf\xbf"), ECHAR },			/* U+FFFF */
	{ B("ok\xef\xbf\xbfok"), ECHAR },
	/* overlong forms */
	{ B("\xc0\x80"), EUTF8 },
	{ B("\xc0\xaf"), EUTF8 },
	{ B("\xc1\xbf"), EUTF8 },
	{ B("\xe0\x80\x80"), EUTF8 },
	{ B("\xe0\x9f\xbf"), EUTF8 },
	{ B("\xf0\x80\x80\x80"), EUTF8 },
	{ B("\xf0\x8f\xbf\xbf"), EUTF8 },
	/* UTF-16 surrogates */
	{ B("\xed\xa0\x80"), EUTF8 },
	{ B("\xed\xaf\xbf"), EUTF8 },
	{ B("\xed\xb0\x80"), EUTF8 },
	{ B("\xed\xbf\xbf"), EUTF8 },
	{ B("\xed\xa0\xbd\xed\xb8\x80"), EUTF8 },	/* CESU-8 pair */
	/* beyond U+10FFFF, and the old 5- and 6-byte forms */
	{ B("\xf4\x90\x80\x80"), EUTF8 },
	{ B("\xf5\x80\x80\x80"), EUTF8 },
	{ B("\xf7\xbf\xbf\xbf"), EUTF8 },
	{ B("\xf8\x88\x80\x80\x80"), EUTF8 },
	{ B("\xfc\x84\x80\x80\x80\x80"), EUTF8 },
	{ B("\xfe"), EUTF8 },
	{ B("\xff"), EUTF8 },
	/* truncated sequences */
	{ B("\xc3"), EUTF8 },
	{ B("caf\xc3"), EUTF8 },
	{ B("\xe2\x82"), EUTF8 },
	{ B("\xf0\x9f\x98"), EUTF8 },
	{ B("\xc3" "a"), EUTF8 },
	{ B("\xe2\x82" "a"), EUTF8 },
	{ B("\xf0\x9f\x98" "a"), EUTF8 },
	{ B("\xe2" "a\xac"), EUTF8 },
	/* lone continuation bytes */
	{ B("\x80"), EUTF8 },
	{ B("a\xbf"), EUTF8 },
	{ B("\xc3\xa9\xa9"), EUTF8 },
	/* the first problem decides the verdict */
	{ B("\x01\xff"), ECHAR },
	{ B("\xff\x01"), EUTF8 },
	/* only len bytes are looked at */
	{ "ab\xff", 2, 0 },
	{ "ab\x01", 2, 0 },
	{ "caf\xc3\xa9", 4, EUTF8 },
	{ "\xff", 0, 0 },
};

static void test_text_check(void)
{
	for (size_t i = 0; i < NELEM(text_cases); i++)
		CHECK_INT(map_text_check(text_cases[i].s, text_cases[i].len), text_cases[i].want,
			  "map_text_check row %zu (%zu bytes)", i, text_cases[i].len);
	/* every C0 control: only TAB, LF and CR are characters */
	for (int c = 0; c < 0x20; c++) {
		char s[3] = { 'a', (char)c, 'b' };
		int want = (c == '\t' || c == '\n' || c == '\r') ? 0 : ECHAR;

		CHECK_INT(map_text_check(s, sizeof(s)), want, "map_text_check(\"a\\x%02x b\")", c);
	}
	/* every lead byte that cannot start a sequence */
	for (int c = 0x80; c <= 0xff; c++) {
		char s[1] = { (char)c };

		CHECK_INT(map_text_check(s, 1), EUTF8, "map_text_check(\"\\x%02x\") alone", c);
	}
}

/* ---- map_cpim_parse ------------------------------------------------------------------------ */

/* RFC 3862 section 6.1, with CRLF line ends (the Require line is added by one row below) */
#define RFC3862_HEAD \
	"From: MR SANDERS <im:piglet@100akerwood.com>\r\n" \
	"To: Depressed Donkey <im:eeyore@100akerwood.com>\r\n" \
	"DateTime: 2000-12-13T13:40:00-08:00\r\n" \
	"Subject: the weather will be fine today\r\n" \
	"Subject:;lang=fr beau temps prevu pour aujourd'hui\r\n" \
	"NS: MyFeatures <mid:MessageFeatures@id.foo.com>\r\n"
#define RFC3862_TAIL \
	"MyFeatures.VitalMessageOption: Confirmation-requested\r\n" \
	"MyFeatures.WackyMessageOption: Use-silly-font\r\n" \
	"\r\n" \
	"Content-type: text/xml; charset=utf-8\r\n" \
	"Content-ID: <1234567890@foo.com>\r\n" \
	"\r\n" \
	"<body>\r\n" \
	"Here is the text of my message.\r\n" \
	"</body>\r\n"

#define SIMPLE_MIME "\r\nContent-Type: text/plain\r\n\r\nHi"

struct cpim_want {
	int ret;
	const char *from, *to, *subject, *subject_lang, *datetime, *content_type, *charset, *body;
};

static const struct {
	const char *name;
	const char *in;
	struct cpim_want w;
} cpim_cases[] = {
	{ "RFC 3862 example (without Require)", RFC3862_HEAD RFC3862_TAIL,
	  { 0, "MR SANDERS <im:piglet@100akerwood.com>",
	    "Depressed Donkey <im:eeyore@100akerwood.com>", "the weather will be fine today",
	    NULL, "2000-12-13T13:40:00-08:00", "text/xml", "utf-8",
	    "<body>\r\nHere is the text of my message.\r\n</body>\r\n" } },
	{ "RFC 3862 example as published (Require)",
	  RFC3862_HEAD "Require: MyFeatures.VitalMessageOption\r\n" RFC3862_TAIL, { .ret = -1 } },
	{ "typical SIP gateway wrapper",
	  "From: <sip:alice@sip.example>\r\nTo: <xmpp:bob@xmpp.example>\r\n"
	  "DateTime: 2024-05-01T10:00:00Z\r\n\r\n"
	  "Content-Type: text/plain; charset=UTF-8\r\n\r\nHello, Bob",
	  { 0, "<sip:alice@sip.example>", "<xmpp:bob@xmpp.example>", NULL, NULL,
	    "2024-05-01T10:00:00Z", "text/plain", "UTF-8", "Hello, Bob" } },
	{ "LF-only line ends",
	  "From: <sip:a@b.example>\nSubject: hi there\n\nContent-Type: text/plain\n\nline 1\nline 2\n",
	  { 0, "<sip:a@b.example>", NULL, "hi there", NULL, NULL, "text/plain", NULL,
	    "line 1\nline 2\n" } },
	{ "mixed line ends",
	  "To: <sip:x@y.example>\r\n\nContent-Type: text/plain\n\r\nbody",
	  { 0, NULL, "<sip:x@y.example>", NULL, NULL, NULL, "text/plain", NULL, "body" } },
	{ "Subject with a language only", "Subject:;lang=fr Bonjour \xc3\xa0 tous\r\n" SIMPLE_MIME,
	  { 0, NULL, NULL, "Bonjour \xc3\xa0 tous", "fr", NULL, "text/plain", NULL, "Hi" } },
	{ "first Subject wins, with its own language",
	  "Subject:;lang=de Hallo\r\nSubject: Hello\r\nSubject:;lang=fr Salut\r\n" SIMPLE_MIME,
	  { 0, NULL, NULL, "Hallo", "de", NULL, "text/plain", NULL, "Hi" } },
	{ "Subject with a non-lang parameter", "Subject:;x=y text\r\n" SIMPLE_MIME,
	  { 0, NULL, NULL, "text", NULL, NULL, "text/plain", NULL, "Hi" } },
	{ "Subject with lang and no text", "Subject:;lang=en\r\n" SIMPLE_MIME,
	  { 0, NULL, NULL, "", "en", NULL, "text/plain", NULL, "Hi" } },
	{ "values trimmed of spaces and tabs", "From:  \t<sip:a@b.example> \t\r\nTo:x\r\n" SIMPLE_MIME,
	  { 0, "<sip:a@b.example>", "x", NULL, NULL, NULL, "text/plain", NULL, "Hi" } },
	{ "header names are case-insensitive",
	  "FROM: a\r\nto: b\r\nsUbJeCt: c\r\ndatetime: d\r\n\r\nCONTENT-TYPE: Text/Plain\r\n\r\nx",
	  { 0, "a", "b", "c", NULL, "d", "Text/Plain", NULL, "x" } },
	{ "charset quoted", "\r\nContent-Type: text/plain; charset=\"utf-8\"\r\n\r\nx",
	  { 0, NULL, NULL, NULL, NULL, NULL, "text/plain", "utf-8", "x" } },
	{ "charset unquoted, spaced, among other parameters",
	  "\r\nContent-Type: text/plain ; format=flowed ; CHARSET = us-ascii ;delsp=yes\r\n\r\nx",
	  { 0, NULL, NULL, NULL, NULL, NULL, "text/plain", "us-ascii", "x" } },
	{ "no charset parameter", "\r\nContent-Type: text/plain;format=flowed\r\n\r\nx",
	  { 0, NULL, NULL, NULL, NULL, NULL, "text/plain", NULL, "x" } },
	{ "empty message header block", SIMPLE_MIME,
	  { 0, NULL, NULL, NULL, NULL, NULL, "text/plain", NULL, "Hi" } },
	{ "empty body", "From: a\r\n\r\nContent-Type: text/plain\r\n\r\n",
	  { 0, "a", NULL, NULL, NULL, NULL, "text/plain", NULL, "" } },
	{ "body keeps blank lines and header-like text",
	  "\r\nContent-Type: text/plain\r\n\r\n\r\nRequire: x\r\n\r\n \r\n",
	  { 0, NULL, NULL, NULL, NULL, NULL, "text/plain", NULL, "\r\nRequire: x\r\n\r\n \r\n" } },
	{ "other MIME headers ignored",
	  "\r\nContent-ID: <1@x>\r\nContent-Type: text/plain\r\nContent-Disposition: inline\r\n\r\nx",
	  { 0, NULL, NULL, NULL, NULL, NULL, "text/plain", NULL, "x" } },
	/* design: an empty Content-Type is present (the pager then refuses it with 415) */
	{ "empty Content-Type value", "\r\nContent-Type:\r\n\r\nx",
	  { 0, NULL, NULL, NULL, NULL, NULL, "", NULL, "x" } },
	/* design: a bare CR is not a line end, so it stays inside the value */
	{ "bare CR inside a value", "From: a\rTo: b\r\n" SIMPLE_MIME,
	  { 0, "a\rTo: b", NULL, NULL, NULL, NULL, "text/plain", NULL, "Hi" } },
	/* refusals */
	{ "empty input", "", { .ret = -1 } },
	{ "missing Content-Type", "From: a\r\n\r\nContent-ID: <x>\r\n\r\nbody", { .ret = -1 } },
	{ "Content-Type only among the message headers",
	  "Content-Type: text/plain\r\n\r\nContent-ID: <x>\r\n\r\nbody", { .ret = -1 } },
	{ "no blank line at all", "From: a\r\nContent-Type: text/plain\r\nbody", { .ret = -1 } },
	{ "no blank line after the MIME headers", "From: a\r\n\r\nContent-Type: text/plain\r\n",
	  { .ret = -1 } },
	{ "no blank line and no final line end", "From: a\r\n\r\nContent-Type: text/plain",
	  { .ret = -1 } },
	{ "only message headers", "From: a\r\nTo: b\r\n\r\n", { .ret = -1 } },
	{ "folded message header", "Subject: one\r\n two\r\n" SIMPLE_MIME, { .ret = -1 } },
	{ "folded with a tab", "Subject: one\r\n\ttwo\r\n" SIMPLE_MIME, { .ret = -1 } },
	{ "folded MIME header", "\r\nContent-Type: text/plain;\r\n charset=utf-8\r\n\r\nx", { .ret = -1 } },
	{ "Require", "Require: Foo.Bar\r\n" SIMPLE_MIME, { .ret = -1 } },
	{ "Require in lower case, after other headers", "From: a\r\nrequire: x\r\n" SIMPLE_MIME,
	  { .ret = -1 } },
	{ "header line without a colon", "From a\r\n" SIMPLE_MIME, { .ret = -1 } },
	{ "header name with a space", "Fr om: a\r\n" SIMPLE_MIME, { .ret = -1 } },
	{ "space before the colon", "From : a\r\n" SIMPLE_MIME, { .ret = -1 } },
	{ "empty header name", ": a\r\n" SIMPLE_MIME, { .ret = -1 } },
	{ "control in a header name", "Fr\x01om: a\r\n" SIMPLE_MIME, { .ret = -1 } },
};

/* want NULL: the span must be absent; otherwise present, equal and inside the buffer */
static void check_span(const char *name, const char *field, struct map_span s, const char *want,
		       const char *buf, size_t len)
{
	if (!want) {
		CHECK(s.p == NULL, "%s: %s absent (got \"%.*s\")", name, field, (int)s.n,
		      s.p ? s.p : "");
		return;
	}
	CHECK(s.p != NULL, "%s: %s present", name, field);
	if (!s.p)
		return;
	CHECK(s.p >= buf && s.n <= len && s.p <= buf + len - s.n, "%s: %s inside the buffer", name,
	      field);
	CHECK(s.n == strlen(want) && memcmp(s.p, want, s.n) == 0, "%s: %s is \"%.*s\", want \"%s\"",
	      name, field, (int)s.n, s.p, want);
}

static void test_cpim(void)
{
	for (size_t i = 0; i < NELEM(cpim_cases); i++) {
		const char *name = cpim_cases[i].name;
		size_t len = strlen(cpim_cases[i].in);
		/* an exact-size copy: AddressSanitizer sees any read past the end */
		char *buf = malloc(len ? len : 1);
		struct map_cpim c;
		const struct cpim_want *w = &cpim_cases[i].w;
		int r;

		if (!buf)
			abort();
		memcpy(buf, cpim_cases[i].in, len);
		r = map_cpim_parse(buf, len, &c);
		CHECK_INT(r, w->ret, "map_cpim_parse: %s", name);
		if (r == 0 && w->ret == 0) {
			check_span(name, "From", c.from, w->from, buf, len);
			check_span(name, "To", c.to, w->to, buf, len);
			check_span(name, "Subject", c.subject, w->subject, buf, len);
			check_span(name, "Subject lang", c.subject_lang, w->subject_lang, buf, len);
			check_span(name, "DateTime", c.datetime, w->datetime, buf, len);
			check_span(name, "content type", c.content_type, w->content_type, buf, len);
			check_span(name, "charset", c.charset, w->charset, buf, len);
			check_span(name, "body", c.body, w->body, buf, len);

		}
		free(buf);
	}
}

/* The RFC 5438 headers (in the prefix an NS header declared) and the inner MIME headers a
 * delivery notification needs. */
static const struct {
	const char *name, *in;
	const char *message_id, *disposition, *content_disposition, *content_encoding;
} cpim_imdn_cases[] = {
	{ "RFC 5438 7.1.1.1: a request for IMDNs",
	  "From: Alice <im:alice@example.com>\r\nTo: Bob <im:bob@example.com>\r\n"
	  "NS: imdn <urn:ietf:params:imdn>\r\nimdn.Message-ID: 34jk324j\r\n"
	  "DateTime: 2006-04-04T12:16:49-05:00\r\n"
	  "imdn.Disposition-Notification: positive-delivery, display\r\n\r\n"
	  "Content-type: text/plain\r\nContent-length: 12\r\n\r\nHello World",
	  "34jk324j", "positive-delivery, display", NULL, NULL },
	{ "an IMDN under another prefix",
	  "From: <im:bob@example.com>\r\nNS: x <urn:ietf:params:imdn>\r\n"
	  "x.Message-ID: d834jied93rf\r\n\r\n"
	  "Content-type: message/imdn+xml\r\nContent-Disposition: notification\r\n\r\n<imdn/>",
	  "d834jied93rf", NULL, "notification", NULL },
	{ "an IMDN header before its NS declaration is not one",
	  "imdn.Message-ID: early\r\nNS: imdn <urn:ietf:params:imdn>\r\n" SIMPLE_MIME,
	  NULL, NULL, NULL, NULL },
	{ "a prefix declared for another namespace",
	  "NS: imdn <urn:example:other>\r\nimdn.Message-ID: x\r\n" SIMPLE_MIME,
	  NULL, NULL, NULL, NULL },
	{ "inner Content-Encoding",
	  "From: <sip:a@b.example>\r\n\r\nContent-Type: message/imdn+xml\r\n"
	  "Content-Encoding: deflate\r\n\r\nxyz", NULL, NULL, NULL, "deflate" },
};

static void test_cpim_imdn(void)
{
	for (size_t i = 0; i < NELEM(cpim_imdn_cases); i++) {
		const char *name = cpim_imdn_cases[i].name;
		size_t len = strlen(cpim_imdn_cases[i].in);
		char *buf = malloc(len);
		struct map_cpim c;

		if (!buf)
			abort();
		memcpy(buf, cpim_imdn_cases[i].in, len);
		CHECK_INT(map_cpim_parse(buf, len, &c), 0, "map_cpim_parse: %s", name);
		check_span(name, "imdn.Message-ID", c.imdn_message_id, cpim_imdn_cases[i].message_id,
			   buf, len);
		check_span(name, "imdn.Disposition-Notification", c.imdn_disposition,
			   cpim_imdn_cases[i].disposition, buf, len);
		check_span(name, "Content-Disposition", c.content_disposition,
			   cpim_imdn_cases[i].content_disposition, buf, len);
		check_span(name, "Content-Encoding", c.content_encoding,
			   cpim_imdn_cases[i].content_encoding, buf, len);
		free(buf);
	}
}

/* ---- map_header_text ----------------------------------------------------------------------- */

static const struct {
	const char *src;
	size_t len;
	const char *want;
} header_cases[] = {
	{ "hello", 64, "hello" },
	{ "", 64, "" },
	{ "   ", 64, "" },
	{ "\r\n\t \r\n", 64, "" },
	{ "  hello  ", 64, "hello" },
	{ "\t\r\nhello\r\n\t", 64, "hello" },
	{ "a\r\nb", 64, "a  b" },		/* each control is one space: no header injection */
	{ "Subject\r\nX-Evil: 1", 64, "Subject  X-Evil: 1" },
	{ "a\tb", 64, "a b" },
	{ "a\x01" "b\x1f" "c\x7f" "d", 64, "a b c d" },
	{ "a\x7f", 64, "a" },
	{ "\x01\x02hello\x03", 64, "hello" },	/* controls at either end go with the spaces */
	{ "\x7f\x0b hello", 64, "hello" },
	{ "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", 64, "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80" },
	{ "\xc2\x85next line", 64, "\xc2\x85next line" },	/* C1 controls are UTF-8: kept */
	/* truncation to len - 1 bytes, then trailing spaces trimmed */
	{ "hello world", 6, "hello" },
	{ "hello world", 7, "hello" },
	{ "hello world", 8, "hello w" },
	{ "abc", 3, "ab" },
	{ "abc", 4, "abc" },
	{ "  abc", 3, "ab" },			/* leading spaces do not count */
	/* never split a UTF-8 sequence, never drop a complete one */
	{ "caf\xc3\xa9", 5, "caf" },
	{ "caf\xc3\xa9", 6, "caf\xc3\xa9" },
	{ "caf\xc3\xa9!", 6, "caf\xc3\xa9" },
	{ "caf\xc3\xa9!", 7, "caf\xc3\xa9!" },
	{ "\xe2\x82\xac\xe2\x82\xac", 3, "" },
	{ "\xe2\x82\xac\xe2\x82\xac", 4, "\xe2\x82\xac" },
	{ "\xe2\x82\xac\xe2\x82\xac", 5, "\xe2\x82\xac" },
	{ "\xe2\x82\xac\xe2\x82\xac", 6, "\xe2\x82\xac" },
	{ "\xe2\x82\xac\xe2\x82\xac", 7, "\xe2\x82\xac\xe2\x82\xac" },
	{ "\xf0\x9f\x98\x80x", 2, "" },
	{ "\xf0\x9f\x98\x80x", 4, "" },
	{ "\xf0\x9f\x98\x80x", 5, "\xf0\x9f\x98\x80" },
	{ "a \xc3\xa9", 4, "a" },		/* cut, then the space before it trimmed */
	/* tiny buffers */
	{ "abc", 1, "" },
	{ "abc", 2, "a" },
	{ "\xc3\xa9", 2, "" },
	{ " a", 2, "a" },
	{ "a", 2, "a" },
	{ "", 1, "" },
};

static void test_header_text(void)
{
	for (size_t i = 0; i < NELEM(header_cases); i++) {
		size_t len = header_cases[i].len;
		/* an exact-size heap buffer: AddressSanitizer sees any write past it */
		char *dst = malloc(len);
		size_t n;

		if (!dst)
			abort();
		n = map_header_text(header_cases[i].src, dst, len);
		CHECK_STR(dst, header_cases[i].want, "map_header_text row %zu (len %zu)", i, len);
		CHECK_INT(n, strlen(header_cases[i].want), "map_header_text row %zu: length", i);
		free(dst);
	}
	/* a zero-size buffer is not written at all */
	char sentinel = 'x';

	CHECK_INT(map_header_text("abc", &sentinel, 0), 0, "map_header_text len 0");
	CHECK_INT(sentinel, 'x', "map_header_text len 0 writes nothing");
}

/* ---- map_lang_ok --------------------------------------------------------------------------- */

static const struct {
	const char *tag;
	int ok;
} lang_cases[] = {
	{ "en", 1 },
	{ "EN", 1 },
	{ "en-US", 1 },
	{ "zh-Hant-TW", 1 },
	{ "de-CH-1901", 1 },
	{ "sl-rozaj-biske", 1 },
	{ "i-klingon", 1 },		/* grandfathered: the shape fits */
	{ "x-private", 1 },
	{ "x-a", 1 },
	{ "es-419", 1 },
	{ "a", 1 },			/* the shape only: one letter passes */
	{ "abcdefgh", 1 },		/* 8 is the longest subtag */
	{ "en-abcdefgh", 1 },
	{ "a1", 1 },			/* design: only the first character must be a letter */
	{ "en-1-2-3-4-5-6-7-8-9-0-1-2-3-4-5-67", 1 },	/* 35 octets */
	{ "en-1-2-3-4-5-6-7-8-9-0-1-2-3-4-5-678", 0 },	/* 36 octets */
	{ "abcdefgh-abcdefgh-abcdefgh-abcdefgh", 1 },	/* 35 */
	{ "abcdefgh-abcdefgh-abcdefgh-abcdefgh-a", 0 },	/* 37 */
	{ "", 0 },
	{ "1en", 0 },
	{ "0", 0 },
	{ "-en", 0 },
	{ "en--US", 0 },
	{ "--", 0 },
	{ "en-", 0 },
	{ "-", 0 },
	{ "abcdefghi", 0 },		/* 9-character subtag */
	{ "en-abcdefghi", 0 },
	{ "en_US", 0 },
	{ "en US", 0 },
	{ "en.US", 0 },
	{ "en\n", 0 },
	{ "\xc3\xa9n", 0 },
	{ "en-\xc3\xa9", 0 },
	{ "fr;q=0.5", 0 },
	{ "*", 0 },
};

/* ---- map_call_id_ok ------------------------------------------------------------------------ */

static const struct {
	const char *id;
	int ok;
} call_id_cases[] = {
	{ "a", 1 },
	{ "f81d4fae-7dec-11d0-a765-00a0c91e6bf6@foo.bar.com", 1 },
	{ "abc123@192.0.2.4", 1 },
	{ "a@b", 1 },
	{ "-.!%*_+`'~()<>:\\\"/[]?{}", 1 },	/* every RFC 3261 word punctuation mark */
	{ "a-.!%*_+`'~()<>:\\\"/[]?{}@[2001:db8::1]", 1 },
	{ "thread-\"x\"", 1 },
	{ "", 0 },
	{ "@", 0 },
	{ "@abc", 0 },
	{ "abc@", 0 },
	{ "a@b@c", 0 },
	{ "a@@b", 0 },
	{ "a b", 0 },
	{ " ab", 0 },
	{ "ab ", 0 },
	{ "a\tb", 0 },
	{ "a\rb", 0 },
	{ "a\nb", 0 },
	{ "a\r\nVia: evil", 0 },
	{ "a;b", 0 },
	{ "a,b", 0 },
	{ "a=b", 0 },
	{ "a#b", 0 },
	{ "a$b", 0 },
	{ "a&b", 0 },
	{ "a^b", 0 },
	{ "a|b", 0 },
	{ "a\x7f", 0 },
	{ "caf\xc3\xa9", 0 },
};

static void test_lang_call_id(void)
{
	char id[200];

	for (size_t i = 0; i < NELEM(lang_cases); i++)
		CHECK_INT(map_lang_ok(lang_cases[i].tag), lang_cases[i].ok, "map_lang_ok(\"%s\")",
			  lang_cases[i].tag);
	CHECK_INT(map_lang_ok(NULL), 0, "map_lang_ok(NULL)");
	for (size_t i = 0; i < NELEM(call_id_cases); i++)
		CHECK_INT(map_call_id_ok(call_id_cases[i].id), call_id_cases[i].ok,
			  "map_call_id_ok(\"%s\")", call_id_cases[i].id);
	CHECK_INT(map_call_id_ok(NULL), 0, "map_call_id_ok(NULL)");
	/* the 128-octet limit, with and without an '@' */
	static const struct {
		size_t n;
		int at;
		int ok;
	} lengths[] = {
		{ 127, 0, 1 }, { 128, 0, 1 }, { 129, 0, 0 }, { 190, 0, 0 },
		{ 128, 1, 1 }, { 129, 1, 0 },
	};
	for (size_t i = 0; i < NELEM(lengths); i++) {
		memset(id, 'x', lengths[i].n);
		id[lengths[i].n] = '\0';
		if (lengths[i].at)
			id[lengths[i].n / 2] = '@';
		CHECK_INT(map_call_id_ok(id), lengths[i].ok, "map_call_id_ok(%zu octets%s)",
			  lengths[i].n, lengths[i].at ? ", with '@'" : "");
	}
}

/* ---- map_im_fields ------------------------------------------------------------------------- */

/* libstrophe's own parser reports xml:lang as "lang" (it drops attribute namespaces); our
 * stream parser (xmpp/parser.c) keeps "xml:lang", which is what im.c reads.  Rename. */
static void fix_lang(xmpp_stanza_t *s)
{
	const char *lang;

	if (!xmpp_stanza_is_tag(s))
		return;
	if ((lang = xmpp_stanza_get_attribute(s, "lang")) != NULL) {
		char *copy = strdup(lang);

		if (!copy)
			abort();
		xmpp_stanza_del_attribute(s, "lang");
		xmpp_stanza_set_attribute(s, "xml:lang", copy);
		free(copy);
	}
	for (xmpp_stanza_t *c = xmpp_stanza_get_children(s); c; c = xmpp_stanza_get_next(c))
		fix_lang(c);
}

static xmpp_stanza_t *stanza_from(xmpp_ctx_t *ctx, const char *xml)
{
	xmpp_stanza_t *s = xmpp_stanza_new_from_string(ctx, xml);

	if (s)
		fix_lang(s);
	return s;
}

#define MSG "<message to='bob@sip.example' from='alice@xmpp.example/phone' type='chat' id='m1'"

static const struct {
	const char *name;
	const char *xml;
	const char *body, *subject, *lang, *thread;
	int receipt;
} fields_cases[] = {
	{ "plain body", MSG "><body>Hi</body></message>", "Hi", NULL, NULL, NULL, 0 },
	{ "message language", MSG " xml:lang='en'><body>Hi</body></message>",
	  "Hi", NULL, "en", NULL, 0 },
	{ "body language", MSG "><body xml:lang='fr'>Salut</body></message>",
	  "Salut", NULL, "fr", NULL, 0 },
	{ "untagged body preferred to a foreign one",
	  MSG " xml:lang='en'><body xml:lang='de'>Hallo</body><body>Hello</body></message>",
	  "Hello", NULL, "en", NULL, 0 },
	{ "matching body preferred",
	  MSG " xml:lang='de'><body xml:lang='en'>Hello</body><body xml:lang='de'>Hallo</body>"
	  "</message>", "Hallo", NULL, "de", NULL, 0 },
	{ "no match: the first body",
	  MSG " xml:lang='fr'><body xml:lang='en'>Hello</body><body xml:lang='de'>Hallo</body>"
	  "</message>", "Hello", NULL, "en", NULL, 0 },
	{ "no message language: the untagged body",
	  MSG "><body xml:lang='en'>Hello</body><body>plain</body></message>",
	  "plain", NULL, NULL, NULL, 0 },
	/* design: an untagged body is in the message's language, so it matches as well as an
	 * explicitly tagged one; the first of them wins */
	{ "untagged and matching: the first",
	  MSG " xml:lang='de'><body>zuerst</body><body xml:lang='de'>danach</body></message>",
	  "zuerst", NULL, "de", NULL, 0 },
	{ "matching and untagged: the first",
	  MSG " xml:lang='de'><body xml:lang='de'>zuerst</body><body>danach</body></message>",
	  "zuerst", NULL, "de", NULL, 0 },
	{ "subject by language",
	  MSG " xml:lang='de'><subject xml:lang='en'>Hi</subject><subject xml:lang='de'>Hallo"
	  "</subject><body>x</body></message>", "x", "Hallo", "de", NULL, 0 },
	{ "subject: untagged preferred to foreign",
	  MSG " xml:lang='de'><subject xml:lang='en'>Hi</subject><subject>Servus</subject>"
	  "<body>x</body></message>", "x", "Servus", "de", NULL, 0 },
	{ "subject: no match, the first",
	  MSG "><subject xml:lang='en'>Hi</subject><subject xml:lang='de'>Hallo</subject>"
	  "<body>x</body></message>", "x", "Hi", NULL, NULL, 0 },
	{ "subject without body", MSG "><subject>Topic</subject></message>",
	  NULL, "Topic", NULL, NULL, 0 },
	{ "thread", MSG "><body>x</body><thread>e0ffe42b28561960c6b12b944a092794b9683a38</thread>"
	  "</message>", "x", NULL, NULL, "e0ffe42b28561960c6b12b944a092794b9683a38", 0 },
	{ "thread with a parent", MSG "><thread parent='p1'>t2</thread><body>x</body></message>",
	  "x", NULL, NULL, "t2", 0 },
	{ "empty thread", MSG "><body>x</body><thread/></message>", "x", NULL, NULL, "", 0 },
	{ "receipt request",
	  MSG "><body>x</body><request xmlns='urn:xmpp:receipts'/></message>",
	  "x", NULL, NULL, NULL, 1 },
	{ "receipt, not a request",
	  MSG "><received xmlns='urn:xmpp:receipts' id='m0'/></message>",
	  NULL, NULL, NULL, NULL, 0 },
	{ "request in another namespace",
	  MSG "><body>x</body><request xmlns='urn:xmpp:other'/></message>",
	  "x", NULL, NULL, NULL, 0 },
	{ "chat state only: no body",
	  MSG "><composing xmlns='http://jabber.org/protocol/chatstates'/></message>",
	  NULL, NULL, NULL, NULL, 0 },
	{ "empty message", MSG "/>", NULL, NULL, NULL, NULL, 0 },
	{ "empty body", MSG "><body/></message>", "", NULL, NULL, NULL, 0 },
	{ "body in another namespace is not the body",
	  MSG "><body xmlns='urn:example:other'>no</body></message>", NULL, NULL, NULL, NULL, 0 },
	{ "XHTML-IM body is not the body",
	  MSG "><html xmlns='http://jabber.org/protocol/xhtml-im'><body "
	  "xmlns='http://www.w3.org/1999/xhtml'><p>rich</p></body></html><body>plain</body>"
	  "</message>", "plain", NULL, NULL, NULL, 0 },
	{ "entities decoded", MSG "><body>a &amp; b &lt;c&gt; &#xe9;</body></message>",
	  "a & b <c> \xc3\xa9", NULL, NULL, NULL, 0 },
	{ "everything",
	  MSG " xml:lang='en'><subject>S</subject><body>B</body><thread>T</thread>"
	  "<active xmlns='http://jabber.org/protocol/chatstates'/>"
	  "<request xmlns='urn:xmpp:receipts'/></message>", "B", "S", "en", "T", 1 },
};

static void test_im_fields(xmpp_ctx_t *ctx)
{
	for (size_t i = 0; i < NELEM(fields_cases); i++) {
		const char *name = fields_cases[i].name;
		xmpp_stanza_t *s = stanza_from(ctx, fields_cases[i].xml);
		struct map_im_fields f;

		CHECK(s != NULL, "map_im_fields: %s: stanza parses", name);
		if (!s)
			continue;
		memset(&f, 0xa5, sizeof(f));
		map_im_fields(s, &f);
		CHECK_STR(f.body, fields_cases[i].body, "map_im_fields: %s: body", name);
		CHECK_STR(f.subject, fields_cases[i].subject, "map_im_fields: %s: subject", name);
		CHECK_STR(f.lang, fields_cases[i].lang, "map_im_fields: %s: lang", name);
		CHECK_STR(f.thread, fields_cases[i].thread, "map_im_fields: %s: thread", name);
		CHECK_INT(f.has_receipt_request, fields_cases[i].receipt,
			  "map_im_fields: %s: receipt request", name);
		xmpp_stanza_release(s);
	}
}

/* ---- map_error_reply ----------------------------------------------------------------------- */

static char *to_text(xmpp_stanza_t *s)
{
	char *buf = NULL, *copy;
	size_t len;

	if (xmpp_stanza_to_text(s, &buf, &len) != XMPP_EOK)
		return NULL;
	copy = strdup(buf);
	xmpp_free(xmpp_stanza_get_context(s), buf);
	return copy;
}

static const struct {
	const char *name;
	const char *xml;
	const char *condition;
	const char *text;
	const char *want;	/* the whole reply, as libstrophe serialises it */
} reply_cases[] = {
	{ "message bounce with text",
	  MSG "><body>Hi</body></message>", "service-unavailable", "no route to sip.example",
	  "<message id=\"m1\" to=\"alice@xmpp.example/phone\" type=\"error\" "
	  "from=\"bob@sip.example\"><body>Hi</body><error type=\"cancel\"><service-unavailable "
	  "xmlns=\"urn:ietf:params:xml:ns:xmpp-stanzas\"/><text "
	  "xmlns=\"urn:ietf:params:xml:ns:xmpp-stanzas\" xml:lang=\"en\">no route to sip.example</text></error>"
	  "</message>" },
	{ "without text",
	  MSG "><body>Hi</body></message>", "recipient-unavailable", NULL,
	  "<message id=\"m1\" to=\"alice@xmpp.example/phone\" type=\"error\" "
	  "from=\"bob@sip.example\"><body>Hi</body><error type=\"wait\"><recipient-unavailable "
	  "xmlns=\"urn:ietf:params:xml:ns:xmpp-stanzas\"/></error></message>" },
	{ "text escaped",
	  MSG "><body>Hi</body></message>", "not-acceptable", "a < b & \"c\"",
	  "<message id=\"m1\" to=\"alice@xmpp.example/phone\" type=\"error\" "
	  "from=\"bob@sip.example\"><body>Hi</body><error type=\"modify\"><not-acceptable "
	  "xmlns=\"urn:ietf:params:xml:ns:xmpp-stanzas\"/><text "
	  "xmlns=\"urn:ietf:params:xml:ns:xmpp-stanzas\" xml:lang=\"en\">a &lt; b &amp; &quot;c&quot;</text>"
	  "</error></message>" },
	{ "auth type, every child kept",
	  MSG "><subject>S</subject><body>B</body><thread>T</thread></message>", "forbidden", NULL,
	  "<message id=\"m1\" to=\"alice@xmpp.example/phone\" type=\"error\" "
	  "from=\"bob@sip.example\"><subject>S</subject><body>B</body><thread>T</thread>"
	  "<error type=\"auth\"><forbidden xmlns=\"urn:ietf:params:xml:ns:xmpp-stanzas\"/>"
	  "</error></message>" },
	{ "unknown condition: type cancel",
	  MSG "/>", "x-unheard-of", NULL,
	  "<message id=\"m1\" to=\"alice@xmpp.example/phone\" type=\"error\" "
	  "from=\"bob@sip.example\"><error type=\"cancel\"><x-unheard-of "
	  "xmlns=\"urn:ietf:params:xml:ns:xmpp-stanzas\"/></error></message>" },
	{ "no from: no to in the reply",
	  "<message to='bob@sip.example' id='m2'><body>x</body></message>", "item-not-found",
	  NULL,
	  "<message id=\"m2\" type=\"error\" from=\"bob@sip.example\"><body>x</body>"
	  "<error type=\"cancel\"><item-not-found xmlns=\"urn:ietf:params:xml:ns:xmpp-stanzas\"/>"
	  "</error></message>" },
	{ "iq",
	  "<iq type='get' id='q1' to='gw.example' from='u@x.example/r'><query "
	  "xmlns='jabber:iq:version'/></iq>", "feature-not-implemented", NULL,
	  "<iq id=\"q1\" to=\"u@x.example/r\" type=\"error\" from=\"gw.example\"><query "
	  "xmlns=\"jabber:iq:version\"/><error type=\"cancel\"><feature-not-implemented "
	  "xmlns=\"urn:ietf:params:xml:ns:xmpp-stanzas\"/></error></iq>" },
};

static void test_error_reply(xmpp_ctx_t *ctx)
{
	for (size_t i = 0; i < NELEM(reply_cases); i++) {
		const char *name = reply_cases[i].name, *cond = reply_cases[i].condition;
		xmpp_stanza_t *s = stanza_from(ctx, reply_cases[i].xml), *r, *err, *c, *t;
		char *before, *after, *text;

		CHECK(s != NULL, "map_error_reply: %s: stanza parses", name);
		if (!s)
			continue;
		before = to_text(s);
		r = map_error_reply(ctx, s, cond, reply_cases[i].text);
		CHECK(r != NULL && r != s, "map_error_reply: %s: a new stanza", name);
		if (!r) {
			free(before);
			xmpp_stanza_release(s);
			continue;
		}
		/* field by field, independent of attribute order */
		CHECK_STR(xmpp_stanza_get_name(r), xmpp_stanza_get_name(s), "%s: name", name);
		CHECK_STR(xmpp_stanza_get_to(r), xmpp_stanza_get_from(s), "%s: to", name);
		CHECK_STR(xmpp_stanza_get_from(r), xmpp_stanza_get_to(s), "%s: from", name);
		CHECK_STR(xmpp_stanza_get_id(r), xmpp_stanza_get_id(s), "%s: id", name);
		CHECK_STR(xmpp_stanza_get_type(r), "error", "%s: type", name);
		err = xmpp_stanza_get_child_by_name(r, "error");
		CHECK(err != NULL && xmpp_stanza_get_next(err) == NULL, "%s: <error/> last", name);
		if (err) {
			CHECK_STR(xmpp_stanza_get_type(err), map_error_type(cond), "%s: error type", name);
			CHECK_STR(xmpp_stanza_get_ns(err), NULL, "%s: <error/> in the default ns", name);
			c = xmpp_stanza_get_children(err);
			CHECK(c != NULL, "%s: condition present", name);
			if (c) {
				CHECK_STR(xmpp_stanza_get_name(c), cond, "%s: condition", name);
				CHECK_STR(xmpp_stanza_get_ns(c), "urn:ietf:params:xml:ns:xmpp-stanzas",
					  "%s: condition namespace", name);
			}
			t = xmpp_stanza_get_child_by_name(err, "text");
			CHECK((t != NULL) == (reply_cases[i].text != NULL), "%s: <text/>", name);
			if (t) {
				CHECK_STR(xmpp_stanza_get_ns(t), "urn:ietf:params:xml:ns:xmpp-stanzas",
					  "%s: text namespace", name);
				CHECK_STR(xmpp_stanza_get_attribute(t, "xml:lang"), "en",
					  "%s: text language", name);
				text = xmpp_stanza_get_text(t);
				CHECK_STR(text, reply_cases[i].text, "%s: text", name);
				xmpp_free(ctx, text);
			}
		}
		/* the whole serialisation (attribute order is libstrophe's, stable for a version) */
		text = to_text(r);
		CHECK_STR(text, reply_cases[i].want, "map_error_reply: %s", name);
		free(text);
		/* the original is untouched */
		after = to_text(s);
		CHECK_STR(after, before, "map_error_reply: %s: original unchanged", name);
		free(before);
		free(after);
		xmpp_stanza_release(r);
		xmpp_stanza_release(s);
	}
}

/* map_chat_text: what it writes, read back by libstrophe's own parser, is what it was given. */
struct chat_case {
	const char *name;
	struct map_chat m;
	const char *want_body;		/* NULL: m.body as given (body_len bytes) */
};

static const char long_body[] = "only the first five bytes: the rest is not the body";
#define CHAT_SUBJECT "Re: <x> & 'y' \"z\""
#define CHAT_BODY "a & b < c > d ' e \" f\r\ng\th Gr\xc3\xbc\xc3\x9f" "e \xf0\x9f\x98\x80"

static const struct chat_case chat_cases[] = {
	{ "plain", { .type = "chat", .to = "alice@xmpp.example", .from = "bob%sip.example@gw",
		     .id = "m1", .body = "Hello", .body_len = 5 }, NULL },
	{ "every part, text that needs escaping",
	  { .type = "normal", .to = "alice@xmpp.example/phone", .from = "b'o\"b@gw", .id = "m<2>&",
	    .lang = "fr", .subject = CHAT_SUBJECT, .subject_len = sizeof(CHAT_SUBJECT) - 1,
	    .subject_lang = "de",
	    .body = CHAT_BODY, .body_len = sizeof(CHAT_BODY) - 1, .thread = "call-1@sip.example",
	    .stamp = "2026-12-06T01:00:00Z",
	    .stamp_from = "sip.example", .receipt_request = 1, .markable = 1 }, NULL },
	{ "a body that is not terminated where it ends",
	  { .type = "chat", .to = "a@x", .id = "m3", .body = long_body, .body_len = 5 }, "only " },
	{ "a NUL in the body is left out",
	  { .type = "chat", .to = "a@x", .id = "m4", .body = "a\0b", .body_len = 3 }, "ab" },
};

static void check_child_text(xmpp_ctx_t *ctx, xmpp_stanza_t *s, const char *child,
			     const char *want, size_t want_len, const char *name)
{
	xmpp_stanza_t *c = xmpp_stanza_get_child_by_name(s, child);
	char *got = c ? xmpp_stanza_get_text(c) : NULL;

	if (!want) {
		CHECK(!c, "map_chat_text: %s: no <%s/>", name, child);
	} else {
		char *w = strndup(want, want_len);

		CHECK_STR(got ? got : "", w, "map_chat_text: %s: <%s/>", name, child);
		free(w);
	}
	if (got)
		xmpp_free(ctx, got);
}

static void test_chat_text(xmpp_ctx_t *ctx)
{
	for (size_t i = 0; i < NELEM(chat_cases); i++) {
		const struct chat_case *k = &chat_cases[i];
		const struct map_chat *m = &k->m;
		struct xmpp_text t = { NULL, 0, 0 };
		xmpp_stanza_t *s, *c;

		map_chat_text(&t, m);
		s = xmpp_stanza_new_from_string(ctx, t.p);
		CHECK(s != NULL, "map_chat_text: %s: parses (%s)", k->name, t.p);
		if (!s) {
			xmpp_text_free(&t);
			continue;
		}
		CHECK_STR(xmpp_stanza_get_name(s), "message", "map_chat_text: %s: name", k->name);
		CHECK_STR(xmpp_stanza_get_type(s), m->type, "map_chat_text: %s: type", k->name);
		CHECK_STR(xmpp_stanza_get_to(s), m->to, "map_chat_text: %s: to", k->name);
		CHECK_STR(xmpp_stanza_get_from(s), m->from, "map_chat_text: %s: from", k->name);
		CHECK_STR(xmpp_stanza_get_id(s), m->id, "map_chat_text: %s: id", k->name);
		if (m->lang) {
			char want[64];

			snprintf(want, sizeof(want), " xml:lang='%s'", m->lang);
			CHECK(strstr(t.p, want) != NULL, "map_chat_text: %s: written as xml:lang",
			      k->name);
		}
		/* libstrophe's reader names xml:lang "lang" */
		CHECK_STR(xmpp_stanza_get_attribute(s, "lang"), m->lang,
			  "map_chat_text: %s: xml:lang", k->name);
		if (k->want_body)
			check_child_text(ctx, s, "body", k->want_body, strlen(k->want_body), k->name);
		else
			check_child_text(ctx, s, "body", m->body, m->body_len, k->name);
		check_child_text(ctx, s, "subject", m->subject, m->subject_len, k->name);
		c = xmpp_stanza_get_child_by_name(s, "subject");
		CHECK_STR(c ? xmpp_stanza_get_attribute(c, "lang") : NULL, m->subject_lang,
			  "map_chat_text: %s: subject's xml:lang", k->name);
		check_child_text(ctx, s, "thread", m->thread, m->thread ? strlen(m->thread) : 0,
				 k->name);
		c = xmpp_stanza_get_child_by_ns(s, "urn:xmpp:delay");
		CHECK_STR(c ? xmpp_stanza_get_attribute(c, "stamp") : NULL, m->stamp,
			  "map_chat_text: %s: delay stamp", k->name);
		CHECK_STR(c ? xmpp_stanza_get_from(c) : NULL, m->stamp ? m->stamp_from : NULL,
			  "map_chat_text: %s: delay from", k->name);
		c = xmpp_stanza_get_child_by_ns(s, "urn:xmpp:receipts");
		CHECK_INT(c && !strcmp(xmpp_stanza_get_name(c), "request"), m->receipt_request,
			  "map_chat_text: %s: receipt request", k->name);
		c = xmpp_stanza_get_child_by_ns(s, "urn:xmpp:chat-markers:0");
		CHECK_INT(c && !strcmp(xmpp_stanza_get_name(c), "markable"), m->markable,
			  "map_chat_text: %s: markable", k->name);
		xmpp_stanza_release(s);
		xmpp_text_free(&t);
	}
}

int main(void)
{
	xmpp_ctx_t *ctx;

	test_text_check();
	test_cpim();
	test_cpim_imdn();
	test_header_text();
	test_lang_call_id();

	xmpp_initialize();
	ctx = xmpp_ctx_new(NULL, NULL);
	if (!ctx)
		abort();
	test_im_fields(ctx);
	test_error_reply(ctx);
	test_chat_text(ctx);
	xmpp_ctx_free(ctx);
	xmpp_shutdown();
	TEST_DONE();
}
