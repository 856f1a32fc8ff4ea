/* test_conf.c - table-driven tests of the gateway file parser: values, structure, secrets, lookups. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <syslog.h>
#include <unistd.h>

#include "../../conf/conf.h"
#include "../../gateway/gw.h"
#include "test.h"

#define MAX_DIAGS 32
#define MAX_WANT 24

/* ---- collecting diagnostics */

struct diags {
	size_t n;
	char *file[MAX_DIAGS];
	unsigned line[MAX_DIAGS];
	char *msg[MAX_DIAGS];
};

static void collect(void *arg, const char *file, unsigned line, const char *msg)
{
	struct diags *d = arg;

	if (d->n < MAX_DIAGS) {
		d->file[d->n] = gw_xstrdup(file);
		d->line[d->n] = line;
		d->msg[d->n] = gw_xstrdup(msg);
	}
	d->n++;
}

static void diags_clear(struct diags *d)
{
	for (size_t i = 0; i < d->n && i < MAX_DIAGS; i++) {
		free(d->file[i]);
		free(d->msg[i]);
	}
	memset(d, 0, sizeof(*d));
}

static void diags_dump(const struct diags *d)
{
	for (size_t i = 0; i < d->n && i < MAX_DIAGS; i++)
		fprintf(stderr, "    got %s:%u: %s\n", d->file[i], d->line[i], d->msg[i]);
}

/* Replaces every '@' in s by dir (the test's temporary directory). */
static char *subst(const char *s, const char *dir)
{
	size_t n = 0, dl = strlen(dir), o = 0;
	char *out;

	for (const char *p = s; *p; p++)
		n += *p == '@' ? dl : 1;
	out = gw_xmalloc(n + 1);
	for (const char *p = s; *p; p++) {
		if (*p == '@') {
			memcpy(out + o, dir, dl);
			o += dl;
		} else {
			out[o++] = *p;
		}
	}
	out[o] = '\0';
	return out;
}

/* ---- printing fields of a configuration by name, for "field=value" checks */

enum fkind { F_STR, F_STRLEN, F_UNSIGNED, F_SIZE, F_INT, F_LEVEL, F_FACILITY, F_TRANSPORT,
	     F_ADDRESSING, F_IM_TYPE, F_IM_VERDICT, F_PEER_TLS, F_XMPP_TLS, F_SERVICES };
enum fbase { B_CONF, B_LISTEN, B_PEER };

struct field {
	enum fbase base;
	const char *name;
	enum fkind kind;
	size_t off;
};

#define FC(n, k, f) { B_CONF, n, k, offsetof(struct conf, f) }
#define FL(n, k, f) { B_LISTEN, n, k, offsetof(struct conf_listen, f) }
#define FP(n, k, f) { B_PEER, n, k, offsetof(struct conf_peer, f) }

static const struct field fields[] = {
	FC("log.level", F_LEVEL, log_level),
	FC("log.stderr", F_INT, log_stderr),
	FC("log.syslog", F_INT, log_syslog),
	FC("log.facility", F_FACILITY, log_facility),
	FC("xmpp.domain", F_STR, xmpp_domain),
	FC("xmpp.server", F_STR, xmpp_server),
	FC("xmpp.port", F_UNSIGNED, xmpp_port),
	FC("xmpp.secret", F_STR, secret),
	FC("xmpp.secret.len", F_STRLEN, secret),
	FC("xmpp.reconnect-min", F_UNSIGNED, reconnect_min_ms),
	FC("xmpp.reconnect-max", F_UNSIGNED, reconnect_max_ms),
	FC("xmpp.max-stanza", F_SIZE, max_stanza),
	FC("xmpp.tls", F_XMPP_TLS, xmpp_tls),
	FC("xmpp.ca", F_STR, xmpp_ca),
	FC("tls.certificate", F_STR, tls_cert),
	FC("tls.key", F_STR, tls_key),
	FC("tls.ca", F_STR, tls_ca),
	FC("tls.verify-depth", F_UNSIGNED, tls_verify_depth),
	FC("tls.line", F_UNSIGNED, tls_line),
	FC("audit.file", F_STR, audit_file),
	FC("audit.syslog", F_INT, audit_syslog),
	FC("audit.content", F_INT, audit_content),
	FC("sip.max-message", F_SIZE, max_sip_message),
	FC("sip.t1", F_UNSIGNED, sip_t1_ms),
	FC("sip.t4", F_UNSIGNED, sip_t4_ms),
	FC("sip.max-connections", F_UNSIGNED, sip_max_conns),
	FC("sip.max-connections-per-source", F_UNSIGNED, sip_max_conns_per_source),
	FC("sip.tcp-idle", F_UNSIGNED, sip_tcp_idle_ms),
	FC("nlisten", F_SIZE, nlisten),
	FC("im.max-body", F_SIZE, im_max_body),
	FC("im.delivery-wait", F_UNSIGNED, im_delivery_wait_ms),
	FC("im.barrier-window", F_UNSIGNED, im_barrier_window_ms),
	FC("im.type", F_IM_TYPE, im_type),
	FC("im.verdict", F_IM_VERDICT, im_verdict),
	FC("presence.enabled", F_INT, presence_enabled),
	FC("presence.database", F_STR, presence_db),
	FC("presence.expires", F_UNSIGNED, presence_expires_s),
	FC("presence.min-expires", F_UNSIGNED, presence_min_expires_s),
	FC("presence.max-expires", F_UNSIGNED, presence_max_expires_s),
	FC("presence.agent", F_STR, presence_agent),
	FC("presence.roster-lists", F_INT, presence_roster_lists),
	FC("presence.max-watchers", F_UNSIGNED, presence_max_watchers),
	FC("presence.max-per-user", F_UNSIGNED, presence_max_per_user),
	FC("presence.max-pending-per-user", F_UNSIGNED, presence_max_pending_per_user),
	FC("presence.max-per-watcher", F_UNSIGNED, presence_max_per_watcher),
	FC("presence.max-per-peer", F_UNSIGNED, presence_max_per_peer),
	FC("presence.max-subscriptions", F_UNSIGNED, presence_max_subscriptions),
	FC("presence.max-document", F_SIZE, presence_max_doc),
	FC("sessions.enabled", F_INT, sessions_enabled),
	FC("sessions.msrp-address", F_STR, msrp_address),
	FC("sessions.msrp-port", F_UNSIGNED, msrp_port),
	FC("sessions.max-per-user", F_UNSIGNED, sessions_max_per_user),
	FC("sessions.max-total", F_UNSIGNED, sessions_max_total),
	FC("sessions.max-queued", F_SIZE, sessions_max_queued),
	FC("sessions.max-message", F_SIZE, sessions_max_message),
	FC("sessions.chunk-size", F_SIZE, sessions_chunk_size),
	FC("sessions.connect-timeout", F_UNSIGNED, sessions_connect_ms),
	FC("sessions.idle-timeout", F_UNSIGNED, sessions_idle_s),
	FC("groupchat.enabled", F_INT, groupchat_enabled),
	FC("groupchat.max-total", F_UNSIGNED, groupchat_max_total),
	FC("groupchat.max-per-room", F_UNSIGNED, groupchat_max_per_room),
	FC("groupchat.max-per-user", F_UNSIGNED, groupchat_max_per_user),
	FC("groupchat.max-rooms", F_UNSIGNED, groupchat_max_rooms),
	FC("groupchat.join-timeout", F_UNSIGNED, groupchat_join_ms),
	FC("nmuc", F_SIZE, nmuc_services),
	FC("nadmins", F_SIZE, nadmins),
	FC("metrics.address", F_STR, metrics_address),
	FC("metrics.port", F_UNSIGNED, metrics_port),
	FC("npeers", F_SIZE, npeers),
	FC("nlists", F_SIZE, nlists),
	FC("path", F_STR, path),
	FL("transport", F_TRANSPORT, transport),
	FL("address", F_STR, address),
	FL("port", F_UNSIGNED, port),
	FL("line", F_UNSIGNED, line),
	FP("name", F_STR, name),
	FP("domain", F_STR, domain),
	FP("addressing", F_ADDRESSING, addressing),
	FP("component", F_STR, component),
	FP("sessions", F_INT, sessions),
	FP("groupchat", F_INT, groupchat),
	FP("route.address", F_STR, route_address),
	FP("route.port", F_UNSIGNED, route_port),
	FP("route.transport", F_TRANSPORT, route_transport),
	FP("route.options-interval", F_UNSIGNED, options_interval_ms),
	FP("authorization.mode", F_INT, authz),
	FP("authorization.xcap-root", F_STR, xcap_root),
	FP("authorization.refresh", F_UNSIGNED, xcap_refresh_ms),
	FP("rls.xcap-root", F_STR, rls_xcap_root),
	FP("rls.service", F_STR, rls_service),
	FP("tls", F_PEER_TLS, tls),
	FP("services", F_SERVICES, services),
	FP("limits.rate", F_UNSIGNED, rate),
	FP("limits.burst", F_UNSIGNED, burst),
	FP("limits.subscriptions", F_UNSIGNED, max_subscriptions),
	FP("limits.sessions", F_UNSIGNED, max_sessions),
	FP("limits.max-document", F_SIZE, max_document),
	FP("limits.retry-after", F_UNSIGNED, retry_after_s),
	FP("ntrust", F_SIZE, ntrust),
	FP("line", F_UNSIGNED, line),
};

static const char *facility_name(int f)
{
	static const struct {
		int value;
		const char *name;
	} names[] = {
		{ LOG_DAEMON, "daemon" }, { LOG_USER, "user" }, { LOG_LOCAL0, "local0" },
		{ LOG_LOCAL1, "local1" }, { LOG_LOCAL2, "local2" }, { LOG_LOCAL3, "local3" },
		{ LOG_LOCAL4, "local4" }, { LOG_LOCAL5, "local5" }, { LOG_LOCAL6, "local6" },
		{ LOG_LOCAL7, "local7" },
	};

	for (size_t i = 0; i < NELEM(names); i++)
		if (names[i].value == f)
			return names[i].name;
	return "?";
}

static char *trust_str(const struct conf_trust *t)
{
	char buf[INET6_ADDRSTRLEN];
	const void *a = t->addr.ss_family == AF_INET ?
		(const void *)&((const struct sockaddr_in *)(const void *)&t->addr)->sin_addr :
		(const void *)&((const struct sockaddr_in6 *)(const void *)&t->addr)->sin6_addr;

	inet_ntop(t->addr.ss_family, a, buf, sizeof(buf));
	return gw_xasprintf("%s/%u", buf, t->prefix);
}

/* <peer services> bits as words in kw_service order ("pager presence"), or "all". */
static char *services_str(unsigned bits)
{
	static const struct {
		unsigned bit;
		const char *name;
	} words[] = {
		{ CONF_SVC_PAGER, "pager" }, { CONF_SVC_PRESENCE, "presence" },
		{ CONF_SVC_SESSIONS, "sessions" }, { CONF_SVC_GROUPCHAT, "groupchat" },
	};
	char buf[128];
	size_t n = 0;

	if (bits == CONF_SVC_ALL)
		return gw_xstrdup("all");
	buf[0] = '\0';
	for (size_t i = 0; i < NELEM(words); i++)
		if (bits & words[i].bit)
			n += (size_t)snprintf(buf + n, sizeof(buf) - n, "%s%s", n ? " " : "",
					      words[i].name);
	if (bits & ~(unsigned)CONF_SVC_ALL)
		snprintf(buf + n, sizeof(buf) - n, "%s0x%x", n ? " " : "",
			 bits & ~(unsigned)CONF_SVC_ALL);
	return gw_xstrdup(buf[0] ? buf : "(none)");
}

/* Prints the named field ("xmpp.port", "listen[1].address", "peer[0].trust[2]", ...), or NULL. */
static char *field_get(const struct conf *c, const char *name)
{
	enum fbase base = B_CONF;
	const char *obj = (const char *)c;
	size_t idx, j;
	int used = 0;

	if (sscanf(name, "listen[%zu].%n", &idx, &used) == 1 && used) {
		if (idx >= c->nlisten)
			return NULL;
		base = B_LISTEN;
		obj = (const char *)&c->listen[idx];
		name += used;
	} else if (sscanf(name, "peer[%zu].%n", &idx, &used) == 1 && used) {
		if (idx >= c->npeers)
			return NULL;
		base = B_PEER;
		obj = (const char *)c->peers[idx];
		name += used;
		used = 0;
		if (sscanf(name, "trust[%zu]%n", &j, &used) == 1 && used) {
			const struct conf_peer *pe = c->peers[idx];

			if (j >= pe->ntrust)
				return NULL;
			if (strcmp(name + used, ".text") == 0)
				return gw_xstrdup(pe->trust[j].text);
			return trust_str(&pe->trust[j]);
		}
	}
	for (size_t i = 0; i < NELEM(fields); i++) {
		const struct field *f = &fields[i];
		const void *at = obj + f->off;

		if (f->base != base || strcmp(f->name, name) != 0)
			continue;
		switch (f->kind) {
		case F_STR:
			return gw_xstrdup(*(char *const *)at ? *(char *const *)at : "(null)");
		case F_STRLEN:
			return gw_xasprintf("%zu", *(char *const *)at ? strlen(*(char *const *)at) : 0);
		case F_UNSIGNED:
			return gw_xasprintf("%u", *(const unsigned *)at);
		case F_SIZE:
			return gw_xasprintf("%zu", *(const size_t *)at);
		case F_INT:
			return gw_xasprintf("%d", *(const int *)at);
		case F_LEVEL:
			return gw_xstrdup(log_level_name(*(const enum conf_log_level *)at));
		case F_FACILITY:
			return gw_xstrdup(facility_name(*(const int *)at));
		case F_TRANSPORT:
			return gw_xstrdup(conf_transport_name(*(const enum conf_transport *)at));
		case F_ADDRESSING:
			return gw_xstrdup(*(const enum conf_addressing *)at == CONF_ADDR_DOMAIN ?
					  "domain" : "escaped");
		case F_IM_TYPE:
			return gw_xstrdup(*(const enum conf_im_type *)at == CONF_IM_CHAT ?
					  "chat" : "normal");
		case F_IM_VERDICT: {
			static const char *const names[] = { "auto", "barrier", "accepted" };

			return gw_xstrdup(names[*(const enum conf_im_verdict *)at]);
		}
		case F_PEER_TLS:
			return gw_xstrdup(*(const enum conf_peer_tls *)at == CONF_PEER_TLS_NO ?
					  "no" : "required");
		case F_XMPP_TLS:
			return gw_xstrdup(*(const enum conf_xmpp_tls *)at == CONF_XMPP_TLS_NO ?
					  "no" : "direct");
		case F_SERVICES:
			return services_str(*(const unsigned *)at);
		}
	}
	return NULL;
}

/* ---- checking one parse against its expectations
 *
 * want[]: "LINE: message substring" entries are the diagnostics expected, in report order;
 * "field=value" entries are checks on a successful parse.  An empty list: must parse. */

static int is_diag(const char *w)
{
	return *w >= '0' && *w <= '9';
}

static void expect(const char *what, const char *file, struct conf *c, struct diags *d,
		   const char *const *want, const char *dir)
{
	size_t nd = 0, k = 0;

	for (size_t i = 0; i < MAX_WANT && want[i]; i++)
		nd += is_diag(want[i]);
	if (nd) {
		CHECK(c == NULL, "%s: parsed, but diagnostics were expected", what);
		CHECK_INT(d->n, nd, "%s: number of diagnostics", what);
	} else {
		CHECK(c != NULL, "%s: did not parse", what);
		CHECK_INT(d->n, 0, "%s: number of diagnostics", what);
	}
	for (size_t i = 0; i < MAX_WANT && want[i]; i++) {
		char *w = subst(want[i], dir ? dir : "");

		if (is_diag(w)) {
			char *end;
			unsigned line = (unsigned)strtoul(w, &end, 10);
			const char *sub = end + (end[0] == ':' ? 1 : 0);

			sub += *sub == ' ';
			if (k < d->n && k < MAX_DIAGS) {
				CHECK_STR(d->file[k], file, "%s: file of diagnostic %zu", what, k);
				CHECK_INT(d->line[k], line, "%s: line of diagnostic %zu (%s)", what, k,
					  d->msg[k]);
				CHECK(strstr(d->msg[k], sub) != NULL,
				      "%s: diagnostic %zu is \"%s\", want \"%s\"", what, k, d->msg[k],
				      sub);
			}
			k++;
		} else if (c) {
			char *eq = strchr(w, '=');
			char *got;

			*eq = '\0';
			got = field_get(c, w);
			CHECK(got != NULL, "%s: no field %s", what, w);
			if (got)
				CHECK_STR(got, eq + 1, "%s: field %s", what, w);
			free(got);
		}
		free(w);
	}
	if ((nd == 0) != (d->n == 0) || d->n != nd)
		diags_dump(d);
}

static struct conf *parse_str(const char *name, const char *xml, int check_perms,
			      struct diags *d)
{
	return conf_parse(name, xml, strlen(xml), check_perms, collect, d);
}

/* ---- single values, inside a known-good document
 *
 * The base document has one element a line, so every diagnostic's line is known:
 *   1 gateway  2 log  3 xmpp  4 sip  5 listen  6 /sip  7 im  8 peer  9 route  10 trust  11 /peer
 *   12 presence  13 sessions  14 groupchat  15 muc  16 /groupchat  17 /gateway
 * An OPTIONAL element is written only in the rows about it, so it moves no other line:
 *   <limits> is line 11 (inside the peer), <audit> line 17.
 */

enum { OPEN, EMPTY, CLOSE, OPTIONAL };

static const struct {
	const char *elem;
	int kind;
	const char *attrs[8];
} base_doc[] = {
	{ "gateway", OPEN, { "xmlns", "urn:simplegw:config:1" } },
	{ "log", EMPTY, { NULL } },
	{ "xmpp", EMPTY, { "domain", "xmpp.example", "server", "127.0.0.1", "secret", "s3cret" } },
	{ "sip", OPEN, { NULL } },
	{ "listen", EMPTY, { "transport", "udp", "address", "127.0.0.1", "port", "5060" } },
	{ "sip", CLOSE, { NULL } },
	{ "im", EMPTY, { NULL } },
	{ "peer", OPEN, { "domain", "sip.example" } },
	{ "route", EMPTY, { "address", "127.0.0.1", "port", "5080" } },
	{ "trust", EMPTY, { "address", "127.0.0.1" } },
	{ "limits", OPTIONAL, { NULL } },
	{ "peer", CLOSE, { NULL } },
	{ "presence", EMPTY, { NULL } },
	{ "sessions", EMPTY, { NULL } },
	{ "groupchat", OPEN, { NULL } },
	{ "muc", EMPTY, { "service", "conference.xmpp.example" } },
	{ "groupchat", CLOSE, { NULL } },
	{ "audit", OPTIONAL, { "file", "audit.log" } },
	{ "admin", OPTIONAL, { "jid", "ops@xmpp.example" } },
	{ "metrics", OPTIONAL, { "address", "127.0.0.1" } },
	{ "gateway", CLOSE, { NULL } },
};

static void append(char **s, size_t *len, const char *add)
{
	size_t n = strlen(add);

	*s = gw_xrealloc(*s, *len + n + 1);
	memcpy(*s + *len, add, n + 1);
	*len += n;
}

/* The base document with attribute attr of elem set to value (NULL: left out). */
static char *build(const char *elem, const char *attr, const char *value)
{
	char *s = NULL, *piece;
	size_t len = 0;

	append(&s, &len, "");
	for (size_t i = 0; i < NELEM(base_doc); i++) {
		int mine = strcmp(base_doc[i].elem, elem) == 0 && base_doc[i].kind != CLOSE;

		if (base_doc[i].kind == OPTIONAL && !mine)
			continue;
		if (base_doc[i].kind == CLOSE) {
			piece = gw_xasprintf("</%s>\n", base_doc[i].elem);
			append(&s, &len, piece);
			free(piece);
			continue;
		}
		piece = gw_xasprintf("<%s", base_doc[i].elem);
		append(&s, &len, piece);
		free(piece);
		for (size_t a = 0; a + 1 < NELEM(base_doc[i].attrs) && base_doc[i].attrs[a]; a += 2) {
			if (mine && strcmp(base_doc[i].attrs[a], attr) == 0)
				continue;
			piece = gw_xasprintf(" %s=\"%s\"", base_doc[i].attrs[a], base_doc[i].attrs[a + 1]);
			append(&s, &len, piece);
			free(piece);
		}
		if (mine && value) {
			piece = gw_xasprintf(" %s=\"%s\"", attr, value);
			append(&s, &len, piece);
			free(piece);
		}
		append(&s, &len, base_doc[i].kind == OPEN ? ">\n" : "/>\n");
	}
	return s;
}

#define X10 "xxxxxxxxxx"
#define X64 X10 X10 X10 X10 X10 X10 "xxxx"
#define X65 X64 "x"
#define X256 X64 X64 X64 X64
#define X1024 X256 X256 X256 X256
#define L63 X10 X10 X10 X10 X10 X10 "xxx"
#define L64 L63 "x"
#define L61 X10 X10 X10 X10 X10 X10 "x"
#define L62 L61 "x"

static const struct value_case {
	const char *elem, *attr, *value;	/* value NULL: the attribute is left out */
	const char *want;			/* "field=value", or "LINE: diagnostic" */
} value_cases[] = {
	/* <gateway> */
	{ "gateway", "xmlns", NULL, "npeers=1" },
	{ "gateway", "xmlns", "urn:other", "1: <gateway> attribute \"xmlns\": \"urn:other\" is not urn:simplegw:config:1" },
	{ "gateway", "version", "1", "1: <gateway>: unknown attribute \"version\"" },
	{ "gateway", "xmlns:x", "urn:x", "1: <gateway>: unknown attribute \"xmlns:x\"" },

	/* <log level> */
	{ "log", "level", NULL, "log.level=info" },
	{ "log", "level", "error", "log.level=error" },
	{ "log", "level", "warning", "log.level=warning" },
	{ "log", "level", "notice", "log.level=notice" },
	{ "log", "level", "debug", "log.level=debug" },
	{ "log", "level", "DEBUG", "log.level=debug" },
	{ "log", "level", "loud", "2: <log> attribute \"level\": \"loud\" is not one of error, warning, notice, info, debug" },
	{ "log", "level", "", "2: <log> attribute \"level\": \"\" is not one of" },
	{ "log", "level", X65 X65, "2: <log> attribute \"level\": \"" X64 "...\" is not one of" },
	{ "log", "level", "a&#9;b&#10;", "2: <log> attribute \"level\": \"a\\x09b\\x0a\" is not one of" },
	/* <log stderr>, <log syslog>: booleans */
	{ "log", "stderr", NULL, "log.stderr=1" },
	{ "log", "stderr", "no", "log.stderr=0" },
	{ "log", "stderr", "false", "log.stderr=0" },
	{ "log", "stderr", "off", "log.stderr=0" },
	{ "log", "stderr", "0", "log.stderr=0" },
	{ "log", "stderr", "Off", "log.stderr=0" },
	{ "log", "stderr", "yes", "log.stderr=1" },
	{ "log", "stderr", "2", "2: <log> attribute \"stderr\": \"2\" is not one of yes, no, true, false, on, off, 1, 0" },
	{ "log", "syslog", NULL, "log.syslog=0" },
	{ "log", "syslog", "yes", "log.syslog=1" },
	{ "log", "syslog", "true", "log.syslog=1" },
	{ "log", "syslog", "on", "log.syslog=1" },
	{ "log", "syslog", "1", "log.syslog=1" },
	{ "log", "syslog", "", "2: <log> attribute \"syslog\": \"\" is not one of yes" },
	/* <log facility> */
	{ "log", "facility", NULL, "log.facility=daemon" },
	{ "log", "facility", "user", "log.facility=user" },
	{ "log", "facility", "local0", "log.facility=local0" },
	{ "log", "facility", "local7", "log.facility=local7" },
	{ "log", "facility", "local8", "2: <log> attribute \"facility\": \"local8\" is not one of daemon, user, local0" },
	{ "log", "colour", "red", "2: <log>: unknown attribute \"colour\"" },

	/* <xmpp domain> */
	{ "xmpp", "domain", "XMPP.Example", "xmpp.domain=xmpp.example" },
	{ "xmpp", "domain", "a", "xmpp.domain=a" },
	{ "xmpp", "domain", "a-b.c-d.example", "xmpp.domain=a-b.c-d.example" },
	{ "xmpp", "domain", "192.0.2.1", "xmpp.domain=192.0.2.1" },
	{ "xmpp", "domain", "[2001:DB8::1]", "xmpp.domain=[2001:db8::1]" },
	{ "xmpp", "domain", L63 ".example", "xmpp.domain=" L63 ".example" },
	{ "xmpp", "domain", L63 "." L63 "." L63 "." L61, "xmpp.domain=" L63 "." L63 "." L63 "." L61 },
	{ "xmpp", "domain", L63 "." L63 "." L63 "." L62, "3: <xmpp> attribute \"domain\": \"" L63 "....\" is not a valid domain name: longer than 253 characters" },
	{ "xmpp", "domain", L64 ".example", "3: <xmpp> attribute \"domain\": \"" L64 "...\" is not a valid domain name: a label is longer than 63 characters" },
	{ "xmpp", "domain", "", "3: <xmpp> attribute \"domain\": \"\" is not a valid domain name: it is empty" },
	{ "xmpp", "domain", "-a.example", "3: <xmpp> attribute \"domain\": \"-a.example\" is not a valid domain name: a label starts with '-'" },
	{ "xmpp", "domain", "a-.example", "3: <xmpp> attribute \"domain\": \"a-.example\" is not a valid domain name: a label ends with '-'" },
	{ "xmpp", "domain", "a..example", "3: <xmpp> attribute \"domain\": \"a..example\" is not a valid domain name: empty label" },
	{ "xmpp", "domain", "a.example.", "3: <xmpp> attribute \"domain\": \"a.example.\" is not a valid domain name: empty label" },
	{ "xmpp", "domain", ".example", "3: <xmpp> attribute \"domain\": \".example\" is not a valid domain name: empty label" },
	{ "xmpp", "domain", "a_b.example", "3: <xmpp> attribute \"domain\": \"a_b.example\" is not a valid domain name: only letters, digits" },
	{ "xmpp", "domain", "b\xc3\xbc" "cher.example", "3: <xmpp> attribute \"domain\": \"b\xc3\xbc" "cher.example\" is not a valid domain name: only letters" },
	{ "xmpp", "domain", "1.2.3", "3: <xmpp> attribute \"domain\": \"1.2.3\" is not a valid domain name: all-numeric top label" },
	{ "xmpp", "domain", "256.1.1.1", "3: <xmpp> attribute \"domain\": \"256.1.1.1\" is not a valid domain name: all-numeric" },
	{ "xmpp", "domain", "[::1", "3: <xmpp> attribute \"domain\": \"[::1\" is not a valid domain name: not an IPv6 literal" },
	{ "xmpp", "domain", "[xyz]", "3: <xmpp> attribute \"domain\": \"[xyz]\" is not a valid domain name: not an IPv6 literal" },
	{ "xmpp", "domain", "[]", "3: <xmpp> attribute \"domain\": \"[]\" is not a valid domain name: not an IPv6 literal" },
	{ "xmpp", "domain", NULL, "3: <xmpp>: missing required attribute \"domain\"" },
	/* <xmpp server> */
	{ "xmpp", "server", "::1", "xmpp.server=::1" },
	{ "xmpp", "server", "2001:db8::5", "xmpp.server=2001:db8::5" },
	{ "xmpp", "server", "localhost", "3: <xmpp> attribute \"server\": \"localhost\" is not a numeric IPv4 or IPv6 address (names are not resolved)" },
	{ "xmpp", "server", "[::1]", "3: <xmpp> attribute \"server\": \"[::1]\" is not a numeric IPv4 or IPv6 address" },
	{ "xmpp", "server", "127.0.0.1 ", "3: <xmpp> attribute \"server\": \"127.0.0.1 \" is not a numeric" },
	{ "xmpp", "server", "127.1", "3: <xmpp> attribute \"server\": \"127.1\" is not a numeric" },
	{ "xmpp", "server", "0.0.0.0", "3: <xmpp> attribute \"server\": \"0.0.0.0\" is the unspecified address" },
	{ "xmpp", "server", "::", "3: <xmpp> attribute \"server\": \"::\" is the unspecified address" },
	{ "xmpp", "server", NULL, "3: <xmpp>: missing required attribute \"server\"" },
	/* <xmpp port> */
	{ "xmpp", "port", NULL, "xmpp.port=5347" },
	{ "xmpp", "port", "1", "xmpp.port=1" },
	{ "xmpp", "port", "65535", "xmpp.port=65535" },
	{ "xmpp", "port", "0", "3: <xmpp> attribute \"port\": 0 is out of range 1..65535" },
	{ "xmpp", "port", "65536", "3: <xmpp> attribute \"port\": 65536 is out of range 1..65535" },
	{ "xmpp", "port", "70000", "3: <xmpp> attribute \"port\": 70000 is out of range 1..65535" },
	{ "xmpp", "port", "99999999999999999999999", "3: <xmpp> attribute \"port\": 99999999999999999999999 is out of range 1..65535" },
	{ "xmpp", "port", "-1", "3: <xmpp> attribute \"port\": \"-1\" is not a decimal number" },
	{ "xmpp", "port", "+5", "3: <xmpp> attribute \"port\": \"+5\" is not a decimal number" },
	{ "xmpp", "port", "5347x", "3: <xmpp> attribute \"port\": \"5347x\" is not a decimal number" },
	{ "xmpp", "port", "0x10", "3: <xmpp> attribute \"port\": \"0x10\" is not a decimal number" },
	{ "xmpp", "port", " 5347", "3: <xmpp> attribute \"port\": \" 5347\" is not a decimal number" },
	{ "xmpp", "port", "", "3: <xmpp> attribute \"port\": \"\" is not a decimal number" },
	/* <xmpp secret> (the base document has secret="s3cret") */
	{ "xmpp", "secret", "s3cret", "xmpp.secret=s3cret" },
	{ "xmpp", "secret", "a b&amp;c", "xmpp.secret=a b&c" },
	{ "xmpp", "secret", X1024, "xmpp.secret.len=1024" },
	{ "xmpp", "secret", X1024 "x", "3: <xmpp> attribute \"secret\": the secret must be 1..1024 bytes" },
	{ "xmpp", "secret", "", "3: <xmpp> attribute \"secret\": the secret must be 1..1024 bytes" },
	{ "xmpp", "secret", NULL, "3: <xmpp>: missing required attribute \"secret-file\" (or \"secret\")" },
	/* <xmpp reconnect-min> */
	{ "xmpp", "reconnect-min", NULL, "xmpp.reconnect-min=1000" },
	{ "xmpp", "reconnect-min", "100ms", "xmpp.reconnect-min=100" },
	{ "xmpp", "reconnect-min", "2s", "xmpp.reconnect-min=2000" },
	{ "xmpp", "reconnect-min", "60s", "xmpp.reconnect-min=60000" },
	{ "xmpp", "reconnect-min", "99ms", "3: <xmpp> attribute \"reconnect-min\": 99ms is out of range 100ms..10m" },
	{ "xmpp", "reconnect-min", "0ms", "3: <xmpp> attribute \"reconnect-min\": 0ms is out of range 100ms..10m" },
	{ "xmpp", "reconnect-min", "601s", "3: <xmpp> attribute \"reconnect-min\": 601s is out of range 100ms..10m" },
	{ "xmpp", "reconnect-min", "1", "3: <xmpp> attribute \"reconnect-min\": \"1\" has no unit (write 1ms, 1s or 1m)" },
	{ "xmpp", "reconnect-min", "1h", "3: <xmpp> attribute \"reconnect-min\": \"1h\" is not a duration" },
	{ "xmpp", "reconnect-min", "1S", "3: <xmpp> attribute \"reconnect-min\": \"1S\" is not a duration" },
	{ "xmpp", "reconnect-min", "1.5s", "3: <xmpp> attribute \"reconnect-min\": \"1.5s\" is not a duration" },
	{ "xmpp", "reconnect-min", "1 s", "3: <xmpp> attribute \"reconnect-min\": \"1 s\" is not a duration" },
	{ "xmpp", "reconnect-min", "ms", "3: <xmpp> attribute \"reconnect-min\": \"ms\" is not a duration" },
	{ "xmpp", "reconnect-min", "18446744073709551615m", "3: <xmpp> attribute \"reconnect-min\": 18446744073709551615m is out of range" },
	{ "xmpp", "reconnect-min", "99999999999999999999999ms", "3: <xmpp> attribute \"reconnect-min\": 99999999999999999999999ms is out of range" },
	/* <xmpp reconnect-max>: also at least reconnect-min */
	{ "xmpp", "reconnect-max", NULL, "xmpp.reconnect-max=60000" },
	{ "xmpp", "reconnect-max", "60m", "xmpp.reconnect-max=3600000" },
	{ "xmpp", "reconnect-max", "1s", "xmpp.reconnect-max=1000" },
	{ "xmpp", "reconnect-max", "61m", "3: <xmpp> attribute \"reconnect-max\": 61m is out of range 100ms..60m" },
	{ "xmpp", "reconnect-max", "999ms", "3: <xmpp>: reconnect-max (999ms) is less than reconnect-min (1s)" },
	{ "xmpp", "reconnect-max", "x", "3: <xmpp> attribute \"reconnect-max\": \"x\" is not a duration" },
	/* <xmpp max-stanza> */
	{ "xmpp", "max-stanza", NULL, "xmpp.max-stanza=65536" },
	{ "xmpp", "max-stanza", "1024", "xmpp.max-stanza=1024" },
	{ "xmpp", "max-stanza", "1k", "xmpp.max-stanza=1024" },
	{ "xmpp", "max-stanza", "1K", "xmpp.max-stanza=1024" },
	{ "xmpp", "max-stanza", "16M", "xmpp.max-stanza=16777216" },
	{ "xmpp", "max-stanza", "16m", "xmpp.max-stanza=16777216" },
	{ "xmpp", "max-stanza", "16384k", "xmpp.max-stanza=16777216" },
	{ "xmpp", "max-stanza", "1023", "3: <xmpp> attribute \"max-stanza\": 1023 is out of range 1k..16M" },
	{ "xmpp", "max-stanza", "16385k", "3: <xmpp> attribute \"max-stanza\": 16385k is out of range 1k..16M" },
	{ "xmpp", "max-stanza", "18446744073709551615M", "3: <xmpp> attribute \"max-stanza\": 18446744073709551615M is out of range" },
	{ "xmpp", "max-stanza", "64kb", "3: <xmpp> attribute \"max-stanza\": \"64kb\" is not a size" },
	{ "xmpp", "max-stanza", "k", "3: <xmpp> attribute \"max-stanza\": \"k\" is not a size" },
	{ "xmpp", "max-stanza", "64G", "3: <xmpp> attribute \"max-stanza\": \"64G\" is not a size" },
	/* <xmpp tls>; <xmpp ca> names a file: test_tls() */
	{ "xmpp", "tls", NULL, "xmpp.tls=no" },
	{ "xmpp", "tls", NULL, "xmpp.ca=(null)" },
	{ "xmpp", "tls", "no", "xmpp.tls=no" },
	{ "xmpp", "tls", "direct", "xmpp.tls=direct" },
	{ "xmpp", "tls", "Direct", "xmpp.tls=direct" },
	{ "xmpp", "tls", "direct", "xmpp.ca=(null)" },
	{ "xmpp", "tls", "starttls", "3: <xmpp> attribute \"tls\": \"starttls\" is not one of no, direct" },
	{ "xmpp", "tls", "yes", "3: <xmpp> attribute \"tls\": \"yes\" is not one of no, direct" },
	{ "xmpp", "tls", "", "3: <xmpp> attribute \"tls\": \"\" is not one of no, direct" },
	{ "xmpp", "ca", "", "3: <xmpp> attribute \"ca\": \"\" is not a usable path" },
	{ "xmpp", "resource", "x", "3: <xmpp>: unknown attribute \"resource\"" },

	/* <sip t1> */
	{ "sip", "t1", NULL, "sip.t1=500" },
	{ "sip", "t1", "10ms", "sip.t1=10" },
	{ "sip", "t1", "10s", "sip.t1=10000" },
	{ "sip", "t1", "9ms", "4: <sip> attribute \"t1\": 9ms is out of range 10ms..10s" },
	{ "sip", "t1", "11s", "4: <sip> attribute \"t1\": 11s is out of range 10ms..10s" },
	{ "sip", "t1", "500", "4: <sip> attribute \"t1\": \"500\" has no unit (write 500ms, 500s or 500m)" },
	/* <sip t4> */
	{ "sip", "t4", NULL, "sip.t4=1000" },
	{ "sip", "t4", "5s", "sip.t4=5000" },
	{ "sip", "t4", "10ms", "sip.t4=10" },
	{ "sip", "t4", "9ms", "4: <sip> attribute \"t4\": 9ms is out of range 10ms..10s" },
	/* <sip max-connections>, <sip max-connections-per-source>, <sip tcp-idle> */
	{ "sip", "max-connections", NULL, "sip.max-connections=1024" },
	{ "sip", "max-connections", "1", "sip.max-connections=1" },
	{ "sip", "max-connections", "0", "4: <sip> attribute \"max-connections\": 0 is out of range 1..100000" },
	{ "sip", "max-connections-per-source", NULL, "sip.max-connections-per-source=64" },
	{ "sip", "max-connections-per-source", "100000", "sip.max-connections-per-source=100000" },
	{ "sip", "max-connections-per-source", "100001", "4: <sip> attribute \"max-connections-per-source\": 100001 is out of range 1..100000" },
	{ "sip", "tcp-idle", NULL, "sip.tcp-idle=60000" },
	{ "sip", "tcp-idle", "1s", "sip.tcp-idle=1000" },
	{ "sip", "tcp-idle", "999ms", "4: <sip> attribute \"tcp-idle\": 999ms is out of range 1s..60m" },
	/* <sip max-message> */
	{ "sip", "max-message", NULL, "sip.max-message=65536" },
	{ "sip", "max-message", "1024", "sip.max-message=1024" },
	{ "sip", "max-message", "1M", "sip.max-message=1048576" },
	{ "sip", "max-message", "1023", "4: <sip> attribute \"max-message\": 1023 is out of range 1k..1M" },
	{ "sip", "max-message", "1025k", "4: <sip> attribute \"max-message\": 1025k is out of range 1k..1M" },
	{ "sip", "address", "127.0.0.1", "4: <sip>: unknown attribute \"address\"" },
	/* <listen> */
	{ "listen", "transport", NULL, "listen[0].transport=udp" },
	{ "listen", "transport", "tcp", "listen[0].transport=tcp" },
	{ "listen", "transport", "TCP", "listen[0].transport=tcp" },
	{ "listen", "transport", "sctp", "5: <listen> attribute \"transport\": \"sctp\" is not one of udp, tcp, tls" },
	{ "listen", "transport", "tls", "5: <listen transport=\"tls\">: needs <tls> (the gateway's certificate, key and CA file)" },
	{ "listen", "transport", "TLS", "5: <listen transport=\"tls\">: needs <tls>" },
	{ "listen", "address", "::", "listen[0].address=::" },
	{ "listen", "address", "0.0.0.0", "listen[0].address=0.0.0.0" },
	{ "listen", "address", "fe80::1%eth0", "5: <listen> attribute \"address\": \"fe80::1%eth0\" is not a numeric IPv4 or IPv6 address" },
	{ "listen", "address", "localhost", "5: <listen> attribute \"address\": \"localhost\" is not a numeric" },
	{ "listen", "address", NULL, "5: <listen>: missing required attribute \"address\"" },
	{ "listen", "port", NULL, "listen[0].port=5060" },
	{ "listen", "port", "65535", "listen[0].port=65535" },
	{ "listen", "port", "0", "5: <listen> attribute \"port\": 0 is out of range 1..65535" },
	{ "listen", "port", "70000", "5: <listen> attribute \"port\": 70000 is out of range 1..65535" },
	{ "listen", "port", "5060", "listen[0].line=5" },

	/* <im> */
	{ "im", "max-body", NULL, "im.max-body=8192" },
	{ "im", "max-body", "1", "im.max-body=1" },
	{ "im", "max-body", "1M", "im.max-body=1048576" },
	{ "im", "max-body", "0", "7: <im> attribute \"max-body\": 0 is out of range 1..1M" },
	{ "im", "max-body", "1048577", "7: <im> attribute \"max-body\": 1048577 is out of range 1..1M" },
	{ "im", "delivery-wait", NULL, "im.delivery-wait=2000" },
	{ "im", "delivery-wait", "0ms", "im.delivery-wait=0" },
	{ "im", "delivery-wait", "0s", "im.delivery-wait=0" },
	{ "im", "delivery-wait", "30s", "im.delivery-wait=30000" },
	{ "im", "delivery-wait", "30001ms", "7: <im> attribute \"delivery-wait\": 30001ms is out of range 0ms..30s" },
	{ "im", "delivery-wait", "1m", "7: <im> attribute \"delivery-wait\": 1m is out of range 0ms..30s" },
	{ "im", "delivery-wait", "0", "7: <im> attribute \"delivery-wait\": \"0\" has no unit" },
	{ "im", "barrier-window", NULL, "im.barrier-window=10" },
	{ "im", "barrier-window", "0ms", "im.barrier-window=0" },
	{ "im", "barrier-window", "1s", "im.barrier-window=1000" },
	{ "im", "barrier-window", "1001ms", "7: <im> attribute \"barrier-window\": 1001ms is out of range 0ms..1s" },
	{ "im", "type", NULL, "im.type=chat" },
	{ "im", "type", "normal", "im.type=normal" },
	{ "im", "type", "groupchat", "7: <im> attribute \"type\": \"groupchat\" is not one of chat, normal" },
	{ "im", "verdict", NULL, "im.verdict=auto" },
	{ "im", "verdict", "barrier", "im.verdict=barrier" },
	{ "im", "verdict", "accepted", "im.verdict=accepted" },
	{ "im", "verdict", "202", "7: <im> attribute \"verdict\": \"202\" is not one of auto, barrier, accepted" },

	/* <peer> */
	{ "peer", "name", NULL, "peer[0].name=sip.example" },
	{ "peer", "name", "sipnet", "peer[0].name=sipnet" },
	{ "peer", "name", "x", "peer[0].name=x" },
	{ "peer", "name", "Net-1_(a)!~", "peer[0].name=Net-1_(a)!~" },
	{ "peer", "name", X64, "peer[0].name=" X64 },
	{ "peer", "name", X65, "8: <peer> attribute \"name\": \"" X64 "...\" is not 1..64 printable ASCII characters without spaces" },
	{ "peer", "name", "", "8: <peer> attribute \"name\": \"\" is not 1..64 printable ASCII" },
	{ "peer", "name", "a b", "8: <peer> attribute \"name\": \"a b\" is not 1..64 printable ASCII" },
	{ "peer", "name", "a&#9;b", "8: <peer> attribute \"name\": \"a\\x09b\" is not 1..64 printable ASCII" },
	{ "peer", "name", "caf\xc3\xa9", "8: <peer> attribute \"name\": \"caf\xc3\xa9\" is not 1..64 printable ASCII" },
	{ "peer", "domain", "SIP.Example", "peer[0].domain=sip.example" },
	{ "peer", "domain", "SIP.Example", "peer[0].component=sip.example" },
	{ "peer", "domain", "sip..example", "8: <peer> attribute \"domain\": \"sip..example\" is not a valid domain name: empty label" },
	{ "peer", "domain", NULL, "8: <peer>: missing required attribute \"domain\"" },
	{ "peer", "addressing", NULL, "peer[0].addressing=domain" },
	{ "peer", "addressing", "domain", "peer[0].addressing=domain" },
	{ "peer", "addressing", "escaped", "8: <peer>: \"escaped\" addressing requires attribute \"component\"" },
	{ "peer", "addressing", "mixed", "8: <peer> attribute \"addressing\": \"mixed\" is not one of domain, escaped" },
	{ "peer", "component", NULL, "peer[0].component=sip.example" },
	{ "peer", "component", "sip.example", "peer[0].component=sip.example" },
	{ "peer", "component", "SIP.EXAMPLE", "peer[0].component=sip.example" },
	{ "peer", "component", "other.example", "8: <peer>: component \"other.example\" differs from domain \"sip.example\"" },
	{ "peer", "component", "bad..example", "8: <peer> attribute \"component\": \"bad..example\" is not a valid domain name" },
	{ "peer", "line", "1", "8: <peer>: unknown attribute \"line\"" },
	{ "peer", "domain", "sip.example", "peer[0].line=8" },
	/* <route> */
	{ "route", "address", "192.0.2.1", "peer[0].route.address=192.0.2.1" },
	{ "route", "address", "2001:db8::1", "peer[0].route.address=2001:db8::1" },
	{ "route", "address", "0.0.0.0", "9: <route> attribute \"address\": \"0.0.0.0\" is the unspecified address" },
	{ "route", "address", "sip.example", "9: <route> attribute \"address\": \"sip.example\" is not a numeric" },
	{ "route", "address", NULL, "9: <route>: missing required attribute \"address\"" },
	{ "route", "port", "5080", "peer[0].route.port=5080" },
	{ "route", "port", NULL, "peer[0].route.port=5060" },
	{ "route", "port", "65536", "9: <route> attribute \"port\": 65536 is out of range 1..65535" },
	{ "route", "transport", NULL, "peer[0].route.transport=udp" },
	{ "route", "transport", "tcp", "peer[0].route.transport=tcp" },
	{ "route", "transport", "tls", "8: <peer> \"sip.example\": <route transport=\"tls\"> needs <tls> (the gateway's certificate, key and CA file)" },
	{ "route", "transport", "Tls", "8: <peer> \"sip.example\": <route transport=\"tls\"> needs <tls>" },
	{ "route", "transport", "sctp", "9: <route> attribute \"transport\": \"sctp\" is not one of udp, tcp, tls" },
	{ "route", "options-interval", NULL, "peer[0].route.options-interval=30000" },
	{ "route", "options-interval", "0s", "peer[0].route.options-interval=0" },
	{ "route", "options-interval", "500ms", "peer[0].route.options-interval=500" },
	{ "route", "options-interval", "60m", "peer[0].route.options-interval=3600000" },
	{ "route", "options-interval", "61m", "9: <route> attribute \"options-interval\": 61m is out of range 0ms..60m" },
	{ "route", "options-interval", "30", "9: <route> attribute \"options-interval\": \"30\" has no unit" },
	/* <trust> */
	{ "trust", "address", "127.0.0.1", "peer[0].trust[0]=127.0.0.1/32" },
	{ "trust", "address", "10.1.0.0/16", "peer[0].trust[0]=10.1.0.0/16" },
	{ "trust", "address", "10.1.0.0/16", "peer[0].trust[0].text=10.1.0.0/16" },
	{ "trust", "address", "10.1.128.0/17", "peer[0].trust[0]=10.1.128.0/17" },
	{ "trust", "address", "10.1.2.3/32", "peer[0].trust[0]=10.1.2.3/32" },
	{ "trust", "address", "0.0.0.0/0", "peer[0].trust[0]=0.0.0.0/0" },
	{ "trust", "address", "2001:db8::/32", "peer[0].trust[0]=2001:db8::/32" },
	{ "trust", "address", "::1", "peer[0].trust[0]=::1/128" },
	{ "trust", "address", "::/0", "peer[0].trust[0]=::/0" },
	{ "trust", "address", "10.1.2.3/16", "10: <trust> attribute \"address\": \"10.1.2.3/16\" has host bits set (did you mean 10.1.0.0/16?)" },
	{ "trust", "address", "10.1.192.0/17", "10: <trust> attribute \"address\": \"10.1.192.0/17\" has host bits set (did you mean 10.1.128.0/17?)" },
	{ "trust", "address", "2001:db8::1/32", "10: <trust> attribute \"address\": \"2001:db8::1/32\" has host bits set (did you mean 2001:db8::/32?)" },
	{ "trust", "address", "10.0.0.0/33", "10: <trust> attribute \"address\": \"10.0.0.0/33\": prefix length 33 is out of range 0..32" },
	{ "trust", "address", "::1/129", "10: <trust> attribute \"address\": \"::1/129\": prefix length 129 is out of range 0..128" },
	{ "trust", "address", "::ffff:10.0.0.1", "10: <trust> attribute \"address\": \"::ffff:10.0.0.1\": write IPv4-mapped networks as IPv4" },
	{ "trust", "address", "10.0.0.0/", "10: <trust> attribute \"address\": \"10.0.0.0/\" is not a numeric address or address/prefix" },
	{ "trust", "address", "10.0.0.0/1a", "10: <trust> attribute \"address\": \"10.0.0.0/1a\" is not a numeric address" },
	{ "trust", "address", "10.0.0.0/0016", "10: <trust> attribute \"address\": \"10.0.0.0/0016\" is not a numeric address" },
	{ "trust", "address", "10.0.0.0/-1", "10: <trust> attribute \"address\": \"10.0.0.0/-1\" is not a numeric address" },
	{ "trust", "address", "10.0.0.0/8/8", "10: <trust> attribute \"address\": \"10.0.0.0/8/8\" is not a numeric address" },
	{ "trust", "address", "host.example", "10: <trust> attribute \"address\": \"host.example\" is not a numeric address" },
	{ "trust", "address", "", "10: <trust> attribute \"address\": \"\" is not a numeric address" },
	{ "trust", "address", NULL, "10: <trust>: missing required attribute \"address\"" },
	{ "trust", "prefix", "8", "10: <trust>: unknown attribute \"prefix\"" },

	/* <presence> (present and empty in the base document: every default) */
	{ "presence", "roster-lists", NULL, "presence.roster-lists=0" },
	{ "presence", "roster-lists", "yes", "presence.roster-lists=1" },
	{ "presence", "enabled", NULL, "presence.enabled=1" },
	{ "presence", "enabled", "no", "presence.enabled=0" },
	{ "presence", "enabled", "off", "presence.enabled=0" },
	{ "presence", "enabled", "YES", "presence.enabled=1" },
	{ "presence", "enabled", "maybe", "12: <presence> attribute \"enabled\": \"maybe\" is not one of yes, no, true, false, on, off, 1, 0" },
	{ "presence", "enabled", "", "12: <presence> attribute \"enabled\": \"\" is not one of yes" },
	/* <presence database>: relative paths are resolved in test_presence_db() */
	{ "presence", "database", NULL, "presence.database=(null)" },
	{ "presence", "database", "/var/lib/simplegw/presence.db", "presence.database=/var/lib/simplegw/presence.db" },
	{ "presence", "database", "state.db", "presence.database=state.db" },
	{ "presence", "database", "", "12: <presence> attribute \"database\": \"\" is not a usable path" },
	{ "presence", "database", ":memory:", "12: <presence> attribute \"database\": \":memory:\" is not special here; leave \"database\" out" },
	/* <presence expires>: whole seconds, 60s..86400s */
	{ "presence", "expires", NULL, "presence.expires=3600" },
	{ "presence", "expires", "60s", "presence.expires=60" },
	{ "presence", "expires", "1m", "presence.expires=60" },
	{ "presence", "expires", "60000ms", "presence.expires=60" },
	{ "presence", "expires", "3600s", "presence.expires=3600" },
	{ "presence", "expires", "86400s", "presence.expires=86400" },
	{ "presence", "expires", "1440m", "presence.expires=86400" },
	{ "presence", "expires", "59s", "12: <presence> attribute \"expires\": 59s is out of range 60s..86400s" },
	{ "presence", "expires", "86401s", "12: <presence> attribute \"expires\": 86401s is out of range 60s..86400s" },
	{ "presence", "expires", "1441m", "12: <presence> attribute \"expires\": 1441m is out of range 60s..86400s" },
	{ "presence", "expires", "60500ms", "12: <presence> attribute \"expires\": \"60500ms\" is not a whole number of seconds" },
	{ "presence", "expires", "3600", "12: <presence> attribute \"expires\": \"3600\" has no unit (write 3600ms, 3600s or 3600m)" },
	{ "presence", "expires", "1h", "12: <presence> attribute \"expires\": \"1h\" is not a duration" },
	{ "presence", "expires", "-60s", "12: <presence> attribute \"expires\": \"-60s\" is not a duration" },
	{ "presence", "expires", "99999999999999999999s", "12: <presence> attribute \"expires\": 99999999999999999999s is out of range 60s..86400s" },
	/* <presence min-expires>: 1s..3600s */
	{ "presence", "min-expires", NULL, "presence.min-expires=60" },
	{ "presence", "min-expires", "1s", "presence.min-expires=1" },
	{ "presence", "min-expires", "3600s", "presence.min-expires=3600" },
	{ "presence", "min-expires", "0s", "12: <presence> attribute \"min-expires\": 0s is out of range 1s..3600s" },
	{ "presence", "min-expires", "3601s", "12: <presence> attribute \"min-expires\": 3601s is out of range 1s..3600s" },
	{ "presence", "min-expires", "500ms", "12: <presence> attribute \"min-expires\": \"500ms\" is not a whole number of seconds" },
	{ "presence", "min-expires", "x", "12: <presence> attribute \"min-expires\": \"x\" is not a duration" },
	/* <presence max-expires>: min-expires..86400s */
	{ "presence", "max-expires", NULL, "presence.max-expires=3600" },
	{ "presence", "max-expires", "60s", "presence.max-expires=60" },
	{ "presence", "max-expires", "86400s", "presence.max-expires=86400" },
	{ "presence", "max-expires", "86401s", "12: <presence> attribute \"max-expires\": 86401s is out of range 1s..86400s" },
	{ "presence", "max-expires", "59s", "12: <presence>: max-expires (59s) is less than min-expires (60s)" },
	{ "presence", "max-expires", "1500ms", "12: <presence> attribute \"max-expires\": \"1500ms\" is not a whole number of seconds" },
	/* <presence agent>: an RFC 3261 user part, 1..64 characters */
	{ "presence", "agent", NULL, "presence.agent=simplegw" },
	{ "presence", "agent", "presence-gw", "presence.agent=presence-gw" },
	{ "presence", "agent", "Gw_1.x", "presence.agent=Gw_1.x" },
	{ "presence", "agent", "a-_.!~*'()&amp;=+$,;?/z", "presence.agent=a-_.!~*'()&=+$,;?/z" },
	{ "presence", "agent", "a%20b%7E", "presence.agent=a%20b%7E" },
	{ "presence", "agent", X64, "presence.agent=" X64 },
	{ "presence", "agent", X65, "12: <presence> attribute \"agent\": \"" X64 "...\" is not a SIP user part of 1..64 characters" },
	{ "presence", "agent", "", "12: <presence> attribute \"agent\": \"\" is not a SIP user part" },
	{ "presence", "agent", "gw#1", "12: <presence> attribute \"agent\": \"gw#1\" is not a SIP user part" },	/* '@' is the test's directory */
	{ "presence", "agent", "sip:gw", "12: <presence> attribute \"agent\": \"sip:gw\" is not a SIP user part" },
	{ "presence", "agent", "a b", "12: <presence> attribute \"agent\": \"a b\" is not a SIP user part" },
	{ "presence", "agent", "a%2", "12: <presence> attribute \"agent\": \"a%2\" is not a SIP user part" },
	{ "presence", "agent", "a%zz", "12: <presence> attribute \"agent\": \"a%zz\" is not a SIP user part" },
	{ "presence", "agent", "%", "12: <presence> attribute \"agent\": \"%\" is not a SIP user part" },
	{ "presence", "agent", "caf\xc3\xa9", "12: <presence> attribute \"agent\": \"caf\xc3\xa9\" is not a SIP user part" },
	{ "presence", "agent", "a&#9;b", "12: <presence> attribute \"agent\": \"a\\x09b\" is not a SIP user part" },
	{ "presence", "agent", "&lt;gw&gt;", "12: <presence> attribute \"agent\": \"<gw>\" is not a SIP user part" },
	/* <presence max-per-user max-pending-per-user max-per-watcher>: 1..1000000; max-per-peer
	 * 1..10000000 */
	{ "presence", "max-per-user", NULL, "presence.max-per-user=500" },
	{ "presence", "max-per-user", "0", "12: <presence> attribute \"max-per-user\": 0 is out of range 1..1000000" },
	{ "presence", "max-pending-per-user", NULL, "presence.max-pending-per-user=50" },
	{ "presence", "max-pending-per-user", "1000000", "presence.max-pending-per-user=1000000" },
	{ "presence", "max-pending-per-user", "1000001", "12: <presence> attribute \"max-pending-per-user\": 1000001 is out of range 1..1000000" },
	{ "presence", "max-per-watcher", NULL, "presence.max-per-watcher=500" },
	{ "presence", "max-per-watcher", "7", "presence.max-per-watcher=7" },
	{ "presence", "max-per-peer", NULL, "presence.max-per-peer=10000" },
	{ "presence", "max-per-peer", "10000000", "presence.max-per-peer=10000000" },
	{ "presence", "max-per-peer", "-1", "12: <presence> attribute \"max-per-peer\": \"-1\" is not a decimal number" },
	/* <presence max-watchers>, <presence max-subscriptions>: 1..10000000 */
	{ "presence", "max-watchers", NULL, "presence.max-watchers=100000" },
	{ "presence", "max-watchers", "1", "presence.max-watchers=1" },
	{ "presence", "max-watchers", "10000000", "presence.max-watchers=10000000" },
	{ "presence", "max-watchers", "0", "12: <presence> attribute \"max-watchers\": 0 is out of range 1..10000000" },
	{ "presence", "max-watchers", "10000001", "12: <presence> attribute \"max-watchers\": 10000001 is out of range 1..10000000" },
	{ "presence", "max-watchers", "100k", "12: <presence> attribute \"max-watchers\": \"100k\" is not a decimal number" },
	{ "presence", "max-subscriptions", NULL, "presence.max-subscriptions=100000" },
	{ "presence", "max-subscriptions", "1", "presence.max-subscriptions=1" },
	{ "presence", "max-subscriptions", "10000000", "presence.max-subscriptions=10000000" },
	{ "presence", "max-subscriptions", "0", "12: <presence> attribute \"max-subscriptions\": 0 is out of range 1..10000000" },
	{ "presence", "max-subscriptions", "10000001", "12: <presence> attribute \"max-subscriptions\": 10000001 is out of range 1..10000000" },
	{ "presence", "max-subscriptions", "-1", "12: <presence> attribute \"max-subscriptions\": \"-1\" is not a decimal number" },
	/* <presence max-document>: a size, 1k..1M */
	{ "presence", "max-document", NULL, "presence.max-document=65536" },
	{ "presence", "max-document", "1k", "presence.max-document=1024" },
	{ "presence", "max-document", "1024", "presence.max-document=1024" },
	{ "presence", "max-document", "1M", "presence.max-document=1048576" },
	{ "presence", "max-document", "1023", "12: <presence> attribute \"max-document\": 1023 is out of range 1k..1M" },
	{ "presence", "max-document", "1025k", "12: <presence> attribute \"max-document\": 1025k is out of range 1k..1M" },
	{ "presence", "max-document", "64kb", "12: <presence> attribute \"max-document\": \"64kb\" is not a size" },
	{ "presence", "expiry", "1h", "12: <presence>: unknown attribute \"expiry\"" },
	{ "presence", "max-doc", "64k", "12: <presence>: unknown attribute \"max-doc\"" },
	/* <sessions> (present and empty in the base document: every default) */
	{ "sessions", "enabled", NULL, "sessions.enabled=1" },
	{ "sessions", "enabled", "no", "sessions.enabled=0" },
	{ "sessions", "enabled", "sometimes", "13: <sessions> attribute \"enabled\": \"sometimes\" is not one of yes" },
	{ "sessions", "msrp-address", NULL, "sessions.msrp-address=(null)" },
	{ "sessions", "msrp-address", "127.0.0.1", "sessions.msrp-address=127.0.0.1" },
	{ "sessions", "msrp-address", "0.0.0.0", "sessions.msrp-address=0.0.0.0" },
	{ "sessions", "msrp-address", "::1", "sessions.msrp-address=::1" },
	{ "sessions", "msrp-address", "gw.example", "13: <sessions> attribute \"msrp-address\": \"gw.example\" is not a numeric" },
	{ "sessions", "msrp-port", NULL, "sessions.msrp-port=2855" },
	{ "sessions", "msrp-port", "1", "sessions.msrp-port=1" },
	{ "sessions", "msrp-port", "65535", "sessions.msrp-port=65535" },
	{ "sessions", "msrp-port", "0", "13: <sessions> attribute \"msrp-port\": 0 is out of range 1..65535" },
	{ "sessions", "msrp-port", "65536", "13: <sessions> attribute \"msrp-port\": 65536 is out of range 1..65535" },
	{ "sessions", "max-per-user", NULL, "sessions.max-per-user=8" },
	{ "sessions", "max-per-user", "1", "sessions.max-per-user=1" },
	{ "sessions", "max-per-user", "1000", "sessions.max-per-user=1000" },
	{ "sessions", "max-per-user", "0", "13: <sessions> attribute \"max-per-user\": 0 is out of range 1..1000" },
	{ "sessions", "max-per-user", "1001", "13: <sessions> attribute \"max-per-user\": 1001 is out of range 1..1000" },
	{ "sessions", "max-total", NULL, "sessions.max-total=1000" },
	{ "sessions", "max-total", "1000000", "sessions.max-total=1000000" },
	{ "sessions", "max-total", "1000001", "13: <sessions> attribute \"max-total\": 1000001 is out of range 1..1000000" },
	{ "sessions", "max-queued", NULL, "sessions.max-queued=65536" },
	{ "sessions", "max-queued", "1k", "sessions.max-queued=1024" },
	{ "sessions", "max-queued", "16M", "sessions.max-queued=16777216" },
	{ "sessions", "max-queued", "1023", "13: <sessions> attribute \"max-queued\": 1023 is out of range 1k..16M" },
	{ "sessions", "max-message", NULL, "sessions.max-message=1048576" },
	{ "sessions", "max-message", "17M", "13: <sessions> attribute \"max-message\": 17M is out of range 1k..16M" },
	{ "sessions", "chunk-size", NULL, "sessions.chunk-size=2048" },
	{ "sessions", "chunk-size", "64", "sessions.chunk-size=64" },
	{ "sessions", "chunk-size", "63", "13: <sessions> attribute \"chunk-size\": 63 is out of range 64..1M" },
	{ "sessions", "connect-timeout", NULL, "sessions.connect-timeout=10000" },
	{ "sessions", "connect-timeout", "2s", "sessions.connect-timeout=2000" },
	{ "sessions", "connect-timeout", "500ms", "13: <sessions> attribute \"connect-timeout\": 500ms is out of range 1s..1m" },
	{ "sessions", "idle-timeout", NULL, "sessions.idle-timeout=600" },
	{ "sessions", "idle-timeout", "10s", "sessions.idle-timeout=10" },
	{ "sessions", "idle-timeout", "24h", "13: <sessions> attribute \"idle-timeout\": \"24h\" is not a duration" },
	{ "sessions", "idle-timeout", "9s", "13: <sessions> attribute \"idle-timeout\": 9s is out of range 10s..86400s" },
	{ "sessions", "idle", "10s", "13: <sessions>: unknown attribute \"idle\"" },
	/* <peer sessions> */
	{ "peer", "sessions", NULL, "peer[0].sessions=0" },
	{ "peer", "sessions", "yes", "peer[0].sessions=1" },
	{ "peer", "sessions", "msrp", "8: <peer> attribute \"sessions\": \"msrp\" is not one of yes" },
	/* <peer groupchat>, <groupchat>, <muc service> */
	{ "peer", "groupchat", NULL, "peer[0].groupchat=0" },
	{ "peer", "groupchat", "yes", "peer[0].groupchat=1" },
	{ "peer", "groupchat", "muc", "8: <peer> attribute \"groupchat\": \"muc\" is not one of yes" },
	/* <peer tls>: "required" needs a TLS route and listener (test_docs, test_tls) */
	{ "peer", "tls", NULL, "peer[0].tls=no" },
	{ "peer", "tls", "no", "peer[0].tls=no" },
	{ "peer", "tls", "NO", "peer[0].tls=no" },
	{ "peer", "tls", "yes", "8: <peer> attribute \"tls\": \"yes\" is not one of no, required" },
	{ "peer", "tls", "optional", "8: <peer> attribute \"tls\": \"optional\" is not one of no, required" },
	{ "peer", "tls", "", "8: <peer> attribute \"tls\": \"\" is not one of no, required" },
	/* <peer services>: words separated by spaces or tabs, any case, each once; "all" */
	{ "peer", "services", NULL, "peer[0].services=all" },
	{ "peer", "services", "all", "peer[0].services=all" },
	{ "peer", "services", "ALL", "peer[0].services=all" },
	{ "peer", "services", "pager", "peer[0].services=pager" },
	{ "peer", "services", "presence", "peer[0].services=presence" },
	{ "peer", "services", "sessions", "peer[0].services=sessions" },
	{ "peer", "services", "groupchat", "peer[0].services=groupchat" },
	{ "peer", "services", "presence pager", "peer[0].services=pager presence" },
	{ "peer", "services", "Pager SESSIONS", "peer[0].services=pager sessions" },
	{ "peer", "services", "  pager   groupchat ", "peer[0].services=pager groupchat" },
	{ "peer", "services", "pager&#9;presence", "peer[0].services=pager presence" },
	{ "peer", "services", "pager presence sessions groupchat", "peer[0].services=all" },
	{ "peer", "services", "groupchat sessions presence", "peer[0].services=presence sessions groupchat" },
	{ "peer", "services", "", "8: <peer> attribute \"services\": \"\" is not a list of pager, presence, sessions, groupchat, all" },
	{ "peer", "services", "   ", "8: <peer> attribute \"services\": \"   \" is not a list of pager, presence, sessions, groupchat, all" },
	{ "peer", "services", "im", "8: <peer> attribute \"services\": \"im\" is not a list of pager, presence, sessions, groupchat, all" },
	{ "peer", "services", "pager im", "8: <peer> attribute \"services\": \"pager im\" is not a list of pager" },
	{ "peer", "services", "pager,presence", "8: <peer> attribute \"services\": \"pager,presence\" is not a list of pager" },
	{ "peer", "services", "page", "8: <peer> attribute \"services\": \"page\" is not a list of pager" },
	{ "peer", "services", "pagers", "8: <peer> attribute \"services\": \"pagers\" is not a list of pager" },
	{ "peer", "services", "none", "8: <peer> attribute \"services\": \"none\" is not a list of pager" },
	{ "peer", "services", "pager&#10;presence", "8: <peer> attribute \"services\": \"pager\\x0apresence\" is not a list of pager" },
	{ "peer", "services", "pager pager", "8: <peer> attribute \"services\": \"pager pager\" names \"pager\" twice" },
	{ "peer", "services", "pager presence Pager", "8: <peer> attribute \"services\": \"pager presence Pager\" names \"Pager\" twice" },
	{ "peer", "services", "all presence", "8: <peer> attribute \"services\": \"all presence\" names \"presence\" twice" },
	{ "peer", "services", "sessions all", "8: <peer> attribute \"services\": \"sessions all\" names \"all\" twice" },
	{ "peer", "services", "all all", "8: <peer> attribute \"services\": \"all all\" names \"all\" twice" },
	{ "groupchat", "enabled", NULL, "groupchat.enabled=1" },
	{ "groupchat", "enabled", "no", "groupchat.enabled=0" },
	{ "groupchat", "max-total", NULL, "groupchat.max-total=2000" },
	{ "groupchat", "max-total", "0", "14: <groupchat> attribute \"max-total\": 0 is out of range 1..1000000" },
	{ "groupchat", "max-per-room", NULL, "groupchat.max-per-room=500" },
	{ "groupchat", "max-per-room", "100000", "groupchat.max-per-room=100000" },
	{ "groupchat", "max-per-room", "100001", "14: <groupchat> attribute \"max-per-room\": 100001 is out of range 1..100000" },
	{ "groupchat", "max-per-user", NULL, "groupchat.max-per-user=10" },
	{ "groupchat", "max-per-user", "1001", "14: <groupchat> attribute \"max-per-user\": 1001 is out of range 1..1000" },
	{ "groupchat", "max-rooms", NULL, "groupchat.max-rooms=200" },
	{ "groupchat", "max-rooms", "x", "14: <groupchat> attribute \"max-rooms\": " },
	{ "groupchat", "join-timeout", NULL, "groupchat.join-timeout=20000" },
	{ "groupchat", "join-timeout", "500ms", "14: <groupchat> attribute \"join-timeout\": 500ms is out of range 1s..2m" },
	{ "groupchat", "rooms", "1", "14: <groupchat>: unknown attribute \"rooms\"" },
	{ "muc", "service", NULL, "15: <muc>: missing required attribute \"service\"" },
	{ "muc", "service", "muc.xmpp.example", "nmuc=1" },
	{ "muc", "service", "muc example", "15: <muc> attribute \"service\": " },
	{ "muc", "service", "xmpp.example", "0: <muc>: service \"xmpp.example\" is the XMPP domain of <xmpp>" },
	{ "muc", "service", "sip.example", "8: <muc>: service \"sip.example\" is the domain or component of this peer" },

	/* <limits> (line 11, inside the peer; only in these rows).  0: unlimited */
	{ "limits", "rate", NULL, "peer[0].limits.rate=0" },
	{ "limits", "rate", NULL, "peer[0].limits.burst=1" },
	{ "limits", "rate", "0", "peer[0].limits.rate=0" },
	{ "limits", "rate", "1", "peer[0].limits.burst=1" },
	{ "limits", "rate", "10", "peer[0].limits.rate=10" },
	{ "limits", "rate", "10", "peer[0].limits.burst=10" },
	{ "limits", "rate", "1000000", "peer[0].limits.rate=1000000" },
	{ "limits", "rate", "1000001", "11: <limits> attribute \"rate\": 1000001 is out of range 0..1000000" },
	{ "limits", "rate", "-1", "11: <limits> attribute \"rate\": \"-1\" is not a decimal number" },
	{ "limits", "rate", "10/s", "11: <limits> attribute \"rate\": \"10/s\" is not a decimal number" },
	{ "limits", "rate", "", "11: <limits> attribute \"rate\": \"\" is not a decimal number" },
	{ "limits", "burst", "5", "11: <limits>: \"burst\" without a \"rate\" limits nothing" },
	{ "limits", "subscriptions", NULL, "peer[0].limits.subscriptions=0" },
	{ "limits", "subscriptions", "0", "peer[0].limits.subscriptions=0" },
	{ "limits", "subscriptions", "500", "peer[0].limits.subscriptions=500" },
	{ "limits", "subscriptions", "10000000", "peer[0].limits.subscriptions=10000000" },
	{ "limits", "subscriptions", "10000001", "11: <limits> attribute \"subscriptions\": 10000001 is out of range 0..10000000" },
	{ "limits", "subscriptions", "1k", "11: <limits> attribute \"subscriptions\": \"1k\" is not a decimal number" },
	{ "limits", "sessions", NULL, "peer[0].limits.sessions=0" },
	{ "limits", "sessions", "20", "peer[0].limits.sessions=20" },
	{ "limits", "sessions", "1000000", "peer[0].limits.sessions=1000000" },
	{ "limits", "sessions", "1000001", "11: <limits> attribute \"sessions\": 1000001 is out of range 0..1000000" },
	{ "limits", "sessions", "yes", "11: <limits> attribute \"sessions\": \"yes\" is not a decimal number" },
	{ "limits", "max-document", NULL, "peer[0].limits.max-document=0" },
	{ "limits", "max-document", "1k", "peer[0].limits.max-document=1024" },
	{ "limits", "max-document", "1024", "peer[0].limits.max-document=1024" },
	{ "limits", "max-document", "16k", "peer[0].limits.max-document=16384" },
	{ "limits", "max-document", "1M", "peer[0].limits.max-document=1048576" },
	{ "limits", "max-document", "0", "11: <limits> attribute \"max-document\": 0 is out of range 1k..1M" },
	{ "limits", "max-document", "1023", "11: <limits> attribute \"max-document\": 1023 is out of range 1k..1M" },
	{ "limits", "max-document", "1025k", "11: <limits> attribute \"max-document\": 1025k is out of range 1k..1M" },
	{ "limits", "max-document", "64kb", "11: <limits> attribute \"max-document\": \"64kb\" is not a size" },
	{ "limits", "retry-after", NULL, "peer[0].limits.retry-after=1" },
	{ "limits", "retry-after", "1s", "peer[0].limits.retry-after=1" },
	{ "limits", "retry-after", "30s", "peer[0].limits.retry-after=30" },
	{ "limits", "retry-after", "2m", "peer[0].limits.retry-after=120" },
	{ "limits", "retry-after", "5000ms", "peer[0].limits.retry-after=5" },
	{ "limits", "retry-after", "3600s", "peer[0].limits.retry-after=3600" },
	{ "limits", "retry-after", "60m", "peer[0].limits.retry-after=3600" },
	{ "limits", "retry-after", "0s", "11: <limits> attribute \"retry-after\": 0s is out of range 1s..3600s" },
	{ "limits", "retry-after", "3601s", "11: <limits> attribute \"retry-after\": 3601s is out of range 1s..3600s" },
	{ "limits", "retry-after", "1500ms", "11: <limits> attribute \"retry-after\": \"1500ms\" is not a whole number of seconds" },
	{ "limits", "retry-after", "5", "11: <limits> attribute \"retry-after\": \"5\" has no unit (write 5ms, 5s or 5m)" },
	{ "limits", "retry-after", "1h", "11: <limits> attribute \"retry-after\": \"1h\" is not a duration" },
	{ "limits", "requests", "10", "11: <limits>: unknown attribute \"requests\"" },

	/* <audit> (line 17; only in these rows, with file="audit.log") */
	{ "admin", "jid", "ops@xmpp.example", "nadmins=1" },
	{ "admin", "jid", "ops@other.example", "nadmins=1" },
	{ "admin", "jid", NULL, "17: <admin>: missing required attribute \"jid\"" },
	{ "admin", "jid", "ops", "17: <admin> attribute \"jid\": \"ops\" is not a bare JID" },
	{ "admin", "jid", "ops@xmpp.example/phone", "17: xmpp.example/phone\" is not a bare JID" },
	{ "admin", "jid", "Ops@xmpp.example", "17: \": write the JID in lower case, as the XMPP server does" },
	{ "log", "level", NULL, "nadmins=0" },
	{ "metrics", "address", "127.0.0.1", "metrics.address=127.0.0.1" },
	{ "metrics", "address", "127.0.0.1", "metrics.port=9477" },
	{ "metrics", "port", "9100", "metrics.port=9100" },
	{ "metrics", "port", "0", "17: <metrics> attribute \"port\": 0 is out of range 1..65535" },
	{ "metrics", "address", NULL, "17: <metrics>: missing required attribute \"address\"" },
	{ "metrics", "address", "localhost", "17: <metrics> attribute \"address\": \"localhost\" is not a numeric IPv4 or IPv6 address" },
	{ "audit", "file", "audit.log", "audit.file=audit.log" },
	{ "audit", "file", "/var/log/simplegw/audit.log", "audit.file=/var/log/simplegw/audit.log" },
	{ "audit", "file", "", "17: <audit> attribute \"file\": \"\" is not a usable path" },
	{ "audit", "file", NULL, "17: <audit>: missing attribute \"file\" (or syslog=\"yes\")" },
	{ "audit", "syslog", NULL, "audit.syslog=0" },
	{ "audit", "syslog", "no", "audit.syslog=0" },
	{ "audit", "syslog", "off", "audit.file=audit.log" },
	{ "audit", "syslog", "yes", "17: <audit>: give \"file\" or syslog=\"yes\", not both" },
	{ "audit", "syslog", "local0", "17: <audit> attribute \"syslog\": \"local0\" is not one of yes, no" },
	{ "audit", "content", NULL, "audit.content=0" },
	{ "audit", "content", "no", "audit.content=0" },
	{ "audit", "content", "yes", "audit.content=1" },
	{ "audit", "content", "bodies", "17: <audit> attribute \"content\": \"bodies\" is not one of yes, no" },
	{ "audit", "format", "json", "17: <audit>: unknown attribute \"format\"" },
};

static void test_values(void)
{
	for (size_t i = 0; i < NELEM(value_cases); i++) {
		const struct value_case *vc = &value_cases[i];
		const char *want[2] = { vc->want, NULL };
		char *xml = build(vc->elem, vc->attr, vc->value);
		char *what = gw_xasprintf("value row %zu <%s %s=\"%s\">", i, vc->elem, vc->attr,
					  vc->value ? vc->value : "(absent)");
		struct diags d = { 0 };
		struct conf *c = parse_str("gw.xml", xml, 0, &d);

		expect(what, "gw.xml", c, &d, want, NULL);
		conf_free(c);
		diags_clear(&d);
		free(what);
		free(xml);
	}
}

/* ---- whole documents: structure, semantics, several errors at once, line numbers */

#define GW "<gateway xmlns=\"urn:simplegw:config:1\">\n"
#define XMPP "<xmpp domain=\"xmpp.example\" server=\"127.0.0.1\" secret=\"s3cret\"/>\n"
#define SIP "<sip><listen address=\"127.0.0.1\"/></sip>\n"
#define PEER "<peer domain=\"sip.example\"><route address=\"127.0.0.1\"/><trust address=\"127.0.0.1\"/></peer>\n"
#define ROUTE_TRUST "<route address=\"127.0.0.1\"/><trust address=\"127.0.0.1\"/>"
#define END "</gateway>\n"

static const struct doc_case {
	const char *what;
	const char *xml;
	const char *want[MAX_WANT];
} doc_cases[] = {
	{ "minimal document (lines: gateway, xmpp, sip, peer, end)",
	  GW XMPP SIP PEER END,
	  { "log.level=info", "log.stderr=1", "log.syslog=0", "log.facility=daemon",
	    "im.max-body=8192", "im.delivery-wait=2000", "im.barrier-window=10", "im.type=chat",
	    "im.verdict=auto", "nlisten=1",
	    "listen[0].line=3", "peer[0].line=4", "peer[0].name=sip.example", "path=gw.xml" } },
	{ "no <authorization>: each watcher authorized by the peer",
	  GW XMPP SIP PEER END,
	  { "peer[0].authorization.mode=0", "peer[0].authorization.refresh=300000" } },
	{ "<authorization mode=policy> with an XCAP root",
	  GW XMPP SIP "<peer domain=\"sip.example\">" ROUTE_TRUST
	  "<authorization mode=\"policy\" xcap-root=\"http://127.0.0.1:5060/xcap-root\" refresh=\"1m\"/></peer>\n" END,
	  { "peer[0].authorization.mode=1", "peer[0].authorization.xcap-root=http://127.0.0.1:5060/xcap-root",
	    "peer[0].authorization.refresh=60000" } },
	{ "<authorization mode=policy> without an XCAP root",
	  GW XMPP SIP "<peer domain=\"sip.example\">" ROUTE_TRUST
	  "<authorization mode=\"policy\"/></peer>\n" END,
	  { "4: <authorization>: mode \"policy\" needs attribute \"xcap-root\"" } },
	{ "an XCAP root naming a host",
	  GW XMPP SIP "<peer domain=\"sip.example\">" ROUTE_TRUST
	  "<authorization mode=\"policy\" xcap-root=\"http://xcap.sip.example/xcap-root\"/></peer>\n" END,
	  { "4: <authorization> attribute \"xcap-root\": " } },
	{ "an unknown mode and a refresh out of range",
	  GW XMPP SIP "<peer domain=\"sip.example\">" ROUTE_TRUST
	  "<authorization mode=\"trust\" refresh=\"500ms\"/></peer>\n" END,
	  { "4: <authorization> attribute \"mode\": \"trust\" is not one of watcher, policy, views",
	    "4: <authorization> attribute \"refresh\": 500ms is out of range 1s..1440m" } },
	{ "two <authorization> in one peer",
	  GW XMPP SIP "<peer domain=\"sip.example\">" ROUTE_TRUST
	  "<authorization/>\n<authorization/></peer>\n" END,
	  { "5: " } },
	{ "two <muc> for one service",
	  GW XMPP SIP PEER "<groupchat><muc service=\"muc.xmpp.example\"/>\n<muc service=\"MUC.xmpp.example\"/></groupchat>\n" END,
	  { "6: <muc>: service \"muc.xmpp.example\" is listed twice" } },
	{ "<groupchat> without services: only XMPP users join SIP rooms",
	  GW XMPP SIP "<peer domain=\"sip.example\" groupchat=\"yes\">" ROUTE_TRUST "</peer>\n<groupchat/>\n" END,
	  { "nmuc=0", "peer[0].groupchat=1", "groupchat.enabled=1" } },
	{ "<rls> with an XCAP root",
	  GW XMPP SIP "<peer domain=\"sip.example\">" ROUTE_TRUST
	  "<rls xcap-root=\"http://127.0.0.1:5060/xcap-root\"/></peer>\n" END,
	  { "peer[0].rls.xcap-root=http://127.0.0.1:5060/xcap-root", "peer[0].rls.service=simplegw-list" } },
	{ "<rls> without an XCAP root, and with policy authorization",
	  GW XMPP SIP "<peer domain=\"sip.example\">" ROUTE_TRUST
	  "<rls service=\"lists\"/><authorization mode=\"policy\" xcap-root=\"http://127.0.0.1/x\"/></peer>\n"
	  "<peer domain=\"sip2.example\">" ROUTE_TRUST
	  "<rls xcap-root=\"http://127.0.0.1/x\"/><authorization mode=\"views\" xcap-root=\"http://127.0.0.1/x\"/></peer>\n" END,
	  { "4: <rls>: missing required attribute \"xcap-root\"",
	    "5: <peer> \"sip2.example\": <rls> (list subscriptions) goes with the default" } },
	{ "a list with two members",
	  GW XMPP SIP PEER "<presence><list name=\"team\"><member jid=\"alice@xmpp.example\"/>"
	  "<member jid=\"carol@xmpp.example\"/></list></presence>\n" END,
	  { "nlists=1" } },
	{ "list errors: a name with capitals, a member of another domain, twice, in upper case",
	  GW XMPP SIP PEER "<presence><list name=\"Team\"><member jid=\"a@xmpp.example\"/></list>\n"
	  "<list name=\"ops\"><member jid=\"a@elsewhere.example\"/><member jid=\"b@xmpp.example\"/>"
	  "<member jid=\"b@xmpp.example\"/><member jid=\"C@xmpp.example\"/><member jid=\"nodomain\"/></list>\n"
	  "<list name=\"ops\"><member jid=\"d@xmpp.example\"/></list><list name=\"empty\"/></presence>\n" END,
	  { "5: <list> attribute \"name\": \"Team\": a list name is lower-case letters",
	    "6: <member> attribute \"jid\": \"C",
	    "6: <member> attribute \"jid\": \"nodomain\" is not a bare JID",
	    "7: <list>: name \"ops\" is already the name of the list at line 6",
	    "7: <list>: missing required element <member>",
	    "6: <member> \"a",
	    "6: <member> \"b" } },
	{ "the example in conf.h",
	  "<gateway xmlns=\"urn:simplegw:config:1\">\n"
	  "  <log level=\"info\" stderr=\"yes\" syslog=\"no\" facility=\"daemon\"/>\n"
	  "  <xmpp domain=\"xmpp.example\" server=\"127.0.0.1\" port=\"5347\" secret=\"x\"\n"
	  "        reconnect-min=\"1s\" reconnect-max=\"60s\" max-stanza=\"64k\"/>\n"
	  "  <sip>\n"
	  "    <listen transport=\"udp\" address=\"127.0.0.1\" port=\"5060\"/>\n"
	  "    <listen transport=\"tcp\" address=\"127.0.0.1\" port=\"5060\"/>\n"
	  "  </sip>\n"
	  "  <im max-body=\"8k\" delivery-wait=\"2s\" type=\"chat\"/>\n"
	  "  <presence database=\"presence.db\" expires=\"3600s\" min-expires=\"60s\" max-expires=\"3600s\"\n"
	  "            agent=\"simplegw\" max-watchers=\"100000\" max-subscriptions=\"100000\"\n"
	  "            max-document=\"64k\" enabled=\"yes\"/>\n"
	  "  <peer name=\"sipnet\" domain=\"sip.example\" addressing=\"domain\">\n"
	  "    <route address=\"127.0.0.1\" port=\"5080\" transport=\"udp\"/>\n"
	  "    <trust address=\"127.0.0.1\"/>\n"
	  "    <trust address=\"10.1.0.0/16\"/>\n"
	  "  </peer>\n"
	  "</gateway>\n",
	  { "nlisten=2", "listen[1].transport=tcp", "listen[1].line=7", "peer[0].name=sipnet",
	    "peer[0].ntrust=2", "peer[0].trust[1]=10.1.0.0/16", "peer[0].route.port=5080",
	    "xmpp.secret=x", "peer[0].line=13", "presence.database=presence.db" } },
	{ "several peers, elements in any order, comments and whitespace anywhere",
	  "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
	  "<!-- a comment before the root -->\n"
	  "<gateway>\n"
	  "  <peer domain=\"a.example\"><!-- c -->" ROUTE_TRUST "</peer>\n"
	  "  <peer domain=\"b.example\" addressing=\"escaped\" component=\"gw.xmpp.example\">\n"
	  "    " ROUTE_TRUST "\n"
	  "  </peer>\n"
	  "  <peer domain=\"c.example\" addressing=\"escaped\" component=\"GW.xmpp.example\">"
	  ROUTE_TRUST "</peer>\n"
	  "  <sip>\n    <listen address=\"::1\"/>\n    <listen address=\"::1\" transport=\"tcp\"/>\n"
	  "    <listen address=\"127.0.0.1\"/>\n  </sip>\n"
	  "  " XMPP
	  "  <![CDATA[  ]]>\n"
	  "</gateway>\n"
	  "<!-- and after -->\n",
	  { "npeers=3", "nlisten=3", "peer[1].component=gw.xmpp.example",
	    "peer[2].component=gw.xmpp.example", "peer[1].addressing=escaped", "peer[1].line=5",
	    "peer[2].line=8", "listen[2].line=12", "peer[0].component=a.example" } },
	{ "<presence> may be left out; every default applies (enabled, in memory)",
	  GW XMPP SIP PEER END,
	  { "presence.enabled=1", "presence.database=(null)", "presence.expires=3600",
	    "presence.min-expires=60", "presence.max-expires=3600", "presence.agent=simplegw",
	    "presence.max-watchers=100000", "presence.max-subscriptions=100000",
	    "presence.max-document=65536" } },
	{ "no hours in <presence> durations either",
	  GW XMPP SIP "<presence database=\"/var/lib/simplegw/p.db\" expires=\"2h\"/>\n" PEER END,
	  { "4: <presence> attribute \"expires\": \"2h\" is not a duration" } },
	{ "a full <presence>, every attribute",
	  GW XMPP SIP
	  "<presence database=\"/var/lib/simplegw/p.db\" expires=\"30m\" min-expires=\"2m\"\n"
	  "  max-expires=\"2m\" agent=\"pgw\" max-watchers=\"5\" max-subscriptions=\"7\"\n"
	  "  max-document=\"1M\" enabled=\"no\"/>\n" PEER END,
	  { "presence.database=/var/lib/simplegw/p.db", "presence.expires=1800",
	    "presence.min-expires=120", "presence.max-expires=120", "presence.agent=pgw",
	    "presence.max-watchers=5", "presence.max-subscriptions=7",
	    "presence.max-document=1048576", "presence.enabled=0", "peer[0].line=7" } },
	{ "duplicate <presence>: the second one is skipped",
	  GW XMPP "<presence expires=\"1m\"/>\n" SIP "<presence expires=\"0s\"/>\n" PEER END,
	  { "5: <gateway>: duplicate <presence> (the first is at line 3)" } },
	{ "<presence> inside <sip>",
	  GW XMPP "<sip><listen address=\"127.0.0.1\"/>\n<presence/></sip>\n" PEER END,
	  { "4: <sip>: <presence> is not allowed here; it belongs in <gateway>" } },
	{ "<presence> has no children",
	  GW XMPP SIP "<presence>\n  <watcher/>\n</presence>\n" PEER END,
	  { "5: <presence>: unknown element <watcher>" } },
	{ "<presence> holds no text",
	  GW XMPP SIP "<presence>\n  on\n</presence>\n" PEER END,
	  { "5: <presence>: text is not allowed" } },
	{ "min-expires above the default max-expires",
	  GW XMPP SIP "<presence min-expires=\"3600s\" max-expires=\"3599s\"/>\n" PEER END,
	  { "4: <presence>: max-expires (3599s) is less than min-expires (3600s)" } },
	{ "min-expires equal to max-expires",
	  GW XMPP SIP "<presence min-expires=\"60m\" max-expires=\"3600s\"/>\n" PEER END,
	  { "presence.min-expires=3600", "presence.max-expires=3600" } },
	{ "a refused min-expires is not compared",
	  GW XMPP SIP "<presence min-expires=\"2h\" max-expires=\"1s\"/>\n" PEER END,
	  { "4: <presence> attribute \"min-expires\": \"2h\" is not a duration" } },
	{ "every <presence> error in one run",
	  GW XMPP SIP
	  "<presence database=\"\" expires=\"10s\" min-expires=\"0s\" max-expires=\"1d\"\n"
	  "  agent=\"a b\" max-watchers=\"0\" max-subscriptions=\"x\" max-document=\"2M\"\n"
	  "  enabled=\"perhaps\" colour=\"red\"/>\n" PEER END,
	  { "4: <presence> attribute \"database\": \"\" is not a usable path",
	    "4: <presence> attribute \"expires\": 10s is out of range 60s..86400s",
	    "4: <presence> attribute \"min-expires\": 0s is out of range 1s..3600s",
	    "4: <presence> attribute \"max-expires\": \"1d\" is not a duration",
	    "4: <presence> attribute \"agent\": \"a b\" is not a SIP user part",
	    "4: <presence> attribute \"max-watchers\": 0 is out of range 1..10000000",
	    "4: <presence> attribute \"max-subscriptions\": \"x\" is not a decimal number",
	    "4: <presence> attribute \"max-document\": 2M is out of range 1k..1M",
	    "4: <presence> attribute \"enabled\": \"perhaps\" is not one of yes",
	    "4: <presence>: unknown attribute \"colour\"" } },
	{ "<log> and <im> may be left out; defaults still apply",
	  GW XMPP SIP PEER END,
	  { "log.facility=daemon", "im.type=chat", "xmpp.port=5347", "sip.max-message=65536" } },
	{ "xmlns on a child element, when it is the right one",
	  GW "<xmpp xmlns=\"urn:simplegw:config:1\" domain=\"xmpp.example\" server=\"::1\" "
	  "secret=\"s\"/>\n" SIP PEER END,
	  { "xmpp.server=::1" } },
	{ "CRLF line ends count as one line",
	  "<gateway>\r\n<xmpp domain=\"xmpp.example\" server=\"127.0.0.1\" secret=\"s\"/>\r\n"
	  "<sip><listen address=\"127.0.0.1\"/></sip>\r\n"
	  "<peer domain=\"sip.example\" bad=\"1\">" ROUTE_TRUST "</peer>\r\n</gateway>\r\n",
	  { "4: <peer>: unknown attribute \"bad\"" } },
	{ "the line of a start tag spread over lines is where it starts",
	  GW "<xmpp domain=\"xmpp.example\"\n  server=\"127.0.0.1\"\n  port=\"0\"\n  secret=\"s\"/>\n"
	  SIP PEER END,
	  { "2: <xmpp> attribute \"port\": 0 is out of range 1..65535" } },

	/* well-formedness: one error, then stop */
	{ "empty input", "", { "1: malformed XML: no element found" } },
	{ "not XML", "hello\n", { "1: malformed XML: syntax error" } },
	{ "mismatched tag", GW XMPP "<sip>\n</peer>\n" END,
	  { "4: malformed XML: mismatched tag" } },
	{ "unclosed document", GW XMPP SIP, { "4: malformed XML: no element found" } },
	{ "junk after the root element", GW XMPP SIP PEER END "<gateway/>\n",
	  { "6: malformed XML: junk after document element" } },
	{ "a control character is not XML", GW XMPP "\x01" SIP PEER END,
	  { "3: malformed XML: not well-formed (invalid token)" } },
	{ "undefined entity", GW "<log level=\"&foo;\"/>\n" XMPP SIP PEER END,
	  { "2: malformed XML: undefined entity" } },
	{ "duplicate attribute", GW "<log level=\"info\" level=\"debug\"/>\n" XMPP SIP PEER END,
	  { "2: malformed XML: duplicate attribute" } },
	{ "errors before a well-formedness error are kept",
	  GW "<log level=\"loud\"/>\n" XMPP "<sip>\n</peer>\n" END,
	  { "2: <log> attribute \"level\"", "5: malformed XML: mismatched tag" } },

	/* refused outright: DOCTYPE (XML bombs), another root */
	{ "DOCTYPE with an entity bomb",
	  "<!DOCTYPE gateway [\n<!ENTITY a \"aaaaaaaaaa\">\n<!ENTITY b \"&a;&a;&a;&a;&a;\">\n]>\n"
	  "<gateway>&b;</gateway>\n",
	  { "1: DOCTYPE declarations are not allowed" } },
	{ "DOCTYPE without a subset", "\n<!DOCTYPE gateway>\n" GW XMPP SIP PEER END,
	  { "2: DOCTYPE declarations are not allowed" } },
	{ "DOCTYPE with an external DTD",
	  "<!DOCTYPE gateway SYSTEM \"/etc/passwd\">\n" GW XMPP SIP PEER END,
	  { "1: DOCTYPE declarations are not allowed" } },
	{ "the root element must be <gateway>", "<config>\n<log level=\"loud\"/>\n</config>\n",
	  { "1: the root element is <config>; it must be <gateway>" } },
	{ "a namespace prefix is not understood", "<c:gateway xmlns:c=\"urn:simplegw:config:1\"/>",
	  { "1: the root element is <c:gateway>; it must be <gateway>" } },

	/* structure errors: reported, parsing goes on */
	{ "processing instruction", GW "<?foo bar?>\n" XMPP SIP PEER END,
	  { "2: processing instruction <?foo?> is not allowed" } },
	{ "unknown element: its content is skipped",
	  GW "<bogus level=\"x\">\n<log colour=\"red\"/>\ntext\n</bogus>\n" XMPP SIP PEER END,
	  { "2: <gateway>: unknown element <bogus>" } },
	{ "misplaced element names its place",
	  GW XMPP SIP "<listen address=\"127.0.0.1\"/>\n" PEER END,
	  { "4: <gateway>: <listen> is not allowed here; it belongs in <sip>" } },
	{ "misplaced <trust>",
	  GW XMPP "<sip><listen address=\"127.0.0.1\"/><trust address=\"::1\"/></sip>\n" PEER END,
	  { "3: <sip>: <trust> is not allowed here; it belongs in <peer>" } },
	{ "<gateway> nested", GW XMPP SIP PEER "<peer domain=\"b.example\">" ROUTE_TRUST
	  "\n<gateway/></peer>\n" END,
	  { "6: <peer>: <gateway> may only be the root element" } },
	{ "a leaf element has no children", GW "<log><x/></log>\n" XMPP SIP PEER END,
	  { "2: <log>: unknown element <x>" } },
	{ "element names are case-sensitive", GW "<Log/>\n" XMPP SIP PEER END,
	  { "2: <gateway>: unknown element <Log>" } },
	{ "duplicate <xmpp>: the second one is skipped",
	  GW XMPP SIP "<xmpp domain=\"-\" port=\"0\"/>\n" PEER END,
	  { "4: <gateway>: duplicate <xmpp> (the first is at line 2)" } },
	{ "duplicate <log>, <im> and <sip>",
	  GW "<log/>\n<im/>\n" XMPP SIP "<log/>\n<im/>\n" SIP PEER END,
	  { "6: <gateway>: duplicate <log> (the first is at line 2)",
	    "7: <gateway>: duplicate <im> (the first is at line 3)",
	    "8: <gateway>: duplicate <sip> (the first is at line 5)" } },
	{ "duplicate <route>",
	  GW XMPP SIP "<peer domain=\"sip.example\">\n" ROUTE_TRUST "\n<route address=\"::1\"/>\n"
	  "</peer>\n" END,
	  { "6: <peer>: duplicate <route> (the first is at line 5)" } },
	{ "missing <xmpp>", GW SIP PEER END,
	  { "1: <gateway>: missing required element <xmpp>" } },
	{ "missing <sip>", GW XMPP PEER END,
	  { "1: <gateway>: missing required element <sip>" } },
	{ "missing <peer>", GW XMPP SIP END,
	  { "1: <gateway>: missing required element <peer>" } },
	{ "empty <gateway>", "<gateway/>",
	  { "1: <gateway>: missing required element <xmpp>",
	    "1: <gateway>: missing required element <sip>",
	    "1: <gateway>: missing required element <peer>" } },
	{ "<sip> without <listen>", GW XMPP "\n<sip>\n</sip>\n" PEER END,
	  { "4: <sip>: missing required element <listen>" } },
	{ "<peer> without <route> and <trust>",
	  GW XMPP SIP "<peer domain=\"sip.example\">\n</peer>\n" END,
	  { "4: <peer>: missing required element <route>",
	    "4: <peer>: missing required element <trust>" } },
	{ "a refused <trust> still counts as present",
	  GW XMPP SIP "<peer domain=\"sip.example\"><route address=\"::1\"/>\n"
	  "<trust address=\"bad\"/></peer>\n" END,
	  { "5: <trust> attribute \"address\": \"bad\" is not a numeric address" } },
	{ "text in an element, reported once, at its line",
	  GW XMPP SIP "<peer domain=\"sip.example\">\n\n  some text\n" ROUTE_TRUST
	  "\n  more text\n</peer>\n" END,
	  { "6: <peer>: text is not allowed" } },
	{ "text in the root and in a leaf",
	  GW "hello" XMPP "<sip><listen address=\"127.0.0.1\">x</listen></sip>\n" PEER END,
	  { "2: <gateway>: text is not allowed", "3: <listen>: text is not allowed" } },
	{ "a character reference is text", GW "&#65;\n" XMPP SIP PEER END,
	  { "2: <gateway>: text is not allowed" } },
	{ "CDATA with text is text", GW "<![CDATA[x]]>\n" XMPP SIP PEER END,
	  { "2: <gateway>: text is not allowed" } },
	{ "xmlns on a child element, when it is another",
	  GW "<log xmlns=\"urn:x\"/>\n" XMPP SIP PEER END,
	  { "2: <log> attribute \"xmlns\": \"urn:x\" is not urn:simplegw:config:1" } },

	/* semantic checks */
	{ "secret and secret-file",
	  GW "<xmpp domain=\"xmpp.example\" server=\"127.0.0.1\" secret=\"s\" secret-file=\"f\"/>\n"
	  SIP PEER END,
	  { "2: <xmpp>: give \"secret\" or \"secret-file\", not both" } },
	{ "an empty secret-file",
	  GW "<xmpp domain=\"xmpp.example\" server=\"127.0.0.1\" secret-file=\"\"/>\n" SIP PEER END,
	  { "2: <xmpp> attribute \"secret-file\": \"\" is not a usable path" } },
	{ "neither secret nor secret-file",
	  GW "<xmpp domain=\"xmpp.example\" server=\"127.0.0.1\"/>\n" SIP PEER END,
	  { "2: <xmpp>: missing required attribute \"secret-file\" (or \"secret\")" } },
	{ "reconnect-max below reconnect-min",
	  GW "<xmpp domain=\"xmpp.example\" server=\"127.0.0.1\" secret=\"s\" "
	  "reconnect-min=\"10s\" reconnect-max=\"5s\"/>\n" SIP PEER END,
	  { "2: <xmpp>: reconnect-max (5s) is less than reconnect-min (10s)" } },
	{ "reconnect-min above the default reconnect-max",
	  GW "<xmpp domain=\"xmpp.example\" server=\"127.0.0.1\" secret=\"s\" "
	  "reconnect-min=\"2m\"/>\n" SIP PEER END,
	  { "2: <xmpp>: reconnect-max (1m) is less than reconnect-min (2m)" } },
	{ "a refused reconnect-min is not compared",
	  GW "<xmpp domain=\"xmpp.example\" server=\"127.0.0.1\" secret=\"s\" "
	  "reconnect-min=\"1h\" reconnect-max=\"500ms\"/>\n" SIP PEER END,
	  { "2: <xmpp> attribute \"reconnect-min\": \"1h\" is not a duration" } },
	{ "reconnect-max equal to reconnect-min",
	  GW "<xmpp domain=\"xmpp.example\" server=\"127.0.0.1\" secret=\"s\" "
	  "reconnect-min=\"5s\" reconnect-max=\"5000ms\"/>\n" SIP PEER END,
	  { "xmpp.reconnect-max=5000" } },
	{ "duplicate peer domains, compared in lower case",
	  GW XMPP SIP PEER "<peer domain=\"SIP.example\" name=\"again\">" ROUTE_TRUST "</peer>\n" END,
	  { "5: <peer>: domain \"sip.example\" is already the domain of the peer at line 4" } },
	{ "a peer domain equal to the XMPP domain, even when <xmpp> comes later",
	  GW "<peer domain=\"XMPP.example\">" ROUTE_TRUST "</peer>\n" SIP XMPP END,
	  { "2: <peer>: domain \"xmpp.example\" is the XMPP domain of <xmpp>" } },
	{ "escaped addressing without component",
	  GW XMPP SIP "<peer domain=\"sip.example\" addressing=\"escaped\">" ROUTE_TRUST "</peer>\n"
	  END,
	  { "4: <peer>: \"escaped\" addressing requires attribute \"component\"" } },
	{ "domain addressing with another component",
	  GW XMPP SIP "<peer domain=\"sip.example\" component=\"gw.xmpp.example\">" ROUTE_TRUST
	  "</peer>\n" END,
	  { "4: <peer>: component \"gw.xmpp.example\" differs from domain \"sip.example\"" } },
	{ "escaped component equal to the XMPP domain",
	  GW XMPP SIP "<peer domain=\"sip.example\" addressing=\"escaped\" component=\"xmpp.example\">"
	  ROUTE_TRUST "</peer>\n" END,
	  { "4: <peer>: component \"xmpp.example\" is the XMPP domain of <xmpp>" } },
	{ "escaped component equal to a domain-mode peer's domain, declared later",
	  GW XMPP SIP "<peer domain=\"sip.example\" addressing=\"escaped\" component=\"b.example\">"
	  ROUTE_TRUST "</peer>\n<peer domain=\"B.example\">" ROUTE_TRUST "</peer>\n" END,
	  { "4: <peer>: component \"b.example\" is the domain of the peer at line 5" } },
	{ "an escaped peer's domain may equal another escaped peer's component",
	  GW XMPP SIP "<peer domain=\"a.example\" addressing=\"escaped\" component=\"gw.example\">"
	  ROUTE_TRUST "</peer>\n<peer domain=\"gw.example\" addressing=\"escaped\" "
	  "component=\"gw.example\">" ROUTE_TRUST "</peer>\n" END,
	  { "npeers=2" } },
	{ "duplicate listen",
	  GW XMPP "<sip>\n<listen address=\"127.0.0.1\" port=\"5060\"/>\n"
	  "<listen address=\"127.0.0.1\" transport=\"tcp\"/>\n"
	  "<listen address=\"127.0.0.1\" transport=\"udp\"/>\n"
	  "<listen address=\"0::1\"/>\n<listen address=\"::1\" port=\"5060\"/>\n"
	  "<listen address=\"::1\" port=\"5061\"/>\n</sip>\n" PEER END,
	  { "6: <listen>: udp 127.0.0.1 port 5060 is already declared at line 4",
	    "8: <listen>: udp ::1 port 5060 is already declared at line 7" } },

	/* TLS, limits, audit: what needs no file (the files of <tls>: test_tls()) */
	{ "no <tls>, <limits> or <audit>: the defaults",
	  GW XMPP SIP PEER END,
	  { "tls.certificate=(null)", "tls.key=(null)", "tls.ca=(null)", "tls.verify-depth=4",
	    "tls.line=0", "xmpp.tls=no", "xmpp.ca=(null)", "audit.file=(null)", "audit.syslog=0",
	    "audit.content=0", "peer[0].tls=no", "peer[0].services=all", "peer[0].limits.rate=0",
	    "peer[0].limits.subscriptions=0", "peer[0].limits.sessions=0",
	    "peer[0].limits.max-document=0", "peer[0].limits.retry-after=1" } },
	{ "a tls <listen> without <tls>, at its own line",
	  GW XMPP "<sip>\n<listen address=\"127.0.0.1\"/>\n<listen address=\"127.0.0.1\" "
	  "transport=\"tls\" port=\"5061\"/>\n<listen address=\"::1\" transport=\"tls\"/>\n</sip>\n"
	  PEER END,
	  { "5: <listen transport=\"tls\">: needs <tls> (the gateway's certificate, key and CA file)",
	    "6: <listen transport=\"tls\">: needs <tls>" } },
	{ "a tls <route> without <tls>, at its peer's line, named",
	  GW XMPP SIP "<peer name=\"sipnet\" domain=\"sip.example\">\n"
	  "<route address=\"127.0.0.1\" transport=\"tls\"/><trust address=\"127.0.0.1\"/></peer>\n" END,
	  { "4: <peer> \"sipnet\": <route transport=\"tls\"> needs <tls> (the gateway's certificate, "
	    "key and CA file)" } },
	{ "tls=\"required\" without a tls <route> or a tls <listen>",
	  GW XMPP SIP "<peer domain=\"sip.example\" tls=\"required\">" ROUTE_TRUST "</peer>\n" END,
	  { "4: <peer> \"sip.example\": tls=\"required\" needs <route transport=\"tls\">",
	    "4: <peer> \"sip.example\": tls=\"required\" needs a <listen transport=\"tls\"> for its "
	    "requests" } },
	{ "tls=\"required\" with a tcp <route>, no tls <listen>",
	  GW XMPP "<sip><listen address=\"127.0.0.1\" transport=\"tcp\"/></sip>\n"
	  "<peer domain=\"sip.example\" tls=\"Required\"><route address=\"127.0.0.1\" "
	  "transport=\"tcp\"/><trust address=\"127.0.0.1\"/></peer>\n" END,
	  { "4: <peer> \"sip.example\": tls=\"required\" needs <route transport=\"tls\">",
	    "4: <peer> \"sip.example\": tls=\"required\" needs a <listen transport=\"tls\">" } },
	{ "tls=\"required\" with a tls <route> and <listen>, but no <tls>",
	  GW XMPP "<sip><listen address=\"127.0.0.1\" transport=\"tls\"/></sip>\n"
	  "<peer domain=\"sip.example\" tls=\"required\"><route address=\"127.0.0.1\" "
	  "transport=\"tls\"/><trust address=\"127.0.0.1\"/></peer>\n" END,
	  { "3: <listen transport=\"tls\">: needs <tls>",
	    "4: <peer> \"sip.example\": <route transport=\"tls\"> needs <tls>" } },
	{ "tls=\"required\" with a refused <route>: its transport is not judged",
	  GW XMPP SIP "<peer domain=\"sip.example\" tls=\"required\">\n<route address=\"sip.example\"/>"
	  "<trust address=\"127.0.0.1\"/></peer>\n" END,
	  { "5: <route> attribute \"address\": \"sip.example\" is not a numeric",
	    "4: <peer> \"sip.example\": tls=\"required\" needs a <listen transport=\"tls\">" } },
	{ "tls=\"required\" on one peer is that peer's business",
	  GW XMPP SIP PEER "<peer domain=\"b.example\" tls=\"required\">" ROUTE_TRUST "</peer>\n"
	  "<peer domain=\"c.example\" tls=\"no\">" ROUTE_TRUST "</peer>\n" END,
	  { "5: <peer> \"b.example\": tls=\"required\" needs <route transport=\"tls\">",
	    "5: <peer> \"b.example\": tls=\"required\" needs a <listen transport=\"tls\">" } },
	{ "<tls> is a child of <gateway> only",
	  GW XMPP "<sip><listen address=\"127.0.0.1\"/>\n<tls certificate=\"c\" key=\"k\" ca=\"a\"/>"
	  "</sip>\n" PEER END,
	  { "4: <sip>: <tls> is not allowed here; it belongs in <gateway>" } },
	{ "services of two peers are their own",
	  GW XMPP SIP "<peer domain=\"a.example\" services=\"pager\">" ROUTE_TRUST "</peer>\n"
	  "<peer domain=\"b.example\">" ROUTE_TRUST "</peer>\n" END,
	  { "peer[0].services=pager", "peer[1].services=all" } },
	{ "a full <limits>",
	  GW XMPP SIP "<peer domain=\"sip.example\">" ROUTE_TRUST "\n"
	  "<limits rate=\"50\" burst=\"200\" subscriptions=\"1000\" sessions=\"20\"\n"
	  "  max-document=\"16k\" retry-after=\"30s\"/></peer>\n" END,
	  { "peer[0].limits.rate=50", "peer[0].limits.burst=200",
	    "peer[0].limits.subscriptions=1000", "peer[0].limits.sessions=20",
	    "peer[0].limits.max-document=16384", "peer[0].limits.retry-after=30" } },
	{ "burst below rate is the operator's choice",
	  GW XMPP SIP "<peer domain=\"sip.example\">" ROUTE_TRUST
	  "<limits rate=\"100\" burst=\"1\"/></peer>\n" END,
	  { "peer[0].limits.rate=100", "peer[0].limits.burst=1" } },
	{ "burst out of range",
	  GW XMPP SIP "<peer domain=\"sip.example\">" ROUTE_TRUST
	  "\n<limits rate=\"10\" burst=\"0\"/></peer>\n" END,
	  { "5: <limits> attribute \"burst\": 0 is out of range 1..10000000" } },
	{ "burst with a rate of 0 (unlimited) limits nothing",
	  GW XMPP SIP "<peer domain=\"sip.example\">" ROUTE_TRUST
	  "\n<limits rate=\"0\" burst=\"5\"/></peer>\n" END,
	  { "5: <limits>: \"burst\" without a \"rate\" limits nothing" } },
	{ "a burst out of range is one mistake, one message",
	  GW XMPP SIP "<peer domain=\"sip.example\">" ROUTE_TRUST
	  "\n<limits burst=\"0\"/></peer>\n" END,
	  { "5: <limits> attribute \"burst\": 0 is out of range 1..10000000" } },
	{ "<audit syslog=no> and no file: nowhere to write",
	  GW XMPP SIP PEER "<audit syslog=\"no\" content=\"yes\"/>\n" END,
	  { "5: <audit>: missing attribute \"file\" (or syslog=\"yes\")" } },
	{ "<audit> with an empty file and syslog: one message",
	  GW XMPP SIP PEER "<audit file=\"\" syslog=\"yes\"/>\n" END,
	  { "5: <audit> attribute \"file\": \"\" is not a usable path" } },
	{ "<tls> without its certificate: the TLS listen and route are not reported again",
	  GW XMPP "<sip><listen transport=\"tls\" address=\"127.0.0.1\" port=\"5061\"/></sip>\n"
	  "<tls key=\"k.pem\" ca=\"ca.pem\"/>\n"
	  "<peer domain=\"sip.example\"><route address=\"127.0.0.1\" transport=\"tls\"/>"
	  "<trust address=\"127.0.0.1\"/></peer>\n" END,
	  { "4: <tls>: missing required attribute \"certificate\"" } },
	{ "burst without rate, among other limits",
	  GW XMPP SIP "<peer domain=\"sip.example\">" ROUTE_TRUST
	  "\n<limits burst=\"10\" subscriptions=\"5\"/></peer>\n" END,
	  { "5: <limits>: \"burst\" without a \"rate\" limits nothing" } },
	{ "<limits> belong to their peer",
	  GW XMPP SIP PEER "<peer domain=\"b.example\">" ROUTE_TRUST
	  "<limits rate=\"5\" sessions=\"2\" retry-after=\"10s\"/></peer>\n" END,
	  { "peer[0].limits.rate=0", "peer[0].limits.sessions=0", "peer[0].limits.retry-after=1",
	    "peer[1].limits.rate=5", "peer[1].limits.burst=5", "peer[1].limits.sessions=2",
	    "peer[1].limits.retry-after=10" } },
	{ "duplicate <limits>",
	  GW XMPP SIP "<peer domain=\"sip.example\">" ROUTE_TRUST "\n<limits rate=\"5\"/>\n"
	  "<limits rate=\"6\"/></peer>\n" END,
	  { "6: <peer>: duplicate <limits> (the first is at line 5)" } },
	{ "<limits> outside a peer",
	  GW XMPP SIP "<limits rate=\"5\"/>\n" PEER END,
	  { "4: <gateway>: <limits> is not allowed here; it belongs in <peer>" } },
	{ "<audit> to syslog, with content",
	  GW XMPP SIP PEER "<audit syslog=\"yes\" content=\"yes\"/>\n" END,
	  { "audit.file=(null)", "audit.syslog=1", "audit.content=1" } },
	{ "<audit> to a file",
	  GW XMPP SIP PEER "<audit file=\"/var/log/simplegw/audit.log\" syslog=\"no\"/>\n" END,
	  { "audit.file=/var/log/simplegw/audit.log", "audit.syslog=0", "audit.content=0" } },
	{ "<audit> with neither file nor syslog",
	  GW XMPP SIP PEER "<audit/>\n" END,
	  { "5: <audit>: missing attribute \"file\" (or syslog=\"yes\")" } },
	{ "<audit> with content but nowhere to write it",
	  GW XMPP SIP PEER "<audit content=\"yes\"/>\n" END,
	  { "5: <audit>: missing attribute \"file\" (or syslog=\"yes\")" } },
	{ "<audit> with both file and syslog",
	  GW XMPP SIP PEER "<audit file=\"audit.log\" syslog=\"yes\"/>\n" END,
	  { "5: <audit>: give \"file\" or syslog=\"yes\", not both" } },
	{ "duplicate <audit>",
	  GW "<audit syslog=\"yes\"/>\n" XMPP SIP PEER "<audit file=\"a.log\"/>\n" END,
	  { "6: <gateway>: duplicate <audit> (the first is at line 2)" } },
	{ "<audit> inside a peer",
	  GW XMPP SIP "<peer domain=\"sip.example\">" ROUTE_TRUST "\n<audit syslog=\"yes\"/></peer>\n"
	  END,
	  { "5: <peer>: <audit> is not allowed here; it belongs in <gateway>" } },

	/* many problems, one run */
	{ "every error in one run, in document order",
	  "<gateway xmlns=\"urn:simplegw:config:1\">\n"
	  "  <log level=\"loud\" colour=\"red\"/>\n"
	  "  <xmpp domain=\"xmpp.example\" server=\"localhost\" port=\"70000\" secret=\"s3cret\"/>\n"
	  "  <sip>\n"
	  "    <listen transport=\"sctp\" address=\"127.0.0.1\"/>\n"
	  "  </sip>\n"
	  "  <im type=\"chat\" delivery-wait=\"5\"/>\n"
	  "  <bogus/>\n"
	  "  <peer domain=\"sip.example\">\n"
	  "    <trust address=\"10.1.2.3/16\"/>\n"
	  "  </peer>\n"
	  "  <peer domain=\"xmpp.example\">" ROUTE_TRUST "</peer>\n"
	  "</gateway>\n",
	  { "2: <log> attribute \"level\": \"loud\" is not one of",
	    "2: <log>: unknown attribute \"colour\"",
	    "3: <xmpp> attribute \"server\": \"localhost\" is not a numeric",
	    "3: <xmpp> attribute \"port\": 70000 is out of range 1..65535",
	    "5: <listen> attribute \"transport\": \"sctp\" is not one of udp, tcp",
	    "7: <im> attribute \"delivery-wait\": \"5\" has no unit",
	    "8: <gateway>: unknown element <bogus>",
	    "10: <trust> attribute \"address\": \"10.1.2.3/16\" has host bits set (did you mean 10.1.0.0/16?)",
	    "9: <peer>: missing required element <route>",
	    "12: <peer>: domain \"xmpp.example\" is the XMPP domain of <xmpp>" } },
};

static void test_docs(void)
{
	for (size_t i = 0; i < NELEM(doc_cases); i++) {
		const struct doc_case *dc = &doc_cases[i];
		struct diags d = { 0 };
		struct conf *c = parse_str("gw.xml", dc->xml, 0, &d);

		expect(dc->what, "gw.xml", c, &d, dc->want, NULL);
		conf_free(c);
		diags_clear(&d);
	}
}

/* conf_parse() bounds its input like conf_load(): 1 MiB, padding included. */
static void test_size_bound(void)
{
	static const struct {
		size_t size;
		const char *want;
	} rows[] = {
		{ 1024 * 1024, "npeers=1" },
		{ 1024 * 1024 + 1, "0: larger than 1048576 bytes" },
	};

	for (size_t i = 0; i < NELEM(rows); i++) {
		char *xml = gw_xmalloc(rows[i].size);
		const char *doc = GW XMPP SIP PEER END;
		const char *want[2] = { rows[i].want, NULL };
		struct diags d = { 0 };
		struct conf *c;

		memset(xml, ' ', rows[i].size);
		memcpy(xml, doc, strlen(doc));
		c = conf_parse("big.xml", xml, rows[i].size, 0, collect, &d);
		expect(rows[i].want, "big.xml", c, &d, want, NULL);
		conf_free(c);
		diags_clear(&d);
		free(xml);
	}
}

/* ---- <presence database>: resolved like secret-file, but never opened by the parser */

static const struct {
	const char *name;	/* the configuration's name */
	const char *db;		/* database="" as written */
	const char *want;	/* "field=value", or "LINE: diagnostic" */
} presence_db_cases[] = {
	{ "/etc/simplegw/gateway.xml", "presence.db", "presence.database=/etc/simplegw/presence.db" },
	{ "/etc/simplegw/gateway.xml", "state/p.db", "presence.database=/etc/simplegw/state/p.db" },
	{ "/etc/simplegw/gateway.xml", "../lib/p.db", "presence.database=/etc/simplegw/../lib/p.db" },
	{ "/etc/simplegw/gateway.xml", "/var/lib/simplegw/p.db", "presence.database=/var/lib/simplegw/p.db" },
	{ "conf/gw.xml", "p.db", "presence.database=conf/p.db" },
	{ "./gw.xml", "p.db", "presence.database=./p.db" },
	{ "/gw.xml", "p.db", "presence.database=/p.db" },
	{ "gw.xml", "p.db", "presence.database=p.db" },		/* the working directory */
	{ "/etc/simplegw/gateway.xml", "does/not/exist/p.db", "presence.database=/etc/simplegw/does/not/exist/p.db" },
	{ "/etc/simplegw/gateway.xml", ":memory:", "2: <presence> attribute \"database\": \":memory:\" is not special here" },
	{ "/etc/simplegw/gateway.xml", "", "2: <presence> attribute \"database\": \"\" is not a usable path" },
};

static void test_presence_db(void)
{
	for (size_t i = 0; i < NELEM(presence_db_cases); i++) {
		char *xml = gw_xasprintf(GW "<presence database=\"%s\"/>\n" XMPP SIP PEER END,
					 presence_db_cases[i].db);
		const char *want[2] = { presence_db_cases[i].want, NULL };
		char *what = gw_xasprintf("presence db row %zu (%s, %s)", i, presence_db_cases[i].name,
					  presence_db_cases[i].db);
		struct diags d = { 0 };
		struct conf *c = parse_str(presence_db_cases[i].name, xml, 1, &d);

		expect(what, presence_db_cases[i].name, c, &d, want, NULL);
		conf_free(c);
		diags_clear(&d);
		free(what);
		free(xml);
	}
}

/* ---- secret-file: resolution, first line, permissions */

static char tmpdir[PATH_MAX];

static void write_file(const char *path, const char *data, size_t len, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	if (fd < 0 || write(fd, data, len) != (ssize_t)len || fchmod(fd, mode) < 0) {
		fprintf(stderr, "cannot write %s: %s\n", path, strerror(errno));
		exit(2);
	}
	close(fd);
}

enum setup { S_FILE, S_NONE, S_FIFO };

static const struct secret_case {
	const char *what;
	const char *name;	/* the configuration's name; '@' is the temporary directory */
	const char *attr;	/* secret-file as written; '@' likewise */
	enum setup setup;	/* what @/secret is */
	const char *content;
	size_t len;		/* 0: strlen(content) */
	mode_t mode;
	int check_perms;
	int in_dir;		/* parse with the temporary directory as working directory */
	const char *want;	/* "field=value", or "3: diagnostic" ('@' is the directory) */
} secret_cases[] = {
	{ "relative to the file's directory", "@/gw.xml", "secret", S_FILE, "abc\n", 0, 0600, 1, 0,
	  "xmpp.secret=abc" },
	{ "no final newline", "@/gw.xml", "secret", S_FILE, "abc", 0, 0600, 1, 0, "xmpp.secret=abc" },
	{ "CRLF", "@/gw.xml", "secret", S_FILE, "abc\r\nsecond\r\n", 0, 0600, 1, 0,
	  "xmpp.secret=abc" },
	{ "first line only", "@/gw.xml", "secret", S_FILE, "line one\nline two\n", 0, 0600, 1, 0,
	  "xmpp.secret=line one" },
	{ "1024 bytes", "@/gw.xml", "secret", S_FILE, X1024 "\n", 0, 0600, 1, 0,
	  "xmpp.secret.len=1024" },
	{ "1025 bytes", "@/gw.xml", "secret", S_FILE, X1024 "x\n", 0, 0600, 1, 0,
	  "3: <xmpp> attribute \"secret-file\": the first line of @/secret is longer than 1024 bytes" },
	{ "1025 bytes, no newline", "@/gw.xml", "secret", S_FILE, X1024 "x", 0, 0600, 1, 0,
	  "3: <xmpp> attribute \"secret-file\": the first line of @/secret is longer than 1024 bytes" },
	{ "a long file with a short first line", "@/gw.xml", "secret", S_FILE,
	  "short\n" X1024 X1024 "\n", 0, 0600, 1, 0, "xmpp.secret=short" },
	{ "empty file", "@/gw.xml", "secret", S_FILE, "", 0, 0600, 1, 0,
	  "3: <xmpp> attribute \"secret-file\": the secret (first line of @/secret) is empty" },
	{ "empty first line", "@/gw.xml", "secret", S_FILE, "\nabc\n", 0, 0600, 1, 0,
	  "3: <xmpp> attribute \"secret-file\": the secret (first line of @/secret) is empty" },
	{ "NUL byte", "@/gw.xml", "secret", S_FILE, "a\0c\n", 4, 0600, 1, 0,
	  "3: <xmpp> attribute \"secret-file\": the first line of @/secret holds a NUL byte" },
	{ "0644 refused", "@/gw.xml", "secret", S_FILE, "abc\n", 0, 0644, 1, 0,
	  "3: <xmpp> attribute \"secret-file\": @/secret is readable by others; chmod 600 it" },
	{ "0640 refused (group)", "@/gw.xml", "secret", S_FILE, "abc\n", 0, 0640, 1, 0,
	  "3: <xmpp> attribute \"secret-file\": @/secret is readable by others; chmod 600 it" },
	{ "0604 refused (others)", "@/gw.xml", "secret", S_FILE, "abc\n", 0, 0604, 1, 0,
	  "3: <xmpp> attribute \"secret-file\": @/secret is readable by others; chmod 600 it" },
	{ "0644 without check_perms", "@/gw.xml", "secret", S_FILE, "abc\n", 0, 0644, 0, 0,
	  "xmpp.secret=abc" },
	{ "0400", "@/gw.xml", "secret", S_FILE, "abc\n", 0, 0400, 1, 0, "xmpp.secret=abc" },
	{ "0620: group may write, not read", "@/gw.xml", "secret", S_FILE, "abc\n", 0, 0620, 1, 0,
	  "xmpp.secret=abc" },
	{ "missing", "@/gw.xml", "nosuch", S_NONE, NULL, 0, 0, 1, 0,
	  "3: <xmpp> attribute \"secret-file\": cannot open @/nosuch: No such file or directory" },
	{ "absolute path ignores the file's directory", "elsewhere/gw.xml", "@/secret", S_FILE,
	  "abs\n", 0, 0600, 1, 0, "xmpp.secret=abs" },
	{ "a name without directory: the working directory", "gw.xml", "secret", S_FILE, "cwd\n",
	  0, 0600, 1, 1, "xmpp.secret=cwd" },
	{ "relative to a relative directory", "./gw.xml", "secret", S_FILE, "dot\n", 0, 0600, 1, 1,
	  "xmpp.secret=dot" },
	{ "a directory", "@/gw.xml", ".", S_NONE, NULL, 0, 0, 1, 0,
	  "3: <xmpp> attribute \"secret-file\": @/. is not a regular file" },
	{ "a FIFO is refused without blocking", "@/gw.xml", "secret", S_FIFO, NULL, 0, 0600, 1, 0,
	  "3: <xmpp> attribute \"secret-file\": @/secret is not a regular file" },
};

static void test_secrets(void)
{
	char *secret = gw_xasprintf("%s/secret", tmpdir);
	char cwd[PATH_MAX];

	if (!getcwd(cwd, sizeof(cwd))) {
		perror("getcwd");
		exit(2);
	}
	for (size_t i = 0; i < NELEM(secret_cases); i++) {
		const struct secret_case *sc = &secret_cases[i];
		char *name = subst(sc->name, tmpdir), *attr = subst(sc->attr, tmpdir);
		char *xml = gw_xasprintf(GW "<log/>\n<xmpp domain=\"xmpp.example\" server=\"127.0.0.1\" "
					 "secret-file=\"%s\"/>\n" SIP PEER END, attr);
		const char *want[2] = { sc->want, NULL };
		struct diags d = { 0 };
		struct conf *c;

		unlink(secret);
		if (sc->setup == S_FILE)
			write_file(secret, sc->content, sc->len ? sc->len : strlen(sc->content),
				   sc->mode);
		if (sc->setup == S_FIFO && mkfifo(secret, sc->mode) < 0) {
			perror("mkfifo");
			exit(2);
		}
		if (sc->in_dir && chdir(tmpdir) < 0) {
			perror("chdir");
			exit(2);
		}
		c = parse_str(name, xml, sc->check_perms, &d);
		if (sc->in_dir && chdir(cwd) < 0) {
			perror("chdir");
			exit(2);
		}
		expect(sc->what, name, c, &d, want, tmpdir);
		conf_free(c);
		diags_clear(&d);
		free(xml);
		free(attr);
		free(name);
	}
	unlink(secret);
	free(secret);
}

/* ---- conf_load(): reading the file, and the rule for a file holding secret="" */

enum load_setup { L_WRITE, L_MISSING, L_DIR, L_BIG };

#define XMPP_FILE "<xmpp domain=\"xmpp.example\" server=\"127.0.0.1\" secret-file=\"secret\"/>\n"

static const struct load_case {
	const char *what;
	enum load_setup setup;
	const char *xml;
	mode_t conf_mode, secret_mode;	/* @/gw.xml, and @/secret holding "abc\n" */
	const char *want[4];		/* '@' is the temporary directory */
} load_cases[] = {
	{ "inline secret, file 0600", L_WRITE, GW XMPP SIP PEER END, 0600, 0600,
	  { "xmpp.secret=s3cret", "path=@/gw.xml" } },
	{ "inline secret, file 0400", L_WRITE, GW XMPP SIP PEER END, 0400, 0600,
	  { "xmpp.secret=s3cret" } },
	{ "inline secret, file 0644", L_WRITE, GW XMPP SIP PEER END, 0644, 0600,
	  { "2: <xmpp> attribute \"secret\": @/gw.xml is readable by others; chmod 600 it" } },
	{ "inline secret, file 0640", L_WRITE, GW XMPP SIP PEER END, 0640, 0600,
	  { "2: <xmpp> attribute \"secret\": @/gw.xml is readable by others" } },
	{ "inline secret, file 0644, and another error", L_WRITE,
	  GW XMPP "<sip/>\n" PEER END, 0644, 0600,
	  { "3: <sip>: missing required element <listen>",
	    "2: <xmpp> attribute \"secret\": @/gw.xml is readable by others" } },
	{ "secret-file 0600, file 0644", L_WRITE, GW XMPP_FILE SIP PEER END, 0644, 0600,
	  { "xmpp.secret=abc" } },
	{ "secret-file 0644: conf_load always checks", L_WRITE, GW XMPP_FILE SIP PEER END, 0600,
	  0644, { "2: <xmpp> attribute \"secret-file\": @/secret is readable by others" } },
	{ "file 0666", L_WRITE, GW XMPP_FILE SIP PEER END, 0666, 0600,
	  { "0: writable by every user (mode 0666); chmod o-w it" } },
	{ "file 0602", L_WRITE, GW XMPP_FILE SIP PEER END, 0602, 0600,
	  { "0: writable by every user (mode 0602); chmod o-w it" } },
	{ "file 0664 (group-writable) is the operator's choice", L_WRITE,
	  GW XMPP_FILE SIP PEER END, 0664, 0600, { "xmpp.secret=abc" } },
	{ "secret-file 0602", L_WRITE, GW XMPP_FILE SIP PEER END, 0600, 0602,
	  { "2: <xmpp> attribute \"secret-file\": @/secret is writable by every user; "
	    "chmod 600 it" } },
	{ "missing file", L_MISSING, NULL, 0, 0,
	  { "0: cannot open: No such file or directory" } },
	{ "a directory", L_DIR, NULL, 0, 0, { "0: cannot read: Is a directory" } },
	{ "larger than 1 MiB", L_BIG, NULL, 0600, 0600, { "0: larger than 1048576 bytes" } },
	{ "malformed", L_WRITE, GW XMPP, 0600, 0600, { "3: malformed XML: no element found" } },
};

static void test_load(void)
{
	char *path = gw_xasprintf("%s/gw.xml", tmpdir);
	char *secret = gw_xasprintf("%s/secret", tmpdir);
	char *dir = gw_xasprintf("%s/dir.xml", tmpdir);

	if (mkdir(dir, 0700) < 0) {
		perror("mkdir");
		exit(2);
	}
	for (size_t i = 0; i < NELEM(load_cases); i++) {
		const struct load_case *lc = &load_cases[i];
		const char *file = lc->setup == L_DIR ? dir : path;
		struct diags d = { 0 };
		struct conf *c;

		unlink(path);
		write_file(secret, "abc\n", 4, lc->secret_mode);
		if (lc->setup == L_WRITE) {
			write_file(path, lc->xml, strlen(lc->xml), lc->conf_mode);
		} else if (lc->setup == L_BIG) {
			size_t n = 1024 * 1024 + 1;
			char *big = gw_xmalloc(n);

			memset(big, ' ', n);
			write_file(path, big, n, lc->conf_mode);
			free(big);
		}
		c = conf_load(file, collect, &d);
		expect(lc->what, file, c, &d, lc->want, tmpdir);
		conf_free(c);
		diags_clear(&d);
	}
	unlink(path);
	unlink(secret);
	rmdir(dir);
	free(dir);
	free(secret);
	free(path);
}

/* ---- <tls> and <xmpp ca>: certificate, key and CA files made at run time with openssl(1)
 *
 * Made here rather than checked in: a fixed certificate would expire, or stop being "not valid
 * yet", on its own.  All in @/tls; the configuration is @/gw.xml, so "tls/x.pem" is @/tls/x.pem:
 *   ca.pem ca.key    a CA (/CN=test-ca), valid for ten years
 *   good.pem         /CN=xmpp.example, signed by the CA, key good.key (0600)
 *   chain.pem        good.pem then ca.pem
 *   expired.pem      good.key's certificate, valid in January 2020 only
 *   future.pem       good.key's certificate, valid from 2099
 *   other.key        a key matching none of them
 *   enc.key          good.key encrypted (PKCS#8, AES-256)
 *   good.der         good.pem in DER
 *   notpem.pem       text; empty.pem: nothing
 *   cas.pem          ca.pem and good.pem; cas-expired.pem: ca.pem and expired.pem
 *   k0644.key k0640.key k0620.key k0602.key k0400.key: good.key in those modes
 *   o0644.key        other.key, mode 0644
 */

static const char tls_ca_cnf[] =
	"[ca]\ndefault_ca = d\n"
	"[d]\ndatabase = index.txt\nnew_certs_dir = .\nserial = serial\ncertificate = ca.pem\n"
	"private_key = ca.key\ndefault_md = sha256\npolicy = p\nunique_subject = no\n"
	"[p]\ncommonName = supplied\n";

static const char *const tls_setup[] = {
	"openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key "
	"-out ca.pem -subj /CN=test-ca -days 3650",
	"openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout good.key "
	"-out good.csr -subj /CN=xmpp.example",
	"openssl x509 -req -in good.csr -CA ca.pem -CAkey ca.key -set_serial 1000 -days 3650 "
	"-out good.pem",
	"openssl ca -batch -config ca.cnf -notext -in good.csr -out expired.pem "
	"-startdate 20200101000000Z -enddate 20200201000000Z",
	"openssl ca -batch -config ca.cnf -notext -in good.csr -out future.pem "
	"-startdate 20990101000000Z -enddate 21000101000000Z",
	"openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out other.key",
	"openssl pkey -in good.key -aes256 -passout pass:secret -out enc.key",
	"openssl x509 -in good.pem -outform DER -out good.der",
	"cat good.pem ca.pem > chain.pem && cat ca.pem good.pem > cas.pem && "
	"cat ca.pem expired.pem > cas-expired.pem",
	"chmod 600 good.key other.key enc.key",
	"for m in 0644 0640 0620 0602 0400; do cp good.key k$m.key && chmod $m k$m.key; done",
	"cp other.key o0644.key && chmod 0644 o0644.key",
};

/* Runs cmd in @/tls through the shell; a failure ends the test run (exit 2). */
static void tls_run(const char *cmd)
{
	char *sh = gw_xasprintf("cd '%s/tls' && { %s; } >/dev/null 2>&1", tmpdir, cmd);
	int rc = system(sh);

	if (rc != 0) {
		fprintf(stderr, "test_conf: setup failed (status %d): %s\n", rc, sh);
		exit(2);
	}
	free(sh);
}

#define TLS_AT(cert, key, ca) \
	"<tls certificate=\"" cert "\" key=\"" key "\" ca=\"" ca "\"/>\n"
#define TLS_GOOD TLS_AT("tls/good.pem", "tls/good.key", "tls/ca.pem")
#define XMPP_TLS(attrs) \
	"<xmpp domain=\"xmpp.example\" server=\"127.0.0.1\" secret=\"s3cret\" " attrs "/>\n"
#define SIP_TLS "<sip><listen address=\"127.0.0.1\"/><listen address=\"127.0.0.1\" " \
	"transport=\"tls\" port=\"5061\"/></sip>\n"
#define PEER_TLS(tls, transport) \
	"<peer domain=\"sip.example\" tls=\"" tls "\"><route address=\"127.0.0.1\" port=\"5061\" " \
	"transport=\"" transport "\"/><trust address=\"127.0.0.1\"/></peer>\n"

enum tls_via { T_PARSE, T_PARSE_PERMS, T_LOAD };

/* Lines: 1 gateway, 2 xmpp, 3 tls (when there is one), 4 sip, 5 peer. */
static const struct tls_case {
	const char *what;
	enum tls_via via;	/* conf_parse() without or with check_perms, or conf_load() */
	const char *xml;	/* parsed as @/gw.xml; '@' is the temporary directory */
	const char *want[MAX_WANT];
} tls_cases[] = {
	{ "a good set, paths resolved against the file's directory", T_PARSE_PERMS,
	  GW XMPP TLS_GOOD SIP PEER END,
	  { "tls.certificate=@/tls/good.pem", "tls.key=@/tls/good.key", "tls.ca=@/tls/ca.pem",
	    "tls.verify-depth=4", "tls.line=3" } },
	{ "absolute paths", T_PARSE_PERMS,
	  GW XMPP TLS_AT("@/tls/good.pem", "@/tls/good.key", "@/tls/ca.pem") SIP PEER END,
	  { "tls.certificate=@/tls/good.pem", "tls.key=@/tls/good.key", "tls.ca=@/tls/ca.pem" } },
	{ "a chain, the gateway's certificate first", T_PARSE_PERMS,
	  GW XMPP TLS_AT("tls/chain.pem", "tls/good.key", "tls/ca.pem") SIP PEER END,
	  { "tls.certificate=@/tls/chain.pem" } },
	{ "a CA file of two certificates", T_PARSE_PERMS,
	  GW XMPP TLS_AT("tls/good.pem", "tls/good.key", "tls/cas.pem") SIP PEER END,
	  { "tls.ca=@/tls/cas.pem" } },
	{ "<tls> after the elements that need it", T_PARSE_PERMS,
	  GW XMPP SIP_TLS PEER_TLS("required", "tls") TLS_GOOD END,
	  { "tls.line=5", "listen[1].transport=tls", "peer[0].tls=required",
	    "peer[0].route.transport=tls" } },
	{ "verify-depth 1", T_PARSE,
	  GW XMPP "<tls certificate=\"tls/good.pem\" key=\"tls/good.key\" ca=\"tls/ca.pem\" "
	  "verify-depth=\"1\"/>\n" SIP PEER END,
	  { "tls.verify-depth=1" } },
	{ "verify-depth 16", T_PARSE,
	  GW XMPP "<tls certificate=\"tls/good.pem\" key=\"tls/good.key\" ca=\"tls/ca.pem\" "
	  "verify-depth=\"16\"/>\n" SIP PEER END,
	  { "tls.verify-depth=16" } },
	{ "verify-depth 0", T_PARSE,
	  GW XMPP "<tls certificate=\"tls/good.pem\" key=\"tls/good.key\" ca=\"tls/ca.pem\" "
	  "verify-depth=\"0\"/>\n" SIP PEER END,
	  { "3: <tls> attribute \"verify-depth\": 0 is out of range 1..16" } },
	{ "verify-depth 17", T_PARSE,
	  GW XMPP "<tls certificate=\"tls/good.pem\" key=\"tls/good.key\" ca=\"tls/ca.pem\" "
	  "verify-depth=\"17\"/>\n" SIP PEER END,
	  { "3: <tls> attribute \"verify-depth\": 17 is out of range 1..16" } },
	{ "an unknown attribute", T_PARSE,
	  GW XMPP "<tls certificate=\"tls/good.pem\" key=\"tls/good.key\" ca=\"tls/ca.pem\" "
	  "password=\"x\"/>\n" SIP PEER END,
	  { "3: <tls>: unknown attribute \"password\"" } },
	{ "no certificate attribute", T_PARSE,
	  GW XMPP "<tls key=\"tls/good.key\" ca=\"tls/ca.pem\"/>\n" SIP PEER END,
	  { "3: <tls>: missing required attribute \"certificate\"" } },
	{ "no key attribute", T_PARSE,
	  GW XMPP "<tls certificate=\"tls/good.pem\" ca=\"tls/ca.pem\"/>\n" SIP PEER END,
	  { "3: <tls>: missing required attribute \"key\"" } },
	{ "no ca attribute", T_PARSE,
	  GW XMPP "<tls certificate=\"tls/good.pem\" key=\"tls/good.key\"/>\n" SIP PEER END,
	  { "3: <tls>: missing required attribute \"ca\"" } },
	{ "an empty certificate path", T_PARSE,
	  GW XMPP TLS_AT("", "tls/good.key", "tls/ca.pem") SIP PEER END,
	  { "3: <tls> attribute \"certificate\": \"\" is not a usable path" } },

	/* the certificate */
	{ "missing certificate file", T_PARSE_PERMS,
	  GW XMPP TLS_AT("tls/nosuch.pem", "tls/good.key", "tls/ca.pem") SIP PEER END,
	  { "3: <tls>: certificate @/tls/nosuch.pem: cannot open: No such file or directory" } },
	{ "a directory as certificate", T_PARSE_PERMS,
	  GW XMPP TLS_AT("tls", "tls/good.key", "tls/ca.pem") SIP PEER END,
	  { "3: <tls>: certificate @/tls: not a regular file" } },
	{ "a certificate file that is not PEM", T_PARSE_PERMS,
	  GW XMPP TLS_AT("tls/notpem.pem", "tls/good.key", "tls/ca.pem") SIP PEER END,
	  { "3: <tls>: certificate @/tls/notpem.pem: no PEM certificate in it" } },
	{ "an empty certificate file", T_PARSE_PERMS,
	  GW XMPP TLS_AT("tls/empty.pem", "tls/good.key", "tls/ca.pem") SIP PEER END,
	  { "3: <tls>: certificate @/tls/empty.pem: no PEM certificate in it" } },
	{ "a DER certificate", T_PARSE_PERMS,
	  GW XMPP TLS_AT("tls/good.der", "tls/good.key", "tls/ca.pem") SIP PEER END,
	  { "3: <tls>: certificate @/tls/good.der: no PEM certificate in it" } },
	{ "the key file as certificate", T_PARSE_PERMS,
	  GW XMPP TLS_AT("tls/good.key", "tls/good.key", "tls/ca.pem") SIP PEER END,
	  { "3: <tls>: certificate @/tls/good.key: no PEM certificate in it" } },
	{ "an expired certificate", T_PARSE_PERMS,
	  GW XMPP TLS_AT("tls/expired.pem", "tls/good.key", "tls/ca.pem") SIP PEER END,
	  { "3: <tls>: certificate @/tls/expired.pem (/CN=xmpp.example) has expired" } },
	{ "a certificate not valid yet", T_PARSE_PERMS,
	  GW XMPP TLS_AT("tls/future.pem", "tls/good.key", "tls/ca.pem") SIP PEER END,
	  { "3: <tls>: certificate @/tls/future.pem (/CN=xmpp.example) is not valid yet" } },

	/* the key */
	{ "a key not matching the certificate", T_PARSE_PERMS,
	  GW XMPP TLS_AT("tls/good.pem", "tls/other.key", "tls/ca.pem") SIP PEER END,
	  { "3: <tls>: private key @/tls/other.key does not match the certificate @/tls/good.pem" } },
	{ "an encrypted key", T_PARSE_PERMS,
	  GW XMPP TLS_AT("tls/good.pem", "tls/enc.key", "tls/ca.pem") SIP PEER END,
	  { "3: <tls>: private key @/tls/enc.key: not an unencrypted PEM private key (" } },
	{ "missing key file", T_PARSE_PERMS,
	  GW XMPP TLS_AT("tls/good.pem", "tls/nosuch.key", "tls/ca.pem") SIP PEER END,
	  { "3: <tls>: private key @/tls/nosuch.key: cannot open: No such file or directory" } },
	{ "the certificate as key", T_PARSE,
	  GW XMPP TLS_AT("tls/good.pem", "tls/good.pem", "tls/ca.pem") SIP PEER END,
	  { "3: <tls>: private key @/tls/good.pem: not an unencrypted PEM private key (" } },
	{ "a key file that is not PEM", T_PARSE,
	  GW XMPP TLS_AT("tls/good.pem", "tls/notpem.pem", "tls/ca.pem") SIP PEER END,
	  { "3: <tls>: private key @/tls/notpem.pem: not an unencrypted PEM private key (" } },
	{ "key mode 0644", T_PARSE_PERMS,
	  GW XMPP TLS_AT("tls/good.pem", "tls/k0644.key", "tls/ca.pem") SIP PEER END,
	  { "3: <tls>: private key @/tls/k0644.key: readable or writable by others; chmod 600 it" } },
	{ "key mode 0640 (group may read)", T_PARSE_PERMS,
	  GW XMPP TLS_AT("tls/good.pem", "tls/k0640.key", "tls/ca.pem") SIP PEER END,
	  { "3: <tls>: private key @/tls/k0640.key: readable or writable by others" } },
	{ "key mode 0620 (group may write)", T_PARSE_PERMS,
	  GW XMPP TLS_AT("tls/good.pem", "tls/k0620.key", "tls/ca.pem") SIP PEER END,
	  { "3: <tls>: private key @/tls/k0620.key: readable or writable by others" } },
	{ "key mode 0602 (others may write)", T_PARSE_PERMS,
	  GW XMPP TLS_AT("tls/good.pem", "tls/k0602.key", "tls/ca.pem") SIP PEER END,
	  { "3: <tls>: private key @/tls/k0602.key: readable or writable by others" } },
	{ "key mode 0400", T_PARSE_PERMS,
	  GW XMPP TLS_AT("tls/good.pem", "tls/k0400.key", "tls/ca.pem") SIP PEER END,
	  { "tls.key=@/tls/k0400.key" } },
	{ "key mode 0644 without permission checks", T_PARSE,
	  GW XMPP TLS_AT("tls/good.pem", "tls/k0644.key", "tls/ca.pem") SIP PEER END,
	  { "tls.key=@/tls/k0644.key" } },
	{ "key mode 0644: conf_load() always checks", T_LOAD,
	  GW XMPP TLS_AT("tls/good.pem", "tls/k0644.key", "tls/ca.pem") SIP PEER END,
	  { "3: <tls>: private key @/tls/k0644.key: readable or writable by others; chmod 600 it" } },
	{ "a good set through conf_load()", T_LOAD,
	  GW XMPP TLS_GOOD SIP PEER END,
	  { "tls.key=@/tls/good.key" } },

	/* the CA file */
	{ "an empty CA file", T_PARSE_PERMS,
	  GW XMPP TLS_AT("tls/good.pem", "tls/good.key", "tls/empty.pem") SIP PEER END,
	  { "3: <tls>: CA file @/tls/empty.pem: no PEM certificate in it" } },
	{ "a CA file that is not PEM", T_PARSE_PERMS,
	  GW XMPP TLS_AT("tls/good.pem", "tls/good.key", "tls/notpem.pem") SIP PEER END,
	  { "3: <tls>: CA file @/tls/notpem.pem: no PEM certificate in it" } },
	{ "missing CA file", T_PARSE_PERMS,
	  GW XMPP TLS_AT("tls/good.pem", "tls/good.key", "tls/nosuch.pem") SIP PEER END,
	  { "3: <tls>: CA file @/tls/nosuch.pem: cannot open: No such file or directory" } },
	{ "a CA file holding an expired certificate", T_PARSE_PERMS,
	  GW XMPP TLS_AT("tls/good.pem", "tls/good.key", "tls/cas-expired.pem") SIP PEER END,
	  { "3: <tls>: CA file @/tls/cas-expired.pem: certificate 2 (/CN=xmpp.example) has expired" } },
	{ "a CA file holding a certificate not valid yet", T_PARSE_PERMS,
	  GW XMPP TLS_AT("tls/good.pem", "tls/good.key", "tls/future.pem") SIP PEER END,
	  { "3: <tls>: CA file @/tls/future.pem: certificate 1 (/CN=xmpp.example) is not valid yet" } },

	/* every problem of every file, in one run */
	{ "every file wrong", T_PARSE_PERMS,
	  GW XMPP TLS_AT("tls/expired.pem", "tls/o0644.key", "tls/empty.pem") SIP PEER END,
	  { "3: <tls>: certificate @/tls/expired.pem (/CN=xmpp.example) has expired",
	    "3: <tls>: private key @/tls/o0644.key: readable or writable by others",
	    "3: <tls>: private key @/tls/o0644.key does not match the certificate @/tls/expired.pem",
	    "3: <tls>: CA file @/tls/empty.pem: no PEM certificate in it" } },
	{ "a missing certificate does not stop the other checks", T_PARSE_PERMS,
	  GW XMPP TLS_AT("tls/nosuch.pem", "tls/enc.key", "tls/cas-expired.pem") SIP PEER END,
	  { "3: <tls>: certificate @/tls/nosuch.pem: cannot open",
	    "3: <tls>: private key @/tls/enc.key: not an unencrypted PEM private key",
	    "3: <tls>: CA file @/tls/cas-expired.pem: certificate 2 (/CN=xmpp.example) has expired" } },
	{ "a tls <listen> with a bad <tls>: the file's problem only", T_PARSE_PERMS,
	  GW XMPP TLS_AT("tls/future.pem", "tls/good.key", "tls/ca.pem") SIP_TLS PEER END,
	  { "3: <tls>: certificate @/tls/future.pem (/CN=xmpp.example) is not valid yet" } },

	/* peers over TLS */
	{ "a peer over TLS only", T_PARSE_PERMS,
	  GW XMPP TLS_GOOD SIP_TLS PEER_TLS("required", "tls") END,
	  { "listen[0].transport=udp", "listen[1].transport=tls", "listen[1].port=5061",
	    "peer[0].tls=required", "peer[0].route.transport=tls", "peer[0].route.port=5061" } },
	{ "a peer reached over TLS, its requests on any transport", T_PARSE_PERMS,
	  GW XMPP TLS_GOOD SIP PEER_TLS("no", "tls") END,
	  { "peer[0].tls=no", "peer[0].route.transport=tls" } },
	{ "tls=\"required\" with a tcp <route>", T_PARSE_PERMS,
	  GW XMPP TLS_GOOD SIP_TLS PEER_TLS("required", "tcp") END,
	  { "5: <peer> \"sip.example\": tls=\"required\" needs <route transport=\"tls\">" } },
	{ "tls=\"required\" without a tls <listen>", T_PARSE_PERMS,
	  GW XMPP TLS_GOOD SIP PEER_TLS("required", "tls") END,
	  { "5: <peer> \"sip.example\": tls=\"required\" needs a <listen transport=\"tls\"> for its "
	    "requests" } },
	{ "duplicate <tls>", T_PARSE_PERMS,
	  GW XMPP TLS_GOOD SIP PEER TLS_AT("x", "y", "z") END,
	  { "6: <gateway>: duplicate <tls> (the first is at line 3)" } },

	/* <xmpp tls ca> (lines: 1 gateway, 2 xmpp, 3 sip, 4 peer) */
	{ "<xmpp tls=\"direct\"> with a CA file", T_PARSE_PERMS,
	  GW XMPP_TLS("tls=\"direct\" ca=\"tls/ca.pem\"") SIP PEER END,
	  { "xmpp.tls=direct", "xmpp.ca=@/tls/ca.pem", "tls.certificate=(null)" } },
	{ "<xmpp ca> without tls=\"direct\"", T_PARSE_PERMS,
	  GW XMPP_TLS("ca=\"tls/ca.pem\"") SIP PEER END,
	  { "2: <xmpp>: \"ca\" is for tls=\"direct\"" } },
	{ "<xmpp ca> with tls=\"no\"", T_PARSE_PERMS,
	  GW XMPP_TLS("tls=\"no\" ca=\"tls/ca.pem\"") SIP PEER END,
	  { "2: <xmpp>: \"ca\" is for tls=\"direct\"" } },
	{ "<xmpp ca> empty", T_PARSE_PERMS,
	  GW XMPP_TLS("tls=\"direct\" ca=\"tls/empty.pem\"") SIP PEER END,
	  { "2: <xmpp>: CA file @/tls/empty.pem: no PEM certificate in it" } },
	{ "<xmpp ca> expired", T_PARSE_PERMS,
	  GW XMPP_TLS("tls=\"direct\" ca=\"tls/expired.pem\"") SIP PEER END,
	  { "2: <xmpp>: CA file @/tls/expired.pem: certificate 1 (/CN=xmpp.example) has expired" } },
	{ "<xmpp ca> missing, with a refused tls", T_PARSE_PERMS,
	  GW XMPP_TLS("tls=\"starttls\" ca=\"tls/nosuch.pem\"") SIP PEER END,
	  { "2: <xmpp> attribute \"tls\": \"starttls\" is not one of no, direct",
	    "2: <xmpp>: CA file @/tls/nosuch.pem: cannot open: No such file or directory" } },

	/* <audit file>: a path like the others (the file is opened when the gateway starts) */
	{ "<audit file> resolved against the file's directory", T_PARSE_PERMS,
	  GW XMPP SIP PEER "<audit file=\"audit.log\" content=\"yes\"/>\n" END,
	  { "audit.file=@/audit.log", "audit.content=1", "audit.syslog=0" } },
};

static void test_tls(void)
{
	char *dir = gw_xasprintf("%s/tls", tmpdir), *path = gw_xasprintf("%s/gw.xml", tmpdir);
	char *file;

	if (mkdir(dir, 0700) < 0) {
		perror("mkdir");
		exit(2);
	}
	file = gw_xasprintf("%s/ca.cnf", dir);
	write_file(file, tls_ca_cnf, strlen(tls_ca_cnf), 0600);
	free(file);
	file = gw_xasprintf("%s/serial", dir);
	write_file(file, "01\n", 3, 0600);
	free(file);
	file = gw_xasprintf("%s/index.txt", dir);
	write_file(file, "", 0, 0600);
	free(file);
	file = gw_xasprintf("%s/notpem.pem", dir);
	write_file(file, "not a certificate\n", 18, 0644);
	free(file);
	file = gw_xasprintf("%s/empty.pem", dir);
	write_file(file, "", 0, 0644);
	free(file);
	for (size_t i = 0; i < NELEM(tls_setup); i++)
		tls_run(tls_setup[i]);

	for (size_t i = 0; i < NELEM(tls_cases); i++) {
		const struct tls_case *tc = &tls_cases[i];
		char *xml = subst(tc->xml, tmpdir);
		struct diags d = { 0 };
		struct conf *c;

		if (tc->via == T_LOAD) {
			write_file(path, xml, strlen(xml), 0600);
			c = conf_load(path, collect, &d);
			unlink(path);
		} else {
			c = parse_str(path, xml, tc->via == T_PARSE_PERMS, &d);
		}
		expect(tc->what, path, c, &d, tc->want, tmpdir);
		conf_free(c);
		diags_clear(&d);
		free(xml);
	}
	tls_run("cd .. && rm -rf tls");
	free(path);
	free(dir);
}

/* ---- the sample conf/gateway.xml, loaded as deployed: copied next to its secret, chmod 600 */

static void test_sample(void)
{
	/* __FILE__ is tests/unit/test_conf.c, relative to the tree (or absolute) */
	static const char self[] = "tests/unit/test_conf.c";
	static const char *const want[] = {
		"xmpp.domain=xmpp.example", "xmpp.server=127.0.0.1", "xmpp.port=5347",
		"xmpp.secret=sample-secret", "nlisten=2", "listen[1].transport=tcp",
		"npeers=1", "peer[0].domain=sip.example", "peer[0].component=sip.example",
		"peer[0].route.address=127.0.0.1", "peer[0].route.port=5080", "log.syslog=0",
		NULL,
	};
	const char *me = __FILE__;
	size_t flen = strlen(me);
	char *src = gw_xasprintf("%.*sconf/gateway.xml", (int)(flen - strlen(self)), me);
	char *dst = gw_xasprintf("%s/gateway.xml", tmpdir);
	char *secret = gw_xasprintf("%s/component.secret", tmpdir);
	char *buf = gw_xmalloc(64 * 1024);
	struct diags d = { 0 };
	struct conf *c;
	size_t n;
	FILE *f;

	CHECK(flen >= strlen(self) && strcmp(me + flen - strlen(self), self) == 0,
	      "sample: cannot locate the tree from %s", me);
	f = fopen(src, "r");
	CHECK(f != NULL, "sample: cannot open %s", src);
	if (f) {
		n = fread(buf, 1, 64 * 1024, f);
		fclose(f);
		write_file(dst, buf, n, 0600);
		write_file(secret, "sample-secret\n", 14, 0600);
		c = conf_load(dst, collect, &d);
		expect("sample conf/gateway.xml", dst, c, &d, want, NULL);
		if (c) {
			CHECK_INT(c->peers[0]->ntrust, 2, "sample: trusts");
			CHECK_STR(c->peers[0]->name, "sipnet", "sample: peer name");
		}
		conf_free(c);
		diags_clear(&d);

		/* and as shipped, readable secret: refused */
		write_file(secret, "sample-secret\n", 14, 0644);
		c = conf_load(dst, collect, &d);
		CHECK(c == NULL && d.n == 1, "sample: a 0644 secret-file is refused");
		conf_free(c);
		diags_clear(&d);
		unlink(dst);
		unlink(secret);
	}
	free(buf);
	free(secret);
	free(dst);
	free(src);
}

/* ---- lookups */

static const char lookup_doc[] =
	GW XMPP SIP
	"<peer domain=\"sip.example\">\n"
	"  <route address=\"127.0.0.1\"/>\n"
	"  <trust address=\"10.1.0.0/16\"/><trust address=\"192.0.2.7\"/>\n"
	"  <trust address=\"2001:db8::/32\"/><trust address=\"::1\"/>\n"
	"  <trust address=\"10.2.0.0/17\"/><trust address=\"2001:db8:ff00::/41\"/>\n"
	"</peer>\n"
	"<peer domain=\"other.example\" addressing=\"escaped\" component=\"sip-gw.xmpp.example\">"
	ROUTE_TRUST "</peer>\n"
	"<peer domain=\"third.example\" addressing=\"escaped\" component=\"SIP-GW.xmpp.example\">"
	ROUTE_TRUST "</peer>\n"
	"<peer domain=\"any.example\"><route address=\"::1\"/>"
	"<trust address=\"0.0.0.0/0\"/><trust address=\"::/0\"/></peer>\n"
	END;

static const struct {
	int by_component;
	const char *key;
	int want;		/* peer index, or -1 */
} lookup_cases[] = {
	{ 0, "sip.example", 0 },
	{ 0, "SIP.Example", 0 },
	{ 0, "other.example", 1 },
	{ 0, "third.example", 2 },
	{ 0, "xmpp.example", -1 },
	{ 0, "sip-gw.xmpp.example", -1 },
	{ 0, "", -1 },
	{ 1, "sip.example", 0 },
	{ 1, "Sip-Gw.Xmpp.Example", 1 },
	{ 1, "other.example", -1 },
	{ 1, "any.example", 3 },
	{ 1, "xmpp.example", -1 },
};

static const struct {
	int peer;
	const char *addr;	/* "unix": an AF_UNIX address */
	int want;
} trust_cases[] = {
	{ 0, "10.1.2.3", 1 },
	{ 0, "10.1.0.0", 1 },
	{ 0, "10.1.255.255", 1 },
	{ 0, "10.0.255.255", 0 },
	{ 0, "10.2.127.255", 1 },
	{ 0, "10.2.128.0", 0 },
	{ 0, "192.0.2.7", 1 },
	{ 0, "192.0.2.8", 0 },
	{ 0, "::ffff:10.1.2.3", 1 },
	{ 0, "::ffff:192.0.2.7", 1 },
	{ 0, "::ffff:192.0.2.8", 0 },
	{ 0, "::10.1.2.3", 0 },
	{ 0, "2001:db8::1", 1 },
	{ 0, "2001:db8:ffff::1", 1 },
	{ 0, "2001:db9::1", 0 },
	{ 0, "::1", 1 },
	{ 0, "::2", 0 },
	{ 0, "127.0.0.1", 0 },
	{ 0, "unix", 0 },
	{ 1, "127.0.0.1", 1 },
	{ 1, "::ffff:127.0.0.1", 1 },
	{ 1, "127.0.0.2", 0 },
	{ 3, "203.0.113.9", 1 },
	{ 3, "::ffff:203.0.113.9", 1 },
	{ 3, "2001:db8::9", 1 },
	{ 3, "unix", 0 },
};

static void test_lookups(void)
{
	struct diags d = { 0 };
	struct conf *c = parse_str("gw.xml", lookup_doc, 0, &d);

	CHECK(c != NULL, "lookup document parses");
	diags_dump(&d);
	diags_clear(&d);
	if (!c)
		return;
	for (size_t i = 0; i < NELEM(lookup_cases); i++) {
		const struct conf_peer *pe = lookup_cases[i].by_component ?
			conf_peer_by_component(c, lookup_cases[i].key) :
			conf_peer_by_domain(c, lookup_cases[i].key);
		long got = -1;

		for (size_t j = 0; pe && j < c->npeers; j++)
			if (c->peers[j] == pe)
				got = (long)j;

		CHECK_INT(got, lookup_cases[i].want, "lookup row %zu (%s %s)", i,
			  lookup_cases[i].by_component ? "component" : "domain",
			  lookup_cases[i].key);
	}
	for (size_t i = 0; i < NELEM(trust_cases); i++) {
		struct sockaddr_storage ss;
		struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
		struct sockaddr_un *sun = (struct sockaddr_un *)&ss;

		memset(&ss, 0, sizeof(ss));
		if (strcmp(trust_cases[i].addr, "unix") == 0)
			sun->sun_family = AF_UNIX;
		else if (inet_pton(AF_INET, trust_cases[i].addr, &sin->sin_addr) == 1)
			sin->sin_family = AF_INET;
		else if (inet_pton(AF_INET6, trust_cases[i].addr, &sin6->sin6_addr) == 1)
			sin6->sin6_family = AF_INET6;
		CHECK(ss.ss_family != 0, "trust row %zu: bad test address", i);
		CHECK_INT(conf_peer_trusts(c->peers[trust_cases[i].peer], (struct sockaddr *)&ss),
			  trust_cases[i].want, "trust row %zu (peer %d, %s)", i, trust_cases[i].peer,
			  trust_cases[i].addr);
	}
	CHECK_INT(conf_peer_trusts(NULL, NULL), 0, "trusts: NULL");
	conf_free(c);

	CHECK_STR(conf_transport_name(CONF_TRANSPORT_UDP), "udp", "transport name udp");
	CHECK_STR(conf_transport_name(CONF_TRANSPORT_TCP), "tcp", "transport name tcp");
	CHECK_STR(conf_transport_name((enum conf_transport)99), "?", "transport name unknown");
	conf_free(NULL);
}

int main(void)
{
	snprintf(tmpdir, sizeof(tmpdir), "%s/test_conf.XXXXXX",
		 getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	if (!mkdtemp(tmpdir)) {
		perror("mkdtemp");
		return 2;
	}
	test_values();
	test_docs();
	test_size_bound();
	test_presence_db();
	test_secrets();
	test_load();
	test_tls();
	test_sample();
	test_lookups();
	rmdir(tmpdir);
	TEST_DONE();
}
