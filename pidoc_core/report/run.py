"""Evaluation of a trained π-DOC on a test split: stored predictions, aggregates and an HTML report.

:func:`evaluate` runs the whole of the paper's Section 4 on a test store:

1. **predictions** -- π-DOC on every test map, streamed from zarr in blocks (never all 8,172 maps in
   memory), plus the two baselines of :mod:`pidoc_core.evaluation`: a constant mass-to-light
   ratio Upsilon taken from the training split, and gradient-boosted trees on photometric features
   fitted on a seeded subsample of the training split (at most ``gbt_max_train`` maps, 4,000 by
   default, to keep the fit to a minute). They are written to a zarr store beside the test store,
   ``<test>.predictions-<model id>.zarr``, through a temporary ``.partial`` store renamed into place
   (an interrupted run resumes from its last finished chunk). A later call with the same model,
   test split, sample count and baseline settings reuses the store and runs no network.
2. **aggregates** -- per-map values, radial profiles and pixel histograms grouped by (true
   distance, 1-Gyr age bin), written as netCDF beside the predictions
   (``<test>.predictions-<model id>.aggregates.nc``, a few MB for the full test set), so the
   dashboard's Test-set tab can filter by distance and age without reading a single map.
3. **statistics** -- Figs 5-9, Table 2 and eqs (1)-(4) with :mod:`pidoc_core.evaluation`, and
   :func:`~pidoc_core.evaluation.summary` of π-DOC, the constant-M/L and GBT baselines beside the
   paper's numbers.
4. **report** -- one self-contained HTML file (:func:`pidoc_core.plots.html_report`; Bokeh inlined,
   nothing loaded from the network) with provenance, the summary table and every figure.

Predictions store layout (zarr format 3)
----------------------------------------
``mass_pred``, ``mass_const_ml``
    float32 ``(sample, y, x)``, log10(Msun) per pixel: π-DOC (only with a mass network) and the
    constant-M/L baseline ``log10(Upsilon F 4 pi d^2)`` with the true distance d.
``age_pred``, ``distance_pred``
    float64 ``(sample,)``, Gyr and kpc: π-DOC (only with an age/distance network).
``age_gbt``, ``distance_gbt``
    float64 ``(sample,)``, Gyr and kpc: the GBT baseline.
``done``
    uint8 ``(chunk,)``: 1 once a chunk of :data:`CHUNK` samples is written (dropped on opening).
coordinates
    ``sample`` and the test store's per-sample coordinates (``run``, ``time``, ``distance``,
    ``psf_fwhm``, ``shift_x``, ``shift_y``, ``rotation``, ``line_of_sight``), ``y``, ``x``.
attributes
    CF ``units``/``long_name`` on every variable; ``model_id``, ``model_sha256`` (of the weights,
    standardisation and architectures), ``model_source``, ``model_manifest_json``; ``test_store``,
    ``test_plan_sha256``, ``n_samples``; ``train_store``, ``train_plan_sha256``, ``upsilon``,
    ``gbt_n_train``, ``gbt_max_train``, ``seed``; ``predictions_key`` (sha256 of what must match
    for a reuse).

Aggregates layout (netCDF, :func:`open_aggregates`)
---------------------------------------------------
dims ``sample``, ``model`` (mass models: ``pidoc``, ``constant_ml``), ``radius`` (25 bins of
1.2"), ``distance_group`` (the distinct true distances), ``time_group`` (1-Gyr bins of the true
age), ``true_bin``/``pred_bin`` (0.1 dex of log10 pixel mass from -3 to 2, :data:`PIXEL_EDGES`).

- per map: ``time``, ``distance``, ``psf_fwhm``, ``shift_x``, ``shift_y``, ``rotation``, ``run``,
  ``distance_index``, ``time_index``; ``mass_true``, ``luminosity_v``, ``ml_true`` (Msun, Lsun,
  Msun/Lsun, totals in the field); ``mass_pred``, ``ml_pred`` ``(model, sample)``; ``age_pred``,
  ``distance_pred``, ``age_gbt``, ``distance_gbt``.
- profiles (eq. 3, float32): ``profile_mass_true``, ``profile_luminosity`` ``(sample, radius)``
  (mean per pixel, Msun and Lsun); ``profile_mass_pred``, ``profile_ml_pred`` ``(model, sample,
  radius)``; ``profile_ml_true`` ``(sample, radius)``.
- pixels (true pixels above the imager's floor): ``pixel_histogram`` ``(model, distance_group,
  time_group, true_bin, pred_bin)`` counts; ``mu_count``, ``mu_sum``, ``mu_sumsq``, ``mu_sum_pct``
  ``(model, distance_group, time_group, pred_bin)`` -- count, sum of residuals r = pred - true
  (dex), of r^2 and of eq. (2) percentage errors per predicted-mass bin, so mu's mean, standard
  deviation and MPE of any selection of groups are exact; the same ``xi_*`` per true-mass bin;
  ``n_outside`` pixels with a value outside the edges.

Examples
--------
>>> from pidoc_core.model import PiDOC                                    # doctest: +SKIP
>>> res = evaluate(PiDOC.load(), "data/paper/test.zarr", train_ds="data/paper/train.zarr",
...                out="report.html")                                      # doctest: +SKIP
>>> res.summary[["π-DOC", "constant M/L", "GBT", "paper"]]                # doctest: +SKIP
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import shutil
import sys
import time as _time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import xarray as xr

from . import evaluation as ev
from ._atomic import atomic_path, replace_directory

__all__ = [
    "ReportError",
    "EvaluationResult",
    "CHUNK",
    "PIXEL_EDGES",
    "TIME_BIN_GYR",
    "MODEL_LABELS",
    "model_identity",
    "predictions_path",
    "aggregates_path",
    "open_predictions",
    "open_aggregates",
    "evaluate",
    "add_evaluate_arguments",
    "run_evaluate",
]

#: Samples per zarr chunk of the predictions store (and per ``done`` marker).
CHUNK = 32
#: Edges of log10 pixel mass (Msun) of the aggregates' pixel histograms: 0.1 dex, -3 to 2.
PIXEL_EDGES = np.round(np.linspace(-3.0, 2.0, 51), 10)
#: Width of the age groups of the aggregates, Gyr.
TIME_BIN_GYR = 1.0
#: Display names of the models (summary columns, report); keys are the ``model`` coordinate.
MODEL_LABELS = {"pidoc": "π-DOC", "constant_ml": "constant M/L", "gbt": "GBT"}

_FORMAT = "pidoc-predictions"
_FORMAT_VERSION = 1
_AGG_VERSION = 1
_BLOCK = 256  # maps per block of the aggregation pass
_PER_SAMPLE = ("run", "time", "distance", "psf_fwhm", "shift_x", "shift_y", "rotation",
               "line_of_sight")
_STRING = ("run", "line_of_sight")
_VAR_ATTRS = {
    "mass_pred": {"units": "log10(Msun)", "long_name": "pi-DOC log10 mass per pixel"},
    "mass_const_ml": {"units": "log10(Msun)",
                      "long_name": "constant-M/L baseline log10 mass per pixel, "
                                   "log10(Upsilon F 4 pi d^2) with the true distance"},
    "age_pred": {"units": "Gyr", "long_name": "pi-DOC age"},
    "distance_pred": {"units": "kpc", "long_name": "pi-DOC distance"},
    "age_gbt": {"units": "Gyr", "long_name": "GBT baseline age (photometric features)"},
    "distance_gbt": {"units": "kpc", "long_name": "GBT baseline distance (photometric features)"},
    "done": {"long_name": "1 once the sample chunk is written (completion marker)"},
}


class ReportError(ValueError):
    """Inputs the evaluation cannot use, or a store that is not what it should be."""


@dataclass
class EvaluationResult:
    """What :func:`evaluate` produced.

    Attributes
    ----------
    summary : pandas.DataFrame
        :func:`pidoc_core.evaluation.summary`: rows = metrics, columns ``unit``, ``π-DOC``,
        ``constant M/L``, ``GBT``, ``paper``, ``paper_source``.
    predictions : xarray.Dataset
        The predictions store, opened lazily (:func:`open_predictions`).
    predictions_path, aggregates_path : pathlib.Path
    aggregates : xarray.Dataset
        The aggregates, in memory.
    statistics : dict
        ``pixel``, ``total_mass``, ``total_ml``, ``age`` (dicts of model label ->
        :func:`~pidoc_core.evaluation.residual_statistics` Dataset), ``distance_table`` and
        ``distance_pdfs`` (label -> Dataset), ``table2`` (DataFrame), ``mosaic_samples``.
    report_path : pathlib.Path or None
    reused_predictions : bool
        True when the stored predictions were reused (no network ran).
    model : dict
        :func:`model_identity`.
    n_figures : int
        Bokeh plots (figures) in the report.
    timings : dict
        Seconds per stage.
    """

    summary: object
    predictions: xr.Dataset
    predictions_path: Path
    aggregates: xr.Dataset
    aggregates_path: Path
    statistics: dict
    report_path: Path | None
    reused_predictions: bool
    model: dict
    n_figures: int = 0
    timings: dict = field(default_factory=dict)


# ---------------------------------------------------------------------------------------------
# identities and paths
# ---------------------------------------------------------------------------------------------


def model_identity(model) -> dict:
    """Content identity of a :class:`~pidoc_core.model.PiDOC`: what its predictions depend on.

    Parameters
    ----------
    model : PiDOC

    Returns
    -------
    dict
        ``sha256``: hex digest over the standardisation, the architecture records and every
        weight array (so two loads of the same weights give the same id, whatever the file);
        ``id``: ``"pidoc-" + sha256[:12]``, used in file names; ``source``; ``loaded_from``;
        ``manifest_json``: the model directory's ``manifest.json`` (with the sha256 of its files)
        when it was loaded with :meth:`PiDOC.load`, else the manifest the model would write, or
        its provenance.
    """
    h = hashlib.sha256()
    h.update(json.dumps(model.standardisation, sort_keys=True).encode())
    for role, net, arch in (("mass", model.mass_network, model.mass_architecture),
                            ("age_distance", model.age_distance_network,
                             model.age_distance_architecture)):
        h.update(role.encode())
        if net is None:
            h.update(b"none")
            continue
        h.update(json.dumps(arch, sort_keys=True, default=str).encode())
        for w in net.get_weights():
            a = np.ascontiguousarray(np.asarray(w))
            h.update(str((a.dtype.str, a.shape)).encode())
            h.update(a.tobytes())
    digest = h.hexdigest()
    prov = dict(getattr(model, "provenance", {}) or {})
    loaded_from = prov.get("loaded_from")
    manifest = None
    from .model import is_saved_model, manifest_path  # Keras is loaded: we hold a model

    if loaded_from and is_saved_model(loaded_from):
        try:
            manifest = json.loads(manifest_path(loaded_from).read_text())
        except (OSError, ValueError):
            manifest = None
    if manifest is None:
        try:
            manifest = model.manifest()
        except Exception:  # no architecture record: keep what is known
            manifest = {"provenance": prov}
    return {
        "id": f"pidoc-{digest[:12]}",
        "sha256": digest,
        "source": str(prov.get("source", "pi-DOC")),
        "loaded_from": str(loaded_from or ""),
        "has_mass": bool(model.has_mass),
        "has_age_distance": bool(model.has_age_distance),
        "manifest_json": json.dumps(manifest, default=str, sort_keys=True),
    }


def _store_of(ds) -> str:
    src = ds.encoding.get("source") if hasattr(ds, "encoding") else None
    return str(Path(src).resolve()) if src else ""


def predictions_path(test_store, model_id: str, *, n_samples: int | None = None,
                     n_total: int | None = None) -> Path:
    """Default predictions store of a model on a test store: ``<test>.predictions-<id>.zarr``.

    With ``n_samples < n_total`` (``limit``) the name ends ``-first<n>.zarr``, so a quick limited
    run does not replace the full one.

    Examples
    --------
    >>> predictions_path("data/paper/test.zarr", "pidoc-0123456789ab").name
    'test.predictions-pidoc-0123456789ab.zarr'
    """
    p = Path(test_store)
    stem = p.name[:-5] if p.name.endswith(".zarr") else p.name
    tag = "" if n_samples is None or n_total is None or n_samples >= n_total else \
        f"-first{n_samples}"
    return p.parent / f"{stem}.predictions-{model_id}{tag}.zarr"


def aggregates_path(predictions_store) -> Path:
    """The aggregates file of a predictions store: ``<store stem>.aggregates.nc`` beside it.

    Examples
    --------
    >>> aggregates_path("data/paper/test.predictions-pidoc-0123456789ab.zarr").name
    'test.predictions-pidoc-0123456789ab.aggregates.nc'
    """
    p = Path(predictions_store)
    stem = p.name[:-5] if p.name.endswith(".zarr") else p.name
    return p.parent / f"{stem}.aggregates.nc"


def _open_input(ds, name):
    from . import dataset as dsmod

    if ds is None:
        return None
    if isinstance(ds, xr.Dataset):
        return ds
    try:
        return dsmod.open_dataset(ds)
    except dsmod.DatasetError as exc:
        raise ReportError(f"{name}: {exc}") from exc


def _check_test(test: xr.Dataset):
    missing = [k for k in ("flux", "mass", "distance", "time", "shift_x", "shift_y")
               if k not in test.variables]
    if missing:
        raise ReportError(f"test_ds lacks {missing}; expected a pi-DOC dataset store "
                          "(pidoc_core.dataset)")
    if "complete" in test.coords and not bool(np.all(test["complete"].values)):
        raise ReportError(f"test store {_store_of(test) or '(in memory)'} is incomplete; finish "
                          "its build first")


# ---------------------------------------------------------------------------------------------
# predictions store
# ---------------------------------------------------------------------------------------------


def _key(model_id_sha, test, n, train_info, *, seed, gbt_max_train, ml_how):
    return {
        "format": _FORMAT,
        "format_version": _FORMAT_VERSION,
        "model_sha256": model_id_sha,
        "test_plan_sha256": str(test.attrs.get("plan_sha256") or _store_of(test)),
        "n_samples": int(n),
        "train_plan_sha256": train_info,
        "seed": int(seed),
        "gbt_max_train": int(gbt_max_train),
        "ml_how": str(ml_how),
    }


def _key_hash(key) -> str:
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()


def _read_zarr_attrs(path: Path) -> dict | None:
    try:
        meta = json.loads((path / "zarr.json").read_text())
    except (OSError, ValueError):
        return None
    return meta.get("attributes", {})


def _matches(attrs: dict | None, key: dict, *, check_train: bool) -> bool:
    if not attrs:
        return False
    for k, v in key.items():
        if k == "train_plan_sha256" and not check_train:
            continue
        if k in ("seed", "gbt_max_train", "ml_how") and not check_train:
            continue
        stored = attrs.get(k)
        if isinstance(v, int) and not isinstance(v, bool):
            try:
                stored = int(stored)
            except (TypeError, ValueError):
                return False
        if stored != v:
            return False
    return True


def open_predictions(path) -> xr.Dataset:
    """Open a predictions store lazily; refuses one that is not complete.

    Returns
    -------
    xarray.Dataset
        The variables and coordinates of the module's "Predictions store layout".
    """
    p = Path(path)
    attrs = _read_zarr_attrs(p)
    if not attrs or attrs.get("format") != _FORMAT:
        raise ReportError(f"{p}: not a pi-DOC predictions store (no {_FORMAT} zarr.json)")
    ds = xr.open_zarr(str(p), consolidated=False)
    if "done" in ds.variables:
        done = np.asarray(ds["done"].values)
        if not done.all():
            raise ReportError(f"{p}: incomplete predictions store ({int(done.sum())} of "
                              f"{done.size} chunks written); run evaluate again to resume")
        ds = ds.drop_vars("done")
    loaded = {}
    for name in _PER_SAMPLE:
        if name in ds.variables:
            v = ds[name].values
            if name in _STRING:
                v = np.array([str(x) for x in np.asarray(v).tolist()], dtype=str)
            loaded[name] = ("sample", v, ds[name].attrs)
    return ds.assign_coords(loaded)


def _template(test, n, identity, key, extra_attrs, *, has_mass, has_ad):
    import dask.array as da

    h, w = test.sizes["y"], test.sizes["x"]
    data = {}
    maps = (["mass_pred"] if has_mass else []) + ["mass_const_ml"]
    for name in maps:
        data[name] = (("sample", "y", "x"),
                      da.zeros((n, h, w), chunks=(CHUNK, h, w), dtype=np.float32),
                      _VAR_ATTRS[name])
    scalars = (["age_pred", "distance_pred"] if has_ad else []) + ["age_gbt", "distance_gbt"]
    for name in scalars:
        data[name] = ("sample", da.zeros(n, chunks=CHUNK, dtype=np.float64), _VAR_ATTRS[name])
    n_chunks = math.ceil(n / CHUNK)
    data["done"] = ("chunk", np.zeros(n_chunks, np.uint8), _VAR_ATTRS["done"])
    coords = {"sample": ("sample", np.arange(n, dtype=np.int64), {"long_name": "sample index "
                                                                  "of the test store"})}
    for name in _PER_SAMPLE:
        if name in test.coords or name in test.variables:
            v = np.asarray(test[name].values[:n])
            if name in _STRING:
                v = np.asarray([str(x) for x in v.tolist()], dtype=object)
            coords[name] = ("sample", v, dict(test[name].attrs))
    for name in ("y", "x"):
        if name in test.coords:
            coords[name] = (name, np.asarray(test[name].values), dict(test[name].attrs))
    attrs = {
        "title": "pi-DOC and baseline predictions on a test split",
        "Conventions": "CF-1.10",
        "source": "pidoc_core.report.evaluate",
        "references": "Chardin & Bianchini 2021, MNRAS 504, 5656 (Sect. 4)",
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "model_id": identity["id"],
        "model_source": identity["source"],
        "model_loaded_from": identity["loaded_from"],
        "model_manifest_json": identity["manifest_json"],
        "test_store": _store_of(test),
        **key,
        "predictions_key": _key_hash(key),
        **extra_attrs,
    }
    ds = xr.Dataset(data, coords=coords, attrs=attrs)
    encoding = {"done": {"chunks": (1,)}}
    return ds, encoding


def _fit_baselines(train, *, seed, gbt_max_train, ml_how, progress):
    """(upsilon, fitted GBTBaseline, n_train used, train indices)."""
    upsilon = ev.training_mass_to_light(train, how=ml_how)
    n_train = train.sizes["sample"]
    rng = np.random.default_rng(seed)
    if n_train > gbt_max_train:
        idx = np.sort(rng.choice(n_train, size=int(gbt_max_train), replace=False))
    else:
        idx = np.arange(n_train)
    sub = train.isel(sample=idx)
    feats = np.empty((idx.size, len(ev.FEATURE_NAMES)))
    shifts = ev._shifts(sub)
    from tqdm.auto import tqdm

    for s in tqdm(range(0, idx.size, _BLOCK), disable=not progress, desc="GBT features (train)",
                  unit="block"):
        e = min(idx.size, s + _BLOCK)
        flux = np.asarray(sub["flux"][s:e].values, dtype=np.float32)
        feats[s:e] = ev.photometric_features(flux, None if shifts is None else shifts[s:e])
    gbt = ev.GBTBaseline(seed=seed).fit_features(
        feats, {"age": sub["time"].values, "distance": sub["distance"].values})
    return upsilon, gbt, int(idx.size)


def _write_predictions(model, test, train, path: Path, n, identity, key, *, batch_size, seed,
                       gbt_max_train, ml_how, progress):
    from tqdm.auto import tqdm

    if train is None:
        raise ReportError("train_ds is needed to fit the baselines (constant M/L and GBT) when "
                          f"no matching predictions store exists at {path}")
    partial = path.parent / f".{path.name}.partial"
    path.parent.mkdir(parents=True, exist_ok=True)
    attrs = _read_zarr_attrs(partial) if partial.exists() else None
    resuming = _matches(attrs, key, check_train=True)
    if partial.exists() and not resuming:
        shutil.rmtree(partial)
    upsilon, gbt, n_gbt = _fit_baselines(train, seed=seed, gbt_max_train=gbt_max_train,
                                         ml_how=ml_how, progress=progress)
    if not resuming:
        extra = {
            "train_store": _store_of(train),
            "upsilon": float(upsilon),
            "upsilon_units": "Msun/Lsun",
            "upsilon_how": f"training_mass_to_light(train, how={ml_how!r}) over the whole "
                           "training split",
            "gbt_n_train": n_gbt,
            "gbt_features": list(ev.FEATURE_NAMES),
            "gbt_params_json": json.dumps({"algorithm": gbt.algorithm, **gbt.params}),
            "gbt_note": f"GBT fitted on a seeded random subsample of {n_gbt} training maps "
                        f"(at most {gbt_max_train}, seed {seed})",
        }
        tmpl, enc = _template(test, n, identity, key, extra, has_mass=model.has_mass,
                              has_ad=model.has_age_distance)
        tmpl.to_zarr(str(partial), mode="w", compute=False, consolidated=False, zarr_format=3,
                     encoding=enc)
    stored = xr.open_zarr(str(partial), consolidated=False)
    done = np.asarray(stored["done"].values).astype(bool)
    upsilon = float(stored.attrs["upsilon"])
    block = max(CHUNK, int(math.ceil(max(1, batch_size) / CHUNK)) * CHUNK)
    d = test["distance"].values.astype(float)
    shifts = np.stack([test["shift_x"].values, test["shift_y"].values], axis=1).astype(float)
    todo = [s for s in range(0, n, block)
            if not done[s // CHUNK:math.ceil(min(n, s + block) / CHUNK)].all()]
    bar = tqdm(total=n, initial=n - sum(min(n, s + block) - s for s in todo),
               disable=not progress, desc="predicting test maps", unit="map")
    for s in todo:
        e = min(n, s + block)
        flux = np.asarray(test["flux"][s:e].values, dtype=np.float32)
        out = {}
        pred = model.predict(flux, batch_size=batch_size)
        if model.has_mass:
            out["mass_pred"] = (("sample", "y", "x"), pred["mass"].values.astype(np.float32))
        if model.has_age_distance:
            out["age_pred"] = ("sample", pred["age"].values.astype(np.float64))
            out["distance_pred"] = ("sample", pred["distance"].values.astype(np.float64))
        out["mass_const_ml"] = (("sample", "y", "x"), ev.constant_ml_mass(flux, d[s:e], upsilon))
        g = gbt.predict_features(ev.photometric_features(flux, shifts[s:e]))
        out["age_gbt"] = ("sample", g["age"].astype(np.float64))
        out["distance_gbt"] = ("sample", g["distance"].astype(np.float64))
        xr.Dataset(out).to_zarr(str(partial), region={"sample": slice(s, e)},
                                consolidated=False)
        c0, c1 = s // CHUNK, math.ceil(e / CHUNK)
        xr.Dataset({"done": ("chunk", np.ones(c1 - c0, np.uint8))}).to_zarr(
            str(partial), region={"chunk": slice(c0, c1)}, consolidated=False)
        bar.update(e - s)
    bar.close()
    replace_directory(partial, path)
    stale = aggregates_path(path)
    if stale.exists():
        stale.unlink()


# ---------------------------------------------------------------------------------------------
# aggregates
# ---------------------------------------------------------------------------------------------


def _bins(values, edges):
    nb = len(edges) - 1
    idx = np.searchsorted(edges, values, side="right") - 1
    idx[values == edges[-1]] = nb - 1
    idx[(idx < 0) | (idx >= nb) | ~np.isfinite(values)] = -1
    return idx


def _groups(test, n):
    d = np.round(test["distance"].values[:n].astype(float), 6)
    t = test["time"].values[:n].astype(float)
    d_groups = np.unique(d)
    d_index = np.searchsorted(d_groups, d)
    t0 = math.floor(np.nanmin(t) / TIME_BIN_GYR) * TIME_BIN_GYR
    nt = int(math.floor((np.nanmax(t) - t0) / TIME_BIN_GYR)) + 1
    t_edges = t0 + TIME_BIN_GYR * np.arange(nt + 1)
    t_index = np.clip(np.floor((t - t0) / TIME_BIN_GYR + 1e-9).astype(int), 0, nt - 1)
    return d_groups, d_index, t_edges, t_index


def _mass_models(pred):
    out = []
    if "mass_pred" in pred.variables:
        out.append(("pidoc", "mass_pred"))
    out.append(("constant_ml", "mass_const_ml"))
    return out


def _compute_aggregates(test, pred, n, *, progress) -> xr.Dataset:
    from tqdm.auto import tqdm

    models = _mass_models(pred)
    nm = len(models)
    d_groups, d_index, t_edges, t_index = _groups(test, n)
    nd, nt = len(d_groups), len(t_edges) - 1
    nb = len(PIXEL_EDGES) - 1
    ng = nd * nt
    group = d_index * nt + t_index
    r_edges = ev.radial_edges()
    nr = len(r_edges) - 1
    hist = np.zeros((nm, ng * nb * nb), np.int64)
    side = {s: {k: np.zeros((nm, ng * nb)) for k in ("count", "sum", "sumsq", "sum_pct")}
            for s in ("mu", "xi")}
    n_out = np.zeros((nm, ng), np.int64)
    dist = test["distance"].values[:n].astype(float)
    sx = test["shift_x"].values[:n].astype(float)
    sy = test["shift_y"].values[:n].astype(float)
    mass_true = np.empty(n)
    lum = np.empty(n)
    mass_pred = np.empty((nm, n))
    p_true = np.empty((n, nr), np.float32)
    p_lum = np.empty((n, nr), np.float32)
    p_ml_true = np.empty((n, nr), np.float32)
    p_pred = np.empty((nm, n, nr), np.float32)
    p_ml_pred = np.empty((nm, n, nr), np.float32)
    for s in tqdm(range(0, n, _BLOCK), disable=not progress, desc="aggregates", unit="block"):
        e = min(n, s + _BLOCK)
        t = np.asarray(test["mass"][s:e].values, dtype=np.float64)
        f = np.asarray(test["flux"][s:e].values, dtype=np.float64)
        keep = t > ev.LOG_MASS_FLOOR + 1e-6
        g_pix = np.broadcast_to(group[s:e, None, None], t.shape)[keep]
        tk = t[keep]
        it = _bins(tk, PIXEL_EDGES)
        for m, (_, var) in enumerate(models):
            p = np.asarray(pred[var][s:e].values, dtype=np.float64)
            tot = ev.map_totals(t, p, f, dist[s:e])
            if m == 0:
                mass_true[s:e] = tot["mass_true"].values
                lum[s:e] = tot["luminosity_v"].values
            mass_pred[m, s:e] = tot["mass_pred"].values
            prof = ev.radial_profiles(t, p, f, dist[s:e], sx[s:e], sy[s:e], edges=r_edges)
            if m == 0:
                p_true[s:e] = prof["mass_true"].values
                p_lum[s:e] = prof["luminosity"].values
                p_ml_true[s:e] = prof["ml_true"].values
            p_pred[m, s:e] = prof["mass_pred"].values
            p_ml_pred[m, s:e] = prof["ml_pred"].values
            pk = p[keep]
            ok = np.isfinite(pk)
            ip = _bins(pk, PIXEL_EDGES)
            r = pk - tk
            with np.errstate(invalid="ignore", over="ignore"):
                pct = ev.percentage_error(tk, pk)
            both = (it >= 0) & (ip >= 0)
            hist[m] += np.bincount((g_pix[both] * nb + it[both]) * nb + ip[both],
                                   minlength=ng * nb * nb)
            n_out[m] += np.bincount(g_pix[ok & ~both], minlength=ng)
            for sname, idx in (("mu", ip), ("xi", it)):
                sel = (idx >= 0) & ok
                lab = g_pix[sel] * nb + idx[sel]
                acc = side[sname]
                acc["count"][m] += np.bincount(lab, minlength=ng * nb)
                acc["sum"][m] += np.bincount(lab, r[sel], minlength=ng * nb)
                acc["sumsq"][m] += np.bincount(lab, r[sel] ** 2, minlength=ng * nb)
                acc["sum_pct"][m] += np.bincount(lab, pct[sel], minlength=ng * nb)
    centres = 0.5 * (PIXEL_EDGES[:-1] + PIXEL_EDGES[1:])
    grp = ("model", "distance_group", "time_group")
    with np.errstate(invalid="ignore", divide="ignore"):
        ml_true = mass_true / lum
        ml_pred = mass_pred / lum[None]
    data = {
        "mass_true": ("sample", mass_true, {"units": "Msun", "long_name": "true total mass in "
                                                                          "the field"}),
        "luminosity_v": ("sample", lum, {"units": "Lsun",
                                         "long_name": "V luminosity of the field, F 4 pi d^2"}),
        "ml_true": ("sample", ml_true, {"units": "Msun/Lsun", "long_name": "true total M/L_V"}),
        "mass_pred": (("model", "sample"), mass_pred, {"units": "Msun",
                                                       "long_name": "predicted total mass"}),
        "ml_pred": (("model", "sample"), ml_pred, {"units": "Msun/Lsun",
                                                   "long_name": "predicted total M/L_V"}),
        "distance_index": ("sample", d_index.astype(np.int32),
                           {"long_name": "index along distance_group"}),
        "time_index": ("sample", t_index.astype(np.int32),
                       {"long_name": "index along time_group"}),
        "profile_mass_true": (("sample", "radius"), p_true,
                              {"units": "Msun", "long_name": "true mean mass per pixel, eq. (3)"}),
        "profile_luminosity": (("sample", "radius"), p_lum,
                               {"units": "Lsun", "long_name": "mean V luminosity per pixel"}),
        "profile_ml_true": (("sample", "radius"), p_ml_true,
                            {"units": "Msun/Lsun", "long_name": "true M/L_V profile"}),
        "profile_mass_pred": (("model", "sample", "radius"), p_pred,
                              {"units": "Msun", "long_name": "predicted mean mass per pixel"}),
        "profile_ml_pred": (("model", "sample", "radius"), p_ml_pred,
                            {"units": "Msun/Lsun", "long_name": "predicted M/L_V profile"}),
        "pixel_histogram": (grp + ("true_bin", "pred_bin"),
                            hist.reshape(nm, nd, nt, nb, nb).astype(np.int32),
                            {"units": "1", "long_name": "pixels per (true, predicted) log10 mass "
                                                        "cell; true pixels above the floor"}),
        "n_outside": (grp, n_out.reshape(nm, nd, nt).astype(np.int32),
                      {"units": "1", "long_name": "pixels with a true or predicted value "
                                                  "outside the bin edges"}),
    }
    for sname, dim, cond in (("mu", "pred_bin", "predicted"), ("xi", "true_bin", "true")):
        acc = side[sname]
        for k, unit, what in (("count", "1", "pixels"), ("sum", "dex", "sum of residuals"),
                              ("sumsq", "dex2", "sum of squared residuals"),
                              ("sum_pct", "%", "sum of eq. (2) percentage errors")):
            arr = acc[k].reshape(nm, nd, nt, nb)
            data[f"{sname}_{k}"] = (grp + (dim,), arr.astype(np.int32 if k == "count" else
                                                             np.float64),
                                    {"units": unit, "long_name": f"{what} per bin of the {cond} "
                                                                 "log10 pixel mass (r = pred - "
                                                                 "true)"})
    for name in ("time", "distance", "psf_fwhm", "shift_x", "shift_y", "rotation"):
        data[name] = ("sample", test[name].values[:n].astype(np.float64), dict(test[name].attrs))
    data["run"] = ("sample", np.asarray([str(v) for v in test["run"].values[:n].tolist()],
                                        dtype=object), {"long_name": "simulation run"})
    for var, out_name in (("age_pred", "age_pred"), ("distance_pred", "distance_pred"),
                          ("age_gbt", "age_gbt"), ("distance_gbt", "distance_gbt")):
        if var in pred.variables:
            data[out_name] = ("sample", np.asarray(pred[var].values, np.float64),
                              dict(pred[var].attrs))
    coords = {
        "sample": ("sample", np.arange(n, dtype=np.int32), {"long_name": "sample index of the "
                                                                          "test store"}),
        "model": ("model", np.asarray([k for k, _ in models], dtype=object),
                  {"long_name": "mass model: " + ", ".join(f"{k} = {MODEL_LABELS[k]}"
                                                           for k, _ in models)}),
        "radius": ("radius", 0.5 * (r_edges[:-1] + r_edges[1:]), {"units": "arcsec"}),
        "radius_lower": ("radius", r_edges[:-1], {"units": "arcsec"}),
        "radius_upper": ("radius", r_edges[1:], {"units": "arcsec"}),
        "distance_group": ("distance_group", d_groups, {"units": "kpc",
                                                        "long_name": "true distance"}),
        "time_group": ("time_group", 0.5 * (t_edges[:-1] + t_edges[1:]),
                       {"units": "Gyr", "long_name": "centre of the 1-Gyr age bin"}),
        "time_lower": ("time_group", t_edges[:-1], {"units": "Gyr"}),
        "time_upper": ("time_group", t_edges[1:], {"units": "Gyr"}),
        "true_bin": ("true_bin", centres, {"units": "log10(Msun)"}),
        "true_lower": ("true_bin", PIXEL_EDGES[:-1], {"units": "log10(Msun)"}),
        "true_upper": ("true_bin", PIXEL_EDGES[1:], {"units": "log10(Msun)"}),
        "pred_bin": ("pred_bin", centres, {"units": "log10(Msun)"}),
        "pred_lower": ("pred_bin", PIXEL_EDGES[:-1], {"units": "log10(Msun)"}),
        "pred_upper": ("pred_bin", PIXEL_EDGES[1:], {"units": "log10(Msun)"}),
    }
    pa = pred.attrs
    attrs = {
        "title": "pi-DOC test-set aggregates (per map, profiles, grouped pixel histograms)",
        "Conventions": "CF-1.10",
        "source": "pidoc_core.report.evaluate",
        "aggregates_version": _AGG_VERSION,
        "predictions_key": str(pa.get("predictions_key", "")),
        "model_id": str(pa.get("model_id", "")),
        "model_sha256": str(pa.get("model_sha256", "")),
        "test_store": str(pa.get("test_store", "")),
        "test_plan_sha256": str(pa.get("test_plan_sha256", "")),
        "upsilon": float(pa.get("upsilon", np.nan)),
        "pixel_floor_log10_msun": float(ev.LOG_MASS_FLOOR),
        "comment": "Pixel statistics leave out true pixels at the imager's floor (empty). "
                   "Residual r = predicted - true (dex); eq. (2) percentage error "
                   "|M_p - M_t| / M_p x 100. mu: per bin of the predicted value; xi: per bin "
                   "of the true value.",
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    return xr.Dataset(data, coords=coords, attrs=attrs)


def _atomic_netcdf(ds: xr.Dataset, path: Path) -> None:
    with atomic_path(path, suffix=".nc") as tmp:
        ds.to_netcdf(tmp)


def open_aggregates(path) -> xr.Dataset:
    """Read an aggregates file into memory (string variables as ``str``)."""
    with xr.open_dataset(path) as ds:
        ds = ds.load()
    for name in ("run", "model"):
        if name in ds.variables:
            vals = [v.decode() if isinstance(v, bytes) else str(v) for v in ds[name].values]
            ds = ds.assign({name: (ds[name].dims, np.asarray(vals, dtype=str), ds[name].attrs)}) \
                if name not in ds.coords else ds.assign_coords(
                    {name: (ds[name].dims, np.asarray(vals, dtype=str), ds[name].attrs)})
    return ds


# ---------------------------------------------------------------------------------------------
# statistics and report
# ---------------------------------------------------------------------------------------------


def _pick_maps(test, n, *, seed, k=4):
    """Up to ``k`` samples, one per true distance first (as Fig. 4), at random (seeded)."""
    rng = np.random.default_rng(seed)
    d = np.round(test["distance"].values[:n].astype(float), 6)
    chosen = []
    for g in np.unique(d)[:k]:
        chosen.append(int(rng.choice(np.flatnonzero(d == g))))
    rest = np.setdiff1d(np.arange(n), chosen)
    while len(chosen) < min(k, n) and rest.size:
        pick = int(rng.choice(rest))
        chosen.append(pick)
        rest = rest[rest != pick]
    return sorted(chosen)


def _table2(tables: dict):
    import pandas as pd

    rows = {}
    for label, tab in tables.items():
        for stat in ("mean", "std", "mae"):
            rows[(label, stat)] = {f"{g:g}": float(v) for g, v in
                                   zip(tab.true_distance.values, tab[stat].values)}
        rows[(label, "count")] = {f"{g:g}": int(v) for g, v in
                                  zip(tab.true_distance.values, tab["count"].values)}
    for stat in ("mean", "std", "mae"):
        rows[("paper", stat)] = {str(d): ev.PAPER_RESULTS[f"distance_{stat}_{d}"]["value"]
                                 for d in (15, 30, 60, 80)}
    df = pd.DataFrame(rows).T
    df.index = pd.MultiIndex.from_tuples(df.index, names=["model", "statistic (kpc)"])
    df.columns.name = "true distance (kpc)"
    return df


def _statistics(test, pred, agg, n, *, seed):
    labels = {"pidoc": MODEL_LABELS["pidoc"], "constant_ml": MODEL_LABELS["constant_ml"]}
    st = {"pixel": {}, "total_mass": {}, "total_ml": {}, "age": {}, "distance_table": {},
          "distance_pdfs": {}}
    for key, var in _mass_models(pred):
        label = labels[key]
        st["pixel"][label] = ev.pixel_residual_statistics(test["mass"], pred[var], width=0.1)
        m = list(agg.model.values).index(key)
        st["total_mass"][label] = ev.residual_statistics(
            np.log10(agg.mass_true.values), np.log10(agg.mass_pred.values[m]), width=0.05,
            quantity="log10 total mass", units="log10(Msun)")
        st["total_ml"][label] = ev.residual_statistics(
            np.log10(agg.ml_true.values), np.log10(agg.ml_pred.values[m]), width=0.05,
            quantity="log10 total M/L_V", units="log10(Msun/Lsun)")
    age_true = test["time"].values[:n].astype(float)
    d_true = test["distance"].values[:n].astype(float)
    for label, a, dv in ((MODEL_LABELS["pidoc"], "age_pred", "distance_pred"),
                         (MODEL_LABELS["gbt"], "age_gbt", "distance_gbt")):
        if a in pred.variables:
            st["age"][label] = ev.residual_statistics(age_true, pred[a].values, width=1.0,
                                                      kind="linear", quantity="age", units="Gyr")
        if dv in pred.variables:
            st["distance_table"][label] = ev.distance_table(d_true, pred[dv].values)
            st["distance_pdfs"][label] = ev.distance_pdfs(d_true, pred[dv].values, width=2.0)
    st["table2"] = _table2(st["distance_table"])
    st["mosaic_samples"] = _pick_maps(test, n, seed=seed)
    return st


def _summary(test, pred):
    preds = {}
    mp = {}
    if "mass_pred" in pred.variables:
        mp["mass"] = pred["mass_pred"].variable
    if "age_pred" in pred.variables:
        mp["age"] = pred["age_pred"].variable
        mp["distance"] = pred["distance_pred"].variable
    if mp:
        preds[MODEL_LABELS["pidoc"]] = xr.Dataset(mp)
    preds[MODEL_LABELS["constant_ml"]] = xr.Dataset({"mass": pred["mass_const_ml"].variable})
    preds[MODEL_LABELS["gbt"]] = xr.Dataset({"age": pred["age_gbt"].variable,
                                             "distance": pred["distance_gbt"].variable})
    return ev.summary(test, preds)


def _count_plots(models) -> int:
    from bokeh.models import Plot

    seen = set()
    for m in models:
        for obj in m.references():
            if isinstance(obj, Plot):
                seen.add(obj.id)
    return len(seen)


def _provenance_text(identity, pred, test, n, n_total, timings, reused, path):
    pa = pred.attrs
    psf = (sorted(set(np.round(test["psf_fwhm"].values[:n], 3).tolist()))
           if "psf_fwhm" in test.variables else "?")
    lines = [
        f"Model: {identity['source']} (id {identity['id']}, sha256 {identity['sha256']}); "
        f"loaded from {identity['loaded_from'] or '(in memory)'}; networks: "
        + ", ".join(k for k, v in (("mass", identity["has_mass"]),
                                   ("age/distance", identity["has_age_distance"])) if v) + ".",
        f"Test set: {pa.get('test_store') or '(in memory)'}, split "
        f"{test.attrs.get('split', '?')}, plan sha256 {test.attrs.get('plan_sha256', '?')}; "
        f"{n} of {n_total} maps evaluated{' (limit)' if n < n_total else ''}; "
        f"distances {sorted(set(np.round(test['distance'].values[:n], 3).tolist()))} kpc, "
        f"PSF FWHM {psf} arcsec, "
        f"ages {float(np.min(test['time'].values[:n])):.2f}-"
        f"{float(np.max(test['time'].values[:n])):.2f} Gyr.",
        f"Training set (baselines): {pa.get('train_store') or '(in memory)'}, plan sha256 "
        f"{pa.get('train_plan_sha256', '?')}.",
        f"Baselines: constant M/L with Upsilon = {float(pa.get('upsilon', np.nan)):.4g} Msun/Lsun "
        f"(mean field M/L_V of the whole training split), mass maps log10(Upsilon F 4 pi d^2) "
        f"with the true distance; {pa.get('gbt_note', 'GBT on photometric features')} "
        f"({', '.join(ev.FEATURE_NAMES)}).",
        f"Predictions: {'reused from' if reused else 'written to'} the store "
        f"{path}; created {pa.get('created', '?')}.",
        "Conventions: residual r = predicted - true; per-bin errors are conditioned on the "
        "predicted value (mu, the paper's left-hand histograms); eq. (2) percentage errors "
        "divide by the predicted mass; true pixels at the imager's floor (empty) are left out "
        "of the pixel statistics; bins of 0.1 dex (pixels), 0.05 dex (totals), 1 Gyr (ages). "
        "The paper's R^2 values (mass_r2, age_distance_r2) are from its validation curves, not "
        "the test set.",
        "Timings (s): " + ", ".join(f"{k} {v:.1f}" for k, v in timings.items()) + ".",
    ]
    return "\n\n".join(lines)


def _build_report(path, *, identity, test, pred, agg, stats, summary_df, n, n_total, timings,
                  reused, predictions_path):
    import holoviews as hv

    from . import plots

    sections = []
    sections.append(("Provenance", _provenance_text(identity, pred, test, n, n_total, timings,
                                                   reused, predictions_path)))
    sections.append(("Summary: Sect. 4 headline numbers, pi-DOC vs baselines vs the paper",
                     [summary_df,
                      "Per-bin summaries are unweighted means / minima / maxima over bins of the "
                      "predicted value; empty model cells mean the model does not predict that "
                      "quantity."]))
    idx = stats["mosaic_samples"]
    mass_var = "mass_pred" if "mass_pred" in pred.variables else "mass_const_ml"
    mass_label = MODEL_LABELS["pidoc"] if mass_var == "mass_pred" else MODEL_LABELS["constant_ml"]
    flux = np.asarray(test["flux"].isel(sample=idx).values)
    mt = np.asarray(test["mass"].isel(sample=idx).values)
    mp = np.asarray(pred[mass_var].isel(sample=idx).values)
    t_true = test["time"].values[idx]
    d_true = test["distance"].values[idx]
    age_p = pred["age_pred"].values[idx] if "age_pred" in pred.variables else None
    dist_p = pred["distance_pred"].values[idx] if "distance_pred" in pred.variables else None
    labels = [f"#{i}" for i in idx]
    fig4 = plots.mosaic(flux, mt, mp, labels=labels, true_age=t_true, pred_age=age_p,
                        true_distance=d_true, pred_distance=dist_p, size=200)
    sections.append((f"Fig. 4: flux, true mass, {mass_label} mass and residual maps",
                     [f"Samples {idx} of the test set (one per true distance, chosen at random); "
                      "rows: input flux, true mass, predicted mass (same colour scale), residual "
                      "predicted - true (dex)." + (
                          "" if mass_var == "mass_pred" else
                          " This model has no mass network: the third row is the constant-M/L "
                          "baseline's mass; its titles give pi-DOC's distance and age."), fig4]))
    fig5 = []
    for label, st in stats["pixel"].items():
        s = ev.bin_summary(st)
        s_hi = ev.bin_summary(st, lower=-1.0)
        fig5.append(f"{label}: mean eq. (2) error {s['mean']:.1f} % over {s['n_bins']} bins of "
                    f"predicted mass (min {s['min']:.1f} %, max {s['max']:.1f} %); "
                    f"log10 M >= -1: {s_hi['mean']:.1f} % (min {s_hi['min']:.1f} %, "
                    f"max {s_hi['max']:.1f} %); R^2 {st.attrs['r2']:.3f}. Paper: 27.4 % "
                    "(13.7-95.0 %), 17.6 % (13.7-22.1 %).")
        fig5.append(plots.residual_panel(st, label="log10 M per pixel", units="Msun",
                                         title=f"{label}: pixel mass"))
    sections.append(("Fig. 5: pixel-by-pixel mass, true vs predicted, with mu and xi", fig5))
    fig6 = []
    for label in stats["total_mass"]:
        fig6.append(f"{label}: left total mass, right total M/L_V (luminosity F 4 pi d^2 with "
                    "the true distance).")
        fig6.append(plots.totals_panels(stats["total_mass"][label], stats["total_ml"][label]))
    sections.append(("Fig. 6: total mass and total M/L per map", fig6))
    fig7 = []
    d_idx = np.asarray(idx)
    for key, var in _mass_models(pred):
        prof = ev.radial_profiles(mt, np.asarray(pred[var].isel(sample=idx).values), flux,
                                  d_true, test["shift_x"].values[d_idx],
                                  test["shift_y"].values[d_idx])
        fig7.append(f"{MODEL_LABELS[key]}: true (solid) and predicted (dashed) profiles of the "
                    "Fig. 4 maps, 25 bins of 1.2 arcsec; lower panels true / predicted.")
        fig7.append(plots.profile_panels(prof, labels=labels))
    sections.append(("Fig. 7: mass (eq. 3) and M/L radial profiles", fig7))
    fig8 = []
    for label, st in stats["age"].items():
        s = ev.bin_summary(st, statistic="mae")
        fig8.append(f"{label}: mean eq. (4) MAE {s['mean']:.2f} Gyr over {s['n_bins']} age bins "
                    f"(min {s['min']:.2f}, max {s['max']:.2f} Gyr). Paper: 1.26 Gyr "
                    "(0.33-1.64 Gyr).")
        fig8.append(plots.residual_panel(st, label="age", units="Gyr", statistic="mae",
                                         title=f"{label}: age"))
    sections.append(("Fig. 8: age, true vs predicted (eq. 4)", fig8 or
                     "No model predicts ages."))
    fig9 = []
    for label, pdf in stats["distance_pdfs"].items():
        fig9.append(f"{label}:")
        fig9.append(plots.distance_pdf_plot(pdf).opts(title=f"{label}: predicted distance PDFs",
                                                      backend="bokeh"))
    sections.append(("Fig. 9: predicted distance PDFs per true distance", fig9 or
                     "No model predicts distances."))
    sections.append(("Table 2: predicted distances by true distance (kpc)",
                     [stats["table2"], "Population standard deviation; MAE as eq. (4)."]))
    # render once here, to count the figures; html_report embeds Bokeh models as they are
    rendered = []
    for heading, content in sections:
        items = content if isinstance(content, list) else [content]
        out = []
        for c in items:
            if isinstance(c, hv.core.Dimensioned):
                out.append(hv.render(c, backend="bokeh"))
            else:
                out.append(c)
        rendered.append((heading, out))
    models = [c for _, items in rendered for c in items if hasattr(c, "references")]
    n_plots = _count_plots(models)
    title = f"pi-DOC evaluation report: {identity['id']} on {test.attrs.get('split', 'test')} set"
    written = plots.html_report(rendered, path, title=title)
    return written, n_plots


# ---------------------------------------------------------------------------------------------
# evaluate
# ---------------------------------------------------------------------------------------------


def evaluate(model, test_ds, *, train_ds, out=None, predictions_store=None, batch_size: int = 64,
             limit: int | None = None, progress: bool = True, seed: int = 0,
             gbt_max_train: int = 4000, ml_how: str = "mean") -> EvaluationResult:
    """Evaluate π-DOC and the baselines on a test split, as in the paper's Section 4.

    Parameters
    ----------
    model : PiDOC
        The networks (:meth:`PiDOC.load`, :meth:`PiDOC.from_v01`, ...). A model without a mass
        network gives no π-DOC mass statistics (NaN rows); one without an age/distance network
        no age/distance ones.
    test_ds : xarray.Dataset or path
        The test store (:func:`pidoc_core.dataset.open_dataset`): ``flux``, ``mass``
        (sample, y, x) and the per-sample ``time`` (Gyr), ``distance`` (kpc), ``shift_x``,
        ``shift_y`` (arcsec), ``psf_fwhm`` (arcsec).
    train_ds : xarray.Dataset or path or None
        The training split, for the baselines: Upsilon = mean field M/L_V over all its maps,
        and the GBT fit on at most ``gbt_max_train`` of its maps. May be None only when a
        matching predictions store exists.
    out : path-like, optional
        The HTML report to write (none when None).
    predictions_store : path-like, optional
        Where the predictions go (default :func:`predictions_path` beside the test store; needed
        when ``test_ds`` is an in-memory Dataset without a store).
    batch_size : int
        Maps per network call; maps are read from zarr in blocks of the next multiple of
        :data:`CHUNK` (at least 32), so memory stays bounded.
    limit : int, optional
        Evaluate only the first ``limit`` test maps (quick checks); the store name says so.
    progress : bool
        tqdm progress bars.
    seed : int
        Seed of the GBT subsample, the trees and the choice of the Fig. 4 maps.
    gbt_max_train : int
        Largest number of training maps the GBT baseline is fitted on.
    ml_how : {"mean", "ratio"}
        Upsilon as the mean of per-map M/L or the ratio of sums
        (:func:`~pidoc_core.evaluation.training_mass_to_light`).

    Returns
    -------
    EvaluationResult

    Raises
    ------
    ReportError
        An incomplete or unusable store, no training set when one is needed, no path for the
        predictions.
    """
    timings = {}
    t_start = _time.perf_counter()
    test = _open_input(test_ds, "test_ds")
    train = _open_input(train_ds, "train_ds")
    _check_test(test)
    n_total = int(test.sizes["sample"])
    if limit is not None and int(limit) < 1:
        raise ReportError(f"limit must be >= 1 maps, got {limit!r}")
    n = n_total if limit is None else min(n_total, int(limit))
    test = test.isel(sample=slice(0, n)) if n < n_total else test
    identity = model_identity(model)
    if predictions_store is not None:
        path = Path(predictions_store)
    elif _store_of(test):
        path = predictions_path(_store_of(test), identity["id"], n_samples=n, n_total=n_total)
    elif out is not None:
        path = predictions_path(Path(out).with_suffix(".zarr"), identity["id"], n_samples=n,
                                n_total=n_total)
    else:
        raise ReportError("test_ds is an in-memory Dataset: pass predictions_store= (or out=) so "
                          "the predictions have somewhere to go")
    path = path.resolve()
    train_info = None if train is None else str(train.attrs.get("plan_sha256")
                                                or _store_of(train) or "in-memory")
    key = _key(identity["sha256"], test, n, train_info, seed=seed, gbt_max_train=gbt_max_train,
               ml_how=ml_how)
    reused = path.exists() and _matches(_read_zarr_attrs(path), key,
                                        check_train=train is not None)
    if not reused:
        _write_predictions(model, test, train, path, n, identity, key, batch_size=batch_size,
                           seed=seed, gbt_max_train=gbt_max_train, ml_how=ml_how,
                           progress=progress)
    pred = open_predictions(path)
    timings["predictions"] = _time.perf_counter() - t_start
    t0 = _time.perf_counter()
    agg_path = aggregates_path(path)
    agg = None
    if agg_path.exists():
        try:
            agg = open_aggregates(agg_path)
            if (agg.attrs.get("predictions_key") != pred.attrs.get("predictions_key")
                    or int(agg.attrs.get("aggregates_version", -1)) != _AGG_VERSION
                    or agg.sizes.get("sample") != n):
                agg = None
        except (OSError, ValueError):
            agg = None
    if agg is None:
        agg = _compute_aggregates(test, pred, n, progress=progress)
        _atomic_netcdf(agg, agg_path)
        agg = open_aggregates(agg_path)
    timings["aggregates"] = _time.perf_counter() - t0
    t0 = _time.perf_counter()
    stats = _statistics(test, pred, agg, n, seed=seed)
    timings["statistics"] = _time.perf_counter() - t0
    t0 = _time.perf_counter()
    summary_df = _summary(test, pred)
    timings["summary"] = _time.perf_counter() - t0
    report_path, n_plots = None, 0
    if out is not None:
        t0 = _time.perf_counter()
        report_path, n_plots = _build_report(Path(out), identity=identity, test=test, pred=pred,
                                             agg=agg, stats=stats, summary_df=summary_df, n=n,
                                             n_total=n_total,
                                             timings=dict(timings), reused=reused,
                                             predictions_path=path)
        timings["report"] = _time.perf_counter() - t0
    timings["total"] = _time.perf_counter() - t_start
    return EvaluationResult(summary=summary_df, predictions=pred, predictions_path=path,
                            aggregates=agg, aggregates_path=agg_path, statistics=stats,
                            report_path=report_path, reused_predictions=reused, model=identity,
                            n_figures=n_plots, timings=timings)


# ---------------------------------------------------------------------------------------------
# command line
# ---------------------------------------------------------------------------------------------


def add_evaluate_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add the arguments of ``pidoc evaluate`` to a (sub-)parser; returns it.

    ``pidoc evaluate --weights DIR --dataset DIR_OR_TEST_STORE [--train STORE] --out report.html
    [--batch-size N] [--limit N] [--predictions STORE] [--gbt-train N] [--seed S] [--quiet]``.
    Set ``func=run_evaluate`` on it.
    """
    parser.add_argument("--weights", required=True,
                        help="a saved pi-DOC model directory or the authors' "
                             "v0.1 release directory")
    parser.add_argument("--dataset", required=True,
                        help="directory of split stores (test.zarr, train.zarr) or one test store")
    parser.add_argument("--train", default=None,
                        help="training store for the baselines (default: train.zarr next to the "
                             "test store)")
    parser.add_argument("--out", required=True, help="HTML report to write")
    parser.add_argument("--predictions", default=None,
                        help="predictions store (default: <test>.predictions-<model id>.zarr "
                             "beside the test store)")
    parser.add_argument("--batch-size", type=int, default=64, help="maps per network call")
    parser.add_argument("--limit", type=int, default=None,
                        help="evaluate only the first N test maps")
    parser.add_argument("--gbt-train", type=int, default=4000,
                        help="largest number of training maps the GBT baseline is fitted on")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    return parser


def _resolve_stores(dataset, train):
    d = Path(dataset)
    if (d / "zarr.json").is_file():
        test_path = d
    elif (d / "test.zarr").is_dir():
        test_path = d / "test.zarr"
    else:
        raise ReportError(f"--dataset {d}: neither a dataset store (zarr.json) nor a directory "
                          "holding test.zarr")
    if train is not None:
        train_path = Path(train)
    else:
        train_path = test_path.parent / "train.zarr"
        if not train_path.is_dir():
            train_path = None
    return test_path, train_path


def run_evaluate(args) -> int:
    """Run ``pidoc evaluate`` from parsed arguments (see :func:`add_evaluate_arguments`)."""
    from .model import ModelError, open_model

    try:
        model = open_model(args.weights)
    except ModelError as exc:
        print(f"pidoc evaluate: error: {exc}", file=sys.stderr)
        return 2
    try:
        test_path, train_path = _resolve_stores(args.dataset, args.train)
        res = evaluate(model, test_path, train_ds=train_path, out=args.out,
                       predictions_store=args.predictions, batch_size=args.batch_size,
                       limit=args.limit, progress=not args.quiet, seed=args.seed,
                       gbt_max_train=args.gbt_train)
    except ReportError as exc:
        print(f"pidoc evaluate: error: {exc}", file=sys.stderr)
        return 2
    import pandas as pd

    with pd.option_context("display.width", 200, "display.max_rows", 200,
                           "display.max_colwidth", 40):
        print(res.summary.drop(columns=["paper_source"]).to_string(float_format="{:.4g}".format))
    print(f"predictions: {res.predictions_path} ({'reused' if res.reused_predictions else 'new'})")
    print(f"aggregates:  {res.aggregates_path}")
    print(f"report:      {res.report_path} ({res.n_figures} figures)")
    return 0
