"""Foundation benchmark: derivation time and compiled-gradient speed (prints figures, asserts nothing).

1. Time to build the surrogate of a G = 16 group and derive its gradient by SymPy, for all ten
   Table 1 methods (goal: under 10 s on a 2-core machine), in a fresh process (no caches).
2. Time of the compiled symbolic gradient on 1e6 tokens against the hand-written reference loss
   with autograd (forward + backward) on the same tokens (goal: ratio at most 1.2).

Usage: python benchmarks/symbolic.py [--tokens 1000000] [--repeats 5]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

from grpo_proofs.props.gradient.api import padded, random_group
from grpo_proofs.evaluate import token_gradient
from grpo_proofs.gradient import group_gradient
from grpo_proofs.objective import surrogate
from grpo_proofs.reference import REFERENCE
from grpo_proofs.variants import REGISTRY


def derive_all(G: int = 16, seed: int = 0) -> tuple[float, int]:
    rng = np.random.default_rng(seed)
    lengths = rng.integers(1, 65, size=G)
    t0 = time.perf_counter()
    for v in REGISTRY.values():
        group_gradient(surrogate(v, lengths))
    return time.perf_counter() - t0, int(lengths.sum())


def median_time(fn, repeats: int) -> float:
    fn()  # warm-up (lambdify, allocator)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def compare(name: str, tokens: int, repeats: int) -> tuple[float, float]:
    v = REGISTRY[name]
    G = 16
    L = tokens // G
    rng = np.random.default_rng(1)
    rewards, _, _ = random_group(rng, v, G=G, max_len=2)
    lengths = [L] * G
    lr = [rng.normal(scale=0.1, size=L) for _ in range(G)]
    old = [rng.normal(-2, 0.5, size=L) for _ in range(G)]
    old_t, mask = padded(lengths, old)
    logp0, _ = padded(lengths, [o + x for o, x in zip(old, lr)])
    r = torch.as_tensor(rewards)

    def symbolic():
        token_gradient(v, rewards, lengths, lr)

    def reference():
        logp = logp0.clone().requires_grad_(True)
        loss = REFERENCE[name](logp, old_t, r, mask)
        torch.autograd.grad(loss, logp)

    return median_time(symbolic, repeats), median_time(reference, repeats)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tokens", type=int, default=1_000_000)
    p.add_argument("--repeats", type=int, default=5)
    args = p.parse_args()
    torch.set_num_threads(max(1, torch.get_num_threads()))
    secs, n_tok = derive_all()
    print(f"derive the symbolic gradient of all {len(REGISTRY)} variants, G=16 ({n_tok} tokens): {secs:.2f} s (goal < 10 s)")
    print(f"{'variant':<10} {'compiled (s)':>13} {'reference+autograd (s)':>23} {'ratio':>7}   ({args.tokens:.0e} tokens)")
    for name in REGISTRY:
        a, b = compare(name, args.tokens, args.repeats)
        print(f"{name:<10} {a:>13.4f} {b:>23.4f} {a / b:>7.2f}")


if __name__ == "__main__":
    main()
