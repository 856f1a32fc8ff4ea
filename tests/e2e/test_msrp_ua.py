"""test_msrp_ua.py - self-test of msrp_ua.py, the SIP + MSRP test user agent.

Two MsrpUA instances call each other directly on 127.0.0.1 (no gateway involved), and sipp
checks the SIP side of the UA against an independent implementation.  Prosody is not needed.
"""

import asyncio
import os

from harness import check
from msrp_ua import (Answer, MsrpUA, ProtocolError, cpim_wrap, iscomposing_xml, parse_byte_range,
                     parse_msrp)


async def pair(offer_setup="actpass", answer_setup="active", b_setup="actpass", **kw):
    a = await MsrpUA("alice", setup=offer_setup, domain="xmpp.example", **kw).start()
    b = await MsrpUA("bob", setup=b_setup, answer_setup=answer_setup).start()
    return a, b


async def connect(a, b, **kw):
    call = await a.invite(b.uri, next_hop=("127.0.0.1", b.port), **kw)
    check(call.status == 200, f"INVITE got {call.status} {call.reason}: {call.problems}")
    peer = await b.wait_call(5)
    await call.wait_connected()
    await peer.wait_connected()
    return call, peer


async def stop(*uas):
    for ua in uas:
        await ua.stop()


# ------------------------------------------------------------------ parser unit checks

async def test_parser_strictness(env):
    tid = "a786hjs2"
    ok = (f"MSRP {tid} SEND\r\nTo-Path: msrp://127.0.0.1:7777/iau39soe2843z;tcp\r\n"
          f"From-Path: msrp://127.0.0.1:8888/9di4eae923wzd;tcp\r\nMessage-ID: 87652491\r\n"
          f"Byte-Range: 1-25/25\r\nContent-Type: text/plain\r\n\r\nHey Bob, are you there?\r\n"
          f"-------{tid}$\r\n").encode()
    # fed byte by byte: never a frame before the last byte, then exactly one
    for i in range(len(ok)):
        check(parse_msrp(bytearray(ok[:i])) is None, f"frame parsed from {i} bytes")
    frame, used = parse_msrp(bytearray(ok + b"MSRP"))
    check(used == len(ok) and frame.body == b"Hey Bob, are you there?" and frame.flag == "$", repr(frame))
    # the end-line of another transaction inside the body is data
    tricky = ok.replace(b"Hey Bob, are you there?", b"x\r\n-------zzzzzzzz$\r\ny")
    frame, _ = parse_msrp(bytearray(tricky))
    check(frame.body == b"x\r\n-------zzzzzzzz$\r\ny", repr(frame.body))
    resp = (f"MSRP {tid} 200 OK\r\nTo-Path: msrp://127.0.0.1:8888/9di4eae923wzd;tcp\r\n"
            f"From-Path: msrp://127.0.0.1:7777/iau39soe2843z;tcp\r\n-------{tid}$\r\n").encode()
    frame, _ = parse_msrp(bytearray(resp))
    check(frame.status == 200 and frame.comment == "OK", repr(frame))
    bad = {
        "lowercase protocol": ok.replace(b"MSRP a786", b"msrp a786"),
        "short transaction id": ok.replace(tid.encode(), b"a78"),
        "From-Path before To-Path": ok.replace(b"To-Path", b"X-Tmp").replace(b"From-Path", b"To-Path")
                                      .replace(b"X-Tmp", b"From-Path"),
        "no space after colon": ok.replace(b"Message-ID: ", b"Message-ID:"),
        "Content-Type not last": ok.replace(b"Byte-Range: 1-25/25\r\nContent-Type: text/plain",
                                            b"Content-Type: text/plain\r\nByte-Range: 1-25/25"),
        "bad URI": ok.replace(b"msrp://127.0.0.1:7777/iau39soe2843z;tcp", b"msrp://127.0.0.1:7777/x"),
        "response with body": resp.replace(b"-------", b"\r\nbody\r\n-------"),
        "response with + flag": resp.replace(f"{tid}$".encode(), f"{tid}+".encode()),
        "LF line ends": ok.replace(b"\r\n", b"\n") + b"\n" * 600,
        "MIME header without body": resp.replace(b"-------", b"Content-Type: text/plain\r\n-------"),
        "repeated header": ok.replace(b"Message-ID: 87652491\r\n", b"Message-ID: 87652491\r\nMessage-ID: 2\r\n"),
    }
    for what, data in bad.items():
        try:
            parse_msrp(bytearray(data))
        except ProtocolError:
            continue
        raise AssertionError(f"parser accepted: {what}")
    check(parse_byte_range("1-*/*") == (1, None, None), "1-*/*")
    for br in ("0-1/1", "1-5/4", "1 - 5/5", "a-b/c"):
        try:
            parse_byte_range(br)
        except ProtocolError:
            continue
        raise AssertionError(f"Byte-Range {br} accepted")


# ------------------------------------------------------------------ sessions between two UAs

async def test_setup_combinations(env):
    rows = [  # (offerer's a=setup, answerer's choice for actpass, answerer's own setup, offerer's role)
        ("actpass", "active", "actpass", "passive"),
        ("actpass", "passive", "actpass", "active"),
        ("active", "active", "actpass", "active"),
        ("passive", "passive", "actpass", "passive"),
        ("actpass", "active", "passive", "active"),
    ]
    for offer, ans, bset, role in rows:
        a, b = await pair(offer, ans, bset)
        try:
            call, peer = await connect(a, b)
            check(call.msrp.role == role and peer.msrp.role != role,
                  f"{offer}/{ans}: roles {call.msrp.role} {peer.msrp.role}")
            media = call.remote_sdp.message_media()[0]
            check(call.remote_sdp.attr(media, "setup") == peer.msrp.role, "answer's a=setup")
            await call.send_text("hello bob")
            m = await peer.wait_message(timeout=3)
            check(m.text == "hello bob" and m.content_type.startswith("text/plain"), repr(m))
            await peer.send_text("hello alice \u2603")
            m = await call.wait_message(timeout=3)
            check(m.text == "hello alice \u2603", repr(m))
            active = call if call.msrp.role == "active" else peer
            passive = peer if active is call else call
            check(len(passive.msrp.empty_sends) == 1 and not active.msrp.empty_sends,
                  "the active side sends one bodyless SEND first")
            check(active.msrp.frames and active.msrp.frames[0].status == 200, "bodyless SEND answered 200")
            check(await call.bye() == 200, "BYE answered 200")
            await peer.wait_bye(3)
            a.check_clean()
            b.check_clean()
        finally:
            await stop(a, b)


async def test_incompatible_setup_is_refused(env):
    a, b = await pair("active", "active", b_setup="active")
    try:
        call = await a.invite(b.uri, next_hop=("127.0.0.1", b.port))
        check(call.status == 488, f"active/active gave {call.status}")
        peer = await b.wait_call(3)
        check(peer.status == 488 and peer.problems, peer.problems)
    finally:
        await stop(a, b)


async def test_chunks_reports_cpim(env):
    a, b = await pair()
    try:
        call, peer = await connect(a, b)
        text = "0123456789" * 3
        out = await call.send_text(text, chunk_size=11, report=True, message_id="msg-3chunks")
        check(out.statuses == [200, 200, 200], f"chunk responses {out.statuses}")
        m = await peer.wait_message(timeout=3)
        check(m.message_id == "msg-3chunks" and m.text == text, repr(m))
        check([(s, e, t, f) for s, e, t, f in m.chunks] ==
              [(1, 11, 30, "+"), (12, 22, 30, "+"), (23, 30, 30, "$")], m.chunks)
        rep = await call.msrp.wait_report("msg-3chunks", 3)
        check(rep.get("status") == "000 200 OK" and rep.get("byte-range") == "1-30/30", rep.raw)
        check(not peer.msrp.reports, "no REPORT without Success-Report")
        # unknown total until the last chunk
        out = await peer.send_text("abcdefgh", chunk_size=3, unknown_total=True)
        m = await call.wait_message(timeout=3)
        check(m.text == "abcdefgh" and m.chunks[0][2] is None, m.chunks)
        # message/cpim
        await call.send_text("wrapped", cpim=True)
        m = await peer.wait_message(timeout=3)
        check(m.content_type == "message/cpim" and m.cpim is not None and m.text == "wrapped"
              and m.cpim.get("From") == f"<{a.uri}>", repr(m))
        # Failure-Report: no -> no response at all
        out = await call.send_text("fire and forget", failure_report="no")
        await peer.wait_message(lambda m: m.text == "fire and forget", 3)
        await asyncio.sleep(0.2)
        check(not out.responses, "response despite Failure-Report: no")
        a.check_clean()
        b.check_clean()
    finally:
        await stop(a, b)


async def test_aborted_chunk(env):
    a, b = await pair()
    try:
        call, peer = await connect(a, b)
        out = await call.send_text("this will never be complete", chunk_size=5, abort_after=2,
                                   message_id="aborted-1")
        check(out.statuses == [200, 200], out.statuses)
        await call.send_text("after the abort")
        m = await peer.wait_message(timeout=3)
        check(m.text == "after the abort", f"got {m!r}")
        check(peer.msrp.aborted == [("aborted-1", b"this will ")], peer.msrp.aborted)
        check(len(peer.received_messages) == 1, peer.received_messages)
        a.check_clean()
        b.check_clean()
    finally:
        await stop(a, b)


async def test_passive_side_sends_first_without_keepalive(env):
    a = await MsrpUA("alice", send_empty_send=False).start()
    b = await MsrpUA("bob", answer_setup="active", send_empty_send=False).start()
    try:
        call = await a.invite(b.uri, next_hop=("127.0.0.1", b.port))
        peer = await b.wait_call(5)
        check(call.msrp.role == "passive", call.msrp.role)
        await call.send_text("the passive side speaks first")
        m = await peer.wait_message(timeout=3)
        check(m.text == "the passive side speaks first" and not call.msrp.empty_sends, repr(m))
        a.check_clean()
        b.check_clean()
    finally:
        await stop(a, b)


async def test_iscomposing(env):
    a, b = await pair()
    try:
        call, peer = await connect(a, b)
        await call.composing(True, refresh=90)
        m = await peer.wait_message(lambda m: m.is_composing, 3)
        check(m.composing["state"] == "active" and m.composing["refresh"] == "90", m.composing)
        check(m.content_type == "application/im-iscomposing+xml", m.content_type)
        await call.composing(False)
        m = await peer.wait_message(lambda m: m.is_composing, 3)
        check(m.composing["state"] == "idle" and "refresh" not in m.composing, m.composing)
        # wrapped in CPIM too
        await peer.send(cpim_wrap(iscomposing_xml(True), "application/im-iscomposing+xml", b.uri, a.uri),
                        "message/cpim")
        m = await call.wait_message(lambda m: m.is_composing, 3)
        check(m.composing["state"] == "active", m.composing)
        a.check_clean()
        b.check_clean()
    finally:
        await stop(a, b)


async def test_bye_from_each_side_and_reinvite(env):
    a, b = await pair()
    try:
        call, peer = await connect(a, b)
        check(await call.reinvite() == 200, "re-INVITE from the caller")
        check(await peer.reinvite() == 200, "re-INVITE from the callee")
        await call.send_text("still there")
        await peer.wait_message(timeout=3)
        check(await peer.bye() == 200, "BYE from the callee")
        bye = await call.wait_bye(3)
        check(bye is not None and bye.method == "BYE", repr(bye))
        await asyncio.wait_for(call.msrp.closed.wait(), 3)
        call2, peer2 = await connect(a, b)
        check(await call2.bye() == 200, "BYE from the caller")
        await peer2.wait_bye(3)
        a.check_clean()
        b.check_clean()
    finally:
        await stop(a, b)


async def test_refused_invite_486(env):
    a, b = await pair()
    b.on_invite = 486
    try:
        call = await a.invite(b.uri, next_hop=("127.0.0.1", b.port))
        check(call.status == 486 and call.msrp is not None and call.msrp.closed.is_set(), call.status)
        peer = await b.wait_call(3)
        check(peer.status == 486, peer.status)
        await asyncio.wait_for(peer.acks[peer.invite.cseq[0]].wait(), 3)
        await asyncio.sleep(1.2)   # no retransmission of the 486 once ACKed
        sent = [m for m in b.sip_log if m.direction == "out" and m.start.startswith("SIP/2.0 486")]
        check(len(sent) == 1, f"486 sent {len(sent)} times")
        acks = [m for m in b.sip_log if m.direction == "in" and m.method == "ACK"]
        check(len(acks) == 1 and acks[0].get_all("via")[0] == call.invite.get_all("via")[0],
              "ACK of a non-2xx reuses the INVITE's Via (RFC 3261 17.1.1.3)")
        # a policy function, with ringing first, then a CANCEL
        b.on_invite = lambda inv: Answer(200, delay=5)
        call = await a.invite(b.uri, next_hop=("127.0.0.1", b.port), wait=False)
        await asyncio.sleep(0.3)
        check(await call.cancel() == 200, "CANCEL answered")
        await asyncio.wait_for(call.final.wait(), 3)
        check(call.status == 487, f"cancelled INVITE got {call.status}")
        a.check_clean()
        b.check_clean()
    finally:
        await stop(a, b)


async def test_violations_are_recorded(env):
    """Malformed MSRP and wrong paths from the peer end up in check_clean()."""
    a, b = await pair()
    try:
        call, peer = await connect(a, b)
        # a SEND whose To-Path is not the receiver's path: 481 and a recorded violation
        bogus = call.msrp.remote_path.replace(peer.msrp.session_id, "wrongsession1")
        saved = call.msrp.remote_path
        call.msrp.remote_path = bogus
        out = await call.send_text("misaddressed")
        call.msrp.remote_path = saved
        check(out.statuses == [481], out.statuses)
        check(any("To-Path" in v for v in peer.msrp.violations), peer.msrp.violations)
        # garbage on the wire
        call.msrp.writer.write(b"MSRP abcd1234 SEND\r\nFrom-Path: msrp://x;tcp\r\n-------abcd1234$\r\n")
        await asyncio.sleep(0.3)
        try:
            b.check_clean()
        except ProtocolError as e:
            check("To-Path and From-Path must be the first" in str(e), str(e))
        else:
            raise AssertionError("malformed MSRP not reported")
    finally:
        await stop(a, b)


async def test_many_messages_interleaved(env):
    a, b = await pair()
    try:
        call, peer = await connect(a, b)
        texts = [f"message {i} " + "x" * (i * 37) for i in range(20)]
        await asyncio.gather(*(call.send_text(t, chunk_size=50) for t in texts))
        got = set()
        for _ in texts:
            got.add((await peer.wait_message(timeout=3)).text)
        check(got == set(texts), "every interleaved chunked message reassembled")
        a.check_clean()
        b.check_clean()
    finally:
        await stop(a, b)


# ------------------------------------------------------------------ SIP checked by sipp

UAC_INVITE = """<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="msrp uac">
  <send retrans="500">
    <![CDATA[
INVITE sip:bob@sip.example SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: <sip:carol@xmpp.example>;tag=[pid]SIPpTag00[call_number]
To: <sip:bob@sip.example>
Call-ID: [call_id]
CSeq: 1 INVITE
Contact: <sip:carol@[local_ip]:[local_port]>
Max-Forwards: 70
Content-Type: application/sdp
Content-Length: [len]

v=0
o=carol 1 1 IN IP4 127.0.0.1
s=-
c=IN IP4 127.0.0.1
t=0 0
m=message 9 TCP/MSRP *
a=accept-types:text/plain
a=path:msrp://127.0.0.1:9/sippsession1;tcp
a=setup:active
]]>
  </send>
  <recv response="100" optional="true"/>
  <recv response="200" rtd="true">
    <action>
      <ereg regexp="a=setup:passive" search_in="body" check_it="true" assign_to="s"/>
      <ereg regexp="a=path:msrp://127\\.0\\.0\\.1:[0-9]+/[^;]+;tcp" search_in="body" check_it="true" assign_to="p"/>
    </action>
  </recv>
  <send>
    <![CDATA[
ACK sip:bob@127.0.0.1:{{port}} SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: <sip:carol@xmpp.example>;tag=[pid]SIPpTag00[call_number]
[last_To:]
Call-ID: [call_id]
CSeq: 1 ACK
Max-Forwards: 70
Content-Length: 0

]]>
  </send>
  <pause milliseconds="300"/>
  <send retrans="500">
    <![CDATA[
BYE sip:bob@127.0.0.1:{{port}} SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: <sip:carol@xmpp.example>;tag=[pid]SIPpTag00[call_number]
[last_To:]
Call-ID: [call_id]
CSeq: 2 BYE
Max-Forwards: 70
Content-Length: 0

]]>
  </send>
  <recv response="200" crlf="true"/>
  <Reference variables="s,p"/>
</scenario>
"""

UAS_REFUSE = """<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="refusing uas">
  <recv request="INVITE"/>
  <send>
    <![CDATA[
SIP/2.0 486 Busy Here
[last_Via:]
[last_From:]
[last_To:];tag=[pid]SIPpTag01[call_number]
[last_Call-ID:]
[last_CSeq:]
Content-Length: 0

]]>
  </send>
  <recv request="ACK"/>
</scenario>
"""


def scenario(env, name, text):
    path = os.path.join(env.workdir, name)
    with open(path, "w") as f:
        f.write(text)
    return path   # absolute: harness.render joins it to sipp/ unchanged


async def test_sipp_calls_the_ua(env):
    b = await MsrpUA("bob").start()
    try:
        uac = env.sipp("msrp-uac", scenario(env, "msrp_uac.xml", UAC_INVITE), {"port": str(b.port)},
                       remote=f"127.0.0.1:{b.port}")
        await uac.start()
        peer = await b.wait_call(5, established=False)
        check(peer.status == 200 and peer.msrp.role == "passive", f"{peer.status} {peer.msrp.role}")
        rc = await uac.wait(20)
        check(rc == 0, f"sipp UAC failed ({rc}): {uac.error_text()}")
        await peer.wait_bye(3)
        check(peer.confirmed.is_set(), "ACK seen")
        b.check_clean()
    finally:
        await b.stop()


async def test_ua_acks_a_sipp_refusal(env):
    a = await MsrpUA("alice", domain="xmpp.example").start()
    try:
        uas = env.sipp("refuser", scenario(env, "uas_refuse.xml", UAS_REFUSE), {})
        await uas.start()
        call = await a.invite("sip:bob@sip.example", next_hop=("127.0.0.1", uas.port))
        check(call.status == 486, call.status)
        rc = await uas.wait(10)
        check(rc == 0, f"sipp UAS did not get its ACK ({rc}): {uas.error_text()}")
        a.check_clean()
    finally:
        await a.stop()
