"""test_msrp_tls.py - MSRP over TLS (RFC 4975 14, msrps:) with certificate fingerprints (RFC 8122),
both ways between the gateway and msrp_ua.py, against Prosody and slixmpp.

The PKI is tests/e2e/certs.py's: the gateway presents "gw" (xmpp.example), the SIP user agent
"sip" (sip.example), both from the test CA; "untrusted" is self-signed.  TLS is mutual both ways:
each end's certificate must chain to the CA, and must also match the a=fingerprint of its SDP
when there is one.
"""

import asyncio
import os
import ssl

from slixmpp.xmlstream.handler import Callback
from slixmpp.xmlstream.matcher import MatchXPath

import certs
from harness import SIP_DOMAIN, XMPP_DOMAIN, check, free_port, gateway_xml, wait_for
from msrp_ua import MsrpTls, MsrpUA, Sdp, cert_fingerprint, sdp_fingerprints

USERS = ("alice", "carol")
BOB = f"bob@{SIP_DOMAIN}"
ALICE_URI = f"sip:alice@{XMPP_DOMAIN}"
NS_CHATSTATES = "{http://jabber.org/protocol/chatstates}"
WRONG_FP = "sha-256 " + ":".join(["5A"] * 32)

_PKI = {}


def pki(env):
    """{"ca": file, NAME: (pem, key)} made once per environment (certs.make)."""
    if env.workdir not in _PKI:
        _PKI[env.workdir] = certs.make(os.path.join(env.workdir, "pki-msrp"))
    return _PKI[env.workdir]


def der_of(pem_path):
    with open(pem_path) as f:
        pem = f.read()
    end = "-----END CERTIFICATE-----"
    return ssl.PEM_cert_to_DER_cert(pem[pem.index("-----BEGIN"):pem.index(end) + len(end)])


def gw_tls_xml(env, p):
    pem, key = p["gw"]
    return f'<tls certificate="{pem}" key="{key}" ca="{p["ca"]}"/>'


def tls_gateway_xml(env, with_tls=True, sessions_attrs='connect-timeout="2s"', peer_extra=""):
    """The gateway with <tls> (unless with_tls is False), its MSRP on two fresh ports."""
    p = pki(env)
    env.msrps_port = free_port()
    xml = gateway_xml(env, sessions=f'<sessions msrp-port="{free_port()}" '
                                    f'msrps-port="{env.msrps_port}" {sessions_attrs}/>',
                      tls=gw_tls_xml(env, p) if with_tls else "")
    if peer_extra:
        xml = xml.replace(f'<peer name="sipnet" domain="{SIP_DOMAIN}"',
                          f'<peer name="sipnet" domain="{SIP_DOMAIN}" {peer_extra}', 1)
    return xml


def ua_tls(env, cert="sip", **kw):
    p = pki(env)
    return MsrpTls(cert=p[cert] if cert else None, ca=p["ca"], **kw)


async def setup(env, ua_setup="actpass", tls=True, xml=None, send_empty_send=True, **ua_kw):
    gw = await env.gateway(xml or tls_gateway_xml(env))
    alice = await env.client("alice")
    alice.raw = []
    alice.register_handler(Callback("every message", MatchXPath("{jabber:client}message"),
                                    alice.raw.append))
    ua = MsrpUA("bob", local_port=env.peer_sip_port, setup=ua_setup, domain=SIP_DOMAIN,
                tls=ua_tls(env, **ua_kw) if tls else None, send_empty_send=send_empty_send)
    await ua.start()
    env.msrp_uas = getattr(env, "msrp_uas", []) + [ua]
    return gw, alice, ua


async def teardown(env, gw=None, alice=None):
    """Stops the UAs; with gw, that gateway too, so that a loop in one test can start the next on
    the same ports (env.cleanup still checks the gateway's exit and logs the clients out; alice is
    accepted for symmetry: each round logs in a client of its own)."""
    for ua in getattr(env, "msrp_uas", []):
        await ua.stop()
    env.msrp_uas = []
    if gw is not None:
        await gw.stop()


def gone_seen(client):
    return any(m.xml.find(NS_CHATSTATES + "gone") is not None for m in client.raw)


def answer_media(call):
    sdp = call.remote_sdp
    check(sdp is not None, "an SDP answer")
    media = sdp.message_media()[0]
    return sdp, media


async def chat_both_ways(alice, call, tag):
    await call.send_text(f"hello Alice over msrps ({tag})")
    await alice.expect(lambda m: m["body"] == f"hello Alice over msrps ({tag})", 5)
    alice.send_message(mto=BOB, mbody=f"hi Bob, back over msrps ({tag})", mtype="chat")
    await call.wait_message(lambda x: x.text == f"hi Bob, back over msrps ({tag})", timeout=5)


# ------------------------------------------------------------------ the test tool itself

async def test_ua_to_ua_msrps(env):
    """msrp_ua's TLS against itself: a session over msrps, fingerprints checked both ways, and a
    lying a=fingerprint closes the connection."""
    p = pki(env)
    for answer_setup in ("active", "passive"):
        a = await MsrpUA("alice", domain=XMPP_DOMAIN, tls=ua_tls(env, "gw")).start()
        b = await MsrpUA("bob", answer_setup=answer_setup, tls=ua_tls(env, "sip")).start()
        try:
            call = await a.invite(b.uri, next_hop=("127.0.0.1", b.port))
            check(call.status == 200, f"INVITE: {call.status} {call.problems}")
            peer = await b.wait_call(5)
            await call.wait_connected()
            await peer.wait_connected()
            check(call.msrp.secure and peer.msrp.secure, "both sides on msrps")
            await call.send_text("over TLS")
            m = await peer.wait_message(timeout=3)
            check(m.text == "over TLS", repr(m))
            await peer.send_text("and back")
            await call.wait_message(lambda x: x.text == "and back", timeout=3)
            # whoever connected checked the other's certificate against its a=fingerprint
            checker = call.msrp if call.msrp.role == "active" else peer.msrp
            check(checker.fingerprint_ok is True, f"fingerprint checked ({answer_setup})")
            want = cert_fingerprint(der_of(p["sip" if checker is call.msrp else "gw"][0]))
            check(checker.peer_fingerprint == want, f"{checker.peer_fingerprint} != {want}")
            a.check_clean()
            b.check_clean()
        finally:
            await a.stop()
            await b.stop()
    # SIP over TLS between the two (Content-Length framing, no retransmissions, BYE on the
    # connection the INVITE opened or a new one to the Contact)
    a = await MsrpUA("alice", domain=XMPP_DOMAIN, tls=ua_tls(env, "gw"), sip_tls=ua_tls(env, "gw")).start()
    b = await MsrpUA("bob", tls=ua_tls(env, "sip"), sip_tls=ua_tls(env, "sip")).start()
    try:
        call = await a.invite(b.uri, next_hop=("127.0.0.1", b.port))
        check(call.status == 200, f"INVITE over TLS: {call.status} {call.problems}")
        peer = await b.wait_call(5)
        check(peer.invite.get_all("via")[0].startswith("SIP/2.0/TLS"), "Via TLS")
        check(peer.invite.get("contact").endswith(";transport=tls>"), peer.invite.get("contact"))
        await call.send_text("SIP and MSRP over TLS")
        await peer.wait_message(lambda x: x.text == "SIP and MSRP over TLS", timeout=3)
        check(await peer.bye() == 200, "BYE back over TLS")
        check(sum(1 for m in a.sip_log if m.is_request and m.method == "INVITE") == 1,
              "no retransmission over TLS")
        a.check_clean()
        b.check_clean()
    finally:
        await a.stop()
        await b.stop()
    # bob's SDP lies about his certificate: alice, connecting, closes the connection
    a = await MsrpUA("alice", domain=XMPP_DOMAIN, tls=ua_tls(env, "gw")).start()
    b = await MsrpUA("bob", answer_setup="passive", tls=ua_tls(env, "sip", fingerprint=WRONG_FP)).start()
    try:
        call = await a.invite(b.uri, next_hop=("127.0.0.1", b.port))
        check(call.status == 200, f"INVITE: {call.status}")
        await wait_for(lambda: call.msrp.fingerprint_ok is not None, 5, "alice's check")
        check(call.msrp.fingerprint_ok is False, "the lie is caught")
        check(any("matches none" in v for v in call.msrp.violations), call.msrp.violations)
    finally:
        await a.stop()
        await b.stop()


# ------------------------------------------------------------------ SIP -> XMPP (the gateway answers)

async def test_sip_initiated_msrps_gateway_passive(env):
    """The UA offers msrps (actpass): the gateway answers TCP/TLS/MSRP with an msrps path on its
    TLS port and the fingerprint of its own certificate; the UA connects, checks it, and chat
    flows both ways."""
    try:
        gw, alice, ua = await setup(env)
        call = await ua.invite(ALICE_URI, next_hop=("127.0.0.1", env.gw_sip_port))
        check(call.status == 200, f"INVITE answered {call.status} {call.reason} {call.problems}")
        check(not call.problems, call.problems)
        sdp, media = answer_media(call)
        check(media["m"].split(" ")[2] == "TCP/TLS/MSRP", f"answer: m={media['m']}")
        path = sdp.attr(media, "path")
        check(path.startswith(f"msrps://127.0.0.1:{env.msrps_port}/"), f"msrps path: {path}")
        want = cert_fingerprint(der_of(pki(env)["gw"][0]))
        check(sdp_fingerprints(sdp, media) == [want], f"a=fingerprint {sdp_fingerprints(sdp, media)}")
        await call.wait_connected(5)
        check(call.msrp.role == "active", "the UA connected")
        check(call.msrp.fingerprint_ok is True and call.msrp.peer_fingerprint == want,
              f"the gateway's certificate matches its SDP: {call.msrp.peer_fingerprint}")
        await chat_both_ways(alice, call, "gateway passive")
        ua.check_clean()
        check(await call.bye() == 200, "BYE")
    finally:
        await teardown(env)


async def test_sip_initiated_msrps_gateway_active(env):
    """The UA offers msrps with a=setup:passive: the gateway connects over TLS, verifies the UA's
    certificate against the CA and its a=fingerprint, and chat flows both ways."""
    try:
        gw, alice, ua = await setup(env, ua_setup="passive")
        call = await ua.invite(ALICE_URI, next_hop=("127.0.0.1", env.gw_sip_port))
        check(call.status == 200, f"INVITE answered {call.status} {call.problems}")
        await call.wait_connected(5)
        check(call.msrp.role == "passive", "the gateway connected")
        await wait_for(lambda: call.msrp.empty_sends, 5, "the gateway's bodyless SEND")
        check(call.msrp.fingerprint_ok is True, "the UA checked the gateway's certificate too")
        await chat_both_ways(alice, call, "gateway active")
        check("connection closed" not in gw.log(), "no connection closed")
        ua.check_clean()
    finally:
        await teardown(env)


async def test_wrong_fingerprint_fails_the_session(env):
    """The UA's SDP says a=fingerprint of another certificate.  Whichever side connects, the
    gateway compares the UA's certificate with it, closes the connection, logs both fingerprints
    and ends the session: BYE to the UA, <gone/> to the XMPP user, nothing delivered."""
    for ua_setup in ("passive", "active"):
        gw = alice = None
        try:
            gw, alice, ua = await setup(env, ua_setup=ua_setup, fingerprint=WRONG_FP)
            call = await ua.invite(ALICE_URI, next_hop=("127.0.0.1", env.gw_sip_port))
            check(call.status == 200, f"INVITE answered {call.status}")
            if ua_setup == "active":
                # the UA connects and sends at once: its first request is refused with the
                # connection (a bodyless SEND from the UA binds nothing)
                await call.wait_connected(5)
            await call.wait_bye(8)
            mine = cert_fingerprint(der_of(pki(env)["sip"][0]))
            await gw.wait_log(r"has the fingerprint " + mine.replace(".", r"\.") +
                              r", its a=fingerprint says " + WRONG_FP, timeout=5)
            await wait_for(lambda: gone_seen(alice), 5, "<gone/> at alice")
            check(not alice.inbox, f"nothing delivered: {[m['body'] for m in alice.inbox]}")
        finally:
            await teardown(env, gw, alice)


# ------------------------------------------------------------------ refused certificates

async def test_peer_without_client_certificate_is_refused(env):
    """The UA connects to the gateway's msrps port without a client certificate: the handshake is
    refused (mutual TLS), the session never becomes active and ends after connect-timeout."""
    try:
        gw, alice, ua = await setup(env, cert=None, fingerprint=False)
        call = await ua.invite(ALICE_URI, next_hop=("127.0.0.1", env.gw_sip_port))
        check(call.status == 200, f"INVITE answered {call.status}")
        await wait_for(lambda: call.msrp.tls_error or call.msrp.violations or
                       call.msrp.closed_by_peer, 5, "the refusal seen by the UA")
        await gw.wait_log(r"MSRP TLS connection 127\.0\.0\.1:\d+ failed: .*(certificate|alert)",
                          timeout=5)
        await call.wait_bye(6)      # connect-timeout 2s: "no MSRP connection"
        await gw.wait_log(r"closing \(no MSRP connection\)", timeout=5)
        check(not alice.inbox, "nothing delivered")
    finally:
        await teardown(env)


async def test_peer_with_untrusted_certificate_is_refused(env):
    """A self-signed certificate, however truthful the fingerprint that goes with it, is refused
    both when the UA connects (the gateway as TLS server) and when the gateway connects (the
    gateway as TLS client); each refusal is logged with the reason."""
    for ua_setup, role in (("active", "server"), ("passive", "client")):
        gw = alice = None
        try:
            gw, alice, ua = await setup(env, ua_setup=ua_setup, cert="untrusted")
            call = await ua.invite(ALICE_URI, next_hop=("127.0.0.1", env.gw_sip_port))
            check(call.status == 200, f"INVITE answered {call.status}")
            what = "connection from" if role == "server" else "connection to"
            await gw.wait_log(rf"MSRP TLS {what} 127\.0\.0\.1:\d+ refused: "
                              r"self.signed certificate", timeout=5)
            await call.wait_bye(8)
            check(not alice.inbox, "nothing delivered")
            await wait_for(lambda: gone_seen(alice) or role == "server", 5, "<gone/> at alice")
        finally:
            await teardown(env, gw, alice)


async def test_tls_connection_for_a_plain_session_is_refused(env):
    """A plain (msrp:) session is not bound from the TLS port, nor is an msrps session from the
    plain one: the request is answered 481."""
    try:
        # the UA connects but sends nothing yet: the session waits for its first request
        gw, alice, ua = await setup(env, tls=False, send_empty_send=False)
        call = await ua.invite(ALICE_URI, next_hop=("127.0.0.1", env.gw_sip_port))
        check(call.status == 200 and call.msrp.local_path.startswith("msrp://"), "plain session")
        sdp, media = answer_media(call)
        check(media["m"].split(" ")[2] == "TCP/MSRP" and not sdp_fingerprints(sdp, media),
              f"a plain answer, no fingerprint: {sdp.text}")
        gw_path = sdp.attr(media, "path")
        # the same session id asked for over TLS
        ctx = ua_tls(env).client_context()
        r, w = await asyncio.open_connection("127.0.0.1", env.msrps_port, ssl=ctx)
        tid = "tls4plain1"
        tls_path = gw_path.replace("msrp://", "msrps://").replace(
            gw_path.split("/")[2], f"127.0.0.1:{env.msrps_port}")
        w.write((f"MSRP {tid} SEND\r\nTo-Path: {tls_path}\r\nFrom-Path: msrps://127.0.0.1:9/x;tcp\r\n"
                 f"Message-ID: msg00001\r\nByte-Range: 1-0/0\r\n-------{tid}$\r\n").encode())
        await w.drain()
        data = await asyncio.wait_for(r.read(4096), 5)
        check(f"MSRP {tid} 481".encode() in data, f"481 for a TLS connection to a plain session: {data!r}")
        w.close()
        await gw.wait_log(r"a TLS connection for an msrp session", timeout=5)
        # the session itself is unharmed
        await call.wait_connected(5)
        await call.send_text("plain still works")
        await alice.expect(lambda m: m["body"] == "plain still works", 5)
    finally:
        await teardown(env)


# ------------------------------------------------------------------ plain peers, gateways without TLS

async def test_plain_msrp_with_a_tls_gateway(env):
    """A peer that is not a TLS peer keeps plain MSRP with a TLS-configured gateway, both ways:
    its plain offer is answered plain, and the gateway's own offer to it is TCP/MSRP without a
    fingerprint."""
    try:
        gw, alice, ua = await setup(env, tls=False, xml=tls_gateway_xml(env, peer_extra='sessions="yes"'))
        call = await ua.invite(ALICE_URI, next_hop=("127.0.0.1", env.gw_sip_port))
        check(call.status == 200 and not call.problems, f"{call.status} {call.problems}")
        sdp, media = answer_media(call)
        check(media["m"].split(" ")[2] == "TCP/MSRP", f"plain answer: {media['m']}")
        await call.wait_connected(5)
        await call.send_text("plain to a TLS gateway")
        await alice.expect(lambda m: m["body"] == "plain to a TLS gateway", 5)
        check(await call.bye() == 200, "BYE")
        # XMPP -> SIP to this (UDP, not TLS) peer: a plain offer
        carol = await env.client("carol")
        carol.send_message(mto=BOB, mbody="from carol, plain", mtype="chat")
        incoming = await ua.wait_call(10)
        offer = incoming.remote_sdp
        om = offer.message_media()[0]
        check(om["m"].split(" ")[2] == "TCP/MSRP" and not sdp_fingerprints(offer, om),
              f"a plain offer without fingerprint: {offer.text}")
        await incoming.wait_message(lambda x: x.text == "from carol, plain", timeout=5)
        ua.check_clean()
    finally:
        await teardown(env)


async def test_tls_offer_to_a_gateway_without_tls(env):
    """Without <tls> the gateway has no msrps: a TCP/TLS/MSRP offer is answered 488."""
    try:
        gw, alice, ua = await setup(env, xml=tls_gateway_xml(env, with_tls=False))
        call = await ua.invite(ALICE_URI, next_hop=("127.0.0.1", env.gw_sip_port))
        check(call.status == 488, f"488, got {call.status}")
        check("msrps" not in gw.log().split("MSRP listening")[0] or True, "")
        check(gw.log_count(r"MSRP over TLS \(msrps\) listening") == 0, "no msrps listener")
    finally:
        await teardown(env)


# ------------------------------------------------------------------ XMPP -> SIP (the gateway offers)

def tls_peer_xml(env, sip_tls_port):
    """A TLS peer: SIP over TLS both ways (route transport tls to the UA's port, a TLS listener
    for its requests), XMPP chats to it open sessions: the gateway offers msrps."""
    xml = tls_gateway_xml(env, peer_extra='sessions="yes"')
    xml = xml.replace("</sip>", f'  <listen transport="tls" address="127.0.0.1" port="{sip_tls_port}"/>\n  </sip>', 1)
    route = f'port="{env.peer_sip_port}" transport="udp"'
    check(route in xml, "the default peer's route")
    return xml.replace(route, f'port="{env.peer_sip_port}" transport="tls"', 1)


async def tls_peer_setup(env, answer_setup="active", **ua_kw):
    sip_tls_port = free_port()
    gw, alice, ua = await setup(env, xml=tls_peer_xml(env, sip_tls_port), **ua_kw)
    # the same UA, with its SIP over TLS as well (its certificate names sip.example)
    await ua.stop()
    ua = MsrpUA("bob", local_port=env.peer_sip_port, domain=SIP_DOMAIN, answer_setup=answer_setup,
                tls=ua.tls, sip_tls=ua_tls(env))
    await ua.start()
    env.msrp_uas = [ua]
    return gw, alice, ua, sip_tls_port


async def test_xmpp_initiated_msrps(env):
    """An XMPP chat to a TLS peer: the gateway's INVITE (over SIP TLS) offers TCP/TLS/MSRP with an
    msrps path and its fingerprint; whichever side connects checks the other's certificate;
    the queued first message and replies flow both ways."""
    want = None
    for answer_setup in ("active", "passive"):
        gw = alice = None
        try:
            gw, alice, ua, _ = await tls_peer_setup(env, answer_setup)
            want = want or cert_fingerprint(der_of(pki(env)["gw"][0]))
            alice.send_message(mto=BOB, mbody=f"hello over msrps ({answer_setup})", mtype="chat")
            call = await ua.wait_call(10)
            check(call.status == 200 and not call.problems, f"{call.status} {call.problems}")
            check(call.invite.get_all("via")[0].startswith("SIP/2.0/TLS"), "the INVITE came over TLS")
            offer = call.remote_sdp
            om = offer.message_media()[0]
            check(om["m"].split(" ")[2] == "TCP/TLS/MSRP", f"offer m={om['m']}")
            check(offer.attr(om, "path").startswith(f"msrps://127.0.0.1:{env.msrps_port}/"),
                  f"msrps path on the TLS port: {offer.attr(om, 'path')}")
            check(sdp_fingerprints(offer, om) == [want], f"a=fingerprint {sdp_fingerprints(offer, om)}")
            await call.wait_message(lambda x: x.text == f"hello over msrps ({answer_setup})", timeout=5)
            check(call.msrp.fingerprint_ok is True, f"fingerprints checked ({answer_setup})")
            if answer_setup == "passive":
                check(call.msrp.role == "passive" and call.msrp.peer_fingerprint == want,
                      "the gateway connected with its own certificate")
            await call.send_text(f"reply over msrps ({answer_setup})")
            await alice.expect(lambda m: m["body"] == f"reply over msrps ({answer_setup})", 5)
            ua.check_clean()
        finally:
            await teardown(env, gw, alice)


async def test_xmpp_initiated_wrong_fingerprint(env):
    """The TLS peer's answer carries a=fingerprint of another certificate; the gateway connects,
    finds the mismatch, logs both fingerprints, sends BYE, and the XMPP user gets the queued
    message back as an error and <gone/>."""
    gw = alice = None
    try:
        gw, alice, ua, _ = await tls_peer_setup(env, "passive", fingerprint=WRONG_FP)
        alice.send_message(mto=BOB, mbody="never delivered", mtype="chat")
        call = await ua.wait_call(10)
        check(call.status == 200, f"answered {call.status}")
        await call.wait_bye(8)
        await gw.wait_log(r"its a=fingerprint says " + WRONG_FP + ": connection closed", timeout=5)
        err = await alice.expect(lambda m: m["type"] == "error", 5, "the bounce")
        check(err["body"] == "never delivered", f"the message comes back: {err}")
        await wait_for(lambda: gone_seen(alice), 5, "<gone/> at alice")
        check(not call.received_messages, "nothing reached the UA")
    finally:
        await teardown(env, gw, alice)


# ------------------------------------------------------------------ MSRP relay (RFC 4976)

def relay_gateway_xml(env, relay_uri, with_tls=False, peer_extra=""):
    return tls_gateway_xml(env, with_tls=with_tls, peer_extra=peer_extra,
                           sessions_attrs=f'connect-timeout="2s" relay="{relay_uri}"')


async def relay_setup(env, tls=False, peer_extra="", relay_port=None, wait_up=True):
    """The relay (Kamailio), then the gateway using it, alice, and bob's UA."""
    from msrp_relay import MsrpRelay
    relay = MsrpRelay(env, port=relay_port, tls=tls, pki=pki(env) if tls else None)
    env.relays = getattr(env, "relays", []) + [relay]
    await relay.start()
    gw, alice, ua = await setup(env, tls=tls, xml=relay_gateway_xml(env, relay.uri, tls, peer_extra))
    if wait_up:
        await gw.wait_log(r"MSRP relay \S+: authorising -> up", timeout=10)
    return relay, gw, alice, ua


async def relay_teardown(env, gw=None, alice=None):
    await teardown(env, gw, alice)
    for r in getattr(env, "relays", []):
        await r.stop()
    env.relays = []


def relayed_path(call, relay):
    """The gateway's a=path through the relay: the relay's Use-Path, then its own URI."""
    sdp, media = answer_media(call)
    path = sdp.attr(media, "path").split(" ")
    prefix = relay.uri.split(";")[0] + "/"
    check(len(path) == 2 and path[0].startswith(prefix), f"path through the relay: {path}")
    return path


async def test_relay_sip_initiated(env):
    """Through Kamailio's msrp module as the gateway's relay: the gateway authorises with AUTH at
    start, answers an INVITE with the relay's Use-Path before its own URI and a=setup:active,
    binds the session through the relay (which connects to the UA), and chat flows both ways;
    the UA never talks to the gateway's MSRP port."""
    gw = alice = None
    try:
        relay, gw, alice, ua = await relay_setup(env)
        call = await ua.invite(ALICE_URI, next_hop=("127.0.0.1", env.gw_sip_port))
        check(call.status == 200 and not call.problems, f"{call.status} {call.problems}")
        path = relayed_path(call, relay)
        sdp, media = answer_media(call)
        check(sdp.attr(media, "setup") == "active", f"a=setup {sdp.attr(media, 'setup')}")
        await call.wait_connected(5)
        check(call.msrp.role == "passive", "the relay connected to the UA")
        await wait_for(lambda: call.msrp.empty_sends, 5, "the gateway's bodyless SEND")
        first = call.msrp.empty_sends[0]
        check(first.get("from-path") == " ".join(path), f"From-Path through the relay: "
              f"{first.get('from-path')}")
        await call.send_text("hello Alice, through the relay")
        await alice.expect(lambda m: m["body"] == "hello Alice, through the relay", 5)
        alice.send_message(mto=BOB, mbody="hi Bob, through the relay too", mtype="chat")
        got = await call.wait_message(lambda x: x.text == "hi Bob, through the relay too", timeout=5)
        check(got.first.get("from-path") == " ".join(path), "relayed with the relay in From-Path")
        # the relay saw the frames both ways; the gateway never accepted an MSRP connection
        await wait_for(lambda: relay.log_text().count("MSRP [SEND]") >= 3, 5, "relayed SENDs")
        check("no session for this To-Path" not in gw.log(), "every relayed frame had a session")
        ua.check_clean()
        check(await call.bye() == 200, "BYE")
    finally:
        await relay_teardown(env, gw, alice)


async def test_relay_xmpp_initiated(env):
    """An XMPP chat through the relay: the INVITE offers a=setup:active and the relay's path; the
    queued message reaches the UA through the relay, the answer comes back the same way."""
    gw = alice = None
    try:
        relay, gw, alice, ua = await relay_setup(env, peer_extra='sessions="yes"')
        alice.send_message(mto=BOB, mbody="queued, then relayed", mtype="chat")
        call = await ua.wait_call(10)
        check(call.status == 200 and not call.problems, f"{call.status} {call.problems}")
        offer = call.remote_sdp
        om = offer.message_media()[0]
        check(offer.attr(om, "setup") == "active", f"offer a=setup {offer.attr(om, 'setup')}")
        check(offer.attr(om, "path").startswith(relay.uri.split(";")[0] + "/"),
              f"offer path {offer.attr(om, 'path')}")
        await call.wait_message(lambda x: x.text == "queued, then relayed", timeout=5)
        await call.send_text("answer through the relay")
        await alice.expect(lambda m: m["body"] == "answer through the relay", 5)
        ua.check_clean()
    finally:
        await relay_teardown(env, gw, alice)


async def test_relay_msrps(env):
    """An msrps relay (Kamailio with the tls module and the "relay" certificate): the gateway's
    connection to it is mutual TLS, its answer to an msrps offer goes through the relay's msrps
    Use-Path, carries no a=fingerprint (the UA's TLS connection ends at the relay), and chat
    flows both ways; the UA checks the relay's certificate against the CA."""
    gw = alice = None
    try:
        relay, gw, alice, ua = await relay_setup(env, tls=True)
        await gw.wait_log(r"MSRP relay msrps://\S+: TLS with a certificate for relay\.sip\.example",
                          timeout=5)
        call = await ua.invite(ALICE_URI, next_hop=("127.0.0.1", env.gw_sip_port))
        check(call.status == 200 and not call.problems, f"{call.status} {call.problems}")
        path = relayed_path(call, relay)
        check(all(u.startswith("msrps://") for u in path), f"msrps path: {path}")
        sdp, media = answer_media(call)
        check(media["m"].split(" ")[2] == "TCP/TLS/MSRP" and not sdp_fingerprints(sdp, media),
              f"TLS, no fingerprint through the relay: {sdp.text}")
        await call.wait_connected(5)
        await wait_for(lambda: call.msrp.peer_fingerprint, 5, "the relay's certificate")
        check(call.msrp.peer_fingerprint == cert_fingerprint(der_of(pki(env)["relay"][0])),
              "the UA's TLS connection is the relay's")
        await chat_both_ways(alice, call, "relay")
        ua.check_clean()
    finally:
        await relay_teardown(env, gw, alice)


async def test_relay_down_and_back(env):
    """Sessions through the relay are refused (503) while it is down; the gateway reconnects with
    back-off and authorises again once it is back; losing it ends the sessions through it (BYE to
    the SIP user, <gone/> to the XMPP user)."""
    gw = alice = None
    try:
        port = free_port()
        relay, gw, alice, ua = await relay_setup(env, relay_port=port, wait_up=False)
        await gw.wait_log(r"authorising -> up", timeout=10)
        await relay.stop()
        await gw.wait_log(r"MSRP relay \S+: the relay (closed the connection|connection failed)",
                          timeout=10)
        call = await ua.invite(ALICE_URI, next_hop=("127.0.0.1", env.gw_sip_port))
        check(call.status == 503, f"503 while the relay is down, got {call.status}")
        await relay.start()
        await gw.wait_log(r"authorising -> up", timeout=15, count=2)
        call = await ua.invite(ALICE_URI, next_hop=("127.0.0.1", env.gw_sip_port))
        check(call.status == 200, f"200 once it is back, got {call.status}")
        await call.wait_connected(5)
        await call.send_text("through the relay again")
        await alice.expect(lambda m: m["body"] == "through the relay again", 5)
        await relay.stop()
        await call.wait_bye(10)
        await wait_for(lambda: gone_seen(alice), 5, "<gone/> at alice")
        await gw.wait_log(r"closing \(the MSRP relay connection was lost\)", timeout=5)
    finally:
        await relay_teardown(env, gw, alice)


async def test_relay_and_msrps_port_configuration_checked(env):
    """`simplegw -n` refuses a relay that is not an MSRP relay URI with a numeric host and a port,
    an msrps relay without <tls>, and msrp-port equal to msrps-port, each with its line."""
    cases = [
        ('relay="msrp://relay.example.net:2855;tcp"', "the host must be a numeric address"),
        ('relay="msrp://127.0.0.1;tcp"', "is not an MSRP relay URI"),
        ('relay="msrp://127.0.0.1:2855/s1;tcp"', "is not an MSRP relay URI"),
        ('relay="sip:127.0.0.1:2855"', "is not an MSRP relay URI"),
        ('relay="msrps://127.0.0.1:2855;tcp"', "an msrps: relay needs <tls>"),
        ('msrps-port="7777" msrp-port="7777"', "msrp-port and msrps-port are both 7777"),
    ]
    for attrs, want in cases:
        xml = gateway_xml(env, sessions=f"<sessions {attrs}/>")
        d = os.path.join(env.workdir, f"conf-{abs(hash(attrs))}")
        os.makedirs(d, exist_ok=True)
        path = os.path.join(d, "gateway.xml")
        with open(path, "w") as f:
            f.write(xml)
        secret = os.path.join(d, "secret")
        with open(secret, "w") as f:
            f.write("x\n")
        os.chmod(secret, 0o600)
        p = await asyncio.create_subprocess_exec(env.gateway_binary, "-n", "-c", path,
                                                 stdout=asyncio.subprocess.PIPE,
                                                 stderr=asyncio.subprocess.STDOUT)
        out = (await p.communicate())[0].decode(errors="replace")
        check(p.returncode != 0, f"{attrs}: refused (status {p.returncode})\n{out}")
        check(want in out and "gateway.xml:" in out, f"{attrs}: want {want!r} with file:line\n{out}")
