/* inflate.c - a bounded decoder for zlib data (RFC 1950 around RFC 1951 deflate), for bodies a
 * peer sends with Content-Encoding: deflate (linphone's delivery reports).
 *
 * None of the fixed stack's libraries inflates (Debian's OpenSSL is built without zlib), and the
 * bodies are small, so this is the plain canonical-Huffman decoder the RFC describes: codes are
 * decoded a bit at a time from per-length counts, output goes into the caller's buffer and never
 * past its end, and every malformed input (bad header, over-subscribed code, distance before the
 * start, truncated stream, Adler-32 mismatch, preset dictionary) is an error, not a guess.
 */
#include <stdint.h>
#include <string.h>

#include "gw.h"

#define MAX_BITS 15		/* longest code */
#define MAX_LITLEN 288		/* literal/length symbols, with the two invalid ones */
#define MAX_DIST 30
#define MAX_CODELEN 19

struct inflate_state {
	const uint8_t *in;
	size_t inlen, inpos;
	uint32_t bitbuf;	/* bits not yet used, lowest first */
	unsigned bitcnt;
	uint8_t *out;
	size_t outcap, outpos;
};

/* A canonical Huffman code: how many codes of each length, and the symbols in code order. */
struct huffman {
	uint16_t count[MAX_BITS + 1];
	uint16_t symbol[MAX_LITLEN];
};

/* Next n bits (n <= 16), or -1 at the end of input. */
static int bits(struct inflate_state *s, unsigned n)
{
	uint32_t v;

	while (s->bitcnt < n) {
		if (s->inpos >= s->inlen)
			return -1;
		s->bitbuf |= (uint32_t)s->in[s->inpos++] << s->bitcnt;
		s->bitcnt += 8;
	}
	v = s->bitbuf & ((1u << n) - 1);
	s->bitbuf >>= n;
	s->bitcnt -= n;
	return (int)v;
}

/* Builds h from code lengths.  Refused as zlib refuses them: an over-subscribed code, and an
 * incomplete one, except a single code of one bit (RFC 1951 3.2.7 allows one distance code) or
 * none at all (a block of literals only needs no distance code). */
static int huffman_build(struct huffman *h, const uint8_t *length, unsigned n)
{
	uint16_t offs[MAX_BITS + 1];
	int left = 1;
	unsigned longest = 0;

	memset(h->count, 0, sizeof(h->count));
	for (unsigned i = 0; i < n; i++) {
		h->count[length[i]]++;
		if (length[i] > longest)
			longest = length[i];
	}
	if (h->count[0] == n)
		return 0;	/* no codes: decoding any symbol fails */
	for (unsigned len = 1; len <= MAX_BITS; len++) {
		left <<= 1;
		left -= h->count[len];
		if (left < 0)
			return -1;
	}
	if (left > 0 && longest != 1)
		return -1;
	offs[1] = 0;
	for (unsigned len = 1; len < MAX_BITS; len++)
		offs[len + 1] = (uint16_t)(offs[len] + h->count[len]);
	for (unsigned i = 0; i < n; i++)
		if (length[i])
			h->symbol[offs[length[i]]++] = (uint16_t)i;
	return 0;
}

/* Decodes one symbol, or -1 (end of input, or a code the table does not have). */
static int huffman_decode(struct inflate_state *s, const struct huffman *h)
{
	int code = 0, first = 0, index = 0;

	for (unsigned len = 1; len <= MAX_BITS; len++) {
		int b = bits(s, 1), count;

		if (b < 0)
			return -1;
		code |= b;
		count = h->count[len];
		if (code - count < first)
			return h->symbol[index + (code - first)];
		index += count;
		first += count;
		first <<= 1;
		code <<= 1;
	}
	return -1;
}

static const uint16_t len_base[29] = {
	3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31,
	35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258 };
static const uint8_t len_extra[29] = {
	0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0 };
static const uint16_t dist_base[30] = {
	1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193,
	257, 385, 513, 769, 1025, 1537, 2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577 };
static const uint8_t dist_extra[30] = {
	0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12,
	13, 13 };

/* Literals and back-references until the end-of-block symbol. */
static int inflate_codes(struct inflate_state *s, const struct huffman *lit,
			 const struct huffman *dist)
{
	for (;;) {
		int sym = huffman_decode(s, lit), e, d;
		size_t len, back;

		if (sym < 0)
			return -1;
		if (sym < 256) {
			if (s->outpos >= s->outcap)
				return -1;
			s->out[s->outpos++] = (uint8_t)sym;
			continue;
		}
		if (sym == 256)
			return 0;
		sym -= 257;
		if (sym >= 29 || (e = bits(s, len_extra[sym])) < 0)
			return -1;
		len = len_base[sym] + (size_t)e;
		if ((d = huffman_decode(s, dist)) < 0 || d >= 30 || (e = bits(s, dist_extra[d])) < 0)
			return -1;
		back = dist_base[d] + (size_t)e;
		if (back > s->outpos || len > s->outcap - s->outpos)
			return -1;
		for (size_t i = 0; i < len; i++, s->outpos++)
			s->out[s->outpos] = s->out[s->outpos - back];	/* overlapping on purpose */
	}
}

static int inflate_stored(struct inflate_state *s)
{
	unsigned len, nlen;

	s->bitbuf = 0;		/* to the byte boundary */
	s->bitcnt = 0;
	if (s->inlen - s->inpos < 4)
		return -1;
	len = s->in[s->inpos] | (unsigned)s->in[s->inpos + 1] << 8;
	nlen = s->in[s->inpos + 2] | (unsigned)s->in[s->inpos + 3] << 8;
	s->inpos += 4;
	if (len != (~nlen & 0xffff) || len > s->inlen - s->inpos || len > s->outcap - s->outpos)
		return -1;
	memcpy(s->out + s->outpos, s->in + s->inpos, len);
	s->inpos += len;
	s->outpos += len;
	return 0;
}

static int inflate_fixed(struct inflate_state *s)
{
	struct huffman lit, dist;
	uint8_t length[MAX_LITLEN];
	unsigned i;

	for (i = 0; i < 144; i++)
		length[i] = 8;
	for (; i < 256; i++)
		length[i] = 9;
	for (; i < 280; i++)
		length[i] = 7;
	for (; i < MAX_LITLEN; i++)
		length[i] = 8;
	huffman_build(&lit, length, MAX_LITLEN);
	/* 32 codes of five bits, complete; 30 and 31 never occur in valid data */
	for (i = 0; i < 32; i++)
		length[i] = 5;
	huffman_build(&dist, length, 32);
	return inflate_codes(s, &lit, &dist);
}

static int inflate_dynamic(struct inflate_state *s)
{
	static const uint8_t order[MAX_CODELEN] = {
		16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15 };
	uint8_t length[MAX_LITLEN + MAX_DIST];
	struct huffman lencode, lit, dist;
	int nlit = bits(s, 5), ndist = bits(s, 5), ncode = bits(s, 4);
	unsigned idx = 0;

	if (nlit < 0 || ndist < 0 || ncode < 0)
		return -1;
	nlit += 257;
	ndist += 1;
	ncode += 4;
	if (nlit > 286 || ndist > MAX_DIST)
		return -1;
	memset(length, 0, sizeof(length));
	for (int i = 0; i < ncode; i++) {
		int b = bits(s, 3);

		if (b < 0)
			return -1;
		length[order[i]] = (uint8_t)b;
	}
	if (huffman_build(&lencode, length, MAX_CODELEN) != 0)
		return -1;
	while (idx < (unsigned)(nlit + ndist)) {
		int sym = huffman_decode(s, &lencode), rep;
		uint8_t val = 0;

		if (sym < 0)
			return -1;
		if (sym < 16) {
			length[idx++] = (uint8_t)sym;
			continue;
		}
		if (sym == 16) {
			if (idx == 0 || (rep = bits(s, 2)) < 0)
				return -1;
			val = length[idx - 1];
			rep += 3;
		} else if (sym == 17) {
			if ((rep = bits(s, 3)) < 0)
				return -1;
			rep += 3;
		} else {
			if ((rep = bits(s, 7)) < 0)
				return -1;
			rep += 11;
		}
		if (idx + (unsigned)rep > (unsigned)(nlit + ndist))
			return -1;
		while (rep--)
			length[idx++] = val;
	}
	if (length[256] == 0)	/* no end-of-block code: the block could never end */
		return -1;
	if (huffman_build(&lit, length, (unsigned)nlit) != 0 ||
	    huffman_build(&dist, length + nlit, (unsigned)ndist) != 0)
		return -1;
	return inflate_codes(s, &lit, &dist);
}

static uint32_t adler32(const uint8_t *p, size_t n)
{
	uint32_t a = 1, b = 0;

	while (n) {
		size_t chunk = n < 5552 ? n : 5552;	/* no overflow before the modulo */

		n -= chunk;
		while (chunk--) {
			a += *p++;
			b += a;
		}
		a %= 65521;
		b %= 65521;
	}
	return b << 16 | a;
}

int gw_inflate_zlib(const void *in, size_t inlen, void *out, size_t outcap, size_t *outlen)
{
	struct inflate_state s = { .in = in, .inlen = inlen, .out = out, .outcap = outcap };
	const uint8_t *p = in;
	int last;

	/* RFC 1950: CM 8 (deflate), a window of at most 32 KiB, no preset dictionary, check bits */
	if (inlen < 6 || (p[0] & 0x0f) != 8 || (p[0] >> 4) > 7 || (p[1] & 0x20) ||
	    ((unsigned)p[0] << 8 | p[1]) % 31 != 0)
		return -1;
	s.inpos = 2;
	do {
		int type;

		if ((last = bits(&s, 1)) < 0 || (type = bits(&s, 2)) < 0)
			return -1;
		if ((type == 0 ? inflate_stored(&s) : type == 1 ? inflate_fixed(&s) :
		     type == 2 ? inflate_dynamic(&s) : -1) != 0)
			return -1;
	} while (!last);
	/* the Adler-32 trailer starts at the next byte boundary */
	if (s.inlen - s.inpos != 4)
		return -1;
	p = s.in + s.inpos;
	if (((uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]) !=
	    adler32(s.out, s.outpos))
		return -1;
	*outlen = s.outpos;
	return 0;
}
