"""Fixtures for the demo lab and evaluation tests: one tiny base model per test session.

Imported by tests/test_base_model.py and tests/test_evaluation.py
(``from tests.conftest_demo import tiny_model  # noqa: F401``).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from probes.demo.base_model import BaseModelSettings, ensure_base_model

TINY = BaseModelSettings(
    hidden_size=32,
    intermediate_size=64,
    num_layers=2,
    num_heads=2,
    pretrain_steps=40,
    batch_size=32,
    learning_rate=1e-2,
    warmup_steps=5,
)
"""Small enough to build in about two seconds; not a useful model, a real one."""


@pytest.fixture(scope="session")
def tiny_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("models")


@pytest.fixture(scope="session")
def tiny_model(tiny_cache: Path) -> Path:
    return ensure_base_model(tiny_cache, progress=False, settings=TINY)


@pytest.fixture(scope="session")
def tiny_adapter(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A LoRA adapter with non-zero (random) weights on the tiny model."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(str(tiny_model))
    config = LoraConfig(
        r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], init_lora_weights=False
    )
    peft_model = get_peft_model(model, config)
    out = tmp_path_factory.mktemp("adapter") / "adapter"
    peft_model.save_pretrained(str(out))
    return out
