/* fuzz_cpim.c - libFuzzer harness for the text helpers of mapping/im.c: CPIM parsing, text checks, header-safe text, language tags and Call-IDs. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mapping/map.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void must(int cond)
{
	if (!cond)
		__builtin_trap();
}

static char *xmalloc(size_t n)
{
	char *p = malloc(n ? n : 1);

	must(p != NULL);
	return p;
}

/* ---- map_cpim_parse: spans inside the buffer ------------------------------------------------ */

static void span_inside(struct map_span s, const char *buf, size_t len)
{
	if (!s.p) {
		must(s.n == 0);
		return;
	}
	must(s.p >= buf && s.p <= buf + len && s.n <= (size_t)(buf + len - s.p));
}

static void check_cpim(const uint8_t *data, size_t size)
{
	/* an exact-size copy: AddressSanitizer sees any read past the end */
	char *buf = xmalloc(size);
	struct map_cpim c, again;

	memcpy(buf, data, size);
	if (map_cpim_parse(buf, size, &c) == 0) {
		span_inside(c.from, buf, size);
		span_inside(c.to, buf, size);
		span_inside(c.subject, buf, size);
		span_inside(c.subject_lang, buf, size);
		span_inside(c.datetime, buf, size);
		span_inside(c.content_type, buf, size);
		span_inside(c.charset, buf, size);
		span_inside(c.imdn_message_id, buf, size);
		span_inside(c.imdn_disposition, buf, size);
		span_inside(c.content_disposition, buf, size);
		span_inside(c.content_encoding, buf, size);
		span_inside(c.body, buf, size);
		must(c.content_type.p != NULL && c.body.p != NULL);
		/* the body runs to the end of the input */
		must(c.body.p + c.body.n == buf + size);
		/* a language only ever comes with a subject */
		must(!c.subject_lang.p || c.subject.p);
		/* header values never hold a line end, and are trimmed */
		struct map_span hv[] = { c.from, c.to, c.subject, c.datetime, c.content_type };
		for (size_t i = 0; i < sizeof(hv) / sizeof(hv[0]); i++) {
			if (!hv[i].p)
				continue;
			must(memchr(hv[i].p, '\n', hv[i].n) == NULL);
			if (hv[i].n)
				must(hv[i].p[0] != ' ' && hv[i].p[0] != '\t' &&
				     hv[i].p[hv[i].n - 1] != ' ' && hv[i].p[hv[i].n - 1] != '\t');
		}
		/* deterministic */
		must(map_cpim_parse(buf, size, &again) == 0 && memcmp(&c, &again, sizeof(c)) == 0);
	}
	free(buf);
}

/* ---- map_text_check against an independent reading of RFC 3629 section 4 ------------------ */

/* Returns the length of the UTF-8 sequence at s, or 0; *cp gets the code point. */
static size_t ref_utf8(const unsigned char *s, size_t n, unsigned long *cp)
{
	unsigned char b = s[0];
	unsigned char lo = 0x80, hi = 0xbf;
	size_t len;

	if (b <= 0x7f) {
		*cp = b;
		return 1;
	}
	if (b >= 0xc2 && b <= 0xdf)
		len = 2, *cp = b & 0x1f;
	else if (b >= 0xe0 && b <= 0xef)
		len = 3, *cp = b & 0x0f;
	else if (b >= 0xf0 && b <= 0xf4)
		len = 4, *cp = b & 0x07;
	else
		return 0;
	/* the second byte's range narrows for E0, ED, F0 and F4 */
	if (b == 0xe0)
		lo = 0xa0;
	else if (b == 0xed)
		hi = 0x9f;
	else if (b == 0xf0)
		lo = 0x90;
	else if (b == 0xf4)
		hi = 0x8f;
	if (n < len || s[1] < lo || s[1] > hi)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if (s[i] < 0x80 || s[i] > 0xbf)
			return 0;
		*cp = (*cp << 6) | (s[i] & 0x3f);
	}
	return len;
}

static int ref_text_check(const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;

	for (size_t i = 0; i < len;) {
		unsigned long c;
		size_t n = ref_utf8(p + i, len - i, &c);

		if (!n)
			return MAP_TEXT_EUTF8;
		if (!(c == 0x9 || c == 0xa || c == 0xd || (c >= 0x20 && c <= 0xd7ff) ||
		      (c >= 0xe000 && c <= 0xfffd) || (c >= 0x10000 && c <= 0x10ffff)))
			return MAP_TEXT_ECHAR;
		i += n;
	}
	return 0;
}

/* ---- map_header_text ------------------------------------------------------------------------ */

static void check_header_text(const char *in)
{
	static const size_t sizes[] = { 1, 2, 3, 4, 5, 7, 16, 64 };
	size_t inlen = strlen(in), biglen = inlen + 1;
	int valid = map_text_check(in, inlen) == 0;
	char *full = xmalloc(biglen);
	size_t n = map_header_text(in, full, biglen);

	/* room for everything: nothing is cut */
	must(n < biglen && full[n] == '\0' && strlen(full) == n && n <= inlen);
	for (size_t i = 0; i < n; i++)
		must((unsigned char)full[i] >= 0x20 && full[i] != 0x7f);
	if (n)
		must(full[0] != ' ' && full[n - 1] != ' ');
	if (valid)
		must(map_text_check(full, n) == 0);
	must(map_header_text(in, full, 0) == 0);

	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		/* exact-size heap buffers: AddressSanitizer sees any write past them */
		char *b = xmalloc(sizes[i]);
		size_t m = map_header_text(in, b, sizes[i]);

		must(m < sizes[i] && b[m] == '\0' && strlen(b) == m);
		if (m)
			must(b[0] != ' ' && b[m - 1] != ' ');
		/* always a prefix of the full text */
		must(m <= n && memcmp(b, full, m) == 0);
		if (!valid) {
			/* nothing more is promised for bytes that are not UTF-8 */
		} else if (n < sizes[i]) {
			/* it fits: the same text */
			must(m == n);
		} else {
			/* cut: a prefix of the full text, never splitting a character, and
			 * losing at most the one character that did not fit plus the spaces
			 * before it */
			must(map_text_check(b, m) == 0);
			size_t keep = sizes[i] - 1;
			while (keep > 0 && ((unsigned char)full[keep] & 0xc0) == 0x80)
				keep--;
			while (keep > 0 && full[keep - 1] == ' ')
				keep--;
			must(m == keep);
		}
		free(b);
	}
	free(full);
}

/* ---- map_lang_ok and map_call_id_ok against reference readings of their headers ------------ */

static int is_alpha(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static int is_alnum(char c)
{
	return is_alpha(c) || (c >= '0' && c <= '9');
}

/* alphanumeric subtags of 1..8 separated by single hyphens, first character a letter, at most
 * 35 octets */
static int ref_lang_ok(const char *tag)
{
	size_t n = strlen(tag), sub = 0;

	if (n == 0 || n > 35 || !is_alpha(tag[0]) || tag[n - 1] == '-')
		return 0;
	for (size_t i = 0; i < n; i++) {
		if (tag[i] == '-') {
			if (sub == 0)
				return 0;
			sub = 0;
		} else if (is_alnum(tag[i])) {
			if (++sub > 8)
				return 0;
		} else {
			return 0;
		}
	}
	return 1;
}

/* RFC 3261: callid = word [ "@" word ], 1..128 octets */
static int ref_word(const char *s, size_t n)
{
	if (n == 0)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!is_alnum(s[i]) && !strchr("-.!%*_+`'~()<>:\\\"/[]?{}", s[i]))
			return 0;
	return 1;
}

static int ref_call_id_ok(const char *s)
{
	size_t n = strlen(s);
	const char *at = memchr(s, '@', n);

	if (n == 0 || n > 128)
		return 0;
	if (!at)
		return ref_word(s, n);
	return ref_word(s, (size_t)(at - s)) && ref_word(at + 1, n - (size_t)(at - s) - 1);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *in = xmalloc(size + 1);
	int r;

	check_cpim(data, size);

	r = map_text_check((const char *)data, size);
	must(r == ref_text_check((const char *)data, size));
	/* a valid text stays valid when cut on a character boundary */
	if (r == 0)
		for (size_t i = 0; i <= size; i++)
			if (i == size || ((unsigned char)data[i] & 0xc0) != 0x80)
				must(map_text_check((const char *)data, i) == 0);

	/* the C-string functions see the input up to its first NUL */
	memcpy(in, data, size);
	in[size] = '\0';
	check_header_text(in);
	must(map_lang_ok(in) == ref_lang_ok(in));
	must(map_call_id_ok(in) == ref_call_id_ok(in));
	free(in);
	return 0;
}
