"""Realism of the embedded evolution source against the paper and the authors' trained CNN.

Run: ``python benchmarks/realism.py [--maps-per-distance N] [--cache DIR] [--seed S]``.

Prints, next to the facts of Chardin & Bianchini (2021) and the authors' training-set statistics
(the v0.1 standardisation constants), the same numbers measured on mocks of our analogues:

1. Training protocol (paper Table 1): MW15-R1.6 and MW15-R4 analogues at 10, 25, 50, 75 and 100 kpc,
   PSF 0.5" and 1.5", random shift (+-5") and rotation (0/90/180/270), times spread over 0-14 Gyr:
   per-pixel log10 flux and mass mean/std, range of the field mass, and the field V luminosity
   of > 11 Gyr maps at 10-40 kpc (Fig. 10: ~300-5000 Lsun, mean 1754 Lsun).
2. Test protocol (Sect. 4.2): MW15 analogue at 15, 30, 60, 80 kpc, PSF 1.0", random shift and
   rotation, ``N`` maps per distance at times stratified over 0.5-14 Gyr; the authors' v0.1 CNN
   predicts distance and age: per-distance mean, std and MAE (Table 2), age MAE, and R^2 of both.
3. The MW15 analogue's field mass at 15 kpc (fraction of times within 10^3.0-10^3.8 Msun).

Ends with a markdown table for the README. Needs ``weights/pidoc-v0.1`` (or ``--weights``). The
first run sets up the three analogues (a few minutes; cached afterwards).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

PAPER_TABLE2 = {15: (20.3, 5.0, 5.6), 30: (35.2, 8.3, 7.4), 60: (60.6, 8.8, 6.5),
                80: (77.6, 7.9, 6.0)}  # real distance: mean, std, MAE (kpc)
PAPER_AGE_MAE = 1.26  # Gyr, averaged over age bins (Sect. 4.2.1)
TRAIN_STATS = dict(flux_mean=-5.382, flux_std=0.970, mass_mean=-0.851, mass_std=0.449)
FIRST_TRY = {15: 19, 30: 34, 60: 62, 80: 75}  # earlier recipe, 20 maps, R^2 0.84 / 0.66


def _setup(distance, psf, rng):
    from pidoc_core.imager import ObservationSetup

    return ObservationSetup(distance_kpc=distance, psf_fwhm_arcsec=psf,
                            shift_arcsec=tuple(np.round(rng.uniform(-5, 5, 2), 2)),
                            rotation_deg=float(rng.choice([0, 90, 180, 270])))


def _times(n, rng, lo=0.5, hi=14.0, step=0.05):
    """n times stratified over [lo, hi], rounded to ``step`` Gyr."""
    t = lo + (np.arange(n) + rng.random(n)) * (hi - lo) / n
    return np.clip(np.round(t / step) * step, lo, hi)


def r2(y, p):
    y, p = np.asarray(y, float), np.asarray(p, float)
    return 1.0 - np.sum((y - p) ** 2) / np.sum((y - y.mean()) ** 2)


def training_protocol(runs, *, n_times, seed, progress):
    from tqdm.auto import tqdm

    from pidoc_core.imager import observe

    rng = np.random.default_rng([seed, 1])
    fsum = fsq = msum = msq = npx = 0.0
    field_mass, lv_old = [], []
    jobs = [(name, t, d, psf) for name in ("MW15-R1.6 analogue", "MW15-R4 analogue")
            for t in _times(n_times, rng, lo=0.1, hi=14.0) for d in (10, 25, 50, 75, 100)
            for psf in (0.5, 1.5)]
    for name, t, d, psf in tqdm(jobs, desc="training-protocol mocks", disable=not progress):
        obs = observe(runs[name].snapshot(float(t)), _setup(d, psf, rng))
        f = obs["flux"].values.astype(float)
        m = obs["mass"].values.astype(float)
        fsum += f.sum(); fsq += (f**2).sum(); msum += m.sum(); msq += (m**2).sum(); npx += f.size
        field_mass.append(obs.attrs["field_mass_msun"])
        if t > 11 and d <= 40:
            lv_old.append(obs.attrs["field_luminosity_v_lsun"])
    fm, mm = fsum / npx, msum / npx
    return dict(flux_mean=fm, flux_std=np.sqrt(fsq / npx - fm**2), mass_mean=mm,
                mass_std=np.sqrt(msq / npx - mm**2), field_mass=np.log10(field_mass),
                lv_old=np.array(lv_old), n_maps=len(jobs))


def fig10_all_runs(runs, *, seed):
    """Field L_V of all three analogues at > 11 Gyr and 10-40 kpc (PSF 1.0", centred)."""
    from pidoc_core.imager import ObservationSetup, observe

    out = {}
    for name, run in runs.items():
        vals = [observe(run.snapshot(t), ObservationSetup(distance_kpc=d, psf_fwhm_arcsec=1.0))
                .attrs["field_luminosity_v_lsun"]
                for t in (11.2, 11.8, 12.5, 13.2, 14.0) for d in (10, 20, 30, 40)]
        out[name] = np.array(vals)
    return out


def test_protocol(run, model, *, n_per_distance, seed, progress):
    from tqdm.auto import tqdm

    from pidoc_core.imager import observe

    rng = np.random.default_rng([seed, 2])
    flux, dist, age, fmass15 = [], [], [], []
    jobs = [(d, t) for d in (15, 30, 60, 80) for t in _times(n_per_distance, rng)]
    for d, t in tqdm(jobs, desc="MW15 test mocks", disable=not progress):
        obs = observe(run.snapshot(float(t)), _setup(d, 1.0, rng))
        flux.append(obs["flux"].values)
        dist.append(d)
        age.append(t)
        if d == 15:
            fmass15.append(obs.attrs["field_mass_msun"])
    pred = model.predict(np.stack(flux))
    return dict(dist=np.array(dist, float), age=np.array(age, float),
                pd=pred["distance"].values.astype(float), pa=pred["age"].values.astype(float),
                fmass15=np.log10(fmass15), flux_mean=float(np.mean(flux)))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--maps-per-distance", type=int, default=20)
    p.add_argument("--train-times", type=int, default=8,
                   help="times per training run (x 5 distances x 2 PSFs)")
    p.add_argument("--cache", default=None, help="evolution cache (default $PIDOC_CACHE_DIR "
                   "or the user cache)")
    p.add_argument("--weights", default=str(ROOT / "weights" / "pidoc-v0.1"))
    p.add_argument("--seed", type=int, default=2021)
    p.add_argument("--quiet", action="store_true")
    args = p.parse_args(argv)
    progress = not args.quiet

    from pidoc_core.evolution import paper_runs
    from pidoc_core.model import PiDOC

    t0 = time.perf_counter()
    runs = paper_runs(cache_dir=args.cache, progress=progress)
    for r in runs.values():
        r.setup()
    model = PiDOC.from_v01(args.weights)
    tr = training_protocol(runs, n_times=args.train_times, seed=args.seed, progress=progress)
    fig10 = fig10_all_runs(runs, seed=args.seed)
    te = test_protocol(runs["MW15 analogue"], model, n_per_distance=args.maps_per_distance,
                       seed=args.seed, progress=progress)
    elapsed = time.perf_counter() - t0

    rows = []
    add = lambda *r: rows.append(r)
    lo, hi = np.percentile(tr["field_mass"], [2.5, 97.5])
    add("field mass, training protocol (log10 Msun)", "~3 - ~4.5",
        f"{tr['field_mass'].min():.2f} - {tr['field_mass'].max():.2f} (95%: {lo:.2f} - {hi:.2f})")
    inside = np.mean((te["fmass15"] >= 3.0) & (te["fmass15"] <= 3.8))
    add("MW15 field mass at 15 kpc (log10 Msun)", "(target 3.0 - 3.8)",
        f"{te['fmass15'].min():.2f} - {te['fmass15'].max():.2f} ({inside:.0%} inside)")
    lv = tr["lv_old"]
    add("field L_V, > 11 Gyr, 10-40 kpc, R1.6+R4 (Lsun)", "~300 - 5000, mean 1754",
        f"{lv.min():.0f} - {lv.max():.0f}, mean {lv.mean():.0f}")
    for name, v in fig10.items():
        add(f"field L_V, > 11 Gyr, 10-40 kpc, {name} (Lsun)", "~300 - 5000",
            f"{v.min():.0f} - {v.max():.0f}, mean {v.mean():.0f}")
    add("per-pixel log10 flux, mean / std", f"{TRAIN_STATS['flux_mean']:.2f} / "
        f"{TRAIN_STATS['flux_std']:.2f}", f"{tr['flux_mean']:.2f} / {tr['flux_std']:.2f}")
    add("per-pixel log10 mass, mean / std", f"{TRAIN_STATS['mass_mean']:.2f} / "
        f"{TRAIN_STATS['mass_std']:.2f}", f"{tr['mass_mean']:.2f} / {tr['mass_std']:.2f}")
    for d, (pm, ps, pmae) in PAPER_TABLE2.items():
        sel = te["dist"] == d
        x = te["pd"][sel]
        add(f"CNN distance at {d} kpc: mean / std / MAE (kpc)", f"{pm} / {ps} / {pmae}",
            f"{x.mean():.1f} / {x.std():.1f} / {np.mean(np.abs(x - d)):.1f}"
            f" (first try mean {FIRST_TRY[d]})")
    add("CNN age MAE (Gyr)", f"{PAPER_AGE_MAE} (mean over age bins)",
        f"{np.mean(np.abs(te['pa'] - te['age'])):.2f}")
    add("CNN R^2 distance / age", "(first try 0.84 / 0.66)",
        f"{r2(te['dist'], te['pd']):.2f} / {r2(te['age'], te['pa']):.2f}")

    print()
    print(f"Realism of the embedded evolution source ({tr['n_maps']} training-protocol mocks, "
          f"{te['dist'].size} MW15 test mocks, {elapsed:.0f} s)")
    print()
    print("| quantity | paper / authors' training set | our analogues |")
    print("| --- | --- | --- |")
    for r in rows:
        print(f"| {r[0]} | {r[1]} | {r[2]} |")
    return rows


if __name__ == "__main__":
    main()
