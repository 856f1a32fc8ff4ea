/* fuzz_addr.c - libFuzzer harness for mapping/addr.c: every public function and its invariants. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mapping/addr.h"

#define GW	"sip-gw.xmpp.example"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
must(int cond)
{
	if (!cond)
		__builtin_trap();
}

static char *
xmalloc(size_t n)
{
	char *p = malloc(n ? n : 1);

	if (p == NULL)
		abort();
	return p;
}

static int
streq(const char *a, const char *b)
{
	return strcmp(a, b) == 0;
}

/* Every function as f(input, buf, len). */
typedef int (*map_fn)(const char *, char *, size_t);

static int
jid_to_sip_gr(const char *in, char *buf, size_t len)
{
	return map_jid_to_sip(in, 1, buf, len);
}

static int
jid_to_sip_nogr(const char *in, char *buf, size_t len)
{
	return map_jid_to_sip(in, 0, buf, len);
}

static int
jid_to_sip_esc(const char *in, char *buf, size_t len)
{
	return map_jid_to_sip_escaped(in, GW, buf, len);
}

static int
sip_to_jid_esc(const char *in, char *buf, size_t len)
{
	return map_sip_to_jid_escaped(in, GW, buf, len);
}

static int
component_sip(const char *in, char *buf, size_t len)
{
	return map_sip_to_jid_escaped("sip:bob@sip.example", in, buf, len);
}

static int
component_jid(const char *in, char *buf, size_t len)
{
	return map_jid_to_sip_escaped("bob\\40sip.example@sip-gw.xmpp.example", in, buf, len);
}

static int
escape(const char *in, char *buf, size_t len)
{
	return map_jid_escape(in, strlen(in), buf, len);
}

static int
unescape(const char *in, char *buf, size_t len)
{
	return map_jid_unescape(in, strlen(in), buf, len);
}

/*
 * Calls f with a buffer of biglen octets, which the header promises is always enough, then with
 * exact-size heap buffers of a few small sizes (AddressSanitizer sees any write past them).  Each
 * answer must agree with the big one: the same error, the same text, or ENOSPC when it does not
 * fit.  Returns the big answer, whose text is left in out (biglen octets).
 */
static int
call(map_fn f, const char *in, char *out, size_t biglen)
{
	static const size_t sizes[] = { 0, 1, 2, 3, 5, 8, 17, 64 };
	size_t i;
	int r, q;

	r = f(in, out, biglen);
	must(r >= MAP_ADDR_ENOTCANON && r != MAP_ADDR_ENOSPC);
	must(map_addr_strerror(r) != NULL);
	if (r >= 0)
		must((size_t)r < biglen && out[r] == '\0' && strlen(out) == (size_t)r);
	for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		char *b = xmalloc(sizes[i]);
		q = f(in, b, sizes[i]);
		if (r < 0)
			must(q == r);
		else if ((size_t)r < sizes[i])
			must(q == r && memcmp(b, out, (size_t)r + 1) == 0);
		else
			must(q == MAP_ADDR_ENOSPC);
		free(b);
	}
	must(f(in, NULL, 0) == (r < 0 ? r : MAP_ADDR_ENOSPC));
	return r;
}

/* f(in) into a fresh buffer of biglen octets; *out is set (to be freed) on success. */
static int
call_alloc(map_fn f, const char *in, size_t biglen, char **out)
{
	char *b = xmalloc(biglen);
	int r = call(f, in, b, biglen);

	if (r < 0) {
		free(b);
		*out = NULL;
	} else
		*out = b;
	return r;
}

#define URI_LEN	MAP_URI_MAX
#define JID_LEN	(MAP_JID_MAX + 1)

static void
check_domain_mode(const char *in)
{
	char *sip = NULL, *sip0 = NULL, *jid = NULL, *again = NULL, *back = NULL, *d1 = NULL,
	    *d2 = NULL, *d3 = NULL, *bare = NULL;
	int r;

	/* JID -> SIP -> JID: the way back must work and be a fixed point */
	r = call_alloc(jid_to_sip_gr, in, URI_LEN, &sip);
	must((call_alloc(jid_to_sip_nogr, in, URI_LEN, &sip0) >= 0) == (r >= 0));
	if (r >= 0) {
		must(strncmp(sip, "sip:", 4) == 0);
		must(call_alloc(map_sip_to_jid, sip, JID_LEN, &jid) >= 0);
		must(call_alloc(jid_to_sip_gr, jid, URI_LEN, &again) >= 0 && streq(again, sip));
		must(call_alloc(map_sip_to_jid, again, JID_LEN, &back) >= 0 && streq(back, jid));
		must(call_alloc(map_jid_domain, in, JID_LEN, &d1) >= 0);
		must(call_alloc(map_jid_domain, jid, JID_LEN, &d2) >= 0 && streq(d1, d2));
		must(call_alloc(map_sip_domain, sip, JID_LEN, &d3) >= 0 && streq(d1, d3));
		must(call_alloc(map_jid_bare, in, JID_LEN, &bare) >= 0);
	}
	free(sip);
	free(sip0);
	free(jid);
	free(again);
	free(back);
	free(d1);
	free(d2);
	free(d3);
	free(bare);
}

static void
check_sip_side(const char *in)
{
	char *jid = NULL, *sip = NULL, *back = NULL, *d1 = NULL, *d2 = NULL;
	int r;

	/* SIP -> JID -> SIP -> JID gives the same JID; map_sip_domain agrees with map_sip_to_jid */
	r = call_alloc(map_sip_to_jid, in, JID_LEN, &jid);
	must((call_alloc(map_sip_domain, in, JID_LEN, &d1) >= 0) == (r >= 0));
	if (r >= 0) {
		must(call_alloc(jid_to_sip_gr, jid, URI_LEN, &sip) >= 0);
		must(call_alloc(map_sip_to_jid, sip, JID_LEN, &back) >= 0 && streq(back, jid));
		must(call_alloc(map_jid_domain, jid, JID_LEN, &d2) >= 0 && streq(d1, d2));
	}
	free(jid);
	free(sip);
	free(back);
	free(d1);
	free(d2);
}

static void
check_escaped_mode(const char *in)
{
	char *sip = NULL, *jid = NULL, *again = NULL, *back = NULL;
	int r;

	/* JID -> SIP -> JID -> SIP, where both directions succeed */
	if (call_alloc(jid_to_sip_esc, in, URI_LEN, &sip) >= 0 &&
	    call_alloc(sip_to_jid_esc, sip, JID_LEN, &jid) >= 0)
		must(call_alloc(jid_to_sip_esc, jid, URI_LEN, &again) >= 0 && streq(again, sip));
	free(sip);
	free(jid);
	free(again);
	sip = jid = again = NULL;

	/* SIP -> JID: the way back always works and gives the same JID */
	r = call_alloc(sip_to_jid_esc, in, JID_LEN, &jid);
	if (r >= 0) {
		must(call_alloc(jid_to_sip_esc, jid, URI_LEN, &sip) >= 0);
		must(call_alloc(sip_to_jid_esc, sip, JID_LEN, &back) >= 0 && streq(back, jid));
	}
	free(sip);
	free(jid);
	free(back);
}

static void
check_idna(const char *in)
{
	char *a = NULL, *u = NULL, *ua = NULL, *au = NULL, *aa = NULL, *uu = NULL, *comp = NULL,
	    *cj = NULL;
	int ra, ru;

	/* the two spellings of a name: both exist or neither, and each leads to the other */
	ra = call_alloc(map_idna_to_ascii, in, JID_LEN, &a);
	ru = call_alloc(map_idna_to_unicode, in, JID_LEN, &u);
	must((ra >= 0) == (ru >= 0));
	if (ra >= 0) {
		must(call_alloc(map_idna_to_unicode, a, JID_LEN, &ua) >= 0 && streq(ua, u));
		must(call_alloc(map_idna_to_ascii, u, JID_LEN, &au) >= 0 && streq(au, a));
		must(call_alloc(map_idna_to_ascii, a, JID_LEN, &aa) >= 0 && streq(aa, a));
		must(call_alloc(map_idna_to_unicode, u, JID_LEN, &uu) >= 0 && streq(uu, u));
		must(ra <= 253 + 2);	/* "[...]" of an IPv6 address is far shorter */
	}

	/* the input as the component: valid exactly when it is a valid domain */
	ru = call_alloc(component_sip, in, JID_LEN, &comp);
	must((ru >= 0) == (u != NULL));
	if (ru >= 0)
		must(strncmp(comp, "bob\\40sip.example@", 18) == 0 && streq(comp + 18, u));
	ru = call_alloc(component_jid, in, URI_LEN, &cj);
	if (u == NULL)
		must(ru == MAP_ADDR_EMALFORMED);
	else
		must(ru == (streq(u, GW) ? (int)strlen("sip:bob@sip.example") : MAP_ADDR_EDOMAIN));
	free(a);
	free(u);
	free(ua);
	free(au);
	free(aa);
	free(uu);
	free(comp);
	free(cj);
}

static void
check_escaping(const char *in, size_t n)
{
	char *e = NULL, *back = NULL, *u = NULL;
	size_t biglen = 3 * n + 1;
	int r;

	r = call_alloc(escape, in, biglen, &e);
	if (r >= 0) {
		must(call_alloc(unescape, e, biglen, &back) >= 0 && streq(back, in));
		must(strlen(e) >= n);
	}
	must(call_alloc(unescape, in, n + 1, &u) >= 0 && strlen(u) <= n);
	free(e);
	free(back);
	free(u);
}

static void
check_jid_bare(const char *in)
{
	char *b = NULL, *bb = NULL, *d1 = NULL, *d2 = NULL;

	if (call_alloc(map_jid_bare, in, JID_LEN, &b) >= 0) {
		must(strchr(b, '/') == NULL);
		must(call_alloc(map_jid_bare, b, JID_LEN, &bb) >= 0 && streq(bb, b));
		must(call_alloc(map_jid_domain, in, JID_LEN, &d1) >= 0);
		must(call_alloc(map_jid_domain, b, JID_LEN, &d2) >= 0 && streq(d1, d2));
	} else
		must(call_alloc(map_jid_domain, in, JID_LEN, &d1) < 0);
	free(b);
	free(bb);
	free(d1);
	free(d2);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* a C string: the functions read up to the first NUL */
	char *in = xmalloc(size + 1);
	size_t n;

	memcpy(in, data, size);
	in[size] = '\0';
	n = strlen(in);

	check_domain_mode(in);
	check_sip_side(in);
	check_escaped_mode(in);
	check_idna(in);
	check_escaping(in, n);
	check_jid_bare(in);
	free(in);
	return 0;
}
