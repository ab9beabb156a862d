"""Present-day mass function and escape of stars (astro-ssptools), as per-star retention.

ssptools' ``EvolvedMFWithBH`` evolves the binned IMF with stellar evolution, natal kicks, the
tidal escape rate of cbhbd (preferentially removing low-mass stars, Lamers et al. 2013) and
dynamical BH ejections that follow cbhbd's BH mass fraction. Dividing each bin by a reference
run without escape or kicks gives the fraction of objects of that kind and mass still in the
cluster, which is applied star by star to the individually evolved (SSE) population.
"""

from __future__ import annotations

import contextlib
import io
import warnings
from dataclasses import dataclass

import numpy as np

from .imf import KROUPA_BREAKS, KROUPA_SLOPES

__all__ = ["RetentionTable", "build_retention"]

_NBINS = [5, 5, 20]


@dataclass(frozen=True)
class RetentionTable:
    """Retained fractions per object class and mass bin on a time grid.

    Attributes
    ----------
    t : numpy.ndarray
        Times, Gyr (first is 0, where everything is retained).
    ms_edges, wd_edges, bh_edges : numpy.ndarray
        Bin edges, Msun (current mass for stars and remnants).
    ms, wd, bh : numpy.ndarray
        (n_t, n_bin) retained fractions in [0, 1].
    ns : numpy.ndarray
        (n_t,) retained fraction of neutron stars.
    giant : numpy.ndarray
        (n_t,) retained fraction for post-main-sequence stars (that of the turn-off bin).
    n_objects : numpy.ndarray
        (n_t,) number of stars and remnants in the cluster.
    """

    t: np.ndarray
    ms_edges: np.ndarray
    wd_edges: np.ndarray
    bh_edges: np.ndarray
    ms: np.ndarray
    wd: np.ndarray
    bh: np.ndarray
    ns: np.ndarray
    giant: np.ndarray
    n_objects: np.ndarray

    _FIELDS = ("t", "ms_edges", "wd_edges", "bh_edges", "ms", "wd", "bh", "ns", "giant",
               "n_objects")

    def as_arrays(self, prefix="r_"):
        return {prefix + k: getattr(self, k) for k in self._FIELDS}

    @classmethod
    def from_arrays(cls, data, prefix="r_"):
        return cls(**{k: data[prefix + k] for k in cls._FIELDS})

    def _row(self, arr, time_gyr):
        return np.array([np.interp(time_gyr, self.t, col) for col in np.atleast_2d(arr.T)])

    def fraction(self, kstar, mass, time_gyr):
        """Retained fraction of each object.

        Parameters
        ----------
        kstar : array_like of int
            SSE types.
        mass : array_like
            Current masses, Msun.
        time_gyr : float
            Time, Gyr.

        Returns
        -------
        numpy.ndarray
            Fractions in [0, 1].
        """
        kstar = np.asarray(kstar)
        mass = np.asarray(mass, float)
        out = np.ones(mass.size)

        def binned(edges, table, sel):
            row = self._row(table, time_gyr)
            idx = np.clip(np.searchsorted(edges, mass[sel], side="right") - 1, 0, row.size - 1)
            return row[idx]

        ms = kstar <= 1
        out[ms] = binned(self.ms_edges, self.ms, ms)
        giant = (kstar >= 2) & (kstar <= 9)
        out[giant] = np.interp(time_gyr, self.t, self.giant)
        wd = (kstar >= 10) & (kstar <= 12)
        out[wd] = binned(self.wd_edges, self.wd, wd)
        out[kstar == 13] = np.interp(time_gyr, self.t, self.ns)
        bh = kstar == 14
        out[bh] = binned(self.bh_edges, self.bh, bh)
        return np.clip(out, 0.0, 1.0)


def _ratio(num, den, nmin=1e-3):
    num, den = np.asarray(num, float), np.asarray(den, float)
    with np.errstate(divide="ignore", invalid="ignore"):
        r = np.where(den > nmin, num / den, np.nan)
    return r


def _fill(r, fallback):
    """Replace NaN (empty reference bins) by the fallback value of the same row."""
    r = np.array(r, float)
    bad = ~np.isfinite(r)
    fb = np.asarray(fallback, float)
    if r.ndim == 2 and fb.ndim == 1:
        fb = fb[:, None]
    fb = np.broadcast_to(fb, r.shape)
    r[bad] = fb[bad]
    return np.clip(r, 0.0, 1.0)


def build_retention(history, *, n_stars, metallicity, times_gyr):
    """Run ssptools with cbhbd's escape and BH history and tabulate retained fractions.

    Parameters
    ----------
    history : GlobalHistory
        cbhbd output (escape rate in Msun/Myr, BH and total mass).
    n_stars : int
        Initial number of stars.
    metallicity : float
        Z (solar 0.02).
    times_gyr : array_like
        Output times, Gyr (> 0, increasing); 0 is prepended.

    Returns
    -------
    RetentionTable
    """
    import ssptools

    times = np.asarray(times_gyr, float)
    times = times[times > 0]
    tout = times * 1e3  # ssptools' tout is in Myr (its docstring says years)
    feh = float(np.log10(metallicity / 0.02))
    t_h, esc_h = history.t, history.esc_rate

    def esc(t_myr):
        return float(np.interp(t_myr / 1e3, t_h, esc_h))

    fbh = np.clip(history.at("mass_bh", times) / np.maximum(history.at("mass", times), 1e-9), 0, 1)
    state = np.random.get_state()
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        try:
            run = ssptools.EvolvedMFWithBH.from_powerlaw(
                list(KROUPA_BREAKS), list(KROUPA_SLOPES), _NBINS, feh, tout, esc, fbh,
                N0=int(n_stars), esc_norm="M", natal_kicks=True, vesc=history.vesc0,
                strict_BH_target=False)
            ref = ssptools.EvolvedMF.from_powerlaw(
                list(KROUPA_BREAKS), list(KROUPA_SLOPES), _NBINS, feh, tout, 0.0,
                N0=int(n_stars), NS_ret=1.0, BH_ret_dyn=1.0, natal_kicks=False)
        finally:
            np.random.set_state(state)
    bins = run.massbins.bins
    ms_edges = np.r_[bins.MS.lower, bins.MS.upper[-1]]
    wd_edges = np.r_[bins.WD.lower, bins.WD.upper[-1]]
    bh_edges = np.r_[bins.BH.lower, 1e3]
    ms = _ratio(run.Ns, ref.Ns)
    # turn-off bin: highest main-sequence bin still populated in the reference run
    giant = np.ones(times.size)
    for i in range(times.size):
        ok = np.flatnonzero(np.isfinite(ms[i]) & (ref.Ns[i] > 1.0))
        giant[i] = ms[i, ok[-1]] if ok.size else 1.0
    mean_ms = np.nanmean(np.where(np.isfinite(ms), ms, np.nan), axis=1)
    ms = _fill(ms, giant)
    wd = _fill(_ratio(run.Nr.WD, ref.Nr.WD), mean_ms)
    ns = _fill(_ratio(run.Nr.NS.sum(1), ref.Nr.NS.sum(1)), 0.1)
    bh_frac = _ratio(run.Nr.BH, ref.Nr.BH)
    bh = _fill(bh_frac, 0.0)
    n_obj = run.Ns.sum(1) + run.Nr.WD.sum(1) + run.Nr.NS.sum(1) + run.Nr.BH.sum(1)
    one = lambda a: np.vstack([np.ones((1,) + a.shape[1:]), a]) if a.ndim == 2 else np.r_[1.0, a]
    return RetentionTable(t=np.r_[0.0, times], ms_edges=ms_edges, wd_edges=wd_edges,
                          bh_edges=bh_edges, ms=one(ms), wd=one(wd), bh=one(bh), ns=one(ns),
                          giant=one(giant), n_objects=np.r_[float(n_stars), n_obj])
