"""Shared helpers of the benchmark scripts: machine description, timing, result tables.

Every benchmark follows GUIDE §4.15 / §5: check the answer first, report compile time apart,
time with ``jax.block_until_ready``, compare side by side in one run, and write a results table
(Markdown for the README/reports, reStructuredText for the Sphinx docs).
"""

from __future__ import annotations

import datetime
import os
import platform
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path

__all__ = [
    "cpu_model",
    "core_count",
    "machine_info",
    "timed",
    "repeat",
    "median",
    "markdown_table",
    "rst_table",
    "rst_inline",
    "write_text",
    "emit_tables",
    "select_device",
    "check",
    "relerr",
]


def cpu_model() -> str:
    """The CPU's model name from ``/proc/cpuinfo`` (``platform.processor()`` elsewhere)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def core_count() -> int:
    """Cores this process may run on (the affinity mask where available)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def machine_info() -> dict[str, str]:
    """Machine, date and Python version, as strings for the table header."""
    return {
        "machine": platform.platform(),
        "cpu": f"{cpu_model()} ({core_count()} cores)",
        "python": platform.python_version(),
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    }


def timed(fn: Callable[[], object]) -> tuple[float, object]:
    """Run ``fn()`` once; return ``(seconds, result)``. ``fn`` must block until its work is done
    (call ``jax.block_until_ready`` inside it for JAX)."""
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def repeat(fn: Callable[[], object], repeats: int) -> tuple[list[float], object]:
    """Run ``fn()`` ``repeats`` times; return the list of wall times and the last result."""
    times, out = [], None
    for _ in range(max(1, repeats)):
        t, out = timed(fn)
        times.append(t)
    return times, out


def median(xs: Sequence[float]) -> float:
    """The median of a non-empty sequence."""
    return float(statistics.median(xs))


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A GitHub-flavoured Markdown table."""
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def rst_inline(text: str) -> str:
    """Markdown-ish inline text (``code`` in single backticks, **bold**) as reStructuredText:
    single backticks become literals, and ``|`` outside literals is escaped (it would start a
    substitution reference)."""
    parts = str(text).split("`")
    out = []
    for i, part in enumerate(parts):
        if i % 2:  # inside `...`
            out.append(f"``{part}``")
        else:
            out.append(part.replace("\\", "\\\\").replace("|", "\\|"))
    return "".join(out)


def rst_table(headers: Sequence[str], rows: Sequence[Sequence[str]], *, widths: str = "auto") -> str:
    """A reStructuredText ``list-table`` (cells must not contain newlines)."""
    out = [".. list-table::", "   :header-rows: 1", f"   :widths: {widths}", ""]
    for row in [list(headers)] + [list(r) for r in rows]:
        for i, cell in enumerate(row):
            text = str(cell) if str(cell) else " "
            out.append(("   * - " if i == 0 else "     - ") + text)
    return "\n".join(out)


def write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` to ``path``, creating parent folders."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(text if text.endswith("\n") else text + "\n")


def emit_tables(md: Sequence[str], rst: Sequence[str], out_md, out_rst) -> None:
    """Print the Markdown report and write it (``out_md``) and its reStructuredText twin
    (``out_rst``) where those paths are given."""
    print()
    print("\n".join(md), flush=True)
    if out_md:
        write_text(out_md, "\n".join(md))
        print(f"\nwrote {out_md}")
    if out_rst:
        write_text(out_rst, "\n".join(rst))
        print(f"wrote {out_rst}")


def select_device(argv: Sequence[str] | None = None) -> str:
    """Read ``--device cpu|gpu`` ahead of the full argument parser and, for ``cpu``, pin JAX to
    the CPU. Call it before JAX is imported (the platform is fixed at import)."""
    import argparse

    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--device", choices=("cpu", "gpu"), default="cpu")
    device = pre.parse_known_args(argv)[0].device
    if device == "cpu":
        os.environ.setdefault("JAX_PLATFORMS", "cpu")  # a CPU benchmark, whatever else is installed
    return device


def check(cond: bool, what: str) -> None:
    """Print an answer check; stop the benchmark (non-zero exit) when it fails."""
    print(("  ok    " if cond else "  FAIL  ") + what, flush=True)
    if not cond:
        raise SystemExit(f"answer check failed: {what}")


def relerr(a, b) -> float:
    """Largest absolute difference relative to the largest magnitude of ``b`` (float64)."""
    import numpy as np

    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-30))
