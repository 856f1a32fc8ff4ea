"""rls_peer.py - the benchmark's SIP peer as a resource list server too (RFC 4662, RFC 4826), for
bench/authz.py's mode "rls" (<peer><rls xcap-root/>): an XCAP server the gateway stores each XMPP
watcher's rls-services document on, and a notifier that answers SUBSCRIBEs to the services those
documents name as Kamailio's rls module does toward the gateway:

  - XcapStore: GET (as tests/e2e/test_authz.py's XcapServer), PUT (201 created / 200 replaced,
    with an ETag; If-Match and If-None-Match honoured; an rls-services document must be
    application/rls-services+xml, well formed, and its service URIs unique across documents, else
    415 / 409) and DELETE; the services of the rls-services documents are indexed by URI;
  - RlsNotifier (bench/presence.py's Notifier): a SUBSCRIBE whose Request-URI is a stored service
    gets 200 with Require: eventlist (421 without Supported: eventlist, 406 without
    multipart/related and application/rlmi+xml in Accept, 404 for a simplegw-list.* URI nobody
    stored) and a full-state multipart/related NOTIFY with an RLMI root: every member, active with
    the presentity's current PIDF; a refresh reads the list again and notifies full state; a
    presence change of a presentity sends one partial-state NOTIFY (that resource only, the next
    version) in every list dialog holding it.  Any other SUBSCRIBE is an ordinary presentity's,
    handled by Notifier as before, so a gateway that falls back to a dialog per contact still works
    (and shows in the counts).

A change costs one NOTIFY per list dialog holding the presentity: the presentity's PIDF part is
encoded once per change and shared, each dialog adds only its small RLMI root, so W = 100 list
dialogs cost well under a millisecond of Python per change.
"""

import asyncio
import itertools
import re
import time
import uuid
import xml.etree.ElementTree as ET
from xml.sax.saxutils import escape

import presence
from harness import SIP_DOMAIN
from presence import Dialog, Notifier, hget, uri_of
from test_authz import XcapServer

RLS_SERVICES_CT = "application/rls-services+xml"
RLS_NS = "urn:ietf:params:xml:ns:rls-services"
RL_NS = "urn:ietf:params:xml:ns:resource-lists"
LIST_PREFIX = "simplegw-list."     # the gateway's list URIs (<rls service>, its default)
BOUNDARY = b"simplegw-bench-rls-7d1f0c"   # occurs in no PIDF the benchmark sends
ESC_ATTR = {'"': "&quot;"}


def service_uris(body):
    """{service URI: [member URIs]} of an rls-services document (RFC 4826: <service uri><list>
    with <entry uri>, nested lists flattened); raises ValueError if it is not one."""
    try:
        root = ET.fromstring(body)
    except ET.ParseError as e:
        raise ValueError(f"not well formed: {e}") from None
    if root.tag != f"{{{RLS_NS}}}rls-services":
        raise ValueError(f"root element {root.tag}")
    out = {}
    for svc in root.findall(f"{{{RLS_NS}}}service"):
        uri = svc.get("uri")
        if not uri or uri in out:
            raise ValueError(f"service without a URI or twice: {uri!r}")
        members = []
        for lst in svc.findall(f"{{{RLS_NS}}}list"):
            for e in lst.iter(f"{{{RL_NS}}}entry"):
                if e.get("uri") and e.get("uri") not in members:
                    members.append(e.get("uri"))
        out[uri] = members
    return out


class XcapStore(XcapServer):
    """An XCAP server holding any document: GET, PUT, DELETE (one request per connection, as the
    gateway sends Connection: close)."""

    def __init__(self):
        super().__init__()
        self.ctypes = {}        # path -> Content-Type given at PUT
        self.writes = []        # (method, path, status)
        self.services = {}      # service URI -> [member URIs], from the rls-services documents
        self.service_path = {}  # service URI -> path of the document that holds it

    def handle(self, method, path, hdrs, body):
        doc = self.docs.get(path)
        if method == "GET":
            inm = hdrs.get("if-none-match")
            if not doc:
                status, extra, out = 404, "", b""
            elif inm == doc[0]:
                status, extra, out = 304, f"ETag: {doc[0]}\r\n", b""
            else:
                ct = self.ctypes.get(path, "application/auth-policy+xml")
                status, extra, out = 200, f"ETag: {doc[0]}\r\nContent-Type: {ct}\r\n", doc[1].encode()
            self.requests.append((path, inm, status))
            return status, extra, out
        if method not in ("PUT", "DELETE"):
            return 405, "Allow: GET, PUT, DELETE\r\n", b""
        status, extra, out = self._write(method, path, hdrs, body, doc)
        self.writes.append((method, path, status))
        return status, extra, out

    def _write(self, method, path, hdrs, body, doc):
        im, inm = hdrs.get("if-match"), hdrs.get("if-none-match")
        if (im and (not doc or (im != "*" and im != doc[0]))) or (inm == "*" and doc):
            return 412, "", b""
        is_rls = path.startswith("/xcap-root/rls-services/")
        if method == "DELETE":
            if not doc:
                return 404, "", b""
            del self.docs[path]
            self.ctypes.pop(path, None)
            if is_rls:
                self._index(path, {})
            return 200, "", b""
        ct = hdrs.get("content-type", "").split(";")[0].strip().lower()
        services = {}
        if is_rls:
            if ct != RLS_SERVICES_CT:
                return 415, "", b""
            try:
                services = service_uris(body)
            except ValueError:
                return 409, "Content-Type: application/xcap-error+xml\r\n", \
                    b'<xcap-error xmlns="urn:ietf:params:xml:ns:xcap-error"><not-well-formed/></xcap-error>'
            taken = [u for u in services if self.service_path.get(u, path) != path]
            if taken:      # RFC 4826 3.4.5: a service URI is unique across the server
                return 409, "Content-Type: application/xcap-error+xml\r\n", \
                    (f'<xcap-error xmlns="urn:ietf:params:xml:ns:xcap-error"><uniqueness-failure>'
                     f'<exists field="rls-services/service/@uri"><alt-value>{escape(taken[0])}'
                     f'</alt-value></exists></uniqueness-failure></xcap-error>').encode()
        self.version += 1
        etag = f'"v{self.version}"'
        self.docs[path] = (etag, body.decode("utf-8", "replace"))
        self.ctypes[path] = ct
        if is_rls:
            self._index(path, services)
        return (201 if doc is None else 200), f"ETag: {etag}\r\n", b""

    def _index(self, path, services):
        for uri in [u for u, p in self.service_path.items() if p == path and u not in services]:
            del self.service_path[uri]
            del self.services[uri]
        for uri, members in services.items():
            self.service_path[uri] = path
            self.services[uri] = members


class ListDialog(Dialog):
    """A list subscription (RFC 4662): the service URI it names and the members it holds."""

    def __init__(self, *a):
        super().__init__(*a)
        self.service = self.presentity
        self.tag = self.local.rsplit("tag=", 1)[1]
        self.members = []
        self.version = 0               # of the next RLMI document (RFC 4662 5.2: from 0)
        self.expires_at = 0.0


class RlsNotifier(Notifier):
    """Notifier that is also the list server for the services stored in `store` (XcapStore)."""

    def __init__(self, port, store):
        super().__init__(port)
        self.store = store
        self.lists = {}                # Call-ID -> ListDialog
        self.by_member = {}            # presentity URI -> {ListDialog: None}, in set-up order
        self.list_subscribes = 0       # list dialogs set up (also counted in self.subscribes)
        self.list_notifies = 0
        self.list_refused = {}         # status -> list SUBSCRIBEs refused
        self._iids = {}                # presentity URI -> instance id (one instance each)
        self._pidf = {}                # presentity URI -> (document str, its bytes)
        self._seq = itertools.count()

    # ---- SUBSCRIBE

    def _subscribe(self, start, hdrs, addr, key):
        ruri = uri_of(start.split(" ")[1]).split(";")[0]
        callid = hget(hdrs, "call-id")
        if callid in self.lists or ruri in self.store.services or \
                ruri.split(":", 1)[-1].startswith(LIST_PREFIX):
            self._list_subscribe(ruri, hdrs, addr, key)
        else:
            super()._subscribe(start, hdrs, addr, key)

    def _refuse(self, hdrs, addr, key, status, phrase, extra=""):
        self.list_refused[status] = self.list_refused.get(status, 0) + 1
        self._reply(hdrs, addr, key, status, phrase, extra=extra)

    def _list_subscribe(self, ruri, hdrs, addr, key):
        callid = hget(hdrs, "call-id")
        expires = int(re.match(r"\d+", hget(hdrs, "expires", "3600")).group(0))
        d = self.lists.get(callid)
        if d is None:
            if ";tag=" in hget(hdrs, "to", ""):
                self._refuse(hdrs, addr, key, 481, "Call/Transaction Does Not Exist")
                return
            if ruri not in self.store.services:
                self._refuse(hdrs, addr, key, 404, "Not Found")
                return
            supported = ",".join(v for n, v in hdrs if n in ("supported", "k")).lower()
            if "eventlist" not in re.split(r"[\s,]+", supported):
                self._refuse(hdrs, addr, key, 421, "Extension Required", "Require: eventlist\r\n")
                return
            accept = ",".join(v for n, v in hdrs if n == "accept").lower()
            if "multipart/related" not in accept or "application/rlmi+xml" not in accept:
                self._refuse(hdrs, addr, key, 406, "Not Acceptable",
                             "Accept: multipart/related, application/rlmi+xml, application/pidf+xml\r\n")
                return
            to = hget(hdrs, "to")
            d = ListDialog(callid, ruri, f"{to};tag={uuid.uuid4().hex[:12]}", hget(hdrs, "from"),
                           uri_of(hget(hdrs, "contact", "")), addr, hget(hdrs, "event", "presence"))
            self.lists[callid] = d
            self.subscribes += 1
            self.list_subscribes += 1
        elif expires:
            self.refreshes += 1
        self._reply(hdrs, addr, key, 200, "OK", to=d.local,
                    extra=f"Expires: {expires}\r\nRequire: eventlist\r\n")
        if d.ended:
            return
        if expires == 0:
            self.unsubscribes += 1
            self.unsub_cseqs.append((callid, hget(hdrs, "cseq")))
            d.ended = True
            self._hold(d, [])
            self._send(d, "terminated;reason=timeout", None, b"")
            return
        # new or refreshed: the RLS reads the list again and notifies full state
        d.expires_at = time.monotonic() + expires
        self._hold(d, self.store.services.get(d.service, []))
        self._list_notify(d, d.members, True)

    def _hold(self, d, members):
        """d now holds members (the by_member index follows)."""
        new = dict.fromkeys(members)
        for uri in d.members:
            if uri not in new:
                self.by_member.get(uri, {}).pop(d, None)
        for uri in new:
            self.by_member.setdefault(uri, {})[d] = None
        d.members = list(new)

    # ---- NOTIFY

    def _resource(self, uri):
        """(state, PIDF bytes or None) of presentity uri, as the notifier knows it."""
        doc = self.docs.get(uri)
        state = "active"
        if doc is None:
            state, doc = self.initial(uri)
            if doc:
                self.docs[uri] = doc
        if not doc:
            return state, None
        cached = self._pidf.get(uri)
        if cached is None or cached[0] is not doc:
            cached = self._pidf[uri] = (doc, doc.encode() if isinstance(doc, str) else doc)
        return state, cached[1]

    def _list_notify(self, d, uris, full):
        """One NOTIFY in list dialog d: an RLMI document of the resources uris (full or partial
        state) and one PIDF part per active instance.  Returns a future for the final status."""
        version = d.version
        d.version += 1
        n = next(self._seq)
        rlmi_cid = f"rlmi.{d.tag}.{n}@{SIP_DOMAIN}"
        res, parts = [], []
        for uri in uris:
            iid = self._iids.get(uri)
            if iid is None:
                iid = self._iids[uri] = f"i{len(self._iids)}"
            state, pidf = self._resource(uri)
            u = escape(uri, ESC_ATTR)
            if state == "active" and pidf:
                cid = f"{iid}.{d.tag}.{n}@{SIP_DOMAIN}"
                res.append(f'<resource uri="{u}"><instance id="{iid}" state="active" cid="{cid}"/>'
                           f'</resource>')
                parts.append(b"--" + BOUNDARY + b"\r\nContent-Transfer-Encoding: binary\r\n"
                             b"Content-ID: <" + cid.encode() + b">\r\n"
                             b'Content-Type: application/pidf+xml;charset="UTF-8"\r\n\r\n' + pidf + b"\r\n")
            else:
                st = state.split(";")[0]
                res.append(f'<resource uri="{u}"><instance id="{iid}" state="{st}"/></resource>')
        rlmi = (f'<?xml version="1.0" encoding="UTF-8"?>\n'
                f'<list xmlns="urn:ietf:params:xml:ns:rlmi" uri="{escape(d.service, ESC_ATTR)}" '
                f'version="{version}" fullState="{"true" if full else "false"}">'
                f'{"".join(res)}</list>\n').encode()
        body = b"".join([b"--" + BOUNDARY + b"\r\nContent-Transfer-Encoding: binary\r\n"
                         b"Content-ID: <" + rlmi_cid.encode() + b">\r\n"
                         b'Content-Type: application/rlmi+xml;charset="UTF-8"\r\n\r\n' + rlmi + b"\r\n",
                         *parts, b"--" + BOUNDARY + b"--\r\n"])
        ctype = (f'multipart/related;type="application/rlmi+xml";start="<{rlmi_cid}>";'
                 f'boundary="{BOUNDARY.decode()}"')
        left = max(0, int(d.expires_at - time.monotonic()))
        self.list_notifies += 1
        return self._send(d, f"active;expires={left}", ctype, body)

    def _send(self, d, substate, ctype, body):
        """Notifier.notify with any body type and Require: eventlist (RFC 4662 5.1)."""
        d.cseq += 1
        ctype_hdr = f"Content-Type: {ctype}\r\n" if ctype else ""
        msg = (f"NOTIFY {d.contact} SIP/2.0\r\n"
               f"Via: SIP/2.0/UDP 127.0.0.1:{self.port};branch=z9hG4bK{uuid.uuid4().hex}\r\n"
               f"Max-Forwards: 70\r\nFrom: {d.local}\r\nTo: {d.remote}\r\n"
               f"Call-ID: {d.callid}\r\nCSeq: {d.cseq} NOTIFY\r\n"
               f"Contact: <sip:127.0.0.1:{self.port}>\r\nEvent: {d.event}\r\nRequire: eventlist\r\n"
               f"Subscription-State: {substate}\r\n{ctype_hdr}"
               f"Content-Length: {len(body)}\r\n\r\n").encode() + body
        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        key = (d.callid, d.cseq)
        handle = loop.call_later(self.T1, self._retransmit, key)
        self.inflight[key] = [msg, d.addr, handle, fut, 1]
        self.notifies += 1
        self.transport.sendto(msg, d.addr)
        return fut

    def change(self, presentity, body, substate="active;expires=3600"):
        """A presence change: as Notifier.change, plus one partial-state NOTIFY in every list
        dialog holding presentity."""
        t0, n, futs = super().change(presentity, body, substate)
        for d in self.by_member.get(presentity, {}):
            if not d.ended:
                futs.append(self._list_notify(d, (presentity,), False))
                n += 1
        return t0, n, futs


class RlsRun(presence.Run):
    """presence.Run whose SIP peer is an RlsNotifier over the XcapStore `store`."""

    def __init__(self, args, workdir, initial, store):
        super().__init__(args, workdir, initial)
        self.store = store

    async def __aenter__(self):
        # Run makes its peer as presence.Notifier(port) and has no hook for another class: the
        # name stands for the list server only while this Run sets up (nothing else runs then)
        saved = presence.Notifier
        presence.Notifier = lambda port: RlsNotifier(port, self.store)
        try:
            return await super().__aenter__()
        finally:
            presence.Notifier = saved
