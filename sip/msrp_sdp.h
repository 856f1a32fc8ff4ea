/* msrp_sdp.h - SDP (RFC 4566) offer/answer for MSRP sessions (RFC 4975 section 8, RFC 6135 setup).
 *
 * nua runs with media disabled, so the SDP of an MSRP INVITE is ours: msrp_sdp_parse_offer()
 * reads an offer (or, the same way, an answer to our offer), msrp_sdp_build() writes an answer
 * (or an offer), and the tables below negotiate the rest.
 *
 * What a usable stream is (RFC 4975 section 8.1): "m=message <port> TCP/MSRP *" (TCP/TLS/MSRP
 * only when the caller has TLS), port not 0, the format list holding "*", exactly one a=path of
 * one to MSRP_SDP_MAX_PATH MSRP URIs whose scheme matches the transport (msrps iff TLS), the last
 * one (the peer's own) with a session-id, and an a=accept-types (RFC 4975 makes it mandatory).
 * Tokens (media, proto, attribute names, a=setup values, media types) compare case-insensitively.
 * The path is authoritative for where to connect; the m= port and c= address are reported only.
 * Before Sofia-SIP sees a body, every m= line is held to the RFC 4566 grammar (media port proto
 * 1*fmt, all tokens): Sofia 1.12's parser allocates without end on some malformed ones.
 *
 * Certificate fingerprints (RFC 8122, which RFC 4975 section 14.2 uses for msrps): on a
 * TCP/TLS/MSRP stream, a=fingerprint:<hash-func> <hex pairs joined by ':'> is read at media
 * level, else at session level (several are allowed, e.g. one per hash function).  A malformed
 * one, one whose length is not its hash function's, or more than MSRP_SDP_MAX_FINGERPRINTS,
 * make the stream unusable; so does a stream whose fingerprints all name hash functions the
 * gateway does not check with (MD2 and MD5, which RFC 8122 forbids, or unknown names: skipped
 * otherwise).  Hex digits may be lower case (RFC 8122 writes UHEX; some endpoints do not); we
 * write upper case.  On a TCP/MSRP stream a=fingerprint means nothing and is not read.
 *	a=fingerprint:sha-256 4A:AD:B9:B1:3F:82:18:3B:54:02:12:DF:3E:5D:49:6B:19:E5:7C:AB:3B:A8:
 *	  ...						(32 bytes, written on one line)
 * A certificate matches when its digest under the strongest hash function present equals one of
 * the fingerprints of that function (msrp_sdp_fingerprint_strongest(), _match()).
 *
 * Connection setup (RFC 6135, using RFC 4145 a=setup): the answerer's role is a table,
 *	offered		answer (we prefer passive)	answer (prefer_active)
 *	none		passive				passive		RFC 4975: the offerer connects
 *	active		passive				passive
 *	passive		active				active
 *	actpass		passive				active		our choice
 *	holdconn	holdconn			holdconn	no connection yet
 * The gateway prefers passive: it listens on a known port, and the offerer is the side more likely
 * to sit behind NAT (the reason RFC 6135 exists).  A second table gives our role after the answer
 * to our offer (msrp_sdp_offer_result()).
 *
 * Media types (RFC 4975 section 8.6): a=accept-types lists "type/subtype", "type/ *" (without the
 * space) or "*".  The answer lists the intersection of ours and theirs, in our order: for each pair
 * that overlaps, the narrower of the two ("*" and "text/plain" give "text/plain"; "text/ *" and
 * "text/plain" give "text/plain"; "*" and "text/ *" give "text/ *").  An empty intersection means
 * the caller answers 488 Not Acceptable Here (or 415) with a Warning.
 *
 * Worked example: the offer of RFC 4975 section 8.7,
 *	m=message 7654 TCP/MSRP *
 *	a=accept-types:text/plain
 *	a=path:msrp://alice.example.com:7654/jshA7weztas;tcp
 * answered with ours = {"message/cpim", "text/plain"}, prefer passive, port 2855, direction
 * msrp_sdp_answer_direction("sendrecv"):
 *	v=0 / o=- <id> <version> IN IP4 <addr> / s=- / c=IN IP4 <addr> / t=0 0
 *	m=message 2855 TCP/MSRP *
 *	a=path:msrp://<addr>:2855/<session>;tcp
 *	a=accept-types:text/plain
 *	a=setup:passive
 *	a=sendrecv
 */
#ifndef GW_MSRP_SDP_H
#define GW_MSRP_SDP_H

#include <stddef.h>

#define MSRP_SDP_MAX_LEN 32768		/* longer bodies are refused */
#define MSRP_SDP_MAX_MLINES 32		/* the answer repeats every m= line, so bound them */
#define MSRP_SDP_MAX_PATH 16		/* URIs in one a=path */
#define MSRP_SDP_MAX_TYPES 64		/* entries in one a=accept-types / a=accept-wrapped-types */
#define MSRP_SDP_MAX_FINGERPRINTS 8	/* a=fingerprint of one stream (or session) */
#define MSRP_SDP_MAX_DIGEST 64		/* bytes of the longest digest (SHA-512) */
#define MSRP_SDP_FINGERPRINT_TEXT 208	/* "sha-512 " + 64 hex pairs with colons, NUL */

/* The hash functions a certificate fingerprint is checked with (RFC 8122 section 5, the IANA
 * "Hash Function Textual Names"), weakest first: the table in msrp_sdp.c gives their names. */
enum msrp_hash {
	MSRP_HASH_SHA1,
	MSRP_HASH_SHA224,
	MSRP_HASH_SHA256,
	MSRP_HASH_SHA384,
	MSRP_HASH_SHA512,
};

/* One a=fingerprint the gateway can check: the digest, of the hash's length. */
struct msrp_sdp_fingerprint {
	enum msrp_hash hash;
	size_t len;
	unsigned char digest[MSRP_SDP_MAX_DIGEST];
};

enum msrp_setup {
	MSRP_SETUP_NONE,	/* absent: RFC 4975's model (the offerer connects) */
	MSRP_SETUP_ACTIVE,
	MSRP_SETUP_PASSIVE,
	MSRP_SETUP_ACTPASS,
	MSRP_SETUP_HOLDCONN,
};

/* The usable message stream of an SDP body.  Every pointer is owned by the struct: release it
 * with msrp_sdp_media_clear(). */
struct msrp_sdp_media {
	int secure;			/* TCP/TLS/MSRP (the path is msrps:) */
	char *path;			/* a=path: its MSRP URIs joined by one space, peer's own last */
	char **accept_types;		/* a=accept-types, in order, never empty */
	size_t naccept_types;
	char **accept_wrapped_types;	/* a=accept-wrapped-types, in order; NULL/0 when absent */
	size_t naccept_wrapped;
	unsigned long long max_size;	/* a=max-size, 0 when absent */
	struct msrp_sdp_fingerprint *fingerprints;	/* TLS streams only (see above), in */
	size_t nfingerprints;				/* order; NULL/0 when none */
	enum msrp_setup setup;		/* media-level a=setup, else session-level, else NONE */
	unsigned port;			/* m= port (never 0 here: a port 0 stream is not usable) */
	char *connection_address;	/* c= address (media-level, else session-level) */
	int ip6;			/* the c= address type is IP6 */
	char direction[9];		/* "sendrecv", "sendonly", "recvonly" or "inactive" */
	unsigned mline;			/* index of this stream among the body's m= lines */
	char **mlines;			/* every m= line as "<media> <proto> <fmt>" (first format), */
	size_t nmlines;			/* so that an answer can reject the others in order */
};

/* Parses an SDP body (Sofia-SIP's sdp_parse() in strict mode; len bytes, need not be
 * NUL-terminated; body borrowed) and picks the first usable message stream (see above) with
 * TCP/MSRP, or TCP/TLS/MSRP when tls_ok.  Returns 0 and fills *out (caller releases it with
 * msrp_sdp_media_clear()), or -1 with *out zeroed and a one-line reason in err (the caller's
 * buffer of errlen bytes; err may be NULL when errlen is 0): not SDP, too long, too many m= lines,
 * no message stream, TLS not allowed, a port 0 stream, no or several a=path, a path URI that is
 * not MSRP, no a=accept-types, a malformed attribute...  When several message streams are
 * unusable the reason is the first one's.  The caller answers 488 Not Acceptable Here with a
 * Warning.  mline and nmlines (each may be NULL) receive out->mline and out->nmlines. */
int msrp_sdp_parse_offer(const char *body, size_t len, int tls_ok, struct msrp_sdp_media *out,
			 unsigned *mline, unsigned *nmlines, char *err, size_t errlen);
/* Frees what m owns and zeroes it (m itself is the caller's).  NULL allowed. */
void msrp_sdp_media_clear(struct msrp_sdp_media *m);

/* Our side of an offer or answer.  Everything is borrowed for the call. */
struct msrp_sdp_local {
	const char *addr;		/* o= and c= address: "IN IP6" when it holds ':', else IP4 */
	unsigned port;			/* m= port: the port of our path URI (RFC 4975 section 8.1) */
	const char *path;		/* our a=path: our MSRP URI */
	int secure;			/* offers only: TCP/TLS/MSRP; an answer keeps the offer's */
	enum msrp_setup setup;		/* MSRP_SETUP_NONE writes no a=setup */
	const char *const *accept_types;	/* written as they are: for an answer, the */
	size_t naccept_types;			/* intersection (msrp_sdp_types_intersect()) */
	const char *const *accept_wrapped_types;	/* 0 entries: no a=accept-wrapped-types */
	size_t naccept_wrapped;
	unsigned long long max_size;	/* 0: no a=max-size */
	const char *fingerprint;	/* a=fingerprint:<value>, e.g. "sha-256 AB:..."
					 * (msrp_sdp_fingerprint_format()); NULL writes none */
	const char *direction;		/* a=<direction>; NULL writes none (sendrecv) */
	const char *chatroom;		/* a=chatroom:<value> (RFC 7701 section 8: a focus's
					 * "nickname private-messages"); NULL writes none */
	unsigned long long sess_id;	/* o= session id and version */
	unsigned long long sess_version;
};

/* Writes an SDP body, CRLF line ends: v=0, o=- <id> <version> IN IP4|IP6 <addr>, s=-,
 * c=IN IP4|IP6 <addr>, t=0 0, then m= lines.  offer NULL: an offer of one message stream.
 * Otherwise an answer to offer (borrowed): one m= line per offered m= line, in order; the one at
 * offer->mline is our message stream with the offer's transport, the others are rejected as
 * "m=<media> 0 <proto> <fmt>".  Our stream carries, in order: a=path, a=accept-types,
 * a=accept-wrapped-types, a=setup, a=fingerprint, a=max-size, a=chatroom, a=<direction>.  The strings of ours are written
 * as they are: the caller passes valid tokens (the fuzz harness checks that what we build from a
 * parsed offer parses back).  Returns a new NUL-terminated string the caller frees with free();
 * its length in *len (len may be NULL). */
char *msrp_sdp_build(const struct msrp_sdp_local *ours, const struct msrp_sdp_media *offer,
		     size_t *len);

/* ---- negotiation: media types */

/* The intersection of two accept-types lists (see above), in the order of ours, without
 * duplicates.  Returns 0 and a new vector in *out of *nout >= 1 strings (the caller frees it
 * with msrp_sdp_strv_free()), or -1 with *out NULL and *nout 0 when nothing overlaps: the
 * caller answers 488 (or 415).  Both lists borrowed. */
int msrp_sdp_types_intersect(const char *const *ours, size_t nours, char *const *theirs,
			     size_t ntheirs, char ***out, size_t *nout);
/* 1 if the media type range (an accept-types entry: "*", "type/ *" or "type/subtype") covers
 * content_type, a Content-Type value whose parameters (after ';') are ignored; else 0. */
int msrp_sdp_type_matches(const char *range, const char *content_type);
/* 1 if any of the n ranges covers content_type (e.g. a SEND's Content-Type against the
 * negotiated accept-types); else 0. */
int msrp_sdp_type_accepted(char *const *ranges, size_t n, const char *content_type);
/* Frees a vector of n strings and the vector.  NULL allowed. */
void msrp_sdp_strv_free(char **v, size_t n);

/* ---- certificate fingerprints (RFC 8122) */

/* The textual name of h ("sha-256"), its OpenSSL digest name ("SHA256", for
 * EVP_get_digestbyname()) and its digest length; NULL/0 when h is out of range. */
const char *msrp_sdp_hash_name(enum msrp_hash h);
const char *msrp_sdp_hash_openssl_name(enum msrp_hash h);
size_t msrp_sdp_hash_len(enum msrp_hash h);
/* The strongest hash function among fp[0..n) (RFC 8122 5: the one a certificate is checked
 * with), or -1 when n is 0. */
int msrp_sdp_fingerprint_strongest(const struct msrp_sdp_fingerprint *fp, size_t n);
/* 1 if digest[0..len), computed with hash, equals one of the fingerprints of fp[0..n) that use
 * that hash function; else 0. */
int msrp_sdp_fingerprint_match(const struct msrp_sdp_fingerprint *fp, size_t n, enum msrp_hash hash,
			       const unsigned char *digest, size_t len);
/* Writes "<hash-func> <XX:XX:...>" (upper-case hex, the attribute's value) into buf.  Returns
 * its length, or -1 (buf "" when buflen > 0) when hash is out of range, len is not its digest
 * length or buflen is too small (MSRP_SDP_FINGERPRINT_TEXT always suffices). */
int msrp_sdp_fingerprint_format(enum msrp_hash hash, const unsigned char *digest, size_t len,
				char *buf, size_t buflen);

/* ---- negotiation: connection setup and direction (tables in msrp_sdp.c) */

/* Our a=setup when answering an offer that had offered (the table above). */
enum msrp_setup msrp_sdp_answer_setup(enum msrp_setup offered, int prefer_active);
/* Our role once the answer to our offer arrived: offered is what we put in the offer, answered
 * what the answer says.  Returns 0 and *ours (ACTIVE: we connect; PASSIVE: we wait; HOLDCONN:
 * neither), or -1 when the answer is not a valid reply to the offer (actpass in an answer, active
 * to our active, none to our passive...): the caller ends the session. */
int msrp_sdp_offer_result(enum msrp_setup offered, enum msrp_setup answered,
			  enum msrp_setup *ours);
/* The a=setup value ("active", ...; NULL for NONE).  Static string. */
const char *msrp_sdp_setup_name(enum msrp_setup s);
/* The setup named by value (case-insensitive); -1 if value names none.  NULL is NONE. */
int msrp_sdp_setup_parse(const char *value);
/* Row i of the answer table: returns 0, or -1 past the last row. */
int msrp_sdp_answer_setup_row(size_t i, enum msrp_setup *offered, int *prefer_active,
			      enum msrp_setup *answer);
/* Row i of the offerer's table (its valid combinations; any other is invalid).  Returns 0, or -1
 * past the last row. */
int msrp_sdp_offer_result_row(size_t i, enum msrp_setup *offered, enum msrp_setup *answered,
			      enum msrp_setup *ours);
/* The answer's direction for an offered one (RFC 3264 section 6.1: sendonly -> recvonly,
 * recvonly -> sendonly, sendrecv and inactive unchanged).  Static string; NULL if offered is not
 * a direction. */
const char *msrp_sdp_answer_direction(const char *offered);

#endif
