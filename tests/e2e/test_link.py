"""test_link.py - the component link against a hostile or broken XMPP server (a raw socket here).

These check what Prosody never does: a server that refuses the handshake with a stream error
carrying an empty <text/>, or that sends garbage.  The gateway must log, back off and retry,
never crash.
"""

import asyncio

from harness import check, gateway_xml


class FakeServer:
    """Accepts component connections and answers each with the given bytes after the header."""

    def __init__(self, reply):
        self.reply = reply
        self.connections = 0
        self.server = None
        self.port = None

    async def _conn(self, reader, writer):
        self.connections += 1
        try:
            await asyncio.wait_for(reader.readuntil(b">"), 5)  # the stream header (after <?xml?> if any)
            writer.write(b"<?xml version='1.0'?><stream:stream xmlns='jabber:component:accept' "
                         b"xmlns:stream='http://etherx.jabber.org/streams' id='s1' from='sip.example'>")
            await asyncio.wait_for(reader.readuntil(b"</handshake>"), 5)
            writer.write(self.reply)
            await writer.drain()
            await asyncio.sleep(0.2)
        except (asyncio.TimeoutError, asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def start(self):
        self.server = await asyncio.start_server(self._conn, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]

    async def stop(self):
        self.server.close()
        await self.server.wait_closed()


async def run_against(env, reply, log_pattern):
    fake = FakeServer(reply)
    await fake.start()
    try:
        xml = gateway_xml(env).replace(f'port="{env.prosody.component_port}"', f'port="{fake.port}"')
        gw = await env.gateway(xml, wait_up=False)
        await gw.wait_log(log_pattern, timeout=10, count=2)
        check(fake.connections >= 2, "the gateway reconnects after the failure")
        check(gw.proc.returncode is None, "the gateway is still running")
    finally:
        await fake.stop()


async def test_stream_error_with_empty_text(env):
    await run_against(
        env, b"<stream:error><not-authorized xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>"
             b"<text xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error></stream:stream>",
        r"refused our secret \(not-authorized\)")


async def test_stream_error_without_condition(env):
    await run_against(env, b"<stream:error/></stream:stream>", r"stream error undefined-condition")


async def test_garbage_after_handshake(env):
    await run_against(env, b"<<<>>>\x00\xff not xml", r"stream error not-well-formed")
