"""Dataset speed: building a store from cached snapshots, and streaming it back to Keras.

Measured in one run, on at most 2 cores:

1. ``observe()`` alone on preloaded snapshots (single thread): the imager's own speed.
2. A build with :func:`pidoc_core.dataset.write_dataset` of the training runs (MW15-R1.6 and
   MW15-R4 analogues, the paper's train distances and PSFs) from snapshots already cached on disk,
   with the paper's ratio of maps to snapshots (20,000 / 282 ~ 71): everything counted — template,
   loading snapshots into the worker cache, imaging, compressing and writing, done markers —
   with the threads scheduler and with a local 2-process dask.distributed cluster.
3. Reading: maps/s through :class:`pidoc_core.dataset.BatchStream` (flux and mass batches,
   standardised, shuffled chunk-wise), one epoch.

Target (issue): >= 50 maps/s for the build on 2 cores.

Run: ``python benchmarks/bench_dataset.py [--times 1 5 11 12 13 14] [--per-snapshot 71]``
(the first run may generate and cache missing snapshots: not timed).
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--times", type=float, nargs="+",
                        default=[1.0, 5.0, 11.0, 12.0, 13.0, 14.0],
                        help="snapshot times per run, Gyr")
    parser.add_argument("--per-snapshot", type=int, default=71,
                        help="maps per snapshot (the paper's training set: ~71)")
    parser.add_argument("--chunk-size", type=int, default=32)
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--schedulers", nargs="+", default=["threads", "processes"])
    parser.add_argument("--keep", default=None, help="keep the stores in this directory")
    args = parser.parse_args(argv)

    if hasattr(os, "sched_setaffinity"):
        cores = sorted(os.sched_getaffinity(0))[: args.cores]
        os.sched_setaffinity(0, cores)
    n_cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()

    from pidoc_core import dataset as D
    from pidoc_core.evolution import paper_runs
    from pidoc_core.imager import ObservationSetup, observe

    runs = paper_runs(progress=True)
    sources = {name: runs[name] for name in D.PAPER_TRAIN_RUNS}
    print(f"cores: {n_cores}; runs: {list(sources)}; times: {args.times}")

    t0 = time.perf_counter()
    snaps = [src.snapshot(t) for src in sources.values() for t in args.times]  # warm disk cache
    print(f"snapshots ready (disk cache warm-up, untimed): {time.perf_counter() - t0:.1f} s; "
          f"{np.mean([len(s) for s in snaps]):.0f} stars on average")

    # 1. observe() alone
    rng = np.random.default_rng(0)
    setups = [ObservationSetup(distance_kpc=d, psf_fwhm_arcsec=p,
                               shift_arcsec=tuple(rng.uniform(-5, 5, 2)), rotation_deg=r)
              for d in D.PAPER_TRAIN_DISTANCES_KPC for p in D.PAPER_TRAIN_PSFS_ARCSEC
              for r in (0, 90, 180, 270)]
    for s in snaps:  # centre, photometry and kernels outside the timing
        observe(s, setups[0])
    for st in setups[:10]:
        observe(snaps[0], st)
    n_obs = 0
    t0 = time.perf_counter()
    for s in snaps:
        for st in setups[:20]:
            observe(s, st)
            n_obs += 1
    obs_rate = n_obs / (time.perf_counter() - t0)
    print(f"observe() alone, 1 thread, preloaded snapshots: {obs_rate:.0f} maps/s "
          f"({1e3 / obs_rate:.2f} ms per map)")

    # 2. builds
    n_snap = len(snaps)
    n = int(round(n_snap * args.per_snapshot / args.chunk_size)) * args.chunk_size
    plan = D.plan_samples(sources, times=args.times, distances_kpc=D.PAPER_TRAIN_DISTANCES_KPC,
                          psf_fwhms_arcsec=D.PAPER_TRAIN_PSFS_ARCSEC, n_samples=n, seed=1,
                          split="train")
    print(f"build: {n} maps from {n_snap} snapshots ({plan.n_combinations} combinations), "
          f"chunks of {args.chunk_size}")
    tmp = Path(args.keep or tempfile.mkdtemp(prefix="pidoc-bench-"))
    tmp.mkdir(parents=True, exist_ok=True)
    stores = {}
    build_rates = {}
    for sched in args.schedulers:
        path = tmp / f"bench-{sched}.zarr"
        shutil.rmtree(path, ignore_errors=True)
        D._CACHE.clear()
        extra = ""
        if sched == "processes":
            from distributed import Client, LocalCluster

            t0 = time.perf_counter()
            cluster = LocalCluster(n_workers=n_cores, threads_per_worker=1, processes=True,
                                   dashboard_address=None)
            client = Client(cluster)
            extra = f" (+ {time.perf_counter() - t0:.1f} s to start the cluster, not counted)"
            scheduler = client
        else:
            scheduler, client = sched, None
        try:
            t0 = time.perf_counter()
            D.write_dataset(plan, sources, path, chunk_size=args.chunk_size, scheduler=scheduler,
                            workers=n_cores, progress=False)
            dt = time.perf_counter() - t0
        finally:
            if client is not None:
                client.close()
                cluster.close()
        build_rates[sched] = n / dt
        stores[sched] = path
        size = sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 2**20
        print(f"  {sched:<9}: {dt:6.1f} s, {n / dt:6.1f} maps/s = {n / dt / obs_rate:.2f} x "
              f"observe(){extra}; store {size:.0f} MiB")

    # 3. reading through the Keras batch stream
    path = next(iter(stores.values()))
    train = D.open_dataset(path)
    t0 = time.perf_counter()
    consts = D.standardisation(train)
    t_std = time.perf_counter() - t0
    stream = D.batch_stream(path, standardisation=consts, seed=0)
    stream[0]  # imports and first open
    t0 = time.perf_counter()
    m = 0
    for i in range(len(stream)):
        x, y = stream[i]
        m += len(x)
    read_rate = m / (time.perf_counter() - t0)
    print(f"standardisation (one pass over flux and mass): {t_std:.2f} s = "
          f"{n / t_std:.0f} maps/s")
    print(f"BatchStream read, 1 epoch (flux + mass, batch {stream.batch_size}): {read_rate:.0f} "
          f"maps/s = {read_rate / obs_rate:.2f} x observe()")
    best = max(build_rates, key=build_rates.get)
    verdict = "meets" if build_rates[best] >= 50 else "MISSES"
    print(f"summary: build {build_rates[best]:.0f} maps/s ({best}, {n_cores} cores) {verdict} the "
          f">= 50 maps/s target; read {read_rate:.0f} maps/s; observe() {obs_rate:.0f} maps/s")
    if args.keep is None:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
