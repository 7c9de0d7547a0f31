"""Which trainer release a config describes: the supported releases and how a version is chosen.

A trainer's loss changes between releases (TRL 1.10 turned the bias-corrected KL term on by
default; TRL 1.9.1 rescaled the ``dapo`` normaliser by S/K; verl 0.9 let ``gspo`` follow
``loss_agg_mode``), so every result of :mod:`grpo_proofs.trainers` is for one release. The version
is, in this order:

1. given: ``version=`` of the API functions, or a ``version`` (or ``trl_version``,
   ``verl_version``, ``openrlhf_version``) key in the config;
2. the installed release of the trainer (``importlib.metadata``), when one is installed;
3. the newest supported release.

A version that is not supported (given, or installed when none is given) is one
:class:`~grpo_proofs.errors.InputError` line that lists the supported ones.

>>> resolve("trl", "1.16").title
'TRL 1.16.0'
>>> resolve("trl", "1.9.0").label
'trl 1.9.0'
>>> [r.version for r in supported("verl")]
['0.9.1']
"""

from __future__ import annotations

import importlib.metadata
from functools import lru_cache
from dataclasses import dataclass

from ..errors import InputError

__all__ = ["Release", "RELEASES", "supported", "resolve", "how_chosen", "installed_version", "VERSION_KEYS", "pop_version",
           "release_of"]


@dataclass(frozen=True)
class Release:
    """One supported release of a trainer."""

    trainer: str  # "trl" | "verl" | "openrlhf"
    version: str  # "1.16.0"
    #: what sets this release's loss apart, in one line
    summary: str
    #: accepted spellings besides ``version`` (e.g. "1.16")
    aliases: tuple[str, ...] = ()

    @property
    def title(self) -> str:
        """'TRL 1.16.0' (the name people use, and the version)."""
        return f"{_NAMES[self.trainer]} {self.version}"

    @property
    def label(self) -> str:
        """'trl 1.16.0' (the distribution name, and the version)."""
        return f"{self.trainer} {self.version}"

    def at_least(self, version: str) -> bool:
        return _key(self.version) >= _key(version)


_NAMES = {"trl": "TRL", "verl": "verl", "openrlhf": "OpenRLHF"}
#: distribution name of each trainer on PyPI
DISTRIBUTIONS = {"trl": "trl", "verl": "verl", "openrlhf": "openrlhf"}

#: trainer -> supported releases, newest first
RELEASES: dict[str, tuple[Release, ...]] = {
    "trl": (
        Release("trl", "1.16.0", "bias-corrected KL term on by default; dapo/cispo/vespo normaliser rescaled by "
                "steps_per_generation / gradient_accumulation_steps; luspo masks its per-token loss", ("1.16",)),
        Release("trl", "1.9.0", "the mid-2026 formulas: plain k3 KL term by default, dapo/cispo/vespo divide by the "
                "generation batch's tokens, luspo averages over padding"),
    ),
    "verl": (Release("verl", "0.9.1", "engine workers: normalisers of the whole PPO mini-batch; gspo follows "
                     "loss_agg_mode", ("0.9",)),),
    "openrlhf": (Release("openrlhf", "0.11.2", "--actor.loss_agg_mode (token-mean or seq-mean-token-mean); the KL "
                         "loss is a token mean", ("0.11",)),),
}

#: config keys that carry the version, per trainer
VERSION_KEYS = ("version", "trl_version", "verl_version", "openrlhf_version")


def _key(version: str) -> tuple[int, ...]:
    return tuple(int(p) for p in version.split(".") if p.isdigit())


def supported(trainer: str) -> tuple[Release, ...]:
    """The supported releases of ``trainer``, newest first."""
    return RELEASES[trainer]


@lru_cache(maxsize=None)
def installed_version(trainer: str) -> str | None:
    """The installed version of the trainer's distribution, or None (read once per process: a metadata
    lookup scans every installed distribution)."""
    try:
        return importlib.metadata.version(DISTRIBUTIONS[trainer])
    except importlib.metadata.PackageNotFoundError:
        return None


def _listing(trainer: str) -> str:
    return ", ".join(r.version for r in RELEASES[trainer])


def _match(trainer: str, text: str) -> Release | None:
    for r in RELEASES[trainer]:
        if text == r.version or text in r.aliases:
            return r
    return None


def resolve(trainer: str, version=None) -> Release:
    """The release a config describes: ``version`` if given, else the installed one, else the newest."""
    if version is not None:
        if isinstance(version, bool) or not isinstance(version, (str, int, float)):
            raise InputError(f"{_NAMES[trainer]} version must be a version string such as "
                             f"{RELEASES[trainer][0].version!r}, got {version!r}")
        text = str(version).strip().lstrip("vV")
        found = _match(trainer, text)
        if found is None:
            raise InputError(f"{_NAMES[trainer]} {text} is not a supported release; supported: {_listing(trainer)}")
        return found
    have = installed_version(trainer)
    if have is None:
        return RELEASES[trainer][0]
    found = _match(trainer, have)
    if found is None:
        raise InputError(f"the installed {_NAMES[trainer]} {have} is not a supported release; supported: "
                         f"{_listing(trainer)} (give version=... to describe one of them)")
    return found


def how_chosen(trainer: str, version=None) -> str:
    """'given', 'installed' or 'newest supported': where :func:`resolve` takes the version from."""
    if version is not None:
        return "given"
    return "installed" if installed_version(trainer) is not None else "newest supported"


def pop_version(trainer: str, config):
    """Split a ``version`` key (or ``<trainer>_version``) off a config mapping: (version or None, rest)."""
    if not isinstance(config, dict):
        return None, config
    found = {k: config[k] for k in VERSION_KEYS if k in config}
    for k in found:
        if k not in ("version", f"{trainer}_version"):
            raise InputError(f"{k!r} names another trainer's version; use 'version' for {_NAMES[trainer]}")
    if len(found) > 1:
        raise InputError(f"the {_NAMES[trainer]} version is given twice ({', '.join(found)})")
    rest = {k: v for k, v in config.items() if k not in found}
    return (next(iter(found.values())) if found else None), rest


def release_of(trainer: str, config, version=None) -> tuple[Release, str, dict]:
    """(release, how it was chosen, the config without its version key) of a trainer config.

    The release is ``version`` or the config's own version key (both given and different: one
    :class:`InputError` line), else the installed one, else the newest supported (:func:`resolve`).
    """
    in_cfg, rest = pop_version(trainer, config)
    if version is not None and in_cfg is not None and str(in_cfg) != str(version):
        raise InputError(f"the {_NAMES[trainer]} version is given twice: {version!r} and {in_cfg!r} in the config")
    chosen = version if version is not None else in_cfg
    return resolve(trainer, chosen), how_chosen(trainer, chosen), rest
