"""test_kamailio_presence.py - the SIP side of presence interworking, without the gateway: Kamailio
(conf/kamailio-sip.example.cfg) as presence server of sip.example and as the proxy that routes
presence of xmpp.example to the gateway's address, exercised with the sipp scenarios
sipp/presence_*.xml that the gateway's presence tests use.
"""

from harness import (SIP_DOMAIN, XMPP_DOMAIN, Kamailio, check, notifies_of, pidf,
                     presence_publish_update, presence_publisher, presence_server,
                     presence_watcher, responses_of, wait_for)


def header(hdrs, name):
    v = hdrs.get(name.lower())
    return v[0] if v else None


async def expect_ok(sipp, timeout=30):
    rc = await sipp.wait(timeout)
    check(rc == 0, f"sipp {sipp.name} failed ({rc}): {sipp.error_text()}")


async def watch_and_publish(env, kam, note, watcher_user="carol"):
    """A watcher subscribes to bob through Kamailio; a PUBLISH for bob reaches it in a NOTIFY."""
    bob = f"sip:bob@{SIP_DOMAIN}"
    w = presence_watcher(env, kam, presentity=bob, watcher=f"sip:{watcher_user}@{SIP_DOMAIN}",
                         until=f"<note>{note}</note>", unsubscribe=True)
    await w.start()
    # the initial NOTIFY (no state published yet) says the subscription is active
    await wait_for(lambda: len(notifies_of(w)) >= 1, 10, "the initial NOTIFY")
    p = presence_publisher(env, kam, pidf(bob, "open", note=note))
    await p.start()
    await expect_ok(p)
    check(responses_of(p)[-1][0] == 200, responses_of(p))
    check(header(responses_of(p)[-1][1], "sip-etag"), "PUBLISH answered without SIP-ETag")
    await expect_ok(w)
    codes = [c for c, _, _ in responses_of(w)]
    check(codes[0] == 200, f"SUBSCRIBE answered {codes}")
    notes = notifies_of(w)
    first_hdrs, _ = notes[0]
    check(header(first_hdrs, "subscription-state").startswith("active"), first_hdrs)
    check(header(first_hdrs, "event") == "presence", first_hdrs)
    with_note = [(h, b) for h, b in notes if f"<note>{note}</note>".encode() in b]
    check(with_note, f"no NOTIFY carried the note {note!r}: {notes}")
    h, b = with_note[0]
    check(header(h, "content-type").startswith("application/pidf+xml"), h)
    check(b"<basic>open</basic>" in b, b)
    # the un-SUBSCRIBE got the final NOTIFY
    last_hdrs, _ = notes[-1]
    check(header(last_hdrs, "subscription-state").startswith("terminated"), last_hdrs)


async def test_watcher_gets_published_note(env):
    async with Kamailio(env) as kam:
        await watch_and_publish(env, kam, "in a meeting until 3")


async def test_publish_modify_remove(env):
    """SIP-If-Match refresh changes the state watchers see; removal sends the closed/empty state."""
    bob = f"sip:bob@{SIP_DOMAIN}"
    async with Kamailio(env) as kam:
        w = presence_watcher(env, kam, presentity=bob, until="<note>second</note>", unsubscribe=True)
        await w.start()
        await wait_for(lambda: len(notifies_of(w)) >= 1, 10, "the initial NOTIFY")
        p = presence_publish_update(env, kam, pidf(bob, "open", note="first"),
                                    pidf(bob, "closed", note="second"), pause_ms=300)
        await p.start()
        await expect_ok(w)
        await expect_ok(p)
        bodies = [b for _, b in notifies_of(w)]
        check(any(b"<note>first</note>" in b for b in bodies), bodies)
        check(any(b"<note>second</note>" in b and b"<basic>closed</basic>" in b for b in bodies), bodies)


async def test_subscribe_to_xmpp_user_reaches_gateway(env):
    """SUBSCRIBE for xmpp.example goes to GW_URI (here a sipp presence server playing the
    gateway); its NOTIFY and the in-dialog un-SUBSCRIBE travel through Kamailio (record-route)."""
    alice = f"sip:alice@{XMPP_DOMAIN}"
    async with Kamailio(env, gw_uri=f"sip:127.0.0.1:{env.gw_sip_port}") as kam:
        gw = presence_server(env, port=env.gw_sip_port, status=202,
                             substate="active;expires=60", body=pidf(alice, "open", note="at the desk"),
                             wait=True)
        await gw.start()
        w = presence_watcher(env, kam, presentity=alice, watcher=f"sip:bob@{SIP_DOMAIN}",
                             until="at the desk", unsubscribe=True)
        await w.start()
        await expect_ok(w)
        await expect_ok(gw)
        codes = [c for c, _, _ in responses_of(w)]
        check(202 in codes, f"the gateway's 202 did not reach the watcher: {codes}")
        notes = notifies_of(w)
        check(any(b"<note>at the desk</note>" in b for _, b in notes), notes)
        # the NOTIFY came through Kamailio: it added its Via
        h, _ = notes[0]
        check(any(kam.remote in v for v in h.get("via", [])), f"NOTIFY did not pass Kamailio: {h}")
        got = [(s, h) for s, h, _ in gw.received() if s.startswith("SUBSCRIBE ")]
        check(len(got) == 2, f"the gateway saw {len(got)} SUBSCRIBEs: {[s for s, _ in got]}")
        first, unsub = got
        check(first[0] == f"SUBSCRIBE {alice} SIP/2.0", first[0])
        check(header(first[1], "event") == "presence", first[1])
        check(any(kam.remote in v for v in first[1].get("record-route", [])), first[1])
        check(header(unsub[1], "expires") == "0", unsub[1])
        check(any(kam.remote in v for v in unsub[1].get("via", [])),
              f"the un-SUBSCRIBE bypassed Kamailio: {unsub[1]}")
        check(header(notes[-1][0], "subscription-state").startswith("terminated"), notes[-1][0])


async def test_presence_server_rejection_through_kamailio(env):
    """A 403 from the side of the gateway reaches the watcher unchanged."""
    async with Kamailio(env) as kam:
        gw = presence_server(env, port=env.gw_sip_port, status=403)
        await gw.start()
        w = presence_watcher(env, kam, presentity=f"sip:alice@{XMPP_DOMAIN}",
                             watcher=f"sip:bob@{SIP_DOMAIN}", refused=403)
        await w.start()
        await expect_ok(gw)
        await expect_ok(w)
        check(not notifies_of(w), f"NOTIFY after a 403: {notifies_of(w)}")
        check(403 in [c for c, _, _ in responses_of(w)], responses_of(w))


async def test_presence_server_pending_then_active(env):
    """The scenario a gateway test uses for authorization: pending (no body), then active."""
    alice = f"sip:alice@{XMPP_DOMAIN}"
    async with Kamailio(env) as kam:
        gw = presence_server(env, port=env.gw_sip_port, status=202, substate="pending;expires=60",
                             substate2="active;expires=60", body2=pidf(alice, "open", note="approved"),
                             pause_ms=200)
        await gw.start()
        w = presence_watcher(env, kam, presentity=alice, watcher=f"sip:bob@{SIP_DOMAIN}", notifies=2)
        await w.start()
        await expect_ok(gw)
        await expect_ok(w)
        notes = notifies_of(w)
        check(len(notes) == 2, notes)
        check(header(notes[0][0], "subscription-state").startswith("pending"), notes[0][0])
        check(notes[0][1] == b"" and header(notes[0][0], "content-type") is None, notes[0])
        check(header(notes[1][0], "subscription-state").startswith("active"), notes[1][0])
        check(b"<note>approved</note>" in notes[1][1], notes[1][1])


async def test_presence_server_terminates(env):
    """An accepted subscription ended by the notifier (terminated;reason=deactivated) ends the watcher."""
    alice = f"sip:alice@{XMPP_DOMAIN}"
    async with Kamailio(env) as kam:
        gw = presence_server(env, port=env.gw_sip_port, status=200, substate="active;expires=60",
                             body=pidf(alice, "closed"), substate2="terminated;reason=deactivated",
                             pause_ms=200)
        await gw.start()
        w = presence_watcher(env, kam, presentity=alice, watcher=f"sip:bob@{SIP_DOMAIN}",
                             notifies=10, unsubscribe=True)
        await w.start()
        await expect_ok(gw)
        await expect_ok(w)
        notes = notifies_of(w)
        check(len(notes) == 2, notes)
        check(header(notes[1][0], "subscription-state") == "terminated;reason=deactivated", notes[1][0])
        sent = [s for s, _, _ in gw.received() if s.startswith("SUBSCRIBE ")]
        check(len(sent) == 1, f"the watcher re-SUBSCRIBEd after termination: {sent}")


async def test_kamailio_restart(env):
    kam = Kamailio(env)
    try:
        await kam.start()
        await kam.start()  # idempotent
        check(kam.alive(), "kamailio is not running")
        await watch_and_publish(env, kam, "before the restart")
        await kam.stop()
        check(not kam.alive(), "kamailio still running after stop()")
        await kam.restart()
        check(kam.alive(), "kamailio is not running after the restart")
        await watch_and_publish(env, kam, "after the restart", watcher_user="dave")
        check(kam.log_text().count("==== start") == 2, "expected two starts in the log")
    finally:
        await kam.stop()
