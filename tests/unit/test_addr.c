/* test_addr.c - table-driven tests of the JID <-> SIP URI address mapping (mapping/addr.h). */
#include <stdlib.h>

#include "mapping/addr.h"
#include "tests/unit/test.h"

#define OK	MAP_ADDR_OK
#define BAD	MAP_ADDR_EMALFORMED
#define DOM	MAP_ADDR_EDOMAIN
#define NOSPC	MAP_ADDR_ENOSPC
#define SCHEME	MAP_ADDR_ESCHEME
#define NOTCANON MAP_ADDR_ENOTCANON
#define GW	"sip-gw.xmpp.example"

/* Large enough for every result, so ENOSPC never hides another verdict here. */
#define BIG	(MAP_URI_MAX + MAP_JID_MAX)

/* want == OK: the call must succeed and write out; otherwise it must return want. */
static void
check_result(const char *fn, const char *in, int got, const char *buf, int want, const char *out)
{
	if (want == OK) {
		CHECK_INT(got, (long long)strlen(out), "%s(\"%s\"): length", fn, in);
		if (got >= 0)
			CHECK_STR(buf, out, "%s(\"%s\")", fn, in);
	} else
		CHECK_INT(got, want, "%s(\"%s\"): status", fn, in);
}

/* ---- map_jid_to_sip ------------------------------------------------------------------------ */

static const struct {
	const char	*jid;
	int		 keep;
	int		 status;
	const char	*uri;
} jid_to_sip_cases[] = {
	/* the worked examples of addr.h */
	{ "alice@xmpp.example", 0, OK, "sip:alice@xmpp.example" },
	{ "alice@xmpp.example/balcony", 0, OK, "sip:alice@xmpp.example" },
	{ "alice@xmpp.example/balcony", 1, OK, "sip:alice@xmpp.example;gr=balcony" },
	{ "Alice@XMPP.example", 0, NOTCANON, NULL },	/* an XMPP server sends alice@ */
	{ "d\\27artagnan@xmpp.example", 0, OK, "sip:d'artagnan@xmpp.example" },
	{ "john\\20smith@xmpp.example", 0, OK, "sip:john%20smith@xmpp.example" },
	{ "j\u00fcrgen@xmpp.example", 0, OK, "sip:j%C3%BCrgen@xmpp.example" },
	{ "anna@b\u00fccher.example", 0, OK, "sip:anna@xn--bcher-kva.example" },
	{ "xmpp.example", 0, OK, "sip:xmpp.example" },
	{ "@xmpp.example", 0, BAD, NULL },
	{ "alice@", 0, BAD, NULL },
	{ "a<b@x.example", 0, BAD, NULL },
	{ "alice@-x.example", 0, BAD, NULL },
	/* user part: unreserved and & = + $ , stay, the rest is escaped in upper-case hex */
	{ "a+b=c$d,e!~*()-_.x@x.example", 0, OK, "sip:a+b=c$d,e!~*()-_.x@x.example" },
	{ "a;b?c#d%e@x.example", 0, OK, "sip:a%3Bb%3Fc%23d%25e@x.example" },
	{ "a[b]{c}|d^e`f@x.example", 0, OK, "sip:a%5Bb%5D%7Bc%7D%7Cd%5Ee%60f@x.example" },
	{ "bob\\40sip.example@xmpp.example", 0, OK, "sip:bob%40sip.example@xmpp.example" },
	{ "\\22\\26\\27\\2f\\3a\\3c\\3e\\40@x.example", 0, OK,
	  "sip:%22&'%2F%3A%3C%3E%40@x.example" },
	{ "\\2F\\3A@x.example", 0, NOTCANON, NULL },	/* the server writes \\2f\\3a */
	{ "a\\5cb@x.example", 0, OK, "sip:a%5Cb@x.example" },
	{ "a\\b@x.example", 0, OK, "sip:a%5Cb@x.example" },
	{ "a\\5c20b@x.example", 0, OK, "sip:a%5C20b@x.example" },
	{ "\\20bob@x.example", 0, BAD, NULL },	/* XEP-0106: no \20 at either end */
	{ "bob\\20@x.example", 0, BAD, NULL },
	{ "\\5c20bob@x.example", 0, OK, "sip:%5C20bob@x.example" },
	{ "\u00e9\u00e8\u4e2d@x.example", 0, OK, "sip:%C3%A9%C3%A8%E4%B8%AD@x.example" },
	/* resources travel as gr, param-unreserved characters unescaped */
	{ "alice@xmpp.example/my phone", 1, OK, "sip:alice@xmpp.example;gr=my%20phone" },
	{ "alice@xmpp.example/a;b=c", 1, OK, "sip:alice@xmpp.example;gr=a%3Bb%3Dc" },
	{ "alice@xmpp.example/[a]/:&+$@", 1, OK, "sip:alice@xmpp.example;gr=[a]/:&+$%40" },
	{ "alice@xmpp.example/urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6", 1, OK,
	  "sip:alice@xmpp.example;gr=urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6" },
	{ "alice@xmpp.example/\u00fc", 1, OK, "sip:alice@xmpp.example;gr=%C3%BC" },
	{ "xmpp.example/x", 1, OK, "sip:xmpp.example;gr=x" },
	{ "a/b@c.example", 1, OK, "sip:a;gr=b%40c.example" },	/* RFC 7622: resource first */
	{ "alice@xmpp.example/a/b", 1, OK, "sip:alice@xmpp.example;gr=a/b" },
	/* domains */
	{ "alice@xmpp.example.", 0, OK, "sip:alice@xmpp.example" },
	{ "alice@xmpp.example..", 0, BAD, NULL },
	{ "alice@.", 0, BAD, NULL },
	{ "alice@XN--BCHER-KVA.example", 0, OK, "sip:alice@xn--bcher-kva.example" },
	{ "alice@B\u00fcCHER.example", 0, OK, "sip:alice@xn--bcher-kva.example" },
	{ "alice@192.0.2.1", 0, OK, "sip:alice@192.0.2.1" },
	{ "alice@[2001:DB8::1]", 0, OK, "sip:alice@[2001:db8::1]" },
	{ "alice@[2001:0db8:0:0:0:0:0:1]/r", 1, OK, "sip:alice@[2001:db8::1];gr=r" },
	{ "alice@[fe80::1%25eth0]", 0, BAD, NULL },
	{ "alice@999.1.1.1", 0, BAD, NULL },
	{ "alice@01.2.3.4", 0, BAD, NULL },
	{ "alice@x.123", 0, BAD, NULL },
	{ "alice@x-.example", 0, BAD, NULL },
	{ "alice@_sip.example", 0, BAD, NULL },
	{ "alice@x example", 0, BAD, NULL },
	{ "alice@xn--a.example", 0, BAD, NULL },
	{ "a@b@c.example", 0, BAD, NULL },
	/* localparts and resources */
	{ "al ice@x.example", 0, BAD, NULL },
	{ "al\u00a0ice@x.example", 0, BAD, NULL },	/* NO-BREAK SPACE */
	{ "al\u3000ice@x.example", 0, BAD, NULL },	/* IDEOGRAPHIC SPACE */
	{ "al\xc2\x80ice@x.example", 0, BAD, NULL },	/* C1 control */
	{ "al\x7fice@x.example", 0, BAD, NULL },
	{ "al\tice@x.example", 0, BAD, NULL },
	{ "al'ice@x.example", 0, BAD, NULL },
	{ "al:ice@x.example", 0, BAD, NULL },
	{ "al\"ice@x.example", 0, BAD, NULL },
	{ "al&ice@x.example", 0, BAD, NULL },
	{ "al>ice@x.example", 0, BAD, NULL },
	{ "al\xfcice@x.example", 0, BAD, NULL },	/* Latin-1, not UTF-8 */
	{ "al\xc3\xbc\xbcice@x.example", 0, BAD, NULL },	/* stray continuation */
	{ "al\xc3@x.example", 0, BAD, NULL },		/* truncated sequence */
	{ "\xc0\xafx@x.example", 0, BAD, NULL },		/* overlong '/' */
	{ "\xe0\x80\xafx@x.example", 0, BAD, NULL },	/* overlong, three octets */
	{ "\xe0\x81\x81x@x.example", 0, BAD, NULL },	/* overlong 'A' */
	{ "\xf0\x80\x81\x81x@x.example", 0, BAD, NULL },
	{ "\xf0\x80\x9f\xbfx@x.example", 0, BAD, NULL },	/* overlong U+07FF */
	{ "\xed\xa0\x80x@x.example", 0, BAD, NULL },	/* surrogate */
	{ "\xf4\x90\x80\x80x@x.example", 0, BAD, NULL },	/* above U+10FFFF */
	{ "\xf8\x88\x80\x80\x80x@x.example", 0, BAD, NULL },
	{ "\xf0\x9f\x98\x80@x.example", 0, NOTCANON, NULL },	/* no emoji in a localpart */
	{ "alice@x.example/", 1, BAD, NULL },
	{ "alice@x.example/", 0, BAD, NULL },	/* invalid even when dropped */
	{ "alice@x.example/a\rb", 1, BAD, NULL },
	{ "alice@x.example/a\nb", 0, BAD, NULL },
	{ "alice@x.example/\xc2\x9f", 1, BAD, NULL },
	{ "alice@x.example/a b", 1, OK, "sip:alice@x.example;gr=a%20b" },
	{ "", 0, BAD, NULL },
	{ "/", 0, BAD, NULL },
	{ "@", 0, BAD, NULL },
	{ NULL, 0, BAD, NULL },
};

static void
test_jid_to_sip(void)
{
	char buf[BIG];
	size_t i;

	for (i = 0; i < NELEM(jid_to_sip_cases); i++) {
		int r = map_jid_to_sip(jid_to_sip_cases[i].jid, jid_to_sip_cases[i].keep, buf,
		    sizeof(buf));
		check_result(jid_to_sip_cases[i].keep ? "map_jid_to_sip/gr" : "map_jid_to_sip",
		    jid_to_sip_cases[i].jid ? jid_to_sip_cases[i].jid : "(null)", r, buf,
		    jid_to_sip_cases[i].status, jid_to_sip_cases[i].uri);
	}
}

/* ---- the string -> string functions ------------------------------------------------------ */

struct str_case {
	const char	*in;
	int		 status;
	const char	*out;
};

static const struct str_case sip_to_jid_cases[] = {
	/* the worked examples of addr.h */
	{ "sip:bob@sip.example", OK, "bob@sip.example" },
	{ "sips:bob@SIP.Example:5061;transport=tls", OK, "bob@sip.example" },
	{ "sip:bob@sip.example;gr=phone", OK, "bob@sip.example/phone" },
	{ "sip:bob:secret@sip.example", OK, "bob@sip.example" },
	{ "pres:bob@sip.example", OK, "bob@sip.example" },
	{ "im:bob@sip.example", OK, "bob@sip.example" },
	{ "sip:j%C3%BCrgen@sip.example", OK, "j\u00fcrgen@sip.example" },
	{ "sip:john%20smith@sip.example", OK, "john\\20smith@sip.example" },
	{ "sip:o'hara@sip.example", OK, "o\\27hara@sip.example" },
	{ "sip:bob@xn--bcher-kva.example", OK, "bob@b\u00fccher.example" },
	{ "tel:+15551234", SCHEME, NULL },
	{ "mailto:bob@x.example", SCHEME, NULL },
	{ "sip:bob%00x@sip.example", BAD, NULL },
	{ "sip:%FF@sip.example", BAD, NULL },
	{ "sip:@sip.example", BAD, NULL },
	/* schemes */
	{ "SIP:bob@sip.example", OK, "bob@sip.example" },
	{ "SiPs:bob@sip.example", OK, "bob@sip.example" },
	{ "PRES:bob@sip.example", OK, "bob@sip.example" },
	{ "xmpp:bob@sip.example", SCHEME, NULL },
	{ "http://sip.example/", SCHEME, NULL },
	{ "sip-x:bob@sip.example", SCHEME, NULL },
	{ "bob@sip.example", BAD, NULL },
	{ ":bob@sip.example", BAD, NULL },
	{ "1sip:bob@sip.example", BAD, NULL },
	{ "sip", BAD, NULL },
	{ "sip:", BAD, NULL },
	{ "", BAD, NULL },
	{ NULL, BAD, NULL },
	/* name-addr forms and stray characters */
	{ "<sip:bob@sip.example>", BAD, NULL },
	{ "sip:bob@sip.example>", BAD, NULL },
	{ "\"Bob\" <sip:bob@sip.example>", BAD, NULL },
	{ " sip:bob@sip.example", BAD, NULL },
	{ "sip:bob@sip.example ", BAD, NULL },
	{ "sip:bob@sip example", BAD, NULL },
	{ "sip:b ob@sip.example", BAD, NULL },
	{ "sip:bob@sip.example\r\nVia: x", BAD, NULL },
	{ "sip:bob\r\n@sip.example", BAD, NULL },
	{ "sip:bob%0D%0A@sip.example", BAD, NULL },
	{ "sip:bob%09@sip.example", BAD, NULL },
	{ "sip:bob%7F@sip.example", BAD, NULL },
	{ "sip:b\xc3\xbc" "b@sip.example", BAD, NULL },	/* raw UTF-8 is not SIP */
	{ "sip:bob@b\xc3\xbc" "cher.example", BAD, NULL },
	{ "sip:bob@sip.example@x.example", BAD, NULL },
	/* user part */
	{ "sip:+15551234;phone-context=example.com@sip.example;user=phone", OK,
	  "+15551234;phone-context=example.com@sip.example" },
	{ "sip:a&b=c+d$e,f;g?h/i@sip.example", OK, "a\\26b=c+d$e,f;g?h\\2fi@sip.example" },
	{ "sip:a%40b@sip.example", OK, "a\\40b@sip.example" },
	{ "sip:%22%26%27%2F%3A%3C%3E%40@sip.example", OK,
	  "\\22\\26\\27\\2f\\3a\\3c\\3e\\40@sip.example" },
	{ "sip:a%5Cb@sip.example", OK, "a\\b@sip.example" },
	{ "sip:%5C20@sip.example", OK, "\\5c20@sip.example" },
	{ "sip:%5c3A@sip.example", NOTCANON, NULL },	/* \\5c3A would be prepared to \\5c3a */
	{ "sip:%5c3a@sip.example", OK, "\\5c3a@sip.example" },
	{ "sip:j%c3%bcrgen@sip.example", OK, "j\u00fcrgen@sip.example" },
	{ "sip:%F0%9F%98%80@sip.example", NOTCANON, NULL },
	/* user parts the XMPP server would prepare into another user's (issue 11): refused */
	{ "sip:BOB@sip.example", NOTCANON, NULL },
	{ "sip:Bob@sip.example", NOTCANON, NULL },
	{ "sip:%EF%BD%82%EF%BD%8F%EF%BD%82@sip.example", NOTCANON, NULL },	/* full-width bob */
	{ "sip:bo%E2%80%8Bb@sip.example", NOTCANON, NULL },	/* ZERO WIDTH SPACE */
	{ "sip:bo%C2%ADb@sip.example", NOTCANON, NULL },	/* SOFT HYPHEN */
	{ "sip:%E2%84%AAim@sip.example", NOTCANON, NULL },	/* KELVIN SIGN + im */
	{ "sip:%C3%89lise@sip.example", NOTCANON, NULL },	/* capital É */
	{ "sip:e%CC%81lise@sip.example", NOTCANON, NULL },	/* e + combining acute: NFC é */
	{ "sip:stra%C3%9Fe@sip.example", NOTCANON, NULL },	/* ß: nodeprep folds it to ss */
	{ "sip:%C4%B3@sip.example", NOTCANON, NULL },		/* ĳ: NFKC ij */
	{ "sip:%C5%BFam@sip.example", NOTCANON, NULL },		/* long s: NFKC s */
	{ "sip:%CE%A3@sip.example", NOTCANON, NULL },		/* capital sigma */
	{ "sip:%CF%82@sip.example", NOTCANON, NULL },		/* final sigma: folds to σ */
	{ "sip:%EF%A4%80@sip.example", NOTCANON, NULL },	/* CJK compatibility ideograph */
	{ "sip:%EF%BD%B1@sip.example", NOTCANON, NULL },	/* half-width katakana */
	{ "sip:%D0%91@sip.example", NOTCANON, NULL },		/* capital Б */
	/* and lower-case letters of the scripts the gateway can vouch for: taken */
	{ "sip:%C3%A9lise@sip.example", OK, "\u00e9lise@sip.example" },
	{ "sip:%C5%82ukasz@sip.example", OK, "\u0142ukasz@sip.example" },
	{ "sip:%CF%83%CE%AC%CF%82x@sip.example", NOTCANON, NULL },
	{ "sip:%CE%BD%CE%AF%CE%BA%CE%B7@sip.example", OK, "\u03bd\u03af\u03ba\u03b7@sip.example" },
	{ "sip:%D0%B1%D0%BE%D0%B1@sip.example", OK, "\u0431\u043e\u0431@sip.example" },
	{ "sip:%E5%B1%B1%E7%94%B0@sip.example", OK, "\u5c71\u7530@sip.example" },
	{ "sip:%E3%81%9F%E3%81%AA%E3%81%8B@sip.example", OK, "\u305f\u306a\u304b@sip.example" },
	{ "sip:%EA%B9%80@sip.example", OK, "\uae40@sip.example" },
	{ "sip:%20bob@sip.example", BAD, NULL },	/* would be \20 at the start */
	{ "sip:bob%20@sip.example", BAD, NULL },
	{ "sip:%C2%A0bob@sip.example", BAD, NULL },	/* NO-BREAK SPACE */
	{ "sip:%C2%80@sip.example", BAD, NULL },	/* C1 control */
	{ "sip:%C0%AF@sip.example", BAD, NULL },	/* overlong */
	{ "sip:%E0%80%AF@sip.example", BAD, NULL },
	{ "sip:%E0%81%81@sip.example", BAD, NULL },	/* overlong 'A' */
	{ "sip:bob@sip.example;gr=%F0%80%81%81", BAD, NULL },
	{ "sip:%ED%A0%80@sip.example", BAD, NULL },	/* surrogate */
	{ "sip:%F4%90%80%80@sip.example", BAD, NULL },	/* above U+10FFFF */
	{ "sip:%C3@sip.example", BAD, NULL },		/* truncated */
	{ "sip:bob%2@sip.example", BAD, NULL },
	{ "sip:bob%@sip.example", BAD, NULL },
	{ "sip:bob%GG@sip.example", BAD, NULL },
	{ "sip:b\\ob@sip.example", BAD, NULL },
	{ "sip:b\"ob@sip.example", BAD, NULL },
	{ "sip:b<ob@sip.example", BAD, NULL },
	{ "sip:b[ob@sip.example", BAD, NULL },
	/* password */
	{ "sip:bob:@sip.example", OK, "bob@sip.example" },
	{ "sip:bob:a%20&=+$,b@sip.example", OK, "bob@sip.example" },
	{ "sip::secret@sip.example", BAD, NULL },
	{ "sip:bob:se cret@sip.example", BAD, NULL },
	{ "sip:bob:se;cret@sip.example", BAD, NULL },
	{ "sip:bob:a:b@sip.example", BAD, NULL },
	/* host */
	{ "sip:sip.example", OK, "sip.example" },
	{ "sip:bob@sip.example.", OK, "bob@sip.example" },
	{ "sip:bob@localhost", OK, "bob@localhost" },
	{ "sip:bob@192.0.2.1", OK, "bob@192.0.2.1" },
	{ "sip:bob@192.0.2.1:5060", OK, "bob@192.0.2.1" },
	{ "sip:bob@[2001:db8::1]", OK, "bob@[2001:db8::1]" },
	{ "sip:bob@[2001:DB8:0:0:0:0:0:1]:5060;gr=x", OK, "bob@[2001:db8::1]/x" },
	{ "sip:bob@[::ffff:192.0.2.1]", OK, "bob@[::ffff:192.0.2.1]" },
	{ "sip:bob@XN--BCHER-KVA.EXAMPLE", OK, "bob@b\u00fccher.example" },
	{ "sip:bob@", BAD, NULL },
	{ "sip:bob@:5060", BAD, NULL },
	{ "sip:bob@;gr=x", BAD, NULL },
	{ "sip:bob@sip..example", BAD, NULL },
	{ "sip:bob@-sip.example", BAD, NULL },
	{ "sip:bob@sip_x.example", BAD, NULL },
	{ "sip:bob@256.0.0.1", BAD, NULL },
	{ "sip:bob@1.2.3", BAD, NULL },
	{ "sip:bob@xn--.example", BAD, NULL },
	{ "sip:bob@xn--a.example", BAD, NULL },
	{ "sip:bob@[fe80::1%25eth0]", BAD, NULL },
	{ "sip:bob@[fe80::1%eth0]", BAD, NULL },
	{ "sip:bob@[::1", BAD, NULL },
	{ "sip:bob@::1", BAD, NULL },
	{ "sip:bob@[1:2:3:4:5:6:7:8:9]", BAD, NULL },
	{ "sip:bob@[v1.fe80::1]", BAD, NULL },
	{ "sip:bob@[]", BAD, NULL },
	{ "sip:bob@[::1]x", BAD, NULL },
	/* port */
	{ "sip:bob@sip.example:0", OK, "bob@sip.example" },
	{ "sip:bob@sip.example:65535", OK, "bob@sip.example" },
	{ "sip:bob@sip.example:65536", BAD, NULL },
	{ "sip:bob@sip.example:4294967297", BAD, NULL },
	{ "sip:bob@sip.example:18446744073709551621", BAD, NULL },
	{ "sip:bob@sip.example:", BAD, NULL },
	{ "sip:bob@sip.example:50x0", BAD, NULL },
	{ "sip:bob@sip.example:-1", BAD, NULL },
	{ "sip:bob@sip.example:5060:5060", BAD, NULL },
	/* parameters and headers */
	{ "sip:bob@sip.example;transport=tcp;lr;maddr=[::1]", OK, "bob@sip.example" },
	{ "sip:bob@sip.example;gr", OK, "bob@sip.example" },	/* no value: no resource */
	{ "sip:bob@sip.example;GR=urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6", OK,
	  "bob@sip.example/urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6" },
	{ "sip:bob@sip.example;gr=my%20phone", OK, "bob@sip.example/my phone" },
	{ "sip:bob@sip.example;gr=%C3%BC;lr", OK, "bob@sip.example/\u00fc" },
	{ "sip:bob@sip.example;gr=a%40b%2Fc", OK, "bob@sip.example/a@b/c" },
	{ "sip:bob@sip.example;grx=1;xgr=2", OK, "bob@sip.example" },
	{ "sip:bob@sip.example;gr=", BAD, NULL },
	{ "sip:bob@sip.example;gr=a;gr=b", BAD, NULL },
	{ "sip:bob@sip.example;gr;gr=b", BAD, NULL },
	{ "sip:bob@sip.example;gr=%00", BAD, NULL },
	{ "sip:bob@sip.example;gr=a%0Ab", BAD, NULL },
	{ "sip:bob@sip.example;gr=%C2%85", BAD, NULL },	/* NEL, a C1 control */
	{ "sip:bob@sip.example;gr=%FF", BAD, NULL },
	{ "sip:bob@sip.example;gr=a b", BAD, NULL },
	{ "sip:bob@sip.example;", BAD, NULL },
	{ "sip:bob@sip.example;=x", BAD, NULL },
	{ "sip:bob@sip.example;a=", BAD, NULL },
	{ "sip:bob@sip.example;a=%ZZ", BAD, NULL },
	{ "sip:bob@sip.example?subject=hi&priority=urgent", OK, "bob@sip.example" },
	{ "sip:bob@sip.example;gr=x?subject=", OK, "bob@sip.example/x" },
	{ "sip:bob@sip.example?", BAD, NULL },
	{ "sip:bob@sip.example?subject", BAD, NULL },
	{ "sip:bob@sip.example?a=b&", BAD, NULL },
	{ "sip:bob@sip.example?a=b;gr=x", BAD, NULL },
	{ "sip:bob@sip.example?a=b c", BAD, NULL },
};

static const struct str_case jid_domain_cases[] = {
	{ "alice@XMPP.Example/res", OK, "xmpp.example" },
	{ "alice@xn--bcher-kva.example", OK, "b\u00fccher.example" },
	{ "alice@B\u00fccher.example", OK, "b\u00fccher.example" },
	{ "xmpp.example.", OK, "xmpp.example" },
	{ "[::1]", OK, "[::1]" },
	{ "[0:0::1]/x", OK, "[::1]" },
	{ "192.0.2.1", OK, "192.0.2.1" },
	{ "a@b@c.example", BAD, NULL },
	{ "a<b@xmpp.example", BAD, NULL },
	{ "alice@xmpp.example/", BAD, NULL },
	{ "", BAD, NULL },
	{ NULL, BAD, NULL },
};

static const struct str_case jid_bare_cases[] = {
	{ "Alice@XMPP.example/balcony", OK, "Alice@xmpp.example" },
	{ "alice@xmpp.example", OK, "alice@xmpp.example" },
	{ "xmpp.example/x", OK, "xmpp.example" },
	{ "d\\27artagnan@xmpp.example/x", OK, "d\\27artagnan@xmpp.example" },
	{ "anna@xn--bcher-kva.example.", OK, "anna@b\u00fccher.example" },
	{ "alice@[2001:db8:0:0:1:0:0:1]/x/y", OK, "alice@[2001:db8::1:0:0:1]" },
	{ "alice@xmpp.example/", BAD, NULL },
	{ "@xmpp.example", BAD, NULL },
	{ "alice@", BAD, NULL },
	{ NULL, BAD, NULL },
};

static const struct str_case sip_domain_cases[] = {
	{ "sips:bob@SIP.Example:5061;transport=tls", OK, "sip.example" },
	{ "sip:bob@xn--bcher-kva.example", OK, "b\u00fccher.example" },
	{ "sip:[2001:DB8:0::1]", OK, "[2001:db8::1]" },
	{ "sip:192.0.2.1:5060", OK, "192.0.2.1" },
	{ "sip:bob@sip.example.", OK, "sip.example" },
	{ "sip:%FF@sip.example", BAD, NULL },	/* refused as map_sip_to_jid refuses it */
	{ "sip:%20bob@sip.example", BAD, NULL },
	{ "sip:bob@sip.example;gr=%00", BAD, NULL },
	{ "tel:+15551234", SCHEME, NULL },
	{ "sip:", BAD, NULL },
	{ NULL, BAD, NULL },
};

static const struct str_case idna_ascii_cases[] = {
	{ "b\u00fccher.example", OK, "xn--bcher-kva.example" },
	{ "B\u00fcCHER.Example", OK, "xn--bcher-kva.example" },
	{ "xn--bcher-kva.example", OK, "xn--bcher-kva.example" },
	{ "XN--BCHER-KVA.EXAMPLE.", OK, "xn--bcher-kva.example" },
	{ "m\u00fcnchen.de", OK, "xn--mnchen-3ya.de" },
	{ "www.\u4f8b\u3048.jp", OK, "www.xn--r8jz45g.jp" },
	{ "\u4f8b\u3048.\u30c6\u30b9\u30c8", OK, "xn--r8jz45g.xn--zckzah" },
	{ "\xf0\x9f\x98\x80.example", OK, "xn--e28h.example" },
	{ "Example.COM", OK, "example.com" },
	{ "localhost", OK, "localhost" },
	{ "ab--cd.example", OK, "ab--cd.example" },	/* reserved LDH, but DNS has them */
	{ "192.0.2.1", OK, "192.0.2.1" },
	{ "[::1]", OK, "[::1]" },
	{ "[2001:db8:0:0:1:0:0:1]", OK, "[2001:db8::1:0:0:1]" },
	{ "[2001:db8:0:1:1:1:1:1]", OK, "[2001:db8:0:1:1:1:1:1]" },
	{ "[1:2:3:4:5:6:7::]", OK, "[1:2:3:4:5:6:7:0]" },
	{ "[1::2:3:4:5:6:7]", OK, "[1:0:2:3:4:5:6:7]" },
	{ "[::]", OK, "[::]" },
	{ "[::1.2.3.4]", OK, "[::102:304]" },
	{ "[0:0:0:0:0:FFFF:c000:0201]", OK, "[::ffff:192.0.2.1]" },
	{ "[0000:0000:0000:0000:0000:0000:0000:0001]", OK, "[::1]" },
	{ "[1:0:0:2:0:0:0:3]", OK, "[1:0:0:2::3]" },
	{ "", BAD, NULL },
	{ ".", BAD, NULL },
	{ "..", BAD, NULL },
	{ "a..b", BAD, NULL },
	{ ".a", BAD, NULL },
	{ "-a.example", BAD, NULL },
	{ "a-.example", BAD, NULL },
	{ "a_b.example", BAD, NULL },
	{ "a b.example", BAD, NULL },
	{ "a/b", BAD, NULL },
	{ "a@b", BAD, NULL },
	{ "a.123", BAD, NULL },
	{ "123", BAD, NULL },
	{ "1.2.3.04", BAD, NULL },
	{ "1.2.3.4.5", BAD, NULL },
	{ "xn--", BAD, NULL },
	{ "xn--a", BAD, NULL },				/* decodes to U+0080, a control */
	{ "xn--abc-", BAD, NULL },			/* all-ASCII "U-label" */
	{ "xn--abc", BAD, NULL },
	{ "xn---", BAD, NULL },
	{ "xn--bcher-kva-", BAD, NULL },
	{ "xn--bcher-kv!", BAD, NULL },
	{ "xn--bcher-kvaa", OK, "xn--bcher-kvaa" },		/* b\u00fc\u00fccher, if odd */
	{ "xn--99999999999999999999", BAD, NULL },	/* overflow */
	{ "xn--zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz", BAD, NULL },
	{ "xn--ls8h", OK, "xn--ls8h" },			/* U+1F4A9 */
	{ "xn--tda", OK, "xn--tda" },			/* a lone U+00FC */
	{ "xn--ab--kva", BAD, NULL },			/* "a\u013ab-": ends in a hyphen */
	{ "ab--\u00fc.example", BAD, NULL },		/* "--" in positions 3 and 4 */
	{ "-\u00fc.example", BAD, NULL },
	{ "\u00fc-.example", BAD, NULL },
	{ "a\u3002b.example", BAD, NULL },		/* IDEOGRAPHIC FULL STOP */
	{ "a\uff0eb.example", BAD, NULL },
	{ "a\u00a0b.example", BAD, NULL },
	{ "a\xc2\x85" "b.example", BAD, NULL },	/* C1 control */
	{ "b\xfc" "cher.example", BAD, NULL },		/* Latin-1 */
	{ "\xc0\xae.example", BAD, NULL },		/* overlong '.' */
	{ "\xe0\x81\x81\xc3\xbc.example", BAD, NULL },	/* overlong 'A' */
	{ "\xed\xa0\x80.example", BAD, NULL },		/* surrogate */
	{ "\xf4\x90\x80\x80.example", BAD, NULL },	/* above U+10FFFF */
	{ "\xe2\x82.example", BAD, NULL },		/* truncated */
	{ "[]", BAD, NULL },
	{ "[", BAD, NULL },
	{ "[::1", BAD, NULL },
	{ "::1", BAD, NULL },
	{ "[::1]x", BAD, NULL },
	{ "[::1%25eth0]", BAD, NULL },
	{ "[fe80::1%eth0]", BAD, NULL },
	{ "[1:2:3:4:5:6:7]", BAD, NULL },
	{ "[1:2:3:4:5:6:7:8:9]", BAD, NULL },
	{ "[1:2:3:4:5:6:7:8::]", BAD, NULL },
	{ "[::1::2]", BAD, NULL },
	{ "[:::]", BAD, NULL },
	{ "[:1::]", BAD, NULL },
	{ "[1:]", BAD, NULL },
	{ "[1::2:]", BAD, NULL },
	{ "[12345::]", BAD, NULL },
	{ "[g::1]", BAD, NULL },
	{ "[1.2.3.4]", BAD, NULL },
	{ "[::1.2.3]", BAD, NULL },
	{ "[::256.1.1.1]", BAD, NULL },
	{ "[::01.1.1.1]", BAD, NULL },
	{ "[::1.2.3.4:5]", BAD, NULL },
	{ "[1:2:3:4:5:6:7:1.2.3.4]", BAD, NULL },
	{ "[v1.x]", BAD, NULL },
	{ NULL, BAD, NULL },
};

static const struct str_case idna_unicode_cases[] = {
	{ "xn--bcher-kva.example", OK, "b\u00fccher.example" },
	{ "XN--BCHER-KVA.Example.", OK, "b\u00fccher.example" },
	{ "b\u00fccher.example", OK, "b\u00fccher.example" },
	{ "B\u00fcCHER.example", OK, "b\u00fccher.example" },
	{ "xn--mnchen-3ya.de", OK, "m\u00fcnchen.de" },
	{ "www.xn--r8jz45g.jp", OK, "www.\u4f8b\u3048.jp" },
	{ "xn--e28h.example", OK, "\xf0\x9f\x98\x80.example" },
	{ "Example.COM", OK, "example.com" },
	{ "[2001:DB8::1]", OK, "[2001:db8::1]" },
	{ "192.0.2.1", OK, "192.0.2.1" },
	{ "xn--", BAD, NULL },
	{ "xn--a", BAD, NULL },
	{ "xn--abc-", BAD, NULL },
	{ "xn--bcher-kvaa", OK, "b\u00fc\u00fccher" },
	{ "xn--99999999999999999999", BAD, NULL },
	{ "xn--0", BAD, NULL },
	{ "xn--egbpdaj6bu4bxfgehfvwxn.xn--", BAD, NULL },
	{ "", BAD, NULL },
	{ NULL, BAD, NULL },
};

static void
run_str_cases(const char *fn, int (*f)(const char *, char *, size_t), const struct str_case *c,
    size_t n)
{
	char buf[BIG];
	size_t i;

	for (i = 0; i < n; i++) {
		int r = f(c[i].in, buf, sizeof(buf));
		check_result(fn, c[i].in ? c[i].in : "(null)", r, buf, c[i].status, c[i].out);
	}
}

/* ---- escaped mode ------------------------------------------------------------------------- */

struct esc_case {
	const char	*in;
	const char	*component;
	int		 status;
	const char	*out;
};

static const struct esc_case sip_to_jid_escaped_cases[] = {
	/* the worked examples of addr.h */
	{ "sip:bob@sip.example", GW, OK, "bob\\40sip.example@" GW },
	{ "sip:john%20smith@sip.example", GW, OK, "john\\20smith\\40sip.example@" GW },
	{ "sip:sip.example", GW, OK, "sip.example@" GW },
	/* more */
	{ "sip:bob@sip.example;gr=phone", GW, OK, "bob\\40sip.example@" GW },
	{ "sips:Bob@SIP.example:5061", GW, NOTCANON, NULL },
	{ "sips:bob@SIP.example:5061", GW, OK, "bob\\40sip.example@" GW },
	{ "sip:bob%20@sip.example", GW, OK, "bob\\20\\40sip.example@" GW },
	{ "sip:a%40b@sip.example", GW, OK, "a\\40b\\40sip.example@" GW },
	{ "sip:o'hara@sip.example", GW, OK, "o\\27hara\\40sip.example@" GW },
	{ "sip:%5C40x@sip.example", GW, OK, "\\5c40x\\40sip.example@" GW },
	{ "sip:bob@xn--bcher-kva.example", GW, OK, "bob\\40b\u00fccher.example@" GW },
	{ "sip:bob@192.0.2.1", GW, OK, "bob\\40192.0.2.1@" GW },
	{ "sip:bob@[2001:db8::1]", GW, OK, "bob\\40[2001\\3adb8\\3a\\3a1]@" GW },
	{ "sip:bob@sip.example", "SIP-GW.xmpp.example.", OK, "bob\\40sip.example@" GW },
	{ "sip:bob@localhost", GW, BAD, NULL },	/* no peer domain */
	{ "sip:localhost", GW, BAD, NULL },
	{ "sip:%20bob@sip.example", GW, BAD, NULL },
	{ "sip:%00@sip.example", GW, BAD, NULL },
	{ "sip:@sip.example", GW, BAD, NULL },
	{ "tel:+15551234", GW, SCHEME, NULL },
	{ "sip:bob@sip.example", "-bad.example", BAD, NULL },
	{ "sip:bob@sip.example", "", BAD, NULL },
	{ "sip:bob@sip.example", NULL, BAD, NULL },
	{ NULL, GW, BAD, NULL },
};

static const struct esc_case jid_to_sip_escaped_cases[] = {
	/* the worked examples of addr.h */
	{ "bob\\40sip.example@" GW "/x", GW, OK, "sip:bob@sip.example" },
	{ "bob@" GW, GW, BAD, NULL },
	{ "bob\\40sip.example@other.example", GW, DOM, NULL },
	/* more */
	{ "sip.example@" GW, GW, OK, "sip:sip.example" },
	{ "john\\20smith\\40sip.example@" GW, GW, OK, "sip:john%20smith@sip.example" },
	{ "a\\40b\\40sip.example@" GW, GW, OK, "sip:a%40b@sip.example" },
	{ "o\\27hara\\40sip.example@" GW, GW, OK, "sip:o'hara@sip.example" },
	{ "bob\\40SIP.Example.@" GW, GW, NOTCANON, NULL },
	{ "bob\\40sip.example.@" GW, GW, OK, "sip:bob@sip.example" },
	{ "bob\\40b\u00fccher.example@" GW, GW, OK, "sip:bob@xn--bcher-kva.example" },
	{ "bob\\40192.0.2.1@" GW, GW, OK, "sip:bob@192.0.2.1" },
	{ "bob\\40[2001\\3adb8\\3a\\3a1]@" GW, GW, OK, "sip:bob@[2001:db8::1]" },
	{ "bob\\40sip.example@SIP-GW.XMPP.EXAMPLE", GW, OK, "sip:bob@sip.example" },
	{ "bob\\40sip.example@" GW ".", GW, OK, "sip:bob@sip.example" },
	{ "bob\\40sip.example@" GW, "SIP-GW.xmpp.example", OK, "sip:bob@sip.example" },
	{ "\\40sip.example@" GW, GW, BAD, NULL },	/* empty user */
	{ "bob\\40@" GW, GW, BAD, NULL },		/* empty host */
	{ "bob\\40-x.example@" GW, GW, BAD, NULL },
	{ "bob\\40sip_x.example@" GW, GW, BAD, NULL },
	{ "bob\\40localhost@" GW, GW, BAD, NULL },
	{ "bob\\40sip.example\\20@" GW, GW, BAD, NULL },
	{ GW, GW, BAD, NULL },				/* the gateway itself */
	{ "a<b@other.example", GW, BAD, NULL },		/* malformed wins over foreign */
	{ "bob\\40sip.example@" GW, "bad_component", BAD, NULL },
	{ "bob\\40sip.example@" GW, NULL, BAD, NULL },
	{ NULL, GW, BAD, NULL },
};

static void
run_esc_cases(const char *fn, int (*f)(const char *, const char *, char *, size_t),
    const struct esc_case *c, size_t n)
{
	char buf[BIG];
	size_t i;

	for (i = 0; i < n; i++) {
		int r = f(c[i].in, c[i].component, buf, sizeof(buf));
		check_result(fn, c[i].in ? c[i].in : "(null)", r, buf, c[i].status, c[i].out);
	}
}

/* ---- XEP-0106 ------------------------------------------------------------------------------ */

struct xep_case {
	const char	*in;
	size_t		 len;		/* 0: strlen(in) */
	int		 status;
	const char	*out;
};

/* The transformations of XEP-0106 section 5, both ways. */
static const struct {
	const char	*raw;
	const char	*escaped;
} xep0106_examples[] = {
	{ "space cadet", "space\\20cadet" },
	{ "call me \"ishmael\"", "call\\20me\\20\\22ishmael\\22" },
	{ "at&t guy", "at\\26t\\20guy" },
	{ "d'artagnan", "d\\27artagnan" },
	{ "/.fanboy", "\\2f.fanboy" },
	{ "::foo::", "\\3a\\3afoo\\3a\\3a" },
	{ "<foo>", "\\3cfoo\\3e" },
	{ "user@host", "user\\40host" },
	{ "c:\\net", "c\\3a\\net" },
	{ "c:\\\\net", "c\\3a\\\\net" },
	{ "c:\\cool stuff", "c\\3a\\cool\\20stuff" },
	{ "c:\\5commas", "c\\3a\\5c5commas" },
};

static const struct xep_case escape_cases[] = {
	{ "", 0, OK, "" },
	{ "plain", 0, OK, "plain" },
	{ "\\", 0, OK, "\\" },
	{ "\\20", 0, OK, "\\5c20" },
	{ "\\5C", 0, OK, "\\5c5C" },
	{ "\\2", 0, OK, "\\2" },
	{ "\\21", 0, OK, "\\21" },
	{ "\\zz", 0, OK, "\\zz" },
	{ "a\\\\40", 0, OK, "a\\\\5c40" },
	{ "\u00fc@\u00fc", 0, OK, "\u00fc\\40\u00fc" },
	{ " bob", 0, BAD, NULL },
	{ "bob ", 0, BAD, NULL },
	{ " ", 0, BAD, NULL },
	{ "a\0b", 3, BAD, NULL },
	{ "a\0", 2, BAD, NULL },
};

static const struct xep_case unescape_cases[] = {
	{ "", 0, OK, "" },
	{ "plain", 0, OK, "plain" },
	{ "\\2F\\3A\\3C\\3E\\5C", 0, OK, "/:<>\\" },
	{ "\\", 0, OK, "\\" },
	{ "a\\", 0, OK, "a\\" },
	{ "\\2", 0, OK, "\\2" },
	{ "\\21", 0, OK, "\\21" },
	{ "\\zz", 0, OK, "\\zz" },
	{ "\\5c5c", 0, OK, "\\5c" },
	{ "\\5c20", 0, OK, "\\20" },
	{ "\\20bob\\20", 0, OK, " bob " },	/* a transformation, not a validation */
	{ "\\40\\40", 0, OK, "@@" },
	{ "a\0b", 3, BAD, NULL },
	{ "\\2\0", 3, BAD, NULL },
};

static void
run_xep_cases(const char *fn, int (*f)(const char *, size_t, char *, size_t),
    const struct xep_case *c, size_t n)
{
	char buf[BIG];
	size_t i;

	for (i = 0; i < n; i++) {
		size_t len = c[i].len ? c[i].len : strlen(c[i].in);
		int r = f(c[i].in, len, buf, sizeof(buf));
		check_result(fn, c[i].in, r, buf, c[i].status, c[i].out);
	}
}

static void
test_xep0106(void)
{
	char buf[BIG];
	size_t i;
	int r;

	for (i = 0; i < NELEM(xep0106_examples); i++) {
		const char *raw = xep0106_examples[i].raw, *esc = xep0106_examples[i].escaped;
		r = map_jid_escape(raw, strlen(raw), buf, sizeof(buf));
		check_result("map_jid_escape", raw, r, buf, OK, esc);
		r = map_jid_unescape(esc, strlen(esc), buf, sizeof(buf));
		check_result("map_jid_unescape", esc, r, buf, OK, raw);
	}
	run_xep_cases("map_jid_escape", map_jid_escape, escape_cases, NELEM(escape_cases));
	run_xep_cases("map_jid_unescape", map_jid_unescape, unescape_cases, NELEM(unescape_cases));
	CHECK_INT(map_jid_escape(NULL, 0, buf, sizeof(buf)), 0, "escape(NULL, 0)");
	CHECK_INT(map_jid_escape(NULL, 1, buf, sizeof(buf)), BAD, "escape(NULL, 1)");
	CHECK_INT(map_jid_unescape(NULL, 1, buf, sizeof(buf)), BAD, "unescape(NULL, 1)");
	/* only srclen octets are read */
	r = map_jid_escape("a@bXYZ", 3, buf, sizeof(buf));
	check_result("map_jid_escape/len", "a@b", r, buf, OK, "a\\40b");
	r = map_jid_unescape("a\\40", 3, buf, sizeof(buf));
	check_result("map_jid_unescape/len", "a\\4", r, buf, OK, "a\\4");
}

/* ---- RFC 3492 section 7.1 samples, through the IDNA functions ------------------------------- */

static const struct {
	const char	*name;
	const char	*ulabel;	/* as listed, mixed case */
	const char	*puny;		/* as listed, with its mixed-case annotation */
} rfc3492_samples[] = {
	{ "(A) Arabic", "\u0644\u064a\u0647\u0645\u0627\u0628\u062a\u0643\u0644\u0645\u0648\u0634"
	  "\u0639\u0631\u0628\u064a\u061f", "egbpdaj6bu4bxfgehfvwxn" },
	{ "(B) Chinese simplified", "\u4ed6\u4eec\u4e3a\u4ec0\u4e48\u4e0d\u8bf4\u4e2d\u6587",
	  "ihqwcrb4cv8a8dqg056pqjye" },
	{ "(C) Chinese traditional", "\u4ed6\u5011\u7232\u4ec0\u9ebd\u4e0d\u8aaa\u4e2d\u6587",
	  "ihqwctvzc91f659drss3x8bo0yb" },
	{ "(D) Czech", "Pro\u010dprost\u011bnemluv\u00ed\u010desky",
	  "Proprostnemluvesky-uyb24dma41a" },
	{ "(E) Hebrew", "\u05dc\u05de\u05d4\u05d4\u05dd\u05e4\u05e9\u05d5\u05d8\u05dc\u05d0\u05de"
	  "\u05d3\u05d1\u05e8\u05d9\u05dd\u05e2\u05d1\u05e8\u05d9\u05ea",
	  "4dbcagdahymbxekheh6e0a7fei0b" },
	{ "(F) Hindi", "\u092f\u0939\u0932\u094b\u0917\u0939\u093f\u0928\u094d\u0926\u0940\u0915"
	  "\u094d\u092f\u094b\u0902\u0928\u0939\u0940\u0902\u092c\u094b\u0932\u0938\u0915\u0924"
	  "\u0947\u0939\u0948\u0902", "i1baa7eci9glrd9b2ae1bj0hfcgg6iyaf8o0a1dig0cd" },
	{ "(G) Japanese", "\u306a\u305c\u307f\u3093\u306a\u65e5\u672c\u8a9e\u3092\u8a71\u3057\u3066"
	  "\u304f\u308c\u306a\u3044\u306e\u304b", "n8jok5ay5dzabd5bym9f0cm5685rrjetr6pdxa" },
	{ "(I) Russian", "\u043f\u043e\u0447\u0435\u043c\u0443\u0436\u0435\u043e\u043d\u0438\u043d"
	  "\u0435\u0433\u043e\u0432\u043e\u0440\u044f\u0442\u043f\u043e\u0440\u0443\u0441\u0441"
	  "\u043a\u0438", "b1abfaaepdrnnbgefbaDotcwatmq2g4l" },
	{ "(J) Spanish", "Porqu\u00e9nopuedensimplementehablarenEspa\u00f1ol",
	  "PorqunopuedensimplementehablarenEspaol-fmd56a" },
	{ "(K) Vietnamese",
	  "T\u1ea1isaoh\u1ecdkh\u00f4ngth\u1ec3ch\u1ec9n\u00f3iti\u1ebfngVi\u1ec7t",
	  "TisaohkhngthchnitingVit-kjcr8268qyxafd2f1b9g" },
	{ "(L) 3<nen>B<gumi><kinpachi><sensei>", "3\u5e74B\u7d44\u91d1\u516b\u5148\u751f",
	  "3B-ww4c5e180e575a65lsy2b" },
	{ "(M) <amuro><namie>-with-SUPER-MONKEYS",
	  "\u5b89\u5ba4\u5948\u7f8e\u6075-with-SUPER-MONKEYS",
	  "-with-SUPER-MONKEYS-pc58ag80a8qai00g7n9n" },
	{ "(N) Hello-Another-Way-<sorezore><no><basho>",
	  "Hello-Another-Way-\u305d\u308c\u305e\u308c\u306e\u5834\u6240",
	  "Hello-Another-Way--fc4qua05auwb3674vfr0b" },
	{ "(O) <hitotsu><yane><no><shita>2", "\u3072\u3068\u3064\u5c4b\u6839\u306e\u4e0b" "2",
	  "2-u9tlzr9756bt3uc0v" },
	{ "(P) Maji<de>Koi<suru>5<byou><mae>", "Maji\u3067Koi\u3059\u308b" "5\u79d2\u524d",
	  "MajiKoi5-783gue6qz075azm5e" },
	{ "(Q) <pafii>de<runba>", "\u30d1\u30d5\u30a3\u30fc" "de\u30eb\u30f3\u30d0",
	  "de-jg4avhby1noc0d" },
	{ "(R) <sono><supiido><de>", "\u305d\u306e\u30b9\u30d4\u30fc\u30c9\u3067",
	  "d9juau41awczczp" },
};

static void
ascii_lower(const char *s, char *dst)
{
	for (; *s; s++, dst++)
		*dst = *s >= 'A' && *s <= 'Z' ? (char)(*s - 'A' + 'a') : *s;
	*dst = '\0';
}

static void
test_rfc3492(void)
{
	char buf[BIG], want[1024], ace[2048], tmp[512];
	size_t i;
	int r;

	for (i = 0; i < NELEM(rfc3492_samples); i++) {
		/* IDNA folds ASCII to lower case: the annotation's capitals become small letters */
		ascii_lower(rfc3492_samples[i].puny, tmp);
		snprintf(want, sizeof(want), "xn--%s", tmp);
		snprintf(ace, sizeof(ace), "xn--%s", rfc3492_samples[i].puny);

		r = map_idna_to_ascii(rfc3492_samples[i].ulabel, buf, sizeof(buf));
		check_result("to_ascii", rfc3492_samples[i].name, r, buf, OK, want);

		ascii_lower(rfc3492_samples[i].ulabel, tmp);
		r = map_idna_to_unicode(ace, buf, sizeof(buf));
		check_result("to_unicode", rfc3492_samples[i].name, r, buf, OK, tmp);
		r = map_idna_to_unicode(want, buf, sizeof(buf));
		check_result("to_unicode/lower", rfc3492_samples[i].name, r, buf, OK, tmp);

		/* as the label of a JID domain, and back from a SIP URI */
		snprintf(tmp, sizeof(tmp), "x@%s.example", rfc3492_samples[i].ulabel);
		snprintf(ace, sizeof(ace), "sip:x@%s.example", want);
		r = map_jid_to_sip(tmp, 0, buf, sizeof(buf));
		check_result("jid_to_sip", rfc3492_samples[i].name, r, buf, OK, ace);
	}

	/* (H) Korean: its A-label is 73 octets, longer than a DNS label may be */
	r = map_idna_to_ascii("\uc138\uacc4\uc758\ubaa8\ub4e0\uc0ac\ub78c\ub4e4\uc774\ud55c"
	    "\uad6d\uc5b4\ub97c\uc774\ud574\ud55c\ub2e4\uba74\uc5bc\ub9c8\ub098\uc88b\uc744\uae4c",
	    buf, sizeof(buf));
	CHECK_INT(r, BAD, "(H) Korean to_ascii: label too long");
	r = map_idna_to_unicode("xn--989aomsvi5e83db1d2a355cv1e0vak1dwrv93d5"
	    "xbh15a0dt30a5jpsd879ccm6fea98c", buf, sizeof(buf));
	CHECK_INT(r, BAD, "(H) Korean to_unicode: label too long");

	/* (S) "-> $1.00 <-" encodes to itself plus a delimiter, but is no host name */
	CHECK_INT(map_idna_to_ascii("-> $1.00 <-", buf, sizeof(buf)), BAD, "(S) to_ascii");
	CHECK_INT(map_idna_to_unicode("xn---> $1.00 <--", buf, sizeof(buf)), BAD, "(S) to_unicode");
}

/* ---- ENOSPC at every buffer length --------------------------------------------------------- */

static int
fn_jid_to_sip_gr(const char *in, char *buf, size_t len)
{
	return map_jid_to_sip(in, 1, buf, len);
}

static int
fn_jid_to_sip_esc(const char *in, char *buf, size_t len)
{
	return map_jid_to_sip_escaped(in, GW, buf, len);
}

static int
fn_sip_to_jid_esc(const char *in, char *buf, size_t len)
{
	return map_sip_to_jid_escaped(in, GW, buf, len);
}

static int
fn_escape(const char *in, char *buf, size_t len)
{
	return map_jid_escape(in, strlen(in), buf, len);
}

static int
fn_unescape(const char *in, char *buf, size_t len)
{
	return map_jid_unescape(in, strlen(in), buf, len);
}

static const struct {
	const char	*name;
	int		(*fn)(const char *, char *, size_t);
	const char	*in;
	const char	*out;		/* NULL: malformed, whatever the buffer */
} sweep_cases[] = {
	{ "jid_to_sip", fn_jid_to_sip_gr, "j\u00fcrgen@b\u00fccher.example/my phone",
	  "sip:j%C3%BCrgen@xn--bcher-kva.example;gr=my%20phone" },
	{ "sip_to_jid", map_sip_to_jid, "sip:john%20smith@xn--bcher-kva.example;gr=x",
	  "john\\20smith@b\u00fccher.example/x" },
	{ "jid_to_sip_escaped", fn_jid_to_sip_esc, "bob\\40[2001\\3adb8\\3a\\3a1]@" GW "/r",
	  "sip:bob@[2001:db8::1]" },
	{ "sip_to_jid_escaped", fn_sip_to_jid_esc, "sip:john%20smith@sip.example",
	  "john\\20smith\\40sip.example@" GW },
	{ "jid_domain", map_jid_domain, "a@XN--BCHER-KVA.example/r", "b\u00fccher.example" },
	{ "jid_bare", map_jid_bare, "a@XN--BCHER-KVA.example/r", "a@b\u00fccher.example" },
	{ "sip_domain", map_sip_domain, "sip:[2001:db8:0:0:1:0:0:1]:5060", "[2001:db8::1:0:0:1]" },
	{ "idna_to_ascii", map_idna_to_ascii, "\u4f8b\u3048.\u30c6\u30b9\u30c8",
	  "xn--r8jz45g.xn--zckzah" },
	{ "idna_to_unicode", map_idna_to_unicode, "xn--r8jz45g.xn--zckzah",
	  "\u4f8b\u3048.\u30c6\u30b9\u30c8" },
	{ "jid_escape", fn_escape, "c:\\5commas", "c\\3a\\5c5commas" },
	{ "jid_unescape", fn_unescape, "c\\3a\\5c5commas", "c:\\5commas" },
	/* a malformed address is malformed at every buffer size, never ENOSPC */
	{ "jid_to_sip/bad", fn_jid_to_sip_gr, "alice@-x.example/r", NULL },
	{ "sip_to_jid/bad", map_sip_to_jid, "sip:bob%00@sip.example", NULL },
	{ "sip_to_jid_escaped/bad", fn_sip_to_jid_esc, "sip:bob@localhost", NULL },
	{ "idna_to_ascii/bad", map_idna_to_ascii, "xn--a.example", NULL },
	{ "jid_escape/bad", fn_escape, "bob ", NULL },
};

/* The one-pass path for plain ASCII names (domain_canon_ldh) against the full one on the same
 * input, both directions, every buffer size that matters: the same status, the same octets. */
static void
ldh_same(const char *d)
{
	char a[1100], b[1100];
	size_t sizes[] = { sizeof(a), strlen(d) + 1, strlen(d), 1 };
	size_t k;
	int ascii, ra, rb;

	for (ascii = 0; ascii < 2; ascii++)
		for (k = 0; k < NELEM(sizes); k++) {
			memset(a, 'A', sizeof(a));
			memset(b, 'A', sizeof(b));
			ra = ascii ? map_idna_to_ascii(d, a, sizes[k]) :
				     map_idna_to_unicode(d, a, sizes[k]);
			rb = map_idna_full(d, ascii, b, sizes[k]);
			CHECK(ra == rb, "ldh path %s (ascii %d, size %zu): %d, full %d", d, ascii,
			      sizes[k], ra, rb);
			if (ra >= 0 && rb >= 0)
				CHECK(memcmp(a, b, (size_t)ra + 1) == 0, "ldh path %s (ascii %d): %s, "
				      "full %s", d, ascii, a, b);
		}
}

static void
test_ldh_path(void)
{
	static const char *const names[] = {
		"example.com", "EXAMPLE.com.", "a", "a.", ".a", "a..b", "a.b.", "a.b..", "-a.b",
		"a-.b", "a.-b", "a.b-", "a--b.c", "xn--a.b", "XN--bcher-kva.example", "a.xn--",
		"xn-.b", "xn-a.b", "xnx--a.b", "1.2.3.4", "1.2.3.4.", "1.2.3", "a.123", "123.a",
		"123", "1a.2b", "[::1]", "[::1].", "a_b.c", "a b.c", "a.b\xc3\xbc", "\xc3\xbc.a",
		"a.b:5060", "a@b", "", ".", "..", "-", "0", "0.", "a.0x1",
	};
	char name[400];
	unsigned seed = 12345;
	size_t i, j, n;

	for (i = 0; i < NELEM(names); i++)
		ldh_same(names[i]);
	for (i = 0; i < 5; i++) {	/* labels of 62 to 64 octets, names of 252 to 256 */
		memset(name, 'a', sizeof(name));
		name[61 + i] = '\0';
		name[30] = '.';
		ldh_same(name + 31);
		ldh_same(name);
		memset(name, 'b', 260);
		for (j = 63; j < 260; j += 64)
			name[j] = '.';
		name[251 + i] = '\0';
		ldh_same(name);
		name[251 + i] = '.';
		name[252 + i] = '\0';
		ldh_same(name);
	}
	for (i = 0; i < 20000; i++) {	/* random names over the octets that matter */
		static const char alphabet[] = "aZ09-.xn_\xc3\xbc[]:";
		n = (seed = seed * 1103515245u + 12345u) >> 16 & 31;
		for (j = 0; j < n; j++) {
			seed = seed * 1103515245u + 12345u;
			name[j] = alphabet[(seed >> 16) % (sizeof(alphabet) - 1)];
		}
		name[n] = '\0';
		ldh_same(name);
	}
}

static void
test_enospc(void)
{
	size_t i, n, need;
	char *buf;
	int r;

	for (i = 0; i < NELEM(sweep_cases); i++) {
		need = sweep_cases[i].out ? strlen(sweep_cases[i].out) : 40;
		for (n = 0; n <= need + 1; n++) {
			/* exactly n octets on the heap: ASan reports any write past them */
			buf = malloc(n ? n : 1);
			if (buf == NULL)
				abort();
			r = sweep_cases[i].fn(sweep_cases[i].in, buf, n);
			if (sweep_cases[i].out == NULL)
				CHECK_INT(r, BAD, "%s at len %zu", sweep_cases[i].name, n);
			else if (n <= need)
				CHECK_INT(r, NOSPC, "%s at len %zu", sweep_cases[i].name, n);
			else
				check_result(sweep_cases[i].name, sweep_cases[i].in, r, buf, OK,
				    sweep_cases[i].out);
			free(buf);
		}
		r = sweep_cases[i].fn(sweep_cases[i].in, NULL, 0);
		CHECK_INT(r, sweep_cases[i].out ? NOSPC : BAD, "%s with no buffer",
		    sweep_cases[i].name);
	}
}

/* ---- round trips --------------------------------------------------------------------------- */

/* Canonical JIDs: domain in lower case with U-labels, escapes as map_jid_escape writes them. */
static const char *const jid_round_trips[] = {
	"alice@xmpp.example",
	"alice@xmpp.example/balcony",
	"alice@xmpp.example/Balcony Phone",
	"d\\27artagnan@xmpp.example",
	"john\\20smith@xmpp.example/x",
	"\\22\\26\\27\\2f\\3a\\3c\\3e\\40@xmpp.example",
	"c\\3a\\5c5commas@xmpp.example",
	"a\\b@xmpp.example",
	"a\\5c20b@xmpp.example",
	"+15551234;phone-context=example.com@xmpp.example",
	"j\u00fcrgen@xmpp.example/\u00fc\u00fc",
	"anna@b\u00fccher.example",
	"\u4f8b@\u4f8b\u3048.\u30c6\u30b9\u30c8/\xf0\x9f\x98\x80",
	"xmpp.example",
	"xmpp.example/r",
	"bob@192.0.2.1/r",
	"bob@[2001:db8::1]/r",
	"bob@[::ffff:192.0.2.1]",
	"bob@localhost",
	"a/b@c",
	"bob@xmpp.example/urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6",
	"bob@xmpp.example/a;b=c?d&e%f",
	"100%@xmpp.example/100%",
};

/* Canonical SIP URIs: lower-case A-labels, upper-case escapes only where needed. */
static const char *const sip_round_trips[] = {
	"sip:bob@sip.example",
	"sip:bob@sip.example;gr=phone",
	"sip:j%C3%BCrgen@xn--bcher-kva.example",
	"sip:john%20smith@sip.example",
	"sip:o'hara@sip.example",
	"sip:a%40b@sip.example",
	"sip:a%5Cb@sip.example",
	"sip:%5C20@sip.example",
	"sip:a+b=c$d,e@sip.example",
	"sip:sip.example",
	"sip:bob@[2001:db8::1];gr=urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6",
	"sip:bob@192.0.2.1;gr=a%20b",
};

/* Escaped-mode JIDs under GW. */
static const char *const escaped_round_trips[] = {
	"bob\\40sip.example@" GW,
	"john\\20smith\\40sip.example@" GW,
	"sip.example@" GW,
	"a\\40b\\40sip.example@" GW,
	"o\\27hara\\40sip.example@" GW,
	"\\5c40x\\40sip.example@" GW,
	"bob\\20\\40sip.example@" GW,
	"j\u00fcrgen\\40b\u00fccher.example@" GW,
	"bob\\40192.0.2.1@" GW,
	"bob\\40[2001\\3adb8\\3a\\3a1]@" GW,
	"+1555\\40sip.example@" GW,
};

static void
test_round_trips(void)
{
	char uri[MAP_URI_MAX], back[MAP_JID_MAX + 1], again[MAP_URI_MAX], bare[MAP_JID_MAX + 1];
	size_t i;
	int r;

	for (i = 0; i < NELEM(jid_round_trips); i++) {
		const char *j = jid_round_trips[i];
		r = map_jid_to_sip(j, 1, uri, sizeof(uri));
		CHECK(r > 0, "round trip %s: jid_to_sip %d", j, r);
		r = map_sip_to_jid(uri, back, sizeof(back));
		CHECK(r > 0, "round trip %s: sip_to_jid(%s) %d", j, uri, r);
		if (r > 0)
			CHECK_STR(back, j, "round trip via %s", uri);
		/* without the resource, the way back gives the bare JID */
		r = map_jid_to_sip(j, 0, uri, sizeof(uri));
		CHECK(r > 0, "round trip %s: jid_to_sip %d", j, r);
		r = map_sip_to_jid(uri, back, sizeof(back));
		CHECK(r > 0 && map_jid_bare(j, bare, sizeof(bare)) > 0, "bare round trip %s", j);
		if (r > 0)
			CHECK_STR(back, bare, "bare round trip via %s", uri);
	}
	for (i = 0; i < NELEM(sip_round_trips); i++) {
		const char *s = sip_round_trips[i];
		r = map_sip_to_jid(s, back, sizeof(back));
		CHECK(r > 0, "round trip %s: sip_to_jid %d", s, r);
		r = map_jid_to_sip(back, 1, again, sizeof(again));
		CHECK(r > 0, "round trip %s: jid_to_sip(%s) %d", s, back, r);
		if (r > 0)
			CHECK_STR(again, s, "round trip via %s", back);
	}
	for (i = 0; i < NELEM(escaped_round_trips); i++) {
		const char *j = escaped_round_trips[i];
		r = map_jid_to_sip_escaped(j, GW, uri, sizeof(uri));
		CHECK(r > 0, "escaped round trip %s: %d", j, r);
		r = map_sip_to_jid_escaped(uri, GW, back, sizeof(back));
		CHECK(r > 0, "escaped round trip %s: back from %s: %d", j, uri, r);
		if (r > 0)
			CHECK_STR(back, j, "escaped round trip via %s", uri);
	}
	for (i = 0; i < NELEM(xep0106_examples); i++) {
		const char *raw = xep0106_examples[i].raw;
		r = map_jid_escape(raw, strlen(raw), uri, sizeof(uri));
		CHECK(r > 0, "escape %s", raw);
		r = map_jid_unescape(uri, (size_t)r, back, sizeof(back));
		CHECK(r >= 0, "unescape %s", uri);
		if (r >= 0)
			CHECK_STR(back, raw, "escape round trip");
	}
	for (i = 0; i < NELEM(idna_ascii_cases); i++) {
		const char *d = idna_ascii_cases[i].in;
		if (idna_ascii_cases[i].status != OK)
			continue;
		r = map_idna_to_unicode(idna_ascii_cases[i].out, back, sizeof(back));
		CHECK(r > 0 && map_idna_to_unicode(d, again, sizeof(again)) == r, "idna %s", d);
		if (r > 0)
			CHECK_STR(back, again, "to_unicode(to_ascii(%s))", d);
	}
}

/* ---- hostile and very long inputs ------------------------------------------------------------ */

/* s (freshly allocated) = prefix, then n copies of unit, then suffix. */
static char *
repeat(const char *prefix, const char *unit, size_t n, const char *suffix)
{
	size_t pl = strlen(prefix), ul = strlen(unit), sl = strlen(suffix), i;
	char *s = malloc(pl + ul * n + sl + 1), *p;

	if (s == NULL)
		abort();
	memcpy(s, prefix, pl);
	for (p = s + pl, i = 0; i < n; i++, p += ul)
		memcpy(p, unit, ul);
	memcpy(p, suffix, sl + 1);
	return s;
}

/* 63 octets: three of these and a dot each, then 61 more, make a 253-octet name */
#define LABEL63 "abcdefghijklmnopqrstuvwxyz01234567890abcdefghijklmnopqrstuvwxyz"

static const struct {
	const char	*name;
	int		(*fn)(const char *, char *, size_t);
	const char	*prefix, *unit;
	size_t		 n;
	const char	*suffix;
	int		 status;
} long_cases[] = {
	/* parts at and just over 1023 octets */
	{ "localpart 1023", map_jid_bare, "", "a", 1023, "@x.example", OK },
	{ "localpart 1024", map_jid_bare, "", "a", 1024, "@x.example", BAD },
	{ "localpart 341 x 3", map_jid_bare, "", "\u4e2d", 341, "@x.example", OK },
	{ "localpart 342 x 3", map_jid_bare, "", "\u4e2d", 342, "@x.example", BAD },
	{ "resource 1023", map_jid_bare, "a@x.example/", "r", 1023, "", OK },
	{ "resource 1024", map_jid_bare, "a@x.example/", "r", 1024, "", BAD },
	{ "gr 1023", map_sip_to_jid, "sip:a@x.example;gr=", "r", 1023, "", OK },
	{ "gr 1024", map_sip_to_jid, "sip:a@x.example;gr=", "r", 1024, "", BAD },
	{ "gr 1024 escaped", map_sip_to_jid, "sip:a@x.example;gr=", "%41", 1024, "", BAD },
	{ "user 1023", map_sip_to_jid, "sip:", "b", 1023, "@x.example", OK },
	{ "user 1024", map_sip_to_jid, "sip:", "b", 1024, "@x.example", BAD },
	{ "user 341 quotes", map_sip_to_jid, "sip:", "'", 341, "@x.example", OK },
	{ "user 342 quotes", map_sip_to_jid, "sip:", "'", 342, "@x.example", BAD },
	{ "user 2000 escapes", map_sip_to_jid, "sip:", "%41", 2000, "@x.example", BAD },
	{ "user 1023 max jid", fn_jid_to_sip_gr, "", "\\22", 341, "@x.example/r", OK },
	/* labels and names */
	{ "label 63", map_idna_to_ascii, "", "a", 63, ".example", OK },
	{ "label 64", map_idna_to_ascii, "", "a", 64, ".example", BAD },
	{ "label 63 ending", map_idna_to_ascii, "x.", "a", 63, "", OK },
	{ "label 64 ending", map_idna_to_ascii, "x.", "a", 64, "", BAD },
	{ "name 253", map_idna_to_ascii, "", LABEL63 ".",
	  3, "abcdefghijklmnopqrstuvwxyz01234567890abcdefghijklmnopqrstuvwx", OK },
	{ "name 254", map_idna_to_ascii, "", LABEL63 ".",
	  3, "abcdefghijklmnopqrstuvwxyz01234567890abcdefghijklmnopqrstuvwxy", BAD },
	{ "name 253 trailing dot", map_idna_to_ascii, "", "a.", 127, "", OK },
	{ "name 255 trailing dot", map_idna_to_ascii, "", "a.", 128, "", BAD },
	{ "U-label 59 points", map_idna_to_ascii, "", "\u00fc", 59, "", BAD },
	{ "U-label too many points", map_idna_to_ascii, "", "\u00fc", 64, ".example", BAD },
	{ "xn-- label 64", map_idna_to_unicode, "xn--", "a", 60, "", BAD },
	/* very long strings of every kind */
	{ "huge localpart", map_jid_bare, "", "a", 100000, "@x.example", BAD },
	{ "huge domain", map_jid_domain, "", "a.", 50000, "example", BAD },
	{ "huge resource", map_jid_bare, "a@x.example/", "r", 100000, "", BAD },
	{ "huge user", map_sip_to_jid, "sip:", "%C3%BC", 50000, "@x.example", BAD },
	{ "huge host", map_sip_domain, "sip:bob@", "a", 100000, ".example", BAD },
	{ "huge port", map_sip_to_jid, "sip:bob@x.example:", "0", 100000, "1", OK },
	{ "huge params", map_sip_to_jid, "sip:bob@x.example", ";lr", 30000, ";gr=x", OK },
	{ "huge headers", map_sip_to_jid, "sip:bob@x.example?a=b", "&c=d", 30000, "", OK },
	{ "huge label", map_idna_to_unicode, "xn--", "9", 100000, "", BAD },
	{ "huge U-label", map_idna_to_ascii, "", "\u4e2d", 100000, "", BAD },
	{ "huge escape", fn_escape, "", "@", 100000, "", OK },
};

static void
test_long(void)
{
	size_t i;
	char *in, *buf;
	int r;

	/* big enough for "huge escape" (3 x 100000) */
	if ((buf = malloc(400000)) == NULL)
		abort();
	for (i = 0; i < NELEM(long_cases); i++) {
		in = repeat(long_cases[i].prefix, long_cases[i].unit, long_cases[i].n,
		    long_cases[i].suffix);
		r = long_cases[i].fn(in, buf, 400000);
		if (long_cases[i].status == OK)
			CHECK(r > 0 && (size_t)r == strlen(buf), "%s: %d", long_cases[i].name, r);
		else
			CHECK_INT(r, long_cases[i].status, "%s", long_cases[i].name);
		free(in);
	}
	free(buf);
}

/* ---- the buffer bounds of addr.h ---------------------------------------------------------- */

/* The longest URI: a 1023-octet localpart and resource, every octet percent-encoded, and a
 * 253-octet domain.  It must fit MAP_URI_MAX, and its JID MAP_JID_MAX + 1. */
static void
test_bounds(void)
{
	char *local = repeat("", "\u4e2d", 341, ""), *res = repeat("", "\u00fc", 511, "r");
	char jid[MAP_JID_MAX + 1], back[MAP_JID_MAX + 1], *uri = malloc(MAP_URI_MAX);
	int r;

	if (uri == NULL)
		abort();
	snprintf(jid, sizeof(jid), "%s@%s.%s.%s.%.61s/%s", local, LABEL63, LABEL63, LABEL63, LABEL63,
	    res);
	CHECK_INT(strlen(jid), 1023 + 1 + 253 + 1 + 1023, "worst-case JID length");
	r = map_jid_to_sip(jid, 1, uri, MAP_URI_MAX);
	CHECK_INT(r, 4 + 3069 + 1 + 253 + 4 + 3 * 1022 + 1, "worst-case URI length");
	r = map_sip_to_jid(uri, back, sizeof(back));
	CHECK(r > 0 && strcmp(back, jid) == 0, "worst-case round trip: %d", r);
	free(local);
	free(res);
	free(uri);
}

/* ---- map_addr_strerror ----------------------------------------------------------------------- */

static const struct {
	int		 status;
	const char	*text;
} strerror_cases[] = {
	{ MAP_ADDR_OK, "success" },
	{ 17, "success" },
	{ MAP_ADDR_EMALFORMED, "malformed address" },
	{ MAP_ADDR_EDOMAIN, "address outside the mapped domain" },
	{ MAP_ADDR_ENOSPC, "buffer too small" },
	{ MAP_ADDR_ESCHEME, "unsupported URI scheme" },
	{ MAP_ADDR_ENOTCANON, "a user part the XMPP side would change (not one-to-one)" },
	{ -99, "unknown address status" },
};

static void
test_strerror(void)
{
	size_t i;

	for (i = 0; i < NELEM(strerror_cases); i++)
		CHECK_STR(map_addr_strerror(strerror_cases[i].status), strerror_cases[i].text,
		    "strerror(%d)", strerror_cases[i].status);
}

/* map_jid_to_sip_in: for every JID of the table, in its own domain the same as map_jid_to_sip
 * (one parse instead of two); in another domain, or unparsable, MAP_ADDR_EDOMAIN and not in it. */
static void
test_jid_to_sip_in(void)
{
	char want[BIG], got[BIG], dom[BIG];
	size_t i;

	for (i = 0; i < NELEM(jid_to_sip_cases); i++) {
		const char *jid = jid_to_sip_cases[i].jid, *name = jid ? jid : "(null)";
		int in = -1, r, w;

		if (jid_to_sip_cases[i].keep)
			continue;
		if (map_jid_domain(jid, dom, sizeof(dom)) < 0) {
			r = map_jid_to_sip_in(jid, "xmpp.example", got, sizeof(got), &in);
			CHECK(r == MAP_ADDR_EDOMAIN && in == 0, "map_jid_to_sip_in %s: invalid", name);
			continue;
		}
		w = map_jid_to_sip(jid, 0, want, sizeof(want));
		r = map_jid_to_sip_in(jid, dom, got, sizeof(got), &in);
		CHECK_INT(in, 1, "map_jid_to_sip_in %s: in its own domain", name);
		CHECK_INT(r, w, "map_jid_to_sip_in %s: status", name);
		if (r >= 0 && w >= 0)
			CHECK_STR(got, want, "map_jid_to_sip_in %s: URI", name);
		r = map_jid_to_sip_in(jid, "other.example", got, sizeof(got), &in);
		CHECK(r == MAP_ADDR_EDOMAIN && in == 0, "map_jid_to_sip_in %s: another domain", name);
	}
}

int
main(void)
{
	test_jid_to_sip();
	test_jid_to_sip_in();
	run_str_cases("map_sip_to_jid", map_sip_to_jid, sip_to_jid_cases, NELEM(sip_to_jid_cases));
	run_str_cases("map_jid_domain", map_jid_domain, jid_domain_cases, NELEM(jid_domain_cases));
	run_str_cases("map_jid_bare", map_jid_bare, jid_bare_cases, NELEM(jid_bare_cases));
	run_str_cases("map_sip_domain", map_sip_domain, sip_domain_cases, NELEM(sip_domain_cases));
	run_str_cases("map_idna_to_ascii", map_idna_to_ascii, idna_ascii_cases,
	    NELEM(idna_ascii_cases));
	run_str_cases("map_idna_to_unicode", map_idna_to_unicode, idna_unicode_cases,
	    NELEM(idna_unicode_cases));
	run_esc_cases("map_sip_to_jid_escaped", map_sip_to_jid_escaped, sip_to_jid_escaped_cases,
	    NELEM(sip_to_jid_escaped_cases));
	run_esc_cases("map_jid_to_sip_escaped", map_jid_to_sip_escaped, jid_to_sip_escaped_cases,
	    NELEM(jid_to_sip_escaped_cases));
	test_xep0106();
	test_rfc3492();
	test_enospc();
	test_ldh_path();
	test_round_trips();
	test_long();
	test_bounds();
	test_strerror();
	TEST_DONE();
}
