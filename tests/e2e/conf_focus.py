"""conf_focus.py - an RFC 7701 chat room (conference focus + MSRP switch) for end-to-end tests.

Written from the RFCs (RFC 7701 multi-party MSRP chat, RFC 4575 conference state, RFC 6665
SUBSCRIBE/NOTIFY, RFC 4579 isfocus, RFC 3326 Reason, RFC 3862 message/cpim), on top of the SIP
and MSRP of msrp_ua.py, and independently of the gateway's C code.  Everything binds
127.0.0.1 and addresses peers by number: no DNS.

    focus = ConfFocus(domain="conf.example", rooms={"chat": {"subject": "Hi"},
                                                    "closed": {"refuse": 403},
                                                    "club": {"members": ["sip:a@x"]}})
    await focus.start(); focus.port; focus.room_uri("chat")
    # participants: MsrpUA.invite(focus.room_uri("chat"), next_hop=("127.0.0.1", focus.port))
    focus.participants("chat")        # [Participant]: .uri .nickname .call .state
    focus.messages("chat")            # every message relayed (dicts, see _relay)
    await focus.set_subject("chat", "new subject")
    await focus.kick("chat", "sip:a@x", reason="behave")   # BYE with a Reason header
    await focus.destroy("chat")       # BYE to everyone, subscriptions terminated
    focus.check_clean(); await focus.stop()

Room options: subject, display (display-text of the conference), refuse (a status for every
INVITE), members (the only From URIs let in; others get 403), nicknames (True: NICKNAME and
"nickname" in a=chatroom), private_messages (True: CPIM To of one participant, and
"private-messages" in a=chatroom), reserved ({nickname: the one URI that may take it}),
roles ({uri: [roles]}, default ["participant"]), require_cpim (True: an offer whose
accept-types lacks message/cpim gets 488, RFC 7701 wants every participant to take it).

What the focus writes, and the RFC facts behind it:
 * SDP answer: a=accept-types:message/cpim text/plain, a=accept-wrapped-types:text/plain,
   a=chatroom:nickname private-messages (RFC 7701's SDP attribute; tokens per the room's options),
   a=setup per RFC 6135 (msrp_ua's answerer logic), Contact with the ;isfocus parameter (RFC 4579).
 * NICKNAME (RFC 7701): 200 when free (or already ours), 424 when the Use-Nickname
   value is not a quoted-string holding a usable nickname, 425 when another participant holds
   it (compared after RFC 8266-style case and width folding) or it is reserved for another
   URI, 501 when the room has no nicknames.
 * SEND: text/plain or message/cpim (inner text/plain, else 415).  A CPIM From that is not the
   sender's URI (the From of its INVITE) gets 403.  A CPIM To naming the room, or no CPIM,
   goes to every other participant; a CPIM To naming one participant is private (RFC 7701)
   and goes to that participant's sessions only; a To naming nobody in the room gets
   404 (IANA: "Failure to resolve recipient's URI"), a private message where the room has none
   428 ("Private messages not supported"), several To 403.  The switch decides on the first
   chunk, which carries the CPIM headers, and answers the later chunks alike (a first chunk
   too short to hold them is taken, and the message routed once complete).
 * Relayed message: message/cpim with From: "<nickname>" <sender's URI> (just <sender's URI>
   without a nickname, or with nick_in_cpim=False), To: <room URI> (or <the one participant's
   URI> for a private message), DateTime: the sender's when it gave one, else now.
 * Conference state (RFC 4575): Event: conference, application/conference-info+xml, one
   version counter per subscription starting at 1; the first NOTIFY and the one after each
   refresh are full, changes are partial documents with <users state="partial">: a joining
   user as a whole (<user state="full">), a nickname change as <user state="partial"> with
   only <display-text>, a departure as <user state="deleted">; a subject change as
   <conference-description state="partial"> with <subject>.  RFC 7701 has participants learn
   each other's nicknames from this package; the nickname goes in the <display-text> of the
   <user> whose entity is the participant's SIP URI (and of its <endpoint>), as SylkServer (AG
   Projects, whose S. Ibarra co-wrote RFC 7702) does.  The RFC 7701 text naming the element was
   not at hand when this was written: check it before treating a different placement as a bug.
   Expires: 0 ends with a full NOTIFY and Subscription-State: terminated;reason=timeout.
"""

import asyncio
import datetime
import time
import xml.etree.ElementTree as ET

from msrp_ua import (CONF_INFO_TYPE, CONF_NS, CPIM_DATETIME, T1, Answer, MsrpUA, ProtocolError, Sdp,
                     _is_ip, _rand, addr_uri, cpim_wrap, nickname_key, parse_cpim_address,
                     quote_string, tag_of, uri_hostport)

MAX_EXPIRES = 3600            # RFC 4575: the conference package's default subscription length
FOCUS_ACCEPT_TYPES = "message/cpim text/plain"
FOCUS_WRAPPED_TYPES = "text/plain"


def _now():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _uri_key(uri):
    """sip:user@host without parameters, host case-folded: how the focus compares identities."""
    uri = addr_uri(uri or "").split(";")[0].split("?")[0]
    scheme, _, rest = uri.partition(":")
    user, at, host = rest.rpartition("@")
    return f"{scheme.lower()}:{user}{at}{host.lower()}"


# =============================================================================== state

class Participant:
    """One SIP session in a room (a user joining twice is two participants with one URI)."""

    def __init__(self, room, call):
        self.room, self.call = room, call
        self.uri = call.remote_uri
        contact = call.invite.get_all("contact")
        self.contact = addr_uri(contact[0]) if contact else self.uri
        self.nickname = None
        self.state = "joining"          # joining -> joined -> left
        self.leaving = None             # how it left: departed | booted | destroyed | failed
        self.joined_at = _now()
        self.decisions = {}             # Message-ID -> routing decided on its first chunk
        self.outq = asyncio.Queue()
        self.relay_statuses = []        # statuses of the SENDs relayed to this participant

    def __repr__(self):
        return f"<Participant {self.uri} {self.nickname!r} {self.state}>"


class Watcher:
    """One subscription to a room's conference state (RFC 6665 notifier side)."""

    def __init__(self, room, req, local_tag):
        self.room = room
        self.call_id = req.call_id
        self.local_tag = local_tag
        self.remote_tag = tag_of(req.get("from"))
        self.remote_uri = addr_uri(req.get("from"))
        contact = req.get_all("contact")
        self.remote_target = addr_uri(contact[0]) if contact else None
        self.route_set = req.get_all("record-route")
        self.source = req.source
        self.remote_cseq = req.cseq[0]
        self.local_cseq = 0
        self.version = 0
        self.expires_at = 0.0
        self.state = "active"           # active | terminated
        self.queue = asyncio.Queue()    # (build(version) -> bytes or None, Subscription-State)
        self.sent = []                  # (NOTIFY, final status or 408)

    def dest(self):
        for uri in ([addr_uri(self.route_set[0])] if self.route_set else []) + [self.remote_target]:
            hp = uri_hostport(uri) if uri else None
            if hp and _is_ip(hp[0]):
                return hp
        return self.source


class Room:
    def __init__(self, name, domain, cfg):
        self.name = name
        self.uri = f"sip:{name}@{domain}"
        self.subject = cfg.get("subject", "")
        self.display = cfg.get("display", name)
        self.refuse = cfg.get("refuse")
        self.members = None if cfg.get("members") is None else {_uri_key(u) for u in cfg["members"]}
        self.nicknames = cfg.get("nicknames", True)
        self.private_messages = cfg.get("private_messages", True)
        self.reserved = {nickname_key(n): _uri_key(u) for n, u in cfg.get("reserved", {}).items()}
        self.roles = {_uri_key(u): list(r) for u, r in cfg.get("roles", {}).items()}
        self.require_cpim = cfg.get("require_cpim", True)
        self.participants = []
        self.watchers = []
        self.messages = []

    def present(self):
        return [p for p in self.participants if p.state != "left"]

    def chatroom_tokens(self):
        return ((["nickname"] if self.nicknames else [])
                + (["private-messages"] if self.private_messages else []))


# =============================================================================== conference-info

def _sub(parent, name, text=None, **attrs):
    el = ET.SubElement(parent, name, {k.replace("_", "-"): v for k, v in attrs.items()})
    if text is not None:
        el.text = text
    return el


def _user_element(parent, room, p, state):
    """A <user> for participant p: entity its SIP URI, display-text its nickname."""
    u = _sub(parent, "user", entity=p.uri, state=state)
    if state == "deleted":
        return u
    if p.nickname is not None:
        _sub(u, "display-text", p.nickname)
    if state == "partial":
        return u
    roles = _sub(u, "roles")
    for r in room.roles.get(_uri_key(p.uri), ["participant"]):
        _sub(roles, "entry", r)
    ep = _sub(u, "endpoint", entity=p.contact, state="full")
    if p.nickname is not None:
        _sub(ep, "display-text", p.nickname)
    _sub(ep, "status", "connected")
    _sub(ep, "joining-method", "dialed-in")
    ji = _sub(ep, "joining-info")
    _sub(ji, "when", p.joined_at)
    media = _sub(ep, "media", id="1")
    _sub(media, "type", "message")
    _sub(media, "status", "sendrecv")
    return u


def conference_info(room, state, version, description="full", users=None, users_state="full",
                    user_count=True):
    """An RFC 4575 document.  description: "full", "partial" (subject only) or None;
    users: [(participant, user state)] or None for no <users>."""
    # unqualified names under a literal xmlns: ElementTree's default_namespace refuses the
    # unqualified attributes every conference-info element has
    root = ET.Element("conference-info", {"xmlns": CONF_NS, "entity": room.uri, "state": state,
                                          "version": str(version)})
    if description == "full":
        d = _sub(root, "conference-description", state="full")
        _sub(d, "display-text", room.display)
        _sub(d, "subject", room.subject)
        uris = _sub(d, "conf-uris")
        entry = _sub(uris, "entry")
        _sub(entry, "uri", room.uri)
        _sub(entry, "purpose", "participation")
        am = _sub(d, "available-media")
        e = _sub(am, "entry", label="1")
        _sub(e, "type", "message")
        _sub(e, "status", "sendrecv")
    elif description == "partial":
        d = _sub(root, "conference-description", state="partial")
        _sub(d, "subject", room.subject)
    if user_count:
        cs = _sub(root, "conference-state", state="full")
        _sub(cs, "user-count", str(len({_uri_key(p.uri) for p in room.present() if p.state == "joined"})))
        _sub(cs, "active", "true")
    if users is not None:
        us = _sub(root, "users", state=users_state)
        for p, st in users:
            _user_element(us, room, p, st)
    return ('<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode")).encode()


# =============================================================================== the focus UA

class _FocusUA(MsrpUA):
    """msrp_ua's SIP + MSRP stack, with the room's SDP, SUBSCRIBE and MSRP hooks."""

    def __init__(self, focus, **kw):
        super().__init__("focus", domain=focus.domain, accept_types=FOCUS_ACCEPT_TYPES,
                         wrapped_types=FOCUS_WRAPPED_TYPES, **kw)
        self.focus = focus
        self.contact_params = ";isfocus"
        self.on_invite = focus._decide_invite

    def _sdp(self, session, setup):
        room = self.focus._room_of_call(session.call)
        tokens = room.chatroom_tokens() if room else []
        self.extra_media_attrs = [f"chatroom:{' '.join(tokens)}"] if tokens else []
        return super()._sdp(session, setup)

    async def _new_session(self, call):
        s = await super()._new_session(call)
        self.focus._attach(call, s)
        return s

    def _other_request(self, req):
        if super()._other_request(req):
            return True
        if req.method == "SUBSCRIBE":
            self.focus._on_subscribe(req)
            return True
        return False


class ConfFocus:
    """Chat rooms sip:<room>@<domain>, each a conference focus with its MSRP switch."""

    def __init__(self, domain="sip.example", rooms=None, local_port=None, nick_in_cpim=True, t1=T1):
        self.domain = domain
        self.rooms = {}
        self.nick_in_cpim = nick_in_cpim
        self.violations = []      # what participants and subscribers did wrong, and relay failures
        self.ua = _FocusUA(self, local_port=local_port, t1=t1)
        for name, cfg in (rooms or {}).items():
            self.add_room(name, **cfg)

    # --------------------------------------------------------- lifecycle
    async def start(self):
        await self.ua.start()
        return self

    async def stop(self):
        await self.ua.stop()

    @property
    def port(self):
        return self.ua.port

    def add_room(self, name, **cfg):
        self.rooms[name] = Room(name, self.domain, cfg)
        return self.rooms[name]

    def room_uri(self, name):
        return self.rooms[name].uri

    def check_clean(self):
        errs = self.ua.protocol_errors + self.violations
        if errs:
            raise ProtocolError("focus: protocol errors:\n  " + "\n  ".join(errs))

    # --------------------------------------------------------- queries for tests
    def participants(self, room):
        return self.rooms[room].present()

    def messages(self, room):
        return list(self.rooms[room].messages)

    def watchers(self, room):
        return [w for w in self.rooms[room].watchers if w.state == "active"]

    async def wait_participants(self, room, pred, timeout=5.0):
        """Waits until pred(list of present participants) holds."""
        deadline = time.monotonic() + timeout
        while not pred(self.participants(room)):
            if time.monotonic() > deadline:
                raise ProtocolError(f"room {room}: participants {self.participants(room)}")
            await asyncio.sleep(0.02)
        return self.participants(room)

    # --------------------------------------------------------- controls for tests
    async def kick(self, room, participant_uri, reason="Kicked", cause=200):
        """BYE to every session of participant_uri in room, with Reason: SIP;cause=..;text="..."
        (RFC 3326); returns the status of the last BYE (None when nobody matched)."""
        r = self.rooms[room]
        status = None
        for p in [p for p in r.present() if _uri_key(p.uri) == _uri_key(participant_uri)]:
            p.leaving = "booted"
            status = await p.call.bye(reason=f'SIP;cause={cause};text={quote_string(reason)}')
            self._leave(p)
        return status

    async def set_subject(self, room, text):
        r = self.rooms[room]
        r.subject = text
        self._notify_room(r, lambda v: conference_info(r, "partial", v, description="partial",
                                                       user_count=False))

    async def destroy(self, room, reason="Room destroyed"):
        """BYE to everyone (with a Reason), the subscriptions terminated (reason=noresource)."""
        r = self.rooms[room]
        for p in r.present():
            p.leaving = "destroyed"
            await p.call.bye(reason=f'SIP;cause=200;text={quote_string(reason)}')
            self._leave(p, notify=False)
        for w in r.watchers:
            if w.state == "active":
                w.queue.put_nowait((None, "terminated;reason=noresource"))
        await asyncio.sleep(0)
        del self.rooms[room]

    # --------------------------------------------------------- joining (INVITE)
    def _room_of_uri(self, uri):
        key = _uri_key(uri)
        for r in self.rooms.values():
            if _uri_key(r.uri) == key:
                return r
        return None

    def _room_of_call(self, call):
        return self._room_of_uri(call.invite.uri) if call.invite is not None else None

    def _decide_invite(self, req):
        room = self._room_of_uri(req.uri)
        if room is None:
            return 404
        if room.refuse:
            return room.refuse
        if room.members is not None and _uri_key(addr_uri(req.get("from"))) not in room.members:
            return 403
        if room.require_cpim and req.body:
            sdp = Sdp(req.body.decode("utf-8", "replace"))
            mm = sdp.message_media()
            types = (sdp.attr(mm[0], "accept-types") or "").lower().split() if mm else []
            if mm and "message/cpim" not in types and "*" not in types:
                return Answer(488, reason="Not Acceptable Here (message/cpim is required)")
        return Answer(200)

    def _attach(self, call, session):
        """A session of a room is being answered 200: the participant, and the switch's hooks."""
        room = self._room_of_call(call)
        p = Participant(room, call)
        room.participants.append(p)
        session.reply_status = lambda frame: self._decide_send(p, frame)
        session.on_complete = lambda msg: self._relay(p, msg)
        session.on_nickname = lambda s, frame, nick: self._nickname(p, nick)
        self.ua._spawn(self._join(p))
        self.ua._spawn(self._pump_messages(p))

    async def _join(self, p):
        try:
            await asyncio.wait_for(p.call.confirmed.wait(), 64 * self.ua.t1)
            await p.call.msrp.wait_connected(10)
        except (asyncio.TimeoutError, ProtocolError) as e:
            p.leaving = "failed"
            self.violations.append(f"{p.uri} never joined {p.room.name}: {e!r}")
            self._leave(p, notify=False)
            return
        if p.state == "joining":
            p.state = "joined"
            r = p.room
            self._notify_room(r, lambda v: conference_info(r, "partial", v, description=None,
                                                           users=[(p, "full")], users_state="partial"))
        await p.call.terminated.wait()
        self._leave(p)

    def _leave(self, p, notify=True):
        if p.state == "left":
            return
        was_joined = p.state == "joined"
        p.state = "left"
        p.leaving = p.leaving or "departed"
        r = p.room
        if notify and was_joined and r.name in self.rooms:
            self._notify_room(r, lambda v: conference_info(r, "partial", v, description=None,
                                                           users=[(p, "deleted")], users_state="partial"))

    # --------------------------------------------------------- NICKNAME (RFC 7701)
    def _nickname(self, p, nick):
        r = p.room
        if not r.nicknames:
            return 501
        if nick is None:
            return 424
        key = nickname_key(nick)
        owner = r.reserved.get(key)
        if owner is not None and owner != _uri_key(p.uri):
            return 425
        for other in r.present():
            if other is not p and other.nickname is not None and nickname_key(other.nickname) == key \
                    and _uri_key(other.uri) != _uri_key(p.uri):
                return 425
        if p.nickname == nick:
            return 200
        p.nickname = nick
        if p.state == "joined":
            self._notify_room(r, lambda v: conference_info(r, "partial", v, description=None,
                                                           users=[(p, "partial")], users_state="partial",
                                                           user_count=False))
        return 200

    # --------------------------------------------------------- the MSRP switch
    def _decide_send(self, p, frame):
        """The status of one SEND chunk; the routing of a message is decided on its first."""
        mid = frame.get("message-id")
        if frame.body is None:
            return 200
        br = frame.get("byte-range") or "1-"
        if not br.startswith("1-"):
            return p.decisions.get(mid, ("wait", None, 200))[2]
        decision = self._route(p, (frame.get("content-type") or "").split(";")[0].strip().lower(),
                               frame.body)
        p.decisions[mid] = decision
        return decision[2]

    def _route(self, p, ctype, body):
        """(kind, recipient URI, status): kind room | private | wait (CPIM headers not seen yet)."""
        r = p.room
        if ctype == "text/plain":
            return ("room", r.uri, 200)
        if ctype != "message/cpim":
            return ("refused", None, 415)
        head, sep, rest = body.partition(b"\r\n\r\n")
        if not sep:
            return ("wait", None, 200)
        headers = []
        for line in head.decode("utf-8", "replace").split("\r\n"):
            name, colon, value = line.partition(": ")
            if not colon:
                self.violations.append(f"{p.uri}: bad CPIM header line {line!r}")
                return ("refused", None, 400)
            headers.append((name.lower(), value))
        mime, sep2, _ = rest.partition(b"\r\n\r\n")
        if sep2:
            lines = mime.decode("utf-8", "replace").split("\r\n")
            inner = [ln.partition(": ")[2] for ln in lines if ln.lower().startswith("content-type: ")]
            if not inner or inner[0].split(";")[0].strip().lower() not in FOCUS_WRAPPED_TYPES.split():
                return ("refused", None, 415)
        try:
            froms = [parse_cpim_address(v)[1] for n, v in headers if n == "from"]
            tos = [parse_cpim_address(v)[1] for n, v in headers if n == "to"]
        except ProtocolError as e:
            self.violations.append(f"{p.uri}: {e}")
            return ("refused", None, 400)
        if froms and _uri_key(froms[0]) != _uri_key(p.uri):
            self.violations.append(f"{p.uri} sent a message with CPIM From {froms[0]}")
            return ("refused", None, 403)
        if not tos or (len(tos) == 1 and _uri_key(tos[0]) == _uri_key(r.uri)):
            return ("room", r.uri, 200)
        if len(tos) > 1:
            return ("refused", None, 403)
        if not any(_uri_key(o.uri) == _uri_key(tos[0]) for o in r.present()):
            return ("refused", None, 404)
        if not r.private_messages:
            return ("refused", None, 428)
        return ("private", tos[0], 200)

    def _relay(self, p, msg):
        r = p.room
        kind, to, _ = p.decisions.pop(msg.message_id, ("wait", None, 200))
        if kind == "wait":      # the first chunk was too short to hold the CPIM headers
            kind, to, _ = self._route(p, msg.content_type.split(";")[0].strip().lower(), msg.body)
        if kind not in ("room", "private"):
            self.violations.append(f"{p.uri}: message {msg.message_id} accepted, then found {kind}")
            return
        if msg.cpim is not None:
            inner_type, when = msg.cpim.content_type, msg.cpim_datetime
            if when is not None and not CPIM_DATETIME.match(when):
                when = None
        else:
            inner_type, when = msg.content_type, None
        sender = p.uri if not (self.nick_in_cpim and p.nickname) else f"{quote_string(p.nickname)} <{p.uri}>"
        if kind == "room":
            targets = [o for o in r.present() if o is not p]
        else:
            targets = [o for o in r.present() if o is not p and _uri_key(o.uri) == _uri_key(to)]
        body = cpim_wrap(msg.inner_body, inner_type, sender, to, datetime_value=when or True)
        for o in targets:
            o.outq.put_nowait(body)
        r.messages.append({"from": p.uri, "nickname": p.nickname, "to": to, "private": kind == "private",
                           "text": msg.inner_body.decode("utf-8", "replace"), "content_type": inner_type,
                           "message_id": msg.message_id, "recipients": [o.uri for o in targets]})

    async def _pump_messages(self, p):
        """Sends p's relayed messages one by one, in order."""
        while True:
            body = await p.outq.get()
            if p.state == "left":
                continue
            try:
                out = await p.call.msrp.send(body, "message/cpim", timeout=5.0)
                p.relay_statuses += out.statuses
            except ProtocolError as e:
                if p.state != "left" and not p.leaving:
                    self.violations.append(f"relaying to {p.uri}: {e}")

    # --------------------------------------------------------- conference state (RFC 4575)
    def _on_subscribe(self, req):
        ua = self.ua
        to_tag = tag_of(req.get("to"))
        if to_tag is not None:
            for r in self.rooms.values():
                for w in r.watchers:
                    if w.call_id == req.call_id and w.local_tag == to_tag and w.state == "active":
                        return self._resubscribe(w, req)
            ua._respond(req, 481)
            return
        room = self._room_of_uri(req.uri)
        if room is None:
            ua._respond(req, 404, to_tag=_rand(4))
            return
        if (req.get("event") or "").split(";")[0].strip().lower() != "conference":
            ua._respond(req, 489, headers=[("Allow-Events", "conference")], to_tag=_rand(4))
            return
        accept = req.get("accept")
        if accept is not None and \
                CONF_INFO_TYPE not in [a.strip().split(";")[0].lower() for a in accept.split(",")]:
            ua._respond(req, 406, headers=[("Accept", CONF_INFO_TYPE)], to_tag=_rand(4))
            return
        expires = self._expires(req)
        if expires is None:
            return
        w = Watcher(room, req, _rand(4))
        room.watchers.append(w)
        w.expires_at = time.monotonic() + expires
        ua._respond(req, 200, to_tag=w.local_tag,
                    headers=[("Contact", ua.contact_value), ("Expires", str(expires))])
        w.queue.put_nowait((self._full_builder(room),
                            "active" if expires else "terminated;reason=timeout"))
        ua._spawn(self._pump_notifies(w))

    def _expires(self, req):
        value = req.get("expires", str(MAX_EXPIRES))
        if not value.isdigit():
            self.ua._respond(req, 400, "Bad Expires", to_tag=_rand(4))
            return None
        return min(int(value), MAX_EXPIRES)

    def _resubscribe(self, w, req):
        if req.cseq[0] <= w.remote_cseq:
            self.ua._respond(req, 500, "CSeq out of order")
            return
        w.remote_cseq = req.cseq[0]
        expires = self._expires(req)
        if expires is None:
            return
        w.expires_at = time.monotonic() + expires
        self.ua._respond(req, 200, headers=[("Contact", self.ua.contact_value), ("Expires", str(expires))])
        w.queue.put_nowait((self._full_builder(w.room), "active" if expires else "terminated;reason=timeout"))

    @staticmethod
    def _full_builder(room):
        users = [(p, "full") for p in room.present() if p.state == "joined"]
        return lambda v: conference_info(room, "full", v, users=users)

    def _notify_room(self, room, build):
        for w in room.watchers:
            if w.state == "active":
                w.queue.put_nowait((build, "active"))

    async def _pump_notifies(self, w):
        """One NOTIFY at a time per subscription (the next waits for the previous one's answer)."""
        ua = self.ua
        while w.state == "active":
            left = w.expires_at - time.monotonic()
            try:
                build, substate = await asyncio.wait_for(w.queue.get(), max(left, 0.01))
            except asyncio.TimeoutError:
                if time.monotonic() < w.expires_at:
                    continue
                build, substate = self._full_builder(w.room), "terminated;reason=timeout"
            if substate == "active":
                substate = f"active;expires={max(int(w.expires_at - time.monotonic()), 0)}"
            w.version += 1
            w.local_cseq += 1
            hdrs = [("From", f"<{w.room.uri}>;tag={w.local_tag}"),
                    ("To", f"<{w.remote_uri}>;tag={w.remote_tag}"),
                    ("Call-ID", w.call_id), ("CSeq", f"{w.local_cseq} NOTIFY"), ("Max-Forwards", "70")]
            hdrs += [("Route", rr) for rr in w.route_set]
            hdrs += [("Contact", ua.contact_value), ("Event", "conference"), ("Subscription-State", substate)]
            body = b""
            if build is not None:
                body = build(w.version)
                hdrs.append(("Content-Type", CONF_INFO_TYPE))
            req = ua._request("NOTIFY", w.remote_target or f"{w.remote_uri}", hdrs, body)
            resp = await ua._client_transaction(req, w.dest())
            w.sent.append((req, resp.status if resp else 408))
            if substate.startswith("terminated"):
                w.state = "terminated"
            elif resp is None or resp.status >= 300:
                # RFC 6665 4.2.2: a failure response (or none) to NOTIFY ends the subscription
                w.state = "terminated"
                if resp is not None and resp.status != 481:
                    self.violations.append(f"NOTIFY to {w.remote_uri} answered {resp.status}")
