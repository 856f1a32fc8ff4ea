"""test_reload.py - live reload of the gateway file (issue 15): SIGHUP re-reads it, checks it
first (a broken file changes nothing and is logged as file:line) and applies what changed: a
peer added (with its own component link), a peer removed (its users' dialogs and sessions end
and they are told), a route changed; a restart-only setting is reported and left alone.  All of
it under a steady load of pager messages both ways that must lose nothing.

Peers: Prosody with slixmpp clients; neta (sip.example) and netb (sip2.example) are test_hub's
recording SIP elements (SipPeer) and msrp_ua.py user agents.  Prosody only, as test_hub (the
harness's ejabberd serves every component domain on one listener).
"""

import asyncio
import os
import re
import signal

from harness import (SIP_DOMAIN, XMPP_DOMAIN, check, free_port, gateway_xml, pidf,
                     presence_server, wait_for)
from test_hub import (SIP2_DOMAIN, SipPeer, all_stanzas, expect_stanza, new_ua, peer2_port,
                      peer_xml, subscribe_presence, teardown, user_uri)
from test_presence import watcher

XMPP_SERVERS = ("prosody",)
COMPONENTS = (SIP_DOMAIN, SIP2_DOMAIN)
USERS = ("alice", "carol", "dana", "erin")


def conf_with(env, peers, extra=""):
    xml = gateway_xml(env, peers=peers)
    return xml.replace("</gateway>", extra + "\n</gateway>")


def rewrite(gw, xml):
    with open(gw.conf + ".new", "w") as f:
        f.write(xml)
    os.replace(gw.conf + ".new", gw.conf)


async def reload(gw, expect=r"reload applied", failed=False):
    n = gw.log_count(r"reload refused" if failed else r"reload applied")
    gw.proc.send_signal(signal.SIGHUP)
    await gw.wait_log(r"reload refused" if failed else r"reload applied", count=n + 1, timeout=10)
    if expect:
        await gw.wait_log(expect, timeout=5)


class Load:
    """Pager messages both ways every 40 ms while it runs: neta's bob -> alice (each must get a
    2xx) and alice -> bob@sip.example (each must reach neta's route)."""

    def __init__(self, env, a, alice):
        self.env, self.a, self.alice = env, a, alice
        self.sent_sip = []
        self.sent_xmpp = []
        self.task = None

    async def _run(self):
        n = 0
        while True:
            n += 1
            body = f"load {n}"
            self.sent_xmpp.append(body)
            self.alice.send_message(mto=f"bob@{SIP_DOMAIN}", mbody=body, mtype="chat")
            self.sent_sip.append(asyncio.ensure_future(
                self.a.message("alice", "bob", f"sip load {n}")))
            await asyncio.sleep(0.04)

    def start(self):
        self.task = asyncio.ensure_future(self._run())

    async def stop_and_check(self):
        self.task.cancel()
        try:
            await self.task
        except asyncio.CancelledError:
            pass
        answers = await asyncio.gather(*self.sent_sip)
        bad = [(i, r and r.status) for i, r in enumerate(answers) if not r or r.status >= 300]
        check(not bad, f"SIP -> XMPP messages not delivered during the reloads: {bad[:10]} "
              f"of {len(answers)}")
        def arrived():
            got = set()
            for m in self.a.requests:
                if m.method == "MESSAGE":
                    got.update(int(n) for n in re.findall(rb"(?<!sip )load (\d+)", m.body))
            return got

        want = set(range(1, len(self.sent_xmpp) + 1))
        await wait_for(lambda: want <= arrived(), 10, "every XMPP -> SIP message at neta's route")
        await wait_for(lambda: sum(1 for m in self.alice.inbox
                                   if m["body"].startswith("sip load ")) >= len(answers),
                       10, "every SIP -> XMPP message at alice")
        return len(answers), len(self.sent_xmpp)


async def test_peer_added_and_removed_under_load(env):
    """netb is added by a reload: its component link comes up and pager works with it both
    ways; then it is removed: its SIP watcher of carol gets NOTIFY terminated;reason=noresource,
    its component link is closed, and netb's requests are refused again.  A load of
    pager messages with neta both ways runs all along and loses nothing."""
    try:
        a = await SipPeer(env, SIP_DOMAIN, port=env.peer_sip_port).start()
        b = await SipPeer(env, SIP2_DOMAIN, port=peer2_port(env)).start()
        gw = await env.gateway(conf_with(env, [peer_xml(env, "a")]))
        alice = await env.client("alice")
        carol = all_stanzas(await watcher(env, "carol", auto_authorize=True))

        # before: netb is nobody
        r = await b.message("carol", "zed", "too early")
        check(r is not None and r.status == 403, f"netb before the reload: {r and r.status}")

        load = Load(env, a, alice)
        load.start()
        await asyncio.sleep(0.5)

        # add netb
        rewrite(gw, conf_with(env, [peer_xml(env, "a"), peer_xml(env, "b")]))
        await reload(gw, r"peer netb \(sip2\.example\) added")
        await gw.wait_log(r"component sip2\.example: connected", timeout=10)
        r = await b.message("carol", "zed", "hello after the reload")
        check(r is not None and r.status < 300, f"netb's MESSAGE after the reload: {r and r.status}")
        await expect_stanza(carol, lambda s: s.name == "message" and
                            s["body"] == "hello after the reload", what="netb's message at carol")
        carol.send_message(mto=f"zed@{SIP2_DOMAIN}", mbody="to netb", mtype="chat")
        await wait_for(lambda: any(m.method == "MESSAGE" and b"to netb" in m.body
                                   for m in b.requests), 5, "carol's MESSAGE at netb's route")

        # a netb user watches carol, and carol sees it
        zed = await new_ua(env, "zed", SIP2_DOMAIN)
        sub = await subscribe_presence(zed, user_uri("carol"), env)
        check(sub.status in (200, 202), f"zed's SUBSCRIBE: {sub.status}")
        carol.send_presence(pstatus="here")
        await wait_for(lambda: sub.state == "active", 8, "zed's subscription active")

        # remove netb
        rewrite(gw, conf_with(env, [peer_xml(env, "a")]))
        await reload(gw, r"peer netb \(sip2\.example\) removed")
        await wait_for(lambda: sub.state == "terminated", 8, "zed told its subscription ended")
        check(sub.terminated_reason == "noresource", f"reason: {sub.terminated_reason}")
        await gw.wait_log(r"component sip2\.example: no peer left", timeout=5)
        r = await b.message("carol", "zed", "too late")
        check(r is not None and r.status == 403, f"netb after its removal: {r and r.status}")

        sip_n, xmpp_n = await load.stop_and_check()
        print(f"    (load: {sip_n} SIP -> XMPP and {xmpp_n} XMPP -> SIP messages, none lost)")
    finally:
        await teardown(env)


async def test_route_changed(env):
    """neta's route moves to another port: the next message goes there, none to the old one."""
    try:
        a = await SipPeer(env, SIP_DOMAIN, port=env.peer_sip_port).start()
        gw = await env.gateway(conf_with(env, [peer_xml(env, "a")]))
        alice = await env.client("alice")
        alice.send_message(mto=f"bob@{SIP_DOMAIN}", mbody="old route", mtype="chat")
        await wait_for(lambda: any(b"old route" in m.body for m in a.requests), 5, "at the old route")
        new = await SipPeer(env, SIP_DOMAIN, port=free_port()).start()
        xml = conf_with(env, [peer_xml(env, "a").replace(f'port="{env.peer_sip_port}"',
                                                         f'port="{new.port}"')])
        rewrite(gw, xml)
        await reload(gw, r"peer neta: <route port> changed")
        alice.send_message(mto=f"bob@{SIP_DOMAIN}", mbody="new route", mtype="chat")
        await wait_for(lambda: any(b"new route" in m.body for m in new.requests), 5,
                       "at the new route")
        check(not any(b"new route" in m.body for m in a.requests), "nothing at the old route")
    finally:
        await teardown(env)


async def test_broken_file_changes_nothing(env):
    """A file with errors is refused with each error as file:line and nothing changes (the old
    peers still work); a restart-only change is reported and left alone; a good file after
    that is applied."""
    try:
        a = await SipPeer(env, SIP_DOMAIN, port=env.peer_sip_port).start()
        b = await SipPeer(env, SIP2_DOMAIN, port=peer2_port(env)).start()
        good = conf_with(env, [peer_xml(env, "a")])
        gw = await env.gateway(good)
        alice = await env.client("alice")

        broken = conf_with(env, [peer_xml(env, "a"), peer_xml(env, "b").replace(
            'transport="udp"', 'transport="carrier-pigeon"')])
        rewrite(gw, broken)
        await reload(gw, None, failed=True)
        log = gw.log()
        check(re.search(re.escape(gw.conf) + r":\d+: ", log), "the error as file:line")
        check("nothing changed" in log, "says nothing changed")
        r = await b.message("alice", "zed", "still nobody")
        check(r is not None and r.status == 403, f"netb was not added: {r and r.status}")
        r = await a.message("alice", "bob", "neta still works")
        check(r is not None and r.status < 300, f"neta after the refused reload: {r and r.status}")

        # not XML at all
        rewrite(gw, "<gateway xmlns='urn:simplegw:config:1'><log")
        await reload(gw, None, failed=True)

        # a restart-only change: reported, not applied; the peers' part applied
        rewrite(gw, conf_with(env, [peer_xml(env, "a"), peer_xml(env, "b")]).replace(
            "<sip ", '<sip tcp-idle="30s" ', 1))
        await reload(gw, r"<sip tcp-idle> changed: not applied, restart to apply it")
        await gw.wait_log(r"component sip2\.example: connected", timeout=10)
        r = await b.message("alice", "zed", "netb now")
        check(r is not None and r.status < 300, f"netb after the good reload: {r and r.status}")
        await alice.expect(lambda m: m["body"] == "netb now", what="netb's message")
    finally:
        await teardown(env)


async def test_removed_peer_session_ends_with_the_user_told(env):
    """An MSRP session with a peer the reload removes ends: BYE to the SIP user, and the XMPP
    user gets an error for what it sends next instead of silence."""
    try:
        a = await SipPeer(env, SIP_DOMAIN, port=env.peer_sip_port).start()
        peers = [peer_xml(env, "a"), peer_xml(env, "b", attrs='sessions="yes"')]
        gw = await env.gateway(conf_with(env, peers))
        await gw.wait_log(r"component \S+: connected", count=2, timeout=15)
        dana = all_stanzas(await env.client("dana"))
        zed = await new_ua(env, "zed", SIP2_DOMAIN)
        call = await zed.invite(user_uri("dana"), next_hop=("127.0.0.1", env.gw_sip_port))
        check(call.status == 200, f"zed's INVITE: {call.status}")
        await call.wait_connected()
        await call.send_text("hello over MSRP")
        await expect_stanza(dana, lambda s: s.name == "message" and s["body"] == "hello over MSRP",
                            what="the session's message at dana")
        rewrite(gw, conf_with(env, [peer_xml(env, "a")]))
        await reload(gw, r"peer netb \(sip2\.example\) removed")
        await gw.wait_log(r"sessions: peer netb removed: 1 sessions ended", timeout=5)
        await wait_for(lambda: call.bye_received, 8, "the BYE at zed")
    finally:
        await teardown(env)


async def test_removed_peer_contacts_go_offline(env):
    """An XMPP user watching a user of the peer the reload removes sees that contact go
    offline, and the gateway ends its subscription there (un-SUBSCRIBE, which the peer's
    presence server answers and ends the dialog)."""
    try:
        server = presence_server(env, port=peer2_port(env), wait=True,
                                 body=pidf(f"sip:zed@{SIP2_DOMAIN}", note="zed is in"))
        await server.start()
        gw = await env.gateway(conf_with(env, [peer_xml(env, "a"), peer_xml(env, "b")]))
        await gw.wait_log(r"component \S+: connected", count=2, timeout=15)
        erin = all_stanzas(await watcher(env, "erin", auto_authorize=None))
        erin.send_presence(pto=f"zed@{SIP2_DOMAIN}", ptype="subscribe")
        await expect_stanza(erin, lambda s: s.name == "presence" and
                            str(s["from"]).startswith(f"zed@{SIP2_DOMAIN}") and
                            s["status"] == "zed is in", what="zed's presence at erin")
        rewrite(gw, conf_with(env, [peer_xml(env, "a")]))
        await reload(gw, r"presence: peer netb removed: 1 subscriptions to its users ended")
        await expect_stanza(erin, lambda s: s.name == "presence" and s["type"] == "unavailable"
                            and str(s["from"]).startswith(f"zed@{SIP2_DOMAIN}"),
                            what="zed offline at erin")
        rc = await server.wait(15)
        check(rc == 0, f"the presence server saw the un-SUBSCRIBE and ended: {server.error_text()}")
    finally:
        await teardown(env)


async def test_trust_limits_and_log_level_change(env):
    """A peer's <trust>, <limits> and the log level change in place: netb trusted from another
    address is refused, trusted from ours it is served; a rate limit added answers 503 with
    Retry-After, then serves again a second later; debug lines appear once <log level="debug">."""
    try:
        b = await SipPeer(env, SIP2_DOMAIN, port=peer2_port(env)).start()
        other = peer_xml(env, "b").replace('<trust address="127.0.0.1"/>',
                                           '<trust address="127.0.0.2"/>')
        gw = await env.gateway(conf_with(env, [peer_xml(env, "a"), other]).replace(
            'level="debug"', 'level="info"'))
        await gw.wait_log(r"component \S+: connected", count=2, timeout=15)
        alice = await env.client("alice")
        r = await b.message("alice", "zed", "not trusted")
        check(r is not None and r.status == 403, f"netb from an untrusted address: {r and r.status}")
        rewrite(gw, conf_with(env, [peer_xml(env, "a"), peer_xml(
            env, "b", limits='rate="1" burst="1" retry-after="7s"')]))
        await reload(gw, r"peer netb: .*<limits rate>.*<trust> changed")
        await gw.wait_log(r"<log level> changed", timeout=5)
        r1 = await b.message("alice", "zed", "trusted now")
        r2 = await b.message("alice", "zed", "too fast")
        check(r1 is not None and r1.status < 300, f"netb trusted: {r1 and r1.status}")
        check(r2 is not None and r2.status == 503 and r2.get("retry-after") == "7",
              f"netb over its new rate: {r2 and r2.start} {r2 and r2.get('retry-after')}")
        await alice.expect(lambda m: m["body"] == "trusted now", what="netb's message")
        await asyncio.sleep(1.1)
        r3 = await b.message("alice", "zed", "after a second")
        check(r3 is not None and r3.status < 300, f"netb a second later: {r3 and r3.status}")
        log = gw.log()
        cut = log.index("reload applied")
        check(" debug " not in log[:cut], "no debug lines at level info")
        check(" debug " in log[cut:], "debug lines once the level changed")
    finally:
        await teardown(env)
