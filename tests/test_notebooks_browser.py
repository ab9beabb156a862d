"""The notebooks run live in JupyterLab, in headless Chromium, ask nothing of any other host.

A teacher opens a notebook in JupyterLab and runs every cell; Panel, Bokeh and HoloViews then
draw widgets and plots in the page. Here JupyterLab serves a copy of the tour in smoke mode
(``SMOKE = True`` injected after the parameters cell, as ``test_notebooks.py`` does) on
127.0.0.1; Chromium runs all its cells through JupyterLab's own command and every request the
page makes is recorded. The test fails on a request to any host but the local server, on an
error output, or when no Bokeh plot was drawn. A screenshot of each notebook is left in the
pytest temporary directory.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

import pytest

nbformat = pytest.importorskip("nbformat")
pytest.importorskip("jupyterlab")
playwright_api = pytest.importorskip("playwright.sync_api")

from .test_notebooks import NOTEBOOKS, parametrise  # noqa: E402

pytestmark = pytest.mark.slow

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
RUN_TIMEOUT_S = 420  # all cells of one notebook in smoke mode, 2 busy cores

#: How far the cells have run: (code cells, cells with an execution count, error outputs).
_PROGRESS_JS = """() => {
  const w = window.jupyterapp && window.jupyterapp.shell.currentWidget;
  if (!w || !w.content || !w.content.model) return null;
  const cells = w.content.model.cells;
  let n = 0, done = 0, errors = [];
  for (let i = 0; i < cells.length; i++) {
    const c = cells.get(i);
    if (c.type !== 'code') continue;
    n += 1;
    if (c.executionCount) done += 1;
    const outs = c.outputs.toJSON();
    for (const o of outs) if (o.output_type === 'error') errors.push(o.ename + ': ' + o.evalue);
  }
  return [n, done, errors];
}"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """JupyterLab on 127.0.0.1 serving smoke-mode copies of the notebooks."""
    if not CHROMIUM.exists():
        pytest.skip("Debian's /usr/bin/chromium is not installed")
    root = tmp_path_factory.mktemp("lab")
    for path in NOTEBOOKS.glob("01_*.ipynb"):
        nb = parametrise(nbformat.read(path, as_version=4), SMOKE=True)
        nbformat.write(nb, root / path.name)
    port = _free_port()
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", JUPYTER_CONFIG_DIR=str(root / ".jupyter"),
               JUPYTER_DATA_DIR=str(root / ".jupyter-data"),
               JUPYTER_RUNTIME_DIR=str(root / ".jupyter-runtime"))
    log = open(root / "lab.log", "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--no-browser", f"--port={port}",
         "--ip=127.0.0.1", f"--ServerApp.root_dir={root}", "--ServerApp.token=",
         "--ServerApp.password=", "--allow-root", "--LabApp.expose_app_in_browser=True",
         "--LabApp.news_url=", "--ServerApp.disable_check_xsrf=True"],
        stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(120):
            try:
                urllib.request.urlopen(f"{url}/api/status", timeout=2).read()
                break
            except OSError:
                if proc.poll() is not None:
                    raise AssertionError((root / "lab.log").read_text()[-3000:])
                time.sleep(0.5)
        else:
            raise AssertionError("JupyterLab did not start:\n" + (root / "lab.log").read_text()[-3000:])
        yield url, root
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


@pytest.fixture(scope="module")
def browser():
    with playwright_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield b
        b.close()


# The tour: HoloViews layouts, a pn.interact and the dashboard's Explore view. Every notebook's
# outputs are also searched for links to other hosts in test_notebooks.py (no browser needed).
@pytest.mark.parametrize("name", ["01_tour.ipynb"])
def test_notebook_runs_live_without_leaving_the_machine(lab, browser, name, tmp_path):
    url, root = lab
    here = urlsplit(url).netloc
    page = browser.new_page(viewport={"width": 1600, "height": 1000})
    requests, failed = [], []
    page.on("request", lambda r: requests.append(r.url))
    page.on("requestfailed", lambda r: failed.append(r.url))
    page.goto(f"{url}/lab/tree/{name}", wait_until="domcontentloaded")
    page.wait_for_function("() => window.jupyterapp && window.jupyterapp.shell.currentWidget "
                           "&& window.jupyterapp.shell.currentWidget.sessionContext "
                           "&& window.jupyterapp.shell.currentWidget.sessionContext.session "
                           "&& window.jupyterapp.shell.currentWidget.sessionContext.session.kernel",
                           timeout=120_000)
    page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")
    start, progress = time.monotonic(), None
    while time.monotonic() - start < RUN_TIMEOUT_S:
        progress = page.evaluate(_PROGRESS_JS)
        if progress and progress[2]:
            break
        if progress and progress[0] and progress[1] == progress[0]:
            busy = page.evaluate("() => window.jupyterapp.shell.currentWidget.sessionContext"
                                 ".session.kernel.status")
            if busy == "idle":
                break
        time.sleep(1.0)
    assert progress is not None, "JupyterLab did not open the notebook"
    n, done, errors = progress
    assert not errors, f"{name}: error outputs in JupyterLab: {errors}"
    assert done == n, f"{name}: {done} of {n} code cells ran within {RUN_TIMEOUT_S} s"
    page.wait_for_timeout(3000)  # let Bokeh and Panel draw what the last cells sent
    n_plots = page.evaluate("() => document.querySelectorAll('.bk-Canvas, .bk-Figure, "
                            "[class*=\"bk-panel-models\"]').length")
    page.screenshot(path=str(tmp_path / f"{Path(name).stem}.png"), full_page=False)
    page.close()
    foreign = sorted({u for u in requests if urlsplit(u).scheme in ("http", "https", "ws", "wss")
                      and urlsplit(u).netloc != here})
    assert not foreign, f"{name}: requests to other hosts: {foreign[:10]}"
    assert n_plots > 0, f"{name}: no Bokeh or Panel output was drawn"
    local_failures = [u for u in failed if urlsplit(u).netloc == here and "/api/" not in u]
    assert not local_failures, f"{name}: local resources failed to load: {local_failures[:5]}"
