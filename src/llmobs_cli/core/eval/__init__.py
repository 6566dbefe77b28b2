"""Eval in production: the judging plan, judges, the run, regression tests, review."""
