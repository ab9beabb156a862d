"""The served dashboard in headless Chromium: it renders, reacts, keeps sessions apart, and no
move of any control (new snapshot times, other runs) stops the server."""

import os
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from browser import (CHROMIUM, FILTER_TESTSET_JS, NUMBERS_JS, OPEN_TESTSET_JS,  # noqa: E402
                     launch_browser, serve_dashboard, set_slider, stop_process_group)

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="Debian's chromium is not installed"),
]


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    from pidoc_core.model import PiDOC

    path = tmp_path_factory.mktemp("weights") / "model"
    PiDOC.build(
        mass=dict(filters=(4, 8, 8, 8), bottleneck_filters=8),
        age_distance=dict(filters=(4, 4, 4, 4)),
        standardisation=dict(flux_mean=-5.38, flux_std=0.97, mass_mean=-0.85, mass_std=0.45,
                             distance_age_mean=29.63, distance_age_std=32.40),
        provenance={"note": "untrained test model", "training_mass_to_light": 2.0},
    ).save(path)
    return path


@pytest.fixture(scope="module")
def snapshots(tmp_path_factory):
    """A user's directory of snapshot files (the embedded runs' set-up is tested elsewhere)."""
    from pidoc_core.readers import write_table

    from .conftest import plummer_snapshot

    directory = tmp_path_factory.mktemp("MW15 analogue")
    for t in (6.0, 12.0):
        write_table(plummer_snapshot(5000, scale_pc=1.0 + t / 12, seed=int(t), time=t),
                    directory / f"snap_{t:04.1f}.ecsv")
    return directory


@pytest.fixture(scope="module")
def server(weights, snapshots, tmp_path_factory):
    log = tmp_path_factory.mktemp("serve") / "panel.log"
    args = ["--weights", weights, "--snapshots", snapshots, "--no-embedded"]
    with serve_dashboard(args=args, log_path=log, timeout_s=300) as (url, _):
        yield url


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = launch_browser(p)
        yield b
        b.close()


def open_page(browser, url):
    from playwright.sync_api import expect

    page = browser.new_page(viewport={"width": 1600, "height": 1000})
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(url, wait_until="domcontentloaded", timeout=600_000)
    expect(page.locator("canvas").first).to_be_visible(timeout=600_000)
    page.wait_for_function("() => window.Bokeh && Bokeh.documents.length > 0 && "
                           "Bokeh.documents[0].is_idle", timeout=120_000)
    return page, errors


def numbers_text(page):
    return page.evaluate(NUMBERS_JS)["text"]


def widget_value(page, title):
    return page.evaluate("(t) => [...Bokeh.documents[0].all_models].find(m => m.title === t).value",
                         title)


def test_page_renders_and_a_slider_repaints_the_maps(browser, server, tmp_path):
    from PIL import Image

    page, errors = open_page(browser, server)
    # the fix to BokehJS (app.views.browser_fixes) is installed and keeps unchanged sheets
    page.wait_for_function("() => window.pidoc_style_sheet_fix === true", timeout=30_000)
    assert page.evaluate("""() => {
      const sheet = new (Bokeh.require("core/dom").InlineStyleSheet)(":host { width: 1px; }");
      const node = sheet.el.firstChild;
      sheet.replace(":host { width: 1px; }");
      const kept = sheet.el.firstChild === node;  // the same text: nothing rewritten
      sheet.replace(":host { width: 2px; }");
      return kept && sheet.css === ":host { width: 2px; }";
    }""")
    before = numbers_text(page)
    assert "at 12 Gyr" in before
    ms = set_slider(page, "Distance (kpc)", 60)
    assert ms > 0
    page.wait_for_function("() => Bokeh.documents[0].is_idle")
    assert numbers_text(page) != before
    shot = tmp_path / "dashboard.png"
    page.screenshot(path=str(shot), full_page=True)
    pixels = np.asarray(Image.open(shot).convert("L"), dtype=float)
    assert pixels.std() > 20  # maps and plots, not a blank page
    assert not errors
    page.close()


def test_testset_tab_opens_and_follows_its_filters(browser, server, tmp_path):
    """The Test-set tab (the shipped evaluation's aggregates) draws its figures, and each filter
    redraws them for the maps it keeps, saying so in its header meanwhile."""
    import xarray as xr
    from PIL import Image

    agg = xr.load_dataset(Path(__file__).resolve().parents[1] / "weights" / "pidoc"
                          / "testset_aggregates.nc")
    page, errors = open_page(browser, server)
    assert page.evaluate(OPEN_TESTSET_JS, "Test set") > 0
    for title, value, keep in (
            ("Age range (Gyr)", [4, 12], (agg.time >= 4) & (agg.time <= 12)),
            ("True distance (kpc)", ["15.0", "60.0"],
             (agg.time >= 4) & (agg.time <= 12) & agg.distance.isin([15.0, 60.0]))):
        shown = page.evaluate(FILTER_TESTSET_JS, [title, value])
        assert f"strong&gt;{int(keep.sum()):,} test maps&lt;/strong" in shown["header"]
    shot = tmp_path / "testset.png"
    page.screenshot(path=str(shot), full_page=True)
    pixels = np.asarray(Image.open(shot).convert("L"), dtype=float)
    assert pixels.std() > 20 and page.locator("canvas").count() >= 1
    assert not errors
    page.close()


def test_two_sessions_do_not_see_each_others_settings(browser, server):
    a, _ = open_page(browser, server)
    b, _ = open_page(browser, server)
    b_numbers = numbers_text(b)
    set_slider(a, "Distance (kpc)", 85)
    set_slider(a, "PSF FWHM (arcsec)", 1.4)
    a.wait_for_function("() => Bokeh.documents[0].is_idle")
    assert widget_value(a, "Distance (kpc)") == 85
    assert widget_value(b, "Distance (kpc)") == 15
    assert widget_value(b, "PSF FWHM (arcsec)") == 1.0
    assert numbers_text(b) == b_numbers
    set_slider(b, "Distance (kpc)", 30)
    assert widget_value(a, "Distance (kpc)") == 85
    a.close()
    b.close()


@pytest.mark.slow
def test_concurrent_sessions_load_test(weights, snapshots, tmp_path):
    """benchmarks/load_test.py, reduced: 4 sessions at once on one server, no page or server
    error, no cross-talk (each page's server-rendered distance and final flux map are its own).
    The memory bounds are loose here (no settling time); `make bench` checks them in full.
    Run in its own process, as `make bench` does (Playwright's sync API owns this thread's loop).
    """
    import subprocess

    from results import read_json

    out = tmp_path / "load.json"
    proc = subprocess.run(
        [sys.executable, str(Path(__file__).resolve().parents[1] / "benchmarks" / "load_test.py"),
         "--sessions", "4", "--moves", "4", "--rounds", "1", "--single-moves", "3",
         "--weights", str(weights), "--snapshots", str(snapshots), "--settle", "0",
         "--memory-bound-mib", "4096", "--leak-bound-mib", "4096",
         "--log", str(tmp_path / "panel.log"), "--time-limit", "600", "--json", str(out)],
        capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    load = read_json(out)[0]
    assert load.met and load.n == 12 and "errors 0, cross-talk 0" in load.name


# -------------------------------------------------------------------------------------------
# The embedded runs: new snapshot times and other runs (COSMIC evolves inside the server)
# -------------------------------------------------------------------------------------------

#: Stars of the embedded analogues here: a fast set-up; they dissolve within a few Gyr.
N_STARS = 5000

_STATE_JS = """() => {
  const models = [...Bokeh.documents[0].all_models];
  const value = t => models.find(m => m.title === t && 'value' in m).value;
  const flux = models.find(m => m.title && m.title.text === 'Mock V-band image');
  const label = models.find(m => typeof m.text === 'string' && m.text.startsWith('Snapshot time'));
  return {run: value('Run'), distance: value('Distance (kpc)'),
          psf: value('PSF FWHM (arcsec)'), shift_x: value('Centre shift x (arcsec)'),
          shift_y: value('Centre shift y (arcsec)'), time_label: label.text,
          flux: Array.from(flux.renderers[0].data_source.data.image[0])};
}"""


@pytest.fixture(scope="module")
def embedded(weights, tmp_path_factory):
    """The dashboard on the embedded runs, with an empty snapshot cache of its own."""
    cache = tmp_path_factory.mktemp("pidoc-cache")
    log = tmp_path_factory.mktemp("serve-embedded") / "panel.log"
    args = ["--weights", weights, "--n-stars", N_STARS]
    with serve_dashboard(args=args, env={"PIDOC_CACHE_DIR": str(cache)}, log_path=log,
                         timeout_s=600) as (url, proc):
        yield url, proc, cache, log


def _check_page_matches_widgets(page, sources, run, time_gyr):
    """The numbers name the run and time the widgets show, the distance row the slider's, and
    the flux map is observe() of that run's snapshot under the page's settings."""
    from pidoc_core.imager import ObservationSetup, observe

    state = page.evaluate(_STATE_JS)
    numbers = page.evaluate(NUMBERS_JS)
    assert state["run"] == run
    assert numbers["caption"].startswith(f"{run} at {time_gyr:g} Gyr"), numbers["caption"]
    assert float(state["time_label"].split("<b>")[1].split("</b>")[0]) == time_gyr
    assert float(numbers["cells"]["Distance (kpc)"]["true"]) == state["distance"]
    setup = ObservationSetup(distance_kpc=state["distance"], psf_fwhm_arcsec=state["psf"],
                             shift_arcsec=(state["shift_x"], state["shift_y"]))
    expected = observe(sources[run].snapshot(time_gyr), setup).flux.values.ravel()
    np.testing.assert_allclose(np.asarray(state["flux"], np.float32), expected, atol=1e-4)


@pytest.mark.slow
def test_new_times_and_runs_never_stop_the_server(browser, embedded):
    """Issue 17: moving the Snapshot-time slider to times not yet cached (COSMIC evolves them in
    the server process) and across runs keeps the server alive and the numbers those of the
    widgets; a lost connection is then announced on the page."""
    from pidoc_core.evolution import paper_runs

    url, proc, cache, log = embedded
    sources = paper_runs(n_stars=N_STARS, cache_dir=cache, progress=False)
    page, errors = open_page(browser, url)
    for k, run in enumerate(("MW15 analogue", "MW15-R1.6 analogue", "MW15-R4 analogue")):
        if k:
            set_slider(page, "Run", run, timeout_s=300)
        sources[run].setup()
        times = [round(float(t), 3) for t in sources[run].times]
        for index in (len(times) // 4, len(times) // 2, (3 * len(times)) // 4):
            set_slider(page, "Snapshot time (Gyr)", index, timeout_s=300)
            page.wait_for_function("() => Bokeh.documents[0].is_idle")
            assert proc.poll() is None, log.read_text()[-2000:]
            _check_page_matches_widgets(page, sources, run, times[index])
        set_slider(page, "Distance (kpc)", 40 + 10 * k)
        _check_page_matches_widgets(page, sources, run, times[index])
    assert proc.poll() is None and "SIGTERM" not in log.read_text()
    assert not errors
    # the server goes away: the page says so instead of leaving frozen plots under a green banner
    stop_process_group(proc)
    page.get_by_text("Connection to the π-DOC server lost").wait_for(timeout=30_000)
    page.close()
