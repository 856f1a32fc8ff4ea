"""test_privilege.py - what XEP-0356 (Privileged Entity) gives the component: roster "get" on
every local user, as the harness grants it (Prosody's mod_privilege from prosody-modules,
ejabberd's mod_privilege), the ground the gateway's roster-group resource lists stand on.

No gateway runs here: each test opens its own XEP-0114 component connection as sip.example (a
raw socket, every byte kept in component-<test>.log under the run's directory: `run.py --keep`)
and pins what each server sends it and answers it.
"""

import asyncio
import hashlib
import os
import xml.etree.ElementTree as ET
from xml.parsers import expat

from harness import SECRET, SIP_DOMAIN, XMPP_DOMAIN, TestFailure, check, wait_for
from test_presence import watcher

XMPP_SERVERS = ("prosody", "ejabberd")
USERS = ("alice", "carol", "dave", "erin")

NS_COMPONENT = "jabber:component:accept"
NS_ROSTER = "jabber:iq:roster"
# Prosody's mod_privilege speaks only :2; ejabberd 23.01's xmpp library only :1
NS_PRIVILEGE = {"prosody": "urn:xmpp:privilege:2", "ejabberd": "urn:xmpp:privilege:1"}


def _tag_end(buf, i):
    """The index after the '>' that closes the tag starting at buf[i] (quotes skipped)."""
    quote = None
    for j in range(i, len(buf)):
        c = buf[j:j + 1]
        if quote:
            if c == quote:
                quote = None
        elif c in (b"'", b'"'):
            quote = c
        elif c == b">":
            return j + 1
    raise TestFailure("unterminated tag")


class Component:
    """A bare XEP-0114 component: handshake, then every top-level element received is kept as
    (ElementTree element, the exact bytes the server sent)."""

    def __init__(self, env, name, domain=SIP_DOMAIN):
        self.env = env
        self.domain = domain
        self.stanzas = []
        self.buf = b""
        self.depth = 0
        self.start = None
        self.stream_id = None
        self.builder = None
        self.transcript = open(os.path.join(env.workdir, f"component-{name}.log"), "a")
        self.parser = expat.ParserCreate(namespace_separator=" ")
        self.parser.StartElementHandler = self._start
        self.parser.EndElementHandler = self._end
        self.parser.CharacterDataHandler = self._text
        self.reader = self.writer = self.task = None

    @staticmethod
    def _qname(name):
        ns, _, local = name.rpartition(" ")
        return f"{{{ns}}}{local}" if ns else local

    def _start(self, name, attrs):
        self.depth += 1
        if self.depth == 1:
            self.stream_id = attrs.get("id")
            return
        if self.depth == 2:
            self.start = self.parser.CurrentByteIndex
            self.builder = ET.TreeBuilder()
        self.builder.start(self._qname(name), {self._qname(k): v for k, v in attrs.items()})

    def _end(self, name):
        if self.depth >= 2:
            self.builder.end(self._qname(name))
        if self.depth == 2:
            end = _tag_end(self.buf, self.start)
            if self.buf[end - 2:end] != b"/>":  # not an empty element: the event is at its end tag
                end = self.buf.index(b">", self.parser.CurrentByteIndex) + 1
            self.stanzas.append((self.builder.close(), self.buf[self.start:end].decode()))
        self.depth -= 1

    def _text(self, data):
        if self.depth >= 2:
            self.builder.data(data)

    async def _read(self):
        while True:
            data = await self.reader.read(65536)
            if not data:
                return
            self.transcript.write(f"<<< {data.decode(errors='replace')}\n")
            self.transcript.flush()
            self.buf += data
            self.parser.Parse(data, False)

    def send(self, xml):
        self.transcript.write(f">>> {xml}\n")
        self.transcript.flush()
        self.writer.write(xml.encode())

    async def connect(self, pipelined=""):
        self.reader, self.writer = await asyncio.open_connection("127.0.0.1",
                                                                 self.env.xmpp.component_port)
        self.task = asyncio.ensure_future(self._read())
        self.send(f"<stream:stream xmlns='{NS_COMPONENT}' "
                  f"xmlns:stream='http://etherx.jabber.org/streams' to='{self.domain}'>")
        await wait_for(lambda: self.stream_id is not None, 5, "the server's stream header")
        digest = hashlib.sha1((self.stream_id + SECRET).encode()).hexdigest()
        self.send(f"<handshake>{digest}</handshake>{pipelined}")
        await self.expect(lambda e, raw: e.tag == f"{{{NS_COMPONENT}}}handshake", "<handshake/>")

    async def expect(self, pred, what, timeout=5.0):
        """The first stanza received (so far or within timeout) that pred(element, raw) takes."""
        def found():
            if self.task.done() and not self.task.cancelled() and self.task.exception():
                raise self.task.exception()     # the reader died: say why, not "timed out"
            return next(((e, raw) for e, raw in self.stanzas if pred(e, raw)), None)
        await wait_for(lambda: found() is not None, timeout, what)
        return found()

    async def close(self):
        if self.writer:
            self.send("</stream:stream>")
            self.writer.close()
        if self.task:
            self.task.cancel()
        self.transcript.close()


def privilege_of(env, e):
    return e.find(f"{{{NS_PRIVILEGE[env.xmpp.kind]}}}privilege")


def is_advert(env):
    return lambda e, raw: e.tag == f"{{{NS_COMPONENT}}}message" and privilege_of(env, e) is not None


def iq_reply(iq_id):
    return lambda e, raw: e.tag == f"{{{NS_COMPONENT}}}iq" and e.get("id") == iq_id


def roster_of(e):
    """{jid: (name, subscription, sorted groups)} of an iq result's roster query."""
    query = e.find(f"{{{NS_ROSTER}}}query")
    check(query is not None, f"a roster query in {ET.tostring(e)}")
    return {i.get("jid"): (i.get("name"), i.get("subscription"),
                           sorted(g.text for g in i.findall(f"{{{NS_ROSTER}}}group")))
            for i in query.findall(f"{{{NS_ROSTER}}}item")}


async def component(env, name, pipelined=""):
    """A component connected and authenticated; `pipelined` goes out with the handshake."""
    c = Component(env, name)
    env_cleanup = env.cleanup

    async def cleanup():                # the component goes with the test's clients
        await c.close()
        env.cleanup = env_cleanup
        return await env_cleanup()
    env.cleanup = cleanup
    await c.connect(pipelined)
    return c


async def test_the_server_advertises_roster_get_after_the_handshake(env):
    comp = await component(env, "advert")
    e, raw = await comp.expect(is_advert(env), "the XEP-0356 <message/> advertising privileges")
    check(e.get("from") == XMPP_DOMAIN and e.get("to") == SIP_DOMAIN,
          f"the advertisement comes from the server's domain to the component: {raw}")
    perms = {p.get("access"): p.get("type") for p in privilege_of(env, e)}
    # Prosody lists only what it grants; ejabberd lists every access, "none" where not granted
    granted = {k: v for k, v in perms.items() if v != "none"}
    check(granted == {"roster": "get"}, f"roster get and nothing else is granted: {raw}")


async def test_the_component_reads_a_users_roster_with_its_groups(env):
    alice = await watcher(env, "alice")
    await alice.update_roster(f"carol@{XMPP_DOMAIN}", name="Carol", groups=["Friends", "Work"])
    await alice.update_roster(f"bob@{SIP_DOMAIN}", name="Bob", groups=["SIP buddies"])
    await alice.update_roster(f"dave@{XMPP_DOMAIN}")          # no name, no group
    comp = await component(env, "get")
    await comp.expect(is_advert(env), "the privilege advertisement")
    comp.send(f"<iq type='get' from='{SIP_DOMAIN}' to='alice@{XMPP_DOMAIN}' id='r1'>"
              f"<query xmlns='{NS_ROSTER}'/></iq>")
    e, raw = await comp.expect(iq_reply("r1"), "the roster")
    check(e.get("type") == "result", f"the roster get is answered: {raw}")
    check(e.get("from") == f"alice@{XMPP_DOMAIN}" and e.get("to") == SIP_DOMAIN,
          f"the reply comes from the user's bare JID: {raw}")
    check(roster_of(e) == {
        f"carol@{XMPP_DOMAIN}": ("Carol", "none", ["Friends", "Work"]),
        f"bob@{SIP_DOMAIN}": ("Bob", "none", ["SIP buddies"]),
        f"dave@{XMPP_DOMAIN}": (None, "none", []),
    }, f"every item with its name and groups: {raw}")


async def test_a_read_before_the_advertisement_may_be_refused(env):
    """A read sent with the handshake itself, before the advertisement: Prosody has granted the
    privileges by then (it sets them while authenticating and advertises them right after
    <handshake/>), ejabberd grants them in another process a moment after <handshake/> and
    refuses the read (forbidden, "Query to another users is forbidden": every run here, though
    it is a race).  So the gateway reads rosters only once the advertisement came."""
    comp = await component(env, "early", f"<iq type='get' from='{SIP_DOMAIN}' "
                           f"to='carol@{XMPP_DOMAIN}' id='e1'><query xmlns='{NS_ROSTER}'/></iq>")
    e, raw = await comp.expect(iq_reply("e1"), "an answer to the early read")
    if env.xmpp.kind == "prosody":
        check(e.get("type") == "result", f"Prosody answers the roster: {raw}")
    else:
        check(e.get("type") == "result" or "forbidden" in raw, f"the roster or forbidden: {raw}")
    await comp.expect(is_advert(env), "the privilege advertisement")
    comp.send(f"<iq type='get' from='{SIP_DOMAIN}' to='carol@{XMPP_DOMAIN}' id='e2'>"
              f"<query xmlns='{NS_ROSTER}'/></iq>")
    e, raw = await comp.expect(iq_reply("e2"), "the roster")
    check(e.get("type") == "result", f"after the advertisement the read is answered: {raw}")


async def test_an_unknown_users_roster_is_empty(env):
    comp = await component(env, "unknown")
    await comp.expect(is_advert(env), "the privilege advertisement")
    comp.send(f"<iq type='get' from='{SIP_DOMAIN}' to='nobody@{XMPP_DOMAIN}' id='r2'>"
              f"<query xmlns='{NS_ROSTER}'/></iq>")
    e, raw = await comp.expect(iq_reply("r2"), "an answer for a user that does not exist")
    # both servers answer an empty roster: the gateway cannot tell "no user" from "no contacts"
    check(e.get("type") == "result" and roster_of(e) == {}, f"an empty roster: {raw}")


async def test_roster_set_is_refused(env):
    comp = await component(env, "set")
    await comp.expect(is_advert(env), "the privilege advertisement")
    comp.send(f"<iq type='set' from='{SIP_DOMAIN}' to='carol@{XMPP_DOMAIN}' id='s1'>"
              f"<query xmlns='{NS_ROSTER}'><item jid='bob@{SIP_DOMAIN}'/></query></iq>")
    e, raw = await comp.expect(iq_reply("s1"), "an answer to the roster set")
    check(e.get("type") == "error" and "forbidden" in raw, f"forbidden: {raw}")


async def test_roster_changes_are_not_pushed_to_the_component(env):
    """A change after the component read the roster: neither server pushes it (Prosody's
    module says roster pushes to privileged entities are not implemented), so the gateway
    has to read the roster again to see it."""
    erin = await watcher(env, "erin")
    comp = await component(env, "push")
    await comp.expect(is_advert(env), "the privilege advertisement")
    comp.send(f"<iq type='get' from='{SIP_DOMAIN}' to='erin@{XMPP_DOMAIN}' id='p1'>"
              f"<query xmlns='{NS_ROSTER}'/></iq>")
    await comp.expect(iq_reply("p1"), "the roster")
    before = len(comp.stanzas)
    await erin.update_roster(f"frank@{SIP_DOMAIN}", name="Frank", groups=["Later"])
    await asyncio.sleep(2)
    pushed = [raw for _, raw in comp.stanzas[before:]]
    check(not pushed, f"nothing reaches the component: {pushed}")
    comp.send(f"<iq type='get' from='{SIP_DOMAIN}' to='erin@{XMPP_DOMAIN}' id='p2'>"
              f"<query xmlns='{NS_ROSTER}'/></iq>")
    e, raw = await comp.expect(iq_reply("p2"), "the roster again")
    check(roster_of(e).get(f"frank@{SIP_DOMAIN}") == ("Frank", "none", ["Later"]),
          f"a new read sees the change: {raw}")
