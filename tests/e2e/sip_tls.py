"""sip_tls.py - a small SIP-over-TLS user agent for the TLS tests (RFC 3261 18 and 26, RFC 5922),
written from the RFCs with Python's ssl and asyncio and independent of the gateway's SIP stack:
it plays a peer's proxy with whatever certificate a test gives it, hostile ones included.

    c = SipTlsClient(port, cert=(pem, key) or None, ca=ca_file, server_name=None)
    ok = await c.connect()       # False when the handshake was refused
    c.handshake                  # "ok", or the TLS error text (an alert the server sent, a
                                 # certificate verification failure, "closed by peer"...)
    resp = await c.request("MESSAGE", "sip:alice@xmpp.example", frm="sip:bob@sip.example",
                           body="hello", ctype="text/plain")
    resp.status, resp.phrase, resp.get("to"), resp.body     # None when no final response came
    c.requests                   # the requests the other side sent on this connection; each is
                                 # answered with c.answer (a status, or a function of the request
                                 # returning one; None: not answered)
    await c.close()
    read_message(reader), response_to(request, status): the framing and the answers, for a test's
    own TLS server (e.g. one standing in for the gateway behind Kamailio).

Everything binds 127.0.0.1 and nothing asks a name server: the peer is a numeric address, and
server_name (when given) is only the name its certificate must carry (checked by Python's
hostname matching: DNS subjectAltNames).  Without server_name the server's certificate is still
checked against `ca` (verify=False: not checked at all).

Messages are framed by Content-Length (RFC 3261 18.3: mandatory over stream transports);
keep-alive CRLFs between messages (RFC 5626 3.5.1) are skipped.

A refusal of the client's certificate comes, with TLS 1.3, after the client has finished its
half of the handshake (the server reads the certificate after the client's Finished): connect()
therefore waits `settle` seconds for an alert or a close before calling the handshake good.
tls_version="1.2" keeps it within the handshake.
"""

import asyncio
import secrets
import ssl

COMPACT = {"i": "call-id", "m": "contact", "e": "content-encoding", "l": "content-length",
           "c": "content-type", "f": "from", "s": "subject", "k": "supported", "t": "to",
           "v": "via", "o": "event", "u": "allow-events", "r": "refer-to", "b": "referred-by",
           "x": "session-expires"}
MAX_MESSAGE = 1 << 20


class SipMessage:
    """A parsed SIP message: start line, [(name, value)] in order, body bytes."""

    def __init__(self, start, headers, body=b""):
        self.start = start
        self.headers = headers
        self.body = body

    @property
    def is_request(self):
        return not self.start.startswith("SIP/2.0 ")

    @property
    def method(self):
        return self.start.split(" ", 1)[0] if self.is_request else None

    @property
    def status(self):
        return None if self.is_request else int(self.start.split(" ", 2)[1])

    @property
    def phrase(self):
        if self.is_request:
            return None
        parts = self.start.split(" ", 2)
        return parts[2] if len(parts) > 2 else ""

    def get_all(self, name):
        name = name.lower()
        return [v for n, v in self.headers if n == name]

    def get(self, name, default=None):
        v = self.get_all(name)
        return v[0] if v else default

    @property
    def call_id(self):
        return self.get("call-id")

    @property
    def cseq(self):
        return self.get("cseq")

    def encode(self):
        return encode(self.start, self.headers, self.body)

    def __repr__(self):
        return f"<SipMessage {self.start!r} {self.headers} {self.body[:200]!r}>"


def encode(start, headers, body=b""):
    """Bytes of a message; Content-Length is set from the body (any given one is replaced)."""
    if isinstance(body, str):
        body = body.encode()
    lines = [start] + [f"{n}: {v}" for n, v in headers if n.lower() not in ("content-length", "l")]
    lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def parse_head(head):
    """Start line and [(lower-case full name, value)] of a header block (folded lines joined)."""
    text = head.decode("utf-8", "replace")
    lines = text.split("\r\n")
    start, headers = lines[0], []
    for line in lines[1:]:
        if line[:1] in (" ", "\t") and headers:
            n, v = headers[-1]
            headers[-1] = (n, v + " " + line.strip())
            continue
        name, sep, value = line.partition(":")
        if not sep:
            raise ValueError(f"malformed header line {line!r}")
        name = name.strip().lower()
        headers.append((COMPACT.get(name, name), value.strip()))
    return start, headers


async def read_message(reader):
    """The next message on a stream (asyncio.StreamReader), framed by its Content-Length;
    keep-alive CRLFs before it are skipped.  Raises asyncio.IncompleteReadError at the end of
    the stream, ValueError on a message that cannot be framed."""
    lines, size = [], 0
    while True:
        line = await reader.readuntil(b"\r\n")
        if line == b"\r\n":
            if not lines:
                continue        # a keep-alive CRLF (RFC 5626) between messages
            break
        lines.append(line)
        size += len(line)
        if size > MAX_MESSAGE:
            raise ValueError("header block too long")
    start, headers = parse_head(b"".join(lines)[:-2])
    clen = [v for n, v in headers if n == "content-length"]
    if not clen:
        raise ValueError(f"no Content-Length over a stream transport: {start!r}")
    n = int(clen[0])
    if n < 0 or n > MAX_MESSAGE:
        raise ValueError(f"bad Content-Length {n}")
    body = await reader.readexactly(n) if n else b""
    return SipMessage(start, headers, body)


def response_to(req, status, phrase=None, headers=()):
    """Bytes of a response to req (Via, From, To with a tag, Call-ID, CSeq copied)."""
    to = req.get("to") or ""
    if "tag=" not in to:
        to += ";tag=" + secrets.token_hex(4)
    hdrs = [("Via", v) for v in req.get_all("via")]
    hdrs += [("From", req.get("from") or ""), ("To", to), ("Call-ID", req.call_id or ""),
             ("CSeq", req.cseq or "")] + list(headers)
    phrase = phrase or {200: "OK", 202: "Accepted", 403: "Forbidden",
                        404: "Not Found"}.get(status, "Reply")
    return encode(f"SIP/2.0 {status} {phrase}", hdrs)


def _error_text(e):
    """The text of a TLS failure: the OpenSSL reason (an alert received, a verification failure)."""
    if isinstance(e, ssl.SSLCertVerificationError):
        return f"certificate verify failed: {e.verify_message}"
    if isinstance(e, ssl.SSLError):
        return (e.reason or str(e)).replace("_", " ").lower() if e.reason else str(e)
    if isinstance(e, (ConnectionResetError, BrokenPipeError)):
        return "connection reset by peer"
    if isinstance(e, asyncio.IncompleteReadError) or isinstance(e, EOFError):
        return "closed by peer"
    if isinstance(e, asyncio.TimeoutError):
        return "timed out"
    return f"{type(e).__name__}: {e}"


class SipTlsClient:
    def __init__(self, port, host="127.0.0.1", cert=None, ca=None, server_name=None, verify=True,
                 tls_version=None, answer=200, settle=0.5, local_host="127.0.0.1"):
        self.host, self.port = host, port
        self.cert = cert
        self.ca = ca
        self.server_name = server_name
        self.verify = verify
        self.tls_version = tls_version
        self.answer = answer
        self.settle = settle
        self.local_host = local_host
        self.handshake = None       # "ok" or the error text, once connect() returned
        self.peer_cert = None       # the server's certificate (dict of getpeercert()) when verified
        self.local_port = None
        self.requests = []          # requests the server sent on this connection
        self.responses = []         # every response received, provisional ones too
        self.closed = None          # why the connection ended ("closed by peer", an alert...)
        self.reader = self.writer = None
        self._waiting = {}          # (call-id, cseq) -> future of the final response
        self._got = asyncio.Event()
        self._task = None

    def context(self):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        if self.tls_version == "1.2":
            ctx.maximum_version = ssl.TLSVersion.TLSv1_2
        elif self.tls_version == "1.3":
            ctx.minimum_version = ssl.TLSVersion.TLSv1_3
        if self.verify:
            ctx.verify_mode = ssl.CERT_REQUIRED
            ctx.check_hostname = self.server_name is not None
            if self.ca:
                ctx.load_verify_locations(self.ca)
        else:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        if self.cert:
            ctx.load_cert_chain(self.cert[0], self.cert[1])
        return ctx

    async def connect(self, timeout=5.0):
        """Connects and completes the handshake; True when the server took it (no alert nor
        close within `settle` seconds after it), else False with the reason in self.handshake."""
        try:
            self.reader, self.writer = await asyncio.wait_for(asyncio.open_connection(
                self.host, self.port, ssl=self.context(),
                server_hostname=self.server_name if self.server_name is not None else "",
                local_addr=(self.local_host, 0), ssl_handshake_timeout=timeout), timeout)
        except (ssl.SSLError, OSError, asyncio.TimeoutError, asyncio.IncompleteReadError) as e:
            self.handshake = _error_text(e)
            return False
        sslobj = self.writer.get_extra_info("ssl_object")
        self.peer_cert = self.writer.get_extra_info("peercert")
        self.version = sslobj.version() if sslobj else None
        sockname = self.writer.get_extra_info("sockname")
        self.local_port = sockname[1] if sockname else 0    # None: already closed by the peer
        self._task = asyncio.ensure_future(self._read_loop())
        if self.settle:
            try:
                await asyncio.wait_for(asyncio.shield(self._task), self.settle)
            except asyncio.TimeoutError:
                pass
        if self._task.done():
            # the server alerted or closed before anything was sent: a refusal
            self.handshake = self.closed or "closed by peer"
            return False
        self.handshake = "ok"
        return True

    async def _read_loop(self):
        try:
            while True:
                msg = await read_message(self.reader)
                if msg.is_request:
                    self._on_request(msg)
                else:
                    self.responses.append(msg)
                    key = (msg.call_id, msg.cseq)
                    fut = self._waiting.get(key)
                    if msg.status >= 200 and fut and not fut.done():
                        fut.set_result(msg)
                self._got.set()
        except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError, OSError,
                ValueError, asyncio.LimitOverrunError) as e:
            self.closed = _error_text(e) if not isinstance(e, ValueError) else f"bad message: {e}"
        finally:
            for fut in self._waiting.values():
                if not fut.done():
                    fut.set_result(None)
            self._got.set()

    def _on_request(self, req):
        self.requests.append(req)
        if req.method == "ACK" or self.answer is None:
            return
        status = self.answer(req) if callable(self.answer) else self.answer
        if status is None:
            return
        extra = []
        if req.method == "SUBSCRIBE" and 200 <= status < 300:
            extra.append(("Expires", req.get("expires") or "0"))
        self.writer.write(response_to(req, status, headers=extra))

    def via(self, branch):
        return f"SIP/2.0/TLS 127.0.0.1:{self.local_port};branch={branch};rport"

    async def request(self, method, ruri, frm, to=None, body=b"", ctype=None, headers=(),
                      call_id=None, cseq=1, timeout=5.0, raw=None):
        """Sends one request and returns its final response (None: none came within timeout or
        the connection ended).  headers: more (name, value) pairs; From gets a tag, To none.
        raw: bytes sent instead of the built request (its own Call-ID/CSeq are then matched)."""
        if self.writer is None or (self._task and self._task.done()):
            return None
        call_id = call_id or secrets.token_hex(12)
        hdrs = [("Via", self.via("z9hG4bK" + secrets.token_hex(8))),
                ("Max-Forwards", "70"),
                ("From", f"<{frm}>;tag={secrets.token_hex(4)}"),
                ("To", f"<{to or ruri}>"),
                ("Call-ID", call_id),
                ("CSeq", f"{cseq} {method}"),
                ("Contact", f"<sip:{frm.split(':', 1)[1].split('@')[0]}@127.0.0.1:"
                            f"{self.local_port};transport=tls>")]
        if ctype:
            hdrs.append(("Content-Type", ctype))
        hdrs += list(headers)
        data = raw if raw is not None else encode(f"{method} {ruri} SIP/2.0", hdrs, body)
        if raw is not None:
            start, hh = parse_head(raw.split(b"\r\n\r\n", 1)[0])
            d = dict(hh)
            call_id, key = d.get("call-id"), (d.get("call-id"), d.get("cseq"))
        else:
            key = (call_id, f"{cseq} {method}")
        fut = asyncio.get_running_loop().create_future()
        self._waiting[key] = fut
        try:
            self.writer.write(data)
            await self.writer.drain()
        except (ConnectionError, ssl.SSLError, OSError) as e:
            self.closed = _error_text(e)
            return None
        try:
            return await asyncio.wait_for(fut, timeout)
        except asyncio.TimeoutError:
            return None
        finally:
            self._waiting.pop(key, None)

    async def wait_request(self, pred, timeout=5.0):
        """The first request from the other side that pred accepts (None after timeout)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            for r in self.requests:
                if pred(r):
                    return r
            left = deadline - loop.time()
            if left <= 0 or (self._task and self._task.done()):
                return None
            self._got.clear()
            try:
                await asyncio.wait_for(self._got.wait(), left)
            except asyncio.TimeoutError:
                pass

    async def close(self):
        if self._task:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):  # noqa: BLE001
                pass
        if self.writer:
            self.writer.close()
            try:
                await asyncio.wait_for(self.writer.wait_closed(), 2)
            except (asyncio.TimeoutError, ConnectionError, ssl.SSLError, OSError):
                pass

    async def __aenter__(self):
        await self.connect()
        return self

    async def __aexit__(self, *exc):
        await self.close()


async def send_one(port, method, ruri, frm, cert=None, ca=None, **kw):
    """Connects, sends one request, closes: (handshake outcome, final response or None)."""
    opts = {k: kw.pop(k) for k in ("server_name", "verify", "tls_version", "answer", "settle")
            if k in kw}
    c = SipTlsClient(port, cert=cert, ca=ca, **opts)
    try:
        if not await c.connect():
            return c.handshake, None
        return c.handshake, await c.request(method, ruri, frm, **kw)
    finally:
        await c.close()


def main():
    import argparse
    ap = argparse.ArgumentParser(description="send one SIP request over TLS to 127.0.0.1:PORT")
    ap.add_argument("port", type=int)
    ap.add_argument("--cert")
    ap.add_argument("--key")
    ap.add_argument("--ca")
    ap.add_argument("--server-name")
    ap.add_argument("--tls", choices=("1.2", "1.3"))
    ap.add_argument("--method", default="OPTIONS")
    ap.add_argument("--ruri", default="sip:sip.example")
    ap.add_argument("--from", dest="frm", default="sip:test@sip.example")
    ap.add_argument("--body", default="")
    a = ap.parse_args()
    cert = (a.cert, a.key or a.cert) if a.cert else None
    hs, resp = asyncio.run(send_one(a.port, a.method, a.ruri, a.frm, cert=cert, ca=a.ca,
                                    server_name=a.server_name, tls_version=a.tls,
                                    body=a.body, ctype="text/plain" if a.body else None))
    print("handshake:", hs)
    print("response:", resp.start if resp else None)
    return 0 if resp else 1


if __name__ == "__main__":
    raise SystemExit(main())
