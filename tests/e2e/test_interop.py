"""test_interop.py - what broke with other software than the suite's own: ejabberd's strict
component rules, a stanza split over several TCP reads, a second gateway on one component,
honest delivery verdicts, typing notices and delivery reports as linphone sends them, and the
order of the trust check.  Against Prosody and ejabberd.

The SIP side here is a scripted user agent (SipUA below, built on msrp_ua's SIP parser) rather
than sipp: the tests need exact bodies (a deflated IMDN, a 415 to one content type only) and to
read each request the gateway sends.
"""

import asyncio
import re
import uuid
import xml.etree.ElementTree as ET
import zlib


from harness import (SIP_DOMAIN, XMPP_DOMAIN, Gateway, check, default_peer, free_port,
                     gateway_xml, wait_for)
from msrp_ua import parse_cpim, parse_sip
from test_link import FakeServer

XMPP_SERVERS = ("prosody", "ejabberd")
USERS = ("alice", "carol", "dave")

NS_RECEIPTS = "urn:xmpp:receipts"
NS_MARKERS = "urn:xmpp:chat-markers:0"
NS_CHATSTATES = "http://jabber.org/protocol/chatstates"
NS_STANZAS = "urn:ietf:params:xml:ns:xmpp-stanzas"
NS_IMDN = "urn:ietf:params:xml:ns:imdn"
ISCOMPOSING = ('<?xml version="1.0" encoding="UTF-8"?>\n'
               '<isComposing xmlns="urn:ietf:params:xml:ns:im-iscomposing">'
               '<state>{}</state><contenttype>text/plain</contenttype></isComposing>\n')


def imdn_doc(message_id, status="delivered", kind="delivery", datetime="2026-12-04T14:00:00Z"):
    return (f'<?xml version="1.0" encoding="UTF-8" standalone="no" ?><imdn xmlns="{NS_IMDN}">'
            f'<message-id>{message_id}</message-id><datetime>{datetime}</datetime>'
            f'<{kind}-notification><status><{status}/></status></{kind}-notification></imdn>')


class SipUA(asyncio.DatagramProtocol):
    """A SIP user agent over UDP on 127.0.0.1: as the peer network (on env.peer_sip_port) it
    answers each request with answer(request) -> status (200 by default) and keeps them; it
    sends requests with request() and returns their final response."""

    def __init__(self, port=None, answer=None):
        self.port = port
        self.answer = answer or (lambda req: 200)
        self.requests = []
        self.waiting = {}       # call-id -> future of the final response
        self.transport = None

    async def start(self):
        loop = asyncio.get_running_loop()
        self.transport, _ = await loop.create_datagram_endpoint(
            lambda: self, local_addr=("127.0.0.1", self.port or 0))
        self.port = self.transport.get_extra_info("sockname")[1]
        return self

    def close(self):
        if self.transport:
            self.transport.close()

    def datagram_received(self, data, addr):
        msg = parse_sip(data)
        if msg.start.startswith("SIP/2.0 "):
            status = int(msg.start.split()[1])
            fut = self.waiting.get(msg.call_id)
            if status >= 200 and fut and not fut.done():
                fut.set_result(msg)
            return
        if msg.start.startswith("ACK "):
            return
        if not any(r.call_id == msg.call_id and r.cseq == msg.cseq for r in self.requests):
            self.requests.append(msg)
        status = self.answer(msg)
        lines = [f"SIP/2.0 {status} {'OK' if status < 300 else 'Refused'}"]
        lines += [f"Via: {v}" for v in msg.get_all("via")]
        to = msg.get("to")
        lines += [f"From: {msg.get('from')}", f"To: {to}{'' if 'tag=' in to else ';tag=ua1'}",
                  f"Call-ID: {msg.call_id}", f"CSeq: {msg.get('cseq')}", "Content-Length: 0", "", ""]
        self.transport.sendto("\r\n".join(lines).encode(), addr)

    async def request(self, gw_port, body, content_type, method="MESSAGE",
                      ruri=f"sip:alice@{XMPP_DOMAIN}", sender=f"sip:bob@{SIP_DOMAIN}",
                      headers=(), timeout=8):
        """Sends a request to the gateway (retransmitted as over UDP) and returns its final
        response (a msrp_ua.SipMessage)."""
        cid = uuid.uuid4().hex
        if isinstance(body, str):
            body = body.encode()
        head = [f"{method} {ruri} SIP/2.0",
                f"Via: SIP/2.0/UDP 127.0.0.1:{self.port};branch=z9hG4bK{cid[:16]}",
                f"From: <{sender}>;tag={cid[:8]}", f"To: <{ruri}>", f"Call-ID: {cid}",
                f"CSeq: 1 {method}", "Max-Forwards: 70"]
        if content_type:
            head.append(f"Content-Type: {content_type}")
        head += list(headers) + [f"Content-Length: {len(body)}", "", ""]
        data = "\r\n".join(head).encode() + body
        fut = asyncio.get_running_loop().create_future()
        self.waiting[cid] = fut
        t = 0.5
        for _ in range(int(timeout / 0.5)):
            self.transport.sendto(data, ("127.0.0.1", gw_port))
            try:
                return await asyncio.wait_for(asyncio.shield(fut), t)
            except asyncio.TimeoutError:
                t = min(t * 2, 2.0)
        raise AssertionError(f"no final response to {method} {ruri}")

    def messages(self):
        return [r for r in self.requests if r.start.startswith("MESSAGE ")]


def status_of(resp):
    return int(resp.start.split()[1])


async def peer(env, answer=None):
    return await SipUA(env.peer_sip_port, answer).start()


def child(msg, ns, name):
    return msg.xml.find(f"{{{ns}}}{name}")


def element(xml):
    return ET.fromstring(xml)




# ------------------------------------------------------------------ the component link

async def test_iqs_are_answered_as_rfc_6120_asks(env):
    """Every iq get/set gets exactly one result or error from the address it was sent to, with
    its id (RFC 6120 8.2.3).  ejabberd enforces it: a reply that keeps type='get' or lacks
    'from' makes it close the component link."""
    gw = await env.gateway()
    alice = await env.client("alice")
    gateway_jid = SIP_DOMAIN
    rows = [
        # (to, type, payload, expected type, expected condition)
        (gateway_jid, "get", "<ping xmlns='urn:xmpp:ping'/>", "result", None),
        (f"bob@{SIP_DOMAIN}", "get", "<ping xmlns='urn:xmpp:ping'/>", "result", None),
        (gateway_jid, "get", "<query xmlns='http://jabber.org/protocol/disco#info'/>", "result", None),
        (gateway_jid, "get", "<query xmlns='http://jabber.org/protocol/disco#info' node='x'/>",
         "error", "item-not-found"),
        (f"bob@{SIP_DOMAIN}", "get", "<query xmlns='http://jabber.org/protocol/disco#info'/>",
         "result", None),
        (f"bob@{SIP_DOMAIN}/phone", "get", "<ping xmlns='urn:xmpp:ping'/>", "error",
         "service-unavailable"),
        (f"bob@{SIP_DOMAIN}", "get", "<vCard xmlns='vcard-temp'/>", "error", "service-unavailable"),
        (gateway_jid, "get", "<query xmlns='http://jabber.org/protocol/disco#items'/>", "result",
         None),
        (gateway_jid, "get", "<query xmlns='jabber:iq:version'/>", "result", None),
        (gateway_jid, "get", "<query xmlns='jabber:iq:last'/>", "error", "service-unavailable"),
        (gateway_jid, "set", "<query xmlns='jabber:iq:private'/>", "error", "service-unavailable"),
        (gateway_jid, "get", "", "error", "bad-request"),
    ]
    for to, typ, payload, want_type, want_cond in rows:
        iq = alice.make_iq(ito=to, itype=typ)
        if payload:
            iq.append(element(payload))
        try:
            reply = await iq.send(timeout=5)
        except Exception as e:  # slixmpp raises IqError for an error reply
            reply = getattr(e, "iq", None)
            check(reply is not None, f"{to} {typ} {payload}: no reply ({e!r})")
        check(reply["type"] == want_type, f"{to} {payload}: type {reply['type']}, want {want_type}")
        check(reply["id"] == iq["id"], f"{to} {payload}: the reply keeps the id")
        check(reply["from"].full == to, f"{to} {payload}: the reply comes from {reply['from']}")
        if want_cond:
            check(reply["error"]["condition"] == want_cond,
                  f"{to} {payload}: condition {reply['error']['condition']}, want {want_cond}")
        if "disco#info'/>" in payload and want_type == "result" and to == gateway_jid:
            ident = reply.xml.find("{http://jabber.org/protocol/disco#info}query/"
                                   "{http://jabber.org/protocol/disco#info}identity")
            check(ident is not None and ident.get("category") == "gateway" and
                  ident.get("type") == "sip", f"identity gateway/sip: {reply}")
    # the link stayed up all along, and still carries messages
    check(gw.log_count(r"link lost|stream error") == 0, "the component link was never dropped")
    sip = await SipUA().start()
    try:
        resp = await sip.request(env.gw_sip_port, "after the iqs", "text/plain")
        check(status_of(resp) == env.xmpp.accepted_status, resp.start)
        await alice.expect(lambda m: m["body"] == "after the iqs", 5, "the message after the iqs")
    finally:
        sip.close()


class SplittingServer(FakeServer):
    """A component server that sends each stanza in pieces with pauses, then nothing more: the
    gateway must act on a stanza the moment its last byte arrives (expat's reparse deferral,
    backported to Debian 12's 2.5.0, would hold it until more data came)."""

    def __init__(self, stanza, pieces=4, pause=0.3):
        super().__init__(reply=b"")
        self.stanza, self.pieces, self.pause = stanza, pieces, pause
        self.sent_last = None

    async def _conn(self, reader, writer):
        try:
            await asyncio.wait_for(reader.readuntil(b">"), 5)
            header = (b"<?xml version='1.0'?><stream:stream xmlns='jabber:component:accept' "
                      b"xmlns:stream='http://etherx.jabber.org/streams' id='s1' from='sip.example'>")
            for i in range(0, len(header), 20):     # the header in pieces too
                writer.write(header[i:i + 20])
                await writer.drain()
                await asyncio.sleep(0.05)
            await asyncio.wait_for(reader.readuntil(b"</handshake>"), 5)
            for part in (b"<hand", b"shake/>"):
                writer.write(part)
                await writer.drain()
                await asyncio.sleep(0.2)
            await asyncio.sleep(0.5)
            step = -(-len(self.stanza) // self.pieces)
            for i in range(0, len(self.stanza), step):
                writer.write(self.stanza[i:i + step])
                await writer.drain()
                if i + step >= len(self.stanza):
                    self.sent_last = asyncio.get_running_loop().time()
                await asyncio.sleep(self.pause)
            await asyncio.sleep(5)      # quiet: no keepalive, nothing
        except (asyncio.TimeoutError, asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


async def test_stanza_in_several_reads_is_relayed_at_once(env):
    stanza = (f"<message from='alice@{XMPP_DOMAIN}/x' to='bob@{SIP_DOMAIN}' type='chat' "
              f"id='split1'><body>split over four writes</body></message>").encode()
    server = SplittingServer(stanza)
    await server.start()
    ua = await peer(env)
    try:
        xml = gateway_xml(env).replace(f'port="{env.xmpp.component_port}"', f'port="{server.port}"')
        await env.gateway(xml)
        await wait_for(lambda: ua.messages(), 4, "the MESSAGE for the split stanza")
        got_at = asyncio.get_running_loop().time()
        check(server.sent_last is not None and got_at - server.sent_last < 1.0,
              f"relayed {got_at - (server.sent_last or got_at):.2f}s after its last byte")
        check(ua.messages()[0].body == b"split over four writes", repr(ua.messages()[0].body))
    finally:
        ua.close()
        await server.stop()


async def test_a_second_gateway_on_the_same_component_refuses_to_run(env):
    """Prosody refuses a second connection for a component (stream error conflict); ejabberd
    takes it and hands each stanza to one of them at random.  Either way the newcomer says so
    and exits 1; the first one keeps serving, and on ejabberd logs the intruder."""
    first = await env.gateway()
    alice = await env.client("alice")
    env2_sip = free_port()
    xml = gateway_xml(env, sessions=f'<sessions msrp-port="{free_port()}"/>').replace(
        f'port="{env.gw_sip_port}"', f'port="{env2_sip}"')
    second = Gateway(env, env.gateway_binary, xml)      # not env.gateways: it must exit 1
    await second.start(wait_up=False)
    try:
        await wait_for(lambda: second.proc.returncode is not None, 15, "the second gateway to exit")
        check(second.proc.returncode == 1, f"exit status {second.proc.returncode}")
        check("refusing to run as a second instance" in second.log(), second.log()[-2000:])
        if env.xmpp.kind == "ejabberd":
            await first.wait_log(r"another gateway instance .* is connected", timeout=5)
        # the first one is alone again and serves as before
        sip = await SipUA().start()
        try:
            for i in range(5):
                resp = await sip.request(env.gw_sip_port, f"still here {i}", "text/plain")
                check(status_of(resp) == env.xmpp.accepted_status, resp.start)
            await wait_for(lambda: sum(1 for m in alice.inbox
                                       if m["body"].startswith("still here")) == 5, 5,
                           "all five messages at alice")
        finally:
            sip.close()
        check(first.proc.returncode is None, "the first gateway still runs")
    finally:
        await second.stop()
        second.logf.close() if not second.logf.closed else None


# ------------------------------------------------------------------ delivery verdicts

async def test_verdict_is_200_only_where_the_server_refuses_while_routing(env):
    """A MESSAGE the server took is 200 on Prosody, which refuses a message (unknown user,
    blocked sender) before it answers the ping behind it; 202 on ejabberd, which may still
    refuse it later.  An unknown user is 480 on both: not reachable, not a server fault."""
    gw = await env.gateway()
    alice = await env.client("alice")
    await gw.wait_log(r"the XMPP server is \S+: a SIP MESSAGE", timeout=5)
    sip = await SipUA().start()
    try:
        resp = await sip.request(env.gw_sip_port, "hello", "text/plain")
        want = 200 if env.xmpp.kind == "prosody" else 202
        check(status_of(resp) == want, f"{resp.start}, want {want} on {env.xmpp.kind}")
        resp = await sip.request(env.gw_sip_port, "hello nobody", "text/plain",
                                 ruri=f"sip:nobody@{XMPP_DOMAIN}")
        check(status_of(resp) == 480 and "service-unavailable" in resp.start, resp.start)
        check(not resp.get("retry-after"), "no Retry-After: the gateway is not overloaded")
    finally:
        sip.close()
    await alice.expect(lambda m: m["body"] == "hello", 5, "the first message")


async def test_verdict_setting_overrides_the_server_table(env):
    gw = await env.gateway(im='<im delivery-wait="2s" verdict="accepted"/>')
    await env.client("alice")
    sip = await SipUA().start()
    try:
        resp = await sip.request(env.gw_sip_port, "hello", "text/plain")
        check(status_of(resp) == 202, f"verdict=accepted: {resp.start}")
    finally:
        sip.close()
    check(gw.log_count(r"the XMPP server is") == 0, "no identity query when the setting decides")


# ------------------------------------------------------------------ typing notices

async def test_typing_notices_both_ways(env):
    await env.gateway()
    alice = await env.client("alice")
    ua = await peer(env)
    try:
        # XMPP -> SIP: composing, then paused
        for state in ("composing", "paused"):
            msg = alice.make_message(mto=f"bob@{SIP_DOMAIN}", mtype="chat")
            msg["chat_state"] = state
            msg.send()
        await wait_for(lambda: len(ua.messages()) == 2, 5, "two isComposing MESSAGEs")
        for req, state in zip(ua.messages(), ("active", "idle")):
            check(req.get("content-type").startswith("application/im-iscomposing+xml"),
                  req.get("content-type"))
            check(f"<state>{state}</state>".encode() in req.body, repr(req.body))
            check(req.get("from").startswith(f"<sip:alice@{XMPP_DOMAIN}>"), req.get("from"))
        # SIP -> XMPP: active -> composing, idle -> paused
        for state, chat in (("active", "composing"), ("idle", "paused")):
            resp = await ua.request(env.gw_sip_port, ISCOMPOSING.format(state),
                                    "application/im-iscomposing+xml")
            check(status_of(resp) == env.xmpp.accepted_status, resp.start)
            m = await alice.expect_any(lambda m: child(m, NS_CHATSTATES, chat) is not None, 5,
                                f"<{chat}/>")
            check(not m["body"], f"a chat state alone: {m}")
        resp = await ua.request(env.gw_sip_port, "<isComposing>nope", "application/im-iscomposing+xml")
        check(status_of(resp) == 400, f"a malformed document: {resp.start}")
    finally:
        ua.close()


async def test_a_refused_typing_notice_is_not_an_error_for_the_user(env):
    """baresip answers 415 to isComposing: logged, nothing comes back to the XMPP user."""
    gw = await env.gateway()
    alice = await env.client("alice")
    ua = await peer(env, lambda req: 415 if b"isComposing" in req.body else 200)
    try:
        msg = alice.make_message(mto=f"bob@{SIP_DOMAIN}", mtype="chat")
        msg["chat_state"] = "composing"
        msg.send()
        await wait_for(lambda: ua.messages(), 5, "the isComposing MESSAGE")
        await alice.expect_nothing(lambda m: m["type"] == "error", 1.0)
        await gw.wait_log(r"typing notice or delivery notification refused: 415", timeout=3)
    finally:
        ua.close()


# ------------------------------------------------------------------ delivery reports

async def test_receipt_request_becomes_an_imdn_request_and_the_imdn_a_receipt(env):
    """XMPP -> SIP with <request/> and <markable/>: CPIM asking for IMDNs, whose Message-ID (and
    Call-ID) carry the stanza id; the client's IMDN (here as linphone sends it: bare, deflated)
    becomes <received/> for that id, a display notification <displayed/>."""
    await env.gateway()
    alice = await env.client("alice")
    ua = await peer(env)
    try:
        msg = alice.make_message(mto=f"bob@{SIP_DOMAIN}", mbody="please confirm", mtype="chat")
        msg.append(element(f"<request xmlns='{NS_RECEIPTS}'/>"))
        msg.append(element(f"<markable xmlns='{NS_MARKERS}'/>"))
        msg.send()
        await wait_for(lambda: ua.messages(), 5, "the MESSAGE")
        req = ua.messages()[0]
        check(req.get("content-type") == "message/cpim", req.get("content-type"))
        cpim = parse_cpim(req.body)
        mid = cpim.get("imdn.Message-ID")
        check(mid and re.fullmatch(r"[0-9a-f]{8}~[A-Za-z0-9_-]+(~[A-Za-z0-9_-]+)?", mid),
              f"Message-ID {mid}")
        check("positive-delivery" in cpim.get("imdn.Disposition-Notification") and
              "display" in cpim.get("imdn.Disposition-Notification"), repr(req.body))
        check(cpim.body.strip() == b"please confirm", repr(cpim.body))
        check(req.call_id == mid, f"the Call-ID carries it too: {req.call_id}")
        # delivered, deflated and bare (linphone)
        resp = await ua.request(env.gw_sip_port, zlib.compress(imdn_doc(mid).encode()),
                                "message/imdn+xml", headers=["Content-Encoding: deflate"])
        check(status_of(resp) == env.xmpp.accepted_status, resp.start)
        m = await alice.expect_any(lambda m: child(m, NS_RECEIPTS, "received") is not None, 5,
                            "the receipt")
        check(child(m, NS_RECEIPTS, "received").get("id") == msg["id"],
              f"receipt for {msg['id']}: {m}")
        check(m["from"].bare == f"bob@{SIP_DOMAIN}", str(m["from"]))
        # displayed, in CPIM (RFC 5438)
        body = (f"From: <sip:bob@{SIP_DOMAIN}>\r\nTo: <sip:alice@{XMPP_DOMAIN}>\r\n"
                f"NS: imdn <urn:ietf:params:imdn>\r\nimdn.Message-ID: x1\r\n"
                f"DateTime: 2026-12-04T14:00:00Z\r\n\r\nContent-Type: message/imdn+xml\r\n"
                f"Content-Disposition: notification\r\n\r\n"
                + imdn_doc(mid, "displayed", "display"))
        resp = await ua.request(env.gw_sip_port, body, "message/cpim")
        check(status_of(resp) == env.xmpp.accepted_status, resp.start)
        m = await alice.expect_any(lambda m: child(m, NS_MARKERS, "displayed") is not None, 5,
                            "the displayed marker")
        check(child(m, NS_MARKERS, "displayed").get("id") == msg["id"], str(m))
        # a failed report becomes an error for the message
        resp = await ua.request(env.gw_sip_port, imdn_doc(mid, "failed"), "message/imdn+xml")
        check(status_of(resp) == env.xmpp.accepted_status, resp.start)
        m = await alice.expect_any(lambda m: m["type"] == "error" and m["id"] == msg["id"], 5,
                            "the error for the failed report")
        check(m["error"]["condition"] == "recipient-unavailable", str(m))
        # a report about a message the gateway did not ask about is taken and not forwarded
        resp = await ua.request(env.gw_sip_port, imdn_doc("someone-elses"), "message/imdn+xml")
        check(status_of(resp) == 200, resp.start)
        resp = await ua.request(env.gw_sip_port, b"\x78\x9c garbage", "message/imdn+xml",
                                headers=["Content-Encoding: deflate"])
        check(status_of(resp) == 400, f"a broken deflate body: {resp.start}")
        resp = await ua.request(env.gw_sip_port, "x", "message/imdn+xml",
                                headers=["Content-Encoding: gzip"])
        check(status_of(resp) == 415, f"an unknown coding: {resp.start}")
    finally:
        ua.close()


async def test_a_client_without_cpim_gets_the_text_again(env):
    """A SIP client that answers 415 to message/cpim (baresip) or 488 (liblinphone 5.1, to a
    DateTime in January or on 29 February) gets the text as text/plain; the sender sees no
    error."""
    await env.gateway()
    alice = await env.client("alice")
    ua = await peer(env)
    try:
        for refusal in (415, 488):
            ua.answer = lambda req: refusal if req.get("content-type") == "message/cpim" else 200
            ua.requests.clear()
            msg = alice.make_message(mto=f"bob@{SIP_DOMAIN}", mbody=f"plain please {refusal}",
                                     mtype="chat")
            msg.append(element(f"<request xmlns='{NS_RECEIPTS}'/>"))
            msg.send()
            await wait_for(lambda: len(ua.messages()) == 2, 5, "the CPIM MESSAGE and the text one")
            first, second = ua.messages()
            check(first.get("content-type") == "message/cpim", first.get("content-type"))
            check(second.get("content-type").lower().startswith("text/plain"),
                  second.get("content-type"))
            check(second.body == f"plain please {refusal}".encode(), repr(second.body))
            await alice.expect_nothing(lambda m: m["type"] == "error", 1.0)
    finally:
        ua.close()


async def test_an_imdn_request_from_sip_is_answered_from_the_xmpp_receipt(env):
    """SIP -> XMPP with an IMDN request: <request/> and <markable/> on the stanza; the client's
    <received/> and <displayed/> come back as IMDNs naming the original Message-ID and DateTime."""
    await env.gateway()
    alice = await env.client("alice")
    ua = await peer(env)
    try:
        body = (f"From: <sip:bob@{SIP_DOMAIN}>\r\nTo: <sip:alice@{XMPP_DOMAIN}>\r\n"
                f"DateTime: 2026-12-04T14:00:00Z\r\nNS: imdn <urn:ietf:params:imdn>\r\n"
                f"imdn.Message-ID: abc123\r\n"
                f"imdn.Disposition-Notification: positive-delivery, display\r\n\r\n"
                f"Content-Type: text/plain;charset=UTF-8\r\n\r\nhello in cpim")
        resp = await ua.request(env.gw_sip_port, body, "message/cpim")
        check(status_of(resp) == env.xmpp.accepted_status, resp.start)
        m = await alice.expect(lambda m: m["body"] == "hello in cpim", 5, "the message")
        check(child(m, NS_RECEIPTS, "request") is not None, f"<request/>: {m}")
        check(child(m, NS_MARKERS, "markable") is not None, f"<markable/>: {m}")
        for ns, name, kind, status in ((NS_RECEIPTS, "received", "delivery", "delivered"),
                                       (NS_MARKERS, "displayed", "display", "displayed")):
            r = alice.make_message(mto=m["from"], mtype="chat")
            r.append(element(
                f"<{name} xmlns='{ns}' id='{m['id']}'/>"))
            r.send()
            await wait_for(lambda: any(f"<{status}/>".encode() in q.body for q in ua.messages()),
                           5, f"the {kind} IMDN")
            req = [q for q in ua.messages() if f"<{status}/>".encode() in q.body][0]
            check(req.get("content-type") == "message/cpim", req.get("content-type"))
            cpim = parse_cpim(req.body)
            check(cpim.content_type.startswith("message/imdn+xml"), cpim.content_type)
            check(b"<message-id>abc123</message-id>" in cpim.body, repr(cpim.body))
            check(b"<datetime>2026-12-04T14:00:00Z</datetime>" in cpim.body, repr(cpim.body))
            check(f"<{kind}-notification>".encode() in cpim.body, repr(cpim.body))
            check(req.start == f"MESSAGE sip:bob@{SIP_DOMAIN} SIP/2.0", req.start)
    finally:
        ua.close()


# ------------------------------------------------------------------ trust before anything

async def test_untrusted_register_is_403_and_trusted_405(env):
    """REGISTER reaches the trust check like any request (nua used to answer 405 first)."""
    untrusted = default_peer(env, trust="127.0.0.9")
    gw = await env.gateway(peers=[untrusted])
    ua = await SipUA().start()
    try:
        resp = await ua.request(env.gw_sip_port, "", None, method="REGISTER",
                                ruri=f"sip:{XMPP_DOMAIN}")
        check(status_of(resp) == 403, f"untrusted REGISTER: {resp.start}")
    finally:
        ua.close()
    await gw.wait_log(r"(?i)refused register from 127\.0\.0\.1", timeout=3)
    await env.cleanup()
    await env.gateway()
    ua = await SipUA().start()
    try:
        resp = await ua.request(env.gw_sip_port, "", None, method="REGISTER",
                                ruri=f"sip:{XMPP_DOMAIN}")
        check(status_of(resp) == 405, f"trusted REGISTER: {resp.start}")
        allow = resp.get("allow") or ""
        check("MESSAGE" in allow and "REGISTER" not in allow, f"Allow: {allow}")
    finally:
        ua.close()


async def test_refusals_are_logged_at_a_bounded_rate(env):
    untrusted = default_peer(env, trust="127.0.0.9")
    gw = await env.gateway(peers=[untrusted], log_level="info")
    ua = await SipUA().start()
    try:
        for i in range(40):
            resp = await ua.request(env.gw_sip_port, f"spam {i}", "text/plain")
            check(status_of(resp) == 403, resp.start)
    finally:
        ua.close()
    lines = gw.log_count(r"(?i)refused message from")
    check(lines == 10, f"{lines} refusal lines for 40 refusals, want the first 10")


async def test_debug_log_shows_what_crossed_and_what_was_refused(env):
    """With debug logging, every stanza received is logged, and every refused MESSAGE (415
    included) is logged with its reason, so an operator can see why a client's message did not
    cross."""
    gw = await env.gateway(log_level="debug")
    alice = await env.client("alice")
    ua = await SipUA().start()
    try:
        alice.send_message(mto=f"bob@{SIP_DOMAIN}", mbody="logged?", mtype="chat")
        await gw.wait_log(r"received <message [^>]*to='bob@sip\.example'", timeout=5)
        resp = await ua.request(env.gw_sip_port, "<b>hi</b>", "text/html")
        check(status_of(resp) == 415, resp.start)
        await gw.wait_log(r"MESSAGE sip:bob@sip\.example -> sip:alice@xmpp\.example from "
                          r"\S+ \(text/html\): 415 Unsupported Media Type", timeout=3)
    finally:
        ua.close()
