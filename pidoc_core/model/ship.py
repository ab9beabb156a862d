"""``pidoc combine``: one shippable model from networks trained separately, with intervals.

The three networks (the distance-aware and the flux-only mass networks, the age/distance CNN)
are trained by three ``pidoc train`` runs, which may run at the same time. This step puts them
in one model directory, calibrates the 68 % intervals on the validation split
(:mod:`.intervals`) and keeps each network's training record (recipe, curves, wall time) in the
manifest under ``training``::

    pidoc combine --mass-ml runs/mass-ml/model --mass runs/mass/model \\
        --age-distance runs/age-distance/model --calibrate data/paper/val.zarr --out weights/pidoc
"""

from __future__ import annotations

import argparse
from pathlib import Path

from .container import PiDOC, open_model
from .intervals import calibrate_intervals
from .io import is_saved_model, read_manifest
from .spec import ModelError

__all__ = ["combine_models", "add_combine_arguments", "run_combine"]


def combine_models(*, age_distance, mass=None, mass_ml=None, calibrate=None, train=None,
                   provenance: dict | None = None) -> tuple[PiDOC, dict]:
    """Combine saved models into one, and calibrate its intervals.

    Parameters
    ----------
    age_distance, mass, mass_ml : path-like
        Saved model directories (``pidoc train`` exports) holding the age/distance network, the
        flux-only mass network and the distance-aware mass network (either mass network may be
        omitted, not both).
    calibrate : path-like or xarray.Dataset, optional
        Validation split on which to calibrate the 68 % intervals.
    train : path-like or xarray.Dataset, optional
        The training split, whose field-luminosity range per age and distance is measured and
        recorded (``provenance["training_luminosity_range"]``, used by the range check).
    provenance : dict, optional
        More provenance entries (e.g. the measured training range).

    Returns
    -------
    (PiDOC, dict)
        The combined model and the manifest's ``training`` entry (each part's training record,
        by network role).
    """
    paths = {"age_distance": age_distance, "mass": mass, "mass_ml": mass_ml}
    parts, training = {}, {}
    for role, path in paths.items():
        if path is None:
            continue
        parts[role] = open_model(path)
        if is_saved_model(path):
            training[role] = read_manifest(Path(path)).get("training")
    model = PiDOC.combine(**parts, provenance={"source": "pidoc combine", **(provenance or {})})
    if calibrate is not None:
        model.provenance["intervals"] = calibrate_intervals(model, calibrate)
    if train is not None:
        from ..training_range import measure_luminosity_range

        model.provenance["training_luminosity_range"] = measure_luminosity_range(train)
    return model, training


def add_combine_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Arguments of ``pidoc combine``; sets ``func=run_combine``."""
    parser.add_argument("--age-distance", required=True, help="saved model with the age/distance "
                                                              "network")
    parser.add_argument("--mass", default=None, help="saved model with the flux-only mass network")
    parser.add_argument("--mass-ml", default=None, help="saved model with the distance-aware "
                                                        "mass network")
    parser.add_argument("--calibrate", default=None, help="validation store (val.zarr) on which "
                                                          "to calibrate the 68 %% intervals")
    parser.add_argument("--train", nargs="+", default=None, metavar="STORE",
                        help="training store(s) (train.zarr, and any --extra-train stores of the "
                             "networks) whose field-luminosity range is recorded (default: the "
                             "stores the mass networks' manifests record, else train.zarr beside "
                             "--calibrate)")
    parser.add_argument("--out", required=True, help="output model directory")
    parser.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    parser.set_defaults(func=run_combine)
    return parser


def _recorded_training_stores(*paths):
    """The training stores (``train`` and ``extra_train``) that the mass networks' manifests
    record, when every one of them is still on disk; else None."""
    stores = []
    for path in paths:
        if path is None or not is_saved_model(path):
            continue
        data = (read_manifest(Path(path)).get("training") or {}).get("data") or {}
        for store in [data.get("train"), *data.get("extra_train", [])]:
            if store and store not in stores:
                stores.append(store)
    return stores if stores and all(Path(s).is_dir() for s in stores) else None


def run_combine(args) -> int:
    """Run ``pidoc combine`` from parsed arguments."""
    if args.mass is None and args.mass_ml is None:
        raise SystemExit("pidoc combine: give --mass, --mass-ml or both")
    train = args.train
    if train is None:
        train = _recorded_training_stores(args.mass, args.mass_ml)
    if train is None and args.calibrate is not None:
        beside = Path(args.calibrate).parent / "train.zarr"
        train = [beside] if beside.is_dir() else None
    if train is not None:
        from ..dataset import concat_splits

        train = concat_splits(train) if len(train) > 1 else train[0]
    try:
        model, training = combine_models(age_distance=args.age_distance, mass=args.mass,
                                         mass_ml=args.mass_ml, calibrate=args.calibrate,
                                         train=train)
        out = model.save(args.out, manifest_extra={"training": training},
                         overwrite=args.overwrite)
    except ModelError as exc:
        raise SystemExit(f"pidoc combine: {exc}") from None
    print(f"{out}: {model!r}")
    cal = model.provenance.get("intervals")
    if cal:
        print(f"  68 % intervals calibrated on {cal['n_maps']} validation maps")
    if "training_luminosity_range" in model.provenance:
        where = train.attrs.get("store") if hasattr(train, "attrs") else train
        print(f"  training field-luminosity range measured on {where}")
    return 0
