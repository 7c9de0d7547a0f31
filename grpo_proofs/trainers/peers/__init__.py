"""The trainers' own releases as test oracles (the ``peers`` extra).

:mod:`.trl` runs a real ``trl.GRPOTrainer``; :mod:`.verl` and :mod:`.openrlhf` run the loss
and advantage functions of the verl and OpenRLHF releases, and :mod:`.unsloth` unsloth_zoo's
``grpo_compute_loss``, loaded from their installed distributions by :mod:`.loading` without their
GPU-only dependencies; :mod:`.tables` reads each
release's own option table. The tests marked ``peers`` compare :mod:`grpo_proofs.trainers`
with them; nothing here is used to compute a result of the project.
"""

__all__ = ["loading", "trl", "verl", "openrlhf", "unsloth", "tables"]
