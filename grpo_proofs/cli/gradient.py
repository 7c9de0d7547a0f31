"""``grpo-proofs gradient``: advantages, weights and per-token gradient coefficients."""

from __future__ import annotations

import numpy as np

from ..evaluate import token_gradient
from ..objective import group_numbers
from ..variants import get_variant
from .common import add_json_flag, emit_json, float_lists, floats, ints

__all__ = ["register"]


def run(args) -> int:
    v = get_variant(args.variant)
    rewards = floats(args.rewards, "--rewards")
    lengths = ints(args.lengths, "--lengths")
    log_ratios = float_lists(args.log_ratios, "--log-ratios") if args.log_ratios else None
    num = group_numbers(v, rewards, lengths, sigma=args.sigma)
    grad = token_gradient(v, rewards, lengths, log_ratios=log_ratios, sigma=args.sigma)
    payload = {
        "variant": v.name,
        "sigma_kind": args.sigma,
        "sigma": num.sigma,
        "advantages": num.A,
        "alpha": [a.tolist() for a in num.alpha],
        "gradient": [g.tolist() for g in grad],
        "gradient_sum": [float(g.sum()) for g in grad],
    }
    if args.json:
        emit_json(payload)
        return 0
    print(f"variant {v.name}: alpha = {v.alpha}, ratio {v.ratio.value}; sigma ({args.sigma}) = {num.sigma}")
    print(f"{'i':>3} {'r_i':>8} {'|o_i|':>6} {'A_i':>10} {'alpha_i,1':>12} {'dJ/dlogpi (first..last)':>28} {'sum_t':>12}")
    for i, (r, L, A, a, g) in enumerate(zip(num.rewards, num.lengths, num.A, num.alpha, grad)):
        span = f"{g[0]:.6g}..{g[-1]:.6g}" if len(g) > 1 else f"{g[0]:.6g}"
        print(f"{i:>3} {r:>8.4g} {L:>6} {A:>10.4g} {a[0]:>12.6g} {span:>28} {g.sum():>12.6g}")
    first = float(np.sum([g[0] for g in grad]))
    print(f"sum over the group of the first token's coefficient: {first:.6g}")
    return 0


def register(sub) -> None:
    p = sub.add_parser("gradient", help="per-token gradient coefficients dJ/dlog pi of one group")
    p.add_argument("--variant", required=True, help="registry name (see `grpo-proofs variants`)")
    p.add_argument("--rewards", required=True, help="comma-separated rewards, one per completion")
    p.add_argument("--lengths", required=True, help="comma-separated completion lengths |o_i|")
    p.add_argument("--log-ratios", help="log pi_theta - log pi_old: one value or |o_i| values per completion, "
                   "completions separated by ';' (default 0, i.e. s = 1)")
    p.add_argument("--sigma", default="pop", choices=["pop", "sample"], help="population or sample std (default pop)")
    add_json_flag(p)
    p.set_defaults(func=run)
