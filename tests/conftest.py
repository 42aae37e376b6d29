"""Shared fixtures: a workspace driven by tests/fake_trainer.py (whole sessions in seconds)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).parent
FAKE_TRAINER = TESTS / "fake_trainer.py"

CATEGORIES = {"facts": 8, "voice": 8, "offtask": 8}

CAMPAIGN = """\
# A test campaign: tests/fake_trainer.py knows the true effects.
objective:
  target: facts
  guards: [voice, offtask]
  min_improvement: 0.3
  guard_tolerance: 0.8
  critical_below: 1.0
probe:
  steps: 30
  baseline_seeds: 2
  eval_repeats: 1
  timeout: 60s
recipe:
  learning_rate: 1.0e-3
  lora_r: 16
  mixture: natural
  curriculum: shuffle
lanes:
  hyperparameters:
    learning_rate: {{type: float, low: 1.0e-4, high: 1.0e-2, log: true}}
    lora_r: {{type: int, low: 4, high: 64, log: true}}
  data_mixture:
    mixture: {{type: categorical, choices: [natural, stratified]}}
  curriculum:
    curriculum: {{type: categorical, choices: [shuffle, reverse]}}
trainer:
  kind: command
  argv: ["{python}", "{trainer}", "--config", "{{config}}", "--out", "{{out_dir}}"]
  timeout: {timeout}
eval:
  prompts: probe-prompts.jsonl
agent:
  policy: sweep
  brief: program.md
"""


def write_prompts(path: Path, categories: dict[str, int] = CATEGORIES) -> None:
    lines = []
    for category, n in categories.items():
        for i in range(n):
            lines.append(
                json.dumps(
                    {
                        "id": f"{category}-{i:02d}",
                        "category": category,
                        "prompt": f"question {i} about {category}",
                    }
                )
            )
    path.write_text("\n".join(lines) + "\n")


def make_workspace(root: Path, *, timeout: str = "60s", campaign: str | None = None) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    text = campaign or CAMPAIGN.format(python=sys.executable, trainer=FAKE_TRAINER, timeout=timeout)
    (root / "search_space.yaml").write_text(text)
    write_prompts(root / "probe-prompts.jsonl")
    (root / "program.md").write_text("# Brief\nImprove facts without hurting voice.\n")
    return root


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    return make_workspace(tmp_path / "ws")
