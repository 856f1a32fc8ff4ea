#!/usr/bin/python3
"""run.py - every benchmark of the gateway, one after the other (`make bench` runs this):

  bench/compare.py   pager-mode IM both ways, simplegw and Kamailio's xmpp module (as shipped and
                     with TLSF) side by side: peak msg/s, CPU and system calls per message at fixed
                     rates, added latency, memory, callgrind instructions
  bench/presence.py  presence fan-out: dialogs and NOTIFYs per change, stanzas/s, memory per
                     watcher and per SIP dialog, against the issue's targets
  bench/sessions.py  MSRP chat sessions: set-ups per second, memory per session, messages per
                     second and gateway CPU per message both ways
  bench/soak.py      a mixed load for a while, RSS and open descriptors sampled: flat means healthy

Usage: bench/run.py --gateway build/release/simplegw [--only compare|presence|sessions|soak] [--quick]
  --quick  smaller runs (compare --fast, presence W=1,100,10000 with fewer changes, D=500, shorter
           settling), for a look rather than figures to quote.
Exit status: 0 when every benchmark ran and met its targets, otherwise the worst status seen
(compare.py and presence.py: 2 a target missed, 1 the run went wrong).
"""

import argparse
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
PYTHON = sys.executable or "/usr/bin/python3"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--gateway", required=True)
    ap.add_argument("--only", choices=("compare", "presence", "sessions", "soak"), action="append",
                    help="run only this benchmark (may be given twice)")
    ap.add_argument("--quick", action="store_true", help="smaller, shorter runs")
    args = ap.parse_args()
    gateway = os.path.abspath(args.gateway)
    if not os.access(gateway, os.X_OK):
        print(f"run.py: {gateway} is not an executable gateway (make {args.gateway}?)", file=sys.stderr)
        return 1
    runs = [
        ("compare", [os.path.join(HERE, "compare.py"), "--gateway", gateway]
         + (["--fast"] if args.quick else [])),
        ("presence", [os.path.join(HERE, "presence.py"), "--gateway", gateway]
         + (["--changes", "10", "--dialogs", "500", "--settle", "5"] if args.quick else [])),
        ("sessions", [os.path.join(HERE, "sessions.py"), "--gateway", gateway]
         + (["-s", "20", "-n", "1000", "-m", "100", "--settle", "5"] if args.quick else [])),
        ("soak", [os.path.join(HERE, "soak.py"), "--gateway", gateway]
         + (["--duration", "60"] if args.quick else [])),
    ]
    worst, summary = 0, []
    for name, cmd in runs:
        if args.only and name not in args.only:
            continue
        print(f"==== {name}: {' '.join(cmd)}", flush=True)
        t0 = time.monotonic()
        rc = subprocess.call([PYTHON] + cmd)
        summary.append(f"{name}: exit {rc} in {time.monotonic() - t0:.0f} s")
        worst = max(worst, rc) if rc >= 0 else max(worst, 1)
    print("==== " + "; ".join(summary))
    return worst


if __name__ == "__main__":
    sys.exit(main())
