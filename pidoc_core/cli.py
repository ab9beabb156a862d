"""The ``pidoc`` command.

Sub-commands:

``pidoc snapshot PATH``
    Read an N-body snapshot (any supported format) and print a summary.
``pidoc observe PATH --distance KPC --psf ARCSEC [...] --out OBS.nc``
    Make one mock observation of a snapshot and write it as netCDF.
``pidoc prepare``
    Set up the embedded runs once (a few minutes, cached) so the dashboard opens at once.
``pidoc dataset build|info``, ``pidoc train mass|age-distance``, ``pidoc evaluate``
    Datasets, training and evaluation (see their modules).
``pidoc predict IMAGE.fits (--centre RA DEC | --cluster NAME) [--distance KPC] --out PREFIX``
    π-DOC on a real image (see :mod:`pidoc_core.observations`).
``pidoc evolve --run NAME --times T [T ...] --out DIR``
    Write snapshots of an embedded cluster-evolution run to files the readers read back.
``pidoc dataset build --preset paper|small --out DIR [--train N --val N --test N] [...]``
    Build the paper's train / validation / test mock-observation sets (Table 1) from the embedded
    runs as DIR/train.zarr, val.zarr, test.zarr; running it again resumes an interrupted build.
``pidoc dataset info PATH``
    Print a dataset store's sizes, coordinate ranges and completeness.
"""

from __future__ import annotations

import argparse
import importlib
import os
import re
import sys
from pathlib import Path

from ._atomic import atomic_path

__all__ = ["main", "build_parser", "add_reader_arguments", "reader_options", "cli_message",
           "READER_FLAGS"]

# TensorFlow's start-up chatter is not for a command line user (errors still show).
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _atomic_netcdf(dataset, path: Path) -> None:
    """Write a Dataset to netCDF through a temporary file renamed into place."""
    with atomic_path(path, suffix=".nc") as tmp:
        dataset.to_netcdf(tmp)


#: Reader keyword -> (CLI flag, argparse dest) for every reader option the CLI offers.
READER_FLAGS = {
    "sev": "--sev", "bev": "--bev", "index": "--index", "missing": "--missing",
    "check_time": "--no-check-time", "partial": "--partial", "nbody_mass": "--nbody-mass",
    "nbody_length": "--nbody-length", "unit_system": "--unit-system", "hdu": "--hdu",
    "dataset": "--dataset", "interrupt_mode": "--interrupt-mode", "use_mpfrc": "--use-mpfrc",
    "columns": "--column", "units": "--unit", "time": "--time", "zero_point": "--zero-point",
}
#: Whole phrases of library messages and the CLI words that replace them.
_PHRASES = (
    ("sev=False", "--dynamics-only"), ("bev=False", "--no-bev"),
    ("missing='drop'", "--missing drop"), ("check_time=False", "--no-check-time"),
    ("partial=True", "--partial"), ("zero_point=...", "--zero-point"),
    ("columns={'mass': 'your_name', ...}", "--column mass=YOUR_NAME"),
)


def cli_message(text: str) -> str:
    """A library error message with its keyword names replaced by the ``pidoc`` flags."""
    for old, new in _PHRASES:
        text = text.replace(old, new)
    names = "|".join(sorted(READER_FLAGS, key=len, reverse=True))
    text = re.sub(rf"(?<![\w-])({names})=(?=[\s(,;)]|$)",
                  lambda m: READER_FLAGS[m.group(1)], text)
    return re.sub(rf"(?<![\w-])({names})= ?(?=\S)", lambda m: READER_FLAGS[m.group(1)] + " ",
                  text)


def _hdu_arg(text: str):
    return int(text) if text.lstrip("-").isdigit() else text


def _pairs(items, flag):
    out = {}
    for item in items or ():
        key, sep, value = item.partition("=")
        if not sep or not key or not value:
            raise SystemExit(f"{flag} takes NAME=VALUE, got {item!r}")
        out[key.strip()] = value.strip()
    return out or None


def add_reader_arguments(p: argparse.ArgumentParser) -> None:
    """The reader options of :func:`pidoc_core.readers.read_snapshot` as ``pidoc`` flags."""
    from .readers import FORMATS

    g = p.add_argument_group("reading the snapshot (see pidoc_core.readers)")
    g.add_argument("--format", default=None, choices=FORMATS,
                   help="file format (default: recognised from the content)")
    g.add_argument("--sev", default=None, help="nbody6: the sev.83 HR file (default: the "
                                               "sibling of the conf.3 file)")
    g.add_argument("--bev", default=None, help="nbody6: the bev.82 HR file of KS binaries")
    g.add_argument("--no-bev", action="store_true", help="nbody6: never read a bev.82 file")
    g.add_argument("--dynamics-only", action="store_true",
                   help="nbody6: read no HR file (luminosities and radii missing)")
    g.add_argument("--index", type=int, default=None,
                   help="nbody6: snapshot of a multi-snapshot OUT3 (0-based, -1 last); "
                        "nbody6-hdf5: the Step#i number")
    g.add_argument("--missing", choices=("raise", "drop"), default=None,
                   help="nbody6: stars without a usable HR row (no row, or NaN): report "
                        "(raise, default) or drop")
    g.add_argument("--no-check-time", action="store_true",
                   help="nbody6: accept HR blocks at another time than the snapshot")
    g.add_argument("--partial", action="store_true",
                   help="nbody6-hdf5: accept a KZ(46) partial step")
    g.add_argument("--nbody-mass", type=float, default=None,
                   help="amuse, dat10: N-body mass unit, Msun")
    g.add_argument("--nbody-length", type=float, default=None,
                   help="amuse, dat10: N-body length unit, pc")
    g.add_argument("--unit-system", choices=("nbody", "physical"), default=None,
                   help="dat10: units of the file (default: N-body when masses sum to 1)")
    g.add_argument("--hdu", type=_hdu_arg, default=None, help="fits: table extension")
    g.add_argument("--dataset", default=None, help="hdf5: path of the table or group")
    g.add_argument("--interrupt-mode", default=None, help="petar: interrupt mode (e.g. bse)")
    g.add_argument("--use-mpfrc", action="store_true", help="petar: high-precision positions")
    g.add_argument("--column", action="append", metavar="NAME=COLUMN",
                   help="tables: map a snapshot column to a file column (repeatable)")
    g.add_argument("--unit", action="append", metavar="NAME=UNIT",
                   help="tables: unit of a file column, e.g. x=au (repeatable)")
    g.add_argument("--time", type=float, default=None, help="override the snapshot time, Gyr")


def reader_options(args) -> dict:
    """Keyword options of ``read_snapshot`` from the parsed flags (only those given)."""
    opts = {
        "sev": False if args.dynamics_only else args.sev,
        "bev": False if args.no_bev else args.bev,
        "index": args.index, "missing": args.missing,
        "check_time": False if args.no_check_time else None,
        "partial": True if args.partial else None,
        "nbody_mass": args.nbody_mass, "nbody_length": args.nbody_length,
        "unit_system": args.unit_system, "hdu": args.hdu, "dataset": args.dataset,
        "interrupt_mode": args.interrupt_mode, "use_mpfrc": True if args.use_mpfrc else None,
        "columns": _pairs(args.column, "--column"), "units": _pairs(args.unit, "--unit"),
        "time": args.time,
    }
    if args.dynamics_only and args.sev is not None:
        raise SystemExit("--dynamics-only and --sev exclude each other")
    return {k: v for k, v in opts.items() if v is not None}


def _read(args):
    from .readers import OPTIONS, detect_format, read_snapshot
    from .readers.table import TABLE_FORMATS

    opts = reader_options(args)
    fmt = args.format or detect_format(args.path)
    accepted = OPTIONS[fmt] | {"time"} | ({"columns", "units"} if fmt in TABLE_FORMATS else set())
    bad = sorted(READER_FLAGS[k] for k in opts if k not in accepted)
    if bad:
        how = "given" if args.format else "recognised from its content"
        flags = sorted(READER_FLAGS[k] for k in accepted)
        raise SystemExit(f"{', '.join(bad)} do(es) not apply to {args.path} (format {fmt!r}, "
                         f"{how}); its flags are {', '.join(flags)}")
    import warnings

    from .readers.nbody6 import DynamicsOnlyWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DynamicsOnlyWarning)  # the commands print the statement
        return read_snapshot(args.path, format=fmt, **opts)


def _cmd_snapshot(args) -> int:
    from .photometry import snapshot_v_luminosity

    snap = _read(args)
    print(repr(snap))
    if snap.meta.get("missing_reason"):
        print(f"  {cli_message(snap.meta['missing_reason'])}")
        print(f"  density centre {snap.density_centre.round(3).tolist()} pc")
        return 0
    print(f"  V-band luminosity {snapshot_v_luminosity(snap).sum():.4g} Lsun; "
          f"density centre {snap.density_centre.round(3).tolist()} pc; "
          f"kstar {'present' if snap.kstar is not None else 'absent'}")
    return 0


def _cmd_observe(args) -> int:
    from .imager import ObservationSetup, observe

    snap = _read(args)
    setup = ObservationSetup(distance_kpc=args.distance, psf_fwhm_arcsec=args.psf,
                             shift_arcsec=tuple(args.shift), rotation_deg=args.rotation,
                             line_of_sight=args.line_of_sight)
    obs = observe(snap, setup)
    _atomic_netcdf(obs, Path(args.out))
    print(f"wrote {args.out}: field mass {obs.attrs['field_mass_msun']:.4g} Msun, "
          f"field L_V {obs.attrs['field_luminosity_v_lsun']:.4g} Lsun")
    return 0


def _cmd_evolve(args) -> int:
    from .evolution import export_snapshots, paper_runs

    runs = paper_runs(n_stars=args.n_stars, seed=args.seed)
    matches = [name for name in runs if name.lower().startswith(args.run.lower())]
    if len(matches) != 1:
        raise SystemExit(f"pidoc evolve: --run {args.run!r} must name one of {list(runs)}")
    paths = export_snapshots(runs[matches[0]], args.times, args.out, format=args.format)
    for path in paths:
        print(path)
    return 0


#: Presets of ``pidoc dataset build`` (their one home is :data:`pidoc_core.dataset.DATASET_PRESETS`;
#: named here without importing the dataset module, so ``pidoc --help`` stays fast).
DATASET_PRESET_NAMES = ("paper", "small", "fresh")


def _cmd_dataset_build(args) -> int:
    from . import dataset
    from .evolution import paper_runs

    if args.preset == "fresh":  # one store of a cluster none of the networks saw
        runs, plan = dataset.fresh_cluster(n_stars=args.n_stars)
        print(f"fresh: {len(plan)} samples of {len(plan.snapshots())} snapshots of "
              f"{next(iter(runs))} -> {Path(args.out) / 'fresh.zarr'}")
        dataset.write_dataset(plan, runs, Path(args.out) / "fresh.zarr",
                              chunk_size=args.chunk_size, scheduler=args.scheduler,
                              workers=args.workers, progress=True)
        return 0
    # thousands of snapshot times: each is made once for all of its maps, not kept on disk
    runs = paper_runs(n_stars=args.n_stars, seed=args.runs_seed, progress=True,
                      cache_snapshots=False)
    plans = dataset.preset_splits(args.preset, runs, seed=args.seed, n_train=args.train,
                                  n_val=args.val, n_test=args.test)
    if args.splits:
        plans = {k: v for k, v in plans.items() if k in args.splits}
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
    from . import dataset

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


def _cmd_prepare(args) -> int:
    from .evolution import paper_runs

    runs = paper_runs(n_stars=args.n_stars, seed=args.seed, progress=True)
    for name, run in runs.items():
        snap = run.snapshot(args.time)
        print(f"{name}: ready ({snap!r})")
    return 0


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The argument parser of the ``pidoc`` command.

    ``command`` limits the sub-commands whose modules import Keras to that one (``pidoc
    snapshot`` then starts without TensorFlow); None builds every sub-command in full.
    """
    parser = argparse.ArgumentParser(prog="pidoc", description="π-DOC Explorer command line")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("snapshot", help="read a snapshot file and summarise it")
    p.add_argument("path")
    add_reader_arguments(p)
    p.set_defaults(func=_cmd_snapshot)

    p = sub.add_parser("observe", help="mock-observe a snapshot file, write netCDF")
    p.add_argument("path")
    add_reader_arguments(p)
    p.add_argument("--distance", type=float, required=True, help="distance, kpc")
    p.add_argument("--psf", type=float, required=True, help="PSF FWHM, arcsec")
    p.add_argument("--shift", type=float, nargs=2, default=(0.0, 0.0), metavar=("DX", "DY"),
                   help="centre shift, arcsec")
    p.add_argument("--rotation", type=float, default=0.0, help="rotation, degrees")
    p.add_argument("--line-of-sight", default="z", choices=("x", "y", "z"))
    p.add_argument("--out", required=True, help="output netCDF path")
    p.set_defaults(func=_cmd_observe)

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

    p = sub.add_parser("dataset", help="build or inspect mock-observation datasets (zarr)")
    dsub = p.add_subparsers(dest="dataset_command", required=True)
    b = dsub.add_parser("build", help="build the paper's train/val/test sets from the embedded "
                                      "runs (resumable)")
    b.add_argument("--preset", choices=DATASET_PRESET_NAMES, default="small",
                   help="paper: 20,000/2,000/8,172 samples from 1,401 times per training run "
                        "and 2,043 for the test run, no repeats; small: 512/64/128 on 14 times; "
                        "fresh: 1,200 maps of a cluster no network saw (rh0 = 2.4 pc, 20/40/90 "
                        "kpc, PSF 0.8/1.2\") as fresh.zarr")
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
    b.add_argument("--chunk-size", type=int, default=32, help="samples per zarr chunk")
    b.add_argument("--n-stars", type=int, default=50_000, help="stars of the embedded runs")
    b.add_argument("--runs-seed", type=int, default=2021, help="seed of the embedded runs")
    b.set_defaults(func=_cmd_dataset_build)
    i = dsub.add_parser("info", help="summarise a dataset store")
    i.add_argument("path")
    i.set_defaults(func=_cmd_dataset_info)

    # sub-commands whose modules import Keras/TensorFlow (seconds): loaded only when run
    for name, (module, adder, runner, help_) in _KERAS_COMMANDS.items():
        p = sub.add_parser(name, help=help_)
        if command is None or command == name:
            mod = importlib.import_module(f".{module}", __package__)
            getattr(mod, adder)(p)
            p.set_defaults(func=getattr(mod, runner))
    return parser


_KERAS_COMMANDS = {
    "train": ("training", "add_train_arguments", "run_train",
              "train a mass network (flux-only or distance-aware) or the age/distance network"),
    "combine": ("model.ship", "add_combine_arguments", "run_combine",
                "combine separately trained networks into one model; calibrate its intervals"),
    "evaluate": ("report", "add_evaluate_arguments", "run_evaluate",
                 "evaluate a model and the baselines on a test split; write the HTML report"),
    "predict": ("observations", "add_predict_arguments", "run_predict",
                "predict mass map, M/L, age and distance from a FITS image of a cluster"),
}


def _command(argv) -> str:
    """The sub-command named in ``argv`` ('' when none is)."""
    return next((a for a in argv if not a.startswith("-")), "")


def main(argv=None) -> int:
    """Entry point of the ``pidoc`` command; returns the exit status.

    A user error (bad file, bad value, a flag that does not apply) prints ``pidoc <command>:
    error: <message>`` -- with library keyword names replaced by the flags -- and returns 2.
    """
    from .imager import ObservationError
    from .snapshot import SnapshotError

    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser(_command(argv)).parse_args(argv)
    errors = (SnapshotError, ObservationError, FileNotFoundError)
    if args.command == "dataset":
        from .dataset import DatasetError

        errors = (*errors, DatasetError)
    try:
        return args.func(args)
    except errors as exc:
        message = str(exc)
    except SystemExit as exc:
        if exc.code is None or isinstance(exc.code, int):
            raise
        message = str(exc.code)
    prefix = f"pidoc {args.command}: "
    message = message[len(prefix):] if message.startswith(prefix) else message
    print(f"{prefix}error: {cli_message(message)}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
