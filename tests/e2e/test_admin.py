"""test_admin.py - the ad-hoc admin commands (XEP-0050, XEP-0133 style) for the JIDs of <admin>:
listed for admins and for nobody else, forbidden to others, the status and peer statistics as
they really are, a reload of the gateway file, a stuck session ended, and XEP-0050's session
rules (sessionid, cancel, malformed requests).  slixmpp clients on Prosody and ejabberd; sipp and
msrp_ua.py as the SIP side."""

import asyncio
import os
import re
import xml.etree.ElementTree as ET

from slixmpp.exceptions import IqError
from slixmpp.xmlstream.handler import Callback
from slixmpp.xmlstream.matcher import MatchXPath

from harness import (SIP_DOMAIN, XMPP_DOMAIN, check, default_peer, free_port, gateway_xml,
                     pidf, presence_server, wait_for, xmpp_servers)
from msrp_ua import MsrpUA
from test_groupchat_muc import Occupant, groupchat_xml, room_jid, sip_join

XMPP_SERVERS = ("prosody", "ejabberd")
OTHER_DOMAIN = "other.example"
COMPONENTS = (SIP_DOMAIN, OTHER_DOMAIN)
USERS = ("alice", "carol", "ops")
OPS = f"ops@{XMPP_DOMAIN}"
GW = SIP_DOMAIN                 # the component the commands are asked of
BOB = f"bob@{SIP_DOMAIN}"
ALICE_URI = f"sip:alice@{XMPP_DOMAIN}"
NS_CMD = "http://jabber.org/protocol/commands"
NS_DATA = "jabber:x:data"
NS_STANZAS = "urn:ietf:params:xml:ns:xmpp-stanzas"
NS_CHATSTATES = "http://jabber.org/protocol/chatstates"
NODE = "urn:simplegw:admin#"
FORM_TYPE = "urn:simplegw:admin"
COMMANDS = ("status", "peer-stats", "reload", "end-session")


# ---------------------------------------------------------------- helpers

async def admin(env, user="ops"):
    """A logged-in client with the ad-hoc commands (XEP-0050), disco and forms plugins."""
    c = await env.client(user)
    for p in ("xep_0004", "xep_0030", "xep_0050"):
        c.register_plugin(p)
    return c


def form_of(fields, ftype="submit", form_type=FORM_TYPE):
    """A data form (XEP-0004) element: fields maps var to a value (None: a field without one)."""
    x = ET.Element(f"{{{NS_DATA}}}x", type=ftype)
    if form_type:
        f = ET.SubElement(x, f"{{{NS_DATA}}}field", var="FORM_TYPE", type="hidden")
        ET.SubElement(f, f"{{{NS_DATA}}}value").text = form_type
    for var, value in fields.items():
        f = ET.SubElement(x, f"{{{NS_DATA}}}field", var=var)
        if value is not None:
            ET.SubElement(f, f"{{{NS_DATA}}}value").text = value
    return x


async def run(c, node, action="execute", sessionid=None, form=None, raw=None, to=GW):
    """Sends one <command/> (through slixmpp's xep_0050, or raw: the <command/> element itself)
    and returns the answer, result or error."""
    try:
        if raw is not None:
            iq = c.Iq()
            iq["type"] = "set"
            iq["to"] = to
            iq.xml.append(raw)
            return await iq.send(timeout=10)
        return await c["xep_0050"].send_command(to, NODE + node if node else None, action=action,
                                                sessionid=sessionid, payload=form, timeout=10)
    except IqError as e:
        return e.iq


def command(iq):
    return iq.xml.find(f"{{{NS_CMD}}}command")


def fields(iq):
    """var -> [values] of the form in a command's answer."""
    x = command(iq).find(f"{{{NS_DATA}}}x")
    check(x is not None, f"a data form in {iq}")
    return {f.get("var"): [v.text or "" for v in f.findall(f"{{{NS_DATA}}}value")]
            for f in x.findall(f"{{{NS_DATA}}}field")}


def value(iq, var):
    got = fields(iq).get(var)
    check(got is not None and len(got) == 1, f"one value of {var} in {iq}")
    return got[0]


def number(iq, var):
    return int(value(iq, var))


def options(iq, var):
    """[(label, value)] of a list field of the form."""
    x = command(iq).find(f"{{{NS_DATA}}}x")
    for f in x.findall(f"{{{NS_DATA}}}field"):
        if f.get("var") == var:
            return [(o.get("label"), o.find(f"{{{NS_DATA}}}value").text)
                    for o in f.findall(f"{{{NS_DATA}}}option")]
    raise AssertionError(f"no field {var} in {iq}")


def note(iq):
    n = command(iq).find(f"{{{NS_CMD}}}note")
    check(n is not None, f"a note in {iq}")
    return n.get("type", "info"), n.text or ""


def error(iq):
    """(type, defined condition, XEP-0050 condition or None) of an error answer."""
    check(iq["type"] == "error", f"an error: {iq}")
    err = iq.xml.find("{jabber:client}error")
    cond = [c.tag.split("}", 1)[1] for c in err
            if c.tag.startswith(f"{{{NS_STANZAS}}}") and not c.tag.endswith("}text")]
    specific = [c.tag.split("}", 1)[1] for c in err if c.tag.startswith(f"{{{NS_CMD}}}")]
    return err.get("type"), cond[0] if cond else None, specific[0] if specific else None


def completed(iq):
    check(iq["type"] == "result", f"a result: {iq}")
    c = command(iq)
    check(c.get("status") == "completed", f"completed: {iq}")
    return c


def executing(iq):
    """Checks a stage that shows a form; returns its sessionid."""
    check(iq["type"] == "result", f"a result: {iq}")
    c = command(iq)
    check(c.get("status") == "executing" and c.get("sessionid"), f"executing, with a sessionid: {iq}")
    actions = c.find(f"{{{NS_CMD}}}actions")
    check(actions is not None and actions.get("execute") == "complete"
          and actions.find(f"{{{NS_CMD}}}complete") is not None, f"<actions execute='complete'>: {iq}")
    check(command(iq).find(f"{{{NS_DATA}}}x").get("type") == "form", f"a form to fill: {iq}")
    return c.get("sessionid")


async def status(c):
    iq = await run(c, "status")
    completed(iq)
    check(value(iq, "FORM_TYPE") == FORM_TYPE, f"our FORM_TYPE: {iq}")
    return iq


def admin_xml(env, admins=(OPS,), **kw):
    return gateway_xml(env, admins=admins, **kw)


# ---------------------------------------------------------------- who sees and runs them

async def test_commands_listed_for_admins_only(env):
    await env.gateway(admin_xml(env))
    ops = await admin(env, "ops")
    alice = await admin(env, "alice")
    items = (await ops["xep_0030"].get_items(jid=GW, node=NS_CMD, timeout=10))["disco_items"]["items"]
    nodes = sorted(node for jid, node, name in items)
    check(nodes == sorted(NODE + c for c in COMMANDS), f"the four commands: {items}")
    check(all(jid == GW and name for jid, node, name in items), f"our JID and names: {items}")
    items = (await alice["xep_0030"].get_items(jid=GW, node=NS_CMD, timeout=10))["disco_items"]["items"]
    check(not items, f"no commands for someone not in <admin>: {items}")
    # each command node describes itself to an admin (XEP-0050 2.3), to nobody else
    info = await ops["xep_0030"].get_info(jid=GW, node=NODE + "status", timeout=10)
    ids = info["disco_info"]["identities"]
    check(any(i[0] == "automation" and i[1] == "command-node" for i in ids), f"command-node: {ids}")
    check(NS_CMD in info["disco_info"]["features"] and NS_DATA in info["disco_info"]["features"],
          f"commands and data forms: {info['disco_info']['features']}")
    try:
        await alice["xep_0030"].get_info(jid=GW, node=NODE + "status", timeout=10)
        check(False, "a command node's info for someone not in <admin>")
    except IqError as e:
        check(error(e.iq)[1] == "item-not-found", f"item-not-found: {e.iq}")


async def test_others_are_forbidden(env):
    await env.gateway(admin_xml(env))
    alice = await admin(env, "alice")
    for node in COMMANDS + ("no-such-command",):
        iq = await run(alice, node)
        check(error(iq)[1] == "forbidden", f"{node}: forbidden for alice: {iq}")
    # a later stage as well, and a command addressed to a SIP user is no command at all
    iq = await run(alice, "peer-stats", action="complete", sessionid="guess",
                   form=form_of({"peer": "sipnet"}))
    check(error(iq)[1] == "forbidden", f"forbidden: {iq}")
    ops = await admin(env, "ops")
    iq = await run(ops, "status", to=BOB)
    check(error(iq)[1] == "service-unavailable", f"a SIP user has no commands: {iq}")
    iq = await run(ops, "no-such-command")
    check(error(iq)[:2] == ("cancel", "item-not-found"), f"an unknown node: {iq}")


# ---------------------------------------------------------------- status and statistics

async def test_status_matches_reality(env):
    gw = await env.gateway(admin_xml(env))
    ops = await admin(env, "ops")
    alice = await env.client("alice")
    iq = await status(ops)
    f = fields(iq)
    check(value(iq, "state") == "running", f"running: {f}")
    check(f["links"] == [f"{SIP_DOMAIN}: up"] and number(iq, "links-up") == 1, f"the link: {f}")
    check(number(iq, "link-connects") >= 1, f"the stream opened: {f}")
    check(f["peers"] == [f"sipnet ({SIP_DOMAIN}): unknown (health checks off)"], f"the peer: {f}")
    check(0 <= number(iq, "uptime") < 60, f"uptime: {f}")
    for var in ("presence-watchers", "presence-presentities", "sessions", "groupchat-occupants",
                "groupchat-rooms", "pending-messages"):
        check(number(iq, var) == 0, f"{var} 0 at start: {f}")
    before = {k: int(v[0]) for k, v in f.items() if k.startswith("messages-")}
    check(len(before) == 6, f"messages by direction and verdict: {sorted(before)}")

    # a message each way in pager mode, then a presence subscription
    uas = env.uas()
    await uas.start()
    alice.send_message(mto=BOB, mbody="to SIP", mtype="chat")
    check(await uas.wait(10) == 0, f"the MESSAGE reached the peer: {uas.error_text()}")
    uac = env.uac(body="to XMPP")
    check(await uac.run(10) == 0, f"the MESSAGE was taken: {uac.error_text()}")
    await alice.expect(lambda m: m["body"].strip() == "to XMPP", 5)
    server = presence_server(env, body=pidf(f"sip:{BOB}"), wait=True)
    await server.start()
    presences = []
    alice.add_event_handler("presence", presences.append)
    alice.send_presence(pto=BOB, ptype="subscribe")
    await wait_for(lambda: any(p["type"] == "subscribed" for p in presences), 10, "subscribed")

    iq = await status(ops)
    f = fields(iq)
    check(number(iq, "presence-watchers") == 1 and number(iq, "presence-presentities") == 1,
          f"one watcher of one presentity: {f}")
    check(number(iq, "pending-messages") == 0, f"nothing pending once settled: {f}")
    after = {k: int(v[0]) for k, v in f.items() if k.startswith("messages-")}
    check(after["messages-xmpp-to-sip-delivered"] == before["messages-xmpp-to-sip-delivered"] + 1
          and after["messages-sip-to-xmpp-delivered"] == before["messages-sip-to-xmpp-delivered"] + 1,
          f"one delivered each way (the pager's stats_message()): {before} -> {after}")
    check(gw.log_count(r"admin: ops@xmpp\.example/\S+ asked for the status") >= 2,
          "each run logged with the admin's JID")


def limited_peer(env, name, domain, dead_port, trust):
    """A peer whose route leads nowhere and is checked every second, with limits and fewer
    services than the default."""
    return f"""<peer name="{name}" domain="{domain}" services="pager presence">
    <route address="127.0.0.1" port="{dead_port}" transport="udp" options-interval="1s"/>
    <trust address="{trust}"/>
    <limits rate="50" burst="80" sessions="7" retry-after="5s"/>
  </peer>
"""


async def peer_stats(ops, name):
    """The second stage of peer-stats for the peer name: the fields of its result."""
    iq = await run(ops, "peer-stats")
    sid = executing(iq)
    iq = await run(ops, "peer-stats", action="complete", sessionid=sid, form=form_of({"peer": name}))
    c = completed(iq)
    check(c.get("sessionid") == sid, f"the same session: {iq}")
    return {k: vs[0] for k, vs in fields(iq).items() if vs}


async def wait_down(ops, name, timeout=15):
    """Polls the status until the peer's health check failed (its line says "down for")."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        f = fields(await status(ops))
        line = [p for p in f["peers"] if p.startswith(name + " ")]
        if line and "down for" in line[0]:
            return f
        check(asyncio.get_running_loop().time() < deadline, f"{name} down: {f['peers']}")
        await asyncio.sleep(0.5)


async def test_peer_statistics(env):
    # the route is the peer's port, where nothing listens here: OPTIONS refused, the peer down
    await env.gateway(admin_xml(env, peers=[limited_peer(env, "sipnet", SIP_DOMAIN,
                                                         env.peer_sip_port, "127.0.0.1")]))
    ops = await admin(env, "ops")
    await wait_down(ops, "sipnet")
    iq = await run(ops, "peer-stats")
    executing(iq)
    check(options(iq, "peer") == [(f"sipnet ({SIP_DOMAIN})", "sipnet")], options(iq, "peer"))
    check(value(iq, "peer") == "sipnet", f"the first peer is the default: {iq}")
    v = await peer_stats(ops, "sipnet")
    want = {"peer": "sipnet", "domain": SIP_DOMAIN, "component": SIP_DOMAIN,
            "route": f"127.0.0.1:{env.peer_sip_port} udp", "health": "down",
            "services": "pager presence", "tls": "no", "rate": "50", "burst": "80",
            "max-sessions": "7", "max-subscriptions": "unlimited", "retry-after": "5"}
    check({k: v.get(k) for k in want} == want, f"sipnet: {v}")
    check(v["health-detail"].startswith("down for "), v["health-detail"])
    check(int(v["health-checks-failed"]) >= 1, f"the OPTIONS not answered are counted: {v}")
    check(int(v["max-document"]) > 0, f"the document limit in force: {v}")
    check((v.get("subscriptions"), v.get("calls")) == ("0", "0"), f"nothing held now: {v}")
    for var in ("requests-in", "requests-out", "refused", "messages-sip-to-xmpp-delivered",
                "messages-xmpp-to-sip-refused", "limited"):
        check(v[var].isdigit(), f"{var}: {v}")
    # a name no peer has (a reload may have removed it meanwhile): an error note, not a crash
    sid = executing(await run(ops, "peer-stats"))
    iq = await run(ops, "peer-stats", action="complete", sessionid=sid,
                   form=form_of({"peer": "nonet"}))
    completed(iq)
    check(note(iq)[0] == "error" and "nonet" in note(iq)[1], f"no such peer: {iq}")


@xmpp_servers("prosody")
async def test_peer_statistics_of_two_networks(env):
    """Two peer networks, two component links.  (Prosody only: the harness's ejabberd serves
    every component on one listener, so it splits one domain's traffic between both streams and
    the gateway's instance probes take that for a second gateway.)"""
    other = limited_peer(env, "othernet", OTHER_DOMAIN, free_port(), "127.0.0.2")
    gw = await env.gateway(admin_xml(env, peers=[default_peer(env), other]))
    await gw.wait_log(rf"component {re.escape(OTHER_DOMAIN)}: connected", timeout=15)
    ops = await admin(env, "ops")
    f = await wait_down(ops, "othernet")
    check(sorted(f["links"]) == sorted([f"{SIP_DOMAIN}: up", f"{OTHER_DOMAIN}: up"])
          and number(await status(ops), "links-up") == 2, f["links"])
    check(f"sipnet ({SIP_DOMAIN}): unknown (health checks off)" in f["peers"], f["peers"])
    iq = await run(ops, "peer-stats")
    executing(iq)
    check(sorted(options(iq, "peer")) == [(f"othernet ({OTHER_DOMAIN})", "othernet"),
                                          (f"sipnet ({SIP_DOMAIN})", "sipnet")],
          options(iq, "peer"))
    v = await peer_stats(ops, "othernet")
    check(v["health"] == "down" and v["component"] == OTHER_DOMAIN and v["rate"] == "50", v)
    v = await peer_stats(ops, "sipnet")
    check(v["health"] == "unknown" and v["health-detail"] == "unknown (health checks off)"
          and v["services"] == "pager presence sessions groupchat" and v["rate"] == "unlimited"
          and v["burst"] == "unlimited", f"sipnet: {v}")


# ---------------------------------------------------------------- reload

async def test_reload(env):
    gw = await env.gateway(admin_xml(env))
    ops = await admin(env, "ops")
    carol = await admin(env, "carol")
    check(not (await carol["xep_0030"].get_items(jid=GW, node=NS_CMD, timeout=10))
          ["disco_items"]["items"], "carol is no admin yet")
    # carol becomes an admin in the file; the command reloads it.  (The asserts from here on
    # need gw_reload() itself: with its placeholder the note is the error it returns.)
    with open(gw.conf) as f:
        text = f.read()
    with open(gw.conf, "w") as f:
        f.write(text.replace(f'<admin jid="{OPS}"/>',
                             f'<admin jid="{OPS}"/><admin jid="carol@{XMPP_DOMAIN}"/>'))
    iq = await run(ops, "reload")
    completed(iq)
    ntype, ntext = note(iq)
    check(ntext.strip(), f"the report is shown: {iq}")
    check(ntype == "info", f"reloaded: {ntype} {ntext!r}")
    items = (await carol["xep_0030"].get_items(jid=GW, node=NS_CMD, timeout=10))["disco_items"]["items"]
    check(len(items) == len(COMMANDS), f"carol sees the commands after the reload: {items}")
    check(number(await status(carol), "reloads") == 1, "one reload applied")

    # a broken file changes nothing and says where it is broken (file:line)
    with open(gw.conf, "w") as f:
        f.write(text.replace("<im ", "<im bogus=\"1\" ", 1))
    iq = await run(ops, "reload")
    completed(iq)
    ntype, ntext = note(iq)
    check(ntype == "error", f"refused: {ntype} {ntext!r}")
    check(re.search(re.escape(os.path.basename(gw.conf)) + r":\d+:", ntext),
          f"file:line in the report: {ntext!r}")
    st = await status(ops)
    check(number(st, "reloads") == 1 and number(st, "reloads-failed") == 1, fields(st))
    check((await run(carol, "status"))["type"] == "result", "carol is still an admin")
    check(gw.log_count(r"admin: ops@xmpp\.example/\S+ reloads the gateway file") == 2,
          "each reload logged with the admin's JID")


# ---------------------------------------------------------------- ending a session

async def test_end_a_chat_session(env):
    msrp_port = free_port()
    gw = await env.gateway(admin_xml(env, sessions=f'<sessions msrp-port="{msrp_port}"/>'))
    ops = await admin(env, "ops")
    alice = await env.client("alice")
    raw = []
    alice.register_handler(Callback("every message", MatchXPath("{jabber:client}message"), raw.append))
    ua = await MsrpUA("bob", local_port=env.peer_sip_port, domain=SIP_DOMAIN).start()
    try:
        iq = await run(ops, "end-session")
        completed(iq)
        check(note(iq)[0] == "info", f"nothing to end: {iq}")

        call = await ua.invite(ALICE_URI, next_hop=("127.0.0.1", env.gw_sip_port))
        check(call.status == 200, f"INVITE answered {call.status}")
        await call.wait_connected(5)
        await call.send_text("hello, then stuck")
        await alice.expect(lambda m: m["body"] == "hello, then stuck", 5)
        check(number(await status(ops), "sessions") == 1, "one session")

        iq = await run(ops, "end-session")
        sid = executing(iq)
        opts = options(iq, "session")
        check(len(opts) == 1, f"one session offered: {opts}")
        label, sess_id = opts[0]
        check(label.startswith(f"chat alice@{XMPP_DOMAIN}") and f"<-> sip:{BOB}" in label
              and ", active for " in label, f"who and what: {label!r}")
        iq = await run(ops, "end-session", action="complete", sessionid=sid,
                       form=form_of({"session": sess_id}))
        completed(iq)
        ntype, ntext = note(iq)
        check(ntype == "info" and sess_id in ntext and f"sip:{BOB}" in ntext, f"ended: {ntext!r}")
        # as an idle timeout ends it: BYE to the SIP user, <gone/> to the XMPP user
        await call.wait_bye(5)
        await wait_for(lambda: any(m.xml.find(f"{{{NS_CHATSTATES}}}gone") is not None for m in raw),
                       5, "<gone/> at alice")
        await gw.wait_log(rf"session {sess_id}: closing \(ended by the gateway's administrator\)")
        check(gw.log_count(rf"admin: ops@xmpp\.example/\S+ ended session {sess_id}") == 1,
              "logged with the admin's JID")
        check(number(await status(ops), "sessions") == 0, "no session left")
        # nothing is left to choose from
        iq = await run(ops, "end-session")
        completed(iq)
        check(note(iq)[0] == "info", f"nothing left to end: {iq}")
        ua.check_clean()
    finally:
        await ua.stop()


async def test_end_a_room_occupant(env):
    """A SIP user in an XMPP MUC room (a leg of groupchat.c): ending the leg takes the occupant
    out of the room (unavailable presence) and hangs up on the SIP user."""
    xml = groupchat_xml(env).replace("</gateway>", f'<admin jid="{OPS}"/>\n</gateway>')
    gw = await env.gateway(xml)
    ops = await admin(env, "ops")
    alice = Occupant(await env.client("alice"))
    ua = await MsrpUA("bob", local_port=env.peer_sip_port, domain=SIP_DOMAIN).start()
    try:
        await alice.join("stuck", "alice")
        call = await sip_join(env, ua, "stuck", nick="bob")
        await alice.wait_presence(lambda p: str(p["from"]) == f"{room_jid('stuck')}/bob"
                                  and p["type"] != "unavailable", 10, "bob in the room")
        st = await status(ops)
        check(number(st, "groupchat-occupants") == 1 and number(st, "groupchat-rooms") == 1,
              fields(st))
        iq = await run(ops, "end-session")
        sid = executing(iq)
        opts = options(iq, "session")
        check(len(opts) == 1 and opts[0][0].startswith("groupchat ")
              and f"sip:{BOB}" in opts[0][0], f"the leg: {opts}")
        iq = await run(ops, "end-session", action="complete", sessionid=sid,
                       form=form_of({"session": opts[0][1]}))
        completed(iq)
        check(note(iq)[0] == "info", f"ended: {iq}")
        await call.wait_bye(5)
        await alice.wait_presence(lambda p: str(p["from"]) == f"{room_jid('stuck')}/bob"
                                  and p["type"] == "unavailable", 5, "bob leaves the room")
        await gw.wait_log(rf"groupchat: sip:{re.escape(BOB)} leaves {re.escape(room_jid('stuck'))} "
                          r"\(ended by the gateway's administrator\)")
        st = await status(ops)
        check(number(st, "groupchat-occupants") == 0, fields(st))
    finally:
        await ua.stop()


# ---------------------------------------------------------------- XEP-0050's rules

async def test_sessions_cancel_and_bad_requests(env):
    await env.gateway(admin_xml(env, admins=(OPS, f"carol@{XMPP_DOMAIN}")))
    ops = await admin(env, "ops")
    carol = await admin(env, "carol")

    # a sessionid nobody was given
    iq = await run(ops, "peer-stats", action="complete", sessionid="sgw-cmd999",
                   form=form_of({"peer": "sipnet"}))
    check(error(iq) == ("modify", "bad-request", "bad-sessionid"), f"bad-sessionid: {iq}")
    # another requester's session is not theirs to continue
    sid = executing(await run(ops, "peer-stats"))
    iq = await run(carol, "peer-stats", action="complete", sessionid=sid,
                   form=form_of({"peer": "sipnet"}))
    check(error(iq)[1:] == ("bad-request", "bad-sessionid"), f"not carol's session: {iq}")
    # nor is it another command's
    iq = await run(ops, "end-session", action="complete", sessionid=sid,
                   form=form_of({"session": "x"}))
    check(error(iq)[1:] == ("bad-request", "bad-sessionid"), f"not end-session's: {iq}")
    # malformed: no form, a form without the field, someone else's FORM_TYPE, a result form
    for what, form in (("no form", None), ("no field", form_of({})),
                       ("empty value", form_of({"peer": None})),
                       ("other FORM_TYPE", form_of({"peer": "sipnet"}, form_type="urn:other")),
                       ("a result form", form_of({"peer": "sipnet"}, ftype="result"))):
        iq = await run(ops, "peer-stats", action="complete", sessionid=sid, form=form)
        check(error(iq)[1:] == ("bad-request", "bad-payload"), f"{what}: bad-payload: {iq}")
    # the session survived those; 'prev' is not offered, an unknown action is malformed
    iq = await run(ops, "peer-stats", action="prev", sessionid=sid)
    check(error(iq)[1:] == ("bad-request", "bad-action"), f"prev: {iq}")
    raw = ET.Element(f"{{{NS_CMD}}}command", node=NODE + "peer-stats", action="jump", sessionid=sid)
    iq = await run(ops, None, raw=raw)
    check(error(iq)[1:] == ("bad-request", "malformed-action"), f"malformed-action: {iq}")
    # cancel ends it (XEP-0050 3.4): status canceled, the sessionid is then unknown
    iq = await run(ops, "peer-stats", action="cancel", sessionid=sid)
    check(iq["type"] == "result" and command(iq).get("status") == "canceled"
          and command(iq).get("sessionid") == sid, f"canceled: {iq}")
    iq = await run(ops, "peer-stats", action="complete", sessionid=sid,
                   form=form_of({"peer": "sipnet"}))
    check(error(iq)[1:] == ("bad-request", "bad-sessionid"), f"after cancel: {iq}")
    # a completed session is over too
    sid = executing(await run(ops, "peer-stats"))
    completed(await run(ops, "peer-stats", action="complete", sessionid=sid,
                        form=form_of({"peer": "sipnet"})))
    iq = await run(ops, "peer-stats", action="complete", sessionid=sid,
                   form=form_of({"peer": "sipnet"}))
    check(error(iq)[1:] == ("bad-request", "bad-sessionid"), f"after completion: {iq}")
    # a form submitted without FORM_TYPE is taken (XEP-0004 does not require it), and 'execute'
    # continues a session as the default action does
    sid = executing(await run(ops, "peer-stats"))
    iq = await run(ops, "peer-stats", action="execute", sessionid=sid,
                   form=form_of({"peer": "sipnet"}, form_type=None))
    check(value(iq, "peer") == "sipnet", f"done: {iq}")
    # the sessions are bounded: many abandoned forms push out the oldest, never refuse a new one
    first = executing(await run(ops, "peer-stats"))
    for _ in range(40):
        executing(await run(ops, "peer-stats"))
    iq = await run(ops, "peer-stats", action="complete", sessionid=first,
                   form=form_of({"peer": "sipnet"}))
    check(error(iq)[1:] == ("bad-request", "bad-sessionid"), f"the oldest pushed out: {iq}")
