"""test_metrics.py - the Prometheus endpoint (<metrics>): each scrape parsed strictly as the text
exposition format 0.0.4, and each counter checked to move with the traffic it counts: pager
messages both ways (delivered, failed, refused), SIP statuses, the hub's refusals, a presence
subscription (gauges up, then down), a chat session begun and ended, the component link lost and
back; and the HTTP side: 404,
405, oversized requests refused, a busy port reported, the gateway's other work unaffected.

Peers: Prosody or ejabberd with slixmpp clients; sipp user agents on the SIP side.
"""

import asyncio
import math
import re
import socket
import time
import urllib.error
import urllib.request

from harness import (SIP_DOMAIN, XMPP_DOMAIN, Client, Gateway, TestFailure, check, default_peer,
                     free_port, gateway_xml, presence_server)
from msrp_ua import MsrpUA

XMPP_SERVERS = ("prosody", "ejabberd")
BOB = f"bob@{SIP_DOMAIN}"

# ---------------------------------------------------------------- the text format, strictly

NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*\Z")
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"')
SAMPLE = re.compile(r"([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)\Z")
TYPES = ("counter", "gauge", "histogram", "summary", "untyped")


def unescape(v):
    return re.sub(r"\\(.)", lambda m: {"n": "\n", "\\": "\\", '"': '"'}[m.group(1)], v)


def parse_labels(text, line):
    labels, pos = {}, 0
    while pos < len(text):
        m = LABEL.match(text, pos)
        check(m, f"bad label at {text[pos:]!r} in {line!r}")
        name, value = m.group(1), unescape(m.group(2))
        check(name not in labels, f"label {name} twice in {line!r}")
        check(not name.startswith("__"), f"reserved label name in {line!r}")
        labels[name] = value
        pos = m.end()
        if pos < len(text):
            check(text[pos] == ",", f"expected ',' at {text[pos:]!r} in {line!r}")
            pos += 1
    return labels


def parse_value(v, line):
    if v in ("+Inf", "-Inf", "NaN"):
        return float(v.replace("Inf", "inf").replace("NaN", "nan"))
    check(re.fullmatch(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?", v), f"bad value in {line!r}")
    return float(v)


def parse(text):
    """The exposition as {(name, frozenset(labels)): value}, after checking that every line is
    a HELP, a TYPE or a sample; each family has one HELP and one TYPE before its samples, which
    are together; names and labels are valid, no series twice; counters end in _total; histogram
    buckets are cumulative, +Inf equals _count."""
    check(text.endswith("\n"), "the exposition ends with a line feed")
    families, order, samples = {}, [], {}
    current = None
    for line in text[:-1].split("\n"):
        check(line, "no empty lines")
        if line.startswith("#"):
            m = re.fullmatch(r"# (HELP|TYPE) (\S+) (.*)", line)
            check(m, f"a comment line is HELP or TYPE: {line!r}")
            kind, name, rest = m.groups()
            check(NAME.match(name), f"metric name {name!r}")
            fam = families.setdefault(name, {"help": None, "type": None, "samples": 0})
            if name not in order:
                order.append(name)
            check(fam["samples"] == 0, f"{kind} of {name} after its samples")
            if kind == "HELP":
                check(fam["help"] is None and fam["type"] is None, f"HELP of {name}: once, first")
                check(rest and "\\" not in rest.replace("\\\\", "").replace("\\n", ""),
                      f"HELP text escapes: {line!r}")
                fam["help"] = rest
            else:
                check(fam["help"] is not None and fam["type"] is None,
                      f"TYPE of {name}: once, after HELP")
                check(rest in TYPES, f"type {rest!r}")
                fam["type"] = rest
            current = name
            continue
        m = SAMPLE.match(line)
        check(m, f"a sample line: {line!r}")
        name, labels_text, value = m.groups()
        check(current is not None, f"sample before any family: {line!r}")
        fam = families[current]
        base = {"histogram": re.sub(r"_(bucket|sum|count)\Z", "", name)}.get(fam["type"], name)
        check(base == current, f"sample {name} under family {current} ({fam['type']})")
        if fam["type"] == "histogram":
            check(name != current, f"a histogram's samples are _bucket, _sum, _count: {line!r}")
        labels = parse_labels(labels_text or "", line)
        check(("le" in labels) == name.endswith("_bucket") or fam["type"] != "histogram",
              f"le exactly on buckets: {line!r}")
        key = (name, frozenset(labels.items()))
        check(key not in samples, f"series twice: {line!r}")
        samples[key] = parse_value(value, line)
        fam["samples"] += 1
    for name, fam in families.items():
        check(fam["type"] is not None, f"{name} has a TYPE")
        if fam["type"] == "counter":
            check(name.endswith("_total"), f"counter {name} ends in _total")
        if fam["type"] != "histogram":
            continue
        series = {}
        for (n, labels), v in samples.items():
            if n == name + "_bucket":
                rest = frozenset((k, x) for k, x in labels if k != "le")
                series.setdefault(rest, []).append((parse_value(dict(labels)["le"], n), v))
        for rest, buckets in series.items():
            buckets.sort()
            check(buckets[-1][0] == math.inf, f"{name}{dict(rest)} has a +Inf bucket")
            counts = [v for _, v in buckets]
            check(counts == sorted(counts), f"{name}{dict(rest)} buckets are cumulative: {buckets}")
            check(samples.get((name + "_count", rest)) == counts[-1],
                  f"{name}{dict(rest)}: +Inf bucket == _count")
            check((name + "_sum", rest) in samples, f"{name}{dict(rest)} has a _sum")
    return samples


def val(samples, name, **labels):
    return samples.get((name, frozenset(labels.items())), 0)


# ---------------------------------------------------------------- HTTP

def http(port, path="/metrics", method="GET", headers=None, data=None, timeout=5):
    """(status, headers, body) of one request; an HTTP error status is returned, not raised."""
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method, data=data,
                                 headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


async def scrape(port):
    status, headers, body = await asyncio.to_thread(http, port)
    check(status == 200, f"GET /metrics: {status}")
    check(headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8",
          headers["Content-Type"])
    return parse(body.decode("utf-8"))


async def until(port, pred, what, timeout=8):
    """Scrapes until pred(samples) holds; returns those samples."""
    deadline = time.monotonic() + timeout
    while True:
        m = await scrape(port)
        if pred(m):
            return m
        if time.monotonic() > deadline:
            raise TestFailure(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.1)


def msgs(m, direction, verdict, peer=None):
    if peer:
        return val(m, "simplegw_peer_messages_total", peer=peer, direction=direction,
                   verdict=verdict)
    return val(m, "simplegw_messages_total", direction=direction, verdict=verdict)


def sent(m, code):
    return val(m, "simplegw_sip_responses_sent_total", code=str(code))


def received(m, code):
    return val(m, "simplegw_sip_responses_received_total", code=str(code))


def delivery_count(m, direction):
    return val(m, "simplegw_message_delivery_seconds_count", direction=direction)


def send(client, to, body):
    msg = client.make_message(mto=to, mbody=body, mtype="chat")
    msg.send()
    return msg["id"]


async def metrics_gateway(env, **kw):
    port = free_port()
    gw = await env.gateway(gateway_xml(env, metrics_port=port, **kw))
    return gw, port


# ---------------------------------------------------------------- tests

async def test_the_endpoint(env):
    """What a scrape holds at start, and the HTTP side: only GET /metrics, bounded requests."""
    gw, port = await metrics_gateway(env)
    m = await scrape(port)
    info = [(dict(labels), v) for (n, labels), v in m.items() if n == "simplegw_build_info"]
    check(len(info) == 1 and info[0][1] == 1 and re.fullmatch(r"\d+\.\d+\.\d+",
                                                              info[0][0].get("version", "")),
          f"build_info: {info}")
    start = [v for (n, _), v in m.items() if n == "simplegw_start_time_seconds"]
    check(len(start) == 1 and abs(start[0] - time.time()) < 60, f"start time {start}")
    check(val(m, "simplegw_xmpp_link_up", component=SIP_DOMAIN) == 1, "the link is up")
    check(val(m, "simplegw_xmpp_link_connects_total") == 1, "one connect")
    for d in ("sip_to_xmpp", "xmpp_to_sip"):
        for v in ("delivered", "failed", "refused"):
            check((("simplegw_messages_total", frozenset({"direction": d, "verdict": v}.items()))
                   in m), f"messages {d} {v} present from the start")
    check(("simplegw_peer_up", frozenset({"peer": "sipnet"}.items())) not in m,
          "peer health unknown (no OPTIONS): no sample")
    for name in ("simplegw_sip_dialogs", "simplegw_presence_watchers", "simplegw_sessions",
                 "simplegw_groupchat_rooms", "simplegw_pending_messages",
                 "simplegw_store_errors_total", "simplegw_reloads_total"):
        check(any(n == name for n, _ in m), f"{name} present")

    # other paths, other methods
    status, _, _ = await asyncio.to_thread(http, port, "/")
    check(status == 404, f"GET /: {status}")
    status, _, _ = await asyncio.to_thread(http, port, "/metrics/x")
    check(status == 404, f"GET /metrics/x: {status}")
    status, headers, _ = await asyncio.to_thread(http, port, "/metrics", "POST", None, b"")
    check(status == 405 and "GET" in (headers["Allow"] or ""), f"POST: {status} {headers}")
    status, _, _ = await asyncio.to_thread(http, port, "/metrics", "DELETE")
    check(status == 405, f"DELETE: {status}")
    status, _, body = await asyncio.to_thread(http, port, "/metrics", "HEAD")
    check(status == 200 and body == b"", f"HEAD: {status} {body[:50]!r}")
    status, _, body = await asyncio.to_thread(http, port, "/metrics?debug=1")
    check(status == 200 and body.startswith(b"# HELP "), f"a query string is ignored: {status}")

    # oversized: headers beyond 8 KiB, a body beyond 1 KiB
    status, _, _ = await asyncio.to_thread(http, port, "/metrics", "GET", {"X-Big": "a" * 10000})
    check(status in (400, 413), f"oversized headers refused: {status}")
    status, _, _ = await asyncio.to_thread(http, port, "/metrics", "POST", None, b"x" * 5000)
    check(status == 413, f"oversized body refused: {status}")

    # a connection that sends nothing is closed (bounded), and a half request as well
    def silent():
        with socket.create_connection(("127.0.0.1", port), timeout=20) as s:
            s.sendall(b"GET /metr")
            t0 = time.monotonic()
            data = s.recv(100)
            return data, time.monotonic() - t0
    data, took = await asyncio.to_thread(silent)
    check(data == b"" or data.startswith(b"HTTP/1.1 4"), f"the silent connection closed: {data!r}")
    check(took < 15, f"within the connection timeout (10 s): {took:.1f}s")

    # the gateway works on: a message from SIP is delivered
    alice = await env.client("alice")
    uac = env.uac(body="still working")
    check(await uac.run() == 0, uac.error_text())
    await alice.expect(lambda msg: msg["body"].rstrip() == "still working", 5, "the message")
    await scrape(port)


async def test_pager_counters(env):
    """Each pager verdict both ways, the SIP statuses, the per-peer counters and the latency
    histogram move with the messages."""
    gw, port = await metrics_gateway(env)
    alice = await env.client("alice")
    accepted = env.xmpp.accepted_status
    m0 = await scrape(port)

    # SIP -> XMPP, delivered
    uac = env.uac(body="metrics: from SIP")
    check(await uac.run() == 0, uac.error_text())
    await alice.expect(lambda msg: msg["body"].rstrip() == "metrics: from SIP", 5, "the message")
    m1 = await until(port, lambda m: msgs(m, "sip_to_xmpp", "delivered") ==
                     msgs(m0, "sip_to_xmpp", "delivered") + 1, "sip_to_xmpp delivered")
    check(msgs(m1, "sip_to_xmpp", "delivered", "sipnet") ==
          msgs(m0, "sip_to_xmpp", "delivered", "sipnet") + 1, "per peer too")
    check(sent(m1, accepted) == sent(m0, accepted) + 1, f"{accepted} sent")
    check(delivery_count(m1, "sip_to_xmpp") == delivery_count(m0, "sip_to_xmpp") + 1,
          "latency observed")
    check(val(m1, "simplegw_peer_sip_requests_received_total", peer="sipnet") ==
          val(m0, "simplegw_peer_sip_requests_received_total", peer="sipnet") + 1,
          "one request from the peer")

    # SIP -> XMPP, refused by the gateway (415) and failed at the XMPP server (480)
    uac = env.uac(ctype="text/html", body="<p>no</p>", expect="415")
    check(await uac.run() == 0, uac.error_text())
    uac = env.uac(ruri=f"sip:nobody@{XMPP_DOMAIN}", to=f"sip:nobody@{XMPP_DOMAIN}", expect="480")
    check(await uac.run() == 0, uac.error_text())
    m2 = await until(port, lambda m: msgs(m, "sip_to_xmpp", "failed") ==
                     msgs(m1, "sip_to_xmpp", "failed") + 1, "sip_to_xmpp failed")
    check(msgs(m2, "sip_to_xmpp", "refused") == msgs(m1, "sip_to_xmpp", "refused") + 1,
          "sip_to_xmpp refused")
    check(sent(m2, 415) == sent(m1, 415) + 1 and sent(m2, 480) == sent(m1, 480) + 1,
          "415 and 480 sent")
    check(delivery_count(m2, "sip_to_xmpp") == delivery_count(m1, "sip_to_xmpp"),
          "only delivered messages in the latency histogram")

    # XMPP -> SIP, delivered
    uas = await env.uas().start()
    send(alice, BOB, "metrics: to SIP")
    check(await uas.wait() == 0, uas.error_text())
    m3 = await until(port, lambda m: msgs(m, "xmpp_to_sip", "delivered") ==
                     msgs(m2, "xmpp_to_sip", "delivered") + 1, "xmpp_to_sip delivered")
    check(msgs(m3, "xmpp_to_sip", "delivered", "sipnet") ==
          msgs(m2, "xmpp_to_sip", "delivered", "sipnet") + 1, "per peer too")
    check(received(m3, 200) == received(m2, 200) + 1, "200 received")
    check(delivery_count(m3, "xmpp_to_sip") == delivery_count(m2, "xmpp_to_sip") + 1,
          "latency observed")
    check(val(m3, "simplegw_peer_sip_requests_sent_total", peer="sipnet") ==
          val(m2, "simplegw_peer_sip_requests_sent_total", peer="sipnet") + 1,
          "one request to the peer")

    # XMPP -> SIP, failed at the SIP side (486) and refused by the gateway (the component itself)
    uas = await env.uas(status=486, phrase="Busy Here").start()
    send(alice, BOB, "metrics: busy")
    check(await uas.wait() == 0, uas.error_text())
    await alice.expect(lambda msg: msg["type"] == "error", 5, "the bounce")
    send(alice, SIP_DOMAIN, "to the component itself")
    await alice.expect(lambda msg: msg["type"] == "error" and msg["body"] ==
                       "to the component itself", 5, "the refusal")
    m4 = await until(port, lambda m: msgs(m, "xmpp_to_sip", "refused") ==
                     msgs(m3, "xmpp_to_sip", "refused") + 1, "xmpp_to_sip refused")
    check(msgs(m4, "xmpp_to_sip", "failed") == msgs(m3, "xmpp_to_sip", "failed") + 1,
          "xmpp_to_sip failed")
    check(received(m4, 486) == received(m3, 486) + 1, "486 received")
    check(val(m4, "simplegw_pending_messages") == 0, "nothing pending")
    check(sum(v for (n, _), v in m4.items() if n == "simplegw_messages_total") ==
          sum(v for (n, _), v in m0.items() if n == "simplegw_messages_total") + 6,
          "six messages, six verdicts")


async def test_hub_refusals(env):
    """A peer network that may not use pager mode: its MESSAGE is refused by the hub (403), and
    a message towards it by the gateway; both counted against the peer."""
    gw, port = await metrics_gateway(env, peers=[default_peer(env, extra='services="presence"')])
    alice = await env.client("alice")
    m0 = await scrape(port)
    uac = env.uac(expect="403")
    check(await uac.run() == 0, uac.error_text())
    send(alice, BOB, "not for this peer")
    await alice.expect(lambda msg: msg["type"] == "error", 5, "the refusal")
    m1 = await until(port, lambda m: msgs(m, "xmpp_to_sip", "refused", "sipnet") ==
                     msgs(m0, "xmpp_to_sip", "refused", "sipnet") + 1, "the peer's refusal")
    check(val(m1, "simplegw_peer_refused_total", peer="sipnet") ==
          val(m0, "simplegw_peer_refused_total", peer="sipnet") + 1, "one hub refusal")
    check(msgs(m1, "sip_to_xmpp", "refused", "sipnet") ==
          msgs(m0, "sip_to_xmpp", "refused", "sipnet") + 1, "the MESSAGE counted refused")
    check(sent(m1, 403) == sent(m0, 403) + 1, "403 sent")


async def test_presence_gauges(env):
    """An XMPP user's subscription to a SIP presentity: the gauges go up, then down."""
    server = presence_server(env, body="", substate="active;expires=60", wait=True)
    await server.start()
    port = free_port()
    xml = gateway_xml(env, metrics_port=port).replace(
        "<im ", '<presence expires="120s" min-expires="10s" max-expires="600s"/>\n  <im ', 1)
    await env.gateway(xml)
    alice = Client("alice", env.xmpp.c2s_port)
    alice.presences = []
    alice.add_event_handler("presence", lambda p: alice.presences.append(p))
    env.clients.append(alice)
    await alice.login()
    m0 = await scrape(port)
    check(val(m0, "simplegw_presence_presentities") == 0, "nothing watched yet")
    alice.send_presence(pto=BOB, ptype="subscribe")
    m1 = await until(port, lambda m: val(m, "simplegw_sip_dialogs", kind="subscription") == 1
                     and received(m, 200) > received(m0, 200),
                     "the subscription dialog and its SUBSCRIBE's 200")
    check(val(m1, "simplegw_peer_dialogs", peer="sipnet", kind="subscription") == 1,
          "the peer's dialog")
    check(val(m1, "simplegw_presence_presentities") == 1, "one presentity")
    check(val(m1, "simplegw_presence_watchers") == 1, "one watcher")
    alice.send_presence(pto=BOB, ptype="unsubscribe")
    m2 = await until(port, lambda m: val(m, "simplegw_sip_dialogs", kind="subscription") == 0 and
                     val(m, "simplegw_presence_watchers") == 0, "the subscription gone", 10)
    check(val(m2, "simplegw_peer_sip_requests_sent_total", peer="sipnet") >=
          val(m0, "simplegw_peer_sip_requests_sent_total", peer="sipnet") + 2,
          "SUBSCRIBE and un-SUBSCRIBE sent")
    check(await server.wait(10) == 0, server.error_text())


async def test_busy_port_is_a_start_error(env):
    """A metrics port another process holds: the gateway does not start, and says why."""
    busy = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    busy.bind(("127.0.0.1", 0))
    busy.listen(1)
    port = busy.getsockname()[1]
    try:
        gw = Gateway(env, env.gateway_binary, gateway_xml(env, metrics_port=port))
        await gw.start(wait_up=False)
        try:
            await asyncio.wait_for(gw.proc.wait(), 15)
        finally:
            await gw.stop()
        check(gw.exit_code == 1, f"exit status 1: {gw.exit_code}\n{gw.log()[-2000:]}")
        check(re.search(rf"cannot listen for metrics on 127\.0\.0\.1 port {port} "
                        r"\(conf line \d+\): Address already in use", gw.log()), gw.log()[-2000:])
        check(not gw.sanitizer_report(), gw.sanitizer_report())
    finally:
        busy.close()


async def test_link_loss_and_reconnect(env):
    """The XMPP server goes away and comes back: the link gauge follows, losses and connects
    count, and a SIP message meanwhile fails (503)."""
    gw, port = await metrics_gateway(env)
    m0 = await scrape(port)
    check(val(m0, "simplegw_xmpp_link_up", component=SIP_DOMAIN) == 1, "up")
    await env.xmpp.stop()
    try:
        m1 = await until(port, lambda m: val(m, "simplegw_xmpp_link_up", component=SIP_DOMAIN) == 0,
                         "the link down")
        check(val(m1, "simplegw_xmpp_link_losses_total") ==
              val(m0, "simplegw_xmpp_link_losses_total") + 1, "one loss")
        uac = env.uac(expect="503")
        check(await uac.run() == 0, uac.error_text())
        m2 = await until(port, lambda m: msgs(m, "sip_to_xmpp", "failed") ==
                         msgs(m0, "sip_to_xmpp", "failed") + 1, "the message failed")
        check(sent(m2, 503) == sent(m0, 503) + 1, "503 sent")
    finally:
        await env.xmpp.start()
    m3 = await until(port, lambda m: val(m, "simplegw_xmpp_link_up", component=SIP_DOMAIN) == 1,
                     "the link up again", 15)
    check(val(m3, "simplegw_xmpp_link_connects_total") ==
          val(m0, "simplegw_xmpp_link_connects_total") + 1, "one more connect")


async def test_session_counters(env):
    """A chat session (SIP INVITE + MSRP) from a SIP user: begun, counted open, then over."""
    msrp_port = free_port()
    port = free_port()
    await env.gateway(gateway_xml(env, metrics_port=port,
                                  sessions=f'<sessions msrp-port="{msrp_port}"/>'))
    alice = await env.client("alice")
    ua = MsrpUA("bob", local_port=env.peer_sip_port, setup="actpass", domain=SIP_DOMAIN)
    await ua.start()
    try:
        m0 = await scrape(port)
        call = await ua.invite(f"sip:alice@{XMPP_DOMAIN}", next_hop=("127.0.0.1", env.gw_sip_port))
        check(call.status == 200, f"INVITE answered {call.status} {call.reason}")
        await call.wait_connected(5)
        await call.send_text("over MSRP")
        await alice.expect(lambda msg: msg["body"] == "over MSRP", 5, "the MSRP message")
        m1 = await scrape(port)
        check(val(m1, "simplegw_sessions") == 1, "one session open")
        check(val(m1, "simplegw_sip_dialogs", kind="call") == 1, "one INVITE dialog")
        check(val(m1, "simplegw_peer_dialogs", peer="sipnet", kind="call") == 1,
              "the peer's INVITE dialog")
        check(val(m1, "simplegw_sessions_started_total") ==
              val(m0, "simplegw_sessions_started_total") + 1, "one session begun")
        check(sent(m1, 200) > sent(m0, 200), "the INVITE's 200 sent")
        await call.bye()
        m2 = await until(port, lambda m: val(m, "simplegw_sessions_ended_total") ==
                         val(m0, "simplegw_sessions_ended_total") + 1, "the session over")
        check(val(m2, "simplegw_sessions") == 0, "none open")
        await until(port, lambda m: val(m, "simplegw_sip_dialogs", kind="call") == 0,
                    "the INVITE dialog gone")
    finally:
        await ua.stop()
