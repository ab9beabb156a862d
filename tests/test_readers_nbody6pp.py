"""NBODY6++GPU, McLuster and AMUSE readers on real files (tests/data/realdata) and on files written
here from each format's documented layout (see the reader modules' docstrings for the sources)."""

from __future__ import annotations

import bz2
import gzip
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest
from astropy import constants as const
from astropy import units as u

from pidoc_core.cli import main
from pidoc_core.imager import ObservationError, ObservationSetup, observe
from pidoc_core.readers import ReaderError, detect_format, read_snapshot
from pidoc_core.readers.amuse import parse_amuse_unit
from pidoc_core.readers.nbody6 import DynamicsOnlyWarning, read_conf3
from pidoc_core.readers.nbody6pp_hr import read_hr_file

REAL = Path(__file__).parent / "data" / "realdata"
CONF3 = REAL / "conf.3_0"
DAT10 = REAL / "N1k.dat.10"
G_PC = float(const.G.to_value(u.pc * (u.km / u.s) ** 2 / u.Msun))
TE_SUN = 3.761777537508


# --------------------------------------------------------------------------------------------
# ground truth from the conf.3 file's own scalings (N-body units, G = 1)
# --------------------------------------------------------------------------------------------


def _potential(pos, mass):
    """W = -sum_{i<j} m_i m_j / r_ij (G = 1), in blocks with |a - b|^2 = a^2 + b^2 - 2 a.b."""
    pos = pos - pos.mean(axis=0)
    sq = np.sum(pos**2, axis=1)
    w = 0.0
    for i in range(0, len(mass), 2000):
        d2 = sq[i:i + 2000, None] + sq[None, :] - 2.0 * pos[i:i + 2000] @ pos.T
        j = np.arange(i, min(i + 2000, len(mass)))
        d2[np.arange(len(j)), j] = np.inf
        w -= 0.5 * np.sum(mass[i:i + 2000, None] * mass[None, :] / np.sqrt(np.maximum(d2, 1e-30)))
    return w


def _half_mass_radius(pos, mass):
    centre = np.average(pos, axis=0, weights=mass)
    r = np.linalg.norm(pos - centre, axis=1)
    order = np.argsort(r)
    cum = np.cumsum(mass[order])
    return float(r[order][np.searchsorted(cum, 0.5 * cum[-1])])


def _virial_ratio(pos, vel, mass, g):
    kinetic = 0.5 * np.sum(mass * np.sum(vel**2, axis=1))
    return kinetic / abs(g * _potential(pos, mass))


@pytest.fixture(scope="module")
def conf():
    return read_conf3(CONF3)


@pytest.fixture(scope="module")
def truth(conf):
    """Total mass, r_h, Q of conf.3_0 in N-body units scaled by its RBAR, ZMBAR (G = 1)."""
    m, x, v = conf.mass.astype(float), conf.pos.astype(float), conf.vel.astype(float)
    return {"mass": float(m.sum()) * conf.zmbar, "rh": _half_mass_radius(x, m) * conf.rbar,
            "q": _virial_ratio(x, v, m, 1.0)}


def assert_matches_truth(snap, truth, rtol=2e-3):
    pos, vel, m = snap.positions, snap.velocities, snap.mass
    assert m.sum() == pytest.approx(truth["mass"], rel=1e-5)
    assert _half_mass_radius(pos, m) == pytest.approx(truth["rh"], rel=1e-5)
    assert _virial_ratio(pos, vel, m, G_PC) == pytest.approx(truth["q"], rel=rtol)


def test_real_conf3_scalings(conf, truth):
    assert (conf.ntot, conf.npairs, conf.rbar) == (12500, 0, 8.0)
    assert conf.zmbar == pytest.approx(7574.08, rel=1e-5)
    # VSTAR of the file is the velocity unit of G = 1 with the file's RBAR and ZMBAR
    vstar = np.sqrt(G_PC * conf.zmbar / conf.rbar)
    assert conf.vstar == pytest.approx(vstar, rel=2e-3)
    assert truth["q"] == pytest.approx(0.5, abs=0.05)  # initial conditions in virial equilibrium


# --------------------------------------------------------------------------------------------
# HR files written from the documented NBODY6++GPU FORMATs
# --------------------------------------------------------------------------------------------


def stellar(conf):
    """Made-up main-sequence L and R for each star of conf.3_0: log L = 4 log m, log R = 0.8
    log m, KW 1."""
    m = conf.mass * conf.zmbar
    return np.round(4.0 * np.log10(m), 4), np.round(0.8 * np.log10(m), 4), m


def write_sev(path, conf, layout, *, rows=None, extra=None):
    logl, logr, m = stellar(conf)
    te = 0.25 * (logl - 2 * logr) + TE_SUN
    rows = range(conf.ntot) if rows is None else rows
    tphys = conf.ttot * conf.tstar
    lines = [f"{len(rows):8d}{tphys:9.1f}"]
    if layout == "hurley":  # FORMATs 102 and 103 of the newer builds
        lines += [f"{100:8d}{0.5:6.2f}{conf.rbar:6.2f}{40.0:6.2f}{0.0:10.5f}{0.0:10.5f}{0.0:10.5f}",
                  f"{conf.zmbar:12.4f}{0.0:6.2f}{1.0:6.2f}"]
    for i in rows:
        name, ttot = int(conf.name[i]), conf.ttot
        if layout == "nbody6++":  # (1P,D15.7,I8,I5,4D15.5)
            vals = (0.5, m[i], logl[i], logr[i])
            line = (f"{ttot:15.7E}".replace("E", "D") + f"{name:8d}{1:5d}"
                    + "".join(f"{v:15.5E}".replace("E", "D") for v in vals))
        elif layout == "nbody6++gpu":  # (1X,1P,E12.5,2I8,I3,5E13.5)
            vals = (0.5, m[i], logl[i], logr[i], te[i])
            line = f" {ttot:12.5E}{i + 1:8d}{name:8d}{1:3d}" + "".join(f"{v:13.5E}" for v in vals)
        elif layout == "nbody6++gpu-2021":  # (1X,1P,E13.5,2I8,I3,7E13.5): + AGE, EPOCH
            vals = (0.5, m[i], logl[i], logr[i], te[i], 0.0, 0.0)
            line = f" {ttot:13.5E}{i + 1:8d}{name:8d}{1:3d}" + "".join(f"{v:13.5E}" for v in vals)
        else:  # hurley: (2I7,I3,3F8.3,1P,6E14.6,0P,F12.3,1P,E12.4)
            x, v = conf.pos[i] * conf.rbar, conf.vel[i] * conf.vstar
            line = (f"{i + 1:7d}{name:7d}{1:3d}{m[i]:8.3f}{logl[i]:8.3f}{logr[i]:8.3f}"
                    + "".join(f"{c:14.6E}" for c in (*x, *v)) + f"{0.0:12.3f}{1e-3:12.4E}")
        lines.append(line + (extra or ""))
    Path(path).write_text("\n".join(lines) + "\n")
    return Path(path)


@pytest.fixture()
def run_dir(tmp_path):
    shutil.copy(CONF3, tmp_path / "conf.3_0")
    (tmp_path / "bev.82_0").write_text(f"{0:8d}{0.0:9.1f}\n")  # NPAIRS = 0 at T = 0
    return tmp_path


@pytest.mark.parametrize("layout", ["nbody6++", "nbody6++gpu", "nbody6++gpu-2021", "hurley"])
def test_real_conf3_joins_every_sev_layout(run_dir, conf, truth, layout):
    write_sev(run_dir / "sev.83_0", conf, layout)
    snap = read_snapshot(run_dir / "conf.3_0")
    assert len(snap) == 12500
    assert snap.meta["hr_layouts"][0] == {"hurley": "nbody6++gpu-hurley"}.get(layout, layout)
    logl, logr, _ = stellar(conf)  # the snapshot keeps the conf.3 order
    tol = 6e-4 if layout == "hurley" else 1e-4  # F8.3 vs E13.5
    np.testing.assert_allclose(np.log10(snap.luminosity), logl, atol=tol)
    np.testing.assert_allclose(np.log10(snap.radius), logr, atol=tol)
    assert_matches_truth(snap, truth)


def test_hr_layouts_are_recognised_and_extra_columns_named(run_dir, conf):
    blocks = read_hr_file(write_sev(run_dir / "s11", conf, "nbody6++gpu-2021", rows=range(5)))
    assert blocks[0].layout == "nbody6++gpu-2021"
    assert set(blocks[0].extra) == {"AGE", "EPOCH"}
    blocks = read_hr_file(write_sev(run_dir / "s14", conf, "hurley", rows=range(5)))
    assert blocks[0].header["RBAR"] == 8.0 and blocks[0].layout == "nbody6++gpu-hurley"


def test_extra_and_shuffled_columns_are_refused_not_misparsed(run_dir, conf):
    sev = run_dir / "sev.83_0"
    write_sev(sev, conf, "nbody6++gpu", extra=f"{1.0:13.5E}")  # a 10th column
    with pytest.raises(ReaderError, match=r"sev\.83_0: line 2: 10 columns, which is no released "
                                          r"sev\.83 layout; expected 7 \(nbody6\); 7 \(nbody6\+\+\); "
                                          r"9 \(nbody6\+\+gpu\); 11"):
        read_snapshot(run_dir / "conf.3_0")
    # log L and log R swapped: the Stefan-Boltzmann column gives it away
    write_sev(sev, conf, "nbody6++gpu")
    lines = sev.read_text().splitlines()
    swapped = [lines[0]] + [ln[:58] + ln[71:84] + ln[58:71] + ln[84:] for ln in lines[1:]]
    sev.write_text("\n".join(swapped) + "\n")
    with pytest.raises(ReaderError, match=r"line 2, column 8 \(LOGR\): 6\.5936 is outside -9\.\.6 "
                                          r"\(log10 of solar units\); the row does not fit the "
                                          r"'nbody6\+\+gpu' layout"):
        read_snapshot(run_dir / "conf.3_0")
    # a log Te that is not 0.25 (log L - 2 log R) + C: a column out of place
    write_sev(sev, conf, "nbody6++gpu")
    lines = sev.read_text().splitlines()
    lines[1] = lines[1][:84] + f"{float(lines[1][84:97]) + 0.1:13.5E}"
    sev.write_text("\n".join(lines) + "\n")
    with pytest.raises(ReaderError, match=r"line 2, column 9 \(LOGTE\): .* does not equal "
                                          r"0\.25 \(log L - 2 log R\) \+ C"):
        read_snapshot(run_dir / "conf.3_0")
    # the 14-column layout has no log Te: M1 and log L swapped (both in range for 1-5 Msun
    # stars) are caught by HRPLOT's M1 = BODY*ZMBAR
    m = conf.mass * conf.zmbar
    rows = np.flatnonzero((m > 1.0) & (m < 5.0))
    write_sev(sev, conf, "hurley", rows=rows)
    lines = sev.read_text().splitlines()
    swapped = lines[:3] + [ln[:17] + ln[25:33] + ln[17:25] + ln[33:] for ln in lines[3:]]
    sev.write_text("\n".join(swapped) + "\n")
    with pytest.raises(ReaderError, match=rf"line 4: mass .* Msun of NAME {conf.name[rows[0]]} "
                                          r"differs from BODY\*ZMBAR = .* Msun of the conf\.3 "
                                          r"file \(\d+ of \d+ stars differ\); the HR file is from "
                                          r"another run or time, or its columns are not in the "
                                          r"documented order"):
        read_snapshot(run_dir / "conf.3_0", missing="drop")


def test_nbody6_block_with_more_fields_is_refused(tmp_path):
    """The old silent mis-parse: a '## BEGIN' row of 9 fields read fixed-width as 7."""
    row = f" {1.0:12.5E}{1:8d}{1:8d}{1:3d}" + "".join(f"{v:13.5E}" for v in (0.5, 1, 0, 0, 3.76))
    path = tmp_path / "fort.83"
    path.write_text(f" ## BEGIN{1:8d}{0.0:9.1f}\n{row}\n ## END{1:8d}\n")
    with pytest.raises(ReaderError, match=r"fort\.83: line 2: 9 columns, expected 7 \(sev layout "
                                          r"'nbody6' .*extra columns"):
        read_hr_file(path)


def test_nan_rows_reported_or_dropped(run_dir, conf):
    sev = write_sev(run_dir / "sev.83_0", conf, "nbody6++gpu")
    lines = sev.read_text().splitlines()
    lines[3] = lines[3][:58] + f"{'NaN':>13}" + lines[3][71:]  # log L of the 3rd star
    sev.write_text("\n".join(lines) + "\n")
    with pytest.raises(ReaderError, match=r"sev\.83_0: line 4: NAME 3 has NaN in its mass, log L "
                                          r"or log R \(1 such star\(s\)\); pass missing='drop'"):
        read_snapshot(run_dir / "conf.3_0")
    snap = read_snapshot(run_dir / "conf.3_0", missing="drop")
    assert len(snap) == 12499 and snap.meta["n_nan_hr_dropped"] == 1


def test_dynamics_only_conf3_and_observe_refuses(conf, truth):
    with pytest.raises(ReaderError, match=r"conf\.3_0: no sev\.83 file found next to it .*pass "
                                          r"sev= .*or sev=False to read the dynamics only"):
        read_snapshot(CONF3)
    with pytest.warns(DynamicsOnlyWarning, match="luminosities and radii are missing"):
        snap = read_snapshot(CONF3, sev=False)
    assert snap.luminosity.sum() == 0 and snap.meta["missing_columns"][:2] == ["luminosity",
                                                                                "radius"]
    assert_matches_truth(snap, truth)
    with pytest.raises(ObservationError, match=r"cannot observe: .*conf\.3_0: luminosities and "
                                               r"radii are missing .*\(sev\.83_0\) would supply "
                                               r"them: pass sev="):
        observe(snap, ObservationSetup(distance_kpc=10, psf_fwhm_arcsec=1.0))


def test_compressed_conf3_and_hr_files(run_dir, conf, truth):
    write_sev(run_dir / "sev.83_0", conf, "nbody6++gpu")
    gz = run_dir / "conf.3_0.gz"
    gz.write_bytes(gzip.compress(CONF3.read_bytes()))
    (run_dir / "sev.83_0.bz2").write_bytes(bz2.compress((run_dir / "sev.83_0").read_bytes()))
    assert detect_format(gz) == "nbody6"
    snap = read_snapshot(gz, sev=run_dir / "sev.83_0.bz2", bev=False)
    assert_matches_truth(snap, truth)
    (run_dir / "bad.gz").write_bytes(gzip.compress(b"x" * 100)[:20])
    with pytest.raises(ReaderError, match=r"bad\.gz: gzip-compressed, but the stream does not "
                                          r"decompress \(Compressed file ended before the "
                                          r"end-of-stream marker was reached\); expected a "
                                          r"compressed snapshot"):
        read_snapshot(run_dir / "bad.gz")


def test_sev_file_as_main_file_is_explained(run_dir, conf):
    sev = write_sev(run_dir / "sev.83_0", conf, "nbody6++gpu-2021", rows=range(3))
    with pytest.raises(ReaderError, match=r"sev\.83_0: this is an NBODY6/NBODY6\+\+GPU sev\.83 HR "
                                          r"file .*not a snapshot; read the conf\.3 file of the "
                                          r"same time and pass this file as sev="):
        read_snapshot(sev)


# --------------------------------------------------------------------------------------------
# snap.40 HDF5, both layouts
# --------------------------------------------------------------------------------------------


def write_snap40(path, conf, layout, *, partial_step=False, binaries=0):
    logl, logr, m = stellar(conf)
    x, v = conf.pos * conf.rbar, conf.vel * conf.vstar
    names = conf.name
    with h5py.File(path, "w") as f:
        g = f.create_group("Step#0")
        g.attrs["Time"] = np.float32(conf.ttot)
        n = conf.ntot
        if layout == "2021":
            scal = np.zeros(100, np.float32)
            scal[[0, 1, 2, 3, 4, 5, 10, 11]] = (conf.ttot, 0, conf.rbar, conf.zmbar, n, conf.tstar,
                                                conf.tstar, conf.vstar)
            g["000 Scalars"] = scal
            for k, col in enumerate(("X1", "X2", "X3")):
                g[f"00{k + 1} {col}"] = x[:, k].astype(np.float32)
                g[f"00{k + 4} V{k + 1}"] = v[:, k].astype(np.float32)
            g["023 M"] = m.astype(np.float32)
            g["026 R*"] = (10**logr).astype(np.float32)
            g["027 L*"] = (10**logl).astype(np.float32)
            g["031 KW"] = np.ones(n, np.int32)
            g["032 Name"] = names.astype(np.int32)
            g["033 Type"] = np.zeros(n, np.int32)
            g.attrs["N_STAR"] = n
            if partial_step:
                h = f.create_group("Step#1")
                h.attrs["Time"] = np.float32(conf.ttot + 0.01)
                h["000 Scalars"] = scal
                for key in g:
                    if key != "000 Scalars":
                        h[key] = g[key][:100]
            return path
        single = slice(2 * binaries, n)
        for k in range(3):
            g[f"X{k + 1}"] = x[single, k].astype(np.float32)
            g[f"V{k + 1}"] = v[single, k].astype(np.float32)
        g["M"], g["NAM"] = m[single].astype(np.float32), names[single].astype(np.int32)
        g["RS"], g["L"] = (10**logr[single]).astype(np.float32), (10**logl[single]).astype(
            np.float32)
        g["TE"], g["KW"] = np.full(n - 2 * binaries, 5000.0, np.float32), np.ones(
            n - 2 * binaries, np.int32)
        g.attrs["N_SINGLE"] = n - 2 * binaries
        b = g.create_group("Binaries")
        b.attrs["N_BINARY"] = binaries
        if binaries:
            i1, i2 = np.arange(0, 2 * binaries, 2), np.arange(1, 2 * binaries, 2)
            m1, m2 = m[i1], m[i2]
            for k in range(3):
                b[f"XC{k + 1}"] = (m1 * x[i1, k] + m2 * x[i2, k]) / (m1 + m2)
                b[f"VC{k + 1}"] = (m1 * v[i1, k] + m2 * v[i2, k]) / (m1 + m2)
                b[f"XR{k + 1}"] = (x[i1, k] - x[i2, k]) / float((1 * u.au).to_value(u.pc))
                b[f"VR{k + 1}"] = v[i1, k] - v[i2, k]
            b["M1"], b["M2"], b["NAM1"], b["NAM2"] = m1, m2, names[i1], names[i2]
            b["RS1"], b["RS2"], b["L1"], b["L2"] = 10**logr[i1], 10**logr[i2], 10**logl[i1], \
                10**logl[i2]
            b["KW1"], b["KW2"] = np.ones(binaries, np.int32), np.ones(binaries, np.int32)
    return path


@pytest.mark.parametrize("layout,binaries", [("2021", 0), ("old", 0), ("old", 50)])
def test_snap40_both_layouts_match_the_conf3_scalings(tmp_path, conf, truth, layout, binaries):
    path = write_snap40(tmp_path / "snap.40_0.h5part", conf, layout, binaries=binaries)
    assert detect_format(path) == "nbody6-hdf5"
    snap = read_snapshot(path, time=0.0)
    assert len(snap) == 12500 and snap.meta["layout"] == layout
    assert_matches_truth(snap, truth, rtol=3e-3)


def test_snap40_partial_step_and_generic_hdf5(tmp_path, conf):
    path = write_snap40(tmp_path / "snap.40_0.h5part", conf, "2021", partial_step=True)
    with pytest.raises(ReaderError, match=r"holds 2 steps \(0 \(T = 0, 12500 stars\), 1 \(T = "
                                          r"0\.01, 100 stars, partial\)\); pass index="):
        read_snapshot(path)
    with pytest.raises(ReaderError, match=r"Step#1 holds 100 stars, fewer than a full step "
                                          r"\(12500\): a KZ\(46\) = 1/2 partial step"):
        read_snapshot(path, index=1)
    assert len(read_snapshot(path, index=1, partial=True)) == 100
    assert len(read_snapshot(path, index=0)) == 12500
    # the generic reader, pointed at the step group, takes the length of the star columns
    table = read_snapshot(path, "hdf5", dataset="Step#0",
                          columns={"x": "001 X1", "y": "002 X2", "z": "003 X3", "vx": "004 V1",
                                   "vy": "005 V2", "vz": "006 V3", "mass": "023 M",
                                   "radius": "026 R*", "luminosity": "027 L*"})
    assert len(table) == 12500


# --------------------------------------------------------------------------------------------
# dat.10 and AMUSE
# --------------------------------------------------------------------------------------------


def test_real_dat10_physical_units_and_nbody_scaling(tmp_path):
    raw = np.loadtxt(DAT10)
    assert detect_format(DAT10) == "dat10"
    with pytest.warns(DynamicsOnlyWarning):
        snap = read_snapshot(DAT10)
    assert snap.meta["units"] == "physical" and len(snap) == 1000
    np.testing.assert_allclose(snap.mass, raw[:, 0])
    np.testing.assert_allclose(snap.vz, raw[:, 6])
    # the same stars in N-body units (masses sum to 1): scaled back by the given units
    mtot, r = raw[:, 0].sum(), 2.0
    vunit = np.sqrt(G_PC * mtot / r)
    nb = np.column_stack([raw[:, 0] / mtot, raw[:, 1:4] / r, raw[:, 4:7] / vunit])
    path = tmp_path / "dat.10.gz"
    path.write_bytes(gzip.compress("\n".join("\t".join(f"{v:.15e}" for v in row)
                                             for row in nb).encode()))
    with pytest.raises(ReaderError, match=r"dat\.10\.gz \(masses sum to 1\): values are in N-body "
                                          r"units \(G = 1\); pass nbody_mass= \(Msun\) and "
                                          r"nbody_length= \(pc\)"):
        read_snapshot(path)
    with pytest.warns(DynamicsOnlyWarning):
        snap = read_snapshot(path, nbody_mass=mtot, nbody_length=r)
    np.testing.assert_allclose(snap.mass, raw[:, 0], rtol=1e-12)
    np.testing.assert_allclose(snap.x, raw[:, 1], rtol=1e-12)
    np.testing.assert_allclose(snap.vy, raw[:, 5], rtol=1e-6)


SI_LENGTH = "system.get('si').base('length')"
SI_MASS = "system.get('si').base('mass')"
SI_TIME = "system.get('si').base('time')"
NB = "system.get('nbody').base('{}')"


def write_amuse(path, columns, *, timestamp=None):
    """An AMUSE store_v2 file: AMUSE_INF, data/0000000001/{keys, attributes/<name>}."""
    with h5py.File(path, "w") as f:
        f.create_group("AMUSE_INF").attrs["version"] = "2.0"
        g = f.create_group("data").create_group("0000000001")
        g.attrs["type"] = "particles"
        g.attrs["number_of_particles"] = len(next(iter(columns.values()))[0])
        if timestamp is not None:
            g.attrs["timestamp"], g.attrs["timestamp_unit"] = timestamp
        g["keys"] = np.arange(g.attrs["number_of_particles"], dtype=np.uint64)
        a = g.create_group("attributes")
        for name, (values, unit) in columns.items():
            a[name] = values
            a[name].attrs["units"] = unit
    return path


def test_amuse_si_and_nbody_units(tmp_path):
    rng = np.random.default_rng(3)
    n = 50
    x_pc, v_kms, m_msun = rng.normal(0, 2, (n, 3)), rng.normal(0, 3, (n, 3)), rng.uniform(.1, 2, n)
    pc, msun = float(u.pc.to(u.m)), float(u.Msun.to(u.kg))
    lsun, rsun = float(u.Lsun.to(u.W)), float(u.Rsun.to(u.m))
    cols = {"mass": (m_msun, f"({msun!r} * {SI_MASS})"),
            "radius": (np.ones(n), f"({rsun!r} * {SI_LENGTH})"),
            "luminosity": (np.full(n, 2.0), f"(({lsun!r} * {SI_MASS}) * ({SI_LENGTH}**2)) * "
                                            f"({SI_TIME}**-3)"),
            "stellar_type": (np.ones(n), "no_system.get('stellar_type')")}
    for k, c in enumerate("xyz"):
        cols[c] = (x_pc[:, k], f"({pc!r} * {SI_LENGTH})")
        cols["v" + c] = (v_kms[:, k], f"((1000.0 * {SI_LENGTH}) * ({SI_TIME}**-1))")
    path = write_amuse(tmp_path / "set.amuse", cols,
                       timestamp=(12.0, f"(3.15576e+16 * {SI_TIME})"))
    assert detect_format(path) == "amuse"
    snap = read_snapshot(path)
    np.testing.assert_allclose(snap.x, x_pc[:, 0], rtol=1e-12)
    np.testing.assert_allclose(snap.vz, v_kms[:, 2], rtol=1e-12)
    np.testing.assert_allclose(snap.luminosity, 2.0, rtol=1e-9)
    assert snap.time == pytest.approx(12.0 * 3.15576e16 / float(u.Gyr.to(u.s)), rel=1e-9)
    # N-body units: scaled by the given mass and length units (G = 1)
    nb = {"mass": (m_msun / m_msun.sum(), NB.format("mass"))}
    vunit = np.sqrt(G_PC * m_msun.sum() / 3.0)
    for k, c in enumerate("xyz"):
        nb[c] = (x_pc[:, k] / 3.0, NB.format("length"))
        nb["v" + c] = (v_kms[:, k] / vunit, f"({NB.format('length')} * "
                                            f"({NB.format('time')}**-1))")
    path = write_amuse(tmp_path / "nbody.h5", nb)
    with pytest.raises(ReaderError, match=r"nbody\.h5: attribute 'x' is in N-body units "
                                          r"\(nbody_length\); pass nbody_mass= \(Msun\) and "
                                          r"nbody_length= \(pc\)"):
        read_snapshot(path)
    with pytest.warns(DynamicsOnlyWarning, match="attributes luminosity and radius"):
        snap = read_snapshot(path, nbody_mass=m_msun.sum(), nbody_length=3.0)
    np.testing.assert_allclose(snap.mass, m_msun, rtol=1e-12)
    np.testing.assert_allclose(snap.y, x_pc[:, 1], rtol=1e-12)
    np.testing.assert_allclose(snap.vx, v_kms[:, 0], rtol=1e-6)


def test_amuse_unit_strings_parse_without_eval():
    assert parse_amuse_unit(f"((1000.0 * {SI_LENGTH}) * ({SI_TIME}**-1))").to(u.km / u.s) == \
        pytest.approx(1.0)
    with pytest.raises(ReaderError, match=r"unit: \"__import__\('os'\)\.system\('true'\)\": "
                                          r"unsupported element Call\(.* in an AMUSE unit"):
        parse_amuse_unit("__import__('os').system('true')")


# --------------------------------------------------------------------------------------------
# command line
# --------------------------------------------------------------------------------------------


def test_cli_reader_flags_and_messages(run_dir, conf, capsys):
    assert main(["snapshot", str(run_dir / "conf.3_0")]) == 2
    err = capsys.readouterr().err
    assert "pass --sev (the sev.83 file written at the same time), or --dynamics-only" in err
    assert main(["snapshot", str(run_dir / "conf.3_0"), "--dynamics-only"]) == 0
    assert "would supply them: pass --sev" in capsys.readouterr().out
    sev = write_sev(run_dir / "sev.83_0", conf, "nbody6++gpu")
    assert main(["snapshot", str(sev)]) == 2
    assert "pass this file as --sev (CLI: --sev sev.83_0)" in capsys.readouterr().err
    assert main(["snapshot", str(run_dir / "conf.3_0"), "--sev", str(sev), "--missing", "drop",
                 "--no-bev"]) == 0
    assert "n_stars=12500" in capsys.readouterr().out
    assert main(["snapshot", str(DAT10), "--sev", str(sev)]) == 2
    assert ("--sev do(es) not apply to" in capsys.readouterr().err)
    out = run_dir / "o.nc"
    assert main(["observe", str(run_dir / "conf.3_0"), "--dynamics-only", "--distance", "10",
                 "--psf", "1", "--out", str(out)]) == 2
    assert "cannot observe" in capsys.readouterr().err and not out.exists()
    with pytest.raises(SystemExit) as info:
        main(["snapshot", str(DAT10), "--format", "table"])
    assert info.value.code == 2
    assert "invalid choice: 'table'" in capsys.readouterr().err
