"""Cost and latency: the grouped report, gates, pricing, refusals, releases."""
