"""Prediction with a pi-DOC model: checked input maps, standardisation, inference copies of the
networks (batch normalisation folded, optionally XLA-compiled batches)."""

from __future__ import annotations

import numpy as np
import xarray as xr

from ..conventions import log_luminosity_per_pixel
from ..networks.folding import fold_batch_norm
from .intervals import interval
from .spec import OUTPUT_UNITS, OUTPUTS, ModelError

__all__ = ["Predictor"]


class Predictor:
    """Mixin of :class:`~pidoc_core.model.PiDOC`: :meth:`predict`.

    Uses the container's ``standardisation``, ``map_shape``, ``has_mass``, ``has_age_distance``,
    networks, ``xla``, ``_lock``, ``_compiled`` and ``_folded``.
    """

    def _inference_network(self, net):
        """``net`` with batch normalisation folded (:func:`~pidoc_core.networks.folding.
        fold_batch_norm`: ~10 % faster on a CPU; it reads ``net``'s variables, so it follows
        changes of its weights), made once per network."""
        if id(net) not in self._folded:  # the network is kept with it, so the id stays its own
            self._folded[id(net)] = (net, fold_batch_norm(net))
        return self._folded[id(net)][1]

    def _check_flux(self, flux):
        """-> (float32 array (n, H, W), {name: (dim, values, attrs)} coordinates to keep)."""
        coords = {}
        if isinstance(flux, xr.DataArray):
            values = flux.values
            sample_dim = flux.dims[0] if flux.ndim in (3, 4) else None
            y_dim, x_dim = flux.dims[-2:] if flux.ndim in (2, 3) else flux.dims[-3:-1]
            rename = {y_dim: "y", x_dim: "x"}
            for name, c in flux.coords.items():
                if sample_dim is not None and c.dims == (sample_dim,):
                    if name not in OUTPUT_UNITS:  # would clash with an output variable
                        coords[name] = ("sample", c.values, c.attrs)
                elif self.has_mass and len(c.dims) == 1 and c.dims[0] in rename:
                    if name not in OUTPUT_UNITS:
                        coords[name] = (rename[c.dims[0]], c.values, c.attrs)
        elif isinstance(flux, xr.Dataset):
            raise ModelError("pass the flux DataArray (e.g. ds['flux']), not a Dataset")
        else:
            values = flux
        try:
            arr = np.asarray(values, dtype=np.float32)
        except (TypeError, ValueError) as exc:
            raise ModelError(f"flux map must be numeric, got {type(values).__name__}") from exc
        h, w = self.map_shape
        if arr.ndim == 4 and arr.shape[-1] == 1:
            arr = arr[..., 0]
        if arr.ndim == 2:
            arr = arr[None]
        if arr.ndim != 3 or arr.shape[1:] != (h, w) or arr.shape[0] == 0:
            raise ModelError(
                f"flux map must have shape ({h}, {w}) or (n, {h}, {w}) with n >= 1; got "
                f"{np.shape(values)}"
            )
        bad = ~np.isfinite(arr)
        if bad.any():
            samples = np.flatnonzero(bad.any(axis=(1, 2)))
            raise ModelError(
                f"flux map has {int(bad.sum())} NaN/inf pixel(s) in sample(s) "
                f"{samples[:10].tolist()}{' ...' if samples.size > 10 else ''}; pi-DOC needs "
                "finite log10 flux everywhere (use the imager's floor for empty pixels)"
            )
        return arr, coords

    #: Smallest batch that :meth:`predict` compiles with XLA (smaller ones are not worth it).
    XLA_MIN_BATCH = 16

    def _compiled_call(self, net):
        """``net(x, training=False)`` compiled with XLA; None when XLA is off or unavailable."""
        if not self.xla:
            return None
        key = id(net)
        if key not in self._compiled:
            import tensorflow as tf

            @tf.autograph.experimental.do_not_convert
            def call(x):
                return net(x, training=False)

            self._compiled[key] = tf.function(call, jit_compile=True, reduce_retracing=False)
        return self._compiled[key]

    def _run(self, net, x, batch_size):
        out = []
        with self._lock:
            net = self._inference_network(net)
            compiled = self._compiled_call(net) if batch_size >= self.XLA_MIN_BATCH else None
            for start in range(0, x.shape[0], batch_size):
                chunk = x[start:start + batch_size]
                if compiled is not None and chunk.shape[0] == batch_size:
                    try:
                        out.append(np.asarray(compiled(chunk)))
                        continue
                    except Exception as exc:  # an op without an XLA kernel on this build
                        import warnings

                        warnings.warn(f"XLA compilation failed ({type(exc).__name__}: {exc}); "
                                      "predicting without it", RuntimeWarning, stacklevel=3)
                        self.xla = False
                        compiled = None
                out.append(np.asarray(net.predict_on_batch(chunk)))
        return np.concatenate(out, axis=0)

    #: Choices of :meth:`predict`'s ``mass_network``.
    MASS_NETWORKS = ("auto", "distance-aware", "flux-only", "none")

    def _check_distance(self, distance_kpc, n):
        """Per-sample distances (kpc), float64 ``(n,)``, checked."""
        try:
            d = np.asarray(distance_kpc, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise ModelError(f"distance_kpc must be a number of kpc, got {distance_kpc!r}") \
                from exc
        if d.ndim == 0:
            d = np.full(n, float(d))
        if d.shape != (n,):
            raise ModelError(f"distance_kpc must be one value or one per map ({n}), got shape "
                             f"{d.shape}")
        if not np.all(np.isfinite(d) & (d > 0)):
            raise ModelError(f"distance_kpc must be positive and finite (kpc), got "
                             f"{d[~(np.isfinite(d) & (d > 0))][:5].tolist()}")
        return d

    def _choose_mass_network(self, mass_network, distance_given):
        if mass_network not in self.MASS_NETWORKS:
            raise ModelError(f"mass_network must be one of {list(self.MASS_NETWORKS)}, got "
                             f"{mass_network!r}")
        aware = self.mass_ml_network is not None and (distance_given or
                                                      self.age_distance_network is not None)
        if mass_network == "distance-aware" and self.mass_ml_network is None:
            raise ModelError("mass_network='distance-aware': this model has no distance-aware "
                             "network")
        if mass_network == "distance-aware" and not aware:
            raise ModelError("mass_network='distance-aware' needs a distance: give distance_kpc "
                             "(this model has no age/distance network to predict it)")
        if mass_network == "flux-only" and self.mass_network is None:
            raise ModelError(f"mass_network='flux-only': this model ({self.name}) has no "
                             "flux-only network")
        if mass_network == "none":
            return None
        if mass_network == "auto":
            return "distance-aware" if aware else ("flux-only" if self.mass_network is not None
                                                   else None)
        return mass_network

    # predict: ~109 lines, ~50 of them the docstring (each option and its units), ~59 code
    def predict(self, flux, *, distance_kpc=None, mass_network: str = "auto",
                batch_size: int = 16) -> xr.Dataset:
        """Predict mass map, distance and age from log10 flux maps.

        Parameters
        ----------
        flux : numpy.ndarray or xarray.DataArray
            One map ``(H, W)`` or a batch ``(n, H, W)`` (a trailing channel of 1 is accepted) of
            log10(F / (Lsun kpc^-2)), not standardised, finite everywhere; ``(H, W)`` is
            :attr:`map_shape` (160 x 160 for the published networks). A DataArray's coordinates
            along its first (sample) dimension are kept on ``sample``, except ones named like an
            output (``mass``, ``age``, ``distance``).
        distance_kpc : float or array_like, optional
            The cluster's distance, kpc (one value, or one per map), e.g. from a catalogue. The
            distance-aware network then gives the M/L_V map; without it, that network uses the
            age/distance network's distance.
        mass_network : {'auto', 'distance-aware', 'flux-only', 'none'}
            'auto': the distance-aware network when the model has it (and a distance is given
            or predicted), else the paper's flux-only network; 'none': no mass map.
        batch_size : int
            Maps per network call; the default, 16, took the least time per map on a 2-core
            CPU (8, 16, 32 and 64 measured; 64 was ~15 % slower per map).

        Returns
        -------
        xarray.Dataset
            ``mass`` (log10 Msun per pixel, dims ``sample, y, x``; with a mass network) and
            ``field_mass`` (Msun, its sum over the map), ``ml`` (log10 M/L_V per pixel, with the
            distance-aware network), ``distance`` (kpc) and ``age`` (Gyr) (dims ``sample``; with
            an age/distance network). When the model carries calibrated intervals
            (:mod:`pidoc_core.model.intervals`), ``<name>_lo`` and ``<name>_hi`` bound the 68 %
            interval of ``mass``, ``field_mass``, ``distance`` and ``age``. Attributes
            ``mass_network`` (which one answered) and ``distance_source`` ('given' or
            'predicted'). A single map gives ``sample`` of length 1.

        Raises
        ------
        ModelError
            Wrong shape, non-numeric or non-finite input, a bad distance or network choice.

        Notes
        -----
        Thread-safe: network calls are serialised by a lock. Runs in inference mode: full batches
        of ``batch_size >= XLA_MIN_BATCH`` maps through an XLA-compiled call (see :attr:`xla`),
        the rest through ``predict_on_batch``; never ``Model.predict``.

        Examples
        --------
        >>> ds = PiDOC.from_v01("weights/pidoc-v0.1").predict(np.full((160, 160), -5.4))
        ... # doctest: +SKIP
        >>> ds.age.attrs["units"]  # doctest: +SKIP
        'Gyr'
        """
        arr, coords = self._check_flux(flux)
        n = arr.shape[0]
        given = None if distance_kpc is None else self._check_distance(distance_kpc, n)
        choice = self._choose_mass_network(mass_network, given is not None)
        s = self.standardisation
        x = ((arr - s["flux_mean"]) / s["flux_std"]).astype(np.float32)[..., None]
        batch_size = max(1, int(batch_size))
        data_vars = {}
        if self.has_age_distance:
            out = self._run(self.age_distance_network, x, batch_size).astype(np.float64)
            out = out * np.asarray(s["distance_age_std"]) + np.asarray(s["distance_age_mean"])
            for i, key in enumerate(OUTPUTS):
                data_vars[key] = (
                    ("sample",),
                    out[:, i],
                    {"units": OUTPUT_UNITS[key], "long_name": f"predicted {key}"},
                )
        attrs = {"mass_network": choice or "none"}
        if choice == "distance-aware":
            d = given if given is not None else np.maximum(data_vars["distance"][1], 0.1)
            attrs["distance_source"] = "given" if given is not None else "predicted"
            c = ((np.log10(d) - s["log_distance_mean"]) / s["log_distance_std"]).astype(np.float32)
            x2 = np.concatenate([x, np.broadcast_to(c[:, None, None, None], x.shape)], axis=-1)
            # maps in float32 (the networks' precision, ~1e-6 dex here): half the memory
            # traffic of float64 per map
            ml = self._run(self.mass_ml_network, x2, batch_size)[..., 0]
            ml = ml * np.float32(s["ml_std"]) + np.float32(s["ml_mean"])
            logl = log_luminosity_per_pixel(arr, d[:, None, None].astype(np.float32))
            data_vars["ml"] = (("sample", "y", "x"), ml,
                               {"units": OUTPUT_UNITS["ml"],
                                "long_name": "log10 of the V-band mass-to-light ratio per pixel"})
            data_vars["mass"] = (("sample", "y", "x"), ml + logl,
                                 {"units": OUTPUT_UNITS["mass"],
                                  "long_name": "log10 of the mass per pixel"})
            data_vars["distance_used"] = (("sample",), d, {"units": "kpc", "long_name":
                                          "distance given to the distance-aware network"})
        elif choice == "flux-only":
            m = self._run(self.mass_network, x, batch_size)[..., 0]
            data_vars["mass"] = (
                ("sample", "y", "x"),
                m * np.float32(s["mass_std"]) + np.float32(s["mass_mean"]),
                {"units": OUTPUT_UNITS["mass"], "long_name": "log10 of the mass per pixel"},
            )
        if "mass" in data_vars:
            # 10**m as exp(m ln 10): numpy's vectorised float32 exp is ~3x faster than power
            pixels = np.exp(data_vars["mass"][1] * np.float32(np.log(10.0)))
            data_vars["field_mass"] = (("sample",), np.sum(pixels, axis=(1, 2),
                                                           dtype=np.float64), {
                "units": "Msun", "long_name": "predicted mass in the field of view"})
        calibration = self.provenance.get("intervals")
        if calibration:
            self._add_intervals(data_vars, calibration, choice, attrs.get("distance_source"),
                                None if given is None else given)
        attrs["model"] = self.name
        if "loaded_from" in self.provenance:
            attrs["model_path"] = self.provenance["loaded_from"]
        ds = xr.Dataset(data_vars, attrs=attrs)
        for name, (dim, values, cattrs) in coords.items():
            ds = ds.assign_coords({name: (dim, values, cattrs)})
        return ds

    @staticmethod
    def _add_intervals(data_vars, calibration, choice, distance_source, given):
        """Add ``<name>_lo``/``<name>_hi`` 68 % bounds from the calibration tables."""
        level = f"{100 * calibration.get('level', 0.68):.0f} %"

        def add(name, dims, bounds, units, what):
            for bound, arr in zip(("lo", "hi"), bounds):
                word = "lower" if bound == "lo" else "upper"
                data_vars[f"{name}_{bound}"] = (dims, arr, {
                    "units": units, "long_name": f"{word} bound of the {level} interval of "
                                                 f"{what}"})

        for key in OUTPUTS:
            if key in data_vars and key in calibration:
                v = data_vars[key][1]
                add(key, ("sample",), interval(v, v, calibration[key]), OUTPUT_UNITS[key], key)
        if choice is None or "mass" not in data_vars:
            return
        mode = "flux-only" if choice == "flux-only" else f"{choice}/{distance_source}"
        tables = calibration.get("mass", {}).get(mode)
        if tables is None:
            return
        if given is not None:
            by = given
        elif "distance" in data_vars:
            by = data_vars["distance"][1]
        else:
            return  # flux-only without a distance: the tables are binned by distance
        lo, hi = interval(np.log10(data_vars["field_mass"][1]), by, tables["log_field_mass"])
        add("field_mass", ("sample",), (10.0 ** lo, 10.0 ** hi), "Msun", "the field mass")
        lo, hi = interval(data_vars["mass"][1], by, tables["pixel_log_mass"])
        add("mass", ("sample", "y", "x"),
            (lo.astype(np.float32, copy=False), hi.astype(np.float32, copy=False)),
            OUTPUT_UNITS["mass"], "the mass per pixel")
