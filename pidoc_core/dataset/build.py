"""Writing dataset stores: the one resumable, dask-parallel zarr writer (:func:`write_dataset`)
and its one-call forms (:func:`build_dataset`, :func:`build_splits`).

See :mod:`pidoc_core.dataset` (*Parallel, safe and resumable writes*) for the protocol.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import xarray as xr

from ..imager import ObservationSetup, observe
from ._cache import _CACHE, _clear_snapshot_cache
from ._common import (_COORD_ATTRS, _COORDS, _FORMAT, _FORMAT_VERSION, _SETUP_FIXED,
                      _STRING_COORDS, _VAR_ATTRS, DatasetError, _check_n, _is_store, _mark_done,
                      _read_attrs, _read_done, _store_path)
from .plan import SamplePlan, plan_samples
from .store import open_dataset

__all__ = ["write_dataset", "build_dataset", "build_splits"]


def _setup_options(imager_options) -> dict:
    opts = dict(imager_options or {})
    fixed = sorted(set(opts) & set(_SETUP_FIXED))
    if fixed:
        raise DatasetError(f"imager_options cannot set {fixed}: they are per-sample conditions")
    try:
        probe = ObservationSetup(distance_kpc=10.0, psf_fwhm_arcsec=1.0, **opts)
    except TypeError as exc:
        raise DatasetError(f"imager_options: {exc}") from None
    except ValueError as exc:
        raise DatasetError(f"imager_options: {exc}") from None
    return {k: v for k, v in probe.to_attrs().items()
            if k not in ("distance_kpc", "psf_fwhm_arcsec", "shift_x_arcsec", "shift_y_arcsec",
                         "rotation_deg", "line_of_sight")}


def _observe_chunk(spec: dict, sources: Mapping) -> dict:
    """The maps and totals of one sample chunk (numpy arrays)."""
    n = spec["stop"] - spec["start"]
    opts = spec["imager"]
    npix = int(round(opts["fov_arcsec"] / opts["pixel_arcsec"]))
    flux = np.empty((n, npix, npix), np.float32)
    mass = np.empty((n, npix, npix), np.float32)
    totals = {k: np.empty(n) for k in ("field_mass", "field_luminosity_v", "field_flux")}
    limit = int(spec["cache_mb"] * 2**20)
    for j in range(n):
        run = spec["run"][j]
        snap = _CACHE.get(sources[run], run, float(spec["time"][j]), limit)
        setup = ObservationSetup(distance_kpc=spec["distance"][j],
                                 psf_fwhm_arcsec=spec["psf_fwhm"][j],
                                 shift_arcsec=(spec["shift_x"][j], spec["shift_y"][j]),
                                 rotation_deg=spec["rotation"][j],
                                 line_of_sight=spec["line_of_sight"][j], **opts)
        obs = observe(snap, setup)
        flux[j] = obs["flux"].values
        mass[j] = obs["mass"].values
        totals["field_mass"][j] = obs.attrs["field_mass_msun"]
        totals["field_luminosity_v"][j] = obs.attrs["field_luminosity_v_lsun"]
        totals["field_flux"][j] = obs.attrs["field_flux_lsun_kpc2"]
    return dict(flux=flux, mass=mass, **totals)


def _write_chunk(spec: dict, sources: Mapping) -> int:
    """Compute one sample chunk, write it into its region, then mark it done. Run by dask."""
    out = _observe_chunk(spec, sources)
    part = xr.Dataset({
        "flux": (("sample", "y", "x"), out["flux"]),
        "mass": (("sample", "y", "x"), out["mass"]),
        "field_mass": (("sample",), out["field_mass"]),
        "field_luminosity_v": (("sample",), out["field_luminosity_v"]),
        "field_flux": (("sample",), out["field_flux"]),
    })
    part.to_zarr(spec["store"], region={"sample": slice(spec["start"], spec["stop"])},
                 mode="r+", consolidated=False)
    _mark_done(spec["store"], spec["chunk"])
    return spec["chunk"]


def _template(plan: SamplePlan, *, chunk_size, imager, provenance) -> xr.Dataset:
    import dask.array as da

    n = len(plan)
    npix = int(round(imager["fov_arcsec"] / imager["pixel_arcsec"]))
    n_chunks = -(-n // chunk_size)
    centres = (np.arange(npix) + 0.5) * imager["pixel_arcsec"] - imager["fov_arcsec"] / 2.0
    maps = dict(shape=(n, npix, npix), chunks=(chunk_size, npix, npix), dtype=np.float32)
    vec = dict(shape=(n,), chunks=(chunk_size,), dtype=np.float64)
    data_vars = {
        "flux": (("sample", "y", "x"), da.zeros(**maps), _VAR_ATTRS["flux"]),
        "mass": (("sample", "y", "x"), da.zeros(**maps), _VAR_ATTRS["mass"]),
        "field_mass": (("sample",), da.zeros(**vec), _VAR_ATTRS["field_mass"]),
        "field_luminosity_v": (("sample",), da.zeros(**vec), _VAR_ATTRS["field_luminosity_v"]),
        "field_flux": (("sample",), da.zeros(**vec), _VAR_ATTRS["field_flux"]),
        "done": (("chunk",), da.zeros((n_chunks,), chunks=(1,), dtype=np.uint8),
                 _VAR_ATTRS["done"]),
    }
    coords = {"sample": ("sample", np.arange(n, dtype=np.int64), _COORD_ATTRS["sample"])}
    for name in _COORDS:
        values = getattr(plan, name)
        if name in _STRING_COORDS:
            values = np.asarray(values.tolist(), dtype=object)  # variable-length UTF-8 in zarr 3
        coords[name] = ("sample", values, _COORD_ATTRS[name])
    coords["y"] = ("y", centres, _COORD_ATTRS["y"])
    coords["x"] = ("x", centres, _COORD_ATTRS["x"])
    return xr.Dataset(data_vars, coords=coords, attrs=provenance)


def _provenance(plan: SamplePlan, *, sources, imager, chunk_size) -> dict:
    from .. import __version__

    src = {}
    for run in sorted(set(plan.run.tolist())):
        s = sources[run]
        info = {"type": f"{type(s).__module__}.{type(s).__qualname__}", "repr": repr(s)}
        for attr in ("rh0_pc", "n_stars", "galactocentric_kpc", "metallicity", "seed", "key",
                     "path", "pattern", "format"):
            v = getattr(s, attr, None)
            if isinstance(v, (int, float, str, Path)) and not isinstance(v, bool):
                info[attr] = str(v) if isinstance(v, Path) else v
        src[run] = info
    grid = plan.grid
    return {
        "title": f"pi-DOC mock V-band observations ({plan.split} split)",
        "Conventions": "CF-1.10",
        "source": "pidoc_core.dataset (mock observations with pidoc_core.imager.observe)",
        "references": "Chardin & Bianchini 2021, MNRAS 504, 5656 (Sect. 2.2-2.3, Table 1)",
        "comment": "M/L of the field = field_mass / field_luminosity_v. Select samples by the "
                   "per-sample coordinates, e.g. ds.where(ds.distance == 50, drop=True).",
        "pidoc_format": _FORMAT,
        "pidoc_format_version": _FORMAT_VERSION,
        "code_version": __version__,
        "split": plan.split,
        "seed": int(plan.seed),
        "n_samples": len(plan),
        "chunk_size": int(chunk_size),
        "n_chunks": -(-len(plan) // chunk_size),
        "runs": sorted(set(plan.run.tolist())),
        "distances_kpc": [float(v) for v in grid.get("distances_kpc", [])],
        "psf_fwhms_arcsec": [float(v) for v in grid.get("psf_fwhms_arcsec", [])],
        "shift_max_arcsec": float(grid.get("shift_max_arcsec", float("nan"))),
        "rotations_deg": [float(v) for v in grid.get("rotations_deg", [])],
        "lines_of_sight": list(grid.get("lines_of_sight", [])),
        "times_gyr_json": json.dumps(grid.get("times_gyr", {})),
        "grid_json": json.dumps(grid, sort_keys=True),
        "sampling": ("combinations (run, time, distance, psf) drawn at random without "
                     "replacement; when more samples than combinations are asked, each is reused "
                     "n // N times plus a random n % N once more, with its own shift/rotation"),
        "source_parameters_json": json.dumps(src, sort_keys=True),
        "imager_setup_json": json.dumps(imager, sort_keys=True),
        "plan_sha256": plan.sha256(),
    }


def _mask_addresses(text: str) -> str:
    """Repr text without memory addresses (``<... at 0x7f...>``), to compare sources."""
    import re

    return re.sub(r"0x[0-9a-fA-F]+", "0x?", text)


def _comparable_sources(text: str):
    """Source parameters without the class path and memory addresses: a renamed class or a
    default repr must not stop a resume, different parameters must."""
    try:
        params = json.loads(text)
    except ValueError:
        return text
    return {run: {k: _mask_addresses(str(v)) for k, v in info.items() if k != "type"}
            for run, info in params.items()}


def _store_differences(path: Path, provenance: dict) -> list[str]:
    """What makes the store at ``path`` a different build from ``provenance`` (empty: same)."""
    if not _is_store(path):
        return ["it is not a zarr store"]
    try:
        attrs = _read_attrs(path)
    except DatasetError as exc:
        return [str(exc)]
    checks = (("plan_sha256", "another sample plan (seed, sizes, grid or geometry)"),
              ("chunk_size", "another chunk size"),
              ("imager_setup_json", "other imager options"),
              ("source_parameters_json", "other sources"))
    out = []
    for key, what in checks:
        old, new = attrs.get(key), provenance[key]
        if key == "source_parameters_json" and isinstance(old, str):
            old, new = _comparable_sources(old), _comparable_sources(new)
        if old != new:
            out.append(what)
    return out


def _clean_partials(path: Path) -> int:
    n = 0
    for p in path.rglob("*.partial"):
        p.unlink(missing_ok=True)
        n += 1
    return n


def _create_template(path: Path, template: xr.Dataset) -> None:
    tmp = path.parent / f".{path.name}.{uuid.uuid4().hex[:12]}.partial-template"
    try:
        template.to_zarr(str(tmp), mode="w-", compute=False, consolidated=False, zarr_format=3)
        os.rename(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _resolve_scheduler(scheduler, workers):
    """Returns (kind, client, owns_client)."""
    if scheduler is None or scheduler == "threads":
        return "threads", None, False
    if scheduler == "synchronous":
        return "synchronous", None, False
    try:
        from distributed import Client
    except ImportError:  # pragma: no cover
        Client = None
    if Client is not None and isinstance(scheduler, Client):
        return "distributed", scheduler, False
    if scheduler == "processes":
        from distributed import Client, LocalCluster

        cluster = LocalCluster(n_workers=workers or os.cpu_count() or 1, threads_per_worker=1,
                               processes=True, dashboard_address=None)
        return "distributed", Client(cluster), True
    if isinstance(scheduler, str) and (":" in scheduler):
        from distributed import Client

        return "distributed", Client(scheduler), True
    raise DatasetError(f"scheduler must be 'threads', 'processes', 'synchronous', a "
                       f"dask.distributed address ('tcp://host:8786') or Client, got {scheduler!r}")


def _chunk_specs(plan: SamplePlan, path: Path, todo, *, chunk_size, imager, cache_mb):
    cols = plan.columns()
    for c in todo:
        start, stop = c * chunk_size, min((c + 1) * chunk_size, len(plan))
        spec = {k: v[start:stop].tolist() for k, v in cols.items()}
        spec.update(store=str(path), chunk=int(c), start=start, stop=stop, imager=imager,
                    cache_mb=cache_mb)
        yield spec


def _check_write_args(plan, sources, chunk_size, workers, snapshot_cache_mb):
    """The checks of :func:`write_dataset`'s arguments; returns ``(chunk_size, workers)``."""
    if not isinstance(plan, SamplePlan):
        raise DatasetError(f"plan must be a SamplePlan, got {type(plan).__name__}")
    if not isinstance(sources, Mapping):
        raise DatasetError(f"sources must be a mapping run name -> source, got {sources!r:.80}")
    missing = sorted(set(plan.run.tolist()) - set(sources))
    if missing:
        raise DatasetError(f"the plan uses run(s) {missing} that are not in sources "
                           f"{list(sources)}")
    for run in set(plan.run.tolist()):
        if not callable(getattr(sources[run], "snapshot", None)):
            raise DatasetError(f"source {run!r} ({type(sources[run]).__name__}) has no "
                               ".snapshot(time_gyr) method")
    chunk_size = _check_n("chunk_size", chunk_size, allow_none=False)
    if workers is not None:
        workers = _check_n("workers", workers, allow_none=False)
    if not (isinstance(snapshot_cache_mb, (int, float)) and snapshot_cache_mb > 0):
        raise DatasetError(f"snapshot_cache_mb must be > 0, got {snapshot_cache_mb!r}")
    return chunk_size, workers


def write_dataset(plan: SamplePlan, sources: Mapping, store, *, chunk_size: int = 32,
                  scheduler=None, workers: int | None = None, imager_options=None,
                  snapshot_cache_mb: float = 2048, progress: bool = True,
                  overwrite: bool = False) -> xr.Dataset:
    """Make the mock observations of a plan and write them to a zarr store; resume if needed.

    Parameters
    ----------
    plan : SamplePlan
        From :func:`plan_samples` or :func:`paper_splits`.
    sources : mapping
        Run name -> object with ``.snapshot(time_gyr)`` returning a
        :class:`~pidoc_core.snapshot.Snapshot` (a
        :class:`~pidoc_core.evolution.ClusterEvolution`, a :class:`SnapshotDirectory`, ...).
    store : str or os.PathLike
        Directory of the zarr store (created; or resumed when it holds the same plan).
    chunk_size : int
        Samples per zarr chunk and per dask task (16-64 read fastest for training).
    scheduler : str or distributed.Client, optional
        ``'threads'`` (default), ``'processes'``, ``'synchronous'``, a scheduler address or a
        Client (see the module notes).
    workers : int, optional
        Threads or local processes (default: the number of cores).
    imager_options : dict, optional
        Extra :class:`~pidoc_core.imager.ObservationSetup` fields (``fov_arcsec``,
        ``pixel_arcsec``, ``moffat_beta``, ``smooth_sigma_px``); defaults are the paper's.
    snapshot_cache_mb : float
        Memory for cached snapshots per worker process, MiB (~3-7 MiB per 50k-star snapshot).
    progress : bool
        Show a tqdm bar (in maps).
    overwrite : bool
        Replace an existing store that holds a different plan (a store with the same plan is
        always resumed, never overwritten).

    Returns
    -------
    xarray.Dataset
        The finished store opened with :func:`open_dataset`.

    Raises
    ------
    DatasetError
        Unknown runs in the plan, a store that holds another plan (without ``overwrite``), bad
        options.
    """
    chunk_size, workers = _check_write_args(plan, sources, chunk_size, workers,
                                            snapshot_cache_mb)
    imager = _setup_options(imager_options)
    path = _store_path(store)
    path.parent.mkdir(parents=True, exist_ok=True)
    provenance = _provenance(plan, sources=sources, imager=imager, chunk_size=chunk_size)

    if path.exists():
        differences = _store_differences(path, provenance)
        if differences:
            if not overwrite:
                raise DatasetError(
                    f"{path} exists and is not a store of this build: {'; '.join(differences)}. "
                    "Pass overwrite=True to replace it, or choose another path")
            shutil.rmtree(path)
    if not path.exists():
        _create_template(path, _template(plan, chunk_size=chunk_size, imager=imager,
                                         provenance=provenance))
    else:
        _clean_partials(path)

    done = _read_done(path)
    todo = np.flatnonzero(~done).tolist()
    if todo:
        specs = list(_chunk_specs(plan, path, todo, chunk_size=chunk_size, imager=imager,
                                  cache_mb=snapshot_cache_mb))
        _run_specs(specs, sources, scheduler=scheduler, workers=workers, progress=progress,
                   total=len(plan), initial=len(plan) - sum(s["stop"] - s["start"] for s in specs),
                   desc=f"{plan.split} {path.name}")
    return open_dataset(path)


def _run_specs(specs, sources, *, scheduler, workers, progress, total, initial, desc):
    from tqdm.auto import tqdm

    sizes = {f"pidoc-chunk-{s['chunk']}": s["stop"] - s["start"] for s in specs}
    bar = tqdm(total=total, initial=initial, unit="map", desc=desc, disable=not progress,
               smoothing=0.1)
    kind, client, owns = _resolve_scheduler(scheduler, workers)
    try:
        if kind == "distributed":
            from distributed import as_completed

            [remote_sources] = client.scatter([dict(sources)], broadcast=True, hash=False)
            futures = [client.submit(_write_chunk, s, remote_sources, pure=False,
                                     key=f"pidoc-chunk-{s['chunk']}-{uuid.uuid4().hex[:8]}")
                       for s in specs]
            for fut in as_completed(futures):
                chunk = fut.result()  # re-raises a task's error here
                bar.update(sizes[f"pidoc-chunk-{chunk}"])
        else:
            import dask
            from dask.callbacks import Callback

            class _Tick(Callback):
                def _posttask(self, key, result, dsk, state, worker_id):
                    name = key if isinstance(key, str) else str(key)
                    if name in sizes:
                        bar.update(sizes[name])

            src = dict(sources)
            write = dask.delayed(_write_chunk, pure=False)
            tasks = [write(s, src, dask_key_name=f"pidoc-chunk-{s['chunk']}") for s in specs]
            with _Tick():
                dask.compute(*tasks, scheduler=kind, num_workers=workers)
    finally:
        bar.close()
        # the cache holds up to snapshot_cache_mb per process: free it once the build is over
        if kind != "distributed":
            _CACHE.clear()
        elif not owns:
            try:
                client.run(_clear_snapshot_cache)
            except Exception:  # noqa: BLE001 -- a lost worker has nothing left to free
                pass
        if owns:
            cluster = getattr(client, "cluster", None)
            client.close()
            if cluster is not None:
                cluster.close()


def build_dataset(sources, *, distances_kpc, psf_fwhms_arcsec, n_samples=None, times=None,
                  shift_max_arcsec=5.0, rotations_deg=(0, 90, 180, 270), lines_of_sight=("z",),
                  seed, store, allow_repeats=True, **write_options) -> xr.Dataset:
    """Plan and write a dataset of mock observations in one call.

    For every chosen (run, time, distance, PSF) — all of them when ``n_samples`` is None, else
    ``n_samples`` drawn at random without replacement (seeded; repeated beyond the grid size) —
    with a random shift and rotation per sample, call :func:`~pidoc_core.imager.observe` and write
    the maps to the zarr store ``store``. Calling it again with the same arguments resumes an
    interrupted build.

    Parameters
    ----------
    sources : mapping
        Run name -> object with ``.snapshot(time_gyr)`` (and ``.times`` unless ``times`` is
        given): :func:`pidoc_core.evolution.paper_runs`, a :class:`SnapshotDirectory`, ...
    distances_kpc, psf_fwhms_arcsec, n_samples, times, shift_max_arcsec, rotations_deg,
    lines_of_sight, seed, allow_repeats
        See :func:`plan_samples`.
    store : str or os.PathLike
        Directory of the zarr store.
    **write_options
        ``chunk_size``, ``scheduler``, ``workers``, ``imager_options``, ``snapshot_cache_mb``,
        ``progress``, ``overwrite``: see :func:`write_dataset`.

    Returns
    -------
    xarray.Dataset
        The store opened lazily (:func:`open_dataset`).

    Raises
    ------
    DatasetError
        Bad arguments (empty grid, unknown run, negative distance, ...) or a store of another plan.

    Examples
    --------
    >>> from pidoc_core.evolution import paper_runs                           # doctest: +SKIP
    >>> ds = build_dataset(paper_runs(), distances_kpc=[10, 50], psf_fwhms_arcsec=[1.0],
    ...                    times=[12.0, 13.0], n_samples=64, seed=1,
    ...                    store="mini.zarr")                                 # doctest: +SKIP
    >>> ds.where(ds.distance == 50, drop=True).flux.shape                  # doctest: +SKIP
    """
    plan = plan_samples(sources, distances_kpc=distances_kpc, psf_fwhms_arcsec=psf_fwhms_arcsec,
                        n_samples=n_samples, times=times, shift_max_arcsec=shift_max_arcsec,
                        rotations_deg=rotations_deg, lines_of_sight=lines_of_sight, seed=seed,
                        allow_repeats=allow_repeats)
    return write_dataset(plan, sources, store, **write_options)


def build_splits(plans: Mapping[str, SamplePlan], sources: Mapping, out_dir, **write_options):
    """Write each plan of :func:`paper_splits` to ``out_dir/<split>.zarr`` (resumable).

    Returns
    -------
    dict
        Split name -> path of its store.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, plan in plans.items():
        paths[name] = out / f"{name}.zarr"
        write_dataset(plan, sources, paths[name], **write_options)
    return paths
