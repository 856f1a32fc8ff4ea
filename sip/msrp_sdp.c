/* msrp_sdp.c - SDP offer/answer for MSRP sessions: the offer parser, the answer writer and the
 * negotiation tables (see msrp_sdp.h for the rules and worked examples). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <sofia-sip/sdp.h>

#include "gateway/gw.h"
#include "sip/msrp_sdp.h"

/* ---- tables ---------------------------------------------------------------------------------- */

static const char *const setup_names[] = {
	[MSRP_SETUP_NONE] = NULL,
	[MSRP_SETUP_ACTIVE] = "active",
	[MSRP_SETUP_PASSIVE] = "passive",
	[MSRP_SETUP_ACTPASS] = "actpass",
	[MSRP_SETUP_HOLDCONN] = "holdconn",
};

#define NSETUP (sizeof(setup_names) / sizeof(setup_names[0]))

/* The answerer (RFC 6135 section 4.2, RFC 4145 section 4.1; "none" from RFC 6135 section 5):
 * the only free choice is the answer to actpass, where the gateway prefers to listen. */
static const struct answer_row {
	enum msrp_setup offered;
	int prefer_active;
	enum msrp_setup answer;
} answer_rows[] = {
	{ MSRP_SETUP_NONE, 0, MSRP_SETUP_PASSIVE },
	{ MSRP_SETUP_NONE, 1, MSRP_SETUP_PASSIVE },
	{ MSRP_SETUP_ACTIVE, 0, MSRP_SETUP_PASSIVE },
	{ MSRP_SETUP_ACTIVE, 1, MSRP_SETUP_PASSIVE },
	{ MSRP_SETUP_PASSIVE, 0, MSRP_SETUP_ACTIVE },
	{ MSRP_SETUP_PASSIVE, 1, MSRP_SETUP_ACTIVE },
	{ MSRP_SETUP_ACTPASS, 0, MSRP_SETUP_PASSIVE },
	{ MSRP_SETUP_ACTPASS, 1, MSRP_SETUP_ACTIVE },
	{ MSRP_SETUP_HOLDCONN, 0, MSRP_SETUP_HOLDCONN },
	{ MSRP_SETUP_HOLDCONN, 1, MSRP_SETUP_HOLDCONN },
};

/* The offerer once answered: the valid combinations.  An answer without a=setup comes from an
 * RFC 4975 endpoint, which waits for the offerer to connect; it cannot serve a passive offer. */
static const struct offer_row {
	enum msrp_setup offered, answered, ours;
} offer_rows[] = {
	{ MSRP_SETUP_ACTPASS, MSRP_SETUP_ACTIVE, MSRP_SETUP_PASSIVE },
	{ MSRP_SETUP_ACTPASS, MSRP_SETUP_PASSIVE, MSRP_SETUP_ACTIVE },
	{ MSRP_SETUP_ACTPASS, MSRP_SETUP_NONE, MSRP_SETUP_ACTIVE },
	{ MSRP_SETUP_ACTPASS, MSRP_SETUP_HOLDCONN, MSRP_SETUP_HOLDCONN },
	{ MSRP_SETUP_ACTIVE, MSRP_SETUP_PASSIVE, MSRP_SETUP_ACTIVE },
	{ MSRP_SETUP_ACTIVE, MSRP_SETUP_NONE, MSRP_SETUP_ACTIVE },
	{ MSRP_SETUP_PASSIVE, MSRP_SETUP_ACTIVE, MSRP_SETUP_PASSIVE },
	{ MSRP_SETUP_NONE, MSRP_SETUP_PASSIVE, MSRP_SETUP_ACTIVE },
	{ MSRP_SETUP_NONE, MSRP_SETUP_NONE, MSRP_SETUP_ACTIVE },
	{ MSRP_SETUP_HOLDCONN, MSRP_SETUP_HOLDCONN, MSRP_SETUP_HOLDCONN },
};

/* Sofia's sdp_mode_t (bit 0 send, bit 1 receive) -> direction attribute, and the answer's. */
static const struct direction_row {
	const char *name, *answer;
} direction_rows[] = {
	[0] = { "inactive", "inactive" },
	[1] = { "sendonly", "recvonly" },
	[2] = { "recvonly", "sendonly" },
	[3] = { "sendrecv", "sendrecv" },
};

/* RFC 8122 section 5 hash functions: the textual name, OpenSSL's name, the digest length.  MD2
 * and MD5 are absent on purpose: RFC 8122 forbids them. */
static const struct hash_row {
	const char *name, *openssl;
	size_t len;
} hash_rows[] = {
	[MSRP_HASH_SHA1] = { "sha-1", "SHA1", 20 },
	[MSRP_HASH_SHA224] = { "sha-224", "SHA224", 28 },
	[MSRP_HASH_SHA256] = { "sha-256", "SHA256", 32 },
	[MSRP_HASH_SHA384] = { "sha-384", "SHA384", 48 },
	[MSRP_HASH_SHA512] = { "sha-512", "SHA512", 64 },
};

#define NELEMS(a) (sizeof(a) / sizeof((a)[0]))

const char *msrp_sdp_setup_name(enum msrp_setup s)
{
	return (unsigned)s < NSETUP ? setup_names[s] : NULL;
}

int msrp_sdp_setup_parse(const char *value)
{
	if (!value)
		return MSRP_SETUP_NONE;
	for (size_t i = 0; i < NSETUP; i++)
		if (setup_names[i] && strcasecmp(setup_names[i], value) == 0)
			return (int)i;
	return -1;
}

enum msrp_setup msrp_sdp_answer_setup(enum msrp_setup offered, int prefer_active)
{
	for (size_t i = 0; i < NELEMS(answer_rows); i++)
		if (answer_rows[i].offered == offered && answer_rows[i].prefer_active == !!prefer_active)
			return answer_rows[i].answer;
	return MSRP_SETUP_PASSIVE;	/* offered is out of range: answer as RFC 4975's answerer */
}

int msrp_sdp_answer_setup_row(size_t i, enum msrp_setup *offered, int *prefer_active,
			      enum msrp_setup *answer)
{
	if (i >= NELEMS(answer_rows))
		return -1;
	*offered = answer_rows[i].offered;
	*prefer_active = answer_rows[i].prefer_active;
	*answer = answer_rows[i].answer;
	return 0;
}

int msrp_sdp_offer_result(enum msrp_setup offered, enum msrp_setup answered,
			  enum msrp_setup *ours)
{
	for (size_t i = 0; i < NELEMS(offer_rows); i++)
		if (offer_rows[i].offered == offered && offer_rows[i].answered == answered) {
			*ours = offer_rows[i].ours;
			return 0;
		}
	return -1;
}

int msrp_sdp_offer_result_row(size_t i, enum msrp_setup *offered, enum msrp_setup *answered,
			      enum msrp_setup *ours)
{
	if (i >= NELEMS(offer_rows))
		return -1;
	*offered = offer_rows[i].offered;
	*answered = offer_rows[i].answered;
	*ours = offer_rows[i].ours;
	return 0;
}

const char *msrp_sdp_answer_direction(const char *offered)
{
	for (size_t i = 0; offered && i < NELEMS(direction_rows); i++)
		if (strcasecmp(direction_rows[i].name, offered) == 0)
			return direction_rows[i].answer;
	return NULL;
}

/* ---- certificate fingerprints ----------------------------------------------------------------- */

const char *msrp_sdp_hash_name(enum msrp_hash h)
{
	return (unsigned)h < NELEMS(hash_rows) ? hash_rows[h].name : NULL;
}

const char *msrp_sdp_hash_openssl_name(enum msrp_hash h)
{
	return (unsigned)h < NELEMS(hash_rows) ? hash_rows[h].openssl : NULL;
}

size_t msrp_sdp_hash_len(enum msrp_hash h)
{
	return (unsigned)h < NELEMS(hash_rows) ? hash_rows[h].len : 0;
}

int msrp_sdp_fingerprint_strongest(const struct msrp_sdp_fingerprint *fp, size_t n)
{
	int best = -1;

	for (size_t i = 0; i < n; i++)
		if ((int)fp[i].hash > best)
			best = (int)fp[i].hash;
	return best;
}

int msrp_sdp_fingerprint_match(const struct msrp_sdp_fingerprint *fp, size_t n, enum msrp_hash hash,
			       const unsigned char *digest, size_t len)
{
	for (size_t i = 0; i < n; i++)
		if (fp[i].hash == hash && fp[i].len == len && memcmp(fp[i].digest, digest, len) == 0)
			return 1;
	return 0;
}

int msrp_sdp_fingerprint_format(enum msrp_hash hash, const unsigned char *digest, size_t len,
				char *buf, size_t buflen)
{
	static const char hex[] = "0123456789ABCDEF";
	const char *name = msrp_sdp_hash_name(hash);
	size_t n;

	if (buflen)
		buf[0] = '\0';
	if (!name || len != msrp_sdp_hash_len(hash) || buflen < strlen(name) + 1 + 3 * len)
		return -1;
	n = (size_t)snprintf(buf, buflen, "%s ", name);
	for (size_t i = 0; i < len; i++) {
		if (i)
			buf[n++] = ':';
		buf[n++] = hex[digest[i] >> 4];
		buf[n++] = hex[digest[i] & 15];
	}
	buf[n] = '\0';
	return (int)n;
}

/* ---- media types ------------------------------------------------------------------------------ */

/* RFC 6838 restricted-name characters: no '*', so a wildcard is always a whole part. */
static int is_name_char(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       (c != '\0' && strchr("!#$&-^_.+", c) != NULL);
}

static size_t name_span(const char *s, size_t n)
{
	size_t i = 0;

	while (i < n && is_name_char((unsigned char)s[i]))
		i++;
	return i;
}

/* A media type range in s[0..n): "*", "type/ *" or "type/subtype".  On success sets the length
 * of the type part (0 for "*") and whether the subtype is a wildcard. */
static int range_check(const char *s, size_t n, size_t *tlen, int *subwild)
{
	size_t t, st;

	if (n == 1 && s[0] == '*') {
		*tlen = 0;
		*subwild = 1;
		return 0;
	}
	t = name_span(s, n);
	if (t == 0 || t >= n || s[t] != '/')
		return -1;
	if (n - t - 1 == 1 && s[t + 1] == '*') {
		*tlen = t;
		*subwild = 1;
		return 0;
	}
	st = name_span(s + t + 1, n - t - 1);
	if (st == 0 || st != n - t - 1)
		return -1;
	*tlen = t;
	*subwild = 0;
	return 0;
}

/* The narrower of two valid ranges when they overlap, else NULL. */
static const char *range_meet(const char *a, const char *b)
{
	size_t at, bt;
	int aw, bw;

	if (range_check(a, strlen(a), &at, &aw) < 0 || range_check(b, strlen(b), &bt, &bw) < 0)
		return NULL;
	if (at == 0)
		return b;
	if (bt == 0)
		return a;
	if (at != bt || strncasecmp(a, b, at) != 0)
		return NULL;
	if (aw)
		return b;
	if (bw)
		return a;
	return strcasecmp(a + at, b + bt) == 0 ? a : NULL;
}

int msrp_sdp_type_matches(const char *range, const char *content_type)
{
	size_t n, rt, ct;
	int rw, cw;

	if (!range || !content_type)
		return 0;
	while (*content_type == ' ' || *content_type == '\t')
		content_type++;
	n = strcspn(content_type, ";");
	while (n > 0 && (content_type[n - 1] == ' ' || content_type[n - 1] == '\t'))
		n--;
	if (range_check(range, strlen(range), &rt, &rw) < 0 ||
	    range_check(content_type, n, &ct, &cw) < 0 || cw)
		return 0;	/* a Content-Type is one concrete type */
	if (rt == 0)
		return 1;
	if (rt != ct || strncasecmp(range, content_type, rt) != 0)
		return 0;
	return rw || (strlen(range) - rt == n - ct &&
		      strncasecmp(range + rt, content_type + ct, n - ct) == 0);
}

int msrp_sdp_type_accepted(char *const *ranges, size_t n, const char *content_type)
{
	for (size_t i = 0; i < n; i++)
		if (msrp_sdp_type_matches(ranges[i], content_type))
			return 1;
	return 0;
}

void msrp_sdp_strv_free(char **v, size_t n)
{
	if (!v)
		return;
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

int msrp_sdp_types_intersect(const char *const *ours, size_t nours, char *const *theirs,
			     size_t ntheirs, char ***out, size_t *nout)
{
	char **v = NULL;
	size_t n = 0;

	for (size_t i = 0; i < nours; i++)
		for (size_t j = 0; j < ntheirs; j++) {
			const char *m = range_meet(ours[i], theirs[j]);
			size_t k;

			if (!m)
				continue;
			for (k = 0; k < n && strcasecmp(v[k], m) != 0; k++)
				;
			if (k < n)
				continue;
			v = gw_xrealloc(v, (n + 1) * sizeof(*v));
			v[n++] = gw_xstrdup(m);
		}
	*out = v;
	*nout = n;
	return n ? 0 : -1;
}

/* ---- parsing ---------------------------------------------------------------------------------- */

/* A one-line reason: anything quoted from the body has its control bytes replaced. */
static void seterr(char *err, size_t errlen, const char *fmt, ...) GW_PRINTF(3, 4);
static void seterr(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (!err || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	for (char *p = err; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = '?';
}

/* Splits a space separated value into a new vector of 1..max words; -1 if empty or too many. */
static int split_words(const char *s, size_t max, char ***out, size_t *nout)
{
	char **v = NULL;
	size_t n = 0;

	*out = NULL;
	*nout = 0;
	for (;;) {
		size_t w;

		while (*s == ' ' || *s == '\t')
			s++;
		if (!*s)
			break;
		w = strcspn(s, " \t");
		if (n == max) {
			msrp_sdp_strv_free(v, n);
			return -1;
		}
		v = gw_xrealloc(v, (n + 1) * sizeof(*v));
		v[n++] = gw_xstrndup(s, w);
		s += w;
	}
	if (n == 0)
		return -1;
	*out = v;
	*nout = n;
	return 0;
}

static int is_alnum(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

static int is_hex(unsigned char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static int is_unreserved(unsigned char c)
{
	return is_alnum(c) || c == '-' || c == '.' || c == '_' || c == '~';
}

static int is_sub_delim(unsigned char c)
{
	return c != '\0' && strchr("!$&'()*+,;=", c) != NULL;
}

/* An MSRP URI (RFC 4975 section 9): scheme "://" authority ["/" session-id] ";" transport
 * *(";" param), the scheme msrps exactly when secure; the peer's own (last) URI needs a
 * session-id.  Returns NULL or the reason it is not one. */
static const char *uri_check(const char *s, int secure, int need_session)
{
	size_t i, host;

	if (strncasecmp(s, "msrps://", 8) == 0) {
		if (!secure)
			return "msrps: URI in a TCP/MSRP stream";
		s += 8;
	} else if (strncasecmp(s, "msrp://", 7) == 0) {
		if (secure)
			return "msrp: URI in a TCP/TLS/MSRP stream";
		s += 7;
	} else {
		return "path URI is not an MSRP URI";
	}
	/* userinfo: everything up to an '@' before the end of the authority */
	i = strcspn(s, "/;@");
	if (s[i] == '@') {
		for (size_t k = 0; k < i; k++)
			if (!is_unreserved((unsigned char)s[k]) && !is_sub_delim((unsigned char)s[k]) &&
			    s[k] != ':' && s[k] != '%')
				return "bad userinfo in MSRP URI";
		s += i + 1;
	}
	if (*s == '[') {
		for (i = 1; is_hex((unsigned char)s[i]) || s[i] == ':' || s[i] == '.'; i++)
			;
		if (s[i] != ']' || i < 3)
			return "bad IPv6 host in MSRP URI";
		s += i + 1;
	} else {
		for (host = 0; is_alnum((unsigned char)s[host]) || s[host] == '-' || s[host] == '.';
		     host++)
			;
		if (host == 0)
			return "no host in MSRP URI";
		s += host;
	}
	if (*s == ':') {
		unsigned long port = 0;

		for (i = 1; s[i] >= '0' && s[i] <= '9' && i <= 5; i++)
			port = port * 10 + (unsigned long)(s[i] - '0');
		if (i == 1 || port > 65535 || (s[i] >= '0' && s[i] <= '9'))
			return "bad port in MSRP URI";
		s += i;
	}
	if (*s == '/') {
		for (i = 1; is_unreserved((unsigned char)s[i]) || s[i] == '+' || s[i] == '=' ||
			    s[i] == '/'; i++)
			;
		if (i == 1)
			return "empty session-id in MSRP URI";
		s += i;
	} else if (need_session) {
		return "no session-id in the peer's MSRP URI";
	}
	if (*s != ';')
		return "no transport in MSRP URI";
	while (*s == ';') {
		for (i = 1; is_unreserved((unsigned char)s[i]) || s[i] == '=' || s[i] == '%' ||
			    s[i] == '+'; i++)
			;
		if (i == 1)
			return "empty parameter in MSRP URI";
		s += i;
	}
	return *s ? "bad character in MSRP URI" : NULL;
}

/* Checks a=path and returns its URIs joined by single spaces in *joined (new string), or the
 * reason it is refused. */
static const char *path_check(const char *value, int secure, char **joined)
{
	char **v;
	size_t n, total = 0;
	const char *why = NULL;

	*joined = NULL;
	if (split_words(value, MSRP_SDP_MAX_PATH, &v, &n) < 0)
		return "empty a=path or too many URIs";
	for (size_t i = 0; i < n && !why; i++) {
		why = uri_check(v[i], secure, i + 1 == n);
		total += strlen(v[i]) + 1;
	}
	if (!why) {
		*joined = gw_xmalloc(total);
		(*joined)[0] = '\0';
		for (size_t i = 0; i < n; i++) {
			if (i)
				strcat(*joined, " ");
			strcat(*joined, v[i]);
		}
	}
	msrp_sdp_strv_free(v, n);
	return why;
}

static int types_parse(const char *value, char ***out, size_t *nout)
{
	size_t tlen;
	int wild;

	if (split_words(value, MSRP_SDP_MAX_TYPES, out, nout) < 0)
		return -1;
	for (size_t i = 0; i < *nout; i++)
		if (range_check((*out)[i], strlen((*out)[i]), &tlen, &wild) < 0) {
			msrp_sdp_strv_free(*out, *nout);
			*out = NULL;
			*nout = 0;
			return -1;
		}
	return 0;
}

static int max_size_parse(const char *s, unsigned long long *out)
{
	unsigned long long v = 0;

	if (!*s)
		return -1;
	for (; *s; s++) {
		unsigned d = (unsigned)(*s - '0');

		if (*s < '0' || *s > '9' || v > (~0ULL - d) / 10)
			return -1;
		v = v * 10 + d;
	}
	*out = v;
	return 0;
}

/* RFC 4566 token-char: what a fmt in an m= line is made of. */
static int is_sdp_token_char(unsigned char c)
{
	return c == 0x21 || (c >= 0x23 && c <= 0x27) || c == 0x2a || c == 0x2b || c == 0x2d ||
	       c == 0x2e || (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) ||
	       (c >= 0x5e && c <= 0x7e);
}

static int all_token_chars(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!is_sdp_token_char((unsigned char)s[i]))
			return 0;
	return n > 0;
}

static int all_digits(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (s[i] < '0' || s[i] > '9')
			return 0;
	return n > 0;
}

/* Word i of an m= line (after "m="): media, port["/"count], proto (tokens joined by '/'), then
 * one fmt token per word (RFC 4566 section 5.14). */
static int mline_word_ok(size_t i, const char *w, size_t n)
{
	const char *slash = memchr(w, '/', n);

	switch (i) {
	case 0:
		return all_token_chars(w, n);
	case 1:
		if (!slash)
			return all_digits(w, n);
		return all_digits(w, (size_t)(slash - w)) &&
		       all_digits(slash + 1, n - (size_t)(slash - w) - 1);
	case 2:
		for (;;) {
			size_t part = slash ? (size_t)(slash - w) : n;

			if (!all_token_chars(w, part))
				return 0;
			if (!slash)
				return 1;
			w += part + 1;
			n -= part + 1;
			slash = memchr(w, '/', n);
		}
	default:
		return all_token_chars(w, n);
	}
}

/* Sofia-SIP 1.12's sdp_parse() loops allocating without end on some malformed m= lines (a format
 * word starting with ':', '/' or ';', as in "m=message 2855 TCP/MSRP * :", or a port running into
 * the next field, as in "m=message 28e:2855/a"), until memory runs out.  So every m= line is held
 * to the RFC 4566 grammar before Sofia sees the body: media SP port SP proto 1*(SP fmt), words
 * separated by spaces or tabs.  Lines end at CR or LF, as Sofia reads them.  Returns -1 on a bad
 * one. */
static int mlines_check(const char *body, size_t len)
{
	for (size_t at = 0; at < len;) {
		const char *line = body + at;
		size_t n = 0, i = 2, words = 0;

		while (at + n < len && line[n] != '\r' && line[n] != '\n')
			n++;
		at += n + 1;
		if (n < 2 || line[0] != 'm' || line[1] != '=')
			continue;
		while (i < n) {
			size_t w = i;

			while (w < n && line[w] != ' ' && line[w] != '\t')
				w++;
			if (w > i && !mline_word_ok(words++, line + i, w - i))
				return -1;
			i = w + 1;
		}
		if (words < 4)
			return -1;
	}
	return 0;
}

static int hex_value(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* One a=fingerprint value (RFC 8122 5: hash-func SP 2UHEX *(":" 2UHEX), hash-func a token):
 * 1 and *out when its hash function is one we check with, 0 when it is well formed but names
 * another (skipped), -1 when malformed or its length is not its hash function's. */
static int fingerprint_parse(const char *v, struct msrp_sdp_fingerprint *out)
{
	size_t name = 0, n = 0;
	const char *p;
	int known = -1;

	while (v[name] && v[name] != ' ')
		if (!is_sdp_token_char((unsigned char)v[name++]))
			return -1;
	if (name == 0 || v[name] != ' ')
		return -1;
	for (size_t i = 0; i < NELEMS(hash_rows); i++)
		if (strlen(hash_rows[i].name) == name && strncasecmp(hash_rows[i].name, v, name) == 0)
			known = (int)i;
	memset(out, 0, sizeof(*out));
	for (p = v + name + 1;; p += 3) {
		int hi = hex_value((unsigned char)p[0]), lo = hi < 0 ? -1 : hex_value((unsigned char)p[1]);

		if (lo < 0 || n == MSRP_SDP_MAX_DIGEST)
			return -1;
		out->digest[n++] = (unsigned char)(hi << 4 | lo);
		if (p[2] == '\0')
			break;
		if (p[2] != ':')
			return -1;
	}
	if (known < 0)
		return 0;
	if (n != hash_rows[known].len)
		return -1;
	out->hash = (enum msrp_hash)known;
	out->len = n;
	return 1;
}

/* The a=fingerprint of a stream: media level, else session level.  Returns NULL, or the reason
 * the stream is refused. */
static const char *fingerprints_read(const sdp_attribute_t *media, const sdp_attribute_t *session,
				     struct msrp_sdp_media *out)
{
	const sdp_attribute_t *list = media;
	size_t seen = 0;

	for (const sdp_attribute_t *a = media; a; a = a->a_next)
		if (a->a_name && strcasecmp(a->a_name, "fingerprint") == 0)
			seen++;
	if (!seen)
		list = session;
	seen = 0;
	for (const sdp_attribute_t *a = list; a; a = a->a_next) {
		struct msrp_sdp_fingerprint fp;
		int r;

		if (!a->a_name || strcasecmp(a->a_name, "fingerprint") != 0)
			continue;
		if (++seen > MSRP_SDP_MAX_FINGERPRINTS)
			return "too many a=fingerprint";
		r = a->a_value ? fingerprint_parse(a->a_value, &fp) : -1;
		if (r < 0)
			return "bad a=fingerprint";
		if (r == 0)
			continue;
		out->fingerprints = gw_xrealloc(out->fingerprints,
						(out->nfingerprints + 1) * sizeof(fp));
		out->fingerprints[out->nfingerprints++] = fp;
	}
	if (seen && !out->nfingerprints)
		return "a=fingerprint with no hash function the gateway checks (sha-1, sha-224, "
		       "sha-256, sha-384, sha-512)";
	return NULL;
}

/* The one attribute named name in list: 0 and *a (NULL when absent), or -1 if it repeats. */
static int attr_one(const sdp_attribute_t *list, const char *name, const sdp_attribute_t **a)
{
	*a = NULL;
	for (; list; list = list->a_next)
		if (list->a_name && strcasecmp(list->a_name, name) == 0) {
			if (*a)
				return -1;
			*a = list;
		}
	return 0;
}

/* "<media> <proto> <fmt>" of an m= line, for rejecting it in an answer. */
static char *mline_skeleton(const sdp_media_t *m)
{
	char pt[16];
	const char *fmt = "*";

	if (m->m_format && m->m_format->l_text) {
		fmt = m->m_format->l_text;
	} else if (m->m_rtpmaps) {
		snprintf(pt, sizeof(pt), "%u", m->m_rtpmaps->rm_pt);
		fmt = pt;
	}
	return gw_xasprintf("%s %s %s", m->m_type_name ? m->m_type_name : "-",
			    m->m_proto_name ? m->m_proto_name : "-", fmt);
}

static int has_star_format(const sdp_media_t *m)
{
	for (const sdp_list_t *l = m->m_format; l; l = l->l_next)
		if (l->l_text && strcmp(l->l_text, "*") == 0)
			return 1;
	return 0;
}

/* One m= line: 0 and the stream in *out, 1 if it is not a message stream at all, or -1 with the
 * reason in why (static string or in whybuf). */
static int media_read(const sdp_session_t *sdp, const sdp_media_t *m, int tls_ok,
		      struct msrp_sdp_media *out, char *whybuf, size_t whylen)
{
	const sdp_attribute_t *path, *types, *wrapped, *maxsize, *setup;
	const sdp_connection_t *c;
	const char *why = NULL;
	int secure, s = MSRP_SETUP_NONE;

	if (!m->m_type_name || strcasecmp(m->m_type_name, "message") != 0)
		return 1;
	if (m->m_proto_name && strcasecmp(m->m_proto_name, "TCP/MSRP") == 0) {
		secure = 0;
	} else if (m->m_proto_name && strcasecmp(m->m_proto_name, "TCP/TLS/MSRP") == 0) {
		if (!tls_ok) {
			seterr(whybuf, whylen, "TCP/TLS/MSRP offered but MSRP over TLS is not enabled");
			return -1;
		}
		secure = 1;
	} else {
		seterr(whybuf, whylen, "unsupported message transport %.40s",
		       m->m_proto_name ? m->m_proto_name : "(none)");
		return -1;
	}
	if (m->m_port == 0 || m->m_rejected) {
		seterr(whybuf, whylen, "message stream has port 0");
		return -1;
	}
	if (m->m_port > 65535) {
		seterr(whybuf, whylen, "message stream port out of range");
		return -1;
	}
	if (!has_star_format(m)) {
		seterr(whybuf, whylen, "message stream format list is not \"*\"");
		return -1;
	}
	if (attr_one(m->m_attributes, "path", &path) < 0) {
		seterr(whybuf, whylen, "several a=path");
		return -1;
	}
	if (!path) {
		seterr(whybuf, whylen, "no a=path");
		return -1;
	}
	if (attr_one(m->m_attributes, "accept-types", &types) < 0 ||
	    attr_one(m->m_attributes, "accept-wrapped-types", &wrapped) < 0 ||
	    attr_one(m->m_attributes, "max-size", &maxsize) < 0 ||
	    attr_one(m->m_attributes, "setup", &setup) < 0) {
		seterr(whybuf, whylen, "a repeated MSRP attribute");
		return -1;
	}
	if (!setup && attr_one(sdp->sdp_attributes, "setup", &setup) < 0) {
		seterr(whybuf, whylen, "several session-level a=setup");
		return -1;
	}
	c = sdp_media_connections(m);
	if (!c || !c->c_address) {
		seterr(whybuf, whylen, "no c= line");
		return -1;
	}

	/* from here on, out holds what is allocated */
	memset(out, 0, sizeof(*out));
	out->secure = secure;
	if (!path->a_value || (why = path_check(path->a_value, secure, &out->path)) != NULL) {
		seterr(whybuf, whylen, "%s", path->a_value ? why : "empty a=path");
		goto fail;
	}
	if (!types) {
		seterr(whybuf, whylen, "no a=accept-types");
		goto fail;
	}
	if (!types->a_value || types_parse(types->a_value, &out->accept_types,
					   &out->naccept_types) < 0) {
		seterr(whybuf, whylen, "bad a=accept-types");
		goto fail;
	}
	if (wrapped && (!wrapped->a_value ||
			types_parse(wrapped->a_value, &out->accept_wrapped_types,
				    &out->naccept_wrapped) < 0)) {
		seterr(whybuf, whylen, "bad a=accept-wrapped-types");
		goto fail;
	}
	if (maxsize && (!maxsize->a_value || max_size_parse(maxsize->a_value, &out->max_size) < 0)) {
		seterr(whybuf, whylen, "bad a=max-size");
		goto fail;
	}
	if (setup && (!setup->a_value || (s = msrp_sdp_setup_parse(setup->a_value)) <= 0)) {
		seterr(whybuf, whylen, "bad a=setup");
		goto fail;
	}
	if (secure && (why = fingerprints_read(m->m_attributes, sdp->sdp_attributes, out)) != NULL) {
		seterr(whybuf, whylen, "%s", why);
		goto fail;
	}
	out->setup = setup ? (enum msrp_setup)s : MSRP_SETUP_NONE;
	out->port = (unsigned)m->m_port;
	out->connection_address = gw_xstrdup(c->c_address);
	out->ip6 = c->c_addrtype == sdp_addr_ip6;
	snprintf(out->direction, sizeof(out->direction), "%s", direction_rows[m->m_mode & 3].name);
	return 0;

fail:
	msrp_sdp_media_clear(out);
	return -1;
}

void msrp_sdp_media_clear(struct msrp_sdp_media *m)
{
	if (!m)
		return;
	free(m->path);
	msrp_sdp_strv_free(m->accept_types, m->naccept_types);
	msrp_sdp_strv_free(m->accept_wrapped_types, m->naccept_wrapped);
	free(m->connection_address);
	free(m->fingerprints);
	msrp_sdp_strv_free(m->mlines, m->nmlines);
	memset(m, 0, sizeof(*m));
}

int msrp_sdp_parse_offer(const char *body, size_t len, int tls_ok, struct msrp_sdp_media *out,
			 unsigned *mline, unsigned *nmlines, char *err, size_t errlen)
{
	sdp_parser_t *p = NULL;
	sdp_session_t *sdp;
	const sdp_media_t *m;
	char why[160] = "";
	size_t n = 0, i;
	int found = 0, r;

	memset(out, 0, sizeof(*out));
	if (mline)
		*mline = 0;
	if (nmlines)
		*nmlines = 0;
	if (!body || len == 0) {
		seterr(err, errlen, "no SDP body");
		return -1;
	}
	if (len > MSRP_SDP_MAX_LEN) {
		seterr(err, errlen, "SDP body longer than %d bytes", MSRP_SDP_MAX_LEN);
		return -1;
	}
	if (memchr(body, '\0', len)) {
		seterr(err, errlen, "SDP body holds a NUL byte");
		return -1;
	}
	if (mlines_check(body, len) < 0) {
		seterr(err, errlen, "not SDP: malformed m= line");
		return -1;
	}
	p = sdp_parse(NULL, body, (issize_t)len, sdp_f_strict);
	sdp = p ? sdp_session(p) : NULL;
	if (!sdp) {
		seterr(err, errlen, "not SDP: %.80s", p ? sdp_parsing_error(p) : "parser failed");
		goto fail;
	}
	for (m = sdp->sdp_media; m; m = m->m_next)
		n++;
	if (n == 0) {
		seterr(err, errlen, "no m= line");
		goto fail;
	}
	if (n > MSRP_SDP_MAX_MLINES) {
		seterr(err, errlen, "more than %d m= lines", MSRP_SDP_MAX_MLINES);
		goto fail;
	}
	for (m = sdp->sdp_media, i = 0; m && !found; m = m->m_next, i++) {
		char buf[sizeof(why)];

		r = media_read(sdp, m, tls_ok, out, buf, sizeof(buf));
		if (r == 0) {
			found = 1;
			out->mline = (unsigned)i;
		} else if (r < 0 && !why[0]) {
			memcpy(why, buf, sizeof(why));
		}
	}
	if (!found) {
		seterr(err, errlen, "%s", why[0] ? why : "no m=message stream");
		goto fail;
	}
	out->mlines = gw_xcalloc(n, sizeof(*out->mlines));
	for (m = sdp->sdp_media; m; m = m->m_next)
		out->mlines[out->nmlines++] = mline_skeleton(m);
	if (mline)
		*mline = out->mline;
	if (nmlines)
		*nmlines = (unsigned)out->nmlines;
	sdp_parser_free(p);
	return 0;

fail:
	msrp_sdp_media_clear(out);
	if (p)
		sdp_parser_free(p);
	return -1;
}

/* ---- writing ---------------------------------------------------------------------------------- */

struct buf {
	char *p;
	size_t len, cap;
};

static void bprintf(struct buf *b, const char *fmt, ...) GW_PRINTF(2, 3);
static void bprintf(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		gw_fatal("msrp_sdp: bad format");
	if (b->len + (size_t)n + 1 > b->cap) {
		b->cap = (b->len + (size_t)n + 1) * 2;
		b->p = gw_xrealloc(b->p, b->cap);
	}
	va_start(ap, fmt);
	vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
}

static void write_list(struct buf *b, const char *name, const char *const *v, size_t n)
{
	if (n == 0)
		return;
	bprintf(b, "a=%s:", name);
	for (size_t i = 0; i < n; i++)
		bprintf(b, "%s%s", i ? " " : "", v[i]);
	bprintf(b, "\r\n");
}

static void write_stream(struct buf *b, const struct msrp_sdp_local *ours, int secure)
{
	const char *setup = msrp_sdp_setup_name(ours->setup);

	bprintf(b, "m=message %u %s *\r\n", ours->port, secure ? "TCP/TLS/MSRP" : "TCP/MSRP");
	bprintf(b, "a=path:%s\r\n", ours->path);
	write_list(b, "accept-types", ours->accept_types, ours->naccept_types);
	write_list(b, "accept-wrapped-types", ours->accept_wrapped_types, ours->naccept_wrapped);
	if (setup)
		bprintf(b, "a=setup:%s\r\n", setup);
	if (ours->fingerprint)
		bprintf(b, "a=fingerprint:%s\r\n", ours->fingerprint);
	if (ours->max_size)
		bprintf(b, "a=max-size:%llu\r\n", ours->max_size);
	if (ours->chatroom)
		bprintf(b, "a=chatroom:%s\r\n", ours->chatroom);
	if (ours->direction)
		bprintf(b, "a=%s\r\n", ours->direction);
}

char *msrp_sdp_build(const struct msrp_sdp_local *ours, const struct msrp_sdp_media *offer,
		     size_t *len)
{
	struct buf b = { NULL, 0, 0 };
	const char *ipv = strchr(ours->addr, ':') ? "IP6" : "IP4";

	bprintf(&b, "v=0\r\no=- %llu %llu IN %s %s\r\ns=-\r\nc=IN %s %s\r\nt=0 0\r\n", ours->sess_id,
		ours->sess_version, ipv, ours->addr, ipv, ours->addr);
	if (!offer) {
		write_stream(&b, ours, ours->secure);
	} else {
		for (size_t i = 0; i < offer->nmlines; i++) {
			const char *sk = offer->mlines[i], *sp = strchr(sk, ' ');

			if (i == offer->mline)
				write_stream(&b, ours, offer->secure);
			else if (sp)
				bprintf(&b, "m=%.*s 0%s\r\n", (int)(sp - sk), sk, sp);
		}
	}
	if (len)
		*len = b.len;
	return b.p;
}
