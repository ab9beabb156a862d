"""``ClusterEvolution``: snapshots of an evolving star cluster assembled from field codes."""

from __future__ import annotations

import re
import time as _time
from pathlib import Path

import numpy as np

from .._atomic import atomic_path
from ..snapshot import Snapshot
from ._cache import CODE_VERSION, cache_key, load_npz, load_or_build, resolve_cache_dir, save_npz
from .dynamics import (GlobalHistory, concentration_w0, run_cbhbd, segregation_delta,
                       spitzer_trh_gyr)
from .imf import sample_kroupa
from .massfunction import RetentionTable, build_retention
from .phasespace import NodeModel, component_index, sample_stars, solve_node
from .stellar import AGE_STEP_GYR, AGES_GYR, StellarTable, table_ages

__all__ = ["ClusterEvolution", "paper_runs", "export_snapshots", "PAPER_RUNS",
           "DENSE_SNAPSHOTS"]

#: The paper's runs (Chardin & Bianchini 2021, Table 1): name -> initial half-mass radius, pc.
PAPER_RUNS = {"MW15-R1.6": 1.6, "MW15": 3.2, "MW15-R4": 4.0}
#: Snapshot times per run of :meth:`ClusterEvolution.dense_times` by default: every 0.01 Gyr over
#: 0-14 Gyr. The paper's N-body runs wrote 1,462-5,781 snapshots each.
DENSE_SNAPSHOTS = 1401
_STREAM_IMF, _STREAM_SNAP = 1, 2
_NCOMP = 11


def _positive(name, value, *, integer=False):
    try:
        v = int(value) if integer else float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a number, got {value!r}") from None
    if not np.isfinite(v) or v <= 0:
        raise ValueError(f"{name} must be positive and finite, got {value!r}")
    return v


class ClusterEvolution:
    """An embedded, deterministic source of star-cluster snapshots.

    The cluster starts with ``n_stars`` stars from a Kroupa (2001) IMF (0.1-50 Msun) and evolves
    on a circular orbit at ``galactocentric_kpc`` in the Galactic tidal field: cbhbd gives M(t),
    rh(t), the Jacobi radius and the black-hole mass; astro-ssptools the escape of stars by mass
    and remnant type; COSMIC/SSE each star's mass, luminosity, radius and type; astro-limepy the
    phase-space distribution with mass segregation growing with the number of relaxation times.
    See :mod:`pidoc_core.evolution` for the recipe and its limits.

    Parameters
    ----------
    rh0_pc : float
        Initial half-mass radius, pc.
    n_stars : int, optional
        Initial number of stars.
    galactocentric_kpc : float, optional
        Orbital radius, kpc.
    metallicity : float, optional
        Z (solar = 0.02).
    seed : int, optional
        Seed of every random draw (IMF, escape, phase space); same seed, same snapshots.
    name : str, optional
        Run name shown to users (defaults to an "analogue" label).
    cache_dir : path, optional
        Cache directory; default ``$PIDOC_CACHE_DIR`` or the platformdirs user cache.
    progress : bool, optional
        Show a tqdm bar during the one-time set-up.
    sse_grid_masses : int, optional
        Initial masses in the SSE table (default scales with ``n_stars``, at most 11,000); a
        coarser table builds faster but evolves more stars exactly per snapshot.
    sse_age_step_gyr : float, optional
        Age step of the SSE table, Gyr (default 0.1; see
        :class:`~pidoc_core.evolution.stellar.StellarTable`). Snapshots at the table's ages
        evolve far fewer stars exactly (at N = 10^6, ~100 instead of ~1,700, ~10 s of COSMIC):
        give the step of the snapshot times a build uses.
    retain_bhs : bool, optional
        Keep cbhbd's retained black holes (their heating inflates rh). Default False: natal
        kicks remove (nearly) all BHs, as in the NBODY6 runs the paper uses (see
        :mod:`pidoc_core.evolution.dynamics`).
    cache_snapshots : bool, optional
        Keep every new snapshot on disk (~1-2 MB each at N = 50,000) so that it loads in a few
        ms next time (the dashboard). A dataset build over thousands of times passes False: it
        uses each snapshot for all of its maps at once, and the set-up stays cached either way
        (snapshots already on disk are still read).

    Examples
    --------
    >>> run = ClusterEvolution(3.2, name="MW15 analogue")        # doctest: +SKIP
    >>> snap = run.snapshot(12.0)                                 # doctest: +SKIP
    """

    def __init__(self, rh0_pc, n_stars=50_000, galactocentric_kpc=15.0, metallicity=0.001, *,
                 seed=2021, name=None, cache_dir=None, progress=True, sse_grid_masses=None,
                 sse_age_step_gyr=AGE_STEP_GYR, retain_bhs=False, cache_snapshots=True):
        self.rh0_pc = _positive("rh0_pc", rh0_pc)
        self.n_stars = _positive("n_stars", n_stars, integer=True)
        if self.n_stars < 500:
            raise ValueError(f"n_stars must be >= 500, got {n_stars!r}")
        self.galactocentric_kpc = _positive("galactocentric_kpc", galactocentric_kpc)
        self.metallicity = _positive("metallicity", metallicity)
        if not 1e-4 <= self.metallicity <= 0.03:
            raise ValueError(f"metallicity must be within 1e-4..0.03, got {metallicity!r}")
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
        self.seed = int(seed)
        self.name = str(name) if name is not None else f"rh0={self.rh0_pc:g} pc analogue"
        self.cache_dir = resolve_cache_dir(cache_dir)
        self.progress = bool(progress)
        if sse_grid_masses is None:
            self.n_mass = int(np.clip(0.22 * self.n_stars, 1500, 11_000))
        else:
            self.n_mass = _positive("sse_grid_masses", sse_grid_masses, integer=True)
            if self.n_mass < 200:
                raise ValueError(f"sse_grid_masses must be >= 200, got {sse_grid_masses!r}")
        self.sse_age_step_gyr = float(table_ages(sse_age_step_gyr)[1])
        self.retain_bhs = bool(retain_bhs)
        self.cache_snapshots = bool(cache_snapshots)
        self._params = dict(rh0_pc=self.rh0_pc, n_stars=self.n_stars, seed=self.seed,
                            galactocentric_kpc=self.galactocentric_kpc,
                            metallicity=self.metallicity, n_mass=self.n_mass,
                            retain_bhs=self.retain_bhs)
        if self.sse_age_step_gyr != AGE_STEP_GYR:  # the default keeps the keys of earlier caches
            self._params["sse_age_step_gyr"] = self.sse_age_step_gyr
        self.key = cache_key("run", **self._params)
        self._state = None
        self.setup_seconds = None

    def __repr__(self):
        return (f"ClusterEvolution(name={self.name!r}, rh0_pc={self.rh0_pc:g}, "
                f"n_stars={self.n_stars}, galactocentric_kpc={self.galactocentric_kpc:g}, "
                f"metallicity={self.metallicity:g}, seed={self.seed})")

    # ------------------------------------------------------------------ set-up
    @property
    def times(self) -> np.ndarray:
        """Default snapshot times, Gyr (0-14 in steps of 0.1, the SSE table ages)."""
        t_end = 14.0 if self._state is None else float(self._state["h_t"][-1])
        return AGES_GYR[AGES_GYR <= t_end + 1e-9].copy()

    def dense_times(self, n: int = DENSE_SNAPSHOTS) -> np.ndarray:
        """``n`` evenly spaced snapshot times over the whole run, Gyr (rounded to 1e-6 Gyr).

        Between the SSE table's ages (0.1 Gyr apart by default) every star is interpolated in
        age within its evolutionary phase, and stars that change phase are evolved exactly, so
        any time is a valid snapshot; each time is a new, deterministic draw (seeded by the
        time).

        Examples
        --------
        >>> ClusterEvolution(3.2).dense_times(1401)[:3]         # doctest: +SKIP
        array([0.  , 0.01, 0.02])
        """
        n = _positive("n", n, integer=True)
        if n < 2:
            raise ValueError(f"n must be >= 2, got {n!r}")
        t_end = 14.0 if self._state is None else float(self._state["h_t"][-1])
        return np.round(np.linspace(0.0, t_end, n), 6)

    def _initial(self):
        rng = np.random.default_rng([self.seed, _STREAM_IMF])
        m0 = sample_kroupa(self.n_stars, rng)
        u = rng.random(self.n_stars)
        return m0, u

    def setup(self):
        """Run (or load) the one-time set-up; returns self. Called by :meth:`snapshot`."""
        if self._state is not None:
            return self
        t0 = _time.perf_counter()
        path = self.cache_dir / f"{self.key}.npz"
        self._table = self._stellar_table()
        data = load_or_build(path, self._build)
        self._state = data
        self.history = GlobalHistory.from_arrays(data)
        self.retention = RetentionTable.from_arrays(data)
        self._nodes = [self._node(i) for i in range(len(data["node_t"]))]
        self._m0, self._u = self._initial()
        self.setup_seconds = _time.perf_counter() - t0
        return self

    def _stellar_table(self):
        return StellarTable(self.metallicity, n_mass=self.n_mass,
                            age_step_gyr=self.sse_age_step_gyr, cache_dir=self.cache_dir,
                            progress=self.progress)

    def _node(self, i):
        d = self._state
        n = int(d["node_len"][i])
        return NodeModel(g=float(d["node_g"][i]), delta=float(d["node_delta"][i]),
                         w0=float(d["node_w0"][i]), r=d["node_r"][i, :n], phi=d["node_phi"][i, :n],
                         cdf=d["node_cdf"][i, :, :n], s2j=d["node_s2j"][i],
                         present=d["node_present"][i], rt=float(d["node_rt"][i]))

    def _build(self):
        from tqdm.auto import tqdm

        bar = tqdm(total=4, desc=f"set-up {self.name}", disable=not self.progress, unit="step")
        bar.set_postfix_str("cbhbd")
        hist = run_cbhbd(n_stars=self.n_stars, rh0_pc=self.rh0_pc,
                         galactocentric_kpc=self.galactocentric_kpc, metallicity=self.metallicity,
                         seed=self.seed, retain_bhs=self.retain_bhs)
        bar.update()
        bar.set_postfix_str("ssptools")
        times = AGES_GYR[(AGES_GYR > 0) & (AGES_GYR <= hist.t[-1] + 1e-9)]
        ret = build_retention(hist, n_stars=self.n_stars, metallicity=self.metallicity,
                              times_gyr=times)
        bar.update()
        # relaxation clock and segregation law on cbhbd's grid
        n_obj = np.interp(hist.t, ret.t, ret.n_objects)
        trh = spitzer_trh_gyr(hist.mass, hist.rh, n_obj)
        inv = 1.0 / trh
        n_relax = np.r_[0.0, np.cumsum(0.5 * (inv[1:] + inv[:-1]) * np.diff(hist.t))]
        delta = segregation_delta(n_relax)
        w0_law = concentration_w0(n_relax)
        bar.set_postfix_str("SSE table")
        self._table = getattr(self, "_table", None) or self._stellar_table()
        bar.update()
        # node models: birth, while delta grows, then regularly in time
        t_nodes = [0.0]
        for level in (0.15, 0.3, 0.42):
            if delta[-1] > level:
                t_nodes.append(float(np.interp(level, delta, hist.t)))
        t_nodes += [x for x in (1.0, 2.0, 3.5, 5.0, 7.0, 9.5, 12.0, 14.0)
                    if x <= hist.t[-1] + 1e-9]
        t_nodes = sorted(set(np.round(t_nodes, 3)))
        merged = [t_nodes[0]]
        for x in t_nodes[1:]:
            if x - merged[-1] > 0.2:
                merged.append(x)
        t_nodes = np.array(merged)
        bar.total = 3 + len(t_nodes)
        self._history, self._retention = hist, ret
        self._m0, self._u = self._initial()
        nodes = []
        for tn in t_nodes:
            bar.set_postfix_str(f"limepy t={tn:.2f} Gyr")
            stars = self._table.lookup(self._m0, AGES_GYR[np.argmin(abs(AGES_GYR - tn))])
            frac = self._fractions(stars, tn, hist, ret)
            comp = component_index(stars["mass"])
            cm = np.bincount(comp, weights=stars["mass"] * frac, minlength=_NCOMP)
            cn = np.bincount(comp, weights=frac, minlength=_NCOMP)
            rt_rh = float(hist.at("r_jacobi", tn) / hist.at("rh", tn))
            nodes.append(solve_node(cm, cn, delta=float(np.interp(tn, hist.t, delta)),
                                    rt_over_rh=rt_rh,
                                    w0=float(np.interp(tn, hist.t, w0_law)),
                                    g_guess=nodes[-1].g if nodes else 2.0))
            bar.update()
        bar.close()
        nmax = max(n.r.size for n in nodes)

        def pad(a):
            a = np.asarray(a, float)
            return np.concatenate([a, np.repeat(a[..., -1:], nmax - a.shape[-1], axis=-1)], axis=-1)

        return dict(
            **hist.as_arrays(), **ret.as_arrays(), n_relax=n_relax, delta=delta, w0_law=w0_law,
            node_t=t_nodes, node_len=np.array([n.r.size for n in nodes]),
            node_g=np.array([n.g for n in nodes]), node_delta=np.array([n.delta for n in nodes]),
            node_w0=np.array([n.w0 for n in nodes]), node_rt=np.array([n.rt for n in nodes]),
            node_r=np.stack([pad(n.r) for n in nodes]), node_phi=np.stack([pad(n.phi) for n in nodes]),
            node_cdf=np.stack([pad(n.cdf) for n in nodes]), node_s2j=np.stack([n.s2j for n in nodes]),
            node_present=np.stack([n.present for n in nodes]),
            code_version=np.array(CODE_VERSION))

    @staticmethod
    def _fractions(stars, t, hist, ret):
        """Retained fraction of each star, normalised so the expected mass is cbhbd's M(t)."""
        frac = ret.fraction(stars["kstar"], stars["mass"], t)
        if t <= 0:
            return frac
        m = stars["mass"]
        bh = stars["kstar"] == 14
        m_bh = float(hist.at("mass_bh", t))
        m_tot = float(hist.at("mass", t))
        e_bh = float(np.sum(m[bh] * frac[bh]))
        e_rest = float(np.sum(m[~bh] * frac[~bh]))
        if e_bh > 0:
            frac[bh] *= m_bh / e_bh
        if e_rest > 0:
            frac[~bh] *= max(m_tot - min(m_bh, e_bh if e_bh > 0 else 0.0), 0.0) / e_rest
        return np.clip(frac, 0.0, 1.0)

    # ------------------------------------------------------------------ snapshots
    def _check_time(self, time_gyr):
        if hasattr(time_gyr, "unit"):
            from astropy import units as u

            time_gyr = u.Quantity(time_gyr).to_value(u.Gyr)
        try:
            t = float(time_gyr)
        except (TypeError, ValueError):
            raise TypeError(f"time_gyr must be a number of Gyr, got {time_gyr!r}") from None
        t_end = float(self._state["h_t"][-1])
        if not 0.0 <= t <= t_end + 1e-9:
            raise ValueError(f"time_gyr must be within 0..{t_end:g} Gyr, got {time_gyr!r}")
        return round(t, 6)

    def global_state(self, time_gyr):
        """cbhbd's global quantities and the segregation state at ``time_gyr``.

        Returns
        -------
        dict
            ``mass`` and ``mass_bh`` (Msun), ``rh`` and ``r_jacobi`` (pc), ``n_relax`` and
            ``delta`` (dimensionless).
        """
        self.setup()
        t = self._check_time(time_gyr)
        d = self._state
        return dict(mass=float(self.history.at("mass", t)), mass_bh=float(self.history.at("mass_bh", t)),
                    rh=float(self.history.at("rh", t)), r_jacobi=float(self.history.at("r_jacobi", t)),
                    n_relax=float(np.interp(t, d["h_t"], d["n_relax"])),
                    delta=float(np.interp(t, d["h_t"], d["delta"])))

    def snapshot(self, time_gyr) -> Snapshot:
        """The cluster at ``time_gyr``.

        Parameters
        ----------
        time_gyr : float or astropy Quantity
            Time since formation, Gyr (0 to 14).

        Returns
        -------
        Snapshot
            Stars still bound to the cluster, centred on the origin (positions pc, velocities
            km/s, masses Msun, radii Rsun, luminosities Lsun, SSE ``kstar``).
        """
        self.setup()
        t = self._check_time(time_gyr)
        path = self.cache_dir / f"{self.key}-t{t:.6f}.npz"
        data = load_npz(path)
        if data is None:
            data = self._generate(t)
            if self.cache_snapshots:
                save_npz(path, **data)
        gs = self.global_state(t)
        meta = dict(source="pidoc_core.evolution (embedded surrogate, not N-body)",
                    code_version=CODE_VERSION, seed=self.seed, rh0_pc=self.rh0_pc,
                    n_stars_initial=self.n_stars, galactocentric_kpc=self.galactocentric_kpc,
                    metallicity=self.metallicity, mass_cbhbd=gs["mass"], rh_cbhbd=gs["rh"],
                    r_jacobi=gs["r_jacobi"], n_relax=gs["n_relax"], delta=float(data["delta"]),
                    w0=float(data["w0"]), g=float(data["g"]), rt_model=float(data["rt"]),
                    retain_bhs=self.retain_bhs, n_exact_sse=int(data["n_exact"]))
        cols = {k: data[k].astype(np.float64) for k in
                ("x", "y", "z", "vx", "vy", "vz", "mass", "radius", "luminosity")}
        return Snapshot(**cols, kstar=data["kstar"], time=t, name=self.name, meta=meta)

    def _generate(self, t):
        hist, ret = self.history, self.retention
        stars = self._table.lookup(self._m0, t)
        frac = self._fractions(stars, t, hist, ret)
        keep = (self._u < frac) & (stars["mass"] > 0)
        d = self._state
        delta_t = float(np.interp(t, d["h_t"], d["delta"]))
        # nearest node in (delta, time)
        score = np.abs(d["node_delta"] - delta_t) / 0.05 + np.abs(d["node_t"] - t) / 1.5
        node = self._nodes[int(np.argmin(score))]
        mass = stars["mass"][keep]
        rng = np.random.default_rng([self.seed, _STREAM_SNAP, int(round(t * 1e6))])
        pos, vel = sample_stars(node, component_index(mass), mass_msun=float(mass.sum()),
                                rh_pc=float(hist.at("rh", t)), rng=rng)
        f32 = lambda a: np.asarray(a, np.float32)
        return dict(x=f32(pos[:, 0]), y=f32(pos[:, 1]), z=f32(pos[:, 2]), vx=f32(vel[:, 0]),
                    vy=f32(vel[:, 1]), vz=f32(vel[:, 2]), mass=f32(mass),
                    radius=f32(stars["radius"][keep]), luminosity=f32(stars["luminosity"][keep]),
                    kstar=stars["kstar"][keep].astype(np.int16), delta=np.array(node.delta),
                    w0=np.array(node.w0), g=np.array(node.g),
                    rt=np.array(node.rt * float(hist.at("rh", t))),
                    n_exact=np.array(stars["n_exact"]))


def paper_runs(*, n_stars=50_000, seed=2021, cache_dir=None, progress=True,
               cache_snapshots=True):
    """Analogues of the paper's three NBODY6tt runs (Chardin & Bianchini 2021, Sect. 2.1).

    Parameters
    ----------
    n_stars : int, keyword-only
        Initial number of stars (the paper's runs have 50,000).
    seed : int, keyword-only
        Base seed; run i uses ``seed + i``.
    cache_dir : path, keyword-only
        Cache directory.
    progress : bool, keyword-only
        Show set-up progress bars.
    cache_snapshots : bool, keyword-only
        Keep new snapshots on disk (see :class:`ClusterEvolution`).

    Returns
    -------
    dict
        ``{'MW15-R1.6 analogue': ..., 'MW15 analogue': ..., 'MW15-R4 analogue': ...}`` (in that
        order; initial half-mass radii 1.6, 3.2 and 4.0 pc, 15 kpc circular orbit, Z = 0.001).
    """
    return {f"{name} analogue": ClusterEvolution(rh0, n_stars=n_stars, galactocentric_kpc=15.0,
                                                 metallicity=0.001, seed=seed + i,
                                                 name=f"{name} analogue", cache_dir=cache_dir,
                                                 progress=progress,
                                                 cache_snapshots=cache_snapshots)
            for i, (name, rh0) in enumerate(PAPER_RUNS.items())}


_FORMATS = {"ecsv": ("ascii.ecsv", ".ecsv"), "fits": ("fits", ".fits"), "hdf5": ("hdf5", ".h5"),
            "csv": ("ascii.csv", ".csv")}


def export_snapshots(evolution, times, directory, *, format="ecsv", progress=True):
    """Write snapshots of a run to files, one per time.

    Parameters
    ----------
    evolution : ClusterEvolution
        The run.
    times : array_like
        Times, Gyr.
    directory : path
        Output directory (created if missing).
    format : {'ecsv', 'fits', 'hdf5', 'csv'}, keyword-only
        File format (astropy Table writers).
    progress : bool, keyword-only
        Show a tqdm bar.

    Returns
    -------
    list of pathlib.Path
        The files written (each written to a temporary name, then renamed).
    """
    from tqdm.auto import tqdm

    if format not in _FORMATS:
        raise ValueError(f"format must be one of {sorted(_FORMATS)}, got {format!r}")
    if not isinstance(evolution, ClusterEvolution):
        raise TypeError(f"evolution must be a ClusterEvolution, got {type(evolution).__name__}")
    writer, ext = _FORMATS[format]
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    slug = re.sub(r"[^A-Za-z0-9.+-]+", "_", evolution.name).strip("_") or "run"
    paths = []
    for t in tqdm(np.atleast_1d(np.asarray(times, float)), desc=f"export {evolution.name}",
                  disable=not progress, unit="snap"):
        snap = evolution.snapshot(float(t))
        path = directory / f"{slug}_t{snap.time:07.3f}Gyr{ext}"
        with atomic_path(path, suffix=".tmp" + ext) as tmp:
            snap.to_table().write(tmp, format=writer, overwrite=True)
        paths.append(path)
    return paths
