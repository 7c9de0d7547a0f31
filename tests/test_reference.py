"""The hand-written reference losses (grpo_proofs.reference) against closed forms in plain numpy.

The expected values here are computed independently of the Torch code: Table 1's weights are
written again as scalar loops, and the gradient is the derivation pages (App. B.1, Eq. 13-15, 28):

* token ratio:            dJ/dlog pi_{i,t} = alpha_{i,t} A_i s_{i,t}               (unclipped)
* sequence geometric mean: dJ/dlog pi_{i,t} = (sum_t' alpha_{i,t'}) A_i s_i / |o_i|  (unclipped)
* sequence product:        dJ/dlog pi_{i,t} = (sum_t' alpha_{i,t'}) A_i s_i          (unclipped)
* 0 on the clipped branch {s > 1+eps_up, A > 0} or {s < 1-eps_low, A < 0};
* GPG: alpha A;  CISPO: alpha A min(I, 1+eps_up).

Random points are kept at least 10% of eps away from the clip bounds, every case exercises both
branches, and padding holds junk that must not reach the loss or the gradient.
"""

from __future__ import annotations

import ast
import math
import pathlib
import subprocess
import sys

import numpy as np
import pytest
import torch

from grpo_proofs.errors import InputError
from grpo_proofs.reference import REFERENCE
from grpo_proofs.checking.tolerances import CLOSED_FORM

NAMES = ["grpo", "grpo_v32", "gspo", "gtpo", "dapo", "cppo", "dr_grpo", "gpg", "cispo", "gcpo"]
#: the registered formulations beyond Table 1 (closed forms: tests/test_variants_beyond.py)
BEYOND = ["cfpo", "dppo_tv", "up", "topr", "luspo", "sapo", "vespo", "stare", "wapo"]

# Table 1 once more, by hand: ratio kind, eps_low, eps_up (None: no bound), 1/sigma in alpha
SPEC = {
    "grpo": ("token", 0.2, 0.2, True),
    "grpo_v32": ("token", 0.2, 0.2, False),
    "gspo": ("geomean", 3e-4, 4e-4, True),
    "gtpo": ("token", 0.2, 0.2, False),
    "dapo": ("token", 0.2, 0.28, True),
    "cppo": ("token", 0.2, 0.2, True),
    "dr_grpo": ("token", 0.2, 0.2, False),
    "gpg": ("logprob", None, None, False),
    "cispo": ("sg-weight", None, 4.0, True),
    "gcpo": ("product", 0.2, 0.2, True),
}
JUNK = 1e6


def np_alpha(name, lengths, r, T, sigma, masks, gamma=0.0):
    """alpha_{i,t} of Table 1 as a scalar loop (0 on padding)."""
    G = len(r)
    A = r - r.mean()
    sd = float(np.std(r, ddof=0 if sigma == "pop" else 1))
    L_sum = int(sum(lengths))
    M = masks.get("M", np.ones((G, T)))
    lam = masks.get("lam", np.ones((G, T)))
    delta = masks.get("delta", np.ones(G))
    weight = {
        "grpo": lambda i, t, L: 1 / (G * L * sd),
        "grpo_v32": lambda i, t, L: M[i, t] / (G * L),
        "gspo": lambda i, t, L: 1 / (G * L * sd),
        "gtpo": lambda i, t, L: delta[i] * lam[i, t] / (G * L),
        "dapo": lambda i, t, L: 1 / (sd * L_sum),
        "cppo": lambda i, t, L: (1 / (G * L * sd)) * (1.0 if abs(A[i]) > gamma * sd else 0.0),
        "dr_grpo": lambda i, t, L: 1 / G,
        "gpg": lambda i, t, L: 1.0 / (1.0 * L_sum),
        "cispo": lambda i, t, L: M[i, t] / (sd * L_sum),
        "gcpo": lambda i, t, L: 1 / (sd * G),
    }[name]
    alpha = np.zeros((G, T))
    for i in range(G):
        for t in range(int(lengths[i])):
            alpha[i, t] = weight(i, t, int(lengths[i]))
    return alpha, A


def np_closed_form(name, logp, old, lengths, r, sigma, masks, gamma=0.0):
    """(J, sum of |terms of J|, dJ/dlog pi, clipped) from Eq. 1 and the derivation pages, real tokens only.

    The sum of |terms| is the scale of J's rounding error: J itself nearly cancels (sum_i A_i = 0).
    """
    kind, el, eu, _ = SPEC[name]
    G, T = logp.shape
    alpha, A = np_alpha(name, lengths, r, T, sigma, masks, gamma)
    terms, grad = [], np.zeros((G, T))
    clipped = np.zeros((G, T), dtype=bool)
    for i in range(G):
        n = int(lengths[i])
        x = [logp[i, t] - old[i, t] for t in range(n)]
        omega = sum(alpha[i, :n])
        for t in range(n):
            if kind == "logprob":
                terms.append(alpha[i, t] * A[i] * logp[i, t])
                grad[i, t] = alpha[i, t] * A[i]
                continue
            if kind == "sg-weight":
                w = min(math.exp(x[t]), 1 + eu)
                terms.append(alpha[i, t] * w * A[i] * logp[i, t])
                grad[i, t] = alpha[i, t] * A[i] * w
                clipped[i, t] = math.exp(x[t]) > 1 + eu
                continue
            s = {"token": math.exp(x[t]), "geomean": math.exp(sum(x) / n), "product": math.exp(sum(x))}[kind]
            terms.append(alpha[i, t] * min(s * A[i], min(max(s, 1 - el), 1 + eu) * A[i]))
            clipped[i, t] = (s > 1 + eu and A[i] > 0) or (s < 1 - el and A[i] < 0)
            if not clipped[i, t]:
                grad[i, t] = {"token": alpha[i, t], "geomean": omega / n, "product": omega}[kind] * A[i] * s
    return math.fsum(terms), sum(abs(v) for v in terms), grad, clipped


def make_group(name, seed, *, at_one=False):
    """A random padded group with junk on padding; ratios kept off the clip bounds."""
    kind, el, eu, _ = SPEC[name]
    rng = np.random.default_rng([seed, NAMES.index(name)])
    G, T = int(rng.integers(4, 7)), int(rng.integers(3, 8))
    lengths = rng.integers(1, T + 1, size=G)
    lengths[0] = T
    on = np.arange(T)[None, :] < lengths[:, None]
    r = rng.normal(size=G)
    logp = rng.normal(-2.0, 1.0, size=(G, T))

    def ratio(region):  # a log-ratio at least 10% of eps inside or outside the clip interval
        if region == 0:
            return math.log(rng.uniform(1 - 0.9 * el, 1 + 0.9 * eu))
        if region == 1:
            return math.log(rng.uniform(1 + 1.1 * eu, 1 + 3 * eu))
        return math.log(rng.uniform(1 - 3 * el, 1 - 1.1 * el))

    if at_one:
        x = np.zeros((G, T))
    elif kind == "token":
        x = np.vectorize(ratio)(rng.integers(0, 3, size=(G, T)))
    elif kind in ("geomean", "product"):
        z = rng.normal(0.0, 0.3, size=(G, T))
        x = np.zeros((G, T))
        A = r - r.mean()
        # completion 0 inside, 1 on its clipped side, 2 outside on its unclipped side, the rest at random
        regions = [0, 1 if A[1] > 0 else 2, 2 if A[2] > 0 else 1] + list(rng.integers(0, 3, size=G - 3))
        for i, n in enumerate(lengths):
            u = ratio(regions[i])  # log s_i
            x[i, :n] = z[i, :n] - z[i, :n].mean() + (u if kind == "geomean" else u / n)
    else:  # no clip on the ratio (GPG) or only on the weight (CISPO): I from 0.37 to 12
        x = rng.uniform(-1.0, 2.5, size=(G, T))
    old = logp - x
    logp[~on] = np.where(rng.random((G, T)) < 0.5, JUNK, -JUNK)[~on]
    old[~on] = -JUNK
    masks = {}
    if name in ("grpo_v32", "cispo"):
        masks["M"] = np.where(on, rng.integers(0, 2, size=(G, T)), 7.0).astype(float)
    if name == "gtpo":
        masks["lam"] = np.where(on, rng.uniform(0.0, 2.0, size=(G, T)), 7.0)
        masks["delta"] = rng.integers(0, 2, size=G).astype(float)
        masks["delta"][0] = 1.0
    return logp, old, lengths, on, r, masks


def run_reference(name, logp, old, on, r, sigma, masks):
    """Loss value and d loss/d logp from the reference function (autograd)."""
    lp = torch.tensor(logp, dtype=torch.float64, requires_grad=True)
    tmasks = {k: torch.tensor(v, dtype=torch.float64) for k, v in masks.items()} or None
    out = REFERENCE[name](lp, torch.tensor(old), torch.tensor(r), torch.tensor(on, dtype=torch.float64),
                          sigma=sigma, masks=tmasks)
    out.backward()
    return out.item(), lp.grad.numpy()


def rel_err(got, want):
    return float(np.max(np.abs(np.asarray(got) - want)) / max(np.max(np.abs(want)), 1e-300))


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("sigma", ["pop", "sample"])
@pytest.mark.parametrize("name", NAMES)
def test_gradient_matches_closed_form(name, sigma, seed):
    logp, old, lengths, on, r, masks = make_group(name, seed)
    J, scale, dJ, clipped = np_closed_form(name, logp, old, lengths, r, sigma, masks)
    value, grad = run_reference(name, logp, old, on, r, sigma, masks)
    if SPEC[name][0] != "logprob":  # both branches exercised (CISPO: weight below and above 1+eps_up)
        assert clipped[on].any() and (~clipped[on]).any()
    assert rel_err(grad, -dJ) <= CLOSED_FORM
    assert abs(value + J) <= CLOSED_FORM * scale
    assert np.all(grad[~on] == 0.0)  # padding junk gets exactly no gradient


@pytest.mark.parametrize("sigma", ["pop", "sample"])
def test_cppo_pruning(monkeypatch, sigma):
    """With gamma = 0 CPPO prunes only A_i = 0, which is invisible; a larger gamma exercises the indicator."""
    module = sys.modules[REFERENCE["cppo"].__module__]
    monkeypatch.setattr(module, "GAMMA", 0.8)
    logp, old, lengths, on, r, masks = make_group("cppo", 5)
    sd = np.std(r, ddof=0 if sigma == "pop" else 1)
    pruned = np.abs(r - r.mean()) <= 0.8 * sd
    assert pruned.any() and not pruned.all()
    J, scale, dJ, _ = np_closed_form("cppo", logp, old, lengths, r, sigma, masks, gamma=0.8)
    value, grad = run_reference("cppo", logp, old, on, r, sigma, masks)
    assert np.all(grad[pruned] == 0.0) and np.any(grad[~pruned] != 0.0)
    assert rel_err(grad, -dJ) <= CLOSED_FORM
    assert abs(value + J) <= CLOSED_FORM * scale


@pytest.mark.parametrize("sigma", ["pop", "sample"])
@pytest.mark.parametrize("name", NAMES)
def test_at_ratio_one(name, sigma):
    """s = 1: loss = -sum alpha A (GPG, CISPO: -sum alpha A log pi); gradient -alpha A (GCPO: -Omega_i A_i)."""
    logp, old, lengths, on, r, _ = make_group(name, 7, at_one=True)
    alpha, A = np_alpha(name, lengths, r, logp.shape[1], sigma, {})
    value, grad = run_reference(name, logp, old, on, r, sigma, {})
    kind = SPEC[name][0]
    if kind in ("logprob", "sg-weight"):
        want_value = -sum(alpha[i, t] * A[i] * logp[i, t] for i in range(len(r)) for t in range(lengths[i]))
    else:
        want_value = -sum(alpha[i, t] * A[i] for i in range(len(r)) for t in range(lengths[i]))
    want_grad = -alpha * A[:, None]
    if kind == "product":  # every token carries the whole sequence's weight Omega_i = sum_t alpha_{i,t}
        want_grad = -np.where(on, alpha.sum(1, keepdims=True), 0.0) * A[:, None]
    assert abs(value - want_value) <= CLOSED_FORM * max(abs(want_value), np.abs(alpha).sum() * np.abs(A).max())
    assert rel_err(grad, want_grad) <= CLOSED_FORM
    assert np.all(grad[~on] == 0.0)


@pytest.mark.parametrize("bound", ["up", "low"])
def test_tie_convention_at_the_clip_bound(bound):
    """Exactly on a bound the reference gives the full unclipped gradient alpha A s (R_clip is open).

    torch.minimum splits the tie between s A and clip(s) A, and torch.clamp passes its gradient
    at the bound, so both halves carry alpha A s; the derived gradient gives 3/4 of it there (Heaviside(0) = 1/2
    at each of two kinks, grpo_proofs.compile; asserted in tests/test_gradient.py::test_tie_convention).
    """
    from grpo_proofs.reference import grpo

    target = 1 + grpo.EPS_UP if bound == "up" else 1 - grpo.EPS_LOW
    a = b = math.log(target)
    near = [a]
    for _ in range(20):  # a few ulps either side of log(target), for a float whose exp is exactly target
        a, b = np.nextafter(a, np.inf), np.nextafter(b, -np.inf)
        near += [a, b]
    x = next(c for c in near if torch.exp(torch.tensor(c, dtype=torch.float64)).item() == target)
    r = np.array([1.0, 0.0]) if bound == "up" else np.array([0.0, 1.0])  # A_0 = +-1/2: the clipping sign
    logp = np.array([[x], [0.0]])
    value, grad = run_reference("grpo", logp, np.zeros((2, 1)), np.ones((2, 1), dtype=bool), r, "pop", {})
    alpha, A = 1 / (2 * 1 * 0.5), r - r.mean()  # 1/(G |o_i| sigma) with sigma = 1/2
    want = -alpha * A[0] * target
    assert abs(grad[0, 0] - want) <= CLOSED_FORM * abs(want)


@pytest.mark.parametrize("name", NAMES)
def test_non_finite_padding_does_not_leak(name):
    """inf / nan on padding (in logp, old_logp and the masks) changes nothing."""
    logp, old, lengths, on, r, masks = make_group(name, 11)
    clean_value, clean_grad = run_reference(name, logp, old, on, r, "pop", masks)
    bad = np.array([np.inf, -np.inf, np.nan])[np.arange(logp.size).reshape(logp.shape) % 3]
    logp2, old2 = np.where(on, logp, bad), np.where(on, old, bad[::-1])
    masks2 = {k: (np.where(on, v, np.nan) if v.ndim == 2 else v) for k, v in masks.items()}
    value, grad = run_reference(name, logp2, old2, on, r, "pop", masks2)
    assert value == clean_value
    assert np.array_equal(grad, clean_grad)
    assert np.all(grad[~on] == 0.0)


@pytest.mark.parametrize("name", NAMES)
def test_bad_input_raises(name):
    logp, old, lengths, on, r, _ = make_group(name, 3)
    args = (torch.tensor(logp), torch.tensor(old), torch.tensor(r), torch.tensor(on, dtype=torch.float64))
    f = REFERENCE[name]
    with pytest.raises(InputError, match="sigma"):
        f(*args, sigma="unbiased")
    with pytest.raises(InputError, match="rewards; got"):
        f(args[0][:, :-1], *args[1:])
    with pytest.raises(InputError, match="G >= 2"):
        f(*(a[:1] for a in args))
    empty = args[3].clone()
    empty[1] = 0.0
    with pytest.raises(InputError, match="real token"):
        f(*args[:3], empty)
    with pytest.raises(InputError, match="mask"):
        f(*args, masks={"nonsense": args[3]})
    if SPEC[name][3]:
        with pytest.raises(InputError, match="sigma"):
            f(*args[:2], torch.ones(len(r), dtype=torch.float64), args[3])


def test_reference_names_and_constants_match_registry():
    """The hand-copied constants agree with the registry (a copy each side must keep in step)."""
    from grpo_proofs.variants import BEYOND_TABLE1, REGISTRY

    assert sorted(REGISTRY) == sorted(NAMES) and sorted(BEYOND_TABLE1) == sorted(BEYOND)
    assert sorted(REFERENCE) == sorted(NAMES + BEYOND)
    mod = {name: sys.modules[REFERENCE[name].__module__] for name in BEYOND}
    b = BEYOND_TABLE1
    assert mod["cfpo"].EPS == b["cfpo"].eps_low == b["cfpo"].eps_up
    assert mod["dppo_tv"].DELTA == b["dppo_tv"].phi_params["delta_tv"]
    for name in ("up", "luspo", "stare", "wapo"):
        assert (mod[name].EPS_LOW, mod[name].EPS_UP) == (b[name].eps_low, b[name].eps_up)
    assert (mod["sapo"].TAU_POS, mod["sapo"].TAU_NEG) == (b["sapo"].phi_params["tau_pos"], b["sapo"].phi_params["tau_neg"])
    vp = b["vespo"].phi_params
    assert (mod["vespo"].K_POS, mod["vespo"].LAMBDA_POS, mod["vespo"].K_NEG, mod["vespo"].LAMBDA_NEG) == (
        vp["k_pos"], vp["lambda_pos"], vp["k_neg"], vp["lambda_neg"])
    assert mod["vespo"].LOG_W_MIN == math.log(1e-8)
    for name, (kind, el, eu, std) in SPEC.items():
        v = REGISTRY[name]
        module = sys.modules[REFERENCE[name].__module__]
        assert (v.eps_low, v.eps_up, v.std_normalised) == (el, eu, std)
        assert getattr(module, "EPS_LOW", None) == el and getattr(module, "EPS_UP", None) == eu
    assert sys.modules[REFERENCE["cppo"].__module__].GAMMA == REGISTRY["cppo"].params["gamma"]
    gpg = sys.modules[REFERENCE["gpg"].__module__]
    assert (gpg.ALPHA_HAT, gpg.F_NORM) == (REGISTRY["gpg"].params["alpha_hat"], REGISTRY["gpg"].params["F_norm"])


REFERENCE_DIR = pathlib.Path(__file__).resolve().parents[1] / "grpo_proofs" / "reference"


@pytest.mark.parametrize("path", sorted(REFERENCE_DIR.glob("*.py")), ids=lambda p: p.name)
def test_reference_files_import_nothing_symbolic(path):
    """Each file imports only torch, typing and the error type (the second path shares only inputs)."""
    allowed = {"__future__", "torch", "typing", ".errors", "."}
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            assert {a.name for a in node.names} <= allowed, ast.dump(node)
        elif isinstance(node, ast.ImportFrom):
            assert ("." * node.level + (node.module or "")) in allowed | {"..errors"}, ast.dump(node)


def test_importing_reference_loads_no_sympy():
    code = ("import sys, grpo_proofs.reference; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('sympy', 'grpo_proofs')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=pathlib.Path(__file__).resolve().parents[1]).stdout
    loaded = set(ast.literal_eval(out))
    assert loaded == {"grpo_proofs", "grpo_proofs.errors", "grpo_proofs.reference"} | {
        f"grpo_proofs.reference.{n}" for n in NAMES + BEYOND}
