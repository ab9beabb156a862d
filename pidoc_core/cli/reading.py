"""The reader options of :func:`pidoc_core.readers.read_snapshot` as ``pidoc`` flags, and reading
the snapshot a command names."""

from __future__ import annotations

import argparse

from .messages import READER_FLAGS

__all__ = ["add_reader_arguments", "reader_options"]


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
    from ..readers import FORMATS

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
    from ..readers import OPTIONS, detect_format, read_snapshot
    from ..readers.table import TABLE_FORMATS

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

    from ..readers.nbody6 import DynamicsOnlyWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DynamicsOnlyWarning)  # the commands print the statement
        return read_snapshot(args.path, format=fmt, **opts)
