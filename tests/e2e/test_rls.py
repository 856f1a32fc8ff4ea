"""test_rls.py - XMPP watchers' contacts on one peer carried on one resource list subscription
(RFC 4662, RFC 4826; <peer><rls>) to the peer's list server: Kamailio's rls module, with the
watcher's rls-services document stored by the gateway on Kamailio's xcap_server.  Each
member's own authorization still decides (the RLS subscribes to it as the XMPP watcher).  Where
the peer has no list server the gateway falls back to a dialog per contact.
"""

import asyncio

from harness import (SIP_DOMAIN, XMPP_DOMAIN, Kamailio, check, default_peer, gateway_xml, pidf,
                     pres_rules, presence_publisher, wait_for)
from msrp_ua import SipMessage, parse_sip
from test_authz import XcapServer
from test_presence import expect_pres, pres, watcher

XMPP_SERVERS = ("prosody", "ejabberd")
USERS = ("alice", "carol", "nina")
BOB = f"bob@{SIP_DOMAIN}"
DAVE = f"dave@{SIP_DOMAIN}"
ERIN = f"erin@{SIP_DOMAIN}"


def uri(jid):
    return f"sip:{jid}"


def rls_gateway_xml(env, xcap_root):
    peer = default_peer(env).replace(
        "</peer>", f'  <rls xcap-root="{xcap_root}"/>\n  </peer>')
    xml = gateway_xml(env, peers=[peer])
    return xml.replace("<im ", '<presence expires="120s" min-expires="10s" max-expires="600s"/>\n  <im ', 1)


async def publish(env, kam, who, note, tuple_id="t1"):
    p = presence_publisher(env, kam, pidf(uri(who), "open", note=note, tuple_id=tuple_id), user=uri(who),
                           name=f"publisher-{who.split('@')[0]}")
    await p.start()
    rc = await p.wait(15)
    check(rc == 0, p.error_text())


async def test_one_list_subscription_per_watcher(env):
    """alice watches bob, dave and erin: one list (one SUBSCRIBE from the gateway, to its list
    URI) instead of three dialogs; bob's and dave's rules allow her and she sees their notes
    (full state) and bob's change (partial state), erin's block her and she learns nothing of
    erin; carol, whom nobody allowed, gets a list of her own and sees nothing; when alice stops
    watching dave, her list document loses him."""
    kam = Kamailio(env, port=env.peer_sip_port, rls=True)
    await kam.start()
    try:
        for who, rules in ((BOB, [("allow", [f"sip:alice@{XMPP_DOMAIN}"])]),
                           (DAVE, [("allow", [f"sip:alice@{XMPP_DOMAIN}"])]),
                           (ERIN, [("block", [f"sip:alice@{XMPP_DOMAIN}"])])):
            st, _ = await kam.xcap_put("pres-rules", uri(who), "index", pres_rules(rules))
            check(st in (200, 201), f"pres-rules of {who}: {st}")
        await publish(env, kam, BOB, "bob via the list")
        await publish(env, kam, DAVE, "dave via the list")
        gw = await env.gateway(rls_gateway_xml(env, kam.xcap_root))
        alice = await watcher(env, "alice")
        carol = await watcher(env, "carol")
        for c in (alice, carol):
            for who in (BOB, DAVE, ERIN):
                c.send_presence(pto=who, ptype="subscribe")
        await gw.wait_log(r"list NOTIFY for alice@xmpp.example: version 1", timeout=10)
        await publish(env, kam, ERIN, "erin via the list")      # a change while the list runs
        await expect_pres(alice, "available", BOB, lambda p: p["status"] == "bob via the list", timeout=15)
        await expect_pres(alice, "available", DAVE, lambda p: p["status"] == "dave via the list", timeout=15)
        # a second publication (Kamailio aggregates them: a second tuple), by partial state
        await publish(env, kam, BOB, "bob changed", tuple_id="t2")
        await expect_pres(alice, "available", BOB, lambda p: "bob changed" in str(p), timeout=10)
        await asyncio.sleep(1)
        check(not pres(alice, "available", ERIN), f"alice sees erin: {pres(alice, frm=ERIN)}")
        seen = [p for p in carol.presences if str(p["from"]).split("/")[0].endswith("@" + SIP_DOMAIN)
                and p["type"] in ("available", "subscribed")]
        check(not seen, f"carol learns something: {seen}")
        log = gw.log()
        check("list server" not in log, "the gateway fell back")
        check("idle -> subscribing" not in log,
              "a contact got a dialog of its own instead of a place on the list")
        st, _, _, body = await kam.xcap_get("rls-services", f"sip:alice@{XMPP_DOMAIN}")
        check(st == 200 and all(uri(w).encode() in body for w in (BOB, DAVE, ERIN)),
              f"alice's list document: {st} {body[:400]!r}")
        # alice stops watching dave: the list loses him
        alice.send_presence(pto=DAVE, ptype="unsubscribe")
        for _ in range(50):
            st, _, _, body = await kam.xcap_get("rls-services", f"sip:alice@{XMPP_DOMAIN}")
            if uri(DAVE).encode() not in body:
                break
            await asyncio.sleep(0.1)
        check(uri(DAVE).encode() not in body and uri(BOB).encode() in body,
              f"dave left alice's list: {body[:400]!r}")
    finally:
        await kam.stop()


async def test_no_list_server_falls_back(env):
    """A peer whose presence server has no list server (Kamailio without rls): the list URI is
    answered as a presentity (a 2xx without Require: eventlist), and nina's contacts get a
    dialog each: she still sees bob."""
    kam = Kamailio(env, port=env.peer_sip_port, xcap=True)
    await kam.start()
    try:
        st, _ = await kam.xcap_put("pres-rules", uri(BOB), "index",
                                   pres_rules([("allow", [f"sip:nina@{XMPP_DOMAIN}"])]))
        check(st in (200, 201), st)
        await publish(env, kam, BOB, "without a list server")
        gw = await env.gateway(rls_gateway_xml(env, kam.xcap_root))
        nina = await watcher(env, "nina")
        nina.send_presence(pto=BOB, ptype="subscribe")
        await expect_pres(nina, "available", BOB, lambda p: p["status"] == "without a list server",
                          timeout=15)
        await gw.wait_log(r"has no list server for nina@xmpp.example", timeout=1)
    finally:
        await kam.stop()


class WritableXcap(XcapServer):
    """The test XCAP server, taking PUT and DELETE too (anything under /xcap-root/)."""

    def handle(self, method, path, hdrs, body):
        status = 200
        if method == "PUT" and getattr(self, "fail_puts", 0):
            self.fail_puts -= 1
            status = 503
        elif method == "PUT":
            self.version += 1
            self.docs[path] = (f'"v{self.version}"', body.decode())
        elif method == "DELETE":
            status = 200 if self.docs.pop(path, None) else 404
        else:
            return super().handle(method, path, hdrs, body)
        self.requests.append((method, path, status))
        return status, f'ETag: "v{self.version}"\r\n', b""


class HostileRls(asyncio.DatagramProtocol):
    """A list server that accepts the list SUBSCRIBE (200, Require: eventlist) and then sends
    the NOTIFYs given, in order, 0.2 s apart."""

    def __init__(self, port, bodies):
        self.port, self.bodies, self.transport = port, bodies, None
        self.answers = []

    def connection_made(self, transport):
        self.transport = transport

    def datagram_received(self, data, addr):
        msg = parse_sip(data, addr)
        if not msg.is_request:
            self.answers.append(msg.status)
            return
        to = msg.get("to") + ("" if "tag=" in msg.get("to") else ";tag=rls")
        ok = SipMessage("SIP/2.0 200 OK", [
            ("Via", msg.get("via")), ("From", msg.get("from")), ("To", to),
            ("Call-ID", msg.call_id), ("CSeq", msg.get("cseq")), ("Require", "eventlist"),
            ("Contact", f"<sip:127.0.0.1:{self.port}>"), ("Expires", "120")])
        self.transport.sendto(ok.encode(), addr)
        if msg.method == "SUBSCRIBE" and "tag=" not in msg.get("to"):
            asyncio.get_running_loop().create_task(self.notify_all(msg, to, addr))

    async def notify_all(self, sub, to, addr):
        target = sub.get("contact").split("<", 1)[-1].split(">", 1)[0]
        for i, (ct, body) in enumerate(self.bodies):
            await asyncio.sleep(0.2)
            hdrs = [("Via", f"SIP/2.0/UDP 127.0.0.1:{self.port};branch=z9hG4bKh{i}"),
                    ("From", to), ("To", sub.get("from")), ("Call-ID", sub.call_id),
                    ("CSeq", f"{i + 1} NOTIFY"), ("Contact", f"<sip:127.0.0.1:{self.port}>"),
                    ("Event", "presence"), ("Subscription-State", "active;expires=120"),
                    ("Require", "eventlist"), ("Max-Forwards", "70"), ("Content-Type", ct)]
            self.transport.sendto(SipMessage(f"NOTIFY {target} SIP/2.0", hdrs, body).encode(), addr)


def rlmi_notify(version, state="active", note="fine", uri_="sip:bob@sip.example", extra=b""):
    pidf_ = pidf(uri_, "open", note=note).encode()
    rlmi = (f'<?xml version="1.0"?><list xmlns="urn:ietf:params:xml:ns:rlmi" uri="sip:l@sip.example" '
            f'version="{version}" fullState="true"><resource uri="{uri_}"><instance id="i1" '
            f'state="{state}" cid="p1@x"/></resource></list>').encode()
    body = (b"--B\r\nContent-Type: application/rlmi+xml\r\nContent-ID: <root@x>\r\n\r\n" + rlmi +
            b"\r\n--B\r\nContent-Type: application/pidf+xml\r\nContent-ID: <p1@x>\r\n\r\n" + pidf_ +
            extra + b"\r\n--B--\r\n")
    return ('multipart/related;type="application/rlmi+xml";start="<root@x>";boundary=B', body)


async def test_hostile_list_notifies(env):
    """An XCAP server that first answers 503 (the list is stored on the next try, no fallback),
    and a list server that sends a body without a boundary, a truncated multipart, an RLMI root
    that is not XML, a resource the list does not hold, a good list, then an older version: the
    bad ones are refused or ignored (the state held stays), the gateway stays up, and the good
    one reaches alice."""
    xcap = WritableXcap()
    xcap.fail_puts = 1      # the XCAP server is not ready at first: the gateway tries again
    await xcap.start()
    good_ct, good = rlmi_notify(7, note="the good one")
    bodies = [
        ("multipart/related;type=\"application/rlmi+xml\"", b"no boundary at all"),
        (good_ct, good[:len(good) // 2]),
        rlmi_notify(1)[0:1] + (rlmi_notify(1)[1].replace(b"<list ", b"<list <<"),),
        rlmi_notify(2, uri_="sip:mallory@sip.example", note="not on the list"),
        (good_ct, good),
        rlmi_notify(3, note="an older version"),
    ]
    loop = asyncio.get_running_loop()
    transport, rls = await loop.create_datagram_endpoint(
        lambda: HostileRls(env.peer_sip_port, bodies), local_addr=("127.0.0.1", env.peer_sip_port))
    try:
        gw = await env.gateway(rls_gateway_xml(env, xcap.root))
        alice = await watcher(env, "alice")
        alice.send_presence(pto=BOB, ptype="subscribe")
        await expect_pres(alice, "available", BOB, lambda p: p["status"] == "the good one", timeout=12)
        await asyncio.sleep(1)
        check(not any(p["status"] in ("not on the list", "an older version", "fine")
                      for p in pres(alice, frm=BOB)), [str(p) for p in pres(alice, frm=BOB)])
        await gw.wait_log(r"list NOTIFY for alice@xmpp.example from sipnet refused", timeout=1)
        check([st for m, _, st in xcap.requests if m == "PUT"][:2] == [503, 200], xcap.requests)
        check("has no list server" not in gw.log(), "fell back after a 503")
    finally:
        transport.close()
        await xcap.stop()


async def test_the_list_comes_back_after_a_restart(env):
    """With a database, a restarted gateway stores alice's list again and subscribes to it
    again: her login probe is answered from the stored document at once, and a change published
    after the restart reaches her through the new list dialog."""
    import os
    db = os.path.join(env.workdir, "rls.db")
    kam = Kamailio(env, port=env.peer_sip_port, rls=True)
    await kam.start()
    try:
        st, _ = await kam.xcap_put("pres-rules", uri(BOB), "index",
                                   pres_rules([("allow", [f"sip:alice@{XMPP_DOMAIN}"])]))
        check(st in (200, 201), st)
        await publish(env, kam, BOB, "before the restart")
        xml = rls_gateway_xml(env, kam.xcap_root).replace("<presence ", f'<presence database="{db}" ', 1)
        gw = await env.gateway(xml)
        alice = await watcher(env, "alice")
        alice.send_presence(pto=BOB, ptype="subscribe")
        await expect_pres(alice, "available", BOB, lambda p: p["status"] == "before the restart",
                          timeout=15)
        await gw.stop()
        await alice.logout()
        gw = await env.gateway(xml)
        await gw.wait_log(r"list NOTIFY for alice@xmpp.example: version", timeout=10)
        alice = await watcher(env, "alice")
        await expect_pres(alice, "available", BOB, lambda p: p["status"] == "before the restart",
                          timeout=5, what="the login probe answered")
        await publish(env, kam, BOB, "after the restart", tuple_id="t3")
        await expect_pres(alice, "available", BOB, lambda p: "after the restart" in str(p),
                          timeout=10)
        check("idle -> subscribing" not in gw.log(), "a contact got a dialog of its own")
    finally:
        await kam.stop()


async def test_a_resource_listed_twice(env):
    """A list NOTIFY naming bob twice, both instances terminated;reason=rejected: alice is told
    once (unsubscribed), and the gateway (under AddressSanitizer) does not touch the contact it
    freed at the first one."""
    xcap = WritableXcap()
    await xcap.start()
    ct, body = rlmi_notify(1, state="terminated")
    body = body.replace(b'state="terminated" cid="p1@x"/></resource>',
                        b'state="terminated" reason="rejected"/></resource>'
                        b'<resource uri="sip:bob@sip.example"><instance id="i2" state="terminated" '
                        b'reason="rejected"/></resource>')
    loop = asyncio.get_running_loop()
    transport, rls = await loop.create_datagram_endpoint(
        lambda: HostileRls(env.peer_sip_port, [(ct, body)]), local_addr=("127.0.0.1", env.peer_sip_port))
    try:
        gw = await env.gateway(rls_gateway_xml(env, xcap.root))
        alice = await watcher(env, "alice")
        alice.send_presence(pto=BOB, ptype="subscribe")
        await expect_pres(alice, "unsubscribed", BOB, timeout=10)
        await asyncio.sleep(1)
        check(len(pres(alice, "unsubscribed", BOB)) == 1, pres(alice, "unsubscribed", BOB))
        check(gw.proc.returncode is None, "the gateway died")
    finally:
        transport.close()
        await xcap.stop()
