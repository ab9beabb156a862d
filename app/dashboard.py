"""π-DOC Explorer dashboard (served by ``make serve`` = ``panel serve app/dashboard.py``).

A thin layer over :mod:`pidoc_core`: the embedded cluster analogues are imaged live as the user moves
the observing conditions. Snapshots are shared read-only across sessions; each session owns its
widgets and plot sources. The full Explore / Test-set tabs of the dashboard issue build on this.
"""

from __future__ import annotations

import numpy as np
import panel as pn
from bokeh.models import ColorBar, ColumnDataSource, LinearColorMapper
from bokeh.plotting import figure

from pidoc_core.evolution import paper_runs
from pidoc_core.imager import ObservationSetup, observe

pn.extension(inline=True)


def _runs():
    return paper_runs(progress=False)


RUNS = pn.state.as_cached("pidoc-runs", _runs)


def _snapshot(run: str, time_gyr: float):
    return pn.state.as_cached(f"pidoc-snapshot-{run}-{time_gyr:.1f}",
                              lambda: RUNS[run].snapshot(time_gyr))


run = pn.widgets.Select(name="Run", options=list(RUNS), value="MW15 analogue")
time_gyr = pn.widgets.FloatSlider(name="Time (Gyr)", start=0.5, end=14.0, step=0.5, value=12.0)
distance = pn.widgets.FloatSlider(name="Distance (kpc)", start=10, end=100, step=1, value=15)
psf = pn.widgets.FloatSlider(name="PSF FWHM (arcsec)", start=0.5, end=1.5, step=0.05, value=1.0)
shift_x = pn.widgets.FloatSlider(name="Centre shift x (arcsec)", start=-5, end=5, step=0.25, value=0)
shift_y = pn.widgets.FloatSlider(name="Centre shift y (arcsec)", start=-5, end=5, step=0.25, value=0)
rotation = pn.widgets.FloatSlider(name="Rotation (deg)", start=0, end=360, step=1, value=0)


def _image_figure(title: str, label: str, low: float, high: float):
    mapper = LinearColorMapper(palette="Viridis256", low=low, high=high)
    source = ColumnDataSource({"image": [np.zeros((160, 160), dtype=np.float32)]})
    fig = figure(title=title, x_range=(-20, 20), y_range=(-20, 20), match_aspect=True,
                 x_axis_label="x (arcsec)", y_axis_label="y (arcsec)", width=480, height=420,
                 toolbar_location="above", tools="pan,wheel_zoom,box_zoom,reset,hover",
                 tooltips=[(label, "@image")])
    fig.image(image="image", x=-20, y=-20, dw=40, dh=40, color_mapper=mapper, source=source)
    fig.add_layout(ColorBar(color_mapper=mapper, title=label), "right")
    return fig, source


flux_fig, flux_source = _image_figure("Mock V-band observation", "log10 F (Lsun kpc^-2)", -7.5, -2.5)
mass_fig, mass_source = _image_figure("True mass map", "log10 M (Msun)", -2.5, 1.5)
numbers = pn.pane.Markdown(width=900)


def update(*_events) -> None:
    """Image the chosen snapshot under the chosen conditions and patch the plot sources."""
    snap = _snapshot(run.value, time_gyr.value)
    setup = ObservationSetup(distance_kpc=distance.value, psf_fwhm_arcsec=psf.value,
                             shift_arcsec=(shift_x.value, shift_y.value),
                             rotation_deg=rotation.value)
    obs = observe(snap, setup)
    field_mass = obs.attrs["field_mass_msun"]
    field_lv = obs.attrs["field_luminosity_v_lsun"]
    with pn.io.hold():
        flux_source.data = {"image": [obs.flux.values]}
        mass_source.data = {"image": [obs.mass.values]}
        numbers.object = (
            f"**{run.value}** at {snap.time:g} Gyr, {len(snap):,} stars  \n"
            f"Field mass **{field_mass:,.0f} Msun**, field V luminosity **{field_lv:,.0f} Lsun**, "
            f"M/L_V = **{field_mass / max(field_lv, 1e-30):.2f}** Msun/Lsun"
        )


for widget in (run, time_gyr, distance, psf, shift_x, shift_y, rotation):
    widget.param.watch(update, "value")
update()

controls = pn.Column("### Observing conditions", run, time_gyr, distance, psf, shift_x, shift_y,
                     rotation, width=320)
page = pn.Row(controls, pn.Column(numbers, pn.Row(pn.pane.Bokeh(flux_fig), pn.pane.Bokeh(mass_fig))))
pn.Column("# π-DOC Explorer", page).servable(title="π-DOC Explorer")
