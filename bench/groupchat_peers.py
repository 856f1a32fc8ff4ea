"""groupchat_peers.py - the lean SIP + MSRP peers of bench/groupchat.py, one asyncio process for
a thousand sessions: what they say is the least RFC 3261 / 4975 / 7701 / 4575 lets a peer say,
and what they read is counted, not parsed (tests/e2e/msrp_ua.py and conf_focus.py are the peers
that check the gateway's protocol; these only have to keep up with it).

  SipUsers   direction muc: SIP users joining rooms of an XMPP MUC through the gateway, their
             conference focus.  One UDP socket for all of them (From: sip:uNNNN@sip.example),
             INVITE with an MSRP chat offer (a=setup:active: we connect to the gateway, which
             accepts connections without a rate limit), ACK, the MSRP connection bound with a
             bodyless SEND; then every SEND is answered 200 and its message number counted.
  Focus      direction focus: the SIP network's conference focus and MSRP switch.  It answers the
             gateway's INVITEs (a=setup:active again: the focus connects), its NICKNAMEs and its
             conference SUBSCRIBEs (RFC 4575: a full document first and after each refresh,
             then partial documents with the users that joined since, gathered per subscription
             and sent at most once per notify interval, as RFC 6665 lets a notifier rate-limit;
             one NOTIFY in flight per subscription, and at most window_bytes of documents
             unanswered in all); post() relays one participant's message to every leg as
             message/cpim.  SIP over TCP (a full conference-info document of a large room
             does not fit a UDP datagram) or UDP (then without retransmissions).

Message numbers: every message body holds the token b"bench-m" + six digits; the receivers
count tokens per message number, so that a sender can keep a window of messages in flight.
Everything binds 127.0.0.1 and addresses peers by number.
"""

import asyncio
import collections
import re
import secrets
import time

TOKEN = b"bench-m"
TOKEN_LEN = len(TOKEN) + 6
CONF_INFO_TYPE = "application/conference-info+xml"
CONF_NS = "urn:ietf:params:xml:ns:conference-info"
UNBOUND_MAX = 8     # the gateway takes 16 accepted, not yet bound MSRP connections per address


def rand(n=8):
    return secrets.token_hex(n)


def token(i):
    return TOKEN + b"%06d" % i


# ------------------------------------------------------------------------------- SIP messages

def parse_sip(data):
    """(start line, {lower-case name: [values]}, body) of one SIP message."""
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("utf-8", "replace").split("\r\n")
    hdrs = {}
    compact = {"i": "call-id", "f": "from", "t": "to", "v": "via", "m": "contact",
               "l": "content-length", "c": "content-type", "o": "event"}
    for line in lines[1:]:
        if not line:
            continue
        if line[0] in " \t" and hdrs:
            continue            # folded lines: none of ours needs them
        name, _, value = line.partition(":")
        name = name.strip().lower()
        name = compact.get(name, name)
        hdrs.setdefault(name, []).append(value.strip())
    return lines[0], hdrs, body


def h1(hdrs, name, default=""):
    v = hdrs.get(name)
    return v[0] if v else default


def sip_bytes(start, headers, body=b""):
    if isinstance(body, str):
        body = body.encode()
    out = [start] + [f"{n}: {v}" for n, v in headers] + [f"Content-Length: {len(body)}", "", ""]
    return "\r\n".join(out).encode() + body


def response(req_hdrs, status, reason, extra=(), body=b"", to_tag=None):
    hdrs = [("Via", v) for v in req_hdrs.get("via", [])]
    to = h1(req_hdrs, "to")
    if to_tag and ";tag=" not in to:
        to += f";tag={to_tag}"
    hdrs += [("From", h1(req_hdrs, "from")), ("To", to), ("Call-ID", h1(req_hdrs, "call-id")),
             ("CSeq", h1(req_hdrs, "cseq"))]
    hdrs += list(extra)
    return sip_bytes(f"SIP/2.0 {status} {reason}", hdrs, body)


def angle_uri(value):
    m = re.search(r"<([^>]*)>", value)
    return m.group(1) if m else value.split(";")[0].strip()


def sdp_path(body):
    m = re.search(rb"^a=path:(.+?)\s*$", body, re.M)
    return m.group(1).decode() if m else None


def msrp_sdp(path, port, setup, chatroom=None):
    lines = ["v=0", f"o=- {int(time.time())} 1 IN IP4 127.0.0.1", "s=-", "c=IN IP4 127.0.0.1",
             "t=0 0", f"m=message {port} TCP/MSRP *",
             "a=accept-types:message/cpim text/plain",
             "a=accept-wrapped-types:text/plain", f"a=path:{path}", f"a=setup:{setup}"]
    if chatroom:
        lines.append(f"a=chatroom:{chatroom}")
    return ("\r\n".join(lines) + "\r\n").encode()


class SipStream(asyncio.Protocol):
    """SIP over a TCP connection: messages framed by Content-Length (RFC 3261 18.3)."""

    def __init__(self, on_message):
        self.on_message = on_message
        self.buf = b""
        self.transport = None

    on_made = None
    on_lost = None

    def connection_made(self, transport):
        self.transport = transport
        if self.on_made:
            self.on_made(transport)

    def connection_lost(self, exc):
        if self.on_lost:
            self.on_lost(self, exc)

    def data_received(self, data):
        self.buf += data
        while True:
            self.buf = self.buf.lstrip(b"\r\n")     # keep-alive CRLFs (RFC 5626)
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            m = re.search(rb"^(?:content-length|l)[ \t]*:[ \t]*(\d+)", self.buf[:end], re.M | re.I)
            n = int(m.group(1)) if m else 0
            if len(self.buf) < end + 4 + n:
                return
            msg, self.buf = self.buf[:end + 4 + n], self.buf[end + 4 + n:]
            self.on_message(msg, self.send)

    def send(self, data):
        if self.transport and not self.transport.is_closing():
            self.transport.write(data)
        elif self.on_dead_send:
            self.on_dead_send(data)

    on_dead_send = None


class SipDatagram(asyncio.DatagramProtocol):
    def __init__(self, on_message):
        self.on_message = on_message
        self.transport = None

    def connection_made(self, transport):
        self.transport = transport
        sock = transport.get_extra_info("socket")
        for opt in (7, 8):      # SO_SNDBUF, SO_RCVBUF: bursts of hundreds of datagrams
            try:
                sock.setsockopt(1, opt, 4 << 20)
            except OSError:
                pass

    def datagram_received(self, data, addr):
        self.on_message(data, lambda d, a=addr: self.transport.sendto(d, a))


# ------------------------------------------------------------------------------- MSRP

class MsrpConn(asyncio.Protocol):
    """One MSRP connection: frames are split at their end-line (RFC 4975 section 7.1) and
    handed to on_frame(conn, tid, first line words, header bytes, body bytes)."""

    def __init__(self, on_frame, on_lost=None):
        self.on_frame = on_frame
        self.on_lost = on_lost
        self.buf = b""
        self.transport = None
        self.leg = None
        self.made = asyncio.get_running_loop().create_future()

    def connection_made(self, transport):
        self.transport = transport
        if not self.made.done():
            self.made.set_result(True)

    def connection_lost(self, exc):
        if self.on_lost:
            self.on_lost(self)

    def write(self, data):
        if self.transport and not self.transport.is_closing():
            self.transport.write(data)

    def data_received(self, data):
        buf = self.buf + data if self.buf else data
        pos = 0
        while True:
            eol = buf.find(b"\r\n", pos)
            if eol < 0:
                break
            first = buf[pos:eol].split(b" ", 3)
            if len(first) < 3 or first[0] != b"MSRP":
                self.transport.close()          # not MSRP: nothing sensible follows
                self.buf = b""
                return
            tid = first[1]
            end_marker = b"\r\n-------" + tid
            end = buf.find(end_marker, eol)
            if end < 0 or len(buf) < end + len(end_marker) + 3:
                break
            frame_end = end + len(end_marker) + 3          # flag + CRLF
            blank = buf.find(b"\r\n\r\n", eol, end + 2)
            if blank >= 0 and blank < end:
                headers, body = buf[eol + 2:blank + 2], buf[blank + 4:end]
            else:
                headers, body = buf[eol + 2:end + 2], b""
            self.on_frame(self, tid, first, headers, body)
            pos = frame_end
        self.buf = buf[pos:]


def msrp_header(headers, name):
    m = re.search(rb"^" + name + rb":[ \t]*(.*?)\r$", headers, re.M | re.I)
    return m.group(1) if m else None


def msrp_response(tid, status, to_path, from_path):
    return (b"MSRP " + tid + b" " + str(status).encode() + b" OK\r\nTo-Path: " + to_path +
            b"\r\nFrom-Path: " + from_path + b"\r\n-------" + tid + b"$\r\n")


def msrp_send(tid, to_path, from_path, mid, ctype, body):
    n = len(body)
    head = (b"MSRP " + tid + b" SEND\r\nTo-Path: " + to_path + b"\r\nFrom-Path: " + from_path +
            b"\r\nMessage-ID: " + mid + b"\r\nByte-Range: 1-" + str(n).encode() + b"/" +
            str(n).encode() + b"\r\n")
    if not n:
        return head + b"-------" + tid + b"$\r\n"
    return head + b"Content-Type: " + ctype + b"\r\n\r\n" + body + b"\r\n-------" + tid + b"$\r\n"


class Counter:
    """Copies of each message number received, over all legs."""

    def __init__(self):
        self.per_msg = {}
        self.total = 0
        self.last_time = 0.0
        self.waiters = []

    def add(self, data):
        n = 0
        i = data.find(TOKEN)
        while i >= 0:
            digits = data[i + 7:i + TOKEN_LEN]
            if len(digits) == 6 and digits.isdigit():
                k = int(digits)
                self.per_msg[k] = self.per_msg.get(k, 0) + 1
                n += 1
            i = data.find(TOKEN, i + TOKEN_LEN)
        if n:
            self.total += n
            self.last_time = time.perf_counter()
            if self.waiters:
                self._wake()

    def add_stream(self, tail, data):
        """Tokens in a byte stream: tail is what the previous read left (fewer bytes than a
        token), so only tokens ending in data are new.  Returns the next tail."""
        buf = tail + data if tail else data
        self.add(buf)
        return buf[-(TOKEN_LEN - 1):]

    def _wake(self):
        keep = []
        for pred, fut in self.waiters:
            if fut.done():
                continue
            if pred():
                fut.set_result(self.last_time)
            else:
                keep.append((pred, fut))
        self.waiters = keep

    async def wait(self, pred, timeout, what):
        if pred():
            return self.last_time
        fut = asyncio.get_running_loop().create_future()
        self.waiters.append((pred, fut))
        try:
            return await asyncio.wait_for(fut, timeout)
        except asyncio.TimeoutError:
            raise TimeoutError(f"timed out after {timeout}s waiting for {what} "
                               f"({self.total} copies counted)") from None


# ---------------------------------------------- direction muc: SIP users in an XMPP MUC room

class UserLeg:
    def __init__(self, i, uri, room_uri):
        self.i = i
        self.uri = uri
        self.room_uri = room_uri
        self.call_id = f"{rand()}@bench"
        self.tag = rand(4)
        self.sid = rand(6)
        self.status = None
        self.final = None           # future: the INVITE's final status
        self.bound = None           # future: the bind SEND answered
        self.gw_path = None
        self.our_path = None
        self.conn = None
        self.resp_ok = None         # precomputed response head pieces
        self.received = 0
        self.bye = False
        self.ok = False


class SipUsers:
    """Direction muc's SIP users (see the module docstring)."""

    def __init__(self, gw_sip_port, domain="sip.example"):
        self.gw = ("127.0.0.1", gw_sip_port)
        self.domain = domain
        self.legs = {}              # call-id -> UserLeg
        self.counter = Counter()
        self.statuses = {}          # final INVITE statuses seen
        self.violations = []
        self.unbound = None
        self.port = None
        self.proto = None
        self.first_send = None      # one SEND as received, for the report
        self.byes = 0

    async def start(self):
        loop = asyncio.get_running_loop()
        self.unbound = asyncio.Semaphore(UNBOUND_MAX)
        transport, self.proto = await loop.create_datagram_endpoint(
            lambda: SipDatagram(self._sip), local_addr=("127.0.0.1", 0))
        self.port = transport.get_extra_info("sockname")[1]
        return self

    async def stop(self):
        for leg in self.legs.values():
            if leg.conn and leg.conn.transport:
                leg.conn.transport.close()
        if self.proto and self.proto.transport:
            self.proto.transport.close()

    def _send(self, data):
        self.proto.transport.sendto(data, self.gw)

    def _sip(self, data, reply):
        start, hdrs, body = parse_sip(data)
        leg = self.legs.get(h1(hdrs, "call-id"))
        if start.startswith("SIP/2.0 "):
            if not leg:
                return
            status = int(start.split()[1])
            if status < 200:
                if leg.status is None:
                    leg.status = status
                return
            self._ack(leg, hdrs, new_branch=status < 300)
            if leg.final.done():
                return          # a retransmitted final response: ACKed again
            if status < 300:
                leg.gw_path = sdp_path(body)
            self.statuses[status] = self.statuses.get(status, 0) + 1
            leg.final.set_result(status)
            return
        method = start.split(" ", 1)[0]
        if method == "ACK":
            return
        if method == "BYE" and leg:
            leg.bye = True
            self.byes += 1
        reply(response(hdrs, 200 if leg or method == "OPTIONS" else 481,
                       "OK" if leg or method == "OPTIONS" else "No Such Call"))

    def _ack(self, leg, hdrs, new_branch):
        cseq = h1(hdrs, "cseq").split()[0]
        via = f"SIP/2.0/UDP 127.0.0.1:{self.port};branch=" + \
            (f"z9hG4bK{rand()}" if new_branch else leg.branch)
        target = angle_uri(h1(hdrs, "contact")) if new_branch and h1(hdrs, "contact") else leg.room_uri
        self._send(sip_bytes(f"ACK {target} SIP/2.0", [
            ("Via", via), ("Max-Forwards", "70"), ("From", f"<{leg.uri}>;tag={leg.tag}"),
            ("To", h1(hdrs, "to")), ("Call-ID", leg.call_id), ("CSeq", f"{cseq} ACK")]))

    async def join(self, i, room_uri, user=None, timeout=60.0):
        """INVITE room_uri as sip:uNNNNN@domain, MSRP connected and bound: the leg, with ok
        set once it is; else leg.status says why (408: no answer, 0: MSRP not bound)."""
        uri = f"sip:{user or 'u%05d' % i}@{self.domain}"
        leg = UserLeg(i, uri, room_uri)
        loop = asyncio.get_running_loop()
        leg.final = loop.create_future()
        leg.bound = loop.create_future()
        leg.branch = f"z9hG4bK{rand()}"
        leg.our_path = f"msrp://127.0.0.1:{self.port}/{leg.sid};tcp"
        self.legs[leg.call_id] = leg
        body = msrp_sdp(leg.our_path, self.port, "active")
        invite = sip_bytes(f"INVITE {room_uri} SIP/2.0", [
            ("Via", f"SIP/2.0/UDP 127.0.0.1:{self.port};branch={leg.branch};rport"),
            ("Max-Forwards", "70"), ("From", f"<{uri}>;tag={leg.tag}"), ("To", f"<{room_uri}>"),
            ("Call-ID", leg.call_id), ("CSeq", "1 INVITE"),
            ("Contact", f"<sip:{uri.split(':')[1].split('@')[0]}@127.0.0.1:{self.port}>"),
            ("Content-Type", "application/sdp")], body)
        t_end = time.monotonic() + timeout
        interval = 0.5
        self._send(invite)
        while not leg.final.done():
            try:
                await asyncio.wait_for(asyncio.shield(leg.final), interval)
            except asyncio.TimeoutError:
                if time.monotonic() > t_end:
                    leg.status = 408
                    self.statuses[408] = self.statuses.get(408, 0) + 1
                    return leg
                if leg.status is None:      # no provisional response yet: retransmit
                    self._send(invite)
                    interval = min(interval * 2, 4.0)
        leg.status = leg.final.result()
        if leg.status != 200 or not leg.gw_path:
            return leg
        async with self.unbound:
            loop = asyncio.get_running_loop()
            host, port = re.match(r"msrp://([^:/]+):(\d+)/", leg.gw_path).groups()
            _, conn = await loop.create_connection(
                lambda: MsrpConn(self._frame), host, int(port))
            conn.leg = leg
            leg.conn = conn
            gw, ours = leg.gw_path.encode(), leg.our_path.encode()
            leg.resp_to, leg.resp_from = gw, ours
            leg.resp_tail = b" 200 OK\r\nTo-Path: " + gw + b"\r\nFrom-Path: " + ours + b"\r\n-------"
            conn.write(msrp_send(rand(6).encode(), gw, ours, rand(6).encode(), b"", b""))
            try:
                bound = await asyncio.wait_for(leg.bound, max(t_end - time.monotonic(), 1))
            except asyncio.TimeoutError:
                bound = False
        if not bound:
            leg.status = 0
            return leg
        leg.ok = True
        return leg

    def _frame(self, conn, tid, first, headers, body):
        leg = conn.leg
        word = first[2]
        if word == b"SEND":
            if self.first_send is None and body:
                self.first_send = headers + b"\r\n" + body
            leg.received += 1
            self.counter.add(body)
            if b"Failure-Report: no" not in headers:
                conn.write(b"MSRP " + tid + leg.resp_tail + tid + b"$\r\n")
        elif word.isdigit():
            if not leg.bound.done():
                if word == b"200":
                    leg.bound.set_result(True)
                else:
                    self.violations.append(f"bind of {leg.uri} answered {word.decode()}")
                    leg.bound.set_result(False)
        else:
            conn.write(msrp_response(tid, 200, leg.resp_to, leg.resp_from))


# -------------------------------------- direction focus: XMPP users in a SIP conference room

def _xml(s):
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


class Participant:
    def __init__(self, uri, nick, when):
        self.uri = uri
        self.nick = nick
        self.when = when


class FocusLeg:
    def __init__(self, room, uri, call_id, to_tag):
        self.room = room
        self.uri = uri
        self.call_id = call_id
        self.to_tag = to_tag
        self.sid = rand(6)
        self.gw_path = None
        self.our_path = None
        self.conn = None
        self.nick = None
        self.bound = False
        self.inflight = 0


class Watch:
    """A conference subscription: one NOTIFY in flight at a time (the next waits for the
    answer), telling the users that joined since the last one (room.order[seen:])."""

    def __init__(self, room, hdrs, send, local_tag):
        self.room = room
        self.call_id = h1(hdrs, "call-id")
        self.remote = h1(hdrs, "from")              # with its tag
        self.local = f"<{room.uri}>;tag={local_tag}"
        self.local_tag = local_tag
        self.target = angle_uri(h1(hdrs, "contact")) or angle_uri(self.remote)
        self.send = send
        self.transport = None
        self.cseq = 0
        self.version = 0
        self.seen = 0               # room.order[:seen] told
        self.need_full = True       # the first NOTIFY, and the one after each refresh
        self.inflight = None        # (cseq text, when sent) of the NOTIFY awaiting its answer
        self.active = True


class Room:
    def __init__(self, name, uri, subject):
        self.name = name
        self.uri = uri
        self.subject = subject
        self.legs = []
        self.participants = {}      # uri -> Participant
        self.order = []             # participants in the order they joined (for partial NOTIFYs)
        self.watches = []
        self.docs = {}              # (state, first, last) -> document (VERSION_ to fill in)


class Focus:
    """Direction focus's conference focus (see the module docstring).  rich: each <user> as
    conf_focus.py (and SylkServer) write it, roles, endpoint, joining-info and media (~430 B);
    else the least the gateway reads (entity, display-text, endpoint status: ~150 B)."""

    def __init__(self, domain="sip.example", transport="tcp", notify_interval=1.0, rich=True,
                 poster=("sip:poster@sip.example", "Poster"), subject="bench room",
                 window_bytes=256 * 1024):
        self.domain = domain
        self.window_bytes = window_bytes
        self.transport_kind = transport
        self.notify_interval = notify_interval
        self.rich = rich
        self.poster = poster
        self.subject = subject
        self.rooms = {}
        self.legs = {}              # call-id -> FocusLeg
        self.port = None
        self.msrp_port = None
        self.server = None
        self.udp = None
        self.watch_by_callid = {}
        self.notify_status = {}     # status of the gateway's answers to our NOTIFYs
        self.unanswered = {}        # (call-id, cseq) of NOTIFYs not answered yet -> when sent
        self.notify_lost = 0        # unanswered for 32 s
        self.refreshes = 0          # SUBSCRIBEs in an existing dialog
        self.unsubscribes = 0       # ... with Expires: 0
        self.byes = 0
        self.sip_transports = []    # TCP connections from the gateway
        self.want = collections.deque()     # subscriptions waiting for a NOTIFY
        self.want_set = set()
        self.inflight_bytes = 0
        self.sip_closed = []        # (when, why, bytes unparsed) of each that closed
        self.sent_on_closed = {}    # SIP messages (by first word) written to a closed connection
        self.t_start = time.monotonic()
        self.notifies = 0
        self.notify_bytes = 0
        self.too_big = 0            # documents a UDP datagram could not carry
        self.invites = 0
        self.subscribes = 0
        self.nicknames = 0
        self.send_responses = {}
        self.unbound = None
        self.flusher = None
        self.violations = []
        self.sends_out = 0

    async def start(self):
        loop = asyncio.get_running_loop()
        self.unbound = asyncio.Semaphore(UNBOUND_MAX)
        if self.transport_kind == "tcp":
            def conn():
                proto = SipStream(self._sip)
                proto.on_made = self.sip_transports.append
                proto.on_lost = self._sip_lost
                proto.on_dead_send = self._dead_send
                return proto
            self.server = await loop.create_server(conn, "127.0.0.1", 0)
            self.port = self.server.sockets[0].getsockname()[1]
        else:
            transport, self.udp = await loop.create_datagram_endpoint(
                lambda: SipDatagram(self._sip), local_addr=("127.0.0.1", 0))
            self.port = transport.get_extra_info("sockname")[1]
        self.msrp_port = self.port          # only named in a=path: the focus connects
        self.flusher = asyncio.ensure_future(self._flush_loop())
        return self

    async def stop(self):
        if self.flusher:
            self.flusher.cancel()
        for leg in self.legs.values():
            t = getattr(leg.conn, "transport", None)        # conn is True while connecting
            if t:
                t.close()
        if self.server:
            self.server.close()
        if self.udp and self.udp.transport:
            self.udp.transport.close()

    def room(self, name):
        r = self.rooms.get(name)
        if not r:
            r = Room(name, f"sip:{name}@{self.domain}", self.subject)
            puri, pnick = self.poster
            r.participants[puri] = Participant(puri, pnick, _now())
            self.rooms[name] = r
        return r

    @property
    def contact(self):
        t = ";transport=tcp" if self.transport_kind == "tcp" else ""
        return f"<sip:focus@127.0.0.1:{self.port}{t}>;isfocus"

    # ---- SIP
    def _sip(self, data, send):
        start, hdrs, body = parse_sip(data)
        if start.startswith("SIP/2.0 "):
            status = int(start.split()[1])
            if "NOTIFY" in h1(hdrs, "cseq"):
                if status < 200:
                    return
                key = (h1(hdrs, "call-id"), h1(hdrs, "cseq"))
                self.unanswered.pop(key, None)
                self.notify_status[status] = self.notify_status.get(status, 0) + 1
                w = self.watch_by_callid.get(key[0])
                if w and w.inflight and w.inflight[0] == key[1]:
                    self.inflight_bytes -= w.inflight[2]
                    w.inflight = None
                    if status >= 300:
                        w.active = False        # RFC 6665 4.2.2: the subscription is over
                    self._kick(w)
            return
        method = start.split(" ", 1)[0]
        ruri = start.split(" ")[1] if " " in start else ""
        if method == "INVITE":
            self._invite(ruri, hdrs, body, send)
        elif method == "ACK":
            leg = self.legs.get(h1(hdrs, "call-id"))
            if leg and not leg.conn:
                asyncio.ensure_future(self._connect(leg))
        elif method == "BYE":
            self.byes += 1
            leg = self.legs.pop(h1(hdrs, "call-id"), None)
            if leg and leg in leg.room.legs:
                leg.room.legs.remove(leg)
                if leg.conn and leg.conn.transport:
                    leg.conn.transport.close()
            send(response(hdrs, 200, "OK"))
        elif method == "SUBSCRIBE":
            self._subscribe(ruri, hdrs, send)
        else:
            send(response(hdrs, 200, "OK"))

    def _room_of(self, ruri):
        m = re.match(r"sips?:([^@;>]+)@", ruri)
        return self.room(m.group(1)) if m else None

    def _invite(self, ruri, hdrs, body, send):
        call_id = h1(hdrs, "call-id")
        leg = self.legs.get(call_id)
        if leg:                     # a retransmission (UDP): the same answer again
            send(leg.answer)
            return
        self.invites += 1
        room = self._room_of(ruri)
        tag = rand(4)
        leg = FocusLeg(room, angle_uri(h1(hdrs, "from")), call_id, tag)
        leg.gw_path = sdp_path(body)
        leg.our_path = f"msrp://127.0.0.1:{self.msrp_port}/{leg.sid};tcp"
        sdp = msrp_sdp(leg.our_path, self.msrp_port, "active", "nickname private-messages")
        leg.answer = response(hdrs, 200, "OK", [("Contact", self.contact),
                                                ("Content-Type", "application/sdp")], sdp, to_tag=tag)
        self.legs[call_id] = leg
        send(leg.answer)

    async def _connect(self, leg):
        leg.conn = True             # taken
        async with self.unbound:
            loop = asyncio.get_running_loop()
            host, port = re.match(r"msrp://([^:/]+):(\d+)/", leg.gw_path).groups()
            try:
                _, conn = await loop.create_connection(lambda: MsrpConn(self._frame), host, int(port))
            except OSError as e:
                self.violations.append(f"MSRP connect for {leg.uri}: {e}")
                return
            conn.leg = leg
            leg.conn = conn
            leg.to_b, leg.from_b = leg.gw_path.encode(), leg.our_path.encode()
            leg.bind_tid = rand(6).encode()
            leg.bind_done = loop.create_future()
            conn.write(msrp_send(leg.bind_tid, leg.to_b, leg.from_b, rand(6).encode(), b"", b""))
            try:
                await asyncio.wait_for(leg.bind_done, 30)
            except asyncio.TimeoutError:
                self.violations.append(f"MSRP bind for {leg.uri} not answered")
                return
            leg.bound = True
            leg.room.legs.append(leg)

    def _frame(self, conn, tid, first, headers, body):
        leg = conn.leg
        word = first[2]
        if word.isdigit():
            st = int(word)
            if not leg.bound and tid == leg.bind_tid:
                if not leg.bind_done.done():
                    leg.bind_done.set_result(st)
                return
            self.send_responses[st] = self.send_responses.get(st, 0) + 1
            leg.inflight -= 1
            return
        if word == b"NICKNAME":
            self.nicknames += 1
            v = msrp_header(headers, b"Use-Nickname") or b'""'
            leg.nick = v.strip().strip(b'"').decode("utf-8", "replace")
            conn.write(msrp_response(tid, 200, leg.to_b, leg.from_b))
            r = leg.room
            p = Participant(leg.uri, leg.nick, _now())
            if leg.uri not in r.participants:
                r.order.append(p)
            r.participants[leg.uri] = p
            return
        if word == b"SEND":
            fr = msrp_header(headers, b"Failure-Report")
            if fr is None or fr.strip().lower() != b"no":
                conn.write(msrp_response(tid, 200, leg.to_b, leg.from_b))
            return
        conn.write(msrp_response(tid, 200, leg.to_b, leg.from_b))

    def _subscribe(self, ruri, hdrs, send):
        call_id = h1(hdrs, "call-id")
        w = self.watch_by_callid.get(call_id)
        expires = h1(hdrs, "expires", "3600")
        if w and ";tag=" in h1(hdrs, "to"):
            # a refresh in the dialog (RFC 6665 4.1.2.2): a full NOTIFY follows
            if expires == "0":
                self.unsubscribes += 1
            else:
                self.refreshes += 1
            send(response(hdrs, 200, "OK", [("Contact", self.contact), ("Expires", expires)]))
            w.send, w.active = send, expires != "0"
            w.need_full = True
            self._kick(w)
            return
        self.subscribes += 1
        room = self._room_of(ruri)
        tag = rand(4)
        send(response(hdrs, 200, "OK", [("Contact", self.contact), ("Expires", expires)],
                      to_tag=tag))
        if expires == "0":
            return
        w = Watch(room, hdrs, send, tag)
        self.watch_by_callid[w.call_id] = w
        room.watches.append(w)
        self._kick(w)

    # ---- conference-info (RFC 4575)
    def _user(self, p):
        u, n = _xml(p.uri), _xml(p.nick or "")
        if not self.rich:
            return (f'<user entity="{u}" state="full"><display-text>{n}</display-text>'
                    f'<endpoint entity="{u}"><status>connected</status></endpoint></user>')
        return (f'<user entity="{u}" state="full"><display-text>{n}</display-text>'
                f'<roles><entry>participant</entry></roles>'
                f'<endpoint entity="{u}" state="full"><display-text>{n}</display-text>'
                f'<status>connected</status><joining-method>dialed-in</joining-method>'
                f'<joining-info><when>{p.when}</when></joining-info>'
                f'<media id="1"><type>message</type><status>sendrecv</status></media>'
                f'</endpoint></user>')

    def _doc(self, room, state, lo, hi):
        """The document telling room.order[lo:hi] (all participants when full), with VERSION_
        where each subscription's version goes; cached, as many subscriptions get the same."""
        key = (state, lo, hi)
        doc = room.docs.get(key)
        if doc is not None:
            return doc
        users = list(room.participants.values()) if state == "full" else room.order[lo:hi]
        parts = [f'<?xml version="1.0" encoding="UTF-8"?>\n<conference-info xmlns="{CONF_NS}" '
                 f'entity="{room.uri}" state="{state}" version="VERSION_">']
        if state == "full":
            parts.append(f'<conference-description><display-text>{room.name}</display-text>'
                         f'<subject>{_xml(room.subject)}</subject></conference-description>')
        parts.append(f'<conference-state><user-count>{len(room.participants)}</user-count>'
                     f'<active>true</active></conference-state>')
        parts.append(f'<users state="{state}">')
        parts += [self._user(p) for p in users]
        parts.append("</users></conference-info>")
        doc = "".join(parts).encode()
        if len(room.docs) > 64:
            room.docs.clear()
        room.docs[key] = doc
        return doc

    def _kick(self, w):
        """w has something to tell (or its first or refreshed state): in line for a NOTIFY."""
        if w.active and w not in self.want_set:
            self.want.append(w)
            self.want_set.add(w)
        self._pump()

    def _pump(self):
        """NOTIFYs to the subscriptions in line, one in flight per subscription, and at most
        window_bytes of documents unanswered in all (one document alone may be larger): the
        gateway's SIP stack drops a TCP connection on which more than its max-message is
        waiting to be read (see bench/groupchat.py)."""
        while self.want:
            w = self.want[0]
            room, hi = w.room, len(w.room.order)
            if not w.active or w.inflight or (not w.need_full and w.seen >= hi):
                self.want.popleft()
                self.want_set.discard(w)
                continue
            doc = self._doc(room, "full", 0, hi) if w.need_full else \
                self._doc(room, "partial", w.seen, hi)
            if self.window_bytes and self.inflight_bytes and \
                    self.inflight_bytes + len(doc) > self.window_bytes:
                return
            self.want.popleft()
            self.want_set.discard(w)
            w.need_full = False
            w.seen = hi
            self._notify(w, doc)

    def _notify(self, w, doc):
        w.cseq += 1
        w.version += 1
        body = doc.replace(b"VERSION_", str(w.version).encode(), 1)
        t = "TCP" if self.transport_kind == "tcp" else "UDP"
        data = sip_bytes(f"NOTIFY {w.target} SIP/2.0", [
            ("Via", f"SIP/2.0/{t} 127.0.0.1:{self.port};branch=z9hG4bK{rand()}"),
            ("Max-Forwards", "70"), ("From", w.local), ("To", w.remote), ("Call-ID", w.call_id),
            ("CSeq", f"{w.cseq} NOTIFY"), ("Contact", self.contact), ("Event", "conference"),
            ("Subscription-State", "active;expires=3600"), ("Content-Type", CONF_INFO_TYPE)], body)
        if self.transport_kind == "udp" and len(data) > 65507:
            self.too_big += 1
            return
        self.notifies += 1
        self.notify_bytes += len(body)
        now = time.monotonic()
        w.inflight = (f"{w.cseq} NOTIFY", now, len(body))
        self.inflight_bytes += len(body)
        self.unanswered[(w.call_id, f"{w.cseq} NOTIFY")] = now
        w.send(data)

    async def _flush_loop(self):
        """Every notify interval, every subscription with changes goes in line; a NOTIFY
        unanswered for 64 x T1 (over TCP: lost) no longer holds its subscription or the
        window up."""
        while True:
            await asyncio.sleep(self.notify_interval)
            stale = time.monotonic() - 32
            for room in list(self.rooms.values()):
                for w in room.watches:
                    if w.inflight and w.inflight[1] < stale:
                        self.notify_lost += 1
                        self.inflight_bytes -= w.inflight[2]
                        w.inflight = None
                    if w.active and not w.inflight and (w.need_full or w.seen < len(room.order)):
                        if w not in self.want_set:
                            self.want.append(w)
                            self.want_set.add(w)
            self._pump()

    def _sip_lost(self, proto, exc):
        """A SIP connection from the gateway closed: when (seconds since start), by whom, and
        what was still unread by it (our write buffer) are kept for the report."""
        self.sip_closed.append((round(time.monotonic() - self.t_start, 3), repr(exc),
                                len(proto.buf)))

    def _dead_send(self, data):
        self.sent_on_closed[data.split(b" ", 1)[0].decode()] = \
            self.sent_on_closed.get(data.split(b" ", 1)[0].decode(), 0) + 1

    # ---- messages
    def post(self, room_name, i, text=b"hello room, this is a benchmark line"):
        """Relays message number i from the poster to every leg of the room (RFC 7701: CPIM
        From the sender, To the room).  Returns the number of SENDs written."""
        room = self.rooms[room_name]
        puri, pnick = self.poster
        cpim = (f'From: "{pnick}" <{puri}>\r\nTo: <{room.uri}>\r\nDateTime: {_now()}\r\n\r\n'
                f'Content-Type: text/plain;charset=UTF-8\r\n\r\n').encode() + token(i) + b" " + text
        mid = rand(6).encode()
        n = 0
        for leg in room.legs:
            if leg.conn and leg.bound:
                leg.conn.write(msrp_send(rand(6).encode(), leg.to_b, leg.from_b, mid,
                                         b"message/cpim", cpim))
                leg.inflight += 1
                n += 1
        self.sends_out += n
        return n


def _now():
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
