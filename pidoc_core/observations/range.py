"""The one training-range check: is an observation inside what pi-DOC was trained on?

:func:`training_grid_flags` compares a mock observation's settings (distance, seeing, shift,
rotation, age) with the training grid (:data:`TRAINING_GRID`, the paper's Table 1);
:func:`range_check` compares an observed field (luminosity, distance, image statistics) with the
training set's range (the paper's Fig. 10), measured from the model's own training set when its
provenance records it (:mod:`pidoc_core.training_range`)."""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field

import numpy as np
import xarray as xr

from ..conventions import FLUX_FLOOR, N_PIXELS
from ..paper import TRAINING_GRID
from ..training_range import is_measured_range, luminosity_bounds
from ._common import PAPER_LUMINOSITY_RANGE, ObservationInputError, RangeWarning

__all__ = ["TRAINING_GRID", "training_grid_flags", "RangeVerdict", "check_luminosity",
           "field_luminosity", "range_check"]

def training_grid_flags(setup, time_gyr: float, *, grid=None) -> list[str]:
    """Settings of one observation that lie outside the networks' training conditions.

    Parameters
    ----------
    setup : pidoc_core.imager.ObservationSetup
        Distance (kpc), seeing (arcsec), shift (arcsec) and rotation (deg).
    time_gyr : float
        Snapshot time, Gyr.
    grid : dict, optional
        Training conditions in the form of :data:`TRAINING_GRID` (a model's manifest may carry
        its own); default the paper's.

    Returns
    -------
    list of str
        One sentence per setting outside the training range; empty when all are inside.
        Distances and seeings between the trained values are interpolation, not flagged.

    Examples
    --------
    >>> from pidoc_core.imager import ObservationSetup
    >>> training_grid_flags(ObservationSetup(distance_kpc=150, psf_fwhm_arcsec=1.0), 12.0)
    ['distance 150 kpc is outside the trained 10-100 kpc']
    """
    grid = {**TRAINING_GRID, **(grid or {})}
    flags = []
    d_lo, d_hi = min(grid["distance_kpc"]), max(grid["distance_kpc"])
    if not d_lo <= setup.distance_kpc <= d_hi:
        flags.append(f"distance {setup.distance_kpc:g} kpc is outside the trained {d_lo:g}-{d_hi:g} kpc")
    p_lo, p_hi = min(grid["psf_fwhm_arcsec"]), max(grid["psf_fwhm_arcsec"])
    if not p_lo <= setup.psf_fwhm_arcsec <= p_hi:
        flags.append(f'PSF FWHM {setup.psf_fwhm_arcsec:g}" is outside the trained {p_lo:g}-{p_hi:g}"')
    smax = grid["shift_max_arcsec"]
    if max(abs(s) for s in setup.shift_arcsec) > smax:
        flags.append(f'centre shift ({setup.shift_arcsec[0]:g}", {setup.shift_arcsec[1]:g}") exceeds '
                     f'the trained +-{smax:g}"')
    if not any(math.isclose(setup.rotation_deg % 360.0, r) for r in grid["rotations_deg"]):
        flags.append(f"rotation {setup.rotation_deg:g} deg is not one of the trained "
                     f"{', '.join(f'{r:g}' for r in grid['rotations_deg'])} deg")
    t_lo, t_hi = grid["time_gyr"]
    if not t_lo <= time_gyr <= t_hi:
        flags.append(f"age {time_gyr:g} Gyr is outside the trained {t_lo:g}-{t_hi:g} Gyr")
    return flags


@dataclass(frozen=True)
class RangeVerdict:
    """Whether a field lies inside π-DOC's training range.

    Attributes
    ----------
    inside : bool
        True when no check failed.
    reasons : list of str
        One sentence per failed check (empty when inside).
    notes : list of str
        Caveats that are not failures (e.g. which reference range was used).
    luminosity_v_lsun : float
        V-band luminosity in the field at ``distance_kpc``, Lsun.
    luminosity_range_lsun : (float, float)
        The reference range used.
    distance_kpc : float
        Distance used, kpc.
    reference : str
        Where the luminosity range comes from.
    """

    inside: bool
    reasons: list = field(default_factory=list)
    notes: list = field(default_factory=list)
    luminosity_v_lsun: float = math.nan
    luminosity_range_lsun: tuple = (math.nan, math.nan)
    distance_kpc: float = math.nan
    reference: str = ""

    @property
    def verdict(self) -> str:
        """``"inside"`` or ``"outside"`` the training range."""
        return "inside" if self.inside else "outside"

    def __str__(self):
        head = f"{self.verdict} the training range (L_FoV = {self.luminosity_v_lsun:.4g} Lsun at " \
               f"{self.distance_kpc:g} kpc)"
        return "; ".join([head, *self.reasons])


def _luminosity_reference(model):
    prov = getattr(model, "provenance", None) or {}
    ref = prov.get("training_luminosity_range")
    if is_measured_range(ref):
        return dict(measured=ref, luminosity_v_lsun=None, distance_kpc=None, age_min_gyr=None,
                    source="model provenance training_luminosity_range (measured from its "
                           "training set per age and distance)")
    if ref is not None:
        if isinstance(ref, dict):
            lum = ref.get("luminosity_v_lsun", ref.get("range"))
            dist = ref.get("distance_kpc")
            age_min = ref.get("age_min_gyr")
        else:
            lum, dist, age_min = ref, None, None
        try:
            lo, hi = (float(v) for v in lum)
        except (TypeError, ValueError):
            lo = hi = None
        if lo is not None:
            return dict(luminosity_v_lsun=(lo, hi),
                        distance_kpc=None if dist is None else tuple(float(v) for v in dist),
                        age_min_gyr=age_min, source="model provenance training_luminosity_range")
    return dict(PAPER_LUMINOSITY_RANGE)


def _measured_bounds(ref, d, age_gyr, notes):
    """(lo, hi) of a measured range at distance ``d`` and ``age_gyr``, with notes saying how."""
    record = ref["measured"]
    b = luminosity_bounds(record, d, age_gyr)
    dists = record["distance_kpc"]
    how = "min-max" if b["bounds"] == "minmax" else \
        "{:g}-{:g} percentile".format(*record.get("percentiles", (1, 99)))
    if not (math.isfinite(b["lo"]) and math.isfinite(b["hi"])):
        notes.append("the model's measured training luminosity range has no maps at these "
                     "ages; the luminosity was not checked")
        return None
    if age_gyr is None:
        lo_age, hi_age = b["ages_gyr"]
        where = (f"ages {lo_age:g}-{hi_age:g} Gyr (age unknown; the old clusters of the paper's "
                 "Fig. 10 test)")
    else:
        where = f"age {age_gyr:g} Gyr"
    notes.append(f"training luminosity range measured from the model's training set "
                 f"({how} of {record.get('n_maps', '?')} maps), {b['lo']:.4g}-{b['hi']:.4g} Lsun "
                 f"at {d:g} kpc and {where}, interpolated in distance and age")
    if b["distance_clamped"] and dists:
        notes.append(f"{d:g} kpc is outside the training distances {min(dists):g}-"
                     f"{max(dists):g} kpc; the range at the nearest one is used")
    return b["lo"], b["hi"]


def check_luminosity(luminosity_v_lsun: float, distance_kpc: float, *, model=None,
                     age_gyr: float | None = None) -> RangeVerdict:
    """Compare a field luminosity (Lsun, at ``distance_kpc``) with the training set's range.

    The range is, in order of preference:

    1. the model's measured ``provenance["training_luminosity_range"]``
       (:func:`pidoc_core.training_range.measure_luminosity_range`: per age bin and distance),
       interpolated at ``distance_kpc`` and ``age_gyr`` (without an age, the envelope of the
       bins older than 11 Gyr, the paper's Fig. 10 test);
    2. an older one-pair form of that key (a pair of Lsun, or a dict with ``luminosity_v_lsun``
       and optionally ``distance_kpc``, ``age_min_gyr``);
    3. the paper's statement (:data:`PAPER_LUMINOSITY_RANGE`: ~300-5000 Lsun for ages > 11 Gyr
       at 10-40 kpc), with a note saying so.

    The distance is compared with the model's ``provenance["training_grid"]`` distances (or
    :data:`TRAINING_GRID`, the paper's).

    Examples
    --------
    >>> check_luminosity(341.23, 17.4).inside, check_luminosity(5224.34, 10.3).inside
    (True, False)
    """
    lum = float(luminosity_v_lsun)
    d = float(distance_kpc)
    reasons, notes = [], []
    prov = getattr(model, "provenance", None) or {}
    grid = {**TRAINING_GRID, **(prov.get("training_grid") or {})}
    d_lo, d_hi = min(grid["distance_kpc"]), max(grid["distance_kpc"])
    if not (math.isfinite(d) and d > 0):
        reasons.append(f"distance {d!r} kpc is not a positive number")
    elif not d_lo <= d <= d_hi:
        reasons.append(f"distance {d:g} kpc is outside the trained {d_lo:g}-{d_hi:g} kpc")
    ref = _luminosity_reference(model)
    if ref.get("measured") is not None:
        age = None if age_gyr is None or not math.isfinite(float(age_gyr)) else float(age_gyr)
        pair = _measured_bounds(ref, d, age, notes) if math.isfinite(d) and d > 0 else None
        lo, hi = pair if pair is not None else (math.nan, math.nan)
    else:
        lo, hi = ref["luminosity_v_lsun"]
    if ref["source"] == PAPER_LUMINOSITY_RANGE["source"]:
        notes.append("the model records no training_luminosity_range; using the paper's range "
                     f"{lo:g}-{hi:g} Lsun (ages > 11 Gyr, 10-40 kpc; Sect. 5, Fig. 10)")
    if ref.get("distance_kpc") is not None:
        rd_lo, rd_hi = ref["distance_kpc"]
        if math.isfinite(d) and not rd_lo <= d <= rd_hi:
            notes.append(f"the luminosity range is stated for {rd_lo:g}-{rd_hi:g} kpc, not "
                         f"{d:g} kpc; it is applied as an approximation")
    if age_gyr is not None and ref.get("age_min_gyr") is not None and math.isfinite(age_gyr) \
            and age_gyr < ref["age_min_gyr"]:
        notes.append(f"the luminosity range is stated for ages > {ref['age_min_gyr']:g} Gyr; "
                     f"this cluster's age is {age_gyr:g} Gyr (younger fields are brighter)")
    if not math.isfinite(lum):
        reasons.append("the field luminosity is not finite")
    elif not (math.isfinite(lo) and math.isfinite(hi)):
        pass  # no range to compare with (said in the notes)
    elif lum < lo:
        reasons.append(f"field luminosity {lum:.4g} Lsun is below the training range "
                       f"{lo:.4g}-{hi:.4g} Lsun")
    elif lum > hi:
        reasons.append(f"field luminosity {lum:.4g} Lsun is above the training range "
                       f"{lo:.4g}-{hi:.4g} Lsun: pi-DOC will read it as a young cluster and "
                       "underestimate M/L (paper Sect. 5)")
    return RangeVerdict(inside=not reasons, reasons=reasons, notes=notes, luminosity_v_lsun=lum,
                        luminosity_range_lsun=(lo, hi), distance_kpc=d, reference=ref["source"])


def _flux_values(flux_map):
    if isinstance(flux_map, xr.Dataset):
        attrs = dict(flux_map.attrs)
        values = flux_map["flux"].values
    elif isinstance(flux_map, xr.DataArray):
        attrs, values = dict(flux_map.attrs), flux_map.values
    else:
        attrs, values = {}, np.asarray(flux_map)
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 2:
        raise ObservationInputError(f"flux map must be 2-D (y, x), got shape {values.shape}")
    return values, attrs


def field_luminosity(flux_map, distance_kpc: float) -> float:
    """V-band luminosity in the field, Lsun: (sum of F) 4 pi d^2, from a flux-map Dataset (its
    linear ``field_flux_lsun_kpc2`` when present) or a log10 map (sum of 10^flux)."""
    values, attrs = _flux_values(flux_map)
    total = attrs.get("field_flux_lsun_kpc2")
    if total is None:
        total = float(np.sum(10.0 ** values))
    return float(total) * 4.0 * math.pi * float(distance_kpc) ** 2


def range_check(flux_map, distance_kpc: float, *, model=None, age_gyr: float | None = None,
                warn: bool = True) -> RangeVerdict:
    """Is an observed field inside π-DOC's training range? (The paper's Fig. 10 test.)

    Checks: the field luminosity at ``distance_kpc`` against the training luminosity range
    (:func:`check_luminosity`); the distance against the trained distances; the map's shape; the
    image statistics against the model's flux standardisation (the mean log10 flux of the map
    within 3 ``flux_std`` of ``flux_mean``) and the fraction of pixels at the flux floor (at most
    1 %; the mocks have none in a cluster's field, while sky noise or over-subtracted background
    gives floored pixels the networks never saw).

    Parameters
    ----------
    flux_map : xarray.Dataset, DataArray or array
        log10 flux map (Lsun kpc^-2), e.g. from :func:`flux_map_from_image`.
    distance_kpc : float
        Distance used for the luminosity, kpc.
    model : PiDOC, optional
        Supplies ``provenance["training_grid"]``, ``provenance["training_luminosity_range"]`` and
        the flux standardisation.
    age_gyr : float, optional
        Age of the cluster, Gyr, for the notes.
    warn : bool
        Emit a :class:`RangeWarning` when outside.

    Returns
    -------
    RangeVerdict
    """
    values, _ = _flux_values(flux_map)
    lum = field_luminosity(flux_map, distance_kpc)
    verdict = check_luminosity(lum, distance_kpc, model=model, age_gyr=age_gyr)
    reasons, notes = list(verdict.reasons), list(verdict.notes)
    shape = tuple(getattr(model, "map_shape", (N_PIXELS, N_PIXELS)))
    if values.shape != shape:
        reasons.append(f"the map is {values.shape[0]} x {values.shape[1]} pixels, the networks "
                       f"take {shape[0]} x {shape[1]}")
    floored = float(np.mean(values <= math.log10(FLUX_FLOOR) + 1e-6))
    if floored > 0.01:
        reasons.append(f"{100 * floored:.1f} % of the pixels are at the flux floor (no or negative "
                       "flux: sky noise or background over-subtraction); the training maps have "
                       "none")
    std = getattr(model, "standardisation", None) or {}
    if "flux_mean" in std and "flux_std" in std:
        mean = float(np.mean(values))
        z = (mean - std["flux_mean"]) / std["flux_std"]
        if abs(z) > 3:
            reasons.append(f"the mean log10 flux {mean:.2f} is {z:+.1f} training standard "
                           f"deviations from the training mean {std['flux_mean']:.2f}")
    out = RangeVerdict(inside=not reasons, reasons=reasons, notes=notes,
                       luminosity_v_lsun=verdict.luminosity_v_lsun,
                       luminosity_range_lsun=verdict.luminosity_range_lsun,
                       distance_kpc=verdict.distance_kpc, reference=verdict.reference)
    if warn and not out.inside:
        warnings.warn("pi-DOC input outside its training range: " + "; ".join(reasons),
                      RangeWarning, stacklevel=2)
    return out
