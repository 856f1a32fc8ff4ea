/* msrp.h - MSRP (RFC 4975) frames: an incremental, bounded parser, the builders, URIs and the header table (pure: no I/O).
 *
 * A frame on the wire (RFC 4975 section 9, every line ends in CRLF):
 *
 *	MSRP d93kswow SEND				start line: MSRP SP tid SP method
 *	To-Path: msrp://bob.example.com:8888/9di4eae923wzd;tcp		always the first header
 *	From-Path: msrp://alicepc.example.com:7777/iau39soe2843z;tcp	always the second header
 *	Message-ID: 12339sdqwer
 *	Byte-Range: 1-16/16
 *	Content-Type: text/plain			when present, the last header; then one empty line
 *
 *	Hi, I'm Alice!					the body: any octets, then CRLF (not part of the body)
 *	-------d93kswow$				end-line: 7 dashes, the tid, '$' (end), '+' (more), '#' (abort)
 *
 * A response is "MSRP <tid> <3 digits>[ <comment>]", To-Path, From-Path, other headers and the
 * end-line; it never has a body.  A request without Content-Type has no body and no empty line:
 * the end-line follows the last header.
 *
 * Strictness (what the parser refuses): a start line other than the above; a tid that is not an
 * RFC 4975 ident (ALPHANUM then 3..31 of ALPHANUM . - + % =, so 4..32 characters: the grammar's
 * "ident = ALPHANUM 3*31ident-char"); a method that is not 1*UPALPHA; a status outside 100..999;
 * a line longer than MSRP_MAX_LINE or not ended by CRLF; a control character (except HTAB) or
 * invalid UTF-8 (RFC 3629: no overlong forms, surrogates or code points past U+10FFFF) in the
 * start line or a header; a header line not "name: value" (exactly one SP after the colon); To-Path
 * not first or From-Path not second; a known header twice; more than MSRP_MAX_HEADERS headers;
 * a malformed value of a known header (table in msrp.c); a header after Content-Type; an empty line
 * without Content-Type; a Content-Type in a response; a Content-ID/-Description/-Disposition
 * without Content-Type; a SEND without Message-ID, a REPORT without Message-ID or Status; an
 * end-line with another tid or flag; a body that begins with the end-line (the CRLF before the
 * end-line is mandatory, RFC 4975 7.1).  Header names are matched case-insensitively (ABNF
 * literals are), methods and "MSRP" case-sensitively.
 *
 * The end of a body is the first CRLF "-------" tid flag CRLF after the empty line: RFC 4975 7.1
 * makes the sender pick a tid that does not occur in the body, so the parser never looks at
 * Byte-Range to find it (and does not check the range against the body length: use body_len).
 */
#ifndef GW_MSRP_H
#define GW_MSRP_H

#include <limits.h>
#include <stddef.h>

#define MSRP_MAX_HEADERS 32		/* per frame, To-Path and From-Path included */
#define MSRP_MAX_LINE 4096		/* bytes of a start or header line, CRLF excluded */
#define MSRP_MIN_FRAME 256		/* smaller max_frame values are raised to this */
#define MSRP_UNKNOWN ULLONG_MAX		/* Byte-Range end or total given as '*' */
#define MSRP_RANGE_MAX 999999999999999999ULL	/* Byte-Range numbers: at most 18 digits */
#define MSRP_TID_MAX 32			/* characters of a transaction id or Message-ID */
#define MSRP_NICKNAME_MAX 256		/* bytes of a nickname (RFC 7701 sets no limit) */

enum msrp_method {
	MSRP_SEND,
	MSRP_REPORT,
	MSRP_NICKNAME,	/* RFC 7701 5.1: Use-Nickname required, no body */
	MSRP_OTHER,	/* any other 1*UPALPHA (e.g. RFC 4976 AUTH): parsed, the caller answers 501 */
};

enum msrp_flag { MSRP_END = '$', MSRP_MORE = '+', MSRP_ABORT = '#' };

/* The header table (names in msrp.c, row for row): every header the parser knows by name. */
enum msrp_header {
	MSRP_H_TO_PATH,
	MSRP_H_FROM_PATH,
	MSRP_H_MESSAGE_ID,
	MSRP_H_SUCCESS_REPORT,
	MSRP_H_FAILURE_REPORT,
	MSRP_H_BYTE_RANGE,
	MSRP_H_STATUS,
	MSRP_H_CONTENT_TYPE,
	MSRP_H_CONTENT_ID,		/* the Other-Mime-headers: only with a Content-Type */
	MSRP_H_CONTENT_DESCRIPTION,
	MSRP_H_CONTENT_DISPOSITION,
	MSRP_H_USE_NICKNAME,		/* RFC 7701: the raw quoted-string; msrp_nickname_parse() */
	MSRP_H_EXTENSION,		/* any other "hname: utf8text" (Use-Path, Expires, ...) */
};

/* The canonical name of h ("To-Path"), a static string; NULL for MSRP_H_EXTENSION and past it. */
const char *msrp_header_name(enum msrp_header h);
/* The header called name[0..len) (case-insensitive), or MSRP_H_EXTENSION. */
enum msrp_header msrp_header_lookup(const char *name, size_t len);

/* ---- URIs: msrp[s]://[userinfo@]host[:port][/session-id];transport[;param...]  (RFC 4975 9)
 * host: a name or IPv4 address (ALPHANUM . -) or an IPv6 reference kept with its brackets
 * ("[2001:db8::1]"); userinfo (unreserved, %XX, & = + $ , :) is checked and dropped, as the
 * comparison ignores it; URI parameters (token[=token]) are checked and dropped.
 *	"msrp://bob.example.com:8888/9di4eae923wzd;tcp" -> secure 0, host "bob.example.com",
 *		port 8888, session "9di4eae923wzd", transport "tcp"
 *	"msrps://alice@intra.example.com;tcp" -> secure 1, host "intra.example.com", port 0 (none),
 *		session "" (none), transport "tcp"					*/
struct msrp_uri {
	int secure;		/* msrps: */
	char host[256];
	unsigned port;		/* 1..65535, or 0 when the URI has none */
	char session[128];	/* session-id, "" when the URI has none */
	char transport[16];
};

/* Parses exactly s[0..len) (no NUL needed) into *out.  Returns 0, or -1 (out undefined). */
int msrp_uri_parse(const char *s, size_t len, struct msrp_uri *out);
/* RFC 4975 6.1: equal when scheme, host (case-insensitive, no resolution, no IPv6 normalising),
 * port (an explicit port never equals an absent one), session-id (case-sensitive; absent never
 * equals present) and transport (case-insensitive) match.  Returns 1 or 0. */
int msrp_uri_equal(const struct msrp_uri *a, const struct msrp_uri *b);
/* A path is URIs separated by single spaces.  Returns the length of the first URI of
 * path[0..len) (len when there is one), or 0 if the path is not valid. */
size_t msrp_path_first(const char *path, size_t len);

/* ---- frames */

/* One header as it appeared, in order.  name is not NUL-terminated; value is. */
struct msrp_header_field {
	enum msrp_header id;
	const char *name;
	size_t name_len;
	const char *value;
	size_t value_len;
};

/* A parsed frame.  Every pointer is borrowed from the parser's buffer and valid only during the
 * callback; every value, the method name, comments and the body are also NUL-terminated there
 * (the body may hold NULs of its own: body_len counts). */
struct msrp_frame {
	int is_request;
	char tid[MSRP_TID_MAX + 1];
	/* requests */
	enum msrp_method method;
	const char *method_name;
	size_t method_len;
	/* responses: status 100..999; comment NULL when absent */
	int status;
	const char *comment;
	size_t comment_len;
	/* raw header values: space-separated URIs, each checked by msrp_uri_parse() */
	const char *to_path, *from_path;
	size_t to_path_len, from_path_len;
	const char *message_id;		/* NULL when absent */
	size_t message_id_len;
	int has_byte_range;		/* start >= 1; end and total may be MSRP_UNKNOWN ('*') */
	unsigned long long range_start, range_end, range_total;
	int success_report;		/* -1 absent, 0 no, 1 yes */
	int failure_report;		/* -1 absent, 0 no, 1 yes, 2 partial */
	int has_status;			/* REPORT "Status: 000 200 OK" -> 0, 200, "OK" */
	int status_ns, status_code;
	const char *status_comment;	/* NULL when absent */
	size_t status_comment_len;
	const char *content_type;	/* NULL when absent */
	size_t content_type_len;
	const char *use_nickname;	/* Use-Nickname as sent (a quoted-string), NULL when absent */
	size_t use_nickname_len;
	const char *body;		/* NULL: no Content-Type, no body; else body_len octets (may be 0) */
	size_t body_len;
	char flag;			/* '$', '+' or '#'; 0 when oversized */
	/* 1: a request whose body made the frame larger than max_frame.  The headers are complete,
	 * body is NULL and flag 0: answer 413 now (RFC 4975: 413 asks the sender to stop sending
	 * the message; a sender streaming the chunk may then cut it short with '#').
	 * The parser drops the rest of the chunk up to its end-line and carries on. */
	int oversized;
	const struct msrp_header_field *headers;	/* all of them, in order */
	size_t nheaders;
};

struct msrp_parser;
struct msrp_parser_cbs {
	/* Called once per complete (or oversized) frame, from inside msrp_parser_feed(), for every
	 * frame the fed bytes complete: to pause, stop reading the socket, not the parser.  It must
	 * not feed or free the parser (feeding aborts). */
	void (*frame)(void *arg, const struct msrp_frame *f);
};

/* A parser for one connection.  max_frame bounds one frame, start line to end-line (raised to
 * MSRP_MIN_FRAME); the buffer grows up to it.  cbs is copied; arg is the caller's.  Never NULL. */
struct msrp_parser *msrp_parser_new(size_t max_frame, const struct msrp_parser_cbs *cbs, void *arg);

/* Feeds buf[0..len) (borrowed), split anywhere: the frames, the callbacks and any error are the
 * same for every split of the same bytes.  Returns 0, or -1 once the stream is broken (and on
 * every later call): the caller then closes the connection, first answering the request with
 * msrp_parser_error()'s status when that is not 0.
 *
 * Sizes: a request whose body takes the frame past max_frame is not an error (see oversized);
 * a frame whose start line and headers alone pass max_frame, or a response that does, is. */
int msrp_parser_feed(struct msrp_parser *p, const char *buf, size_t len);

/* After msrp_parser_feed() returned -1: a one-line reason (static string), the status to answer
 * in *status (400 when the broken frame is a request whose start line was valid, else 0: just
 * close) and the frame's tid in tid ("" when the start line was not valid).  Either of status
 * and tid may be NULL.  Returns NULL (status 0, tid "") when the stream is not broken. */
const char *msrp_parser_error(const struct msrp_parser *p, int *status, char tid[MSRP_TID_MAX + 1]);

/* NULL allowed.  Not from inside the parser's own callback. */
void msrp_parser_free(struct msrp_parser *p);

/* ---- builders.  Each returns a new NUL-terminated frame the caller frees with free(), its
 * length in *len (len may be NULL), or NULL when an argument is not valid: a tid or Message-ID
 * not an ident, a path not valid URIs, a text with CR, LF or bad UTF-8, a bad Content-Type, a
 * range out of bounds, or (SEND) a body holding "-------" tid followed by a flag character
 * (RFC 4975 7.1: pick another tid).  Every frame built is one the parser reads back the same. */

/* A SEND: Message-ID, [Success-Report], [Failure-Report], Byte-Range start-end/total with
 * end = start + body_len - 1 (total MSRP_UNKNOWN writes '*'), [Content-Type, empty line, body].
 * content_type NULL means no body (body_len must then be 0).  success_report: -1 omit, 0 no,
 * 1 yes; failure_report: -1 omit, 0 no, 1 yes, 2 partial.  flag: '$', '+' or '#'. */
char *msrp_build_send(const char *tid, const char *to_path, const char *from_path,
		      const char *message_id, unsigned long long start, unsigned long long total,
		      const char *content_type, const char *body, size_t body_len, char flag,
		      int success_report, int failure_report, size_t *len);

/* A response "MSRP tid status [comment]" ending in '$'.  RFC 4975 7.2: to_path is the first URI
 * of the request's From-Path (msrp_path_first()), from_path our own URI.  comment may be NULL. */
char *msrp_build_response(const char *tid, int status, const char *comment, const char *to_path,
			  const char *from_path, size_t *len);

/* A REPORT: Message-ID, Byte-Range start-end/total (MSRP_UNKNOWN writes '*'), then
 * "Status: 000 status_code[ comment]"; no body, ending in '$'.  comment may be NULL. */
char *msrp_build_report(const char *tid, const char *to_path, const char *from_path,
			const char *message_id, unsigned long long start, unsigned long long end,
			unsigned long long total, int status_code, const char *comment, size_t *len);

/* A NICKNAME request (RFC 7701 5.1): Use-Nickname with nickname as a quoted-string (", \ escaped);
 * no body, ending in '$'.  nickname: 1..MSRP_NICKNAME_MAX bytes of UTF-8 without controls. */
char *msrp_build_nickname(const char *tid, const char *to_path, const char *from_path,
			  const char *nickname, size_t *len);

/* The nickname a Use-Nickname value (value[0..len), a quoted-string, RFC 7701 5.1) carries,
 * unescaped, into buf (NUL-terminated).  Returns its length, or -1 when the value is not one
 * quoted-string, the nickname is empty, longer than MSRP_NICKNAME_MAX or buflen - 1 bytes, or
 * holds a control character or invalid UTF-8: the request then gets 424 Malformed nickname. */
int msrp_nickname_parse(const char *value, size_t len, char *buf, size_t buflen);

/* An AUTH request (RFC 4976 5.1: to_path the relay's URI, from_path ours), with "Expires:
 * <expires>" unless expires is 0; no body, ending in '$'.  expires at most 2^32 - 1. */
char *msrp_build_auth(const char *tid, const char *to_path, const char *from_path,
		      unsigned long expires, size_t *len);

/* The first header of f named name (case-insensitive; e.g. "Use-Path", "Expires" of an AUTH's
 * response), or NULL. */
const struct msrp_header_field *msrp_frame_header(const struct msrp_frame *f, const char *name);

/* Writes a fresh random ident (getrandom(), [A-Za-z0-9]) of min(len - 1, 32) characters and a
 * NUL into buf: 16 characters (95 bits) when len is 17.  len must be at least 5 (aborts). */
void msrp_make_id(char *buf, size_t len);

#endif
