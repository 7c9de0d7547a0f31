"""The user-variant tool behind ``grpo-proofs check``: a variant read from a spec (:mod:`.spec`, :mod:`.formula`),
its derived verdicts (:mod:`.verdict`, :mod:`.equivalence`), their numerical confirmation (:mod:`.confirm`)
and the report card (:mod:`.report`)."""

__all__: list[str] = []
