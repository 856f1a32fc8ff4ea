"""test_package.py - simplegw as an installed daemon: `make install` into a DESTDIR, the systemd
unit (systemd-analyze verify) and the man pages (mandoc -Tlint), `-u` and `-p` on the gateway
under test, and the Debian package: built from a copy of the tree, linted, installed with
dpkg -i, started as its own user the way its unit starts it (no systemd as PID 1 here), one
message each way through it, then purged with nothing left behind.

The privilege and package parts need root (dpkg, another user): without it they print a SKIP
line and pass.
"""

import asyncio
import glob
import os
import pwd
import re
import shutil
import signal
import subprocess

from harness import (SANITIZER_MARKERS, SECRET, SIP_DOMAIN, TestFailure, check, gateway_xml,
                     wait_for)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TOOLS = ("mandoc", "systemd-analyze", "dpkg-buildpackage", "lintian", "dh")
# what the package's purge must leave nowhere
PURGED = ("/etc/simplegw", "/var/lib/simplegw", "/var/log/simplegw",
          "/etc/systemd/system/multi-user.target.wants/simplegw.service",
          "/var/lib/systemd/deb-systemd-helper-enabled/simplegw.service.dsh-also",
          "/var/lib/systemd/deb-systemd-helper-enabled/multi-user.target.wants/simplegw.service")
TEST_MARK = "<!-- written by tests/e2e/test_package.py -->"

_built = {}     # test_package_build -> test_package_install_run_purge: the .deb and its tree


def skip(why):
    print(f"     SKIP: {why}", flush=True)


def clean_env(**extra):
    """The environment for a build: without the outer make's jobserver (make check runs us),
    nor the flags dpkg-buildflags sets itself."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES", "CFLAGS",
                        "CPPFLAGS", "LDFLAGS", "DESTDIR", "PREFIX")}
    env.update(extra)
    return env


async def run(*args, timeout=120, ok=True, env=None, cwd=None, user=None):
    """Runs a command; returns (status, output with stderr).  ok: fail the test on non-zero."""
    kw = {}
    if user:
        pw = pwd.getpwnam(user)
        kw = dict(user=pw.pw_uid, group=pw.pw_gid, extra_groups=[])
    proc = await asyncio.create_subprocess_exec(
        *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        env=env or clean_env(), cwd=cwd, **kw)
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), timeout)
    except asyncio.TimeoutError:
        proc.kill()
        await proc.wait()
        raise TestFailure(f"{' '.join(args)}: still running after {timeout}s")
    text = out.decode(errors="replace")
    if ok and proc.returncode != 0:
        raise TestFailure(f"{' '.join(args)}: exit status {proc.returncode}:\n{text[-4000:]}")
    return proc.returncode, text


def need_tools():
    missing = [t for t in TOOLS if not shutil.which(t)]
    check(not missing, f"{', '.join(missing)} not installed: run tools/install-deps")


def build_dir(env):
    """The BUILD directory of the gateway under test (BUILD/asan/simplegw), so that `make
    install` reuses its release build; a fresh one in the work directory otherwise."""
    asan = os.path.dirname(env.gateway_binary)
    if os.path.basename(asan) == "asan":
        return os.path.dirname(asan)
    return os.path.join(env.workdir, "build")


def status_ids(pid):
    """(Uid line, Gid line, Groups line) of /proc/PID/status, as lists of numbers."""
    ids = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, val = line.partition(":")
            if key in ("Uid", "Gid", "Groups"):
                ids[key] = [int(v) for v in val.split()]
    return ids["Uid"], ids["Gid"], ids.get("Groups", [])


def sanitizer_text(text):
    for m in SANITIZER_MARKERS:
        if m in text:
            i = text.index(m)
            return text[max(0, i - 200):i + 3000]
    return None


class Daemon:
    """A gateway started by hand (not the harness's Gateway: another user, other options),
    stderr to a log file; stop() sends SIGTERM and returns the exit status."""

    def __init__(self, logpath):
        self.logpath = logpath
        self.proc = None

    async def start(self, args, user=None, extra_env=None, journal=False):
        env = clean_env(ASAN_OPTIONS="detect_leaks=1:abort_on_error=0:exitcode=86",
                        UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:exitcode=87")
        env.update(extra_env or {})
        self.logf = open(self.logpath, "w")
        if journal:
            # what systemd sets for a unit whose stderr is the journal: that stream's device
            # and inode; here the log file stands in for the journal's socket
            st = os.fstat(self.logf.fileno())
            env["JOURNAL_STREAM"] = f"{st.st_dev}:{st.st_ino}"
        kw = {}
        if user:
            pw = pwd.getpwnam(user)
            kw = dict(user=pw.pw_uid, group=pw.pw_gid, extra_groups=[])
        # UMask=0077, as the unit says
        self.proc = await asyncio.create_subprocess_exec(
            *args, stdout=self.logf, stderr=self.logf, env=env, umask=0o077, **kw)
        return self

    def log(self):
        try:
            with open(self.logpath, errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    async def wait_log(self, pattern, timeout=15):
        rx = re.compile(pattern, re.M)
        await wait_for(lambda: rx.search(self.log()) or self.proc.returncode is not None,
                       timeout, f"gateway log /{pattern}/")
        if not rx.search(self.log()):
            raise TestFailure(f"gateway exited ({self.proc.returncode}) before logging "
                              f"/{pattern}/:\n{self.log()[-3000:]}")

    async def kill(self):
        """For a test that failed with the gateway still running."""
        if self.proc and self.proc.returncode is None:
            self.proc.kill()
            await self.proc.wait()

    async def stop(self, timeout=15):
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.proc.wait(), timeout)
            except asyncio.TimeoutError:
                self.proc.kill()
                await self.proc.wait()
                raise TestFailure(f"gateway did not exit within {timeout}s of SIGTERM")
        self.logf.close()
        report = sanitizer_text(self.log())
        check(not report, f"sanitizer report in the gateway's output:\n{report}")
        return self.proc.returncode


async def one_message_each_way(env, tag):
    """XMPP -> SIP (a sipp UAS of the peer network gets the MESSAGE), then SIP -> XMPP (a sipp
    UAC's MESSAGE reaches alice and gets the server's accepted status)."""
    uas = await env.uas().start()
    alice = await env.client("alice")
    alice.send_message(mto=f"bob@{SIP_DOMAIN}", mbody=f"to SIP {tag}", mtype="chat")
    check(await uas.wait() == 0, f"the UAS got the MESSAGE: {uas.error_text()}")
    start, _, body = uas.received()[0]
    check(start == f"MESSAGE sip:bob@{SIP_DOMAIN} SIP/2.0" and body == f"to SIP {tag}".encode(),
          f"{start} {body!r}")
    uac = env.uac(body=f"to XMPP {tag}")
    check(await uac.run() == 0, f"the MESSAGE was accepted: {uac.error_text()}")
    m = await alice.expect(lambda m: m["body"].rstrip("\r\n") == f"to XMPP {tag}", 5,
                           "the SIP MESSAGE")
    check(m["from"].bare == f"bob@{SIP_DOMAIN}", str(m["from"]))


# ---------------------------------------------------------------- make install, unit, man pages

async def test_make_install_tree(env):
    """`make install DESTDIR=…`: the binary, both man pages, the unit (its ExecStart at the
    PREFIX), the sample among the examples (never in /etc), the docs; `make uninstall` takes
    them all back.  The unit passes `systemd-analyze verify`, the pages `mandoc -Tlint`."""
    need_tools()
    dest = os.path.join(env.workdir, "dest")
    build = build_dir(env)
    await run("make", "-C", ROOT, f"BUILD={build}", "install", f"DESTDIR={dest}", timeout=170)
    prefix = dest + "/usr/local"
    want = {
        "sbin/simplegw": 0o755,
        "share/man/man8/simplegw.8": 0o644,
        "share/man/man5/simplegw.xml.5": 0o644,
        "lib/systemd/system/simplegw.service": 0o644,
        "share/doc/simplegw/examples/gateway.xml": 0o644,
        "share/doc/simplegw/README.md": 0o644,
        "share/doc/simplegw/config.md": 0o644,
        "share/doc/simplegw/operations.md": 0o644,
    }
    for rel, mode in want.items():
        path = os.path.join(prefix, rel)
        check(os.path.isfile(path), f"{rel} installed")
        got = os.stat(path).st_mode & 0o777
        check(got == mode, f"{rel}: mode {got:o}, expected {mode:o}")
    check(not os.path.exists(os.path.join(dest, "etc")), "nothing installed in /etc")
    with open(os.path.join(prefix, "lib/systemd/system/simplegw.service")) as f:
        unit = f.read()
    check("ExecStart=/usr/local/sbin/simplegw -c /etc/simplegw/gateway.xml" in unit and
          "ExecStartPre=/usr/local/sbin/simplegw -n" in unit, "the unit runs the installed binary")

    # the version the binary reports is the package's
    _, out = await run(os.path.join(prefix, "sbin/simplegw"), "-v")
    with open(os.path.join(ROOT, "debian/changelog")) as f:
        deb_version = re.match(r"simplegw \(([^)]+)\)", f.readline()).group(1)
    check(out.strip() == f"simplegw {deb_version}", f"-v says {out.strip()!r}, "
          f"debian/changelog {deb_version}")
    _, out = await run(os.path.join(prefix, "sbin/simplegw"), "-h")
    check("-u USER" in out and "-p PIDFILE" in out and "exit status" in out, out)

    # the unit as installed, its ExecStart pointed at the DESTDIR's binary (systemd-analyze
    # checks that it is executable, and that Documentation= pages exist through man)
    vdir = os.path.join(env.workdir, "verify")
    os.makedirs(vdir, exist_ok=True)
    with open(os.path.join(vdir, "simplegw.service"), "w") as f:
        f.write(unit.replace("/usr/local/sbin/simplegw", prefix + "/sbin/simplegw"))
    rc, out = await run("systemd-analyze", "verify", os.path.join(vdir, "simplegw.service"),
                        ok=False, cwd=vdir,
                        env=clean_env(MANPATH=prefix + "/share/man:", SYSTEMD_LOG_LEVEL="warning"))
    check(rc == 0 and not out.strip(), f"systemd-analyze verify: status {rc}:\n{out}")

    # warnings and errors only: STYLE notes about pages this machine lacks depend on the machine
    for page in ("simplegw.8", "simplegw.xml.5"):
        rc, out = await run("mandoc", "-Tlint", "-Wwarning", os.path.join(ROOT, "docs/man", page),
                            ok=False)
        check(rc == 0 and not out.strip(), f"mandoc -Tlint {page}:\n{out}")

    await run("make", "-C", ROOT, f"BUILD={build}", "uninstall", f"DESTDIR={dest}")
    left = [os.path.join(d, f) for d, _, fs in os.walk(dest) for f in fs]
    check(not left, f"make uninstall left {left}")


# ---------------------------------------------------------------- -u and -p

async def test_privilege_drop_and_pid_file(env):
    """`-u nobody -p FILE` as root: the ports are bound as root, then /proc says every uid and
    gid is nobody's with no other group; the state database and its -wal and -shm belong to
    nobody; the pid file holds the pid, a stale one (naming a live process that holds no lock)
    is replaced, a second instance with the same file refuses (status 1) while the first runs,
    and the file is gone after a clean exit (status 0); the gateway then started as nobody
    opens the database the root-started one made.  An unknown user, root, and -u without root
    are refused before anything starts."""
    if os.geteuid() != 0:
        skip("-u needs root")
        return
    nobody = pwd.getpwnam("nobody")
    os.chmod(env.workdir, 0o711)       # nobody reaches its own directories below
    base = os.path.join(env.workdir, "privdrop")
    state, run_dir = os.path.join(base, "state"), os.path.join(base, "run")
    os.makedirs(state)
    os.makedirs(run_dir)
    os.chmod(base, 0o755)
    for d in (state, run_dir):
        os.chown(d, nobody.pw_uid, nobody.pw_gid)
    conf = os.path.join(base, "gateway.xml")
    xml = gateway_xml(env).replace(
        "<sip ", f'<presence database="{state}/presence.db"/>\n  <sip ', 1)
    with open(conf, "w") as f:
        f.write(xml)
    with open(os.path.join(base, "secret"), "w") as f:
        f.write(SECRET + "\n")
    os.chmod(os.path.join(base, "secret"), 0o600)
    pidfile = os.path.join(run_dir, "simplegw.pid")
    gw = env.gateway_binary

    rc, out = await run(gw, "-u", "no-such-user-here", "-c", conf, ok=False)
    check(rc == 1 and "no-such-user-here: no such user" in out, f"unknown user: {rc} {out}")
    rc, out = await run(gw, "-u", "root", "-c", conf, ok=False)
    check(rc == 1 and "that is root" in out, f"-u root: {rc} {out}")
    try:
        rc, out = await run(gw, "-u", "daemon", "-c", conf, ok=False, user="nobody")
        check(rc == 1 and "needs root" in out, f"-u without root: {rc} {out}")
    except PermissionError:
        skip(f"-u without root: nobody may not run {gw}")

    # a stale pid file: pid 1 is alive, but no simplegw holds the file's lock
    with open(pidfile, "w") as f:
        f.write("1\n")
    d = Daemon(os.path.join(base, "gateway.log"))
    try:
        await d.start([gw, "-c", conf, "-u", "nobody", "-p", pidfile],
                      extra_env={"JOURNAL_STREAM": "1:2"})
        await running_as_nobody(env, d, gw, conf, pidfile, state, nobody)
    finally:
        await d.kill()
    check(not os.path.exists(pidfile), "the pid file is removed at exit")

    # what the root-started gateway left is the user's: started as nobody from the outset (as a
    # unit with User= would), it opens the same database
    os.chown(os.path.join(base, "secret"), nobody.pw_uid, nobody.pw_gid)
    d = Daemon(os.path.join(base, "gateway-as-nobody.log"))
    try:
        await d.start([gw, "-c", conf], user="nobody")
        await d.wait_log(r"component \S+: connected")
        rc = await d.stop()
        check(rc == 0, f"exit status 0 after SIGTERM, got {rc}:\n{d.log()[-2000:]}")
        errors = re.findall(r"^\S+ error .*", d.log(), re.M)
        check(not errors, f"the database is usable by nobody: {errors[:5]}")
    finally:
        await d.kill()


async def running_as_nobody(env, d, gw, conf, pidfile, state, nobody):
    await d.wait_log(r"component \S+: connected")
    log = d.log()
    check(re.search(r"pid file \S+: stale \(pid 1, no simplegw holds it\): replaced", log),
          log[-2000:])
    check(re.search(r"running as nobody \(uid \d+, gid \d+\)", log), log[-2000:])
    # JOURNAL_STREAM that is not our stderr: lines keep their own time stamps
    check(re.search(r"^\d{4}-\d\d-\d\dT[0-9:.]+Z notice gw_run: ", log, re.M), log[-2000:])
    pid = d.proc.pid
    with open(pidfile) as f:
        check(f.read() == f"{pid}\n", "the pid file holds the gateway's pid")
    uid, gid, groups = status_ids(pid)
    check(uid == [nobody.pw_uid] * 4 and gid == [nobody.pw_gid] * 4,
          f"Uid {uid} Gid {gid}: every id is nobody's")
    check(groups in ([], [nobody.pw_gid]), f"no supplementary group kept: {groups}")
    for suffix in ("", "-wal", "-shm"):
        st = os.stat(f"{state}/presence.db{suffix}")
        check(st.st_uid == nobody.pw_uid and st.st_mode & 0o077 == 0,
              f"presence.db{suffix}: uid {st.st_uid}, mode {st.st_mode & 0o777:o}")

    # a second instance with the same pid file refuses before it binds anything
    rc, out = await run(gw, "-c", conf, "-p", pidfile, ok=False)
    check(rc == 1 and f"held by a running simplegw (pid {pid})" in out, f"second: {rc} {out}")
    with open(pidfile) as f:
        check(f.read() == f"{pid}\n", "the refused instance left the pid file alone")

    await one_message_each_way(env, "through -u")
    for c in env.clients:
        await c.logout()
    env.clients = []
    rc = await d.stop()
    check(rc == 0, f"exit status 0 after SIGTERM, got {rc}:\n{d.log()[-2000:]}")
    errors = re.findall(r"^(?:\S+ |<3>)error .*", d.log(), re.M)
    check(not errors, f"no error logged: {errors[:5]}")


# ---------------------------------------------------------------- the Debian package

def copy_tree(dst):
    """The tree as it is (tracked files and new ones, ignored ones left out: build*/), or, out of
    a git work tree, everything but build directories."""
    os.makedirs(dst)
    try:
        files = subprocess.run(
            ["git", "-C", ROOT, "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            check=True, capture_output=True).stdout.decode().split("\0")
    except (subprocess.CalledProcessError, FileNotFoundError):
        files = []
        for d, dirs, fs in os.walk(ROOT):
            dirs[:] = [x for x in dirs if x not in (".git", "__pycache__") and
                       not (d == ROOT and x.startswith("build"))]
            files += [os.path.relpath(os.path.join(d, f), ROOT) for f in fs]
    for rel in filter(None, files):
        src = os.path.join(ROOT, rel)
        if not os.path.lexists(src):
            continue        # deleted in the work tree, not yet in the index
        os.makedirs(os.path.join(dst, os.path.dirname(rel)), exist_ok=True)
        shutil.copy2(src, os.path.join(dst, rel), follow_symlinks=False)


def dpkg_status():
    """simplegw's dpkg status ("install ok installed", "deinstall ok config-files"...), or ""
    when dpkg knows nothing of it."""
    r = subprocess.run(["dpkg-query", "-W", "-f", "${Status}", "simplegw"],
                       capture_output=True, text=True)
    return r.stdout.strip() if r.returncode == 0 and "not-installed" not in r.stdout else ""


async def test_package_build(env):
    """dpkg-buildpackage -b from a copy of the tree (outputs beside the copy, in the work
    directory), then lintian on the result: no error, no warning."""
    if os.geteuid() != 0:
        skip("the package is built, installed and purged as root")
        return
    need_tools()
    top = os.path.join(env.workdir, "pkg")
    src = os.path.join(top, "simplegw")
    copy_tree(src)
    rc, out = await run("dpkg-buildpackage", "-b", "-us", "-uc", cwd=src, timeout=175,
                        env=clean_env(DEB_BUILD_OPTIONS="nocheck parallel=2"))
    with open(os.path.join(top, "build.log"), "w") as f:
        f.write(out)
    debs = glob.glob(os.path.join(top, "simplegw_*.deb"))
    changes = glob.glob(os.path.join(top, "simplegw_*.changes"))
    check(len(debs) == 1 and len(changes) == 1, f"one package built: {os.listdir(top)}")
    check(re.search(r"-D_FORTIFY_SOURCE=2 .*-fstack-protector-strong", out),
          "dpkg-buildflags' hardening reached the compiler")
    rc, out = await run("lintian", "--allow-root", "--fail-on", "error,warning",
                        "--no-tag-display-limit", changes[0], ok=False, timeout=120)
    with open(os.path.join(top, "lintian.log"), "w") as f:
        f.write(out)
    bad = [l for l in out.splitlines() if l[:2] in ("E:", "W:")]
    check(rc == 0 and not bad, f"lintian: status {rc}:\n{out[-3000:]}")
    _built["deb"] = debs[0]


async def test_package_install_run_purge(env):
    """dpkg -i: the simplegw user exists, its state directory is its own, the unit is enabled
    (the multi-user.target.wants link) and passes systemd-analyze verify as installed; with a
    gateway file in /etc/simplegw the gateway runs as the unit runs it (user simplegw, UMask
    0077, stderr as the journal's stream: lines without time stamps, with <N> priorities), one
    message each way; SIGTERM ends it with status 0; dpkg --purge then leaves none of the
    package's files, nor /etc/simplegw, /var/lib/simplegw, /var/log/simplegw, nor the unit's
    links.  The simplegw account stays, as debian/README.Debian explains."""
    if os.geteuid() != 0:
        skip("the package is built, installed and purged as root")
        return
    check("deb" in _built, "test_package_build built the package")
    if dpkg_status():
        try:
            with open("/etc/simplegw/gateway.xml") as f:
                ours = TEST_MARK in f.read()
        except FileNotFoundError:
            ours = True
        check(ours, "simplegw is installed and configured on this machine: not touching it")
        await run("dpkg", "--purge", "simplegw")        # what an earlier run left

    d, paths = None, []
    try:
        await run("dpkg", "-i", _built["deb"], timeout=60)
        _, listing = await run("dpkg", "-L", "simplegw")
        paths[:] = [p for p in listing.splitlines() if p.startswith("/")]
        pw = pwd.getpwnam("simplegw")
        check(pw.pw_dir == "/var/lib/simplegw" and pw.pw_shell in ("/usr/sbin/nologin",
                                                                   "/bin/false"),
              f"system user simplegw: home {pw.pw_dir}, shell {pw.pw_shell}")
        st = os.stat("/var/lib/simplegw")
        check(st.st_uid == pw.pw_uid and st.st_mode & 0o777 == 0o750,
              f"/var/lib/simplegw: uid {st.st_uid}, mode {st.st_mode & 0o777:o}")
        wants = "/etc/systemd/system/multi-user.target.wants/simplegw.service"
        check(os.path.islink(wants) and
              os.readlink(wants) == "/lib/systemd/system/simplegw.service",
              f"the unit is enabled: {wants}")
        check(not os.path.exists("/etc/simplegw/gateway.xml"),
              "no gateway file installed: the unit's ConditionPathExists keeps it stopped")
        rc, out = await run("systemd-analyze", "verify", "/lib/systemd/system/simplegw.service",
                            ok=False, cwd="/", env=clean_env(SYSTEMD_LOG_LEVEL="warning"))
        check(rc == 0 and not out.strip(), f"systemd-analyze verify (installed): {rc}:\n{out}")
        with open("/lib/systemd/system/simplegw.service") as f:
            unit = f.read()
        check("User=simplegw" in unit and
              "ExecStart=/usr/sbin/simplegw -c /etc/simplegw/gateway.xml" in unit,
              "the installed unit runs /usr/sbin/simplegw as simplegw")

        # configured as an operator would: the gateway file, its secret owned by the user
        xml = gateway_xml(env, log_level="info").replace(
            "<sip ", '<presence database="/var/lib/simplegw/presence.db"/>\n  <sip ', 1)
        with open("/etc/simplegw/gateway.xml", "w") as f:
            f.write(xml.replace("?>\n", "?>\n" + TEST_MARK + "\n", 1))
        with open("/etc/simplegw/secret", "w") as f:
            f.write(SECRET + "\n")
        os.chown("/etc/simplegw/secret", pw.pw_uid, pw.pw_gid)
        os.chmod("/etc/simplegw/secret", 0o600)

        # ExecStartPre, then ExecStart, as User=simplegw
        rc, out = await run("/usr/sbin/simplegw", "-n", "-c", "/etc/simplegw/gateway.xml",
                            ok=False, user="simplegw")
        check(rc == 0 and out.strip() == "configuration OK", f"ExecStartPre: {rc} {out}")
        d = Daemon(os.path.join(env.workdir, "packaged-gateway.log"))
        await d.start(["/usr/sbin/simplegw", "-c", "/etc/simplegw/gateway.xml"],
                      user="simplegw", journal=True)
        await d.wait_log(r"component \S+: connected")
        uid, gid, _ = status_ids(d.proc.pid)
        check(uid == [pw.pw_uid] * 4 and gid == [pw.pw_gid] * 4, f"runs as simplegw: {uid} {gid}")
        log = d.log()
        check(re.search(r"^<5>notice gw_run: simplegw serving ", log, re.M) and
              not re.search(r"^\d{4}-\d\d-\d\dT", log, re.M),
              f"journal lines: a priority, no time stamp:\n{log[:1500]}")
        await one_message_each_way(env, "through the package")
        for c in env.clients:
            await c.logout()
        env.clients = []
        st = os.stat("/var/lib/simplegw/presence.db")
        check(st.st_uid == pw.pw_uid and st.st_mode & 0o777 == 0o600,
              f"presence.db: uid {st.st_uid}, mode {st.st_mode & 0o777:o}")
        rc = await d.stop()
        check(rc == 0, f"exit status 0 after SIGTERM, got {rc}:\n{d.log()[-2000:]}")
        errors = re.findall(r"^(?:\S+ |<3>)error .*", d.log(), re.M)
        check(not errors, f"no error logged: {errors[:5]}")
    finally:
        if d:
            await d.kill()
        await run("dpkg", "--purge", "simplegw", timeout=60, ok=False)

    check(not dpkg_status(), f"dpkg still knows simplegw: {dpkg_status()}")
    left = [p for p in paths if os.path.lexists(p) and not os.path.isdir(p)]
    left += [p for p in paths if "simplegw" in p and os.path.lexists(p)]
    left += [p for p in PURGED if os.path.lexists(p)]
    check(not left, f"left after purge: {sorted(set(left))}")
    pwd.getpwnam("simplegw")      # kept on purge, on purpose (debian/README.Debian)
