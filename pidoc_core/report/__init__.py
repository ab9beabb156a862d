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
- per-map errors: ``total_mass_ape``, ``total_ml_ape`` ``(model, sample)``, per cent,
  |predicted - true| / true x 100 of the field's total mass and M/L.
- headline numbers ``(model,)`` (:func:`headline_statistics`, per cent): ``pixel_mpe_mean``,
  ``total_mass_mpe_mean``, ``total_ml_mpe_mean`` (the paper's mean of eq. (2) over bins) with
  ``*_mean_min_share`` (over the bins holding at least ``attrs["min_share"]`` of the values) and
  ``*_n_bins``/``*_n_bins_min_share``; ``total_mass_ape_mean``/``_median``,
  ``total_ml_ape_mean``/``_median`` (per map).
- pixels (true pixels above the imager's floor): ``pixel_histogram`` ``(model, distance_group,
  time_group, true_bin, pred_bin)`` counts; ``mu_count``, ``mu_sum``, ``mu_sumsq``, ``mu_sum_pct``
  ``(model, distance_group, time_group, pred_bin)`` -- count, sum of residuals r = pred - true
  (dex), of r^2 and of eq. (2) percentage errors per predicted-mass bin, so mu's mean, standard
  deviation and MPE of any selection of groups are exact; the same ``xi_*`` per true-mass bin;
  ``n_outside`` pixels with a value outside the edges.

Modules: :mod:`.store` (predictions store, model identity, paths), :mod:`.aggregates`,
:mod:`.html` (statistics, figures, the page), :mod:`.run` (:func:`evaluate`, ``pidoc evaluate``).

Examples
--------
>>> from pidoc_core.model import PiDOC                                    # doctest: +SKIP
>>> res = evaluate(PiDOC.load(), "data/paper/test.zarr", train_ds="data/paper/train.zarr",
...                out="report.html")                                      # doctest: +SKIP
>>> res.summary[["π-DOC", "constant M/L", "GBT", "paper"]]                # doctest: +SKIP
"""

from ._common import CHUNK, MODEL_LABELS, PIXEL_EDGES, TIME_BIN_GYR, ReportError
from .aggregates import AGGREGATES_VERSION, headline_statistics, open_aggregates
from .run import EvaluationResult, add_evaluate_arguments, evaluate, run_evaluate
from .store import aggregates_path, model_identity, open_predictions, predictions_path

__all__ = [
    "ReportError",
    "EvaluationResult",
    "CHUNK",
    "PIXEL_EDGES",
    "TIME_BIN_GYR",
    "MODEL_LABELS",
    "AGGREGATES_VERSION",
    "model_identity",
    "predictions_path",
    "aggregates_path",
    "open_predictions",
    "open_aggregates",
    "headline_statistics",
    "evaluate",
    "add_evaluate_arguments",
    "run_evaluate",
]
