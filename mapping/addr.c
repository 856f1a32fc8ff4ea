/* addr.c - JID <-> SIP URI address mapping (RFC 7247 5): parsing, IDNA, escaping, no allocation. */
#include "addr.h"

#include <limits.h>
#include <stdint.h>
#include <string.h>

/* Limits: each JID part (RFC 7622 section 3), one DNS label and a whole ASCII domain name
 * (RFC 1035 2.3.4, without the root dot). */
#define PART_MAX	1023
#define LABEL_MAX	63
#define DOMAIN_ASCII_MAX 253
#define ACE_PREFIX	"xn--"
#define ACE_LEN		4

/*
 * Output into a caller's buffer.  Once something does not fit, err is set and later writes are
 * dropped, but the caller keeps going: validation errors are found whatever the buffer size, so a
 * malformed address reports EMALFORMED and never ENOSPC.  pos < len holds while err is 0, which
 * leaves room for the NUL.
 */
struct out {
	char	*buf;
	size_t	 len;
	size_t	 pos;
	int	 err;
};

static void
out_init(struct out *o, char *buf, size_t len)
{
	o->buf = buf;
	o->len = len > INT_MAX ? INT_MAX : len;	/* lengths travel back as int */
	o->pos = 0;
	o->err = buf == NULL ? MAP_ADDR_ENOSPC : 0;
}

static void
out_putc(struct out *o, char c)
{
	if (o->err)
		return;
	if (o->pos + 1 >= o->len) {
		o->err = MAP_ADDR_ENOSPC;
		return;
	}
	o->buf[o->pos++] = c;
}

static void
out_put(struct out *o, const char *s, size_t n)
{
	if (o->err || n == 0)
		return;
	if (o->pos + n >= o->len) {	/* as n out_putc(): the last octet never fits */
		o->err = MAP_ADDR_ENOSPC;
		return;
	}
	memcpy(o->buf + o->pos, s, n);
	o->pos += n;
}

static void
out_puts(struct out *o, const char *s)
{
	out_put(o, s, strlen(s));
}

static int
out_finish(struct out *o)
{
	if (o->err)
		return o->err;
	if (o->pos >= o->len)
		return MAP_ADDR_ENOSPC;
	o->buf[o->pos] = '\0';
	return (int)o->pos;
}

/*
 * Character classes of the ASCII octets (RFC 3261 section 25.1, RFC 7622 section 3.3).  Octets
 * outside the table, and every octet >= 0x80, belong to no class.
 */
enum {
	CC_UNRES = 0x01,	/* unreserved: alphanum and the marks - _ . ! ~ * ' ( ) */
	CC_USER = 0x02,		/* & = + $ ,  left unescaped in users we write */
	CC_USER_RX = 0x04,	/* ; ? /  accepted in a user, but escaped when we write one */
	CC_PARAM = 0x08,	/* [ ] / : & + $  param-unreserved */
	CC_HNV = 0x10,		/* [ ] / ? : + $  hnv-unreserved (headers) */
	CC_LDH = 0x20,		/* letter, digit, hyphen: DNS labels */
	CC_HEX = 0x40,		/* hex digit */
	CC_JIDX = 0x80,		/* " & ' / : < > @  never in a localpart */
};

#define ALNUM	(CC_UNRES | CC_LDH)
#define HEXAL	(CC_UNRES | CC_LDH | CC_HEX)

static const unsigned char cclass[256] = {
	['!'] = CC_UNRES, ['"'] = CC_JIDX, ['$'] = CC_USER | CC_PARAM | CC_HNV,
	['&'] = CC_USER | CC_PARAM | CC_JIDX, ['\''] = CC_UNRES | CC_JIDX,
	['('] = CC_UNRES, [')'] = CC_UNRES, ['*'] = CC_UNRES,
	['+'] = CC_USER | CC_PARAM | CC_HNV, [','] = CC_USER, ['-'] = CC_UNRES | CC_LDH,
	['.'] = CC_UNRES, ['/'] = CC_USER_RX | CC_PARAM | CC_HNV | CC_JIDX,
	[':'] = CC_PARAM | CC_HNV | CC_JIDX, [';'] = CC_USER_RX, ['<'] = CC_JIDX, ['='] = CC_USER,
	['>'] = CC_JIDX, ['?'] = CC_USER_RX | CC_HNV, ['@'] = CC_JIDX,
	['['] = CC_PARAM | CC_HNV, [']'] = CC_PARAM | CC_HNV, ['_'] = CC_UNRES, ['~'] = CC_UNRES,
	['0'] = HEXAL, ['1'] = HEXAL, ['2'] = HEXAL, ['3'] = HEXAL, ['4'] = HEXAL,
	['5'] = HEXAL, ['6'] = HEXAL, ['7'] = HEXAL, ['8'] = HEXAL, ['9'] = HEXAL,
	['A'] = HEXAL, ['B'] = HEXAL, ['C'] = HEXAL, ['D'] = HEXAL, ['E'] = HEXAL, ['F'] = HEXAL,
	['G'] = ALNUM, ['H'] = ALNUM, ['I'] = ALNUM, ['J'] = ALNUM, ['K'] = ALNUM, ['L'] = ALNUM,
	['M'] = ALNUM, ['N'] = ALNUM, ['O'] = ALNUM, ['P'] = ALNUM, ['Q'] = ALNUM, ['R'] = ALNUM,
	['S'] = ALNUM, ['T'] = ALNUM, ['U'] = ALNUM, ['V'] = ALNUM, ['W'] = ALNUM, ['X'] = ALNUM,
	['Y'] = ALNUM, ['Z'] = ALNUM,
	['a'] = HEXAL, ['b'] = HEXAL, ['c'] = HEXAL, ['d'] = HEXAL, ['e'] = HEXAL, ['f'] = HEXAL,
	['g'] = ALNUM, ['h'] = ALNUM, ['i'] = ALNUM, ['j'] = ALNUM, ['k'] = ALNUM, ['l'] = ALNUM,
	['m'] = ALNUM, ['n'] = ALNUM, ['o'] = ALNUM, ['p'] = ALNUM, ['q'] = ALNUM, ['r'] = ALNUM,
	['s'] = ALNUM, ['t'] = ALNUM, ['u'] = ALNUM, ['v'] = ALNUM, ['w'] = ALNUM, ['x'] = ALNUM,
	['y'] = ALNUM, ['z'] = ALNUM,
};

/* What may appear unescaped in what we write, and in what we accept. */
#define ALLOW_USER_OUT	(CC_UNRES | CC_USER)
#define ALLOW_USER_IN	(CC_UNRES | CC_USER | CC_USER_RX)
#define ALLOW_PASSWORD	(CC_UNRES | CC_USER)
#define ALLOW_PARAM	(CC_UNRES | CC_PARAM)
#define ALLOW_HEADER	(CC_UNRES | CC_HNV)

static int
cc(char c, unsigned mask)
{
	return (cclass[(unsigned char)c] & mask) != 0;
}

static char
lower(char c)
{
	return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

static int
hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = lower(c);
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* Case-insensitive ASCII comparison of s (n octets) with the NUL-terminated lower-case word. */
static int
word_eq(const char *s, size_t n, const char *word)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (word[i] == '\0' || lower(s[i]) != word[i])
			return 0;
	return word[n] == '\0';
}

static void
dec_put(unsigned v, struct out *o)
{
	char d[10];
	size_t n = 0;

	do {
		d[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v > 0);
	while (n > 0)
		out_putc(o, d[--n]);
}

/* ---- Unicode ---------------------------------------------------------------------------- */

/*
 * Decodes the UTF-8 sequence at s[*i] (n octets in all).  Strict: no overlong forms, no
 * surrogates, nothing above U+10FFFF, no truncated or stray continuation octets.
 */
static int
utf8_decode(const char *s, size_t n, size_t *i, uint32_t *cp)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t k = *i, more, j;
	uint32_t c = u[k], min;

	if (c < 0x80) {
		*cp = c;
		*i = k + 1;
		return 0;
	}
	if (c >= 0xc2 && c <= 0xdf) {
		more = 1;
		c &= 0x1f;
		min = 0x80;
	} else if (c >= 0xe0 && c <= 0xef) {
		more = 2;
		c &= 0x0f;
		min = 0x800;
	} else if (c >= 0xf0 && c <= 0xf4) {
		more = 3;
		c &= 0x07;
		min = 0x10000;
	} else
		return -1;
	if (n - k - 1 < more)
		return -1;
	for (j = 1; j <= more; j++) {
		if ((u[k + j] & 0xc0) != 0x80)
			return -1;
		c = c << 6 | (u[k + j] & 0x3f);
	}
	if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
		return -1;
	*cp = c;
	*i = k + 1 + more;
	return 0;
}

/* cp is a valid scalar value (callers check). */
static void
utf8_put(uint32_t cp, struct out *o)
{
	if (cp < 0x80) {
		out_putc(o, (char)cp);
	} else if (cp < 0x800) {
		out_putc(o, (char)(0xc0 | cp >> 6));
		out_putc(o, (char)(0x80 | (cp & 0x3f)));
	} else if (cp < 0x10000) {
		out_putc(o, (char)(0xe0 | cp >> 12));
		out_putc(o, (char)(0x80 | (cp >> 6 & 0x3f)));
		out_putc(o, (char)(0x80 | (cp & 0x3f)));
	} else {
		out_putc(o, (char)(0xf0 | cp >> 18));
		out_putc(o, (char)(0x80 | (cp >> 12 & 0x3f)));
		out_putc(o, (char)(0x80 | (cp >> 6 & 0x3f)));
		out_putc(o, (char)(0x80 | (cp & 0x3f)));
	}
}

/* C0, DEL and C1 (general category Cc): never in any part of a JID (PRECIS). */
static int
cp_control(uint32_t c)
{
	return c < 0x20 || (c >= 0x7f && c <= 0x9f);
}

/* General category Zs: no localpart or domain label may hold a space (PRECIS IdentifierClass). */
static int
cp_space(uint32_t c)
{
	return c == 0x20 || c == 0xa0 || c == 0x1680 || (c >= 0x2000 && c <= 0x200a) ||
	    c == 0x202f || c == 0x205f || c == 0x3000;
}

/* Full stops other than U+002E that some software treats as label separators (RFC 3490 3.1):
 * refused inside a label, so one name cannot mean two things. */
static int
cp_dotlike(uint32_t c)
{
	return c == 0x3002 || c == 0xff0e || c == 0xff61;
}

/*
 * Checks s (n octets) is UTF-8 and contains no code point refused by the flags.  Used for decoded
 * percent-escapes and for JID parts.
 */
enum { TEXT_NO_C0 = 1, TEXT_NO_CC = 2, TEXT_NO_ZS = 4, TEXT_NO_JIDX = 8 };

static int
text_check(const char *s, size_t n, unsigned flags)
{
	size_t i = 0;
	uint32_t c;

	while (i < n) {
		if (utf8_decode(s, n, &i, &c) < 0)
			return -1;
		if ((flags & TEXT_NO_C0) && (c < 0x20 || c == 0x7f))
			return -1;
		if ((flags & TEXT_NO_CC) && cp_control(c))
			return -1;
		if ((flags & TEXT_NO_ZS) && cp_space(c))
			return -1;
		if ((flags & TEXT_NO_JIDX) && c < 0x80 && cc((char)c, CC_JIDX))
			return -1;
	}
	return 0;
}

/* RFC 7622 3.3 as far as it goes without the PRECIS tables (the XMPP server applies those). */
static int
localpart_check(const char *s, size_t n)
{
	if (n == 0 || n > PART_MAX)
		return -1;
	return text_check(s, n, TEXT_NO_CC | TEXT_NO_ZS | TEXT_NO_JIDX);
}

/*
 * Whether the XMPP server keeps the localpart s (n octets of UTF-8) exactly as it is.  Servers
 * prepare every JID they route (stringprep nodeprep, RFC 6122, in Prosody and ejabberd; PRECIS
 * UsernameCaseMapped, RFC 8265, in newer ones): case folding, NFKC, and the removal of
 * invisible characters.  A localpart they would change names someone else: sip:BOB@, a full
 * width sip:ｂｏｂ@ and sip:bo%E2%80%8Bb@ (a zero-width space) would all become bob, and a
 * Kelvin sign + "im" becomes kim.  Without the Unicode tables this is decided conservatively:
 * ASCII other than the capital letters, and the lower-case letters of the scripts listed
 * below, which have no compatibility decomposition, are in NFC, and fold to themselves under
 * both schemes.  Everything else is refused, so the mapping is one-to-one (RFC 7247 section 5).
 */
static const struct {
	uint32_t first, last;
	unsigned step;			/* 1: every code point; 2: every other one, from first */
} stable_ranges[] = {
	{ 0x00e0, 0x00f6, 1 },		/* à..ö (not ß: nodeprep folds it to "ss") */
	{ 0x00f8, 0x00ff, 1 },		/* ø..ÿ */
	{ 0x0101, 0x012f, 2 },		/* ā ă ą ... į */
	{ 0x0131, 0x0131, 1 },		/* ı */
	{ 0x0135, 0x0137, 2 },		/* ĵ ķ (not ĳ: NFKC makes it "ij") */
	{ 0x0138, 0x0138, 1 },		/* ĸ */
	{ 0x013a, 0x013e, 2 },		/* ĺ ļ ľ (not ŀ: NFKC makes it "l·") */
	{ 0x0142, 0x0148, 2 },		/* ł ń ņ ň (not ŉ: NFKC makes it "ʼn") */
	{ 0x014b, 0x0177, 2 },		/* ŋ ō ... ŷ */
	{ 0x017a, 0x017e, 2 },		/* ź ż ž (not ſ: NFKC makes it "s") */
	{ 0x03ac, 0x03af, 1 },		/* ά έ ή ί (not ΰ: folded into three code points) */
	{ 0x03b1, 0x03c1, 1 },		/* α..ρ (not ς: it folds to σ) */
	{ 0x03c3, 0x03ce, 1 },		/* σ..ώ */
	{ 0x0430, 0x045f, 1 },		/* а..я ѐ..џ */
	{ 0x3041, 0x3096, 1 },		/* hiragana */
	{ 0x30a1, 0x30fa, 1 },		/* katakana */
	{ 0x30fc, 0x30fc, 1 },		/* ー */
	{ 0x3400, 0x4dbf, 1 },		/* CJK unified ideographs extension A */
	{ 0x4e00, 0x9fff, 1 },		/* CJK unified ideographs */
	{ 0xac00, 0xd7a3, 1 },		/* Hangul syllables */
};

static int
localpart_stable(const char *s, size_t n)
{
	size_t i = 0, k;
	uint32_t c;

	while (i < n) {
		if (utf8_decode(s, n, &i, &c) < 0)
			return -1;
		if (c < 0x80) {
			if (c >= 'A' && c <= 'Z')
				return -1;
			continue;
		}
		for (k = 0; k < sizeof(stable_ranges) / sizeof(stable_ranges[0]); k++)
			if (c >= stable_ranges[k].first && c <= stable_ranges[k].last &&
			    (c - stable_ranges[k].first) % stable_ranges[k].step == 0)
				break;
		if (k == sizeof(stable_ranges) / sizeof(stable_ranges[0]))
			return -1;
	}
	return 0;
}

/* RFC 7622 3.4: OpaqueString, so spaces are fine but controls are not. */
static int
resource_check(const char *s, size_t n)
{
	if (n == 0 || n > PART_MAX)
		return -1;
	return text_check(s, n, TEXT_NO_CC);
}

/* ---- Punycode (RFC 3492) ------------------------------------------------------------------ */

enum {
	PUNY_BASE = 36,
	PUNY_TMIN = 1,
	PUNY_TMAX = 26,
	PUNY_SKEW = 38,
	PUNY_DAMP = 700,
	PUNY_INITIAL_BIAS = 72,
	PUNY_INITIAL_N = 0x80,
};

static uint32_t
puny_adapt(uint32_t delta, uint32_t numpoints, int first)
{
	uint32_t k = 0;

	delta = first ? delta / PUNY_DAMP : delta / 2;
	delta += delta / numpoints;
	while (delta > ((PUNY_BASE - PUNY_TMIN) * PUNY_TMAX) / 2) {
		delta /= PUNY_BASE - PUNY_TMIN;
		k += PUNY_BASE;
	}
	return k + (PUNY_BASE - PUNY_TMIN + 1) * delta / (delta + PUNY_SKEW);
}

static uint32_t
puny_threshold(uint32_t k, uint32_t bias)
{
	if (k <= bias)
		return PUNY_TMIN;
	if (k >= bias + PUNY_TMAX)
		return PUNY_TMAX;
	return k - bias;
}

/* Lower-case digits only: the A-labels we write are all lower case. */
static char
puny_digit(uint32_t d)
{
	return (char)(d < 26 ? 'a' + d : '0' + d - 26);
}

static uint32_t
puny_value(char c)
{
	if (c >= '0' && c <= '9')
		return (uint32_t)(c - '0' + 26);
	c = lower(c);
	if (c >= 'a' && c <= 'z')
		return (uint32_t)(c - 'a');
	return PUNY_BASE;
}

/*
 * RFC 3492 6.3.  Encodes ncp code points into dst (at most cap octets, no NUL).  Returns the
 * length, or -1 on arithmetic overflow or when the result would be longer than cap.
 */
static int
puny_encode(const uint32_t *cp, size_t ncp, char *dst, size_t cap)
{
	uint32_t n = PUNY_INITIAL_N, delta = 0, bias = PUNY_INITIAL_BIAS, m, q, k, t, h1;
	size_t h, b, j, o = 0;

	for (j = 0; j < ncp; j++) {
		if (cp[j] >= 0x80)
			continue;
		if (o == cap)
			return -1;
		dst[o++] = (char)cp[j];
	}
	h = b = o;
	if (b > 0) {
		if (o == cap)
			return -1;
		dst[o++] = '-';
	}
	while (h < ncp) {
		m = UINT32_MAX;
		for (j = 0; j < ncp; j++)
			if (cp[j] >= n && cp[j] < m)
				m = cp[j];
		h1 = (uint32_t)h + 1;
		if (m - n > (UINT32_MAX - delta) / h1)
			return -1;
		delta += (m - n) * h1;
		n = m;
		for (j = 0; j < ncp; j++) {
			if (cp[j] < n && ++delta == 0)
				return -1;
			if (cp[j] != n)
				continue;
			for (q = delta, k = PUNY_BASE;; k += PUNY_BASE) {
				t = puny_threshold(k, bias);
				if (q < t)
					break;
				if (o == cap)
					return -1;
				dst[o++] = puny_digit(t + (q - t) % (PUNY_BASE - t));
				q = (q - t) / (PUNY_BASE - t);
			}
			if (o == cap)
				return -1;
			dst[o++] = puny_digit(q);
			bias = puny_adapt(delta, (uint32_t)h + 1, h == b);
			delta = 0;
			h++;
		}
		if (++delta == 0)
			return -1;
		n++;
	}
	return (int)o;
}

/*
 * RFC 3492 6.2.  Decodes src (n octets) into at most cap code points.  Returns the count, or -1 on
 * a bad digit, overflow, or more than cap code points.
 */
static int
puny_decode(const char *src, size_t n, uint32_t *cp, size_t cap)
{
	uint32_t cn = PUNY_INITIAL_N, i = 0, bias = PUNY_INITIAL_BIAS, oldi, w, k, t, digit, len1;
	size_t b = 0, in, j, out = 0;

	for (j = 0; j < n; j++)
		if (src[j] == '-')
			b = j;
	for (j = 0; j < b; j++) {
		if (out == cap || (unsigned char)src[j] >= 0x80)
			return -1;
		cp[out++] = (unsigned char)src[j];
	}
	/* A delimiter at position 0 copied nothing and is therefore read as a (bad) digit. */
	in = b > 0 ? b + 1 : 0;
	while (in < n) {
		for (oldi = i, w = 1, k = PUNY_BASE;; k += PUNY_BASE) {
			if (in >= n)
				return -1;
			digit = puny_value(src[in++]);
			if (digit >= PUNY_BASE)
				return -1;
			if (digit > (UINT32_MAX - i) / w)
				return -1;
			i += digit * w;
			t = puny_threshold(k, bias);
			if (digit < t)
				break;
			if (w > UINT32_MAX / (PUNY_BASE - t))
				return -1;
			w *= PUNY_BASE - t;
		}
		len1 = (uint32_t)out + 1;
		bias = puny_adapt(i - oldi, len1, oldi == 0);
		if (i / len1 > UINT32_MAX - cn)
			return -1;
		cn += i / len1;
		i %= len1;
		if (cn < 0x80 || out == cap)
			return -1;
		memmove(cp + i + 1, cp + i, (out - i) * sizeof(*cp));
		cp[i++] = cn;
		out++;
	}
	return (int)out;
}

/* ---- IDNA (RFC 5890/5891 without the code point tables and NFC) ---------------------------- */

/*
 * The U-label rules we can check without IDNA2008 tables (RFC 5891 4.2.3, 5.4): ASCII code points
 * only LDH in lower case, no control, space or full-stop lookalike, no leading or trailing hyphen,
 * no "--" in positions 3 and 4, and at least one non-ASCII code point (else it is an LDH label).
 */
static int
ulabel_check(const uint32_t *cp, size_t n)
{
	size_t i;
	int nonascii = 0;

	if (n == 0 || cp[0] == '-' || cp[n - 1] == '-')
		return -1;
	if (n >= 4 && cp[2] == '-' && cp[3] == '-')
		return -1;
	for (i = 0; i < n; i++) {
		if (cp[i] < 0x80) {
			if (!cc((char)cp[i], CC_LDH) || (cp[i] >= 'A' && cp[i] <= 'Z'))
				return -1;
			continue;
		}
		nonascii = 1;
		if (cp[i] > 0x10ffff || (cp[i] >= 0xd800 && cp[i] <= 0xdfff) || cp_control(cp[i]) ||
		    cp_space(cp[i]) || cp_dotlike(cp[i]))
			return -1;
	}
	return nonascii ? 0 : -1;
}

/*
 * One label (n octets, no dot) in canonical form: the A-label when ascii is set, else the U-label;
 * ASCII letters in lower case either way.  Adds the label's ASCII length to *alen.  An "xn--" label
 * must decode to a valid U-label that encodes back to the same octets, so each name has exactly one
 * ASCII and one Unicode spelling.
 */
static int
label_canon(const char *s, size_t n, int ascii, struct out *o, size_t *alen)
{
	uint32_t cp[LABEL_MAX + 1], c;
	char low[LABEL_MAX], ace[LABEL_MAX];
	size_t i, ncp = 0;
	int nonascii = 0, plen;

	for (i = 0; i < n; i++)
		if ((unsigned char)s[i] >= 0x80)
			nonascii = 1;
	if (!nonascii) {
		if (n == 0 || n > LABEL_MAX)
			return MAP_ADDR_EMALFORMED;
		for (i = 0; i < n; i++) {
			if (!cc(s[i], CC_LDH))
				return MAP_ADDR_EMALFORMED;
			low[i] = lower(s[i]);
		}
		if (low[0] == '-' || low[n - 1] == '-')
			return MAP_ADDR_EMALFORMED;
		*alen += n;
		if (n < ACE_LEN || memcmp(low, ACE_PREFIX, ACE_LEN) != 0) {
			out_put(o, low, n);
			return 0;
		}
		plen = puny_decode(low + ACE_LEN, n - ACE_LEN, cp, LABEL_MAX);
		if (plen < 0 || ulabel_check(cp, (size_t)plen) < 0)
			return MAP_ADDR_EMALFORMED;
		ncp = (size_t)plen;
		plen = puny_encode(cp, ncp, ace, LABEL_MAX - ACE_LEN);
		if (plen < 0 || (size_t)plen != n - ACE_LEN ||
		    memcmp(ace, low + ACE_LEN, n - ACE_LEN) != 0)
			return MAP_ADDR_EMALFORMED;
		if (ascii)
			out_put(o, low, n);
		else
			for (i = 0; i < ncp; i++)
				utf8_put(cp[i], o);
		return 0;
	}

	/* A U-label: every code point costs at least one octet of the 63-octet A-label. */
	for (i = 0; i < n;) {
		if (ncp == LABEL_MAX || utf8_decode(s, n, &i, &c) < 0)
			return MAP_ADDR_EMALFORMED;
		cp[ncp++] = c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c;
	}
	if (ulabel_check(cp, ncp) < 0)
		return MAP_ADDR_EMALFORMED;
	plen = puny_encode(cp, ncp, ace, LABEL_MAX - ACE_LEN);
	if (plen < 0)
		return MAP_ADDR_EMALFORMED;
	*alen += ACE_LEN + (size_t)plen;
	if (ascii) {
		out_puts(o, ACE_PREFIX);
		out_put(o, ace, (size_t)plen);
	} else
		for (i = 0; i < ncp; i++)
			utf8_put(cp[i], o);
	return 0;
}

/* ---- IP addresses --------------------------------------------------------------------------- */

/* Dotted quad: four decimal parts 0..255, no leading zeros (which some stacks read as octal). */
static int
ipv4_parse(const char *s, size_t n, unsigned char a[4])
{
	size_t i = 0, st, nd;
	unsigned v;
	int part;

	for (part = 0; part < 4; part++) {
		st = i;
		for (v = 0, nd = 0; i < n && s[i] >= '0' && s[i] <= '9' && nd < 4; i++, nd++)
			v = v * 10 + (unsigned)(s[i] - '0');
		if (nd == 0 || nd > 3 || v > 255 || (nd > 1 && s[st] == '0'))
			return -1;
		a[part] = (unsigned char)v;
		if (part < 3) {
			if (i >= n || s[i] != '.')
				return -1;
			i++;
		}
	}
	return i == n ? 0 : -1;
}

/* RFC 4291 2.2 text forms, including a trailing dotted quad.  No zone id (RFC 6874): a link-local
 * scope means nothing to a peer network. */
static int
ipv6_parse(const char *s, size_t n, uint16_t g[8])
{
	uint16_t h[8];
	unsigned char a[4];
	size_t i = 0, st;
	unsigned v;
	int ng = 0, gap = -1, nd, k, z;

	if (n >= 2 && s[0] == ':' && s[1] == ':') {
		gap = 0;
		i = 2;
	} else if (n == 0 || s[0] == ':')
		return -1;
	while (i < n) {
		for (st = i, v = 0, nd = 0; i < n && cc(s[i], CC_HEX) && nd <= 4; i++, nd++)
			v = v * 16 + (unsigned)hexval(s[i]);
		if (i < n && s[i] == '.') {
			if (ng > 6 || ipv4_parse(s + st, n - st, a) < 0)
				return -1;
			h[ng++] = (uint16_t)(a[0] << 8 | a[1]);
			h[ng++] = (uint16_t)(a[2] << 8 | a[3]);
			break;
		}
		if (nd == 0 || nd > 4 || ng == 8)
			return -1;
		h[ng++] = (uint16_t)v;
		if (i == n)
			break;
		if (s[i++] != ':' || i == n)
			return -1;
		if (s[i] == ':') {
			if (gap >= 0)
				return -1;
			gap = ng;
			i++;
		}
	}
	if (gap < 0) {
		if (ng != 8)
			return -1;
		memcpy(g, h, sizeof(h));
		return 0;
	}
	if (ng > 7)	/* "::" stands for at least one group */
		return -1;
	z = 8 - ng;
	for (k = 0; k < gap; k++)
		g[k] = h[k];
	for (k = 0; k < z; k++)
		g[gap + k] = 0;
	for (k = gap; k < ng; k++)
		g[k + z] = h[k];
	return 0;
}

static void
hex16_put(unsigned v, struct out *o)
{
	static const char hx[] = "0123456789abcdef";
	int shift, started = 0;

	for (shift = 12; shift >= 0; shift -= 4) {
		unsigned d = v >> shift & 0xf;
		if (d || started || shift == 0) {
			out_putc(o, hx[d]);
			started = 1;
		}
	}
}

/* RFC 5952 canonical text in brackets: lower case, no leading zeros, the longest run of two or
 * more zero groups (the first on a tie) as "::", IPv4-mapped addresses with a dotted quad. */
static void
ipv6_put(const uint16_t g[8], struct out *o)
{
	int i, j, best = -1, bestlen = 1;

	out_putc(o, '[');
	if (!g[0] && !g[1] && !g[2] && !g[3] && !g[4] && g[5] == 0xffff) {
		out_puts(o, "::ffff:");
		dec_put(g[6] >> 8, o);
		out_putc(o, '.');
		dec_put(g[6] & 0xff, o);
		out_putc(o, '.');
		dec_put(g[7] >> 8, o);
		out_putc(o, '.');
		dec_put(g[7] & 0xff, o);
		out_putc(o, ']');
		return;
	}
	for (i = 0; i < 8; i++) {
		if (g[i])
			continue;
		for (j = i; j < 8 && !g[j]; j++)
			;
		if (j - i > bestlen) {
			best = i;
			bestlen = j - i;
		}
		i = j;
	}
	for (i = 0; i < 8; i++) {
		if (i == best) {
			out_puts(o, "::");
			i += bestlen - 1;
			continue;
		}
		if (i > 0 && !(best >= 0 && i == best + bestlen))
			out_putc(o, ':');
		hex16_put(g[i], o);
	}
	out_putc(o, ']');
}

/* ---- Domains -------------------------------------------------------------------------------- */

/*
 * A domainpart or SIP host (n octets) in canonical form: "[IPv6]" (RFC 5952), a dotted quad, or
 * LDH labels in lower case with a single trailing dot removed, as A-labels (ascii) or U-labels.
 * *routable (if given) says whether the name can identify a peer network: an IP address or a
 * name of two or more labels.  A name whose last label is all digits must be a dotted quad.
 */
static int
domain_canon_full(const char *d, size_t n, int ascii, struct out *o, int *routable)
{
	uint16_t g[8];
	unsigned char a[4];
	size_t i, start, alen = 0, labels = 0, last;
	int r, digits;

	if (routable)
		*routable = 0;
	if (d == NULL || n == 0 || n > PART_MAX)
		return MAP_ADDR_EMALFORMED;
	if (d[0] == '[') {
		if (n < 2 || d[n - 1] != ']' || ipv6_parse(d + 1, n - 2, g) < 0)
			return MAP_ADDR_EMALFORMED;
		ipv6_put(g, o);
		if (routable)
			*routable = 1;
		return 0;
	}
	if (d[n - 1] == '.')
		n--;
	if (n == 0)
		return MAP_ADDR_EMALFORMED;
	for (last = n; last > 0 && d[last - 1] != '.'; last--)
		;
	digits = last < n;
	for (i = last; i < n; i++)
		if (d[i] < '0' || d[i] > '9')
			digits = 0;
	if (digits) {
		if (ipv4_parse(d, n, a) < 0)
			return MAP_ADDR_EMALFORMED;
		out_put(o, d, n);
		if (routable)
			*routable = 1;
		return 0;
	}
	for (start = 0, i = 0; i <= n; i++) {
		if (i < n && d[i] != '.')
			continue;
		if (labels++ > 0) {
			out_putc(o, '.');
			alen++;
		}
		if ((r = label_canon(d + start, i - start, ascii, o, &alen)) < 0)
			return r;
		start = i + 1;
	}
	if (alen > DOMAIN_ASCII_MAX)
		return MAP_ADDR_EMALFORMED;
	if (routable)
		*routable = labels >= 2;
	return 0;
}

/*
 * The names a gateway sees all day in one pass: ASCII letters, digits and hyphens in labels of 1
 * to 63 octets, none starting or ending with a hyphen, none an A-label ("xn--"), the last not all
 * digits, 253 octets at most (a single trailing dot aside).  Their canonical form, ASCII or
 * Unicode, is the name in lower case, which domain_canon_full() also finds, label by label, at
 * about four times the instructions (docs/benchmarks.md).  Returns 0 when it wrote the name, 1
 * when the name needs the full path (which also finds what is wrong with it).
 */
static int
domain_canon_ldh(const char *d, size_t n, struct out *o, int *routable)
{
	char low[DOMAIN_ASCII_MAX];
	size_t i, start = 0, labels = 1;
	int digits = 1;

	if (n > 0 && d[n - 1] == '.')
		n--;
	if (n == 0 || n > DOMAIN_ASCII_MAX)
		return 1;
	for (i = 0; i < n; i++) {
		char c = d[i];

		if (c == '.') {
			if (i == start || i - start > LABEL_MAX || low[start] == '-' ||
			    low[i - 1] == '-')
				return 1;
			low[i] = c;
			start = i + 1;
			labels++;
			digits = 1;
			continue;
		}
		if (!cc(c, CC_LDH))
			return 1;
		if (c < '0' || c > '9')
			digits = 0;
		low[i] = lower(c);
		if (i == start + ACE_LEN - 1 && memcmp(low + start, ACE_PREFIX, ACE_LEN) == 0)
			return 1;
	}
	if (i == start || i - start > LABEL_MAX || low[start] == '-' || low[i - 1] == '-' || digits)
		return 1;
	out_put(o, low, n);
	if (routable)
		*routable = labels >= 2;
	return 0;
}

static int
domain_canon(const char *d, size_t n, int ascii, struct out *o, int *routable)
{
	if (d != NULL && domain_canon_ldh(d, n, o, routable) == 0)
		return 0;
	return domain_canon_full(d, n, ascii, o, routable);
}

/* domain_canon into a part-sized buffer. */
static int
domain_to(const char *d, size_t n, int ascii, char *dst, size_t *dlen, int *routable)
{
	struct out o;
	int r;

	out_init(&o, dst, PART_MAX + 1);
	if ((r = domain_canon(d, n, ascii, &o, routable)) < 0)
		return r;
	if ((r = out_finish(&o)) < 0)
		return MAP_ADDR_EMALFORMED;
	*dlen = (size_t)r;
	return 0;
}

/* ---- XEP-0106 ------------------------------------------------------------------------------ */

static const struct {
	char	c;
	char	code[3];
} jid_escapes[] = {
	{ ' ', "20" }, { '"', "22" }, { '&', "26" }, { '\'', "27" }, { '/', "2f" },
	{ ':', "3a" }, { '<', "3c" }, { '>', "3e" }, { '@', "40" }, { '\\', "5c" },
};

#define NJID_ESCAPES (sizeof(jid_escapes) / sizeof(jid_escapes[0]))

/* The octet that the escape sequence at s (n octets left, s[0] == '\\') stands for, or -1. */
static int
jid_escape_at(const char *s, size_t n)
{
	size_t i;

	if (n < 3)
		return -1;
	for (i = 0; i < NJID_ESCAPES; i++)
		if (lower(s[1]) == jid_escapes[i].code[0] && lower(s[2]) == jid_escapes[i].code[1])
			return (unsigned char)jid_escapes[i].c;
	return -1;
}

/*
 * XEP-0106 escaping.  A backslash is escaped only where it would otherwise read as an escape
 * sequence, so unescape(escape(x)) == x.  XEP-0106 (1.1) forbids \20 at either end of a
 * localpart, and a NUL could never be written back, so both are refused.
 */
static int
jid_escape(const char *s, size_t n, struct out *o)
{
	size_t i, k;

	if (n > 0 && (s[0] == ' ' || s[n - 1] == ' '))
		return MAP_ADDR_EMALFORMED;
	for (i = 0; i < n; i++) {
		if (s[i] == '\0')
			return MAP_ADDR_EMALFORMED;
		if (s[i] == '\\') {
			out_puts(o, jid_escape_at(s + i, n - i) >= 0 ? "\\5c" : "\\");
			continue;
		}
		for (k = 0; k < NJID_ESCAPES - 1 && jid_escapes[k].c != s[i]; k++)
			;
		if (k < NJID_ESCAPES - 1) {
			out_putc(o, '\\');
			out_put(o, jid_escapes[k].code, 2);
		} else
			out_putc(o, s[i]);
	}
	return 0;
}

static int
jid_unescape(const char *s, size_t n, struct out *o)
{
	size_t i;
	int c;

	for (i = 0; i < n; i++) {
		if (s[i] == '\0')
			return MAP_ADDR_EMALFORMED;
		if (s[i] == '\\' && (c = jid_escape_at(s + i, n - i)) >= 0) {
			out_putc(o, (char)c);
			i += 2;
		} else
			out_putc(o, s[i]);
	}
	return 0;
}

/* ---- Percent-encoding (RFC 3261 25.1 "escaped") ------------------------------------------ */

static void
pct_encode(const char *s, size_t n, unsigned allow, struct out *o)
{
	static const char hx[] = "0123456789ABCDEF";
	size_t i;

	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (cclass[c] & allow) {
			out_putc(o, (char)c);
		} else {
			out_putc(o, '%');
			out_putc(o, hx[c >> 4]);
			out_putc(o, hx[c & 0xf]);
		}
	}
}

/*
 * Decodes s (n octets, syntax already checked) into dst (PART_MAX + 1 octets) and returns the
 * length.  The result must be UTF-8 without C0 controls or DEL: %00 would cut the address short
 * downstream, %0D%0A would split a header.  Too long for a JID part is malformed.
 */
static int
pct_decode(const char *s, size_t n, char *dst)
{
	size_t i, o = 0;
	int hi, lo;

	for (i = 0; i < n; i++) {
		if (o == PART_MAX)
			return MAP_ADDR_EMALFORMED;
		if (s[i] != '%') {
			dst[o++] = s[i];
			continue;
		}
		if (n - i < 3 || (hi = hexval(s[i + 1])) < 0 || (lo = hexval(s[i + 2])) < 0)
			return MAP_ADDR_EMALFORMED;
		dst[o++] = (char)(hi << 4 | lo);
		i += 2;
	}
	dst[o] = '\0';
	if (text_check(dst, o, TEXT_NO_C0) < 0)
		return MAP_ADDR_EMALFORMED;
	return (int)o;
}

/* ---- JIDs (RFC 7622) ------------------------------------------------------------------------- */

struct jid {
	const char	*local;		/* into the caller's string; NULL when absent */
	size_t		 llen;
	const char	*dom;		/* as written */
	size_t		 dlen;
	const char	*res;		/* NULL when absent */
	size_t		 rlen;
	char		 canon[PART_MAX + 1];	/* the domain in canonical U-label form */
	size_t		 clen;
	int		 routable;
};

/* RFC 7622 3.1: the resource starts at the first '/'; the localpart ends at the first '@'
 * before it. */
static int
jid_parse(const char *s, struct jid *j)
{
	const char *slash, *at;
	size_t n, bare;

	memset(j, 0, sizeof(*j));
	if (s == NULL)
		return MAP_ADDR_EMALFORMED;
	n = strlen(s);
	slash = memchr(s, '/', n);
	bare = slash ? (size_t)(slash - s) : n;
	if (slash) {
		j->res = slash + 1;
		j->rlen = n - bare - 1;
		if (resource_check(j->res, j->rlen) < 0)
			return MAP_ADDR_EMALFORMED;
	}
	at = memchr(s, '@', bare);
	if (at) {
		j->local = s;
		j->llen = (size_t)(at - s);
		if (localpart_check(j->local, j->llen) < 0)
			return MAP_ADDR_EMALFORMED;
		j->dom = at + 1;
		j->dlen = bare - j->llen - 1;
	} else {
		j->dom = s;
		j->dlen = bare;
	}
	return domain_to(j->dom, j->dlen, 0, j->canon, &j->clen, &j->routable);
}

/* The localpart unescaped into dst (PART_MAX + 1 octets); refuses a leading or trailing space,
 * which XEP-0106 does not let an escaped localpart carry and the reverse mapping would refuse. */
static int
jid_local_unescaped(const struct jid *j, char *dst)
{
	struct out o;
	int r;

	if (localpart_stable(j->local, j->llen) < 0)
		return MAP_ADDR_ENOTCANON;
	out_init(&o, dst, PART_MAX + 1);
	if ((r = jid_unescape(j->local, j->llen, &o)) < 0)
		return r;
	if ((r = out_finish(&o)) < 0)
		return MAP_ADDR_EMALFORMED;
	if (r == 0 || dst[0] == ' ' || dst[r - 1] == ' ')
		return MAP_ADDR_EMALFORMED;
	return r;
}

/* ---- SIP URIs (RFC 3261 19.1) ---------------------------------------------------------------- */

/* Length of the prefix of p (n octets) made of allowed characters and complete %XX escapes. */
static size_t
uri_span(const char *p, size_t n, unsigned allow)
{
	size_t i = 0;

	while (i < n) {
		if (p[i] == '%' && n - i >= 3 && cc(p[i + 1], CC_HEX) && cc(p[i + 2], CC_HEX))
			i += 3;
		else if (cc(p[i], allow))
			i++;
		else
			break;
	}
	return i;
}

/* A SIP URI taken apart, pointing into the caller's string; user and gr are NULL when absent. */
struct sip_uri {
	const char	*user;		/* percent-encoded, in the caller's string */
	size_t		 ulen;
	const char	*host;
	size_t		 hlen;
	const char	*gr;		/* percent-encoded value; NULL: none, or no value */
	size_t		 grlen;
};

static int
sip_parse(const char *s, struct sip_uri *u)
{
	static const char schemes[][5] = { "sip", "sips", "im", "pres" };
	const char *p, *e, *at, *colon, *name;
	size_t i, n, ulen, nlen, vlen;
	unsigned long port;
	int known = 0, seen_gr = 0;

	memset(u, 0, sizeof(*u));
	if (s == NULL || !((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z')))
		return MAP_ADDR_EMALFORMED;
	for (i = 1; cc(s[i], ALNUM) || s[i] == '+' || s[i] == '-' || s[i] == '.'; i++)
		;
	if (s[i] != ':')
		return MAP_ADDR_EMALFORMED;
	for (n = 0; n < sizeof(schemes) / sizeof(schemes[0]); n++)
		if (word_eq(s, i, schemes[n]))
			known = 1;
	if (!known)
		return MAP_ADDR_ESCHEME;
	p = s + i + 1;
	n = strlen(p);
	e = p + n;

	/* '@' is legal nowhere after the userinfo, so the first one ends it. */
	if ((at = memchr(p, '@', n)) != NULL) {
		colon = memchr(p, ':', (size_t)(at - p));
		ulen = colon ? (size_t)(colon - p) : (size_t)(at - p);
		if (ulen == 0 || uri_span(p, ulen, ALLOW_USER_IN) != ulen)
			return MAP_ADDR_EMALFORMED;
		if (colon) {
			size_t plen = (size_t)(at - colon - 1);
			if (uri_span(colon + 1, plen, ALLOW_PASSWORD) != plen)
				return MAP_ADDR_EMALFORMED;
		}
		u->user = p;
		u->ulen = ulen;
		p = at + 1;
	}

	u->host = p;
	if (*p == '[') {
		if ((p = memchr(p, ']', (size_t)(e - p))) == NULL)
			return MAP_ADDR_EMALFORMED;
		p++;
	} else
		while (cc(*p, CC_LDH) || *p == '.')
			p++;
	u->hlen = (size_t)(p - u->host);
	if (u->hlen == 0)
		return MAP_ADDR_EMALFORMED;

	if (*p == ':') {
		for (p++, port = 0, i = 0; *p >= '0' && *p <= '9'; p++, i++)
			if ((port = port * 10 + (unsigned long)(*p - '0')) > 65535)
				return MAP_ADDR_EMALFORMED;
		if (i == 0)
			return MAP_ADDR_EMALFORMED;
	}

	while (*p == ';') {
		name = ++p;
		if ((nlen = uri_span(p, (size_t)(e - p), ALLOW_PARAM)) == 0)
			return MAP_ADDR_EMALFORMED;
		p += nlen;
		vlen = 0;
		if (*p == '=') {
			p++;
			if ((vlen = uri_span(p, (size_t)(e - p), ALLOW_PARAM)) == 0)
				return MAP_ADDR_EMALFORMED;
			p += vlen;
		}
		if (word_eq(name, nlen, "gr")) {
			if (seen_gr++)	/* two answers to one question: refuse, never guess */
				return MAP_ADDR_EMALFORMED;
			if (vlen > 0) {
				u->gr = p - vlen;
				u->grlen = vlen;
			}
		}
	}

	if (*p == '?') {
		do {
			p++;
			if ((nlen = uri_span(p, (size_t)(e - p), ALLOW_HEADER)) == 0)
				return MAP_ADDR_EMALFORMED;
			p += nlen;
			if (*p != '=')
				return MAP_ADDR_EMALFORMED;
			p++;
			p += uri_span(p, (size_t)(e - p), ALLOW_HEADER);
		} while (*p == '&');
	}
	return *p == '\0' ? 0 : MAP_ADDR_EMALFORMED;
}

/* A SIP URI translated into JID parts. */
struct sip_jid {
	char	user[PART_MAX + 1];	/* the user percent-decoded */
	int	ulen;			/* -1 when the URI has no user */
	char	dom[PART_MAX + 1];	/* the host, canonical U-label form */
	size_t	dlen;
	char	res[PART_MAX + 1];	/* the gr value percent-decoded */
	int	rlen;			/* -1 when there is none */
	int	routable;
};

static int
sip_to_parts(const char *uri, struct sip_jid *sj)
{
	struct sip_uri u;
	int r;

	sj->ulen = sj->rlen = -1;
	if ((r = sip_parse(uri, &u)) < 0)
		return r;
	if (u.user && (sj->ulen = pct_decode(u.user, u.ulen, sj->user)) < 0)
		return sj->ulen;
	if ((r = domain_to(u.host, u.hlen, 0, sj->dom, &sj->dlen, &sj->routable)) < 0)
		return r;
	if (u.gr) {
		if ((sj->rlen = pct_decode(u.gr, u.grlen, sj->res)) < 0)
			return sj->rlen;
		if (resource_check(sj->res, (size_t)sj->rlen) < 0)
			return MAP_ADDR_EMALFORMED;
	}
	return 0;
}

/* The domain-preserving localpart of a decoded SIP user: XEP-0106 escaped, then checked. */
static int
sip_user_local(const struct sip_jid *sj, char *dst)
{
	struct out o;
	int r;

	out_init(&o, dst, PART_MAX + 1);
	if ((r = jid_escape(sj->user, (size_t)sj->ulen, &o)) < 0)
		return r;
	if ((r = out_finish(&o)) < 0 || localpart_check(dst, (size_t)r) < 0)
		return MAP_ADDR_EMALFORMED;
	if (localpart_stable(dst, (size_t)r) < 0)
		return MAP_ADDR_ENOTCANON;
	return r;
}

/* ---- Public functions ------------------------------------------------------------------------ */

const char *
map_addr_strerror(int status)
{
	static const struct {
		int		 status;
		const char	*text;
	} texts[] = {
		{ MAP_ADDR_OK, "success" },
		{ MAP_ADDR_EMALFORMED, "malformed address" },
		{ MAP_ADDR_EDOMAIN, "address outside the mapped domain" },
		{ MAP_ADDR_ENOSPC, "buffer too small" },
		{ MAP_ADDR_ESCHEME, "unsupported URI scheme" },
		{ MAP_ADDR_ENOTCANON, "a user part the XMPP side would change (not one-to-one)" },
	};
	size_t i;

	if (status > 0)
		return texts[0].text;	/* a length: success */
	for (i = 0; i < sizeof(texts) / sizeof(texts[0]); i++)
		if (texts[i].status == status)
			return texts[i].text;
	return "unknown address status";
}

/* The SIP URI of a parsed JID (map_jid_to_sip). */
static int
jid_to_sip(const struct jid *j, int keep_resource, char *buf, size_t len)
{
	struct out o;
	char user[PART_MAX + 1];
	int r, ulen = 0;

	if (j->local && (ulen = jid_local_unescaped(j, user)) < 0)
		return ulen;
	out_init(&o, buf, len);
	out_puts(&o, "sip:");
	if (j->local) {
		pct_encode(user, (size_t)ulen, ALLOW_USER_OUT, &o);
		out_putc(&o, '@');
	}
	if ((r = domain_canon(j->dom, j->dlen, 1, &o, NULL)) < 0)
		return r;
	if (keep_resource && j->res) {
		out_puts(&o, ";gr=");
		pct_encode(j->res, j->rlen, ALLOW_PARAM, &o);
	}
	return out_finish(&o);
}

int
map_jid_to_sip(const char *jid, int keep_resource, char *buf, size_t len)
{
	struct jid j;
	int r;

	if ((r = jid_parse(jid, &j)) < 0)
		return r;
	return jid_to_sip(&j, keep_resource, buf, len);
}

int
map_jid_to_sip_in(const char *jid, const char *domain, char *buf, size_t len, int *in_domain)
{
	struct jid j;

	*in_domain = 0;
	if (domain == NULL || jid_parse(jid, &j) < 0 || j.clen != strlen(domain) ||
	    memcmp(j.canon, domain, j.clen) != 0)
		return MAP_ADDR_EDOMAIN;
	*in_domain = 1;
	return jid_to_sip(&j, 0, buf, len);
}

int
map_sip_to_jid(const char *uri, char *buf, size_t len)
{
	struct sip_jid sj;
	struct out o;
	char local[PART_MAX + 1];
	int r, llen = 0;

	if ((r = sip_to_parts(uri, &sj)) < 0)
		return r;
	if (sj.ulen >= 0 && (llen = sip_user_local(&sj, local)) < 0)
		return llen;
	out_init(&o, buf, len);
	if (sj.ulen >= 0) {
		out_put(&o, local, (size_t)llen);
		out_putc(&o, '@');
	}
	out_put(&o, sj.dom, sj.dlen);
	if (sj.rlen >= 0) {
		out_putc(&o, '/');
		out_put(&o, sj.res, (size_t)sj.rlen);
	}
	return out_finish(&o);
}

int
map_jid_to_sip_escaped(const char *jid, const char *component, char *buf, size_t len)
{
	struct jid j;
	struct out o;
	char comp[PART_MAX + 1], raw[PART_MAX + 1];
	size_t clen, at;
	int r, rlen, routable;

	if (component == NULL)
		return MAP_ADDR_EMALFORMED;
	if ((r = domain_to(component, strlen(component), 0, comp, &clen, NULL)) < 0)
		return r;
	if ((r = jid_parse(jid, &j)) < 0)
		return r;
	if (j.clen != clen || memcmp(j.canon, comp, clen) != 0)
		return MAP_ADDR_EDOMAIN;
	if (j.local == NULL)	/* the gateway itself, not a SIP user */
		return MAP_ADDR_EMALFORMED;
	if ((rlen = jid_local_unescaped(&j, raw)) < 0)
		return rlen;

	/* A SIP user may hold an escaped '@', a host never does: split at the last one. */
	for (at = (size_t)rlen; at > 0 && raw[at - 1] != '@'; at--)
		;
	out_init(&o, buf, len);
	out_puts(&o, "sip:");
	if (at > 0) {
		if (at == 1)
			return MAP_ADDR_EMALFORMED;
		pct_encode(raw, at - 1, ALLOW_USER_OUT, &o);
		out_putc(&o, '@');
	}
	if ((r = domain_canon(raw + at, (size_t)rlen - at, 1, &o, &routable)) < 0)
		return r;
	if (!routable)		/* "bob" is no peer domain */
		return MAP_ADDR_EMALFORMED;
	return out_finish(&o);
}

int
map_sip_to_jid_escaped(const char *uri, const char *component, char *buf, size_t len)
{
	struct sip_jid sj;
	struct out o, ro, lo;
	char comp[PART_MAX + 1], raw[PART_MAX + 1], local[PART_MAX + 1];
	size_t clen;
	int r;

	if (component == NULL)
		return MAP_ADDR_EMALFORMED;
	if ((r = domain_to(component, strlen(component), 0, comp, &clen, NULL)) < 0)
		return r;
	if ((r = sip_to_parts(uri, &sj)) < 0)
		return r;
	if (!sj.routable)
		return MAP_ADDR_EMALFORMED;

	/* The unescaped localpart is the SIP address without its scheme: [user "@"] host. */
	out_init(&ro, raw, sizeof(raw));
	if (sj.ulen >= 0) {
		out_put(&ro, sj.user, (size_t)sj.ulen);
		out_putc(&ro, '@');
	}
	out_put(&ro, sj.dom, sj.dlen);
	if ((r = out_finish(&ro)) < 0)
		return MAP_ADDR_EMALFORMED;

	out_init(&lo, local, sizeof(local));
	if ((r = jid_escape(raw, (size_t)r, &lo)) < 0)
		return r;
	if ((r = out_finish(&lo)) < 0 || localpart_check(local, (size_t)r) < 0)
		return MAP_ADDR_EMALFORMED;
	if (localpart_stable(local, (size_t)r) < 0)
		return MAP_ADDR_ENOTCANON;
	out_init(&o, buf, len);
	out_put(&o, local, (size_t)r);
	out_putc(&o, '@');
	out_put(&o, comp, clen);
	return out_finish(&o);
}

int
map_jid_domain(const char *jid, char *buf, size_t len)
{
	struct jid j;
	struct out o;
	int r;

	if ((r = jid_parse(jid, &j)) < 0)
		return r;
	out_init(&o, buf, len);
	out_put(&o, j.canon, j.clen);
	return out_finish(&o);
}

int
map_jid_bare(const char *jid, char *buf, size_t len)
{
	struct jid j;
	struct out o;
	int r;

	if ((r = jid_parse(jid, &j)) < 0)
		return r;
	out_init(&o, buf, len);
	if (j.local) {
		out_put(&o, j.local, j.llen);
		out_putc(&o, '@');
	}
	out_put(&o, j.canon, j.clen);
	return out_finish(&o);
}

int
map_sip_domain(const char *uri, char *buf, size_t len)
{
	struct sip_jid sj;
	struct out o;
	char local[PART_MAX + 1];
	int r;

	if ((r = sip_to_parts(uri, &sj)) < 0)
		return r;
	if (sj.ulen >= 0 && (r = sip_user_local(&sj, local)) < 0)
		return r;
	out_init(&o, buf, len);
	out_put(&o, sj.dom, sj.dlen);
	return out_finish(&o);
}

int
map_idna_to_ascii(const char *domain, char *buf, size_t len)
{
	struct out o;
	int r;

	if (domain == NULL)
		return MAP_ADDR_EMALFORMED;
	out_init(&o, buf, len);
	if ((r = domain_canon(domain, strlen(domain), 1, &o, NULL)) < 0)
		return r;
	return out_finish(&o);
}

int
map_idna_to_unicode(const char *domain, char *buf, size_t len)
{
	struct out o;
	int r;

	if (domain == NULL)
		return MAP_ADDR_EMALFORMED;
	out_init(&o, buf, len);
	if ((r = domain_canon(domain, strlen(domain), 0, &o, NULL)) < 0)
		return r;
	return out_finish(&o);
}

int
map_idna_full(const char *domain, int ascii, char *buf, size_t len)
{
	struct out o;
	int r;

	if (domain == NULL)
		return MAP_ADDR_EMALFORMED;
	out_init(&o, buf, len);
	if ((r = domain_canon_full(domain, strlen(domain), ascii, &o, NULL)) < 0)
		return r;
	return out_finish(&o);
}

int
map_jid_escape(const char *src, size_t srclen, char *buf, size_t len)
{
	struct out o;
	int r;

	if (src == NULL && srclen > 0)
		return MAP_ADDR_EMALFORMED;
	out_init(&o, buf, len);
	if ((r = jid_escape(src, srclen, &o)) < 0)
		return r;
	return out_finish(&o);
}

int
map_jid_unescape(const char *src, size_t srclen, char *buf, size_t len)
{
	struct out o;
	int r;

	if (src == NULL && srclen > 0)
		return MAP_ADDR_EMALFORMED;
	out_init(&o, buf, len);
	if ((r = jid_unescape(src, srclen, &o)) < 0)
		return r;
	return out_finish(&o);
}
