"""test_groupchat_muc.py - SIP users in XMPP MUC rooms through the gateway (RFC 7702 sections 6-7).

The XMPP server's own MUC (Prosody's mod_muc, ejabberd's mod_muc) holds the rooms; slixmpp
clients are its XMPP occupants; msrp_ua.py (SIP + MSRP written from the RFCs, with an RFC 4575
conference-info parser of its own) is the SIP user, who INVITEs sip:<room>@<MUC service> and
finds the gateway acting as the room's conference focus (RFC 7701)."""

import asyncio
import xml.etree.ElementTree as ET

from slixmpp.xmlstream.handler import Callback
from slixmpp.xmlstream.matcher import MatchXPath

from harness import (MUC_DOMAIN, SIP_DOMAIN, XMPP_DOMAIN, check, error_condition, free_port,
                     gateway_xml, wait_for)
from msrp_ua import MsrpUA

XMPP_SERVERS = ("prosody", "ejabberd")
USERS = ("alice", "carol")
NS_MUC = "http://jabber.org/protocol/muc"
NS_MUC_USER = "http://jabber.org/protocol/muc#user"
NS_MUC_OWNER = "http://jabber.org/protocol/muc#owner"
NS_MUC_ADMIN = "http://jabber.org/protocol/muc#admin"


def room_jid(name):
    return f"{name}@{MUC_DOMAIN}"


def room_uri(name):
    return f"sip:{name}@{MUC_DOMAIN}"


def groupchat_xml(env, groupchat_attrs="", peer_groupchat="yes", services=(MUC_DOMAIN,)):
    xml = gateway_xml(env)
    muc = "".join(f'<muc service="{s}"/>' for s in services)
    xml = xml.replace("</gateway>", f"<groupchat {groupchat_attrs}>{muc}</groupchat>\n</gateway>")
    return xml.replace(f'<peer name="sipnet" domain="{SIP_DOMAIN}"',
                       f'<peer name="sipnet" domain="{SIP_DOMAIN}" groupchat="{peer_groupchat}"', 1)


class Occupant:
    """An XMPP client's view of MUC rooms: every presence and message it received."""

    def __init__(self, client):
        self.c = client
        self.presences = []
        self.messages = []
        client.register_handler(Callback("muc presence", MatchXPath("{jabber:client}presence"),
                                         self.presences.append))
        client.register_handler(Callback("muc message", MatchXPath("{jabber:client}message"),
                                         self.messages.append))

    async def join(self, room, nick, create=True):
        self.c.send_raw_xml(f"<presence to='{room_jid(room)}/{nick}'><x xmlns='{NS_MUC}'/></presence>")
        p = await self.wait_presence(lambda p: str(p["from"]) == f"{room_jid(room)}/{nick}" and
                                     (self.status(p, 110) or p["type"] == "error"), 10)
        check(p["type"] != "error", f"{self.c.boundjid} joins {room}: {p}")
        if create and self.status(p, 201):
            # an instant room (XEP-0045 10.1.2): the owner accepts the default configuration
            self.c.send_raw_xml(f"<iq type='set' id='cfg{room}' to='{room_jid(room)}'>"
                                f"<query xmlns='{NS_MUC_OWNER}'><x xmlns='jabber:x:data' type='submit'/>"
                                f"</query></iq>")
            await asyncio.sleep(0.3)
        return p

    @staticmethod
    def status(p, code):
        x = p.xml.find(f"{{{NS_MUC_USER}}}x")
        return x is not None and any(s.get("code") == str(code) for s in x.findall(f"{{{NS_MUC_USER}}}status"))

    async def wait_presence(self, pred, timeout=5.0, what="a presence"):
        await wait_for(lambda: any(pred(p) for p in self.presences), timeout, what)
        return next(p for p in self.presences if pred(p))

    async def wait_message(self, pred, timeout=5.0, what="a message"):
        await wait_for(lambda: any(pred(m) for m in self.messages), timeout, what)
        return next(m for m in self.messages if pred(m))

    def say(self, room, text):
        self.c.send_message(mto=room_jid(room), mbody=text, mtype="groupchat")

    def iq(self, room, xml):
        self.c.send_raw_xml(f"<iq type='set' id='adm{len(self.presences)}' to='{room_jid(room)}'>{xml}</iq>")


async def setup(env, **kw):
    gw = await env.gateway(groupchat_xml(env, **kw))
    alice = Occupant(await env.client("alice"))
    ua = await MsrpUA("bob", local_port=env.peer_sip_port, domain=SIP_DOMAIN).start()
    env.msrp_uas = getattr(env, "msrp_uas", []) + [ua]
    return gw, alice, ua


async def teardown(env):
    uas, env.msrp_uas = getattr(env, "msrp_uas", []), []
    for ua in uas:
        await ua.stop()
    for ua in uas:
        ua.check_clean()


async def sip_join(env, ua, room, nick=None, expect=200):
    call = await ua.invite(room_uri(room), next_hop=("127.0.0.1", env.gw_sip_port))
    check(call.status == expect, f"INVITE {room_uri(room)} answered {call.status} {call.reason}")
    if expect != 200:
        return call
    check("nickname" in (call.chatroom or []), f"a=chatroom from the focus: {call.chatroom}")
    await call.wait_connected(5)
    if nick:
        status = await call.send_nickname(nick)
        check(status == 200, f"NICKNAME {nick}: {status}")
    return call


def cpim_nick(m):
    return m.cpim_from_display


async def test_sip_user_joins_and_talks(env):
    try:
        gw, alice, ua = await setup(env)
        await alice.join("lobby", "Alice")
        call = await sip_join(env, ua, "lobby", nick="Bob")
        # the XMPP occupants see the SIP user under the nickname it asked for
        await alice.wait_presence(lambda p: str(p["from"]) == f"{room_jid('lobby')}/Bob" and
                                  p["type"] != "unavailable", 5, "Bob in the room")
        # room -> SIP: CPIM From is the sender's occupant URI, To the room
        alice.say("lobby", "hello Bob, from the MUC")
        m = await call.wait_message(lambda x: x.text == "hello Bob, from the MUC", timeout=5)
        check(m.content_type.startswith("message/cpim"), m.content_type)
        check(cpim_nick(m) == "Alice", f"CPIM From display: {m.cpim_from}")
        check(f"sip:lobby@{MUC_DOMAIN};gr=Alice" in m.cpim_from, f"CPIM From: {m.cpim_from}")
        check(room_uri("lobby") in m.cpim_to, f"CPIM To: {m.cpim_to}")
        # SIP -> room, seen by the XMPP occupant as from lobby/Bob
        await call.send_text("hi Alice, from SIP")
        g = await alice.wait_message(lambda x: x["body"] == "hi Alice, from SIP", 5)
        check(str(g["from"]) == f"{room_jid('lobby')}/Bob" and g["type"] == "groupchat", f"{g}")
        # the MUC's echo of Bob's own message is not sent back to Bob (an MSRP focus does not echo)
        await asyncio.sleep(0.5)
        check(not [x for x in call.received_messages if x.text == "hi Alice, from SIP"],
              "Bob's own message came back to him")
        # the occupant list through conference-info (RFC 4575)
        sub = await ua.subscribe(room_uri("lobby"), next_hop=("127.0.0.1", env.gw_sip_port))
        check(sub.status == 200, f"SUBSCRIBE conference: {sub.status}")
        await sub.wait_notify(lambda n: True, 5)
        names = sorted(u["display"] for u in sub.conference.values())
        check(names == ["Alice", "Bob"], f"conference users: {sub.conference}")
        # carol joins: a partial NOTIFY adds her
        carol = Occupant(await env.client("carol"))
        await carol.join("lobby", "Carol")
        await sub.wait_state(lambda s: any(u["display"] == "Carol" for u in s.conference.values()), 5)
        # carol leaves: deleted
        carol.c.send_raw_xml(f"<presence type='unavailable' to='{room_jid('lobby')}/Carol'/>")
        await sub.wait_state(lambda s: not any(u["display"] == "Carol" for u in s.conference.values()), 5)
        await sub.unsubscribe()
        # Bob leaves with BYE: the XMPP occupants see him go
        await call.bye()
        await alice.wait_presence(lambda p: str(p["from"]) == f"{room_jid('lobby')}/Bob" and
                                  p["type"] == "unavailable", 5, "Bob left")
    finally:
        await teardown(env)


async def test_private_messages_both_ways(env):
    try:
        gw, alice, ua = await setup(env)
        await alice.join("priv", "Alice")
        call = await sip_join(env, ua, "priv", nick="Bob")
        await alice.wait_presence(lambda p: str(p["from"]) == f"{room_jid('priv')}/Bob", 5)
        # XMPP occupant -> SIP user privately: CPIM To is the SIP user, not the room
        alice.c.send_message(mto=f"{room_jid('priv')}/Bob", mbody="just for you", mtype="chat")
        m = await call.wait_message(lambda x: x.text == "just for you", timeout=5)
        check(room_uri("priv") not in (m.cpim_to or ""), f"private: CPIM To {m.cpim_to}")
        check(cpim_nick(m) == "Alice", f"from Alice: {m.cpim_from}")
        # SIP user -> XMPP occupant privately: CPIM To is her occupant URI
        await call.send_cpim("secret back", to=f"sip:priv@{MUC_DOMAIN};gr=Alice",
                             from_=f"sip:bob@{SIP_DOMAIN}")
        g = await alice.wait_message(lambda x: x["body"] == "secret back", 5)
        check(g["type"] == "chat" and str(g["from"]) == f"{room_jid('priv')}/Bob", f"{g}")
        # a private message to nobody in the room: refused, not dropped
        sent = await call.send_cpim("to nobody", to=f"sip:priv@{MUC_DOMAIN};gr=Nobody",
                                    from_=f"sip:bob@{SIP_DOMAIN}")
        await wait_for(lambda: sent.statuses, 5, "an answer")
        check(sent.statuses[-1] >= 400, f"private to nobody: {sent.statuses}")
    finally:
        await teardown(env)


async def test_subject_and_nickname_conflict(env):
    try:
        gw, alice, ua = await setup(env)
        await alice.join("topic", "Alice")
        call = await sip_join(env, ua, "topic", nick="Bob")
        sub = await ua.subscribe(room_uri("topic"), next_hop=("127.0.0.1", env.gw_sip_port))
        await sub.wait_notify(lambda n: True, 5)
        alice.c.send_raw_xml(f"<message type='groupchat' to='{room_jid('topic')}'>"
                             f"<subject>Lunch plans</subject></message>")
        await sub.wait_state(lambda s: s.subject == "Lunch plans", 5)
        m = await call.wait_message(lambda x: "Lunch plans" in x.text, timeout=5)
        check("Lunch plans" in (m.cpim.get("Subject") if hasattr(m, "cpim") and m.cpim else "Lunch plans"),
              f"subject message: {m}")
        # the SIP user sets the subject (a CPIM Subject without text), once a moderator
        alice.iq("topic", f"<query xmlns='{NS_MUC_ADMIN}'><item nick='Bob' role='moderator'/></query>")
        await alice.wait_presence(lambda p: str(p["from"]) == f"{room_jid('topic')}/Bob" and
                                  'role="moderator"' in str(p), 5, "Bob a moderator")
        await call.send_cpim("", headers=["Subject: Dinner instead"])
        s2 = await alice.wait_message(lambda x: x["subject"] == "Dinner instead", 5, "Bob's subject")
        check(str(s2["from"]) == f"{room_jid('topic')}/Bob", f"subject from Bob: {s2}")
        await sub.wait_state(lambda s: s.subject == "Dinner instead", 5)
        # a nickname another occupant holds: 425 (RFC 7701)
        status = await call.send_nickname("Alice")
        check(status == 425, f"NICKNAME Alice: {status}")
        # a free one: renamed, seen by the XMPP side as a nick change
        status = await call.send_nickname("Robert")
        check(status == 200, f"NICKNAME Robert: {status}")
        await alice.wait_presence(lambda p: str(p["from"]) == f"{room_jid('topic')}/Robert", 5)
        await sub.wait_state(lambda s: any(u["display"] == "Robert" for u in s.conference.values()) and
                             not any(u["display"] == "Bob" for u in s.conference.values()), 5)
    finally:
        await teardown(env)


async def test_kick_and_destroy_end_the_call(env):
    try:
        gw, alice, ua = await setup(env)
        await alice.join("strict", "Alice")
        call = await sip_join(env, ua, "strict", nick="Bob")
        await alice.wait_presence(lambda p: str(p["from"]) == f"{room_jid('strict')}/Bob", 5)
        alice.iq("strict", f"<query xmlns='{NS_MUC_ADMIN}'><item nick='Bob' role='none'>"
                           f"<reason>be nice</reason></item></query>")
        await call.wait_bye(5)
        check("kicked" in (call.bye_reason or ""), f"BYE Reason: {call.bye_reason}")
        # a second call to another room, destroyed by its owner
        ua2 = await MsrpUA("dave", domain=SIP_DOMAIN).start()
        env.msrp_uas.append(ua2)
        await alice.join("doomed", "Alice")
        call2 = await sip_join(env, ua2, "doomed", nick="Dave")
        await alice.wait_presence(lambda p: str(p["from"]) == f"{room_jid('doomed')}/Dave", 5)
        alice.iq("doomed", f"<query xmlns='{NS_MUC_OWNER}'><destroy><reason>closing</reason></destroy></query>")
        await call2.wait_bye(5)
        check("destroyed" in (call2.bye_reason or ""), f"BYE Reason: {call2.bye_reason}")
    finally:
        await teardown(env)


async def test_join_refused_maps_to_sip_status(env):
    try:
        gw, alice, ua = await setup(env)
        await alice.join("club", "Alice")
        # make the room members-only: a non-member's join is refused (registration-required)
        alice.c.send_raw_xml(
            f"<iq type='set' id='mo' to='{room_jid('club')}'><query xmlns='{NS_MUC_OWNER}'>"
            f"<x xmlns='jabber:x:data' type='submit'>"
            f"<field var='FORM_TYPE'><value>http://jabber.org/protocol/muc#roomconfig</value></field>"
            f"<field var='muc#roomconfig_membersonly'><value>1</value></field></x></query></iq>")
        await asyncio.sleep(0.5)
        call = await sip_join(env, ua, "club", expect=403)
        check(call.status == 403, f"members-only: {call.status}")
        # a peer without groupchat is refused before anything reaches the MUC
    finally:
        await teardown(env)


async def test_peer_without_groupchat_is_refused(env):
    try:
        gw = await env.gateway(groupchat_xml(env, peer_groupchat="no"))
        ua = await MsrpUA("bob", local_port=env.peer_sip_port, domain=SIP_DOMAIN).start()
        env.msrp_uas = [ua]
        call = await ua.invite(room_uri("lobby"), next_hop=("127.0.0.1", env.gw_sip_port))
        check(call.status == 403, f"groupchat off for the peer: {call.status} {call.reason}")
    finally:
        await teardown(env)


async def test_mixed_room_each_message_once(env):
    """Two XMPP users in the MUC and two SIP users through the gateway: every message reaches
    every other occupant exactly once, whichever side wrote it."""
    try:
        gw, alice, bob = await setup(env)
        carol = Occupant(await env.client("carol"))
        dave = await MsrpUA("dave", domain=SIP_DOMAIN).start()
        env.msrp_uas.append(dave)
        await alice.join("mixed", "Alice")
        await carol.join("mixed", "Carol")
        bcall = await sip_join(env, bob, "mixed", nick="Bob")
        dcall = await sip_join(env, dave, "mixed", nick="Dave")
        for occ in (alice, carol):
            await occ.wait_presence(lambda p: str(p["from"]) == f"{room_jid('mixed')}/Dave", 5)
        alice.say("mixed", "m1 from Alice")
        carol.say("mixed", "m2 from Carol")
        await bcall.send_text("m3 from Bob")
        await dcall.send_text("m4 from Dave")
        texts = {"m1 from Alice": "Alice", "m2 from Carol": "Carol", "m3 from Bob": "Bob",
                 "m4 from Dave": "Dave"}
        await asyncio.sleep(1.5)
        for who, got in (("Alice", [m["body"] for m in alice.messages if m["body"]]),
                         ("Carol", [m["body"] for m in carol.messages if m["body"]]),
                         ("Bob", [m.text for m in bcall.received_messages]),
                         ("Dave", [m.text for m in dcall.received_messages])):
            for text, author in texts.items():
                n = got.count(text)
                # an XMPP occupant gets the MUC's echo of its own message; a SIP one does not
                want = 1 if author != who or who in ("Alice", "Carol") else 0
                check(n == want, f"{who} saw {text!r} {n} times (want {want}): {got}")
        # the SIP users see the authors' nicknames
        m = next(m for m in dcall.received_messages if m.text == "m3 from Bob")
        check(cpim_nick(m) == "Bob", f"Dave sees Bob's message from {m.cpim_from}")
    finally:
        await teardown(env)


async def test_history_is_delayed(env):
    """Room history the MUC replays on join reaches the SIP user with its original time
    (CPIM DateTime from the XMPP delay stamp)."""
    try:
        gw, alice, ua = await setup(env)
        await alice.join("hist", "Alice")
        alice.say("hist", "said before Bob came")
        await alice.wait_message(lambda m: m["body"] == "said before Bob came", 5)
        await asyncio.sleep(1.2)
        call = await sip_join(env, ua, "hist", nick="Bob")
        m = await call.wait_message(lambda x: x.text == "said before Bob came", timeout=5)
        check(m.cpim_datetime, f"a DateTime: {m.cpim_from}")
        alice.say("hist", "said now")
        now = await call.wait_message(lambda x: x.text == "said now", timeout=5)
        check(m.cpim_datetime < now.cpim_datetime or m.cpim_datetime[:19] <= now.cpim_datetime[:19],
              f"history {m.cpim_datetime} before live {now.cpim_datetime}")
    finally:
        await teardown(env)


async def test_refused_message_comes_back(env):
    """A moderated room where the SIP user has no voice: the MUC refuses its message, and the SIP
    user gets a failure REPORT instead of silence."""
    try:
        gw, alice, ua = await setup(env)
        await alice.join("quiet", "Alice")
        alice.c.send_raw_xml(
            f"<iq type='set' id='mod' to='{room_jid('quiet')}'><query xmlns='{NS_MUC_OWNER}'>"
            f"<x xmlns='jabber:x:data' type='submit'>"
            f"<field var='FORM_TYPE'><value>http://jabber.org/protocol/muc#roomconfig</value></field>"
            f"<field var='muc#roomconfig_moderatedroom'><value>1</value></field></x></query></iq>")
        await asyncio.sleep(0.5)
        call = await sip_join(env, ua, "quiet", nick="Bob")
        # a moderator revokes Bob's voice (ejabberd gives newcomers voice by default)
        await alice.wait_presence(lambda p: str(p["from"]) == f"{room_jid('quiet')}/Bob", 5)
        alice.iq("quiet", f"<query xmlns='{NS_MUC_ADMIN}'><item nick='Bob' role='visitor'/></query>")
        await alice.wait_presence(lambda p: str(p["from"]) == f"{room_jid('quiet')}/Bob" and
                                  'role="visitor"' in str(p), 5, "Bob a visitor")
        sent = await call.send_text("may I speak?", report=False)
        await wait_for(lambda: sent.reports, 5, "a failure REPORT")
        status = int(sent.reports[0].get("status").split()[1])
        check(status == 403, f"the REPORT's status: {sent.reports[0].get('status')}")
        check(not [m for m in alice.messages if m["body"] == "may I speak?"],
              "the visitor's message did not reach the room")
    finally:
        await teardown(env)


async def test_ban_and_room_limit(env):
    try:
        gw, alice, ua = await setup(env, groupchat_attrs='max-per-room="1"')
        await alice.join("bans", "Alice")
        call = await sip_join(env, ua, "bans", nick="Bob")
        # a second SIP user in the same room: over max-per-room
        dave = await MsrpUA("dave", domain=SIP_DOMAIN).start()
        env.msrp_uas.append(dave)
        refused = await sip_join(env, dave, "bans", expect=486)
        check(refused.status == 486, f"max-per-room: {refused.status}")
        # ban Bob (by his real JID, as an owner does): BYE with the reason
        bob_jid = next(str(p.xml.find(f"{{{NS_MUC_USER}}}x/{{{NS_MUC_USER}}}item").get("jid"))
                       for p in alice.presences if str(p["from"]) == f"{room_jid('bans')}/Bob")
        check(bob_jid.startswith(f"bob@{SIP_DOMAIN}/gc-"), f"Bob's real JID in the room: {bob_jid}")
        alice.iq("bans", f"<query xmlns='{NS_MUC_ADMIN}'><item jid='{bob_jid.split('/')[0]}' "
                         f"affiliation='outcast'><reason>go away</reason></item></query>")
        await call.wait_bye(5)
        check("banned" in (call.bye_reason or ""), f"BYE Reason: {call.bye_reason}")
        # banned: joining again is refused with 403
        again = await sip_join(env, ua, "bans", expect=403)
        check(again.status == 403, f"banned rejoin: {again.status}")
    finally:
        await teardown(env)


async def test_malformed_nickname_and_shutdown(env):
    try:
        gw, alice, ua = await setup(env)
        await alice.join("names", "Alice")
        call = await sip_join(env, ua, "names", nick="Bob")
        check(await call.send_nickname('"unterminated', raw=True) == 424, "malformed Use-Nickname: 424")
        check(await call.send_nickname("") == 424, "empty nickname: 424")
        # the gateway stops: the SIP user gets a BYE, the room sees Bob leave
        await gw.stop()
        await call.wait_bye(10)
        await alice.wait_presence(lambda p: str(p["from"]) == f"{room_jid('names')}/Bob" and
                                  p["type"] == "unavailable", 5, "Bob left with the gateway")
    finally:
        await teardown(env)


async def test_hundred_sip_occupants(env):
    """One room, 100 SIP users through one component link: every join, and a message from each
    side reaches every occupant once."""
    n = 100
    try:
        gw = await env.gateway(groupchat_xml(env, groupchat_attrs='max-per-room="200"').replace(
            f'<sessions msrp-port="{env.gw_msrp_port}"/>',
            f'<sessions msrp-port="{env.gw_msrp_port}" max-total="300"/>'))
        alice = Occupant(await env.client("alice"))
        await alice.join("crowd", "Alice")
        uas = [await MsrpUA(f"u{i}", domain=SIP_DOMAIN).start() for i in range(n)]
        env.msrp_uas = uas
        calls = []
        for batch in range(0, n, 10):
            calls += await asyncio.gather(*(sip_join(env, ua, "crowd") for ua in uas[batch:batch + 10]))
        await wait_for(lambda: len({str(p["from"]) for p in alice.presences
                                    if str(p["from"]).startswith(room_jid("crowd")) and
                                    p["type"] != "unavailable"}) >= n + 1, 20, "every occupant")
        alice.say("crowd", "hello crowd")
        for c in calls:
            await c.wait_message(lambda x: x.text == "hello crowd", timeout=10)
        await calls[7].send_text("from u7")
        await alice.wait_message(lambda m: m["body"] == "from u7", 5)
        await asyncio.sleep(1)
        for i, c in enumerate(calls):
            got = [m.text for m in c.received_messages]
            check(got.count("hello crowd") == 1, f"u{i}: {got.count('hello crowd')} copies")
            check(got.count("from u7") == (0 if i == 7 else 1), f"u{i} got 'from u7' {got.count('from u7')}x")
    finally:
        await teardown(env)


async def test_invitations_become_refer(env):
    """A MUC's mediated invitation (XEP-0045 7.8.2) and a direct one (XEP-0249) of a SIP user
    become a REFER asking the user to INVITE the room (RFC 4579 5.5); a refusal comes back as
    the invitee's decline, or as an error."""
    try:
        gw, alice, ua = await setup(env)
        await alice.join("party", "Alice")
        alice.c.send_raw_xml(f"<message to='{room_jid('party')}'><x xmlns='{NS_MUC_USER}'>"
                             f"<invite to='bob@{SIP_DOMAIN}'><reason>come over</reason></invite></x></message>")
        await wait_for(lambda: ua.refers, 5, "the REFER")
        r = ua.refers[0]
        check(room_uri("party") in r.get("refer-to"), f"Refer-To: {r.get('refer-to')}")
        # From: the inviter, as the room names her (her JID, or her occupant URI)
        check(f"sip:alice@{XMPP_DOMAIN}" in r.get("from") or
              f"{room_uri('party')};gr=Alice" in r.get("from"), f"From the inviter: {r.get('from')}")
        check((r.get("subject") or "") == "come over", f"the reason: {r.get('subject')}")
        check((r.get("refer-sub") or "").lower() == "false", "no implicit subscription")
        # bob follows the invitation
        await sip_join(env, ua, "party", nick="Bob")
        await alice.wait_presence(lambda p: str(p["from"]) == f"{room_jid('party')}/Bob", 5)
        # dave refuses: alice hears the decline
        dave = await MsrpUA("dave", local_port=None, domain=SIP_DOMAIN).start()
        env.msrp_uas.append(dave)
        ua.on_refer = 603
        alice.c.send_raw_xml(f"<message to='{room_jid('party')}'><x xmlns='{NS_MUC_USER}'>"
                             f"<invite to='bob@{SIP_DOMAIN}'/></x></message>")
        d = await alice.wait_message(lambda m: m.xml.find(f"{{{NS_MUC_USER}}}x/{{{NS_MUC_USER}}}decline")
                                     is not None, 5, "the decline")
        check("603" in str(d), f"decline reason: {d}")
        # a direct invitation from alice: REFER from alice; refused -> an error to alice
        n = len(ua.refers)
        ua.on_refer = 202
        alice.c.send_raw_xml(f"<message to='bob@{SIP_DOMAIN}' id='di1'><x xmlns='jabber:x:conference' "
                             f"jid='{room_jid('party')}' reason='see you there'/></message>")
        await wait_for(lambda: len(ua.refers) > n, 5, "the direct invitation's REFER")
        check(room_uri("party") in ua.refers[-1].get("refer-to"), f"{ua.refers[-1].get('refer-to')}")
        ua.on_refer = 403
        alice.c.send_raw_xml(f"<message to='bob@{SIP_DOMAIN}' id='di2'><x xmlns='jabber:x:conference' "
                             f"jid='{room_jid('party')}'/></message>")
        e = await alice.wait_message(lambda m: m["type"] == "error" and m["id"] == "di2", 5)
        check(error_condition(e) == "forbidden", f"{e}")
    finally:
        await teardown(env)
