"""Benchmark: grow and clean 10,000 × 64 hair strands (Make-A-Character §2.5).

Run from the repository root::

    PYTHONPATH=. python benchmarks/hair.py                 # full run, writes the docs tables
    PYTHONPATH=. python benchmarks/hair.py --quick         # 2,000 strands, still checks answers
    PYTHONPATH=. python benchmarks/hair.py --device gpu    # on the GPU

The workload is a procedural style on the default template head (the head's signed distance
grid is built once beforehand and not timed): :func:`machlib.hair.grow_style` then
:func:`machlib.hair.cleanup_strands` (short, penetrating and outlier strands removed, Laplacian
smoothing, uniform resampling to 64 points). Two growth methods run side by side in one process:

* **every strand**: each of the 10,000 strands integrated (RK2 with collision and occupancy);
* **guides**: 1,000 guide strands integrated, the other strands interpolated from their nearest
  guides, then curled and collided strand by strand (``grow_style(..., guides=1000)``).

Compile time (the first call minus a warm call) is reported apart from the warm time (median of
``--repeats`` calls); a later style at the same shapes reuses the compiled programs, so its
compile time reads about 0. Answers are checked first: no point inside the head, every strand has 64 points, the
guided strands keep the lengths of the full integration and lie close to it.
Target (issue 4): grow + clean 10k × 64 in ≤ 2 s on 2 CPU cores, compile apart.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

_HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(_HERE))
sys.path.insert(0, str(_HERE.parent))

import _common as C  # noqa: E402

DEVICE = C.select_device()  # before JAX is imported
import jax  # noqa: E402
import numpy as np  # noqa: E402

from machlib.geometry import default_template  # noqa: E402
from machlib.hair import HAIR_STYLES, cleanup_strands, grow_style, head_sdf_grid, sdf_lookup  # noqa: E402

TARGET_S = 2.0


def arc_length(points) -> np.ndarray:
    return np.linalg.norm(np.diff(np.asarray(points, np.float64), axis=1), axis=2).sum(1)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", choices=("cpu", "gpu"), default="cpu")
    p.add_argument("--quick", action="store_true", help="2,000 strands, one repeat")
    p.add_argument("--styles", default="bob,long curly", help="comma-separated styles (default bob,long curly)")
    p.add_argument("--strands", type=int, default=10000)
    p.add_argument("--points", type=int, default=64)
    p.add_argument("--guides", type=int, default=1000)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--out", help="write the Markdown table here")
    p.add_argument("--rst", help="write the reStructuredText table here")
    args = p.parse_args(argv)
    n = 2000 if args.quick else args.strands
    guides = max(1, args.guides * n // args.strands)
    repeats = 1 if args.quick else args.repeats
    info = C.machine_info()
    print(f"{info['cpu']} · {jax.default_backend()} · {info['date']}")
    template = default_template()
    sdf = head_sdf_grid(template.mesh)
    key = jax.random.key(0)
    rows = []
    for name in args.styles.split(","):
        style = HAIR_STYLES[name.strip()]
        results = {}
        for label, g in (("every strand", None), (f"{guides} guides", guides)):
            def grow():
                return grow_style(key, style, template, n_strands=n, n_points=args.points, sdf=sdf, guides=g)

            def clean(s):
                return cleanup_strands(s, sdf=sdf, n_points=args.points)

            t_grow0, grown = C.timed(grow)
            t_clean0, cleaned = C.timed(lambda: clean(grown))
            grow_times, grown = C.repeat(grow, repeats)
            clean_times, cleaned = C.repeat(lambda: clean(grown), repeats)
            results[label] = (grown, cleaned)
            tg, tc = C.median(grow_times), C.median(clean_times)
            rows.append((style.name, label, max(0.0, t_grow0 - tg + t_clean0 - tc), tg, tc, tg + tc, cleaned))
        # answers first
        for label, (grown, cleaned) in results.items():
            pts = np.asarray(cleaned.strands.points)
            C.check(pts.shape[1:] == (args.points, 3), f"{style.name} / {label}: {args.points} points per strand")
            d = np.asarray(sdf_lookup(sdf, pts[:, 1:].reshape(-1, 3)))
            C.check(d.min() > -1e-3, f"{style.name} / {label}: no point inside the head (min sdf {d.min():.2e} m)")
            C.check(cleaned.removed_fraction < 0.05, f"{style.name} / {label}: clean-up removed "
                                                     f"{100 * cleaned.removed_fraction:.2f}% (< 5%)")
        full, guided = (results[k][0] for k in results)
        lf, lg = np.median(arc_length(full.points)), np.median(arc_length(guided.points))
        C.check(abs(lg - lf) < 0.1 * lf, f"{style.name}: guided median length {lg:.3f} m vs {lf:.3f} m (within 10%)")
        tip = np.median(np.linalg.norm(np.asarray(guided.points)[:, -1] - np.asarray(full.points)[:, -1], axis=1))
        C.check(tip < 0.03, f"{style.name}: guided tips within {tip * 100:.1f} cm of the full integration (< 3 cm)")

    headers = ["style", "growth", "compile (s)", "grow (s)", "clean (s)", "grow + clean (s)", f"target ≤ {TARGET_S:g} s"]
    table = [(s, lab, f"{c:.1f}", f"{g:.2f}", f"{cl:.2f}", f"**{t:.2f}**" if t <= TARGET_S else f"{t:.2f}",
              "met" if t <= TARGET_S else "missed") for s, lab, c, g, cl, t, _ in rows]
    title = (f"Hair: grow + clean {n:,} × {args.points} strands on the default template "
             f"({info['cpu']}, JAX {jax.__version__} on {jax.default_backend()}, {info['date']}; "
             f"warm times are medians of {repeats})")
    md = [f"### {title}", "", C.markdown_table(headers, table)]
    rst = [C.rst_inline(title), "", C.rst_table(headers, [[C.rst_inline(c) for c in r] for r in table])]
    C.emit_tables(md, rst, args.out, args.rst)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
