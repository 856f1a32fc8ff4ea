/* tls.h - OpenSSL helpers shared by every link that runs over TLS (SIP, MSRP, the component
 * link): checking the files of <tls> before anything starts, loading them into a context, and
 * the peer identity rules of RFC 5922 section 7.
 *
 * Identity (RFC 5922 7.1, 7.2): a certificate names a SIP domain when one of its
 * subjectAltName entries is the URI "sip:<domain>" (no user part) or the DNS name <domain>,
 * compared case-insensitively; wildcard entries ("*.example") never match.  Only when the
 * certificate has no subjectAltName at all is its subject's CommonName used instead.
 */
#ifndef GW_TLS_H
#define GW_TLS_H

#include <stddef.h>

#include <openssl/ssl.h>
#include <openssl/x509.h>

/* Receives one problem found in a file, as a full sentence naming the file. */
typedef void tls_report_fn(void *arg, const char *msg);

/* Checks the files of <tls>: the certificate chain (PEM, readable, the first one within its
 * validity period), the private key (PEM, not encrypted, matching the certificate, and when
 * check_perms is non-zero not readable by group or others) and the CA file (PEM, at least one
 * certificate, none expired).  Reports every problem; returns how many there were. */
unsigned tls_check_files(const char *cert, const char *key, const char *ca, int check_perms,
			 tls_report_fn *report, void *arg);

/* Checks a CA file alone (as tls_check_files does).  Returns the number of problems. */
unsigned tls_check_ca_file(const char *ca, tls_report_fn *report, void *arg);

/* Loads cert (chain), key and ca into ctx, replacing what it held: new connections use them,
 * established ones keep theirs.  Sets the verification depth, TLS 1.2 as the lowest version
 * and, for a server context, the CA names sent to clients.  Returns 0, or -1 with err
 * filled. */
int tls_ctx_load(SSL_CTX *ctx, const char *cert, const char *key, const char *ca,
		 unsigned verify_depth, char *err, size_t errlen);

/* 1 if cert names the SIP domain (RFC 5922 rules above), else 0. */
int tls_cert_names_domain(X509 *cert, const char *domain);

/* The identities cert offers under RFC 5922 ("sip.example, sip:sip.example"; the CommonName
 * only when there is no subjectAltName), for logs.  Writes at most len bytes, NUL-terminated. */
void tls_cert_identities(X509 *cert, char *buf, size_t len);

/* The text of OpenSSL's most recent error (and clears the queue), for logs. */
const char *tls_error_text(char *buf, size_t len);

#endif
