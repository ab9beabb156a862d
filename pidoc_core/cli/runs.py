"""``pidoc prepare`` and ``pidoc evolve``: the embedded cluster-evolution runs."""

from __future__ import annotations


def _cmd_evolve(args) -> int:
    from ..evolution import export_snapshots, paper_runs

    runs = paper_runs(n_stars=args.n_stars, seed=args.seed)
    matches = [name for name in runs if name.lower().startswith(args.run.lower())]
    if len(matches) != 1:
        raise SystemExit(f"pidoc evolve: --run {args.run!r} must name one of {list(runs)}")
    paths = export_snapshots(runs[matches[0]], args.times, args.out, format=args.format)
    for path in paths:
        print(path)
    return 0


def _cmd_prepare(args) -> int:
    from ..evolution import paper_runs

    runs = paper_runs(n_stars=args.n_stars, seed=args.seed, progress=True)
    for name, run in runs.items():
        snap = run.snapshot(args.time)
        print(f"{name}: ready ({snap!r})")
    return 0


def add_run_commands(sub) -> None:
    """Add ``prepare`` and ``evolve`` to the ``pidoc`` sub-parsers."""
    p = sub.add_parser("prepare", help="set up the embedded runs once (cached), so the dashboard "
                                       "opens at once")
    p.add_argument("--n-stars", type=int, default=50_000)
    p.add_argument("--seed", type=int, default=2021)
    p.add_argument("--time", type=float, default=12.0, help="snapshot to cache first, Gyr")
    p.set_defaults(func=_cmd_prepare)

    p = sub.add_parser("evolve", help="write snapshots of an embedded evolution run")
    p.add_argument("--run", default="MW15 analogue",
                   help="'MW15-R1.6 analogue', 'MW15 analogue' or 'MW15-R4 analogue' (a prefix)")
    p.add_argument("--times", type=float, nargs="+", required=True, help="times, Gyr")
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--format", default="ecsv", choices=("ecsv", "fits", "hdf5", "csv"))
    p.add_argument("--n-stars", type=int, default=50_000)
    p.add_argument("--seed", type=int, default=2021)
    p.set_defaults(func=_cmd_evolve)
