"""test_presence_faults.py - presence interworking over time and through faults: subscription
refresh both ways, expiry, and restarts of Kamailio, Prosody and the gateway (the presence issue's
"refresh, expiry, Kamailio restart, Prosody restart, gateway restart" list).

The SIP watchers here are sipp scenarios whose steps are written out (see watch_steps()): each
NOTIFY is one <recv> + 200, with a timeout where the number that comes is not fixed, and the test
judges what arrived from the sipp trace.  The gateway's own SIP traffic is read from its log: the
tests that need it start the gateway with TPORT_LOG=1 (Sofia-SIP then logs every message it sends
and receives on stderr, which is the gateway's log).  Each test runs against Prosody and against
ejabberd (env.xmpp; the "prosody" in a test's name is the XMPP server).
"""

import asyncio
import os
import re
import socket
import time

from harness import (SIP_DOMAIN, XMPP_DOMAIN, Client, Kamailio, TestFailure, check, default_peer,
                     gateway_xml,
                     notifies_of, pidf, presence_publisher, presence_server, responses_of, wait_for)
from test_presence import expect_pres, pres, subscribes_of, watcher

XMPP_SERVERS = ("prosody", "ejabberd")
# one user per test and role, so that the rosters of the shared Prosody do not mix tests
USERS = ("alice", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan")
BOB = f"bob@{SIP_DOMAIN}"
BOB_URI = f"sip:bob@{SIP_DOMAIN}"


def xuri(user):
    return f"sip:{user}@{XMPP_DOMAIN}"


# ---------------------------------------------------------------- helpers

def faults_gateway_xml(env, expires="120s", min_expires="10s", max_expires="600s", db=None,
                       options_interval="0s"):
    attrs = f'expires="{expires}" min-expires="{min_expires}" max-expires="{max_expires}"'
    if db:
        attrs += f' database="{db}"'
    xml = gateway_xml(env, peers=[default_peer(env, options_interval=options_interval)])
    return xml.replace("<im ", f"<presence {attrs}/>\n  <im ", 1)


async def traced_gateway(env, xml):
    """A gateway whose log holds every SIP message it sends and receives (Sofia-SIP TPORT_LOG)."""
    old = os.environ.get("TPORT_LOG")
    os.environ["TPORT_LOG"] = "1"
    try:
        return await env.gateway(xml)
    finally:
        if old is None:
            del os.environ["TPORT_LOG"]
        else:
            os.environ["TPORT_LOG"] = old


_TPORT_MSG = re.compile(r"^(send|recv) \d+ bytes (?:to|from) \S+ at [0-9:.]+:\n((?:   .*\n?)*)",
                        re.M)


def sip_log(gw, direction=None, since=None):
    """The SIP messages in a TPORT_LOG gateway's log, [(direction, start line, {header: value},
    body)], from the first line matching the regexp `since` on when given."""
    log = gw.log()
    if since:
        m = re.search(since, log)
        log = log[m.start():] if m else ""
    # the gateway logs Sofia-SIP's lines as "<time> debug sofia: <line>"
    text = "\n".join(m.group(1) for m in re.finditer(r"^\S+ debug sofia: (.*)$", log, re.M))
    out = []
    for m in _TPORT_MSG.finditer(text):
        lines = [ln[3:].rstrip("\r") for ln in m.group(2).split("\n")]
        rules = [ln for ln in lines if re.fullmatch(r"-{20,}", ln.strip())]
        if len(rules) < 2:
            continue    # its closing rule is not out yet: the gateway is still writing it
        lines = [ln for ln in lines if not re.fullmatch(r"-{20,}", ln.strip())]
        while lines and not lines[-1].strip():
            lines.pop()
        if not lines:
            continue
        headers, body = {}, ""
        for i, ln in enumerate(lines[1:], 1):
            if not ln.strip():
                body = "\n".join(lines[i + 1:])
                break
            name, _, value = ln.partition(":")
            headers.setdefault(name.strip().lower(), value.strip())
        if direction is None or m.group(1) == direction:
            out.append((m.group(1), lines[0], headers, body))
    return out


def gw_subscribes(gw):
    """The SUBSCRIBE requests the gateway sent (each retransmission once)."""
    seen, out = set(), []
    for d, start, h, body in sip_log(gw, "send"):
        if start.startswith("SUBSCRIBE "):
            key = (h.get("call-id"), h.get("cseq"))
            if key not in seen:
                seen.add(key)
                out.append(h)
    return out


def tag_of(value):
    m = re.search(r";\s*tag=([^;>\s]+)", value or "")
    return m.group(1) if m else None


NOTIFY_OK = """SIP/2.0 200 OK
[last_Via:]
[last_From:]
[last_To:]
[last_Call-ID:]
[last_CSeq:]
Content-Length: 0
"""


def notify(timeout_ms=None, ontimeout="end"):
    """One step: a NOTIFY (waited for at most timeout_ms, then on to `ontimeout`), answered 200."""
    wait = f' timeout="{timeout_ms}" ontimeout="{ontimeout}"' if timeout_ms else ""
    return f'  <recv request="NOTIFY"{wait}/>\n  <send>\n    <![CDATA[\n{NOTIFY_OK}\n]]>\n  </send>\n'


def drain(n, quiet_ms, then):
    """Up to n NOTIFYs, until none came for quiet_ms; then on to label `then`."""
    return "".join(notify(quiet_ms, then) for _ in range(n))


def refresh(presentity, watcher_uri, expires, cseq):
    """One step: an in-dialog re-SUBSCRIBE (through the route set) answered 200 or 202."""
    return f"""  <send retrans="500">
    <![CDATA[
SUBSCRIBE [next_url] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
[routes]
From: <{watcher_uri}>;tag=[pid]SIPpTag00[call_number]
To: <{presentity}>[peer_tag_param]
Call-ID: [call_id]
CSeq: {cseq} SUBSCRIBE
Contact: <sip:watcher@[local_ip]:[local_port];transport=[transport]>
Max-Forwards: 70
Event: presence
Accept: application/pidf+xml
Expires: {expires}
Content-Length: 0

]]>
  </send>
  <recv response="100" optional="true"/>
  <recv response="202" optional="true" next="refreshed{cseq}"/>
  <recv response="200"/>
  <label id="refreshed{cseq}"/>
"""


def label(name):
    return f'  <label id="{name}"/>\n'


def watch_steps(env, presentity, steps, watcher_uri=BOB_URI, expires=60, timeout=60, name="watcher",
                port=None):
    """A sipp SIP watcher (sipp/presence_watch_steps.xml) that SUBSCRIBEs to presentity straight
    at the gateway and then runs `steps` (XML built from notify(), drain(), refresh(), label());
    a label "end" is added at the end.  Its exit status counts the waits that timed out as
    failures: judge what it received instead."""
    values = dict(ruri=presentity, presentity=presentity, watcher=watcher_uri,
                  expires=str(expires), steps=steps + label("end"))
    s = env.sipp(name, "presence_watch_steps.xml", values, remote=f"127.0.0.1:{env.gw_sip_port}",
                 timeout=timeout, port=port)
    s.args.insert(1, "-nd")  # no BYE when a timeout ends the scenario (sipp counts it a failure)
    return s


def substate(h):
    return h.get("subscription-state", [""])[0]


def after_refresh(sipp, cseq):
    """The NOTIFYs a sipp watcher received after the 200 to its SUBSCRIBE with CSeq `cseq`."""
    out, seen = [], False
    for start, h, b in sipp.received():
        if start.startswith("SIP/2.0 2") and h.get("cseq", [""])[0].startswith(f"{cseq} "):
            seen = True
        elif seen and start.startswith("NOTIFY "):
            out.append((h, b))
    return out


async def forget_clients(env, *clients):
    """Clients whose server went away: dropped without waiting for a clean logout."""
    for c in clients:
        if c in env.clients:
            env.clients.remove(c)
        try:
            c.abort()
        except Exception:  # noqa: BLE001 - already gone
            pass


# ---------------------------------------------------------------- 2. refresh, SIP -> XMPP

async def test_sip_watcher_refresh_in_dialog(env):
    """A SIP watcher re-SUBSCRIBEs in its dialog: 200 and a repeat of the last NOTIFY (the stack's
    work), and presence changes after the refresh still reach it in that dialog."""
    await env.gateway(faults_gateway_xml(env))
    alice = await watcher(env, "alice", auto_authorize=True)
    alice.send_presence(pstatus="before the refresh")
    steps = (drain(8, 2500, "refresh") + label("refresh") +
             refresh(xuri("alice"), BOB_URI, 60, 2) +
             notify() +                       # the repeat of the last NOTIFY
             drain(6, 4000, "end"))           # what follows (alice's change)
    w = watch_steps(env, xuri("alice"), steps, timeout=40)
    await w.start()
    await wait_for(lambda: after_refresh(w, 2), 15, "the refresh answered and a NOTIFY after it")
    alice.send_presence(pstatus="after the refresh")
    await w.wait(30)
    after = after_refresh(w, 2)
    before = notifies_of(w)[:len(notifies_of(w)) - len(after)]
    ok = [h for c, h, b in responses_of(w) if h["cseq"][0] == "2 SUBSCRIBE"]
    check(ok and ok[0]["expires"][0] == "60", f"the refresh granted 60 s: {ok}")
    check(before and b"before the refresh" in before[-1][1],
          f"alice's status before the refresh: {[b for h, b in before]}")
    check(substate(after[0][0]).startswith("active"), f"the repeat is active: {after[0][0]}")
    check(after[0][1] == before[-1][1], f"the refresh repeats the last document: {after[0][1]!r} "
          f"vs {before[-1][1]!r}")
    check(any(b"after the refresh" in b and substate(h).startswith("active") for h, b in after[1:]),
          f"the change after the refresh reached the watcher: {[b for h, b in after]}")
    # one dialog throughout: one Call-ID, the gateway's tag unchanged, CSeq increasing
    notes = notifies_of(w)
    check(len({h["call-id"][0] for h, b in notes}) == 1, "one Call-ID")
    check(len({tag_of(h["from"][0]) for h, b in notes}) == 1, "one dialog (the notifier's tag)")
    cseqs = [int(h["cseq"][0].split()[0]) for h, b in notes]
    check(cseqs == sorted(cseqs) and len(set(cseqs)) == len(cseqs), f"NOTIFY CSeqs: {cseqs}")


# ---------------------------------------------------------------- 3. expiry

async def test_sip_watcher_expiry(env):
    """A SIP watcher that does not refresh: the gateway ends the dialog with NOTIFY
    terminated;reason=timeout when it expires and forgets it (later changes send nothing)."""
    gw = await env.gateway(faults_gateway_xml(env, min_expires="2s", max_expires="5s"))
    carol = await watcher(env, "carol", auto_authorize=True)
    carol.send_presence(pstatus="here for now")
    t0 = time.monotonic()
    w = watch_steps(env, xuri("carol"), drain(12, 9000, "end"), expires=4, timeout=40)
    await w.start()
    await wait_for(lambda: any(substate(h).startswith("terminated") for h, b in notifies_of(w)),
                   15, "the NOTIFY that ends the dialog")
    took = time.monotonic() - t0
    await gw.wait_log(r"presence: a dialog of bob@sip\.example watching carol@xmpp\.example ended",
                      timeout=5)
    # the 200 granted what was asked (within 2..5 s). Sofia counts the time left in whole
    # seconds of its clock from the SUBSCRIBE's arrival, so a 200 sent just after that clock
    # ticks says 3: still the 4 s asked, less the time already gone.
    ok = [h for c, h, b in responses_of(w) if c == 200 and "SUBSCRIBE" in h["cseq"][0]]
    check(ok and ok[0]["expires"][0] in ("3", "4"), f"Expires granted: {ok[:1]}")
    carol.send_presence(pstatus="changed after the expiry")
    await w.wait(30)
    notes = notifies_of(w)
    states = [substate(h) for h, b in notes]
    ends = [i for i, s in enumerate(states) if s.startswith("terminated")]
    check(len(ends) == 1, f"one terminating NOTIFY: {states}")
    check(re.search(r"reason=timeout", states[ends[0]]), f"reason=timeout: {states[ends[0]]}")
    check(ends[0] == len(notes) - 1, f"nothing after the end: {states}")
    check(not any(b"changed after the expiry" in b for h, b in notes), "no NOTIFY of the change")
    check(3.0 <= took <= 10.0, f"ended when it expired (4 s): after {took:.1f}s")
    check(any(b"here for now" in b for h, b in notes), "carol's presence while it lasted")


# ---------------------------------------------------------------- 1. refresh, XMPP -> SIP

def dialog_of(h):
    return (h.get("call-id"), tag_of(h.get("from")))


def tuple_doc(note, tuple_id):
    """bob's PIDF with one tuple whose note is its own (Kamailio merges the tuples of several
    publications into one document, but a presence-level note would lose its tuple)."""
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n'
            f'<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="{BOB_URI}">\n'
            f'  <tuple id="{tuple_id}"><status><basic>open</basic></status>'
            f'<note>{note}</note></tuple>\n</presence>\n')


async def publish(env, kam, note, tuple_id="t1"):
    pub = presence_publisher(env, kam, tuple_doc(note, tuple_id), expires=600,
                             name=f"publisher-{tuple_id}")
    rc = await pub.run(15)
    check(rc == 0, f"PUBLISH {note!r} failed ({rc}): {pub.error_text()}")


async def test_gateway_refreshes_its_subscription(env):
    """<presence expires="60s">: Sofia-SIP re-SUBSCRIBEs in the same dialog before it expires
    (15..46 s after), Kamailio keeps it, and bob's changes after the refresh reach the watcher."""
    async with Kamailio(env, port=env.peer_sip_port) as kam:
        await publish(env, kam, "before the refresh")
        gw = await traced_gateway(env, faults_gateway_xml(env, expires="60s"))
        frank = await watcher(env, "frank")
        frank.send_presence(pto=BOB, ptype="subscribe")
        await expect_pres(frank, "available", BOB, lambda p: p["status"] == "before the refresh",
                          timeout=10)
        subs = gw_subscribes(gw)
        check(len(subs) == 1 and subs[0].get("expires") == "60", f"one SUBSCRIBE for 60 s: {subs}")
        t0 = time.monotonic()
        await wait_for(lambda: len(gw_subscribes(gw)) >= 2, 58, "the gateway's refresh")
        took = time.monotonic() - t0
        first, again = gw_subscribes(gw)[:2]
        check(dialog_of(again) == dialog_of(first) and tag_of(again.get("to")),
              f"the refresh is in the dialog (Call-ID, tags): {first} / {again}")
        check(int(again["cseq"].split()[0]) > int(first["cseq"].split()[0]), "CSeq increased")
        check(again.get("expires") == "60", f"refreshed for 60 s: {again}")
        check(took < 50, f"refreshed before the expiry: {took:.1f}s after the first")
        await wait_for(lambda: any(start.startswith("SIP/2.0 200") and h.get("cseq") == again["cseq"]
                                   for d, start, h, b in sip_log(gw, "recv")),
                       10, "Kamailio's 200 to the refresh")
        # bob changes after the refresh: a second tuple (a second publication of his)
        await publish(env, kam, "after the refresh", tuple_id="t2")
        await expect_pres(frank, "available", BOB, lambda p: p["status"] == "after the refresh",
                          timeout=10, what="bob's change after the refresh")
        check(not gw.log_count(r"presence sip:bob@sip\.example: dialog ended"),
              "the dialog never ended")
        check(not pres(frank, "unsubscribed"), "frank was never unsubscribed")
        check(len({dialog_of(h) for h in gw_subscribes(gw)}) == 1, "one dialog throughout")


# ---------------------------------------------------------------- 4. Kamailio restart

async def test_kamailio_restart(env):
    """Kamailio (memory only) restarts: the gateway's next refresh gets 481, it subscribes again
    at once (END_RESUBSCRIBE), the XMPP watcher is not told, and bob's next PUBLISH reaches it."""
    async with Kamailio(env, port=env.peer_sip_port) as kam:
        await publish(env, kam, "before the restart")
        gw = await traced_gateway(env, faults_gateway_xml(env, expires="60s"))
        grace = await watcher(env, "grace")
        grace.send_presence(pto=BOB, ptype="subscribe")
        await expect_pres(grace, "available", BOB, lambda p: p["status"] == "before the restart",
                          timeout=10)
        subscribed = len(pres(grace, "subscribed", BOB))
        await kam.restart()
        t0 = time.monotonic()
        await gw.wait_log(r"SUBSCRIBE failed: 481", timeout=58)
        took = time.monotonic() - t0
        await gw.wait_log(r"presence sip:bob@sip\.example: dialog ended \(481\)", timeout=2)
        # a new dialog at once (END_RESUBSCRIBE: no back-off)
        await gw.wait_log(r"presence sip:bob@sip\.example: waiting -> subscribing", timeout=3)
        await gw.wait_log(r"presence sip:bob@sip\.example: subscribing -> active", count=2,
                          timeout=5)
        t1 = time.monotonic()
        dialogs = []
        for h in gw_subscribes(gw):
            if dialog_of(h) not in dialogs:
                dialogs.append(dialog_of(h))
        check(len(dialogs) == 2, f"the old dialog, then one new one: {dialogs}")
        await publish(env, kam, "after the restart", tuple_id="t2")
        await expect_pres(grace, "available", BOB, lambda p: p["status"] == "after the restart",
                          timeout=10, what="bob's PUBLISH after the restart")
        check(not pres(grace, "unsubscribed"), "grace was never unsubscribed")
        check(len(pres(grace, "subscribed", BOB)) == subscribed, "nor asked to subscribe again")
        print(f"    (Kamailio restart: 481 after {took:.1f}s, new dialog active "
              f"{t1 - t0 - took:.2f}s later)")


async def test_kamailio_restart_found_by_health_check(env):
    """The same restart with OPTIONS health checks every 500 ms and an hour-long subscription:
    the gateway sees Kamailio stop answering, and when it answers again refreshes the dialog at
    once (481 -> a new dialog) instead of at the refresh 45 minutes later; the watcher sees bob's
    next PUBLISH within seconds and is never asked anything."""
    async with Kamailio(env, port=env.peer_sip_port) as kam:
        await publish(env, kam, "before the restart")
        gw = await traced_gateway(env, faults_gateway_xml(env, expires="3600s", max_expires="3600s",
                                                          options_interval="500ms"))
        ivan = await watcher(env, "ivan")
        ivan.send_presence(pto=BOB, ptype="subscribe")
        await expect_pres(ivan, "available", BOB, lambda p: p["status"] == "before the restart",
                          timeout=10)
        await gw.wait_log(r"presence sip:bob@sip\.example: subscribing -> active", timeout=5)
        check(not gw.log_count(r"no answer to OPTIONS"), "Kamailio answered OPTIONS while up")
        subscribed = len(pres(ivan, "subscribed", BOB))
        await kam.stop()
        await gw.wait_log(r"peer sipnet: no answer to OPTIONS \((408|503)", timeout=40)
        t0 = time.monotonic()
        await kam.start()
        await gw.wait_log(r"peer sipnet: answers OPTIONS again", timeout=5)
        await gw.wait_log(r"presence: peer sipnet is back: 1 dialogs refreshed", timeout=2)
        await gw.wait_log(r"presence sip:bob@sip\.example: dialog ended \(481\)", timeout=5)
        await gw.wait_log(r"presence sip:bob@sip\.example: subscribing -> active", count=2,
                          timeout=5)
        took = time.monotonic() - t0
        await publish(env, kam, "after the restart", tuple_id="t2")
        await expect_pres(ivan, "available", BOB, lambda p: p["status"] == "after the restart",
                          timeout=10, what="bob's PUBLISH after the restart")
        check(not pres(ivan, "unsubscribed"), "ivan was never unsubscribed")
        check(len(pres(ivan, "subscribed", BOB)) == subscribed, "nor asked to subscribe again")
        print(f"    (Kamailio back: new dialog active {took:.2f}s after it started)")


# ---------------------------------------------------------------- 5. Prosody restart

def carries(notes, text):
    return [(h, b) for h, b in notes if text.encode() in b and substate(h).startswith("active")]


async def test_prosody_restart(env):
    """Prosody dies and restarts (every XMPP client logs in again).  A SIP watcher of dave sees him
    unavailable while the component link is down, and his presence again once he is back (the
    gateway probes on link up).  erin, an XMPP watcher of bob, sees bob again on her next login
    without subscribing again: Prosody probes bob@sip.example, the gateway answers from its state."""
    server = presence_server(env, body=pidf(BOB_URI, note="bob at work"), wait=True, timeout=90)
    await server.start()
    gw = await traced_gateway(env, faults_gateway_xml(env))
    try:
        await prosody_restart_checks(env, gw, server)
    finally:
        if env.xmpp.proc is None:	# Prosody is shared by the module's tests
            await env.xmpp.start()


def link_down_notifies(gw):
    """The NOTIFYs the gateway sent since its component link was lost."""
    return [(h, b) for d, start, h, b in sip_log(gw, "send", since=r"component \S+: link lost")
            if start.startswith("NOTIFY ")]


async def prosody_restart_checks(env, gw, server):
    dave = await watcher(env, "dave", auto_authorize=True)
    dave.send_presence(pstatus="dave before")
    erin = await watcher(env, "erin")
    erin.send_presence(pto=BOB, ptype="subscribe")
    await expect_pres(erin, "available", BOB, lambda p: p["status"] == "bob at work")
    w = watch_steps(env, xuri("dave"), notify() * 40, timeout=90)
    await w.start()
    await wait_for(lambda: carries(notifies_of(w), "dave before"), 10, "dave's presence")
    # dave's presence comes twice, ms apart (the server answers the gateway's probe and
    # broadcasts it on dave's approval): both are in before the count
    await asyncio.sleep(0.5)
    seen = len(notifies_of(w))

    # Prosody dies (SIGKILL: it says nothing on its way down, so whatever the SIP watcher is told
    # comes from the gateway's presence_link_state), then starts again on the same ports
    # (ejabberd: once dave's approval is on its disk, see Ejabberd.kill)
    await env.xmpp.kill()
    await forget_clients(env, dave, erin)
    await gw.wait_log(r"component \S+: link lost", timeout=10)
    await wait_for(lambda: link_down_notifies(gw), 5, "a NOTIFY sent after the link was lost")
    h, body = link_down_notifies(gw)[0]
    check(h.get("subscription-state", "").startswith("active") and "<tuple" not in body and
          "pres:dave@" in body, f"dave unavailable (no tuple) once the link is down: {h} {body!r}")
    await wait_for(lambda: len(notifies_of(w)) > seen, 10, "the NOTIFY at the SIP watcher")
    await asyncio.sleep(1.0)
    down = notifies_of(w)[seen:]
    check(len(down) == 1 and substate(down[0][0]).startswith("active") and b"<tuple" not in down[0][1],
          f"one NOTIFY, dave unavailable, while the link is down: {down}")
    await env.xmpp.start()
    await gw.wait_log(r"component \S+: connected", count=2, timeout=15)

    # XMPP -> SIP: dave logs in again; the SIP watcher sees him in the same dialog
    dave = await watcher(env, "dave", auto_authorize=True)
    dave.send_presence(pstatus="dave after")
    await wait_for(lambda: carries(notifies_of(w), "dave after"), 10,
                   "dave's presence after the restart")
    check(len({h["call-id"][0] for h, b in notifies_of(w)}) == 1, "one dialog throughout")
    check(not any(substate(h).startswith("terminated") for h, b in notifies_of(w)),
          "the SIP watcher's dialog lived through the restart")
    # SIP -> XMPP: erin logs in again and is told bob's state by the gateway (a probe answer)
    erin = await watcher(env, "erin")
    await expect_pres(erin, "available", BOB, lambda p: p["status"] == "bob at work", timeout=8,
                      what="bob's state answered to Prosody's probe")
    check(not pres(erin, "subscribed", BOB), "no new subscription")
    check(len(subscribes_of(server)) == 1, f"the SIP dialog was kept: {subscribes_of(server)}")
    await w.kill()


# ---------------------------------------------------------------- 6. gateway restart, SIP watcher

async def sip_transaction(port, request, timeout=5.0):
    """Sends one SIP request over UDP to 127.0.0.1:port; returns the final response (text)."""
    loop = asyncio.get_running_loop()
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.setblocking(False)
    local = sock.getsockname()[1]
    data = request.replace("{local}", str(local)).replace("\n", "\r\n").encode()
    try:
        deadline = time.monotonic() + timeout
        sock.sendto(data, ("127.0.0.1", port))
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TestFailure(f"no final response from 127.0.0.1:{port} to:\n{request}")
            try:
                reply = (await asyncio.wait_for(loop.sock_recv(sock, 65535), min(left, 0.5))).decode()
            except asyncio.TimeoutError:
                sock.sendto(data, ("127.0.0.1", port))	# UDP: retransmit
                continue
            if not re.match(r"SIP/2\.0 1\d\d ", reply):
                return reply
    finally:
        sock.close()


async def test_gateway_restart_sip_watcher(env):
    """After a gateway restart a SIP watcher's in-dialog refresh gets 481 (the gateway cannot
    restore its watchers' dialogs), and its new SUBSCRIBE is active at once: heidi's approval was
    stored in the <presence database>."""
    db = os.path.join(env.workdir, "sip-watchers.db")
    if os.path.exists(db):
        os.unlink(db)
    xml = faults_gateway_xml(env, db=db)
    gw = await env.gateway(xml)
    heidi = await watcher(env, "heidi", auto_authorize=True)
    heidi.send_presence(pstatus="heidi here")
    w = watch_steps(env, xuri("heidi"), notify() * 20, timeout=60)
    await w.start()
    await wait_for(lambda: carries(notifies_of(w), "heidi here"), 10, "heidi's presence")
    asked = len(pres(heidi, "subscribe"))
    check(asked >= 1, "heidi was asked once")
    await gw.stop()
    check(gw.exit_code == 0, f"clean exit: {gw.exit_code}")
    last_h, _ = notifies_of(w)[-1]
    check(substate(last_h).startswith("terminated") and "deactivated" in substate(last_h),
          f"the watcher was told the dialog ended: {substate(last_h)}")
    h = notifies_of(w)[0][0]
    call_id = h["call-id"][0]
    gw_tag, watcher_tag = tag_of(h["from"][0]), tag_of(h["to"][0])
    await w.kill()

    gw2 = await env.gateway(xml)
    reply = await sip_transaction(env.gw_sip_port, f"""SUBSCRIBE sip:127.0.0.1:{env.gw_sip_port} SIP/2.0
Via: SIP/2.0/UDP 127.0.0.1:{{local}};rport;branch=z9hG4bK-refresh-{int(time.time() * 1000)}
From: <{BOB_URI}>;tag={watcher_tag}
To: <{xuri("heidi")}>;tag={gw_tag}
Call-ID: {call_id}
CSeq: 5 SUBSCRIBE
Contact: <sip:watcher@127.0.0.1:{{local}}>
Max-Forwards: 70
Event: presence
Accept: application/pidf+xml
Expires: 60
Content-Length: 0

""")
    check(reply.startswith("SIP/2.0 481 "), f"the old dialog's refresh: {reply.splitlines()[0]}")

    # the same watcher subscribes again: approved before, active at once
    w2 = watch_steps(env, xuri("heidi"), notify() + drain(4, 3000, "end"), timeout=30,
                     name="watcher2")
    await w2.start()
    await wait_for(lambda: carries(notifies_of(w2), "heidi here"), 10,
                   "heidi's presence in the new dialog")
    await w2.wait(20)
    states = [substate(h) for h, b in notifies_of(w2)]
    check(states and all(s.startswith("active") for s in states), f"never pending: {states}")
    await gw2.wait_log(r"presence: sip:bob@sip\.example watches heidi@xmpp\.example "
                       r"\(approved before", timeout=1)
    await asyncio.sleep(0.5)
    check(len(pres(heidi, "subscribe")) == asked, "heidi was not asked again")
