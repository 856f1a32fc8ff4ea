"""test_kamailio_xcap.py - Kamailio (conf/kamailio-sip.example.cfg with WITH_XCAP / WITH_RLS) as a
presence server whose authorization comes from each presentity's RFC 5025 pres-rules, stored over
XCAP (RFC 4825) in its own xcap_server, and as a resource list server (RFC 4662, lists from RFC
4826 rls-services documents), without the gateway.  The watchers are xmpp.example users, as the
gateway's subscriptions are.

What Kamailio 5.6 does, as these tests pin it down: allow -> active with the document; block ->
200, then NOTIFY terminated;reason=rejected without body; polite-block -> active without body;
confirm, and a watcher no rule names -> pending without body.  A PUT or DELETE of pres-rules
re-evaluates existing subscriptions (the cfg calls pres_update_watchers()).
"""

import asyncio

from harness import (SIP_DOMAIN, XMPP_DOMAIN, Kamailio, check, notifies_of, pidf, pres_rules,
                     presence_publisher, presence_watcher, responses_of, wait_for)
from test_kamailio_presence import expect_ok, header

BOB = f"sip:bob@{SIP_DOMAIN}"
ALICE = f"sip:alice@{XMPP_DOMAIN}"
CAROL = f"sip:carol@{XMPP_DOMAIN}"


async def put_rules(kam, rules, user=BOB):
    st, etag = await kam.xcap_put("pres-rules", user, "index", pres_rules(rules))
    check(st in (200, 201) and etag, f"pres-rules PUT answered {st}, ETag {etag}")
    return etag


async def publish(env, kam, note, contact=None):
    p = presence_publisher(env, kam, pidf(BOB, "open", note=note, contact=contact))
    await p.start()
    await expect_ok(p)


async def first_notify(env, kam, watcher, name):
    """The state and body of the first NOTIFY a watcher that subscribes to bob gets."""
    w = presence_watcher(env, kam, watcher=watcher, name=name, timeout=10)
    await w.start()
    await expect_ok(w)
    codes = [c for c, _, _ in responses_of(w)]
    check(codes and codes[0] == 200, f"{watcher}: SUBSCRIBE answered {codes}")
    h, b = notifies_of(w)[0]
    return header(h, "subscription-state"), header(h, "content-type"), b


async def test_xcap_document_round_trip(env):
    """PUT, GET and DELETE of bob's pres-rules at .../pres-rules/users/sip:bob@sip.example/index."""
    async with Kamailio(env, xcap=True) as kam:
        doc = pres_rules([("allow", [ALICE])])
        st, etag = await kam.xcap_put("pres-rules", BOB, "index", doc)
        # Kamailio answers 200 to the PUT that creates a document (RFC 4825 8.2.1 says 201)
        check(st == 200 and etag, (st, etag))
        st, etag2, ctype, body = await kam.xcap_get("pres-rules", BOB)
        check(st == 200 and etag2 == etag, (st, etag, etag2))
        check(ctype == "application/auth-policy+xml", ctype)
        check(body == doc.encode(), body)
        # the same document through the percent-encoded XUI
        st, _, _, body = await kam.xcap_get("pres-rules", "sip%3Abob%40sip.example")
        check(st == 200 and body == doc.encode(), st)
        st, _ = await kam.xcap_put("pres-rules", BOB, "index", pres_rules([("block", [ALICE])]))
        st, etag3, _, body = await kam.xcap_get("pres-rules", BOB)
        check(st == 200 and etag3 != etag and b"block" in body, (st, etag3, body))
        st, _ = await kam.xcap_delete("pres-rules", BOB)
        check(st == 200, f"DELETE answered {st}")
        st, _, _, _ = await kam.xcap_get("pres-rules", BOB)
        check(st == 404, f"GET after DELETE answered {st}")


async def test_pres_rules_allow_and_block(env):
    """alice is allowed and gets bob's note; carol is blocked and gets no document."""
    async with Kamailio(env, xcap=True) as kam:
        await put_rules(kam, [("allow", [ALICE]), ("block", [CAROL])])
        await publish(env, kam, "in a meeting")
        state, ctype, body = await first_notify(env, kam, ALICE, "alice")
        check(state.startswith("active"), state)
        check(ctype.startswith("application/pidf+xml"), ctype)
        check(b"<note>in a meeting</note>" in body, body)
        state, ctype, body = await first_notify(env, kam, CAROL, "carol")
        check(state == "terminated;reason=rejected", state)
        check(ctype is None and body == b"", (ctype, body))


async def test_sub_handling_without_document(env):
    """polite-block: active but no document; confirm, and no rule at all: pending, no document."""
    async with Kamailio(env, xcap=True) as kam:
        dave, erin, frank = (f"sip:{u}@{XMPP_DOMAIN}" for u in ("dave", "erin", "frank"))
        await put_rules(kam, [("polite-block", [dave]), ("confirm", [erin])])
        await publish(env, kam, "busy")
        for watcher, want in ((dave, "active"), (erin, "pending"), (frank, "pending")):
            state, ctype, body = await first_notify(env, kam, watcher, watcher[4:8])
            check(state.startswith(want), f"{watcher}: {state}")
            check(ctype is None and body == b"", f"{watcher} got a document: {body}")


async def test_rule_change_for_new_subscription(env):
    """carol, blocked, is allowed by a new document: her next SUBSCRIBE sees bob."""
    async with Kamailio(env, xcap=True) as kam:
        await put_rules(kam, [("block", [CAROL])])
        await publish(env, kam, "back soon")
        state, _, _ = await first_notify(env, kam, CAROL, "carol1")
        check(state == "terminated;reason=rejected", state)
        await put_rules(kam, [("allow", [CAROL])])
        state, _, body = await first_notify(env, kam, CAROL, "carol2")
        check(state.startswith("active") and b"<note>back soon</note>" in body, (state, body))


async def test_rule_change_reevaluates_subscriptions(env):
    """A new document changes running subscriptions at once: alice, active, is rejected when
    blocked; frank, pending, becomes active with the document when allowed."""
    frank = f"sip:frank@{XMPP_DOMAIN}"
    async with Kamailio(env, xcap=True) as kam:
        await put_rules(kam, [("allow", [ALICE])])
        await publish(env, kam, "reading")
        wa = presence_watcher(env, kam, watcher=ALICE, notifies=10, name="alice", timeout=15)
        wf = presence_watcher(env, kam, watcher=frank, until="<note>reading</note>", name="frank",
                              timeout=15)
        await wa.start()
        await wf.start()
        await wait_for(lambda: notifies_of(wa) and notifies_of(wf), 10, "the first NOTIFYs")
        check(header(notifies_of(wa)[0][0], "subscription-state").startswith("active"),
              notifies_of(wa)[0][0])
        check(header(notifies_of(wf)[0][0], "subscription-state").startswith("pending"),
              notifies_of(wf)[0][0])
        await put_rules(kam, [("block", [ALICE]), ("allow", [frank])])
        await expect_ok(wa)
        await expect_ok(wf)
        h, body = notifies_of(wa)[-1]
        check(header(h, "subscription-state") == "terminated;reason=rejected" and body == b"",
              notifies_of(wa))
        notes = notifies_of(wf)
        check(len(notes) == 2, f"frank got {len(notes)} NOTIFYs: {notes}")
        h, body = notes[1]
        check(header(h, "subscription-state").startswith("active"), h)
        check(b"<note>reading</note>" in body, body)


async def test_rules_kept_across_restart(env):
    """db_text writes the xcap table to its files when Kamailio stops."""
    kam = Kamailio(env, xcap=True)
    try:
        await kam.start()
        await put_rules(kam, [("allow", [ALICE])])
        await kam.restart()
        st, _, _, body = await kam.xcap_get("pres-rules", BOB)
        check(st == 200 and ALICE.encode() in body, (st, body))
        await publish(env, kam, "after the restart")
        state, _, body = await first_notify(env, kam, ALICE, "alice")
        check(state.startswith("active") and b"after the restart" in body, (state, body))
    finally:
        await kam.stop()


async def test_transformations(env):
    """RFC 5025 transformations: Kamailio removes only what a rule withholds explicitly (a
    provide-X of false, or provide-services that names no matching tuple); a rule without any
    transformation passes the whole document (RFC 5025 would withhold what is not provided)."""
    async with Kamailio(env, xcap=True) as kam:
        u1, u2, u3 = (f"sip:u{i}@{XMPP_DOMAIN}" for i in (1, 2, 3))
        await put_rules(kam, [
            ("allow", [u1], "<provide-note>false</provide-note>"),
            ("allow", [u2], "<provide-services><service-uri-scheme>sip</service-uri-scheme>"
                            "</provide-services>"),
            ("allow", [u3])])
        await publish(env, kam, "coffee", contact="xmpp:bob@xmpp.example")
        _, _, body = await first_notify(env, kam, u1, "u1")
        check(b"<note>" not in body and b"<basic>open</basic>" in body, body)
        _, _, body = await first_notify(env, kam, u2, "u2")
        check(b"<tuple" not in body and b"<note>coffee</note>" in body, body)
        _, _, body = await first_notify(env, kam, u3, "u3")
        check(b"<tuple" in body and b"<note>coffee</note>" in body, body)


async def test_rule_matching_quirks(env):
    """Where Kamailio 5.6's matching differs from RFC 4745 (pinned, so that a fix shows): the first
    rule that matches decides (RFC 4745 10.2 combines all matching rules, the most permissive
    sub-handling winning); <many domain="D"> also matches any other domain as long as D
    (xcap_auth.c compares with && where || was meant); <except id=.../> never excludes a URI (it
    compares strlen(id) - 1).  So rules must name watchers with <one id=.../>."""
    async with Kamailio(env, xcap=True) as kam:
        mallory = f"sip:mallory@{XMPP_DOMAIN}"
        doc = pres_rules([("block", [ALICE]), ("allow", [ALICE])]).replace(
            "</cr:ruleset>",
            '<cr:rule id="m"><cr:conditions><cr:identity>'
            f'<cr:many domain="{XMPP_DOMAIN}"><cr:except id="{mallory}"/></cr:many>'
            "</cr:identity></cr:conditions>"
            "<cr:actions><sub-handling>allow</sub-handling></cr:actions>"
            "<cr:transformations/></cr:rule></cr:ruleset>")
        st, _ = await kam.xcap_put("pres-rules", BOB, "index", doc)
        check(st == 200, st)
        await publish(env, kam, "quirks")
        for watcher, want, name in ((ALICE, "terminated;reason=rejected", "alice"),
                                    (f"sip:zed@{XMPP_DOMAIN}", "active", "zed"),
                                    (mallory, "active", "mallory"),
                                    ("sip:zed@abcd.example", "active", "same-length"),
                                    ("sip:zed@other.org", "pending", "other")):
            state, _, _ = await first_notify(env, kam, watcher, name)
            check(state.startswith(want), f"{watcher}: {state}, expected {want}")


RLS_SERVICES = """<?xml version="1.0" encoding="UTF-8"?>
<rls-services xmlns="urn:ietf:params:xml:ns:rls-services"
              xmlns:rl="urn:ietf:params:xml:ns:resource-lists">
  <service uri="sip:alice-buddies@sip.example">
    <list name="buddies">
      <rl:entry uri="sip:bob@sip.example"/>
      <rl:entry uri="sip:dave@sip.example"/>
    </list>
    <packages><package>presence</package></packages>
  </service>
</rls-services>
"""


async def test_rls_list_subscription(env):
    """alice's rls-services document (hers: the RLS looks the list up under the watcher's own
    XUI) makes sip:alice-buddies@sip.example a list; her SUBSCRIBE with Supported: eventlist gets
    multipart/related NOTIFYs with an RLMI root, and bob's state (bob's pres-rules allow alice:
    the back-end subscription is made as alice) as one of the parts."""
    async with Kamailio(env, rls=True) as kam:
        await put_rules(kam, [("allow", [ALICE])])
        st, _ = await kam.xcap_put("rls-services", ALICE, "index", RLS_SERVICES)
        check(st == 200, f"rls-services PUT answered {st}")
        await publish(env, kam, "on the phone")
        w = presence_watcher(env, kam, presentity="sip:alice-buddies@sip.example", watcher=ALICE,
                             until="<note>on the phone</note>", name="alice", timeout=15,
                             extra="Supported: eventlist\n"
                                   "Accept: multipart/related, application/rlmi+xml\n")
        await w.start()
        await expect_ok(w)
        codes = [(c, header(h, "require")) for c, h, _ in responses_of(w)]
        check(codes[0] == (200, "eventlist"), codes)
        notes = notifies_of(w)
        for h, _ in notes:
            ctype = header(h, "content-type")
            check(ctype.startswith("multipart/related") and
                  'type="application/rlmi+xml"' in ctype, ctype)
            check(header(h, "require") == "eventlist", h)
        first = notes[0][1]
        check(b'<list uri="sip:alice-buddies@sip.example"' in first and
              b'fullState="true"' in first, first)
        check(b'<resource uri="sip:bob@sip.example"' in first and
              b'<resource uri="sip:dave@sip.example"' in first, first)
        h, last = notes[-1]
        check(b"Content-Type: application/pidf+xml" in last, last)
        check(b'<instance id=' in last and b'state="active"' in last, last)
        check(b'entity="sip:bob@sip.example"' in last, last)


async def test_default_cfg_has_no_xcap(env):
    """Without the defines the cfg keeps force_active and serves no HTTP."""
    async with Kamailio(env) as kam:
        await publish(env, kam, "open to all")
        state, _, body = await first_notify(env, kam, CAROL, "carol")
        check(state.startswith("active") and b"open to all" in body, (state, body))
        try:
            st, _, _, _ = await kam.xcap_get("pres-rules", BOB)
        except OSError:
            st = None
        check(st != 200, f"XCAP answered {st} without WITH_XCAP")
        await asyncio.sleep(0.2)
        check(kam.alive(), "kamailio died on an HTTP request")
