#!/usr/bin/python3
"""groupchat.py - multi-party chat through the gateway (mapping/groupchat.c): fan-out of one
message to N bridged occupants of one room, the gateway's CPU per delivered copy, and its memory
per bridged occupant and per room, both ways:

  muc    SIP users in an XMPP MUC room (RFC 7702 sections 6-7).  Prosody's own MUC
         (conference.xmpp.example) holds room "bench"; an XMPP user, "poster", creates it and
         later posts; N SIP users each INVITE sip:bench@conference.xmpp.example with an MSRP
         chat offer, and the gateway, their conference focus, joins the MUC in each one's name.
         A message of the poster: Prosody sends N copies over the component link, the gateway
         sends N MSRP SENDs.
  focus  XMPP users in a SIP conference room (RFC 7702 sections 4-5).  N XMPP users of
         Prosody join bench@sip.example/nNNNNN; the gateway INVITEs the focus (MSRP, NICKNAME,
         conference SUBSCRIBE) per user.  A message of the focus's participant "Poster": the
         focus sends N MSRP SENDs, the gateway N groupchat stanzas, Prosody N deliveries.

The SIP side is bench/groupchat_peers.py (SipUsers, Focus: lean SIP + MSRP in this process),
the XMPP side raw c2s connections (XmppClient below: SASL PLAIN over plain TCP, bind, presence)
to a Prosody of its own with quiet logs (tests/e2e/harness.py's configuration otherwise, plus
muc_room_cache_size).  Per direction and N, with a fresh Prosody and gateway:

  - joins, J at a time, in two halves; after each half, --settle seconds (finished UDP SIP
    transactions live 64 x T1 = 32 s) and the gateway's RSS: bytes per bridged occupant, for
    the first N/2 and for the next N/2 (what an occupant costs a gateway already holding some);
    join time and the gateway's CPU per join;
  - the gateway's idle CPU over --idle seconds, with everyone joined (the baseline);
  - saturation: M numbered messages (--copies / N, at least 20), a window of --window in
    flight, a message done when all N copies have arrived (at the SIP users, or at the XMPP
    users' connections): copies per second from the first post to the last copy, the gateway's
    CPU (every thread, schedstat, as bench/presence.py) over that window less the idle
    baseline, per copy; the CPU use of the gateway, Prosody, this process and the machine
    over the window (on 2 cores the one near 100 %, or a machine near 200 %, is the limit),
    and the gateway's peak RSS (its queues);
  - fixed rate: --fixed-rate copies per second (N copies per message, --fixed-rate / N
    messages per second) for --fixed-seconds: the gateway's CPU per copy at a load that
    leaves the machine room (what a deployment sees; saturation shares 2 cores three ways);
  - a fresh gateway (a heap after a fan-out would hide what rooms cost) and --rooms users
    (default N/2) in a room each: RSS per one-occupant room, against the first N/2 occupants
    of one room (also on a fresh gateway): the difference is what a room itself costs;
  - at each gateway's shutdown, the BYEs (and in focus, the un-SUBSCRIBEs) the peers got.

The focus (direction focus) talks SIP over TCP by default: the full conference-info of a large
room (one <user> per participant) does not fit a UDP datagram.  Over TCP, the gateway's SIP
stack closes the connection when more than <sip max-message> bytes are waiting to be read on it
while a message is half read (Sofia-SIP's tport_recv_stream fails with ENOBUFS, logged only at
debug level as "nta_agent: tport: No buffer space available"), and every NOTIFY queued behind
is lost; so the focus leaves at most --focus-window bytes of conference-info unanswered, and the
gateway file sets max-message="1M" (the largest allowed).  --focus-window 0 shows the loss.

Usage: /usr/bin/python3 bench/groupchat.py --gateway build/release/simplegw --occupants 100,1000
       [--directions muc,focus] [--copies 100000] [--window 8] [--fixed-rate 5000]
       [--fixed-seconds 10] [--rooms N/2] [--settle 35] [--idle 5] [--join-window 20]
       [--focus-transport tcp|udp] [--focus-window 262144] [--notify-interval 1]
       [--confinfo rich|compact] [--gateway-log-level notice] [--json] [--json-file F] [--keep]
Exit status: 0 every run completed, 1 a run failed (its error is printed and in the JSON).
"""

import argparse
import asyncio
import base64
import json
import math
import os
import re
import shutil
import sys
import tempfile
import time
import traceback
import types

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "tests", "e2e"))
import harness  # noqa: E402
from harness import MUC_DOMAIN, PASSWORD, SIP_DOMAIN, XMPP_DOMAIN, free_port  # noqa: E402
from presence import cpu_ns, rss_bytes  # noqa: E402
from groupchat_peers import Counter, Focus, SipUsers, token  # noqa: E402

ROOM = "bench"
TARGET_OCCUPANT_BYTES = 4096        # the goal per bridged occupant
OTHER_LOAD_PCT = 15                 # % of a core taken by other processes that voids a window
BODY = "hello room, this is a benchmark line"
NS_MUC = "http://jabber.org/protocol/muc"


def log(msg):
    print(msg, file=sys.stderr, flush=True)


# ------------------------------------------------------------------------------- Prosody

class BenchProsody(harness.Prosody):
    """The harness's Prosody with warnings-only logging (its debug log would be most of
    Prosody's work here) and room for many live rooms (muc_room_cache_size: beyond it Prosody
    swaps rooms to disk)."""

    def write_config(self):
        super().write_config()
        path = os.path.join(self.dir, "prosody.cfg.lua")
        with open(path) as f:
            cfg = f.read()
        cfg = re.sub(r'log = \{ debug = "([^"]+)" \}', r'log = { warn = "\1" }', cfg)
        cfg += "  muc_room_cache_size = 100000\n"
        with open(path, "w") as f:
            f.write(cfg)


def prosody_pid(prosody):
    return prosody.proc.pid if prosody.proc else None


# ------------------------------------------------------------------------------- XMPP clients

STREAM = (f"<?xml version='1.0'?><stream:stream to='{XMPP_DOMAIN}' xmlns='jabber:client' "
          "xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>").encode()
SELF_110 = re.compile(rb"code=['\"]110['\"]")
ERROR_TYPE = re.compile(rb"<presence[^>]*type=['\"]error['\"]")
CREATED_201 = re.compile(rb"code=['\"]201['\"]")


class XmppClient(asyncio.Protocol):
    """One c2s connection: login, then count what arrives (message tokens, presences) and
    notice the answer to the one room join in flight (self-presence 110, or an error)."""

    def __init__(self, user, counter, resource="bench"):
        self.user = user
        self.resource = resource
        self.counter = counter
        self.transport = None
        self.state = "features"
        self.buf = b""
        self.tail = b""
        self.scan_tail = b""
        self.ready = asyncio.get_running_loop().create_future()
        self.join_fut = None
        self.join_created = False
        self.presences = 0
        self.errors = []

    def connection_made(self, transport):
        self.transport = transport
        transport.write(STREAM)

    def connection_lost(self, exc):
        if not self.ready.done():
            self.ready.set_exception(ConnectionError(f"{self.user}: connection lost at {self.state}"))
        if self.join_fut and not self.join_fut.done():
            self.join_fut.set_result("lost")

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.transport.write(data)

    def data_received(self, data):
        if self.state == "ready":
            self._ready_data(data)
            return
        self.buf += data
        if self.state == "features" and b"</stream:features>" in self.buf:
            self.buf = b""
            creds = base64.b64encode(f"\0{self.user}\0{PASSWORD}".encode()).decode()
            self.send(f"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>{creds}</auth>")
            self.state = "auth"
        elif self.state == "auth" and (b"<success" in self.buf or b"<failure" in self.buf):
            if b"<failure" in self.buf:
                self.ready.set_exception(PermissionError(f"{self.user}: {self.buf[:300]!r}"))
                self.transport.close()
                return
            self.buf = b""
            self.send(STREAM)
            self.state = "features2"
        elif self.state == "features2" and b"</stream:features>" in self.buf:
            self.buf = b""
            self.send(f"<iq type='set' id='bind'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>"
                      f"<resource>{self.resource}</resource></bind></iq>")
            self.state = "bind"
        elif self.state == "bind" and b"</iq>" in self.buf:
            if b"<jid>" not in self.buf:
                self.ready.set_exception(RuntimeError(f"{self.user}: bind {self.buf[:300]!r}"))
                return
            self.buf = b""
            self.send("<presence/>")
            self.state = "ready"
            self.ready.set_result(True)

    def _ready_data(self, data):
        self.tail = self.counter.add_stream(self.tail, data)
        self.presences += data.count(b"<presence")
        if self.join_fut and not self.join_fut.done():
            scan = self.scan_tail + data
            if CREATED_201.search(scan):
                self.join_created = True
            if SELF_110.search(scan):
                self.join_fut.set_result("joined")
            elif ERROR_TYPE.search(scan):
                m = re.search(rb"<error.*?</error>", scan, re.S)
                self.errors.append((m.group(0) if m else scan[-300:]).decode("utf-8", "replace"))
                self.join_fut.set_result("error")
        self.scan_tail = data[-64:]

    async def join(self, room_jid, nick, timeout):
        """A MUC join; "joined", "error" or "timeout"."""
        self.join_fut = asyncio.get_running_loop().create_future()
        self.join_created = False
        self.scan_tail = b""
        self.send(f"<presence to='{room_jid}/{nick}'><x xmlns='{NS_MUC}'/></presence>")
        try:
            return await asyncio.wait_for(self.join_fut, timeout)
        except asyncio.TimeoutError:
            return "timeout"


async def xmpp_login(port, user, counter, resource="bench"):
    loop = asyncio.get_running_loop()
    _, c = await loop.create_connection(lambda: XmppClient(user, counter, resource), "127.0.0.1", port)
    await asyncio.wait_for(c.ready, 30)
    return c


async def gather_window(coros, window):
    """Runs coroutine factories at most `window` at a time; their results in order."""
    sem = asyncio.Semaphore(window)
    results = [None] * len(coros)

    async def one(i, make):
        async with sem:
            results[i] = await make()

    await asyncio.gather(*(one(i, c) for i, c in enumerate(coros)))
    return results


# ------------------------------------------------------------------------------- the gateway

def gateway_xml(env, direction, args):
    sessions = (f'<sessions msrp-port="{env.gw_msrp_port}" max-total="100000" max-per-user="1000" '
                f'max-queued="1M"/>')
    muc = f'<muc service="{MUC_DOMAIN}"/>' if direction == "muc" else ""
    groupchat = (f'<groupchat max-total="100000" max-per-room="100000" max-per-user="1000" '
                 f'max-rooms="100000" join-timeout="120s">{muc}</groupchat>')
    peer = harness.default_peer(env, extra='groupchat="yes"')
    if direction == "focus" and args.focus_transport == "tcp":
        peer = peer.replace('transport="udp"', 'transport="tcp"')
    xml = harness.gateway_xml(env, peers=[peer], sessions=sessions, log_level=args.gateway_log_level,
                              sip_attrs='max-message="1M" max-connections-per-source="100000" '
                                        'max-connections="100000"')
    return xml.replace("</gateway>", f"  {groupchat}\n</gateway>")


LOG_LINE = re.compile(r"^\S+ (error|warning|notice) (\S+): (.*)$", re.M)
# notices every run has: start-up, the link, shutdown
ROUTINE = re.compile(r"^notice (sip_stack_new|sessions_new|gw_run|presence_privilege|"
                     r"pager_server_identity|gw_signal_cb|gw_shutdown|gw_link_stopped|"
                     r"link_on_stanza: component \S+: connected)")


def log_summary(text, limit=12):
    """The gateway's notices, warnings and errors, alike lines counted once (numbers, ids and
    addresses masked)."""
    counts = {}
    for level, func, msg in LOG_LINE.findall(text):
        key = f"{level} {func}: " + re.sub(r"\b[0-9a-f]{6,}\b|\d+", "#", msg)[:160]
        if ROUTINE.match(key):
            continue
        counts[key] = counts.get(key, 0) + 1
    return sorted(counts.items(), key=lambda kv: -kv[1])[:limit]


class Sampler:
    """The gateway's RSS every 0.2 s while running: its peak."""

    def __init__(self, pid):
        self.pid = pid
        self.peak = 0
        self.task = None

    def __enter__(self):
        self.peak = rss_bytes(self.pid)
        self.task = asyncio.ensure_future(self._run())
        return self

    async def _run(self):
        while True:
            try:
                self.peak = max(self.peak, rss_bytes(self.pid))
            except OSError:
                return
            await asyncio.sleep(0.2)

    def __exit__(self, *exc):
        self.task.cancel()


def machine_busy():
    """ns of CPU time the whole machine spent not idle (all cores), from /proc/stat."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    idle = v[3] + v[4]
    return (sum(v[:8]) - idle) * 1_000_000_000 // os.sysconf("SC_CLK_TCK")


def speed_probe():
    """Milliseconds of CPU a fixed piece of Python work takes here and now: on this shared
    machine the same run moved by up to 2x between hours, and this says whether the machine,
    not the gateway, was slower."""
    t0 = time.process_time()
    x = 0
    for i in range(300000):
        x += i * i % 7
    return (time.process_time() - t0) * 1000


def proc_cpu_ns():
    t = os.times()
    return int((t.user + t.system) * 1e9)


# ------------------------------------------------------------------------------- one run

class Run:
    """One direction and N: Prosody, the gateway, the peers; phases as in the docstring."""

    def __init__(self, args, direction, n):
        self.args = args
        self.direction = direction
        self.n = n
        self.workdir = tempfile.mkdtemp(prefix=f"simplegw-bench-groupchat-{direction}-{n}-")
        self.res = dict(direction=direction, occupants=n)
        self.counter = Counter()
        self.gw = self.prosody = self.users = self.focus = None
        self.clients = []
        self.poster = None

    @property
    def pid(self):
        return self.gw.proc.pid

    def alive(self):
        return self.gw.proc.returncode is None

    async def start(self):
        a = self.args
        users = ["poster"] if self.direction == "muc" else [f"u{i:05d}" for i in range(self.n)]
        self.prosody = BenchProsody(self.workdir, components=(SIP_DOMAIN,), users=users)
        await self.prosody.start()
        env = types.SimpleNamespace(workdir=self.workdir, gw_sip_port=free_port(),
                                    gw_msrp_port=free_port(), xmpp=self.prosody,
                                    prosody=self.prosody)
        if self.direction == "muc":
            self.users = await SipUsers(env.gw_sip_port, SIP_DOMAIN).start()
            env.peer_sip_port = self.users.port
            self.counter = self.users.counter
        else:
            self.focus = await Focus(SIP_DOMAIN, transport=a.focus_transport,
                                     notify_interval=a.notify_interval,
                                     rich=a.confinfo == "rich",
                                     window_bytes=a.focus_window).start()
            env.peer_sip_port = self.focus.port
        self.env, self.gw_xml = env, gateway_xml(env, self.direction, a)
        self.gw = harness.Gateway(env, a.gateway, self.gw_xml)
        await self.gw.start()
        if self.direction == "muc":
            self.poster = await xmpp_login(self.prosody.c2s_port, "poster", Counter())
            st = await self.poster.join(f"{ROOM}@{MUC_DOMAIN}", "poster", 15)
            if st != "joined":
                raise RuntimeError(f"the poster could not create the room: {st} {self.poster.errors}")
            if self.poster.join_created:
                # an instant room (XEP-0045 10.1.2): the default configuration accepted
                self.poster.send(f"<iq type='set' id='cfg' to='{ROOM}@{MUC_DOMAIN}'><query "
                                 f"xmlns='{NS_MUC}#owner'><x xmlns='jabber:x:data' type='submit'/>"
                                 f"</query></iq>")
                await asyncio.sleep(0.5)
        else:
            t0 = time.perf_counter()
            self.clients = await gather_window(
                [lambda i=i: xmpp_login(self.prosody.c2s_port, f"u{i:05d}", self.counter)
                 for i in range(self.n)], 50)
            log(f"  {self.n} XMPP users logged in to Prosody in {time.perf_counter() - t0:.1f} s")

    async def stop_gateway(self):
        """SIGTERM; its exit status, how long the shutdown took and its log's notable lines
        (the first gateway's as gateway_*, the rooms phase's as rooms_gateway_*)."""
        a, gw = self.res, self.gw
        self.gw = None
        if not gw or not gw.proc:
            return
        pre = "rooms_" if "gateway_exit" in a else ""
        peer = self.users or self.focus
        if peer:
            byes0, unsub0, legs0 = peer.byes, getattr(peer, "unsubscribes", 0), self.live_legs()
            subs0 = getattr(peer, "subscribes", 0)
        t0 = time.perf_counter()
        try:
            await gw.stop(timeout=60)
        except harness.TestFailure as e:
            a[pre + "gateway_stop_error"] = str(e)
        a[pre + "gateway_exit"] = gw.exit_code
        a[pre + "gateway_stop_s"] = time.perf_counter() - t0
        if peer:
            await asyncio.sleep(2.0)    # the last BYEs and un-SUBSCRIBEs (UDP: retransmitted)
            a[pre + "legs_at_stop"] = legs0
            a[pre + "byes_at_stop"] = peer.byes - byes0
            a[pre + "legs_left_without_bye"] = self.live_legs()
            if self.focus:
                a[pre + "unsubscribes_at_stop"] = peer.unsubscribes - unsub0
                a[pre + "subscribes_at_stop"] = peer.subscribes - subs0
        a[pre + "gateway_log_summary"] = log_summary(gw.log())
        a[pre + "gateway_log"] = gw.logpath
        # the gateway is gone, and its calls with it, BYE or not
        if self.focus:
            self.focus.legs.clear()
            for room in self.focus.rooms.values():
                room.legs = []
        if self.users:
            for leg in self.users.legs.values():
                leg.bye = True

    def live_legs(self):
        """Legs the gateway had up before its shutdown: what its BYEs should match."""
        if self.users:
            return sum(1 for leg in self.users.legs.values() if leg.status == 200 and not leg.bye)
        return len(self.focus.legs)

    async def stop(self):
        await self.stop_gateway()
        for c in self.clients + ([self.poster] if self.poster else []):
            if c.transport:
                c.transport.close()
        if self.users:
            await self.users.stop()
        if self.focus:
            await self.focus.stop()
        if self.prosody:
            await self.prosody.stop()
        if not self.args.keep:
            shutil.rmtree(self.workdir, ignore_errors=True)

    # ---- joins
    async def join_range(self, lo, hi, room=ROOM, one_room_each=False):
        """Occupants lo..hi-1 join (room, or solo<k> each); (joined, failures by outcome)."""
        a = self.args
        if self.direction == "muc":
            async def one(i):
                r = f"solo{i}" if one_room_each else room
                leg = await self.users.join(i, f"sip:{r}@{MUC_DOMAIN}", timeout=a.join_timeout)
                return "joined" if leg.ok else f"status {leg.status}"
        else:
            async def one(i):
                r = f"solo{i}" if one_room_each else room
                return await self.clients[i].join(f"{r}@{SIP_DOMAIN}", f"n{i:05d}", a.join_timeout)
        outcomes = await gather_window([lambda i=i: one(i) for i in range(lo, hi)], a.join_window)
        fails = {}
        for o in outcomes:
            if o != "joined":
                fails[o] = fails.get(o, 0) + 1
        return outcomes.count("joined"), fails

    async def settle(self):
        await asyncio.sleep(self.args.settle)

    # ---- messages
    def post(self, i):
        if self.direction == "muc":
            self.poster.send(f"<message type='groupchat' to='{ROOM}@{MUC_DOMAIN}' id='m{i}'>"
                             f"<body>{token(i).decode()} {BODY}</body></message>")
        else:
            self.focus.post(ROOM, i, BODY.encode())

    async def fanout(self, first, msgs, expect, rate=None):
        """msgs messages numbered from first: a window of --window in flight, or `rate`
        messages per second; returns (elapsed from the first post to the last copy, copies)."""
        a, c = self.args, self.counter
        base = c.total
        t0 = time.perf_counter()
        if rate:
            for k in range(msgs):
                self.post(first + k)
                await asyncio.sleep(max(0.0, t0 + (k + 1) / rate - time.perf_counter()))
            for k in range(msgs):
                await c.wait(lambda i=first + k: c.per_msg.get(i, 0) >= expect, a.msg_timeout,
                             f"message {first + k}: {expect} copies")
        else:
            sent = done = 0
            while done < msgs:
                while sent < msgs and sent - done < a.window:
                    self.post(first + sent)
                    sent += 1
                i = first + done
                await c.wait(lambda: c.per_msg.get(i, 0) >= expect, a.msg_timeout,
                             f"message {i}: {expect} copies")
                done += 1
        return c.last_time - t0, c.total - base

    async def measure(self, key, first, msgs, expect, idle_ns_per_s, rate=None):
        """One fan-out phase with the CPU of the gateway, Prosody, this process and the whole
        machine over it, and the gateway's peak RSS; results under key_*."""
        pid, ppid, r = self.pid, prosody_pid(self.prosody), self.res
        r[f"{key}_speed_probe_ms"] = speed_probe()
        g0, p0, s0, m0 = cpu_ns(pid), cpu_ns(ppid), proc_cpu_ns(), machine_busy()
        with Sampler(pid) as sampler:
            elapsed, copies = await self.fanout(first, msgs, expect, rate)
        g1, p1, s1, m1 = cpu_ns(pid), cpu_ns(ppid), proc_cpu_ns(), machine_busy()
        gw_ns = g1 - g0 - idle_ns_per_s * elapsed
        r.update({f"{key}_messages": msgs, f"{key}_copies": copies, f"{key}_s": elapsed,
                  f"{key}_copies_per_s": copies / elapsed,
                  f"{key}_gw_cpu_us_per_copy": gw_ns / 1000 / copies,
                  f"{key}_gw_cpu_us_per_copy_raw": (g1 - g0) / 1000 / copies,
                  f"{key}_busy_pct": dict(gateway=(g1 - g0) / elapsed / 1e7,
                                          prosody=(p1 - p0) / elapsed / 1e7,
                                          bench=(s1 - s0) / elapsed / 1e7,
                                          machine=(m1 - m0) / elapsed / 1e7,
                                          other=((m1 - m0) - (g1 - g0) - (p1 - p0) - (s1 - s0))
                                          / elapsed / 1e7),
                  f"{key}_rss_peak": sampler.peak})
        b = r[f"{key}_busy_pct"]
        log(f"  {key}: {copies} copies of {msgs} messages in {elapsed:.2f} s = "
            f"{copies / elapsed:,.0f}/s, gateway {r[key + '_gw_cpu_us_per_copy']:.1f} us/copy; "
            f"busy: gateway {b['gateway']:.0f} %, Prosody {b['prosody']:.0f} %, this process "
            f"{b['bench']:.0f} %, machine {b['machine']:.0f} % of 200 ({b['other']:.0f} % other "
            f"work); speed probe {r[key + '_speed_probe_ms']:.0f} ms")

    async def run(self):
        a, r, n = self.args, self.res, self.n
        await self.start()
        pid = self.pid
        await asyncio.sleep(1.0)
        rss0 = rss_bytes(pid)
        r["rss_start"] = rss0
        half = n // 2
        cpu0, t0 = cpu_ns(pid), time.perf_counter()
        joined1, fails1 = await self.join_range(0, half)
        t_half = time.perf_counter() - t0
        cpu_half = cpu_ns(pid) - cpu0
        log(f"  {joined1}/{half} joined in {t_half:.1f} s {fails1 or ''}")
        await self.settle()
        rss1 = rss_bytes(pid)
        cpu1, t1 = cpu_ns(pid), time.perf_counter()
        joined2, fails2 = await self.join_range(half, n)
        t_rest = time.perf_counter() - t1
        cpu_rest = cpu_ns(pid) - cpu1
        log(f"  {joined2}/{n - half} more joined in {t_rest:.1f} s {fails2 or ''}")
        joined = joined1 + joined2
        fails = dict(fails1)
        for k, v in fails2.items():
            fails[k] = fails.get(k, 0) + v
        r.update(joined=joined, join_failures=fails, join_s=t_half + t_rest,
                 join_s_first_half=t_half, join_s_second_half=t_rest,
                 join_cpu_us=(cpu_half + cpu_rest) / 1000 / max(joined, 1))
        await self.settle()
        if not self.alive():
            raise RuntimeError(f"the gateway exited ({self.gw.proc.returncode}) during the joins")
        rss2 = rss_bytes(pid)
        r.update(rss_joined=rss2, rss_per_occupant_first=(rss1 - rss0) / max(joined1, 1),
                 rss_per_occupant_next=(rss2 - rss1) / max(joined2, 1),
                 rss_per_occupant=(rss2 - rss0) / max(joined, 1))
        if self.direction == "focus":
            f = self.focus
            r.update(focus_invites=f.invites, focus_subscribes=f.subscribes,
                     focus_refreshes=f.refreshes,
                     focus_nicknames=f.nicknames, focus_notifies=f.notifies,
                     focus_notify_bytes=f.notify_bytes, focus_notify_status=dict(f.notify_status),
                     focus_notify_too_big=f.too_big, focus_legs=len(f.rooms[ROOM].legs)
                     if ROOM in f.rooms else 0,
                     xmpp_presences_during_joins=sum(c.presences for c in self.clients))
            expect = r["focus_legs"]
        else:
            expect = joined
        if not expect:
            raise RuntimeError("nobody joined")
        # the path works (one message), then the idle baseline
        await self.fanout(0, 1, expect)
        await asyncio.sleep(1.0)
        c0, w0 = cpu_ns(pid), time.perf_counter()
        await asyncio.sleep(a.idle)
        idle_ns_per_s = (cpu_ns(pid) - c0) / (time.perf_counter() - w0)
        r["idle_cpu_pct"] = idle_ns_per_s / 1e7
        msgs = a.messages or max(20, math.ceil(a.copies / expect))
        r.update(copies_per_message=expect, window=a.window)
        await self.measure("sat", 1, msgs, expect, idle_ns_per_s)
        if a.fixed_rate:
            rate = a.fixed_rate / expect            # messages per second
            fixed_msgs = max(1, round(rate * a.fixed_seconds))
            await asyncio.sleep(1.0)
            await self.measure("fixed", 1 + msgs, fixed_msgs, expect, idle_ns_per_s, rate)
            r["fixed_msgs_per_s"] = rate
        r["rss_after_fanout"] = rss_bytes(pid)
        if self.direction == "focus":
            old = time.monotonic() - 5
            r["focus_notify_unanswered"] = sum(t < old for t in self.focus.unanswered.values())
            r["focus_notify_lost"] = self.focus.notify_lost
            r["focus_notifies_total"] = self.focus.notifies
            r["focus_refreshes_total"] = self.focus.refreshes
            r["focus_notify_status_total"] = dict(self.focus.notify_status)
            r["focus_sip_connections"] = len(self.focus.sip_transports)
            r["focus_sip_closed"] = list(self.focus.sip_closed)
            r["focus_sent_on_closed"] = dict(self.focus.sent_on_closed)
        if self.direction == "muc":
            r["violations"] = list(self.users.violations)
            r["sample_send"] = (self.users.first_send or b"")[:600].decode("utf-8", "replace")
        else:
            r["focus_send_responses"] = dict(self.focus.send_responses)
            r["violations"] = list(self.focus.violations)
        if not self.alive():
            raise RuntimeError(f"the gateway exited ({self.gw.proc.returncode})")
        r["rss_end"] = rss_bytes(pid)
        k = n // 2 if a.rooms < 0 else min(a.rooms, n)
        if k:
            await self.rooms_phase(k)
        return r

    async def rooms_phase(self, k):
        """A fresh gateway (the heap after a fan-out would hide what rooms cost) and k users in
        a room each: RSS per one-occupant room, against rss_per_occupant_first (N/2 occupants
        in one room, also on a fresh gateway): the difference is what a room itself costs."""
        r = self.res
        await self.stop_gateway()
        self.gw = harness.Gateway(self.env, self.args.gateway, self.gw_xml)
        await self.gw.start()
        await asyncio.sleep(1.0)
        pid = self.pid
        rss0 = rss_bytes(pid)
        t0 = time.perf_counter()
        joined, fails = await self.join_range(0, k, one_room_each=True)
        r.update(rooms=k, rooms_joined=joined, rooms_failures=fails,
                 rooms_join_s=time.perf_counter() - t0)
        await self.settle()
        if not self.alive():
            raise RuntimeError(f"the gateway exited ({self.gw.proc.returncode}) in the rooms phase")
        per_room = (rss_bytes(pid) - rss0) / max(joined, 1)
        r.update(rss_per_one_occupant_room=per_room,
                 rss_per_room_itself=per_room - r["rss_per_occupant_first"])
        log(f"  {joined}/{k} one-occupant rooms on a fresh gateway: {per_room:,.0f} B each")


async def main_async(args):
    results = []
    for direction in args.directions.split(","):
        for n in [int(x) for x in args.occupants.split(",")]:
            log(f"== {direction}, N = {n}")
            run = Run(args, direction, n)
            try:
                await run.run()
            except Exception as e:          # noqa: BLE001 - reported, and the next run goes on
                run.res["error"] = f"{type(e).__name__}: {e}"
                log(f"  FAILED: {run.res['error']}")
                if args.keep:
                    traceback.print_exc()
            finally:
                await run.stop()
            for pre in ("", "rooms_"):
                for line, count in run.res.get(pre + "gateway_log_summary", []):
                    log(f"  {pre}gateway log x{count}: {line}")
            if args.keep:
                log(f"  work directory kept: {run.workdir}")
            results.append(run.res)
    return results


def fmt(v, spec=",.0f", none="-"):
    return none if v is None else format(v, spec)


def report(args, results):
    print(f"groupchat: one room of N bridged occupants; saturation = a window of {args.window} "
          f"messages in flight; fixed = {args.fixed_rate:g} copies/s for {args.fixed_seconds:g} s; "
          f"settle {args.settle:g} s; focus SIP over {args.focus_transport}, {args.confinfo} "
          f"conference-info; busy = % of one core over the saturation window")
    print(f"{'direction':>9} {'N':>5} {'joined':>6} {'join s':>7} {'CPU/join':>9} {'copies':>7} "
          f"{'sat copies/s':>12} {'us/copy':>7} {'fixed us/copy':>13} {'busy gw/pros/bench':>18} "
          f"{'B/occ 1st':>9} {'B/occ next':>10} {'B/1-occ room':>12} {'peak RSS':>9}")
    for r in results:
        if "sat_copies" not in r:
            print(f"{r['direction']:>9} {r['occupants']:>5}  FAILED: {r.get('error')}")
            continue
        b = r["sat_busy_pct"]
        busy = f"{b['gateway']:.0f}/{b['prosody']:.0f}/{b['bench']:.0f}"
        print(f"{r['direction']:>9} {r['occupants']:>5} {r['joined']:>6} {r['join_s']:>7.1f} "
              f"{r['join_cpu_us'] / 1000:>7.2f}ms {r['sat_copies']:>7} "
              f"{r['sat_copies_per_s']:>12,.0f} {r['sat_gw_cpu_us_per_copy']:>7.1f} "
              f"{fmt(r.get('fixed_gw_cpu_us_per_copy'), '.1f'):>13} {busy:>18} "
              f"{fmt(r['rss_per_occupant_first']):>9} {fmt(r['rss_per_occupant_next']):>10} "
              f"{fmt(r.get('rss_per_one_occupant_room')):>12} "
              f"{max(r['sat_rss_peak'], r.get('fixed_rss_peak', 0)) / 1048576:>7.1f}MB")
    for r in results:
        tag = f"{r['direction']} N={r['occupants']}"
        if r.get("join_failures"):
            print(f"{tag}: joins failed: {r['join_failures']}")
        if r.get("error"):
            print(f"{tag}: ERROR {r['error']}")
        for pre in ("", "rooms_"):
            if r.get(pre + "gateway_exit") not in (0, None):
                print(f"{tag}: the {pre}gateway exited with status {r[pre + 'gateway_exit']}")
            if r.get(pre + "gateway_stop_error"):
                print(f"{tag}: {r[pre + 'gateway_stop_error']}")
        if "sat_copies" in r:
            b = r["sat_busy_pct"]
            print(f"{tag}: saturation {r['sat_messages']} messages x {r['copies_per_message']} in "
                  f"{r['sat_s']:.1f} s; machine {b['machine']:.0f} % busy of 200; CPU per copy "
                  f"without the idle baseline subtracted {r['sat_gw_cpu_us_per_copy_raw']:.1f} us; "
                  f"speed probe {r['sat_speed_probe_ms']:.0f} ms")
        for key in ("sat", "fixed"):
            b = r.get(f"{key}_busy_pct")
            if b and b["other"] > OTHER_LOAD_PCT:
                print(f"{tag}: WARNING: during the {key} window {b['other']:.0f} % of a core went "
                      f"to processes other than the gateway, Prosody and this benchmark: the "
                      f"machine was shared, these figures are not for quoting")
        if "fixed_copies" in r:
            b = r["fixed_busy_pct"]
            print(f"{tag}: fixed rate {r['fixed_msgs_per_s']:.2f} messages/s x "
                  f"{r['copies_per_message']} = {r['fixed_copies_per_s']:,.0f} copies/s over "
                  f"{r['fixed_s']:.1f} s: gateway {r['fixed_gw_cpu_us_per_copy']:.1f} us per copy "
                  f"({r['fixed_gw_cpu_us_per_copy_raw']:.1f} before the baseline), busy gateway "
                  f"{b['gateway']:.0f} %, Prosody {b['prosody']:.0f} %, this process "
                  f"{b['bench']:.0f} %")
        if "rss_per_occupant" in r:
            goal = "met" if r["rss_per_occupant"] <= TARGET_OCCUPANT_BYTES else "missed"
            print(f"{tag}: RSS {r['rss_start'] / 1048576:.1f} MB before the joins, "
                  f"{r['rss_joined'] / 1048576:.1f} MB after: {r['rss_per_occupant']:,.0f} B per "
                  f"bridged occupant (goal <= {TARGET_OCCUPANT_BYTES} B: {goal}); idle CPU "
                  f"{r['idle_cpu_pct']:.2f} % of a core with everyone joined")
        if "rss_per_one_occupant_room" in r:
            print(f"{tag}: {r['rooms_joined']} one-occupant rooms on a fresh gateway: "
                  f"{r['rss_per_one_occupant_room']:,.0f} B each, against "
                  f"{r['rss_per_occupant_first']:,.0f} B per occupant of one room of "
                  f"{r['occupants'] // 2}: {r['rss_per_room_itself']:,.0f} B per room")
        if r.get("direction") == "focus" and "focus_notifies" in r:
            print(f"{tag}: during the joins the focus saw {r['focus_invites']} INVITEs, "
                  f"{r['focus_nicknames']} NICKNAMEs, {r['focus_subscribes']} SUBSCRIBEs and "
                  f"{r['focus_refreshes']} re-SUBSCRIBEs in their dialogs; sent "
                  f"{r['focus_notifies']} NOTIFYs ({r['focus_notify_bytes'] / 1e6:.1f} MB), "
                  f"answered {r['focus_notify_status']} ({r.get('focus_notify_unanswered', '?')} "
                  f"never answered), {r['focus_notify_too_big']} too big for UDP; "
                  f"{r['xmpp_presences_during_joins']} presences reached the XMPP users")
        if r.get("focus_sip_closed") or r.get("focus_sent_on_closed"):
            print(f"{tag}: SIP connections from the gateway: {r['focus_sip_connections']}, closed "
                  f"(s since start, why, bytes unparsed) {r['focus_sip_closed'][:4]}; written "
                  f"to a closed one: {r['focus_sent_on_closed']}")
        for pre in ("", "rooms_"):
            if pre + "legs_at_stop" in r:
                print(f"{tag}: {pre}gateway shutdown: {r[pre + 'byes_at_stop']} BYEs for "
                      f"{r[pre + 'legs_at_stop']} calls, {r[pre + 'legs_left_without_bye']} left "
                      f"without one" + (f", {r[pre + 'unsubscribes_at_stop']} un-SUBSCRIBEs and "
                                        f"{r[pre + 'subscribes_at_stop']} new SUBSCRIBEs"
                                        if pre + "unsubscribes_at_stop" in r else "")
                      + f"; took {r[pre + 'gateway_stop_s']:.1f} s")
        if r.get("rooms_failures"):
            print(f"{tag}: one-occupant room joins failed: {r['rooms_failures']}")
        if r.get("violations"):
            print(f"{tag}: peer saw {len(r['violations'])} problems, e.g. {r['violations'][:3]}")
        for pre in ("", "rooms_"):
            for line, count in r.get(pre + "gateway_log_summary", []):
                print(f"{tag}: {pre}gateway log x{count}: {line}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--gateway", required=True)
    ap.add_argument("--occupants", default="100,1000", help="comma-separated N")
    ap.add_argument("--directions", default="muc,focus", help="muc (SIP users in an XMPP MUC), "
                    "focus (XMPP users in a SIP conference)")
    ap.add_argument("--copies", type=int, default=100000, help="copies to deliver: M = copies / N")
    ap.add_argument("--messages", type=int, default=0, help="M itself (overrides --copies)")
    ap.add_argument("--window", type=int, default=8, help="messages in flight at saturation")
    ap.add_argument("--fixed-rate", type=float, default=5000,
                    help="copies per second of the fixed-rate phase (messages/s = this / N; 0: none)")
    ap.add_argument("--fixed-seconds", type=float, default=10.0, help="length of the fixed-rate phase")
    ap.add_argument("--rooms", type=int, default=-1,
                    help="one-occupant rooms for the per-room memory, on a fresh gateway "
                         "(default N/2, as many as the first half of the joins; 0: none)")
    ap.add_argument("--settle", type=float, default=35.0,
                    help="seconds after joins before reading RSS (SIP keeps UDP transactions 32 s)")
    ap.add_argument("--idle", type=float, default=5.0, help="seconds of idle baseline")
    ap.add_argument("--join-window", type=int, default=20, help="joins in flight")
    ap.add_argument("--join-timeout", type=float, default=120.0)
    ap.add_argument("--msg-timeout", type=float, default=120.0)
    ap.add_argument("--focus-transport", choices=("tcp", "udp"), default="tcp",
                    help="SIP between the gateway and the focus (a large room's conference-info "
                         "does not fit a UDP datagram)")
    ap.add_argument("--notify-interval", type=float, default=1.0,
                    help="the focus's partial NOTIFYs, at most one per subscription this often")
    ap.add_argument("--focus-window", type=int, default=256 * 1024,
                    help="bytes of conference-info the focus leaves unanswered at most, over all "
                         "subscriptions (0: no limit; see the docstring on TCP)")
    ap.add_argument("--confinfo", choices=("rich", "compact"), default="rich",
                    help="the focus's <user> elements: rich as conf_focus.py writes them (~430 B), "
                         "or compact (~150 B)")
    ap.add_argument("--gateway-log-level", default="notice",
                    help="the gateway's <log level> (info and debug cost it CPU)")
    ap.add_argument("--json", action="store_true", help="print the results as JSON, not the table")
    ap.add_argument("--json-file", help="also write the results as JSON to this file")
    ap.add_argument("--keep", action="store_true", help="keep work directories (logs)")
    args = ap.parse_args()
    args.gateway = os.path.abspath(args.gateway)
    results = asyncio.run(main_async(args))
    if args.json_file:
        with open(args.json_file, "w") as f:
            json.dump(results, f, indent=2)
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        report(args, results)
    return 1 if any("error" in r for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
