"""Physics of the imager: PSF shape, conservation, distance scaling, geometry, leakage, errors."""

import math

import numpy as np
import pytest
from astropy import units as u

from pidoc_core.imager import (
    FLUX_FLOOR,
    PC_PER_ARCSEC_PER_KPC,
    ObservationError,
    ObservationSetup,
    observe,
    render,
)
from pidoc_core.photometry import snapshot_v_luminosity

from .conftest import plummer_snapshot, point_snapshot


def moffat(r, gamma, beta):
    """Analytic Moffat surface brightness normalised to unit integral (per unit area)."""
    return (beta - 1.0) / (math.pi * gamma**2) * (1.0 + (r / gamma) ** 2) ** (-beta)


def pixel_moffat(offsets, fwhm_px, beta, sub=20):
    """Analytic unit-integral Moffat of the given FWHM averaged over pixels at (offset, 0)."""
    gamma = fwhm_px / (2.0 * math.sqrt(2.0 ** (1.0 / beta) - 1.0))
    s = (np.arange(sub) + 0.5) / sub - 0.5
    sx, sy = np.meshgrid(s, s)
    return np.array([moffat(np.hypot(o + sx, sy), gamma, beta).mean() for o in offsets])


@pytest.mark.parametrize("fwhm", [0.5, 1.0, 1.5])
def test_point_source_gives_moffat_of_requested_fwhm(fwhm):
    star = point_snapshot([[0.0, 0.0, 0.0]])
    setup = ObservationSetup(distance_kpc=10, psf_fwhm_arcsec=fwhm, smooth_sigma_px=0)
    flux, _ = render(star, setup)
    flux_total = snapshot_v_luminosity(star).sum() / (4 * math.pi * 10.0**2)
    row = flux[80] / flux_total  # the star sits in pixel (80, 80)
    offsets = np.arange(0, 15)
    expected = pixel_moffat(offsets, fwhm / 0.25, 2.5)
    # 1e-3 of the light lies beyond the truncation radius and is given back by renormalisation
    np.testing.assert_allclose(row[80 + offsets], expected / (1 - 1e-3), rtol=0.01)
    assert np.allclose(row[80 - offsets], row[80 + offsets], rtol=1e-9)  # symmetric


def test_padded_canvas_conserves_flux_and_mass(plummer):
    setup = ObservationSetup(distance_kpc=50, psf_fwhm_arcsec=1.5, shift_arcsec=(3, -2),
                             rotation_deg=33)
    flux, mass = render(plummer, setup, padded=True)
    x = np.array([plummer.x, plummer.y]) / setup.pc_per_arcsec
    half_canvas = setup.canvas_pixels * setup.pixel_arcsec / 2 - 6  # stars well inside canvas
    inside = np.all(np.abs(x) < half_canvas, axis=0)
    lum = snapshot_v_luminosity(plummer)
    # all but the far halo is on the canvas; compare against exactly the stars that fell on it
    expected_l = lum[inside].sum()
    got_l = flux.sum() * 4 * math.pi * 50.0**2
    assert got_l >= expected_l * (1 - 1e-12)
    compact = plummer_snapshot(5000, scale_pc=0.3, seed=3)
    f2, m2 = render(compact, ObservationSetup(distance_kpc=80, psf_fwhm_arcsec=1.0), padded=True)
    assert f2.sum() * 4 * math.pi * 80.0**2 == pytest.approx(
        snapshot_v_luminosity(compact)[_on_canvas(compact, 80, 1.0)].sum(), rel=1e-6)
    assert m2.sum() == pytest.approx(compact.mass[_on_canvas(compact, 80, 1.0)].sum(), rel=1e-6)


def _on_canvas(snap, d, fwhm):
    setup = ObservationSetup(distance_kpc=d, psf_fwhm_arcsec=fwhm)
    half = setup.fov_arcsec / 2 + (setup.canvas_pixels - setup.n_pixels) / 2 * setup.pixel_arcsec
    pos = (snap.positions - snap.density_centre)[:, :2] / setup.pc_per_arcsec
    return np.all((pos >= -half) & (pos < half), axis=1)


def test_flux_scales_as_inverse_square_and_size_as_inverse_distance():
    snap = plummer_snapshot(20_000, scale_pc=0.05, seed=5)
    snap = snap.select(np.hypot(snap.x, snap.y) < 1.0)  # all on the canvas at both distances
    sharp = dict(psf_fwhm_arcsec=0.02, smooth_sigma_px=0)
    f1, m1 = render(snap, ObservationSetup(distance_kpc=10, **sharp), padded=True)
    f2, m2 = render(snap, ObservationSetup(distance_kpc=20, **sharp), padded=True)
    assert f2.sum() / f1.sum() == pytest.approx(0.25, rel=1e-6)

    r50 = [_half_mass_radius(m) for m in (m1, m2)]
    assert r50[0] / r50[1] == pytest.approx(2.0, rel=0.03)



def _half_mass_radius(mass_map):
    n = mass_map.shape[0]
    c = (np.arange(n) - n / 2 + 0.5) * 0.25
    yy, xx = np.meshgrid(c, c, indexing="ij")
    xc, yc = _centroid(mass_map)
    r = np.hypot(xx - xc, yy - yc).ravel()
    order = np.argsort(r)
    cum = np.cumsum(mass_map.ravel()[order])
    return r[order][np.searchsorted(cum, cum[-1] / 2)]


def _centroid(mass_map):
    n = mass_map.shape[0]
    c = (np.arange(n) - n / 2 + 0.5) * 0.25
    w = mass_map / mass_map.sum()
    return (w.sum(axis=0) * c).sum(), (w.sum(axis=1) * c).sum()


def test_shift_moves_centroid_by_the_shift():
    snap = plummer_snapshot(20_000, scale_pc=0.05, seed=7)
    base = ObservationSetup(distance_kpc=25, psf_fwhm_arcsec=1.0)
    x0, y0 = _centroid(render(snap, base, padded=True)[1])
    x1, y1 = _centroid(render(snap, base.replace(shift_arcsec=(3.3, -4.1)), padded=True)[1])
    assert x1 - x0 == pytest.approx(3.3, abs=0.01)
    assert y1 - y0 == pytest.approx(-4.1, abs=0.01)
    flux_x, flux_y = _centroid(render(snap, base.replace(shift_arcsec=(3.3, -4.1)), padded=True)[0])
    assert (flux_x - x0, flux_y - y0) == pytest.approx((3.3, -4.1), abs=0.02)


@pytest.mark.parametrize("k", [1, 2, 3])
def test_rotation_by_quarter_turns_equals_rot90(plummer, k):
    base = ObservationSetup(distance_kpc=25, psf_fwhm_arcsec=1.0)
    ref = observe(plummer, base)
    rot = observe(plummer, base.replace(rotation_deg=90 * k))
    for var in ("flux", "mass"):
        np.testing.assert_allclose(rot[var].values, np.rot90(ref[var].values, k), atol=2e-6)
    assert rot.attrs["field_mass_msun"] == pytest.approx(ref.attrs["field_mass_msun"], rel=1e-9)


def test_free_rotation_preserves_radial_structure(plummer):
    base = ObservationSetup(distance_kpc=25, psf_fwhm_arcsec=1.0)
    a = render(plummer, base)[1]
    b = render(plummer, base.replace(rotation_deg=37.0))[1]
    assert b.sum() == pytest.approx(a.sum(), rel=0.02)  # same stars, field corners differ
    assert _half_mass_radius(b) == pytest.approx(_half_mass_radius(a), rel=0.02)


def test_bright_star_just_outside_field_leaks_into_it():
    rng = np.random.default_rng(2)
    core = rng.normal(scale=0.01, size=(200, 3))
    setup = ObservationSetup(distance_kpc=10, psf_fwhm_arcsec=1.0)
    outside = 20.5 * setup.pc_per_arcsec  # 0.5" beyond the field edge at x = +20"
    faint = point_snapshot(core, luminosity=1e-6)
    bright = point_snapshot(np.vstack([core, [[outside, 0.0, 0.0]]]),
                            luminosity=np.r_[np.full(200, 1e-6), 1e4])
    f_faint = render(faint, setup)[0].sum()
    f_bright = render(bright, setup)[0].sum()
    star_flux = 1e4 * snapshot_v_luminosity(point_snapshot([[0, 0, 0]]))[0] / (4 * math.pi * 100)
    leaked = f_bright - f_faint
    assert 0.05 * star_flux < leaked < 0.5 * star_flux
    obs = observe(bright, setup)
    assert obs.flux.isel(x=-1).max() > obs.flux.isel(x=0).max() + 1  # brighter on the star's side


def test_observe_dataset_units_and_totals(plummer):
    setup = ObservationSetup(distance_kpc=15, psf_fwhm_arcsec=1.0)
    obs = observe(plummer, setup)
    assert obs.flux.dims == ("y", "x") and obs.flux.shape == (160, 160)
    assert obs.flux.dtype == np.float32
    assert obs.flux.attrs["units"] == "log10(Lsun kpc-2)"
    assert obs.mass.attrs["units"] == "log10(Msun)"
    assert obs.x.attrs["units"] == "arcsec"
    assert float(obs.x[0]) == pytest.approx(-19.875)
    assert float((10 ** obs.mass.astype(float)).sum()) == pytest.approx(
        obs.attrs["field_mass_msun"], rel=1e-5)
    assert obs.attrs["field_luminosity_v_lsun"] == pytest.approx(
        obs.attrs["field_flux_lsun_kpc2"] * 4 * math.pi * 15**2)
    assert float(obs.flux.min()) >= math.log10(FLUX_FLOOR)


def test_setup_accepts_quantities():
    setup = ObservationSetup(distance_kpc=15000 * u.pc, psf_fwhm_arcsec=1 * u.arcsec,
                             rotation_deg=0.5 * u.rad)
    assert setup.distance_kpc == pytest.approx(15.0)
    assert setup.rotation_deg == pytest.approx(math.degrees(0.5))
    assert setup.pc_per_arcsec == pytest.approx(15 * PC_PER_ARCSEC_PER_KPC)
    assert PC_PER_ARCSEC_PER_KPC == pytest.approx(4.8481e-3, rel=1e-4)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(distance_kpc=0, psf_fwhm_arcsec=1), "distance_kpc must be > 0, got 0.0"),
        (dict(distance_kpc=-5, psf_fwhm_arcsec=1), "distance_kpc must be > 0, got -5.0"),
        (dict(distance_kpc=float("nan"), psf_fwhm_arcsec=1), "distance_kpc must be finite, got nan"),
        (dict(distance_kpc=10, psf_fwhm_arcsec=0), "psf_fwhm_arcsec must be > 0, got 0.0"),
        (dict(distance_kpc=10, psf_fwhm_arcsec=float("nan")), "psf_fwhm_arcsec must be finite"),
        (dict(distance_kpc=10, psf_fwhm_arcsec=1, shift_arcsec=(1, float("inf"))),
         "shift_arcsec[1] must be finite"),
        (dict(distance_kpc=10, psf_fwhm_arcsec=1, line_of_sight="w"), "line_of_sight must be one of"),
        (dict(distance_kpc=10, psf_fwhm_arcsec=1, pixel_arcsec=0.3),
         "fov_arcsec / pixel_arcsec must be a whole number"),
        (dict(distance_kpc=10, psf_fwhm_arcsec=1, moffat_beta=1.0), "moffat_beta must be > 1"),
        (dict(distance_kpc="far", psf_fwhm_arcsec=1), "distance_kpc must be a number, got 'far'"),
        (dict(distance_kpc=10 * u.s, psf_fwhm_arcsec=1), "distance_kpc must be in units of kpc"),
        (dict(distance_kpc=10, psf_fwhm_arcsec=1, smooth_sigma_px=-1),
         "smooth_sigma_px must be >= 0"),
    ],
)
def test_bad_setups_raise_clear_errors(kwargs, message):
    with pytest.raises(ObservationError, match=message.replace("[", r"\[").replace("]", r"\]")):
        ObservationSetup(**kwargs)


def test_line_of_sight_selects_projection():
    snap = point_snapshot([[0, 0, 0]] * 3 + [[0.0, 0.0, 0.05]])  # offset only along z
    setup = ObservationSetup(distance_kpc=10, psf_fwhm_arcsec=0.5, smooth_sigma_px=0)
    mz = render(snap, setup)[1]
    mx = render(snap, setup.replace(line_of_sight="x"))[1]
    assert np.count_nonzero(mz > 0.01 * mz.max()) < np.count_nonzero(mx > 0.01 * mx.max())


def test_extreme_but_legal_setups_work(plummer):
    for setup in (ObservationSetup(distance_kpc=1e-3, psf_fwhm_arcsec=0.01),
                  ObservationSetup(distance_kpc=1e4, psf_fwhm_arcsec=5.0, shift_arcsec=(500, 0)),
                  ObservationSetup(distance_kpc=30, psf_fwhm_arcsec=1, fov_arcsec=10,
                                   pixel_arcsec=0.5, smooth_sigma_px=0)):
        obs = observe(plummer, setup)
        assert np.isfinite(obs.flux.values).all() and np.isfinite(obs.mass.values).all()


def test_conventions_have_one_home():
    """The imager's geometry, floors and errors come from conventions / errors (one home)."""
    from pidoc_core import conventions, imager, paper, snapshot
    from pidoc_core.errors import PidocError

    assert imager.FLUX_FLOOR == conventions.FLUX_FLOOR == 1e-12
    assert imager.MASS_FLOOR == conventions.MASS_FLOOR == 1e-8
    assert conventions.FOV_ARCSEC == conventions.N_PIXELS * conventions.PIXEL_ARCSEC == 40.0
    setup = imager.ObservationSetup(distance_kpc=15.0, psf_fwhm_arcsec=1.0)
    assert (setup.fov_arcsec, setup.pixel_arcsec, setup.n_pixels) == (40.0, 0.25, 160)
    assert issubclass(imager.ObservationError, PidocError)
    assert issubclass(snapshot.SnapshotError, PidocError) and issubclass(PidocError, ValueError)
    assert paper.TRAINING_GRID["distance_kpc"] == paper.TRAIN_DISTANCES_KPC
    assert paper.RESULTS["pixel_mpe_mean"]["value"] == 27.4
