"""The Explore tab: move the observing conditions, watch π-DOC's predictions and errors update.

:class:`ExploreView` is a :class:`param.Parameterized` whose parameters (with their bounds, from
:func:`pidoc_core.exploration.setting_bounds`) are the tab's settings; the widgets are generated
from them with :class:`panel.Param`. Each session owns one view; the model and the snapshot sources
are shared read-only. A move runs :func:`pidoc_core.exploration.explore` once and patches every
data source inside one ``pn.io.hold()`` so the browser repaints once.
"""

from __future__ import annotations

import functools
import html
import io

import numpy as np
import pandas as pd
import panel as pn
import param
from bokeh.layouts import column, row

from pidoc_core.exploration import (MASS_NETWORKS, explore, field_size_pc, numbers_table,
                                    setting_bounds, to_fits)
from pidoc_core.imager import ObservationError, ObservationSetup

from .explore_plots import ExplorePlots

__all__ = ["ExploreView", "HOW_TO_READ", "NETWORK_HELP", "NETWORK_LABELS"]

_BOUNDS = setting_bounds()
_ROTATIONS = ["0", "90", "180", "270", "free"]

#: The mass-network selector's labels -> :data:`pidoc_core.exploration.MASS_NETWORKS` keys.
NETWORK_LABELS = {"distance-aware, slider distance": "distance-aware",
                  "distance-aware, π-DOC distance": "distance-aware/predicted",
                  "flux-only (the paper's)": "flux-only"}
assert set(NETWORK_LABELS.values()) == set(MASS_NETWORKS)
#: How the mass networks differ, in one line under their selector.
NETWORK_HELP = ("Flux is surface brightness: it does not fall with distance, but a pixel's mass "
                "grows as d². The distance-aware network is given the distance (as a catalogue "
                "would) and predicts M/L; the flux-only one (the paper's) must infer that "
                "offset from the image alone.")

#: The page's legend of symbols, shown beside the plots.
HOW_TO_READ = """\
**How to read this.** The field is 160 × 160 pixels of 0.25″ (40″ across; its size in pc at
the chosen distance is above the table). *r* = π-DOC − true log mass per pixel (dex; +0.3 dex = ×2). **μ**: mean *r*
(line) and 16–84 % band in each bin of π-DOC's value; **ξ**: the same per bin of the true value.
*constant M/L*: mass = {upsilon:.2f} × luminosity (the training set's mean M/L_V, Msun/Lsun), the
baseline π-DOC must beat. Profiles: mean mass per pixel and M/L in rings about the cluster centre;
the blue band spans the rings' means of π-DOC's per-pixel 68 % bounds; [ ] in the table: π-DOC's
68 % interval, calibrated on validation maps (absent if the model has none); *true / model*
below 1 means the model overestimates. *Pin* keeps a setting's π-DOC curves (grey
dotted) and numbers to compare with the next ones."""


def _times(source) -> list[float]:
    """Snapshot times a source can give, Gyr (a run's own, after its set-up)."""
    if hasattr(source, "setup"):
        source.setup()  # an evolution knows when it dissolves only after its set-up
    return [round(float(t), 3) for t in np.asarray(source.times, dtype=float)]


def _nearest(values, target):
    return min(values, key=lambda v: abs(v - target))


class ExploreView(param.Parameterized):
    """Settings, plots and the update callback of one session's Explore tab.

    Parameters
    ----------
    sources : dict
        Run name -> object with ``.snapshot(time_gyr)`` and ``.times`` (Gyr); shared.
    model : pidoc_core.model.PiDOC
        Networks with a mass network; shared, thread-safe prediction.
    upsilon : float
        Constant-M/L baseline, Msun/Lsun (the training set's mean M/L_V).
    snapshot_cache : callable, optional
        ``(run, time) -> Snapshot`` returning the same object for the same arguments (the server
        shares one across sessions); default a per-view LRU cache of ``sources[run].snapshot``.
    grid : dict, optional
        The model's training conditions (see :func:`pidoc_core.exploration.training_grid_flags`);
        the settings' bounds follow from it (:func:`pidoc_core.exploration.setting_bounds`).
    """

    run = param.Selector(objects=[], label="Run", check_on_set=True)
    time = param.Selector(objects=[], label="Snapshot time (Gyr)", check_on_set=True)
    distance = param.Number(15.0, bounds=_BOUNDS["distance_kpc"], step=1.0, label="Distance (kpc)")
    psf = param.Number(1.0, bounds=_BOUNDS["psf_fwhm_arcsec"], step=0.05, label="PSF FWHM (arcsec)")
    shift_x = param.Number(0.0, bounds=_BOUNDS["shift_arcsec"], step=0.25,
                           label="Centre shift x (arcsec)")
    shift_y = param.Number(0.0, bounds=_BOUNDS["shift_arcsec"], step=0.25,
                           label="Centre shift y (arcsec)")
    rotation = param.Selector(objects=_ROTATIONS, default="0", label="Rotation (deg)")
    angle = param.Number(0.0, bounds=(0.0, 360.0), step=1.0, label="Free angle (deg)")
    mass_network = param.Selector(objects=NETWORK_LABELS, default="distance-aware",
                                  label="Mass network")
    colour_scale = param.Selector(objects=["fixed", "automatic"], default="fixed",
                                  label="Colour scales")
    pin = param.Action(lambda self: self.pin_current(), label="Pin this setting")
    unpin = param.Action(lambda self: self.clear_pin(), label="Unpin")

    def __init__(self, sources, model, *, upsilon, snapshot_cache=None, grid=None):
        names = list(sources)
        super().__init__()
        self.sources, self.model, self.upsilon, self.grid = sources, model, float(upsilon), grid
        bounds = setting_bounds(grid)
        self.param.distance.bounds = bounds["distance_kpc"]
        self.param.psf.bounds = bounds["psf_fwhm_arcsec"]
        self.param.shift_x.bounds = self.param.shift_y.bounds = bounds["shift_arcsec"]
        # snapshots must be reused: the imager caches each one's density centre (~60 ms)
        self._snapshot = snapshot_cache or functools.lru_cache(maxsize=8)(
            lambda run, t: sources[run].snapshot(t))
        self.plots = ExplorePlots(upsilon=self.upsilon)
        # fixed sizes: text changes then repaint in place instead of re-laying out the page
        self.status = pn.pane.Alert("", alert_type="success", margin=(0, 5), height=135,
                                    width=390, styles={"overflow-y": "auto", "font-size": "90%"})
        self.last = self.pinned = None
        self.param.run.objects = names
        with param.parameterized.discard_events(self):
            self.run = next((n for n in names if n.startswith("MW15 ")), names[0])
            self._set_times()
        self.update()

    # ------------------------------------------------------------------------ settings
    def _set_times(self) -> None:
        times = _times(self.sources[self.run])
        self.param.time.objects = times
        if self.time not in times:
            self.time = _nearest(times, self.time if self.time is not None else 12.0)

    @param.depends("run", watch=True)
    def _on_run(self) -> None:
        before = self.time
        self._set_times()
        if self.time == before:  # otherwise the time watcher has updated already
            self.update()

    def setup(self) -> ObservationSetup:
        """The observing conditions the settings describe."""
        rotation = self.angle if self.rotation == "free" else float(self.rotation)
        return ObservationSetup(distance_kpc=self.distance, psf_fwhm_arcsec=self.psf,
                                shift_arcsec=(self.shift_x, self.shift_y), rotation_deg=rotation)

    def pin_current(self) -> None:
        """Keep the current step, to compare the next settings with it."""
        self.pinned = self.last
        self.update()

    def clear_pin(self) -> None:
        """Forget the pinned step."""
        self.pinned = None
        self.update()

    # --------------------------------------------------------------------------- update
    @param.depends("time", "distance", "psf", "shift_x", "shift_y", "rotation", "angle",
                   "mass_network", "colour_scale", watch=True)
    def update(self) -> None:
        """Image, predict and measure under the current settings; patch every plot at once."""
        try:
            setup = self.setup()
            snap = self._snapshot(self.run, float(self.time))
            result = explore(snap, setup, model=self.model, upsilon=self.upsilon, grid=self.grid,
                             mass_network=self.mass_network)
        except (ObservationError, ValueError) as exc:
            self.status.alert_type = "danger"
            self.status.object = f"<b>Cannot observe this setting</b>: {html.escape(str(exc))}"
            return
        self.last = result
        with pn.io.hold():
            self.plots.show(result, automatic=self.colour_scale == "automatic",
                            pinned=self.pinned)
            self.plots.show_numbers(*self._numbers_cells(result, snap))
            self._set_status(result)

    def _set_status(self, result) -> None:
        lines, kind = [], "success"
        if result.unphysical:
            kind = "danger"
            lines.append("<b>Unphysical prediction</b>: " +
                         "; ".join(html.escape(f) for f in result.unphysical) + ".")
        if result.flags:
            kind = "warning" if kind == "success" else kind
            lines.append("<b>Outside the training conditions</b>, an extrapolation:<br>" +
                         "<br>".join(html.escape(f) for f in result.flags))
        if not lines:
            lines.append("All settings inside the networks' training conditions.")
        if result.network_note:
            lines.append("<b>Mass network</b>: " + html.escape(result.network_note) + ".")
        self.status.alert_type = kind
        self.status.object = "<br>".join(lines)

    def numbers_frame(self, result=None):
        """The current numbers (:func:`pidoc_core.exploration.numbers_table`), with the pinned
        step's π-DOC column when one is pinned."""
        result = result or self.last
        df = numbers_table(result)
        if self.pinned is not None:
            df["π-DOC (pinned)"] = numbers_table(self.pinned)["π-DOC"]
        return df

    def _numbers_cells(self, result, snap):
        """The caption, the table of formatted strings and the footer the numbers canvas
        shows."""
        df = self.numbers_frame(result)
        bounds = [c for c in ("π-DOC 68 % low", "π-DOC 68 % high") if c in df]
        cells = {}  # column -> formatted strings; one DataFrame made at the end
        for col in (c for c in df if not c.endswith("error (%)") and c not in bounds):
            err = df[f"{col} error (%)"].to_numpy() if f"{col} error (%)" in df else None
            cells[col] = [f"{_num(v)} ({err[i]:+.0f} %)" if err is not None and
                          np.isfinite(err[i]) else _num(v) for i, v in enumerate(df[col])]
            if col == "π-DOC" and bounds:
                cells["68 % interval"] = [
                    f"[{_num(lo)}, {_num(hi)}]" if np.isfinite(lo) and np.isfinite(hi) else "–"
                    for lo, hi in zip(df["π-DOC 68 % low"], df["π-DOC 68 % high"])]
        shown = pd.DataFrame(cells, index=df.index)
        attrs = result.observation.attrs
        field_pc = field_size_pc(attrs["distance_kpc"], fov_arcsec=attrs["fov_arcsec"])
        caption = (f"{snap.name} at {snap.time:g} Gyr, {len(snap):,} stars; field "
                   f"{attrs['fov_arcsec']:g}″ = {field_pc:.2f} pc; L_V = "
                   f"{result.totals['luminosity_v_lsun']:,.0f} Lsun")
        footer = f"Mass: {MASS_NETWORKS[result.mass_network]}"
        if result.network_note:
            footer += " (not the one asked for: see the status)"
        footer += "; [ ]: 68 % interval" if bounds else "; this model carries no intervals"
        return caption, shown, footer

    def numbers_text(self) -> str:
        """What the numbers canvas shows, as text: the caption, then one line per row."""
        data = self.plots.numbers_src.data
        lines: dict[float, list] = {}
        for x, y, text in sorted(zip(data["x"], data["y"], data["text"]), key=lambda c: (-c[1], c[0])):
            lines.setdefault(y, []).append(text)
        return "\n".join(" | ".join(cells) for _, cells in sorted(lines.items(), reverse=True))

    # --------------------------------------------------------------------------- export
    def export_csv(self) -> io.BytesIO:
        """The numbers and the profiles of the current step as CSV (UTF-8)."""
        setup = self.last.observation.attrs
        head = "".join(f"# {k} = {setup[k]}\n" for k in ("snapshot_name", "snapshot_time_gyr",
                                                          "distance_kpc", "psf_fwhm_arcsec",
                                                          "shift_x_arcsec", "shift_y_arcsec",
                                                          "rotation_deg"))
        profiles = self.last.profiles.drop_vars([v for v in self.last.profiles.coords
                                                 if v != "radius"]).to_dataframe()
        text = (head + self.numbers_frame().to_csv() + "\n# radial profiles (radius in arcsec)\n"
                + profiles.to_csv())
        return io.BytesIO(text.encode())

    def export_fits(self) -> io.BytesIO:
        """The maps of the current step as FITS (:func:`pidoc_core.exploration.to_fits`)."""
        buf = io.BytesIO()
        to_fits(self.last).writeto(buf)
        buf.seek(0)
        return buf

    # --------------------------------------------------------------------------- layout
    def controls(self) -> pn.viewable.Viewable:
        """The settings, generated from the parameters."""
        controls = pn.Param(
            self, show_name=False, width=240,
            parameters=["run", "time", "distance", "psf", "shift_x", "shift_y", "rotation",
                        "angle", "mass_network", "colour_scale", "pin", "unpin"],
            widgets={"time": pn.widgets.DiscreteSlider,
                     "rotation": {"type": pn.widgets.RadioButtonGroup, "color": "light"},
                     "colour_scale": {"type": pn.widgets.RadioButtonGroup,
                                      "color": "light"},
                     "pin": {"type": pn.widgets.Button, "color": "primary"}})
        for widget in controls.layout:
            widget.width = 225  # inside the 240-px column (Panel's default is 300)
        # the free angle is read only for a free rotation (see `setup`); its widget is disabled
        # otherwise. The parameter itself stays settable, so a value sent by the page while the
        # widget is disabled is ignored instead of raising on the server.
        angle = controls._widgets["angle"]
        angle.disabled = self.rotation != "free"
        self.param.watch(lambda event: setattr(angle, "disabled", event.new != "free"),
                         "rotation")
        return controls

    def panel(self) -> pn.viewable.Viewable:
        """The tab's layout: fits a 1280 × 800 screen without scrolling sideways."""
        p = self.plots
        legend = pn.pane.Markdown(HOW_TO_READ.format(upsilon=self.upsilon),
                                  width=240, styles={"font-size": "80%"})
        downloads = pn.Row(
            pn.widgets.FileDownload(callback=self.export_csv, filename="pidoc-explore.csv",
                                    label="CSV", width=70, color="light"),
            pn.widgets.FileDownload(callback=self.export_fits, filename="pidoc-explore.fits",
                                    label="FITS", width=70, color="light"),
            width=240)
        controls = self.controls()
        at = list(controls.layout.objects).index(controls._widgets["mass_network"]) + 1
        controls.layout.insert(at, pn.pane.Markdown(NETWORK_HELP, width=225, margin=(0, 10),
                                                    styles={"font-size": "75%"}))
        side = pn.Column(controls, "Download the current maps and numbers "
                         "(PNG: each plot's save tool):", downloads, legend, width=250)
        # one Bokeh layout for all eleven plots, not eleven Panel panes: the browser lays out
        # and repaints one root per move (benchmarks/RESULTS.md: ratio to the bare page
        # 2.6-2.7 against 2.8-3.1 with panes, same runs)
        hist, mu, xi = p.histogram
        plots = column(row(*p.maps.values()),
                       row(column(row(mu, hist), xi), column(p.mass_profile, p.ratio),
                           column(p.ml_profile, p.enclosed)))
        return pn.Row(side, pn.Column(pn.Row(self.status, pn.pane.Bokeh(p.numbers)),
                                      pn.pane.Bokeh(plots)))


def _num(value) -> str:
    """A number for the table: thousands separated from 100 up, else 3 significant digits."""
    if not np.isfinite(value):
        return "–"
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}"
