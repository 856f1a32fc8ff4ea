"""harness.py - starts real peers on 127.0.0.1 for end-to-end tests: Prosody or ejabberd, Kamailio,
sipp, slixmpp, the gateway.

Everything binds to 127.0.0.1 on ports picked at run time, and every peer is given numeric
addresses, so no test ever asks a name server.  Each test gets a fresh gateway (under the
sanitizers when `make check` built it so); the XMPP server (env.xmpp) is shared by the tests of
one module and restarted only by the tests that are about restarts.
"""

import asyncio
import glob
import json
import logging
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request

import slixmpp
from slixmpp.xmlstream.handler import Callback
from slixmpp.xmlstream.matcher import StanzaPath

HERE = os.path.dirname(os.path.abspath(__file__))
XMPP_DOMAIN = "xmpp.example"
SIP_DOMAIN = "sip.example"
MUC_DOMAIN = f"conference.{XMPP_DOMAIN}"  # the XMPP server's own MUC service (XEP-0045)
SECRET = "component-secret-for-tests"
PASSWORD = "pw"

# sanitizer reports that fail a test when found in the gateway's output
SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:",
                     "SUMMARY: UndefinedBehaviorSanitizer")


class TestFailure(AssertionError):
    pass


def check(cond, what):
    if not cond:
        raise TestFailure(what)


_PORTS_GIVEN = set()


def _ephemeral_low():
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_port(count=1):
    """count consecutive ports (the first returned; baresip binds SIP/TLS on its SIP port + 1)
    free for both TCP and UDP on 127.0.0.1, never handed out before in this run, and
    below the kernel's ephemeral range.  Two ports asked for before either is bound (the
    gateway's SIP and MSRP ports) must differ: with ports the kernel picked (bind to port 0)
    the two once came out the same.  Below the ephemeral range, no peer's outgoing connection
    can take the port between the test choosing it and its owner binding it either."""
    hi = max(_ephemeral_low(), 12000) - count
    for _ in range(1000):
        port = random.randint(10000, hi)
        ports = range(port, port + count)
        if any(p in _PORTS_GIVEN for p in ports) or not all(_bindable(p) for p in ports):
            continue
        _PORTS_GIVEN.update(ports)
        return port
    raise RuntimeError("no free port")


def _bindable(port):
    t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        t.bind(("127.0.0.1", port))
        u.bind(("127.0.0.1", port))
        return True
    except OSError:
        return False
    finally:
        t.close()
        u.close()


async def wait_port(port, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            r, w = await asyncio.open_connection("127.0.0.1", port)
            w.close()
            return
        except OSError:
            await asyncio.sleep(0.05)
    raise TestFailure(f"nothing listens on 127.0.0.1:{port} after {timeout}s")


async def wait_for(pred, timeout, what, interval=0.02):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        await asyncio.sleep(interval)
    raise TestFailure(f"timed out after {timeout}s waiting for {what}")


# ---------------------------------------------------------------- Prosody

class Prosody:
    """Debian's prosody with a generated config and its own data directory (never the system service).

    component_certfile: as Ejabberd's (a PEM file holding a certificate and its key, set between
    a stop() and a start()): component_port then speaks direct TLS.  Prosody 0.12's component
    service has no TLS variant, so that port is mod_net_multiplex's TLS port (ssl_ports, its
    certificate in ssl_ssl), which hands a stream in jabber:component:accept to the component
    listener; the plain component port is closed meanwhile.
    """

    kind = "prosody"
    # what the gateway answers a SIP MESSAGE this server took: Prosody refuses while routing,
    # so the reply to the gateway's barrier ping proves no refusal is coming (docs: verdicts)
    accepted_status = 200

    def __init__(self, workdir, components, users=("alice", "carol")):
        self.dir = os.path.join(workdir, "prosody")
        os.makedirs(os.path.join(self.dir, "data"), exist_ok=True)
        self.c2s_port = free_port()
        self.component_port = free_port()
        self.components = list(components)
        self.users = list(users)
        self.proc = None
        self.log = os.path.join(self.dir, "prosody.log")
        self.component_certfile = None     # direct TLS on the component port (see above)
        self.nagle = True                   # False: network_settings = { nagle = false }

    def write_config(self):
        # XEP-0356: each component may read any user's roster (roster groups as resource lists).
        # mod_privilege (Debian prosody-modules, in Prosody's own plugin directory) runs on the
        # VirtualHost, which holds the grants, and on each component, whose handshake it hears
        comps = "".join(f'Component "{c}"\n  component_secret = "{SECRET}"\n'
                        f'  modules_enabled = {{ "privilege" }}\n' for c in self.components)
        privileged = "".join(f'  ["{c}"] = {{ roster = "get" }};\n' for c in self.components)
        plain_port, multiplex, tls_ports = self.component_port, "", ""
        if self.component_certfile:
            q = json.dumps      # a JSON string is a Lua string literal for these paths
            plain_port, multiplex = "", '"net_multiplex"; '
            tls_ports = (f"ports = {{ }}\nssl_ports = {{ {self.component_port} }}\n"
                         f"ssl_ssl = {{ certificate = {q(self.component_certfile)}; "
                         f"key = {q(self.component_certfile)} }}\n")
        nagle = "" if self.nagle else "network_settings = { nagle = false }\n"
        cfg = f"""-- generated by tests/e2e/harness.py
run_as_root = true
pidfile = "{self.dir}/prosody.pid"
data_path = "{self.dir}/data"
log = {{ debug = "{self.log}" }}
interfaces = {{ "127.0.0.1" }}
c2s_ports = {{ {self.c2s_port} }}
c2s_direct_tls_ports = {{ }}
legacy_ssl_ports = {{ }}
s2s_ports = {{ }}
component_ports = {{ {plain_port} }}
component_interface = "127.0.0.1"
{tls_ports}http_ports = {{ }}
https_ports = {{ }}
certificates = "{self.dir}/certs"
modules_enabled = {{ {multiplex}"roster"; "saslauth"; "disco"; "ping"; "presence"; "offline"; "blocklist" }}
modules_disabled = {{ "s2s" }}
c2s_require_encryption = false
{nagle}allow_unencrypted_plain_auth = true
authentication = "internal_plain"
storage = "internal"
VirtualHost "{XMPP_DOMAIN}"
  modules_enabled = {{ "privilege" }}
  privileged_entities = {{
{privileged}  }}
{comps}Component "{MUC_DOMAIN}" "muc"
  restrict_room_creation = false
  muc_room_default_public = true
  muc_room_default_history_length = 20
"""
        with open(os.path.join(self.dir, "prosody.cfg.lua"), "w") as f:
            f.write(cfg)
        os.makedirs(os.path.join(self.dir, "certs"), exist_ok=True)
        accounts = os.path.join(self.dir, "data", XMPP_DOMAIN.replace(".", "%2e"), "accounts")
        os.makedirs(accounts, exist_ok=True)
        for u in self.users:
            with open(os.path.join(accounts, u + ".dat"), "w") as f:
                f.write(f'return {{\n\t["password"] = "{PASSWORD}";\n}};\n')

    async def start(self):
        self.write_config()
        self.proc = await asyncio.create_subprocess_exec(
            "prosody", "--config", os.path.join(self.dir, "prosody.cfg.lua"), "-F",
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
        await wait_port(self.c2s_port)
        await wait_port(self.component_port)

    async def stop(self):
        if self.proc and self.proc.returncode is None:
            self.proc.terminate()
            try:
                await asyncio.wait_for(self.proc.wait(), 10)
            except asyncio.TimeoutError:
                self.proc.kill()
                await self.proc.wait()
        self.proc = None

    async def kill(self):
        """SIGKILL: the server dies without a word on its streams, as in a crash; start() brings
        it back with what it had stored (Prosody writes each change through to its files)."""
        if self.proc and self.proc.returncode is None:
            self.proc.kill()
            await self.proc.wait()
        self.proc = None


# ---------------------------------------------------------------- ejabberd

EJABBERD_READY = "simplegw-harness: users registered"


def ejabberd_libs():
    """The directory that holds Debian's ejabberd-<version>/ application (erl's ERL_LIBS, as
    ejabberdctl sets it), or None when ejabberd is not installed."""
    apps = sorted(glob.glob("/usr/lib/*/ejabberd-*/ebin/ejabberd.app"))
    return os.path.dirname(os.path.dirname(os.path.dirname(apps[-1]))) if apps else None


class Ejabberd:
    """Debian's ejabberd with a generated config and its own spool, log and home directories
    (never the system service), with the interface of Prosody above.

    It runs as a plain Erlang VM without distribution: no node name, so no epmd, no cookie and
    no distribution port, and no ejabberdctl (which needs all three).  The VM itself starts
    ejabberd and then registers the users (ejabberd_auth:try_register, an -eval; a user already
    in the spool is kept), and prints EJABBERD_READY: start() returns once that line is out and
    both ports listen.  Erlang's resolver is given no name servers and looks names up in the
    hosts file only, and s2s is refused, so a stanza for a domain nobody serves (sip.example
    while the gateway is away) bounces without a DNS query.  The spool persists across stop()
    and start(), as Prosody's data directory does.

    component_certfile: None (the default) for a plain XEP-0114 component port; or a PEM file
    holding a certificate and its key (certs.combined()) for direct TLS on it, as
    <xmpp tls="direct"> expects: the listener's `tls: true` and `certfile:` (ejabberd_service
    hands only its listener's own certfile to fast_tls, never ejabberd_pkix's `certfiles`;
    without it every TLS connection is reset unanswered), and the file in the top-level
    `certfiles` too.  Set it between a stop() and a start(): the config is written at each
    start.
    """

    kind = "ejabberd"
    # ejabberd checks an online user's block list (XEP-0191) after it answered the barrier ping,
    # so the gateway (<im verdict="auto">) answers 202: accepted, delivery not proven
    accepted_status = 202

    def __init__(self, workdir, components, users=("alice", "carol")):
        self.dir = os.path.join(workdir, "ejabberd")
        self.spool = os.path.join(self.dir, "spool")
        for d in (self.spool, os.path.join(self.dir, "log"), os.path.join(self.dir, "home")):
            os.makedirs(d, exist_ok=True)
        self.c2s_port = free_port()
        self.component_port = free_port()
        self.components = list(components)
        self.users = list(users)
        for u in self.users:
            if not re.fullmatch(r"[a-z0-9_.-]+", u):
                raise ValueError(f"user name {u!r} is not one the harness can pass to erl")
        self.proc = None
        self.log = os.path.join(self.dir, "log", "ejabberd.log")
        self.out = os.path.join(self.dir, "ejabberd.out")   # the VM's stdout/stderr
        self.config = os.path.join(self.dir, "ejabberd.yml")
        self.inetrc = os.path.join(self.dir, "inetrc")
        self.started_in = None     # seconds the last start() took
        self.component_certfile = None     # direct TLS on the component port (see above)

    def write_config(self):
        q = json.dumps      # a JSON string is a YAML scalar, quoted and escaped
        services = "".join(f"      {q(c)}:\n        password: {q(SECRET)}\n"
                           for c in self.components)
        # XEP-0356: each component, and only they, may read any local user's roster
        components = "".join(f"      - {q(c)}\n" for c in self.components)
        certfiles = f"\n  - {q(self.component_certfile)}" if self.component_certfile else " []"
        service_tls = (f"    tls: true\n    certfile: {q(self.component_certfile)}\n"
                       if self.component_certfile else "")
        cfg = f"""# generated by tests/e2e/harness.py
hosts:
  - {q(XMPP_DOMAIN)}
loglevel: debug
log_rotate_count: 0
certfiles:{certfiles}
acme:
  auto: false
# no s2s: nothing here may look a domain up in the DNS
s2s_access: none
auth_method: internal
auth_password_format: plain
acl:
  components:
    server:
{components}access_rules:
  privileged_components:
    allow: components
listen:
  -
    port: {self.c2s_port}
    ip: "127.0.0.1"
    module: ejabberd_c2s
    starttls: false
    starttls_required: false
    backlog: 128
  -
    port: {self.component_port}
    ip: "127.0.0.1"
    module: ejabberd_service
    backlog: 16
{service_tls}    hosts:
{services}modules:
  mod_roster: {{}}
  mod_disco: {{}}
  mod_ping: {{}}
  mod_offline: {{}}
  mod_privacy: {{}}
  mod_blocking: {{}}
  mod_privilege:
    roster:
      get: privileged_components
  mod_muc:
    host: {q(MUC_DOMAIN)}
    access_create: all
    default_room_options:
      public: true
"""
        with open(self.config, "w") as f:
            f.write(cfg)
        with open(self.inetrc, "w") as f:
            # names from the hosts file only, and inet_res (ejabberd's SRV lookups) without servers
            f.write('{lookup, [file]}.\n{resolv_conf, ""}.\n')

    def _eval(self):
        """The Erlang expression the VM runs: start ejabberd, register the users, say so."""
        users = ", ".join(f'<<"{u}">>' for u in self.users)
        return (f'{{ok, _}} = application:ensure_all_started(ejabberd), '
                f'R = [{{U, ejabberd_auth:try_register(U, <<"{XMPP_DOMAIN}">>, <<"{PASSWORD}">>)}} '
                f'|| U <- [{users}]], '
                f'case [X || {{_, E}} = X <- R, E =/= ok, E =/= {{error, exists}}] of '
                f'[] -> io:format("~s~n", ["{EJABBERD_READY}"]); '
                f'Bad -> io:format("registration failed: ~p~n", [Bad]), erlang:halt(3) end.')

    def args(self):
        return ["erl", "-noinput", "-noshell",
                "+Bd",      # Ctrl-C (SIGINT to the runner's process group) ends the VM at once
                # no scheduler busy-waiting: the VM shares 2 cores with the gateway and sipp
                "+sbwt", "none", "+sbwtdcpu", "none", "+sbwtdio", "none",
                "-mnesia", "dir", json.dumps(self.spool),
                "-ejabberd", "quiet", "true",           # its log goes to the file, not stdout
                "-eval", self._eval()]

    def environ(self):
        env = dict(os.environ)
        env.update(ERL_LIBS=ejabberd_libs() or "", HOME=os.path.join(self.dir, "home"),
                   EJABBERD_CONFIG_PATH=self.config, EJABBERD_LOG_PATH=self.log,
                   ERL_INETRC=self.inetrc, ERL_CRASH_DUMP=os.path.join(self.dir, "erl_crash.dump"))
        for var in ("ERL_FLAGS", "ERL_AFLAGS", "ERL_ZFLAGS", "ERL_EPMD_ADDRESS", "ERL_DIST_PORT"):
            env.pop(var, None)
        return env

    def output(self):
        try:
            with open(self.out, errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    async def start(self, timeout=20.0):
        if not ejabberd_libs():
            raise TestFailure("ejabberd is not installed: run tools/install-deps")
        self.write_config()
        t0 = time.monotonic()
        with open(self.out, "a") as out:
            out.write(f"==== start: {' '.join(self.args())}\n")
            out.flush()
            # erl_child_setup and the port programs (os_mon's) end with the VM by themselves
            self.proc = await asyncio.create_subprocess_exec(
                *self.args(), cwd=self.dir, stdin=asyncio.subprocess.DEVNULL, stdout=out,
                stderr=out, env=self.environ())
        proc, starts = self.proc, self.output().count("==== start")
        ready = re.compile(rf"^{re.escape(EJABBERD_READY)}$", re.M)
        try:
            await wait_for(lambda: proc.returncode is not None or
                           len(ready.findall(self.output())) >= starts, timeout,
                           "ejabberd to start and register the users", interval=0.05)
        except TestFailure:
            await self.stop()
            raise TestFailure(f"ejabberd did not start within {timeout}s:\n"
                              + self.output()[-3000:])
        if proc.returncode is not None:
            self.proc = None
            raise TestFailure(f"ejabberd exited ({proc.returncode}) at start:\n"
                              + self.output()[-3000:])
        await wait_port(self.c2s_port)
        await wait_port(self.component_port)
        self.started_in = time.monotonic() - t0

    async def stop(self, timeout=10.0):
        if self.proc and self.proc.returncode is None:
            self.proc.terminate()       # the VM stops ejabberd (and mnesia) cleanly on SIGTERM
            try:
                await asyncio.wait_for(self.proc.wait(), timeout)
            except asyncio.TimeoutError:
                self.proc.kill()
                await self.proc.wait()
        self.proc = None

    # dets, under ejabberd's mnesia tables on disk, holds writes in the VM for up to 3 s
    STORAGE_FLUSH = 3.5

    async def kill(self):
        """SIGKILL, as Prosody.kill(), once what ejabberd stored has reached its files: the dets
        tables under its mnesia spool (rosters, offline messages) keep writes in the VM for up
        to 3 s, and a crash right after a roster change would lose it (Prosody writes each change
        through).  The tests that kill the server are about what the gateway does when the
        server dies silently, not about the server's durability."""
        if self.proc and self.proc.returncode is None:
            await asyncio.sleep(self.STORAGE_FLUSH)
            self.proc.kill()
            await self.proc.wait()
        self.proc = None


XMPP_SERVERS = {"prosody": Prosody, "ejabberd": Ejabberd}


def xmpp_servers(*kinds):
    """Decorator for a test that only makes sense against some of its module's XMPP_SERVERS
    (keys of the dict above): run.py skips it for the others."""
    def mark(fn):
        fn.xmpp_servers = kinds
        return fn
    return mark


# ---------------------------------------------------------------- the gateway

def gateway_xml(env, *, peers=None, im=None, sip_attrs="", xmpp_attrs="", log_level="debug",
                sessions=None, tls="", admins=(), metrics_port=None):
    """The gateway file for this environment; peers is a list of XML <peer> strings; admins the
    bare JIDs of <admin jid=""/>, who may run the ad-hoc admin commands.  MSRP
    listens on the environment's own port unless `sessions` gives another <sessions/> (never
    the default 2855: a demo federation or another test run may hold it).  tls: a <tls .../>
    element, or ""; with one, the default <sessions/> also puts MSRP over TLS on a free port
    (never the default 2856, for the same reason).  metrics_port: the Prometheus endpoint on
    127.0.0.1 at that port (pick it with free_port(), never the default 9477), else none."""
    if peers is None:
        peers = [default_peer(env)]
    im = im if im is not None else '<im max-body="2048" delivery-wait="2s"/>'
    if sessions is None:
        sessions = (f'<sessions msrp-port="{env.gw_msrp_port}" msrps-port="{free_port()}"/>'
                    if tls else f'<sessions msrp-port="{env.gw_msrp_port}"/>')
    return f"""<?xml version="1.0"?>
<gateway xmlns="urn:simplegw:config:1">
  <log level="{log_level}" stderr="yes" syslog="no"/>
  <xmpp domain="{XMPP_DOMAIN}" server="127.0.0.1" port="{env.xmpp.component_port}"
        secret-file="secret" reconnect-min="100ms" reconnect-max="1s" {xmpp_attrs}/>
  <sip {sip_attrs}>
    <listen transport="udp" address="127.0.0.1" port="{env.gw_sip_port}"/>
    <listen transport="tcp" address="127.0.0.1" port="{env.gw_sip_port}"/>
  </sip>
  {im}
  {sessions}
  {tls}
  {"".join(f'<admin jid="{a}"/>' for a in admins)}
  {f'<metrics address="127.0.0.1" port="{metrics_port}"/>' if metrics_port else ""}
  {"".join(peers)}
</gateway>
"""


def default_peer(env, domain=SIP_DOMAIN, trust="127.0.0.1", extra="", options_interval="0s"):
    # no OPTIONS health checks unless a test asks: a sipp peer would take one for a failure
    return f"""<peer name="sipnet" domain="{domain}" {extra}>
    <route address="127.0.0.1" port="{env.peer_sip_port}" transport="udp" options-interval="{options_interval}"/>
    <trust address="{trust}"/>
  </peer>
"""


class Gateway:
    def __init__(self, env, binary, xml):
        self.env = env
        self.binary = binary
        self.dir = tempfile.mkdtemp(prefix="gw-", dir=env.workdir)
        self.conf = os.path.join(self.dir, "gateway.xml")
        with open(self.conf, "w") as f:
            f.write(xml)
        secret = os.path.join(self.dir, "secret")
        with open(secret, "w") as f:
            f.write(SECRET + "\n")
        os.chmod(secret, 0o600)
        self.logpath = os.path.join(self.dir, "gateway.log")
        self.proc = None
        self.exit_code = None

    def log(self):
        try:
            with open(self.logpath, errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    async def start(self, wait_up=True):
        env = dict(os.environ)
        env["ASAN_OPTIONS"] = "detect_leaks=1:abort_on_error=0:exitcode=86"
        env["UBSAN_OPTIONS"] = "print_stacktrace=1:halt_on_error=1:exitcode=87"
        self.logf = open(self.logpath, "w")
        self.proc = await asyncio.create_subprocess_exec(
            self.binary, "-c", self.conf, stdout=self.logf, stderr=self.logf, env=env)
        if wait_up:
            await self.wait_log(r"component \S+: connected", timeout=15)

    async def wait_log(self, pattern, timeout=10.0, count=1):
        rx = re.compile(pattern)
        await wait_for(lambda: len(rx.findall(self.log())) >= count or
                       (self.proc and self.proc.returncode is not None),
                       timeout, f"gateway log /{pattern}/")
        if len(rx.findall(self.log())) < count:
            raise TestFailure(f"gateway exited ({self.proc.returncode}) before logging /{pattern}/")

    def log_count(self, pattern):
        return len(re.findall(pattern, self.log()))

    async def stop(self, sig=signal.SIGTERM, timeout=15):
        if not self.proc:
            return
        if self.proc.returncode is None:
            self.proc.send_signal(sig)
            try:
                await asyncio.wait_for(self.proc.wait(), timeout)
            except asyncio.TimeoutError:
                self.proc.kill()
                await self.proc.wait()
                raise TestFailure(f"gateway did not exit within {timeout}s of signal {sig}")
        self.exit_code = self.proc.returncode
        self.logf.close()

    def sanitizer_report(self):
        text = self.log()
        for m in SANITIZER_MARKERS:
            if m in text:
                i = text.index(m)
                return text[max(0, i - 200):i + 3000]
        return None


# ---------------------------------------------------------------- XMPP clients

class Client(slixmpp.ClientXMPP):
    """A real XMPP client (slixmpp) logged in to the XMPP server; received stanzas are queued:
    `inbox` holds the messages with a body (slixmpp's "message" event fires only for those),
    `every` every <message/>, bodiless ones (errors, receipts, chat states) too."""

    def __init__(self, user, port):
        super().__init__(f"{user}@{XMPP_DOMAIN}/test", PASSWORD)
        self.port = port
        self.inbox = []
        self.every = []
        self.ready = asyncio.Event()
        self["feature_mechanisms"].unencrypted_plain = True
        self.register_plugin("xep_0085")
        self.register_plugin("xep_0199")
        self.add_event_handler("session_start", self._start)
        self.add_event_handler("message", self._message)
        self.register_handler(Callback("every message", StanzaPath("message"), self.every.append))

    async def _start(self, event):
        self.send_presence()
        await self.get_roster()
        self.ready.set()

    def _message(self, msg):
        self.inbox.append(msg)

    async def login(self):
        self.connect(address=("127.0.0.1", self.port), disable_starttls=True, force_starttls=False)
        await asyncio.wait_for(self.ready.wait(), 10)

    async def logout(self):
        self.disconnect()
        try:
            await asyncio.wait_for(self.disconnected, 5)
        except asyncio.TimeoutError:
            pass

    def send_raw_xml(self, xml):
        self.send_raw(xml)

    async def expect(self, pred, timeout=5.0, what="a message"):
        await wait_for(lambda: any(pred(m) for m in self.inbox), timeout, what)
        for m in self.inbox:
            if pred(m):
                self.inbox.remove(m)
                return m

    async def expect_any(self, pred, timeout=5.0, what="a message"):
        """Like expect(), over every <message/> received (errors, receipts, chat states)."""
        await wait_for(lambda: any(pred(m) for m in self.every), timeout, what)
        return next(m for m in self.every if pred(m))

    async def expect_nothing(self, pred, duration=1.0):
        await asyncio.sleep(duration)
        found = [m for m in self.inbox if pred(m)]
        check(not found, f"unexpected stanza: {found[0] if found else ''}")


def error_condition(msg):
    """The defined condition of an error stanza, e.g. 'item-not-found'."""
    err = msg.xml.find("{jabber:client}error")
    if err is None:
        return None
    for child in err:
        if child.tag.startswith("{urn:ietf:params:xml:ns:xmpp-stanzas}") and not child.tag.endswith("}text"):
            return child.tag.split("}", 1)[1]
    return None


# ---------------------------------------------------------------- sipp

SIPP_DIR = os.path.join(HERE, "sipp")


def render(template, values):
    """Fills {{name}} placeholders; values may be str or bytes (for hostile bodies)."""
    with open(os.path.join(SIPP_DIR, template), "rb") as f:
        data = f.read()
    for k, v in values.items():
        if isinstance(v, str):
            v = v.encode()
        data = data.replace(b"{{" + k.encode() + b"}}", v)
    left = re.findall(rb"\{\{(\w+)\}\}", data)
    if left:
        raise RuntimeError(f"{template}: no value for {left}")
    return data


def parse_sipp_trace(path):
    """Messages a sipp instance received, as (start line, {header: [values]}, body bytes)."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return []
    out = []
    for block in re.split(rb"\n-{20,}[^\n]*\n", b"\n" + data):
        m = re.match(rb"(UDP|TCP) message received \[\d+\] bytes :\n\n", block)
        if not m:
            continue
        raw = block[m.end():]
        head, _, body = raw.partition(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        headers = {}
        for line in lines[1:]:
            name, _, value = line.decode("utf-8", "replace").partition(":")
            headers.setdefault(name.strip().lower(), []).append(value.strip())
        clen = int(headers.get("content-length", ["0"])[0] or 0)
        out.append((lines[0].decode("utf-8", "replace"), headers, body[:clen]))
    return out


class Sipp:
    """One sipp process running a scenario rendered from tests/e2e/sipp/."""

    def __init__(self, env, name, template, values, port=None, remote=None, calls=1, timeout=20,
                 transport="u1", auto_answer=False):
        self.env = env
        self.name = name
        self.port = port or free_port()
        self.dir = tempfile.mkdtemp(prefix=f"sipp-{name}-", dir=env.workdir)
        self.scenario = os.path.join(self.dir, "scenario.xml")
        with open(self.scenario, "wb") as f:
            f.write(render(template, values))
        self.trace = os.path.join(self.dir, "messages.log")
        self.errors = os.path.join(self.dir, "errors.log")
        self.args = ["sipp", "-sf", self.scenario, "-i", "127.0.0.1", "-p", str(self.port),
                     "-m", str(calls), "-t", transport, "-nostdin", "-trace_msg",
                     "-message_file", self.trace, "-trace_err", "-error_file", self.errors,
                     "-timeout", f"{timeout}s", "-timeout_error", "-max_recv_loops", "1000",
                     "-base_cseq", "1"]
        if auto_answer:
            # sipp answers 200 to a NOTIFY (INFO, OPTIONS, UPDATE) the scenario does not expect
            # at that point, instead of aborting the call
            self.args.append("-aa")
        if remote:
            self.args.append(remote)
        self.proc = None

    async def start(self):
        self.proc = await asyncio.create_subprocess_exec(
            *self.args, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
            cwd=self.dir)
        if not self.args[-1].startswith("127.0.0.1:"):
            # a server: give it a moment to bind before anything is sent to it
            await asyncio.sleep(0.2)
        return self

    async def wait(self, timeout=30):
        try:
            await asyncio.wait_for(self.proc.wait(), timeout)
        except asyncio.TimeoutError:
            self.proc.kill()
            await self.proc.wait()
            raise TestFailure(f"sipp {self.name} did not finish within {timeout}s")
        return self.proc.returncode

    async def run(self, timeout=30):
        await self.start()
        return await self.wait(timeout)

    def received(self):
        return parse_sipp_trace(self.trace)

    def error_text(self):
        try:
            with open(self.errors, errors="replace") as f:
                return f.read()[-2000:]
        except FileNotFoundError:
            return ""

    async def kill(self):
        if self.proc and self.proc.returncode is None:
            self.proc.kill()
            await self.proc.wait()


# ---------------------------------------------------------------- the environment

class Env:
    """What the tests of one module share: the XMPP server (env.xmpp, of the kind `xmpp`, a key
    of XMPP_SERVERS; env.prosody is another name for it), the gateway's and the peer's SIP ports;
    and what one test started (gateways, clients, sipps), which cleanup() ends."""

    def __init__(self, gateway_binary, workdir, components=(SIP_DOMAIN,), users=None,
                 xmpp="prosody"):
        self.gateway_binary = gateway_binary
        self.workdir = workdir
        self.xmpp = XMPP_SERVERS[xmpp](workdir, components, **({"users": users} if users else {}))
        self.gw_sip_port = free_port()
        self.gw_msrp_port = free_port()
        self.peer_sip_port = free_port()
        self.gateways = []
        self.clients = []
        self.sipps = []

    @property
    def prosody(self):
        """The XMPP server, whichever it is (the name from before ejabberd ran the tests too)."""
        return self.xmpp

    async def start(self):
        await self.xmpp.start()

    async def gateway(self, xml=None, wait_up=True, **kw):
        gw = Gateway(self, self.gateway_binary, xml or gateway_xml(self, **kw))
        self.gateways.append(gw)
        await gw.start(wait_up=wait_up)
        return gw

    async def client(self, user="alice"):
        c = Client(user, self.xmpp.c2s_port)
        self.clients.append(c)
        await c.login()
        return c

    def sipp(self, name, template, values=None, **kw):
        s = Sipp(self, name, template, values or {}, **kw)
        self.sipps.append(s)
        return s

    def uas(self, template="uas_reply.xml", status=200, phrase="OK", calls=1, timeout=20, **values):
        """A SIP user agent of the peer network, where the gateway routes requests."""
        values = dict(values, status=str(status), phrase=phrase)
        return self.sipp("uas", template, values, port=self.peer_sip_port, calls=calls, timeout=timeout)

    def uac(self, template="uac_message.xml", timeout=20, transport="u1", **values):
        """A SIP user agent sending to the gateway; it expects the status the gateway gives a
        MESSAGE the XMPP server took (env.xmpp.accepted_status) unless told otherwise."""
        defaults = dict(ruri=f"sip:alice@{XMPP_DOMAIN}", to=f"sip:alice@{XMPP_DOMAIN}",
                        sender=f"sip:bob@{SIP_DOMAIN}", ctype="text/plain;charset=UTF-8",
                        extra="", body="hello from SIP", expect=str(self.xmpp.accepted_status))
        defaults.update(values)
        return self.sipp("uac", template, defaults, remote=f"127.0.0.1:{self.gw_sip_port}",
                         timeout=timeout, transport=transport)

    async def cleanup(self):
        """Stops everything; returns the problems found in the gateways' output."""
        problems = []
        for c in self.clients:
            await c.logout()
        for s in self.sipps:
            await s.kill()
        for gw in self.gateways:
            try:
                await gw.stop()
            except TestFailure as e:
                problems.append(str(e))
            report = gw.sanitizer_report()
            if report:
                problems.append("sanitizer report in the gateway's output:\n" + report)
            elif gw.exit_code not in (0, None):
                problems.append(f"gateway exited with status {gw.exit_code}:\n" + gw.log()[-3000:])
        self.clients, self.sipps, self.gateways = [], [], []
        return problems

    async def stop(self):
        await self.xmpp.stop()


# ---------------------------------------------------------------- Kamailio (sip.example)

KAMAILIO_CFG = os.path.join(os.path.dirname(os.path.dirname(HERE)), "conf", "kamailio-sip.example.cfg")


def port_free(port):
    """True when nothing holds 127.0.0.1:port, neither UDP nor a TCP listener."""
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    # SO_REUSEADDR: TIME_WAIT connections do not count, a live listener still does
    t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        u.bind(("127.0.0.1", port))
        t.bind(("127.0.0.1", port))
        return True
    except OSError:
        return False
    finally:
        u.close()
        t.close()


# the db_text tables (Debian's empty ones) of Kamailio(xcap=True): xcap_server's documents,
# presence's, rls's and pua's tables, and the versions Kamailio checks
DBTEXT_SCHEMA = "/usr/share/kamailio/dbtext/kamailio"
DBTEXT_TABLES = ("version", "xcap", "presentity", "active_watchers", "watchers", "rls_presentity",
                 "rls_watchers", "pua")

# the media type of each XCAP application's documents (RFC 5025, 4826)
XCAP_CTYPES = {"pres-rules": "application/auth-policy+xml",
               "resource-lists": "application/resource-lists+xml",
               "rls-services": "application/rls-services+xml"}


def pres_rules(rules):
    """A pres-rules document (RFC 5025 on RFC 4745's common-policy) from [(sub_handling,
    identities, transformations)] or [(sub_handling, identities)]: sub_handling is allow, block,
    polite-block or confirm; identities a list of "sip:user@domain" (<one id=.../>) and
    "domain=xmpp.example" (<many domain=.../>) conditions; transformations the XML put in
    <cr:transformations> (RFC 5025 elements, unprefixed)."""
    out = ['<?xml version="1.0" encoding="UTF-8"?>\n'
           '<cr:ruleset xmlns="urn:ietf:params:xml:ns:pres-rules"'
           ' xmlns:cr="urn:ietf:params:xml:ns:common-policy">\n']
    for i, rule in enumerate(rules):
        handling, identities = rule[0], rule[1]
        transformations = rule[2] if len(rule) > 2 else ""
        ids = "".join(f'<cr:many domain="{xml_escape(x[7:])}"/>' if x.startswith("domain=")
                      else f'<cr:one id="{xml_escape(x)}"/>' for x in identities)
        out.append(f'  <cr:rule id="r{i}">\n'
                   f'    <cr:conditions><cr:identity>{ids}</cr:identity></cr:conditions>\n'
                   f'    <cr:actions><sub-handling>{handling}</sub-handling></cr:actions>\n'
                   f'    <cr:transformations>{transformations}</cr:transformations>\n'
                   f'  </cr:rule>\n')
    out.append("</cr:ruleset>\n")
    return "".join(out)


_PKI = {}


def tls_pki(env):
    """The test PKI of this environment (tests/e2e/certs.py, made once under env.workdir):
    {"ca": CA file, NAME: (certificate file, key file)}, NAME one of certs.py's ("gw", "sip",
    "sip2", "cn_only", "expired", "wrong", "wildcard", "untrusted"...)."""
    if env.workdir not in _PKI:
        import certs  # python3-cryptography: only the TLS tests need it
        _PKI[env.workdir] = certs.make(os.path.join(env.workdir, "pki"))
    return _PKI[env.workdir]


def kamailio_tls_cfg(path, pki, cert):
    """Writes Kamailio's tls module file: one profile as server and one as client, both
    TLSv1.2+ and mutual, presenting certificate `cert` of the test PKI (tls_pki)."""
    pem, key = pki[cert]
    profile = (f"method = TLSv1.2+\n"
               f"certificate = {pem}\n"
               f"private_key = {key}\n"
               f"ca_list = {pki['ca']}\n"
               f"verify_certificate = yes\n"
               f"require_certificate = yes\n")
    with open(path, "w") as f:
        f.write(f"[server:default]\n{profile}\n[client:default]\n{profile}")


def _group_alive(pgid):
    try:
        os.killpg(pgid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


async def stop_process_group(proc, timeout):
    """SIGTERM to proc (started with start_new_session), SIGKILL after timeout, then waits for
    the rest of its process group (children may outlive it by a moment and hold its ports)."""
    pgid = proc.pid     # start_new_session: the group is the main process's id
    if proc.returncode is None:
        proc.terminate()
        try:
            await asyncio.wait_for(proc.wait(), timeout)
        except asyncio.TimeoutError:
            proc.kill()
            await proc.wait()
    deadline = time.monotonic() + timeout
    while _group_alive(pgid) and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    if _group_alive(pgid):
        os.killpg(pgid, signal.SIGKILL)


class Kamailio:
    """Debian's Kamailio running conf/kamailio-sip.example.cfg: registrar, proxy and presence server
    (memory only) of sip.example, which routes xmpp.example to gw_uri.

    kam = Kamailio(env, port=None, gw_uri=None)   port: a free one unless given (pass
        env.peer_sip_port to make it the gateway's default peer); gw_uri: defaults to
        sip:127.0.0.1:<env.gw_sip_port>.  Its directory (-w/-Y, log) is under env.workdir.
    await kam.start()     idempotent; returns once it listens (raises TestFailure if it exits)
    await kam.stop()      SIGTERM to it and its children; returns once the port is released
    await kam.restart()   stop + start on the same port (presence state is lost: memory only)
    kam.alive(), kam.log_text(), kam.logpath, kam.port, kam.uri, kam.remote ("127.0.0.1:port")
    The log accumulates across restarts.  Stop it in a finally (Env.cleanup does not know it),
    or use `async with Kamailio(env) as kam:`.

    Kamailio(env, xcap=True): authorization by each presentity's pres-rules (RFC 5025) stored over
    XCAP in Kamailio's own xcap_server (cfg define WITH_XCAP), in a db_text database under its
    directory (kam.dbdir, kept across restarts); rls=True (WITH_RLS) makes it the resource list
    server (RFC 4662) as well.  Then:
    kam.xcap_root         "http://127.0.0.1:<port>/xcap-root" (HTTP on the SIP TCP listener)
    kam.xcap_url(auid, xui, doc="index")   e.g. .../pres-rules/users/sip:bob@sip.example/index
    await kam.xcap_put(auid, xui, doc, body, ctype=None) -> (status, etag)  ctype: XCAP_CTYPES
    await kam.xcap_get(auid, xui, doc="index") -> (status, etag, content type, body bytes)
    await kam.xcap_delete(auid, xui, doc="index") -> (status, etag)
    e.g. await kam.xcap_put("pres-rules", "sip:bob@sip.example", "index",
                            pres_rules([("allow", ["sip:alice@xmpp.example"])]))

    Kamailio(env, tls=True, cert="sip", gw_tls_port=N): SIP over TLS as well (cfg define
    WITH_TLS) on 127.0.0.1:kam.tls_port (tls_port=None: a free one), mutual both ways: it
    presents the certificate `cert` (a name of tls_pki(env), i.e. tests/e2e/certs.py: "sip",
    "expired", "wrong", "untrusted"...) as server and as client, and requires and verifies the
    other side's against the test CA (tls.cfg in its directory, rewritten at each start, so
    kam.cert may change between a stop and a start).  Requests of xmpp.example then go to the
    gateway over TLS: gw_uri defaults to sip:127.0.0.1:<gw_tls_port>;transport=tls.
    kam.tls_remote ("127.0.0.1:tls_port"), kam.tls_uri (sip:127.0.0.1:tls_port;transport=tls).
    """

    def __init__(self, env, port=None, gw_uri=None, name="kamailio", defines=(), cfg=KAMAILIO_CFG,
                 debug=None, environ=None, shm_mb=64, xcap=False, rls=False, tls=False,
                 cert="sip", tls_port=None, gw_tls_port=None, pki=None):
        self.env = env
        self.port = port or free_port()
        self.tls = tls
        self.cert = cert
        self.tls_port = (tls_port or free_port()) if tls else None
        self.pki = (pki or tls_pki(env)) if tls else None
        if tls and gw_uri is None:
            if gw_tls_port is None:
                raise ValueError("Kamailio(tls=True) needs gw_uri or gw_tls_port")
            gw_uri = f"sip:127.0.0.1:{gw_tls_port};transport=tls"
        self.gw_uri = gw_uri or f"sip:127.0.0.1:{env.gw_sip_port}"
        self.dir = tempfile.mkdtemp(prefix=f"{name}-", dir=env.workdir)
        self.logpath = os.path.join(self.dir, "kamailio.log")
        self.cfg = cfg
        self.defines = list(defines)
        self.dbdir = None
        if xcap or rls:
            self.dbdir = os.path.join(self.dir, "db")
            os.makedirs(self.dbdir)
            for table in DBTEXT_TABLES:
                shutil.copy(os.path.join(DBTEXT_SCHEMA, table), self.dbdir)
            self.defines += ["WITH_RLS" if rls else "WITH_XCAP", f'XCAP_DB="text://{self.dbdir}"']
            if rls:
                # the Contact of its back-end SUBSCRIBEs and list dialogs: this proxy
                self.defines.append(f'RLS_URI="sip:rls@127.0.0.1:{self.port}"')
        self.debug = debug
        self.environ = environ      # extra environment variables (bench/compare.py: LD_PRELOAD)
        self.shm_mb = shm_mb
        self.proc = None
        self.starts = 0
        if tls:
            self.tls_cfg = os.path.join(self.dir, "tls.cfg")
            self.defines += ["WITH_TLS", f"TLS_PORT={self.tls_port}", f'TLS_CFG="{self.tls_cfg}"']

    @property
    def tls_remote(self):
        return f"127.0.0.1:{self.tls_port}"

    @property
    def tls_uri(self):
        return f"sip:127.0.0.1:{self.tls_port};transport=tls"

    @property
    def uri(self):
        return f"sip:127.0.0.1:{self.port}"

    @property
    def remote(self):
        return f"127.0.0.1:{self.port}"

    @property
    def xcap_root(self):
        return f"http://127.0.0.1:{self.port}/xcap-root"

    def xcap_url(self, auid, xui, doc="index"):
        """The URI of a document in the user tree of xui (RFC 4825 6: AUID/users/XUI/doc)."""
        return f"{self.xcap_root}/{auid}/users/{xui}/{doc}"

    def _xcap(self, method, url, body=None, ctype=None):
        # no proxy from the environment: the request goes to 127.0.0.1 directly
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        req = urllib.request.Request(url, data=body, method=method)
        if ctype:
            req.add_header("Content-Type", ctype)
        try:
            with opener.open(req, timeout=5) as r:
                return r.status, r.headers.get("ETag"), r.headers.get("Content-Type"), r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.headers.get("ETag"), e.headers.get("Content-Type"), e.read()

    async def xcap_put(self, auid, xui, doc, body, ctype=None):
        if isinstance(body, str):
            body = body.encode()
        st, etag, _, _ = await asyncio.to_thread(self._xcap, "PUT", self.xcap_url(auid, xui, doc),
                                                 body, ctype or XCAP_CTYPES[auid])
        return st, etag

    async def xcap_get(self, auid, xui, doc="index"):
        return await asyncio.to_thread(self._xcap, "GET", self.xcap_url(auid, xui, doc))

    async def xcap_delete(self, auid, xui, doc="index"):
        st, etag, _, _ = await asyncio.to_thread(self._xcap, "DELETE",
                                                 self.xcap_url(auid, xui, doc))
        return st, etag

    def args(self):
        # the flags tools/federation.py uses: foreground, log to stderr, own work and runtime dir
        a = ["kamailio", "-f", self.cfg, "-DD", "-E", "-w", self.dir, "-Y", self.dir,
             "-m", str(self.shm_mb), "-M", "8",
             "-A", f"SIP_PORT={self.port}", "-A", f'GW_URI="{self.gw_uri}"']
        if self.debug is not None:
            a.append(f"--debug={self.debug}")
        for d in self.defines:
            a += ["-A", d]
        return a

    def alive(self):
        return self.proc is not None and self.proc.returncode is None

    def log_text(self):
        try:
            with open(self.logpath, errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    async def start(self, timeout=10.0):
        if self.alive():
            return self
        self.proc = None
        await wait_for(lambda: port_free(self.port), timeout, f"127.0.0.1:{self.port} to be free for Kamailio")
        if self.tls:
            await wait_for(lambda: port_free(self.tls_port), timeout,
                           f"127.0.0.1:{self.tls_port} to be free for Kamailio (TLS)")
            kamailio_tls_cfg(self.tls_cfg, self.pki, self.cert)
        self.starts += 1
        with open(self.logpath, "a") as logf:
            logf.write(f"==== start {self.starts}: {' '.join(self.args())}\n")
            logf.flush()
            # its own process group, so stop() can wait for (and if need be end) every child
            self.proc = await asyncio.create_subprocess_exec(
                *self.args(), cwd=self.dir, stdin=asyncio.subprocess.DEVNULL,
                stdout=logf, stderr=logf, start_new_session=True,
                env=dict(os.environ, **self.environ) if self.environ else None)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.returncode is not None:
                raise TestFailure(f"kamailio exited ({self.proc.returncode}) at start:\n"
                                  + self.log_text()[-3000:])
            try:
                r, w = await asyncio.open_connection("127.0.0.1", self.port)
                w.close()
                # the UDP workers are forked before the TCP ones: both are up now
                return self
            except OSError:
                await asyncio.sleep(0.05)
        await self.stop()
        raise TestFailure(f"kamailio did not listen on {self.remote} within {timeout}s:\n"
                          + self.log_text()[-3000:])

    async def stop(self, timeout=10.0):
        if self.proc is None:
            return
        await stop_process_group(self.proc, timeout)
        await wait_for(lambda: port_free(self.port), timeout, f"Kamailio to release 127.0.0.1:{self.port}")
        if self.tls:
            await wait_for(lambda: port_free(self.tls_port), timeout,
                           f"Kamailio to release 127.0.0.1:{self.tls_port} (TLS)")

    async def restart(self, timeout=10.0):
        await self.stop(timeout)
        return await self.start(timeout)

    async def __aenter__(self):
        return await self.start()

    async def __aexit__(self, *exc):
        await self.stop()


# ---------------------------------------------------------------- presence helpers (sipp)

def xml_escape(text):
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


def pidf(entity, basic="open", note=None, tuple_id="t1", contact=None):
    """A PIDF document (RFC 3863) for entity (a SIP or pres: URI) with one tuple."""
    parts = [f'<?xml version="1.0" encoding="UTF-8"?>\n'
             f'<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="{xml_escape(entity)}">\n'
             f'  <tuple id="{xml_escape(tuple_id)}">\n'
             f'    <status><basic>{basic}</basic></status>\n']
    if contact:
        parts.append(f"    <contact>{xml_escape(contact)}</contact>\n")
    parts.append("  </tuple>\n")
    if note is not None:
        parts.append(f"  <note>{xml_escape(note)}</note>\n")
    parts.append("</presence>\n")
    return "".join(parts)


def _remote(target):
    """A sipp remote address from a Kamailio, a port or "127.0.0.1:port"."""
    if isinstance(target, Kamailio):
        return target.remote
    if isinstance(target, int):
        return f"127.0.0.1:{target}"
    return target


def presence_watcher(env, target, presentity=f"sip:bob@{SIP_DOMAIN}", ruri=None,
                     watcher=f"sip:carol@{SIP_DOMAIN}", expires=60, notifies=None, until=None,
                     unsubscribe=False, refused=None, extra="", name="watcher", timeout=20,
                     transport="u1", port=None):
    """A sipp watcher (sipp/presence_watch.xml) subscribing to presentity through target.

    It answers NOTIFYs until it has seen `notifies` of them (default 1, or unlimited when `until`
    is given), or one whose whole text matches the POSIX extended regexp `until`, or one with
    Subscription-State: terminated; then un-SUBSCRIBEs when unsubscribe is true (and expects the
    final NOTIFY).  refused: a final status (e.g. 403) that ends the scenario successfully
    (any other non-2xx fails it); a NOTIFY overtaking the 2xx is accepted.
    Not started: `await w.start()`, then `await w.wait()`; see notifies_of(w), responses_of(w).
    """
    if notifies is None:
        notifies = 1 if until is None else 100000
    values = dict(ruri=ruri or presentity, presentity=presentity, watcher=watcher,
                  expires=str(expires), notifies=str(notifies),
                  until=xml_escape(until if until is not None else "never-matches-6e1f0c"),
                  unsubscribe="1" if unsubscribe else "0", extra=extra,
                  refused=str(refused or 999))
    return env.sipp(name, "presence_watch.xml", values, remote=_remote(target), timeout=timeout,
                    transport=transport, port=port)


def presence_publisher(env, target, body, user=f"sip:bob@{SIP_DOMAIN}", ruri=None, expires=60,
                       expect=200, extra="", name="publisher", timeout=20, transport="u1"):
    """A sipp PUBLISH of body (PIDF, see pidf()) for user through target (sipp/presence_publish.xml)."""
    values = dict(ruri=ruri or user, user=user, expires=str(expires), expect=str(expect),
                  extra=extra, body=body)
    return env.sipp(name, "presence_publish.xml", values, remote=_remote(target), timeout=timeout,
                    transport=transport)


def presence_publish_update(env, target, body, body2, user=f"sip:bob@{SIP_DOMAIN}", ruri=None,
                            expires=60, pause_ms=500, name="publisher", timeout=20, transport="u1"):
    """PUBLISH body, then (SIP-If-Match) body2, then remove (Expires: 0): sipp/presence_publish_update.xml."""
    values = dict(ruri=ruri or user, user=user, expires=str(expires), body=body, body2=body2,
                  pause=str(pause_ms))
    return env.sipp(name, "presence_publish_update.xml", values, remote=_remote(target),
                    timeout=timeout, transport=transport)


def _notify_part(substate, body, ctype):
    headers = f"Content-Type: {ctype}\n" if body else ""
    return substate, headers, body or ""


def presence_server(env, port=None, status=200, phrase=None, expires=60,
                    substate="active;expires=60", body="", ctype="application/pidf+xml",
                    substate2=None, body2="", pause_ms=500,
                    wait=False, substate3="active;expires=60", body3=None,
                    name="presence-server", timeout=20, transport="u1", calls=1,
                    ctype2=None, answer2=200):
    """A sipp presence server (sipp/presence_server.xml) listening on port (default
    env.peer_sip_port, where the gateway routes sip.example).

    It answers the SUBSCRIBE with status (Expires: expires when 2xx); when 2xx it sends a NOTIFY
    with Subscription-State substate and body (no Content-Type without body); if substate2 is
    given, a second NOTIFY after pause_ms (substate2, body2, Content-Type ctype2 if given),
    which the gateway must answer answer2 (400/415 for a document it refuses, RFC 6665).  A NOTIFY whose state is
    "terminated..." ends the scenario.  With wait=True it then answers each re-SUBSCRIBE with 200
    and a NOTIFY (substate3, body3: default the last body) until an un-SUBSCRIBE, answered with 200
    and a final NOTIFY terminated;reason=timeout.
    Examples: approval: substate="active;expires=60", body=pidf(...); pending: substate=
    "pending;expires=60", body="", substate2="active;expires=60", body2=pidf(...); rejection:
    status=403, or status=200 with substate="terminated;reason=rejected".
    """
    phrase = phrase or {200: "OK", 202: "Accepted", 403: "Forbidden", 404: "Not Found",
                        489: "Bad Event", 480: "Temporarily Unavailable"}.get(status, "Whatever")
    s1, h1, b1 = _notify_part(substate, body, ctype)
    s2, h2, b2 = _notify_part(substate2 or "", body2, ctype2 or ctype)
    last = body2 if substate2 else body
    s3, h3, b3 = _notify_part(substate3, last if body3 is None else body3, ctype)
    values = dict(status=str(status), phrase=phrase,
                  reply_headers=f"Expires: {expires}\n" if 200 <= status < 300 else "",
                  reject="0" if 200 <= status < 300 else "1",
                  substate=s1, headers=h1, body=b1, final="1" if s1.startswith("terminated") else "0",
                  second="1" if substate2 else "0", pause=str(pause_ms),
                  substate2=s2, headers2=h2, body2=b2, final2="1" if s2.startswith("terminated") else "0",
                  wait="1" if wait else "0", substate3=s3, headers3=h3, body3=b3,
                  answer2=str(answer2))
    return env.sipp(name, "presence_server.xml", values, port=port or env.peer_sip_port,
                    timeout=timeout, transport=transport, calls=calls)


def notifies_of(sipp):
    """The NOTIFY requests a sipp instance received: [(headers, body bytes)], each dialog's in
    CSeq order (the order its notifier sent them: a proxy with several workers may deliver them
    out of order, and a UA goes by the CSeq, RFC 3261 12.2.2), dialogs in order of first arrival."""
    got = [(h, b) for start, h, b in sipp.received() if start.startswith("NOTIFY ")]
    first = {}
    for h, b in got:
        first.setdefault(h["call-id"][0], len(first))
    return sorted(got, key=lambda hb: (first[hb[0]["call-id"][0]],
                                       int(hb[0]["cseq"][0].split()[0])))


def responses_of(sipp):
    """The responses a sipp instance received: [(status code, headers, body)] in order."""
    out = []
    for start, h, b in sipp.received():
        if start.startswith("SIP/2.0 "):
            out.append((int(start.split()[1]), h, b))
    return out
