"""Mock V-band observations of a snapshot: the paper's Sect. 2.2.

:func:`observe` turns a :class:`~pidoc_core.snapshot.Snapshot` into a pair of maps of one field of
view: the V-band flux map seen through a Moffat PSF and the intrinsic mass map, both smoothed with a
Gaussian of sigma = 4 px, as log10 values in the units of :mod:`pidoc_core.conventions` (flux in Lsun kpc^-2, mass
in Msun per pixel).

The steps, in order:

1. Centre on the cluster's density centre (Casertano & Hut 1985, 6 nearest neighbours; see
   :attr:`Snapshot.density_centre`), computed once per snapshot.
2. Project along the line of sight (``"z"`` -> sky (x, y), ``"x"`` -> (y, z), ``"y"`` -> (z, x)) and
   convert pc to arcsec at the distance.
3. Rotate about the cluster centre by ``rotation_deg`` in the sense of :func:`numpy.rot90` on the
   ``(y, x)`` array (a star at sky (x, y) moves to (x cos a + y sin a, -x sin a + y cos a)), exactly
   for multiples of 90 degrees, then shift the cluster by ``shift_arcsec`` in the image.
4. Bin the stars' V-band luminosity and mass on a canvas padded beyond the field of view by the
   support of the combined kernel, so that light of stars just outside the field enters it.
5. Convolve the flux canvas with a normalised Moffat kernel (beta = 2.5, the given FWHM; truncated
   where its enclosed-light deficit falls to 1e-3, then renormalised) and both canvases with a
   normalised Gaussian of ``smooth_sigma_px``; the convolutions are circular FFT products on the
   padded canvas, which conserve the canvas totals exactly and, with the padding at least the
   kernel radius, leave the field of view free of wrap-around.
6. Crop the field of view and take log10 with stated floors.

Kernels come from :mod:`astropy.convolution`; their spectra are cached per setup, so an observation
of a 50,000-star snapshot costs a few milliseconds.
"""

from __future__ import annotations

import math
import weakref
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import scipy.fft
import xarray as xr
from astropy import units as u

from .conventions import FLUX_FLOOR, FOV_ARCSEC, MASS_FLOOR, PIXEL_ARCSEC, SMOOTH_SIGMA_PX
from .errors import PidocError
from .photometry import snapshot_v_luminosity
from .snapshot import Snapshot

__all__ = [
    "ObservationError",
    "ObservationSetup",
    "FLUX_FLOOR",
    "MASS_FLOOR",
    "PC_PER_ARCSEC_PER_KPC",
    "DISTANCE_RANGE_KPC",
    "MOFFAT_BETA_MAX",
    "MAX_KERNEL_RADIUS_PX",
    "render",
    "observe",
]

# FLUX_FLOOR (Lsun kpc^-2) and MASS_FLOOR (Msun) live in pidoc_core.conventions; re-exported here.
#: Parsecs subtended by one arcsec at a distance of 1 kpc.
PC_PER_ARCSEC_PER_KPC = float((1 * u.arcsec).to_value(u.rad) * 1e3)
#: Fraction of a Moffat PSF's light beyond its truncation radius (before renormalisation).
MOFFAT_TAIL = 1e-3
#: Distances the imager can represent, kpc: beyond them fluxes or angles over- or underflow.
DISTANCE_RANGE_KPC = (1e-9, 1e12)
#: Largest Moffat beta: beyond it (1 + r^2/gamma^2)^-beta is lost to rounding (use ~Gaussian).
MOFFAT_BETA_MAX = 1e6
#: Largest radius of the PSF + smoothing kernel, pixels.
MAX_KERNEL_RADIUS_PX = 2048
#: A PSF FWHM or smoothing sigma below this many pixels is a delta function on the pixel grid
#: (the kernels are sampled 10 times per pixel; narrower ones would sum to 0).
_DELTA_KERNEL_PX = 0.01

_LINES_OF_SIGHT = {"z": (0, 1), "x": (1, 2), "y": (2, 0)}
_EXACT_TRIG = {0: (1.0, 0.0), 90: (0.0, 1.0), 180: (-1.0, 0.0), 270: (0.0, -1.0)}


class ObservationError(PidocError):
    """An observation setup or an input to the imager is not valid."""


def _number(name, value, unit, *, positive=False, nonnegative=False):
    if isinstance(value, u.Quantity):
        try:
            value = value.to_value(unit)
        except u.UnitConversionError:
            raise ObservationError(f"{name} must be in units of {unit}, got {value}") from None
    dtype = getattr(value, "dtype", None)
    if isinstance(value, (bool, str, bytes, bytearray, complex)) or (
            isinstance(dtype, np.dtype) and dtype.kind not in "iuf"):
        # float() would take True as 1, "15" as 15 and drop a numpy imaginary part
        raise ObservationError(f"{name} must be a number, got {value!r}")
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise ObservationError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(value):
        raise ObservationError(f"{name} must be finite, got {value!r}")
    if positive and value <= 0:
        raise ObservationError(f"{name} must be > 0, got {value!r}")
    if nonnegative and value < 0:
        raise ObservationError(f"{name} must be >= 0, got {value!r}")
    return value


@dataclass(frozen=True)
class ObservationSetup:
    """Conditions of one mock observation.

    Parameters
    ----------
    distance_kpc : float or Quantity
        Heliocentric distance of the cluster, kpc (within :data:`DISTANCE_RANGE_KPC`).
    psf_fwhm_arcsec : float or Quantity
        FWHM of the Moffat PSF (the seeing), arcsec (> 0; below 0.01 px a star's light stays in
        its pixel).
    shift_arcsec : (float, float)
        Offset (x, y) of the cluster centre from the field centre, arcsec.
    rotation_deg : float
        Rotation of the image about the cluster centre, degrees, in the sense of numpy.rot90
        on the (y, x) map; multiples of 90 are exact.
    line_of_sight : {"z", "x", "y"}
        Snapshot axis along which the cluster is viewed.
    fov_arcsec : float
        Side of the square field of view, arcsec.
    pixel_arcsec : float
        Pixel side, arcsec; ``fov_arcsec / pixel_arcsec`` must be a whole number (at most 4096).
    moffat_beta : float
        Moffat shape parameter beta (> 1, at most :data:`MOFFAT_BETA_MAX`).
    smooth_sigma_px : float
        Gaussian smoothing of both maps, pixels (>= 0; below 0.01 it is switched off).

    Raises
    ------
    ObservationError
        For values that are not real numbers (bools, strings and complex numbers included), in
        the wrong unit, non-finite, out of range, inconsistent, or needing a PSF + smoothing
        kernel wider than :data:`MAX_KERNEL_RADIUS_PX`, naming the parameter.

    Examples
    --------
    >>> ObservationSetup(distance_kpc=15, psf_fwhm_arcsec=1.0).n_pixels
    160
    """

    distance_kpc: float
    psf_fwhm_arcsec: float
    shift_arcsec: tuple[float, float] = (0.0, 0.0)
    rotation_deg: float = 0.0
    line_of_sight: str = "z"
    fov_arcsec: float = FOV_ARCSEC
    pixel_arcsec: float = PIXEL_ARCSEC
    moffat_beta: float = 2.5
    smooth_sigma_px: float = SMOOTH_SIGMA_PX

    def __post_init__(self) -> None:
        setattr_ = object.__setattr__
        setattr_(self, "distance_kpc", _number("distance_kpc", self.distance_kpc, u.kpc, positive=True))
        lo, hi = DISTANCE_RANGE_KPC
        if not lo <= self.distance_kpc <= hi:
            raise ObservationError(
                f"distance_kpc must be between {lo:g} and {hi:g} kpc, got {self.distance_kpc!r}")
        setattr_(self, "psf_fwhm_arcsec",
                 _number("psf_fwhm_arcsec", self.psf_fwhm_arcsec, u.arcsec, positive=True))
        shift = self.shift_arcsec
        if isinstance(shift, u.Quantity) and shift.ndim > 0:
            shift = tuple(shift)
        try:
            if isinstance(shift, (str, bytes)):
                raise TypeError
            sx, sy = shift
        except (TypeError, ValueError):
            raise ObservationError(f"shift_arcsec must be a pair (x, y), got {shift!r}") from None
        setattr_(self, "shift_arcsec", (_number("shift_arcsec[0]", sx, u.arcsec),
                                        _number("shift_arcsec[1]", sy, u.arcsec)))
        setattr_(self, "rotation_deg", _number("rotation_deg", self.rotation_deg, u.deg))
        if not isinstance(self.line_of_sight, str) or self.line_of_sight not in _LINES_OF_SIGHT:
            raise ObservationError(
                f"line_of_sight must be one of {sorted(_LINES_OF_SIGHT)}, got {self.line_of_sight!r}"
            )
        setattr_(self, "fov_arcsec", _number("fov_arcsec", self.fov_arcsec, u.arcsec, positive=True))
        setattr_(self, "pixel_arcsec",
                 _number("pixel_arcsec", self.pixel_arcsec, u.arcsec, positive=True))
        ratio = self.fov_arcsec / self.pixel_arcsec
        if not ratio <= 4096.5:  # also inf, which round() cannot take
            raise ObservationError(
                f"fov_arcsec / pixel_arcsec = {self.fov_arcsec} / {self.pixel_arcsec} gives "
                f"{ratio:.6g} pixels a side; at most 4096")
        if abs(ratio - round(ratio)) > 1e-9 * ratio or round(ratio) < 1:
            raise ObservationError(
                f"fov_arcsec / pixel_arcsec must be a whole number of pixels, got "
                f"{self.fov_arcsec} / {self.pixel_arcsec} = {ratio}"
            )
        if round(ratio) > 4096:
            raise ObservationError(f"the field would have {round(ratio)} pixels a side; at most 4096")
        beta = _number("moffat_beta", self.moffat_beta, u.dimensionless_unscaled)
        if beta <= 1:
            raise ObservationError(f"moffat_beta must be > 1 for a normalisable PSF, got {beta!r}")
        if beta > MOFFAT_BETA_MAX:
            raise ObservationError(f"moffat_beta must be <= {MOFFAT_BETA_MAX:g} (a Moffat of larger "
                                   f"beta is a Gaussian to rounding), got {beta!r}")
        setattr_(self, "moffat_beta", beta)
        setattr_(self, "smooth_sigma_px",
                 _number("smooth_sigma_px", self.smooth_sigma_px, u.dimensionless_unscaled,
                         nonnegative=True))
        limit = MAX_KERNEL_RADIUS_PX
        # checked as floats first: ceil() of an overflowing radius (inf) raises
        radius = self._moffat_radius() + 4.0 * self.smooth_sigma_px
        if radius > limit or self.kernel_radius_px > limit:
            raise ObservationError(
                f"psf_fwhm_arcsec={self.psf_fwhm_arcsec} and smooth_sigma_px={self.smooth_sigma_px} "
                f"need a kernel of radius {radius:.4g} px (moffat_beta={self.moffat_beta}); "
                f"at most {limit} px"
            )

    @property
    def n_pixels(self) -> int:
        """Pixels along each side of the field of view."""
        return int(round(self.fov_arcsec / self.pixel_arcsec))

    @property
    def pc_per_arcsec(self) -> float:
        """Parsecs per arcsec at this distance."""
        return self.distance_kpc * PC_PER_ARCSEC_PER_KPC

    @property
    def moffat_gamma_px(self) -> float:
        """Moffat core width gamma in pixels: FWHM = 2 gamma sqrt(2^(1/beta) - 1)."""
        fwhm_px = self.psf_fwhm_arcsec / self.pixel_arcsec
        return fwhm_px / (2.0 * math.sqrt(2.0 ** (1.0 / self.moffat_beta) - 1.0))

    def _moffat_radius(self) -> float:
        """Truncation radius of the Moffat kernel as a float, pixels (inf if it overflows)."""
        try:
            tail = MOFFAT_TAIL ** (1.0 / (1.0 - self.moffat_beta))
        except OverflowError:
            return math.inf
        return self.moffat_gamma_px * math.sqrt(tail - 1.0)

    @property
    def moffat_radius_px(self) -> int:
        """Truncation radius of the Moffat kernel, pixels: the light beyond it is MOFFAT_TAIL."""
        return max(1, math.ceil(self._moffat_radius()))

    @property
    def gauss_radius_px(self) -> int:
        """Half-size of the Gaussian smoothing kernel, pixels (4 sigma, as astropy's default)."""
        return math.ceil(4.0 * self.smooth_sigma_px)

    @property
    def kernel_radius_px(self) -> int:
        """Radius of the combined PSF + smoothing kernel, pixels: the padding of the canvas."""
        return self.moffat_radius_px + self.gauss_radius_px

    @property
    def canvas_pixels(self) -> int:
        """Side of the padded canvas: the field plus the kernel radius on every side, rounded up
        to an even FFT-friendly size."""
        size = self.n_pixels + 2 * self.kernel_radius_px + 2
        while True:
            size = scipy.fft.next_fast_len(size, real=True)
            if (size - self.n_pixels) % 2 == 0:
                return size
            size += 1

    def pixel_centres_arcsec(self) -> np.ndarray:
        """Pixel-centre coordinates along each axis, arcsec from the field centre."""
        return (np.arange(self.n_pixels) + 0.5) * self.pixel_arcsec - self.fov_arcsec / 2.0

    def replace(self, **changes) -> ObservationSetup:
        """A copy with some parameters changed."""
        from dataclasses import replace

        return replace(self, **changes)

    def to_attrs(self) -> dict:
        """The setup as flat netCDF-safe attributes."""
        return {
            "distance_kpc": self.distance_kpc,
            "psf_fwhm_arcsec": self.psf_fwhm_arcsec,
            "shift_x_arcsec": self.shift_arcsec[0],
            "shift_y_arcsec": self.shift_arcsec[1],
            "rotation_deg": self.rotation_deg,
            "line_of_sight": self.line_of_sight,
            "fov_arcsec": self.fov_arcsec,
            "pixel_arcsec": self.pixel_arcsec,
            "moffat_beta": self.moffat_beta,
            "smooth_sigma_px": self.smooth_sigma_px,
        }


# --------------------------------------------------------------------------------------------
# kernels


def _embed(kernel: np.ndarray, size: int) -> np.ndarray:
    """Place a centred odd-sized kernel on a size x size grid with its centre at index (0, 0)."""
    grid = np.zeros((size, size))
    k = kernel.shape[0] // 2
    c = size // 2
    grid[c - k : c + k + 1, c - k : c + k + 1] = kernel
    return np.fft.ifftshift(grid)


def _oversampling(radius_px: float) -> int:
    """Sub-samples per pixel for a kernel of this radius: 10, fewer for kernels wider than 64 px
    (whose profile barely changes within a pixel), so memory stays ~(1300 samples)^2 at most."""
    return 10 if radius_px <= 64 else max(2, int(640 // radius_px))


@lru_cache(maxsize=64)
def _kernel_spectra(size: int, gamma_px: float, beta: float, moffat_radius: int,
                    sigma_px: float) -> tuple[np.ndarray, np.ndarray]:
    """rfft2 spectra of the flux kernel (Moffat * Gaussian) and the mass kernel (Gaussian)."""
    from astropy.convolution import Gaussian2DKernel, Moffat2DKernel
    from scipy.signal import fftconvolve

    msize = 2 * moffat_radius + 1
    if gamma_px > 0:
        moffat = Moffat2DKernel(gamma=gamma_px, alpha=beta, x_size=msize, y_size=msize,
                                mode="oversample", factor=_oversampling(moffat_radius)).array
        yy, xx = np.mgrid[-moffat_radius : moffat_radius + 1, -moffat_radius : moffat_radius + 1]
        moffat = np.where(xx**2 + yy**2 <= moffat_radius**2, moffat, 0.0)  # circular support
        moffat /= moffat.sum()
    else:  # a PSF far narrower than a pixel: all the light in the star's pixel
        moffat = np.zeros((msize, msize))
        moffat[moffat_radius, moffat_radius] = 1.0
    if sigma_px >= _DELTA_KERNEL_PX:
        gsize = 2 * math.ceil(4.0 * sigma_px) + 1
        gauss = Gaussian2DKernel(x_stddev=sigma_px, x_size=gsize, y_size=gsize,
                                 mode="oversample", factor=_oversampling(4.0 * sigma_px)).array
        gauss /= gauss.sum()
    else:
        gauss = np.ones((1, 1))
    flux_kernel = fftconvolve(moffat, gauss, mode="full")
    flux_kernel /= flux_kernel.sum()
    spectra = (scipy.fft.rfft2(_embed(flux_kernel, size)), scipy.fft.rfft2(_embed(gauss, size)))
    for s in spectra:
        s.setflags(write=False)
    return spectra


# --------------------------------------------------------------------------------------------
# stars


_STAR_CACHE: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _stars(snapshot: Snapshot) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Centre-relative positions (pc), V-band luminosities (Lsun) and masses (Msun) of the stars,
    computed once per snapshot object."""
    cached = _STAR_CACHE.get(snapshot)
    if cached is None:
        pos = snapshot.positions - snapshot.density_centre
        cached = (pos, snapshot_v_luminosity(snapshot), snapshot.mass)
        _STAR_CACHE[snapshot] = cached
    return cached


def _sky_positions(snapshot: Snapshot, setup: ObservationSetup) -> tuple[np.ndarray, np.ndarray]:
    """Sky positions of the stars in arcsec from the field centre, after rotation and shift."""
    pos, _, _ = _stars(snapshot)
    i, j = _LINES_OF_SIGHT[setup.line_of_sight]
    scale = 1.0 / setup.pc_per_arcsec
    x = pos[:, i] * scale
    y = pos[:, j] * scale
    angle = setup.rotation_deg % 360.0
    if angle in _EXACT_TRIG:
        c, s = _EXACT_TRIG[angle]
    else:
        c, s = math.cos(math.radians(angle)), math.sin(math.radians(angle))
    if angle != 0:
        x, y = c * x + s * y, -s * x + c * y
    return x + setup.shift_arcsec[0], y + setup.shift_arcsec[1]


def render(snapshot: Snapshot, setup: ObservationSetup, *, padded: bool = False):
    """Linear flux and mass maps of one mock observation.

    Parameters
    ----------
    snapshot : Snapshot
        The star table.
    setup : ObservationSetup
        Distance, seeing and geometry.
    padded : bool
        Return the whole padded canvas (side ``setup.canvas_pixels``) instead of the field of view;
        its totals equal the light and mass of the stars that fall on it.

    Returns
    -------
    flux : numpy.ndarray
        Per-pixel V-band flux L_V / (4 pi d^2), Lsun kpc^-2, after PSF and smoothing; dims (y, x).
    mass : numpy.ndarray
        Per-pixel mass, Msun, after smoothing (no PSF); dims (y, x).
    """
    if not isinstance(snapshot, Snapshot):
        raise ObservationError(f"snapshot must be a pidoc_core Snapshot, got {type(snapshot).__name__}")
    if not isinstance(setup, ObservationSetup):
        raise ObservationError(f"setup must be an ObservationSetup, got {type(setup).__name__}")
    if len(snapshot) == 0:
        raise ObservationError(f"snapshot {snapshot.name!r} has no stars to observe")
    _, lum_v, mass = _stars(snapshot)
    x, y = _sky_positions(snapshot, setup)
    n, size = setup.n_pixels, setup.canvas_pixels
    offset = (size - n) // 2
    origin = setup.fov_arcsec / 2.0
    fx = np.floor((x + origin) / setup.pixel_arcsec)
    fy = np.floor((y + origin) / setup.pixel_arcsec)
    # compared as floats: the integer cast of values beyond the intp range is undefined
    on = (fx >= -offset) & (fx < size - offset) & (fy >= -offset) & (fy < size - offset)
    off = ~on
    if off.any():  # stars beyond the canvas cannot reach the field: weigh them 0 in bin 0
        fx[off] = -offset
        fy[off] = -offset
        lum_v = np.where(off, 0.0, lum_v)
        mass = np.where(off, 0.0, mass)
    flat = (fy.astype(np.intp) + offset) * size + (fx.astype(np.intp) + offset)
    flux_per_lum = 1.0 / (4.0 * math.pi * setup.distance_kpc**2)
    canvas = np.stack([
        np.bincount(flat, weights=lum_v * flux_per_lum, minlength=size * size),
        np.bincount(flat, weights=mass, minlength=size * size),
    ]).reshape(2, size, size)
    sharp = setup.psf_fwhm_arcsec / setup.pixel_arcsec < _DELTA_KERNEL_PX
    flux_k, mass_k = _kernel_spectra(size, 0.0 if sharp else setup.moffat_gamma_px,
                                     setup.moffat_beta, setup.moffat_radius_px,
                                     setup.smooth_sigma_px)
    spectrum = scipy.fft.rfft2(canvas, workers=1, overwrite_x=True)
    spectrum[0] *= flux_k
    spectrum[1] *= mass_k
    maps = scipy.fft.irfft2(spectrum, s=(size, size), workers=1, overwrite_x=True)
    if not padded:
        maps = maps[:, offset : offset + n, offset : offset + n]
    np.maximum(maps, 0.0, out=maps)  # FFT round-off can leave -1e-20 where there is nothing
    return maps[0], maps[1]


def observe(snapshot: Snapshot, setup: ObservationSetup) -> xr.Dataset:
    """One mock observation: log10 flux and mass maps of the field of view.

    Parameters
    ----------
    snapshot : Snapshot
        The star table (positions pc, masses Msun, luminosities Lsun).
    setup : ObservationSetup
        Distance (kpc), seeing (arcsec) and geometry.

    Returns
    -------
    xarray.Dataset
        ``flux``: log10 of the per-pixel V-band flux in Lsun kpc^-2 (PSF + smoothing), floored at
        :data:`FLUX_FLOOR`; ``mass``: log10 of the per-pixel mass in Msun (smoothing only), floored
        at :data:`MASS_FLOOR`; both float32 with dims ``(y, x)`` and coordinates in arcsec from the
        field centre. Attributes give the linear totals in the field (``field_mass_msun``,
        ``field_flux_lsun_kpc2``, ``field_luminosity_v_lsun``), the setup and the snapshot.

    Examples
    --------
    >>> star = Snapshot(x=[0.0], y=[0.0], z=[0.0], vx=[0.0], vy=[0.0], vz=[0.0], mass=[0.8],
    ...                 radius=[1.0], luminosity=[1.0])
    >>> obs = observe(star, ObservationSetup(distance_kpc=15, psf_fwhm_arcsec=1.0))
    >>> obs.flux.shape, round(obs.attrs["field_mass_msun"], 6)
    ((160, 160), 0.8)
    """
    meta = getattr(snapshot, "meta", None)
    if isinstance(meta, dict) and "luminosity" in meta.get("missing_columns", ()):
        # dynamics-only reader output (the type of snapshot itself is checked by render)
        raise ObservationError(f"cannot observe: {snapshot.meta.get('missing_reason')}")
    flux, mass = render(snapshot, setup)
    coords = setup.pixel_centres_arcsec()
    field_flux = float(flux.sum())
    field_mass = float(mass.sum())
    attrs = {
        "title": "pi-DOC mock V-band observation",
        "snapshot_name": snapshot.name,
        "snapshot_time_gyr": snapshot.time,
        "field_mass_msun": field_mass,
        "field_flux_lsun_kpc2": field_flux,
        "field_luminosity_v_lsun": field_flux * 4.0 * math.pi * setup.distance_kpc**2,
        "flux_floor_lsun_kpc2": FLUX_FLOOR,
        "mass_floor_msun": MASS_FLOOR,
        "centre_method": "Casertano & Hut (1985) density centre, 6 nearest neighbours",
        **setup.to_attrs(),
    }
    return xr.Dataset(
        {
            "flux": (("y", "x"), np.log10(np.maximum(flux, FLUX_FLOOR)).astype(np.float32), {
                "long_name": "log10 V-band flux per pixel (Moffat PSF, Gaussian smoothing)",
                "units": "log10(Lsun kpc-2)",
            }),
            "mass": (("y", "x"), np.log10(np.maximum(mass, MASS_FLOOR)).astype(np.float32), {
                "long_name": "log10 stellar mass per pixel (Gaussian smoothing)",
                "units": "log10(Msun)",
            }),
        },
        coords={
            "y": ("y", coords, {"units": "arcsec", "long_name": "offset from field centre, y"}),
            "x": ("x", coords, {"units": "arcsec", "long_name": "offset from field centre, x"}),
        },
        attrs=attrs,
    )
