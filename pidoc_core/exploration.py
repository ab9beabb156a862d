"""One live exploration step: observe a snapshot, predict with π-DOC, measure what went wrong.

:func:`explore` is what the dashboard runs on every slider move and what notebooks call to look at
one mock observation in detail: the mock observation, π-DOC's mass map, age and distance, the
pixel residuals with their statistics along both axes (the paper's Fig. 5 for one map), the mass
and M/L radial profiles (Fig. 7) and the field totals, each beside the constant-M/L baseline.
:func:`training_grid_flags` says which settings lie outside the conditions the networks were
trained on (the paper's Table 1), so a user sees when a prediction is an extrapolation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import xarray as xr

from .evaluation import (
    LOG_MASS_FLOOR,
    constant_ml_mass,
    radial_edges,
    radial_profiles,
    residual_statistics,
)
from .imager import ObservationSetup, observe
from .snapshot import Snapshot

__all__ = ["TRAINING_GRID", "PIXEL_MASS_EDGES", "Exploration", "explore", "training_grid_flags"]

#: Conditions of the paper's training set (Table 1): distances (kpc), PSF FWHMs (arcsec),
#: maximum centre shift (arcsec), rotations (deg), ages (Gyr).
TRAINING_GRID = {
    "distance_kpc": (10.0, 25.0, 50.0, 75.0, 100.0),
    "psf_fwhm_arcsec": (0.5, 1.5),
    "shift_max_arcsec": 5.0,
    "rotations_deg": (0.0, 90.0, 180.0, 270.0),
    "time_gyr": (0.0, 14.0),
}
#: Bin edges of log10 pixel mass (Msun) for the live 2D histogram: 0.1 dex from -3 to 2.
PIXEL_MASS_EDGES = np.round(np.arange(-3.0, 2.0001, 0.1), 10)


def training_grid_flags(setup: ObservationSetup, time_gyr: float, *, grid=None) -> list[str]:
    """Settings of one observation that lie outside the networks' training conditions.

    Parameters
    ----------
    setup : ObservationSetup
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
class Exploration:
    """Everything one exploration step measured. Maps are (y, x) float32 arrays.

    Attributes
    ----------
    observation : xarray.Dataset
        The mock observation (:func:`pidoc_core.imager.observe`): log10 ``flux`` (Lsun kpc^-2)
        and true log10 ``mass`` (Msun).
    mass_pred, mass_baseline : numpy.ndarray
        log10 mass per pixel (Msun) from π-DOC and from the constant-M/L baseline.
    residual : numpy.ndarray
        ``mass_pred - mass_true``, dex.
    pixel_stats : xarray.Dataset
        :func:`pidoc_core.evaluation.residual_statistics` of the field's pixels.
    profiles : xarray.Dataset
        :func:`pidoc_core.evaluation.radial_profiles` of this map.
    age_gyr, distance_kpc : float
        π-DOC's age (Gyr) and distance (kpc); NaN without an age/distance network.
    totals : dict
        Field mass (Msun) and M/L_V (Msun/Lsun), true, π-DOC and baseline.
    flags : list of str
        Settings outside the training conditions (:func:`training_grid_flags`).
    """

    observation: xr.Dataset
    mass_pred: np.ndarray
    mass_baseline: np.ndarray
    residual: np.ndarray
    pixel_stats: xr.Dataset
    profiles: xr.Dataset
    age_gyr: float
    distance_kpc: float
    totals: dict = field(default_factory=dict)
    flags: list = field(default_factory=list)


def explore(snapshot: Snapshot, setup: ObservationSetup, *, model, upsilon: float,
            grid=None) -> Exploration:
    """Observe a snapshot, predict with π-DOC and compare with the truth and the baseline.

    Parameters
    ----------
    snapshot : Snapshot
        The star table.
    setup : ObservationSetup
        Observing conditions.
    model : pidoc_core.model.PiDOC
        Networks with a mass network (an age/distance network is optional).
    upsilon : float
        Mass-to-light ratio of the constant-M/L baseline, Msun/Lsun (V band): the training set's
        mean (:func:`pidoc_core.evaluation.training_mass_to_light`).
    grid : dict, optional
        Training conditions for :func:`training_grid_flags`.

    Returns
    -------
    Exploration
    """
    obs = observe(snapshot, setup)
    flux = obs.flux.values
    mass_true = obs.mass.values
    pred = model.predict(flux)
    mass_pred = pred.mass.values[0].astype(np.float32)
    baseline = constant_ml_mass(flux, setup.distance_kpc, upsilon).astype(np.float32)
    measured = mass_true > LOG_MASS_FLOOR
    stats = residual_statistics(mass_true[measured], mass_pred[measured], edges=PIXEL_MASS_EDGES,
                                quantity="log10 pixel mass", units="dex")
    sx, sy = setup.shift_arcsec
    profiles = radial_profiles(mass_true[None], mass_pred[None], flux[None], setup.distance_kpc,
                               sx, sy, edges=radial_edges())
    lum = obs.attrs["field_luminosity_v_lsun"]
    m_true = obs.attrs["field_mass_msun"]
    m_pred = float(np.sum(10.0 ** mass_pred.astype(np.float64)))
    m_base = float(np.sum(10.0 ** baseline.astype(np.float64)))
    totals = {
        "luminosity_v_lsun": lum,
        "mass_true_msun": m_true,
        "mass_pidoc_msun": m_pred,
        "mass_baseline_msun": m_base,
        "ml_true": m_true / lum if lum > 0 else math.nan,
        "ml_pidoc": m_pred / lum if lum > 0 else math.nan,
        "ml_baseline": m_base / lum if lum > 0 else math.nan,
    }
    has_ad = "age" in pred
    return Exploration(
        observation=obs,
        mass_pred=mass_pred,
        mass_baseline=baseline,
        residual=mass_pred - mass_true,
        pixel_stats=stats,
        profiles=profiles.isel(sample=0) if "sample" in profiles.dims else profiles,
        age_gyr=float(pred.age.values[0]) if has_ad else math.nan,
        distance_kpc=float(pred.distance.values[0]) if has_ad else math.nan,
        totals=totals,
        flags=training_grid_flags(setup, snapshot.time, grid=grid),
    )
