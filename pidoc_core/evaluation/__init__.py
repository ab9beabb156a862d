"""Statistics of the paper's Section 4 and simple baselines, on plain numpy/xarray arrays.

Everything here is a pure function of arrays (or a small estimator class); nothing plots. The
conventions are those of :mod:`pidoc_core.imager` and :meth:`pidoc_core.model.PiDOC.predict`:

- mass maps: log10 of the mass per pixel, Msun, dims ``(sample, y, x)``;
- flux maps: log10 of the per-pixel V-band flux F = L_V / (4 pi d^2), Lsun kpc^-2;
- 160 x 160 pixels of 0.25" (:mod:`pidoc_core.conventions`); pixel centres in arcsec from the field centre; the cluster centre is
  at the field centre plus ``(shift_x, shift_y)`` arcsec;
- distances kpc, ages Gyr, radii arcsec.

What the paper computes (Chardin & Bianchini 2021, Sect. 4) and where it is here:

==========================================  ===============================================
paper                                        here
==========================================  ===============================================
eq. (1) R^2                                  :func:`r2_score`
Fig. 5 true-vs-predicted pixel histogram,    :func:`pixel_residual_statistics` (maps, chunked)
mu = P(r | predicted), xi = P(r | true)      :func:`residual_statistics` (1-D values)
eq. (2) mean percentage error per bin        ``mu_mpe`` / ``xi_mpe`` of those, summarised by
                                             :func:`bin_summary`
Fig. 6 total mass and total M/L              :func:`map_totals` + :func:`residual_statistics`
eq. (3) mass profile, Fig. 7 M/L profile     :func:`radial_profile`, :func:`radial_profiles`
eq. (4) age MAE per bin, Fig. 8              :func:`residual_statistics` (``kind="linear"``)
Fig. 9 distance PDFs, Table 2                :func:`distance_pdfs`, :func:`distance_table`
all headline numbers, with the paper's       :func:`summary`, :data:`PAPER_RESULTS`
                                             (:data:`pidoc_core.paper.RESULTS`)
the same over bins holding >= ``min_share``  :func:`bin_summary` (``min_share=``),
of the values; per-map errors (not in the    :func:`per_map_errors`, rows ``*_min_share`` and
paper)                                       ``total_*_ape_*`` of :func:`summary`
==========================================  ===============================================

Baselines on the same maps: a constant mass-to-light ratio (:func:`training_mass_to_light`,
:func:`constant_ml_mass`) and gradient-boosted trees on photometric features for age and distance
(:func:`photometric_features`, :class:`GBTBaseline`); :func:`fit_baselines` fits both and
:func:`baseline_predictions` runs both. They live in :mod:`.baselines` and nowhere else.

Choices the paper does not state, made here and documented where they apply: bin widths (0.1 dex
for pixel masses, 0.05 dex for totals, 1 Gyr for ages), which side the per-bin errors are
conditioned on (the predicted value, as the paper's left-hand "recovery" histograms), and the
exclusion of empty (floored) true pixels from the pixel statistics.

The paper's "mean over bins" weighs a bin holding one value like one holding millions; a model
whose predictions fall in a single bin (a constant M/L) is then compared with one spread over
many. :func:`summary` therefore reports, beside it, the mean over bins holding at least
``min_share`` of the values (default :data:`DEFAULT_MIN_SHARE`, 0.1 %) and per-map mean and median
absolute percentage errors of the field's total mass and M/L.

Modules: :mod:`.metrics` (eqs 1-2, summaries over bins and maps), :mod:`.residuals` (Figs 5, 6, 8
histograms), :mod:`.totals` (Fig. 6 totals, eq. 3 profiles, Table 2 / Fig. 9 distances),
:mod:`.baselines`, :mod:`.summary`.
"""

from ._common import LOG_MASS_FLOOR, EvaluationError
from .baselines import (
    FEATURE_NAMES,
    FittedBaselines,
    GBTBaseline,
    _shifts,  # noqa: F401  (used by pidoc_core.report before the split)
    baseline_predictions,
    constant_ml_mass,
    fit_baselines,
    photometric_features,
    training_mass_to_light,
)
from .metrics import (
    DEFAULT_MIN_SHARE,
    bin_edges,
    bin_summary,
    per_map_errors,
    percentage_error,
    r2_score,
)
from .residuals import pixel_residual_statistics, residual_statistics
from .summary import PAPER_RESULTS, binned_rows, summary
from .totals import (
    distance_pdfs,
    distance_table,
    luminosity_from_flux,
    map_totals,
    pixel_radii,
    radial_edges,
    radial_profile,
    radial_profiles,
    total_flux,
    total_mass,
)

__all__ = [
    "EvaluationError",
    "PAPER_RESULTS",
    "FEATURE_NAMES",
    "LOG_MASS_FLOOR",
    "DEFAULT_MIN_SHARE",
    "bin_edges",
    "r2_score",
    "percentage_error",
    "residual_statistics",
    "pixel_residual_statistics",
    "bin_summary",
    "per_map_errors",
    "binned_rows",
    "total_mass",
    "total_flux",
    "luminosity_from_flux",
    "map_totals",
    "radial_edges",
    "pixel_radii",
    "radial_profile",
    "radial_profiles",
    "distance_table",
    "distance_pdfs",
    "training_mass_to_light",
    "constant_ml_mass",
    "photometric_features",
    "GBTBaseline",
    "FittedBaselines",
    "fit_baselines",
    "baseline_predictions",
    "summary",
]
