"""``llmobs plan``'s link with ``llmobs.yaml``: options from it, and the plan written back.

**Reading.** The judge model and its prices (``judge.*_price_per_million``, else the price
table, as ``llmobs eval`` does), the LLM criteria eval will run (``eval.evaluators`` and
``eval.criteria``; their prompt text sizes the cost estimate), high-stakes routes
(``routes.R.stakes: high``), ``eval.alpha`` and ``eval.min_drop``.

**Writing** (``--write-config``) edits the file where ``llmobs eval`` and ``llmobs sample``
already read their settings, so both follow the plan with no new option:

* ``routes.R.eval_budget`` — the traces eval judges per route and window. Eval judges the
  same budget in the current and the baseline window, so ``llmobs eval --current W
  --baseline W`` with this budget has the judgments the plan's MDE assumes;
* ``routes.R.keep_rate`` — raised to the route's eval rate where storage is too thin to
  judge at that rate (``llmobs sample`` reads it; it is never lowered);
* ``eval.min_drop`` — lowered to the plan's recommendation when it is larger, so eval's
  practical-size floor does not overrule a significant drop of the planned size.

High-stakes routes get no budget (eval judges them at 100 % anyway). The edit is a
round trip through ruamel.yaml: comments, key order and unrelated keys stay as they were.
The result is validated as a configuration before it replaces the file atomically.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from llmobs_cli.core import atomic
from llmobs_cli.core.eval.rates import CriterionCost, PlanOptions, RatePlan, template_tokens
from llmobs_cli.core.record.config import Config, parse_config
from llmobs_cli.errors import ConfigError, UsageError

NEW_FILE_HEADER = (
    "# llmobs.yaml — written by `llmobs plan --write-config`; edit freely, comments are kept.\n"
)


def judge_prices(cfg: Config, model: str) -> tuple[float | None, float | None]:
    """USD per million input and output tokens of the judge ``model``."""
    from llmobs_cli.core.report import pricing

    j = cfg.judge
    pin, pout = j.input_price_per_million, j.output_price_per_million
    if pin is None or pout is None:
        entries = pricing.build_price_table(
            config_file_path=cfg.prices.file,
            config_models=cfg.prices.models,
            config_source=cfg.source or "llmobs.yaml",
        ).resolve(model, None)
        if entries:
            pin = entries[-1].input if pin is None else pin
            pout = entries[-1].output if pout is None else pout
    return pin, pout


def criteria_costs(cfg: Config) -> tuple[tuple[CriterionCost, ...], bool]:
    """The LLM criteria eval runs (with their prompt sizes) and whether ``reference`` runs:
    eval's own merge of ``eval.evaluators`` and ``eval.criteria`` decides."""
    from llmobs_cli.core.eval.options import EvalOptions, resolve_criteria

    eo = EvalOptions.from_config(cfg)
    crits = resolve_criteria(eo.evaluators, eo.criteria)
    out = tuple(
        CriterionCost(name, template_tokens(c.system, c.user), str(c.applies_to))
        for name, c in crits.items()
    )
    if not out:
        raise UsageError(
            "eval.evaluators: no LLM judge criterion configured, so there is nothing to plan"
        )
    return out, "reference" in eo.evaluators


def options_from_config(cfg: Config, *, judge_model: str | None = None, **kw: Any) -> PlanOptions:
    """:class:`PlanOptions` from ``llmobs.yaml`` with command-line values over it
    (``None`` values in ``kw`` mean "not given")."""
    model = judge_model or cfg.judge.model
    pin, pout = judge_prices(cfg, model)
    criteria, reference = criteria_costs(cfg)
    given = {k: v for k, v in kw.items() if v is not None}
    given.setdefault("alpha", cfg.eval.alpha)
    return PlanOptions(
        judge_model=model,
        price_in=pin,
        price_out=pout,
        high_stakes=frozenset(cfg.high_stakes_routes()),
        criteria=criteria,
        reference=reference,
        current_min_drop=cfg.eval.min_drop,
        keep_rates={r: rc.keep_rate for r, rc in cfg.routes.items() if rc.keep_rate is not None},
        **given,
    )


# --- writing ---------------------------------------------------------------------------


def _yaml() -> Any:
    from ruamel.yaml import YAML

    y = YAML(typ="rt")
    y.preserve_quotes = True
    y.width = 4096  # never re-wrap a user's long lines
    y.indent(mapping=2, sequence=4, offset=2)
    # ruamel writes None as an empty value; keep the explicit `null` the file had.
    y.representer.add_representer(
        type(None), lambda r, _d: r.represent_scalar("tag:yaml.org,2002:null", "null")
    )
    return y


def config_edits(plan: RatePlan, cfg: Config) -> list[tuple[str, Any]]:
    """The ``(key path, value)`` pairs ``--write-config`` sets, in order."""
    edits: list[tuple[str, Any]] = []
    for r in plan.routes:
        if r.high_stakes:
            continue
        edits.append((f"routes.{r.route}.eval_budget", int(r.eval_budget)))
        have = cfg.routes.get(r.route)
        keep = have.keep_rate if have is not None else None
        needs = r.eval_rate
        if (keep is not None and keep < needs) or (keep is None and not r.storage_ok):
            edits.append((f"routes.{r.route}.keep_rate", float(f"{min(1.0, needs):.6g}")))
    rec = plan.recommended_min_drop
    if rec is not None and cfg.eval.min_drop > rec:
        edits.append(("eval.min_drop", rec))
    return edits


def write_config(path: str | Path, plan: RatePlan, cfg: Config) -> list[tuple[str, Any]]:
    """Apply :func:`config_edits` to ``path`` (created when missing); returns the edits."""
    from ruamel.yaml import YAMLError  # type: ignore[attr-defined]
    from ruamel.yaml.comments import CommentedMap

    p = Path(path)
    y = _yaml()
    if p.exists():
        try:
            text = p.read_text(encoding="utf-8")
            doc = y.load(text)
        except (OSError, UnicodeDecodeError, YAMLError) as exc:
            raise ConfigError(f"{p}: cannot read configuration ({exc})") from exc
        if doc is None:
            doc = CommentedMap()
        if not isinstance(doc, dict):
            raise ConfigError(f"{p}: expected a mapping of sections at the top level")
        header = ""
    else:
        doc = CommentedMap()
        header = NEW_FILE_HEADER
    edits = config_edits(plan, cfg)
    for key, value in edits:
        _set(doc, key.split("."), value)
    buf = io.StringIO()
    y.dump(doc, buf)
    out = header + buf.getvalue()
    import yaml

    parse_config(yaml.safe_load(out), str(p))  # never write a file eval would reject
    atomic.write_text(p, out)
    return edits


def _set(doc: Any, keys: list[str], value: Any) -> None:
    from ruamel.yaml.comments import CommentedMap

    node = doc
    for k in keys[:-1]:
        child = node.get(k)
        if not isinstance(child, dict):
            child = CommentedMap()
            node[k] = child
        elif getattr(child, "fa", None) is not None and child.fa.flow_style() and not child:  # type: ignore[attr-defined]
            child.fa.set_block_style()  # type: ignore[attr-defined]  # `routes: {}` → block
        node = child
    node[keys[-1]] = value
