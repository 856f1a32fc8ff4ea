/* addr.h - JID <-> SIP URI address mapping (RFC 7247 section 5, XEP-0106), with worked examples.
 *
 * GRAMMAR
 *   jid        = [ localpart "@" ] domainpart [ "/" resourcepart ]          (RFC 7622)
 *   sip-uri    = ( "sip:" / "sips:" / "im:" / "pres:" ) [ user [ ":" password ] "@" ] host
 *                [ ":" port ] *( ";" uri-parameter ) [ "?" headers ]       (RFC 3261 19.1)
 *
 *   localpart    1..1023 octets of UTF-8; never any of  " & ' / : < > @  nor a space or control
 *   domainpart   1..1023 octets: LDH labels of 1..63 octets (U-labels allowed), an IPv4 address,
 *                or an IPv6 address in brackets; compared in lower case.  Canonical form, as
 *                every function writes it: ASCII in lower case, A-labels turned into U-labels,
 *                one trailing dot removed, IPv6 as RFC 5952 text ([2001:db8::1]), no zone id
 *   resourcepart 1..1023 octets of UTF-8 without controls
 *   user (SIP)   we write unreserved and & = + $ , characters; anything else travels as %XX
 *                (RFC 3261); on input the other user-unreserved characters ; ? / are accepted too
 *
 * DOMAIN-PRESERVING MODE (CONF_ADDR_DOMAIN): the gateway serves the SIP domain as an XMPP component
 * of the same name, so an address keeps its domain on both sides.
 *
 *   JID -> SIP  map_jid_to_sip()
 *     alice@xmpp.example                  sip:alice@xmpp.example
 *     alice@xmpp.example/balcony          sip:alice@xmpp.example             (keep_resource = 0)
 *     alice@xmpp.example/balcony          sip:alice@xmpp.example;gr=balcony  (keep_resource = 1)
 *     alice@XMPP.example                  sip:alice@xmpp.example             (domain folded)
 *     d\27artagnan@xmpp.example           sip:d'artagnan@xmpp.example        (XEP-0106 unescaped)
 *     john\20smith@xmpp.example           sip:john%20smith@xmpp.example
 *     jürgen@xmpp.example                 sip:j%C3%BCrgen@xmpp.example
 *     anna@bücher.example                 sip:anna@xn--bcher-kva.example     (IDNA A-label)
 *     xmpp.example                        sip:xmpp.example                   (domain only)
 *     @xmpp.example, alice@, a<b@x.example, alice@-x.example     -> MAP_ADDR_EMALFORMED
 *     Alice@xmpp.example                  -> MAP_ADDR_ENOTCANON  (a server would route alice@)
 *
 *   SIP -> JID  map_sip_to_jid()
 *     sip:bob@sip.example                 bob@sip.example
 *     sips:bob@SIP.Example:5061;transport=tls   bob@sip.example   (port and parameters dropped)
 *     sip:bob@sip.example;gr=phone        bob@sip.example/phone              (gr -> resource)
 *     sip:bob:secret@sip.example          bob@sip.example                    (password dropped)
 *     pres:bob@sip.example, im:bob@sip.example  bob@sip.example
 *     sip:j%C3%BCrgen@sip.example         jürgen@sip.example
 *     sip:john%20smith@sip.example        john\20smith@sip.example           (XEP-0106 escaped)
 *     sip:o'hara@sip.example              o\27hara@sip.example
 *     sip:bob@xn--bcher-kva.example       bob@bücher.example                 (IDNA U-label)
 *     tel:+15551234, mailto:bob@x.example -> MAP_ADDR_ESCHEME
 *     sip:bob%00x@sip.example, sip:%FF@sip.example, sip:@sip.example      -> MAP_ADDR_EMALFORMED
 *     sip:BOB@sip.example, sip:%EF%BD%82%EF%BD%8F%EF%BD%82@sip.example (full-width bob),
 *     sip:bo%E2%80%8Bb@sip.example (zero-width space)                       -> MAP_ADDR_ENOTCANON
 *
 * ONE-TO-ONE: the XMPP server prepares every JID it routes (case folding, NFKC, invisible
 * characters removed), so a localpart it would change names another user.  Every localpart
 * these functions take or write must already be in that form, which is decided conservatively
 * without the Unicode tables: ASCII without capital letters, and the lower-case letters of
 * Latin-1, Latin Extended-A, Greek, Cyrillic, kana, CJK ideographs and Hangul syllables (see
 * stable_ranges in addr.c).  Anything else is MAP_ADDR_ENOTCANON, both ways.
 *
 * ESCAPED MODE (CONF_ADDR_ESCAPED): the gateway serves one subdomain of the XMPP side, say
 * sip-gw.xmpp.example, and SIP addresses of any peer domain live in its localparts.
 *
 *   map_sip_to_jid_escaped(uri, "sip-gw.xmpp.example")
 *     sip:bob@sip.example                 bob\40sip.example@sip-gw.xmpp.example
 *     sip:john%20smith@sip.example        john\20smith\40sip.example@sip-gw.xmpp.example
 *     sip:sip.example                     sip.example@sip-gw.xmpp.example
 *   map_jid_to_sip_escaped(jid, "sip-gw.xmpp.example")
 *     bob\40sip.example@sip-gw.xmpp.example/x    sip:bob@sip.example
 *     bob@sip-gw.xmpp.example             sip:bob                 -> MAP_ADDR_EMALFORMED (no domain)
 *     bob\40sip.example@other.example     -> MAP_ADDR_EDOMAIN
 *   In this mode the peer host must be an IP address or a name of two or more labels, both ways:
 *   sip:bob@localhost is MAP_ADDR_EMALFORMED too.
 *
 * Unmappable or malformed addresses are errors, never guesses.  Every function fills the caller's
 * buffer (always NUL-terminated on success) and returns the length written, or a negative
 * enum map_addr_status; on error the buffer content is unspecified.  Nothing here allocates.
 */
#ifndef GW_MAP_ADDR_H
#define GW_MAP_ADDR_H

#include <stddef.h>

enum map_addr_status {
	MAP_ADDR_OK = 0,
	MAP_ADDR_EMALFORMED = -1,	/* not a valid address (-> jid-malformed, 400/484) */
	MAP_ADDR_EDOMAIN = -2,		/* valid, but not under the domain this mapping serves */
	MAP_ADDR_ENOSPC = -3,		/* the caller's buffer is too small */
	MAP_ADDR_ESCHEME = -4,		/* a URI scheme the gateway does not map (tel:, mailto:) */
	MAP_ADDR_ENOTCANON = -5,	/* a user part or localpart the XMPP server would prepare into
					 * another (sip:BOB@, full-width or invisible characters): the
					 * mapping would not be one-to-one (-> 484, jid-malformed) */
};

/* Longest JID (3 parts of 1023 octets plus separators; a buffer needs MAP_JID_MAX + 1), and a
 * buffer size that holds any URI these functions write, NUL included: "sip:", a 1023-octet user
 * and resource percent-encoded to 3069 octets each, "@", a 253-octet host, ";gr=": 6401 octets. */
#define MAP_JID_MAX 3071
#define MAP_URI_MAX 8192

/* A short description of a status, e.g. "malformed address".  Never NULL. */
const char *map_addr_strerror(int status);

/* Domain-preserving JID -> SIP URI.  keep_resource adds the resource as ";gr=". */
int map_jid_to_sip(const char *jid, int keep_resource, char *buf, size_t len);

/* map_jid_to_sip(jid, 0, ...) of a JID that must be in domain (canonical form, as
 * map_jid_domain() writes it), from one parse: *in_domain is 1 when jid is valid and its
 * domainpart is domain, else 0 and MAP_ADDR_EDOMAIN is returned. */
int map_jid_to_sip_in(const char *jid, const char *domain, char *buf, size_t len,
		      int *in_domain);

/* Domain-preserving SIP URI (sip:, sips:, im:, pres:) -> JID.  A "gr" parameter becomes the
 * resource.  Accepts an addr-spec only, not a name-addr with display name or angle brackets. */
int map_sip_to_jid(const char *uri, char *buf, size_t len);

/* Escaped mode: JID under component -> SIP URI of the peer network. */
int map_jid_to_sip_escaped(const char *jid, const char *component, char *buf, size_t len);

/* Escaped mode: SIP URI -> JID under component (the resource, if any, is dropped). */
int map_sip_to_jid_escaped(const char *uri, const char *component, char *buf, size_t len);

/* Validates a JID and writes its domainpart in canonical form (lower case, U-labels kept,
 * A-labels converted to U-labels). */
int map_jid_domain(const char *jid, char *buf, size_t len);

/* Validates a JID and writes it without its resource, domain in lower case. */
int map_jid_bare(const char *jid, char *buf, size_t len);

/* Validates a SIP URI (as map_sip_to_jid accepts it) and writes its host in lower case, IDNA
 * A-labels converted to U-labels. */
int map_sip_domain(const char *uri, char *buf, size_t len);

/* IDNA helpers (RFC 3492 Punycode; RFC 5891 labels without NFC normalisation, which the XMPP
 * server has already applied to the JIDs it routes).  ASCII labels are folded to lower case.
 * They take any domainpart (IP addresses too) and write it in canonical form with A-labels or
 * U-labels; an "xn--" label must decode and re-encode to itself.  Both fail on the same inputs. */
int map_idna_to_ascii(const char *domain, char *buf, size_t len);
int map_idna_to_unicode(const char *domain, char *buf, size_t len);

/* Either of the two (ascii set: map_idna_to_ascii) without the one-pass path every name made of
 * plain ASCII labels takes: what the unit test holds that path to. */
int map_idna_full(const char *domain, int ascii, char *buf, size_t len);

/* XEP-0106 escaping of a localpart: src of srclen octets -> buf.  Escapes the space and
 * " & ' / : < > @, and a backslash that would otherwise read as an escape sequence. */
int map_jid_escape(const char *src, size_t srclen, char *buf, size_t len);

/* XEP-0106 unescaping: \20 \22 \26 \27 \2f \3a \3c \3e \40 \5c (either hex case) -> octets. */
int map_jid_unescape(const char *src, size_t srclen, char *buf, size_t len);

#endif
