"""test_lists.py - resource lists the gateway serves to SIP watchers (RFC 4662, <presence><list>):
a SIP watcher subscribes to sip:team@xmpp.example with Supported: eventlist and gets
multipart/related NOTIFYs with an RLMI root, full state first, then partial state; each member
appears as that member's own approval of the watcher allows (pending, active with a PIDF part,
terminated;reason=rejected).  Every NOTIFY body is checked against RFC 4662 and RFC 2387 here
(check_rlmi_notify), independently of the gateway's own parser.
"""

import asyncio
import email.parser
import email.policy
import itertools
import re
import xml.etree.ElementTree as ET

from harness import SIP_DOMAIN, XMPP_DOMAIN, Kamailio, check, gateway_xml, wait_for
from msrp_ua import SipMessage, parse_sip
from test_presence import watcher

XMPP_SERVERS = ("prosody", "ejabberd")
USERS = ("amy", "cal", "dee", "eli", "fay", "gus", "hank")
LIST_URI = f"sip:team@{XMPP_DOMAIN}"
RLMI = "{urn:ietf:params:xml:ns:rlmi}"
ACCEPT = "multipart/related, application/rlmi+xml, application/pidf+xml"


def lists_gateway_xml(env, members=("amy", "cal", "dee"), interval="1s"):
    xml = gateway_xml(env)
    items = "".join(f'<member jid="{m}@{XMPP_DOMAIN}"/>' for m in members)
    presence = (f'<presence expires="120s" min-expires="10s" max-expires="600s" '
                f'notify-interval="{interval}">\n    <list name="team">{items}</list>\n  </presence>')
    return xml.replace("<im ", presence + "\n  <im ", 1)


def check_rlmi_notify(msg, list_uri=LIST_URI):
    """Validates one list NOTIFY against RFC 4662 (sections 5, 6) and RFC 2387; returns
    (version, full_state, {resource uri: (state, reason, pidf bytes or None)})."""
    check(msg.get("require", "").lower() == "eventlist", f"NOTIFY without Require: eventlist: {msg.headers}")
    check(msg.get("event", "").lower().startswith("presence"), msg.headers)
    ct = msg.get("content-type", "")
    check(ct.lower().startswith("multipart/related"), f"not multipart/related: {ct}")
    m = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        f"Content-Type: {ct}\r\n\r\n".encode() + msg.body)
    check(m.is_multipart(), f"body does not split: {msg.body[:200]!r}")
    check(m.get_param("type") == "application/rlmi+xml", f"type parameter: {ct}")
    parts = list(m.iter_parts())
    by_cid = {}
    for part in parts:
        cid = part.get("Content-ID", "")
        check(cid.startswith("<") and cid.endswith(">"), f"Content-ID {cid!r}")
        check(cid[1:-1] not in by_cid, f"Content-ID {cid} twice")
        by_cid[cid[1:-1]] = part
    start = m.get_param("start")
    check(start and start.startswith("<") and start[1:-1] in by_cid, f"start={start} names no part")
    root = by_cid[start[1:-1]]
    check(root.get_content_type() == "application/rlmi+xml", root.get_content_type())
    doc = ET.fromstring(root.get_payload(decode=True))
    check(doc.tag == RLMI + "list", doc.tag)
    check(doc.get("uri") == list_uri, f"list uri {doc.get('uri')}")
    check(re.fullmatch(r"\d+", doc.get("version", "")), f"version {doc.get('version')}")
    check(doc.get("fullState") in ("true", "false"), f"fullState {doc.get('fullState')}")
    seen_cids, out = set(), {}
    for res in doc:
        check(res.tag == RLMI + "resource" and res.get("uri"), f"bad child {res.tag} {res.attrib}")
        insts = [i for i in res if i.tag == RLMI + "instance"]
        state = reason = body = None
        for inst in insts:
            check(inst.get("id") and inst.get("state") in ("active", "pending", "terminated"),
                  f"instance {inst.attrib}")
            state, reason = inst.get("state"), inst.get("reason")
            if state == "terminated":
                check(reason, "terminated instance without a reason")
            cid = inst.get("cid")
            if cid:
                check(cid in by_cid and cid not in seen_cids, f"cid {cid} names no part (or twice)")
                seen_cids.add(cid)
                part = by_cid[cid]
                check(part.get_content_type() == "application/pidf+xml", part.get_content_type())
                body = part.get_payload(decode=True)
                ET.fromstring(body)     # well-formed
        out[res.get("uri")] = (state, reason, body)
    check(len(seen_cids) == len(parts) - 1, "a part no instance names")
    return int(doc.get("version")), doc.get("fullState") == "true", out


class ListWatcher(asyncio.DatagramProtocol):
    """A SIP watcher of sip.example (bob) on UDP: one SUBSCRIBE, NOTIFYs answered 200."""

    seq = itertools.count(1)

    def __init__(self, env, supported="eventlist", accept=ACCEPT, expires=120, port=None,
                 list_uri=LIST_URI, user="bob"):
        self.env, self.supported, self.accept, self.expires = env, supported, accept, expires
        self.list_uri, self.user = list_uri, user
        self.target = port or env.gw_sip_port
        self.responses, self.notifies = [], []
        self.transport = None
        self.port = None
        self.n = next(self.seq)
        self.call_id = f"list-{self.n}@127.0.0.1"

    async def start(self):
        loop = asyncio.get_running_loop()
        self.transport, _ = await loop.create_datagram_endpoint(lambda: self, local_addr=("127.0.0.1", 0))
        self.port = self.transport.get_extra_info("sockname")[1]
        hdrs = [("Via", f"SIP/2.0/UDP 127.0.0.1:{self.port};branch=z9hG4bKlist{self.n}x{id(self)}"),
                ("From", f"<sip:{self.user}@{SIP_DOMAIN}>;tag=w1"), ("To", f"<{self.list_uri}>"),
                ("Call-ID", self.call_id), ("CSeq", "1 SUBSCRIBE"), ("Max-Forwards", "70"),
                ("Contact", f"<sip:bob@127.0.0.1:{self.port}>"), ("Event", "presence"),
                ("Expires", str(self.expires))]
        if self.supported:
            hdrs.append(("Supported", self.supported))
        if self.accept:
            hdrs.append(("Accept", self.accept))
        self.transport.sendto(SipMessage(f"SUBSCRIBE {self.list_uri} SIP/2.0", hdrs).encode(),
                              ("127.0.0.1", self.target))

    def refresh(self):
        """An in-dialog SUBSCRIBE (refresh) to the Contact of the 200."""
        ok = self.responses[0]
        target = ok.get("contact").split("<", 1)[-1].split(">", 1)[0]
        hdrs = [("Via", f"SIP/2.0/UDP 127.0.0.1:{self.port};branch=z9hG4bKlist{self.n}r{id(self)}"),
                ("From", f"<sip:{self.user}@{SIP_DOMAIN}>;tag=w1"), ("To", ok.get("to")),
                ("Call-ID", self.call_id), ("CSeq", "2 SUBSCRIBE"), ("Max-Forwards", "70"),
                ("Contact", f"<sip:bob@127.0.0.1:{self.port}>"), ("Event", "presence"),
                ("Expires", str(self.expires)), ("Supported", "eventlist"), ("Accept", ACCEPT)]
        self.transport.sendto(SipMessage(f"SUBSCRIBE {target} SIP/2.0", hdrs).encode(),
                              ("127.0.0.1", self.target))

    def datagram_received(self, data, addr):
        msg = parse_sip(data, addr)
        if not msg.is_request:
            self.responses.append(msg)
            return
        if msg.method == "NOTIFY":
            self.notifies.append(msg)
        ok = SipMessage("SIP/2.0 200 OK", [(n, v) for n, v in msg.headers
                                             if n.lower() in ("via", "from", "to", "call-id", "cseq")])
        self.transport.sendto(ok.encode(), addr)

    def close(self):
        if self.transport:
            self.transport.close()

    def states(self):
        return [check_rlmi_notify(n, self.list_uri) for n in self.notifies]


def uri(user):
    return f"sip:{user}@{XMPP_DOMAIN}"


async def test_a_list_follows_each_members_approval(env):
    """amy approves bob, cal never answers, dee refuses: the first NOTIFY is full state (version
    0, every member); amy then shows active with her PIDF (her status), cal pending, dee
    terminated;reason=rejected; a change of amy's status is one partial NOTIFY, only amy, the
    next version."""
    await env.gateway(lists_gateway_xml(env))
    amy = await watcher(env, "amy", auto_authorize=True)
    cal = await watcher(env, "cal", auto_authorize=None)
    dee = await watcher(env, "dee", auto_authorize=False)
    amy.send_presence(pstatus="on the list")
    w = ListWatcher(env)
    await w.start()
    try:
        await wait_for(lambda: w.responses, 5, "the answer to the SUBSCRIBE")
        ok = w.responses[0]
        check(ok.status == 200 and ok.get("require", "").lower() == "eventlist",
              f"200 with Require: eventlist: {ok.start} {ok.headers}")
        await wait_for(lambda: w.notifies, 5, "the first NOTIFY")
        version, full, members = check_rlmi_notify(w.notifies[0])
        check(version == 0 and full, f"first NOTIFY: version {version}, fullState {full}")
        check(set(members) == {uri("amy"), uri("cal"), uri("dee")}, members)

        def latest(member):
            for _, _, m in reversed(w.states()):
                if member in m:
                    return m[member]
            return None
        await wait_for(lambda: (latest(uri("amy")) or ("",))[0] == "active" and
                       b"on the list" in (latest(uri("amy"))[2] or b""), 10, "amy active with her status")
        await wait_for(lambda: (latest(uri("dee")) or ("",))[0] == "terminated", 10,
                       f"dee refused: {[(v, f, {k: x[:2] for k, x in m.items()}) for v, f, m in w.states()]}")
        check(latest(uri("dee"))[1] == "rejected", latest(uri("dee")))
        check(latest(uri("cal"))[0] == "pending", latest(uri("cal")))
        versions = [v for v, _, _ in w.states()]
        check(versions == list(range(len(versions))), f"versions {versions}")
        n = len(w.notifies)
        await asyncio.sleep(1.2)        # past the notify-interval
        amy.send_presence(pstatus="changed", pshow="away")
        await wait_for(lambda: len(w.notifies) > n and b"changed" in w.notifies[-1].body, 10,
                       "amy's change")
        version, full, members = check_rlmi_notify(w.notifies[-1])
        check(not full and set(members) == {uri("amy")}, f"partial, amy only: {full} {members}")
        check(version == versions[-1] + 1, f"version {version} after {versions}")
        # a refresh: full state again, with the next version (after the stack's repeat)
        w.refresh()
        await wait_for(lambda: any(f and v > version for v, f, _ in w.states()), 5,
                       "full state after the refresh")
        v2, _, members = [x for x in w.states() if x[1] and x[0] > version][0]
        check(v2 > version and set(members) == {uri("amy"), uri("cal"), uri("dee")},
              f"full state {v2}: {members}")
    finally:
        w.close()


async def test_list_subscriptions_refused_as_rfc_4662_says(env):
    """Without Supported: eventlist: 421 with Require: eventlist; without multipart/related and
    application/rlmi+xml in Accept: 406 with the Accept the list needs."""
    await env.gateway(lists_gateway_xml(env))
    a = ListWatcher(env, supported=None)
    b = ListWatcher(env, accept="application/pidf+xml")
    await a.start()
    await b.start()
    try:
        await wait_for(lambda: a.responses and b.responses, 5, "both answers")
        check(a.responses[0].status == 421 and a.responses[0].get("require", "").lower() == "eventlist",
              f"421 Require: eventlist: {a.responses[0].start} {a.responses[0].headers}")
        check(b.responses[0].status == 406 and "application/rlmi+xml" in (b.responses[0].get("accept") or ""),
              f"406 with Accept: {b.responses[0].start} {b.responses[0].headers}")
        check(not a.notifies and not b.notifies, "no NOTIFY after a refusal")
    finally:
        a.close()
        b.close()


async def test_a_fetch_of_a_list(env):
    """Expires: 0 (RFC 6665 4.4.3): one full-state NOTIFY terminated;reason=timeout, nobody asked."""
    await env.gateway(lists_gateway_xml(env, members=("eli",)))
    eli = await watcher(env, "eli", auto_authorize=None)
    w = ListWatcher(env, expires=0)
    await w.start()
    try:
        await wait_for(lambda: w.notifies, 5, "the fetch's NOTIFY")
        n = w.notifies[0]
        check(n.get("subscription-state", "").startswith("terminated"), n.headers)
        version, full, members = check_rlmi_notify(n)
        check(full and members[uri("eli")][0] == "pending", members)
        await asyncio.sleep(1)
        check(not [p for p in eli.presences if p["type"] == "subscribe"], "a fetch asks nobody")
    finally:
        w.close()


async def test_a_list_through_kamailio(env):
    """The SIP watcher subscribes to the list through Kamailio (the SIP network's proxy, which
    routes xmpp.example to the gateway and record-routes): the 200's Require: eventlist and
    the RLMI NOTIFYs cross it, and amy's approval shows."""
    kam = Kamailio(env, port=env.peer_sip_port)
    await kam.start()
    try:
        await env.gateway(lists_gateway_xml(env, members=("amy",)))
        amy = await watcher(env, "amy", auto_authorize=True)
        amy.send_presence(pstatus="via the proxy")
        w = ListWatcher(env, port=kam.port)
        await w.start()
        await wait_for(lambda: w.responses and w.responses[-1].status >= 200, 5, "the answer")
        check(w.responses[-1].status == 200 and
              w.responses[-1].get("require", "").lower() == "eventlist", w.responses[-1].headers)
        await wait_for(lambda: any(m.get(uri("amy"), ("",))[0] == "active" and
                                   b"via the proxy" in (m[uri("amy")][2] or b"")
                                   for _, _, m in w.states()), 10, "amy active through Kamailio")
        check(any(kam.remote in v for v in w.notifies[0].get_all("via")),
              f"the NOTIFY did not cross Kamailio: {w.notifies[0].headers}")
        w.close()
    finally:
        await kam.stop()


def roster_gateway_xml(env):
    xml = gateway_xml(env)
    return xml.replace("<im ", '<presence expires="120s" min-expires="10s" max-expires="600s" '
                       'roster-lists="yes"/>\n  <im ', 1)


async def test_a_roster_group_as_a_list(env):
    """sip:fay/Work@xmpp.example is fay's roster group Work (read with XEP-0356 roster access):
    bob, whom fay approved, subscribes to it and sees gus (who approves bob) and hank (who does
    not answer: pending); carol, whom fay never approved, and a group fay does not have get 404,
    the same answer."""
    await env.gateway(roster_gateway_xml(env))
    fay = await watcher(env, "fay", auto_authorize=True)
    gus = await watcher(env, "gus", auto_authorize=True)
    hank = await watcher(env, "hank", auto_authorize=None)
    gus.send_presence(pstatus="gus at work")
    for who in ("gus", "hank"):
        fay.update_roster(f"{who}@{XMPP_DOMAIN}", name=who, groups=["Work"])
    fay.update_roster(f"amy@{XMPP_DOMAIN}", name="amy", groups=["Family"])
    # bob watches fay herself first, and fay approves him
    single = ListWatcher(env, list_uri=f"sip:fay@{XMPP_DOMAIN}", supported=None,
                         accept="application/pidf+xml")
    await single.start()
    await wait_for(lambda: any(n.get("subscription-state", "").startswith("active")
                               for n in single.notifies), 8, "bob approved by fay")
    single.close()
    group_uri = f"sip:fay/Work@{XMPP_DOMAIN}"
    w = ListWatcher(env, list_uri=group_uri)
    other = ListWatcher(env, list_uri=group_uri, user="carol")
    nogroup = ListWatcher(env, list_uri=f"sip:fay/Nope@{XMPP_DOMAIN}")
    for x in (w, other, nogroup):
        await x.start()
    try:
        await wait_for(lambda: w.responses and other.responses and nogroup.responses, 8, "the answers")
        check(w.responses[0].status == 200, f"bob: {w.responses[0].start}")
        check(other.responses[0].status == 404 and nogroup.responses[0].status == 404,
              f"carol {other.responses[0].start}, no group {nogroup.responses[0].start}")

        def latest(member):
            for _, _, m in reversed(w.states()):
                if member in m:
                    return m[member]
            return None
        await wait_for(lambda: (latest(uri("gus")) or ("",))[0] == "active" and
                       b"gus at work" in (latest(uri("gus"))[2] or b""), 10, "gus active")
        check((latest(uri("hank")) or ("",))[0] == "pending", latest(uri("hank")))
        check(all(uri("amy") not in m for _, _, m in w.states()), "amy is not in Work")
        # fay puts amy in Work: at bob's next refresh the roster is read again, and the
        # subscription ends (deactivated) for bob to subscribe again to the new group
        fay.update_roster(f"amy@{XMPP_DOMAIN}", name="amy", groups=["Family", "Work"])
        await asyncio.sleep(0.5)
        w.refresh()
        await wait_for(lambda: any(n.get("subscription-state", "").startswith("terminated;reason=deactivated")
                                   for n in w.notifies), 8, "the list ended after the group changed")
    finally:
        for x in (w, other, nogroup):
            x.close()
