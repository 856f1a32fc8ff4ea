/* sip_tls.c - SIP over TLS: the gateway's certificate in Sofia-SIP's TLS transport, mutual
 * authentication, and who is at the other end of each TLS connection (RFC 5922).
 *
 * Sofia-SIP 1.12's TLS transport reads its certificate and key from "agent.pem" and its CAs from
 * "cafile.pem" in one directory (TPTAG_CERTIFICATE), makes one OpenSSL context per TLS
 * listener, and exposes neither the context nor a hook.  So:
 *  - sip_tls_prepare() writes those two files into a private directory just before the stack
 *    starts (removed as soon as it has started: Sofia reads them once);
 *  - while the stack starts, SSL_CTX_set_verify(), which Sofia calls once per context, is
 *    intercepted here (a definition in the executable comes before libssl's, as guard.c does
 *    for accept()): the context is kept, loaded again with the full chain (tls_ctx_load), and
 *    Sofia's verification callback wrapped by sip_tls_verify();
 *  - sip_tls_verify() runs in every handshake, both ways.  After Sofia's own checks (the chain
 *    to <tls ca>, dates), on the peer's own certificate (depth 0) it decides who the peer is:
 *    the certificate must name (tls.h) a configured peer whose <trust> networks hold the remote
 *    address, and on a connection the gateway opened to a peer's route, that peer.  Otherwise
 *    the handshake fails and the reason is logged.  It records the certificate against the
 *    connection's remote address, so that each request received over TLS can be checked
 *    against its From domain (sip_tls_names);
 *  - an info callback logs the alerts sent and received (a peer refusing the gateway's
 *    certificate, a client that sent none), since Sofia logs handshake failures only at debug.
 * SIGHUP reloads the files into the kept contexts (sip_tls_reload): connections established
 * keep their keys, new ones use the new files.
 *
 * Which transport a request came over is read from its top Via: Sofia's nta drops a request
 * whose Via transport differs from the one it arrived on, so "SIP/2.0/TLS" there is a fact.
 *
 * The state is process-wide, like guard.c's: OpenSSL's callbacks carry no context of ours.
 */
#include <arpa/inet.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <sofia-sip/tport.h>

#include "../gateway/gw.h"
#include "../gateway/tls.h"
#include "sip.h"

#define SIP_TLS_MAX_CTX 8		/* TLS listeners (each has its own context) */

/* A TLS connection whose handshake got as far as the peer's certificate. */
struct tls_conn {
	struct sockaddr_storage remote;
	int fd;
	ino_t ino;		/* the socket's identity: a reused descriptor is another connection */
	X509 *cert;		/* the peer's certificate (a reference) */
	struct tls_conn *next;
};

#define SIP_TLS_BUCKETS 256

static struct {
	const struct conf *conf;	/* NULL: not started */
	int capturing;			/* the stack is starting: Sofia's contexts are ours to keep */
	SSL_CTX *ctx[SIP_TLS_MAX_CTX];
	size_t nctx;
	SSL_verify_cb sofia_verify;	/* Sofia's own verification callback */
	char dir[64];			/* the files written for Sofia, until the stack started */
	struct tls_conn *conns[SIP_TLS_BUCKETS];
	size_t nconns, purge_at;
	struct log_limit refused_log;	/* handshakes refused */
	struct log_limit alert_log;	/* alerts sent and received */
	unsigned long refused;		/* handshakes refused by the identity rules or the chain */
} stls = { .purge_at = 64 };

static size_t addr_hash(const struct sockaddr_storage *sa)
{
	const unsigned char *p;
	size_t len, h = 2166136261u;

	if (sa->ss_family == AF_INET) {
		p = (const unsigned char *)&((const struct sockaddr_in *)sa)->sin_addr;
		len = 4;
		h ^= ((const struct sockaddr_in *)sa)->sin_port;
	} else {
		p = (const unsigned char *)&((const struct sockaddr_in6 *)sa)->sin6_addr;
		len = 16;
		h ^= ((const struct sockaddr_in6 *)sa)->sin6_port;
	}
	for (size_t i = 0; i < len; i++)
		h = (h ^ p[i]) * 16777619u;
	return h % SIP_TLS_BUCKETS;
}

/* sa as IPv4 (an IPv4 address or a v4-mapped IPv6 one): 1 and *out, else 0. */
static int as_v4(const struct sockaddr *sa, struct sockaddr_in *out)
{
	static const unsigned char mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
	const struct sockaddr_in6 *v6 = (const struct sockaddr_in6 *)sa;

	memset(out, 0, sizeof(*out));
	out->sin_family = AF_INET;
	if (sa->sa_family == AF_INET) {
		*out = *(const struct sockaddr_in *)sa;
		return 1;
	}
	if (sa->sa_family != AF_INET6 || memcmp(&v6->sin6_addr, mapped, 12) != 0)
		return 0;
	memcpy(&out->sin_addr, (const unsigned char *)&v6->sin6_addr + 12, 4);
	out->sin_port = v6->sin6_port;
	return 1;
}

/* Address and port equal (a v4-mapped v6 address equals its v4 form). */
static int same_endpoint(const struct sockaddr *a, const struct sockaddr *b)
{
	struct sockaddr_in x, y;

	if (as_v4(a, &x) && as_v4(b, &y))
		return x.sin_addr.s_addr == y.sin_addr.s_addr && x.sin_port == y.sin_port;
	if (a->sa_family != AF_INET6 || b->sa_family != AF_INET6)
		return 0;
	return memcmp(&((const struct sockaddr_in6 *)a)->sin6_addr,
		      &((const struct sockaddr_in6 *)b)->sin6_addr, 16) == 0 &&
	       ((const struct sockaddr_in6 *)a)->sin6_port ==
	       ((const struct sockaddr_in6 *)b)->sin6_port;
}

/* The remote address in the canonical form the table uses (v4-mapped addresses as v4). */
static void canonical(const struct sockaddr *in, struct sockaddr_storage *out)
{
	struct sockaddr_in v4;

	memset(out, 0, sizeof(*out));
	if (as_v4(in, &v4))
		memcpy(out, &v4, sizeof(v4));
	else if (in->sa_family == AF_INET6)
		memcpy(out, in, sizeof(struct sockaddr_in6));
}

static int conn_alive(const struct tls_conn *c)
{
	struct stat st;

	return fstat(c->fd, &st) == 0 && st.st_ino == c->ino;
}

static void conn_free(struct tls_conn *c)
{
	X509_free(c->cert);
	free(c);
}

/* Drops the entries of closed connections; run when the table has doubled since the last. */
static void conns_purge(void)
{
	for (size_t b = 0; b < SIP_TLS_BUCKETS; b++) {
		for (struct tls_conn **pp = &stls.conns[b]; *pp;) {
			struct tls_conn *c = *pp;

			if (conn_alive(c)) {
				pp = &c->next;
				continue;
			}
			*pp = c->next;
			conn_free(c);
			stls.nconns--;
		}
	}
	stls.purge_at = stls.nconns * 2 > 64 ? stls.nconns * 2 : 64;
}

static void conn_record(int fd, const struct sockaddr_storage *remote, X509 *cert)
{
	size_t b = addr_hash(remote);
	struct tls_conn *c;
	struct stat st;

	if (fstat(fd, &st) != 0)
		return;
	for (c = stls.conns[b]; c; c = c->next)
		if (same_endpoint((const struct sockaddr *)&c->remote,
				  (const struct sockaddr *)remote))
			break;
	if (!c) {
		if (stls.nconns >= stls.purge_at)
			conns_purge();
		c = gw_xcalloc(1, sizeof(*c));
		c->remote = *remote;
		c->next = stls.conns[b];
		stls.conns[b] = c;
		stls.nconns++;
	} else {
		X509_free(c->cert);
	}
	c->fd = fd;
	c->ino = st.st_ino;
	X509_up_ref(cert);
	c->cert = cert;
}

static const struct tls_conn *conn_find(const struct sockaddr *remote)
{
	struct sockaddr_storage key;

	canonical(remote, &key);
	for (const struct tls_conn *c = stls.conns[addr_hash(&key)]; c; c = c->next)
		if (same_endpoint((const struct sockaddr *)&c->remote, (const struct sockaddr *)&key))
			return conn_alive(c) ? c : NULL;
	return NULL;
}

int sip_tls_names(const struct sockaddr *remote, const char *domain)
{
	const struct tls_conn *c = remote ? conn_find(remote) : NULL;

	return c && tls_cert_names_domain(c->cert, domain);
}

/* 1 if remote is a TLS route of a peer (the gateway connected to it). */
static int route_of(const struct conf_peer *pe, const struct sockaddr_storage *remote)
{
	struct sockaddr_storage r;
	struct sockaddr_in *v4 = (struct sockaddr_in *)&r;
	struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&r;

	if (pe->route_transport != CONF_TRANSPORT_TLS || !pe->route_address)
		return 0;
	memset(&r, 0, sizeof(r));
	if (inet_pton(AF_INET, pe->route_address, &v4->sin_addr) == 1) {
		v4->sin_family = AF_INET;
		v4->sin_port = htons((uint16_t)pe->route_port);
	} else if (inet_pton(AF_INET6, pe->route_address, &v6->sin6_addr) == 1) {
		v6->sin6_family = AF_INET6;
		v6->sin6_port = htons((uint16_t)pe->route_port);
	} else {
		return 0;
	}
	return same_endpoint((const struct sockaddr *)&r, (const struct sockaddr *)remote);
}

/* Who the certificate at the end of a connection is, by the identity rules (file comment).
 * Returns NULL when acceptable, else the reason. */
static const char *identity_problem(X509 *cert, const struct sockaddr_storage *remote,
				    int outgoing, char *why, size_t whylen)
{
	const struct conf *conf = stls.conf;
	const struct conf_peer *routed = NULL;
	int named_trusted = 0, named = 0;

	for (size_t i = 0; i < conf->npeers; i++) {
		const struct conf_peer *pe = conf->peers[i];
		int names = tls_cert_names_domain(cert, pe->domain);

		if (outgoing && route_of(pe, remote)) {
			if (names)
				return NULL;	/* the peer the gateway meant to reach */
			routed = pe;
		}
		named |= names;
		named_trusted |= names && conf_peer_trusts(pe, (const struct sockaddr *)remote);
	}
	if (routed) {
		snprintf(why, whylen, "the certificate does not name %s, the peer this route is "
			 "for", routed->domain);
		return why;
	}
	if (named_trusted)
		return NULL;
	snprintf(why, whylen, named ? "the certificate names a peer whose networks do not hold "
		 "this address" : "the certificate names no configured peer");
	return why;
}

static int sip_tls_verify(int ok, X509_STORE_CTX *store)
{
	SSL *ssl = X509_STORE_CTX_get_ex_data(store, SSL_get_ex_data_X509_STORE_CTX_idx());
	X509 *cert = X509_STORE_CTX_get_current_cert(store);
	int depth = X509_STORE_CTX_get_error_depth(store);
	struct sockaddr_storage ss, remote;
	socklen_t sslen = sizeof(ss);
	char addr[INET6_ADDRSTRLEN + 16], ids[256], why[160];
	const char *problem;
	int fd, outgoing;

	if (stls.sofia_verify)
		ok = stls.sofia_verify(ok, store);
	fd = ssl ? SSL_get_fd(ssl) : -1;
	memset(&ss, 0, sizeof(ss));
	if (fd < 0 || getpeername(fd, (struct sockaddr *)&ss, &sslen) != 0)
		ss.ss_family = AF_UNSPEC;
	canonical((const struct sockaddr *)&ss, &remote);
	gw_sockaddr_text((const struct sockaddr *)&remote, addr, sizeof(addr));
	outgoing = ssl && !SSL_is_server(ssl);
	tls_cert_identities(cert, ids, sizeof(ids));
	if (!ok) {
		int err = X509_STORE_CTX_get_error(store);

		stls.refused++;
		log_limited(&stls.refused_log, CONF_LOG_NOTICE, __func__,
			    "SIP TLS %s %s refused: %s (certificate %s at depth %d)",
			    outgoing ? "connection to" : "connection from", addr,
			    X509_verify_cert_error_string(err), ids, depth);
		return 0;
	}
	if (depth != 0 || !stls.conf)
		return 1;
	problem = identity_problem(cert, &remote, outgoing, why, sizeof(why));
	if (problem) {
		stls.refused++;
		log_limited(&stls.refused_log, CONF_LOG_NOTICE, __func__,
			    "SIP TLS %s %s refused: %s (it names %s)",
			    outgoing ? "connection to" : "connection from", addr, problem, ids);
		X509_STORE_CTX_set_error(store, X509_V_ERR_APPLICATION_VERIFICATION);
		return 0;
	}
	conn_record(fd, &remote, cert);
	log_debug("SIP TLS %s %s: certificate %s verified", outgoing ? "connection to" :
		  "connection from", addr, ids);
	return 1;
}

/* Logs the alerts of a handshake: the reason a peer refused the gateway, or why the gateway
 * refused a peer that its verification callback never saw (no certificate at all). */
static void sip_tls_info(const SSL *ssl, int where, int ret)
{
	struct sockaddr_storage ss;
	socklen_t sslen = sizeof(ss);
	char addr[INET6_ADDRSTRLEN + 16];
	int fd;

	if (!(where & SSL_CB_ALERT))
		return;
	/* close_notify is an orderly close, and an alert once the handshake is over is the end of
	 * a connection (a peer gone without close_notify, say), not a refusal */
	if ((ret & 0xff) == SSL_AD_CLOSE_NOTIFY || SSL_is_init_finished(ssl)) {
		log_debug("SIP TLS alert \"%s\" %s after the handshake",
			  SSL_alert_desc_string_long(ret), where & SSL_CB_READ ? "received" : "sent");
		return;
	}
	fd = SSL_get_fd(ssl);
	memset(&ss, 0, sizeof(ss));
	if (fd < 0 || getpeername(fd, (struct sockaddr *)&ss, &sslen) != 0) {
		log_debug("SIP TLS alert \"%s\" on a connection already closed",
			  SSL_alert_desc_string_long(ret));
		return;
	}
	gw_sockaddr_text((const struct sockaddr *)&ss, addr, sizeof(addr));
	/* OpenSSL 3.0 has no name for TLS 1.3's certificate_required (RFC 8446 6.2) */
	log_limited(&stls.alert_log, CONF_LOG_NOTICE, __func__, "SIP TLS %s %s: %s alert \"%s\"%s",
		    where & SSL_CB_READ ? "received from" : "sent to", addr,
		    SSL_alert_type_string_long(ret), (ret & 0xff) == 116 ?
		    "certificate required (no client certificate was sent)" :
		    SSL_alert_desc_string_long(ret),
		    where & SSL_CB_READ ? " (the peer refused the handshake)" : "");
}

/* Sofia's contexts pass through here while the stack starts (see the file comment). */
void SSL_CTX_set_verify(SSL_CTX *ctx, int mode, SSL_verify_cb cb)
{
	static void (*real)(SSL_CTX *, int, SSL_verify_cb);

	if (!real) {
		*(void **)&real = dlsym(RTLD_NEXT, "SSL_CTX_set_verify");
		if (!real)
			gw_fatal("SSL_CTX_set_verify not found in libssl");
	}
	if (stls.capturing && ctx && stls.nctx < SIP_TLS_MAX_CTX) {
		stls.ctx[stls.nctx++] = ctx;
		if (cb != sip_tls_verify)
			stls.sofia_verify = cb;
		cb = sip_tls_verify;
		/* Sofia asks for the peer's certificate only with TPTLS_VERIFY_INCOMING: always */
		mode = SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
		SSL_CTX_set_info_callback(ctx, sip_tls_info);
	}
	real(ctx, mode, cb);
}

static int sofia_ctx(const SSL_CTX *ctx)
{
	for (size_t i = 0; i < stls.nctx; i++)
		if (stls.ctx[i] == ctx)
			return 1;
	return 0;
}

/* Debian's Sofia-SIP 1.12.11 ends a TLS connection (tls_free) with SSL_shutdown(),
 * SSL_CTX_free() of the listener's context (tls_init_secondary copies the master's type, so
 * each connection counts as a master) and BIO_free() of the socket BIO, but never SSL_free():
 * every connection leaked its SSL object and buffers (55-80 KB), and the two context
 * references that SSL held made up for the extra SSL_CTX_free().  Its SSL_shutdown() comes
 * through here, and for a connection of Sofia's own contexts the SSL is freed after it, with
 * one context reference taken for the SSL_CTX_free() that follows and one BIO reference for
 * the BIO_free() (SSL_free() frees the BIO too), so that those are the last.  Nothing else in
 * the process uses Sofia's contexts. */
int SSL_shutdown(SSL *ssl)
{
	static int (*real)(SSL *);
	BIO *bio;
	int r;

	if (!real) {
		*(void **)&real = dlsym(RTLD_NEXT, "SSL_shutdown");
		if (!real)
			gw_fatal("SSL_shutdown not found in libssl");
	}
	if (!ssl || !sofia_ctx(SSL_get_SSL_CTX(ssl)))
		return real(ssl);
	r = real(ssl);
	ERR_clear_error();
	SSL_CTX_up_ref(SSL_get_SSL_CTX(ssl));
	bio = SSL_get_rbio(ssl);
	if (bio)
		BIO_up_ref(bio);
	SSL_free(ssl);
	return r;
}

/* Sofia-SIP's tls_post_connection_check() parses each peer certificate's subjectAltName into
 * its own subject list and never frees what it parsed (the GENERAL_NAMES and the CONF_VALUE
 * list: about 160 bytes per connection).  The gateway does not use that list (it applies its
 * own identity rules, above, and leaves Sofia's subject checks off), so when Sofia asks for
 * the extension's method the answer is none, and it goes on to the next extension; every
 * other caller gets OpenSSL's answer.  The caller is told by its return address. */
const X509V3_EXT_METHOD *X509V3_EXT_get(X509_EXTENSION *ext)
{
	static const X509V3_EXT_METHOD *(*real)(X509_EXTENSION *);
	static void *sofia_base;
	Dl_info here, caller;

	if (!real) {
		*(void **)&real = dlsym(RTLD_NEXT, "X509V3_EXT_get");
		if (!real)
			gw_fatal("X509V3_EXT_get not found in libcrypto");
		if (dladdr((void *)tport_tcreate, &here) && here.dli_fbase)
			sofia_base = here.dli_fbase;
	}
	if (sofia_base && dladdr(__builtin_return_address(0), &caller) &&
	    caller.dli_fbase == sofia_base)
		return NULL;
	return real(ext);
}

/* Copies src to dst (created 0600).  Returns 0 or -1 with errno. */
static int copy_file(const char *src, FILE *out)
{
	char buf[4096];
	size_t n;
	FILE *in = fopen(src, "re");

	if (!in)
		return -1;
	while ((n = fread(buf, 1, sizeof(buf), in)) > 0)
		if (fwrite(buf, 1, n, out) != n)
			break;
	explicit_bzero(buf, sizeof(buf));
	n = (size_t)ferror(in);
	fclose(in);
	return n ? -1 : 0;
}

static int write_joined(const char *path, const char *a, const char *b)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	FILE *out = fd >= 0 ? fdopen(fd, "we") : NULL;
	int r;

	if (!out) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	r = copy_file(a, out);
	if (r == 0 && b) {
		fputc('\n', out);
		r = copy_file(b, out);
	}
	if (fclose(out) != 0)
		r = -1;
	return r;
}

static void remove_dir(void)
{
	char path[96];

	if (!stls.dir[0])
		return;
	snprintf(path, sizeof(path), "%s/agent.pem", stls.dir);
	unlink(path);
	snprintf(path, sizeof(path), "%s/cafile.pem", stls.dir);
	unlink(path);
	rmdir(stls.dir);
	stls.dir[0] = '\0';
}

const char *sip_tls_prepare(const struct conf *conf)
{
	char agent[96], cafile[96];
	const char *tmp = getenv("TMPDIR");

	stls.conf = conf;
	if (!conf->tls_cert)
		return NULL;
	snprintf(stls.dir, sizeof(stls.dir), "%s/simplegw-tls-XXXXXX",
		 tmp && *tmp && strlen(tmp) < 32 ? tmp : "/tmp");
	if (!mkdtemp(stls.dir)) {
		log_error("cannot make a private directory for the TLS files: %s", strerror(errno));
		stls.dir[0] = '\0';
		return NULL;
	}
	snprintf(agent, sizeof(agent), "%s/agent.pem", stls.dir);
	snprintf(cafile, sizeof(cafile), "%s/cafile.pem", stls.dir);
	if (write_joined(agent, conf->tls_cert, conf->tls_key) != 0 ||
	    write_joined(cafile, conf->tls_ca, NULL) != 0) {
		log_error("cannot prepare the TLS files in %s: %s", stls.dir, strerror(errno));
		remove_dir();
		return NULL;
	}
	stls.capturing = 1;
	return stls.dir;
}

int sip_tls_started(void)
{
	char err[512];
	int ok = 0;

	stls.capturing = 0;
	remove_dir();
	for (size_t i = 0; i < stls.nctx; i++) {
		if (tls_ctx_load(stls.ctx[i], stls.conf->tls_cert, stls.conf->tls_key,
				 stls.conf->tls_ca, stls.conf->tls_verify_depth, err,
				 sizeof(err)) != 0) {
			log_error("SIP TLS: %s", err);
			return -1;
		}
		ok++;
	}
	if (stls.conf && stls.conf->tls_cert) {
		for (size_t i = 0; i < stls.conf->nlisten; i++)
			if (stls.conf->listen[i].transport == CONF_TRANSPORT_TLS && !ok) {
				log_error("SIP TLS: the TLS transport started without a context");
				return -1;
			}
	}
	return 0;
}

void sip_tls_reload(void)
{
	char err[512];

	for (size_t i = 0; stls.conf && i < stls.nctx; i++) {
		if (tls_ctx_load(stls.ctx[i], stls.conf->tls_cert, stls.conf->tls_key,
				 stls.conf->tls_ca, stls.conf->tls_verify_depth, err,
				 sizeof(err)) != 0) {
			log_error("SIP TLS: reload refused, the files in use stay: %s", err);
			return;
		}
	}
	if (stls.nctx)
		log_notice("SIP TLS: certificate, key and CA files reloaded for new connections");
}

unsigned long sip_tls_refused(void)
{
	return stls.refused;
}

void sip_tls_stop(void)
{
	stls.capturing = 0;
	remove_dir();
	for (size_t b = 0; b < SIP_TLS_BUCKETS; b++) {
		while (stls.conns[b]) {
			struct tls_conn *c = stls.conns[b];

			stls.conns[b] = c->next;
			conn_free(c);
		}
	}
	stls.nconns = 0;
	stls.nctx = 0;
	stls.sofia_verify = NULL;
	stls.conf = NULL;
}
