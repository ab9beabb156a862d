"""Single-star evolution (Hurley et al. 2000 SSE, run through COSMIC) by table look-up.

A table of current mass, luminosity, radius and SSE type over a grid of initial masses x ages
(0-14 Gyr in steps of 0.1 Gyr, or finer) is built once per metallicity, grid size and age step with
COSMIC and cached.
A star is interpolated (linearly in log initial mass and in age) between grid points that share
its evolutionary phase; a star whose grid cell straddles a phase boundary (end of the main
sequence, red-giant tip, horizontal branch, AGB, white-dwarf birth ...) is evolved exactly with
COSMIC, because interpolating across a boundary mixes e.g. a tip giant with a white dwarf and
makes the cluster several times too bright.

The exact evolutions are the cost of a snapshot at large N. At a time between the table's ages
every star that changes phase within the age step is evolved exactly: at 12.02 Gyr with 0.1-Gyr
ages, 1,737 of 10^6 stars (~10 s of COSMIC, whose per-star overhead is ~6 ms); at a table age only
the ~100 whose mass cell straddles a boundary. Runs whose snapshots fall on a finer grid of times
(the ``wide`` preset: every 0.02 Gyr) use a table with that age step.
"""

from __future__ import annotations

import ast
import json
import operator
import threading
import warnings
from functools import lru_cache
from pathlib import Path

import numpy as np

from ._cache import cache_key, load_or_build, resolve_cache_dir

__all__ = ["AGES_GYR", "AGE_STEP_GYR", "StellarTable", "table_ages", "evolve_exact",
           "literal_arithmetic", "phase_group", "mass_grid"]

#: Ages of the default table, Gyr (0-14 in steps of :data:`AGE_STEP_GYR`).
AGE_STEP_GYR = 0.1
AGES_GYR = np.round(np.arange(0, 141) * AGE_STEP_GYR, 10)
_T_END_GYR = 14.0
_DARK = (13, 14, 15)
_COSMIC_LOCK = threading.Lock()


def phase_group(kstar):
    """Group SSE types into phases between which interpolation is allowed.

    Main-sequence types 0 and 1 form one phase and white-dwarf types 10-12 another; every other
    type is its own phase.
    """
    k = np.asarray(kstar, dtype=np.int16)
    g = k.copy()
    g[k == 0] = 1
    g[(k >= 10) & (k <= 12)] = 10
    return g


def table_ages(age_step_gyr: float = AGE_STEP_GYR) -> np.ndarray:
    """Ages of an SSE table, Gyr: 0 to 14 in steps of ``age_step_gyr``.

    Parameters
    ----------
    age_step_gyr : float
        Step, Gyr; 14 Gyr must be a whole number of steps, and the step at least 0.01 Gyr.

    Examples
    --------
    >>> table_ages(0.02)[:3].tolist(), table_ages(0.02).size
    ([0.0, 0.02, 0.04], 701)
    """
    step = float(age_step_gyr)
    n = round(_T_END_GYR / step) if step > 0 else 0
    if not (step >= 0.01 and abs(n * step - _T_END_GYR) < 1e-9):
        raise ValueError(f"age_step_gyr must divide 14 Gyr into whole steps of at least 0.01 Gyr, "
                         f"got {age_step_gyr!r}")
    return np.round(np.arange(0, n + 1) * step, 10)


def mass_grid(n_mass: int) -> np.ndarray:
    """Initial masses (Msun) of the SSE table: dense near the old turn-off (0.7-1 Msun)."""
    n_mass = int(n_mass)
    if n_mass < 200:
        raise ValueError(f"n_mass must be >= 200, got {n_mass}")
    frac = {(0.1, 0.7): 0.03, (0.7, 1.0): 0.55, (1.0, 2.0): 0.25, (2.0, 8.0): 0.12, (8.0, 50.0): 0.05}
    parts = []
    for (lo, hi), f in frac.items():
        k = max(int(round(f * n_mass)), 8)
        parts.append(np.geomspace(lo, hi, k, endpoint=False))
    return np.unique(np.r_[np.concatenate(parts), 50.0])


_ARITHMETIC = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
               ast.Div: operator.truediv, ast.USub: operator.neg, ast.UAdd: operator.pos}


def literal_arithmetic(text: str):
    """Evaluate number and list literals combined with ``+ - * /`` only, never executing code.

    Examples
    --------
    >>> literal_arithmetic("[1.0, 2.0/4]")
    [1.0, 0.5]
    >>> literal_arithmetic("__import__('os')")
    Traceback (most recent call last):
    ...
    ValueError: not literal arithmetic: __import__('os')
    """
    def value(node):
        if isinstance(node, ast.Constant) and type(node.value) in (int, float):
            return node.value
        if isinstance(node, (ast.List, ast.Tuple)):
            return [value(e) for e in node.elts]
        if isinstance(node, ast.BinOp) and type(node.op) in _ARITHMETIC:
            return _ARITHMETIC[type(node.op)](value(node.left), value(node.right))
        if isinstance(node, ast.UnaryOp) and type(node.op) in _ARITHMETIC:
            return _ARITHMETIC[type(node.op)](value(node.operand))
        raise ValueError(f"not literal arithmetic: {ast.unparse(node)}")

    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError as exc:
        raise ValueError(f"not literal arithmetic: {text!r}") from exc
    return value(tree.body)


@lru_cache(maxsize=1)
def _bse_dict() -> dict:
    """COSMIC's documented default BSE flags (single stars ignore the binary ones)."""
    import cosmic

    settings = json.loads((Path(cosmic.__path__[0]) / "data" / "cosmic-settings.json").read_text())
    out = {}
    for category in settings:
        if category["category"] != "bse":
            continue
        for setting in category["settings"]:
            for option in setting.get("options", []):
                if option.get("default"):
                    value = option["name"]
                    if isinstance(value, str):
                        # COSMIC's own settings file holds small arithmetic literals ("[1.0, 1.0]", "1/3")
                        value = literal_arithmetic(value)
                    out[setting["name"]] = value
    return out


def _run_cosmic(m0, tphysf_myr, dtp_myr, metallicity):
    """Evolve single stars with COSMIC; returns the bcm DataFrame."""
    from cosmic.evolve import Evolve
    from cosmic.sample.initialbinarytable import InitialBinaryTable
    from schwimmbad import SerialPool

    m0 = np.asarray(m0, float)
    n = m0.size
    ibt = InitialBinaryTable.InitialBinaries(
        m1=m0, m2=np.zeros(n), porb=np.zeros(n), ecc=np.zeros(n),
        tphysf=np.full(n, float(tphysf_myr)), kstar1=np.where(m0 < 0.7, 0, 1),
        kstar2=np.full(n, 15), metallicity=np.full(n, float(metallicity)))
    # COSMIC evolves through a pool of its own, forked and then terminated with SIGTERM when no pool
    # is given. Forked workers inherit a server's asyncio wake-up descriptor, so their SIGTERM
    # reaches the parent's event loop (a Panel/Tornado server then shuts down), and a fork from a
    # threaded process can hang. An in-process serial pool (schwimmbad's, COSMIC's own dependency)
    # never forks: the table is built chunk by chunk anyway and exact evolutions are a few stars.
    # COSMIC seeds from numpy's global generator when no seed is given: give one, and keep the
    # caller's global state untouched.
    # COSMIC's Fortran opens a scratch unit (fort.99) in the current directory. Changing the
    # directory is process-wide and would redirect other threads' relative paths, so instead the
    # file is removed after the call when it was not there before (calls are serialised).
    state = np.random.get_state()
    try:
        with warnings.catch_warnings(), _COSMIC_LOCK:
            scratch = Path.cwd() / "fort.99"
            existed = scratch.exists()
            warnings.simplefilter("ignore")
            try:
                _, bcm, _, _ = Evolve.evolve(initialbinarytable=ibt, BSEDict=_bse_dict(),
                                             SSEDict={"stellar_engine": "sse"}, dtp=float(dtp_myr),
                                             randomseed=12345, pool=SerialPool())
            finally:
                if not existed:
                    scratch.unlink(missing_ok=True)
    finally:
        np.random.set_state(state)
    return bcm


def _clean(kstar, mass, lum, rad):
    kstar = np.asarray(kstar, np.int16)
    lum = np.where(np.isin(kstar, _DARK), 0.0, np.maximum(lum, 0.0))
    return kstar, np.maximum(mass, 0.0), lum, np.maximum(rad, 0.0)


def evolve_exact(m0, time_gyr, metallicity):
    """Evolve stars exactly to one age with COSMIC/SSE.

    Parameters
    ----------
    m0 : array_like
        Initial masses, Msun.
    time_gyr : float
        Age, Gyr.
    metallicity : float
        Z (solar = 0.02 in SSE).

    Returns
    -------
    tuple of numpy.ndarray
        ``kstar, mass (Msun), luminosity (Lsun), radius (Rsun)``; luminosity is 0 for NS/BH.
    """
    m0 = np.atleast_1d(np.asarray(m0, float))
    if m0.size == 0:
        e = np.empty(0)
        return e.astype(np.int16), e, e, e
    tphysf = max(float(time_gyr) * 1e3, 1e-3)
    bcm = _run_cosmic(m0, tphysf, tphysf, metallicity)
    last = bcm.groupby("bin_num").tail(1).sort_values("bin_num")
    return _clean(last["kstar_1"].to_numpy(), last["mass_1"].to_numpy(),
                  last["lum_1"].to_numpy(), last["rad_1"].to_numpy())


class StellarTable:
    """Cached SSE table over initial mass x age, with exact evolution across phase boundaries.

    Parameters
    ----------
    metallicity : float
        Z of the stars.
    n_mass : int, keyword-only
        Number of initial masses of the grid (cost ~6 ms each to build; more masses mean fewer
        exact evolutions per snapshot).
    age_step_gyr : float, keyword-only
        Age step of the table, Gyr (:func:`table_ages`). Snapshots at the table's ages evolve
        far fewer stars exactly; a finer step costs memory (~14 bytes per mass and age) and a
        longer one-time build.
    cache_dir : path, keyword-only
        Cache directory (see :func:`resolve_cache_dir`).
    progress : bool, keyword-only
        Show a tqdm bar while the table is built.
    """

    def __init__(self, metallicity, *, n_mass=11_000, age_step_gyr=AGE_STEP_GYR, cache_dir=None,
                 progress=True):
        self.metallicity = float(metallicity)
        if not 1e-4 <= self.metallicity <= 0.03:
            raise ValueError(f"metallicity must be within 1e-4..0.03 (SSE range), got {metallicity!r}")
        self.n_mass = int(n_mass)
        self.age_step_gyr = float(age_step_gyr)
        self._ages = table_ages(self.age_step_gyr)
        directory = resolve_cache_dir(cache_dir)
        step = {} if self.age_step_gyr == AGE_STEP_GYR else {"age_step_gyr": self.age_step_gyr}
        key = cache_key("sse-table", metallicity=self.metallicity, n_mass=self.n_mass, **step)
        self.path = directory / f"{key}.npz"
        data = load_or_build(self.path, lambda: self._build(progress))
        self.m_grid = data["m_grid"]
        self.ages = data["ages"]
        if self.ages.shape != self._ages.shape or not np.allclose(self.ages, self._ages):
            raise ValueError(f"{self.path}: the cached SSE table's ages are not those of a "
                             f"{self.age_step_gyr:g}-Gyr step; delete the file to rebuild it")
        self.mass = data["mass"]
        self.logl = data["logl"]
        self.logr = data["logr"]
        self.kstar = data["kstar"]
        self.group = phase_group(self.kstar)

    def _build(self, progress):
        from tqdm.auto import tqdm

        m_grid = mass_grid(self.n_mass)
        ages, dtp_myr = self._ages, self.age_step_gyr * 1e3
        na = ages.size
        shape = (m_grid.size, na)
        mass = np.zeros(shape, np.float32)
        logl = np.full(shape, -30.0, np.float32)
        logr = np.full(shape, -30.0, np.float32)
        kstar = np.full(shape, 15, np.int16)
        chunks = np.array_split(np.arange(m_grid.size), max(1, m_grid.size // 250))
        for idx in tqdm(chunks, desc=f"SSE table Z={self.metallicity:g}", disable=not progress,
                        unit="chunk"):
            bcm = _run_cosmic(m_grid[idx], ages[-1] * 1e3, dtp_myr, self.metallicity)
            row = idx[bcm["bin_num"].to_numpy().astype(int) - 0]
            col = np.rint(bcm["tphys"].to_numpy() / dtp_myr).astype(int)
            ok = (col >= 0) & (col < na)
            k, m, lum, rad = _clean(bcm["kstar_1"].to_numpy(), bcm["mass_1"].to_numpy(),
                                    bcm["lum_1"].to_numpy(), bcm["rad_1"].to_numpy())
            with np.errstate(divide="ignore"):
                mass[row[ok], col[ok]] = m[ok]
                logl[row[ok], col[ok]] = np.where(lum[ok] > 0, np.log10(np.maximum(lum[ok], 1e-300)), -30)
                logr[row[ok], col[ok]] = np.where(rad[ok] > 0, np.log10(np.maximum(rad[ok], 1e-300)), -30)
            kstar[row[ok], col[ok]] = k[ok]
        return dict(m_grid=m_grid, ages=ages, mass=mass, logl=logl, logr=logr, kstar=kstar)

    def lookup(self, m0, time_gyr):
        """Current state of stars of initial mass ``m0`` at age ``time_gyr``.

        Parameters
        ----------
        m0 : array_like
            Initial masses, Msun (0.1-50).
        time_gyr : float
            Age, Gyr (0-14).

        Returns
        -------
        dict
            ``kstar``, ``mass`` (Msun), ``luminosity`` (Lsun), ``radius`` (Rsun) arrays and
            ``n_exact``, the number of stars evolved exactly.
        """
        m0 = np.asarray(m0, float)
        t = float(time_gyr)
        if not 0.0 <= t <= self.ages[-1] + 1e-9:
            raise ValueError(f"time_gyr must be within 0..{self.ages[-1]:g} Gyr, got {time_gyr!r}")
        if m0.size and (m0.min() < self.m_grid[0] * (1 - 1e-9) or m0.max() > self.m_grid[-1] * (1 + 1e-9)):
            raise ValueError(f"initial masses must be within {self.m_grid[0]:g}..{self.m_grid[-1]:g} "
                             f"Msun, got {m0.min():g}..{m0.max():g}")
        lm = np.log10(self.m_grid)
        j = np.clip(np.searchsorted(self.m_grid, m0, side="right") - 1, 0, self.m_grid.size - 2)
        wm = np.clip((np.log10(m0) - lm[j]) / (lm[j + 1] - lm[j]), 0.0, 1.0)
        fa = t / self.age_step_gyr
        a0 = int(np.clip(np.floor(fa + 1e-9), 0, self.ages.size - 1))
        wa = fa - a0
        if wa < 1e-6 or a0 == self.ages.size - 1:
            cols, wts = [a0], [1.0]
        else:
            cols, wts = [a0, a0 + 1], [1.0 - wa, wa]
        groups = np.stack([self.group[jj, c] for c in cols for jj in (j, j + 1)])
        same = np.all(groups == groups[0], axis=0)

        def interp(arr):
            out = np.zeros(m0.size)
            for c, w in zip(cols, wts):
                out += w * ((1 - wm) * arr[j, c] + wm * arr[j + 1, c])
            return out

        mass = interp(self.mass)
        logl = interp(self.logl)
        logr = interp(self.logr)
        near = np.where(wm < 0.5, j, j + 1)
        kstar = self.kstar[near, cols[int(np.argmax(wts))]].astype(np.int16)
        lum = np.where(logl > -29, 10.0 ** logl, 0.0)
        rad = np.where(logr > -29, 10.0 ** logr, 0.0)
        exact = np.flatnonzero(~same)
        if exact.size:
            k, m, lu, r = evolve_exact(m0[exact], t, self.metallicity)
            kstar[exact], mass[exact], lum[exact], rad[exact] = k, m, lu, r
        lum = np.where(np.isin(kstar, _DARK), 0.0, lum)
        return dict(kstar=kstar, mass=mass, luminosity=lum, radius=rad, n_exact=int(exact.size))
