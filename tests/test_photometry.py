"""Reed (1998) V-band bolometric correction and V-band luminosities."""

import numpy as np
import pytest

from pidoc_core.photometry import (
    MV_SUN,
    bolometric_correction_v,
    snapshot_v_luminosity,
    v_band_luminosity,
)
from pidoc_core.snapshot import Snapshot


def test_bc_v_uses_log_of_1e_minus_4_teff():
    # Reed (1998) eq. 5 with x = log10(T / 1e4 K): at 10^4 K the polynomial is its constant term
    assert bolometric_correction_v(1e4) == pytest.approx(-0.438)
    x = np.log10(5772.0) - 4
    expected = -8.499 * x**4 + 13.421 * x**3 - 8.131 * x**2 - 3.901 * x - 0.438
    assert bolometric_correction_v(5772.0) == pytest.approx(expected)
    # BC_V is near its maximum (~ -0.1 to -0.2) for F-G stars and strongly negative for cool and
    # hot stars, as tabulated by Flower (1996)
    assert -0.25 < bolometric_correction_v(6500.0) < 0.0
    assert bolometric_correction_v(3500.0) < -1.0
    assert bolometric_correction_v(30000.0) < -2.5


def test_sun_and_scaling_with_luminosity():
    sun = v_band_luminosity(1.0, 5772.0)
    # M_V(sun) = 4.74 - BC_V(5772 K) = 4.92 -> L_V = 10**(-0.4 (4.92 - 4.83))
    assert sun == pytest.approx(10 ** (-0.4 * (4.74 - bolometric_correction_v(5772.0) - MV_SUN)))
    assert 0.85 < sun < 1.0
    assert v_band_luminosity([1.0, 10.0], [5772.0, 5772.0]) == pytest.approx([sun, 10 * sun])


def test_dark_remnants_and_zero_luminosity_give_no_light():
    lum = np.array([1.0, 0.01, 5.0, 3.0, 0.0])
    teff = np.array([5772.0, 20000.0, 1e6, 8e5, 0.0])
    kstar = np.array([1, 11, 13, 14, 1])
    lv = v_band_luminosity(lum, teff, kstar)
    assert lv[0] > 0 and lv[1] > 0  # a white dwarf keeps its light
    assert lv[2] == 0 and lv[3] == 0 and lv[4] == 0
    snap = Snapshot(x=[0, 1], y=[0, 0], z=[0, 0], vx=[0, 0], vy=[0, 0], vz=[0, 0],
                    mass=[1.2, 1.0], radius=[1e-5, 1.0], luminosity=[0.5, 1.0], kstar=[13, 1])
    assert snapshot_v_luminosity(snap)[0] == 0 and snapshot_v_luminosity(snap)[1] == pytest.approx(sun_lv())


def sun_lv():
    return v_band_luminosity(1.0, 5772.0)
