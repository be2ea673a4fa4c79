"""clump_strands: clumps, layered tips and flyaways on grown strands (issue 17, item 4; the bob's helmet)."""

import jax
import numpy as np
import pytest

from machlib._errors import InputError
from machlib.hair import Strands, clump_strands, strand_lengths


@pytest.fixture(scope="module")
def curtain():
    # 200 parallel strands 20 cm long hanging from a 10 cm wide line of roots, 16 points each
    t = np.linspace(0.0, 1.0, 16)[:, None]
    xs = np.linspace(-0.05, 0.05, 200)
    pts = np.stack([np.hstack([np.full_like(t, x), -0.2 * t, np.zeros_like(t)]) for x in xs])
    return Strands(pts.astype(np.float32), np.full((200, 3), 0.2, np.float32), np.full(200, 1e-4, np.float32))


def test_roots_stay_tips_gather_and_lengths_layer(curtain):
    out = clump_strands(jax.random.key(0), curtain, clump_size=20, strength=0.5, layers=0.2, flyaways=0.0)
    assert out.points.shape == curtain.points.shape and out.points.dtype == np.float32
    np.testing.assert_allclose(out.points[:, 0], curtain.points[:, 0], atol=1e-6)
    np.testing.assert_array_equal(out.color, curtain.color)
    # tips move half way to their clump's centre strand: the distinct tip positions cluster
    tips = np.asarray(out.points[:, -1, 0])
    gaps = np.diff(np.sort(tips))
    assert (gaps > 1e-3).sum() >= 3              # gaps between clumps (unclumped: none, all 0.5 mm)
    assert np.median(gaps) < 0.6 * 0.1 / 199     # and strands closer within a clump
    # layers: lengths cut to [1 - layers - 0.02, 1] of 20 cm, varied by clump (not all cut alike)
    vert = -np.asarray(out.points[:, -1, 1])   # the tips' height below the roots
    assert (vert > 0.2 * (1 - 0.2 - 0.021)).all() and (vert <= 0.2 + 1e-6).all() and np.ptp(vert) > 0.02
    lengths = np.asarray(strand_lengths(out.points))
    assert lengths.max() < 0.2 * 1.05 and lengths.min() > 0.2 * 0.75


def test_deterministic_flyaways_and_identity(curtain):
    a = clump_strands(jax.random.key(3), curtain)
    b = clump_strands(jax.random.key(3), curtain)
    np.testing.assert_array_equal(a.points, b.points)
    assert not np.array_equal(a.points, clump_strands(jax.random.key(4), curtain).points)
    same = clump_strands(jax.random.key(3), curtain, clump_size=1, layers=0.0, flyaways=0.0)
    np.testing.assert_allclose(same.points, curtain.points, atol=1e-6)
    # flyaways alone: about 10 % of the strands leave the plane z = 0, by at most a few cm
    fly = clump_strands(jax.random.key(5), curtain, clump_size=1, layers=0.0, flyaways=0.1, flyaway_scale=0.01)
    off = np.abs(np.asarray(fly.points[..., 2])).max(1)
    assert (off > 1e-5).sum() == 20 and off.max() < 0.05
    np.testing.assert_allclose(fly.points[:, 0], curtain.points[:, 0], atol=1e-7)


def test_empty_and_bad_input(curtain):
    empty = Strands(np.zeros((0, 4, 3), np.float32))
    assert clump_strands(jax.random.key(0), empty).num_strands == 0
    with pytest.raises(InputError, match="clump_strands: clump_size must be an int >= 1"):
        clump_strands(jax.random.key(0), curtain, clump_size=0)
    with pytest.raises(InputError, match="clump_strands: layers must be a number in"):
        clump_strands(jax.random.key(0), curtain, layers=1.0)
    with pytest.raises(InputError, match="NaN"):
        clump_strands(jax.random.key(0), Strands(np.full((2, 4, 3), np.nan, np.float32)))
