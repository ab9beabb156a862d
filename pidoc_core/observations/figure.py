"""A figure like the paper's Fig. 12 of a prediction on an observed field (PNG or HTML page).

Drawn with matplotlib (a declared dependency), imported only when a figure is written."""

from __future__ import annotations

import base64
import html
import io
import math
from pathlib import Path

import numpy as np
import xarray as xr

from ._common import FOV_ARCSEC, ObservationInputError
from .predict import _atomic_write

__all__ = ["write_figure"]

def _fmt(v, spec=".3g"):
    return "n/a" if v is None or not np.isfinite(v) else format(float(v), spec)


def _figure_png(ds: xr.Dataset) -> bytes:
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    has_mass = "mass" in ds
    fig = Figure(figsize=(5.2 * (2 if has_mass else 1), 5.0), dpi=110)
    axes = fig.subplots(1, 2 if has_mass else 1, squeeze=False)[0]
    half = FOV_ARCSEC / 2.0
    extent = (-half, half, -half, half)  # x (west) grows to the right: east left
    name = ds.attrs.get("cluster") or "observed field"
    lit = []
    if "literature_age_gyr" in ds.attrs:
        lit.append(f"age {_fmt(ds.attrs['literature_age_gyr'], '.2f')} Gyr")
    if "literature_distance_kpc" in ds.attrs:
        lit.append(f"d {_fmt(ds.attrs['literature_distance_kpc'], '.1f')} kpc")
    im = axes[0].imshow(ds["flux"].values, origin="lower", extent=extent, cmap="magma")
    fig.colorbar(im, ax=axes[0], label="log10 F / (Lsun kpc$^{-2}$)", shrink=0.8)
    axes[0].set_title(f"{name}: V-band flux" + (f"\n(literature: {', '.join(lit)})" if lit else ""),
                      fontsize=9)
    axes[0].set_xlabel('x (arcsec, west)')
    axes[0].set_ylabel('y (arcsec, north)')
    text = ""
    if "mass_to_light" in ds:
        mass = float(ds["field_mass"])
        log_mass = math.log10(mass) if mass > 0 else math.nan
        text = (f"M/L = {_fmt(float(ds['mass_to_light']))} Msun/Lsun\n"
                f"log M = {_fmt(log_mass, '.2f')}\n"
                f"age = {_fmt(float(ds['age']), '.1f')} Gyr, "
                f"d = {_fmt(float(ds['distance']), '.1f')} kpc")
    if has_mass:
        im2 = axes[1].imshow(ds["mass"].values, origin="lower", extent=extent, cmap="viridis")
        fig.colorbar(im2, ax=axes[1], label="log10 M / Msun", shrink=0.8)
        axes[1].set_title("pi-DOC mass map", fontsize=9)
        axes[1].set_xlabel('x (arcsec, west)')
        axes[1].text(0.03, 0.97, text, transform=axes[1].transAxes, va="top", fontsize=8,
                     color="white")
    elif text:
        axes[0].text(0.03, 0.03, text, transform=axes[0].transAxes, va="bottom", fontsize=8,
                     color="white")
    verdict = ds.attrs.get("range_verdict")
    if verdict:
        colour = "tab:green" if verdict == "inside" else "tab:red"
        fig.suptitle(f"training range: {verdict}", color=colour, fontsize=10)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight")
    return buf.getvalue()


def write_figure(ds: xr.Dataset, path) -> Path:
    """A figure like the paper's Fig. 12 (input flux; π-DOC mass map with mass, M/L, age and
    distance): a PNG for ``*.png``, an HTML page (embedded PNG, table of values, range verdict)
    for ``*.html``; written atomically."""
    path = Path(path)
    png = _figure_png(ds)
    suffix = path.suffix.lower()
    if suffix == ".png":
        return _atomic_write(path, lambda tmp: Path(tmp).write_bytes(png))
    if suffix not in (".html", ".htm"):
        raise ObservationInputError(f"{path}: figure must be .png or .html")
    rows = []
    for key in ("field_mass", "luminosity_v", "mass_to_light", "age", "distance"):
        if key in ds:
            rows.append((ds[key].attrs.get("long_name", key), _fmt(float(ds[key]), ".4g"),
                         ds[key].attrs.get("units", "")))
    for key in ("distance_used_kpc", "distance_source", "literature_ml_v", "literature_ml_v_err",
                "literature_age_gyr", "literature_distance_kpc", "zero_point_mag",
                "zero_point_source", "range_reference"):
        if key in ds.attrs:
            rows.append((key, str(ds.attrs[key]), ""))
    table = "\n".join(f"<tr><td>{html.escape(str(a))}</td><td>{html.escape(str(b))}</td>"
                      f"<td>{html.escape(str(c))}</td></tr>" for a, b, c in rows)
    verdict = ds.attrs.get("range_verdict", "")
    reasons = [r for r in str(ds.attrs.get("range_reasons", "")).split(" | ") if r]
    notes = [r for r in str(ds.attrs.get("range_notes", "")).split(" | ") if r]
    items = "".join(f"<li>{html.escape(r)}</li>" for r in reasons + notes)
    title = html.escape(f"pi-DOC prediction: {ds.attrs.get('cluster') or 'observed field'}")
    page = (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{title}</title>"
            "<style>body{font-family:sans-serif;margin:1.5em}td{padding:2px 10px}"
            ".inside{color:green}.outside{color:#b00}</style></head><body>"
            f"<h1>{title}</h1><p class='{html.escape(verdict)}'>Training range: "
            f"<b>{html.escape(verdict)}</b></p><ul>{items}</ul>"
            f"<img alt='flux and mass maps' src='data:image/png;base64,"
            f"{base64.b64encode(png).decode()}'/><table>{table}</table></body></html>")
    return _atomic_write(path, lambda tmp: Path(tmp).write_text(page, encoding="utf-8"))
