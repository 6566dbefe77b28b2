"""Where the per-batch partial function runs: on this machine, on Spark, or on Ray.

Every aggregating command computes its figures as *partials* (:mod:`core.partials`): a
pure function turns each batch of canonical rows into a small frame, frames merge by a
group-by-sum, and one local ``finalize`` turns the merged frame into figures. An engine
only runs the first two steps:

* ``local`` — llmobs' own streaming reader, batch by batch on this machine;
* ``spark`` — Spark reads the Parquet (window and column pushdown), runs the partial
  function in ``mapInArrow`` on its executors and merges with ``groupBy().agg``;
* ``ray`` — Ray Data reads the Parquet, runs the partial function in ``map_batches`` and
  the driver merges the small frames as they arrive.

Duplicate span ids are dropped by the local rule on every engine (:mod:`.dedupe`: a key
per row and a hash-partitioned shuffle on the cluster engines). ``llmobs sample`` runs on
the cluster engines too (:mod:`.sampling`), written by the engine's Parquet writer.

The partial function and the merge are the same code on every engine, so the merged frame
— and every figure finalized from it — is the same too (sums up to float summation order;
sketch quantiles identical because the bins are).
"""

from __future__ import annotations

from dataclasses import dataclass

ENGINES: tuple[str, ...] = ("local", "spark", "ray")


@dataclass(frozen=True)
class EngineSettings:
    """Which engine and how to reach it (``None``: the engine's own default)."""

    name: str = "local"
    spark_master: str | None = None
    spark_remote: str | None = None
    ray_address: str | None = None
    #: ``$JAVA_HOME`` as the caller read it (Spark finds Java there when it is not on PATH)
    java_home: str | None = None
