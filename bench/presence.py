#!/usr/bin/python3
"""presence.py - presence of SIP presentities to XMPP watchers through the gateway: one SIP dialog
per XMPP watcher and presentity (each watcher subscribes as itself, issue 12; until then one
shared dialog per presentity was fanned out to every approved watcher), and memory per dialog.

The benchmark plays both peers itself, on 127.0.0.1, so that what is measured is the gateway:
  - the XMPP server: a XEP-0114 component endpoint (asyncio) that accepts the gateway's stream,
    sends W <presence type='subscribe'/> from uNNNNN@xmpp.example to bob@sip.example, and counts
    the <presence> stanzas coming back by scanning the byte stream (no XML parsing);
  - the SIP presence server (a notifier, RFC 6665/3856, over UDP): answers each SUBSCRIBE with 200,
    sends NOTIFY pending, and later, on command, NOTIFY active and K presence changes, one NOTIFY
    in every dialog it holds for the presentity (as a real presence server does), so the number of
    NOTIFYs crossing the peering link per change is the number of dialogs the gateway holds.

For each W (default 1, 100, 10000), with a fresh gateway:
  RSS before any watcher; W subscribes (then a foreign-domain subscribe, whose error reply proves
  that the gateway has read them all); NOTIFY active (approval of all W watchers); RSS -> bytes
  per watcher; then K changes, each timed from the NOTIFY's sendto() to the last <presence>
  received (stanzas/s of one fan-out) with the gateway's CPU time over it (summed
  /proc/PID/task/*/schedstat, ns resolution) -> CPU us per stanza.
Then D presentities b0000..@sip.example with one watcher each (the notifier approves at once):
  RSS delta after the transactions have settled / D, minus the per-watcher figure = bytes per SIP
  dialog (with its presentity state).  Then a second batch of D more: its RSS delta / D is the
  memory each further dialog costs a gateway that already holds some.  The two differ because a
  burst of set-ups leaves the SIP transactions' memory (kept 32 s over UDP) behind as free but
  fragmented heap, which glibc cannot return and which the next dialogs reuse.

Then N SIP watchers wNNNNNN@sip.example, each subscribing to its own XMPP user, whom nobody
answers (the case of a SUBSCRIBE flood): RSS delta after the transactions settled / N = bytes
per pending subscription, with a second batch for the slope.

Usage: bench/presence.py --gateway build/release/simplegw [--watchers 1,100,10000] [--dialogs 1000]
                         [--changes K] [--pending 2000]
                         [--settle 35] [--json]
Exit status: 0 every target met, 2 a target missed, 1 the run went wrong (wrong counts, timeouts).
"""

import argparse
import asyncio
import glob
import json
import os
import re
import shutil
import signal
import statistics
import sys
import tempfile
import time
import types
import uuid

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "e2e"))
import harness  # noqa: E402
from harness import SIP_DOMAIN, XMPP_DOMAIN, TestFailure, check, free_port, pidf  # noqa: E402

PAGE = os.sysconf("SC_PAGE_SIZE")
CLK_TCK = os.sysconf("SC_CLK_TCK")

TARGET_RATE = 100_000          # stanzas/s of fan-out
TARGET_WATCHER_BYTES = 1024    # resident bytes per watcher
TARGET_DIALOG_BYTES = 8192     # resident bytes per SIP dialog
TARGET_PENDING_BYTES = 32768   # resident bytes per pending SIP watcher subscription (docs/config.md sizing)


# ---------------------------------------------------------------- /proc accounting

def rss_bytes(pid):
    with open(f"/proc/{pid}/statm") as f:
        return int(f.read().split()[1]) * PAGE


def cpu_ns(pid):
    """CPU time of every thread of pid, in ns (schedstat), or from stat at tick resolution."""
    total, found = 0, False
    for path in glob.glob(f"/proc/{pid}/task/*/schedstat"):
        try:
            with open(path) as f:
                total += int(f.read().split()[0])
                found = True
        except (OSError, ValueError, IndexError):
            pass
    if found:
        return total
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) * 1_000_000_000 // CLK_TCK


# ---------------------------------------------------------------- the XMPP server (XEP-0114)

class FakeXmpp:
    """Accepts one component connection at a time and counts what the gateway sends."""

    # counted in the byte stream; an occurrence may straddle two reads (see _count)
    PATTERNS = {
        "presence": b"<presence",
        "subscribed": b"subscribed",      # type='subscribed' (no 'unsubscribed' expected)
        "unavailable": b"unavailable",
        "tuple": b"@sip.example/t1",     # from='<presentity>/t1': one per PIDF tuple stanza
        "error": b"<error",
    }

    def __init__(self):
        self.server = None
        self.port = None
        self.writer = None
        self.connected = asyncio.Event()
        self.counts = dict.fromkeys(self.PATTERNS, 0)
        self.bytes = 0
        self.head = b""
        self.tail = b""
        self.last_time = 0.0
        self.waiters = []
        self.closed = False

    async def start(self):
        self.server = await asyncio.start_server(self._conn, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]

    async def stop(self):
        if self.writer:
            self.writer.close()
        self.server.close()
        await self.server.wait_closed()

    async def _conn(self, reader, writer):
        if self.writer:               # one link at a time
            writer.close()
            return
        buf = b""
        while not re.search(rb"<stream:stream[^>]*>", buf):
            data = await reader.read(4096)
            if not data:
                writer.close()
                return
            buf += data
        buf = buf[re.search(rb"<stream:stream[^>]*>", buf).end():]
        writer.write(b"<?xml version='1.0'?><stream:stream xmlns='jabber:component:accept' "
                     b"xmlns:stream='http://etherx.jabber.org/streams' from='" + SIP_DOMAIN.encode() +
                     b"' id='bench-" + uuid.uuid4().hex.encode() + b"'>")
        while b"</handshake>" not in buf:
            data = await reader.read(4096)
            if not data:
                writer.close()
                return
            buf += data
        buf = buf.split(b"</handshake>", 1)[1]
        writer.write(b"<handshake/>")     # any digest is fine here
        self.writer = writer
        self.connected.set()
        if buf:
            self._count(buf, time.perf_counter())
        try:
            while True:
                data = await reader.read(1 << 18)
                if not data:
                    break
                self._count(data, time.perf_counter())
                if b"</stream:stream>" in self.tail:
                    writer.write(b"</stream:stream>")
                    break
        finally:
            self.closed = True
            writer.close()

    def _count(self, data, now):
        if len(self.head) < 4096:
            self.head += data[:4096 - len(self.head)]      # a sample, for --keep/debugging
        self.bytes += len(data)
        for name, pat in self.PATTERNS.items():
            # tail holds fewer bytes than the pattern: only occurrences ending in data are new
            self.counts[name] += (self.tail[len(self.tail) - (len(pat) - 1):] + data).count(pat)
        self.tail = (self.tail + data)[-64:]
        self.last_time = now
        keep = []
        for name, target, fut in self.waiters:
            if self.counts[name] >= target and not fut.done():
                fut.set_result(now)
            elif not fut.done():
                keep.append((name, target, fut))
        self.waiters = keep

    async def wait_count(self, name, target, timeout, what=None):
        """The time (perf_counter) of the read that brought counts[name] to target."""
        if self.counts[name] >= target:
            return self.last_time
        fut = asyncio.get_running_loop().create_future()
        self.waiters.append((name, target, fut))
        try:
            return await asyncio.wait_for(fut, timeout)
        except asyncio.TimeoutError:
            raise TestFailure(f"timed out after {timeout}s waiting for {what or name}: "
                              f"{self.counts[name]} of {target}; counts {self.counts}") from None

    async def send(self, data):
        self.writer.write(data)
        await self.writer.drain()

    async def quiet(self, duration=0.3):
        """Waits until nothing arrived for `duration` seconds."""
        while True:
            n = self.bytes
            await asyncio.sleep(duration)
            if self.bytes == n:
                return


def subscribes(frm_fmt, to_fmt, n):
    return "".join(f"<presence type='subscribe' from='{frm_fmt.format(i)}' to='{to_fmt.format(i)}'/>"
                   for i in range(n)).encode()


# ---------------------------------------------------------------- the SIP presence server

COMPACT = {"v": "via", "f": "from", "t": "to", "i": "call-id", "m": "contact", "l": "content-length",
           "c": "content-type", "o": "event"}


def parse_sip(data):
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("utf-8", "replace").split("\r\n")
    hdrs = []
    for line in lines[1:]:
        if line[:1] in (" ", "\t") and hdrs:
            hdrs[-1] = (hdrs[-1][0], hdrs[-1][1] + " " + line.strip())
            continue
        name, _, value = line.partition(":")
        name = name.strip().lower()
        hdrs.append((COMPACT.get(name, name), value.strip()))
    return lines[0], hdrs, body


def hget(hdrs, name, default=None):
    for n, v in hdrs:
        if n == name:
            return v
    return default


def uri_of(value):
    m = re.search(r"<([^>]*)>", value)
    return m.group(1) if m else value.split(";")[0].strip()


class Dialog:
    def __init__(self, callid, presentity, local, remote, contact, addr, event):
        self.callid = callid
        self.presentity = presentity   # sip:bob@sip.example
        self.local = local             # our From in NOTIFYs (their To, with our tag)
        self.remote = remote           # their From, with their tag
        self.contact = contact         # where NOTIFYs go (Request-URI)
        self.addr = addr
        self.event = event
        self.cseq = 0
        self.ended = False


class Notifier(asyncio.DatagramProtocol):
    """A presence server for any presentity; approval policy per presentity (see initial)."""

    T1 = 0.5

    def __init__(self, port):
        self.port = port
        self.transport = None
        self.dialogs = {}              # Call-ID -> Dialog
        self.by_pres = {}              # presentity URI -> [Dialog]
        self.answered = {}             # (Call-ID, CSeq) -> response bytes (retransmitted requests)
        self.inflight = {}             # (Call-ID, CSeq number) -> [data, addr, handle, future, tries]
        self.docs = {}                 # presentity -> last body sent
        self.initial = lambda presentity: ("pending", None)
        self.subscribes = 0            # initial SUBSCRIBEs: dialogs the gateway set up
        self.refreshes = 0
        self.unsubscribes = 0
        self.unsub_cseqs = []
        self.notifies = 0              # NOTIFY transactions started (retransmissions not counted)
        self.retransmits = 0
        self.notify_status = {}

    async def start(self):
        loop = asyncio.get_running_loop()
        await loop.create_datagram_endpoint(lambda: self, local_addr=("127.0.0.1", self.port))

    def connection_made(self, transport):
        self.transport = transport

    def close(self):
        for item in self.inflight.values():
            item[2].cancel()
        if self.transport:
            self.transport.close()

    def datagram_received(self, data, addr):
        start, hdrs, body = parse_sip(data)
        if start.startswith("SIP/2.0 "):
            self._response(int(start.split()[1]), hdrs)
            return
        method = start.split(" ", 1)[0]
        key = (hget(hdrs, "call-id"), hget(hdrs, "cseq"))
        if key in self.answered:
            self.transport.sendto(self.answered[key], addr)
            return
        if method == "SUBSCRIBE":
            self._subscribe(start, hdrs, addr, key)
        elif method != "ACK":
            self._reply(hdrs, addr, key, 200 if method == "OPTIONS" else 405,
                        "OK" if method == "OPTIONS" else "Method Not Allowed")

    def _reply(self, hdrs, addr, key, status, phrase, to=None, extra=""):
        vias = "".join(f"Via: {v}\r\n" for n, v in hdrs if n == "via")
        msg = (f"SIP/2.0 {status} {phrase}\r\n{vias}"
               f"From: {hget(hdrs, 'from')}\r\nTo: {to or hget(hdrs, 'to')}\r\n"
               f"Call-ID: {hget(hdrs, 'call-id')}\r\nCSeq: {hget(hdrs, 'cseq')}\r\n"
               f"Contact: <sip:127.0.0.1:{self.port}>\r\n{extra}Content-Length: 0\r\n\r\n").encode()
        self.answered[key] = msg
        self.transport.sendto(msg, addr)

    def _subscribe(self, start, hdrs, addr, key):
        callid = hget(hdrs, "call-id")
        expires = int(re.match(r"\d+", hget(hdrs, "expires", "3600")).group(0))
        d = self.dialogs.get(callid)
        if d is None:
            if ";tag=" in hget(hdrs, "to", ""):
                self._reply(hdrs, addr, key, 481, "Call/Transaction Does Not Exist")
                return
            to = hget(hdrs, "to")
            d = Dialog(callid, uri_of(to), f"{to};tag={uuid.uuid4().hex[:12]}", hget(hdrs, "from"),
                       uri_of(hget(hdrs, "contact", "")), addr, hget(hdrs, "event", "presence"))
            self.dialogs[callid] = d
            self.by_pres.setdefault(d.presentity, []).append(d)
            self.subscribes += 1
            new = True
        else:
            new = False
            if expires:
                self.refreshes += 1
        self._reply(hdrs, addr, key, 200, "OK", to=d.local, extra=f"Expires: {expires}\r\n")
        if expires == 0:
            self.unsubscribes += 1
            self.unsub_cseqs.append((callid, hget(hdrs, "cseq")))
            if not d.ended:
                self.notify(d, "terminated;reason=timeout", None)
                d.ended = True
                self.by_pres[d.presentity].remove(d)
        elif new:
            state, body = self.initial(d.presentity)
            if body:
                self.docs[d.presentity] = body
            self.notify(d, f"{state};expires={expires}", body)
        else:
            self.notify(d, f"active;expires={expires}", self.docs.get(d.presentity))

    def notify(self, d, substate, body):
        """Sends one NOTIFY in dialog d; returns a future for the final status."""
        d.cseq += 1
        body_b = body.encode() if isinstance(body, str) else (body or b"")
        ctype = "Content-Type: application/pidf+xml\r\n" if body_b else ""
        msg = (f"NOTIFY {d.contact} SIP/2.0\r\n"
               f"Via: SIP/2.0/UDP 127.0.0.1:{self.port};branch=z9hG4bK{uuid.uuid4().hex}\r\n"
               f"Max-Forwards: 70\r\nFrom: {d.local}\r\nTo: {d.remote}\r\n"
               f"Call-ID: {d.callid}\r\nCSeq: {d.cseq} NOTIFY\r\n"
               f"Contact: <sip:127.0.0.1:{self.port}>\r\nEvent: {d.event}\r\n"
               f"Subscription-State: {substate}\r\n{ctype}"
               f"Content-Length: {len(body_b)}\r\n\r\n").encode() + body_b
        fut = asyncio.get_running_loop().create_future()
        key = (d.callid, d.cseq)
        handle = asyncio.get_running_loop().call_later(self.T1, self._retransmit, key)
        self.inflight[key] = [msg, d.addr, handle, fut, 1]
        self.notifies += 1
        self.transport.sendto(msg, d.addr)
        return fut

    def _retransmit(self, key):
        item = self.inflight.get(key)
        if not item:
            return
        if item[4] >= 7:
            del self.inflight[key]
            item[3].set_result(408)
            return
        item[4] += 1
        self.retransmits += 1
        self.transport.sendto(item[0], item[1])
        item[2] = asyncio.get_running_loop().call_later(min(self.T1 * 2 ** (item[4] - 1), 4),
                                                        self._retransmit, key)

    def _response(self, status, hdrs):
        cseq = hget(hdrs, "cseq", "")
        if not cseq.endswith("NOTIFY") or status < 200:
            return
        key = (hget(hdrs, "call-id"), int(cseq.split()[0]))
        item = self.inflight.pop(key, None)
        if item:
            item[2].cancel()
            self.notify_status[status] = self.notify_status.get(status, 0) + 1
            if not item[3].done():
                item[3].set_result(status)

    def change(self, presentity, body, substate="active;expires=3600"):
        """A presence change: one NOTIFY in every dialog held for presentity.
        Returns (time sent, number of NOTIFYs, futures)."""
        self.docs[presentity] = body
        dialogs = [d for d in self.by_pres.get(presentity, []) if not d.ended]
        t0 = time.perf_counter()
        futs = [self.notify(d, substate, body) for d in dialogs]
        return t0, len(dialogs), futs


# ---------------------------------------------------------------- the gateway

# ---------------------------------------------------------------- SIP watchers (pending)

class Watchers(asyncio.DatagramProtocol):
    """SIP watchers of XMPP users, over UDP from 127.0.0.1 (the peer's network): subscribe()
    sends SUBSCRIBEs at a steady rate, retransmitted until answered; every NOTIFY is answered
    200.  The XMPP users never answer, so each dialog stays pending."""

    def __init__(self, gw_port):
        self.gw_port = gw_port
        self.transport = None
        self.port = None
        self.waiting = {}              # Call-ID -> request bytes, until a final response
        self.status = {}               # final status -> count
        self.notifies = 0

    async def start(self):
        self.transport, _ = await asyncio.get_running_loop().create_datagram_endpoint(
            lambda: self, local_addr=("127.0.0.1", 0))
        self.port = self.transport.get_extra_info("sockname")[1]

    def datagram_received(self, data, addr):
        start, hdrs, body = parse_sip(data)
        if start.startswith("SIP/2.0 "):
            status = int(start.split()[1])
            if status >= 200 and self.waiting.pop(hget(hdrs, "call-id"), None) is not None:
                self.status[status] = self.status.get(status, 0) + 1
            return
        if start.startswith("NOTIFY "):
            self.notifies += 1
        vias = "".join(f"Via: {v}\r\n" for n, v in hdrs if n == "via")
        self.transport.sendto((f"SIP/2.0 200 OK\r\n{vias}From: {hget(hdrs, 'from')}\r\n"
                               f"To: {hget(hdrs, 'to')}\r\nCall-ID: {hget(hdrs, 'call-id')}\r\n"
                               f"CSeq: {hget(hdrs, 'cseq')}\r\nContent-Length: 0\r\n\r\n").encode(),
                              addr)

    def request(self, i, prefix):
        cid = f"{prefix}{i:06d}-{uuid.uuid4().hex[:8]}"
        user = f"{prefix}{i:06d}@{XMPP_DOMAIN}"
        data = (f"SUBSCRIBE sip:{user} SIP/2.0\r\n"
                f"Via: SIP/2.0/UDP 127.0.0.1:{self.port};branch=z9hG4bK{cid}\r\n"
                f"From: <sip:w{prefix}{i:06d}@{SIP_DOMAIN}>;tag=t{i}\r\nTo: <sip:{user}>\r\n"
                f"Call-ID: {cid}\r\nCSeq: 1 SUBSCRIBE\r\nMax-Forwards: 70\r\n"
                f"Contact: <sip:127.0.0.1:{self.port}>\r\nEvent: presence\r\n"
                f"Accept: application/pidf+xml\r\nExpires: 3600\r\nContent-Length: 0\r\n\r\n")
        return cid, data.encode()

    async def subscribe(self, n, prefix, rate=2000):
        """n SUBSCRIBEs (watcher w<prefix>NNNNNN to user <prefix>NNNNNN) at `rate` per second;
        returns once every one has a final response."""
        t0 = time.perf_counter()
        for i in range(n):
            cid, data = self.request(i, prefix)
            self.waiting[cid] = data
            self.transport.sendto(data, ("127.0.0.1", self.gw_port))
            ahead = t0 + (i + 1) / rate - time.perf_counter()
            if ahead > 0:
                await asyncio.sleep(ahead)
        for _ in range(60):
            if not self.waiting:
                return
            await asyncio.sleep(1.0)
            for data in list(self.waiting.values()):
                self.transport.sendto(data, ("127.0.0.1", self.gw_port))
        raise TestFailure(f"{len(self.waiting)} SUBSCRIBEs without a final response")


async def pending_run(args, workdir, n):
    """N SIP watchers, each of its own XMPP user, none answered: the memory of one pending
    subscription (the SIP dialog held by nua, the view, the request sent to the user)."""
    log = args.log
    async with Run(args, workdir, lambda p: ("pending", None)) as run:
        x, pid = run.xmpp, run.pid
        w = Watchers(run.sip_port)
        await w.start()
        try:
            rss0 = rss_bytes(pid)
            cpu0, t0 = cpu_ns(pid), time.perf_counter()
            await w.subscribe(n, "p")
            await x.wait_count("presence", n, 60, "N subscribe requests to the XMPP users")
            t_setup = time.perf_counter() - t0
            cpu_setup = cpu_ns(pid) - cpu0
            check(w.status == {200: n}, f"N SUBSCRIBEs answered: {w.status}")
            rss1 = rss_bytes(pid)
            log(f"  N={n}: pending in {t_setup:.2f} s, RSS {rss0 // 1024} -> {rss1 // 1024} KiB; "
                f"settling {args.settle} s")
            await asyncio.sleep(args.settle)
            rss2 = rss_bytes(pid)
            w.status = {}
            await w.subscribe(n, "q")
            await x.wait_count("presence", 2 * n, 60, "2N subscribe requests")
            check(w.status == {200: n}, f"second N SUBSCRIBEs answered: {w.status}")
            log(f"  second batch of {n}: settling {args.settle} s")
            await asyncio.sleep(args.settle)
            rss3 = rss_bytes(pid)
        finally:
            w.transport.close()
        return dict(pending=n, setup_s=t_setup, setup_cpu_us_per_subscription=cpu_setup / 1000 / n,
                    rss_before=rss0, rss_set_up=rss1, rss_settled=rss2, rss_second=rss3,
                    settle_s=args.settle, bytes_per_pending=(rss2 - rss0) / n,
                    bytes_per_pending_marginal=(rss3 - rss2) / n)


def gateway_conf(workdir, xmpp_port, sip_port, peer_port, max_watchers, sip_attrs=""):
    xmpp = types.SimpleNamespace(component_port=xmpp_port)
    env = types.SimpleNamespace(workdir=workdir, gw_sip_port=sip_port, peer_sip_port=peer_port,
                                gw_msrp_port=free_port(), xmpp=xmpp, prosody=xmpp)
    im = (f'<im max-body="8k" delivery-wait="2s"/>\n'
          f'  <presence expires="3600s" max-expires="3600s" max-watchers="{max_watchers}" '
          f'max-per-peer="1000000" max-per-watcher="1000000"/>')
    return env, harness.gateway_xml(env, im=im, log_level="notice", sip_attrs=sip_attrs)


class Run:
    """One gateway with its two fake peers."""

    def __init__(self, args, workdir, initial):
        self.args = args
        self.workdir = workdir
        self.initial = initial

    async def __aenter__(self):
        self.xmpp = FakeXmpp()
        await self.xmpp.start()
        self.sip_port, peer_port = free_port(), free_port()
        self.notifier = Notifier(peer_port)
        self.notifier.initial = self.initial
        await self.notifier.start()
        env, xml = gateway_conf(self.workdir, self.xmpp.port, self.sip_port, peer_port,
                                max(100000, self.args.max_w), self.args.sip_attrs)
        # bench/authz.py: <authorization> for the peer
        xml = xml.replace("</peer>", getattr(self.args, "peer_extra", "") + "</peer>", 1)
        self.gw = harness.Gateway(env, self.args.gateway, xml)
        await self.gw.start()
        await asyncio.wait_for(self.xmpp.connected.wait(), 5)
        self.pid = self.gw.proc.pid
        await asyncio.sleep(0.5)
        return self

    async def __aexit__(self, *exc):
        if self.args.hold:
            print(f"holding: gateway pid {self.pid}, log {self.gw.logpath}", flush=True)
            await asyncio.sleep(self.args.hold)
        problem = None
        try:
            await self.gw.stop(sig=signal.SIGTERM, timeout=30)
            if self.gw.exit_code not in (0, None):
                problem = f"gateway exited with status {self.gw.exit_code}:\n{self.gw.log()[-3000:]}"
        except TestFailure as e:
            problem = str(e)
        finally:
            self.notifier.close()
            await self.xmpp.stop()
        if problem and exc[0] is None:
            raise TestFailure(problem)

    async def barrier(self, timeout):
        """Returns once the gateway has read everything sent before: a subscribe from a foreign
        domain is refused with an error, in stream order."""
        n = self.xmpp.counts["error"] + 1
        await self.xmpp.send(b"<presence type='subscribe' from='barrier@elsewhere.example' "
                             b"to='bob@sip.example'/>")
        return await self.xmpp.wait_count("error", n, timeout, "the barrier's error reply")


BOB = f"sip:bob@{SIP_DOMAIN}"


def change_doc(entity, k):
    return pidf(entity, basic="closed" if k % 2 else "open", note=f"change {k}")


async def fanout_run(args, workdir, w, k):
    """W watchers of bob@sip.example, approved together, then k changes."""
    log = args.log
    async with Run(args, workdir, lambda p: ("pending", None)) as run:
        x, sip, pid = run.xmpp, run.notifier, run.pid
        rss0 = rss_bytes(pid)
        cpu0, t0 = cpu_ns(pid), time.perf_counter()
        await x.send(subscribes("u{:05d}@" + XMPP_DOMAIN, "bob@" + SIP_DOMAIN, w))
        await run.barrier(60)
        t_read = time.perf_counter() - t0
        await harness.wait_for(lambda: sip.subscribes >= 1 and not sip.inflight, 10,
                               "the SUBSCRIBE and the NOTIFY pending")
        cpu_sub = cpu_ns(pid) - cpu0
        check(x.counts["presence"] == 1, f"nothing but the barrier's error before approval: {x.counts}")
        rss_pending = rss_bytes(pid)

        # approval: NOTIFY active with the first document
        base = dict(x.counts)
        cpu0 = cpu_ns(pid)
        t_ap, n_ap, futs = sip.change(BOB, change_doc(BOB, 0))
        t_ap_last = await x.wait_count("tuple", base["tuple"] + w, 60, "the approval fan-out")
        await x.wait_count("subscribed", base["subscribed"] + w, 60, "W subscribed")
        check(all(s == 200 for s in await asyncio.gather(*futs)), "NOTIFY active answered 200")
        await x.quiet(0.3)
        cpu_ap = cpu_ns(pid) - cpu0
        ap = {n: x.counts[n] - base[n] for n in x.counts}
        rss_approved = rss_bytes(pid)

        # k changes, one at a time
        rates, cpus, notifies, lat = [], [], [], []
        for i in range(1, k + 1):
            want = x.counts["presence"] + w
            c0 = cpu_ns(pid)
            t_sent, n, futs = sip.change(BOB, change_doc(BOB, i))
            t_last = await x.wait_count("presence", want, 60, f"fan-out of change {i}")
            statuses = await asyncio.gather(*futs)
            await asyncio.sleep(0.005)
            c1 = cpu_ns(pid)
            check(all(s == 200 for s in statuses), f"NOTIFY {i} answered {statuses}")
            rates.append(w / (t_last - t_sent))
            lat.append(t_last - t_sent)
            cpus.append(c1 - c0)
            notifies.append(n)
        await x.quiet(0.3)
        extra = x.counts["presence"] - (base["presence"] + ap["presence"] + k * w)
        check(extra == 0, f"{k} changes x {w} watchers: {extra} stanzas more than one per watcher and change")
        rss_after = rss_bytes(pid)
        res = dict(
            watchers=w, changes=k,
            sip_dialogs=sip.subscribes, sip_refreshes=sip.refreshes,
            notifies_per_change=statistics.mean(notifies) if notifies else None,
            notify_retransmits=sip.retransmits,
            subscribe_read_s=t_read, subscribe_cpu_us_per_watcher=cpu_sub / 1000 / w,
            approval_stanzas_per_watcher=ap["presence"] / w,
            approval_unavailable_per_watcher=ap["unavailable"] / w,
            approval_s=t_ap_last - t_ap, approval_cpu_us_per_watcher=cpu_ap / 1000 / w,
            rate_median=statistics.median(rates) if rates else None,
            rate_best=max(rates) if rates else None,
            fanout_ms_median=statistics.median(lat) * 1000 if lat else None,
            cpu_us_per_change=statistics.median(cpus) / 1000 if cpus else None,
            cpu_us_per_stanza=sum(cpus) / 1000 / (k * w) if k else None,
            rss_before=rss0, rss_pending=rss_pending, rss_approved=rss_approved, rss_after=rss_after,
            bytes_per_watcher=(rss_approved - rss0) / w,
        )
        log(f"  W={w}: {res['sip_dialogs']} dialog(s), approval {res['approval_s'] * 1000:.1f} ms, "
            f"fan-out median {res['fanout_ms_median']:.2f} ms, RSS {rss0 // 1024} -> "
            f"{rss_approved // 1024} -> {rss_after // 1024} KiB")
        return res


async def dialogs_run(args, workdir, d, per_watcher):
    """D presentities b0000.. with one watcher each, approved at once by the notifier."""
    log = args.log
    initial = lambda p: ("active", pidf(p, note="here"))  # noqa: E731
    async with Run(args, workdir, initial) as run:
        x, sip, pid = run.xmpp, run.notifier, run.pid
        rss0 = rss_bytes(pid)
        cpu0, t0 = cpu_ns(pid), time.perf_counter()
        await x.send(subscribes("d{:05d}@" + XMPP_DOMAIN, "b{:05d}@" + SIP_DOMAIN, d))
        await run.barrier(60)
        await x.wait_count("subscribed", d, 120, "D subscribed")
        await x.wait_count("tuple", d, 120, "D first documents")
        await harness.wait_for(lambda: sip.subscribes >= d and not sip.inflight, 60,
                               "D dialogs set up")
        t_setup = time.perf_counter() - t0
        await x.quiet(0.3)
        cpu_setup = cpu_ns(pid) - cpu0
        rss1 = rss_bytes(pid)
        log(f"  D={d}: {sip.subscribes} dialogs in {t_setup:.2f} s, RSS {rss0 // 1024} -> "
            f"{rss1 // 1024} KiB; settling {args.settle} s (SIP keeps finished transactions 32 s)")
        await asyncio.sleep(args.settle)
        rss2 = rss_bytes(pid)
        check(sip.subscribes == d, f"{d} presentities, {sip.subscribes} SUBSCRIBE dialogs")
        # a second batch of the same size: the memory a gateway already holding dialogs needs
        # for more (the first batch's freed transaction memory is reused), i.e. the slope
        await x.send(subscribes("e{:05d}@" + XMPP_DOMAIN, "c{:05d}@" + SIP_DOMAIN, d))
        await run.barrier(60)
        await x.wait_count("subscribed", 2 * d, 120, "2D subscribed")
        await harness.wait_for(lambda: sip.subscribes >= 2 * d and not sip.inflight, 60,
                               "2D dialogs set up")
        await x.quiet(0.3)
        log(f"  second batch of {d}: RSS {rss_bytes(pid) // 1024} KiB; settling {args.settle} s")
        await asyncio.sleep(args.settle)
        rss3 = rss_bytes(pid)
        rss_trimmed = await malloc_trim(pid) if args.trim else None
        total = (rss2 - rss0) / d
        return dict(dialogs=d, sip_dialogs=sip.subscribes // 2, setup_s=t_setup,
                    setup_cpu_us_per_dialog=cpu_setup / 1000 / d,
                    rss_before=rss0, rss_set_up=rss1, rss_settled=rss2, settle_s=args.settle,
                    rss_trimmed=rss_trimmed,
                    bytes_per_dialog_trimmed=(rss_trimmed - rss0) / d - per_watcher if rss_trimmed else None,
                    bytes_per_presentity=total, bytes_per_watcher_subtracted=per_watcher,
                    bytes_per_dialog=total - per_watcher, rss_second=rss3,
                    bytes_per_dialog_marginal=(rss3 - rss2) / d - per_watcher)


async def malloc_trim(pid):
    """Diagnostic (--trim): RSS after the gateway's malloc gave its free pages back (gdb calls
    malloc_trim(0) in the process), i.e. live memory without the allocator's fragmentation."""
    proc = await asyncio.create_subprocess_exec(
        "gdb", "-p", str(pid), "-batch", "-nx", "-ex", "call (int)malloc_trim(0)",
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
    if await proc.wait() != 0:
        return None
    return rss_bytes(pid)


def verdict(ok):
    return "PASS" if ok else "MISS"


def report(results, dres, args):
    big = results[-1]
    rows = []
    lines = []
    hdr = f"{'W watchers':>11} {'dialogs':>8} {'NOTIFY/chg':>10} {'stanzas/s':>11} {'fan-out ms':>10} " \
          f"{'CPU us/chg':>10} {'CPU us/stz':>10} {'approval stz/w':>14} {'RSS B/watcher':>13}"
    lines.append(hdr)
    for r in results:
        lines.append(f"{r['watchers']:>11} {r['sip_dialogs']:>8} {r['notifies_per_change']:>10.2f} "
                     f"{r['rate_median']:>11,.0f} {r['fanout_ms_median']:>10.2f} "
                     f"{r['cpu_us_per_change']:>10.1f} {r['cpu_us_per_stanza']:>10.2f} "
                     f"{r['approval_stanzas_per_watcher']:>14.2f} {r['bytes_per_watcher']:>13,.0f}")
    lines.append("(stanzas/s = W / (last <presence> received - NOTIFY sent): at small W this is the latency of "
                 "one NOTIFY, not a rate)")
    small = results[0]
    if len(results) > 1 and big["watchers"] > small["watchers"]:
        marginal = (big["cpu_us_per_change"] - small["cpu_us_per_change"]) / (big["watchers"] - small["watchers"])
        lines.append(f"marginal CPU per extra watcher (W={big['watchers']} vs W={small['watchers']}): "
                     f"{marginal:.2f} us/stanza, i.e. {1e6 / marginal if marginal > 0 else float('inf'):,.0f} "
                     f"stanzas per CPU second")
    pres_ = args.pending_result
    if pres_:
        lines.append(f"N={pres_['pending']} pending SIP watcher subscriptions: RSS "
                     f"{pres_['rss_before'] // 1024} -> {pres_['rss_settled'] // 1024} KiB after "
                     f"{pres_['settle_s']} s: {pres_['bytes_per_pending']:,.0f} B each; the next "
                     f"{pres_['pending']}: {pres_['bytes_per_pending_marginal']:,.0f} B each; set-up "
                     f"{pres_['setup_cpu_us_per_subscription']:.0f} us CPU each")
        rows.append((f"resident bytes per pending SIP watcher (first {pres_['pending']})",
                     f"<= {TARGET_PENDING_BYTES}", f"{pres_['bytes_per_pending']:,.0f}",
                     pres_["bytes_per_pending"] <= TARGET_PENDING_BYTES))
    if dres:
        lines.append(f"D={dres['dialogs']} presentities x 1 watcher: {dres['sip_dialogs']} SIP dialogs, "
                     f"RSS {dres['rss_before'] // 1024} -> {dres['rss_set_up'] // 1024} KiB set up -> "
                     f"{dres['rss_settled'] // 1024} KiB after {dres['settle_s']} s; "
                     f"{dres['bytes_per_presentity']:,.0f} B per presentity - "
                     f"{dres['bytes_per_watcher_subtracted']:,.0f} B per watcher = "
                     f"{dres['bytes_per_dialog']:,.0f} B per SIP dialog")
        lines.append(f"second batch of {dres['dialogs']}: RSS {dres['rss_settled'] // 1024} -> "
                     f"{dres['rss_second'] // 1024} KiB after {dres['settle_s']} s: "
                     f"{dres['bytes_per_dialog_marginal']:,.0f} B per further SIP dialog")
        if dres.get("rss_trimmed"):
            lines.append(f"  diagnostic: after malloc_trim(0) RSS {dres['rss_trimmed'] // 1024} KiB, i.e. "
                         f"{dres['bytes_per_dialog_trimmed']:,.0f} B per SIP dialog without the allocator's "
                         f"free pages (not used for the verdict)")

    one_dialog = all(r["sip_dialogs"] == 1 for r in results)
    one_notify = all(r["notifies_per_change"] == 1 for r in results)
    rows.append(("SIP dialogs per presentity, any W", "1",
                 ", ".join(str(r["sip_dialogs"]) for r in results), one_dialog))
    rows.append(("NOTIFYs per change, any W", "1",
                 ", ".join(f"{r['notifies_per_change']:g}" for r in results), one_notify))
    rows.append((f"fan-out stanzas/s (W={big['watchers']}, median of {big['changes']})",
                 f">= {TARGET_RATE:,}", f"{big['rate_median']:,.0f}", big["rate_median"] >= TARGET_RATE))
    rows.append((f"resident bytes per watcher (W={big['watchers']})", f"<= {TARGET_WATCHER_BYTES}",
                 f"{big['bytes_per_watcher']:,.0f}", big["bytes_per_watcher"] <= TARGET_WATCHER_BYTES))
    if dres:
        rows.append((f"resident bytes per SIP dialog (first {dres['dialogs']})", f"<= {TARGET_DIALOG_BYTES}",
                     f"{dres['bytes_per_dialog']:,.0f}", dres["bytes_per_dialog"] <= TARGET_DIALOG_BYTES))
        rows.append((f"resident bytes per SIP dialog (next {dres['dialogs']})", f"<= {TARGET_DIALOG_BYTES}",
                     f"{dres['bytes_per_dialog_marginal']:,.0f}",
                     dres["bytes_per_dialog_marginal"] <= TARGET_DIALOG_BYTES))
    lines.append("")
    lines.append(f"{'target':<48} {'wanted':>10} {'measured':>20}  verdict")
    for what, want, got, ok in rows:
        lines.append(f"{what:<48} {want:>10} {got:>20}  {verdict(ok)}")
    return lines, rows


async def main_async(args):
    workdir = tempfile.mkdtemp(prefix="simplegw-bench-presence-")
    out = {"gateway": args.gateway, "watchers": [], "dialogs": None}
    try:
        for w in args.watchers:
            k = args.changes or max(10, min(200, 200_000 // w))
            args.log(f"fan-out: {w} watcher(s), {k} changes")
            out["watchers"].append(await fanout_run(args, workdir, w, k))
        big = max(out["watchers"], key=lambda r: r["watchers"])
        # below 1000 watchers the per-watcher figure is page-size noise: nothing is subtracted
        per_watcher = big["bytes_per_watcher"] if big["watchers"] >= 1000 else 0.0
        if args.dialogs:
            args.log(f"dialogs: {args.dialogs} presentities with one watcher each")
            out["dialogs"] = await dialogs_run(args, workdir, args.dialogs, per_watcher)
        if args.pending:
            args.log(f"pending: {args.pending} SIP watchers nobody answers")
            out["pending"] = args.pending_result = await pending_run(args, workdir, args.pending)
    except TestFailure as e:
        print(f"presence benchmark failed: {e}", file=sys.stderr)
        return 1
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    lines, rows = report(out["watchers"], out["dialogs"], args)
    out["targets"] = [dict(target=w, wanted=want, measured=got, verdict=verdict(ok))
                      for w, want, got, ok in rows]
    if args.json:
        print(json.dumps(out, indent=2))
    else:
        print("\n".join(lines))
    return 0 if all(ok for *_, ok in rows) else 2


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--gateway", required=True)
    ap.add_argument("--watchers", default="1,100,10000",
                    help="comma-separated watcher counts W, each against a fresh gateway (default 1,100,10000)")
    ap.add_argument("--changes", type=int, default=0,
                    help="presence changes per W (default 200000/W, within 10..200)")
    ap.add_argument("--dialogs", type=int, default=1000,
                    help="presentities (SIP dialogs) for the per-dialog memory figure; 0 skips it")
    ap.add_argument("--pending", type=int, default=2000,
                    help="SIP watcher subscriptions left pending, for the memory of each; 0 skips it")
    ap.add_argument("--settle", type=int, default=35,
                    help="seconds before the per-dialog memory reading (SIP keeps completed UDP "
                         "transactions 64*T1 = 32 s)")
    ap.add_argument("--trim", action="store_true",
                    help="diagnostic: also read the per-dialog RSS after calling malloc_trim(0) in the "
                         "gateway through gdb (live memory without the allocator's retained free pages)")
    ap.add_argument("--sip-attrs", default="",
                    help="extra attributes of the gateway's <sip> element, for experiments (e.g. 't1=\"50ms\"')")
    ap.add_argument("--json", action="store_true", help="print the figures as JSON instead of a table")
    ap.add_argument("--keep", action="store_true", help="keep the work directory (gateway logs)")
    ap.add_argument("--hold", type=int, default=0,
                    help="keep each gateway running this long before stopping it (debugging, profiling)")
    args = ap.parse_args()
    args.gateway = os.path.abspath(args.gateway)
    args.watchers = [int(w) for w in args.watchers.split(",") if w]
    args.max_w = max(args.watchers)
    args.pending_result = None
    progress = sys.stderr if args.json else sys.stdout
    args.log = lambda s: print(s, file=progress, flush=True)
    return asyncio.run(main_async(args))


if __name__ == "__main__":
    sys.exit(main())
