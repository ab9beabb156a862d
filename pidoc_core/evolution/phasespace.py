"""Phase-space coordinates from multimass lowered isothermal models (astro-limepy).

A model is solved (``limepy.limepy``) in units G = M = rh = 1 for a set of mass components and a
segregation index ``delta`` and a central potential W0 given by the concentration law of
:mod:`.dynamics`; its truncation index g (0 <= g <= 2.5, Gieles & Zocchi 2015) is solved for so
that its truncation radius matches the Jacobi radius from cbhbd. Stars are then drawn from the model's
distribution function by our own vectorised sampler with an explicit ``numpy.random.Generator``
(limepy.sample reseeds numpy's global generator); limepy itself is called with numpy's global
random state saved and restored.

limepy fails for components heavier than ~4 Msun (with delta ~ 0.5 their dimensionless central
potential becomes too deep), so the heaviest component (black holes, massive stars and the most
massive remnants) is represented in the model with a mean mass capped at ``HEAVY_CAP`` Msun;
its stars keep their true masses.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from scipy.special import gammainc

__all__ = ["COMPONENT_EDGES", "HEAVY_CAP", "G_RANGE", "G_KMS", "NodeModel", "solve_node", "sample_stars",
           "component_index"]

#: Edges (Msun, current mass) of the model's mass components.
COMPONENT_EDGES = np.array([0.0, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.95, 1.2, 1.6, np.inf])
#: Mean mass (Msun) given to limepy for the heaviest component at most.
HEAVY_CAP = 2.0
#: Gravitational constant, (km/s)^2 pc / Msun.
G_KMS = 0.004302
_W0_RANGE = (3.0, 9.0)
#: Allowed truncation indices g (Gieles & Zocchi 2015: 0 <= g < 3.5; finite mass for g < 2.5).
G_RANGE = (0.0, 2.5)


def component_index(mass):
    """Index of the mass component of each star (see :data:`COMPONENT_EDGES`)."""
    return np.clip(np.searchsorted(COMPONENT_EDGES, mass, side="right") - 1, 0,
                   COMPONENT_EDGES.size - 2)


@dataclass(frozen=True)
class NodeModel:
    """A solved model in units G = M = rh = 1.

    Attributes
    ----------
    g, delta, w0 : float
        Truncation index, segregation index and central potential.
    r, phi : numpy.ndarray
        Radius grid and potential (positive, 0 at the truncation radius).
    cdf : numpy.ndarray
        (n_comp, n_r) normalised enclosed mass of each component.
    s2j : numpy.ndarray
        (n_comp,) velocity scale squared of each component.
    present : numpy.ndarray
        (n_comp,) bool, components in the model.
    rt : float
        Truncation radius (in units of rh).
    """

    g: float
    delta: float
    w0: float
    r: np.ndarray
    phi: np.ndarray
    cdf: np.ndarray
    s2j: np.ndarray
    present: np.ndarray
    rt: float

    FIELDS = ("g", "delta", "w0", "r", "phi", "cdf", "s2j", "present", "rt")


def _solve(w0, g, mj, mjtot, delta):
    from limepy import limepy

    state = np.random.get_state()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return limepy(w0, g, mj=mj, Mj=mjtot, delta=delta, M=1.0, rh=1.0, G=1.0,
                          diffcrit=1e-6)
    finally:
        np.random.set_state(state)


# solve_node: ~100 lines, ~33 of them the docstring (each option and its units), ~67 code
def solve_node(comp_mass, comp_number, *, delta, rt_over_rh, w0, g_range=G_RANGE, g_guess=1.5,
               tol=0.04):
    """Solve a multimass model of given W0 whose truncation matches ``rt_over_rh`` through g.

    The central potential ``w0`` comes from the dynamical-state law
    (:func:`pidoc_core.evolution.dynamics.concentration_w0`); the truncation index g is then found
    within ``g_range`` (bracketed from ``g_guess`` in steps of 0.4, then regula falsi on
    log(r_t/r_h), which grows monotonically with g at fixed W0) so that r_t/r_h equals the wanted Jacobi radius over half-mass radius. If even the
    sharpest truncation (g = g_range[0]) is too extended, W0 is lowered in steps of 0.5 (down to
    3); if the most extended one (g = g_range[1]) is too compact, the closest model is kept and
    its truncation is recorded in ``rt``.

    Parameters
    ----------
    comp_mass : array_like
        Total mass of each component (any unit; only ratios matter).
    comp_number : array_like
        Number of objects of each component.
    delta : float, keyword-only
        Segregation index (0 = no segregation, 0.5 = Peuten et al. 2017).
    rt_over_rh : float, keyword-only
        Wanted truncation over half-mass radius (Jacobi radius / rh).
    w0 : float, keyword-only
        Wanted dimensionless central potential of the mean-mass component.
    g_range : (float, float), keyword-only
        Allowed truncation indices (0 = Woolley, 1 = King, 2 = Wilson; limepy allows < 3.5).
    g_guess : float, keyword-only
        First g tried (e.g. that of the previous node).
    tol : float, keyword-only
        Accepted relative mismatch of r_t/r_h.

    Returns
    -------
    NodeModel
    """
    comp_mass = np.asarray(comp_mass, float)
    comp_number = np.asarray(comp_number, float)
    present = (comp_number >= 1.0) & (comp_mass > 0)
    if not present.any():
        raise ValueError("no mass component has stars")
    mj = comp_mass[present] / comp_number[present]
    mtot = comp_mass[present]
    caps = (HEAVY_CAP, 1.5, 1.2)
    target = np.log(max(float(rt_over_rh), 1.01))
    g_lo, g_hi = (float(x) for x in g_range)

    def attempt(w, g):
        for cap in caps:
            try:
                m = _solve(w, g, np.minimum(mj, cap), mtot, delta)
                if m.converged and np.isfinite(m.rt) and m.rt > m.rh:
                    return m
            except (ValueError, FloatingPointError, ZeroDivisionError, IndexError):
                continue
        return None

    def mismatch(m):
        return np.log(m.rt / m.rh) - target

    cands = []

    def bracket(w):
        """Step g from the guess until log(rt/rh) - target changes sign; (a, fa, b, fb)."""
        g = float(np.clip(g_guess, g_lo, g_hi))
        m = attempt(w, g)
        if m is None:
            return None
        cands.append((w, g, m))
        f = mismatch(m)
        step = 0.4 if f < 0 else -0.4
        while abs(f) >= tol:
            g2 = float(np.clip(g + step, g_lo, g_hi))
            if g2 == g:
                return None
            m2 = attempt(w, g2)
            if m2 is None:
                return None
            cands.append((w, g2, m2))
            f2 = mismatch(m2)
            if f2 * f <= 0:
                return (g, f, g2, f2) if g < g2 else (g2, f2, g, f)
            g, f = g2, f2
        return None  # already within tolerance (or unreachable)

    w = float(np.clip(w0, _W0_RANGE[0], _W0_RANGE[1]))
    br = bracket(w)
    # even the sharpest truncation is too extended: lower W0 until the target is reachable
    while (br is None and w > _W0_RANGE[0] and cands
           and min(abs(mismatch(c[2])) for c in cands) >= tol
           and all(mismatch(c[2]) > 0 for c in cands if c[0] == w)):
        w = max(w - 0.5, _W0_RANGE[0])
        br = bracket(w)
    if br is not None:
        _illinois(br, lambda g: attempt(w, g), mismatch, lambda g, m: cands.append((w, g, m)),
                  tol)
    if not cands:
        raise RuntimeError(f"limepy did not converge for W0={w0:.2f}, delta={delta:.3f}, "
                           f"components {mj}")
    w0, g, model = min(cands, key=lambda c: abs(mismatch(c[2])))
    return _node_model(model, comp_mass.size, present, g=g, delta=delta, w0=w0)


def _illinois(bracket, attempt, mismatch, record, tol, *, iterations=8):
    """Illinois regula falsi on ``mismatch(attempt(g))`` inside ``bracket = (a, fa, b, fb)``;
    every model solved is passed to ``record(g, model)``."""
    a, fa, b, fb = bracket
    side = 0
    for _ in range(iterations):
        g = b - fb * (b - a) / (fb - fa)
        m = attempt(g)
        if m is None:
            g = 0.5 * (a + b)
            m = attempt(g)
            if m is None:
                return
        record(g, m)
        fg = mismatch(m)
        if abs(fg) < tol:
            return
        if fg * fb > 0:
            b, fb = g, fg
            if side == -1:
                fa *= 0.5
            side = -1
        else:
            a, fa = g, fg
            if side == 1:
                fb *= 0.5
            side = 1


def _node_model(model, ncomp: int, present, *, g, delta, w0) -> NodeModel:
    """A :class:`NodeModel` from a solved limepy model (solved with rh = 1): per-component
    cumulative mass profiles on the model's radii, zero for absent components."""
    r = np.asarray(model.r, float)
    phi = np.asarray(model.phi, float)
    cdf = np.zeros((ncomp, r.size))
    s2j = np.ones(ncomp)
    k = 0
    mcj = np.atleast_2d(model.mcj)
    for j in range(ncomp):
        if present[j]:
            c = np.maximum.accumulate(np.asarray(mcj[k], float))
            cdf[j] = c / c[-1]
            s2j[j] = float(np.atleast_1d(model.s2j)[k])
            k += 1
    return NodeModel(g=float(g), delta=float(delta), w0=float(w0), r=r, phi=phi, cdf=cdf,
                     s2j=s2j, present=present, rt=float(model.rt))


def _e_gamma(g, x):
    """E_gamma(g, x) = exp(x) P(g, x) (Gieles & Zocchi 2015 eq. 2), without the exp for ratios."""
    x = np.maximum(x, 0.0)
    return gammainc(g, x) if g > 0 else np.ones_like(x)


def _sample_k(x, g, rng):
    """Draw k = v^2 / (2 s_j^2) in [0, x] from p(k) ~ sqrt(k) exp(x - k) P(g, x - k)."""
    k = np.empty(x.size)
    todo = np.arange(x.size)
    for _ in range(200):
        if todo.size == 0:
            break
        xs = x[todo]
        small = xs < 2.5
        prop = np.empty(todo.size)
        acc = np.empty(todo.size)
        # near the edge: proposal ~ sqrt(k) on [0, x]; weight exp(-k) P(g,x-k)/P(g,x) <= 1
        ns = int(small.sum())
        if ns:
            kp = xs[small] * rng.random(ns) ** (2.0 / 3.0)
            prop[small] = kp
            acc[small] = np.exp(-kp) * _e_gamma(g, xs[small] - kp) / np.maximum(
                _e_gamma(g, xs[small]), 1e-300)
        nb = todo.size - ns
        if nb:
            kp = rng.gamma(1.5, 1.0, nb)
            xb = xs[~small]
            prop[~small] = kp
            acc[~small] = np.where(kp <= xb, _e_gamma(g, xb - kp) / np.maximum(_e_gamma(g, xb), 1e-300), 0.0)
        ok = rng.random(todo.size) < acc
        k[todo[ok]] = prop[ok]
        todo = todo[~ok]
    if todo.size:  # pathological: put them at rest
        k[todo] = 0.0
    return k


def _isotropic(n, rng):
    cos_t = rng.uniform(-1.0, 1.0, n)
    sin_t = np.sqrt(1.0 - cos_t**2)
    ph = rng.uniform(0.0, 2 * np.pi, n)
    return np.column_stack([sin_t * np.cos(ph), sin_t * np.sin(ph), cos_t])


def sample_stars(node, comp, *, mass_msun, rh_pc, rng):
    """Positions and velocities of stars of given components from a node model.

    Parameters
    ----------
    node : NodeModel
        Solved model (units G = M = rh = 1).
    comp : array_like of int
        Component of each star; components absent from the model use the nearest present one.
    mass_msun : float, keyword-only
        Cluster mass used to scale the model, Msun.
    rh_pc : float, keyword-only
        Half-mass radius used to scale the model, pc.
    rng : numpy.random.Generator, keyword-only

    Returns
    -------
    tuple of numpy.ndarray
        Positions (N, 3) in pc and velocities (N, 3) in km/s, centred on the model centre.
    """
    comp = np.asarray(comp, int)
    present = np.flatnonzero(node.present)
    lookup = present[np.abs(np.arange(node.present.size)[:, None] - present[None, :]).argmin(1)]
    comp = lookup[comp]
    n = comp.size
    r = np.empty(n)
    u = rng.random(n)
    for j in np.unique(comp):
        sel = comp == j
        c = node.cdf[j]
        keep = np.r_[True, np.diff(c) > 0]
        r[sel] = np.interp(u[sel], c[keep], node.r[keep])
    phi = np.maximum(np.interp(r, node.r, node.phi), 0.0)
    s2 = node.s2j[comp]
    k = _sample_k(phi / s2, node.g, rng)
    speed = np.sqrt(2.0 * k * s2)
    pos = _isotropic(n, rng) * r[:, None] * rh_pc
    vel = _isotropic(n, rng) * speed[:, None] * np.sqrt(G_KMS * mass_msun / rh_pc)
    return pos, vel
