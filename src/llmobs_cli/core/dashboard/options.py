"""Dashboard options from ``llmobs.yaml``'s ``dashboard`` section and per-call overrides,
in one place for the CLI and the Python API."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from llmobs_cli.core.dashboard.build import DashboardOptions
    from llmobs_cli.core.ingest.readers import ReadOptions
    from llmobs_cli.core.record.config import Config


def dashboard_options(
    cfg: Config,
    *,
    title: str | None = None,
    bucket: str | None = None,
    drift: bool = True,
    current: str | None = None,
    baseline: str | None = None,
    evals: str | Path | None = None,
    since: str | None = None,
    until: str | None = None,
    now: str | None = None,
    on_error: Literal["fail", "skip"] = "fail",
    fmt: str | None = None,
    read_options: ReadOptions | None = None,
    prices: Sequence[str | Path] = (),
    memory: int | None = None,
    engine: Any = None,
) -> DashboardOptions:
    """Each argument left ``None`` takes its ``dashboard.*`` value; ``drift=False`` leaves the
    drift section out even when ``dashboard.drift`` is on. ``memory`` (bytes) bounds the
    batches; ``engine`` (:class:`llmobs_cli.core.engines.EngineSettings`) says where the
    report views' partials run."""
    from llmobs_cli.core.dashboard.build import DashboardOptions

    dc = cfg.dashboard
    return DashboardOptions(
        title=title or dc.title,
        bucket=bucket or dc.bucket,  # type: ignore[arg-type]
        drift=dc.drift and drift,
        drift_current=current or dc.drift_current,
        drift_baseline=baseline or dc.drift_baseline,
        drift_windows_given=current is not None or baseline is not None,
        evals=Path(evals) if evals is not None else None,
        since=since,
        until=until,
        now=now,
        release_window_days=dc.release_window_days,
        on_error=on_error,
        fmt=fmt,
        read_options=read_options,
        prices=list(prices),
        memory=memory,
        engine=engine,
    )
