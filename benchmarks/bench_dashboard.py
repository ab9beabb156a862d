"""Dashboard latency: slider change to repainted plots in headless Chromium, on this machine.

Serves ``app/dashboard.py`` (the embedded default, the shipped weights unless ``--weights``), opens
it in Debian's Chromium and moves the distance, PSF and shift sliders; each move is timed in the page
from setting the widget's value to the frame after every map's data source changed. The anchor,
measured in the same run, is the server-side work of one move (:func:`pidoc_core.exploration.explore`
called in-process). Target (issue 7): median <= 150 ms.

Run: ``python benchmarks/bench_dashboard.py [--moves 30] [--weights DIR] [--json FILE]``
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from browser import launch_browser, serve_dashboard, set_slider  # noqa: E402
from results import Figure, spread, write_json  # noqa: E402

MOVES = (("Distance (kpc)", (20, 35, 50, 65, 80)), ("PSF FWHM (arcsec)", (0.6, 0.9, 1.2, 1.45)),
         ("Centre shift x (arcsec)", (-3.0, -1.0, 1.5, 4.0)))


def server_side_ms(repeats: int, weights) -> np.ndarray:
    """Milliseconds of one explore() step in-process, the same work a move asks of the server."""
    from pidoc_core.evolution import paper_runs
    from pidoc_core.exploration import explore
    from pidoc_core.imager import ObservationSetup
    from pidoc_core.model import PiDOC

    model = PiDOC.load(weights)
    upsilon = model.provenance["training_mass_to_light"]
    snap = paper_runs(progress=False)["MW15 analogue"].snapshot(12.0)
    times = []
    for i in range(repeats + 1):
        setup = ObservationSetup(distance_kpc=15 + 2 * i, psf_fwhm_arcsec=1.0)
        t0 = time.perf_counter()
        explore(snap, setup, model=model, upsilon=upsilon)
        times.append(time.perf_counter() - t0)
    return 1e3 * np.asarray(times[1:])


def main(argv=None) -> list[Figure]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--moves", type=int, default=30)
    parser.add_argument("--weights", default=os.environ.get("PIDOC_WEIGHTS"))
    parser.add_argument("--json", default=None, help="write the figures to this JSON file")
    args = parser.parse_args(argv)
    from playwright.sync_api import sync_playwright

    anchor = server_side_ms(args.moves, args.weights)
    serve_args = ["--weights", args.weights] if args.weights else []
    latencies = []
    with serve_dashboard(args=serve_args, log_path=Path("/tmp/pidoc-bench-dashboard.log")) as (url, _):
        with sync_playwright() as p:
            browser = launch_browser(p)
            page = browser.new_page(viewport={"width": 1600, "height": 1000})
            page.goto(url, wait_until="domcontentloaded", timeout=600_000)
            page.wait_for_function("() => window.Bokeh && Bokeh.documents.length > 0 && "
                                   "Bokeh.documents[0].is_idle", timeout=600_000)
            set_slider(page, "Distance (kpc)", 16)  # warm-up
            while len(latencies) < args.moves:
                for title, values in MOVES:
                    for v in values:
                        latencies.append(set_slider(page, title, v))
            browser.close()
    med, p05, p95, n = spread(latencies[: args.moves])
    server = spread(anchor)
    print(f"slider -> repaint over {n} moves: median {med:.0f} ms (5-95%: {p05:.0f}-{p95:.0f} ms)"
          " [target <= 150 ms]")
    print(f"server-side explore() alone: median {server[0]:.0f} ms (5-95%: {server[1]:.0f}-"
          f"{server[2]:.0f}); ratio page / server {med / server[0]:.2f}")
    figures = [
        Figure("dashboard", "slider change -> every map repainted, headless Chromium, 1 session",
               "ms", med, p05, p95, n, "<= 150 ms", med <= 150,
               "server-side explore() of one move, in-process", server[0], "ms", med / server[0],
               "page / server"),
    ]
    if args.json:
        write_json(figures, args.json)
    return figures


if __name__ == "__main__":
    main()
