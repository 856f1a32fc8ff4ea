#!/usr/bin/python3
"""sessions.py - session-mode IM (RFC 7573) through the gateway: sessions set up per second, memory
per session, and messages per second over established sessions, both ways.

The benchmark plays both peers so that what it measures is the gateway: the XMPP server is the
XEP-0114 endpoint of bench/presence.py (FakeXmpp: it counts the stanzas the gateway sends), the
SIP side is tests/e2e/msrp_ua.py (an independent SIP + MSRP user agent in Python).  The Python
peers are slower than the gateway, so the rates below are end-to-end rates bounded by them; the
gateway's own CPU time per operation (from /proc) is the figure to compare.

  S sessions opened from SIP (INVITE -> 200 -> ACK -> MSRP connected), uNNNN@xmpp.example each;
  RSS after them, and after S more (the memory each further session costs);
  N short messages SIP -> XMPP (MSRP SEND -> <message/>), then XMPP -> SIP, spread over the
  sessions; then M messages of 10 KB each way (2 KB chunks).

Usage: bench/sessions.py --gateway build/release/simplegw [-s 100] [-n 5000] [-m 500] [--json]
"""

import argparse
import asyncio
import importlib.util
import json
import os
import sys
import tempfile
import time
import types

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "e2e"))
import harness  # noqa: E402
from harness import SIP_DOMAIN, XMPP_DOMAIN, free_port  # noqa: E402
from msrp_ua import MsrpUA  # noqa: E402

_spec = importlib.util.spec_from_file_location("bench_presence", os.path.join(HERE, "presence.py"))
presence = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(presence)
FakeXmpp, cpu_ns, rss_bytes = presence.FakeXmpp, presence.cpu_ns, presence.rss_bytes
FakeXmpp.PATTERNS = dict(FakeXmpp.PATTERNS, body=b"<body>", message=b"<message")


def gateway_xml(workdir, xmpp_port, sip_port, peer_port, msrp_port):
    xmpp = types.SimpleNamespace(component_port=xmpp_port)
    env = types.SimpleNamespace(workdir=workdir, gw_sip_port=sip_port, peer_sip_port=peer_port,
                                gw_msrp_port=msrp_port, xmpp=xmpp, prosody=xmpp)
    sessions = (f'<sessions msrp-port="{msrp_port}" chunk-size="2k" max-total="100000" '
                f'max-per-user="10" max-message="1M"/>')
    return env, harness.gateway_xml(env, im='<im max-body="16k" delivery-wait="2s"/>',
                                    sessions=sessions, log_level="warning")


async def open_sessions(ua, gw_port, first, count, batch=25):
    calls = []
    for i in range(first, first + count, batch):
        chunk = await asyncio.gather(*(
            ua.invite(f"sip:u{k:05d}@{XMPP_DOMAIN}", next_hop=("127.0.0.1", gw_port))
            for k in range(i, min(i + batch, first + count))))
        await asyncio.gather(*(c.wait_connected(10) for c in chunk))
        calls += chunk
    return calls


async def settle(xmpp, seconds):
    await xmpp.quiet(0.3)
    await asyncio.sleep(seconds)


async def sip_to_xmpp(xmpp, pid, calls, n, body, chunk):
    base = xmpp.counts["body"]
    cpu0, t0 = cpu_ns(pid), time.perf_counter()
    for i in range(n):
        await calls[i % len(calls)].send(body, chunk_size=chunk, wait=False)
        if i % 200 == 199:
            await asyncio.sleep(0)          # let responses in
    t_end = await xmpp.wait_count("body", base + n, 120, f"{n} messages at the XMPP server")
    await xmpp.quiet(0.2)
    return n / (t_end - t0), (cpu_ns(pid) - cpu0) / 1000 / n


async def xmpp_to_sip(xmpp, pid, calls, n, text):
    got0 = sum(len(c.received_messages) for c in calls)
    stanzas = []
    for i in range(n):
        k = int(calls[i % len(calls)].remote_uri.split(":", 1)[1].split("@")[0][1:])
        stanzas.append(f"<message type='chat' from='u{k:05d}@{XMPP_DOMAIN}/b' to='bob@{SIP_DOMAIN}'"
                       f" id='m{i}'><body>{text}</body></message>".encode())
    cpu0, t0 = cpu_ns(pid), time.perf_counter()
    for i in range(0, n, 100):
        await xmpp.send(b"".join(stanzas[i:i + 100]))
    await harness.wait_for(lambda: sum(len(c.received_messages) for c in calls) - got0 >= n, 120,
                           f"{n} MSRP messages at the SIP side")
    dt = time.perf_counter() - t0
    await asyncio.sleep(0.3)
    return n / dt, (cpu_ns(pid) - cpu0) / 1000 / n


async def main_async(args):
    workdir = tempfile.mkdtemp(prefix="simplegw-bench-sessions-")
    xmpp = FakeXmpp()
    await xmpp.start()
    sip_port, peer_port, msrp_port = free_port(), free_port(), free_port()
    env, xml = gateway_xml(workdir, xmpp.port, sip_port, peer_port, msrp_port)
    gw = harness.Gateway(env, args.gateway, xml)
    await gw.start(wait_up=False)
    await asyncio.wait_for(xmpp.connected.wait(), 10)
    pid = gw.proc.pid
    ua = MsrpUA("bob", local_port=peer_port, domain=SIP_DOMAIN)
    await ua.start()
    out = {}
    try:
        await asyncio.sleep(0.5)
        rss0 = rss_bytes(pid)
        cpu0, t0 = cpu_ns(pid), time.perf_counter()
        calls = await open_sessions(ua, sip_port, 0, args.sessions)
        dt = time.perf_counter() - t0
        out["setup_per_s"] = args.sessions / dt
        out["setup_cpu_us"] = (cpu_ns(pid) - cpu0) / 1000 / args.sessions
        await settle(xmpp, args.settle)
        rss1 = rss_bytes(pid)
        more = await open_sessions(ua, sip_port, args.sessions, args.sessions)
        await settle(xmpp, args.settle)
        rss2 = rss_bytes(pid)
        out["rss_per_session_first"] = (rss1 - rss0) / args.sessions
        out["rss_per_session_next"] = (rss2 - rss1) / args.sessions
        calls += more
        short = "hello over MSRP, a short chat line"
        out["s2x_rate"], out["s2x_cpu_us"] = await sip_to_xmpp(xmpp, pid, calls, args.n, short, None)
        out["x2s_rate"], out["x2s_cpu_us"] = await xmpp_to_sip(xmpp, pid, calls, args.n, short)
        big = ("0123456789abcdef" * 640)[:10240]
        out["s2x_big_rate"], out["s2x_big_cpu_us"] = await sip_to_xmpp(xmpp, pid, calls, args.m,
                                                                        big, 2048)
        out["x2s_big_rate"], out["x2s_big_cpu_us"] = await xmpp_to_sip(xmpp, pid, calls, args.m, big)
        out["sessions"] = 2 * args.sessions
        out["rss_after"] = rss_bytes(pid)
        out["violations"] = sum(len(c.violations) for c in calls)
    finally:
        await ua.stop()
        await gw.stop(timeout=30)
        await xmpp.stop()
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--gateway", required=True)
    ap.add_argument("-s", "--sessions", type=int, default=100, help="sessions per batch (two batches)")
    ap.add_argument("-n", type=int, default=5000, help="short messages per direction")
    ap.add_argument("-m", type=int, default=500, help="10 KB messages per direction")
    ap.add_argument("--settle", type=float, default=35.0,
                    help="seconds for finished SIP transactions to go (64*T1) before reading RSS")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    r = asyncio.run(main_async(args))
    if args.json:
        print(json.dumps(r, indent=2))
        return 0
    print(f"sessions: {args.sessions} opened at {r['setup_per_s']:.0f}/s end to end, gateway CPU "
          f"{r['setup_cpu_us']:.0f} us per session set up")
    print(f"memory: {r['rss_per_session_first']:,.0f} B per session (first {args.sessions}), "
          f"{r['rss_per_session_next']:,.0f} B per further session")
    print(f"SIP -> XMPP short: {r['s2x_rate']:,.0f} msg/s end to end, gateway CPU {r['s2x_cpu_us']:.1f} us/msg")
    print(f"XMPP -> SIP short: {r['x2s_rate']:,.0f} msg/s end to end, gateway CPU {r['x2s_cpu_us']:.1f} us/msg")
    print(f"SIP -> XMPP 10 KB (2 KB chunks): {r['s2x_big_rate']:,.0f} msg/s, gateway CPU "
          f"{r['s2x_big_cpu_us']:.1f} us/msg")
    print(f"XMPP -> SIP 10 KB (2 KB chunks): {r['x2s_big_rate']:,.0f} msg/s, gateway CPU "
          f"{r['x2s_big_cpu_us']:.1f} us/msg")
    print(f"MSRP rule violations seen by the SIP side: {r['violations']}")
    return 0 if r["violations"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
