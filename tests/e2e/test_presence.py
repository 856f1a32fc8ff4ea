"""test_presence.py - presence both ways (RFC 8048): slixmpp watchers and presentities on Prosody
and on ejabberd, sipp as SIP presence server and SIP watcher, and Kamailio as the real SIMPLE
presence server."""

import asyncio
import os
import types

from harness import (SIP_DOMAIN, XMPP_DOMAIN, Client, Kamailio, check, free_port, gateway_xml,
                     notifies_of, pidf, presence_publish_update, presence_publisher, presence_server, presence_watcher,
                     responses_of,
                     wait_for)
from msrp_ua import SipMessage, parse_sip

XMPP_SERVERS = ("prosody", "ejabberd")
USERS = ("alice", "carol", "dave", "oscar", "peggy", "trent") + tuple(f"w{i:02d}" for i in range(50))
BOB = f"bob@{SIP_DOMAIN}"
BOB_URI = f"sip:bob@{SIP_DOMAIN}"
ALICE_URI = f"sip:alice@{XMPP_DOMAIN}"

RPID_DOC = """<?xml version="1.0" encoding="UTF-8"?>
<presence xmlns="urn:ietf:params:xml:ns:pidf" xmlns:dm="urn:ietf:params:xml:ns:pidf:data-model"
          xmlns:rpid="urn:ietf:params:xml:ns:pidf:rpid" entity="sip:bob@sip.example">
  <tuple id="phone"><status><basic>open</basic></status>
    <note xml:lang="en">In a meeting &amp; busy &lt;really&gt;</note></tuple>
  <dm:person id="p1"><rpid:activities><rpid:away/></rpid:activities></dm:person>
</presence>
"""


async def watcher(env, user, auto_authorize=True, auto_subscribe=False):
    """A logged-in slixmpp client whose presence stanzas are kept in c.presences."""
    c = Client(user, env.xmpp.c2s_port)
    c.presences = []
    c.auto_authorize = auto_authorize
    c.auto_subscribe = auto_subscribe
    c.add_event_handler("presence", lambda p: c.presences.append(p))
    env.clients.append(c)
    await c.login()
    return c


def pres(c, ptype=None, frm=None, pred=None):
    out = []
    for p in c.presences:
        if ptype is not None and p["type"] != ptype:
            continue
        if frm is not None and not str(p["from"]).startswith(frm):
            continue
        if pred and not pred(p):
            continue
        out.append(p)
    return out


async def expect_pres(c, ptype=None, frm=None, pred=None, timeout=8, what=None):
    await wait_for(lambda: pres(c, ptype, frm, pred), timeout,
                   what or f"presence type={ptype} from={frm} at {c.boundjid}")
    return pres(c, ptype, frm, pred)[-1]


def presence_gateway_xml(env, db=None, peer_port=None, extra=""):
    xml = gateway_xml(env)
    attrs = f'expires="120s" min-expires="10s" max-expires="600s" {extra}'
    if db:
        attrs += f' database="{db}"'
    xml = xml.replace("<im ", f"<presence {attrs}/>\n  <im ", 1)
    if peer_port:
        xml = xml.replace(f'port="{env.peer_sip_port}"', f'port="{peer_port}"')
    return xml


def counting_watcher(env, presentity, notifies, watcher=BOB_URI, expires=60, timeout=20,
                     via=None, more=0):
    """A sipp watcher that takes `notifies` NOTIFYs: sending straight to the gateway (as the
    peer), or through a Kamailio `via`."""
    ok = """  <send>
    <![CDATA[
SIP/2.0 200 OK
[last_Via:]
[last_From:]
[last_To:]
[last_Call-ID:]
[last_CSeq:]
Content-Length: 0

]]>
  </send>
"""
    # every wait is bounded: the test judges what arrived from the trace, so a NOTIFY more or
    # less than expected (a client sending its presence twice) must not hang the scenario
    step = '  <recv request="NOTIFY" timeout="5000" ontimeout="end"/>\n' + ok
    extra = '  <recv request="NOTIFY" timeout="1000" ontimeout="end"/>\n' + ok
    values = dict(ruri=presentity, presentity=presentity, watcher=watcher, expires=str(expires),
                  steps=step * notifies + extra * more)
    # NOTIFYs may overtake the 2xx through a proxy with several workers (RFC 6665 4.1.2.4):
    # sipp's automatic answer takes those (a scenario path for them races the 2xx arriving
    # while sipp sends the 200, and sipp aborts the call); the trace has them all
    remote = via.remote if via else f"127.0.0.1:{env.gw_sip_port}"
    port = None if via else env.peer_sip_port
    return env.sipp("watcher", "presence_watch_count.xml", values, remote=remote, port=port,
                    timeout=timeout, auto_answer=True)


def subscribes_of(sipp):
    return [(s, h) for s, h, b in sipp.received() if s.startswith("SUBSCRIBE ")]


# ---------------------------------------------------------------- XMPP watcher -> SIP presentity

async def test_xmpp_watcher_sees_sip_presence(env):
    server = presence_server(env, body=RPID_DOC, wait=True)
    await server.start()
    await env.gateway(presence_gateway_xml(env))
    alice = await watcher(env, "alice")
    alice.send_presence(pto=BOB, ptype="subscribe")
    await expect_pres(alice, "subscribed", BOB)
    p = await expect_pres(alice, None, BOB + "/phone", lambda p: p["type"] in ("away", "available"))
    check(p["show"] == "away", f"RPID away -> show away: {p}")
    check(p["status"] == "In a meeting & busy <really>", f"note -> status, escaped: {p['status']!r}")
    subs = subscribes_of(server)
    check(len(subs) == 1, f"one SUBSCRIBE: {subs}")
    start, h = subs[0]
    check(start.startswith(f"SUBSCRIBE {BOB_URI}"), start)
    check(h["event"][0] == "presence" and "application/pidf+xml" in h["accept"][0], h)
    check(f"<sip:alice@{XMPP_DOMAIN}>" in h["from"][0],
          f"the watcher's own identity, for the presentity's authorization: {h['from']}")
    # the watcher leaves: the dialog ends with SUBSCRIBE Expires: 0, and the final NOTIFY that
    # follows is answered 200 (RFC 6665 4.1.2.3), not 481: the scenario fails on anything else
    alice.send_presence(pto=BOB, ptype="unsubscribe")
    await wait_for(lambda: len(subscribes_of(server)) > 1, 10, "the un-SUBSCRIBE")
    subs = subscribes_of(server)
    check(subs[1][1]["expires"][0] == "0", f"un-SUBSCRIBE: {subs[1]}")
    check(await server.wait(10) == 0, f"the final NOTIFY answered 200: {server.error_text()}")


async def test_pending_until_authorized(env):
    server = presence_server(env, substate="pending;expires=60", body="",
                             substate2="active;expires=60", body2=pidf(BOB_URI, note="back"),
                             pause_ms=1500)
    await server.start()
    await env.gateway(presence_gateway_xml(env))
    alice = await watcher(env, "alice")
    alice.send_presence(pto=BOB, ptype="subscribe")
    await asyncio.sleep(1.0)
    check(not pres(alice, frm=BOB), f"nothing while pending: {pres(alice, frm=BOB)}")
    await expect_pres(alice, "subscribed", BOB)
    p = await expect_pres(alice, "available", BOB)
    check(p["status"] == "back", p)


async def test_refusals_unsubscribe_the_watcher(env):
    for how in ({"status": 403}, {"status": 200, "substate": "terminated;reason=rejected"}):
        server = presence_server(env, **how)
        await server.start()
        gw = await env.gateway(presence_gateway_xml(env))
        alice = await watcher(env, "alice")
        alice.send_presence(pto=BOB, ptype="subscribe")
        await expect_pres(alice, "unsubscribed", BOB, what=f"unsubscribed after {how}")
        check(not pres(alice, "subscribed", BOB), "never subscribed")
        await server.wait(10)
        await env.cleanup()


async def test_timeout_resubscribes_quietly(env):
    server = presence_server(env, body=pidf(BOB_URI, note="one"),
                             substate2="terminated;reason=timeout", pause_ms=500)
    await server.start()
    gw = await env.gateway(presence_gateway_xml(env))
    alice = await watcher(env, "alice")
    alice.send_presence(pto=BOB, ptype="subscribe")
    await expect_pres(alice, "available", BOB)
    await server.wait(10)
    second = presence_server(env, body=pidf(BOB_URI, note="two"), name="server2")
    await second.start()
    await expect_pres(alice, "available", BOB, lambda p: p["status"] == "two", timeout=10,
                      what="presence from the new dialog")
    check(not pres(alice, "unsubscribed"), "the roster was not touched")
    check(len(pres(alice, "subscribed", BOB)) == 1, "subscribed once only")


async def test_each_watcher_has_its_own_dialog(env):
    """Each XMPP watcher subscribes as itself (RFC 8048): the presentity's own authorization
    decides for each, so the gateway holds one dialog per watcher."""
    n = 12
    server = presence_server(env, body=pidf(BOB_URI, note="first"), substate2="active;expires=60",
                             body2=pidf(BOB_URI, note="changed"), pause_ms=3000, calls=n)
    await server.start()
    await env.gateway(presence_gateway_xml(env))
    clients = await asyncio.gather(*(watcher(env, f"w{i:02d}") for i in range(n)))
    for c in clients:
        c.send_presence(pto=BOB, ptype="subscribe")
    for c in clients:
        await expect_pres(c, "available", BOB, lambda p: p["status"] == "first", timeout=15)
    for c in clients:
        await expect_pres(c, "available", BOB, lambda p: p["status"] == "changed", timeout=15)
    subs = subscribes_of(server)
    check(len(subs) == n, f"one SIP dialog per watcher: {len(subs)}")
    froms = sorted(h["from"][0].split(">")[0].lstrip("<") for _, h in subs)
    check(froms == sorted(f"sip:w{i:02d}@{XMPP_DOMAIN}" for i in range(n)),
          f"each as itself: {froms}")


async def test_many_presentities_are_paced(env):
    """40 presentities restored at once: at most 32 SUBSCRIBEs in flight, the rest queued."""
    n = 40
    db = os.path.join(env.workdir, "many.db")
    server = presence_server(env, body=pidf(BOB_URI, note="many"), calls=n)
    await server.start()
    gw = await env.gateway(presence_gateway_xml(env, db=db))
    alice = await watcher(env, "alice")
    contacts = [f"b{i:02d}@{SIP_DOMAIN}" for i in range(n)]
    for jid in contacts:
        alice.send_presence(pto=jid, ptype="subscribe")
    await wait_for(lambda: all(pres(alice, "available", jid) for jid in contacts), 20,
                   "presence from all 40 contacts")
    await gw.stop()
    await server.kill()
    second = presence_server(env, body=pidf(BOB_URI, note="again"), calls=n, name="server2")
    await second.start()
    alice.presences.clear()
    gw2 = await env.gateway(presence_gateway_xml(env, db=db))
    await wait_for(lambda: all(pres(alice, "available", jid, lambda p: p["status"] == "again")
                               for jid in contacts), 20, "presence from all 40 after the restart")
    check(gw2.log_count(r"-> queued") == n - 32, f"8 waited for a slot: {gw2.log_count('-> queued')}")
    check(len(subscribes_of(second)) == n, f"one dialog each: {len(subscribes_of(second))}")


async def test_malformed_document_is_not_applied(env):
    """A NOTIFY whose PIDF is not well-formed is answered 400 (RFC 6665 4.1.3) and changes
    nothing; the dialog goes on, refreshed at once (the notifier may have removed it after the
    failed NOTIFY, RFC 6665 4.2.2)."""
    bad = "<presence xmlns='urn:ietf:params:xml:ns:pidf' entity='sip:bob@sip.example'><tuple id='x'>"
    server = presence_server(env, body=pidf(BOB_URI, note="good"), substate2="active;expires=60",
                             body2=bad, pause_ms=800, answer2=400)
    await server.start()
    gw = await env.gateway(presence_gateway_xml(env))
    alice = await watcher(env, "alice")
    alice.send_presence(pto=BOB, ptype="subscribe")
    await expect_pres(alice, "available", BOB)
    await gw.wait_log(r"malformed PIDF refused", timeout=8)
    await wait_for(lambda: any(s == 400 for s, h, b in responses_of(server)), 5,
                   "the bad NOTIFY answered 400")
    await gw.wait_log(r"a NOTIFY answered 400: refreshing", timeout=2)
    check(all(p["status"] == "good" for p in pres(alice, frm=BOB) if p["type"] == "available"),
          "the bad document changed nothing")


async def test_document_of_another_type_is_refused_415(env):
    """A NOTIFY with a body that is not application/pidf+xml is answered 415 (RFC 6665 4.1.3)
    with an Accept, and changes nothing."""
    server = presence_server(env, body=pidf(BOB_URI, note="good"), substate2="active;expires=60",
                             body2="just text", ctype2="text/plain", pause_ms=800, answer2=415)
    await server.start()
    gw = await env.gateway(presence_gateway_xml(env))
    alice = await watcher(env, "alice")
    alice.send_presence(pto=BOB, ptype="subscribe")
    await expect_pres(alice, "available", BOB)
    await wait_for(lambda: any(s == 415 for s, h, b in responses_of(server)), 8,
                   "the text/plain NOTIFY answered 415")
    answers = [(s, h) for s, h, b in responses_of(server) if s == 415]
    check(answers and "application/pidf+xml" in ",".join(answers[0][1].get("accept", [])),
          f"415 with an Accept listing PIDF: {answers}")
    await gw.wait_log(r"NOTIFY with text/plain ignored", timeout=5)
    check(all(p["status"] == "good" for p in pres(alice, frm=BOB) if p["type"] == "available"),
          "the text/plain document changed nothing")


async def test_gateway_restart_restores_subscriptions_and_answers_probes(env):
    db = os.path.join(env.workdir, "presence.db")
    server = presence_server(env, body=pidf(BOB_URI, note="before"), wait=True)
    await server.start()
    gw = await env.gateway(presence_gateway_xml(env, db=db))
    alice = await watcher(env, "alice")
    alice.send_presence(pto=BOB, ptype="subscribe")
    await expect_pres(alice, "available", BOB)
    await gw.stop()
    await expect_pres(alice, "unavailable", BOB, what="unavailable while the gateway is away")
    await server.wait(10)
    # a new presence server: the restarted gateway subscribes again by itself
    second = presence_server(env, body=pidf(BOB_URI, note="after"), name="server2", wait=True)
    await second.start()
    alice.presences.clear()
    gw2 = await env.gateway(presence_gateway_xml(env, db=db))
    await gw2.wait_log(r"1 subscriptions of XMPP watchers to SIP presentities restored",
                       timeout=5)
    await expect_pres(alice, "available", BOB, lambda p: p["status"] == "after", timeout=10)
    # a probe (alice logs in again) is answered from the state held
    await alice.logout()
    env.clients.remove(alice)
    again = await watcher(env, "alice")
    await expect_pres(again, "available", BOB, lambda p: p["status"] == "after", timeout=8,
                      what="the probe answered on login")
    check(len(subscribes_of(second)) == 1, "one dialog after the restart")


# ---------------------------------------------------------------- SIP watcher -> XMPP presentity

async def test_sip_watcher_approved_sees_xmpp_presence(env):
    await env.gateway(presence_gateway_xml(env))
    alice = await watcher(env, "alice", auto_authorize=True)
    alice.send_presence(pshow="dnd", pstatus="Writing <code> & tests", ppriority=5)
    w = counting_watcher(env, ALICE_URI, 2, more=3)
    await w.start()
    await w.wait(25)	# judged from what it received (its status counts the optional waits)
    notes = notifies_of(w)
    check(notes[0][0]["subscription-state"][0].startswith("pending"), f"pending first: {notes[0][0]}")
    active = [b for h, b in notes if h["subscription-state"][0].startswith("active")]
    check(b"<tuple" in active[0], f"the first active NOTIFY already has alice's presence: {active[0]}")
    body = active[-1].decode()
    check("<basic>open</basic>" in body, body)
    check("Writing &lt;code&gt; &amp; tests" in body, f"status text escaped in the note: {body}")
    check("<rpid:busy/>" in body or "busy" in body, f"dnd -> busy: {body}")


async def test_sip_watcher_refused_is_rejected(env):
    await env.gateway(presence_gateway_xml(env))
    carol = await watcher(env, "carol", auto_authorize=False)
    w = counting_watcher(env, f"sip:carol@{XMPP_DOMAIN}", 2)
    await w.start()
    rc = await w.wait(25)
    check(rc == 0, w.error_text())
    states = [h["subscription-state"][0] for h, b in notifies_of(w)]
    check(states[0].startswith("pending"), states)
    check(states[-1].startswith("terminated") and "rejected" in states[-1], states)


async def test_sip_watcher_not_yet_approved_stays_pending(env):
    await env.gateway(presence_gateway_xml(env))
    dave = await watcher(env, "dave", auto_authorize=None)
    dave.send_presence(pstatus="secret status")
    w = counting_watcher(env, f"sip:dave@{XMPP_DOMAIN}", 2, timeout=6)
    await w.start()
    await w.wait(10)
    notes = notifies_of(w)
    check(len(notes) == 1 and notes[0][0]["subscription-state"][0].startswith("pending"),
          f"one pending NOTIFY, nothing else: {[h['subscription-state'] for h, b in notes]}")
    check(not notes[0][1], "no document while pending")


def wire_view(notes):
    """What a watcher can learn from its NOTIFYs: states and bodies, without tags and ids."""
    return [(h["subscription-state"][0], h.get("content-type", [None])[0], b) for h, b in notes]


async def test_blocked_watcher_sees_the_same_as_a_pending_one(env):
    await env.gateway(presence_gateway_xml(env))
    dave = await watcher(env, "dave", auto_authorize=None)	# never answers
    carol = await watcher(env, "carol", auto_authorize=None)
    carol.register_plugin("xep_0191")
    await carol.plugin["xep_0191"].block([BOB])	# XEP-0191: Prosody drops bob's stanzas
    for c in (dave, carol):
        c.send_presence(pstatus="private")
    pending = counting_watcher(env, f"sip:dave@{XMPP_DOMAIN}", 1, more=2)
    await pending.start()
    await pending.wait(15)
    blocked = counting_watcher(env, f"sip:carol@{XMPP_DOMAIN}", 1, more=2)
    await blocked.start()
    await blocked.wait(15)
    a, b = wire_view(notifies_of(pending)), wire_view(notifies_of(blocked))
    check(a and a == b, f"indistinguishable: pending {a} / blocked {b}")
    check(a[0][0].startswith("pending") and not a[0][2], f"pending, no document: {a}")
    check(not pres(carol, "subscribe"), "the blocked request never reached carol")


async def test_sip_subscribe_refusals(env):
    await env.gateway(presence_gateway_xml(env))
    cases = [(dict(expires=2), "423"),
             (dict(presentity=f"sip:{XMPP_DOMAIN}"), "404")]
    for kw, status in cases:
        kw = dict(dict(presentity=ALICE_URI), **kw)
        w = presence_watcher(env, env.gw_sip_port, watcher=BOB_URI, refused=int(status),
                             timeout=8, port=env.peer_sip_port, **kw)
        await w.start()
        rc = await w.wait(12)
        got = [s for s, h, b in w.received() if s.startswith("SIP/2.0")]
        check(any(s.startswith(f"SIP/2.0 {status}") for s in got), f"{kw}: {got} {w.error_text()}")


# ---------------------------------------------------------------- the harness's SIP watchers

class EarlyNotifier(asyncio.DatagramProtocol):
    """A notifier as seen through a proxy with several workers: for each SUBSCRIBE the first
    NOTIFY (pending) leaves in the same instant as the 200 and ahead of it, the second (active,
    with a document) 100 ms later; each NOTIFY carries two Via headers, as a proxy's would."""

    def __init__(self, port):
        self.port = port
        self.responses = []
        self.transport = None

    def connection_made(self, transport):
        self.transport = transport

    def datagram_received(self, data, addr):
        msg = parse_sip(data, addr)
        if not msg.is_request:
            self.responses.append(msg)
            return
        if msg.method != "SUBSCRIBE":
            return

        def notify(cseq, state, body):
            return SipMessage(f"NOTIFY sip:watcher@{addr[0]}:{addr[1]} SIP/2.0", [
                ("Via", f"SIP/2.0/UDP 127.0.0.1:{self.port};branch=z9hG4bKn{cseq}"),
                ("Via", f"SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bKproxy{cseq}"),
                ("From", msg.get("to") + ";tag=early"), ("To", msg.get("from")),
                ("Call-ID", msg.call_id), ("CSeq", f"{cseq} NOTIFY"),
                ("Contact", f"<sip:127.0.0.1:{self.port}>"), ("Event", "presence"),
                ("Subscription-State", f"{state};expires=60"), ("Max-Forwards", "70")]
                + ([("Content-Type", "application/pidf+xml")] if body else []), body).encode()
        ok = SipMessage("SIP/2.0 200 OK", [
            ("Via", msg.get("via")), ("From", msg.get("from")), ("To", msg.get("to") + ";tag=early"),
            ("Call-ID", msg.call_id), ("CSeq", msg.get("cseq")),
            ("Contact", f"<sip:127.0.0.1:{self.port}>"), ("Expires", "60")])
        self.transport.sendto(notify(1, "pending", b""), addr)
        self.transport.sendto(ok.encode(), addr)
        doc = pidf(BOB_URI, note="hello early").encode()
        asyncio.get_running_loop().call_later(
            0.1, lambda: self.transport.sendto(notify(2, "active", doc), addr))


async def test_harness_watchers_take_a_notify_before_the_2xx(env):
    """Both sipp watchers answer a NOTIFY that overtakes the 2xx (RFC 6665 4.1.2.4) through the
    proxy's Via headers and go on to the next one; sipp alone aborted such a call."""
    port = free_port()
    transport, notifier = await asyncio.get_running_loop().create_datagram_endpoint(
        lambda: EarlyNotifier(port), local_addr=("127.0.0.1", port))
    try:
        w1 = presence_watcher(env, port, until="hello early", timeout=10)
        proxy = types.SimpleNamespace(remote=f"127.0.0.1:{port}")
        w2 = counting_watcher(env, BOB_URI, 1, via=proxy, timeout=10)
        for w in (w1, w2):
            await w.start()
            rc = await w.wait(15)
            check(rc == 0, f"sipp {w.name} ended with {rc}: {w.error_text()}")
            states = [h["subscription-state"][0].split(";")[0] for h, b in notifies_of(w)]
            check(states == ["pending", "active"], f"NOTIFYs in CSeq order: {states}")
        await wait_for(lambda: len(notifier.responses) >= 4, 5, "a 200 to each NOTIFY")
        for cseq in (1, 2):
            got = [r for r in notifier.responses if r.cseq == (cseq, "NOTIFY")]
            vias = [f"SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bKn{cseq}",
                    f"SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bKproxy{cseq}"]
            check(len(got) == 2 and all(r.status == 200 and r.get_all("via") == vias for r in got),
                  f"NOTIFY {cseq} answered 200 through both Vias, by both watchers: {got}")
    finally:
        transport.close()


# ---------------------------------------------------------------- through Kamailio

async def test_through_kamailio_both_ways(env):
    kam = Kamailio(env, port=env.peer_sip_port)
    await kam.start()
    try:
        # bob publishes, changes (SIP-If-Match) 4 s later, then withdraws his document
        pub = presence_publish_update(env, kam, pidf(BOB_URI, note="published via Kamailio"),
                                      pidf(BOB_URI, note="changed"), pause_ms=4000)
        await pub.start()
        await env.gateway(presence_gateway_xml(env))
        alice = await watcher(env, "alice", auto_authorize=True)
        alice.send_presence(pto=BOB, ptype="subscribe")
        # ('subscribed' reaches alice only if her roster did not say so already: Prosody is
        # shared by this module's tests)
        await expect_pres(alice, "available", BOB, lambda p: p["status"] == "published via Kamailio",
                          timeout=10)
        await expect_pres(alice, "available", BOB, lambda p: p["status"] == "changed", timeout=10)
        await expect_pres(alice, "unavailable", BOB, timeout=10, what="unavailable once withdrawn")
        check(await pub.wait(15) == 0, pub.error_text())
        # a SIP user of sip.example watches alice through Kamailio
        alice.send_presence(pstatus="hello SIP")
        w = counting_watcher(env, ALICE_URI, 2, watcher=f"sip:carol@{SIP_DOMAIN}", via=kam,
                             more=3)
        await w.start()
        await w.wait(25)
        last = notifies_of(w)[-1]
        check(b"hello SIP" in last[1] and last[0]["subscription-state"][0].startswith("active"),
              f"alice's status reached the SIP watcher: {last}")
    finally:
        await kam.stop()


# ---------------------------------------------------------------- per-watcher authorization

class AuthorizingServer(asyncio.DatagramProtocol):
    """A presence server for bob on the peer's port whose owner authorized some watchers only:
    a SUBSCRIBE from an allowed watcher gets NOTIFY active with bob's document, any other NOTIFY
    pending (no document) until approve(user)."""

    def __init__(self, port, allowed, note):
        self.port, self.allowed, self.note = port, set(allowed), note
        self.dialogs = {}       # watcher user -> (SUBSCRIBE, source address)
        self.cseq = 0
        self.transport = None

    def connection_made(self, transport):
        self.transport = transport

    def _notify(self, user, state, body=b""):
        sub, addr = self.dialogs[user]
        self.cseq += 1
        hdrs = [("Via", f"SIP/2.0/UDP 127.0.0.1:{self.port};branch=z9hG4bKa{self.cseq}"),
                ("From", sub.get("to") + ";tag=auth"), ("To", sub.get("from")),
                ("Call-ID", sub.call_id), ("CSeq", f"{self.cseq} NOTIFY"),
                ("Contact", f"<sip:127.0.0.1:{self.port}>"), ("Event", "presence"),
                ("Subscription-State", state), ("Max-Forwards", "70")]
        if body:
            hdrs.append(("Content-Type", "application/pidf+xml"))
        target = sub.get("contact").split("<", 1)[-1].split(">", 1)[0]
        self.transport.sendto(SipMessage(f"NOTIFY {target} SIP/2.0", hdrs, body).encode(), addr)

    def approve(self, user):
        self.allowed.add(user)
        self._notify(user, "active;expires=120", pidf(BOB_URI, note=self.note).encode())

    def datagram_received(self, data, addr):
        msg = parse_sip(data, addr)
        if not msg.is_request or msg.method != "SUBSCRIBE":
            return
        user = msg.get("from").split("sip:", 1)[1].split("@", 1)[0]
        ending = msg.get("expires") == "0"
        ok = SipMessage("SIP/2.0 200 OK", [
            ("Via", msg.get("via")), ("From", msg.get("from")),
            ("To", msg.get("to") + ("" if "tag=" in msg.get("to") else ";tag=auth")),
            ("Call-ID", msg.call_id), ("CSeq", msg.get("cseq")),
            ("Contact", f"<sip:127.0.0.1:{self.port}>"), ("Expires", msg.get("expires") or "120")])
        self.transport.sendto(ok.encode(), addr)
        if "tag=" not in msg.get("to"):
            self.dialogs[user] = (msg, addr)
        if ending:
            self._notify(user, "terminated;reason=timeout")
        elif user in self.allowed:
            self._notify(user, "active;expires=120", pidf(BOB_URI, note=self.note).encode())
        else:
            self._notify(user, "pending;expires=120")


async def test_the_presentitys_own_authorization_decides_for_each_watcher(env):
    """bob's owner authorized oscar only: oscar sees bob, peggy is pending and learns nothing
    (not even `subscribed`) until the owner approves her too (users of their own: the module's
    XMPP server keeps rosters between tests).  A shared dialog used to let
    every XMPP watcher see what the SIP side authorized for the gateway."""
    loop = asyncio.get_running_loop()
    transport, server = await loop.create_datagram_endpoint(
        lambda: AuthorizingServer(env.peer_sip_port, {"oscar"}, "for friends"),
        local_addr=("127.0.0.1", env.peer_sip_port))
    try:
        await env.gateway(presence_gateway_xml(env))
        oscar = await watcher(env, "oscar")
        peggy = await watcher(env, "peggy")
        oscar.send_presence(pto=BOB, ptype="subscribe")
        peggy.send_presence(pto=BOB, ptype="subscribe")
        await expect_pres(oscar, "subscribed", BOB)
        await expect_pres(oscar, "available", BOB, lambda p: p["status"] == "for friends")
        await wait_for(lambda: "peggy" in server.dialogs, 5, "peggy's own SUBSCRIBE")
        await asyncio.sleep(1.5)
        check(not pres(peggy, frm=BOB), f"peggy learns nothing: {[str(p) for p in pres(peggy, frm=BOB)]}")
        server.approve("peggy")
        await expect_pres(peggy, "subscribed", BOB, what="peggy subscribed once the owner approves")
        await expect_pres(peggy, "available", BOB, lambda p: p["status"] == "for friends")
    finally:
        transport.close()


async def test_a_database_of_shared_dialogs_is_taken_over(env):
    """A database written when one dialog per presentity was shared (its documents stored with
    no watcher) is taken over: the watcher's approval is kept and it gets a dialog of its own,
    and the document the shared dialog got, authorized for the gateway and not for the watcher,
    is dropped and never shown."""
    import sqlite3
    db = os.path.join(env.workdir, "shared.db")
    gw = await env.gateway(presence_gateway_xml(env, db=db))
    await gw.stop()
    con = sqlite3.connect(db)
    con.execute("INSERT INTO xwatch (k1, k2, val) VALUES (?, ?, 'subscribed')",
                (BOB_URI, f"trent@{XMPP_DOMAIN}"))
    con.execute("INSERT INTO xdoc (k1, k2, val) VALUES (?, '', ?)",
                (BOB_URI, pidf(BOB_URI, note="authorized for the gateway")))
    con.commit()
    con.close()
    loop = asyncio.get_running_loop()
    transport, server = await loop.create_datagram_endpoint(
        lambda: AuthorizingServer(env.peer_sip_port, set(), "for trent"),
        local_addr=("127.0.0.1", env.peer_sip_port))
    try:
        gw = await env.gateway(presence_gateway_xml(env, db=db))
        await gw.wait_log(r"1 subscriptions of XMPP watchers to SIP presentities restored",
                          timeout=5)
        await wait_for(lambda: "trent" in server.dialogs, 5, "trent's own SUBSCRIBE")
        trent = await watcher(env, "trent")      # its login probes bob: answered from what is held
        await asyncio.sleep(1.5)
        check(not any(p["status"] == "authorized for the gateway" for p in pres(trent, frm=BOB)),
              "the shared dialog's document is never shown")
        server.approve("trent")
        await expect_pres(trent, "available", BOB, lambda p: p["status"] == "for trent")
        await gw.stop()
        con = sqlite3.connect(db)
        rows = con.execute("SELECT k2, val FROM xwatch").fetchall()
        docs = con.execute("SELECT k2 FROM xdoc").fetchall()
        con.close()
        check(rows == [(f"trent@{XMPP_DOMAIN}", b"subscribed")] or
              rows == [(f"trent@{XMPP_DOMAIN}", "subscribed")], f"the approval kept: {rows}")
        check(("",) not in docs, f"the shared document dropped: {docs}")
    finally:
        transport.close()
