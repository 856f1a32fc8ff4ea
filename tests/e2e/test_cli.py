"""test_cli.py - the simplegw command itself: -n checks a file, bad files are refused with file:line, secrets must be private."""

import asyncio
import os

from harness import SECRET, Gateway, check, gateway_xml


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
