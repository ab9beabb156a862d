"""The Observations tab: upload a FITS image of a globular cluster, get π-DOC's mass map.

Each session owns one :class:`ObservationView` (its widgets and Bokeh data sources); the model is
shared read-only. The upload is read from memory (``io.BytesIO``; never written to disk, never
unpickled), checked for size before it is parsed, and handed to
:func:`pidoc_core.observations.predict_image`: all the science (WCS cut-out, zero point, PS1 asinh
linearisation, V-band flux, prediction, training-range verdict) lives there. Every failure is
shown as an Alert, never as a traceback.
"""

from __future__ import annotations

import html
import io
import logging
import math
import warnings
import zlib

import numpy as np
import panel as pn
from astropy.io import fits
from bokeh.models import ColorBar, ColumnDataSource, LinearColorMapper, Range1d
from bokeh.plotting import figure

from pidoc_core.observations import (FOV_ARCSEC, N_PIXELS, ObservationInputError, RangeWarning,
                                     load_catalogue, predict_image)

__all__ = ["ObservationView"]

_LOG = logging.getLogger(__name__)
_HALF = FOV_ARCSEC / 2.0
_TOOLS = "pan,wheel_zoom,box_zoom,reset,hover,save"
_MB = 1024 * 1024
_CATALOGUE_MODE, _RADEC_MODE = "Catalogue cluster", "RA / Dec"


def _map_figure(title, mapper, label, *, width=330, height=290):
    """A square map of the 40" field: x grows to the west (east left), y to the north."""
    source = ColumnDataSource({"image": [np.full((N_PIXELS, N_PIXELS), np.nan, dtype=np.float32)]})
    fig = figure(title=title, x_range=Range1d(-_HALF, _HALF), y_range=Range1d(-_HALF, _HALF),
                 width=width, height=height, tools=_TOOLS, tooltips=[(label, "@image{0.00}")],
                 x_axis_label="x (arcsec, west)", y_axis_label="y (arcsec, north)",
                 toolbar_location="above")
    fig.image(image="image", x=-_HALF, y=-_HALF, dw=2 * _HALF, dh=2 * _HALF, color_mapper=mapper,
              source=source)
    fig.add_layout(ColorBar(color_mapper=mapper, title=label, width=10), "right")
    return fig, source


def _fmt(value, spec=".3g"):
    try:
        value = float(value)
    except (TypeError, ValueError):
        return "–"
    return format(value, spec) if math.isfinite(value) else "–"


class ObservationView:
    """Widgets, plots and the predict callback of one session's Observations tab.

    Parameters
    ----------
    model : pidoc_core.model.PiDOC
        The networks (shared, read-only).
    max_upload_mb : float
        Largest accepted upload, MB (2**20 bytes); larger files are refused before parsing.
    max_megapixels : float
        Largest image (pixels of one HDU, or of a gzip-decompressed file at 8 bytes per pixel),
        in millions; protects the server from decompression bombs.
    """

    def __init__(self, model, *, max_upload_mb: float = 50, max_megapixels: float = 50):
        self.model = model
        self.max_upload_mb = float(max_upload_mb)
        self.max_megapixels = float(max_megapixels)
        table = load_catalogue()
        self._catalogue = {str(row["name"]): row for row in table}
        options = {(f"{row['name']} ({row['alt_name']})" if row["alt_name"] else str(row["name"])):
                   str(row["name"]) for row in table}

        self.upload = pn.widgets.FileInput(accept=".fits,.fit,.fz,.fits.gz", multiple=False)
        self.mode = pn.widgets.RadioButtonGroup(options=[_CATALOGUE_MODE, _RADEC_MODE],
                                                value=_CATALOGUE_MODE, color="light")
        self.cluster = pn.widgets.Select(label="Cluster (paper Table 3, Harris 2010 centre)",
                                         options=options, value=str(table[0]["name"]))
        self.ra = pn.widgets.TextInput(label="RA (deg, or h:m:s)", placeholder="199.1129 or 13:16:27.09",
                                       visible=False)
        self.dec = pn.widgets.TextInput(label="Dec (deg, or d:m:s)", placeholder="17.7003 or +17:42:00.9",
                                        visible=False)
        self.distance = pn.widgets.FloatInput(
            label="Distance (kpc; empty: catalogue's, else π-DOC's)", value=None, start=0.0,
            step=0.1)
        self.extinction = pn.widgets.FloatInput(label="Extinction A_V (mag)", value=0.0, start=0.0,
                                                end=10.0, step=0.01)
        self.zero_point = pn.widgets.FloatInput(
            label="Zero point (mag for 1 count; empty: from the header)", value=None, step=0.01)
        self.av_hint = pn.pane.Markdown("", margin=(0, 10))
        self.predict_button = pn.widgets.Button(label="Predict", color="primary")

        self.status = pn.pane.Alert(
            f"Upload a calibrated V-band FITS image (counts, celestial WCS, zero point in the "
            f"header or given; PS1 stacks are linearised) of at most {self.max_upload_mb:g} MB, "
            "choose the centre and press Predict.", alert_type="info")
        self.verdict = pn.pane.Alert("", alert_type="light", visible=False)
        self.numbers = pn.pane.HTML("", width=520)

        self.flux_mapper = LinearColorMapper(palette="Inferno256", low=-7.5, high=-2.5)
        self.mass_mapper = LinearColorMapper(palette="Viridis256", low=-2.5, high=1.5)
        self.flux_fig, self.flux_src = _map_figure("Input: V-band flux map", self.flux_mapper,
                                                   "log F (Lsun/kpc²)")
        self.mass_fig, self.mass_src = _map_figure("π-DOC mass map", self.mass_mapper,
                                                   "log M (Msun)")
        self.mass_fig.x_range = self.flux_fig.x_range
        self.mass_fig.y_range = self.flux_fig.y_range

        self.mode.param.watch(self._on_mode, "value")
        self.cluster.param.watch(self._on_cluster, "value")
        self.upload.param.watch(self._on_upload, "value")
        self.predict_button.on_click(self.predict)
        self.result = None
        self._on_cluster()

    # ----------------------------------------------------------------------------- callbacks
    def _on_mode(self, *_events):
        radec = self.mode.value == _RADEC_MODE
        self.ra.visible = self.dec.visible = radec
        self.cluster.visible = self.av_hint.visible = not radec

    def _on_cluster(self, *_events):
        row = self._catalogue[self.cluster.value]
        ebv = float(row["ebv"])
        self.av_hint.object = (f"{html.escape(str(row['name']))}: d = {float(row['distance']):g} kpc, "
                               f"E(B−V) = {ebv:g} mag → A_V ≈ 3.1 E(B−V) = {3.1 * ebv:.2f} mag "
                               "(Harris 2010)")

    def _on_upload(self, *_events):
        """Check the size as soon as a file arrives (the bytes are not parsed here)."""
        message = self._size_error()
        if message:
            self._error(message)
        elif self.upload.value is not None:
            self.status.alert_type = "info"
            self.status.object = (f"{html.escape(self._filename())}: "
                                  f"{len(self.upload.value) / _MB:.2f} MB received; press Predict.")

    def predict(self, *_events) -> None:
        """Parse the upload, run :func:`predict_image` and update maps, numbers and verdict."""
        self.predict_button.loading = True
        try:
            self._predict()
        except ObservationInputError as exc:
            self._error(f"{self._filename()}: {exc}")
        except Exception as exc:  # noqa: BLE001 - the page shows a message, never a traceback
            _LOG.exception("Observations tab: prediction failed")
            self._error(f"Cannot process {self._filename()}: {type(exc).__name__}: {exc}")
        finally:
            self.predict_button.loading = False

    # ------------------------------------------------------------------------------- helpers
    def _filename(self) -> str:
        return str(self.upload.filename or "the upload")

    def _size_error(self) -> str | None:
        data = self.upload.value
        if data is not None and len(data) > self.max_upload_mb * _MB:
            return (f"{self._filename()} is {len(data) / _MB:.1f} MB, larger than the "
                    f"{self.max_upload_mb:g} MB upload limit; upload a cut-out around the cluster "
                    "(the 40\" field needs only ~75\" of image).")
        return None

    def _error(self, message: str) -> None:
        self.status.alert_type = "danger"
        self.status.object = html.escape(str(message))
        self.verdict.visible = False

    def _hdul(self) -> fits.HDUList:
        """The upload as an HDUList read from memory, after size checks."""
        data = self.upload.value
        if data is None or len(data) == 0:
            raise ObservationInputError("no file uploaded yet: choose a FITS image first")
        message = self._size_error()
        if message:
            raise ObservationInputError(message)
        limit = int(self.max_megapixels * 1e6 * 8) + 2 * 2880 * 10  # float64 data + headers
        raw = bytes(data)
        if raw[:2] == b"\x1f\x8b":  # gzip: decompress in memory, at most `limit` bytes
            try:
                inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
                raw = inflater.decompress(raw, limit + 1)
            except zlib.error as exc:
                raise ObservationInputError(f"not a readable gzip file: {exc}") from None
            if len(raw) > limit or inflater.unconsumed_tail:
                raise ObservationInputError(
                    f"the decompressed image exceeds {self.max_megapixels:g} million pixels; "
                    "upload a smaller cut-out")
        try:
            hdul = fits.open(io.BytesIO(raw), memmap=False)
            shapes = [tuple(getattr(h, "shape", ()) or ()) for h in hdul]  # headers only
        except Exception as exc:  # noqa: BLE001 - astropy raises OSError, ValueError, ...
            raise ObservationInputError(f"not a readable FITS file: {exc}") from None
        for shape in shapes:
            if len(shape) >= 2 and math.prod(shape) > self.max_megapixels * 1e6:
                hdul.close()
                raise ObservationInputError(
                    f"an HDU of shape {shape} has more than {self.max_megapixels:g} million "
                    "pixels; upload a smaller cut-out")
        return hdul

    def _centre(self) -> dict:
        if self.mode.value == _CATALOGUE_MODE:
            return {"cluster": self.cluster.value}
        ra, dec = self.ra.value.strip(), self.dec.value.strip()
        if not ra or not dec:
            raise ObservationInputError("enter both RA and Dec of the field centre")
        return {"centre": (ra, dec)}

    def _number(self, widget, label):
        value = widget.value
        if value is None:
            return None
        value = float(value)
        if not math.isfinite(value):
            raise ObservationInputError(f"{label} must be a finite number, got {value!r}")
        return value

    def _predict(self) -> None:
        centre = self._centre()
        distance = self._number(self.distance, "distance")
        if distance is not None and distance <= 0:
            raise ObservationInputError(f"distance must be > 0 kpc, got {distance:g}")
        extinction = self._number(self.extinction, "A_V") or 0.0
        zero_point = self._number(self.zero_point, "zero point")
        hdul = self._hdul()
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RangeWarning)  # the verdict is shown instead
                ds = predict_image(hdul, model=self.model, distance_kpc=distance,
                                   extinction_av=extinction, zero_point=zero_point, **centre)
        finally:
            hdul.close()
        self.result = ds
        self._show(ds)

    def _show(self, ds) -> None:
        flux = ds["flux"].values
        mass = ds["mass"].values if "mass" in ds else np.full_like(flux, np.nan)
        with pn.io.hold():
            self.flux_mapper.low, self.flux_mapper.high = self._limits(flux)
            self.flux_src.data = {"image": [flux]}
            if "mass" in ds:
                self.mass_mapper.low, self.mass_mapper.high = self._limits(mass)
            self.mass_src.data = {"image": [mass]}
            self.numbers.object = self._numbers_html(ds)
            name = ds.attrs.get("cluster") or (f"RA {ds.attrs['centre_ra_deg']:.5f}, "
                                               f"Dec {ds.attrs['centre_dec_deg']:+.5f}")
            self.status.alert_type = "success"
            self.status.object = html.escape(
                f"{self._filename()}: field around {name}; zero point "
                f"{ds.attrs['zero_point_mag']:.3f} mag ({ds.attrs['zero_point_source']}); "
                f"{ds.attrs['masked_pixels']} masked pixels interpolated.")
            reasons = [r for r in str(ds.attrs.get("range_reasons", "")).split(" | ") if r]
            notes = [n for n in str(ds.attrs.get("range_notes", "")).split(" | ") if n]
            items = "".join(f"<li>{html.escape(r)}</li>" for r in reasons)
            extra = "".join(f"<li><i>{html.escape(n)}</i></li>" for n in notes)
            if ds.attrs["range_verdict"] == "inside":
                self.verdict.alert_type = "success"
                head = "<b>Inside π-DOC's training range</b> (the paper's Fig. 10 test)."
            else:
                self.verdict.alert_type = "warning"
                head = ("<b>Outside π-DOC's training range</b>: these predictions are "
                        "extrapolations and may be badly wrong (paper Sect. 5).")
            self.verdict.object = head + (f"<ul>{items}{extra}</ul>" if items or extra else "")
            self.verdict.visible = True

    @staticmethod
    def _limits(values):
        finite = values[np.isfinite(values)]
        if finite.size == 0:
            return 0.0, 1.0
        lo, hi = (float(v) for v in np.percentile(finite, [1.0, 99.9]))
        return (lo, hi) if hi > lo else (lo - 0.5, lo + 0.5)

    def _numbers_html(self, ds) -> str:
        a = ds.attrs
        mass = float(ds["field_mass"])
        log_mass = math.log10(mass) if mass > 0 else math.nan
        ours = {"L_V": float(ds["luminosity_v"]), "mass": mass, "log_mass": log_mass,
                "ml": float(ds["mass_to_light"]), "age": float(ds["age"]),
                "distance": float(ds["distance"])}
        row = self._catalogue.get(a.get("cluster") or "")
        lit = v01 = {}
        if row is not None:
            age = row["age"]
            lit = {"L_V": float(row["l_fov"]), "ml": f"{float(row['ml_v']):.2f} ± "
                   f"{float(row['ml_v_err']):.2f}", "age": math.nan if np.ma.is_masked(age)
                   else float(age), "distance": float(row["distance"])}
            v01 = {"log_mass": float(row["pidoc_log_mass"]), "ml": float(row["pidoc_ml_v"]),
                   "age": float(row["pidoc_age"]), "distance": float(row["pidoc_distance"])}
        rows = [
            ("Field mass (Msun)", "mass", ",.0f"),
            ("log10 field mass (Msun)", "log_mass", ".2f"),
            ("Field L<sub>V</sub> (Lsun)", "L_V", ",.0f"),
            ("M/L<sub>V</sub> (Msun/Lsun)", "ml", ".2f"),
            ("Age (Gyr)", "age", ".1f"),
            ("Distance (kpc)", "distance", ".1f"),
        ]

        def cell(d, key, spec):
            v = d.get(key)
            return html.escape(v) if isinstance(v, str) else _fmt(v, spec)

        head = "<tr><th align=left></th><th align=left>π-DOC (this model)</th>"
        if row is not None:
            head += ("<th align=left>π-DOC v0.1 (paper Table 3)</th>"
                     "<th align=left>literature</th>")
        body = ""
        for label, key, spec in rows:
            body += f"<tr><td>{label}</td><td>{cell(ours, key, spec)}</td>"
            if row is not None:
                body += f"<td>{cell(v01, key, spec)}</td><td>{cell(lit, key, spec)}</td>"
            body += "</tr>"
        intro = (f"L<sub>V</sub> and M/L at {a['distance_used_kpc']:g} kpc "
                 f"({html.escape(str(a['distance_source']))}); A_V = "
                 f"{a.get('extinction_av_mag', 0.0):g} mag.")
        foot = ""
        if row is not None:
            foot = ("<br><small>Literature: field L<sub>V</sub> and distance as in the paper's "
                    "Table 3 (Harris 2010), M/L<sub>V</sub> Baumgardt et al. (2020), age "
                    "VandenBerg et al. (2013).</small>")
        if a.get("mass_note"):
            foot += f"<br><small>{html.escape(a['mass_note'])}</small>"
        return (f"{intro}<table style='width:100%;border-collapse:collapse;font-size:90%' "
                f"class='pidoc-observation-numbers'>{head}</tr>{body}</table>{foot}")

    # ------------------------------------------------------------------------------- layout
    def panel(self) -> pn.viewable.Viewable:
        """The tab's layout."""
        controls = pn.Column(
            "### Image", self.upload,
            f"<small>FITS in counts with a celestial WCS; at most {self.max_upload_mb:g} MB.</small>",
            "### Field centre", self.mode, self.cluster, self.av_hint, self.ra, self.dec,
            "### Photometry and distance", self.distance, self.extinction, self.zero_point,
            self.predict_button, width=330)
        maps = pn.Row(pn.pane.Bokeh(self.flux_fig), pn.pane.Bokeh(self.mass_fig))
        return pn.Row(controls, pn.Column(self.status, self.verdict, maps, self.numbers))
