#!/usr/bin/python3
"""federation.py - runs a complete local federation on loopback: Prosody serving xmpp.example,
simplegw, and Kamailio as registrar, proxy and presence server of sip.example.

  tools/federation.py              start everything, print how to use it, run until Ctrl-C
  tools/federation.py --check      start everything, send one message each way and check presence
                                   crosses, stop (exit 0 if all of it worked)
  tools/federation.py steps        write the SIP clients' configurations and print the steps only
  tools/federation.py sip-send FROM TO TEXT    send a SIP MESSAGE from sip:FROM@sip.example (uses sipp)
  tools/federation.py xmpp-send FROM TO TEXT   send an XMPP message from FROM@xmpp.example (uses slixmpp)
  tools/federation.py sip-publish USER NOTE    publish sip:USER@sip.example as online with NOTE (sipp PUBLISH)
  tools/federation.py xmpp-watch USER CONTACT  subscribe USER@xmpp.example to CONTACT@sip.example and
                                               print the presence that arrives for 5 seconds

Everything listens on 127.0.0.1 only and every address is numeric: nothing asks a name server.
"""

import argparse
import asyncio
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
XMPP_DOMAIN, SIP_DOMAIN = "xmpp.example", "sip.example"
# --ports (used by the end-to-end test of this demo) moves them
C2S_PORT, COMPONENT_PORT, KAMAILIO_PORT, GATEWAY_PORT, MSRP_PORT = 5222, 5347, 5060, 5070, 2855
# the SIP clients of the printed steps (linphonec as dave, baresip as bob)
LINPHONEC_PORT, BARESIP_PORT = 5090, 5080
XMPP_USERS = {"alice": "alice", "carol": "carol"}
SIP_USERS = ("bob", "dave")
RUNDIR = os.environ.get("SIMPLEGW_DEMO_DIR", "/tmp/simplegw-demo")
SECRET = "demo-component-secret"

# the SIP clients' configurations and commands are the ones tests/e2e/test_sipclients.py runs
sys.path.insert(0, os.path.join(ROOT, "tests", "e2e"))
import sipclients  # noqa: E402


def write(path, text, mode=None):
    with open(path, "w") as f:
        f.write(text)
    if mode is not None:
        os.chmod(path, mode)


def prepare():
    shutil.rmtree(RUNDIR, ignore_errors=True)
    for d in ("prosody/data", "prosody/certs", "gateway", "kamailio"):
        os.makedirs(os.path.join(RUNDIR, d))
    p = os.path.join(RUNDIR, "prosody")
    write(os.path.join(p, "prosody.cfg.lua"), f"""-- the XMPP side of the simplegw demo federation
run_as_root = true
pidfile = "{p}/prosody.pid"
data_path = "{p}/data"
certificates = "{p}/certs"
log = {{ info = "{p}/prosody.log" }}
interfaces = {{ "127.0.0.1" }}
c2s_ports = {{ {C2S_PORT} }}
c2s_direct_tls_ports = {{ }}
legacy_ssl_ports = {{ }}
s2s_ports = {{ }}
component_ports = {{ {COMPONENT_PORT} }}
component_interface = "127.0.0.1"
http_ports = {{ }}
https_ports = {{ }}
modules_enabled = {{ "roster"; "saslauth"; "disco"; "ping"; "presence"; "offline"; "version"; "time" }}
modules_disabled = {{ "s2s" }}
-- loopback demo: plaintext logins are acceptable here and nowhere else
c2s_require_encryption = false
allow_unencrypted_plain_auth = true
authentication = "internal_plain"
storage = "internal"
VirtualHost "{XMPP_DOMAIN}"
  -- XEP-0356: the gateway may read rosters (roster groups served as SIP resource lists)
  modules_enabled = {{ "privilege" }}
  privileged_entities = {{ ["{SIP_DOMAIN}"] = {{ roster = "get" }} }}
Component "{SIP_DOMAIN}"
  component_secret = "{SECRET}"
  modules_enabled = {{ "privilege" }}
""")
    accounts = os.path.join(p, "data", XMPP_DOMAIN.replace(".", "%2e"), "accounts")
    os.makedirs(accounts)
    for user, pw in XMPP_USERS.items():
        write(os.path.join(accounts, user + ".dat"), f'return {{\n\t["password"] = "{pw}";\n}};\n')
    g = os.path.join(RUNDIR, "gateway")
    write(os.path.join(g, "secret"), SECRET + "\n", 0o600)
    write(os.path.join(g, "gateway.xml"), f"""<?xml version="1.0"?>
<!-- the simplegw demo federation: xmpp.example (Prosody) <-> sip.example (Kamailio) -->
<gateway xmlns="urn:simplegw:config:1">
  <log level="info" stderr="yes"/>
  <xmpp domain="{XMPP_DOMAIN}" server="127.0.0.1" port="{COMPONENT_PORT}" secret-file="secret"/>
  <sip>
    <listen transport="udp" address="127.0.0.1" port="{GATEWAY_PORT}"/>
    <listen transport="tcp" address="127.0.0.1" port="{GATEWAY_PORT}"/>
  </sip>
  <im max-body="8k" delivery-wait="2s"/>
  <presence database="presence.db" roster-lists="yes"/>
  <sessions msrp-port="{MSRP_PORT}"/>
  <peer name="kamailio" domain="{SIP_DOMAIN}">
    <route address="127.0.0.1" port="{KAMAILIO_PORT}" transport="udp"/>
    <trust address="127.0.0.1"/>
  </peer>
</gateway>
""")


def start(binary):
    procs = []
    try:
        return _start(binary, procs)
    except BaseException:
        stop(procs)
        raise


def _start(binary, procs):
    logs = {}

    def spawn(name, args, cwd):
        log = open(os.path.join(RUNDIR, name + ".log"), "w")
        logs[name] = log.name
        procs.append((name, subprocess.Popen(args, cwd=cwd, stdout=log, stderr=subprocess.STDOUT)))

    spawn("prosody", ["prosody", "--config", os.path.join(RUNDIR, "prosody/prosody.cfg.lua"), "-F"],
          os.path.join(RUNDIR, "prosody"))
    wait_tcp(C2S_PORT)
    wait_tcp(COMPONENT_PORT)
    spawn("kamailio", ["kamailio", "-f", os.path.join(ROOT, "conf/kamailio-sip.example.cfg"),
                       "-DD", "-E", "-w", os.path.join(RUNDIR, "kamailio"), "-m", "64", "-M", "8",
                       "-Y", os.path.join(RUNDIR, "kamailio"),
                       "-A", f"SIP_PORT={KAMAILIO_PORT}", "-A", f'GW_URI="sip:127.0.0.1:{GATEWAY_PORT}"'],
          os.path.join(RUNDIR, "kamailio"))
    wait_tcp(KAMAILIO_PORT)
    spawn("simplegw", [os.path.abspath(binary), "-c", os.path.join(RUNDIR, "gateway/gateway.xml")],
          os.path.join(RUNDIR, "gateway"))
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        with open(logs["simplegw"]) as f:
            if "connected to" in f.read():
                return procs, logs
        for name, p in procs:
            if p.poll() is not None:
                raise SystemExit(f"{name} exited ({p.returncode}); see {logs[name]}")
        time.sleep(0.1)
    raise SystemExit(f"simplegw did not connect to Prosody; see {logs['simplegw']}")


def stop(procs):
    for _, p in reversed(procs):
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    for _, p in reversed(procs):
        try:
            p.wait(15)
        except subprocess.TimeoutExpired:
            p.kill()


def wait_tcp(port, timeout=15):
    import socket
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), 0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"nothing listens on 127.0.0.1:{port}")


SIPP_MESSAGE = """<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="send one MESSAGE">
  <send retrans="500"><![CDATA[
MESSAGE sip:{to}@{xmpp} SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: <sip:{frm}@{sip}>;tag=[pid]SIPpTag00[call_number]
To: <sip:{to}@{xmpp}>
Call-ID: [call_id]
CSeq: 1 MESSAGE
Max-Forwards: 70
Content-Type: text/plain;charset=UTF-8
Content-Length: [len]

{text}
]]></send>
  <recv response="100" optional="true"/>
  <recv response="200" rtd="true"/>
</scenario>
"""

SIPP_REGISTER = """<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="register a contact">
  <send retrans="500"><![CDATA[
REGISTER sip:{sip} SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: <sip:{user}@{sip}>;tag=[pid]SIPpTag00[call_number]
To: <sip:{user}@{sip}>
Call-ID: [call_id]
CSeq: 1 REGISTER
Contact: <sip:{user}@127.0.0.1:{port}>
Expires: 60
Max-Forwards: 70
Content-Length: 0

]]></send>
  <recv response="200"/>
</scenario>
"""

# sipp cannot take a new call in a client scenario: the registered contact is a second sipp
SIPP_RECEIVE = """<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="receive one MESSAGE">
  <recv request="MESSAGE"/>
  <send><![CDATA[
SIP/2.0 200 OK
[last_Via:]
[last_From:]
[last_To:];tag=[pid]SIPpTag01[call_number]
[last_Call-ID:]
[last_CSeq:]
Content-Length: 0

]]></send>
</scenario>
"""


SIPP_PUBLISH = """<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="publish presence">
  <send retrans="500"><![CDATA[
PUBLISH sip:{user}@{sip} SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: <sip:{user}@{sip}>;tag=[pid]SIPpTag00[call_number]
To: <sip:{user}@{sip}>
Call-ID: [call_id]
CSeq: 1 PUBLISH
Max-Forwards: 70
Event: presence
Expires: 3600
Content-Type: application/pidf+xml
Content-Length: [len]

<?xml version="1.0" encoding="UTF-8"?>
<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="sip:{user}@{sip}">
<tuple id="demo"><status><basic>open</basic></status><note>{note}</note></tuple>
</presence>
]]></send>
  <recv response="200"/>
</scenario>
"""


def xml_text(text):
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def sip_publish(user, note):
    d = tempfile.mkdtemp(prefix="sip-publish-")
    p = sipp(SIPP_PUBLISH.format(user=user, sip=SIP_DOMAIN, note=xml_text(note)), d)
    return p.wait() == 0


def xmpp_watch(user, contact, seconds=5.0, want=None):
    """Subscribes user to contact@sip.example; returns the statuses seen (prints them)."""
    async def act(c, inbox):
        seen = []

        def on_presence(p):
            if p["from"].bare == f"{contact}@{SIP_DOMAIN}":
                text = f"{p['from']}: {p['type']} {p['status']!r}"
                print(text, flush=True)
                seen.append(p["status"])
        c.add_event_handler("presence", on_presence)
        c.send_presence(pto=f"{contact}@{SIP_DOMAIN}", ptype="subscribe")
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and not (want and want in seen):
            await asyncio.sleep(0.1)
        return seen
    return asyncio.run(xmpp_session(user, act))


def sipp(scenario_text, workdir, remote=True, port=0, timeout=20):
    path = os.path.join(workdir, "scenario.xml")
    write(path, scenario_text)
    return subprocess.Popen(["sipp", "-sf", path, "-i", "127.0.0.1", "-p", str(port), "-m", "1",
                             "-nostdin", "-timeout", f"{timeout}s", "-timeout_error", "-trace_msg",
                             "-message_file", os.path.join(workdir, "messages.log")] +
                            ([f"127.0.0.1:{KAMAILIO_PORT}"] if remote else []),
                            cwd=workdir, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def free_udp_port():
    import socket
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def sip_send(frm, to, text):
    d = tempfile.mkdtemp(prefix="sip-send-")
    p = sipp(SIPP_MESSAGE.format(frm=frm, to=to, text=text, sip=SIP_DOMAIN, xmpp=XMPP_DOMAIN), d)
    return p.wait() == 0


async def xmpp_session(user, action):
    import slixmpp
    c = slixmpp.ClientXMPP(f"{user}@{XMPP_DOMAIN}/demo", XMPP_USERS[user])
    c["feature_mechanisms"].unencrypted_plain = True
    ready, inbox = asyncio.Event(), []

    async def started(_):
        c.send_presence()
        await c.get_roster()
        ready.set()
    c.add_event_handler("session_start", started)
    c.add_event_handler("message", inbox.append)
    c.connect(address=("127.0.0.1", C2S_PORT), disable_starttls=True, force_starttls=False)
    await asyncio.wait_for(ready.wait(), 10)
    try:
        return await action(c, inbox)
    finally:
        c.disconnect()
        await asyncio.sleep(0.2)


def xmpp_send(frm, to, text):
    async def act(c, inbox):
        c.send_message(mto=f"{to}@{SIP_DOMAIN}", mbody=text, mtype="chat")
        await asyncio.sleep(1.0)
        errors = [m for m in inbox if m["type"] == "error"]
        return not errors
    return asyncio.run(xmpp_session(frm, act))


def check():
    """One message each way across the federation, through Kamailio."""
    ok = True
    d = tempfile.mkdtemp(prefix="fed-check-")
    port = free_udp_port()
    bob = sipp(SIPP_RECEIVE, d, remote=False, port=port)
    time.sleep(0.3)
    reg = sipp(SIPP_REGISTER.format(user="bob", sip=SIP_DOMAIN, port=port), tempfile.mkdtemp(prefix="fed-reg-"))
    if reg.wait(20) != 0:
        print("SIP: bob could not register with Kamailio")
        return False
    if not xmpp_send("alice", "bob", "hello Bob, from XMPP"):
        print("XMPP -> SIP: the gateway returned an error")
        ok = False
    if bob.wait(20) != 0:
        print(f"XMPP -> SIP: bob did not receive the MESSAGE (see {d}/messages.log)")
        ok = False
    else:
        print("XMPP -> SIP: alice@xmpp.example -> sip:bob@sip.example delivered")

    async def receive(c, inbox):
        if not sip_send("bob", "alice", "hello Alice, from SIP"):
            return False
        for _ in range(50):
            if any(m["body"].strip() == "hello Alice, from SIP" for m in inbox):
                return True
            await asyncio.sleep(0.1)
        return False
    if asyncio.run(xmpp_session("alice", receive)):
        print("SIP -> XMPP: sip:bob@sip.example -> alice@xmpp.example delivered")
    else:
        print("SIP -> XMPP: alice did not receive the message")
        ok = False
    # presence: bob publishes to Kamailio, alice watches him through the gateway
    if not sip_publish("bob", "at the demo"):
        print("presence: Kamailio refused bob's PUBLISH")
        return False
    if "at the demo" in xmpp_watch("alice", "bob", seconds=10, want="at the demo"):
        print("presence SIP -> XMPP: alice@xmpp.example sees sip:bob@sip.example 'at the demo'")
    else:
        print("presence SIP -> XMPP: alice did not see bob's presence")
        ok = False
    return ok


def instructions(up=True):
    """The steps for a person, with the ports and directories of this run; writes the SIP
    clients' configurations under RUNDIR."""
    clients = sipclients.demo_steps(RUNDIR, KAMAILIO_PORT, LINPHONEC_PORT, BARESIP_PORT)
    head = "The federation is up" if up else "Once tools/federation.py runs, the federation is up"
    return f"""
{head} (files and logs in {RUNDIR}):
  XMPP  Prosody for {XMPP_DOMAIN} on 127.0.0.1:{C2S_PORT} (plaintext, loopback only)
        accounts: alice / alice, carol / carol
  SIP   Kamailio for {SIP_DOMAIN} on 127.0.0.1:{KAMAILIO_PORT} (UDP and TCP, no authentication)
        any user name registers, e.g. bob, dave
  simplegw between them: component {SIP_DOMAIN} of Prosody, SIP peer on 127.0.0.1:{GATEWAY_PORT}

Chat with real clients (each SIP client in a terminal of its own; tests/e2e/test_sipclients.py
runs these very steps):
  profanity (XMPP):  /connect alice@{XMPP_DOMAIN} server 127.0.0.1 port {C2S_PORT} tls disable
                     (password: alice)   then   /msg bob@{SIP_DOMAIN} Hello Bob
                     presence: /roster add bob@{SIP_DOMAIN}  then  /sub request bob@{SIP_DOMAIN}
                     (and /sub allow bob@{SIP_DOMAIN} when bob asks to see alice)
{clients}
Or from this shell:
  tools/federation.py sip-send bob alice "Hello Alice"
  tools/federation.py xmpp-send alice bob "Hello Bob"
  tools/federation.py sip-publish bob "In a meeting"     (bob's presence, via Kamailio)
  tools/federation.py xmpp-watch alice bob                (alice subscribes and prints what arrives)

Ctrl-C stops everything.
"""


def main():
    global RUNDIR, C2S_PORT, COMPONENT_PORT, KAMAILIO_PORT, GATEWAY_PORT, MSRP_PORT
    global LINPHONEC_PORT, BARESIP_PORT
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--check", action="store_true", help="send one message each way, then stop")
    ap.add_argument("--gateway", default=os.path.join(ROOT, "build/release/simplegw"))
    ap.add_argument("--rundir", help=f"where configs and logs go (default {RUNDIR})")
    ap.add_argument("--ports", help="C2S,COMPONENT,KAMAILIO,GATEWAY[,MSRP[,LINPHONEC,BARESIP]] "
                    "instead of 5222,5347,5060,5070,2855,5090,5080")
    ap.add_argument("command", nargs="*", help="sip-send|xmpp-send FROM TO TEXT, sip-publish USER NOTE, "
                    "xmpp-watch USER CONTACT, steps")
    args = ap.parse_args()
    if args.rundir:
        RUNDIR = os.path.abspath(args.rundir)
    if args.ports:
        ports = [int(p) for p in args.ports.split(",")]
        if len(ports) not in (4, 5, 7):
            ap.error("--ports takes C2S,COMPONENT,KAMAILIO,GATEWAY[,MSRP[,LINPHONEC,BARESIP]]")
        C2S_PORT, COMPONENT_PORT, KAMAILIO_PORT, GATEWAY_PORT = ports[:4]
        if len(ports) >= 5:
            MSRP_PORT = ports[4]
        if len(ports) == 7:
            LINPHONEC_PORT, BARESIP_PORT = ports[5:]
    if args.command == ["steps"]:
        print(instructions(up=False), flush=True)
        return 0
    if args.command:
        cmd = args.command[0]
        if cmd == "sip-publish" and len(args.command) == 3:
            ok = sip_publish(args.command[1], args.command[2])
            print("published" if ok else "failed")
            return 0 if ok else 1
        if cmd == "xmpp-watch" and len(args.command) == 3:
            return 0 if xmpp_watch(args.command[1], args.command[2]) else 1
        if len(args.command) != 4 or cmd not in ("sip-send", "xmpp-send"):
            ap.error("usage: sip-send|xmpp-send FROM TO TEXT, sip-publish USER NOTE, "
                     "xmpp-watch USER CONTACT, steps")
        cmd, frm, to, text = args.command
        ok = sip_send(frm, to, text) if cmd == "sip-send" else xmpp_send(frm, to, text)
        print("sent" if ok else "failed")
        return 0 if ok else 1
    prepare()
    procs, logs = start(args.gateway)
    try:
        if args.check:
            return 0 if check() else 1
        print(instructions(), flush=True)
        signal.signal(signal.SIGTERM, signal.default_int_handler)
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        return 0
    finally:
        stop(procs)


if __name__ == "__main__":
    sys.exit(main())
