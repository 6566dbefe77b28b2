"""Self-contained offline HTML: the dashboard, and the HTML of ``report``, ``eval`` and
``drift``.

Every page is one file with no external resource: the Plotly bundle
(:func:`plotly.offline.get_plotlyjs`), the CSS and the page script are inlined once, and
all figures are built in the browser from one ``<script type="application/json">`` block.

Contract of the public functions (all return the complete HTML document as ``str``):

* :func:`report_html` — a ``llmobs report`` JSON document (contract keys ``window``,
  ``overall``, ``groups``, ``buckets``, ``alerts``): headline cards, latency and cost over
  time per group (when ``buckets`` are present), group tables.
* :func:`eval_html` — an ``llmobs eval``/``eval summarize`` JSON document (``groups``,
  ``regressions``, ``judge``, optional ``buckets``): scores with 95 % bands over time,
  regressions marked and tabled.
* :func:`drift_html` — an ``llmobs drift`` JSON document (``current``, ``baseline``,
  ``features``, ``drifted``, optional per-feature distributions): the alerts table and,
  for each drifted feature, baseline vs current distributions.
* :func:`dashboard_html` — everything above plus releases, from the dict produced by
  :func:`llmobs_cli.core.dashboard.build.build` (``DashboardResult.as_dict()``).

Safety: trace text (routes, models, releases, customers, prompts, categories...) is
untrusted. It is only ever placed in the JSON data block, escaped so that ``</script>``,
``<!--`` and line separators cannot end or confuse the block (:func:`script_json`); the
page script puts it in the DOM with ``textContent`` and gives it to Plotly entity-escaped.
A Content-Security-Policy allows only the page's own inline scripts (by hash), so even a
markup injection could not run a script, load an image or reach the network.
The package is split by concept: :mod:`.page` (the document shell and the escaped data
block), :mod:`.fmt` (formatting helpers), one module per view (:mod:`.ops`, :mod:`.quality`,
:mod:`.drift`, :mod:`.releases`) and :mod:`.pages` (the public renderers).
"""

from __future__ import annotations

from llmobs_cli.render.html.drift import drift_view
from llmobs_cli.render.html.fmt import key_label
from llmobs_cli.render.html.ops import MAX_KEYS, OTHER, marker_view, ops_series
from llmobs_cli.render.html.page import _plotly_js, page, script_json
from llmobs_cli.render.html.pages import (
    dashboard_html,
    dashboard_view,
    drift_html,
    eval_html,
    report_html,
)
from llmobs_cli.render.html.quality import quality_view
from llmobs_cli.render.html.releases import releases_view

__all__ = [
    "MAX_KEYS",
    "OTHER",
    "_plotly_js",
    "dashboard_html",
    "dashboard_view",
    "drift_html",
    "drift_view",
    "eval_html",
    "key_label",
    "marker_view",
    "ops_series",
    "page",
    "quality_view",
    "releases_view",
    "report_html",
    "script_json",
]
