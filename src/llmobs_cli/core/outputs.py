"""Where an output may go: never onto, into or around an input; never over files llmobs
did not write.

Every command that takes ``-o`` checks its target here before doing any work:

* a file output must not be an input, must not lie inside an input directory (it would
  be read back as traces by the next run) and must not be an existing directory;
* a partition tree (``convert --partition-by date``) must not be an input, contain an
  input or lie inside one, and an existing non-empty folder must be an llmobs partition
  tree unless ``overwrite`` is given.

A folder counts as an llmobs partition tree when it holds the :data:`MANIFEST` that
:mod:`llmobs_cli.core.sinks` writes, or when everything in it is a ``date=YYYY-MM-DD``
partition folder of Parquet files (what llmobs wrote before the manifest existed).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from llmobs_cli.errors import UsageError

#: The file that marks a folder as a partition tree written by llmobs.
MANIFEST = "_llmobs.json"
MANIFEST_KIND = "llmobs-partitions"
PARTITION_DIR = re.compile(r"^date=\d{4}-\d{2}-\d{2}$")


def _resolved(path: Path) -> Path:
    return Path(path).expanduser().resolve()


def _inputs(inputs: Iterable[str | Path]) -> list[Path]:
    return [_resolved(Path(p)) for p in inputs]


def input_paths(given: Iterable[str | Path], expanded: Iterable[Path]) -> list[Path]:
    """What an output must keep clear of: the paths as given (a directory of JSONL files
    included) and the files they expanded to."""
    out = [Path(p) for p in given if Path(p).exists()]
    return out + [p for p in expanded if p not in out]


def check_file_output(
    out: Path, inputs: Sequence[str | Path] = (), *, example: str = "traces.parquet"
) -> None:
    """Refuse a file output that is a directory, an input, or inside an input directory.

    ``inputs`` are the input paths (files and directories) of the command; ``example`` is
    the file name suggested when ``out`` is a directory.
    """
    out = Path(out)
    if str(out) in ("", ".", "..") or out.is_dir():
        raise UsageError(
            f"{out}: is a directory; give a file name such as {(out / example).as_posix()}"
        )
    target = _resolved(out)
    for src in _inputs(inputs):
        if target == src:
            raise UsageError(f"{out}: is also an input; write the output to another path")
        if src.is_dir() and target.is_relative_to(src):
            raise UsageError(
                f"{out}: is inside the input directory {src}; the next run would read it "
                "back as traces — write it elsewhere"
            )


def check_tree_output(out: Path, inputs: Sequence[str | Path], *, overwrite: bool) -> None:
    """Refuse a partition-tree output that overlaps an input or holds other people's files."""
    out = Path(out)
    target = _resolved(out)
    for src in _inputs(inputs):
        if target == src:
            raise UsageError(f"{out}: is also an input; write the tree to another folder")
        if src.is_relative_to(target):
            raise UsageError(f"{out}: contains the input {src}; write the tree to another folder")
        if src.is_dir() and target.is_relative_to(src):
            raise UsageError(
                f"{out}: is inside the input directory {src}; write the tree elsewhere"
            )
    if not target.exists():
        return
    if not target.is_dir():
        raise UsageError(f"{out}: exists and is not a directory; --partition-by writes a folder")
    if overwrite:
        return
    foreign = foreign_entries(target)
    if foreign:
        shown = ", ".join(sorted(foreign)[:3]) + (" …" if len(foreign) > 3 else "")
        raise UsageError(
            f"{out}: is a non-empty folder that is not an llmobs partition tree "
            f"(holds {shown}); choose an empty or new folder, or pass --overwrite to write "
            "the partitions into it (other files are kept)"
        )


def foreign_entries(folder: Path) -> list[str]:
    """Entries of ``folder`` that make it not an llmobs partition tree ([] when it is one)."""
    if (folder / MANIFEST).is_file() and read_manifest(folder) is not None:
        return []
    out: list[str] = []
    for entry in folder.iterdir():
        if entry.is_dir() and PARTITION_DIR.match(entry.name):
            out.extend(
                f"{entry.name}/{f.name}"
                for f in entry.iterdir()
                if not (f.is_file() and f.name.endswith(".parquet"))
            )
        else:
            out.append(entry.name)
    return out


def read_manifest(folder: Path) -> dict[str, Any] | None:
    """The manifest of a tree llmobs wrote, or None (absent or not ours)."""
    try:
        data = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("kind") != MANIFEST_KIND:
        return None
    return data
