"""machlib.render: antialias_topology and analytic silhouette antialiasing."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

from helpers import quad_patch, random_camera, uv_sphere, x64
from machlib._raster import rasterize_np
from machlib.render import antialias, antialias_topology, fragment_count, interpolate, rasterize, to_clip

# --------------------------------------------------------------------------------------------
# helpers


def _clip_from_pixels(pts, height, width, dtype=jnp.float32):
    """(N, 2) pixel coordinates → clip coordinates with w = 1, z = 0."""
    pts = np.asarray(pts, np.float64)
    n = len(pts)
    return jnp.asarray(np.stack([2 * pts[:, 0] / width - 1, 1 - 2 * pts[:, 1] / height, np.zeros(n), np.ones(n)], -1), dtype)


def _coverage(pts, height, width, ss=16):
    """Exact-ish per-pixel area coverage of one triangle (ss × ss supersampling)."""
    ys, xs = np.meshgrid((np.arange(height * ss) + 0.5) / ss, (np.arange(width * ss) + 0.5) / ss, indexing="ij")
    a, b, c = np.asarray(pts, np.float64)

    def edge(p, q):
        return (q[0] - p[0]) * (ys - p[1]) - (q[1] - p[1]) * (xs - p[0])

    e = np.stack([edge(b, c), edge(c, a), edge(a, b)])
    inside = np.all(e >= 0, 0) | np.all(e <= 0, 0)
    return inside.reshape(height, ss, width, ss).mean(axis=(1, 3))


def _neighbours(mask):
    """Pixels 4-adjacent to (or in) ``mask``."""
    out = mask.copy()
    out[1:] |= mask[:-1]
    out[:-1] |= mask[1:]
    out[:, 1:] |= mask[:, :-1]
    out[:, :-1] |= mask[:, 1:]
    return out


def _sphere_scene(seed=0, size=(48, 40)):
    mesh = uv_sphere(16, 10, 0.1)
    cam = random_camera(jax.random.PRNGKey(seed), image_size=size)
    clip = to_clip(jnp.asarray(mesh.vertices, jnp.float32), cam)
    return mesh, clip, jnp.asarray(mesh.faces, jnp.int32), (size[1], size[0])


# --------------------------------------------------------------------------------------------
# topology


def test_topology_closed_mesh():
    faces = np.asarray(uv_sphere(16, 10).faces)
    topo = antialias_topology(faces)
    assert topo.shape == faces.shape and topo.dtype == np.int32
    assert np.all(topo >= 0)  # a closed mesh: every edge has a neighbour
    for f in range(len(faces)):
        for k in range(3):
            a, b = faces[f, k], faces[f, (k + 1) % 3]
            n = topo[f, k]
            assert n != f and a in faces[n] and b in faces[n]
            # symmetric: the neighbour's matching edge points back
            k2 = [j for j in range(3) if {faces[n, j], faces[n, (j + 1) % 3]} == {a, b}]
            assert len(k2) == 1 and topo[n, k2[0]] == f


def test_topology_open_mesh():
    n = 3
    faces = np.asarray(quad_patch(n).faces)
    topo = antialias_topology(faces)
    edges = np.sort(np.stack([faces, np.roll(faces, -1, 1)], -1).reshape(-1, 2), 1)
    _, inv, counts = np.unique(edges, axis=0, return_inverse=True, return_counts=True)
    boundary = (counts[inv.ravel()] == 1).reshape(-1, 3)
    assert boundary.sum() == 4 * n
    np.testing.assert_array_equal(topo == -1, boundary)
    assert antialias_topology(np.array([[0, 1, 2], [2, 1, 3]])).tolist() == [[-1, 1, -1], [0, -1, -1]]
    with pytest.raises((ValueError, TypeError), match="antialias_topology|tri"):
        antialias_topology(np.zeros((2, 3), np.float32))


# --------------------------------------------------------------------------------------------
# what changes


def test_only_silhouette_pixels_change():
    mesh, clip, tri, res = _sphere_scene(1)
    r = rasterize(clip, tri, image_size=res[::-1])
    colors = jnp.asarray(np.random.default_rng(0).uniform(size=(clip.shape[0], 3)), jnp.float32)
    img = interpolate(colors, r, tri) + 0.2 * (r.triangle < 0)[..., None]  # grey background
    out = np.asarray(antialias(img, r, clip, tri))
    changed = np.any(np.abs(out - np.asarray(img)) > 0, -1)
    covered = np.asarray(r.triangle) >= 0
    rim = (covered & _neighbours(~covered)) | (~covered & _neighbours(covered))
    # only pixels on the outline change (interior edges between front faces are not
    # silhouettes); not all of them: a silhouette edge is found only where its triangle covers
    # a pixel centre next to the outline (as in nvdiffrast), and near the rim of a sphere the
    # silhouette triangles are often thinner than a pixel
    assert changed.sum() >= 10
    assert np.all(rim[changed])
    # a flat patch covering the whole image has no silhouettes: nothing changes, even with a
    # different colour on every triangle
    patch = quad_patch(4, size=4.0)
    pc = jnp.asarray(np.concatenate([np.asarray(patch.vertices)[:, :2] - 1.5, np.zeros((25, 1)), np.ones((25, 1))], 1),
                     jnp.float32)
    pc = pc.at[:, 1].multiply(-1.0)  # keep the triangles front-facing after the y flip
    ptri = jnp.asarray(patch.faces, jnp.int32)
    pr = rasterize(pc, ptri, image_size=(16, 16))
    assert np.all(np.asarray(pr.triangle) >= 0)
    flat = jnp.asarray(np.random.default_rng(1).uniform(size=(ptri.shape[0], 3)), jnp.float32)[pr.triangle]
    np.testing.assert_array_equal(np.asarray(antialias(flat, pr, pc, ptri)), np.asarray(flat))


@pytest.mark.parametrize("angle", [0.1, 0.5, np.pi / 4, 1.2])
def test_straight_edge_coverage(angle):
    """A half plane (a huge triangle): antialiased pixels along its edge carry their area
    coverage, whatever the edge's slope (diagonal edges must not be blended twice)."""
    H = W = 24
    n = np.array([np.cos(angle), np.sin(angle)])
    d = np.array([-n[1], n[0]])
    c0 = np.array([W / 2 + 0.37, H / 2 - 0.21])
    pts = np.stack([c0 + 400 * d, c0 - 400 * d, c0 - 400 * n])
    clip = _clip_from_pixels(pts, H, W)
    tri = jnp.array([[0, 1, 2]])
    r = rasterize(clip, tri, image_size=(W, H))
    img = (r.triangle >= 0).astype(jnp.float32)[..., None]
    out = np.asarray(antialias(img, r, clip, tri))[..., 0]
    cov = _coverage(pts, H, W)
    edge = (cov > 0) & (cov < 1)
    aliased = np.abs(np.asarray(img)[..., 0] - cov)[edge].mean()
    err = np.abs(out - cov)[edge].mean()
    assert aliased > 0.1
    assert err < 0.04, f"mean coverage error {err:.3f} on edge pixels (aliased {aliased:.3f})"
    np.testing.assert_array_equal(out[~_neighbours(edge)], np.asarray(img)[..., 0][~_neighbours(edge)])


def test_coverage_of_big_triangles():
    """Summed over the image, antialiased coverage approximates the exact area far better than
    the aliased pixel count does, and per pixel it is much closer to the true coverage."""
    H = W = 48
    rng = np.random.default_rng(0)
    err_aliased, err_aa = [], []
    tri = jnp.array([[0, 1, 2]])
    for _ in range(6):
        while True:
            pts = rng.uniform(3, W - 3, (3, 2))
            area = 0.5 * abs((pts[1, 0] - pts[0, 0]) * (pts[2, 1] - pts[0, 1]) - (pts[1, 1] - pts[0, 1]) * (pts[2, 0] - pts[0, 0]))
            if area > 250:
                break
        clip = _clip_from_pixels(pts, H, W)
        r = rasterize(clip, tri, image_size=(W, H), capacity=H * W)
        img = (r.triangle >= 0).astype(jnp.float32)[..., None]
        out = np.asarray(antialias(img, r, clip, tri))[..., 0]
        cov = _coverage(pts, H, W)
        err_aliased.append(abs(float(img.sum()) - area))
        err_aa.append(abs(float(out.sum()) - area))
        pix_aliased = np.abs(np.asarray(img)[..., 0] - cov).sum()
        pix_aa = np.abs(out - cov).sum()
        assert pix_aa < 0.5 * pix_aliased, (pix_aa, pix_aliased)
    assert np.mean(err_aa) < 0.5 * np.mean(err_aliased), (err_aa, err_aliased)


# --------------------------------------------------------------------------------------------
# gradients


def _two_triangles64():
    """A triangle in front of another (float64 clip coordinates, 14 × 16 image)."""
    H, W = 14, 16
    pts = np.array([[2.3, 1.7], [12.6, 3.1], [4.2, 11.4], [6.1, 4.3], [15.2, 9.6], [8.4, 13.1]])
    clip = np.asarray(_clip_from_pixels(pts, H, W, jnp.float32), np.float64)
    clip[:3, 2] = 0.5  # the first triangle behind
    clip[3:, 3] = np.array([1.1, 0.9, 1.2])  # some perspective on the second
    clip[3:, :2] *= clip[3:, 3:4]
    return jnp.asarray(clip), jnp.array([[0, 1, 2], [3, 4, 5]], jnp.int32), (H, W)


def _ids_ref(clip, tri, res):
    H, W = res
    c = np.asarray(clip, np.float64)
    xy = np.stack([(c[:, 0] / c[:, 3] + 1) * 0.5 * W, (1 - c[:, 1] / c[:, 3]) * 0.5 * H], -1)
    return rasterize_np(xy, np.asarray(tri), (W, H), depth=c[:, 2] / c[:, 3])[0]


def test_gradients_wrt_positions_and_colours():
    with x64():
        clip, tri, res = _two_triangles64()
        ids = _ids_ref(clip, tri, res)
        assert set(np.unique(ids)) == {-1, 0, 1}
        rng = np.random.default_rng(0)
        for _ in range(4):  # the premise: small moves change no pixel's triangle
            np.testing.assert_array_equal(_ids_ref(clip + 1e-5 * rng.normal(size=clip.shape), tri, res), ids)
        colors = jnp.asarray(rng.uniform(size=(6, 2)))
        wts = jnp.asarray(rng.normal(size=res + (2,)))
        topo = antialias_topology(np.asarray(tri))
        cap = fragment_count(clip, tri, image_size=res[::-1])

        @jax.jit
        def loss(c, col):
            r = rasterize(c, tri, image_size=res[::-1], capacity=cap)
            return jnp.sum(antialias(interpolate(col, r, tri), r, c, tri, topology=topo) * wts)

        check_grads(loss, (clip, colors), order=1, modes=("rev",), eps=1e-6)


@pytest.mark.parametrize("pts", [
    [[4.3, 3.2], [19.7, 3.2], [4.3, 21.4]],  # axis-aligned edges and a diagonal
    [[3.3, 2.1], [21.2, 6.7], [6.6, 20.8]],  # slanted edges
], ids=["axis-aligned", "slanted"])
def test_silhouette_gradients_match_smoothed_coverage(pts):
    """What the silhouette gradients approximate (issue 19, item 9): the derivative of the
    box-filtered (pixel-area) coverage, the smooth function that antialiasing stands for. Checked
    against central differences (0.1 px) of a 32 × 32-supersampled coverage, for the image sum
    and for a random weighting of the pixels: the whole gradient agrees within 15 %, and is
    neither halved nor doubled (a one-sided or two-sided blend would show as a factor 2)."""
    H = W = 24
    pts = np.asarray(pts, np.float64)
    tri = jnp.array([[0, 1, 2]], jnp.int32)
    topo = antialias_topology(np.asarray(tri))
    wts = np.random.default_rng(3).uniform(0.5, 1.5, (H, W))
    with x64():
        def image(p):
            clip = jnp.stack([2 * p[:, 0] / W - 1, 1 - 2 * p[:, 1] / H, jnp.zeros(3), jnp.ones(3)], -1)
            r = rasterize(clip, tri, image_size=(W, H), capacity=2 * H * W)
            return antialias((r.triangle >= 0).astype(clip.dtype)[..., None], r, clip, tri, topology=topo)[..., 0]

        for w in (np.ones((H, W)), wts):
            grad = np.asarray(jax.grad(lambda p: jnp.sum(image(p) * w))(jnp.asarray(pts)))
            fd = np.zeros_like(grad)
            for i in range(3):
                for k in range(2):
                    d = np.zeros((3, 2))
                    d[i, k] = 0.1
                    fd[i, k] = np.sum((_coverage(pts + d, H, W, ss=32) - _coverage(pts - d, H, W, ss=32)) * w) / 0.2
            rel = np.linalg.norm(grad - fd) / np.linalg.norm(fd)
            assert rel < 0.15, f"gradient {grad.round(2).tolist()} vs smoothed coverage {fd.round(2).tolist()}"
            scale = float(np.sum(grad * fd) / np.sum(fd * fd))  # least-squares factor grad ≈ scale · fd
            assert 0.9 < scale < 1.1, scale


def test_constant_colour_gradients_come_from_silhouettes():
    mesh, clip, tri, res = _sphere_scene(2)
    topo = antialias_topology(np.asarray(tri))
    cap = fragment_count(clip, tri, image_size=res[::-1])
    wts = jnp.asarray(np.random.default_rng(0).normal(size=res + (1,)), jnp.float32)

    def loss(c, aa):
        r = rasterize(c, tri, image_size=res[::-1], capacity=cap)
        img = (r.triangle >= 0).astype(c.dtype)[..., None]  # flat white silhouette: no gradient
        return jnp.sum((antialias(img, r, c, tri, topology=topo) if aa else img) * wts)

    grad = jax.jit(jax.grad(loss), static_argnums=1)
    assert np.all(np.asarray(grad(clip, False)) == 0.0)
    g = np.abs(np.asarray(grad(clip, True))).sum(-1)
    # silhouette edges: shared by a front- and a back-facing triangle (screen-space winding)
    c = np.asarray(clip, np.float64)
    xy = c[:, :2] / c[:, 3:]
    p = xy[np.asarray(tri)]
    front = ((p[:, 1, 0] - p[:, 0, 0]) * (p[:, 2, 1] - p[:, 0, 1]) - (p[:, 1, 1] - p[:, 0, 1]) * (p[:, 2, 0] - p[:, 0, 0])) > 0
    f, k = np.nonzero(front[:, None] != front[topo])
    faces = np.asarray(tri)
    on_rim = np.zeros(len(c), bool)
    on_rim[faces[f, k]] = on_rim[faces[f, (k + 1) % 3]] = True
    assert on_rim.sum() > 0 and (g > 0).sum() > 0
    assert np.all(on_rim[g > 0]), "gradient reached a vertex that is on no silhouette edge"
    assert (g > 0).sum() >= 3


def test_gradient_moves_silhouette_toward_target():
    """A white square on black, target shifted right by 0.3 px: the loss decreases when the
    square moves right."""
    H = W = 16
    pts = np.array([[4.15, 4.6], [11.35, 4.6], [11.35, 11.1], [4.15, 11.1]])
    tri = jnp.array([[0, 2, 1], [0, 3, 2]], jnp.int32)
    topo = antialias_topology(np.asarray(tri))

    def render(shift):
        clip = _clip_from_pixels(pts, H, W).at[:, 0].add(2.0 * shift / W)
        r = rasterize(clip, tri, image_size=(W, H), capacity=2 * H * W)
        return antialias((r.triangle >= 0).astype(jnp.float32)[..., None], r, clip, tri, topology=topo)

    target = render(0.3)
    slope = jax.jit(jax.grad(lambda s: jnp.sum((render(s) - target) ** 2)))
    assert float(slope(0.0)) < 0
    assert float(slope(0.45)) > 0  # overshoot: back left


# --------------------------------------------------------------------------------------------
# batch, jit, errors


def test_batch_jit_vmap():
    _, a, tri, res = _sphere_scene(3)
    _, b, _, _ = _sphere_scene(4)
    clips = jnp.stack([a, b])
    topo = antialias_topology(np.asarray(tri))
    cap = fragment_count(clips, tri, image_size=res[::-1])
    r = rasterize(clips, tri, image_size=res[::-1], capacity=cap)
    color = jnp.asarray(np.random.default_rng(2).uniform(size=res + (3,)), jnp.float32) * (r.triangle >= 0)[..., None]
    batched = antialias(color, r, clips, tri, topology=topo)
    assert batched.shape == color.shape
    for i in range(2):
        ri = jax.tree_util.tree_map(lambda x: x[i], r)
        one = antialias(color[i], ri, clips[i], tri)  # topology built inside
        np.testing.assert_allclose(np.asarray(batched[i]), np.asarray(one), atol=1e-6)
    jitted = jax.jit(lambda col, rr, c: antialias(col, rr, c, tri, topology=topo))
    np.testing.assert_allclose(np.asarray(jitted(color, r, clips)), np.asarray(batched), atol=1e-5)
    vmapped = jax.vmap(lambda col, rr, c: antialias(col, rr, c, tri, topology=topo))(color, r, clips)
    np.testing.assert_allclose(np.asarray(vmapped), np.asarray(batched), atol=1e-5)


def test_bad_inputs_raise():
    _, clip, tri, res = _sphere_scene(5)
    r = rasterize(clip, tri, image_size=res[::-1])
    color = jnp.zeros(res + (3,))
    with pytest.raises((ValueError, TypeError), match="topology|antialias"):
        antialias(color, r, clip, tri, topology=np.zeros((3, 3), np.int32))
    with pytest.raises((ValueError, TypeError), match="antialias|color"):
        antialias(color[:-1], r, clip, tri)
    with pytest.raises((ValueError, TypeError), match="antialias|clip_pos"):
        antialias(color, r, clip[None], tri)
    # no triangles at all: nothing to antialias
    empty = rasterize(clip, jnp.zeros((0, 3), jnp.int32), image_size=res[::-1])
    np.testing.assert_array_equal(np.asarray(antialias(color + 1, empty, clip, jnp.zeros((0, 3), jnp.int32))), 1.0)
