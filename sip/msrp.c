/* msrp.c - MSRP (RFC 4975) frames: the incremental parser, the builders, URIs and the header table (msrp.h).
 *
 * The parser keeps the frame being read in one buffer (at most max_frame bytes) and reads it line
 * by line until the empty line after Content-Type, then scans for CRLF "-------" tid flag CRLF.
 * Every decision depends only on the bytes seen, never on how they were split: a line is judged
 * once its LF is there (or once it is longer than any line may be), the size limit once the
 * buffer holds max_frame bytes of one unfinished frame.  Offsets are kept relative to the start
 * of the frame (fs) because the buffer moves when it grows and when finished frames are dropped.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>

#include "../gateway/gw.h"
#include "msrp.h"

#define DASHES "-------"
#define NDASH 7

/* ---- character classes (RFC 4975 section 9, RFC 3986) */

static int is_alpha(int c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

static int is_digit(int c)
{
	return c >= '0' && c <= '9';
}

static int is_alnum(int c)
{
	return is_alpha(c) || is_digit(c);
}

static int is_xdigit(int c)
{
	return is_digit(c) || ((c | 0x20) >= 'a' && (c | 0x20) <= 'f');
}

static int is_flag(int c)
{
	return c == MSRP_END || c == MSRP_MORE || c == MSRP_ABORT;
}

/* token = 1*(%x21 / %x23-27 / %x2A-2B / %x2D-2E / %x30-39 / %x41-5A / %x5E-7E) */
static int is_token(int c)
{
	return c == 0x21 || (c >= 0x23 && c <= 0x27) || c == 0x2a || c == 0x2b || c == 0x2d ||
	       c == 0x2e || (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) ||
	       (c >= 0x5e && c <= 0x7e);
}

/* RFC 3986 unreserved */
static int is_unreserved(int c)
{
	return is_alnum(c) || c == '-' || c == '.' || c == '_' || c == '~';
}

/* ident = ALPHANUM 3*31ident-char; ident-char = ALPHANUM / "." / "-" / "+" / "%" / "=" */
static int valid_ident(const char *s, size_t n)
{
	if (n < 4 || n > MSRP_TID_MAX || !is_alnum((unsigned char)s[0]))
		return 0;
	for (size_t i = 1; i < n; i++) {
		int c = (unsigned char)s[i];

		if (!is_alnum(c) && c != '.' && c != '-' && c != '+' && c != '%' && c != '=')
			return 0;
	}
	return 1;
}

/* utf8text = *(HTAB / %x20-7E / UTF8-NONASCII), UTF-8 as RFC 3629 has it. */
static int valid_text(const char *s, size_t n)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t i = 0;

	while (i < n) {
		unsigned c = u[i];
		size_t more;
		unsigned cp, min;

		if (c == '\t' || (c >= 0x20 && c <= 0x7e)) {
			i++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf) {
			more = 1, cp = c & 0x1f, min = 0x80;
		} else if (c >= 0xe0 && c <= 0xef) {
			more = 2, cp = c & 0x0f, min = 0x800;
		} else if (c >= 0xf0 && c <= 0xf4) {
			more = 3, cp = c & 0x07, min = 0x10000;
		} else {
			return 0;	/* controls, DEL, stray continuation bytes, c0 c1 f5..ff */
		}
		if (n - i <= more)
			return 0;
		for (size_t k = 1; k <= more; k++) {
			if ((u[i + k] & 0xc0) != 0x80)
				return 0;
			cp = cp << 6 | (u[i + k] & 0x3f);
		}
		if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return 0;
		i += more + 1;
	}
	return 1;
}

/* ---- URIs */

/* host = name or IPv4 (ALPHANUM . -, starting with ALPHANUM) / "[" IPv6 "]" */
static int valid_host(const char *s, size_t n)
{
	if (n == 0 || n > 255)
		return 0;
	if (s[0] == '[') {
		if (n < 4 || s[n - 1] != ']')
			return 0;
		for (size_t i = 1; i < n - 1; i++) {
			int c = (unsigned char)s[i];

			if (!is_xdigit(c) && c != ':' && c != '.')
				return 0;
		}
		return 1;
	}
	if (!is_alnum((unsigned char)s[0]))
		return 0;
	for (size_t i = 0; i < n; i++) {
		int c = (unsigned char)s[i];

		if (!is_alnum(c) && c != '-' && c != '.')
			return 0;
	}
	return 1;
}

static int valid_userinfo(const char *s, size_t n)
{
	if (n == 0)
		return 0;
	for (size_t i = 0; i < n; i++) {
		int c = (unsigned char)s[i];

		if (c == '%') {
			if (n - i < 3 || !is_xdigit((unsigned char)s[i + 1]) ||
			    !is_xdigit((unsigned char)s[i + 2]))
				return 0;
			i += 2;
		} else if (!is_unreserved(c) && !strchr("&=+$,:", c)) {
			return 0;
		}
	}
	return 1;
}

int msrp_uri_parse(const char *s, size_t len, struct msrp_uri *out)
{
	size_t i, a, e;

	memset(out, 0, sizeof(*out));
	if (len >= 7 && strncasecmp(s, "msrp://", 7) == 0) {
		i = 7;
	} else if (len >= 8 && strncasecmp(s, "msrps://", 8) == 0) {
		out->secure = 1;
		i = 8;
	} else {
		return -1;
	}
	/* authority: up to the session-id or the transport */
	for (e = i; e < len && s[e] != '/' && s[e] != ';'; e++)
		;
	a = i;
	for (size_t k = i; k < e; k++)
		if (s[k] == '@')
			a = k + 1;
	if (a > i && !valid_userinfo(s + i, a - 1 - i))
		return -1;
	/* host [":" port]; an IPv6 reference holds colons of its own */
	{
		size_t h = a, colon = e;

		if (h < e && s[h] == '[') {
			const char *rb = memchr(s + h, ']', e - h);

			if (!rb)
				return -1;
			colon = (size_t)(rb - s) + 1;
			if (colon < e && s[colon] != ':')
				return -1;
		} else {
			const char *c = memchr(s + h, ':', e - h);

			if (c)
				colon = (size_t)(c - s);
		}
		if (!valid_host(s + h, colon - h))
			return -1;
		memcpy(out->host, s + h, colon - h);
		out->host[colon - h] = '\0';
		if (colon < e) {
			unsigned long port = 0;

			if (e - colon - 1 < 1 || e - colon - 1 > 5)
				return -1;
			for (size_t k = colon + 1; k < e; k++) {
				if (!is_digit((unsigned char)s[k]))
					return -1;
				port = port * 10 + (unsigned long)(s[k] - '0');
			}
			if (port < 1 || port > 65535)
				return -1;
			out->port = (unsigned)port;
		}
	}
	i = e;
	/* ["/" session-id], session-id = 1*( unreserved / "+" / "=" / "/" ) */
	if (i < len && s[i] == '/') {
		for (e = ++i; e < len && s[e] != ';'; e++) {
			int c = (unsigned char)s[e];

			if (!is_unreserved(c) && c != '+' && c != '=' && c != '/')
				return -1;
		}
		if (e == i || e - i >= sizeof(out->session))
			return -1;
		memcpy(out->session, s + i, e - i);
		out->session[e - i] = '\0';
		i = e;
	}
	/* ";" transport, transport = 1*ALPHANUM */
	if (i >= len || s[i] != ';')
		return -1;
	for (e = ++i; e < len && is_alnum((unsigned char)s[e]); e++)
		;
	if (e == i || e - i >= sizeof(out->transport) || (e < len && s[e] != ';'))
		return -1;
	memcpy(out->transport, s + i, e - i);
	out->transport[e - i] = '\0';
	i = e;
	/* *( ";" token ["=" token] ) */
	while (i < len) {
		size_t t;

		if (s[i++] != ';')
			return -1;
		for (t = i; i < len && is_token((unsigned char)s[i]) && s[i] != '='; i++)
			;
		if (i == t)
			return -1;
		if (i < len && s[i] == '=') {
			for (t = ++i; i < len && is_token((unsigned char)s[i]) && s[i] != '='; i++)
				;
			if (i == t)
				return -1;
		}
		if (i < len && s[i] != ';')
			return -1;
	}
	return 0;
}

int msrp_uri_equal(const struct msrp_uri *a, const struct msrp_uri *b)
{
	return a->secure == b->secure && strcasecmp(a->host, b->host) == 0 && a->port == b->port &&
	       strcmp(a->session, b->session) == 0 && strcasecmp(a->transport, b->transport) == 0;
}

/* 1 when path[0..len) is URIs separated by single spaces */
static int valid_path(const char *path, size_t len)
{
	struct msrp_uri u;
	size_t i = 0;

	if (len == 0)
		return 0;
	while (i <= len) {
		const char *sp = memchr(path + i, ' ', len - i);
		size_t e = sp ? (size_t)(sp - path) : len;

		if (msrp_uri_parse(path + i, e - i, &u) != 0)
			return 0;
		i = e + 1;
	}
	return 1;
}

size_t msrp_path_first(const char *path, size_t len)
{
	const char *sp;

	if (!valid_path(path, len))
		return 0;
	sp = memchr(path, ' ', len);
	return sp ? (size_t)(sp - path) : len;
}

/* ---- header values */

/* value parsers fill the scalar fields of the frame being read; -1 refuses the value */
static int v_path(struct msrp_frame *f, const char *v, size_t n)
{
	(void)f;
	return valid_path(v, n) ? 0 : -1;
}

static int v_ident(struct msrp_frame *f, const char *v, size_t n)
{
	(void)f;
	return valid_ident(v, n) ? 0 : -1;
}

/* a case-insensitive word from a list; its index or -1 */
static int word(const char *v, size_t n, const char *const *words, size_t nwords)
{
	for (size_t i = 0; i < nwords; i++)
		if (strlen(words[i]) == n && strncasecmp(v, words[i], n) == 0)
			return (int)i;
	return -1;
}

static const char *const report_words[] = { "no", "yes", "partial" };

static int v_success(struct msrp_frame *f, const char *v, size_t n)
{
	f->success_report = word(v, n, report_words, 2);
	return f->success_report;
}

static int v_failure(struct msrp_frame *f, const char *v, size_t n)
{
	f->failure_report = word(v, n, report_words, 3);
	return f->failure_report;
}

/* 1*18DIGIT, or "*" (MSRP_UNKNOWN) when star; returns the bytes used, 0 on error */
static size_t range_num(const char *v, size_t n, int star, unsigned long long *out)
{
	size_t i = 0;

	if (star && n > 0 && v[0] == '*') {
		*out = MSRP_UNKNOWN;
		return 1;
	}
	*out = 0;
	while (i < n && is_digit((unsigned char)v[i])) {
		if (i == 18)
			return 0;
		*out = *out * 10 + (unsigned long long)(v[i] - '0');
		i++;
	}
	return i;
}

/* start >= 1, end '*' or >= start - 1, total '*' or covering the range */
static int range_ok(unsigned long long s, unsigned long long e, unsigned long long t)
{
	if (s < 1 || s > MSRP_RANGE_MAX)
		return 0;
	if (e != MSRP_UNKNOWN && (e > MSRP_RANGE_MAX || e < s - 1))
		return 0;
	if (t != MSRP_UNKNOWN && (t > MSRP_RANGE_MAX || t < (e != MSRP_UNKNOWN ? e : s - 1)))
		return 0;
	return 1;
}

/* range-start "-" range-end "/" total */
static int v_range(struct msrp_frame *f, const char *v, size_t n)
{
	size_t i, k;

	if (!(i = range_num(v, n, 0, &f->range_start)) || i >= n || v[i++] != '-')
		return -1;
	if (!(k = range_num(v + i, n - i, 1, &f->range_end)) || (i += k) >= n || v[i++] != '/')
		return -1;
	if (!(k = range_num(v + i, n - i, 1, &f->range_total)) || i + k != n)
		return -1;
	if (!range_ok(f->range_start, f->range_end, f->range_total))
		return -1;
	f->has_byte_range = 1;
	return 0;
}

static int three_digits(const char *v)
{
	if (!is_digit((unsigned char)v[0]) || !is_digit((unsigned char)v[1]) ||
	    !is_digit((unsigned char)v[2]))
		return -1;
	return (v[0] - '0') * 100 + (v[1] - '0') * 10 + (v[2] - '0');
}

/* namespace SP status-code [SP comment]; the comment's place is found again at dispatch */
static int v_status(struct msrp_frame *f, const char *v, size_t n)
{
	if (n < 7 || v[3] != ' ' || (n > 7 && v[7] != ' '))
		return -1;
	f->status_ns = three_digits(v);
	f->status_code = three_digits(v + 4);
	if (f->status_ns < 0 || f->status_code < 100)
		return -1;
	f->has_status = 1;
	return 0;
}

/* type "/" subtype, then nothing or parameters starting with ";" (spaces before it tolerated) */
static int valid_ctype(const char *v, size_t n)
{
	size_t i = 0, t;

	for (t = i; i < n && is_token((unsigned char)v[i]) && v[i] != '/'; i++)
		;
	if (i == t || i >= n || v[i++] != '/')
		return 0;
	for (t = i; i < n && is_token((unsigned char)v[i]); i++)
		;
	if (i == t)
		return 0;
	while (i < n && (v[i] == ' ' || v[i] == '\t'))
		i++;
	return i == n || v[i] == ';';
}

static int v_ctype(struct msrp_frame *f, const char *v, size_t n)
{
	(void)f;
	return valid_ctype(v, n) ? 0 : -1;
}

/* ---- errors: one table, so every refusal has one reason and one answerability */

enum perr {
	E_NONE,
	E_START,
	E_TID,
	E_LONG,
	E_CRLF,
	E_CHARS,
	E_HEADER,
	E_TO_FIRST,
	E_FROM_SECOND,
	E_DUP,
	E_TOO_MANY,
	E_PATH,
	E_MSGID,
	E_REPORT,
	E_RANGE,
	E_STATUS,
	E_CTYPE,
	E_CTYPE_LAST,
	E_NO_CTYPE,
	E_RESP_BODY,
	E_MIME,
	E_REQUIRED,
	E_ENDLINE,
	E_ENDLINE_CRLF,
	E_LARGE,
};

static const char *const perr_reason[] = {
	[E_NONE] = NULL,
	[E_START] = "bad start line (not \"MSRP <tid> <method>\" or \"MSRP <tid> <status>\")",
	[E_TID] = "bad transaction id (not 4..32 ident characters)",
	[E_LONG] = "line too long",
	[E_CRLF] = "line not ended by CRLF",
	[E_CHARS] = "control character or invalid UTF-8 in a header",
	[E_HEADER] = "malformed header line (not \"name: value\")",
	[E_TO_FIRST] = "To-Path is not the first header",
	[E_FROM_SECOND] = "From-Path is not the second header",
	[E_DUP] = "header repeated",
	[E_TOO_MANY] = "too many headers",
	[E_PATH] = "bad To-Path or From-Path",
	[E_MSGID] = "bad Message-ID",
	[E_REPORT] = "bad Success-Report or Failure-Report",
	[E_RANGE] = "bad Byte-Range",
	[E_STATUS] = "bad Status",
	[E_CTYPE] = "bad Content-Type",
	[E_CTYPE_LAST] = "header after Content-Type",
	[E_NO_CTYPE] = "body without Content-Type",
	[E_RESP_BODY] = "body in a response",
	[E_MIME] = "Content-* header without Content-Type",
	[E_REQUIRED] = "header required by the method missing",
	[E_ENDLINE] = "end-line does not match the transaction",
	[E_ENDLINE_CRLF] = "end-line not preceded by CRLF",
	[E_LARGE] = "frame too large",
};

/* ---- the header table: name, value parser, its error, and where the frame keeps the value */

#define NO_FIELD ((size_t)-1)
#define MIME 1u		/* an Other-Mime-header: needs a Content-Type */
static const struct header_rule {
	const char *name;
	int (*value)(struct msrp_frame *f, const char *v, size_t n);	/* NULL: any utf8text */
	enum perr bad;
	size_t ptr, len;	/* offsetof the frame's pointer and length fields, or NO_FIELD */
	unsigned flags;
} header_rules[] = {
#define FIELD(p, l) offsetof(struct msrp_frame, p), offsetof(struct msrp_frame, l)
	[MSRP_H_TO_PATH] = { "To-Path", v_path, E_PATH, FIELD(to_path, to_path_len), 0 },
	[MSRP_H_FROM_PATH] = { "From-Path", v_path, E_PATH, FIELD(from_path, from_path_len), 0 },
	[MSRP_H_MESSAGE_ID] = { "Message-ID", v_ident, E_MSGID,
				FIELD(message_id, message_id_len), 0 },
	[MSRP_H_SUCCESS_REPORT] = { "Success-Report", v_success, E_REPORT, NO_FIELD, NO_FIELD, 0 },
	[MSRP_H_FAILURE_REPORT] = { "Failure-Report", v_failure, E_REPORT, NO_FIELD, NO_FIELD, 0 },
	[MSRP_H_BYTE_RANGE] = { "Byte-Range", v_range, E_RANGE, NO_FIELD, NO_FIELD, 0 },
	[MSRP_H_STATUS] = { "Status", v_status, E_STATUS, NO_FIELD, NO_FIELD, 0 },
	[MSRP_H_CONTENT_TYPE] = { "Content-Type", v_ctype, E_CTYPE,
				  FIELD(content_type, content_type_len), 0 },
	[MSRP_H_CONTENT_ID] = { "Content-ID", NULL, E_NONE, NO_FIELD, NO_FIELD, MIME },
	[MSRP_H_CONTENT_DESCRIPTION] = { "Content-Description", NULL, E_NONE, NO_FIELD, NO_FIELD,
					 MIME },
	[MSRP_H_CONTENT_DISPOSITION] = { "Content-Disposition", NULL, E_NONE, NO_FIELD, NO_FIELD,
					 MIME },
	[MSRP_H_USE_NICKNAME] = { "Use-Nickname", NULL, E_NONE,
				  FIELD(use_nickname, use_nickname_len), 0 },
#undef FIELD
};
#define NRULES (sizeof(header_rules) / sizeof(header_rules[0]))

/* methods: name, and the headers a request of that method must carry (RFC 4975 7.1.1, 7.1.2) */
#define BIT(h) (1u << (h))
static const struct {
	const char *name;
	enum msrp_method method;
	unsigned required;
} method_rules[] = {
	{ "SEND", MSRP_SEND, BIT(MSRP_H_MESSAGE_ID) },
	{ "REPORT", MSRP_REPORT, BIT(MSRP_H_MESSAGE_ID) | BIT(MSRP_H_STATUS) },
	{ "NICKNAME", MSRP_NICKNAME, BIT(MSRP_H_USE_NICKNAME) },
};

const char *msrp_header_name(enum msrp_header h)
{
	return (unsigned)h < NRULES ? header_rules[h].name : NULL;
}

enum msrp_header msrp_header_lookup(const char *name, size_t len)
{
	for (size_t i = 0; i < NRULES; i++)
		if (strlen(header_rules[i].name) == len &&
		    strncasecmp(header_rules[i].name, name, len) == 0)
			return (enum msrp_header)i;
	return MSRP_H_EXTENSION;
}

/* ---- the parser */

enum pstate {
	PS_START,	/* waiting for the start line */
	PS_HEADERS,	/* header lines, or the end-line of a bodyless frame */
	PS_BLANK,	/* after Content-Type: the empty line */
	PS_BODY,	/* scanning for CRLF end-line */
	PS_SKIP,	/* dropping the rest of an oversized request up to its end-line */
	PS_FAILED,
};

struct hoff {
	enum msrp_header id;
	size_t name, name_len, value, value_len;	/* relative to the frame start */
};

struct msrp_parser {
	size_t max_frame;
	struct msrp_parser_cbs cbs;
	void *arg;
	int in_callback;

	char *buf;
	size_t cap, used;
	size_t fs;		/* the frame being read starts at buf + fs; offsets below from there */
	size_t pos;		/* the next line starts here */
	size_t lscan;		/* the LF search resumes here */
	size_t body;		/* the body starts here (PS_BODY) */
	size_t scan;		/* no end-line starts before this */
	enum pstate state;

	struct msrp_frame f;	/* scalars of the frame being read */
	size_t tid_len;
	size_t method_off, comment_off;
	struct hoff h[MSRP_MAX_HEADERS];
	size_t nh;
	unsigned seen;		/* BIT(id) of the known headers seen */
	struct msrp_header_field fields[MSRP_MAX_HEADERS];	/* handed to the callback */

	enum perr err;
	int err_status;
	char err_tid[MSRP_TID_MAX + 1];
};

static void frame_reset(struct msrp_parser *p)
{
	memset(&p->f, 0, sizeof(p->f));
	p->f.success_report = -1;
	p->f.failure_report = -1;
	p->tid_len = 0;
	p->nh = 0;
	p->seen = 0;
	p->pos = p->lscan = p->body = p->scan = 0;
	p->state = PS_START;
}

struct msrp_parser *msrp_parser_new(size_t max_frame, const struct msrp_parser_cbs *cbs, void *arg)
{
	struct msrp_parser *p = gw_xcalloc(1, sizeof(*p));

	p->max_frame = max_frame < MSRP_MIN_FRAME ? MSRP_MIN_FRAME : max_frame;
	p->cbs = *cbs;
	p->arg = arg;
	frame_reset(p);
	return p;
}

void msrp_parser_free(struct msrp_parser *p)
{
	if (!p)
		return;
	free(p->buf);
	free(p);
}

static int fail(struct msrp_parser *p, enum perr e)
{
	/* a request whose start line was read can be answered before the connection closes */
	p->err_status = p->state != PS_START && p->f.is_request ? 400 : 0;
	memcpy(p->err_tid, p->f.tid, sizeof(p->err_tid));
	p->err = e;
	p->state = PS_FAILED;
	return -1;
}

const char *msrp_parser_error(const struct msrp_parser *p, int *status, char tid[MSRP_TID_MAX + 1])
{
	int failed = p->state == PS_FAILED;

	if (status)
		*status = failed ? p->err_status : 0;
	if (tid)
		snprintf(tid, MSRP_TID_MAX + 1, "%s", failed ? p->err_tid : "");
	return failed ? perr_reason[p->err] : NULL;
}

/* 1: the next line is [*ls, *ls + *ll), CRLF excluded, checked for length and characters;
 * 0: not complete yet; -1: error */
static int next_line(struct msrp_parser *p, size_t *ls, size_t *ll)
{
	const char *b = p->buf + p->fs;
	size_t n = p->used - p->fs, e, len;
	const char *lf = memchr(b + p->lscan, '\n', n - p->lscan);

	if (!lf) {
		p->lscan = n;
		return n - p->pos > MSRP_MAX_LINE + 1 ? fail(p, E_LONG) : 0;
	}
	e = (size_t)(lf - b);
	len = e - p->pos;
	if (len > MSRP_MAX_LINE + 1)
		return fail(p, E_LONG);
	if (len == 0 || b[e - 1] != '\r')
		return fail(p, E_CRLF);
	*ls = p->pos;
	*ll = len - 1;
	p->pos = p->lscan = e + 1;
	if (!valid_text(b + *ls, *ll))
		return fail(p, E_CHARS);
	return 1;
}

static int parse_start(struct msrp_parser *p, const char *l, size_t n)
{
	const char *sp, *r;
	size_t tl, rn;

	if (n < 5 || memcmp(l, "MSRP ", 5) != 0 || !(sp = memchr(l + 5, ' ', n - 5)))
		return fail(p, E_START);
	tl = (size_t)(sp - (l + 5));
	if (!valid_ident(l + 5, tl))
		return fail(p, E_TID);
	memcpy(p->f.tid, l + 5, tl);
	p->f.tid[tl] = '\0';
	p->tid_len = tl;
	r = sp + 1;
	rn = n - (size_t)(r - l);
	if (rn > 0 && is_digit((unsigned char)r[0])) {
		/* status-code [SP comment] */
		if (rn < 3 || (p->f.status = three_digits(r)) < 100 || (rn > 3 && r[3] != ' '))
			return fail(p, E_START);
		if (rn > 3) {
			p->comment_off = (size_t)(r + 4 - (p->buf + p->fs));
			p->f.comment_len = rn - 4;
			p->f.comment = r + 4;	/* marks "present"; the pointer is set at dispatch */
		}
		p->f.is_request = 0;
	} else {
		/* method = 1*UPALPHA */
		if (rn == 0)
			return fail(p, E_START);
		for (size_t i = 0; i < rn; i++)
			if (r[i] < 'A' || r[i] > 'Z')
				return fail(p, E_START);
		p->f.method = MSRP_OTHER;
		for (size_t i = 0; i < sizeof(method_rules) / sizeof(method_rules[0]); i++)
			if (strlen(method_rules[i].name) == rn && memcmp(method_rules[i].name, r, rn) == 0)
				p->f.method = method_rules[i].method;
		p->method_off = (size_t)(r - (p->buf + p->fs));
		p->f.method_len = rn;
		p->f.is_request = 1;
	}
	p->state = PS_HEADERS;
	return 0;
}

static int parse_header(struct msrp_parser *p, size_t ls, const char *l, size_t n)
{
	const char *colon = memchr(l, ':', n);
	size_t nl, vo;
	enum msrp_header id;

	if (!colon || colon == l || !is_alpha((unsigned char)l[0]))
		return fail(p, E_HEADER);
	nl = (size_t)(colon - l);
	for (size_t i = 1; i < nl; i++)
		if (!is_token((unsigned char)l[i]))
			return fail(p, E_HEADER);
	if (nl + 1 >= n || colon[1] != ' ')
		return fail(p, E_HEADER);
	vo = nl + 2;
	id = msrp_header_lookup(l, nl);
	if (p->nh == MSRP_MAX_HEADERS)
		return fail(p, E_TOO_MANY);
	if (p->nh == 0 && id != MSRP_H_TO_PATH)
		return fail(p, E_TO_FIRST);
	if (p->nh == 1 && id != MSRP_H_FROM_PATH)
		return fail(p, E_FROM_SECOND);
	if (id != MSRP_H_EXTENSION) {
		const struct header_rule *r = &header_rules[id];

		if (p->seen & BIT(id))
			return fail(p, E_DUP);
		if (r->value && r->value(&p->f, l + vo, n - vo) < 0)
			return fail(p, r->bad);
		p->seen |= BIT(id);
	}
	p->h[p->nh].id = id;
	p->h[p->nh].name = ls;
	p->h[p->nh].name_len = nl;
	p->h[p->nh].value = ls + vo;
	p->h[p->nh].value_len = n - vo;
	p->nh++;
	if (id == MSRP_H_CONTENT_TYPE) {
		if (!p->f.is_request)
			return fail(p, E_RESP_BODY);
		p->state = PS_BLANK;
	}
	return 0;
}

/* Fills the public frame from the offsets and NUL-terminates its strings in place (each is
 * followed by the CR of its line, or of the CRLF before the end-line). */
static void deliver(struct msrp_parser *p, size_t body, size_t body_len, int has_body, char flag,
		    int oversized)
{
	char *b = p->buf + p->fs;
	struct msrp_frame f = p->f;

	if (f.is_request) {
		f.method_name = b + p->method_off;
		b[p->method_off + f.method_len] = '\0';
	} else if (f.comment) {
		f.comment = b + p->comment_off;
		b[p->comment_off + f.comment_len] = '\0';
	}
	for (size_t i = 0; i < p->nh; i++) {
		const struct hoff *h = &p->h[i];
		struct msrp_header_field *hf = &p->fields[i];

		hf->id = h->id;
		hf->name = b + h->name;
		hf->name_len = h->name_len;
		hf->value = b + h->value;
		hf->value_len = h->value_len;
		b[h->value + h->value_len] = '\0';
		if (h->id < NRULES && header_rules[h->id].ptr != NO_FIELD) {
			memcpy((char *)&f + header_rules[h->id].ptr, &hf->value, sizeof(hf->value));
			memcpy((char *)&f + header_rules[h->id].len, &hf->value_len, sizeof(size_t));
		}
		if (h->id == MSRP_H_STATUS && h->value_len >= 8) {
			f.status_comment = hf->value + 8;
			f.status_comment_len = h->value_len - 8;
		}
	}
	if (has_body) {
		f.body = b + body;
		f.body_len = body_len;
		b[body + body_len] = '\0';
	}
	f.flag = flag;
	f.oversized = oversized;
	f.headers = p->fields;
	f.nheaders = p->nh;
	p->in_callback = 1;
	p->cbs.frame(p->arg, &f);
	p->in_callback = 0;
}

/* the rules checked once the whole header section is known */
static int headers_done(struct msrp_parser *p)
{
	if (p->nh < 2)
		return fail(p, p->nh == 0 ? E_TO_FIRST : E_FROM_SECOND);
	if (!(p->seen & BIT(MSRP_H_CONTENT_TYPE))) {
		for (size_t i = 0; i < p->nh; i++)
			if (p->h[i].id < NRULES && (header_rules[p->h[i].id].flags & MIME))
				return fail(p, E_MIME);
	}
	if (p->f.is_request)
		for (size_t i = 0; i < sizeof(method_rules) / sizeof(method_rules[0]); i++)
			if (method_rules[i].method == p->f.method &&
			    (p->seen & method_rules[i].required) != method_rules[i].required)
				return fail(p, E_REQUIRED);
	return 0;
}

/* the frame ended at (relative) offset end: the next one starts there */
static void frame_next(struct msrp_parser *p, size_t end)
{
	p->fs += end;
	frame_reset(p);
}

/* 1: CRLF "-------" tid flag CRLF starts at *at; 0: none starts before *at */
static int find_end(const struct msrp_parser *p, size_t from, size_t *at)
{
	const char *b = p->buf + p->fs;
	size_t n = p->used - p->fs, tl = p->tid_len, k = 2 + NDASH + tl + 3, i = from;

	while (i + k <= n) {
		const char *c = memchr(b + i, '\r', n - k + 1 - i);

		if (!c) {
			i = n - k + 1;
			break;
		}
		i = (size_t)(c - b);
		if (b[i + 1] == '\n' && memcmp(b + i + 2, DASHES, NDASH) == 0 &&
		    memcmp(b + i + 2 + NDASH, p->f.tid, tl) == 0 && is_flag(b[i + 2 + NDASH + tl]) &&
		    b[i + 3 + NDASH + tl] == '\r' && b[i + 4 + NDASH + tl] == '\n') {
			*at = i;
			return 1;
		}
		i++;
	}
	*at = i;
	return 0;
}

/* Reads as many frames as the buffer holds.  0 when it needs more bytes, -1 on error. */
static int parse(struct msrp_parser *p)
{
	for (;;) {
		const char *b = p->buf + p->fs;
		size_t n = p->used - p->fs, ls, ll, at;
		int r;

		switch (p->state) {
		case PS_START:
		case PS_HEADERS:
		case PS_BLANK:
			if ((r = next_line(p, &ls, &ll)) <= 0)
				return r;
			if (p->state == PS_START) {
				if (parse_start(p, b + ls, ll) < 0)
					return -1;
			} else if (p->state == PS_BLANK) {
				if (ll != 0)
					return fail(p, E_CTYPE_LAST);
				p->body = p->scan = p->pos;
				p->state = PS_BODY;
			} else if (ll >= NDASH && memcmp(b + ls, DASHES, NDASH) == 0) {
				if (ll != NDASH + p->tid_len + 1 ||
				    memcmp(b + ls + NDASH, p->f.tid, p->tid_len) != 0 ||
				    !is_flag(b[ls + ll - 1]))
					return fail(p, E_ENDLINE);
				if (headers_done(p) < 0)
					return -1;
				deliver(p, 0, 0, 0, b[ls + ll - 1], 0);
				frame_next(p, p->pos);
			} else if (ll == 0) {
				return fail(p, E_NO_CTYPE);
			} else if (parse_header(p, ls, b + ls, ll) < 0) {
				return -1;
			}
			if (p->state == PS_BODY && headers_done(p) < 0)
				return -1;
			break;
		case PS_BODY: {
			size_t el = NDASH + p->tid_len + 3;

			/* "data CRLF end-line": an end-line right after the empty line lacks its CRLF */
			if (n - p->body >= el && memcmp(b + p->body, DASHES, NDASH) == 0 &&
			    memcmp(b + p->body + NDASH, p->f.tid, p->tid_len) == 0 &&
			    is_flag(b[p->body + el - 3]) && b[p->body + el - 2] == '\r' &&
			    b[p->body + el - 1] == '\n')
				return fail(p, E_ENDLINE_CRLF);
			if (!find_end(p, p->scan, &at)) {
				p->scan = at;
				return 0;
			}
			deliver(p, p->body, at - p->body, 1, b[at + 2 + NDASH + p->tid_len], 0);
			frame_next(p, at + 2 + el);
			break;
		}
		case PS_SKIP:
			if (find_end(p, p->scan, &at)) {
				frame_next(p, at + 2 + NDASH + p->tid_len + 3);
				break;
			}
			/* keep only what may still begin the end-line */
			p->fs += at;
			p->scan = 0;
			return 0;
		case PS_FAILED:
			return -1;
		}
	}
}

/* The current frame holds max_frame bytes and is not complete. */
static int overflow(struct msrp_parser *p)
{
	if (p->state != PS_BODY || !p->f.is_request)
		return fail(p, E_LARGE);
	deliver(p, 0, 0, 0, 0, 1);
	/* the body is dropped; what may begin the end-line stays */
	p->fs += p->scan;
	p->pos = p->lscan = p->body = p->scan = 0;
	p->nh = 0;
	p->seen = 0;
	p->state = PS_SKIP;
	return 0;
}

int msrp_parser_feed(struct msrp_parser *p, const char *buf, size_t len)
{
	if (p->in_callback)
		gw_fatal("msrp_parser_feed: called from the parser's own callback");
	if (p->state == PS_FAILED)
		return -1;
	while (len > 0) {
		size_t n, room;

		if (p->fs > 0) {
			memmove(p->buf, p->buf + p->fs, p->used - p->fs);
			p->used -= p->fs;
			p->fs = 0;
		}
		room = p->max_frame - p->used;
		n = len < room ? len : room;
		if (p->used + n > p->cap) {
			size_t cap = p->cap ? p->cap * 2 : 4096;

			if (cap < p->used + n)
				cap = p->used + n;
			if (cap > p->max_frame)
				cap = p->max_frame;
			p->buf = gw_xrealloc(p->buf, cap);
			p->cap = cap;
		}
		memcpy(p->buf + p->used, buf, n);
		p->used += n;
		buf += n;
		len -= n;
		if (parse(p) < 0)
			return -1;
		if (p->used - p->fs == p->max_frame && overflow(p) < 0)
			return -1;
	}
	return 0;
}

/* ---- builders */

struct out {
	char *s;
	size_t n, cap;
};

static void out_add(struct out *o, const char *s, size_t n)
{
	if (o->n + n + 1 > o->cap) {
		o->cap = (o->n + n + 1) * 2;
		o->s = gw_xrealloc(o->s, o->cap);
	}
	memcpy(o->s + o->n, s, n);
	o->n += n;
	o->s[o->n] = '\0';
}

static void out_str(struct out *o, const char *s)
{
	out_add(o, s, strlen(s));
}

static void out_fmt(struct out *o, const char *fmt, ...) GW_PRINTF(2, 3);
static void out_fmt(struct out *o, const char *fmt, ...)
{
	char small[64];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(small, sizeof(small), fmt, ap);
	va_end(ap);
	if (n < 0)
		gw_fatal("out_fmt: vsnprintf failed");
	if ((size_t)n < sizeof(small)) {
		out_add(o, small, (size_t)n);
		return;
	}
	{
		char *big = gw_xmalloc((size_t)n + 1);

		va_start(ap, fmt);
		vsnprintf(big, (size_t)n + 1, fmt, ap);
		va_end(ap);
		out_add(o, big, (size_t)n);
		free(big);
	}
}

/* "MSRP tid <what>" CRLF To-Path CRLF From-Path CRLF */
static void out_head(struct out *o, const char *tid, const char *what, const char *to,
		     const char *from)
{
	out_fmt(o, "MSRP %s %s\r\nTo-Path: %s\r\nFrom-Path: %s\r\n", tid, what, to, from);
}

static void out_range_part(struct out *o, unsigned long long v)
{
	if (v == MSRP_UNKNOWN)
		out_str(o, "*");
	else
		out_fmt(o, "%llu", v);
}

static void out_range(struct out *o, unsigned long long s, unsigned long long e,
		      unsigned long long t)
{
	out_fmt(o, "Byte-Range: %llu-", s);
	out_range_part(o, e);
	out_str(o, "/");
	out_range_part(o, t);
	out_str(o, "\r\n");
}

static void out_end(struct out *o, const char *tid, char flag, size_t *len)
{
	out_fmt(o, DASHES "%s%c\r\n", tid, flag);
	if (len)
		*len = o->n;
}

static int args_ok(const char *tid, const char *to, const char *from)
{
	return tid && to && from && valid_ident(tid, strlen(tid)) && valid_path(to, strlen(to)) &&
	       valid_path(from, strlen(from));
}

/* a comment or reason phrase: NULL, or utf8text */
static int comment_ok(const char *c)
{
	return !c || valid_text(c, strlen(c));
}

/* The body must not hold the end-line: "-------" tid followed by a flag character. */
static int body_ok(const char *tid, const char *body, size_t body_len)
{
	size_t tl = strlen(tid), i = 0;

	while (body_len - i >= NDASH + tl + 1) {
		const char *d = memmem(body + i, body_len - i, DASHES, NDASH);

		if (!d || (size_t)(d - body) + NDASH + tl + 1 > body_len)
			return 1;
		i = (size_t)(d - body);
		if (memcmp(d + NDASH, tid, tl) == 0 && is_flag(d[NDASH + tl]))
			return 0;
		i++;
	}
	return 1;
}

char *msrp_build_send(const char *tid, const char *to_path, const char *from_path,
		      const char *message_id, unsigned long long start, unsigned long long total,
		      const char *content_type, const char *body, size_t body_len, char flag,
		      int success_report, int failure_report, size_t *len)
{
	struct out o = { NULL, 0, 0 };
	unsigned long long end;

	if (!args_ok(tid, to_path, from_path) || !message_id ||
	    !valid_ident(message_id, strlen(message_id)) || !is_flag(flag) ||
	    success_report < -1 || success_report > 1 || failure_report < -1 ||
	    failure_report > 2 || (!content_type && body_len > 0) || (body_len > 0 && !body) ||
	    (content_type && (!valid_ctype(content_type, strlen(content_type)) ||
			      !valid_text(content_type, strlen(content_type)))) ||
	    start < 1 || start > MSRP_RANGE_MAX || body_len > MSRP_RANGE_MAX - start + 1)
		return NULL;
	end = start + body_len - 1;
	if (!range_ok(start, end, total) || (body_len > 0 && !body_ok(tid, body, body_len)))
		return NULL;
	out_head(&o, tid, "SEND", to_path, from_path);
	out_fmt(&o, "Message-ID: %s\r\n", message_id);
	if (success_report >= 0)
		out_fmt(&o, "Success-Report: %s\r\n", report_words[success_report]);
	if (failure_report >= 0)
		out_fmt(&o, "Failure-Report: %s\r\n", report_words[failure_report]);
	out_range(&o, start, end, total);
	if (content_type) {
		out_fmt(&o, "Content-Type: %s\r\n\r\n", content_type);
		out_add(&o, body ? body : "", body_len);
		out_str(&o, "\r\n");
	}
	out_end(&o, tid, flag, len);
	return o.s;
}

char *msrp_build_response(const char *tid, int status, const char *comment, const char *to_path,
			  const char *from_path, size_t *len)
{
	struct out o = { NULL, 0, 0 };

	if (!args_ok(tid, to_path, from_path) || status < 100 || status > 999 || !comment_ok(comment))
		return NULL;
	out_fmt(&o, "MSRP %s %d%s%s\r\nTo-Path: %s\r\nFrom-Path: %s\r\n", tid, status,
		comment ? " " : "", comment ? comment : "", to_path, from_path);
	out_end(&o, tid, MSRP_END, len);
	return o.s;
}

char *msrp_build_report(const char *tid, const char *to_path, const char *from_path,
			const char *message_id, unsigned long long start, unsigned long long end,
			unsigned long long total, int status_code, const char *comment, size_t *len)
{
	struct out o = { NULL, 0, 0 };

	if (!args_ok(tid, to_path, from_path) || !message_id ||
	    !valid_ident(message_id, strlen(message_id)) || !range_ok(start, end, total) ||
	    status_code < 100 || status_code > 999 || !comment_ok(comment))
		return NULL;
	out_head(&o, tid, "REPORT", to_path, from_path);
	out_fmt(&o, "Message-ID: %s\r\n", message_id);
	out_range(&o, start, end, total);
	out_fmt(&o, "Status: 000 %d%s%s\r\n", status_code, comment ? " " : "", comment ? comment : "");
	out_end(&o, tid, MSRP_END, len);
	return o.s;
}

/* Length of the UTF-8 sequence at s[0..n) with no control character (C0, DEL, C1), or 0. */
static size_t nick_char(const unsigned char *s, size_t n)
{
	size_t need;
	unsigned cp;

	if (s[0] < 0x80)
		return s[0] < 0x20 || s[0] == 0x7f ? 0 : 1;
	need = s[0] >= 0xf0 && s[0] <= 0xf4 ? 4 : s[0] >= 0xe0 ? 3 : s[0] >= 0xc2 ? 2 : 0;
	if (!need || need > n || (need == 4 && s[0] > 0xf4))
		return 0;
	cp = s[0] & (0xff >> (need + 1));
	for (size_t i = 1; i < need; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	if ((need == 3 && cp < 0x800) || (need == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
	    (cp >= 0xd800 && cp <= 0xdfff) || (cp >= 0x80 && cp <= 0x9f))
		return 0;
	return need;
}

int msrp_nickname_parse(const char *value, size_t len, char *buf, size_t buflen)
{
	const unsigned char *v = (const unsigned char *)value;
	size_t i = 1, out = 0;

	if (!value || !buf || buflen < 2 || len < 2 || v[0] != '"' || v[len - 1] != '"')
		return -1;
	while (i < len - 1) {
		size_t n;

		if (v[i] == '\\') {
			/* quoted-pair: any character but CR and LF (RFC 4975's utf8text rules) */
			if (i + 1 >= len - 1 || v[i + 1] == '\r' || v[i + 1] == '\n')
				return -1;
			i++;
		} else if (v[i] == '"') {
			return -1;	/* a second quoted-string, or junk after the first */
		}
		if (!(n = nick_char(v + i, len - 1 - i)) || out + n >= buflen ||
		    out + n > MSRP_NICKNAME_MAX)
			return -1;
		memcpy(buf + out, v + i, n);
		out += n;
		i += n;
	}
	if (!out)
		return -1;
	buf[out] = '\0';
	return (int)out;
}

char *msrp_build_nickname(const char *tid, const char *to_path, const char *from_path,
			  const char *nickname, size_t *len)
{
	struct out o = { NULL, 0, 0 };
	size_t n = nickname ? strlen(nickname) : 0;

	if (!args_ok(tid, to_path, from_path) || !n || n > MSRP_NICKNAME_MAX)
		return NULL;
	for (size_t i = 0, k; i < n; i += k)
		if (!(k = nick_char((const unsigned char *)nickname + i, n - i)))
			return NULL;
	out_head(&o, tid, "NICKNAME", to_path, from_path);
	out_str(&o, "Use-Nickname: \"");
	for (size_t i = 0; i < n; i++) {
		if (nickname[i] == '"' || nickname[i] == '\\')
			out_add(&o, "\\", 1);
		out_add(&o, nickname + i, 1);
	}
	out_str(&o, "\"\r\n");
	out_end(&o, tid, MSRP_END, len);
	return o.s;
}

char *msrp_build_auth(const char *tid, const char *to_path, const char *from_path,
		      unsigned long expires, size_t *len)
{
	struct out o = { NULL, 0, 0 };

	if (!args_ok(tid, to_path, from_path) || expires > 4294967295UL)
		return NULL;
	out_head(&o, tid, "AUTH", to_path, from_path);
	if (expires) {
		char line[32];

		snprintf(line, sizeof(line), "Expires: %lu\r\n", expires);
		out_str(&o, line);
	}
	out_end(&o, tid, MSRP_END, len);
	return o.s;
}

const struct msrp_header_field *msrp_frame_header(const struct msrp_frame *f, const char *name)
{
	size_t n = strlen(name);

	for (size_t i = 0; i < f->nheaders; i++)
		if (f->headers[i].name_len == n && strncasecmp(f->headers[i].name, name, n) == 0)
			return &f->headers[i];
	return NULL;
}

void msrp_make_id(char *buf, size_t len)
{
	static const char alphabet[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
	unsigned char rnd[64];
	size_t want, have = 0;

	if (len < 5)
		gw_fatal("msrp_make_id: buffer of %zu bytes", len);
	want = len - 1 < MSRP_TID_MAX ? len - 1 : MSRP_TID_MAX;
	while (have < want) {
		ssize_t r = getrandom(rnd, sizeof(rnd), 0);

		if (r < 0) {
			if (errno == EINTR)
				continue;
			gw_fatal("getrandom: %s", strerror(errno));
		}
		/* 248 = 4 * 62: rejecting the rest keeps every character equally likely */
		for (ssize_t i = 0; i < r && have < want; i++)
			if (rnd[i] < 248)
				buf[have++] = alphabet[rnd[i] % 62];
	}
	buf[want] = '\0';
}
