"""The one-file HTML dashboard's data: every figure the page shows."""
