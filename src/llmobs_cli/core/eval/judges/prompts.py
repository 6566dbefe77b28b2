"""Judge criteria: versioned prompt files, rendering, the response schema and parsing.

A criterion is a YAML file (``configs/prompts/NAME.yaml``; users add their own through
``eval.criteria: {NAME: {prompt: PATH}}``) with ``name``, ``version``, ``applies_to``
(``all`` | ``retrieved`` | ``reference``), ``scale: {min, max, type}`` and the ``system`` and
``user`` templates. A Markdown file (``.md``) is accepted too: YAML front matter between
``---`` lines holds the keys and the body is the ``user`` template.

Templates see ``{input}`` (the logged system message and conversation), ``{response}``,
``{documents}`` and ``{reference}``; every value is escaped so logged text cannot close the
``<untrusted_data>`` tag it sits in. The SHA-256 of the criterion's templates, scale and
version (``prompt_hash``) goes into every judgment and into the cache key.

The judge answers ``{"reasoning": str, "score": int|number|bool}`` — reasoning first so the
model argues before it commits, score last with ``minimum``/``maximum`` declared. Parsing
accepts the shapes real endpoints send (code fences, ``"score": "4"``, ``rating``/``grade``,
``{"result": {...}}``, booleans for pass/fail scales) and rejects anything out of range as
malformed — a malformed answer is never turned into a low score.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml

from llmobs_cli.errors import ConfigError
from llmobs_cli.resources import configs_dir

BUILTIN = ("relevance", "faithfulness", "completeness")
AppliesTo = Literal["all", "retrieved", "reference"]


class MalformedOutput(ValueError):
    """The judge's answer is not a valid judgment (bad JSON, missing/out-of-range score)."""


@dataclass(frozen=True)
class Criterion:
    name: str
    version: str
    system: str
    user: str
    applies_to: AppliesTo = "all"
    scale_min: float = 1.0
    scale_max: float = 5.0
    scale_type: Literal["integer", "number", "boolean"] = "integer"
    description: str = ""
    source: str = ""

    @property
    def prompt_hash(self) -> str:
        blob = json.dumps(
            [
                self.name,
                self.version,
                self.system,
                self.user,
                self.applies_to,
                self.scale_min,
                self.scale_max,
                self.scale_type,
            ],
            sort_keys=True,
        )
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    def score_schema(self) -> dict[str, Any]:
        if self.scale_type == "boolean":
            return {"type": "boolean", "description": "true = passes the criterion"}
        return {
            "type": self.scale_type,
            "minimum": self.scale_min,
            "maximum": self.scale_max,
            "description": f"{self.scale_min:g} (worst) to {self.scale_max:g} (best)",
        }

    def json_schema(self) -> dict[str, Any]:
        """The strict JSON schema of the answer (reasoning first, score last)."""
        return {
            "type": "object",
            "properties": {
                "reasoning": {"type": "string", "description": "why, before the score"},
                "score": self.score_schema(),
            },
            "required": ["reasoning", "score"],
            "additionalProperties": False,
        }

    def response_format(self, mode: Literal["json_schema", "json_object"]) -> dict[str, Any]:
        if mode == "json_object":
            return {"type": "json_object"}
        return {
            "type": "json_schema",
            "json_schema": {
                "name": f"judgment_{self.name}",
                "strict": True,
                "schema": self.json_schema(),
            },
        }

    def json_instruction(self) -> str:
        """Told in the prompt when the endpoint cannot enforce the schema (json_object)."""
        if self.scale_type == "boolean":
            rng = "true or false"
        else:
            kind = "an integer" if self.scale_type == "integer" else "a number"
            rng = f"{kind} from {self.scale_min:g} to {self.scale_max:g}"
        return (
            'Answer with one JSON object and nothing else: {"reasoning": "<why>", '
            f'"score": <{rng}>}}.'
        )

    def normalise(self, raw: float) -> float:
        if self.scale_type == "boolean":
            return float(raw)
        return (raw - self.scale_min) / (self.scale_max - self.scale_min)

    def parse(self, content: str | None) -> tuple[float, float, str]:
        """``content`` → ``(normalised score, raw score, reasoning)``; MalformedOutput if bad."""
        obj = _load_json(content)
        reasoning = ""
        for key in ("reasoning", "explanation", "rationale", "reason"):
            if isinstance(obj.get(key), str):
                reasoning = obj[key]
                break
        raw: Any = None
        for key in ("score", "rating", "grade", "pass", "passed", "verdict"):
            if key in obj:
                raw = obj[key]
                break
        if raw is None:
            raise MalformedOutput("no score in the judge's answer")
        value = self._coerce(raw)
        return self.normalise(value), value, reasoning

    def _coerce(self, raw: Any) -> float:
        if self.scale_type == "boolean":
            if isinstance(raw, bool):
                return 1.0 if raw else 0.0
            if isinstance(raw, str) and raw.strip().lower() in (
                "true",
                "pass",
                "yes",
                "false",
                "fail",
                "no",
            ):
                return 1.0 if raw.strip().lower() in ("true", "pass", "yes") else 0.0
            if isinstance(raw, (int, float)) and raw in (0, 1):
                return float(raw)
            raise MalformedOutput(f"score {raw!r} is not a boolean")
        if isinstance(raw, bool):
            raise MalformedOutput(f"score {raw!r} is not a number")
        if isinstance(raw, str):
            m = re.fullmatch(r"\s*(-?\d+(?:\.\d+)?)\s*(?:/\s*\d+(?:\.\d+)?)?\s*", raw)
            if not m:
                raise MalformedOutput(f"score {raw!r} is not a number")
            raw = float(m.group(1))
        if not isinstance(raw, (int, float)) or raw != raw:
            raise MalformedOutput(f"score {raw!r} is not a number")
        value = float(raw)
        if value < self.scale_min or value > self.scale_max:
            raise MalformedOutput(f"score {value:g} outside {self.scale_min:g}..{self.scale_max:g}")
        if self.scale_type == "integer" and value != int(value):
            raise MalformedOutput(f"score {value:g} is not an integer")
        return value


_FENCE = re.compile(r"^\s*```(?:json|JSON)?\s*(.*?)\s*```\s*$", re.DOTALL)


def _load_json(content: str | None) -> dict[str, Any]:
    if content is None or not content.strip():
        raise MalformedOutput("empty answer")
    text = content.strip()
    m = _FENCE.match(text)
    if m:
        text = m.group(1)
    try:
        obj = json.loads(text)
    except json.JSONDecodeError:
        # Some models wrap the object in prose: take the outermost {...}.
        start, end = text.find("{"), text.rfind("}")
        if start < 0 or end <= start:
            raise MalformedOutput("the answer is not JSON") from None
        try:
            obj = json.loads(text[start : end + 1])
        except json.JSONDecodeError as exc:
            raise MalformedOutput("the answer is not JSON") from exc
    if isinstance(obj, dict) and len(obj) == 1:
        inner = next(iter(obj.values()))
        if isinstance(inner, dict) and not ({"score", "rating"} & obj.keys()):
            obj = inner  # {"result": {...}} / {"judgment": {...}}
    if not isinstance(obj, dict):
        raise MalformedOutput("the answer is not a JSON object")
    return obj


# --- loading -------------------------------------------------------------------------


def prompts_dir() -> Path:
    return configs_dir() / "prompts"


def load_criterion(
    path: str | Path, name: str | None = None, applies_to: AppliesTo | None = None
) -> Criterion:
    """Read a criterion file (.yaml/.yml, or .md with YAML front matter)."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{p}: cannot read judge prompt ({exc.strerror or exc})") from exc
    try:
        if p.suffix.lower() == ".md":
            data, body = _front_matter(text, p)
            data.setdefault("user", body)
        else:
            data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{p}: invalid YAML in judge prompt") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{p}: a judge prompt must be a mapping of keys")
    for key in ("user",):
        if not isinstance(data.get(key), str) or not data[key].strip():
            raise ConfigError(f"{p}: {key}: missing prompt template")
    scale = data.get("scale") or {}
    if not isinstance(scale, dict):
        raise ConfigError(f"{p}: scale: expected {{min, max}}")
    kind = str(scale.get("type", "integer"))
    if kind not in ("integer", "number", "boolean"):
        raise ConfigError(f"{p}: scale.type: expected integer, number or boolean (got {kind!r})")
    lo = float(scale.get("min", 0 if kind == "boolean" else 1))
    hi = float(scale.get("max", 1 if kind == "boolean" else 5))
    if hi <= lo:
        raise ConfigError(f"{p}: scale: max must be greater than min")
    scope = applies_to or data.get("applies_to", "all")
    if scope not in ("all", "retrieved", "reference"):
        raise ConfigError(f"{p}: applies_to: expected all, retrieved or reference (got {scope!r})")
    for placeholder in re.findall(r"\{(\w+)\}", data["user"] + str(data.get("system", ""))):
        if placeholder not in ("input", "response", "documents", "reference"):
            raise ConfigError(
                f"{p}: unknown placeholder {{{placeholder}}} (use {{input}}, {{response}}, "
                "{documents}, {reference})"
            )
    return Criterion(
        name=str(name or data.get("name") or p.stem),
        version=str(data.get("version", "1")),
        system=str(data.get("system", "")),
        user=str(data["user"]),
        applies_to=scope,
        scale_min=lo,
        scale_max=hi,
        scale_type=kind,  # type: ignore[arg-type]
        description=str(data.get("description", "")),
        source=str(p),
    )


def _front_matter(text: str, p: Path) -> tuple[dict[str, Any], str]:
    if not text.startswith("---"):
        return {}, text
    parts = text.split("\n---", 1)
    if len(parts) != 2:
        raise ConfigError(f"{p}: unterminated front matter (expected a closing ---)")
    head = yaml.safe_load(parts[0].lstrip("-\n")) or {}
    if not isinstance(head, dict):
        raise ConfigError(f"{p}: front matter must be a mapping")
    return head, parts[1].split("\n", 1)[1] if "\n" in parts[1] else ""


def builtin_criterion(name: str) -> Criterion:
    return load_criterion(prompts_dir() / f"{name}.yaml")


# --- rendering -----------------------------------------------------------------------

_TAG = re.compile(r"<(/?)(untrusted_data|documents|conversation|response|reference)", re.I)


def escape(text: str) -> str:
    """Neutralise our own tags inside logged text so it cannot break out of the data block."""
    return _TAG.sub(lambda m: f"<{m.group(1)}\u200b{m.group(2)}", text)


def render(criterion: Criterion, values: dict[str, str]) -> list[dict[str, str]]:
    """The chat messages for one judgment (values are escaped here)."""
    safe = {k: escape(v) for k, v in values.items()}

    def fill(template: str) -> str:
        return re.sub(r"\{(\w+)\}", lambda m: safe.get(m.group(1), ""), template)

    messages = []
    if criterion.system.strip():
        messages.append({"role": "system", "content": fill(criterion.system).strip()})
    messages.append({"role": "user", "content": fill(criterion.user).strip()})
    return messages
