/* fuzz_msrp.c - libFuzzer harness for sip/msrp.c: the same bytes in one piece, two pieces and one byte at a time give the same frames; frame invariants; every SEND, REPORT, NICKNAME and response rebuilt and re-parsed; URIs. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sip/msrp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void must(int cond)
{
	if (!cond)
		__builtin_trap();
}

/* ---- what a feed produced, as a hash (FNV-1a) and a count ----------------------------------- */

struct run {
	uint64_t h;
	size_t frames;
	size_t max_frame;
	int rebuild;		/* rebuild and re-parse each frame (only on one of the runs) */
};

static void mix(struct run *r, const void *p, size_t n)
{
	const unsigned char *b = p;

	for (size_t i = 0; i < n; i++)
		r->h = (r->h ^ b[i]) * 1099511628211ULL;
	r->h = (r->h ^ n) * 1099511628211ULL;
}

static void mix_str(struct run *r, const char *s, size_t n)
{
	mix(r, s ? s : "", s ? n : 0);
	mix(r, s ? "1" : "0", 1);
}

static void one_string(const char *s, size_t n)
{
	/* the parser's strings are NUL-terminated in place and hold no NUL of their own */
	must(s != NULL && s[n] == '\0' && strlen(s) == n);
}

/* ---- re-parsing what we rebuilt ------------------------------------------------------------- */

struct back {
	int n;
	struct msrp_frame f;	/* scalars only: the pointers die with the callback */
	char to[8192], from[8192], mid[64], ct[8192], comment[8192], nick[8192];
	char *body;
	size_t body_len;
};

static void copy_str(char *dst, size_t cap, const char *s, size_t n)
{
	must(n < cap);
	memcpy(dst, s ? s : "", s ? n : 0);
	dst[s ? n : 0] = '\0';
}

static void on_back(void *arg, const struct msrp_frame *f)
{
	struct back *b = arg;

	b->n++;
	b->f = *f;
	copy_str(b->to, sizeof(b->to), f->to_path, f->to_path_len);
	copy_str(b->from, sizeof(b->from), f->from_path, f->from_path_len);
	copy_str(b->mid, sizeof(b->mid), f->message_id, f->message_id_len);
	copy_str(b->ct, sizeof(b->ct), f->content_type, f->content_type_len);
	copy_str(b->nick, sizeof(b->nick), f->use_nickname, f->use_nickname_len);
	if (f->is_request)
		copy_str(b->comment, sizeof(b->comment), f->status_comment, f->status_comment_len);
	else
		copy_str(b->comment, sizeof(b->comment), f->comment, f->comment_len);
	free(b->body);
	b->body = NULL;
	b->body_len = f->body_len;
	if (f->body) {
		b->body = malloc(f->body_len + 1);
		must(b->body != NULL);
		memcpy(b->body, f->body, f->body_len);
	}
}

/* Parses a frame we built: exactly one frame, no error. */
static void reparse(const char *s, size_t len, struct back *b)
{
	static const struct msrp_parser_cbs cbs = { on_back };
	struct msrp_parser *p = msrp_parser_new(len + 1, &cbs, b);

	memset(b, 0, sizeof(*b));
	must(msrp_parser_feed(p, s, len) == 0);
	must(b->n == 1);
	msrp_parser_free(p);
}

static void rebuild(const struct msrp_frame *f)
{
	struct back b;
	size_t len;
	char *s;

	if (!f->is_request) {
		s = msrp_build_response(f->tid, f->status, f->comment, f->to_path, f->from_path, &len);
		must(s != NULL);
		reparse(s, len, &b);
		must(!b.f.is_request && b.f.status == f->status && strcmp(b.f.tid, f->tid) == 0);
		must(strcmp(b.to, f->to_path) == 0 && strcmp(b.from, f->from_path) == 0);
		must((b.f.comment != NULL) == (f->comment != NULL));
		must(!f->comment || strcmp(b.comment, f->comment) == 0);
		must(b.f.nheaders == 2);
	} else if (f->method == MSRP_SEND && !f->oversized) {
		unsigned long long start = f->has_byte_range ? f->range_start : 1;
		unsigned long long total = f->has_byte_range ? f->range_total : MSRP_UNKNOWN;

		s = msrp_build_send(f->tid, f->to_path, f->from_path, f->message_id, start, total,
				    f->content_type, f->body, f->body_len, f->flag,
				    f->success_report, f->failure_report, &len);
		if (!s) {
			/* only a total below the rebuilt range, or the end-line inside the body
			 * without its CRLF (the parser reads it as body, the builder refuses) */
			must((total != MSRP_UNKNOWN && total + 1 < start + f->body_len) ||
			     start + f->body_len - 1 > MSRP_RANGE_MAX ||
			     (f->body && memmem(f->body, f->body_len, f->tid, strlen(f->tid))));
			return;
		}
		reparse(s, len, &b);
		must(b.f.is_request && b.f.method == MSRP_SEND && strcmp(b.f.tid, f->tid) == 0);
		must(strcmp(b.to, f->to_path) == 0 && strcmp(b.from, f->from_path) == 0);
		must(strcmp(b.mid, f->message_id) == 0);
		must(b.f.flag == f->flag && b.f.has_byte_range && b.f.range_start == start &&
		     b.f.range_total == total && b.f.range_end == start + f->body_len - 1);
		must(b.f.success_report == f->success_report && b.f.failure_report == f->failure_report);
		must((b.f.content_type != NULL) == (f->content_type != NULL));
		must(!f->content_type || strcmp(b.ct, f->content_type) == 0);
		must((b.body != NULL) == (f->body != NULL) && b.body_len == f->body_len);
		must(!f->body || memcmp(b.body, f->body, f->body_len) == 0);
	} else if (f->method == MSRP_REPORT && f->has_byte_range && f->status_ns == 0) {
		s = msrp_build_report(f->tid, f->to_path, f->from_path, f->message_id, f->range_start,
				      f->range_end, f->range_total, f->status_code, f->status_comment,
				      &len);
		must(s != NULL);
		reparse(s, len, &b);
		must(b.f.is_request && b.f.method == MSRP_REPORT && strcmp(b.f.tid, f->tid) == 0);
		must(strcmp(b.mid, f->message_id) == 0 && b.f.range_start == f->range_start &&
		     b.f.range_end == f->range_end && b.f.range_total == f->range_total);
		must(b.f.status_code == f->status_code && b.f.status_ns == 0);
		must((b.f.status_comment != NULL) == (f->status_comment != NULL));
		must(!f->status_comment || strcmp(b.comment, f->status_comment) == 0);
	} else if (f->method == MSRP_NICKNAME && f->use_nickname) {
		/* a nickname the parser takes is one the builder writes and the parser reads back */
		char nick[MSRP_NICKNAME_MAX + 1], back[MSRP_NICKNAME_MAX + 1];
		int n = msrp_nickname_parse(f->use_nickname, f->use_nickname_len, nick, sizeof(nick));

		if (n < 0 || strlen(nick) != (size_t)n)
			return;		/* refused (424), or a NUL inside: nothing to rebuild */
		s = msrp_build_nickname(f->tid, f->to_path, f->from_path, nick, &len);
		must(s != NULL);
		reparse(s, len, &b);
		must(b.f.is_request && b.f.method == MSRP_NICKNAME && strcmp(b.f.tid, f->tid) == 0);
		must(b.f.use_nickname != NULL);
		must(msrp_nickname_parse(b.nick, strlen(b.nick), back, sizeof(back)) == n &&
		     strcmp(back, nick) == 0);
	} else {
		return;
	}
	free(b.body);
	free(s);
}

/* ---- the frames of the fuzzed stream -------------------------------------------------------- */

static void on_frame(void *arg, const struct msrp_frame *f)
{
	struct run *r = arg;
	size_t tl = strlen(f->tid);

	r->frames++;
	/* invariants */
	must(tl >= 4 && tl <= MSRP_TID_MAX);
	must(f->nheaders >= 2 && f->nheaders <= MSRP_MAX_HEADERS);
	must(f->headers[0].id == MSRP_H_TO_PATH && f->headers[1].id == MSRP_H_FROM_PATH);
	one_string(f->to_path, f->to_path_len);
	one_string(f->from_path, f->from_path_len);
	must(msrp_path_first(f->to_path, f->to_path_len) > 0);
	must(msrp_path_first(f->from_path, f->from_path_len) > 0);
	for (size_t i = 0; i < f->nheaders; i++) {
		one_string(f->headers[i].value, f->headers[i].value_len);
		must(f->headers[i].name_len > 0 && f->headers[i].name_len < MSRP_MAX_LINE);
		must(f->headers[i].id == msrp_header_lookup(f->headers[i].name, f->headers[i].name_len));
		for (size_t j = 0; j < i; j++)
			must(f->headers[i].id == MSRP_H_EXTENSION || f->headers[i].id != f->headers[j].id);
		mix(r, f->headers[i].name, f->headers[i].name_len);
		mix(r, f->headers[i].value, f->headers[i].value_len);
	}
	if (f->message_id)
		one_string(f->message_id, f->message_id_len);
	if (f->content_type)
		one_string(f->content_type, f->content_type_len);
	if (f->oversized) {
		must(f->is_request && f->body == NULL && f->flag == 0 && f->content_type);
	} else {
		must(f->flag == '$' || f->flag == '+' || f->flag == '#');
		must((f->body != NULL) == (f->content_type != NULL));
	}
	if (f->body) {
		/* the body lies within one frame, which is at most max_frame long */
		must(f->body_len < r->max_frame && f->body[f->body_len] == '\0');
		if (f->body_len)
			mix(r, f->body, f->body_len);
	}
	if (f->has_byte_range)
		must(f->range_start >= 1 && f->range_start <= MSRP_RANGE_MAX &&
		     (f->range_end == MSRP_UNKNOWN || f->range_end + 1 >= f->range_start) &&
		     (f->range_total == MSRP_UNKNOWN || f->range_total + 1 >= f->range_start));
	must(f->success_report >= -1 && f->success_report <= 1);
	must(f->failure_report >= -1 && f->failure_report <= 2);
	if (f->is_request) {
		one_string(f->method_name, f->method_len);
		must(f->content_type || !f->body);
		if (f->method == MSRP_SEND)
			must(f->message_id && f->method_len == 4);
		if (f->method == MSRP_REPORT)
			must(f->message_id && f->has_status);
		if (f->has_status)
			must(f->status_code >= 100 && f->status_code <= 999 && f->status_ns >= 0);
	} else {
		must(f->status >= 100 && f->status <= 999 && !f->body && !f->content_type);
		if (f->comment)
			one_string(f->comment, f->comment_len);
	}
	mix(r, f->tid, tl);
	mix(r, &f->is_request, sizeof(f->is_request));
	mix(r, &f->status, sizeof(f->status));
	mix_str(r, f->comment, f->comment_len);
	mix(r, &f->flag, 1);
	mix(r, &f->oversized, sizeof(f->oversized));
	if (r->rebuild)
		rebuild(f);
}

static const struct msrp_parser_cbs cbs = { on_frame };

/* Feeds data in pieces ending at the cut points (ascending, < size); step > 0 means byte runs of
 * that size instead.  Returns the hash of everything seen, the error included. */
static uint64_t run(const uint8_t *data, size_t size, size_t max_frame, const size_t *cuts,
		    size_t ncuts, size_t step, int rebuild_frames, size_t *frames)
{
	struct run r = { 14695981039346656037ULL, 0, max_frame, rebuild_frames };
	struct msrp_parser *p = msrp_parser_new(max_frame, &cbs, &r);
	size_t at = 0, k = 0;
	int rc = 0, st;
	char tid[MSRP_TID_MAX + 1];
	const char *why;

	if (r.max_frame < MSRP_MIN_FRAME)
		r.max_frame = MSRP_MIN_FRAME;
	while (at < size && rc == 0) {
		size_t end = step ? (size - at < step ? size : at + step) : k < ncuts ? cuts[k++] : size;
		/* an exact-size copy: AddressSanitizer sees any read past the piece */
		char *piece = malloc(end - at ? end - at : 1);

		must(piece != NULL);
		memcpy(piece, data + at, end - at);
		rc = msrp_parser_feed(p, piece, end - at);
		free(piece);
		at = end;
	}
	why = msrp_parser_error(p, &st, tid);
	must((rc == -1) == (why != NULL));
	if (why) {
		/* a one-line reason; answer only with a known tid */
		must(*why && !strchr(why, '\n') && (st == 0 || st == 400));
		must(st == 0 || strlen(tid) >= 4);
		must(msrp_parser_feed(p, "x", 1) == -1);
		mix(&r, why, strlen(why));
		mix(&r, &st, sizeof(st));
		mix(&r, tid, strlen(tid));
	}
	msrp_parser_free(p);
	*frames = r.frames;
	return r.h;
}

static void check_uri(const uint8_t *data, size_t size)
{
	struct msrp_uri u, v;

	if (size > 600)
		size = 600;
	if (msrp_uri_parse((const char *)data, size, &u) == 0) {
		must(u.transport[0] && u.host[0]);
		must(u.port <= 65535);
		must(msrp_uri_equal(&u, &u));
		v = u;
		v.secure = !u.secure;
		must(!msrp_uri_equal(&u, &v));
	}
	if (msrp_path_first((const char *)data, size) > 0)
		must(msrp_uri_parse((const char *)data, msrp_path_first((const char *)data, size),
				    &u) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* the first two bytes choose the split point and max_frame; the rest is the stream */
	size_t max_frame, cut, n1, n2, n3;
	uint64_t whole, two, bytes;

	if (size < 2)
		return 0;
	max_frame = MSRP_MIN_FRAME + (size_t)(data[0] & 0x0f) * 256;
	if (data[0] & 0x80)
		max_frame = 1 << 20;
	cut = size > 2 ? data[1] * (size - 2) / 255 : 0;
	data += 2;
	size -= 2;

	whole = run(data, size, max_frame, NULL, 0, 0, 1, &n1);
	if (cut > 0 && cut < size)
		two = run(data, size, max_frame, &cut, 1, 0, 0, &n2);
	else
		two = run(data, size, max_frame, NULL, 0, 0, 0, &n2);
	must(two == whole && n2 == n1);
	if (size <= 2048) {
		bytes = run(data, size, max_frame, NULL, 0, 1 + (size && data[0] != 'M' ? size % 7 : 0),
			    0, &n3);
		must(bytes == whole && n3 == n1);
	}
	check_uri(data, size);
	return 0;
}
