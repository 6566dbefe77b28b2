"""Trace files in: format readers, conversion, validation, storage sampling."""
