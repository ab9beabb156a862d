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
``pidoc mock-table3 [--weights DIR] --out TABLE.ecsv``
    π-DOC on mocks of the paper's Table 3 clusters from the wide grid
    (:mod:`pidoc_core.observations.mock`).
``pidoc evolve --run NAME --times T [T ...] --out DIR``
    Write snapshots of an embedded cluster-evolution run to files the readers read back.
``pidoc dataset build --preset paper|small --out DIR [--train N --val N --test N] [...]``
    Build the paper's train / validation / test mock-observation sets (Table 1) from the embedded
    runs as DIR/train.zarr, val.zarr, test.zarr; running it again resumes an interrupted build.
``pidoc dataset info PATH``
    Print a dataset store's sizes, coordinate ranges and completeness.

Errors: every user error -- a :class:`~pidoc_core.errors.PidocError` (bad file, value, store or
setting), a missing file, or a message given to ``SystemExit`` -- prints ``pidoc <command>: error:
<message>`` (library keyword names replaced by the flags) and exits with status 2, never a
traceback. The commands live one module each (:mod:`.snapshot`, :mod:`.runs`, :mod:`.dataset`;
``train``, ``combine``, ``evaluate`` and ``predict`` in the modules they drive, imported only when
run, so ``pidoc --help`` and ``pidoc snapshot`` start without TensorFlow).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from .dataset import DATASET_PRESET_NAMES, add_dataset_commands
from .messages import READER_FLAGS, cli_message
from .reading import add_reader_arguments, reader_options
from .runs import add_run_commands
from .snapshot import _atomic_netcdf, add_snapshot_commands  # noqa: F401 - used by tests

__all__ = ["main", "build_parser", "add_reader_arguments", "reader_options", "cli_message",
           "READER_FLAGS", "DATASET_PRESET_NAMES"]

# TensorFlow's start-up chatter is not for a command line user (errors still show).
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

#: Sub-commands whose modules import Keras/TensorFlow (seconds): name -> (module, function adding
#: the arguments, runner, help). Loaded only when run.
_KERAS_COMMANDS = {
    "train": ("training", "add_train_arguments", "run_train",
              "train a mass network (flux-only or distance-aware) or the age/distance network"),
    "combine": ("model.ship", "add_combine_arguments", "run_combine",
                "combine separately trained networks into one model; calibrate its intervals"),
    "evaluate": ("report", "add_evaluate_arguments", "run_evaluate",
                 "evaluate a model and the baselines on a test split; write the HTML report"),
    "predict": ("observations", "add_predict_arguments", "run_predict",
                "predict mass map, M/L, age and distance from a FITS image of a cluster"),
    "mock-table3": ("observations.mock", "add_mock_table3_arguments", "run_mock_table3",
                    "pi-DOC on embedded mocks of the paper's Table 3 clusters (ECSV table)"),
}


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The argument parser of the ``pidoc`` command.

    ``command`` limits the sub-commands whose modules import Keras to that one (``pidoc
    snapshot`` then starts without TensorFlow); None builds every sub-command in full.
    """
    parser = argparse.ArgumentParser(prog="pidoc", description="π-DOC Explorer command line")
    sub = parser.add_subparsers(dest="command", required=True)
    add_snapshot_commands(sub)
    add_run_commands(sub)
    add_dataset_commands(sub)
    for name, (module, adder, runner, help_) in _KERAS_COMMANDS.items():
        p = sub.add_parser(name, help=help_)
        if command is None or command == name:
            mod = importlib.import_module(f"..{module}", __package__)
            getattr(mod, adder)(p)
            p.set_defaults(func=getattr(mod, runner))
    return parser


def _command(argv) -> str:
    """The sub-command named in ``argv`` ('' when none is)."""
    return next((a for a in argv if not a.startswith("-")), "")


def main(argv=None) -> int:
    """Entry point of the ``pidoc`` command; returns the exit status.

    A user error -- any :class:`~pidoc_core.errors.PidocError`, a missing file, or a
    ``SystemExit`` with a message -- prints ``pidoc <command>: error: <message>`` (library keyword
    names replaced by the flags) and returns 2.
    """
    from ..errors import PidocError

    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser(_command(argv)).parse_args(argv)
    try:
        return args.func(args)
    except (PidocError, FileNotFoundError) as exc:
        message = str(exc)
    except SystemExit as exc:
        if exc.code is None or isinstance(exc.code, int):
            raise
        message = str(exc.code)
    prefix = f"pidoc {args.command}: "
    message = message[len(prefix):] if message.startswith(prefix) else message
    print(f"{prefix}error: {cli_message(message)}", file=sys.stderr)
    return 2
