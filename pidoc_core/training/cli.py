"""``pidoc train``: its arguments (:func:`add_train_arguments`) and runner (:func:`run_train`)."""

from __future__ import annotations

import argparse
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..model import open_model
from ..model.spec import training_info_key
from ._common import _ROLES, BUILDERS, KINDS, LR_SCHEDULES, TrainingError
from .checkpoints import latest_checkpoint, read_checkpoint_metadata
from .data import AUGMENTATIONS, array_pipeline
from .fit import fit
from .options import restandardise_outputs

__all__ = ["add_train_arguments", "run_train"]


def add_train_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add the arguments of ``pidoc train`` to a (sub-)parser; returns it.

    ``pidoc train mass|age-distance --dataset DIR --out DIR [--validation STORE] [--epochs N]
    [--batch-size B]
    [--filters F ...] [--learning-rate LR] [--patience P] [--seed S] [--resume]
    [--mixed-precision] [--strategy auto|none|mirrored] [--vgg-weights PATH]``. Set
    ``func=run_train`` on it (``parser.set_defaults(func=run_train)``).
    """
    parser.add_argument("kind", choices=sorted(KINDS), help="network to train")
    parser.add_argument("--dataset", required=True,
                        help="directory of split stores (train.zarr, val.zarr) written by "
                             "pidoc_core.dataset.build_splits, or one training store")
    parser.add_argument("--validation", default=None,
                        help="validation store (default: val.zarr next to train.zarr)")
    parser.add_argument("--extra-train", nargs="+", default=(), metavar="STORE",
                        help="more training stores of the same imager set-up, appended to the "
                             "training split (e.g. the wide-extra preset's train.zarr)")
    parser.add_argument("--out", required=True, help="run directory")
    parser.add_argument("--epochs", type=int, default=200, help="total epochs (default 200)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--filters", type=int, nargs="+", default=None,
                        help="filters per encoder level (mass; the bottleneck takes the last) "
                             "or per convolution block (age-distance; 4 blocks with the "
                             "paper's kernel sizes); default: the paper's network")
    parser.add_argument("--learning-rate", type=float, default=None,
                        help="Adam learning rate (default: the paper's, 10^-2.5 for mass, "
                             "10^-4 for age-distance)")
    parser.add_argument("--patience", type=int, default=20,
                        help="epochs without validation improvement before stopping")
    parser.add_argument("--steps-per-epoch", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--resume", action="store_true",
                        help="continue from the last checkpoint in --out")
    parser.add_argument("--mixed-precision", nargs="?", const="float16", default=None,
                        choices=("float16", "bfloat16"),
                        help="mixed precision: float16 (GPUs; the default of the bare flag) or "
                             "bfloat16 (CPUs with AVX512-BF16/AMX: ~1.7x faster steps here)")
    parser.add_argument("--strategy", default="auto", choices=("auto", "none", "mirrored"),
                        help="auto: MirroredStrategy when several GPUs are visible")
    parser.add_argument("--vgg-weights", default=None,
                        help="ImageNet VGG16 'notop' .h5 for the perceptual loss")
    parser.add_argument("--builder", default=None,
                        choices=sorted({b for v in BUILDERS.values() for b in v}),
                        help="network builder (default: the paper's network for mass and "
                             "age-distance, build_mass_unet for mass-ml)")
    parser.add_argument("--lr-schedule", default="constant", choices=LR_SCHEDULES,
                        help="constant (the paper) or cosine decay over --epochs with warm-up")
    parser.add_argument("--targets", default="joint", choices=("joint", "per-output"),
                        help="age-distance: one standardisation over distance (kpc) and age (Gyr) "
                             "together (the paper's v0.1) or one per output, which weighs a "
                             "Gyr of age like a standard deviation of ages; with --init-from the "
                             "last layer is re-expressed in the new units")
    parser.add_argument("--augment", default="none", choices=AUGMENTATIONS,
                        help="dihedral: turn each training batch by one of the 8 symmetries of "
                             "the square (inputs and map targets alike); luminosity: make each "
                             "map a cluster with up to 2x more or fewer stars of the same "
                             "structure, age and distance (log flux and log mass +u); "
                             "dihedral+luminosity: both (seeded, resumable)")
    parser.add_argument("--loss", default=None, choices=("perceptual", "mse"),
                        help="default: the paper's (perceptual for mass, MSE for age-distance)")
    parser.add_argument("--init-from", default=None,
                        help="start from the weights of a saved pi-DOC model directory or of the "
                             "authors' v0.1 release (fine-tuning); its standardisation is kept")
    parser.add_argument("--flux-standardisation-from", default=None,
                        help="take the input (flux) standardisation from a saved model or a v0.1 "
                             "release instead of the training set, so that networks trained "
                             "separately can be shipped together")
    parser.add_argument("--verbose", type=int, default=2, choices=(0, 1, 2))
    return parser


#: kind -> (input maps, target, extra constant input channel) of dataset.load_arrays.
_ARRAY_ROLES = {"mass": ("flux", "mass", None), "mass-ml": ("flux", "ml", "log_distance"),
                "age-distance": ("flux", "distance_age", None)}


@dataclass(frozen=True)
class _Start:
    network: Any
    standardisation: dict


def _initial_network(path, kind) -> _Start:
    """The network of ``kind`` and its standardisation from a saved model or a v0.1 release."""
    start = open_model(path)
    network = getattr(start, f"{_ROLES[kind]}_network")
    if network is None:
        raise TrainingError(f"--init-from {path}: holds no {kind} network")
    keys = {"mass": ("flux_mean", "flux_std", "mass_mean", "mass_std"),
            "mass-ml": ("flux_mean", "flux_std", "ml_mean", "ml_std", "log_distance_mean",
                        "log_distance_std"),
            "age-distance": ("flux_mean", "flux_std", "distance_age_mean",
                             "distance_age_std")}[kind]
    return _Start(network, {k: start.standardisation.get(k) for k in keys})


def _training_grid(ds) -> dict:
    """Training conditions of a dataset in the form of pidoc_core.exploration.TRAINING_GRID."""
    return {
        "distance_kpc": sorted({float(v) for v in np.unique(ds.distance.values)}),
        "psf_fwhm_arcsec": sorted({float(v) for v in np.unique(ds.psf_fwhm.values)}),
        "shift_max_arcsec": float(max(np.abs(ds.shift_x.values).max(),
                                      np.abs(ds.shift_y.values).max())),
        "rotations_deg": sorted({float(v) for v in np.unique(ds.rotation.values)}),
        "time_gyr": [float(ds.time.values.min()), float(ds.time.values.max())],
    }


def _dataset_stores(path, validation=None):
    """(train store, validation store or None) for ``--dataset`` / ``--validation``.

    ``path`` is a directory of split stores written by
    :func:`pidoc_core.dataset.build_splits` (``train.zarr``, ``val.zarr``, ...) or one store.
    """
    path = Path(path)
    if (path / "train.zarr").exists():
        train = path / "train.zarr"
        if validation is None and (path / "val.zarr").exists():
            validation = path / "val.zarr"
    elif path.exists():
        train = path
    else:
        raise FileNotFoundError(f"dataset {path} does not exist")
    return train, (None if validation is None else Path(validation))


def _provenance(args, dsmod, train_ds, train_path, val_path, extra=()) -> dict:
    """The data description of a ``pidoc train`` run, for the manifest."""
    provenance = {"train": str(train_path.resolve()),
                  "validation": None if val_path is None else str(val_path.resolve())}
    if extra:
        provenance["extra_train"] = [str(Path(p).resolve()) for p in extra]
    roles = [(training_info_key(), train_path), ("validation_info", val_path)]
    roles += [(training_info_key(k), Path(p)) for k, p in enumerate(extra)]
    for role, p in roles:
        if p is not None and hasattr(dsmod, "dataset_info"):
            info = dsmod.dataset_info(p)
            provenance[role] = json.loads(json.dumps(info, default=str))
    if getattr(args, "init_from", None):
        provenance["initialised_from"] = str(Path(args.init_from).resolve())
    provenance["augmentation"] = getattr(args, "augment", "none")
    provenance["targets_standardisation"] = getattr(args, "targets", "joint")
    # the constant-M/L baseline (evaluation, dashboard) and the range checks need these
    provenance["training_mass_to_light"] = float(dsmod.training_mass_to_light(train_ds))
    provenance["training_grid"] = _training_grid(train_ds)
    return provenance


def _architecture(args, channel, map_shape, *, initialised) -> dict:
    """The architecture record ``--builder`` and ``--filters`` ask for."""
    builder = getattr(args, "builder", None) or KINDS[args.kind]
    architecture = {"builder": builder, "kwargs": {}}
    if args.filters:
        architecture["kwargs"]["filters"] = list(args.filters)
        if builder == "build_encoder_decoder":  # the paper's bottleneck: the last level's
            architecture["kwargs"]["bottleneck_filters"] = int(args.filters[-1])
    if not initialised:
        architecture["kwargs"]["input_shape"] = [*map_shape, 1 if channel is None else 2]
    return architecture


def run_train(args) -> int:
    """Run ``pidoc train`` from parsed arguments (see :func:`add_train_arguments`)."""
    out = Path(args.out)
    if not args.resume and latest_checkpoint(out) is not None:
        raise SystemExit(f"pidoc train: {out} holds checkpoints of an earlier run; pass --resume "
                         "to continue it or choose another --out")
    from .. import dataset as dsmod  # noqa: PLC0415 - heavy, only for this command

    train_path, val_path = _dataset_stores(args.dataset, getattr(args, "validation", None))
    extra = list(getattr(args, "extra_train", ()) or ())
    train_ds = dsmod.concat_splits([train_path, *extra])
    val_ds = None if val_path is None else dsmod.open_dataset(val_path)
    per_output = getattr(args, "targets", "joint") == "per-output"
    if per_output and args.kind != "age-distance":
        raise TrainingError("--targets per-output applies to the age-distance network only")
    consts = dsmod.standardisation(train_ds, joint_distance_age=not per_output)
    init_model = None
    if getattr(args, "init_from", None):
        start = _initial_network(args.init_from, args.kind)
        init_model = start.network
        # the starting weights expect their own standardisation: keep it where it is defined,
        # except for per-output targets, whose constants the last layer is re-expressed in
        kept = {k: v for k, v in start.standardisation.items() if v is not None and not
                (per_output and k.startswith("distance_age_"))}
        if per_output:
            s = start.standardisation
            restandardise_outputs(init_model, old_mean=s["distance_age_mean"],
                                  old_std=s["distance_age_std"],
                                  new_mean=consts["distance_age_mean"],
                                  new_std=consts["distance_age_std"])
        consts = {**consts, **kept}

    if getattr(args, "flux_standardisation_from", None):
        source = Path(args.flux_standardisation_from)
        ref = open_model(source)
        consts = {**consts, "flux_mean": ref.standardisation["flux_mean"],
                  "flux_std": ref.standardisation["flux_std"]}
    first_epoch = 0
    if args.resume and latest_checkpoint(out) is not None:
        first_epoch = int(read_checkpoint_metadata(latest_checkpoint(out))["epoch"])
    x_name, y_name, channel = _ARRAY_ROLES[args.kind]
    needed = [x_name, y_name] + ([channel] if channel else [])

    # 'luminosity': log flux and log mass grow by the same u; M/L, age and distance stay
    per_dex = (1.0 / consts["flux_std"], 1.0 / consts["mass_std"] if y_name == "mass" else 0.0)

    def pipeline(ds, shuffle):
        arrays = dsmod.load_arrays(ds, standardisation=consts, targets=needed)
        data = array_pipeline(arrays[x_name], arrays[y_name], batch_size=args.batch_size,
                              shuffle=shuffle, seed=args.seed, first_epoch=first_epoch,
                              channel=None if channel is None else arrays[channel],
                              augment=getattr(args, "augment", "none") if shuffle else "none",
                              luminosity_per_dex=per_dex)
        return data, arrays

    train_data, train_arrays = pipeline(train_ds, True)
    val_data = None if val_ds is None else pipeline(val_ds, False)[0]
    steps = args.steps_per_epoch or math.ceil(len(train_arrays[x_name]) / args.batch_size)

    provenance = _provenance(args, dsmod, train_ds, train_path, val_path, extra)
    architecture = _architecture(args, channel, train_arrays[x_name].shape[1:],
                                 initialised=init_model is not None)
    result = fit(
        args.kind,
        train_data,
        val_data,
        out_dir=out,
        epochs=args.epochs,
        model=init_model,
        architecture=None if init_model is not None else architecture,
        learning_rate=args.learning_rate,
        lr_schedule=getattr(args, "lr_schedule", "constant"),
        loss=getattr(args, "loss", None),
        vgg_weights=args.vgg_weights,
        batch_size=args.batch_size,
        steps_per_epoch=steps,
        patience=args.patience,
        resume=args.resume,
        mixed_precision=args.mixed_precision,
        strategy=args.strategy,
        seed=args.seed,
        standardisation=consts,
        provenance=provenance,
        verbose=args.verbose,
    )
    print(f"best epoch {result.best_epoch + 1}: "
          + ", ".join(f"{k}={v:.4g}" for k, v in result.best.items()))
    print(f"model: {result.export_dir}")
    return 0
