"""test_cli.py - the simplegw command itself: -n checks a file, bad files are refused with file:line, secrets and keys must be private."""

import asyncio
import datetime
import os
import shutil

from harness import SANITIZER_MARKERS, SECRET, Gateway, check, gateway_xml


async def run(env, *args):
    proc = await asyncio.create_subprocess_exec(
        env.gateway_binary, *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 20)
    return proc.returncode, out.decode(), err.decode()


def write_files(env, name, xml, secret_mode=0o600, conf_mode=0o644):
    d = os.path.join(env.workdir, name)
    os.makedirs(d, exist_ok=True)
    conf = os.path.join(d, "gateway.xml")
    with open(conf, "w") as f:
        f.write(xml)
    os.chmod(conf, conf_mode)
    secret = os.path.join(d, "secret")
    with open(secret, "w") as f:
        f.write(SECRET + "\n")
    os.chmod(secret, secret_mode)
    return conf


async def test_check_mode_accepts_a_good_file(env):
    conf = write_files(env, "good", gateway_xml(env))
    rc, out, err = await run(env, "-n", "-c", conf)
    check(rc == 0 and out.strip() == "configuration OK", f"rc={rc} out={out!r} err={err!r}")


async def test_check_mode_reports_every_error_with_file_and_line(env):
    xml = gateway_xml(env).replace(f'port="{env.gw_sip_port}"', 'port="70000"', 1)
    xml = xml.replace('<im max-body="2048"', '<im max-body="0" bogus="1"')
    conf = write_files(env, "bad", xml)
    rc, out, err = await run(env, "-n", "-c", conf)
    check(rc != 0, "a bad file is refused")
    lines = [l for l in err.splitlines() if l.startswith(conf + ":")]
    check(len(lines) >= 3, f"all errors reported, each as file:line: {err}")
    check(any("70000" in l for l in lines) and any("bogus" in l for l in lines)
          and any("max-body" in l for l in lines), err)


async def test_readable_secret_file_is_refused(env):
    conf = write_files(env, "leaky", gateway_xml(env), secret_mode=0o644)
    rc, out, err = await run(env, "-n", "-c", conf)
    check(rc != 0 and "readable by others" in err, f"rc={rc} err={err!r}")


async def test_inline_secret_needs_a_private_file(env):
    xml = gateway_xml(env).replace('secret-file="secret"', f'secret="{SECRET}"')
    conf = write_files(env, "inline", xml, conf_mode=0o644)
    rc, out, err = await run(env, "-n", "-c", conf)
    check(rc != 0, f"an inline secret in a world-readable file is refused: {err!r}")
    os.chmod(conf, 0o600)
    rc, out, err = await run(env, "-n", "-c", conf)
    check(rc == 0, f"and accepted once the file is private: {err!r}")


async def test_missing_file_and_bad_usage(env):
    rc, out, err = await run(env, "-n", "-c", os.path.join(env.workdir, "nonexistent.xml"))
    check(rc != 0 and "nonexistent.xml" in err, err)
    rc, out, err = await run(env, "-x")
    check(rc == 2 and "usage" in err, err)


async def test_wrong_secret_is_logged_and_retried(env):
    bad = Gateway(env, env.gateway_binary, gateway_xml(env))
    with open(os.path.join(bad.dir, "secret"), "w") as f:
        f.write("not-the-secret\n")
    env.gateways.append(bad)
    await bad.start(wait_up=False)
    await bad.wait_log(r"refused our secret", timeout=10)
    await bad.wait_log(r"attempt 2", timeout=10)


async def test_busy_sip_port_is_reported(env):
    """A SIP port another process holds: a clear error naming it, exit status 1, nothing leaked."""
    import socket
    busy = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    busy.bind(("127.0.0.1", env.gw_sip_port))
    try:
        conf = write_files(env, "busy", gateway_xml(env))
        rc, out, err = await run(env, "-c", conf)
        check(rc == 1, f"exit status 1, got {rc}: {err[-2000:]}")
        check(f"port {env.gw_sip_port}" in err and "in use" in err, err[-2000:])
        check("Sanitizer" not in err, f"no sanitizer report: {err[-3000:]}")
    finally:
        busy.close()


async def test_a_world_writable_file_is_refused(env):
    """Anyone could add a peer to a world-writable gateway file and be trusted at the next
    start: it is refused, with the file named."""
    conf = write_files(env, "open", gateway_xml(env), conf_mode=0o666)
    rc, out, err = await run(env, "-n", "-c", conf)
    check(rc != 0 and f"{conf}: writable by every user (mode 0666); chmod o-w it" in err,
          f"rc={rc} err={err!r}")
    os.chmod(conf, 0o664)
    rc, out, err = await run(env, "-n", "-c", conf)
    check(rc == 0, f"group-writable is the operator's choice: {err!r}")


# ---- <tls>: `-n` checks the certificate, key and CA files (tests/e2e/certs.py makes them)

def tls_files(env):
    """certs.make()'s PKI under env.workdir, plus what it does not make: {NAME: path} with
    "ca", "gw.pem", "gw.key", "expired.pem", "expired.key", "wrong.key", and
    "future.pem"/"future.key" (valid from tomorrow), "encrypted.key" (gw.key under a
    passphrase), "readable.key" (gw.key, mode 0644), "text.pem" (not PEM), "empty.pem"."""
    import certs  # python3-cryptography, as certs.py
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    d = os.path.join(env.workdir, "cli-pki")
    made = certs.make(d)
    f = {"ca": made["ca"]}
    for name in ("gw", "expired", "wrong"):
        f[name + ".pem"], f[name + ".key"] = made[name]

    def write(name, data, mode):
        path = os.path.join(d, name)
        with open(path, "wb") as out:
            out.write(data)
        os.chmod(path, mode)
        f[name] = path

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "xmpp.example")])
    now = datetime.datetime.now(datetime.timezone.utc)
    future = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
              .public_key(key.public_key()).serial_number(x509.random_serial_number())
              .not_valid_before(now + datetime.timedelta(days=1))
              .not_valid_after(now + datetime.timedelta(days=30))
              .sign(key, hashes.SHA256()))
    write("future.pem", future.public_bytes(serialization.Encoding.PEM), 0o644)
    write("future.key", key.private_bytes(serialization.Encoding.PEM,
                                          serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()), 0o600)
    with open(f["gw.key"], "rb") as k:
        gw_key = serialization.load_pem_private_key(k.read(), None)
    write("encrypted.key", gw_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"passphrase")), 0o600)
    shutil.copyfile(f["gw.key"], os.path.join(d, "readable.key"))
    os.chmod(os.path.join(d, "readable.key"), 0o644)
    f["readable.key"] = os.path.join(d, "readable.key")
    write("text.pem", b"this is not a certificate\n", 0o644)
    write("empty.pem", b"", 0o644)
    return f


def tls_gateway_xml(env, cert, key, ca):
    """gateway_xml() with a <tls> element after <sip>; returns (xml, line of <tls>)."""
    tls = f'<tls certificate="{cert}" key="{key}" ca="{ca}"/>'
    xml = gateway_xml(env).replace("</sip>", "</sip>\n  " + tls, 1)
    line = next(i for i, l in enumerate(xml.split("\n"), 1) if "<tls " in l)
    return xml, line


# (what, certificate, key, CA file, what the one message says); names are tls_files() keys,
# "missing.pem" a file that does not exist
TLS_PROBLEMS = [
    ("missing certificate", "missing.pem", "gw.key", "ca",
     "certificate {missing.pem}: cannot open: No such file or directory"),
    ("certificate not PEM", "text.pem", "gw.key", "ca",
     "certificate {text.pem}: no PEM certificate in it"),
    ("expired certificate", "expired.pem", "expired.key", "ca",
     "certificate {expired.pem} (/O=simplegw tests/CN=sip.example) has expired"),
    ("certificate not valid yet", "future.pem", "future.key", "ca",
     "certificate {future.pem} (/CN=xmpp.example) is not valid yet"),
    ("key of another certificate", "gw.pem", "wrong.key", "ca",
     "private key {wrong.key} does not match the certificate {gw.pem}"),
    ("encrypted key", "gw.pem", "encrypted.key", "ca",
     "private key {encrypted.key}: not an unencrypted PEM private key"),
    ("key readable by others", "gw.pem", "readable.key", "ca",
     "private key {readable.key}: readable or writable by others; chmod 600 it"),
    ("missing key", "gw.pem", "missing.key", "ca",
     "private key {missing.key}: cannot open: No such file or directory"),
    ("empty CA file", "gw.pem", "gw.key", "empty.pem",
     "CA file {empty.pem}: no PEM certificate in it"),
    ("expired certificate in the CA file", "gw.pem", "gw.key", "expired.pem",
     "CA file {expired.pem}: certificate 1 (/O=simplegw tests/CN=sip.example) has expired"),
]


async def test_check_mode_reports_each_certificate_problem(env):
    """Each problem of the <tls> files, alone in a file: `-n` exits non-zero with one
    file:line: message at the line of <tls>, naming the file and the problem."""
    f = tls_files(env)
    f["missing.pem"] = os.path.join(os.path.dirname(f["ca"]), "missing.pem")
    f["missing.key"] = os.path.join(os.path.dirname(f["ca"]), "missing.key")
    failures = []
    for i, (what, cert, key, ca, message) in enumerate(TLS_PROBLEMS):
        xml, line = tls_gateway_xml(env, f[cert], f[key], f[ca])
        conf = write_files(env, f"tls-{i}", xml)
        rc, out, err = await run(env, "-n", "-c", conf)
        for name, path in f.items():
            message = message.replace("{" + name + "}", path)
        want = f"{conf}:{line}: <tls>: {message}"
        located = [l for l in err.splitlines() if l.startswith(conf + ":")
                   and not l.startswith(conf + ": ")]
        if rc == 0 or "configuration OK" in out:
            failures.append(f"{what}: accepted (rc={rc}, out={out!r})")
        elif len(located) != 1 or not located[0].startswith(want):
            failures.append(f"{what}: want one line starting {want!r}, got {located!r}")
        if any(m in err for m in SANITIZER_MARKERS):
            failures.append(f"{what}: sanitizer report: {err[-2000:]}")
    check(not failures, "\n".join(failures))


async def test_check_mode_accepts_good_tls_files(env):
    """The same file with a good certificate, key and CA file: configuration OK."""
    f = tls_files(env)
    xml, _ = tls_gateway_xml(env, f["gw.pem"], f["gw.key"], f["ca"])
    conf = write_files(env, "tls-good", xml)
    rc, out, err = await run(env, "-n", "-c", conf)
    check(rc == 0 and out.strip() == "configuration OK", f"rc={rc} out={out!r} err={err!r}")


async def test_check_mode_reports_every_certificate_problem_at_once(env):
    """An expired certificate, a key of another one readable by others and an empty CA file:
    every problem in one run, each at the line of <tls>."""
    f = tls_files(env)
    wrong = os.path.join(os.path.dirname(f["ca"]), "wrong-readable.key")
    shutil.copyfile(f["wrong.key"], wrong)
    os.chmod(wrong, 0o644)
    xml, line = tls_gateway_xml(env, f["expired.pem"], wrong, f["empty.pem"])
    conf = write_files(env, "tls-all", xml)
    rc, out, err = await run(env, "-n", "-c", conf)
    located = [l for l in err.splitlines() if l.startswith(f"{conf}:{line}: <tls>: ")]
    check(rc != 0, f"refused: rc={rc} err={err!r}")
    check(len(located) == 4 and "has expired" in located[0]
          and "readable or writable by others" in located[1]
          and "does not match the certificate" in located[2]
          and "CA file" in located[3] and "no PEM certificate" in located[3],
          f"four problems at line {line}: {err!r}")
