"""test_hardening.py - what a stranger on the network or one XMPP user can do to the gateway, as
attacks: each must leave the gateway serving everyone else, with a second, well-behaved user
whose messages are checked during and after the attack.  Against Prosody and ejabberd.
"""

import asyncio
import os
import shutil
import time

from harness import SIP_DOMAIN, XMPP_DOMAIN, check, error_condition, wait_for
from test_hostile import sip_request
from test_interop import SipUA, status_of

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
    before = gw_fds(gw)
    for port in (env.gw_sip_port, env.gw_msrp_port):
        conns = await open_conns(port, 250, source="127.0.0.2")
        closed = await asyncio.gather(*(closed_by_peer(r, 2.0) for r, _ in conns))
        check(all(closed), f"port {port}: {closed.count(False)} of 250 connections stayed open")
        close_all(conns)
    check(gw_fds(gw) <= before + 2, f"descriptors {before} -> {gw_fds(gw)}")
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
    # half a request, then nothing: Sofia answers 400 after tcp-idle, and closes
    r, w = await asyncio.open_connection("127.0.0.1", env.gw_sip_port)
    w.write(sip_request("OPTIONS", w.get_extra_info("sockname")[1], transport="TCP")[:120])
    data = await asyncio.wait_for(r.read(), 5.0)
    check(data.startswith(b"SIP/2.0 400"), f"an unfinished request is answered 400: {data[:80]!r}")
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
