"""test_tls_sip.py - SIP over TLS between the gateway and its peers (RFC 3261 26, RFC 5922):
mutual certificates, each TLS peer identified by the domain its certificate names.

The gateway here has <tls> (its certificate "gw" names xmpp.example), a TLS listener beside its
UDP/TCP one, and two peers with tls="required": sip.example, routed over TLS to Kamailio's TLS
port, and sip2.example (routed nowhere useful: only its identity matters).  Both trust
127.0.0.1, so only the certificates tell them apart (sip2.example is configured only in the
tests without Kamailio: see TlsSetup).

Kamailio (conf/kamailio-sip.example.cfg with WITH_TLS, harness.Kamailio(tls=True)) is the
registrar, proxy and presence server of sip.example; its SIP users (sipp) reach it over UDP, and
it talks to the gateway over TLS only, both ways, presenting one certificate of the test PKI
(tests/e2e/certs.py) as server and as client.  The hostile cases without Kamailio use
sip_tls.py, a TLS user agent of its own.
"""

import asyncio
import os
import re
import shutil
import signal
import ssl

from harness import (SIP_DOMAIN, XMPP_DOMAIN, Kamailio, check, error_condition, free_port,
                     gateway_xml, notifies_of, pidf, presence_publish_update, tls_pki, wait_for,
                     xmpp_servers)
from sip_tls import SipTlsClient, read_message, response_to
from test_presence import counting_watcher, expect_pres, watcher

XMPP_SERVERS = ("prosody", "ejabberd")
SIP2_DOMAIN = "sip2.example"
COMPONENTS = (SIP_DOMAIN, SIP2_DOMAIN)
USERS = ("alice", "carol")
ALICE = f"alice@{XMPP_DOMAIN}"
ALICE_URI = f"sip:{ALICE}"
BOB = f"bob@{SIP_DOMAIN}"
BOB_URI = f"sip:{BOB}"

# what the gateway logs when it refuses a handshake (a line with "TLS" and one of these)
REASON_EXPIRED = r"certificate has expired"
REASON_UNTRUSTED = r"self[- ]signed certificate|unable to get local issuer certificate"
REASON_NO_PEER = r"names no configured peer"
REASON_NOT_ROUTE = r"does not name"
REASON_NO_CERT = r"certificate required|no client certificate|did not return a certificate"

REGISTER_XML = """<?xml version="1.0" encoding="ISO-8859-1" ?>
<!-- register.xml (written by test_tls_sip.py) - REGISTERs sip:{{user}}@{{domain}} with a Contact
     on another port, where the test's UAS listens, and expects 200. -->
<scenario name="register">
  <send retrans="500">
    <![CDATA[
REGISTER sip:{{domain}} SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: <sip:{{user}}@{{domain}}>;tag=[pid]SIPpTag00[call_number]
To: <sip:{{user}}@{{domain}}>
Call-ID: [call_id]
CSeq: 1 REGISTER
Contact: <sip:{{user}}@127.0.0.1:{{contact_port}}>
Expires: 600
Max-Forwards: 70
Content-Length: 0

]]>
  </send>
  <recv response="200"/>
</scenario>
"""


# ---------------------------------------------------------------- set-up

def tls_peer(name, domain, port, tls="required"):
    return (f'<peer name="{name}" domain="{domain}" tls="{tls}">\n'
            f'    <route address="127.0.0.1" port="{port}" transport="tls" options-interval="0s"/>\n'
            f'    <trust address="127.0.0.1"/>\n'
            f'  </peer>\n')


def tls_gateway_xml(env, gw_tls_port, peer_tls_port, presence=False, sip2=True):
    """The gateway's file: <tls> with the "gw" certificate, a TLS listener on gw_tls_port beside
    the UDP/TCP ones, sip.example routed over TLS to peer_tls_port, and with sip2, sip2.example
    routed to nowhere."""
    pki = tls_pki(env)
    pem, key = pki["gw"]
    peers = [tls_peer("sipnet", SIP_DOMAIN, peer_tls_port)]
    if sip2:
        peers.append(tls_peer("sip2net", SIP2_DOMAIN, free_port()))
    xml = gateway_xml(env, peers=peers,
                      tls=f'<tls certificate="{pem}" key="{key}" ca="{pki["ca"]}"/>')
    tcp = f'<listen transport="tcp" address="127.0.0.1" port="{env.gw_sip_port}"/>'
    check(tcp in xml, "gateway_xml changed: cannot add the TLS listener")
    xml = xml.replace(tcp, tcp + f'\n    <listen transport="tls" address="127.0.0.1" '
                                 f'port="{gw_tls_port}"/>', 1)
    if presence:
        xml = xml.replace("<im ", '<presence expires="120s" min-expires="10s" max-expires="600s"/>'
                                  '\n  <im ', 1)
    return xml


class TlsSetup:
    """Kamailio over TLS (presenting `cert`) unless kamailio=False, and the gateway peering with
    it; close() stops Kamailio (env.cleanup stops the rest).  sip2.example is a peer only
    without Kamailio: ejabberd's component listener routes every host it lists to each
    component connection, so the gateway, finding its sip2.example probes on its sip.example
    link, would take it for another instance (the tests with Kamailio run on ejabberd too)."""

    def __init__(self, env, cert="sip", kamailio=True, presence=False):
        self.env = env
        self.pki = tls_pki(env)
        self.gw_tls_port = free_port()
        self.kam = Kamailio(env, tls=True, cert=cert, gw_tls_port=self.gw_tls_port) \
            if kamailio else None
        self.presence = presence
        self.gw = None

    async def open(self):
        try:
            if self.kam:
                await self.kam.start()
            peer_port = self.kam.tls_port if self.kam else free_port()
            self.gw = await self.env.gateway(tls_gateway_xml(self.env, self.gw_tls_port,
                                                             peer_port, self.presence,
                                                             sip2=self.kam is None))
        except BaseException:
            await self.close()
            raise
        return self

    async def close(self):
        if self.kam:
            await self.kam.stop()

    def client(self, cert, **kw):
        """A sip_tls client to the gateway's TLS port presenting certificate `cert` (None: none)."""
        kw.setdefault("server_name", XMPP_DOMAIN)
        return SipTlsClient(self.gw_tls_port, cert=self.pki[cert] if cert else None,
                            ca=self.pki["ca"], **kw)


def tls_log(gw, reason):
    """The gateway's log lines that mention TLS and match the regexp `reason`."""
    return [line for line in gw.log().splitlines() if "TLS" in line and re.search(reason, line)]


async def expect_tls_log(gw, reason, count=1, timeout=10, what=""):
    await wait_for(lambda: len(tls_log(gw, reason)) >= count, timeout,
                   f"a TLS line /{reason}/ in the gateway's log {what}")


async def register(env, kam, user, contact_port):
    """user@sip.example registered at Kamailio (over UDP) with a Contact on contact_port."""
    path = os.path.join(env.workdir, "register.xml")
    if not os.path.exists(path):
        with open(path, "w") as f:
            f.write(REGISTER_XML)
    s = env.sipp(f"register-{user}", path, dict(user=user, domain=SIP_DOMAIN,
                                                 contact_port=str(contact_port)),
                 remote=kam.remote, timeout=10)
    rc = await s.run(15)
    check(rc == 0, f"REGISTER of {user} at Kamailio failed ({rc}): {s.error_text()}")


def uas(env, timeout=20):
    """A SIP user agent answering one MESSAGE with 200 (register it to make it bob)."""
    return env.sipp("uas", "uas_reply.xml", dict(status="200", phrase="OK"), timeout=timeout)


def uac_via(env, kam, body, expect):
    """bob (sipp, over UDP) sends a MESSAGE to alice through Kamailio, expecting `expect`."""
    values = dict(ruri=ALICE_URI, to=ALICE_URI, sender=BOB_URI, ctype="text/plain;charset=UTF-8",
                  extra="", body=body, expect=str(expect))
    return env.sipp("uac", "uac_message.xml", values, remote=kam.remote)


def send(client, to, body):
    msg = client.make_message(mto=to, mbody=body, mtype="chat")
    msg.send()
    return msg["id"]


class UdpUA(asyncio.DatagramProtocol):
    """A SIP UA over UDP that sends one request and returns its final status, whatever it is
    (sipp expects one given status): for the cases where Kamailio cannot reach the gateway."""

    def __init__(self):
        self.finals = {}
        self.transport = None

    def datagram_received(self, data, addr):
        head = data.split(b"\r\n\r\n", 1)[0].decode("utf-8", "replace").split("\r\n")
        if not head[0].startswith("SIP/2.0 "):
            return
        code = int(head[0].split()[1])
        cid = next((h.split(":", 1)[1].strip() for h in head[1:]
                    if h.lower().startswith(("call-id:", "i:"))), None)
        if code >= 200 and cid:
            self.finals.setdefault(cid, head[0])

    async def message(self, port, body, ruri=ALICE_URI, sender=BOB_URI, timeout=15.0):
        """The final response's status line, or None after timeout."""
        loop = asyncio.get_running_loop()
        self.transport, _ = await loop.create_datagram_endpoint(
            lambda: self, local_addr=("127.0.0.1", 0))
        try:
            me = self.transport.get_extra_info("sockname")[1]
            cid = os.urandom(8).hex()
            data = (f"MESSAGE {ruri} SIP/2.0\r\n"
                    f"Via: SIP/2.0/UDP 127.0.0.1:{me};branch=z9hG4bK{cid};rport\r\n"
                    f"From: <{sender}>;tag={cid[:8]}\r\nTo: <{ruri}>\r\nCall-ID: {cid}\r\n"
                    f"CSeq: 1 MESSAGE\r\nMax-Forwards: 70\r\nContent-Type: text/plain\r\n"
                    f"Content-Length: {len(body.encode())}\r\n\r\n{body}").encode()
            deadline = loop.time() + timeout
            t = 0.5
            while loop.time() < deadline and cid not in self.finals:
                self.transport.sendto(data, ("127.0.0.1", port))
                try:
                    await wait_for(lambda: cid in self.finals, min(t, deadline - loop.time()),
                                   "final")
                except AssertionError:
                    pass
                t = min(t * 2, 4.0)
            return self.finals.get(cid)
        finally:
            self.transport.close()


# ---------------------------------------------------------------- Kamailio's TLS alone

@xmpp_servers("prosody")
async def test_kamailio_tls_alone(env):
    """The harness part, without the gateway: Kamailio (WITH_TLS) answers a client with a
    certificate from the CA, refuses one without a certificate or with a self-signed one, and
    relays a request of xmpp.example over TLS to GW_URI (a TLS server of this test playing the
    gateway, which requires a client certificate and gets Kamailio's sip.example one)."""
    pki = tls_pki(env)
    gw_port = free_port()
    got = []

    async def serve(reader, writer):
        try:
            req = await read_message(reader)
            got.append((req, writer.get_extra_info("peercert")))
            writer.write(response_to(req, 200))
            await writer.drain()
            await asyncio.sleep(0.5)
        except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError):
            pass
        finally:
            writer.close()

    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(*pki["gw"])
    ctx.load_verify_locations(pki["ca"])
    ctx.verify_mode = ssl.CERT_REQUIRED
    server = await asyncio.start_server(serve, "127.0.0.1", gw_port, ssl=ctx)
    kam = Kamailio(env, tls=True, cert="sip", gw_tls_port=gw_port)
    try:
        await kam.start()
        # a client with a certificate of the CA; Kamailio's names sip.example
        c = SipTlsClient(kam.tls_port, cert=pki["sip"], ca=pki["ca"], server_name=SIP_DOMAIN)
        try:
            check(await c.connect(), f"Kamailio refused a good certificate: {c.handshake}")
            resp = await c.request("OPTIONS", f"sip:{SIP_DOMAIN}", f"sip:probe@{SIP_DOMAIN}")
            check(resp is not None, f"no answer to OPTIONS over TLS ({c.closed})")
        finally:
            await c.close()
        for cert, alert in ((None, "certificate required"), ("untrusted", "unknown ca")):
            c = SipTlsClient(kam.tls_port, cert=pki[cert] if cert else None, ca=pki["ca"])
            try:
                ok = await c.connect()
                check(not ok and alert in c.handshake,
                      f"Kamailio with client certificate {cert}: {c.handshake}")
            finally:
                await c.close()
        # xmpp.example goes to GW_URI over TLS, with Kamailio's certificate as client
        status = await UdpUA().message(kam.port, "over TLS to the gateway")
        check(status and status.startswith("SIP/2.0 200"), f"final answer {status}")
        check(len(got) == 1, f"the stand-in gateway got {len(got)} requests")
        req, cert = got[0]
        check(req.start == f"MESSAGE {ALICE_URI} SIP/2.0", req.start)
        check(req.get("via").startswith("SIP/2.0/TLS "), f"Kamailio's Via: {req.get('via')}")
        check(req.body == b"over TLS to the gateway", req.body)
        subject = dict(x[0] for x in cert["subject"])
        check(subject.get("commonName") == SIP_DOMAIN, f"Kamailio presented {cert}")
    finally:
        server.close()
        await kam.stop()


# ---------------------------------------------------------------- through Kamailio over TLS

async def test_pager_both_ways_through_kamailio_over_tls(env):
    """alice (XMPP) -> gateway -TLS-> Kamailio -UDP-> bob (sipp, registered), and back."""
    setup = await TlsSetup(env).open()
    try:
        kam = setup.kam
        bob = uas(env)
        await bob.start()
        await register(env, kam, "bob", bob.port)
        alice = await env.client("alice")
        send(alice, BOB, "to bob over TLS")
        rc = await bob.wait(20)
        check(rc == 0, f"bob did not get the MESSAGE ({rc}): {bob.error_text()}\n"
              + setup.gw.log()[-2000:])
        start, hdrs, body = bob.received()[0]
        check(start.startswith(f"MESSAGE sip:bob@127.0.0.1:{bob.port}"), start)
        check(body == b"to bob over TLS", repr(body))
        check(f"<{ALICE_URI}>" in hdrs["from"][0], hdrs["from"])
        vias = hdrs.get("via", [])
        # Kamailio's hop over UDP on top, the gateway's over TLS below it
        check(any(v.startswith("SIP/2.0/TLS ") for v in vias),
              f"the gateway's hop was not over TLS: {vias}")
        await alice.expect_nothing(lambda m: m["type"] == "error", 0.5)
        # bob -> Kamailio over UDP -> gateway over TLS -> alice
        uac = uac_via(env, kam, "to alice over TLS", env.xmpp.accepted_status)
        rc = await uac.run(20)
        check(rc == 0, f"bob's MESSAGE through Kamailio ({rc}): {uac.error_text()}\n"
              + setup.gw.log()[-2000:])
        m = await alice.expect(lambda m: m["body"].rstrip() == "to alice over TLS", 5,
                               "bob's message")
        check(m["from"].bare == BOB, str(m["from"]))
        check(not tls_log(setup.gw, "refused"), tls_log(setup.gw, "refused"))
    finally:
        await setup.close()


async def test_presence_both_ways_through_kamailio_over_tls(env):
    """Kamailio's presence server (bob PUBLISHes over UDP) seen by alice through the gateway's
    subscription over TLS; carol (sip.example, over UDP) watches alice through Kamailio, which
    record-routes, so the gateway's NOTIFYs come back over TLS through it."""
    setup = await TlsSetup(env, presence=True).open()
    try:
        kam = setup.kam
        pub = presence_publish_update(env, kam, pidf(BOB_URI, note="published over TLS"),
                                      pidf(BOB_URI, note="changed over TLS"), pause_ms=4000)
        await pub.start()
        alice = await watcher(env, "alice", auto_authorize=True)
        alice.send_presence(pto=BOB, ptype="subscribe")
        await expect_pres(alice, "available", BOB, lambda p: p["status"] == "published over TLS",
                          timeout=10)
        await expect_pres(alice, "available", BOB, lambda p: p["status"] == "changed over TLS",
                          timeout=10)
        await expect_pres(alice, "unavailable", BOB, timeout=10, what="unavailable once withdrawn")
        check(await pub.wait(15) == 0, pub.error_text())
        # carol@sip.example watches alice through Kamailio
        alice.send_presence(pstatus="hello over TLS")
        w = counting_watcher(env, ALICE_URI, 2, watcher=f"sip:carol@{SIP_DOMAIN}", via=kam, more=3)
        await w.start()
        await w.wait(25)
        notes = notifies_of(w)
        check(notes, f"carol got no NOTIFY: {w.error_text()}\n" + setup.gw.log()[-2000:])
        last = notes[-1]
        check(b"hello over TLS" in last[1]
              and last[0]["subscription-state"][0].startswith("active"),
              f"alice's status reached the SIP watcher: {last}")
        vias = last[0].get("via", [])
        check(any(v.startswith("SIP/2.0/TLS ") for v in vias),
              f"the gateway's NOTIFY did not come over TLS: {vias}")
        check(not tls_log(setup.gw, "refused"), tls_log(setup.gw, "refused"))
    finally:
        await setup.close()


async def kamailio_with_a_bad_certificate(env, cert, reason_in, reason_out):
    """Kamailio presents `cert` both ways: its TLS connection to the gateway (bob -> alice) and
    the gateway's to it (alice -> bob) are refused, nothing is delivered, and the gateway logs
    why, each way."""
    setup = await TlsSetup(env, cert=cert).open()
    try:
        kam, gw = setup.kam, setup.gw
        bob = uas(env, timeout=40)
        await bob.start()
        await register(env, kam, "bob", bob.port)
        alice = await env.client("alice")
        # Kamailio -> gateway: the gateway refuses Kamailio's client certificate
        status = await UdpUA().message(kam.port, f"from bob, {cert} certificate")
        check(not status or not status.startswith("SIP/2.0 2"),
              f"the MESSAGE through Kamailio presenting {cert} got {status}")
        await expect_tls_log(gw, reason_in, what=f"(Kamailio's {cert} client certificate)")
        before = len(tls_log(gw, reason_out))
        # gateway -> Kamailio: the gateway refuses Kamailio's server certificate
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        msg_id = send(alice, BOB, f"to bob, {cert} certificate")
        await expect_tls_log(gw, reason_out, count=before + 1,
                             what=f"(Kamailio's {cert} server certificate)")
        # the refused handshake is the transaction's transport error (RFC 3261 8.1.3.1): the
        # sender hears of it at once, not when the transaction times out (64*T1 = 32 s)
        err = await alice.expect_any(lambda m: m["type"] == "error" and m["id"] == msg_id, 40,
                                     "an error for the undeliverable message")
        waited = loop.time() - t0
        check(not bob.received(), f"bob got {bob.received()}")
        check(waited < 5, f"alice's error ({error_condition(err)}) came {waited:.1f} s after the "
                          f"handshake was refused")
        return error_condition(err)
    finally:
        await setup.close()


@xmpp_servers("prosody")
async def test_kamailio_with_an_expired_certificate_is_refused(env):
    await kamailio_with_a_bad_certificate(env, "expired", REASON_EXPIRED, REASON_EXPIRED)


@xmpp_servers("prosody")
async def test_kamailio_with_another_domains_certificate_is_refused(env):
    # incoming it names no configured peer; outgoing it is not the route's peer, sip.example
    await kamailio_with_a_bad_certificate(env, "wrong", REASON_NO_PEER, REASON_NOT_ROUTE)


@xmpp_servers("prosody")
async def test_kamailio_with_a_self_signed_certificate_is_refused(env):
    await kamailio_with_a_bad_certificate(env, "untrusted", REASON_UNTRUSTED, REASON_UNTRUSTED)


# ---------------------------------------------------------------- the rules, without Kamailio

@xmpp_servers("prosody")
async def test_plain_text_from_a_tls_peer_is_refused(env):
    """sip.example is tls="required": its requests over UDP and over TCP, from its trusted
    address and with its From domain, get 403 and reach nobody."""
    setup = await TlsSetup(env, kamailio=False).open()
    alice = await env.client("alice")
    for transport in ("u1", "t1"):
        uac = env.uac(expect="403", transport=transport, body=f"plain text over {transport}")
        rc = await uac.run(15)
        got = [s for s, _, _ in uac.received() if s.startswith("SIP/2.0")]
        check(rc == 0, f"over {transport}: expected 403, got {got} ({uac.error_text()})")
    await alice.expect_nothing(lambda m: "plain text" in (m["body"] or ""), 1.0)
    await setup.close()


@xmpp_servers("prosody")
async def test_certificate_must_name_the_from_domain(env):
    """Over TLS the From domain must be one the connection's certificate names (RFC 5922): the
    sip.example certificate sending for sip.example is taken; sending for sip2.example (another
    configured peer, same trusted address) gets 403, as does the sip2.example certificate
    claiming sip.example."""
    setup = await TlsSetup(env, kamailio=False).open()
    alice = await env.client("alice")
    cases = [("sip", SIP_DOMAIN, env.xmpp.accepted_status),
             ("sip", SIP2_DOMAIN, 403),
             ("sip2", SIP_DOMAIN, 403),
             ("sip2", SIP2_DOMAIN, env.xmpp.accepted_status)]
    for cert, domain, expect in cases:
        c = setup.client(cert)
        try:
            check(await c.connect(), f"the {cert} certificate was refused: {c.handshake}")
            body = f"{cert} certificate as {domain}"
            resp = await c.request("MESSAGE", ALICE_URI, f"sip:bob@{domain}", body=body,
                                   ctype="text/plain")
            check(resp is not None, f"{body}: no response ({c.closed})")
            check(resp.status == expect, f"{body}: {resp.start}, expected {expect}")
            if expect < 300:
                m = await alice.expect(lambda m: m["body"].rstrip() == body, 5, body)
                check(m["from"].bare == f"bob@{domain}", str(m["from"]))
        finally:
            await c.close()
    await alice.expect_nothing(lambda m: "certificate as" in (m["body"] or ""), 1.0)


@xmpp_servers("prosody")
async def test_handshakes_refused(env):
    """A client without a certificate, with a wildcard one (*.example: RFC 5922 7.2 refuses
    wildcards), an expired one, a self-signed one and one of a domain no peer has: the handshake
    fails, and the gateway logs the reason."""
    setup = await TlsSetup(env, kamailio=False).open()
    for cert, reason in ((None, REASON_NO_CERT), ("wildcard", REASON_NO_PEER),
                         ("expired", REASON_EXPIRED), ("untrusted", REASON_UNTRUSTED),
                         ("wrong", REASON_NO_PEER)):
        before = len(tls_log(setup.gw, reason))
        c = setup.client(cert)
        try:
            ok = await c.connect()
            if ok:
                # not refused in the handshake: whatever is sent must not be taken
                resp = await c.request("MESSAGE", ALICE_URI, BOB_URI, body="x", ctype="text/plain")
                check(False, f"certificate {cert}: the handshake succeeded and a MESSAGE got "
                             f"{resp.start if resp else None}")
        finally:
            await c.close()
        await expect_tls_log(setup.gw, reason, count=before + 1, what=f"(certificate {cert})")


@xmpp_servers("prosody")
async def test_common_name_only_certificate_is_accepted(env):
    """RFC 5922 7.1: without subjectAltName the CommonName names the domain."""
    setup = await TlsSetup(env, kamailio=False).open()
    alice = await env.client("alice")
    c = setup.client("cn_only")
    try:
        check(await c.connect(), f"the CN-only certificate was refused: {c.handshake}")
        resp = await c.request("MESSAGE", ALICE_URI, BOB_URI, body="CN only",
                               ctype="text/plain")
        check(resp is not None and resp.status == env.xmpp.accepted_status,
              f"MESSAGE from the CN-only certificate: {resp.start if resp else c.closed}")
        await alice.expect(lambda m: m["body"].rstrip() == "CN only", 5, "the message")
    finally:
        await c.close()


def _serial(pem):
    from cryptography import x509
    with open(pem, "rb") as f:
        return x509.load_pem_x509_certificate(f.read()).serial_number


def _served_serial(client):
    check(client.peer_cert, f"the gateway's certificate was verified: {client.handshake}")
    return int(client.peer_cert["serialNumber"], 16)


@xmpp_servers("prosody")
async def test_sighup_reloads_the_certificates_without_dropping_links(env):
    """A renewed certificate is put in place and the gateway told with SIGHUP: new connections
    get the new certificate while a connection made before keeps working; a broken set (a key
    that is not the certificate's) is refused with the reason logged, and the one in use
    stays."""
    pki = tls_pki(env)
    d = os.path.join(env.workdir, "reload-pki")
    os.makedirs(d, exist_ok=True)
    pem, key = os.path.join(d, "gw.pem"), os.path.join(d, "gw.key")
    shutil.copyfile(pki["gw"][0], pem)
    shutil.copyfile(pki["gw"][1], key)
    os.chmod(key, 0o600)
    gw_tls_port = free_port()
    xml = tls_gateway_xml(env, gw_tls_port, free_port(), sip2=False)
    xml = xml.replace(f'certificate="{pki["gw"][0]}" key="{pki["gw"][1]}"',
                      f'certificate="{pem}" key="{key}"')
    check(pem in xml, "the gateway file names the copied certificate")
    gw = await env.gateway(xml)
    alice = await env.client("alice")

    def client():
        return SipTlsClient(gw_tls_port, cert=pki["sip"], ca=pki["ca"], server_name=XMPP_DOMAIN)

    first = client()
    try:
        check(await first.connect(), f"first connection: {first.handshake}")
        check(_served_serial(first) == _serial(pki["gw"][0]), "the first certificate is served")
        resp = await first.request("MESSAGE", ALICE_URI, BOB_URI, body="before", ctype="text/plain")
        check(resp is not None and resp.status == env.xmpp.accepted_status,
              f"MESSAGE before the reload: {resp.start if resp else first.closed}")
        await alice.expect(lambda m: m["body"].rstrip() == "before", 5, "the first message")

        shutil.copyfile(pki["gw_next"][0], pem)
        shutil.copyfile(pki["gw_next"][1], key)
        gw.proc.send_signal(signal.SIGHUP)
        await gw.wait_log(r"SIP TLS: certificate, key and CA files reloaded", timeout=5)

        resp = await first.request("MESSAGE", ALICE_URI, BOB_URI, body="after", ctype="text/plain")
        check(resp is not None and resp.status == env.xmpp.accepted_status,
              f"MESSAGE on the connection made before the reload: "
              f"{resp.start if resp else first.closed}")
        await alice.expect(lambda m: m["body"].rstrip() == "after", 5, "the second message")
        check(first.closed is None, f"the connection made before survived: {first.closed}")

        second = client()
        try:
            check(await second.connect(), f"connection after the reload: {second.handshake}")
            check(_served_serial(second) == _serial(pki["gw_next"][0]),
                  "a new connection gets the new certificate")
        finally:
            await second.close()

        shutil.copyfile(pki["sip"][1], key)     # a key that is not the certificate's
        gw.proc.send_signal(signal.SIGHUP)
        await gw.wait_log(r"SIP TLS: reload refused, the files in use stay: .*does not match",
                          timeout=5)
        third = client()
        try:
            check(await third.connect(), f"connection after the refused reload: {third.handshake}")
            check(_served_serial(third) == _serial(pki["gw_next"][0]),
                  "after a refused reload the certificate in use stays")
        finally:
            await third.close()
    finally:
        await first.close()
