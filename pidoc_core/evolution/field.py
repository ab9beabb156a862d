"""Embedded runs at large N: only the stars that can reach a 40" field, with a cheap density centre.

A star contributes light or mass to a map only if its projected distance from the cluster centre
is within the field's reach: half the padded canvas of the imager (field plus PSF and smoothing
kernel) along the diagonal, plus the largest centre shift, at the largest distance of the plan
(:func:`reach_radius_pc`). :class:`FieldEvolution` draws every star as
:class:`~pidoc_core.evolution.ClusterEvolution` does (same membership, same positions) and keeps
only those within that radius in projection along every line of sight used; its maps have the
full draw's field mass and light. Measured on a 3e5-star run (rh0 = 2 pc, 8 kpc) at 12-12.5 Gyr,
that cut keeps ~95 % of the stars for distances up to 42 kpc (the clusters are concentrated), so
it saves little by itself. The largest per-snapshot cost at large N is the imager's density
centre (Casertano & Hut 1985: a k-d tree over every star; 1.1-1.7 s CPU for 2.3e5 stars).
:class:`FieldEvolution` therefore also computes it from the ``centre_stars`` (20,000) stars
nearest the model's centre (:func:`inner_density_centre`): ~30x cheaper, and on that run the
centre moves by <= 2e-4 pc and the field mass and light by <= 2e-5 (relative) at 8-42 kpc.
"""

from __future__ import annotations

import math

import numpy as np

from .cluster import ClusterEvolution

__all__ = ["reach_radius_pc", "field_stars", "inner_density_centre", "FieldEvolution"]


def reach_radius_pc(distances_kpc, psf_fwhms_arcsec, *, shift_max_arcsec=5.0,
                    margin_pc=0.5) -> float:
    """Projected radius beyond which a star puts no light or mass on any map of a plan, pc.

    Half the diagonal of the imager's padded canvas (field of view plus the PSF and smoothing
    kernel radius, :attr:`pidoc_core.imager.ObservationSetup.canvas_pixels`) plus the diagonal of
    the largest centre shift, at the largest distance and widest PSF, plus ``margin_pc`` for the
    offset of the density centre from the model's centre.

    Parameters
    ----------
    distances_kpc : sequence of float
        Distances of the plan, kpc.
    psf_fwhms_arcsec : sequence of float
        Seeing of the plan, arcsec.
    shift_max_arcsec : float, keyword-only
        Largest shift of the cluster centre per axis, arcsec.
    margin_pc : float, keyword-only
        Extra radius, pc.

    Returns
    -------
    float
        Radius, pc.

    Examples
    --------
    >>> round(reach_radius_pc([10, 40], [0.5, 1.5]), 1)
    12.2
    """
    from ..imager import ObservationSetup

    d = max(float(v) for v in np.atleast_1d(distances_kpc))
    psf = max(float(v) for v in np.atleast_1d(psf_fwhms_arcsec))
    if not (math.isfinite(d) and d > 0 and math.isfinite(psf) and psf > 0):
        raise ValueError(f"distances_kpc and psf_fwhms_arcsec must be positive, got "
                         f"{distances_kpc!r}, {psf_fwhms_arcsec!r}")
    if not (math.isfinite(shift_max_arcsec) and shift_max_arcsec >= 0):
        raise ValueError(f"shift_max_arcsec must be >= 0, got {shift_max_arcsec!r}")
    setup = ObservationSetup(distance_kpc=d, psf_fwhm_arcsec=psf)
    half_canvas = 0.5 * setup.canvas_pixels * setup.pixel_arcsec
    reach = math.sqrt(2.0) * (half_canvas + float(shift_max_arcsec))
    return reach * setup.pc_per_arcsec + float(margin_pc)


_AXES = {"x": (1, 2), "y": (0, 2), "z": (0, 1)}  # sky axes for each line of sight


def field_stars(snapshot, radius_pc: float, *, lines_of_sight=("x", "y", "z")):
    """The stars of a snapshot that lie within ``radius_pc`` of the origin in projection.

    A star is kept when its projected distance is within the radius along at least one of the
    lines of sight (a union of cylinders), so the field of every map along them is complete.

    Parameters
    ----------
    snapshot : pidoc_core.snapshot.Snapshot
        Positions in pc, centred on the cluster (the embedded runs are).
    radius_pc : float
        Projected radius, pc (:func:`reach_radius_pc`).
    lines_of_sight : sequence of {'x', 'y', 'z'}, keyword-only

    Returns
    -------
    pidoc_core.snapshot.Snapshot
        The kept stars; ``meta`` adds ``field_radius_pc``, ``field_lines_of_sight``,
        ``n_dropped``, ``mass_dropped_msun`` and ``luminosity_dropped_lsun``.
    """
    r = float(radius_pc)
    if not (math.isfinite(r) and r > 0):
        raise ValueError(f"radius_pc must be positive and finite, got {radius_pc!r}")
    los = tuple(lines_of_sight)
    if not los or any(v not in _AXES for v in los):
        raise ValueError(f"lines_of_sight must be a non-empty subset of ('x', 'y', 'z'), got "
                         f"{lines_of_sight!r}")
    pos = snapshot.positions
    keep = np.zeros(len(snapshot), dtype=bool)
    for v in los:
        i, j = _AXES[v]
        keep |= pos[:, i] ** 2 + pos[:, j] ** 2 <= r * r
    out = snapshot.select(keep)
    out.meta.update(field_radius_pc=r, field_lines_of_sight="".join(los),
                    n_dropped=int((~keep).sum()),
                    mass_dropped_msun=float(snapshot.mass[~keep].sum()),
                    luminosity_dropped_lsun=float(snapshot.luminosity[~keep].sum()))
    return out


def inner_density_centre(snapshot, n_stars: int = 20_000):
    """Density centre (Casertano & Hut 1985, as :attr:`Snapshot.density_centre`) of the
    ``n_stars`` stars nearest the origin, pc.

    The centre's density weights are dominated by the core, so the innermost stars give the
    same centre (to ~1e-4 pc on a 3e5-star run) at a fraction of the cost of all of them.

    Parameters
    ----------
    snapshot : pidoc_core.snapshot.Snapshot
        Positions in pc, centred near the origin.
    n_stars : int
        Stars used (all when the snapshot has fewer).

    Returns
    -------
    numpy.ndarray
        (3,) x, y, z in pc.
    """
    n = int(n_stars)
    if n < 8:
        raise ValueError(f"n_stars must be >= 8, got {n_stars!r}")
    if len(snapshot) <= n:
        return snapshot.density_centre
    r2 = np.einsum("ij,ij->i", snapshot.positions, snapshot.positions)
    return snapshot.select(np.argpartition(r2, n - 1)[:n]).density_centre


class FieldEvolution(ClusterEvolution):
    """A :class:`~pidoc_core.evolution.ClusterEvolution` for large N: its snapshots keep only the
    stars that can reach the field (:func:`field_stars`) and carry a density centre computed
    from the stars nearest the centre (:func:`inner_density_centre`).

    The set-up and the draw are the parent's (same cache, same stars); each snapshot is then cut
    to ``field_radius_pc`` in projection along ``lines_of_sight``. Snapshots cached on disk are
    the parent's full ones.

    Parameters
    ----------
    rh0_pc : float
        Initial half-mass radius, pc.
    field_radius_pc : float, keyword-only
        Projected radius kept, pc (:func:`reach_radius_pc` of the plan's distances and seeing).
    lines_of_sight : sequence of {'x', 'y', 'z'}, keyword-only
        Lines of sight of the plan (default all three).
    centre_stars : int or None, keyword-only
        Stars nearest the centre used for the density centre (default 20,000); None uses every
        kept star.
    **options
        As :class:`~pidoc_core.evolution.ClusterEvolution`.
    """

    def __init__(self, rh0_pc, *args, field_radius_pc, lines_of_sight=("x", "y", "z"),
                 centre_stars=20_000, **options):
        super().__init__(rh0_pc, *args, **options)
        r = float(field_radius_pc)
        if not (math.isfinite(r) and r > 0):
            raise ValueError(f"field_radius_pc must be positive and finite, got "
                             f"{field_radius_pc!r}")
        if centre_stars is not None and int(centre_stars) < 8:
            raise ValueError(f"centre_stars must be >= 8 or None, got {centre_stars!r}")
        self.field_radius_pc = r
        self.lines_of_sight = tuple(lines_of_sight)
        self.centre_stars = None if centre_stars is None else int(centre_stars)

    def __repr__(self):
        return super().__repr__()[:-1] + f", field_radius_pc={self.field_radius_pc:g})"

    def snapshot(self, time_gyr):
        """The stars of the parent's snapshot at ``time_gyr`` that can reach the field."""
        snap = field_stars(super().snapshot(time_gyr), self.field_radius_pc,
                           lines_of_sight=self.lines_of_sight)
        if self.centre_stars is not None and len(snap) > self.centre_stars:
            # Snapshot.density_centre is a functools.cached_property: setting the instance
            # attribute is how a known value is given to it (the imager reads it from there)
            snap.__dict__["density_centre"] = inner_density_centre(snap, self.centre_stars)
            snap.meta["density_centre_stars"] = self.centre_stars
        return snap
