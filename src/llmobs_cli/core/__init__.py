"""The pure core of llmobs: no typer, rich, print, sys.exit or environment reads here."""
