/* tls.c - OpenSSL helpers: the files of <tls>, contexts, RFC 5922 identities (tls.h). */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "gw.h"
#include "tls.h"

#define TLS_MAX_FILE (1024 * 1024)	/* a PEM file larger than this is refused */

static void say(tls_report_fn *report, void *arg, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void say(tls_report_fn *report, void *arg, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	report(arg, msg);
}

const char *tls_error_text(char *buf, size_t len)
{
	unsigned long e = ERR_get_error();

	if (!e)
		snprintf(buf, len, "%s", "no detail from OpenSSL");
	else
		ERR_error_string_n(e, buf, len);
	ERR_clear_error();
	return buf;
}

/* Reads a regular file of at most TLS_MAX_FILE bytes into a memory BIO.  what names the file's
 * role in diagnostics.  st receives its status. */
static BIO *read_pem(const char *path, const char *what, struct stat *st, tls_report_fn *report,
		     void *arg)
{
	char *buf = NULL;
	size_t n = 0;
	BIO *bio = NULL;
	int fd;

	fd = open(path, O_RDONLY | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0) {
		say(report, arg, "%s %s: cannot open: %s", what, path, strerror(errno));
		return NULL;
	}
	if (fstat(fd, st) < 0 || !S_ISREG(st->st_mode)) {
		say(report, arg, "%s %s: not a regular file", what, path);
		goto out;
	}
	if (st->st_size > TLS_MAX_FILE) {
		say(report, arg, "%s %s: larger than %d bytes", what, path, TLS_MAX_FILE);
		goto out;
	}
	buf = gw_xmalloc((size_t)st->st_size + 1);
	while (n < (size_t)st->st_size) {
		ssize_t r = read(fd, buf + n, (size_t)st->st_size - n);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			say(report, arg, "%s %s: cannot read: %s", what, path, strerror(errno));
			goto out;
		}
		if (r == 0)
			break;
		n += (size_t)r;
	}
	bio = BIO_new(BIO_s_mem());
	if (!bio || BIO_write(bio, buf, (int)n) != (int)n)
		gw_fatal("BIO_write failed");
out:
	if (buf) {
		explicit_bzero(buf, n);
		free(buf);
	}
	close(fd);
	return bio;
}

/* The validity problem of cert now, or NULL. */
static const char *validity_problem(X509 *cert)
{
	if (X509_cmp_current_time(X509_get0_notBefore(cert)) >= 0)
		return "is not valid yet";
	if (X509_cmp_current_time(X509_get0_notAfter(cert)) <= 0)
		return "has expired";
	return NULL;
}

static void subject_text(X509 *cert, char *buf, size_t len)
{
	X509_NAME_oneline(X509_get_subject_name(cert), buf, (int)len);
}

/* Reads every certificate of a PEM file; reports problems.  Returns them (free with
 * sk_X509_pop_free(.., X509_free)) or NULL. */
static STACK_OF(X509) *read_certs(const char *path, const char *what, tls_report_fn *report,
				  void *arg, unsigned *problems)
{
	STACK_OF(X509) *certs;
	struct stat st;
	BIO *bio = read_pem(path, what, &st, report, arg);
	X509 *x;

	if (!bio) {
		++*problems;
		return NULL;
	}
	certs = sk_X509_new_null();
	while ((x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL)
		sk_X509_push(certs, x);
	ERR_clear_error();	/* the end of the file reads as an error */
	BIO_free(bio);
	if (sk_X509_num(certs) == 0) {
		say(report, arg, "%s %s: no PEM certificate in it", what, path);
		++*problems;
		sk_X509_free(certs);
		return NULL;
	}
	return certs;
}

unsigned tls_check_ca_file(const char *ca, tls_report_fn *report, void *arg)
{
	unsigned problems = 0;
	STACK_OF(X509) *cas = read_certs(ca, "CA file", report, arg, &problems);
	char name[256];

	for (int i = 0; cas && i < sk_X509_num(cas); i++) {
		X509 *x = sk_X509_value(cas, i);
		const char *why = validity_problem(x);

		if (why) {
			subject_text(x, name, sizeof(name));
			say(report, arg, "CA file %s: certificate %d (%s) %s", ca, i + 1, name, why);
			problems++;
		}
	}
	if (cas)
		sk_X509_pop_free(cas, X509_free);
	return problems;
}

unsigned tls_check_files(const char *cert, const char *key, const char *ca, int check_perms,
			 tls_report_fn *report, void *arg)
{
	unsigned problems = 0;
	STACK_OF(X509) *chain = read_certs(cert, "certificate", report, arg, &problems);
	EVP_PKEY *pkey = NULL;
	struct stat st;
	char name[256], ebuf[256];
	BIO *bio;

	for (int i = 0; chain && i < sk_X509_num(chain); i++) {
		X509 *x = sk_X509_value(chain, i);
		const char *why = validity_problem(x);

		if (why) {
			subject_text(x, name, sizeof(name));
			if (i == 0)
				say(report, arg, "certificate %s (%s) %s", cert, name, why);
			else
				say(report, arg, "certificate %s: chain certificate %d (%s) %s", cert,
				    i + 1, name, why);
			problems++;
		}
	}
	bio = read_pem(key, "private key", &st, report, arg);
	if (!bio) {
		problems++;
	} else {
		if (check_perms && (st.st_mode & (S_IRGRP | S_IROTH | S_IWGRP | S_IWOTH))) {
			say(report, arg, "private key %s: readable or writable by others; chmod 600 it",
			    key);
			problems++;
		}
		/* an empty passphrase callback: an encrypted key fails instead of prompting */
		pkey = PEM_read_bio_PrivateKey(bio, NULL, NULL, (void *)"");
		BIO_free(bio);
		if (!pkey) {
			say(report, arg, "private key %s: not an unencrypted PEM private key (%s)", key,
			    tls_error_text(ebuf, sizeof(ebuf)));
			problems++;
		}
	}
	if (chain && pkey && X509_check_private_key(sk_X509_value(chain, 0), pkey) != 1) {
		ERR_clear_error();
		say(report, arg, "private key %s does not match the certificate %s", key, cert);
		problems++;
	}
	EVP_PKEY_free(pkey);
	if (chain)
		sk_X509_pop_free(chain, X509_free);
	problems += tls_check_ca_file(ca, report, arg);
	return problems;
}

static void load_report(void *arg, const char *msg)
{
	char **first = arg;

	if (!*first)
		*first = gw_xstrdup(msg);
}

int tls_ctx_load(SSL_CTX *ctx, const char *cert, const char *key, const char *ca,
		 unsigned verify_depth, char *err, size_t errlen)
{
	char *first = NULL, ebuf[256];
	X509_STORE *store;
	STACK_OF(X509_NAME) *names;

	/* the checks first, so that a bad file changes nothing in ctx */
	if (tls_check_files(cert, key, ca, 0, load_report, &first) != 0) {
		snprintf(err, errlen, "%s", first ? first : "bad TLS files");
		free(first);
		return -1;
	}
	store = X509_STORE_new();
	if (!store || X509_STORE_load_file(store, ca) != 1) {
		snprintf(err, errlen, "CA file %s: %s", ca, tls_error_text(ebuf, sizeof(ebuf)));
		X509_STORE_free(store);
		return -1;
	}
	if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1 ||
	    SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1 ||
	    SSL_CTX_check_private_key(ctx) != 1) {
		snprintf(err, errlen, "%s / %s: %s", cert, key, tls_error_text(ebuf, sizeof(ebuf)));
		X509_STORE_free(store);
		return -1;
	}
	SSL_CTX_set_cert_store(ctx, store);	/* ctx owns it; the old one is freed */
	names = SSL_load_client_CA_file(ca);
	if (names)
		SSL_CTX_set_client_CA_list(ctx, names);
	SSL_CTX_set_verify_depth(ctx, (int)verify_depth);
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	ERR_clear_error();
	return 0;
}

/* RFC 5922 7.1: "sip:example.com" (no user, no parameters) names example.com. */
static int uri_names(const char *uri, size_t len, const char *domain)
{
	size_t dlen = strlen(domain);

	return len == 4 + dlen && strncasecmp(uri, "sip:", 4) == 0 &&
	       strncasecmp(uri + 4, domain, dlen) == 0;
}

static int dns_names(const char *dns, size_t len, const char *domain)
{
	/* wildcards are refused (RFC 5922 7.2): "*.example" names nothing */
	return len == strlen(domain) && !memchr(dns, '*', len) && strncasecmp(dns, domain, len) == 0;
}

/* Calls fn on each identity of cert (type GEN_URI or GEN_DNS, or -1 for the CommonName used
 * when there is no subjectAltName); stops when fn returns non-zero and returns that. */
static int each_identity(X509 *cert, int (*fn)(void *, int, const char *, size_t), void *arg)
{
	GENERAL_NAMES *sans = X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
	int r = 0;

	if (sans) {
		for (int i = 0; !r && i < sk_GENERAL_NAME_num(sans); i++) {
			const GENERAL_NAME *g = sk_GENERAL_NAME_value(sans, i);
			const ASN1_IA5STRING *s;

			if (g->type == GEN_URI)
				s = g->d.uniformResourceIdentifier;
			else if (g->type == GEN_DNS)
				s = g->d.dNSName;
			else
				continue;
			/* an embedded NUL would make a shorter name match: never */
			if (memchr(s->data, '\0', (size_t)s->length))
				continue;
			r = fn(arg, g->type, (const char *)s->data, (size_t)s->length);
		}
		GENERAL_NAMES_free(sans);
		return r;
	}
	{
		X509_NAME *subj = X509_get_subject_name(cert);
		int idx = subj ? X509_NAME_get_index_by_NID(subj, NID_commonName, -1) : -1;
		ASN1_STRING *cn;
		unsigned char *utf8 = NULL;
		int len;

		if (idx < 0)
			return 0;
		cn = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subj, idx));
		len = ASN1_STRING_to_UTF8(&utf8, cn);
		if (len > 0 && !memchr(utf8, '\0', (size_t)len))
			r = fn(arg, -1, (const char *)utf8, (size_t)len);
		OPENSSL_free(utf8);
		ERR_clear_error();
	}
	return r;
}

static int names_one(void *arg, int type, const char *s, size_t len)
{
	const char *domain = arg;

	return type == GEN_URI ? uri_names(s, len, domain) : dns_names(s, len, domain);
}

int tls_cert_names_domain(X509 *cert, const char *domain)
{
	return cert && domain && *domain && each_identity(cert, names_one, (void *)domain);
}

struct idbuf {
	char *buf;
	size_t len, n;
};

static int append_one(void *arg, int type, const char *s, size_t len)
{
	struct idbuf *b = arg;
	int w;

	if (b->n + 1 >= b->len)
		return 1;
	w = snprintf(b->buf + b->n, b->len - b->n, "%s%s%.*s", b->n ? ", " : "",
		     type == -1 ? "CN=" : "", (int)(len > 200 ? 200 : len), s);
	if (w < 0 || (size_t)w >= b->len - b->n) {
		b->n = b->len - 1;
		return 1;
	}
	/* printable only: names come from the peer */
	for (size_t i = b->n; i < b->n + (size_t)w; i++)
		if ((unsigned char)b->buf[i] < 0x20 || (unsigned char)b->buf[i] > 0x7e)
			b->buf[i] = '?';
	b->n += (size_t)w;
	return 0;
}

void tls_cert_identities(X509 *cert, char *buf, size_t len)
{
	struct idbuf b = { buf, len, 0 };

	if (!len)
		return;
	buf[0] = '\0';
	if (cert)
		each_identity(cert, append_one, &b);
	if (!buf[0])
		snprintf(buf, len, "%s", "(no identity)");
}
