"""msrp_ua.py - a SIP + MSRP user agent for end-to-end tests of session-mode IM (RFC 7573).

Written from the RFCs only (RFC 3261 SIP over UDP, RFC 4566/3264 SDP, RFC 4975 MSRP over TCP,
RFC 6135 a=setup, RFC 3994 isComposing, RFC 3862 message/cpim, RFC 6665 SUBSCRIBE/NOTIFY,
RFC 4575 conference state, RFC 7701 multi-party chat as a participant), independently of the
gateway's MSRP code, so that the two cannot share a misunderstanding.  Everything binds to
127.0.0.1 and every peer is addressed by number: it never asks a name server.

    ua = MsrpUA("bob", local_port=None, setup="actpass", domain="sip.example")
    await ua.start()
    call = await ua.invite("sip:alice@xmpp.example", next_hop=("127.0.0.1", gw_port))
    call.status                       # final status of the INVITE (or 408 on timeout)
    await call.wait_connected()       # the MSRP connection is up (either direction)
    sent = await call.send_text("hi", chunk_size=None, report=True)
    await call.composing(True)
    m = await call.wait_message(lambda m: m.text == "hello", timeout=5)
    await call.bye()
    ua.on_invite = 486                # or a callable(invite) -> status | Answer(...)
    call = await ua.wait_call(timeout=10)
    ua.check_clean()                  # raises if anything received was malformed
    await ua.stop()

A participant of an RFC 7701 chat room (conf_focus.py is a focus to test this against):

    call = await ua.invite("sip:room@conf.example", next_hop=(ip, port))
    call.chatroom                     # tokens of the answer's a=chatroom, e.g. ["nickname", ...]
    await call.send_nickname("bob")   # MSRP NICKNAME: 200, 424 malformed, 425 taken (408 timeout)
    await call.send_cpim("hi all")    # message/cpim, From: our URI, To: the room
    await call.send_cpim("psst", to="sip:carol@sip.example")   # private: To is one participant
    m = await call.wait_message()     # m.cpim_from, m.cpim_to, m.cpim_datetime, m.text (inner body)
    sub = await ua.subscribe("sip:room@conf.example", next_hop=(ip, port))   # Event: conference
    sub.status; sub.notifies; await sub.wait_notify(pred, timeout)
    sub.conference                    # entity -> {"display", "state", "status", "roles", ...}
    sub.subject; await sub.wait_state(lambda s: ..., timeout); await sub.unsubscribe()
    call.bye_received; call.bye_reason   # a BYE from the focus (a kick) and its Reason header

MSRP over TLS (RFC 4975 14, msrps:, TCP/TLS/MSRP) with certificate fingerprints (RFC 8122):

    tls = MsrpTls(cert=(pem, key), ca=ca_file)   # cert None: none is presented
    ua = MsrpUA("bob", tls=tls)       # our offers are msrps; TLS offers are answered with TLS
    call.msrp.secure                  # this session runs over TLS
    call.msrp.peer_fingerprint        # "sha-256 AB:..." of the certificate the other end showed
    call.msrp.fingerprint_ok          # True / False (mismatch: the connection was closed) / None
    MsrpTls(..., fingerprint="sha-256 00:11:...")   # our a=fingerprint says this instead (a lie)
    MsrpTls(..., fingerprint=False)   # no a=fingerprint at all
Both sides always verify the other's certificate against `ca` (mutual TLS, no host name check:
paths are numeric); when the other side's SDP carries a=fingerprint its certificate must match
the strongest hash function given, else the connection is closed (RFC 8122 5).

SIP over TLS (RFC 3261 26, instead of UDP): MsrpUA("bob", sip_tls=MsrpTls(cert, ca)) listens for
TLS on its port (Contact ;transport=tls, Via SIP/2.0/TLS), sends its requests over a connection
it opens to the next hop (reused for later ones), answers on the connection a request came on,
frames messages by Content-Length, and does not retransmit (a reliable transport).

Everything received is recorded: ua.sip_log (every SIP message, both ways), call.received (SIP
messages of the dialog), msrp.frames (every MSRP frame received), msrp.received_messages
(reassembled), msrp.reports, msrp.responses, msrp.aborted; malformed input and rule violations go
to msrp.violations / ua.protocol_errors (ua.check_clean() raises on them).
"""

import asyncio
import datetime
import hashlib
import inspect
import ipaddress
import re
import secrets
import ssl
import time
import unicodedata
import xml.etree.ElementTree as ET

T1 = 0.5
T2 = 4.0
ISCOMPOSING_NS = "urn:ietf:params:xml:ns:im-iscomposing"
DEFAULT_ACCEPT_TYPES = "text/plain message/cpim application/im-iscomposing+xml"
DEFAULT_WRAPPED_TYPES = "text/plain application/im-iscomposing+xml"
MAX_MSRP_FRAME = 4 * 1024 * 1024
CONF_NS = "urn:ietf:params:xml:ns:conference-info"      # RFC 4575
CONF_INFO_TYPE = "application/conference-info+xml"      # RFC 4575
# RFC 3339 date-time, as RFC 3862 wants it in the CPIM DateTime header
CPIM_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$", re.I)


class ProtocolError(AssertionError):
    pass


def _rand(nbytes=8):
    return secrets.token_hex(nbytes)


def _is_ip(host):
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        return False


# =============================================================================== SIP messages

COMPACT = {"i": "call-id", "f": "from", "t": "to", "v": "via", "m": "contact", "l": "content-length",
           "c": "content-type", "k": "supported", "s": "subject", "e": "content-encoding",
           "o": "event", "r": "refer-to", "u": "allow-events", "x": "session-expires"}

CANONICAL = {"call-id": "Call-ID", "cseq": "CSeq", "www-authenticate": "WWW-Authenticate"}


def _canon(name):
    low = name.lower()
    return CANONICAL.get(low) or "-".join(p.capitalize() for p in low.split("-"))


class SipMessage:
    """A SIP request or response: start line, headers (ordered (name, value) list), body bytes."""

    def __init__(self, start, headers, body=b"", source=None, direction="in"):
        self.start = start
        self.headers = list(headers)
        self.body = body
        self.source = source
        self.direction = direction
        self.time = time.monotonic()
        m = re.match(r"SIP/2\.0 (\d{3}) ?(.*)$", start)
        if m:
            self.is_request, self.method, self.uri = False, None, None
            self.status, self.reason = int(m.group(1)), m.group(2)
        else:
            parts = start.split(" ")
            self.is_request, self.method, self.uri = True, parts[0], parts[1] if len(parts) > 1 else ""
            self.status, self.reason = None, None

    def get(self, name, default=None):
        name = name.lower()
        for n, v in self.headers:
            if n.lower() == name:
                return v
        return default

    def get_all(self, name):
        name = name.lower()
        out = []
        for n, v in self.headers:
            if n.lower() == name:
                out.extend(_split_commas(v) if name in ("via", "route", "record-route", "contact") else [v])
        return out

    @property
    def cseq(self):
        num, _, method = (self.get("cseq") or "0 ?").partition(" ")
        return int(num), method.strip()

    @property
    def call_id(self):
        return self.get("call-id")

    def encode(self):
        lines = [self.start] + [f"{n}: {v}" for n, v in self.headers if n.lower() != "content-length"]
        lines.append(f"Content-Length: {len(self.body)}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode() + self.body

    def __repr__(self):
        return f"<SipMessage {self.start!r} {self.direction}>"

    def text(self):
        return self.encode().decode("utf-8", "replace")


def _split_commas(value):
    """Splits a header value on commas outside quotes and <>."""
    out, cur, depth, quoted = [], [], 0, False
    for ch in value:
        if ch == '"':
            quoted = not quoted
        elif not quoted and ch == "<":
            depth += 1
        elif not quoted and ch == ">":
            depth -= 1
        if ch == "," and not quoted and depth == 0:
            out.append("".join(cur).strip())
            cur = []
        else:
            cur.append(ch)
    if "".join(cur).strip():
        out.append("".join(cur).strip())
    return out


REQUEST_LINE = re.compile(r"^([A-Za-z0-9.!%*_+`'~-]+) (\S+) SIP/2\.0$")
STATUS_LINE = re.compile(r"^SIP/2\.0 [1-6]\d\d [^\r\n]*$")
HEADER_LINE = re.compile(r"^([A-Za-z0-9.!%*_+`'~-]+)[ \t]*:[ \t]*(.*)$")


def parse_sip(data, source=None):
    """Parses one datagram; raises ProtocolError when it is not a well-formed SIP message."""
    head, sep, body = data.partition(b"\r\n\r\n")
    if not sep:
        raise ProtocolError("SIP message without the empty line ending the header section")
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        raise ProtocolError("SIP header section is not UTF-8")
    lines = text.split("\r\n")
    start = lines[0]
    if not (REQUEST_LINE.match(start) or STATUS_LINE.match(start)):
        raise ProtocolError(f"bad SIP start line {start!r}")
    headers = []
    for line in lines[1:]:
        if line[:1] in (" ", "\t"):
            if not headers:
                raise ProtocolError("continuation line before any header")
            headers[-1] = (headers[-1][0], headers[-1][1] + " " + line.strip())
            continue
        m = HEADER_LINE.match(line)
        if not m:
            raise ProtocolError(f"bad SIP header line {line!r}")
        name = m.group(1)
        name = _canon(COMPACT.get(name.lower(), name)) if len(name) == 1 else name
        headers.append((name, m.group(2).strip()))
    msg = SipMessage(start, headers, b"", source)
    for h in ("via", "from", "to", "call-id", "cseq"):
        if msg.get(h) is None:
            raise ProtocolError(f"SIP message without {h}: {start!r}")
    if not re.match(r"^\d+ [A-Za-z]+$", msg.get("cseq")):
        raise ProtocolError(f"bad CSeq {msg.get('cseq')!r}")
    clen = msg.get("content-length")
    if clen is not None:
        if not clen.isdigit():
            raise ProtocolError(f"bad Content-Length {clen!r}")
        if int(clen) > len(body):
            raise ProtocolError(f"Content-Length {clen} but only {len(body)} body bytes")
        body = body[:int(clen)]
    if msg.is_request and msg.cseq[1] != msg.method:
        raise ProtocolError(f"CSeq method {msg.cseq[1]} differs from request method {msg.method}")
    msg.body = body
    return msg


async def read_stream_message(reader, limit=1 << 20):
    """The bytes of the next SIP message on a stream, framed by its Content-Length (RFC 3261
    18.3: mandatory there); keep-alive CRLFs before it are skipped."""
    head = bytearray()
    while True:
        line = await reader.readuntil(b"\r\n")
        if line == b"\r\n" and not head:
            continue
        head += line
        if head.endswith(b"\r\n\r\n"):
            break
        if len(head) > limit:
            raise ProtocolError("SIP header block too long on a stream")
    m = re.search(rb"(?im)^(?:content-length|l)[ \t]*:[ \t]*(\d+)[ \t]*\r$", bytes(head))
    if not m:
        raise ProtocolError(f"no Content-Length over a stream transport: {bytes(head[:80])!r}")
    n = int(m.group(1))
    if n > limit:
        raise ProtocolError(f"Content-Length {n} too large")
    return bytes(head) + (await reader.readexactly(n) if n else b"")


def header_param(value, name):
    m = re.search(r";\s*" + re.escape(name) + r"(?:=([^;,\s>]*))?", value or "", re.I)
    if not m:
        return None
    return m.group(1) if m.group(1) is not None else ""


def addr_uri(value):
    """The URI of a name-addr / addr-spec header value (From, To, Contact, Route)."""
    m = re.search(r"<([^>]*)>", value or "")
    if m:
        return m.group(1)
    return (value or "").split(";")[0].strip()


def tag_of(value):
    """The tag parameter of a From/To value (outside the <>)."""
    rest = value.split(">", 1)[1] if ">" in value else value
    return header_param(rest, "tag")


def uri_hostport(uri):
    """(host, port) of a sip: URI, port defaulting to 5060."""
    m = re.match(r"^sips?:(?:[^@]*@)?(\[[^\]]+\]|[^:;>?]+)(?::(\d+))?", uri or "")
    if not m:
        return None
    return m.group(1).strip("[]"), int(m.group(2) or 5060)


# =============================================================================== SDP

class Sdp:
    """A parsed SDP body, enough for one m=message stream."""

    def __init__(self, text):
        self.text = text
        self.lines = [ln for ln in re.split(r"\r?\n", text) if ln]
        self.errors = []
        self.session = {}
        self.media = []   # dicts: m, attrs (list of (name, value)), c
        cur = None
        for ln in self.lines:
            if len(ln) < 2 or ln[1] != "=":
                self.errors.append(f"bad SDP line {ln!r}")
                continue
            k, v = ln[0], ln[2:]
            if k == "m":
                cur = {"m": v, "attrs": [], "c": None}
                self.media.append(cur)
            elif cur is None:
                if k == "a":
                    self.session.setdefault("a", []).append(v)
                else:
                    self.session[k] = v
            elif k == "c":
                cur["c"] = v
            elif k == "a":
                name, _, val = v.partition(":")
                cur["attrs"].append((name, val))
        if not self.lines or self.lines[0] != "v=0":
            self.errors.append("SDP does not start with v=0")
        for k in ("o", "s", "t"):
            if k not in self.session:
                self.errors.append(f"SDP without {k}= line")

    def message_media(self):
        return [m for m in self.media if m["m"].split(" ")[0] == "message"]

    def attr(self, media, name):
        for n, v in media["attrs"]:
            if n == name:
                return v
        return None


def msrp_offer_answer_check(sdp, tls_ok=False):
    """Checks the m=message stream of a peer's SDP; returns (media or None, [problems]).
    TCP/TLS/MSRP (msrps: paths, RFC 4975 14) only when tls_ok."""
    problems = list(sdp.errors)
    mm = sdp.message_media()
    if len(mm) != 1:
        return None, problems + [f"expected one m=message line, found {len(mm)}"]
    m = mm[0]
    parts = m["m"].split(" ")
    protos = ("TCP/MSRP", "TCP/TLS/MSRP") if tls_ok else ("TCP/MSRP",)
    if len(parts) < 4 or parts[2] not in protos or parts[3] != "*" or not parts[1].isdigit():
        problems.append(f"bad MSRP media line m={m['m']}")
    secure = len(parts) > 2 and parts[2] == "TCP/TLS/MSRP"
    for fp in sdp_fingerprints(sdp, m):
        if not FINGERPRINT.match(fp):
            problems.append(f"bad a=fingerprint:{fp}")
    if parts[1:2] == ["0"]:
        problems.append("MSRP stream rejected (port 0)")
    if not (m["c"] or sdp.session.get("c")):
        problems.append("no c= line")
    path = sdp.attr(m, "path")
    if not path:
        problems.append("no a=path")
    else:
        for u in path.split(" "):
            try:
                if MsrpUri.parse(u).scheme != ("msrps" if secure else "msrp"):
                    problems.append(f"path URI {u} in a {parts[2]} stream")
            except ProtocolError as e:
                problems.append(str(e))
    if not sdp.attr(m, "accept-types"):
        problems.append("no a=accept-types")
    setup = sdp.attr(m, "setup")
    if setup is not None and setup not in ("active", "passive", "actpass", "holdconn"):
        problems.append(f"bad a=setup:{setup}")
    return m, problems


def sdp_fingerprints(sdp, media):
    """The a=fingerprint values of a stream: media level, else session level (RFC 8122 5)."""
    fps = [v for n, v in media["attrs"] if n == "fingerprint"]
    if fps:
        return fps
    return [a.partition(":")[2] for a in sdp.session.get("a", []) if a.startswith("fingerprint:")]


# =============================================================================== TLS (RFC 4975 14)

FINGERPRINT = re.compile(r"^([A-Za-z0-9!#$%&'*+.^_`{|}~-]+) ([0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2})*)$")
HASHES = {"sha-1": "sha1", "sha-224": "sha224", "sha-256": "sha256", "sha-384": "sha384",
          "sha-512": "sha512"}     # strongest last; md2/md5 are forbidden by RFC 8122


def cert_fingerprint(der, hash_name="sha-256"):
    """The RFC 8122 fingerprint of a DER certificate: "sha-256 AB:CD:..."."""
    digest = hashlib.new(HASHES[hash_name], der).hexdigest().upper()
    return f"{hash_name} " + ":".join(digest[i:i + 2] for i in range(0, len(digest), 2))


def fingerprint_matches(der, fingerprints):
    """RFC 8122 5: check with the strongest hash function offered; True when one of its
    fingerprints is the certificate's.  None when no fingerprint uses a hash we know."""
    parsed = []
    for fp in fingerprints:
        m = FINGERPRINT.match(fp)
        if m and m.group(1).lower() in HASHES:
            parsed.append((m.group(1).lower(), m.group(2).upper()))
    if not parsed:
        return None
    order = list(HASHES)
    best = max(parsed, key=lambda p: order.index(p[0]))[0]
    mine = cert_fingerprint(der, best).partition(" ")[2]
    return any(h == best and v == mine for h, v in parsed)


class MsrpTls:
    """TLS for MSRP (and for SIP, MsrpUA(sip_tls=...)): our certificate (pem, key) or None, the CA
    the other side's must chain to (verify=False: not checked), and what our SDP says of our
    certificate (fingerprint True: its SHA-256; False: nothing; a string: that value)."""

    def __init__(self, cert=None, ca=None, fingerprint=True, verify=True):
        self.cert, self.ca, self.fingerprint, self.verify = cert, ca, fingerprint, verify

    def _context(self, purpose):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER if purpose == "server" else ssl.PROTOCOL_TLS_CLIENT)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.check_hostname = False          # numeric paths: the fingerprint and the CA vouch
        if self.cert:
            ctx.load_cert_chain(*self.cert)
        if self.verify and self.ca:
            ctx.load_verify_locations(self.ca)
            ctx.verify_mode = ssl.CERT_REQUIRED
        else:
            ctx.verify_mode = ssl.CERT_NONE
        return ctx

    def server_context(self):
        return self._context("server")

    def client_context(self):
        return self._context("client")

    def sdp_fingerprint(self):
        """The value of our a=fingerprint, or None."""
        if isinstance(self.fingerprint, str):
            return self.fingerprint
        if not self.fingerprint or not self.cert:
            return None
        with open(self.cert[0]) as f:
            pem = f.read()
        end = "-----END CERTIFICATE-----"
        first = pem[pem.index("-----BEGIN CERTIFICATE-----"):pem.index(end) + len(end)]
        return cert_fingerprint(ssl.PEM_cert_to_DER_cert(first))


# =============================================================================== MSRP URIs and frames

MSRP_URI = re.compile(r"^(msrps?)://(?:([^@/]*)@)?(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.\-]+)(?::(\d+))?"
                      r"(?:/([A-Za-z0-9\-._~%!$&'()*+,=:@/]+))?;([A-Za-z0-9]+)((?:;[^;\s]+)*)$")
IDENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.\-+%=]{3,31}$")


class MsrpUri:
    def __init__(self, text, scheme, host, port, session_id, transport):
        self.text, self.scheme, self.host, self.port = text, scheme, host, port
        self.session_id, self.transport = session_id, transport

    @classmethod
    def parse(cls, text):
        m = MSRP_URI.match(text)
        if not m:
            raise ProtocolError(f"bad MSRP URI {text!r}")
        return cls(text, m.group(1).lower(), m.group(3).strip("[]").lower(), int(m.group(4) or 2855),
                   m.group(5), m.group(6).lower())

    def key(self):
        # RFC 4975 6.1: scheme, host, transport case-insensitive; session-id case-sensitive
        return (self.scheme, self.host, self.port, self.session_id, self.transport)

    def __eq__(self, other):
        return isinstance(other, MsrpUri) and self.key() == other.key()

    def __hash__(self):
        return hash(self.key())

    def __str__(self):
        return self.text


def paths_equal(a, b):
    """Compares two space-separated MSRP URI lists per RFC 4975 6.1."""
    try:
        ua = [MsrpUri.parse(x) for x in a.split(" ")]
        ub = [MsrpUri.parse(x) for x in b.split(" ")]
    except ProtocolError:
        return False
    return ua == ub


class MsrpFrame:
    """One MSRP request or response as received (or built)."""

    def __init__(self, tid, method=None, status=None, comment=None, headers=None, body=None, flag="$",
                 raw=b""):
        self.tid, self.method, self.status, self.comment = tid, method, status, comment
        self.headers = headers or []   # ordered (name, value)
        self.body = body               # None: no body; bytes otherwise
        self.flag = flag
        self.raw = raw
        self.time = time.monotonic()

    @property
    def is_request(self):
        return self.method is not None

    def get(self, name, default=None):
        name = name.lower()
        for n, v in self.headers:
            if n.lower() == name:
                return v
        return default

    def encode(self):
        start = f"MSRP {self.tid} {self.method}" if self.method else \
            f"MSRP {self.tid} {self.status:03d}" + (f" {self.comment}" if self.comment else "")
        out = (start + "\r\n" + "".join(f"{n}: {v}\r\n" for n, v in self.headers)).encode()
        if self.body is not None:
            out += b"\r\n" + self.body + b"\r\n"
        return out + f"-------{self.tid}{self.flag}\r\n".encode()

    def __repr__(self):
        what = self.method or self.status
        return f"<MsrpFrame {self.tid} {what} {self.flag} body={len(self.body) if self.body is not None else None}>"


REQ_START = re.compile(rb"^MSRP ([A-Za-z0-9][A-Za-z0-9.\-+%=]{3,31}) ([A-Z]+)$")
RESP_START = re.compile(rb"^MSRP ([A-Za-z0-9][A-Za-z0-9.\-+%=]{3,31}) (\d{3})(?: ([^\r\n]*))?$")
MSRP_HEADER = re.compile(rb"^([A-Za-z][A-Za-z0-9\-.!%*_+`'~]*): ([^\r\n]*)$")
BYTE_RANGE = re.compile(r"^(\d+)-(\d+|\*)/(\d+|\*)$")
MIME_HEADERS = ("content-type", "content-id", "content-description", "content-disposition")


def parse_msrp(buf):
    """Parses one MSRP frame at the start of buf (RFC 4975 section 9).

    Returns (frame, consumed), or None when more data is needed; raises ProtocolError."""
    eol = buf.find(b"\r\n")
    if eol < 0:
        if len(buf) > 512:
            raise ProtocolError(f"no CRLF after 512 bytes: {bytes(buf[:80])!r}")
        return None
    start = bytes(buf[:eol])
    mreq, mresp = REQ_START.match(start), RESP_START.match(start)
    if not (mreq or mresp):
        raise ProtocolError(f"bad MSRP start line {start!r}")
    tid = (mreq or mresp).group(1).decode()
    end_prefix = f"-------{tid}".encode()
    headers = []
    pos = eol + 2
    while True:
        eol = buf.find(b"\r\n", pos)
        if eol < 0:
            if len(buf) - pos > 8192:
                raise ProtocolError("MSRP header line longer than 8192 bytes")
            return None
        line = bytes(buf[pos:eol])
        pos = eol + 2
        if line.startswith(end_prefix) and len(line) == len(end_prefix) + 1 and line[-1:] in b"+$#":
            flag = line[-1:].decode()
            body = None
            break
        if line == b"":
            if mresp:
                raise ProtocolError(f"MSRP response {tid} with a body")
            if not headers or headers[-1][0].lower() != "content-type":
                raise ProtocolError(f"MSRP request {tid}: body not preceded by Content-Type as last header")
            # the body ends with CRLF end-line; the end-line must not appear inside it
            search = b"\r\n" + end_prefix
            i = pos
            while True:
                j = buf.find(search, i)
                if j < 0:
                    if len(buf) - pos > MAX_MSRP_FRAME:
                        raise ProtocolError(f"MSRP request {tid}: no end-line within {MAX_MSRP_FRAME} bytes")
                    return None
                k = j + len(search)
                if len(buf) < k + 3:
                    return None
                if buf[k:k + 1] in (b"+", b"$", b"#") and buf[k + 1:k + 3] == b"\r\n":
                    body = bytes(buf[pos:j])
                    flag = buf[k:k + 1].decode()
                    pos = k + 3
                    break
                i = j + 1
            break
        m = MSRP_HEADER.match(line)
        if not m:
            raise ProtocolError(f"bad MSRP header line {line!r} in {tid}")
        try:
            headers.append((m.group(1).decode(), m.group(2).decode("utf-8")))
        except UnicodeDecodeError:
            raise ProtocolError(f"MSRP header not UTF-8: {line!r}")
    names = [n.lower() for n, _ in headers]
    if names[:2] != ["to-path", "from-path"]:
        raise ProtocolError(f"MSRP {tid}: To-Path and From-Path must be the first two headers, got {names[:2]}")
    for n, v in headers[:2]:
        for u in v.split(" "):
            MsrpUri.parse(u)
    for n in set(names):
        if names.count(n) > 1:
            raise ProtocolError(f"MSRP {tid}: header {n} repeated")
    if body is None and any(n in MIME_HEADERS for n in names):
        raise ProtocolError(f"MSRP {tid}: MIME header without a body")
    if mresp:
        if flag != "$":
            raise ProtocolError(f"MSRP response {tid} with continuation flag {flag}")
        frame = MsrpFrame(tid, status=int(mresp.group(2)),
                          comment=mresp.group(3).decode("utf-8", "replace") if mresp.group(3) else None,
                          headers=headers, flag=flag)
    else:
        frame = MsrpFrame(tid, method=mreq.group(2).decode(), headers=headers, body=body, flag=flag)
    frame.raw = bytes(buf[:pos])
    return frame, pos


def parse_byte_range(value):
    m = BYTE_RANGE.match(value or "")
    if not m:
        raise ProtocolError(f"bad Byte-Range {value!r}")
    start = int(m.group(1))
    end = None if m.group(2) == "*" else int(m.group(2))
    total = None if m.group(3) == "*" else int(m.group(3))
    if start < 1:
        raise ProtocolError(f"Byte-Range start {start} < 1")
    if end is not None and end < start - 1:
        raise ProtocolError(f"Byte-Range end before start: {value}")
    if total is not None and end is not None and end > total:
        raise ProtocolError(f"Byte-Range end beyond total: {value}")
    return start, end, total


# =============================================================================== message bodies

def iscomposing_xml(active=True, refresh=60, content_type="text/plain"):
    """An RFC 3994 status document."""
    parts = ['<?xml version="1.0" encoding="UTF-8"?>\n',
             f'<isComposing xmlns="{ISCOMPOSING_NS}">\n',
             f"  <state>{'active' if active else 'idle'}</state>\n"]
    if content_type:
        parts.append(f"  <contenttype>{content_type}</contenttype>\n")
    if active and refresh:
        parts.append(f"  <refresh>{int(refresh)}</refresh>\n")
    parts.append("</isComposing>\n")
    return "".join(parts).encode()


def parse_iscomposing(body):
    """{'state':..., 'refresh':..., 'contenttype':..., 'lastactive':...}; raises ProtocolError."""
    try:
        root = ET.fromstring(body)
    except ET.ParseError as e:
        raise ProtocolError(f"isComposing document is not XML: {e}")
    if root.tag != f"{{{ISCOMPOSING_NS}}}isComposing":
        raise ProtocolError(f"isComposing root is {root.tag}")
    out = {}
    for child in root:
        name = child.tag.split("}", 1)[-1]
        if child.tag.startswith(f"{{{ISCOMPOSING_NS}}}"):
            out[name] = (child.text or "").strip()
    if out.get("state") not in ("active", "idle"):
        raise ProtocolError(f"isComposing state {out.get('state')!r}")
    if "refresh" in out and not out["refresh"].isdigit():
        raise ProtocolError(f"isComposing refresh {out['refresh']!r}")
    return out


def cpim_address(value):
    """A CPIM From/To value (RFC 3862: [ Formal-name ] "<" URI ">"): a bare URI gets the
    angle brackets, a value that already has them ('"Nick" <sip:a@b>') is kept."""
    return value if "<" in value else f"<{value}>"


def cpim_wrap(body, content_type, from_uri, to_uri, extra_headers=(), datetime_value=True):
    """A message/cpim document (RFC 3862) around body.

    from_uri / to_uri: a URI or a whole CPIM address with a display name; to_uri may be a list
    (one To header each).  datetime_value: True for now, a string for that value, None for none."""
    if datetime_value is True:
        datetime_value = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    tos = [to_uri] if isinstance(to_uri, str) else list(to_uri)
    head = [f"From: {cpim_address(from_uri)}"] + [f"To: {cpim_address(t)}" for t in tos]
    if datetime_value:
        head.append(f"DateTime: {datetime_value}")
    head += list(extra_headers)
    if isinstance(body, str):
        body = body.encode()
    return ("\r\n".join(head) + "\r\n\r\n" + f"Content-Type: {content_type}\r\n\r\n").encode() + body


def parse_cpim_address(value):
    """(display name or None, URI) of a CPIM From/To value; raises ProtocolError."""
    m = re.match(r'^\s*(?:"((?:[^"\\]|\\.)*)"|([^"<]*?))\s*<([^<>\s]+)>\s*$', value or "")
    if not m:
        raise ProtocolError(f"bad CPIM address {value!r}")
    name = m.group(1) if m.group(1) is not None else (m.group(2) or None)
    if name is not None and m.group(1) is not None:
        name = re.sub(r"\\(.)", r"\1", name)
    return name, m.group(3)


class Cpim:
    def __init__(self, headers, mime_headers, body):
        self.headers, self.mime_headers, self.body = headers, mime_headers, body

    def get(self, name):
        for n, v in self.headers:
            if n.lower() == name.lower():
                return v
        return None

    def get_all(self, name):
        return [v for n, v in self.headers if n.lower() == name.lower()]

    @property
    def content_type(self):
        for n, v in self.mime_headers:
            if n.lower() == "content-type":
                return v
        return None


def parse_cpim(data):
    """Parses message/cpim; raises ProtocolError."""
    head, sep, rest = data.partition(b"\r\n\r\n")
    if not sep:
        raise ProtocolError("message/cpim without the blank line after its message headers")
    mime, sep2, body = rest.partition(b"\r\n\r\n")
    if not sep2:
        raise ProtocolError("message/cpim without the blank line after its MIME headers")

    def hdrs(block, what):
        out = []
        for line in block.decode("utf-8", "replace").split("\r\n"):
            m = re.match(r"^([A-Za-z0-9.\-_]+): (.*)$", line)
            if not m:
                raise ProtocolError(f"bad message/cpim {what} header {line!r}")
            out.append((m.group(1), m.group(2)))
        return out

    c = Cpim(hdrs(head, "message"), hdrs(mime, "MIME"), body)
    if not c.content_type:
        raise ProtocolError("message/cpim without an inner Content-Type")
    return c


def quote_string(text):
    """An RFC 4975 quoted-string (section 9: DQUOTE *(qdtext / qd-esc) DQUOTE) holding text."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def parse_quoted_string(value):
    """The text of an RFC 4975 quoted-string; raises ProtocolError.  qd-esc is a backslash before
    a backslash or a double quote only; qdtext excludes control characters."""
    if value is None or len(value) < 2 or value[0] != '"' or value[-1] != '"':
        raise ProtocolError(f"not a quoted-string: {value!r}")
    out, i, inner = [], 0, value[1:-1]
    while i < len(inner):
        ch = inner[i]
        if ch == "\\":
            if i + 1 >= len(inner) or inner[i + 1] not in '\\"':
                raise ProtocolError(f"bad escape in quoted-string {value!r}")
            out.append(inner[i + 1])
            i += 2
            continue
        if ch == '"' or (ord(ch) < 0x20 and ch != "\t") or ord(ch) == 0x7f:
            raise ProtocolError(f"bad character {ch!r} in quoted-string {value!r}")
        out.append(ch)
        i += 1
    return "".join(out)


def parse_use_nickname(value):
    """The nickname of a Use-Nickname header value (RFC 7701: a quoted-string).

    Beyond the syntax, RFC 7701 wants nicknames prepared as RFC 7700 (now RFC 8266) says: an
    empty one, or one with control characters, is malformed.  Raises ProtocolError."""
    nick = parse_quoted_string(value)
    if not nick.strip():
        raise ProtocolError(f"empty nickname in {value!r}")
    if any(unicodedata.category(c) in ("Cc", "Cf", "Cs", "Co", "Cn") for c in nick):
        raise ProtocolError(f"nickname with a control or unassigned character: {value!r}")
    return nick


def nickname_key(nick):
    """The form two nicknames are compared in (RFC 8266's nickname profile, simplified): NFKC,
    spaces mapped and collapsed, trimmed, case-folded."""
    s = "".join(" " if unicodedata.category(c) == "Zs" else c for c in nick)
    s = unicodedata.normalize("NFKC", " ".join(s.split()))
    return s.casefold()


class MsrpMessage:
    """A complete message received over MSRP (reassembled from its chunks)."""

    def __init__(self, message_id, content_type, body, chunks, first):
        self.message_id = message_id
        self.content_type = content_type
        self.body = body
        self.chunks = chunks          # [(start, end, total, flag)]
        self.first = first            # the first chunk's MsrpFrame
        self.time = time.monotonic()
        self.cpim = None
        self.composing = None
        # the message/cpim view (RFC 3862): addresses as URIs, display names apart
        self.cpim_from = self.cpim_from_display = self.cpim_to = self.cpim_datetime = None
        self.cpim_to_all = []
        base = content_type.split(";")[0].strip().lower()
        inner_type, inner_body = base, body
        if base == "message/cpim":
            self.cpim = parse_cpim(body)
            inner_type = self.cpim.content_type.split(";")[0].strip().lower()
            inner_body = self.cpim.body
            if self.cpim.get("From") is not None:
                self.cpim_from_display, self.cpim_from = parse_cpim_address(self.cpim.get("From"))
            self.cpim_to_all = [parse_cpim_address(v)[1] for v in self.cpim.get_all("To")]
            self.cpim_to = self.cpim_to_all[0] if self.cpim_to_all else None
            self.cpim_datetime = self.cpim.get("DateTime")
        if inner_type == "application/im-iscomposing+xml":
            self.composing = parse_iscomposing(inner_body)
        self.inner_type = inner_type
        self.inner_body = inner_body

    @property
    def is_composing(self):
        return self.composing is not None

    @property
    def text(self):
        return self.inner_body.decode("utf-8")

    def __repr__(self):
        return f"<MsrpMessage {self.message_id} {self.content_type} {self.inner_body[:60]!r}>"


class Outgoing:
    """A message this UA sent: its transactions and what came back."""

    def __init__(self, message_id, chunks, expect_responses):
        self.message_id = message_id
        self.tids = []
        self.chunks = chunks
        self.expect_responses = expect_responses
        self.responses = {}     # tid -> MsrpFrame
        self.reports = []
        self.done = asyncio.Event()

    @property
    def statuses(self):
        return [self.responses[t].status for t in self.tids if t in self.responses]


# =============================================================================== MSRP session

class MsrpSession:
    """One MSRP session (one m=message stream) over one TCP connection."""

    def __init__(self, ua, call, server=None):
        self.ua, self.call = ua, call
        self.local_port = None
        self.session_id = _rand(10)
        self.local_path = None
        self.remote_path = None
        # msrps (RFC 4975 14): over TLS with ua.tls; the other side's a=fingerprint values, the
        # fingerprint of the certificate it showed and whether they matched
        self.secure = bool(getattr(call, "secure", False))
        self.remote_fingerprints = None     # None until its SDP is known
        self.peer_fingerprint = None
        self.fingerprint_ok = None
        self._remote_known = asyncio.Event()
        self.role = None          # "active" | "passive"
        self.server = server
        self.reader = self.writer = None
        self.connected = asyncio.Event()
        self.closed = asyncio.Event()
        self.frames = []          # every frame received
        self.sent_frames = []
        self.violations = []      # malformed input and rule violations
        self.received_messages = []
        self.reports = []         # REPORT frames received
        self.responses = []       # response frames received
        self.aborted = []         # (message_id, bytes received) of '#'-terminated messages
        self.empty_sends = []     # bodyless SEND frames received
        self.outgoing = {}        # message_id -> Outgoing
        self.by_tid = {}          # tid -> Outgoing
        self.partial = {}         # message_id -> {"chunks": [...], "data": bytearray, ...}
        self.reply_status = ua.msrp_status     # int or callable(frame) -> int
        self.auto_report = True
        # RFC 7701: NICKNAME requests received, and who answers them.  None: we are a
        # participant, to whom nobody sends NICKNAME (a violation, answered 501); else a
        # callable(session, frame, nickname or None when malformed) -> status, maybe async.
        self.nickname_requests = []
        self.on_nickname = None
        self.nicknames_sent = []  # (value sent in Use-Nickname, status)
        # called with each complete MsrpMessage (maybe async); a chat room switch relays here
        self.on_complete = None
        self.extra_connections = 0
        self.closed_by_peer = False
        self.tls_error = None     # the TLS failure seen on this session's connection
        self._task = None
        self._waiters_taken = set()
        self._changed = asyncio.Event()

    # --------------------------------------------------------- connection
    def violation(self, what):
        self.violations.append(what)
        self._notify()

    def _notify(self):
        self._changed.set()
        self._changed = asyncio.Event()

    async def start_listening(self):
        """Listens on a fresh port of 127.0.0.1 (the port of our a=path), over TLS when secure."""
        ctx = self.ua.tls.server_context() if self.secure else None
        self.server = await asyncio.start_server(self._accepted, "127.0.0.1", 0, ssl=ctx)
        self.local_port = self.server.sockets[0].getsockname()[1]
        scheme = "msrps" if self.secure else "msrp"
        self.local_path = f"{scheme}://127.0.0.1:{self.local_port}/{self.session_id};tcp"

    async def _tls_check(self, writer):
        """RFC 8122: the certificate of the other end against its a=fingerprint.  False (and the
        connection closed) on a mismatch."""
        sslobj = writer.get_extra_info("ssl_object")
        if sslobj is None:
            return True
        der = sslobj.getpeercert(binary_form=True)
        self.peer_fingerprint = cert_fingerprint(der) if der else None
        try:
            await asyncio.wait_for(self._remote_known.wait(), 5)
        except asyncio.TimeoutError:
            pass
        fps = self.remote_fingerprints or []
        if not fps:
            return True     # the CA check of the handshake is all there is
        if der is None:
            self.fingerprint_ok = False
        else:
            self.fingerprint_ok = fingerprint_matches(der, fps) is True
        if not self.fingerprint_ok:
            self.violation(f"certificate {self.peer_fingerprint} matches none of the peer's "
                           f"a=fingerprint {fps}: connection closed")
            writer.close()
            return False
        return True

    def set_remote(self, remote_path, fingerprints):
        """The other side's SDP is known: its path and a=fingerprint values."""
        self.remote_path = remote_path
        self.remote_fingerprints = list(fingerprints)
        self._remote_known.set()

    async def _accepted(self, reader, writer):
        if self.role == "active" or self.writer is not None:
            self.extra_connections += 1
            self.violation(f"unexpected extra MSRP connection from {writer.get_extra_info('peername')} "
                           f"(role {self.role})")
            writer.close()
            return
        if not await self._tls_check(writer):
            return
        self.reader, self.writer = reader, writer
        self.connected.set()
        self._task = asyncio.current_task()
        await self._read_loop()

    async def activate(self, role, remote_path, fingerprints=()):
        """Called once the offer/answer is complete."""
        self.role = role
        self.set_remote(remote_path, fingerprints)
        if role == "active":
            if self.server:
                self.server.close()
                self.server = None
            first = MsrpUri.parse(remote_path.split(" ")[0])
            if not _is_ip(first.host):
                self.violation(f"peer path host {first.host!r} is not an IP address (no DNS here)")
                return
            ctx = self.ua.tls.client_context() if self.secure else None
            try:
                self.reader, self.writer = await asyncio.open_connection(first.host, first.port, ssl=ctx)
            except (OSError, ssl.SSLError) as e:
                self.violation(f"cannot connect to {first.host}:{first.port}: {e}")
                self.tls_error = str(e)
                return
            if not await self._tls_check(self.writer):
                return
            self.connected.set()
            self._task = asyncio.ensure_future(self._read_loop())
            if self.ua.send_empty_send:
                # RFC 4975 5.4: the active party sends a SEND (without body if it has nothing)
                try:
                    await self.send_empty()
                except (OSError, ssl.SSLError) as e:
                    # with TLS 1.3 a server refuses the client's certificate (or its absence)
                    # after the client's side of the handshake is done: the first write finds
                    # the connection gone
                    self.tls_error = self.tls_error or str(e) or type(e).__name__
                    self.closed_by_peer = True

    async def wait_connected(self, timeout=5.0):
        try:
            await asyncio.wait_for(self.connected.wait(), timeout)
        except asyncio.TimeoutError:
            raise ProtocolError(f"MSRP connection not established within {timeout}s (role {self.role}); "
                                f"violations: {self.violations}")

    async def close(self):
        if self.server:
            self.server.close()
            self.server = None
        if self.writer:
            self.writer.close()
            try:
                await self.writer.wait_closed()
            except Exception:  # noqa: BLE001
                pass
        if self._task and self._task is not asyncio.current_task():
            self._task.cancel()
            try:
                await self._task
            except BaseException:  # noqa: BLE001
                pass
        self.closed.set()

    async def _read_loop(self):
        buf = bytearray()
        try:
            while True:
                data = await self.reader.read(65536)
                if not data:
                    if buf:
                        self.violation(f"connection closed inside a frame: {bytes(buf[:200])!r}")
                    if self.call.state not in ("terminated",):
                        self.closed_by_peer = True
                    break
                buf += data
                while True:
                    try:
                        got = parse_msrp(buf)
                    except ProtocolError as e:
                        self.violation(f"{e} (data: {bytes(buf[:300])!r})")
                        self.writer.close()
                        return
                    if got is None:
                        break
                    frame, used = got
                    del buf[:used]
                    self.frames.append(frame)
                    try:
                        await self._handle(frame)
                    except ProtocolError as e:
                        self.violation(str(e))
                    self._notify()
        except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError) as e:
            # over TLS 1.3 a refused client certificate shows here, after our side's handshake
            if isinstance(e, ssl.SSLError):
                self.tls_error = str(e)
            self.closed_by_peer = True
        finally:
            self.closed.set()
            self._notify()

    async def _write(self, frame):
        await self.wait_connected()
        self.sent_frames.append(frame)
        self.writer.write(frame.encode())
        try:
            await self.writer.drain()
        except ssl.SSLError as e:
            # TLS 1.3: the other side refuses our certificate after our half of the handshake
            self.tls_error = str(e)
            self.closed_by_peer = True

    # --------------------------------------------------------- receiving
    def _check_paths(self, frame):
        to_path, from_path = frame.get("to-path"), frame.get("from-path")
        what = frame.method or f"response {frame.status}"
        if not paths_equal(to_path, self.local_path):
            self.violation(f"{what} {frame.tid}: To-Path {to_path!r} is not our path {self.local_path!r}")
            return False
        # a response comes from the next hop (RFC 4975 7.2, RFC 4976: a relay answers hop by hop):
        # its From-Path is the first URI of the peer's path; a request's is the whole path
        want = self.remote_path.split(" ")[0] if self.remote_path and not frame.is_request else \
            self.remote_path
        if want and not paths_equal(from_path, want):
            self.violation(f"{what} {frame.tid}: From-Path {from_path!r} is not the peer's a=path "
                           f"{want!r}")
        return True

    async def _handle(self, frame):
        if not frame.is_request:
            self._check_paths(frame)
            self.responses.append(frame)
            out = self.by_tid.get(frame.tid)
            if out is None:
                self.violation(f"response {frame.status} to unknown transaction {frame.tid}")
                return
            if frame.tid in out.responses:
                self.violation(f"second response to transaction {frame.tid}")
            out.responses[frame.tid] = frame
            if out.expect_responses == "yes" and all(t in out.responses for t in out.tids):
                out.done.set()
            return
        ok = self._check_paths(frame)
        if frame.method == "SEND":
            await self._handle_send(frame, ok)
        elif frame.method == "REPORT":
            self._handle_report(frame)
        elif frame.method == "NICKNAME":
            await self._handle_nickname(frame, ok)
        else:
            # unknown method: 501 unless the sender asked for no failure reports
            if frame.get("failure-report", "yes") != "no":
                await self._respond(frame, 501, "Request-method-not-understood")

    async def _respond(self, frame, status, comment=None):
        comment = comment or {200: "OK", 400: "Unintelligible", 403: "Action-not-allowed",
                              404: "Failure to resolve recipient's URI",
                              413: "Stop-sending-message", 415: "MIME-not-understood",
                              424: "Malformed nickname", 425: "Nickname reserved or already in use",
                              428: "Private messages not supported",
                              481: "Session-does-not-exist", 501: "Request-method-not-understood"
                              }.get(status, "Whatever")
        resp = MsrpFrame(frame.tid, status=status, comment=comment,
                         headers=[("To-Path", frame.get("from-path").split(" ")[0]),
                                  ("From-Path", self.local_path)])
        await self._write(resp)

    async def _handle_send(self, frame, path_ok):
        mid = frame.get("message-id")
        sr = frame.get("success-report")
        fr = frame.get("failure-report")
        if mid is None or not IDENT.match(mid):
            self.violation(f"SEND {frame.tid}: missing or bad Message-ID {mid!r}")
        if sr is not None and sr not in ("yes", "no"):
            self.violation(f"SEND {frame.tid}: bad Success-Report {sr!r}")
        if fr is not None and fr not in ("yes", "no", "partial"):
            self.violation(f"SEND {frame.tid}: bad Failure-Report {fr!r}")
        br = frame.get("byte-range")
        try:
            start, end, total = parse_byte_range(br) if br else (1, None, None)
        except ProtocolError as e:
            self.violation(f"SEND {frame.tid}: {e}")
            start, end, total = 1, None, None
        if not path_ok:
            status = 481
        elif callable(self.reply_status):
            status = self.reply_status(frame)
        else:
            status = self.reply_status
        if fr != "no" and not (fr == "partial" and status == 200):
            await self._respond(frame, status)
        if status != 200 or mid is None:
            return
        if frame.body is None:
            if frame.flag != "$":
                self.violation(f"bodyless SEND {frame.tid} with flag {frame.flag}")
            if br is not None and (start, end, total) != (1, 0, 0):
                self.violation(f"bodyless SEND {frame.tid} with Byte-Range {br} (expected 1-0/0)")
            if mid not in self.partial:
                self.empty_sends.append(frame)
                return
        body = frame.body or b""
        if end is not None and frame.flag == "$" and end != start + len(body) - 1:
            self.violation(f"SEND {frame.tid}: Byte-Range {br} but {len(body)} body bytes")
        st = self.partial.setdefault(mid, {"data": bytearray(), "chunks": [], "ctype": None,
                                           "first": frame, "total": None})
        ctype = frame.get("content-type")
        if ctype:
            if st["ctype"] and st["ctype"] != ctype:
                self.violation(f"message {mid}: Content-Type changed from {st['ctype']!r} to {ctype!r}")
            st["ctype"] = st["ctype"] or ctype
        if total is not None:
            if st["total"] is not None and st["total"] != total:
                self.violation(f"message {mid}: total changed from {st['total']} to {total}")
            st["total"] = total
        data = st["data"]
        if len(data) < start - 1 + len(body):
            data.extend(b"\0" * (start - 1 + len(body) - len(data)))
        data[start - 1:start - 1 + len(body)] = body
        st.setdefault("have", set()).update(range(start - 1, start - 1 + len(body)))
        st["chunks"].append((start, end, total, frame.flag))
        if frame.flag == "#":
            self.aborted.append((mid, bytes(data)))
            del self.partial[mid]
            return
        if frame.flag == "$":
            if st.get("size") is not None:
                self.violation(f"message {mid}: a second '$' chunk")
            st["size"] = st["total"] if st["total"] is not None else start - 1 + len(body)
            if len(data) > st["size"]:
                self.violation(f"message {mid}: {len(data)} bytes, more than the total {st['size']}")
        # RFC 4975 allows chunks to arrive out of order: complete once every byte is there
        if st.get("size") is not None and len(st["have"]) >= st["size"]:
            await self._complete(mid, st, sr)

    async def _complete(self, mid, st, sr):
        del self.partial[mid]
        if st["ctype"] is None:
            if st["data"]:
                self.violation(f"message {mid}: body without Content-Type")
            return
        try:
            msg = MsrpMessage(mid, st["ctype"], bytes(st["data"]), st["chunks"], st["first"])
        except (ProtocolError, UnicodeDecodeError) as e:
            self.violation(f"message {mid}: {e}")
            return
        if msg.cpim_datetime is not None and not CPIM_DATETIME.match(msg.cpim_datetime):
            self.violation(f"message {mid}: CPIM DateTime {msg.cpim_datetime!r} is not RFC 3339")
        self.received_messages.append(msg)
        if self.on_complete is not None:
            got = self.on_complete(msg)
            if inspect.isawaitable(got):
                await got
        if sr == "yes" and self.auto_report:
            size = len(msg.body)
            rep = MsrpFrame(_rand(), method="REPORT", headers=[
                ("To-Path", st["first"].get("from-path")), ("From-Path", self.local_path),
                ("Message-ID", mid), ("Byte-Range", f"1-{size}/{size}"), ("Status", "000 200 OK")])
            await self._write(rep)

    async def _handle_nickname(self, frame, path_ok):
        """RFC 7701: a NICKNAME request carries one Use-Nickname header and no body."""
        self.nickname_requests.append(frame)
        if frame.body is not None:
            self.violation(f"NICKNAME {frame.tid} with a body")
        value = frame.get("use-nickname")
        try:
            nick = parse_use_nickname(value)
        except ProtocolError:
            nick = None
        if not path_ok:
            status = 481
        elif self.on_nickname is None:
            self.violation(f"NICKNAME {frame.tid} (Use-Nickname {value!r}) sent to a participant: "
                           f"only a chat room's MSRP switch takes NICKNAME (RFC 7701)")
            status = 501
        else:
            status = self.on_nickname(self, frame, nick)
            if inspect.isawaitable(status):
                status = await status
        await self._respond(frame, status)

    def _handle_report(self, frame):
        self.reports.append(frame)
        mid, status, br = frame.get("message-id"), frame.get("status"), frame.get("byte-range")
        if frame.get("success-report") or frame.get("failure-report"):
            self.violation(f"REPORT {frame.tid} carries Success-Report/Failure-Report")
        if not status or not re.match(r"^\d{3} \d{3}( .*)?$", status):
            self.violation(f"REPORT {frame.tid}: bad Status {status!r}")
        if br is None:
            self.violation(f"REPORT {frame.tid}: no Byte-Range")
        else:
            try:
                parse_byte_range(br)
            except ProtocolError as e:
                self.violation(f"REPORT {frame.tid}: {e}")
        out = self.outgoing.get(mid)
        if out is None:
            self.violation(f"REPORT {frame.tid} for unknown Message-ID {mid!r}")
        else:
            out.reports.append(frame)

    # --------------------------------------------------------- sending
    def _headers(self, mid):
        return [("To-Path", self.remote_path), ("From-Path", self.local_path), ("Message-ID", mid)]

    async def send_empty(self):
        """A SEND without body (RFC 4975 7.1.1), e.g. to bind the connection."""
        mid = _rand()
        out = Outgoing(mid, 0, "yes")
        tid = _rand()
        out.tids.append(tid)
        self.outgoing[mid], self.by_tid[tid] = out, out
        await self._write(MsrpFrame(tid, method="SEND",
                                    headers=self._headers(mid) + [("Byte-Range", "1-0/0")]))
        return out

    async def send(self, body, content_type="text/plain;charset=UTF-8", message_id=None, chunk_size=None,
                   success_report=False, failure_report=None, abort_after=None, unknown_total=False,
                   wait=True, timeout=5.0, extra_headers=()):
        """Sends body (bytes or str) as one MSRP message; returns its Outgoing.

        chunk_size: split into chunks of that many bytes ('+' then '$'); abort_after=n: send n chunks,
        the n-th ending with '#', and stop.  success_report: Success-Report: yes; failure_report:
        None (header absent = yes), "yes", "no" or "partial".  unknown_total: total '*' except on
        the last chunk.  wait: wait for the responses expected (and fail on a timeout)."""
        if isinstance(body, str):
            body = body.encode()
        mid = message_id or _rand()
        size = len(body)
        step = chunk_size or max(size, 1)
        pieces = [body[i:i + step] for i in range(0, size, step)] or [b""]
        if abort_after is not None:
            pieces = pieces[:abort_after]
        expect = failure_report or "yes"
        out = Outgoing(mid, len(pieces), expect)
        self.outgoing[mid] = out
        offset = 0
        for n, piece in enumerate(pieces):
            last = n == len(pieces) - 1
            flag = "#" if (abort_after is not None and last) else ("$" if last else "+")
            total = "*" if unknown_total and not last else str(size)
            hdrs = self._headers(mid)
            if success_report:
                hdrs.append(("Success-Report", "yes"))
            if failure_report:
                hdrs.append(("Failure-Report", failure_report))
            hdrs.append(("Byte-Range", f"{offset + 1}-{offset + len(piece)}/{total}"))
            hdrs += list(extra_headers)
            hdrs.append(("Content-Type", content_type))
            tid = _rand()
            out.tids.append(tid)
            self.by_tid[tid] = out
            await self._write(MsrpFrame(tid, method="SEND", headers=hdrs, body=piece, flag=flag))
            offset += len(piece)
        if wait and expect == "yes":
            try:
                await asyncio.wait_for(out.done.wait(), timeout)
            except asyncio.TimeoutError:
                raise ProtocolError(f"no MSRP response to every chunk of {mid} within {timeout}s "
                                    f"(got {out.statuses}); violations: {self.violations}")
        return out

    async def send_text(self, text, chunk_size=None, report=False, content_type="text/plain;charset=UTF-8",
                        cpim=False, cpim_from=None, cpim_to=None, cpim_headers=(), **kw):
        """Sends text; wrapped in message/cpim when cpim, cpim_from or cpim_to is given (From
        defaults to our URI, To to the peer's: in a chat room, the room)."""
        body = text.encode() if isinstance(text, str) else text
        if cpim or cpim_from or cpim_to:
            body = cpim_wrap(body, content_type, cpim_from or self.call.local_uri,
                             cpim_to or self.call.remote_uri, extra_headers=cpim_headers)
            content_type = "message/cpim"
        return await self.send(body, content_type, chunk_size=chunk_size, success_report=report, **kw)

    async def send_cpim(self, text, to=None, from_=None, content_type="text/plain;charset=UTF-8",
                        headers=(), **kw):
        """text in message/cpim, From: from_ (our URI), To: to (the peer's URI; for a private
        message in a chat room, one participant's URI, RFC 7701)."""
        return await self.send_text(text, content_type=content_type, cpim=True, cpim_from=from_,
                                    cpim_to=to, cpim_headers=headers, **kw)

    async def send_nickname(self, nick, raw=False, timeout=5.0):
        """An RFC 7701 NICKNAME request: Use-Nickname: the quoted nick (raw: nick as the header
        value, as it is), no body.  Returns the response status, 408 when none came."""
        value = nick if raw else quote_string(nick)
        tid = _rand()
        out = Outgoing(None, 0, "yes")
        out.tids.append(tid)
        self.by_tid[tid] = out
        await self._write(MsrpFrame(tid, method="NICKNAME", headers=[
            ("To-Path", self.remote_path), ("From-Path", self.local_path), ("Use-Nickname", value)]))
        try:
            await asyncio.wait_for(out.done.wait(), timeout)
            status = out.responses[tid].status
        except asyncio.TimeoutError:
            status = 408
        self.nicknames_sent.append((value, status))
        return status

    async def composing(self, active=True, refresh=60, **kw):
        return await self.send(iscomposing_xml(active, refresh), "application/im-iscomposing+xml", **kw)

    async def wait_message(self, pred=None, timeout=5.0, include_composing=False):
        """The first received message matching pred not returned before by wait_message."""
        deadline = time.monotonic() + timeout
        while True:
            for m in self.received_messages:
                if id(m) in self._waiters_taken:
                    continue
                if pred is None and m.is_composing and not include_composing:
                    continue
                if pred is None or pred(m):
                    self._waiters_taken.add(id(m))
                    return m
            left = deadline - time.monotonic()
            if left <= 0:
                raise ProtocolError(f"no matching MSRP message within {timeout}s; got "
                                    f"{self.received_messages}; violations: {self.violations}")
            try:
                await asyncio.wait_for(self._changed.wait(), left)
            except asyncio.TimeoutError:
                pass

    async def wait_report(self, message_id, timeout=5.0):
        deadline = time.monotonic() + timeout
        while True:
            out = self.outgoing.get(message_id)
            if out and out.reports:
                return out.reports[0]
            left = deadline - time.monotonic()
            if left <= 0:
                raise ProtocolError(f"no REPORT for {message_id} within {timeout}s")
            try:
                await asyncio.wait_for(self._changed.wait(), left)
            except asyncio.TimeoutError:
                pass


# =============================================================================== SIP dialogs

class Answer:
    """What ua.on_invite may return: a final status, optionally after ringing for `delay` seconds."""

    def __init__(self, status=200, reason=None, delay=0.0, setup=None, headers=()):
        self.status, self.reason, self.delay, self.setup, self.headers = status, reason, delay, setup, headers


REASONS = {100: "Trying", 180: "Ringing", 200: "OK", 400: "Bad Request", 403: "Forbidden",
           404: "Not Found", 405: "Method Not Allowed", 408: "Request Timeout",
           406: "Not Acceptable", 415: "Unsupported Media Type", 423: "Interval Too Brief",
           480: "Temporarily Unavailable", 489: "Bad Event",
           481: "Call/Transaction Does Not Exist", 486: "Busy Here", 487: "Request Terminated",
           488: "Not Acceptable Here", 500: "Server Internal Error", 501: "Not Implemented",
           603: "Decline"}


class Call:
    """One INVITE dialog (either direction) with its MSRP session."""

    def __init__(self, ua, outgoing, call_id, local_uri, remote_uri, next_hop):
        self.ua = ua
        self.outgoing = outgoing
        self.call_id = call_id
        self.local_uri, self.remote_uri = local_uri, remote_uri
        self.local_tag = _rand(4)
        self.remote_tag = None
        self.local_cseq = 1
        self.remote_cseq = None
        self.remote_target = None
        self.route_set = []
        self.next_hop = next_hop
        self.state = "init"
        self.status = None
        self.reason = None
        self.responses = []     # responses to our INVITE
        self.received = []      # every SIP message of this call received
        self.invite = None      # the INVITE (incoming) or the one sent
        self.local_sdp = None
        self.remote_sdp = None
        self.msrp = None
        self.secure = False     # the MSRP session is msrps (TCP/TLS/MSRP)
        self.problems = []
        self.final = asyncio.Event()
        self.confirmed = asyncio.Event()  # ACK received (UAS) / sent (UAC)
        self.terminated = asyncio.Event()
        self.bye_received = None
        self.bye_status = None
        self.cancelled = False
        self._ack = None
        self.acks = {}          # CSeq number of an INVITE we answered -> Event set by its ACK
        self._uas_final = None

    # delegation to the MSRP session
    async def wait_connected(self, timeout=5.0):
        if self.msrp is None:
            raise ProtocolError(f"call has no MSRP session (status {self.status}, sdp {self.problems})")
        await self.msrp.wait_connected(timeout)

    async def send_text(self, text, chunk_size=None, report=False, **kw):
        return await self.msrp.send_text(text, chunk_size=chunk_size, report=report, **kw)

    async def send(self, body, *a, **kw):
        return await self.msrp.send(body, *a, **kw)

    async def composing(self, active=True, **kw):
        return await self.msrp.composing(active, **kw)

    async def send_cpim(self, text, to=None, from_=None, **kw):
        return await self.msrp.send_cpim(text, to=to, from_=from_, **kw)

    async def send_nickname(self, nick, raw=False, timeout=5.0):
        return await self.msrp.send_nickname(nick, raw=raw, timeout=timeout)

    @property
    def chatroom(self):
        """The tokens of the peer's a=chatroom (RFC 7701), None without one."""
        if self.remote_sdp is None or not self.remote_sdp.message_media():
            return None
        value = self.remote_sdp.attr(self.remote_sdp.message_media()[0], "chatroom")
        return None if value is None else value.split()

    @property
    def bye_reason(self):
        """The Reason header (RFC 3326) of the BYE received, None without."""
        return self.bye_received.get("reason") if self.bye_received is not None else None

    async def wait_message(self, pred=None, timeout=5.0, **kw):
        return await self.msrp.wait_message(pred, timeout, **kw)

    @property
    def received_messages(self):
        return self.msrp.received_messages if self.msrp else []

    @property
    def reports(self):
        return self.msrp.reports if self.msrp else []

    @property
    def violations(self):
        return self.problems + (self.msrp.violations if self.msrp else [])

    def dialog_headers(self, method, cseq=None):
        hdrs = [("From", f"<{self.local_uri}>;tag={self.local_tag}"),
                ("To", f"<{self.remote_uri}>" + (f";tag={self.remote_tag}" if self.remote_tag else "")),
                ("Call-ID", self.call_id), ("CSeq", f"{cseq or self.local_cseq} {method}"),
                ("Max-Forwards", "70")]
        for r in self.route_set:
            hdrs.append(("Route", r))
        return hdrs

    def dialog_dest(self):
        if self.route_set:
            hp = uri_hostport(addr_uri(self.route_set[0]))
            if hp and _is_ip(hp[0]):
                return hp
        if not self.outgoing and self.remote_target:
            hp = uri_hostport(self.remote_target)
            if hp and _is_ip(hp[0]):
                return hp
        return self.next_hop

    async def bye(self, timeout=None, reason=None, extra_headers=()):
        """Sends BYE (with a Reason header when reason is given, e.g. 'SIP;cause=200;text="x"');
        returns its final status."""
        if self.state == "terminated":
            raise ProtocolError("BYE on a terminated call")
        self.local_cseq += 1
        hdrs = self.dialog_headers("BYE") + ([("Reason", reason)] if reason else []) + list(extra_headers)
        req = self.ua._request("BYE", self.remote_target, hdrs)
        self.state = "terminated"
        resp = await self.ua._client_transaction(req, self.dialog_dest(), timeout)
        self.bye_status = resp.status if resp else 408
        await self._end()
        return self.bye_status

    async def reinvite(self, timeout=None):
        """Sends a re-INVITE with the same SDP; returns the final status (ACKs a 2xx)."""
        self.local_cseq += 1
        hdrs = self.dialog_headers("INVITE") + [("Contact", self.ua.contact_value),
                                                 ("Content-Type", "application/sdp")]
        req = self.ua._request("INVITE", self.remote_target, hdrs, self.local_sdp.encode())
        resp = await self.ua._client_transaction(req, self.dialog_dest(), timeout, call=self)
        if resp and 200 <= resp.status < 300:
            self.ua._send_ack_2xx(self, resp)
        return resp.status if resp else 408

    async def cancel(self):
        """CANCEL of our pending INVITE (before its final response)."""
        if not self.outgoing or self.final.is_set():
            raise ProtocolError("nothing to cancel")
        inv = self.invite
        hdrs = [("Via", inv.get_all("via")[0]), ("From", inv.get("from")), ("To", inv.get("to")),
                ("Call-ID", self.call_id), ("CSeq", f"{inv.cseq[0]} CANCEL"), ("Max-Forwards", "70")]
        req = SipMessage(f"CANCEL {inv.uri} SIP/2.0", hdrs)
        self.cancelled = True
        resp = await self.ua._client_transaction(req, self.next_hop, None, new_branch=False)
        return resp.status if resp else 408

    async def wait_bye(self, timeout=5.0):
        try:
            await asyncio.wait_for(self.terminated.wait(), timeout)
        except asyncio.TimeoutError:
            raise ProtocolError(f"call not terminated within {timeout}s")
        return self.bye_received

    async def _end(self):
        self.state = "terminated"
        self.terminated.set()
        if self.msrp:
            await self.msrp.close()


# =============================================================================== conference state (RFC 4575)

def _local(tag):
    return tag.split("}", 1)[-1]


def _conf_child(el, name):
    for c in el:
        if c.tag == f"{{{CONF_NS}}}{name}":
            return c
    return None


def _conf_text(el, name):
    c = _conf_child(el, name) if el is not None else None
    return None if c is None else (c.text or "").strip()


def parse_conference_info(body):
    """An RFC 4575 conference-info document as plain data; raises ProtocolError.

    {"entity", "state" (full|partial|deleted), "version" (int), "description": None or
    {"state", "display", "subject"} (keys only for elements present), "user_count": None or int,
    "users": None or {"state", "list": [user]}}; a user: {"entity", "state", and, when present,
    "display", "roles" [..], "endpoints": [{"entity", "state", "display", "status"}]}.  A missing
    state attribute is "full", the schema's default."""
    try:
        root = ET.fromstring(body)
    except ET.ParseError as e:
        raise ProtocolError(f"conference-info is not XML: {e}")
    if root.tag != f"{{{CONF_NS}}}conference-info":
        raise ProtocolError(f"conference-info root is {root.tag}")
    version = root.get("version")
    if version is None or not version.isdigit():
        raise ProtocolError(f"conference-info version {version!r}")
    if root.get("entity") is None:
        raise ProtocolError("conference-info without entity")

    def state_of(el):
        st = el.get("state", "full")
        if st not in ("full", "partial", "deleted"):
            raise ProtocolError(f"<{_local(el.tag)}> state {st!r}")
        return st

    doc = {"raw": body, "entity": root.get("entity"), "state": state_of(root), "version": int(version),
           "description": None, "user_count": None, "users": None}
    desc = _conf_child(root, "conference-description")
    if desc is not None:
        d = {"state": state_of(desc)}
        for key, name in (("display", "display-text"), ("subject", "subject")):
            if _conf_child(desc, name) is not None:
                d[key] = _conf_text(desc, name)
        doc["description"] = d
    cstate = _conf_child(root, "conference-state")
    if cstate is not None and _conf_child(cstate, "user-count") is not None:
        uc = _conf_text(cstate, "user-count")
        if not uc.isdigit():
            raise ProtocolError(f"user-count {uc!r}")
        doc["user_count"] = int(uc)
    users = _conf_child(root, "users")
    if users is not None:
        lst = []
        for u in users:
            if u.tag != f"{{{CONF_NS}}}user":
                continue
            if not u.get("entity"):
                raise ProtocolError("<user> without entity")
            user = {"entity": u.get("entity"), "state": state_of(u)}
            if _conf_child(u, "display-text") is not None:
                user["display"] = _conf_text(u, "display-text")
            roles = _conf_child(u, "roles")
            if roles is not None:
                user["roles"] = [(e.text or "").strip() for e in roles if _local(e.tag) == "entry"]
            eps = []
            for e in u:
                if e.tag != f"{{{CONF_NS}}}endpoint":
                    continue
                ep = {"entity": e.get("entity"), "state": state_of(e)}
                if _conf_child(e, "display-text") is not None:
                    ep["display"] = _conf_text(e, "display-text")
                if _conf_child(e, "status") is not None:
                    ep["status"] = _conf_text(e, "status")
                eps.append(ep)
            if eps:
                user["endpoints"] = eps
            lst.append(user)
        doc["users"] = {"state": state_of(users), "list": lst}
    return doc


class ConferenceView:
    """The subscriber's copy of a conference's state, built from full and partial documents.

    RFC 4575 rules: the version of each document is one above the previous one (else one
    was lost or reordered); a "full" element replaces our copy, "partial" updates the
    parts it carries and adds what we lack, "deleted" removes it.  Users are keyed by entity
    and endpoints by entity within their user."""

    def __init__(self):
        self.version = None
        self.entity = None
        self.subject = None
        self.display = None
        self.user_count = None
        self.users = {}       # entity -> {"display", "state", "status", "roles", "endpoints"}
        self.docs = []
        self.stale = []       # documents discarded for a version not above ours

    def apply(self, doc):
        """Folds one parsed document in; returns the problems found (empty when it fits)."""
        problems = []
        if self.version is not None and doc["version"] <= self.version:
            # RFC 4575 4.6: a version not above ours is stale and discarded.  A notifier may
            # repeat its last document (a stack answering a refresh or an unsubscribe does), but
            # two different documents under one version are its fault.
            same = [d for d in self.docs if d["version"] == doc["version"]]
            if same and same[-1].get("raw") is not None and same[-1].get("raw") != doc.get("raw"):
                problems.append(f"conference-info version {doc['version']} sent twice with "
                                f"different content")
            self.stale.append(doc)
            return problems
        if self.version is None:
            if doc["state"] != "full":
                problems.append(f"first conference-info is {doc['state']}, not full")
        elif doc["version"] != self.version + 1:
            problems.append(f"conference-info version {doc['version']} after {self.version} "
                            f"(expected {self.version + 1})")
        if self.entity is not None and doc["entity"] != self.entity:
            problems.append(f"conference-info entity changed from {self.entity} to {doc['entity']}")
        self.version, self.entity = doc["version"], doc["entity"]
        self.docs.append(doc)
        if doc["state"] in ("full", "deleted"):
            self.subject = self.display = self.user_count = None
            self.users = {}
        if doc["state"] == "deleted":
            return problems
        d = doc["description"]
        if d is not None:
            if d["state"] == "full":
                self.subject, self.display = d.get("subject"), d.get("display")
            elif d["state"] == "partial":
                self.subject = d.get("subject", self.subject)
                self.display = d.get("display", self.display)
            else:
                self.subject = self.display = None
        if doc["user_count"] is not None:
            self.user_count = doc["user_count"]
        if doc["users"] is not None:
            if doc["users"]["state"] in ("full", "deleted"):
                self.users = {}
            for u in doc["users"]["list"]:
                self._apply_user(u, problems)
        return problems

    def _apply_user(self, u, problems):
        entity = u["entity"]
        if u["state"] == "deleted":
            if self.users.pop(entity, None) is None:
                problems.append(f"user {entity} deleted but not known")
            return
        cur = self.users.get(entity)
        if u["state"] == "full" or cur is None:
            cur = {"display": None, "roles": [], "endpoints": {}}
            self.users[entity] = cur
        cur["state"] = u["state"]
        if "display" in u:
            cur["display"] = u["display"]
        if "roles" in u:
            cur["roles"] = u["roles"]
        for ep in u.get("endpoints", []):
            eps = cur["endpoints"]
            if ep["state"] == "deleted":
                eps.pop(ep["entity"], None)
                continue
            old = eps.get(ep["entity"]) if ep["state"] == "partial" else None
            new = dict(old or {})
            new.update({k: v for k, v in ep.items() if k != "entity"})
            eps[ep["entity"]] = new
        statuses = [e.get("status") for e in cur["endpoints"].values() if e.get("status")]
        cur["status"] = statuses[0] if statuses else None


# =============================================================================== subscriptions

class Subscription:
    """One subscription dialog (RFC 6665) this UA holds as subscriber."""

    def __init__(self, ua, uri, event, next_hop, local_uri, accept):
        self.ua, self.uri, self.event, self.next_hop, self.accept = ua, uri, event, next_hop, accept
        self.call_id = f"{_rand()}@127.0.0.1"
        self.local_uri, self.remote_uri = local_uri, uri
        self.local_tag = _rand(4)
        self.remote_tag = None
        self.local_cseq = 0
        self.remote_cseq = None
        self.remote_target = None
        self.route_set = []
        self.status = None          # final status of the initial SUBSCRIBE (408: none)
        self.responses = []         # final responses to our SUBSCRIBEs
        self.expires = None         # Expires of the last 2xx
        self.state = "init"         # init | pending | active | terminated | failed
        self.terminated_reason = None
        self.notifies = []          # every NOTIFY of the dialog (retransmissions excluded)
        self.violations = []
        self.view = ConferenceView()
        self._taken = set()
        self._changed = asyncio.Event()

    # the parsed conference state
    @property
    def conference(self):
        return self.view.users

    @property
    def subject(self):
        return self.view.subject

    @property
    def version(self):
        return self.view.version

    def nickname_of(self, entity):
        u = self.view.users.get(entity)
        return u["display"] if u else None

    def _notify_changed(self):
        self._changed.set()
        self._changed = asyncio.Event()

    def dialog_headers(self, method):
        hdrs = [("From", f"<{self.local_uri}>;tag={self.local_tag}"),
                ("To", f"<{self.remote_uri}>" + (f";tag={self.remote_tag}" if self.remote_tag else "")),
                ("Call-ID", self.call_id), ("CSeq", f"{self.local_cseq} {method}"), ("Max-Forwards", "70")]
        return hdrs + [("Route", r) for r in self.route_set]

    def dialog_dest(self):
        for uri in ([addr_uri(self.route_set[0])] if self.route_set else []) + [self.remote_target]:
            hp = uri_hostport(uri) if uri else None
            if hp and _is_ip(hp[0]):
                return hp
        return self.next_hop

    async def _send(self, expires, extra_headers=(), timeout=None):
        self.local_cseq += 1
        ruri = self.remote_target if self.remote_tag and self.remote_target else self.uri
        hdrs = self.dialog_headers("SUBSCRIBE") + [
            ("Contact", self.ua.contact_value), ("Event", self.event), ("Expires", str(expires))]
        if self.accept:
            hdrs.append(("Accept", self.accept))
        req = self.ua._request("SUBSCRIBE", ruri, hdrs + list(extra_headers))
        dest = self.dialog_dest() if self.remote_tag else self.next_hop
        resp = await self.ua._client_transaction(req, dest, timeout)
        if resp is None:
            if self.state == "init":
                self.state = "failed"
            return 408
        self.responses.append(resp)
        if 200 <= resp.status < 300:
            if self.remote_tag is None:
                self.remote_tag = tag_of(resp.get("to"))
            contact = resp.get_all("contact")
            if contact:
                self.remote_target = addr_uri(contact[0])
            elif self.remote_target is None:
                self.violations.append(f"{resp.status} to SUBSCRIBE without Contact")
            if not self.route_set:
                self.route_set = list(reversed(resp.get_all("record-route")))
            exp = resp.get("expires")
            if exp is None or not exp.isdigit():
                self.violations.append(f"{resp.status} to SUBSCRIBE with Expires {exp!r} (RFC 6665 3.1.1)")
            else:
                self.expires = int(exp)
                if int(exp) > expires:
                    self.violations.append(f"Expires {exp} granted, above the {expires} asked")
            if self.state == "init":
                self.state = "pending"
        elif self.state == "init":
            self.state = "failed"
        self._notify_changed()
        return resp.status

    def _on_notify(self, req):
        """Answers a NOTIFY of this dialog 200 and folds it in (RFC 6665 4.1.3)."""
        self.notifies.append(req)
        req.conf = None
        if self.remote_cseq is not None and req.cseq[0] <= self.remote_cseq:
            self.violations.append(f"NOTIFY CSeq {req.cseq[0]} not above {self.remote_cseq}")
        self.remote_cseq = req.cseq[0]
        if self.remote_tag is None:
            self.remote_tag = tag_of(req.get("from"))
        contact = req.get_all("contact")
        if contact:
            self.remote_target = addr_uri(contact[0])
        else:
            self.violations.append("NOTIFY without Contact (RFC 6665 4.1.3)")
        ev = (req.get("event") or "").split(";")[0].strip().lower()
        if ev != self.event.split(";")[0].strip().lower():
            self.violations.append(f"NOTIFY Event {req.get('event')!r}, subscribed to {self.event!r}")
        sstate = req.get("subscription-state")
        value = (sstate or "").split(";")[0].strip().lower()
        if value not in ("active", "pending", "terminated"):
            self.violations.append(f"NOTIFY Subscription-State {sstate!r}")
        elif value == "terminated":
            self.state = "terminated"
            self.terminated_reason = header_param(sstate, "reason")
        elif self.state != "terminated":
            self.state = value
        self.ua._respond(req, 200, to_tag=None)
        if req.body:
            ctype = (req.get("content-type") or "").split(";")[0].strip().lower()
            if self.accept and ctype not in [a.strip().split(";")[0].lower() for a in self.accept.split(",")]:
                self.violations.append(f"NOTIFY body of type {ctype!r}, Accept was {self.accept!r}")
            elif ctype == CONF_INFO_TYPE:
                try:
                    req.conf = parse_conference_info(req.body)
                except ProtocolError as e:
                    self.violations.append(f"NOTIFY CSeq {req.cseq[0]}: {e}")
                else:
                    self.violations += [f"NOTIFY CSeq {req.cseq[0]}: {p}" for p in self.view.apply(req.conf)]
        elif value in ("active", "pending") and self.event.split(";")[0].strip().lower() == "conference" \
                and self.view.version is None:
            self.violations.append("first conference NOTIFY without a body (RFC 4575: full state)")
        self._notify_changed()

    async def _wait(self, find, timeout, what):
        deadline = time.monotonic() + timeout
        while True:
            got = find()
            if got is not None:
                return got
            left = deadline - time.monotonic()
            if left <= 0:
                raise ProtocolError(f"{what} within {timeout}s; NOTIFYs: {len(self.notifies)}, "
                                    f"state {self.state}, conference {self.view.users}, "
                                    f"violations {self.violations}")
            try:
                await asyncio.wait_for(self._changed.wait(), left)
            except asyncio.TimeoutError:
                pass

    async def wait_notify(self, pred=None, timeout=5.0):
        """The first NOTIFY matching pred(notify) not returned before; notify.conf holds its
        parsed conference-info (or None)."""
        def find():
            for n in self.notifies:
                if id(n) not in self._taken and (pred is None or pred(n)):
                    self._taken.add(id(n))
                    return n
            return None
        return await self._wait(find, timeout, "no matching NOTIFY")

    async def wait_state(self, pred, timeout=5.0):
        """Waits until pred(self) holds (e.g. lambda s: uri in s.conference)."""
        return await self._wait(lambda: self if pred(self) else None, timeout, "state not reached")

    async def wait_terminated(self, timeout=5.0):
        return await self._wait(lambda: self if self.state == "terminated" else None, timeout,
                                "subscription not terminated")

    async def refresh(self, expires=600, timeout=None):
        return await self._send(expires, (), timeout)

    async def unsubscribe(self, timeout=None):
        """SUBSCRIBE with Expires: 0 in the dialog; returns its status (the final NOTIFY, with
        Subscription-State: terminated, follows: wait_terminated())."""
        return await self._send(0, (), timeout)


# =============================================================================== the UA

class _SipProtocol(asyncio.DatagramProtocol):
    def __init__(self, ua):
        self.ua = ua

    def datagram_received(self, data, addr):
        self.ua._datagram(data, addr)


class MsrpUA:
    """A SIP (UDP) + MSRP (TCP) user agent on 127.0.0.1."""

    def __init__(self, name="bob", local_port=None, setup="actpass", domain="sip.example",
                 answer_setup="active", accept_types=DEFAULT_ACCEPT_TYPES, send_empty_send=True,
                 msrp_status=200, t1=T1, wrapped_types=DEFAULT_WRAPPED_TYPES, tls=None,
                 sip_tls=None):
        if setup not in ("actpass", "active", "passive"):
            raise ValueError(setup)
        self.name, self.domain = name, domain
        self.port = local_port or 0
        self.setup = setup                  # in our offers; in answers when not actpass
        self.answer_setup = answer_setup    # our answer to an actpass offer
        self.accept_types = accept_types
        self.wrapped_types = wrapped_types  # our a=accept-wrapped-types when we accept message/cpim
        self.extra_media_attrs = []         # more a= lines of our m=message (e.g. "chatroom:nickname")
        self.contact_params = ""            # after the <> of our Contact (e.g. ";isfocus", RFC 4579)
        self.subscriptions = []             # Subscription (RFC 6665, as subscriber)
        self.refers = []                    # out-of-dialog REFERs received (invitations)
        self.on_refer = 202                 # the status they are answered with
        self.send_empty_send = send_empty_send
        self.tls = tls              # MsrpTls: msrps offers, and TLS offers answered; None: plain only
        self.sip_tls = sip_tls      # MsrpTls: SIP over TLS; None: SIP over UDP
        self._sip_conns = {}        # SIP over TLS: (ip, port) -> StreamWriter
        self._sip_locks = {}
        self._sip_server = None
        self.msrp_status = msrp_status
        self.t1 = t1
        self.on_invite = None       # None (200) | int | Answer | callable(invite) -> those (may be async)
        self.transport = None
        self.calls = []
        self.incoming = asyncio.Queue()
        self.sip_log = []           # every SIP message sent and received, in order
        self.sip_errors = []        # malformed SIP received
        self._client_tx = {}        # (branch, method) -> [future, request]
        self._server_tx = {}        # (branch, sent-by, method) -> last response (SipMessage, addr)
        self._tasks = set()

    @property
    def uri(self):
        return f"sip:{self.name}@{self.domain}"

    @property
    def contact(self):
        return f"sip:{self.name}@127.0.0.1:{self.port}" + (";transport=tls" if self.sip_tls else "")

    @property
    def contact_value(self):
        return f"<{self.contact}>{self.contact_params}"

    @property
    def protocol_errors(self):
        out = list(self.sip_errors)
        for c in self.calls:
            out += [f"call {c.call_id}: {v}" for v in c.violations]
        for sub in self.subscriptions:
            out += [f"subscription {sub.call_id}: {v}" for v in sub.violations]
        return out

    def check_clean(self):
        errs = self.protocol_errors
        if errs:
            raise ProtocolError(f"{self.name}: protocol errors:\n  " + "\n  ".join(errs))

    async def start(self):
        if self.sip_tls:
            self._sip_server = await asyncio.start_server(
                self._sip_accepted, "127.0.0.1", self.port, ssl=self.sip_tls.server_context())
            self.port = self._sip_server.sockets[0].getsockname()[1]
            return self
        loop = asyncio.get_running_loop()
        self.transport, _ = await loop.create_datagram_endpoint(
            lambda: _SipProtocol(self), local_addr=("127.0.0.1", self.port))
        self.port = self.transport.get_extra_info("sockname")[1]
        return self

    async def stop(self):
        for c in self.calls:
            if c.msrp:
                await c.msrp.close()
        for t in list(self._tasks):
            t.cancel()
        for t in list(self._tasks):
            try:
                await t
            except BaseException:  # noqa: BLE001
                pass
        if self.transport:
            self.transport.close()
            self.transport = None
        if self._sip_server:
            self._sip_server.close()
            self._sip_server = None
        for w in list(self._sip_conns.values()):
            w.close()
        self._sip_conns.clear()

    def _spawn(self, coro):
        t = asyncio.ensure_future(coro)
        self._tasks.add(t)
        t.add_done_callback(self._task_done)
        return t

    def _task_done(self, t):
        self._tasks.discard(t)
        if not t.cancelled() and t.exception() is not None:
            self.sip_errors.append(f"internal error in the test UA: {t.exception()!r}")

    # --------------------------------------------------------- sending
    def _send(self, msg, addr):
        msg.direction = "out"
        msg.dest = addr
        self.sip_log.append(msg)
        if self.sip_tls:
            self._spawn(self._sip_tls_send(msg.encode(), tuple(addr)))
        elif self.transport:
            self.transport.sendto(msg.encode(), addr)

    # --------------------------------------------------------- SIP over TLS
    async def _sip_accepted(self, reader, writer):
        addr = tuple(writer.get_extra_info("peername")[:2])
        self._sip_conns[addr] = writer
        await self._sip_read_loop(reader, writer, addr)

    async def _sip_read_loop(self, reader, writer, addr):
        try:
            while True:
                self._datagram(await read_stream_message(reader), addr)
        except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError):
            pass
        except ProtocolError as e:
            self.sip_errors.append(f"SIP over TLS from {addr}: {e}")
        finally:
            if self._sip_conns.get(addr) is writer:
                del self._sip_conns[addr]
            writer.close()

    async def _sip_tls_send(self, data, addr):
        """Over the connection with addr (accepted from it, or opened to it), opening one when
        there is none; one lock per address keeps the order of what is sent."""
        async with self._sip_locks.setdefault(addr, asyncio.Lock()):
            w = self._sip_conns.get(addr)
            if w is None or w.is_closing():
                try:
                    r, w = await asyncio.open_connection(addr[0], addr[1],
                                                         ssl=self.sip_tls.client_context())
                except (OSError, ssl.SSLError) as e:
                    self.sip_errors.append(f"SIP over TLS to {addr}: cannot connect: {e}")
                    return
                self._sip_conns[addr] = w
                self._spawn(self._sip_read_loop(r, w, addr))
            w.write(data)
            try:
                await w.drain()
            except (ConnectionError, ssl.SSLError) as e:
                self.sip_errors.append(f"SIP over TLS to {addr}: {e}")

    def _request(self, method, ruri, headers, body=b"", branch=None):
        via = (f"SIP/2.0/{'TLS' if self.sip_tls else 'UDP'} 127.0.0.1:{self.port};"
               f"branch=z9hG4bK{branch or _rand()};rport")
        return SipMessage(f"{method} {ruri} SIP/2.0",
                          [("Via", via)] + list(headers) + [("User-Agent", f"msrp_ua/{self.name}")], body)

    async def _client_transaction(self, req, dest, timeout=None, call=None, new_branch=True):
        """Sends req with RFC 3261 17.1 retransmissions; returns the final response (None on timeout).

        INVITE: provisional responses go to call.responses; the ACK of a non-2xx is sent here."""
        method = req.method
        branch = header_param(req.get_all("via")[0], "branch")
        key = (branch, method)
        fut = asyncio.get_running_loop().create_future()
        state = {"provisional": False, "req": req, "call": call, "fut": fut, "dest": dest}
        self._client_tx[key] = state
        self._send(req, dest)
        interval = self.t1
        deadline = time.monotonic() + (timeout or 64 * self.t1)
        try:
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                try:
                    return await asyncio.wait_for(asyncio.shield(fut), min(interval, left))
                except asyncio.TimeoutError:
                    pass
                if time.monotonic() >= deadline:
                    return None
                if self.sip_tls:
                    continue        # a reliable transport: no retransmissions (RFC 3261 17.1)
                if method == "INVITE":
                    if not state["provisional"]:
                        self._send(req, dest)
                    interval *= 2
                else:
                    self._send(req, dest)
                    interval = T2 if state["provisional"] else min(interval * 2, T2)
        finally:
            if method != "INVITE":
                self._client_tx.pop(key, None)
            else:
                # keep it for 32s to absorb retransmitted finals (and re-ACK them)
                loop = asyncio.get_running_loop()
                loop.call_later(64 * self.t1, self._client_tx.pop, key, None)

    def _ack_non2xx(self, inv, resp, dest):
        hdrs = [("Via", inv.get_all("via")[0]), ("From", inv.get("from")), ("To", resp.get("to")),
                ("Call-ID", inv.call_id), ("CSeq", f"{inv.cseq[0]} ACK"), ("Max-Forwards", "70")]
        hdrs += [("Route", r) for r in inv.get_all("route")]
        self._send(SipMessage(f"ACK {inv.uri} SIP/2.0", hdrs), dest)

    def _send_ack_2xx(self, call, resp):
        cseq = resp.cseq[0]
        ack = self._request("ACK", call.remote_target, call.dialog_headers("ACK", cseq))
        call._ack = ack
        self._send(ack, call.dialog_dest())

    def _respond(self, req, status, reason=None, headers=(), body=b"", to_tag=None, addr=None):
        hdrs = [("Via", v) for v in req.get_all("via")]
        to = req.get("to")
        if to_tag and tag_of(to) is None:
            to += f";tag={to_tag}"
        hdrs += [("From", req.get("from")), ("To", to), ("Call-ID", req.call_id), ("CSeq", req.get("cseq"))]
        hdrs += list(headers)
        resp = SipMessage(f"SIP/2.0 {status} {reason or REASONS.get(status, 'Whatever')}", hdrs, body)
        dest = addr or self._response_dest(req)
        self._send(resp, dest)
        if status >= 100 and req.method != "ACK":
            self._server_tx[self._stx_key(req)] = (resp, dest)
        return resp

    def _response_dest(self, req):
        if self.sip_tls:
            return req.source       # the connection the request came on (RFC 3261 18.2.2)
        via = req.get_all("via")[0]
        src_ip, src_port = req.source
        m = re.match(r"SIP/2\.0/UDP\s+([^;:\s]+)(?::(\d+))?", via, re.I)
        port = int(m.group(2) or 5060) if m else src_port
        if header_param(via, "rport") is not None:
            port = src_port
        return (src_ip, port)

    @staticmethod
    def _stx_key(req):
        via = req.get_all("via")[0]
        method = "INVITE" if req.method == "ACK" else req.method
        return (header_param(via, "branch"), via.split(";")[0].strip(), method)

    # --------------------------------------------------------- SDP
    def _sdp(self, session, setup):
        sess = int(time.time())
        proto = "TCP/TLS/MSRP" if session.secure else "TCP/MSRP"
        lines = ["v=0", f"o={self.name} {sess} {sess} IN IP4 127.0.0.1", "s=-", "c=IN IP4 127.0.0.1",
                 "t=0 0", f"m=message {session.local_port} {proto} *",
                 f"a=accept-types:{self.accept_types}"]
        if "message/cpim" in self.accept_types and self.wrapped_types:
            lines.append(f"a=accept-wrapped-types:{self.wrapped_types}")
        lines += [f"a=path:{session.local_path}", f"a=setup:{setup}"]
        fp = self.tls.sdp_fingerprint() if session.secure else None
        if fp:
            lines.append(f"a=fingerprint:{fp}")
        lines += [f"a={a}" for a in self.extra_media_attrs]
        return "\r\n".join(lines) + "\r\n"

    async def _new_session(self, call):
        s = MsrpSession(self, call)
        await s.start_listening()
        return s

    # --------------------------------------------------------- UAC
    async def invite(self, target_uri, next_hop, from_uri=None, to_uri=None, extra_headers=(),
                     setup=None, timeout=None, wait=True, body=None, secure=None):
        """Sends an INVITE with an MSRP offer to next_hop (host, port), Request-URI target_uri.

        Returns the Call once the final response arrived (wait=True) or at once (wait=False:
        then `await call.final.wait()`).  After a 2xx the ACK is sent and the MSRP connection
        is being set up (active: connect + bodyless SEND; passive: wait): `await call.wait_connected()`.
        secure: offer msrps (TCP/TLS/MSRP); default: when the UA has tls."""
        setup = setup or self.setup
        call = Call(self, True, f"{_rand()}@127.0.0.1", from_uri or self.uri, to_uri or target_uri, next_hop)
        call.secure = self.tls is not None if secure is None else secure
        self.calls.append(call)
        call.msrp = await self._new_session(call)
        call.local_sdp = body if body is not None else self._sdp(call.msrp, setup)
        hdrs = call.dialog_headers("INVITE") + [("Contact", self.contact_value),
                                                ("Content-Type", "application/sdp")] + list(extra_headers)
        req = self._request("INVITE", target_uri, hdrs, call.local_sdp.encode())
        call.invite = req
        call.state = "calling"

        async def run():
            resp = await self._client_transaction(req, next_hop, timeout, call=call)
            if resp is None:
                call.status, call.reason = 408, "timeout (no final response)"
                call.state = "failed"
                await call.msrp.close()
            elif resp.status >= 300:
                call.status, call.reason = resp.status, resp.reason
                call.state = "failed"
                await call.msrp.close()
            else:
                await self._uac_2xx(call, resp, setup)
            call.final.set()

        t = self._spawn(run())
        if wait:
            await t
        return call

    async def _uac_2xx(self, call, resp, setup):
        call.status, call.reason = resp.status, resp.reason
        call.remote_tag = tag_of(resp.get("to"))
        contact = resp.get_all("contact")
        if not contact:
            call.problems.append("2xx to INVITE without Contact")
            call.remote_target = call.invite.uri
        else:
            call.remote_target = addr_uri(contact[0])
        call.route_set = list(reversed(resp.get_all("record-route")))
        call.state = "confirmed"
        self._send_ack_2xx(call, resp)
        call.confirmed.set()
        if (resp.get("content-type") or "").split(";")[0].strip().lower() != "application/sdp" or not resp.body:
            call.problems.append(f"2xx without an SDP answer (Content-Type {resp.get('content-type')!r})")
            return
        sdp = Sdp(resp.body.decode("utf-8", "replace"))
        call.remote_sdp = sdp
        media, problems = msrp_offer_answer_check(sdp, tls_ok=call.secure)
        call.problems += problems
        if media is None or not sdp.attr(media, "path"):
            return
        if call.secure and media["m"].split(" ")[2:3] != ["TCP/TLS/MSRP"]:
            call.problems.append(f"msrps offered, answered m={media['m']}")
            return
        their = sdp.attr(media, "setup")
        if their is None:
            role = "active"     # RFC 6135 section 5: an answer without a=setup keeps RFC 4975's model
        elif their == "actpass":
            call.problems.append("a=setup:actpass in an answer")
            return
        else:
            role = "passive" if their == "active" else "active"
            if setup != "actpass" and role != setup:
                call.problems.append(f"offered a=setup:{setup}, answer a=setup:{their}")
                return
        await call.msrp.activate(role, sdp.attr(media, "path"), sdp_fingerprints(sdp, media))

    # --------------------------------------------------------- UAS
    async def wait_call(self, timeout=10.0, established=True):
        """The next incoming call (after its final response; with established, 2xx calls also
        after the ACK and the MSRP connection)."""
        try:
            call = await asyncio.wait_for(self.incoming.get(), timeout)
        except asyncio.TimeoutError:
            raise ProtocolError(f"{self.name}: no INVITE within {timeout}s")
        if established and call.status and 200 <= call.status < 300:
            left = max(timeout, 5.0)
            try:
                await asyncio.wait_for(call.confirmed.wait(), left)
            except asyncio.TimeoutError:
                raise ProtocolError("no ACK for our 2xx")
            if call.msrp and call.msrp.role:
                await call.msrp.wait_connected(left)
        return call

    async def _decide(self, req):
        pol = self.on_invite
        if callable(pol):
            pol = pol(req)
            if inspect.isawaitable(pol):
                pol = await pol
        if pol is None:
            return Answer(200)
        if isinstance(pol, int):
            return Answer(pol)
        if isinstance(pol, tuple):
            return Answer(*pol)
        return pol

    async def _uas_invite(self, req):
        call = Call(self, False, req.call_id, addr_uri(req.get("to")), addr_uri(req.get("from")), req.source)
        call.remote_tag = tag_of(req.get("from"))
        call.remote_cseq = req.cseq[0]
        contact = req.get_all("contact")
        call.remote_target = addr_uri(contact[0]) if contact else None
        if not contact:
            call.problems.append("INVITE without Contact")
        call.route_set = req.get_all("record-route")
        call.invite = req
        call.received.append(req)
        call.state = "early"
        self.calls.append(call)
        self._respond(req, 100)
        answer = await self._decide(req)
        if answer.delay:
            self._respond(req, 180, to_tag=call.local_tag)
            await asyncio.sleep(answer.delay)
            if call.cancelled:
                return
        status = answer.status
        if status < 300:
            sdp_problem = None
            if (req.get("content-type") or "").split(";")[0].strip().lower() != "application/sdp":
                sdp_problem = "INVITE without an SDP offer"
            else:
                sdp = Sdp(req.body.decode("utf-8", "replace"))
                call.remote_sdp = sdp
                media, problems = msrp_offer_answer_check(sdp, tls_ok=self.tls is not None)
                call.problems += problems
                call.secure = media is not None and media["m"].split(" ")[2:3] == ["TCP/TLS/MSRP"]
                if media is None or problems:
                    sdp_problem = "; ".join(problems) or "no MSRP stream"
                else:
                    theirs = sdp.attr(media, "setup")
                    if theirs is None:
                        ours = "passive"   # RFC 4975: the offerer connects
                    elif theirs == "actpass":
                        ours = answer.setup or (self.setup if self.setup != "actpass" else self.answer_setup)
                    elif theirs == "active":
                        ours = "passive"
                    else:
                        ours = "active"
                    want = answer.setup or self.setup
                    if want != "actpass" and want != ours:
                        sdp_problem = f"offer a=setup:{theirs} incompatible with our {want}"
            if sdp_problem:
                call.problems.append(sdp_problem)
                status = 488
        if status >= 300:
            call.status = status
            call.state = "failed"
            self._respond(req, status, answer.reason, headers=answer.headers, to_tag=call.local_tag)
            self._spawn(self._retransmit_final(call, req))
            call.final.set()
            await self.incoming.put(call)
            return
        call.msrp = await self._new_session(call)
        call.local_sdp = self._sdp(call.msrp, ours)
        call.status = status
        call.state = "confirmed-pending-ack"
        call._uas_final = self._respond(
            req, status, answer.reason, to_tag=call.local_tag,
            headers=[("Contact", self.contact_value), ("Content-Type", "application/sdp")] + list(answer.headers),
            body=call.local_sdp.encode())
        call.final.set()
        self._spawn(self._retransmit_final(call, req))
        await call.msrp.activate(ours, sdp.attr(media, "path"), sdp_fingerprints(sdp, media))
        await self.incoming.put(call)

    async def _retransmit_final(self, call, req):
        """RFC 3261 13.3.1.4 / 17.2.1: the final response is retransmitted until the ACK."""
        interval = self.t1
        deadline = time.monotonic() + 64 * self.t1
        key = self._stx_key(req)
        acked = call.acks.setdefault(req.cseq[0], asyncio.Event())
        while not acked.is_set() and time.monotonic() < deadline:
            try:
                await asyncio.wait_for(acked.wait(), interval)
                return
            except asyncio.TimeoutError:
                pass
            resp, dest = self._server_tx.get(key, (None, None))
            if resp is not None and not acked.is_set():
                self._send(resp, dest)
            interval = min(interval * 2, T2)
        if not acked.is_set():
            call.problems.append(f"no ACK for our final response to INVITE CSeq {req.cseq[0]}")

    def _find_call(self, msg, incoming_request):
        local_tag = tag_of(msg.get("to") if incoming_request else msg.get("from"))
        for c in self.calls:
            if c.call_id == msg.call_id and c.local_tag == local_tag:
                return c
        return None

    # --------------------------------------------------------- receiving
    def _datagram(self, data, addr):
        if data.strip() == b"":
            return      # keep-alive
        try:
            msg = parse_sip(data, addr)
        except ProtocolError as e:
            self.sip_errors.append(f"from {addr}: {e}: {data[:300]!r}")
            return
        self.sip_log.append(msg)
        if msg.is_request:
            self._on_request(msg)
        else:
            self._on_response(msg)

    def _on_response(self, resp):
        branch = header_param(resp.get_all("via")[0], "branch")
        method = resp.cseq[1]
        st = self._client_tx.get((branch, method))
        if st is None:
            self.sip_errors.append(f"response {resp.start!r} matches no transaction")
            return
        call = st["call"]
        if call is not None:
            call.received.append(resp)
            if method == "INVITE" and st["req"] is call.invite:
                call.responses.append(resp)
        if resp.status < 200:
            st["provisional"] = True
            if call is not None and method == "INVITE" and call.state == "calling" and resp.status > 100:
                call.state = "early"
            return
        if method == "INVITE":
            if resp.status >= 300:
                self._ack_non2xx(st["req"], resp, st["dest"])
            elif st["fut"].done() and call is not None and call._ack is not None:
                # retransmitted 2xx: the ACK again (RFC 3261 13.2.2.4)
                self._send(call._ack, call.dialog_dest())
        if not st["fut"].done():
            st["fut"].set_result(resp)

    def _on_request(self, req):
        key = self._stx_key(req)
        if req.method == "ACK":
            call = self._find_call(req, True)
            if call is None:
                if key not in self._server_tx:
                    self.sip_errors.append(f"ACK for no dialog: {req.start!r}")
                return
            call.received.append(req)
            call.acks.setdefault(req.cseq[0], asyncio.Event()).set()
            if call.state == "confirmed-pending-ack":
                call.state = "confirmed"
            call.confirmed.set()
            return
        if key in self._server_tx:
            resp, dest = self._server_tx[key]      # retransmitted request: the same response
            self._send(resp, dest)
            return
        if req.method == "INVITE" and tag_of(req.get("to")) is None:
            self._spawn(self._uas_invite(req))
            return
        if req.method == "CANCEL":
            self._on_cancel(req)
            return
        if self._other_request(req):
            return
        call = self._find_call(req, True)
        if call is None:
            if req.method == "OPTIONS":
                self._respond(req, 200, headers=[("Allow", "INVITE, ACK, BYE, CANCEL, OPTIONS")])
            else:
                self._respond(req, 481)
            return
        call.received.append(req)
        if call.remote_cseq is not None and req.cseq[0] <= call.remote_cseq:
            call.problems.append(f"{req.method} CSeq {req.cseq[0]} not above {call.remote_cseq}")
            self._respond(req, 500, "CSeq out of order")
            return
        call.remote_cseq = req.cseq[0]
        if req.method == "BYE":
            call.bye_received = req
            self._respond(req, 200)
            self._spawn(call._end())
        elif req.method == "INVITE":
            # re-INVITE: the same SDP again (RFC 3264 8: unchanged, same version)
            self._respond(req, 200, headers=[("Contact", self.contact_value), ("Content-Type", "application/sdp")],
                          body=(call.local_sdp or "").encode(), to_tag=call.local_tag)
            self._spawn(self._retransmit_final(call, req))
        elif req.method == "OPTIONS":
            self._respond(req, 200)
        else:
            self._respond(req, 501)

    def _other_request(self, req):
        """Requests outside the INVITE dialogs: NOTIFYs of our subscriptions.  A subclass (the
        chat room focus) takes SUBSCRIBE here too.  True when handled."""
        if req.method == "NOTIFY":
            local_tag = tag_of(req.get("to"))
            for sub in self.subscriptions:
                if sub.call_id == req.call_id and sub.local_tag == local_tag:
                    sub._on_notify(req)
                    return True
        if req.method == "REFER" and tag_of(req.get("to")) is None:
            # RFC 3515 out of any dialog, e.g. an invitation to a chat room (RFC 4579 5.5):
            # recorded (ua.refers) and answered ua.on_refer; with Refer-Sub: false (RFC 4488)
            # no implicit subscription follows
            self.refers.append(req)
            if not req.get("refer-to"):
                self.sip_errors.append(f"REFER without Refer-To: {req.start!r}")
            self._respond(req, self.on_refer)
            return True
        return False

    # --------------------------------------------------------- subscriptions (RFC 6665)
    async def subscribe(self, uri, event="conference", next_hop=None, expires=600,
                        accept=CONF_INFO_TYPE, from_uri=None, extra_headers=(), timeout=None):
        """Sends SUBSCRIBE for event to uri via next_hop (host, port); returns the Subscription
        once the final response came (sub.status; 408 when none).  Every NOTIFY of the dialog
        is answered 200 and kept in sub.notifies; conference-info bodies are folded into
        sub.conference / sub.subject (RFC 4575's rules for full and partial state)."""
        sub = Subscription(self, uri, event, next_hop, from_uri or self.uri, accept)
        self.subscriptions.append(sub)
        sub.status = await sub._send(expires, extra_headers, timeout)
        return sub

    def _on_cancel(self, req):
        for c in self.calls:
            if (not c.outgoing and c.call_id == req.call_id and c.invite is not None
                    and header_param(c.invite.get_all("via")[0], "branch") == header_param(req.get_all("via")[0], "branch")):
                c.received.append(req)
                self._respond(req, 200)
                if not c.final.is_set():
                    c.cancelled = True
                    c.status = 487
                    c.state = "failed"
                    self._respond(c.invite, 487, to_tag=c.local_tag)
                    self._spawn(self._retransmit_final(c, c.invite))
                    c.final.set()
                    self.incoming.put_nowait(c)
                return
        self._respond(req, 481)
