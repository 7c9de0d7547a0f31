"""Shared pieces of the trainer models: config keys, input checks, micro-batch loop.

A trainer module declares, per release, the keys its loss reads as ``{name: Key(default, check,
doc)}`` with the trainer's own key names; :func:`resolve_config` fills in defaults, validates
every value, accepts the release's other options (listed as not seen by the loss) and answers an
unknown key with the closest valid one. :func:`prepare` turns the padded
(B, T) arrays of the contract into float64 tensors, and :func:`accumulate` runs the trainer's
per-micro-batch loss over the micro-batches of one optimizer step and returns the summed loss
with its autograd gradient with respect to the per-token log-probs.

Data parallelism: every model runs with P = 1 rank. For every loss except verl ``geo_mean`` a run on P ranks with K micro-batches each gives the same weights as P = 1 with
the P*K micro-batches listed one after the other (the global normalisers are global, the local
ones see the same micro-batch), so nothing is lost; ``geo_mean`` has an extra 1/P there.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

import numpy as np

if TYPE_CHECKING:  # torch is imported where a loss is computed: reading a config needs none
    import torch

from ..errors import InputError
from . import option_tables

__all__ = [
    "Key", "Known", "resolve_config", "flatten", "number", "integer", "boolean", "choice", "optional",
    "Batch", "prepare", "accumulate",
]

_MISSING = object()


@dataclass(frozen=True)
class Key:
    """One config key of a trainer: default value, a check (returns the clean value) and a doc line."""

    default: Any
    check: Callable[[str, Any], Any]
    doc: str = ""


def number(lo: float | None = None, *, strict: bool = True, hi: float | None = None) -> Callable:
    """A finite real number, optionally > lo (``strict``) or >= lo, and <= hi."""

    def check(name: str, v: Any) -> float:
        if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)):
            raise InputError(f"{name} must be a number, got {v!r}")
        f = float(v)
        if not math.isfinite(f):
            raise InputError(f"{name} must be finite, got {v!r}")
        if lo is not None and (f <= lo if strict else f < lo):
            raise InputError(f"{name} must be {'>' if strict else '>='} {lo:g}, got {v!r}")
        if hi is not None and f > hi:
            raise InputError(f"{name} must be <= {hi:g}, got {v!r}")
        return f

    return check


def integer(lo: int = 1) -> Callable:
    """A whole number >= lo (a float with no fractional part is accepted)."""

    def check(name: str, v: Any) -> int:
        if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)) or float(v) != int(v):
            raise InputError(f"{name} must be a whole number >= {lo}, got {v!r}")
        if int(v) < lo:
            raise InputError(f"{name} must be >= {lo}, got {v!r}")
        return int(v)

    return check


def boolean(name: str, v: Any) -> bool:
    if not isinstance(v, (bool, np.bool_)):
        raise InputError(f"{name} must be true or false, got {v!r}")
    return bool(v)


def choice(*options: Any) -> Callable:
    def check(name: str, v: Any) -> Any:
        if isinstance(v, (list, dict)) or v not in options or (isinstance(v, bool) and not any(o is v for o in options)):
            raise InputError(f"{name} must be one of {', '.join(map(repr, options))}; got {v!r}")
        return v

    return check


def optional(inner: Callable) -> Callable:
    """None, or a value accepted by ``inner``."""

    def check(name: str, v: Any) -> Any:
        return None if v is None else inner(name, v)

    return check


def flatten(config: Mapping | None, prefix: str = "") -> dict[str, Any]:
    """Nested dicts -> dotted keys ({'policy_loss': {'loss_mode': 'gspo'}} -> 'policy_loss.loss_mode')."""
    if config is None:
        return {}
    if not isinstance(config, Mapping):
        raise InputError(f"a trainer config must be a mapping of key -> value, got {type(config).__name__}")
    out: dict[str, Any] = {}
    for k, v in config.items():
        if not isinstance(k, str):
            raise InputError(f"config keys must be strings, got {k!r}")
        key = f"{prefix}{k}"
        if isinstance(v, Mapping):
            out.update(flatten(v, key + "."))
        else:
            out[key] = v
    return out


@dataclass(frozen=True)
class Known:
    """The release's options the loss does not read: ``known(key)`` is True for one of them."""

    test: Callable[[str], bool]
    #: option names offered as the closest valid key
    candidates: frozenset = frozenset()

    def __call__(self, key: str) -> bool:
        return bool(self.test(key))


def resolve_config(trainer: str, spec: Mapping[str, Key], config: Mapping | None,
                   aliases: Mapping[str, str] | None = None, *, known=None) -> dict[str, Any]:
    """Defaults for missing keys, values checked; keys of the release the loss does not read are kept apart.

    Args:
        trainer: the release's name for messages ("TRL 1.16.0").
        spec: the keys the loss reads.
        aliases: other spellings -> spec name; a key ending in "." is a prefix replaced by its target.
        known: ``name -> bool``: True for an option of the release that the loss does not read
            (accepted, listed in ``_ignored``); with the candidates for the closest-key hint in
            ``known.candidates``.
    """
    flat = flatten(config)
    aliases = dict(aliases or {})
    given: dict[str, Any] = {}
    ignored: list[str] = []
    for key, value in flat.items():
        name = key
        for prefix, target in aliases.items():
            if prefix.endswith(".") and key.startswith(prefix):
                name = target + key[len(prefix):]
                break
            if key == prefix:
                name = target
                break
        if name not in spec:
            if known is not None and known(key):
                ignored.append(key)
                continue
            pool = set(spec) | set(getattr(known, "candidates", ()))
            near = option_tables.closest(key, pool) or option_tables.closest(name, pool)
            hint = f"; the closest valid key is {near!r}" if near else f"; keys the loss reads: {', '.join(sorted(spec))}"
            raise InputError(f"unknown {trainer} config key {key!r}{hint}")
        if name in given:
            raise InputError(f"{trainer} config key {name!r} is given twice (once as {key!r})")
        given[name] = value
    out: dict[str, Any] = {}
    for name, key in spec.items():
        value = given.get(name, _MISSING)
        out[name] = key.default if value is _MISSING else key.check(name, value)
    out["_given"] = frozenset(given)  # keys the user set (internal keys start with "_")
    out["_ignored"] = tuple(sorted(ignored))
    return out


@dataclass
class Batch:
    """The contract's arrays as float64 tensors, plus the step's micro-batches."""

    logp: torch.Tensor  # (B, T), requires grad
    old: torch.Tensor  # (B, T)
    adv: torch.Tensor  # (B,) or (B, T)
    mask: torch.Tensor  # (B, T), 0/1
    ref: torch.Tensor | None  # (B, T)
    micro_batches: list[torch.Tensor]
    max_completion_length: int | None

    @property
    def lengths(self) -> torch.Tensor:
        return self.mask.sum(-1)


def _array(name: str, value, shape: tuple[int, ...] | None = None, ndims: tuple[int, ...] = (2,)) -> np.ndarray:
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise InputError(f"{name} must be an array of numbers") from None
    if arr.ndim not in ndims:
        raise InputError(f"{name} must have {' or '.join(map(str, ndims))} dimension(s), got shape {arr.shape}")
    if shape is not None and arr.shape != shape[: arr.ndim]:
        raise InputError(f"{name} has shape {arr.shape}; it must match logp's {shape[:arr.ndim]}")
    if not np.all(np.isfinite(arr)):
        bad = tuple(int(i) for i in np.argwhere(~np.isfinite(arr))[0])
        raise InputError(f"{name} has NaN or inf at {bad}; padded positions too must hold finite numbers (any value)")
    return arr


def prepare(logp, old_logp, advantages, mask, ref_logp=None, micro_batches=None, max_completion_length=None,
            *, per_token_advantages: bool, cover_all_rows: bool, need_ref: bool) -> Batch:
    """Validate the contract's inputs and return them as a :class:`Batch` (one clear error per problem)."""
    import torch
    lp = _array("logp", logp)
    if lp.shape[0] < 1 or lp.shape[1] < 1:
        raise InputError(f"logp must be (B, T) with B, T >= 1, got shape {lp.shape}")
    shape = lp.shape
    old = _array("old_logp", old_logp, shape)
    m = _array("mask", mask, shape)
    if not np.all((m == 0) | (m == 1)):
        raise InputError("mask must contain only 0 and 1 (1 = completion token in the loss)")
    adv = _array("advantages", advantages, shape, ndims=(1, 2) if per_token_advantages else (1,))
    ref = None
    if ref_logp is not None:
        ref = _array("ref_logp", ref_logp, shape)
    elif need_ref:
        raise InputError("this config puts a KL term in the loss: pass ref_logp (reference log-probs, (B, T))")
    B = shape[0]
    if micro_batches is None:
        mbs = [list(range(B))]
    else:
        if isinstance(micro_batches, (str, bytes)) or not isinstance(micro_batches, Sequence) or len(micro_batches) == 0:
            raise InputError("micro_batches must be a non-empty list of row-index lists, e.g. [[0, 1], [2, 3]]")
        mbs, seen = [], set()
        for k, rows in enumerate(micro_batches):
            if isinstance(rows, (str, bytes)) or not isinstance(rows, (Sequence, np.ndarray)) or len(rows) == 0 \
                    or not all(isinstance(r, (int, np.integer)) and not isinstance(r, bool) for r in rows):
                raise InputError(f"micro_batches[{k}] must be a non-empty list of row indices")
            rows = [int(r) for r in rows]
            for r in rows:
                if not 0 <= r < B:
                    raise InputError(f"micro_batches[{k}] has row {r}, outside 0..{B - 1}")
                if r in seen:
                    raise InputError(f"row {r} appears in two micro-batches; each row belongs to at most one")
                seen.add(r)
            mbs.append(rows)
        if cover_all_rows and len(seen) != B:
            missing = sorted(set(range(B)) - seen)
            raise InputError(f"rows {missing[:8]} are in no micro-batch; the rows passed are the whole optimizer step")
    if max_completion_length is not None:
        max_completion_length = integer(1)("max_completion_length", max_completion_length)
    t = lambda a: torch.as_tensor(a, dtype=torch.float64)  # noqa: E731
    return Batch(t(lp).clone().requires_grad_(True), t(old), t(adv), t(m), None if ref is None else t(ref),
                 [torch.as_tensor(r, dtype=torch.long) for r in mbs], max_completion_length)


def accumulate(batch: Batch, micro_loss: Callable[[torch.Tensor, int], torch.Tensor]) -> tuple[float, np.ndarray]:
    """Sum ``micro_loss(rows, k)`` over the micro-batches; return (loss, d loss / d logp)."""
    import torch
    total = torch.zeros((), dtype=torch.float64)
    for k, rows in enumerate(batch.micro_batches):
        total = total + micro_loss(rows, k)
    (grad,) = torch.autograd.grad(total, batch.logp, allow_unused=True)
    if grad is None:  # pragma: no cover - every loss depends on logp
        grad = torch.zeros_like(batch.logp)
    return float(total.detach()), grad.detach().numpy().copy()
