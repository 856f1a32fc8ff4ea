"""test_federation.py - the demo federation of tools/federation.py (Prosody, simplegw, Kamailio) carries a message each way,
presence, and a message each way in its chat room (Prosody's MUC; the SIP user via Kamailio and the gateway's focus)."""

import asyncio
import os
import sys

from harness import SANITIZER_MARKERS, check, free_port

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


async def test_demo_federation_through_kamailio(env):
    rundir = os.path.join(env.workdir, "federation")
    # C2S, COMPONENT, KAMAILIO, GATEWAY and MSRP: nothing on the demo's fixed ports
    ports = ",".join(str(free_port()) for _ in range(5))
    proc = await asyncio.create_subprocess_exec(
        sys.executable, os.path.join(ROOT, "tools/federation.py"), "--check",
        "--gateway", env.gateway_binary, "--rundir", rundir, "--ports", ports,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    out, _ = await asyncio.wait_for(proc.communicate(), 120)
    text = out.decode(errors="replace")
    with open(os.path.join(rundir, "simplegw.log"), errors="replace") as f:
        log = f.read()
    for marker in SANITIZER_MARKERS:
        check(marker not in log, f"sanitizer report in the gateway log:\n{log[log.find(marker) - 200:][:3000]}")
    check(proc.returncode == 0, f"federation check failed:\n{text}")
    check("XMPP -> SIP: alice@xmpp.example -> sip:bob@sip.example delivered" in text, text)
    check("SIP -> XMPP: sip:bob@sip.example -> alice@xmpp.example delivered" in text, text)
    check("presence SIP -> XMPP: alice@xmpp.example sees sip:bob@sip.example" in text, text)
    check("groupchat XMPP -> SIP: alice in lobby@conference.xmpp.example -> sip:bob@sip.example delivered" in text,
          text)
    check("groupchat SIP -> XMPP: sip:bob@sip.example in sip:lobby@conference.xmpp.example -> alice delivered" in text,
          text)
    check("groupchat: bob left the room (BYE)" in text, text)
    check("shutdown complete" in log, "the gateway shut down cleanly")
