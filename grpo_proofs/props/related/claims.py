"""Related results as claims: each composes a SymPy derivation (:mod:`.derive`) with an independent numeric
computation (:mod:`.api`, :mod:`.model`) and states its coverage.

* ``related-drgrpo-length-bias`` and ``related-drgrpo-difficulty-bias`` (Liu et al. 2025, arXiv 2503.20783);
* ``related-token-cancellation-condition`` and ``related-cancellation-fixes`` (Ding et al. 2026, arXiv 2604.13088);
* ``related-advantage-bias`` (Yang et al. 2026, arXiv 2601.08521).

Every ``*_check(ctx, stated=...)`` takes the statement it checks as an argument, so a planted wrong
statement can be shown to FAIL (the tests do). Coverage is the number of items compared; a check that
compares fewer than it planned fails (:func:`grpo_proofs.checking.coverage.covered`).
"""

from __future__ import annotations


import numpy as np
import torch

# the claim machinery and the tolerance table, imported here only
from ...checking import Context, Outcome, claim
from ...checking.coverage import covered
from ...checking.outcomes import of_comparison
from ...checking.tolerances import CLOSED_FORM, MODEL_FLOAT64

from ... import notation as n
from ...compile import to_torch
from ...evaluate import token_gradient
from ...runtime.numerics import rel_err
from ...variants import get_variant
from . import api, derive
from .cancellation import BREAKS, Cell, condition_cells, stated_exchangeable
from .model import FIXES, Case, fix_rows

__all__ = ["PAGE", "stated_exchangeable", "length_bias_check", "difficulty_bias_check", "condition_check",
           "fixes_check", "advantage_bias_check", "fix_cases", "BREAKS", "Cell", "condition_cells"]

PAGE = "related"


def _floats(x: torch.Tensor) -> np.ndarray:
    return x.detach().numpy()


# ------------------------------------------------------------------ Dr. GRPO: length and difficulty


def _binary_G(ctx: Context) -> tuple[int, ...]:
    return (2, 4, 8) if ctx.quick else (2, 3, 4, 5, 6, 8, 12, 16)


def length_bias_check(ctx: Context, stated: dict = derive.LENGTH_STATED) -> Outcome:
    """Symbolic residues, the slopes in |o_i|, and token_gradient and reference autograd against ``stated``."""
    bad = [f"{key} residue {r}" for key, r in derive.length_residues(stated).items() if r != 0]
    (gc, gw), (dc, dw) = derive.length_slopes("grpo"), derive.length_slopes("dr_grpo")
    if not (gc.is_negative and gw.is_positive and dc == 0 and dw == 0):
        bad.append(f"slopes in |o_i|: GRPO {gc}, {gw}; Dr. GRPO {dc}, {dw}")
    fns = {name: [to_torch([derive.p, n.G, derive.L], e) for e in pair] for name, pair in stated.items()}
    rng, errors, planned = np.random.default_rng(ctx.seed), [], 0
    for rewards, lengths in api.binary_groups(_binary_G(ctx), rng):
        G, p = len(rewards), float(rewards.mean())
        for name, (correct, wrong) in fns.items():
            args = (torch.full((G,), p, dtype=torch.float64), torch.full((G,), float(G), dtype=torch.float64),
                    torch.as_tensor(lengths, dtype=torch.float64))
            pred = np.where(rewards == 1, _floats(correct(*args)), _floats(wrong(*args)))
            planned += 2 * G
            for measured in (token_gradient(name, rewards, lengths), api.reference_token_gradient(name, rewards, lengths)):
                errors += [rel_err(m, np.full(len(m), e)) for m, e in zip(measured, pred)]
    c = covered(errors, planned, "completions")
    worst, count = c.error, c.compared
    detail = (f"{len(derive.length_residues(stated))} identities exact (symbolic p, G, |o_i|); d/d|o_i|: GRPO "
              f"{derive.in_p(gc)} < 0, {derive.in_p(gw)} > 0, Dr. GRPO 0; {count} completions (token_gradient and reference autograd, GRPO and "
              f"Dr. GRPO, every k of G in {_binary_G(ctx)}) against the closed forms, max rel. error {worst:.1e}")
    return of_comparison(c, CLOSED_FORM, detail, bad=bad)


@claim("related-drgrpo-length-bias", page=PAGE, kind="symbolic",
       title="Dr. GRPO's length bias: GRPO's per-token update falls with the completion's length",
       statement=("Binary rewards, k of G correct, p = k/G, population std, s = 1: GRPO's per-token gradient "
                  "coefficient is sqrt((1-p)/p)/(G|o_i|) on a correct answer and -sqrt(p/(1-p))/(G|o_i|) on a wrong "
                  "one, so short correct answers get larger per-token updates and long wrong answers smaller "
                  "per-token penalties; Dr. GRPO's is (1-p)/G and -p/G whatever the length."))
def check_length_bias(ctx: Context) -> Outcome:
    return length_bias_check(ctx)


def difficulty_bias_check(ctx: Context, stated=derive.DIFFICULTY_STATED) -> Outcome:
    """Symbolic residues and shape of f(p), then the per-token ratio GRPO / GRPO (V3.2) measured both ways."""
    bad = [f"{key} residue {r}" for key, r in derive.difficulty_residues(stated).items() if r != 0]
    shape = derive.difficulty_shape(stated)
    bad += [f"{key}: {shape[key]} (expected {val})" for key, val in derive.DIFFICULTY_SHAPE.items() if shape[key] != val]
    f = to_torch([derive.p], stated)
    rng, errors, planned = np.random.default_rng(ctx.seed), [], 0
    for rewards, lengths in api.binary_groups(_binary_G(ctx), rng):
        factor = float(f(torch.tensor(float(rewards.mean()), dtype=torch.float64)))
        planned += 2 * len(rewards)
        for grad in (token_gradient, api.reference_token_gradient):
            errors += [rel_err(a / b, np.full(len(a), factor))
                       for a, b in zip(grad("grpo", rewards, lengths), grad("grpo_v32", rewards, lengths))]
    c = covered(errors, planned, "completions")
    worst, count = c.error, c.compared
    detail = (f"factor 1/sqrt(p(1-p)) exact on correct and wrong answers; minimum 2 at p = 1/2 only "
              f"(f^2 - 4 = (1-2p)^2/(p(1-p))), unbounded at p -> 0 and 1; {count} completions (token_gradient and "
              f"reference autograd, GRPO / GRPO-V3.2, every k of G in {_binary_G(ctx)}), max rel. error {worst:.1e}")
    return of_comparison(c, CLOSED_FORM, detail, bad=bad)


@claim("related-drgrpo-difficulty-bias", page=PAGE, kind="symbolic",
       title="Dr. GRPO's difficulty bias: dividing by the std up-weights prompts solved almost always or never",
       statement=("Dividing by sigma = sqrt(p(1-p)) multiplies every per-token coefficient of a prompt by "
                  "1/sqrt(p(1-p)) against the same weight without the std (GRPO against GRPO as in DeepSeek-V3.2, "
                  "alpha = 1/(G|o_i|)): at least 2, equal to 2 only at p = 1/2, and unbounded as p -> 0 or 1."))
def check_difficulty_bias(ctx: Context) -> Outcome:
    return difficulty_bias_check(ctx)


# ------------------------------------------------------------------ token-gradient cancellation


def condition_check(ctx: Context, stated=stated_exchangeable, measure=api.shared_token_gradient) -> Outcome:
    """The iff (symbolic G; solved for small G), then every method x regime: derived, stated and measured
    cancellation agree, and the measured W equals :func:`grpo_proofs.prefix_coefficient`."""
    bad = [] if derive.condition_residue() == 0 else ["dW/dr_m != w_m - mean w"]
    for G in range(2, 5 if ctx.quick else 7):
        sol = derive.exchangeable_solution(G)              # one family: w_1 = ... = w_{G-1} = w_G
        if len(sol) != 1 or len(sol[0]) != G - 1 or len(set(sol[0].values())) != 1:
            bad.append(f"G = {G}: solutions {sol}")
    cells = condition_cells(ctx, stated, measure)
    bad += [f"{c.method}, {c.ratio_regime}, {c.length_regime}: derived {c.derived}, stated {c.stated}, measured "
            f"max |W|/scale {max(c.cancelled):.1e}" for c in cells if not c.agrees]
    exchangeable = sum(c.derived for c in cells)
    if min(exchangeable, len(cells) - exchangeable) < 10:
        bad.append(f"{exchangeable} of {len(cells)} cells exchangeable: both kinds must be covered")
    comparison = covered([e for c in cells for e in c.errors], len(cells) * (3 if ctx.quick else 8), "groups")
    worst, count = comparison.error, comparison.compared
    detail = (f"W = 0 for every reward vector iff the weights are equal (symbolic G); {len(cells)} method x regime "
              f"cells ({exchangeable} exchangeable, {len(cells) - exchangeable} not): derived, stated and measured "
              f"cancellation agree; {count} groups: reference-loss autograd W against prefix_coefficient, max "
              f"error {worst:.1e} of sum |A_i omega_i|")
    return of_comparison(comparison, CLOSED_FORM, detail, bad=bad, data={"cells": len(cells)})


@claim("related-token-cancellation-condition", page=PAGE, kind="symbolic",
       title="Token-gradient cancellation: a shared token is left alone iff its weights are the same in every completion",
       statement=("A token shared by the whole group in identical context receives W grad log pi with W = sum_i A_i "
                  "omega_i; W = 0 for every reward vector iff omega_i is the same for every completion. Length weights "
                  "(1/|o_i|), sequence-coupled ratios (GSPO, GCPO) and asymmetric clipping past a bound break it."))
def check_condition(ctx: Context) -> Outcome:
    return condition_check(ctx)


def fix_cases(ctx: Context) -> list[Case]:
    """Weights that do not cancel: 1/|o_i| at s = 1, sequence ratios in the band, one advantage sign clipped above it."""
    def ratio(name, regime):
        return [float(x) for x in derive.regime_ratios(get_variant(name))[regime]]
    cases = [Case(m, "s = 1") for m in (("grpo", "gspo") if ctx.quick else ("grpo", "grpo_v32", "gtpo", "cppo",
                                                                              "gspo", "gcpo"))]
    cases += [Case(m, "in the band", seq=tuple(sorted(ratio(m, "in the band")))) for m in ("gspo", "gcpo")]
    cases += [Case(m, "above the band", ratio=ratio(m, "above the band")[0])
              for m in (("dr_grpo",) if ctx.quick else ("dr_grpo", "dapo"))]
    return cases


def fixes_check(ctx: Context, fixes: dict = FIXES) -> Outcome:
    """Lagrange's projection and the min fix in SymPy; then each case on the float64 tiny GPT-2 (CPU)."""
    bad = [f"G = {G}: {key} residue {r}" for G in range(2, 5 if ctx.quick else 7)
           for key, r in derive.fix_residues(G).items() if r != 0]
    rows = [r for case in fix_cases(ctx) for r in fix_rows(case, fixes, seed=ctx.seed, cancel=CLOSED_FORM)]
    checked = [r for r in rows if "no stop-gradient" not in r.fix]
    bad += [f"{r.variant} {r.regime}, unfixed: W = {r.W:.1e} cancels" for r in checked
            if r.fix == "none" and r.shared == "whole group" and r.cancels]
    bad += [f"{r.variant} {r.regime}, {r.fix}: W = {r.W:.1e} does not cancel" for r in checked
            if r.fix != "none" and r.shared == "whole group" and not r.cancels]
    for fix in fixes:
        if not any(r.fix == fix and r.shared == "subset" and not r.cancels for r in checked):
            bad.append(f"{fix}: no subset case keeps a nonzero W")
    no_sg = [r for r in rows if "no stop-gradient" in r.fix]
    bad += [f"{r.variant}, {r.fix}: the gradient vanishes ({r.remaining:.1e})" for r in no_sg if r.remaining <= BREAKS]
    c = covered([r.error for r in checked], 2 * len(fix_cases(ctx)) * (1 + len(fixes)), "gradients")
    worst, count = c.error, c.compared
    if len(no_sg) < len(fixes):
        bad.append("no stop-gradient witness")
    if bad or c.below_floor:
        return of_comparison(c, MODEL_FLOAT64, "", bad=bad, data={"rows": [r.__dict__ for r in rows]})
    fixed = [r for r in checked if r.fix != "none" and r.shared == "whole group"]
    detail = (f"projection = Lagrange's least change with A.w' = 0, exact; float64 tiny GPT-2 (CPU): {count} "
              f"gradients over {len(fix_cases(ctx))} cases equal W grad log pi (max error {worst:.1e}); fixed whole "
              f"group: at most {max(r.remaining for r in fixed):.1e} of the uncancelled gradient remains; subset: "
              f"not cancelled; without stop-gradient at least {min(r.remaining for r in no_sg):.1e} remains")
    return of_comparison(c, MODEL_FLOAT64, detail, data={"rows": [r.__dict__ for r in rows]})


@claim("related-cancellation-fixes", page=PAGE, kind="numeric",
       title="The two cancellation fixes (min_j w_j, projection orthogonal to A) zero a whole-group shared token",
       statement=("Replacing every weight by min_j w_j, or projecting w orthogonally to the advantages, "
                  "w - (A.w/|A|^2) A (the least change with A.w = 0), both under stop-gradient, makes a token shared "
                  "by the whole group receive no gradient, on a real transformer; a prefix shared by a subset still "
                  "gets sum_{i in S} A_i w'_i, and without the stop-gradient the gradient does not vanish."))
def check_fixes(ctx: Context) -> Outcome:
    return fixes_check(ctx)


# ------------------------------------------------------------------ the group-relative baseline


def advantage_bias_check(ctx: Context, stated=derive.ADVANTAGE_STATED) -> Outcome:
    """Symbolic derivations against ``stated``, then exact enumeration of every reward vector."""
    G_values = range(2, 7) if ctx.quick else range(2, 11)
    bad = [f"{key} residue {r}" for key, r in derive.advantage_residues(G_values, stated).items() if r != 0]
    mean, factor = to_torch([derive.p, n.G], stated), to_torch([derive.p, n.G], derive.advantage_bias_factor())
    ps = np.round(np.arange(0.05, 0.96, 0.05), 2)
    errors, vectors = [], 0
    for G in G_values:
        measured, count = api.enumerated_baseline(G, ps)
        vectors += count
        pt, Gt = torch.as_tensor(ps), torch.full((len(ps),), float(G), dtype=torch.float64)
        errors += [rel_err(m, e) for m, e in zip(measured, _floats(mean(pt, Gt)))]
        bias = measured - ps
        # the bias against the factorised form, relative to max(|bias|, p(1-p)) (the bias is 0 at p = 1/2)
        errors += [abs(b - e) / max(abs(e), q * (1 - q)) for b, e, q in zip(bias, _floats(factor(pt, Gt)), ps)]
        wrong_sign = [q for q, b in zip(ps, bias) if q != 0.5 and np.sign(b) != np.sign(0.5 - q)]
        if wrong_sign:
            bad.append(f"G = {G}: bias against the sign of 1/2 - p at p = {wrong_sign}")
    c = covered(errors, 2 * len(ps) * len(G_values), "comparisons")
    worst, count = c.error, c.compared
    detail = (f"formula derived for symbolic G (generating function) and as explicit sums for G = {G_values[0]}.."
              f"{G_values[-1]}, bias = p(1-p)((1-p)^(G-1) - p^(G-1))/P(1<=R<=G-1), exact; exact enumeration of "
              f"{vectors} reward vectors (baseline r_i - A_i from the project's advantages) at {len(ps)} values of p: "
              f"{count} comparisons, max rel. error {worst:.1e}; bias > 0 for p < 1/2, < 0 for p > 1/2")
    return of_comparison(c, CLOSED_FORM, detail, bad=bad, data={"vectors": vectors})


@claim("related-advantage-bias", page=PAGE, kind="symbolic",
       title="The group mean is a biased baseline on non-degenerate groups: hard prompts under-credited",
       statement=("With binary rewards of success rate p and the groups with 1 <= R <= G-1 successes kept, "
                  "E[p_hat] = (p - p^G)/(1 - (1-p)^G - p^G). Its bias has the sign of 1/2 - p: the baseline is too "
                  "high for hard prompts (p < 1/2, correct answers under-credited) and too low for easy ones."))
def check_advantage_bias(ctx: Context) -> Outcome:
    return advantage_bias_check(ctx)
