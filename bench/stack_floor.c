/* stack_floor.c - the least a pager gateway can do on the brief's libraries, for bench/compare.py.
 *
 * floor_relay.c is the machine's floor: one epoll loop, a minimal parse, no transactions.  This
 * is the floor of the stack simplegw is built on: the same job (a SIP MESSAGE over UDP becomes a
 * <message/> on an XEP-0114 component link and is answered 200; a <message/> from the link becomes
 * a SIP MESSAGE whose answer is dropped) done the plainest way Sofia-SIP and expat allow, and
 * nothing more:
 *  - SIP through nta as Sofia's own proxies use it: one agent on su_root's loop, a default leg
 *    whose callback returns 200 (nta answers, keeps the transaction for 64*T1 and absorbs
 *    retransmissions), nta_outgoing_tcreate() with the headers as strings for each stanza (nta
 *    retransmits until answered); Sofia's parser on every datagram, its encoder on every send;
 *  - the component stream through one expat parser with namespaces, the stanza's to, from and
 *    body taken from its events, the outgoing stanza written as escaped text (no stanza objects);
 *  - no address mapping, trust, policy, barrier, logging or store.
 * What it costs per message beyond floor_relay is what these libraries cost; what simplegw costs
 * beyond this is the gateway's own work (libstrophe's stanza objects, the mapping, the checks).
 *
 * It is a benchmark tool, not a gateway: it trusts its peers (compare.py's sipp and Prosody), is
 * never run against anything else, and writes the link with blocking writes.
 *
 * Usage: stack_floor COMPONENT_PORT SECRET DOMAIN SIP_PORT PEER_SIP_PORT [T1_MS]   (all on 127.0.0.1;
 *        T1 500 ms unless given, Sofia's other timers their defaults)
 * Exit status: 0 on SIGTERM, 1 on a setup or link failure.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <expat.h>
#include <openssl/evp.h>

#include "relay_common.h"

#include <sofia-sip/su.h>
#include <sofia-sip/su_wait.h>
#include <sofia-sip/nta.h>
#include <sofia-sip/sip_header.h>
#include <sofia-sip/sip_tag.h>
#include <sofia-sip/url.h>

#define NS_COMPONENT "jabber:component:accept"
#define NS_STREAMS "http://etherx.jabber.org/streams"
#define FIELD 3072		/* longest to, from or body kept */

static su_root_t *root;
static nta_agent_t *agent;
static nta_leg_t *leg;
static url_string_t *route;	/* sip:127.0.0.1:PEER;transport=udp */
static int link_fd, sig_pipe[2];
static XML_Parser xp;
static unsigned long seq;

/* What the stream's events have said so far. */
static struct {
	int depth;
	char id[256];		/* the server's stream id */
	int linked;		/* <handshake/> received */
	int in_message, in_body;
	char to[FIELD], from[FIELD], body[FIELD];
	size_t body_n;
} st;

static void link_write(const char *s, size_t n)
{
	while (n > 0) {
		ssize_t w = write(link_fd, s, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			die("component link write: %s", strerror(errno));
		s += w;
		n -= (size_t)w;
	}
}

/* Appends s[0..n) to out at *len, XML-escaped, within cap; returns 0 if it did not fit. */
static int put_escaped(char *out, size_t *len, size_t cap, const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		const char *e = relay_entity(s[i]);
		size_t k = e ? strlen(e) : 1;

		if (*len + k >= cap)
			return 0;
		memcpy(out + *len, e ? e : s + i, k);
		*len += k;
	}
	return 1;
}

static int put(char *out, size_t *len, size_t cap, const char *s)
{
	size_t k = strlen(s);

	if (*len + k >= cap)
		return 0;
	memcpy(out + *len, s, k);
	*len += k;
	return 1;
}

/* ---- SIP -> XMPP */

/* user@host of a SIP URL into buf (the URL's own fields, as parsed by Sofia). */
static int aor(const url_t *u, char *buf, size_t cap)
{
	int n = snprintf(buf, cap, "%s%s%s", u->url_user ? u->url_user : "", u->url_user ? "@" : "",
			 u->url_host ? u->url_host : "");

	return n > 0 && (size_t)n < cap;
}

static int on_request(nta_leg_magic_t *magic, nta_leg_t *lg, nta_incoming_t *irq, sip_t const *sip)
{
	char from[512], to[512], out[8192];
	size_t n = 0;

	(void)magic;
	(void)lg;
	(void)irq;
	if (sip->sip_request->rq_method != sip_method_message)
		return 501;
	if (!sip->sip_from || !sip->sip_to || !aor(sip->sip_from->a_url, from, sizeof(from)) ||
	    !aor(sip->sip_to->a_url, to, sizeof(to)))
		return 400;
	if (!put(out, &n, sizeof(out), "<message type='chat' from='") ||
	    !put_escaped(out, &n, sizeof(out), from, strlen(from)) ||
	    !put(out, &n, sizeof(out), "' to='") ||
	    !put_escaped(out, &n, sizeof(out), to, strlen(to)) ||
	    !put(out, &n, sizeof(out), "'><body>") ||
	    (sip->sip_payload && !put_escaped(out, &n, sizeof(out), sip->sip_payload->pl_data,
					      sip->sip_payload->pl_len)) ||
	    !put(out, &n, sizeof(out), "</body></message>"))
		return 413;
	link_write(out, n);
	return 200;
}

/* ---- XMPP -> SIP */

static int on_answer(nta_outgoing_magic_t *magic, nta_outgoing_t *orq, sip_t const *sip)
{
	(void)magic;
	(void)sip;
	if (nta_outgoing_status(orq) >= 200)
		nta_outgoing_destroy(orq);
	return 0;
}

static void send_message(void)
{
	char uri[FIELD + 8], from[FIELD + 32], *slash;

	if (!st.to[0] || !st.from[0])
		return;
	if ((slash = strchr(st.from, '/')))	/* the sender's bare JID */
		*slash = '\0';
	seq++;
	snprintf(uri, sizeof(uri), "sip:%s", st.to);
	snprintf(from, sizeof(from), "<sip:%s>;tag=sf%lu", st.from, seq);
	st.body[st.body_n] = '\0';
	if (!nta_outgoing_tcreate(leg, on_answer, NULL, route, SIP_METHOD_MESSAGE,
				  (url_string_t *)uri, SIPTAG_FROM_STR(from), SIPTAG_TO_STR(uri),
				  SIPTAG_CONTENT_TYPE_STR("text/plain;charset=UTF-8"),
				  SIPTAG_PAYLOAD_STR(st.body), TAG_END()))
		fprintf(stderr, "stack_floor: nta_outgoing_tcreate failed\n");
}

/* expat with namespaces: names arrive as "URI local". */
static const char *local_in(const char *name, const char *ns)
{
	size_t n = strlen(ns);

	return strncmp(name, ns, n) == 0 && name[n] == ' ' ? name + n + 1 : NULL;
}

static void XMLCALL on_start(void *ud, const XML_Char *name, const XML_Char **attrs)
{
	const char *local;

	(void)ud;
	st.depth++;
	if (st.depth == 1) {
		for (int i = 0; attrs[i]; i += 2)
			if (strcmp(attrs[i], "id") == 0)
				snprintf(st.id, sizeof(st.id), "%s", attrs[i + 1]);
		return;
	}
	if (st.depth == 2 && (local = local_in(name, NS_COMPONENT)) && strcmp(local, "message") == 0) {
		st.in_message = 1;
		st.to[0] = st.from[0] = '\0';
		st.body_n = 0;
		for (int i = 0; attrs[i]; i += 2) {
			if (strcmp(attrs[i], "to") == 0)
				snprintf(st.to, sizeof(st.to), "%s", attrs[i + 1]);
			else if (strcmp(attrs[i], "from") == 0)
				snprintf(st.from, sizeof(st.from), "%s", attrs[i + 1]);
		}
	} else if (st.depth == 3 && st.in_message && (local = local_in(name, NS_COMPONENT)) &&
		   strcmp(local, "body") == 0)
		st.in_body = 1;
}

static void XMLCALL on_end(void *ud, const XML_Char *name)
{
	const char *local;

	(void)ud;
	if (st.depth == 3)
		st.in_body = 0;
	if (st.depth == 2) {
		if (st.in_message)
			send_message();
		else if ((local = local_in(name, NS_COMPONENT)) && strcmp(local, "handshake") == 0)
			st.linked = 1;
		else if ((local = local_in(name, NS_STREAMS)) && strcmp(local, "error") == 0)
			die("the XMPP server sent a stream error");
		st.in_message = 0;
	}
	if (--st.depth == 0)
		die("the XMPP server ended the component stream");
}

static void XMLCALL on_text(void *ud, const XML_Char *s, int len)
{
	(void)ud;
	if (st.in_body && st.body_n + (size_t)len < sizeof(st.body)) {
		memcpy(st.body + st.body_n, s, (size_t)len);
		st.body_n += (size_t)len;
	}
}

/* Reads what the link has and feeds it to expat; 0 when the server closed it. */
static int link_read(void)
{
	char buf[65536];
	ssize_t n = read(link_fd, buf, sizeof(buf));

	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return 1;
	if (n <= 0)
		return 0;
	if (XML_Parse(xp, buf, (int)n, 0) != XML_STATUS_OK)
		die("component stream: %s", XML_ErrorString(XML_GetErrorCode(xp)));
	return 1;
}

static int on_link(su_root_magic_t *magic, su_wait_t *w, su_wakeup_arg_t *arg)
{
	(void)magic;
	(void)w;
	(void)arg;
	if (!link_read())
		die("the XMPP server closed the component link");
	return 0;
}

/* XEP-0114: the stream header, the server's stream id, the handshake (blocking, before the loop). */
static void link_open(int port, const char *domain, const char *secret)
{
	char hex[2 * EVP_MAX_MD_SIZE + 1], head[512];

	link_fd = relay_connect(port);
	snprintf(head, sizeof(head), "<?xml version='1.0'?><stream:stream xmlns='%s' "
		 "xmlns:stream='%s' to='%s'>", NS_COMPONENT, NS_STREAMS, domain);
	link_write(head, strlen(head));
	while (!st.id[0])
		if (!link_read())
			die("no stream header from the XMPP server");
	size_t hex_n = relay_handshake(st.id, strlen(st.id), secret, hex);

	link_write("<handshake>", 11);
	link_write(hex, hex_n);
	link_write("</handshake>", 12);
	while (!st.linked)
		if (!link_read())
			die("the XMPP server refused the handshake");
}

/* SIGTERM and SIGINT reach the loop through a pipe. */
static void on_term(int sig)
{
	(void)sig;
	(void)!write(sig_pipe[1], "x", 1);
}

static int on_signal(su_root_magic_t *magic, su_wait_t *w, su_wakeup_arg_t *arg)
{
	(void)magic;
	(void)w;
	(void)arg;
	su_root_break(root);
	return 0;
}

int main(int argc, char **argv)
{
	char contact[64], peer[64];
	su_wait_t lw[1], sw[1];
	unsigned t1;

	relay_name = "stack_floor";
	if (argc != 6 && argc != 7)
		die("usage: stack_floor COMPONENT_PORT SECRET DOMAIN SIP_PORT PEER_SIP_PORT [T1_MS]");
	t1 = argc == 7 ? (unsigned)atoi(argv[6]) : 500;
	if (t1 == 0)
		die("T1 must be a positive number of milliseconds");
	signal(SIGPIPE, SIG_IGN);
	if (pipe(sig_pipe) != 0)
		die("pipe: %s", strerror(errno));
	sigaction(SIGTERM, &(struct sigaction){ .sa_handler = on_term }, NULL);
	sigaction(SIGINT, &(struct sigaction){ .sa_handler = on_term }, NULL);

	xp = XML_ParserCreateNS(NULL, ' ');
	if (!xp)
		die("expat: out of memory");
	XML_SetElementHandler(xp, on_start, on_end);
	XML_SetCharacterDataHandler(xp, on_text);

	su_init();
	root = su_root_create(NULL);
	if (!root)
		die("su_root_create failed");
	snprintf(contact, sizeof(contact), "sip:127.0.0.1:%d;transport=udp", atoi(argv[4]));
	snprintf(peer, sizeof(peer), "sip:127.0.0.1:%d;transport=udp", atoi(argv[5]));
	route = (url_string_t *)peer;
	agent = nta_agent_create(root, (url_string_t *)contact, NULL, NULL, NTATAG_UA(0), NTATAG_SIP_T1(t1),
				 TAG_END());
	if (!agent)
		die("cannot bind SIP on %s", contact);
	leg = nta_leg_tcreate(agent, on_request, NULL, NTATAG_NO_DIALOG(1), TAG_END());
	if (!leg)
		die("nta_leg_tcreate failed");

	link_open(atoi(argv[1]), argv[3], argv[2]);
	su_wait_create(lw, link_fd, SU_WAIT_IN);
	su_wait_create(sw, sig_pipe[0], SU_WAIT_IN);
	if (su_root_register(root, lw, on_link, NULL, 0) < 0 ||
	    su_root_register(root, sw, on_signal, NULL, 0) < 0)
		die("su_root_register failed");
	fprintf(stderr, "stack_floor: component %s up, SIP on 127.0.0.1:%s\n", argv[3], argv[4]);
	su_root_run(root);

	nta_leg_destroy(leg);
	nta_agent_destroy(agent);
	su_root_destroy(root);
	su_deinit();
	XML_ParserFree(xp);
	return 0;
}
