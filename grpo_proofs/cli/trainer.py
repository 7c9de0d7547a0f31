"""``grpo-proofs trainer``: what a TRL / verl / OpenRLHF config optimises, and the propositions' verdicts.

    grpo-proofs trainer --trl loss_type=dapo,epsilon_high=0.28,num_iterations=4
    grpo-proofs trainer --trl grpo_config.yaml          # the YAML of `trl grpo --config`, or a run's JSON
    grpo-proofs trainer --verl policy_loss.loss_mode=gspo,adv_estimator=grpo --json
    grpo-proofs trainer --verl "algorithm.adv_estimator=grpo actor_rollout_ref.actor.ppo_epochs=2"
    grpo-proofs trainer --openrlhf "--actor.policy_loss_type gspo --algo.advantage.estimator group_norm"
    grpo-proofs trainer --config run.yaml               # any of these formats, or a top-level trl/verl/openrlhf key
    grpo-proofs trainer --trl loss_type=dapo --release 1.9.0

Each answer is for one release (``--release``, or ``version=`` among the pairs; by default the
installed release, else the newest supported). Pair values are read as YAML scalars (numbers,
true/false, null; [a, b] for pairs), one value at a time.
"""

from __future__ import annotations

import os

from ..errors import InputError
from .common import add_json_flag, emit_json

__all__ = ["register", "parse_pairs", "load_config", "describe", "read_spec"]

# keyed by the name of the symbol in grpo_proofs.notation (looked up when a config is described)
_LEGEND = {
    "K_acc": "K: micro-batches accumulated into the optimizer step",
    "b_k": "b_k: rows (completions) in micro-batch k",
    "N_k": "N_k: active tokens in micro-batch k",
    "T_k": "T_k: padded width of micro-batch k's response tensor",
    "T_pad": "T_pad: padded width of the generation batch (padding included in the mean)",
    "B_step": "B: rows in the optimizer step (verl: the PPO mini-batch)",
    "S_seq": "S: non-empty sequences in the optimizer step",
    "L_i": "L_i: |o_i|, tokens of completion i",
    "L_max": "L_max: max_completion_length",
    "C_scale": "C: loss_scale_factor",
    "S_gen": "S_g: steps_per_generation (optimizer-step slices of one generation batch)",
}
_N_MEANING = {"trl": "N: active tokens in the whole generation batch (num_items_in_batch)",
              "verl": "N: active tokens in the PPO mini-batch (batch_num_tokens)",
              "openrlhf": "N: active tokens in the optimizer step (all micro-batches)"}


def _split(text: str) -> list[str]:
    """Split on commas that are not inside [] or {}."""
    parts, depth, cur = [], 0, []
    for ch in text:
        if ch in "[{":
            depth += 1
        elif ch in "]}":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    parts.append("".join(cur))
    if depth != 0:
        raise InputError(f"unbalanced brackets in {text!r}")
    return [p.strip() for p in parts if p.strip()]


def parse_pairs(text: str | None) -> dict:
    """'loss_type=dapo,epsilon_high=0.28' -> {'loss_type': 'dapo', 'epsilon_high': 0.28} (YAML values)."""
    import yaml

    out: dict = {}
    for part in _split(text or ""):
        if "=" not in part:
            raise InputError(f"expected key=value, got {part!r} (e.g. loss_type=dapo,epsilon_high=0.28)")
        key, value = (s.strip() for s in part.split("=", 1))
        if not key:
            raise InputError(f"missing key in {part!r}")
        if key in out:
            raise InputError(f"key {key!r} is given twice")
        try:
            out[key] = _numbers(yaml.safe_load(value)) if value else None
        except yaml.YAMLError:
            raise InputError(f"cannot read the value of {key!r}: {value!r} (numbers, true/false, null, words, [a, b])") from None
    return out


def _numbers(v):
    """YAML 1.1 reads 3e-4 as a string; read such strings as the numbers they are."""
    if isinstance(v, list):
        return [_numbers(x) for x in v]
    if isinstance(v, str):
        try:
            f = float(v)
        except ValueError:
            return v
        return f if v.strip().lower() not in ("nan", "inf", "-inf", "+inf", "infinity", "-infinity") else v
    return v


def load_config(path: str) -> tuple[str, dict]:
    """A trainer config file in any supported format -> (trainer, config) (see grpo_proofs.trainers.config_files)."""
    from ..trainers.config_files import read_file

    loaded = read_file(path)
    return loaded.trainer, loaded.config


def read_spec(trainer: str, text: str) -> tuple[dict, str]:
    """What follows ``--trl``/``--verl``/``--openrlhf``: a file, key=value pairs, verl overrides or an OpenRLHF line."""
    from ..trainers.config_files import read_file, read_text

    text = (text or "").strip()
    if text and os.path.isfile(text):
        loaded = read_file(text, trainer)
        return loaded.config, loaded.format
    if text.endswith((".yaml", ".yml", ".json", ".toml", ".sh")) and "=" not in text:
        raise InputError(f"cannot read {text}: no such file")
    if trainer == "openrlhf" and text.startswith("-"):
        loaded = read_text("openrlhf", text)
        return loaded.config, loaded.format
    if trainer == "verl" and len(text.split()) > 1:
        loaded = read_text("verl", text)
        return loaded.config, loaded.format
    return parse_pairs(text), "pairs"


def _plain(v):
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    return v


def _show(expr) -> str:
    """sstr with the 1e-8 length guards written as 1e-8."""
    import sympy as sp

    return sp.sstr(expr).replace("1/100000000", "1e-8")


def describe(trainer: str, config: dict, version=None) -> dict:
    """Everything the command prints, as a JSON-able dict."""
    import sympy as sp

    from .. import notation as n
    from ..trainers import propositions, to_variant

    mp = to_variant(trainer, config, version=version)
    v = mp.variant
    symbols = sorted(mp.weight.free_symbols | (mp.kl_weight.free_symbols if mp.kl_weight is not None else set()), key=str)
    legend_of = {getattr(n, name): text for name, text in _LEGEND.items()}
    legend = [_N_MEANING[mp.trainer] if s is n.N_step else legend_of[s] for s in symbols if s in legend_of or s is n.N_step]
    eff = {k: _plain(val) for k, val in mp.config.items() if not k.startswith("_")}
    rel = mp.release
    return {
        "trainer": mp.trainer,
        "release": {"trainer": rel.trainer, "version": rel.version, "title": rel.title, "summary": rel.summary,
                    "chosen": mp.config["_release_source"]},
        "config": eff,
        "given": sorted(mp.config["_given"]),
        "ignored": list(mp.ignored),
        "surrogate": mp.surrogate + (" (sequence ratio)" if mp.sequence else ""),
        "weight": _show(mp.weight),
        "weight_latex": sp.latex(mp.weight),
        "symbols": legend,
        "alpha_one_group": sp.sstr(mp.alpha_clean),
        "variant": {"ratio": v.ratio.value, "eps_low": v.eps_low, "eps_up": v.eps_up, "advantage": v.advantage,
                    "sigma_eps": v.sigma_eps, "regularizer": v.regularizer.value, "beta": v.beta},
        "variant_exact": mp.exact,
        "advantage": mp.advantage,
        "kl": None if mp.kl is None else {"estimator": mp.kl, "coef": mp.kl_coef, "weight": _show(mp.kl_weight)},
        "kl_in_reward": mp.kl_in_reward,
        "matches": list(mp.matches),
        "closest": list(mp.closest),
        "mu": mp.mu,
        "propositions": [{"label": p.label, "title": p.title, "verdict": p.verdict, "holds": p.holds, "reason": p.reason,
                          "choices": [list(c) for c in p.choices]} for p in propositions(mp)],
        "notes": list(mp.notes),
    }


def _print(d: dict) -> None:
    name = {"trl": "GRPOTrainer", "verl": "actor", "openrlhf": "PolicyLoss"}[d["trainer"]]
    given = ", ".join(f"{k}={d['config'][k]}" for k in d["given"]) or "all defaults"
    rel = d["release"]
    print(f"{rel['title']} {name} ({given})")
    print(f"  release: {rel['title']} ({rel['chosen']}): {rel['summary']}")
    if d["ignored"]:
        count = len(d["ignored"])
        print(f"  not seen by the loss ({count} option{'s' if count != 1 else ''}): {', '.join(d['ignored'])}")
    v = d["variant"]
    clip = "-" if v["eps_low"] is None and v["eps_up"] is None else f"{v['eps_low']}/{v['eps_up']}"
    rows = [
        ("per-token weight", f"omega_i,t = {d['weight']}   (dL/dlogp = -omega A f; f = branch factor)"),
        *[("", f"  {line}") for line in d["symbols"]],
        ("surrogate", d["surrogate"]),
        ("one group, one micro-batch", f"alpha_i,t = {d['alpha_one_group']}   ratio {v['ratio']}, clip {clip}"),
        ("advantage", d["advantage"]),
        ("KL in the loss", "none" if d["kl"] is None else f"{d['kl']['estimator']}, coefficient {d['kl']['coef']:g}, weight {d['kl']['weight']}"),
    ]
    if d["kl_in_reward"]:
        rows.append(("KL in the reward", d["kl_in_reward"]))
    if d["matches"]:
        match = ", ".join(d["matches"]) + " (alpha equal up to a constant factor, same ratio kind)"
    else:
        match = "none" + (f" (closest: {', '.join(d['closest'])}, differing in the advantage or ratio)" if d["closest"] else "")
    rows += [("Table 1 method", match), ("Variant gradient exact", d["variant_exact"]),
             ("optimizer steps per batch", f"mu = {d['mu']:g}")]
    width = max(len(k) for k, _ in rows)
    for k, val in rows:
        print(f"  {k.ljust(width)}  {val}")
    print("propositions")
    for p in d["propositions"]:
        print(f"  {p['title']}: {p['verdict'].upper()}")
        print(f"      {p['reason']}")
    if d["notes"]:
        print("notes")
        for note in d["notes"]:
            print(f"  - {note}")


def run(args) -> int:
    if args.config:
        trainer, cfg = load_config(args.config)
    else:
        trainer = next(t for t in ("trl", "verl", "openrlhf") if getattr(args, t) is not None)
        cfg, _ = read_spec(trainer, getattr(args, trainer))
    d = describe(trainer, cfg, args.release)
    if args.json:
        emit_json(d)
    else:
        _print(d)
    return 0


def register(sub) -> None:
    p = sub.add_parser("trainer", help="what a TRL / verl / OpenRLHF config optimises; verdicts of the propositions",
                       description=__doc__.split("\n\n")[0])
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--trl", nargs="?", const="", metavar="KEY=VALUE,...|FILE",
                   help="TRL GRPOConfig fields (loss_type=dapo,...), or a `trl grpo --config` YAML / training-args JSON")
    g.add_argument("--verl", nargs="?", const="", metavar="KEY=VALUE,...|OVERRIDES|FILE",
                   help="verl actor keys (policy_loss.loss_mode=gspo,adv_estimator=grpo), Hydra overrides "
                        "(\"algorithm.adv_estimator=grpo actor_rollout_ref.actor.ppo_epochs=2\"), a Hydra YAML or a script")
    g.add_argument("--openrlhf", nargs="?", const="", metavar="KEY=VALUE,...|ARGS|FILE",
                   help="OpenRLHF option names without dashes (actor.policy_loss_type=gspo,...), an argument line "
                        "(\"--actor.eps_clip 0.2 ...\") or a script")
    g.add_argument("--config", metavar="FILE", help="a trainer config in any of these formats, or a YAML with one "
                                                    "top-level key: trl, verl or openrlhf")
    p.add_argument("--release", metavar="VERSION", help="the trainer release to describe (default: the installed one, "
                                                       "else the newest supported)")
    add_json_flag(p)
    p.set_defaults(func=run)
