"""``llmobs review export|import``: the human review queue and its labels.

``export EVALS.parquet -o queue`` writes ``queue.jsonl`` and ``queue.csv`` (high-stakes
calls, borderline judge scores, disagreements); reviewers fill ``label`` (0–1 or
pass/fail). ``import LABELS --evals EVALS.parquet [-o OUT.parquet]`` adds the labels as
``human`` judgments (in place unless ``-o``) and prints judge–human agreement (Cohen's κ,
confusion matrix). Thin shell over :mod:`llmobs_cli.core.eval.review`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from llmobs_cli.cli import common


def register(app: typer.Typer) -> None:
    sub = typer.Typer(
        name="review",
        help="Human review: export a queue of judgments to label, import the labels back.",
        no_args_is_help=True,
    )
    sub.command("export", help="Write the review queue (JSONL and CSV) from an evals file.")(
        export_cmd
    )
    sub.command("import", help="Read labels back as human judgments; report agreement.")(import_cmd)
    app.add_typer(sub, name="review")


def export_cmd(
    evals: Annotated[
        Path, typer.Argument(help="evals.parquet written by llmobs eval -o.", show_default=False)
    ],
    output: Annotated[
        Path,
        typer.Option(
            "--output", "-o", help="Queue path: writes STEM.jsonl and STEM.csv.", show_default=False
        ),
    ],
    limit: Annotated[
        int | None,
        typer.Option(
            "--limit", min=1, help="At most N items (high-stakes first).", show_default=False
        ),
    ] = None,
    random: Annotated[
        int,
        typer.Option(
            "--random",
            min=0,
            help="Also draw a random sample of about N judged items per route x evaluator "
            "(hash-selected, inclusion probability recorded); their labels correct the "
            "judge's scores in eval summarize. 0 turns it off.",
        ),
    ] = 30,
    config: common.ConfigOpt = None,
) -> None:
    from llmobs_cli.core.eval.judgments import read_evals
    from llmobs_cli.core.eval.review import build_queue, write_queue

    cfg = common.config_from(config)
    stem = (
        output.with_suffix("") if output.suffix.lower() in (".jsonl", ".csv", ".json") else output
    )
    for target in (stem.with_suffix(".jsonl"), stem.with_suffix(".csv")):
        common.check_output(target, (), evals)
    frame = read_evals(evals)
    queue = build_queue(
        frame,
        high_stakes=cfg.high_stakes_routes(),
        borderline=cfg.eval.borderline,
        disagreement=cfg.eval.self_consistency.disagreement_threshold,
        limit=limit,
        random_per_group=random,
    )
    jpath, cpath = write_queue(queue, output)
    counts = queue["reasons"].str.split(";").explode().value_counts(sort=True)
    why = ", ".join(f"{r['count']} {r['reasons']}" for r in counts.iter_rows(named=True))
    common.warn(
        f"wrote {queue.height} item(s) to {jpath} and {cpath}" + (f" ({why})" if why else "")
    )


def import_cmd(
    labels: Annotated[
        Path, typer.Argument(help="The labelled queue (.jsonl or .csv).", show_default=False)
    ],
    evals: Annotated[
        Path, typer.Option("--evals", help="evals.parquet the queue came from.", show_default=False)
    ],
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            help="Write the evals with human rows here (default: update --evals).",
            show_default=False,
        ),
    ] = None,
    fmt: common.FormatOpt = common.Format.table,
) -> None:
    from llmobs_cli.core import atomic
    from llmobs_cli.core.eval.judgments import read_evals
    from llmobs_cli.core.eval.review import import_labels, read_labels
    from llmobs_cli.core.eval.summary import summarize
    from llmobs_cli.render import evaluate as render

    frame = read_evals(evals)
    lab = read_labels(labels)
    out, imported, unmatched = import_labels(frame, lab)
    if output is not None:
        common.check_output(output, (), labels)
    target = output or evals
    atomic.write_parquet(target, out)
    common.warn(
        f"imported {imported} label(s) into {target}"
        + (f"; {unmatched} matched no judgment" if unmatched else "")
    )
    summary = summarize(out, by=["route"])
    if fmt == common.Format.json:
        common.write_stdout(
            render.to_json(
                {"imported": imported, "unmatched": unmatched, "agreement": summary.agreement}
            )
        )
    else:
        common.write_stdout(render.agreement(summary, fmt.value))
