"""Training one pi-DOC network: :func:`fit` and its result."""

from __future__ import annotations

import contextlib
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import keras
import numpy as np

from .. import networks
from ..model import PiDOC
from ._common import (_CKPT_FORMAT, _CKPT_VERSION, _PREDICTION_PROVENANCE, _ROLES, CHECKPOINT_DIR,
                      CSV_NAME, EXPORT_DIR, LOG_DIR, LR_SCHEDULES, PAPER_LEARNING_RATES,
                      TrainingError, _check_kind, _positive_int)
from .callbacks import _Checkpointer, _PlateauStopping, _ScalarSummaries
from .checkpoints import (_assign_all, _clear_run, _load_arrays, _rewrite_csv, _same,
                          latest_checkpoint, read_checkpoint_metadata)
from .data import _as_data, _check_shapes, _position_at_epoch
from .options import (_curves_summary, _default_standardisation, _float32_output, _learning_rate,
                      _make_loss, _precision_policy, _precision_record, _resolve_architecture,
                      _resolve_strategy, _warn_emulated_bfloat16)

__all__ = ["TrainingResult", "fit"]


@dataclass
class TrainingResult:
    """What :func:`fit` returns.

    Attributes
    ----------
    model : keras.Model
        A plain float32 copy of the network with the best weights (not bound to a distribution
        strategy), taking and returning standardised values.
    pidoc : PiDOC or None
        The exported model (``None`` when ``export=False``).
    export_dir : pathlib.Path or None
        Where it was saved.
    history : list of dict
        One entry per completed epoch of the whole run (resumed parts included): ``epoch``
        (0-based) and the logged values ``loss``, ``mse``, ``r2``, ``val_loss``, ``val_mse``,
        ``val_r2`` (dimensionless, standardised units).
    initial_epoch : int
        Epochs already completed when this call started (from a checkpoint).
    epochs_run : int
        Epochs completed by this call.
    best_epoch : int
        0-based epoch of the best monitored value (``val_loss``, or ``loss`` without validation).
    best : dict
        The logged values of that epoch.
    stopped_early : bool
        Whether early stopping ended the run (now or in an earlier, resumed part).
    training : dict
        The ``training`` entry written to the export manifest.
    """

    model: Any
    pidoc: Any
    export_dir: Path | None
    history: list
    initial_epoch: int
    epochs_run: int
    best_epoch: int
    best: dict
    stopped_early: bool
    training: dict = field(default_factory=dict)



# fit is ~200 lines: a 28-line signature, ~100 lines documenting its 25 parameters and ~70 lines
# of steps, each a helper below.
def fit(
    kind: str,
    train,
    validation=None,
    *,
    out_dir: str | os.PathLike,
    epochs: int,
    model: keras.Model | None = None,
    architecture: dict | None = None,
    learning_rate: float | None = None,
    lr_schedule: str = "constant",
    loss=None,
    vgg_weights: str | os.PathLike | None = None,
    batch_size: int = 32,
    steps_per_epoch: int | None = None,
    patience: int | None = 20,
    min_delta: float = 0.0,
    resume: bool = True,
    mixed_precision: bool | str = False,
    strategy=None,
    seed: int = 0,
    standardisation: dict | None = None,
    provenance: dict | None = None,
    keep_checkpoints: int = 2,
    export: bool = True,
    callbacks: list | None = None,
    verbose: int | str = "auto",
) -> TrainingResult:
    """Train a pi-DOC network with checkpoints, curves, early stopping and a PiDOC export.

    Parameters
    ----------
    kind : {'mass', 'mass-ml', 'age-distance'}
        ``'mass'``: the encoder-decoder, standardised log10 flux map (H, W, 1) -> standardised
        log10 mass map (H, W, 1). ``'mass-ml'``: the distance-aware network, standardised flux
        and log10 distance (H, W, 2) -> standardised log10 M/L_V per pixel (H, W, 1).
        ``'age-distance'``: the CNN, flux map -> ``(2,)`` standardised ``[distance, age]``.
    train, validation : (x, y) arrays, keras.utils.PyDataset or tf.data.Dataset
        Standardised data. Arrays: ``x`` of shape (n, H, W) or (n, H, W, 1), ``y`` of shape
        (n, H, W[, 1]) (mass) or (n, 2) (age-distance); they are batched by ``batch_size`` and
        the training set reshuffled every epoch from ``(seed, epoch)``. A PyDataset or
        tf.data.Dataset yields ``(x, y)`` batches and does its own batching and shuffling.
        Without ``validation``, early stopping and the best weights follow the training loss.
    out_dir : path-like
        Run directory (checkpoints, CSV and TensorBoard logs, export); see the module docstring.
    epochs : int
        Total number of epochs of the run, counting epochs already in a resumed checkpoint.
    model : keras.Model, optional
        Initial network, built by :mod:`pidoc_core.networks` (its architecture record is needed
        for the export); it is rebuilt from that record under the strategy/precision in use and
        its weights copied. Ignored when resuming from a checkpoint (checkpoint weights win).
    architecture : dict, optional
        Keyword arguments of the kind's builder (e.g. ``{"filters": (4, 8, 8, 8)}``) or a full
        record ``{"builder": ..., "kwargs": ...}``. Default: the paper's network, with
        ``input_shape`` taken from the data.
    learning_rate : float, optional
        Adam learning rate; default the paper's (10^-2.5 for 'mass', 10^-4 for 'age-distance';
        10^-3 for 'mass-ml'); with a schedule, its peak.
    lr_schedule : {'constant', 'cosine'}
        'cosine': a short linear warm-up, then a cosine decay to 1 % over ``epochs`` (the total
        of the run, so a resumed run continues the same schedule).
    loss : {'perceptual', 'mse'} or keras.losses.Loss, optional
        Default the paper's: 'perceptual' (VGG16 features, Appendix A) for 'mass', 'mse' for
        'age-distance'.
    vgg_weights : path-like, optional
        ImageNet VGG16 weights for the perceptual loss (see
        :class:`pidoc_core.networks.PerceptualLoss`); without them and without Keras's cache a
        fixed random VGG16 is used (with a warning) and recorded as ``vgg_source``.
    batch_size : int
        Samples per step for array data (the global batch, split across replicas).
    steps_per_epoch : int, optional
        Steps per epoch, if not a full pass over the training data.
    patience : int or None
        Epochs without improvement of ``val_loss`` (more than ``min_delta``) before stopping;
        ``None``: never stop early. The best weights are restored either way.
    min_delta : float
        Minimum decrease of the monitored loss counted as an improvement.
    resume : bool
        Continue from the last checkpoint in ``out_dir`` if there is one (same kind,
        architecture, loss and learning rate, else :class:`TrainingError`); if False, earlier
        checkpoints, CSV and TensorBoard logs of ``out_dir`` are deleted.
    mixed_precision : bool or {'float16', 'bfloat16'}
        Train the network under the ``mixed_float16`` policy (True or 'float16': GPUs; dynamic
        loss scaling) or ``mixed_bfloat16`` ('bfloat16': CPUs with AVX512-BF16/AMX), with a
        float32 output and the loss in float32; the exported network is float32. The global
        policy is restored afterwards.
    strategy : None, 'auto', 'mirrored' or tf.distribute.Strategy
        ``None``: default device. ``'auto'``: ``MirroredStrategy`` over all GPUs if more than
        one is visible, else default. ``'mirrored'``: ``MirroredStrategy`` over all GPUs, or all
        logical CPUs without GPUs. TensorFlow backend only.
    seed : int
        Seed of weight initialisation (``keras.utils.set_random_seed``), of dropout and of the
        shuffling of array data, and of the random VGG16 fallback.
    standardisation : dict, optional
        Constants the data were standardised with (``flux_mean``, ``flux_std`` in log10 Lsun
        kpc^-2; ``mass_mean``, ``mass_std`` in log10 Msun; ``distance_age_mean``,
        ``distance_age_std`` for [kpc, Gyr]), written to the export. Default: a
        ``standardisation`` dict attribute of ``train``, else identity (with a warning).
    provenance : dict, optional
        Description of the training data (dataset path, version, checksums, splits), stored in
        the manifest under ``training.data``.
    keep_checkpoints : int
        Number of most recent checkpoints kept.
    export : bool
        Save a :class:`~pidoc_core.model.PiDOC` to ``out_dir/model`` at the end.
    callbacks : list of keras.callbacks.Callback, optional
        More callbacks, run after the built-in ones (early stopping, checkpoint, CSV, TensorBoard).
    verbose : 'auto', 0, 1 or 2
        Progress output of ``keras.Model.fit`` (1: progress bar, 2: one line per epoch).

    Returns
    -------
    TrainingResult

    Raises
    ------
    ValueError
        Unknown kind, ``epochs`` < 1, bad options, data whose shapes do not fit the network.
    TrainingError
        A checkpoint in ``out_dir`` from a different kind, architecture, loss or learning rate.

    Examples
    --------
    >>> res = fit("age-distance", (x_train, y_train), (x_val, y_val),  # doctest: +SKIP
    ...           out_dir="runs/cnn", epochs=200, standardisation=consts)
    >>> res.best["val_r2"], res.export_dir  # doctest: +SKIP
    (0.98, PosixPath('runs/cnn/model'))
    """
    t_start = time.perf_counter()
    kind = _check_kind(kind)
    epochs, batch_size, seed, keep_checkpoints, steps_per_epoch, patience, learning_rate = \
        _check_numbers(kind, epochs=epochs, batch_size=batch_size, seed=seed,
                       keep_checkpoints=keep_checkpoints, steps_per_epoch=steps_per_epoch,
                       patience=patience, learning_rate=learning_rate)
    if provenance is not None and not isinstance(provenance, dict):
        raise TypeError(f"provenance must be a dict, not {type(provenance).__name__}")
    out_dir = Path(out_dir)

    if lr_schedule not in LR_SCHEDULES:
        raise TrainingError(f"lr_schedule must be one of {list(LR_SCHEDULES)}, got "
                            f"{lr_schedule!r}")
    train_data, val_data, steps = _fit_data(kind, train, validation, batch_size=batch_size,
                                            seed=seed, steps_per_epoch=steps_per_epoch)
    spec = _resolve_architecture(kind, architecture, model, train_data)
    standardisation = _default_standardisation(kind, train, standardisation)
    strategy = _resolve_strategy(strategy)
    scope = strategy.scope if strategy is not None else contextlib.nullcontext

    keras.utils.set_random_seed(seed)
    policy = _precision_policy(mixed_precision)
    _warn_emulated_bfloat16(policy)
    net, train_model = _build_networks(kind, spec, model, policy=policy, scope=scope)
    _check_shapes("train", train_data, train_model)
    if val_data is not None:
        _check_shapes("validation", val_data, train_model)
    loss_desc = _compile(train_model, kind, loss, vgg_weights=vgg_weights, seed=seed,
                         learning_rate=_learning_rate(learning_rate, lr_schedule, epochs=epochs,
                                                      steps_per_epoch=steps), scope=scope)
    meta = _checkpoint_meta(kind, spec, loss_desc, learning_rate, lr_schedule, policy, seed)

    # the checkpoint to resume from: only now that every argument is checked
    start = _resume_point(out_dir, resume, meta, train_model, scope=scope, verbose=verbose,
                          what=f"{kind!r}", epochs=epochs)
    _position_at_epoch(train_data.source, start.initial_epoch)

    monitor = "val_loss" if val_data is not None else "loss"
    stopper = _PlateauStopping(
        monitor=monitor, mode="min", min_delta=float(min_delta),
        patience=epochs if patience is None else patience, restore_best_weights=True,
        resume_state=start.es_state)
    history = start.history
    callbacks = _callbacks(out_dir, meta, history, stopper, keep_checkpoints, callbacks)
    epochs_before = len(history)
    t_fit = time.perf_counter()
    best_epoch, stopped_early = _train_or_skip(
        train_model, train_data, val_data, start, stopper, epochs=epochs,
        steps_per_epoch=steps_per_epoch, callbacks=callbacks, verbose=verbose)
    fit_seconds = time.perf_counter() - t_fit
    epochs_run = len(history) - epochs_before

    # ---- best epoch and a plain float32 copy of the best network ----
    best_row = next((dict(r) for r in history if r["epoch"] == best_epoch), {})
    best_row.pop("epoch", None)
    final = networks.build_network(spec)
    final.set_weights([np.asarray(w, dtype=np.float32) for w in net.get_weights()])

    training = _training_record(
        kind, loss_desc, learning_rate=learning_rate, lr_schedule=lr_schedule,
        batch_size=batch_size, train_data=train_data, val_data=val_data,
        steps_per_epoch=steps_per_epoch, epochs=epochs, history=history, start=start,
        stopped_early=stopped_early, monitor=monitor, patience=patience, min_delta=min_delta,
        best_epoch=best_epoch, best_row=best_row, seed=seed, policy=policy, strategy=strategy,
        seconds=time.perf_counter() - t_start, fit_seconds=fit_seconds, epochs_run=epochs_run,
        provenance=provenance)
    pidoc, export_dir = (_export(final, kind, standardisation, provenance, training, out_dir,
                                 best_epoch=best_epoch, best_row=best_row, verbose=verbose)
                         if export else (None, None))
    return TrainingResult(model=final, pidoc=pidoc, export_dir=export_dir, history=list(history),
                          initial_epoch=start.initial_epoch, epochs_run=epochs_run,
                          best_epoch=best_epoch, best=best_row,
                          stopped_early=bool(stopped_early), training=training)


def _check_numbers(kind, *, epochs, batch_size, seed, keep_checkpoints, steps_per_epoch,
                   patience, learning_rate):
    """The checked counts and learning rate of :func:`fit` (the paper's rate by default)."""
    epochs = _positive_int("epochs", epochs)
    batch_size = _positive_int("batch_size", batch_size)
    seed = _positive_int("seed", seed, allow_zero=True)
    keep_checkpoints = _positive_int("keep_checkpoints", keep_checkpoints)
    if steps_per_epoch is not None:
        steps_per_epoch = _positive_int("steps_per_epoch", steps_per_epoch)
    if patience is not None:
        patience = _positive_int("patience", patience, allow_zero=True)
    if learning_rate is None:
        learning_rate = PAPER_LEARNING_RATES[kind]
    learning_rate = float(learning_rate)
    if not (math.isfinite(learning_rate) and learning_rate > 0):
        raise TrainingError(f"learning_rate must be a positive number, got {learning_rate!r}")
    return epochs, batch_size, seed, keep_checkpoints, steps_per_epoch, patience, learning_rate


def _fit_data(kind, train, validation, *, batch_size, seed, steps_per_epoch):
    """``(train data, validation data or None, steps per epoch or None)`` for ``model.fit``."""
    train_data = _as_data("train", train, kind, batch_size=batch_size, shuffle=True, seed=seed)
    if train_data is None:
        raise ValueError("train data are required")
    steps = steps_per_epoch or (math.ceil(train_data.n_samples / batch_size)
                                if train_data.n_samples else None)
    val_data = _as_data("validation", validation, kind, batch_size=batch_size, shuffle=False,
                        seed=seed)
    return train_data, val_data, steps


def _compile(train_model, kind, loss, *, vgg_weights, seed, learning_rate, scope) -> dict:
    """Compile with Adam, the loss and the paper's metrics (MSE, eq. 1 R^2); build the optimiser
    (so a checkpoint's state can be assigned); returns the loss description."""
    with scope():
        loss_obj, loss_desc = _make_loss(kind, loss, vgg_weights=vgg_weights, seed=seed)
        train_model.compile(
            optimizer=keras.optimizers.Adam(learning_rate=learning_rate),
            loss=loss_obj,
            metrics=[keras.metrics.MeanSquaredError(name="mse"), networks.R2Score(name="r2")],
        )
        train_model.optimizer.build(train_model.trainable_variables)
    return loss_desc


def _build_networks(kind, spec, model, *, policy, scope):
    """(the network, the model trained: the network or its float32-output wrapper), built under
    the precision ``policy`` and the strategy ``scope``; ``model``'s weights copied in."""
    old_policy = keras.mixed_precision.global_policy()
    try:
        if policy != "float32":
            keras.mixed_precision.set_global_policy(policy)
        with scope():
            try:
                net = networks.build_network(spec)
            except (TypeError, ValueError) as exc:
                raise ValueError(f"cannot build the {kind!r} network from {spec}: {exc}") from exc
            if model is not None:
                net.set_weights(model.get_weights())
            return net, _float32_output(net, mixed=policy != "float32")
    finally:
        keras.mixed_precision.set_global_policy(old_policy)


def _checkpoint_meta(kind, spec, loss_desc, learning_rate, lr_schedule, policy, seed) -> dict:
    """The settings a checkpoint records; a resumed run must have the same."""
    return {
        "format": _CKPT_FORMAT,
        "format_version": _CKPT_VERSION,
        "kind": kind,
        "architecture": spec,
        "loss": {k: loss_desc[k] for k in ("name", "class")},
        "learning_rate": learning_rate,
        "lr_schedule": lr_schedule,
        "mixed_precision": _precision_record(policy),
        "rng": {
            "seed": seed,
            "initialisation": "keras.utils.set_random_seed(seed) before building the network",
            "shuffle": "numpy.random.default_rng([seed, epoch]).permutation (array data)",
            "dropout": "Keras SeedGenerator states, saved with the model variables",
        },
        "keras_version": keras.__version__,
        "backend": keras.backend.backend(),
    }


@dataclass
class _Start:
    """Where a run starts: from scratch, or from a checkpoint's epoch, curves and stopping state."""

    resumed: bool = False
    initial_epoch: int = 0
    history: list = field(default_factory=list)
    es_state: dict | None = None
    previously_stopped: bool = False


def _restore(ckpt_path, meta, train_model, *, scope) -> _Start:
    """Load the checkpoint at ``ckpt_path`` (None: start afresh) into ``train_model``, after
    checking that it was written with the same settings as ``meta``."""
    if ckpt_path is None:
        return _Start()
    ckpt_meta = read_checkpoint_metadata(ckpt_path)
    for key in ("kind", "architecture", "loss", "learning_rate", "mixed_precision",
                "lr_schedule"):
        if not _same(ckpt_meta.get(key, "constant" if key == "lr_schedule" else None),
                     meta[key]):
            raise TrainingError(
                f"{ckpt_path} was written by a run with {key}={ckpt_meta.get(key)!r}, this "
                f"run has {key}={meta[key]!r}: pass the same settings to resume, or "
                "resume=False (deletes the run's checkpoints and logs) or another out_dir"
            )
    with np.load(ckpt_path, allow_pickle=False) as z:
        model_arrays = _load_arrays(z, "model_")
        optim_arrays = _load_arrays(z, "optim_")
        best_arrays = _load_arrays(z, "best_")
    with scope():
        _assign_all(train_model.variables, model_arrays, "model variable", ckpt_path)
        _assign_all(train_model.optimizer.variables, optim_arrays, "optimizer variable",
                    ckpt_path)
    initial_epoch = int(ckpt_meta["epoch"])
    es = ckpt_meta.get("early_stopping", {})
    best_epoch = es.get("best_epoch", initial_epoch - 1)
    if best_arrays:
        best_weights = best_arrays
    else:  # the last checkpointed epoch was the best
        best_weights = train_model.get_weights() if best_epoch == initial_epoch - 1 else None
    es_state = {"best": es.get("best"), "best_epoch": best_epoch, "wait": es.get("wait", 0),
                "best_weights": best_weights}
    return _Start(True, initial_epoch, list(ckpt_meta.get("history", [])), es_state,
                  bool(ckpt_meta.get("stopped", False)))


def _resume_point(out_dir, resume, meta, train_model, *, scope, verbose, what, epochs) -> _Start:
    """Where the run starts: the last checkpoint of ``out_dir`` restored when ``resume``, else
    afresh (the earlier run's checkpoints and logs deleted)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    ckpt_path = latest_checkpoint(out_dir) if resume else None
    if not resume:
        _clear_run(out_dir)
    for stale in (out_dir / CHECKPOINT_DIR).glob(".*.tmp"):
        stale.unlink(missing_ok=True)  # left by a run killed while writing
    start = _restore(ckpt_path, meta, train_model, scope=scope)
    if start.resumed and verbose:
        print(f"pidoc training: resuming {what} from {ckpt_path.name} at epoch "
              f"{start.initial_epoch + 1}/{epochs}", flush=True)
    return start


def _callbacks(out_dir, meta, history, stopper, keep_checkpoints, extra) -> list:
    """The built-in callbacks (NaN guard, early stopping, checkpoint, CSV, TensorBoard), then
    ``extra``; the CSV log is first rewritten to the checkpoint's history."""
    csv_path = out_dir / CSV_NAME
    _rewrite_csv(csv_path, history)
    checkpointer = _Checkpointer(out_dir=out_dir, meta=meta, history=history, stopper=stopper,
                                 keep=keep_checkpoints)
    return [
        keras.callbacks.TerminateOnNaN(),
        stopper,
        checkpointer,
        keras.callbacks.CSVLogger(str(csv_path), append=True),
        _ScalarSummaries(out_dir / LOG_DIR),
        *(extra or []),
    ]


def _train_or_skip(train_model, train_data, val_data, start, stopper, *, epochs,
                   steps_per_epoch, callbacks, verbose):
    """Run ``model.fit`` for the epochs left, or (none left, or stopped early before) put the
    best weights back; returns ``(best_epoch, stopped_early)``."""
    if start.initial_epoch < epochs and not start.previously_stopped:
        train_model.fit(
            train_data.source,
            validation_data=None if val_data is None else val_data.source,
            epochs=epochs,
            initial_epoch=start.initial_epoch,
            steps_per_epoch=steps_per_epoch,
            shuffle=False,  # arrays are shuffled by ArrayBatches; datasets shuffle themselves
            callbacks=callbacks,
            verbose=verbose,
        )
        best_epoch = int(stopper.best_epoch) if start.history else -1
        return best_epoch, stopper.stopped_epoch > 0
    if verbose:
        reason = ("stopped early" if start.previously_stopped
                  else f"completed {start.initial_epoch} epochs")
        print(f"pidoc training: nothing to train ({reason}); exporting", flush=True)
    es_state = start.es_state
    if es_state and es_state["best_weights"] is not None:
        train_model.set_weights(es_state["best_weights"])
    return (int(es_state["best_epoch"]) if es_state else -1), start.previously_stopped


def _export(final, kind, standardisation, provenance, training, out_dir, *, best_epoch,
            best_row, verbose):
    """Save the best network as a :class:`~pidoc_core.model.PiDOC` in ``out_dir/model``;
    returns ``(pidoc, export_dir)``."""
    role = _ROLES[kind]
    pidoc = PiDOC(
        **{f"{role}_network": final},
        standardisation=standardisation,
        # what users of the model need at prediction time (the constant-M/L baseline, the
        # training conditions for range checks) travels in its provenance; the rest of the
        # data description stays in the manifest's training entry
        provenance={"source": f"pidoc_core.training.fit ({kind})",
                    "run_dir": str(out_dir.resolve()),
                    **{k: (provenance or {})[k] for k in _PREDICTION_PROVENANCE
                       if k in (provenance or {})}},
    )
    export_dir = pidoc.save(out_dir / EXPORT_DIR, manifest_extra={"training": training},
                            overwrite=True)
    if verbose:
        print(f"pidoc training: exported {export_dir} (best epoch {best_epoch + 1}, "
              + ", ".join(f"{k}={v:.4g}" for k, v in best_row.items()) + ")", flush=True)
    return pidoc, export_dir


def _training_record(kind, loss_desc, *, learning_rate, lr_schedule, batch_size, train_data,
                     val_data, steps_per_epoch, epochs, history, start, stopped_early, monitor,
                     patience, min_delta, best_epoch, best_row, seed, policy, strategy, seconds,
                     fit_seconds, epochs_run, provenance) -> dict:
    """The ``training`` entry of the export manifest."""
    return {
        "kind": kind,
        "network": _ROLES[kind],
        "loss": loss_desc,
        "vgg_source": loss_desc.get("vgg_source"),
        "optimizer": {"name": "Adam", "learning_rate": learning_rate,
                      "schedule": lr_schedule},
        "metrics": ["mse", "r2 (paper eq. 1)"],
        "batch_size": (batch_size if train_data.kind in ("arrays", "tf.data")
                       else getattr(train_data.source, "batch_size", None)),
        "steps_per_epoch": steps_per_epoch,
        "epochs_requested": epochs,
        "epochs_completed": len(history),
        "resumed_from_epoch": start.initial_epoch if start.resumed else None,
        "stopped_early": bool(stopped_early),
        "early_stopping": {"monitor": monitor, "patience": patience, "min_delta": min_delta},
        "best_epoch": best_epoch,
        "best": best_row,
        "curves_summary": _curves_summary(history),
        "curves": {k: [row.get(k) for row in history]
                   for k in sorted({k for row in history for k in row})},
        "seed": seed,
        "mixed_precision": _precision_record(policy),
        "strategy": None if strategy is None else {
            "class": type(strategy).__name__, "replicas": int(strategy.num_replicas_in_sync)},
        "train_samples": train_data.n_samples,
        "validation_samples": None if val_data is None else val_data.n_samples,
        "seconds_this_call": round(seconds, 3),
        "seconds_per_epoch_this_call": (round(fit_seconds / epochs_run, 3)
                                        if epochs_run else None),
        "data": dict(provenance or {}),
        "log_csv": CSV_NAME,
        "tensorboard_logs": LOG_DIR,
    }
