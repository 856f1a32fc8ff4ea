#!/usr/bin/python3
"""soak.py - a mixed load for a set time, printing the gateway's resident memory and open file
descriptors every few seconds: flat means healthy.

Real peers on 127.0.0.1: Prosody with slixmpp users, a SIP user agent answering MESSAGEs, a SIP
sender, and a sipp presence server.  The load, every second: pager messages both ways, a
presence change fanned out to the XMPP watchers, and subscriptions coming and going.

Usage: bench/soak.py --gateway build/release/simplegw [--duration 120] [--rate 50] [--every 5]
Exit status 0 when RSS and descriptors at the end are within 20 % (RSS) / 5 fds of their values
after the warm-up (40 s, or a quarter of the run: finished SIP transactions are kept 32 s over
UDP, so memory rises that long before it may level), else 2.
"""

import argparse
import asyncio
import os
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "e2e"))
import harness  # noqa: E402
from harness import SIP_DOMAIN, XMPP_DOMAIN, pidf  # noqa: E402
from test_faults import SipPeer, SipSender  # noqa: E402

PAGE = os.sysconf("SC_PAGE_SIZE")


def rss_kib(pid):
    with open(f"/proc/{pid}/statm") as f:
        return int(f.read().split()[1]) * PAGE // 1024


def fds(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


async def main_async(args):
    workdir = tempfile.mkdtemp(prefix="simplegw-soak-")
    env = harness.Env(os.path.abspath(args.gateway), workdir, users=("alice", "carol", "dave"))
    await env.start()
    samples = []
    try:
        xml = harness.gateway_xml(env, log_level="notice").replace(
            "<im ", '<presence expires="60s"/>\n  <im ', 1)
        gw = await env.gateway(xml)
        pid = gw.proc.pid
        peer = SipPeer(env.peer_sip_port)   # answers MESSAGEs; the presence server is below
        sender = SipSender(env.gw_sip_port)
        await sender.start()
        alice, carol = await env.client("alice"), await env.client("carol")
        t_end = time.monotonic() + args.duration
        k = 0
        next_sample = time.monotonic()
        print(f"{'t (s)':>6} {'RSS KiB':>9} {'fds':>5} {'msgs':>7}", flush=True)
        await peer.start()
        while time.monotonic() < t_end:
            for _ in range(args.rate):
                k += 1
                sender.message(f"soak {k}")
                alice.send_message(mto=f"bob@{SIP_DOMAIN}", mbody=f"soak back {k}", mtype="chat")
            # subscriptions come and go (the SIP side answers them with nothing: they stay
            # pending and are refreshed or dropped)
            who = carol if k % 2 else alice
            who.send_presence(pto=f"p{k % 7}@{SIP_DOMAIN}", ptype="subscribe" if k % 3 else "unsubscribe")
            await asyncio.sleep(1.0)
            if time.monotonic() >= next_sample:
                s = (round(args.duration - (t_end - time.monotonic())), rss_kib(pid), fds(pid), 2 * k)
                samples.append(s)
                print(f"{s[0]:>6} {s[1]:>9} {s[2]:>5} {s[3]:>7}", flush=True)
                next_sample += args.every
        await asyncio.sleep(2.0)
        peer.stop()
        sender.transport.close()
    finally:
        await env.cleanup()
        await env.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    return samples


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--gateway", required=True)
    ap.add_argument("--duration", type=int, default=120, help="seconds of load")
    ap.add_argument("--rate", type=int, default=50, help="messages per second each way")
    ap.add_argument("--every", type=int, default=5, help="seconds between samples")
    args = ap.parse_args()
    samples = asyncio.run(main_async(args))
    # finished SIP transactions stay 64*T1 = 32 s over UDP: memory rises for that long, then is
    # flat if nothing leaks; judge from 40 s on
    after = [s for s in samples if s[0] >= max(40, args.duration // 4)]
    if len(after) < 3:
        print("too short to judge: run at least 60 s")
        return 0
    warm = after[0]
    last = samples[-1]
    flat = last[1] <= warm[1] * 1.2 and last[2] <= warm[2] + 5
    print(f"after warm-up: RSS {warm[1]} KiB, {warm[2]} fds; at the end: RSS {last[1]} KiB, "
          f"{last[2]} fds: {'flat' if flat else 'GROWING'}")
    return 0 if flat else 2


if __name__ == "__main__":
    sys.exit(main())
