"""test_tls_component.py - the component link over direct TLS (<xmpp tls="direct" ca="...">).

Peers: the XMPP server's component port speaking TLS with a certificate of the test PKI
(tests/e2e/certs.py), restarted by each test that needs another one (component_certfile of
harness.Ejabberd and harness.Prosody): ejabberd's ejabberd_service listener with `tls: true`;
Prosody 0.12, whose component service has no TLS variant, through mod_net_multiplex's TLS port,
which hands the component stream to the component listener.  sipp and slixmpp around the gateway
as in test_pager.py.  The link comes up only when the server's certificate chains to the
configured CA and names the XMPP domain (xmpp.example); any other outcome is logged with its
reason, the link keeps retrying with its back-off, SIP MESSAGEs meanwhile get 503 with
Retry-After (as when the server is down), and SIGTERM still ends the gateway with status 0 and
no sanitizer report.
"""

import asyncio
import os
import time

import certs
from harness import SIP_DOMAIN, check, gateway_xml, wait_for

XMPP_SERVERS = ("prosody", "ejabberd")

_PKI = {}


def pki(env):
    """Two test PKIs made once per environment: "main" (the CA the gateway trusts; "xmpp" names
    xmpp.example, "xmpp_wrong" other.example) and "other" (another CA with the same names)."""
    if env.workdir not in _PKI:
        main = certs.make(os.path.join(env.workdir, "tls-component-pki"))
        other = certs.make(os.path.join(env.workdir, "tls-component-pki-other"))
        _PKI[env.workdir] = {"main": main, "other": other}
    return _PKI[env.workdir]


async def serve_component(env, cert):
    """Runs the XMPP server's component port with direct TLS and the main PKI's certificate `cert`
    ("xmpp", "xmpp_wrong"), or plain when cert is None; restarts it only on a change."""
    path = None
    if cert:
        main = pki(env)["main"]
        path = certs.combined(os.path.dirname(main["ca"]), cert, main)
    if env.xmpp.component_certfile == path and env.xmpp.proc is not None:
        return
    await env.xmpp.stop()
    env.xmpp.component_certfile = path
    await env.xmpp.start()


def tls_gateway_xml(env, ca):
    return gateway_xml(env, xmpp_attrs=f'tls="direct" ca="{ca}"')


def header(hdrs, name):
    v = hdrs.get(name.lower())
    return v[0] if v else None


async def expect_refused_while_unlinked(env, gw):
    """A SIP MESSAGE gets what an unlinked gateway answers: 503 with Retry-After."""
    uac = env.uac(expect="503", body="while the link is down")
    check(await uac.run() == 0, f"503 while the link is down: {uac.error_text()}")
    resp = [r for r in uac.received() if r[0].startswith("SIP/2.0 503")]
    check(resp and header(resp[0][1], "retry-after") is not None,
          f"503 carries Retry-After: {resp}")


async def expect_retrying_then_clean_exit(env, gw, reason_rx, attempts=3, timeout=15):
    """The gateway logs the failure with its reason on several attempts (it retries, does not
    exit), never comes up, refuses SIP MESSAGEs as an unlinked gateway does, and ends cleanly
    on SIGTERM."""
    await gw.wait_log(reason_rx, timeout=timeout, count=attempts)
    check(gw.log_count(r"attempt \d+, next in") >= attempts, "each failure is an attempt retried")
    check(gw.proc.returncode is None, "the gateway keeps running")
    check(gw.log_count(r"component \S+: connected") == 0, "the link never came up")
    await expect_refused_while_unlinked(env, gw)
    await gw.wait_log(reason_rx, timeout=timeout, count=attempts + 1)
    check(gw.proc.returncode is None, "still running, still retrying")
    await gw.stop()
    check(gw.exit_code == 0, f"SIGTERM: exit status {gw.exit_code}")
    check(gw.log_count("shutdown complete") == 1, "clean shutdown logged")
    check(gw.sanitizer_report() is None, f"sanitizer report: {gw.sanitizer_report()}")


# ---------------------------------------------------------------------------------------------

async def test_link_over_tls_carries_messages_both_ways(env):
    """(a) The right certificate and CA: the link comes up over TLS, a MESSAGE from sipp
    reaches alice, a message from alice reaches sipp."""
    await serve_component(env, "xmpp")
    gw = await env.gateway(tls_gateway_xml(env, pki(env)["main"]["ca"]))
    check(gw.log_count(r"component \S+: TLS with 127\.0\.0\.1:\d+: TLSv1\.[23], \S+; server "
                       r"certificate \(xmpp\.example\) verified for xmpp\.example") == 1,
          "the TLS version, cipher and verified certificate logged once:\n" + gw.log()[-2000:])
    check(gw.log_count(r"TLS with \S+ failed") == 0, "no failed handshake")
    alice = await env.client("alice")

    uac = env.uac(body="SIP to XMPP over the TLS link")
    check(await uac.run() == 0, uac.error_text())
    m = await alice.expect(lambda m: m["body"].rstrip("\r\n") == "SIP to XMPP over the TLS link",
                           5, "the SIP MESSAGE at alice")
    check(m["from"].bare == f"bob@{SIP_DOMAIN}", str(m["from"]))

    uas = await env.uas().start()
    msg = alice.make_message(mto=f"bob@{SIP_DOMAIN}", mbody="XMPP to SIP over the TLS link",
                             mtype="chat")
    msg.send()
    check(await uas.wait() == 0, f"sipp UAS: {uas.error_text()}")
    start, _, body = uas.received()[0]
    check(start == f"MESSAGE sip:bob@{SIP_DOMAIN} SIP/2.0", start)
    check(body == b"XMPP to SIP over the TLS link", repr(body))

    await gw.stop()
    check(gw.exit_code == 0, f"SIGTERM: exit status {gw.exit_code}")


async def test_tls_link_lost_and_reconnected(env):
    """The server dies without a close_notify (SIGKILL): a lost link like a TCP close, 503
    meanwhile, refused connections while it is down, then the link comes back over TLS and
    carries a message again."""
    await serve_component(env, "xmpp")
    gw = await env.gateway(tls_gateway_xml(env, pki(env)["main"]["ca"]))
    await env.xmpp.kill()
    await gw.wait_log(r"component \S+: link lost \(connection closed by the server\)", timeout=10)
    await gw.wait_log(r"cannot connect to \S+ \(Connection refused\); attempt 2,", timeout=10)
    check(gw.log_count(r"TLS with \S+ failed") == 0, "a refused connection is no TLS failure")
    await expect_refused_while_unlinked(env, gw)
    await env.xmpp.start()
    await gw.wait_log(r"component \S+: connected", timeout=15, count=2)
    check(gw.log_count(r"component \S+: TLS with 127\.0\.0\.1:\d+: TLSv1\.[23]") == 2,
          "the new connection is TLS too")
    alice = await env.client("alice")
    uac = env.uac(body="after the reconnection")
    check(await uac.run() == 0, uac.error_text())
    await alice.expect(lambda m: m["body"].rstrip("\r\n") == "after the reconnection", 5,
                       "the message after the reconnection")


async def test_plain_link_to_the_tls_port_does_not_come_up(env):
    """The port really speaks TLS: a gateway without tls="direct" gets no link there."""
    await serve_component(env, "xmpp")
    gw = await env.gateway(wait_up=False)
    await gw.wait_log(r"cannot connect to \S+ \(.*\); attempt 2,", timeout=30)
    check(gw.log_count(r"component \S+: connected") == 0, "no link in clear text")
    await gw.stop()
    check(gw.exit_code == 0, f"SIGTERM: exit status {gw.exit_code}")


async def test_certificate_for_another_domain_is_refused(env):
    """(b) The server's certificate is valid but names other.example: no link, the reason
    logged with the names the certificate gives, retried, 503 meanwhile, clean exit."""
    await serve_component(env, "xmpp_wrong")
    gw = await env.gateway(tls_gateway_xml(env, pki(env)["main"]["ca"]), wait_up=False)
    await expect_retrying_then_clean_exit(
        env, gw, r"component \S+: TLS with 127\.0\.0\.1:\d+ failed: certificate verify failed: "
                 r"(?i:hostname mismatch) \(server certificate names other\.example\)")


async def test_certificate_from_another_ca_is_refused(env):
    """(c) The server's certificate names xmpp.example but the gateway's CA file did not sign
    it: no link, the reason logged, retried, 503 meanwhile, clean exit.  The other PKI's CA has
    the same name as the one that signed, so OpenSSL takes it for the issuer and finds the
    signature wrong; a CA of another name would be "unable to get local issuer certificate"."""
    await serve_component(env, "xmpp")
    gw = await env.gateway(tls_gateway_xml(env, pki(env)["other"]["ca"]), wait_up=False)
    await expect_retrying_then_clean_exit(
        env, gw, r"component \S+: TLS with 127\.0\.0\.1:\d+ failed: certificate verify failed: "
                 r"(certificate signature failure|unable to get local issuer certificate) "
                 r"\(server certificate names xmpp\.example\)")


async def test_tls_to_a_plain_listener_fails_fast(env):
    """(d) tls="direct" against the server's plain component port: the handshake fails with
    OpenSSL's reason, logged; no crash, no hang (each attempt fails long before the 10 s
    handshake timeout), retried, 503 meanwhile, clean exit."""
    await serve_component(env, None)
    gw = await env.gateway(tls_gateway_xml(env, pki(env)["main"]["ca"]), wait_up=False)
    t0 = time.monotonic()
    await gw.wait_log(r"TLS with \S+ failed: wrong version number \(does the port speak TLS\?\)",
                      timeout=8, count=3)
    check(time.monotonic() - t0 < 8, "three failed handshakes well within one timeout")
    check(gw.log_count(r"\(timed out\)") == 0, "none of them timed out")
    await expect_retrying_then_clean_exit(env, gw, r"component \S+: TLS with 127\.0\.0\.1:\d+ "
                                                   r"failed: (?!certificate)\S.*")


async def test_sigterm_during_a_stalled_handshake(env):
    """(e) A server that accepts TCP and never answers the ClientHello: the attempt times out
    and is retried; SIGTERM in the middle of a handshake ends the gateway at once and cleanly."""
    accepted = []

    async def silent(reader, writer):
        accepted.append(writer)
        try:
            await reader.read()     # until the gateway goes away
        finally:
            writer.close()

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        xml = tls_gateway_xml(env, pki(env)["main"]["ca"])
        xml = xml.replace(f'port="{env.xmpp.component_port}"', f'port="{port}"')
        gw = await env.gateway(xml, wait_up=False)
        await wait_for(lambda: accepted, 10, "the gateway's TCP connection")
        await gw.wait_log(r"cannot connect to 127\.0\.0\.1:\d+ \(timed out\); attempt 1,",
                          timeout=15)
        await wait_for(lambda: len(accepted) >= 2, 10, "the gateway's second attempt")
        t0 = time.monotonic()
        await gw.stop()
        check(gw.exit_code == 0, f"SIGTERM: exit status {gw.exit_code}")
        check(time.monotonic() - t0 < 5, "SIGTERM did not wait for the stalled handshake")
        check(gw.log_count("shutdown complete") == 1, "clean shutdown logged")
    finally:
        server.close()
        await server.wait_closed()
