/* test_msrp.c - table-driven tests of the MSRP codec (sip/msrp.h): header table, URIs, RFC 4975 frames in every split, refusals, sizes, builders byte for byte, round trips. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sip/msrp.h"
#include "tests/unit/test.h"

#define MAXF 65536

/* the RFC 4975 section 10 endpoints */
#define URI_BOB "msrp://bob.example.com:8888/9di4eae923wzd;tcp"
#define URI_ALICE "msrp://alicepc.example.com:7777/iau39soe2843z;tcp"
#define TO "To-Path: " URI_BOB "\r\n"
#define FROM "From-Path: " URI_ALICE "\r\n"
#define SEND "MSRP d93kswow SEND\r\n"
#define MID "Message-ID: 12339sdqwer\r\n"
#define END "-------d93kswow$\r\n"
#define HDRS SEND TO FROM MID
#define OK200 "MSRP d93kswow 200 OK\r\nTo-Path: " URI_ALICE "\r\nFrom-Path: " URI_BOB "\r\n" END

/* ---- a canonical text of everything a feed produced, so whole results fit in one table cell */

struct sink {
	FILE *f;
	char *s;
	size_t n;
	size_t frames;
};

static void sink_open(struct sink *k)
{
	k->s = NULL;
	k->frames = 0;
	k->f = open_memstream(&k->s, &k->n);
	if (!k->f)
		abort();
}

static void put_bytes(FILE *f, const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '\r')
			fputs("\\r", f);
		else if (c == '\n')
			fputs("\\n", f);
		else if (c < 0x20 || c >= 0x7f || c == '\\')
			fprintf(f, "\\x%02x", c);
		else
			fputc(c, f);
	}
}

static void put_num(FILE *f, unsigned long long v)
{
	if (v == MSRP_UNKNOWN)
		fputc('*', f);
	else
		fprintf(f, "%llu", v);
}

/* the invariants every frame keeps, then its text */
static void on_frame(void *arg, const struct msrp_frame *fr)
{
	struct sink *k = arg;
	FILE *f = k->f;

	k->frames++;
	CHECK(strlen(fr->tid) >= 4 && strlen(fr->tid) <= 32, "tid length");
	CHECK(fr->nheaders >= 2 && fr->headers[0].id == MSRP_H_TO_PATH &&
	      fr->headers[1].id == MSRP_H_FROM_PATH, "To-Path, From-Path first");
	CHECK(fr->to_path == fr->headers[0].value && fr->from_path == fr->headers[1].value,
	      "paths are the first two headers");
	CHECK(fr->to_path[fr->to_path_len] == '\0' && strlen(fr->to_path) == fr->to_path_len,
	      "To-Path NUL-terminated");
	CHECK(msrp_path_first(fr->to_path, fr->to_path_len) > 0, "To-Path valid");
	for (size_t i = 0; i < fr->nheaders; i++)
		CHECK(fr->headers[i].value[fr->headers[i].value_len] == '\0' &&
		      fr->headers[i].id == msrp_header_lookup(fr->headers[i].name,
							       fr->headers[i].name_len),
		      "header %zu", i);
	CHECK(!fr->body || fr->body[fr->body_len] == '\0', "body NUL-terminated");
	CHECK((fr->body != NULL) == (fr->content_type != NULL) || fr->oversized,
	      "a body iff a Content-Type");

	if (fr->is_request) {
		fprintf(f, "REQ %s %.*s(%d)", fr->tid, (int)fr->method_len, fr->method_name,
			(int)fr->method);
		CHECK(fr->method_name[fr->method_len] == '\0', "method NUL-terminated");
	} else {
		fprintf(f, "RESP %s %d", fr->tid, fr->status);
		if (fr->comment)
			fprintf(f, " [%s]", fr->comment);
	}
	fprintf(f, " to=%s from=%s", fr->to_path, fr->from_path);
	if (fr->message_id)
		fprintf(f, " mid=%s", fr->message_id);
	if (fr->has_byte_range) {
		fprintf(f, " range=%llu-", fr->range_start);
		put_num(f, fr->range_end);
		fputc('/', f);
		put_num(f, fr->range_total);
	}
	if (fr->success_report >= 0)
		fprintf(f, " sr=%d", fr->success_report);
	if (fr->failure_report >= 0)
		fprintf(f, " fr=%d", fr->failure_report);
	if (fr->has_status) {
		fprintf(f, " status=%03d/%d", fr->status_ns, fr->status_code);
		if (fr->status_comment)
			fprintf(f, " [%s]", fr->status_comment);
	}
	fputs(" hdrs=", f);
	for (size_t i = 0; i < fr->nheaders; i++) {
		if (fr->headers[i].id == MSRP_H_EXTENSION)
			fprintf(f, "%s%.*s:%s", i ? "," : "", (int)fr->headers[i].name_len,
				fr->headers[i].name, fr->headers[i].value);
		else
			fprintf(f, "%s%d", i ? "," : "", (int)fr->headers[i].id);
	}
	if (fr->use_nickname)
		fprintf(f, " nick=%s", fr->use_nickname);
	if (fr->content_type)
		fprintf(f, " ct=%s", fr->content_type);
	if (fr->body) {
		fprintf(f, " body[%zu]=", fr->body_len);
		put_bytes(f, fr->body, fr->body_len);
	}
	if (fr->oversized)
		fputs(" OVERSIZED", f);
	else
		fprintf(f, " %c", fr->flag);
	fputc('\n', f);
}

static const struct msrp_parser_cbs sink_cbs = { on_frame };

/* Feeds in[0..len) cut at the given split points (ascending), each piece an exact-size heap
 * copy so AddressSanitizer sees any read past it.  Returns the text of frames and error. */
static char *run_cuts(const char *in, size_t len, size_t max_frame, const size_t *cuts,
		      size_t ncuts, size_t *nframes)
{
	struct sink k;
	struct msrp_parser *p;
	size_t at = 0;
	int r = 0, st;
	char tid[MSRP_TID_MAX + 1];
	const char *why;

	sink_open(&k);
	p = msrp_parser_new(max_frame, &sink_cbs, &k);
	for (size_t i = 0; i <= ncuts; i++) {
		size_t end = i < ncuts ? cuts[i] : len, n = end - at;
		char *piece = malloc(n ? n : 1);

		if (!piece)
			abort();
		memcpy(piece, in + at, n);
		if (r == 0)
			r = msrp_parser_feed(p, piece, n);
		else
			CHECK_INT(msrp_parser_feed(p, piece, n), -1, "a broken stream stays broken");
		free(piece);
		at = end;
	}
	why = msrp_parser_error(p, &st, tid);
	CHECK((r == -1) == (why != NULL), "error iff -1");
	if (why)
		fprintf(k.f, "ERROR %s / %d / %s\n", why, st, tid);
	msrp_parser_free(p);
	fclose(k.f);
	if (nframes)
		*nframes = k.frames;
	return k.s;
}

static char *run_whole(const char *in, size_t len, size_t max_frame)
{
	return run_cuts(in, len, max_frame, NULL, 0, NULL);
}

static unsigned long long rng_state = 88172645463325252ULL;

static unsigned long long rng(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

/* every split gives what the whole input gives: one byte at a time, and 30 random splits */
static void check_splits(const char *what, const char *in, size_t len, size_t max_frame,
			 const char *want)
{
	size_t *cuts = malloc((len + 1) * sizeof(*cuts));

	if (!cuts)
		abort();
	for (size_t i = 0; i < len; i++)
		cuts[i] = i + 1;
	{
		char *got = run_cuts(in, len, max_frame, cuts, len ? len - 1 : 0, NULL);

		CHECK_STR(got, want, "%s: one byte at a time", what);
		free(got);
	}
	for (int t = 0; t < 30; t++) {
		size_t n = 0, at = 0;
		char *got;

		while (len > 0) {
			at += 1 + rng() % (t < 10 ? 3 : t < 20 ? 40 : len);
			if (at >= len)
				break;
			cuts[n++] = at;
		}
		got = run_cuts(in, len, max_frame, cuts, n, NULL);
		CHECK_STR(got, want, "%s: random split %d (%zu pieces)", what, t, n + 1);
		free(got);
	}
	free(cuts);
}

/* ---- the header table: every row of msrp.c's table has a row here -------------------------- */

static const struct {
	enum msrp_header id;
	const char *name;
} header_rows[] = {
	{ MSRP_H_TO_PATH, "To-Path" },
	{ MSRP_H_FROM_PATH, "From-Path" },
	{ MSRP_H_MESSAGE_ID, "Message-ID" },
	{ MSRP_H_SUCCESS_REPORT, "Success-Report" },
	{ MSRP_H_FAILURE_REPORT, "Failure-Report" },
	{ MSRP_H_BYTE_RANGE, "Byte-Range" },
	{ MSRP_H_STATUS, "Status" },
	{ MSRP_H_CONTENT_TYPE, "Content-Type" },
	{ MSRP_H_CONTENT_ID, "Content-ID" },
	{ MSRP_H_CONTENT_DESCRIPTION, "Content-Description" },
	{ MSRP_H_CONTENT_DISPOSITION, "Content-Disposition" },
	{ MSRP_H_USE_NICKNAME, "Use-Nickname" },
};

static void test_header_table(void)
{
	size_t n = 0;

	while (msrp_header_name((enum msrp_header)n)) {
		CHECK(n < NELEM(header_rows), "header row %zu has a test row", n);
		if (n < NELEM(header_rows)) {
			CHECK_INT(header_rows[n].id, n, "header row %zu: id", n);
			CHECK_STR(msrp_header_name((enum msrp_header)n), header_rows[n].name,
				  "header row %zu: name", n);
		}
		n++;
	}
	CHECK_INT(n, NELEM(header_rows), "header table: number of rows");
	CHECK_INT(n, MSRP_H_EXTENSION, "the extension id follows the table");
	for (size_t i = 0; i < NELEM(header_rows); i++) {
		const char *name = header_rows[i].name;
		char lower[64];
		size_t k;

		CHECK_INT(msrp_header_lookup(name, strlen(name)), header_rows[i].id, "lookup %s", name);
		for (k = 0; name[k]; k++)
			lower[k] = (char)(name[k] >= 'A' && name[k] <= 'Z' ? name[k] + 32 : name[k]);
		CHECK_INT(msrp_header_lookup(lower, k), header_rows[i].id, "lookup %.*s", (int)k,
			  lower);
		CHECK_INT(msrp_header_lookup(name, strlen(name) - 1), MSRP_H_EXTENSION,
			  "lookup a prefix of %s", name);
	}
	static const char *const others[] = { "Use-Path", "Expires", "To-Paths", "", "WWW-Authenticate" };
	for (size_t i = 0; i < NELEM(others); i++)
		CHECK_INT(msrp_header_lookup(others[i], strlen(others[i])), MSRP_H_EXTENSION,
			  "lookup %s", others[i]);
	CHECK_STR(msrp_header_name(MSRP_H_EXTENSION), NULL, "no name for extensions");
}

/* ---- URIs ----------------------------------------------------------------------------------- */

static const struct {
	const char *uri;
	int ok, secure;
	const char *host;
	unsigned port;
	const char *session, *transport;
} uri_rows[] = {
	/* RFC 4975 examples */
	{ "msrp://atlanta.example.com:7654/jshA7weztas;tcp", 1, 0, "atlanta.example.com", 7654,
	  "jshA7weztas", "tcp" },
	{ URI_BOB, 1, 0, "bob.example.com", 8888, "9di4eae923wzd", "tcp" },
	{ "msrps://alice@intra.example.com;tcp", 1, 1, "intra.example.com", 0, "", "tcp" },
	{ "msrps://alice.example.com:9892/98cjs;tcp", 1, 1, "alice.example.com", 9892, "98cjs", "tcp" },
	/* the grammar's corners */
	{ "MSRP://Bob.Example.COM:1/a;TCP", 1, 0, "Bob.Example.COM", 1, "a", "TCP" },
	{ "msrp://192.0.2.1:65535/s-._~+=/x;tcp;foo=bar;baz", 1, 0, "192.0.2.1", 65535, "s-._~+=/x",
	  "tcp" },
	{ "msrp://[2001:db8::1]:2855/abc;tcp", 1, 0, "[2001:db8::1]", 2855, "abc", "tcp" },
	{ "msrp://[2001:db8::1]/abc;ws", 1, 0, "[2001:db8::1]", 0, "abc", "ws" },
	{ "msrp://u%41:pw@h:9/x;sctp", 1, 0, "h", 9, "x", "sctp" },
	/* refused */
	{ "msrp://bob.example.com:8888/9di4eae923wzd", 0, 0, NULL, 0, NULL, NULL },		/* no transport */
	{ "sip:bob@example.com", 0, 0, NULL, 0, NULL, NULL },
	{ "msrp:bob.example.com:8888/x;tcp", 0, 0, NULL, 0, NULL, NULL },
	{ "msrp://:8888/x;tcp", 0, 0, NULL, 0, NULL, NULL },					/* no host */
	{ "msrp://bob.example.com:0/x;tcp", 0, 0, NULL, 0, NULL, NULL },			/* port 0 */
	{ "msrp://bob.example.com:65536/x;tcp", 0, 0, NULL, 0, NULL, NULL },
	{ "msrp://bob.example.com:/x;tcp", 0, 0, NULL, 0, NULL, NULL },
	{ "msrp://bob.example.com:88a/x;tcp", 0, 0, NULL, 0, NULL, NULL },
	{ "msrp://bob.example.com//x;tcp", 1, 0, "bob.example.com", 0, "/x", "tcp" },
	{ "msrp://bob.example.com/;tcp", 0, 0, NULL, 0, NULL, NULL },				/* empty session-id */
	{ "msrp://bob.example.com/a b;tcp", 0, 0, NULL, 0, NULL, NULL },
	{ "msrp://bob.example.com/a%20b;tcp", 0, 0, NULL, 0, NULL, NULL },			/* no escapes in session-id */
	{ "msrp://bob.example.com/a;", 0, 0, NULL, 0, NULL, NULL },				/* empty transport */
	{ "msrp://bob.example.com/a;t-cp", 0, 0, NULL, 0, NULL, NULL },
	{ "msrp://bob.example.com/a;tcp;", 0, 0, NULL, 0, NULL, NULL },				/* empty parameter */
	{ "msrp://bob.example.com/a;tcp;x=", 0, 0, NULL, 0, NULL, NULL },
	{ "msrp://bob_example.com/a;tcp", 0, 0, NULL, 0, NULL, NULL },
	{ "msrp://[2001:db8::1/a;tcp", 0, 0, NULL, 0, NULL, NULL },
	{ "msrp://[2001:db8::1]x/a;tcp", 0, 0, NULL, 0, NULL, NULL },
	{ "msrp://a b@h/a;tcp", 0, 0, NULL, 0, NULL, NULL },
	{ "msrp://@h/a;tcp", 0, 0, NULL, 0, NULL, NULL },
	{ "", 0, 0, NULL, 0, NULL, NULL },
};

static const struct {
	const char *a, *b;
	int equal;
} uri_eq_rows[] = {
	/* RFC 4975 6.1: scheme and host case-insensitive */
	{ "msrp://atlanta.example.com:7654/jshA7weztas;tcp",
	  "MSRP://ATLANTA.example.com:7654/jshA7weztas;tcp", 1 },
	/* session-id case-sensitive */
	{ "msrp://atlanta.example.com:7654/jshA7weztas;tcp",
	  "msrp://atlanta.example.com:7654/jsha7weztas;tcp", 0 },
	/* transport case-insensitive */
	{ "msrp://atlanta.example.com:7654/jshA7weztas;tcp",
	  "msrp://atlanta.example.com:7654/jshA7weztas;TCP", 1 },
	/* an explicit port never equals an absent one */
	{ "msrp://atlanta.example.com:7654/jshA7weztas;tcp",
	  "msrp://atlanta.example.com/jshA7weztas;tcp", 0 },
	{ "msrp://atlanta.example.com:2855/jshA7weztas;tcp",
	  "msrp://atlanta.example.com/jshA7weztas;tcp", 0 },
	{ "msrp://atlanta.example.com:7654/jshA7weztas;tcp",
	  "msrp://atlanta.example.com:7655/jshA7weztas;tcp", 0 },
	/* absent session-id never equals a present one */
	{ "msrp://atlanta.example.com:7654;tcp", "msrp://atlanta.example.com:7654/x;tcp", 0 },
	{ "msrp://atlanta.example.com:7654;tcp", "msrp://atlanta.example.com:7654;tcp", 1 },
	/* msrp and msrps differ */
	{ "msrp://atlanta.example.com:7654/jshA7weztas;tcp",
	  "msrps://atlanta.example.com:7654/jshA7weztas;tcp", 0 },
	/* userinfo and URI parameters are ignored */
	{ "msrp://alice@atlanta.example.com:7654/jshA7weztas;tcp;x=y",
	  "msrp://atlanta.example.com:7654/jshA7weztas;tcp", 1 },
	/* hosts are not resolved */
	{ "msrp://192.0.2.1:7654/a;tcp", "msrp://atlanta.example.com:7654/a;tcp", 0 },
	{ "msrp://atlanta.example.com:7654/a;tcp", "msrp://atlanta.example.com:7654/a;sctp", 0 },
};

static const struct {
	const char *path;
	size_t first;
} path_rows[] = {
	{ URI_BOB, sizeof(URI_BOB) - 1 },
	{ URI_BOB " " URI_ALICE, sizeof(URI_BOB) - 1 },
	{ "msrps://relay.example.com:2855/r1;tcp " URI_BOB, 37 },
	{ URI_BOB "  " URI_ALICE, 0 },
	{ URI_BOB " ", 0 },
	{ " " URI_BOB, 0 },
	{ "", 0 },
	{ URI_BOB " sip:x@y", 0 },
};

static void test_uris(void)
{
	for (size_t i = 0; i < NELEM(uri_rows); i++) {
		struct msrp_uri u;
		const char *s = uri_rows[i].uri;
		int r = msrp_uri_parse(s, strlen(s), &u);

		CHECK_INT(r, uri_rows[i].ok ? 0 : -1, "parse %s", s);
		if (r != 0 || !uri_rows[i].ok)
			continue;
		CHECK_INT(u.secure, uri_rows[i].secure, "%s: secure", s);
		CHECK_STR(u.host, uri_rows[i].host, "%s: host", s);
		CHECK_INT(u.port, uri_rows[i].port, "%s: port", s);
		CHECK_STR(u.session, uri_rows[i].session, "%s: session", s);
		CHECK_STR(u.transport, uri_rows[i].transport, "%s: transport", s);
		/* a URI is equal to itself, and parsing never reads past len */
		CHECK_INT(msrp_uri_equal(&u, &u), 1, "%s equals itself", s);
		{
			size_t n = strlen(s);
			char *copy = malloc(n);

			if (!copy)
				abort();
			memcpy(copy, s, n);
			CHECK_INT(msrp_uri_parse(copy, n, &u), 0, "%s without NUL", s);
			free(copy);
		}
	}
	for (size_t i = 0; i < NELEM(uri_eq_rows); i++) {
		struct msrp_uri a, b;

		CHECK(msrp_uri_parse(uri_eq_rows[i].a, strlen(uri_eq_rows[i].a), &a) == 0 &&
		      msrp_uri_parse(uri_eq_rows[i].b, strlen(uri_eq_rows[i].b), &b) == 0,
		      "row %zu parses", i);
		CHECK_INT(msrp_uri_equal(&a, &b), uri_eq_rows[i].equal, "%s == %s", uri_eq_rows[i].a,
			  uri_eq_rows[i].b);
		CHECK_INT(msrp_uri_equal(&b, &a), uri_eq_rows[i].equal, "%s == %s", uri_eq_rows[i].b,
			  uri_eq_rows[i].a);
	}
	for (size_t i = 0; i < NELEM(path_rows); i++)
		CHECK_INT(msrp_path_first(path_rows[i].path, strlen(path_rows[i].path)),
			  path_rows[i].first, "path \"%s\"", path_rows[i].path);
}

/* ---- frames that parse: RFC 4975's examples and the grammar's corners ------------------------- */

#define D_TO "to=" URI_BOB " from=" URI_ALICE
#define D_OK "RESP d93kswow 200 [OK] to=" URI_ALICE " from=" URI_BOB " hdrs=0,1 $\n"

#define NEAR HDRS "Content-Type: application/octet-stream\r\n\r\n" \
	"-------d93kswow\r\n-------d93kswow$x\r\n-------d93kswo$\r\n-------other123$\r\n" \
	"\r\n-------d93kswow$ \r\n\0\xff\r\n" END

static const struct {
	const char *what, *in, *want;
	size_t len;	/* 0: strlen(in) */
} good_rows[] = {
	/* RFC 4975 section 4 (its Byte-Range counts 25 for 23 octets: the parser does not care) */
	{ "RFC 4975 4: SEND",
	  "MSRP a786hjs2 SEND\r\n"
	  "To-Path: msrp://biloxi.example.com:12763/kjhd37s2s20w2a;tcp\r\n"
	  "From-Path: msrp://atlanta.example.com:7654/jshA7weztas;tcp\r\n"
	  "Message-ID: 87652491\r\n"
	  "Byte-Range: 1-25/25\r\n"
	  "Content-Type: text/plain\r\n"
	  "\r\n"
	  "Hey Bob, are you there?\r\n"
	  "-------a786hjs2$\r\n",
	  "REQ a786hjs2 SEND(0) to=msrp://biloxi.example.com:12763/kjhd37s2s20w2a;tcp "
	  "from=msrp://atlanta.example.com:7654/jshA7weztas;tcp mid=87652491 range=1-25/25 "
	  "hdrs=0,1,2,5,7 ct=text/plain body[23]=Hey Bob, are you there? $\n", 0 },
	{ "RFC 4975 4: 200 OK",
	  "MSRP a786hjs2 200 OK\r\n"
	  "To-Path: msrp://atlanta.example.com:7654/jshA7weztas;tcp\r\n"
	  "From-Path: msrp://biloxi.example.com:12763/kjhd37s2s20w2a;tcp\r\n"
	  "-------a786hjs2$\r\n",
	  "RESP a786hjs2 200 [OK] to=msrp://atlanta.example.com:7654/jshA7weztas;tcp "
	  "from=msrp://biloxi.example.com:12763/kjhd37s2s20w2a;tcp hdrs=0,1 $\n", 0 },
	/* RFC 4975 10.1 */
	{ "RFC 4975 10.1: SEND then 200 on one stream",
	  HDRS "Byte-Range: 1-16/16\r\nContent-Type: text/plain\r\n\r\nHi, I'm Alice!\r\n" END OK200,
	  "REQ d93kswow SEND(0) " D_TO " mid=12339sdqwer range=1-16/16 hdrs=0,1,2,5,7 ct=text/plain "
	  "body[14]=Hi, I'm Alice! $\n" D_OK, 0 },
	{ "RFC 4975 10.2: HTML with reports",
	  HDRS "Byte-Range: 1-106/106\r\nSuccess-Report: yes\r\nFailure-Report: no\r\n"
	  "Content-Type: text/html\r\n\r\n<html><body>\r\n<p>Here is that <a href=\"x\">link</a></p>"
	  "\r\n</body></html>\r\n" END,
	  "REQ d93kswow SEND(0) " D_TO " mid=12339sdqwer range=1-106/106 sr=1 fr=0 hdrs=0,1,2,5,3,4,7 "
	  "ct=text/html body[70]=<html><body>\\r\\n<p>Here is that <a href=\"x\">link</a></p>\\r\\n"
	  "</body></html> $\n", 0 },
	{ "RFC 4975 10.2: REPORT",
	  "MSRP dkei38sd REPORT\r\n"
	  "To-Path: " URI_ALICE "\r\nFrom-Path: " URI_BOB "\r\n"
	  "Message-ID: 12339sdqwer\r\nByte-Range: 1-106/106\r\nStatus: 000 200 OK\r\n"
	  "-------dkei38sd$\r\n",
	  "REQ dkei38sd REPORT(1) to=" URI_ALICE " from=" URI_BOB " mid=12339sdqwer "
	  "range=1-106/106 status=000/200 [OK] hdrs=0,1,2,5,6 $\n", 0 },
	/* a message in chunks: '+' then '$', the first with an unknown end */
	{ "chunked SEND",
	  "MSRP 7443cchw SEND\r\n" TO FROM "Message-ID: 4564dpWd\r\nByte-Range: 1-*/20\r\n"
	  "Content-Type: text/plain\r\n\r\nfirst part\r\n-------7443cchw+\r\n"
	  "MSRP 7443cchx SEND\r\n" TO FROM "Message-ID: 4564dpWd\r\nByte-Range: 11-20/20\r\n"
	  "Content-Type: text/plain\r\n\r\nsecond one\r\n-------7443cchx$\r\n",
	  "REQ 7443cchw SEND(0) " D_TO " mid=4564dpWd range=1-*/20 hdrs=0,1,2,5,7 ct=text/plain "
	  "body[10]=first part +\n"
	  "REQ 7443cchx SEND(0) " D_TO " mid=4564dpWd range=11-20/20 hdrs=0,1,2,5,7 ct=text/plain "
	  "body[10]=second one $\n", 0 },
	/* an interrupted chunk: '#' */
	{ "aborted chunk",
	  "MSRP 7443cchy SEND\r\n" TO FROM "Message-ID: 4564dpWd\r\nByte-Range: 1-*/*\r\n"
	  "Content-Type: text/plain\r\n\r\nthe begi\r\n-------7443cchy#\r\n",
	  "REQ 7443cchy SEND(0) " D_TO " mid=4564dpWd range=1-*/* hdrs=0,1,2,5,7 ct=text/plain "
	  "body[8]=the begi #\n", 0 },
	/* responses */
	{ "413",
	  "MSRP 7443cchy 413 Please stop sending this message\r\nTo-Path: " URI_ALICE
	  "\r\nFrom-Path: " URI_BOB "\r\n-------7443cchy$\r\n",
	  "RESP 7443cchy 413 [Please stop sending this message] to=" URI_ALICE " from=" URI_BOB
	  " hdrs=0,1 $\n", 0 },
	{ "response without comment, with an empty comment",
	  "MSRP abcd 481\r\nTo-Path: " URI_ALICE "\r\nFrom-Path: " URI_BOB "\r\n-------abcd$\r\n"
	  "MSRP abce 200 \r\nTo-Path: " URI_ALICE "\r\nFrom-Path: " URI_BOB "\r\n-------abce$\r\n",
	  "RESP abcd 481 to=" URI_ALICE " from=" URI_BOB " hdrs=0,1 $\n"
	  "RESP abce 200 [] to=" URI_ALICE " from=" URI_BOB " hdrs=0,1 $\n", 0 },
	/* a bodyless SEND (keep-alive) and an empty body */
	{ "bodyless SEND",
	  HDRS "Byte-Range: 1-0/0\r\n" END,
	  "REQ d93kswow SEND(0) " D_TO " mid=12339sdqwer range=1-0/0 hdrs=0,1,2,5 $\n", 0 },
	{ "empty body",
	  HDRS "Content-Type: text/plain\r\n\r\n\r\n" END,
	  "REQ d93kswow SEND(0) " D_TO " mid=12339sdqwer hdrs=0,1,2,7 ct=text/plain body[0]= $\n", 0 },
	/* the body may hold anything but CRLF end-line CRLF */
	{ "body holding near end-lines", NEAR,
	  "REQ d93kswow SEND(0) " D_TO " mid=12339sdqwer hdrs=0,1,2,7 ct=application/octet-stream "
	  "body[94]=-------d93kswow\\r\\n-------d93kswow$x\\r\\n-------d93kswo$\\r\\n"
	  "-------other123$\\r\\n\\r\\n-------d93kswow$ \\r\\n\\x00\\xff $\n", sizeof(NEAR) - 1 },
	{ "body ending in CR LF",
	  HDRS "Content-Type: text/plain\r\n\r\nline\r\n\r\n" END,
	  "REQ d93kswow SEND(0) " D_TO " mid=12339sdqwer hdrs=0,1,2,7 ct=text/plain "
	  "body[6]=line\\r\\n $\n", 0 },
	/* unknown methods are frames: the caller answers 501 */
	{ "RFC 4976 AUTH",
	  "MSRP 49fh AUTH\r\nTo-Path: msrps://alice@intra.example.com;tcp\r\n"
	  "From-Path: msrps://alice.example.com:9892/98cjs;tcp\r\n-------49fh$\r\n",
	  "REQ 49fh AUTH(3) to=msrps://alice@intra.example.com;tcp "
	  "from=msrps://alice.example.com:9892/98cjs;tcp hdrs=0,1 $\n", 0 },
	/* RFC 7701 5.1 */
	{ "RFC 7701 NICKNAME",
	  "MSRP 4545 NICKNAME\r\nTo-Path: " URI_BOB "\r\nFrom-Path: " URI_ALICE "\r\n"
	  "Use-Nickname: \"Alice the great\"\r\n-------4545$\r\n",
	  "REQ 4545 NICKNAME(2) " D_TO " hdrs=0,1,11 nick=\"Alice the great\" $\n", 0 },
	/* relays in the paths, MIME headers, extension headers, UTF-8, case-insensitive names */
	{ "paths, MIME and extension headers",
	  "MSRP a.b-c+d%e=f SEND\r\n"
	  "to-path: msrps://relay.example.com:2855/r1;tcp " URI_BOB "\r\n"
	  "FROM-PATH: " URI_ALICE "\r\n"
	  "Message-ID: x9z.-+%=\r\n"
	  "Use-Path: msrps://relay.example.com:2855/r1;tcp\r\n"
	  "X-Note: caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\ttab\r\n"
	  "Message-ID-Not: \r\n"
	  "Content-ID: <1234@example.com>\r\n"
	  "Content-Disposition: attachment; filename=\"a.txt\"\r\n"
	  "Content-Type: text/plain; charset=UTF-8\r\n\r\n\xc3\xa9\r\n-------a.b-c+d%e=f$\r\n",
	  "REQ a.b-c+d%e=f SEND(0) to=msrps://relay.example.com:2855/r1;tcp " URI_BOB
	  " from=" URI_ALICE " mid=x9z.-+%= hdrs=0,1,2,Use-Path:msrps://relay.example.com:2855/r1;tcp,"
	  "X-Note:caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\ttab,Message-ID-Not:,8,10,7 "
	  "ct=text/plain; charset=UTF-8 body[2]=\\xc3\\xa9 $\n", 0 },
	{ "Status with a namespace and no comment, partial failure reports",
	  "MSRP dkei38sd REPORT\r\nTo-Path: " URI_ALICE "\r\nFrom-Path: " URI_BOB "\r\n"
	  "Message-ID: 12339sdqwer\r\nFailure-Report: PARTIAL\r\nStatus: 123 413\r\n"
	  "-------dkei38sd+\r\n",
	  "REQ dkei38sd REPORT(1) to=" URI_ALICE " from=" URI_BOB " mid=12339sdqwer fr=2 "
	  "status=123/413 hdrs=0,1,2,4,6 +\n", 0 },
	{ "32-character tid, 18-digit ranges",
	  "MSRP 0123456789abcdef0123456789abcdef SEND\r\n" TO FROM MID
	  "Byte-Range: 999999999999999999-*/999999999999999999\r\n"
	  "-------0123456789abcdef0123456789abcdef$\r\n",
	  "REQ 0123456789abcdef0123456789abcdef SEND(0) " D_TO " mid=12339sdqwer "
	  "range=999999999999999999-*/999999999999999999 hdrs=0,1,2,5 $\n", 0 },
	{ "truncated: no frame, no error", HDRS "Content-Type: text/plain\r\n\r\nHi\r\n-------d93kswow$\r", "", 0 },
};

/* Use-Nickname values (RFC 7701 5.1: a quoted-string): what msrp_nickname_parse() makes of them,
 * NULL for a value the request gets 424 for. */
static const struct {
	const char *in;
	const char *want;
} nick_rows[] = {
	{ "\"Alice the great\"", "Alice the great" },
	{ "\"caf\xc3\xa9 \xf0\x9f\x98\x80\"", "caf\xc3\xa9 \xf0\x9f\x98\x80" },
	{ "\"say \\\"hi\\\" \\\\o/\"", "say \"hi\" \\o/" },
	{ "\"\"", NULL },			/* empty */
	{ "Alice", NULL },			/* not quoted */
	{ "\"Alice", NULL },
	{ "\"A\" \"B\"", NULL },		/* two strings */
	{ "\"tab\there\"", NULL },		/* a control character */
	{ "\"\xc3\"", NULL },			/* truncated UTF-8 */
	{ "\"\xed\xa0\x80\"", NULL },		/* a surrogate */
	{ "\"\xc2\x85\"", NULL },			/* C1 control */
	{ "\"end\\\"", NULL },			/* escapes the closing quote */
};

static void test_good(void)
{
	for (size_t i = 0; i < NELEM(good_rows); i++) {
		const char *in = good_rows[i].in;
		size_t len = good_rows[i].len ? good_rows[i].len : strlen(in);
		char *got = run_whole(in, len, MAXF);

		CHECK_STR(got, good_rows[i].want, "%s", good_rows[i].what);
		check_splits(good_rows[i].what, in, len, MAXF, got);
		free(got);
	}
}

/* ---- refusals: a reason, and whether (and with which tid) to answer before closing ------------ */

#define R_START "bad start line (not \"MSRP <tid> <method>\" or \"MSRP <tid> <status>\")"
#define R_TID "bad transaction id (not 4..32 ident characters)"
#define R_LONG "line too long"
#define R_CRLF "line not ended by CRLF"
#define R_CHARS "control character or invalid UTF-8 in a header"
#define R_HEADER "malformed header line (not \"name: value\")"
#define R_TO "To-Path is not the first header"
#define R_FROM "From-Path is not the second header"
#define R_DUP "header repeated"
#define R_MANY "too many headers"
#define R_PATH "bad To-Path or From-Path"
#define R_MSGID "bad Message-ID"
#define R_REPORT "bad Success-Report or Failure-Report"
#define R_RANGE "bad Byte-Range"
#define R_STATUS "bad Status"
#define R_CTYPE "bad Content-Type"
#define R_LAST "header after Content-Type"
#define R_NOCT "body without Content-Type"
#define R_RESPBODY "body in a response"
#define R_MIME "Content-* header without Content-Type"
#define R_REQ "header required by the method missing"
#define R_END "end-line does not match the transaction"
#define R_ENDCRLF "end-line not preceded by CRLF"
#define R_LARGE "frame too large"

#define RANGE(r) HDRS "Byte-Range: " r "\r\n" END

static const struct {
	const char *what, *in;
	size_t len;		/* 0: strlen(in) */
	const char *reason;
	int status;		/* 400: answer the request, 0: just close */
	const char *tid;
	size_t frames;		/* frames delivered before the error */
} bad_rows[] = {
	{ "garbage", "GET / HTTP/1.1\r\n", 0, R_START, 0, "", 0 },
	{ "not MSRP", "MSRQ d93kswow SEND\r\n", 0, R_START, 0, "", 0 },
	{ "lower-case msrp", "msrp d93kswow SEND\r\n", 0, R_START, 0, "", 0 },
	{ "lower-case method", "MSRP d93kswow send\r\n", 0, R_START, 0, "d93kswow", 0 },
	{ "no method", "MSRP d93kswow\r\n", 0, R_START, 0, "", 0 },
	{ "empty method", "MSRP d93kswow \r\n", 0, R_START, 0, "d93kswow", 0 },
	{ "two spaces", "MSRP  d93kswow SEND\r\n", 0, R_TID, 0, "", 0 },
	{ "tid of 3", "MSRP abc SEND\r\n", 0, R_TID, 0, "", 0 },
	{ "tid of 33", "MSRP 0123456789abcdef0123456789abcdef0 SEND\r\n", 0, R_TID, 0, "", 0 },
	{ "tid with _", "MSRP abc_def SEND\r\n", 0, R_TID, 0, "", 0 },
	{ "tid starting with -", "MSRP -abcdef SEND\r\n", 0, R_TID, 0, "", 0 },
	{ "status of 2 digits", "MSRP d93kswow 20 OK\r\n", 0, R_START, 0, "d93kswow", 0 },
	{ "status 099", "MSRP d93kswow 099 OK\r\n", 0, R_START, 0, "d93kswow", 0 },
	{ "status 2000", "MSRP d93kswow 2000\r\n", 0, R_START, 0, "d93kswow", 0 },
	{ "bare LF start line", "MSRP d93kswow SEND\n", 0, R_CRLF, 0, "", 0 },
	{ "empty line first", "\r\nMSRP d93kswow SEND\r\n", 0, R_START, 0, "", 0 },
	{ "NUL in start line", "MSRP d93kswow SE\0ND\r\n", 21, R_CHARS, 0, "", 0 },
	{ "missing To-Path", SEND FROM MID END, 0, R_TO, 400, "d93kswow", 0 },
	{ "no headers", SEND END, 0, R_TO, 400, "d93kswow", 0 },
	{ "From-Path not second", SEND TO MID FROM END, 0, R_FROM, 400, "d93kswow", 0 },
	{ "From-Path first", SEND FROM TO MID END, 0, R_TO, 400, "d93kswow", 0 },
	{ "To-Path only", SEND TO END, 0, R_FROM, 400, "d93kswow", 0 },
	{ "To-Path twice", SEND TO FROM TO END, 0, R_DUP, 400, "d93kswow", 0 },
	{ "Message-ID twice", HDRS MID END, 0, R_DUP, 400, "d93kswow", 0 },
	{ "response: From-Path missing", "MSRP d93kswow 200 OK\r\n" TO END, 0, R_FROM, 0,
	  "d93kswow", 0 },
	{ "end-line of another tid", HDRS "-------d93kswox$\r\n", 0, R_END, 400, "d93kswow", 0 },
	{ "end-line with a bad flag", HDRS "-------d93kswow!\r\n", 0, R_END, 400, "d93kswow", 0 },
	{ "end-line with trailing space", HDRS "-------d93kswow$ \r\n", 0, R_END, 400, "d93kswow", 0 },
	{ "body without Content-Type", HDRS "\r\nhello\r\n" END, 0, R_NOCT, 400, "d93kswow", 0 },
	{ "header after Content-Type", HDRS "Content-Type: text/plain\r\nByte-Range: 1-5/5\r\n", 0,
	  R_LAST, 400, "d93kswow", 0 },
	{ "Content-Type in a response", "MSRP d93kswow 200 OK\r\n" TO FROM
	  "Content-Type: text/plain\r\n\r\nx\r\n" END, 0, R_RESPBODY, 0, "d93kswow", 0 },
	{ "Content-ID without a body", HDRS "Content-ID: <x@y>\r\n" END, 0, R_MIME, 400,
	  "d93kswow", 0 },
	{ "end-line right after the empty line", HDRS "Content-Type: text/plain\r\n\r\n" END, 0,
	  R_ENDCRLF, 400, "d93kswow", 0 },
	{ "SEND without Message-ID", SEND TO FROM "Byte-Range: 1-0/0\r\n" END, 0, R_REQ, 400,
	  "d93kswow", 0 },
	{ "SEND without Message-ID, with a body", SEND TO FROM "Content-Type: text/plain\r\n\r\n",
	  0, R_REQ, 400, "d93kswow", 0 },
	{ "REPORT without Status", "MSRP d93kswow REPORT\r\n" TO FROM MID END, 0, R_REQ, 400,
	  "d93kswow", 0 },
	{ "Byte-Range start 0", RANGE("0-5/5"), 0, R_RANGE, 400, "d93kswow", 0 },
	{ "Byte-Range no total", RANGE("1-5"), 0, R_RANGE, 400, "d93kswow", 0 },
	{ "Byte-Range end before start", RANGE("5-3/10"), 0, R_RANGE, 400, "d93kswow", 0 },
	{ "Byte-Range total below end", RANGE("1-5/4"), 0, R_RANGE, 400, "d93kswow", 0 },
	{ "Byte-Range total below start", RANGE("7-*/5"), 0, R_RANGE, 400, "d93kswow", 0 },
	{ "Byte-Range letters", RANGE("a-5/5"), 0, R_RANGE, 400, "d93kswow", 0 },
	{ "Byte-Range trailing junk", RANGE("1-*/3x"), 0, R_RANGE, 400, "d93kswow", 0 },
	{ "Byte-Range trailing space", RANGE("1-5/5 "), 0, R_RANGE, 400, "d93kswow", 0 },
	{ "Byte-Range star start", RANGE("*-5/5"), 0, R_RANGE, 400, "d93kswow", 0 },
	{ "Byte-Range 19 digits", RANGE("1-5/1000000000000000000"), 0, R_RANGE, 400, "d93kswow", 0 },
	{ "Byte-Range double dash", RANGE("1--5/5"), 0, R_RANGE, 400, "d93kswow", 0 },
	{ "Success-Report maybe", HDRS "Success-Report: maybe\r\n" END, 0, R_REPORT, 400,
	  "d93kswow", 0 },
	{ "Success-Report partial", HDRS "Success-Report: partial\r\n" END, 0, R_REPORT, 400,
	  "d93kswow", 0 },
	{ "Message-ID not ASCII", SEND TO FROM "Message-ID: x9\xc3\xa9z\r\n" END, 0, R_MSGID, 400,
	  "d93kswow", 0 },
	{ "Message-ID too short", SEND TO FROM "Message-ID: 123\r\n" END, 0, R_MSGID, 400,
	  "d93kswow", 0 },
	{ "To-Path a SIP URI", SEND "To-Path: sip:bob@example.com\r\n", 0, R_PATH, 400,
	  "d93kswow", 0 },
	{ "To-Path without transport", SEND "To-Path: msrp://bob.example.com:8888/x\r\n", 0,
	  R_PATH, 400, "d93kswow", 0 },
	{ "From-Path with two spaces", SEND TO "From-Path: " URI_ALICE "  " URI_BOB "\r\n", 0,
	  R_PATH, 400, "d93kswow", 0 },
	{ "Status without code", "MSRP d93kswow REPORT\r\n" TO FROM MID "Status: 200 OK\r\n", 0,
	  R_STATUS, 400, "d93kswow", 0 },
	{ "Content-Type without subtype", HDRS "Content-Type: text\r\n", 0, R_CTYPE, 400,
	  "d93kswow", 0 },
	{ "no space after the colon", SEND TO FROM "Message-ID:12339sdqwer\r\n", 0, R_HEADER, 400,
	  "d93kswow", 0 },
	{ "space before the colon", SEND TO FROM "Message-ID : 12339sdqwer\r\n", 0, R_HEADER, 400,
	  "d93kswow", 0 },
	{ "header name with a digit first", HDRS "1X: y\r\n", 0, R_HEADER, 400, "d93kswow", 0 },
	{ "header line without colon", HDRS "hello\r\n", 0, R_HEADER, 400, "d93kswow", 0 },
	{ "continuation line", HDRS " folded\r\n", 0, R_HEADER, 400, "d93kswow", 0 },
	{ "NUL in a header", HDRS "X-A: a\0b\r\n", sizeof(HDRS) - 1 + 10, R_CHARS, 400, "d93kswow",
	  0 },
	{ "CR in a header", HDRS "X-A: a\rb\r\n", 0, R_CHARS, 400, "d93kswow", 0 },
	{ "bare LF in a header", HDRS "X-A: ab\n", 0, R_CRLF, 400, "d93kswow", 0 },
	{ "control character", HDRS "X-A: \x01\r\n", 0, R_CHARS, 400, "d93kswow", 0 },
	{ "DEL", HDRS "X-A: \x7f\r\n", 0, R_CHARS, 400, "d93kswow", 0 },
	{ "invalid UTF-8", HDRS "X-A: \xc3\x28\r\n", 0, R_CHARS, 400, "d93kswow", 0 },
	{ "overlong UTF-8", HDRS "X-A: \xc0\xaf\r\n", 0, R_CHARS, 400, "d93kswow", 0 },
	{ "UTF-8 surrogate", HDRS "X-A: \xed\xa0\x80\r\n", 0, R_CHARS, 400, "d93kswow", 0 },
	{ "UTF-8 past U+10FFFF", HDRS "X-A: \xf4\x90\x80\x80\r\n", 0, R_CHARS, 400, "d93kswow", 0 },
	{ "truncated UTF-8", HDRS "X-A: \xe2\x82\r\n", 0, R_CHARS, 400, "d93kswow", 0 },
	{ "a good frame, then a broken one", OK200 "MSRP d93kswow SEND\r\n" TO "To-Path: x\r\n", 0,
	  R_FROM, 400, "d93kswow", 1 },
	{ "a good frame, then garbage", OK200 "\r\n", 0, R_START, 0, "", 1 },
};

static void test_bad(void)
{
	for (size_t i = 0; i < NELEM(bad_rows); i++) {
		const char *in = bad_rows[i].in;
		size_t len = bad_rows[i].len ? bad_rows[i].len : strlen(in), frames;
		char want[512];
		char *got = run_cuts(in, len, MAXF, NULL, 0, &frames);
		const char *e = strstr(got, "ERROR ");

		snprintf(want, sizeof(want), "ERROR %s / %d / %s\n", bad_rows[i].reason,
			 bad_rows[i].status, bad_rows[i].tid);
		CHECK_STR(e, want, "%s", bad_rows[i].what);
		CHECK_INT(frames, bad_rows[i].frames, "%s: frames before the error", bad_rows[i].what);
		check_splits(bad_rows[i].what, in, len, MAXF, got);
		free(got);
	}
}

/* ---- sizes: lines, header counts, max_frame, oversized bodies ------------------------------- */

/* a, then n times fill, then c: a new string */
static char *cat(const char *a, size_t n, char fill, const char *c)
{
	size_t la = strlen(a), lc = strlen(c);
	char *s = malloc(la + n + lc + 1);

	if (!s)
		abort();
	memcpy(s, a, la);
	memset(s + la, fill, n);
	memcpy(s + la + n, c, lc + 1);
	return s;
}

static void expect(const char *what, const char *in, size_t max_frame, const char *want)
{
	char *got = run_whole(in, strlen(in), max_frame);

	CHECK_STR(got, want, "%s", what);
	check_splits(what, in, strlen(in), max_frame, got);
	free(got);
}

static void test_sizes(void)
{
	char *in, *want;

	/* a header line of MSRP_MAX_LINE bytes is fine, one more is not (with or without its LF) */
	in = cat(HDRS "X-Long: ", MSRP_MAX_LINE - 8, 'a', "\r\n" END);
	want = cat("REQ d93kswow SEND(0) " D_TO " mid=12339sdqwer hdrs=0,1,2,X-Long:",
		   MSRP_MAX_LINE - 8, 'a', " $\n");
	expect("longest line", in, MAXF, want);
	free(in);
	free(want);
	in = cat(HDRS "X-Long: ", MSRP_MAX_LINE - 7, 'a', "\r\n" END);
	expect("line one byte too long", in, MAXF, "ERROR " R_LONG " / 400 / d93kswow\n");
	free(in);
	in = cat(HDRS "X-Long: ", MSRP_MAX_LINE * 2, 'a', "");
	expect("line too long, no LF yet", in, MAXF, "ERROR " R_LONG " / 400 / d93kswow\n");
	free(in);
	in = cat("MSRP ", MSRP_MAX_LINE * 2, 'a', "");
	expect("start line too long", in, MAXF, "ERROR " R_LONG " / 0 / \n");
	free(in);

	/* MSRP_MAX_HEADERS headers, then one more */
	{
		char buf[4096];
		size_t n = (size_t)snprintf(buf, sizeof(buf), "%s", HDRS), w;
		char dump[4096];

		w = (size_t)snprintf(dump, sizeof(dump), "REQ d93kswow SEND(0) " D_TO
				     " mid=12339sdqwer hdrs=0,1,2");
		for (int h = 3; h < MSRP_MAX_HEADERS; h++) {
			n += (size_t)snprintf(buf + n, sizeof(buf) - n, "X-%d: v\r\n", h);
			w += (size_t)snprintf(dump + w, sizeof(dump) - w, ",X-%d:v", h);
		}
		snprintf(buf + n, sizeof(buf) - n, END);
		snprintf(dump + w, sizeof(dump) - w, " $\n");
		expect("MSRP_MAX_HEADERS headers", buf, MAXF, dump);
		snprintf(buf + n, sizeof(buf) - n, "X-last: v\r\n" END);
		expect("one header too many", buf, MAXF, "ERROR " R_MANY " / 400 / d93kswow\n");
	}

	/* a frame of exactly max_frame bytes parses; one byte more and the body is dropped */
	{
		const char *head = HDRS "Content-Type: text/plain\r\n\r\n";
		size_t fixed = strlen(head) + 2 + strlen(END), mf = 1000;
		char *exact = cat(head, mf - fixed, 'x', "\r\n" END);
		char *over = cat(head, mf - fixed + 1, 'x', "\r\n" END OK200);
		char *w = cat("REQ d93kswow SEND(0) " D_TO " mid=12339sdqwer hdrs=0,1,2,7 ct=text/plain body[",
			      0, 0, "");
		char *got;
		char num[32];

		CHECK_INT(strlen(exact), mf, "the exact frame is max_frame long");
		snprintf(num, sizeof(num), "%zu]=", mf - fixed);
		got = run_whole(exact, strlen(exact), mf);
		CHECK(strncmp(got, w, strlen(w)) == 0 && strstr(got, num) && !strstr(got, "ERROR"),
		      "max_frame bytes parse: %s", got);
		check_splits("max_frame bytes", exact, strlen(exact), mf, got);
		free(got);
		expect("max_frame + 1 bytes: oversized, then the next frame", over, mf,
		       "REQ d93kswow SEND(0) " D_TO " mid=12339sdqwer hdrs=0,1,2,7 ct=text/plain "
		       "OVERSIZED\n" D_OK);
		free(exact);
		free(over);
		free(w);
	}
	/* a much larger body, holding near end-lines, is skipped to its true end-line */
	{
		const char *head = HDRS "Content-Type: text/plain\r\n\r\n";
		char *body = cat("", 5000, 'y', "");
		char *in2;
		size_t lh = strlen(head);

		memcpy(body + 1000, "\r\n-------d93kswow", 17);
		memcpy(body + 3000, "\r\n-------d93kswow$", 18);
		in2 = malloc(lh + 5000 + 2 + strlen(END) + strlen(OK200) + 1);
		sprintf(in2, "%s%s\r\n" END OK200, head, body);
		expect("oversized body skipped", in2, 300,
		       "REQ d93kswow SEND(0) " D_TO " mid=12339sdqwer hdrs=0,1,2,7 ct=text/plain "
		       "OVERSIZED\n" D_OK);
		free(in2);
		free(body);
	}
	/* headers alone past max_frame: fatal, answerable for requests only */
	in = cat(HDRS "X-Pad: ", 400, 'p', "\r\n" END);
	expect("request headers past max_frame", in, 300, "ERROR " R_LARGE " / 400 / d93kswow\n");
	free(in);
	in = cat("MSRP d93kswow 200 ", 400, 'p', "\r\n");
	expect("response past max_frame", in, 300, "ERROR " R_LARGE " / 0 / \n");
	free(in);
	in = cat("MSRP d93kswow 200 OK\r\n" TO FROM "X-Pad: ", 400, 'p', "\r\n" END);
	expect("response headers past max_frame", in, 300, "ERROR " R_LARGE " / 0 / d93kswow\n");
	free(in);
	/* max_frame below MSRP_MIN_FRAME is raised */
	expect("tiny max_frame raised", OK200, 10, D_OK);
}

/* ---- builders, byte for byte, and back through the parser ----------------------------------- */

static void check_built(const char *what, char *got, size_t len, const char *want, const char *dump)
{
	CHECK_STR(got, want, "%s: bytes", what);
	if (!got)
		return;
	CHECK_INT(len, strlen(want), "%s: length", what);
	{
		char *parsed = run_whole(got, len, MAXF);

		CHECK_STR(parsed, dump, "%s: parsed back", what);
		free(parsed);
	}
	free(got);
}

static void test_build(void)
{
	size_t len = 0;
	char *s;

	s = msrp_build_send("d93kswow", URI_BOB, URI_ALICE, "12339sdqwer", 1, 14, "text/plain",
			    "Hi, I'm Alice!", 14, '$', -1, -1, &len);
	check_built("RFC 4975 10.1 SEND", s, len,
		    HDRS "Byte-Range: 1-14/14\r\nContent-Type: text/plain\r\n\r\nHi, I'm Alice!\r\n" END,
		    "REQ d93kswow SEND(0) " D_TO " mid=12339sdqwer range=1-14/14 hdrs=0,1,2,5,7 "
		    "ct=text/plain body[14]=Hi, I'm Alice! $\n");
	s = msrp_build_response("d93kswow", 200, "OK", URI_ALICE, URI_BOB, &len);
	check_built("RFC 4975 10.1 200", s, len, OK200, D_OK);
	s = msrp_build_send("d93kswow", URI_BOB, URI_ALICE, "12339sdqwer", 1, 21, "text/html",
			    "<p>Hello <b>Bob</b></p>", 23, '$', 1, 0, &len);
	CHECK(s == NULL, "a total below the range is refused");
	s = msrp_build_send("d93kswow", URI_BOB, URI_ALICE, "12339sdqwer", 1, 23, "text/html",
			    "<p>Hello <b>Bob</b></p>", 23, '$', 1, 0, &len);
	check_built("RFC 4975 10.2 SEND with reports", s, len,
		    HDRS "Success-Report: yes\r\nFailure-Report: no\r\nByte-Range: 1-23/23\r\n"
		    "Content-Type: text/html\r\n\r\n<p>Hello <b>Bob</b></p>\r\n" END,
		    "REQ d93kswow SEND(0) " D_TO " mid=12339sdqwer range=1-23/23 sr=1 fr=0 "
		    "hdrs=0,1,2,3,4,5,7 ct=text/html body[23]=<p>Hello <b>Bob</b></p> $\n");
	s = msrp_build_report("dkei38sd", URI_ALICE, URI_BOB, "12339sdqwer", 1, 106, 106, 200, "OK",
			      &len);
	check_built("RFC 4975 10.2 REPORT", s, len,
		    "MSRP dkei38sd REPORT\r\nTo-Path: " URI_ALICE "\r\nFrom-Path: " URI_BOB "\r\n"
		    "Message-ID: 12339sdqwer\r\nByte-Range: 1-106/106\r\nStatus: 000 200 OK\r\n"
		    "-------dkei38sd$\r\n",
		    "REQ dkei38sd REPORT(1) to=" URI_ALICE " from=" URI_BOB " mid=12339sdqwer "
		    "range=1-106/106 status=000/200 [OK] hdrs=0,1,2,5,6 $\n");
	s = msrp_build_report("dkei38se", URI_ALICE, URI_BOB, "12339sdqwer", 1, MSRP_UNKNOWN,
			      MSRP_UNKNOWN, 413, NULL, &len);
	check_built("REPORT without comment, unknown range", s, len,
		    "MSRP dkei38se REPORT\r\nTo-Path: " URI_ALICE "\r\nFrom-Path: " URI_BOB "\r\n"
		    "Message-ID: 12339sdqwer\r\nByte-Range: 1-*/*\r\nStatus: 000 413\r\n"
		    "-------dkei38se$\r\n",
		    "REQ dkei38se REPORT(1) to=" URI_ALICE " from=" URI_BOB " mid=12339sdqwer "
		    "range=1-*/* status=000/413 hdrs=0,1,2,5,6 $\n");
	/* chunks: '+' with an unknown total, then '$', then an aborted message */
	s = msrp_build_send("7443cchw", URI_BOB, URI_ALICE, "4564dpWd", 1, MSRP_UNKNOWN,
			    "text/plain", "first part", 10, '+', -1, 2, &len);
	check_built("first chunk", s, len,
		    "MSRP 7443cchw SEND\r\n" TO FROM "Message-ID: 4564dpWd\r\nFailure-Report: partial\r\n"
		    "Byte-Range: 1-10/*\r\nContent-Type: text/plain\r\n\r\nfirst part\r\n"
		    "-------7443cchw+\r\n",
		    "REQ 7443cchw SEND(0) " D_TO " mid=4564dpWd range=1-10/* fr=2 hdrs=0,1,2,4,5,7 "
		    "ct=text/plain body[10]=first part +\n");
	s = msrp_build_send("7443cchx", URI_BOB, URI_ALICE, "4564dpWd", 11, 20, "text/plain",
			    "second one", 10, '$', -1, 2, &len);
	check_built("last chunk", s, len,
		    "MSRP 7443cchx SEND\r\n" TO FROM "Message-ID: 4564dpWd\r\nFailure-Report: partial\r\n"
		    "Byte-Range: 11-20/20\r\nContent-Type: text/plain\r\n\r\nsecond one\r\n"
		    "-------7443cchx$\r\n",
		    "REQ 7443cchx SEND(0) " D_TO " mid=4564dpWd range=11-20/20 fr=2 hdrs=0,1,2,4,5,7 "
		    "ct=text/plain body[10]=second one $\n");
	s = msrp_build_send("7443cchy", URI_BOB, URI_ALICE, "4564dpWd", 21, MSRP_UNKNOWN,
			    "text/plain", NULL, 0, '#', -1, -1, &len);
	check_built("aborted, empty chunk", s, len,
		    "MSRP 7443cchy SEND\r\n" TO FROM "Message-ID: 4564dpWd\r\nByte-Range: 21-20/*\r\n"
		    "Content-Type: text/plain\r\n\r\n\r\n-------7443cchy#\r\n",
		    "REQ 7443cchy SEND(0) " D_TO " mid=4564dpWd range=21-20/* hdrs=0,1,2,5,7 "
		    "ct=text/plain body[0]= #\n");
	s = msrp_build_send("d93kswow", URI_BOB, URI_ALICE, "12339sdqwer", 1, 0, NULL, NULL, 0, '$',
			    0, 0, &len);
	check_built("bodyless SEND", s, len,
		    HDRS "Success-Report: no\r\nFailure-Report: no\r\nByte-Range: 1-0/0\r\n" END,
		    "REQ d93kswow SEND(0) " D_TO " mid=12339sdqwer range=1-0/0 sr=0 fr=0 "
		    "hdrs=0,1,2,3,4,5 $\n");
	s = msrp_build_response("7443cchy", 413, "Please stop sending this message", URI_ALICE,
				URI_BOB, NULL);
	check_built("413", s, strlen(s ? s : ""),
		    "MSRP 7443cchy 413 Please stop sending this message\r\nTo-Path: " URI_ALICE
		    "\r\nFrom-Path: " URI_BOB "\r\n-------7443cchy$\r\n",
		    "RESP 7443cchy 413 [Please stop sending this message] to=" URI_ALICE
		    " from=" URI_BOB " hdrs=0,1 $\n");
	s = msrp_build_response("abcd", 501, NULL, URI_ALICE, URI_BOB, &len);
	check_built("501 without comment", s, len,
		    "MSRP abcd 501\r\nTo-Path: " URI_ALICE "\r\nFrom-Path: " URI_BOB "\r\n-------abcd$\r\n",
		    "RESP abcd 501 to=" URI_ALICE " from=" URI_BOB " hdrs=0,1 $\n");
	/* a body that holds other tids' end-lines and a bare one of its own is fine */
	s = msrp_build_send("d93kswow", URI_BOB, URI_ALICE, "12339sdqwer", 1, 35, "text/plain",
			    "-------d93kswox$\r\n-------d93kswow\r\n", 35, '$', -1, -1, &len);
	check_built("body with near end-lines", s, len,
		    HDRS "Byte-Range: 1-35/35\r\nContent-Type: text/plain\r\n\r\n"
		    "-------d93kswox$\r\n-------d93kswow\r\n\r\n" END,
		    "REQ d93kswow SEND(0) " D_TO " mid=12339sdqwer range=1-35/35 hdrs=0,1,2,5,7 "
		    "ct=text/plain body[35]=-------d93kswox$\\r\\n-------d93kswow\\r\\n $\n");
}

/* what the builders refuse */
static void test_build_refusals(void)
{
	static const struct {
		const char *what, *tid, *to, *from, *mid, *ct, *body;
		unsigned long long start, total;
		char flag;
		int sr, fr;
	} sends[] = {
		{ "tid of 3", "abc", URI_BOB, URI_ALICE, "12339sdqwer", "text/plain", "x", 1, 1, '$', -1, -1 },
		{ "tid with space", "abc d", URI_BOB, URI_ALICE, "12339sdqwer", "text/plain", "x", 1, 1, '$', -1, -1 },
		{ "NULL tid", NULL, URI_BOB, URI_ALICE, "12339sdqwer", "text/plain", "x", 1, 1, '$', -1, -1 },
		{ "bad To-Path", "abcd", "sip:x@y", URI_ALICE, "12339sdqwer", "text/plain", "x", 1, 1, '$', -1, -1 },
		{ "From-Path with CRLF", "abcd", URI_BOB, URI_ALICE "\r\nX: y", "12339sdqwer", "text/plain", "x", 1, 1, '$', -1, -1 },
		{ "bad Message-ID", "abcd", URI_BOB, URI_ALICE, "1 2", "text/plain", "x", 1, 1, '$', -1, -1 },
		{ "NULL Message-ID", "abcd", URI_BOB, URI_ALICE, NULL, "text/plain", "x", 1, 1, '$', -1, -1 },
		{ "Content-Type with CRLF", "abcd", URI_BOB, URI_ALICE, "12339sdqwer", "text/plain\r\nX: y", "x", 1, 1, '$', -1, -1 },
		{ "Content-Type without subtype", "abcd", URI_BOB, URI_ALICE, "12339sdqwer", "text", "x", 1, 1, '$', -1, -1 },
		{ "body without Content-Type", "abcd", URI_BOB, URI_ALICE, "12339sdqwer", NULL, "x", 1, 1, '$', -1, -1 },
		{ "bad flag", "abcd", URI_BOB, URI_ALICE, "12339sdqwer", "text/plain", "x", 1, 1, '!', -1, -1 },
		{ "Success-Report partial", "abcd", URI_BOB, URI_ALICE, "12339sdqwer", "text/plain", "x", 1, 1, '$', 2, -1 },
		{ "Failure-Report 3", "abcd", URI_BOB, URI_ALICE, "12339sdqwer", "text/plain", "x", 1, 1, '$', -1, 3 },
		{ "start 0", "abcd", URI_BOB, URI_ALICE, "12339sdqwer", "text/plain", "x", 0, 1, '$', -1, -1 },
		{ "range past 18 digits", "abcd", URI_BOB, URI_ALICE, "12339sdqwer", "text/plain", "xy", MSRP_RANGE_MAX, MSRP_UNKNOWN, '$', -1, -1 },
		{ "body holding the end-line", "abcd", URI_BOB, URI_ALICE, "12339sdqwer", "text/plain", "a\r\n-------abcd$\r\nb", 1, MSRP_UNKNOWN, '$', -1, -1 },
		{ "body holding the end-line without CRLF", "abcd", URI_BOB, URI_ALICE, "12339sdqwer", "text/plain", "a-------abcd+", 1, MSRP_UNKNOWN, '$', -1, -1 },
		{ "body ending in the end-line", "abcd", URI_BOB, URI_ALICE, "12339sdqwer", "text/plain", "-------abcd#", 1, MSRP_UNKNOWN, '$', -1, -1 },
	};

	for (size_t i = 0; i < NELEM(sends); i++) {
		size_t bl = sends[i].body ? strlen(sends[i].body) : 0;
		char *s = msrp_build_send(sends[i].tid, sends[i].to, sends[i].from, sends[i].mid,
					  sends[i].start, sends[i].total, sends[i].ct, sends[i].body,
					  bl, sends[i].flag, sends[i].sr, sends[i].fr, NULL);

		CHECK(s == NULL, "send refused: %s", sends[i].what);
		free(s);
	}
	{
		char *s = msrp_build_send("abcd", URI_BOB, URI_ALICE, "12339sdqwer", MSRP_RANGE_MAX,
					  MSRP_UNKNOWN, "text/plain", "x", 1, '$', -1, -1, NULL);

		CHECK(s != NULL, "the last byte of the largest range");
		free(s);
	}
	CHECK(msrp_build_response("abcd", 99, "OK", URI_ALICE, URI_BOB, NULL) == NULL, "status 99");
	CHECK(msrp_build_response("abcd", 1000, "OK", URI_ALICE, URI_BOB, NULL) == NULL,
	      "status 1000");
	CHECK(msrp_build_response("abcd", 200, "O\r\nK", URI_ALICE, URI_BOB, NULL) == NULL,
	      "comment with CRLF");
	CHECK(msrp_build_response("abcd", 200, "\xff", URI_ALICE, URI_BOB, NULL) == NULL,
	      "comment not UTF-8");
	CHECK(msrp_build_response("abcd", 200, "OK", NULL, URI_BOB, NULL) == NULL, "NULL To-Path");
	CHECK(msrp_build_report("abcd", URI_ALICE, URI_BOB, "12339sdqwer", 5, 3, 10, 200, NULL,
				NULL) == NULL, "report range end before start");
	CHECK(msrp_build_report("abcd", URI_ALICE, URI_BOB, "12339sdqwer", 1, 3, 2, 200, NULL,
				NULL) == NULL, "report total below end");
	CHECK(msrp_build_report("abcd", URI_ALICE, URI_BOB, "12", 1, 3, 3, 200, NULL, NULL) == NULL,
	      "report Message-ID");
	CHECK(msrp_build_report("abcd", URI_ALICE, URI_BOB, "12339sdqwer", 1, 3, 3, 20, NULL,
				NULL) == NULL, "report status 20");
}

/* build -> parse for bodies of every byte, every flag and report setting */
static void test_round_trips(void)
{
	char body[600];
	char tid[17], mid[17];

	for (size_t i = 0; i < sizeof(body); i++)
		body[i] = (char)(rng() & 0xff);
	for (int t = 0; t < 60; t++) {
		size_t bl = (size_t)(rng() % sizeof(body)), len;
		char flag = "$+#"[t % 3];
		int sr = t % 3 - 1, fr = t % 4 - 1;
		unsigned long long start = 1 + rng() % 1000, total = t % 2 ? MSRP_UNKNOWN :
			start + bl + rng() % 5;
		char *s, *got, *w;
		FILE *f;
		size_t wn;

		msrp_make_id(tid, sizeof(tid));
		msrp_make_id(mid, sizeof(mid));
		s = msrp_build_send(tid, URI_BOB, URI_ALICE, mid, start, total,
				    t % 5 ? "application/octet-stream" : NULL, body, t % 5 ? bl : 0,
				    flag, sr, fr, &len);
		if (!s) {
			/* only when the random body holds the end-line: practically never */
			CHECK(memmem(body, bl, tid, strlen(tid)) != NULL, "round trip %d built", t);
			continue;
		}
		got = run_whole(s, len, MAXF);
		w = NULL;
		f = open_memstream(&w, &wn);
		fprintf(f, "REQ %s SEND(0) " D_TO " mid=%s range=%llu-%llu/", tid, mid, start,
			start + (t % 5 ? bl : 0) - 1);
		put_num(f, total);
		if (sr >= 0)
			fprintf(f, " sr=%d", sr);
		if (fr >= 0)
			fprintf(f, " fr=%d", fr);
		fprintf(f, " hdrs=0,1,2%s%s,5%s", sr >= 0 ? ",3" : "", fr >= 0 ? ",4" : "",
			t % 5 ? ",7" : "");
		if (t % 5) {
			fprintf(f, " ct=application/octet-stream body[%zu]=", bl);
			put_bytes(f, body, bl);
		}
		fprintf(f, " %c\n", flag);
		fclose(f);
		CHECK_STR(got, w, "round trip %d", t);
		free(w);
		free(got);
		free(s);
	}
}

static void test_make_id(void)
{
	char ids[50][17], small[5], big[64];

	for (size_t i = 0; i < NELEM(ids); i++) {
		char line[64];

		msrp_make_id(ids[i], sizeof(ids[i]));
		CHECK_INT(strlen(ids[i]), 16, "id %zu length", i);
		CHECK_INT(strspn(ids[i], "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
				 "0123456789"), 16, "id %zu alphabet", i);
		for (size_t j = 0; j < i; j++)
			CHECK(strcmp(ids[i], ids[j]) != 0, "ids %zu and %zu differ", i, j);
		/* usable as a tid */
		snprintf(line, sizeof(line), "MSRP %s 200\r\n", ids[i]);
		{
			char *got = run_whole(line, strlen(line), MAXF);

			CHECK_STR(got, "", "id %zu as a tid", i);
			free(got);
		}
	}
	msrp_make_id(small, sizeof(small));
	CHECK_INT(strlen(small), 4, "shortest id");
	msrp_make_id(big, sizeof(big));
	CHECK_INT(strlen(big), 32, "longest id");
}

static void test_nicknames(void)
{
	char buf[MSRP_NICKNAME_MAX + 1], big[MSRP_NICKNAME_MAX + 8];
	size_t len = 0;
	char *s;

	for (size_t i = 0; i < NELEM(nick_rows); i++) {
		int n = msrp_nickname_parse(nick_rows[i].in, strlen(nick_rows[i].in), buf, sizeof(buf));

		if (nick_rows[i].want)
			CHECK(n >= 0 && strcmp(buf, nick_rows[i].want) == 0,
			      "nickname row %zu: %d \"%s\"", i, n, n >= 0 ? buf : "");
		else
			CHECK(n == -1, "nickname row %zu accepted", i);
	}
	memset(big, 'x', sizeof(big));
	big[0] = '"';
	big[MSRP_NICKNAME_MAX + 2] = '"';
	CHECK(msrp_nickname_parse(big, MSRP_NICKNAME_MAX + 3, buf, sizeof(buf)) == -1,
	      "a nickname over the limit is refused");
	CHECK(msrp_nickname_parse(big, MSRP_NICKNAME_MAX + 2 - 1, buf, sizeof(buf)) == -1,
	      "an unterminated value is refused");
	big[MSRP_NICKNAME_MAX + 1] = '"';
	CHECK(msrp_nickname_parse(big, MSRP_NICKNAME_MAX + 2, buf, sizeof(buf)) == MSRP_NICKNAME_MAX,
	      "a nickname at the limit is taken");
	/* the builder escapes, and the parser reads it back */
	s = msrp_build_nickname("4545", URI_BOB, URI_ALICE, "say \"hi\" \\o/", &len);
	check_built("NICKNAME with escapes", s, len,
		    "MSRP 4545 NICKNAME\r\nTo-Path: " URI_BOB "\r\nFrom-Path: " URI_ALICE "\r\n"
		    "Use-Nickname: \"say \\\"hi\\\" \\\\o/\"\r\n-------4545$\r\n",
		    "REQ 4545 NICKNAME(2) " D_TO " hdrs=0,1,11 nick=\"say \\\"hi\\\" \\\\o/\" $\n");
	CHECK(msrp_build_nickname("4545", URI_BOB, URI_ALICE, "", &len) == NULL, "empty refused");
	CHECK(msrp_build_nickname("4545", URI_BOB, URI_ALICE, "a\rb", &len) == NULL, "CR refused");
	CHECK(msrp_build_nickname("4545", URI_BOB, URI_ALICE, "\xff", &len) == NULL,
	      "bad UTF-8 refused");
}

/* ---- RFC 4976 relays: AUTH, and the headers of its 200 ------------------------------------- */

#define URI_RELAY "msrps://relay.example.com:2855;tcp"
#define URI_CLIENT "msrps://alice.example.com:9892/98cjs;tcp"

struct found {
	char use_path[128], expires[32], missing[8];
	int frames;
};

static void find_cb(void *arg, const struct msrp_frame *f)
{
	struct found *r = arg;
	const struct msrp_header_field *h;

	r->frames++;
	if ((h = msrp_frame_header(f, "use-path")))	/* any case */
		snprintf(r->use_path, sizeof(r->use_path), "%.*s", (int)h->value_len, h->value);
	if ((h = msrp_frame_header(f, "Expires")))
		snprintf(r->expires, sizeof(r->expires), "%.*s", (int)h->value_len, h->value);
	snprintf(r->missing, sizeof(r->missing), "%s",
		 msrp_frame_header(f, "Authorization") ? "found" : "none");
	/* the known headers are found by their names too */
	CHECK(msrp_frame_header(f, "To-Path") == &f->headers[0], "To-Path by name");
	CHECK(msrp_frame_header(f, "from-PATH") == &f->headers[1], "From-Path by name");
	CHECK(msrp_frame_header(f, "Use-Pat") == NULL, "no prefix match");
}

static void test_relay(void)
{
	static const struct msrp_parser_cbs cbs = { find_cb };
	static const char ok[] =
		"MSRP 49fi 200 OK\r\nTo-Path: " URI_CLIENT "\r\nFrom-Path: " URI_RELAY "\r\n"
		"Use-Path: msrps://relay.example.com:2855/jui787s2f;tcp\r\nExpires: 900\r\n"
		"-------49fi$\r\n";
	struct found r;
	struct msrp_parser *p;
	size_t len = 0;
	char *s;

	/* RFC 4976 7.1's AUTH, without and with Expires */
	s = msrp_build_auth("49fi", URI_RELAY, URI_CLIENT, 0, &len);
	check_built("AUTH", s, len,
		    "MSRP 49fi AUTH\r\nTo-Path: " URI_RELAY "\r\nFrom-Path: " URI_CLIENT "\r\n"
		    "-------49fi$\r\n",
		    "REQ 49fi AUTH(3) to=" URI_RELAY " from=" URI_CLIENT " hdrs=0,1 $\n");
	s = msrp_build_auth("49fj", URI_RELAY, URI_CLIENT, 3600, &len);
	check_built("AUTH with Expires", s, len,
		    "MSRP 49fj AUTH\r\nTo-Path: " URI_RELAY "\r\nFrom-Path: " URI_CLIENT "\r\n"
		    "Expires: 3600\r\n-------49fj$\r\n",
		    "REQ 49fj AUTH(3) to=" URI_RELAY " from=" URI_CLIENT " hdrs=0,1,Expires:3600 $\n");
	CHECK(msrp_build_auth("49f", URI_RELAY, URI_CLIENT, 0, &len) == NULL, "AUTH: bad tid");
	CHECK(msrp_build_auth("49fk", "relay.example.com", URI_CLIENT, 0, &len) == NULL,
	      "AUTH: To-Path not a URI");
	CHECK(msrp_build_auth("49fk", URI_RELAY, URI_CLIENT, 4294967296UL, &len) == NULL,
	      "AUTH: Expires out of range");

	/* its 200: Use-Path and Expires read back by name, split anywhere */
	for (size_t cut = 0; cut <= sizeof(ok) - 1; cut += 7) {
		memset(&r, 0, sizeof(r));
		p = msrp_parser_new(MAXF, &cbs, &r);
		CHECK_INT(msrp_parser_feed(p, ok, cut), 0, "200 to AUTH, first %zu bytes", cut);
		CHECK_INT(msrp_parser_feed(p, ok + cut, sizeof(ok) - 1 - cut), 0, "200 to AUTH, rest");
		msrp_parser_free(p);
		CHECK_INT(r.frames, 1, "one frame");
		CHECK_STR(r.use_path, "msrps://relay.example.com:2855/jui787s2f;tcp", "Use-Path");
		CHECK_STR(r.expires, "900", "Expires");
		CHECK_STR(r.missing, "none", "no Authorization");
	}
}

int main(void)
{
	test_header_table();
	test_uris();
	test_good();
	test_bad();
	test_sizes();
	test_build();
	test_build_refusals();
	test_round_trips();
	test_make_id();
	test_nicknames();
	test_relay();
	TEST_DONE();
}
