"""A real ``trl.GRPOTrainer`` built offline on the CPU: tiny random causal LM, tokenizer built in code.

What a user builds, with nothing downloaded (``HF_HUB_OFFLINE=1`` works):

* :func:`tiny_model_dir` -- a tiny randomly initialised Qwen2 causal LM (float64, 1 layer, hidden
  size 16, vocabulary of 8 words), saved once per process to a temporary folder, so TRL loads its
  reference model from the folder the way it does from a hub checkpoint;
* :func:`tokenizer` -- a word-level tokenizer of that vocabulary, built in code (token 0 is EOS and
  padding);
* :func:`prompt_texts` -- an in-memory prompt set of 1 to 3 words, seeded;
* :func:`reward_count`, :func:`reward_length` -- deterministic rewards of the completion tokens
  (multiples of 1/4, exact in float32, which TRL casts rewards to);
* :func:`build_trainer` -- the ``GRPOTrainer`` of a config (GRPOConfig fields), on that model or on
  a local checkpoint folder.

Run the trainer inside :func:`float64` (the tiny model's dtype: every tensor TRL creates without a
dtype is then float64) and :func:`quiet` (TRL's and transformers' notices about these settings stay
out of the output).

>>> [tokenizer().decode([i]) for i in (0, 1, 7)]
['<eos>', 'w1', 'w7']
>>> reward_count(None, None, [[1, 2], [3, 3]]), reward_length(None, None, [[1, 2, 3]])
([3.0, 2.0], [0.75])
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import tempfile
import warnings

import numpy as np

from ..errors import InputError

__all__ = ["VOCAB", "SHARP", "tokenizer", "tiny_model_dir", "prompt_texts", "reward_count", "reward_length", "float64", "quiet",
           "build_trainer", "model_and_tokenizer"]

#: the tiny model's vocabulary (token 0 is EOS and padding)
VOCAB = ["<eos>"] + [f"w{i}" for i in range(1, 8)]
#: initializer range of the tiny model: 0.02 (near-uniform next-token distributions, the oracle tests' model)
#: or :data:`SHARP` (sharp ones: completions of one prompt often share their first tokens, as an LLM's do)
SHARP = 2.0
_MODEL_DIRS: dict[float, str] = {}


def reward_count(prompts, completions, completion_ids, **kwargs):
    """Reward 1: the sum of the completion's token ids modulo 4 (0, 1, 2 or 3)."""
    return [float(sum(int(t) for t in ids) % 4) for ids in completion_ids]


def reward_length(prompts, completions, completion_ids, **kwargs):
    """Reward 2: (length modulo 4) / 4 (multiples of 1/4: exact in float32)."""
    return [(len(ids) % 4) / 4.0 for ids in completion_ids]


@contextlib.contextmanager
def float64():
    """torch's default dtype is float64 inside (restored on exit)."""
    import torch

    before = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        yield
    finally:
        torch.set_default_dtype(before)


@contextlib.contextmanager
def quiet():
    """TRL's and transformers' notices and progress bars about the harness's own settings stay out of the output."""
    import logging

    from transformers.utils import logging as hf_logging

    verbosity, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    trl_logger = logging.getLogger("trl")
    trl_level = trl_logger.level
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    trl_logger.setLevel(logging.ERROR)  # e.g. luspo's advice to use sequence-level ratios
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        trl_logger.setLevel(trl_level)
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()


def tokenizer():
    """A word-level tokenizer of :data:`VOCAB`, built in code (token 0 is EOS and padding)."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.WordLevel({w: i for i, w in enumerate(VOCAB)}, unk_token="w1"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<eos>", pad_token="<eos>", unk_token="w1")


def tiny_model_dir(initializer_range: float = 0.02) -> str:
    """A tiny random Qwen2 (float64), saved once per process to a temporary folder (removed at exit)."""
    if initializer_range in _MODEL_DIRS:
        return _MODEL_DIRS[initializer_range]
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    path = tempfile.mkdtemp(prefix="grpo-proofs-trl-")
    atexit.register(shutil.rmtree, path, True)
    cfg = Qwen2Config(vocab_size=len(VOCAB), hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                      num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=64, eos_token_id=0,
                      pad_token_id=0, bos_token_id=0, tie_word_embeddings=True, initializer_range=initializer_range)
    with quiet(), float64():
        with torch.random.fork_rng(devices=[]):  # the caller's random stream is left as it was
            torch.manual_seed(0)
            Qwen2ForCausalLM(cfg).save_pretrained(path)
    _MODEL_DIRS[initializer_range] = path
    return path


def prompt_texts(count: int, seed: int = 0) -> list[str]:
    """``count`` prompts of 1 to 3 words of :data:`VOCAB` (seeded; EOS never appears)."""
    rng = np.random.default_rng(seed)
    return [" ".join(f"w{int(t)}" for t in rng.integers(1, len(VOCAB), size=int(rng.integers(1, 4))))
            for _ in range(count)]


def model_and_tokenizer(path: str | None, initializer_range: float = 0.02):
    """(model, tokenizer): the tiny model (``path`` None, float64) or a local checkpoint folder's own."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, Qwen2ForCausalLM

    if path is None:
        return Qwen2ForCausalLM.from_pretrained(tiny_model_dir(initializer_range), dtype=torch.float64), tokenizer()
    if not os.path.isdir(path) or not os.path.isfile(os.path.join(path, "config.json")):
        raise InputError(f"--model {path!r} is not a model folder (a folder with config.json, as save_pretrained "
                         "writes); give a local checkpoint folder, nothing is downloaded")
    try:
        model = AutoModelForCausalLM.from_pretrained(path, local_files_only=True)
        tok = AutoTokenizer.from_pretrained(path, local_files_only=True)
    except (OSError, ValueError, KeyError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputError(f"cannot load a causal LM and its tokenizer from {path!r}: {first}") from None
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return model, tok


def build_trainer(config: dict, *, output_dir: str, reward_funcs=(reward_count,), prompts: int = 8, seed: int = 0,
                  model_path: str | None = None, initializer_range: float = 0.02, callbacks=(), model=None,
                  **harness):
    """A ``trl.GRPOTrainer`` of ``config`` (GRPOConfig fields, passed as they are) on the CPU, offline.

    ``harness`` holds further GRPOConfig fields the caller sets (``max_steps``, ...); the run writes
    nothing but what ``output_dir`` receives (``save_strategy="no"``, ``report_to="none"``). The
    dataset holds at least one generation batch of prompts. ``model``: a (model, tokenizer) pair built
    by the caller instead (``model_path`` is then ignored). Call inside :func:`quiet` (and
    :func:`float64` for the tiny model).
    """
    from datasets import Dataset
    from trl import GRPOConfig, GRPOTrainer

    fixed = dict(output_dir=output_dir, use_cpu=True, report_to="none", save_strategy="no", disable_tqdm=True,
                 seed=seed, data_seed=seed, logging_steps=1, dataloader_num_workers=0)
    fixed.update(harness)
    clash = sorted(set(config) & set(fixed))
    if clash:
        raise InputError(f"the run sets {', '.join(clash)} itself; leave {'it' if len(clash) == 1 else 'them'} out of "
                         "the config")
    try:
        args = GRPOConfig(**fixed, **config)
    except TypeError as exc:  # an unknown field: GRPOConfig.__init__() got an unexpected keyword argument 'x'
        raise InputError(f"not a GRPOConfig field: {str(exc).split('argument')[-1].strip()}") from None
    except ValueError as exc:
        raise InputError(f"TRL refuses the config: {str(exc).strip().splitlines()[0]}") from None
    model, tok = model if model is not None else model_and_tokenizer(model_path, initializer_range)
    count = max(prompts, args.generation_batch_size // args.num_generations)
    data = Dataset.from_dict({"prompt": prompt_texts(count, seed)})
    return GRPOTrainer(model=model, reward_funcs=list(reward_funcs), args=args, train_dataset=data,
                       processing_class=tok, callbacks=list(callbacks))
