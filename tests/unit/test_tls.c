/* test_tls.c - table-driven tests of gateway/tls.c's RFC 5922 identity rules: which SIP domains a
 * certificate names (subjectAltName URI "sip:domain" or DNS "domain", no wildcards, no user
 * part, no parameters, the CommonName only without any subjectAltName), and the identities it
 * offers as logged.  The certificates are made here with OpenSSL, self-signed: only the names
 * matter to these rules (the chain is checked elsewhere, by OpenSSL). */
#include <stdio.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/x509v3.h>

#include "gateway/tls.h"
#include "tests/unit/test.h"

struct san {
	int type;		/* GEN_DNS, GEN_URI; 0 ends the list */
	const char *value;
	size_t len;		/* 0: strlen(value); else the value holds a NUL */
};

static EVP_PKEY *key;

static X509 *make_cert(const char *cn, const struct san *sans)
{
	X509 *x = X509_new();
	X509_NAME *name = X509_NAME_new();

	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
	X509_gmtime_adj(X509_getm_notBefore(x), -3600);
	X509_gmtime_adj(X509_getm_notAfter(x), 3600);
	if (cn)
		X509_NAME_add_entry_by_NID(name, NID_commonName, MBSTRING_UTF8,
					   (const unsigned char *)cn, -1, -1, 0);
	X509_set_subject_name(x, name);
	X509_set_issuer_name(x, name);
	X509_NAME_free(name);
	X509_set_pubkey(x, key);
	if (sans && sans[0].type) {
		GENERAL_NAMES *gens = sk_GENERAL_NAME_new_null();

		for (const struct san *s = sans; s->type; s++) {
			GENERAL_NAME *g = GENERAL_NAME_new();
			ASN1_IA5STRING *v = ASN1_IA5STRING_new();

			ASN1_STRING_set(v, s->value, (int)(s->len ? s->len : strlen(s->value)));
			GENERAL_NAME_set0_value(g, s->type, v);
			sk_GENERAL_NAME_push(gens, g);
		}
		X509_add1_ext_i2d(x, NID_subject_alt_name, gens, 0, 0);
		GENERAL_NAMES_free(gens);
	}
	X509_sign(x, key, EVP_sha256());
	return x;
}

static const struct {
	const char *what;
	const char *cn;
	struct san sans[4];
	const char *domain;
	int names;
	const char *identities;
} cases[] = {
	{ "DNS entry", "x", { { GEN_DNS, "sip.example", 0 } }, "sip.example", 1,
	  "sip.example" },
	{ "DNS entry, other case", NULL, { { GEN_DNS, "SIP.Example", 0 } }, "sip.example", 1,
	  "SIP.Example" },
	{ "DNS entry of another domain", NULL, { { GEN_DNS, "other.example", 0 } }, "sip.example",
	  0, "other.example" },
	{ "DNS entry of a subdomain", NULL, { { GEN_DNS, "a.sip.example", 0 } }, "sip.example", 0,
	  "a.sip.example" },
	{ "DNS entry of the parent domain", NULL, { { GEN_DNS, "example", 0 } }, "sip.example", 0,
	  "example" },
	{ "DNS entry longer by a dot", NULL, { { GEN_DNS, "sip.example.", 0 } }, "sip.example", 0,
	  "sip.example." },
	{ "SIP URI entry", NULL, { { GEN_URI, "sip:sip.example", 0 } }, "sip.example", 1,
	  "sip:sip.example" },
	{ "SIP URI, scheme in capitals", NULL, { { GEN_URI, "SIP:sip.example", 0 } },
	  "sip.example", 1, "SIP:sip.example" },
	{ "SIP URI with a user part", NULL, { { GEN_URI, "sip:bob@sip.example", 0 } },
	  "sip.example", 0, "sip:bob@sip.example" },
	{ "SIP URI with a parameter", NULL, { { GEN_URI, "sip:sip.example;transport=tls", 0 } },
	  "sip.example", 0, "sip:sip.example;transport=tls" },
	{ "SIPS URI (RFC 5922 7.1: sip only)", NULL, { { GEN_URI, "sips:sip.example", 0 } },
	  "sip.example", 0, "sips:sip.example" },
	{ "HTTP URI", NULL, { { GEN_URI, "http://sip.example", 0 } }, "sip.example", 0,
	  "http://sip.example" },
	{ "wildcard (RFC 5922 7.2)", NULL, { { GEN_DNS, "*.example", 0 } }, "sip.example", 0,
	  "*.example" },
	{ "wildcard for the exact name", NULL, { { GEN_DNS, "*", 0 } }, "sip.example", 0, "*" },
	{ "second entry names it", NULL, { { GEN_DNS, "other.example", 0 },
					   { GEN_URI, "sip:sip.example", 0 } }, "sip.example", 1,
	  "other.example, sip:sip.example" },
	{ "CommonName only, no subjectAltName", "sip.example", { { 0, NULL, 0 } }, "sip.example",
	  1, "CN=sip.example" },
	{ "CommonName ignored beside a subjectAltName", "sip.example",
	  { { GEN_DNS, "other.example", 0 } }, "sip.example", 0, "other.example" },
	{ "no names at all", NULL, { { 0, NULL, 0 } }, "sip.example", 0, "(no identity)" },
	{ "NUL inside a DNS entry", NULL, { { GEN_DNS, "sip.example\0.evil", 17 } },
	  "sip.example", 0, "(no identity)" },
	{ "empty domain asked", NULL, { { GEN_DNS, "sip.example", 0 } }, "", 0, "sip.example" },
	{ "control character shown as ?", NULL, { { GEN_DNS, "a\tb", 0 } }, "sip.example", 0,
	  "a?b" },
};

int main(void)
{
	char ids[256];

	key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	CHECK(key != NULL, "an EC key");
	for (size_t i = 0; i < NELEM(cases); i++) {
		X509 *x = make_cert(cases[i].cn, cases[i].sans);

		CHECK(x != NULL, "%s: certificate made", cases[i].what);
		CHECK_INT(tls_cert_names_domain(x, cases[i].domain), cases[i].names, "%s",
			  cases[i].what);
		tls_cert_identities(x, ids, sizeof(ids));
		CHECK_STR(ids, cases[i].identities, "%s: identities", cases[i].what);
		X509_free(x);
	}
	CHECK_INT(tls_cert_names_domain(NULL, "sip.example"), 0, "no certificate");
	{
		/* a long list is cut, never overrun */
		struct san many[] = { { GEN_DNS, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.example", 0 },
				      { GEN_DNS, "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb.example", 0 },
				      { GEN_DNS, "cccccccccccccccccccccccccccccccccccccccc.example", 0 },
				      { 0, NULL, 0 } };
		X509 *x = make_cert(NULL, many);
		char small[40];

		tls_cert_identities(x, small, sizeof(small));
		CHECK_INT(strlen(small) < sizeof(small), 1, "identities cut to the buffer");
		X509_free(x);
	}
	EVP_PKEY_free(key);
	TEST_DONE();
}
