"""Names shared by the report modules: display labels, bin edges, the error class."""

from __future__ import annotations

import numpy as np

from ..conventions import PIXEL_MASS_EDGES
from ..errors import PidocError

__all__ = ["ReportError", "CHUNK", "PIXEL_EDGES", "TIME_BIN_GYR", "MODEL_LABELS"]

#: Samples per zarr chunk of the predictions store (and per ``done`` marker).
CHUNK = 32
#: Edges of log10 pixel mass (Msun) of the aggregates' pixel histograms: 0.1 dex, -3 to 2.
PIXEL_EDGES = np.asarray(PIXEL_MASS_EDGES)
#: Width of the age groups of the aggregates, Gyr.
TIME_BIN_GYR = 1.0
#: Display names of the models (summary columns, report); keys are the ``model`` coordinate.
MODEL_LABELS = {"pidoc": "π-DOC", "constant_ml": "constant M/L", "gbt": "GBT"}


class ReportError(PidocError):
    """Inputs the evaluation cannot use, or a store that is not what it should be."""
