"""What the real-model checks run on: causal LMs built offline (:mod:`.policy`), groups and forced prefixes
(:mod:`.sampling`), per-token log-probs (:mod:`.logprobs`), flat parameter vectors (:mod:`.params`),
arithmetic and model presets (:mod:`.precision`), and Adam's recurrence (:mod:`.adam`)."""

__all__: list[str] = []
