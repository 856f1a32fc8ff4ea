#!/usr/bin/python3
"""tls.py - what SIP over TLS costs simplegw, beside UDP and TCP, pager IM both ways, in one run.

The same gateway binary is started three times one after the other (--transports, default
udp,tcp,tls), each time with its one peer network (sip.example, trusting 127.0.0.1) on one
transport: its <route> and the sipp peers use UDP, TCP or TLS.  Prosody (component
sip.example), the slixmpp user alice and the sipp peers on 127.0.0.1 are those of compare.py,
whose functions this file imports.  The TLS gateway has <tls> with the "gw" certificate of a
test PKI made for the run (tests/e2e/certs.py), a <listen transport="tls">, and its peer
tls="required" routed over TLS; every gateway has <sip tcp-idle="60m"
max-connections-per-source="1000"> (for part 3) and log level notice.

sipp (Debian's sip-tester) has no TLS, so for TLS it speaks TCP to socat (Debian's, built with
OpenSSL), which speaks TLS to the gateway:
  SIP->XMPP: sipp -t t1 (one TCP connection) -> socat TCP-LISTEN,fork -> OPENSSL (client
             certificate "sip", the gateway's "gw" verified against the CA and the name
             xmpp.example) -> the gateway's TLS port;
  XMPP->SIP: the gateway's TLS route -> socat OPENSSL-LISTEN,fork (certificate "sip",
             verify=1 cafile=CA: the gateway's client certificate is required and checked)
             -> TCP -> sipp -t t1.
sipp's MESSAGEs name TLS in their Via (uac_scenario()): Sofia drops, unanswered, a request
whose top Via names another transport than the one it came over.  Only the gateway's CPU is
counted; socat's
is measured over the same windows and printed beside it, as excluded.  Each socat (with fork:
one child per connection) must carry a whole window on one TLS connection, as sipp -t t1 does
on its TCP one: the connections each socat accepted per window are counted (from its -d -d
log) and any window with more than one is flagged, and so is a window in which a socat used
90 % of a core or more (then it, not the gateway, may be what limits the rate).

What is measured, per transport:
 1. CPU per pager message both ways, at fixed offered rates (--rates, default 500,2000 msg/s)
    and at saturation, as compare.py's rate windows: --rate-seconds of sending, then on until
    max(64*T1, 5 s) + 1.5 s after the last delivery (the window holds the end of every
    transaction the messages made), windows 6.5 s apart (simplegw's malloc_trim() once traffic
    stops falls between them).  CPU is the on-CPU time (user + system) of every thread of the
    gateway, /proc/PID/task/*/schedstat, with the gateway's idle baseline subtracted: a window
    of the same length with nothing sent (Prosody's link and the XMPP user connected, the
    socats listening), taken per second times each window's length.  Saturation: --sat-n
    messages, SIP offered at --sat-rate with at most --sat-outstanding (100) unanswered,
    XMPP as fast as slixmpp sends; refusals (503) and bounces are counted; CPU over the sending
    only (up to the last delivery: the transactions' ends are not in it), idle subtracted.
    Ratios TLS/UDP and TLS/TCP are printed.  Why 100 outstanding: Sofia-SIP reads everything
    pending on a TCP connection (FIONREAD) into the message being received, and when that is
    more than <sip max-message> (64 KiB) it answers that request 413 and closes the
    connection, every request behind it lost; sipp -t t1 with thousands outstanding gets there
    whenever the gateway falls 64 KiB behind.  100 MESSAGEs are about 37 KB.  (Over TLS Sofia
    reads with one SSL_read() into its TLS read buffer at a time.)  A 413 or a broken
    connection seen by sipp is reported.  Before each XMPP->SIP run one message opens the
    gateway's connection to its peer (xmpp_to_sip_ready()): Sofia queues at most 64 messages
    on a connection being set up and refuses more with a local 503.
 2. The cost of a new peer connection (TCP and TLS phases): --handshakes MESSAGEs (SIP->XMPP,
    each delivered to alice), each on its own new connection (TLS: a full mutual handshake with
    the "sip" certificate, TLS 1.3 as both sides negotiate it, no session resumption; then one
    MESSAGE, its final answer, close), against as many MESSAGEs one after another on one
    connection, each in a window as in 1 (idle subtracted).  (new - one) / N is the gateway's
    CPU per connection: set-up, teardown and, for TLS, the handshake; the TLS row less the TCP
    row is the TLS-specific part.  The client is Python's asyncio with ssl (no socat).
 3. Memory per idle connection (TCP and TLS phases): the gateway's VmRSS (/proc/PID/status)
    before and after --idle-conns connections are opened from distinct client sockets (TLS:
    handshaken), with nothing sent on them (tcp-idle 60m keeps them open), and after they are
    closed; the gateway's count of established connections (/proc/net/tcp) is checked.

T1 is RFC 3261's 500 ms by default: a rate window lasts --rate-seconds + 33.5 s, and the whole
default run about 20 minutes.  --fast (development) is --t1 40 with one rate and smaller
counts (about 5 minutes).  Its figures are not for quoting: T4 does not scale with T1 (windows
are max(64*T1, 5 s) + 1.5 s = 6.5 s past the last message), simplegw's trimmer (at 64*T1 + 2..6 s)
can fall inside a window, and with T1 = 40 ms simplegw retransmits a MESSAGE over UDP whenever
sipp is descheduled for 40 ms (over TCP and TLS nothing is retransmitted, so the UDP column is
the one skewed); with a Timer F of 64*T1 = 2.56 s, the XMPP->SIP saturation run bounces
messages with 408 (counted) when sipp falls that far behind.

Usage: bench/tls.py --gateway build/release/simplegw [--rates 500,2000] [--rate-seconds 5]
           [--sat-n 10000] [--sat-rate 8000] [--handshakes 1000] [--idle-conns 200]
           [--sat-outstanding 100] [--t1 500] [--fast] [--transports udp,tcp,tls]
           [--no-saturation] [--no-connections] [--log-level notice] [--json FILE]
Exit status: 0 the run went through, 1 it went wrong.
"""

import argparse
import asyncio
import json
import os
import re
import secrets
import signal
import ssl
import sys
import tempfile
import time

# compare.py puts tests/e2e (harness, certs, sip_tls) on sys.path
from compare import (CLK_TCK, PAD, SOFIA_T4_S, WINDOW_GAP_S, WINDOW_MARGIN_S, Receiver,
                     await_deliveries, busy_share, cpu_ns, fmt_opt, group_pids, keep_errors,
                     machine_busy)
import harness  # noqa: E402
from harness import SIP_DOMAIN, XMPP_DOMAIN, check  # noqa: E402
import certs  # noqa: E402
import sip_tls  # noqa: E402

TRANSPORTS = ("udp", "tcp", "tls")
SIPP_TRANSPORT = {"udp": "u1", "tcp": "t1", "tls": "t1"}
DIRECTIONS = (("s2x", "SIP->XMPP"), ("x2s", "XMPP->SIP"))
SOCAT_BUSY = 0.9            # of a core: a socat this busy may be what limits the rate
FAST = dict(t1=40, rates="1000", rate_seconds=2, sat_n=2000, handshakes=200)
DEFAULTS = dict(t1=500, rates="500,2000", rate_seconds=5, sat_n=10000, handshakes=1000)


# ---------------------------------------------------------------- sockets and processes

def tcp_sockets(port, state, remote=False):
    """How many IPv4 TCP sockets have local (or remote) port `port` in `state` (/proc/net/tcp:
    "01" established, "0A" listening)."""
    n = 0
    with open("/proc/net/tcp") as f:
        next(f)
        for line in f:
            fields = line.split()
            if int(fields[2 if remote else 1].rsplit(":", 1)[1], 16) == port and fields[3] == state:
                n += 1
    return n


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return None


class Socat:
    """socat LISTEN,fork -> CONNECT in its own process group, logging (-d -d) each connection it
    accepts.  Its CPU: every thread of the group (schedstat) plus what its exited children had
    (the parent's cutime + cstime, in clock ticks, once it reaped them)."""

    def __init__(self, workdir, name, listen_port, listen, connect):
        self.name = name
        self.port = listen_port
        self.args = ["socat", "-d", "-d", listen, connect]
        self.logpath = os.path.join(workdir, f"socat-{name}.log")
        self.proc = None

    async def start(self):
        with open(self.logpath, "a") as log:
            log.write("==== " + " ".join(self.args) + "\n")
            log.flush()
            self.proc = await asyncio.create_subprocess_exec(
                *self.args, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
                stderr=log, start_new_session=True)
        # not a test connection: an OPENSSL-LISTEN would count (and log) a failed handshake
        await harness.wait_for(lambda: tcp_sockets(self.port, "0A") > 0 or self.proc.returncode is not None,
                               10, f"socat {self.name} to listen on {self.port}")
        check(self.proc.returncode is None, f"socat {self.name} exited: {self.log()[-2000:]}")
        return self

    def log(self):
        try:
            with open(self.logpath, errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def accepted(self):
        return self.log().count("accepting connection from")

    def errors(self):
        return [line for line in self.log().splitlines() if " E " in line]

    def cpu_ns(self):
        if not self.proc or self.proc.returncode is not None:
            return 0
        total = cpu_ns(group_pids(self.proc.pid))
        try:
            with open(f"/proc/{self.proc.pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += (int(fields[13]) + int(fields[14])) * 1_000_000_000 // CLK_TCK
        except OSError:
            pass
        return total

    async def stop(self):
        if self.proc and self.proc.returncode is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)     # its own group: it and its children
            except ProcessLookupError:
                pass
            try:
                await asyncio.wait_for(self.proc.wait(), 10)
            except asyncio.TimeoutError:
                os.killpg(self.proc.pid, signal.SIGKILL)
                await self.proc.wait()


# ---------------------------------------------------------------- one gateway, one transport

class Phase:
    """A gateway whose peer sip.example is on one transport, and for TLS the two socats."""

    def __init__(self, env, transport, pki, args):
        self.env, self.transport, self.pki, self.args = env, transport, pki, args
        self.name = transport
        # fresh ports for each gateway: the previous one's TCP sockets may linger
        env.gw_sip_port, env.gw_msrp_port, env.peer_sip_port = (harness.free_port() for _ in range(3))
        self.tls = transport == "tls"
        self.gw_tls_port = harness.free_port() if self.tls else None
        self.socat_in = self.socat_out = None
        if self.tls:
            pem, key = pki["sip"]
            ssl_opts = f"cert={pem},key={key},cafile={pki['ca']},verify=1"
            self.socat_in_port = harness.free_port()
            self.sipp_port = harness.free_port()     # sipp's UAS, behind socat-out
            self.socat_in = Socat(env.workdir, "in", self.socat_in_port,
                                  f"TCP-LISTEN:{self.socat_in_port},bind=127.0.0.1,reuseaddr,fork,nodelay",
                                  f"OPENSSL:127.0.0.1:{self.gw_tls_port},{ssl_opts},cn={XMPP_DOMAIN},"
                                  f"snihost={XMPP_DOMAIN},nodelay")
            self.socat_out = Socat(env.workdir, "out", env.peer_sip_port,
                                   f"OPENSSL-LISTEN:{env.peer_sip_port},bind=127.0.0.1,reuseaddr,fork,"
                                   f"{ssl_opts},nodelay",
                                   f"TCP:127.0.0.1:{self.sipp_port},nodelay")
        self.gw = None

    @property
    def uac_port(self):
        """Where the SIP sender (sipp) sends."""
        return self.socat_in_port if self.tls else self.env.gw_sip_port

    @property
    def uas_port(self):
        """Where the SIP receiver (sipp) listens."""
        return self.sipp_port if self.tls else self.env.peer_sip_port

    @property
    def sipp_transport(self):
        return SIPP_TRANSPORT[self.transport]

    def socats(self):
        return [s for s in (self.socat_in, self.socat_out) if s]

    def xml(self):
        env, pki = self.env, self.pki
        attrs = 'tcp-idle="60m" max-connections-per-source="1000"'
        if self.args.t1 != 500:
            attrs += f' t1="{self.args.t1}ms"'
        required = ' tls="required"' if self.tls else ""
        peer = (f'<peer name="sipnet" domain="{SIP_DOMAIN}"{required}>\n'
                f'    <route address="127.0.0.1" port="{env.peer_sip_port}" transport="{self.transport}" '
                f'options-interval="0s"/>\n'
                f'    <trust address="127.0.0.1"/>\n'
                f'  </peer>\n')
        # MSRP on ports of its own (never the default 2855, nor 2856 for MSRP over TLS where the
        # binary knows <sessions msrps-port>); sessions are not used here
        sessions = f'<sessions msrp-port="{env.gw_msrp_port}"'
        with open(env.gateway_binary, "rb") as f:
            if b"msrps-port" in f.read():
                sessions += f' msrps-port="{harness.free_port()}"'
        xml = harness.gateway_xml(env, peers=[peer], im='<im max-body="8k" delivery-wait="5s"/>',
                                  sip_attrs=attrs, log_level=self.args.log_level, sessions=sessions + "/>")
        if self.tls:
            tcp = f'<listen transport="tcp" address="127.0.0.1" port="{env.gw_sip_port}"/>'
            check(tcp in xml and "  <sip " in xml, "harness.gateway_xml changed: cannot add the TLS parts")
            pem, key = pki["gw"]
            xml = xml.replace(tcp, tcp + f'\n    <listen transport="tls" address="127.0.0.1" '
                                         f'port="{self.gw_tls_port}"/>', 1)
            xml = xml.replace("  <sip ", f'  <tls certificate="{pem}" key="{key}" ca="{pki["ca"]}"/>\n  <sip ', 1)
        return xml

    async def start(self):
        for s in self.socats():
            await s.start()
        self.gw = await self.env.gateway(self.xml())

    def pid(self):
        return self.gw.proc.pid

    def gw_cpu_ns(self):
        return cpu_ns([self.pid()])

    def socat_cpu_ns(self):
        return sum(s.cpu_ns() for s in self.socats())

    def accepted(self):
        return {s.name: s.accepted() for s in self.socats()}

    async def stop(self):
        for s in self.socats():
            await s.stop()
        if self.gw:
            alive = self.gw.proc.returncode is None
            await self.gw.stop()
            check(alive, f"the {self.name} gateway died during the run:\n{self.gw.log()[-3000:]}")
            report = self.gw.sanitizer_report()
            check(report is None, f"simplegw: {report}")
            check(self.gw.exit_code == 0, f"simplegw exited with {self.gw.exit_code}")


# ---------------------------------------------------------------- load (compare.py's, on any transport)

def uac_scenario(ph):
    """tests/e2e/sipp/uac_message.xml; for TLS with its Via naming TLS: sipp speaks TCP to socat,
    but the gateway's hop is TLS, and Sofia drops (unanswered, logging "Via check: invalid
    transport" at debug level) a request whose top Via names another transport."""
    if not ph.tls:
        return "uac_message.xml"
    path = os.path.join(ph.env.workdir, "uac_message_tls.xml")
    if not os.path.exists(path):
        with open(os.path.join(harness.SIPP_DIR, "uac_message.xml")) as f:
            text = f.read()
        check("Via: SIP/2.0/[transport] " in text, "uac_message.xml changed: cannot make its Via TLS")
        with open(path, "w") as f:
            f.write(text.replace("Via: SIP/2.0/[transport] ", "Via: SIP/2.0/TLS "))
    return path


def sip_sender(ph, tag, n, rate, outstanding=5000):
    uac = ph.env.sipp(f"uac-{tag}", uac_scenario(ph),
                      dict(ruri=f"sip:alice@{XMPP_DOMAIN}", to=f"sip:alice@{XMPP_DOMAIN}",
                           sender=f"sip:bob@{SIP_DOMAIN}", ctype="text/plain;charset=UTF-8", extra="",
                           body=f"cmp {tag} tk[call_number]x {PAD}", expect="200"),
                      remote=f"127.0.0.1:{ph.uac_port}", calls=n, timeout=600,
                      transport=ph.sipp_transport)
    i = uac.args.index("-trace_msg")     # tracing thousands of messages would slow sipp down
    del uac.args[i:i + 3]
    uac.args += ["-r", str(rate), "-l", str(outstanding)]
    return uac


def sip_receiver(ph, tag, n):
    uas = ph.env.sipp(f"uas-{tag}", "uas_reply.xml", dict(status="200", phrase="OK"),
                      port=ph.uas_port, calls=n, timeout=600, transport=ph.sipp_transport)
    i = uas.args.index("-trace_msg")
    del uas.args[i:i + 3]
    return uas


def sipp_failures(sipp):
    """What ended a sipp's calls badly, from its error file: {"413 ...": count, "broken pipe":
    count (the connection closed under it)}."""
    try:
        with open(sipp.errors, errors="replace") as f:
            text = f.read()
    except FileNotFoundError:
        return {}
    out = {}
    for m in re.finditer(r"received 'SIP/2\.0 (\d{3} [^\r\n]*)", text):
        out[m.group(1)] = out.get(m.group(1), 0) + 1
    pipes = text.count("Broken pipe")
    if pipes:
        out["broken pipe"] = pipes
    return out


async def sip_to_xmpp(ph, rx, tag, n, rate, refusals_ok=False, outstanding=5000, failures=None):
    """compare.run_sip_to_xmpp() over ph's transport: n MESSAGEs offered at rate, at most
    `outstanding` unanswered; returns (delivered per second, messages delivered).  failures (a
    dict) gets sipp_failures()."""
    done = rx.expect(tag, n)
    uac = sip_sender(ph, tag, n, rate, outstanding)
    t0 = time.monotonic()
    await uac.start()
    sipp, delivered, t1 = await await_deliveries(uac, done, rx, tag, n, t0)
    rc = await sipp
    if failures is not None:
        failures.update(sipp_failures(uac))
    check(refusals_ok or (rc == 0 and delivered == n),
          f"{ph.name} sipp {tag}: {delivered} of {n} delivered: {uac.error_text()}")
    check(delivered > 0, f"{ph.name} sipp {tag}: nothing delivered: {uac.error_text()}")
    return delivered / (t1 - t0), delivered


async def xmpp_to_sip_ready(ph, client, tag, n):
    """The SIP receiver of an XMPP->SIP run, for n + 1 MESSAGEs, and the gateway's connection
    to it made by one message sent now: a burst on a connection still being set up (TLS
    handshake) is refused beyond Sofia's send queue of 64 messages (local 503s, bounced to
    XMPP), and that set-up is not what the runs measure."""
    uas = sip_receiver(ph, tag, n + 1)
    await uas.start()
    client.send_message(mto=f"bob@{SIP_DOMAIN}", mtype="chat", mbody=f"cmp {tag}-ready tk0x {PAD}")
    if ph.transport != "udp":
        await harness.wait_for(lambda: tcp_sockets(ph.env.peer_sip_port, "01", remote=True) > 0, 10,
                               f"the {ph.name} gateway's connection to its peer")
    await asyncio.sleep(0.5)
    return uas


def bounces(client, tag):
    """The error stanzas alice got back for messages of run `tag`."""
    return [m for m in client.inbox if m["type"] == "error" and m["body"].startswith(f"cmp {tag} ")]


async def xmpp_to_sip(ph, client, tag, n, rate=None, uas=None, bounces_ok=False):
    """compare.run_xmpp_to_sip() over ph's transport: n messages from alice, paced at rate or as
    fast as slixmpp goes, to uas (from xmpp_to_sip_ready(); made here when not given); returns
    (per second, messages not bounced).  A bounce fails the run unless bounces_ok: then the
    receiver is given 10 s more and ended (a message refused locally never reaches it)."""
    if uas is None:
        uas = await xmpp_to_sip_ready(ph, client, tag, n)
    t0 = time.monotonic()
    batch = 10
    for i in range(n):
        client.send_message(mto=f"bob@{SIP_DOMAIN}", mtype="chat", mbody=f"cmp {tag} tk{i + 1}x {PAD}")
        if i % batch == batch - 1:
            if rate:
                await asyncio.sleep(max(t0 + (i + 1) / rate - time.monotonic(), 0))
            elif i % 200 == 199:
                await asyncio.sleep(0)
    uas_done = asyncio.ensure_future(uas.wait(timeout=600))
    t1 = None
    while not uas_done.done():
        await asyncio.wait({uas_done}, timeout=1)
        bounced = bounces(client, tag)
        if bounced and not uas_done.done():
            t1 = time.monotonic()
            await asyncio.wait({uas_done}, timeout=10)
            if not uas_done.done():
                await uas.kill()
                await uas_done
                check(bounces_ok, f"{ph.name} {tag}: the gateway bounced {len(bounced)} of {n} messages; "
                                  f"first: {bounced[0]}")
                return (n - len(bounces(client, tag))) / (t1 - t0), n - len(bounces(client, tag))
    rc = uas_done.result()
    t1 = time.monotonic()
    check(rc == 0, f"{ph.name} sipp {tag}: {uas.error_text()}")
    return n / (t1 - t0), n


# ---------------------------------------------------------------- windows

def window_tail(args):
    """compare.window_tail() for simplegw: past the end of every transaction."""
    return max(64 * args.t1 / 1000, SOFIA_T4_S) + WINDOW_MARGIN_S


async def window(ph, load, tail, gap=WINDOW_GAP_S):
    """Runs load() and waits tail seconds more; the gateway's and the socats' CPU over the
    sending (to load()'s return) and over the whole window, the machine's load, the
    connections each socat accepted.  Then gap seconds unmeasured."""
    acc0 = ph.accepted()
    m0, t0, g0, s0 = machine_busy(), time.monotonic(), ph.gw_cpu_ns(), ph.socat_cpu_ns()
    result = await load()
    t_load, g_load, s_load = time.monotonic() - t0, ph.gw_cpu_ns(), ph.socat_cpu_ns()
    await asyncio.sleep(tail)
    g1, s1, t1 = ph.gw_cpu_ns(), ph.socat_cpu_ns(), time.monotonic()
    m1 = machine_busy()
    acc1 = ph.accepted()
    await asyncio.sleep(gap)
    return dict(seconds=t1 - t0, load_seconds=t_load, cpu=(g1 - g0) / 1e9, cpu_load=(g_load - g0) / 1e9,
                socat_cpu=(s1 - s0) / 1e9, socat_cpu_load=(s_load - s0) / 1e9, busy=busy_share(m0, m1),
                socat_conns={k: acc1[k] - acc0[k] for k in acc1}, result=result)


def per_message(w, idle_per_s, n, whole=True):
    """Gateway CPU us per message over the window (whole) or the sending only, idle subtracted."""
    seconds, cpu = (w["seconds"], w["cpu"]) if whole else (w["load_seconds"], w["cpu_load"])
    return (cpu - idle_per_s * seconds) / n * 1e6


def socat_notes(ph, w, what, notes, one_conn=True):
    """Flags a socat that used more than one connection for a window, or (nearly) a full core."""
    if not ph.tls:
        return
    if one_conn:
        for name, k in w["socat_conns"].items():
            if k > 1:
                notes.append(f"tls {what}: socat-{name} accepted {k} connections in one window "
                             "(sipp -t t1 and the gateway's route should each keep one)")
    share = w["socat_cpu_load"] / max(w["load_seconds"], 1e-9)
    if share >= SOCAT_BUSY:
        notes.append(f"tls {what}: the socats used {100 * share:.0f} % of a core while sending: socat may be "
                     "the bottleneck, not the gateway")


async def fixed_rates(ph, alice, rx, args, notes):
    tail = window_tail(args)
    out = {}
    idle = await window(ph, lambda: asyncio.sleep(args.rate_seconds), tail)
    idle["cpu_per_s"] = idle["cpu"] / idle["seconds"]
    out["idle"] = idle
    print(f"  idle: {100 * idle['cpu_per_s']:.2f} % of a core over {idle['seconds']:.1f} s", flush=True)
    for rate in args.rates:
        offered = int(rate * args.rate_seconds)
        for d, dname in DIRECTIONS:
            tag = f"{ph.name}-{d}-{rate}"

            uas = await xmpp_to_sip_ready(ph, alice, tag, offered) if d == "x2s" else None

            async def load(d=d, tag=tag, rate=rate, offered=offered, uas=uas):
                if d == "s2x":
                    return await sip_to_xmpp(ph, rx, tag, offered, rate, refusals_ok=True)
                return await xmpp_to_sip(ph, alice, tag, offered, rate, uas)
            w = await window(ph, load, tail)
            keep_errors(alice)
            w["delivered"], n = w.pop("result")
            w["n"], w["refused"], w["dups"] = n, offered - n, rx.dups.get(tag, 0)
            w["cpu_us"] = per_message(w, idle["cpu_per_s"], n)
            w["cpu_raw_us"] = w["cpu"] / n * 1e6
            w["cpu_tail_us"] = ((w["cpu"] - w["cpu_load"]) - idle["cpu_per_s"] * (w["seconds"] - w["load_seconds"])) / n * 1e6
            w["socat_us"] = w["socat_cpu"] / n * 1e6 if ph.tls else None
            out[f"{d}@{rate}"] = w
            print(f"  {d} at {rate}/s: {w['delivered']:.0f} msg/s delivered ({w['refused']} refused, {w['dups']} twice), "
                  f"{w['cpu_us']:.1f} us/msg ({w['cpu_raw_us']:.1f} with idle, {w['cpu_tail_us']:.1f} after the last "
                  f"message), window {w['seconds']:.1f} s, machine {w['busy']:.0f} % busy"
                  + (f"; socat {w['socat_us']:.1f} us/msg (excluded), connections {w['socat_conns']}" if ph.tls else ""),
                  flush=True)
            if w["refused"] or w["load_seconds"] > 1.25 * args.rate_seconds + 1:
                notes.append(f"{ph.name} {dname} at {rate}/s: {w['delivered']:.0f} msg/s delivered, "
                             f"{w['refused']} refused: saturated, not the offered rate's figures")
            socat_notes(ph, w, f"{dname} at {rate}/s", notes)
    return out


async def saturation(ph, alice, rx, args, idle_per_s, notes):
    """Each direction offered well above what the chain carries: SIP at --sat-rate with at most
    --sat-outstanding MESSAGEs unanswered, XMPP as fast as slixmpp sends.  Refusals (503) and
    bounces are results here, counted."""
    out = {}
    for d, dname in DIRECTIONS:
        tag = f"{ph.name}-{d}-sat"
        failures = {}
        uas = await xmpp_to_sip_ready(ph, alice, tag, args.sat_n) if d == "x2s" else None

        async def load(d=d, tag=tag, uas=uas, failures=failures):
            if d == "s2x":
                return await sip_to_xmpp(ph, rx, tag, args.sat_n, args.sat_rate, refusals_ok=True,
                                         outstanding=args.sat_outstanding, failures=failures)
            return await xmpp_to_sip(ph, alice, tag, args.sat_n, uas=uas, bounces_ok=True)
        # CPU over the sending only; the gap lets the transactions end (and late bounces come)
        w = await window(ph, load, 0, gap=window_tail(args))
        bounced = bounces(alice, tag)
        alice.inbox[:] = [m for m in alice.inbox if m not in bounced]
        keep_errors(alice)
        w["delivered"], n = w.pop("result")
        if d == "x2s":
            n = args.sat_n - len(bounced)
            failures.update({f"bounced ({m['error']['condition']}: {m['error']['text']})": 0 for m in bounced[:1]})
        w["n"], w["refused"], w["dups"] = n, args.sat_n - n, rx.dups.get(tag, 0)
        w["failures"] = failures
        w["cpu_us"] = per_message(w, idle_per_s, n, whole=False)
        w["gw_core"] = w["cpu_load"] / w["load_seconds"]
        w["socat_core"] = w["socat_cpu_load"] / w["load_seconds"] if ph.tls else None
        w["socat_us"] = w["socat_cpu_load"] / n * 1e6 if ph.tls else None
        out[d] = w
        print(f"  {d} saturated: {w['delivered']:.0f} msg/s delivered ({w['refused']} refused or bounced of "
              f"{args.sat_n}), {w['cpu_us']:.1f} us/msg, gateway {100 * w['gw_core']:.0f} % of a core, "
              f"machine {w['busy']:.0f} % busy"
              + (f"; socat {100 * w['socat_core']:.0f} % of a core, {w['socat_us']:.1f} us/msg (excluded), "
                 f"connections {w['socat_conns']}" if ph.tls else ""), flush=True)
        if failures:
            notes.append(f"{ph.name} {dname} saturated: {w['refused']} of {args.sat_n} not delivered; "
                         f"seen: {failures}")
        socat_notes(ph, w, f"{dname} saturated", notes)
    return out


# ---------------------------------------------------------------- connections (parts 2 and 3)

def client_context(pki):
    """The peer's side: certificate "sip", the gateway's checked against the CA and xmpp.example."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_verify_locations(pki["ca"])
    ctx.load_cert_chain(*pki["sip"])
    return ctx


class Conn:
    """One SIP connection to the gateway, TCP or TLS (with sip_tls's framing)."""

    def __init__(self, port, ctx):
        self.port, self.ctx = port, ctx
        self.reader = self.writer = None
        self.version = None

    async def open(self):
        kw = dict(ssl=self.ctx, server_hostname=XMPP_DOMAIN, ssl_handshake_timeout=10) if self.ctx else {}
        self.reader, self.writer = await asyncio.wait_for(
            asyncio.open_connection("127.0.0.1", self.port, local_addr=("127.0.0.1", 0), **kw), 15)
        sslobj = self.writer.get_extra_info("ssl_object")
        self.version = (sslobj.version(), sslobj.cipher()[0]) if sslobj else None
        self.local_port = self.writer.get_extra_info("sockname")[1]
        return self

    async def message(self, body):
        """One MESSAGE to alice; its final status."""
        call_id = secrets.token_hex(12)
        proto = "TLS" if self.ctx else "TCP"
        hdrs = [("Via", f"SIP/2.0/{proto} 127.0.0.1:{self.local_port};branch=z9hG4bK{secrets.token_hex(8)};rport"),
                ("Max-Forwards", "70"), ("From", f"<sip:bob@{SIP_DOMAIN}>;tag={secrets.token_hex(4)}"),
                ("To", f"<sip:alice@{XMPP_DOMAIN}>"), ("Call-ID", call_id), ("CSeq", "1 MESSAGE"),
                ("Content-Type", "text/plain;charset=UTF-8")]
        self.writer.write(sip_tls.encode(f"MESSAGE sip:alice@{XMPP_DOMAIN} SIP/2.0", hdrs, body))
        await self.writer.drain()
        while True:
            msg = await asyncio.wait_for(sip_tls.read_message(self.reader), 15)
            if not msg.is_request and msg.call_id == call_id and msg.status >= 200:
                return msg.status

    async def close(self):
        if self.writer:
            self.writer.close()
            try:
                await asyncio.wait_for(self.writer.wait_closed(), 5)
            except (asyncio.TimeoutError, ConnectionError, ssl.SSLError, OSError):
                pass


async def messages_on_connections(port, ctx, rx, tag, n, fresh):
    """n MESSAGEs one after another, each on a new connection (fresh) or all on one; waits until
    alice has them all.  Returns (connections per second or None, the negotiated TLS)."""
    done = rx.expect(tag, n)
    conn, version = None, None
    t0 = time.monotonic()
    for i in range(n):
        if conn is None:
            conn = await Conn(port, ctx).open()
            version = conn.version
        status = await conn.message(f"cmp {tag} tk{i + 1}x {PAD}")
        check(status == 200, f"{tag}: MESSAGE {i + 1} answered {status}")
        if fresh:
            await conn.close()
            conn = None
    if conn:
        await conn.close()
    await asyncio.wait_for(done.wait(), 30)
    return n / (time.monotonic() - t0), version


async def connection_cost(ph, rx, args, idle_per_s):
    """Part 2: gateway CPU per new connection = (N on new connections - N on one) / N."""
    ctx = client_context(ph.pki) if ph.tls else None
    port = ph.gw_tls_port if ph.tls else ph.env.gw_sip_port
    n, tail = args.handshakes, window_tail(args)
    out = {}
    for kind in ("one", "new"):
        w = await window(ph, lambda kind=kind: messages_on_connections(port, ctx, rx, f"{ph.name}-conn-{kind}",
                                                                       n, kind == "new"), tail)
        w["rate"], out["tls"] = w.pop("result")
        w["cpu_us"] = per_message(w, idle_per_s, n)
        out[kind] = w
        print(f"  {n} MESSAGEs {'each on a new connection' if kind == 'new' else 'on one connection'}: "
              f"{w['rate']:.0f}/s, {w['cpu_us']:.1f} us each (idle subtracted), window {w['seconds']:.1f} s",
              flush=True)
    out["per_conn_us"] = out["new"]["cpu_us"] - out["one"]["cpu_us"]
    print(f"  gateway CPU per new {ph.name.upper()} connection: {out['per_conn_us']:.1f} us"
          + (f" ({out['tls'][0]}, {out['tls'][1]})" if out["tls"] else ""), flush=True)
    return out


async def idle_memory(ph, args):
    """Part 3: VmRSS per idle established connection."""
    ctx = client_context(ph.pki) if ph.tls else None
    port = ph.gw_tls_port if ph.tls else ph.env.gw_sip_port
    n, pid = args.idle_conns, ph.pid()
    base_conns = tcp_sockets(port, "01")
    before = rss_kib(pid)
    conns = []
    try:
        for i in range(0, n, 20):        # 20 handshakes at a time
            conns += await asyncio.gather(*(Conn(port, ctx).open() for _ in range(min(20, n - i))))
        await asyncio.sleep(2)           # the gateway's side of the last handshakes
        held = tcp_sockets(port, "01") - base_conns
        during = rss_kib(pid)
        alive = sum(1 for c in conns if not c.reader.at_eof())
    finally:
        await asyncio.gather(*(c.close() for c in conns))
    await harness.wait_for(lambda: tcp_sockets(port, "01") <= base_conns, 10, "the idle connections to close")
    await asyncio.sleep(2)
    after = rss_kib(pid)
    out = dict(n=n, held=held, alive=alive, rss_before=before, rss_with=during, rss_after=after,
               per_conn_kib=(during - before) / n)
    print(f"  {n} idle {ph.name.upper()} connections: VmRSS {before} -> {during} KiB "
          f"({out['per_conn_kib']:.1f} KiB each), {after} KiB once closed; the gateway held {held}, "
          f"{alive} still open at the client", flush=True)
    check(held == n and alive == n, f"{ph.name}: {held} of {n} idle connections held by the gateway, "
                                    f"{alive} open at the client")
    return out


# ---------------------------------------------------------------- a transport, all parts

async def measure(ph, alice, rx, args, notes):
    r = {}
    await ph.start()
    # warm-up: both directions, so first-use allocations are not in the figures
    await sip_to_xmpp(ph, rx, f"{ph.name}-warm", 500, 1000)
    await xmpp_to_sip(ph, alice, f"{ph.name}-warm", 500, 1000)
    keep_errors(alice)
    await asyncio.sleep(window_tail(args) + WINDOW_GAP_S)    # the warm-up's transactions end first
    r["fixed"] = await fixed_rates(ph, alice, rx, args, notes)
    idle_per_s = r["fixed"]["idle"]["cpu_per_s"]
    if ph.transport != "udp" and not args.no_connections:
        r["connections"] = await connection_cost(ph, rx, args, idle_per_s)
        r["memory"] = await idle_memory(ph, args)
    if not args.no_saturation:
        r["saturation"] = await saturation(ph, alice, rx, args, idle_per_s, notes)
    for s in ph.socats():
        errs = s.errors()
        r[f"socat_{s.name}_errors"] = errs[:20]
        if errs:
            notes.append(f"socat-{s.name} logged {len(errs)} errors, first: {errs[0]}")
    errors = [m for m in alice.inbox if m["type"] == "error"]
    check(not errors, f"{ph.name}: {len(errors)} XMPP errors, first: {errors[:1]}")
    alice.inbox.clear()
    r["gateway_log_warnings"] = [line for line in ph.gw.log().splitlines()
                                 if any(w in line for w in ("warning", "error", "TLS"))][:50]
    await ph.stop()
    return r


# ---------------------------------------------------------------- report

def table(title, rows, cols):
    """rows: (label, {col: value or None}, fmt); TLS/UDP and TLS/TCP ratios when asked."""
    width = max(len(r[0]) for r in rows) + 2
    heads = cols + [c for c in ("TLS/UDP", "TLS/TCP")
                    if "tls" in cols and c[4:].lower() in cols]
    print(f"\n{title}")
    print(f"{'':{width}}" + "".join(f"{h.upper() if h in TRANSPORTS else h:>10}" for h in heads))
    for label, vals, fmt, ratio in rows:
        cells = [fmt_opt(vals.get(c), fmt) for c in cols]
        for h in heads[len(cols):]:
            base = vals.get(h[4:].lower())
            t = vals.get("tls")
            # no ratio to a figure within noise of zero or below it
            cells.append(f"{t / base:.2f}" if ratio and t is not None and base is not None and base > 0 else "")
        print(f"{label:{width}}" + "".join(f"{c:>10}" for c in cells))


def report(results, args, notes):
    cols = [t for t in args.transports if t in results]

    def get(path):
        out = {}
        for t in cols:
            v = results[t]
            for k in path:
                v = v.get(k) if isinstance(v, dict) else None
            out[t] = v
        return out

    table(f"idle baseline ({args.rate_seconds:g} s + {window_tail(args):g} s, nothing sent; subtracted below)",
          [("gateway idle CPU, % of a core", {t: 100 * v for t, v in get(("fixed", "idle", "cpu_per_s")).items()},
            "{:.2f}", False)], cols)
    for rate in args.rates:
        for d, dname in DIRECTIONS:
            k = f"{d}@{rate}"
            table(f"{dname} at {rate} msg/s offered ({int(rate * args.rate_seconds)} messages in "
                  f"{args.rate_seconds:g} s, window on to {window_tail(args):g} s after the last)",
                  [("delivered msg/s", get(("fixed", k, "delivered")), "{:.0f}", False),
                   ("refused (503)", get(("fixed", k, "refused")), "{:.0f}", False),
                   ("gateway CPU us/msg, idle subtracted", get(("fixed", k, "cpu_us")), "{:.1f}", True),
                   ("  of which after the last message", get(("fixed", k, "cpu_tail_us")), "{:.1f}", False),
                   ("gateway CPU us/msg, with idle", get(("fixed", k, "cpu_raw_us")), "{:.1f}", True),
                   ("socat CPU us/msg (NOT counted above)", get(("fixed", k, "socat_us")), "{:.1f}", False),
                   ("machine CPU busy %", get(("fixed", k, "busy")), "{:.0f}", False)], cols)
    if not args.no_saturation:
        for d, dname in DIRECTIONS:
            table(f"{dname} saturated ({args.sat_n} messages{f', SIP offered at {args.sat_rate}/s' if d == 's2x' else ', as fast as slixmpp sends'};"
                  " CPU over the sending only)",
                  [("delivered msg/s", get(("saturation", d, "delivered")), "{:.0f}", True),
                   ("refused or bounced", get(("saturation", d, "refused")), "{:.0f}", False),
                   ("gateway CPU us/msg, idle subtracted", get(("saturation", d, "cpu_us")), "{:.1f}", True),
                   ("gateway CPU, % of a core", {t: 100 * v if v is not None else None
                                                 for t, v in get(("saturation", d, "gw_core")).items()}, "{:.0f}", False),
                   ("socat CPU, % of a core (not counted)", {t: 100 * v if v is not None else None
                                                            for t, v in get(("saturation", d, "socat_core")).items()},
                    "{:.0f}", False),
                   ("socat CPU us/msg (not counted)", get(("saturation", d, "socat_us")), "{:.1f}", False),
                   ("machine CPU busy %", get(("saturation", d, "busy")), "{:.0f}", False)], cols)
    ccols = [t for t in cols if results[t].get("connections")]
    if ccols:
        table(f"a new peer connection ({args.handshakes} MESSAGEs SIP->XMPP, one after another; "
              "gateway CPU, idle subtracted)",
              [("us/msg, all on one connection", get(("connections", "one", "cpu_us")), "{:.1f}", False),
               ("us/msg, each on a new connection", get(("connections", "new", "cpu_us")), "{:.1f}", False),
               ("us per new connection (difference)", get(("connections", "per_conn_us")), "{:.1f}", True),
               ("client connections/s", get(("connections", "new", "rate")), "{:.0f}", False)], ccols)
        tcp, tls = (results.get(t, {}).get("connections") for t in ("tcp", "tls"))
        if tls:
            print(f"  TLS: {tls['tls'][0]}, {tls['tls'][1]}, mutual certificates, full handshakes (no resumption)")
        if tcp and tls:
            print(f"  TLS-specific part of a new connection (TLS - TCP): {tls['per_conn_us'] - tcp['per_conn_us']:.1f} us "
                  "of gateway CPU")
        table(f"memory per idle established connection ({args.idle_conns} opened, nothing sent)",
              [("VmRSS before KiB", get(("memory", "rss_before")), "{:.0f}", False),
               ("VmRSS with them KiB", get(("memory", "rss_with")), "{:.0f}", False),
               ("KiB per connection", get(("memory", "per_conn_kib")), "{:.1f}", True),
               ("VmRSS 2 s after they closed KiB (no trim)", get(("memory", "rss_after")), "{:.0f}", False)], ccols)
    print()
    if notes:
        for n in notes:
            print(f"NOTE {n}")
    else:
        print("NOTE none: socat kept one connection per window and stayed under "
              f"{100 * SOCAT_BUSY:.0f} % of a core; every rate was carried")


async def main_async(args):
    # SIGTERM (e.g. from timeout(1)) ends the run through its finally: the socats, in process
    # groups of their own, are stopped there
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, asyncio.current_task().cancel)
    workdir = tempfile.mkdtemp(prefix="simplegw-tls-bench-")
    pki = certs.make(os.path.join(workdir, "pki"))
    env = harness.Env(os.path.abspath(args.gateway), workdir)
    await env.start()
    results, notes, ph = {}, [], None
    t_start = time.monotonic()
    try:
        alice = await env.client("alice")
        rx = Receiver(alice)
        for t in args.transports:
            ph = Phase(env, t, pki, args)
            print(f"---- {t} ({time.monotonic() - t_start:.0f} s)", flush=True)
            results[t] = await measure(ph, alice, rx, args, notes)
            ph = None
        print(f"\nsimplegw {args.gateway}; T1 {args.t1} ms; {os.cpu_count()} cores shared by every process "
              f"of the run; {time.monotonic() - t_start:.0f} s; work directory {workdir}")
        report(results, args, notes)
        if args.json:
            with open(args.json, "w") as f:
                json.dump(dict(args=vars(args), results=results, notes=notes), f, indent=1)
        problems = await env.cleanup()
        if problems:
            print("\n".join(problems))
            return 1
        return 0
    except harness.TestFailure as e:
        print(f"tls.py: {e}", file=sys.stderr)
        if ph and ph.gw:
            print(f"gateway log ({ph.gw.logpath}), last lines:\n{ph.gw.log()[-3000:]}", file=sys.stderr)
        return 1
    finally:
        if ph:
            for s in ph.socats():
                await s.stop()
        await env.cleanup()
        await env.stop()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--gateway", required=True)
    ap.add_argument("--rates", help="offered rates, msg/s, comma-separated (500,2000; --fast 1000)")
    ap.add_argument("--rate-seconds", type=float, help="seconds of sending per rate window (5; --fast 2)")
    ap.add_argument("--sat-n", type=int, help="messages per direction at saturation (10000; --fast 2000)")
    ap.add_argument("--sat-rate", type=int, default=8000, help="SIP MESSAGEs per second offered at saturation")
    ap.add_argument("--sat-outstanding", type=int, default=100,
                    help="at most this many SIP MESSAGEs unanswered at saturation (sipp -l; 100: under "
                         "64 KiB in flight on one connection, see the docstring)")
    ap.add_argument("--handshakes", type=int, help="MESSAGEs (and so new connections) for part 2 (1000; --fast 200)")
    ap.add_argument("--idle-conns", type=int, default=200, help="idle connections for the memory figure")
    ap.add_argument("--t1", type=int, help="simplegw's SIP T1 in ms (500; --fast 40)")
    ap.add_argument("--fast", action="store_true", help="development: T1 40 ms, one rate, smaller counts")
    ap.add_argument("--transports", default="udp,tcp,tls", help="of udp,tcp,tls, comma-separated")
    ap.add_argument("--no-saturation", action="store_true")
    ap.add_argument("--no-connections", action="store_true", help="skip parts 2 and 3")
    ap.add_argument("--json", help="also write every figure to this file")
    ap.add_argument("--log-level", default="notice", help="the gateway's log level (notice; debug costs CPU)")
    args = ap.parse_args()
    for key, value in DEFAULTS.items():
        if getattr(args, key) is None:
            setattr(args, key, FAST[key] if args.fast else value)
    try:
        args.rates = [int(x) for x in str(args.rates).split(",") if x.strip()]
    except ValueError:
        ap.error("--rates takes whole messages per second, comma-separated")
    args.transports = [t.strip() for t in args.transports.split(",") if t.strip()]
    if not args.transports or any(t not in TRANSPORTS for t in args.transports):
        ap.error("--transports: some of udp, tcp, tls")
    return asyncio.run(main_async(args))


if __name__ == "__main__":
    sys.exit(main())
