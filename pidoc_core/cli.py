"""The ``pidoc`` command.

Sub-commands:

``pidoc snapshot PATH``
    Read an N-body snapshot (any supported format) and print a summary.
``pidoc observe PATH --distance KPC --psf ARCSEC [...] --out OBS.nc``
    Make one mock observation of a snapshot and write it as netCDF.
``pidoc evolve --run NAME --times T [T ...] --out DIR``
    Write snapshots of an embedded cluster-evolution run to files the readers read back.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

__all__ = ["main", "build_parser"]


def _atomic_netcdf(dataset, path: Path) -> None:
    """Write a Dataset to netCDF through a temporary file renamed into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    os.close(fd)
    try:
        dataset.to_netcdf(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _cmd_snapshot(args) -> int:
    from .photometry import snapshot_v_luminosity
    from .readers import read_snapshot

    snap = read_snapshot(args.path, format=args.format)
    print(repr(snap))
    print(f"  V-band luminosity {snapshot_v_luminosity(snap).sum():.4g} Lsun; "
          f"density centre {snap.density_centre.round(3).tolist()} pc; "
          f"kstar {'present' if snap.kstar is not None else 'absent'}")
    return 0


def _cmd_observe(args) -> int:
    from .imager import ObservationSetup, observe
    from .readers import read_snapshot

    snap = read_snapshot(args.path, format=args.format)
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


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``pidoc`` command."""
    parser = argparse.ArgumentParser(prog="pidoc", description="π-DOC Explorer command line")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("snapshot", help="read a snapshot file and summarise it")
    p.add_argument("path")
    p.add_argument("--format", default=None, help="table, nbody6 or petar (guessed when omitted)")
    p.set_defaults(func=_cmd_snapshot)

    p = sub.add_parser("observe", help="mock-observe a snapshot file, write netCDF")
    p.add_argument("path")
    p.add_argument("--format", default=None)
    p.add_argument("--distance", type=float, required=True, help="distance, kpc")
    p.add_argument("--psf", type=float, required=True, help="PSF FWHM, arcsec")
    p.add_argument("--shift", type=float, nargs=2, default=(0.0, 0.0), metavar=("DX", "DY"),
                   help="centre shift, arcsec")
    p.add_argument("--rotation", type=float, default=0.0, help="rotation, degrees")
    p.add_argument("--line-of-sight", default="z", choices=("x", "y", "z"))
    p.add_argument("--out", required=True, help="output netCDF path")
    p.set_defaults(func=_cmd_observe)

    p = sub.add_parser("evolve", help="write snapshots of an embedded evolution run")
    p.add_argument("--run", default="MW15 analogue",
                   help="'MW15-R1.6 analogue', 'MW15 analogue' or 'MW15-R4 analogue' (a prefix)")
    p.add_argument("--times", type=float, nargs="+", required=True, help="times, Gyr")
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--format", default="ecsv", choices=("ecsv", "fits", "hdf5", "csv"))
    p.add_argument("--n-stars", type=int, default=50_000)
    p.add_argument("--seed", type=int, default=2021)
    p.set_defaults(func=_cmd_evolve)
    return parser


def main(argv=None) -> int:
    """Entry point of the ``pidoc`` command; returns the exit status."""
    from .imager import ObservationError
    from .snapshot import SnapshotError

    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (SnapshotError, ObservationError, FileNotFoundError) as exc:
        print(f"pidoc {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
