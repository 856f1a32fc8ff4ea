"""test_authz.py - authorization migration (<authorization mode="policy">, seeds 2.3): the gateway
holds one dialog per SIP presentity, authorized by the SIP side for its agent, and applies the
owner's own presence rules (RFC 5025 over XCAP, RFC 4825) to each XMPP watcher.

Mostly the SIP side is a Python presence server that authorizes the gateway's agent only, and
the rules come from a Python XCAP server that counts its requests and answers conditional ones
(If-None-Match) with 304.  The last tests use Kamailio as presence and XCAP server (presence,
presence_xml with its integrated xcap_server), with rules stored over XCAP: the per-watcher
default and the policy mode must give each watcher the same view of the owner's rules.
"""

import asyncio
import os

from harness import (SIP_DOMAIN, XMPP_DOMAIN, Kamailio, check, default_peer, free_port, gateway_xml,
                     pidf, pres_rules, presence_publisher, wait_for)
from msrp_ua import parse_sip
from test_presence import AuthorizingServer, expect_pres, pres, watcher

XMPP_SERVERS = ("prosody", "ejabberd")
USERS = ("ann", "ben", "cat", "dan", "eve", "fay", "gil", "hal", "ivy", "joe")
BOB = f"bob@{SIP_DOMAIN}"
BOB_URI = f"sip:bob@{SIP_DOMAIN}"
AGENT = "simplegw"


def rules(*rows):
    """A presence-rules document (RFC 5025): rows of (rule id, [watcher users], sub-handling,
    transformations XML)."""
    out = ['<?xml version="1.0" encoding="UTF-8"?>\n'
           '<cr:ruleset xmlns="urn:ietf:params:xml:ns:pres-rules"'
           ' xmlns:cr="urn:ietf:params:xml:ns:common-policy">']
    for rid, users, action, transformations in rows:
        ids = "".join(f'<cr:one id="sip:{u}@{XMPP_DOMAIN}"/>' for u in users)
        out.append(f'<cr:rule id="{rid}"><cr:conditions><cr:identity>{ids}</cr:identity>'
                   f'</cr:conditions><cr:actions><sub-handling>{action}</sub-handling>'
                   f'</cr:actions><cr:transformations>{transformations}</cr:transformations>'
                   f'</cr:rule>')
    out.append("</cr:ruleset>\n")
    return "".join(out)


ALL = "<provide-all-attributes/>"
NO_NOTE = "<provide-services><all-services/></provide-services><provide-activities>true</provide-activities>"
# Kamailio hides only what a rule says false (RFC 5025 hides what no rule provides)
NO_NOTE_KAM = NO_NOTE + "<provide-note>false</provide-note>"


class XcapServer:
    """An XCAP server holding one document per path; GET with ETag and If-None-Match.  One
    request per connection (the gateway sends Connection: close); subclasses extend handle()."""

    MAX_BODY = 1 << 20

    def __init__(self):
        self.port = free_port()
        self.docs = {}          # path -> (etag, body)
        self.requests = []      # (path, if-none-match, status)
        self.server = None
        self.version = 0

    @property
    def root(self):
        return f"http://127.0.0.1:{self.port}/xcap-root"

    def put(self, user_uri, body):
        self.version += 1
        self.docs[f"/xcap-root/pres-rules/users/{user_uri}/index"] = (f'"v{self.version}"', body)

    async def start(self):
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)

    async def stop(self):
        if self.server:
            self.server.close()
            await self.server.wait_closed()
            self.server = None

    async def _serve(self, reader, writer):
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            method, path, _ = lines[0].split(" ", 2)
            hdrs = {k.strip().lower(): v.strip() for k, v in
                    (ln.split(":", 1) for ln in lines[1:] if ":" in ln)}
            n = int(hdrs.get("content-length", "0"))
            if n < 0 or n > self.MAX_BODY:
                raise ValueError(n)
            body = await reader.readexactly(n) if n else b""
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError):
            writer.close()
            return
        status, extra, out = self.handle(method, path, hdrs, body)
        writer.write(f"HTTP/1.1 {status} X\r\n{extra}Content-Length: {len(out)}\r\n"
                     f"Connection: close\r\n\r\n".encode() + out)
        try:
            await writer.drain()
        finally:
            writer.close()

    def handle(self, method, path, hdrs, body):
        """GET with ETag and If-None-Match; returns (status, extra header lines, body)."""
        inm = hdrs.get("if-none-match")
        doc = self.docs.get(path)
        if method != "GET":
            status, extra, out = 405, "", b""
        elif not doc:
            status, extra, out = 404, "", b""
        elif inm == doc[0]:
            status, extra, out = 304, f"ETag: {doc[0]}\r\n", b""
        else:
            status, extra, out = 200, (f"ETag: {doc[0]}\r\n"
                                       "Content-Type: application/auth-policy+xml\r\n"), doc[1].encode()
        self.requests.append((path, inm, status))
        return status, extra, out


def policy_gateway_xml(env, xcap, db=None, refresh="1s", mode="policy"):
    root = xcap if isinstance(xcap, str) else xcap.root
    peer = default_peer(env).replace(
        "</peer>", f'  <authorization mode="{mode}" xcap-root="{root}" refresh="{refresh}"/>\n  </peer>')
    xml = gateway_xml(env, peers=[peer])
    attrs = 'expires="120s" min-expires="10s" max-expires="600s"'
    if db:
        attrs += f' database="{db}"'
    return xml.replace("<im ", f"<presence {attrs}/>\n  <im ", 1)


async def sip_side(env, note):
    """The presence server of sip.example: bob's owner authorized the gateway's agent (seeds
    2.3: the owner's domain trusts the gateway to apply the owner's rules), nobody else."""
    loop = asyncio.get_running_loop()
    return await loop.create_datagram_endpoint(
        lambda: AuthorizingServer(env.peer_sip_port, {AGENT}, note),
        local_addr=("127.0.0.1", env.peer_sip_port))


def with_note(note):
    return lambda p: p["status"] == note


async def test_the_owners_rules_decide_for_each_watcher(env):
    """One dialog for all watchers; ann sees everything, ben sees bob without the note (no
    <provide-note>), and cat (block), dan (polite-block), eve (confirm) and fay (no rule) learn
    nothing, not even `subscribed`: exactly what a pending watcher sees."""
    xcap = XcapServer()
    xcap.put(BOB_URI, rules(("a", ["ann"], "allow", ALL), ("b", ["ben"], "allow", NO_NOTE),
                            ("c", ["cat"], "block", ALL), ("d", ["dan"], "polite-block", ALL),
                            ("e", ["eve"], "confirm", ALL)))
    await xcap.start()
    transport, server = await sip_side(env, "at the desk")
    try:
        await env.gateway(policy_gateway_xml(env, xcap, refresh="60s"))
        clients = {u: await watcher(env, u) for u in USERS}
        for c in clients.values():
            c.send_presence(pto=BOB, ptype="subscribe")
        await expect_pres(clients["ann"], "subscribed", BOB)
        await expect_pres(clients["ann"], "available", BOB, with_note("at the desk"))
        await expect_pres(clients["ben"], "subscribed", BOB)
        p = await expect_pres(clients["ben"], "available", BOB)
        check(not p["status"], f"ben is shown the note: {p}")
        await asyncio.sleep(1.5)
        for u in ("cat", "dan", "eve", "fay"):
            check(not pres(clients[u], frm=BOB),
                  f"{u} learns something: {[str(x) for x in pres(clients[u], frm=BOB)]}")
        check(list(server.dialogs) == [AGENT], f"one dialog, the agent's: {list(server.dialogs)}")
        check(any(s == 200 for _, _, s in xcap.requests), xcap.requests)
        # a probe is answered as each watcher may see it
        clients["ben"].presences.clear()
        clients["ben"].send_presence(pto=BOB, ptype="probe")
        p = await expect_pres(clients["ben"], "available", BOB)
        check(not p["status"], f"ben's probe is shown the note: {p}")
    finally:
        transport.close()
        await xcap.stop()


async def test_a_rule_change_takes_effect(env):
    """The rules are fetched again every `refresh` with If-None-Match (304 while unchanged);
    a new document revokes ann (unavailable, then unsubscribed) and lets cat see."""
    xcap = XcapServer()
    xcap.put(BOB_URI, rules(("a", ["ann"], "allow", ALL), ("c", ["cat"], "block", ALL)))
    await xcap.start()
    transport, server = await sip_side(env, "changing rules")
    try:
        await env.gateway(policy_gateway_xml(env, xcap, refresh="1s"))
        ann = await watcher(env, "ann")
        cat = await watcher(env, "cat")
        ann.send_presence(pto=BOB, ptype="subscribe")
        cat.send_presence(pto=BOB, ptype="subscribe")
        await expect_pres(ann, "available", BOB, with_note("changing rules"))
        await wait_for(lambda: any(s == 304 for _, _, s in xcap.requests), 5,
                       "a conditional re-fetch answered 304")
        check(all(inm == '"v1"' for _, inm, s in xcap.requests if s == 304), xcap.requests)
        check(not pres(cat, frm=BOB), "cat is blocked")
        xcap.put(BOB_URI, rules(("c", ["cat"], "allow", ALL)))
        await expect_pres(cat, "subscribed", BOB, timeout=5, what="cat allowed by the new rules")
        await expect_pres(cat, "available", BOB, with_note("changing rules"))
        await expect_pres(ann, "unsubscribed", BOB, timeout=5, what="ann revoked")
        check(pres(ann, "unavailable", BOB), "ann is shown bob offline before the revocation")
    finally:
        transport.close()
        await xcap.stop()


async def test_the_rules_are_kept_across_a_restart(env):
    """The rules are stored with the dialog's document: after a restart with the XCAP server
    down, ann's login probe is answered under the stored rules, and cat's is not."""
    db = os.path.join(env.workdir, "policy.db")
    xcap = XcapServer()
    xcap.put(BOB_URI, rules(("a", ["ann"], "allow", ALL)))
    await xcap.start()
    transport, server = await sip_side(env, "before the restart")
    try:
        gw = await env.gateway(policy_gateway_xml(env, xcap, db=db, refresh="60s"))
        ann = await watcher(env, "ann")
        cat = await watcher(env, "cat")
        ann.send_presence(pto=BOB, ptype="subscribe")
        cat.send_presence(pto=BOB, ptype="subscribe")
        await expect_pres(ann, "available", BOB, with_note("before the restart"))
        await gw.stop()
        await xcap.stop()
        transport.close()
        transport = None
        for c in (ann, cat):
            await c.logout()
        # no presence server and no XCAP server now: only the store speaks
        gw = await env.gateway(policy_gateway_xml(env, xcap, db=db, refresh="60s"))
        await gw.wait_log(r"1 subscriptions of XMPP watchers to SIP presentities restored",
                          timeout=5)
        ann = await watcher(env, "ann")
        cat = await watcher(env, "cat")
        await expect_pres(ann, "available", BOB, with_note("before the restart"),
                          what="ann's probe answered from the stored document and rules")
        await asyncio.sleep(1)
        check(not pres(cat, frm=BOB), f"cat learns something: {[str(p) for p in pres(cat, frm=BOB)]}")
        await gw.wait_log(r"presence rules of sip:bob@sip.example from sipnet: .*kept", timeout=5)
    finally:
        if transport:
            transport.close()
        await xcap.stop()


# ---------------------------------------------------------------- Kamailio's rules

def uri(user):
    return f"sip:{user}@{XMPP_DOMAIN}"


async def owner_rules_through_kamailio(env, gateway_xml_for):
    """bob's rules on Kamailio's XCAP server: ann sees all, ben sees no note, cat is blocked,
    dan politely blocked, eve left to confirm, fay named by no rule; the gateway's agent sees
    all.  Kamailio takes the first matching rule, so every watcher is named once."""
    kam = Kamailio(env, port=env.peer_sip_port, xcap=True)
    await kam.start()
    try:
        doc = pres_rules([("allow", [uri("ann"), uri(AGENT)], ALL),
                          ("allow", [uri("ben")], NO_NOTE_KAM),
                          ("block", [uri("cat")]), ("polite-block", [uri("dan")]),
                          ("confirm", [uri("eve")])])
        status, _ = await kam.xcap_put("pres-rules", BOB_URI, "index", doc)
        check(status in (200, 201), f"XCAP PUT of bob's rules: {status}")
        pub = presence_publisher(env, kam, pidf(BOB_URI, note="kamailio rules"))
        await pub.start()
        check(await pub.wait(15) == 0, pub.error_text())
        gw = await env.gateway(gateway_xml_for(kam))
        clients = {u: await watcher(env, u) for u in USERS}
        for c in clients.values():
            c.send_presence(pto=BOB, ptype="subscribe")
        await expect_pres(clients["ann"], "available", BOB, with_note("kamailio rules"), timeout=10)
        await expect_pres(clients["ben"], "available", BOB, timeout=10)
        await asyncio.sleep(2)
        check(not any(p["status"] for p in pres(clients["ben"], "available", BOB)),
              f"ben is shown the note: {[str(p) for p in pres(clients['ben'], frm=BOB)]}")
        for u in ("cat", "dan", "eve", "fay"):
            check(not pres(clients[u], "available", BOB),
                  f"{u} sees bob: {[str(p) for p in pres(clients[u], frm=BOB)]}")
        for u in ("eve", "fay"):
            check(not pres(clients[u], frm=BOB),
                  f"{u} learns something: {[str(p) for p in pres(clients[u], frm=BOB)]}")
        return kam, gw, clients
    except BaseException:
        await kam.stop()
        raise


async def test_kamailio_decides_for_each_watcher(env):
    """The default (per-watcher) mode against Kamailio's own evaluation of bob's rules: its
    verdicts reach each watcher as RFC 8048 maps them: block (Kamailio: terminated;rejected)
    unsubscribes cat; polite-block (Kamailio: active, no document) shows dan bob offline."""
    kam, gw, clients = await owner_rules_through_kamailio(
        env, lambda kam: gateway_xml_for_presence(env))
    try:
        await expect_pres(clients["cat"], "unsubscribed", BOB, timeout=5,
                          what="cat rejected by Kamailio's rules")
        check(not pres(clients["dan"], "available", BOB), "dan sees bob")
    finally:
        await kam.stop()


async def test_kamailio_rules_applied_by_the_gateway(env):
    """Policy mode with Kamailio as presence and XCAP server: one dialog (the agent's), bob's
    rules fetched from Kamailio's xcap_server and applied per watcher by the gateway; cat,
    blocked, sees exactly what a pending watcher sees (nothing).  A rule change stored over
    XCAP takes effect at the next refresh."""
    kam, gw, clients = await owner_rules_through_kamailio(
        env, lambda kam: policy_gateway_xml(env, kam.xcap_root, refresh="1s"))
    try:
        for u in ("cat", "dan"):
            check(not pres(clients[u], frm=BOB),
                  f"{u} learns something: {[str(p) for p in pres(clients[u], frm=BOB)]}")
        await gw.wait_log(r"presence rules of sip:bob@sip.example: 5 rules", timeout=5)
        doc = pres_rules([("allow", [uri(AGENT), uri("cat")], ALL), ("block", [uri("ann")])])
        status, _ = await kam.xcap_put("pres-rules", BOB_URI, "index", doc)
        check(status in (200, 201), f"XCAP PUT of bob's new rules: {status}")
        await expect_pres(clients["cat"], "available", BOB, with_note("kamailio rules"), timeout=8,
                          what="cat allowed by the new rules")
        await expect_pres(clients["ann"], "unsubscribed", BOB, timeout=8, what="ann revoked")
    finally:
        await kam.stop()


async def test_kamailio_filters_each_view(env):
    """Views mode with Kamailio: one dialog per view, each made as one of its watchers, so
    Kamailio itself applies bob's rules and transformations to it (ben's view has no note);
    blocked, politely blocked, unconfirmed and unnamed watchers have no dialog and see nothing."""
    kam, gw, clients = await owner_rules_through_kamailio(
        env, lambda kam: policy_gateway_xml(env, kam.xcap_root, refresh="60s", mode="views"))
    try:
        for u in ("cat", "dan"):
            check(not pres(clients[u], frm=BOB),
                  f"{u} learns something: {[str(p) for p in pres(clients[u], frm=BOB)]}")
        await gw.wait_log(r"new view:30\.[0-9a-f]+\.0, subscribing as ann@", timeout=1)
        await gw.wait_log(r"new view:30\.[0-9a-f]+\.0, subscribing as ben@", timeout=1)
        check("subscribing as cat@" not in gw.log(), "a dialog for blocked cat")
    finally:
        await kam.stop()


def gateway_xml_for_presence(env):
    xml = gateway_xml(env)
    return xml.replace("<im ", '<presence expires="120s" min-expires="10s" max-expires="600s"/>\n  <im ', 1)


# ---------------------------------------------------------------- one document per view

class ViewServer(AuthorizingServer):
    """A presence server that filters per watcher as the owner's rules say: notes[user] is what
    that watcher's documents say (None: no note)."""

    def __init__(self, port, notes):
        super().__init__(port, set(notes), "unused")
        self.notes = notes
        self.subscribes = []        # (user, expires)

    def datagram_received(self, data, addr):
        msg = parse_sip(data, addr)
        if msg.is_request and msg.method == "SUBSCRIBE":
            user = msg.get("from").split("sip:", 1)[1].split("@", 1)[0]
            self.subscribes.append((user, msg.get("expires")))
        super().datagram_received(data, addr)

    def _notify(self, user, state, body=b""):
        if body:
            body = pidf(BOB_URI, note=self.notes.get(user)).encode()
        super()._notify(user, state, body)


async def views_peer(env, note):
    """The SIP side and the XCAP server of the views tests: gil and hal see bob's note, ivy sees
    bob without it, joe is blocked."""
    loop = asyncio.get_running_loop()
    transport, server = await loop.create_datagram_endpoint(
        lambda: ViewServer(env.peer_sip_port, {"gil": note, "hal": note, "ivy": None}),
        local_addr=("127.0.0.1", env.peer_sip_port))
    xcap = XcapServer()
    xcap.put(BOB_URI, rules(("a", ["gil", "hal"], "allow", ALL), ("c", ["ivy"], "allow", NO_NOTE),
                            ("d", ["joe"], "block", ALL)))
    await xcap.start()
    return transport, server, xcap


def new_dialogs(server):
    return [u for u, e in server.subscribes if e != "0"]


async def test_one_document_per_view(env):
    """mode="views": one dialog per group of watchers the owner's rules treat alike, made as one
    of them, so the SIP side filters and the gateway only groups: gil and hal share one dialog
    (whoever came first), ivy (no note) has another, joe (blocked) none.  When the rules change,
    gil is revoked, the view subscribed as gil goes on as one of its other watchers, and ivy
    joins it.  (Users of its
    own: the module's XMPP server keeps rosters between tests.)"""
    transport, server, xcap = await views_peer(env, "full view")
    try:
        gw = await env.gateway(policy_gateway_xml(env, xcap, refresh="1s", mode="views"))
        clients = {u: await watcher(env, u) for u in ("gil", "hal", "ivy", "joe")}
        clients["gil"].send_presence(pto=BOB, ptype="subscribe")
        await expect_pres(clients["gil"], "available", BOB, with_note("full view"))
        for u in ("hal", "ivy", "joe"):
            clients[u].send_presence(pto=BOB, ptype="subscribe")
        await expect_pres(clients["hal"], "subscribed", BOB)
        await expect_pres(clients["hal"], "available", BOB, with_note("full view"))
        p = await expect_pres(clients["ivy"], "available", BOB)
        check(not p["status"], f"ivy is shown a note: {p}")
        await asyncio.sleep(1.5)
        check(not pres(clients["joe"], frm=BOB), f"joe learns something: {pres(clients['joe'], frm=BOB)}")
        check(sorted(new_dialogs(server)) == ["gil", "ivy"],
              f"one dialog per view, as its first watcher: {server.subscribes}")
        # gil is blocked now, ivy sees everything
        xcap.put(BOB_URI, rules(("a", ["hal", "ivy"], "allow", ALL), ("d", ["gil", "joe"], "block", ALL)))
        await expect_pres(clients["gil"], "unsubscribed", BOB, timeout=5, what="gil revoked")
        await expect_pres(clients["ivy"], "available", BOB, with_note("full view"), timeout=5,
                          what="ivy moved to the full view")
        await wait_for(lambda: len(new_dialogs(server)) == 3, 5, "the view subscribing again")
        check(new_dialogs(server)[-1] in ("hal", "ivy"), f"as one of its watchers: {server.subscribes}")
        await wait_for(lambda: ("ivy", "0") in server.subscribes and ("gil", "0") in server.subscribes,
                       5, "the dialogs as gil and for ivy's old view ended")
        await gw.wait_log(r"subscribes as (hal|ivy)@xmpp.example now \(gil@xmpp.example left it\)",
                          timeout=1)
    finally:
        transport.close()
        await xcap.stop()


async def test_views_are_set_up_again_after_a_restart(env):
    """Views mode with a database: after a restart the watchers wait in the holder until the
    stored rules place them (the link is up), and each view subscribes again, as one of its
    watchers; what each sees is as before (joe, blocked, still sees nothing)."""
    db = os.path.join(env.workdir, "views.db")
    transport, server, xcap = await views_peer(env, "after restart")
    try:
        gw = await env.gateway(policy_gateway_xml(env, xcap, db=db, refresh="60s", mode="views"))
        clients = {u: await watcher(env, u) for u in ("gil", "hal", "ivy", "joe")}
        for c in clients.values():
            c.send_presence(pto=BOB, ptype="subscribe")
        await expect_pres(clients["hal"], "available", BOB, with_note("after restart"))
        await gw.stop()
        for c in clients.values():
            await c.logout()
        before = len(new_dialogs(server))
        gw = await env.gateway(policy_gateway_xml(env, xcap, db=db, refresh="60s", mode="views"))
        await gw.wait_log(r"subscriptions of XMPP watchers to SIP presentities restored", timeout=5)
        await wait_for(lambda: len(new_dialogs(server)) >= before + 2, 8, "the two views again")
        check(sorted(new_dialogs(server)[before:]) in (["gil", "ivy"], ["hal", "ivy"]),
              f"one dialog per view, as one of its watchers: {server.subscribes}")
        hal = await watcher(env, "hal")
        joe = await watcher(env, "joe")
        await expect_pres(hal, "available", BOB, with_note("after restart"),
                          what="hal's login probe answered by the view")
        await asyncio.sleep(1)
        check(not pres(joe, frm=BOB), f"joe learns something: {pres(joe, frm=BOB)}")
    finally:
        transport.close()
        await xcap.stop()
