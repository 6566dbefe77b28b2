"""Mergeable partials: the one computation model behind every population figure.

A command turns each batch of rows into a small frame of *partials* (:mod:`.compute`),
merges partial frames by a plain group-by (:mod:`.merge`) and turns the merged frame into
figures once (:mod:`.finalize`). Quantiles come from fixed log-bucket histograms
(:mod:`.sketch`). The column names of a partial frame say how it merges, so any engine
that can group and sum (Polars here; Spark or Ray later) merges it the same way:

* ``k:*`` columns are keys (part, level, group values, sketch bin, session hash);
* ``min:*`` / ``max:*`` columns merge by min / max;
* every other column is summed.
"""

from llmobs_cli.core.partials.compute import PartialSpec, partials
from llmobs_cli.core.partials.merge import Merger, merge
from llmobs_cli.core.partials.sketch import ALPHA, bin_expr, bin_value, sketch_quantiles

__all__ = [
    "ALPHA",
    "Merger",
    "PartialSpec",
    "bin_expr",
    "bin_value",
    "merge",
    "partials",
    "sketch_quantiles",
]
