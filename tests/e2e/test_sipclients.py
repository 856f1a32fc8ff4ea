"""test_sipclients.py - the demo federation with real SIP clients: linphonec (linphone-cli 5.1) as
dave and baresip (baresip-core 1.0) as bob register to Kamailio (conf/kamailio-sip.example.cfg)
and exchange with alice, a slixmpp user on Prosody, through the gateway: messages, typing
notices, delivery reports and presence, both ways where the client can.

The clients run the configurations and the console commands of sipclients.py, which
tools/federation.py prints as the demo's steps (test_demo_prints_the_tested_steps checks that).
What the clients cannot do is said where it matters: neither sends typing notices nor asks for
delivery reports, neither shows a typing notice or a report it receives (the tests read their
SIP traces instead), linphonec cannot set its own presence except online (at start) and offline
(by quitting), baresip only online and offline and it shows RPID away as Offline.
"""

import os
import re
import subprocess
import sys

from slixmpp.xmlstream.handler import Callback
from slixmpp.xmlstream.matcher import StanzaPath

from harness import SIP_DOMAIN, XMPP_DOMAIN, Kamailio, check, free_port, gateway_xml, wait_for
from sipclients import (BARESIP_COMMANDS, LINPHONEC_COMMANDS, Baresip, Linphonec,
                        baresip_command, baresip_files, linphonec_command, linphonec_config,
                        shell_line)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ALICE = f"alice@{XMPP_DOMAIN}"
ALICE_URI = f"sip:{ALICE}"
DAVE = f"dave@{SIP_DOMAIN}"
BOB = f"bob@{SIP_DOMAIN}"
RECEIPTS = "urn:xmpp:receipts"
# baresip's publication interval in the presence tests: a stale duplicate publication (see
# Baresip.one_publication) is gone this long after start, plus the presence server's sweep
PUBINT = 5
CHATSTATES = "http://jabber.org/protocol/chatstates"


class Federation:
    """Kamailio as registrar, proxy and presence server of sip.example, the gateway as its peer
    (the demo's pieces, on this module's Prosody), alice logged in, and the SIP clients the test
    starts; everything is stopped by close()."""

    def __init__(self, env):
        self.env = env
        self.kam = Kamailio(env, port=env.peer_sip_port)
        self.clients = []
        self.alice = None

    async def open(self):
        try:
            await self.kam.start()
            xml = gateway_xml(self.env, im='<im max-body="8k" delivery-wait="2s"/>\n  <presence/>')
            if "<sessions" not in xml:
                # MSRP off the default port 2855, which another gateway may hold
                xml = xml.replace("<presence/>", f'<presence/>\n  <sessions msrp-port="{free_port()}"/>')
            self.gw = await self.env.gateway(xml)
            self.alice = await self.env.client("alice")
        except BaseException:
            await self.close()
            raise
        self.alice.presences = []
        self.alice.add_event_handler("presence", self.alice.presences.append)
        return self

    async def sip_client(self, cls, user, **kw):
        c = cls(self.env.workdir, user, self.kam.port, **kw)
        self.clients.append(c)
        await c.start()
        return c

    async def close(self):
        for c in self.clients:
            await c.stop()
        await self.kam.stop()


async def federation(env):
    return await Federation(env).open()


def sent_by(jid):
    return lambda m: m["from"].bare == jid and m["type"] != "error"


def every_message(client):
    """All <message/> stanzas the client gets from now on, bodiless ones (receipts) too:
    slixmpp's "message" event, which fills client.inbox, fires only for messages with a body."""
    seen = []
    client.register_handler(Callback("every message", StanzaPath("message"), seen.append))
    return seen


async def messages_both_ways(fed, client, jid):
    alice = fed.alice
    await client.send(ALICE_URI, f"Hello Alice, from {client.name}")
    m = await alice.expect(lambda m: sent_by(jid)(m) and m["body"] == f"Hello Alice, from {client.name}",
                           timeout=10, what=f"{client.name}'s message at alice")
    check(m["type"] == "chat", m)
    alice.send_message(mto=jid, mbody=f"Hello {client.user}, from XMPP", mtype="chat")
    sender, text = await client.wait_message(f"Hello {client.user}, from XMPP", timeout=10)
    check(sender == ALICE_URI, f"{client.name} shows the message from {sender}")
    got = await client.wait_sip(lambda m: m.method == "MESSAGE" and m.direction == "in", 5,
                                "the MESSAGE")
    check(got.content_type == "text/plain", f"{client.name} got {got.content_type}")


# ---------------------------------------------------------------- messages

async def test_linphonec_messages_both_ways(env):
    fed = await federation(env)
    try:
        lp = await fed.sip_client(Linphonec, "dave")
        await messages_both_ways(fed, lp, DAVE)
    finally:
        await fed.close()


async def test_baresip_messages_both_ways(env):
    fed = await federation(env)
    try:
        bs = await fed.sip_client(Baresip, "bob", contacts=[ALICE_URI])
        await messages_both_ways(fed, bs, BOB)
    finally:
        await fed.close()


# ---------------------------------------------------------------- delivery reports

async def test_linphonec_delivery_report_becomes_receipt(env):
    """linphonec reports delivery of every MESSAGE it takes (message/imdn+xml, deflated when
    the document is 256 bytes or more, otherwise plain; message-id = the CPIM imdn.Message-ID,
    or the Call-ID of a MESSAGE without CPIM), once its network monitor declares the network
    reachable (sipclients.linphonec_config): alice's <request/> gets <received id=her id/> back
    (XEP-0184).  Needs the gateway's IMDN -> XEP-0184 translation."""
    fed = await federation(env)
    try:
        lp = await fed.sip_client(Linphonec, "dave")
        seen = every_message(fed.alice)     # the receipt has no body
        fed.alice.send_raw_xml(
            f'<message to="{DAVE}" type="chat" id="receipt-1"><body>Did you get this?</body>'
            f'<request xmlns="{RECEIPTS}"/><markable xmlns="urn:xmpp:chat-markers:0"/></message>')
        await lp.wait_message("Did you get this?", ALICE_URI, timeout=10)
        await wait_for(lambda: lp.delivery_reports("out"), 10, "linphonec's delivery report")
        mid, status, imdn = lp.delivery_reports("out")[0]
        check(status == "delivered", f"linphonec reported {status}")
        got = [m for m in lp.sip_messages("MESSAGE", "in") if m.content_type != "message/imdn+xml"]
        check(got, "no MESSAGE reached linphonec")
        check(mid in [got[-1].header("call-id")] + re.findall(
            r"(?mi)^\w+\.Message-ID:\s*(\S+)", got[-1].decoded_body().decode("utf-8", "replace")),
            f"linphonec's report is for {mid!r}, not for the MESSAGE it got")

        def receipt(m):
            r = m.xml.find(f"{{{RECEIPTS}}}received")
            return sent_by(DAVE)(m) and r is not None and r.get("id") == "receipt-1"
        await wait_for(lambda: any(receipt(m) for m in seen), 10,
                       "<received id='receipt-1'/> from dave (linphonec's IMDN)")
    finally:
        await fed.close()


async def test_baresip_gets_a_message_that_asks_for_a_receipt(env):
    """baresip takes text/plain only (415 to message/cpim): a message with <request/> and
    <markable/> still reaches it, as text (the gateway falls back to text/plain after the 415)."""
    fed = await federation(env)
    try:
        bs = await fed.sip_client(Baresip, "bob", contacts=[ALICE_URI])
        fed.alice.send_raw_xml(
            f'<message to="{BOB}" type="chat" id="receipt-2"><body>Got this, Bob?</body>'
            f'<request xmlns="{RECEIPTS}"/><markable xmlns="urn:xmpp:chat-markers:0"/></message>')
        await bs.wait_message("Got this, Bob?", ALICE_URI, timeout=15)
        errors = [m for m in fed.alice.inbox if m["type"] == "error"]
        check(not errors, f"alice got an error: {errors}")
    finally:
        await fed.close()


# ---------------------------------------------------------------- typing notices

async def test_linphonec_gets_typing_notices(env):
    """alice's <composing/> and <paused/> (XEP-0085) reach linphonec as isComposing active and
    idle (RFC 3994), answered 200; linphonec shows neither (its trace has them).
    Needs the gateway's XEP-0085 -> isComposing translation."""
    fed = await federation(env)
    try:
        lp = await fed.sip_client(Linphonec, "dave")
        fed.alice.send_raw_xml(f'<message to="{DAVE}" type="chat"><composing xmlns="{CHATSTATES}"/></message>')
        await wait_for(lambda: lp.typing_notices()[:1] == ["active"], 10,
                       "isComposing active at linphonec")
        fed.alice.send_raw_xml(f'<message to="{DAVE}" type="chat"><paused xmlns="{CHATSTATES}"/></message>')
        await wait_for(lambda: lp.typing_notices()[1:2] == ["idle"], 10, "isComposing idle at linphonec")
        answers = [m.status for m in lp.sip_messages("response", "out")
                   if (m.header("cseq") or "").endswith("MESSAGE")]
        check(answers and all(s == 200 for s in answers), f"linphonec answered {answers}")
        # a text after the typing notices still arrives, once
        fed.alice.send_message(mto=DAVE, mbody="typed it", mtype="chat")
        await lp.wait_message("typed it", ALICE_URI, timeout=10)
    finally:
        await fed.close()


async def test_baresip_refuses_typing_notices(env):
    """baresip answers 415 (Accept: text/plain) to isComposing: alice's typing costs her
    nothing visible, and her next message still reaches bob.
    Needs the gateway's XEP-0085 -> isComposing translation."""
    fed = await federation(env)
    try:
        bs = await fed.sip_client(Baresip, "bob", contacts=[ALICE_URI])
        fed.alice.send_raw_xml(f'<message to="{BOB}" type="chat"><composing xmlns="{CHATSTATES}"/></message>')
        await wait_for(lambda: bs.typing_notices()[:1] == ["active"], 10, "isComposing at baresip")
        refused = await bs.wait_sip(lambda m: m.direction == "out" and m.status == 415, 5,
                                    "baresip's 415")
        check((refused.header("accept") or "").startswith("text/plain"), refused.headers)
        fed.alice.send_message(mto=BOB, mbody="still there?", mtype="chat")
        await bs.wait_message("still there?", ALICE_URI, timeout=10)
    finally:
        await fed.close()


# ---------------------------------------------------------------- presence

def pres_of(alice, jid, ptype):
    return [p for p in alice.presences if p["from"].bare == jid and p["type"] == ptype]


async def xmpp_states_at_client(fed, client, expected):
    """alice changes her show; the client shows each state as it names it."""
    alice = fed.alice
    for show, state in expected:
        if show == "unavailable":
            alice.send_presence(ptype="unavailable")
        else:
            alice.send_presence(pshow=show) if show else alice.send_presence()
        await client.wait_presence(ALICE_URI, state, timeout=15)


async def test_linphonec_presence_both_ways(env):
    fed = await federation(env)
    try:
        alice = fed.alice
        lp = await fed.sip_client(Linphonec, "dave")
        # alice watches dave: linphonec PUBLISHed open once registered
        alice.send_presence(pto=DAVE, ptype="subscribe")
        await wait_for(lambda: pres_of(alice, DAVE, "available"), 15, "dave available at alice")
        # dave watches alice (she approves automatically): Online, then each of her shows
        await lp.watch(ALICE_URI)
        await lp.wait_presence(ALICE_URI, "Online", timeout=15)
        await xmpp_states_at_client(fed, lp, [("away", "Away"), ("dnd", "Busy"), ("xa", "Away"),
                                              ("unavailable", "Offline"), (None, "Online")])
        # dave quits: linphonec removes its state (PUBLISH Expires: 0, no Content-Length)
        n = len(pres_of(alice, DAVE, "unavailable"))
        await lp.stop()
        await wait_for(lambda: len(pres_of(alice, DAVE, "unavailable")) > n, 15,
                       "dave unavailable at alice once linphonec quit")
    finally:
        await fed.close()


async def test_baresip_presence_both_ways(env):
    fed = await federation(env)
    try:
        alice = fed.alice
        alice.send_presence(pto=BOB, ptype="subscribe")
        # bob watches alice from his contacts file as he starts; she approves automatically
        bs = await fed.sip_client(Baresip, "bob", contacts=[ALICE_URI], pubint=PUBINT)
        await bs.wait_presence(ALICE_URI, "Online", timeout=20)
        # baresip 1.0 knows Online, Busy and Offline: RPID away shows as Offline
        await xmpp_states_at_client(fed, bs, [("dnd", "Busy"), ("away", "Offline"), (None, "Online"),
                                              ("unavailable", "Offline"), ("chat", "Online")])
        # bob's own state at alice: baresip PUBLISHed open once registered
        await wait_for(lambda: pres_of(alice, BOB, "available"), 15, "bob available at alice")
        n = len(pres_of(alice, BOB, "unavailable"))
        await bs.one_publication()
        await bs.set_presence("offline")
        await wait_for(lambda: len(pres_of(alice, BOB, "unavailable")) > n, 15,
                       "bob unavailable at alice after /presence_offline")
        n = len(pres_of(alice, BOB, "available"))
        await bs.set_presence("online")
        await wait_for(lambda: len(pres_of(alice, BOB, "available")) > n, 15,
                       "bob available at alice after /presence_online")
    finally:
        await fed.close()


# ---------------------------------------------------------------- the demo's steps

async def test_demo_prints_the_tested_steps(env):
    """tools/federation.py steps prints, and writes the configurations of, exactly what the
    drivers above run."""
    rundir = os.path.join(env.workdir, "demo-steps")
    ports = [free_port() for _ in range(7)]
    out = subprocess.run([sys.executable, os.path.join(ROOT, "tools/federation.py"), "steps",
                          "--rundir", rundir, "--ports", ",".join(map(str, ports))],
                         capture_output=True, text=True, timeout=60)
    check(out.returncode == 0, out.stdout + out.stderr)
    text = out.stdout
    kport, lport, bport = ports[2], ports[5], ports[6]
    bdir, ldir = os.path.join(rundir, "baresip-bob"), os.path.join(rundir, "linphonec-dave")
    for name, want in baresip_files("bob", kport, bport, [ALICE_URI]).items():
        with open(os.path.join(bdir, name)) as f:
            check(f.read() == want, f"the demo's baresip {name} is not the tested one")
    with open(os.path.join(ldir, "linphonerc")) as f:
        check(f.read() == linphonec_config("dave", kport, lport), "the demo's linphonerc is not the tested one")
    for line in (shell_line(*baresip_command(bdir)), shell_line(*linphonec_command(ldir)),
                 BARESIP_COMMANDS["message"].format(text="Hello Alice"), BARESIP_COMMANDS["contacts"],
                 BARESIP_COMMANDS["online"], BARESIP_COMMANDS["offline"],
                 LINPHONEC_COMMANDS["message"].format(uri=ALICE_URI, text="Hello Alice"),
                 LINPHONEC_COMMANDS["watch"].format(name="alice", uri=ALICE_URI)):
        check(line in text, f"the demo does not print {line!r}:\n{text}")
    for wrong in ("/message sip:", "/pres away", "/uanew"):
        check(wrong not in text, f"the demo still prints {wrong!r}")


# ---------------------------------------------------------------- Kamailio's part

async def test_unregistered_sip_user_is_not_found(env):
    """Kamailio answers a MESSAGE for a user with no registration 404 at once (it used to leave
    it unanswered: t_reply() without a transaction), and alice gets item-not-found."""
    fed = await federation(env)
    try:
        fed.alice.send_message(mto=f"nobody@{SIP_DOMAIN}", mbody="anyone there?", mtype="chat")
        m = await fed.alice.expect(lambda m: m["type"] == "error" and m["from"].bare == f"nobody@{SIP_DOMAIN}",
                                   timeout=5, what="an error for nobody@sip.example")
        check(m["error"]["condition"] == "item-not-found", m)
        check("404" in m["error"]["text"], m)
    finally:
        await fed.close()


async def test_linphonec_watches_baresip_through_kamailio(env):
    """dave (linphonec, whose Contact is a GRUU) watches bob (baresip) on Kamailio's presence
    server: its NOTIFYs to the GRUU come back to Kamailio (the SRV record of sip.example) and
    reach linphonec through the location table."""
    fed = await federation(env)
    try:
        bs = await fed.sip_client(Baresip, "bob", contacts=[ALICE_URI], pubint=PUBINT)
        lp = await fed.sip_client(Linphonec, "dave")
        await lp.watch(f"sip:{BOB}", "bob")
        await lp.wait_presence(f"sip:{BOB}", "Online", timeout=15)
        await bs.one_publication()
        await bs.set_presence("offline")
        await lp.wait_presence(f"sip:{BOB}", "Offline", timeout=15)
    finally:
        await fed.close()
