"""Props 6 and 2 at 50 significant digits (mpmath) on a small softmax policy.

The policy has K logits theta (one categorical "token"); a group of G fixed actions a_i with
rewards r_i was drawn from pi_old = softmax(theta_0). The objective is the unclipped surrogate
with centered advantages (Eq. 1, Dr. GRPO weights 1/G, beta = 0):

    J(theta) = (1/G) sum_i A_i s_i,   s_i = pi_theta(a_i) / pi_old(a_i),   A_i = r_i - mean r
    dJ/dtheta_k = (1/G) sum_i A_i s_i (1[a_i = k] - pi_theta(k))

so the gradient depends on theta (a real trajectory, not a fixed gradient list). Two checks, both
with the hand-written Adam recurrence (:class:`grpo_proofs.runtime.adam.AdamRecurrence`) in mpmath:

* eps = 0: trainings at rewards r and phi r, each on its own trajectory, coincide; their difference
  is at the working precision (predicted: exactly 0).
* eps > 0: from the same parameters, the step on phi r equals R(phi, eps, v_hat) times the step on r,
  R evaluated from the SymPy expression of :func:`grpo_proofs.props.reward_scale.claims.step_ratio_derivation`
  (lambdified with mpmath): the predicted deviation, digit for digit.
"""

from __future__ import annotations

import mpmath
import numpy as np

from ... import notation as n
from ...compile import to_mpmath
from ...runtime.adam import AdamRecurrence, mp_sqrt

__all__ = ["SoftmaxGroup", "make_group", "mp_trajectories", "mp_paired_steps"]


class SoftmaxGroup:
    """K logits, G fixed actions, rewards, pi_old: the data of the 50-digit checks (mpf numbers)."""

    def __init__(self, theta0, actions, rewards):
        self.theta0 = np.array([mpmath.mpf(t) for t in theta0], dtype=object)
        self.actions = [int(a) for a in actions]
        self.rewards = [mpmath.mpf(r) for r in rewards]
        self.old = self.probs(self.theta0)

    def probs(self, theta):
        z = [mpmath.exp(t) for t in theta]
        Z = mpmath.fsum(z)
        return [zi / Z for zi in z]

    def grad_loss(self, theta, phi=1):
        """d(-J)/dtheta at rewards phi r (the gradient Adam minimises on)."""
        r = [phi * x for x in self.rewards]
        mean = mpmath.fsum(r) / len(r)
        p = self.probs(theta)
        G, K = len(r), len(theta)
        g = [mpmath.mpf(0)] * K
        for a, ri in zip(self.actions, r):
            w = (ri - mean) * p[a] / self.old[a] / G
            for k in range(K):
                g[k] += w * ((1 if k == a else 0) - p[k])
        return -np.array(g, dtype=object)


def make_group(seed: int = 0, K: int = 6, G: int = 8) -> SoftmaxGroup:
    """Logits with 3 decimals; every action once, the other G - K drawn from softmax(theta_0);
    r_i = 1 for odd actions. Every coordinate then has a nonzero first gradient (eps = 0 is defined)."""
    rng = np.random.default_rng(seed)
    theta0 = [f"{x:.3f}" for x in rng.normal(size=K)]
    p = np.exp(np.array(theta0, float))
    actions = list(range(K)) + list(rng.choice(K, size=G - K, p=p / p.sum()))
    return SoftmaxGroup(theta0, actions, [float(a % 2) for a in actions])


def _opt(eps):
    return AdamRecurrence(lr=mpmath.mpf("0.01"), beta1=mpmath.mpf("0.9"), beta2=mpmath.mpf("0.999"),
                          eps=mpmath.mpf(eps), sqrt=mp_sqrt)


def mp_trajectories(phi: str, steps: int = 8, dps: int = 50, seed: int = 0) -> dict:
    """eps = 0: max |theta_phi - theta_1| / max|theta_1 - theta_0| after ``steps`` own-trajectory steps.

    >>> mp_trajectories("1000", steps=2)["rel_diff"] < 1e-45
    True
    """
    with mpmath.workdps(dps):
        grp, ph = make_group(seed), mpmath.mpf(phi)
        runs = []
        for scale in (mpmath.mpf(1), ph):
            opt, th = _opt(0), grp.theta0.copy()
            for _ in range(steps):
                th, _ = opt.step(th, grp.grad_loss(th, scale))
            runs.append(th)
        moved = max(abs(a - b) for a, b in zip(runs[0], grp.theta0))
        diff = max(abs(a - b) for a, b in zip(runs[0], runs[1]))
        return {"phi": phi, "dps": dps, "steps": steps, "rel_diff": float(diff / moved),
                "moved": float(moved)}


def mp_paired_steps(phi: str, eps: str, steps: int = 8, dps: int = 50, seed: int = 0) -> dict:
    """eps > 0: per step, the scaled recurrence's step vs R(phi, eps, v_hat) x the unscaled step."""
    from .derive import step_ratio_derivation

    R = to_mpmath((n.phi, n.eps_adam, n.v_hat), step_ratio_derivation()["R"])
    with mpmath.workdps(dps):
        grp, ph, e = make_group(seed), mpmath.mpf(phi), mpmath.mpf(eps)
        un, sc, th = _opt(e), _opt(e), grp.theta0.copy()
        worst, worst_dev, dev = mpmath.mpf(0), mpmath.mpf(0), None
        for _ in range(steps):
            _, s_un = un.step(th, grp.grad_loss(th))
            _, s_sc = sc.step(th, grp.grad_loss(th, ph))
            pred = [R(ph, e, v) * s for v, s in zip(un.v_hat, s_un)]
            worst = max(worst, max(abs(m - p) / abs(p) for m, p in zip(s_sc, pred)))
            # the deviation from invariance, step_phi - step_1, measured against predicted
            worst_dev = max(worst_dev, max(abs(m - p) / abs(p - u) for m, p, u in zip(s_sc, pred, s_un)))
            dev = (s_sc[0] - s_un[0], pred[0] - s_un[0])
            th = th + s_un
        return {"phi": phi, "eps": eps, "dps": dps, "steps": steps, "rel_err": float(worst),
                "deviation_rel_err": float(worst_dev), "deviation_digits": _digits(worst_dev, dps),
                "measured_deviation": mpmath.nstr(dev[0], 40), "predicted_deviation": mpmath.nstr(dev[1], 40)}


def _digits(err, dps: int) -> int:
    """Number of agreeing significant digits for a relative error (dps if exact)."""
    return dps if err == 0 else int(-mpmath.floor(mpmath.log10(err)))
