"""The baselines, in one place: (a) a constant mass-to-light ratio, (b) gradient-boosted trees.

(a) :func:`training_mass_to_light` and :func:`constant_ml_mass`: every pixel's mass is Upsilon
times its V luminosity, Upsilon the training split's mean M/L. (b) :func:`photometric_features`
and :class:`GBTBaseline`: age and distance from five photometric features. :func:`fit_baselines`
fits both on a training split (the trees on a seeded subsample) and :class:`FittedBaselines`
applies them to test maps chunk by chunk; :func:`baseline_predictions` does both at once.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import xarray as xr

from ..conventions import PIXEL_ARCSEC
from ..dataset import training_mass_to_light  # noqa: F401 - its home is the dataset module
from ._common import _CHUNK, LOG_MASS_FLOOR, EvaluationError, _chunk, _maps, _per_sample
from .totals import pixel_radii

__all__ = ["FEATURE_NAMES", "training_mass_to_light", "constant_ml_mass", "photometric_features",
           "GBTBaseline", "FittedBaselines", "fit_baselines", "baseline_predictions"]

#: Names (and units) of the columns of :func:`photometric_features`.
FEATURE_NAMES = (
    "log10_total_flux",  # log10(Lsun kpc^-2)
    "log10_r50",  # log10(arcsec), radius enclosing half the field's flux
    "concentration_r90_r50",  # dimensionless
    "log10_central_sb",  # log10(Lsun kpc^-2 arcsec^-2), mean within 1"
    "log10_r20",  # log10(arcsec)
)
_PIXEL_ARCSEC = PIXEL_ARCSEC


def constant_ml_mass(flux_log10, distance_kpc, upsilon: float, *,
                     floor: float | None = LOG_MASS_FLOOR):
    """Baseline mass maps with a constant M/L: M_pixel = Upsilon F_pixel 4 pi d^2.

    Parameters
    ----------
    flux_log10 : array_like or DataArray
        log10 flux per pixel, Lsun kpc^-2, ``(sample, y, x)`` or ``(y, x)``.
    distance_kpc : float or array_like
        Distance of each map, kpc.
    upsilon : float
        Mass-to-light ratio, Msun/Lsun (e.g. :func:`training_mass_to_light`).
    floor : float or None
        Lower bound of the output, log10 Msun (the imager's mass floor by default).

    Returns
    -------
    numpy.ndarray
        log10 mass per pixel, Msun, ``(sample, y, x)``, float32 like the datasets.

    Examples
    --------
    >>> m = constant_ml_mass(np.full((1, 2, 2), -3.0), 1 / np.sqrt(4 * np.pi), 2.0)
    >>> round(float(m[0, 0, 0]), 4)  # log10(2 Msun/Lsun x 1e-3 Lsun)
    -2.699
    """
    if not upsilon > 0:
        raise EvaluationError(f"upsilon must be > 0 Msun/Lsun, got {upsilon!r}")
    f = _maps(flux_log10, "flux")
    n = f.shape[0]
    offset = np.log10(upsilon * 4.0 * np.pi * _per_sample(distance_kpc, n, "distance_kpc") ** 2)
    out = np.empty(tuple(f.shape), np.float32)
    for s in range(0, n, _CHUNK):
        m = _chunk(f, s, s + _CHUNK) + offset[s:s + _CHUNK, None, None]
        out[s:s + _CHUNK] = m if floor is None else np.maximum(m, floor)
    return out


# ---------------------------------------------------------------------------------------------
# baseline (b): gradient-boosted trees on photometric features
# ---------------------------------------------------------------------------------------------


def _estimate_centre(f_lin, pixel_arcsec):
    """Flux-weighted centroid of the brightest 1 % of pixels, arcsec from the field centre."""
    n, h, w = f_lin.shape
    c = (np.arange(w) + 0.5) * pixel_arcsec - w * pixel_arcsec / 2.0
    out = np.empty((n, 2))
    for k in range(n):
        img = f_lin[k]
        cut = np.percentile(img, 99.0)
        wgt = np.where(img >= cut, img, 0.0)
        tot = wgt.sum()
        if tot <= 0:
            out[k] = 0.0
            continue
        out[k, 0] = (wgt.sum(axis=0) * c).sum() / tot
        out[k, 1] = (wgt.sum(axis=1) * c).sum() / tot
    return out


def photometric_features(flux_maps, shifts=None, *, pixel_arcsec: float = _PIXEL_ARCSEC,
                         central_radius: float = 1.0, chunk_size: int = _CHUNK):
    """Simple photometric features of flux maps, for the tree baseline.

    Parameters
    ----------
    flux_maps : array_like or DataArray
        log10 flux per pixel, Lsun kpc^-2, ``(sample, y, x)`` or ``(y, x)``.
    shifts : array_like, optional
        ``(sample, 2)`` cluster centre offsets ``(shift_x, shift_y)`` from the field centre,
        arcsec (or one pair for all maps). None: the flux-weighted centroid of the brightest 1 %
        of pixels of each map.
    pixel_arcsec : float
        Pixel side, arcsec.
    central_radius : float
        Radius of the central aperture for the surface brightness, arcsec.

    Returns
    -------
    numpy.ndarray
        ``(sample, 5)`` columns :data:`FEATURE_NAMES`: log10 total flux in the field
        (Lsun kpc^-2), log10 half-light radius r50 (arcsec), concentration r90/r50, log10 mean
        surface brightness within ``central_radius`` (Lsun kpc^-2 arcsec^-2), log10 r20 (arcsec).
        Radii enclose that fraction of the field's flux about the centre (interpolated).
    """
    fm = _maps(flux_maps, "flux_maps")
    n, h, w = fm.shape
    if shifts is not None:
        sh = np.asarray(shifts, dtype=float)
        sh = np.broadcast_to(sh, (n, 2)) if sh.shape == (2,) else sh
        if sh.shape != (n, 2):
            raise EvaluationError(f"shifts must be (sample, 2) = ({n}, 2) arcsec; got "
                                  f"{sh.shape}")
    out = np.empty((n, len(FEATURE_NAMES)))
    for s in range(0, n, chunk_size):
        e = min(n, s + chunk_size)
        f = 10.0 ** _chunk(fm, s, e)
        centre = _estimate_centre(f, pixel_arcsec) if shifts is None else sh[s:e]
        radii = pixel_radii(centre[:, 0], centre[:, 1], n_pixels=h, pixel_arcsec=pixel_arcsec)
        for k in range(e - s):
            r = radii[k].ravel()
            v = f[k].ravel()
            order = np.argsort(r)
            r, v = r[order], v[order]
            cum = np.cumsum(v)
            tot = cum[-1]
            frac = cum / tot
            r20, r50, r90 = np.interp([0.2, 0.5, 0.9], frac, r)
            inner = r <= central_radius
            sb = v[inner].sum() / (inner.sum() * pixel_arcsec**2)
            out[s + k] = [np.log10(tot), np.log10(r50), r90 / r50, np.log10(max(sb, 1e-300)),
                          np.log10(r20)]
    return out


class GBTBaseline:
    """Gradient-boosted trees (scikit-learn) for age and distance from photometric features.

    One regressor per target, on :func:`photometric_features` of the flux maps.

    Parameters
    ----------
    seed : int
        ``random_state`` of every regressor.
    algorithm : {"exact", "hist"}
        :class:`sklearn.ensemble.GradientBoostingRegressor` (defaults here ``n_estimators=300,
        learning_rate=0.05, max_depth=3``; fast on the few features used) or
        :class:`sklearn.ensemble.HistGradientBoostingRegressor` (``max_iter=300,
        learning_rate=0.05, max_leaf_nodes=15``; for very large training sets).
    **params
        Passed to the regressor, overriding those defaults.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> X = rng.uniform(size=(200, 2))
    >>> gbt = GBTBaseline(seed=0).fit_features(X, {"age": 10 * X[:, 0]})
    >>> float(np.abs(gbt.predict_features(X)["age"] - 10 * X[:, 0]).mean()) < 0.5
    True
    """

    _DEFAULTS = {
        "exact": {"n_estimators": 300, "learning_rate": 0.05, "max_depth": 3},
        "hist": {"max_iter": 300, "learning_rate": 0.05, "max_leaf_nodes": 15},
    }

    def __init__(self, *, seed: int = 0, algorithm: str = "exact", **params):
        if algorithm not in self._DEFAULTS:
            raise EvaluationError(f"algorithm must be 'exact' or 'hist', got {algorithm!r}")
        self.seed = int(seed)
        self.algorithm = algorithm
        self.params = {**self._DEFAULTS[algorithm], **params}
        self.models_: dict = {}

    def _regressor(self):
        from sklearn.ensemble import GradientBoostingRegressor, HistGradientBoostingRegressor

        cls = GradientBoostingRegressor if self.algorithm == "exact" else \
            HistGradientBoostingRegressor
        return cls(random_state=self.seed, **self.params)

    def fit_features(self, features, targets: Mapping[str, np.ndarray]):
        """Fit one regressor per target on precomputed features ``(sample, n_features)``."""
        X = np.asarray(features, dtype=float)
        if X.ndim != 2:
            raise EvaluationError(f"features must be (sample, n_features), got {X.shape}")
        if not targets:
            raise EvaluationError("targets must name at least one quantity, e.g. {'age': ...}")
        self.models_ = {}
        for name, y in targets.items():
            y = np.asarray(y.values if isinstance(y, xr.DataArray) else y, dtype=float).ravel()
            if y.shape != (X.shape[0],):
                raise EvaluationError(f"target {name!r} has {y.size} values for {X.shape[0]} "
                                      "maps")
            ok = np.isfinite(y) & np.all(np.isfinite(X), axis=1)
            self.models_[name] = self._regressor().fit(X[ok], y[ok])
        return self

    def predict_features(self, features) -> dict[str, np.ndarray]:
        """Predictions per target from precomputed features."""
        if not self.models_:
            raise EvaluationError("GBTBaseline is not fitted; call fit() first")
        X = np.asarray(features, dtype=float)
        return {name: m.predict(X) for name, m in self.models_.items()}

    def fit(self, flux_maps, targets: Mapping[str, np.ndarray], *, shifts=None):
        """Fit on flux maps (log10 Lsun kpc^-2, ``(sample, y, x)``); ``targets`` maps a name
        (``"age"`` in Gyr, ``"distance"`` in kpc) to one value per map; ``shifts`` as in
        :func:`photometric_features`. Returns self."""
        return self.fit_features(photometric_features(flux_maps, shifts), targets)

    def predict(self, flux_maps, *, shifts=None) -> xr.Dataset:
        """Predictions from flux maps as a Dataset over ``sample`` (like ``PiDOC.predict``):
        one variable per target (``age`` Gyr, ``distance`` kpc)."""
        pred = self.predict_features(photometric_features(flux_maps, shifts))
        units = {"age": "Gyr", "distance": "kpc"}
        return xr.Dataset({k: ("sample", v, {"units": units.get(k, ""),
                                             "long_name": f"GBT baseline {k}"})
                           for k, v in pred.items()}, attrs={"model": "GBT baseline"})




def _shifts(ds):
    """``(sample, 2)`` cluster-centre shifts (arcsec) of a dataset, or None without them."""
    if "shift_x" in ds.variables and "shift_y" in ds.variables:
        return np.stack([ds["shift_x"].values, ds["shift_y"].values], axis=1).astype(float)
    return None


@dataclass(frozen=True)
class FittedBaselines:
    """Both baselines fitted on a training split, ready to apply to test maps.

    Attributes
    ----------
    upsilon : float
        The constant mass-to-light ratio, Msun/Lsun.
    gbt : GBTBaseline
        The trees, fitted on :func:`photometric_features`.
    n_train : int
        Training maps the trees were fitted on.
    """

    upsilon: float
    gbt: GBTBaseline
    n_train: int

    def predict(self, flux_log10, distance_kpc, shifts=None) -> dict[str, np.ndarray]:
        """Baseline predictions for a block of test maps.

        Parameters
        ----------
        flux_log10 : array_like
            log10 flux per pixel, Lsun kpc^-2, ``(sample, y, x)``.
        distance_kpc : array_like
            True distance of each map, kpc (the constant-M/L baseline needs it).
        shifts : array_like, optional
            ``(sample, 2)`` centre shifts, arcsec (see :func:`photometric_features`).

        Returns
        -------
        dict
            ``mass`` (log10 Msun per pixel, float32 ``(sample, y, x)``), ``age`` (Gyr) and
            ``distance`` (kpc) from the trees.
        """
        g = self.gbt.predict_features(photometric_features(flux_log10, shifts))
        return {"mass": constant_ml_mass(flux_log10, distance_kpc, self.upsilon),
                "age": np.asarray(g["age"], np.float64),
                "distance": np.asarray(g["distance"], np.float64)}


def fit_baselines(train: xr.Dataset, *, seed: int = 0, max_train: int | None = None,
                  ml_how: str = "mean", block: int = _CHUNK, progress: bool = False,
                  **gbt_params) -> FittedBaselines:
    """Fit both baselines on a training split.

    Parameters
    ----------
    train : xarray.Dataset
        ``flux`` (sample, y, x; log10 Lsun kpc^-2), ``time`` (Gyr), ``distance`` (kpc),
        ``field_mass`` (Msun), ``field_luminosity_v`` (Lsun), optionally ``shift_x``/``shift_y``
        (arcsec). A zarr-backed dataset is read ``block`` maps at a time.
    seed : int
        Seed of the subsample and of the trees.
    max_train : int, optional
        Fit the trees on a seeded random subsample of at most this many maps (all by default).
        Upsilon always uses the whole split.
    ml_how : {"mean", "ratio"}
        See :func:`training_mass_to_light`.
    block : int
        Maps per feature computation.
    progress : bool
        Show a progress bar.
    **gbt_params
        Passed to :class:`GBTBaseline`.

    Returns
    -------
    FittedBaselines
    """
    upsilon = training_mass_to_light(train, how=ml_how)
    n = train.sizes["sample"]
    if max_train is not None and not max_train >= 1:
        raise EvaluationError(f"max_train must be >= 1 map, got {max_train!r}")
    idx = np.arange(n)
    if max_train is not None and n > max_train:
        rng = np.random.default_rng(seed)
        idx = np.sort(rng.choice(n, size=int(max_train), replace=False))
    sub = train.isel(sample=idx)
    shifts = _shifts(sub)
    feats = np.empty((idx.size, len(FEATURE_NAMES)))
    from tqdm.auto import tqdm

    for s in tqdm(range(0, idx.size, block), disable=not progress, desc="GBT features (train)",
                  unit="block"):
        e = min(idx.size, s + block)
        flux = np.asarray(sub["flux"][s:e].values, dtype=np.float32)
        feats[s:e] = photometric_features(flux, None if shifts is None else shifts[s:e])
    gbt = GBTBaseline(seed=seed, **gbt_params).fit_features(
        feats, {"age": sub["time"].values, "distance": sub["distance"].values})
    return FittedBaselines(upsilon=float(upsilon), gbt=gbt, n_train=int(idx.size))


def baseline_predictions(train: xr.Dataset, test: xr.Dataset, *, seed: int = 0,
                         ml_how: str = "mean", **gbt_params) -> dict[str, xr.Dataset]:
    """Both baselines fitted on ``train`` and applied to ``test``.

    Parameters
    ----------
    train, test : xarray.Dataset
        Datasets with ``flux`` (sample, y, x), coordinates ``distance`` (kpc), ``time`` (Gyr),
        ``shift_x``/``shift_y`` (arcsec); ``train`` also ``field_mass`` and
        ``field_luminosity_v``.
    seed : int
        Seed of the trees.
    ml_how : {"mean", "ratio"}
        See :func:`training_mass_to_light`.

    Returns
    -------
    dict
        ``{"constant M/L": Dataset(mass), "GBT": Dataset(age, distance)}``, in the layout of
        ``PiDOC.predict``; the constant-M/L one uses the test maps' true distances and carries
        ``upsilon`` (Msun/Lsun) in its attributes.
    """
    fitted = fit_baselines(train, seed=seed, ml_how=ml_how, **gbt_params)
    out = fitted.predict(test["flux"], test["distance"].values, _shifts(test))
    const = xr.Dataset({"mass": (("sample", "y", "x"), out["mass"], {"units": "log10(Msun)"})},
                       attrs={"model": "constant M/L", "upsilon": fitted.upsilon})
    gbt = xr.Dataset({k: ("sample", out[k], {"units": u, "long_name": f"GBT baseline {k}"})
                      for k, u in (("age", "Gyr"), ("distance", "kpc"))},
                     attrs={"model": "GBT baseline"})
    return {"constant M/L": const, "GBT": gbt}
