"""Cost of large embedded runs (issue 18's grid): set-up, snapshot, density centre and memory vs N.

For each ``--sizes`` N, in its own process (for its peak memory): the one-time set-up of a
``ClusterEvolution(rh0, n_stars=N, galactocentric_kpc, metallicity)`` (CPU and wall seconds;
the SSE table, of ``--sse-age-step``, is reused when ``--cache`` holds it), then for ``--times``
a new snapshot (CPU), its density centre (CPU; the imager's largest per-snapshot cost at large N
when the snapshot falls on a table age), the same for the
snapshot cut to the stars that can reach the field (``pidoc_core.evolution.grid.field_stars`` at
``reach_radius_pc`` of ``--distances`` and PSF 1.5"), the centre from the 20,000 innermost stars
(``inner_density_centre``, what ``FieldEvolution`` uses), and one map (CPU). Extrapolation to
``--extrapolate`` initial stars (default 1e6): set-up and memory linear in N (a fixed part,
cbhbd/ssptools/limepy, plus the stars), the snapshot as a N^b, the centre and the map as a power
of the stars in the snapshot, taken as the largest size's retained fraction times N. CPU
seconds are reported beside wall seconds because the wall time of a niced run on a busy machine
is not the cost.

Run: ``nice -n 19 python benchmarks/bench_grid.py --sizes 50000 100000 300000
[--cache DIR] [--json FILE]``
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from results import Figure, spread, write_json  # noqa: E402


def one(n, *, rh0, rg, z, seed, cache, times, distances, sse_age_step) -> dict:
    """Measure one size in this process; returns a dict of costs (seconds, MB)."""
    from pidoc_core.evolution import ClusterEvolution
    from pidoc_core.evolution.grid import field_stars, inner_density_centre, reach_radius_pc
    from pidoc_core.imager import ObservationSetup, observe

    run = ClusterEvolution(rh0, n_stars=n, galactocentric_kpc=rg, metallicity=z, seed=seed,
                           cache_dir=cache, progress=False, cache_snapshots=False,
                           sse_age_step_gyr=sse_age_step)
    c, w = time.process_time(), time.perf_counter()
    run.setup()
    out = dict(n=n, setup_cpu_s=time.process_time() - c, setup_wall_s=time.perf_counter() - w,
               snapshot_cpu_s=[], centre_cpu_s=[], centre_cut_cpu_s=[], centre_inner_cpu_s=[],
               map_cpu_s=[],
               stars=[], kept_fraction=[])
    radius = reach_radius_pc(distances, [1.5])
    for t in times:
        c = time.process_time()
        snap = run.snapshot(t)
        out["snapshot_cpu_s"].append(time.process_time() - c)
        cut = field_stars(snap, radius)
        for key, s in (("centre_cpu_s", snap), ("centre_cut_cpu_s", cut)):
            c = time.process_time()
            s.density_centre
            out[key].append(time.process_time() - c)
        c = time.process_time()
        inner_density_centre(snap, 20_000)
        out["centre_inner_cpu_s"].append(time.process_time() - c)
        setup = ObservationSetup(distance_kpc=max(distances), psf_fwhm_arcsec=1.0)
        observe(snap, setup)  # kernels and luminosities once
        c = time.process_time()
        observe(snap, setup.replace(rotation_deg=90.0))
        out["map_cpu_s"].append(time.process_time() - c)
        out["stars"].append(len(snap))
        out["kept_fraction"].append(len(cut) / len(snap))
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out["reach_radius_pc"] = radius
    return out


def _power(xs, ys, at):
    b, log_a = np.polyfit(np.log(xs), np.log(ys), 1)
    return float(np.exp(log_a) * at**b), f"a x^b, b = {b:.2f}"


def _linear(xs, ys, at):
    slope, icpt = np.polyfit(xs, ys, 1)
    return float(icpt + slope * at), f"a + b N, a = {icpt:.3g}, b = {slope:.3g}"


def main(argv=None) -> list[Figure]:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[50_000, 100_000, 300_000])
    p.add_argument("--rh0", type=float, default=2.0, help="initial half-mass radius, pc")
    p.add_argument("--rg", type=float, default=8.0, help="Galactocentric radius, kpc")
    p.add_argument("--z", type=float, default=0.001, help="metallicity Z")
    p.add_argument("--seed", type=int, default=7)
    # the wide preset's times lie on a 0.02-Gyr grid, most of them between 0.1-Gyr table ages
    p.add_argument("--times", type=float, nargs="+", default=[12.02, 12.46, 12.98],
                   help="snapshot times, Gyr")
    p.add_argument("--sse-age-step", type=float, default=0.02,
                   help="age step of the SSE table, Gyr (0.02: the wide runs'; 0.1: the default "
                        "table, whose ages most of --times fall between)")
    p.add_argument("--distances", type=float, nargs="+", default=[8.0, 42.0],
                   help="distances of the plan, kpc (the field-only cut uses the largest)")
    p.add_argument("--extrapolate", type=float, default=1e6)
    p.add_argument("--cache", default=None, help="cache directory (default: a fresh temp dir)")
    p.add_argument("--one", type=int, default=None, help=argparse.SUPPRESS)
    p.add_argument("--json", default=None)
    args = p.parse_args(argv)
    cache = args.cache or tempfile.mkdtemp(prefix="pidoc-bench-grid-")
    opts = dict(rh0=args.rh0, rg=args.rg, z=args.z, seed=args.seed, cache=cache,
                times=args.times, distances=args.distances, sse_age_step=args.sse_age_step)
    if args.one is not None:
        print(json.dumps(one(args.one, **opts)))
        return []
    rows = []
    for n in args.sizes:  # one process per size: its own peak memory
        cmd = [sys.executable, __file__, "--one", str(n), "--cache", cache, "--rh0",
               str(args.rh0), "--rg", str(args.rg), "--z", str(args.z), "--seed", str(args.seed),
               "--times", *map(str, args.times), "--distances", *map(str, args.distances),
               "--sse-age-step", str(args.sse_age_step)]
        res = subprocess.run(cmd, capture_output=True, text=True, check=True)
        rows.append(json.loads(res.stdout.strip().splitlines()[-1]))
        print(json.dumps(rows[-1]))
    figures = []
    ns = np.array([r["n"] for r in rows], float)
    stars = np.array([np.median(r["stars"]) for r in rows], float)
    stars_at = float(stars[-1] / ns[-1] * args.extrapolate)
    for key, unit, scale, fit, xs, at in (
            ("setup_cpu_s", "s", 1.0, _linear, ns, args.extrapolate),
            ("snapshot_cpu_s", "ms", 1e3, _power, ns, args.extrapolate),
            ("centre_cpu_s", "ms", 1e3, _power, stars, stars_at),
            ("centre_cut_cpu_s", "ms", 1e3, _power, stars, stars_at),
            ("centre_inner_cpu_s", "ms", 1e3, None, None, None),
            ("map_cpu_s", "ms", 1e3, _power, stars, stars_at),
            ("peak_rss_mb", "MB", 1.0, _linear, ns, args.extrapolate)):
        per_n = [np.atleast_1d(r[key]) * scale for r in rows]
        for r, v in zip(rows, per_n):
            med, p05, p95, k = spread(v)
            figures.append(Figure("grid", f"{key} at N = {r['n']:,}", unit, med, p05, p95, k,
                                  "", None, "", float("nan"), "", float("nan"), ""))
        if fit is not None and len(rows) >= 2:
            y, how = fit(xs, [float(np.median(v)) for v in per_n], at)
            figures.append(Figure("grid", f"{key} at N = {args.extrapolate:,.0f} ({how})", unit,
                                  y, y, y, 0, "", None, "", float("nan"), "", float("nan"), ""))
            print(f"{key}: {y:.3g} {unit} at N = {args.extrapolate:,.0f} ({how}; "
                  f"{stars_at:,.0f} stars in the snapshot)")
    if args.json:
        write_json(figures, args.json)
    return figures


if __name__ == "__main__":
    main()
