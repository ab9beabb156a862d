"""Inference speed: ms per map at batch 1 and batch 64, beside the paper's 70 ms.

Timed: each network of the shipped model (``weights/pidoc``: the distance-aware and the flux-only
mass networks, the age/distance CNN) and the full-size encoder-decoder of the paper (CED.json),
each with and without XLA ``jit_compile``, and ``PiDOC.predict`` end to end as the dashboard and
``pidoc predict`` call it (standardisation, the age/distance network, the distance-aware mass
network, the calibrated 68 % intervals, xarray output), for one map and for 64 in one call (in
``predict``'s default batches, with batch normalisation folded as ``predict`` runs it). The anchor
measured in the same run is the paper-size network without XLA; the paper's own figure (70 ms per
map on its hardware) is quoted beside. Targets: <= 30 ms for one map, <= 7 ms per map batched.

Run: ``python benchmarks/bench_inference.py [--repeats 30] [--weights DIR] [--json FILE]``
"""

from __future__ import annotations

import argparse
import inspect
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from results import Figure, spread, write_json  # noqa: E402

PAPER_MS_PER_MAP = 70.0


def _time_calls(fn, repeats):
    fn()  # trace / compile
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return np.asarray(times)


def bench_network(network, *, repeats, jit):
    """Spreads (see :func:`results.spread`) of ms per map at batch 1 and at batch 64."""
    import keras
    import tensorflow as tf

    shape = tuple(network.input_shape[1:])
    one = np.random.default_rng(0).normal(size=(1, *shape)).astype("float32")
    many = np.random.default_rng(1).normal(size=(64, *shape)).astype("float32")
    @tf.autograph.experimental.do_not_convert
    def forward(x):
        return network(x, training=False)

    call = tf.function(forward, jit_compile=jit)
    del keras
    t1 = _time_calls(lambda: call(one).numpy(), repeats) * 1e3
    t64 = _time_calls(lambda: call(many).numpy(), max(3, repeats // 5)) * 1e3 / 64
    return spread(t1), spread(t64)


def main(argv=None) -> list[Figure]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--weights", default=None, help="saved model directory (default: shipped)")
    parser.add_argument("--json", default=None, help="write the figures to this JSON file")
    args = parser.parse_args(argv)

    from pidoc_core.model import PiDOC
    from pidoc_core.networks import build_encoder_decoder

    shipped = PiDOC.load(args.weights)
    candidates = {"paper-size encoder-decoder (CED.json)": build_encoder_decoder()}
    for name, net in (("shipped distance-aware mass network", shipped.mass_ml_network),
                      ("shipped flux-only mass network", shipped.mass_network),
                      ("shipped age/distance network", shipped.age_distance_network)):
        if net is not None:
            candidates[name] = net
    results = {}
    for name, net in candidates.items():
        for jit in (False, True):
            key = f"{name}{' + XLA' if jit else ''}"
            b1, b64 = bench_network(net, repeats=args.repeats, jit=jit)
            results[key] = (b1, b64, int(net.count_params()))
            print(f"{key} ({net.count_params():,} parameters): batch 1 {b1[0]:.1f} ms "
                  f"(5-95%: {b1[1]:.1f}-{b1[2]:.1f}) [target <= 30]; batch 64 {b64[0]:.2f} ms/map "
                  f"(5-95%: {b64[1]:.2f}-{b64[2]:.2f}) [target <= 7]; paper {PAPER_MS_PER_MAP:.0f} "
                  f"ms/map -> x{PAPER_MS_PER_MAP / b64[0]:.1f} batched")
    one = np.full((160, 160), -5.4) + np.random.default_rng(2).normal(scale=0.5, size=(160, 160))
    given = {"distance_kpc": 15.0} if shipped.has_distance_aware_mass else {}
    t_predict = _time_calls(lambda: shipped.predict(one, **given), args.repeats) * 1e3
    end_to_end = spread(t_predict)
    what = (f"mass network: {shipped.predict(one, **given).attrs['mass_network']}, "
            f"age/distance, intervals: {bool(shipped.provenance.get('intervals'))}")
    print(f"PiDOC.predict on one map ({what}, xarray out): {end_to_end[0]:.1f} ms "
          f"(5-95%: {end_to_end[1]:.1f}-{end_to_end[2]:.1f})")
    many = one + np.random.default_rng(3).normal(scale=0.1, size=(64, 160, 160))
    batch = inspect.signature(shipped.predict).parameters["batch_size"].default
    t_many = _time_calls(lambda: shipped.predict(many, **given),
                         max(3, args.repeats // 5)) * 1e3 / 64
    batched = spread(t_many)
    print(f"PiDOC.predict, 64 maps in one call, batches of {batch} ({what}; XLA {shipped.xla}): "
          f"{batched[0]:.2f} ms/map (5-95%: {batched[1]:.2f}-{batched[2]:.2f}) [target <= 7]")

    anchor_key = "paper-size encoder-decoder (CED.json)"
    figures = []
    for key, (b1, b64, params) in results.items():
        for label, sp, target, anchor in (("batch 1", b1, 30.0, results[anchor_key][0]),
                                          ("batch 64, per map", b64, 7.0,
                                           results[anchor_key][1])):
            figures.append(Figure(
                "inference", f"{key}, {params:,} parameters, {label} (paper: 70 ms/map)",
                "ms/map", *sp, f"<= {target:g} ms", sp[0] <= target,
                "paper-size network, no XLA", anchor[0], "ms/map", anchor[0] / sp[0],
                "paper-size / this"))
    figures.append(Figure(
        "inference", f"PiDOC.predict, one map ({what})", "ms",
        *end_to_end, "<= 30 ms", end_to_end[0] <= 30, "paper-size network, batch 1, no XLA",
        results[anchor_key][0][0], "ms", end_to_end[0] / results[anchor_key][0][0],
        "predict / paper-size network"))
    figures.append(Figure(
        "inference", f"PiDOC.predict, 64 maps in one call, batches of {batch} ({what})",
        "ms/map", *batched, "<= 7 ms", batched[0] <= 7, "paper-size network, no XLA",
        results[anchor_key][1][0], "ms/map", results[anchor_key][1][0] / batched[0],
        "paper-size / this"))
    if args.json:
        write_json(figures, args.json)
    return figures


if __name__ == "__main__":
    main()
