"""Anytime-valid nightly monitoring: many looks, one false-alarm budget.

A test at level α run every night alarms on a steady system with probability
1 − (1 − α)^nights; after 60 nights at α = 0.01 that is 45 %. Here every night's look is
one step of a single sequential test per monitored quantity, and the chance of *any*
false alarm over an unbounded number of nights stays at most α:

* :mod:`.eprocess` — the evidence process (a mixture martingale) and its threshold;
* :mod:`.quantities` — what is monitored: a reference interval frozen from the baseline,
  and each night's estimate with its standard error (quality scores, shares, the share of
  calls above the baseline median for numeric features);
* :mod:`.state` — the small JSON file kept between runs (``--monitor STATE_DIR``);
* :mod:`.run` — one night: fold the night in, say what alarmed.
"""
