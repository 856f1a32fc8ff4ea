#!/usr/bin/python3
"""authz.py - what each <authorization mode> costs across the peering link and in the gateway,
for W XMPP watchers of P SIP presentities (issue 12, the seeds' efficiency argument), one fresh
gateway per mode, the same load for each; mode "rls" is not an <authorization> mode but
<peer><rls>: each watcher's contacts on one list subscription to the peer's list server (RFC 4662),
which this script then also plays (bench/rls_peer.py: the XCAP server the gateway stores the
rls-services documents on, and the RLS that notifies a list's members):

  - W watchers u00000.. each subscribe to the P presentities p0000..@sip.example (W x P XMPP
    subscriptions); the owners' rules (one RFC 5025 document per presentity, on an XCAP server
    this script serves) let the even watchers see everything and the odd ones everything but the
    note: two views;
  - the SIP side (bench/presence.py's notifier) approves every dialog at once, as a presence
    server whose owners allow the watcher (watcher, views, rls) or the gateway's agent (policy);
    in mode rls each list dialog's first NOTIFY holds all its members, active, and a change of a
    presentity is one partial-state NOTIFY in every list holding it (one per watcher);
  - set-up: SIP dialogs the gateway opened, RSS after set-up minus before, per XMPP subscription
    (W x P) and per presentity;
  - then K changes of p0000: NOTIFYs that crossed the link per change, <presence> stanzas out,
    gateway CPU per change (schedstat of every thread, from the first NOTIFY to the last stanza).

Usage: bench/authz.py --gateway build/release/simplegw [--watchers 100] [--presentities 20]
                      [--changes 20] [--modes watcher,policy,views,rls] [--json] [--keep]
"""

import argparse
import asyncio
import json
import os
import re
import shutil
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "e2e"))
import harness  # noqa: E402
from harness import SIP_DOMAIN, XMPP_DOMAIN, check, pidf  # noqa: E402
from presence import Run, change_doc, cpu_ns, rss_bytes, subscribes  # noqa: E402
from rls_peer import RlsRun, XcapStore  # noqa: E402
from test_authz import ALL, NO_NOTE, XcapServer  # noqa: E402

# what the gateway logs when the list subscriptions go wrong (mapping/presence.c, rls_*)
RLS_TROUBLE = re.compile(r"^.*(?:no list server|list NOTIFY .*(?:refused|ignored)|list subscription of .* ended"
                         r"|list document could not).*$", re.M)


def owner_rules(w):
    odd = "".join(f'<cr:one id="sip:u{i:05d}@{XMPP_DOMAIN}"/>' for i in range(1, w, 2))
    excepts = "".join(f'<cr:except id="sip:u{i:05d}@{XMPP_DOMAIN}"/>' for i in range(1, w, 2))
    return ('<?xml version="1.0" encoding="UTF-8"?>\n'
            '<cr:ruleset xmlns="urn:ietf:params:xml:ns:pres-rules"'
            ' xmlns:cr="urn:ietf:params:xml:ns:common-policy">'
            f'<cr:rule id="all"><cr:conditions><cr:identity><cr:many domain="{XMPP_DOMAIN}">'
            f'{excepts}</cr:many></cr:identity></cr:conditions><cr:actions><sub-handling>allow'
            f'</sub-handling></cr:actions><cr:transformations>{ALL}</cr:transformations></cr:rule>'
            f'<cr:rule id="odd"><cr:conditions><cr:identity>{odd}</cr:identity></cr:conditions>'
            '<cr:actions><sub-handling>allow</sub-handling></cr:actions>'
            f'<cr:transformations>{NO_NOTE}</cr:transformations></cr:rule></cr:ruleset>\n')


async def rls_logins(args, x, sip, xcap):
    """Mode rls, --rls-logins N: the watchers' subscribes go N watchers at a time (each one's P
    subscribes together, as at a login), the next N once the lists of these are stored.  The
    gateway writes every list over one XCAP client that refuses more than 16 requests in flight,
    and takes a refused write for a peer without a list server (a dialog per contact, for every
    watcher on the peer until a restart): with --rls-logins 0 all W lists are written at once."""
    w, p, n = args.watchers, args.presentities, args.rls_logins
    for lo in range(0, w, n):
        hi = min(w, lo + n)
        await x.send("".join(f"<presence type='subscribe' from='u{i:05d}@{XMPP_DOMAIN}' "
                             f"to='p{j:04d}@{SIP_DOMAIN}'/>"
                             for i in range(lo, hi) for j in range(p)).encode())
        await harness.wait_for(lambda: len(xcap.services) >= hi or sip.subscribes > sip.list_subscribes,
                               60, f"the lists of watchers {lo}..{hi - 1} stored")


async def mode_run(args, workdir, mode):
    w, p, k = args.watchers, args.presentities, args.changes
    xcap = XcapStore() if mode == "rls" else XcapServer()
    rules = owner_rules(w)
    pres = [f"sip:p{j:04d}@{SIP_DOMAIN}" for j in range(p)]
    for uri in pres:
        xcap.put(uri, rules)
    await xcap.start()
    args.peer_extra = "" if mode == "watcher" else \
        f'<rls xcap-root="{xcap.root}"/>' if mode == "rls" else \
        f'<authorization mode="{mode}" xcap-root="{xcap.root}" refresh="60m"/>'
    initial = lambda uri: ("active", pidf(uri, note="here"))  # noqa: E731
    run = RlsRun(args, workdir, initial, xcap) if mode == "rls" else Run(args, workdir, initial)
    try:
        async with run:
            x, sip, pid = run.xmpp, run.notifier, run.pid
            rss0 = rss_bytes(pid)
            cpu0 = cpu_ns(pid)
            if mode == "rls" and args.rls_logins:
                await rls_logins(args, x, sip, xcap)
            else:
                for j in range(p):
                    await x.send(subscribes("u{:05d}@" + XMPP_DOMAIN, f"p{j:04d}@{SIP_DOMAIN}", w))
            await run.barrier(120)
            await x.wait_count("subscribed", w * p, 300, "W x P subscribed")
            await harness.wait_for(lambda: not sip.inflight, 60, "NOTIFYs answered")
            await x.quiet(0.5)
            cpu_setup = cpu_ns(pid) - cpu0
            dialogs = sip.subscribes
            await asyncio.sleep(args.settle)
            rss1 = rss_bytes(pid)
            cpus, notifies, stanzas = [], [], []
            for i in range(1, k + 1):
                before = x.counts["presence"]
                c0 = cpu_ns(pid)
                _, n, futs = sip.change(pres[0], change_doc(pres[0], i))
                await x.wait_count("presence", before + w, 60, f"change {i}")
                statuses = await asyncio.gather(*futs)
                check(all(s == 200 for s in statuses), f"NOTIFYs answered {statuses}")
                await x.quiet(0.1)
                cpus.append(cpu_ns(pid) - c0)
                notifies.append(n)
                stanzas.append(x.counts["presence"] - before)
            res = dict(mode=mode, watchers=w, presentities=p, subscriptions=w * p,
                       sip_dialogs=dialogs, xcap_gets=len(xcap.requests),
                       setup_cpu_us_per_subscription=cpu_setup / 1000 / (w * p),
                       bytes_per_subscription=(rss1 - rss0) / (w * p),
                       bytes_per_presentity=(rss1 - rss0) / p,
                       notifies_per_change=statistics.mean(notifies),
                       stanzas_per_change=statistics.mean(stanzas),
                       cpu_us_per_change=statistics.median(cpus) / 1000,
                       cpu_us_per_stanza=statistics.median(cpus) / 1000 / w,
                       xcap_puts=sum(m == "PUT" for m, _, _ in getattr(xcap, "writes", ())),
                       notify_status=dict(sip.notify_status), gateway_log=run.gw.logpath)
            if mode == "rls":
                trouble = RLS_TROUBLE.findall(run.gw.log())
                res.update(list_dialogs=sip.list_subscribes,
                           per_contact_dialogs=sip.subscribes - sip.list_subscribes,
                           list_refreshes=sip.refreshes, list_notifies=sip.list_notifies,
                           list_refused=dict(sip.list_refused), gateway_trouble=trouble[:20])
                args.log(f"  rls: {sip.list_subscribes} list dialogs, "
                         f"{res['per_contact_dialogs']} per-contact dialogs (fallback), "
                         f"{sip.refreshes} refreshes, {len(xcap.writes)} XCAP writes "
                         f"{sorted(set((m, st) for m, _, st in xcap.writes))}, "
                         f"list SUBSCRIBEs refused {sip.list_refused or 'none'}, "
                         f"NOTIFY answers {sip.notify_status}")
                for line in trouble[:10]:
                    args.log(f"  gateway: {line}")
            args.log(f"  {mode}: {dialogs} dialogs, {res['notifies_per_change']:.0f} NOTIFY/change, "
                     f"{res['cpu_us_per_change']:.0f} us/change, "
                     f"{res['bytes_per_subscription']:.0f} B/subscription")
            return res
    finally:
        await xcap.stop()


async def main_async(args):
    workdir = tempfile.mkdtemp(prefix="simplegw-bench-authz-")
    results = []
    try:
        for mode in args.modes.split(","):
            results.append(await mode_run(args, workdir, mode))
    finally:
        if args.keep:
            args.log(f"gateway logs kept under {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    print(f"W={args.watchers} watchers x P={args.presentities} presentities, {args.changes} changes "
          f"of one presentity; half the watchers see no note (two views)")
    print(f"{'mode':>8} {'dialogs':>8} {'NOTIFY/chg':>10} {'stanzas/chg':>11} {'CPU us/chg':>10} "
          f"{'CPU us/stz':>10} {'setup us/sub':>12} {'RSS B/sub':>10} {'RSS B/pres':>10} {'XCAP GETs':>9} "
          f"{'XCAP PUTs':>9}")
    for r in results:
        print(f"{r['mode']:>8} {r['sip_dialogs']:>8} {r['notifies_per_change']:>10.1f} "
              f"{r['stanzas_per_change']:>11.1f} {r['cpu_us_per_change']:>10.0f} "
              f"{r['cpu_us_per_stanza']:>10.1f} {r['setup_cpu_us_per_subscription']:>12.0f} "
              f"{r['bytes_per_subscription']:>10.0f} {r['bytes_per_presentity']:>10.0f} "
              f"{r['xcap_gets']:>9} {r['xcap_puts']:>9}")
    for r in results:
        if r["mode"] == "rls":
            print(f"rls: {r['list_dialogs']} list dialogs + {r['per_contact_dialogs']} dialogs of a "
                  f"contact each (the gateway's fallback); watchers' subscribes "
                  + (f"{args.rls_logins} watchers at a time" if args.rls_logins else "all at once"))
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--gateway", required=True)
    ap.add_argument("--watchers", type=int, default=100)
    ap.add_argument("--presentities", type=int, default=20)
    ap.add_argument("--changes", type=int, default=20)
    ap.add_argument("--modes", default="watcher,policy,views",
                    help="comma-separated: watcher, policy, views (<authorization mode>) and rls "
                         "(<peer><rls>, list subscriptions to the peer's list server)")
    ap.add_argument("--settle", type=int, default=35,
                    help="seconds to wait after set-up before reading RSS (SIP keeps transactions 32 s)")
    ap.add_argument("--rls-logins", type=int, default=16,
                    help="mode rls: send the watchers' subscribes this many watchers at a time, the "
                         "next once their lists are stored (0: all at once; see rls_logins())")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--keep", action="store_true", help="keep the work directory (gateway logs)")
    args = ap.parse_args()
    args.sip_attrs = ""
    args.hold = 0
    args.max_w = args.watchers * args.presentities
    args.log = lambda m: print(m, file=sys.stderr, flush=True)
    sys.exit(asyncio.run(main_async(args)))


if __name__ == "__main__":
    main()
