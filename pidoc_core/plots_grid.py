"""The training grid against the paper's Table 3 (issue 18): which clusters its mocks reach, and
the paper's Fig. 10 drawn with the grid.

:func:`table3_clusters` reads the 17 clusters (field luminosity in Lsun, distance in kpc, radii in
arcmin and pc); :func:`grid_reach` says, per cluster, whether mocks of the grid (rows of
:func:`pidoc_core.evolution.grid.field_records`) older than 11 Gyr span its field luminosity,
half-light and core radius at its distance; :func:`homologous_estimate` scales measured mocks to
runs not drawn (mass and radius from cbhbd); :func:`figure_grid_vs_table3` draws field
luminosity against distance and half-light radius against field luminosity (matplotlib Figure).
"""

from __future__ import annotations

import math
from collections import defaultdict

import numpy as np

from .paper import LUMINOSITY_RANGE

__all__ = ["PC_PER_ARCMIN_PER_KPC", "table3_clusters", "grid_reach", "homologous_estimate",
           "figure_grid_vs_table3"]

#: Parsecs per arcmin at 1 kpc.
PC_PER_ARCMIN_PER_KPC = 1e3 * math.pi / (180.0 * 60.0)
_ASSUMED_AGE_GYR = 12.0  # the paper's footnote 5 where Table 3 has no age


def table3_clusters() -> list[dict]:
    """The 17 clusters of Table 3 (Chardin & Bianchini 2021; Harris 2010; VandenBerg et al. 2013).

    Returns
    -------
    list of dict
        ``name``, ``l_fov_lsun`` (Lsun in the 40" field), ``distance_kpc``, ``r_h_arcmin``,
        ``r_c_arcmin``, ``r_h_pc``, ``r_c_pc``, ``age_gyr`` (12 where Table 3 has none, as the
        paper assumes), ``age_known`` and ``feh`` (dex), in Table 3's order.
    """
    from .observations import load_catalogue

    out = []
    for row in load_catalogue():
        d = float(row["distance"])
        age = row["age"]
        known = not np.ma.is_masked(age)
        out.append(dict(name=str(row["name"]), l_fov_lsun=float(row["l_fov"]), distance_kpc=d,
                        r_h_arcmin=float(row["r_h"]), r_c_arcmin=float(row["r_c"]),
                        r_h_pc=float(row["r_h"]) * d * PC_PER_ARCMIN_PER_KPC,
                        r_c_pc=float(row["r_c"]) * d * PC_PER_ARCMIN_PER_KPC,
                        age_gyr=float(age) if known else _ASSUMED_AGE_GYR, age_known=known,
                        feh=float(row["fe_h"])))
    return out


def _at_distance(rows, key, d):
    """Per (run, time): ``key`` interpolated at distance ``d`` (linear in log-log), or NaN
    outside the distances of the rows."""
    groups = defaultdict(list)
    for r in rows:
        groups[r["run"], r["time_gyr"]].append((r["distance_kpc"], r[key]))
    values = []
    for pts in groups.values():
        pts.sort()
        ds = np.array([p[0] for p in pts])
        vs = np.array([p[1] for p in pts], dtype=float)
        ok = np.isfinite(vs) & (vs > 0)
        if ok.sum() >= 1 and ds[ok][0] <= d <= ds[ok][-1]:
            values.append(float(np.exp(np.interp(np.log(d), np.log(ds[ok]), np.log(vs[ok])))))
    return np.array(values)


def grid_reach(records, clusters=None, *, min_age_gyr=11.0) -> list[dict]:
    """Does the grid's mock set span each Table 3 cluster? (The paper's Fig. 10 test.)

    For each cluster, the mocks older than ``min_age_gyr`` are interpolated to its distance
    (log-log in distance, per run and time); the cluster is reached in a quantity when its value
    lies within the mocks' min-max.

    Parameters
    ----------
    records : sequence of dict
        Rows of :func:`pidoc_core.evolution.grid.field_records` (or of
        :func:`homologous_estimate`).
    clusters : sequence of dict, optional
        Default :func:`table3_clusters`.
    min_age_gyr : float, keyword-only
        Youngest mock used, Gyr.

    Returns
    -------
    list of dict
        Per cluster: ``name``, ``distance_kpc``, and for ``l`` (field luminosity, Lsun), ``r_h``
        and ``r_c`` (arcmin) the cluster's value, the mocks' ``*_lo``/``*_hi`` and ``*_inside``;
        ``reached`` when all three are inside; ``n_mocks`` used.
    """
    clusters = table3_clusters() if clusters is None else clusters
    old = [r for r in records if r["time_gyr"] >= min_age_gyr]
    out = []
    for c in clusters:
        d = c["distance_kpc"]
        row = dict(name=c["name"], distance_kpc=d)
        for short, key, value in (("l", "field_luminosity_v_lsun", c["l_fov_lsun"]),
                                  ("r_h", "r_h_arcmin", c["r_h_arcmin"]),
                                  ("r_c", "r_c_arcmin", c["r_c_arcmin"])):
            v = _at_distance(old, key, d)
            lo, hi = (float(v.min()), float(v.max())) if v.size else (math.nan, math.nan)
            row.update({short: value, f"{short}_lo": lo, f"{short}_hi": hi,
                        f"{short}_inside": bool(v.size and lo <= value <= hi)})
            row["n_mocks"] = int(v.size) if short == "l" else row["n_mocks"]
        row["reached"] = row["l_inside"] and row["r_h_inside"] and row["r_c_inside"]
        out.append(row)
    return out


def homologous_estimate(reference_records, histories) -> list[dict]:
    """Field luminosity of runs not drawn, scaled from measured mocks of a reference run.

    Homology: a run of mass M and half-mass radius rh (cbhbd) seen at distance d has the field
    light of the reference (mass M_ref, rh_ref, same time) at d * rh_ref / rh (the same field in
    units of rh), times M / M_ref. Structure (concentration, segregation) and M/L (metallicity,
    mass function) are taken to be the reference's: an estimate, to be replaced by drawing the
    run. Half-light radii scale with rh; core radii are not estimated.

    Parameters
    ----------
    reference_records : sequence of dict
        :func:`pidoc_core.evolution.grid.field_records` rows of one reference run.
    histories : sequence of dict
        Rows of :func:`pidoc_core.evolution.grid.grid_histories` whose ``times_gyr`` are among
        the reference's times.

    Returns
    -------
    list of dict
        Rows like ``field_records``' (``estimated=True``), at the reference's distances where
        d * rh_ref / rh lies within them.
    """
    ref = defaultdict(list)
    for r in reference_records:
        ref[r["time_gyr"]].append(r)
    out = []
    for h in histories:
        for t, m, rh in zip(h["times_gyr"], h["mass_msun"], h["rh_pc"]):
            rows = sorted(ref.get(float(t), []), key=lambda r: r["distance_kpc"])
            if not rows:
                continue
            ds = np.array([r["distance_kpc"] for r in rows])
            lum = np.array([r["field_luminosity_v_lsun"] for r in rows])
            m_ref, rh_ref, rhp_ref = rows[0]["mass_msun"], rows[0]["rh_model_pc"], rows[0]["r_h_pc"]
            for d in ds:
                d_eq = d * rh_ref / rh
                if not ds[0] <= d_eq <= ds[-1]:
                    continue
                lv = float(np.exp(np.interp(np.log(d_eq), np.log(ds), np.log(lum)))) * m / m_ref
                r_h = rhp_ref * rh / rh_ref
                out.append(dict(run=h["name"], time_gyr=float(t), distance_kpc=float(d),
                                mass_msun=float(m), rh_model_pc=float(rh),
                                field_luminosity_v_lsun=lv, field_mass_msun=math.nan,
                                r_h_pc=r_h, r_h_arcmin=r_h / (d * PC_PER_ARCMIN_PER_KPC),
                                r_c_pc=math.nan, r_c_arcmin=math.nan, estimated=True))
    return out


def figure_grid_vs_table3(records, clusters=None, *, estimates=(), min_age_gyr=11.0):
    """The paper's Fig. 10 with the grid: field luminosity vs distance, half-light radius vs
    field luminosity; mocks older than ``min_age_gyr``, Table 3 clusters named.

    Parameters
    ----------
    records : sequence of dict
        Measured mocks (:func:`pidoc_core.evolution.grid.field_records`).
    clusters : sequence of dict, optional
        Default :func:`table3_clusters`.
    estimates : sequence of dict, keyword-only
        :func:`homologous_estimate` rows, drawn as open markers.
    min_age_gyr : float, keyword-only
        Youngest mock drawn, Gyr.

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    clusters = table3_clusters() if clusters is None else clusters
    fig = Figure(figsize=(14, 5), layout="constrained")
    ax1, ax2 = fig.subplots(1, 2)
    lo, hi = LUMINOSITY_RANGE["luminosity_v_lsun"]
    d_lo, d_hi = LUMINOSITY_RANGE["distance_kpc"]
    ax1.fill_between([d_lo, d_hi], lo, hi, color="0.85", zorder=0,
                     label="paper's training range (>11 Gyr)")
    runs = sorted({r["run"] for r in records} | {r["run"] for r in estimates})
    cmap = matplotlib.colormaps["viridis"]
    colours = {run: cmap(i / max(len(runs) - 1, 1)) for i, run in enumerate(runs)}
    for rows, filled in ((records, True), (estimates, False)):
        old = [r for r in rows if r["time_gyr"] >= min_age_gyr]
        for run in sorted({r["run"] for r in old}):
            mine = [r for r in old if r["run"] == run]
            style = dict(s=12, alpha=0.8, label=run + ("" if filled else " (estimate)"))
            if filled:
                style.update(color=colours[run])
            else:
                style.update(facecolors="none", edgecolors=colours[run])
            ax1.scatter([r["distance_kpc"] for r in mine],
                        [r["field_luminosity_v_lsun"] for r in mine], **style)
            ax2.scatter([r["field_luminosity_v_lsun"] for r in mine],
                        [r["r_h_pc"] for r in mine], **{k: v for k, v in style.items()
                                                         if k != "label"})
    for c in clusters:
        ax1.scatter(c["distance_kpc"], c["l_fov_lsun"], marker="*", s=90, color="crimson",
                    edgecolors="k", zorder=5)
        ax1.annotate(c["name"], (c["distance_kpc"], c["l_fov_lsun"]), fontsize=6,
                     xytext=(3, 3), textcoords="offset points")
        ax2.scatter(c["l_fov_lsun"], c["r_h_pc"], marker="*", s=90, color="crimson",
                    edgecolors="k", zorder=5)
        ax2.annotate(c["name"], (c["l_fov_lsun"], c["r_h_pc"]), fontsize=6, xytext=(3, 3),
                     textcoords="offset points")
    ax1.set(xlabel="distance (kpc)", ylabel='V-band luminosity in the 40" field (Lsun)',
            yscale="log", title=f"Grid mocks older than {min_age_gyr:g} Gyr vs Table 3")
    ax2.set(xlabel='V-band luminosity in the 40" field (Lsun)',
            ylabel="projected half-light radius (pc)", xscale="log", yscale="log",
            title="Half-light radius (Table 3: Harris 2010)")
    handles, labels = ax1.get_legend_handles_labels()
    fig.legend(handles, labels, fontsize=6, loc="outside right upper")
    return fig
