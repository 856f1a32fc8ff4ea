/* test_audit.c - table-driven tests of the audit log's line format (gateway/audit.c,
 * audit_format): every field, escaping of quotes, backslashes and control characters, invalid
 * UTF-8 as U+FFFD, cutting at a character boundary when the buffer is small; every line is
 * checked with a JSON reader of its own (RFC 8259) that decodes the values back. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/audit.h"
#include "tests/unit/test.h"

/* ---- a small, strict JSON reader: one object of string keys and string, number or null
 * values (what an audit line may hold), strings decoded to UTF-8 */

#define JMAX_FIELDS 16
#define JMAX_VALUE 8192

struct jfield {
	char name[32];
	int is_null, is_number;
	char value[JMAX_VALUE];		/* decoded, NUL-terminated (an escaped NUL ends it early) */
	size_t len;			/* decoded length, NULs included */
};

struct jline {
	struct jfield f[JMAX_FIELDS];
	size_t n;
};

/* Length of a valid UTF-8 sequence at s (RFC 3629), 0 if invalid. */
static size_t j_utf8(const unsigned char *s, size_t n)
{
	size_t len;
	unsigned cp;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		len = 2, cp = s[0] & 0x1f;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		len = 3, cp = s[0] & 0x0f;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		len = 4, cp = s[0] & 0x07;
	else
		return 0;
	if (len > n)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	if ((len == 2 && cp < 0x80) || (len == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
	    (len == 4 && (cp < 0x10000 || cp > 0x10ffff)))
		return 0;
	return len;
}

static int j_hex(int c)
{
	return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 :
	       c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

static size_t j_put_cp(char *out, size_t at, unsigned cp)
{
	if (cp < 0x80) {
		out[at++] = (char)cp;
	} else if (cp < 0x800) {
		out[at++] = (char)(0xc0 | cp >> 6);
		out[at++] = (char)(0x80 | (cp & 0x3f));
	} else if (cp < 0x10000) {
		out[at++] = (char)(0xe0 | cp >> 12);
		out[at++] = (char)(0x80 | ((cp >> 6) & 0x3f));
		out[at++] = (char)(0x80 | (cp & 0x3f));
	} else {
		out[at++] = (char)(0xf0 | cp >> 18);
		out[at++] = (char)(0x80 | ((cp >> 12) & 0x3f));
		out[at++] = (char)(0x80 | ((cp >> 6) & 0x3f));
		out[at++] = (char)(0x80 | (cp & 0x3f));
	}
	return at;
}

static void j_ws(const char **p)
{
	while (**p == ' ' || **p == '\t' || **p == '\n' || **p == '\r')
		(*p)++;
}

/* A JSON string at *p into out (cap bytes); 0, or -1 if it is not a valid one. */
static int j_string(const char **p, char *out, size_t cap, size_t *olen)
{
	const unsigned char *s = (const unsigned char *)*p;
	size_t n = 0;

	if (*s++ != '"')
		return -1;
	while (*s != '"') {
		unsigned cp;

		if (n + 5 > cap || *s == '\0' || *s < 0x20)
			return -1;	/* unterminated, or a raw control character (RFC 8259 7) */
		if (*s != '\\') {
			size_t l = j_utf8(s, strlen((const char *)s));

			if (l == 0)
				return -1;	/* a JSON text is UTF-8 (RFC 8259 8.1) */
			memcpy(out + n, s, l);
			n += l;
			s += l;
			continue;
		}
		s++;
		switch (*s) {
		case '"': case '\\': case '/':
			out[n++] = (char)*s++;
			continue;
		case 'b': out[n++] = '\b'; s++; continue;
		case 'f': out[n++] = '\f'; s++; continue;
		case 'n': out[n++] = '\n'; s++; continue;
		case 'r': out[n++] = '\r'; s++; continue;
		case 't': out[n++] = '\t'; s++; continue;
		case 'u':
			cp = 0;
			for (int i = 1; i <= 4; i++) {
				int h = j_hex(s[i]);

				if (h < 0)
					return -1;
				cp = cp * 16 + (unsigned)h;
			}
			s += 5;
			if (cp >= 0xd800 && cp <= 0xdfff)
				return -1;	/* the gateway never writes surrogate pairs */
			n = j_put_cp(out, n, cp);
			continue;
		default:
			return -1;
		}
	}
	out[n] = '\0';
	*olen = n;
	*p = (const char *)s + 1;
	return 0;
}

/* Reads a whole line: one object, then "\n" and nothing else.  0, or -1 if not valid. */
static int j_line(const char *text, struct jline *out)
{
	const char *p = text;

	memset(out, 0, sizeof(*out));
	j_ws(&p);
	if (*p++ != '{')
		return -1;
	j_ws(&p);
	if (*p == '}') {
		p++;
		goto end;
	}
	for (;;) {
		struct jfield *f;
		size_t nlen;

		if (out->n == JMAX_FIELDS)
			return -1;
		f = &out->f[out->n++];
		j_ws(&p);
		if (j_string(&p, f->name, sizeof(f->name), &nlen) != 0)
			return -1;
		for (size_t i = 0; i + 1 < out->n; i++)
			if (strcmp(out->f[i].name, f->name) == 0)
				return -1;	/* a name twice */
		j_ws(&p);
		if (*p++ != ':')
			return -1;
		j_ws(&p);
		if (*p == '"') {
			if (j_string(&p, f->value, sizeof(f->value), &f->len) != 0)
				return -1;
		} else if (strncmp(p, "null", 4) == 0) {
			f->is_null = 1;
			p += 4;
		} else if (*p == '-' || (*p >= '0' && *p <= '9')) {
			const char *start = p;

			if (*p == '-')
				p++;
			if (*p == '0')
				p++;
			else if (*p >= '1' && *p <= '9')
				while (*p >= '0' && *p <= '9')
					p++;
			else
				return -1;
			f->is_number = 1;
			f->len = (size_t)(p - start);
			memcpy(f->value, start, f->len);
		} else {
			return -1;
		}
		j_ws(&p);
		if (*p == ',') {
			p++;
			continue;
		}
		if (*p++ != '}')
			return -1;
		break;
	}
end:
	return strcmp(p, "\n") == 0 ? 0 : -1;
}

static const struct jfield *j_get(const struct jline *l, const char *name)
{
	for (size_t i = 0; i < l->n; i++)
		if (strcmp(l->f[i].name, name) == 0)
			return &l->f[i];
	return NULL;
}

/* ---- the reader itself, so that a passing line means something */

static const struct {
	const char *text;
	int valid;
} reader_cases[] = {
	{ "{\"a\":\"b\"}\n", 1 },
	{ "{\"a\":null,\"b\":-12,\"c\":\"\\u00e9\\\"\\\\\"}\n", 1 },
	{ "{}\n", 1 },
	{ "{\"a\":\"b\"}", 0 },			/* no newline */
	{ "{\"a\":\"b\"}\n\n", 0 },
	{ "{\"a\":\"b\",}\n", 0 },
	{ "{,\"a\":\"b\"}\n", 0 },
	{ "{\"a\":\"b\"\n", 0 },
	{ "{\"a\":\"b\tc\"}\n", 0 },		/* raw control character */
	{ "{\"a\":\"\xff\"}\n", 0 },		/* not UTF-8 */
	{ "{\"a\":\"\\x41\"}\n", 0 },
	{ "{\"a\":\"\\u12\"}\n", 0 },
	{ "{\"a\":01}\n", 0 },
	{ "{\"a\":\"b\",\"a\":\"c\"}\n", 0 },
	{ "{\"a\":\"b}\n", 0 },
};

static void test_reader(void)
{
	struct jline l;

	for (size_t i = 0; i < NELEM(reader_cases); i++)
		CHECK_INT(j_line(reader_cases[i].text, &l) == 0, reader_cases[i].valid,
			  "JSON reader, case %zu: %s", i, reader_cases[i].text);
}

/* ---- lines */

#define T0 1764904481.25	/* 2025-12-05T03:14:41.250Z */

static const char *const field_names[] = {
	"time", "peer", "direction", "service", "method", "from", "to", "verdict", "status",
	"reason", "call_id", "source", "content",
};

static int known_field(const char *name)
{
	for (size_t i = 0; i < NELEM(field_names); i++)
		if (strcmp(field_names[i], name) == 0)
			return 1;
	return 0;
}

/* Formats r into buf (len bytes) and reads it back; checks what every line must be. */
static int format_ok(const struct audit_rec *r, int with_content, char *buf, size_t len,
		     struct jline *l, const char *what)
{
	size_t n;

	memset(buf, 'Z', len);
	n = audit_format(r, T0, with_content, buf, len);
	CHECK(n < len && buf[n] == '\0', "%s: the line and its NUL fit in %zu bytes (%zu)", what,
	      len, n);
	if (n >= len)
		return -1;
	CHECK_INT(strlen(buf), n, "%s: the length returned", what);
	CHECK(n >= 2 && buf[n - 1] == '\n' && buf[n - 2] == '}' && !memchr(buf, '\n', n - 1),
	      "%s: one line ending in }\\n: %s", what, buf);
	if (j_line(buf, l) != 0) {
		TEST_FAIL("%s: not valid JSON: %s", what, buf);
		return -1;
	}
	for (size_t i = 0; i < l->n; i++)
		CHECK(known_field(l->f[i].name), "%s: unknown field %s", what, l->f[i].name);
	return 0;
}

/* A string field's decoded value, or NULL (absent, null). */
static const char *str_of(const struct jline *l, const char *name)
{
	const struct jfield *f = j_get(l, name);

	return f && !f->is_null && !f->is_number ? f->value : NULL;
}

static void test_fields(void)
{
	static const struct audit_rec r = {
		.peer = "neta", .direction = "in", .service = "pager", .method = "MESSAGE",
		.from = "sip:bob@sip.example", .to = "sip:alice@xmpp.example",
		.call_id = "abc@127.0.0.1", .source = "127.0.0.1:5070/udp", .status = 200,
		.phrase = "OK", .content = "hello", .content_len = 5,
	};
	char buf[1024];
	struct jline l;

	if (format_ok(&r, 0, buf, sizeof(buf), &l, "all fields") != 0)
		return;
	CHECK_STR(str_of(&l, "time"), "2025-12-05T03:14:41.250Z", "time: RFC 3339 UTC, ms");
	CHECK_STR(str_of(&l, "peer"), "neta", "peer");
	CHECK_STR(str_of(&l, "direction"), "in", "direction");
	CHECK_STR(str_of(&l, "service"), "pager", "service");
	CHECK_STR(str_of(&l, "method"), "MESSAGE", "method");
	CHECK_STR(str_of(&l, "from"), "sip:bob@sip.example", "from");
	CHECK_STR(str_of(&l, "to"), "sip:alice@xmpp.example", "to");
	CHECK_STR(str_of(&l, "verdict"), "accepted", "verdict");
	CHECK(j_get(&l, "status") && j_get(&l, "status")->is_number, "status is a number");
	CHECK_STR(j_get(&l, "status") ? j_get(&l, "status")->value : NULL, "200", "status");
	CHECK_STR(str_of(&l, "reason"), "OK", "reason");
	CHECK_STR(str_of(&l, "call_id"), "abc@127.0.0.1", "call_id");
	CHECK_STR(str_of(&l, "source"), "127.0.0.1:5070/udp", "source");
	CHECK(!j_get(&l, "content"), "no content without with_content: %s", buf);
	CHECK_STR(l.f[0].name, "time", "time comes first");
	CHECK_INT(l.n, 12, "twelve fields without content: %s", buf);

	if (format_ok(&r, 1, buf, sizeof(buf), &l, "with content") != 0)
		return;
	CHECK_STR(str_of(&l, "content"), "hello", "content with with_content");
	CHECK_INT(l.n, 13, "thirteen fields with content");
}

/* status -> verdict (audit_verdict's table), and NULL strings -> null. */
static const struct {
	int status;
	const char *verdict;
} verdict_cases[] = {
	{ 200, "accepted" }, { 202, "accepted" }, { 299, "accepted" }, { 302, "refused" },
	{ 403, "refused" }, { 503, "refused" }, { 603, "refused" }, { 0, "failed" },
	{ 180, "failed" },
};

static void test_verdicts_and_nulls(void)
{
	char buf[512], what[64];
	struct jline l;

	for (size_t i = 0; i < NELEM(verdict_cases); i++) {
		struct audit_rec r = { .status = verdict_cases[i].status };

		CHECK_STR(audit_verdict(r.status), verdict_cases[i].verdict, "audit_verdict(%d)",
			  r.status);
		snprintf(what, sizeof(what), "status %d, every string NULL", r.status);
		if (format_ok(&r, 1, buf, sizeof(buf), &l, what) != 0)
			continue;
		CHECK_STR(str_of(&l, "verdict"), verdict_cases[i].verdict, "%s: verdict", what);
		for (size_t k = 0; k < NELEM(field_names); k++) {
			const struct jfield *f = j_get(&l, field_names[k]);
			const char *n = field_names[k];

			if (!strcmp(n, "time") || !strcmp(n, "verdict") || !strcmp(n, "status"))
				continue;
			if (!strcmp(n, "content")) {
				CHECK(!f, "%s: no content when there is none", what);
				continue;
			}
			CHECK(f && f->is_null, "%s: %s is null: %s", what, n, buf);
		}
	}
}

/* Escaping: what goes in comes back out of a JSON reader, and the raw text is as expected. */
static const struct {
	const char *what;
	const char *in;
	size_t in_len;		/* 0: strlen */
	const char *decoded;	/* what a JSON reader gets back (U+FFFD is EF BF BD) */
	size_t decoded_len;	/* 0: strlen */
	const char *raw;	/* in the line as written, or NULL */
} escape_cases[] = {
	{ "plain", "sip:bob@sip.example", 0, "sip:bob@sip.example", 0, "\"sip:bob@sip.example\"" },
	{ "quote", "say \"hi\"", 0, "say \"hi\"", 0, "\"say \\\"hi\\\"\"" },
	{ "backslash", "a\\b\\", 0, "a\\b\\", 0, "\"a\\\\b\\\\\"" },
	{ "a fake end of the line", "x\",\"verdict\":\"accepted", 0, "x\",\"verdict\":\"accepted", 0,
	  NULL },
	{ "newline, CR, tab", "a\nb\rc\td", 0, "a\nb\rc\td", 0, "\"a\\u000ab\\u000dc\\u0009d\"" },
	{ "C0 controls and DEL", "\x01\x1f\x7f", 0, "\x01\x1f\x7f", 0, "\"\\u0001\\u001f\\u007f\"" },
	{ "an embedded NUL", "a\0b", 3, "a\0b", 3, "\"a\\u0000b\"" },
	{ "UTF-8 kept as it is", "caf\xc3\xa9 \xe2\x98\x83 \xf0\x9f\x98\x80", 0,
	  "caf\xc3\xa9 \xe2\x98\x83 \xf0\x9f\x98\x80", 0, "\"caf\xc3\xa9 \xe2\x98\x83 \xf0\x9f\x98\x80\"" },
	{ "a stray byte", "a\xff" "b", 0, "a\xef\xbf\xbd" "b", 0, "\"a\\ufffdb\"" },
	{ "a lone continuation byte", "\x80", 0, "\xef\xbf\xbd", 0, "\"\\ufffd\"" },
	{ "overlong slash", "\xc0\xaf", 0, "\xef\xbf\xbd\xef\xbf\xbd", 0, "\"\\ufffd\\ufffd\"" },
	{ "overlong 3 bytes", "\xe0\x80\xaf", 0, "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd", 0, NULL },
	{ "a surrogate", "\xed\xa0\x80", 0, "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd", 0, NULL },
	{ "beyond U+10FFFF", "\xf4\x90\x80\x80", 0,
	  "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd", 0, NULL },
	{ "a sequence cut at the end", "ok\xe2\x82", 0, "ok\xef\xbf\xbd\xef\xbf\xbd", 0, NULL },
	{ "a sequence cut by an ASCII byte", "\xe2\x82" "A", 0, "\xef\xbf\xbd\xef\xbf\xbd" "A", 0,
	  NULL },
	{ "empty", "", 0, "", 0, "\"\"" },
};

static void test_escaping(void)
{
	char buf[2048], what[96];
	struct jline l;

	for (size_t i = 0; i < NELEM(escape_cases); i++) {
		size_t in_len = escape_cases[i].in_len ? escape_cases[i].in_len :
				strlen(escape_cases[i].in);
		size_t dlen = escape_cases[i].decoded_len ? escape_cases[i].decoded_len :
			      strlen(escape_cases[i].decoded);
		struct audit_rec r = { .status = 200, .content = escape_cases[i].in,
				       .content_len = in_len };
		const struct jfield *f;

		/* the same text as a NUL-terminated field too (where it has no NUL) */
		if (!escape_cases[i].in_len)
			r.from = escape_cases[i].in;
		snprintf(what, sizeof(what), "escaping: %s", escape_cases[i].what);
		if (format_ok(&r, 1, buf, sizeof(buf), &l, what) != 0)
			continue;
		f = j_get(&l, "content");
		CHECK(f && f->len == dlen && memcmp(f->value, escape_cases[i].decoded, dlen) == 0,
		      "%s: content decodes back (%zu bytes, want %zu): %s", what, f ? f->len : 0,
		      dlen, buf);
		if (r.from) {
			f = j_get(&l, "from");
			CHECK(f && f->len == dlen && memcmp(f->value, escape_cases[i].decoded, dlen) == 0,
			      "%s: from decodes back: %s", what, buf);
		}
		if (escape_cases[i].raw) {
			char want[256];

			snprintf(want, sizeof(want), "\"content\":%s}", escape_cases[i].raw);
			CHECK(strstr(buf, want) != NULL, "%s: raw %s in %s", what, want, buf);
		}
	}
}

/* Decoded s is a prefix of full, cut at a character boundary of full. */
static int prefix_at_boundary(const char *s, size_t n, const char *full, size_t flen)
{
	size_t i = 0;

	if (n > flen || memcmp(s, full, n) != 0)
		return 0;
	while (i < n)
		i += j_utf8((const unsigned char *)full + i, flen - i);
	return i == n;
}

/* Small buffers: the line stays valid JSON, fields are left out or cut, never broken. */
static void test_small_buffers(void)
{
	static char value[3000], decoded[4000];
	size_t dlen = 0, vlen = 0;
	struct jline l;

	/* a value of every width: 1 (escaped: 2 and 6), 2, 3, 4 bytes, and an invalid byte */
	while (vlen + 16 < sizeof(value)) {
		static const char piece[] = "a\"\x01\xc3\xa9\xe2\x98\x83\xf0\x9f\x98\x80\xff";
		static const char piece_dec[] = "a\"\x01\xc3\xa9\xe2\x98\x83\xf0\x9f\x98\x80"
						"\xef\xbf\xbd";

		memcpy(value + vlen, piece, sizeof(piece) - 1);
		vlen += sizeof(piece) - 1;
		memcpy(decoded + dlen, piece_dec, sizeof(piece_dec) - 1);
		dlen += sizeof(piece_dec) - 1;
	}
	value[vlen] = '\0';
	for (size_t len = 64; len <= 3000; len += (len < 200 ? 1 : 37)) {
		struct audit_rec r = {
			.peer = value, .direction = "out", .service = "pager", .method = "MESSAGE",
			.from = value, .to = value, .call_id = value, .source = value,
			.status = 503, .phrase = value, .content = value, .content_len = vlen,
		};
		char *buf = malloc(len), what[64];

		snprintf(what, sizeof(what), "a %zu-byte buffer", len);
		if (format_ok(&r, 1, buf, len, &l, what) == 0) {
			CHECK(str_of(&l, "time") != NULL, "%s: the time is always there", what);
			for (size_t i = 0; i < l.n; i++) {
				const struct jfield *f = &l.f[i];

				if (f->is_number || f->is_null || !strcmp(f->name, "time") ||
				    !strcmp(f->name, "verdict") || !strcmp(f->name, "direction") ||
				    !strcmp(f->name, "service") || !strcmp(f->name, "method"))
					continue;
				CHECK(prefix_at_boundary(f->value, f->len, decoded, dlen),
				      "%s: %s is a prefix cut at a character boundary", what,
				      f->name);
			}
		}
		free(buf);
	}
}

int main(void)
{
	test_reader();
	test_fields();
	test_verdicts_and_nulls();
	test_escaping();
	test_small_buffers();
	TEST_DONE();
}
