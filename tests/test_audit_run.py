"""ProofsCallback leaves the training unchanged, refuses bad input at on_train_begin, and its saved metrics,
``grpo-proofs audit`` and ``grpo-proofs audit --log`` agree (TRL 1.16.0, tiny random Qwen2 built offline, CPU).

* no interference: two real runs of the same config and seed, one with the callback (writing its
  ``proofs.jsonl``), one without; every parameter after 3 optimizer steps (inner steps, KL, clipping
  included) is bitwise equal, and, so that the comparison means something, differs from its initial value;
* bad input: a ``transformers.Trainer`` that is not a ``GRPOTrainer``, an unsupported TRL release, a
  config the mapping cannot model: one ``InputError`` from ``on_train_begin`` (no optimizer step taken);
  on the command line the same as one line and exit code 2, before any run;
* ``--log``: the saved run read back from ``proofs.jsonl`` and from ``trainer_state.json`` gives the
  callback's own records; ``--report`` writes the Markdown summary and the PNG plots;
* ``grpo-proofs audit --steps 2 --json``: the JSON shape of the command.
"""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

torch = pytest.importorskip("torch")
trl = pytest.importorskip("trl")
pytestmark = pytest.mark.skipif(trl.__version__ != "1.16.0", reason="the audit reads TRL 1.16.0")

from transformers.trainer_callback import PrinterCallback  # noqa: E402

from grpo_proofs.cli import main  # noqa: E402
from grpo_proofs.errors import InputError  # noqa: E402
from grpo_proofs.integrations import trl as audit_trl  # noqa: E402
from grpo_proofs.runtime.trl_offline import SHARP, build_trainer, float64, quiet, tiny_model_dir  # noqa: E402
from grpo_proofs.integrations.trl import ProofsCallback  # noqa: E402

CFG = dict(loss_type="grpo", num_iterations=2, beta=0.04, num_generations=4, max_completion_length=12,
           learning_rate=0.05, per_device_train_batch_size=16, bf16=False)
STEPS = 3


def cli(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def train(config: dict, steps: int, out, callbacks=(), **harness):
    out = str(out)
    with quiet(), float64():
        tr = build_trainer(config, output_dir=out, callbacks=list(callbacks), initializer_range=SHARP, max_steps=steps,
                           **harness)
        tr.remove_callback(PrinterCallback)
        tr.train()
    return tr, out


@pytest.fixture(scope="module")
def saved_run(tmp_path_factory):
    """(callback, trainer with it, trainer without it, output folder of the audited run)."""
    audit = ProofsCallback()
    with_cb, out = train(CFG, STEPS, tmp_path_factory.mktemp("audited"), [audit])
    with quiet():
        with_cb.save_state()
    without, _ = train(CFG, STEPS, tmp_path_factory.mktemp("plain"))
    return audit, with_cb, without, out


def test_the_callback_leaves_every_parameter_bitwise_unchanged(saved_run):
    audit, with_cb, without, _ = saved_run
    assert len(audit.records) == STEPS and any("proofs/clip_share" in r for r in audit.records)
    a, b = dict(with_cb.model.named_parameters()), dict(without.model.named_parameters())
    assert a.keys() == b.keys() and len(a) > 0
    with quiet(), float64():
        from transformers import Qwen2ForCausalLM

        initial = dict(Qwen2ForCausalLM.from_pretrained(tiny_model_dir(SHARP), dtype=torch.float64).named_parameters())
    moved = 0
    for name, p in a.items():
        assert torch.equal(p.detach(), b[name].detach()), name
        moved += not torch.equal(p.detach(), initial[name].detach())
    assert moved == len(a), "every parameter must have moved for the comparison to mean something"


def test_not_a_grpo_trainer_is_refused_at_train_begin(tmp_path):
    from datasets import Dataset
    from transformers import Qwen2ForCausalLM, Trainer, TrainingArguments

    with quiet(), float64():
        model = Qwen2ForCausalLM.from_pretrained(tiny_model_dir(), dtype=torch.float64)
        before = [p.detach().clone() for p in model.parameters()]
        data = Dataset.from_dict({"input_ids": [[1, 2, 3]] * 4, "labels": [[1, 2, 3]] * 4})
        args = TrainingArguments(output_dir=str(tmp_path), use_cpu=True,
                                 report_to="none", max_steps=1, per_device_train_batch_size=2, save_strategy="no")
        tr = Trainer(model=model, args=args, train_dataset=data, callbacks=[ProofsCallback(jsonl=False)])
        with pytest.raises(InputError, match="audits a trl.GRPOTrainer; it was added to a Trainer"):
            tr.train()
    assert tr.state.global_step == 0
    assert all(torch.equal(p, q) for p, q in zip(before, model.parameters()))


@pytest.mark.parametrize("case", ["version", "config"])
def test_bad_input_is_one_exception_at_train_begin(case, monkeypatch, tmp_path):
    cfg = dict(CFG, num_iterations=1)
    if case == "version":
        monkeypatch.setattr(audit_trl, "installed_trl", lambda: "1.15.0")
        match = r"reads the GRPOTrainer of TRL 1\.16\.0; TRL 1\.15\.0 is installed: install trl==1\.16\.0"
    else:
        cfg["top_entropy_quantile"] = 0.5
        match = "cannot model this config: top_entropy_quantile=0.5 is not modelled"
    with pytest.raises(InputError, match=match) as info:
        train(cfg, 1, tmp_path / "audited", [ProofsCallback(jsonl=False)])
    assert "\n" not in str(info.value)
    # the control: the same run without the callback trains
    tr, _ = train(cfg, 1, tmp_path / "plain")
    assert tr.state.global_step == 1


@pytest.mark.parametrize("argv, fragment", [
    (["--trl", "top_entropy_quantile=0.5"], "top_entropy_quantile=0.5 is not modelled"),
    (["--trl", "loss_type=grpo,output_dir=x"], "the audit sets output_dir itself"),
    (["--trl", "not_a_field=1"], "not_a_field"),
    (["--trl", "version=1.3"], "the config describes TRL 1.3"),
    (["--steps", "0"], "--steps"),
    (["--model", "/nonexistent/checkpoint"], "is not a folder"),
    (["--log", "/nonexistent/run"], "no such file or folder"),
    (["--log", ".", "--steps", "2"], "--log reads a saved run; --steps configure a new run"),
])
def test_cli_bad_input_one_line_exit_2(capsys, argv, fragment):
    code, out, err = cli(capsys, "audit", *argv)
    assert code == 2 and out == "" and err.count("\n") == 1 and fragment in err, err


def test_cli_unsupported_trl_is_one_line(capsys, monkeypatch):
    monkeypatch.setattr(audit_trl, "installed_trl", lambda: "1.15.0")
    code, out, err = cli(capsys, "audit")
    assert code == 2 and err.count("\n") == 1 and "install trl==1.16.0" in err


def test_log_of_the_saved_run_gives_the_callbacks_records(saved_run, capsys, tmp_path):
    audit, with_cb, _, out = saved_run
    assert os.path.isfile(os.path.join(out, "proofs.jsonl")) and os.path.isfile(os.path.join(out, "trainer_state.json"))
    code, text, err = cli(capsys, "audit", "--log", out, "--json", "--report", str(tmp_path / "rep"))
    assert code == 0 and err == ""
    got = json.loads(text)
    assert set(got) == {"trl_version", "config", "steps", "summary"} and got["trl_version"] == "1.16.0"
    assert got["steps"] == json.loads(json.dumps(audit.records))
    assert got["summary"]["lines"] == audit.summary["lines"]
    assert sorted(os.listdir(tmp_path / "rep")) == ["clip.png", "prefix.png", "report.md", "scale_loss.png"]
    for png in ("clip.png", "prefix.png", "scale_loss.png"):
        assert (tmp_path / "rep" / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    md = (tmp_path / "rep" / "report.md").read_text()
    assert "TRL: 1.16.0" in md and "## Per step" in md and md.count("\n| ") == STEPS + 1
    # trainer_state.json alone: the trainer's logged values (logging_steps = 1: each step's own)
    os.remove(os.path.join(out, "proofs.jsonl"))
    code, text, _ = cli(capsys, "audit", "--log", out, "--json")
    logged = json.loads(text)
    assert code == 0 and logged["trl_version"] is None and len(logged["steps"]) == STEPS
    for r, mine in zip(logged["steps"], audit.records):
        assert r.keys() == mine.keys()
        assert all(np.isclose(r[k], mine[k], rtol=1e-15, atol=0) for k in r)
    code, text, _ = cli(capsys, "audit", "--log", out)
    assert code == 0 and "logging window" in text and "summary" in text


def test_a_log_without_proofs_metrics_is_one_line(tmp_path, capsys):
    (tmp_path / "trainer_state.json").write_text(json.dumps({"log_history": [{"loss": 1.0, "step": 1}]}))
    code, _, err = cli(capsys, "audit", "--log", str(tmp_path))
    assert code == 2 and err.count("\n") == 1 and "holds no proofs/ metrics" in err


def test_audit_command_json_shape(capsys):
    code, text, err = cli(capsys, "audit", "--steps", "2", "--json")
    assert code == 0 and err == ""
    got = json.loads(text)
    assert list(got) == ["trl_version", "config", "steps", "summary"] and got["trl_version"] == "1.16.0"
    assert [r["step"] for r in got["steps"]] == [1, 2]
    for r in got["steps"]:
        assert all(k == "step" or k.startswith("proofs/") for k in r)
        assert r["proofs/weight_max_rel"] <= 1e-12 and r["proofs/adam_step"] == r["step"]
    assert got["config"]["loss_type"] == "dapo" and got["config"]["bf16"] is False
    assert got["summary"]["steps"] == 2 and got["summary"]["weight_agrees"] is True


@pytest.fixture(scope="module")
def checkpoint_dir(tmp_path_factory):
    """A local checkpoint as users have one: a random Qwen2 and a byte-level BPE tokenizer trained in code,
    both written with ``save_pretrained`` (float32, as saved)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    bpe.train_from_iterator([" ".join(f"w{i}" for i in range(1, 12))] * 50,
                            trainers.BpeTrainer(vocab_size=300, special_tokens=["<eos>"],
                                                initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    tok = PreTrainedTokenizerFast(tokenizer_object=bpe, eos_token="<eos>", pad_token="<eos>")
    cfg = Qwen2Config(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                      num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=128,
                      eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id, tie_word_embeddings=True)
    path = tmp_path_factory.mktemp("checkpoint")
    torch.manual_seed(0)
    with quiet():
        Qwen2ForCausalLM(cfg).save_pretrained(path)
        tok.save_pretrained(path)
    return str(path)


def test_audit_of_a_saved_checkpoint(checkpoint_dir, capsys):
    code, text, err = cli(capsys, "audit", "--model", checkpoint_dir, "--steps", "1", "--json")
    assert code == 0 and err == ""
    got = json.loads(text)
    assert got["summary"]["model"] == checkpoint_dir and [r["step"] for r in got["steps"]] == [1]
    # TRL computes in float32 on a float32 checkpoint: the mapped weights still agree to its bound
    assert got["steps"][0]["proofs/weight_max_rel"] <= 1e-5 and got["summary"]["weight_agrees"] is True
