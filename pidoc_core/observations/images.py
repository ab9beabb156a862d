"""Reading images: FITS cut-outs with a celestial WCS, PS1 asinh stacks, zero points, photometry
(counts -> V-band flux, PS1 g, r -> V)."""

from __future__ import annotations

import math
import os
import warnings
from pathlib import Path

import numpy as np
from astropy.io import fits
from astropy.wcs import WCS, FITSFixedWarning

from ..photometry import MV_SUN
from ._common import (
    _COUNT_UNITS,
    _RATE_UNITS,
    _ZP_KEYS,
    PS1_ASINH_ALPHA,
    TONRY2012_V,
    ObservationInputError,
)

__all__ = ["ps1_linearise", "ps1_compress", "header_zero_point", "read_image", "counts_to_flux",
           "ps1_gr_to_v"]

def ps1_linearise(data, boffset: float, bsoften: float) -> np.ndarray:
    """Linear pixel values of a PS1 asinh-compressed stack.

    L = BOFFSET + BSOFTEN (exp(C/a) - exp(-C/a)) with a = 2.5 log10(e) (Pan-STARRS IPP wiki,
    "asinh_compression").

    Examples
    --------
    >>> float(ps1_linearise(ps1_compress(123.0, 10.0, 5.0), 10.0, 5.0))  # doctest: +ELLIPSIS
    123.0...
    """
    c = np.asarray(data, dtype=np.float64)
    return boffset + 2.0 * bsoften * np.sinh(c / PS1_ASINH_ALPHA)


def ps1_compress(linear, boffset: float, bsoften: float) -> np.ndarray:
    """PS1's asinh compression C = a asinh((L - BOFFSET) / (2 BSOFTEN)); the inverse of
    :func:`ps1_linearise` (for tests and for writing PS1-like files)."""
    return PS1_ASINH_ALPHA * np.arcsinh((np.asarray(linear, dtype=np.float64) - boffset)
                                        / (2.0 * bsoften))


def _hdr_float(header, key, where):
    try:
        value = float(header[key])
    except (TypeError, ValueError):
        raise ObservationInputError(f"{where}: header {key} = {header[key]!r} is not a number")
    if not math.isfinite(value):
        raise ObservationInputError(f"{where}: header {key} = {value!r} is not finite")
    return value


def header_zero_point(header, *, where: str = "image") -> tuple[float | None, str]:
    """Zero point (mag for 1 count of the stored, linearised pixel values) from a header.

    Order: PS1 ``FPA.ZP`` + 2.5 log10(``EXPTIME``); a generic ``MAGZERO``, ``MAGZP``, ``PHOTZP``,
    ``ZEROPT``, ``ZPT`` or ``ZP``; for a PS1 stack (``BSOFTEN`` present) without ``FPA.ZP``,
    25 + 2.5 log10(``EXPTIME``) (STScI PS1 documentation, "PS1 Stack images"). Returns
    ``(None, reason)`` when none applies.

    Examples
    --------
    >>> h = fits.Header({"BSOFTEN": 1.0, "BOFFSET": 0.0, "EXPTIME": 100.0})
    >>> header_zero_point(h)[0]
    30.0
    """
    def exptime():
        if "EXPTIME" not in header:
            raise ObservationInputError(f"{where}: a PS1 zero point needs EXPTIME in the header")
        t = _hdr_float(header, "EXPTIME", where)
        if t <= 0:
            raise ObservationInputError(f"{where}: EXPTIME = {t} must be > 0")
        return t

    if "FPA.ZP" in header:
        zp = _hdr_float(header, "FPA.ZP", where)
        t = exptime()
        return zp + 2.5 * math.log10(t), f"FPA.ZP + 2.5 log10(EXPTIME) = {zp:g} + 2.5 log10({t:g})"
    for key in _ZP_KEYS:
        if key in header:
            return _hdr_float(header, key, where), f"header {key}"
    if "BSOFTEN" in header:
        t = exptime()
        return 25.0 + 2.5 * math.log10(t), f"PS1 stack: 25 + 2.5 log10(EXPTIME = {t:g})"
    return None, f"{where}: no zero point in the header (FPA.ZP+EXPTIME, {', '.join(_ZP_KEYS)})"


def _check_unit(header, where, zero_point_given):
    bunit = header.get("BUNIT")
    if bunit is None or str(bunit).strip() == "":
        return "counts (no BUNIT; assumed)"
    unit = str(bunit).strip().lower()
    if unit in _COUNT_UNITS:
        return str(bunit)
    if unit in _RATE_UNITS:
        if not zero_point_given:
            raise ObservationInputError(
                f"{where}: BUNIT = {bunit!r} is a count rate; pass the zero point for 1 {bunit} "
                "explicitly (zero_point=...), header zero points refer to counts"
            )
        return str(bunit)
    raise ObservationInputError(
        f"{where}: BUNIT = {bunit!r} is not a count unit; expected calibrated counts (counts, ADU, "
        "DN, electrons, or no BUNIT as in PS1 stacks) with a photometric zero point"
    )


def read_image(image, *, hdu=None, zero_point: float | None = None, where: str | None = None):
    """Read an image: linearised data, celestial WCS, header, zero point and notes.

    Parameters
    ----------
    image : path-like, astropy HDUList or image HDU, or (array, header)
        The FITS image.
    hdu : int or str, optional
        HDU to read; default the first with 2-D data.
    zero_point : float, optional
        Zero point (mag for 1 count); default from the header (:func:`header_zero_point`).

    Returns
    -------
    dict
        ``data`` (float64, linear), ``wcs`` (celestial :class:`~astropy.wcs.WCS`), ``header``,
        ``zero_point``, ``zero_point_source``, ``unit``, ``linearised`` (bool), ``name``.

    Raises
    ------
    ObservationInputError
        Unreadable file, no 2-D image, no celestial WCS, a non-count BUNIT, no zero point.
    """
    name = where or (str(image) if isinstance(image, (str, os.PathLike)) else "image")
    data, header = _load_hdu(image, hdu, name)
    data = np.asarray(data, dtype=np.float64)
    if data.ndim > 2:
        data = np.squeeze(data)
    if data.ndim != 2:
        raise ObservationInputError(f"{name}: expected a 2-D image, got data of shape {data.shape}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FITSFixedWarning)
        try:
            wcs = WCS(header)
        except Exception as exc:  # astropy raises several types for broken WCS headers
            raise ObservationInputError(f"{name}: cannot read the WCS: {exc}") from None
    if not wcs.has_celestial:
        raise ObservationInputError(
            f"{name}: the header has no celestial WCS (CTYPE1/2 = "
            f"{header.get('CTYPE1')!r}/{header.get('CTYPE2')!r}); a WCS with RA/Dec axes is "
            "required to cut the field around the centre"
        )
    wcs = wcs.celestial
    if wcs.pixel_shape is None or tuple(wcs.pixel_shape) != data.shape[::-1]:
        wcs.pixel_shape = data.shape[::-1]
    unit = _check_unit(header, name, zero_point is not None)
    linearised = False
    if "BSOFTEN" in header and "BOFFSET" in header:
        data = ps1_linearise(data, _hdr_float(header, "BOFFSET", name),
                             _hdr_float(header, "BSOFTEN", name))
        linearised = True
    if zero_point is not None:
        zp, zp_source = float(zero_point), "given"
        if not math.isfinite(zp):
            raise ObservationInputError(f"zero_point must be finite, got {zero_point!r}")
    else:
        zp, zp_source = header_zero_point(header, where=name)
        if zp is None:
            raise ObservationInputError(f"{zp_source}; pass zero_point=... (mag for 1 count)")
    return dict(data=data, wcs=wcs, header=header, zero_point=zp, zero_point_source=zp_source,
                unit=unit, linearised=linearised, name=name)


def _load_hdu(image, hdu, name):
    if isinstance(image, tuple) and len(image) == 2:
        data, header = image
        header = header if isinstance(header, fits.Header) else fits.Header(header)
        return data, header
    if isinstance(image, (fits.PrimaryHDU, fits.ImageHDU, fits.CompImageHDU)):
        return image.data, image.header
    close = False
    if isinstance(image, fits.HDUList):
        hdul = image
    else:
        path = Path(image)
        if not path.is_file():
            raise ObservationInputError(f"{path}: no such file")
        try:
            hdul = fits.open(path, memmap=False)
        except (OSError, ValueError) as exc:
            raise ObservationInputError(f"{path}: not a readable FITS file: {exc}") from None
        close = True
    try:
        if hdu is not None:
            try:
                h = hdul[hdu]
            except (KeyError, IndexError):
                raise ObservationInputError(f"{name}: no HDU {hdu!r}") from None
            if h.data is None:
                raise ObservationInputError(f"{name}: HDU {hdu!r} holds no data")
            return np.array(h.data), h.header.copy()
        for h in hdul:
            if getattr(h, "data", None) is not None and getattr(h.data, "ndim", 0) >= 2:
                return np.array(h.data), h.header.copy()
        raise ObservationInputError(f"{name}: no HDU with a 2-D image")
    finally:
        if close:
            hdul.close()


# ---------------------------------------------------------------------------------------------
# photometry
# ---------------------------------------------------------------------------------------------


def _flux_per_unit_q(extinction_av: float) -> float:
    """F (Lsun kpc^-2) per unit of q = 10^(-0.4 m): 10^(0.4 (M_V,sun + A_V)) / (4 pi (10 pc)^2)."""
    return 10.0 ** (0.4 * (MV_SUN + extinction_av)) / (4.0 * math.pi * 1e-4)


def counts_to_flux(counts, zero_point: float, *, extinction_av: float = 0.0) -> np.ndarray:
    """Per-pixel V-band flux F in Lsun kpc^-2 from calibrated counts.

    F = 10^(-0.4 (m - M_V,sun - A_V)) / (4 pi (10 pc)^2) with m = ZP - 2.5 log10(counts), written
    linearly in counts (so counts <= 0 map to F <= 0): F = counts 10^(-0.4 (ZP - M_V,sun - A_V))
    / (4 pi 1e-4 kpc^2), M_V,sun = 4.83. No distance enters.

    Examples
    --------
    >>> # a V = 4.83 star at 10 pc is 1 Lsun: F = 1 / (4 pi (0.01 kpc)^2)
    >>> f = counts_to_flux(10 ** (-0.4 * (4.83 - 25.0)), 25.0)
    >>> round(float(f * 4 * np.pi * 0.01 ** 2), 10)
    1.0
    """
    av = float(extinction_av)
    if not math.isfinite(av):
        raise ObservationInputError(f"extinction_av must be finite, got {extinction_av!r}")
    return np.asarray(counts, dtype=np.float64) * 10.0 ** (-0.4 * zero_point) * _flux_per_unit_q(av)


def ps1_gr_to_v(g, r, *, kind: str = "linear"):
    """Johnson V from PS1 g and r magnitudes, Tonry et al. (2012, ApJ 750, 99) Table 6.

    ``"linear"``: V = r + 0.006 + 0.474 (g - r); ``"quadratic"``: V = r + 0.005 + 0.462 (g - r)
    + 0.013 (g - r)^2; both with an rms of 0.012 mag. (The paper used Kostov & Bonev 2018, whose
    coefficients we could not obtain; see the module docstring.)

    Examples
    --------
    >>> round(float(ps1_gr_to_v(15.5, 15.0)), 3)
    15.243
    """
    if kind not in TONRY2012_V:
        raise ObservationInputError(f"kind must be one of {sorted(TONRY2012_V)}, got {kind!r}")
    a0, a1, a2 = TONRY2012_V[kind]["coefficients"]
    g = np.asarray(g, dtype=np.float64)
    r = np.asarray(r, dtype=np.float64)
    x = g - r
    return r + a0 + a1 * x + a2 * x * x
