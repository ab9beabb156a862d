"""Fuzzing the imager's inputs (issue #9).

Extreme but legal setups and snapshots must give finite, floored maps (or the project's own
:class:`ObservationError` naming the parameter); illegal values must raise ObservationError, never
an unhandled numpy/astropy/Python exception. The named cases below each broke the imager once
(NaN maps, OverflowError, ZeroDivisionError, silent acceptance of wrong types) and are kept as
regression tests.
"""

import math
import re
import warnings
from decimal import Decimal
from fractions import Fraction

import numpy as np
import pytest
from astropy import units as u
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from pidoc_core.imager import (
    FLUX_FLOOR,
    MASS_FLOOR,
    ObservationError,
    ObservationSetup,
    observe,
)
from pidoc_core.photometry import snapshot_v_luminosity
from pidoc_core.snapshot import Snapshot

from .conftest import plummer_snapshot

#: A small cluster built once: the fuzzing is about the setups, not about big snapshots.
SNAP = plummer_snapshot(300, scale_pc=0.5, seed=11, name="fuzz")
LOG_FLUX_FLOOR = np.float32(np.log10(FLUX_FLOOR))
LOG_MASS_FLOOR = np.float32(np.log10(MASS_FLOOR))
BASE = dict(distance_kpc=10.0, psf_fwhm_arcsec=1.0)

FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def check_observation(obs, setup, snap):
    """The contract of a successful observation."""
    n = setup.n_pixels
    for var, floor in (("flux", LOG_FLUX_FLOOR), ("mass", LOG_MASS_FLOOR)):
        values = obs[var].values
        assert obs[var].dims == ("y", "x") and values.shape == (n, n)
        assert values.dtype == np.float32
        assert np.isfinite(values).all(), f"{var} map has non-finite pixels"
        assert values.min() >= floor
    np.testing.assert_array_equal(obs.x.values, setup.pixel_centres_arcsec())
    total_mass = snap.mass.sum()
    total_lv = snapshot_v_luminosity(snap).sum()
    for key, total in (("field_mass_msun", total_mass), ("field_luminosity_v_lsun", total_lv),
                       ("field_flux_lsun_kpc2", total_lv / (4 * math.pi * setup.distance_kpc**2))):
        value = obs.attrs[key]
        assert math.isfinite(value) and value >= 0, (key, value)
        assert value <= total * (1 + 1e-9) + 1e-300, (key, value, total)  # the field is a part


def observe_or_clear_error(kwargs, snap=SNAP):
    """Build the setup and observe; return the ObservationError if one was raised.

    Anything else (an unhandled exception, a RuntimeWarning such as numpy's 'invalid value
    encountered in cast', a non-finite map) fails the test.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        try:
            setup = ObservationSetup(**kwargs)
            obs = observe(snap, setup)
        except ObservationError as exc:
            assert type(exc) is ObservationError
            return exc
    check_observation(obs, setup, snap)
    return obs


# --------------------------------------------------------------------------------------------
# legal setups


def log_uniform(lo_exp, hi_exp):
    return st.floats(lo_exp, hi_exp).map(lambda e: 10.0**e)


@st.composite
def legal_setups(draw):
    """Setups across the whole geometry, with kernels small enough to fuzz quickly."""
    n = draw(st.integers(1, 96))
    pixel = draw(log_uniform(-2, 1))
    fwhm_px = draw(log_uniform(-3, 0.3))
    shift = st.one_of(st.floats(-60, 60), st.floats(-1e12, 1e12))
    return dict(
        distance_kpc=draw(log_uniform(-3, 9)),
        psf_fwhm_arcsec=fwhm_px * pixel,
        shift_arcsec=(draw(shift), draw(shift)),
        rotation_deg=draw(st.floats(allow_nan=False, allow_infinity=False)),
        line_of_sight=draw(st.sampled_from("xyz")),
        fov_arcsec=n * pixel,
        pixel_arcsec=pixel,
        moffat_beta=draw(st.floats(2.0, 20.0)),
        smooth_sigma_px=draw(st.one_of(st.just(0.0), st.floats(0.01, 4.0))),
    )


@FUZZ
@given(kwargs=legal_setups())
@example(kwargs=dict(distance_kpc=1e-3, psf_fwhm_arcsec=0.01))
@example(kwargs=dict(distance_kpc=1e9, psf_fwhm_arcsec=0.5, rotation_deg=-1e300))
@example(kwargs=dict(distance_kpc=15, psf_fwhm_arcsec=1, rotation_deg=-90.0, line_of_sight="y"))
@example(kwargs=dict(distance_kpc=15, psf_fwhm_arcsec=0.25, fov_arcsec=0.25, pixel_arcsec=0.25))
def test_fuzz_legal_setups_give_finite_floored_maps(kwargs):
    result = observe_or_clear_error(kwargs)
    assert not isinstance(result, ObservationError), f"legal setup refused: {result}"


@settings(max_examples=25, deadline=None)
@given(angle=st.integers(-100_000, 100_000), turns=st.integers(-10_000, 10_000))
def test_rotation_is_periodic_in_360_degrees(angle, turns):
    """Any integer angle, negative or beyond 360, is the same rotation as its value mod 360."""
    a = observe(SNAP, ObservationSetup(**BASE, rotation_deg=angle))
    b = observe(SNAP, ObservationSetup(**BASE, rotation_deg=angle + 360 * turns))
    c = observe(SNAP, ObservationSetup(**BASE, rotation_deg=angle % 360))
    for var in ("flux", "mass"):
        np.testing.assert_array_equal(a[var].values, b[var].values)
        np.testing.assert_array_equal(a[var].values, c[var].values)


@pytest.mark.parametrize("shift", [(1e4, 0.0), (0.0, -1e4), (-3e5, 2e5), (1e12, 1e12)])
def test_cluster_outside_the_field_gives_floor_maps_not_an_error(shift):
    """The documented behaviour: no error, both maps exactly at their floors, zero totals."""
    obs = observe(SNAP, ObservationSetup(**BASE, shift_arcsec=shift))
    assert (obs.flux.values == LOG_FLUX_FLOOR).all()
    assert (obs.mass.values == LOG_MASS_FLOOR).all()
    assert obs.attrs["field_mass_msun"] == 0.0
    assert obs.attrs["field_flux_lsun_kpc2"] == 0.0
    assert obs.attrs["field_luminosity_v_lsun"] == 0.0


@FUZZ
@given(fwhm=log_uniform(-2, 6), beta=st.floats(1.01, 5.0), sigma=st.floats(0.0, 1e5))
def test_fuzz_oversized_kernels_are_a_clear_error(fwhm, beta, sigma):
    """Setups whose PSF + smoothing kernel exceeds 2048 px are refused at construction, naming
    the parameters; the others are accepted (not observed here: large kernels take GBs)."""
    try:
        setup = ObservationSetup(**{**BASE, "psf_fwhm_arcsec": fwhm, "moffat_beta": beta,
                                    "smooth_sigma_px": sigma})
    except ObservationError as exc:
        assert type(exc) is ObservationError
        msg = str(exc)
        assert msg.startswith("psf_fwhm_arcsec=") and "smooth_sigma_px=" in msg, msg
        m = re.search(r"need a kernel of radius ([0-9.e+]+|inf) px.*; at most 2048 px$", msg)
        assert m is not None, msg
        assert float(m.group(1)) > 2048
    else:
        assert 1 <= setup.kernel_radius_px <= 2048


# --------------------------------------------------------------------------------------------
# extreme legal values that once broke the imager (each a fixed bug)

_EXTREME_BUGS = {
    "distance 1e200: OverflowError in render (distance_kpc**2)": dict(distance_kpc=1e200),
    "distance 1e-200: ZeroDivisionError in render": dict(distance_kpc=1e-200),
    "distance 1e-160: NaN maps (flux per Lsun overflows to inf)": dict(distance_kpc=1e-160),
    "distance 1e-20: numpy 'invalid value encountered in cast' (undefined int conversion)":
        dict(distance_kpc=1e-20),
    "shift 1e300: numpy 'invalid value encountered in cast'": dict(shift_arcsec=(1e300, -1e300)),
    "psf 1e308: OverflowError at construction (ceil of inf)": dict(psf_fwhm_arcsec=1e308),
    "psf 1e-80: NaN maps (Moffat kernel sums to 0)": dict(psf_fwhm_arcsec=1e-80),
    "psf 1e-200: ZeroDivisionError in astropy Moffat2DKernel": dict(psf_fwhm_arcsec=1e-200),
    "smooth_sigma_px 1e-3: NaN maps (Gaussian kernel sums to 0)": dict(smooth_sigma_px=1e-3),
    "smooth_sigma_px 1e-170: ZeroDivisionError in astropy Gaussian2DKernel":
        dict(smooth_sigma_px=1e-170),
    "smooth_sigma_px 1e308: OverflowError at construction": dict(smooth_sigma_px=1e308),
    "fov 1e308 / pixel 1e-308: OverflowError at construction (round of inf)":
        dict(fov_arcsec=1e308, pixel_arcsec=1e-308),
    "fov = pixel = 1e300: ZeroDivisionError in astropy Moffat2DKernel":
        dict(fov_arcsec=1e300, pixel_arcsec=1e300),
    "moffat_beta 1+1e-15: OverflowError at construction": dict(moffat_beta=1 + 1e-15),
    "moffat_beta 1e300: ZeroDivisionError at construction": dict(moffat_beta=1e300),
}


@pytest.mark.parametrize("changes", [
    pytest.param(kw, id=name.split(":")[0])
    for name, kw in _EXTREME_BUGS.items()
])
def test_extreme_legal_values_work_or_raise_clearly(changes):
    result = observe_or_clear_error({**BASE, **changes})
    if isinstance(result, ObservationError):  # a refusal must name a parameter it was given
        assert any(p in str(result) for p in changes), str(result)


@st.composite
def full_range_setups(draw):
    """Every parameter over the whole range ObservationSetup's validation accepts."""
    positive = st.floats(min_value=0.0, exclude_min=True, allow_infinity=False)
    finite = st.floats(allow_nan=False, allow_infinity=False)
    pixel = draw(positive)
    return dict(
        distance_kpc=draw(positive),
        psf_fwhm_arcsec=draw(st.one_of(positive, positive.map(lambda f: f * pixel))),
        shift_arcsec=(draw(finite), draw(finite)),
        rotation_deg=draw(finite),
        line_of_sight=draw(st.sampled_from("xyz")),
        fov_arcsec=draw(st.one_of(st.integers(1, 128).map(lambda n: n * pixel), positive)),
        pixel_arcsec=pixel,
        moffat_beta=draw(st.floats(min_value=1.0, exclude_min=True, allow_infinity=False)),
        smooth_sigma_px=draw(st.floats(min_value=0.0, allow_infinity=False)),
    )


@FUZZ
@given(kwargs=full_range_setups())
@example(kwargs={**BASE, "smooth_sigma_px": 1e-3})
def test_fuzz_whole_legal_float_range(kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        try:
            setup = ObservationSetup(**kwargs)
        except ObservationError:
            return
    if setup.kernel_radius_px > 64 or setup.n_pixels > 256:
        return  # legal, but too costly to observe in a fuzz loop
    observe_or_clear_error(kwargs)


# --------------------------------------------------------------------------------------------
# illegal values

_UNITS = {
    "distance_kpc": u.kpc, "psf_fwhm_arcsec": u.arcsec, "fov_arcsec": u.arcsec,
    "pixel_arcsec": u.arcsec, "rotation_deg": u.deg, "moffat_beta": u.one,
    "smooth_sigma_px": u.one, "shift_arcsec[0]": u.arcsec, "shift_arcsec[1]": u.arcsec,
}
_POSITIVE = ("distance_kpc", "psf_fwhm_arcsec", "fov_arcsec", "pixel_arcsec")
_WRONG_UNITS = [u.s, u.kg, u.K, u.mag, u.pix, u.one, u.kpc, u.arcsec, u.km / u.s]


def setup_kwargs(param, value):
    kwargs = dict(BASE)
    if param.startswith("shift_arcsec["):
        pair = [0.0, 0.0]
        pair[int(param[-2])] = value
        kwargs["shift_arcsec"] = tuple(pair)
    else:
        kwargs[param] = value
    return kwargs


def _parses_as_float(s):
    try:
        float(s)
    except (TypeError, ValueError):
        return False
    return True


not_numbers = st.one_of(
    st.none(),
    st.text().filter(lambda s: not _parses_as_float(s)),
    st.lists(st.floats(), min_size=1, max_size=4),
    st.lists(st.floats(), min_size=2, max_size=4).map(np.array),
    st.dictionaries(st.text(max_size=3), st.floats(), max_size=2),
    st.complex_numbers(allow_nan=False),  # Python complex is refused even with imag == 0
    st.builds(object),
    st.just(np.array([])),
)


@st.composite
def bad_parameter(draw):
    """(parameter, value, message pattern) for an illegal value of one parameter."""
    param = draw(st.sampled_from(sorted(_UNITS)))
    unit = _UNITS[param]
    families = [
        st.tuples(st.sampled_from([math.nan, math.inf, -math.inf, np.float32("nan"),
                                   np.float64("-inf"), Decimal("NaN"), Decimal("-Infinity")]),
                  st.just("must be finite")),
        st.tuples(st.sampled_from([math.nan, math.inf, -math.inf]).map(lambda v: v * unit),
                  st.just("must be finite")),
        st.tuples(not_numbers, st.just("must be a number")),
        st.tuples(st.sampled_from([w for w in _WRONG_UNITS if not w.is_equivalent(unit)])
                  .map(lambda w: 3.0 * w), st.just("must be in units of")),
    ]
    if param in _POSITIVE:
        families.append(st.tuples(st.one_of(st.floats(max_value=0.0, allow_nan=False,
                                                      allow_infinity=False),
                                            st.integers(max_value=0)),
                                  st.just("must be > 0")))
    elif param == "moffat_beta":
        families.append(st.tuples(st.floats(max_value=1.0, allow_nan=False, allow_infinity=False),
                                  st.just("must be > 1")))
    elif param == "smooth_sigma_px":
        families.append(st.tuples(st.floats(max_value=-1e-300, allow_infinity=False),
                                  st.just("must be >= 0")))
    value, message = draw(st.one_of(families))
    return param, value, message


@settings(max_examples=100, deadline=None)
@given(case=bad_parameter())
def test_fuzz_illegal_values_raise_observation_error_naming_the_parameter(case):
    param, value, message = case
    with pytest.raises(Exception) as info:
        ObservationSetup(**setup_kwargs(param, value))
    exc = info.value
    assert type(exc) is ObservationError, f"{type(exc).__name__}: {exc}"
    assert str(exc).startswith(f"{param} {message}"), str(exc)


@settings(max_examples=60, deadline=None)
@given(shift=st.one_of(
    st.none(), st.floats(allow_nan=False), st.integers(),
    st.lists(st.floats(-5, 5), max_size=6).filter(lambda s: len(s) != 2),
    st.lists(st.floats(-5, 5), max_size=6).filter(lambda s: len(s) != 2).map(tuple),
    st.lists(st.floats(-5, 5), max_size=6).filter(lambda s: len(s) != 2).map(np.array),
    st.text().filter(lambda s: len(s) != 2),
    st.just(np.zeros((3, 2)) * u.arcsec),
))
def test_fuzz_shift_that_is_not_a_pair(shift):
    with pytest.raises(Exception) as info:
        ObservationSetup(**BASE, shift_arcsec=shift)
    assert type(info.value) is ObservationError
    assert str(info.value).startswith("shift_arcsec must be a pair (x, y), got")


@settings(max_examples=60, deadline=None)
@given(los=st.one_of(st.text().filter(lambda s: s not in ("x", "y", "z")), st.none(),
                     st.integers(), st.floats(), st.just(b"z"), st.just(("z",))))
def test_fuzz_line_of_sight_not_x_y_z(los):
    with pytest.raises(Exception) as info:
        ObservationSetup(**BASE, line_of_sight=los)
    assert type(info.value) is ObservationError
    assert str(info.value).startswith("line_of_sight must be one of ['x', 'y', 'z'], got")


def test_inconsistent_field_and_pixel_are_clear_errors():
    with pytest.raises(ObservationError, match=r"^fov_arcsec / pixel_arcsec must be a whole"):
        ObservationSetup(**BASE, fov_arcsec=10, pixel_arcsec=3)
    with pytest.raises(ObservationError, match=r"^fov_arcsec / pixel_arcsec must be a whole"):
        ObservationSetup(**BASE, fov_arcsec=1, pixel_arcsec=2)  # less than one pixel
    with pytest.raises(ObservationError, match=r"4097 pixels a side; at most 4096"):
        ObservationSetup(**BASE, fov_arcsec=4097, pixel_arcsec=1)
    with pytest.raises(ObservationError, match=r"^distance_kpc must be > 0"):
        ObservationSetup(**BASE).replace(distance_kpc=-1)  # replace() validates too


def test_render_inputs_of_the_wrong_type():
    setup = ObservationSetup(**BASE)
    with pytest.raises(ObservationError, match="snapshot must be a pidoc_core Snapshot, got str"):
        observe("snap.ecsv", setup)
    with pytest.raises(ObservationError, match="setup must be an ObservationSetup, got dict"):
        observe(SNAP, dict(BASE))


@settings(max_examples=60, deadline=None)
@given(value=st.floats(1e-3, 1e3), form=st.sampled_from(
    ["float", "int-ish", "float32", "0d-array", "fraction", "decimal", "quantity-pc",
     "quantity-Mpc"]))
def test_number_likes_and_convertible_quantities_are_accepted(value, form):
    converted = {
        "float": value, "int-ish": np.int64(max(1, round(value))), "float32": np.float32(value),
        "0d-array": np.array(value), "fraction": Fraction(value), "decimal": Decimal(value),
        "quantity-pc": value * 1e3 * u.pc, "quantity-Mpc": value * 1e-3 * u.Mpc,
    }[form]
    setup = ObservationSetup(distance_kpc=converted, psf_fwhm_arcsec=1.0)
    assert type(setup.distance_kpc) is float
    assert setup.distance_kpc == pytest.approx(float(converted if form == "int-ish" else value),
                                               rel=1e-6)


_IMPOSTORS = {
    "bool True as distance (taken as 1 kpc)": dict(distance_kpc=True),
    "numpy bool as fwhm (taken as 1 arcsec)": dict(psf_fwhm_arcsec=np.True_),
    "numeric string as distance (taken as 15 kpc)": dict(distance_kpc="15"),
    "bytes as distance (taken as 15 kpc)": dict(distance_kpc=b"15"),
    "two-character string as shift (taken as (1, 2))": dict(shift_arcsec="12"),
    "numpy complex as distance (imaginary part dropped with a ComplexWarning)":
        dict(distance_kpc=np.complex128(15 + 1j)),
    "list as line_of_sight: unhandled TypeError (unhashable)": dict(line_of_sight=["z"]),
    "set as line_of_sight: unhandled TypeError (unhashable)": dict(line_of_sight={"z"}),
    "scalar Quantity as shift: unhandled astropy TypeError": dict(shift_arcsec=5 * u.arcsec),
}


@pytest.mark.parametrize("changes", [
    pytest.param(kw, id=name.split(" (")[0].split(":")[0])
    for name, kw in _IMPOSTORS.items()
])
def test_wrong_types_that_slip_through_are_refused(changes):
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # numpy's ComplexWarning is one
        with pytest.raises(Exception) as info:
            ObservationSetup(**{**BASE, **changes})
    assert type(info.value) is ObservationError, f"{type(info.value).__name__}: {info.value}"
    (param,) = changes
    assert str(info.value).startswith(param), str(info.value)


# --------------------------------------------------------------------------------------------
# snapshot side

SETUP = ObservationSetup(**BASE)


def stars(positions, *, luminosity=1.0, mass=1.0, teff=5772.0, radius=1.0):
    pos = np.atleast_2d(np.asarray(positions, dtype=float)).reshape(-1, 3)
    n = len(pos)
    full = lambda v: np.broadcast_to(np.asarray(v, float), n)  # noqa: E731
    return Snapshot(x=pos[:, 0], y=pos[:, 1], z=pos[:, 2], vx=np.zeros(n), vy=np.zeros(n),
                    vz=np.zeros(n), mass=full(mass), radius=full(radius),
                    luminosity=full(luminosity), teff=None if teff is None else full(teff))


@pytest.mark.parametrize("teff", [5772.0, None], ids=["teff-given", "teff-derived"])
def test_dark_cluster_gives_flux_floor_and_a_mass_map(teff):
    rng = np.random.default_rng(3)
    dark = stars(rng.normal(scale=0.2, size=(300, 3)), luminosity=0.0, mass=0.6, teff=teff,
                 radius=0.0 if teff is None else 1.0)
    obs = observe(dark, SETUP)
    check_observation(obs, SETUP, dark)
    assert (obs.flux.values == LOG_FLUX_FLOOR).all()
    assert obs.attrs["field_flux_lsun_kpc2"] == 0.0
    assert obs.attrs["field_luminosity_v_lsun"] == 0.0
    assert obs.attrs["field_mass_msun"] == pytest.approx(300 * 0.6, rel=1e-6)  # all in the field
    assert obs.mass.values.max() > LOG_MASS_FLOOR + 5


@pytest.mark.parametrize("where", [(0.0, 0.0, 0.0), (1e6, -1e6, 3e5)])
def test_single_star_is_centred_and_conserved(where):
    star = stars([where], luminosity=2.0, mass=0.8)
    obs = observe(star, SETUP)
    check_observation(obs, SETUP, star)
    assert np.unravel_index(obs.flux.values.argmax(), (160, 160)) == (80, 80)
    assert np.unravel_index(obs.mass.values.argmax(), (160, 160)) == (80, 80)
    assert obs.attrs["field_mass_msun"] == pytest.approx(0.8, rel=1e-9)
    assert obs.attrs["field_luminosity_v_lsun"] == pytest.approx(
        snapshot_v_luminosity(star)[0], rel=1e-9)  # the PSF support (9") lies inside the field


@pytest.mark.parametrize("n", [2, 7, 8, 300])  # below and above the 8-star density-centre switch
def test_coincident_stars_look_like_one_star_of_their_sum(n):
    spot = (12.0, -3.0, 7.0)
    many = stars([spot] * n, luminosity=1.5, mass=0.5)
    one = stars([spot], luminosity=1.5 * n, mass=0.5 * n)
    a, b = observe(many, SETUP), observe(one, SETUP)
    check_observation(a, SETUP, many)
    for var in ("flux", "mass"):
        np.testing.assert_allclose(a[var].values, b[var].values, atol=2e-5)


def test_cluster_far_from_the_origin_is_recentred():
    far = Snapshot(**{**{c: getattr(SNAP, c) for c in ("vx", "vy", "vz", "mass", "radius",
                                                        "luminosity", "teff")},
                      "x": SNAP.x + 1e6, "y": SNAP.y - 1e6, "z": SNAP.z + 1e6})
    a, b = observe(SNAP, SETUP), observe(far, SETUP)
    check_observation(b, SETUP, far)
    for var in ("flux", "mass"):
        np.testing.assert_allclose(b[var].values, a[var].values, atol=1e-4)


def test_runaway_star_1e6_pc_away_changes_nothing():
    runaway = np.array([[1e6, 0.0, 0.0]])
    pos = np.vstack([np.c_[SNAP.x, SNAP.y, SNAP.z], runaway])
    snap = stars(pos, luminosity=np.r_[SNAP.luminosity, 1e6], mass=np.r_[SNAP.mass, 1.0],
                 teff=np.r_[SNAP.teff, 5772.0])
    a, b = observe(SNAP, SETUP), observe(snap, SETUP)
    check_observation(b, SETUP, snap)
    for var in ("flux", "mass"):
        np.testing.assert_allclose(b[var].values, a[var].values, atol=1e-4)


def test_stars_spread_over_1e6_pc_leave_an_almost_empty_field():
    rng = np.random.default_rng(5)
    sparse = stars(rng.normal(scale=1e6, size=(300, 3)))
    obs = observe(sparse, SETUP)
    check_observation(obs, SETUP, sparse)
    assert obs.attrs["field_mass_msun"] <= 10  # a handful of stars at most near the centre


@FUZZ
@given(data=st.data(), n=st.integers(1, 20))
def test_fuzz_small_snapshots(data, n):
    coord = st.floats(-1e6, 1e6)
    pos = data.draw(st.lists(st.tuples(coord, coord, coord), min_size=n, max_size=n))
    pos = np.array(pos)
    if data.draw(st.booleans()):  # a bunch of exactly coincident stars
        pos[: data.draw(st.integers(1, n))] = pos[0]
    lum = data.draw(st.lists(st.one_of(st.just(0.0), st.floats(1e-6, 1e6)), min_size=n,
                             max_size=n))
    mass = data.draw(st.lists(st.floats(1e-3, 1e3), min_size=n, max_size=n))
    snap = stars(pos, luminosity=lum, mass=mass, teff=data.draw(st.sampled_from([5772.0, None])))
    result = observe_or_clear_error(BASE, snap)
    assert not isinstance(result, ObservationError), str(result)


def test_empty_snapshot_is_a_clear_error():
    empty = stars(np.zeros((0, 3)))
    with pytest.raises(Exception) as info:
        observe(empty, SETUP)
    assert type(info.value) is ObservationError
    assert "no stars" in str(info.value)


def test_astronomically_far_stars_give_finite_maps():
    rng = np.random.default_rng(6)
    snap = stars(rng.normal(size=(30, 3)) * 1e300)
    result = observe_or_clear_error(BASE, snap)
    assert not isinstance(result, ObservationError), str(result)
