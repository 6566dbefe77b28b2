"""Results out: judgments, drift and alerts sent where teams already look.

* :mod:`.evaluations` turns saved judgments into evaluation events (one per judgment);
* :mod:`.otlp` encodes them as OpenTelemetry log records (``gen_ai.evaluation.result``)
  and writes an OTLP/JSON file or posts OTLP/HTTP (protobuf or JSON);
* :mod:`.langfuse` and :mod:`.langsmith` send them as Langfuse scores or LangSmith feedback
  (only judgments of calls read from that system, by the ``origin`` judgments record);
* :mod:`.metrics` turns report, eval and drift summaries into OTLP gauges;
* :mod:`.notify` posts one message to a webhook when a gate, regression or drift fires;
* :mod:`.http` is the one retrying HTTP sender they share (secrets never leave it).

Everything here is pure: endpoints, keys and headers come in as arguments (the CLI reads
the standard environment variables), and nothing prints.
"""
