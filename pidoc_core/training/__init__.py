"""Training of the pi-DOC networks: fit, resumable checkpoints, curves and a PiDOC export.

:func:`fit` trains one of the two networks of Chardin & Bianchini (2021, MNRAS 504, 5656, Sect. 3)
the way the paper did and leaves behind everything a long run needs:

- the paper's optimiser and loss per network: ``'mass'`` (the encoder-decoder, standardised log10
  flux map -> standardised log10 mass map) with Adam at 10^-2.5 and the VGG16 perceptual loss of
  Appendix A; ``'age-distance'`` (the CNN, flux map -> standardised ``[distance, age]``) with Adam
  at 10^-4 and the mean squared error;
- the paper's monitoring metrics (Sect. 3.2, Fig. 3): MSE and the eq. (1) R^2 on the training and
  validation sets, every epoch, in a CSV log (``keras.callbacks.CSVLogger``) and TensorBoard event
  files (``epoch_loss``, ``epoch_mse``, ``epoch_r2`` under ``logs/train`` and
  ``logs/validation``);
- a checkpoint after every epoch (weights, optimiser state, random-generator states, epoch number,
  early-stopping state and the curves so far), written atomically, from which a run killed at any
  moment resumes at its last completed epoch;
- early stopping on the validation plateau with the best weights restored;
- at the end, a :class:`pidoc_core.model.PiDOC` directory (:meth:`~pidoc_core.model.PiDOC.save`)
  whose manifest has a ``training`` entry: loss and VGG source, learning rate, epochs, best
  validation metrics, curves and the data provenance given by the caller.

Layout of ``out_dir``::

    checkpoints/epoch-00012.npz   last checkpoints (``keep_checkpoints`` of them)
    training_log.csv              one row per epoch: epoch, loss, mse, r2, val_loss, val_mse, val_r2
    logs/train, logs/validation   TensorBoard event files
    model/                        the PiDOC export (manifest.json + <network>.weights.h5)

Data are standardised already (the network's input and target units); pass the constants used in
``standardisation`` so that the export converts physical units. Training data may be ``(x, y)``
arrays (shuffled here, per epoch, from ``seed``), a :class:`keras.utils.PyDataset` (it batches and
shuffles itself) or a ``tf.data.Dataset`` of batches.

Several GPUs are used through ``tf.distribute.MirroredStrategy`` (``strategy='auto'``); mixed
precision (``mixed_float16``) is an option, with the network's output cast to float32 and the
perceptual loss kept in float32.

Modules: :mod:`.fit` (:func:`fit`, :class:`TrainingResult`), :mod:`.data` (:class:`ArrayBatches`,
:func:`array_pipeline`), :mod:`.checkpoints`, :mod:`.callbacks`, :mod:`.options` (architecture,
loss, learning rate, strategy, precision), :mod:`.cli` (``pidoc train``). Importing this package
imports Keras.
"""

from __future__ import annotations

from ._common import (BUILDERS, CHECKPOINT_DIR, CSV_NAME, EXPORT_DIR, KINDS, LOG_DIR,
                      LR_SCHEDULES, PAPER_LEARNING_RATES, PAPER_LOSSES, TrainingError)
from .checkpoints import latest_checkpoint, read_checkpoint_metadata
from .cli import add_train_arguments, run_train
from .data import ArrayBatches, array_pipeline
from .fit import TrainingResult, fit
from .options import _make_loss, _precision_policy  # noqa: F401 - used by tests

__all__ = [
    "KINDS",
    "PAPER_LEARNING_RATES",
    "PAPER_LOSSES",
    "CHECKPOINT_DIR",
    "CSV_NAME",
    "LOG_DIR",
    "EXPORT_DIR",
    "TrainingError",
    "TrainingResult",
    "ArrayBatches",
    "array_pipeline",
    "fit",
    "latest_checkpoint",
    "read_checkpoint_metadata",
    "add_train_arguments",
    "run_train",
]
