"""msrp_relay.py - Kamailio's msrp module as an MSRP relay (RFC 4976) for the end-to-end tests,
running tests/e2e/kamailio-msrp-relay.cfg (see its header for what the relay does).

    relay = MsrpRelay(env)                      # plain MSRP on a free port of 127.0.0.1
    relay = MsrpRelay(env, tls=True, pki=p)     # msrps: p is certs.make()'s dict; the relay
                                                # presents p["relay"], asks for and checks the
                                                # other side's against p["ca"], both ways
    await relay.start()        # returns once it listens (raises TestFailure if it exits)
    relay.uri                  # "msrp://127.0.0.1:PORT;tcp" (msrps://... with tls): <sessions relay>
    relay.log_text(), relay.logpath, relay.port
    await relay.stop()         # SIGTERM to it and its children; returns once the port is free
    async with MsrpRelay(env) as relay: ...

It is not the harness's Kamailio (SIP proxy) class: another process, its own directory under
env.workdir, its own configuration file.  Stop it in a finally (env.cleanup does not know it).
"""

import asyncio
import os
import ssl
import tempfile
import time

from harness import (TestFailure, free_port, kamailio_tls_cfg, port_free, stop_process_group,
                     wait_for)

HERE = os.path.dirname(os.path.abspath(__file__))
RELAY_CFG = os.path.join(HERE, "kamailio-msrp-relay.cfg")


class MsrpRelay:
    def __init__(self, env, port=None, tls=False, pki=None, cert="relay", name="msrp-relay"):
        if tls and pki is None:
            raise ValueError("MsrpRelay(tls=True) needs pki (certs.make())")
        self.env = env
        self.port = port or free_port()
        self.tls = tls
        self.pki = pki
        self.cert = cert
        self.dir = tempfile.mkdtemp(prefix=f"{name}-", dir=env.workdir)
        self.logpath = os.path.join(self.dir, "kamailio.log")
        self.tls_cfg = os.path.join(self.dir, "tls.cfg")
        self.proc = None

    @property
    def uri(self):
        return f"{'msrps' if self.tls else 'msrp'}://127.0.0.1:{self.port};tcp"

    def args(self):
        a = ["kamailio", "-f", RELAY_CFG, "-DD", "-E", "-w", self.dir, "-Y", self.dir,
             "-m", "32", "-M", "8", "-A", f"MSRP_PORT={self.port}"]
        if self.tls:
            a += ["-A", "WITH_TLS", "-A", f'TLS_CFG="{self.tls_cfg}"']
        return a

    def alive(self):
        return self.proc is not None and self.proc.returncode is None

    def log_text(self):
        try:
            with open(self.logpath, errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    async def _probe(self):
        ctx = None
        if self.tls:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            ctx.load_cert_chain(*self.pki[self.cert])
        r, w = await asyncio.open_connection("127.0.0.1", self.port, ssl=ctx)
        w.close()

    async def start(self, timeout=10.0):
        if self.alive():
            return self
        await wait_for(lambda: port_free(self.port), timeout, f"127.0.0.1:{self.port} to be free")
        if self.tls:
            kamailio_tls_cfg(self.tls_cfg, self.pki, self.cert)
        with open(self.logpath, "a") as logf:
            logf.write(f"==== start: {' '.join(self.args())}\n")
            logf.flush()
            # its own process group, so stop() can wait for (and if need be end) every child
            self.proc = await asyncio.create_subprocess_exec(
                *self.args(), cwd=self.dir, stdin=asyncio.subprocess.DEVNULL, stdout=logf,
                stderr=logf, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.returncode is not None:
                raise TestFailure(f"the MSRP relay exited ({self.proc.returncode}) at start:\n"
                                  + self.log_text()[-3000:])
            try:
                await self._probe()
                return self
            except (OSError, ssl.SSLError):
                await asyncio.sleep(0.05)
        await self.stop()
        raise TestFailure(f"the MSRP relay did not listen on 127.0.0.1:{self.port} within "
                          f"{timeout}s:\n" + self.log_text()[-3000:])

    async def stop(self, timeout=10.0):
        if self.proc is None:
            return
        await stop_process_group(self.proc, timeout)
        await wait_for(lambda: port_free(self.port), timeout,
                       f"the MSRP relay to release 127.0.0.1:{self.port}")

    async def __aenter__(self):
        return await self.start()

    async def __aexit__(self, *exc):
        await self.stop()
