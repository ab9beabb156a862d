"""The served dashboard in headless Chromium: it renders, reacts, and keeps sessions apart."""

import os
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from browser import CHROMIUM, launch_browser, serve_dashboard, set_slider  # noqa: E402

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
    return page.evaluate("""() => [...Bokeh.documents[0].all_models]
        .filter(m => typeof m.text === 'string' && m.text.includes('Field mass'))
        .map(m => m.text)[0]""")


def widget_value(page, title):
    return page.evaluate("(t) => [...Bokeh.documents[0].all_models].find(m => m.title === t).value",
                         title)


def test_page_renders_and_a_slider_repaints_the_maps(browser, server, tmp_path):
    from PIL import Image

    page, errors = open_page(browser, server)
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
         "--sessions", "4", "--moves", "3", "--rounds", "1", "--single-moves", "3",
         "--weights", str(weights), "--snapshots", str(snapshots), "--settle", "0",
         "--memory-bound-mib", "4096", "--leak-bound-mib", "4096",
         "--log", str(tmp_path / "panel.log"), "--time-limit", "600", "--json", str(out)],
        capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    load = read_json(out)[0]
    assert load.met and load.n == 12 and "errors 0, cross-talk 0" in load.name
