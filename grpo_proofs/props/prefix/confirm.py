"""Props 1 and 4 for a user's variant, on the real policy (tiny float64 GPT-2, a forced shared prefix).

A group of G completions is sampled from the policy with the prefix y_(1:k) forced for every
completion; rewards follow ``short_is_correct`` (correct answers are short, so length and advantage
are correlated, the case where a length-dependent weight biases the prefix). Then, at the first inner
step (s = 1) and after each of a few Adam steps on the variant's own loss:

* measured: W_t = sum_i dJ/dlog pi(y_(i,t)) by ``torch.autograd`` through the model's batched
  forward of every completion (J = the method's hand-written reference loss,
  :mod:`grpo_proofs.reference`, when the variant is a Table 1 method; else its derived surrogate
  :func:`grpo_proofs.evaluate.torch_surrogate`, said so in the detail), and the parameter
  gradient the prefix positions receive, grad_theta sum_(i,t<=k) (dJ/dlog pi_(i,t)) log pi_(i,t);
* predicted: W_t = sum_i A_i omega_i(s_i) 1[not clipped], with omega the closed form derived by
  :func:`grpo_proofs.props.prefix.derive.effective_coefficient` evaluated on the group, and the prefix gradient
  sum_t W_t grad log pi(y_t) from ONE copy of the prefix (:func:`grpo_proofs.runtime.policy.prefix_logprobs`);
  also W_t from :func:`grpo_proofs.props.prefix.api.prefix_coefficient` (Prop. 1's own implementation);
* Prop. 1's own identity check (:func:`grpo_proofs.props.prefix.model.confirm`) for this variant at
  s = 1, at ratios inside, above and below the clip band, and for a prefix shared by a subset only.

Errors are relative to the size without cancellation (sum_i |dJ/dlog pi_(i,t)|, and the gradient of
the prefix weighted by it), so a W that cancels to zero is still measured meaningfully. Prop. 4: the
loss value at s = 1 against sum_i A_i Omega_i (ratio surrogates) or the advantage-weighted
log-likelihood (GPG, CISPO).
"""

from __future__ import annotations

import numpy as np
import torch

from ... import notation as n
from ...compile import to_numpy
from ...evaluate import batched_gradient
from ...terms import past_clip
from ...weights import GroupWeights, group_weights
from ...runtime.policy import PolicyConfig, build_policy, flat_grad, prefix_logprobs, sample_group, token_logprobs
from ...checking.tolerances import CLOSED_FORM, MODEL_FLOAT64
from ...variants import Ratio, Surrogate
from .derive import effective_coefficient, value_factor
from .model import measured_J
from ...checking.confirmation import Confirmation, Options

__all__ = ["confirm_prefix", "PROMPT", "PREFIX"]

PROMPT, PREFIX = (2, 3, 7), (4, 5, 6)
_ARGS = (n.G, n.L_i, n.L_sum, n.L_max, n.sigma, n.A_i, n.s)


def _numeric(expr):
    """A derived weight as a NumPy function of (G, L_i, L_sum, L_max, sigma, A_i, s), masks at 1."""
    return to_numpy(_ARGS, expr.subs({**n.DEFAULT_MASKS, n.A_nonzero: n.A_i}))


def _later_term(v) -> bool:
    """A term beyond Eq. 1's clip (or a sequence stop-gradient weight): W_t is predicted from the derived
    per-token gradient itself, and Prop. 1's clip-based implementation does not apply."""
    return v.surrogate is not Surrogate.CLIP or v.ratio is Ratio.SEQ_SG_WEIGHT


def _derived_W(v, w: GroupWeights, x: np.ndarray, old: np.ndarray, m: np.ndarray, k: int) -> np.ndarray:
    """W_t = sum_i dJ/dlog pi_(i,t), t < k, from the SymPy-derived per-token gradient (compiled), on the
    group's evaluated weights ``w``."""
    L = w.lengths
    on = m > 0
    idx = torch.as_tensor(np.nonzero(on)[0])
    g = batched_gradient(v, alpha=torch.as_tensor(w.token_alpha()), A=torch.as_tensor(w.A)[idx],
                         x=torch.as_tensor(x[on]), lengths=torch.as_tensor(L, dtype=torch.float64), seq_index=idx,
                         lold=torch.as_tensor(old[on])).numpy()
    full = np.zeros_like(x)
    full[on] = g
    return full[:, :k].sum(0)


def _active(v, s: np.ndarray, A: np.ndarray) -> np.ndarray:
    """1 where completion i is on the unclipped branch (token / sequence ratios with a clip), else 0."""
    if v.ratio not in (Ratio.TOKEN, Ratio.SEQ_GEOMEAN, Ratio.SEQ_PRODUCT):
        return np.ones_like(s)
    return (~past_clip(v, s, A)).astype(np.float64)


def _ratios(v, x: np.ndarray, mask: np.ndarray, t: int) -> np.ndarray:
    """s_i that enters dJ/dlog pi at prefix position t: the token's ratio or the sequence ratio."""
    if v.ratio is Ratio.SEQ_GEOMEAN:
        return np.exp((x * mask).sum(1) / mask.sum(1))
    if v.ratio is Ratio.SEQ_PRODUCT:
        return np.exp((x * mask).sum(1))
    return np.exp(x[:, t])


def confirm_prefix(spec, verdicts, opts: Options) -> list[Confirmation]:
    v, sig_kind = spec.variant, opts.sigma
    model = build_policy(PolicyConfig.tiny(seed=opts.seed), device=opts.device)
    G = 6 if opts.quick else 8
    g = sample_group(model, G=G, prompt=PROMPT, prefix=PREFIX, max_new_tokens=6 if opts.quick else 8,
                     seed=opts.seed, reward="short_is_correct", require_mixed_rewards=True)
    r, L, k = np.asarray(g.rewards), g.lengths, g.k
    w = group_weights(v, r, L, sigma=sig_kind)   # the group's numbers, once: A, sigma and the weights
    A = w.A
    sigma = w.sigma if v.std_normalised else 1.0
    omega_fn = _numeric(effective_coefficient(v))
    with torch.no_grad():
        old, mask = token_logprobs(model, g)
    rt = torch.as_tensor(r, dtype=old.dtype, device=old.device)
    params = list(model.parameters())
    opt = torch.optim.Adam(params, lr=3e-4, betas=(opts.beta1, opts.beta2), eps=opts.eps)
    steps = 2 if opts.quick else 3
    errs_W, errs_grad, errs_lib, W_meas_all, W_pred_all, pts, scales_W, gscales = [], [], [], [], [], [], [], []
    loss_conf, clipped, s_range = None, 0, (1.0, 1.0)
    for step in range(steps):
        logp, _ = token_logprobs(model, g)
        J, measured_by = measured_J(v, logp, old, rt, mask, sigma=sig_kind)
        dJ = torch.autograd.grad(J, logp, retain_graph=True)[0]
        x = (logp - old).detach().cpu().numpy()
        m = mask.cpu().numpy()
        W_meas = dJ[:, :k].sum(0).cpu().numpy()
        scale_W = dJ[:, :k].abs().sum(0).cpu().numpy()
        W_pred, W_lib = np.zeros(k), np.zeros(k)
        if _later_term(v):  # the derived gradient of the term, per token (no omega/clip indicator form)
            W_pred = _derived_W(v, w, x, old.cpu().numpy(), m, k)
            W_lib = W_pred
            s_range = (min(s_range[0], float(np.exp(x[:, :k]).min())), max(s_range[1], float(np.exp(x[:, :k]).max())))
        for t in range(k if not _later_term(v) else 0):
            s = _ratios(v, x, m, t)
            om = np.broadcast_to(np.asarray(omega_fn(G, L, int(L.sum()), int(L.max()), sigma, A, s), dtype=np.float64), (G,))
            act = _active(v, s, A)
            W_pred[t] = float(np.sum(A * om * act))
            clipped = max(clipped, int((act == 0).sum()))
            s_range = (min(s_range[0], float(s.min())), max(s_range[1], float(s.max())))
            W_lib[t] = _library_W(v, w, s)
        # parameter gradient of the prefix positions: batched forward of every completion vs one copy
        model.zero_grad(set_to_none=True)
        (dJ[:, :k].detach() * logp[:, :k]).sum().backward(retain_graph=True)
        meas = flat_grad(model).clone()
        model.zero_grad(set_to_none=True)
        lp1 = prefix_logprobs(model, g.prompt, g.prefix)
        (torch.as_tensor(W_pred, dtype=lp1.dtype, device=lp1.device) * lp1).sum().backward(retain_graph=True)
        pred = flat_grad(model).clone()
        model.zero_grad(set_to_none=True)
        (torch.as_tensor(scale_W, dtype=lp1.dtype, device=lp1.device) * lp1).sum().backward()
        gscale = float(flat_grad(model).norm())
        model.zero_grad(set_to_none=True)
        floor = max(float(scale_W.max()), 1e-300)
        errs_W.append(float(np.max(np.abs(W_meas - W_pred)) / floor))
        if not _later_term(v):  # Prop. 1's clip-based implementation covers Eq. 1's terms only
            errs_lib.append(float(np.max(np.abs(W_meas - W_lib)) / floor))
        errs_grad.append(float((meas - pred).norm()) / max(gscale, 1e-300))
        W_meas_all.append(W_meas.tolist())
        W_pred_all.append(W_pred.tolist())
        scales_W.append(scale_W.tolist())
        gscales.append(gscale)
        sel = np.linspace(0, meas.numel() - 1, min(1500, meas.numel())).astype(int)
        pts.append((pred.cpu().numpy()[sel], meas.cpu().numpy()[sel]))
        if step == 0:
            loss_conf = _loss_value(v, verdicts, float(J.detach()), A, L, sigma, old, mask)
        opt.zero_grad(set_to_none=True)
        (-J).backward()
        opt.step()
    err = max(errs_W + errs_grad + errs_lib)
    lib_text = f"{max(errs_lib):.1e}" if errs_lib else "not applicable to this term"
    prefix = Confirmation(
        "prefix", "Prop. 1: gradient on the shared prefix",
        "W_t = sum_i A_i omega_i(s) on the unclipped branch; prefix gradient = sum_t W_t grad log pi(y_t)",
        err, MODEL_FLOAT64,
        f"G = {G}, k = {k} shared tokens, {steps} inner steps (s = 1 first), measured by the {measured_by}, "
        f"{steps * k} W_t and {steps} parameter gradients compared: max error W closed form "
        f"{max(errs_W):.1e}, prefix_coefficient {lib_text}, parameter gradient {max(errs_grad):.1e} "
        f"(relative to the size without cancellation); prefix ratios s in [{s_range[0]:.3f}, {s_range[1]:.3f}], "
        f"up to {clipped} completion(s) on the clipped branch",
        plot={"points": pts, "W_meas": W_meas_all, "W_pred": W_pred_all, "scale_W": scales_W, "gscale": gscales,
              "tolerance": MODEL_FLOAT64, "cancels": bool(verdicts.prefix["cancels"])},
        data={"measured_by": measured_by, "compared": 2 * steps * k + steps, "rewards": r.tolist(), "lengths": L.tolist(), "W_measured": W_meas_all, "W_predicted": W_pred_all,
              "error_W": errs_W, "error_prefix_coefficient": errs_lib, "error_gradient": errs_grad,
              "ratio_range": list(s_range), "max_clipped_completions": clipped,
              "W_first_step_relative": float(abs(W_meas_all[0][0]) / max(float(np.abs(A).sum()), 1e-300))})
    if _later_term(v):
        return [prefix, loss_conf]  # Prop. 1's case study (clip branches) is written for Eq. 1's clip
    return [prefix, _cases(v, opts), loss_conf]


def _cases(v, opts: Options) -> Confirmation:
    """Prop. 1's own real-model identity (:func:`grpo_proofs.props.prefix.model.confirm`) for this variant:
    s = 1, ratios on every clip branch, and a prefix shared by a subset only."""
    from . import model as ex

    setup = ex.Setup(G=6 if opts.quick else 8, max_new_tokens=6 if opts.quick else 8, seed=opts.seed,
                     device=opts.device)
    res = ex.confirm(setup, variants=[v], cases=ex.CASES[1:] if opts.quick else ex.CASES)  # quick: s = 1 is above
    return Confirmation("prefix_cases", "Prop. 1 on every clip branch and on a subset S",
                        "prefix gradient = sum_t W_t grad log pi(y_t), W_t from prefix_coefficient",
                        max(c.error for c in res), max(c.tolerance for c in res),
                        f"measured by the {res[0].measured_by}; {len(res)} cases compared: "
                        + "; ".join(f"{c.case}: error {c.error:.1e}" + (" (cancels)" if c.cancels else "") for c in res),
                        data={"measured_by": res[0].measured_by, "compared": len(res), "cases": [{"case": c.case, "error": c.error, "W": list(c.W), "cancels": c.cancels,
                                         "shared": list(c.shared)} for c in res]})


def _library_W(v, w, s: np.ndarray) -> float:
    """W_t of :func:`grpo_proofs.props.prefix.api.prefix_coefficient`, on the group's evaluated weights ``w``."""
    from .api import group_terms

    if v.sequence_level:
        return group_terms(v, w, sequence_ratios=s.tolist()).W
    return group_terms(v, w, ratio=float(s[0])).W


def _loss_value(v, verdicts, J: float, A, L, sigma, old, mask) -> Confirmation:
    """Prop. 4: J at s = 1 against its closed form."""
    alpha = _numeric(v.alpha_with_params())
    G, Ls, Lm = len(A), int(L.sum()), int(L.max())
    al = np.broadcast_to(np.asarray(alpha(G, L, Ls, Lm, sigma, A, 1.0), dtype=np.float64), (G,))
    if verdicts.loss["regime"] == "log-likelihood":
        lp = (old * mask).sum(1).cpu().numpy()
        terms = A * al * lp
        what = "sum_i A_i alpha_i sum_t log pi_old(y_(i,t))"
    else:
        fac = np.broadcast_to(np.asarray(_numeric(value_factor(v))(G, L, Ls, Lm, sigma, A, 1.0), dtype=np.float64), (G,))
        terms = A * al * L * fac
        what = "sum_i A_i Omega_i, Omega_i = L_i alpha_i" + ("" if v.surrogate is Surrogate.CLIP else " phi(1)/A_i")
    pred = float(terms.sum())
    err = abs(J - pred) / max(float(np.abs(terms).sum()), 1e-300)
    return Confirmation("loss", "Prop. 4: the loss value at the first inner step",
                        f"J(s = 1) = {what} ({verdicts.loss['regime']} regime)", err, CLOSED_FORM,
                        f"J measured {J:.6g}, closed form {pred:.6g}; relative to sum_i |terms| = "
                        f"{float(np.abs(terms).sum()):.3g}", data={"J": J, "predicted": pred})
