"""Global evolution of a cluster in the Galactic tidal field (cbhbd) and the segregation law.

cbhbd (Gieles/Gkoutsi et al.) integrates the total mass M(t), half-mass radius rh(t) and black-hole
mass Mbh(t) of a cluster on a circular orbit in a singular-isothermal-sphere Galaxy; its tidal
(Jacobi) radius is r_J = (G M / (2 Omega^2))**(1/3).

Mass segregation law
--------------------
The degree of mass segregation of the phase-space model is limepy's ``delta`` in
``s_j = s * mu_j**(-delta)`` (Gieles & Zocchi 2015), which we let grow with the number of elapsed
half-mass relaxation times ``N_relax(t) = integral dt / t_rh``::

    delta(N_relax) = 0.5 * (1 - exp(-N_relax / 2))

so delta = 0 at birth (no primordial segregation; a Plummer start has none), ~0.2 after one
t_rh, ~0.39 after three and -> 0.5 after >~ 5 t_rh. t_rh is Spitzer's (1987) half-mass relaxation
time, t_rh = 0.138 sqrt(M rh^3 / G) / (<m> ln(0.11 N)) with M, rh from cbhbd and N, <m> from the
evolved mass function. Calibration: Peuten et al. (2017, MNRAS 470, 2736) fit multimass limepy
models to direct N-body runs and find delta ~ 1/2 describes them once they are a few relaxation
times old; Bianchini et al. (2016, MNRAS 458, 3644) and Webb & Vesperini (2017, MNRAS 464, 1977)
show the mass dependence of the velocity dispersion building up over the first few t_rh. The
e-folding of 2 t_rh is our choice within that picture, not a fit made here.
"""

from __future__ import annotations

import contextlib
import io
import warnings
from dataclasses import dataclass

import numpy as np

from .imf import KROUPA_BREAKS, KROUPA_SLOPES

__all__ = ["DELTA_MAX", "N_SEG", "W0_START", "W0_LATE", "N_CONC", "segregation_delta",
           "concentration_w0", "GlobalHistory", "run_cbhbd", "spitzer_trh_gyr"]

DELTA_MAX = 0.5
N_SEG = 2.0
#: Central potential of the law at birth (a Plummer sphere's central concentration).
W0_START = 5.0
#: Central potential the law tends to after many relaxation times (near core collapse).
W0_LATE = 8.5
#: e-folding of the concentration law, half-mass relaxation times.
N_CONC = 4.0
_G_MYR = 0.004499  # pc^3 / (Msun Myr^2)


def segregation_delta(n_relax):
    """limepy ``delta`` for a number of elapsed half-mass relaxation times (see module notes)."""
    n = np.maximum(np.asarray(n_relax, float), 0.0)
    return DELTA_MAX * (1.0 - np.exp(-n / N_SEG))


def concentration_w0(n_relax):
    """Central potential W0 of the structural model after ``n_relax`` relaxation times.

    ``W0(N) = W0_START + (W0_LATE - W0_START) * (1 - exp(-N / N_CONC))`` (see module notes).

    Examples
    --------
    >>> float(concentration_w0(0.0))
    5.0
    """
    n = np.maximum(np.asarray(n_relax, float), 0.0)
    return W0_START + (W0_LATE - W0_START) * (1.0 - np.exp(-n / N_CONC))


def spitzer_trh_gyr(mass, rh, n_objects):
    """Spitzer (1987) half-mass relaxation time.

    Parameters
    ----------
    mass : array_like
        Cluster mass, Msun.
    rh : array_like
        Half-mass radius, pc.
    n_objects : array_like
        Number of stars and remnants.

    Returns
    -------
    numpy.ndarray
        t_rh in Gyr, with ln(0.11 N) (Giersz & Heggie 1994).
    """
    mass, rh, n = (np.asarray(x, float) for x in (mass, rh, n_objects))
    mmean = mass / n
    return 0.138 * np.sqrt(mass * rh**3 / _G_MYR) / (mmean * np.log(0.11 * n)) / 1e3


@dataclass(frozen=True)
class GlobalHistory:
    """cbhbd's global quantities on a time grid (all arrays share ``t``).

    Attributes
    ----------
    t : numpy.ndarray
        Time, Gyr.
    mass, mass_bh : numpy.ndarray
        Total and black-hole mass, Msun.
    rh : numpy.ndarray
        Half-mass radius, pc.
    r_jacobi : numpy.ndarray
        Jacobi (tidal) radius, pc.
    esc_rate : numpy.ndarray
        Tidal escape rate of stars, Msun/Myr (negative).
    vesc0 : float
        Initial escape velocity, km/s (for natal-kick retention).
    """

    t: np.ndarray
    mass: np.ndarray
    mass_bh: np.ndarray
    rh: np.ndarray
    r_jacobi: np.ndarray
    esc_rate: np.ndarray
    vesc0: float

    def at(self, name, time_gyr):
        """Linear interpolation of attribute ``name`` at ``time_gyr`` (Gyr)."""
        return np.interp(time_gyr, self.t, getattr(self, name))

    def as_arrays(self, prefix="h_"):
        return {prefix + k: np.asarray(getattr(self, k)) for k in
                ("t", "mass", "mass_bh", "rh", "r_jacobi", "esc_rate", "vesc0")}

    @classmethod
    def from_arrays(cls, data, prefix="h_"):
        return cls(**{k: (float(data[prefix + k]) if k == "vesc0" else data[prefix + k])
                      for k in ("t", "mass", "mass_bh", "rh", "r_jacobi", "esc_rate", "vesc0")})


def run_cbhbd(*, n_stars, rh0_pc, galactocentric_kpc, metallicity, tend_gyr=14.0, seed=0,
              dt_gyr=0.01, retain_bhs=False):
    """Run cbhbd for a cluster and tabulate its global history.

    Parameters
    ----------
    n_stars : int
        Initial number of stars.
    rh0_pc : float
        Initial half-mass radius, pc.
    galactocentric_kpc : float
        Radius of the circular orbit, kpc.
    metallicity : float
        Z (solar 0.02).
    tend_gyr : float
        Final time, Gyr.
    seed : int
        Seed passed to cbhbd.
    dt_gyr : float
        Output spacing, Gyr.
    retain_bhs : bool
        Keep cbhbd's black-hole population (natal kicks scaled by fallback, so most massive
        BHs stay and power the expansion of rh). False (default) runs cbhbd without BHs, as in
        NBODY6 runs where natal kicks remove (nearly) all of them (see module notes).

    Returns
    -------
    GlobalHistory
    """
    state = np.random.get_state()
    err = np.geterr()
    # cbhbd changes warning filters and numpy's error state when imported: confine both.
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        try:
            from cbhbd.cbhbd import CBHBD

            run = CBHBD(N=int(n_stars), rh0=float(rh0_pc), rg=float(galactocentric_kpc),
                        Z=float(metallicity), tend=float(tend_gyr) * 1e3,
                        m_breaks=list(KROUPA_BREAKS), a_slopes=list(KROUPA_SLOPES),
                        compute_mergers=False, verbose=False, seed=int(seed),
                        BH=bool(retain_bhs))
        finally:
            np.random.set_state(state)
            np.seterr(**err)  # cbhbd silences numpy warnings globally on import
    cl = run.cluster
    t_end = float(min(tend_gyr, cl.t.max()))
    t = np.round(np.arange(0.0, t_end + 1e-9, dt_gyr), 10)
    mst = np.array([float(cl.Mst_interp(x)) for x in t])
    if retain_bhs:
        mbh = np.maximum(np.array([float(cl.Mbh_interp(x)) for x in t]), 0.0)
    else:
        mbh = np.zeros(t.size)
    mbh[mbh < 1.0] = 0.0
    rh = np.array([float(cl.rh_interp(x)) for x in t])
    mass = mst + mbh
    rj0 = float(cl.rt[0]) / float(cl.M[0]) ** (1 / 3)
    rj = rj0 * np.maximum(mass, 1e-9) ** (1 / 3)
    xi = np.interp(t, cl.t, cl.xi)
    tev = np.interp(t, cl.t, cl.tev)
    esc = -xi * mst / tev
    return GlobalHistory(t=t, mass=mass, mass_bh=mbh, rh=rh, r_jacobi=rj, esc_rate=esc,
                         vesc0=float(cl.vesc0))
