"""Regenerate machlib/data/template_landmarks.json: the UV coordinate of each of MediaPipe's
478 dense landmarks on the procedural template head.

Renders the textured template frontally, detects the landmarks on the render with MediaPipe
FaceMesh and maps them back to the surface (see machlib.geometry.build_landmark_table).

    python scripts/make_template_landmarks.py [--check]
"""

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from machlib.geometry import build_landmark_table

PATH = Path(__file__).resolve().parent.parent / "machlib" / "data" / "template_landmarks.json"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="compare with the stored table instead of writing")
    args = ap.parse_args()
    table = build_landmark_table()
    if args.check:
        old = json.loads(PATH.read_text())
        a = np.array([e["uv"] for e in old["landmarks"]])
        b = np.array([e["uv"] for e in table["landmarks"]])
        err = np.abs(a - b).max()
        print(f"max |Δuv| = {err:.2e}")
        return 0 if err < 1e-3 else 1
    head = {k: v for k, v in table.items() if k != "landmarks"}
    rows = ",\n".join("  " + json.dumps(e) for e in table["landmarks"])
    PATH.write_text(json.dumps(head)[:-1] + ', "landmarks": [\n' + rows + "\n]}\n")
    print(f"wrote {PATH}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
