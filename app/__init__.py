"""π-DOC Explorer's Panel dashboard, as an importable package.

``panel serve app/dashboard.py`` (``make serve``) serves it; each tab is a view of
:mod:`app.views`, a :class:`param.Parameterized` whose parameters generate its widgets, calling
:mod:`pidoc_core.exploration` and :mod:`pidoc_core.plots` for every number and figure.
"""

__all__ = ["views"]
