"""``grpo-proofs gradient``: advantages, weights and per-token gradient coefficients.

Long groups are summarised: the table lists the ``--top`` completions with the largest
|sum_t dJ/dlog pi| (default 20; 0 lists all), and ``--json`` gives every token's alpha and
coefficient only up to :data:`PER_TOKEN_JSON` tokens in all (or with ``--per-token``), else one
summary per completion (first, last, min, max, sum). The memory the coefficients need is estimated
before anything is allocated; a group that would not fit is refused in one line.
"""

from __future__ import annotations

from ..errors import InputError
from .common import add_json_flag, emit_json, float_lists, floats, ints, whole

__all__ = ["register", "PER_TOKEN_JSON", "JSON_BYTES_PER_TOKEN", "MAX_JSON_BYTES"]

#: --json lists every token up to this many tokens in the group (more: per-completion summaries)
PER_TOKEN_JSON = 10_000
#: written size of one token in --per-token JSON (two numbers of ~22 characters, indented), and the most
#: --per-token may write
JSON_BYTES_PER_TOKEN = 60
MAX_JSON_BYTES = 200_000_000


def _summary(arr) -> dict:
    return {"tokens": int(arr.size), "first": float(arr[0]), "last": float(arr[-1]), "min": float(arr.min()),
            "max": float(arr.max()), "sum": float(arr.sum())}


def run(args) -> int:
    import numpy as np

    from ..validate import BYTES_PER_TOKEN, check_memory, rewards_and_lengths
    from ..variants import get_variant

    v = get_variant(args.variant)
    rewards = floats(args.rewards, "--rewards")
    lengths = ints(args.lengths, "--lengths")
    _, L = rewards_and_lengths(rewards, lengths)
    n_tok = int(L.sum())
    per_token = args.per_token or n_tok <= PER_TOKEN_JSON
    if args.json and args.per_token and n_tok * JSON_BYTES_PER_TOKEN > MAX_JSON_BYTES:
        raise InputError(f"--per-token: {n_tok:,} tokens make about {n_tok * JSON_BYTES_PER_TOKEN / 1e9:.3g} GB of JSON, "
                         f"more than the {MAX_JSON_BYTES / 1e6:.0f} MB limit (about {MAX_JSON_BYTES // JSON_BYTES_PER_TOKEN:,} "
                         "tokens); leave out --per-token to get one summary per completion")
    # token_gradient's own need, the weights alpha kept for the output (8 bytes), Python numbers for per-token JSON
    need = (BYTES_PER_TOKEN + 8 + (2 * 32 if args.json and per_token else 0)) * float(n_tok)
    check_memory(need, f"the per-token coefficients of {n_tok:,} tokens", "give shorter completions or fewer of them")
    log_ratios = float_lists(args.log_ratios, "--log-ratios") if args.log_ratios else None
    if log_ratios is not None:
        if len(log_ratios) != len(lengths):
            raise InputError(f"--log-ratios has {len(log_ratios)} completion(s) (separated by ';') for {len(lengths)} "
                             "lengths; give one entry per completion")
        for i, (lr, n) in enumerate(zip(log_ratios, lengths)):
            if len(lr) not in (1, n):
                raise InputError(f"--log-ratios: completion {i + 1} has {len(lr)} values for {n} tokens; give one "
                                 "value (the same for every token) or one per token")
    from ..evaluate import token_gradient  # torch: imported once the input is known to be valid
    from ..objective import group_numbers
    from ..props.gradient.derive import plain

    grad = token_gradient(v, rewards, lengths, log_ratios=log_ratios, sigma=args.sigma)
    num = group_numbers(v, rewards, lengths, sigma=args.sigma)
    sums = np.array([float(g.sum()) for g in grad])
    if args.json:
        payload = {"variant": v.name, "sigma_kind": args.sigma, "sigma": num.sigma, "advantages": num.A,
                   "tokens": n_tok, "per_token": per_token, "gradient_sum": sums}
        if per_token:
            payload["alpha"] = [a.tolist() for a in num.alpha]
            payload["gradient"] = [g.tolist() for g in grad]
        else:
            payload["alpha_summary"] = [_summary(a) for a in num.alpha]
            payload["gradient_summary"] = [_summary(g) for g in grad]
            payload["note"] = (f"{n_tok:,} tokens: one summary per completion (--per-token lists every token, up to "
                               f"{MAX_JSON_BYTES // JSON_BYTES_PER_TOKEN:,} tokens)")
        emit_json(payload)
        return 0
    sig = "" if num.sigma is None else f"; sigma ({args.sigma}) = {num.sigma:.6g}"
    print(f"variant {v.name}: alpha = {plain(v.alpha)}, ratio {v.ratio.value}{sig}")
    G = len(grad)
    top = G if args.top == 0 else min(args.top, G)
    order = np.arange(G) if top == G else np.argsort(-np.abs(sums), kind="stable")[:top]
    if top < G:
        print(f"the {top} of {G} completions with the largest |sum_t dJ/dlog pi| (--top N; --top 0 lists all):")
    print(f"{'i':>5} {'r_i':>9} {'|o_i|':>7} {'A_i':>10} {'alpha_i,1':>12} {'dJ/dlog pi (first..last)':>28} "
          f"{'sum_t':>12}")
    for i in order:
        g, a = grad[i], num.alpha[i]
        span = f"{g[0]:.6g}..{g[-1]:.6g}" if len(g) > 1 else f"{g[0]:.6g}"
        print(f"{i:>5} {num.rewards[i]:>9.4g} {num.lengths[i]:>7} {num.A[i]:>10.4g} {a[0]:>12.6g} {span:>28} "
              f"{sums[i]:>12.6g}")
    if top < G:
        print(f"  ... {G - top} more completions")
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
    p.add_argument("--top", type=whole(0), default=20,
                   help="completions listed in the table, largest |sum_t| first when there are more (default 20; 0: all)")
    p.add_argument("--per-token", action="store_true",
                   help=f"with --json: every token's values even above {PER_TOKEN_JSON:,} tokens")
    add_json_flag(p)
    p.set_defaults(func=run)
