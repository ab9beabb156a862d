"""Embedded cluster-evolution source: snapshots of star clusters from the community's codes.

The paper's training data are three private NBODY6tt runs (N = 50,000, Kroupa IMF 0.1-50 Msun,
Z = 0.001, Plummer start with rh0 = 1.6, 3.2, 4.0 pc, circular orbit at 15 kpc, 14 Gyr). This
package builds *analogues* of them, and of any similar cluster, from public codes:

1. **cbhbd** — total mass M(t), half-mass radius rh(t) and Jacobi radius in the Galactic tidal
   field, by default without retained black holes as in NBODY6 runs with natal kicks
   (:mod:`.dynamics`).
2. **astro-ssptools** (``EvolvedMFWithBH``) — escape of stars and remnants by mass, driven by
   cbhbd's tidal mass-loss rate and BH fraction, turned into a retained fraction per star
   (:mod:`.massfunction`).
3. **COSMIC** (Hurley SSE) — current mass, luminosity, radius and type of every star, from a cached
   initial-mass x age table with exact evolution of stars whose cell straddles a phase boundary
   (:mod:`.stellar`).
4. **astro-limepy** — multimass lowered isothermal models with mass segregation ``delta`` and
   central potential W0 growing with the number of elapsed relaxation times (concentration towards
   core collapse; laws and calibration in :mod:`.dynamics`), solved at ~12 node times per run with
   the truncation index g (0-2.5) chosen so the truncation radius equals the Jacobi radius; stars
   are drawn from the model's distribution function with an explicit generator
   (:mod:`.phasespace`).

Each star keeps its initial mass and a fixed uniform number for the whole run, and is a member at
time t when that number is below its retained fraction, so membership is (nearly) nested in time.
Set-up (cbhbd, ssptools, SSE table, limepy nodes) runs once per run and is cached as ``.npz``
files; snapshots are cached too.

Where this is weaker than a real N-body run
-------------------------------------------
- Each snapshot is an independent equilibrium draw of positions and velocities: no orbits, no
  time correlation of phase-space coordinates between snapshots (only membership and stellar
  properties are continuous).
- No tidal tails, no potential escapers, no Lagrange-point structure: the model is spherical,
  isotropic and truncated; stars that escape simply vanish.
- No primordial or dynamically formed binaries, no blue stragglers, no collisions or mergers.
- No real core collapse or gravothermal oscillations: the growing central concentration is a
  calibrated law for W0 (capped at 8.5, a near-collapse King-like core, not a cusp), not the
  outcome of the dynamics. With ``retain_bhs=True`` BHs are represented in limepy by a component
  of mass capped at 2 Msun (limepy fails above ~4 Msun), so they are less segregated than real BHs.
- If cbhbd's rJ/rh is out of reach for the law's W0 within 0 <= g <= 2.5, W0 is lowered (too
  extended) or the closest model kept (too compact); each snapshot's ``meta`` records W0, g and
  the model's truncation radius ``rt_model`` (pc) next to ``r_jacobi``.
- Structure changes only between limepy node times (about 5-9 per run): the segregation index
  and mass function of the nearest node are used; mass, rh and the stars themselves follow time
  continuously.
- Velocities are isotropic (no radial anisotropy in the halo, no rotation).
- The escape of stars is a binned mean-field prescription (ssptools, Lamers et al. 2013 style),
  rescaled so the expected mass equals cbhbd's M(t); SSE (COSMIC) and ssptools use different
  initial-final mass relations, so remnant mass fractions differ slightly from either code alone.
- Neutron-star retention is ssptools' fixed 10 %; by default no BHs are retained; with
  ``retain_bhs=True`` BH kicks and ejections follow cbhbd and ssptools, not stochastic dynamics.
- COSMIC runs in a private temporary directory (its Fortran writes ``fort.99`` scratch files).
- The mass segregation and concentration laws are stated calibrations, not fits to the paper's
  runs; the paper's NBODY6tt snapshots were not available to check them.

Examples
--------
>>> from pidoc_core.evolution import paper_runs                # doctest: +SKIP
>>> run = paper_runs()["MW15 analogue"]                         # doctest: +SKIP
>>> snap = run.snapshot(12.0)                                   # doctest: +SKIP
"""

from .cluster import PAPER_RUNS, ClusterEvolution, export_snapshots, paper_runs
from .dynamics import concentration_w0, segregation_delta

__all__ = ["ClusterEvolution", "paper_runs", "export_snapshots", "PAPER_RUNS",
           "segregation_delta", "concentration_w0"]
