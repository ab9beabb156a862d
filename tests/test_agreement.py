"""The dashboard, the evaluation report and the notebooks show the same numbers for the same maps.

One small test store (a Plummer run, 8 maps at 15 and 30 kpc; 8
training maps for the constant-M/L baseline) is evaluated once by the report
(:func:`pidoc_core.report.evaluate`, as ``pidoc evaluate`` runs it) with the shipped model; then

- the Test-set tab, given the report's aggregates, shows the report's Table 2 numbers;
- notebook 02, run on the same store and model, prints the report's summary and its radial
  profile ratios (true / predicted, the core's and the report's direction);
- the Explore tab, set to each stored map's run, time, distance, seeing, shift and rotation,
  gives the report's field mass, luminosity, M/L and age/distance for that map, and plots the
  mass-profile ratio true / predicted that the report stores.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

import pidoc_core.dataset as D
from pidoc_core import evaluation as ev
from pidoc_core import report as R
from pidoc_core.exploration import testset_pixel_statistics
from pidoc_core.model import DEFAULT_WEIGHTS_DIR, PiDOC

from .test_report import PlummerRun

pytestmark = [pytest.mark.filterwarnings("ignore::DeprecationWarning:keras.*")]

RUN = PlummerRun("T", 1.5, [2.0, 5.0, 9.0, 12.0])


@pytest.fixture(scope="module")
def model():
    if not (DEFAULT_WEIGHTS_DIR / "manifest.json").is_file():
        pytest.skip("no shipped model in weights/pidoc")
    return PiDOC.load()


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory, model):
    """The test store and the report's evaluation of it, for both ways to run the mass network."""
    root = tmp_path_factory.mktemp("agree")
    D.build_dataset({"T": RUN}, distances_kpc=[15, 30], psf_fwhms_arcsec=[1.0], seed=3,
                    store=root / "test.zarr", chunk_size=4, progress=False)
    D.build_dataset({"A": PlummerRun("A", 1.0, [1, 4, 8, 12])}, distances_kpc=[10, 50],
                    psf_fwhms_arcsec=[1.0], n_samples=8, seed=1, store=root / "train.zarr",
                    chunk_size=4, progress=False)
    out = {}
    for mode in ("auto", "distance-aware"):
        out[mode] = R.evaluate(model, root / "test.zarr", train_ds=root / "train.zarr",
                               predictions_store=root / f"pred-{mode.replace('/', '-')}.zarr",
                               batch_size=8, progress=False, mass_mode=mode, gbt_max_train=8)
    return root, out


def test_testset_tab_shows_the_reports_numbers(evaluated):
    from app.views.testset import TestSetView

    _, res = evaluated
    agg = res["auto"].aggregates
    view = TestSetView(agg)
    everything = view.samples()
    assert everything.size == agg.sizes["sample"]
    headline = R.headline_statistics(agg)
    model = str(agg.model.values[0])
    mass, ml = view.total_statistics(model, everything)
    assert ev.bin_summary(mass, statistic="mpe")["mean"] == pytest.approx(
        float(headline["total_mass_mpe_mean"].sel(model=model)), rel=1e-12)
    assert ev.bin_summary(ml, statistic="mpe")["mean"] == pytest.approx(
        float(headline["total_ml_mpe_mean"].sel(model=model)), rel=1e-12)
    # Fig. 5: the tab's pixel statistics from the grouped sums are the report's over all pixels
    pixels = testset_pixel_statistics(agg, model=model, distances=view.distances,
                                      times=view.times)
    reported = res["auto"].statistics["pixel"][R.MODEL_LABELS[model]]
    np.testing.assert_array_equal(pixels.histogram.values, reported.histogram.values)
    for side in ("mu", "xi"):
        np.testing.assert_array_equal(pixels[f"{side}_count"].values,
                                      reported[f"{side}_count"].values)
        np.testing.assert_allclose(pixels[f"{side}_mean"].values, reported[f"{side}_mean"].values,
                                   rtol=1e-9, atol=1e-12, equal_nan=True)
    # the numbers on the page: Table 2 against the report's distance table, row for row
    view.panel()
    headline_shown, table = view.panes["headline"].object, view.panes["table2"].object
    report_table = res["auto"].statistics["table2"]
    assert len(table) == len(agg.distance_group)
    summary = res["auto"].summary
    for d in table.index:
        assert table.loc[d, "MAE (kpc)"] == pytest.approx(
            float(summary.loc[f"distance_mae_{d:g}", "π-DOC"]), abs=0.005)
    assert report_table is not None
    headline_rows = headline_shown.set_index("quantity")["this model (filtered)"]
    assert headline_rows["age MAE: eq. (4) mean over bins (Gyr)"] == pytest.approx(
        float(summary.loc["age_mae_mean", "π-DOC"]), abs=0.005)
    assert headline_rows["field mass: eq. (2) mean over bins (%)"] == pytest.approx(
        float(summary.loc["total_mass_mpe_mean", "π-DOC"]), abs=0.005)


@pytest.mark.slow
def test_notebook_02_prints_the_reports_numbers(evaluated):
    nbclient = pytest.importorskip("nbclient")  # noqa: F841
    from .test_notebooks import NOTEBOOKS, execute, text_of

    root, res = evaluated
    read_back = (
        "import json\n"
        "print('AGREEMENT ' + json.dumps({\n"
        "    'summary': {k: float(v) for k, v in summary['pi-DOC'].items()\n"
        "                if isinstance(v, (int, float)) and v == v},\n"
        "    'mass_ratio': profiles['pi-DOC']['mass_ratio'].values.tolist(),\n"
        "    'mass_pred': predictions['pi-DOC']['field_mass'].values.tolist()}))\n")
    nb, _ = execute(NOTEBOOKS / "02_residuals.ipynb", append=read_back, SMOKE=False,
                    TEST_STORE=str(root / "test.zarr"), TRAIN_STORE=str(root / "train.zarr"),
                    N_MAPS=None, N_BASELINE_TRAIN=0)
    line = next(ln for ln in text_of(nb).splitlines() if ln.startswith("AGREEMENT "))
    got = json.loads(line[len("AGREEMENT "):])
    report = res["auto"]
    agg = report.aggregates
    np.testing.assert_allclose(got["mass_pred"], agg.mass_pred.values[0], rtol=1e-5)
    reference = report.summary["π-DOC"]
    compared = 0
    for key, value in got["summary"].items():
        if key in reference.index and np.isfinite(float(reference[key])):
            # float32 networks: the notebook predicts in batches of 16, the report in 64, and the
            # CPU's convolution kernels depend on the batch size (the same map alone or in a
            # batch of 16 gives ages ~1e-5 apart), so the ragged last batches differ slightly
            assert value == pytest.approx(float(reference[key]), rel=1e-5, abs=1e-9), key
            compared += 1
    assert compared >= 10, f"only {compared} summary rows in common: {sorted(got['summary'])}"
    # the notebook's profile ratio is true / predicted, as the report stores them
    ratio = np.asarray(got["mass_ratio"], float)
    with np.errstate(invalid="ignore", divide="ignore"):
        stored = agg.profile_mass_true.values / agg.profile_mass_pred.values[0]
    np.testing.assert_allclose(ratio, stored, rtol=1e-5, equal_nan=True)


@pytest.mark.parametrize("mode, network", [("auto", "distance-aware/predicted"),
                                           ("distance-aware", "distance-aware")])
def test_explore_tab_gives_the_reports_numbers_map_by_map(evaluated, model, mode, network):
    from app.views.explore import ExploreView

    root, res = evaluated
    agg = res[mode].aggregates
    pred = res[mode].predictions
    test = D.open_dataset(root / "test.zarr")
    view = ExploreView({"T": RUN}, model, upsilon=1.0)
    view.mass_network = network
    for i in range(test.sizes["sample"]):
        rotation = float(test.rotation.values[i])
        view.param.update(time=round(float(test.time.values[i]), 3),
                          distance=float(test.distance.values[i]),
                          psf=float(test.psf_fwhm.values[i]),
                          shift_x=float(test.shift_x.values[i]),
                          shift_y=float(test.shift_y.values[i]),
                          rotation=f"{rotation:g}")
        step = view.last
        assert step.mass_network == network
        totals = step.totals
        assert totals["mass_true_msun"] == pytest.approx(float(agg.mass_true.values[i]), rel=1e-5)
        assert totals["luminosity_v_lsun"] == pytest.approx(float(agg.luminosity_v.values[i]),
                                                            rel=1e-5)
        assert totals["mass_pidoc_msun"] == pytest.approx(float(agg.mass_pred.values[0, i]),
                                                          rel=1e-4)
        assert totals["ml_pidoc"] == pytest.approx(float(agg.ml_pred.values[0, i]), rel=1e-4)
        assert step.age_gyr == pytest.approx(float(pred.age_pred.values[i]), abs=1e-3)
        assert step.distance_kpc == pytest.approx(float(pred.distance_pred.values[i]), abs=1e-3)
        # the plotted ratio is true / predicted, the report's profile_mass_true / _pred
        shown = np.asarray(view.plots.prof_src.data["m_ratio"], float)
        with np.errstate(invalid="ignore", divide="ignore"):
            stored = agg.profile_mass_true.values[i] / agg.profile_mass_pred.values[0, i]
        np.testing.assert_allclose(shown, stored, rtol=1e-4, equal_nan=True)
