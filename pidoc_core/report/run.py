"""``evaluate``: predictions, aggregates, statistics and the report in one call; ``pidoc evaluate``."""

from __future__ import annotations

import argparse
import sys
import time as _time
from dataclasses import dataclass, field
from pathlib import Path

import xarray as xr

from ._common import CHUNK, ReportError  # noqa: F401  (CHUNK: cited in evaluate's docstring)
from .aggregates import _AGG_VERSION, _atomic_netcdf, _compute_aggregates, open_aggregates
from .html import _build_report, _statistics, _summary
from .store import (
    _check_test,
    _key,
    _matches,
    _open_input,
    _read_zarr_attrs,
    _store_of,
    _write_predictions,
    aggregates_path,
    model_identity,
    open_predictions,
    predict_kwargs,
    predictions_path,
)

#: File-name suffix of each evaluation mass mode (the predictions of each mode are stored apart).
_MODE_SUFFIX = {"distance-aware": "-da", "distance-aware/predicted": "-dap", "flux-only": "-fo"}

__all__ = ["EvaluationResult", "evaluate", "add_evaluate_arguments", "run_evaluate"]


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



def _predictions_target(predictions_store, test, out, identity, n, n_total) -> Path:
    """Where the predictions go: the given store, else beside the test store or the report."""
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
    return path.resolve()


def _aggregates(agg_path: Path, test, pred, n, *, progress) -> xr.Dataset:
    """The aggregates file of these predictions, reused when it matches, else (re)computed."""
    if agg_path.exists():
        try:
            agg = open_aggregates(agg_path)
            if (agg.attrs.get("predictions_key") == pred.attrs.get("predictions_key")
                    and int(agg.attrs.get("aggregates_version", -1)) == _AGG_VERSION
                    and agg.sizes.get("sample") == n):
                return agg
        except (OSError, ValueError):
            pass
    _atomic_netcdf(_compute_aggregates(test, pred, n, progress=progress), agg_path)
    return open_aggregates(agg_path)


# evaluate: ~104 lines, ~50 of them the docstring (each option and its units), ~54 code
def evaluate(model, test_ds, *, train_ds, out=None, predictions_store=None, batch_size: int = 64,
             limit: int | None = None, progress: bool = True, seed: int = 0,
             gbt_max_train: int = 4000, ml_how: str = "mean",
             mass_mode: str = "auto") -> EvaluationResult:
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
    mass_mode : {'auto', 'distance-aware', 'distance-aware/predicted', 'flux-only'}
        Which mass network answers: 'distance-aware' is given each map's true distance (a
        catalogue distance), '.../predicted' uses the age/distance network's, 'flux-only' is
        the paper's network, 'auto' is :meth:`PiDOC.predict`'s own choice.

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
    predict_kwargs(mass_mode, None)  # checks the name before any work
    identity = model_identity(model)
    identity = {**identity, "id": identity["id"] + _MODE_SUFFIX.get(mass_mode, "")}
    path = _predictions_target(predictions_store, test, out, identity, n, n_total)
    train_info = None if train is None else str(train.attrs.get("plan_sha256")
                                                or _store_of(train) or "in-memory")
    key = _key(identity["sha256"], test, n, train_info, seed=seed, gbt_max_train=gbt_max_train,
               ml_how=ml_how, mass_mode=mass_mode)
    reused = path.exists() and _matches(_read_zarr_attrs(path), key,
                                        check_train=train is not None)
    if not reused:
        _write_predictions(model, test, train, path, n, identity, key, batch_size=batch_size,
                           seed=seed, gbt_max_train=gbt_max_train, ml_how=ml_how,
                           progress=progress, mass_mode=mass_mode)
    pred = open_predictions(path)
    timings["predictions"] = _time.perf_counter() - t_start
    t0 = _time.perf_counter()
    agg_path = aggregates_path(path)
    agg = _aggregates(agg_path, test, pred, n, progress=progress)
    timings["aggregates"] = _time.perf_counter() - t0
    t0 = _time.perf_counter()
    stats = _statistics(test, pred, agg, n, seed=seed)
    timings["statistics"] = _time.perf_counter() - t0
    t0 = _time.perf_counter()
    summary_df = _summary(test, pred, agg)
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
    parser.add_argument("--mass-network", default="auto",
                        choices=("auto", "distance-aware", "distance-aware/predicted",
                                 "flux-only"),
                        help="which mass network answers: distance-aware (given each map's "
                             "true distance, as from a catalogue), distance-aware/predicted "
                             "(the age/distance network's distance), flux-only (the paper's)")
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
    from ..model import ModelError, open_model

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
                       gbt_max_train=args.gbt_train, mass_mode=args.mass_network)
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
