"""Locate the 478 MediaPipe landmarks on the human's head (machlib/data/human_landmarks.json).

Renders the default MakeHuman head from five views, runs MediaPipe FaceMesh on each and maps the
detections back to the surface (see machlib.geometry.build_human_landmark_table), then reports
how far MediaPipe lands from the table on fresh renders of other humans.

    python scripts/make_human_landmarks.py
"""

import json
from pathlib import Path

import numpy as np


def main() -> None:
    from machlib.geometry._human_landmarks import build_human_landmark_table

    table = build_human_landmark_table()
    out = Path(__file__).resolve().parent.parent / "machlib" / "data" / "human_landmarks.json"
    out.write_text(json.dumps(table, indent=None, separators=(",", ":")).replace('{"index"', '\n{"index"') + "\n")
    print(f"{out}: {len(table['landmarks'])} landmarks")

    from machlib.geometry._human_landmarks import landmark_table_error
    from machlib.human import HumanParams, build_model, head_landmark_operator, head_topology, human_points, phenotype

    topo = head_topology()
    model = build_model(topo.vertices)
    lmodel = build_model("landmarks")
    for ph in (dict(), dict(gender=0.0, age=0.35), dict(gender=1.0, age=0.9, weight=0.8), dict(african=1.0, asian=0.0, caucasian=0.0)):
        n = HumanParams.neutral(model)
        params = HumanParams(phenotype(**ph), n.modifiers, n.expression)
        P = np.asarray(human_points(model, params))
        L = np.asarray(human_points(lmodel, params))
        for yaw in (0.0, 20.0, -20.0):
            err = landmark_table_error(P, topo, L, yaw=yaw)
            print(f"{ph or 'default'} yaw {yaw:+.0f}: median {np.median(err):.2f} px, 90% {np.percentile(err, 90):.2f} px (512 px render)")


if __name__ == "__main__":
    main()
