#!/usr/bin/python3
"""ops.py - what issue 15's operator features cost simplegw: metrics, scrapes, live reload, in one run.

Three parts, one Prosody (its components listed below) and one slixmpp user, alice, for all:

 1. CPU per pager message both ways at fixed offered rates (--rates, default 500,2000 msg/s), for
    three gateways side by side: (a) the release build from before issue 15 (--before, e.g.
    commit 3a33170), (b) the current build without <metrics>, (c) the current build with
    <metrics> and a scraper GETting /metrics once a second (a new connection each time) during
    each of its rate windows.  The three run at the same time, each with its own peer network
    and component (sip-a.example, sip-b.example, sip-c.example: sipp's From and the XMPP
    recipient name it), but only one is ever sent anything: the windows go rate by rate,
    direction by direction, (a) (b) (c) in turn, so a drift of the machine over the run falls
    on the three alike.  Each window is bench/tls.py's: --rate-seconds of sending, then on until
    max(64*T1, T4) + 1.5 s after the last delivery (the window holds the end of every
    transaction the messages made), windows 6.5 s apart (the trimmer after traffic falls between
    them); the gateway's on-CPU time (user + system, /proc/PID/task/*/schedstat) less its idle
    baseline: one window of the same length before the rate windows, nothing sent, the three
    measured together, per second times each window's length.  (c)'s baseline is taken without
    the scraper, so (c)'s figures hold the scrapes' cost too (part 2 gives it per scrape).  SIP
    is sipp over UDP (tests/e2e/sipp/uac_message.xml, uas_reply.xml), as bench/compare.py.
    Printed: us per message for each, and the ratios (b)/(a) and (c)/(b).
 2. The cost of one scrape: --scrapes GETs of /metrics one after another (5 ms apart), on
    gateway (c) (1 peer, after part 1's traffic) and on a gateway with 100 peers (the one of
    part 3), each on a new connection (Connection: close, as curl) and all on one kept-alive
    connection (as Prometheus): wall time from connect (or request) to the whole response, the
    gateway's CPU from one scrape's start to the next's (idle subtracted), the response's size;
    median and p99.
 3. The cost of a live reload (SIGHUP) of a gateway file with 100 <peer>s (sip.example, which
    carries the traffic, and 99 escaped-mode peers p001.example... on one component
    sip-gw.xmpp.example, each routed to a port nothing listens on, options-interval="0s"),
    alternately to a file with one peer more (p100.example added) and back (removed):
    - --reloads reloads on the idle gateway, 0.3 s apart: wall time from the signal to the
      "reload applied" line appearing in the gateway's log (the log file polled every 0.1 ms),
      and the gateway's CPU for the whole SIGHUP (the file, the TLS files, the audit log; from
      the signal to 20 ms after the line, idle subtracted);
    - SIP->XMPP MESSAGEs at --load-rate (500/s) for 2 x --reload-seconds (20 s each), in blocks
      of 5 s alternately without and with a reload every second (so both conditions share the
      same stretch of time, and the expiry of the warm-up's transactions falls on both); the
      sender is a small UDP SIP client in its own process (this file, --pager-sender) that times
      each MESSAGE to its final answer (round trip, which holds the gateway's wait for the XMPP
      server's verdict); p50/p99/p99.9/max of the round trip in each condition, of the messages
      sent within 50 ms after a signal, and what was lost: a MESSAGE without a 200 or not at
      alice, or one delivered twice.  The sender goes on for 1 s after the blocks, and those
      messages are reported apart: the last message of a flow once waited 44 ms, 497 ms after
      the latest reload (something at the end of traffic, not the reload), and it fell in the
      last block.  The wall time of these reloads is the gateway's log time stamp (ms) of
      "reload of" less the time the signal was sent.

Gateways log at notice; T1 is 500 ms (--t1; --fast is T1 40 ms and smaller counts, for
development only: see bench/tls.py on why its figures are not for quoting).  The before
binary is built from its own tree, e.g.:
    git worktree add /tmp/sgw-before 3a33170
    make -C /tmp/sgw-before BUILD=/tmp/sgw-before/build /tmp/sgw-before/build/release/simplegw
    ... bench/ops.py --before /tmp/sgw-before/build/release/simplegw ...
    git worktree remove --force /tmp/sgw-before

Usage: bench/ops.py --gateway build/release/simplegw --before PATH [--rates 500,2000]
           [--rate-seconds 5] [--scrapes 200] [--reloads 20] [--reload-seconds 20]
           [--load-rate 500] [--t1 500] [--fast] [--no-rates] [--json FILE]
Exit status: 0 the run went through, 1 it went wrong.
"""

import argparse
import asyncio
import json
import os
import re
import secrets
import select
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime, timezone

from compare import (PAD, SOFIA_T4_S, WINDOW_GAP_S, WINDOW_MARGIN_S, Receiver, await_deliveries,
                     busy_share, cpu_ns, fmt_opt, keep_errors, machine_busy)
import harness  # noqa: E402  (compare.py put tests/e2e on sys.path)
from harness import SIP_DOMAIN, XMPP_DOMAIN, check  # noqa: E402

DIRECTIONS = (("s2x", "SIP->XMPP"), ("x2s", "XMPP->SIP"))
GATEWAYS = (("a", "before issue 15"), ("b", "now, no <metrics>"), ("c", "now, <metrics> + 1 scrape/s"))
ESCAPED_COMPONENT = "sip-gw.xmpp.example"
NPEERS = 100
BLOCK_S = 5.0               # part 3: blocks without / with reloads
AFTER_SIGNAL_MS = 50        # part 3: messages sent this soon after a signal are "during a reload"
FAST = dict(t1=40, rates="1000", rate_seconds=2, scrapes=50, reloads=10, reload_seconds=10)
DEFAULTS = dict(t1=500, rates="500,2000", rate_seconds=5, scrapes=200, reloads=20, reload_seconds=20)


def pct(values, q):
    """The q-quantile (0..1) of values, nearest rank; None for none."""
    if not values:
        return None
    v = sorted(values)
    return v[min(len(v) - 1, max(0, int(round(q * len(v) + 0.5)) - 1))]


def summary(values):
    return dict(n=len(values), p50=pct(values, 0.5), p99=pct(values, 0.99),
                p999=pct(values, 0.999), max=max(values) if values else None)


# ---------------------------------------------------------------- gateway files

def gateway_file(env, sip_port, msrp_port, peers, metrics_port=None, t1=500):
    """harness.gateway_xml's file with ports of its own (several gateways run at once)."""
    sip_attrs = f' t1="{t1}ms"' if t1 != 500 else ""
    metrics = f'<metrics address="127.0.0.1" port="{metrics_port}"/>' if metrics_port else ""
    return f"""<?xml version="1.0"?>
<gateway xmlns="urn:simplegw:config:1">
  <log level="notice" stderr="yes" syslog="no"/>
  <xmpp domain="{XMPP_DOMAIN}" server="127.0.0.1" port="{env.xmpp.component_port}"
        secret-file="secret" reconnect-min="100ms" reconnect-max="1s"/>
  <sip{sip_attrs}>
    <listen transport="udp" address="127.0.0.1" port="{sip_port}"/>
    <listen transport="tcp" address="127.0.0.1" port="{sip_port}"/>
  </sip>
  <im max-body="8k" delivery-wait="5s"/>
  <sessions msrp-port="{msrp_port}"/>
  {metrics}
{"".join(peers)}</gateway>
"""


def domain_peer(name, domain, port):
    return (f'  <peer name="{name}" domain="{domain}">\n'
            f'    <route address="127.0.0.1" port="{port}" transport="udp" options-interval="0s"/>\n'
            f'    <trust address="127.0.0.1"/>\n  </peer>\n')


def escaped_peer(i, port):
    """Peer i of part 3's file: escaped addressing on the shared component, its route a port
    nothing listens on, trusted from an address nothing sends from."""
    return (f'  <peer name="p{i:03d}" domain="p{i:03d}.example" addressing="escaped" '
            f'component="{ESCAPED_COMPONENT}">\n'
            f'    <route address="127.0.0.1" port="{port}" transport="udp" options-interval="0s"/>\n'
            f'    <trust address="10.15.{i // 256}.{i % 256}"/>\n  </peer>\n')


class Gw:
    """One gateway of the run: its binary, ports, peer domain and its sipp peer's port."""

    def __init__(self, env, label, binary, domain, metrics=False, extra_peers=(), t1=500):
        self.env, self.label, self.binary, self.domain = env, label, binary, domain
        self.sip_port, self.msrp_port, self.uas_port = (harness.free_port() for _ in range(3))
        self.metrics_port = harness.free_port() if metrics else None
        self.peers = [domain_peer(f"net-{label}", domain, self.uas_port)] + list(extra_peers)
        self.t1 = t1
        self.gw = None

    def xml(self, peers=None):
        return gateway_file(self.env, self.sip_port, self.msrp_port, peers or self.peers,
                            self.metrics_port, self.t1)

    async def start(self):
        self.gw = harness.Gateway(self.env, self.binary, self.xml())
        self.env.gateways.append(self.gw)
        await self.gw.start(wait_up=False)
        links = len({self.domain} | ({ESCAPED_COMPONENT} if len(self.peers) > 1 else set()))
        await self.gw.wait_log(r"component \S+: connected", timeout=20, count=links)
        return self

    @property
    def pid(self):
        return self.gw.proc.pid

    def cpu_ns(self):
        return cpu_ns([self.pid])


# ---------------------------------------------------------------- load (sipp, as tls.py, for any peer domain)

def sip_sender(g, tag, n, rate):
    uac = g.env.sipp(f"uac-{tag}", "uac_message.xml",
                     dict(ruri=f"sip:alice@{XMPP_DOMAIN}", to=f"sip:alice@{XMPP_DOMAIN}",
                          sender=f"sip:bob@{g.domain}", ctype="text/plain;charset=UTF-8", extra="",
                          body=f"cmp {tag} tk[call_number]x {PAD}", expect="200"),
                     remote=f"127.0.0.1:{g.sip_port}", calls=n, timeout=600)
    i = uac.args.index("-trace_msg")     # tracing thousands of messages would slow sipp down
    del uac.args[i:i + 3]
    uac.args += ["-r", str(rate), "-l", "5000"]
    return uac


def sip_receiver(g, tag, n):
    uas = g.env.sipp(f"uas-{tag}", "uas_reply.xml", dict(status="200", phrase="OK"),
                     port=g.uas_port, calls=n, timeout=600)
    i = uas.args.index("-trace_msg")
    del uas.args[i:i + 3]
    return uas


async def sip_to_xmpp(g, rx, tag, n, rate):
    """n MESSAGEs offered at rate; (delivered per second, delivered)."""
    done = rx.expect(tag, n)
    uac = sip_sender(g, tag, n, rate)
    t0 = time.monotonic()
    await uac.start()
    sipp, delivered, t1 = await await_deliveries(uac, done, rx, tag, n, t0)
    rc = await sipp
    check(delivered > 0, f"{g.label} sipp {tag}: nothing delivered: {uac.error_text()}")
    if rc != 0 or delivered != n:
        print(f"  NOTE {g.label} {tag}: {delivered} of {n} delivered, sipp exit {rc}", flush=True)
    return delivered / (t1 - t0), delivered


async def xmpp_to_sip_ready(g, client, tag, n):
    uas = sip_receiver(g, tag, n + 1)
    await uas.start()
    client.send_message(mto=f"bob@{g.domain}", mtype="chat", mbody=f"cmp {tag}-ready tk0x {PAD}")
    await asyncio.sleep(0.5)
    return uas


def bounces(client, tag):
    return [m for m in client.inbox if m["type"] == "error" and m["body"].startswith(f"cmp {tag} ")]


async def xmpp_to_sip(g, client, tag, n, rate, uas):
    """n messages from alice at rate to uas; (per second, not bounced)."""
    t0 = time.monotonic()
    batch = 10
    for i in range(n):
        client.send_message(mto=f"bob@{g.domain}", mtype="chat", mbody=f"cmp {tag} tk{i + 1}x {PAD}")
        if i % batch == batch - 1:
            await asyncio.sleep(max(t0 + (i + 1) / rate - time.monotonic(), 0))
    uas_done = asyncio.ensure_future(uas.wait(timeout=600))
    while not uas_done.done():
        await asyncio.wait({uas_done}, timeout=1)
        bounced = bounces(client, tag)
        if bounced and not uas_done.done():
            await asyncio.wait({uas_done}, timeout=10)
            if not uas_done.done():
                await uas.kill()
                await uas_done
                k = len(bounces(client, tag))
                print(f"  NOTE {g.label} {tag}: {k} of {n} bounced, first {bounced[0]}", flush=True)
                return (n - k) / (time.monotonic() - t0), n - k
    rc = uas_done.result()
    t1 = time.monotonic()
    check(rc == 0, f"{g.label} sipp {tag}: {uas.error_text()}")
    return n / (t1 - t0), n


# ---------------------------------------------------------------- /metrics over HTTP

def http_get(port, sock=None, keep=False):
    """GET /metrics; (status, body bytes, the socket when keep).  Blocking."""
    if sock is None:
        sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.sendall(b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                 + (b"" if keep else b"Connection: close\r\n") + b"\r\n")
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(65536)
        check(chunk, "the metrics endpoint closed the connection before its headers")
        buf += chunk
    head, body = buf.split(b"\r\n\r\n", 1)
    status = int(head.split(b" ", 2)[1])
    m = re.search(rb"(?im)^content-length:\s*(\d+)", head)
    if m:
        want = int(m.group(1))
        while len(body) < want:
            chunk = sock.recv(65536)
            check(chunk, "the metrics endpoint closed the connection mid-body")
            body += chunk
        if not keep:
            while sock.recv(65536):      # its close
                pass
    else:
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            body += chunk
    if not keep:
        sock.close()
        sock = None
    return status, body, sock


class Scraper:
    """GET /metrics every second (a new connection each) while it runs, in a thread of its own."""

    def __init__(self, port):
        self.port = port
        self.stop_ev = threading.Event()
        self.thread = None
        self.done = 0
        self.failed = []

    def _run(self):
        while not self.stop_ev.is_set():
            try:
                status, _, _ = http_get(self.port)
                if status == 200:
                    self.done += 1
                else:
                    self.failed.append(status)
            except (OSError, harness.TestFailure) as e:
                self.failed.append(str(e))
            self.stop_ev.wait(1.0)

    def start(self):
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def stop(self):
        self.stop_ev.set()
        self.thread.join(15)
        return self.done, self.failed


def scrape_series(g, n, keep, idle_per_s):
    """Part 2: n scrapes one after another, 5 ms apart; per scrape its wall time (ms) and the
    gateway's CPU (us, idle subtracted) from its start to the next's start.  Blocking."""
    walls, cpus, sizes = [], [], []
    sock = None
    c_prev = t_prev = None
    for _ in range(n + 1):
        c, t = g.cpu_ns(), time.monotonic()
        if c_prev is not None:
            cpus.append((c - c_prev) / 1e3 - idle_per_s * (t - t_prev) * 1e6)
        if len(walls) == n:
            break
        c_prev, t_prev = c, t
        w0 = time.perf_counter()
        status, body, sock = http_get(g.metrics_port, sock, keep)
        walls.append((time.perf_counter() - w0) * 1e3)
        check(status == 200, f"GET /metrics answered {status}")
        sizes.append(len(body))
        time.sleep(0.005)
    if sock:
        sock.close()
    return dict(wall_ms=summary(walls), cpu_us=summary(cpus), bytes=max(sizes), bytes_min=min(sizes),
                series=sum(1 for line in body.decode().splitlines() if line and not line.startswith("#")))


async def scrape_cost(g, n, idle_per_s):
    out = {}
    for keep in (False, True):
        r = await asyncio.to_thread(scrape_series, g, n, keep, idle_per_s)
        out["keepalive" if keep else "new_connection"] = r
        print(f"  {g.label}: {n} scrapes {'on one connection' if keep else 'each on a new connection'}: "
              f"{r['bytes']} bytes ({r['series']} samples); wall p50 {r['wall_ms']['p50']:.2f} "
              f"p99 {r['wall_ms']['p99']:.2f} ms; gateway CPU p50 {r['cpu_us']['p50']:.0f} "
              f"p99 {r['cpu_us']['p99']:.0f} us", flush=True)
    return out


# ---------------------------------------------------------------- part 1

async def window(g, load, tail, scraper=None, gap=WINDOW_GAP_S):
    """load(), then tail seconds more: the gateway's CPU over it all and over the sending."""
    m0, t0, c0 = machine_busy(), time.monotonic(), g.cpu_ns()
    if scraper:
        scraper.start()
    result = await load()
    t_load, c_load = time.monotonic() - t0, g.cpu_ns()
    await asyncio.sleep(tail)
    c1, t1, m1 = g.cpu_ns(), time.monotonic(), machine_busy()
    scrapes = scraper.stop() if scraper else None
    await asyncio.sleep(gap)
    return dict(seconds=t1 - t0, load_seconds=t_load, cpu=(c1 - c0) / 1e9, cpu_load=(c_load - c0) / 1e9,
                busy=busy_share(m0, m1), scrapes=scrapes, ci=ci_running(), result=result)


def ci_running():
    """Whether a CI run (tests/e2e/run.py, make check, .ci/run) shares the machine right now:
    its load ruins CPU figures, so each window records it."""
    return subprocess.run(["pgrep", "-f", r"tests/e2e/run.py|make check|\.ci/run"],
                          stdout=subprocess.DEVNULL).returncode == 0


def window_tail(args):
    return max(64 * args.t1 / 1000, SOFIA_T4_S) + WINDOW_MARGIN_S


async def part1(gws, alice, rx, args):
    tail = window_tail(args)
    out = {g.label: {} for g in gws}
    # warm-up of each: first-use allocations out of the figures; their transactions end first
    for g in gws:
        await sip_to_xmpp(g, rx, f"{g.label}-warm", 200, 500)
        uas = await xmpp_to_sip_ready(g, alice, f"{g.label}-warm", 200)
        await xmpp_to_sip(g, alice, f"{g.label}-warm", 200, 500, uas)
        keep_errors(alice)
    print(f"  warm-up done; {tail + WINDOW_GAP_S:.0f} s for its transactions to end", flush=True)
    await asyncio.sleep(tail + WINDOW_GAP_S)
    # the idle baselines, the three together
    m0, t0, c0 = machine_busy(), time.monotonic(), [g.cpu_ns() for g in gws]
    await asyncio.sleep(args.rate_seconds + tail)
    c1, t1, m1 = [g.cpu_ns() for g in gws], time.monotonic(), machine_busy()
    for g, a, b in zip(gws, c0, c1):
        out[g.label]["idle"] = dict(seconds=t1 - t0, cpu=(b - a) / 1e9, cpu_per_s=(b - a) / 1e9 / (t1 - t0),
                                    busy=busy_share(m0, m1))
    print("  idle: " + ", ".join(f"{g.label} {100 * out[g.label]['idle']['cpu_per_s']:.3f} % of a core"
                                 for g in gws) + f" over {t1 - t0:.1f} s; machine {busy_share(m0, m1):.0f} % busy",
          flush=True)
    await asyncio.sleep(WINDOW_GAP_S)
    for rate in args.rates:
        offered = int(rate * args.rate_seconds)
        for d, dname in DIRECTIONS:
            for g in gws:
                tag = f"{g.label}-{d}-{rate}"
                uas = await xmpp_to_sip_ready(g, alice, tag, offered) if d == "x2s" else None

                async def load(g=g, d=d, tag=tag, rate=rate, offered=offered, uas=uas):
                    if d == "s2x":
                        return await sip_to_xmpp(g, rx, tag, offered, rate)
                    return await xmpp_to_sip(g, alice, tag, offered, rate, uas)
                scraper = Scraper(g.metrics_port) if g.metrics_port else None
                w = await window(g, load, tail, scraper)
                keep_errors(alice)
                idle = out[g.label]["idle"]["cpu_per_s"]
                w["delivered"], n = w.pop("result")
                w["n"], w["refused"], w["dups"] = n, offered - n, rx.dups.get(tag, 0)
                w["cpu_us"] = (w["cpu"] - idle * w["seconds"]) / n * 1e6
                w["cpu_raw_us"] = w["cpu"] / n * 1e6
                w["cpu_tail_us"] = ((w["cpu"] - w["cpu_load"]) - idle * (w["seconds"] - w["load_seconds"])) / n * 1e6
                out[g.label][f"{d}@{rate}"] = w
                sc = (f", {w['scrapes'][0]} scrapes" + (f" ({len(w['scrapes'][1])} failed: {w['scrapes'][1][:2]})"
                                                         if w["scrapes"][1] else "")) if w["scrapes"] else ""
                if w["ci"]:
                    print("  NOTE a CI run was going at the end of this window: its CPU figures are not clean",
                          flush=True)
                print(f"  {g.label} {dname} at {rate}/s: {w['delivered']:.0f} msg/s, {n} delivered, "
                      f"{w['cpu_us']:.1f} us/msg ({w['cpu_raw_us']:.1f} with idle, {w['cpu_tail_us']:.1f} after "
                      f"the last), window {w['seconds']:.1f} s, machine {w['busy']:.0f} % busy{sc}", flush=True)
    return out


# ---------------------------------------------------------------- part 3

class LogTail:
    """The gateway's log from now on, read as it grows."""

    def __init__(self, path):
        self.f = open(path, "rb")
        self.f.seek(0, os.SEEK_END)
        self.text = b""

    def poll(self):
        chunk = self.f.read()
        if chunk:
            self.text += chunk
        return chunk

    def close(self):
        self.f.close()


def reload_once(g, tail, idle_per_s):
    """SIGHUP; (wall ms to the "reload applied" line, CPU us of the whole SIGHUP, the lines'
    own stamps: ms from "received SIGHUP" to "reload of").  Blocking: polls every 0.1 ms."""
    tail.poll()
    tail.text = b""
    c0, t0 = g.cpu_ns(), time.monotonic_ns()
    os.kill(g.pid, signal.SIGHUP)
    deadline = t0 + 10_000_000_000
    while b"reload applied" not in tail.text and b"reload refused" not in tail.text:
        check(time.monotonic_ns() < deadline, "no reload line within 10 s of SIGHUP")
        if not tail.poll():
            time.sleep(0.0001)
    t1 = time.monotonic_ns()
    check(b"reload applied" in tail.text, f"the reload was refused: {tail.text.decode(errors='replace')[-2000:]}")
    time.sleep(0.02)
    c1, t2 = g.cpu_ns(), time.monotonic_ns()
    stamps = log_stamps(tail.text.decode(errors="replace"))
    inner = (stamps["reload"] - stamps["hup"]) * 1e3 if "reload" in stamps and "hup" in stamps else None
    return (t1 - t0) / 1e6, (c1 - c0) / 1e3 - idle_per_s * (t2 - t0) / 1e3, inner


STAMP = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3})Z \S+ \S+: (received SIGHUP|reload of)", re.M)


def log_stamps(text):
    """{"hup": epoch seconds of "received SIGHUP", "reload": of "reload of"} (the last of each)."""
    out = {}
    for m in STAMP.finditer(text):
        t = datetime.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S.%f").replace(
            tzinfo=timezone.utc).timestamp()
        out["hup" if m.group(2).startswith("received") else "reload"] = t
    return out


def write_conf(g, peers):
    with open(g.gw.conf + ".new", "w") as f:
        f.write(g.xml(peers))
    os.replace(g.gw.conf + ".new", g.gw.conf)


async def run_sender(g, tag, rate, seconds, start_ns, out_path):
    """The --pager-sender process: MESSAGEs bob@sip.example -> alice at rate from start_ns."""
    spec = dict(port=g.sip_port, tag=tag, rate=rate, n=int(rate * seconds), start_ns=start_ns,
                sender=f"bob@{g.domain}", out=out_path)
    return await asyncio.create_subprocess_exec(sys.executable, os.path.abspath(__file__), "--pager-sender",
                                                json.dumps(spec), stdout=asyncio.subprocess.DEVNULL)


async def part3(g, alice, rx, args, idle_per_s, peers_a, peers_b):
    out = {}
    # isolated reloads on the idle gateway
    tail = LogTail(g.gw.logpath)
    recs = {"add": [], "remove": []}
    for i in range(args.reloads):
        kind = "add" if i % 2 == 0 else "remove"
        write_conf(g, peers_b if kind == "add" else peers_a)
        wall, cpu, inner = await asyncio.to_thread(reload_once, g, tail, idle_per_s)
        recs[kind].append((wall, cpu, inner))
        await asyncio.sleep(0.3)
    tail.close()
    for kind, rs in recs.items():
        out[f"idle_{kind}"] = dict(wall_ms=summary([r[0] for r in rs]), cpu_us=summary([r[1] for r in rs]),
                                   log_ms=summary([r[2] for r in rs if r[2] is not None]))
        o = out[f"idle_{kind}"]
        print(f"  {len(rs)} reloads, one peer {'added' if kind == 'add' else 'removed'} "
              f"({NPEERS}{'+1' if kind == 'add' else ''} peers): signal to line p50 {o['wall_ms']['p50']:.2f} ms, "
              f"max {o['wall_ms']['max']:.2f} ms; gateway CPU p50 {o['cpu_us']['p50']:.0f} us, "
              f"max {o['cpu_us']['max']:.0f} us", flush=True)
    # pager load in blocks without / with a reload every second
    write_conf(g, peers_a)
    total = 2 * args.reload_seconds
    nblocks = int(round(total / BLOCK_S))
    tag = "reload-load"
    # the sender goes on 1 s past the blocks: the last messages of a flow may wait for what
    # ends traffic (a delayed ACK on a link that falls quiet), which is neither condition's
    n = int(args.load_rate * (total + 1))
    done = rx.expect(tag, n)
    res_path = os.path.join(g.env.workdir, "pager-sender.json")
    start_ns = time.monotonic_ns() + 1_000_000_000
    m0, c0 = machine_busy(), g.cpu_ns()
    proc = await run_sender(g, tag, args.load_rate, total + 1, start_ns, res_path)
    signals = []        # (monotonic ns, wall clock s) of each SIGHUP sent under load
    count_before = g.gw.log_count(r"reload applied")
    for b in range(1, nblocks, 2):          # blocks 1, 3, 5...: with reloads
        for k in range(int(BLOCK_S)):
            at = start_ns + int((b * BLOCK_S + 0.5 + k) * 1e9)
            await asyncio.sleep(max(0, (at - time.monotonic_ns()) / 1e9))
            write_conf(g, peers_b if len(signals) % 2 == 0 else peers_a)
            signals.append((time.monotonic_ns(), time.time()))
            os.kill(g.pid, signal.SIGHUP)
    rc = await proc.wait()
    check(rc == 0, f"the pager sender failed ({rc})")
    m1, c1 = machine_busy(), g.cpu_ns()
    try:
        await asyncio.wait_for(done.wait(), 15)
    except asyncio.TimeoutError:
        pass
    with open(res_path) as f:
        sent = json.load(f)
    await g.gw.wait_log(r"reload applied", count=count_before + len(signals), timeout=10)
    # the load's reloads from the log: the "reload of" stamps, in order
    stamps = [datetime.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S.%f").replace(
        tzinfo=timezone.utc).timestamp()
        for m in STAMP.finditer(g.gw.log()) if m.group(2) == "reload of"][-len(signals):]
    walls = [(s - w) * 1e3 for s, (_, w) in zip(stamps, signals)]
    cond = {"without": [], "with": [], "after_signal": [], "past_the_blocks": []}
    lost = [m for m in sent["messages"] if m[2] != 200]
    sig_ns = [s for s, _ in signals]
    for t_send, rtt, status in sent["messages"]:
        if status != 200:
            continue
        b = int((t_send - start_ns) / 1e9 // BLOCK_S)
        cond["past_the_blocks" if b >= nblocks else "with" if b % 2 else "without"].append(rtt / 1e6)
        if any(0 <= t_send - s <= AFTER_SIGNAL_MS * 1_000_000 for s in sig_ns):
            cond["after_signal"].append(rtt / 1e6)
    # the slowest round trips: when they were sent, and how long after the latest SIGHUP
    worst = []
    for t_send, rtt, status in sorted(sent["messages"], key=lambda m: -m[1])[:5]:
        before = [s for s in sig_ns if s <= t_send]
        worst.append(dict(at_s=(t_send - start_ns) / 1e9, rtt_ms=rtt / 1e6, status=status,
                          after_signal_ms=(t_send - before[-1]) / 1e6 if before else None))
    out["load"] = dict(worst=worst, rate=args.load_rate, seconds=total, sent=len(sent["messages"]), answered_200=n - len(lost),
                       not_200=dict((str(s), sum(1 for m in lost if m[2] == s)) for s in {m[2] for m in lost}),
                       at_alice=rx.count(tag), twice_at_alice=rx.dups.get(tag, 0), reloads=len(signals),
                       reload_wall_ms=summary(walls), busy=busy_share(m0, m1), gw_cpu_s=(c1 - c0) / 1e9,
                       rtt_ms={k: summary(v) for k, v in cond.items()}, send_lag_ms=sent["lag_ms"])
    o = out["load"]
    for k, label in (("without", "no reloads"), ("with", "a reload every second"),
                     ("after_signal", f"sent <= {AFTER_SIGNAL_MS} ms after a SIGHUP"),
                     ("past_the_blocks", "the last second, no reloads (not counted above)")):
        s = o["rtt_ms"][k]
        if s["n"]:
            print(f"  MESSAGE round trip, {label}: {s['n']} messages, p50 {s['p50']:.2f} p99 {s['p99']:.2f} "
                  f"p99.9 {s['p999']:.2f} max {s['max']:.2f} ms", flush=True)
    print(f"  {o['sent']} sent at {args.load_rate}/s, {o['answered_200']} answered 200, {o['at_alice']} at alice "
          f"({o['twice_at_alice']} twice); {o['reloads']} reloads, signal to \"reload of\" (log stamps) "
          f"p50 {fmt_opt(o['reload_wall_ms']['p50'], '{:.1f}')} max {fmt_opt(o['reload_wall_ms']['max'], '{:.1f}')} ms; "
          f"machine {o['busy']:.0f} % busy", flush=True)
    return out


# ---------------------------------------------------------------- the sender process (part 3)

def pager_sender(spec):
    """MESSAGEs over UDP at spec's rate from start_ns (CLOCK_MONOTONIC), each timed to its final
    answer; no retransmission (loopback, 4 MiB buffers).  Writes {"messages": [[sent ns, round
    trip ns, status]...], "lag_ms": how late the sends ran at worst}."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
    sock.bind(("127.0.0.1", 0))
    sock.setblocking(False)
    lport = sock.getsockname()[1]
    dest = ("127.0.0.1", spec["port"])
    n, rate, start = spec["n"], spec["rate"], spec["start_ns"]
    sent_at, rtt, status = [0] * n, [-1] * n, [0] * n
    ids = {}
    answered = 0
    lag = 0
    i = 0
    cid = re.compile(rb"\r\n(?:Call-ID|i):\s*([^\r\n]+)", re.I)
    while True:
        now = time.monotonic_ns()
        while i < n and start + i * 1_000_000_000 // rate <= now:
            call_id = f"{secrets.token_hex(8)}-{i}"
            body = f"cmp {spec['tag']} tk{i + 1}x {PAD}".encode()
            msg = (f"MESSAGE sip:alice@{XMPP_DOMAIN} SIP/2.0\r\n"
                   f"Via: SIP/2.0/UDP 127.0.0.1:{lport};branch=z9hG4bK{secrets.token_hex(8)};rport\r\n"
                   f"Max-Forwards: 70\r\nFrom: <sip:{spec['sender']}>;tag={secrets.token_hex(4)}\r\n"
                   f"To: <sip:alice@{XMPP_DOMAIN}>\r\nCall-ID: {call_id}\r\nCSeq: 1 MESSAGE\r\n"
                   f"Content-Type: text/plain;charset=UTF-8\r\nContent-Length: {len(body)}\r\n\r\n").encode() + body
            ids[call_id.encode()] = i
            lag = max(lag, now - (start + i * 1_000_000_000 // rate))
            sent_at[i] = time.monotonic_ns()
            sock.sendto(msg, dest)
            i += 1
            now = time.monotonic_ns()
        if i >= n and (answered == n or now > sent_at[n - 1] + 10_000_000_000):
            break
        wait = (start + i * 1_000_000_000 // rate - now) / 1e9 if i < n else 0.05
        r, _, _ = select.select([sock], [], [], max(wait, 0))
        while r:
            try:
                data = sock.recv(65536)
            except BlockingIOError:
                break
            t = time.monotonic_ns()
            if not data.startswith(b"SIP/2.0 "):
                continue
            code = int(data[8:11])
            m = cid.search(data)
            k = ids.get(m.group(1).strip()) if m else None
            if k is None or code < 200 or status[k]:
                continue
            status[k], rtt[k] = code, t - sent_at[k]
            answered += 1
    with open(spec["out"], "w") as f:
        json.dump(dict(messages=[[sent_at[k], rtt[k], status[k]] for k in range(n)], lag_ms=lag / 1e6), f)
    return 0


# ---------------------------------------------------------------- report

def report(r, args):
    p1 = r.get("part1")
    if p1:
        print(f"\n== 1. gateway CPU per pager message, us (idle subtracted; windows of {args.rate_seconds:g} s "
              f"sending + {window_tail(args):g} s)")
        heads = ["(a) before", "(b) now", "(c) +metrics", "(b)/(a)", "(c)/(b)"]
        print(f"{'':28}" + "".join(f"{h:>14}" for h in heads))
        print(f"{'idle, % of a core':28}" + "".join(f"{100 * p1[lb]['idle']['cpu_per_s']:>14.3f}" for lb, _ in GATEWAYS))
        for rate in args.rates:
            for d, dname in DIRECTIONS:
                k = f"{d}@{rate}"
                v = [p1[lb][k]["cpu_us"] for lb, _ in GATEWAYS]
                cells = [f"{x:.1f}" for x in v] + [f"{v[1] / v[0]:.2f}" if v[0] > 0 else "-",
                                                    f"{v[2] / v[1]:.2f}" if v[1] > 0 else "-"]
                print(f"{dname + ' at ' + str(rate) + '/s':28}" + "".join(f"{c:>14}" for c in cells))
                tails = [p1[lb][k]["cpu_tail_us"] for lb, _ in GATEWAYS]
                print(f"{'  of it after the last msg':28}" + "".join(f"{x:>14.1f}" for x in tails))
                busy = [p1[lb][k]["busy"] for lb, _ in GATEWAYS]
                print(f"{'  machine busy %':28}" + "".join(f"{x:>14.0f}" for x in busy))
                wc = p1["c"][k]
                per_scrape = (r.get("part2") or {}).get("1 peer", {}).get("new_connection", {}).get("cpu_us", {}).get("p50")
                if wc.get("scrapes") and per_scrape is not None:
                    wc["scrape_us_per_msg"] = wc["scrapes"][0] * per_scrape / wc["n"]
                    print(f"{'  (c): scrapes, their us/msg':28}{'':28}{str(wc['scrapes'][0]) + ', ' + format(wc['scrape_us_per_msg'], '.2f'):>14}")
    p2 = r.get("part2")
    if p2:
        print("\n== 2. one GET /metrics (" f"{args.scrapes} each; gateway CPU from one scrape's start to the next's, idle subtracted)")
        print(f"{'':34}{'bytes':>8}{'samples':>9}{'wall p50':>10}{'wall p99':>10}{'CPU p50':>10}{'CPU p99':>10}")
        for who, rr in p2.items():
            for mode, x in rr.items():
                print(f"{who + ', ' + mode.replace('_', ' '):34}{x['bytes']:>8}{x['series']:>9}"
                      f"{x['wall_ms']['p50']:>8.2f}ms{x['wall_ms']['p99']:>8.2f}ms"
                      f"{x['cpu_us']['p50']:>8.0f}us{x['cpu_us']['p99']:>8.0f}us")
        for who, rr in p2.items():
            if rr["keepalive"]["wall_ms"]["p50"] > 5 * rr["new_connection"]["wall_ms"]["p50"] + 1:
                print(f"  NOTE {who}: a kept-alive connection waits {rr['keepalive']['wall_ms']['p50']:.0f} ms for a "
                      f"{rr['keepalive']['bytes']}-byte response that a new one gets in "
                      f"{rr['new_connection']['wall_ms']['p50']:.1f} ms: the response's last segment held back by "
                      "Nagle until the client's delayed ACK (no TCP_NODELAY on the metrics connections); the "
                      "gateway's CPU is not spent waiting")
    p3 = r.get("part3")
    if p3:
        print(f"\n== 3. live reload (SIGHUP), a file of {NPEERS} peers, one added / removed")
        for kind in ("add", "remove"):
            o = p3[f"idle_{kind}"]
            print(f"  idle, peer {kind + ('ed' if kind == 'add' else 'd')}: signal -> line p50 {o['wall_ms']['p50']:.2f} "
                  f"p99 {o['wall_ms']['p99']:.2f} max {o['wall_ms']['max']:.2f} ms; CPU p50 {o['cpu_us']['p50']:.0f} "
                  f"p99 {o['cpu_us']['p99']:.0f} max {o['cpu_us']['max']:.0f} us (log stamps p50 "
                  f"{fmt_opt(o['log_ms']['p50'], '{:.0f}')} ms)")
        o = p3["load"]
        print(f"  SIP->XMPP at {o['rate']}/s for {o['seconds']:g} s, {BLOCK_S:g}-s blocks without / with a reload "
              f"every second ({o['reloads']} reloads):")
        print(f"{'    round trip, ms':34}{'n':>8}{'p50':>9}{'p99':>9}{'p99.9':>9}{'max':>9}")
        for k in ("without", "with", "after_signal", "past_the_blocks"):
            s = o["rtt_ms"][k]
            if s["n"]:
                print(f"{'    ' + k.replace('_', ' '):34}{s['n']:>8}{s['p50']:>9.2f}{s['p99']:>9.2f}"
                      f"{s['p999']:>9.2f}{s['max']:>9.2f}")
        print("    slowest: " + "; ".join(
            f"{w['rtt_ms']:.1f} ms sent at {w['at_s']:.2f} s"
            + (f", {w['after_signal_ms']:.0f} ms after a SIGHUP" if w["after_signal_ms"] is not None else "")
            for w in o["worst"]))
        print(f"    lost: {o['sent'] - o['answered_200']} without a 200 ({o['not_200']}), "
              f"{o['sent'] - o['at_alice']} not at alice, {o['twice_at_alice']} twice; sender late by "
              f"{o['send_lag_ms']:.1f} ms at worst")


async def main_async(args):
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, asyncio.current_task().cancel)
    workdir = tempfile.mkdtemp(prefix="simplegw-ops-bench-")
    comps = tuple(f"sip-{lb}.example" for lb, _ in GATEWAYS) + (SIP_DOMAIN, ESCAPED_COMPONENT)
    env = harness.Env(os.path.abspath(args.gateway), workdir, components=comps)
    await env.start()
    results = dict(started=time.strftime("%Y-%m-%d %H:%M:%S"), loadavg_start=os.getloadavg(),
                   ci_at_start=ci_running())
    if results["ci_at_start"]:
        print("NOTE a CI run shares the machine: CPU figures will not be clean", flush=True)
    t_start = time.monotonic()
    try:
        alice = await env.client("alice")
        rx = Receiver(alice)
        binaries = dict(a=os.path.abspath(args.before), b=os.path.abspath(args.gateway), c=os.path.abspath(args.gateway))
        gws = [Gw(env, lb, binaries[lb], f"sip-{lb}.example", metrics=(lb == "c"), t1=args.t1) for lb, _ in GATEWAYS]
        for g in gws:
            await g.start()
        if not args.no_rates:
            print(f"---- 1. CPU per message, (a) (b) (c) ({time.monotonic() - t_start:.0f} s)", flush=True)
            results["part1"] = await part1(gws, alice, rx, args)
        gc = gws[2]
        idle_c = results["part1"]["c"]["idle"]["cpu_per_s"] if "part1" in results else 0.0
        for g in gws[:2]:
            await g.gw.stop()
        # part 3's gateway: 100 peers
        ports = [harness.free_port() for _ in range(NPEERS)]
        g100 = Gw(env, "100", os.path.abspath(args.gateway), SIP_DOMAIN, metrics=True, t1=args.t1,
                  extra_peers=[escaped_peer(i, ports[i]) for i in range(1, NPEERS)])
        peers_a = g100.peers
        peers_b = peers_a + [escaped_peer(NPEERS, ports[0])]
        check(len(peers_a) == NPEERS, "the 100-peer file")
        await g100.start()
        await asyncio.sleep(1)
        c0, t0 = g100.cpu_ns(), time.monotonic()
        await asyncio.sleep(10)
        idle_100 = (g100.cpu_ns() - c0) / 1e9 / (time.monotonic() - t0)
        print(f"---- 2. one scrape ({time.monotonic() - t_start:.0f} s); 100-peer gateway idle "
              f"{100 * idle_100:.3f} % of a core", flush=True)
        results["part2"] = {"1 peer": await scrape_cost(gc, args.scrapes, idle_c),
                            "100 peers": await scrape_cost(g100, args.scrapes, idle_100)}
        await gc.gw.stop()
        print(f"---- 3. live reload ({time.monotonic() - t_start:.0f} s)", flush=True)
        # warm-up of its pager path, both ways
        await sip_to_xmpp(g100, rx, "100-warm", 200, 500)
        uas = await xmpp_to_sip_ready(g100, alice, "100-warm", 200)
        await xmpp_to_sip(g100, alice, "100-warm", 200, 500, uas)
        keep_errors(alice)
        results["part3"] = await part3(g100, alice, rx, args, idle_100, peers_a, peers_b)
        results["part3"]["idle_cpu_per_s"] = idle_100
        for g in gws + [g100]:
            check(g.gw.proc.returncode in (None, 0), f"gateway {g.label} died:\n{g.gw.log()[-2000:]}")
        results["seconds"] = time.monotonic() - t_start
        results["loadavg_end"] = os.getloadavg()
        print(f"\nsimplegw {args.gateway}, before {args.before}; T1 {args.t1} ms; {os.cpu_count()} cores shared by "
              f"every process of the run; {results['seconds']:.0f} s; load average at start "
              f"{results['loadavg_start'][0]:.2f}; work directory {workdir}")
        report(results, args)
        if args.json:
            with open(args.json, "w") as f:
                json.dump(dict(args=vars(args), results=results), f, indent=1)
        problems = await env.cleanup()
        if problems:
            print("\n".join(problems))
            return 1
        return 0
    except harness.TestFailure as e:
        print(f"ops.py: {e}", file=sys.stderr)
        return 1
    finally:
        await env.cleanup()
        await env.stop()


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--pager-sender":
        return pager_sender(json.loads(sys.argv[2]))
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--gateway", required=True, help="the current release build")
    ap.add_argument("--before", required=True, help="the release build from before issue 15 (3a33170)")
    ap.add_argument("--rates", help="offered rates, msg/s, comma-separated (500,2000; --fast 1000)")
    ap.add_argument("--rate-seconds", type=float, help="seconds of sending per rate window (5; --fast 2)")
    ap.add_argument("--scrapes", type=int, help="scrapes per configuration in part 2 (200; --fast 50)")
    ap.add_argument("--reloads", type=int, help="reloads of the idle gateway in part 3 (20; --fast 10)")
    ap.add_argument("--reload-seconds", type=float, help="part 3's load: seconds with and as many without "
                                                        "reloads (20; --fast 10)")
    ap.add_argument("--load-rate", type=int, default=500, help="part 3's SIP->XMPP rate (500/s)")
    ap.add_argument("--t1", type=int, help="the gateways' SIP T1 in ms (500; --fast 40)")
    ap.add_argument("--fast", action="store_true", help="development: T1 40 ms, one rate, smaller counts")
    ap.add_argument("--no-rates", action="store_true", help="skip part 1")
    ap.add_argument("--json", help="also write every figure to this file")
    args = ap.parse_args()
    for key, value in DEFAULTS.items():
        if getattr(args, key) is None:
            setattr(args, key, FAST[key] if args.fast else value)
    try:
        args.rates = [int(x) for x in str(args.rates).split(",") if x.strip()]
    except ValueError:
        ap.error("--rates takes whole messages per second, comma-separated")
    return asyncio.run(main_async(args))


if __name__ == "__main__":
    sys.exit(main())
