"""The predictions store: pi-DOC and baseline predictions on a test split, resumable zarr.

Layout in :mod:`pidoc_core.report`. :func:`model_identity` names a model by its weights;
:func:`predictions_path` and :func:`aggregates_path` give the default file names.
"""

from __future__ import annotations

import hashlib
import json
import math
import shutil
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import xarray as xr

from .. import evaluation as ev
from .._atomic import replace_directory
from ._common import CHUNK, ReportError

__all__ = ["model_identity", "predictions_path", "aggregates_path", "open_predictions"]

_FORMAT = "pidoc-predictions"
_FORMAT_VERSION = 1
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
#: 68 % interval bounds stored when the model carries calibrated intervals.
_BOUNDS = {"field_mass_pred_lo": ("field_mass_lo", "Msun"),
           "field_mass_pred_hi": ("field_mass_hi", "Msun"),
           "age_pred_lo": ("age_lo", "Gyr"), "age_pred_hi": ("age_hi", "Gyr"),
           "distance_pred_lo": ("distance_lo", "kpc"), "distance_pred_hi": ("distance_hi", "kpc")}
#: How :func:`~pidoc_core.report.evaluate` runs the mass network: name -> predict() keywords
#: (``"given"``: the true distance of each test map, as from a catalogue).
MASS_MODES = {"auto": {}, "distance-aware": {"mass_network": "distance-aware",
                                             "distance_kpc": "given"},
              "distance-aware/predicted": {"mass_network": "distance-aware"},
              "flux-only": {"mass_network": "flux-only"}}


def predict_kwargs(mass_mode: str, distance_kpc) -> dict:
    """Keywords of :meth:`PiDOC.predict` for an evaluation ``mass_mode`` (see MASS_MODES)."""
    if mass_mode not in MASS_MODES:
        raise ReportError(f"mass_mode must be one of {list(MASS_MODES)}, got {mass_mode!r}")
    kw = dict(MASS_MODES[mass_mode])
    if kw.get("distance_kpc") == "given":
        kw["distance_kpc"] = distance_kpc
    return kw



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
    nets = [("mass", model.mass_network, model.mass_architecture),
            ("age_distance", model.age_distance_network, model.age_distance_architecture)]
    if getattr(model, "mass_ml_network", None) is not None:  # absent: the same id as before
        nets.append(("mass_ml", model.mass_ml_network, model.mass_ml_architecture))
    h.update(json.dumps(model.provenance.get("intervals"), sort_keys=True).encode()
             if model.provenance.get("intervals") else b"")
    for role, net, arch in nets:
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
    from ..model import is_saved_model, manifest_path  # Keras is loaded: we hold a model

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
    from .. import dataset as dsmod

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


def _key(model_id_sha, test, n, train_info, *, seed, gbt_max_train, ml_how, mass_mode="auto"):
    return {
        "mass_mode": str(mass_mode),
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


def _template(test, n, identity, key, extra_attrs, *, has_mass, has_ad, bounds=()):
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
    for name in bounds:
        var, units = _BOUNDS[name]
        data[name] = ("sample", da.zeros(n, chunks=CHUNK, dtype=np.float64),
                      {"units": units, "long_name": f"pi-DOC 68 % interval bound ({var})"})
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


def _write_predictions(model, test, train, path: Path, n, identity, key, *, batch_size, seed,
                       gbt_max_train, ml_how, progress, mass_mode="auto"):
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
    fitted = ev.fit_baselines(train, seed=seed, max_train=gbt_max_train, ml_how=ml_how,
                              progress=progress)
    upsilon, gbt, n_gbt = fitted.upsilon, fitted.gbt, fitted.n_train
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
        bounds = [b for b, (var, _) in _BOUNDS.items() if model.provenance.get("intervals")
                  and (model.has_mass or not var.startswith("field_mass"))
                  and (model.has_age_distance or var.startswith("field_mass"))]
        tmpl, enc = _template(test, n, identity, key, extra, has_mass=model.has_mass,
                              has_ad=model.has_age_distance, bounds=bounds)
        tmpl.to_zarr(str(partial), mode="w", compute=False, consolidated=False, zarr_format=3,
                     encoding=enc)
    stored = xr.open_zarr(str(partial), consolidated=False)
    done = np.asarray(stored["done"].values).astype(bool)
    fitted = ev.FittedBaselines(float(stored.attrs["upsilon"]), gbt, n_gbt)
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
        pred = model.predict(flux, batch_size=batch_size, **predict_kwargs(mass_mode, d[s:e]))
        for name, (var, _) in _BOUNDS.items():
            if name in stored.variables and var in pred:
                out[name] = ("sample", pred[var].values.astype(np.float64))
        if model.has_mass:
            out["mass_pred"] = (("sample", "y", "x"), pred["mass"].values.astype(np.float32))
        if model.has_age_distance:
            out["age_pred"] = ("sample", pred["age"].values.astype(np.float64))
            out["distance_pred"] = ("sample", pred["distance"].values.astype(np.float64))
        base = fitted.predict(flux, d[s:e], shifts[s:e])
        out["mass_const_ml"] = (("sample", "y", "x"), base["mass"])
        out["age_gbt"] = ("sample", base["age"])
        out["distance_gbt"] = ("sample", base["distance"])
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
