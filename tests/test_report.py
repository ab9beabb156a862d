"""Evaluation on a test split: stored predictions and their reuse, aggregates, summary, HTML report
(also rendered in headless Chromium)."""

import json
import re
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

import pidoc_core.dataset as D
from pidoc_core import evaluation as ev
from pidoc_core import report as R
from pidoc_core.model import PiDOC

from .conftest import plummer_snapshot

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:keras.*")

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


class PlummerRun:
    """Tiny deterministic source: a Plummer sphere per time whose scale grows with time."""

    def __init__(self, name, scale_pc, times):
        self.name, self.scale_pc, self.times = name, scale_pc, np.asarray(times, float)

    def snapshot(self, time_gyr):
        return plummer_snapshot(800, scale_pc=self.scale_pc * (1 + 0.1 * time_gyr),
                                seed=int(round(time_gyr * 10 + self.scale_pc * 100)),
                                time=time_gyr, name=self.name)

    def __repr__(self):
        return f"PlummerRun({self.name!r}, {self.scale_pc})"


def tiny_model(standardisation, seed=0):
    import keras

    keras.utils.set_random_seed(seed)
    return PiDOC.build(mass=dict(filters=(4, 8, 8, 8), bottleneck_filters=8),
                       age_distance=dict(filters=(4, 4, 4, 4)), standardisation=standardisation)


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    root = tmp_path_factory.mktemp("eval")
    train = D.build_dataset({"A": PlummerRun("A", 1.0, [1, 2, 3, 4]),
                             "B": PlummerRun("B", 2.0, [1, 2, 3, 4])},
                            distances_kpc=[10, 50], psf_fwhms_arcsec=[1.0], n_samples=12, seed=1,
                            store=root / "train.zarr", chunk_size=4, progress=False)
    D.build_dataset({"T": PlummerRun("T", 1.5, [1.5, 2.5, 3.5])}, distances_kpc=[15, 30],
                    psf_fwhms_arcsec=[1.0], seed=2, store=root / "test.zarr", chunk_size=4,
                    progress=False)
    return root, D.standardisation(train)


@pytest.fixture(scope="module")
def evaluated(stores):
    root, consts = stores
    model = tiny_model(consts)
    res = R.evaluate(model, root / "test.zarr", train_ds=root / "train.zarr",
                     out=root / "report.html", batch_size=4, progress=False)
    return root, model, res


def test_predictions_store(evaluated):
    root, model, res = evaluated
    test = D.open_dataset(root / "test.zarr")
    n = test.sizes["sample"]
    ident = R.model_identity(model)
    assert res.predictions_path == (root / f"test.predictions-{ident['id']}.zarr").resolve()
    assert not res.reused_predictions
    assert not list(root.glob(".*partial"))  # written through a temporary store, renamed
    p = R.open_predictions(res.predictions_path)
    for name in ("mass_pred", "mass_const_ml"):
        assert p[name].shape == (n, 160, 160) and p[name].dtype == np.float32
        assert p[name].attrs["units"] == "log10(Msun)"
    for name, unit in (("age_pred", "Gyr"), ("distance_pred", "kpc"), ("age_gbt", "Gyr"),
                       ("distance_gbt", "kpc")):
        assert p[name].shape == (n,) and p[name].attrs["units"] == unit
    assert p.attrs["model_sha256"] == ident["sha256"] and p.attrs["model_id"] == ident["id"]
    assert p.attrs["Conventions"].startswith("CF-")
    assert p.attrs["test_plan_sha256"] == test.attrs["plan_sha256"]
    assert json.loads(p.attrs["model_manifest_json"])["format"] == "pidoc-weights"
    # the predictions are the model's, sample for sample
    direct = model.predict(test["flux"].values[:3])
    np.testing.assert_allclose(p["mass_pred"].values[:3], direct["mass"].values, atol=1e-5)
    np.testing.assert_allclose(p["distance_pred"].values[:3], direct["distance"].values,
                               rtol=1e-5)
    np.testing.assert_array_equal(p["distance"].values, test["distance"].values)
    # constant-M/L baseline: its mass over the field is Upsilon times the field's V luminosity
    ups = p.attrs["upsilon"]
    assert ups == pytest.approx(ev.training_mass_to_light(D.open_dataset(root / "train.zarr")))
    m_const = ev.total_mass(p["mass_const_ml"].values)
    np.testing.assert_allclose(m_const, ups * test["field_luminosity_v"].values, rtol=1e-3)


def test_aggregates(evaluated):
    root, _, res = evaluated
    test = D.open_dataset(root / "test.zarr")
    n = test.sizes["sample"]
    agg = R.open_aggregates(res.aggregates_path)
    assert res.aggregates_path.name.endswith(".aggregates.nc")
    assert res.aggregates_path.parent == res.predictions_path.parent
    assert list(agg.model.values) == ["pidoc", "constant_ml"]
    assert agg.sizes["radius"] == 25 and agg.sizes["sample"] == n
    np.testing.assert_array_equal(agg.distance_group.values, [15.0, 30.0])
    np.testing.assert_array_equal(agg.time_lower.values, [1.0, 2.0, 3.0])
    np.testing.assert_allclose(agg.true_lower.values[[0, -1]], [-3.0, 1.9])
    assert agg.pixel_histogram.dims == ("model", "distance_group", "time_group", "true_bin",
                                        "pred_bin")
    assert agg.pixel_histogram.shape == (2, 2, 3, 50, 50)
    # per-map totals: the true mass summed over the map is the field mass
    np.testing.assert_allclose(agg.mass_true.values, test["field_mass"].values, rtol=1e-3)
    np.testing.assert_allclose(agg.ml_pred.sel(model="constant_ml").values,
                               agg.attrs["upsilon"], rtol=1e-3)
    # every non-empty true pixel is counted once per model: in a cell or as outside the edges
    mass = test["mass"].values
    kept = int((mass > ev.LOG_MASS_FLOOR + 1e-6).sum())
    per_model = (agg.pixel_histogram.sum(("distance_group", "time_group", "true_bin",
                                          "pred_bin")) + agg.n_outside.sum(("distance_group",
                                                                            "time_group")))
    assert per_model.values.tolist() == [kept, kept]
    # grouped sums give the exact mean residual of a selection: here all pixels of 15 kpc maps
    # whose true and predicted masses lie inside the edges
    sel = test["distance"].values == 15.0
    t = mass[sel].astype(float)
    p = R.open_predictions(res.predictions_path)["mass_const_ml"].values[sel].astype(float)
    inside = (t > ev.LOG_MASS_FLOOR + 1e-6) & (t >= -3) & (t < 2)
    xi_n = agg.xi_count.sel(model="constant_ml", distance_group=15.0).sum().item()
    xi_sum = agg.xi_sum.sel(model="constant_ml", distance_group=15.0).sum().item()
    assert xi_n == inside.sum()
    assert xi_sum / xi_n == pytest.approx(float((p - t)[inside].mean()), rel=1e-9)
    # a profile is the mean mass per pixel in each annulus (eq. 3)
    prof = ev.radial_profiles(mass[:1], mass[:1], test["flux"].values[:1],
                              test["distance"].values[:1], test["shift_x"].values[:1],
                              test["shift_y"].values[:1])
    np.testing.assert_allclose(agg.profile_mass_true.values[0], prof.mass_true.values[0],
                               rtol=1e-6)
    # small: scaled to the paper's 8,172 maps (4 distances x 15 age bins) under 20 MB
    per_sample = sum(v.nbytes for v in agg.variables.values() if "sample" in v.dims) / n
    groups = agg.sizes["distance_group"] * agg.sizes["time_group"]
    per_group = sum(v.nbytes for v in agg.variables.values()
                    if "distance_group" in v.dims and "time_group" in v.dims) / groups
    assert per_sample * 8172 + per_group * 4 * 15 < 20e6


def test_aggregates_carry_per_map_and_min_share_statistics(evaluated):
    """Issue 13: the Test-set tab's file has per-map errors and the min-share headline numbers."""
    _, _, res = evaluated
    agg = R.open_aggregates(res.aggregates_path)
    assert agg.attrs["aggregates_version"] == R.AGGREGATES_VERSION == 2
    assert agg.attrs["min_share"] == ev.DEFAULT_MIN_SHARE
    for q in ("mass", "ml"):
        t, p = agg[f"{q}_true"].values, agg[f"{q}_pred"].values
        ape = 100 * np.abs(p - t) / t
        np.testing.assert_allclose(agg[f"total_{q}_ape"].values, ape, rtol=1e-12)
        np.testing.assert_allclose(agg[f"total_{q}_ape_mean"].values, ape.mean(axis=1))
        np.testing.assert_allclose(agg[f"total_{q}_ape_median"].values, np.median(ape, axis=1))
        assert agg[f"total_{q}_ape_mean"].attrs["units"] == "%"
    # totals: the same numbers as the summary of the same predictions
    s = res.summary
    for key in ("total_ml_mpe_mean", "total_ml_mpe_mean_min_share", "total_mass_ape_median",
                "total_ml_ape_mean", "total_ml_mpe_n_bins", "total_mass_mpe_n_bins_min_share"):
        for model, label in (("pidoc", "π-DOC"), ("constant_ml", "constant M/L")):
            assert agg[key].sel(model=model).item() == pytest.approx(s.loc[key, label],
                                                                     rel=1e-6), (key, model)
    # pixels: the statistics of evaluation on the aggregates' fixed edges (-3 to 2 dex)
    test = D.open_dataset(res.predictions.attrs["test_store"])
    pred = R.open_predictions(res.predictions_path)
    st = ev.pixel_residual_statistics(test["mass"], pred["mass_pred"], edges=R.PIXEL_EDGES)
    assert agg["pixel_mpe_mean"].sel(model="pidoc").item() == pytest.approx(
        ev.bin_summary(st)["mean"], rel=1e-9)
    assert agg["pixel_mpe_mean_min_share"].sel(model="pidoc").item() == pytest.approx(
        ev.bin_summary(st, min_share=ev.DEFAULT_MIN_SHARE)["mean"], rel=1e-9)
    # the constant M/L predicts one M/L: its totals fall in a single bin
    assert agg["total_ml_mpe_n_bins"].sel(model="constant_ml").item() == 1
    assert R.headline_statistics(agg.isel(sample=slice(0, 2))).sizes["model"] == 2


def test_summary_columns(evaluated):
    _, _, res = evaluated
    s = res.summary
    assert list(s.columns) == ["unit", "π-DOC", "constant M/L", "GBT", "paper", "paper_source"]
    assert s.loc["pixel_mpe_mean", "paper"] == 27.4
    assert s.loc["distance_mae_15", "paper"] == 5.6
    assert np.isfinite(s.loc["pixel_mpe_mean", "π-DOC"])
    assert np.isfinite(s.loc["pixel_mpe_mean", "constant M/L"])
    assert np.isnan(s.loc["pixel_mpe_mean", "GBT"])  # GBT predicts no mass map
    assert np.isnan(s.loc["age_mae_mean", "constant M/L"])
    assert np.isfinite(s.loc["age_mae_mean", "GBT"]) and np.isfinite(s.loc["age_mae_mean",
                                                                           "π-DOC"])
    # the constant-M/L total M/L is Upsilon for every map: no error bins but its own
    assert s.loc["total_ml_mpe_mean", "constant M/L"] >= 0
    t2 = res.statistics["table2"]
    assert t2.loc[("paper", "mean"), "60"] == 60.6
    assert t2.loc[("GBT", "count"), "15"] == 3


def test_summary_from_aggregates_equals_summary_from_maps(evaluated):
    """The report takes each map's totals and profiles from the aggregates' one pass over the
    maps; the numbers are those of evaluation.summary reading every map again."""
    root, _, res = evaluated
    test = D.open_dataset(root / "test.zarr")
    pred = res.predictions
    from_maps = ev.summary(test, {"π-DOC": xr.Dataset({"mass": pred["mass_pred"].variable}),
                                  "constant M/L": xr.Dataset({"mass": pred["mass_const_ml"]
                                                              .variable})})
    rows = [r for r in from_maps.index if not r.startswith(("age", "distance"))]
    for label in ("π-DOC", "constant M/L"):
        np.testing.assert_allclose(res.summary.loc[rows, label].astype(float),
                                   from_maps.loc[rows, label].astype(float), rtol=1e-5,
                                   equal_nan=True, err_msg=label)
    bad = xr.Dataset({"mass_true": ("sample", np.ones(2)), "mass_pred": ("sample", np.ones(2))})
    with pytest.raises(ev.EvaluationError,
                       match=r"^totals given for 2 maps, the test has \d+$"):
        ev.summary(test, {"m": xr.Dataset({"mass": pred["mass_pred"].variable})},
                   totals={"m": bad})


def test_report_html(evaluated):
    root, _, res = evaluated
    assert res.report_path == root / "report.html"
    text = res.report_path.read_text()
    tags = re.findall(r"<(?:script|link|img)\b[^>]*>", text, flags=re.I)
    assert tags and not [t for t in tags if re.search(r"(src|href)\s*=\s*[\"']?(https?:)?//", t)]
    assert "Bokeh" in text and len(text) > 1_000_000  # BokehJS inlined
    for heading in ("Provenance", "Summary", "Fig. 4", "Fig. 5", "Fig. 6", "Fig. 7", "Fig. 8",
                    "Fig. 9", "Table 2"):
        assert heading in text
    assert res.model["id"] in text and "GBT fitted on a seeded random subsample" in text
    for phrase in ("total_ml_ape_mean", "pixel_mpe_mean_min_share", "over the bins holding at "
                   "least 0.1 % of the values", "Per map: mass", "bins holding &gt;= 0.1 % of the "
                   "values"):
        assert phrase in text, phrase
    assert res.n_figures >= 20


def test_second_call_reuses_predictions(evaluated, monkeypatch):
    root, model, res = evaluated
    agg_mtime = res.aggregates_path.stat().st_mtime_ns

    def no_inference(*a, **k):
        raise AssertionError("the network ran although predictions were stored")

    monkeypatch.setattr(model, "predict", no_inference)
    again = R.evaluate(model, root / "test.zarr", train_ds=root / "train.zarr", progress=False)
    assert again.reused_predictions and again.predictions_path == res.predictions_path
    assert again.aggregates_path.stat().st_mtime_ns == agg_mtime  # aggregates reused too
    np.testing.assert_array_equal(again.summary["π-DOC"].values, res.summary["π-DOC"].values)
    # without a training set the stored baselines are reused as well
    R.evaluate(model, root / "test.zarr", train_ds=None, progress=False)


def test_identity_is_content_and_other_weights_get_their_own_store(evaluated, stores, tmp_path):
    root, model, res = evaluated
    saved = model.save(tmp_path / "model")
    loaded = PiDOC.load(saved)
    assert R.model_identity(loaded)["sha256"] == R.model_identity(model)["sha256"]
    other = tiny_model(stores[1], seed=1)
    res2 = R.evaluate(other, root / "test.zarr", train_ds=root / "train.zarr", limit=4,
                      progress=False)
    assert res2.predictions_path != res.predictions_path
    assert res2.predictions_path.name.endswith("-first4.zarr")
    assert res2.predictions.sizes["sample"] == 4 and res2.aggregates.sizes["sample"] == 4


def test_cli_arguments(evaluated, tmp_path, capsys):
    import argparse

    root, model, res = evaluated
    saved = model.save(tmp_path / "weights")
    parser = R.add_evaluate_arguments(argparse.ArgumentParser())
    args = parser.parse_args(["--weights", str(saved), "--dataset", str(root), "--out",
                              str(tmp_path / "r.html"), "--quiet"])
    R.run._resolve_stores(args.dataset, args.train)  # directory of splits -> test.zarr, train.zarr
    # the saved weights are the same network: its stored predictions are found and reused
    args.out = str(tmp_path / "r.html")
    assert R.run_evaluate(args) == 0
    out = capsys.readouterr().out
    assert "(reused)" in out and "pixel_mpe_mean" in out
    assert (tmp_path / "r.html").is_file()
    bad = parser.parse_args(["--weights", str(saved), "--dataset", str(tmp_path), "--out",
                             str(tmp_path / "x.html"), "--quiet"])
    assert R.run_evaluate(bad) == 2


def test_incomplete_or_foreign_stores_are_refused(tmp_path):
    with pytest.raises(R.ReportError, match="not a pi-DOC predictions store"):
        R.open_predictions(tmp_path)
    ds = xr.Dataset({"flux": (("sample", "y", "x"), np.zeros((1, 4, 4)))})
    with pytest.raises(R.ReportError, match="lacks"):
        R.evaluate(None, ds, train_ds=None)


@pytest.mark.browser
def test_report_renders_in_chromium(evaluated):
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is not installed")
    sync_api = pytest.importorskip("playwright.sync_api")
    from PIL import Image
    import io

    _, _, res = evaluated
    errors, requests = [], []
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                     args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("request", lambda r: requests.append(r.url))
            page.goto(res.report_path.as_uri())
            canvases = page.locator("canvas")  # CSS locators pierce Bokeh's shadow roots
            sync_api.expect(canvases.nth(res.n_figures - 1)).to_be_attached(timeout=60_000)
            assert canvases.count() >= res.n_figures
            shot = page.screenshot(full_page=True)
            first_plot = canvases.first.screenshot()
        finally:
            browser.close()
    assert errors == []
    assert [u for u in requests if not u.startswith(("file:", "data:", "blob:"))] == []
    for png in (shot, first_plot):
        img = np.asarray(Image.open(io.BytesIO(png)).convert("L"), dtype=float)
        assert img.std() > 5.0  # not a blank page / blank canvas


def test_pixel_mass_edges_have_one_home():
    from pidoc_core import conventions

    np.testing.assert_array_equal(R.PIXEL_EDGES, conventions.PIXEL_MASS_EDGES)
    assert len(conventions.PIXEL_MASS_EDGES) == 51
    assert conventions.PIXEL_MASS_EDGES[0] == -3.0 and conventions.PIXEL_MASS_EDGES[-1] == 2.0


def test_each_mass_network_is_evaluated_apart_with_interval_coverage(stores):
    """--mass-network: the distance-aware network is given each map's true distance; each mode
    has its own predictions store; calibrated intervals give coverage rows."""
    from pidoc_core.networks import build_age_distance_net, build_mass_unet

    root, consts = stores
    model = PiDOC(mass_ml_network=build_mass_unet(filters=(4, 8), input_shape=(160, 160, 2)),
                  mass_network=build_mass_unet(filters=(4, 8), input_shape=(160, 160, 1)),
                  age_distance_network=build_age_distance_net(filters=(4, 8),
                                                              input_shape=(160, 160, 1)),
                  standardisation=consts)
    wide = {"edges": [0.0, 1e9], "q_lo": [-50.0], "q_hi": [50.0], "count": [12]}
    dex = {"edges": [0.0, 1e9], "q_lo": [-0.2], "q_hi": [0.2], "count": [12]}
    model.provenance["intervals"] = {
        "level": 0.68, "n_maps": 12, "age": wide, "distance": wide,
        "mass": {m: {"log_field_mass": dex, "pixel_log_mass": dex}
                 for m in ("distance-aware/given", "distance-aware/predicted", "flux-only")}}
    test = D.open_dataset(root / "test.zarr")
    runs = {mode: R.evaluate(model, root / "test.zarr", train_ds=root / "train.zarr",
                             batch_size=4, progress=False, mass_mode=mode)
            for mode in ("distance-aware", "flux-only")}
    paths = {mode: res.predictions_path for mode, res in runs.items()}
    assert paths["distance-aware"] != paths["flux-only"]
    aware = runs["distance-aware"].predictions.mass_pred.values
    direct = model.predict(test.flux.values, distance_kpc=test.distance.values).mass.values
    np.testing.assert_allclose(aware, direct, atol=1e-5)
    flux_only = model.predict(test.flux.values, mass_network="flux-only").mass.values
    np.testing.assert_allclose(runs["flux-only"].predictions.mass_pred.values, flux_only,
                               atol=1e-5)
    summary = runs["distance-aware"].summary
    pidoc = [c for c in summary.columns if "π-DOC" in c or "pidoc" in c.lower()][0]
    assert summary.loc["age_coverage_68", pidoc] == 100.0  # +-50 Gyr holds every age
    true_field = (10.0 ** test.mass.values.astype(float)).sum(axis=(1, 2))
    pred_field = (10.0 ** aware.astype(float)).sum(axis=(1, 2))
    inside = np.abs(np.log10(pred_field / true_field)) <= 0.2
    assert summary.loc["field_mass_coverage_68", pidoc] == pytest.approx(100 * inside.mean())
    with pytest.raises(R.ReportError, match="mass_mode must be one of"):
        R.evaluate(model, root / "test.zarr", train_ds=root / "train.zarr", progress=False,
                   mass_mode="both")
