"""``pidoc dataset build|info``: mock-observation datasets (:mod:`pidoc_core.dataset`, imported
only when a command runs, so that ``pidoc --help`` stays fast)."""

from __future__ import annotations

from pathlib import Path

#: Presets of ``pidoc dataset build`` (their one home is :data:`pidoc_core.dataset.DATASET_PRESETS`;
#: named here without importing the dataset module, so ``pidoc --help`` stays fast).
DATASET_PRESET_NAMES = ("paper", "small", "fresh", "wide", "wide-extra")


def _cmd_dataset_build(args) -> int:
    from .. import dataset
    from ..evolution import paper_runs

    if args.preset == "fresh":  # one store of a cluster none of the networks saw
        runs, plan = dataset.fresh_cluster(n_stars=args.n_stars)
        print(f"fresh: {len(plan)} samples of {len(plan.snapshots())} snapshots of "
              f"{next(iter(runs))} -> {Path(args.out) / 'fresh.zarr'}")
        dataset.write_dataset(plan, runs, Path(args.out) / "fresh.zarr",
                              chunk_size=args.chunk_size, scheduler=args.scheduler,
                              workers=args.workers, progress=True)
        return 0
    if args.preset in ("wide", "wide-extra"):  # the grid spanning Table 3, its partner square
        from ..evolution.grid import WIDE_EXTRA_GRID, WIDE_GRID, wide_sources

        runs = wide_sources(progress=True,
                            grid=WIDE_GRID if args.preset == "wide" else WIDE_EXTRA_GRID)
    else:
        # thousands of snapshot times: each is made once for all of its maps, not kept on disk
        runs = paper_runs(n_stars=args.n_stars, seed=args.runs_seed, progress=True,
                          cache_snapshots=False)
    plans = dataset.preset_splits(args.preset, runs, seed=args.seed, n_train=args.train,
                                  n_val=args.val, n_test=args.test)
    if args.splits:
        plans = {k: v for k, v in plans.items() if k in args.splits}
    if args.every_nth_snapshot > 1 and "train" in plans:
        plans["train"] = dataset.every_nth_snapshot(plans["train"], args.every_nth_snapshot)
    scheduler = args.scheduler
    for name, plan in plans.items():
        print(f"{name}: {len(plan)} samples of {len(plan.snapshots())} snapshots, "
              f"{plan.n_combinations} (run, time, distance, psf) combinations (repeat factor "
              f"{plan.repeat_factor:.2f}) -> {Path(args.out) / (name + '.zarr')}")
    paths = dataset.build_splits(plans, runs, args.out, chunk_size=args.chunk_size,
                                 scheduler=scheduler, workers=args.workers, progress=True)
    for name, path in paths.items():
        done, total = dataset.completion(path)
        print(f"{path}: {done}/{total} chunks written")
    return 0


def _cmd_dataset_info(args) -> int:
    from .. import dataset

    info = dataset.dataset_info(args.path)
    state = ("complete" if info["complete"] else
             f"INCOMPLETE ({info['chunks_done']}/{info['chunks_total']} chunks written; rerun the "
             "build to resume)")
    ny, nx = info["map_shape"]
    print(f"{info['path']}: {info['split']} split, {info['n_samples']} samples of {ny}x{nx} "
          f"pixels, {info['n_combinations']} (run, time, distance, psf) combinations, "
          f"{info['size_bytes'] / 2**20:.1f} MiB")
    print(f"  {state}: {info['chunks_done']}/{info['chunks_total']} chunks of "
          f"{info['chunk_size']} samples")
    print(f"  {info['n_snapshots']} distinct (run, time) snapshots, "
          f"{info['maps_per_snapshot']:.2f} maps per snapshot, repeat factor "
          f"{info['repeat_factor']:.2f} samples per (run, time, distance, psf) combination")
    print(f"  seed {info['seed']}, code {info['code_version']}, plan {info['plan_sha256'][:16]}")
    for run, n in info["runs"].items():
        print(f"  run {run!r}: {n} samples")
    for name, r in info["ranges"].items():
        print(f"  {name:<9} {r['min']:10.4g} .. {r['max']:<10.4g} {r['units']:<7} "
              f"({r['n_distinct']} distinct)")
    print(f"  line of sight: {info['lines_of_sight']}")
    return 0


def add_dataset_commands(sub) -> None:
    """Add ``dataset build`` and ``dataset info`` to the ``pidoc`` sub-parsers."""
    p = sub.add_parser("dataset", help="build or inspect mock-observation datasets (zarr)")
    dsub = p.add_subparsers(dest="dataset_command", required=True)
    b = dsub.add_parser("build", help="build the paper's train/val/test sets from the embedded "
                                      "runs (resumable)")
    b.add_argument("--preset", choices=DATASET_PRESET_NAMES, default="small",
                   help="paper: 20,000/2,000/8,172 samples from 1,401 times per training run "
                        "and 2,043 for the test run, no repeats; small: 512/64/128 on 14 times; "
                        "fresh: 1,200 maps of a cluster no network saw (rh0 = 2.4 pc, 20/40/90 "
                        "kpc, PSF 0.8/1.2\") as fresh.zarr; wide: 40,000/4,000/8,000 from the "
                        "18-run grid spanning the paper's Table 3 clusters, validation and test "
                        "runs held out whole (hours on 2 cores: README, 'Cost at large N'); "
                        "wide-extra: 34,286 training maps of the grid's partner square (12 more "
                        "runs, training only)")
    b.add_argument("--out", required=True, help="output directory (train.zarr, val.zarr, "
                                                "test.zarr)")
    b.add_argument("--train", type=int, default=None, help="training samples (overrides preset)")
    b.add_argument("--val", type=int, default=None, help="validation samples")
    b.add_argument("--test", type=int, default=None, help="test samples")
    b.add_argument("--splits", nargs="+", choices=("train", "val", "test"), default=None,
                   help="build only these splits (default all three)")
    b.add_argument("--scheduler", default="threads",
                   help="threads, processes, synchronous or a dask.distributed scheduler "
                        "address (tcp://host:8786)")
    b.add_argument("--workers", type=int, default=None, help="threads or local processes")
    b.add_argument("--seed", type=int, default=2021, help="seed of the sample plan")
    b.add_argument("--every-nth-snapshot", type=int, default=1, metavar="N",
                   help="keep the training maps of every N-th snapshot time only (~1/N of the "
                        "build's cost; validation and test unchanged)")
    b.add_argument("--chunk-size", type=int, default=32, help="samples per zarr chunk")
    b.add_argument("--n-stars", type=int, default=50_000, help="stars of the embedded runs")
    b.add_argument("--runs-seed", type=int, default=2021, help="seed of the embedded runs")
    b.set_defaults(func=_cmd_dataset_build)
    i = dsub.add_parser("info", help="summarise a dataset store")
    i.add_argument("path")
    i.set_defaults(func=_cmd_dataset_info)
