#!/usr/bin/python3
"""run.py - runs the end-to-end tests: every `async def test_*(env)` in tests/e2e/test_*.py.

Each module gets its own Prosody (components from the module's COMPONENTS list); each test gets
fresh gateways, clients and sipp instances, and fails if a gateway leaves a sanitizer report,
exits non-zero on SIGTERM, or the test's own checks fail.  Exit status 0 only if all passed.
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


def load_modules(only):
    here = os.path.dirname(os.path.abspath(__file__))
    for name in sorted(os.listdir(here)):
        if not (name.startswith("test_") and name.endswith(".py")):
            continue
        spec = importlib.util.spec_from_file_location(name[:-3], os.path.join(here, name))
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        tests = [(n, f) for n, f in inspect.getmembers(mod, inspect.iscoroutinefunction)
                 if n.startswith("test_") and (not only or any(o in f"{name[:-3]}.{n}" for o in only))]
        tests.sort(key=lambda t: t[1].__code__.co_firstlineno)
        if tests:
            yield name[:-3], mod, tests


async def run_module(gateway, modname, mod, tests, keep):
    results = []
    workdir = tempfile.mkdtemp(prefix=f"simplegw-e2e-{modname}-")
    env = harness.Env(gateway, workdir, getattr(mod, "COMPONENTS", (harness.SIP_DOMAIN,)),
                      getattr(mod, "USERS", None))
    try:
        await env.start()
    except Exception as e:  # noqa: BLE001
        for name, _ in tests:
            results.append((f"{modname}.{name}", False, 0.0, f"environment failed to start: {e}"))
        await env.stop()
        return results
    for name, fn in tests:
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
        print(f"{'PASS' if ok else 'FAIL'} {modname}.{name} ({dt:.1f}s)", flush=True)
        if not ok:
            print("    " + detail.replace("\n", "\n    "), flush=True)
        results.append((f"{modname}.{name}", ok, dt, detail))
    await env.stop()
    if keep or not all(ok for _, ok, _, _ in results):
        print(f"    logs kept in {workdir}", flush=True)
    else:
        shutil.rmtree(workdir, ignore_errors=True)
    return results


async def main_async(args):
    results = []
    for modname, mod, tests in load_modules(args.only):
        results += await run_module(os.path.abspath(args.gateway), modname, mod, tests, args.keep)
    failed = [r for r in results if not r[1]]
    print(f"\n{len(results) - len(failed)} passed, {len(failed)} failed", flush=True)
    for name, _, _, _ in failed:
        print(f"  FAILED {name}")
    return 1 if failed or not results else 0


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--gateway", required=True, help="the simplegw binary under test")
    ap.add_argument("--keep", action="store_true", help="keep the logs of passing tests too")
    ap.add_argument("only", nargs="*", help="run only tests whose module.name contains one of these")
    args = ap.parse_args()
    logging.basicConfig(level=logging.CRITICAL)
    for tool in ("prosody", "sipp"):
        if not shutil.which(tool):
            print(f"{tool} is not installed: run tools/install-deps", file=sys.stderr)
            return 2
    return asyncio.run(main_async(args))


if __name__ == "__main__":
    sys.exit(main())
