#!/usr/bin/python3
"""pager.py - pager-mode IM throughput and cost of the gateway, both directions, against real peers.

Measures, for N messages each way through Prosody + simplegw + sipp on 127.0.0.1:
  - messages per second end to end (limited by the slower of the peers, not only the gateway),
  - the gateway's CPU time per message (user+system from /proc/PID/stat, so the load generators'
    own cost is excluded),
  - the gateway's resident memory before, right after, and a few seconds after the load.
Usage: bench/pager.py --gateway build/release/simplegw [-n 20000] [--rate 5000]
"""

import argparse
import asyncio
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "e2e"))
import harness  # noqa: E402
from harness import SIP_DOMAIN, XMPP_DOMAIN, check  # noqa: E402

CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def rss_kib(pid):
    with open(f"/proc/{pid}/statm") as f:
        return int(f.read().split()[1]) * PAGE // 1024


async def sip_to_xmpp(env, gw, n, rate):
    alice = await env.client("alice")
    got = 0
    done = asyncio.Event()

    def count(msg):
        nonlocal got
        if msg["type"] == "chat":
            got += 1
            if got >= n:
                done.set()
    alice.add_event_handler("message", count)
    cpu0, t0 = cpu_seconds(gw.proc.pid), time.monotonic()
    uac = env.sipp("bench-uac", "uac_message.xml",
                   dict(ruri=f"sip:alice@{XMPP_DOMAIN}", to=f"sip:alice@{XMPP_DOMAIN}",
                        sender=f"sip:bob@{SIP_DOMAIN}", ctype="text/plain;charset=UTF-8", extra="",
                        body="benchmark message with a body of typical length, about sixty bytes",
                        expect="200"),
                   remote=f"127.0.0.1:{env.gw_sip_port}", calls=n, timeout=600)
    uac.args += ["-r", str(rate), "-l", "5000"]
    await uac.start()
    rc = await uac.wait(timeout=600)
    await asyncio.wait_for(done.wait(), 120)
    t1, cpu1 = time.monotonic(), cpu_seconds(gw.proc.pid)
    check(rc == 0, f"sipp: {uac.error_text()}")
    await alice.logout()
    return n / (t1 - t0), (cpu1 - cpu0) / n * 1e6


async def xmpp_to_sip(env, gw, n):
    uas = env.sipp("bench-uas", "uas_reply.xml", dict(status="200", phrase="OK"),
                   port=env.peer_sip_port, calls=n, timeout=600)
    await uas.start()
    alice = await env.client("alice")
    cpu0, t0 = cpu_seconds(gw.proc.pid), time.monotonic()
    for i in range(n):
        alice.send_message(mto=f"bob@{SIP_DOMAIN}", mtype="chat",
                           mbody="benchmark message with a body of typical length, about sixty bytes")
        if i % 200 == 199:
            await asyncio.sleep(0)   # let slixmpp write
    rc = await uas.wait(timeout=600)
    t1, cpu1 = time.monotonic(), cpu_seconds(gw.proc.pid)
    check(rc == 0, f"sipp: {uas.error_text()}")
    errors = [m for m in alice.inbox if m["type"] == "error"]
    check(not errors, f"{len(errors)} errors, first: {errors[:1]}")
    await alice.logout()
    return n / (t1 - t0), (cpu1 - cpu0) / n * 1e6


async def main_async(args):
    workdir = tempfile.mkdtemp(prefix="simplegw-bench-")
    env = harness.Env(os.path.abspath(args.gateway), workdir)
    await env.start()
    try:
        gw = await env.gateway(log_level="notice",
                               im='<im max-body="8k" delivery-wait="5s"/>')
        await asyncio.sleep(0.5)
        rss0 = rss_kib(gw.proc.pid)
        r1, c1 = await sip_to_xmpp(env, gw, args.n, args.rate)
        r2, c2 = await xmpp_to_sip(env, gw, args.n)
        rss1 = rss_kib(gw.proc.pid)
        await asyncio.sleep(args.settle)
        rss2 = rss_kib(gw.proc.pid)
        if args.hold:
            print(f"holding: gateway pid {gw.proc.pid}, log {gw.logpath}", flush=True)
            await asyncio.sleep(args.hold)
        print(f"messages per direction: {args.n}")
        print(f"SIP -> XMPP: {r1:8.0f} msg/s end to end, gateway CPU {c1:6.1f} us/msg")
        print(f"XMPP -> SIP: {r2:8.0f} msg/s end to end, gateway CPU {c2:6.1f} us/msg")
        print(f"gateway RSS: {rss0} KiB before, {rss1} KiB after, {rss2} KiB {args.settle} s later")
        problems = await env.cleanup()
        if problems:
            print("\n".join(problems))
            return 1
        return 0
    finally:
        await env.stop()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--gateway", required=True)
    ap.add_argument("-n", type=int, default=20000, help="messages per direction")
    ap.add_argument("--rate", type=int, default=4000, help="SIP MESSAGEs per second offered by sipp")
    ap.add_argument("--settle", type=int, default=40,
                    help="seconds to wait before the last memory reading (SIP keeps completed UDP "
                         "transactions 64*T1 = 32 s)")
    ap.add_argument("--hold", type=int, default=0, help="keep everything running this long at the end (debugging)")
    args = ap.parse_args()
    return asyncio.run(main_async(args))


if __name__ == "__main__":
    sys.exit(main())
