/* conf.h - the XML gateway file, parsed strictly (expat) into a typed, read-only configuration.
 *
 * The schema, every option, its bounds and its default are documented in docs/config.md and
 * shown in conf/gateway.xml.  In short:
 *
 *   <gateway xmlns="urn:simplegw:config:1">
 *     <log level="info" stderr="yes" syslog="no" facility="daemon"/>
 *     <xmpp domain="xmpp.example" server="127.0.0.1" port="5347" secret-file="secret"
 *           reconnect-min="1s" reconnect-max="60s" max-stanza="64k"/>
 *     <sip>
 *       <listen transport="udp" address="127.0.0.1" port="5060"/>
 *       <listen transport="tcp" address="127.0.0.1" port="5060"/>
 *     </sip>
 *     <im max-body="8k" delivery-wait="2s" type="chat"/>
 *     <presence database="presence.db" expires="3600s" min-expires="60s" max-expires="3600s"
 *               agent="simplegw" max-watchers="100000" max-subscriptions="100000"
 *               max-document="64k" enabled="yes"/>
 *     <peer name="sipnet" domain="sip.example" addressing="domain">
 *       <route address="127.0.0.1" port="5080" transport="udp"/>
 *       <trust address="127.0.0.1"/>
 *       <trust address="10.1.0.0/16"/>
 *     </peer>
 *   </gateway>
 *
 * and, for peering over TLS and a federation hub, all optional:
 *
 *     <tls certificate="gw.pem" key="gw.key" ca="peers-ca.pem"/>   the gateway's certificate,
 *         its key (chmod 600) and the CAs of peers' certificates, all checked at load; needed
 *         by transport="tls" on <listen> and <route>
 *     <peer ... tls="required" services="pager presence">         requests only over TLS from
 *         a certificate naming the peer's domain (RFC 5922); only the services listed
 *       <limits rate="50" burst="100" subscriptions="5000" sessions="100" max-document="64k"
 *               retry-after="5s"/>                                  the peer's share; 503 beyond
 *     </peer>
 *     <audit file="audit.log" content="no"/>                       one JSON line per
 *         cross-domain SIP transaction (or syslog="yes")
 *     <xmpp ... tls="direct" ca="xmpp-ca.pem"/>                     the component link over TLS
 *
 * and for operating it:
 *
 *     <admin jid="ops@xmpp.example"/>                              may run the ad-hoc admin
 *         commands (XEP-0050); one element per JID
 *     <metrics address="127.0.0.1" port="9477"/>                   Prometheus text at /metrics
 *
 * Every problem is reported as "file:line: message" through the caller's report function, all of
 * them in one run; a configuration is returned only when there were none.
 */
#ifndef GW_CONF_H
#define GW_CONF_H

#include <stddef.h>
#include <sys/socket.h>

enum conf_transport {
	CONF_TRANSPORT_UDP,
	CONF_TRANSPORT_TCP,
	CONF_TRANSPORT_TLS,	/* TCP with TLS, mutual certificates (<tls>; RFC 3261 26, 5922) */
};

/* <peer tls="">: whether the peer's requests must come over TLS from its certificate. */
enum conf_peer_tls {
	CONF_PEER_TLS_NO,	/* any transport; a TLS connection's certificate is still checked */
	CONF_PEER_TLS_REQUIRED,	/* requests only over TLS from a certificate naming the peer's
				 * domain (RFC 5922 7.2); anything else 403 */
};

/* <xmpp tls="">: the component link. */
enum conf_xmpp_tls {
	CONF_XMPP_TLS_NO,	/* plain TCP (XEP-0114) */
	CONF_XMPP_TLS_DIRECT,	/* TLS from the first byte to the component port; the server's
				 * certificate must be valid for the XMPP domain */
};

/* Services a peer network may use: bits of conf_peer.services (<peer services="">). */
enum {
	CONF_SVC_PAGER = 1u << 0,	/* MESSAGE both ways (RFC 7572) */
	CONF_SVC_PRESENCE = 1u << 1,	/* SUBSCRIBE/NOTIFY/PUBLISH both ways (RFC 7248) */
	CONF_SVC_SESSIONS = 1u << 2,	/* INVITE + MSRP one-to-one (RFC 7573) */
	CONF_SVC_GROUPCHAT = 1u << 3,	/* rooms (RFC 7702); groupchat="yes" is still needed */
	CONF_SVC_ALL = 0xf,
};

/* How SIP users of a peer network appear as JIDs (mapping/addr.h has the worked examples). */
/* Who authorizes an XMPP watcher of a SIP presentity (<authorization mode> in a <peer>). */
enum conf_authz {
	CONF_AUTHZ_WATCHER,	/* one SUBSCRIBE per watcher, as the watcher: the peer decides (default) */
	CONF_AUTHZ_POLICY,	/* one SUBSCRIBE per presentity as the gateway's agent; the owner's
				 * presence rules (RFC 5025, over XCAP) applied per watcher here */
	CONF_AUTHZ_VIEWS,	/* one SUBSCRIBE per view: per group of watchers the owner's rules
				 * treat alike, as one of them; the peer filters, the gateway groups */
};

enum conf_addressing {
	CONF_ADDR_DOMAIN,	/* bob@sip.example <-> sip:bob@sip.example; component = the peer's domain */
	CONF_ADDR_ESCAPED,	/* bob\40sip.example@<component> <-> sip:bob@sip.example */
};

/* Log levels, most severe first (their numeric order is used for filtering). */
enum conf_log_level {
	CONF_LOG_ERROR,
	CONF_LOG_WARNING,
	CONF_LOG_NOTICE,
	CONF_LOG_INFO,
	CONF_LOG_DEBUG,
};

enum conf_im_type {
	CONF_IM_CHAT,		/* SIP MESSAGE -> <message type='chat'> */
	CONF_IM_NORMAL,		/* SIP MESSAGE -> <message type='normal'> */
};

/* What a SIP MESSAGE gets once the barrier ping after it returned without a bounce (pager.c). */
enum conf_im_verdict {
	CONF_VERDICT_AUTO,	/* BARRIER for an XMPP server known to check while routing */
	CONF_VERDICT_BARRIER,	/* 200: the server refuses a message before it answers the ping */
	CONF_VERDICT_ACCEPTED,	/* 202: the server may still refuse it (ejabberd, unknown ones) */
};

struct conf_listen {
	enum conf_transport transport;
	char *address;		/* numeric IPv4 or IPv6 address, never a name */
	unsigned port;		/* 1..65535 */
	unsigned line;		/* where it was declared, for later diagnostics */
};

/* A source network trusted to send requests on behalf of a peer: address/prefix. */
struct conf_trust {
	struct sockaddr_storage addr;	/* AF_INET or AF_INET6, host bits cleared */
	unsigned prefix;		/* 0..32 or 0..128; a bare address means a full-length prefix */
	char *text;			/* as written, for logs */
};

struct conf_peer {
	char *name;		/* label used in logs; defaults to the domain */
	char *domain;		/* the SIP domain this peer network owns (lower case) */
	enum conf_addressing addressing;
	char *component;	/* XMPP component domain serving this peer (lower case):
				 * domain mode: equal to domain (attribute optional, must match);
				 * escaped mode: required, e.g. "sip-gw.xmpp.example" */
	char *route_address;	/* numeric address requests to this peer are sent to */
	unsigned route_port;
	enum conf_transport route_transport;
	struct conf_trust *trust;	/* at least one */
	size_t ntrust;
	int sessions;		/* <peer sessions="yes">: XMPP chats to this peer open MSRP sessions
				 * (RFC 7573) instead of pager-mode MESSAGEs; default 0 */
	int groupchat;		/* <peer groupchat="yes">: its users may join the XMPP MUC services
				 * of <groupchat>, and XMPP users its conference rooms; default 0 */
	unsigned options_interval_ms;	/* <route options-interval>: health check period, 0 off */
	enum conf_authz authz;		/* <authorization mode>, default CONF_AUTHZ_WATCHER */
	char *xcap_root;		/* <authorization xcap-root>: http://<numeric>:<port>/<path>,
				 * required by the policy and views modes; NULL otherwise */
	unsigned xcap_refresh_ms;	/* <authorization refresh>: rules re-fetched this often */
	char *rls_xcap_root;		/* <rls xcap-root>: the peer's XCAP server where each XMPP
				 * watcher's rls-services document is stored; NULL: no lists */
	char *rls_service;		/* <rls service>: user part prefix of the list URIs */
	enum conf_peer_tls tls;		/* <peer tls="">: default CONF_PEER_TLS_NO */
	unsigned services;		/* <peer services="">: CONF_SVC_* bits, default CONF_SVC_ALL */
	/* <limits>, each 0 when unlimited (the default) */
	unsigned rate;			/* requests per second from this peer (token bucket) */
	unsigned burst;			/* bucket size: default max(rate, 1) */
	unsigned max_subscriptions;	/* SIP watcher dialogs from this peer plus our subscriptions
					 * to its users */
	unsigned max_sessions;		/* MSRP sessions and bridged room occupants with it */
	size_t max_document;		/* a presence, list or conference document from it;
					 * 0: <presence max-document> */
	unsigned retry_after_s;		/* Retry-After of the 503s, default 1 */
	unsigned line;
	size_t index;			/* its position in conf->peers: modules keep per-peer state
					 * in arrays by it (a reload renumbers and tells them) */
};

/* <list name=""> with its <member jid=""/>s: sip:<name>@<xmpp domain> is a list of XMPP users. */
struct conf_list {
	char *name;		/* lower-case letters, digits, '-', '.', '_' */
	char **members;		/* bare JIDs in the XMPP domain, lower case, no duplicates */
	size_t nmembers;
	unsigned line;
};

struct conf {
	char *path;			/* the file this came from */

	/* <log> */
	enum conf_log_level log_level;	/* default info */
	int log_stderr;			/* default 1 */
	int log_syslog;			/* default 0 */
	int log_facility;		/* LOG_DAEMON etc., default LOG_DAEMON */

	/* <xmpp> */
	char *xmpp_domain;		/* required: the XMPP domain served towards SIP (lower case) */
	char *xmpp_server;		/* required: numeric address of the XMPP server's component port */
	unsigned xmpp_port;		/* default 5347 */
	char *secret;			/* required: from secret="" or the first line of secret-file="" */
	unsigned reconnect_min_ms;	/* default 1000, 100..600000 */
	unsigned reconnect_max_ms;	/* default 60000, reconnect_min_ms..3600000 */
	size_t max_stanza;		/* default 65536, 1024..16777216 bytes */
	enum conf_xmpp_tls xmpp_tls;	/* <xmpp tls="">: default no */
	char *xmpp_ca;			/* <xmpp ca="">: CA file the server's certificate is checked
					 * against (resolved); NULL: <tls ca>, else the system's */

	/* <tls>: the gateway's certificate, for SIP over TLS (as server and as client) and MSRP
	 * over TLS; NULL when absent (then no transport may be tls) */
	char *tls_cert;			/* PEM chain: the gateway's certificate first (resolved) */
	char *tls_key;			/* PEM private key, not readable by others (resolved) */
	char *tls_ca;			/* PEM CAs peers' certificates must chain to (resolved) */
	unsigned tls_verify_depth;	/* default 4, 1..16 */
	unsigned tls_line;

	/* <audit>: one JSON line per cross-domain transaction; both NULL/0 when absent */
	char *audit_file;		/* resolved; reopened on SIGHUP (logrotate) */
	int audit_syslog;		/* LOG_INFO lines to syslog, facility of <log> */
	int audit_content;		/* message bodies included: default no */

	/* <sip> */
	struct conf_listen *listen;	/* at least one */
	size_t nlisten;
	size_t max_sip_message;		/* <sip max-message=""> default 65536, 1024..1048576 */
	unsigned sip_t1_ms;		/* <sip t1=""> RFC 3261 timer T1, default 500, 10..10000;
					 * a request with no answer fails after 64*T1 */
	unsigned sip_t4_ms;		/* <sip t4=""> how long a completed transaction over UDP
					 * absorbs duplicates (Timers K and I), default 1000,
					 * 10..10000 */
	unsigned sip_max_conns;		/* <sip max-connections=""> accepted TCP connections in
					 * total, default 1024, 1..100000 */
	unsigned sip_max_conns_per_source; /* <sip max-connections-per-source=""> from one
					 * address, default 64, 1..100000 */
	unsigned sip_tcp_idle_ms;	/* <sip tcp-idle=""> a connection that carries nothing this
					 * long is closed, default 60000, 1000..3600000 */

	/* <im> */
	size_t im_max_body;		/* default 8192, 1..1048576 bytes of UTF-8 */
	unsigned im_delivery_wait_ms;	/* default 2000, 0..30000 */
	unsigned im_barrier_window_ms;	/* default 10, 0..1000: one barrier ping covers the
					 * messages of this window (0: of one loop pass) */
	enum conf_im_type im_type;	/* default chat */
	enum conf_im_verdict im_verdict; /* default auto */

	/* <presence>: SIP SUBSCRIBE/NOTIFY <-> XMPP presence.  All defaults when absent. */
	int presence_enabled;		/* default 1; 0: SUBSCRIBE answered 489, XMPP presence to
					 * SIP users answered service-unavailable */
	char *presence_db;		/* state database, resolved against the file's directory;
					 * NULL (default): in memory, lost on restart */
	unsigned presence_expires_s;	/* Expires of our SUBSCRIBEs: default 3600, 60..86400 */
	unsigned presence_min_expires_s;	/* incoming SUBSCRIBE below this: 423; default 60,
						 * 1..3600 */
	unsigned presence_max_expires_s;	/* granted at most: default 3600,
						 * presence_min_expires_s..86400 */
	int presence_roster_lists;	/* <presence roster-lists>: serve roster groups as lists */
	char *presence_agent;		/* SIP user part of our shared subscriptions' From
					 * (sip:<agent>@<xmpp_domain>): default "simplegw", 1..64 */
	unsigned presence_max_per_user;	/* SIP presentities one XMPP user watches: default 500 */
	unsigned presence_max_pending_per_user;	/* SIP watchers awaiting one XMPP user's answer:
					 * default 50 */
	unsigned presence_max_per_watcher;	/* dialogs one SIP watcher holds: default 500 */
	unsigned presence_max_per_peer;	/* SIP watcher dialogs from one peer: default 10000 */
	unsigned presence_max_watchers;	/* per presentity: default 100000, 1..10000000 */
	unsigned presence_max_subscriptions;	/* incoming SIP watchers in total: default 100000,
						 * 1..10000000 */
	unsigned presence_notify_interval_ms;	/* NOTIFYs of one SIP watcher's dialog at most this
						 * often, changes between coalesced: default
						 * 1000, 0..60000 (0: no limit) */
	size_t presence_max_doc;

	/* <sessions>: session-mode IM, SIP INVITE + MSRP (RFC 7573, RFC 4975).  Defaults when absent. */
	int sessions_enabled;		/* default 1; 0: INVITE answered 488 as before */
	char *msrp_address;		/* MSRP listen address; NULL: the first <listen> address */
	unsigned msrp_port;		/* default 2855 */
	unsigned msrps_port;		/* MSRP over TLS (RFC 4975 14): default 2856, listened on
					 * only when <tls> is there */
	char *msrp_relay;		/* <sessions relay="">: the MSRP relay (RFC 4976) every session
					 * whose transport matches its scheme goes through, an msrp: or
					 * msrps: URI with a numeric host and a port; NULL: none */
	unsigned sessions_line;		/* where <sessions> is, for later diagnostics */
	unsigned sessions_max_per_user;	/* sessions of one XMPP user: default 8, 1..1000 */
	unsigned sessions_max_total;	/* default 1000, 1..1000000 */
	size_t sessions_max_queued;	/* bytes waiting for a session to come up: default 64k */
	size_t sessions_max_message;	/* one MSRP message reassembled: default 1M */
	size_t sessions_chunk_size;	/* MSRP chunks we send: default 2k, 64..1M */
	unsigned sessions_connect_ms;	/* the MSRP connection set up and bound within: default 10s,
					 * 1s..60s (an accepted one unbound by then is closed) */
	unsigned sessions_idle_s;	/* a session without traffic is closed: default 600, 10..86400 */	/* bytes of a PIDF document: default 65536, 1024..1048576 */

	/* <groupchat>: XMPP MUC <-> SIP/MSRP multi-party chat (RFC 7702, RFC 7701, RFC 4575) */
	int groupchat_enabled;		/* default 1 (peers still opt in with groupchat="yes") */
	unsigned groupchat_max_total;	/* bridged occupants in total, both ways: default 2000 */
	unsigned groupchat_max_per_room;	/* bridged occupants of one room: default 500 */
	unsigned groupchat_max_per_user;	/* rooms one user is in through the gateway: 10 */
	unsigned groupchat_max_rooms;	/* rooms with bridged occupants: default 200 */
	unsigned groupchat_join_ms;	/* a join (INVITE, MSRP, NICKNAME or MUC presence) must
					 * complete within: default 20s, 1s..120s */
	char **muc_services;		/* <muc service="">: XMPP MUC domains SIP users may join
					 * (lower case, no duplicates) */
	size_t nmuc_services;

	/* <admin jid="">: bare JIDs allowed the ad-hoc admin commands (XEP-0050/0133) */
	char **admins;			/* lower case, no duplicates; none: nobody */
	size_t nadmins;

	/* <metrics address="" port="">: the Prometheus text endpoint (GET /metrics) */
	char *metrics_address;		/* numeric address to bind; NULL: no endpoint */
	unsigned metrics_port;		/* default 9477 */
	unsigned metrics_line;

	/* <peer>, at least one; each its own allocation, so that a reload can keep a peer that
	 * remains at the address the running gateway holds (gw_reload) */
	struct conf_peer **peers;
	size_t npeers;

	/* <presence><list>: resource lists the gateway serves to SIP watchers (RFC 4662) */
	struct conf_list *lists;
	size_t nlists;
};

/* Receives one diagnostic.  file and line locate the problem (line 0: the file as a whole). */
typedef void conf_report_fn(void *arg, const char *file, unsigned line, const char *msg);

/* Parses a gateway file held in memory.  name is used in diagnostics and to resolve a relative
 * secret-file or presence database against its directory.  When check_perms is non-zero, secret-file must not be
 * readable by group or others.  Returns a new configuration (free with conf_free), or NULL after
 * reporting every problem found. */
struct conf *conf_parse(const char *name, const char *buf, size_t len, int check_perms,
			conf_report_fn *report, void *arg);

/* Reads and parses path.  A file that holds secret="" must not be readable by group or others,
 * and neither may a secret-file.  Returns NULL after reporting problems. */
struct conf *conf_load(const char *path, conf_report_fn *report, void *arg);

/* Frees everything conf_parse() allocated.  NULL is allowed. */
void conf_free(struct conf *conf);

/* Frees one peer and everything it owns (one taken out of a configuration).  NULL is allowed. */
void conf_peer_free(struct conf_peer *pe);

/* Finds the peer owning a SIP domain (case-insensitive), or NULL. */
const struct conf_peer *conf_peer_by_domain(const struct conf *conf, const char *domain);

/* Finds the peer whose XMPP component domain is component (case-insensitive), or NULL.
 * Several escaped-mode peers may share a component: this returns the first of them. */
const struct conf_peer *conf_peer_by_component(const struct conf *conf, const char *component);

/* Returns 1 if addr (AF_INET or AF_INET6; a v4-mapped v6 address counts as v4) falls in one of
 * the peer's trusted networks, else 0. */
int conf_peer_trusts(const struct conf_peer *peer, const struct sockaddr *addr);

/* Printable names used by diagnostics and logs. */
const char *conf_transport_name(enum conf_transport t);

#endif
