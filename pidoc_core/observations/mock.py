"""Mock Table 3: embedded mocks of the paper's 17 clusters, and π-DOC on them (issue 18).

The paper applies π-DOC to the 17 globular clusters of its Table 3, whose true field M/L, age
and distance nobody knows exactly. Mocks with a known truth show what π-DOC does on clusters like
them: for each catalogue cluster, the run of the wide grid (:mod:`pidoc_core.evolution.grid`)
whose mock observation at the cluster's age and catalogue distance is most like the cluster, and
π-DOC's predictions on that mock, beside the mock's truth and beside the paper's predictions for
the real cluster.

How a mock is matched (:func:`match_mocks`)
-------------------------------------------
Each run's snapshot at the cluster's age (Table 3's; 12 Gyr where it prints '-', the paper's
footnote 5) is observed centred, unrotated, at the catalogue distance and 1" seeing (PS1 stacks
have ~1-1.3"). Its distance to the cluster, in units of :data:`MATCH_SCALES`::

    D^2 = (dlog10 L_FoV / 0.1)^2 + (dlog10 r_h / 0.2)^2 + (d[Fe/H] / 0.6)^2

with L_FoV the V-band luminosity in the 40" field (what the paper's Fig. 10 range check tests,
so it weighs most), r_h the projected half-light radius (arcmin) and [Fe/H] the run's (0.6 dex is
one step of the grid). The run with the smallest D is the cluster's mock. Core radii are not
matched: the grid's old runs are all centrally concentrated (see the grid's notes). The mock's
own L_FoV, r_h and [Fe/H] are in the table, so how close the grid comes to each cluster shows.

What the table holds (:func:`mock_table3`)
------------------------------------------
Per cluster: the catalogue's distance, age, [Fe/H], L_FoV and r_h; the matched run, whether the
model was trained on that run (``run_in_training``: its other snapshots or distances, never this
exact mock unless the age and distance fall on its training grid), and the mock's L_FoV, r_h and
[Fe/H]; the mock's truth (field M/L_V = field mass / field luminosity); π-DOC's
field M/L_V with the catalogue distance given (the default network for that case, as
:func:`~pidoc_core.observations.predict_flux_map` runs it on a real image) and, when the model
has one, the flux-only network's (the paper's network); π-DOC's age and distance; their 68 %
intervals when the model carries them; the range verdict; and the paper's Table 3 predictions for
the real cluster (``paper_*``).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping

import numpy as np

__all__ = ["MATCH_SCALES", "PSF_FWHM_ARCSEC", "catalogue_age_gyr", "match_mocks", "mock_table3",
           "training_runs", "matches_from_table",
           "write_mock_table3", "add_mock_table3_arguments", "run_mock_table3"]

#: Scales of the match distance: log10 L_FoV (dex), log10 r_h (dex), [Fe/H] (dex).
MATCH_SCALES = {"log_l_fov": 0.1, "log_r_h": 0.2, "fe_h": 0.6}
#: Seeing of the mocks, arcsec (Pan-STARRS1 stacks: ~1-1.3").
PSF_FWHM_ARCSEC = 1.0
#: Age assumed where Table 3 prints none (the paper's footnote 5), Gyr.
_DEFAULT_AGE_GYR = 12.0
#: Columns of a table that record its matched mocks (:func:`match_mocks`' keys).
_MATCH_KEYS = ("name", "run", "age_gyr", "distance_kpc", "match_distance", "mock_l_fov",
               "mock_r_h_arcmin", "mock_fe_h")


def catalogue_age_gyr(row) -> float:
    """The age of a catalogue row, Gyr: Table 3's, or 12 Gyr where it prints '-' (footnote 5)."""
    age = row["age"]
    return _DEFAULT_AGE_GYR if np.ma.is_masked(age) or not math.isfinite(float(age)) else float(age)


def _arcmin_per_pc(distance_kpc: float) -> float:
    return 180.0 * 60.0 / (math.pi * distance_kpc * 1e3)


def _run_feh(sources: Mapping, feh: Mapping | None) -> dict:
    if feh is None:
        from ..evolution.grid import WIDE_GRID

        feh = {row["name"]: row["feh"] for row in WIDE_GRID}
    missing = [name for name in sources if name not in feh]
    if missing:
        raise ValueError(f"feh: no [Fe/H] for run(s) {missing}")
    return {name: float(feh[name]) for name in sources}


def match_mocks(sources: Mapping, *, catalogue=None, feh: Mapping | None = None,
                psf_fwhm_arcsec: float = PSF_FWHM_ARCSEC, scales: Mapping = MATCH_SCALES,
                progress: bool = False) -> list[dict]:
    """For each catalogue cluster, the run whose mock is most like it (see the module notes).

    Parameters
    ----------
    sources : mapping
        Run name -> source with ``snapshot(time_gyr)`` (e.g.
        :func:`pidoc_core.evolution.grid.wide_sources`).
    catalogue : astropy.table.Table, keyword-only
        Rows with ``name``, ``distance`` (kpc), ``age`` (Gyr, masked where unknown), ``fe_h``,
        ``l_fov`` (Lsun) and ``r_h`` (arcmin); default the shipped Table 3.
    feh : mapping, keyword-only
        Run name -> [Fe/H] (default: the wide grid's).
    psf_fwhm_arcsec : float, keyword-only
        Seeing of the mocks, arcsec.
    scales : mapping, keyword-only
        ``log_l_fov``, ``log_r_h`` and ``fe_h`` scales of the match distance, dex.
    progress : bool, keyword-only
        Show a progress bar over the runs.

    Returns
    -------
    list of dict
        One per cluster in catalogue order: ``name``, ``run``, ``age_gyr``, ``distance_kpc``,
        ``match_distance`` (D), the mock's ``mock_l_fov`` (Lsun), ``mock_r_h_arcmin`` and
        ``mock_fe_h``.
    """
    from tqdm.auto import tqdm

    from ..evolution.grid import projected_radii
    from ..imager import ObservationSetup, observe
    from .catalogue import load_catalogue

    cat = load_catalogue() if catalogue is None else catalogue
    run_feh = _run_feh(sources, feh)
    ages = [catalogue_age_gyr(row) for row in cat]
    best = [None] * len(cat)
    for name, src in tqdm(sources.items(), desc="mock Table 3: runs", disable=not progress):
        for age in sorted(set(ages)):
            snap = src.snapshot(age)
            r_h_pc = projected_radii(snap)["r_h_pc"]
            for i, row in enumerate(cat):
                if ages[i] != age:
                    continue
                d = float(row["distance"])
                obs = observe(snap, ObservationSetup(distance_kpc=d,
                                                     psf_fwhm_arcsec=psf_fwhm_arcsec))
                lum = float(obs.attrs["field_luminosity_v_lsun"])
                r_h = r_h_pc * _arcmin_per_pc(d)
                score = math.sqrt(
                    (math.log10(max(lum, 1e-30) / float(row["l_fov"])) / scales["log_l_fov"]) ** 2
                    + (math.log10(r_h / float(row["r_h"])) / scales["log_r_h"]) ** 2
                    + ((run_feh[name] - float(row["fe_h"])) / scales["fe_h"]) ** 2)
                if best[i] is None or score < best[i]["match_distance"]:
                    best[i] = {"name": str(row["name"]), "run": str(name), "age_gyr": age,
                               "distance_kpc": d, "match_distance": score, "mock_l_fov": lum,
                               "mock_r_h_arcmin": r_h, "mock_fe_h": run_feh[name]}
    return best


def training_runs(model) -> set:
    """Names of the runs any of the model's networks was trained on, from its manifest's
    training records, extra training stores included (empty when the model is not saved or
    records none)."""
    from pathlib import Path

    from ..model.io import read_manifest
    from ..model.spec import training_infos

    loaded = model.provenance.get("loaded_from")
    if loaded is None:
        return set()
    runs = set()
    for record in read_manifest(Path(loaded)).get("training", {}).values():
        data = record.get("data", {}) if isinstance(record, dict) else {}
        for info in training_infos(data):
            runs.update(info.get("runs", {}))
    return runs


def _bounds(ds, key):
    return tuple(float(ds[f"{key}_{b}"]) if f"{key}_{b}" in ds else math.nan for b in ("lo", "hi"))


def mock_table3(model, *, sources: Mapping | None = None, matches: list | None = None,
                catalogue=None, psf_fwhm_arcsec: float = PSF_FWHM_ARCSEC,
                progress: bool = False):
    """π-DOC on the mocks of the Table 3 clusters, beside their truth and the paper's predictions.

    Parameters
    ----------
    model : pidoc_core.model.PiDOC
        The model to run.
    sources : mapping, keyword-only
        Run name -> source (default :func:`pidoc_core.evolution.grid.wide_sources`).
    matches : list of dict, keyword-only
        :func:`match_mocks`'s result (computed when None).
    catalogue : astropy.table.Table, keyword-only
        Default the shipped Table 3.
    psf_fwhm_arcsec : float, keyword-only
        Seeing of the mocks, arcsec.
    progress : bool, keyword-only
        Show progress bars.

    Returns
    -------
    astropy.table.Table
        One row per cluster (columns with units; see the module notes). Meta: the model, the
        seeing and :data:`MATCH_SCALES`.
    """
    from astropy import units as u
    from astropy.table import Table

    from ..evolution.grid import projected_radii
    from ..imager import ObservationSetup, observe
    from ._common import RangeWarning
    from .catalogue import load_catalogue
    from .predict import predict_flux_map

    cat = load_catalogue() if catalogue is None else catalogue
    if sources is None:
        from ..evolution.grid import wide_sources

        sources = wide_sources(progress=progress)
    if matches is None:
        matches = match_mocks(sources, catalogue=cat, psf_fwhm_arcsec=psf_fwhm_arcsec,
                              progress=progress)
    by_name = {str(row["name"]): row for row in cat}
    seen = training_runs(model)
    unknown = sorted({m["run"] for m in matches} - set(sources))
    if unknown:
        raise ValueError(f"matches name run(s) {unknown} that are not among the sources")
    rows = []
    for m in matches:
        lit = by_name[m["name"]]
        snap = sources[m["run"]].snapshot(m["age_gyr"])
        obs = observe(snap, ObservationSetup(distance_kpc=m["distance_kpc"],
                                             psf_fwhm_arcsec=psf_fwhm_arcsec))
        with warnings.catch_warnings():  # out-of-range mocks are the point: the verdict column
            warnings.simplefilter("ignore", RangeWarning)
            pred = predict_flux_map(obs[["flux"]], model, distance_kpc=m["distance_kpc"],
                                    age_gyr=m["age_gyr"])
        lum = float(pred["luminosity_v"])
        mass_lo, mass_hi = _bounds(pred, "field_mass")
        age_lo, age_hi = _bounds(pred, "age")
        d_lo, d_hi = _bounds(pred, "distance")
        ml_flux_only = math.nan
        if model.has_flux_only_mass:
            fo = model.predict(obs["flux"].values, mass_network="flux-only")
            ml_flux_only = float(fo["field_mass"].values[0]) / lum
        lum_mock = float(obs.attrs["field_luminosity_v_lsun"])
        truth = float(obs.attrs["field_mass_msun"]) / lum_mock
        # the mock's own light and radius, not the matching's: matches reused from an earlier
        # table (--matches-from) may come from snapshots of other code or SSE tables
        r_h = projected_radii(snap)["r_h_pc"] * _arcmin_per_pc(m["distance_kpc"])
        rows.append({
            **m, "mock_l_fov": lum_mock, "mock_r_h_arcmin": r_h,
            "run_in_training": m["run"] in seen, "l_fov": float(lit["l_fov"]),
            "r_h_arcmin": float(lit["r_h"]), "fe_h": float(lit["fe_h"]), "true_ml": truth,
            "pidoc_ml": float(pred["mass_to_light"]), "pidoc_ml_lo": mass_lo / lum,
            "pidoc_ml_hi": mass_hi / lum, "mass_network": pred.attrs["mass_network"],
            "pidoc_ml_flux_only": ml_flux_only,
            "pidoc_age": float(pred["age"]), "pidoc_age_lo": age_lo, "pidoc_age_hi": age_hi,
            "pidoc_distance": float(pred["distance"]), "pidoc_distance_lo": d_lo,
            "pidoc_distance_hi": d_hi, "range_verdict": pred.attrs["range_verdict"],
            "paper_ml": float(lit["pidoc_ml_v"]), "paper_age": float(lit["pidoc_age"]),
            "paper_distance": float(lit["pidoc_distance"]),
        })
    units = {"age_gyr": u.Gyr, "distance_kpc": u.kpc, "mock_l_fov": u.solLum, "l_fov": u.solLum,
             "mock_r_h_arcmin": u.arcmin, "r_h_arcmin": u.arcmin, "pidoc_age": u.Gyr,
             "pidoc_age_lo": u.Gyr, "pidoc_age_hi": u.Gyr, "pidoc_distance": u.kpc,
             "pidoc_distance_lo": u.kpc, "pidoc_distance_hi": u.kpc, "paper_age": u.Gyr,
             "paper_distance": u.kpc,
             **{k: u.solMass / u.solLum for k in ("true_ml", "pidoc_ml", "pidoc_ml_lo",
                                                  "pidoc_ml_hi", "pidoc_ml_flux_only",
                                                  "paper_ml")}}
    table = Table(rows=rows, names=list(rows[0]) if rows else None)
    for name, unit in units.items():
        if name in table.colnames:
            table[name].unit = unit
    table.meta.update(model=model.name,
                      psf_fwhm_arcsec=float(psf_fwhm_arcsec), match_scales=dict(MATCH_SCALES),
                      truth="true_ml: field mass / field luminosity of the mock (Msun/Lsun); "
                            "the mock's age and distance are the catalogue's")
    return table


def write_mock_table3(table, path) -> None:
    """Write :func:`mock_table3`'s table as ECSV (units and meta kept), atomically."""
    from .._atomic import atomic_path

    with atomic_path(path, suffix=".ecsv") as tmp:
        table.write(tmp, format="ascii.ecsv", overwrite=True)


def add_mock_table3_arguments(parser):
    """Arguments of ``pidoc mock-table3 [--weights DIR] [--psf ARCSEC] --out TABLE.ecsv``."""
    parser.add_argument("--weights", default=None,
                        help="saved model directory or a shipped model's name (paper, wide; "
                             "default: as pidoc predict)")
    parser.add_argument("--psf", type=float, default=PSF_FWHM_ARCSEC,
                        help=f"seeing of the mocks, arcsec (default {PSF_FWHM_ARCSEC:g})")
    parser.add_argument("--matches-from", default=None, metavar="TABLE",
                        help="reuse the matched mocks of an earlier table (ECSV) instead of "
                             "matching again (the matching does not depend on the model)")
    parser.add_argument("--out", required=True, help="output table (ECSV)")
    return parser


def matches_from_table(table) -> list[dict]:
    """The matched mocks recorded in an earlier :func:`mock_table3` table (plain numbers)."""
    missing = [k for k in _MATCH_KEYS if k not in table.colnames]
    if missing:
        raise ValueError(f"the table has no column(s) {missing}: not a mock Table 3")
    return [{k: (str(row[k]) if k in ("name", "run") else float(row[k])) for k in _MATCH_KEYS}
            for row in table]


def run_mock_table3(args) -> int:
    """Run ``pidoc mock-table3``: match the wide grid's runs to the 17 clusters (their set-ups
    are cached after the first run, ~1 min each), predict, print and write the table."""
    from ..model import ModelError, observation_model

    try:
        model = observation_model(args.weights)
    except ModelError as exc:
        raise SystemExit(f"pidoc mock-table3: {exc}") from None
    matches = None
    if args.matches_from:
        from astropy.table import Table

        try:
            matches = matches_from_table(Table.read(args.matches_from, format="ascii.ecsv"))
        except (OSError, ValueError) as exc:
            raise SystemExit(f"pidoc mock-table3: --matches-from {args.matches_from}: "
                             f"{exc}") from None
    try:
        table = mock_table3(model, psf_fwhm_arcsec=args.psf, progress=True, matches=matches)
    except ValueError as exc:
        raise SystemExit(f"pidoc mock-table3: {exc}") from None
    write_mock_table3(table, args.out)
    for r in table:
        print(f"{r['name']:<9} {r['run']:<34} L_FoV {r['l_fov']:>7.0f} mock {r['mock_l_fov']:>7.0f}"
              f"  M/L true {r['true_ml']:.2f} pi-DOC {r['pidoc_ml']:.2f}"
              f" (paper {r['paper_ml']:.2f})"
              f"  age {r['age_gyr']:.2f} pi-DOC {r['pidoc_age']:.1f}"
              f"  d {r['distance_kpc']:.1f} pi-DOC {r['pidoc_distance']:.1f}"
              f"  [{r['range_verdict']}]")
    print(f"wrote {args.out}")
    return 0
