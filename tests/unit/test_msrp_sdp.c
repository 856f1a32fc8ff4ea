/* test_msrp_sdp.c - table-driven tests of MSRP SDP offer/answer (sip/msrp_sdp.h): real offers, refusals, answers byte for byte, the setup, direction and media type tables, round trips. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sip/msrp_sdp.h"
#include "tests/unit/test.h"

#define CRLF "\r\n"
#define HEAD4(addr) "v=0" CRLF "o=- 1 1 IN IP4 " addr CRLF "s=-" CRLF "c=IN IP4 " addr CRLF \
	"t=0 0" CRLF
#define MSG "m=message 2855 TCP/MSRP *" CRLF
#define TYPES "a=accept-types:text/plain" CRLF
#define PATH "a=path:msrp://192.0.2.1:2855/s1;tcp" CRLF
/* RFC 8122 fingerprints: SHA-256 (32 bytes) and SHA-1 (20 bytes) */
#define FP256 "4A:AD:B9:B1:3F:82:18:3B:54:02:12:DF:3E:5D:49:6B:19:E5:7C:AB:3B:A8:1F:73:AB:44:7D:" \
	"A0:28:AC:3B:21"
#define FP1 "A1:B2:C3:D4:E5:F6:07:18:29:3A:4B:5C:6D:7E:8F:90:01:12:23:34"
#define TLSMSG "m=message 2856 TCP/TLS/MSRP *" CRLF
#define TLSPATH "a=path:msrps://192.0.2.1:2856/s1;tcp" CRLF

/* the gateway's own media types */
static const char *const our_types[] = { "message/cpim", "text/plain" };
static const char *const our_wrapped[] = { "text/plain" };

/* ---- a canonical text of a parsed stream, so whole results fit in one table cell --------- */

static void dump_list(FILE *f, const char *name, char *const *v, size_t n)
{
	fprintf(f, " %s=[", name);
	for (size_t i = 0; i < n; i++)
		fprintf(f, "%s%s", i ? "|" : "", v[i]);
	fputc(']', f);
}

/* "<mline>/<nmlines> <tcp|tls> port=.. c=..[/6] <direction> setup=.. max=.. path=[..]
 *  types=[a|b] wrapped=[..] mlines=[..|..]" */
static char *dump(const struct msrp_sdp_media *m)
{
	char *s = NULL;
	size_t n;
	FILE *f = open_memstream(&s, &n);
	const char *setup = msrp_sdp_setup_name(m->setup);

	if (!f)
		abort();
	fprintf(f, "%u/%zu %s port=%u c=%s%s %s setup=%s max=%llu path=[%s]", m->mline, m->nmlines,
		m->secure ? "tls" : "tcp", m->port, m->connection_address, m->ip6 ? "/6" : "",
		m->direction, setup ? setup : "-", m->max_size, m->path);
	dump_list(f, "types", m->accept_types, m->naccept_types);
	dump_list(f, "wrapped", m->accept_wrapped_types, m->naccept_wrapped);
	dump_list(f, "mlines", m->mlines, m->nmlines);
	if (m->nfingerprints) {
		fprintf(f, " fp=[");
		for (size_t i = 0; i < m->nfingerprints; i++) {
			char text[MSRP_SDP_FINGERPRINT_TEXT];

			if (msrp_sdp_fingerprint_format(m->fingerprints[i].hash, m->fingerprints[i].digest,
							m->fingerprints[i].len, text, sizeof(text)) < 0)
				abort();
			fprintf(f, "%s%s", i ? "|" : "", text);
		}
		fputc(']', f);
	}
	fclose(f);
	return s;
}

/* Parses an exact-size heap copy, so AddressSanitizer sees any read past the end. */
static int parse(const char *body, size_t len, int tls_ok, struct msrp_sdp_media *out,
		 unsigned *mline, unsigned *nmlines, char *err, size_t errlen)
{
	char *copy = malloc(len ? len : 1);
	int r;

	if (!copy)
		abort();
	memcpy(copy, body, len);
	r = msrp_sdp_parse_offer(copy, len, tls_ok, out, mline, nmlines, err, errlen);
	free(copy);
	return r;
}

/* ---- offers that are accepted ----------------------------------------------------------------- */

static const struct {
	const char *name;
	int tls_ok;
	const char *sdp;
	const char *want;	/* dump() */
} offers[] = {
	{ "RFC 4975 8.7 Alice's offer", 0,
	  "v=0" CRLF "o=alice 2890844526 2890844527 IN IP4 alice.example.com" CRLF "s= -" CRLF
	  "c=IN IP4 alice.example.com" CRLF "t=0 0" CRLF "m=message 7654 TCP/MSRP *" CRLF
	  "a=accept-types:text/plain" CRLF "a=path:msrp://alice.example.com:7654/jshA7weztas;tcp" CRLF,
	  "0/1 tcp port=7654 c=alice.example.com sendrecv setup=- max=0 "
	  "path=[msrp://alice.example.com:7654/jshA7weztas;tcp] types=[text/plain] wrapped=[] "
	  "mlines=[message TCP/MSRP *]" },
	{ "RFC 4975 8.7 Bob's answer", 0,
	  "v=0" CRLF "o=bob 2890844612 2890844616 IN IP4 bob.example.com" CRLF "s= -" CRLF
	  "c=IN IP4 bob.example.com" CRLF "t=0 0" CRLF "m=message 12763 TCP/MSRP *" CRLF
	  "a=accept-types:text/plain" CRLF
	  "a=path:msrp://bob.example.com:12763/kjhd37s2s20w2a;tcp" CRLF,
	  "0/1 tcp port=12763 c=bob.example.com sendrecv setup=- max=0 "
	  "path=[msrp://bob.example.com:12763/kjhd37s2s20w2a;tcp] types=[text/plain] wrapped=[] "
	  "mlines=[message TCP/MSRP *]" },
	{ "RFC 4975 8.6 wrapped types and max-size, over TLS", 1,
	  "v=0" CRLF "o=alice 2890844526 2890844527 IN IP4 alice.example.com" CRLF "s= -" CRLF
	  "c=IN IP4 alice.example.com" CRLF "t=0 0" CRLF "m=message 7394 TCP/TLS/MSRP *" CRLF
	  "a=accept-types:message/cpim text/plain text/html" CRLF
	  "a=accept-wrapped-types:image/jpeg image/gif image/tiff" CRLF "a=max-size:1048576" CRLF
	  "a=path:msrps://alice.example.com:7394/2s93i9ek2a;tcp" CRLF,
	  "0/1 tls port=7394 c=alice.example.com sendrecv setup=- max=1048576 "
	  "path=[msrps://alice.example.com:7394/2s93i9ek2a;tcp] "
	  "types=[message/cpim|text/plain|text/html] wrapped=[image/jpeg|image/gif|image/tiff] "
	  "mlines=[message TCP/TLS/MSRP *]" },
	{ "relayed path, two URIs, TLS", 1,
	  HEAD4("198.51.100.7") "m=message 9876 TCP/TLS/MSRP *" CRLF
	  "a=accept-types:message/cpim" CRLF "a=accept-wrapped-types:*" CRLF
	  "a=path:msrps://relay.example.net:2855/cvjn3t4;tcp msrps://198.51.100.7:9876/abc;tcp" CRLF
	  "a=setup:actpass" CRLF,
	  "0/1 tls port=9876 c=198.51.100.7 sendrecv setup=actpass max=0 "
	  "path=[msrps://relay.example.net:2855/cvjn3t4;tcp msrps://198.51.100.7:9876/abc;tcp] "
	  "types=[message/cpim] wrapped=[*] mlines=[message TCP/TLS/MSRP *]" },
	{ "Jitsi-like: actpass, plain and CPIM", 0,
	  "v=0" CRLF "o=jitsi 0 0 IN IP4 192.168.1.20" CRLF "s=-" CRLF "c=IN IP4 192.168.1.20" CRLF
	  "t=0 0" CRLF "m=message 47000 TCP/MSRP *" CRLF "a=accept-types:text/plain message/cpim" CRLF
	  "a=path:msrp://192.168.1.20:47000/yKqx0Fx2;tcp" CRLF "a=setup:actpass" CRLF
	  "a=sendrecv" CRLF,
	  "0/1 tcp port=47000 c=192.168.1.20 sendrecv setup=actpass max=0 "
	  "path=[msrp://192.168.1.20:47000/yKqx0Fx2;tcp] types=[text/plain|message/cpim] wrapped=[] "
	  "mlines=[message TCP/MSRP *]" },
	{ "Linphone/belle-sip-like: audio then message", 0,
	  "v=0" CRLF "o=alice 3043 1519 IN IP4 192.168.1.10" CRLF "s=Talk" CRLF
	  "c=IN IP4 192.168.1.10" CRLF "t=0 0" CRLF "a=rtcp-xr:rcvr-rtt=all:10000 stat-summary=loss"
	  CRLF "m=audio 7078 RTP/AVP 96 97 0 8 101" CRLF "a=rtpmap:96 opus/48000/2" CRLF
	  "a=fmtp:96 useinbandfec=1" CRLF "a=rtpmap:97 speex/16000" CRLF
	  "a=rtpmap:101 telephone-event/8000" CRLF "m=message 7080 TCP/MSRP *" CRLF
	  "a=accept-types:message/cpim text/plain" CRLF
	  "a=accept-wrapped-types:text/plain application/im-iscomposing+xml" CRLF
	  "a=path:msrp://192.168.1.10:7080/s3cr3t;tcp" CRLF "a=setup:actpass" CRLF,
	  "1/2 tcp port=7080 c=192.168.1.10 sendrecv setup=actpass max=0 "
	  "path=[msrp://192.168.1.10:7080/s3cr3t;tcp] types=[message/cpim|text/plain] "
	  "wrapped=[text/plain|application/im-iscomposing+xml] "
	  "mlines=[audio RTP/AVP 96|message TCP/MSRP *]" },
	{ "Kamailio-proxied: c= rewritten, session attributes, relay in the path (spaces joined)", 0,
	  "v=0" CRLF "o=- 3711 3711 IN IP4 10.0.0.7" CRLF "s=-" CRLF "c=IN IP4 203.0.113.5" CRLF
	  "t=0 0" CRLF "a=nortpproxy:yes" CRLF "m=message 2855 TCP/MSRP *" CRLF
	  "a=path:msrp://203.0.113.5:2855/r3lay;tcp \t msrp://10.0.0.7:31337/c1i3nt;tcp" CRLF
	  "a=accept-types:text/plain message/cpim application/im-iscomposing+xml" CRLF
	  "a=setup:active" CRLF "a=connection:new" CRLF,
	  "0/1 tcp port=2855 c=203.0.113.5 sendrecv setup=active max=0 "
	  "path=[msrp://203.0.113.5:2855/r3lay;tcp msrp://10.0.0.7:31337/c1i3nt;tcp] "
	  "types=[text/plain|message/cpim|application/im-iscomposing+xml] wrapped=[] "
	  "mlines=[message TCP/MSRP *]" },
	{ "RCS-like: active, CPIM with IMDN inside", 0,
	  HEAD4("10.29.67.37") "m=message 20000 TCP/MSRP *" CRLF
	  "a=path:msrp://10.29.67.37:20000/1391503972255;tcp" CRLF "a=connection:new" CRLF
	  "a=setup:active" CRLF "a=accept-types:message/cpim application/im-iscomposing+xml" CRLF
	  "a=accept-wrapped-types:text/plain message/imdn+xml" CRLF "a=sendrecv" CRLF,
	  "0/1 tcp port=20000 c=10.29.67.37 sendrecv setup=active max=0 "
	  "path=[msrp://10.29.67.37:20000/1391503972255;tcp] "
	  "types=[message/cpim|application/im-iscomposing+xml] "
	  "wrapped=[text/plain|message/imdn+xml] mlines=[message TCP/MSRP *]" },
	{ "IPv6, media-level c=, audio + message + rejected video", 1,
	  "v=0" CRLF "o=- 1 1 IN IP6 2001:db8::10" CRLF "s=-" CRLF "c=IN IP6 2001:db8::10" CRLF
	  "t=0 0" CRLF "m=audio 4000 RTP/AVP 0 8" CRLF "a=sendonly" CRLF
	  "m=message 2855 TCP/MSRP *" CRLF "c=IN IP6 2001:db8::11" CRLF
	  "a=accept-types:text/*" CRLF "a=path:msrp://[2001:db8::11]:2855/v6sess;tcp" CRLF
	  "a=setup:passive" CRLF "a=recvonly" CRLF "m=video 0 RTP/AVP 31" CRLF,
	  "1/3 tcp port=2855 c=2001:db8::11/6 recvonly setup=passive max=0 "
	  "path=[msrp://[2001:db8::11]:2855/v6sess;tcp] types=[text/*] wrapped=[] "
	  "mlines=[audio RTP/AVP 0|message TCP/MSRP *|video RTP/AVP 31]" },
	{ "session-level a=setup and a=sendonly", 0,
	  HEAD4("192.0.2.1") "a=setup:passive" CRLF "a=sendonly" CRLF MSG TYPES PATH,
	  "0/1 tcp port=2855 c=192.0.2.1 sendonly setup=passive max=0 "
	  "path=[msrp://192.0.2.1:2855/s1;tcp] types=[text/plain] wrapped=[] "
	  "mlines=[message TCP/MSRP *]" },
	{ "media-level a=setup wins over the session's", 0,
	  HEAD4("192.0.2.1") "a=setup:passive" CRLF MSG TYPES PATH "a=setup:holdconn" CRLF
	  "a=inactive" CRLF,
	  "0/1 tcp port=2855 c=192.0.2.1 inactive setup=holdconn max=0 "
	  "path=[msrp://192.0.2.1:2855/s1;tcp] types=[text/plain] wrapped=[] "
	  "mlines=[message TCP/MSRP *]" },
	{ "first message stream rejected, the second used", 0,
	  HEAD4("192.0.2.1") "m=message 0 TCP/MSRP *" CRLF TYPES PATH MSG TYPES
	  "a=path:msrp://192.0.2.1:2855/s2;tcp" CRLF,
	  "1/2 tcp port=2855 c=192.0.2.1 sendrecv setup=- max=0 "
	  "path=[msrp://192.0.2.1:2855/s2;tcp] types=[text/plain] wrapped=[] "
	  "mlines=[message TCP/MSRP *|message TCP/MSRP *]" },
	{ "TLS stream skipped without TLS, TCP one used", 0,
	  HEAD4("192.0.2.1") "m=message 2856 TCP/TLS/MSRP *" CRLF TYPES
	  "a=path:msrps://192.0.2.1:2856/t;tcp" CRLF MSG TYPES PATH,
	  "1/2 tcp port=2855 c=192.0.2.1 sendrecv setup=- max=0 "
	  "path=[msrp://192.0.2.1:2855/s1;tcp] types=[text/plain] wrapped=[] "
	  "mlines=[message TCP/TLS/MSRP *|message TCP/MSRP *]" },
	{ "WebSocket and data channel streams skipped", 0,
	  HEAD4("192.0.2.1") "m=message 443 TCP/WSS/MSRP *" CRLF TYPES
	  "a=path:msrps://df7jal5s0q.invalid/98cjs;ws" CRLF
	  "m=application 9 UDP/DTLS/SCTP webrtc-datachannel" CRLF MSG TYPES PATH,
	  "2/3 tcp port=2855 c=192.0.2.1 sendrecv setup=- max=0 "
	  "path=[msrp://192.0.2.1:2855/s1;tcp] types=[text/plain] wrapped=[] "
	  "mlines=[message TCP/WSS/MSRP *|application UDP/DTLS/SCTP webrtc-datachannel|"
	  "message TCP/MSRP *]" },
	{ "wildcards, runs of spaces, LF line ends, upper-case tokens", 0,
	  "v=0\no=- 1 1 IN IP4 192.0.2.1\ns=-\nc=IN IP4 192.0.2.1\nt=0 0\n"
	  "m=message 2855 tcp/msrp *\na=accept-types:*  text/*\tmessage/CPIM\n"
	  "a=path:MSRP://user@Host-1.example:2855/a+b=/c;tcp;x=1\na=setup:ACTPASS\n",
	  "0/1 tcp port=2855 c=192.0.2.1 sendrecv setup=actpass max=0 "
	  "path=[MSRP://user@Host-1.example:2855/a+b=/c;tcp;x=1] types=[*|text/*|message/CPIM] "
	  "wrapped=[] mlines=[message tcp/msrp *]" },
	{ "path URI without a port, max-size 0", 0,
	  HEAD4("192.0.2.1") MSG TYPES "a=path:msrp://example.com/x;tcp" CRLF "a=max-size:0" CRLF,
	  "0/1 tcp port=2855 c=192.0.2.1 sendrecv setup=- max=0 path=[msrp://example.com/x;tcp] "
	  "types=[text/plain] wrapped=[] mlines=[message TCP/MSRP *]" },
	{ "TLS, media-level sha-256 fingerprint (RFC 8122)", 1,
	  HEAD4("192.0.2.1") TLSMSG TYPES TLSPATH "a=fingerprint:sha-256 " FP256 CRLF,
	  "0/1 tls port=2856 c=192.0.2.1 sendrecv setup=- max=0 "
	  "path=[msrps://192.0.2.1:2856/s1;tcp] types=[text/plain] wrapped=[] "
	  "mlines=[message TCP/TLS/MSRP *] fp=[sha-256 " FP256 "]" },
	{ "TLS, session-level fingerprint, lower-case hex and hash name", 1,
	  HEAD4("192.0.2.1") "a=fingerprint:SHA-1 a1:b2:c3:d4:e5:f6:07:18:29:3a:4b:5c:6d:7e:8f:90:"
	  "01:12:23:34" CRLF TLSMSG TYPES TLSPATH,
	  "0/1 tls port=2856 c=192.0.2.1 sendrecv setup=- max=0 "
	  "path=[msrps://192.0.2.1:2856/s1;tcp] types=[text/plain] wrapped=[] "
	  "mlines=[message TCP/TLS/MSRP *] fp=[sha-1 " FP1 "]" },
	{ "TLS, media level wins; md5 and unknown hash functions skipped", 1,
	  HEAD4("192.0.2.1") "a=fingerprint:sha-1 " FP1 CRLF TLSMSG TYPES TLSPATH
	  "a=fingerprint:md5 00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF" CRLF
	  "a=fingerprint:sha-256 " FP256 CRLF "a=fingerprint:x-future 01:02" CRLF
	  "a=fingerprint:sha-1 " FP1 CRLF,
	  "0/1 tls port=2856 c=192.0.2.1 sendrecv setup=- max=0 "
	  "path=[msrps://192.0.2.1:2856/s1;tcp] types=[text/plain] wrapped=[] "
	  "mlines=[message TCP/TLS/MSRP *] fp=[sha-256 " FP256 "|sha-1 " FP1 "]" },
	{ "a=fingerprint in a TCP/MSRP stream is not read", 0,
	  HEAD4("192.0.2.1") MSG TYPES PATH "a=fingerprint:sha-256 not-hex" CRLF,
	  "0/1 tcp port=2855 c=192.0.2.1 sendrecv setup=- max=0 "
	  "path=[msrp://192.0.2.1:2855/s1;tcp] types=[text/plain] wrapped=[] "
	  "mlines=[message TCP/MSRP *]" },
	{ "largest max-size", 0,
	  HEAD4("192.0.2.1") MSG TYPES PATH "a=max-size:18446744073709551615" CRLF,
	  "0/1 tcp port=2855 c=192.0.2.1 sendrecv setup=- max=18446744073709551615 "
	  "path=[msrp://192.0.2.1:2855/s1;tcp] types=[text/plain] wrapped=[] "
	  "mlines=[message TCP/MSRP *]" },
};

static void test_offers(void)
{
	for (size_t i = 0; i < NELEM(offers); i++) {
		struct msrp_sdp_media m;
		unsigned ml = 99, nml = 99;
		char err[200] = "";
		int r = parse(offers[i].sdp, strlen(offers[i].sdp), offers[i].tls_ok, &m, &ml, &nml,
			      err, sizeof(err));

		CHECK_INT(r, 0, "offer \"%s\" accepted (%s)", offers[i].name, err);
		if (r == 0) {
			char *d = dump(&m);

			CHECK_STR(d, offers[i].want, "offer \"%s\"", offers[i].name);
			CHECK(ml == m.mline && nml == m.nmlines, "offer \"%s\": out-parameters",
			      offers[i].name);
			free(d);
			msrp_sdp_media_clear(&m);
			CHECK(m.path == NULL && m.mlines == NULL, "offer \"%s\": cleared",
			      offers[i].name);
		}
		/* the out-parameters are optional */
		r = parse(offers[i].sdp, strlen(offers[i].sdp), offers[i].tls_ok, &m, NULL, NULL,
			  NULL, 0);
		CHECK_INT(r, 0, "offer \"%s\" without out-parameters", offers[i].name);
		msrp_sdp_media_clear(&m);
	}
	msrp_sdp_media_clear(NULL);
}

/* ---- offers that are refused, each with its reason ------------------------------------------ */

static const struct {
	const char *name;
	int tls_ok;
	const char *sdp;	/* NULL: see test_refusals() */
	const char *reason;	/* a substring of the reason */
} refusals[] = {
	{ "empty body", 0, "", "no SDP body" },
	{ "not SDP", 0, "hello world" CRLF, "not SDP" },
	{ "no c= anywhere (strict)", 0,
	  "v=0" CRLF "o=- 1 1 IN IP4 192.0.2.1" CRLF "s=-" CRLF "t=0 0" CRLF MSG TYPES PATH,
	  "not SDP" },
	{ "no o= (strict)", 0, "v=0" CRLF "s=-" CRLF "c=IN IP4 192.0.2.1" CRLF "t=0 0" CRLF MSG,
	  "not SDP" },
	{ "no m= line", 0, HEAD4("192.0.2.1"), "no m= line" },
	{ "audio only", 0, HEAD4("192.0.2.1") "m=audio 4000 RTP/AVP 0" CRLF, "no m=message stream" },
	{ "TLS offered, TLS off", 0,
	  HEAD4("192.0.2.1") "m=message 2855 TCP/TLS/MSRP *" CRLF TYPES
	  "a=path:msrps://192.0.2.1:2855/s1;tcp" CRLF,
	  "MSRP over TLS is not enabled" },
	{ "WebSocket transport", 1,
	  HEAD4("192.0.2.1") "m=message 443 TCP/WSS/MSRP *" CRLF TYPES
	  "a=path:msrps://x.invalid/s;ws" CRLF,
	  "unsupported message transport TCP/WSS/MSRP" },
	{ "UDP", 0, HEAD4("192.0.2.1") "m=message 2855 UDP/MSRP *" CRLF TYPES PATH,
	  "unsupported message transport" },
	{ "port 0", 0, HEAD4("192.0.2.1") "m=message 0 TCP/MSRP *" CRLF TYPES PATH, "port 0" },
	{ "format not *", 0, HEAD4("192.0.2.1") "m=message 2855 TCP/MSRP cpim" CRLF TYPES PATH,
	  "format list is not" },
	{ "format of a pre-RFC draft", 0,
	  HEAD4("192.0.2.1") "m=message 2855 TCP/MSRP text/plain" CRLF TYPES PATH, "malformed m= line" },
	/* Sofia-SIP's sdp_parse() would allocate without end on these (see mlines_check()) */
	{ "format ':' after '*'", 0, HEAD4("192.0.2.1") "m=message 2855 TCP/MSRP * :" CRLF TYPES PATH,
	  "malformed m= line" },
	{ "format starting with '/' in a UDP stream", 0,
	  HEAD4("192.0.2.1") "m=audio 0 UDP /a" CRLF MSG TYPES PATH, "malformed m= line" },
	{ "format ';' with CR line ends", 0,
	  "v=0\ro=- 1 1 IN IP4 192.0.2.1\rs=-\rc=IN IP4 192.0.2.1\rt=0 0\r"
	  "m=message 2855 TCP/MSRP * ;\r", "malformed m= line" },
	{ "format URI", 0, HEAD4("192.0.2.1") "m=message 2855 TCP/MSRP *cp msrps://h:1/a;tcp" CRLF,
	  "malformed m= line" },
	{ "port running into the proto", 0,
	  HEAD4("192.0.2.1") "m=message 28e:2855/a+b=/c;tcp;x=1" CRLF "a=setup:ACTPASS" CRLF,
	  "malformed m= line" },
	{ "m= line without a format", 0, HEAD4("192.0.2.1") "m=message 2855 TCP/MSRP" CRLF TYPES PATH,
	  "malformed m= line" },
	{ "empty proto part", 0, HEAD4("192.0.2.1") "m=message 2855 TCP//MSRP *" CRLF TYPES PATH,
	  "malformed m= line" },
	{ "port count without digits", 0, HEAD4("192.0.2.1") "m=message 2855/ TCP/MSRP *" CRLF TYPES
	  PATH, "malformed m= line" },
	{ "no a=path", 0, HEAD4("192.0.2.1") MSG TYPES, "no a=path" },
	{ "two a=path", 0, HEAD4("192.0.2.1") MSG TYPES PATH PATH, "several a=path" },
	{ "a=path without value", 0, HEAD4("192.0.2.1") MSG TYPES "a=path" CRLF, "a=path" },
	{ "a=path empty", 0, HEAD4("192.0.2.1") MSG TYPES "a=path: " CRLF, "a=path" },
	{ "path http:", 0, HEAD4("192.0.2.1") MSG TYPES "a=path:http://192.0.2.1/x;tcp" CRLF,
	  "not an MSRP URI" },
	{ "path sip:", 0, HEAD4("192.0.2.1") MSG TYPES "a=path:sip:alice@example.com" CRLF,
	  "not an MSRP URI" },
	{ "msrps: in TCP/MSRP", 0,
	  HEAD4("192.0.2.1") MSG TYPES "a=path:msrps://192.0.2.1:2855/s;tcp" CRLF,
	  "msrps: URI in a TCP/MSRP stream" },
	{ "msrp: in TCP/TLS/MSRP", 1,
	  HEAD4("192.0.2.1") "m=message 2855 TCP/TLS/MSRP *" CRLF TYPES PATH,
	  "msrp: URI in a TCP/TLS/MSRP stream" },
	{ "relay msrps: then msrp:", 1,
	  HEAD4("192.0.2.1") "m=message 2855 TCP/TLS/MSRP *" CRLF TYPES
	  "a=path:msrps://relay.example/r;tcp msrp://192.0.2.1:2855/s;tcp" CRLF,
	  "msrp: URI in a TCP/TLS/MSRP stream" },
	{ "no transport", 0, HEAD4("192.0.2.1") MSG TYPES "a=path:msrp://192.0.2.1:2855/s1" CRLF,
	  "no transport" },
	{ "no session-id in the last URI", 0,
	  HEAD4("192.0.2.1") MSG TYPES "a=path:msrp://192.0.2.1:2855/s;tcp msrp://relay:2855;tcp" CRLF,
	  "no session-id" },
	{ "empty session-id", 0, HEAD4("192.0.2.1") MSG TYPES "a=path:msrp://192.0.2.1:2855/;tcp" CRLF,
	  "empty session-id" },
	{ "no host", 0, HEAD4("192.0.2.1") MSG TYPES "a=path:msrp://:2855/s;tcp" CRLF, "no host" },
	{ "port too large", 0, HEAD4("192.0.2.1") MSG TYPES "a=path:msrp://h:65536/s;tcp" CRLF,
	  "bad port" },
	{ "port of six digits", 0, HEAD4("192.0.2.1") MSG TYPES "a=path:msrp://h:000001/s;tcp" CRLF,
	  "bad port" },
	{ "empty port", 0, HEAD4("192.0.2.1") MSG TYPES "a=path:msrp://h:/s;tcp" CRLF, "bad port" },
	{ "bad IPv6 host", 0, HEAD4("192.0.2.1") MSG TYPES "a=path:msrp://[zz]:2855/s;tcp" CRLF,
	  "bad IPv6 host" },
	{ "unclosed IPv6 host", 0, HEAD4("192.0.2.1") MSG TYPES "a=path:msrp://[2001:db8::1/s;tcp" CRLF,
	  "bad IPv6 host" },
	{ "bad character in session-id", 0,
	  HEAD4("192.0.2.1") MSG TYPES "a=path:msrp://h:2855/s<1>;tcp" CRLF, "no transport" },
	{ "empty URI parameter", 0, HEAD4("192.0.2.1") MSG TYPES "a=path:msrp://h:2855/s;tcp;" CRLF,
	  "empty parameter" },
	{ "trailing junk", 0, HEAD4("192.0.2.1") MSG TYPES "a=path:msrp://h:2855/s;tcp?x" CRLF,
	  "bad character" },
	{ "bad userinfo", 0, HEAD4("192.0.2.1") MSG TYPES "a=path:msrp://a<b@h:2855/s;tcp" CRLF,
	  "bad userinfo" },
	{ "17 URIs in a=path", 0,
	  HEAD4("192.0.2.1") MSG TYPES "a=path:msrp://h/a;tcp msrp://h/a;tcp msrp://h/a;tcp "
	  "msrp://h/a;tcp msrp://h/a;tcp msrp://h/a;tcp msrp://h/a;tcp msrp://h/a;tcp msrp://h/a;tcp "
	  "msrp://h/a;tcp msrp://h/a;tcp msrp://h/a;tcp msrp://h/a;tcp msrp://h/a;tcp msrp://h/a;tcp "
	  "msrp://h/a;tcp msrp://h/a;tcp" CRLF,
	  "too many URIs" },
	{ "no a=accept-types", 0, HEAD4("192.0.2.1") MSG PATH, "no a=accept-types" },
	{ "empty a=accept-types", 0, HEAD4("192.0.2.1") MSG PATH "a=accept-types:" CRLF,
	  "bad a=accept-types" },
	{ "accept-types without subtype", 0, HEAD4("192.0.2.1") MSG PATH "a=accept-types:text" CRLF,
	  "bad a=accept-types" },
	{ "accept-types */plain", 0, HEAD4("192.0.2.1") MSG PATH "a=accept-types:*/plain" CRLF,
	  "bad a=accept-types" },
	{ "accept-types with parameters", 0,
	  HEAD4("192.0.2.1") MSG PATH "a=accept-types:text/plain;charset=utf-8" CRLF,
	  "bad a=accept-types" },
	{ "two a=accept-types", 0, HEAD4("192.0.2.1") MSG PATH TYPES TYPES, "repeated" },
	{ "bad a=accept-wrapped-types", 0,
	  HEAD4("192.0.2.1") MSG PATH TYPES "a=accept-wrapped-types:text/" CRLF,
	  "bad a=accept-wrapped-types" },
	{ "max-size not a number", 0, HEAD4("192.0.2.1") MSG PATH TYPES "a=max-size:lots" CRLF,
	  "bad a=max-size" },
	{ "max-size negative", 0, HEAD4("192.0.2.1") MSG PATH TYPES "a=max-size:-1" CRLF,
	  "bad a=max-size" },
	{ "max-size overflows", 0,
	  HEAD4("192.0.2.1") MSG PATH TYPES "a=max-size:18446744073709551616" CRLF, "bad a=max-size" },
	{ "max-size without value", 0, HEAD4("192.0.2.1") MSG PATH TYPES "a=max-size" CRLF,
	  "bad a=max-size" },
	{ "unknown a=setup", 0, HEAD4("192.0.2.1") MSG PATH TYPES "a=setup:sideways" CRLF,
	  "bad a=setup" },
	{ "a=setup without value", 0, HEAD4("192.0.2.1") MSG PATH TYPES "a=setup" CRLF,
	  "bad a=setup" },
	{ "two a=setup", 0,
	  HEAD4("192.0.2.1") MSG PATH TYPES "a=setup:active" CRLF "a=setup:passive" CRLF,
	  "repeated" },
	{ "bad session-level a=setup", 0,
	  HEAD4("192.0.2.1") "a=setup:both" CRLF MSG PATH TYPES, "bad a=setup" },
	{ "the first unusable stream's reason wins", 0,
	  HEAD4("192.0.2.1") MSG TYPES "m=message 2856 TCP/MSRP *" CRLF PATH, "no a=path" },
	{ "too many m= lines", 0,
	  HEAD4("192.0.2.1")
	  "m=audio 0 RTP/AVP 0" CRLF "m=audio 0 RTP/AVP 0" CRLF "m=audio 0 RTP/AVP 0" CRLF
	  "m=audio 0 RTP/AVP 0" CRLF "m=audio 0 RTP/AVP 0" CRLF "m=audio 0 RTP/AVP 0" CRLF
	  "m=audio 0 RTP/AVP 0" CRLF "m=audio 0 RTP/AVP 0" CRLF "m=audio 0 RTP/AVP 0" CRLF
	  "m=audio 0 RTP/AVP 0" CRLF "m=audio 0 RTP/AVP 0" CRLF "m=audio 0 RTP/AVP 0" CRLF
	  "m=audio 0 RTP/AVP 0" CRLF "m=audio 0 RTP/AVP 0" CRLF "m=audio 0 RTP/AVP 0" CRLF
	  "m=audio 0 RTP/AVP 0" CRLF "m=audio 0 RTP/AVP 0" CRLF "m=audio 0 RTP/AVP 0" CRLF
	  "m=audio 0 RTP/AVP 0" CRLF "m=audio 0 RTP/AVP 0" CRLF "m=audio 0 RTP/AVP 0" CRLF
	  "m=audio 0 RTP/AVP 0" CRLF "m=audio 0 RTP/AVP 0" CRLF "m=audio 0 RTP/AVP 0" CRLF
	  "m=audio 0 RTP/AVP 0" CRLF "m=audio 0 RTP/AVP 0" CRLF "m=audio 0 RTP/AVP 0" CRLF
	  "m=audio 0 RTP/AVP 0" CRLF "m=audio 0 RTP/AVP 0" CRLF "m=audio 0 RTP/AVP 0" CRLF
	  "m=audio 0 RTP/AVP 0" CRLF "m=audio 0 RTP/AVP 0" CRLF MSG TYPES PATH,
	  "more than 32 m= lines" },
	{ "fingerprint without a hash function", 1,
	  HEAD4("192.0.2.1") TLSMSG TYPES TLSPATH "a=fingerprint:" FP256 CRLF, "bad a=fingerprint" },
	{ "fingerprint without a value", 1,
	  HEAD4("192.0.2.1") TLSMSG TYPES TLSPATH "a=fingerprint" CRLF, "bad a=fingerprint" },
	{ "fingerprint of the wrong length for sha-256", 1,
	  HEAD4("192.0.2.1") TLSMSG TYPES TLSPATH "a=fingerprint:sha-256 " FP1 CRLF,
	  "bad a=fingerprint" },
	{ "fingerprint with a trailing colon", 1,
	  HEAD4("192.0.2.1") TLSMSG TYPES TLSPATH "a=fingerprint:sha-1 " FP1 ":" CRLF,
	  "bad a=fingerprint" },
	{ "fingerprint with a single hex digit", 1,
	  HEAD4("192.0.2.1") TLSMSG TYPES TLSPATH "a=fingerprint:sha-1 A:B2" CRLF,
	  "bad a=fingerprint" },
	{ "fingerprint with dashes", 1,
	  HEAD4("192.0.2.1") TLSMSG TYPES TLSPATH
	  "a=fingerprint:sha-1 A1-B2-C3-D4-E5-F6-07-18-29-3A-4B-5C-6D-7E-8F-90-01-12-23-34" CRLF,
	  "bad a=fingerprint" },
	{ "fingerprint with two spaces", 1,
	  HEAD4("192.0.2.1") TLSMSG TYPES TLSPATH "a=fingerprint:sha-1  " FP1 CRLF,
	  "bad a=fingerprint" },
	{ "fingerprint longer than any digest", 1,
	  HEAD4("192.0.2.1") TLSMSG TYPES TLSPATH "a=fingerprint:x-long " FP256 ":" FP256 ":00" CRLF,
	  "bad a=fingerprint" },
	{ "bad session-level fingerprint", 1,
	  HEAD4("192.0.2.1") "a=fingerprint:sha-256 zz" CRLF TLSMSG TYPES TLSPATH,
	  "bad a=fingerprint" },
	{ "md5 fingerprint only (RFC 8122 forbids it)", 1,
	  HEAD4("192.0.2.1") TLSMSG TYPES TLSPATH
	  "a=fingerprint:md5 00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF" CRLF,
	  "no hash function the gateway checks" },
	{ "nine fingerprints", 1,
	  HEAD4("192.0.2.1") TLSMSG TYPES TLSPATH
	  "a=fingerprint:sha-1 " FP1 CRLF "a=fingerprint:sha-1 " FP1 CRLF "a=fingerprint:sha-1 " FP1
	  CRLF "a=fingerprint:sha-1 " FP1 CRLF "a=fingerprint:sha-1 " FP1 CRLF "a=fingerprint:sha-1 "
	  FP1 CRLF "a=fingerprint:sha-1 " FP1 CRLF "a=fingerprint:sha-1 " FP1 CRLF
	  "a=fingerprint:sha-1 " FP1 CRLF,
	  "too many a=fingerprint" },
	{ "NUL byte", 0, NULL, "NUL byte" },
	{ "too long", 0, NULL, "longer than 32768 bytes" },
};

static void test_refusals(void)
{
	for (size_t i = 0; i < NELEM(refusals); i++) {
		struct msrp_sdp_media m;
		unsigned ml = 99, nml = 99;
		char err[200] = "", *body;
		size_t len;
		int r;

		if (refusals[i].sdp) {
			body = strdup(refusals[i].sdp);
			len = strlen(body);
		} else if (strstr(refusals[i].reason, "NUL")) {
			static const char ok[] = HEAD4("192.0.2.1") MSG TYPES PATH;

			len = sizeof(ok) - 1;
			body = malloc(len);
			memcpy(body, ok, len);
			body[len - 3] = '\0';
		} else {
			static const char ok[] = HEAD4("192.0.2.1") MSG TYPES PATH;

			len = MSRP_SDP_MAX_LEN + 1;
			body = malloc(len);
			memset(body, 'x', len);
			memcpy(body, ok, sizeof(ok) - 1);
			memcpy(body + len - 8, "a=x:y" CRLF, 7);
		}
		if (!body)
			abort();
		memset(&m, 0x55, sizeof(m));
		r = parse(body, len, refusals[i].tls_ok, &m, &ml, &nml, err, sizeof(err));
		CHECK_INT(r, -1, "refusal \"%s\"", refusals[i].name);
		CHECK(strstr(err, refusals[i].reason) != NULL, "refusal \"%s\": reason \"%s\", want \"%s\"",
		      refusals[i].name, err, refusals[i].reason);
		CHECK(!strchr(err, '\n') && !strchr(err, '\r'), "refusal \"%s\": one line",
		      refusals[i].name);
		CHECK(m.path == NULL && m.accept_types == NULL && m.mlines == NULL &&
		      m.connection_address == NULL && ml == 0 && nml == 0,
		      "refusal \"%s\": nothing returned", refusals[i].name);
		/* a tiny error buffer, and none at all */
		r = parse(body, len, refusals[i].tls_ok, &m, NULL, NULL, err, 4);
		CHECK(r == -1 && strlen(err) <= 3, "refusal \"%s\" with a 4 byte buffer",
		      refusals[i].name);
		CHECK_INT(parse(body, len, refusals[i].tls_ok, &m, NULL, NULL, NULL, 0), -1,
			  "refusal \"%s\" without a buffer", refusals[i].name);
		free(body);
	}
	/* at the size limit exactly, a body still parses */
	{
		static const char ok[] = HEAD4("192.0.2.1") MSG TYPES PATH;
		size_t len = MSRP_SDP_MAX_LEN, at = sizeof(ok) - 1;
		char *body = malloc(len);
		struct msrp_sdp_media m;

		if (!body)
			abort();
		memcpy(body, ok, at);
		/* pad with a=x lines of at most 80 bytes */
		while (at < len) {
			size_t n = len - at > 80 ? 80 : len - at;

			if (n < 6) {	/* too short for a line: widen the previous one */
				memset(body + at - 2, 'y', n);
				memcpy(body + at - 2 + n, CRLF, 2);
				at += n;
				break;
			}
			memcpy(body + at, "a=x:", 4);
			memset(body + at + 4, 'y', n - 6);
			memcpy(body + at + n - 2, CRLF, 2);
			at += n;
		}
		CHECK_INT(parse(body, len, 0, &m, NULL, NULL, NULL, 0), 0, "a body of exactly %d bytes",
			  MSRP_SDP_MAX_LEN);
		msrp_sdp_media_clear(&m);
		free(body);
	}
	CHECK_INT(msrp_sdp_parse_offer(NULL, 10, 0, &(struct msrp_sdp_media){ 0 }, NULL, NULL, NULL,
				       0), -1, "NULL body");
}

/* ---- the setup tables: every row of msrp_sdp.c's tables has a row here ---------------------- */

#define NONE_ MSRP_SETUP_NONE
#define ACT MSRP_SETUP_ACTIVE
#define PAS MSRP_SETUP_PASSIVE
#define AP MSRP_SETUP_ACTPASS
#define HOLD MSRP_SETUP_HOLDCONN

static const struct {
	enum msrp_setup offered;
	int prefer_active;
	enum msrp_setup answer;
} answer_rows[] = {
	{ NONE_, 0, PAS }, { NONE_, 1, PAS }, { ACT, 0, PAS }, { ACT, 1, PAS }, { PAS, 0, ACT },
	{ PAS, 1, ACT }, { AP, 0, PAS }, { AP, 1, ACT }, { HOLD, 0, HOLD }, { HOLD, 1, HOLD },
};

static const struct {
	enum msrp_setup offered, answered, ours;
} offer_rows[] = {
	{ AP, ACT, PAS }, { AP, PAS, ACT }, { AP, NONE_, ACT }, { AP, HOLD, HOLD },
	{ ACT, PAS, ACT }, { ACT, NONE_, ACT }, { PAS, ACT, PAS }, { NONE_, PAS, ACT },
	{ NONE_, NONE_, ACT }, { HOLD, HOLD, HOLD },
};

static void test_setup(void)
{
	enum msrp_setup o, a, ours;
	int pa;
	size_t n;

	for (n = 0; msrp_sdp_answer_setup_row(n, &o, &pa, &a) == 0; n++) {
		CHECK(n < NELEM(answer_rows), "answer table row %zu has a test row", n);
		if (n < NELEM(answer_rows))
			CHECK(o == answer_rows[n].offered && pa == answer_rows[n].prefer_active &&
			      a == answer_rows[n].answer, "answer table row %zu", n);
	}
	CHECK_INT(n, NELEM(answer_rows), "answer table: number of rows");
	for (size_t i = 0; i < NELEM(answer_rows); i++)
		CHECK_INT(msrp_sdp_answer_setup(answer_rows[i].offered, answer_rows[i].prefer_active),
			  answer_rows[i].answer, "answer to %s, prefer_active %d",
			  msrp_sdp_setup_name(answer_rows[i].offered) ?
			  msrp_sdp_setup_name(answer_rows[i].offered) : "none",
			  answer_rows[i].prefer_active);
	CHECK_INT(msrp_sdp_answer_setup(AP, 7), ACT, "prefer_active is a boolean");
	CHECK_INT(msrp_sdp_answer_setup((enum msrp_setup)42, 0), PAS, "out-of-range offer");

	for (n = 0; msrp_sdp_offer_result_row(n, &o, &a, &ours) == 0; n++) {
		CHECK(n < NELEM(offer_rows), "offerer table row %zu has a test row", n);
		if (n < NELEM(offer_rows))
			CHECK(o == offer_rows[n].offered && a == offer_rows[n].answered &&
			      ours == offer_rows[n].ours, "offerer table row %zu", n);
	}
	CHECK_INT(n, NELEM(offer_rows), "offerer table: number of rows");
	/* every combination: valid exactly when it has a row */
	for (int x = NONE_; x <= HOLD; x++)
		for (int y = NONE_; y <= HOLD; y++) {
			size_t k;
			int r;

			for (k = 0; k < NELEM(offer_rows) && !(offer_rows[k].offered == (enum msrp_setup)x &&
							       offer_rows[k].answered == (enum msrp_setup)y);
			     k++)
				;
			ours = (enum msrp_setup)99;
			r = msrp_sdp_offer_result((enum msrp_setup)x, (enum msrp_setup)y, &ours);
			if (k < NELEM(offer_rows))
				CHECK(r == 0 && ours == offer_rows[k].ours, "offer %d answered %d", x, y);
			else
				CHECK(r == -1 && ours == (enum msrp_setup)99, "offer %d answered %d invalid",
				      x, y);
		}
	/* the answerer's table and the offerer's agree: whatever we answer, the offerer accepts */
	for (size_t i = 0; i < NELEM(answer_rows); i++) {
		enum msrp_setup offered = answer_rows[i].offered, answer = answer_rows[i].answer;

		CHECK_INT(msrp_sdp_offer_result(offered, answer, &ours), 0,
			  "answer row %zu is a valid answer", i);
		CHECK(ours != answer || answer == HOLD, "answer row %zu: the roles differ", i);
	}

	static const struct {
		const char *value;
		int setup;
	} names[] = {
		{ "active", ACT }, { "passive", PAS }, { "actpass", AP }, { "holdconn", HOLD },
		{ "Active", ACT }, { "HOLDCONN", HOLD }, { NULL, NONE_ }, { "", -1 }, { "act", -1 },
		{ "active ", -1 }, { "none", -1 },
	};
	for (size_t i = 0; i < NELEM(names); i++)
		CHECK_INT(msrp_sdp_setup_parse(names[i].value), names[i].setup, "setup \"%s\"",
			  names[i].value ? names[i].value : "(null)");
	CHECK_STR(msrp_sdp_setup_name(NONE_), NULL, "none has no name");
	CHECK_STR(msrp_sdp_setup_name((enum msrp_setup)42), NULL, "out of range has no name");
	for (int s = ACT; s <= HOLD; s++)
		CHECK_INT(msrp_sdp_setup_parse(msrp_sdp_setup_name((enum msrp_setup)s)), s,
			  "setup %d by name", s);
}

static void test_direction(void)
{
	static const struct {
		const char *offered, *answer;
	} rows[] = {
		{ "sendrecv", "sendrecv" }, { "sendonly", "recvonly" }, { "recvonly", "sendonly" },
		{ "inactive", "inactive" }, { "SendOnly", "recvonly" }, { "both", NULL }, { "", NULL },
		{ NULL, NULL },
	};

	for (size_t i = 0; i < NELEM(rows); i++)
		CHECK_STR(msrp_sdp_answer_direction(rows[i].offered), rows[i].answer,
			  "direction answering %s", rows[i].offered ? rows[i].offered : "(null)");
}

/* ---- media types ------------------------------------------------------------------------------ */

static void test_types(void)
{
	static const struct {
		const char *ours, *theirs, *want;	/* space separated; want "-" for none */
	} rows[] = {
		{ "message/cpim text/plain", "text/plain", "text/plain" },
		{ "message/cpim text/plain", "text/plain message/cpim", "message/cpim text/plain" },
		{ "message/cpim text/plain", "*", "message/cpim text/plain" },
		{ "message/cpim text/plain", "text/*", "text/plain" },
		{ "message/cpim text/plain", "TEXT/PLAIN", "text/plain" },
		{ "message/cpim text/plain", "text/html image/jpeg", "-" },
		{ "message/cpim text/plain", "application/im-iscomposing+xml", "-" },
		{ "*", "text/plain text/html", "text/plain text/html" },
		{ "*", "text/*", "text/*" },
		{ "text/*", "*", "text/*" },
		{ "text/*", "text/plain text/html image/gif", "text/plain text/html" },
		{ "text/*", "text/*", "text/*" },
		{ "text/plain text/*", "text/plain", "text/plain" },
		{ "text/plain", "text/plain text/plain", "text/plain" },
		{ "text/plain", "texts/plain text/plains", "-" },
		{ "text/plain", "", "-" },
		{ "", "text/plain", "-" },
	};

	for (size_t i = 0; i < NELEM(rows); i++) {
		char *o = strdup(rows[i].ours), *t = strdup(rows[i].theirs), *ov[8], *tv[8], *save;
		size_t no = 0, nt = 0, nout = 99;
		char **out = (char **)1, got[256] = "";
		int r;

		for (char *w = strtok_r(o, " ", &save); w && no < 8; w = strtok_r(NULL, " ", &save))
			ov[no++] = w;
		for (char *w = strtok_r(t, " ", &save); w && nt < 8; w = strtok_r(NULL, " ", &save))
			tv[nt++] = w;
		r = msrp_sdp_types_intersect((const char *const *)ov, no, tv, nt, &out, &nout);
		for (size_t k = 0; k < nout && out; k++)
			snprintf(got + strlen(got), sizeof(got) - strlen(got), "%s%s", k ? " " : "",
				 out[k]);
		if (strcmp(rows[i].want, "-") == 0) {
			CHECK(r == -1 && out == NULL && nout == 0, "types %s & %s: none (got %s)",
			      rows[i].ours, rows[i].theirs, got);
		} else {
			CHECK_INT(r, 0, "types %s & %s", rows[i].ours, rows[i].theirs);
			CHECK_STR(got, rows[i].want, "types %s & %s", rows[i].ours, rows[i].theirs);
		}
		msrp_sdp_strv_free(out, nout);
		free(o);
		free(t);
	}
	msrp_sdp_strv_free(NULL, 3);

	static const struct {
		const char *range, *type;
		int match;
	} matches[] = {
		{ "*", "text/plain", 1 },
		{ "*", "message/cpim", 1 },
		{ "text/*", "text/plain", 1 },
		{ "text/*", "Text/HTML", 1 },
		{ "text/*", "message/cpim", 0 },
		{ "text/plain", "text/plain", 1 },
		{ "text/plain", "text/plain;charset=UTF-8", 1 },
		{ "text/plain", " text/plain ; charset=UTF-8", 1 },
		{ "text/plain", "TEXT/PLAIN", 1 },
		{ "text/plain", "text/plainx", 0 },
		{ "text/plain", "text/plai", 0 },
		{ "text/plain", "text/html", 0 },
		{ "message/cpim", "message/cpim", 1 },
		{ "*", "text/*", 0 },		/* a Content-Type is concrete */
		{ "*", "", 0 },
		{ "*", "text", 0 },
		{ "text", "text/plain", 0 },	/* not a range */
		{ NULL, "text/plain", 0 },
		{ "*", NULL, 0 },
	};
	for (size_t i = 0; i < NELEM(matches); i++)
		CHECK_INT(msrp_sdp_type_matches(matches[i].range, matches[i].type), matches[i].match,
			  "range %s covers %s", matches[i].range ? matches[i].range : "(null)",
			  matches[i].type ? matches[i].type : "(null)");

	char *negotiated[] = { "message/cpim", "text/*" };
	CHECK_INT(msrp_sdp_type_accepted(negotiated, 2, "text/html"), 1, "accepted text/html");
	CHECK_INT(msrp_sdp_type_accepted(negotiated, 2, "message/CPIM"), 1, "accepted CPIM");
	CHECK_INT(msrp_sdp_type_accepted(negotiated, 2, "image/png"), 0, "refused image/png");
	CHECK_INT(msrp_sdp_type_accepted(negotiated, 0, "text/plain"), 0, "nothing negotiated");
}

/* ---- answers and offers, byte for byte --------------------------------------------------------- */

#define ANS_HEAD "v=0" CRLF "o=- 42 1 IN IP4 192.0.2.99" CRLF "s=-" CRLF "c=IN IP4 192.0.2.99" \
	CRLF "t=0 0" CRLF
#define OUR_PATH "msrp://192.0.2.99:2855/gw7f3a;tcp"

static const struct {
	const char *name;
	const char *offer;	/* NULL: build an offer */
	int tls_ok;
	int prefer_active;
	const char *addr, *path;
	int secure;		/* for offers */
	unsigned long long max_size;
	const char *want;
	const char *fingerprint;	/* ours */
} builds[] = {
	{ "answer to RFC 4975 8.7", "v=0" CRLF "o=alice 2890844526 2890844527 IN IP4 alice.example.com"
	  CRLF "s= -" CRLF "c=IN IP4 alice.example.com" CRLF "t=0 0" CRLF "m=message 7654 TCP/MSRP *"
	  CRLF "a=accept-types:text/plain" CRLF "a=path:msrp://alice.example.com:7654/jshA7weztas;tcp"
	  CRLF, 0, 0, "192.0.2.99", OUR_PATH, 0, 0,
	  ANS_HEAD "m=message 2855 TCP/MSRP *" CRLF "a=path:" OUR_PATH CRLF
	  "a=accept-types:text/plain" CRLF "a=setup:passive" CRLF "a=sendrecv" CRLF, NULL },
	{ "answer to Linphone: audio rejected, actpass, prefer active",
	  "v=0" CRLF "o=alice 3043 1519 IN IP4 192.168.1.10" CRLF "s=Talk" CRLF
	  "c=IN IP4 192.168.1.10" CRLF "t=0 0" CRLF "m=audio 7078 RTP/AVP 96 0 8 101" CRLF
	  "a=rtpmap:96 opus/48000/2" CRLF "a=rtpmap:101 telephone-event/8000" CRLF
	  "m=message 7080 TCP/MSRP *" CRLF "a=accept-types:message/cpim text/plain" CRLF
	  "a=accept-wrapped-types:text/plain application/im-iscomposing+xml" CRLF
	  "a=path:msrp://192.168.1.10:7080/s3cr3t;tcp" CRLF "a=setup:actpass" CRLF,
	  0, 1, "192.0.2.99", OUR_PATH, 0, 65536,
	  ANS_HEAD "m=audio 0 RTP/AVP 96" CRLF "m=message 2855 TCP/MSRP *" CRLF "a=path:" OUR_PATH
	  CRLF "a=accept-types:message/cpim text/plain" CRLF "a=accept-wrapped-types:text/plain" CRLF
	  "a=setup:active" CRLF "a=max-size:65536" CRLF "a=sendrecv" CRLF, NULL },
	{ "answer over TLS, IPv6, sendonly offer, three m= lines",
	  "v=0" CRLF "o=- 1 1 IN IP6 2001:db8::10" CRLF "s=-" CRLF "c=IN IP6 2001:db8::10" CRLF
	  "t=0 0" CRLF "m=message 0 TCP/MSRP *" CRLF "m=message 2856 TCP/TLS/MSRP *" CRLF
	  "a=accept-types:*" CRLF "a=path:msrps://[2001:db8::10]:2856/q;tcp" CRLF
	  "a=setup:active" CRLF "a=sendonly" CRLF
	  "m=application 9 UDP/DTLS/SCTP webrtc-datachannel" CRLF,
	  1, 0, "2001:db8::99", "msrps://[2001:db8::99]:2855/gw;tcp", 0, 0,
	  "v=0" CRLF "o=- 42 1 IN IP6 2001:db8::99" CRLF "s=-" CRLF "c=IN IP6 2001:db8::99" CRLF
	  "t=0 0" CRLF "m=message 0 TCP/MSRP *" CRLF "m=message 2855 TCP/TLS/MSRP *" CRLF
	  "a=path:msrps://[2001:db8::99]:2855/gw;tcp" CRLF "a=accept-types:message/cpim text/plain"
	  CRLF "a=setup:passive" CRLF "a=recvonly" CRLF
	  "m=application 0 UDP/DTLS/SCTP webrtc-datachannel" CRLF, NULL },
	{ "our offer", NULL, 0, 0, "192.0.2.99", OUR_PATH, 0, 1048576,
	  ANS_HEAD "m=message 2855 TCP/MSRP *" CRLF "a=path:" OUR_PATH CRLF
	  "a=accept-types:message/cpim text/plain" CRLF "a=accept-wrapped-types:text/plain" CRLF
	  "a=setup:actpass" CRLF "a=max-size:1048576" CRLF "a=sendrecv" CRLF, NULL },
	{ "our offer over TLS", NULL, 0, 0, "192.0.2.99", "msrps://gw.example:2855/k;tcp", 1, 0,
	  ANS_HEAD "m=message 2855 TCP/TLS/MSRP *" CRLF "a=path:msrps://gw.example:2855/k;tcp" CRLF
	  "a=accept-types:message/cpim text/plain" CRLF "a=accept-wrapped-types:text/plain" CRLF
	  "a=setup:actpass" CRLF "a=sendrecv" CRLF, NULL },
	{ "our offer over TLS with our fingerprint", NULL, 0, 0, "192.0.2.99",
	  "msrps://192.0.2.99:2855/k;tcp", 1, 0,
	  ANS_HEAD "m=message 2855 TCP/TLS/MSRP *" CRLF "a=path:msrps://192.0.2.99:2855/k;tcp" CRLF
	  "a=accept-types:message/cpim text/plain" CRLF "a=accept-wrapped-types:text/plain" CRLF
	  "a=setup:actpass" CRLF "a=fingerprint:sha-256 " FP256 CRLF "a=sendrecv" CRLF,
	  "sha-256 " FP256 },
	{ "answer over TLS with both fingerprints",
	  HEAD4("192.0.2.1") TLSMSG TYPES TLSPATH "a=setup:actpass" CRLF
	  "a=fingerprint:sha-1 " FP1 CRLF, 1, 0, "192.0.2.99", "msrps://192.0.2.99:2855/a;tcp", 0, 0,
	  ANS_HEAD "m=message 2855 TCP/TLS/MSRP *" CRLF "a=path:msrps://192.0.2.99:2855/a;tcp" CRLF
	  "a=accept-types:text/plain" CRLF "a=setup:passive" CRLF
	  "a=fingerprint:sha-256 " FP256 CRLF "a=sendrecv" CRLF,
	  "sha-256 " FP256 },
};

/* Fills ours as the session layer would: for an answer, the negotiated types and roles. */
static int local_for(size_t i, const struct msrp_sdp_media *offer, struct msrp_sdp_local *ours,
		     char ***types, size_t *ntypes, char ***wrapped, size_t *nwrapped)
{
	memset(ours, 0, sizeof(*ours));
	*types = *wrapped = NULL;
	*ntypes = *nwrapped = 0;
	ours->addr = builds[i].addr;
	ours->port = 2855;
	ours->path = builds[i].path;
	ours->secure = builds[i].secure;
	ours->max_size = builds[i].max_size;
	ours->fingerprint = builds[i].fingerprint;
	ours->sess_id = 42;
	ours->sess_version = 1;
	if (!offer) {
		ours->setup = MSRP_SETUP_ACTPASS;
		ours->accept_types = our_types;
		ours->naccept_types = NELEM(our_types);
		ours->accept_wrapped_types = our_wrapped;
		ours->naccept_wrapped = NELEM(our_wrapped);
		ours->direction = "sendrecv";
		return 0;
	}
	ours->setup = msrp_sdp_answer_setup(offer->setup, builds[i].prefer_active);
	ours->direction = msrp_sdp_answer_direction(offer->direction);
	if (msrp_sdp_types_intersect(our_types, NELEM(our_types), offer->accept_types,
				     offer->naccept_types, types, ntypes) < 0)
		return -1;
	ours->accept_types = (const char *const *)*types;
	ours->naccept_types = *ntypes;
	if (offer->naccept_wrapped &&
	    msrp_sdp_types_intersect(our_wrapped, NELEM(our_wrapped), offer->accept_wrapped_types,
				     offer->naccept_wrapped, wrapped, nwrapped) == 0) {
		ours->accept_wrapped_types = (const char *const *)*wrapped;
		ours->naccept_wrapped = *nwrapped;
	}
	return 0;
}

static void test_build(void)
{
	for (size_t i = 0; i < NELEM(builds); i++) {
		struct msrp_sdp_media offer, back, *op = NULL;
		struct msrp_sdp_local ours;
		char **types, **wrapped, err[200] = "", *sdp;
		size_t ntypes, nwrapped, len = 0;

		if (builds[i].offer) {
			CHECK_INT(parse(builds[i].offer, strlen(builds[i].offer), builds[i].tls_ok, &offer,
					NULL, NULL, err, sizeof(err)), 0, "build \"%s\": offer parses (%s)",
				  builds[i].name, err);
			op = &offer;
		}
		CHECK_INT(local_for(i, op, &ours, &types, &ntypes, &wrapped, &nwrapped), 0,
			  "build \"%s\": types in common", builds[i].name);
		sdp = msrp_sdp_build(&ours, op, &len);
		CHECK_STR(sdp, builds[i].want, "build \"%s\"", builds[i].name);
		CHECK_INT(len, strlen(sdp), "build \"%s\": length", builds[i].name);

		/* what we write parses, and says what we meant */
		CHECK_INT(parse(sdp, len, 1, &back, NULL, NULL, err, sizeof(err)), 0,
			  "build \"%s\": parses back (%s)", builds[i].name, err);
		CHECK_STR(back.path, ours.path, "build \"%s\": path back", builds[i].name);
		CHECK_INT(back.naccept_types, ours.naccept_types, "build \"%s\": types back",
			  builds[i].name);
		for (size_t k = 0; k < back.naccept_types && k < ours.naccept_types; k++)
			CHECK_STR(back.accept_types[k], ours.accept_types[k], "build \"%s\": type %zu",
				  builds[i].name, k);
		CHECK_INT(back.setup, ours.setup, "build \"%s\": setup back", builds[i].name);
		CHECK_INT(back.max_size, ours.max_size, "build \"%s\": max-size back", builds[i].name);
		CHECK_STR(back.connection_address, ours.addr, "build \"%s\": address back",
			  builds[i].name);
		CHECK_INT(back.port, 2855, "build \"%s\": port back", builds[i].name);
		if (ours.fingerprint) {
			char text[MSRP_SDP_FINGERPRINT_TEXT] = "";

			CHECK_INT(back.nfingerprints, 1, "build \"%s\": fingerprint back",
				  builds[i].name);
			if (back.nfingerprints)
				msrp_sdp_fingerprint_format(back.fingerprints[0].hash,
							    back.fingerprints[0].digest,
							    back.fingerprints[0].len, text, sizeof(text));
			CHECK_STR(text, ours.fingerprint, "build \"%s\": fingerprint text back",
				  builds[i].name);
		}
		if (op) {
			CHECK(back.mline == op->mline && back.nmlines == op->nmlines,
			      "build \"%s\": same m= lines", builds[i].name);
			for (size_t k = 0; k < back.nmlines && k < op->nmlines; k++)
				CHECK_STR(back.mlines[k], op->mlines[k], "build \"%s\": m= line %zu",
					  builds[i].name, k);
			CHECK_INT(back.secure, op->secure, "build \"%s\": transport kept", builds[i].name);
			msrp_sdp_media_clear(&offer);
		}
		msrp_sdp_media_clear(&back);
		msrp_sdp_strv_free(types, ntypes);
		msrp_sdp_strv_free(wrapped, nwrapped);
		free(sdp);
	}

	/* an offer with nothing in common: the caller answers 488 */
	{
		static const char body[] = HEAD4("192.0.2.1") MSG "a=accept-types:image/jpeg" CRLF PATH;
		struct msrp_sdp_media m;
		char **types = (char **)1;
		size_t n = 9;

		CHECK_INT(parse(body, sizeof(body) - 1, 0, &m, NULL, NULL, NULL, 0), 0, "image offer");
		CHECK_INT(msrp_sdp_types_intersect(our_types, NELEM(our_types), m.accept_types,
						   m.naccept_types, &types, &n), -1,
			  "image offer: nothing in common");
		CHECK(types == NULL && n == 0, "image offer: empty intersection");
		msrp_sdp_media_clear(&m);
	}
	/* minimal local: no setup, no types, no direction, len NULL */
	{
		struct msrp_sdp_local ours = { .addr = "h.example", .port = 9, .path = "msrp://h/x;tcp" };
		char *sdp = msrp_sdp_build(&ours, NULL, NULL);

		CHECK_STR(sdp, "v=0" CRLF "o=- 0 0 IN IP4 h.example" CRLF "s=-" CRLF
			  "c=IN IP4 h.example" CRLF "t=0 0" CRLF "m=message 9 TCP/MSRP *" CRLF
			  "a=path:msrp://h/x;tcp" CRLF, "minimal offer");
		free(sdp);
	}
}

/* ---- certificate fingerprints: names, formatting, choice and matching (RFC 8122) ----------- */

static void test_fingerprints(void)
{
	static const struct {
		enum msrp_hash hash;
		const char *name, *openssl;
		size_t len;
	} hashes[] = {
		{ MSRP_HASH_SHA1, "sha-1", "SHA1", 20 },
		{ MSRP_HASH_SHA224, "sha-224", "SHA224", 28 },
		{ MSRP_HASH_SHA256, "sha-256", "SHA256", 32 },
		{ MSRP_HASH_SHA384, "sha-384", "SHA384", 48 },
		{ MSRP_HASH_SHA512, "sha-512", "SHA512", 64 },
	};
	unsigned char d[MSRP_SDP_MAX_DIGEST];
	char text[MSRP_SDP_FINGERPRINT_TEXT];
	struct msrp_sdp_fingerprint fp[3];

	for (size_t i = 0; i < sizeof(d); i++)
		d[i] = (unsigned char)(i * 17 + 3);
	for (size_t i = 0; i < NELEM(hashes); i++) {
		CHECK_STR(msrp_sdp_hash_name(hashes[i].hash), hashes[i].name, "hash %zu name", i);
		CHECK_STR(msrp_sdp_hash_openssl_name(hashes[i].hash), hashes[i].openssl,
			  "hash %zu OpenSSL name", i);
		CHECK_INT(msrp_sdp_hash_len(hashes[i].hash), hashes[i].len, "hash %zu length", i);
		/* the longest text fits MSRP_SDP_FINGERPRINT_TEXT; one byte less does not */
		CHECK_INT(msrp_sdp_fingerprint_format(hashes[i].hash, d, hashes[i].len, text,
						      sizeof(text)),
			  (long long)(strlen(hashes[i].name) + 3 * hashes[i].len), "hash %zu format", i);
		CHECK_INT(msrp_sdp_fingerprint_format(hashes[i].hash, d, hashes[i].len, text,
						      strlen(hashes[i].name) + 3 * hashes[i].len), -1,
			  "hash %zu format, buffer one short", i);
		CHECK_STR(text, "", "hash %zu: empty text on failure", i);
		CHECK_INT(msrp_sdp_fingerprint_format(hashes[i].hash, d, hashes[i].len - 1, text,
						      sizeof(text)), -1, "hash %zu: wrong length", i);
	}
	CHECK(msrp_sdp_hash_name((enum msrp_hash)99) == NULL &&
	      msrp_sdp_hash_openssl_name((enum msrp_hash)99) == NULL &&
	      msrp_sdp_hash_len((enum msrp_hash)99) == 0, "hash out of range");
	CHECK_INT(msrp_sdp_fingerprint_format((enum msrp_hash)99, d, 20, text, sizeof(text)), -1,
		  "format: hash out of range");
	CHECK_INT(msrp_sdp_fingerprint_format(MSRP_HASH_SHA1, d, 20, text, sizeof(text)), 5 + 60,
		  "sha-1 format");
	CHECK_STR(text, "sha-1 03:14:25:36:47:58:69:7A:8B:9C:AD:BE:CF:E0:F1:02:13:24:35:46",
		  "sha-1 text: upper case, colons");

	memset(fp, 0, sizeof(fp));
	fp[0].hash = MSRP_HASH_SHA1;
	fp[0].len = 20;
	memcpy(fp[0].digest, d, 20);
	fp[1].hash = MSRP_HASH_SHA256;
	fp[1].len = 32;
	memcpy(fp[1].digest, d, 32);
	fp[2].hash = MSRP_HASH_SHA256;
	fp[2].len = 32;
	memset(fp[2].digest, 0xee, 32);
	CHECK_INT(msrp_sdp_fingerprint_strongest(fp, 0), -1, "strongest of none");
	CHECK_INT(msrp_sdp_fingerprint_strongest(fp, 1), MSRP_HASH_SHA1, "strongest of sha-1");
	CHECK_INT(msrp_sdp_fingerprint_strongest(fp, 3), MSRP_HASH_SHA256, "strongest of three");
	CHECK_INT(msrp_sdp_fingerprint_match(fp, 3, MSRP_HASH_SHA256, d, 32), 1, "sha-256 matches");
	CHECK_INT(msrp_sdp_fingerprint_match(fp, 3, MSRP_HASH_SHA256, fp[2].digest, 32), 1,
		  "second sha-256 matches");
	CHECK_INT(msrp_sdp_fingerprint_match(fp, 3, MSRP_HASH_SHA1, d, 20), 1, "sha-1 matches");
	CHECK_INT(msrp_sdp_fingerprint_match(fp, 3, MSRP_HASH_SHA384, d, 48), 0, "no sha-384");
	CHECK_INT(msrp_sdp_fingerprint_match(fp, 3, MSRP_HASH_SHA256, d, 20), 0, "length differs");
	d[31] ^= 1;
	CHECK_INT(msrp_sdp_fingerprint_match(fp, 3, MSRP_HASH_SHA256, d, 32), 0, "one bit differs");
	CHECK_INT(msrp_sdp_fingerprint_match(fp, 0, MSRP_HASH_SHA1, d, 20), 0, "none to match");
}

/* ---- round trips: build an offer -> parse it, every field back ---------------------------- */

static void test_round_trip(void)
{
	static const char *const addrs[] = { "192.0.2.5", "2001:db8::5", "gw.example.net" };
	static const char *const dirs[] = { NULL, "sendrecv", "sendonly", "recvonly", "inactive" };
	static const char *const types2[] = { "text/*", "*", "application/im-iscomposing+xml" };
	static const unsigned long long sizes[] = { 0, 1, 4096, 18446744073709551615ULL };
	size_t n = 0;

	for (size_t a = 0; a < NELEM(addrs); a++)
		for (int secure = 0; secure <= 1; secure++)
			for (int s = MSRP_SETUP_NONE; s <= MSRP_SETUP_HOLDCONN; s++)
				for (size_t d = 0; d < NELEM(dirs); d++) {
					struct msrp_sdp_local ours;
					struct msrp_sdp_media m;
					char path[160], err[200] = "", *sdp;
					size_t len;
					const char *host = strchr(addrs[a], ':') ? "[2001:db8::5]" : addrs[a];

					snprintf(path, sizeof(path),
						 "%s://relay.example:2855/r;tcp %s://%s:%u/s%zu;tcp",
						 secure ? "msrps" : "msrp", secure ? "msrps" : "msrp", host,
						 1024 + (unsigned)n, n);
					memset(&ours, 0, sizeof(ours));
					ours.addr = addrs[a];
					ours.port = 1024 + (unsigned)n;
					ours.path = path;
					ours.secure = secure;
					ours.setup = (enum msrp_setup)s;
					ours.accept_types = (n & 1) ? types2 : our_types;
					ours.naccept_types = (n & 1) ? NELEM(types2) : NELEM(our_types);
					ours.accept_wrapped_types = our_wrapped;
					ours.naccept_wrapped = (n & 2) ? 1 : 0;
					ours.max_size = sizes[n % NELEM(sizes)];
					ours.direction = dirs[d];
					ours.sess_id = n * 1000003ULL;
					ours.sess_version = n;
					sdp = msrp_sdp_build(&ours, NULL, &len);
					if (parse(sdp, len, secure, &m, NULL, NULL, err, sizeof(err)) != 0) {
						CHECK(0, "round trip %zu parses: %s\n%s", n, err, sdp);
					} else {
						int ok = m.mline == 0 && m.nmlines == 1 &&
							 m.secure == secure && m.port == ours.port &&
							 strcmp(m.path, path) == 0 &&
							 strcmp(m.connection_address, addrs[a]) == 0 &&
							 m.ip6 == (strchr(addrs[a], ':') != NULL) &&
							 m.setup == ours.setup &&
							 m.max_size == ours.max_size &&
							 strcmp(m.direction,
								dirs[d] ? dirs[d] : "sendrecv") == 0 &&
							 m.naccept_types == ours.naccept_types &&
							 m.naccept_wrapped == ours.naccept_wrapped;

						for (size_t k = 0; ok && k < m.naccept_types; k++)
							ok = strcmp(m.accept_types[k],
								    ours.accept_types[k]) == 0;
						CHECK(ok, "round trip %zu: every field back\n%s", n, sdp);
						msrp_sdp_media_clear(&m);
					}
					free(sdp);
					n++;
				}
	CHECK_INT(n, 3 * 2 * 5 * 5, "round trips run");
}

int main(void)
{
	test_offers();
	test_refusals();
	test_setup();
	test_direction();
	test_types();
	test_build();
	test_fingerprints();
	test_round_trip();
	TEST_DONE();
}
