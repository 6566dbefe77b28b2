"""Registry of the drift tests: one module per test, registered by name.

Each test compares a *baseline* and a *current* sample of one feature and returns a
:class:`TestResult` (statistic, design-based p-value, effect size and extras). A test
module registers itself with :func:`register`; the orchestration looks tests up by the
feature's kind through :data:`BY_KIND` and never imports a test module by name, so a new
test is one new file plus one line in :data:`_MODULES`.

Every statistic is weighted (``w = 1/sample_rate``) and every p-value is design-based:
its null distribution comes from the per-row (or per-bin) sums of ``w`` and ``w²``, not
from a count of rows, so that a route whose sampling rate changed between the windows
does not look like drift (``docs/drift.md``, "Tests and p-values").
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class TestResult:
    """Outcome of one two-sample test."""

    test: str
    statistic: float
    p_value: float
    effect_size: float
    effect_name: str
    extras: dict[str, Any] = field(default_factory=dict)

    __test__ = False  # not a pytest class


TestFn = Callable[..., TestResult]

TESTS: dict[str, TestFn] = {}
#: The test used for each feature kind.
BY_KIND: dict[str, str] = {}


def register(name: str, kinds: tuple[str, ...] = ()) -> Callable[[TestFn], TestFn]:
    """Decorator: register ``fn`` as test ``name`` and the default for ``kinds``."""

    def deco(fn: TestFn) -> TestFn:
        TESTS[name] = fn
        for k in kinds:
            BY_KIND[k] = name
        return fn

    return deco


_CONTROLLER: Any = None


def single_thread_blas() -> Any:
    """Context manager limiting BLAS to one thread for small dense algebra.

    On a busy machine OpenBLAS threads turn a 1 ms decomposition into a second. The
    controller is built once: scanning the loaded libraries costs ~50 ms.
    """
    global _CONTROLLER
    if _CONTROLLER is None:
        from threadpoolctl import ThreadpoolController

        _CONTROLLER = ThreadpoolController()
    return _CONTROLLER.limit(limits=1, user_api="blas")


def rng_for(seed: int, *parts: object) -> np.random.Generator:
    """A generator seeded by ``seed`` and a label, so each test draws its own stream."""
    import zlib

    label = "/".join(str(p) for p in parts).encode()
    return np.random.default_rng([seed, zlib.crc32(label)])


_MODULES = ("ks", "wald_shares", "slope")
for _m in _MODULES:
    importlib.import_module(f"{__name__}.{_m}")

__all__ = ["BY_KIND", "TESTS", "TestResult", "register", "rng_for", "single_thread_blas"]
