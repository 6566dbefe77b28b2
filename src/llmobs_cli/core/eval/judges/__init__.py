"""Evaluators: the LLM judge (:mod:`.client`, :mod:`.prompts`), reference comparison
(:mod:`.reference`), self-consistency (:mod:`.consistency`), human labels and agreement
(:mod:`.human`), and the on-disk judgment cache (:mod:`.cache`).

All of it is pure core: no printing, no environment reads (the CLI passes the API key,
the base URL and the cache directory in).
"""
