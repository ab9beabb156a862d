"""Tests of pidoc_core.readers: each format written here by hand, read back, broken on purpose."""

from __future__ import annotations

import bz2
import gzip
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest
from astropy import units as u
from astropy.table import Table
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.io import FortranFile

from pidoc_core.readers import ReaderError, detect_format, read_snapshot, write_table
from pidoc_core.readers.nbody6 import count_conf3, find_sibling, read_conf3, read_hr_file
from pidoc_core.snapshot import Snapshot, SnapshotError

PC_PER_AU = float((1 * u.au).to_value(u.pc))
KMS_PER_PC_MYR = float((1 * u.pc / u.Myr).to_value(u.km / u.s))


# --------------------------------------------------------------------------------------------
# builders
# --------------------------------------------------------------------------------------------


def make_snapshot(n=20, seed=1, *, time=0.75, name="toy") -> Snapshot:
    rng = np.random.default_rng(seed)
    return Snapshot(
        x=rng.normal(0, 2, n), y=rng.normal(0, 2, n), z=rng.normal(0, 2, n),
        vx=rng.normal(0, 3, n), vy=rng.normal(0, 3, n), vz=rng.normal(0, 3, n),
        mass=rng.uniform(0.1, 2.0, n), radius=rng.uniform(0.1, 3.0, n),
        luminosity=rng.uniform(0.0, 10.0, n), kstar=rng.integers(0, 15, n),
        time=time, name=name,
    )


class Nbody6Run:
    """Ground truth for a hand-written NBODY6 run (N-body units + scalings)."""

    rbar, zmbar, tstar, vstar = 1.5, 0.6, 0.8, 1.3

    def __init__(self, n=12, npairs=0, seed=3, ttot=125.0):
        rng = np.random.default_rng(seed)
        self.n, self.npairs, self.ttot = n, npairs, ttot
        self.ntot = n + npairs
        self.mass = rng.uniform(0.5, 3.0, self.ntot)
        self.pos = rng.normal(0, 1, (self.ntot, 3))
        self.vel = rng.normal(0, 1, (self.ntot, 3))
        self.names = np.arange(1, self.ntot + 1) * 7 + 100
        for p in range(npairs):  # c.m. bodies N+1..NTOT carry the pair's summed mass
            self.mass[n + p] = self.mass[2 * p] + self.mass[2 * p + 1]
        self.kw = rng.integers(0, 15, self.ntot)
        self.logl = rng.uniform(-2, 3, self.ntot).round(3)
        self.logr = rng.uniform(-1, 1.5, self.ntot).round(3)

    @property
    def tphys(self):
        return self.ttot * self.tstar

    def scalars(self, nk=20):
        a = np.zeros(nk)
        a[0], a[1], a[2], a[3], a[10], a[11] = (self.ttot, self.npairs, self.rbar, self.zmbar,
                                                self.tstar, self.vstar)
        return a


def write_conf3_records(ff: FortranFile, run: Nbody6Run, *, layout="nbody6++gpu", fdtype="<f4",
                        idtype="<i4"):
    ff.write_record(np.array([run.ntot, 1, 7, 20], dtype=idtype))
    f = lambda a: np.asarray(a, dtype=fdtype).ravel()  # noqa: E731
    parts = [f(run.scalars()), f(run.mass)]
    if layout == "nbody6++gpu":
        parts += [f(np.ones(run.ntot)), f(np.full(run.ntot, 5.0))]
    parts += [f(run.pos), f(run.vel)]
    if layout in ("nbody6++gpu", "issue"):
        parts += [f(-np.ones(run.ntot))]
    parts += [np.asarray(run.names, dtype=idtype)]
    ff.write_record(*parts)


def write_conf3(path, run, *, layout="nbody6++gpu", fdtype="<f4", marker="<u4", idtype="<i4"):
    ff = FortranFile(path, "w", header_dtype=np.dtype(marker))
    write_conf3_records(ff, run, layout=layout, fdtype=fdtype, idtype=idtype)
    ff.close()
    return Path(path)


def write_sev_nbody6pp(path, run, rows, *, ttot=None, tphys=None):
    """sev.83_<t> of NBODY6++GPU: FORMAT (1X,1P,E12.5,2I8,I3,5E13.5)."""
    ttot = run.ttot if ttot is None else ttot
    tphys = run.tphys if tphys is None else tphys
    lines = [f"{len(rows):8d}{tphys:9.1f}"]
    for i in rows:
        te = 0.25 * (run.logl[i] - 2 * run.logr[i]) + 3.761777
        vals = (0.5, run.mass[i] * run.zmbar, run.logl[i], run.logr[i], te)
        lines.append(f" {ttot:12.5E}{i + 1:8d}{run.names[i]:8d}{run.kw[i]:3d}"
                     + "".join(f"{v:13.5E}" for v in vals))
    Path(path).write_text("\n".join(lines) + "\n")


def sev_nbody6_block(run, rows, *, tphys=None):
    """One fort.83 block of NBODY6: ' ## BEGIN',I8,F9.1 / (I10,I4,5F10.3) / ' ## END',I8."""
    tphys = run.tphys if tphys is None else tphys
    lines = [f" ## BEGIN{len(rows):8d}{tphys:9.1f}"]
    for i in rows:
        te = 0.25 * (run.logl[i] - 2 * run.logr[i]) + 3.7
        lines.append(f"{run.names[i]:10d}{run.kw[i]:4d}{0.5:10.3f}{run.mass[i] * run.zmbar:10.3f}"
                     f"{run.logl[i]:10.3f}{run.logr[i]:10.3f}{te:10.3f}")
    lines.append(f" ## END{len(rows):8d}")
    return "\n".join(lines) + "\n"


def write_bev_nbody6pp(path, run, pairs):
    """bev.82_<t> of NBODY6++GPU: FORMAT (1X,1P,E13.5,4I8,2I3,I4,6E13.5,6E13.5)."""
    lines = [f"{len(pairs):8d}{run.tphys:9.1f}"]
    for j1, j2 in pairs:
        r = run
        six_a = (0.1, 0.2, 1.0, 1.5, r.mass[j1] * r.zmbar, r.mass[j2] * r.zmbar)
        te = [0.25 * (r.logl[j] - 2 * r.logr[j]) + 3.761777537508 for j in (j1, j2)]
        six_b = (r.logl[j1], r.logl[j2], r.logr[j1], r.logr[j2], *te)
        lines.append(f" {r.ttot:13.5E}{j1 + 1:8d}{j2 + 1:8d}{r.names[j1]:8d}{r.names[j2]:8d}"
                     f"{r.kw[j1]:3d}{r.kw[j2]:3d}{0:4d}"
                     + "".join(f"{v:13.5E}" for v in six_a + six_b))
    Path(path).write_text("\n".join(lines) + "\n")


def petar_text(snap_rows, *, time_myr=100.0, header_extra=""):
    lines = [f"7 {len(snap_rows)} {time_myr!r}{header_extra}"]
    for row in snap_rows:
        lines.append(" ".join(repr(float(v)) if not isinstance(v, int) else str(v) for v in row))
    return "\n".join(lines) + "\n"


def petar_rows(n=10, seed=5, massless=()):
    """PeTar particle rows: 12 ParticleBase columns (SE on), 10 StarParameter, then extras."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        mass = 0.0 if i in massless else float(rng.uniform(0.1, 5))
        kw = 15 if i in massless else int(rng.integers(0, 14))
        base = [mass, *rng.normal(0, 3, 3), *rng.normal(0, 2, 3), 0, 1e-8, 0.0, 90.0, 101.0]
        star = [kw, mass * 1.1, mass, float(rng.uniform(0.1, 30)), 0.1, 0.01, 0.0, 0.0, 100.0,
                float(rng.uniform(0, 100))]
        extras = [0.01, 0.0, i + 1, 0, 1e-3, 2e-3, 0.1, 0.2, 0.3, -1.0, -0.5, 3]
        rows.append(base + star + extras)
    return rows


# --------------------------------------------------------------------------------------------
# tables
# --------------------------------------------------------------------------------------------


def assert_same(a: Snapshot, b: Snapshot, rtol=1e-12):
    for col in ("x", "y", "z", "vx", "vy", "vz", "mass", "radius", "luminosity", "teff"):
        np.testing.assert_allclose(getattr(a, col), getattr(b, col), rtol=rtol, err_msg=col)
    np.testing.assert_array_equal(a.kstar, b.kstar)
    assert a.time == pytest.approx(b.time, rel=rtol)
    assert a.name == b.name


@pytest.mark.parametrize("ext", [".ecsv", ".fits", ".h5", ".parquet"])
def test_write_table_round_trip(tmp_path, ext):
    snap = make_snapshot()
    path = write_table(snap, tmp_path / f"snap{ext}")
    back = read_snapshot(path)
    assert_same(back, snap)
    assert back.mass.sum() == pytest.approx(snap.mass.sum())  # mass conserved through the file
    assert not list(tmp_path.glob(".*tmp"))  # no temporary left behind


@pytest.mark.parametrize("fmt", ["ecsv", "fits", "hdf5", "parquet"])
def test_format_detected_without_extension(tmp_path, fmt):
    snap = make_snapshot(seed=2)
    path = write_table(snap, tmp_path / "noext", format=fmt)
    assert detect_format(path) == fmt
    assert_same(read_snapshot(path), snap)


def test_write_table_refuses_to_overwrite(tmp_path):
    snap = make_snapshot()
    path = write_table(snap, tmp_path / "s.ecsv")
    with pytest.raises(FileExistsError):
        write_table(snap, path)
    write_table(snap, path, overwrite=True)
    with pytest.raises(ValueError):
        write_table(snap, tmp_path / "s.txt")


def test_csv_aliases_and_unit_mapping(tmp_path):
    # positions in au, velocities in pc/Myr, time in Myr; alias names
    path = tmp_path / "stars"
    path.write_text(
        "X,Y,Z,vel_x,vel_y,vel_z,M,L,R,Teff,k*\n"
        "206264.806,0,0,1,0,0,1.0,1.0,1.0,5772,1\n"
        "0,412529.612,0,0,2,0,0.5,0.1,0.6,4000,0\n"
    )
    assert detect_format(path) == "csv"
    vel = "pc/Myr"
    snap = read_snapshot(path, units={"x": "au", "y": "au", "z": "au", "vx": vel, "vy": vel,
                                      "vz": vel}, time=500 * u.Myr)
    np.testing.assert_allclose(snap.x, [206264.806 * PC_PER_AU, 0])
    np.testing.assert_allclose(snap.x[0], 1.0, rtol=1e-8)  # 206264.806 au = 1 pc
    np.testing.assert_allclose(snap.y[1], 2.0, rtol=1e-8)
    np.testing.assert_allclose(snap.vx[0], KMS_PER_PC_MYR)
    assert KMS_PER_PC_MYR == pytest.approx(0.9778, abs=1e-4)
    np.testing.assert_allclose(snap.vy[1], 2 * KMS_PER_PC_MYR)
    np.testing.assert_array_equal(snap.teff, [5772, 4000])  # given Teff kept, not derived
    np.testing.assert_array_equal(snap.kstar, [1, 0])
    assert snap.time == pytest.approx(0.5)
    assert snap.name == "stars"


def test_ecsv_units_and_metadata_time_converted(tmp_path):
    t = Table()
    t["x"] = [1.0, 2.0] * u.au
    t["y"] = [0.0, 0.0] * u.pc
    t["z"] = [0.0, 0.0] * u.kpc
    for c in ("vx", "vy", "vz"):
        t[c] = [1.0, 0.0] * u.pc / u.Myr
    t["mass"] = [1.0, 2.0] * u.kg * 1.98840987e30
    t["lum"] = [1.0, 2.0] * u.W * 3.828e26
    t["rad"] = [1.0, 2.0] * u.km * 695700
    t.meta["time"] = 500.0
    t.meta["time_unit"] = "Myr"
    t.meta["name"] = "run-7"
    path = tmp_path / "t.ecsv"
    t.write(path)
    snap = read_snapshot(path)
    np.testing.assert_allclose(snap.x, np.array([1.0, 2.0]) * PC_PER_AU)
    np.testing.assert_allclose(snap.vx, [KMS_PER_PC_MYR, 0.0])
    np.testing.assert_allclose(snap.mass, [1.0, 2.0], rtol=1e-6)
    np.testing.assert_allclose(snap.luminosity, [1.0, 2.0], rtol=1e-3)
    np.testing.assert_allclose(snap.radius, [1.0, 2.0], rtol=1e-3)
    assert snap.time == pytest.approx(0.5)
    assert snap.name == "run-7"
    # an explicit unit overrides; a unit that does not convert is an error naming the column
    t["mass"] = [1.0, 2.0] * u.pc
    t.write(path, overwrite=True)
    with pytest.raises(ReaderError, match=r"t\.ecsv.*'mass'.*pc"):
        read_snapshot(path)


def test_unit_in_column_header_and_log_columns(tmp_path):
    path = tmp_path / "logs.csv"
    path.write_text(
        "x [au],y,z,vx,vy,vz,mass,logL,logR\n"
        "206264.806,0,0,0,0,0,1.0,2.0,0.5\n"
    )
    snap = read_snapshot(path)
    assert snap.x[0] == pytest.approx(1.0, rel=1e-8)
    assert read_snapshot(path, columns={"x": "x [au]"}).x[0] == pytest.approx(1.0, rel=1e-8)
    assert snap.luminosity[0] == pytest.approx(100.0)
    assert snap.radius[0] == pytest.approx(10 ** 0.5)
    # Teff derived from L and R (Stefan-Boltzmann)
    assert snap.teff[0] == pytest.approx(5772.0 * (100.0 / 10.0) ** 0.25)


def test_explicit_column_mapping_and_missing_column(tmp_path):
    path = tmp_path / "odd.csv"
    path.write_text("a,b,c,d,e,f,g,h,i\n1,2,3,4,5,6,7,8,9\n")
    ours = ["x", "y", "z", "vx", "vy", "vz", "mass", "radius", "luminosity"]
    names = dict(zip(ours, "abcdefghi"))
    snap = read_snapshot(path, columns=names)
    assert (snap.x[0], snap.mass[0], snap.luminosity[0]) == (1, 7, 9)
    with pytest.raises(ReaderError, match=r"odd\.csv.*no column for \['x'"):
        read_snapshot(path)
    with pytest.raises(ReaderError, match=r"odd\.csv.*'zz'.*not in the table"):
        read_snapshot(path, columns={**names, "mass": "zz"})
    with pytest.raises(ReaderError, match="not a snapshot column"):
        read_snapshot(path, columns={**names, "speed": "a"})


@pytest.mark.parametrize("bad,match", [("nan", r"'mass'.*non-finite"), ("-1.0", r"'mass'.*> 0")])
def test_bad_masses_raise_with_file_and_column(tmp_path, bad, match):
    path = tmp_path / "bad.csv"
    path.write_text(f"x,y,z,vx,vy,vz,mass,L,R\n0,0,0,0,0,0,1,1,1\n0,0,0,0,0,0,{bad},1,1\n")
    with pytest.raises(ReaderError, match=rf"bad\.csv.*{match}") as info:
        read_snapshot(path)
    assert isinstance(info.value, SnapshotError)


def test_parquet_written_by_pandas(tmp_path):
    import pandas as pd

    frame = pd.DataFrame({"x": [0.0, 1.0], "y": [0.0, 0.0], "z": [0.0, 0.0], "vx": [1.0, 0.0],
                          "vy": [0.0, 0.0], "vz": [0.0, 0.0], "M": [1.0, 0.5],
                          "lum": [1.0, 0.1], "rad": [1.0, 0.7], "kw": [1, 0]})
    path = tmp_path / "frame"
    frame.to_parquet(path)
    assert detect_format(path) == "parquet"
    snap = read_snapshot(path, units={"vx": "pc/Myr"})
    np.testing.assert_allclose(snap.vx, [KMS_PER_PC_MYR, 0.0])
    np.testing.assert_array_equal(snap.kstar, [1, 0])
    assert snap.mass.sum() == pytest.approx(1.5)


def test_hdf5_group_of_datasets(tmp_path):
    import h5py

    path = tmp_path / "group.h5"
    with h5py.File(path, "w") as f:
        for c in ("x", "y", "z", "vx", "vy", "vz"):
            f[c] = np.arange(3.0)
        f["mass"] = np.ones(3)
        f["R"] = np.ones(3)
        f["L"] = np.ones(3)
        f["x"].attrs["unit"] = "au"
        f.attrs["time"] = 250.0
        f.attrs["time_unit"] = "Myr"
    snap = read_snapshot(path)
    np.testing.assert_allclose(snap.x, np.arange(3.0) * PC_PER_AU)
    assert snap.time == pytest.approx(0.25)


def test_optional_alias_must_be_numeric_and_masked_values_are_errors(tmp_path):
    path = tmp_path / "typed.csv"
    path.write_text("x,y,z,vx,vy,vz,m,L,R,type\n0,0,0,0,0,0,1,1,1,MS\n1,0,0,0,0,0,2,3,1,giant\n")
    snap = read_snapshot(path)  # the string 'type' column is not taken for kstar
    assert snap.kstar is None and len(snap) == 2
    path.write_text("x,y,z,vx,vy,vz,m,L,R\n0,0,0,0,0,0,1,1,1\n1,0,0,0,0,0,,3,1\n")
    with pytest.raises(ReaderError, match=r"typed\.csv: column 'mass' has a missing value at row"):
        read_snapshot(path)


# --------------------------------------------------------------------------------------------
# NBODY6
# --------------------------------------------------------------------------------------------


def check_nbody6(snap: Snapshot, run: Nbody6Run, rows, rtol=1e-6):
    rows = np.asarray(rows)
    np.testing.assert_allclose(snap.mass, run.mass[rows] * run.zmbar, rtol=rtol)
    np.testing.assert_allclose(snap.positions, run.pos[rows] * run.rbar, rtol=rtol, atol=1e-6)
    np.testing.assert_allclose(snap.velocities, run.vel[rows] * run.vstar, rtol=rtol, atol=1e-6)
    np.testing.assert_allclose(snap.luminosity, 10 ** run.logl[rows], rtol=1e-5)
    np.testing.assert_allclose(snap.radius, 10 ** run.logr[rows], rtol=1e-5)
    np.testing.assert_array_equal(snap.kstar, run.kw[rows])
    assert snap.time == pytest.approx(run.ttot * run.tstar / 1000.0, rel=1e-6)  # Myr -> Gyr


@pytest.mark.parametrize("fdtype", ["<f4", "<f8"])
@pytest.mark.parametrize("marker", ["<u4", "<u8"])
@pytest.mark.parametrize("layout", ["nbody6++gpu", "nbody6", "issue"])
def test_nbody6_round_trip_precisions_markers_layouts(tmp_path, fdtype, marker, layout):
    run = Nbody6Run()
    conf = write_conf3(tmp_path / "conf.3_125", run, layout=layout, fdtype=fdtype, marker=marker)
    rows = np.random.default_rng(0).permutation(run.n)  # sev rows in another order than conf.3
    write_sev_nbody6pp(tmp_path / "sev.83_125", run, rows)
    assert detect_format(conf) == "nbody6"
    snap = read_snapshot(conf)  # format detected, sev.83 found next to it
    check_nbody6(snap, run, np.arange(run.n), rtol=1e-6 if fdtype == "<f4" else 1e-12)
    assert snap.meta["layout"] == layout
    assert snap.meta["float_bytes"] == int(fdtype[-1])
    # the same with the sev file given explicitly and a renamed conf file without extension
    other = tmp_path / "renamed"
    shutil.copy(conf, other)
    snap2 = read_snapshot(other, format="nbody6", sev=tmp_path / "sev.83_125")
    check_nbody6(snap2, run, np.arange(run.n), rtol=1e-6 if fdtype == "<f4" else 1e-12)


def test_nbody6_big_endian(tmp_path):
    run = Nbody6Run(seed=8)
    conf = write_conf3(tmp_path / "conf.3_125", run, fdtype=">f4", marker=">u4", idtype=">i4")
    write_sev_nbody6pp(tmp_path / "sev.83_125", run, range(run.n))
    check_nbody6(read_snapshot(conf), run, np.arange(run.n))


def test_nbody6_binaries_joined_from_bev_and_centre_of_mass_dropped(tmp_path):
    run = Nbody6Run(n=10, npairs=2, seed=11)
    conf = write_conf3(tmp_path / "conf.3_125", run)
    singles = list(range(4, run.n))[::-1]
    write_sev_nbody6pp(tmp_path / "sev.83_125", run, singles)
    # without bev.82 the four KS components have no L, R
    with pytest.raises(ReaderError, match=r"conf\.3_125: 4 of 10 stars have no row"):
        read_snapshot(conf)
    snap = read_snapshot(conf, missing="drop")
    assert len(snap) == 6 and snap.meta["n_missing_hr"] == 4
    write_bev_nbody6pp(tmp_path / "bev.82_125", run, [(2, 3), (0, 1)])
    snap = read_snapshot(conf)
    check_nbody6(snap, run, np.arange(run.n))
    # the centres of mass are not stars: total mass is that of the N components and singles
    assert snap.mass.sum() == pytest.approx(run.mass[: run.n].sum() * run.zmbar, rel=1e-6)


def test_nbody6_out3_with_several_snapshots_and_fort83_blocks(tmp_path):
    runs = [Nbody6Run(seed=s, ttot=t) for s, t in ((1, 0.0), (2, 10.0), (3, 20.0))]
    out3 = tmp_path / "OUT3"
    ff = FortranFile(out3, "w")
    for r in runs:
        write_conf3_records(ff, r, layout="nbody6")
    ff.close()
    (tmp_path / "fort.83").write_text(
        "".join(sev_nbody6_block(r, np.random.default_rng(4).permutation(r.n)) for r in runs))
    assert count_conf3(out3) == 3
    with pytest.raises(ReaderError, match=r"OUT3: holds more than one snapshot.*index="):
        read_snapshot(out3)
    for i in (0, 1, 2, -1):
        check_nbody6(read_snapshot(out3, index=i), runs[i], np.arange(runs[i].n))
    with pytest.raises(ReaderError, match="out of range"):
        read_snapshot(out3, index=3)
    blocks = read_hr_file(tmp_path / "fort.83")
    assert [b.tphys for b in blocks] == [pytest.approx(r.tphys, abs=0.05) for r in runs]


def test_nbody6_sev_time_must_match(tmp_path):
    run = Nbody6Run()
    conf = write_conf3(tmp_path / "conf.3_125", run)
    write_sev_nbody6pp(tmp_path / "sev.83_125", run, range(run.n), ttot=130.0)
    with pytest.raises(ReaderError, match=r"sev\.83_125.*does not match the snapshot"):
        read_snapshot(conf)
    check_nbody6(read_snapshot(conf, check_time=False), run, np.arange(run.n))


def test_nbody6_missing_sev_is_a_clear_error(tmp_path):
    run = Nbody6Run()
    conf = write_conf3(tmp_path / "conf.3_125", run)
    with pytest.raises(ReaderError, match=r"conf\.3_125: no sev\.83 file.*sev\.83_125"):
        read_snapshot(conf)
    assert find_sibling(conf, "sev")[0].name == "sev.83_125"


def test_nbody6_fixed_width_rows_and_d_exponents(tmp_path):
    run = Nbody6Run(n=3)
    conf = write_conf3(tmp_path / "x", run)
    # old NBODY6++ rows: TTOT NAME KW RI M1 logL logR with Fortran D exponents
    lines = [f"{run.n:8d}{run.tphys:9.1f}"]
    for i in range(run.n):
        vals = (0.5, run.mass[i] * run.zmbar, run.logl[i], run.logr[i])
        lines.append(f" {run.ttot:15.7E}{run.names[i]:8d}{run.kw[i]:5d}".replace("E", "D")
                     + "".join(f"{v:15.5E}".replace("E", "D") for v in vals))
    sev = tmp_path / "hr"
    sev.write_text("\n".join(lines) + "\n")
    check_nbody6(read_snapshot(conf, format="nbody6", sev=sev), run, np.arange(run.n))


def test_conf3_reader_exposes_raw_record(tmp_path):
    run = Nbody6Run(npairs=1)
    conf = write_conf3(tmp_path / "conf.3_1", run)
    raw = read_conf3(conf)
    assert (raw.ntot, raw.nk, raw.npairs) == (run.ntot, 20, 1)
    np.testing.assert_array_equal(raw.name, run.names)
    assert raw.rbar == pytest.approx(run.rbar)


def test_nbody6_fort82_fixed_width_names_and_end_counts(tmp_path):
    """NBODY6 fort.82 rows (2I6,2I3,I4,F6.1,F6.3,10F7.3) run together for 6-digit names."""
    run = Nbody6Run(n=6, npairs=1, seed=21)
    run.names = np.array([123456, 123457, 300001, 300002, 300003, 300004, 223456])
    out3 = write_conf3(tmp_path / "OUT3", run, layout="nbody6")
    (tmp_path / "fort.83").write_text(sev_nbody6_block(run, [5, 2, 4, 3]))
    rows = []
    for j1, j2 in [(0, 1)]:
        vals = (0.1, 0.2, 1.0, 1.5, run.mass[j1] * run.zmbar, run.mass[j2] * run.zmbar,
                run.logl[j1], run.logl[j2], run.logr[j1], run.logr[j2],
                0.25 * (run.logl[j1] - 2 * run.logr[j1]) + 3.7,
                0.25 * (run.logl[j2] - 2 * run.logr[j2]) + 3.7)
        rows.append(f"{run.names[j1]:6d}{run.names[j2]:6d}{run.kw[j1]:3d}{run.kw[j2]:3d}{0:4d}"
                    f"{vals[0]:6.1f}{vals[1]:6.3f}" + "".join(f"{v:7.3f}" for v in vals[2:]))
    assert rows[0].startswith("123456123457")
    (tmp_path / "fort.82").write_text(f" ## BEGIN{1:8d}{run.tphys:9.1f}\n" + "\n".join(rows)
                                      + f"\n ## END{1:8d}\n")
    check_nbody6(read_snapshot(out3), run, np.arange(run.n))
    (tmp_path / "fort.83").write_text(sev_nbody6_block(run, [5, 2, 4, 3]).replace("END       4",
                                                                                   "END       5"))
    with pytest.raises(ReaderError, match=r"fort\.83: block at line 1: '## END' counts 5 rows"):
        read_snapshot(out3)


def test_gfortran_subrecords_are_joined(tmp_path):
    """A record split into sub-records (negative leading marker) reads as one record."""
    run = Nbody6Run(n=5, seed=4)
    whole = write_conf3(tmp_path / "whole", run).read_bytes()
    header, data = whole[:24], whole[24:]
    payload = data[4:-4]
    cut = 36
    first, second = payload[:cut], payload[cut:]
    split = (header + np.int32(-len(first)).tobytes() + first + np.int32(len(first)).tobytes()
             + np.int32(len(second)).tobytes() + second + np.int32(-len(second)).tobytes())
    conf = tmp_path / "conf.3_125"
    conf.write_bytes(split)
    write_sev_nbody6pp(tmp_path / "sev.83_125", run, range(run.n))
    check_nbody6(read_snapshot(conf), run, np.arange(run.n))


# --------------------------------------------------------------------------------------------
# PeTar
# --------------------------------------------------------------------------------------------


def test_petar_units_and_columns(tmp_path):
    rows = petar_rows(massless=(3,))
    path = tmp_path / "data.7"
    path.write_text(petar_text(rows, time_myr=1500.0))
    assert detect_format(path) == "petar"
    snap = read_snapshot(path)
    arr = np.array([r for i, r in enumerate(rows) if i != 3], dtype=float)
    assert len(snap) == 9 and snap.meta["n_massless_dropped"] == 1
    np.testing.assert_allclose(snap.mass, arr[:, 0])
    np.testing.assert_allclose(snap.positions, arr[:, 1:4])  # pc
    np.testing.assert_allclose(snap.velocities, arr[:, 4:7] * KMS_PER_PC_MYR)  # pc/Myr -> km/s
    np.testing.assert_allclose(snap.radius, arr[:, 15])  # s_rad, Rsun
    np.testing.assert_allclose(snap.luminosity, arr[:, 21])  # s_lum, Lsun
    np.testing.assert_array_equal(snap.kstar, arr[:, 12].astype(int))
    assert snap.time == pytest.approx(1.5)  # Myr -> Gyr
    # kinetic energy scales with the square of the unit conversion
    ek_file = 0.5 * (arr[:, 0] * (arr[:, 4:7] ** 2).sum(1)).sum()
    ek = 0.5 * (snap.mass * (snap.velocities ** 2).sum(1)).sum()
    assert ek == pytest.approx(ek_file * KMS_PER_PC_MYR ** 2)


def test_petar_external_header_gzip_and_mpfrc(tmp_path):
    rows = petar_rows(n=4)
    path = tmp_path / "data.1.gz"
    text = petar_text(rows, time_myr=10.0, header_extra=" 8000 0 20 1 200 3")
    with gzip.open(path, "wt") as fh:
        fh.write(text)
    assert detect_format(path) == "petar"
    snap = read_snapshot(path)
    assert snap.meta["pos_offset_pc"] == [8000.0, 0.0, 20.0]
    assert snap.meta["vel_offset_kms"][1] == pytest.approx(200 * KMS_PER_PC_MYR)
    # use_mpfrc: 3 more position columns after pos
    mp = [r[:4] + [0.0, 0.0, 0.0] + r[4:] for r in rows]
    path2 = tmp_path / "data.2"
    path2.write_text(petar_text(mp))
    snap2 = read_snapshot(path2, use_mpfrc=True)
    np.testing.assert_allclose(snap2.luminosity, snap.luminosity)
    with pytest.raises(ReaderError, match=r"data\.2.*(s_type|s_mass).*use_mpfrc"):
        read_snapshot(path2)


def test_petar_truncated_and_bad_type(tmp_path):
    rows = petar_rows(n=6)
    text = petar_text(rows)
    path = tmp_path / "data.3"
    path.write_text("\n".join(text.splitlines()[:4]) + "\n")  # header + 3 of 6 rows
    with pytest.raises(ReaderError, match=r"data\.3: header says N = 6 particles but 3 rows"):
        read_snapshot(path, format="petar")
    path.write_text(text[: len(text) // 2])  # cut mid-row
    with pytest.raises(ReaderError, match=r"data\.3"):
        read_snapshot(path, format="petar")
    bad = [r[:] for r in rows]
    bad[2][12] = 2.5
    path.write_text(petar_text(bad))
    with pytest.raises(ReaderError, match=r"data\.3: particle row 3.*s_type.*2\.5"):
        read_snapshot(path)
    with pytest.raises(ReaderError, match="interrupt mode 'base'"):
        read_snapshot(path, interrupt_mode="base")


# --------------------------------------------------------------------------------------------
# broken files
# --------------------------------------------------------------------------------------------


def test_truncated_fortran_file_names_the_file(tmp_path):
    run = Nbody6Run()
    conf = write_conf3(tmp_path / "conf.3_125", run)
    write_sev_nbody6pp(tmp_path / "sev.83_125", run, range(run.n))
    data = conf.read_bytes()
    conf.write_bytes(data[: len(data) // 2])
    with pytest.raises(ReaderError, match=r"conf\.3_125: truncated file"):
        read_snapshot(conf, format="nbody6")
    # without a format: the first record is still framed, so it is still seen as NBODY6
    with pytest.raises(ReaderError, match=r"conf\.3_125.*truncated"):
        read_snapshot(conf)


def test_wrong_record_length_is_reported(tmp_path):
    run = Nbody6Run()
    path = tmp_path / "conf.3_9"
    ff = FortranFile(path, "w")
    ff.write_record(np.array([run.ntot + 1, 1, 1, 20], dtype="<i4"))  # NTOT disagrees with data
    ff.write_record(np.zeros(20 + 7 * run.ntot, dtype="<f4"), np.zeros(run.ntot, dtype="<i4"))
    ff.close()
    with pytest.raises(ReaderError, match=r"conf\.3_9: snapshot 0: data record is \d+ bytes, "
                                          r"which fits no known conf\.3 layout"):
        read_snapshot(path)


def test_empty_file_and_random_bytes(tmp_path):
    empty = tmp_path / "empty.dat"
    empty.write_bytes(b"")
    for fmt in (None, "nbody6", "petar", "ecsv", "csv", "fits", "hdf5", "parquet"):
        with pytest.raises(ReaderError, match=r"empty\.dat: empty file"):
            read_snapshot(empty, fmt)
    noise = tmp_path / "noise.bin"
    noise.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    with pytest.raises(ReaderError, match=r"noise\.bin: unrecognised binary content"):
        read_snapshot(noise)
    for fmt in ("nbody6", "petar", "ecsv", "csv", "fits", "hdf5", "parquet"):
        with pytest.raises(ReaderError, match=r"noise\.bin"):
            read_snapshot(noise, fmt)


@pytest.mark.parametrize("ext", [".ecsv", ".fits", ".h5", ".parquet"])
def test_truncated_tables(tmp_path, ext):
    path = write_table(make_snapshot(n=200), tmp_path / f"t{ext}")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2 + 7])
    with pytest.raises(ReaderError, match=rf"t\{ext}"):
        read_snapshot(path, ext.strip(".").replace("h5", "hdf5"))


def test_missing_file_unknown_format_and_foreign_options(tmp_path):
    with pytest.raises(ReaderError, match=r"nothere: no such file"):
        read_snapshot(tmp_path / "nothere")
    path = write_table(make_snapshot(), tmp_path / "s.ecsv")
    with pytest.raises(ReaderError, match="unknown format 'gadget'"):
        read_snapshot(path, "gadget")
    with pytest.raises(TypeError, match="sev"):
        read_snapshot(path, "ecsv", sev="x")
    with pytest.raises(ReaderError, match=r"s\.ecsv.*sev"):
        read_snapshot(path, sev="x")


# --------------------------------------------------------------------------------------------
# property-based: whatever the bytes, only ReaderError / SnapshotError come out
# --------------------------------------------------------------------------------------------


def _valid_files() -> dict[str, bytes]:
    """Bytes of one small valid file per format (the seeds of the corruption test)."""
    files = {}
    snap = make_snapshot(n=8)
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        for ext in (".ecsv", ".fits", ".h5", ".parquet"):
            files[ext] = write_table(snap, directory / f"v{ext}").read_bytes()
        files["conf3"] = write_conf3(directory / "conf.3_125", Nbody6Run(n=6)).read_bytes()
        files["conf3.gz"] = gzip.compress(files["conf3"])
        files.update(_new_format_files(directory))
    files["petar"] = petar_text(petar_rows(n=4)).encode()
    files["csv"] = b"x,y,z,vx,vy,vz,m,L,R\n" + b"1,2,3,4,5,6,1,1,1\n" * 3
    files["dat10"] = b"0.5\t1.0 2.0 3.0\t0.1 0.2 0.3\n" * 4
    files["dat10.bz2"] = bz2.compress(files["dat10"])
    return files


def _new_format_files(directory: Path) -> dict[str, bytes]:
    """One small file each of NBODY6++GPU snap.40 (both layouts), an AMUSE store and the
    2021 sev.83 layout (refused as a main file)."""
    import h5py

    out = {}
    n = 4
    with h5py.File(directory / "new.h5part", "w") as f:
        g = f.create_group("Step#0")
        g.attrs["Time"] = 1.0
        g["000 Scalars"] = np.r_[1.0, 0, 1.5, 10.0, n, 0.8, 0, 0, 0, 0, 0.8, 1.3, np.zeros(88)]
        for k, key in enumerate(("001 X1", "002 X2", "003 X3", "004 V1", "005 V2", "006 V3")):
            g[key] = np.arange(n, dtype=np.float32) + k
        g["023 M"], g["026 R*"], g["027 L*"] = np.ones(n), np.ones(n), np.ones(n)
        g["031 KW"], g["032 Name"], g["033 Type"] = np.ones(n, int), np.arange(n), np.zeros(n, int)
    out["snap40"] = (directory / "new.h5part").read_bytes()
    with h5py.File(directory / "old.h5part", "w") as f:
        g = f.create_group("Step#0")
        g.attrs["Time"] = 1.0
        for key in ("X1", "X2", "X3", "V1", "V2", "V3", "M", "RS", "L", "TE"):
            g[key] = np.linspace(0.5, 2.0, n)
        g["NAM"], g["KW"] = np.arange(n), np.ones(n, int)
        g.create_group("Binaries").attrs["N_BINARY"] = 0
    out["snap40-old"] = (directory / "old.h5part").read_bytes()
    with h5py.File(directory / "set.amuse", "w") as f:
        f.create_group("AMUSE_INF").attrs["version"] = "2.0"
        g = f.create_group("data").create_group("0000000001")
        g.attrs["type"] = "particles"
        g["keys"] = np.arange(n, dtype=np.uint64)
        a = g.create_group("attributes")
        for key in ("x", "y", "z", "vx", "vy", "vz", "mass"):
            a[key] = np.linspace(0.5, 2.0, n)
            a[key].attrs["units"] = "system.get('nbody').base('length')" if key in "xyz" else \
                "none"
    out["amuse"] = (directory / "set.amuse").read_bytes()
    row = f" {1.0:13.5E}{1:8d}{1:8d}{1:3d}" + "".join(f"{v:13.5E}" for v in
                                                      (0.5, 1, 0, 0, 3.761777, 10, 0))
    out["sev83-2021"] = f"{1:8d}{1.0:9.1f}\n{row}\n".encode()
    return out


_TEMPLATES = _valid_files()


def _read_and_classify(data: bytes, directory: Path, fmt=None):
    path = directory / "conf.3_125"  # a sibling sev.83_125 exists for the NBODY6 case
    path.write_bytes(data)
    try:
        snap = read_snapshot(path, fmt)
    except (ReaderError, SnapshotError) as exc:
        assert "conf.3_125" in str(exc)
        return None
    assert isinstance(snap, Snapshot)
    return snap


@pytest.fixture(scope="module")
def fuzz_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("fuzz")
    write_sev_nbody6pp(d / "sev.83_125", Nbody6Run(n=6), range(6))
    return d


@settings(max_examples=50, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=600),
       fmt=st.sampled_from([None, "nbody6", "nbody6-hdf5", "amuse", "dat10", "petar", "ecsv",
                            "csv", "fits", "hdf5", "parquet"]))
def test_fuzz_random_bytes(fuzz_dir, data, fmt):
    _read_and_classify(data, fuzz_dir, fmt)


@settings(max_examples=50, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(kind=st.sampled_from(sorted(_TEMPLATES)), cut=st.floats(0, 1),
       flips=st.lists(st.tuples(st.floats(0, 1), st.integers(0, 255)), max_size=3))
def test_fuzz_truncated_and_corrupted_files(fuzz_dir, kind, cut, flips):
    data = bytearray(_TEMPLATES[kind][: int(len(_TEMPLATES[kind]) * cut)])
    for where, value in flips:
        if data:
            data[min(int(where * len(data)), len(data) - 1)] = value
    _read_and_classify(bytes(data), fuzz_dir)


# --------------------------------------------------------------------------------------------
# property-based: a bad value anywhere, in any format, is named with its column


_BAD_VALUES = {"nan": np.nan, "inf": np.inf, "-inf": -np.inf, "negative": -1.5}
_NBODY6_COLUMNS = {"mass": None, "x": 0, "y": 1, "z": 2}  # conf.3 fields we can spoil


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(fmt=st.sampled_from(["ecsv", "csv", "fits", "hdf5", "parquet", "petar", "nbody6"]),
       column=st.sampled_from(["x", "y", "z", "vx", "vy", "vz", "mass", "radius", "luminosity"]),
       kind=st.sampled_from(sorted(_BAD_VALUES) + ["text", "empty"]),
       row=st.integers(0, 5))
def test_fuzz_bad_values_are_named_in_every_format(fuzz_dir, fmt, column, kind, row):
    """NaN/inf anywhere, negative masses, radii or luminosities, a text column and an empty file:
    every reader raises ReaderError (a SnapshotError) naming the file and the column."""
    negative_is_fine = column in ("x", "y", "z", "vx", "vy", "vz")
    if kind == "negative" and negative_is_fine:
        return
    path = fuzz_dir / f"spoiled.{fmt}"
    expect = column
    if kind == "empty":
        path.write_bytes(b"")
        expect = "empty file"
    elif fmt == "nbody6":
        if kind == "text" or column not in _NBODY6_COLUMNS:
            return  # binary records hold numbers; conf.3 has no radius or luminosity
        run = Nbody6Run(n=6)
        if column == "mass":
            run.mass[row] = _BAD_VALUES[kind]
        else:
            run.pos[row, _NBODY6_COLUMNS[column]] = _BAD_VALUES[kind]
        path = write_conf3(fuzz_dir / "conf.3_125", run)  # sev.83_125 is beside it
    elif fmt == "petar":
        if kind == "text":
            return  # whitespace-separated numbers: text is a parse error, tested elsewhere
        # ParticleBase mass, position, velocity; SSE StarParameter: kw, m0, mt, r, ..., lum
        index = {"mass": 0, "x": 1, "y": 2, "z": 3, "vx": 4, "vy": 5, "vz": 6, "radius": 15,
                 "luminosity": 21}[column]
        rows = petar_rows(n=6)
        rows[row][index] = _BAD_VALUES[kind]
        if column == "mass":
            rows[row][14] = _BAD_VALUES[kind]  # the stellar mass agrees
        path.write_text(petar_text(rows))
    else:
        table = make_snapshot(n=6).to_table()
        if kind == "text":
            if fmt == "fits":
                return  # FITS tables written by astropy cannot mix text into a float column
            table[column] = table[column].astype(str)
            table[column][row] = "bright"
        else:
            table[column][row] = _BAD_VALUES[kind]
        table.write(path, format={"ecsv": "ascii.ecsv", "csv": "ascii.csv", "fits": "fits",
                                  "hdf5": "hdf5", "parquet": "parquet"}[fmt],
                    overwrite=True, **({"path": "snapshot"} if fmt == "hdf5" else {}))
    with pytest.raises(ReaderError) as info:
        read_snapshot(path, None if fmt in ("csv", "nbody6") else fmt)
    message = str(info.value)
    assert path.name in message, message
    assert expect in message, message
