"""Where a cold run's compilation goes: every program XLA compiles in one ``machlib`` command.

Runs a ``machlib`` command in this process with an empty persistent compilation cache (the parsed
human data and the built template are taken from ``--cache`` when given, so that only compilation
is cold) and records, for each program XLA compiles, its name, the CPU seconds of the compilation
(``time.process_time``, the figure to compare on a shared machine; the fit's programs compile
one after another here, not on two threads as in the CLI; ``make``'s previews still render on
two threads, whose compilations may overlap) and the machlib call sites that asked for it. Prints the programs over ``--big`` seconds one by one and the others grouped
by call site. Run from the repository root::

    PYTHONPATH=. python benchmarks/cold_compiles.py fit
    PYTHONPATH=. python benchmarks/cold_compiles.py make --json /tmp/compiles.json

The command's output goes to a temporary folder. The CLI's XLA flags apply
(:func:`machlib._cache.enable_compilation_cache`); set ``XLA_FLAGS`` to compare others (the
user's value of a flag wins).
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import shutil
import sys
import tempfile
import time
import traceback
from pathlib import Path


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("command", choices=("fit", "texture", "hair", "make"))
    p.add_argument("--cache", default=os.path.join(os.path.expanduser("~"), ".cache", "machlib"),
                   help="machlib cache folder whose parsed human data and built template are reused "
                        "(default ~/.cache/machlib; an empty or missing folder makes those cold too)")
    p.add_argument("--big", type=float, default=0.3, help="list programs compiling longer than this (CPU s)")
    p.add_argument("--json", help="write every program (name, CPU s, call sites) here")
    p.add_argument("--serial", action="store_true",
                   help="run the job on one thread (background stages, warm-up, pools and dispatch inline)")
    p.add_argument("--warm", action="store_true", help="then run the command again in this process (warm CPU)")
    args = p.parse_args(argv)
    if args.serial:
        _run_serially()

    tmp = Path(tempfile.mkdtemp(prefix="machlib_cold_compiles_"))
    try:
        for kind in ("human", "template"):
            src = Path(args.cache) / kind
            if src.is_dir():
                shutil.copytree(src, tmp / "xdg" / "machlib" / kind)
        os.environ["XDG_CACHE_HOME"] = str(tmp / "xdg")
        os.environ.pop("MACHLIB_CACHE_DIR", None)  # an empty XLA cache under XDG_CACHE_HOME

        from jax._src import compiler

        original = compiler.backend_compile_and_load
        log = []

        def recorded(backend, module, *a, **k):
            t = time.process_time()
            try:
                return original(backend, module, *a, **k)
            finally:
                seconds = time.process_time() - t
                frames = [f for f in traceback.extract_stack()
                          if "/machlib/" in f.filename and "site-packages" not in f.filename]
                sites = [f"{f.filename.split('/machlib/')[-1]}:{f.lineno} {f.name}" for f in frames[-3:]]
                name = str(module.operation.attributes["sym_name"]).strip('"')
                log.append({"program": name, "cpu_s": round(seconds, 4), "sites": sites})

        compiler.backend_compile_and_load = recorded
        from machlib.cli import main as machlib_main
        from machlib.geometry import _fit as fit_module

        # one compilation at a time, so that each one's process CPU time is its own
        def serial(fn, *a, key=()):
            done = fit_module.compile_program(fn, *a, key=key)
            return lambda: done

        fit_module.compile_program_async = serial

        t = time.process_time()
        rc = machlib_main([args.command, "-q", "-o", str(tmp / "out")])
        total = time.process_time() - t
        cold_programs = len(log)
        if args.warm and rc == 0:
            t = time.process_time()
            rc = machlib_main([args.command, "-q", "-o", str(tmp / "out_warm")])
            warm = (time.process_time() - t, len(log) - cold_programs)
            del log[cold_programs:]
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if rc != 0:
        print(f"machlib {args.command} exited {rc}", file=sys.stderr)
        return rc
    spent = sum(e["cpu_s"] for e in log)
    big = sorted((e for e in log if e["cpu_s"] >= args.big), key=lambda e: -e["cpu_s"])
    print(f"machlib {args.command}: {total:.1f} s CPU, {len(log)} programs compiled in {spent:.1f} s CPU; "
          f"{len(big)} over {args.big:g} s take {sum(e['cpu_s'] for e in big):.1f} s")
    if args.warm:
        print(f"the same command again in this process (warm): {warm[0]:.1f} s CPU, {warm[1]} programs compiled")
    for e in big:
        print(f"{e['cpu_s']:7.2f}  {e['program']:32s} {e['sites'][-1] if e['sites'] else ''}")
    by_site, count = collections.Counter(), collections.Counter()
    for e in log:
        if e["cpu_s"] < args.big:
            site = e["sites"][-1] if e["sites"] else "(outside machlib)"
            by_site[site] += e["cpu_s"]
            count[site] += 1
    print(f"the {sum(count.values())} smaller programs by call site:")
    for site, seconds in by_site.most_common(30):
        print(f"{seconds:7.2f}  {count[site]:4d}  {site}")
    if args.json:
        Path(args.json).write_text(json.dumps(log, indent=1))
    return 0


def _run_serially() -> None:
    """Make a ``machlib`` job run on the calling thread only (``--serial``): every
    :func:`machlib._threads.in_background` call runs at once, the thread pools of the fit's
    outputs and of ``make``'s previews run their tasks inline, the completion's warm-up (which
    only compiles ahead, on a thread) is skipped, and JAX dispatches synchronously."""
    import concurrent.futures

    import jax

    jax.config.update("jax_cpu_enable_async_dispatch", False)
    import machlib._threads
    import machlib.character._make as make_module
    import machlib.pipeline as pipeline_module
    import machlib.texture._complete as complete_module

    def inline(fn, *, name=""):
        box = {}
        try:
            box["value"] = fn()
        except BaseException as e:  # noqa: BLE001 (raised where the caller waits, as in_background does)
            box["error"] = e

        def wait(raise_error=True):
            if "error" in box and raise_error:
                raise box["error"]
            return box.get("value")

        return wait

    class InlinePool:
        def __init__(self, *a, **k):
            pass

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def submit(self, fn, *a, **k):
            future = concurrent.futures.Future()
            try:
                future.set_result(fn(*a, **k))
            except BaseException as e:  # noqa: BLE001
                future.set_exception(e)
            return future

        def map(self, fn, *iterables):
            return [fn(*x) for x in zip(*iterables)]

        def shutdown(self, *a, **k):
            pass

    machlib._threads.in_background = pipeline_module.in_background = make_module.in_background = inline
    pipeline_module.ThreadPoolExecutor = make_module.ThreadPoolExecutor = InlinePool
    complete_module.warm_up_completion = lambda *a, **k: None


if __name__ == "__main__":
    sys.exit(main())
