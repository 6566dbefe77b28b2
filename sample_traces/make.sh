#!/bin/sh
# Regenerate the committed sample traces (run from the repository root).
# tests/test_generate.py checks that this command reproduces the committed files.
set -e
for f in traces.parquet traces.jsonl; do
  llmobs generate sample_traces/$f --rows 2400 --seed 7 --start 2026-10-12 --days 42 --drift-after 2026-11-16 --regression-after 2026-11-16 --regression-route search_qa
done
