"""The package's one exception base class.

Every error pi-DOC raises for a bad input, file or setting derives from :class:`PidocError`, itself
a :class:`ValueError`, so ``except PidocError`` catches them all and older ``except ValueError``
code keeps working. The specific classes live beside the code that raises them:

========================================================  ==========================================
class                                                     raised for
========================================================  ==========================================
:class:`pidoc_core.snapshot.SnapshotError`                a snapshot table (readers: ``ReaderError``)
:class:`pidoc_core.imager.ObservationError`               mock observation settings
:class:`pidoc_core.model.ModelError`                      model files, manifests, input maps
:class:`pidoc_core.evaluation.EvaluationError`            evaluation inputs and options
:class:`pidoc_core.report.ReportError`                    stored predictions and the report
:class:`pidoc_core.observations.ObservationInputError`    observed images and catalogue rows
========================================================  ==========================================

``dataset.DatasetError`` and ``training.TrainingError`` are to derive from it too.
"""

from __future__ import annotations

__all__ = ["PidocError"]


class PidocError(ValueError):
    """Base class of pi-DOC's errors: a value, file or setting pi-DOC cannot use.

    The message names the argument, file or column and says why; command-line tools print it and
    exit with status 2 instead of showing a traceback.
    """
