"""Real images for π-DOC: FITS/WCS cut-outs, PS1 g, r -> V, the literature catalogue (paper Sect. 5).

An image becomes a π-DOC flux map in the units of the mock observations (:mod:`pidoc_core.conventions`): log10 of the
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

Modules: :mod:`.catalogue`, :mod:`.images` (FITS reading, PS1, photometry), :mod:`.flux_map`
(resampling to the mock geometry), :mod:`.range` (the one training-range check, also used by
:mod:`pidoc_core.exploration`), :mod:`.predict`, :mod:`.figure` (matplotlib, lazily),
:mod:`.cli` (``pidoc predict``), :mod:`.mock` (mock Table 3: the wide grid's mocks of the 17
clusters and π-DOC on them, ``pidoc mock-table3``).
"""


from ._common import (
    CATALOGUE_PATH,
    COLOUR_CLIP_MAG,
    FOV_ARCSEC,
    N_PIXELS,
    PAPER_LUMINOSITY_RANGE,
    PIXEL_ARCSEC,
    PS1_ASINH_ALPHA,
    SMOOTH_SIGMA_PX,
    TONRY2012_V,
    ObservationInputError,
    RangeWarning,
)
from .catalogue import cluster, load_catalogue, resolve_centre
from .cli import add_predict_arguments, run_predict
from .figure import write_figure
from .flux_map import flux_map_from_image, flux_map_from_ps1, target_wcs
from .images import (
    counts_to_flux,
    header_zero_point,
    ps1_compress,
    ps1_gr_to_v,
    ps1_linearise,
    read_image,
)
from .mock import match_mocks, mock_table3
from .predict import predict_flux_map, predict_image, write_netcdf
from .range import (
    TRAINING_GRID,
    RangeVerdict,
    check_luminosity,
    field_luminosity,
    range_check,
    training_grid_flags,
)


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
    "training_grid_flags",
    "TRAINING_GRID",
    "COLOUR_CLIP_MAG",
    "predict_flux_map",
    "predict_image",
    "write_netcdf",
    "write_figure",
    "match_mocks",
    "mock_table3",
    "add_predict_arguments",
    "run_predict",
]

