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

from .conventions import FOV_ARCSEC, LOG_MASS_FLOOR
from .conventions import PIXEL_MASS_EDGES as _PIXEL_MASS_EDGES
from .evaluation import (
    constant_ml_mass,
    radial_edges,
    radial_profile,
    radial_profiles,
    residual_statistics,
)
from .imager import ObservationSetup, observe
from .observations.range import training_grid_flags  # the one training-range check
from .paper import TRAINING_GRID
from .snapshot import Snapshot

__all__ = ["TRAINING_GRID", "PIXEL_MASS_EDGES", "MASS_NETWORKS", "Exploration", "explore",
           "training_grid_flags",
           "setting_bounds", "physical_flags", "numbers_table", "enclosed_mass", "to_fits",
           "testset_pixel_statistics", "AGE_OF_UNIVERSE_GYR", "field_size_pc"]

#: Bin edges of log10 pixel mass (Msun) for the live 2D histogram, as an array: the report's
#: (:data:`pidoc_core.conventions.PIXEL_MASS_EDGES`, 0.1 dex from -3 to 2).
PIXEL_MASS_EDGES = np.asarray(_PIXEL_MASS_EDGES)

#: Mass networks :func:`explore` can ask for -> what each means. The observing distance is
#: given to the distance-aware network as a catalogue distance would be; with ``/predicted`` it
#: gets the age/distance network's distance instead; ``flux-only`` is the paper's network.
MASS_NETWORKS = {
    "distance-aware": "distance-aware network, given the observing distance",
    "distance-aware/predicted": "distance-aware network, given π-DOC's predicted distance",
    "flux-only": "flux-only network (the paper's)",
}


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
    unphysical : list of str
        Predictions no cluster can have (:func:`physical_flags`), e.g. a negative age.
    mass_network : str
        The mass network that answered, as :data:`MASS_NETWORKS` names it
        (``distance-aware``, ``distance-aware/predicted`` or ``flux-only``).
    network_note : str
        Why it is not the one asked for (the model lacks it); empty when it is.
    intervals : dict
        68 % intervals (:mod:`pidoc_core.model.intervals`) when the model carries them:
        ``field_mass`` (Msun), ``age`` (Gyr), ``distance`` (kpc), each a ``(low, high)`` pair;
        a quantity the model has no calibration for is absent. Empty without intervals.
    mass_lo, mass_hi : numpy.ndarray or None
        Per-pixel 68 % bounds of ``mass_pred`` (log10 Msun); None without them. The profiles
        then carry ``mass_pred_lo``/``mass_pred_hi``: the ring means of these bounds (Msun), a
        band of the per-pixel intervals, not an interval of the ring mean.
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
    unphysical: list = field(default_factory=list)
    mass_network: str = "flux-only"
    network_note: str = ""
    intervals: dict = field(default_factory=dict)
    mass_lo: np.ndarray | None = None
    mass_hi: np.ndarray | None = None


def _choose_network(model, wanted: str) -> tuple[str, str]:
    """(network to use, note) for a model: the one wanted, else the closest the model has."""
    if wanted not in MASS_NETWORKS:
        raise ValueError(f"mass_network must be one of {list(MASS_NETWORKS)}, got {wanted!r}")
    aware = getattr(model, "mass_ml_network", None) is not None
    flux_only = getattr(model, "mass_network", None) is not None
    if wanted.startswith("distance-aware") and not aware:
        return "flux-only", "this model has no distance-aware network: the flux-only one answers"
    if wanted == "distance-aware/predicted" and not model.has_age_distance:
        return "distance-aware", ("this model has no age/distance network to predict the "
                                  "distance: the distance-aware network is given the observing "
                                  "distance")
    if wanted == "flux-only" and not flux_only:
        return "distance-aware", ("this model has no flux-only network: the distance-aware one "
                                  "answers, given the observing distance")
    return wanted, ""


# explore: ~93 lines, ~25 of them the docstring (each option and its units), ~68 code
def explore(snapshot: Snapshot, setup: ObservationSetup, *, model, upsilon: float,
            grid=None, mass_network: str = "distance-aware") -> Exploration:
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
    mass_network : {'distance-aware', 'distance-aware/predicted', 'flux-only'}
        Which mass network answers (:data:`MASS_NETWORKS`): the distance-aware one given the
        observing distance (as a catalogue distance would be; default) or π-DOC's predicted
        distance, or the paper's flux-only one. A model without it answers with the closest
        network it has and says so in ``network_note``.

    Returns
    -------
    Exploration
    """
    used, note = _choose_network(model, mass_network)
    obs = observe(snapshot, setup)
    flux = obs.flux.values
    mass_true = obs.mass.values
    if used == "distance-aware":
        pred = model.predict(flux, distance_kpc=setup.distance_kpc, mass_network="distance-aware")
    elif used == "distance-aware/predicted":
        pred = model.predict(flux, mass_network="distance-aware")
    else:
        pred = model.predict(flux, mass_network="flux-only")
    mass_pred = pred.mass.values[0].astype(np.float32)
    baseline = constant_ml_mass(flux, setup.distance_kpc, upsilon).astype(np.float32)
    measured = mass_true > LOG_MASS_FLOOR
    stats = residual_statistics(mass_true[measured], mass_pred[measured], edges=PIXEL_MASS_EDGES,
                                quantity="log10 pixel mass", units="dex")
    sx, sy = setup.shift_arcsec
    profiles = radial_profiles(mass_true[None], mass_pred[None], flux[None], setup.distance_kpc,
                               sx, sy, edges=radial_edges())
    profiles = profiles.isel(sample=0) if "sample" in profiles.dims else profiles
    mass_lo = mass_hi = None
    if "mass_lo" in pred and "mass_hi" in pred:
        mass_lo = pred.mass_lo.values[0].astype(np.float32)
        mass_hi = pred.mass_hi.values[0].astype(np.float32)
        band, _ = radial_profile(np.stack([mass_lo, mass_hi]), sx, sy, edges=radial_edges(),
                                 log10_input=True)
        for i, bound in enumerate(("lo", "hi")):
            word = "lower" if bound == "lo" else "upper"
            profiles[f"mass_pred_{bound}"] = ("radius", band[i], {
                "units": "Msun", "long_name": f"ring mean of the per-pixel 68 % {word} bound"})
    intervals = {key: (float(pred[f"{key}_lo"].values[0]), float(pred[f"{key}_hi"].values[0]))
                 for key in ("field_mass", "age", "distance")
                 if f"{key}_lo" in pred and f"{key}_hi" in pred}
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
    age = float(pred.age.values[0]) if has_ad else math.nan
    distance = float(pred.distance.values[0]) if has_ad else math.nan
    return Exploration(
        observation=obs,
        mass_pred=mass_pred,
        mass_baseline=baseline,
        residual=mass_pred - mass_true,
        pixel_stats=stats,
        profiles=profiles,
        age_gyr=age,
        distance_kpc=distance,
        totals=totals,
        flags=training_grid_flags(setup, snapshot.time, grid=grid),
        unphysical=physical_flags(age, distance),
        mass_network=used,
        network_note=note,
        intervals=intervals,
        mass_lo=mass_lo,
        mass_hi=mass_hi,
    )


# ---------------------------------------------------------------------------------------------
# What the dashboard and notebooks show around one exploration step
# ---------------------------------------------------------------------------------------------

#: Age of the Universe, Gyr (Planck 2018): a predicted age above it is unphysical.
AGE_OF_UNIVERSE_GYR = 13.8


def field_size_pc(distance_kpc: float, *, fov_arcsec: float = FOV_ARCSEC) -> float:
    """Side of the field at a distance, pc (small-angle).

    >>> round(field_size_pc(15.0), 2)
    2.91
    """
    return math.radians(fov_arcsec / 3600.0) * distance_kpc * 1e3


def setting_bounds(grid=None) -> dict:
    """Ranges the Explore tab offers: the training conditions, widened to show extrapolation.

    Parameters
    ----------
    grid : dict, optional
        Training conditions in the form of :data:`TRAINING_GRID`; default the paper's.

    Returns
    -------
    dict
        ``distance_kpc`` (half the nearest to 1.5 times the farthest trained distance),
        ``psf_fwhm_arcsec`` (0.6 times the best to 5/3 the worst trained seeing),
        ``shift_arcsec`` (+-1.6 times the trained maximum) and ``time_gyr`` (the trained ages),
        each a ``(low, high)`` pair in the unit its name says.

    Examples
    --------
    >>> setting_bounds()["distance_kpc"], setting_bounds()["shift_arcsec"]
    ((5.0, 150.0), (-8.0, 8.0))
    """
    grid = {**TRAINING_GRID, **(grid or {})}
    d, p, s = grid["distance_kpc"], grid["psf_fwhm_arcsec"], float(grid["shift_max_arcsec"])
    return {
        "distance_kpc": (0.5 * min(d), 1.5 * max(d)),
        "psf_fwhm_arcsec": (round(0.6 * min(p), 6), round(5.0 / 3.0 * max(p), 6)),
        "shift_arcsec": (-1.6 * s, 1.6 * s),
        "time_gyr": tuple(float(t) for t in grid["time_gyr"]),
    }


def physical_flags(age_gyr: float, distance_kpc: float) -> list[str]:
    """Predictions that cannot be right whatever the truth: negative or too large.

    Parameters
    ----------
    age_gyr, distance_kpc : float
        π-DOC's predicted age (Gyr) and distance (kpc); NaN (no such network) is not flagged.

    Returns
    -------
    list of str
        One sentence per unphysical prediction; empty when none.

    Examples
    --------
    >>> physical_flags(-2.8, 15.0)
    ['the predicted age, -2.8 Gyr, is negative: unphysical, the network extrapolates']
    """
    flags = []
    if math.isfinite(age_gyr) and age_gyr < 0:
        flags.append(f"the predicted age, {age_gyr:.1f} Gyr, is negative: unphysical, the network "
                     "extrapolates")
    elif math.isfinite(age_gyr) and age_gyr > AGE_OF_UNIVERSE_GYR:
        flags.append(f"the predicted age, {age_gyr:.1f} Gyr, exceeds the age of the Universe "
                     f"({AGE_OF_UNIVERSE_GYR:g} Gyr): unphysical")
    if math.isfinite(distance_kpc) and distance_kpc <= 0:
        flags.append(f"the predicted distance, {distance_kpc:.1f} kpc, is not positive: "
                     "unphysical")
    return flags


def numbers_table(result: Exploration):
    """The numbers of one step as a table: truth, π-DOC and the constant-M/L baseline.

    Parameters
    ----------
    result : Exploration
        One :func:`explore` step.

    Returns
    -------
    pandas.DataFrame
        Rows ``Field mass (Msun)``, ``M/L_V (Msun/Lsun)`` and, with an age/distance network,
        ``Age (Gyr)`` and ``Distance (kpc)``; columns ``true``, ``π-DOC``, ``constant M/L``
        and the relative errors ``π-DOC error (%)``, ``constant M/L error (%)`` =
        100 (value - true) / true. When the step carries intervals, ``π-DOC 68 % low`` and
        ``π-DOC 68 % high`` bound π-DOC's value (the M/L's are the field mass's divided by the
        field luminosity). Missing entries are NaN. ``attrs``: ``mass_network`` (which network
        answered, :data:`MASS_NETWORKS`), ``network_note``, and ``text``: one line per row,
        e.g. ``Field mass (Msun): true 1.25e+04, π-DOC 1.23e+04 [1.1e+04, 1.4e+04] (68 %),
        constant M/L 9.8e+03``.
    """
    import pandas as pd

    t = result.totals
    attrs = result.observation.attrs
    rows = {
        "Field mass (Msun)": (t["mass_true_msun"], t["mass_pidoc_msun"], t["mass_baseline_msun"]),
        "M/L_V (Msun/Lsun)": (t["ml_true"], t["ml_pidoc"], t["ml_baseline"]),
    }
    if math.isfinite(result.age_gyr):
        rows["Age (Gyr)"] = (float(attrs["snapshot_time_gyr"]), result.age_gyr, math.nan)
        rows["Distance (kpc)"] = (float(attrs["distance_kpc"]), result.distance_kpc, math.nan)
    values = np.array(list(rows.values()), dtype=float)  # (row, [true, π-DOC, constant M/L])
    columns = {"true": values[:, 0], "π-DOC": values[:, 1], "constant M/L": values[:, 2]}
    with np.errstate(invalid="ignore", divide="ignore"):
        for col in ("π-DOC", "constant M/L"):
            columns[f"{col} error (%)"] = 100.0 * (columns[col] - values[:, 0]) / values[:, 0]
    if result.intervals:
        lum = t["luminosity_v_lsun"]
        bounds = {"Field mass (Msun)": result.intervals.get("field_mass"),
                  "Age (Gyr)": result.intervals.get("age"),
                  "Distance (kpc)": result.intervals.get("distance")}
        fm = bounds["Field mass (Msun)"]
        if fm is not None and lum > 0:
            bounds["M/L_V (Msun/Lsun)"] = (fm[0] / lum, fm[1] / lum)
        for i, col in enumerate(("π-DOC 68 % low", "π-DOC 68 % high")):
            columns[col] = np.array([bounds[row][i] if bounds.get(row) is not None else math.nan
                                     for row in rows])
    # one DataFrame built at once (column by column costs ~1 ms a column: a slider move's worth)
    df = pd.DataFrame(columns, index=pd.Index(list(rows), name="quantity"))
    df.attrs["mass_network"] = result.mass_network
    df.attrs["network_note"] = result.network_note
    df.attrs["text"] = [_row_text(label, {col: v[i] for col, v in columns.items()})
                        for i, label in enumerate(rows)]
    return df


def _row_text(label, row) -> str:
    cells = []
    for col in ("true", "π-DOC", "constant M/L"):
        value = row[col]
        if not math.isfinite(value):
            continue
        cell = f"{col} {value:.3g}"
        lo, hi = row.get("π-DOC 68 % low", math.nan), row.get("π-DOC 68 % high", math.nan)
        if col == "π-DOC" and math.isfinite(lo) and math.isfinite(hi):
            cell += f" [{lo:.2g}, {hi:.2g}] (68 %)"
        cells.append(cell)
    return f"{label}: " + ", ".join(cells)


def enclosed_mass(profiles: xr.Dataset, *, upsilon: float) -> dict:
    """Mass inside each radius, true, π-DOC and constant-M/L, from one map's radial profiles.

    Parameters
    ----------
    profiles : xarray.Dataset
        One map's :func:`pidoc_core.evaluation.radial_profiles` (no ``sample`` dimension).
    upsilon : float
        Constant M/L_V of the baseline, Msun/Lsun.

    Returns
    -------
    dict
        ``radius`` (outer edge of each annulus, arcsec) and ``true``, ``pidoc``, ``baseline``:
        mass within that radius, Msun (empty annuli add nothing).
    """
    n = profiles.n_pixels.values.astype(float)
    out = {"radius": profiles.radius_upper.values.astype(float)}
    for key, per_pixel in (("true", profiles.mass_true.values), ("pidoc", profiles.mass_pred.values),
                           ("baseline", upsilon * profiles.luminosity.values)):
        out[key] = np.cumsum(np.nan_to_num(per_pixel * n))
    return out


def to_fits(result: Exploration):
    """The maps of one step as FITS, the observing setup and the numbers in the header.

    Parameters
    ----------
    result : Exploration
        One :func:`explore` step.

    Returns
    -------
    astropy.io.fits.HDUList
        Primary HDU: log10 flux (Lsun kpc^-2); image extensions ``MASS_TRUE``, ``MASS_PIDOC``,
        ``MASS_CONSTML`` (log10 Msun per pixel) and ``RESIDUAL`` (dex). Every header carries
        the setup (distance, seeing, shift, rotation, pixel, field; units in the comments),
        the snapshot, π-DOC's age and distance, the mass network (``MASSNET``) and, with
        intervals, the field mass's 68 % bounds (``MFLD_LO``, ``MFLD_HI``); axes are arcsec offsets from the field centre.
    """
    from astropy.io import fits

    attrs = result.observation.attrs
    n = result.observation.sizes["x"]
    pix = float(attrs["pixel_arcsec"])
    cards = [
        ("ORIGIN", "pi-DOC Explorer", "software"),
        ("SNAPSHOT", str(attrs["snapshot_name"])[:60], "snapshot"),
        ("SNAPTIME", float(attrs["snapshot_time_gyr"]), "[Gyr] snapshot time (true age)"),
        ("DISTANCE", float(attrs["distance_kpc"]), "[kpc] true distance"),
        ("PSF_FWHM", float(attrs["psf_fwhm_arcsec"]), "[arcsec] Moffat PSF FWHM"),
        ("SHIFT_X", float(attrs["shift_x_arcsec"]), "[arcsec] cluster centre offset x"),
        ("SHIFT_Y", float(attrs["shift_y_arcsec"]), "[arcsec] cluster centre offset y"),
        ("ROTATION", float(attrs["rotation_deg"]), "[deg] rotation"),
        ("PIXSCALE", pix, "[arcsec] pixel side"),
        ("FOV", float(attrs["fov_arcsec"]), "[arcsec] field side"),
        ("AGE_PRED", result.age_gyr if math.isfinite(result.age_gyr) else None,
         "[Gyr] pi-DOC age"),
        ("DIST_PRD", result.distance_kpc if math.isfinite(result.distance_kpc) else None,
         "[kpc] pi-DOC distance"),
        ("MASSNET", result.mass_network, "pi-DOC mass network that answered"),
        ("MFLD_LO", result.intervals.get("field_mass", (None, None))[0],
         "[Msun] field mass, 68% interval low"),
        ("MFLD_HI", result.intervals.get("field_mass", (None, None))[1],
         "[Msun] field mass, 68% interval high"),
        ("CTYPE1", "OFFSET-X", "arcsec from the field centre"), ("CUNIT1", "arcsec", ""),
        ("CRPIX1", (n + 1) / 2.0, ""), ("CRVAL1", 0.0, ""), ("CDELT1", pix, ""),
        ("CTYPE2", "OFFSET-Y", "arcsec from the field centre"), ("CUNIT2", "arcsec", ""),
        ("CRPIX2", (n + 1) / 2.0, ""), ("CRVAL2", 0.0, ""), ("CDELT2", pix, ""),
    ]

    def header(bunit, what):
        h = fits.Header([c for c in cards if c[1] is not None])
        h["BUNIT"] = (bunit, what)
        return h

    maps = [("MASS_TRUE", result.observation.mass.values, "log10(Msun)", "true mass per pixel"),
            ("MASS_PIDOC", result.mass_pred, "log10(Msun)", "pi-DOC mass per pixel"),
            ("MASS_CONSTML", result.mass_baseline, "log10(Msun)", "constant-M/L mass per pixel"),
            ("RESIDUAL", result.residual, "dex", "pi-DOC - true")]
    primary = fits.PrimaryHDU(np.asarray(result.observation.flux.values, np.float32),
                              header("log10(Lsun kpc-2)", "V-band flux per pixel"))
    return fits.HDUList([primary] + [
        fits.ImageHDU(np.asarray(data, np.float32), header(unit, what), name=name)
        for name, data, unit, what in maps])


def testset_pixel_statistics(aggregates: xr.Dataset, *, model: str, distances, times):
    """Fig. 5's pixel statistics of the test maps in some distance groups and age bins.

    Parameters
    ----------
    aggregates : xarray.Dataset
        :func:`pidoc_core.report.open_aggregates` of an evaluation (pixel histogram and residual
        sums per distance group and 1-Gyr age bin).
    model : str
        A value of its ``model`` coordinate.
    distances : sequence of float
        True distances to keep, kpc.
    times : (float, float)
        Age range to keep, Gyr (closed): the age bins ``[lower, upper)`` that meet it.

    Returns
    -------
    xarray.Dataset
        Shaped like :func:`pidoc_core.evaluation.residual_statistics` (``histogram`` over
        ``(pred_bin, true_bin)``; ``mu_count``, ``mu_mean``, ``mu_std`` over ``pred_bin``,
        ``xi_*`` over ``true_bin``; bin edges), ready for :func:`pidoc_core.plots.residual_panel`.
        Residuals in dex; ``mu_std`` is NaN when the aggregates hold no sums of squares.
    """
    agg = aggregates.sel(model=model)
    dmask = np.isin(agg.distance_group.values, np.asarray(distances, dtype=float))
    # bins [lower, upper) meeting the closed range: a map at exactly times[1] is kept, as
    # the tab's sample filter keeps it
    tmask = (agg.time_upper.values > times[0]) & (agg.time_lower.values <= times[1])
    pick = (np.ix_(dmask, tmask))

    def total(name):
        return agg[name].values[pick].sum(axis=(0, 1)).astype(float)

    data = {"histogram": (("pred_bin", "true_bin"), total("pixel_histogram").T)}
    for side, dim in (("mu", "pred_bin"), ("xi", "true_bin")):
        count, s = total(f"{side}_count"), total(f"{side}_sum")
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = np.where(count > 0, s / count, np.nan)
            std = (np.sqrt(np.maximum(total(f"{side}_sumsq") / count - mean**2, 0.0))
                   if f"{side}_sumsq" in agg else np.full(count.shape, np.nan))
        data.update({f"{side}_count": (dim, count), f"{side}_mean": (dim, mean),
                     f"{side}_std": (dim, std)})
    coords = {}
    for dim in ("true_bin", "pred_bin"):
        c = agg[dim].values.astype(float)
        half = 0.5 * np.diff(c).mean() if c.size > 1 else 0.05
        coords.update({dim: c, dim.replace("bin", "lower"): (dim, c - half),
                       dim.replace("bin", "upper"): (dim, c + half)})
    return xr.Dataset(data, coords=coords, attrs={"quantity": "log10 mass per pixel",
                                                  "units": "log10(Msun)", "kind": "log"})


testset_pixel_statistics.__test__ = False  # a statistic of the test set, not a pytest test
