"""test_rls.py - XMPP watchers' contacts on one peer carried on one resource list subscription
(RFC 4662, RFC 4826; <peer><rls>) to the peer's list server: Kamailio's rls module, with the
watcher's rls-services document stored by the gateway on Kamailio's xcap_server.  Each
member's own authorization still decides (the RLS subscribes to it as the XMPP watcher).  Where
the peer has no list server the gateway falls back to a dialog per contact.
"""

import asyncio

from harness import (SIP_DOMAIN, XMPP_DOMAIN, Kamailio, check, default_peer, gateway_xml, pidf,
                     pres_rules, presence_publisher, wait_for)
from test_presence import expect_pres, pres, watcher

XMPP_SERVERS = ("prosody", "ejabberd")
USERS = ("alice", "carol", "nina")
BOB = f"bob@{SIP_DOMAIN}"
DAVE = f"dave@{SIP_DOMAIN}"
ERIN = f"erin@{SIP_DOMAIN}"


def uri(jid):
    return f"sip:{jid}"


def rls_gateway_xml(env, kam):
    peer = default_peer(env).replace(
        "</peer>", f'  <rls xcap-root="{kam.xcap_root}"/>\n  </peer>')
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
        gw = await env.gateway(rls_gateway_xml(env, kam))
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
        gw = await env.gateway(rls_gateway_xml(env, kam))
        nina = await watcher(env, "nina")
        nina.send_presence(pto=BOB, ptype="subscribe")
        await expect_pres(nina, "available", BOB, lambda p: p["status"] == "without a list server",
                          timeout=15)
        await gw.wait_log(r"has no list server for nina@xmpp.example", timeout=1)
    finally:
        await kam.stop()
