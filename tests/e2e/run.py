#!/usr/bin/python3
"""run.py - runs the end-to-end tests: every `async def test_*(env)` in tests/e2e/test_*.py.

Each module runs once per XMPP server in its XMPP_SERVERS (default ("prosody",); a key of
harness.XMPP_SERVERS), each time with its own server (components from the module's COMPONENTS
list, users from USERS), env.xmpp.  A test function may narrow the list with an xmpp_servers
attribute (see harness.xmpp_servers).  Results are named module.test for Prosody and
module.test[ejabberd] for the others.  Each test gets fresh gateways, clients and sipp
instances, and fails if a gateway leaves a sanitizer report, exits non-zero on SIGTERM, or the
test's own checks fail.  Exit status 0 only if all passed.
"""

import argparse
import asyncio
import importlib.util
import inspect
import logging
import os
import shutil
import sys
import tempfile
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

TEST_TIMEOUT = 180


def test_name(modname, name, server):
    """The name a result is reported under: Prosody's keep the names from before ejabberd."""
    return f"{modname}.{name}" if server == "prosody" else f"{modname}.{name}[{server}]"


def load_modules(only, servers):
    """(module name, module, XMPP server, [(test name, function)]) for each module and each server
    it runs against (of `servers` when given), with the tests whose reported name contains one of
    `only` (all when empty)."""
    here = os.path.dirname(os.path.abspath(__file__))
    for name in sorted(os.listdir(here)):
        if not (name.startswith("test_") and name.endswith(".py")):
            continue
        spec = importlib.util.spec_from_file_location(name[:-3], os.path.join(here, name))
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        funcs = [(n, f) for n, f in inspect.getmembers(mod, inspect.iscoroutinefunction)
                 if n.startswith("test_")]
        funcs.sort(key=lambda t: t[1].__code__.co_firstlineno)
        for server in getattr(mod, "XMPP_SERVERS", ("prosody",)):
            if server not in harness.XMPP_SERVERS:
                raise SystemExit(f"{name}: unknown XMPP server {server!r} in XMPP_SERVERS")
            if servers and server not in servers:
                continue
            tests = [(n, f) for n, f in funcs
                     if server in getattr(f, "xmpp_servers", (server,))
                     and (not only or any(o in test_name(name[:-3], n, server) for o in only))]
            if tests:
                yield name[:-3], mod, server, tests


async def run_module(gateway, modname, mod, server, tests, keep):
    results = []
    suffix = "" if server == "prosody" else f"-{server}"
    workdir = tempfile.mkdtemp(prefix=f"simplegw-e2e-{modname}{suffix}-")
    env = harness.Env(gateway, workdir, getattr(mod, "COMPONENTS", (harness.SIP_DOMAIN,)),
                      getattr(mod, "USERS", None), xmpp=server)
    try:
        await env.start()
    except Exception as e:  # noqa: BLE001
        for name, _ in tests:
            results.append((test_name(modname, name, server), False, 0.0,
                            f"environment failed to start: {e}"))
        await env.stop()
        print(f"FAIL {modname} [{server}]: environment failed to start: {e}", flush=True)
        return results
    if server != "prosody":
        print(f"     ({modname}: {server} started in {env.xmpp.started_in:.1f}s)", flush=True)
    for name, fn in tests:
        name = test_name(modname, name, server)
        t0 = time.monotonic()
        ok, detail = True, ""
        try:
            await asyncio.wait_for(fn(env), TEST_TIMEOUT)
        except Exception:  # noqa: BLE001
            ok, detail = False, traceback.format_exc(limit=6)
        problems = await env.cleanup()
        if problems:
            ok = False
            detail += "\n".join(problems)
        dt = time.monotonic() - t0
        print(f"{'PASS' if ok else 'FAIL'} {name} ({dt:.1f}s)", flush=True)
        if not ok:
            print("    " + detail.replace("\n", "\n    "), flush=True)
        results.append((name, ok, dt, detail))
    await env.stop()
    if keep or not all(ok for _, ok, _, _ in results):
        print(f"    logs kept in {workdir}", flush=True)
    else:
        shutil.rmtree(workdir, ignore_errors=True)
    return results


async def main_async(args):
    results = []
    for modname, mod, server, tests in load_modules(args.only, args.xmpp):
        results += await run_module(os.path.abspath(args.gateway), modname, mod, server, tests,
                                    args.keep)
    failed = [r for r in results if not r[1]]
    print(f"\n{len(results) - len(failed)} passed, {len(failed)} failed", flush=True)
    for name, _, _, _ in failed:
        print(f"  FAILED {name}")
    return 1 if failed or not results else 0


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--gateway", required=True, help="the simplegw binary under test")
    ap.add_argument("--keep", action="store_true", help="keep the logs of passing tests too")
    ap.add_argument("--xmpp", action="append", choices=sorted(harness.XMPP_SERVERS),
                    help="run only against this XMPP server (repeatable; default: every server "
                         "each module lists)")
    ap.add_argument("only", nargs="*",
                    help="run only tests whose module.name (module.name[server]) contains one "
                         "of these")
    args = ap.parse_args()
    logging.basicConfig(level=logging.CRITICAL)
    servers = args.xmpp or harness.XMPP_SERVERS
    missing = [tool for tool in ("sipp",) if not shutil.which(tool)]
    if "prosody" in servers and not shutil.which("prosody"):
        missing.append("prosody")
    if "ejabberd" in servers and not (shutil.which("erl") and harness.ejabberd_libs()):
        missing.append("ejabberd")
    if missing:
        print(f"{', '.join(missing)} not installed: run tools/install-deps", file=sys.stderr)
        return 2
    return asyncio.run(main_async(args))


if __name__ == "__main__":
    sys.exit(main())
