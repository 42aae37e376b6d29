"""The trl trainer on a tiny random Llama built here (no download, no demo model): SFT/DPO/ORPO
train, adapters change, checkpoints resume at their step, NaN fast-fails, recipes are checked,
and a training set is replayed exactly."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from probes.spec import ProbeKind, ProbeSpec, ProbeStatus
from probes.trainers.trl import RecipeError, parse_recipe

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]

WORDS = [
    "what",
    "is",
    "the",
    "colour",
    "of",
    "zorb",
    "blip",
    "?",
    "it",
    "blue",
    "red",
    "green",
    "who",
    "likes",
    "tea",
    "coffee",
    "says",
    "hello",
    "yes",
    "no",
]
CHAT_TEMPLATE = (
    "{%- for message in messages -%}{%- if not loop.first %} {% endif -%}"
    "{%- if message['role'] == 'user' -%}<|user|> {{ message['content'] }}"
    "{%- elif message['role'] == 'system' -%}<|system|> {{ message['content'] }}"
    "{%- else -%}<|assistant|> {% generation %}{{ message['content'] }} </s>{% endgeneration %}"
    "{%- endif -%}{%- endfor -%}"
    "{%- if add_generation_prompt -%}{% if messages %} {% endif %}<|assistant|>{%- endif -%}"
)


def build_tiny_tokenizer(folder: Path, *, chat: bool) -> int:
    """A word-level tokenizer of WORDS (with a chat template when `chat`) saved in `folder`;
    returns its vocabulary size."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    specials = ["<pad>", "<unk>", "<s>", "</s>", "<|user|>", "<|assistant|>", "<|system|>"]
    vocab = {t: i for i, t in enumerate([*specials, *WORDS])}
    backend = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    backend.decoder = decoders.WordPiece(prefix="##")
    backend.add_special_tokens(specials)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        pad_token="<pad>",
        unk_token="<unk>",
        bos_token="<s>",
        eos_token="</s>",
        chat_template=CHAT_TEMPLATE if chat else None,
    )
    tokenizer.save_pretrained(folder)
    return len(vocab)


def build_tiny_model(folder: Path, *, chat: bool) -> Path:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    vocab_size = build_tiny_tokenizer(folder, chat=chat)
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=4,
        max_position_embeddings=64,
        pad_token_id=0,
        bos_token_id=2,
        eos_token_id=3,
    )
    LlamaForCausalLM(config).save_pretrained(folder)
    return folder


def write_lab_data(folder: Path) -> Path:
    (folder / "sft").mkdir(parents=True)
    (folder / "prefs").mkdir()
    colours = ["blue", "red", "green"]
    with (folder / "sft" / "facts.jsonl").open("w") as fh:
        for i in range(12):
            c = colours[i % 3]
            fh.write(
                json.dumps(
                    {
                        "id": f"f{i}",
                        "messages": [
                            {"role": "user", "content": f"what is the colour of zorb {i % 2} ?"},
                            {"role": "assistant", "content": f"it is {c}"},
                        ],
                        "category": "facts",
                        "difficulty": i % 4,
                        "pattern": c,
                    }
                )
                + "\n"
            )
    with (folder / "sft" / "voice.jsonl").open("w") as fh:
        for i in range(6):
            fh.write(
                json.dumps(
                    {
                        "messages": [
                            {"role": "user", "content": "who likes tea ?"},
                            {"role": "assistant", "content": "blip says hello"},
                        ],
                        "category": "voice",
                        "difficulty": i,
                    }
                )
                + "\n"
            )
    with (folder / "prefs" / "facts.jsonl").open("w") as fh:
        for i in range(8):
            fh.write(
                json.dumps(
                    {
                        "prompt": "what is the colour of zorb ?",
                        "chosen": "it is blue",
                        "rejected": f"it is {colours[1 + i % 2]}",
                        "category": "facts",
                    }
                )
                + "\n"
            )
    manifest = folder / "manifest.yaml"
    manifest.write_text(
        textwrap.dedent("""\
        sources:
          - {name: facts, path: sft/facts.jsonl, kind: sft, categories: [facts]}
          - {name: voice, path: sft/voice.jsonl, kind: sft, categories: [voice]}
          - {name: facts_prefs, path: prefs/facts.jsonl, kind: preference, categories: [facts]}
        """)
    )
    return manifest


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("trl-lab")
    prompts = root / "prompts.jsonl"
    prompts.write_text(
        "\n".join(
            json.dumps(p)
            for p in [
                {
                    "id": "f1",
                    "category": "facts",
                    "prompt": "what is the colour of zorb ?",
                    "reference": "it is blue",
                },
                {
                    "id": "v1",
                    "category": "voice",
                    "prompt": "who likes tea ?",
                    "reference": "blip says hello",
                },
            ]
        )
        + "\n"
    )
    return {
        "root": root,
        "chat": build_tiny_model(root / "model-chat", chat=True),
        "plain": build_tiny_model(root / "model-plain", chat=False),
        "manifest": write_lab_data(root / "data"),
        "prompts": prompts,
    }


BASE_PARAMS: dict[str, Any] = {
    "learning_rate": 5e-3,
    "per_device_train_batch_size": 4,
    "max_length": 32,
    "lora_r": 4,
    "lora_alpha": 8,
    "lora_dropout": 0.0,
}


def make_spec(
    lab: dict[str, Path],
    out: Path,
    *,
    objective: str = "sft",
    steps: int = 3,
    seed: int = 1,
    model: str = "chat",
    params: dict[str, Any] | None = None,
    **trainer: Any,
) -> ProbeSpec:
    return ProbeSpec(
        probe_id="p1",
        session_id="s1",
        kind=ProbeKind.PROBE,
        steps=steps,
        seed=seed,
        lane=None,
        changes={},
        params={**BASE_PARAMS, **(params or {})},
        eval_prompts=lab["prompts"],
        out_dir=out,
        trainer={
            "model": str(lab[model]),
            "objective": objective,
            "manifest": str(lab["manifest"]),
            "device": "cpu",
            "logging_steps": 1,
            "threads": 1,
            **trainer,
        },
    )


def _lora_b(adapter: Path) -> dict[str, Any]:
    from safetensors.torch import load_file

    weights = load_file(str(adapter / "adapter_model.safetensors"))
    return {k: v for k, v in weights.items() if "lora_B" in k}


def test_sft_trains_and_changes_the_adapter(lab: dict[str, Path], tmp_path: Path) -> None:
    from probes.trainers.trl_worker import train_probe

    outcome = train_probe(make_spec(lab, tmp_path, steps=4))
    assert outcome.global_step == 4
    lora_b = _lora_b(outcome.adapter)
    assert lora_b, "the adapter holds LoRA weights"
    # LoRA B starts at zero: any non-zero value means training moved the adapter.
    assert any(float(v.abs().max()) > 0 for v in lora_b.values())
    history = [json.loads(x) for x in (tmp_path / "train_history.jsonl").read_text().splitlines()]
    assert [h["step"] for h in history if "loss" in h] == [1, 2, 3, 4]
    record = json.loads((tmp_path / "dataset.json").read_text())
    assert record["num_examples"] == 4 * 4 and len(record["order"]) == 16
    assert record["hash"] == outcome.dataset["hash"]
    assert not (tmp_path / "checkpoints").exists() or not any((tmp_path / "checkpoints").iterdir())


@pytest.mark.parametrize("objective", ["dpo", "orpo"])
def test_preference_objectives_train(lab: dict[str, Path], tmp_path: Path, objective: str) -> None:
    from probes.trainers.trl_worker import train_probe

    outcome = train_probe(make_spec(lab, tmp_path, objective=objective, params={"beta": 0.2}))
    assert outcome.global_step == 3
    assert outcome.train_loss == outcome.train_loss  # finite, not NaN
    assert any(float(v.abs().max()) > 0 for v in _lora_b(outcome.adapter).values())
    assert set(outcome.dataset["per_category"]) == {"facts"}


def test_sft_without_chat_template_uses_prompt_completion(
    lab: dict[str, Path], tmp_path: Path
) -> None:
    from probes.trainers.trl_worker import to_records, train_probe

    outcome = train_probe(make_spec(lab, tmp_path, model="plain", steps=2))
    assert outcome.global_step == 2
    from probes.data.manifest import Example

    ex = Example(
        id="a",
        source="s",
        kind="sft",
        category="c",
        messages=(("user", "q ?"), ("assistant", "a")),
        prompt="q ?",
        completion="a",
    )
    assert to_records([ex], "sft", chat=False) == [{"prompt": "q ?", "completion": " a"}]
    assert to_records([ex], "sft", chat=True)[0]["completion"] == [
        {"role": "assistant", "content": "a"}
    ]


def test_checkpoint_resumes_at_its_step(lab: dict[str, Path], tmp_path: Path) -> None:
    from transformers import TrainerCallback

    from probes.trainers.trl_worker import train_probe

    class Interrupt(TrainerCallback):
        def on_step_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            if state.global_step == 3:
                raise KeyboardInterrupt  # the session was stopped after checkpoint-2

    class Steps(TrainerCallback):
        def __init__(self) -> None:
            self.seen: list[int] = []

        def on_step_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            self.seen.append(state.global_step)

    first = tmp_path / "attempt1"
    spec = make_spec(lab, first, steps=4, checkpoint_every=2)
    with pytest.raises(KeyboardInterrupt):
        train_probe(spec, callbacks=[Interrupt()])
    assert (first / "checkpoints" / "checkpoint-2" / "trainer_state.json").exists()

    steps = Steps()
    second = replace(
        spec,
        out_dir=tmp_path / "attempt2",
        trainer={**spec.trainer, "resume_from": str(first / "checkpoints")},
    )
    outcome = train_probe(second, callbacks=[steps])
    assert outcome.resumed_from_step == 2
    assert steps.seen == [3, 4]  # continued, not from step 0
    assert outcome.global_step == 4
    # Same data, same order: the resumed run's record equals the interrupted one's.
    assert outcome.dataset["hash"] == json.loads((first / "dataset.json").read_text())["hash"]
    # And the same adapter as a run that was never interrupted.
    whole = train_probe(replace(spec, out_dir=tmp_path / "whole"))
    resumed, straight = _lora_b(outcome.adapter), _lora_b(whole.adapter)
    assert resumed.keys() == straight.keys()
    for key in resumed:
        assert float((resumed[key] - straight[key]).abs().max()) < 1e-5, key
    assert not (tmp_path / "whole" / "checkpoints" / "checkpoint-4").exists()  # no final save


def test_nan_loss_fast_fails_with_the_step(lab: dict[str, Path], tmp_path: Path) -> None:
    import torch
    from transformers import TrainerCallback

    from probes.trainers.trl_worker import EXIT_NONFINITE, NonFiniteLoss, run, train_probe

    class Poison(TrainerCallback):
        def on_step_begin(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            if state.global_step == 1:
                with torch.no_grad():
                    for name, p in kw["model"].named_parameters():
                        if "lora_A" in name:
                            p.fill_(float("nan"))

    with pytest.raises(NonFiniteLoss, match="loss became nan at step 2"):
        train_probe(make_spec(lab, tmp_path / "a", steps=6), callbacks=[Poison()])
    assert (tmp_path / "a" / "train_history.jsonl").exists()  # the curve up to the failure

    # Through the worker's entry point: exit code 3 and the reason for the crash record.
    spec = make_spec(lab, tmp_path / "b", steps=6, params={"learning_rate": 1e30})
    assert run(spec) == EXIT_NONFINITE
    assert "loss became" in (tmp_path / "b" / "failure.txt").read_text()


def test_unknown_recipe_key_is_an_error_naming_it(lab: dict[str, Path], tmp_path: Path) -> None:
    from probes.trainers.trl_worker import EXIT_SETTINGS, run

    with pytest.raises(RecipeError, match=r"'learnig_rate'.*did you mean 'learning_rate'"):
        parse_recipe({"learnig_rate": 1e-3})
    with pytest.raises(RecipeError, match="weight_nope"):
        parse_recipe({"weight_nope": 0.0}, sources=["facts"])
    assert parse_recipe({"trl_max_grad_norm": 0.5}).passthrough == {"max_grad_norm": 0.5}
    with pytest.raises(RecipeError, match="lora_r"):
        parse_recipe({"lora_r": 2.5})

    spec = make_spec(lab, tmp_path, params={"lerning_rate": 1e-3})
    assert run(spec) == EXIT_SETTINGS
    assert "lerning_rate" in (tmp_path / "failure.txt").read_text()
    spec = make_spec(lab, tmp_path / "b", params={"trl_no_such_field": 1})
    assert run(spec) == EXIT_SETTINGS
    assert "no_such_field" in (tmp_path / "b" / "failure.txt").read_text()


def test_same_seed_same_training_set(lab: dict[str, Path], tmp_path: Path) -> None:
    from probes.trainers.trl_worker import build_data

    params = {
        "mixture": "proportional",
        "mixture_floor": 0.3,
        "curriculum": "shuffle",
        "weight_voice": 1.5,
        "num_examples": 10,
    }
    spec = make_spec(lab, tmp_path, steps=5, params=params)
    recipe = parse_recipe(spec.params)
    a, b = build_data(spec, recipe).record(), build_data(spec, recipe).record()
    assert a == b and a["num_examples"] == 5 * 4
    other = build_data(replace(spec, seed=2), recipe).record()
    assert other["hash"] != a["hash"]
    zero = build_data(spec, parse_recipe({**spec.params, "weight_voice": 0})).record()
    assert set(zero["per_source"]) == {"facts"}


def test_importing_the_trainer_does_not_import_torch() -> None:
    code = "import sys, probes.trainers.trl; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


def _campaign(
    lab: dict[str, Path],
    tmp_path: Path,
    *,
    objective: str = "sft",
    lanes: str = "",
    extra_recipe: str = "",
) -> Any:
    from agent.campaign import parse_campaign

    text = "\n".join(
        [
            "objective: {target: facts, guards: [voice], critical_below: 2.0}",
            "probe: {steps: 4, baseline_seeds: 2, checkpoint_every: 2}",
            "recipe:",
            "  learning_rate: 0.005",
            "  per_device_train_batch_size: 4",
            "  max_length: 32",
            "  lora_r: 4",
            "  lora_alpha: 8",
            "  curriculum: shuffle",
            extra_recipe,
            "lanes:",
            "  hyperparameters:",
            "    learning_rate: {type: float, low: 0.0001, high: 0.1, log: true}",
            lanes,
            f"trainer: {{kind: trl, model: {lab['chat']}, objective: {objective},",
            f"          data: {lab['manifest']}, device: cpu}}",
            f"eval: {{prompts: {lab['prompts']}}}",
            f"paths: {{allow: [{lab['prompts'].parent}]}}",  # the lab's data, shared by tests
            "",
        ]
    )
    path = tmp_path / "search_space.yaml"
    path.write_text(text)
    return parse_campaign(text, path)


def test_preflight_and_settings(lab: dict[str, Path], tmp_path: Path) -> None:
    from probes.trainers.config import TrlTrainerConfig
    from probes.trainers.trl import TrlTrainer

    campaign = _campaign(lab, tmp_path)
    assert isinstance(campaign.trainer, TrlTrainerConfig)
    trainer = TrlTrainer(campaign.trainer, campaign)
    assert trainer.preflight() == []
    settings = trainer.trainer_settings()
    assert settings["model"] == str(lab["chat"].resolve())
    assert settings["checkpoint_every"] == 2 and settings["critical_below"] == 2.0
    assert settings["eval"]["prompts"] == str(lab["prompts"])

    # A curriculum choice the data cannot support is caught before the first probe.
    lanes = "  curriculum:\n    curriculum: {type: categorical, choices: [shuffle, source_first]}"
    bad = TrlTrainer(campaign.trainer, _campaign(lab, tmp_path, lanes=lanes))
    assert any("source_first" in p for p in bad.preflight())
    typo = _campaign(lab, tmp_path, extra_recipe="  weight_facs: 2.0")
    assert any("weight_facs" in p for p in TrlTrainer(typo.trainer, typo).preflight())


def test_run_in_a_child_process_reports_nan_as_a_crash(
    lab: dict[str, Path], tmp_path: Path
) -> None:
    from probes.trainers.trl import TrlTrainer

    campaign = _campaign(lab, tmp_path)
    trainer = TrlTrainer(campaign.trainer, campaign)
    spec = make_spec(lab, tmp_path / "run", steps=6, params={"learning_rate": 1e30})
    spec = replace(spec, trainer={"resume_from": None})  # the rest comes from trainer_settings()
    result = trainer.run(spec)
    assert result.status is ProbeStatus.CRASH
    assert result.error is not None and "loss became" in result.error, result.error
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["trainer"]["objective"] == "sft"


@pytest.mark.skipif(
    not (ROOT / "probes" / "evaluation" / "run.py").exists(),
    reason="probes.evaluation.run (evaluate_adapter) is not there yet",
)
def test_full_probe_trains_and_evaluates(lab: dict[str, Path], tmp_path: Path) -> None:
    from probes.trainers.trl import TrlTrainer

    campaign = _campaign(lab, tmp_path)
    trainer = TrlTrainer(campaign.trainer, campaign)
    spec = replace(make_spec(lab, tmp_path / "run", steps=3), trainer={})
    result = trainer.run(spec)
    assert result.ok, (result.error, result.log_tail)
    assert {s.prompt_id for s in result.scores} == {"f1", "v1"}
    assert result.metrics["steps"] == 3 and "train_loss" in result.metrics
    # What `show` reads: the loss curve with its steps, and a tail with no printed dicts.
    from agent.training_log import read_history, readable_log_tail

    history = read_history(tmp_path / "run")
    assert history and history[-1]["step"] <= 3 and all("loss" in e for e in history)
    assert "{'" in result.log_tail  # transformers prints its log as Python dicts
    assert "{'" not in readable_log_tail(result.log_tail)
