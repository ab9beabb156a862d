"""Snapshot validation, derived Teff, density centre and astropy Table round trips."""

import numpy as np
import pytest
from astropy import units as u
from astropy.table import Table

from pidoc_core.snapshot import Snapshot, SnapshotError, teff_from_luminosity_radius

from .conftest import plummer_snapshot


def columns(n=5, **overrides):
    base = dict(x=np.arange(n, dtype=float), y=np.zeros(n), z=np.zeros(n), vx=np.zeros(n),
                vy=np.zeros(n), vz=np.zeros(n), mass=np.ones(n), radius=np.ones(n),
                luminosity=np.ones(n))
    base.update(overrides)
    return base


def test_teff_follows_stefan_boltzmann():
    assert teff_from_luminosity_radius(1.0, 1.0) == pytest.approx(5772.0)
    # L = 16, R = 1 -> T doubles; L = 1, R = 4 -> T halves
    assert teff_from_luminosity_radius([16.0, 1.0], [1.0, 4.0]) == pytest.approx([11544.0, 2886.0])
    snap = Snapshot(**columns(luminosity=np.r_[1.0, 0.0, 100.0, 1.0, 1.0]))
    assert snap.teff[1] == 0.0 and snap.teff[2] == pytest.approx(5772.0 * 100**0.25)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (dict(mass=np.r_[1.0, 1.0, -0.5, 1.0, 1.0]), "column 'mass' must be > 0 Msun; row 2 has"),
        (dict(mass=np.r_[1.0, 0.0, 1.0, 1.0, 1.0]), "column 'mass' must be > 0 Msun; row 1"),
        (dict(luminosity=np.r_[1.0, 1.0, 1.0, -1e-3, 1.0]),
         "column 'luminosity' must be >= 0 Lsun; row 3"),
        (dict(vy=np.r_[0.0, np.nan, 0.0, 0.0, 0.0]), "column 'vy' has a non-finite value at row 1"),
        (dict(x=np.r_[0.0, 1.0, 2.0, 3.0, np.inf]), "column 'x' has a non-finite value at row 4"),
        (dict(z=np.zeros(4)), "columns have unequal lengths"),
        (dict(radius=np.r_[1.0, 0.0, 1.0, 1.0, 1.0]),
         "column 'radius' is 0 for a luminous star at row 1"),
        (dict(mass=np.array(["a", "b", "c", "d", "e"])), "column 'mass' is not numeric"),
        (dict(mass=np.ones((5, 2))), "column 'mass' must be one-dimensional"),
        (dict(kstar=[1, 1, 2.5, 1, 1]), r"column 'kstar' must hold integer SSE types in -1...20; row 2"),
        (dict(kstar=[1, 70000, 1, 1, 1]), "column 'kstar' must hold integer SSE types.*row 1"),
    ],
)
def test_validation_names_column_and_first_bad_row(overrides, message):
    with pytest.raises(SnapshotError, match=message):
        Snapshot(**columns(**overrides))


def test_snapshot_is_read_only_and_reports_itself():
    snap = Snapshot(**columns(), time=11.5, name="run")
    with pytest.raises(ValueError):
        snap.mass[0] = 2.0
    assert len(snap) == 5 and "11.5 Gyr" in repr(snap) and "n_stars=5" in repr(snap)
    with pytest.raises(SnapshotError, match="time must be finite"):
        Snapshot(**columns(), time=float("nan"))


def test_dark_remnants_by_kstar():
    snap = Snapshot(**columns(kstar=[1, 10, 13, 14, 15]))
    assert snap.is_dark.tolist() == [False, False, True, True, True]
    assert not Snapshot(**columns()).is_dark.any()


def test_density_centre_finds_the_dense_core_not_the_mean():
    core = plummer_snapshot(3000, scale_pc=0.2, seed=4)
    rng = np.random.default_rng(0)
    halo = rng.uniform(-20, 20, size=(1000, 3)) + [30.0, 0, 0]  # a lopsided sparse halo
    pos = np.vstack([core.positions + [1.0, -2.0, 0.5], halo])
    n = len(pos)
    snap = Snapshot(x=pos[:, 0], y=pos[:, 1], z=pos[:, 2], vx=np.zeros(n), vy=np.zeros(n),
                    vz=np.zeros(n), mass=np.ones(n), radius=np.ones(n), luminosity=np.ones(n))
    assert np.allclose(snap.density_centre, [1.0, -2.0, 0.5], atol=0.05)
    assert snap.positions.mean(axis=0)[0] > 5  # the plain mean is dragged off by the halo


def test_table_round_trip_with_unit_conversion(tmp_path):
    snap = Snapshot(**columns(kstar=[1, 1, 2, 10, 14]), time=12.25, name="analogue")
    table = snap.to_table()
    assert table["x"].unit == u.pc and table["vx"].unit == u.km / u.s
    assert table["mass"].unit == u.Msun and table["teff"].unit == u.K
    path = tmp_path / "snap.ecsv"
    table.write(path)
    back = Snapshot.from_table(Table.read(path))
    assert back.time == 12.25 and back.name == "analogue"
    for name, values in snap.columns().items():
        np.testing.assert_array_equal(getattr(back, name), values)
    # a table in other units converts once, at the edge
    other = Table({"x": [1.0] * u.kpc, "y": [0.0] * u.pc, "z": [0.0] * u.pc,
                   "vx": [1.0] * u.m / u.s, "vy": [0.0], "vz": [0.0], "mass": [2e30] * u.kg,
                   "radius": [1.0] * u.Rsun, "luminosity": [1.0] * u.Lsun})
    converted = Snapshot.from_table(other, time=500 * u.Myr)
    assert converted.x[0] == pytest.approx(1000.0)
    assert converted.vx[0] == pytest.approx(1e-3)
    assert converted.mass[0] == pytest.approx(2e30 / 1.98840987e30, rel=1e-6)
    assert converted.time == pytest.approx(0.5)


def test_from_table_errors_name_the_column():
    with pytest.raises(SnapshotError, match=r"lacks required column\(s\) \['luminosity'\]"):
        Snapshot.from_table(Table({k: v for k, v in columns().items() if k != "luminosity"}))
    bad = Table(columns())
    bad["mass"].unit = u.s
    with pytest.raises(SnapshotError, match="column 'mass' has unit s, which does not convert"):
        Snapshot.from_table(bad)
