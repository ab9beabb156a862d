"""Serve the dashboard and drive it in Debian's headless Chromium (shared by tests and benchmarks).

Never downloads a browser: Playwright is pointed at /usr/bin/chromium with the flags this machine
needs offline.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

__all__ = ["CHROMIUM", "CHROMIUM_ARGS", "SET_AND_TIME_JS", "NUMBERS_JS", "OPEN_TESTSET_JS",
           "FILTER_TESTSET_JS", "free_port", "serve_dashboard", "stop_process_group",
           "launch_browser", "set_slider", "move_latency_ms", "REPO"]

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def free_port() -> int:
    """A free TCP port on the loopback interface."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def serve_dashboard(*, args=(), options=(), env=None, timeout_s=600.0, log_path=None,
                    extra_apps=()):
    """Run ``panel serve app/dashboard.py`` on a free loopback port; yield (page URL, process).

    ``options`` go to ``panel serve`` itself, ``args`` to the dashboard (after ``--args``);
    ``extra_apps`` are more scripts served beside it (at ``/<script name>``). The server runs in
    its own process group and is stopped (with its children) on exit.
    """
    port = free_port()
    cmd = [sys.executable, "-m", "panel", "serve", str(REPO / "app" / "dashboard.py"),
           *map(str, extra_apps),
           "--address", "127.0.0.1", "--port", str(port),
           f"--allow-websocket-origin=127.0.0.1:{port}", *map(str, options)]
    if args:
        cmd += ["--args", *map(str, args)]
    log = open(log_path, "wb") if log_path else subprocess.DEVNULL
    proc = subprocess.Popen(cmd, cwd=REPO, env={**os.environ, **(env or {})}, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}/dashboard"
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"panel serve exited with {proc.returncode}; see {log_path}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"dashboard did not start within {timeout_s} s") from None
                time.sleep(0.5)
        yield url, proc
    finally:
        stop_process_group(proc)
        if log_path:
            log.close()


def stop_process_group(proc, *, timeout_s: float = 20.0) -> None:
    """SIGTERM a process started with ``start_new_session=True`` and its children; SIGKILL
    them if they have not exited within ``timeout_s``."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def launch_browser(playwright):
    """Debian's Chromium through Playwright, headless, offline-safe."""
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)


#: Page function ``([title, value, timeout_ms]) -> ms``: set the widget titled ``title`` (or, for
#: a Panel DiscreteSlider, whose label starts with ``title``: ``value`` is then the option's
#: index) and resolve after every map has new data (the Explore tab's: sources named
#: ``app.views.explore_plots.EXPLORE_IMAGE_SOURCE``-*) and the frame after it is painted; the ms
#: until the data arrived are left in ``window.pidoc_data_ms``.
SET_AND_TIME_JS = """
async ([title, value, timeout_ms]) => {
  const doc = Bokeh.documents[0];
  const models = [...doc.all_models];
  let widget = models.find(m => m.title === title && 'value' in m);
  if (!widget) {  // a DiscreteSlider: an untitled slider beside a label starting with the title
    const label = models.find(m => typeof m.text === 'string' && m.text.startsWith(title));
    const box = label && models.find(m => Array.isArray(m.children) && m.children.includes(label));
    widget = box && box.children.find(c => c !== label && 'value' in c && 'start' in c);
  }
  if (!widget) throw new Error('no widget titled ' + title);
  // the Explore tab's images (named sources; the other tabs' images do not move), else every
  // image of the page (the bare page of benchmarks/bench_dashboard.py)
  const images = models.filter(m => m.data && m.data.image !== undefined);
  const named = images.filter(m => (m.name || '').startsWith('pidoc-explore-image'));
  const sources = named.length ? named : images;
  const before = sources.map(s => s.data.image);
  const t0 = performance.now();
  widget.value = value;
  await new Promise((resolve, reject) => {
    const give_up = setTimeout(() => reject(new Error('no repaint within ' + (timeout_ms || 30000)
                                                      + ' ms')), timeout_ms || 30000);
    const poll = () => {
      if (sources.every((s, i) => s.data.image !== before[i])) {
        clearTimeout(give_up);
        window.pidoc_data_ms = performance.now() - t0;  // the new data has arrived
        requestAnimationFrame(() => requestAnimationFrame(resolve));  // the repaint
      } else {
        requestAnimationFrame(poll);
      }
    };
    poll();
  });
  return performance.now() - t0;
}
"""


#: Page function ``() -> {caption, cells, text}``: the Explore tab's numbers, read from the data
#: source its canvas table draws (``cells[row][column]``; ``text`` one line per row).
NUMBERS_JS = """() => {
  const src = [...Bokeh.documents[0].all_models].find(m => m.name === 'pidoc-numbers');
  const d = src.data, cells = {}, lines = {};
  for (let i = 0; i < d.text.length; i++) {
    (cells[d.row[i]] = cells[d.row[i]] || {})[d.col[i]] = d.text[i];
    (lines[d.y[i]] = lines[d.y[i]] || []).push([d.x[i], d.text[i]]);
  }
  const text = Object.keys(lines).map(Number).sort((a, b) => b - a)
    .map(y => lines[y].sort((a, b) => a[0] - b[0]).map(c => c[1]).join(' | ')).join('\\n');
  return {caption: (cells.caption || {})[''], cells: cells, text: text};
}"""


def set_slider(page, title, value, *, timeout_s: float = 30.0):
    """Set a Bokeh widget's value by its title (a DiscreteSlider by its label, ``value`` the
    option's index); return ms until every map has repainted, at most ``timeout_s``."""
    return page.evaluate(SET_AND_TIME_JS, [title, value, int(timeout_s * 1e3)])


def move_latency_ms(page, title, values):
    """Latencies (ms) of a sequence of moves of one slider."""
    return [set_slider(page, title, v) for v in values]


#: Page function ``(title) -> ms``: open the dashboard tab titled ``title`` and resolve once the
#: Test-set tab's header (a Markdown model saying "test maps") is in the page, the document is
#: idle and the frame after it is painted.
OPEN_TESTSET_JS = """async (title) => {
  const doc = Bokeh.documents[0];
  const tabs = [...doc.all_models].find(m => Array.isArray(m.tabs));
  const t0 = performance.now();
  tabs.active = tabs.tabs.findIndex(t => t.title === title);
  await new Promise((resolve, reject) => {
    const give_up = setTimeout(() => reject(new Error('no Test-set tab within 60 s')), 60000);
    const poll = () => {
      const header = [...doc.all_models].find(m => typeof m.text === 'string'
                                                  && m.text.includes('test maps'));
      if (header && doc.is_idle) {
        clearTimeout(give_up);
        requestAnimationFrame(() => requestAnimationFrame(resolve));
      } else setTimeout(poll, 2);
    };
    poll();
  });
  return performance.now() - t0;
}"""

#: Page function ``([title, value]) -> {ms, busy, header}``: set the Test-set filter widget
#: titled ``title`` (MultiChoice values are strings) and resolve once the header has its new
#: text (no longer the busy indicator) and the frame after it is painted; ``busy`` says whether
#: the indicator was seen.
FILTER_TESTSET_JS = """async ([title, value]) => {
  const doc = Bokeh.documents[0];
  const models = [...doc.all_models];
  const widget = models.find(m => m.title === title && 'value' in m);
  if (!widget) throw new Error('no widget titled ' + title);
  const text = () => (models.find(m => typeof m.text === 'string' && m.text.includes('test maps'))
                      || {text: ''}).text;
  const before = text();
  // the tab's busy indicator: its header says it is updating (app.views.testset.BUSY_TEXT)
  const busy = () => models.some(m => typeof m.text === 'string'
                                      && m.text.includes('Updating the figures'));
  const t0 = performance.now();
  widget.value = value;
  let seen = busy();
  await new Promise((resolve, reject) => {
    const give_up = setTimeout(() => reject(new Error('no update within 60 s')), 60000);
    const poll = () => {
      seen = seen || busy();
      if (text() !== before && !busy() && doc.is_idle) {
        clearTimeout(give_up);
        requestAnimationFrame(() => requestAnimationFrame(resolve));
      } else setTimeout(poll, 2);
    };
    poll();
  });
  return {ms: performance.now() - t0, busy: seen, header: text()};
}"""
