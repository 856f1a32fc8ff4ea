/* conf.c - the strict gateway file parser: expat events checked against element and option tables.
 *
 * Design: elem_defs[] says which element may appear where and how often; opts[] lists every
 * attribute with its type, bounds, default and where its value is stored (an offset into struct
 * conf, a peer, a listen, a trust, or the parser itself).  Values are parsed by type, so a bound
 * or a default is one table cell.  Defaults are written in the syntax of the file and go through
 * the same converters as the file's values, so the table cannot hold a default the file could not.
 *
 * Diagnostics: every problem is reported (never logged) as it is found, with the line of the
 * element concerned, and parsing goes on; the configuration is thrown away at the end if anything
 * was reported.  Only a well-formedness error, a DOCTYPE or a wrong root element stops the parse.
 * An element that is unknown, misplaced or a duplicated singleton is skipped with everything in
 * it, so one mistake yields one diagnostic rather than a cascade.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

#include <expat.h>

#include "../gateway/gw.h"
#include "../gateway/tls.h"
#include "../sip/msrp.h"
#include "../sip/xcap.h"
#include "conf.h"

#define CONF_NS "urn:simplegw:config:1"
#define CONF_MAX_FILE ((size_t)1024 * 1024)	/* bytes of configuration, in a file or in memory */
#define CONF_MAX_SECRET 1024		/* bytes of secret, inline or the first line of its file */
#define CONF_MAX_NAME 64		/* characters of a peer name */
#define CONF_MAX_SIPUSER 64		/* characters of <presence agent=""> */
#define CONF_MAX_DEPTH 4		/* gateway > presence > list > member: deeper ones are all unknown */
#define SHOWN_CHARS 64			/* characters of an offending value quoted in a diagnostic */
#define SHOWN_SIZE (SHOWN_CHARS * 4 + 8)
#define ERR_SIZE (SHOWN_SIZE * 4 + 256)	/* room for a message quoting a value four times */

#define MIB (1024ULL * 1024)

/* Keyword values are stored through an int: the enums of conf.h must be int-sized. */
_Static_assert(sizeof(enum conf_log_level) == sizeof(int), "enum size");
_Static_assert(sizeof(enum conf_transport) == sizeof(int), "enum size");
_Static_assert(sizeof(enum conf_addressing) == sizeof(int), "enum size");
_Static_assert(sizeof(enum conf_im_type) == sizeof(int), "enum size");
_Static_assert(sizeof(enum conf_im_verdict) == sizeof(int), "enum size");
_Static_assert(sizeof(enum conf_authz) == sizeof(int), "enum size");
_Static_assert(sizeof(enum conf_peer_tls) == sizeof(int), "enum size");
_Static_assert(sizeof(enum conf_xmpp_tls) == sizeof(int), "enum size");

enum elem {
	E_GATEWAY,
	E_LOG,
	E_XMPP,
	E_SIP,
	E_LISTEN,
	E_IM,
	E_PRESENCE,
	E_SESSIONS,
	E_PEER,
	E_ROUTE,
	E_TRUST,
	E_AUTHZ,
	E_LIST,
	E_MEMBER,
	E_RLS,
	E_GROUPCHAT,
	E_MUC,
	E_TLS,
	E_LIMITS,
	E_AUDIT,
	E_ADMIN,
	E_METRICS,
	E_COUNT,		/* also "no parent": the root */
};

struct parser;
struct frame;
typedef void elem_fn(struct parser *p, struct frame *f);

struct elem_def {
	const char *name;
	enum elem parent;
	unsigned min, max;	/* occurrences within one parent; max 0: unbounded */
	elem_fn *start;		/* creates the object the attributes are stored in */
	elem_fn *check;		/* checks between attributes, once they are all parsed */
	elem_fn *end;		/* checks once the children are parsed too */
};

enum vtype {
	V_KEYWORD,		/* one of opt.kw, stored as int */
	V_UINT,			/* decimal, stored as unsigned */
	V_DURATION,		/* NNNms, NNNs, NNNm; stored as unsigned milliseconds */
	V_SECONDS,		/* a duration of whole seconds (bounds in ms); stored as unsigned seconds */
	V_SIZE,			/* NNN, NNNk, NNNM; stored as size_t bytes */
	V_DOMAIN,		/* hostname or IP literal, lower-cased; char * */
	V_ADDRESS,		/* numeric address to send to (not unspecified); char * */
	V_BIND,			/* numeric address to bind to (may be unspecified); char * */
	V_NAME,			/* 1..64 printable ASCII without spaces; char * */
	V_SIPUSER,		/* 1..64 characters of an RFC 3261 user part; char * */
	V_SECRET,		/* 1..CONF_MAX_SECRET bytes; char *, zeroed when freed */
	V_PATH,			/* non-empty path; char * */
	V_URL,			/* an XCAP root URL (xcap_url_check); char * */
	V_JID,			/* a bare JID local@domain in lower case; char * */
	V_TRUST,		/* address or address/prefix; struct conf_trust */
	V_SERVICES,		/* space-separated kw_service names or "all"; unsigned bits */
};

enum target {
	TGT_CONF,
	TGT_PARSER,
	TGT_PEER,		/* the peer being parsed (route attributes land here too) */
	TGT_LISTEN,		/* the listen being parsed */
	TGT_TRUST,		/* the trust being parsed */
	TGT_LIST,		/* the list being parsed */
	TGT_MEMBER,		/* the member being parsed (a char * slot) */
	TGT_MUC,		/* the muc being parsed (a char * slot) */
	TGT_ADMIN,		/* the admin being parsed (a char * slot) */
};

struct keyword {
	const char *name;
	int value;
};

struct opt {
	enum elem elem;
	const char *name;
	enum vtype type;
	const struct keyword *kw;
	unsigned long long min, max;	/* V_UINT, V_DURATION and V_SECONDS (ms), V_SIZE (bytes) */
	const char *def;		/* default, in the file's syntax; NULL: none */
	int required;
	enum target target;
	size_t off;
};

/* One open element. */
struct frame {
	enum elem elem;
	unsigned line;
	unsigned count[E_COUNT];	/* children seen, by kind */
	unsigned first[E_COUNT];	/* line of the first child of each kind */
	uint64_t given;			/* opt_frame_bit()s: attribute present */
	uint64_t bad;			/* opt_frame_bit()s: attribute present but refused */
	int text_reported;
};

struct parser {
	const char *name;
	conf_report_fn *report;
	void *arg;
	int check_perms;
	XML_Parser xp;
	struct conf *conf;
	unsigned nerrors;
	int fatal;			/* parsing was stopped: handlers must do nothing more */
	unsigned depth;			/* frames in use */
	unsigned skip;			/* > 0: inside a skipped element, this deep */
	struct frame frames[CONF_MAX_DEPTH];
	char *secret_file;		/* <xmpp secret-file="">, as written */
	unsigned secret_line;		/* line of an inline secret="", 0 if none */
};

union value {
	unsigned long long n;
	char *s;
	struct conf_trust t;
};

static const struct keyword kw_bool[] = {
	{ "yes", 1 }, { "no", 0 }, { "true", 1 }, { "false", 0 },
	{ "on", 1 }, { "off", 0 }, { "1", 1 }, { "0", 0 }, { NULL, 0 },
};

static const struct keyword kw_level[] = {
	{ "error", CONF_LOG_ERROR }, { "warning", CONF_LOG_WARNING },
	{ "notice", CONF_LOG_NOTICE }, { "info", CONF_LOG_INFO },
	{ "debug", CONF_LOG_DEBUG }, { NULL, 0 },
};

static const struct keyword kw_facility[] = {
	{ "daemon", LOG_DAEMON }, { "user", LOG_USER },
	{ "local0", LOG_LOCAL0 }, { "local1", LOG_LOCAL1 },
	{ "local2", LOG_LOCAL2 }, { "local3", LOG_LOCAL3 },
	{ "local4", LOG_LOCAL4 }, { "local5", LOG_LOCAL5 },
	{ "local6", LOG_LOCAL6 }, { "local7", LOG_LOCAL7 }, { NULL, 0 },
};

static const struct keyword kw_transport[] = {
	{ "udp", CONF_TRANSPORT_UDP }, { "tcp", CONF_TRANSPORT_TCP },
	{ "tls", CONF_TRANSPORT_TLS }, { NULL, 0 },
};

static const struct keyword kw_peer_tls[] = {
	{ "no", CONF_PEER_TLS_NO }, { "required", CONF_PEER_TLS_REQUIRED }, { NULL, 0 },
};

static const struct keyword kw_xmpp_tls[] = {
	{ "no", CONF_XMPP_TLS_NO }, { "direct", CONF_XMPP_TLS_DIRECT }, { NULL, 0 },
};

/* The words of <peer services="">. */
static const struct keyword kw_service[] = {
	{ "pager", CONF_SVC_PAGER }, { "presence", CONF_SVC_PRESENCE },
	{ "sessions", CONF_SVC_SESSIONS }, { "groupchat", CONF_SVC_GROUPCHAT },
	{ "all", CONF_SVC_ALL }, { NULL, 0 },
};

static const struct keyword kw_addressing[] = {
	{ "domain", CONF_ADDR_DOMAIN }, { "escaped", CONF_ADDR_ESCAPED }, { NULL, 0 },
};

static const struct keyword kw_im_type[] = {
	{ "chat", CONF_IM_CHAT }, { "normal", CONF_IM_NORMAL }, { NULL, 0 },
};

static const struct keyword kw_authz[] = {
	{ "watcher", CONF_AUTHZ_WATCHER }, { "policy", CONF_AUTHZ_POLICY },
	{ "views", CONF_AUTHZ_VIEWS }, { NULL, 0 },
};

static const struct keyword kw_im_verdict[] = {
	{ "auto", CONF_VERDICT_AUTO }, { "barrier", CONF_VERDICT_BARRIER },
	{ "accepted", CONF_VERDICT_ACCEPTED }, { NULL, 0 },
};

#define IN_CONF(f) TGT_CONF, offsetof(struct conf, f)
#define IN_PARSER(f) TGT_PARSER, offsetof(struct parser, f)
#define IN_PEER(f) TGT_PEER, offsetof(struct conf_peer, f)
#define IN_LISTEN(f) TGT_LISTEN, offsetof(struct conf_listen, f)
#define IN_TRUST TGT_TRUST, 0
#define IN_LIST(f) TGT_LIST, offsetof(struct conf_list, f)
#define IN_MEMBER TGT_MEMBER, 0
#define IN_MUC TGT_MUC, 0
#define IN_ADMIN TGT_ADMIN, 0

/* Every attribute of the file.  Keep docs/config.md and conf.h in step with this table. */
static const struct opt opts[] = {
	/* element  attribute        type        keywords       min    max        default  req */
	{ E_LOG,    "level",         V_KEYWORD,  kw_level,      0, 0,             "info",   0, IN_CONF(log_level) },
	{ E_LOG,    "stderr",        V_KEYWORD,  kw_bool,       0, 0,             "yes",    0, IN_CONF(log_stderr) },
	{ E_LOG,    "syslog",        V_KEYWORD,  kw_bool,       0, 0,             "no",     0, IN_CONF(log_syslog) },
	{ E_LOG,    "facility",      V_KEYWORD,  kw_facility,   0, 0,             "daemon", 0, IN_CONF(log_facility) },

	{ E_XMPP,   "domain",        V_DOMAIN,   NULL,          0, 0,             NULL,     1, IN_CONF(xmpp_domain) },
	{ E_XMPP,   "server",        V_ADDRESS,  NULL,          0, 0,             NULL,     1, IN_CONF(xmpp_server) },
	{ E_XMPP,   "port",          V_UINT,     NULL,          1, 65535,         "5347",   0, IN_CONF(xmpp_port) },
	{ E_XMPP,   "secret",        V_SECRET,   NULL,          0, 0,             NULL,     0, IN_CONF(secret) },
	{ E_XMPP,   "secret-file",   V_PATH,     NULL,          0, 0,             NULL,     0, IN_PARSER(secret_file) },
	{ E_XMPP,   "reconnect-min", V_DURATION, NULL,          100, 600000,      "1s",     0, IN_CONF(reconnect_min_ms) },
	{ E_XMPP,   "reconnect-max", V_DURATION, NULL,          100, 3600000,     "60s",    0, IN_CONF(reconnect_max_ms) },
	{ E_XMPP,   "max-stanza",    V_SIZE,     NULL,          1024, 16 * MIB,   "64k",    0, IN_CONF(max_stanza) },
	{ E_XMPP,   "tls",           V_KEYWORD,  kw_xmpp_tls,   0, 0,             "no",     0, IN_CONF(xmpp_tls) },
	{ E_XMPP,   "ca",            V_PATH,     NULL,          0, 0,             NULL,     0, IN_CONF(xmpp_ca) },

	{ E_TLS,    "certificate",   V_PATH,     NULL,          0, 0,             NULL,     1, IN_CONF(tls_cert) },
	{ E_TLS,    "key",           V_PATH,     NULL,          0, 0,             NULL,     1, IN_CONF(tls_key) },
	{ E_TLS,    "ca",            V_PATH,     NULL,          0, 0,             NULL,     1, IN_CONF(tls_ca) },
	{ E_TLS,    "verify-depth",  V_UINT,     NULL,          1, 16,            "4",      0, IN_CONF(tls_verify_depth) },

	{ E_AUDIT,  "file",          V_PATH,     NULL,          0, 0,             NULL,     0, IN_CONF(audit_file) },
	{ E_AUDIT,  "syslog",        V_KEYWORD,  kw_bool,       0, 0,             "no",     0, IN_CONF(audit_syslog) },
	{ E_AUDIT,  "content",       V_KEYWORD,  kw_bool,       0, 0,             "no",     0, IN_CONF(audit_content) },

	{ E_ADMIN,  "jid",           V_JID,      NULL,          0, 0,             NULL,     1, IN_ADMIN },

	{ E_METRICS, "address",      V_BIND,     NULL,          0, 0,             NULL,     1, IN_CONF(metrics_address) },
	{ E_METRICS, "port",         V_UINT,     NULL,          1, 65535,         "9477",   0, IN_CONF(metrics_port) },

	{ E_SIP,    "max-message",   V_SIZE,     NULL,          1024, MIB,        "64k",    0, IN_CONF(max_sip_message) },
	{ E_SIP,    "t1",            V_DURATION, NULL,          10, 10000,        "500ms",  0, IN_CONF(sip_t1_ms) },
	{ E_SIP,    "t4",            V_DURATION, NULL,          10, 10000,        "1s",     0, IN_CONF(sip_t4_ms) },
	{ E_SIP,    "max-connections", V_UINT,   NULL,          1, 100000,        "1024",   0, IN_CONF(sip_max_conns) },
	{ E_SIP,    "max-connections-per-source", V_UINT, NULL, 1, 100000,        "64",     0, IN_CONF(sip_max_conns_per_source) },
	{ E_SIP,    "tcp-idle",      V_DURATION, NULL,          1000, 3600000,    "60s",    0, IN_CONF(sip_tcp_idle_ms) },

	{ E_LISTEN, "transport",     V_KEYWORD,  kw_transport,  0, 0,             "udp",    0, IN_LISTEN(transport) },
	{ E_LISTEN, "address",       V_BIND,     NULL,          0, 0,             NULL,     1, IN_LISTEN(address) },
	{ E_LISTEN, "port",          V_UINT,     NULL,          1, 65535,         "5060",   0, IN_LISTEN(port) },

	{ E_IM,     "max-body",      V_SIZE,     NULL,          1, MIB,           "8k",     0, IN_CONF(im_max_body) },
	{ E_IM,     "delivery-wait", V_DURATION, NULL,          0, 30000,         "2s",     0, IN_CONF(im_delivery_wait_ms) },
	{ E_IM,     "barrier-window", V_DURATION, NULL,         0, 1000,          "10ms",   0, IN_CONF(im_barrier_window_ms) },
	{ E_IM,     "type",          V_KEYWORD,  kw_im_type,    0, 0,             "chat",   0, IN_CONF(im_type) },
	{ E_IM,     "verdict",       V_KEYWORD,  kw_im_verdict, 0, 0,             "auto",   0, IN_CONF(im_verdict) },

	{ E_PRESENCE, "enabled",     V_KEYWORD,  kw_bool,       0, 0,             "yes",    0, IN_CONF(presence_enabled) },
	{ E_PRESENCE, "database",    V_PATH,     NULL,          0, 0,             NULL,     0, IN_CONF(presence_db) },
	{ E_PRESENCE, "expires",     V_SECONDS,  NULL,          60000, 86400000,  "3600s",  0, IN_CONF(presence_expires_s) },
	{ E_PRESENCE, "min-expires", V_SECONDS,  NULL,          1000, 3600000,    "60s",    0, IN_CONF(presence_min_expires_s) },
	{ E_PRESENCE, "max-expires", V_SECONDS,  NULL,          1000, 86400000,   "3600s",  0, IN_CONF(presence_max_expires_s) },
	{ E_PRESENCE, "agent",       V_SIPUSER,  NULL,          0, 0,             "simplegw", 0, IN_CONF(presence_agent) },
	{ E_PRESENCE, "max-watchers", V_UINT,    NULL,          1, 10000000,      "100000", 0, IN_CONF(presence_max_watchers) },
	{ E_PRESENCE, "max-subscriptions", V_UINT, NULL,        1, 10000000,      "100000", 0, IN_CONF(presence_max_subscriptions) },
	{ E_PRESENCE, "max-per-user", V_UINT,    NULL,          1, 1000000,       "500",    0, IN_CONF(presence_max_per_user) },
	{ E_PRESENCE, "max-pending-per-user", V_UINT, NULL,     1, 1000000,       "50",     0, IN_CONF(presence_max_pending_per_user) },
	{ E_PRESENCE, "max-per-watcher", V_UINT, NULL,          1, 1000000,       "500",    0, IN_CONF(presence_max_per_watcher) },
	{ E_PRESENCE, "max-per-peer", V_UINT,    NULL,          1, 10000000,      "10000",  0, IN_CONF(presence_max_per_peer) },
	{ E_PRESENCE, "notify-interval", V_DURATION, NULL,      0, 60000,         "1s",     0, IN_CONF(presence_notify_interval_ms) },
	{ E_PRESENCE, "roster-lists", V_KEYWORD, kw_bool,       0, 0,             "no",     0, IN_CONF(presence_roster_lists) },
	{ E_PRESENCE, "max-document", V_SIZE,    NULL,          1024, MIB,        "64k",    0, IN_CONF(presence_max_doc) },

	{ E_SESSIONS, "enabled",     V_KEYWORD,  kw_bool,       0, 0,             "yes",    0, IN_CONF(sessions_enabled) },
	{ E_SESSIONS, "msrp-address", V_BIND,    NULL,          0, 0,             NULL,     0, IN_CONF(msrp_address) },
	{ E_SESSIONS, "msrp-port",   V_UINT,     NULL,          1, 65535,         "2855",   0, IN_CONF(msrp_port) },
	{ E_SESSIONS, "msrps-port",  V_UINT,     NULL,          1, 65535,         "2856",   0, IN_CONF(msrps_port) },
	{ E_SESSIONS, "relay",       V_NAME,     NULL,          0, 0,             NULL,     0, IN_CONF(msrp_relay) },
	{ E_SESSIONS, "max-per-user", V_UINT,    NULL,          1, 1000,          "8",      0, IN_CONF(sessions_max_per_user) },
	{ E_SESSIONS, "max-total",   V_UINT,     NULL,          1, 1000000,       "1000",   0, IN_CONF(sessions_max_total) },
	{ E_SESSIONS, "max-queued",  V_SIZE,     NULL,          1024, 16 * MIB,   "64k",    0, IN_CONF(sessions_max_queued) },
	{ E_SESSIONS, "max-message", V_SIZE,     NULL,          1024, 16 * MIB,   "1M",     0, IN_CONF(sessions_max_message) },
	{ E_SESSIONS, "chunk-size",  V_SIZE,     NULL,          64, MIB,          "2k",     0, IN_CONF(sessions_chunk_size) },
	{ E_SESSIONS, "connect-timeout", V_DURATION, NULL,      1000, 60000,      "10s",    0, IN_CONF(sessions_connect_ms) },
	{ E_SESSIONS, "idle-timeout", V_SECONDS, NULL,          10000, 86400000,  "600s",   0, IN_CONF(sessions_idle_s) },

	{ E_PEER,   "name",          V_NAME,     NULL,          0, 0,             NULL,     0, IN_PEER(name) },
	{ E_PEER,   "domain",        V_DOMAIN,   NULL,          0, 0,             NULL,     1, IN_PEER(domain) },
	{ E_PEER,   "addressing",    V_KEYWORD,  kw_addressing, 0, 0,             "domain", 0, IN_PEER(addressing) },
	{ E_PEER,   "component",     V_DOMAIN,   NULL,          0, 0,             NULL,     0, IN_PEER(component) },
	{ E_PEER,   "sessions",      V_KEYWORD,  kw_bool,       0, 0,             "no",     0, IN_PEER(sessions) },
	{ E_PEER,   "groupchat",     V_KEYWORD,  kw_bool,       0, 0,             "no",     0, IN_PEER(groupchat) },
	{ E_PEER,   "tls",           V_KEYWORD,  kw_peer_tls,   0, 0,             "no",     0, IN_PEER(tls) },
	{ E_PEER,   "services",      V_SERVICES, kw_service,    0, 0,             "all",    0, IN_PEER(services) },

	{ E_LIMITS, "rate",          V_UINT,     NULL,          0, 1000000,       "0",      0, IN_PEER(rate) },
	{ E_LIMITS, "burst",         V_UINT,     NULL,          1, 10000000,      NULL,     0, IN_PEER(burst) },
	{ E_LIMITS, "subscriptions", V_UINT,     NULL,          0, 10000000,      "0",      0, IN_PEER(max_subscriptions) },
	{ E_LIMITS, "sessions",      V_UINT,     NULL,          0, 1000000,       "0",      0, IN_PEER(max_sessions) },
	{ E_LIMITS, "max-document",  V_SIZE,     NULL,          1024, MIB,        NULL,     0, IN_PEER(max_document) },
	{ E_LIMITS, "retry-after",   V_SECONDS,  NULL,          1000, 3600000,    "1s",     0, IN_PEER(retry_after_s) },

	{ E_ROUTE,  "address",       V_ADDRESS,  NULL,          0, 0,             NULL,     1, IN_PEER(route_address) },
	{ E_ROUTE,  "port",          V_UINT,     NULL,          1, 65535,         "5060",   0, IN_PEER(route_port) },
	{ E_ROUTE,  "transport",     V_KEYWORD,  kw_transport,  0, 0,             "udp",    0, IN_PEER(route_transport) },
	{ E_ROUTE,  "options-interval", V_DURATION, NULL,       0, 3600000,       "30s",    0, IN_PEER(options_interval_ms) },

	{ E_TRUST,  "address",       V_TRUST,    NULL,          0, 0,             NULL,     1, IN_TRUST },

	{ E_AUTHZ,  "mode",          V_KEYWORD,  kw_authz,      0, 0,             "watcher", 0, IN_PEER(authz) },
	{ E_AUTHZ,  "xcap-root",     V_URL,      NULL,          0, 0,             NULL,     0, IN_PEER(xcap_root) },
	{ E_AUTHZ,  "refresh",       V_DURATION, NULL,          1000, 86400000,   "5m",     0, IN_PEER(xcap_refresh_ms) },

	{ E_RLS,    "xcap-root",     V_URL,      NULL,          0, 0,             NULL,     1, IN_PEER(rls_xcap_root) },
	{ E_RLS,    "service",       V_SIPUSER,  NULL,          0, 0,             "simplegw-list", 0, IN_PEER(rls_service) },

	{ E_GROUPCHAT, "enabled",    V_KEYWORD,  kw_bool,       0, 0,             "yes",    0, IN_CONF(groupchat_enabled) },
	{ E_GROUPCHAT, "max-total",  V_UINT,     NULL,          1, 1000000,       "2000",   0, IN_CONF(groupchat_max_total) },
	{ E_GROUPCHAT, "max-per-room", V_UINT,   NULL,          1, 100000,        "500",    0, IN_CONF(groupchat_max_per_room) },
	{ E_GROUPCHAT, "max-per-user", V_UINT,   NULL,          1, 1000,          "10",     0, IN_CONF(groupchat_max_per_user) },
	{ E_GROUPCHAT, "max-rooms",  V_UINT,     NULL,          1, 100000,        "200",    0, IN_CONF(groupchat_max_rooms) },
	{ E_GROUPCHAT, "join-timeout", V_DURATION, NULL,        1000, 120000,     "20s",    0, IN_CONF(groupchat_join_ms) },
	{ E_MUC,    "service",       V_DOMAIN,   NULL,          0, 0,             NULL,     1, IN_MUC },

	{ E_LIST,   "name",          V_SIPUSER,  NULL,          0, 0,             NULL,     1, IN_LIST(name) },
	{ E_MEMBER, "jid",           V_JID,      NULL,          0, 0,             NULL,     1, IN_MEMBER },
};

/* struct frame holds one bit per attribute of its element (opt_index): at most 64 each. */

static elem_fn xmpp_check, listen_start, listen_check, presence_check, peer_start, peer_check,
	trust_start, authz_check, list_start, list_check, member_start, muc_start, muc_check,
	tls_check, limits_check, audit_check, sessions_check, admin_start, admin_check, metrics_check,
	gateway_end;

static const struct elem_def elem_defs[E_COUNT] = {
	/*            name       parent     min max  start         check        end */
	[E_GATEWAY] = { "gateway", E_COUNT,   1, 1,  NULL,         NULL,        gateway_end },
	[E_LOG]     = { "log",     E_GATEWAY, 0, 1,  NULL,         NULL,        NULL },
	[E_XMPP]    = { "xmpp",    E_GATEWAY, 1, 1,  NULL,         xmpp_check,  NULL },
	[E_SIP]     = { "sip",     E_GATEWAY, 1, 1,  NULL,         NULL,        NULL },
	[E_LISTEN]  = { "listen",  E_SIP,     1, 0,  listen_start, listen_check, NULL },
	[E_IM]      = { "im",      E_GATEWAY, 0, 1,  NULL,         NULL,        NULL },
	[E_PRESENCE] = { "presence", E_GATEWAY, 0, 1, NULL,        presence_check, NULL },
	[E_SESSIONS] = { "sessions", E_GATEWAY, 0, 1, NULL,        sessions_check, NULL },
	[E_PEER]    = { "peer",    E_GATEWAY, 1, 0,  peer_start,   peer_check,  NULL },
	[E_ROUTE]   = { "route",   E_PEER,    1, 1,  NULL,         NULL,        NULL },
	[E_TRUST]   = { "trust",   E_PEER,    1, 0,  trust_start,  NULL,        NULL },
	[E_AUTHZ]   = { "authorization", E_PEER, 0, 1, NULL,       authz_check, NULL },
	[E_RLS]     = { "rls",     E_PEER,    0, 1,  NULL,         NULL,        NULL },
	[E_LIST]    = { "list",    E_PRESENCE, 0, 0, list_start,   list_check,  NULL },
	[E_MEMBER]  = { "member",  E_LIST,    1, 0,  member_start, NULL,        NULL },
	[E_GROUPCHAT] = { "groupchat", E_GATEWAY, 0, 1, NULL,      NULL,        NULL },
	[E_MUC]     = { "muc",     E_GROUPCHAT, 0, 0, muc_start,   muc_check,   NULL },
	[E_TLS]     = { "tls",     E_GATEWAY, 0, 1,  NULL,         tls_check,   NULL },
	[E_LIMITS]  = { "limits",  E_PEER,    0, 1,  NULL,         limits_check, NULL },
	[E_AUDIT]   = { "audit",   E_GATEWAY, 0, 1,  NULL,         audit_check, NULL },
	[E_ADMIN]   = { "admin",   E_GATEWAY, 0, 0,  admin_start,  admin_check, NULL },
	[E_METRICS] = { "metrics", E_GATEWAY, 0, 1,  NULL,         metrics_check, NULL },
};

/* ---- diagnostics */

static const char *elem_name(enum elem e)
{
	return e < E_COUNT ? elem_defs[e].name : "?";
}

static void say(conf_report_fn *report, void *arg, const char *file, unsigned line,
		const char *fmt, ...) GW_PRINTF(5, 6);

static void say(conf_report_fn *report, void *arg, const char *file, unsigned line,
		const char *fmt, ...)
{
	char small[512], *msg = small;
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(small, sizeof(small), fmt, ap);
	va_end(ap);
	if (n < 0)
		gw_fatal("conf: bad diagnostic format");
	if ((size_t)n >= sizeof(small)) {
		msg = gw_xmalloc((size_t)n + 1);
		va_start(ap, fmt);
		vsnprintf(msg, (size_t)n + 1, fmt, ap);
		va_end(ap);
	}
	report(arg, file, line, msg);
	if (msg != small)
		free(msg);
}

#define perr(p, line, ...) \
	do { \
		(p)->nerrors++; \
		say((p)->report, (p)->arg, (p)->name, (line), __VA_ARGS__); \
	} while (0)

/* Reports and stops the parse: what follows could only produce noise. */
#define pfatal(p, line, ...) \
	do { \
		perr((p), (line), __VA_ARGS__); \
		(p)->fatal = 1; \
		XML_StopParser((p)->xp, XML_FALSE); \
	} while (0)

/* Copies s for a diagnostic: control characters escaped, cut after SHOWN_CHARS characters.
 * Values come from the file and may hold anything a character reference can produce. */
static const char *show(char *out, size_t outlen, const char *s)
{
	size_t o = 0, i;

	for (i = 0; s[i] && i < SHOWN_CHARS && o + 5 < outlen; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c < 0x20 || c == 0x7f)
			o += (size_t)snprintf(out + o, outlen - o, "\\x%02x", c);
		else
			out[o++] = (char)c;
	}
	if (s[i] && o + 4 < outlen) {
		memcpy(out + o, "...", 3);
		o += 3;
	}
	out[o] = '\0';
	return out;
}

static unsigned cur_line(const struct parser *p)
{
	return (unsigned)XML_GetCurrentLineNumber(p->xp);
}

/* ---- values */

static int is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* Bounds as the file would write them, so "out of range 100ms..10m" reads like the file. */
static void fmt_amount(char *out, size_t len, enum vtype type, unsigned long long v)
{
	if (type == V_SECONDS && v % 1000 == 0)
		snprintf(out, len, "%llus", v / 1000);	/* the docs write these in seconds */
	else if (type == V_SECONDS)
		snprintf(out, len, "%llums", v);
	else if (type == V_DURATION && v && v % 60000 == 0)
		snprintf(out, len, "%llum", v / 60000);
	else if (type == V_DURATION && v && v % 1000 == 0)
		snprintf(out, len, "%llus", v / 1000);
	else if (type == V_DURATION)
		snprintf(out, len, "%llums", v);
	else if (type == V_SIZE && v && v % MIB == 0)
		snprintf(out, len, "%lluM", v / MIB);
	else if (type == V_SIZE && v && v % 1024 == 0)
		snprintf(out, len, "%lluk", v / 1024);
	else
		snprintf(out, len, "%llu", v);
}

static int parse_keyword(const struct opt *o, const char *s, const char *shown, union value *v,
			 char *err, size_t errlen)
{
	size_t n;

	for (const struct keyword *k = o->kw; k->name; k++) {
		if (gw_strcaseeq(s, k->name)) {
			v->n = (unsigned long long)k->value;
			return 0;
		}
	}
	n = (size_t)snprintf(err, errlen, "\"%s\" is not one of ", shown);
	for (const struct keyword *k = o->kw; k->name && n < errlen; k++)
		n += (size_t)snprintf(err + n, errlen - n, "%s%s", k == o->kw ? "" : ", ", k->name);
	return -1;
}

/* "pager presence" or "all": words of o->kw separated by spaces, at least one, none twice. */
static int parse_words(const struct opt *o, const char *s, const char *shown, union value *v,
		       char *err, size_t errlen)
{
	unsigned bits = 0;
	size_t n;

	while (*s) {
		const struct keyword *k;
		size_t len;

		while (*s == ' ' || *s == '\t')
			s++;
		len = strcspn(s, " \t");
		if (!len)
			break;
		for (k = o->kw; k->name; k++)
			if (strlen(k->name) == len && strncasecmp(s, k->name, len) == 0)
				break;
		if (!k->name)
			goto bad;
		if (bits & (unsigned)k->value) {
			snprintf(err, errlen, "\"%s\" names \"%.*s\" twice", shown, (int)len, s);
			return -1;
		}
		bits |= (unsigned)k->value;
		s += len;
	}
	if (!bits)
		goto bad;
	v->n = bits;
	return 0;
bad:
	n = (size_t)snprintf(err, errlen, "\"%s\" is not a list of ", shown);
	for (const struct keyword *k = o->kw; k->name && n < errlen; k++)
		n += (size_t)snprintf(err + n, errlen - n, "%s%s", k == o->kw ? "" : ", ", k->name);
	return -1;
}

static int parse_number(const struct opt *o, const char *s, const char *shown, union value *v,
			char *err, size_t errlen)
{
	unsigned long long n = 0, mult = 1;
	const char *p = s;
	char lo[32], hi[32];
	int overflow = 0;

	if (!is_digit(*p))
		goto syntax;
	for (; is_digit(*p); p++) {
		unsigned d = (unsigned)(*p - '0');

		if (n > (ULLONG_MAX - d) / 10)
			overflow = 1;
		else
			n = n * 10 + d;
	}
	switch (o->type) {
	case V_SIZE:
		if (*p == 'k' || *p == 'K')
			mult = 1024, p++;
		else if (*p == 'm' || *p == 'M')
			mult = MIB, p++;
		if (*p)
			goto syntax;
		break;
	case V_DURATION:
	case V_SECONDS:
		if (!*p) {
			snprintf(err, errlen, "\"%s\" has no unit (write %sms, %ss or %sm)", shown,
				 shown, shown, shown);
			return -1;
		}
		if (strcmp(p, "ms") == 0)
			mult = 1;
		else if (strcmp(p, "s") == 0)
			mult = 1000;
		else if (strcmp(p, "m") == 0)
			mult = 60000;
		else
			goto syntax;
		break;
	default:
		if (*p)
			goto syntax;
		break;
	}
	if (n > ULLONG_MAX / mult)
		overflow = 1;
	n *= mult;
	if (!overflow && o->type == V_SECONDS && n % 1000) {
		snprintf(err, errlen, "\"%s\" is not a whole number of seconds", shown);
		return -1;
	}
	if (overflow || n < o->min || n > o->max) {
		fmt_amount(lo, sizeof(lo), o->type, o->min);
		fmt_amount(hi, sizeof(hi), o->type, o->max);
		snprintf(err, errlen, "%s is out of range %s..%s", shown, lo, hi);
		return -1;
	}
	v->n = n;
	return 0;

syntax:
	if (o->type == V_SIZE)
		snprintf(err, errlen, "\"%s\" is not a size (bytes, or k or M: 65536, 64k, 1M)",
			 shown);
	else if (o->type == V_DURATION || o->type == V_SECONDS)
		snprintf(err, errlen, "\"%s\" is not a duration (a number and ms, s or m: 500ms, "
			 "2s, 1m)", shown);
	else
		snprintf(err, errlen, "\"%s\" is not a decimal number", shown);
	return -1;
}

/* Lower-cases s in place; returns NULL if it is a hostname or an IP literal, else the reason. */
static const char *domain_problem(char *s)
{
	size_t len = strlen(s), label = 0;
	int numeric = 1;	/* the current label is all digits */

	if (!len)
		return "it is empty";
	if (s[0] == '[') {
		struct in6_addr a6;
		char inner[INET6_ADDRSTRLEN];

		if (s[len - 1] != ']' || len - 2 >= sizeof(inner))
			return "not an IPv6 literal";
		memcpy(inner, s + 1, len - 2);
		inner[len - 2] = '\0';
		if (inet_pton(AF_INET6, inner, &a6) != 1)
			return "not an IPv6 literal";
		for (char *c = s; *c; c++)
			if (*c >= 'A' && *c <= 'Z')
				*c = (char)(*c - 'A' + 'a');
		return NULL;
	}
	if (len > 253)
		return "longer than 253 characters";
	for (char *c = s;; c++) {
		if (*c == '.' || !*c) {
			if (!label)
				return "empty label";
			if (c[-1] == '-')
				return "a label ends with '-'";
			if (!*c)
				break;
			label = 0;
			numeric = 1;
			continue;
		}
		if (*c >= 'A' && *c <= 'Z')
			*c = (char)(*c - 'A' + 'a');
		if (!(*c >= 'a' && *c <= 'z') && !is_digit(*c) && *c != '-')
			return "only letters, digits, '-' and '.' are allowed (use A-labels for IDNs)";
		if (*c == '-' && !label)
			return "a label starts with '-'";
		if (!is_digit(*c))
			numeric = 0;
		if (++label > 63)
			return "a label is longer than 63 characters";
	}
	if (numeric) {
		struct in_addr a4;

		/* a top-level label is never all digits: this must be a dotted IPv4 address */
		if (inet_pton(AF_INET, s, &a4) != 1)
			return "all-numeric top label, but not an IPv4 address";
	}
	return NULL;
}

/* Parses a numeric address; returns its family, or 0. */
static int parse_inet(const char *s, unsigned char bytes[16])
{
	if (inet_pton(AF_INET, s, bytes) == 1)
		return AF_INET;
	if (inet_pton(AF_INET6, s, bytes) == 1)
		return AF_INET6;
	return 0;
}

static int parse_address(const struct opt *o, const char *s, const char *shown, union value *v,
			 char *err, size_t errlen)
{
	unsigned char b[16];
	int af = parse_inet(s, b);
	static const unsigned char zero[16];

	if (!af) {
		snprintf(err, errlen, "\"%s\" is not a numeric IPv4 or IPv6 address (names are not "
			 "resolved)", shown);
		return -1;
	}
	if (o->type == V_ADDRESS && memcmp(b, zero, af == AF_INET ? 4 : 16) == 0) {
		snprintf(err, errlen, "\"%s\" is the unspecified address, not one to send to", shown);
		return -1;
	}
	v->s = gw_xstrdup(s);
	return 0;
}

/* ::ffff:0:0/96 */
static const unsigned char v4mapped_prefix[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

static int parse_trust(const char *s, const char *shown, union value *v, char *err, size_t errlen)
{
	char host[INET6_ADDRSTRLEN + 1], net[INET6_ADDRSTRLEN];
	const char *slash = strchr(s, '/');
	size_t hlen = slash ? (size_t)(slash - s) : strlen(s);
	unsigned char b[16], masked[16];
	unsigned prefix, max, i;
	int af;

	if (hlen >= sizeof(host))
		goto syntax;
	memcpy(host, s, hlen);
	host[hlen] = '\0';
	af = parse_inet(host, b);
	if (!af)
		goto syntax;
	max = af == AF_INET ? 32 : 128;
	prefix = max;
	if (slash) {
		const char *p = slash + 1;

		if (!is_digit(*p) || strlen(p) > 3)
			goto syntax;
		for (prefix = 0; is_digit(*p); p++)
			prefix = prefix * 10 + (unsigned)(*p - '0');
		if (*p)
			goto syntax;
		if (prefix > max) {
			snprintf(err, errlen, "\"%s\": prefix length %u is out of range 0..%u", shown,
				 prefix, max);
			return -1;
		}
	}
	if (af == AF_INET6 && memcmp(b, v4mapped_prefix, sizeof(v4mapped_prefix)) == 0) {
		/* sources are compared as IPv4 when v4-mapped: such an entry could never match */
		snprintf(err, errlen, "\"%s\": write IPv4-mapped networks as IPv4", shown);
		return -1;
	}
	for (i = 0; i < max / 8; i++) {
		unsigned keep = prefix >= (i + 1) * 8 ? 8 : prefix > i * 8 ? prefix - i * 8 : 0;

		masked[i] = (unsigned char)(b[i] & (0xff00u >> keep));
	}
	if (memcmp(masked, b, max / 8) != 0) {
		/* 10.1.2.3/16 is more likely a typo than a wish to trust 10.1.0.0/16: say so */
		inet_ntop(af, masked, net, sizeof(net));
		snprintf(err, errlen, "\"%s\" has host bits set (did you mean %s/%u?)", shown, net,
			 prefix);
		return -1;
	}
	memset(&v->t, 0, sizeof(v->t));
	if (af == AF_INET) {
		struct sockaddr_in *sin = (struct sockaddr_in *)&v->t.addr;

		sin->sin_family = AF_INET;
		memcpy(&sin->sin_addr, b, 4);
	} else {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&v->t.addr;

		sin6->sin6_family = AF_INET6;
		memcpy(&sin6->sin6_addr, b, 16);
	}
	v->t.prefix = prefix;
	v->t.text = gw_xstrdup(s);
	return 0;

syntax:
	snprintf(err, errlen, "\"%s\" is not a numeric address or address/prefix (10.1.0.0/16, "
		 "2001:db8::/32)", shown);
	return -1;
}

static int is_hex(char c)
{
	return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* RFC 3261 25.1: user = 1*( unreserved / escaped / user-unreserved ). */
static int is_sip_user(const char *s)
{
	for (; *s; s++) {
		if ((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || is_digit(*s) ||
		    strchr("-_.!~*'()&=+$,;?/", *s))
			continue;
		if (*s == '%' && is_hex(s[1]) && is_hex(s[2])) {
			s += 2;
			continue;
		}
		return 0;
	}
	return 1;
}

/* Parses s as o's type into v (which then owns any allocation); on error fills err. */
static int value_parse(const struct opt *o, const char *s, union value *v, char *err,
		       size_t errlen)
{
	char shown[SHOWN_SIZE];
	const char *why;
	size_t len = strlen(s);

	show(shown, sizeof(shown), s);
	switch (o->type) {
	case V_KEYWORD:
		return parse_keyword(o, s, shown, v, err, errlen);
	case V_UINT:
	case V_DURATION:
	case V_SECONDS:
	case V_SIZE:
		return parse_number(o, s, shown, v, err, errlen);
	case V_DOMAIN:
		v->s = gw_xstrdup(s);
		why = domain_problem(v->s);
		if (why) {
			snprintf(err, errlen, "\"%s\" is not a valid domain name: %s", shown, why);
			free(v->s);
			return -1;
		}
		return 0;
	case V_ADDRESS:
	case V_BIND:
		return parse_address(o, s, shown, v, err, errlen);
	case V_NAME:
		for (size_t i = 0; i < len; i++)
			if (s[i] <= ' ' || s[i] > '~')
				len = 0;
		if (len < 1 || len > CONF_MAX_NAME) {
			snprintf(err, errlen, "\"%s\" is not 1..%d printable ASCII characters without "
				 "spaces", shown, CONF_MAX_NAME);
			return -1;
		}
		v->s = gw_xstrdup(s);
		return 0;
	case V_SIPUSER:
		if (len < 1 || len > CONF_MAX_SIPUSER || !is_sip_user(s)) {
			snprintf(err, errlen, "\"%s\" is not a SIP user part of 1..%d characters "
				 "(letters, digits, -_.!~*'()&=+$,;?/ and %%XX escapes)", shown,
				 CONF_MAX_SIPUSER);
			return -1;
		}
		v->s = gw_xstrdup(s);
		return 0;
	case V_SECRET:
		/* never shown: the value is a secret */
		if (len < 1 || len > CONF_MAX_SECRET) {
			snprintf(err, errlen, "the secret must be 1..%d bytes", CONF_MAX_SECRET);
			return -1;
		}
		v->s = gw_xstrdup(s);
		return 0;
	case V_PATH:
		if (len < 1 || len >= PATH_MAX) {
			snprintf(err, errlen, "\"%s\" is not a usable path", shown);
			return -1;
		}
		v->s = gw_xstrdup(s);
		return 0;
	case V_JID: {
		const char *at = strchr(s, '@');

		if (!at || at == s || !at[1] || len > 3071 || strchr(at + 1, '@') ||
		    strpbrk(s, "/\"'<>&: \t\r\n")) {
			snprintf(err, errlen, "\"%s\" is not a bare JID (local@domain)", shown);
			return -1;
		}
		for (const char *c = s; *c; c++) {
			if (*c >= 'A' && *c <= 'Z') {
				snprintf(err, errlen, "\"%s\": write the JID in lower case, as the "
					 "XMPP server does", shown);
				return -1;
			}
		}
		v->s = gw_xstrdup(s);
		return 0;
	}
	case V_URL:
		if (xcap_url_check(s, err, errlen) != 0)
			return -1;
		v->s = gw_xstrdup(s);
		return 0;
	case V_TRUST:
		return parse_trust(s, shown, v, err, errlen);
	case V_SERVICES:
		return parse_words(o, s, shown, v, err, errlen);
	}
	gw_fatal("conf: value type %d", (int)o->type);
}

static void free_secret(char *s)
{
	if (s) {
		explicit_bzero(s, strlen(s));
		free(s);
	}
}

static void value_store(const struct opt *o, void *base, union value *v)
{
	char *at = (char *)base + o->off;

	switch (o->type) {
	case V_KEYWORD:
		*(int *)(void *)at = (int)v->n;
		break;
	case V_UINT:
	case V_DURATION:
	case V_SERVICES:
		*(unsigned *)(void *)at = (unsigned)v->n;
		break;
	case V_SECONDS:
		*(unsigned *)(void *)at = (unsigned)(v->n / 1000);
		break;
	case V_SIZE:
		*(size_t *)(void *)at = (size_t)v->n;
		break;
	case V_TRUST: {
		struct conf_trust *t = (struct conf_trust *)(void *)at;

		free(t->text);
		*t = v->t;
		break;
	}
	default: {
		char **sp = (char **)(void *)at;

		free_secret(*sp);	/* any string: zeroing a non-secret costs nothing */
		*sp = v->s;
		break;
	}
	}
}

/* ---- where values go */

static struct conf_peer *cur_peer(struct parser *p)
{
	return p->conf->peers[p->conf->npeers - 1];
}

static void *opt_base(struct parser *p, const struct opt *o)
{
	struct conf_peer *pe;

	switch (o->target) {
	case TGT_CONF:
		return p->conf;
	case TGT_PARSER:
		return p;
	case TGT_PEER:
		return cur_peer(p);
	case TGT_LISTEN:
		return &p->conf->listen[p->conf->nlisten - 1];
	case TGT_TRUST:
		pe = cur_peer(p);
		return &pe->trust[pe->ntrust - 1];
	case TGT_LIST:
		return &p->conf->lists[p->conf->nlists - 1];
	case TGT_MEMBER: {
		struct conf_list *l = &p->conf->lists[p->conf->nlists - 1];

		return &l->members[l->nmembers - 1];
	}
	case TGT_MUC:
		return &p->conf->muc_services[p->conf->nmuc_services - 1];
	case TGT_ADMIN:
		return &p->conf->admins[p->conf->nadmins - 1];
	}
	gw_fatal("conf: target %d", (int)o->target);
}

static void apply_defaults(struct parser *p, enum target target, void *base)
{
	char err[ERR_SIZE];
	union value v;

	for (size_t i = 0; i < sizeof(opts) / sizeof(opts[0]); i++) {
		const struct opt *o = &opts[i];

		if (o->target != target || !o->def)
			continue;
		if (value_parse(o, o->def, &v, err, sizeof(err)) < 0)
			gw_fatal("conf: default of <%s %s>: %s", elem_name(o->elem), o->name,
				 err);
		value_store(o, base, &v);
	}
}

/* Makes room for one more element in an array holding n: capacity doubles at powers of two. */
static void *grow(void *arr, size_t n, size_t size)
{
	if (n == 0 || (n & (n - 1)) == 0)
		arr = gw_xrealloc(arr, (n ? 2 * n : 1) * size);
	memset((char *)arr + n * size, 0, size);
	return arr;
}

static const struct opt *opt_lookup(enum elem e, const char *name)
{
	for (size_t i = 0; i < sizeof(opts) / sizeof(opts[0]); i++)
		if (opts[i].elem == e && strcmp(opts[i].name, name) == 0)
			return &opts[i];
	return NULL;
}

/* The bit of o in its element's frame: its place among the attributes of that element. */
static uint64_t opt_frame_bit(const struct opt *o)
{
	unsigned n = 0;

	for (const struct opt *q = opts; q < o; q++)
		n += q->elem == o->elem;
	if (n >= 64)
		gw_fatal("conf: <%s> has more than 64 attributes", elem_name(o->elem));
	return 1ULL << n;
}

static uint64_t opt_bit(enum elem e, const char *name)
{
	const struct opt *o = opt_lookup(e, name);

	if (!o)
		gw_fatal("conf: no option <%s %s>", elem_name(e), name);
	return opt_frame_bit(o);
}

static int given(const struct frame *f, const char *name)
{
	return (f->given & opt_bit(f->elem, name)) != 0;
}

/* Present and accepted. */
static int good(const struct frame *f, const char *name)
{
	uint64_t bit = opt_bit(f->elem, name);

	return (f->given & bit) && !(f->bad & bit);
}

/* Refused, so any check involving it would only echo the first diagnostic. */
static int refused(const struct frame *f, const char *name)
{
	return (f->bad & opt_bit(f->elem, name)) != 0;
}

/* ---- element hooks */

/* A path from the file: a relative one is relative to the file's directory (a new string). */
static char *resolve_path(const struct parser *p, const char *path)
{
	const char *slash = path[0] == '/' ? NULL : strrchr(p->name, '/');

	if (slash)
		return gw_xasprintf("%.*s/%s", (int)(slash - p->name), p->name, path);
	return gw_xstrdup(path);
}

/* The secret is the file's first line, without its line end ("\n" or "\r\n"). */
static void secret_load(struct parser *p, struct frame *f)
{
	char buf[CONF_MAX_SECRET + 3];
	char *path = resolve_path(p, p->secret_file), *eol;
	size_t n = 0, len;
	struct stat st;
	ssize_t r;
	int fd;

	/* O_NONBLOCK: a FIFO must not hang the parse; it is refused below as not a regular file */
	fd = open(path, O_RDONLY | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0) {
		perr(p, f->line, "<xmpp> attribute \"secret-file\": cannot open %s: %s", path,
		     strerror(errno));
		goto fail;
	}
	if (fstat(fd, &st) < 0) {
		perr(p, f->line, "<xmpp> attribute \"secret-file\": cannot stat %s: %s", path,
		     strerror(errno));
		goto fail;
	}
	if (!S_ISREG(st.st_mode)) {
		perr(p, f->line, "<xmpp> attribute \"secret-file\": %s is not a regular file", path);
		goto fail;
	}
	if (p->check_perms && (st.st_mode & S_IWOTH)) {
		perr(p, f->line, "<xmpp> attribute \"secret-file\": %s is writable by every user; "
		     "chmod 600 it", path);
		goto fail;
	}
	if (p->check_perms && (st.st_mode & (S_IRGRP | S_IROTH))) {
		perr(p, f->line, "<xmpp> attribute \"secret-file\": %s is readable by others; "
		     "chmod 600 it", path);
		goto fail;
	}
	while (n < sizeof(buf)) {
		r = read(fd, buf + n, sizeof(buf) - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			perr(p, f->line, "<xmpp> attribute \"secret-file\": cannot read %s: %s", path,
			     strerror(errno));
			goto fail;
		}
		if (r == 0)
			break;
		n += (size_t)r;
	}
	eol = memchr(buf, '\n', n);
	len = eol ? (size_t)(eol - buf) : n;
	if (len && buf[len - 1] == '\r')
		len--;
	if (len > CONF_MAX_SECRET) {
		perr(p, f->line, "<xmpp> attribute \"secret-file\": the first line of %s is longer "
		     "than %d bytes", path, CONF_MAX_SECRET);
		goto fail;
	}
	if (len == 0) {
		perr(p, f->line, "<xmpp> attribute \"secret-file\": the secret (first line of %s) is "
		     "empty", path);
		goto fail;
	}
	if (memchr(buf, '\0', len)) {
		perr(p, f->line, "<xmpp> attribute \"secret-file\": the first line of %s holds a NUL "
		     "byte", path);
		goto fail;
	}
	p->conf->secret = gw_xstrndup(buf, len);

fail:
	explicit_bzero(buf, sizeof(buf));
	if (fd >= 0)
		close(fd);
	free(path);
}

struct tls_say {
	struct parser *p;
	unsigned line;
	const char *elem;
};

static void tls_say(void *arg, const char *msg)
{
	struct tls_say *t = arg;

	perr(t->p, t->line, "<%s>: %s", t->elem, msg);
}

static void xmpp_check(struct parser *p, struct frame *f)
{
	struct conf *c = p->conf;
	char lo[32], hi[32];

	if (given(f, "secret"))
		p->secret_line = f->line;
	if (given(f, "secret") && given(f, "secret-file"))
		perr(p, f->line, "<xmpp>: give \"secret\" or \"secret-file\", not both");
	else if (!given(f, "secret") && !given(f, "secret-file"))
		perr(p, f->line, "<xmpp>: missing required attribute \"secret-file\" (or \"secret\")");
	else if (good(f, "secret-file"))
		secret_load(p, f);

	if (good(f, "ca")) {
		char *r = resolve_path(p, c->xmpp_ca);
		struct tls_say t = { p, f->line, "xmpp" };

		free(c->xmpp_ca);
		c->xmpp_ca = r;
		tls_check_ca_file(c->xmpp_ca, tls_say, &t);
		if (c->xmpp_tls == CONF_XMPP_TLS_NO && !refused(f, "tls"))
			perr(p, f->line, "<xmpp>: \"ca\" is for tls=\"direct\"");
	}
	if (!refused(f, "reconnect-min") && !refused(f, "reconnect-max") &&
	    c->reconnect_max_ms < c->reconnect_min_ms) {
		fmt_amount(lo, sizeof(lo), V_DURATION, c->reconnect_min_ms);
		fmt_amount(hi, sizeof(hi), V_DURATION, c->reconnect_max_ms);
		perr(p, f->line, "<xmpp>: reconnect-max (%s) is less than reconnect-min (%s)", hi,
		     lo);
	}
}

/* <sessions>: the two MSRP ports differ; relay="" is an MSRP URI (RFC 4975 9) with a numeric
 * host (nothing is looked up) and a port, transport tcp, no session-id (RFC 4976 5.1: the
 * relay's own URI, which AUTH is sent to). */
static void sessions_check(struct parser *p, struct frame *f)
{
	struct conf *c = p->conf;
	struct msrp_uri u;
	struct in6_addr a6;
	struct in_addr a4;
	char host[sizeof(u.host)];

	c->sessions_line = f->line;
	if (c->msrp_port == c->msrps_port)
		perr(p, f->line, "<sessions>: msrp-port and msrps-port are both %u", c->msrp_port);
	if (!c->msrp_relay)
		return;
	if (msrp_uri_parse(c->msrp_relay, strlen(c->msrp_relay), &u) != 0 || !u.port ||
	    u.session[0] || strcasecmp(u.transport, "tcp") != 0) {
		perr(p, f->line, "<sessions>: relay \"%s\" is not an MSRP relay URI like "
		     "msrps://192.0.2.7:2855;tcp (msrp: or msrps:, a port, transport tcp, no "
		     "session-id)", c->msrp_relay);
		return;
	}
	snprintf(host, sizeof(host), "%.*s", u.host[0] == '[' ? (int)strlen(u.host) - 2 :
		 (int)strlen(u.host), u.host + (u.host[0] == '['));
	if (inet_pton(AF_INET, host, &a4) != 1 && inet_pton(AF_INET6, host, &a6) != 1)
		perr(p, f->line, "<sessions>: relay \"%s\": the host must be a numeric address "
		     "(nothing is looked up)", c->msrp_relay);
}

/* <tls>: the paths resolved against the file's directory, then every file checked. */
static void tls_check(struct parser *p, struct frame *f)
{
	struct conf *c = p->conf;
	struct tls_say t = { p, f->line, "tls" };
	char **paths[] = { &c->tls_cert, &c->tls_key, &c->tls_ca };

	c->tls_line = f->line;
	for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
		char *r;

		if (!*paths[i])
			return;		/* refused or missing, already reported */
		r = resolve_path(p, *paths[i]);
		free(*paths[i]);
		*paths[i] = r;
	}
	tls_check_files(c->tls_cert, c->tls_key, c->tls_ca, p->check_perms, tls_say, &t);
}

static void limits_check(struct parser *p, struct frame *f)
{
	struct conf_peer *pe = cur_peer(p);

	if (!given(f, "burst"))
		pe->burst = pe->rate ? pe->rate : 1;
	if (good(f, "burst") && !refused(f, "rate") && pe->rate == 0)
		perr(p, f->line, "<limits>: \"burst\" without a \"rate\" limits nothing");
}

static void audit_check(struct parser *p, struct frame *f)
{
	struct conf *c = p->conf;

	if (good(f, "file") && c->audit_syslog)
		perr(p, f->line, "<audit>: give \"file\" or syslog=\"yes\", not both");
	else if (!given(f, "file") && !c->audit_syslog && !refused(f, "syslog"))
		perr(p, f->line, "<audit>: missing attribute \"file\" (or syslog=\"yes\")");
	if (good(f, "file")) {
		char *r = resolve_path(p, c->audit_file);

		free(c->audit_file);
		c->audit_file = r;
	}
}

static void presence_check(struct parser *p, struct frame *f)
{
	struct conf *c = p->conf;
	char lo[32], hi[32];

	if (good(f, "database") && strcmp(c->presence_db, ":memory:") == 0) {
		/* next to a gateway file in a directory this names a file, next to one without it
		 * would be SQLite's in-memory database: refuse the ambiguity */
		perr(p, f->line, "<presence> attribute \"database\": \":memory:\" is not special "
		     "here; leave \"database\" out to keep presence state in memory");
	} else if (good(f, "database")) {
		char *path = resolve_path(p, c->presence_db);

		free(c->presence_db);
		c->presence_db = path;
	}
	if (!refused(f, "min-expires") && !refused(f, "max-expires") &&
	    c->presence_max_expires_s < c->presence_min_expires_s) {
		fmt_amount(lo, sizeof(lo), V_SECONDS, c->presence_min_expires_s * 1000ULL);
		fmt_amount(hi, sizeof(hi), V_SECONDS, c->presence_max_expires_s * 1000ULL);
		perr(p, f->line, "<presence>: max-expires (%s) is less than min-expires (%s)", hi,
		     lo);
	}
}

static void listen_start(struct parser *p, struct frame *f)
{
	struct conf *c = p->conf;

	c->listen = grow(c->listen, c->nlisten, sizeof(*c->listen));
	c->listen[c->nlisten++].line = f->line;
	apply_defaults(p, TGT_LISTEN, &c->listen[c->nlisten - 1]);
}

static void listen_check(struct parser *p, struct frame *f)
{
	struct conf *c = p->conf;
	struct conf_listen *l = &c->listen[c->nlisten - 1];
	unsigned char a[16], b[16];
	int af;

	if (!l->address || refused(f, "transport") || refused(f, "port"))
		return;
	af = parse_inet(l->address, a);
	for (size_t i = 0; i + 1 < c->nlisten; i++) {
		const struct conf_listen *o = &c->listen[i];

		if (o->address && o->transport == l->transport && o->port == l->port &&
		    parse_inet(o->address, b) == af && memcmp(a, b, af == AF_INET ? 4 : 16) == 0) {
			perr(p, f->line, "<listen>: %s %s port %u is already declared at line %u",
			     conf_transport_name(l->transport), l->address, l->port, o->line);
			return;
		}
	}
}

static void peer_start(struct parser *p, struct frame *f)
{
	struct conf *c = p->conf;

	c->peers = grow(c->peers, c->npeers, sizeof(*c->peers));
	c->peers[c->npeers] = gw_xcalloc(1, sizeof(**c->peers));
	c->peers[c->npeers]->index = c->npeers;
	c->peers[c->npeers++]->line = f->line;
	apply_defaults(p, TGT_PEER, cur_peer(p));
}

static void peer_check(struct parser *p, struct frame *f)
{
	struct conf *c = p->conf;
	struct conf_peer *pe = cur_peer(p);

	if (!pe->domain)
		return;		/* refused or missing, already reported */
	if (!given(f, "name"))
		pe->name = gw_xstrdup(pe->domain);
	if (pe->addressing == CONF_ADDR_ESCAPED && !given(f, "component"))
		perr(p, f->line, "<peer>: \"escaped\" addressing requires attribute \"component\"");
	if (pe->addressing == CONF_ADDR_DOMAIN && pe->component &&
	    strcmp(pe->component, pe->domain) != 0)
		perr(p, f->line, "<peer>: component \"%s\" differs from domain \"%s\": with "
		     "\"domain\" addressing they are the same (leave component out)", pe->component,
		     pe->domain);
	if (pe->addressing == CONF_ADDR_DOMAIN && !given(f, "component") && !refused(f, "addressing"))
		pe->component = gw_xstrdup(pe->domain);
	for (size_t i = 0; i + 1 < c->npeers; i++) {
		if (c->peers[i]->domain && strcmp(c->peers[i]->domain, pe->domain) == 0) {
			perr(p, f->line, "<peer>: domain \"%s\" is already the domain of the peer at "
			     "line %u", pe->domain, c->peers[i]->line);
			break;
		}
	}
}

static void trust_start(struct parser *p, struct frame *f)
{
	struct conf_peer *pe = cur_peer(p);

	pe->trust = grow(pe->trust, pe->ntrust, sizeof(*pe->trust));
	pe->ntrust++;
}

static void authz_check(struct parser *p, struct frame *f)
{
	struct conf_peer *pe = cur_peer(p);

	if (pe->authz != CONF_AUTHZ_WATCHER && !given(f, "xcap-root") && !refused(f, "mode") &&
	    !refused(f, "xcap-root"))
		perr(p, f->line, "<authorization>: mode \"%s\" needs attribute \"xcap-root\" (the peer's "
		     "XCAP server, where its users' presence rules are)",
		     pe->authz == CONF_AUTHZ_POLICY ? "policy" : "views");
}

static void list_start(struct parser *p, struct frame *f)
{
	struct conf *c = p->conf;

	c->lists = grow(c->lists, c->nlists, sizeof(*c->lists));
	c->lists[c->nlists++].line = f->line;
}

static void list_check(struct parser *p, struct frame *f)
{
	struct conf *c = p->conf;
	struct conf_list *l = &c->lists[c->nlists - 1];

	if (!l->name)
		return;
	for (const char *s = l->name; *s; s++) {
		if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || strchr("-._", *s))) {
			perr(p, f->line, "<list> attribute \"name\": \"%s\": a list name is lower-case "
			     "letters, digits, '-', '.' and '_' (it is the user part of the list's URI and "
			     "of a JID)", l->name);
			return;
		}
	}
	for (size_t i = 0; i + 1 < c->nlists; i++) {
		if (c->lists[i].name && strcmp(c->lists[i].name, l->name) == 0) {
			perr(p, f->line, "<list>: name \"%s\" is already the name of the list at "
			     "line %u", l->name, c->lists[i].line);
			return;
		}
	}
}

static void member_start(struct parser *p, struct frame *f)
{
	struct conf_list *l = &p->conf->lists[p->conf->nlists - 1];

	l->members = grow(l->members, l->nmembers, sizeof(*l->members));
	l->nmembers++;
}

static void muc_start(struct parser *p, struct frame *f)
{
	struct conf *c = p->conf;

	c->muc_services = grow(c->muc_services, c->nmuc_services, sizeof(*c->muc_services));
	c->nmuc_services++;
}

static void muc_check(struct parser *p, struct frame *f)
{
	struct conf *c = p->conf;
	const char *s = c->muc_services[c->nmuc_services - 1];

	for (size_t i = 0; s && i + 1 < c->nmuc_services; i++)
		if (c->muc_services[i] && strcmp(c->muc_services[i], s) == 0) {
			perr(p, f->line, "<muc>: service \"%s\" is listed twice", s);
			return;
		}
}

static void admin_start(struct parser *p, struct frame *f)
{
	struct conf *c = p->conf;

	c->admins = grow(c->admins, c->nadmins, sizeof(*c->admins));
	c->nadmins++;
}

static void admin_check(struct parser *p, struct frame *f)
{
	struct conf *c = p->conf;
	const char *s = c->admins[c->nadmins - 1];

	for (size_t i = 0; s && i + 1 < c->nadmins; i++)
		if (c->admins[i] && strcmp(c->admins[i], s) == 0) {
			perr(p, f->line, "<admin>: \"%s\" is listed twice", s);
			return;
		}
}

static void metrics_check(struct parser *p, struct frame *f)
{
	p->conf->metrics_line = f->line;
}

/* Checks between elements, once the whole document is known (<xmpp> may follow the peers). */
static void gateway_end(struct parser *p, struct frame *f)
{
	struct conf *c = p->conf;
	const char *xd = c->xmpp_domain;

	for (size_t i = 0; i < c->npeers; i++) {
		const struct conf_peer *pe = c->peers[i];

		if (xd && pe->domain && strcmp(pe->domain, xd) == 0)
			perr(p, pe->line, "<peer>: domain \"%s\" is the XMPP domain of <xmpp>", xd);
		if (pe->addressing != CONF_ADDR_ESCAPED || !pe->component)
			continue;
		if (xd && strcmp(pe->component, xd) == 0)
			perr(p, pe->line, "<peer>: component \"%s\" is the XMPP domain of <xmpp>", xd);
		for (size_t j = 0; j < c->npeers; j++) {
			const struct conf_peer *q = c->peers[j];

			if (q->addressing == CONF_ADDR_DOMAIN && q->domain &&
			    strcmp(q->domain, pe->component) == 0) {
				perr(p, pe->line, "<peer>: component \"%s\" is the domain of the peer "
				     "at line %u", pe->component, q->line);
				break;
			}
		}
	}
	if (c->msrp_relay && strncasecmp(c->msrp_relay, "msrps:", 6) == 0 && !c->tls_cert)
		perr(p, c->sessions_line, "<sessions relay=\"%s\">: an msrps: relay needs <tls> (the "
		     "gateway's certificate, key and CA file)", c->msrp_relay);
	for (size_t i = 0; i < c->nlisten; i++)
		if (c->listen[i].transport == CONF_TRANSPORT_TLS && !c->tls_line)
			perr(p, c->listen[i].line, "<listen transport=\"tls\">: needs <tls> (the "
			     "gateway's certificate, key and CA file)");
	for (size_t i = 0; i < c->npeers; i++) {
		const struct conf_peer *pe = c->peers[i];
		int tls_listen = 0;

		for (size_t j = 0; j < c->nlisten; j++)
			tls_listen |= c->listen[j].transport == CONF_TRANSPORT_TLS;
		if (pe->route_transport == CONF_TRANSPORT_TLS && !c->tls_line)
			perr(p, pe->line, "<peer> \"%s\": <route transport=\"tls\"> needs <tls> (the "
			     "gateway's certificate, key and CA file)", pe->name ? pe->name : "");
		if (pe->tls != CONF_PEER_TLS_REQUIRED)
			continue;
		if (pe->route_address && pe->route_transport != CONF_TRANSPORT_TLS)
			perr(p, pe->line, "<peer> \"%s\": tls=\"required\" needs <route "
			     "transport=\"tls\">", pe->name ? pe->name : "");
		if (!tls_listen)
			perr(p, pe->line, "<peer> \"%s\": tls=\"required\" needs a <listen "
			     "transport=\"tls\"> for its requests", pe->name ? pe->name : "");
	}
	for (size_t i = 0; i < c->nmuc_services; i++) {
		const char *m = c->muc_services[i];

		if (m && xd && strcmp(m, xd) == 0)
			perr(p, 0, "<muc>: service \"%s\" is the XMPP domain of <xmpp> (a MUC service is "
			     "a domain of its own, e.g. conference.%s)", m, xd);
		for (size_t j = 0; m && j < c->npeers; j++) {
			const struct conf_peer *pe = c->peers[j];

			if ((pe->domain && strcmp(pe->domain, m) == 0) ||
			    (pe->component && strcmp(pe->component, m) == 0))
				perr(p, pe->line, "<muc>: service \"%s\" is the domain or component of "
				     "this peer", m);
		}
	}
	for (size_t i = 0; i < c->npeers; i++) {
		const struct conf_peer *pe = c->peers[i];

		if (pe->rls_xcap_root && pe->authz != CONF_AUTHZ_WATCHER)
			perr(p, pe->line, "<peer> \"%s\": <rls> (list subscriptions) goes with the "
			     "default <authorization mode=\"watcher\"> only: with \"policy\" or "
			     "\"views\" there is one dialog per presentity already", pe->name ? pe->name : "");
	}
	for (size_t i = 0; i < c->nlists; i++) {
		const struct conf_list *l = &c->lists[i];

		for (size_t j = 0; j < l->nmembers; j++) {
			const char *m = l->members[j], *at = m ? strchr(m, '@') : NULL;

			if (!at)
				continue;	/* refused already */
			if (xd && strcmp(at + 1, xd) != 0)
				perr(p, l->line, "<member> \"%s\" of list \"%s\": not a user of the XMPP "
				     "domain \"%s\"", m, l->name ? l->name : "", xd);
			for (size_t k = 0; k < j; k++) {
				if (l->members[k] && strcmp(l->members[k], m) == 0) {
					perr(p, l->line, "<member> \"%s\" is twice in list \"%s\"", m,
					     l->name ? l->name : "");
					break;
				}
			}
		}
	}
}

/* ---- expat handlers */

static int elem_lookup(const char *name)
{
	for (int e = 0; e < E_COUNT; e++)
		if (strcmp(elem_name(e), name) == 0)
			return e;
	return -1;
}

static void parse_attrs(struct parser *p, struct frame *f, const XML_Char **atts)
{
	const char *ename = elem_name(f->elem);
	char err[ERR_SIZE], shown[SHOWN_SIZE];
	union value v;

	for (size_t i = 0; atts[i]; i += 2) {
		const struct opt *o;
		uint64_t bit;

		if (strcmp(atts[i], "xmlns") == 0) {
			if (strcmp(atts[i + 1], CONF_NS) != 0)
				perr(p, f->line, "<%s> attribute \"xmlns\": \"%s\" is not %s", ename,
				     show(shown, sizeof(shown), atts[i + 1]), CONF_NS);
			continue;
		}
		o = opt_lookup(f->elem, atts[i]);
		if (!o) {
			perr(p, f->line, "<%s>: unknown attribute \"%s\"", ename,
			     show(shown, sizeof(shown), atts[i]));
			continue;
		}
		bit = opt_frame_bit(o);
		f->given |= bit;
		if (value_parse(o, atts[i + 1], &v, err, sizeof(err)) < 0) {
			f->bad |= bit;
			perr(p, f->line, "<%s> attribute \"%s\": %s", ename, o->name, err);
			continue;
		}
		value_store(o, opt_base(p, o), &v);
	}
	for (size_t i = 0; i < sizeof(opts) / sizeof(opts[0]); i++)
		if (opts[i].elem == f->elem && opts[i].required &&
		    !(f->given & opt_frame_bit(&opts[i])))
			perr(p, f->line, "<%s>: missing required attribute \"%s\"", ename,
			     opts[i].name);
}

static void XMLCALL on_start(void *ud, const XML_Char *name, const XML_Char **atts)
{
	struct parser *p = ud;
	unsigned line = cur_line(p);
	char shown[SHOWN_SIZE];
	struct frame *parent, *f;
	int e;

	if (p->fatal)
		return;
	if (p->skip) {
		p->skip++;
		return;
	}
	if (p->depth == 0) {
		if (strcmp(name, "gateway") != 0) {
			pfatal(p, line, "the root element is <%s>; it must be <gateway>",
			       show(shown, sizeof(shown), name));
			return;
		}
		e = E_GATEWAY;
	} else {
		parent = &p->frames[p->depth - 1];
		e = elem_lookup(name);
		if (e < 0 || elem_defs[e].parent != parent->elem) {
			if (e == E_GATEWAY)
				perr(p, line, "<%s>: <gateway> may only be the root element",
				     elem_name(parent->elem));
			else if (e >= 0)
				perr(p, line, "<%s>: <%s> is not allowed here; it belongs in <%s>",
				     elem_name(parent->elem), name,
				     elem_name(elem_defs[e].parent));
			else
				perr(p, line, "<%s>: unknown element <%s>",
				     elem_name(parent->elem), show(shown, sizeof(shown), name));
			p->skip = 1;
			return;
		}
		if (++parent->count[e] == 1) {
			parent->first[e] = line;
		} else if (elem_defs[e].max && parent->count[e] > elem_defs[e].max) {
			perr(p, line, "<%s>: duplicate <%s> (the first is at line %u)",
			     elem_name(parent->elem), name, parent->first[e]);
			p->skip = 1;
			return;
		}
	}
	if (p->depth >= CONF_MAX_DEPTH)
		gw_fatal("conf: element table nests deeper than %d", CONF_MAX_DEPTH);
	f = &p->frames[p->depth++];
	memset(f, 0, sizeof(*f));
	f->elem = (enum elem)e;
	f->line = line;
	if (elem_defs[e].start)
		elem_defs[e].start(p, f);
	parse_attrs(p, f, atts);
	if (elem_defs[e].check)
		elem_defs[e].check(p, f);
}

static void XMLCALL on_end(void *ud, const XML_Char *name)
{
	struct parser *p = ud;
	struct frame *f;

	if (p->fatal)
		return;
	if (p->skip) {
		p->skip--;
		return;
	}
	f = &p->frames[p->depth - 1];
	for (const struct elem_def *c = elem_defs; c < elem_defs + E_COUNT; c++)
		if (c->parent == f->elem && f->count[c - elem_defs] < c->min)
			perr(p, f->line, "<%s>: missing required element <%s>",
			     elem_name(f->elem), c->name);
	if (elem_defs[f->elem].end)
		elem_defs[f->elem].end(p, f);
	p->depth--;
}

static void XMLCALL on_text(void *ud, const XML_Char *s, int len)
{
	struct parser *p = ud;
	struct frame *f;
	unsigned nl = 0;

	if (p->fatal || p->skip || p->depth == 0)
		return;
	f = &p->frames[p->depth - 1];
	if (f->text_reported)
		return;
	for (int i = 0; i < len; i++) {
		if (s[i] == '\n') {
			nl++;
		} else if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r') {
			perr(p, cur_line(p) + nl, "<%s>: text is not allowed (only elements, "
			     "whitespace and comments)", elem_name(f->elem));
			f->text_reported = 1;	/* once per element: expat splits text freely */
			return;
		}
	}
}

static void XMLCALL on_pi(void *ud, const XML_Char *target, const XML_Char *data)
{
	struct parser *p = ud;
	char shown[SHOWN_SIZE];

	if (p->fatal || p->skip)
		return;
	perr(p, cur_line(p), "processing instruction <?%s?> is not allowed",
	     show(shown, sizeof(shown), target));
}

/* A DTD could declare entities that expand exponentially (an XML bomb): refuse any. */
static void XMLCALL on_doctype(void *ud, const XML_Char *name, const XML_Char *sysid,
			       const XML_Char *pubid, int has_internal_subset)
{
	struct parser *p = ud;

	if (!p->fatal)
		pfatal(p, cur_line(p), "DOCTYPE declarations are not allowed");
}

static void XMLCALL on_entity(void *ud, const XML_Char *name, int is_param,
			      const XML_Char *value, int value_length, const XML_Char *base,
			      const XML_Char *sysid, const XML_Char *pubid, const XML_Char *notation)
{
	struct parser *p = ud;

	if (!p->fatal)
		pfatal(p, cur_line(p), "entity declarations are not allowed");
}

/* ---- public */

/* conf_parse(), also telling conf_load() where an inline secret was (0: none). */
static struct conf *parse(const char *name, const char *buf, size_t len, int check_perms,
			  conf_report_fn *report, void *arg, unsigned *secret_line)
{
	struct parser p;

	memset(&p, 0, sizeof(p));
	p.name = name;
	p.report = report;
	p.arg = arg;
	p.check_perms = check_perms;
	p.conf = gw_xcalloc(1, sizeof(*p.conf));
	p.conf->path = gw_xstrdup(name);
	apply_defaults(&p, TGT_CONF, p.conf);
	if (len > CONF_MAX_FILE) {
		perr(&p, 0, "larger than %zu bytes", CONF_MAX_FILE);
		goto fail;
	}
	p.xp = XML_ParserCreate(NULL);
	if (!p.xp)
		gw_fatal("conf: out of memory for the XML parser");
	XML_SetUserData(p.xp, &p);
	XML_SetElementHandler(p.xp, on_start, on_end);
	XML_SetCharacterDataHandler(p.xp, on_text);
	XML_SetProcessingInstructionHandler(p.xp, on_pi);
	XML_SetStartDoctypeDeclHandler(p.xp, on_doctype);
	XML_SetEntityDeclHandler(p.xp, on_entity);
	if (XML_Parse(p.xp, buf, (int)len, XML_TRUE) == XML_STATUS_ERROR && !p.fatal)
		perr(&p, cur_line(&p), "malformed XML: %s", XML_ErrorString(XML_GetErrorCode(p.xp)));

fail:
	if (secret_line)
		*secret_line = p.secret_line;
	free(p.secret_file);
	if (p.xp)
		XML_ParserFree(p.xp);
	if (p.nerrors) {
		conf_free(p.conf);
		return NULL;
	}
	return p.conf;
}

struct conf *conf_parse(const char *name, const char *buf, size_t len, int check_perms,
			conf_report_fn *report, void *arg)
{
	return parse(name, buf, len, check_perms, report, arg, NULL);
}

struct conf *conf_load(const char *path, conf_report_fn *report, void *arg)
{
	struct conf *conf = NULL;
	unsigned secret_line = 0;
	char *buf = NULL;
	size_t len = 0;
	struct stat st;
	ssize_t r;
	int fd;

	fd = open(path, O_RDONLY | O_NOCTTY | O_CLOEXEC);
	if (fd < 0) {
		say(report, arg, path, 0, "cannot open: %s", strerror(errno));
		goto fail;
	}
	if (fstat(fd, &st) < 0) {
		say(report, arg, path, 0, "cannot stat: %s", strerror(errno));
		goto fail;
	}
	if (S_ISREG(st.st_mode) && (st.st_mode & S_IWOTH)) {
		/* anyone could add a peer and have the gateway trust it at the next start */
		say(report, arg, path, 0, "writable by every user (mode %04o); chmod o-w it",
		    (unsigned)(st.st_mode & 07777));
		goto fail;
	}
	buf = gw_xmalloc(CONF_MAX_FILE + 1);
	while (len < CONF_MAX_FILE + 1) {
		r = read(fd, buf + len, CONF_MAX_FILE + 1 - len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			say(report, arg, path, 0, "cannot read: %s", strerror(errno));
			goto fail;
		}
		if (r == 0)
			break;
		len += (size_t)r;
	}
	if (len > CONF_MAX_FILE) {
		say(report, arg, path, 0, "larger than %zu bytes", CONF_MAX_FILE);
		goto fail;
	}
	conf = parse(path, buf, len, 1, report, arg, &secret_line);
	if (secret_line && (st.st_mode & (S_IRGRP | S_IROTH))) {
		say(report, arg, path, secret_line, "<xmpp> attribute \"secret\": %s is readable by "
		    "others; chmod 600 it, or move the secret to a secret-file", path);
		conf_free(conf);
		conf = NULL;
	}

fail:
	if (buf) {
		explicit_bzero(buf, len);	/* it may hold secret="" */
		free(buf);
	}
	if (fd >= 0)
		close(fd);
	return conf;
}

void conf_peer_free(struct conf_peer *pe)
{
	if (!pe)
		return;
	free(pe->name);
	free(pe->domain);
	free(pe->component);
	free(pe->route_address);
	free(pe->xcap_root);
	free(pe->rls_xcap_root);
	free(pe->rls_service);
	for (size_t j = 0; j < pe->ntrust; j++)
		free(pe->trust[j].text);
	free(pe->trust);
	free(pe);
}

void conf_free(struct conf *conf)
{
	if (!conf)
		return;
	free(conf->path);
	free(conf->xmpp_domain);
	free(conf->xmpp_server);
	free_secret(conf->secret);
	for (size_t i = 0; i < conf->nlisten; i++)
		free(conf->listen[i].address);
	free(conf->listen);
	free(conf->presence_db);
	free(conf->presence_agent);
	free(conf->msrp_address);
	free(conf->msrp_relay);
	free(conf->xmpp_ca);
	free(conf->tls_cert);
	free(conf->tls_key);
	free(conf->tls_ca);
	free(conf->audit_file);
	for (size_t i = 0; i < conf->npeers; i++)
		conf_peer_free(conf->peers[i]);
	free(conf->peers);
	for (size_t i = 0; i < conf->nlists; i++) {
		for (size_t j = 0; j < conf->lists[i].nmembers; j++)
			free(conf->lists[i].members[j]);
		free(conf->lists[i].members);
		free(conf->lists[i].name);
	}
	free(conf->lists);
	for (size_t i = 0; i < conf->nmuc_services; i++)
		free(conf->muc_services[i]);
	free(conf->muc_services);
	for (size_t i = 0; i < conf->nadmins; i++)
		free(conf->admins[i]);
	free(conf->admins);
	free(conf->metrics_address);
	free(conf);
}

const struct conf_peer *conf_peer_by_domain(const struct conf *conf, const char *domain)
{
	for (size_t i = 0; i < conf->npeers; i++)
		if (gw_strcaseeq(conf->peers[i]->domain, domain))
			return conf->peers[i];
	return NULL;
}

const struct conf_peer *conf_peer_by_component(const struct conf *conf, const char *component)
{
	for (size_t i = 0; i < conf->npeers; i++)
		if (gw_strcaseeq(conf->peers[i]->component, component))
			return conf->peers[i];
	return NULL;
}

static int prefix_match(const unsigned char *a, const unsigned char *net, unsigned prefix)
{
	unsigned whole = prefix / 8, rest = prefix % 8;

	if (memcmp(a, net, whole) != 0)
		return 0;
	return rest == 0 || ((a[whole] ^ net[whole]) & (0xff00u >> rest)) == 0;
}

int conf_peer_trusts(const struct conf_peer *peer, const struct sockaddr *addr)
{
	const unsigned char *bytes;
	int af;

	if (!peer || !addr)
		return 0;
	if (addr->sa_family == AF_INET) {
		af = AF_INET;
		bytes = (const unsigned char *)&((const struct sockaddr_in *)(const void *)addr)->sin_addr;
	} else if (addr->sa_family == AF_INET6) {
		const struct in6_addr *a6 = &((const struct sockaddr_in6 *)(const void *)addr)->sin6_addr;

		af = AF_INET6;
		bytes = a6->s6_addr;
		if (IN6_IS_ADDR_V4MAPPED(a6)) {
			af = AF_INET;
			bytes += 12;
		}
	} else {
		return 0;
	}
	for (size_t i = 0; i < peer->ntrust; i++) {
		const struct conf_trust *t = &peer->trust[i];
		const unsigned char *net;

		if (t->addr.ss_family != af)
			continue;
		if (af == AF_INET)
			net = (const unsigned char *)&((const struct sockaddr_in *)(const void *)&t->addr)->sin_addr;
		else
			net = ((const struct sockaddr_in6 *)(const void *)&t->addr)->sin6_addr.s6_addr;
		if (prefix_match(bytes, net, t->prefix))
			return 1;
	}
	return 0;
}

const char *conf_transport_name(enum conf_transport t)
{
	for (const struct keyword *k = kw_transport; k->name; k++)
		if (k->value == (int)t)
			return k->name;
	return "?";
}
