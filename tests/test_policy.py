"""The real causal-transformer policy: sampling, forced prefixes, log-probs, float64 identities."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from grpo_proofs.checking import tolerances as tol
from grpo_proofs.errors import InputError
from grpo_proofs.runtime.policy import (REWARD_RULES, PolicyConfig, build_policy, clone_model, copy_state,
                                        count_parameters, flat_grad, load_state, param_vector, prefix_logprobs,
                                        sample_group, score, set_param_vector, token_logprobs)

PROMPT, PREFIX = [2, 3, 7], [4, 5, 6]


@pytest.fixture(scope="module")
def tiny():
    return build_policy(PolicyConfig.tiny())


@pytest.fixture(scope="module")
def group(tiny):
    return sample_group(tiny, G=8, prompt=PROMPT, prefix=PREFIX, max_new_tokens=8, seed=1)


def naive_logprobs(model, prompt, completion, temperature=1.0):
    """Independent path: one unpadded forward per sequence, log-softmax, pick token by token."""
    ids = torch.tensor([list(prompt) + list(completion)])
    logits = model(input_ids=ids, attention_mask=torch.ones_like(ids)).logits[0] / temperature
    P = len(prompt)
    return torch.stack([torch.log_softmax(logits[P - 1 + t], -1)[tok] for t, tok in enumerate(completion)])


def prefix_gradient_identity(model, g, coeffs):
    """grad of sum_i c_i sum_{t<=k} log pi(o_it) over the batched group, against (sum_i c_i) times the
    gradient of the prefix log-prob of ONE copy (Prop. 1: the prefix gradient is the same for all i)."""
    k = g.k
    model.zero_grad(set_to_none=True)
    logp, _ = token_logprobs(model, g)
    (coeffs[:, None] * logp[:, :k]).sum().backward()
    batched = flat_grad(model).clone()
    model.zero_grad(set_to_none=True)
    (coeffs.sum() * prefix_logprobs(model, g.prompt, g.prefix).sum()).backward()
    single = flat_grad(model).clone()
    model.zero_grad(set_to_none=True)
    return ((batched - single).norm() / single.norm()).item()


def test_tiny_is_float64_train_mode_without_dropout(tiny):
    assert next(tiny.parameters()).dtype == torch.float64 and tiny.training
    assert all(m.p == 0 for m in tiny.modules() if isinstance(m, torch.nn.Dropout))
    assert tiny.lm_head.weight is tiny.get_input_embeddings().weight        # tied
    expected = torch.zeros(16, dtype=torch.float64)
    expected[0] = 1.0                                                       # eos_logit_bias at EOS only
    assert torch.equal(tiny.lm_head.bias.detach(), expected)
    # train mode with dropout 0 computes the same function as eval mode
    ids = torch.tensor([[1, 2, 3, 4]])
    with torch.no_grad():
        a = tiny(input_ids=ids).logits
        tiny.eval()
        b = tiny(input_ids=ids).logits
        tiny.train()
    assert torch.equal(a, b)


def test_group_has_forced_prefix_and_differing_lengths(group):
    assert group.G == 8 and group.shared == tuple(range(8)) and group.max_length == 3 + 8
    assert all(c[:3] == tuple(PREFIX) for c in group.completions)
    assert len(set(group.lengths.tolist())) > 1
    for i, c in enumerate(group.completions):
        assert group.eos_token_id not in c[:-1]                     # stops at the first EOS
        assert group.finished(i) or len(c) == group.max_length      # EOS or cut at L_max
        assert group.continuation(i) == c[3:]


def test_prefix_shared_by_a_subset_only(tiny):
    S = [0, 2, 5]
    g = sample_group(tiny, G=6, prompt=PROMPT, prefix=PREFIX, max_new_tokens=6, seed=3, shared=S)
    assert g.shared == tuple(S) and g.n_forced == (3, 0, 3, 0, 0, 3)
    assert all(g.completions[i][:3] == tuple(PREFIX) for i in S)
    free = [g.completions[i][:3] for i in (1, 3, 4)]
    assert any(f != tuple(PREFIX) for f in free)                # the others were sampled from the start
    assert all(g.continuation(i) == g.completions[i] for i in (1, 3, 4))


def test_sampling_is_deterministic_given_seed(tiny, group):
    again = sample_group(tiny, G=8, prompt=PROMPT, prefix=PREFIX, max_new_tokens=8, seed=1)
    other = sample_group(tiny, G=8, prompt=PROMPT, prefix=PREFIX, max_new_tokens=8, seed=2)
    assert again == group
    assert other.completions != group.completions


def test_batched_logprobs_equal_single_sequence_forwards(tiny, group):
    logp, mask = token_logprobs(tiny, group)
    assert logp.shape == mask.shape == (8, int(group.lengths.max())) and logp.dtype == torch.float64
    assert torch.equal(mask.sum(1), torch.tensor(group.lengths, dtype=mask.dtype))
    with torch.no_grad():
        for i, c in enumerate(group.completions):
            ref = naive_logprobs(tiny, group.prompt, c)
            assert (logp[i, :len(c)].detach() - ref).abs().max().item() <= tol.PADDED_FORWARD
            assert torch.all(logp[i, len(c):] == 0)


def test_logprobs_use_the_sampling_temperature(tiny):
    g = sample_group(tiny, G=3, prompt=PROMPT, prefix=PREFIX, max_new_tokens=5, seed=4, temperature=0.5)
    logp, _ = token_logprobs(tiny, g)
    with torch.no_grad():
        for i, c in enumerate(g.completions):
            ref = naive_logprobs(tiny, g.prompt, c, temperature=0.5)
            assert (logp[i, :len(c)].detach() - ref).abs().max().item() <= tol.PADDED_FORWARD


def test_prefix_logprobs_match_batched_prefix_positions(tiny, group):
    logp, _ = token_logprobs(tiny, group)
    single = prefix_logprobs(tiny, group.prompt, group.prefix)
    assert single.shape == (3,)
    assert (logp[:, :3] - single).abs().max().item() <= tol.PADDED_FORWARD


def test_float64_gpt2_prefix_gradient_identity(tiny, group):
    """GPT-2 runs every op in float64: the shared-prefix gradient identity holds to ~1e-15."""
    coeffs = torch.linspace(-1.0, 2.0, group.G, dtype=torch.float64)
    err = prefix_gradient_identity(tiny, group, coeffs)
    print(f"gpt2 float64 prefix-gradient identity: relative error {err:.2e}")
    assert err <= tol.CLOSED_FORM


def test_full_gradient_batched_equals_per_sequence(tiny, group):
    coeffs = torch.linspace(-1.0, 2.0, group.G, dtype=torch.float64)
    params = list(tiny.parameters())
    logp, _ = token_logprobs(tiny, group)
    batched = torch.autograd.grad((coeffs[:, None] * logp).sum(), params)
    single = torch.autograd.grad(sum(c * naive_logprobs(tiny, group.prompt, o).sum()
                                     for c, o in zip(coeffs, group.completions)), params)
    b, s = torch.cat([g.reshape(-1) for g in batched]), torch.cat([g.reshape(-1) for g in single])
    assert ((b - s).norm() / s.norm()).item() <= tol.CLOSED_FORM
    # flat_grad concatenates .grad in parameters() order
    tiny.zero_grad(set_to_none=True)
    logp, _ = token_logprobs(tiny, group)
    (coeffs[:, None] * logp).sum().backward()
    assert torch.equal(flat_grad(tiny), b)
    tiny.zero_grad(set_to_none=True)


def test_qwen2_rmsnorm_upcast_breaks_float64_and_norm_in_dtype_restores_it():
    """Qwen2's RMSNorm computes in float32 even in a float64 model."""
    errs = {}
    for exact in (False, True):
        model = build_policy(PolicyConfig.qwen2_small(norm_in_dtype=exact))
        g = sample_group(model, G=6, prompt=PROMPT, prefix=PREFIX, max_new_tokens=6, seed=1)
        errs[exact] = prefix_gradient_identity(model, g, torch.linspace(-1.0, 2.0, 6, dtype=torch.float64))
    print(f"qwen2 float64 prefix-gradient identity: stock norm {errs[False]:.2e}, norm_in_dtype {errs[True]:.2e}")
    assert tol.MODEL_FLOAT64 < errs[False] < 1e-5           # float32 rounding, ~1e-7
    assert errs[True] <= tol.CLOSED_FORM


def test_llama_builds_and_scores():
    model = build_policy(PolicyConfig(arch="llama", hidden=32, heads=4, kv_heads=2, eos_logit_bias=1.0))
    g = sample_group(model, G=3, prompt=PROMPT, max_new_tokens=4, seed=0)
    logp, mask = token_logprobs(model, g)
    assert torch.isfinite(logp).all() and mask.sum().item() == g.lengths.sum()


def test_qwen2_0_5b_preset_has_the_published_shape():
    """Built on the meta device (no memory): Qwen2-0.5B has 494,032,768 parameters, counted by hand."""
    from transformers import AutoModelForCausalLM
    cfg = PolicyConfig.qwen2_0_5b()
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(cfg.hf_config())
    d, f, V, kv = 896, 4864, 151936, 2 * 64                 # kv: 2 KV heads of size 896 / 14
    layer = (d * d + d) + 2 * (d * kv + kv) + d * d + 3 * d * f + 2 * d
    assert V * d + 24 * layer + d == 494_032_768
    assert sum(p.numel() for p in model.parameters()) == 494_032_768
    assert model.config.tie_word_embeddings and cfg.device == "cuda"


def reference_rewards(g, name):
    """The rules re-derived from their definitions, on the raw token lists."""
    out = []
    for i, c in enumerate(g.completions):
        free = list(c[g.k:]) if i in g.shared else list(c)
        ended = len(c) > 0 and c[-1] == g.eos_token_id
        ans = free[:-1] if ended else free
        if name == "last_token_even":
            out.append(float(len(ans) > 0 and ans[-1] % 2 == 0))
        elif name == "answer_count_odd":
            out.append(float(sum(t == 1 for t in ans) % 2 == 1))
        else:
            out.append(float(ended and len(free) <= 3))
    return np.array(out)


@pytest.mark.parametrize("name", sorted(REWARD_RULES))
def test_reward_rules_are_deterministic_content_functions(tiny, name):
    g = sample_group(tiny, G=16, prompt=PROMPT, prefix=PREFIX, max_new_tokens=8, seed=5, shared=range(10))
    r = score(g, name)
    assert r.dtype == np.float64 and r.shape == (16,)
    assert np.array_equal(r, reference_rewards(g, name))
    assert np.array_equal(r, score(g, REWARD_RULES[name]))


def test_require_mixed_rewards(tiny):
    g = sample_group(tiny, G=4, prompt=PROMPT, prefix=PREFIX, max_new_tokens=8, seed=0,
                     reward="short_is_correct", require_mixed_rewards=True)
    assert np.ptp(g.rewards) > 0
    assert np.array_equal(np.array(g.rewards), reference_rewards(g, "short_is_correct"))
    with pytest.raises(InputError, match="all equal in 3 groups"):
        sample_group(tiny, G=4, prompt=PROMPT, max_new_tokens=4, seed=0, max_tries=3,
                     reward=lambda grp: np.zeros(grp.G), require_mixed_rewards=True)


@pytest.mark.parametrize("kwargs, match", [
    (dict(G=1), "G must be"),
    (dict(prefix=[4, 0]), "EOS"),
    (dict(prompt=[99]), "outside"),
    (dict(prompt=[]), "empty"),
    (dict(max_new_tokens=200), "exceeds"),
    (dict(temperature=0.0), "temperature"),
    (dict(shared=[0, 9]), "shared"),
    (dict(reward="nope"), "unknown reward rule"),
])
def test_sampling_bad_input(tiny, kwargs, match):
    args = dict(G=4, prompt=PROMPT, prefix=PREFIX, max_new_tokens=4, seed=0) | kwargs
    with pytest.raises(InputError, match=match):
        sample_group(tiny, **args)


def test_logprobs_bad_input(tiny):
    with pytest.raises(InputError, match="outside"):
        prefix_logprobs(tiny, PROMPT, [3, 16])
    with pytest.raises(InputError, match="empty"):
        prefix_logprobs(tiny, PROMPT, [])
    with pytest.raises(InputError, match="temperature"):
        prefix_logprobs(tiny, PROMPT, [3], temperature=-1.0)


def test_build_bad_input(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        build_policy(tmp_path / "missing")
    with pytest.raises(InputError, match="cannot load"):
        build_policy(tmp_path)
    with pytest.raises(InputError, match="arch"):
        PolicyConfig(arch="bert")
    with pytest.raises(InputError, match="multiple of heads"):
        PolicyConfig(hidden=30, heads=4)
    if not torch.cuda.is_available():
        with pytest.raises(InputError, match="CUDA is not available"):
            build_policy(PolicyConfig.tiny(device="cuda"))


def test_checkpoint_roundtrip_keeps_weights_and_eos_bias(tiny, tmp_path):
    tiny.save_pretrained(tmp_path)
    loaded = build_policy(tmp_path)
    assert [n for n, _ in loaded.named_parameters()] == [n for n, _ in tiny.named_parameters()]
    assert torch.equal(param_vector(loaded), param_vector(tiny))
    ids = torch.tensor([[1, 2, 3, 4, 5]])
    with torch.no_grad():
        assert torch.equal(loaded(input_ids=ids).logits, tiny(input_ids=ids).logits)


def test_parameter_utilities(tiny):
    n = sum(p.numel() for p in tiny.parameters())
    assert count_parameters(tiny) == n == param_vector(tiny).numel()
    clone = clone_model(tiny)
    state = copy_state(clone)
    v = param_vector(clone)
    set_param_vector(clone, v + 1.0)
    assert torch.equal(param_vector(clone), v + 1.0)
    assert torch.equal(param_vector(tiny), v)                   # the original is untouched
    assert clone.lm_head.weight is clone.get_input_embeddings().weight
    load_state(clone, state)
    assert torch.equal(param_vector(clone), v)
    with pytest.raises(InputError, match="entries"):
        set_param_vector(clone, v[:-1])


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_qwen2_small_on_cuda_float32_and_bf16_autocast():
    cfg = PolicyConfig.qwen2_small()
    ref_model = build_policy(cfg)                              # same weights, float64 on CPU
    model = build_policy(cfg, dtype="float32", device="cuda")
    g = sample_group(model, G=4, prompt=PROMPT, prefix=PREFIX, max_new_tokens=8, seed=0)
    assert all(c[:3] == tuple(PREFIX) for c in g.completions)
    logp, mask = token_logprobs(model, g)
    assert logp.device.type == "cuda" and logp.dtype == torch.float32
    with torch.no_grad():
        ref, _ = token_logprobs(ref_model, g)
    # float32 vs float64 forward of the same weights: float32 rounding only
    assert (logp.detach().cpu().double() - ref).abs().max().item() < 1e-4
    with torch.autocast("cuda", dtype=torch.bfloat16):
        logp_bf16, _ = token_logprobs(model, g)
    assert logp_bf16.dtype == torch.float32 and torch.isfinite(logp_bf16).all()
    diff = (logp_bf16.detach().cpu().double() - ref).abs().max().item()
    print(f"bf16 autocast vs float64 log-probs: max abs diff {diff:.2e}")
    assert diff < 0.1                                            # bf16 (8-bit mantissa) rough bound, nats
    (logp_bf16 * mask).sum().backward()
    assert torch.isfinite(flat_grad(model)).all()
