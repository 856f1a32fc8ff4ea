"""test_escaped.py - escaped addressing (XEP-0106): the gateway serves sip-gw.xmpp.example and SIP addresses live in its localparts."""

from harness import SIP_DOMAIN, XMPP_DOMAIN, check, default_peer

GW_DOMAIN = "sip-gw." + XMPP_DOMAIN
COMPONENTS = (GW_DOMAIN,)


def peer(env):
    return default_peer(env, extra=f'addressing="escaped" component="{GW_DOMAIN}"')


async def test_escaped_xmpp_to_sip(env):
    await env.gateway(peers=[peer(env)])
    uas = await env.uas().start()
    alice = await env.client("alice")
    alice.send_message(mto=f"bob\\40{SIP_DOMAIN}@{GW_DOMAIN}", mbody="escaped hello", mtype="chat")
    check(await uas.wait() == 0, uas.error_text())
    start, hdrs, body = uas.received()[0]
    check(start == f"MESSAGE sip:bob@{SIP_DOMAIN} SIP/2.0", start)
    check(body == b"escaped hello", repr(body))


async def test_escaped_sip_to_xmpp(env):
    await env.gateway(peers=[peer(env)])
    alice = await env.client("alice")
    uac = env.uac(sender=f"sip:john%20smith@{SIP_DOMAIN}", body="from an escaped address")
    check(await uac.run() == 0, uac.error_text())
    m = await alice.expect(lambda m: m["type"] in ("chat", "normal"), 5, "the message")
    check(str(m["from"]) == f"john\\20smith\\40{SIP_DOMAIN}@{GW_DOMAIN}", str(m["from"]))
    # and the reply goes back to the same SIP user
    uas = await env.uas().start()
    alice.send_message(mto=m["from"], mbody="reply", mtype="chat")
    check(await uas.wait() == 0, uas.error_text())
    check(uas.received()[0][0] == f"MESSAGE sip:john%20smith@{SIP_DOMAIN} SIP/2.0", uas.received()[0][0])


async def test_escaped_unknown_domain(env):
    await env.gateway(peers=[peer(env)])
    alice = await env.client("alice")
    msg = alice.make_message(mto=f"bob\\40elsewhere.example@{GW_DOMAIN}", mbody="nowhere", mtype="chat")
    msg.send()
    m = await alice.expect(lambda m: m["type"] == "error" and m["id"] == msg["id"], 5, "the bounce")
    check(m.xml.find(".//{urn:ietf:params:xml:ns:xmpp-stanzas}item-not-found") is not None, str(m))
