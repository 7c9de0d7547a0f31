"""The trainers beyond TRL, verl and OpenRLHF: the transcriptions against the trainers' own code where a
release can be read (SkyRL's reduction from the ``skyrl`` package; skipped when it is not installed)."""

import ast
import importlib.util
import pathlib

import numpy as np
import pytest
import torch

from grpo_proofs.trainers.others import OTHER_TRAINERS, loo_advantages, loo_baseline_std, loo_delta


def test_loo_advantage_is_the_centered_advantage_times_delta():
    r = [1.0, 1.0, 0.0, 0.0, 0.0, 0.3]
    A = loo_advantages(r).numpy()
    centered = np.asarray(r) - np.mean(r)
    assert np.allclose(A, centered * loo_delta(r), rtol=1e-13, atol=0)


def test_loo_std_is_the_sample_std_of_the_others():
    r = np.array([0.2, 0.9, 0.4, 0.7, 0.1])
    _, s = loo_baseline_std(r)
    expected = [np.std(np.delete(r, i), ddof=1) for i in range(len(r))]
    assert np.allclose(s.numpy(), expected, rtol=1e-12, atol=0)


def _skyrl_reduction():
    spec = importlib.util.find_spec("skyrl")
    if spec is None or spec.origin is None:
        pytest.skip("skyrl is not installed (the package registry does not serve it)")
    path = pathlib.Path(spec.origin).parent / "backends" / "skyrl_train" / "utils" / "ppo_utils.py"
    tree = ast.parse(path.read_text())
    fn = next(node for node in tree.body if isinstance(node, ast.FunctionDef)
              and node.name == "apply_loss_reduction_to_advantages_minibatch")
    ns = {"torch": torch, "Optional": __import__("typing").Optional, "List": list, "Tuple": tuple}
    exec(compile(ast.Module([fn], []), str(path), "exec"), ns)  # the release's own function, nothing else
    return ns[fn.name]


@pytest.mark.parametrize("reduction", ["token_mean", "prompt_mean"])
def test_skyrl_reduction_matches_the_transcription(reduction):
    reduce = _skyrl_reduction()
    L = torch.tensor([3, 5, 2, 4])
    mask = (torch.arange(5)[None, :] < L[:, None]).double()
    A = torch.tensor([1.0, -0.5, 0.25, -0.75], dtype=torch.float64)[:, None].expand(4, 5) * mask
    theirs = reduce(A, mask, reduction, micro_batch_size=4, max_seq_len=5, prompt_boundaries=[(0, 4)])
    ours = A / mask.sum()  # the transcription of others._skyrl: w = 1/N on one group
    assert torch.equal(theirs, ours)
    assert OTHER_TRAINERS["skyrl"].release == "main at a956457 (2026-08-21)"
