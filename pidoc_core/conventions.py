"""Conventions shared by the whole package: map geometry, floors and units.

One home for facts that the imager, the networks' inputs, the evaluation and the observed-image
pipeline must agree on (Chardin & Bianchini 2021, Sect. 2.2): maps of 160 x 160 pixels of 0.25"
(a 40" x 40" field), smoothed by a Gaussian of sigma = 4 px, holding log10 of the V-band flux in
Lsun kpc^-2 and log10 of the mass in Msun per pixel, floored before the logarithm.
"""

from __future__ import annotations

import math

__all__ = [
    "N_PIXELS",
    "PIXEL_ARCSEC",
    "FOV_ARCSEC",
    "MAP_SHAPE",
    "SMOOTH_SIGMA_PX",
    "FLUX_FLOOR",
    "MASS_FLOOR",
    "LOG_FLUX_FLOOR",
    "LOG_MASS_FLOOR",
    "PIXEL_MASS_EDGES",
    "UNITS",
    "LOG10_4PI",
    "log_luminosity_per_pixel",
]

#: Pixels along each side of a map.
N_PIXELS = 160
#: Side of one pixel, arcsec.
PIXEL_ARCSEC = 0.25
#: Side of the field of view, arcsec (``N_PIXELS * PIXEL_ARCSEC``).
FOV_ARCSEC = N_PIXELS * PIXEL_ARCSEC
#: Shape ``(y, x)`` of a map, pixels.
MAP_SHAPE = (N_PIXELS, N_PIXELS)
#: Sigma of the Gaussian smoothing of flux and mass maps, pixels.
SMOOTH_SIGMA_PX = 4.0
#: Floor of the per-pixel flux before log10, Lsun kpc^-2.
FLUX_FLOOR = 1e-12
#: Floor of the per-pixel mass before log10, Msun.
MASS_FLOOR = 1e-8
#: ``log10(FLUX_FLOOR)``: the value of an empty pixel of a flux map.
LOG_FLUX_FLOOR = math.log10(FLUX_FLOOR)
#: ``log10(MASS_FLOOR)``: the value of an empty pixel of a mass map.
LOG_MASS_FLOOR = math.log10(MASS_FLOOR)

#: Edges of log10 pixel mass (Msun) of pixel histograms (report aggregates, dashboard): 0.1 dex
#: from -3 to 2 (51 edges).
PIXEL_MASS_EDGES = tuple(round(-3.0 + 0.1 * i, 10) for i in range(51))

#: Units of the quantities in maps, datasets and predictions (attribute strings).
UNITS = {
    "flux": "log10(Lsun kpc-2)",
    "mass": "log10(Msun)",
    "distance": "kpc",
    "age": "Gyr",
    "time": "Gyr",
    "psf_fwhm": "arcsec",
    "x": "arcsec",
    "y": "arcsec",
}


#: ``log10(4 pi)``: L = 4 pi d^2 F turns a flux (Lsun kpc^-2) at d (kpc) into a luminosity (Lsun).
LOG10_4PI = math.log10(4.0 * math.pi)


def log_luminosity_per_pixel(log_flux, distance_kpc):
    """log10 V-band luminosity per pixel, log10(Lsun), from log10 flux and distance.

    Flux per pixel is a surface brightness (independent of distance); the luminosity of a pixel
    grows with its physical area: log L = log F + log 4 pi + 2 log d. The distance-aware mass
    network predicts log10(M/L_V) per pixel and adds this.

    Parameters
    ----------
    log_flux : array_like
        log10 flux per pixel, log10(Lsun kpc^-2).
    distance_kpc : array_like
        Distance, kpc, broadcastable against ``log_flux`` (e.g. shape ``(n, 1, 1)``).

    Examples
    --------
    >>> round(float(log_luminosity_per_pixel(-LOG10_4PI - 2.0, 10.0)), 12)
    0.0
    """
    import numpy as np

    return np.asarray(log_flux) + LOG10_4PI + 2.0 * np.log10(np.asarray(distance_kpc, float))
