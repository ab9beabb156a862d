"""The wide grid against the paper's Table 3: which clusters its mocks older than 11 Gyr reach.

Draws the grid runs with at most ``--max-n`` initial stars (set-up ~0.5-3 min each on 2 cores,
plus one SSE table per new metallicity), observes each at ``--times`` (Gyr) and the distances of
Table 3 (8-42 kpc), estimates the larger runs from a measured reference run by homology
(:func:`pidoc_core.plots_grid.homologous_estimate`: mass and rh from cbhbd), and prints per
cluster the mocks' field-luminosity, half-light and core-radius ranges at its distance; writes
the records (JSON) and the figure (PNG) to ``--out``.

Run: ``nice -n 19 python benchmarks/grid_reach.py [--max-n 150000] [--sse-grid-masses 3000]
[--reference-n 300000] [--cache DIR] [--out DIR]``
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

from pidoc_core.evolution import ClusterEvolution
from pidoc_core.evolution.grid import WIDE_GRID, field_records, grid_histories, grid_runs
from pidoc_core.plots_grid import figure_grid_vs_table3, grid_reach, homologous_estimate

DISTANCES = (8.0, 10.0, 13.0, 17.0, 22.0, 28.0, 35.0, 42.0)


def main(argv=None) -> list[dict]:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--max-n", type=int, default=150_000, help="largest N drawn")
    p.add_argument("--sse-grid-masses", type=int, default=3000)
    p.add_argument("--reference-n", type=int, default=300_000,
                   help="N of the reference run (rh0 2 pc, 8 kpc, Z 0.001) for the estimates")
    p.add_argument("--times", type=float, nargs="+", default=[11.5, 12.0, 12.5, 13.0])
    p.add_argument("--cache", default=None)
    p.add_argument("--out", default="grid_reach")
    args = p.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    names = [r["name"] for r in WIDE_GRID if r["n_stars"] <= args.max_n]
    runs = grid_runs(names=names, cache_dir=args.cache, progress=False,
                     sse_grid_masses=args.sse_grid_masses)
    records = field_records(runs, times_gyr=args.times, distances_kpc=DISTANCES)
    ref_run = ClusterEvolution(2.0, n_stars=args.reference_n, galactocentric_kpc=8.0,
                               metallicity=0.001, seed=7, name="reference", cache_dir=args.cache,
                               progress=False, cache_snapshots=False)
    reference = field_records({"reference": ref_run}, times_gyr=args.times,
                              distances_kpc=DISTANCES)
    big = [r for r in WIDE_GRID if r["n_stars"] > args.max_n]
    estimates = homologous_estimate(reference, grid_histories(times_gyr=args.times, grid=big))
    (out / "records.json").write_text(json.dumps(dict(records=records, reference=reference,
                                                      estimates=estimates), indent=1))
    reach = grid_reach(records + estimates)
    measured = {r["name"]: r for r in grid_reach(records)}
    print(f"{'cluster':10s} {'d/kpc':>6s} {'L_FoV':>8s} {'mock L range':>17s} {'r_h':>5s} "
          f"{'mock r_h':>11s} {'r_c':>5s} {'mock r_c':>11s}  reached (drawn only)")
    for r in reach:
        print(f"{r['name']:10s} {r['distance_kpc']:6.1f} {r['l']:8.0f} "
              f"{r['l_lo']:8.0f}-{r['l_hi']:<8.0f} {r['r_h']:5.2f} "
              f"{r['r_h_lo']:5.2f}-{r['r_h_hi']:<5.2f} {r['r_c']:5.2f} "
              f"{_f(r['r_c_lo'])}-{_f(r['r_c_hi'])}  "
              f"L {'y' if r['l_inside'] else 'n'} r_h {'y' if r['r_h_inside'] else 'n'} "
              f"r_c {'y' if r['r_c_inside'] else 'n'} "
              f"({'y' if measured[r['name']]['l_inside'] else 'n'})")
    fig = figure_grid_vs_table3(records + reference, estimates=estimates)
    fig.savefig(out / "grid_vs_table3.png", dpi=110)
    (out / "reach.json").write_text(json.dumps(reach, indent=1))
    return reach


def _f(x):
    return f"{x:5.2f}" if math.isfinite(x) else "  -  "


if __name__ == "__main__":
    main()
