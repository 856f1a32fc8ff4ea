"""test_conf_focus.py - self-test of conf_focus.py (an RFC 7701 chat room) with msrp_ua.py participants.

No gateway: MsrpUA participants join a ConfFocus room on 127.0.0.1, set nicknames, subscribe to
the conference state (RFC 4575), talk in the room and privately, are kicked.  Each side checks
the other with its own parser, so these tests hold the two tools to the RFCs and to each other.
"""

import asyncio

from conf_focus import ConfFocus
from harness import check, wait_for
from msrp_ua import (CPIM_DATETIME, ConferenceView, MsrpUA, ProtocolError, parse_conference_info)

ROOMS = {
    "chat": {"subject": "Welcome", "roles": {"sip:alice@xmpp.example": ["moderator", "participant"]},
             "reserved": {"Admin": "sip:alice@xmpp.example"}},
    "quiet": {"private_messages": False, "nicknames": False},
    "closed": {"refuse": 403},
    "club": {"members": ["sip:alice@xmpp.example"]},
}


async def setup(*names):
    focus = await ConfFocus(domain="conf.example", rooms=ROOMS).start()
    domains = {"alice": "xmpp.example"}
    uas = [await MsrpUA(n, domain=domains.get(n, "sip.example")).start() for n in names]
    return focus, uas


async def join(focus, ua, room="chat"):
    call = await ua.invite(focus.room_uri(room), next_hop=("127.0.0.1", focus.port))
    check(call.status == 200, f"{ua.name} joining {room}: {call.status} {call.reason} {call.problems}")
    await call.wait_connected()
    await focus.wait_participants(room, lambda ps: any(p.uri == ua.uri and p.state == "joined" for p in ps))
    return call


async def teardown(focus, *uas):
    for ua in uas:
        await ua.stop()
    await focus.stop()


def clean(focus, *uas):
    for ua in uas:
        ua.check_clean()
    focus.check_clean()


async def quiet(call, seconds=0.3):
    """Nothing arrives on call within seconds."""
    await asyncio.sleep(seconds)
    left = [m for m in call.received_messages if id(m) not in call.msrp._waiters_taken]
    check(not left, f"unexpected messages {left}")


# ------------------------------------------------------------------ conference-info parser

DOC = """<?xml version="1.0" encoding="UTF-8"?>
<conference-info xmlns="urn:ietf:params:xml:ns:conference-info" entity="sip:r@c.example"
  state="{state}" version="{version}">{body}</conference-info>"""


def doc(version, state="partial", body=""):
    return parse_conference_info(DOC.format(state=state, version=version, body=body).encode())


async def test_conference_info_rules(env):
    view = ConferenceView()
    full = doc(1, "full", """
      <conference-description><display-text>R</display-text><subject>S1</subject></conference-description>
      <conference-state><user-count>2</user-count></conference-state>
      <users>
        <user entity="sip:a@x" state="full"><display-text>Al</display-text>
          <roles><entry>participant</entry></roles>
          <endpoint entity="sip:a@1.2.3.4"><status>connected</status></endpoint></user>
        <user entity="sip:b@x"><endpoint entity="sip:b@1.2.3.5"><status>alerting</status></endpoint></user>
      </users>""")
    check(view.apply(full) == [], view.docs)
    check(view.subject == "S1" and view.display == "R" and view.user_count == 2, vars(view))
    check(view.users["sip:a@x"]["display"] == "Al" and view.users["sip:a@x"]["status"] == "connected"
          and view.users["sip:a@x"]["roles"] == ["participant"], view.users)
    check(view.users["sip:b@x"]["display"] is None and view.users["sip:b@x"]["status"] == "alerting", view.users)
    # partial: a's display-text changes and its endpoint is kept; b's endpoint changes status;
    # c is added; the subject changes, the display-text of the conference stays
    check(view.apply(doc(2, body="""
      <conference-description state="partial"><subject>S2</subject></conference-description>
      <users state="partial">
        <user entity="sip:a@x" state="partial"><display-text>Alice</display-text></user>
        <user entity="sip:b@x" state="partial">
          <endpoint entity="sip:b@1.2.3.5" state="partial"><status>connected</status></endpoint></user>
        <user entity="sip:c@x" state="full"><display-text>Cy</display-text></user>
      </users>""")) == [], view.docs)
    check(view.subject == "S2" and view.display == "R", (view.subject, view.display))
    check(view.users["sip:a@x"]["display"] == "Alice" and view.users["sip:a@x"]["status"] == "connected"
          and view.users["sip:a@x"]["roles"] == ["participant"], view.users["sip:a@x"])
    check(view.users["sip:b@x"]["status"] == "connected" and view.users["sip:c@x"]["display"] == "Cy", view.users)
    # deleted removes; a version gap and an unknown deletion are reported
    check(view.apply(doc(3, body='<users state="partial"><user entity="sip:c@x" state="deleted"/></users>')) == [],
          "deletion")
    check("sip:c@x" not in view.users and len(view.users) == 2, view.users)
    problems = view.apply(doc(5, body='<users state="partial"><user entity="sip:z@x" state="deleted"/></users>'))
    check(len(problems) == 2 and "version 5 after 3" in problems[0] and "not known" in problems[1], problems)
    # a full document replaces everything
    check(view.apply(doc(6, "full", "<users/>")) == [] and view.users == {} and view.subject is None, vars(view))
    # the first document must be full
    check(ConferenceView().apply(doc(1)) == ["first conference-info is partial, not full"], "first partial")
    for bad in ('<conference-info xmlns="urn:ietf:params:xml:ns:conference-info" entity="x" version="a"/>',
                '<conference-info xmlns="urn:ietf:params:xml:ns:conference-info" version="1"/>',
                '<conference-info entity="x" version="1"/>',
                DOC.format(state="bogus", version=1, body=""),
                DOC.format(state="full", version=1, body="<users><user/></users>")):
        try:
            parse_conference_info(bad.encode())
        except ProtocolError:
            continue
        raise AssertionError(f"accepted {bad!r}")


# ------------------------------------------------------------------ joining and refusals

async def test_join_answer_and_refusals(env):
    focus, (alice, bob) = await setup("alice", "bob")
    try:
        call = await join(focus, alice)
        check(call.chatroom == ["nickname", "private-messages"], call.chatroom)
        media = call.remote_sdp.message_media()[0]
        check(call.remote_sdp.attr(media, "accept-types") == "message/cpim text/plain" and
              call.remote_sdp.attr(media, "accept-wrapped-types") == "text/plain", call.remote_sdp.text)
        contact = call.responses[-1].get("contact")
        check(contact.endswith(";isfocus"), contact)
        quiet_call = await join(focus, alice, "quiet")
        check(quiet_call.chatroom is None, quiet_call.chatroom)
        for room, ua, want in (("nowhere", bob, 404), ("closed", bob, 403), ("club", bob, 403)):
            uri = f"sip:{room}@conf.example" if room == "nowhere" else focus.room_uri(room)
            c = await ua.invite(uri, next_hop=("127.0.0.1", focus.port))
            check(c.status == want, f"{room}: {c.status}")
        await join(focus, alice, "club")
        # RFC 7701: participants take message/cpim; an offer without it is not acceptable
        nocpim = await MsrpUA("carol", accept_types="text/plain").start()
        try:
            c = await nocpim.invite(focus.room_uri("chat"), next_hop=("127.0.0.1", focus.port))
            check(c.status == 488, f"offer without message/cpim: {c.status}")
            nocpim.check_clean()
        finally:
            await nocpim.stop()
        check([p.uri for p in focus.participants("chat")] == [alice.uri], focus.participants("chat"))
        clean(focus, alice, bob)
    finally:
        await teardown(focus, alice, bob)


async def test_nicknames(env):
    focus, (alice, bob) = await setup("alice", "bob")
    try:
        a, b = await join(focus, alice), await join(focus, bob)
        check(await a.send_nickname("Alice") == 200, "free nickname")
        check(await a.send_nickname("Alice") == 200, "the same nickname again")
        check(await b.send_nickname("Alice") == 425, "taken nickname")
        check(await b.send_nickname("  ALICE ") == 425, "taken nickname, other case and spaces")
        check(await b.send_nickname("Admin") == 425, "nickname reserved for alice")
        check(await b.send_nickname("Bob", raw=True) == 424, "Use-Nickname not a quoted-string")
        check(await b.send_nickname('"B\\ob"', raw=True) == 424, "bad escape")
        check(await b.send_nickname("") == 424, "empty nickname")
        check(await b.send_nickname("tab\there") == 424, "control character")
        check(await b.send_nickname('Bob "the builder"') == 200, "quotes escaped")
        check([p.nickname for p in focus.participants("chat")] == ["Alice", 'Bob "the builder"'],
              focus.participants("chat"))
        # a change frees the old nickname
        check(await a.send_nickname("Admin") == 200, "alice takes the nickname reserved for her")
        check(await b.send_nickname("alice") == 200, "the old nickname is free again")
        check(b.msrp.nicknames_sent[-1] == ('"alice"', 200), b.msrp.nicknames_sent)
        check(all(fr.get("use-nickname") and fr.body is None for p in focus.participants("chat")
                  for fr in p.call.msrp.nickname_requests), "NICKNAME: Use-Nickname, no body")
        # a room without nicknames
        q = await join(focus, alice, "quiet")
        check(await q.send_nickname("x") == 501, "nickname in a room without them")
        # a participant does not take NICKNAME: 501 and a violation
        c = await alice.invite(bob.uri, next_hop=("127.0.0.1", bob.port))
        await c.wait_connected()
        peer = await bob.wait_call(5)
        check(await c.send_nickname("x") == 501, "NICKNAME to a participant")
        check(any("NICKNAME" in v for v in peer.msrp.violations), peer.msrp.violations)
        peer.msrp.violations.clear()
        clean(focus, alice, bob)
    finally:
        await teardown(focus, alice, bob)


# ------------------------------------------------------------------ messages

async def test_room_messages(env):
    focus, (alice, bob, carol) = await setup("alice", "bob", "carol")
    try:
        a, b, c = [await join(focus, ua) for ua in (alice, bob, carol)]
        check(await a.send_nickname("Alice") == 200, "nickname")
        out = await a.send_cpim("hello room")
        check(out.statuses == [200], out.statuses)
        for call in (b, c):
            m = await call.wait_message(timeout=3)
            check(m.content_type == "message/cpim" and m.text == "hello room", repr(m))
            check(m.cpim_from == alice.uri and m.cpim_from_display == "Alice", m.cpim.headers)
            check(m.cpim_to == focus.room_uri("chat") and CPIM_DATETIME.match(m.cpim_datetime or ""),
                  m.cpim.headers)
            check(m.inner_type == "text/plain", m.inner_type)
        # plain text from a participant without a nickname: wrapped by the switch
        await b.send_text("plain hello")
        for call in (a, c):
            m = await call.wait_message(timeout=3)
            check(m.text == "plain hello" and m.cpim_from == bob.uri and m.cpim_from_display is None
                  and m.cpim_to == focus.room_uri("chat"), m.cpim.headers)
        # chunked, with the sender's DateTime kept
        text = "0123456789" * 20
        # chunks too short to hold the CPIM headers: the switch routes the message once complete
        out = await c.send_cpim(text, chunk_size=33)
        check(len(out.tids) > 2 and out.statuses == [200] * len(out.tids), out.statuses)
        m = await a.wait_message(timeout=3)
        check(m.text == text and m.cpim_from == carol.uri, repr(m))
        m = await b.wait_message(timeout=3)
        check(m.text == text, repr(m))
        # nobody gets their own message back
        await quiet(a)
        await quiet(b)
        await quiet(c)
        # a CPIM From that is not the sender: 403, nobody gets it
        out = await a.send_cpim("forged", from_=bob.uri)
        check(out.statuses == [403], out.statuses)
        check(any("CPIM From" in v for v in focus.violations), focus.violations)
        focus.violations.clear()
        # something other than text inside: 415
        out = await a.send_cpim("<x/>", content_type="application/xml")
        check(out.statuses == [415], out.statuses)
        await quiet(b)
        log = focus.messages("chat")
        check([(e["from"], e["text"], e["private"]) for e in log] ==
              [(alice.uri, "hello room", False), (bob.uri, "plain hello", False),
               (carol.uri, text, False)], log)
        check(sorted(log[0]["recipients"]) == sorted([bob.uri, carol.uri]), log[0])
        clean(focus, alice, bob, carol)
    finally:
        await teardown(focus, alice, bob, carol)


async def test_private_messages(env):
    focus, (alice, bob, carol) = await setup("alice", "bob", "carol")
    try:
        a, b, c = [await join(focus, ua) for ua in (alice, bob, carol)]
        out = await a.send_cpim("just for bob", to=bob.uri)
        check(out.statuses == [200], out.statuses)
        m = await b.wait_message(timeout=3)
        check(m.text == "just for bob" and m.cpim_from == alice.uri and m.cpim_to == bob.uri, m.cpim.headers)
        # chunked private message: routed on its first chunk, which holds the CPIM headers
        out = await a.send_cpim("x" * 400, to=bob.uri, chunk_size=150)
        check(len(out.tids) == 4 and out.statuses == [200] * 4, out.statuses)
        m = await b.wait_message(timeout=3)
        check(m.text == "x" * 400 and m.cpim_to == bob.uri, repr(m))
        out = await a.send_cpim("y" * 400, to="sip:nobody@sip.example", chunk_size=150)
        check(out.statuses == [404] * 4, f"every chunk of a misaddressed message: {out.statuses}")
        # then a room message: carol's first message is that one
        await a.send_cpim("for everyone")
        m = await c.wait_message(timeout=3)
        check(m.text == "for everyone", f"carol got {m!r} first")
        await b.wait_message(lambda m: m.text == "for everyone", 3)
        await quiet(c)
        # a recipient who is not in the room: 404 (RFC 7701's "Failure to resolve recipient's URI")
        out = await a.send_cpim("anyone?", to="sip:nobody@sip.example")
        check(out.statuses == [404], out.statuses)
        out = await a.send_cpim("two at once", to=[bob.uri, carol.uri])
        check(out.statuses == [403], out.statuses)
        # a room without private messages: 428
        qa, qb = await join(focus, alice, "quiet"), await join(focus, bob, "quiet")
        out = await qa.send_cpim("psst", to=bob.uri)
        check(out.statuses == [428], out.statuses)
        await quiet(qb)
        log = [e for e in focus.messages("chat") if e["private"]]
        check([(e["to"], e["recipients"]) for e in log] == [(bob.uri, [bob.uri])] * 2, log)
        clean(focus, alice, bob, carol)
    finally:
        await teardown(focus, alice, bob, carol)


# ------------------------------------------------------------------ conference state

async def test_conference_subscription(env):
    focus, (alice, bob, carol) = await setup("alice", "bob", "carol")
    room = focus.room_uri("chat")
    hop = ("127.0.0.1", focus.port)
    try:
        a = await join(focus, alice)
        check(await a.send_nickname("Alice") == 200, "nickname")
        sub = await bob.subscribe(room, next_hop=hop)
        check(sub.status == 200 and sub.expires == 600, f"{sub.status} {sub.expires}")
        n = await sub.wait_notify(timeout=3)
        check(n.conf["state"] == "full" and n.conf["version"] == 1, n.conf)
        check(n.get("subscription-state").startswith("active;expires="), n.get("subscription-state"))
        check(sub.subject == "Welcome" and sub.conference[alice.uri]["display"] == "Alice"
              and sub.conference[alice.uri]["status"] == "connected"
              and sub.conference[alice.uri]["roles"] == ["moderator", "participant"], sub.conference)
        # a retransmitted NOTIFY is answered again, not taken as a new one
        before = len(bob.sip_log)
        bob._datagram(n.encode(), n.source)
        check(len(sub.notifies) == 1 and len(bob.sip_log) == before + 2, "retransmission absorbed")
        await asyncio.sleep(0.1)    # the focus, whose transaction is over, takes the 200 as stray
        focus.ua.sip_errors = [e for e in focus.ua.sip_errors if "matches no transaction" not in e]
        # bob joins, takes a nickname: partial documents
        b = await join(focus, bob)
        n = await sub.wait_notify(timeout=3)
        check(n.conf["state"] == "partial" and n.conf["version"] == 2 and bob.uri in sub.conference,
              (n.conf, sub.conference))
        check(await b.send_nickname("Bob") == 200, "nickname")
        n = await sub.wait_notify(timeout=3)
        check(n.conf["state"] == "partial" and n.conf["users"]["list"][0]["state"] == "partial", n.conf)
        check(sub.nickname_of(bob.uri) == "Bob" and sub.conference[bob.uri]["status"] == "connected",
              sub.conference)
        # subject
        await focus.set_subject("chat", "New <subject> & more")
        n = await sub.wait_notify(
            lambda n: (n.conf["description"] or {}).get("subject") == "New <subject> & more", 3)
        check(n.conf["state"] == "partial" and n.conf["description"]["state"] == "partial"
              and n.conf["users"] is None, n.conf)
        check(sub.subject == "New <subject> & more" and len(sub.conference) == 2, sub.conference)
        # carol comes and goes
        c = await join(focus, carol)
        await sub.wait_state(lambda s: carol.uri in s.conference, 3)
        check(await c.bye() == 200, "carol's BYE")
        await sub.wait_state(lambda s: carol.uri not in s.conference, 3)
        check(set(sub.conference) == {alice.uri, bob.uri} and sub.view.user_count == 2, sub.conference)
        versions = [x.conf["version"] for x in sub.notifies]
        check(versions == list(range(1, len(versions) + 1)), versions)
        # a second subscriber (carol, not in the room) sees the same state at once
        sub2 = await carol.subscribe(room, next_hop=hop, expires=0)
        check(sub2.status == 200, sub2.status)
        await sub2.wait_terminated(3)
        check(sub2.conference[bob.uri]["display"] == "Bob" and sub2.subject == "New <subject> & more",
              sub2.conference)
        # refresh: a full document again; unsubscribe: a terminated one
        check(await sub.refresh(300) == 200 and sub.expires == 300, sub.expires)
        n = await sub.wait_notify(lambda n: n.conf and n.conf["state"] == "full", 3)
        check(sub.conference[alice.uri]["display"] == "Alice", sub.conference)
        check(await sub.unsubscribe() == 200, "unsubscribe")
        await sub.wait_terminated(3)
        check(sub.terminated_reason == "timeout", sub.terminated_reason)
        await wait_for(lambda: not focus.watchers("chat"), 3, "the focus ends the subscription")
        # what is refused
        bad = await bob.subscribe("sip:nowhere@conf.example", next_hop=hop)
        check(bad.status == 404, bad.status)
        bad = await bob.subscribe(room, event="presence", next_hop=hop, accept="application/pidf+xml")
        check(bad.status == 489, bad.status)
        bad = await bob.subscribe(room, next_hop=hop, accept="application/pidf+xml")
        check(bad.status == 406, bad.status)
        clean(focus, alice, bob, carol)
    finally:
        await teardown(focus, alice, bob, carol)


# ------------------------------------------------------------------ focus controls

async def test_kick_and_destroy(env):
    focus, (alice, bob) = await setup("alice", "bob")
    try:
        a, b = await join(focus, alice), await join(focus, bob)
        sub = await bob.subscribe(focus.room_uri("chat"), next_hop=("127.0.0.1", focus.port))
        await sub.wait_state(lambda s: alice.uri in s.conference and bob.uri in s.conference, 3)
        check(await focus.kick("chat", alice.uri, reason="Be nice") == 200, "BYE answered")
        bye = await a.wait_bye(3)
        check(bye is not None and a.bye_reason == 'SIP;cause=200;text="Be nice"', a.bye_reason)
        await asyncio.wait_for(a.msrp.closed.wait(), 3)
        await sub.wait_state(lambda s: alice.uri not in s.conference, 3)
        check([p.uri for p in focus.participants("chat")] == [bob.uri], focus.participants("chat"))
        await b.send_cpim("anyone left?")
        await asyncio.sleep(0.2)
        check(focus.messages("chat")[-1]["recipients"] == [], focus.messages("chat"))
        # destroying the room ends the calls and the subscriptions
        await focus.destroy("chat")
        await b.wait_bye(3)
        check("destroyed" in (b.bye_reason or ""), b.bye_reason)
        await sub.wait_terminated(3)
        check(sub.terminated_reason == "noresource", sub.terminated_reason)
        c = await bob.invite("sip:chat@conf.example", next_hop=("127.0.0.1", focus.port))
        check(c.status == 404, f"the room is gone: {c.status}")
        clean(focus, alice, bob)
    finally:
        await teardown(focus, alice, bob)
