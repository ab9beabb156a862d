"""Training input pipeline: is the network step, not the input, the bottleneck?

Measured in one run, on at most 2 cores:

1. **Loading** a training split into memory with :func:`pidoc_core.dataset.load_arrays` (float16
   maps, standardised), and the peak resident memory of the process afterwards (the paper-size
   split: 20,000 maps of 160 x 160).
2. **The same training step two ways**, with the distance-aware recipe's network
   (:func:`pidoc_core.networks.build_mass_unet`, flux + log10 distance channels, MSE, Adam) at
   batch 32: fed by :func:`pidoc_core.training.array_pipeline` (per-epoch shuffle, gather by
   index, float16 -> float32, constant distance channel, prefetch), and fed one batch already in
   memory as float32 tensors, repeated (no input work at all: the anchor). Both through
   ``model.fit`` with the same number of steps, after a warm-up that compiles the step.

Target (issue): pipeline maps/s >= 0.9 x the in-memory step's maps/s.

Without ``--dataset`` (or when the store is missing) the split is synthetic: float16 maps of the
paper's size with the statistics of standardised data, so the memory figure is the arrays' own.

Run: ``python benchmarks/bench_pipeline.py [--dataset data/paper/train.zarr] [--samples 20000]
[--steps 60] [--repeats 3] [--json FILE]``
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from results import Figure, spread, write_json  # noqa: E402

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _load(dataset, samples, seed):
    """(arrays dict, seconds, description): the real split, or synthetic float16 arrays."""
    t0 = time.perf_counter()
    if dataset is not None and Path(dataset).exists():
        from pidoc_core import dataset as D

        ds = D.open_dataset(dataset)
        if samples < ds.sizes["sample"]:
            ds = ds.isel(sample=slice(0, samples))
        consts = D.standardisation(ds, allow_other_split=True)
        arrays = D.load_arrays(ds, standardisation=consts,
                               targets=("flux", "ml", "log_distance"))
        what = f"{Path(dataset).name}, {len(arrays['flux'])} maps"
    else:
        rng = np.random.default_rng(seed)
        arrays = {"flux": np.empty((samples, 160, 160), np.float16),
                  "ml": np.empty((samples, 160, 160), np.float16)}
        for start in range(0, samples, 1000):
            sl = slice(start, min(start + 1000, samples))
            arrays["flux"][sl] = rng.standard_normal((sl.stop - sl.start, 160, 160))
            arrays["ml"][sl] = rng.standard_normal((sl.stop - sl.start, 160, 160))
        arrays["log_distance"] = rng.standard_normal(samples).astype(np.float32)
        what = f"synthetic, {samples} maps"
    return arrays, time.perf_counter() - t0, what


def _rate(model, data, steps, batch) -> float:
    t0 = time.perf_counter()
    model.fit(data, steps_per_epoch=steps, epochs=1, verbose=0)
    return steps * batch / (time.perf_counter() - t0)


def main(argv=None) -> list[Figure]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="data/paper/train.zarr")
    parser.add_argument("--samples", type=int, default=20_000)
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", default=None)
    args = parser.parse_args(argv)

    import keras
    import tensorflow as tf

    from pidoc_core.networks import build_mass_unet
    from pidoc_core.training import array_pipeline

    rss0 = _peak_rss_mib()
    arrays, load_s, what = _load(args.dataset, args.samples, args.seed)
    n = len(arrays["flux"])
    rss_loaded = _peak_rss_mib()
    keras.utils.set_random_seed(args.seed)
    model = build_mass_unet(input_shape=(160, 160, 2))
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="mse")
    b = args.batch_size
    pipe = array_pipeline(arrays["flux"], arrays["ml"], batch_size=b, shuffle=True,
                          seed=args.seed, channel=arrays["log_distance"])
    xb, yb = next(iter(pipe))
    fixed = tf.data.Dataset.from_tensors((tf.constant(xb), tf.constant(yb))).repeat()
    _rate(model, fixed, 5, b)  # compile the step
    _rate(model, pipe, 5, b)
    piped, memory = [], []
    for _ in range(args.repeats):  # interleaved, so a busy machine slows both alike
        memory.append(_rate(model, fixed, args.steps, b))
        piped.append(_rate(model, pipe, args.steps, b))
    rss_peak = _peak_rss_mib()
    mem = spread(memory)
    pip = spread(piped)
    ratio = pip[0] / mem[0]
    print(f"split: {what}; loaded in {load_s:.1f} s; resident memory {rss0:.0f} MiB before, "
          f"{rss_loaded:.0f} MiB after loading, peak {rss_peak:.0f} MiB with training")
    print(f"training step, batch {b}, {args.steps} steps x {args.repeats}: in memory "
          f"{mem[0]:.1f} maps/s, through the pipeline {pip[0]:.1f} maps/s, ratio {ratio:.3f}")
    figures = [
        Figure("pipeline", f"training maps/s through array_pipeline ({what})", "maps/s", *pip,
               target=">= 0.9 x in-memory step", met=bool(ratio >= 0.9),
               anchor="same step on one in-memory batch", anchor_value=mem[0],
               anchor_unit="maps/s", ratio=ratio, ratio_label="pipeline / in memory"),
        Figure("pipeline", f"peak resident memory, {n} maps loaded and training", "MiB",
               rss_peak, rss_peak, rss_peak, 1, target="", met=None,
               anchor="before loading", anchor_value=rss0, anchor_unit="MiB",
               ratio=rss_peak / rss0, ratio_label="peak / before"),
        Figure("pipeline", f"load_arrays ({what})", "s", load_s, load_s, load_s, 1, target="",
               met=None, anchor="maps loaded", anchor_value=float(n), anchor_unit="maps",
               ratio=n / load_s, ratio_label="maps/s"),
    ]
    if args.json:
        write_json(figures, args.json)
    return figures


if __name__ == "__main__":
    main()
