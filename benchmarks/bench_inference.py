"""Inference speed of the mass network: ms per map at batch 1 and batch 64, beside the paper's 70 ms.

Anchors measured in the same run: the full-size encoder-decoder of the paper (CED.json) and the
shipped model (``weights/pidoc``, a reduced network), each with and without XLA ``jit_compile``.
Targets (issue 5): <= 30 ms for one map, <= 7 ms per map batched.

Run: ``python benchmarks/bench_inference.py [--repeats 30] [--weights DIR]``
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

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
    """(ms per map at batch 1: median, p05, p95), (ms per map at batch 64: median, p05, p95)."""
    import keras
    import tensorflow as tf

    one = np.random.default_rng(0).normal(size=(1, 160, 160, 1)).astype("float32")
    many = np.random.default_rng(1).normal(size=(64, 160, 160, 1)).astype("float32")
    if jit:
        call = tf.function(lambda x: network(x, training=False), jit_compile=True)
    else:
        call = tf.function(lambda x: network(x, training=False))
    del keras
    t1 = _time_calls(lambda: call(one).numpy(), repeats) * 1e3
    t64 = _time_calls(lambda: call(many).numpy(), max(3, repeats // 5)) * 1e3 / 64
    return tuple(np.percentile(t1, [50, 5, 95])), tuple(np.percentile(t64, [50, 5, 95]))


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--weights", default=None, help="saved model directory (default: shipped)")
    args = parser.parse_args(argv)

    from pidoc_core.model import PiDOC, ModelError
    from pidoc_core.networks import build_encoder_decoder

    candidates = {"paper-size encoder-decoder (CED.json, untrained)": build_encoder_decoder()}
    try:
        shipped = PiDOC.load(args.weights)
        if shipped.mass_network is not None:
            candidates["shipped mass network"] = shipped.mass_network
    except ModelError as exc:
        print(f"(no shipped model: {exc})")
    results = {}
    for name, net in candidates.items():
        for jit in (False, True):
            key = f"{name}{' + XLA' if jit else ''}"
            try:
                b1, b64 = bench_network(net, repeats=args.repeats, jit=jit)
            except Exception as exc:  # XLA may be unavailable for some ops on some builds
                print(f"{key}: failed ({type(exc).__name__}: {exc})")
                continue
            results[key] = {"batch1_ms": b1, "batch64_ms_per_map": b64,
                            "params": int(net.count_params())}
            print(f"{key} ({net.count_params():,} parameters): batch 1 {b1[0]:.1f} ms "
                  f"(5-95%: {b1[1]:.1f}-{b1[2]:.1f}) [target <= 30]; batch 64 {b64[0]:.2f} ms/map "
                  f"(5-95%: {b64[1]:.2f}-{b64[2]:.2f}) [target <= 7]; paper {PAPER_MS_PER_MAP:.0f} "
                  f"ms/map -> x{PAPER_MS_PER_MAP / b64[0]:.1f} batched")
    return results


if __name__ == "__main__":
    main()
