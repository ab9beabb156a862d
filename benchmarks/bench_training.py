"""Training recipes against wall time: each network from scratch for a fixed CPU budget.

For each of the three networks of π-DOC Explorer's recipe — the distance-aware mass network
(:func:`pidoc_core.networks.build_mass_unet`, flux + log10 distance -> log10 M/L_V), the paper's
flux-only task with the same U-Net (flux -> log10 M), and the age/distance CNN
(:func:`pidoc_core.networks.build_age_distance_net`) — the benchmark trains from scratch with
the recipe of ``pidoc train`` (Adam, cosine schedule over the budget, batch 32, MSE, mixed
bfloat16 where the CPU has it) on the first ``--train`` maps of a training split, and every
``--every`` seconds of training evaluates on ``--val`` maps of the validation split:

- mass networks: the per-map field-mass error (mean |M_pred / M_true - 1|, per cent) and the
  pixel RMSE of log10 mass (dex);
- age/distance: the mean absolute errors of distance (kpc) and age (Gyr).

It prints accuracy against wall time, so the recipe's cost is known and can be checked again on
another machine. The anchor of the figures is the first evaluation of the same run (after one
interval), so the ratio says how much the budget's remainder bought.

Run: ``python benchmarks/bench_training.py [--dataset data/paper] [--budget 300] [--every 60]
[--train 4000] [--val 400] [--json FILE]`` (needs ``pidoc dataset build --preset paper``).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from results import Figure, write_json  # noqa: E402

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

RECIPES = ("mass-ml", "mass", "age-distance")


def _arrays(dataset, n_train, n_val):
    from pidoc_core import dataset as D

    train = D.open_dataset(Path(dataset) / "train.zarr").isel(sample=slice(0, n_train))
    val = D.open_dataset(Path(dataset) / "val.zarr")
    val = val.isel(sample=np.linspace(0, val.sizes["sample"] - 1, n_val).astype(int))
    consts = D.standardisation(train)
    targets = ("flux", "mass", "ml", "log_distance", "distance_age")
    return (D.load_arrays(train, standardisation=consts, targets=targets),
            D.load_arrays(val, standardisation=consts, targets=targets), consts, val)


def _build(recipe):
    from pidoc_core.networks import build_age_distance_net, build_mass_unet

    if recipe == "age-distance":
        return build_age_distance_net(input_shape=(160, 160, 1))
    return build_mass_unet(input_shape=(160, 160, 2 if recipe == "mass-ml" else 1))


def _score(recipe, model, val_arrays, consts, val):
    """Accuracy figures of ``model`` on the validation maps (physical units)."""
    x = val_arrays["flux"].astype(np.float32)[..., None]
    if recipe == "mass-ml":
        c = np.broadcast_to(val_arrays["log_distance"][:, None, None, None], x.shape)
        x = np.concatenate([x, c], axis=-1)
    out = np.concatenate([model.predict_on_batch(x[i:i + 64]) for i in range(0, len(x), 64)])
    if recipe == "age-distance":
        phys = out * np.asarray(consts["distance_age_std"]) + np.asarray(
            consts["distance_age_mean"])
        return {"distance_mae_kpc": float(np.mean(np.abs(phys[:, 0] - val_arrays["distance"]))),
                "age_mae_gyr": float(np.mean(np.abs(phys[:, 1] - val_arrays["time"])))}
    true = np.asarray(val["mass"].values, np.float64)
    if recipe == "mass-ml":
        from pidoc_core.conventions import log_luminosity_per_pixel

        ml = out[..., 0] * consts["ml_std"] + consts["ml_mean"]
        pred = ml + log_luminosity_per_pixel(np.asarray(val["flux"].values, np.float64),
                                             val_arrays["distance"][:, None, None])
    else:
        pred = out[..., 0] * consts["mass_std"] + consts["mass_mean"]
    field = np.sum(10.0 ** pred, axis=(1, 2)) / np.sum(10.0 ** true, axis=(1, 2))
    return {"field_mass_error_pct": float(100 * np.mean(np.abs(field - 1))),
            "pixel_rmse_dex": float(np.sqrt(np.mean((pred - true) ** 2)))}


def _train(recipe, arrays, val_arrays, consts, val, *, budget, every, batch, seed):
    import keras

    from pidoc_core.training import array_pipeline

    keras.utils.set_random_seed(seed)
    policy = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        net = _build(recipe)
    finally:
        keras.mixed_precision.set_global_policy(policy)
    model = keras.Model(net.input, keras.layers.Activation("linear", dtype="float32")(net.output))
    y = {"mass-ml": "ml", "mass": "mass", "age-distance": "distance_age"}[recipe]
    channel = arrays["log_distance"] if recipe == "mass-ml" else None
    data = array_pipeline(arrays["flux"], arrays[y], batch_size=batch, shuffle=True, seed=seed,
                          channel=channel)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="mse")
    model.fit(data, steps_per_epoch=3, epochs=1, verbose=0)  # compile: not timed
    t0 = time.perf_counter()
    model.fit(data, steps_per_epoch=5, epochs=1, verbose=0)
    rate = 5 * batch / (time.perf_counter() - t0)
    steps_total = max(int(rate * budget / batch), 1)
    lr = keras.optimizers.schedules.CosineDecay(1e-3, decay_steps=steps_total, alpha=0.01)
    model.compile(optimizer=keras.optimizers.Adam(lr), loss="mse")
    curve, trained, steps = [], 0.0, max(int(rate * every / batch), 1)
    while trained < budget:
        t0 = time.perf_counter()
        model.fit(data, steps_per_epoch=steps, epochs=1, verbose=0)
        trained += time.perf_counter() - t0
        curve.append((trained, _score(recipe, model, val_arrays, consts, val)))
        print(f"{recipe:>13} {trained:7.0f} s  " + "  ".join(
            f"{k} {v:.3f}" for k, v in curve[-1][1].items()), flush=True)
    return curve, rate


def main(argv=None) -> list[Figure]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="data/paper")
    parser.add_argument("--budget", type=float, default=300.0, help="training seconds per net")
    parser.add_argument("--every", type=float, default=60.0, help="seconds between evaluations")
    parser.add_argument("--train", type=int, default=4000)
    parser.add_argument("--val", type=int, default=400)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--recipes", nargs="+", default=list(RECIPES), choices=RECIPES)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", default=None)
    args = parser.parse_args(argv)
    arrays, val_arrays, consts, val = _arrays(args.dataset, args.train, args.val)
    figures = []
    for recipe in args.recipes:
        curve, rate = _train(recipe, arrays, val_arrays, consts, val, budget=args.budget,
                             every=args.every, batch=args.batch_size, seed=args.seed)
        (t_first, first), (t_last, last) = curve[0], curve[-1]
        for key, value in last.items():
            figures.append(Figure(
                "training", f"{recipe}: {key} after {t_last:.0f} s ({rate:.0f} maps/s)",
                key.rsplit("_", 1)[-1], value, value, value, 1, target="", met=None,
                anchor=f"after {t_first:.0f} s", anchor_value=first[key],
                anchor_unit=key.rsplit("_", 1)[-1], ratio=first[key] / value if value else
                float("nan"), ratio_label="first / last (larger: the budget helped)"))
    if args.json:
        write_json(figures, args.json)
    return figures


if __name__ == "__main__":
    main()
