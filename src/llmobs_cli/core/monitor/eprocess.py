"""The evidence against "no change" accumulated over nights, and when it is enough.

Each night ``t`` gives, per monitored quantity and direction, a standardised excess
``z_t = (x_t − bound) / se_t`` of the night's estimate beyond the baseline's reference
bound. Without a change beyond the bound, ``z_t`` is (approximately) standard normal or
smaller, night after night, so ``exp(λ·S_n − n·λ²/2)`` with ``S_n = Σ z_t`` is a
nonnegative supermartingale for every λ ≥ 0, and so is its mixture over a half-normal
prior on λ (scale ``c``)::

    M_n = 2 / sqrt(1 + n·c²) · exp(S_n²·c² / (2·(1 + n·c²))) · Φ(S_n·c / sqrt(1 + n·c²))

A change that starts after some quiet nights should not have to pay back the evidence
*for* "no change" those nights gathered, so the monitor also mixes over the night the
change may have started: with ``M_{k,n}`` the mixture above started at night ``k`` (1 before
it), the evidence is ``E_n = Σ_k π_k · M_{k,n}`` with ``π_k = 1/(k·(k+1))``, whose weights sum
to one. ``E_n`` is again a nonnegative supermartingale starting at (at most) 1, so by
Ville's inequality the probability that it *ever* reaches ``1/a`` is at most ``a``:
alarming when it does keeps the chance of any false alarm, over all nights, at most
``a``. A change starting at night ``k`` pays only ``log(k·(k+1))`` more evidence than one
present from the start; a change of δ standard errors per night is found after about
``2·(log(1/a) + log(k²))/δ²`` nights. (The normal-mixture sequential test of Robbins; a
sub-Gaussian mixture boundary in the terms of Howard et al., 2021; the mixture over
start times follows the e-detector idea of Shin, Ramdas and Rinaldo, 2023, with fixed
weights so that the guarantee stays the probability of any false alarm.)
"""

from __future__ import annotations

import math

import numpy as np

#: Scale of the half-normal mixture: tuned for changes of about one standard error per
#: night, and still consistent (power one) for any size.
MIXTURE_SCALE = 1.0


def mixture_evalue(s: float, n: int, c: float = MIXTURE_SCALE) -> float:
    """``M_n`` for the sum ``s`` of ``n`` standardised excesses (1.0 when ``n == 0``)."""
    if n <= 0:
        return 1.0
    log_m = float(log_mixture(np.array([s], dtype=float), np.array([n], dtype=float), c)[0])
    return math.exp(min(log_m, 700.0))


def log_mixture(s: np.ndarray, n: np.ndarray, c: float = MIXTURE_SCALE) -> np.ndarray:
    """``log M`` for arrays of sums ``s`` over ``n ≥ 1`` nights (vectorised form of
    :func:`mixture_evalue`)."""
    from scipy.special import log_ndtr

    v = 1.0 + n * c * c
    return (
        math.log(2.0) - 0.5 * np.log(v) + (s * s * c * c) / (2.0 * v) + log_ndtr(s * c / np.sqrt(v))
    )


def changepoint_evalue(z: np.ndarray, c: float = MIXTURE_SCALE) -> float:
    """``E_n = Σ_k π_k · M_{k,n}`` over every possible start night ``k`` of a change, for
    the nightly standardised excesses ``z`` (oldest first)."""
    z = np.asarray(z, dtype=float)
    n = z.size
    if n == 0:
        return 1.0
    k = np.arange(1, n + 1, dtype=float)
    tail = np.cumsum(z[::-1])[::-1]  # Σ_{t ≥ k} z_t
    logs = log_mixture(tail, n - k + 1, c) - np.log(k * (k + 1))
    top = float(logs.max())
    if top > 690.0:  # far past any threshold: report a huge, finite number
        return 1e300
    # the remaining weight Σ_{k > n} π_k = 1/(n+1) is on martingales still at 1
    total = math.exp(top) * float(np.exp(logs - top).sum()) + 1.0 / (n + 1)
    return min(total, 1e300)


def threshold(alpha: float, tests: int) -> float:
    """The e-value at which one of ``tests`` sequential tests alarms, sharing ``alpha``."""
    return tests / alpha
