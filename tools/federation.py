#!/usr/bin/python3
"""federation.py - runs a complete local federation on loopback: Prosody serving xmpp.example
(with the MUC service conference.xmpp.example), simplegw, and Kamailio as registrar, proxy and
presence server of sip.example.

  tools/federation.py              start everything, print how to use it, run until Ctrl-C
  tools/federation.py --check      start everything, send one message each way, check presence
                                   crosses and that both sides meet in the chat room, stop (exit 0
                                   if all of it worked)
  tools/federation.py steps        write the SIP clients' configurations and print the steps only
  tools/federation.py sip-send FROM TO TEXT    send a SIP MESSAGE from sip:FROM@sip.example (uses sipp)
  tools/federation.py xmpp-send FROM TO TEXT   send an XMPP message from FROM@xmpp.example (uses slixmpp)
  tools/federation.py sip-publish USER NOTE    publish sip:USER@sip.example as online with NOTE (sipp PUBLISH)
  tools/federation.py xmpp-watch USER CONTACT  subscribe USER@xmpp.example to CONTACT@sip.example and
                                               print the presence that arrives for 5 seconds
  tools/federation.py sip-room USER ROOM [NICK]  join ROOM@conference.xmpp.example as sip:USER@sip.example
                                               (SIP + MSRP via Kamailio, RFC 7701): prints the occupants
                                               and messages, sends each line typed; Ctrl-D/Ctrl-C leaves
  tools/federation.py xmpp-room USER ROOM NICK   the same as USER@xmpp.example (slixmpp, XEP-0045)

The demo's chat room is lobby@conference.xmpp.example (Prosody's MUC), created persistent at the
start; any other room name is created by its first occupant.  SIP users reach it as
sip:lobby@conference.xmpp.example, the gateway being their conference focus.

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
MUC_DOMAIN = "conference." + XMPP_DOMAIN      # Prosody's MUC service; SIP users reach it via simplegw
DEMO_ROOM = "lobby"
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
-- XEP-0045 rooms; the gateway joins them in its SIP users' names.  Anyone may create a room, and
-- a new room is open at once (no locked instant room waiting for its owner's form)
Component "{MUC_DOMAIN}" "muc"
  restrict_room_creation = false
  muc_room_locking = false
  muc_room_default_public = true
  muc_room_default_history_length = 20
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
  <!-- SIP users may join the rooms of Prosody's MUC as sip:room@{MUC_DOMAIN} -->
  <groupchat>
    <muc service="{MUC_DOMAIN}"/>
  </groupchat>
  <peer name="kamailio" domain="{SIP_DOMAIN}" groupchat="yes">
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
                       "-A", f"SIP_PORT={KAMAILIO_PORT}", "-A", f'GW_URI="sip:127.0.0.1:{GATEWAY_PORT}"',
                       "-A", f'XMPP_DOMAIN="{XMPP_DOMAIN}"', "-A", f'MUC_DOMAIN="{MUC_DOMAIN}"'],
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


# ---------------------------------------------------------------- groupchat (the chat room)

NS_MUC = "http://jabber.org/protocol/muc"
NS_MUC_USER = "http://jabber.org/protocol/muc#user"
NS_MUC_OWNER = "http://jabber.org/protocol/muc#owner"


def room_jid(room):
    return f"{room}@{MUC_DOMAIN}"


def room_uri(room):
    return f"sip:{room}@{MUC_DOMAIN}"


class MucOccupant:
    """One XMPP client's part in one MUC room (XEP-0045): the presences and messages the room
    sent it, joining, speaking and leaving."""

    def __init__(self, client, room, nick):
        from slixmpp.xmlstream.handler import Callback
        from slixmpp.xmlstream.matcher import MatchXPath
        self.c, self.room, self.nick = client, room, nick
        self.presences, self.messages = [], []
        self.on_presence = self.on_message = None
        jid = room_jid(room)

        def presence(p):
            if p["from"].bare == jid:
                self.presences.append(p)
                if self.on_presence:
                    self.on_presence(p)

        def message(m):
            if m["from"].bare == jid:
                self.messages.append(m)
                if self.on_message:
                    self.on_message(m)
        client.register_handler(Callback(f"muc presence {jid}", MatchXPath("{jabber:client}presence"), presence))
        client.register_handler(Callback(f"muc message {jid}", MatchXPath("{jabber:client}message"), message))

    @staticmethod
    def status(p, code):
        x = p.xml.find(f"{{{NS_MUC_USER}}}x")
        return x is not None and any(s.get("code") == str(code) for s in x.findall(f"{{{NS_MUC_USER}}}status"))

    async def wait_presence(self, pred, timeout=10.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for p in self.presences:
                if pred(p):
                    return p
            await asyncio.sleep(0.05)
        return None

    async def wait_message(self, pred, timeout=10.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for m in self.messages:
                if pred(m):
                    return m
            await asyncio.sleep(0.05)
        return None

    async def join(self, history=20):
        """Joins; returns None once in, else the reason (error condition or timeout)."""
        me = f"{room_jid(self.room)}/{self.nick}"
        self.c.send_raw(f"<presence to='{me}'><x xmlns='{NS_MUC}'>"
                            f"<history maxstanzas='{history}'/></x></presence>")
        p = await self.wait_presence(lambda p: str(p["from"]) == me and
                                     (self.status(p, 110) or p["type"] == "error"))
        if p is None:
            return "no answer from the MUC service"
        if p["type"] == "error":
            return p["error"]["condition"] or "error"
        if self.status(p, 201):
            # a new room: its owner takes the default configuration (XEP-0045 10.1.2)
            self.configure()
        return None

    def configure(self, persistent=False, name=None):
        fields = "<field var='FORM_TYPE'><value>http://jabber.org/protocol/muc#roomconfig</value></field>"
        if persistent:
            fields += "<field var='muc#roomconfig_persistentroom'><value>1</value></field>"
        if name:
            fields += f"<field var='muc#roomconfig_roomname'><value>{xml_text(name)}</value></field>"
        self.c.send_raw(f"<iq type='set' id='cfg-{self.room}' to='{room_jid(self.room)}'>"
                            f"<query xmlns='{NS_MUC_OWNER}'><x xmlns='jabber:x:data' type='submit'>"
                            f"{fields}</x></query></iq>")

    def say(self, text):
        self.c.send_message(mto=room_jid(self.room), mbody=text, mtype="groupchat")

    def set_subject(self, text):
        self.c.send_raw(f"<message type='groupchat' to='{room_jid(self.room)}'>"
                            f"<subject>{xml_text(text)}</subject></message>")

    async def leave(self):
        me = f"{room_jid(self.room)}/{self.nick}"
        self.c.send_raw(f"<presence type='unavailable' to='{me}'/>")
        await self.wait_presence(lambda p: str(p["from"]) == me and p["type"] == "unavailable", 3)


def create_room(room, name, subject):
    """Creates room as a persistent room owned by alice, with a subject, and leaves it: it stays,
    empty, for anyone to join.  Returns None or what went wrong."""
    async def act(c, inbox):
        occ = MucOccupant(c, room, "alice")
        err = await occ.join(history=0)
        if err:
            return err
        occ.configure(persistent=True, name=name)
        occ.set_subject(subject)
        if not await occ.wait_message(lambda m: m.xml.find("{jabber:client}subject") is not None, 5):
            return "the room did not take its subject"
        await occ.leave()
        return None
    try:
        return asyncio.run(xmpp_session("alice", act))
    except (OSError, asyncio.TimeoutError) as e:
        return f"alice could not log in to Prosody ({e!r})"


class Leave:
    """What ends an interactive room session: end of input, Ctrl-C or SIGTERM."""

    def __init__(self):
        self.event = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self.event.set)

    async def read_lines(self, send):
        """Awaits send(line) for each line of standard input, then sets the event (end of input)."""
        loop = asyncio.get_running_loop()
        queue = asyncio.Queue()
        buf = bytearray()

        def readable():
            data = os.read(0, 4096)
            buf.extend(data)
            while b"\n" in buf:
                line, _, rest = bytes(buf).partition(b"\n")
                buf[:] = rest
                queue.put_nowait(line.decode(errors="replace"))
            if not data:
                loop.remove_reader(0)
                if buf:
                    queue.put_nowait(bytes(buf).decode(errors="replace"))
                queue.put_nowait(None)
        try:
            loop.add_reader(0, readable)
        except (PermissionError, OSError):
            # a regular file cannot be polled: it is read at once, line after line
            for line in sys.stdin.read().splitlines():
                queue.put_nowait(line)
            queue.put_nowait(None)
        try:
            while True:
                line = await queue.get()
                if line is None:
                    break
                if line.strip():
                    await send(line.rstrip("\r"))
        finally:
            try:
                loop.remove_reader(0)
            except (PermissionError, OSError, ValueError):
                pass
        await asyncio.sleep(0.5)    # what was just sent reaches the room before we leave
        self.event.set()


def earlier(stamp):
    """"(earlier, <time>) " for a message of the room's history (RFC 3339 stamp), else ""."""
    import datetime
    try:
        t = datetime.datetime.fromisoformat((stamp or "").replace("Z", "+00:00"))
        age = (datetime.datetime.now(datetime.timezone.utc) - t).total_seconds()
    except (ValueError, TypeError):
        return ""
    return f"(earlier, {t.astimezone().strftime('%H:%M:%S')}) " if age > 5 else ""


def sip_room(user, room, nick=None):
    """sip:USER@sip.example in ROOM@conference.xmpp.example through Kamailio (RFC 7701)."""
    return asyncio.run(_sip_room(user, room, nick))


def cpim_nick(m):
    """The nickname of a message the focus relays: the CPIM From display name, or its gr=."""
    from msrp_ua import header_param
    return m.cpim_from_display or header_param(m.cpim_from or "", "gr") or m.cpim_from or "?"


async def sip_join(user, room, nick=None):
    """A MsrpUA for sip:user@sip.example in the room via Kamailio: (ua, call, sub) or (ua, why)."""
    from msrp_ua import MsrpUA, ProtocolError
    ua = await MsrpUA(user, domain=SIP_DOMAIN).start()
    proxy = ("127.0.0.1", KAMAILIO_PORT)
    call = await ua.invite(room_uri(room), next_hop=proxy, timeout=15)
    if call.status != 200:
        await ua.stop()
        hint = f" (is the federation running, Kamailio on 127.0.0.1:{KAMAILIO_PORT}?)" if call.status == 408 else ""
        return ua, None, None, f"INVITE {room_uri(room)}: {call.status} {call.reason}{hint}"
    try:
        await call.wait_connected(5)
    except ProtocolError as e:
        await call.bye()
        await ua.stop()
        return ua, None, None, f"no MSRP connection to the gateway: {e}"
    if nick:
        status = await call.send_nickname(nick)
        if status != 200:
            why = {424: "malformed", 425: "taken"}.get(status, "refused")
            print(f"nickname {nick!r}: {status} ({why}); you keep the one you have", flush=True)
    sub = await ua.subscribe(room_uri(room), next_hop=proxy, timeout=10)
    if sub.status != 200:
        print(f"SUBSCRIBE (Event: conference): {sub.status}; no occupant list", flush=True)
        sub = None
    return ua, call, sub, None


async def _sip_room(user, room, nick):
    from msrp_ua import ProtocolError, header_param
    leave = Leave()
    ua, call, sub, why = await sip_join(user, room, nick)
    if why:
        print(why, flush=True)
        return 1
    print(f"sip:{user}@{SIP_DOMAIN} is in {room_uri(room)} (via Kamailio 127.0.0.1:{KAMAILIO_PORT}); "
          f"type to talk, Ctrl-D leaves", flush=True)

    async def show_messages():
        while True:
            try:
                m = await call.wait_message(timeout=3600)
            except ProtocolError:
                continue
            if not header_param(m.cpim_from or "", "gr"):
                print(f"* {m.text}", flush=True)    # from the room itself, e.g. its subject
                continue
            private = m.cpim_to and not m.cpim_to.startswith(room_uri(room))
            print(f"{earlier(m.cpim_datetime)}{cpim_nick(m)}{' (private)' if private else ''}: {m.text}",
                  flush=True)

    def occupants(s):
        return sorted(u["display"] or e for e, u in s.conference.items())

    async def show_occupants():
        shown = None
        while sub is not None:
            try:
                # from the first NOTIFY on (RFC 4575 full state), each change of the list
                await sub.wait_state(lambda s: s.version is not None and occupants(s) != shown, 3600)
            except ProtocolError:
                continue
            names = occupants(sub)
            if shown is None:
                print(f"in the room: {', '.join(names)}", flush=True)
            else:
                for n in sorted(set(names) - set(shown)):
                    print(f"* {n} joined", flush=True)
                for n in sorted(set(shown) - set(names)):
                    print(f"* {n} left", flush=True)
            shown = names

    async def refresh():
        while sub is not None:
            await asyncio.sleep(max(30, (sub.expires or 600) * 0.8))
            if sub.state != "terminated":
                await sub.refresh()

    async def send(line):
        if call.state != "terminated":
            await call.send_text(line)
    tasks = [asyncio.ensure_future(t) for t in (show_messages(), show_occupants(), refresh(),
                                                leave.read_lines(send))]
    ended = asyncio.ensure_future(call.terminated.wait())
    await asyncio.wait([ended, asyncio.ensure_future(leave.event.wait())], return_when=asyncio.FIRST_COMPLETED)
    for t in tasks + [ended]:
        t.cancel()
    if call.bye_received is not None:
        print(f"the focus ended the call: {call.bye_reason or 'BYE'}", flush=True)
    else:
        if sub is not None and sub.state != "terminated":
            await sub.unsubscribe()
        if call.state != "terminated":
            await call.bye()
        print("left the room", flush=True)
    await ua.stop()
    return 0


def xmpp_room(user, room, nick):
    """USER@xmpp.example in ROOM@conference.xmpp.example (XEP-0045), from this shell."""
    async def act(c, inbox):
        leave = Leave()
        occ = MucOccupant(c, room, nick)
        mine = f"{room_jid(room)}/{nick}"

        def on_presence(p):
            who = p["from"].resource
            if str(p["from"]) == mine or p["type"] == "error":
                return
            if p["type"] == "unavailable" and occ.status(p, 303):
                # a nickname change (XEP-0045 7.6): the new one is in the item, its presence follows
                item = p.xml.find(f"{{{NS_MUC_USER}}}x/{{{NS_MUC_USER}}}item")
                renamed[item.get("nick") if item is not None else None] = who
                return
            if p["type"] != "unavailable" and who in renamed:
                print(f"* {renamed.pop(who)} is now {who}", flush=True)
                return
            print(f"* {who} {'left' if p['type'] == 'unavailable' else 'is here'}", flush=True)
        renamed = {}

        def on_message(m):
            subj = m.xml.find("{jabber:client}subject")
            if subj is not None and subj.text:
                print(f"* subject: {subj.text}", flush=True)
            elif m["body"] and (str(m["from"]) != mine or m["type"] != "groupchat" or
                                m.xml.find("{urn:xmpp:delay}delay") is not None):
                # the room echoes what we say: not printed again, unless it is history
                private = " (private)" if m["type"] == "chat" else ""
                delay = m.xml.find("{urn:xmpp:delay}delay")
                when = earlier(delay.get("stamp")) if delay is not None else ""
                print(f"{when}{m['from'].resource or room}{private}: {m['body']}", flush=True)
            elif m["type"] == "error":
                print(f"error: {m['error']['condition']} {m['error']['text'] or ''}", flush=True)
        occ.on_presence, occ.on_message = on_presence, on_message
        err = await occ.join()
        if err:
            print(f"could not join {room_jid(room)} as {nick}: {err}", flush=True)
            return 1
        print(f"{user}@{XMPP_DOMAIN} is in {room_jid(room)} as {nick}; type to talk, Ctrl-D leaves", flush=True)

        async def send(line):
            occ.say(line)
        reader = asyncio.ensure_future(leave.read_lines(send))
        await leave.event.wait()
        reader.cancel()
        await occ.leave()
        print("left the room", flush=True)
        return 0
    return asyncio.run(xmpp_session(user, act))


def check_room(room=DEMO_ROOM):
    """alice (XMPP) and bob (SIP, through Kamailio and the gateway) meet in the room, one message
    each way, both leave."""
    from msrp_ua import ProtocolError
    where = f"{room_jid(room)}"

    async def act(c, inbox):
        ok = True
        alice = MucOccupant(c, room, "alice")
        err = await alice.join(history=0)
        if err:
            print(f"groupchat: alice could not join {where}: {err}")
            return False
        ua, call, sub, why = await sip_join("bob", room, "bob")
        if why:
            print(f"groupchat: sip:bob@{SIP_DOMAIN} could not join {room_uri(room)}: {why}")
            return False
        try:
            if not await alice.wait_presence(lambda p: str(p["from"]) == f"{where}/bob" and
                                             p["type"] != "unavailable", 5):
                print("groupchat: alice does not see bob in the room")
                ok = False
            if sub is None:
                ok = False
            else:
                try:
                    await sub.wait_state(lambda s: {"alice", "bob"} <= {u["display"] for u in s.conference.values()}, 5)
                    print(f"groupchat: sip:bob@{SIP_DOMAIN} sees alice and bob in {room_uri(room)}")
                except ProtocolError:
                    print(f"groupchat: bob's occupant list is {sub.conference}")
                    ok = False
            alice.say("hello room, from XMPP")
            try:
                m = await call.wait_message(lambda x: x.text == "hello room, from XMPP", timeout=10)
                print(f"groupchat XMPP -> SIP: alice in {where} -> sip:bob@{SIP_DOMAIN} delivered "
                      f"(from {cpim_nick(m)!r})")
            except ProtocolError:
                print("groupchat XMPP -> SIP: bob did not receive alice's message")
                ok = False
            await call.send_text("hello room, from SIP")
            if await alice.wait_message(lambda m: m["body"] == "hello room, from SIP" and
                                        str(m["from"]) == f"{where}/bob", 10):
                print(f"groupchat SIP -> XMPP: sip:bob@{SIP_DOMAIN} in {room_uri(room)} -> alice delivered")
            else:
                print("groupchat SIP -> XMPP: alice did not receive bob's message")
                ok = False
        finally:
            if sub is not None and sub.state != "terminated":
                await sub.unsubscribe()
            if call.state != "terminated":
                await call.bye()
            await ua.stop()
        if await alice.wait_presence(lambda p: str(p["from"]) == f"{where}/bob" and
                                     p["type"] == "unavailable", 5):
            print("groupchat: bob left the room (BYE)")
        else:
            print("groupchat: alice did not see bob leave after his BYE")
            ok = False
        await alice.leave()
        if ua.protocol_errors:
            print("groupchat: the SIP side saw protocol errors:\n  " + "\n  ".join(ua.protocol_errors))
            ok = False
        return ok
    return asyncio.run(xmpp_session("alice", act))


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
    # groupchat: alice (XMPP) and bob (SIP + MSRP, via Kamailio and the gateway) in the room
    if not check_room():
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

Groupchat: the room {room_jid(DEMO_ROOM)} (Prosody's MUC, persistent; any other name under
{MUC_DOMAIN} is created by its first occupant).  SIP users are in it through simplegw, their
conference focus, as sip:{DEMO_ROOM}@{MUC_DOMAIN}; each side sees the other's occupants by nickname.
  profanity (XMPP):  /join {room_jid(DEMO_ROOM)} nick alice     then type
  SIP, from this shell (SIP + MSRP via Kamailio; type lines, Ctrl-D leaves):
                     tools/federation.py sip-room bob {DEMO_ROOM} Bob
  XMPP, from this shell:
                     tools/federation.py xmpp-room carol {DEMO_ROOM} carol
  any SIP client with MSRP chat rooms (RFC 7701): INVITE sip:{DEMO_ROOM}@{MUC_DOMAIN} through
                     127.0.0.1:{KAMAILIO_PORT}; SUBSCRIBE to it (Event: conference) for the occupants
  (baresip and linphonec here have no MSRP: they cannot join)

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
                    "xmpp-watch USER CONTACT, sip-room USER ROOM [NICK], xmpp-room USER ROOM NICK, steps")
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
        if cmd == "sip-room" and len(args.command) in (3, 4):
            return sip_room(*args.command[1:])
        if cmd == "xmpp-room" and len(args.command) == 4:
            if args.command[1] not in XMPP_USERS:
                ap.error(f"xmpp-room: the XMPP users are {', '.join(XMPP_USERS)}")
            return xmpp_room(*args.command[1:])
        if len(args.command) != 4 or cmd not in ("sip-send", "xmpp-send"):
            ap.error("usage: sip-send|xmpp-send FROM TO TEXT, sip-publish USER NOTE, "
                     "xmpp-watch USER CONTACT, sip-room USER ROOM [NICK], xmpp-room USER ROOM NICK, steps")
        cmd, frm, to, text = args.command
        ok = sip_send(frm, to, text) if cmd == "sip-send" else xmpp_send(frm, to, text)
        print("sent" if ok else "failed")
        return 0 if ok else 1
    prepare()
    procs, logs = start(args.gateway)
    try:
        why = create_room(DEMO_ROOM, "simplegw demo lobby", "XMPP and SIP users, one room")
        if why:
            print(f"the room {room_jid(DEMO_ROOM)} was not created: {why}", flush=True)
            if args.check:
                return 1
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
