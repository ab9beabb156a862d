"""The Observations tab: upload a FITS image of a globular cluster, get π-DOC's mass map.

Each session owns one :class:`ObservationView` (a :class:`param.Parameterized`: its settings
generate the widgets); the model is shared read-only. The upload is read from memory
(``io.BytesIO``; never written to disk, never unpickled), checked for size before it is parsed,
and handed to :func:`pidoc_core.observations.predict_image`: all the science (WCS cut-out, zero
point, PS1 asinh linearisation, V-band flux, prediction, training-range verdict) lives there.
On upload the image's WCS centre picks the nearest Table 3 cluster and fills in its A_V; the
whole image is shown with the 40″ field drawn on it. Every failure clears the previous results
and is shown as an Alert in the dashboard's words, never as a traceback.
"""

from __future__ import annotations

import html
import io
import logging
import math
import re
import warnings
import zlib

import numpy as np
import panel as pn
import param
from astropy.io import fits
from bokeh.models import ColumnDataSource, LinearColorMapper
from bokeh.plotting import figure

from pidoc_core.conventions import FOV_ARCSEC, N_PIXELS
from pidoc_core.observations import (ObservationInputError, RangeWarning, load_catalogue,
                                     predict_image)

from .figures import TOOLS, colour_limits, map_figure

__all__ = ["ObservationView", "dashboard_words", "model_words"]

_LOG = logging.getLogger(__name__)
_MB = 1024 * 1024
_CATALOGUE_MODE, _RADEC_MODE = "Catalogue cluster", "RA / Dec"
#: Largest separation, arcmin, at which the image centre names a catalogue cluster.
_MATCH_ARCMIN = 10.0
#: The library's argument names and notes, as the dashboard's fields call them.
_WORDS = ((re.compile(r"pass zero_point=\.\.\. \(mag for 1 count\)"),
           "enter the Zero point field (mag for 1 count)"),
          (re.compile(r"\(zero_point=\.\.\.\)"), "(the Zero point field)"),
          (re.compile(r"zero_point"), "Zero point"),
          (re.compile(r"extinction_av"), "Extinction A_V"),
          (re.compile(r"distance_kpc"), "Distance"),
          (re.compile(r"ignore_missing_simple=True"), "a FITS file whose first card is SIMPLE"),
          (re.compile(r"pixel \(x=nan, y=nan\)"), "a position the image's WCS cannot place"),
          (re.compile(r"the model records no training_luminosity_range"),
           "this model does not record the luminosities it was trained on"))


def dashboard_words(message: str) -> str:
    """A library message with argument names replaced by the dashboard's field names.

    >>> dashboard_words("no zero point; pass zero_point=... (mag for 1 count)")
    'no zero point; enter the Zero point field (mag for 1 count)'
    """
    for pattern, words in _WORDS:
        message = pattern.sub(words, message)
    return message


def model_words(name: str) -> str:
    """Which model answered, in words (``PiDOC.name``: a shipped model's name or a directory).

    >>> print(model_words("wide"))
    the wide model (trained on the grid of runs that spans the paper's Table 3 clusters)
    """
    return {"paper": "the paper model (trained on the paper's protocol: 50,000-star runs)",
            "wide": "the wide model (trained on the grid of runs that spans the paper's Table 3 "
                    "clusters)",
            "pi-DOC (not saved)": "a model that is not saved"}.get(name, f"the model in {name}")


def _with_interval(row, key, spec):
    """``row[key]`` formatted, then its 68 % interval ``[key_lo, key_hi]`` when it has one."""
    lo, hi = float(row[f"{key}_lo"]), float(row[f"{key}_hi"])
    tail = f" [{_fmt(lo, spec)}, {_fmt(hi, spec)}]" if math.isfinite(lo) else ""
    return _fmt(float(row[key]), spec) + tail


def _fmt(value, spec=".3g"):
    try:
        value = float(value)
    except (TypeError, ValueError):
        return "–"
    return format(value, spec) if math.isfinite(value) else "–"


class ObservationView(param.Parameterized):
    """Settings, plots and the predict callback of one session's Observations tab.

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

    mode = param.Selector(objects=[_CATALOGUE_MODE, _RADEC_MODE], default=_CATALOGUE_MODE,
                          label="Field centre from", precedence=0.1)
    cluster = param.Selector(objects={}, label="Cluster (paper Table 3, Harris 2010 centre)",
                             precedence=0.2)
    ra = param.String("", label="RA (deg, or h:m:s)", precedence=0.3)
    dec = param.String("", label="Dec (deg, or d:m:s)", precedence=0.4)
    distance = param.Number(None, bounds=(0.0, None), inclusive_bounds=(False, True),
                            allow_None=True, step=0.1,
                            label="Distance (kpc; empty: catalogue's, else π-DOC's)", precedence=0.5)
    extinction = param.Number(0.0, bounds=(0.0, 10.0), step=0.01, label="Extinction A_V (mag)",
                              precedence=0.6)
    zero_point = param.Number(None, allow_None=True, step=0.01, precedence=0.7,
                              label="Zero point (mag for 1 count; empty: from the header)")

    def __init__(self, model, *, max_upload_mb: float = 50, max_megapixels: float = 50,
                 mock_table=None):
        super().__init__()
        self.model = model
        # pidoc_core.observations.mock_table3 of this model: how it does on mocks of each cluster
        self.mock_table = mock_table
        self._mocks = {} if mock_table is None else {str(r["name"]): r for r in mock_table}
        self.mock_note = pn.pane.HTML("", width=300, margin=(0, 10))
        self.max_upload_mb, self.max_megapixels = float(max_upload_mb), float(max_megapixels)
        table = load_catalogue()
        self._catalogue = {str(row["name"]): row for row in table}
        self.param.cluster.objects = {
            (f"{row['name']} ({row['alt_name']})" if row["alt_name"] else str(row["name"])):
            str(row["name"]) for row in table}
        self.upload = pn.widgets.FileInput(accept=".fits,.fit,.fz,.fits.gz", multiple=False)
        self.av_hint = pn.pane.Markdown("", margin=(0, 10))
        self.predict_button = pn.widgets.Button(label="Predict", color="primary")
        self.status = pn.pane.Alert(
            f"Upload a calibrated V-band FITS image (counts, celestial WCS, zero point in the "
            f"header or given; PS1 stacks are linearised) of at most {self.max_upload_mb:g} MB, "
            "check the centre and press Predict.", alert_type="info")
        self.verdict = pn.pane.Alert("", alert_type="light", visible=False)
        self.numbers = pn.pane.HTML("", width=700)
        self._build_figures()
        self.upload.param.watch(self._on_upload, "value")
        self.predict_button.on_click(self.predict)
        self.result = None
        self.cluster = str(table[0]["name"])
        self._on_mode()

    def _build_figures(self):
        self.flux_mapper = LinearColorMapper(palette="Inferno256", low=-7.5, high=-2.5)
        self.mass_mapper = LinearColorMapper(palette="Viridis256", low=-2.5, high=1.5)
        axes = dict(x_label="x (arcsec, west)", y_label="y (arcsec, north)", width=300, height=265)
        self.flux_fig, self.flux_src = map_figure("Input: V-band flux map", self.flux_mapper,
                                                  "log F (Lsun/kpc²)", **axes)
        self.mass_fig, self.mass_src = map_figure("π-DOC mass map", self.mass_mapper,
                                                  "log M (Msun)", **axes)
        self.mass_fig.x_range, self.mass_fig.y_range = self.flux_fig.x_range, self.flux_fig.y_range
        self.image_mapper = LinearColorMapper(palette="Greys256", nan_color="white")
        self.image_src = ColumnDataSource({"image": [np.full((2, 2), np.nan, np.float32)],
                                           "dw": [2], "dh": [2]})
        self.footprint_src = ColumnDataSource({"x": [], "y": []})
        fig = figure(title="Upload; 40″ field in cyan", width=300, height=265,
                     tools=TOOLS, toolbar_location=None, match_aspect=True,
                     x_axis_label="image x (pixel)", y_axis_label="image y (pixel)")
        fig.image(image="image", x=0, y=0, dw="dw", dh="dh", source=self.image_src,
                  color_mapper=self.image_mapper)
        fig.patch("x", "y", source=self.footprint_src, fill_alpha=0, line_color="#00bcd4",
                  line_width=2)
        self.image_fig = fig

    # ----------------------------------------------------------------------------- callbacks
    @param.depends("mode", watch=True)
    def _on_mode(self):
        radec = self.mode == _RADEC_MODE
        self.av_hint.visible = not radec
        # pn.Param hides parameters of negative precedence
        self.param.ra.precedence, self.param.dec.precedence = (0.3, 0.4) if radec else (-1, -1)
        self.param.cluster.precedence = -1 if radec else 0.2

    @param.depends("cluster", watch=True)
    def _on_cluster(self):
        row = self._catalogue[self.cluster]
        ebv = float(row["ebv"])
        self.extinction = round(3.1 * ebv, 2)
        self.av_hint.object = (f"{html.escape(str(row['name']))}: d = {float(row['distance']):g} "
                               f"kpc, E(B−V) = {ebv:g} mag → A_V = 3.1 E(B−V) = {3.1 * ebv:.2f} "
                               "mag, filled in (Harris 2010)")
        self.mock_note.object = self.mock_sentence(self._mocks.get(self.cluster))

    def _on_upload(self, *_events):
        """Check the size as soon as a file arrives; read its WCS to pick the cluster and
        show the image with the 40″ field."""
        self._clear()
        message = self._size_error()
        if message:
            self._error(message)
            return
        if self.upload.value is None:
            return
        note = ""
        try:
            with self._hdul() as hdul:
                note = self._locate(hdul)
        except ObservationInputError as exc:
            self._error(f"{self._filename()}: {exc}")
            return
        except Exception as exc:  # noqa: BLE001 - shown, never a traceback
            _LOG.info("Observations tab: no WCS preview: %s", exc)
        self.status.alert_type = "info"
        self.status.object = html.escape(
            f"{self._filename()}: {len(self.upload.value) / _MB:.2f} MB received; {note}"
            "press Predict.")

    def predict(self, *_events) -> None:
        """Parse the upload, run :func:`predict_image` and update maps, numbers and verdict."""
        self.predict_button.loading = True
        try:
            self._predict()
        except ObservationInputError as exc:
            self._error(f"{self._filename()}: {exc}")
        except Exception as exc:  # noqa: BLE001 - the page shows a message, never a traceback
            _LOG.exception("Observations tab: prediction failed")
            self._error(f"Cannot process {self._filename()}: {exc}")
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

    def _clear(self) -> None:
        """Forget the previous prediction: empty maps and numbers, no verdict."""
        n = N_PIXELS
        self.result = None
        with pn.io.hold():
            self.flux_src.data = {"image": [np.full((n, n), np.nan, np.float32)]}
            self.mass_src.data = {"image": [np.full((n, n), np.nan, np.float32)]}
            self.numbers.object = ""
            self.verdict.visible = False

    def _error(self, message: str) -> None:
        self._clear()
        self.status.alert_type = "danger"
        self.status.object = html.escape(dashboard_words(str(message)))

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
        except Exception:  # noqa: BLE001 - astropy raises OSError, ValueError, ...
            raise ObservationInputError("not a readable FITS file (its first card must be "
                                        "SIMPLE = T)") from None
        for shape in shapes:
            if len(shape) >= 2 and math.prod(shape) > self.max_megapixels * 1e6:
                hdul.close()
                raise ObservationInputError(
                    f"an HDU of shape {shape} has more than {self.max_megapixels:g} million "
                    "pixels; upload a smaller cut-out")
        return hdul

    def _locate(self, hdul) -> str:
        """Show the image, pick the Table 3 cluster nearest its WCS centre and draw the field;
        return a sentence for the status."""
        from astropy import units as u
        from astropy.coordinates import SkyCoord
        from astropy.wcs import WCS

        hdu = next(h for h in hdul if getattr(h, "data", None) is not None and h.data.ndim == 2)
        wcs = WCS(hdu.header).celestial
        if not wcs.has_celestial:
            return "no celestial WCS to find the cluster; "
        data = np.asarray(hdu.data, dtype=np.float32)
        ny, nx = data.shape
        step = max(1, int(math.ceil(max(nx, ny) / 400)))  # at most ~400 pixels a side on screen
        shown = data[::step, ::step]
        with np.errstate(invalid="ignore", divide="ignore"):
            shown = np.arcsinh(shown / max(float(np.nanstd(shown)), 1e-30)).astype(np.float32)
        centre = wcs.pixel_to_world((nx - 1) / 2.0, (ny - 1) / 2.0)
        names = list(self._catalogue)
        cat = SkyCoord([float(self._catalogue[n]["ra"]) for n in names],
                       [float(self._catalogue[n]["dec"]) for n in names], unit="deg")
        sep = centre.separation(cat).to_value(u.arcmin)
        best = int(np.argmin(sep))
        note = ""
        target = centre
        if sep[best] <= _MATCH_ARCMIN:
            with param.parameterized.batch_call_watchers(self):
                self.mode, self.cluster = _CATALOGUE_MODE, names[best]
            target = cat[best]
            note = (f"its centre is {sep[best]:.1f}′ from {names[best]}, chosen with its A_V; ")
        half = FOV_ARCSEC / 2.0 * u.arcsec
        corners = [target.spherical_offsets_by(dx * half, dy * half)
                   for dx, dy in ((1, 1), (-1, 1), (-1, -1), (1, -1))]
        px, py = wcs.world_to_pixel(SkyCoord(corners))
        lo, hi = colour_limits(shown, fixed=None)
        with pn.io.hold():
            self.image_mapper.update(low=lo, high=hi)
            self.image_src.data = {"image": [shown], "dw": [nx], "dh": [ny]}
            self.footprint_src.data = {"x": list(np.asarray(px) + 0.5),
                                       "y": list(np.asarray(py) + 0.5)}
        return note

    def _centre(self) -> dict:
        if self.mode == _CATALOGUE_MODE:
            return {"cluster": self.cluster}
        ra, dec = self.ra.strip(), self.dec.strip()
        if not ra or not dec:
            raise ObservationInputError("enter both RA and Dec of the field centre")
        return {"centre": (ra, dec)}

    def _predict(self) -> None:
        self._clear()
        centre = self._centre()
        hdul = self._hdul()
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RangeWarning)  # the verdict is shown instead
                ds = predict_image(hdul, model=self.model, distance_kpc=self.distance,
                                   extinction_av=self.extinction or 0.0,
                                   zero_point=self.zero_point, **centre)
        finally:
            hdul.close()
        self.result = ds
        self._show(ds)

    def _show(self, ds) -> None:
        flux = ds["flux"].values
        mass = ds["mass"].values if "mass" in ds else np.full_like(flux, np.nan)
        with pn.io.hold():
            self.flux_mapper.low, self.flux_mapper.high = colour_limits(flux, fixed=None)
            self.flux_src.data = {"image": [flux.astype(np.float32)]}
            if "mass" in ds:
                self.mass_mapper.low, self.mass_mapper.high = colour_limits(mass, fixed=None)
            self.mass_src.data = {"image": [mass.astype(np.float32)]}
            self.numbers.object = self._numbers_html(ds)
            name = ds.attrs.get("cluster") or (f"RA {ds.attrs['centre_ra_deg']:.5f}, "
                                               f"Dec {ds.attrs['centre_dec_deg']:+.5f}")
            self.status.alert_type = "success"
            self.status.object = html.escape(
                f"{self._filename()}: field around {name}; zero point "
                f"{ds.attrs['zero_point_mag']:.3f} mag ({ds.attrs['zero_point_source']}); "
                f"{ds.attrs['masked_pixels']} masked pixels interpolated.")
            self._show_verdict(ds)

    def _show_verdict(self, ds) -> None:
        reasons = [r for r in str(ds.attrs.get("range_reasons", "")).split(" | ") if r]
        notes = [n for n in str(ds.attrs.get("range_notes", "")).split(" | ") if n]
        items = "".join(f"<li>{html.escape(dashboard_words(r))}</li>" for r in reasons)
        extra = "".join(f"<li><i>{html.escape(dashboard_words(n))}</i></li>" for n in notes)
        if ds.attrs["range_verdict"] == "inside":
            self.verdict.alert_type = "success"
            head = "<b>Inside π-DOC's training range</b> (the paper's Fig. 10 test)."
        else:
            self.verdict.alert_type = "warning"
            head = ("<b>Outside π-DOC's training range</b>: these predictions are "
                    "extrapolations and may be badly wrong (paper Sect. 5).")
        self.verdict.object = head + (f"<ul>{items}{extra}</ul>" if items or extra else "")
        self.verdict.visible = True

    def numbers_frame(self, ds):
        """The prediction beside π-DOC v0.1 and the literature (paper Table 3), as a table."""
        import pandas as pd

        mass = float(ds["field_mass"])
        ours = {"mass": mass, "log_mass": math.log10(mass) if mass > 0 else math.nan,
                "L_V": float(ds["luminosity_v"]), "ml": float(ds["mass_to_light"]),
                "age": float(ds["age"]), "distance": float(ds["distance"])}
        columns = {"π-DOC (this model)": ours}
        if any(f"{k}_lo" in ds for k in ("field_mass", "age", "distance")):
            columns["68 % interval"] = self._intervals(ds)
        row = self._catalogue.get(ds.attrs.get("cluster") or "")
        if row is not None:
            age = row["age"]
            columns["π-DOC v0.1 (paper Table 3)"] = {
                "log_mass": float(row["pidoc_log_mass"]), "ml": float(row["pidoc_ml_v"]),
                "age": float(row["pidoc_age"]), "distance": float(row["pidoc_distance"])}
            columns["literature"] = {
                "L_V": float(row["l_fov"]), "ml": f"{float(row['ml_v']):.2f} ± "
                f"{float(row['ml_v_err']):.2f}", "age": math.nan if np.ma.is_masked(age)
                else float(age), "distance": float(row["distance"])}
        rows = (("Field mass (Msun)", "mass", ",.0f"), ("log10 field mass (Msun)", "log_mass", ".2f"),
                ("Field L_V (Lsun)", "L_V", ",.0f"), ("M/L_V (Msun/Lsun)", "ml", ".2f"),
                ("Age (Gyr)", "age", ".1f"), ("Distance (kpc)", "distance", ".1f"))
        table = {name: [v if isinstance(v := col.get(key), str) else _fmt(v, spec)
                        for _, key, spec in rows] for name, col in columns.items()}
        return pd.DataFrame(table, index=[label for label, _, _ in rows])

    @staticmethod
    def _intervals(ds) -> dict:
        """π-DOC's 68 % intervals as table cells ``[lo, hi]`` (keys of :meth:`numbers_frame`'s
        rows); a quantity without one is absent."""
        cells = {}

        def cell(lo, hi, spec):
            return f"[{_fmt(lo, spec)}, {_fmt(hi, spec)}]"

        if "field_mass_lo" in ds and "field_mass_hi" in ds:
            lo, hi = float(ds["field_mass_lo"]), float(ds["field_mass_hi"])
            cells["mass"] = cell(lo, hi, ",.0f")
            if lo > 0 and hi > 0:
                cells["log_mass"] = cell(math.log10(lo), math.log10(hi), ".2f")
            lum = float(ds["luminosity_v"])
            if lum > 0:
                cells["ml"] = cell(lo / lum, hi / lum, ".2f")
        for key, spec in (("age", ".1f"), ("distance", ".1f")):
            if f"{key}_lo" in ds and f"{key}_hi" in ds:
                cells[key] = cell(float(ds[f"{key}_lo"]), float(ds[f"{key}_hi"]), spec)
        return cells

    @staticmethod
    def network_sentence(ds) -> str:
        """Which mass network answered, in words."""
        net = str(ds.attrs.get("mass_network", "none"))
        if net == "distance-aware":
            given = ds.attrs.get("distance_source") != "pi-DOC prediction"
            return ("Mass from the distance-aware network, given " +
                    ("this distance." if given else "π-DOC's predicted distance."))
        if net == "flux-only":
            return "Mass from the flux-only network (the paper's): it infers the distance itself."
        return "No mass network in this model."

    def _numbers_html(self, ds) -> str:
        a = ds.attrs
        intro = (f"L<sub>V</sub> and M/L at {a['distance_used_kpc']:g} kpc "
                 f"({html.escape(str(a['distance_source']))}); A_V = "
                 f"{a.get('extinction_av_mag', 0.0):g} mag. "
                 f"{html.escape(self.network_sentence(ds))} "
                 f"Answered by {html.escape(model_words(str(a.get('model', ''))))}.")
        foot = ""
        if a.get("cluster") in self._catalogue:
            foot = ("<br><small>Literature: field L<sub>V</sub> and distance as in the paper's "
                    "Table 3 (Harris 2010), M/L<sub>V</sub> Baumgardt et al. (2020), age "
                    "VandenBerg et al. (2013).</small>")
        if a.get("mass_note"):
            foot += f"<br><small>{html.escape(dashboard_words(a['mass_note']))}</small>"
        if any(f"{k}_lo" in ds for k in ("field_mass", "age", "distance")):
            foot += ("<br><small>68 % interval: such intervals held the truth for 68 % of "
                     "π-DOC's validation maps (calibrated on them); an image outside the "
                     "training range may fall outside more often.</small>")
        else:
            foot += "<br><small>This model carries no intervals.</small>"
        table = self.numbers_frame(ds).to_html(classes="pidoc-observation-numbers", border=0,
                                               justify="left")
        return intro + table + foot

    @staticmethod
    def mock_sentence(row) -> str:
        """How the model does on the mock of one Table 3 cluster (a row of
        :func:`pidoc_core.observations.mock_table3`, whose table names the model), as HTML;
        empty without one."""
        if row is None:
            return ""
        meta = getattr(row, "meta", None) or {}  # the table's: which model made it
        who = model_words(str(meta["model"])).split(" (")[0] if "model" in meta else "this model"
        return (
            f"<small><b>On a mock of {html.escape(str(row['name']))}</b> (grid run "
            f"{html.escape(str(row['run']))}: field L<sub>V</sub> {float(row['mock_l_fov']):,.0f} "
            f"Lsun, the cluster's {float(row['l_fov']):,.0f}) at {float(row['distance_kpc']):g} "
            f"kpc and {float(row['age_gyr']):g} Gyr, {html.escape(who)} gives M/L<sub>V</sub> "
            f"{_with_interval(row, 'pidoc_ml', '.2f')} against the mock's true "
            f"{float(row['true_ml']):.2f}; age {_with_interval(row, 'pidoc_age', '.1f')} Gyr; "
            f"distance {_with_interval(row, 'pidoc_distance', '.1f')} kpc"
            f" ({html.escape(str(row['range_verdict']))}). See “π-DOC on mocks of the Table 3 "
            "clusters” below.</small>")

    def mock_table_frame(self):
        """The mock Table 3 as a display table: per cluster, truth, this model and the paper's
        π-DOC (on the real cluster)."""
        import pandas as pd

        records = []
        for row in self.mock_table:
            records.append({
                "cluster": str(row["name"]),
                "grid run": str(row["run"]) + (" (a training run)" if "run_in_training"
                                               in row.colnames and row["run_in_training"]
                                               else ""),
                "L_FoV: cluster / mock (Lsun)": f"{float(row['l_fov']):,.0f} / "
                                                f"{float(row['mock_l_fov']):,.0f}",
                "d (kpc)": f"{float(row['distance_kpc']):g}",
                "age (Gyr)": f"{float(row['age_gyr']):g}",
                "M/L true": f"{float(row['true_ml']):.2f}",
                "M/L π-DOC [68 %]": _with_interval(row, "pidoc_ml", ".2f"),
                "age π-DOC [68 %]": _with_interval(row, "pidoc_age", ".1f"),
                "d π-DOC [68 %]": _with_interval(row, "pidoc_distance", ".1f"),
                "training range": str(row["range_verdict"]),
                "paper's π-DOC, real cluster: M/L, age, d":
                    f"{float(row['paper_ml']):.2f}, {float(row['paper_age']):.1f}, "
                    f"{float(row['paper_distance']):.1f}"})
        return pd.DataFrame.from_records(records)

    def _mock_card(self):
        if self.mock_table is None:
            return pn.pane.Markdown("<small>No mock Table 3 for this model (`pidoc mock-table3 "
                                    "--weights DIR --out DIR/mock_table3.ecsv`).</small>")
        meta = self.mock_table.meta
        intro = (
            "<small>Each of the paper's 17 clusters matched to the run of the wide grid whose "
            "mock at the cluster's age and catalogue distance is most like it (field luminosity, "
            "half-light radius, [Fe/H]); this model run on that mock with the catalogue distance "
            f"given, seeing {float(meta.get('psf_fwhm_arcsec', 1.0)):g}″. The mock's truth is "
            "known: M/L true is its field mass over its field luminosity, its age and distance "
            "the catalogue's. The last column is the paper's π-DOC on the real cluster (its "
            "Table 3), for comparison, not a truth. Ages below 0 Gyr are unphysical: the "
            "network extrapolating far outside its training range.</small>")
        table = self.mock_table_frame().to_html(classes="pidoc-mock-table3", border=0,
                                                index=False, justify="left")
        # no wider than the maps' row, so the tab fits a 1280-px screen
        return pn.Card(pn.pane.HTML(intro + table, width=900),
                       title="π-DOC on mocks of the Table 3 clusters", collapsed=True,
                       width=920)

    # ------------------------------------------------------------------------------- layout
    def panel(self) -> pn.viewable.Viewable:
        """The tab's layout."""
        settings = pn.Param(self, show_name=False, width=300, parameters=[
            "mode", "cluster", "ra", "dec", "distance", "extinction", "zero_point"],
            widgets={"mode": {"type": pn.widgets.RadioButtonGroup, "color": "light"},
                     "extinction": pn.widgets.FloatInput,
                     "ra": {"type": pn.widgets.TextInput, "placeholder": "199.1129 or 13:16:27.09"},
                     "dec": {"type": pn.widgets.TextInput,
                             "placeholder": "17.7003 or +17:42:00.9"}})
        controls = pn.Column(
            "### Image", self.upload,
            f"<small>FITS in counts with a celestial WCS; at most {self.max_upload_mb:g} MB.</small>",
            "### Field centre, photometry and distance", settings, self.av_hint,
            self.predict_button, self.mock_note, width=320)
        maps = pn.Row(pn.pane.Bokeh(self.image_fig), pn.pane.Bokeh(self.flux_fig),
                      pn.pane.Bokeh(self.mass_fig))
        return pn.Row(controls, pn.Column(self.status, self.verdict, maps, self.numbers,
                                          self._mock_card()))
