"""The dashboard's tabs: :class:`ExploreView`, :class:`TestSetView`, :class:`ObservationView`;
:func:`install_browser_fixes` for every page."""

from .browser_fixes import install_browser_fixes
from .explore import ExploreView
from .observe import ObservationView
from .testset import TestSetView

__all__ = ["ExploreView", "ObservationView", "TestSetView", "install_browser_fixes"]
