"""Proposition 1 (arXiv 2601.05002, Sec. 4, App. B.2): the bias on shared-prefix tokens, derived and checked.

Every W below is *derived*: sum_{i in S} dJ/dx_{i,t} from SymPy's gradient of the unified surrogate of
a concrete group (:func:`~grpo_proofs.props.prefix.derive.derived_W`) or of one generic token with a
symbolic length (:func:`~grpo_proofs.props.prefix.derive.generic_coefficient`). It is compared, as a
zero difference, with the paper's statements written from Table 1
(:func:`~grpo_proofs.props.prefix.derive.table1_omega`), with symbolic rewards (A_i = r_i - mean r),
a symbolic sigma and, where the statement allows it, a symbolic group size. Numeric parts compare the
public :func:`grpo_proofs.prefix_coefficient` with autograd of the hand-written reference losses.
The clip-branch and sequence-ratio claims live in :mod:`grpo_proofs.props.prefix.claims_branches`, the
real-model claims (``prop1-real-model``, ``prop1-training-drift``) in :mod:`grpo_proofs.props.prefix.claims_model`.
"""

from __future__ import annotations

import numpy as np
import sympy as sp

from ... import notation as n
from ...terms import exact
from .api import prefix_coefficient, reference_W
from ...checking.tolerances import CLOSED_FORM, EXACT
from ...variants import REGISTRY, Ratio, Variant
from ...checking import Context, Outcome, claim
from ...checking.coverage import covered
from ...checking.outcomes import of_comparison, of_identities
from ...checking.table1 import TABLE1
from ..gradient.api import random_group
from .derive import derived_W, generic_coefficient, is_zero, table1_omega

__all__ = ["PAGE", "LENGTHS", "SUBSETS", "EX_REWARDS", "EX_LENGTHS", "symbolic_rewards", "centered",
           "band_ratios", "group_constant"]

PAGE = "prefix"
#: lengths of the concrete symbolic groups (>= 2 so a sequence ratio can differ from the shared token's)
LENGTHS = (3, 2, 4, 2)
SUBSETS = ((0, 1, 2, 3), (0, 2, 3), (1,))
#: worked example of the prefix page
EX_REWARDS, EX_LENGTHS = (1, 0, 0, 1), (10, 30, 20, 40)
#: a nonzero witness for every length- or sequence-dependent weight (on the worked example GCPO's
#: W = sum_i A_i |o_i| / (G sigma) happens to vanish: 5 - 15 - 10 + 20 = 0)
WITNESS_LENGTHS = (10, 30, 20, 50)


def symbolic_rewards(G: int) -> tuple[list[sp.Expr], list[sp.Expr]]:
    """(r_1..r_G, A_1..A_G) with A_i = r_i - mean_j r_j, rewards the Indexed symbols r[j]."""
    r = [n.r_idx[j] for j in range(1, G + 1)]
    return r, [ri - sp.Add(*r) / G for ri in r]


def centered(rewards) -> list[sp.Expr]:
    """Exact centered advantages r_i - mean r of numeric rewards."""
    r = [sp.nsimplify(x, rational=True) for x in rewards]
    return [ri - sp.Add(*r) / len(r) for ri in r]


def band_ratios(v: Variant) -> dict[str, sp.Rational]:
    """Exact ratios inside the clip band, above it and below it (3 and 1/2 where a side is open)."""
    up = exact(v.eps_up) if v.eps_up is not None else sp.Integer(1)
    low = exact(v.eps_low) if v.eps_low is not None else sp.Rational(1, 4)
    return {"inside": 1 + up / 2, "above": 1 + 2 * up, "below": 1 - sp.Min(2 * low, (1 + low) / 2)}


def _sigma(rewards) -> sp.Expr:
    r = [sp.nsimplify(x, rational=True) for x in rewards]
    m = sp.Add(*r) / len(r)
    return sp.sqrt(sp.Add(*[(x - m) ** 2 for x in r]) / len(r))


def group_constant(v: Variant) -> bool:
    """Table 1 reading (the hand-typed row, :data:`grpo_proofs.checking.table1.TABLE1`): omega is the same
    for every completion at a common ratio when the ratio is per token (or absent) and alpha takes one
    value whatever the completion's length and advantage (masks at their default 1)."""
    row = TABLE1[v.name]
    if row.ratio.startswith("sequence"):
        return False
    values = {row.alpha(G=4, L_i=L, L_sum=11, sigma=0.5, A_i=A) for L in (2, 5) for A in (0.5, -0.25, 0.0)}
    return len(values) == 1


def fail(residues: list[str]) -> str:
    return "nonzero residue: " + "; ".join(residues[:4])


@claim(
    "prop1-prefix-coefficient",
    title="Net coefficient on a shared prefix (Prop. 1)",
    page=PAGE,
    statement=(
        "If the completions i in S share a prefix y_{1:k}, the gradient gives the prefix "
        "sum_t W_t grad log pi(y_t|x,y_<t) with W_t = sum_{i in S} A_i omega_{i,t}; W_t derived from the "
        "unified surrogate equals this formula for every Table 1 method, every clip branch and every subset."
    ),
    kind="symbolic",
)
def check_prefix_coefficient(ctx: Context) -> Outcome:
    bad, exact_cases = [], 0
    _, A = symbolic_rewards(len(LENGTHS))
    concrete = centered((1, 0, sp.Rational(1, 2), 0))
    for name, v in REGISTRY.items():
        for S in SUBSETS:                       # s = 1 (inside every band): symbolic rewards
            W = derived_W(v, LENGTHS, S, A, [1] * len(LENGTHS))
            om = table1_omega(v, LENGTHS, A, [1] * len(LENGTHS))
            exact_cases += 1
            if not is_zero(W - sp.Add(*[A[i] * om[i] for i in S])):
                bad.append(f"{name} S={S} s=1")
        branches = list(band_ratios(v).values())          # inside, above, below the clip band
        if v.sequence_level:                    # one s_i per completion: every branch in one group
            configs = [(branches + [1])[k:] + (branches + [1])[:k] for k in range(2)]
        else:                                   # the shared token's one ratio, on each branch
            configs = [[s] * len(LENGTHS) for s in branches]
        for s_all in configs:                   # exact rewards (the branch depends on sign A_i)
            for S in SUBSETS[:2]:
                W = derived_W(v, LENGTHS, S, concrete, s_all)
                om = table1_omega(v, LENGTHS, concrete, s_all)
                exact_cases += 1
                if not is_zero(W - sp.Add(*[concrete[i] * om[i] for i in S])):
                    bad.append(f"{name} S={S} s={s_all}")
    # worked example: GRPO W = 1/96 (population std 1/2); Dr. GRPO and DAPO W = 0
    Aex = centered(EX_REWARDS)
    for name, want in (("grpo", sp.Rational(1, 96)), ("dr_grpo", 0), ("dapo", 0)):
        got = derived_W(REGISTRY[name], EX_LENGTHS, range(4), Aex, [1] * 4).subs(n.sigma, _sigma(EX_REWARDS))
        if sp.simplify(got - want) != 0:
            bad.append(f"worked example {name}: {got} != {want}")
    if bad:
        return Outcome(float("inf"), CLOSED_FORM, fail(bad))
    # numbers: the public API against autograd of the reference losses, random groups and subsets
    rng = np.random.default_rng(ctx.seed)
    worst, where, numeric = 0.0, "", 0
    for name, v in REGISTRY.items():
        for k in range(2 if ctx.quick else 8):
            numeric += 1
            rewards, lengths, lr = random_group(rng, v, max_len=12)
            G = len(lengths)
            S = sorted(rng.choice(G, size=int(rng.integers(1, G + 1)), replace=False).tolist())
            sigma = "sample" if k % 2 else "pop"
            if v.sequence_level:
                u = np.array([x.sum() for x in lr]) / (lengths if v.ratio is Ratio.SEQ_GEOMEAN else 1)
                W = prefix_coefficient(v, rewards, lengths, S, sequence_ratios=np.exp(u), sigma=sigma)
            else:
                for i in S[1:]:                  # the shared token has one ratio in every i in S
                    lr[i][0] = lr[S[0]][0]
                W = prefix_coefficient(v, rewards, lengths, S, ratio=float(np.exp(lr[S[0]][0])), sigma=sigma)
            want, scale = reference_W(name, rewards, lengths, S, lr, sigma)
            err = abs(W - want) / scale if scale > 0 else abs(W - want)      # W may cancel: error of a sum
            if err > worst:
                worst, where = err, f"{name} G={G} |S|={len(S)}"
    return Outcome(worst, CLOSED_FORM, f"symbolic: {exact_cases} cases ({len(REGISTRY)} methods x subsets x clip "
                   f"branches) exact against the hand-typed Table 1; numeric: {numeric} random groups, "
                   f"|W - W_ref| / sum_S |dJ/dx|, worst {where}", {"worst": where, "compared": exact_cases + numeric})


@claim(
    "prop1-whole-group-cancellation",
    title="Whole-group cancellation for group-constant weights (Prop. 1)",
    page=PAGE,
    statement=(
        "If omega is the same for every completion and the whole group shares the prefix, "
        "W = omega sum_i A_i = 0 (any G); it holds for Dr. GRPO, DAPO, GPG and CISPO at a common ratio "
        "inside the clip band, and fails for length-dependent or sequence-level weights."
    ),
    kind="symbolic",
)
def check_cancellation(ctx: Context) -> Outcome:
    j, G, r = n.j_idx, n.G, n.r_idx
    bad, checked = [], 1
    A_j = r[j] - sp.Sum(r[j], (j, 1, G)) / G
    if not is_zero(sp.Sum(A_j * n.c_uniform, (j, 1, G))):
        bad.append("symbolic G")
    L = sp.IndexedBase("L", positive=True)
    _, A = symbolic_rewards(len(LENGTHS))
    derived_constant = []
    for name, v in REGISTRY.items():
        # derived per-token coefficient with a symbolic length, divided by A_i: does it vary with i?
        coef = generic_coefficient(v, n.A_i, n.L_i)
        omega = sp.simplify(sp.piecewise_fold(coef / n.A_i))
        constant = not (omega.free_symbols & {n.L_i, n.A_i})
        checked += 1                           # the derived reading against Table 1's
        if constant != group_constant(v):
            bad.append(f"{name}: derived constant={constant}, Table 1 reading={group_constant(v)}")
        if constant:
            derived_constant.append(name)
            W_G = sp.Sum(coef.subs(n.A_i, A_j).subs(n.L_i, L[j]), (j, 1, G))      # any G, any lengths
            ins = band_ratios(v)["inside"]
            W4 = derived_W(v, LENGTHS, range(4), A, [1] * 4)
            W4s = derived_W(v, LENGTHS, range(4), A, [ins] * 4)
            checked += 3
            if not (is_zero(W_G) and is_zero(W4) and is_zero(W4s)):
                bad.append(f"{name}: W != 0")
        else:                                  # a nonzero witness
            W = derived_W(v, WITNESS_LENGTHS, range(4), centered(EX_REWARDS), [1] * 4)
            checked += 1
            if is_zero(W):
                bad.append(f"{name}: expected no cancellation on the worked example")
    detail = f"{checked} identities and readings checked; group-constant (W = 0): {', '.join(derived_constant)}"
    return of_identities(bad, checked, detail, tolerance=EXACT, data={"group_constant": derived_constant})


@claim(
    "prop1-covariance-form",
    title="W as a covariance (Prop. 1)",
    page=PAGE,
    statement=(
        "For the whole group W = sum_i A_i omega_i = G Cov_pop(A, omega); for a subset S, "
        "W = |S| Cov_S(A, omega) + |S| mean_S(A) mean_S(omega)."
    ),
    kind="symbolic",
)
def check_covariance(ctx: Context) -> Outcome:
    j, G, r, w, m = n.j_idx, n.G, n.r_idx, n.omega_idx, n.i_idx
    Sg = lambda f, top=G: sp.Sum(f, (j, 1, top))  # noqa: E731
    A_j = r[j] - Sg(r[j]) / G
    bad = []
    cov = Sg((A_j - Sg(A_j) / G) * (w[j] - Sg(w[j]) / G)) / G
    if not is_zero(Sg(A_j * w[j]) - G * cov):
        bad.append("symbolic G")
    a = sp.IndexedBase("a", real=True)          # any values over a subset of size m (not centered)
    cov_S = Sg((a[j] - Sg(a[j], m) / m) * (w[j] - Sg(w[j], m) / m), m) / m
    if not is_zero(Sg(a[j] * w[j], m) - m * cov_S - m * (Sg(a[j], m) / m) * (Sg(w[j], m) / m)):
        bad.append("subset form")
    _, A = symbolic_rewards(len(LENGTHS))
    checked = 2 + len(REGISTRY)               # symbolic G, the subset form, every method
    for name, v in REGISTRY.items():
        W = derived_W(v, LENGTHS, range(len(LENGTHS)), A, [1] * len(LENGTHS))
        om = table1_omega(v, LENGTHS, A, [1] * len(LENGTHS))
        Gn = len(LENGTHS)
        mean_w = sp.Add(*om) / Gn
        if not is_zero(W - Gn * sp.Add(*[A[i] * (om[i] - mean_w) for i in range(Gn)]) / Gn):
            bad.append(name)
    return of_identities(bad, checked, f"{checked} identities exact: symbolic G, subset form, {len(REGISTRY)} methods",
                         tolerance=EXACT)


@claim(
    "prop1-binary-closed-form",
    title="Binary rewards: W = sqrt(p(1-p)) (h_c - h_w) for GRPO (Prop. 1)",
    page=PAGE,
    statement=(
        "GRPO weights with the population std, binary rewards, k of G correct, p = k/G, whole group, s = 1: "
        "W = sqrt(p(1-p)) (h_c - h_w), h_c and h_w the mean of 1/|o_i| over correct and wrong answers."
    ),
    kind="symbolic",
)
def check_binary(ctx: Context) -> Outcome:
    v = REGISTRY["grpo"]
    j, k, m = n.j_idx, n.n_correct, n.n_wrong
    G = k + m
    bad = []
    # symbolic G = k + m: rewards 1 (correct) and 0 (wrong), mean p, population std from its definition
    p = (k * 1 + m * 0) / G
    sig = sp.simplify(sp.sqrt((k * (1 - p) ** 2 + m * (0 - p) ** 2) / G))
    coef = lambda A_i, L_i: sp.simplify(generic_coefficient(v, A_i, L_i, G=G).subs(n.sigma, sig))  # noqa: E731
    W = sp.Sum(coef(1 - p, n.L_correct[j]), (j, 1, k)) + sp.Sum(coef(0 - p, n.L_wrong[j]), (j, 1, m))
    h_c = sp.Sum(1 / n.L_correct[j], (j, 1, k)) / k
    h_w = sp.Sum(1 / n.L_wrong[j], (j, 1, m)) / m
    identities = 2                            # symbolic G and the worked example
    if not is_zero(W - sp.sqrt(p * (1 - p)) * (h_c - h_w)):
        bad.append("symbolic G")
    # every concrete G <= 6 (quick: 4) and every k, lengths symbolic
    for Gc in range(2, 5 if ctx.quick else 7):
        Ls = sp.symbols(f"L_1:{Gc + 1}", positive=True)
        for kc in range(1, Gc):
            rew = [1] * kc + [0] * (Gc - kc)
            A = centered(rew)
            Wc = sp.Add(*[generic_coefficient(v, A[i], Ls[i], G=Gc) for i in range(Gc)]).subs(n.sigma, _sigma(rew))
            pc = sp.Rational(kc, Gc)
            h_c, h_w = sp.Add(*[1 / L for L in Ls[:kc]]) / kc, sp.Add(*[1 / L for L in Ls[kc:]]) / (Gc - kc)
            closed = sp.sqrt(pc * (1 - pc)) * (h_c - h_w)
            identities += 1
            if not is_zero(Wc - closed):
                bad.append(f"G={Gc} k={kc}")
    ex = sp.Rational(1, 2) * (sp.Rational(1, 2) * (sp.Rational(1, 10) + sp.Rational(1, 40))
                              - sp.Rational(1, 2) * (sp.Rational(1, 30) + sp.Rational(1, 20)))
    if ex != sp.Rational(1, 96):
        bad.append(f"worked example closed form {ex}")
    if bad:
        return Outcome(float("inf"), CLOSED_FORM, fail(bad), {"compared": identities})
    rng = np.random.default_rng(ctx.seed)
    errors, planned = [], 20 if ctx.quick else 200
    for _ in range(planned):
        G_ = int(rng.integers(2, 33))
        kc = int(rng.integers(1, G_))
        rew = np.array([1.0] * kc + [0.0] * (G_ - kc))
        rng.shuffle(rew)
        L = rng.integers(1, 200, size=G_)
        pc = kc / G_
        h_c, h_w = np.mean(1 / L[rew == 1]), np.mean(1 / L[rew == 0])
        closed = np.sqrt(pc * (1 - pc)) * (h_c - h_w)
        scale = np.sqrt(pc * (1 - pc)) * (h_c + h_w)                  # sum_i |A_i omega_i|: h_c = h_w cancels
        errors.append(abs(prefix_coefficient("grpo", rew, L) - closed) / scale)
    c = covered(errors, planned, "groups")
    return of_comparison(c, CLOSED_FORM, f"{identities} identities exact (symbolic G = k + m, every G <= "
                         f"{Gc} and k, the worked example); API vs closed form on {c.compared} random groups compared, "
                         f"max error {c.error:.1e}", data={"identities": identities})
