"""The research recipes in docs/examples run at small sizes and do what they claim.

Each script exposes ``main(argv) -> dict``; it is run in-process (``runpy``) with ``--small`` so the
recipes share one JAX process and its compilation caches."""

from __future__ import annotations

import pathlib
import runpy

import numpy as np
import pytest

EXAMPLES = pathlib.Path(__file__).resolve().parent.parent / "docs" / "examples"
SCRIPTS = sorted(p.name for p in EXAMPLES.glob("*.py"))


def _main(name):
    return runpy.run_path(str(EXAMPLES / name), run_name="machlib_example")["main"]


@pytest.mark.parametrize("name", SCRIPTS)
def test_recipes_are_short_and_documented(name):
    text = (EXAMPLES / name).read_text()
    assert len(text.splitlines()) < 100, f"{name} has grown past 100 lines"
    assert text.startswith('"""') and "--small" in text
    gallery = (EXAMPLES.parent / "examples.rst").read_text()
    assert f"examples/{name}" in gallery, f"{name} is missing from docs/examples.rst"


def test_all_five_recipes_exist():
    assert {"triplane_custom_loss.py", "render_fit_multiview.py", "landmark_measure.py", "batch_fit.py",
            "own_template.py"} <= set(SCRIPTS)


@pytest.mark.slow
def _assert_two_heads(path):
    """The recipe's before/after PNG: two side-by-side renders, each with a grey head on white."""
    from PIL import Image

    rgb = np.asarray(Image.open(path).convert("RGB"), np.float32) / 255.0
    half = rgb.shape[1] // 2
    for view in (rgb[:, :half], rgb[:, half:]):
        head = view.min(-1) < 0.95
        assert 0.05 < head.mean() < 0.8
        assert 0.3 < view[head].mean() < 0.9


def test_triplane_custom_loss(tmp_path):
    out = _main("triplane_custom_loss.py")(["--small", "--out", str(tmp_path)])
    assert out["loss_end"] < 0.05 * out["loss_start"]
    assert 3.5 < out["nose_mm"] < 6.5 and out["chin_mm"] < 0.5 * out["nose_mm"]
    _assert_two_heads(tmp_path / "long_nose.png")
    assert (tmp_path / "long_nose.obj").stat().st_size > 0


@pytest.mark.slow
def test_render_fit_multiview(tmp_path):
    out = _main("render_fit_multiview.py")(["--small", "--out", str(tmp_path)])
    assert out["loss_end"] < 0.2 * out["loss_start"]
    assert out["tex_error_end"] < 0.5 * out["tex_error_start"]
    assert (tmp_path / "multiview_fit.png").stat().st_size > 0


@pytest.mark.slow
def test_landmark_measure(tmp_path):
    out = _main("landmark_measure.py")(["--small", "--out", str(tmp_path)])
    _assert_two_heads(tmp_path / "fitted_head.png")
    assert all(abs(a) < 15.0 for a in out["pose"])  # the bundled portrait is near frontal
    m = out["measures"]
    assert 50.0 < m["interpupillary"] < 75.0 and 35.0 < m["mouth_width"] < 65.0
    assert 10.0 < m["nose_depth"] < 45.0
    assert abs(out["best_turn_degrees"]) <= 2.0 and out["loss"][0] > out["loss"].min()


@pytest.mark.slow
def test_batch_fit():
    out = _main("batch_fit.py")(["--small"])
    assert np.all(out["landmark_px"] < 1.5)
    assert np.all(out["pose_error"] < 5.0)


@pytest.mark.slow
def test_own_template(tmp_path):
    out = _main("own_template.py")(["--small", "--out", str(tmp_path)])
    assert out["landmarks"] == 478 and out["landmark_px"] < 3.0
    assert out["texture"].shape == (32, 32, 3) and np.isfinite(out["texture"]).all()
    assert out["texture_loss"][-1] < out["texture_loss"][0]
    assert (tmp_path / "own_template.obj").stat().st_size > 0
