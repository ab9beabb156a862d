"""Real images for π-DOC: FITS/WCS cut-outs, PS1 g, r -> V, the literature catalogue (paper Sect. 5).

An image becomes a π-DOC flux map in the units of the mock observations (DESIGN.md): log10 of the
per-pixel V-band flux F = L_V / (4 pi d^2) in Lsun kpc^-2 on 160 x 160 pixels of 0.25" (40" x 40"),
Gaussian-smoothed with sigma = 4 px, floored at :data:`pidoc_core.imager.FLUX_FLOOR`.

The steps of :func:`flux_map_from_image` (one calibrated image) and :func:`flux_map_from_ps1` (PS1
g and r stacks), in order:

1. Read the FITS image (the first HDU with 2-D data unless ``hdu`` is given) and its celestial WCS;
   no celestial WCS is an :class:`ObservationInputError`. ``BUNIT`` must be a count-like unit
   (counts, ADU, DN, electrons) or absent (then counts are assumed, as for PS1 stacks, which carry
   no ``BUNIT``); rates (counts/s) are accepted only with an explicit zero point; anything else
   (Jy, MJy/sr, mag, erg/s/cm2/A...) is refused.
2. PS1 stacks store asinh-compressed pixel values; when the header has ``BSOFTEN`` and ``BOFFSET``
   they are linearised with the PS1 IPP formula (Pan-STARRS IPP wiki, "asinh_compression",
   http://svn.pan-starrs.ifa.hawaii.edu/trac/ipp/wiki/asinh_compression)::

       L = BOFFSET + BSOFTEN * (exp(C / a) - exp(-C / a)) = BOFFSET + 2 BSOFTEN sinh(C / a),
       a = 2.5 log10(e) = 1.0857362,

   the inverse of their compression C = a asinh((L - BOFFSET) / (2 BSOFTEN)). (``BSCALE``/``BZERO``
   are applied by astropy when the file is read.)
3. Optional background subtraction, off by default (PS1 stacks are sky-subtracted, and a 40" field
   of a globular cluster holds no sky): ``"median"``, the 3-sigma-clipped median of the whole image
   outside ``background_exclude_arcsec`` of the centre (:func:`astropy.stats.sigma_clipped_stats`),
   or ``"mesh"``, a :class:`photutils.background.Background2D` map (median estimator, boxes of
   ``background_box_px``) with the same central region masked.
4. Masked pixels: NaN/inf pixels in the input region that is resampled (a square of side
   sqrt(2) x 48" around the centre) are *interpolated* from their neighbours with
   :func:`astropy.convolution.interpolate_replace_nans` (Gaussian kernel of sigma 1 input pixel,
   widened until every hole is filled) when they are at most ``max_masked_fraction`` (default 1 %)
   of that region; more is refused with an :class:`ObservationInputError`. The number interpolated
   is recorded in the attributes ``masked_pixels`` and ``masked_fraction``.
5. Resample to a north-up, east-left TAN grid of 0.25" pixels centred on the centre, padded by the
   smoothing kernel's radius (16 px) on each side, with :func:`reproject.reproject_exact`
   (spherical-polygon overlap). ``reproject_exact`` returns the overlap-weighted mean of the input
   pixels, i.e. it conserves surface brightness; multiplying by the ratio of output to input pixel
   areas (:func:`astropy.wcs.utils.proj_plane_pixel_area`) makes it conserve counts (flux). The
   40" field must lie entirely inside the image; a centre off the image is refused.
6. Counts -> flux. With the zero point ZP (magnitudes for 1 count), a pixel of ``counts`` has
   m = ZP - 2.5 log10(counts) and, for M_V,sun = 4.83 (:data:`pidoc_core.photometry.MV_SUN`)::

       L / Lsun = 10^(-0.4 (m - M_V,sun)) (d / 10 pc)^2, so
       F = L / (4 pi d^2) = 10^(-0.4 (m - M_V,sun)) / (4 pi (10 pc)^2)      [Lsun kpc^-2]
         = counts 10^(-0.4 (ZP - M_V,sun - A_V)) / (4 pi 1e-4 kpc^2),

   independent of the distance (the flux map is a flux, not a luminosity). ((10 pc)^2 divides:
   a V = M_V,sun star at 10 pc has F = 1 Lsun / (4 pi (0.01 kpc)^2).) The linear form is used,
   so pixels with counts <= 0 (sky noise) need no logarithm; A_V (optional) de-reddens.
   The zero point comes from the ``zero_point`` argument or the header (:func:`header_zero_point`):
   PS1 stacks are rescaled to ZP = 25 + 2.5 log10(EXPTIME) (STScI PS1 archive documentation,
   "PS1 Stack images", Photometric calibration; ``HIERARCH FPA.ZP`` = 25 holds the 25, so
   ZP = FPA.ZP + 2.5 log10(EXPTIME)); otherwise ``MAGZERO``/``MAGZP``/``PHOTZP``/``ZEROPT``/``ZPT``.
7. Smooth with the mocks' Gaussian (sigma = 4 px, truncated at 4 sigma, astropy
   ``Gaussian2DKernel`` oversampled x10 and normalised, as in :mod:`pidoc_core.imager`) with
   :func:`astropy.convolution.convolve_fft` on the padded grid, crop the 160 x 160 field and take
   log10 with :data:`~pidoc_core.imager.FLUX_FLOOR`.

PS1 g, r -> V: the paper uses Kostov & Bonev (2018, Bulgarian Astron. J. 28, 3; arXiv:1706.06147).
Their coefficients could not be found in the sources available to us, so this module uses the
PS1 -> Johnson V transformation of **Tonry et al. (2012, ApJ 750, 99), Table 6** instead::

    linear    (default):  V - r_P1 = 0.006 + 0.474 (g - r)_P1                    (+- 0.012 mag)
    quadratic          :  V - r_P1 = 0.005 + 0.462 (g - r)_P1 + 0.013 (g - r)_P1^2  (+- 0.012)

applied per pixel with the colour (g - r) of the smoothed g and r maps (see
:func:`flux_map_from_ps1`).

Prediction (:func:`predict_image`, :func:`predict_flux_map`) runs π-DOC on the flux map and
reports the mass map, the mass in the field, M/L_V (with the distance given, from the catalogue, or
π-DOC's own), age and distance, and :func:`range_check`'s verdict: whether the field's luminosity
and the image statistics lie inside the training set's range (the paper's Fig. 10).

The literature table (:func:`load_catalogue`, :func:`cluster`) is the paper's Table 3 with Harris
(1996, 2010 edition) centre coordinates and E(B-V), shipped as
``pidoc_core/data/paper_table3.ecsv``; its columns carry units and per-column sources.
"""

from __future__ import annotations

import argparse
import base64
import html
import io
import math
import os
import sys
import warnings
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import numpy as np
import xarray as xr
from astropy import units as u
from astropy.coordinates import SkyCoord
from astropy.io import fits
from astropy.table import Table
from astropy.wcs import WCS, FITSFixedWarning
from astropy.wcs.utils import proj_plane_pixel_area, proj_plane_pixel_scales

from ._atomic import atomic_path
from .imager import FLUX_FLOOR, MASS_FLOOR
from .photometry import MV_SUN

__all__ = [
    "ObservationInputError",
    "RangeWarning",
    "RangeVerdict",
    "FOV_ARCSEC",
    "PIXEL_ARCSEC",
    "N_PIXELS",
    "SMOOTH_SIGMA_PX",
    "PS1_ASINH_ALPHA",
    "TONRY2012_V",
    "PAPER_LUMINOSITY_RANGE",
    "CATALOGUE_PATH",
    "load_catalogue",
    "cluster",
    "resolve_centre",
    "read_image",
    "ps1_linearise",
    "ps1_compress",
    "header_zero_point",
    "counts_to_flux",
    "ps1_gr_to_v",
    "target_wcs",
    "flux_map_from_image",
    "flux_map_from_ps1",
    "field_luminosity",
    "check_luminosity",
    "range_check",
    "predict_flux_map",
    "predict_image",
    "write_netcdf",
    "write_figure",
    "add_predict_arguments",
    "run_predict",
]

#: Side of the field of view, arcsec.
FOV_ARCSEC = 40.0
#: Pixel side of the flux map, arcsec.
PIXEL_ARCSEC = 0.25
#: Pixels along each side of the flux map.
N_PIXELS = 160
#: Gaussian smoothing of the mocks, pixels.
SMOOTH_SIGMA_PX = 4.0
#: PS1 asinh compression constant a = 2.5 log10(e) (Pan-STARRS IPP wiki, asinh_compression).
PS1_ASINH_ALPHA = 2.5 * math.log10(math.e)
#: Tonry et al. (2012, ApJ 750, 99) Table 6: V - r_P1 = A0 + A1 x + A2 x^2, x = (g - r)_P1, with
#: the rms scatter (mag) of each fit.
TONRY2012_V = {
    "linear": {"coefficients": (0.006, 0.474, 0.0), "rms_mag": 0.012},
    "quadratic": {"coefficients": (0.005, 0.462, 0.013), "rms_mag": 0.012},
}
#: Colour range (g - r, mag) to which per-pixel colours are clipped before the transformation, so
#: that noise in faint pixels cannot extrapolate the fit (our choice; the stellar colours of old
#: globular clusters lie within it).
COLOUR_CLIP_MAG = (-0.5, 2.0)
#: The paper's statement of its training set's field luminosity (Sect. 5, Fig. 10): for ages
#: > 11 Gyr and distances 10-40 kpc the field luminosity lies in ~300-5000 Lsun (mean 1754 Lsun).
PAPER_LUMINOSITY_RANGE = {
    "luminosity_v_lsun": (300.0, 5000.0),
    "distance_kpc": (10.0, 40.0),
    "age_min_gyr": 11.0,
    "mean_lsun": 1754.0,
    "source": "Chardin & Bianchini (2021) Sect. 5 / Fig. 10: ~300-5000 Lsun for ages > 11 Gyr "
              "at 10-40 kpc",
}
#: The shipped catalogue (paper Table 3 + Harris 2010 coordinates).
CATALOGUE_PATH = Path(__file__).resolve().parent / "data" / "paper_table3.ecsv"

_SMOOTH_PAD_PX = int(math.ceil(4.0 * SMOOTH_SIGMA_PX))
_COUNT_UNITS = {"count", "counts", "ct", "cts", "adu", "adus", "dn", "data number", "data numbers",
                "electron", "electrons", "e-", "e"}
_RATE_UNITS = {f"{a}{sep}s" for a in _COUNT_UNITS for sep in ("/", " / ", "/ ", " /")} | {
    f"{a} s-1" for a in _COUNT_UNITS} | {f"{a} s**-1" for a in _COUNT_UNITS} | {
    f"{a}/sec" for a in _COUNT_UNITS}
_ZP_KEYS = ("MAGZERO", "MAGZP", "PHOTZP", "ZEROPT", "ZPT", "ZP")


class ObservationInputError(ValueError):
    """An image, header, centre or option that the observation pipeline cannot use; says why."""


class RangeWarning(UserWarning):
    """A field lies outside the range of π-DOC's training set: predictions are extrapolations."""


# ---------------------------------------------------------------------------------------------
# the literature catalogue
# ---------------------------------------------------------------------------------------------


def _norm_name(name: str) -> str:
    s = "".join(str(name).lower().split())
    s = s.replace("palomar", "pal").replace("messier", "m")
    return s


def load_catalogue() -> Table:
    """The paper's Table 3 (17 globular clusters) with centre coordinates, as an astropy Table.

    Columns (units in the table): ``name``, ``alt_name``, ``ra``, ``dec`` (deg, J2000, Harris 2010),
    ``ra_hms``, ``dec_dms`` (as printed by Harris), ``l_fov`` (Lsun, the paper's FoV luminosity),
    ``distance`` (kpc), ``r_c``, ``r_h`` (arcmin), ``fe_h`` (dex) (Harris 2010), ``age`` (Gyr,
    VandenBerg et al. 2013; masked where the paper has none), ``ml_v``, ``ml_v_err`` (Msun/Lsun,
    Baumgardt et al. 2020), ``pidoc_distance`` (kpc), ``pidoc_age`` (Gyr), ``pidoc_ml_v``
    (Msun/Lsun), ``pidoc_log_mass`` (dex(Msun)) (π-DOC v0.1 as published), ``ebv`` (mag, Harris
    2010) and ``coord_ref``. Each column's ``description`` names its source; ``meta`` holds the
    references.

    Examples
    --------
    >>> t = load_catalogue()
    >>> len(t), t["distance"].unit
    (17, Unit("kpc"))
    """
    ref = resources.files("pidoc_core").joinpath("data", "paper_table3.ecsv")
    with resources.as_file(ref) as path:
        return Table.read(path, format="ascii.ecsv")


def cluster(name: str):
    """One row of :func:`load_catalogue` by name: ``"NGC 5053"``, ``"ngc5053"``, ``"Palomar 11"``,
    ``"M 68"``...

    Raises
    ------
    ObservationInputError
        For a name not in the catalogue, listing the names it holds.

    Examples
    --------
    >>> row = cluster("ngc5053")
    >>> str(row["name"]), float(row["distance"])
    ('NGC 5053', 17.4)
    """
    table = load_catalogue()
    key = _norm_name(name)
    for row in table:
        if key in (_norm_name(row["name"]), _norm_name(row["alt_name"] or "-")):
            return row
    raise ObservationInputError(
        f"cluster {name!r} is not in the catalogue {CATALOGUE_PATH.name}; it holds "
        f"{', '.join(table['name'])}"
    )


def resolve_centre(centre=None, cluster_name: str | None = None) -> tuple[SkyCoord, str | None]:
    """(SkyCoord, cluster name or None) from a centre or a catalogue name (exactly one).

    ``centre`` may be a SkyCoord, or a pair (RA, Dec): numbers in degrees, Quantities, or strings
    (sexagesimal RA in hours when it has ':' or 'h', e.g. ``("13:16:27.09", "+17:42:00.9")``).
    """
    if (centre is None) == (cluster_name is None):
        raise ObservationInputError("give exactly one of a centre (RA, Dec) or a cluster name")
    if cluster_name is not None:
        row = cluster(cluster_name)
        return SkyCoord(float(row["ra"]) * u.deg, float(row["dec"]) * u.deg, frame="icrs"), str(
            row["name"])
    if isinstance(centre, SkyCoord):
        return centre.icrs if centre.frame.name != "icrs" else centre, None
    try:
        ra, dec = centre
    except (TypeError, ValueError):
        raise ObservationInputError(
            f"centre must be a SkyCoord or a pair (RA, Dec), got {centre!r}") from None
    try:
        if isinstance(ra, str) and any(c in ra for c in ":hH "):
            return SkyCoord(ra, str(dec), unit=(u.hourangle, u.deg), frame="icrs"), None
        ra = ra if isinstance(ra, u.Quantity) else float(ra) * u.deg
        dec = dec if isinstance(dec, u.Quantity) else float(dec) * u.deg
        return SkyCoord(ra, dec, frame="icrs"), None
    except (ValueError, TypeError, u.UnitsError) as exc:
        raise ObservationInputError(f"cannot read centre {centre!r}: {exc}") from None


# ---------------------------------------------------------------------------------------------
# reading images
# ---------------------------------------------------------------------------------------------


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


# ---------------------------------------------------------------------------------------------
# geometry and resampling
# ---------------------------------------------------------------------------------------------


def target_wcs(centre: SkyCoord, *, n_pixels: int = N_PIXELS, pixel_arcsec: float = PIXEL_ARCSEC
               ) -> WCS:
    """North-up, east-left TAN WCS of ``n_pixels`` square pixels of ``pixel_arcsec`` centred on
    ``centre`` (the field centre falls on the corner shared by the four central pixels, as in the
    mocks, whose pixel centres are at (i + 0.5) pixel - fov / 2)."""
    w = WCS(naxis=2)
    w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    w.wcs.crval = [centre.icrs.ra.deg, centre.icrs.dec.deg]
    w.wcs.crpix = [(n_pixels + 1) / 2.0, (n_pixels + 1) / 2.0]
    w.wcs.cdelt = [-pixel_arcsec / 3600.0, pixel_arcsec / 3600.0]
    w.wcs.cunit = ["deg", "deg"]
    w.wcs.radesys = "ICRS"
    w.pixel_shape = (n_pixels, n_pixels)
    return w


def _subtract_background(data, wcs, centre, method, exclude_arcsec, box_px, where):
    if method is None or method == "none":
        return data, {"background": "none"}
    yy, xx = np.indices(data.shape)
    cx, cy = wcs.world_to_pixel(centre)
    scale = float(np.mean(proj_plane_pixel_scales(wcs))) * 3600.0
    near = (xx - cx) ** 2 + (yy - cy) ** 2 <= (exclude_arcsec / scale) ** 2
    mask = near | ~np.isfinite(data)
    n_free = int((~mask).sum())
    if n_free < 1000:
        raise ObservationInputError(
            f"{where}: background '{method}' needs >= 1000 pixels beyond "
            f"{exclude_arcsec:g}\" of the centre, the image has {n_free}; use a larger image, a "
            "smaller background_exclude_arcsec, or no background subtraction"
        )
    if method == "median":
        from astropy.stats import sigma_clipped_stats

        _, median, _ = sigma_clipped_stats(data, mask=mask, sigma=3.0, maxiters=10)
        return data - median, {"background": "median", "background_level": float(median)}
    if method == "mesh":
        from photutils.background import Background2D, MedianBackground

        try:
            bkg = Background2D(data, box_size=int(box_px), filter_size=3, mask=mask,
                               bkg_estimator=MedianBackground())
        except ValueError as exc:
            raise ObservationInputError(f"{where}: Background2D failed: {exc}") from None
        return data - bkg.background, {"background": f"mesh ({int(box_px)} px boxes)",
                                       "background_level": float(bkg.background_median)}
    raise ObservationInputError(f"background must be None, 'median' or 'mesh', got {method!r}")


def _fill_masked(cut, max_fraction, where):
    from astropy.convolution import Gaussian2DKernel, interpolate_replace_nans

    bad = ~np.isfinite(cut)
    n_bad = int(bad.sum())
    frac = n_bad / bad.size
    if n_bad == 0:
        return cut, 0, 0.0
    if frac > max_fraction:
        raise ObservationInputError(
            f"{where}: {n_bad} of {bad.size} pixels ({100 * frac:.2f} %) around the centre are "
            f"NaN/inf (masked); at most {100 * max_fraction:g} % are interpolated "
            "(max_masked_fraction)"
        )
    filled = np.where(bad, np.nan, cut)
    sigma = 1.0
    while np.isnan(filled).any():
        if sigma > 64:
            raise ObservationInputError(f"{where}: masked region too large to interpolate")
        with warnings.catch_warnings():  # large holes: filled over the next, wider passes
            warnings.simplefilter("ignore")
            filled = interpolate_replace_nans(filled, Gaussian2DKernel(x_stddev=sigma))
        sigma *= 2.0
    return filled, n_bad, frac


def _resample_counts(img, centre, *, max_masked_fraction, background, background_exclude_arcsec,
                     background_box_px):
    """Counts on the padded 0.25" target grid (side N_PIXELS + 2 pad) and notes."""
    from astropy.nddata import Cutout2D
    from astropy.nddata.utils import NoOverlapError
    from reproject import reproject_exact

    data, wcs, where = img["data"], img["wcs"], img["name"]
    ny, nx = data.shape
    try:
        cx, cy = wcs.world_to_pixel(centre)
    except Exception as exc:  # noqa: BLE001 - WCS transformation errors vary
        raise ObservationInputError(f"{where}: cannot place the centre on the image: {exc}")
    cx, cy = float(cx), float(cy)
    if not (math.isfinite(cx) and math.isfinite(cy)) or not (
            -0.5 <= cx <= nx - 0.5 and -0.5 <= cy <= ny - 0.5):
        raise ObservationInputError(
            f"{where}: the centre RA={centre.ra.deg:.6f} Dec={centre.dec.deg:.6f} deg falls at "
            f"pixel (x={cx:.1f}, y={cy:.1f}), outside the {nx} x {ny} image"
        )
    data, notes = _subtract_background(data, wcs, centre, background, background_exclude_arcsec,
                                       background_box_px, where)
    n_out = N_PIXELS + 2 * _SMOOTH_PAD_PX
    in_scale = float(np.min(proj_plane_pixel_scales(wcs))) * 3600.0
    side = int(math.ceil(n_out * PIXEL_ARCSEC * math.sqrt(2.0) / in_scale)) + 6
    try:
        cut = Cutout2D(data, (cx, cy), (side, side), wcs=wcs, mode="trim", copy=True)
    except NoOverlapError:
        raise ObservationInputError(f"{where}: the field does not overlap the image") from None
    values, n_bad, frac = _fill_masked(cut.data, max_masked_fraction, where)
    out_wcs = target_wcs(centre, n_pixels=n_out)
    sb, footprint = reproject_exact((values, cut.wcs), out_wcs, shape_out=(n_out, n_out))
    area_ratio = proj_plane_pixel_area(out_wcs) / proj_plane_pixel_area(cut.wcs)
    counts = np.where(footprint > 0, np.nan_to_num(sb) * area_ratio, 0.0)
    inner = footprint[_SMOOTH_PAD_PX:-_SMOOTH_PAD_PX, _SMOOTH_PAD_PX:-_SMOOTH_PAD_PX]
    if inner.min() < 0.999:
        frac_out = float(np.mean(inner < 0.999))
        raise ObservationInputError(
            f"{where}: the 40\" field around RA={centre.ra.deg:.6f} Dec={centre.dec.deg:.6f} "
            f"is not entirely inside the image ({100 * frac_out:.1f} % of its pixels are off the "
            "image edge); use a larger cut-out"
        )
    notes.update(masked_pixels=n_bad, masked_fraction=float(frac),
                 padding_coverage=float(np.mean(np.clip(footprint, 0, 1))),
                 input_pixel_arcsec=in_scale)
    return counts, notes


def _smoothing_kernel():
    from astropy.convolution import Gaussian2DKernel

    size = 2 * _SMOOTH_PAD_PX + 1
    k = Gaussian2DKernel(x_stddev=SMOOTH_SIGMA_PX, x_size=size, y_size=size, mode="oversample",
                         factor=10).array
    return k / k.sum()


def _smooth_crop(padded):
    """Gaussian-smooth a padded linear map and crop the field: (N_PIXELS, N_PIXELS)."""
    from astropy.convolution import convolve_fft

    sm = convolve_fft(padded, _smoothing_kernel(), boundary="fill", fill_value=0.0,
                      normalize_kernel=False, nan_treatment="fill")
    p = _SMOOTH_PAD_PX
    return sm[p:-p, p:-p]


def _flux_dataset(flux_lin, centre, cluster_name, attrs):
    coords = (np.arange(N_PIXELS) + 0.5) * PIXEL_ARCSEC - FOV_ARCSEC / 2.0
    field_flux = float(flux_lin.sum())
    base = {
        "title": "pi-DOC flux map of an observed image",
        "centre_ra_deg": float(centre.ra.deg),
        "centre_dec_deg": float(centre.dec.deg),
        "cluster": cluster_name or "",
        "field_flux_lsun_kpc2": field_flux,
        "flux_floor_lsun_kpc2": FLUX_FLOOR,
        "floored_pixels": int(np.sum(flux_lin <= FLUX_FLOOR)),
        "fov_arcsec": FOV_ARCSEC,
        "pixel_arcsec": PIXEL_ARCSEC,
        "smooth_sigma_px": SMOOTH_SIGMA_PX,
        "orientation": "north up (+y), east left (-x); TAN projection about the centre",
        "resampling": "reproject_exact (spherical polygon overlap) x output/input pixel area: "
                      "flux-conserving",
        "mv_sun": MV_SUN,
    }
    base.update(attrs)
    return xr.Dataset(
        {"flux": (("y", "x"), np.log10(np.maximum(flux_lin, FLUX_FLOOR)).astype(np.float32), {
            "long_name": "log10 V-band flux per pixel (Gaussian smoothing sigma 4 px)",
            "units": "log10(Lsun kpc-2)"})},
        coords={
            "y": ("y", coords, {"units": "arcsec", "long_name": "offset from field centre, north"}),
            "x": ("x", coords, {"units": "arcsec", "long_name": "offset from field centre, west"}),
        },
        attrs=base,
    )


def _check_fraction(value, name):
    value = float(value)
    if not 0.0 <= value <= 1.0:
        raise ObservationInputError(f"{name} must be in [0, 1], got {value!r}")
    return value


def flux_map_from_image(image, *, centre=None, cluster: str | None = None,
                        zero_point: float | None = None, extinction_av: float = 0.0,
                        background: str | None = None, background_exclude_arcsec: float = 60.0,
                        background_box_px: int = 64, max_masked_fraction: float = 0.01,
                        hdu=None) -> xr.Dataset:
    """π-DOC flux map of the 40" field around a centre of one calibrated V-band image.

    Parameters
    ----------
    image : path-like, HDUList, image HDU or (array, header)
        FITS image in counts with a celestial WCS (see :func:`read_image`).
    centre : SkyCoord or (RA, Dec), optional
        Field centre (degrees or sexagesimal strings); or ``cluster``.
    cluster : str, optional
        A catalogue name (:func:`cluster`), whose Harris (2010) centre is used.
    zero_point : float, optional
        Magnitude of 1 count; default from the header (:func:`header_zero_point`).
    extinction_av : float
        V-band extinction A_V, mag, removed from the flux (default 0).
    background : {None, "median", "mesh"}
        Background subtraction (module docstring, step 3); default none.
    background_exclude_arcsec, background_box_px
        Radius around the centre left out of the background estimate (arcsec); box size of the
        ``"mesh"`` estimate (input pixels).
    max_masked_fraction : float
        Largest fraction of NaN/inf pixels that is interpolated; more raises.
    hdu : int or str, optional
        HDU to read.

    Returns
    -------
    xarray.Dataset
        ``flux`` (y, x): log10(F / (Lsun kpc^-2)) as in the mocks, float32; coordinates in arcsec
        from the centre (``x`` towards the west, ``y`` north). Attributes: the linear total
        ``field_flux_lsun_kpc2``, the zero point and its source, masking and background notes.

    Raises
    ------
    ObservationInputError
        See :func:`read_image`; centre off the image; field not inside the image; too many
        masked pixels.
    """
    sky, name = resolve_centre(centre, cluster)
    _check_fraction(max_masked_fraction, "max_masked_fraction")
    img = read_image(image, hdu=hdu, zero_point=zero_point)
    counts, notes = _resample_counts(img, sky, max_masked_fraction=max_masked_fraction,
                                     background=background,
                                     background_exclude_arcsec=background_exclude_arcsec,
                                     background_box_px=background_box_px)
    flux = _smooth_crop(counts_to_flux(counts, img["zero_point"], extinction_av=extinction_av))
    attrs = {
        "source_image": img["name"],
        "bands": "V",
        "zero_point_mag": img["zero_point"],
        "zero_point_source": img["zero_point_source"],
        "input_unit": img["unit"],
        "ps1_asinh_linearised": int(img["linearised"]),
        "extinction_av_mag": float(extinction_av),
        **notes,
    }
    return _flux_dataset(flux, sky, name, attrs)


def flux_map_from_ps1(g, r, *, centre=None, cluster: str | None = None,
                      zero_point_g: float | None = None, zero_point_r: float | None = None,
                      extinction_av: float = 0.0, transformation: str = "linear",
                      background: str | None = None, background_exclude_arcsec: float = 60.0,
                      background_box_px: int = 64, max_masked_fraction: float = 0.01,
                      hdu=None) -> xr.Dataset:
    """π-DOC flux map from PS1 g and r stacks, transformed to V per pixel.

    Each band is read, linearised, resampled and converted to q_b = counts 10^(-0.4 ZP_b) =
    10^(-0.4 m_b) per pixel as in :func:`flux_map_from_image`. The colour c = (g - r) of each
    pixel is taken from the sigma = 4 px smoothed q_g and q_r (c = -2.5 log10(S q_g / S q_r),
    clipped to [-0.5, 2.0] mag; where either smoothed band is <= 0 the whole field's colour is
    used), and V follows Tonry et al. (2012) Table 6 (:func:`ps1_gr_to_v`):
    q_V = q_r 10^(-0.4 (A0 + A1 c + A2 c^2)); then F = q_V 10^(0.4 (M_V,sun + A_V)) /
    (4 pi (10 pc)^2) is smoothed and logged like a single image. Kostov & Bonev (2018), which the
    paper used, could not be obtained; the Tonry et al. relation replaces it.

    Parameters
    ----------
    g, r : path-like, HDUList, image HDU or (array, header)
        The PS1 g and r stacks (asinh-compressed or linear).
    transformation : {"linear", "quadratic"}
        Which Tonry et al. (2012) Table 6 fit.
    zero_point_g, zero_point_r : float, optional
        Zero points; default from the headers.
    centre, cluster, extinction_av, background, background_exclude_arcsec, background_box_px,
    max_masked_fraction, hdu
        As for :func:`flux_map_from_image`.

    Returns
    -------
    xarray.Dataset
        As :func:`flux_map_from_image`, plus ``gr_colour`` (y, x), the per-pixel (g - r) in mag.
    """
    if transformation not in TONRY2012_V:
        raise ObservationInputError(
            f"transformation must be one of {sorted(TONRY2012_V)}, got {transformation!r}")
    sky, name = resolve_centre(centre, cluster)
    _check_fraction(max_masked_fraction, "max_masked_fraction")
    q, notes, imgs = {}, {}, {}
    for band, image, zp in (("g", g, zero_point_g), ("r", r, zero_point_r)):
        img = read_image(image, hdu=hdu, zero_point=zp,
                         where=f"{band} image {image}" if isinstance(image, (str, os.PathLike))
                         else f"{band} image")
        counts, n = _resample_counts(img, sky, max_masked_fraction=max_masked_fraction,
                                     background=background,
                                     background_exclude_arcsec=background_exclude_arcsec,
                                     background_box_px=background_box_px)
        q[band] = counts * 10.0 ** (-0.4 * img["zero_point"])
        imgs[band] = img
        notes.update({f"{k}_{band}": v for k, v in n.items()})
    from astropy.convolution import convolve_fft

    kernel = _smoothing_kernel()
    sg = convolve_fft(q["g"], kernel, boundary="fill", fill_value=0.0, normalize_kernel=False)
    sr = convolve_fft(q["r"], kernel, boundary="fill", fill_value=0.0, normalize_kernel=False)
    tg, tr = float(q["g"].sum()), float(q["r"].sum())
    if tg <= 0 or tr <= 0:
        raise ObservationInputError(
            f"the field's total g ({tg:.3g}) or r ({tr:.3g}) flux is not positive; cannot form a "
            "colour (check the zero points and the background)")
    field_colour = -2.5 * math.log10(tg / tr)
    good = (sg > 0) & (sr > 0)
    colour = np.full(sg.shape, field_colour)
    colour[good] = -2.5 * np.log10(sg[good] / sr[good])
    colour = np.clip(colour, *COLOUR_CLIP_MAG)
    a0, a1, a2 = TONRY2012_V[transformation]["coefficients"]
    q_v = q["r"] * 10.0 ** (-0.4 * (a0 + a1 * colour + a2 * colour * colour))
    av = float(extinction_av)
    if not math.isfinite(av):
        raise ObservationInputError(f"extinction_av must be finite, got {extinction_av!r}")
    flux = _smooth_crop(q_v * _flux_per_unit_q(av))
    p = _SMOOTH_PAD_PX
    attrs = {
        "source_image": f"g: {imgs['g']['name']}; r: {imgs['r']['name']}",
        "bands": "PS1 g, r -> V",
        "v_transformation": f"Tonry et al. (2012, ApJ 750, 99) Table 6 {transformation}: "
                            f"V - r = {a0} + {a1} (g-r) + {a2} (g-r)^2 (rms 0.012 mag); used "
                            "instead of Kostov & Bonev (2018), whose coefficients were not "
                            "available",
        "zero_point_g_mag": imgs["g"]["zero_point"],
        "zero_point_r_mag": imgs["r"]["zero_point"],
        "zero_point_source_g": imgs["g"]["zero_point_source"],
        "zero_point_source_r": imgs["r"]["zero_point_source"],
        "field_gr_colour_mag": field_colour,
        "extinction_av_mag": av,
        **notes,
    }
    ds = _flux_dataset(flux, sky, name, attrs)
    ds["gr_colour"] = (("y", "x"), colour[p:-p, p:-p].astype(np.float32), {
        "long_name": "per-pixel (g - r) colour of the smoothed PS1 maps", "units": "mag"})
    return ds


# ---------------------------------------------------------------------------------------------
# the training-set range (paper Fig. 10)
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RangeVerdict:
    """Whether a field lies inside π-DOC's training range.

    Attributes
    ----------
    inside : bool
        True when no check failed.
    reasons : list of str
        One sentence per failed check (empty when inside).
    notes : list of str
        Caveats that are not failures (e.g. which reference range was used).
    luminosity_v_lsun : float
        V-band luminosity in the field at ``distance_kpc``, Lsun.
    luminosity_range_lsun : (float, float)
        The reference range used.
    distance_kpc : float
        Distance used, kpc.
    reference : str
        Where the luminosity range comes from.
    """

    inside: bool
    reasons: list = field(default_factory=list)
    notes: list = field(default_factory=list)
    luminosity_v_lsun: float = math.nan
    luminosity_range_lsun: tuple = (math.nan, math.nan)
    distance_kpc: float = math.nan
    reference: str = ""

    @property
    def verdict(self) -> str:
        """``"inside"`` or ``"outside"`` the training range."""
        return "inside" if self.inside else "outside"

    def __str__(self):
        head = f"{self.verdict} the training range (L_FoV = {self.luminosity_v_lsun:.4g} Lsun at " \
               f"{self.distance_kpc:g} kpc)"
        return "; ".join([head, *self.reasons])


def _luminosity_reference(model):
    prov = getattr(model, "provenance", None) or {}
    ref = prov.get("training_luminosity_range")
    if ref is not None:
        if isinstance(ref, dict):
            lum = ref.get("luminosity_v_lsun", ref.get("range"))
            dist = ref.get("distance_kpc")
            age_min = ref.get("age_min_gyr")
        else:
            lum, dist, age_min = ref, None, None
        try:
            lo, hi = (float(v) for v in lum)
        except (TypeError, ValueError):
            lo = hi = None
        if lo is not None:
            return dict(luminosity_v_lsun=(lo, hi),
                        distance_kpc=None if dist is None else tuple(float(v) for v in dist),
                        age_min_gyr=age_min, source="model provenance training_luminosity_range")
    return dict(PAPER_LUMINOSITY_RANGE)


def check_luminosity(luminosity_v_lsun: float, distance_kpc: float, *, model=None,
                     age_gyr: float | None = None) -> RangeVerdict:
    """Compare a field luminosity (Lsun, at ``distance_kpc``) with the training set's range.

    The range is the model's ``provenance["training_luminosity_range"]`` when present (a pair of
    Lsun, or a dict with ``luminosity_v_lsun`` and optionally ``distance_kpc``, ``age_min_gyr``),
    else the paper's statement (:data:`PAPER_LUMINOSITY_RANGE`: ~300-5000 Lsun for ages > 11 Gyr
    at 10-40 kpc), with a note saying so. The distance is compared with the model's
    ``provenance["training_grid"]`` distances (or :data:`pidoc_core.exploration.TRAINING_GRID`).

    Examples
    --------
    >>> check_luminosity(341.23, 17.4).inside, check_luminosity(5224.34, 10.3).inside
    (True, False)
    """
    from .exploration import TRAINING_GRID

    lum = float(luminosity_v_lsun)
    d = float(distance_kpc)
    reasons, notes = [], []
    prov = getattr(model, "provenance", None) or {}
    grid = {**TRAINING_GRID, **(prov.get("training_grid") or {})}
    d_lo, d_hi = min(grid["distance_kpc"]), max(grid["distance_kpc"])
    if not (math.isfinite(d) and d > 0):
        reasons.append(f"distance {d!r} kpc is not a positive number")
    elif not d_lo <= d <= d_hi:
        reasons.append(f"distance {d:g} kpc is outside the trained {d_lo:g}-{d_hi:g} kpc")
    ref = _luminosity_reference(model)
    lo, hi = ref["luminosity_v_lsun"]
    if ref["source"] == PAPER_LUMINOSITY_RANGE["source"]:
        notes.append("the model records no training_luminosity_range; using the paper's range "
                     f"{lo:g}-{hi:g} Lsun (ages > 11 Gyr, 10-40 kpc; Sect. 5, Fig. 10)")
    if ref.get("distance_kpc") is not None:
        rd_lo, rd_hi = ref["distance_kpc"]
        if math.isfinite(d) and not rd_lo <= d <= rd_hi:
            notes.append(f"the luminosity range is stated for {rd_lo:g}-{rd_hi:g} kpc, not "
                         f"{d:g} kpc; it is applied as an approximation")
    if age_gyr is not None and ref.get("age_min_gyr") is not None and math.isfinite(age_gyr) \
            and age_gyr < ref["age_min_gyr"]:
        notes.append(f"the luminosity range is stated for ages > {ref['age_min_gyr']:g} Gyr; "
                     f"this cluster's age is {age_gyr:g} Gyr (younger fields are brighter)")
    if not math.isfinite(lum):
        reasons.append("the field luminosity is not finite")
    elif lum < lo:
        reasons.append(f"field luminosity {lum:.4g} Lsun is below the training range "
                       f"{lo:g}-{hi:g} Lsun")
    elif lum > hi:
        reasons.append(f"field luminosity {lum:.4g} Lsun is above the training range "
                       f"{lo:g}-{hi:g} Lsun: pi-DOC will read it as a young cluster and "
                       "underestimate M/L (paper Sect. 5)")
    return RangeVerdict(inside=not reasons, reasons=reasons, notes=notes, luminosity_v_lsun=lum,
                        luminosity_range_lsun=(lo, hi), distance_kpc=d, reference=ref["source"])


def _flux_values(flux_map):
    if isinstance(flux_map, xr.Dataset):
        attrs = dict(flux_map.attrs)
        values = flux_map["flux"].values
    elif isinstance(flux_map, xr.DataArray):
        attrs, values = dict(flux_map.attrs), flux_map.values
    else:
        attrs, values = {}, np.asarray(flux_map)
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 2:
        raise ObservationInputError(f"flux map must be 2-D (y, x), got shape {values.shape}")
    return values, attrs


def field_luminosity(flux_map, distance_kpc: float) -> float:
    """V-band luminosity in the field, Lsun: (sum of F) 4 pi d^2, from a flux-map Dataset (its
    linear ``field_flux_lsun_kpc2`` when present) or a log10 map (sum of 10^flux)."""
    values, attrs = _flux_values(flux_map)
    total = attrs.get("field_flux_lsun_kpc2")
    if total is None:
        total = float(np.sum(10.0 ** values))
    return float(total) * 4.0 * math.pi * float(distance_kpc) ** 2


def range_check(flux_map, distance_kpc: float, *, model=None, age_gyr: float | None = None,
                warn: bool = True) -> RangeVerdict:
    """Is an observed field inside π-DOC's training range? (The paper's Fig. 10 test.)

    Checks: the field luminosity at ``distance_kpc`` against the training luminosity range
    (:func:`check_luminosity`); the distance against the trained distances; the map's shape; the
    image statistics against the model's flux standardisation (the mean log10 flux of the map
    within 3 ``flux_std`` of ``flux_mean``) and the fraction of pixels at the flux floor (at most
    1 %; the mocks have none in a cluster's field, while sky noise or over-subtracted background
    gives floored pixels the networks never saw).

    Parameters
    ----------
    flux_map : xarray.Dataset, DataArray or array
        log10 flux map (Lsun kpc^-2), e.g. from :func:`flux_map_from_image`.
    distance_kpc : float
        Distance used for the luminosity, kpc.
    model : PiDOC, optional
        Supplies ``provenance["training_grid"]``, ``provenance["training_luminosity_range"]`` and
        the flux standardisation.
    age_gyr : float, optional
        Age of the cluster, Gyr, for the notes.
    warn : bool
        Emit a :class:`RangeWarning` when outside.

    Returns
    -------
    RangeVerdict
    """
    values, _ = _flux_values(flux_map)
    lum = field_luminosity(flux_map, distance_kpc)
    verdict = check_luminosity(lum, distance_kpc, model=model, age_gyr=age_gyr)
    reasons, notes = list(verdict.reasons), list(verdict.notes)
    shape = tuple(getattr(model, "map_shape", (N_PIXELS, N_PIXELS)))
    if values.shape != shape:
        reasons.append(f"the map is {values.shape[0]} x {values.shape[1]} pixels, the networks "
                       f"take {shape[0]} x {shape[1]}")
    floored = float(np.mean(values <= math.log10(FLUX_FLOOR) + 1e-6))
    if floored > 0.01:
        reasons.append(f"{100 * floored:.1f} % of the pixels are at the flux floor (no or negative "
                       "flux: sky noise or background over-subtraction); the training maps have "
                       "none")
    std = getattr(model, "standardisation", None) or {}
    if "flux_mean" in std and "flux_std" in std:
        mean = float(np.mean(values))
        z = (mean - std["flux_mean"]) / std["flux_std"]
        if abs(z) > 3:
            reasons.append(f"the mean log10 flux {mean:.2f} is {z:+.1f} training standard "
                           f"deviations from the training mean {std['flux_mean']:.2f}")
    out = RangeVerdict(inside=not reasons, reasons=reasons, notes=notes,
                       luminosity_v_lsun=verdict.luminosity_v_lsun,
                       luminosity_range_lsun=verdict.luminosity_range_lsun,
                       distance_kpc=verdict.distance_kpc, reference=verdict.reference)
    if warn and not out.inside:
        warnings.warn("pi-DOC input outside its training range: " + "; ".join(reasons),
                      RangeWarning, stacklevel=2)
    return out


# ---------------------------------------------------------------------------------------------
# prediction
# ---------------------------------------------------------------------------------------------


def predict_flux_map(flux_ds: xr.Dataset, model, *, distance_kpc: float | None = None,
                     age_gyr: float | None = None) -> xr.Dataset:
    """Run π-DOC on a flux map and add the mass map, field mass, M/L, age, distance and verdict.

    Parameters
    ----------
    flux_ds : xarray.Dataset
        From :func:`flux_map_from_image` / :func:`flux_map_from_ps1` (``flux`` in log10 Lsun
        kpc^-2, 160 x 160).
    model : pidoc_core.model.PiDOC
        The networks; without a mass network the mass and M/L are absent/NaN, without an
        age/distance network age and distance are NaN.
    distance_kpc : float, optional
        Distance for the luminosity and M/L, kpc; default the catalogue's (when the map names a
        catalogue cluster), else π-DOC's predicted distance.
    age_gyr : float, optional
        Literature age (Gyr) for the range notes; default the catalogue's when available.

    Returns
    -------
    xarray.Dataset
        ``flux`` and, with a mass network, ``mass`` (log10 Msun per pixel); scalars
        ``field_mass`` (Msun), ``luminosity_v`` (Lsun), ``mass_to_light`` (Msun/Lsun),
        ``age`` (Gyr), ``distance`` (kpc, π-DOC's); attributes ``distance_used_kpc``,
        ``distance_source``, ``range_verdict``, ``range_reasons``, ``range_notes``.
    """
    pred = model.predict(flux_ds["flux"].values)
    ds = flux_ds.copy()
    name = ds.attrs.get("cluster") or ""
    lit = None
    if name:
        try:
            lit = cluster(name)
        except ObservationInputError:
            lit = None
    age_pred = float(pred["age"].values[0]) if "age" in pred else math.nan
    dist_pred = float(pred["distance"].values[0]) if "distance" in pred else math.nan
    if distance_kpc is not None:
        d, source = float(distance_kpc), "given"
    elif lit is not None:
        d, source = float(lit["distance"]), "catalogue (Harris 2010)"
    elif math.isfinite(dist_pred):
        d, source = dist_pred, "pi-DOC prediction"
    else:
        raise ObservationInputError(
            "no distance: give distance_kpc, a catalogue cluster, or a model with an age/distance "
            "network")
    if not (math.isfinite(d) and d > 0):
        raise ObservationInputError(f"distance must be > 0 kpc, got {d!r} ({source})")
    if age_gyr is None and lit is not None and not np.ma.is_masked(lit["age"]):
        age_gyr = float(lit["age"])
    lum = field_luminosity(ds, d)
    if "mass" in pred:
        mass = pred["mass"].values[0].astype(np.float32)
        ds["mass"] = (("y", "x"), mass, {"long_name": "log10 mass per pixel predicted by pi-DOC",
                                         "units": "log10(Msun)"})
        field_mass = float(np.sum(10.0 ** mass.astype(np.float64)))
    else:
        field_mass = math.nan
    ml = field_mass / lum if lum > 0 else math.nan
    ds["field_mass"] = ((), field_mass, {"long_name": "mass in the field predicted by pi-DOC",
                                         "units": "Msun"})
    ds["luminosity_v"] = ((), lum, {"long_name": "V-band luminosity in the field at "
                                                 "distance_used_kpc", "units": "Lsun"})
    ds["mass_to_light"] = ((), ml, {"long_name": "field M/L_V (pi-DOC mass / luminosity)",
                                    "units": "Msun/Lsun"})
    ds["age"] = ((), age_pred, {"long_name": "age predicted by pi-DOC", "units": "Gyr"})
    ds["distance"] = ((), dist_pred, {"long_name": "distance predicted by pi-DOC", "units": "kpc"})
    verdict = range_check(ds, d, model=model, age_gyr=age_gyr)
    ds.attrs.update(
        distance_used_kpc=d,
        distance_source=source,
        range_verdict=verdict.verdict,
        range_reasons=" | ".join(verdict.reasons),
        range_notes=" | ".join(verdict.notes),
        range_reference=verdict.reference,
        model=str(pred.attrs.get("model", "pi-DOC")),
        mass_floor_msun=MASS_FLOOR,
    )
    if not ("mass" in pred):
        ds.attrs["mass_note"] = "the model has no mass network: no mass map, field mass or M/L"
    if lit is not None:
        ds.attrs.update(literature_distance_kpc=float(lit["distance"]),
                        literature_ml_v=float(lit["ml_v"]),
                        literature_ml_v_err=float(lit["ml_v_err"]),
                        literature_age_gyr=math.nan if np.ma.is_masked(lit["age"])
                        else float(lit["age"]))
    return ds


def predict_image(image=None, *, g=None, r=None, centre=None, cluster: str | None = None,
                  model, distance_kpc: float | None = None, extinction_av: float = 0.0,
                  zero_point: float | None = None, **kwargs) -> xr.Dataset:
    """Image(s) -> flux map -> π-DOC prediction with the range verdict (paper Sect. 5, Fig. 12).

    Give either ``image`` (a calibrated V-band image) or both ``g`` and ``r`` (PS1 stacks), and
    either ``centre`` or ``cluster``. Other keyword arguments go to :func:`flux_map_from_image` /
    :func:`flux_map_from_ps1`. Returns :func:`predict_flux_map`'s Dataset.
    """
    if (image is None) == (g is None and r is None):
        raise ObservationInputError("give either one image or both g and r images")
    if image is None:
        if g is None or r is None:
            raise ObservationInputError("PS1 mode needs both g and r images")
        if zero_point is not None:
            raise ObservationInputError("with g and r images give zero_point_g / zero_point_r")
        flux = flux_map_from_ps1(g, r, centre=centre, cluster=cluster,
                                 extinction_av=extinction_av, **kwargs)
    else:
        flux = flux_map_from_image(image, centre=centre, cluster=cluster, zero_point=zero_point,
                                   extinction_av=extinction_av, **kwargs)
    return predict_flux_map(flux, model, distance_kpc=distance_kpc)


# ---------------------------------------------------------------------------------------------
# writers
# ---------------------------------------------------------------------------------------------


def _atomic_write(path: Path, write) -> Path:
    path = Path(path)
    with atomic_path(path, suffix=path.suffix or ".part") as tmp:
        write(str(tmp))
    return path


def write_netcdf(ds: xr.Dataset, path) -> Path:
    """Write a prediction (or flux-map) Dataset to netCDF through a temporary file renamed into
    place."""
    clean = ds.copy()
    for k, v in list(clean.attrs.items()):
        if isinstance(v, (bool, np.bool_)):
            clean.attrs[k] = int(v)
        elif v is None:
            clean.attrs[k] = ""
    return _atomic_write(Path(path), lambda tmp: clean.to_netcdf(tmp))


def _fmt(v, spec=".3g"):
    return "n/a" if v is None or not np.isfinite(v) else format(float(v), spec)


def _figure_png(ds: xr.Dataset) -> bytes:
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    has_mass = "mass" in ds
    fig = Figure(figsize=(5.2 * (2 if has_mass else 1), 5.0), dpi=110)
    axes = fig.subplots(1, 2 if has_mass else 1, squeeze=False)[0]
    half = FOV_ARCSEC / 2.0
    extent = (-half, half, -half, half)  # x (west) grows to the right: east left
    name = ds.attrs.get("cluster") or "observed field"
    lit = []
    if "literature_age_gyr" in ds.attrs:
        lit.append(f"age {_fmt(ds.attrs['literature_age_gyr'], '.2f')} Gyr")
    if "literature_distance_kpc" in ds.attrs:
        lit.append(f"d {_fmt(ds.attrs['literature_distance_kpc'], '.1f')} kpc")
    im = axes[0].imshow(ds["flux"].values, origin="lower", extent=extent, cmap="magma")
    fig.colorbar(im, ax=axes[0], label="log10 F / (Lsun kpc$^{-2}$)", shrink=0.8)
    axes[0].set_title(f"{name}: V-band flux" + (f"\n(literature: {', '.join(lit)})" if lit else ""),
                      fontsize=9)
    axes[0].set_xlabel('x (arcsec, west)')
    axes[0].set_ylabel('y (arcsec, north)')
    text = ""
    if "mass_to_light" in ds:
        mass = float(ds["field_mass"])
        log_mass = math.log10(mass) if mass > 0 else math.nan
        text = (f"M/L = {_fmt(float(ds['mass_to_light']))} Msun/Lsun\n"
                f"log M = {_fmt(log_mass, '.2f')}\n"
                f"age = {_fmt(float(ds['age']), '.1f')} Gyr, "
                f"d = {_fmt(float(ds['distance']), '.1f')} kpc")
    if has_mass:
        im2 = axes[1].imshow(ds["mass"].values, origin="lower", extent=extent, cmap="viridis")
        fig.colorbar(im2, ax=axes[1], label="log10 M / Msun", shrink=0.8)
        axes[1].set_title("pi-DOC mass map", fontsize=9)
        axes[1].set_xlabel('x (arcsec, west)')
        axes[1].text(0.03, 0.97, text, transform=axes[1].transAxes, va="top", fontsize=8,
                     color="white")
    elif text:
        axes[0].text(0.03, 0.03, text, transform=axes[0].transAxes, va="bottom", fontsize=8,
                     color="white")
    verdict = ds.attrs.get("range_verdict")
    if verdict:
        colour = "tab:green" if verdict == "inside" else "tab:red"
        fig.suptitle(f"training range: {verdict}", color=colour, fontsize=10)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight")
    return buf.getvalue()


def write_figure(ds: xr.Dataset, path) -> Path:
    """A figure like the paper's Fig. 12 (input flux; π-DOC mass map with mass, M/L, age and
    distance): a PNG for ``*.png``, an HTML page (embedded PNG, table of values, range verdict)
    for ``*.html``; written atomically."""
    path = Path(path)
    png = _figure_png(ds)
    suffix = path.suffix.lower()
    if suffix == ".png":
        return _atomic_write(path, lambda tmp: Path(tmp).write_bytes(png))
    if suffix not in (".html", ".htm"):
        raise ObservationInputError(f"{path}: figure must be .png or .html")
    rows = []
    for key in ("field_mass", "luminosity_v", "mass_to_light", "age", "distance"):
        if key in ds:
            rows.append((ds[key].attrs.get("long_name", key), _fmt(float(ds[key]), ".4g"),
                         ds[key].attrs.get("units", "")))
    for key in ("distance_used_kpc", "distance_source", "literature_ml_v", "literature_ml_v_err",
                "literature_age_gyr", "literature_distance_kpc", "zero_point_mag",
                "zero_point_source", "range_reference"):
        if key in ds.attrs:
            rows.append((key, str(ds.attrs[key]), ""))
    table = "\n".join(f"<tr><td>{html.escape(str(a))}</td><td>{html.escape(str(b))}</td>"
                      f"<td>{html.escape(str(c))}</td></tr>" for a, b, c in rows)
    verdict = ds.attrs.get("range_verdict", "")
    reasons = [r for r in str(ds.attrs.get("range_reasons", "")).split(" | ") if r]
    notes = [r for r in str(ds.attrs.get("range_notes", "")).split(" | ") if r]
    items = "".join(f"<li>{html.escape(r)}</li>" for r in reasons + notes)
    title = html.escape(f"pi-DOC prediction: {ds.attrs.get('cluster') or 'observed field'}")
    page = (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{title}</title>"
            "<style>body{font-family:sans-serif;margin:1.5em}td{padding:2px 10px}"
            ".inside{color:green}.outside{color:#b00}</style></head><body>"
            f"<h1>{title}</h1><p class='{html.escape(verdict)}'>Training range: "
            f"<b>{html.escape(verdict)}</b></p><ul>{items}</ul>"
            f"<img alt='flux and mass maps' src='data:image/png;base64,"
            f"{base64.b64encode(png).decode()}'/><table>{table}</table></body></html>")
    return _atomic_write(path, lambda tmp: Path(tmp).write_text(page, encoding="utf-8"))


# ---------------------------------------------------------------------------------------------
# command line: pidoc predict
# ---------------------------------------------------------------------------------------------


def add_predict_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Arguments of ``pidoc predict IMAGE.fits [--g G.fits --r R.fits] (--centre RA DEC |
    --cluster NAME) [--distance KPC] [--extinction AV] [--weights DIR] --out PREFIX``."""
    parser.add_argument("image", nargs="?", default=None,
                        help="calibrated V-band FITS image (counts, celestial WCS); omit with "
                             "--g/--r")
    parser.add_argument("--g", dest="g_image", default=None, help="PS1 g stack (FITS)")
    parser.add_argument("--r", dest="r_image", default=None, help="PS1 r stack (FITS)")
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--centre", "--center", nargs=2, metavar=("RA", "DEC"),
                       help="field centre: degrees, or sexagesimal (RA in hours, e.g. 13:16:27.09)")
    where.add_argument("--cluster", help="a catalogue cluster (paper Table 3), e.g. 'NGC 5053'")
    parser.add_argument("--distance", type=float, default=None,
                        help="distance in kpc for L_FoV and M/L (default: the catalogue's, "
                             "else pi-DOC's)")
    parser.add_argument("--extinction", type=float, default=0.0, help="A_V in mag (default 0)")
    parser.add_argument("--zero-point", type=float, default=None,
                        help="zero point, mag for 1 count (default from the header)")
    parser.add_argument("--background", choices=("none", "median", "mesh"), default="none",
                        help="background subtraction (default none)")
    parser.add_argument("--hdu", type=_hdu_arg, default=None,
                        help="FITS extension of the image: index or EXTNAME (default: the first "
                             "HDU with 2-D data)")
    parser.add_argument("--weights", default=None,
                        help="saved model directory or the v0.1 release directory "
                             "(default: the shipped model)")
    parser.add_argument("--out", required=True,
                        help="output prefix: writes PREFIX.nc, PREFIX.png, PREFIX.html")
    return parser


def _hdu_arg(text: str):
    """``--hdu``: an HDU index (integer) or an EXTNAME."""
    return int(text) if text.lstrip("-").isdigit() else text


def _load_model(weights):
    from .model import ModelError, open_model

    try:
        return open_model(weights)
    except ModelError as exc:
        raise SystemExit(f"pidoc predict: {exc}") from None


def run_predict(args) -> int:
    """Run ``pidoc predict`` from parsed arguments (see :func:`add_predict_arguments`)."""
    ps1 = args.g_image is not None or args.r_image is not None
    if ps1 and (args.g_image is None or args.r_image is None):
        raise SystemExit("pidoc predict: PS1 mode needs both --g and --r")
    if ps1 == (args.image is not None):
        raise SystemExit("pidoc predict: give either IMAGE or both --g and --r")
    model = _load_model(args.weights)
    background = None if args.background == "none" else args.background
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", RangeWarning)
            if ps1:
                ds = predict_image(g=args.g_image, r=args.r_image, centre=args.centre,
                                   cluster=args.cluster, model=model, distance_kpc=args.distance,
                                   extinction_av=args.extinction, background=background,
                                   zero_point_g=args.zero_point, zero_point_r=args.zero_point,
                                   hdu=getattr(args, "hdu", None))
            else:
                ds = predict_image(args.image, centre=args.centre, cluster=args.cluster,
                                   model=model, distance_kpc=args.distance,
                                   extinction_av=args.extinction, zero_point=args.zero_point,
                                   background=background, hdu=getattr(args, "hdu", None))
    except ObservationInputError as exc:
        raise SystemExit(f"pidoc predict: {exc}") from None
    prefix = str(args.out)
    paths = [write_netcdf(ds, prefix + ".nc"), write_figure(ds, prefix + ".png"),
             write_figure(ds, prefix + ".html")]
    name = ds.attrs.get("cluster") or "field"
    print(f"{name}: L_V(FoV) = {float(ds['luminosity_v']):.4g} Lsun at "
          f"{ds.attrs['distance_used_kpc']:g} kpc ({ds.attrs['distance_source']}); "
          f"M = {_fmt(float(ds['field_mass']), '.4g')} Msun, "
          f"M/L_V = {_fmt(float(ds['mass_to_light']), '.3g')}, "
          f"age = {_fmt(float(ds['age']), '.3g')} Gyr, "
          f"d = {_fmt(float(ds['distance']), '.3g')} kpc")
    print(f"training range: {ds.attrs['range_verdict']}")
    for w in caught:
        if issubclass(w.category, RangeWarning):
            print(f"WARNING: {w.message}", file=sys.stderr)
    for p in paths:
        print(f"wrote {p}")
    return 0
