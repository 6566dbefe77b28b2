"""The canonical record: schema, field names, windows, weights, configuration."""
