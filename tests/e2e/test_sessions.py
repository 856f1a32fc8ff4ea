"""test_sessions.py - session-mode IM (RFC 7573): SIP INVITE + MSRP <-> XMPP chat, against Prosody
with slixmpp clients and msrp_ua.py, a SIP+MSRP user agent written independently of the
gateway's MSRP code."""

import asyncio

from slixmpp.xmlstream.handler import Callback
from slixmpp.xmlstream.matcher import MatchXPath

from harness import SIP_DOMAIN, XMPP_DOMAIN, check, error_condition, free_port, gateway_xml, wait_for
from msrp_ua import Answer, MsrpUA

USERS = ("alice", "carol")
BOB = f"bob@{SIP_DOMAIN}"
ALICE_URI = f"sip:alice@{XMPP_DOMAIN}"
NS_CHATSTATES = "{http://jabber.org/protocol/chatstates}"
NS_RECEIPTS = "{urn:xmpp:receipts}"


def sessions_xml(env, msrp_port, sessions_attrs="", peer_sessions=False):
    xml = gateway_xml(env, sessions=f'<sessions msrp-port="{msrp_port}" {sessions_attrs}/>')
    if peer_sessions:
        xml = xml.replace(f'<peer name="sipnet" domain="{SIP_DOMAIN}"',
                          f'<peer name="sipnet" domain="{SIP_DOMAIN}" sessions="yes"', 1)
    return xml


async def setup(env, sessions_attrs="", peer_sessions=False, ua_setup="actpass"):
    msrp_port = free_port()
    gw = await env.gateway(sessions_xml(env, msrp_port, sessions_attrs, peer_sessions))
    alice = await env.client("alice")
    # slixmpp's 'message' event only fires for messages with a <body/>: keep them all
    alice.raw = []
    alice.register_handler(Callback("every message", MatchXPath("{jabber:client}message"),
                                    alice.raw.append))
    ua = MsrpUA("bob", local_port=env.peer_sip_port, setup=ua_setup, domain=SIP_DOMAIN)
    await ua.start()
    env.msrp_uas = getattr(env, "msrp_uas", []) + [ua]
    return gw, alice, ua


async def teardown(env):
    for ua in getattr(env, "msrp_uas", []):
        await ua.stop()
    env.msrp_uas = []


def bodies(client, frm=BOB):
    return [m["body"] for m in client.inbox if str(m["from"]).startswith(frm) and m["body"]]


async def expect_raw(client, pred, timeout, what):
    await wait_for(lambda: any(pred(m) for m in client.raw), timeout, what)
    return next(m for m in client.raw if pred(m))


async def open_from_sip(env, ua):
    call = await ua.invite(ALICE_URI, next_hop=("127.0.0.1", env.gw_sip_port))
    check(call.status == 200, f"INVITE answered {call.status} {call.reason}")
    check(not call.problems, f"the answer is sound: {call.problems}\n{call.remote_sdp and call.remote_sdp.text}")
    await call.wait_connected(5)
    return call


async def test_sip_initiated_chat_both_ways(env):
    try:
        gw, alice, ua = await setup(env)
        call = await open_from_sip(env, ua)
        await call.send_text("hello Alice, over MSRP")
        m = await alice.expect(lambda m: m["body"] == "hello Alice, over MSRP", 5)
        check(str(m["from"]).startswith(BOB) and m["type"] == "chat", f"from bob, chat: {m}")
        thread = m["thread"]
        check(thread, "a per-session <thread>")
        # alice answers from her resource: the reply goes over the same session
        alice.send_message(mto=BOB, mbody="hi Bob, from XMPP", mtype="chat")
        got = await call.wait_message(lambda x: x.text == "hi Bob, from XMPP", timeout=5)
        check(got.content_type.startswith("text/plain"), got.content_type)
        # later messages to bob go to alice's resource, with the same thread
        await call.send_text("second")
        m2 = await alice.expect(lambda m: m["body"] == "second", 5)
        check(str(m2["to"]) == str(alice.boundjid) and m2["thread"] == thread,
              f"to the resource, same thread: {m2['to']} {m2['thread']}")
        ua.check_clean()
        check(not call.violations, call.violations)
    finally:
        await teardown(env)


async def test_chunked_messages_both_ways(env):
    try:
        gw, alice, ua = await setup(env, sessions_attrs='chunk-size="1k"')
        call = await open_from_sip(env, ua)
        big = "".join(f"line {i:04d} of a long message\n" for i in range(300))   # ~8 KB
        await call.send_text(big, chunk_size=1000)
        await alice.expect(lambda m: m["body"] == big.strip("\n") or m["body"] == big, 8,
                           "the reassembled message")
        reply = "é" * 3000    # 6000 bytes of UTF-8: six chunks of 1k
        alice.send_message(mto=BOB, mbody=reply, mtype="chat")
        got = await call.wait_message(lambda x: x.text == reply, timeout=8)
        check(len(got.chunks) >= 6, f"sent in chunks: {got.chunks}")
        ua.check_clean()
    finally:
        await teardown(env)


async def test_chat_states_both_ways(env):
    try:
        gw, alice, ua = await setup(env)
        call = await open_from_sip(env, ua)
        await call.composing(True)
        await expect_raw(alice, lambda m: m.xml.find(NS_CHATSTATES + "composing") is not None, 5,
                         "<composing/> at alice")
        msg = alice.make_message(mto=BOB, mtype="chat")
        msg["chat_state"] = "composing"
        msg.send()
        got = await call.wait_message(lambda x: x.is_composing, timeout=5, include_composing=True)
        check(got.composing.get("state") == "active", f"isComposing active: {got.composing}")
        ua.check_clean()
    finally:
        await teardown(env)


async def test_receipts_both_ways(env):
    try:
        gw, alice, ua = await setup(env)
        alice.register_plugin("xep_0184")
        alice.plugin["xep_0184"].auto_ack = True
        call = await open_from_sip(env, ua)
        # SIP -> XMPP: Success-Report: yes becomes a receipt request; alice's client acks it
        sent = await call.send_text("please confirm", report=True)
        rep = await call.msrp.wait_report(sent.message_id, timeout=5)
        check(rep is not None, "a success REPORT came back")
        # XMPP -> SIP: a receipt request becomes Success-Report: yes; the UA's REPORT a receipt
        msg = alice.make_message(mto=BOB, mbody="confirm this", mtype="chat")
        msg["id"] = "r1"
        msg["request_receipt"] = True
        msg.send()
        await call.wait_message(lambda x: x.text == "confirm this", timeout=5)
        await expect_raw(alice, lambda m: m.xml.find(NS_RECEIPTS + "received") is not None
                         and m.xml.find(NS_RECEIPTS + "received").get("id") == "r1", 5,
                         "<received id='r1'/> at alice")
        ua.check_clean()
    finally:
        await teardown(env)


async def test_bye_from_sip_is_gone_at_xmpp(env):
    try:
        gw, alice, ua = await setup(env)
        call = await open_from_sip(env, ua)
        await call.send_text("bye soon")
        await alice.expect(lambda m: m["body"] == "bye soon", 5)
        await call.bye()
        await expect_raw(alice, lambda m: m.xml.find(NS_CHATSTATES + "gone") is not None, 5,
                           "<gone/> at alice")
        await gw.wait_log(r"session \S+ .*-> closed", timeout=5)
    finally:
        await teardown(env)


async def test_gone_from_xmpp_is_bye(env):
    try:
        gw, alice, ua = await setup(env)
        call = await open_from_sip(env, ua)
        await call.send_text("are you there?")
        await alice.expect(lambda m: m["body"] == "are you there?", 5)
        msg = alice.make_message(mto=BOB, mtype="chat")
        msg["chat_state"] = "gone"
        msg.send()
        await call.wait_bye(5)
    finally:
        await teardown(env)


async def test_xmpp_initiated_session(env):
    try:
        gw, alice, ua = await setup(env, peer_sessions=True)
        alice.send_message(mto=BOB, mbody="first, waits for the session", mtype="chat")
        alice.send_message(mto=BOB, mbody="second, in order", mtype="chat")
        call = await ua.wait_call(10)
        check(call.status == 200, f"the UA accepted: {call.status}")
        a = await call.wait_message(lambda x: x.text == "first, waits for the session", timeout=5)
        b = await call.wait_message(lambda x: x.text == "second, in order", timeout=5)
        check(a.time <= b.time, "in order")
        await call.send_text("got both")
        await alice.expect(lambda m: m["body"] == "got both", 5)
        ua.check_clean()
    finally:
        await teardown(env)


async def test_refused_invite_returns_the_queued_messages(env):
    try:
        gw, alice, ua = await setup(env, peer_sessions=True)
        ua.on_invite = 486
        alice.send_message(mto=BOB, mbody="will bounce", mtype="chat")
        err = await alice.expect(lambda m: m["type"] == "error", 10, "the bounce")
        check(error_condition(err), f"a defined condition: {err}")
        check(err["body"] == "will bounce", "the original message comes back with the error")
    finally:
        await teardown(env)


async def test_msrp_connection_loss_ends_the_session(env):
    try:
        gw, alice, ua = await setup(env)
        call = await open_from_sip(env, ua)
        await call.send_text("then the line drops")
        await alice.expect(lambda m: m["body"] == "then the line drops", 5)
        await call.msrp.close()
        await expect_raw(alice, lambda m: m.xml.find(NS_CHATSTATES + "gone") is not None, 5,
                           "<gone/> at alice after the TCP connection died")
        await call.wait_bye(5)
    finally:
        await teardown(env)


async def test_idle_timeout(env):
    try:
        gw, alice, ua = await setup(env, sessions_attrs='idle-timeout="10s"')
        call = await open_from_sip(env, ua)
        await call.send_text("then silence")
        await alice.expect(lambda m: m["body"] == "then silence", 5)
        await call.wait_bye(15)
        await expect_raw(alice, lambda m: m.xml.find(NS_CHATSTATES + "gone") is not None, 5, "<gone/>")
    finally:
        await teardown(env)


async def test_session_limits(env):
    try:
        gw, alice, ua = await setup(env, sessions_attrs='max-per-user="1"')
        await open_from_sip(env, ua)
        dave = MsrpUA("dave", domain=SIP_DOMAIN)
        # a second SIP user: from another port, which the peer's trust (127.0.0.1) covers
        await dave.start()
        env.msrp_uas.append(dave)
        second = await dave.invite(ALICE_URI, next_hop=("127.0.0.1", env.gw_sip_port))
        check(second.status == 486, f"over max-per-user: 486, got {second.status}")
    finally:
        await teardown(env)


async def test_bad_offers_are_refused(env):
    try:
        gw, alice, ua = await setup(env)
        bad = ("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
               "m=audio 4000 RTP/AVP 0\r\n")
        call = await ua.invite(ALICE_URI, next_hop=("127.0.0.1", env.gw_sip_port), body=bad)
        check(call.status == 488, f"no message stream: 488, got {call.status}")
    finally:
        await teardown(env)


async def test_reinvite_keeps_the_session(env):
    try:
        gw, alice, ua = await setup(env)
        call = await open_from_sip(env, ua)
        status = await call.reinvite()
        check(status == 200, f"re-INVITE answered {status}")
        await call.send_text("still here after the re-INVITE")
        await alice.expect(lambda m: m["body"] == "still here after the re-INVITE", 5)
    finally:
        await teardown(env)


async def test_gone_before_the_answer_cancels_the_invite(env):
    try:
        gw, alice, ua = await setup(env, peer_sessions=True)
        ua.on_invite = Answer(200, delay=5.0)	# rings for 5 s
        alice.send_message(mto=BOB, mbody="you there?", mtype="chat")
        await wait_for(lambda: ua.calls, 5, "the INVITE at the UA")
        msg = alice.make_message(mto=BOB, mtype="chat")
        msg["chat_state"] = "gone"
        msg.send()
        await wait_for(lambda: ua.calls[0].cancelled, 5, "CANCEL at the UA")
        err = await alice.expect(lambda m: m["type"] == "error", 5, "the waiting message back")
        check(err["body"] == "you there?", err)
    finally:
        await teardown(env)


async def test_xmpp_bounce_becomes_a_failure_report(env):
    """A message the XMPP server bounces after the gateway's 200 still reaches the SIP sender:
    as a failure REPORT (RFC 4975 7.1.2), never silently lost."""
    try:
        gw, alice, ua = await setup(env)
        call = await ua.invite(f"sip:nobody@{XMPP_DOMAIN}", next_hop=("127.0.0.1", env.gw_sip_port))
        check(call.status == 200, f"INVITE answered {call.status}")
        await call.wait_connected(5)
        sent = await call.send_text("to a user who does not exist")
        check(sent.statuses == [200], f"the SEND was taken: {sent.statuses}")
        rep = await call.msrp.wait_report(sent.message_id, timeout=5)
        status = rep.get("status")
        check(status and not status.startswith("000 200"), f"a failure REPORT: {status}")
        ua.check_clean()
    finally:
        await teardown(env)


async def test_paths_must_match_the_session(env):
    try:
        gw, alice, ua = await setup(env)
        call = await open_from_sip(env, ua)
        real = call.msrp.local_path
        call.msrp.local_path = real.replace(real.rsplit("/", 1)[1].split(";")[0], "impostor")
        sent = await call.send_text("with a From-Path of another session", wait=False)
        await wait_for(lambda: sent.statuses, 5, "a response")
        check(sent.statuses == [481], f"481 for a From-Path that is not the session's: {sent.statuses}")
        call.msrp.violations.clear()
        call.msrp.local_path = real
        await call.send_text("and with the right one")
        await alice.expect(lambda m: m["body"] == "and with the right one", 5)
    finally:
        await teardown(env)


async def test_malformed_msrp_closes_the_session_cleanly(env):
    """Garbage on the MSRP connection: the gateway closes it and ends the session (BYE, <gone/>),
    never crashes, and keeps serving others."""
    try:
        gw, alice, ua = await setup(env)
        call = await open_from_sip(env, ua)
        # a request with a valid start line but a broken header: answered 400, then closed
        call.msrp.writer.write(b"MSRP a786hjs2 SEND\r\nTo-Path msrp://x\r\n-------a786hjs2$\r\n")
        await call.msrp.writer.drain()
        await wait_for(lambda: any(f.tid == "a786hjs2" and f.status == 400 for f in call.msrp.frames),
                       5, "the 400 for the broken request")
        await call.wait_bye(5)
        await expect_raw(alice, lambda m: m.xml.find(NS_CHATSTATES + "gone") is not None, 5,
                         "<gone/> at alice")
        await gw.wait_log(r"MSRP from .*connection closed", timeout=5)
        # the gateway still takes new sessions
        call.msrp.violations.clear()
        again = await open_from_sip(env, ua)
        await again.send_text("after the garbage")
        await alice.expect(lambda m: m["body"] == "after the garbage", 5)
    finally:
        await teardown(env)
