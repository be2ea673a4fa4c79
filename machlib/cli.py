"""Command line: ``machlib fit [IMAGE] -o OUT/``.

The CLI only parses arguments, shows progress and writes files; the work is done by
:mod:`machlib.pipeline`. Bad input prints one line ``machlib: error: ...`` and exits with 2;
nothing is written to ``OUT`` then.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

__all__ = ["main", "build_parser"]


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``machlib`` command."""
    p = argparse.ArgumentParser(prog="machlib", description="Portrait/text → animatable 3D head (Make-A-Character).")
    sub = p.add_subparsers(dest="command", required=True)
    f = sub.add_parser("fit", help="detect dense landmarks and fit head geometry and camera to a portrait")
    f.add_argument("image", nargs="?", default=None,
                   help="portrait (JPEG/PNG, RGB); default: the bundled portrait (matplotlib's grace_hopper.jpg)")
    f.add_argument("-o", "--out", default="out", help="output folder (default: out/)")
    f.add_argument("--template", help="user template mesh (.obj/.glb with UVs); needs --landmarks")
    f.add_argument("--landmarks", help="JSON landmark table of the user template")
    f.add_argument("--steps", type=int, default=300, help="optimisation steps (default 300)")
    f.add_argument("--resolution", type=int, default=256, help="triplane resolution (default 256)")
    f.add_argument("--fov", type=float, default=25.0, help="assumed vertical field of view, degrees (default 25)")
    f.add_argument("--strict", action="store_true", help="fail when the image has more than one face")
    f.add_argument("-q", "--quiet", action="store_true", help="no progress display")
    return p


def _fit(args) -> int:
    from rich.console import Console

    from . import pipeline
    from ._errors import InputError
    from ._image import default_portrait, load_image
    from .geometry import GeometryFitConfig, load_template

    console = Console(stderr=True, quiet=args.quiet)
    if (args.template is None) != (args.landmarks is None):
        raise InputError("--template and --landmarks must be given together")
    try:  # the config validates itself; its message names the rule that failed
        config = GeometryFitConfig(resolution=args.resolution, steps=args.steps)
    except ValueError as e:
        raise InputError(f"--resolution/--steps: {e}") from None
    if not 5.0 <= args.fov <= 120.0:
        raise InputError(f"--fov must be between 5 and 120 degrees, got {args.fov}")
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise InputError(f"output {out} exists and is not a folder")
    t0 = time.perf_counter()
    image = default_portrait() if args.image is None else load_image(args.image)
    template = load_template(args.template, args.landmarks) if args.template else None
    load_s = time.perf_counter() - t0
    with console.status("starting") as status:
        def progress(stage: str) -> None:
            status.update(f"[bold]{stage}[/bold]")
            console.log(f"{stage} …")

        fit = pipeline.fit_portrait(image, template=template, config=config, fov_degrees=args.fov,
                                    strict=args.strict, progress=progress)
        progress("export")
        report = pipeline.write_fit_outputs(args.out, fit, extra_timings={"load": load_s})
    rp = report["landmarks"]["reprojection_px"]
    console.print(
        f"[green]done[/green] → {str(args.out).rstrip('/')}/  reprojection mean {rp['mean']:.2f} px, max {rp['max']:.2f} px; "
        f"fit {report['timings']['fit']:.2f} s (+{report['timings']['compile']:.2f} s compile)"
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``machlib`` command; returns the exit status."""
    from ._errors import InputError, MachlibError

    args = build_parser().parse_args(argv)
    try:
        if args.command == "fit":
            return _fit(args)
    except InputError as e:
        print(f"machlib: error: {e}", file=sys.stderr)
        return 2
    except MachlibError as e:
        print(f"machlib: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("machlib: interrupted", file=sys.stderr)
        return 130
    return 1


if __name__ == "__main__":
    sys.exit(main())
