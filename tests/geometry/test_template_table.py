"""The committed landmark table is what scripts/make_template_landmarks.py produces."""

import json
from pathlib import Path

import numpy as np
import pytest

from machlib.geometry import build_landmark_table

TABLE = Path(__file__).resolve().parents[2] / "machlib" / "data" / "template_landmarks.json"


@pytest.mark.slow
def test_landmark_table_is_reproducible():
    stored = json.loads(TABLE.read_text())
    fresh = build_landmark_table()
    a = np.array([e["uv"] for e in stored["landmarks"]])
    b = np.array([e["uv"] for e in fresh["landmarks"]])
    assert a.shape == b.shape == (478, 2)
    # same MediaPipe model and renderer: identical up to float noise across CPUs
    assert np.abs(a - b).max() < 2e-3
