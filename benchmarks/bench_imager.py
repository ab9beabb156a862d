"""Imager speed: `observe` on a 50,000-star snapshot against a per-star reference, in one run.

The reference is what one writes first: for every star, add its luminosity times the PSF+smoothing
kernel stamp to the padded canvas (and its mass times the smoothing stamp), then crop. It uses the
same kernels, so it also checks that the FFT imager gives the same maps.

Targets (issue 2): <= 5 ms per observation and >= 50x the reference.

Run: ``python benchmarks/bench_imager.py [--stars 50000] [--repeats 50] [--json FILE]``
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np
import scipy.fft

sys.path.insert(0, str(Path(__file__).resolve().parent))
from results import Figure, spread, write_json  # noqa: E402

from pidoc_core.imager import ObservationSetup, _kernel_spectra, _sky_positions, _stars, render
from pidoc_core.snapshot import Snapshot


def plummer(n: int, *, scale_pc: float = 2.5, seed: int = 0) -> Snapshot:
    """A Plummer sphere with a Kroupa-like mass spread (L ~ m^3.5, R ~ m^0.8)."""
    rng = np.random.default_rng(seed)
    r = scale_pc / np.sqrt(rng.uniform(1e-6, 0.999, n) ** (-2.0 / 3.0) - 1.0)
    d = rng.normal(size=(n, 3))
    pos = r[:, None] * d / np.linalg.norm(d, axis=1)[:, None]
    mass = 0.1 * (1 - rng.uniform(0, 0.99, n)) ** (-1 / 1.3)
    mass = np.minimum(mass, 0.85)
    v = rng.normal(scale=3.0, size=(n, 3))
    return Snapshot(x=pos[:, 0], y=pos[:, 1], z=pos[:, 2], vx=v[:, 0], vy=v[:, 1], vz=v[:, 2],
                    mass=mass, radius=mass**0.8, luminosity=mass**3.5, time=12.0, name="plummer")


def reference_render(snapshot: Snapshot, setup: ObservationSetup):
    """Per-star reference: paint each star's kernel stamp on the padded canvas in a Python loop."""
    size = setup.canvas_pixels
    flux_k, mass_k = (np.fft.fftshift(scipy.fft.irfft2(k, s=(size, size))) for k in
                      _kernel_spectra(size, setup.moffat_gamma_px, setup.moffat_beta,
                                      setup.moffat_radius_px, setup.smooth_sigma_px))
    c = size // 2
    _, lum_v, mass = _stars(snapshot)
    x, y = _sky_positions(snapshot, setup)
    offset = (size - setup.n_pixels) // 2
    canvas_f = np.zeros((size, size))
    canvas_m = np.zeros((size, size))
    to_flux = 1.0 / (4.0 * math.pi * setup.distance_kpc**2)
    for xs, ys, lv, ms in zip(x, y, lum_v, mass):
        ix = math.floor((xs + setup.fov_arcsec / 2) / setup.pixel_arcsec) + offset
        iy = math.floor((ys + setup.fov_arcsec / 2) / setup.pixel_arcsec) + offset
        if not (0 <= ix < size and 0 <= iy < size):
            continue
        # the kernel centred on (iy, ix), wrapped around the canvas like the FFT product
        canvas_f += lv * to_flux * np.roll(flux_k, (iy - c, ix - c), axis=(0, 1))
        canvas_m += ms * np.roll(mass_k, (iy - c, ix - c), axis=(0, 1))
    n = setup.n_pixels
    return canvas_f[offset:offset + n, offset:offset + n], canvas_m[offset:offset + n, offset:offset + n]


def main(argv=None) -> list[Figure]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stars", type=int, default=50_000)
    parser.add_argument("--repeats", type=int, default=50)
    parser.add_argument("--reference-stars", type=int, default=2_000,
                        help="stars timed in the per-star reference (its cost is linear in N)")
    parser.add_argument("--json", default=None, help="write the figures to this JSON file")
    args = parser.parse_args(argv)

    snap = plummer(args.stars)
    setup = ObservationSetup(distance_kpc=15, psf_fwhm_arcsec=1.0)
    render(snap, setup)  # kernel spectra and per-snapshot centre: one-time costs
    times = []
    rng = np.random.default_rng(1)
    for _ in range(args.repeats):
        moved = setup.replace(shift_arcsec=tuple(rng.uniform(-5, 5, 2)),
                              rotation_deg=float(rng.choice([0, 90, 180, 270])))
        t0 = time.perf_counter()
        render(snap, moved)
        times.append(time.perf_counter() - t0)
    from pidoc_core.imager import observe

    observe(snap, setup)  # first xarray construction
    obs_times = []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        observe(snap, setup)
        obs_times.append(time.perf_counter() - t0)

    sub = snap.select(np.arange(args.reference_stars))
    t0 = time.perf_counter()
    ref_f, ref_m = reference_render(sub, setup)
    ref_per_star = (time.perf_counter() - t0) / len(sub)
    fast_f, fast_m = render(sub, setup)
    agree = max(np.abs(ref_f - fast_f).max() / fast_f.max(), np.abs(ref_m - fast_m).max() / fast_m.max())
    ref_full = ref_per_star * len(snap)

    med, p05, p95, n = spread(1e3 * np.asarray(obs_times))
    speedup = 1e3 * ref_full / med
    print(f"observe() on {len(snap):,} stars: median {med:.2f} ms (5-95%: {p05:.2f}-{p95:.2f} ms; "
          f"render only {1e3 * np.median(times):.2f} ms) [target <= 5 ms]")
    print(f"per-star reference: {1e6 * ref_per_star:.1f} us/star, {ref_full:.2f} s for {len(snap):,} "
          f"stars (timed on {len(sub):,})")
    print(f"ratio reference / observe: {speedup:.0f}x [target >= 50x]; "
          f"maps agree to {agree:.1e} of their peak")
    if agree > 1e-6:
        raise SystemExit(f"the FFT imager and the per-star reference disagree by {agree:.1e}")
    rmed, r05, r95, rn = spread(1e3 * np.asarray(times))
    figures = [
        Figure("imager", f"observe() on {len(snap):,} stars (maps agree with the reference to "
               f"{agree:.0e})", "ms", med, p05, p95, n, "<= 5 ms and >= 50x the reference",
               med <= 5 and speedup >= 50, "per-star reference (extrapolated from "
               f"{len(sub):,} stars)", 1e3 * ref_full, "ms", speedup, "reference / observe"),
        Figure("imager", "render() only (no xarray wrapping), random shift and quarter turn", "ms",
               rmed, r05, r95, rn, "", None, "observe() median", med, "ms", rmed / med,
               "render / observe"),
    ]
    if args.json:
        write_json(figures, args.json)
    return figures


if __name__ == "__main__":
    main()
