"""The demo base model: built once, cached by settings, loadable offline, atomic under races."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest

from probes.demo import base_model as bm
from probes.demo import world as W
from tests.conftest_demo import *  # noqa: F403  (the demo fixtures)
from tests.conftest_demo import TINY


def test_loads_offline_with_auto_classes(tiny_model: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(str(tiny_model))
    tok = AutoTokenizer.from_pretrained(str(tiny_model))
    assert model.config.model_type == "llama"
    assert model.config.num_hidden_layers == TINY.num_layers
    assert tok.pad_token == W.PAD and tok.eos_token == W.EOS
    assert (tiny_model / bm.MARKER).exists()


def test_chat_template_matches_the_world_format(tiny_model: Path) -> None:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(tiny_model))
    messages = [
        {"role": "user", "content": "where does brelu live ?"},
        {"role": "assistant", "content": "brelu lives in mirel ."},
    ]
    assert tok.apply_chat_template(messages, tokenize=False) == W.render_chat(messages)
    assert tok.apply_chat_template(
        messages[:1], tokenize=False, add_generation_prompt=True
    ) == W.render_chat(messages[:1], add_generation_prompt=True)
    enc: Any = tok.apply_chat_template(
        messages, tokenize=True, return_dict=True, return_assistant_tokens_mask=True
    )
    ids, mask = enc["input_ids"], enc["assistant_masks"]
    assistant = tok.decode([i for i, m in zip(ids, mask, strict=True) if m])
    assert assistant == "brelu lives in mirel . <|eos|>"
    # Word-level round trip: decoding gives back the world's text exactly.
    text = "aye , the river is cold and swift . so it is written ."
    assert tok.decode(tok(text, add_special_tokens=False)["input_ids"]) == text
    assert tok.unk_token_id not in tok("Where does Brelu live?")["input_ids"]


def test_second_call_reuses_the_cache(
    tiny_cache: Path, tiny_model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def boom(*args: object, **kwargs: object) -> None:
        raise AssertionError("rebuilt a cached model")

    monkeypatch.setattr(bm, "_build", boom)
    assert bm.ensure_base_model(tiny_cache, progress=False, settings=TINY) == tiny_model


def test_changed_setting_is_a_new_folder() -> None:
    a = bm.BaseModelSettings()
    b = bm.BaseModelSettings(pretrain_steps=a.pretrain_steps + 1)
    assert a.folder_name() != b.folder_name()
    assert a.key() == bm.BaseModelSettings().key()


def test_cache_dir_follows_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("AUTORESEARCH_CACHE", str(tmp_path))
    assert bm.default_cache_dir() == tmp_path / "models"
    monkeypatch.delenv("AUTORESEARCH_CACHE")
    assert bm.default_cache_dir() == Path.home() / ".cache" / "autoresearch" / "models"


def test_racing_builders_build_once_and_replace_stale_folders(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[int] = []

    def fake_build(out: Path, settings: bm.BaseModelSettings, *, progress: bool) -> None:
        calls.append(1)
        time.sleep(0.2)
        (out / "config.json").write_text("{}")
        (out / bm.MARKER).write_text("{}")

    monkeypatch.setattr(bm, "_build", fake_build)
    settings = bm.BaseModelSettings(pretrain_steps=3)
    stale = tmp_path / settings.folder_name()
    stale.mkdir()
    (stale / "half-written").write_text("x")  # a killed build: no marker
    results: list[Path] = []
    threads = [
        threading.Thread(
            target=lambda: results.append(
                bm.ensure_base_model(tmp_path, progress=False, settings=settings)
            )
        )
        for _ in range(3)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1
    assert results == [stale] * 3
    assert not (stale / "half-written").exists()
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.endswith(".lock")) == [
        stale.name
    ]


def test_a_failed_build_leaves_no_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def failing(out: Path, settings: bm.BaseModelSettings, *, progress: bool) -> None:
        (out / "config.json").write_text("{}")
        raise RuntimeError("killed")

    monkeypatch.setattr(bm, "_build", failing)
    settings = bm.BaseModelSettings(pretrain_steps=4)
    with pytest.raises(RuntimeError):
        bm.ensure_base_model(tmp_path, progress=False, settings=settings)
    assert [p for p in tmp_path.iterdir() if not p.name.endswith(".lock")] == []


def test_build_is_deterministic(tmp_path: Path, tiny_model: Path) -> None:
    again = bm.ensure_base_model(tmp_path, progress=False, settings=TINY)
    assert again != tiny_model
    assert (again / "model.safetensors").read_bytes() == (
        tiny_model / "model.safetensors"
    ).read_bytes()


def test_the_test_run_never_uses_the_users_cache() -> None:
    home_cache = Path.home() / ".cache" / "autoresearch"
    assert bm.default_cache_dir().parent != home_cache
    assert not str(bm.default_cache_dir()).startswith(str(home_cache))
