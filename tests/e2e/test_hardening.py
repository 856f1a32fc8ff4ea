"""test_hardening.py - what a stranger on the network or one XMPP user can do to the gateway, as
attacks: each must leave the gateway serving everyone else, with a second, well-behaved user
whose messages are checked during and after the attack.  Against Prosody and ejabberd.
"""

import asyncio

from harness import SIP_DOMAIN, XMPP_DOMAIN, check, error_condition, wait_for

XMPP_SERVERS = ("prosody", "ejabberd")
USERS = ("alice", "carol")


async def both_ways_still_work(env, carol, tag):
    """carol -> bob and bob -> carol, each answered as it should be."""
    uas = await env.uas(timeout=10).start()
    carol.send_message(mto=f"bob@{SIP_DOMAIN}", mbody=f"carol {tag}", mtype="chat")
    check(await uas.wait(10) == 0, f"{tag}: carol's message reached SIP: {uas.error_text()}")
    check(uas.received()[0][2] == f"carol {tag}".encode(), repr(uas.received()))
    uac = env.uac(ruri=f"sip:carol@{XMPP_DOMAIN}", to=f"sip:carol@{XMPP_DOMAIN}",
                  body=f"to carol {tag}")
    check(await uac.run() == 0, f"{tag}: bob's message reached carol: {uac.error_text()}")
    await carol.expect(lambda m: m["body"].strip() == f"to carol {tag}", 5, f"bob's message ({tag})")


async def test_a_users_oversized_and_deep_stanzas_do_not_cut_the_link(env):
    """One stanza from one user, over the gateway's bounds but within the XMPP server's own
    (Prosody lets 256 KiB through from a client), used to end the component stream: every SIP
    watcher saw every XMPP user go offline, and the sender got no error.  Now the stanza is
    skipped, its sender gets policy-violation (size) or not-acceptable (nesting), and the
    link stays up for everyone."""
    gw = await env.gateway()
    alice = await env.client("alice")
    carol = await env.client("carol")
    await both_ways_still_work(env, carol, "before")
    big = "x" * 100_000
    big_id = alice.make_message(mto=f"bob@{SIP_DOMAIN}", mbody=big, mtype="chat")
    big_id.send()
    m = await alice.expect_any(lambda m: m["type"] == "error" and m["id"] == big_id["id"], 10,
                               "the error for the 100 kB message")
    check(error_condition(m) == "policy-violation", f"policy-violation: {m}")
    deep = alice.make_message(mto=f"bob@{SIP_DOMAIN}", mtype="chat")
    deep.xml.append(__import__("xml.etree.ElementTree", fromlist=["x"]).fromstring(
        "<x xmlns='urn:deep'>" + "<a>" * 60 + "</a>" * 60 + "</x>"))
    deep["body"] = "deep"
    deep.send()
    m = await alice.expect_any(lambda m: m["type"] == "error" and m["id"] == deep["id"], 10,
                               "the error for the deep message")
    check(error_condition(m) == "not-acceptable", f"not-acceptable: {m}")
    await both_ways_still_work(env, carol, "after")
    check(gw.log_count(r"link lost|stream error") == 0, "the component link was never dropped")
    check(gw.log_count(r"skipped: stanza larger than") == 1 and
          gw.log_count(r"skipped: elements nested deeper than") == 1, "both skips logged")
