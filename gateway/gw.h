/* gw.h - the gateway context, logging, allocation and the reactor, grouped by file. */
#ifndef GW_GW_H
#define GW_GW_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include "../conf/conf.h"
#include "stats.h"

struct event_base;

/* The release, as `simplegw -v` and XEP-0092 report it (debian/changelog names the same). */
#define SIMPLEGW_VERSION "0.1.0"

#ifdef __GNUC__
#define GW_PRINTF(f, a) __attribute__((format(printf, f, a)))
#define GW_VPRINTF(f) __attribute__((format(printf, f, 0)))
#define GW_NORETURN __attribute__((noreturn))
#else
#define GW_PRINTF(f, a)
#endif

/* ---- util.c: allocation that never returns NULL (out of memory aborts here, and only here) */
void *gw_xmalloc(size_t n);
void *gw_xcalloc(size_t n, size_t size);
void *gw_xrealloc(void *p, size_t n);
char *gw_xstrdup(const char *s);
char *gw_xstrndup(const char *s, size_t n);
/* Formats into a new string owned by the caller. */
char *gw_xasprintf(const char *fmt, ...) GW_PRINTF(1, 2);
GW_NORETURN void gw_fatal(const char *fmt, ...) GW_PRINTF(1, 2);
/* Case-insensitive ASCII comparison (domains). */
int gw_strcaseeq(const char *a, const char *b);

/* FNV-1a over len bytes: for telling documents apart, not for adversarial keys. */
uint64_t gw_hash64(const void *data, size_t len);
/* The value of one hex digit (either case), or -1. */
int gw_hexval(char c);
/* Writes the decimal digits of v at p (at most 20, not terminated); returns the end. */
char *gw_put_uint(char *p, unsigned long long v);
/* "192.0.2.1:5060" or "[2001:db8::1]:5060" into buf (always terminated). */
struct sockaddr;
void gw_sockaddr_text(const struct sockaddr *sa, char *buf, size_t len);
/* Decodes one UTF-8 sequence at s (n >= 1 bytes left; RFC 3629).  Returns its length and the
 * code point, or 0 for an invalid, overlong or surrogate sequence (*cp then unset). */
size_t gw_utf8_decode(const unsigned char *s, size_t n, unsigned long *cp);

/* ---- inflate.c: zlib data (RFC 1950/1951), e.g. a body with Content-Encoding: deflate.
 * Decodes in into out (at most outcap bytes); 0 with *outlen set, or -1 for anything malformed,
 * a preset dictionary, a bad checksum, trailing bytes, or output that would not fit. */
int gw_inflate_zlib(const void *in, size_t inlen, void *out, size_t outcap, size_t *outlen);

/* ---- log.c: levels, stderr and syslog.  The sink settings are the process's only mutable global
 * besides struct gw: logging must work before the context exists and from library callbacks. */
void log_init(const char *ident, enum conf_log_level level, int to_stderr, int to_syslog,
	      int facility);
void log_set_level(enum conf_log_level level);
int log_enabled(enum conf_log_level level);
void log_msg(enum conf_log_level level, const char *func, const char *fmt, ...) GW_PRINTF(3, 4);
void log_vmsg(enum conf_log_level level, const char *func, const char *fmt, va_list ap)
	GW_VPRINTF(3);
#define log_error(...) log_msg(CONF_LOG_ERROR, __func__, __VA_ARGS__)
#define log_warn(...) log_msg(CONF_LOG_WARNING, __func__, __VA_ARGS__)
#define log_notice(...) log_msg(CONF_LOG_NOTICE, __func__, __VA_ARGS__)
#define log_info(...) log_msg(CONF_LOG_INFO, __func__, __VA_ARGS__)
#define log_debug(...) \
	do { \
		if (log_enabled(CONF_LOG_DEBUG)) \
			log_msg(CONF_LOG_DEBUG, __func__, __VA_ARGS__); \
	} while (0)
/* A budget of lines for one kind of record that a peer can cause at will (refusals): at most
 * LOG_LIMIT_LINES per LOG_LIMIT_MS, the rest counted and reported in one line when the next
 * window opens.  Owned by the module that logs them; all zeroes to start. */
#define LOG_LIMIT_LINES 10
#define LOG_LIMIT_MS 10000
struct log_limit {
	uint64_t window_ms;
	unsigned lines;
	unsigned long suppressed;
};
void log_limited(struct log_limit *lim, enum conf_log_level level, const char *func,
		 const char *fmt, ...) GW_PRINTF(4, 5);
#define log_refusal(lim, ...) log_limited(lim, CONF_LOG_INFO, __func__, __VA_ARGS__)
/* Parses "error", "warning", "notice", "info", "debug"; returns -1 if unknown. */
int log_level_parse(const char *name);
const char *log_level_name(enum conf_log_level level);

/* ---- gw.c: the one context object.  It owns the event base, the configuration, both protocol
 * stacks and the mapping layer, and is passed explicitly to whatever needs them. */
struct _xmpp_ctx_t;
struct sip_stack;
struct xmpp_link;
struct pager;
struct presence;
struct sessions;
struct groupchat;
struct admin;
struct event;
typedef struct _xmpp_stanza_t xmpp_stanza_t;

enum gw_state {
	GW_RUNNING,
	GW_DRAINING,		/* refusing new work, waiting for pending messages to settle */
	GW_STOPPING,		/* SIP stack and component links closing */
	GW_DONE,
};

struct gw {
	struct event_base *base;
	struct conf *conf;		/* owned */
	struct _xmpp_ctx_t *xctx;	/* libstrophe context: stanza and JID model only */
	struct reactor *reactor;
	struct sip_stack *sip;
	struct xmpp_link **links;	/* one per distinct component domain */
	size_t nlinks;
	struct xmpp_link **old_links;	/* links a reload stopped (no peer uses them), freed last */
	size_t nold_links;
	struct conf_peer **retired;	/* peers a reload removed, freed last (owned) */
	size_t nretired;
	int log_forced;			/* -d: the log level is not the file's (a reload keeps it) */
	struct pager *pager;
	struct presence *presence;
	struct sessions *sessions;
	struct groupchat *groupchat;
	struct admin *admin;		/* admin.c's command sessions, made when first needed */

	enum gw_state state;
	int exit_status;		/* what gw_run() returns */
	struct log_limit skipped_log;	/* stanzas skipped for their size or depth */
	struct event *sig_ev[3];	/* SIGTERM, SIGINT, SIGHUP */
	struct event *drain_ev;
	struct event *trim_ev;		/* returns freed memory to the system when idle */
	unsigned long long activity;	/* SIP requests, stanzas and MSRP reads, for the trimmer */
	unsigned long long trim_activity; /* activity at the trimmer's last check */
	uint64_t active_ms;		/* when the trimmer last saw activity change */
	uint64_t trimmed_ms;		/* when memory was last trimmed */
	int trim_wanted;		/* activity since then */
	struct gw_peer **peer_rt;	/* conf->peers[i]'s runtime record at [i] (gw_peer_of) */
	struct stats stats;		/* what the whole gateway counted (stats.h) */
	struct metrics *metrics;	/* the Prometheus endpoint (metrics.c), or NULL */
	char caps_ver[2][32];		/* XEP-0115 ver of a SIP user's full JID, in session and in
					 * pager chat mode: iq.c, filled on first use */
	uint64_t drain_started_ms;
	size_t links_open;		/* links not yet stopped during shutdown */
	char id_prefix[16];		/* random per process: our stanza ids cannot be guessed */
	unsigned long long id_seq;
};

/* Builds everything from a configuration (ownership passes).  NULL on failure (logged). */
struct gw *gw_new(struct conf *conf);
/* Connects and runs the loop until shut down.  Returns the process exit status. */
int gw_run(struct gw *gw);
/* Starts the clean shutdown a signal would. */
void gw_shutdown(struct gw *gw);
void gw_free(struct gw *gw);
/* Monotonic milliseconds (the one clock the mapping layer reads). */
uint64_t gw_now_ms(const struct gw *gw);
const char *gw_id_prefix(const struct gw *gw);
/* Writes "<prefix>-<kind><n>", a fresh stanza id. */
void gw_make_id(struct gw *gw, const char *kind, char *buf, size_t len);
/* A peer network's runtime record: its health (OPTIONS) and what it counted.  Kept across a
 * reload for a peer that remains. */
struct gw_peer {
	struct gw *gw;
	const struct conf_peer *peer;
	struct event *ev;		/* the health check timer */
	struct sip_outgoing *out;	/* the OPTIONS in flight */
	int up;				/* -1 unknown, 0 down, 1 up */
	uint64_t changed_ms;		/* when up last changed */
	unsigned armed_ms;		/* the interval its timer runs at (a reload re-arms it only
					 * when the peer's options-interval changed) */
	struct stats_peer stats;
};
/* peer's record, or NULL for a peer no longer configured (a reload removed it).  Borrowed. */
struct gw_peer *gw_peer_of(struct gw *gw, const struct conf_peer *peer);
/* The peer's counters, or NULL as above (stats_message() takes NULL). */
struct stats_peer *gw_peer_stats(struct gw *gw, const struct conf_peer *peer);

/* The link serving a component domain, or NULL. */
struct xmpp_link *gw_link_for_component(struct gw *gw, const char *domain);

/* Re-reads the gateway file (conf->path), checks it and applies what changed (peers, trust,
 * routes, limits, log level, admins...; docs/operations.md lists what needs a restart).  Returns
 * 0 when applied, -1 when nothing changed because the file has errors (each as file:line).  In
 * both cases *report (when not NULL) gets a new text for the operator, one line per change or
 * problem; the caller frees it.  SIGHUP and the admin command both call this. */
int gw_reload(struct gw *gw, char **report);

/* ---- iq.c: iq requests addressed to the gateway itself: disco (XEP-0030), the gateway prompt
 * (XEP-0100), version (XEP-0092), ping (XEP-0199), the ad-hoc commands (admin.c); replies to our
 * own requests go to the modules that sent them */
void iq_from_xmpp(struct gw *gw, struct xmpp_link *link, xmpp_stanza_t *iq);
/* XEP-0115 caps of the presence sent for SIP users: the node, and the <c/> added to an
 * available presence of a user of peer (ver: what that user's full JID answers to disco#info). */
#define IQ_CAPS_NODE "urn:simplegw:caps"
void iq_caps_add(struct gw *gw, const struct conf_peer *peer, xmpp_stanza_t *presence);
/* A disco identity; lang and name may be NULL. */
struct iq_identity {
	const char *category, *type, *lang, *name;
};
/* The XEP-0115 5.1 verification string (SHA-1, base64) of identities and features (any order)
 * into buf (29 bytes at least).  Its length (28), or -1. */
int iq_caps_ver(const struct iq_identity *ids, size_t nids, const char *const *features,
		size_t nfeatures, char *buf, size_t len);
/* XEP-0100: the bare JID to write to for what a user typed as a SIP address ("sip:bob@sip.example",
 * "bob@sip.example", "Bob <sips:bob@sip.example>"; a user name alone at the peer `only`, which
 * may be NULL), for whichever peer owns the domain, in its addressing mode.  0, or -1 with an
 * error condition (not-acceptable, item-not-found) and a text, both static. */
int iq_gateway_jid(const struct conf *conf, const struct conf_peer *only, const char *typed,
		   char *jid, size_t len, const char **condition, const char **text);

/* ---- admin.c: ad-hoc admin commands (XEP-0050, XEP-0133 style) for the JIDs of <admin> */
#define NS_COMMANDS "http://jabber.org/protocol/commands"
/* 1 when from (a full or bare JID) is one of <admin>'s bare JIDs. */
int admin_allowed(const struct gw *gw, const char *from);
/* An iq set whose payload is a <command/> in NS_COMMANDS: always answered (forbidden for anyone
 * not an admin). */
void admin_command(struct gw *gw, struct xmpp_link *link, xmpp_stanza_t *iq,
		   xmpp_stanza_t *command);
/* disco#items of node NS_COMMANDS: adds an <item/> per command the requester may run to query
 * (none for others). */
void admin_disco_items(struct gw *gw, const char *from, const char *to, xmpp_stanza_t *query);
/* disco#info of a node: 1 and query filled (identities and features; the caller sets its node)
 * for NS_COMMANDS itself (anyone) and for a command's node when from may run it, else 0. */
int admin_disco_info(struct gw *gw, const char *from, const char *node, xmpp_stanza_t *query);
/* The command sessions held between stages (NULL is allowed). */
void admin_free(struct admin *ad);

/* ---- metrics.c: the Prometheus text endpoint, GET /metrics on <metrics address port>
 * (docs/operations.md lists every metric) */
struct metrics;
/* Listens on conf's <metrics> address and port with libevent's HTTP server on gw->base.  NULL
 * when it cannot (logged, like a SIP port in use): the gateway does not start. */
struct metrics *metrics_new(struct gw *gw);
/* Closes the listener and every connection.  NULL is allowed. */
void metrics_free(struct metrics *m);
/* Escapes s as a label value of the text format: backslash, double quote and line feed become
 * \\, \" and \n, everything else stays as it is (UTF-8 included).  Writes at most outlen
 * bytes to out, always terminated when outlen > 0, and returns the length of the whole escaped
 * text (as snprintf does: a return >= outlen means it was cut). */
size_t metrics_escape(const char *s, char *out, size_t outlen);

/* ---- reactor.c: Sofia-SIP's su_root driven by the libevent base (see the file's comment) */
struct reactor;
struct su_root_s;
/* Creates the su_root and registers its events on base.  NULL on failure (logged). */
struct reactor *reactor_new(struct event_base *base);
struct su_root_s *reactor_su_root(struct reactor *r);
struct event_base *reactor_event_base(struct reactor *r);
/* Call after any call into Sofia-SIP made outside a Sofia callback. */
void reactor_kick(struct reactor *r);
unsigned long reactor_steps(const struct reactor *r);
/* Destroys the su_root: everything created on it must be gone already.  NULL is allowed. */
void reactor_free(struct reactor *r);

#endif
