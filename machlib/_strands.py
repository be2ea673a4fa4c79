"""Strand containers: uniform :class:`Strands` and ragged :class:`RaggedStrands`, and resampling.

A strand is a polyline from its root (on the scalp) to its tip. Positions are in metres in head
space (right-handed, +y up, +z out of the face; see :doc:`/conventions`). Colours are linear RGB
in ``[0, 1]``; thickness is a strand's diameter in metres.
"""

from __future__ import annotations

from collections.abc import Sequence

import equinox as eqx
import numpy as np
from jaxtyping import Float, Int

from ._errors import InputError
from ._strand_raster import _DEFAULT_STRAND_COLOR
from ._typing import AnyArray

__all__ = [
    "Strands", "RaggedStrands", "resample_strands", "strands_from_list",
    "DEFAULT_HAIR_COLOR", "DEFAULT_HAIR_WIDTH",
]

#: Colour written where strands carry none: a mid brown, linear RGB.
DEFAULT_HAIR_COLOR: tuple[float, float, float] = _DEFAULT_STRAND_COLOR

#: Strand diameter in metres written where strands carry none (80 µm, a typical scalp hair).
DEFAULT_HAIR_WIDTH: float = 8e-5


def _check_optional(name: str, value, shape: tuple[int, ...], owner: str) -> None:
    if value is not None and tuple(np.shape(value)) != shape:
        raise InputError(f"{owner}: {name} must have shape {shape}, got {tuple(np.shape(value))}")


class Strands(eqx.Module):
    """``S`` strands of ``P`` points each: the fixed-shape form that growth and rendering use.

    Attributes:
        points: ``(S, P, 3)`` float positions in metres, head space (+y up, +z out of the face),
            root first. The readers and :func:`strands_from_list` give ``float32`` numpy arrays;
            JAX arrays are accepted too.
        color: optional ``(S, 3)`` linear RGB per strand, in ``[0, 1]``.
        thickness: optional ``(S,)`` strand diameter in metres.

    Example:
        >>> import numpy as np
        >>> from machlib.hair import Strands
        >>> s = Strands(np.zeros((2, 5, 3), np.float32), thickness=np.full(2, 8e-5, np.float32))
        >>> s.num_strands, s.points_per_strand
        (2, 5)
        >>> s.to_ragged().counts.tolist()
        [5, 5]
    """

    points: Float[AnyArray, "S P 3"]
    color: Float[AnyArray, "S 3"] | None = None
    thickness: Float[AnyArray, " S"] | None = None

    def __check_init__(self):
        shape = tuple(np.shape(self.points))
        if len(shape) != 3 or shape[2] != 3:
            raise InputError(f"Strands: points must have shape (S, P, 3), got {shape}")
        _check_optional("color", self.color, (shape[0], 3), "Strands")
        _check_optional("thickness", self.thickness, (shape[0],), "Strands")

    @property
    def num_strands(self) -> int:
        """Number of strands ``S``."""
        return int(np.shape(self.points)[0])

    @property
    def points_per_strand(self) -> int:
        """Points per strand ``P``."""
        return int(np.shape(self.points)[1])

    def to_ragged(self) -> RaggedStrands:
        """The same strands as a :class:`RaggedStrands` (``float32`` numpy, every count ``P``)."""
        s, p = self.num_strands, self.points_per_strand
        return RaggedStrands(
            np.asarray(self.points, np.float32).reshape(s * p, 3),
            np.full(s, p, np.int64),
            None if self.color is None else np.asarray(self.color, np.float32),
            None if self.thickness is None else np.asarray(self.thickness, np.float32),
        )

    def to_list(self) -> list[np.ndarray]:
        """One ``(P, 3)`` ``float32`` numpy array per strand."""
        return list(np.asarray(self.points, np.float32))


class RaggedStrands(eqx.Module):
    """Strands of different lengths, stored flat as the file formats store them.

    Strand ``i`` is ``points[offsets[i] : offsets[i] + counts[i]]`` with ``offsets`` the
    exclusive cumulative sum of ``counts``. The readers return this form so that nothing is lost;
    :meth:`to_strands` resamples to the fixed-shape :class:`Strands`.

    Attributes:
        points: ``(N, 3)`` float positions in metres, head space, strand by strand, root first.
        counts: ``(S,)`` int points per strand, each ``≥ 1``, summing to ``N``. (USC-HairSalon
            marks a scalp root without hair by a one-point strand.)
        color: optional ``(S, 3)`` linear RGB per strand.
        thickness: optional ``(S,)`` diameter in metres per strand.

    Example:
        >>> import numpy as np
        >>> from machlib.hair import RaggedStrands
        >>> r = RaggedStrands.from_list([np.zeros((3, 3)), np.ones((5, 3))])
        >>> r.counts.tolist(), r.num_points
        ([3, 5], 8)
        >>> r.to_strands(n_points=4).points.shape
        (2, 4, 3)
    """

    points: Float[AnyArray, "N 3"]
    counts: Int[AnyArray, " S"]
    color: Float[AnyArray, "S 3"] | None = None
    thickness: Float[AnyArray, " S"] | None = None

    def __check_init__(self):
        shape = tuple(np.shape(self.points))
        if len(shape) != 2 or shape[1] != 3:
            raise InputError(f"RaggedStrands: points must have shape (N, 3), got {shape}")
        counts = np.asarray(self.counts)
        if counts.ndim != 1:
            raise InputError(f"RaggedStrands: counts must have shape (S,), got {counts.shape}")
        if counts.size and counts.min() < 1:
            raise InputError(f"RaggedStrands: every strand needs at least one point, got a count of {counts.min()}")
        if int(counts.sum()) != shape[0]:
            raise InputError(f"RaggedStrands: counts sum to {int(counts.sum())} but there are {shape[0]} points")
        _check_optional("color", self.color, (counts.size, 3), "RaggedStrands")
        _check_optional("thickness", self.thickness, (counts.size,), "RaggedStrands")

    @classmethod
    def from_list(
        cls,
        points_list: Sequence[Float[AnyArray, "_ 3"]],
        *,
        color: Float[AnyArray, "S 3"] | None = None,
        thickness: Float[AnyArray, " S"] | None = None,
    ) -> RaggedStrands:
        """Build from one ``(n_i, 3)`` array per strand (``n_i ≥ 1``); stored as ``float32``."""
        arrays = _check_list(points_list, "RaggedStrands.from_list")
        pts = np.concatenate(arrays, 0) if arrays else np.zeros((0, 3), np.float32)
        return cls(
            pts.astype(np.float32),
            np.array([len(a) for a in arrays], np.int64),
            None if color is None else np.asarray(color, np.float32),
            None if thickness is None else np.asarray(thickness, np.float32),
        )

    @property
    def num_strands(self) -> int:
        """Number of strands ``S``."""
        return int(np.shape(self.counts)[0])

    @property
    def num_points(self) -> int:
        """Total number of points ``N``."""
        return int(np.shape(self.points)[0])

    @property
    def offsets(self) -> np.ndarray:
        """``(S,)`` index of each strand's root in ``points``."""
        counts = np.asarray(self.counts, np.int64)
        return np.cumsum(counts) - counts

    def to_list(self) -> list[np.ndarray]:
        """One ``(n_i, 3)`` numpy array per strand (views into ``points``)."""
        pts = np.asarray(self.points)
        return np.split(pts, np.cumsum(np.asarray(self.counts, np.int64))[:-1]) if self.num_strands else []

    def select(self, keep: AnyArray) -> RaggedStrands:
        """The strands picked by a boolean ``(S,)`` mask or an integer index array, in that order.

        Example:
            >>> import numpy as np
            >>> from machlib.hair import RaggedStrands
            >>> r = RaggedStrands.from_list([np.zeros((1, 3)), np.ones((4, 3))])
            >>> r.select(np.asarray(r.counts) > 1).counts.tolist()   # drop USC's empty roots
            [4]
        """
        keep = np.asarray(keep)
        if keep.dtype == bool:
            if keep.shape != (self.num_strands,):
                raise InputError(f"RaggedStrands.select: mask must have shape ({self.num_strands},), got {keep.shape}")
            keep = np.flatnonzero(keep)
        keep = keep.astype(np.int64).reshape(-1)
        if keep.size and (keep.min() < -self.num_strands or keep.max() >= self.num_strands):
            raise InputError(f"RaggedStrands.select: index out of range for {self.num_strands} strands")
        counts = np.asarray(self.counts, np.int64)
        sel_counts = counts[keep]
        idx = np.repeat(self.offsets[keep], sel_counts) + _ramp(sel_counts)
        pick = (lambda a: None if a is None else np.asarray(a)[keep])
        return RaggedStrands(np.asarray(self.points)[idx], sel_counts, pick(self.color), pick(self.thickness))

    def to_strands(self, *, n_points: int | None = None) -> Strands:
        """Convert to :class:`Strands`.

        Args:
            n_points: points per output strand; strands are resampled uniformly by arc length
                (:func:`resample_strands`). ``None`` keeps the points as they are, which needs
                every strand to have the same count.

        Raises:
            InputError: ``n_points`` is ``None`` and the counts differ.
        """
        counts = np.asarray(self.counts, np.int64)
        pts = np.asarray(self.points, np.float32)
        if n_points is None:
            if counts.size and (counts != counts[0]).any():
                raise InputError(
                    f"RaggedStrands.to_strands: strands have {counts.min()}..{counts.max()} points; "
                    "pass n_points= to resample them to one length"
                )
            p = int(counts[0]) if counts.size else 0
            out = pts.reshape(counts.size, p, 3)
        else:
            out = _resample_flat(pts, counts, n_points, "RaggedStrands.to_strands")
        return Strands(
            out,
            None if self.color is None else np.asarray(self.color, np.float32),
            None if self.thickness is None else np.asarray(self.thickness, np.float32),
        )


def _ramp(counts: np.ndarray) -> np.ndarray:
    """``[0..c0-1, 0..c1-1, ...]`` for integer ``counts``."""
    total = int(counts.sum())
    starts = np.cumsum(counts) - counts
    return np.arange(total, dtype=np.int64) - np.repeat(starts, counts)


def _check_list(points_list, owner: str) -> list[np.ndarray]:
    arrays = []
    for i, a in enumerate(points_list):
        a = np.asarray(a)
        if a.ndim != 2 or a.shape[1] != 3 or a.shape[0] < 1:
            raise InputError(f"{owner}: strand {i} must have shape (n >= 1, 3), got {a.shape}")
        arrays.append(a)
    return arrays


def _resample_flat(points: np.ndarray, counts: np.ndarray, n_points: int, owner: str) -> np.ndarray:
    """Resample flat strands ``(N, 3)`` with ``counts`` to ``(S, n_points, 3)`` by arc length."""
    if isinstance(n_points, bool) or int(n_points) != n_points or n_points < 2:
        raise InputError(f"{owner}: n_points must be an integer >= 2, got {n_points!r}")
    n_points = int(n_points)
    s = counts.size
    if s == 0:
        return np.zeros((0, n_points, 3), np.float32)
    p = np.asarray(points, np.float64)
    if not np.isfinite(p).all():
        raise InputError(f"{owner}: points contain NaN or infinity")
    ends = np.cumsum(counts)
    starts = ends - counts
    sid = np.repeat(np.arange(s), counts)
    seg = np.linalg.norm(np.diff(p, axis=0), axis=1)
    seg = np.where(sid[:-1] == sid[1:], seg, 0.0)  # no length across strand boundaries
    c = np.concatenate([[0.0], np.cumsum(seg)])
    c = c - c[starts][sid]  # arc length from each strand's root
    length = c[ends - 1]
    ok = length > 0
    # Global monotone key: strand index * 2 + normalised arc length in [0, 1].
    key = sid * 2.0 + c / np.where(ok, length, 1.0)[sid]
    q = np.arange(s)[:, None] * 2.0 + np.linspace(0.0, 1.0, n_points)[None, :]
    j = np.searchsorted(key, q.reshape(-1), side="right").reshape(s, n_points) - 1
    j = np.clip(j, starts[:, None], np.maximum(ends - 2, starts)[:, None])
    j1 = np.minimum(j + 1, (ends - 1)[:, None])
    den = key[j1] - key[j]
    f = np.clip(np.where(den > 0, (q - key[j]) / np.where(den > 0, den, 1.0), 0.0), 0.0, 1.0)[..., None]
    out = p[j] * (1.0 - f) + p[j1] * f
    out = np.where(ok[:, None, None], out, p[starts][:, None, :])  # zero-length strand: its root
    return out.astype(np.float32)


def resample_strands(points_list: Sequence[Float[AnyArray, "_ 3"]], n_points: int) -> Float[np.ndarray, "S n 3"]:
    """Resample polylines to ``n_points`` points evenly spaced by arc length.

    The root and the tip are kept exactly; a strand of one point (or of zero length) becomes its
    root repeated.

    Args:
        points_list: one ``(n_i, 3)`` array per strand, ``n_i ≥ 1``, root first (any length unit;
            machlib uses metres).
        n_points: points per output strand, ``≥ 2``.

    Returns:
        ``(S, n_points, 3)`` ``float32`` numpy array.

    Raises:
        InputError: a strand has the wrong shape or non-finite points, or ``n_points < 2``.

    Example:
        >>> import numpy as np
        >>> from machlib.hair import resample_strands
        >>> bent = np.array([[0., 0, 0], [1, 0, 0], [1, 3, 0]])   # arc length 4
        >>> resample_strands([bent], 5)[0].tolist()
        [[0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [1.0, 1.0, 0.0], [1.0, 2.0, 0.0], [1.0, 3.0, 0.0]]
    """
    arrays = _check_list(points_list, "resample_strands")
    if not arrays:
        return _resample_flat(np.zeros((0, 3)), np.zeros(0, np.int64), n_points, "resample_strands")
    counts = np.array([len(a) for a in arrays], np.int64)
    return _resample_flat(np.concatenate(arrays, 0), counts, n_points, "resample_strands")


def strands_from_list(
    points_list: Sequence[Float[AnyArray, "_ 3"]],
    *,
    n_points: int | None = None,
    color: Float[AnyArray, "S 3"] | None = None,
    thickness: Float[AnyArray, " S"] | None = None,
) -> Strands:
    """Build :class:`Strands` from one ``(n_i, 3)`` array per strand.

    Args:
        points_list: the strands, root first, metres in head space.
        n_points: resample every strand to this many points by arc length; ``None`` stacks the
            strands unchanged, which needs them all to have the same length.
        color: optional ``(S, 3)`` linear RGB.
        thickness: optional ``(S,)`` diameters in metres.

    Returns:
        :class:`Strands` with ``float32`` numpy arrays.

    Example:
        >>> import numpy as np
        >>> from machlib.hair import strands_from_list
        >>> s = strands_from_list([np.zeros((2, 3)), np.ones((7, 3))], n_points=16)
        >>> s.points.shape, s.points.dtype
        ((2, 16, 3), dtype('float32'))
    """
    return RaggedStrands.from_list(points_list, color=color, thickness=thickness).to_strands(n_points=n_points)
