#!/usr/bin/python3
"""compare.py - simplegw and Kamailio's xmpp module side by side, pager IM both ways, in one run.

Both gateways face the same Prosody (component "sip.example"), the same slixmpp user and the same
sipp peers on 127.0.0.1, one after the other.  For each gateway and direction it measures:
  - peak: messages per second end to end with the offered load well above what the chain carries,
    and the gateway's CPU per message (user+system of all its processes, from /proc),
  - added latency at half of that peak, and at --common-rate (the same load for both gateways):
    the time from the message's packet reaching the gateway (skipped unless root, or with --no-latency)
    to the translated message's packet leaving it, taken from kernel timestamps on the loopback
    interface (an AF_PACKET capture in a child process; needs root) - p50, p90, p99, p99.9, max,
  - memory: proportional set size (PSS, so Kamailio's shared memory is counted once) before the
    peak load, right after it, and --settle seconds later; Kamailio's shared-memory pool use as
    well.  The latency runs come after the settling, so that the peak's SIP transactions (kept
    32 s) are gone and do not weigh on them.
Then, for simplegw only, instructions per message under valgrind --tool=callgrind (the stable
figure on a noisy machine).  It prints a table, the ratios simplegw/Kamailio, and the targets
(CPU per message at most a third of Kamailio's in each direction, p99 added latency under 2 ms
at half of peak, memory back to its baseline after the load).

Kamailio is Debian's 5.6 with kamailio-xmpp-modules, configured by bench/kamailio-xmpp.cfg and
run with bench/kamailio_xmpp_fix.c preloaded (built here with cc), without which its xmpp module
crashes on Prosody's stream header.

Usage: bench/compare.py --gateway build/release/simplegw [-n 20000] [--latency-n 5000] [--common-rate 1000]
           [--callgrind-n 2000] [--settle 40] [--only simplegw|kamailio] [--no-callgrind]
Exit status: 0 all targets met, 2 a target missed, 1 the run went wrong.
"""

import argparse
import asyncio
import glob
import json
import os
import re
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "e2e"))
import harness  # noqa: E402
from harness import SECRET, SIP_DOMAIN, XMPP_DOMAIN, check, free_port  # noqa: E402

CLK_TCK = os.sysconf("SC_CLK_TCK")
KAMAILIO_CFG = os.path.join(HERE, "kamailio-xmpp.cfg")
SHIM_SRC = os.path.join(HERE, "kamailio_xmpp_fix.c")
PAD = "benchmark message of typical length"   # bodies are about 60 bytes with the token
TOKEN = re.compile(rb"tk(\d+)x")


# ---------------------------------------------------------------- process accounting

def group_pids(pgid):
    """Every process in process group pgid (Kamailio forks its workers into its own group)."""
    pids = []
    for d in glob.glob("/proc/[0-9]*"):
        try:
            with open(d + "/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid:
            pids.append(int(d[6:]))
    return pids


def cpu_seconds(pids):
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        except OSError:
            pass
    return total / CLK_TCK


def machine_busy():
    """(busy, total) jiffies of all CPUs from /proc/stat: how saturated the machine was."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    idle = v[3] + v[4]
    return sum(v) - idle, sum(v)


def busy_share(before, after):
    return 100.0 * (after[0] - before[0]) / max(after[1] - before[1], 1)


def pss_kib(pids):
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/smaps_rollup") as f:
                for line in f:
                    if line.startswith("Pss:"):
                        total += int(line.split()[1])
                        break
        except OSError:
            pass
    return total


# ---------------------------------------------------------------- the two gateways

class SimpleGw:
    name = "simplegw"

    def __init__(self, env):
        self.env = env
        self.gw = None

    async def start(self):
        self.gw = await self.env.gateway(log_level="notice",
                                         im='<im max-body="8k" delivery-wait="5s"/>')

    @property
    def sip_port(self):
        return self.env.gw_sip_port

    def pids(self):
        return [self.gw.proc.pid]

    def shm_used_kib(self):
        return None

    async def stop(self):
        await self.gw.stop()
        report = self.gw.sanitizer_report()
        check(report is None, f"simplegw: {report}")
        check(self.gw.exit_code == 0, f"simplegw exited with {self.gw.exit_code}")


class KamailioXmpp:
    name = "kamailio"

    def __init__(self, env, shm_mb):
        self.env = env
        self.dir = tempfile.mkdtemp(prefix="kamailio-xmpp-", dir=env.workdir)
        self.ctl = os.path.join(self.dir, "ctl")
        shim = os.path.join(self.dir, "kamailio_xmpp_fix.so")
        subprocess.run(["cc", "-shared", "-fPIC", "-O2", "-o", shim, SHIM_SRC, "-ldl"], check=True)
        self.kam = harness.Kamailio(
            env, name="kamailio-xmpp", cfg=KAMAILIO_CFG, shm_mb=shm_mb,
            environ={"LD_PRELOAD": shim},
            defines=[f"XMPP_PORT={env.prosody.component_port}", f'XMPP_SECRET="{SECRET}"',
                     f'PEER_URI="sip:127.0.0.1:{env.peer_sip_port}"', f'CTL_SOCKET="unix:{self.ctl}"'])

    async def start(self):
        await self.kam.start()

    @property
    def sip_port(self):
        return self.kam.port

    def pids(self):
        return group_pids(self.kam.proc.pid)

    def shm_used_kib(self):
        out = subprocess.run(["kamcmd", "-s", f"unix:{self.ctl}", "core.shmmem"],
                             capture_output=True, text=True, timeout=10).stdout
        m = re.search(r"real_used:\s*(\d+)", out)
        return int(m.group(1)) // 1024 if m else None

    async def stop(self):
        check(self.kam.alive(), "Kamailio died during the run:\n" + self.kam.log_text()[-2000:])
        await self.kam.stop()


# ---------------------------------------------------------------- load

class Receiver:
    """Counts the XMPP user's benchmark messages per run tag."""

    def __init__(self, client):
        self.counts = {}
        self.events = {}
        self.errors = 0
        client.add_event_handler("message", self._message)
        self.client = client

    def _message(self, msg):
        if msg["type"] == "error":
            self.errors += 1
            return
        body = msg["body"]
        if not body.startswith("cmp "):
            return
        tag = body.split(" ", 2)[1]
        n = self.counts.get(tag, 0) + 1
        self.counts[tag] = n
        want = self.events.get(tag)
        if want and n >= want[0]:
            want[1].set()

    def expect(self, tag, n):
        ev = asyncio.Event()
        self.events[tag] = (n, ev)
        return ev


def sip_sender(env, target, tag, n, rate):
    uac = env.sipp(f"uac-{tag}", "uac_message.xml",
                   dict(ruri=f"sip:alice@{XMPP_DOMAIN}", to=f"sip:alice@{XMPP_DOMAIN}",
                        sender=f"sip:bob@{SIP_DOMAIN}", ctype="text/plain;charset=UTF-8", extra="",
                        body=f"cmp {tag} tk[call_number]x {PAD}", expect="200"),
                   remote=f"127.0.0.1:{target.sip_port}", calls=n, timeout=600)
    i = uac.args.index("-trace_msg")     # tracing 20 000 messages would slow sipp down
    del uac.args[i:i + 3]
    uac.args += ["-r", str(rate), "-l", "5000"]
    return uac


def sip_receiver(env, tag, n):
    uas = env.sipp(f"uas-{tag}", "uas_reply.xml", dict(status="200", phrase="OK"),
                   port=env.peer_sip_port, calls=n, timeout=600)
    i = uas.args.index("-trace_msg")
    del uas.args[i:i + 3]
    return uas


async def run_sip_to_xmpp(env, target, rx, tag, n, rate):
    """n MESSAGEs offered at rate; returns (delivered per second, CPU us per message)."""
    done = rx.expect(tag, n)
    uac = sip_sender(env, target, tag, n, rate)
    pids = target.pids()
    cpu0, t0 = cpu_seconds(pids), time.monotonic()
    await uac.start()
    await asyncio.wait_for(done.wait(), 600)
    t1, cpu1 = time.monotonic(), cpu_seconds(pids)
    rc = await uac.wait(timeout=120)
    check(rc == 0, f"sipp {tag}: {uac.error_text()}")
    return n / (t1 - t0), (cpu1 - cpu0) / n * 1e6


async def run_xmpp_to_sip(env, target, client, tag, n, rate=None):
    """n messages from the XMPP user, as fast as slixmpp goes or paced at rate."""
    uas = sip_receiver(env, tag, n)
    await uas.start()
    pids = target.pids()
    cpu0, t0 = cpu_seconds(pids), time.monotonic()
    batch = 10
    for i in range(n):
        client.send_message(mto=f"bob@{SIP_DOMAIN}", mtype="chat", mbody=f"cmp {tag} tk{i + 1}x {PAD}")
        if i % batch == batch - 1:
            if rate:
                ahead = t0 + (i + 1) / rate - time.monotonic()
                await asyncio.sleep(max(ahead, 0))
            elif i % 200 == 199:
                await asyncio.sleep(0)     # let slixmpp write
    rc = await uas.wait(timeout=600)
    t1, cpu1 = time.monotonic(), cpu_seconds(pids)
    check(rc == 0, f"sipp {tag}: {uas.error_text()}")
    return n / (t1 - t0), (cpu1 - cpu0) / n * 1e6


async def until_relaying(env, target, rx):
    """Kamailio answers 200 before its component is connected: probe until a message arrives."""
    for attempt in range(40):
        tag = f"probe{attempt}"
        done = rx.expect(tag, 1)
        uac = sip_sender(env, target, tag, 1, 10)
        await uac.start()
        await uac.wait(timeout=30)
        try:
            await asyncio.wait_for(done.wait(), 0.5)
            return
        except asyncio.TimeoutError:
            pass
    raise harness.TestFailure(f"{target.name}: no message reached XMPP in 20 s")


# ---------------------------------------------------------------- latency capture

def port_filter(src_ports, dst_ports):
    """A classic BPF program for an AF_PACKET/SOCK_DGRAM socket (data starts at the IPv4 header)
    that keeps TCP and UDP packets from one of src_ports or to one of dst_ports, so the capture
    wakes up only for the packets it times, not for every client's traffic."""
    LDB_ABS, LDH_IND, LDX_MSH, JEQ, RET = 0x30, 0x48, 0xb1, 0x15, 0x06
    prog = [(LDB_ABS, 0, 0, 9)]                 # A = protocol
    prog.append((JEQ, 1, 0, 6))                 # TCP: go on
    prog.append((JEQ, 0, None, 17))             # UDP: go on, else drop
    prog.append((LDX_MSH, 0, 0, 0))             # X = 4 * (IP header length)
    checks = [(0, p) for p in src_ports] + [(2, p) for p in dst_ports]
    for off, port in checks:
        prog.append((LDH_IND, 0, 0, off))
        prog.append((JEQ, None, 0, port))       # true: accept
    prog.append((RET, 0, 0, 0))                 # drop
    prog.append((RET, 0, 0, 0x40000))           # accept (snap length)
    n = len(prog)
    out = []
    for i, (code, jt, jf, k) in enumerate(prog):
        if jt is None:
            jt = n - 1 - i - 1                  # to the accept instruction
        if jf is None:
            jf = n - 2 - i - 1                  # to the drop instruction
        out.append(struct.pack("HBBI", code, jt, jf, k))
    return b"".join(out), n


def capture_child(rules_json, outpath):
    """Child process: kernel-timestamped capture on lo; first sighting of each token per rule.

    rules: {name: [proto, "src"|"dst", port]}; a packet received on lo that matches
    a rule and carries tk<N>x records N's timestamp under that rule's name.  Writes JSON on SIGTERM.
    """
    rules = {name: (17 if p == "udp" else 6, side, port) for name, (p, side, port) in json.loads(rules_json).items()}
    seen = {name: {} for name in rules}
    s = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, socket.htons(0x0800))
    code, count = port_filter(sorted({port for p, side, port in rules.values() if side == "src"}),
                              sorted({port for p, side, port in rules.values() if side == "dst"}))
    import ctypes
    buf = ctypes.create_string_buffer(code)
    fprog = struct.pack("HL", count, ctypes.addressof(buf))
    s.setsockopt(socket.SOL_SOCKET, 26, fprog)             # SO_ATTACH_FILTER
    s.bind(("lo", 0))
    s.setsockopt(socket.SOL_SOCKET, 33, 64 << 20)          # SO_RCVBUFFORCE
    s.setsockopt(socket.SOL_SOCKET, 35, 1)                 # SO_TIMESTAMPNS
    s.settimeout(0.2)
    stop = False

    def on_term(*_):
        nonlocal stop
        stop = True
    signal.signal(signal.SIGTERM, on_term)
    print("ready", flush=True)
    while not stop:
        try:
            data, anc, _, addr = s.recvmsg(65536, 64)
        except socket.timeout:
            continue
        except InterruptedError:
            continue
        if addr[2] == 4:           # PACKET_OUTGOING: count each loopback packet once, on receipt
            continue
        ihl = (data[0] & 15) * 4
        proto = data[9]
        if proto not in (6, 17):
            continue
        sport, dport = struct.unpack_from("!HH", data, ihl)
        for name, (rp, side, port) in rules.items():
            if rp == proto and (sport if side == "src" else dport) == port:
                off = ihl + (8 if proto == 17 else (data[ihl + 12] >> 4) * 4)
                ts = None
                for level, kind, value in anc:
                    if level == socket.SOL_SOCKET and kind == 35:
                        sec, nsec = struct.unpack("qq", value[:16])
                        ts = sec + nsec / 1e9
                book = seen[name]
                for m in TOKEN.finditer(data, off):
                    book.setdefault(int(m.group(1)), ts)
    with open(outpath, "w") as f:
        json.dump(seen, f)


class Capture:
    def __init__(self, workdir, rules):
        self.out = os.path.join(workdir, f"capture-{time.monotonic_ns()}.json")
        self.rules = rules
        self.proc = None

    async def __aenter__(self):
        # niced: it must not take CPU from the gateway under test; the timestamps are the kernel's
        self.proc = await asyncio.create_subprocess_exec(
            "nice", "-n", "19", sys.executable, os.path.abspath(__file__), "--capture-child",
            json.dumps(self.rules), self.out, stdout=asyncio.subprocess.PIPE)
        line = await asyncio.wait_for(self.proc.stdout.readline(), 10)
        check(line.strip() == b"ready", "packet capture did not start (root needed for AF_PACKET)")
        return self

    async def __aexit__(self, *exc):
        await asyncio.sleep(0.2)
        self.proc.send_signal(signal.SIGTERM)
        await asyncio.wait_for(self.proc.wait(), 30)

    def delays_ms(self, rule_in, rule_out):
        with open(self.out) as f:
            seen = json.load(f)
        t_in, t_out = seen[rule_in], seen[rule_out]
        return sorted((t_out[k] - t_in[k]) * 1e3 for k in t_in if k in t_out), len(t_in), len(t_out)


def percentiles(values):
    if not values:
        return None
    def at(q):
        return values[min(len(values) - 1, int(q * len(values)))]
    return dict(p50=at(0.50), p90=at(0.90), p99=at(0.99), p999=at(0.999), max=values[-1])


# ---------------------------------------------------------------- one gateway, all phases

async def measure(env, target, alice, rx, args):
    r = {}
    await target.start()
    await until_relaying(env, target, rx)
    # warm-up: both directions, so first-use allocations are not in the figures
    await run_sip_to_xmpp(env, target, rx, f"{target.name}-warm", 500, 1000)
    await run_xmpp_to_sip(env, target, alice, f"{target.name}-warm", 500, 1000)
    await asyncio.sleep(1)
    r["pss_before"] = pss_kib(target.pids())
    r["shm_before"] = target.shm_used_kib()

    r["s2x_rate"], r["s2x_cpu"] = await run_sip_to_xmpp(env, target, rx, f"{target.name}-peak", args.n, args.rate)
    r["x2s_rate"], r["x2s_cpu"] = await run_xmpp_to_sip(env, target, alice, f"{target.name}-peak", args.n)

    r["pss_after"] = pss_kib(target.pids())
    r["shm_after"] = target.shm_used_kib()
    r["messages"] = 2 * args.n
    # the peak's SIP transactions live 32 s (64 x T1): let them go before timing latency, and
    # read the memory once they have
    await asyncio.sleep(args.settle)
    r["pss_settled"] = pss_kib(target.pids())
    r["shm_settled"] = target.shm_used_kib()

    comp = env.prosody.component_port
    rules = {"sip_in": ["udp", "dst", target.sip_port], "xmpp_out": ["tcp", "dst", comp],
             "xmpp_in": ["tcp", "src", comp], "sip_out": ["udp", "dst", env.peer_sip_port]}
    # at half of this gateway's own peak (the measure), then at one rate for both
    directions = (("s2x", "SIP->XMPP", "sip_in", "xmpp_out",
                   lambda tag, rate: run_sip_to_xmpp(env, target, rx, tag, args.latency_n, rate)),
                  ("x2s", "XMPP->SIP", "xmpp_in", "sip_out",
                   lambda tag, rate: run_xmpp_to_sip(env, target, alice, tag, args.latency_n, rate)))
    for label in () if args.no_latency else ("half", "common"):
        for d, name, rule_in, rule_out, run in directions:
            rate = int(r[f"{d}_rate"] / 2) if label == "half" else args.common_rate
            async with Capture(env.workdir, rules) as cap:
                m0 = machine_busy()
                await run(f"{target.name}-{label}", max(rate, 1))
                r[f"{d}_{label}_busy"] = busy_share(m0, machine_busy())
            lat, n_in, n_out = cap.delays_ms(rule_in, rule_out)
            check(len(lat) >= 0.99 * args.latency_n, f"{target.name}: {name} capture matched "
                  f"{len(lat)} of {args.latency_n} ({n_in} in, {n_out} out)")
            r[f"{d}_{label}"], r[f"{d}_{label}_lat"] = rate, percentiles(lat)

    errors = [m for m in alice.inbox if m["type"] == "error"]
    check(not errors, f"{target.name}: {len(errors)} XMPP errors, first: {errors[:1]}")
    alice.inbox.clear()
    await target.stop()
    return r


async def callgrind(env, binary, alice, rx, n):
    """Instructions per message in each direction, simplegw under callgrind."""
    out = os.path.join(env.workdir, "callgrind")
    os.makedirs(out, exist_ok=True)
    wrapper = os.path.join(out, "simplegw-callgrind")
    with open(wrapper, "w") as f:
        f.write(f"#!/bin/sh\nexec valgrind --tool=callgrind --callgrind-out-file={out}/cg.out "
                f"--dump-instr=no --collect-jumps=no {binary} \"$@\"\n")
    os.chmod(wrapper, 0o755)
    gw = harness.Gateway(env, wrapper, harness.gateway_xml(env, log_level="notice",
                                                           im='<im max-body="8k" delivery-wait="5s"/>'))
    env.gateways.append(gw)
    await gw.start(wait_up=False)
    await gw.wait_log(r"component \S+: connected", timeout=60)

    class T:
        name = "callgrind"
        sip_port = env.gw_sip_port

        def pids(self):
            return [gw.proc.pid]
    t = T()
    await run_sip_to_xmpp(env, t, rx, "cg-warm", 200, 100)
    await run_xmpp_to_sip(env, t, alice, "cg-warm", 200, 100)

    def control(opt):
        subprocess.run(["callgrind_control", opt, str(gw.proc.pid)], check=True, capture_output=True, timeout=60)
    control("--zero")
    await run_sip_to_xmpp(env, t, rx, "cg-s2x", n, 200)
    control("--dump=s2x")
    await run_xmpp_to_sip(env, t, alice, "cg-x2s", n, 200)
    control("--dump=x2s")
    totals = {}
    for path in glob.glob(f"{out}/cg.out*"):
        with open(path, errors="replace") as f:
            text = f.read()
        m = re.search(r"^desc: Trigger: Client Request: (\S+)", text, re.M) or \
            re.search(r"^desc: Trigger: .*?(s2x|x2s)", text, re.M)
        s = re.search(r"^(?:summary|totals):\s+(\d+)", text, re.M)
        if m and s and m.group(1) in ("s2x", "x2s"):
            totals[m.group(1)] = int(s.group(1)) / n
    await gw.stop(timeout=60)
    check(set(totals) == {"s2x", "x2s"}, f"callgrind dumps not found in {out}: {os.listdir(out)}")
    return totals


# ---------------------------------------------------------------- report

def report(results, cg, args):
    names = list(results)
    both = len(names) == 2
    rows = []

    def row(label, key, fmt, ratio=True):
        vals = [results[n].get(key) for n in names]
        cells = [(fmt.format(v) if v is not None else "-") for v in vals]
        rat = ""
        if both and ratio and None not in vals and vals[1]:
            rat = f"{vals[0] / vals[1]:.2f}"
        rows.append((label, cells, rat))

    def lat(label, key, q):
        for n in names:
            results[n][f"{key}_{q}"] = results[n][key][q] if results[n].get(key) else None
        row(label, f"{key}_{q}", "{:.3f}")

    row("SIP->XMPP peak msg/s", "s2x_rate", "{:.0f}")
    row("SIP->XMPP CPU us/msg", "s2x_cpu", "{:.1f}")
    row("XMPP->SIP peak msg/s", "x2s_rate", "{:.0f}")
    row("XMPP->SIP CPU us/msg", "x2s_cpu", "{:.1f}")
    for d, dname in (("s2x", "SIP->XMPP"), ("x2s", "XMPP->SIP")):
        for label, what in (() if args.no_latency else
                            (("half", "at half of own peak"), ("common", "at the same rate"))):
            row(f"{dname} {what}, msg/s", f"{d}_{label}", "{:.0f}", ratio=False)
            row("  machine CPU busy meanwhile %", f"{d}_{label}_busy", "{:.0f}", ratio=False)
            for q in ("p50", "p99", "p999", "max"):
                lat(f"  added latency {q} ms", f"{d}_{label}_lat", q)
    row("PSS before the peak load KiB", "pss_before", "{:.0f}")
    row("PSS right after it KiB", "pss_after", "{:.0f}")
    row(f"PSS {args.settle} s later KiB", "pss_settled", "{:.0f}")
    row("shared-memory pool used before KiB", "shm_before", "{:.0f}", ratio=False)
    row(f"shared-memory pool used {args.settle} s later KiB", "shm_settled", "{:.0f}", ratio=False)
    for n in names:
        r = results[n]
        r["growth"] = (r["pss_settled"] - r["pss_before"]) * 1024 / r["messages"]
        if r.get("shm_settled") is not None:
            r["shm_growth"] = (r["shm_settled"] - r["shm_before"]) * 1024 / r["messages"]
    row("memory kept per message relayed B (PSS)", "growth", "{:.0f}", ratio=False)
    row("  shared-memory pool kept per message B", "shm_growth", "{:.0f}", ratio=False)

    width = max(len(r[0]) for r in rows) + 2
    head = "".join(f"{n:>12}" for n in names) + ("   simplegw/kamailio" if both else "")
    print(f"\n{'':{width}}{head}")
    for label, cells, rat in rows:
        print(f"{label:{width}}" + "".join(f"{c:>12}" for c in cells) + (f"   {rat:>8}" if rat else ""))
    if cg:
        print(f"\nsimplegw under callgrind ({args.callgrind_n} messages each way): "
              f"SIP->XMPP {cg['s2x']:,.0f} instructions/msg, XMPP->SIP {cg['x2s']:,.0f} instructions/msg")

    verdicts = []
    if "simplegw" in results:
        s = results["simplegw"]
        if both:
            k = results["kamailio"]
            for d, label in (("s2x", "SIP->XMPP"), ("x2s", "XMPP->SIP")):
                ratio = s[f"{d}_cpu"] / k[f"{d}_cpu"]
                verdicts.append((ratio <= 1 / 3, f"{label} CPU per message {ratio:.2f} x Kamailio's (target <= 0.33)"))
        for d, label in (("s2x", "SIP->XMPP"), ("x2s", "XMPP->SIP")):
            if args.no_latency:
                break
            p99 = s[f"{d}_half_lat"]["p99"]
            verdicts.append((p99 < 2.0, f"{label} p99 added latency {p99:.3f} ms at half of peak, "
                                        f"{s[f'{d}_half']} msg/s (target < 2 ms)"))
        back = s["pss_settled"] <= s["pss_before"] * 1.10 + 1024
        verdicts.append((back, f"memory {s['pss_before']} KiB before, {s['pss_settled']} KiB {args.settle} s after "
                               f"(target: back within 10 % + 1 MiB)"))
    print()
    for ok, text in verdicts:
        print(f"{'met   ' if ok else 'MISSED'} {text}")
    return all(ok for ok, _ in verdicts)


async def main_async(args):
    workdir = tempfile.mkdtemp(prefix="simplegw-compare-")
    env = harness.Env(os.path.abspath(args.gateway), workdir)
    await env.start()
    results, cg, target = {}, None, None
    try:
        alice = await env.client("alice")
        rx = Receiver(alice)
        order = [n for n in ("simplegw", "kamailio") if not args.only or n in args.only]
        for name in order:
            target = SimpleGw(env) if name == "simplegw" else KamailioXmpp(env, args.kamailio_shm)
            print(f"---- {name}", flush=True)
            results[name] = await measure(env, target, alice, rx, args)
        if "simplegw" in order and not args.no_callgrind:
            print("---- simplegw under callgrind", flush=True)
            cg = await callgrind(env, os.path.abspath(args.gateway), alice, rx, args.callgrind_n)
        print(f"\nmessages per direction: {args.n} at peak (SIP offered at {args.rate}/s), "
              f"{args.latency_n} per latency run; {os.cpu_count()} cores shared by every process of the run")
        met = report(results, cg, args)
        problems = await env.cleanup()
        if problems:
            print("\n".join(problems))
            return 1
        return 0 if met else 2
    finally:
        if isinstance(target, KamailioXmpp):
            await target.kam.stop()
        await env.cleanup()
        await env.stop()


def main():
    if len(sys.argv) == 4 and sys.argv[1] == "--capture-child":
        capture_child(sys.argv[2], sys.argv[3])
        return 0
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--gateway", required=True)
    ap.add_argument("-n", type=int, default=20000, help="messages per direction at peak")
    ap.add_argument("--rate", type=int, default=8000, help="SIP MESSAGEs per second offered at peak")
    ap.add_argument("--latency-n", type=int, default=5000, help="messages per direction for latency")
    ap.add_argument("--common-rate", type=int, default=1000,
                    help="messages per second for the latency both gateways are measured at")
    ap.add_argument("--callgrind-n", type=int, default=2000, help="messages per direction under callgrind")
    ap.add_argument("--no-callgrind", action="store_true")
    ap.add_argument("--no-latency", action="store_true", help="skip the latency runs (automatic when not root)")
    ap.add_argument("--settle", type=int, default=45,
                    help="seconds before the last memory reading (SIP keeps completed UDP "
                         "transactions 64*T1 = 32 s)")
    ap.add_argument("--kamailio-shm", type=int, default=1024, help="Kamailio's shared memory pool, MB")
    ap.add_argument("--only", choices=("simplegw", "kamailio"), action="append")
    args = ap.parse_args()
    if os.geteuid() != 0 and not args.no_latency:
        print("compare.py: not root, so no latency figures (the capture needs AF_PACKET on lo)",
              file=sys.stderr)
        args.no_latency = True
    return asyncio.run(main_async(args))


if __name__ == "__main__":
    sys.exit(main())
