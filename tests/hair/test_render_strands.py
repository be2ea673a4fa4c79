"""Strand preview rendering: depth test against the head and between strands, projection,
shapes and dtypes, determinism, the bald case, the three-view preview, and bad inputs."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import uv_sphere

from machlib import Mesh, project
from machlib._preview import orbit_camera
from machlib._scene import ScenePart, _srgb_to_linear, render_scene
from machlib.hair import HAIR_PREVIEW_VIEWS, Strands, hair_preview, render_strands

SIZE = 64
RED = (0.8, 0.02, 0.02)  # linear RGB: bright and unlike the skin


@pytest.fixture(scope="module")
def head() -> Mesh:
    return uv_sphere(24, 16, radius=0.1)


@pytest.fixture(scope="module")
def camera():
    return orbit_camera(0.0, distance=0.6, target=(0.0, 0.0, 0.0), image_size=(SIZE, SIZE))


def vertical(x: float, z: float, n: int = 16, color=RED) -> Strands:
    """One vertical strand at ``(x, ·, z)`` from ``y = -0.05`` to ``y = 0.05``."""
    pts = np.stack([np.full(n, x), np.linspace(-0.05, 0.05, n), np.full(n, z)], 1)[None]
    return Strands(pts.astype(np.float32), color=np.asarray([color], np.float32))


def redness(img: np.ndarray) -> np.ndarray:
    return img[..., 0].astype(int) - img[..., 1].astype(int)


def test_strand_in_front_visible_behind_hidden(head, camera):
    bald = render_strands(Strands(np.zeros((0, 4, 3), np.float32)), camera, mesh=head)
    front = render_strands(vertical(0.0, 0.15), camera, mesh=head)
    behind = render_strands(vertical(0.0, -0.15), camera, mesh=head)
    col = SIZE // 2
    # in front of the sphere: the strand's column turns red along its length
    assert (redness(front)[:, col] > redness(bald)[:, col] + 60).sum() >= 6
    # behind the sphere: nothing changes
    np.testing.assert_array_equal(behind, bald)
    # without the head the strand behind shows
    alone = render_strands(vertical(0.0, -0.15), camera)
    assert alone[:, col, 3].max() >= 127  # one supersampled pixel wide: half coverage at 2x


def test_strands_depth_test_each_other(camera):
    near = vertical(0.0, 0.05, color=(0.9, 0.0, 0.0))
    far = vertical(0.0, -0.05, color=(0.0, 0.0, 0.9))
    both = Strands(np.concatenate([far.points, near.points]), np.concatenate([far.color, near.color]))
    img = render_strands(both, camera, supersample=1, jitter=0.0)
    rows = img[:, SIZE // 2]
    drawn = rows[:, 3] == 255
    assert drawn.sum() >= 6
    assert (rows[drawn, 0] > rows[drawn, 2]).all()  # the red (near) strand wins everywhere


def test_strand_projects_where_project_says(camera):
    p = np.array([[0.031, -0.012, 0.02], [0.0312, -0.0118, 0.02]], np.float32)[None]  # a tiny strand
    img = render_strands(Strands(p), camera, supersample=1)
    x, y = np.asarray(project(p[0, :1].astype(np.float64), camera))[0]
    i, j = np.argwhere(img[..., 3] > 0).T
    assert np.all(np.abs(j + 0.5 - x) <= 1.0) and np.all(np.abs(i + 0.5 - y) <= 1.0)
    assert img[int(y), int(x), 3] == 255


def test_shapes_dtypes_and_background(head, camera):
    s = vertical(0.0, 0.15)
    rgba = render_strands(s, camera, mesh=head)
    assert rgba.shape == (SIZE, SIZE, 4) and rgba.dtype == np.uint8
    rgb = render_strands(s, camera, mesh=head, background=(1.0, 1.0, 1.0), supersample=3)
    assert rgb.shape == (SIZE, SIZE, 3) and rgb.dtype == np.uint8
    assert (rgb[0, 0] == 255).all()  # the background where nothing is drawn
    bg = np.full((SIZE, SIZE, 3), 7, np.uint8)
    assert (render_strands(s, camera, background=bg)[0, 0] == 7).all()
    wide = orbit_camera(0.0, distance=0.6, target=(0, 0, 0), image_size=(40, 24))
    assert render_strands(s, wide, mesh=head).shape == (24, 40, 4)


def test_deterministic(head, camera):
    rng = np.random.default_rng(1)
    roots = rng.normal(size=(50, 3))
    roots = 0.1 * roots / np.linalg.norm(roots, axis=1, keepdims=True)
    pts = roots[:, None] * np.linspace(1.0, 1.6, 8)[None, :, None]
    s = Strands(pts.astype(np.float32))
    a = render_strands(s, camera, mesh=head)
    b = render_strands(s, camera, mesh=head)
    np.testing.assert_array_equal(a, b)
    assert (a[..., 3] > 0).sum() > (render_strands(Strands(pts[:0]), camera, mesh=head)[..., 3] > 0).sum()


def test_bald_is_the_plain_head(head, camera):
    # render_strands draws through the one scene renderer: bald, it is the head alone
    empty = Strands(np.zeros((0, 8, 3), np.float32))
    light = (0.35, 0.45, 1.0)
    mine = render_strands(empty, camera, mesh=head, supersample=1, light_dir=light, head_color=(0.8, 0.6, 0.5))
    part = ScenePart(head, color=_srgb_to_linear(np.array([0.8, 0.6, 0.5])), specular=0.08, two_sided=False)
    ref = render_scene([part], camera, light_dir=light, supersample=1, ambient=0.35)
    np.testing.assert_array_equal(mine, ref)
    assert (mine[..., 3] == 255).sum() > 0.2 * SIZE * SIZE


def test_hair_preview(head):
    s = vertical(0.0, 0.15, color=(0.0, 0.0, 0.9))  # blue: nothing else in the picture is

    def blueness(img):
        return img[..., 2].astype(int) - img[..., 0].astype(int)

    img = hair_preview(s, head, size=32)
    assert img.shape == (32, 96, 3) and img.dtype == np.uint8
    # the strand hangs in front of the face: seen from the front, hidden by the head from the back
    assert blueness(img[:, :32]).max() > 60
    assert blueness(img[:, 64:]).max() <= 0
    assert hair_preview(s, head, size=16, views=("back", 45.0)).shape == (16, 32, 3)
    bald = hair_preview(Strands(np.zeros((0, 4, 3), np.float32)), head, size=16)
    assert bald.shape == (16, 48, 3) and blueness(bald).max() <= 0
    assert set(HAIR_PREVIEW_VIEWS) == {"front", "side", "back"}


def test_bad_inputs(head, camera):
    s = vertical(0.0, 0.15)
    with pytest.raises((ValueError, TypeError), match="render_strands"):
        render_strands(np.zeros((1, 4, 3)), camera)
    with pytest.raises((ValueError, TypeError), match="render_strands"):
        render_strands(s, camera, supersample=0)
    with pytest.raises(ValueError, match="render_strands: strands.points"):
        render_strands(Strands(np.full((1, 4, 3), np.nan, np.float32)), camera)
    with pytest.raises(ValueError, match="render_strands: background"):
        render_strands(s, camera, background=np.zeros((5, 5, 3), np.uint8))
    with pytest.raises(ValueError, match="render_strands: texture"):
        render_strands(s, camera, texture=np.zeros((4, 4, 3), np.uint8))
    with pytest.raises(ValueError, match="render_strands: jitter"):
        render_strands(s, camera, jitter=1.5)
    with pytest.raises((ValueError, TypeError), match="hair_preview"):
        hair_preview(s, head, views=("top",))
    with pytest.raises((ValueError, TypeError), match="hair_preview"):
        hair_preview(s, head, size=2)
