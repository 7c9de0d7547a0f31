"""Real-model confirmations: each module runs a real transformer policy and real optimizers for one claim."""
