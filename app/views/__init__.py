"""The dashboard's tabs: :class:`ExploreView`, :class:`TestSetView`, :class:`ObservationView`."""

from .explore import ExploreView
from .observe import ObservationView
from .testset import TestSetView

__all__ = ["ExploreView", "ObservationView", "TestSetView"]
