"""test_pager.py - pager-mode IM (RFC 7572) through the gateway, both ways, and every error path.

Peers: Prosody or ejabberd with slixmpp clients on the XMPP side; sipp user agents on the SIP side
(a UAS where the gateway routes sip.example, a UAC sending to the gateway).
"""

import asyncio
import re
import socket
import time

from harness import (SIP_DOMAIN, XMPP_DOMAIN, check, default_peer, error_condition, gateway_xml,
                     wait_for)

XMPP_SERVERS = ("prosody", "ejabberd")
USERS = ("alice", "carol", "dave")     # dave blocks bob: a blocklist outlives its test


def header(hdrs, name):
    v = hdrs.get(name.lower())
    return v[0] if v else None


def send(client, to, body=None, subject=None, lang=None, thread=None, mtype="chat", extra_xml=None):
    msg = client.make_message(mto=to, mbody=body, msubject=subject, mtype=mtype)
    if lang:
        msg["lang"] = lang
    if thread:
        msg["thread"] = thread
    if extra_xml is not None:
        msg.append(extra_xml)
    msg.send()
    return msg["id"]


async def expect_error(client, msg_id, condition, timeout=8):
    m = await client.expect(lambda m: m["type"] == "error" and m["id"] == msg_id, timeout,
                            f"an error reply to {msg_id}")
    got = error_condition(m)
    check(got == condition, f"error condition {got!r}, expected {condition!r}: {m}")
    return m


# ------------------------------------------------------------------ XMPP -> SIP

async def test_xmpp_to_sip_message(env):
    await env.gateway()
    uas = await env.uas().start()
    alice = await env.client("alice")
    send(alice, f"bob@{SIP_DOMAIN}", body="h\u00e9llo <b>&amp; \u2603", subject="greeting",
         lang="en", thread="thread-42")
    rc = await uas.wait()
    check(rc == 0, f"sipp UAS failed ({rc}): {uas.error_text()}")
    start, hdrs, body = uas.received()[0]
    check(start == f"MESSAGE sip:bob@{SIP_DOMAIN} SIP/2.0", start)
    check(f"<sip:alice@{XMPP_DOMAIN}>" in header(hdrs, "from"), header(hdrs, "from"))
    check(f"<sip:bob@{SIP_DOMAIN}>" in header(hdrs, "to"), header(hdrs, "to"))
    check(header(hdrs, "content-type").lower().replace(" ", "") == "text/plain;charset=utf-8",
          header(hdrs, "content-type"))
    check(body == "h\u00e9llo <b>&amp; \u2603".encode(), repr(body))
    check(header(hdrs, "subject") == "greeting", header(hdrs, "subject"))
    check(header(hdrs, "content-language") == "en", header(hdrs, "content-language"))
    check(header(hdrs, "call-id") == "thread-42", header(hdrs, "call-id"))
    await alice.expect_nothing(lambda m: m["type"] == "error", 0.5)


async def test_chat_state_alone_is_a_typing_notice_not_a_message(env):
    """A chat-state-only stanza becomes an isComposing MESSAGE (RFC 3994), never an empty text
    MESSAGE; the text that follows is a MESSAGE of its own."""
    await env.gateway()
    uas = await env.uas(calls=2).start()
    alice = await env.client("alice")
    msg = alice.make_message(mto=f"bob@{SIP_DOMAIN}", mtype="chat")
    msg["chat_state"] = "composing"
    msg.send()
    await asyncio.sleep(0.3)
    send(alice, f"bob@{SIP_DOMAIN}", body="the real one")
    check(await uas.wait() == 0, uas.error_text())
    got = uas.received()
    check(len(got) == 2, f"UAS saw {got}")
    check(header(got[0][1], "content-type").startswith("application/im-iscomposing+xml") and
          b"<state>active</state>" in got[0][2], f"the typing notice first: {got[0]}")
    check(got[1][2] == b"the real one", f"then the text alone: {got[1]}")


async def test_sip_failures_become_xmpp_errors(env):
    await env.gateway()
    alice = await env.client("alice")
    rows = [(404, "item-not-found"), (486, "recipient-unavailable"), (403, "forbidden"),
            (415, "not-acceptable"), (500, "internal-server-error"), (603, "service-unavailable"),
            (480, "recipient-unavailable"), (408, "remote-server-timeout"), (302, "redirect"),
            (499, "bad-request")]
    for status, condition in rows:
        uas = await env.uas(status=status, phrase="Test Failure").start()
        msg_id = send(alice, f"bob@{SIP_DOMAIN}", body=f"for {status}")
        check(await uas.wait() == 0, uas.error_text())
        m = await expect_error(alice, msg_id, condition)
        check(m["body"] == f"for {status}", f"the bounce carries the original body: {m}")
        check(m["from"].bare == f"bob@{SIP_DOMAIN}", str(m["from"]))


async def test_sip_timeout_becomes_remote_server_timeout(env):
    await env.gateway(sip_attrs='t1="50ms"')
    uas = await env.uas(template="uas_silent.xml", timeout=30).start()
    alice = await env.client("alice")
    msg_id = send(alice, f"bob@{SIP_DOMAIN}", body="anyone there?")
    await expect_error(alice, msg_id, "remote-server-timeout", timeout=15)
    await uas.kill()


async def test_xmpp_body_too_large(env):
    await env.gateway()
    uas = await env.uas(timeout=3).start()
    alice = await env.client("alice")
    msg_id = send(alice, f"bob@{SIP_DOMAIN}", body="x" * 2049)
    await expect_error(alice, msg_id, "policy-violation")
    msg_id = send(alice, f"bob@{SIP_DOMAIN}", body="y" * 2048)   # exactly the limit passes
    check(await uas.wait() == 0, uas.error_text())
    check(uas.received()[0][2] == b"y" * 2048, "the 2048-byte body arrived whole")


async def test_message_to_the_component_itself(env):
    """A message to the gateway's own domain is not a message to a SIP user."""
    gw = await env.gateway()
    alice = await env.client("alice")
    msg_id = send(alice, SIP_DOMAIN, body="to the component itself")
    await expect_error(alice, msg_id, "service-unavailable")
    check(gw.log_count("sent as SIP MESSAGE") == 0, "nothing went to SIP")


async def test_groupchat_type_refused(env):
    await env.gateway()
    alice = await env.client("alice")
    msg_id = send(alice, f"bob@{SIP_DOMAIN}", body="hi all", mtype="groupchat")
    await expect_error(alice, msg_id, "feature-not-implemented")


# ------------------------------------------------------------------ SIP -> XMPP

async def test_sip_to_xmpp_message(env):
    await env.gateway()
    alice = await env.client("alice")
    uac = env.uac(body="bonjour \u00e0 tous", extra="Subject: Salut\nContent-Language: fr\n")
    check(await uac.run() == 0, uac.error_text())
    m = await alice.expect(lambda m: m["type"] in ("chat", "normal"), 5, "the MESSAGE")
    check(m["from"].bare == f"bob@{SIP_DOMAIN}", str(m["from"]))
    check(m["body"].rstrip("\r\n") == "bonjour \u00e0 tous", repr(m["body"]))
    check(m["subject"] == "Salut", m["subject"])
    check(m["lang"] == "fr", m["lang"])
    check(m["thread"], "Call-ID carried as <thread/>")


async def test_sip_to_unknown_xmpp_user_gets_error_status(env):
    await env.gateway()
    # 480, not 503: the XMPP server's service-unavailable says the user cannot be reached, not
    # that a server is broken (a proxy would turn a 503 into 500 and may fail over)
    uac = env.uac(ruri=f"sip:nobody@{XMPP_DOMAIN}", to=f"sip:nobody@{XMPP_DOMAIN}", expect="480")
    check(await uac.run() == 0, f"expected 480 for an unknown user: {uac.error_text()}")
    start = [r for r in uac.received() if r[0].startswith("SIP/2.0 480")]
    check(start and "service-unavailable" in start[0][0], f"reason names the XMPP condition: {start}")


async def test_sip_to_offline_user_is_stored(env):
    await env.gateway()
    uac = env.uac(ruri=f"sip:carol@{XMPP_DOMAIN}", to=f"sip:carol@{XMPP_DOMAIN}", body="while you were out")
    check(await uac.run() == 0, uac.error_text())
    carol = await env.client("carol")
    m = await carol.expect(lambda m: m["type"] in ("chat", "normal"), 5, "the offline message")
    check(m["body"].rstrip() == "while you were out", m["body"])


async def test_sip_cpim_is_unwrapped(env):
    await env.gateway()
    alice = await env.client("alice")
    cpim = ("From: <sip:bob@sip.example>\r\nTo: <sip:alice@xmpp.example>\r\n"
            "DateTime: 2026-11-23T10:00:00Z\r\nSubject:;lang=en wrapped subject\r\n\r\n"
            "Content-Type: text/plain; charset=utf-8\r\n\r\nwrapped \u00fcmlaut text")
    uac = env.uac(ctype="message/cpim", body=cpim)
    check(await uac.run() == 0, uac.error_text())
    m = await alice.expect(lambda m: m["type"] in ("chat", "normal"), 5, "the CPIM message")
    check(m["body"].rstrip() == "wrapped \u00fcmlaut text", repr(m["body"]))
    check(m["subject"] == "wrapped subject", m["subject"])
    delay = m.xml.find("{urn:xmpp:delay}delay")
    check(delay is not None and delay.get("stamp") == "2026-11-23T10:00:00Z", "DateTime as delay")


async def test_sip_content_refusals(env):
    await env.gateway()
    rows = [
        dict(ctype="text/html", body="<p>hi</p>", expect="415"),
        dict(ctype="text/plain;charset=iso-8859-1", body="latin", expect="415"),
        dict(ctype="message/cpim", body="garbage without headers", expect="400"),
        dict(ctype="message/cpim", body="From: <sip:bob@sip.example>\r\n\r\nContent-Type: text/html\r\n\r\n<p/>",
             expect="415"),
        dict(body=b"bad \xff\xfe utf-8", expect="400"),
        dict(body=b"control \x01 char", expect="400"),
        dict(body="z" * 2100, expect="413"),
    ]
    for row in rows:
        uac = env.uac(**row)
        check(await uac.run() == 0, f"{row['expect']} for {row.get('ctype')}: {uac.error_text()}")
        if row["expect"] == "415":
            resp = [r for r in uac.received() if r[0].startswith("SIP/2.0 415")][0]
            check("message/cpim" in (header(resp[1], "accept") or ""), f"415 carries Accept: {resp[1]}")


async def test_sip_unmappable_addresses(env):
    await env.gateway()
    for row in [dict(ruri=f"sip:%00x@{XMPP_DOMAIN}", expect="484"),
                dict(ruri=f"sip:a%22b@{XMPP_DOMAIN}", expect="480"),   # escaped \22, unknown user
                dict(sender=f"sip:b%FFob@{SIP_DOMAIN}", expect="400"),
                dict(ruri=f"sip:{XMPP_DOMAIN}", expect="404")]:
        uac = env.uac(**row)
        check(await uac.run() == 0, f"{row}: {uac.error_text()}")


# ------------------------------------------------------------------ peering trust

async def test_unknown_source_is_refused(env):
    peer = default_peer(env, trust="10.9.9.9")
    await env.gateway(peers=[peer])
    uac = env.uac(expect="403")
    check(await uac.run() == 0, uac.error_text())
    resp = [r for r in uac.received() if r[0].startswith("SIP/2.0 403")]
    check(resp and "Untrusted" in resp[0][0], str(resp))


async def test_from_domain_not_owned_is_refused(env):
    await env.gateway()
    uac = env.uac(sender="sip:mallory@evil.example", expect="403")
    check(await uac.run() == 0, uac.error_text())
    uac = env.uac(sender=f"sip:mallory@{XMPP_DOMAIN}", expect="403")  # claims our own domain
    check(await uac.run() == 0, uac.error_text())


async def test_request_for_other_domain_is_refused(env):
    await env.gateway()
    uac = env.uac(ruri="sip:alice@elsewhere.example", expect="404")
    check(await uac.run() == 0, uac.error_text())


# ------------------------------------------------------------------ lifecycle

async def test_link_down_gives_503_then_recovers(env):
    gw = await env.gateway()
    await env.xmpp.stop()
    await gw.wait_log(r"link lost", timeout=10)
    uac = env.uac(expect="503")
    check(await uac.run() == 0, uac.error_text())
    resp = [r for r in uac.received() if r[0].startswith("SIP/2.0 503")][0]
    check(header(resp[1], "retry-after") is not None, f"503 carries Retry-After: {resp[1]}")
    await env.xmpp.start()
    await gw.wait_log(r"component \S+: connected", timeout=15, count=2)
    alice = await env.client("alice")
    uac = env.uac(body="after the outage")
    check(await uac.run() == 0, uac.error_text())
    await alice.expect(lambda m: m["body"].rstrip() == "after the outage", 5, "message after reconnect")


async def test_sigterm_answers_pending_messages(env):
    gw = await env.gateway()
    uas = await env.uas(template="uas_silent.xml", timeout=30).start()
    alice = await env.client("alice")
    msg_id = send(alice, f"bob@{SIP_DOMAIN}", body="caught by shutdown")
    await wait_for(lambda: len(uas.received()) >= 1, 5, "the MESSAGE at the UAS")
    await gw.stop()
    check(gw.exit_code == 0, f"exit status {gw.exit_code}")
    await expect_error(alice, msg_id, "service-unavailable")
    check(gw.log_count("shutdown complete") == 1, "clean shutdown logged")


async def test_options_from_trusted_peer(env):
    await env.gateway()
    uac = env.uac(template="uac_options.xml")
    check(await uac.run() == 0, uac.error_text())


def bounce_everything(client):
    """client answers every message with a body with its own error (after the server routed it)."""
    def bounce(msg):
        if msg["type"] in ("chat", "normal") and msg["body"]:
            err = msg.reply()
            err["type"] = "error"
            err["id"] = msg["id"]
            err["error"]["type"] = "cancel"
            err["error"]["condition"] = "not-acceptable"
            err["error"]["text"] = "this client takes no messages from strangers"
            err.send()
    client.add_event_handler("message", bounce)


async def test_late_client_error_reaches_the_sip_sender(env):
    """An error the XMPP client itself sends after the MESSAGE was answered 200 becomes a notice
    MESSAGE.  barrier-window 0ms: the barrier ping follows the message at once, so the client's
    bounce comes after its reply (with the default window of 10 ms a bounce this quick arrives
    first and answers the MESSAGE itself: the next test)."""
    await env.gateway(im='<im max-body="2048" delivery-wait="2s" barrier-window="0ms"/>')
    alice = await env.client("alice")
    bounce_everything(alice)
    uas = await env.uas().start()
    uac = env.uac(body="will be refused by the client")
    check(await uac.run() == 0, f"the MESSAGE itself is answered "
          f"{env.xmpp.accepted_status}: {uac.error_text()}")
    check(await uas.wait() == 0, f"a notice MESSAGE reached the SIP side: {uas.error_text()}")
    start, hdrs, body = uas.received()[0]
    check(start == f"MESSAGE sip:bob@{SIP_DOMAIN} SIP/2.0", start)
    check(f"sip:alice@{XMPP_DOMAIN}" in header(hdrs, "from"), header(hdrs, "from"))
    check(b"not delivered" in body and b"not-acceptable" in body and b"strangers" in body, repr(body))


async def test_quick_client_error_answers_the_message(env):
    """A client's own error that arrives within <im barrier-window> of its message, before the
    barrier ping went out, answers the MESSAGE with the mapped status (RFC 7247's table: 406 for
    not-acceptable), and no notice follows."""
    await env.gateway(im='<im max-body="2048" delivery-wait="2s" barrier-window="500ms"/>')
    alice = await env.client("alice")
    bounce_everything(alice)
    uas = await env.uas(timeout=3).start()     # takes a notice MESSAGE if one comes
    uac = env.uac(body="will be refused by the client", expect="406")
    check(await uac.run() == 0, f"the MESSAGE is answered 406: {uac.error_text()}")
    await uas.wait(5)
    notices = [b for s, h, b in uas.received() if s.startswith("MESSAGE ")]
    check(not notices, f"the error said it all: {notices}")


async def test_sip_to_a_user_who_blocked_the_sender(env):
    """dave is online and has blocked bob (XEP-0191): bob's MESSAGE is never answered 200.
    Prosody bounces it while routing it, ahead of the reply to the barrier ping: the error status
    of service-unavailable (the error table's row), and nothing follows.  ejabberd checks the
    block in dave's session process, which may bounce the message before or after the server has
    answered a ping sent behind it (see the peers' notes): the same error when the bounce came
    first, else 202 (the ping proved nothing), and then at most a notice."""
    await env.gateway()
    dave = await env.client("dave")
    dave.register_plugin("xep_0191")
    await dave.plugin["xep_0191"].block([f"bob@{SIP_DOMAIN}"])
    uas = await env.uas(timeout=3).start()     # takes a notice MESSAGE if one comes
    uac = env.uac(ruri=f"sip:dave@{XMPP_DOMAIN}", to=f"sip:dave@{XMPP_DOMAIN}",
                  body="from a blocked sender", expect="480")
    await uac.run()     # judged from what it received: sipp takes only the one status
    finals = [s for s, h, b in uac.received() if re.match(r"SIP/2\.0 [2-6]", s)]
    refused = len(finals) == 1 and re.match(r"SIP/2\.0 [45]\d\d .*service-unavailable", finals[0])
    accepted = len(finals) == 1 and finals[0].startswith("SIP/2.0 202 ")
    check(refused or (accepted and env.xmpp.kind == "ejabberd"),
          f"one final answer, the error for service-unavailable"
          f"{' or 202' if env.xmpp.kind == 'ejabberd' else ''}: {finals} {uac.error_text()}")
    await uas.wait(10)
    notices = [b for s, h, b in uas.received() if s.startswith("MESSAGE ")]
    if refused:
        check(not notices, f"the error said it all: {notices}")
    else:
        check(len(notices) <= 1 and all(b"not delivered" in b for b in notices),
              f"at most one notice that it was not delivered: {notices}")
    check(not [m for m in dave.inbox if m["body"]], f"dave got nothing: {dave.inbox}")


async def test_tcp_both_ways(env):
    peer = default_peer(env).replace('transport="udp"', 'transport="tcp"')
    await env.gateway(peers=[peer])
    alice = await env.client("alice")
    uas = env.sipp("uas", "uas_reply.xml", dict(status="200", phrase="OK"), port=env.peer_sip_port,
                   transport="t1")
    await uas.start()
    send(alice, f"bob@{SIP_DOMAIN}", body="over TCP")
    check(await uas.wait() == 0, uas.error_text())
    check(uas.received()[0][2] == b"over TCP", repr(uas.received()))
    uac = env.uac(body="back over TCP", transport="t1")
    check(await uac.run() == 0, uac.error_text())
    await alice.expect(lambda m: m["body"].rstrip() == "back over TCP", 5, "the TCP message")


def udp_finals(sock, quiet=0.7):
    """The final responses (text) that arrive on sock until it has been quiet for `quiet` s."""
    got = []
    sock.settimeout(quiet)
    try:
        while True:
            data, _ = sock.recvfrom(65536)
            text = data.decode(errors="replace")
            if not text.startswith("SIP/2.0 1"):
                got.append(text)
    except socket.timeout:
        return got


def udp_sip_socket():
    """A UDP socket on 127.0.0.1 to play a SIP user agent from: (socket, port)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    return s, s.getsockname()[1]


async def exchange(sock, gw_port, *datagrams):
    """Sends the datagrams to the gateway and returns the final responses that come back."""
    for d in datagrams:
        sock.sendto(d, ("127.0.0.1", gw_port))
    return await asyncio.to_thread(udp_finals, sock)


def status_lines(resps):
    return [r.splitlines()[0] for r in resps]


def to_tag(resp):
    m = re.search(r"(?im)^(?:to|t):.*;\s*tag=([^;\s]+)", resp)
    return m.group(1) if m else None


async def test_retransmitted_message_gets_the_same_answer_and_one_delivery(env):
    """RFC 3261 17.2.2 over UDP: a retransmission that arrives while the MESSAGE is still being
    delivered is absorbed, one that arrives after its answer gets the same answer again (the
    same To tag), and neither reaches the XMPP user a second time; the same request by another
    branch (merged, 8.2.2.2) gets 482; the next CSeq of the same Call-ID is a new message."""
    from test_hostile import sip_request
    await env.gateway()
    alice = await env.client("alice")
    s, port = udp_sip_socket()
    try:
        req = sip_request("MESSAGE", port, body=b"once only", ctype="text/plain",
                          branch="z9hG4bKretx1", call_id="retx-1")
        first = await exchange(s, env.gw_sip_port, req, req)
        check(len(first) == 1 and first[0].startswith(("SIP/2.0 200 ", "SIP/2.0 202 ")),
              f"one 2xx for the pair (200, or 202 where the server may still refuse): {status_lines(first)}")
        again = await exchange(s, env.gw_sip_port, req)
        check(len(again) == 1 and status_lines(again) == status_lines(first),
              f"the same answer again: {status_lines(again)}")
        check(to_tag(first[0]) and to_tag(again[0]) == to_tag(first[0]),
              f"the same To tag: {to_tag(first[0])} {to_tag(again[0]) if again else None}")
        merged = req.replace(b"branch=z9hG4bKretx1", b"branch=z9hG4bKretx1other")
        loop = await exchange(s, env.gw_sip_port, merged)
        check(len(loop) == 1 and loop[0].startswith("SIP/2.0 482 "),
              f"a merged request gets 482: {status_lines(loop)}")
        nxt = req.replace(b"CSeq: 1 MESSAGE", b"CSeq: 2 MESSAGE").replace(
            b"branch=z9hG4bKretx1", b"branch=z9hG4bKretx2").replace(b"once only", b"then more")
        last = await exchange(s, env.gw_sip_port, nxt)
        check(len(last) == 1 and last[0].startswith(("SIP/2.0 200 ", "SIP/2.0 202 ")),
              f"the next CSeq is a new message: {status_lines(last)}")
    finally:
        s.close()
    await alice.expect(lambda m: m["body"] == "once only", 5, "the first message")
    await alice.expect(lambda m: m["body"] == "then more", 5, "the second message")
    await alice.expect_nothing(lambda m: m["body"] in ("once only", "then more"), 0.5)


def header_values(resp, *names):
    """The values of the named headers (any of the names, long or compact, any case) in a SIP
    message's head, one per comma-separated field where the header is a Via, whitespace around
    ; , = and after the colon removed."""
    out = []
    for line in resp.split("\r\n\r\n")[0].split("\r\n")[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() in names:
            value = re.sub(r"\s*([;,=])\s*", r"\1", value.strip())
            out += value.split(",") if name.strip().lower() in ("via", "v") else [value]
    return out


async def test_answer_echoes_the_request_headers(env):
    """RFC 3261 8.2.6.2: an answer's From, Call-ID, CSeq and Via values are the request's.  The
    answers copy the request's parsed headers (the structures; the strings stay the request's,
    which the answer keeps alive): every Via in its order, whether comma-separated on one line
    or on lines of their own with another header between, with their parameters; compact names
    and odd spacing in the request; the top Via's rport filled in.  The To gets our tag.  The
    same holds for a 4xx and for the repeated answer to a retransmission."""
    await env.gateway()
    alice = await env.client("alice")
    s, port = udp_sip_socket()
    head = (f"MESSAGE sip:alice@xmpp.example SIP/2.0\r\n"
            f"v: SIP/2.0/UDP 127.0.0.1:{port} ;branch=z9hG4bKecho1 ;rport , SIP/2.0/UDP 192.0.2.7:5070;branch=z9hG4bKup1\r\n"
            "f:  \"Bob \\\"B\\\"\"  <sip:bob@sip.example;transport=udp>;tag=Ab-1 ;x=y\r\n"
            "Via:SIP/2.0/TCP  198.51.100.9;branch=z9hG4bKup2;received=198.51.100.10\r\n"
            "t: <sip:alice@xmpp.example>;x=1\r\ni:  echo-1@[::1]\r\nCSeq:   7   MESSAGE\r\n"
            "Max-Forwards: 70\r\nc: text/plain\r\n")
    req = (head + "l: 4\r\n\r\necho").encode()
    try:
        first = await exchange(s, env.gw_sip_port, req)
        again = await exchange(s, env.gw_sip_port, req)
        bad = req.replace(b"echo-1@", b"echo-2@").replace(b"c: text/plain", b"c: image/png")
        refused = await exchange(s, env.gw_sip_port, bad)
    finally:
        s.close()
    check(len(first) == 1 and first[0].startswith(("SIP/2.0 200 ", "SIP/2.0 202 ")),
          f"a 2xx: {status_lines(first)}")
    check(len(again) == 1 and again[0] == first[0], f"the same answer again: {again}")
    check(len(refused) == 1 and refused[0].startswith("SIP/2.0 415 "),
          f"415 for image/png: {status_lines(refused)}")
    for what, resp, cid in (("2xx", first[0], "echo-1@[::1]"), ("415", refused[0], "echo-2@[::1]")):
        check(header_values(resp, "via", "v") ==
              [f"SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bKecho1;rport={port}",
               "SIP/2.0/UDP 192.0.2.7:5070;branch=z9hG4bKup1",
               "SIP/2.0/TCP 198.51.100.9;branch=z9hG4bKup2;received=198.51.100.10"],
              f"{what}: every Via, in order: {header_values(resp, 'via', 'v')}")
        check(header_values(resp, "from", "f") ==
              ['"Bob \\"B\\"" <sip:bob@sip.example;transport=udp>;tag=Ab-1;x=y'],
              f"{what}: the From: {header_values(resp, 'from', 'f')}")
        check(header_values(resp, "call-id", "i") == [cid], f"{what}: the Call-ID")
        check(header_values(resp, "cseq") == ["7 MESSAGE"], f"{what}: the CSeq")
        tos = header_values(resp, "to", "t")
        check(len(tos) == 1 and tos[0].startswith("<sip:alice@xmpp.example>;x=1;tag=") and
              to_tag(resp), f"{what}: the To with our tag: {tos}")
    await alice.expect(lambda m: m["body"] == "echo", 5, "the message")


def play_peer(port, repeat_after=None):
    """Plays the SIP peer on 127.0.0.1:port for one MESSAGE: answers it 200 and, repeat_after s
    later, sends the same 200 again (a duplicate, as a peer that saw a retransmission would).
    Returns the MESSAGE's head (text) and body (bytes) as they came."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", port))
    s.settimeout(5)
    try:
        while True:
            data, addr = s.recvfrom(65536)
            if data.startswith(b"MESSAGE "):
                break
        head, _, body = data.partition(b"\r\n\r\n")
        keep = [l + (";tag=peer" if re.match(r"(?i)to:", l) else "")
                for l in head.decode().split("\r\n") if re.match(r"(?i)(via|from|to|call-id|cseq):", l)]
        resp = ("SIP/2.0 200 OK\r\n" + "\r\n".join(keep) + "\r\nContent-Length: 0\r\n\r\n").encode()
        s.sendto(resp, addr)
        if repeat_after is not None:
            time.sleep(repeat_after)
            s.sendto(resp, addr)
        return head.decode(), body
    finally:
        s.close()


def answer_twice(port, gap):
    """play_peer() with a duplicate 200 gap s after the first; returns the MESSAGE's body."""
    return play_peer(port, gap)[1].decode()


async def test_sent_message_carries_its_headers(env):
    """The MESSAGE a chat becomes, as it reaches the peer: plain text with the Content-Type the
    pager always uses (a copy of one made at start), Subject and Content-Language from the
    stanza (xml:lang), a Content-Length in octets of a UTF-8 body, From with a tag, To without one; a second
    message the same again (the shared header is copied, not moved)."""
    await env.gateway()
    alice = await env.client("alice")
    rows = (dict(body="plain words", subject=None, lang=None),
            dict(body="caf\u00e9 \u2615 <&> \"quoted\"", subject="Lunch?", lang="fr"),
            dict(body="and once more", subject=None, lang=None))
    for row in rows:
        peer = asyncio.create_task(asyncio.to_thread(play_peer, env.peer_sip_port))
        await asyncio.sleep(0.1)
        send(alice, f"bob@{SIP_DOMAIN}", body=row["body"], subject=row["subject"], lang=row["lang"])
        head, body = await peer
        check(body.decode() == row["body"], f"the body as sent: {body!r}")
        check(header_values(head, "content-type", "c") == ["text/plain;charset=UTF-8"],
              f"plain text's Content-Type: {head}")
        check(header_values(head, "content-length", "l") == [str(len(body))],
              f"Content-Length in octets ({len(body)}): {head}")
        check(header_values(head, "subject", "s") == ([row["subject"]] if row["subject"] else []),
              f"Subject: {head}")
        if row["lang"]:		# without one, the client's stream default ("en") may be there
            check(header_values(head, "content-language") == [row["lang"]], f"Content-Language: {head}")
        froms, tos = header_values(head, "from", "f"), header_values(head, "to", "t")
        check(len(froms) == 1 and froms[0].startswith("<sip:alice@xmpp.example>;tag=") and
              len(froms[0]) > len("<sip:alice@xmpp.example>;tag=") + 7, f"From with a tag: {froms}")
        check(tos == [f"<sip:bob@{SIP_DOMAIN}>"], f"To without a tag: {tos}")
        check(head.startswith(f"MESSAGE sip:bob@{SIP_DOMAIN} SIP/2.0\r\n"), f"request line: {head}")
    await alice.expect_nothing(lambda m: m["type"] == "error", 1.0)


async def test_duplicate_final_responses_are_absorbed_or_dropped(env):
    """A duplicate 200 to a MESSAGE of ours changes nothing, whether it comes while the completed
    transaction still absorbs duplicates (T4) or after it ended (a stray response, dropped): the
    sender gets no error, and the next message goes through."""
    await env.gateway(sip_attrs='t4="200ms"')
    alice = await env.client("alice")
    for gap, body in ((0.05, "duplicate inside T4"), (0.6, "duplicate after T4")):
        peer = asyncio.create_task(asyncio.to_thread(answer_twice, env.peer_sip_port, gap))
        await asyncio.sleep(0.1)
        send(alice, f"bob@{SIP_DOMAIN}", body=body)
        got = await peer
        check(got == body, f"the peer got {got!r}")
    await alice.expect_nothing(lambda m: m["type"] == "error", 1.0)
    uas = await env.uas().start()
    send(alice, f"bob@{SIP_DOMAIN}", body="and the next one")
    check(await uas.wait() == 0, uas.error_text())


async def test_message_with_an_overlong_call_id_still_goes_through(env):
    """A MESSAGE whose identifying fields are too long for a compact record (a 5 000-character
    Call-ID) gets nta's full server transaction instead, and is delivered and answered as any."""
    from test_hostile import sip_request
    await env.gateway()
    alice = await env.client("alice")
    s, port = udp_sip_socket()
    try:
        req = sip_request("MESSAGE", port, body=b"long call-id", ctype="text/plain",
                          branch="z9hG4bKlongcid", call_id="x" * 5000)
        got = await exchange(s, env.gw_sip_port, req)
        check(len(got) == 1 and got[0].startswith(("SIP/2.0 200 ", "SIP/2.0 202 ")),
              f"one 2xx: {status_lines(got)}")
        again = await exchange(s, env.gw_sip_port, req)
        check(len(again) == 1 and status_lines(again) == status_lines(got),
              f"its retransmission answered by nta's transaction: {status_lines(again)}")
    finally:
        s.close()
    await alice.expect(lambda m: m["body"] == "long call-id", 5, "the message")
    await alice.expect_nothing(lambda m: m["body"] == "long call-id", 0.5)


def slow_peer(port, answer_at, trying_at=None, repeat_200=False, timeout=12):
    """Plays a SIP peer on 127.0.0.1:port that lets a MESSAGE go unanswered: it records every
    copy that comes (time, bytes), sends 100 Trying when the trying_at-th copy (1-based) comes
    and 200 OK when the answer_at-th does (and that 200 again if repeat_200), then listens 1 s
    more.  Returns the copies."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", port))
    s.settimeout(timeout)
    copies, deadline = [], None
    try:
        while True:
            if deadline is not None:
                s.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                data, addr = s.recvfrom(65536)
            except socket.timeout:
                return copies
            if not data.startswith(b"MESSAGE "):
                continue
            copies.append((time.monotonic(), data))
            head = data.partition(b"\r\n\r\n")[0].decode()
            keep = [l + (";tag=peer" if re.match(r"(?i)to:", l) else "")
                    for l in head.split("\r\n") if re.match(r"(?i)(via|from|to|call-id|cseq):", l)]
            if len(copies) == trying_at:
                s.sendto(("SIP/2.0 100 Trying\r\n" + "\r\n".join(l for l in keep if not l.lower().startswith("to:"))
                          + "\r\n" + [l for l in keep if l.lower().startswith("to:")][0].replace(";tag=peer", "")
                          + "\r\nContent-Length: 0\r\n\r\n").encode(), addr)
            if len(copies) == answer_at:
                resp = ("SIP/2.0 200 OK\r\n" + "\r\n".join(keep) + "\r\nContent-Length: 0\r\n\r\n").encode()
                s.sendto(resp, addr)
                if repeat_200:
                    s.sendto(resp, addr)
                deadline = time.monotonic() + 1.0
    finally:
        s.close()


async def test_unanswered_message_is_sent_again_by_timer_e(env):
    """RFC 3261 17.1.2.2 over UDP, for a MESSAGE of ours (sent without nta's client transaction,
    sip/compact_out.c): the same request, octet for octet, again T1, 2T1, 4T1 apart while nothing
    answers, then T2 apart once a 100 Trying came; its 200 (and a duplicate of it) ends it with
    no error for the sender and no copy after; the Via is one, ours, with rport and a branch of
    RFC 3261's magic cookie."""
    await env.gateway(sip_attrs='t1="100ms"')
    alice = await env.client("alice")
    peer = asyncio.create_task(asyncio.to_thread(slow_peer, env.peer_sip_port, answer_at=5,
                                                 trying_at=3, repeat_200=True))
    await asyncio.sleep(0.1)
    send(alice, f"bob@{SIP_DOMAIN}", body="are you there?")
    copies = await peer
    check(len(copies) == 5, f"5 copies until the 200, none after: {len(copies)}")
    check(all(data == copies[0][1] for _, data in copies), "every copy the same octets")
    gaps = [round(b[0] - a[0], 2) for a, b in zip(copies, copies[1:])]
    # T1, 2T1, 4T1 (the 100 came with the third: Timer E was already set for 4T1), then T2 (4 s)
    for got, want in zip(gaps, (0.1, 0.2, 0.4, 4.0)):
        check(want * 0.8 <= got <= want * 1.5 + 0.1, f"Timer E's gaps {gaps}, expected ~0.1 0.2 0.4 4")
    head = copies[0][1].partition(b"\r\n\r\n")[0].decode()
    vias = header_values(head, "via", "v")
    check(len(vias) == 1 and re.fullmatch(r"SIP/2\.0/UDP 127\.0\.0\.1:\d+;rport;branch=z9hG4bK[^;\s]+",
                                          vias[0]), f"one Via of ours: {vias}")
    await alice.expect_nothing(lambda m: m["type"] == "error", 1.0)


async def test_message_to_a_closed_udp_port_fails_fast(env):
    """A MESSAGE of ours to a peer whose UDP port is closed: the ICMP port unreachable the
    kernel reports ends it at once with 503 (as nta's transaction reports a transport error),
    service-unavailable to the sender, well before Timer F (64*T1 = 32 s)."""
    await env.gateway()
    alice = await env.client("alice")
    started = time.monotonic()
    msg_id = send(alice, f"bob@{SIP_DOMAIN}", body="anyone?")
    await expect_error(alice, msg_id, "service-unavailable", timeout=10)
    check(time.monotonic() - started < 5, f"failed after {time.monotonic() - started:.1f} s")
