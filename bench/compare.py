#!/usr/bin/python3
"""compare.py - simplegw and Kamailio's xmpp module side by side, pager IM both ways, in one run.

Every gateway faces the same Prosody (component "sip.example"), the same slixmpp user and the same
sipp peers on 127.0.0.1, one after the other: simplegw, then Kamailio as Debian ships it, then
Kamailio with other memory managers (--kamailio-variants, default "shipped,tlsf": tlsf runs with
-x tlsf -X tlsf on its command line), then the floor (bench/floor_relay.c, left out with
--no-floor): a minimal relay doing the same job with one epoll loop, a minimal parse, no
transactions and no timers beyond resending its own unanswered MESSAGEs, whose CPU per message
is what this machine charges for the wakeups and sends alone (issue 16: simplegw within 2 x of it at 1 000/s),
and the stack's floor (bench/stack_floor.c, also left out with --no-floor): the same job done the
plainest way on the brief's libraries (Sofia-SIP's nta with a transaction per message, expat on
the component stream, no stanza objects, no mapping, checks or logging), whose CPU per message
beyond the floor's is what those libraries cost.  For each gateway
and direction it measures:
  - peak: messages per second end to end with the offered load well above what the chain carries,
    and the gateway's CPU per message over that run (user+system of all its processes, /proc/PID/stat);
  - what a deployment sees, at fixed offered rates (--rates, default 1000,2000 msg/s): CPU and
    system calls per message.  Each rate and direction is one window: --rate-seconds of sending,
    then on until max(64*T1, 5 s) + 1.5 s after the last message was delivered, so that the
    window holds the end of every transaction the messages made (simplegw keeps a completed
    server transaction 64*T1 = 32 s, a client one T4 = 5 s; Kamailio's tm keeps both for its
    5 s wait timer).  CPU is the on-CPU time (user + system) of every thread of the gateway's
    processes, from /proc/PID/task/*/schedstat (ns; /proc/PID/stat rounds to 10 ms per
    process).  System calls are counted by the kernel's raw_syscalls:sys_enter tracepoint
    through `perf stat -p` on the same processes, enabled and disabled over the same window
    (while perf holds the tracepoint every system call costs about 0.15 us more; --no-syscalls
    leaves perf out); context switches too (a process blocking for want of work, each one a
    wakeup when work comes).  Each gateway's idle figures are subtracted: a window of the same length
    with nothing sent and the same peers connected (Prosody's component link, the XMPP user),
    measured once per gateway before its rate windows and taken per second, times each
    window's own length.  The share of the window after the last message (the transactions'
    timers and ends) is shown too.  Windows are 6.5 s apart, so that simplegw's malloc_trim()
    once traffic stops (64*T1 + 2..6 s after the last message: a cost of pauses, which a
    gateway under continuous load pays every 5 minutes) falls between them;
  - added latency at half of that peak, at --common-rate (the same load for all gateways) and, for
    the others, at half of simplegw's peak (its half-peak run repeated beside them):
    the time from the message's packet reaching the gateway (skipped unless root, or with --no-latency)
    to the translated message's packet leaving it, taken from kernel timestamps on the loopback
    interface (an AF_PACKET capture in a child process; needs root) - p50, p90, p99, p99.9, max;
    and how the messages arrived: how many each packet carried (a TCP segment of Prosody's can
    carry a burst of stanzas, all timed from its one arrival, so the last one's latency holds
    the gateway's work on those before it), the latency of the first message of each packet
    alone, which no burst queues behind, and how far apart the gateway sends the messages of
    one packet (its time per message inside a burst);
  - memory: proportional set size (PSS, so Kamailio's shared memory is counted once) before the
    peak load, right after each direction's part of it (what it holds per message then: its
    recently completed transactions), and --settle seconds later; Kamailio's shared-memory pool
    use as well.  The rate windows and latency runs come after the settling and once nothing is left of
    the peak (64*T1, or Kamailio's 30 s fr_timer for a request whose answer was lost, + 8 s).
Then, for simplegw and the stack's floor (when they are in the run), instructions per message
under valgrind --tool=callgrind (the stable figure on a noisy machine): --callgrind-n messages each way at --callgrind-rate (callgrind runs
the gateway ~50 times slower: at 1000/s it falls seconds behind, its delivery verdicts time out
and the peers retransmit), each direction in its own window that runs on until max(64*T1, 5 s)
+ 1.5 s after the last message, with an idle window of the same length before them;
callgrind_control zeroes before each window and dumps at its last message and at its end.  It
reports the window's instructions per message "with timers", the same less the idle window's
instructions per second times the window's length ("idle-subtracted": the periodic timers' own
cost taken out), and the idle-subtracted part after the last message.
It prints the tables, the ratios simplegw/each other gateway, and the targets (CPU per message at
peak at most a third of each Kamailio variant's in each direction; at each fixed rate below
Kamailio as shipped and within 1.5 x of Kamailio with TLSF, and at 1 000/s within 2 x of the
floor; p99 added latency under 2 ms at half of peak; memory back to its baseline after the load).

T1 is RFC 3261's 500 ms by default, so a window lasts --rate-seconds + 33.5 s, and the whole run
about 20 minutes.  --t1 sets simplegw's T1 (its gateway file's <sip t1="...">, docs/config.md)
and scales the windows with it, for development: --fast is --t1 40 with smaller runs (about 8
minutes).  Its figures are not for quoting: T4 and Kamailio's timers do not scale, so windows
are 6.5 s after the last message, and simplegw's trimmer (at 64*T1 + 2..6 s) can fall inside
them; with T1 = 40 ms simplegw retransmits a MESSAGE whenever sipp is descheduled for 40 ms.

Kamailio is Debian's 5.6 with kamailio-xmpp-modules, configured by bench/kamailio-xmpp.cfg and
run with bench/kamailio_xmpp_fix.c preloaded (built here with cc), without which its xmpp module
crashes on Prosody's stream header.

Usage: bench/compare.py --gateway build/release/simplegw [-n 20000] [--rate 8000] [--latency-n 5000]
           [--common-rate 1000] [--rates 1000,2000] [--rate-seconds 10] [--callgrind-n 2000]
           [--callgrind-rate 200] [--t1 500] [--fast] [--settle 45]
           [--kamailio-variants shipped,tlsf] [--only simplegw|kamailio|floor|stack-floor]... [--no-floor] [--json FILE]
           [--no-callgrind] [--no-latency] [--no-rates] [--no-syscalls]
Exit status: 0 all targets met, 2 a target missed, 1 the run went wrong.
"""

import argparse
import asyncio
import glob
import json
import os
import re
import shutil
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
from harness import SECRET, SIP_DOMAIN, XMPP_DOMAIN, check  # noqa: E402

CLK_TCK = os.sysconf("SC_CLK_TCK")
KAMAILIO_CFG = os.path.join(HERE, "kamailio-xmpp.cfg")
SHIM_SRC = os.path.join(HERE, "kamailio_xmpp_fix.c")
FLOOR_SRC = os.path.join(HERE, "floor_relay.c")
STACK_FLOOR_SRC = os.path.join(HERE, "stack_floor.c")
PAD = "benchmark message of typical length"   # bodies are about 60 bytes with the token
TOKEN = re.compile(rb"tk(\d+)x")

# Kamailio's command-line memory managers per variant: shm (-x) and pkg (-X).  "shipped" is what
# Debian's package runs with no option (q_malloc, with DBG_SR_MEMORY's bookkeeping).
KAMAILIO_VARIANTS = {"shipped": [], "tlsf": ["-x", "tlsf", "-X", "tlsf"], "fm": ["-x", "fm", "-X", "fm"]}
SOFIA_T4_S = 5.0            # Sofia's T4: a non-INVITE client transaction lingers T4 after its response (Timer K)
KAMAILIO_WAIT_S = 5.0       # tm's wait_timer (default): how long Kamailio keeps a finished transaction
KAMAILIO_FR_S = 30.0        # tm's fr_timer (default): how long it retransmits a request nobody answers
WINDOW_MARGIN_S = 1.5       # after 64*T1: timers done, before simplegw's trimmer (64*T1 + 2 s at the earliest)
WINDOW_GAP_S = 6.5          # between windows: the trimmer's run after the previous one (by 64*T1 + 6 s)
FAST = dict(t1=40, n=5000, latency_n=2000, rate_seconds=3, callgrind_n=300)


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
    """user + system time of the processes, /proc/PID/stat (clock ticks: for long runs)."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        except OSError:
            pass
    return total / CLK_TCK


def sched_wait(pids):
    """(ns spent runnable but waiting for a CPU, timeslices run) over every thread of the
    processes, /proc/PID/task/TID/schedstat's second and third fields."""
    wait = slices = 0
    for pid in pids:
        for path in glob.glob(f"/proc/{pid}/task/*/schedstat"):
            try:
                with open(path) as f:
                    fields = f.read().split()
                wait += int(fields[1])
                slices += int(fields[2])
            except (OSError, ValueError, IndexError):
                pass
    return wait, slices


def cpu_ns(pids):
    """On-CPU time (user + system) of every thread of the processes, in ns, from
    /proc/PID/task/TID/schedstat: exact, where /proc/PID/stat rounds each process to a tick."""
    total = 0
    for pid in pids:
        for path in glob.glob(f"/proc/{pid}/task/*/schedstat"):
            try:
                with open(path) as f:
                    total += int(f.read().split()[0])
            except (OSError, ValueError, IndexError):
                pass
    return total


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


class SyscallCounter:
    """System calls made by every thread of some processes, counted by the kernel's
    raw_syscalls:sys_enter tracepoint: `perf stat -p` started with its events disabled and
    enabled / disabled through its control pipe, which acknowledges each command, so the count
    covers the window between enable() and disable() returning.  While perf holds the tracepoint
    every system call on the machine takes the tracing path (about 0.15 us more each here).
    The same perf counts context switches (self.switches: each time a process blocked, mostly a
    wakeup for new work when it had none) and page faults (self.faults): memory the processes touch for the first
    time, or again after giving it back (a zeroed page, about a microsecond each).
    Without perf, or with a kernel that refuses, stop() returns None."""

    def __init__(self, pids):
        self.pids = pids
        self.proc = None
        self.count = None
        self.faults = None
        self.switches = None

    async def start(self):
        cr, self.cw = os.pipe()
        self.ar, aw = os.pipe()
        try:
            self.proc = await asyncio.create_subprocess_exec(
                "perf", "stat", "-e", "raw_syscalls:sys_enter,page-faults,context-switches", "-x", ",", "-D", "-1",
                "-p", ",".join(map(str, self.pids)), "--control", f"fd:{cr},{aw}",
                pass_fds=(cr, aw), stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
        except FileNotFoundError:
            self.proc = None
        os.close(cr)
        os.close(aw)
        return self

    async def _command(self, word):
        if not self.proc:
            return False
        try:
            os.write(self.cw, word.encode() + b"\n")
        except OSError:         # perf already gone (it could not attach)
            return False
        loop = asyncio.get_running_loop()
        try:
            ack = await asyncio.wait_for(loop.run_in_executor(None, os.read, self.ar, 64), 10)
        except asyncio.TimeoutError:
            ack = b""
        return ack.startswith(b"ack")

    async def enable(self):
        return await self._command("enable")

    async def disable(self):
        return await self._command("disable")

    async def stop(self):
        """Ends perf; the number of system calls, or None when they could not be counted."""
        if self.proc:
            if self.proc.returncode is None:
                self.proc.send_signal(signal.SIGINT)
            _, err = await asyncio.wait_for(self.proc.communicate(), 30)
            for line in err.decode(errors="replace").splitlines():
                f = line.split(",")
                if f and f[0] == "<not counted>":
                    f[0] = "0"      # a process that never ran while counting (idle): none
                if len(f) > 2 and f[2] == "raw_syscalls:sys_enter" and f[0].isdigit():
                    self.count = (self.count or 0) + int(f[0])
                if len(f) > 2 and f[2] == "page-faults" and f[0].isdigit():
                    self.faults = (self.faults or 0) + int(f[0])
                if len(f) > 2 and f[2] == "context-switches" and f[0].isdigit():
                    self.switches = (self.switches or 0) + int(f[0])
        os.close(self.cw)
        os.close(self.ar)
        return self.count


# ---------------------------------------------------------------- the gateways

class SimpleGw:
    name = "simplegw"
    keeps_s = SOFIA_T4_S    # besides 64*T1: how long a finished transaction lives
    lingers_s = SOFIA_T4_S  # the same for an unanswered one (Timer F is 64*T1)

    def __init__(self, env, t1_ms):
        self.env = env
        self.t1_ms = t1_ms
        self.gw = None

    async def start(self):
        self.gw = await self.env.gateway(log_level="notice", sip_attrs=sip_attrs(self.t1_ms),
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


def sip_attrs(t1_ms):
    """simplegw's <sip> attributes: T1 only when it is not the default (500 ms)."""
    return f't1="{t1_ms}ms"' if t1_ms != 500 else ""


class KamailioProcess(harness.Kamailio):
    """harness.Kamailio with more options on its command line (the memory managers)."""

    def __init__(self, *a, extra_args=(), **kw):
        super().__init__(*a, **kw)
        self.extra_args = list(extra_args)

    def args(self):
        return super().args() + self.extra_args


class KamailioXmpp:
    keeps_s = KAMAILIO_WAIT_S
    lingers_s = KAMAILIO_FR_S + KAMAILIO_WAIT_S

    def __init__(self, env, shm_mb, variant="shipped"):
        self.env = env
        self.variant = variant
        self.name = "kamailio" if variant == "shipped" else f"kamailio-{variant}"
        self.dir = tempfile.mkdtemp(prefix="kamailio-xmpp-", dir=env.workdir)
        self.ctl = os.path.join(self.dir, "ctl")
        shim = os.path.join(self.dir, "kamailio_xmpp_fix.so")
        subprocess.run(["cc", "-shared", "-fPIC", "-O2", "-o", shim, SHIM_SRC, "-ldl"], check=True)
        self.kam = KamailioProcess(
            env, name=f"{self.name}-xmpp", cfg=KAMAILIO_CFG, shm_mb=shm_mb,
            environ={"LD_PRELOAD": shim}, extra_args=KAMAILIO_VARIANTS[variant],
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
        check(self.kam.alive(), f"{self.name} died during the run:\n" + self.kam.log_text()[-2000:])
        await self.kam.stop()


class FloorRelay:
    """bench/floor_relay.c, built here with cc: the same job with one epoll loop, a minimal parse,
    no transactions (per SIP -> XMPP message one wakeup, a parse and two sends).  Its
    CPU per message at a rate is the floor issue 16 measures simplegw against."""
    name = "floor"
    keeps_s = 0.0
    lingers_s = 0.0

    def __init__(self, env, src=FLOOR_SRC, flags=("-lcrypto",), args=()):
        """src is built with cc and flags; args follow the five every floor takes."""
        self.env = env
        base = os.path.splitext(os.path.basename(src))[0]
        self.dir = tempfile.mkdtemp(prefix=f"{base}-", dir=env.workdir)
        self.binary = os.path.join(self.dir, base)
        subprocess.run(["cc", "-std=c11", "-O2", "-Wall", "-o", self.binary, src, *flags], check=True)
        self.port = harness.free_port()
        self.args = [str(a) for a in args]
        self.proc = None
        self.log = os.path.join(self.dir, f"{base}.log")

    async def start(self, prefix=(), wait_s=5):
        """prefix: a command the binary runs under (valgrind)."""
        with open(self.log, "w") as log:
            self.proc = await asyncio.create_subprocess_exec(
                *prefix, self.binary, str(self.env.prosody.component_port), SECRET, SIP_DOMAIN, str(self.port),
                str(self.env.peer_sip_port), *self.args, stdout=log, stderr=log)
        for _ in range(int(wait_s / 0.05)):
            with open(self.log) as log:
                if "up, SIP on" in log.read():
                    return
            check(self.proc.returncode is None, f"{self.name} did not start: {open(self.log).read()}")
            await asyncio.sleep(0.05)
        raise harness.TestFailure(f"{self.name}: no component link in {wait_s} s")

    @property
    def sip_port(self):
        return self.port

    def pids(self):
        return [self.proc.pid]

    def shm_used_kib(self):
        return None

    async def stop(self):
        check(self.proc.returncode is None, f"{self.name} died during the run: {open(self.log).read()[-2000:]}")
        self.proc.terminate()
        rc = await asyncio.wait_for(self.proc.wait(), 10)
        check(rc == 0, f"{self.name} exited with {rc}: {open(self.log).read()[-2000:]}")


class StackFloor(FloorRelay):
    """bench/stack_floor.c, built here with cc against Sofia-SIP, expat and OpenSSL: the same job
    on nta (a transaction per message) and expat, with nothing of a gateway's own around them.
    Its CPU per message less the floor's is what the stack costs.  nta runs with the run's T1
    (--t1) and Sofia's other default timers."""
    name = "stack-floor"
    keeps_s = SOFIA_T4_S
    lingers_s = SOFIA_T4_S

    def __init__(self, env, t1):
        flags = subprocess.run(["pkg-config", "--cflags", "--libs", "sofia-sip-ua"], check=True,
                               capture_output=True, text=True).stdout.split()
        super().__init__(env, STACK_FLOOR_SRC, [*flags, "-lexpat", "-lcrypto"], [t1])


# ---------------------------------------------------------------- load

class Receiver:
    """Counts the XMPP user's benchmark messages per run tag: distinct ones (by token) and
    duplicates (a MESSAGE whose 200 was lost and whose retransmission came after the gateway's
    transaction had ended: with --fast's T1 against sipp's 500 ms)."""

    def __init__(self, client):
        self.tokens = {}        # tag: the tokens seen
        self.dups = {}          # tag: messages seen again
        self.last = {}          # tag: when its latest message arrived
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
        m = TOKEN.search(body.encode())
        seen = self.tokens.setdefault(tag, set())
        if m and int(m.group(1)) in seen:
            self.dups[tag] = self.dups.get(tag, 0) + 1
            return
        seen.add(int(m.group(1)) if m else len(seen))
        self.last[tag] = time.monotonic()
        want = self.events.get(tag)
        if want and len(seen) >= want[0]:
            want[1].set()

    def count(self, tag):
        return len(self.tokens.get(tag, ()))

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


async def await_deliveries(uac, done, rx, tag, n, t0):
    """After uac (a sipp sending n MESSAGEs tagged tag, started at t0) has started: waits until
    every message reached rx (done) or sipp ended, then for stragglers as long as deliveries keep
    coming (each MESSAGE has its answer, so what was forwarded is on its way).  Returns (sipp's
    wait as a future, messages delivered, when the last one came or now if all did)."""
    sipp = asyncio.ensure_future(uac.wait(timeout=600))
    arrived = asyncio.ensure_future(done.wait())
    await asyncio.wait({sipp, arrived}, timeout=600, return_when=asyncio.FIRST_COMPLETED)
    if not arrived.done() and sipp.done():
        while not arrived.done() and time.monotonic() - rx.last.get(tag, t0) < 2:
            await asyncio.sleep(0.1)
    arrived.cancel()
    delivered = rx.count(tag)
    t1 = time.monotonic() if delivered == n else rx.last.get(tag, time.monotonic())
    return sipp, delivered, t1


async def run_sip_to_xmpp(env, target, rx, tag, n, rate, refusals_ok=False):
    """n MESSAGEs offered at rate; returns (delivered per second, gateway CPU us per delivered
    message, messages delivered).  A gateway may refuse MESSAGEs it cannot take (simplegw
    answers 503 while its component link's output backs up): with refusals_ok that is a result
    (the rate is then what was delivered, until the last delivery), otherwise a failure."""
    done = rx.expect(tag, n)
    uac = sip_sender(env, target, tag, n, rate)
    pids = target.pids()
    cpu0, t0 = cpu_seconds(pids), time.monotonic()
    await uac.start()
    sipp, delivered, t1 = await await_deliveries(uac, done, rx, tag, n, t0)
    cpu1 = cpu_seconds(pids)
    rc = await sipp
    check(refusals_ok or (rc == 0 and delivered == n),
          f"sipp {tag}: {delivered} of {n} delivered: {uac.error_text()}")
    check(delivered > 0, f"sipp {tag}: nothing delivered: {uac.error_text()}")
    return delivered / (t1 - t0), (cpu1 - cpu0) / delivered * 1e6, delivered


async def run_xmpp_to_sip(env, target, client, tag, n, rate=None, batch=10):
    """n messages from the XMPP user, as fast as slixmpp goes or paced at rate, batch messages
    at a time; returns what run_sip_to_xmpp() does.  A message the gateway bounces fails the run
    (no refusal was seen in this direction: Prosody's TCP flow control paces what the gateway
    reads)."""
    uas = sip_receiver(env, tag, n)
    await uas.start()
    pids = target.pids()
    errors0 = sum(1 for m in client.inbox if m["type"] == "error")
    cpu0, t0 = cpu_seconds(pids), time.monotonic()
    for i in range(n):
        client.send_message(mto=f"bob@{SIP_DOMAIN}", mtype="chat", mbody=f"cmp {tag} tk{i + 1}x {PAD}")
        if i % batch == batch - 1:
            if rate:
                ahead = t0 + (i + 1) / rate - time.monotonic()
                await asyncio.sleep(max(ahead, 0))
            elif i % 200 == 199:
                await asyncio.sleep(0)     # let slixmpp write
    uas_done = asyncio.ensure_future(uas.wait(timeout=600))
    while not uas_done.done():
        await asyncio.wait({uas_done}, timeout=1)
        bounced = sum(1 for m in client.inbox if m["type"] == "error") - errors0
        if bounced and not uas_done.done():
            await asyncio.wait({uas_done}, timeout=10)     # what was sent arrives meanwhile
            if not uas_done.done():
                await uas.kill()
                raise harness.TestFailure(f"{tag}: the gateway bounced {bounced} of {n} messages")
    rc = uas_done.result()
    t1, cpu1 = time.monotonic(), cpu_seconds(pids)
    check(rc == 0, f"sipp {tag}: {uas.error_text()}")
    return n / (t1 - t0), (cpu1 - cpu0) / n * 1e6, n


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


def keep_errors(client):
    """Drops the delivered messages from the client's inbox (hundreds of thousands in a run),
    keeping the error stanzas, which measure() reports."""
    client.inbox[:] = [m for m in client.inbox if m["type"] == "error"]


# ---------------------------------------------------------------- fixed-rate windows

def window_tail(target, args):
    """How long a window runs on after its last message: past the end of every transaction."""
    return max(64 * args.t1 / 1000, target.keeps_s) + WINDOW_MARGIN_S


def quiet_after_peak(target, args):
    """How long after the peak load nothing is left of it: a request whose answer was lost at
    the peak is retransmitted until it times out (Kamailio's fr_timer is 30 s whatever T1 is),
    and then simplegw's trimmer runs."""
    return max(64 * args.t1 / 1000, target.lingers_s) + WINDOW_MARGIN_S + WINDOW_GAP_S


async def window(target, load, tail, syscalls):
    """Runs load() (returns the delivered rate once every message arrived, or None) and waits
    tail seconds more; the gateway's CPU and system calls and the machine's load over it all.
    Then WINDOW_GAP_S without measuring, for what comes once traffic has stopped (the trimmer)."""
    pids = target.pids()
    counter = await SyscallCounter(pids).start() if syscalls else None
    counting = counter is not None and await counter.enable()
    m0, t0, c0 = machine_busy(), time.monotonic(), cpu_ns(pids)
    delivered = await load()
    t_load, c_load = time.monotonic() - t0, cpu_ns(pids)
    await asyncio.sleep(tail)
    c1, t1 = cpu_ns(pids), time.monotonic()
    counting = counting and await counter.disable()
    m1 = machine_busy()
    n_sys = await counter.stop() if counter else None
    await asyncio.sleep(WINDOW_GAP_S)
    return dict(seconds=t1 - t0, load_seconds=t_load, cpu=(c1 - c0) / 1e9, cpu_tail=(c1 - c_load) / 1e9,
                syscalls=n_sys if counting else None, faults=counter.faults if counting else None,
                switches=counter.switches if counting else None,
                busy=busy_share(m0, m1), delivered=delivered)


async def fixed_rates(env, target, alice, rx, args):
    """The idle window, then one window per rate and direction; per-message figures with the
    idle rate (per second) times the window's length subtracted."""
    tail = window_tail(target, args)
    out = {}
    idle = await window(target, lambda: asyncio.sleep(args.rate_seconds), tail, not args.no_syscalls)
    idle["cpu_per_s"] = idle["cpu"] / idle["seconds"]
    for key in ("syscalls", "faults", "switches"):
        idle[f"{key}_per_s"] = idle[key] / idle["seconds"] if idle[key] is not None else None
    out["idle"] = idle
    print(f"  idle: {100 * idle['cpu_per_s']:.2f} % of a core, "
          f"{fmt_opt(idle['syscalls_per_s'], '{:.1f}')} system calls/s over {idle['seconds']:.1f} s", flush=True)
    for rate in args.rates:
        offered = int(rate * args.rate_seconds)
        for d in ("s2x", "x2s"):
            tag = f"{target.name}-{d}-{rate}"

            async def load(d=d, tag=tag, rate=rate, offered=offered):
                if d == "s2x":
                    return await run_sip_to_xmpp(env, target, rx, tag, offered, rate, refusals_ok=True)
                return await run_xmpp_to_sip(env, target, alice, tag, offered, rate)
            w = await window(target, load, tail, not args.no_syscalls)
            keep_errors(alice)
            w["delivered"], _, n = w["delivered"]       # per second, -, how many: per message below
            w["n"], w["refused"], w["dups"] = n, offered - n, rx.dups.get(tag, 0)
            w["cpu_raw_us"] = w["cpu"] / n * 1e6
            w["cpu_us"] = (w["cpu"] - idle["cpu_per_s"] * w["seconds"]) / n * 1e6
            # after the last message: the transactions' timers and ends
            w["cpu_tail_us"] = (w["cpu_tail"] - idle["cpu_per_s"] * (w["seconds"] - w["load_seconds"])) / n * 1e6
            # per message, less the idle rate over the window's length
            for key, out_key in (("syscalls", "sys"), ("faults", "pf"), ("switches", "cs")):
                w[out_key] = None
                if w[key] is not None and idle[f"{key}_per_s"] is not None:
                    w[f"{out_key}_raw"] = w[key] / n
                    w[out_key] = (w[key] - idle[f"{key}_per_s"] * w["seconds"]) / n
            out[(d, rate)] = w
            print(f"  {d} at {rate}/s: {w['delivered']:.0f} msg/s delivered ({w['refused']} refused, "
                  f"{w['dups']} twice), "
                  f"{w['cpu_us']:.1f} us/msg ({w['cpu_raw_us']:.1f} before the idle baseline, {w['cpu_tail_us']:.1f} after the last "
                  f"message), {fmt_opt(w['sys'], '{:.2f}')} "
                  f"system calls/msg, {fmt_opt(w['cs'], '{:.2f}')} context switches/msg, {fmt_opt(w['pf'], '{:.2f}')} page faults/msg, window {w['seconds']:.1f} s, machine {w['busy']:.0f} % busy", flush=True)
            if w["delivered"] < 0.9 * rate or w["refused"]:
                print(f"  WARNING: {target.name} carried {w['delivered']:.0f} of {rate} msg/s {d}: "
                      "saturated, its figures are not those of the offered rate", flush=True)
    return out


def fmt_opt(v, fmt):
    return fmt.format(v) if v is not None else "-"


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
    packets = {name: [] for name in rules}     # per rule: [timestamp, tokens first seen in it]
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
                fresh = []
                for m in TOKEN.finditer(data, off):
                    k = int(m.group(1))
                    if k not in book:
                        book[k] = ts
                        fresh.append(k)
                if fresh:
                    packets[name].append([ts, fresh])
    with open(outpath, "w") as f:
        json.dump({"seen": seen, "packets": packets}, f)


class Capture:
    def __init__(self, workdir, rules):
        self.out = os.path.join(workdir, f"capture-{time.monotonic_ns()}.json")
        self.rules = rules
        self.proc = None
        self.got = None

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

    def _load(self):
        """The capture child's output, read once."""
        if self.got is None:
            with open(self.out) as f:
                self.got = json.load(f)
        return self.got

    def delays_ms(self, rule_in, rule_out):
        seen = self._load()["seen"]
        t_in, t_out = seen[rule_in], seen[rule_out]
        return sorted((t_out[k] - t_in[k]) * 1e3 for k in t_in if k in t_out), len(t_in), len(t_out)

    def bursts(self, rule_in, rule_out):
        """How the messages arrived: the packets (TCP segments, or datagrams) that brought them in.
        A segment of Prosody's that carries k stanzas times all k from one arrival, so the last
        one's added latency includes the gateway's work on the k - 1 before it.  Returns, per
        message, the number of messages its packet carried (p50, p99, max), and the added latency
        of the first message of each packet alone (p50, p99: the gateway's latency without the
        queue a burst makes behind itself)."""
        got = self._load()
        t_out = got["seen"][rule_out]
        sizes, heads, gaps = [], [], []
        for ts, toks in got["packets"][rule_in]:
            sizes += [len(toks)] * len(toks)
            k = str(toks[0])
            if k in t_out:
                heads.append((t_out[k] - ts) * 1e3)
            outs = [t_out[str(t)] for t in toks if str(t) in t_out]
            if len(outs) >= 2:
                gaps.append((max(outs) - min(outs)) * 1e3 / (len(outs) - 1))
        sizes.sort()
        heads.sort()
        gaps.sort()
        p = percentiles(sizes) or {}
        h = percentiles(heads) or {}
        g = percentiles(gaps) or {}
        return {"per_packet_p50": p.get("p50"), "per_packet_p99": p.get("p99"),
                "per_packet_max": p.get("max"), "packets": len(got["packets"][rule_in]),
                "head_p50": h.get("p50"), "head_p99": h.get("p99"), "gap_p50": g.get("p50")}


def percentiles(values):
    if not values:
        return None
    def at(q):
        return values[min(len(values) - 1, int(q * len(values)))]
    return dict(p50=at(0.50), p90=at(0.90), p99=at(0.99), p999=at(0.999), max=values[-1])


# ---------------------------------------------------------------- one gateway, all phases

async def measure(env, target, alice, rx, args, ref=None):
    """One gateway's figures; ref: simplegw's, when measured before, whose half-peak rates the
    other gateways' latency is measured at too (the same load, side by side)."""
    r = {}
    await target.start()
    await until_relaying(env, target, rx)
    # warm-up: both directions, so first-use allocations are not in the figures
    await run_sip_to_xmpp(env, target, rx, f"{target.name}-warm", 500, 1000)
    await run_xmpp_to_sip(env, target, alice, f"{target.name}-warm", 500, 1000)
    await asyncio.sleep(1)
    r["pss_before"] = pss_kib(target.pids())
    r["shm_before"] = target.shm_used_kib()

    r["s2x_rate"], r["s2x_cpu"], got = await run_sip_to_xmpp(env, target, rx, f"{target.name}-peak",
                                                             args.n, args.rate, refusals_ok=True)
    r["s2x_refused"], r["s2x_dups"] = args.n - got, rx.dups.get(f"{target.name}-peak", 0)
    # what each direction's peak leaves held right after it, per message: the completed SIP
    # transactions (64*T1 for a received MESSAGE over UDP, T4 = 5 s for a sent one) and the rest
    r["pss_after_s2x"] = pss_kib(target.pids())
    r["held_s2x"] = (r["pss_after_s2x"] - r["pss_before"]) * 1024 / max(got, 1)
    r["x2s_rate"], r["x2s_cpu"], _ = await run_xmpp_to_sip(env, target, alice, f"{target.name}-peak", args.n)
    keep_errors(alice)

    r["pss_after"] = pss_kib(target.pids())
    r["held_x2s"] = (r["pss_after"] - r["pss_after_s2x"]) * 1024 / args.n
    r["shm_after"] = target.shm_used_kib()
    r["messages"] = got + args.n
    # the peak's SIP transactions live 64 x T1: let them go before the idle, rate and latency
    # runs, and read the memory once they have
    t_peak = time.monotonic()
    await asyncio.sleep(args.settle)
    r["pss_settled"] = pss_kib(target.pids())
    r["shm_settled"] = target.shm_used_kib()

    if not args.no_rates:
        await asyncio.sleep(max(0.0, t_peak + quiet_after_peak(target, args) - time.monotonic()))
        r["fixed"] = await fixed_rates(env, target, alice, rx, args)

    comp = env.prosody.component_port
    rules = {"sip_in": ["udp", "dst", target.sip_port], "xmpp_out": ["tcp", "dst", comp],
             "xmpp_in": ["tcp", "src", comp], "sip_out": ["udp", "dst", env.peer_sip_port],
             "client_out": ["tcp", "dst", env.prosody.c2s_port]}
    # at half of this gateway's own peak (the measure), then at one rate for both
    directions = (("s2x", "SIP->XMPP", "sip_in", "xmpp_out",
                   lambda tag, rate: run_sip_to_xmpp(env, target, rx, tag, args.latency_n, rate)),
                  ("x2s", "XMPP->SIP", "xmpp_in", "sip_out",
                   lambda tag, rate: run_xmpp_to_sip(env, target, alice, tag, args.latency_n, rate,
                                                    batch=args.latency_batch or max(1, rate // 1000))))
    labels = ("half", "common") + (("gwhalf",) if ref and ref.get("s2x_half") else ())
    for label in () if args.no_latency else labels:
        for d, name, rule_in, rule_out, run in directions:
            rate = (int(r[f"{d}_rate"] / 2) if label == "half" else ref[f"{d}_half"] if label == "gwhalf"
                    else args.common_rate)
            async with Capture(env.workdir, rules) as cap:
                m0, w0 = machine_busy(), sched_wait(target.pids())
                await run(f"{target.name}-{label}", max(rate, 1))
                r[f"{d}_{label}_busy"] = busy_share(m0, machine_busy())
                w1 = sched_wait(target.pids())
                # how long the gateway, woken, waited for a CPU the others held (mean)
                r[f"{d}_{label}_runq_ms"] = ((w1[0] - w0[0]) / max(1, w1[1] - w0[1])) / 1e6
            lat, n_in, n_out = cap.delays_ms(rule_in, rule_out)
            check(len(lat) >= 0.99 * args.latency_n, f"{target.name}: {name} capture matched "
                  f"{len(lat)} of {args.latency_n} ({n_in} in, {n_out} out)")
            r[f"{d}_{label}"], r[f"{d}_{label}_lat"] = rate, percentiles(lat)
            r[f"{d}_{label}_bursts"] = cap.bursts(rule_in, rule_out)
            if d == "x2s":
                # where the bursts begin: the XMPP user's own segments to Prosody
                r[f"{d}_{label}_bursts"]["client_p99"] = cap.bursts("client_out", rule_out)["per_packet_p99"]
            keep_errors(alice)

    errors = [m for m in alice.inbox if m["type"] == "error"]
    check(not errors, f"{target.name}: {len(errors)} XMPP errors, first: {errors[:1]}")
    alice.inbox.clear()
    await target.stop()
    return r


async def callgrind(env, binary, alice, rx, args, kind="simplegw"):
    """Instructions per message in each direction, simplegw (or, kind "stack-floor",
    bench/stack_floor.c) under callgrind: an idle window,
    then one window per direction, each --callgrind-n / --callgrind-rate seconds long plus
    window_tail() (64*T1 + WINDOW_MARGIN_S); callgrind_control zeroes the counts before a window,
    dumps them when the last message has been delivered and again at the end.  Returns
    {direction: (with timers, idle-subtracted, of which after the last message)}, the idle
    instructions per second and what was delivered."""
    out = os.path.join(env.workdir, f"callgrind-{kind}")
    os.makedirs(out, exist_ok=True)
    valgrind = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}/cg.out", "--dump-instr=no",
                "--collect-jumps=no"]

    class T:
        """The target under callgrind, as the load functions see one."""
        name = "callgrind"

        def __init__(self, sip_port, like, proc, pids, stop):
            self.sip_port, self.keeps_s, self.lingers_s = sip_port, like.keeps_s, like.lingers_s
            self.proc, self.pids, self.stop = proc, pids, stop
    if kind == "stack-floor":
        sf = StackFloor(env, args.t1)
        await sf.start(prefix=valgrind, wait_s=60)
        t = T(sf.port, StackFloor, sf.proc, sf.pids, sf.stop)
    else:
        wrapper = os.path.join(out, "simplegw-callgrind")
        with open(wrapper, "w") as f:
            f.write("#!/bin/sh\nexec " + " ".join(valgrind) + f" {binary} \"$@\"\n")
        os.chmod(wrapper, 0o755)
        gw = harness.Gateway(env, wrapper, harness.gateway_xml(env, log_level="notice", sip_attrs=sip_attrs(args.t1),
                                                               im='<im max-body="8k" delivery-wait="5s"/>'))
        env.gateways.append(gw)
        await gw.start(wait_up=False)
        await gw.wait_log(r"component \S+: connected", timeout=60)
        t = T(env.gw_sip_port, SimpleGw, gw.proc, lambda: [gw.proc.pid], lambda: gw.stop(timeout=60))
    n, rate = args.callgrind_n, args.callgrind_rate
    await run_sip_to_xmpp(env, t, rx, "cg-warm", 200, 100)
    await run_xmpp_to_sip(env, t, alice, "cg-warm", 200, 100)
    tail = window_tail(t, args)
    # the warm-up's transactions end, and the trimmer runs after them, before the idle window
    await asyncio.sleep(quiet_after_peak(t, args))

    def control(opt):
        subprocess.run(["callgrind_control", opt, str(t.proc.pid)], check=True, capture_output=True, timeout=120)
    seconds, tails, delivered = {}, {}, {}
    for d in ("idle", "s2x", "x2s"):
        control("--zero")
        t0 = time.monotonic()
        if d == "idle":
            await asyncio.sleep(n / rate)
        elif d == "s2x":
            delivered[d] = (await run_sip_to_xmpp(env, t, rx, "cg-s2x", n, rate))[0]   # all n, or it fails
        else:
            delivered[d] = (await run_xmpp_to_sip(env, t, alice, "cg-x2s", n, rate))[0]
        control(f"--dump={d}-load")
        t_load = time.monotonic()
        await asyncio.sleep(tail)
        control(f"--dump={d}-tail")
        seconds[d], tails[d] = time.monotonic() - t0, time.monotonic() - t_load
        keep_errors(alice)
        if d != "x2s":
            await asyncio.sleep(WINDOW_GAP_S)
    parts = {}
    for path in glob.glob(f"{out}/cg.out.*"):
        with open(path, errors="replace") as f:
            text = f.read()
        m = re.search(r"^desc: Trigger: (?:Client Request: |dump )?(\S+)$", text, re.M)
        s = re.search(r"^summary:\s+(\d+)", text, re.M)
        if m and s:
            parts[m.group(1)] = int(s.group(1))
    await t.stop()
    if args.keep_callgrind:
        keep = args.keep_callgrind if kind == "simplegw" else os.path.join(args.keep_callgrind, kind)
        os.makedirs(keep, exist_ok=True)
        for path in glob.glob(f"{out}/cg.out*"):
            shutil.copy(path, keep)
        print(f"  callgrind dumps copied to {keep} (callgrind_annotate FILE)", flush=True)
    wanted = {f"{d}-{p}" for d in ("idle", "s2x", "x2s") for p in ("load", "tail")}
    check(wanted <= set(parts), f"callgrind dumps not found in {out}: {sorted(parts)}")
    idle_per_s = (parts["idle-load"] + parts["idle-tail"]) / seconds["idle"]
    cg = {"idle_per_s": idle_per_s, "seconds": seconds["s2x"], "rate": rate, "n": n}
    for d in ("s2x", "x2s"):
        total, in_tail = parts[f"{d}-load"] + parts[f"{d}-tail"], parts[f"{d}-tail"]
        cg[d] = (total / n, (total - idle_per_s * seconds[d]) / n, (in_tail - idle_per_s * tails[d]) / n)
        cg[f"{d}_delivered"] = delivered[d]
        print(f"  {d}: {cg[d][0]:,.0f} instructions/msg with timers, {cg[d][1]:,.0f} idle-subtracted "
              f"(of which {cg[d][2]:,.0f} after the last message), {delivered[d]:.0f} msg/s delivered, "
              f"window {seconds[d]:.1f} s", flush=True)
        if delivered[d] < 0.95 * rate:
            print(f"  WARNING: under callgrind the gateway did not keep up with {rate}/s: "
                  "its figures include retransmissions; lower --callgrind-rate", flush=True)
    print(f"  idle: {idle_per_s:,.0f} instructions/s", flush=True)
    return cg


# ---------------------------------------------------------------- report

DIRECTIONS = (("s2x", "SIP->XMPP"), ("x2s", "XMPP->SIP"))


def print_table(title, names, ratio_to, rows):
    """rows: (label, {name: value or None}, fmt, with ratios); ratios simplegw/each of ratio_to."""
    lines = []
    for label, vals, fmt, ratio in rows:
        cells = [fmt_opt(vals.get(n), fmt) for n in names]
        rats = []
        for k in ratio_to:
            s, v = vals.get("simplegw"), vals.get(k)
            rats.append(f"{s / v:.2f}" if ratio and s is not None and v else "")
        lines.append((label, cells, rats))
    width = max(len(label) for label, _, _ in lines) + 2
    colw = max(12, max(len(n) for n in names) + 2)
    ratw = [max(10, len(f"simplegw/{k}") + 2) for k in ratio_to]
    print(f"\n{title}")
    print(f"{'':{width}}" + "".join(f"{n:>{colw}}" for n in names)
          + "".join(f"{'simplegw/' + k:>{w}}" for k, w in zip(ratio_to, ratw)))
    for label, cells, rats in lines:
        print(f"{label:{width}}" + "".join(f"{c:>{colw}}" for c in cells)
              + "".join(f"{r:>{w}}" for r, w in zip(rats, ratw)))


def tail_text(args):
    tail = max(64 * args.t1 / 1000, SOFIA_T4_S, KAMAILIO_WAIT_S) + WINDOW_MARGIN_S
    return f"max(64*T1, 5 s) + {WINDOW_MARGIN_S:g} s ({tail:g} s, T1 = {args.t1} ms)"


def report(results, cg, args):
    names = list(results)
    kams = [n for n in names if n.startswith("kamailio")]
    ratio_to = [n for n in names if n != "simplegw"] if "simplegw" in results else []

    def col(key):
        return {n: results[n].get(key) for n in names}

    def lat_col(key):
        """col() for a latency figure; simplegw's "gwhalf" is its own half-peak run, which the
        others' "gwhalf" runs repeat."""
        return {n: results[n].get(key.replace("_gwhalf", "_half") if n == "simplegw" else key)
                for n in names}

    rows = [("SIP->XMPP peak msg/s delivered", col("s2x_rate"), "{:.0f}", True),
            (f"  refused of {args.n} (503: the gateway's XMPP output backed up)", col("s2x_refused"), "{:.0f}", False),
            ("  delivered twice (a retransmission after the transaction ended)", col("s2x_dups"), "{:.0f}", False),
            ("SIP->XMPP CPU us/msg delivered at peak", col("s2x_cpu"), "{:.1f}", True),
            ("XMPP->SIP peak msg/s", col("x2s_rate"), "{:.0f}", True),
            ("XMPP->SIP CPU us/msg at peak", col("x2s_cpu"), "{:.1f}", True)]
    for d, dname in DIRECTIONS:
        for label, what in (() if args.no_latency else
                            (("half", "at half of own peak"), ("common", "at the same rate"),
                             ("gwhalf", "at half of simplegw's peak"))):
            rows.append((f"{dname} {what}, msg/s", lat_col(f"{d}_{label}"), "{:.0f}", False))
            rows.append(("  machine CPU busy meanwhile %", lat_col(f"{d}_{label}_busy"), "{:.0f}", False))
            rows.append(("  the gateway's wait for a CPU once runnable, mean per timeslice, ms",
                         lat_col(f"{d}_{label}_runq_ms"), "{:.3f}", False))
            lats = lat_col(f"{d}_{label}_lat")
            for q in ("p50", "p99", "p999", "max"):
                vals = {n: (lats[n] or {}).get(q) for n in names}
                rows.append((f"  added latency {q} ms", vals, "{:.3f}", True))
            for key, what, fmt in (("per_packet_p50", "messages in the packet it came in, p50", "{:.0f}"),
                                   ("per_packet_p99", "  … p99", "{:.0f}"),
                                   ("per_packet_max", "  … max", "{:.0f}"),
                                   ("head_p50", "added latency p50, first message of each packet, ms", "{:.3f}"),
                                   ("head_p99", "  … p99", "{:.3f}"),
                                   ("gap_p50", "time per message inside one packet's burst, p50, ms", "{:.3f}"),
                                   ("client_p99", "messages per segment the XMPP user sent Prosody, p99", "{:.0f}")):
                vals = {n: (b or {}).get(key) for n, b in lat_col(f"{d}_{label}_bursts").items()}
                rows.append((f"  {what}", vals, fmt, False))
    for n in names:
        r = results[n]
        r["growth"] = (r["pss_settled"] - r["pss_before"]) * 1024 / r["messages"]
        if r.get("shm_settled") is not None:
            r["shm_growth"] = (r["shm_settled"] - r["shm_before"]) * 1024 / r["messages"]
    rows += [("PSS before the peak load KiB", col("pss_before"), "{:.0f}", True),
             ("PSS right after it KiB", col("pss_after"), "{:.0f}", True),
             ("  held per SIP->XMPP message right after its peak B (PSS)", col("held_s2x"), "{:.0f}", True),
             ("  held per XMPP->SIP message right after its peak B (PSS)", col("held_x2s"), "{:.0f}", True),
             (f"PSS {args.settle} s later KiB", col("pss_settled"), "{:.0f}", True),
             ("shared-memory pool used before KiB", col("shm_before"), "{:.0f}", False),
             (f"shared-memory pool used {args.settle} s later KiB", col("shm_settled"), "{:.0f}", False),
             ("memory kept per message relayed B (PSS)", col("growth"), "{:.0f}", False),
             ("  shared-memory pool kept per message B", col("shm_growth"), "{:.0f}", False)]
    print_table(f"peak ({args.n} messages each way), latency ({args.latency_n} each way) and memory",
                names, ratio_to, rows)

    fixed = {n: results[n].get("fixed") for n in names if results[n].get("fixed")}
    if fixed:
        fnames = list(fixed)
        idle_rows = [("idle CPU, % of a core", {n: 100 * fixed[n]["idle"]["cpu_per_s"] for n in fnames}, "{:.2f}", False),
                     ("idle system calls/s", {n: fixed[n]["idle"]["syscalls_per_s"] for n in fnames}, "{:.1f}", False),
                     ("window length s (idle)", {n: fixed[n]["idle"]["seconds"] for n in fnames}, "{:.1f}", False)]
        print_table(f"idle baseline: {args.rate_seconds:g} s + {tail_text(args)}, nothing sent, "
                    "peers connected (subtracted below, per second of each window)",
                    fnames, [], idle_rows)
        for rate in args.rates:
            for d, dname in DIRECTIONS:
                ws = {n: fixed[n][(d, rate)] for n in fnames}
                rows = [("delivered msg/s", {n: ws[n]["delivered"] for n in fnames}, "{:.0f}", False),
                        ("refused (503)", {n: ws[n]["refused"] for n in fnames}, "{:.0f}", False),
                        ("delivered twice", {n: ws[n]["dups"] for n in fnames}, "{:.0f}", False),
                        ("CPU us/msg, idle subtracted", {n: ws[n]["cpu_us"] for n in fnames}, "{:.1f}", True),
                        ("  of which after the last message", {n: ws[n]["cpu_tail_us"] for n in fnames},
                         "{:.1f}", False),        # near 0 for Kamailio: no ratio
                        ("CPU us/msg, with idle", {n: ws[n]["cpu_raw_us"] for n in fnames}, "{:.1f}", True),
                        ("system calls/msg, idle subtracted", {n: ws[n]["sys"] for n in fnames}, "{:.2f}", True),
                        ("system calls/msg, with idle", {n: ws[n].get("sys_raw") for n in fnames}, "{:.2f}", True),
                        ("context switches/msg, idle subtracted", {n: ws[n].get("cs") for n in fnames}, "{:.2f}", True),
                        ("page faults/msg, idle subtracted", {n: ws[n].get("pf") for n in fnames}, "{:.2f}", True),
                        ("window s", {n: ws[n]["seconds"] for n in fnames}, "{:.1f}", False),
                        ("machine CPU busy meanwhile %", {n: ws[n]["busy"] for n in fnames}, "{:.0f}", False)]
                if cg:
                    any_cg = next(iter(cg.values()))
                    rows += [(f"instructions/msg, callgrind at {any_cg['rate']}/s, with timers",
                              {k: c[d][0] for k, c in cg.items()}, "{:,.0f}", True),
                             ("instructions/msg, callgrind, idle subtracted",
                              {k: c[d][1] for k, c in cg.items()}, "{:,.0f}", True),
                             ("  of which after the last message",
                              {k: c[d][2] for k, c in cg.items()}, "{:,.0f}", False)]
                n_msgs = int(rate * args.rate_seconds)
                print_table(f"{dname} at {rate} msg/s offered ({n_msgs} messages in {args.rate_seconds:g} s, "
                            f"then {tail_text(args)})",
                            [n for n in names if n in fnames], [k for k in ratio_to if k in fnames], rows)
    for kind, c in (cg or {}).items():
        print(f"\n{kind} under callgrind ({c['n']} messages each way at {c['rate']}/s, "
              f"windows of {c['seconds']:.1f} s: {c['n'] / c['rate']:g} s + {tail_text(args)}; "
              f"idle {c['idle_per_s']:,.0f} instructions/s):")
        for d, dname in DIRECTIONS:
            print(f"  {dname}: {c[d][0]:,.0f} instructions/msg with timers, {c[d][1]:,.0f} idle-subtracted, "
                  f"of which {c[d][2]:,.0f} after the last message ({c[f'{d}_delivered']:.0f} msg/s delivered)")

    verdicts = []
    if "simplegw" in results:
        s = results["simplegw"]
        for k in kams:
            for d, label in DIRECTIONS:
                ratio = s[f"{d}_cpu"] / results[k][f"{d}_cpu"]
                verdicts.append((ratio <= 1 / 3, f"{label} CPU per message at peak {ratio:.2f} x {k}'s "
                                                 "(target <= 0.33)"))
        for d, label in DIRECTIONS:
            if args.no_latency:
                break
            p99 = s[f"{d}_half_lat"]["p99"]
            verdicts.append((p99 < 2.0, f"{label} p99 added latency {p99:.3f} ms at half of peak, "
                                        f"{s[f'{d}_half']} msg/s (target < 2 ms)"))
        # issue 16's targets at each fixed rate: below Kamailio as shipped, within 1.5 x of
        # Kamailio with TLSF, and at 1 000/s within 2 x of the floor (bench/floor_relay.c)
        fixed_s = s.get("fixed") or {}
        bounds = [("kamailio", 1.0, "<"), ("kamailio-tlsf", 1.5, "<=")]
        for rate in args.rates if fixed_s else ():
            for d, label in DIRECTIONS:
                mine = fixed_s[(d, rate)]["cpu_us"]
                for k, bound, op in bounds + ([("floor", 2.0, "<=")] if rate == 1000 else []):
                    theirs = (results.get(k, {}).get("fixed") or {}).get((d, rate), {}).get("cpu_us")
                    if not theirs:
                        continue
                    ratio = mine / theirs
                    ok = ratio < bound if op == "<" else ratio <= bound
                    verdicts.append((ok, f"{label} CPU per message at {rate}/s {ratio:.2f} x {k}'s "
                                         f"({mine:.1f} / {theirs:.1f} us, target {op} {bound:g})"))
        back = s["pss_settled"] <= s["pss_before"] * 1.10 + 1024
        verdicts.append((back, f"memory {s['pss_before']} KiB before, {s['pss_settled']} KiB {args.settle} s after "
                               f"(target: back within 10 % + 1 MiB)"))
    print()
    for ok, text in verdicts:
        print(f"{'met   ' if ok else 'MISSED'} {text}")
    return all(ok for ok, _ in verdicts)


def as_json(results, cg, args):
    def clean(v):
        if isinstance(v, dict):
            return {(f"{k[0]}@{k[1]}" if isinstance(k, tuple) else k): clean(x) for k, x in v.items()}
        return v
    return json.dumps(dict(args=vars(args), results=clean(results), callgrind=cg), indent=1)


async def main_async(args):
    workdir = tempfile.mkdtemp(prefix="simplegw-compare-")
    env = harness.Env(os.path.abspath(args.gateway), workdir)
    env.xmpp.nagle = args.prosody_nagle == "on"
    await env.start()
    results, cg, target = {}, None, None
    t_start = time.monotonic()
    try:
        alice = await env.client("alice")
        rx = Receiver(alice)
        order = [("simplegw", None)] if not args.only or "simplegw" in args.only else []
        if not args.only or "kamailio" in args.only:
            order += [("kamailio", v) for v in args.kamailio_variants]
        if (not args.only and not args.no_floor) or (args.only and "floor" in args.only):
            order += [("floor", None)]
        if (not args.only and not args.no_floor) or (args.only and "stack-floor" in args.only):
            order += [("stack-floor", None)]
        for kind, variant in order:
            target = (SimpleGw(env, args.t1) if kind == "simplegw" else FloorRelay(env) if kind == "floor"
                      else StackFloor(env, args.t1) if kind == "stack-floor"
                      else KamailioXmpp(env, args.kamailio_shm, variant))
            print(f"---- {target.name} ({time.monotonic() - t_start:.0f} s)", flush=True)
            results[target.name] = await measure(env, target, alice, rx, args, results.get("simplegw"))
        target = None
        cg = {}
        for kind in ("simplegw", "stack-floor"):
            if (kind, None) in order and not args.no_callgrind:
                print(f"---- {kind} under callgrind ({time.monotonic() - t_start:.0f} s)", flush=True)
                cg[kind] = await callgrind(env, os.path.abspath(args.gateway), alice, rx, args, kind)
        print(f"\nmessages per direction: {args.n} at peak (SIP offered at {args.rate}/s), "
              f"{args.latency_n} per latency run, {args.rate_seconds:g} s at each of "
              f"{', '.join(map(str, args.rates))} msg/s; T1 {args.t1} ms; {os.cpu_count()} cores shared "
              f"by every process of the run; {time.monotonic() - t_start:.0f} s")
        met = report(results, cg, args)
        if args.json:
            with open(args.json, "w") as f:
                f.write(as_json(results, cg, args))
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
    ap.add_argument("-n", type=int, help="messages per direction at peak (20000; --fast 5000)")
    ap.add_argument("--rate", type=int, default=8000, help="SIP MESSAGEs per second offered at peak")
    ap.add_argument("--latency-n", type=int, help="messages per direction for latency (5000; --fast 2000)")
    ap.add_argument("--common-rate", type=int, default=1000,
                    help="messages per second for the latency every gateway is measured at")
    ap.add_argument("--rates", default="1000,2000",
                    help="offered rates (msg/s, comma-separated) for CPU and system calls per message")
    ap.add_argument("--rate-seconds", type=float,
                    help="seconds of sending at each fixed rate, before max(64*T1, 5 s) + 1.5 s more (10; --fast 3)")
    ap.add_argument("--no-rates", action="store_true", help="skip the fixed-rate windows")
    ap.add_argument("--no-syscalls", action="store_true", help="do not count system calls (no perf)")
    ap.add_argument("--callgrind-n", type=int, help="messages per direction under callgrind (2000; --fast 300)")
    ap.add_argument("--callgrind-rate", type=int, default=200,
                    help="messages per second under callgrind (200: what the gateway under callgrind "
                         "keeps up with here)")
    ap.add_argument("--no-callgrind", action="store_true")
    ap.add_argument("--keep-callgrind", metavar="DIR",
                    help="copy callgrind's dumps (one per window part: idle-load, s2x-load, ...) to DIR")
    ap.add_argument("--no-latency", action="store_true", help="skip the latency runs (automatic when not root)")
    ap.add_argument("--latency-batch", type=int, default=0,
                    help="XMPP->SIP latency runs: messages the XMPP user sends at a time (default: "
                    "a millisecond's worth, rate/1000, at least 1; the peak and the rate windows "
                    "send 10 at a time).  Each batch reaches the gateway as one burst, and a "
                    "burst's last message waits for the gateway's work on those before it")
    ap.add_argument("--t1", type=int, help="simplegw's SIP T1 in ms (500; --fast 40): every window "
                    "runs max(64*T1, 5 s) + 1.5 s past its last message")
    ap.add_argument("--fast", action="store_true",
                    help="development mode: T1 40 ms and smaller runs, for options not given")
    ap.add_argument("--settle", type=float,
                    help="seconds before the last memory reading (64*T1 + 13 s: SIP keeps completed UDP "
                         "transactions 64*T1 = 32 s)")
    ap.add_argument("--kamailio-shm", type=int, default=1024, help="Kamailio's shared memory pool, MB")
    ap.add_argument("--kamailio-variants", default="shipped,tlsf",
                    help=f"Kamailio configurations, comma-separated, of {', '.join(KAMAILIO_VARIANTS)}: "
                         "shipped = Debian's defaults, tlsf = -x tlsf -X tlsf, fm = -x fm -X fm")
    ap.add_argument("--only", choices=("simplegw", "kamailio", "floor", "stack-floor"), action="append",
                    help="one gateway (kamailio: every --kamailio-variants; floor: bench/floor_relay.c; "
                         "stack-floor: bench/stack_floor.c); "
                         "may be given more than once")
    ap.add_argument("--no-floor", action="store_true",
                    help="leave out bench/floor_relay.c and bench/stack_floor.c, the floors")
    ap.add_argument("--json", help="also write every figure to this file")
    ap.add_argument("--prosody-nagle", choices=("on", "off"), default="on",
                    help="Prosody's Nagle algorithm on its connections (on: Prosody's default; "
                         "off: network_settings = { nagle = false })")
    args = ap.parse_args()
    defaults = dict(t1=500, n=20000, latency_n=5000, rate_seconds=10, callgrind_n=2000)
    for key, value in defaults.items():
        if getattr(args, key) is None:
            setattr(args, key, FAST[key] if args.fast else value)
    if args.settle is None:
        args.settle = round(64 * args.t1 / 1000 + 13, 1)
    try:
        args.rates = [int(x) for x in args.rates.split(",") if x.strip()]
        args.kamailio_variants = [v.strip() for v in args.kamailio_variants.split(",") if v.strip()]
    except ValueError:
        ap.error("--rates takes whole messages per second, comma-separated")
    unknown = [v for v in args.kamailio_variants if v not in KAMAILIO_VARIANTS]
    if unknown or not args.kamailio_variants:
        ap.error(f"--kamailio-variants: {', '.join(unknown) or 'none given'}; known: {', '.join(KAMAILIO_VARIANTS)}")
    if len(set(args.kamailio_variants)) != len(args.kamailio_variants):
        ap.error("--kamailio-variants: each variant once")
    if os.geteuid() != 0 and not args.no_latency:
        print("compare.py: not root, so no latency figures (the capture needs AF_PACKET on lo)",
              file=sys.stderr)
        args.no_latency = True
    return asyncio.run(main_async(args))


if __name__ == "__main__":
    sys.exit(main())
