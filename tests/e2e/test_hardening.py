"""test_hardening.py - what a stranger on the network or one XMPP user can do to the gateway, as
attacks: each must leave the gateway serving everyone else, with a second, well-behaved user
whose messages are checked during and after the attack.  Against Prosody and ejabberd.
"""

import asyncio
import os
import shutil
import signal
import time

from harness import SIP_DOMAIN, XMPP_DOMAIN, check, error_condition, pidf, wait_for
from msrp_ua import SipMessage, parse_sip
from test_hostile import sip_request, udp_exchange
from test_interop import SipUA, status_of
from test_presence import expect_pres, pres, presence_gateway_xml, watcher

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


# ------------------------------------------------------------------ connections

def gw_fds(gw):
    return len(os.listdir(f"/proc/{gw.proc.pid}/fd"))


def gw_rss_mb(gw):
    with open(f"/proc/{gw.proc.pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def gw_cpu_seconds(gw):
    with open(f"/proc/{gw.proc.pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def open_conns(port, n, source="127.0.0.1"):
    """n TCP connections to 127.0.0.1:port from source; returns (reader, writer) pairs."""
    out = []
    for _ in range(n):
        out.append(await asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0)))
    return out


async def closed_by_peer(reader, within):
    try:
        return await asyncio.wait_for(reader.read(1), within) == b""
    except asyncio.TimeoutError:
        return False
    except ConnectionError:
        return True


def close_all(conns):
    for _, w in conns:
        w.close()


async def test_strangers_cannot_hold_connections(env):
    """Connections to the SIP/TCP and MSRP ports from an address no peer network trusts
    (127.0.0.2; the peers are trusted from 127.0.0.1) are closed at once: a few hundred of them,
    which used to take the gateway's descriptors, leave it where it was, and the trusted peer is
    served throughout."""
    gw = await env.gateway(log_level="info")
    carol = await env.client("carol")
    before, rss = gw_fds(gw), gw_rss_mb(gw)
    for port in (env.gw_sip_port, env.gw_msrp_port):
        conns = await open_conns(port, 250, source="127.0.0.2")
        closed = await asyncio.gather(*(closed_by_peer(r, 2.0) for r, _ in conns))
        check(all(closed), f"port {port}: {closed.count(False)} of 250 connections stayed open")
        close_all(conns)
    check(gw_fds(gw) <= before + 2, f"descriptors {before} -> {gw_fds(gw)}")
    check(gw_rss_mb(gw) < rss + 16, f"RSS {rss:.1f} -> {gw_rss_mb(gw):.1f} MB")
    await both_ways_still_work(env, carol, "after the strangers")
    check(gw.log_count(r"connection from 127\.0\.0\.2:\d+ refused: no peer network trusts") > 0,
          "the refusals are logged")
    check(gw.log_count(r"refused: no peer network trusts") <= 22, "at a bounded rate")


async def test_connections_per_source_are_capped_and_idle_ones_closed(env):
    """A trusted source may hold <sip max-connections-per-source> connections; more are closed
    at once.  A connection that carries nothing for <sip tcp-idle> is closed."""
    gw = await env.gateway(log_level="info",
                           sip_attrs='max-connections-per-source="20" tcp-idle="2s"')
    conns = await open_conns(env.gw_sip_port, 30)
    closed = await asyncio.gather(*(closed_by_peer(r, 0.5) for r, _ in conns))
    check(closed.count(True) == 10 and not any(closed[:20]),
          f"the first 20 kept, the 10 more closed: {closed}")
    await gw.wait_log(r"refused: too many connections from this address", timeout=2)
    idle = await asyncio.gather(*(closed_by_peer(r, 4.0) for r, _ in conns[:20]))
    check(all(idle), f"idle connections closed after tcp-idle: {idle.count(False)} still open")
    check(gw.log_count(r"SIP connection from 127\.0\.0\.1:\d+ closed: nothing sent either way "
                       r"for 2000 ms") > 0, "the idle closes are logged")
    close_all(conns)
    # half a request, then nothing: closed after tcp-idle as well (Sofia's timer answers 400
    # first, or the idle sweep closes it silently: both fire tcp-idle after the last byte)
    r, w = await asyncio.open_connection("127.0.0.1", env.gw_sip_port)
    w.write(sip_request("OPTIONS", w.get_extra_info("sockname")[1], transport="TCP")[:120])
    data = await asyncio.wait_for(r.read(), 5.0)
    check(data == b"" or data.startswith(b"SIP/2.0 400"),
          f"an unfinished request is closed, perhaps answered 400: {data[:80]!r}")
    w.close()
    # the source may connect again, and what it sends is answered
    r, w = await asyncio.open_connection("127.0.0.1", env.gw_sip_port)
    w.write(sip_request("OPTIONS", w.get_extra_info("sockname")[1], transport="TCP"))
    data = await asyncio.wait_for(r.readuntil(b"\r\n\r\n"), 5)
    check(data.startswith(b"SIP/2.0 200"), data[:80])
    w.close()


async def test_descriptor_exhaustion_does_not_spin(env):
    """At the descriptor limit (prlimit makes it 64) the gateway used to spin at 100 % CPU on
    accept() = EMFILE and serve nothing, for good.  Now the pending connections are taken and
    closed with a reserve descriptor, UDP goes on being served, and once the flood is gone TCP
    works again."""
    if not shutil.which("prlimit"):
        raise AssertionError("prlimit (util-linux) is needed")
    gw = await env.gateway(log_level="notice", sip_attrs='max-connections-per-source="1000" '
                                                         'max-connections="1000"')
    carol = await env.client("carol")
    proc = await asyncio.create_subprocess_exec("prlimit", f"--pid={gw.proc.pid}", "--nofile=64:64")
    check(await proc.wait() == 0, "prlimit")
    conns = await open_conns(env.gw_sip_port, 120)
    conns += await open_conns(env.gw_msrp_port, 120)
    await asyncio.sleep(0.5)
    t0, c0 = time.monotonic(), gw_cpu_seconds(gw)
    await asyncio.sleep(2.0)
    share = (gw_cpu_seconds(gw) - c0) / (time.monotonic() - t0)
    check(share < 0.2, f"the gateway spins: {share:.0%} of a core at the descriptor limit")
    await gw.wait_log(r"connection refused: no descriptor left", timeout=2)
    uac = env.uac(ruri=f"sip:carol@{XMPP_DOMAIN}", to=f"sip:carol@{XMPP_DOMAIN}", body="over UDP")
    check(await uac.run() == 0, f"UDP is served at the limit: {uac.error_text()}")
    close_all(conns)
    await asyncio.sleep(1.0)
    r, w = await asyncio.open_connection("127.0.0.1", env.gw_sip_port)
    w.write(sip_request("OPTIONS", w.get_extra_info("sockname")[1], transport="TCP"))
    data = await asyncio.wait_for(r.readuntil(b"\r\n\r\n"), 5)
    check(data.startswith(b"SIP/2.0 200"), f"TCP works again: {data[:80]!r}")
    w.close()
    await carol.expect(lambda m: m["body"].strip() == "over UDP", 5, "the UDP message")


async def test_msrp_path_outside_the_peer_is_refused(env):
    """An INVITE whose SDP points MSRP at an address outside the offering peer's trusted
    networks (127.0.0.5) is refused with 488: the gateway opens no connection to a third party."""
    gw = await env.gateway(log_level="info")
    await env.client("alice")
    sdp = ("v=0\r\no=- 1 1 IN IP4 127.0.0.5\r\ns=-\r\nc=IN IP4 127.0.0.5\r\nt=0 0\r\n"
           "m=message 7777 TCP/MSRP *\r\na=accept-types:text/plain\r\n"
           "a=path:msrp://127.0.0.5:7777/s1;tcp\r\na=setup:passive\r\n")
    ua = await SipUA().start()
    try:
        resp = await ua.request(env.gw_sip_port, sdp, "application/sdp", method="INVITE")
        check(status_of(resp) == 488, f"INVITE with a third party's MSRP path: {resp.start}")
    finally:
        ua.close()
    await gw.wait_log(r"MSRP path msrp://127\.0\.0\.5:7777/s1;tcp is outside the networks", timeout=2)


async def test_unbound_msrp_connections_are_capped_and_timed_out(env):
    """MSRP connections from a trusted address that bind no session: at most 16 per address are
    held, and each is closed after <sessions connect-timeout>; a real session still works."""
    gw = await env.gateway(log_level="info", sessions=f'<sessions msrp-port="{env.gw_msrp_port}" '
                                                      'connect-timeout="1s"/>')
    carol = await env.client("carol")
    conns = await open_conns(env.gw_msrp_port, 20)
    closed = await asyncio.gather(*(closed_by_peer(r, 0.5) for r, _ in conns))
    check(closed.count(True) == 4 and not any(closed[:16]),
          f"the first 16 held, 4 more closed at once: {closed}")
    later = await asyncio.gather(*(closed_by_peer(r, 3.0) for r, _ in conns[:16]))
    check(all(later), f"unbound connections closed after connect-timeout: {later.count(False)} open")
    close_all(conns)
    check(gw.log_count(r"MSRP connection from 127\.0\.0\.1:\d+ bound no session within 1000 ms") > 0,
          "the timeouts are logged")
    await both_ways_still_work(env, carol, "after the MSRP connections")


# ------------------------------------------------------------------ in-dialog forgery

class Notifier(asyncio.DatagramProtocol):
    """The peer's presence server for bob, on the peer's port: answers a SUBSCRIBE 200 and
    notifies `note`; notify() sends another NOTIFY in the same dialog."""

    def __init__(self, port):
        self.port = port
        self.sub = None         # the SUBSCRIBE, once received
        self.addr = None
        self.cseq = 0
        self.responses = []
        self.transport = None

    def connection_made(self, transport):
        self.transport = transport

    def notify_bytes(self, state, note, src_port=None, cseq=None):
        body = pidf(f"sip:bob@{SIP_DOMAIN}", note=note).encode()
        self.cseq += 1
        src = self.port if src_port is None else src_port
        return SipMessage(f"NOTIFY {self.sub.get('contact').strip('<>')} SIP/2.0", [
            ("Via", f"SIP/2.0/UDP 127.0.0.1:{src};branch=z9hG4bKn{self.cseq}x{src}"),
            ("From", self.sub.get("to") + ";tag=real"), ("To", self.sub.get("from")),
            ("Call-ID", self.sub.call_id), ("CSeq", f"{cseq or self.cseq} NOTIFY"),
            ("Contact", f"<sip:127.0.0.1:{self.port}>"), ("Event", "presence"),
            ("Subscription-State", state), ("Max-Forwards", "70"),
            ("Content-Type", "application/pidf+xml")], body).encode()

    def notify(self, state, note):
        self.transport.sendto(self.notify_bytes(state, note), self.addr)

    def datagram_received(self, data, addr):
        msg = parse_sip(data, addr)
        if not msg.is_request:
            self.responses.append(msg)
            return
        if msg.method != "SUBSCRIBE":
            return
        ok = SipMessage("SIP/2.0 200 OK", [
            ("Via", msg.get("via")), ("From", msg.get("from")), ("To", msg.get("to") + ";tag=real"),
            ("Call-ID", msg.call_id), ("CSeq", msg.get("cseq")),
            ("Contact", f"<sip:127.0.0.1:{self.port}>"), ("Expires", "120")])
        self.transport.sendto(ok.encode(), addr)
        if self.sub is None:
            self.sub, self.addr = msg, addr
            self.notify("active;expires=120", "real")


async def test_forged_in_dialog_notify_is_refused(env):
    """A NOTIFY from an address no peer trusts (127.0.0.2), carrying a live subscription's
    Call-ID and tags, used to get 200 and its document reached alice.  Now it is answered 403
    before Sofia-SIP sees it, and one from another peer's network 403 by the dialog: neither a
    forged document nor a forged end of the subscription changes anything, and the real
    notifier's next NOTIFY still arrives."""
    loop = asyncio.get_running_loop()
    transport, notifier = await loop.create_datagram_endpoint(
        lambda: Notifier(env.peer_sip_port), local_addr=("127.0.0.1", env.peer_sip_port))
    try:
        other = ('<peer name="othernet" domain="other.example"><route address="127.0.0.1" '
                 'port="9" transport="udp" options-interval="0s"/><trust address="127.0.0.3"/>'
                 '</peer>')
        xml = presence_gateway_xml(env).replace("</gateway>", other + "\n</gateway>")
        gw = await env.gateway(xml, log_level="info")
        alice = await env.client("alice")
        seen = []
        alice.add_event_handler("presence", lambda p: seen.append(p))
        alice.send_presence(pto=f"bob@{SIP_DOMAIN}", ptype="subscribe")
        await wait_for(lambda: any(p["status"] == "real" for p in seen), 10, "bob's real presence")
        for state, note in (("active;expires=120", "forged"),
                            ("terminated;reason=noresource", "forged end")):
            line = await loop.run_in_executor(
                None, udp_exchange_from, notifier.notify_bytes(state, note, src_port=0, cseq=50),
                env.gw_sip_port, "127.0.0.2")
            check(line == "SIP/2.0 403 Untrusted Source", f"forged NOTIFY ({state}): {line}")
        # from another peer's network: 403 before anything in it is acted on (the dialogs are
        # the gateway's own since issue 16; nua used to answer such a NOTIFY 200 itself)
        line = await loop.run_in_executor(
            None, udp_exchange_from, notifier.notify_bytes("active;expires=120", "forged other",
                                                           src_port=0),
            env.gw_sip_port, "127.0.0.3")
        check(line == "SIP/2.0 403 Not From This Dialog's Peer", f"the other peer's NOTIFY: {line}")
        await gw.wait_log(r"refused notify from 127\.0\.0\.3:\d+/udp inside a dialog with peer "
                          r"sipnet: not one of its networks: 403", timeout=2)
        notifier.notify("active;expires=120", "after")
        await wait_for(lambda: any(p["status"] == "after" for p in seen), 10,
                       "the real notifier's next NOTIFY")
        check(not any(p["status"] in ("forged", "forged end", "forged other") or p["type"] == "unavailable"
                      for p in seen), f"nothing forged reached alice: {[str(p) for p in seen]}")
        check(any(r.status == 200 for r in notifier.responses), "the real NOTIFYs get 200")
        await gw.wait_log(r"refused NOTIFY from 127\.0\.0\.2:\d+/udp \(From sip\.example\): "
                          r"403 Untrusted Source", timeout=2)
    finally:
        transport.close()


def udp_exchange_from(data, gw_port, source, timeout=3.0):
    """Sends data to the gateway from source (any port) and returns the final response's status
    line, or None."""
    return udp_exchange(data, gw_port, 0, timeout, source)


# ------------------------------------------------------------------ subscription floods

def subscribe_headers(ua, expires=600):
    return (f"Contact: <sip:127.0.0.1:{ua.port}>", "Event: presence",
            "Accept: application/pidf+xml", f"Expires: {expires}")


async def unsubscribe(ua, gw_port, ok):
    """Ends the dialog the 200 `ok` set up (SUBSCRIBE Expires: 0 inside it); the final response."""
    cid = ok.call_id
    to, frm = ok.get("to"), ok.get("from")
    ruri = to.split("<", 1)[1].split(">", 1)[0]
    head = [f"SUBSCRIBE {ruri} SIP/2.0",
            f"Via: SIP/2.0/UDP 127.0.0.1:{ua.port};branch=z9hG4bKu{cid[:12]}",
            f"From: {frm}", f"To: {to}", f"Call-ID: {cid}", "CSeq: 2 SUBSCRIBE", "Max-Forwards: 70",
            *subscribe_headers(ua, 0), "Content-Length: 0", "", ""]
    fut = asyncio.get_running_loop().create_future()
    ua.waiting[cid] = fut
    ua.transport.sendto("\r\n".join(head).encode(), ("127.0.0.1", gw_port))
    return await asyncio.wait_for(fut, 5)


async def test_sip_watcher_floods_are_bounded(env):
    """26 000 SUBSCRIBEs from a trusted peer used to be all accepted (450 MB, and thousands of
    pending requests in one user's roster).  Now one SIP watcher holds at most max-per-watcher
    dialogs, one XMPP user has at most max-pending-per-user requests waiting for an answer, and
    one peer at most max-per-peer dialogs: beyond, 503 with Retry-After.  A request whose dialog
    ends before the user answered is withdrawn (unsubscribe)."""
    xml = presence_gateway_xml(env, extra='max-per-watcher="4" max-pending-per-user="3" '
                                          'max-per-peer="8"')
    gw = await env.gateway(xml, log_level="info")
    alice = await watcher(env, "alice", auto_authorize=None)
    carol = await env.client("carol")
    ua = await SipUA().start()
    try:
        async def subscribe(user, sender, expires=600):
            return await ua.request(env.gw_sip_port, "", None, method="SUBSCRIBE",
                                    ruri=f"sip:{user}@{XMPP_DOMAIN}",
                                    sender=f"sip:{sender}@{SIP_DOMAIN}",
                                    headers=subscribe_headers(ua, expires))
        # one watcher, many users: 4 dialogs, the fifth is refused
        for i in range(4):
            r = await subscribe(f"nobody{i}", "flood")
            check(status_of(r) == 200, f"dialog {i} of the watcher: {r.start}")
        r = await subscribe("nobody9", "flood")
        check(status_of(r) == 503 and r.get("retry-after") == "60",
              f"the watcher's fifth dialog: {r.start} Retry-After {r.get('retry-after')}")
        # many watchers, one user: 3 requests reach alice, the fourth is refused
        for i in range(3):
            r = await subscribe("alice", f"w{i}")
            check(status_of(r) == 200, f"watcher w{i} of alice: {r.start}")
            if i == 0:
                w0 = r
        r = await subscribe("alice", "w3")
        check(status_of(r) == 503 and r.get("retry-after") == "600",
              f"a fourth pending request for alice: {r.start} {r.get('retry-after')}")
        await wait_for(lambda: len(pres(alice, "subscribe")) == 3, 5, "3 requests at alice")
        # the peer now holds 7 dialogs: one more, then the peer's limit
        r = await subscribe("carol", "x1")
        check(status_of(r) == 200, f"the peer's eighth dialog: {r.start}")
        r = await subscribe("carol", "x2")
        check(status_of(r) == 503 and "Peer" in r.start, f"the peer's ninth dialog: {r.start}")
        # the flood itself: 400 more, all refused, and the gateway holds nothing for them
        rss = gw_rss_mb(gw)
        refused = await asyncio.gather(*(subscribe(f"u{i}", f"f{i}") for i in range(400)))
        check(all(status_of(r) == 503 for r in refused),
              f"{sum(status_of(r) != 503 for r in refused)} of 400 not refused")
        check(gw_rss_mb(gw) < rss + 16, f"RSS {rss:.1f} -> {gw_rss_mb(gw):.1f} MB")
        # w0 gives up before alice answers: its request is withdrawn, and w3 may ask
        r = await unsubscribe(ua, env.gw_sip_port, w0)
        check(status_of(r) == 200, f"w0's un-SUBSCRIBE: {r.start}")
        # (Prosody shows the withdrawal to alice, ejabberd drops the pending request quietly)
        await gw.wait_log(rf"w0@{SIP_DOMAIN} gave up before alice@{XMPP_DOMAIN} answered: its "
                          r"request is withdrawn", timeout=5)
        r = await subscribe("alice", "w3")
        check(status_of(r) == 200, f"w3 asks alice once w0 left: {r.start}")
        check(3 <= gw.log_count(r"presence: .* refused: 503 Too Many") <= 40,
              "the refusals are logged, at a bounded rate")
        await both_ways_still_work(env, carol, "during the flood")
    finally:
        ua.close()


async def test_an_xmpp_user_cannot_make_the_gateway_subscribe_without_bound(env):
    """One XMPP user used to make the gateway open a SIP dialog for each of 1 383 contacts.  Now
    a user watches at most max-per-user SIP contacts: beyond, resource-constraint."""
    loop = asyncio.get_running_loop()
    transport, notifier = await loop.create_datagram_endpoint(
        lambda: Notifier(env.peer_sip_port), local_addr=("127.0.0.1", env.peer_sip_port))
    try:
        await env.gateway(presence_gateway_xml(env, extra='max-per-user="3"'), log_level="info")
        alice = await watcher(env, "alice")
        for i in range(4):
            alice.send_presence(pto=f"bob{i}@{SIP_DOMAIN}", ptype="subscribe")
        err = await expect_pres(alice, "error", f"bob3@{SIP_DOMAIN}")
        check(err["error"]["condition"] == "resource-constraint", str(err))
        check(not pres(alice, "error", f"bob0@{SIP_DOMAIN}") and
              not pres(alice, "error", f"bob2@{SIP_DOMAIN}"), "the first three are taken")
        # leaving one makes room for another
        alice.send_presence(pto=f"bob0@{SIP_DOMAIN}", ptype="unsubscribe")
        await asyncio.sleep(0.3)
        alice.send_presence(pto=f"bob5@{SIP_DOMAIN}", ptype="subscribe")
        await asyncio.sleep(1.0)
        check(not pres(alice, "error", f"bob5@{SIP_DOMAIN}"), "room again after an unsubscribe")
    finally:
        transport.close()


# ------------------------------------------------------------------ colliding addresses

COLLIDING = (
    "BOB",                          # capitals: the XMPP server folds them
    "Bob",
    "%EF%BD%82%EF%BD%8F%EF%BD%82",  # full-width bob: NFKC
    "bo%E2%80%8Bb",                 # a zero-width space: removed by nodeprep
    "%E2%84%AAim",                  # KELVIN SIGN + im: kim
)


async def test_user_parts_that_collapse_onto_another_user_are_refused(env):
    """sip:BOB@, a full-width bob and bo<U+200B>b all used to reach alice as bob@sip.example, and
    a Kelvin sign + im as kim: one SIP user could appear as another.  A user part the XMPP
    server would prepare into a different one is refused with 484, as sender or as recipient,
    for a MESSAGE, a SUBSCRIBE and an INVITE; the real bob still gets through."""
    gw = await env.gateway(presence_gateway_xml(env), log_level="info")
    alice = await env.client("alice")
    ua = await SipUA().start()
    try:
        for user in COLLIDING:
            for method, ctype, body, extra in (
                    ("MESSAGE", "text/plain", f"as {user}", ()),
                    ("SUBSCRIBE", None, "", subscribe_headers(ua)),
                    ("INVITE", None, "", (f"Contact: <sip:127.0.0.1:{ua.port}>",))):
                r = await ua.request(env.gw_sip_port, body, ctype, method=method,
                                     sender=f"sip:{user}@{SIP_DOMAIN}", headers=extra)
                check(status_of(r) == 484, f"{method} from sip:{user}@: {r.start}")
            r = await ua.request(env.gw_sip_port, "to a lookalike", "text/plain",
                                 ruri=f"sip:{user.replace('BOB', 'ALICE').replace('Bob', 'Alice')}"
                                      f"@{XMPP_DOMAIN}")
            check(status_of(r) == 484, f"MESSAGE to a lookalike of alice ({user}): {r.start}")
        r = await ua.request(env.gw_sip_port, "the real bob", "text/plain")
        check(status_of(r) == env.xmpp.accepted_status, f"the real bob: {r.start}")
        await alice.expect(lambda m: m["body"] == "the real bob", 5, "the real bob's message")
        await alice.expect_nothing(lambda m: m["body"].startswith("as "), 0.5)
        check(all(str(m["from"]).startswith(f"bob@{SIP_DOMAIN}") for m in alice.inbox) or
              not alice.inbox, "nothing else reached alice")
    finally:
        ua.close()
    check(gw.log_count(r"484 From User Part Not One-To-One") >= 1 or
          gw.log_count(r"Not One-To-One") >= 1, "the refusals are logged")


# ------------------------------------------------------------------ NOTIFY floods

async def test_a_flood_of_presence_changes_is_rate_limited_per_dialog(env):
    """Every presence change of an XMPP user used to be one NOTIFY to each SIP watcher (2 000
    changes, 2 000 NOTIFYs).  Now a watcher's dialog gets at most one NOTIFY per <presence
    notify-interval> (1 s by default, RFC 6665 4.2.2): the changes between are coalesced and
    the last state always arrives."""
    gw = await env.gateway(presence_gateway_xml(env), log_level="info")
    alice = await watcher(env, "alice", auto_authorize=True)
    carol = await env.client("carol")
    ua = await SipUA().start()
    try:
        r = await ua.request(env.gw_sip_port, "", None, method="SUBSCRIBE",
                             ruri=f"sip:alice@{XMPP_DOMAIN}", sender=f"sip:bob@{SIP_DOMAIN}",
                             headers=subscribe_headers(ua, 600))
        check(status_of(r) == 200, f"bob's SUBSCRIBE: {r.start}")

        def notifies():
            return [m for m in ua.requests if m.start.startswith("NOTIFY ")]

        alice.send_presence(pstatus="start")
        await wait_for(lambda: any(b"start" in m.body for m in notifies()), 10,
                       "the NOTIFY with alice's first status")
        await asyncio.sleep(1.2)
        before, t0 = len(notifies()), time.monotonic()
        for i in range(600):
            alice.send_presence(pstatus=f"s{i}")
            if i % 100 == 99:
                await asyncio.sleep(0.2)
        alice.send_presence(pstatus="final")
        await wait_for(lambda: any(b"final" in m.body for m in notifies()), 10,
                       "the NOTIFY with alice's last status")
        elapsed = time.monotonic() - t0
        sent = len(notifies()) - before
        print(f"    {sent} NOTIFYs for 601 changes in {elapsed:.1f} s")
        check(sent <= elapsed / 1.0 + 2, f"{sent} NOTIFYs for 601 changes in {elapsed:.1f} s")
        await asyncio.sleep(1.5)
        check(b"final" in notifies()[-1].body, "the last NOTIFY carries the last state")
        # the same presence again changes nothing the watcher sees: no NOTIFY at all
        n = len(notifies())
        for _ in range(20):
            alice.send_presence(pstatus="final")
        await asyncio.sleep(2.5)
        check(len(notifies()) == n, f"{len(notifies()) - n} NOTIFYs for unchanged presence")
        await both_ways_still_work(env, carol, "after the flood")
    finally:
        ua.close()


# ------------------------------------------------------------------ signals and files

async def test_sighup_reloads_and_keeps_running(env):
    """SIGHUP used to kill the gateway (exit 129, nothing drained).  It reloads the gateway file
    (test_reload.py), the TLS files and the audit log, says so, and goes on."""
    gw = await env.gateway(log_level="info")
    carol = await env.client("carol")
    gw.proc.send_signal(signal.SIGHUP)
    await gw.wait_log(r"received SIGHUP: reloading the gateway file and the TLS files, "
                      r"reopening the audit log", timeout=5)
    await gw.wait_log(r"reload applied: 1 peer\(s\), 0 added, 0 removed, 0 changed", timeout=5)
    check(gw.proc.returncode is None, "the gateway is still running")
    await both_ways_still_work(env, carol, "after SIGHUP")


async def test_the_state_database_is_private(env):
    """A state database left readable by others (it says who watches whom) is made 0600 at
    start, with its -wal and -shm; what the gateway creates is 0600."""
    db = os.path.join(env.workdir, "hup-state.db")
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(db + suffix):
            os.unlink(db + suffix)
    open(db, "w").close()
    os.chmod(db, 0o644)
    gw = await env.gateway(presence_gateway_xml(env, db=db), log_level="info")
    await gw.wait_log(r"hup-state\.db was mode 0644, readable or writable by others: now 0600",
                      timeout=5)
    alice = await watcher(env, "alice")
    alice.send_presence(pto=f"bob@{SIP_DOMAIN}", ptype="subscribe")
    await asyncio.sleep(1)
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(db + suffix):
            mode = os.stat(db + suffix).st_mode & 0o777
            check(mode == 0o600, f"{db}{suffix} is {mode:o}")
    await gw.stop()
    os.chmod(db, 0o640)
    gw = await env.gateway(presence_gateway_xml(env, db=db), log_level="info")
    await gw.wait_log(r"hup-state\.db was mode 0640", timeout=5)
    check(os.stat(db).st_mode & 0o777 == 0o600, "made private again")


async def test_a_tel_from_is_refused_with_a_readable_log(env):
    """A refusal for a request whose From is a tel: URI (no host) used to log `From (null)`."""
    gw = await env.gateway(log_level="info")
    loop = asyncio.get_running_loop()
    for source, cid in (("127.0.0.2", "tel-untrusted"), ("127.0.0.1", "tel-trusted")):
        data = sip_request("MESSAGE", 0, frm="tel:+15551234", body=b"hi", ctype="text/plain",
                           call_id=cid, branch=f"z9hG4bK{cid}")
        line = await loop.run_in_executor(None, udp_exchange_from, data, env.gw_sip_port, source)
        check(line is not None and line.split()[1][0] in "4", f"tel: From from {source}: {line}")
    await gw.wait_log(r"refused MESSAGE from 127\.0\.0\.2:\d+/udp \(From -\): 403", timeout=3)
    check("(null)" not in gw.log(), "no (null) in the log")
