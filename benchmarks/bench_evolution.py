"""Embedded evolution source: one-time set-up vs the cost of each new and each cached snapshot.

Uses a fresh cache directory by default, so the one-time costs are measured in full: the first
run's set-up includes the SSE table shared by all runs (unless ``--cache`` already holds it), a
second run's set-up (``--rh0-second``) is the per-run cost alone. For ``--n-snap`` times between
0.5 and 14 Gyr it times the first (generated) and the second (cached) snapshot of the first run.
Target (issue 3): a new snapshot costs <= 1 s after the one-time set-up; the anchor is the
per-run set-up, measured in the same run.

Run: ``python benchmarks/bench_evolution.py [--cache DIR] [--rh0 3.2] [--rh0-second 4.0]
[--n-stars 50000] [--n-snap 15] [--json FILE]``
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from results import Figure, spread, write_json  # noqa: E402

from pidoc_core.evolution import ClusterEvolution  # noqa: E402


def main(argv=None) -> list[Figure]:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cache", default=None, help="cache directory (default: a fresh temp dir)")
    p.add_argument("--rh0", type=float, default=3.2, help="initial half-mass radius, pc")
    p.add_argument("--rh0-second", type=float, default=4.0,
                   help="initial half-mass radius of the second run, pc")
    p.add_argument("--n-stars", type=int, default=50_000)
    p.add_argument("--n-snap", type=int, default=15)
    p.add_argument("--json", default=None, help="write the figures to this JSON file")
    args = p.parse_args(argv)
    cache = args.cache or tempfile.mkdtemp(prefix="pidoc-bench-")
    try:
        run = ClusterEvolution(args.rh0, n_stars=args.n_stars, cache_dir=cache, progress=True)
        t0 = time.perf_counter()
        run.setup()
        first_setup = time.perf_counter() - t0
        second = ClusterEvolution(args.rh0_second, n_stars=args.n_stars, cache_dir=cache,
                                  progress=True)
        t0 = time.perf_counter()
        second.setup()
        setup = time.perf_counter() - t0
        times = np.linspace(0.5, 14.0, args.n_snap).round(1)
        gen, load = [], []
        for t in times:
            t0 = time.perf_counter()
            run.snapshot(t)
            gen.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            run.snapshot(t)
            load.append(time.perf_counter() - t0)
    finally:
        if args.cache is None:
            shutil.rmtree(cache, ignore_errors=True)
    print(f"cache: {cache}{' (removed)' if args.cache is None else ''}")
    print(f"one-time set-up: first run {first_setup:.1f} s (with the shared SSE table), "
          f"second run {setup:.1f} s (per-run cost)")
    figures = []
    for label, x, target in (("new snapshot (generated and cached)", gen, 1000.0),
                             ("cached snapshot (read back)", load, None)):
        med, p05, p95, n = spread(1e3 * np.asarray(x))
        print(f"{label}: median {med:.0f} ms (5-95%: {p05:.0f}-{p95:.0f} ms); "
              f"set-up / snapshot {1e3 * setup / med:.0f}")
        figures.append(Figure(
            "evolution", f"{label}, N = {args.n_stars:,}, rh0 = {args.rh0} pc", "ms", med, p05,
            p95, n, "<= 1 s" if target else "", (med <= target) if target else None,
            "one-time per-run set-up (SSE table cached)", setup, "s", 1e3 * setup / med,
            "set-up / snapshot"))
    if args.json:
        write_json(figures, args.json)
    return figures


if __name__ == "__main__":
    main()
