"""test_hub.py - the federation hub (issue 14): two peer networks at once through one gateway,
sip.example ("neta", routed to env.peer_sip_port) and sip2.example ("netb", its own route port),
each with its own <peer services> and <limits>, and the audit log of every cross-domain SIP
transaction.

Peers: Prosody with slixmpp clients on the XMPP side; on the SIP side each peer network's route
is a small recording UDP element (SipPeer, below) or a sipp presence server, and its users are
msrp_ua.py user agents (SIP + MSRP written from the RFCs) or SipPeer requests.

Prosody only: the harness's ejabberd has one component listener for every component domain, so
each connection carries the stanzas of both peers' domains and the gateway, seeing its probes
go to another connection, refuses to run as a second instance
(test_a_stanza_for_one_peer_on_another_peers_link_goes_nowhere plays such a server).
"""

import asyncio
import itertools
import json
import os
import signal

from slixmpp.xmlstream.handler import Callback
from slixmpp.xmlstream.matcher import MatchXPath

from harness import (MUC_DOMAIN, SIP_DOMAIN, XMPP_DOMAIN, check, error_condition, free_port,
                     gateway_xml, pidf, presence_server, wait_for)
from msrp_ua import MsrpUA, SipMessage, header_param, parse_sip
from test_lists import ListWatcher, check_rlmi_notify
from test_presence import expect_pres, pres, watcher

XMPP_SERVERS = ("prosody",)
SIP2_DOMAIN = "sip2.example"
COMPONENTS = (SIP_DOMAIN, SIP2_DOMAIN)
# one XMPP user (or two) per test: the server keeps rosters and pending subscriptions from one
# test to the next, and each test counts what reaches the peers
USERS = ("alice", "ivy", "kim", "lea", "max", "ned", "fay", "gus", "olga", "pam", "quin", "rae")
NS_STANZAS = "urn:ietf:params:xml:ns:xmpp-stanzas"
NS_MUC = "http://jabber.org/protocol/muc"
NS_MUC_OWNER = "http://jabber.org/protocol/muc#owner"
CT_TEXT = "text/plain;charset=UTF-8"


# ---------------------------------------------------------------- configuration

def user_uri(user):
    return f"sip:{user}@{XMPP_DOMAIN}"


def peer2_port(env):
    """The route port of netb (sip2.example), one per module's environment."""
    if not hasattr(env, "peer2_sip_port"):
        env.peer2_sip_port = free_port()
    return env.peer2_sip_port


def peer_xml(env, which, services="all", limits="", attrs=""):
    name, domain, port = (("neta", SIP_DOMAIN, env.peer_sip_port) if which == "a" else
                          ("netb", SIP2_DOMAIN, peer2_port(env)))
    limits = f"\n    <limits {limits}/>" if limits else ""
    return f"""<peer name="{name}" domain="{domain}" services="{services}" {attrs}>
    <route address="127.0.0.1" port="{port}" transport="udp" options-interval="0s"/>
    <trust address="127.0.0.1"/>{limits}
  </peer>
"""


def hub_xml(env, a_services="all", b_services="all", a_limits="", b_limits="", a_attrs="",
            b_attrs="", presence="", audit="", groupchat=False):
    xml = gateway_xml(env, peers=[peer_xml(env, "a", a_services, a_limits, a_attrs),
                                  peer_xml(env, "b", b_services, b_limits, b_attrs)])
    if presence:
        xml = xml.replace("<im ", presence + "\n  <im ", 1)
    extra = audit
    if groupchat:
        extra += f'<groupchat><muc service="{MUC_DOMAIN}"/></groupchat>'
    return xml.replace("</gateway>", extra + "\n</gateway>")


async def start_hub(env, xml):
    gw = await env.gateway(xml)
    await gw.wait_log(r"component \S+: connected", count=2, timeout=15)
    return gw


# ---------------------------------------------------------------- a peer network's SIP element

class SipPeer(asyncio.DatagramProtocol):
    """A SIP element of one peer network on UDP.  As a client it sends requests to the gateway as
    that network's users (each its own transaction, sent again every 500 ms until a final
    response); on a route port it records every request the gateway sends it and answers it
    with answers[request user] or answers[method] (default: 200 to a MESSAGE, 403 to anything
    else, so that no dialog is left behind)."""

    seq = itertools.count(1)

    def __init__(self, env, domain, port=0, answers=None):
        self.env, self.domain, self.port = env, domain, port
        self.answers = answers or {}
        self.requests = []
        self.pending = {}
        self.transport = None

    async def start(self):
        loop = asyncio.get_running_loop()
        self.transport, _ = await loop.create_datagram_endpoint(
            lambda: self, local_addr=("127.0.0.1", self.port))
        self.port = self.transport.get_extra_info("sockname")[1]
        self.env.hub_endpoints = getattr(self.env, "hub_endpoints", []) + [self]
        return self

    def close(self):
        if self.transport:
            self.transport.close()
            self.transport = None

    def datagram_received(self, data, addr):
        msg = parse_sip(data, addr)
        if msg.is_request:
            if msg.method == "ACK":
                return
            self.requests.append(msg)
            user = msg.uri.split(":", 1)[-1].split("@", 1)[0]
            status = self.answers.get(user, self.answers.get(
                msg.method, 200 if msg.method == "MESSAGE" else 403))
            to = msg.get("to")
            if ";tag=" not in to:
                to += ";tag=peer1"
            hdrs = [("Via", v) for v in msg.get_all("via")] + [
                ("From", msg.get("from")), ("To", to), ("Call-ID", msg.call_id),
                ("CSeq", msg.get("cseq"))]
            self.transport.sendto(SipMessage(f"SIP/2.0 {status} Test Answer", hdrs).encode(), addr)
            return
        fut = self.pending.get(header_param(msg.get_all("via")[0], "branch"))
        if msg.status >= 200 and fut and not fut.done():
            fut.set_result(msg)

    async def request(self, method, ruri, user, to=None, body=b"", ctype=None, headers=(),
                      call_id=None, timeout=10.0):
        """Sends one request to the gateway From sip:<user>@<domain>; returns the final
        response (None if none came within timeout)."""
        n = next(self.seq)
        branch = f"z9hG4bKhub{n}x{id(self) % 100000}"
        if isinstance(body, str):
            body = body.encode()
        hdrs = [("Via", f"SIP/2.0/UDP 127.0.0.1:{self.port};branch={branch};rport"),
                ("From", f"<sip:{user}@{self.domain}>;tag=hub{n}"), ("To", f"<{to or ruri}>"),
                ("Call-ID", call_id or f"hub-{n}-{id(self) % 100000}@127.0.0.1"),
                ("CSeq", f"1 {method}"), ("Max-Forwards", "70")] + list(headers)
        if ctype:
            hdrs.append(("Content-Type", ctype))
        req = SipMessage(f"{method} {ruri} SIP/2.0", hdrs, body)
        fut = asyncio.get_running_loop().create_future()
        self.pending[branch] = fut
        deadline = asyncio.get_running_loop().time() + timeout
        try:
            while asyncio.get_running_loop().time() < deadline:
                self.transport.sendto(req.encode(), ("127.0.0.1", self.env.gw_sip_port))
                try:
                    return await asyncio.wait_for(asyncio.shield(fut), 0.5)
                except asyncio.TimeoutError:
                    continue
            return None
        finally:
            self.pending.pop(branch, None)

    def message(self, to_user, user, body, call_id=None):
        return self.request("MESSAGE", f"sip:{to_user}@{XMPP_DOMAIN}", user, body=body,
                            ctype=CT_TEXT, call_id=call_id)

    def methods(self):
        return [r.method for r in self.requests]


def all_stanzas(client):
    """Keeps every <presence/> and <message/> the client receives in client.stanzas."""
    client.stanzas = []
    for name in ("presence", "message"):
        client.register_handler(Callback(f"hub {name}", MatchXPath(f"{{jabber:client}}{name}"),
                                         client.stanzas.append))
    return client


async def expect_stanza(client, pred, timeout=8.0, what="a stanza"):
    await wait_for(lambda: any(pred(s) for s in client.stanzas), timeout, what)
    return next(s for s in client.stanzas if pred(s))


def error_text(stanza):
    t = stanza.xml.find(f"{{jabber:client}}error/{{{NS_STANZAS}}}text")
    return t.text if t is not None else None


def is_error_from(stanza, kind, frm):
    return (stanza.name == kind and stanza["type"] == "error" and
            str(stanza["from"]).startswith(frm))


async def new_ua(env, name, domain):
    ua = await MsrpUA(name, domain=domain).start()
    env.msrp_uas = getattr(env, "msrp_uas", []) + [ua]
    return ua


async def teardown(env):
    uas, env.msrp_uas = getattr(env, "msrp_uas", []), []
    for ua in uas:
        await ua.stop()
    for p in getattr(env, "hub_endpoints", []):
        p.close()
    env.hub_endpoints = []
    for ua in uas:
        ua.check_clean()


def subscribe_presence(ua, target, env):
    return ua.subscribe(target, event="presence", accept="application/pidf+xml",
                        next_hop=("127.0.0.1", env.gw_sip_port))


# ---------------------------------------------------------------- per-peer policy

async def test_a_service_refused_to_one_peer_only(env):
    """netb's <peer services> exclude presence: its SUBSCRIBE gets 403 "Service Not Allowed For
    This Peer", and an XMPP user's subscription to one of its users a presence error
    service-unavailable naming the network, with nothing sent there.  neta's presence works both
    ways at the same time, and netb's pager still does."""
    try:
        server = presence_server(env, body=pidf(f"sip:bob@{SIP_DOMAIN}", note="neta works"),
                                 wait=True)
        await server.start()
        gw = await start_hub(env, hub_xml(env, b_services="pager sessions groupchat"))
        b = await SipPeer(env, SIP2_DOMAIN, port=peer2_port(env)).start()
        alice = all_stanzas(await watcher(env, "alice", auto_authorize=None))

        # SIP -> XMPP: netb may not subscribe, neta may
        zed = await new_ua(env, "zed", SIP2_DOMAIN)
        sub_b = await subscribe_presence(zed, user_uri("alice"), env)
        check(sub_b.status == 403, f"netb's SUBSCRIBE: {sub_b.status}")
        check(sub_b.responses[-1].reason == "Service Not Allowed For This Peer",
              sub_b.responses[-1].start)
        bob = await new_ua(env, "bob", SIP_DOMAIN)
        sub_a = await subscribe_presence(bob, user_uri("alice"), env)
        check(sub_a.status in (200, 202), f"neta's SUBSCRIBE: {sub_a.status}")
        await expect_pres(alice, "subscribe", f"bob@{SIP_DOMAIN}", what="neta's watcher asks alice")
        check(not pres(alice, "subscribe", f"zed@{SIP2_DOMAIN}"), "netb's watcher never reached alice")

        # XMPP -> SIP: a subscription to a netb user is refused here, one to neta goes
        alice.send_presence(pto=f"zed@{SIP2_DOMAIN}", ptype="subscribe")
        e = await expect_stanza(alice, lambda s: is_error_from(s, "presence", f"zed@{SIP2_DOMAIN}"),
                                what="the presence error for zed")
        check(error_condition(e) == "service-unavailable", f"condition: {e}")
        check(error_text(e) == "the peer network netb does not accept presence subscriptions "
              "through this gateway", f"text: {error_text(e)!r}")
        alice.send_presence(pto=f"bob@{SIP_DOMAIN}", ptype="subscribe")
        await expect_pres(alice, "available", f"bob@{SIP_DOMAIN}",
                          lambda p: p["status"] == "neta works", what="bob's presence from neta")

        # netb's pager is allowed: a message goes to its route
        alice.send_message(mto=f"zed@{SIP2_DOMAIN}", mbody="pager to netb", mtype="chat")
        await wait_for(lambda: "MESSAGE" in b.methods(), 5, "the MESSAGE at netb's route")
        await asyncio.sleep(0.5)
        check(b.methods() == ["MESSAGE"], f"nothing but the MESSAGE reached netb: {b.methods()}")
        check(gw.log_count(r"refused subscribe from .* \(peer netb\): 403") == 1, "the 403 logged")
    finally:
        await teardown(env)


async def test_xmpp_side_refusals_follow_the_peers_services(env):
    """XMPP -> SIP respects <peer services> too, without sending anything: a message to a user
    of a network without pager is bounced service-unavailable (typing notices are dropped); a
    join of one of its rooms gets a MUC error presence; a chat with a network whose services
    exclude sessions goes in pager mode even with sessions="yes"; and a SIP user of a network
    without groupchat joining an XMPP MUC room gets 403."""
    try:
        xml = hub_xml(env, a_services="pager presence", a_attrs='sessions="yes"',
                      b_services="presence", b_attrs='sessions="yes" groupchat="yes"',
                      groupchat=True)
        await start_hub(env, xml)
        a = await SipPeer(env, SIP_DOMAIN, port=env.peer_sip_port).start()
        b = await SipPeer(env, SIP2_DOMAIN, port=peer2_port(env)).start()
        alice = all_stanzas(await env.client("ivy"))

        # pager to netb: service-unavailable, with the network's name
        msg = alice.make_message(mto=f"zed@{SIP2_DOMAIN}", mbody="hello netb", mtype="chat")
        msg.send()
        e = await expect_stanza(alice, lambda s: s.name == "message" and s["type"] == "error" and
                                s["id"] == msg["id"], what="the bounce")
        check(error_condition(e) == "service-unavailable", f"condition: {e}")
        check(error_text(e) == "the peer network netb does not accept pager messages through "
              "this gateway", f"text: {error_text(e)!r}")
        # a typing notice alone: dropped, no error either
        cs = alice.make_message(mto=f"zed@{SIP2_DOMAIN}", mtype="chat")
        cs["chat_state"] = "composing"
        cs.send()
        # a room of netb: a MUC error presence
        alice.send_raw_xml(f"<presence to='lobby@{SIP2_DOMAIN}/Alice'><x xmlns='{NS_MUC}'/></presence>")
        e = await expect_stanza(alice, lambda s: is_error_from(s, "presence", f"lobby@{SIP2_DOMAIN}"),
                                what="the MUC join error")
        check(error_condition(e) == "service-unavailable", f"condition: {e}")
        check(str(e["from"]) == f"lobby@{SIP2_DOMAIN}/Alice", f"from the occupant JID: {e['from']}")
        check("netb does not accept groupchat" in (error_text(e) or ""), f"text: {error_text(e)!r}")

        # neta has sessions="yes" but its services exclude sessions: pager mode
        alice.send_message(mto=f"bob@{SIP_DOMAIN}", mbody="as a pager message", mtype="chat")
        await wait_for(lambda: a.requests, 5, "the request at neta's route")
        check(a.methods() == ["MESSAGE"] and a.requests[0].body == b"as a pager message",
              f"a MESSAGE, not an INVITE: {a.methods()}")

        # SIP -> MUC: netb has groupchat="yes" but its services exclude groupchat
        zed = await new_ua(env, "zed", SIP2_DOMAIN)
        call = await zed.invite(f"sip:lobby@{MUC_DOMAIN}", next_hop=("127.0.0.1", env.gw_sip_port))
        check(call.status == 403 and call.reason == "Service Not Allowed For This Peer",
              f"INVITE to the MUC room: {call.status} {call.reason}")

        await asyncio.sleep(0.5)
        check(b.requests == [], f"nothing reached netb: {b.methods()}")
        check(a.methods() == ["MESSAGE"], f"neta got one MESSAGE only: {a.methods()}")
    finally:
        await teardown(env)


# ---------------------------------------------------------------- limits

async def test_request_rate_limit_then_service_again(env):
    """neta may send 5 requests a second (burst 5): of a burst of 20 MESSAGEs some are answered
    503 with Retry-After: 2 and the rest reach alice; after that wait, service again.  netb,
    without limits, is not affected by neta's budget."""
    try:
        await start_hub(env, hub_xml(env, a_limits='rate="5" burst="5" retry-after="2s"'))
        alice = await env.client("kim")
        bob = await SipPeer(env, SIP_DOMAIN).start()
        zed = await SipPeer(env, SIP2_DOMAIN).start()
        resps = await asyncio.gather(*(bob.message("kim", "bob", f"burst {i}") for i in range(20)))
        check(all(r is not None for r in resps), "every MESSAGE answered")
        ok = [r for r in resps if r.status == env.xmpp.accepted_status]
        limited = [r for r in resps if r.status == 503]
        check(len(ok) + len(limited) == 20, f"accepted or 503 only: {[r.status for r in resps]}")
        check(5 <= len(ok) <= 8, f"the burst of 5 (and what refilled meanwhile) passed: {len(ok)}")
        check(all(r.reason == "Request Rate Limit Exceeded" and r.get("retry-after") == "2"
                  for r in limited), f"503 with Retry-After: 2: {[r.text() for r in limited[:1]]}")
        await wait_for(lambda: len([m for m in alice.inbox if m["body"].startswith("burst")]) >= len(ok),
                       8, "the accepted messages at alice")
        await asyncio.sleep(0.5)
        got = [m for m in alice.inbox if m["body"].startswith("burst")]
        check(len(got) == len(ok), f"alice got exactly the {len(ok)} accepted: {len(got)}")
        # the other peer network has its own (unlimited) budget
        other = await asyncio.gather(*(zed.message("kim", "zed", f"netb {i}") for i in range(10)))
        check([r.status for r in other] == [env.xmpp.accepted_status] * 10,
              f"netb: {[r.status for r in other]}")
        await asyncio.sleep(2.2)
        again = await bob.message("kim", "bob", "after the wait")
        check(again.status == env.xmpp.accepted_status, f"after Retry-After: {again.status} {again.reason}")
    finally:
        await teardown(env)


async def test_subscription_and_session_limits(env):
    """neta may hold 2 subscriptions and 1 session: a third SUBSCRIBE and a second INVITE get
    503 with Retry-After: 3; once one ends, the next is taken."""
    try:
        await start_hub(env, hub_xml(env, a_limits='subscriptions="2" sessions="1" '
                                                   'retry-after="3s"'))
        await watcher(env, "lea", auto_authorize=None)
        await watcher(env, "max", auto_authorize=None)
        uas = [await new_ua(env, n, SIP_DOMAIN) for n in ("bob", "dan", "eve")]
        subs = [await subscribe_presence(ua, user_uri("lea"), env) for ua in uas]
        check([s.status in (200, 202) for s in subs] == [True, True, False], [s.status for s in subs])
        last = subs[2].responses[-1]
        check(last.status == 503 and last.reason == "Too Many Subscriptions From This Peer" and
              last.get("retry-after") == "3", last.text())
        # netb is counted apart
        zed = await new_ua(env, "zed", SIP2_DOMAIN)
        zsub = await subscribe_presence(zed, user_uri("lea"), env)
        check(zsub.status in (200, 202), f"netb's SUBSCRIBE: {zsub.status}")
        # one ends: room for the next
        check(await subs[0].unsubscribe() in (200, 202), "un-SUBSCRIBE")
        await subs[0].wait_terminated(5)
        again = await subscribe_presence(uas[2], user_uri("max"), env)
        check(again.status in (200, 202), f"after one ended: {again.status}")

        # sessions: one at a time
        call1 = await uas[0].invite(user_uri("lea"), next_hop=("127.0.0.1", env.gw_sip_port))
        check(call1.status == 200, f"first INVITE: {call1.status} {call1.reason}")
        call2 = await uas[1].invite(user_uri("lea"), next_hop=("127.0.0.1", env.gw_sip_port))
        check(call2.status == 503 and call2.reason == "Too Many Sessions With This Peer",
              f"second INVITE: {call2.status} {call2.reason}")
        refusal = [m for m in uas[1].sip_log if m.direction == "in" and m.status == 503]
        check(refusal and refusal[0].get("retry-after") == "3", f"Retry-After: {refusal}")
        await call1.bye()
        await asyncio.sleep(0.3)
        call3 = await uas[1].invite(user_uri("lea"), next_hop=("127.0.0.1", env.gw_sip_port))
        check(call3.status == 200, f"after the first ended: {call3.status} {call3.reason}")
        await call3.bye()
    finally:
        await teardown(env)


async def test_per_peer_document_limit(env):
    """neta's <limits max-document="1k"> refuses a 2 KB PIDF document that netb, under
    <presence max-document> (64k), may send."""
    try:
        note = "n" * 1800
        sa = presence_server(env, body=pidf(f"sip:bob@{SIP_DOMAIN}", note=note), wait=True,
                             name="server-a")
        sb = presence_server(env, body=pidf(f"sip:zed@{SIP2_DOMAIN}", note=note), wait=True,
                             port=peer2_port(env), name="server-b")
        await sa.start()
        await sb.start()
        gw = await start_hub(env, hub_xml(env, a_limits='max-document="1k"'))
        alice = await watcher(env, "ned")
        alice.send_presence(pto=f"zed@{SIP2_DOMAIN}", ptype="subscribe")
        alice.send_presence(pto=f"bob@{SIP_DOMAIN}", ptype="subscribe")
        await expect_pres(alice, "available", f"zed@{SIP2_DOMAIN}", lambda p: p["status"] == note,
                          what="netb's 2 KB document")
        await gw.wait_log(rf"presence sip:bob@{SIP_DOMAIN}: malformed PIDF refused", timeout=8)
        check(not pres(alice, "available", f"bob@{SIP_DOMAIN}"), "neta's document not shown")
    finally:
        await teardown(env)


# ---------------------------------------------------------------- nothing crosses between peers

async def test_a_roster_group_served_to_one_peer_leaves_out_the_others(env):
    """fay's roster group Work holds gus (XMPP), dan (neta) and zed (netb).  Served as a list to
    bob of neta, it names gus and dan but never zed, and the gateway asks nothing about zed on
    bob's behalf; nothing reaches netb."""
    try:
        gw = await start_hub(env, hub_xml(env, presence='<presence expires="120s" '
                                          'min-expires="10s" max-expires="600s" roster-lists="yes"/>'))
        b = await SipPeer(env, SIP2_DOMAIN, port=peer2_port(env)).start()
        fay = await watcher(env, "fay", auto_authorize=True)
        gus = await watcher(env, "gus", auto_authorize=True)
        gus.send_presence(pstatus="gus at work")
        for jid in (f"gus@{XMPP_DOMAIN}", f"dan@{SIP_DOMAIN}", f"zed@{SIP2_DOMAIN}"):
            fay.update_roster(jid, name=jid.split("@")[0], groups=["Work"])
        single = ListWatcher(env, list_uri=f"sip:fay@{XMPP_DOMAIN}", supported=None,
                             accept="application/pidf+xml")
        await single.start()
        await wait_for(lambda: any(n.get("subscription-state", "").startswith("active")
                                   for n in single.notifies), 8, "bob approved by fay")
        single.close()
        group_uri = f"sip:fay/Work@{XMPP_DOMAIN}"
        w = ListWatcher(env, list_uri=group_uri)
        await w.start()
        try:
            await wait_for(lambda: w.responses and w.notifies, 8, "the list's first NOTIFY")
            check(w.responses[0].status == 200, w.responses[0].start)
            _, full, members = check_rlmi_notify(w.notifies[0], group_uri)
            check(full and set(members) == {f"sip:gus@{XMPP_DOMAIN}", f"sip:dan@{SIP_DOMAIN}"},
                  f"gus and dan, not zed: {members}")
            gus_uri = f"sip:gus@{XMPP_DOMAIN}"
            await wait_for(lambda: any(m.get(gus_uri, ("",))[0] == "active" for _, _, m in w.states()),
                           10, "gus active")
            await asyncio.sleep(1.0)
            check(all(SIP2_DOMAIN.encode() not in n.body for n in w.notifies),
                  "no NOTIFY names a netb user")
        finally:
            w.close()
        check(gw.log_count(rf"zed@{SIP2_DOMAIN} \(of peer netb\) left out") >= 1, "logged")
        check(gw.log_count(rf"from bob@{SIP_DOMAIN} to zed@{SIP2_DOMAIN}") == 0,
              "no presence from bob to zed went through the XMPP server")
        check(b.requests == [], f"nothing reached netb: {b.methods()}")
    finally:
        await teardown(env)


async def test_a_peer_network_cannot_reach_another_through_the_gateway(env):
    """The gateway is no SIP proxy between its peers: a request from neta to a netb address, or
    to netb's address dressed as an XMPP one, is refused, and nothing reaches netb."""
    try:
        gw = await start_hub(env, hub_xml(env))
        b = await SipPeer(env, SIP2_DOMAIN, port=peer2_port(env)).start()
        bob = await SipPeer(env, SIP_DOMAIN).start()
        contact = ("Contact", f"<sip:bob@127.0.0.1:{bob.port}>")
        for method, extra, body in (("MESSAGE", [], "x"), ("INVITE", [], ""),
                                    ("SUBSCRIBE", [("Event", "presence"), ("Expires", "600")], "")):
            r = await bob.request(method, f"sip:zed@{SIP2_DOMAIN}", "bob", body=body,
                                  ctype=CT_TEXT if body else None, headers=extra + [contact])
            check(r is not None and r.status == 404 and r.reason == "Domain Not Served Here",
                  f"{method} to netb: {r and r.start}")
        # sip:zed%40sip2.example@xmpp.example is the XMPP user zed\40sip2.example@xmpp.example
        # (XEP-0106), not netb's zed: the XMPP server has no such user
        r = await bob.request("MESSAGE", f"sip:zed%40{SIP2_DOMAIN}@{XMPP_DOMAIN}", "bob", body="x",
                              ctype=CT_TEXT)
        check(r is not None and r.status >= 400, f"netb's user as an XMPP address: {r and r.start}")
        check(gw.log_count(rf"-> zed\\40{SIP2_DOMAIN}@{XMPP_DOMAIN} \(text\) forwarded") == 1,
              "it went to an address of the XMPP domain")
        await asyncio.sleep(0.5)
        check(b.requests == [], f"nothing reached netb: {b.methods()}")
    finally:
        await teardown(env)


class OnePortForAllComponents:
    """A component server that takes every component on one port (as ejabberd's service
    listener with several hosts does, where one connection may carry stanzas for any of them)
    and, on the connection of `via`, hands the gateway `stanzas` once; records what the gateway
    writes on each connection."""

    def __init__(self, via, stanzas):
        self.via, self.stanzas = via, stanzas
        self.received = {}
        self.server = None
        self.port = None

    async def _conn(self, reader, writer):
        try:
            head = b""
            while b"stream:stream" not in head or not head.endswith(b">"):
                head += await asyncio.wait_for(reader.readuntil(b">"), 5)
            to = head.split(b" to=", 1)[1][1:].split(head.split(b" to=", 1)[1][:1], 1)[0]
            domain = to.decode()
            writer.write(b"<?xml version='1.0'?><stream:stream xmlns='jabber:component:accept' "
                         b"xmlns:stream='http://etherx.jabber.org/streams' id='s1' from='" + to + b"'>")
            await asyncio.wait_for(reader.readuntil(b"</handshake>"), 5)
            writer.write(b"<handshake/>")
            await writer.drain()
            self.received[domain] = b""
            if domain == self.via:
                await asyncio.sleep(0.5)
                writer.write(self.stanzas)
                await writer.drain()
            while True:
                data = await reader.read(65536)
                if not data:
                    break
                self.received[domain] += data
        except (asyncio.TimeoutError, asyncio.IncompleteReadError, ConnectionError, IndexError):
            pass
        finally:
            writer.close()

    async def start(self):
        self.server = await asyncio.start_server(self._conn, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]

    async def stop(self):
        self.server.close()
        await self.server.wait_closed()


async def test_a_stanza_for_one_peer_on_another_peers_link_goes_nowhere(env):
    """A message and a presence subscription for neta's users that arrive on the connection of
    netb's component are not sent to netb (they used to be: a domain-preserving peer took any
    JID that reached its component), nor to neta: they are refused item-not-found."""
    fake = OnePortForAllComponents(
        SIP2_DOMAIN,
        f"<message to='busy@{SIP_DOMAIN}' from='pam@{XMPP_DOMAIN}/x' id='w1' type='chat'>"
        f"<body>for neta's busy</body></message>"
        f"<presence type='subscribe' to='bob@{SIP_DOMAIN}' from='pam@{XMPP_DOMAIN}' id='w2'/>".encode())
    await fake.start()
    try:
        xml = hub_xml(env).replace(f'port="{env.xmpp.component_port}"', f'port="{fake.port}"')
        gw = await env.gateway(xml, wait_up=False)
        await gw.wait_log(r"component \S+: connected", count=2, timeout=15)
        a = await SipPeer(env, SIP_DOMAIN, port=env.peer_sip_port).start()
        b = await SipPeer(env, SIP2_DOMAIN, port=peer2_port(env)).start()
        await wait_for(lambda: fake.received.get(SIP2_DOMAIN, b"").count(b"item-not-found") >= 2, 8,
                       "both refused on netb's connection")
        await asyncio.sleep(0.5)
        got = fake.received[SIP2_DOMAIN]
        check(b"id='w1'" in got and b"id='w2'" in got, f"the two errors: {got[-600:]!r}")
        check(a.requests == [] and b.requests == [],
              f"nothing reached either network: neta {a.methods()}, netb {b.methods()}")
    finally:
        await teardown(env)
        await fake.stop()


def room_configure(client, room, whois="anyone"):
    """The owner's room form: real JIDs visible to every occupant (a non-anonymous room)."""
    client.send_raw_xml(
        f"<iq type='set' id='cfg-{room}' to='{room}@{MUC_DOMAIN}'><query xmlns='{NS_MUC_OWNER}'>"
        f"<x xmlns='jabber:x:data' type='submit'>"
        f"<field var='FORM_TYPE'><value>http://jabber.org/protocol/muc#roomconfig</value></field>"
        f"<field var='muc#roomconfig_whois'><value>{whois}</value></field></x></query></iq>")


async def test_a_muc_room_shared_by_two_peers_shows_no_sip_address(env):
    """bob (neta) and zed (netb) are in one non-anonymous XMPP MUC room: each sees the other only
    as sip:room@service;gr=nick, in the conference-info (RFC 4575) and in CPIM From of room and
    private messages; neither's SIP URI (nor the real JID the MUC shows) reaches the other."""
    try:
        await start_hub(env, hub_xml(env, a_attrs='groupchat="yes"', b_attrs='groupchat="yes"',
                                     groupchat=True))
        alice = all_stanzas(await env.client("olga"))
        room = "hubroom"
        alice.send_raw_xml(f"<presence to='{room}@{MUC_DOMAIN}/Alice'><x xmlns='{NS_MUC}'/></presence>")
        await expect_stanza(alice, lambda s: s.name == "presence" and
                            str(s["from"]) == f"{room}@{MUC_DOMAIN}/Alice", what="alice in the room")
        room_configure(alice, room)
        await asyncio.sleep(0.5)
        bob = await new_ua(env, "bob", SIP_DOMAIN)
        zed = await new_ua(env, "zed", SIP2_DOMAIN)
        calls = {}
        for ua, nick in ((bob, "Bob"), (zed, "Zed")):
            call = await ua.invite(f"sip:{room}@{MUC_DOMAIN}", next_hop=("127.0.0.1", env.gw_sip_port))
            check(call.status == 200, f"{nick} joins: {call.status} {call.reason}")
            await call.wait_connected(5)
            check(await call.send_nickname(nick) == 200, f"NICKNAME {nick}")
            calls[nick] = call
        subs = {}
        for ua, nick in ((bob, "Bob"), (zed, "Zed")):
            sub = await ua.subscribe(f"sip:{room}@{MUC_DOMAIN}", next_hop=("127.0.0.1", env.gw_sip_port))
            check(sub.status == 200, f"{nick}'s conference SUBSCRIBE: {sub.status}")
            await sub.wait_state(lambda s: sorted(u["display"] for u in s.conference.values()) ==
                                 ["Alice", "Bob", "Zed"], 8)
            subs[nick] = sub
        for nick, sub in subs.items():
            entities = set(sub.conference)
            check(entities == {f"sip:{room}@{MUC_DOMAIN};gr={n}" for n in ("Alice", "Bob", "Zed")},
                  f"{nick} sees occupant URIs only: {entities}")
            for n in sub.notifies:
                check(f"@{SIP_DOMAIN}".encode() not in n.body and SIP2_DOMAIN.encode() not in n.body,
                      f"no SIP address in {nick}'s conference-info: {n.body[:400]!r}")
        # to the room, and privately, from one peer's user to the other's
        await calls["Bob"].send_cpim("to everyone", to=f"sip:{room}@{MUC_DOMAIN}")
        await calls["Bob"].send_cpim("just for zed", to=f"sip:{room}@{MUC_DOMAIN};gr=Zed")
        await calls["Zed"].send_cpim("just for bob", to=f"sip:{room}@{MUC_DOMAIN};gr=Bob")
        m1 = await calls["Zed"].wait_message(lambda x: x.text == "to everyone", timeout=5)
        m2 = await calls["Zed"].wait_message(lambda x: x.text == "just for zed", timeout=5)
        m3 = await calls["Bob"].wait_message(lambda x: x.text == "just for bob", timeout=5)
        for m, frm in ((m1, "Bob"), (m2, "Bob"), (m3, "Zed")):
            check(m.cpim_from == f"sip:{room}@{MUC_DOMAIN};gr={frm}", f"CPIM From: {m.cpim_from}")
        for nick, call in calls.items():
            other = SIP2_DOMAIN if nick == "Bob" else f"@{SIP_DOMAIN}"
            for m in call.msrp.received_messages:
                check(other.encode() not in m.body, f"{nick} got nothing naming the other "
                      f"network: {m.body[:300]!r}")
        for call in calls.values():
            await call.bye()
    finally:
        await teardown(env)


# ---------------------------------------------------------------- the audit log

def read_audit(path):
    """The lines of an audit file, each parsed (a line that is not JSON fails the test)."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return []
    check(not data or data.endswith(b"\n"), f"the file ends with a whole line: {data[-200:]!r}")
    out = []
    for line in data.split(b"\n")[:-1]:
        try:
            rec = json.loads(line.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as e:
            check(False, f"an audit line that is not JSON ({e}): {line!r}")
        check(isinstance(rec, dict), f"not an object: {line!r}")
        out.append(rec)
    return out


FIELDS = {"time", "peer", "direction", "service", "method", "from", "to", "verdict", "status",
          "reason", "call_id", "source"}


def check_record(rec, content=False):
    keys = set(rec)
    check(keys == FIELDS | ({"content"} if content else set()), f"fields: {sorted(keys)}")
    check(isinstance(rec["time"], str) and rec["time"].endswith("Z") and "T" in rec["time"], rec)
    check(rec["direction"] in ("in", "out"), rec)
    check(rec["verdict"] == ("accepted" if 200 <= rec["status"] < 300 else
                             "refused" if rec["status"] >= 300 else "failed"), rec)
    check(isinstance(rec["reason"], str) and rec["reason"], rec)
    check(isinstance(rec["call_id"], str) and rec["call_id"], rec)
    if rec["direction"] == "in":
        check(isinstance(rec["source"], str) and "127.0.0.1" in rec["source"], rec)
    else:
        check(rec["source"] is None, rec)


async def test_audit_log_has_every_transaction_once(env):
    """With <audit file="audit.log"/> every cross-domain transaction of the test is one JSON
    line with the documented fields: MESSAGEs both ways (accepted and refused by the peer), an
    accepted SUBSCRIBE, netb's SUBSCRIBE refused by policy, a request from a domain no peer owns;
    nothing for a refusal on the XMPP side (no SIP transaction); no content by default."""
    try:
        gw = await start_hub(env, hub_xml(env, b_services="pager", audit='<audit file="audit.log"/>'))
        path = os.path.join(gw.dir, "audit.log")
        a = await SipPeer(env, SIP_DOMAIN, port=env.peer_sip_port, answers={"busy": 486}).start()
        b = await SipPeer(env, SIP2_DOMAIN, port=peer2_port(env)).start()
        alice = all_stanzas(await watcher(env, "pam", auto_authorize=True))
        bob = await SipPeer(env, SIP_DOMAIN).start()
        zed = await SipPeer(env, SIP2_DOMAIN).start()
        nobody = await SipPeer(env, "nowhere.example").start()

        for i in (1, 2):
            r = await bob.message("pam", "bob", f"in {i}", call_id=f"audit-in-{i}")
            check(r.status == env.xmpp.accepted_status, f"MESSAGE in: {r.status}")
        r = await nobody.message("pam", "x", "from nowhere", call_id="audit-nowhere")
        check(r.status == 403, f"unknown domain: {r.status}")
        r = await zed.request("SUBSCRIBE", user_uri("pam"), "zed", call_id="audit-sub-b",
                              headers=[("Event", "presence"), ("Expires", "600"),
                                       ("Accept", "application/pidf+xml"),
                                       ("Contact", f"<sip:zed@127.0.0.1:{zed.port}>")])
        check(r.status == 403, f"netb's SUBSCRIBE: {r.status}")
        ua = await new_ua(env, "carl", SIP_DOMAIN)
        sub = await subscribe_presence(ua, user_uri("pam"), env)
        check(sub.status in (200, 202), f"neta's SUBSCRIBE: {sub.status}")
        for to in (f"bob@{SIP_DOMAIN}", f"busy@{SIP_DOMAIN}", f"zed@{SIP2_DOMAIN}"):
            alice.send_message(mto=to, mbody=f"out to {to}", mtype="chat")
        alice.send_presence(pto=f"zed@{SIP2_DOMAIN}", ptype="subscribe")     # refused here
        await expect_stanza(alice, lambda s: s.name == "message" and s["type"] == "error" and
                            str(s["from"]).startswith(f"busy@{SIP_DOMAIN}"), what="busy's bounce")
        await expect_stanza(alice, lambda s: is_error_from(s, "presence", f"zed@{SIP2_DOMAIN}"),
                            what="the presence refusal")
        await wait_for(lambda: len(read_audit(path)) >= 8, 8, "eight audit lines")
        await asyncio.sleep(1.0)        # nothing more comes
        recs = read_audit(path)
        check(len(recs) == 8, f"eight transactions, eight lines: {json.dumps(recs, indent=1)}")
        for rec in recs:
            check_record(rec)

        def one(pred, what):
            found = [r for r in recs if pred(r)]
            check(len(found) == 1, f"{what}: exactly one line, got {found}")
            return found[0]
        for i in (1, 2):
            r = one(lambda r: r["call_id"] == f"audit-in-{i}", f"MESSAGE in {i}")
            check((r["peer"], r["direction"], r["service"], r["method"], r["from"], r["to"],
                   r["status"], r["verdict"]) ==
                  ("neta", "in", "pager", "MESSAGE", f"sip:bob@{SIP_DOMAIN}", user_uri("pam"),
                   env.xmpp.accepted_status, "accepted"), r)
        r = one(lambda r: r["call_id"] == "audit-nowhere", "the unknown domain")
        check(r["peer"] is None and r["status"] == 403 and r["verdict"] == "refused" and
              r["reason"] == "From Domain Not Owned By This Peer", r)
        r = one(lambda r: r["call_id"] == "audit-sub-b", "netb's SUBSCRIBE")
        check((r["peer"], r["service"], r["method"], r["status"], r["reason"]) ==
              ("netb", "presence", "SUBSCRIBE", 403, "Service Not Allowed For This Peer"), r)
        r = one(lambda r: r["call_id"] == sub.call_id, "neta's SUBSCRIBE")
        check((r["peer"], r["direction"], r["service"], r["status"], r["from"]) ==
              ("neta", "in", "presence", 200, f"sip:carl@{SIP_DOMAIN}"), r)
        for to, peer, status in ((f"sip:bob@{SIP_DOMAIN}", "neta", 200),
                                 (f"sip:busy@{SIP_DOMAIN}", "neta", 486),
                                 (f"sip:zed@{SIP2_DOMAIN}", "netb", 200)):
            r = one(lambda r, to=to: r["direction"] == "out" and r["to"] == to, f"MESSAGE to {to}")
            check((r["peer"], r["service"], r["method"], r["from"], r["status"]) ==
                  (peer, "pager", "MESSAGE", user_uri("pam"), status), r)
        check([x for x in a.methods()] == ["MESSAGE", "MESSAGE"] and b.methods() == ["MESSAGE"],
              f"what the routes saw: {a.methods()} {b.methods()}")
    finally:
        await teardown(env)


async def test_audit_content_and_logrotate(env):
    """content="yes" adds the message bodies (escaped: quotes, newlines, non-ASCII); after the file
    is renamed (logrotate), SIGHUP makes the gateway write to a new file at the configured path,
    and no line is lost or written twice."""
    try:
        gw = await start_hub(env, hub_xml(env, audit='<audit file="logs-audit.log" content="yes"/>'))
        path = os.path.join(gw.dir, "logs-audit.log")
        await SipPeer(env, SIP_DOMAIN, port=env.peer_sip_port).start()
        alice = all_stanzas(await env.client("quin"))
        bob = await SipPeer(env, SIP_DOMAIN).start()
        body = 'secret "words"\nline two \u00e9\u2603'
        r = await bob.message("quin", "bob", body, call_id="content-in")
        check(r.status == env.xmpp.accepted_status, f"MESSAGE in: {r.status}")
        alice.send_message(mto=f"bob@{SIP_DOMAIN}", mbody="outgoing words", mtype="chat")
        await wait_for(lambda: len(read_audit(path)) >= 2, 8, "two lines")
        recs = read_audit(path)
        for rec in recs:
            check_record(rec, content=True)
        check([x["content"] for x in recs if x["call_id"] == "content-in"] == [body],
              f"the incoming body: {recs}")
        check([x["content"] for x in recs if x["direction"] == "out"] == ["outgoing words"], recs)

        # logrotate: the file moves, the gateway keeps writing to it until SIGHUP
        os.rename(path, path + ".1")
        r = await bob.message("quin", "bob", "after the rename", call_id="rot-1")
        check(r.status == env.xmpp.accepted_status, f"{r.status}")
        gw.proc.send_signal(signal.SIGHUP)
        await gw.wait_log(r"audit log .*logs-audit\.log reopened", timeout=5)
        for i in (2, 3):
            r = await bob.message("quin", "bob", f"after the reopen {i}", call_id=f"rot-{i}")
            check(r.status == env.xmpp.accepted_status, f"{r.status}")
        await wait_for(lambda: len(read_audit(path)) >= 2, 5, "the new file's lines")
        await asyncio.sleep(0.5)
        old, new = read_audit(path + ".1"), read_audit(path)
        check([x["call_id"] for x in old if x["direction"] == "in"] == ["content-in", "rot-1"],
              f"the rotated file: {old}")
        check(len(old) == 3, f"the rotated file has its three lines: {old}")
        check([x["call_id"] for x in new] == ["rot-2", "rot-3"], f"the new file: {new}")
        for rec in old + new:
            check_record(rec, content=True)
    finally:
        await teardown(env)


async def test_audit_to_syslog_runs(env):
    """<audit syslog="yes">: transactions go to syslog (not read here); the gateway runs, takes
    messages and stops cleanly."""
    try:
        gw = await start_hub(env, hub_xml(env, audit='<audit syslog="yes"/>'))
        alice = await env.client("rae")
        bob = await SipPeer(env, SIP_DOMAIN).start()
        for i in range(3):
            r = await bob.message("rae", "bob", f"syslogged {i}")
            check(r.status == env.xmpp.accepted_status, f"{r.status}")
        await alice.expect(lambda m: m["body"] == "syslogged 2", 5, "the last message")
        check(gw.log_count(r"cannot (re)?open the audit log|cannot write the audit log") == 0,
              "no audit error")
    finally:
        await teardown(env)
