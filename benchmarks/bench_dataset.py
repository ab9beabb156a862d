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

The anchor of every rate is ``observe()`` alone (maps/s on one thread) measured in the same run.

Run: ``python benchmarks/bench_dataset.py [--times 1 5 11 12 13 14] [--per-snapshot 71]
[--repeats 3] [--json FILE]`` (the first run may generate and cache missing snapshots: not timed).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from results import Figure, spread, write_json  # noqa: E402


def main(argv=None) -> list[Figure]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--times", type=float, nargs="+",
                        default=[1.0, 5.0, 11.0, 12.0, 13.0, 14.0],
                        help="snapshot times per run, Gyr")
    parser.add_argument("--per-snapshot", type=int, default=71,
                        help="maps per snapshot (the paper's training set: ~71)")
    parser.add_argument("--chunk-size", type=int, default=32)
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--schedulers", nargs="+", default=["threads", "processes"])
    parser.add_argument("--repeats", type=int, default=3, help="builds per scheduler")
    parser.add_argument("--keep", default=None, help="keep the stores in this directory")
    parser.add_argument("--json", default=None, help="write the figures to this JSON file")
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
    obs_rates = []
    for _ in range(3):
        n_obs = 0
        t0 = time.perf_counter()
        for s in snaps:
            for st in setups[:20]:
                observe(s, st)
                n_obs += 1
        obs_rates.append(n_obs / (time.perf_counter() - t0))
    obs_rate, *_ = spread(obs_rates)
    print(f"observe() alone, 1 thread, preloaded snapshots: {obs_rate:.0f} maps/s "
          f"({1e3 / obs_rate:.2f} ms per map; 3 x {n_obs} maps)")

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
        rates = []
        try:
            for _ in range(args.repeats):
                shutil.rmtree(path, ignore_errors=True)
                D._CACHE.clear()
                if client is not None:  # each worker starts without snapshots, like the threads
                    client.restart()
                t0 = time.perf_counter()
                D.write_dataset(plan, sources, path, chunk_size=args.chunk_size,
                                scheduler=scheduler, workers=n_cores, progress=False)
                rates.append(n / (time.perf_counter() - t0))
        finally:
            if client is not None:
                client.close()
                cluster.close()
        build_rates[sched] = spread(rates)
        stores[sched] = path
        size = sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 2**20
        med = build_rates[sched][0]
        print(f"  {sched:<9}: {med:6.1f} maps/s median of {len(rates)} builds "
              f"({min(rates):.0f}-{max(rates):.0f}) = {med / obs_rate:.2f} x observe(){extra}; "
              f"store {size:.0f} MiB")

    # 3. reading through the Keras batch stream
    path = next(iter(stores.values()))
    train = D.open_dataset(path)
    t0 = time.perf_counter()
    consts = D.standardisation(train)
    t_std = time.perf_counter() - t0
    stream = D.batch_stream(path, standardisation=consts, seed=0)
    stream[0]  # imports and first open
    read_rates = []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        m = 0
        for i in range(len(stream)):
            x, y = stream[i]
            m += len(x)
        read_rates.append(m / (time.perf_counter() - t0))
    read = spread(read_rates)
    print(f"standardisation (one pass over flux and mass): {t_std:.2f} s = "
          f"{n / t_std:.0f} maps/s")
    print(f"BatchStream read, {args.repeats} epochs (flux + mass, batch {stream.batch_size}): "
          f"median {read[0]:.0f} maps/s = {read[0] / obs_rate:.2f} x observe()")
    figures = []
    for sched, (med, p05, p95, k) in build_rates.items():
        verdict = "meets" if med >= 50 else "MISSES"
        print(f"summary: build {med:.0f} maps/s ({sched}, {n_cores} cores) {verdict} the "
              f">= 50 maps/s target")
        figures.append(Figure(
            "dataset", f"build from cached snapshots, {n} maps, {sched} scheduler, {n_cores} "
            "cores", "maps/s", med, p05, p95, k, ">= 50 maps/s", med >= 50,
            "observe() alone, 1 thread", obs_rate, "maps/s", med / obs_rate, "build / observe"))
    figures.append(Figure(
        "dataset", f"read through BatchStream (batch {stream.batch_size}, standardised)",
        "maps/s", *read, "", None, "observe() alone, 1 thread", obs_rate, "maps/s",
        read[0] / obs_rate, "read / observe"))
    if args.keep is None:
        shutil.rmtree(tmp, ignore_errors=True)
    if args.json:
        write_json(figures, args.json)
    return figures


if __name__ == "__main__":
    main()
