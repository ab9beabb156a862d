"""Benchmark of the embedded evolution source: one-time set-up vs per-snapshot cost.

Run: ``python benchmarks/bench_evolution.py [--cache DIR] [--rh0 3.2] [--n-stars 50000]``.
Uses a fresh cache directory by default (so the set-up is measured; the shared SSE table is
built too unless ``--cache`` points at a directory that already holds it). Prints the set-up
time, the median and spread of first-time snapshot generation, of cached loads, and their ratio
to the set-up cost.
"""

from __future__ import annotations

import argparse
import tempfile
import time

import numpy as np

from pidoc_core.evolution import ClusterEvolution


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cache", default=None, help="cache directory (default: a fresh temp dir)")
    p.add_argument("--rh0", type=float, default=3.2)
    p.add_argument("--n-stars", type=int, default=50_000)
    p.add_argument("--n-snap", type=int, default=15)
    args = p.parse_args(argv)
    cache = args.cache or tempfile.mkdtemp(prefix="pidoc-bench-")
    run = ClusterEvolution(args.rh0, n_stars=args.n_stars, cache_dir=cache, progress=True)
    t0 = time.perf_counter()
    run.setup()
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
    gen, load = np.array(gen), np.array(load)
    print(f"cache: {cache}")
    print(f"one-time set-up: {setup:.1f} s")
    for label, x in (("first snapshot", gen), ("cached snapshot", load)):
        q16, q50, q84 = np.percentile(x, [16, 50, 84])
        print(f"{label}: median {q50 * 1e3:.0f} ms (16-84%: {q16 * 1e3:.0f}-{q84 * 1e3:.0f} ms, "
              f"max {x.max() * 1e3:.0f} ms); ratio to set-up {q50 / setup:.2e}")


if __name__ == "__main__":
    main()
