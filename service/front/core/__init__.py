"""The classify core: one use case (limits, normalization, the truncation refusal), the result
cache and single-flight in front of the model backend (the model worker pool, or a colocated model),
and the error taxonomy every layer answers from. It imports no web framework."""
