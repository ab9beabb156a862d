"""A fix to BokehJS installed in every page of the dashboard: style sheets rewritten only when
their text changes.

BokehJS 3.9 positions each renderer's DOM element on every paint by replacing the text of an
inline style sheet (``InlineStyleSheet._update`` sets ``textContent``), even when the text is the
same. Every such write invalidates the page's styles, and the next visual property the renderer
reads (BokehJS reads CSS variables with ``getComputedStyle``) forces the browser to recompute
them: one style recalculation per renderer and paint. Skipping writes of unchanged text removes
them and changes nothing else (the sheet already holds that text). Measured in headless Chromium
(``benchmarks/RESULTS.md``): the time in ``getPropertyValue`` per Explore move halves, and a move
takes ~45 ms less.
"""

from __future__ import annotations

from bokeh.models import CustomJS

__all__ = ["STYLE_SHEET_FIX_JS", "install_browser_fixes"]

#: Replaces ``InlineStyleSheet.prototype._update`` once per page and sets
#: ``window.pidoc_style_sheet_fix`` (true: installed; false: this BokehJS has no such method, and
#: the page runs unchanged rather than failing).
STYLE_SHEET_FIX_JS = """
let proto = null;
try {
  proto = Bokeh.require("core/dom").InlineStyleSheet.prototype;
} catch (err) {
  proto = null;
}
if (proto != null && typeof proto._update === "function") {
  if (!proto._pidoc_unchanged_text_skipped) {
    const update = proto._update;
    proto._update = function (css) {
      if (this.el.textContent !== css) {
        update.call(this, css);
      }
    };
    proto._pidoc_unchanged_text_skipped = true;
  }
  window.pidoc_style_sheet_fix = true;
} else {
  window.pidoc_style_sheet_fix = false;
}
"""


def install_browser_fixes(doc) -> None:
    """Run :data:`STYLE_SHEET_FIX_JS` in the browser once ``doc`` is shown (its
    ``document_ready`` event); nothing without a document (e.g. outside a server)."""
    if doc is not None:
        doc.js_on_event("document_ready", CustomJS(code=STYLE_SHEET_FIX_JS))
