"""test_groupchat_focus.py - XMPP users in SIP conference rooms through the gateway (RFC 7702
sections 4-5).

conf_focus.py is the SIP network's conference focus and MSRP switch, written from RFC 4975,
RFC 7701 and RFC 4575 without sharing code with the gateway; it listens where the gateway routes
the peer network.  slixmpp clients join room@sip.example/nick as MUC rooms; an msrp_ua.py user
of the focus's own is the SIP participant, so that messages cross both ways."""

import asyncio

from conf_focus import ConfFocus
from harness import SIP_DOMAIN, XMPP_DOMAIN, check, default_peer, error_condition, gateway_xml, wait_for
from msrp_ua import MsrpUA
from test_groupchat_muc import NS_MUC, NS_MUC_USER, Occupant

XMPP_SERVERS = ("prosody", "ejabberd")
USERS = ("alice", "carol")
GW_DOMAIN = "sip-gw." + XMPP_DOMAIN
COMPONENTS = (SIP_DOMAIN, GW_DOMAIN)
ALICE_URI = f"sip:alice@{XMPP_DOMAIN}"
ROOMS = {
    "chat": {"subject": "Welcome to chat"},
    "closed": {"refuse": 403},
    "club": {"members": [f"sip:carol@{XMPP_DOMAIN}"]},
}


def room_jid(name):
    return f"{name}@{SIP_DOMAIN}"


def focus_xml(env, peer_groupchat="yes", sip_attrs=""):
    xml = gateway_xml(env, sip_attrs=sip_attrs)
    xml = xml.replace("</gateway>", "<groupchat/>\n</gateway>")
    return xml.replace(f'<peer name="sipnet" domain="{SIP_DOMAIN}"',
                       f'<peer name="sipnet" domain="{SIP_DOMAIN}" groupchat="{peer_groupchat}"', 1)


async def setup(env, **kw):
    focus = await ConfFocus(domain=SIP_DOMAIN, rooms=ROOMS, local_port=env.peer_sip_port).start()
    env.focus = focus
    gw = await env.gateway(focus_xml(env, **kw))
    alice = Occupant(await env.client("alice"))
    return gw, focus, alice


async def teardown(env):
    for ua in getattr(env, "focus_uas", []):
        await ua.stop()
    focus = getattr(env, "focus", None)
    if focus:
        await focus.stop()
    env.focus_uas, env.focus = [], None
    if focus:
        focus.check_clean()


async def sip_participant(env, focus, name, room="chat"):
    """A SIP user of the focus's own network, in the room with a nickname."""
    ua = await MsrpUA(name.lower(), domain=SIP_DOMAIN).start()
    env.focus_uas = getattr(env, "focus_uas", []) + [ua]
    call = await ua.invite(focus.room_uri(room), next_hop=("127.0.0.1", focus.port))
    check(call.status == 200, f"{name} joins {room}: {call.status}")
    await call.wait_connected()
    check(await call.send_nickname(name) == 200, f"{name}'s nickname")
    await focus.wait_participants(room, lambda ps: any(p.uri == ua.uri and p.state == "joined" for p in ps))
    return ua, call


async def xmpp_join(occ, room, nick, timeout=10):
    """A MUC join (XEP-0045 7.2.2); returns the self-presence (110) or the error presence."""
    occ.c.send_raw_xml(f"<presence to='{room_jid(room)}/{nick}'><x xmlns='{NS_MUC}'/></presence>")
    return await occ.wait_presence(lambda p: str(p["from"]).startswith(room_jid(room)) and
                                   (Occupant.status(p, 110) or p["type"] == "error"), timeout,
                                   f"joining {room}")


async def test_xmpp_user_joins_sip_room(env):
    try:
        gw, focus, alice = await setup(env)
        bob, bcall = await sip_participant(env, focus, "Bob")
        p = await xmpp_join(alice, "chat", "Alice")
        check(p["type"] != "error", f"join: {p}")
        # the occupants before the self-presence, then the subject (XEP-0045 7.2.3, 7.2.15)
        i_bob = next(i for i, x in enumerate(alice.presences) if str(x["from"]) == f"{room_jid('chat')}/Bob")
        i_me = alice.presences.index(p)
        check(i_bob < i_me, "Bob's presence comes before Alice's own (110)")
        subj = await alice.wait_message(lambda m: m.xml.find("{jabber:client}subject") is not None, 5)
        check(subj["subject"] == "Welcome to chat", f"subject: {subj}")
        check(any(x.uri == ALICE_URI and x.nickname == "Alice" for x in focus.participants("chat")),
              f"the focus knows Alice by her nickname: {focus.participants('chat')}")
        # SIP -> XMPP: from room/Bob, groupchat
        await bcall.send_text("hello Alice")
        m = await alice.wait_message(lambda m: m["body"] == "hello Alice", 5)
        check(str(m["from"]) == f"{room_jid('chat')}/Bob" and m["type"] == "groupchat", f"{m}")
        # XMPP -> SIP: Bob sees it from Alice's URI with her nickname; Alice gets the MUC echo
        alice.c.send_message(mto=room_jid("chat"), mbody="hi Bob", mtype="groupchat")
        got = await bcall.wait_message(lambda x: x.text == "hi Bob", timeout=5)
        check(got.cpim_from and ALICE_URI in got.cpim_from, f"CPIM From: {got.cpim_from}")
        echo = await alice.wait_message(lambda m: m["body"] == "hi Bob", 5)
        check(str(echo["from"]) == f"{room_jid('chat')}/Alice", f"echo: {echo}")
        # private both ways (RFC 7701 CPIM To = one participant)
        alice.c.send_message(mto=f"{room_jid('chat')}/Bob", mbody="psst Bob", mtype="chat")
        pm = await bcall.wait_message(lambda x: x.text == "psst Bob", timeout=5)
        check(pm.cpim_to and bob.uri in pm.cpim_to, f"private To: {pm.cpim_to}")
        await bcall.send_cpim("psst Alice", to=ALICE_URI)
        pa = await alice.wait_message(lambda m: m["body"] == "psst Alice", 5)
        check(pa["type"] == "chat" and str(pa["from"]) == f"{room_jid('chat')}/Bob", f"{pa}")
        # the focus changes the subject
        await focus.set_subject("chat", "Now with news")
        await alice.wait_message(lambda m: m["subject"] == "Now with news", 5)
        # a second SIP participant joins and leaves: presence both times
        dave, dcall = await sip_participant(env, focus, "Dave")
        await alice.wait_presence(lambda x: str(x["from"]) == f"{room_jid('chat')}/Dave" and
                                  x["type"] != "unavailable", 5)
        await dcall.bye()
        await alice.wait_presence(lambda x: str(x["from"]) == f"{room_jid('chat')}/Dave" and
                                  x["type"] == "unavailable", 5)
        # a nick change: NICKNAME, then 303 + the new self-presence
        alice.c.send_raw_xml(f"<presence to='{room_jid('chat')}/Alicia'/>")
        await alice.wait_presence(lambda x: str(x["from"]) == f"{room_jid('chat')}/Alice" and
                                  x["type"] == "unavailable" and Occupant.status(x, 303), 5)
        await alice.wait_presence(lambda x: str(x["from"]) == f"{room_jid('chat')}/Alicia" and
                                  Occupant.status(x, 110), 5)
        await wait_for(lambda: any(x.uri == ALICE_URI and x.nickname == "Alicia"
                                   for x in focus.participants("chat")), 5, "renamed at the focus")
        # leaving: BYE at the focus, unavailable self-presence
        alice.c.send_raw_xml(f"<presence type='unavailable' to='{room_jid('chat')}/Alicia'/>")
        await alice.wait_presence(lambda x: str(x["from"]) == f"{room_jid('chat')}/Alicia" and
                                  x["type"] == "unavailable" and Occupant.status(x, 110), 5)
        await wait_for(lambda: not any(x.uri == ALICE_URI and x.state == "joined"
                                       for x in focus.participants("chat")), 5, "Alice gone at the focus")
    finally:
        await teardown(env)


async def test_join_errors(env):
    try:
        gw, focus, alice = await setup(env)
        # refused by the focus (403) -> forbidden
        p = await xmpp_join(alice, "closed", "Alice")
        check(p["type"] == "error" and error_condition(p) == "forbidden", f"closed room: {p}")
        # members only (403 for a non-member) -> forbidden
        p = await xmpp_join(alice, "club", "Alice")
        check(p["type"] == "error" and error_condition(p) == "forbidden", f"club: {p}")
        # no such room (404) -> item-not-found
        p = await xmpp_join(alice, "nowhere", "Alice")
        check(p["type"] == "error" and error_condition(p) == "item-not-found", f"no room: {p}")
        # a nickname another participant holds: NICKNAME 425 -> conflict
        bob, bcall = await sip_participant(env, focus, "Bob")
        p = await xmpp_join(alice, "chat", "Bob")
        check(p["type"] == "error" and error_condition(p) == "conflict", f"nick taken: {p}")
        await wait_for(lambda: not any(x.uri == ALICE_URI and x.state == "joined"
                                       for x in focus.participants("chat")), 5, "no Alice at the focus")
        # a groupchat message from a non-occupant: not-acceptable
        alice.c.send_message(mto=room_jid("chat"), mbody="let me in", mtype="groupchat")
        e = await alice.wait_message(lambda m: m["type"] == "error", 5)
        check(error_condition(e) == "not-acceptable", f"{e}")
    finally:
        await teardown(env)


async def test_kicked_by_the_focus(env):
    try:
        gw, focus, alice = await setup(env)
        bob, bcall = await sip_participant(env, focus, "Bob")
        p = await xmpp_join(alice, "chat", "Alice")
        check(p["type"] != "error", f"join: {p}")
        await focus.kick("chat", ALICE_URI, reason="spamming")
        k = await alice.wait_presence(lambda x: str(x["from"]) == f"{room_jid('chat')}/Alice" and
                                      x["type"] == "unavailable", 5, "kicked")
        check(Occupant.status(k, 307) and Occupant.status(k, 110), f"307 + 110: {k}")
        check("spamming" in str(k), f"the reason: {k}")
        # after the kick, a message to the room is refused
        alice.c.send_message(mto=room_jid("chat"), mbody="still here?", mtype="groupchat")
        e = await alice.wait_message(lambda m: m["type"] == "error", 5)
        check(error_condition(e) == "not-acceptable", f"{e}")
    finally:
        await teardown(env)


async def test_focus_unreachable(env):
    """The peer's route goes nowhere: after the INVITE times out, remote-server-not-found."""
    try:
        gw = await env.gateway(focus_xml(env, sip_attrs='t1="50ms"'))
        alice = Occupant(await env.client("alice"))
        p = await xmpp_join(alice, "chat", "Alice", timeout=15)
        check(p["type"] == "error" and error_condition(p) in ("remote-server-not-found",
                                                             "remote-server-timeout"), f"{p}")
    finally:
        await teardown(env)


async def test_peer_without_groupchat(env):
    try:
        gw, focus, alice = await setup(env, peer_groupchat="no")
        p = await xmpp_join(alice, "chat", "Alice")
        check(p["type"] == "error" and error_condition(p) == "service-unavailable", f"{p}")
        check(not focus.participants("chat"), "nothing reached the focus")
    finally:
        await teardown(env)


async def test_escaped_addressing(env):
    """In escaped mode a SIP room is chat\\40sip.example@<component>, its occupants
    chat\\40sip.example@<component>/nick."""
    try:
        focus = await ConfFocus(domain=SIP_DOMAIN, rooms=ROOMS, local_port=env.peer_sip_port).start()
        env.focus = focus
        peer = default_peer(env, extra=f'addressing="escaped" component="{GW_DOMAIN}" groupchat="yes"')
        await env.gateway(gateway_xml(env, peers=[peer]).replace("</gateway>", "<groupchat/></gateway>"))
        alice = Occupant(await env.client("alice"))
        bob, bcall = await sip_participant(env, focus, "Bob")
        room = f"chat\\40{SIP_DOMAIN}@{GW_DOMAIN}"
        alice.c.send_raw_xml(f"<presence to='{room}/Alice'><x xmlns='{NS_MUC}'/></presence>")
        p = await alice.wait_presence(lambda p: str(p["from"]) == f"{room}/Alice", 10, "joined")
        check(p["type"] != "error" and Occupant.status(p, 110), f"escaped join: {p}")
        await alice.wait_presence(lambda p: str(p["from"]) == f"{room}/Bob", 5, "Bob seen")
        await bcall.send_text("hello escaped Alice")
        m = await alice.wait_message(lambda m: m["body"] == "hello escaped Alice", 5)
        check(str(m["from"]) == f"{room}/Bob", f"{m}")
    finally:
        await teardown(env)


async def test_link_loss_ends_the_sessions(env):
    """The XMPP server goes away: the user cannot be in the room any more, so the gateway
    leaves it at the focus (BYE) rather than hold a session nobody reads."""
    try:
        gw, focus, alice = await setup(env)
        bob, bcall = await sip_participant(env, focus, "Bob")
        p = await xmpp_join(alice, "chat", "Alice")
        check(p["type"] != "error", f"join: {p}")
        await env.xmpp.kill()
        await wait_for(lambda: not any(x.uri == ALICE_URI and x.state == "joined"
                                       for x in focus.participants("chat")), 10, "Alice gone at the focus")
        await env.xmpp.start()
    finally:
        await teardown(env)


def conference_doc(room_uri, version, users, state="partial"):
    """A conference-info document by hand (RFC 4575), for what a broken or hostile focus sends."""
    body = "".join(f'<user entity="{e}" state="full"><display-text>{d}</display-text>'
                   f'<endpoint entity="{e}"><status>connected</status></endpoint></user>'
                   for e, d in users)
    return (f'<?xml version="1.0" encoding="UTF-8"?><conference-info xmlns="urn:ietf:params:xml:ns:'
            f'conference-info" entity="{room_uri}" state="{state}" version="{version}">'
            f'<users state="partial">{body}</users></conference-info>').encode()


async def test_hostile_conference_info(env):
    """A focus that sends garbage, nicknames no JID can carry, or a flood of users: each
    document is refused (400) or the bad entries skipped, and the room goes on."""
    try:
        gw, focus, alice = await setup(env)
        bob, bcall = await sip_participant(env, focus, "Bob")
        p = await xmpp_join(alice, "chat", "Alice")
        check(p["type"] != "error", f"join: {p}")
        w = next(w for w in focus.watchers("chat") if w.remote_uri == ALICE_URI)
        uri = focus.room_uri("chat")
        sent = len(w.sent)
        w.queue.put_nowait((lambda v: b"<conference-info xmlns='urn:ietf:params:xml:ns:conf", "active"))
        await wait_for(lambda: len(w.sent) > sent, 5, "the garbage NOTIFY answered")
        # refused by the gateway (logged) and answered 400 (RFC 6665 4.1.3)
        check(w.sent[-1][1] == 400, f"garbage conference-info: {w.sent[-1][1]}")
        await gw.wait_log("conference-info from .* refused", 5)
        # the room goes on
        await bcall.send_text("still talking")
        await alice.wait_message(lambda m: m["body"] == "still talking", 5)
        focus.violations = [v for v in focus.violations if "answered 400" not in v]
        # a second XMPP user shares the room's one subscription (one copy of its state)
        carol = Occupant(await env.client("carol"))
        p = await xmpp_join(carol, "chat", "Carol")
        check(p["type"] != "error", f"carol joins: {p}")
        # the 400 made the gateway refresh its subscription at once; the focus had removed it
        # (RFC 6665 4.2.2) and answered 481, so the gateway made it again as alice
        await wait_for(lambda: len([x for x in focus.watchers("chat") if x.state == "active"]) == 1,
                       5, "one conference subscription for the room")
        active = [x for x in focus.watchers("chat") if x.state == "active"]
        w = active[0]
        users = [("sip:long@sip.example", "x" * 2000), ("sip:ctl@sip.example", "a&#9;b"),
                 ("sip:empty@sip.example", ""), ("sip:ok@sip.example", "Fine/Name")]
        sent = len(w.sent)
        w.queue.put_nowait((lambda v: conference_doc(uri, v, users), "active"))
        await wait_for(lambda: len(w.sent) > sent, 5, "the odd NOTIFY answered")
        await carol.wait_presence(lambda x: str(x["from"]) == f"{room_jid('chat')}/Fine/Name", 5,
                                  "the usable nickname shown")
        check(not [x for x in carol.presences if "xxxxxxxxxx" in str(x["from"])],
              "a nickname too long for a JID is not shown")
        # a flood: more users than the room may hold is refused as a whole
        def flood_doc(v):   # 520 users (the bound is max-per-room + 1), kept small for UDP
            users = "".join(f'<user entity="sip:u{i}@s"/>' for i in range(520))
            return (f'<conference-info xmlns="urn:ietf:params:xml:ns:conference-info" '
                    f'entity="{uri}" state="partial" version="{v}"><users state="partial">'
                    f'{users}</users></conference-info>').encode()
        sent = len(w.sent)
        w.queue.put_nowait((flood_doc, "active"))
        await wait_for(lambda: len(w.sent) > sent, 5, "the flood answered")
        check(w.sent[-1][1] in (200, 400), f"520 users: {w.sent[-1][1]}")
        await gw.wait_log("conference-info from .* refused: .*more than 501 users", 5)
        check(not [x for x in carol.presences if str(x["from"]).endswith("/u1")], "no flood shown")
        focus.violations = [v for v in focus.violations if "answered 400" not in v]
    finally:
        await teardown(env)


async def test_shared_subscription_moves_when_its_user_leaves(env):
    """Two XMPP users in one SIP room share one conference subscription, made as the first;
    when she leaves, it is made again as the other, who keeps seeing joins."""
    try:
        gw, focus, alice = await setup(env)
        carol = Occupant(await env.client("carol"))
        for occ, nick in ((alice, "Alice"), (carol, "Carol")):
            p = await xmpp_join(occ, "chat", nick)
            check(p["type"] != "error", f"{nick} joins: {p}")
        await carol.wait_presence(lambda x: str(x["from"]) == f"{room_jid('chat')}/Alice", 5)
        active = [w for w in focus.watchers("chat") if w.state == "active"]
        check(len(active) == 1 and active[0].remote_uri == ALICE_URI, f"one, as alice: {active}")
        alice.c.send_raw_xml(f"<presence type='unavailable' to='{room_jid('chat')}/Alice'/>")
        await carol.wait_presence(lambda x: str(x["from"]) == f"{room_jid('chat')}/Alice" and
                                  x["type"] == "unavailable", 5, "alice gone for carol")
        await wait_for(lambda: [w for w in focus.watchers("chat") if w.state == "active" and
                                w.remote_uri == f"sip:carol@{XMPP_DOMAIN}"], 5, "re-subscribed as carol")
        dave, dcall = await sip_participant(env, focus, "Dave")
        await carol.wait_presence(lambda x: str(x["from"]) == f"{room_jid('chat')}/Dave", 5)
    finally:
        await teardown(env)
