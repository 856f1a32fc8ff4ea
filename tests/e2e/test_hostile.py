"""test_hostile.py - hostile input, end to end against the running gateway: each gets a clear error
or a clean disconnect, and the gateway keeps serving everyone else.

XML bombs and oversized stanzas arrive on the component stream itself (a raw server playing the
XMPP server, since Prosody would filter them first); header injection goes through real clients;
SIP abuse is sent on raw UDP and TCP sockets from the trusted peer address.
"""

import asyncio
import re
import socket

from harness import SIP_DOMAIN, XMPP_DOMAIN, check, free_port, gateway_xml, wait_for
from test_link import FakeServer


# ---------------------------------------------------------------- the component stream

class HostileServer(FakeServer):
    """Completes the handshake, then sends `reply` (bytes) once per connection."""


async def run_hostile_stream(env, payload, log_pattern):
    fake = HostileServer(b"<handshake/>" + payload)
    await fake.start()
    try:
        xml = gateway_xml(env, xmpp_attrs='max-stanza="4k"').replace(
            f'port="{env.prosody.component_port}"', f'port="{fake.port}"')
        gw = await env.gateway(xml, wait_up=False)
        await gw.wait_log(log_pattern, timeout=10, count=2)
        check(fake.connections >= 2, "the gateway drops the stream and reconnects")
        check(gw.proc.returncode is None, "the gateway is still running")
    finally:
        await fake.stop()


async def test_entity_expansion_bomb(env):
    bomb = (b"<!DOCTYPE lolz [<!ENTITY lol 'lol'><!ENTITY lol2 '&lol;&lol;&lol;&lol;&lol;'>]>"
            b"<message to='bob@sip.example' from='alice@xmpp.example'><body>&lol2;</body></message>")
    await run_hostile_stream(env, bomb, r"stream error (restricted-xml|not-well-formed|invalid-xml)")


class ListeningServer(FakeServer):
    """Completes the handshake, sends `reply`, then keeps the stream open and records what the
    gateway writes."""

    def __init__(self, reply):
        super().__init__(reply)
        self.received = b""

    async def _conn(self, reader, writer):
        self.connections += 1
        try:
            await asyncio.wait_for(reader.readuntil(b">"), 5)
            writer.write(b"<?xml version='1.0'?><stream:stream xmlns='jabber:component:accept' "
                         b"xmlns:stream='http://etherx.jabber.org/streams' id='s1' "
                         b"from='sip.example'>")
            await asyncio.wait_for(reader.readuntil(b"</handshake>"), 5)
            writer.write(b"<handshake/>")
            await asyncio.sleep(0.3)
            writer.write(self.reply)
            await writer.drain()
            while True:
                data = await asyncio.wait_for(reader.read(65536), 10)
                if not data:
                    break
                self.received += data
        except (asyncio.TimeoutError, asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


async def run_skipped_stanza(env, payload, condition):
    """A stanza over the bounds is skipped: its sender gets an error, the stream stays up."""
    fake = ListeningServer(payload + b"<message to='bob@sip.example' from='alice@xmpp.example/r' "
                                      b"id='after'><body>still here</body></message>")
    await fake.start()
    uas = await env.uas(timeout=10).start()
    try:
        xml = gateway_xml(env, xmpp_attrs='max-stanza="4k"').replace(
            f'port="{env.prosody.component_port}"', f'port="{fake.port}"')
        gw = await env.gateway(xml, wait_up=False)
        error = re.compile(rb"<message [^>]*id='big'[^>]*>.*?</message>", re.S)
        await wait_for(lambda: error.search(fake.received), 10, "the error for the big stanza")
        err = error.search(fake.received).group(0)
        check(b"type='error'" in err and condition.encode() in err and
              b"to='alice@xmpp.example/r'" in err, f"the error to its sender: {err!r}")
        check(await uas.wait(10) == 0, f"the stanza after it still crossed: {uas.error_text()}")
        check(uas.received()[0][2] == b"still here", repr(uas.received()))
        check(fake.connections == 1, "the stream was never dropped")
        check(gw.log_count(r"stream error") == 0, "no stream error")
    finally:
        await fake.stop()


async def test_deep_nesting(env):
    deep = (b"<message to='bob@sip.example' from='alice@xmpp.example/r' id='big'>" +
            b"<a>" * 5000 + b"</a>" * 5000 + b"</message>")
    await run_skipped_stanza(env, deep, "not-acceptable")


async def test_oversized_stanza(env):
    big = (b"<message to='bob@sip.example' from='alice@xmpp.example/r' id='big'><body>" +
           b"x" * 20000 + b"</body></message>")
    await run_skipped_stanza(env, big, "policy-violation")


async def test_endless_nesting_ends_the_stream(env):
    """What cannot be skipped within 16 times <xmpp max-stanza> (an element that never ends,
    nested for ever) ends the stream, and the gateway reconnects."""
    deep = b"<message to='bob@sip.example' from='alice@xmpp.example'>" + b"<a>" * 40000
    await run_hostile_stream(env, deep, r"stream error policy-violation")


# ---------------------------------------------------------------- XMPP fields into SIP headers

async def test_crlf_injection_from_xmpp_fields(env):
    await env.gateway()
    uas = await env.uas().start()
    alice = await env.client("alice")
    msg = alice.make_message(mto=f"bob@{SIP_DOMAIN}", mbody="body", mtype="chat",
                             msubject="hi\r\nX-Injected: yes\r\n\r\nsmuggled")
    msg["lang"] = "en"
    msg["thread"] = "t1\r\nX-Thread-Injected: 1"
    msg.send()
    rc = await uas.wait()
    check(rc == 0, uas.error_text())
    start, hdrs, body = uas.received()[0]
    check("x-injected" not in hdrs and "x-thread-injected" not in hdrs,
          f"no header smuggled in: {sorted(hdrs)}")
    check(body == b"body", f"the body is untouched: {body!r}")
    check("\r" not in hdrs.get("subject", [""])[0] and "\n" not in hdrs.get("subject", [""])[0],
          hdrs.get("subject"))


async def test_stanza_claiming_another_domain(env):
    """A stanza from the XMPP server whose from is not in the served XMPP domain is refused:
    the gateway asserts identities only in the domain it serves.  (Prosody stamps the real
    sender on client stanzas, so the forged sender arrives on the raw stream here.)"""
    uas = env.uas(timeout=3)
    await uas.start()
    fake = HostileServer(b"<handshake/><message to='bob@sip.example' from='mallory@sip.example'"
                         b" id='f1'><body>spoofed</body></message>")
    await fake.start()
    try:
        xml = gateway_xml(env).replace(f'port="{env.prosody.component_port}"', f'port="{fake.port}"')
        gw = await env.gateway(xml, wait_up=False)
        await gw.wait_log(r"sent <message[^>]*type=.error", timeout=10)
        check("forbidden" in gw.log(), "refused as forbidden")
        await asyncio.sleep(0.5)
        check(not uas.received(), f"nothing reached the SIP side: {uas.received()}")
    finally:
        await fake.stop()


# ---------------------------------------------------------------- SIP abuse

def sip_request(method, port, ruri=f"sip:alice@{XMPP_DOMAIN}", frm=f"sip:bob@{SIP_DOMAIN}",
                extra="", body=b"", ctype=None, branch="z9hG4bKhostile1", call_id="hostile-1",
                transport="UDP"):
    head = (f"{method} {ruri} SIP/2.0\r\n"
            f"Via: SIP/2.0/{transport} 127.0.0.1:{port};branch={branch}\r\n"
            f"From: <{frm}>;tag=h1\r\nTo: <{ruri}>\r\nCall-ID: {call_id}\r\n"
            f"CSeq: 1 {method}\r\nMax-Forwards: 70\r\n{extra}")
    if ctype:
        head += f"Content-Type: {ctype}\r\n"
    head += f"Content-Length: {len(body)}\r\n\r\n"
    return head.encode() + body


def udp_exchange(data, gw_port, port, timeout=3.0, source="127.0.0.1"):
    """Sends data to the gateway from source:port (port 0: any, and a Via of 127.0.0.1:0 is made
    the bound address) and returns the final response's status line, or None."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((source, port))
    s.settimeout(timeout)
    try:
        if port == 0:
            data = data.replace(b"127.0.0.1:0;", f"{source}:{s.getsockname()[1]};".encode(), 1)
        s.sendto(data, ("127.0.0.1", gw_port))
        while True:
            resp, _ = s.recvfrom(65536)
            line = resp.split(b"\r\n", 1)[0].decode()
            if not line.startswith("SIP/2.0 1"):
                return line
    except socket.timeout:
        return None
    finally:
        s.close()


async def test_unknown_method_and_event(env):
    await env.gateway()
    port = free_port()
    line = await asyncio.to_thread(udp_exchange, sip_request("FROBNICATE", port), env.gw_sip_port, port)
    check(line and line.split()[1] in ("405", "501"), f"unknown method: {line}")
    sub = sip_request("SUBSCRIBE", port, extra="Event: dialog\r\nExpires: 60\r\n",
                      branch="z9hG4bKhostile2", call_id="hostile-2")
    line = await asyncio.to_thread(udp_exchange, sub, env.gw_sip_port, port)
    check(line and line.split()[1] == "489", f"unknown event package: {line}")


async def test_oversized_sip_message(env):
    await env.gateway(sip_attrs='max-message="4k"')
    port = free_port()
    big = sip_request("MESSAGE", port, body=b"x" * 6000, ctype="text/plain")
    line = await asyncio.to_thread(udp_exchange, big, env.gw_sip_port, port, 2.0)
    check(line is None or line.split()[1] in ("413", "400", "513"), f"oversized: {line}")
    alice = await env.client("alice")
    ok = sip_request("MESSAGE", port, body=b"still fine", ctype="text/plain",
                     branch="z9hG4bKhostile3", call_id="hostile-3")
    line = await asyncio.to_thread(udp_exchange, ok, env.gw_sip_port, port)
    check(line and line.split()[1] in ("200", "202"), f"the next message is served: {line}")
    await alice.expect(lambda m: m["body"] == "still fine", 5)


async def test_pipelined_and_truncated_tcp(env):
    await env.gateway()
    alice = await env.client("alice")
    reader, writer = await asyncio.open_connection("127.0.0.1", env.gw_sip_port)
    port = writer.get_extra_info("sockname")[1]

    def tcp_req(n):
        return sip_request("MESSAGE", port, body=f"pipelined {n}".encode(), ctype="text/plain",
                           branch=f"z9hG4bKpipe{n}", call_id=f"pipe-{n}").replace(
            b"SIP/2.0/UDP", b"SIP/2.0/TCP")
    # two requests in one write, then half of a third, then the connection goes
    writer.write(tcp_req(1) + tcp_req(2) + tcp_req(3)[:60])
    await writer.drain()
    await alice.expect(lambda m: m["body"] == "pipelined 1", 5)
    await alice.expect(lambda m: m["body"] == "pipelined 2", 5)
    writer.close()
    await asyncio.sleep(0.5)
    # the gateway is fine: a fresh connection works
    reader, writer = await asyncio.open_connection("127.0.0.1", env.gw_sip_port)
    port = writer.get_extra_info("sockname")[1]
    writer.write(tcp_req(4))
    await writer.drain()
    await alice.expect(lambda m: m["body"] == "pipelined 4", 5)
    writer.close()


async def test_garbage_datagrams(env):
    gw = await env.gateway()
    port = free_port()
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", port))
    for junk in (b"\x00" * 100, b"\xff\xfe garbage \r\n\r\n", b"SIP/2.0 200 OK\r\n\r\n",
                 b"MESSAGE sip:a@b SIP/2.0\r\nContent-Length: 99999\r\n\r\nshort"):
        s.sendto(junk, ("127.0.0.1", env.gw_sip_port))
    s.close()
    await asyncio.sleep(0.5)
    alice = await env.client("alice")
    port = free_port()
    ok = sip_request("MESSAGE", port, body=b"after the garbage", ctype="text/plain",
                     branch="z9hG4bKhostile9", call_id="hostile-9")
    line = await asyncio.to_thread(udp_exchange, ok, env.gw_sip_port, port)
    check(line and line.split()[1] in ("200", "202"), f"still serving: {line}")
    await alice.expect(lambda m: m["body"] == "after the garbage", 5)


async def test_a_required_extension_we_lack_gets_420(env):
    """RFC 3261 8.2.2.3: a request whose Require names an extension the gateway does not support
    is answered 420 with those option tags in Unsupported, and nothing is relayed; a SUBSCRIBE may
    require eventlist (RFC 4662), which the gateway supports."""
    await env.gateway()
    alice = await env.client("alice")
    port = free_port()
    req = sip_request("MESSAGE", port, body=b"needs 100rel", ctype="text/plain",
                      extra="Require: 100rel, foo\r\n", branch="z9hG4bKhostile420", call_id="hostile-420")
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", port))
    s.settimeout(3)
    try:
        s.sendto(req, ("127.0.0.1", env.gw_sip_port))
        resp = (await asyncio.to_thread(s.recvfrom, 65536))[0].decode(errors="replace")
    finally:
        s.close()
    check(resp.startswith("SIP/2.0 420 "), f"420 Bad Extension: {resp.splitlines()[0]}")
    unsupported = [l.split(":", 1)[1].strip() for l in resp.split("\r\n") if l.lower().startswith("unsupported:")]
    check(unsupported and unsupported[0] == "100rel, foo", f"Unsupported: {unsupported}")
    await alice.expect_nothing(lambda m: m["body"] == "needs 100rel", 1)
