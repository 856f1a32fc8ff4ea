"""test_disco.py - what XMPP clients discover about the gateway (docs/operations.md, "Discovery"):
disco#info and disco#items (XEP-0030) of the components, of a peer network and of SIP users, the
gateway prompt (XEP-0100) on real addresses in both addressing modes (a domain-mode peer and two
escaped-mode peers sharing one component, in one gateway file), version (XEP-0092), ping
(XEP-0199), the entity capabilities (XEP-0115) of a SIP user's presence checked by slixmpp's own
XEP-0115 code and against the disco#info of node#ver, and the errors of RFC 6120 8.4 for the
rest.  slixmpp clients on Prosody and on ejabberd (which closes the component stream on a reply
without 'from'); sipp as the SIP side."""

import asyncio
import base64
import hashlib
import re
import subprocess
import xml.etree.ElementTree as ET

from slixmpp.exceptions import IqError

from harness import (MUC_DOMAIN, SIP_DOMAIN, XMPP_DOMAIN, Client, check, gateway_xml, pidf,
                     presence_server, wait_for, xmpp_servers)

XMPP_SERVERS = ("prosody", "ejabberd")
GW_DOMAIN = "sip-gw." + XMPP_DOMAIN        # the component of the escaped-mode peers
SIP2, SIP3 = "sip2.example", "sip3.example"  # their SIP domains
COMPONENTS = (SIP_DOMAIN, GW_DOMAIN)
NET2, NET3 = f"{SIP2}@{GW_DOMAIN}", f"{SIP3}@{GW_DOMAIN}"   # the JIDs of sip:sip2.example...
BOB = f"bob@{SIP_DOMAIN}"
BOB_URI = f"sip:bob@{SIP_DOMAIN}"
CAROL2 = f"carol\\40{SIP2}@{GW_DOMAIN}"

NS_INFO = "http://jabber.org/protocol/disco#info"
NS_ITEMS = "http://jabber.org/protocol/disco#items"
NS_GATEWAY = "jabber:iq:gateway"
NS_VERSION = "jabber:iq:version"
NS_PING = "urn:xmpp:ping"
NS_COMMANDS = "http://jabber.org/protocol/commands"
NS_CAPS = "http://jabber.org/protocol/caps"
NS_STANZAS = "urn:ietf:params:xml:ns:xmpp-stanzas"
CAPS_NODE = "urn:simplegw:caps"

COMPONENT_FEATURES = {NS_INFO, NS_ITEMS, NS_GATEWAY, NS_VERSION, NS_PING, NS_COMMANDS}
ACCOUNT_FEATURES = {NS_INFO, NS_ITEMS, NS_PING}
CLIENT_FEATURES = {NS_CAPS, NS_INFO, "http://jabber.org/protocol/chatstates", "urn:xmpp:receipts",
                   "urn:xmpp:chat-markers:0"}


def both_modes(env):
    """Whether the gateway gets both components.  ejabberd's component listener here serves
    both domains on every connection (one `hosts` list), so two links of one gateway look like
    two instances to its instance probes (docs/interworking.md, the component link): there the
    gateway gets sipnet alone, and the rows about escaped addresses are left out."""
    return env.xmpp.kind == "prosody"


def disco_xml(env):
    """sipnet: domain mode, in rooms; othernet and thirdnet: escaped mode on one component (not on
    ejabberd: both_modes()).  All route to the test's SIP port, so one sipp sees what goes to any
    of them."""
    def peer(name, domain, trust, extra=""):
        return f"""<peer name="{name}" domain="{domain}" {extra}>
    <route address="127.0.0.1" port="{env.peer_sip_port}" transport="udp" options-interval="0s"/>
    <trust address="{trust}"/>
  </peer>
"""
    peers = [peer("sipnet", SIP_DOMAIN, "127.0.0.1", 'groupchat="yes"')]
    if both_modes(env):
        peers += [
            peer("othernet", SIP2, "127.0.0.2", f'addressing="escaped" component="{GW_DOMAIN}"'),
            peer("thirdnet", SIP3, "127.0.0.3", f'addressing="escaped" component="{GW_DOMAIN}"')]
    xml = gateway_xml(env, peers=peers)
    return xml.replace("</gateway>",
                       f'<groupchat><muc service="{MUC_DOMAIN}"/></groupchat>\n</gateway>')


async def start(env):
    gw = await env.gateway(disco_xml(env))
    if both_modes(env):
        await gw.wait_log(rf"component {re.escape(GW_DOMAIN)}: connected", timeout=15)
    return gw


def served(env, rows):
    """The rows (tuples whose first element is an address) this environment's gateway serves."""
    return [r for r in rows if both_modes(env) or
            not any(isinstance(x, str) and (GW_DOMAIN in x or SIP2 in x or SIP3 in x) for x in r)]


async def client(env, user="alice", caps=False):
    c = Client(user, env.xmpp.c2s_port)
    c.presences = []
    c.add_event_handler("presence", lambda p: c.presences.append(p))
    c.register_plugin("xep_0030")
    if caps:
        c.register_plugin("xep_0115")
    env.clients.append(c)
    await c.login()
    return c


async def ask(c, to, typ, payload):
    """One iq to `to` with payload (XML text, or a list of them; "" for none); the reply, result
    or error, checked for what RFC 6120 8.2.3 wants of every reply."""
    iq = c.make_iq(ito=to, itype=typ)
    for p in payload if isinstance(payload, list) else ([payload] if payload else []):
        iq.append(ET.fromstring(p))
    try:
        reply = await iq.send(timeout=5)
    except IqError as e:
        reply = e.iq
    check(reply["id"] == iq["id"], f"{to} {payload}: the reply keeps the id")
    check(reply["from"].full == to, f"{to} {payload}: the reply comes from {reply['from']}")
    return reply


def condition(reply):
    err = reply.xml.find("{jabber:client}error")
    if err is None:
        return None
    return next((c.tag.split("}")[1] for c in err
                 if c.tag.startswith("{" + NS_STANZAS) and not c.tag.endswith("}text")), None)


def query(reply, ns):
    return reply.xml.find(f"{{{ns}}}query")


def info_of(reply):
    """(identities as (category, type, lang, name), features) of a disco#info result."""
    q = query(reply, NS_INFO)
    check(q is not None, f"a disco#info query: {reply}")
    ids = [(i.get("category"), i.get("type"), i.get("{http://www.w3.org/XML/1998/namespace}lang"),
            i.get("name")) for i in q.findall(f"{{{NS_INFO}}}identity")]
    return ids, [f.get("var") for f in q.findall(f"{{{NS_INFO}}}feature")]


def caps_ver(ids, features):
    """XEP-0115 5.1, written again here: the gateway's ver must match it."""
    s = "".join(f"{c}/{t}/{l or ''}/{n or ''}<" for c, t, l, n in
                sorted(ids, key=lambda i: (i[0], i[1], i[2] or "")))
    s += "".join(f"{f}<" for f in sorted(features))
    return base64.b64encode(hashlib.sha1(s.encode()).digest()).decode()


async def expect_ok(env, gw):
    """The component link stayed up: no reply made the server close it."""
    check(gw.log_count(r"link lost|stream error|improper-addressing") == 0,
          "the component links were never dropped")


# ---------------------------------------------------------------- the components

@xmpp_servers("prosody")
async def test_component_info_and_items(env):
    gw = await start(env)
    alice = await client(env)
    for comp, rooms in ((SIP_DOMAIN, True), (GW_DOMAIN, False)):
        reply = await ask(alice, comp, "get", f"<query xmlns='{NS_INFO}'/>")
        ids, features = info_of(reply)
        check([(c, t) for c, t, _, _ in ids] == [("gateway", "sip")], f"{comp}: gateway/sip: {ids}")
        want = COMPONENT_FEATURES | ({"http://jabber.org/protocol/muc"} if rooms else set())
        check(set(features) == want and len(features) == len(want),
              f"{comp}: features {sorted(features)}, want {sorted(want)}")
    # items: every peer network (at the JID sip:<its domain> maps to) but the one asked, and the
    # MUC service SIP users may join (sipnet takes part in rooms)
    for comp, want in ((SIP_DOMAIN, {(NET2, "othernet"), (NET3, "thirdnet"), (MUC_DOMAIN, None)}),
                       (GW_DOMAIN, {(SIP_DOMAIN, "sipnet"), (NET2, "othernet"),
                                    (NET3, "thirdnet"), (MUC_DOMAIN, None)})):
        reply = await ask(alice, comp, "get", f"<query xmlns='{NS_ITEMS}'/>")
        items = {(i.get("jid"), i.get("name")) for i in
                 query(reply, NS_ITEMS).findall(f"{{{NS_ITEMS}}}item")}
        got = {(j, n if j != MUC_DOMAIN else None) for j, n in items}
        check(got == want and all(n for _, n in items), f"{comp}: items {items}, want {want}")
        check(all(i.get("node") is None for i in query(reply, NS_ITEMS)), "items are JIDs, no nodes")
    # a peer network's own JID (escaped mode) answers for that network
    reply = await ask(alice, NET2, "get", f"<query xmlns='{NS_INFO}'/>")
    ids, features = info_of(reply)
    check(ids == [("gateway", "sip", None, "othernet")], f"{NET2}: named after its peer: {ids}")
    check(NS_GATEWAY in features and NS_VERSION not in features, f"{NET2}: {features}")
    reply = await ask(alice, NET2, "get", f"<query xmlns='{NS_ITEMS}'/>")
    check(reply["type"] == "result" and not list(query(reply, NS_ITEMS)), f"no items: {reply}")
    # nodes: the commands' (admin.c answers: no commands for alice), none other
    reply = await ask(alice, SIP_DOMAIN, "get", f"<query xmlns='{NS_ITEMS}' node='{NS_COMMANDS}'/>")
    check(reply["type"] == "result" and query(reply, NS_ITEMS).get("node") == NS_COMMANDS,
          f"the commands' node: {reply}")
    for ns in (NS_INFO, NS_ITEMS):
        reply = await ask(alice, SIP_DOMAIN, "get", f"<query xmlns='{ns}' node='x'/>")
        check(condition(reply) == "item-not-found", f"{ns} node x: {reply}")
        reply = await ask(alice, SIP_DOMAIN, "get", f"<query xmlns='{ns}' node='{CAPS_NODE}#x'/>")
        check(condition(reply) == "item-not-found", f"{ns} a caps node at the component: {reply}")
    await expect_ok(env, gw)


async def test_version_and_ping(env):
    gw = await start(env)
    alice = await client(env)
    out = subprocess.run([env.gateway_binary, "-v"], capture_output=True, text=True, timeout=10)
    version = out.stdout.split()[-1]
    reply = await ask(alice, SIP_DOMAIN, "get", f"<query xmlns='{NS_VERSION}'/>")
    q = query(reply, NS_VERSION)
    check(q is not None and q.findtext(f"{{{NS_VERSION}}}name") == "simplegw" and
          q.findtext(f"{{{NS_VERSION}}}version") == version, f"simplegw {version}: {reply}")
    check(q.find(f"{{{NS_VERSION}}}os") is None, "no <os/> (XEP-0092 7)")
    rows = [
        # (to, expected condition or None for a result)
        (SIP_DOMAIN, None), (GW_DOMAIN, None), (NET2, None),
        (BOB, None), (CAROL2, None),                         # the gateway answers for accounts
        (BOB + "/phone", "service-unavailable"),            # not for a SIP device
        (f"bob\\40elsewhere.example@{GW_DOMAIN}", "item-not-found"),   # no peer has that domain
        (f"bob@{GW_DOMAIN}", "jid-malformed"),               # no domain in an escaped localpart
    ]
    for to, want in served(env, rows):
        reply = await ask(alice, to, "get", f"<ping xmlns='{NS_PING}'/>")
        check(condition(reply) == want, f"ping {to}: {condition(reply)}, want {want}: {reply}")
    reply = await ask(alice, BOB, "get", f"<query xmlns='{NS_VERSION}'/>")
    check(condition(reply) == "service-unavailable", f"no version of a SIP user: {reply}")
    await expect_ok(env, gw)


# ---------------------------------------------------------------- XEP-0100

async def test_gateway_prompt_gives_addresses_that_work(env):
    gw = await start(env)
    alice = await client(env)
    reply = await ask(alice, SIP_DOMAIN, "get", f"<query xmlns='{NS_GATEWAY}'/>")
    q = query(reply, NS_GATEWAY)
    desc = q.findtext(f"{{{NS_GATEWAY}}}desc") or ""
    check(q.findtext(f"{{{NS_GATEWAY}}}prompt") == "SIP address", f"the prompt: {reply}")
    check(all(d in desc for d in ((SIP_DOMAIN, SIP2, SIP3) if both_modes(env) else (SIP_DOMAIN,))),
          f"the domains in the text: {desc}")
    rows = [
        # (asked, typed, JID or error condition)
        (SIP_DOMAIN, "sip:bob@sip.example", BOB),
        (SIP_DOMAIN, "bob", BOB),                           # one peer here: a user name will do
        (SIP_DOMAIN, '"Bob" <sips:bob@sip.example;transport=tls>', BOB),
        (SIP_DOMAIN, "Carol <sip:carol@sip2.example>", CAROL2),   # another component's peer
        (GW_DOMAIN, "carol@sip2.example", CAROL2),
        (GW_DOMAIN, "sip:john%20smith@sip3.example", f"john\\20smith\\40{SIP3}@{GW_DOMAIN}"),
        (NET2, "carol", CAROL2),                            # the network's own prompt
        (GW_DOMAIN, "carol", "not-acceptable"),             # two peers here: which domain?
        (SIP_DOMAIN, "tel:+15551234", "not-acceptable"),
        (SIP_DOMAIN, "sip:BOB@sip.example", "not-acceptable"),
        (SIP_DOMAIN, "bob@elsewhere.example", "item-not-found"),
        (GW_DOMAIN, "sip:carol@sip4.example", "item-not-found"),
    ]
    got = {}
    for to, typed, want in served(env, rows):
        prompt = ET.Element(f"{{{NS_GATEWAY}}}prompt")
        prompt.text = typed
        q = ET.Element(f"{{{NS_GATEWAY}}}query")
        q.append(prompt)
        reply = await ask(alice, to, "set", ET.tostring(q).decode())
        if "@" in want:
            res = query(reply, NS_GATEWAY)
            jid = res.findtext(f"{{{NS_GATEWAY}}}jid") if res is not None else None
            check(jid == want, f"{to}: {typed!r} -> {jid}, want {want}: {reply}")
            check(res.findtext(f"{{{NS_GATEWAY}}}prompt") == want, f"<prompt/> too: {reply}")
            got[typed] = jid
        else:
            check(condition(reply) == want, f"{to}: {typed!r}: {condition(reply)}, want {want}")
            check(reply.xml.find(f".//{{{NS_STANZAS}}}text") is not None, f"a text says why: {reply}")
    reply = await ask(alice, SIP_DOMAIN, "set", f"<query xmlns='{NS_GATEWAY}'/>")
    check(condition(reply) == "bad-request", f"a set without <prompt/>: {reply}")
    # the JIDs are the ones to write to: messages to them reach those SIP users
    sends = served(env, [("bob", BOB_URI), ("carol@sip2.example", f"sip:carol@{SIP2}"),
                         ("sip:john%20smith@sip3.example", f"sip:john%20smith@{SIP3}")])
    uas = await env.uas(calls=len(sends)).start()
    for typed, _ in sends:
        alice.send_message(mto=got[typed], mbody=f"to {typed}", mtype="chat")
        await wait_for(lambda: any(f"to {typed}".encode() == b for _, _, b in uas.received()), 10,
                       f"the message to {got[typed]}")
    check(await uas.wait() == 0, uas.error_text())
    starts = [s for s, _, _ in uas.received()]
    check(starts == [f"MESSAGE {u} SIP/2.0" for _, u in sends], starts)
    await expect_ok(env, gw)


# ---------------------------------------------------------------- SIP users

async def test_sip_user_disco(env):
    gw = await start(env)
    alice = await client(env)
    for bare in (BOB, CAROL2) if both_modes(env) else (BOB,):
        ids, features = info_of(await ask(alice, bare, "get", f"<query xmlns='{NS_INFO}'/>"))
        check(ids == [("account", "registered", None, None)], f"{bare}: account/registered: {ids}")
        check(set(features) == ACCOUNT_FEATURES, f"{bare}: {features}")
        reply = await ask(alice, bare, "get", f"<query xmlns='{NS_ITEMS}'/>")
        check(reply["type"] == "result" and not list(query(reply, NS_ITEMS)),
              f"{bare}: no items (resources are presence): {reply}")
        full = bare + "/t1"
        ids, features = info_of(await ask(alice, full, "get", f"<query xmlns='{NS_INFO}'/>"))
        check(ids == [("client", "pc", None, "simplegw (SIP)")], f"{full}: client/pc: {ids}")
        check(set(features) == CLIENT_FEATURES, f"{full}: {sorted(features)}")
        reply = await ask(alice, full, "get", f"<query xmlns='{NS_ITEMS}'/>")
        check(condition(reply) == "service-unavailable", f"{full}: no disco#items: {reply}")
        reply = await ask(alice, full, "get", f"<query xmlns='{NS_INFO}' node='{CAPS_NODE}#nope'/>")
        check(condition(reply) == "item-not-found", f"{full}: another ver: {reply}")
    # one peer's component does not answer for another domain's users
    if both_modes(env):
        reply = await ask(alice, f"bob\\40elsewhere.example@{GW_DOMAIN}", "get",
                          f"<query xmlns='{NS_INFO}'/>")
        check(condition(reply) == "item-not-found", f"a domain no peer owns: {reply}")
    await expect_ok(env, gw)


async def test_caps_of_a_sip_users_presence(env):
    server = presence_server(env, body=pidf(BOB_URI, note="here", tuple_id="t1"), wait=True)
    await server.start()
    gw = await start(env)
    alice = await client(env, caps=True)
    alice.auto_authorize = True
    alice.send_presence(pto=BOB, ptype="subscribe")
    await wait_for(lambda: any(str(p["from"]) == BOB + "/t1" and p["type"] == "available"
                               for p in alice.presences), 10, "bob's presence")
    p = next(p for p in alice.presences if str(p["from"]) == BOB + "/t1")
    c = p.xml.find(f"{{{NS_CAPS}}}c")
    check(c is not None and c.get("hash") == "sha-1" and c.get("node") == CAPS_NODE,
          f"XEP-0115 <c/> in bob's presence: {p}")
    ver = c.get("ver")
    # node#ver answers what the full JID answers, and its hash is ver
    reply = await ask(alice, BOB + "/t1", "get", f"<query xmlns='{NS_INFO}' node='{CAPS_NODE}#{ver}'/>")
    check(query(reply, NS_INFO).get("node") == f"{CAPS_NODE}#{ver}", f"the node mirrored: {reply}")
    ids, features = info_of(reply)
    check(caps_ver(ids, features) == ver, f"ver {ver} is the hash of {ids} {features}")
    plain = info_of(await ask(alice, BOB + "/t1", "get", f"<query xmlns='{NS_INFO}'/>"))
    check(plain == (ids, features), f"the same as without the node: {plain}")
    # slixmpp's own XEP-0115 code asked node#ver too, checked the hash and kept the ver
    kept = None
    for _ in range(50):
        kept = await alice["xep_0115"].get_verstring(p["from"])
        if kept:
            break
        await asyncio.sleep(0.1)
    check(kept == ver, f"slixmpp validated the caps: {kept}")
    await expect_ok(env, gw)


# ---------------------------------------------------------------- RFC 6120 8.4

async def test_unsupported_and_malformed(env):
    gw = await start(env)
    alice = await client(env)
    rows = [
        (SIP_DOMAIN, "set", "<query xmlns='jabber:iq:private'/>", "service-unavailable"),
        (SIP_DOMAIN, "get", "<vCard xmlns='vcard-temp'/>", "service-unavailable"),
        (SIP_DOMAIN, "set", f"<query xmlns='{NS_INFO}'/>", "service-unavailable"),
        (BOB, "get", "<vCard xmlns='vcard-temp'/>", "service-unavailable"),
        (BOB, "get", f"<query xmlns='{NS_GATEWAY}'/>", "service-unavailable"),
        (BOB + "/t1", "get", "<query xmlns='jabber:iq:last'/>", "service-unavailable"),
        (SIP_DOMAIN, "get", "", "bad-request"),
        (SIP_DOMAIN, "get", [f"<query xmlns='{NS_INFO}'/>", f"<ping xmlns='{NS_PING}'/>"],
         "bad-request"),
    ]
    for to, typ, payload, want in rows:
        reply = await ask(alice, to, typ, payload)
        check(reply["type"] == "error" and condition(reply) == want,
              f"{to} {typ} {payload}: {condition(reply)}, want {want}")
    await expect_ok(env, gw)
