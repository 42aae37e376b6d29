"""A reused training is never silently stale: every input that determines a training's result
changes its content key (agent/campaign_memory.py)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from agent.campaign import load_campaign
from agent.campaign_memory import run_key
from tests.conftest import CAMPAIGN, FAKE_TRAINER, make_workspace


def key(workspace: Path, **over: object) -> str:
    campaign = load_campaign(workspace / "search_space.yaml")
    args: dict = {"params": dict(campaign.recipe), "steps": campaign.probe.steps, "seed": 1,
                  "kind": "probe"}  # fmt: skip
    args.update(over)
    return run_key(campaign, **args)


def trl_workspace(tmp_path: Path) -> Path:
    """A trl campaign on a local model folder and a data manifest."""
    ws = make_workspace(tmp_path / "ws")
    (ws / "model").mkdir()
    (ws / "model" / "config.json").write_text('{"model_type": "llama"}')
    (ws / "model" / "model.safetensors").write_bytes(b"weights-v1")
    (ws / "data").mkdir()
    (ws / "data" / "manifest.yaml").write_text(
        "sources:\n  - {name: facts, path: facts.jsonl, kind: sft, categories: [facts]}\n"
    )
    (ws / "data" / "facts.jsonl").write_text('{"messages": []}\n')
    text = (ws / "search_space.yaml").read_text()
    start = text.index("trainer:")
    end = text.index("eval:")
    trainer = "trainer: {kind: trl, model: model, data: data/manifest.yaml}\n"
    text = text[:start] + trainer + text[end:]
    (ws / "search_space.yaml").write_text(text)
    return ws


def edit(path: str, content: bytes) -> Callable[[Path], None]:
    def apply(ws: Path) -> None:
        (ws / path).write_bytes(content)

    return apply


@pytest.mark.parametrize(
    ("what", "change"),
    [
        ("a data file", edit("data/facts.jsonl", b'{"messages": [1]}\n')),
        ("the manifest", edit("data/manifest.yaml", b"sources: []\n")),
        ("the eval prompts", edit("probe-prompts.jsonl", b"{}\n")),
        ("the base model's weights", edit("model/model.safetensors", b"weights-v2")),
        ("the base model's config", edit("model/config.json", b'{"model_type": "qwen3"}')),
    ],
)
def test_each_input_of_a_trl_training_changes_its_key(
    tmp_path: Path, what: str, change: Callable[[Path], None]
) -> None:
    ws = trl_workspace(tmp_path)
    before = key(ws)
    assert key(ws) == before  # stable while nothing changes
    change(ws)
    assert key(ws) != before, what


def test_the_command_trainers_script_and_the_training_itself_change_the_key(
    tmp_path: Path,
) -> None:
    script = tmp_path / "train.py"
    script.write_text(FAKE_TRAINER.read_text())
    text = CAMPAIGN.format(python=sys.executable, trainer=script, timeout="60s")
    ws = make_workspace(tmp_path / "ws", campaign=text)
    before = key(ws)
    script.write_text(script.read_text() + "\n# a changed trainer\n")
    after = key(ws)
    assert after != before
    assert key(ws, seed=2) != after and key(ws, steps=31) != after
    assert key(ws, kind="confirm") != after
    assert key(ws, params={**load_campaign(ws / "search_space.yaml").recipe, "lora_r": 8}) != after


def test_a_command_trainers_declared_inputs_change_the_key(tmp_path: Path) -> None:
    text = CAMPAIGN.format(python=sys.executable, trainer=FAKE_TRAINER, timeout="60s")
    text = text.replace("  argv:", "  inputs: [data]\n  argv:")
    ws = make_workspace(tmp_path / "ws", campaign=text)
    (ws / "data").mkdir()
    (ws / "data" / "train.jsonl").write_text('{"a": 1}\n')
    before = key(ws)
    (ws / "data" / "train.jsonl").write_text('{"a": 2}\n')
    assert key(ws) != before
    # Undeclared files are not hashed: that is what `inputs` is for.
    (ws / "notes.txt").write_text("anything")
    after = key(ws)
    (ws / "notes.txt").write_text("else")
    assert key(ws) == after


def test_a_missing_declared_input_is_refused_before_training(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from agent.cli import app

    text = CAMPAIGN.format(python=sys.executable, trainer=FAKE_TRAINER, timeout="60s")
    text = text.replace("  argv:", "  inputs: [data/missing]\n  argv:")
    ws = make_workspace(tmp_path / "ws", campaign=text)
    result = CliRunner().invoke(app, ["check", "-w", str(ws)])
    assert result.exit_code == 2
    assert "trainer.inputs[0]: 'data/missing' does not exist" in " ".join(result.output.split())


def test_a_trl_trainings_key_holds_the_precision_this_machine_resolves(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import probes.trainers.trl as trl
    from probes.trainers.memory import GIB

    ws = trl_workspace(tmp_path)
    monkeypatch.setattr(trl, "_this_machine", trl.Machine(cuda=False, ram=32 * GIB))
    on_cpu = key(ws)
    gpu = trl.Machine(cuda=True, gpu_count=1, gpu_memory=80 * GIB, bf16=True, ram=64 * GIB)
    monkeypatch.setattr(trl, "_this_machine", gpu)
    assert key(ws) != on_cpu  # fp32 on the CPU, bf16 on the GPU: another training
