"""V-band photometry of single stars.

Bolometric magnitudes follow M_bol = 4.74 - 2.5 log10(L / Lsun) (IAU 2015 Resolution B2). The V-band
bolometric correction is Reed (1998, JRASC 92, 36) eq. 5, a quartic in log10 Teff, with the
correction noted by Giersz & Heggie (2003) and the paper's footnote 1: the temperature T in the
printed equation must be read as 10^-4 T, so the polynomial's variable is x = log10(Teff / 10^4 K):

    BC_V = -8.499 x^4 + 13.421 x^3 - 8.131 x^2 - 3.901 x - 0.438.

The V-band luminosity in solar V units is L_V = 10^(-0.4 (M_V - M_V,sun)) with M_V = M_bol - BC_V
and M_V,sun = 4.83 (Binney & Merrifield 1998, Table 2.1). Dark remnants -- neutron stars, black holes
and massless remnants (SSE types 13-15) -- give no light; white dwarfs keep their light.
"""

from __future__ import annotations

import numpy as np

from .snapshot import DARK_KSTAR, Snapshot

__all__ = [
    "MBOL_SUN",
    "MV_SUN",
    "TEFF_RANGE_K",
    "bolometric_correction_v",
    "absolute_v_magnitude",
    "v_band_luminosity",
    "snapshot_v_luminosity",
]

#: Solar absolute bolometric magnitude (IAU 2015 B2).
MBOL_SUN = 4.74
#: Solar absolute V magnitude (Binney & Merrifield 1998).
MV_SUN = 4.83
#: Teff range (K) to which the Reed (1998) polynomial is applied; cooler or hotter stars are
#: evaluated at the nearest edge, where the quartic still tracks model atmospheres
#: (BC_V ~ -8.3 at 2,000 K, ~ -7.6 at 100,000 K) instead of diverging.
TEFF_RANGE_K = (2.0e3, 1.0e5)

_REED_COEFFS = (-8.499, 13.421, -8.131, -3.901, -0.438)  # x^4 ... x^0, x = log10(T / 1e4 K)


def bolometric_correction_v(teff):
    """V-band bolometric correction of Reed (1998) eq. 5 with T -> 10^-4 T.

    Parameters
    ----------
    teff : array_like
        Effective temperature, K (> 0). Values outside :data:`TEFF_RANGE_K` are clipped to it.

    Returns
    -------
    numpy.ndarray
        BC_V in magnitudes (M_V = M_bol - BC_V).

    Examples
    --------
    >>> round(float(bolometric_correction_v(5772.0)), 3)
    -0.18
    """
    t = np.clip(np.asarray(teff, dtype=float), *TEFF_RANGE_K)
    return np.polyval(_REED_COEFFS, np.log10(t) - 4.0)


def absolute_v_magnitude(luminosity, teff):
    """Absolute V magnitude of stars.

    Parameters
    ----------
    luminosity : array_like
        Bolometric luminosity, Lsun (> 0).
    teff : array_like
        Effective temperature, K.

    Returns
    -------
    numpy.ndarray
        M_V in magnitudes.
    """
    with np.errstate(divide="ignore"):
        mbol = MBOL_SUN - 2.5 * np.log10(np.asarray(luminosity, dtype=float))
    return mbol - bolometric_correction_v(teff)


def v_band_luminosity(luminosity, teff, kstar=None):
    """V-band luminosity of stars in solar V units.

    Parameters
    ----------
    luminosity : array_like
        Bolometric luminosity, Lsun (>= 0).
    teff : array_like
        Effective temperature, K.
    kstar : array_like of int, optional
        SSE stellar types; types in :data:`pidoc_core.snapshot.DARK_KSTAR` (NS, BH, massless
        remnant) get zero light whatever their luminosity column says.

    Returns
    -------
    numpy.ndarray
        L_V in Lsun,V = 10^(-0.4 (M_V - 4.83)); 0 for stars with zero luminosity and dark remnants.

    Examples
    --------
    >>> round(float(v_band_luminosity(1.0, 5772.0)), 3)  # the Sun
    0.92
    """
    lum = np.asarray(luminosity, dtype=float)
    teff = np.asarray(teff, dtype=float)
    shine = lum > 0
    if kstar is not None:
        shine &= ~np.isin(np.asarray(kstar), DARK_KSTAR)
    out = np.zeros(np.broadcast(lum, teff).shape)
    if np.ndim(out) == 0:
        return float(10.0 ** (-0.4 * (absolute_v_magnitude(lum, teff) - MV_SUN))) if shine else 0.0
    lum_b, teff_b, shine_b = np.broadcast_arrays(lum, teff, shine)
    mv = absolute_v_magnitude(lum_b[shine_b], teff_b[shine_b])
    out[shine_b] = 10.0 ** (-0.4 * (mv - MV_SUN))
    return out


def snapshot_v_luminosity(snapshot: Snapshot) -> np.ndarray:
    """V-band luminosity of every star of a snapshot, Lsun (see :func:`v_band_luminosity`)."""
    return v_band_luminosity(snapshot.luminosity, snapshot.teff, snapshot.kstar)
