"""The cost of confirming a proposition inside a real training step (prints figures, asserts nothing).

For one model and one batch (a prompt and G completions), two steps are timed:

* **bare**: forward (per-token log-probs), GRPO loss, backward, AdamW step;
* **confirmation**: the same step plus what ``grpo-proofs verify --device cuda`` adds: the
  SymPy-derived per-token gradient evaluated on the device and compared with autograd's
  dloss/dlog pi (captured by a hook), the prefix coefficient W of the shared positions, and
  the optimizer-state statistics of Prop. 2 (the fraction of coordinates whose step is not
  reward-scale invariant at this eps).

It prints the median times over several runs after warm-up (CUDA events on a GPU,
``time.perf_counter`` on the CPU), the overhead ratio (goal <= 1.15), the achieved model
TFLOP/s (6 x parameters x tokens / time) against the matmul peak measured on the same device in
the same run (bf16 on CUDA, goal >= 40 %), and peak memory.

    python benchmarks/gpu_step.py                       # CUDA: Qwen2-0.5B shape, G=16, up to 1024 tokens
    python benchmarks/gpu_step.py --config tiny --device cpu --G 4 --max-len 32   # a CPU smoke run
"""

from __future__ import annotations

import argparse
import math
import resource
import statistics
import sys
import time

import numpy as np
import torch

from grpo_proofs.evaluate import batched_gradient
from grpo_proofs.objective import group_numbers
from grpo_proofs.runtime.policy import PolicyConfig, build_policy, completion_logprobs, count_parameters
from grpo_proofs.reference import REFERENCE

CONFIGS = {"tiny": PolicyConfig.tiny, "small": PolicyConfig.small, "qwen2_small": PolicyConfig.qwen2_small,
           "qwen2_0_5b": PolicyConfig.qwen2_0_5b}


class Timer:
    """CUDA events on a GPU, perf_counter on the CPU."""

    def __init__(self, device: str):
        self.cuda = device == "cuda"

    def __call__(self, fn) -> float:
        if self.cuda:
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            torch.cuda.synchronize()
            return start.elapsed_time(end) / 1e3
        t0 = time.perf_counter()
        fn()
        return time.perf_counter() - t0


def matmul_peak(device: str, timer: Timer, n: int) -> tuple[float, str]:
    """Measured dense matmul throughput (TFLOP/s): bf16 on CUDA, float32 on the CPU."""
    dtype = torch.bfloat16 if device == "cuda" else torch.float32
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    for _ in range(3):
        a @ b
    reps = 20 if device == "cuda" else 3
    secs = timer(lambda: [a @ b for _ in range(reps)])
    return 2 * n**3 * reps / secs / 1e12, str(dtype).replace("torch.", "")


def make_batch(vocab: int, G: int, max_len: int, prompt_len: int, prefix_len: int, seed: int):
    """A prompt and G completions sharing a prefix; lengths spread over [max_len/4, max_len]."""
    rng = np.random.default_rng(seed)
    prompt = rng.integers(1, vocab, size=prompt_len).tolist()
    prefix = rng.integers(1, vocab, size=prefix_len).tolist()
    lengths = np.linspace(max(prefix_len + 1, max_len // 4), max_len, G).astype(int)
    completions = [prefix + rng.integers(1, vocab, size=L - prefix_len).tolist() for L in lengths]
    rewards = rng.integers(0, 2, size=G).astype(float)
    rewards[0], rewards[-1] = 1.0, 0.0  # a mixed group
    return prompt, completions, rewards


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", choices=sorted(CONFIGS), default=None, help="default: qwen2_0_5b on CUDA, tiny on CPU")
    p.add_argument("--device", choices=["cpu", "cuda"], default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--precision", choices=["float32", "bf16"], default="bf16",
                   help="bf16 = bf16 autocast with float32 master weights")
    p.add_argument("--G", type=int, default=16)
    p.add_argument("--max-len", type=int, default=1024)
    p.add_argument("--prefix-len", type=int, default=8)
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--compile", action="store_true", help="torch.compile the model")
    p.add_argument("--compile-mode", choices=["default", "reduce-overhead", "max-autotune"], default="default",
                   help="torch.compile mode (with --compile)")
    p.add_argument("--no-fused", action="store_true",
                   help="AdamW without the fused CUDA kernel (the default on CUDA is fused=True; CPU: never fused)")
    args = p.parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        print("gpu_step: --device cuda but this machine has no CUDA device; use --device cpu", file=sys.stderr)
        return 2
    cfg_name = args.config or ("qwen2_0_5b" if args.device == "cuda" else "tiny")
    cfg = CONFIGS[cfg_name](dtype="float32", device=args.device)
    model = build_policy(cfg)
    if args.compile:
        model = torch.compile(model, mode=args.compile_mode)
    n_params = count_parameters(model)
    prompt, completions, rewards = make_batch(cfg.vocab_size, args.G, args.max_len, 32, args.prefix_len, 0)
    lengths = np.array([len(c) for c in completions])
    tokens = int(args.G * len(prompt) + lengths.sum())
    opt = torch.optim.AdamW(model.parameters(), lr=1e-6, weight_decay=0.01,
                            fused=args.device == "cuda" and not args.no_fused)
    r = torch.as_tensor(rewards, device=args.device, dtype=torch.float32)
    autocast = torch.autocast(args.device, dtype=torch.bfloat16, enabled=args.precision == "bf16")
    num = group_numbers("grpo", rewards, lengths, sigma="sample")
    idx = torch.repeat_interleave(torch.arange(args.G), torch.as_tensor(lengths)).to(args.device)
    alpha = torch.as_tensor(np.concatenate(num.alpha), device=args.device)
    A_tok = torch.as_tensor(num.A, device=args.device)[idx]
    report: dict = {}

    def forward_backward(instrument: bool):
        opt.zero_grad(set_to_none=True)
        with autocast:
            logp, mask = completion_logprobs(model, prompt, completions)
        logp = logp.float()
        old = logp.detach()
        captured = {}
        if instrument:
            logp.register_hook(lambda g: captured.__setitem__("g", g))
        loss = REFERENCE["grpo"](logp, old, r, mask, sigma="sample")
        loss.backward()
        if instrument:
            # derived dJ/dlog pi at s = 1 on the device vs autograd's -dloss/dlog pi
            derived = batched_gradient("grpo", alpha=alpha.to(logp.dtype), A=A_tok.to(logp.dtype),
                                       x=torch.zeros_like(alpha, dtype=logp.dtype))
            measured = -captured["g"][mask > 0]
            report["grad_rel_err"] = ((derived - measured).abs().max() / derived.abs().max()).item()
            W = derived.new_zeros(args.prefix_len).index_add_(
                0, torch.cat([torch.arange(args.prefix_len, device=args.device)] * args.G),
                torch.stack([d[: args.prefix_len] for d in torch.split(derived, lengths.tolist())]).reshape(-1))
            report["W_prefix_first"] = W[0].item()
        opt.step()
        if instrument:
            # one host sync for the whole count (fused AdamW keeps state["step"] on the device: read it once)
            eps = opt.param_groups[0]["eps"]
            states = list(opt.state.values())
            correction = 1 - opt.param_groups[0]["betas"][1] ** float(states[0]["step"])
            small = torch.zeros((), dtype=torch.int64, device=args.device)
            total = 0
            for state in states:
                small += (state["exp_avg_sq"] < (1e3 * eps) ** 2 * correction).sum()
                total += state["exp_avg_sq"].numel()
            report["noninvariant_fraction"] = small.item() / total

    timer = Timer(args.device)
    peak_tflops, peak_dtype = matmul_peak(args.device, timer, 8192 if args.device == "cuda" else 1024)
    for instrument in (False, True):
        for _ in range(args.warmup):
            forward_backward(instrument)
    times: dict[str, list[float]] = {"bare": [], "confirmation": []}
    mem: dict[str, float] = {}
    for _ in range(args.runs):  # interleaved, so drift in clocks or load hits both alike
        for name, instrument in (("bare", False), ("confirmation", True)):
            if args.device == "cuda":
                torch.cuda.synchronize()
                torch.cuda.reset_peak_memory_stats()
            times[name].append(timer(lambda: forward_backward(instrument)))
            mem[name] = max(mem.get(name, 0.0), torch.cuda.max_memory_allocated() / 2**30 if args.device == "cuda"
                            else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20)
    results = {name: (statistics.median(times[name]), mem[name]) for name in times}
    bare, conf = results["bare"][0], results["confirmation"][0]
    model_tflops = 6 * n_params * tokens / bare / 1e12
    dev_name = torch.cuda.get_device_name() if args.device == "cuda" else "CPU"
    print(f"device: {dev_name}; torch {torch.__version__}; CUDA {torch.version.cuda}; config {cfg_name} "
          f"({n_params / 1e6:.1f} M parameters); precision {args.precision}; "
          f"compile {args.compile_mode if args.compile else 'off'}; fused AdamW {opt.defaults.get('fused') or False}")
    print(f"batch: G={args.G}, prompt 32 + completions up to {args.max_len} tokens = {tokens} tokens")
    print(f"{'step':<14} {'median (s)':>11} {'peak mem (GiB)':>15}")
    for name, (t, mem) in results.items():
        print(f"{name:<14} {t:>11.4f} {mem:>15.2f}")
    print(f"overhead ratio confirmation/bare: {conf / bare:.3f} (goal <= 1.15)")
    print(f"model TFLOP/s (6 N tokens / bare time): {model_tflops:.3g}; measured {peak_dtype} matmul peak: "
          f"{peak_tflops:.3g} TFLOP/s; fraction {model_tflops / peak_tflops:.1%} (goal >= 40% on CUDA bf16)")
    print(f"instrumentation: derived vs autograd dJ/dlog pi rel err {report['grad_rel_err']:.2e}; "
          f"W on the first shared token {report['W_prefix_first']:.3e}; "
          f"Adam coordinates with sqrt(v_hat) < 1e3 eps: {report['noninvariant_fraction']:.2%}")
    return 0 if math.isfinite(conf) else 1


if __name__ == "__main__":
    sys.exit(main())
