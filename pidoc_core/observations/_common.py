"""Constants and errors shared by the observation modules."""

from __future__ import annotations

import math
from pathlib import Path

from ..conventions import FOV_ARCSEC, N_PIXELS, PIXEL_ARCSEC, SMOOTH_SIGMA_PX
from ..errors import PidocError
from ..paper import LUMINOSITY_RANGE as PAPER_LUMINOSITY_RANGE

__all__ = ["ObservationInputError", "RangeWarning", "FOV_ARCSEC", "PIXEL_ARCSEC", "N_PIXELS",
           "SMOOTH_SIGMA_PX", "PS1_ASINH_ALPHA", "TONRY2012_V", "COLOUR_CLIP_MAG",
           "PAPER_LUMINOSITY_RANGE", "CATALOGUE_PATH"]

# The map geometry (FOV_ARCSEC, PIXEL_ARCSEC, N_PIXELS, SMOOTH_SIGMA_PX) is that of
# pidoc_core.conventions and PAPER_LUMINOSITY_RANGE is pidoc_core.paper.LUMINOSITY_RANGE; both
# re-exported here under their old names.
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
#: The shipped catalogue (paper Table 3 + Harris 2010 coordinates).
CATALOGUE_PATH = Path(__file__).resolve().parents[1] / "data" / "paper_table3.ecsv"

_SMOOTH_PAD_PX = int(math.ceil(4.0 * SMOOTH_SIGMA_PX))
_COUNT_UNITS = {"count", "counts", "ct", "cts", "adu", "adus", "dn", "data number", "data numbers",
                "electron", "electrons", "e-", "e"}
_RATE_UNITS = {f"{a}{sep}s" for a in _COUNT_UNITS for sep in ("/", " / ", "/ ", " /")} | {
    f"{a} s-1" for a in _COUNT_UNITS} | {f"{a} s**-1" for a in _COUNT_UNITS} | {
    f"{a}/sec" for a in _COUNT_UNITS}
_ZP_KEYS = ("MAGZERO", "MAGZP", "PHOTZP", "ZEROPT", "ZPT", "ZP")


class ObservationInputError(PidocError):
    """An image, header, centre or option that the observation pipeline cannot use; says why."""


class RangeWarning(UserWarning):
    """A field lies outside the range of π-DOC's training set: predictions are extrapolations."""

