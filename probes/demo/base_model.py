"""The demo lab's base model: a tiny Llama and a word-level tokenizer, built offline and cached.

:func:`ensure_base_model` returns a folder that ``AutoModelForCausalLM.from_pretrained`` and
``AutoTokenizer.from_pretrained`` load with no network. The first call pre-trains the model on
the synthetic world's corpus (probes/demo/world.py) for a fixed number of steps (about 40 s on
two CPU cores with the default settings); later calls return the cached folder at once.

The cache folder is ``$AUTORESEARCH_CACHE/models/<name>`` (default
``~/.cache/autoresearch/models/<name>``) where the name carries a hash of every setting, so a
changed setting builds a new model instead of reusing a stale one. Builds are atomic (written to
a temporary folder and renamed) and serialized by a file lock, so two processes racing to build
the same model produce it once.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from probes.demo import world as demo_world

BUILD_VERSION = 1
"""Bump when the build procedure changes (part of the cache key)."""

MARKER = "autoresearch-demo.json"
"""Written last into a finished model folder: its presence means the build completed."""


@dataclass(frozen=True)
class BaseModelSettings:
    """Everything that determines the demo base model (all of it is in the cache key)."""

    hidden_size: int = 128
    intermediate_size: int = 384
    num_layers: int = 4
    num_heads: int = 4
    max_length: int = 128
    world_seed: int = 0
    corpus_seed: int = 0
    pretrain_steps: int = 550
    batch_size: int = 48
    learning_rate: float = 3e-3
    warmup_steps: int = 50
    weight_decay: float = 0.01
    seed: int = 0

    def key(self) -> str:
        payload = {
            **asdict(self),
            "build_version": BUILD_VERSION,
            "world_version": demo_world.WORLD_VERSION,
            "world": _world_fingerprint(self.world_seed, self.corpus_seed),
        }
        digest = hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()
        return digest[:12]

    def folder_name(self) -> str:
        return (
            f"demo-llama-l{self.num_layers}-h{self.hidden_size}-s{self.pretrain_steps}-{self.key()}"
        )


def _world_fingerprint(world_seed: int, corpus_seed: int) -> str:
    """A hash of the vocabulary, chat template and pre-training corpus: editing the world
    changes the key even if nobody bumps WORLD_VERSION."""
    world = demo_world.build_world(world_seed)
    digest = hashlib.sha256()
    for part in (
        demo_world.vocabulary(world),
        [demo_world.CHAT_TEMPLATE],
        demo_world.pretrain_corpus(world, seed=corpus_seed),
    ):
        digest.update("\n".join(part).encode())
        digest.update(b"\0")
    return digest.hexdigest()[:16]


def default_cache_dir() -> Path:
    """``$AUTORESEARCH_CACHE/models`` or ``~/.cache/autoresearch/models``."""
    root = os.environ.get("AUTORESEARCH_CACHE")
    base = Path(root).expanduser() if root else Path.home() / ".cache" / "autoresearch"
    return base / "models"


def ensure_base_model(
    cache_dir: Path | None = None,
    *,
    progress: bool = True,
    settings: BaseModelSettings | None = None,
) -> Path:
    """Return the folder of the demo base model and tokenizer, building it once if needed.

    ``cache_dir`` is the models folder (default :func:`default_cache_dir`); the model lives in a
    sub-folder named by its settings' hash. Safe to call from several processes at once.
    """
    settings = settings or BaseModelSettings()
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    target = root / settings.folder_name()
    if (target / MARKER).exists():
        return target
    root.mkdir(parents=True, exist_ok=True)
    from filelock import FileLock

    with FileLock(str(target) + ".lock"):
        if (target / MARKER).exists():  # another process finished while we waited
            return target
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=root))
        try:
            _build(tmp, settings, progress=progress)
            if target.exists():  # a half-written folder from an older, killed build
                shutil.rmtree(target)
            os.replace(tmp, target)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
    return target


# ---------------------------------------------------------------------------------------------


def build_tokenizer(settings: BaseModelSettings | None = None) -> Any:
    """The word-level tokenizer of the demo world (a transformers fast tokenizer)."""
    from tokenizers import Tokenizer, normalizers, pre_tokenizers
    from tokenizers.models import WordLevel
    from transformers import PreTrainedTokenizerFast

    settings = settings or BaseModelSettings()
    world = demo_world.build_world(settings.world_seed)
    vocab = {word: i for i, word in enumerate(demo_world.vocabulary(world))}
    backend = Tokenizer(WordLevel(vocab=vocab, unk_token=demo_world.UNK))
    backend.normalizer = normalizers.Lowercase()
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    backend.add_special_tokens(list(demo_world.SPECIAL_TOKENS))
    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        unk_token=demo_world.UNK,
        pad_token=demo_world.PAD,
        bos_token=demo_world.BOS,
        eos_token=demo_world.EOS,
        additional_special_tokens=[demo_world.SYSTEM, demo_world.USER, demo_world.ASSISTANT],
        chat_template=demo_world.CHAT_TEMPLATE,
        model_max_length=settings.max_length,
        clean_up_tokenization_spaces=False,
        padding_side="right",
    )


def _build(out: Path, settings: BaseModelSettings, *, progress: bool) -> None:
    import torch

    started = time.monotonic()
    threads = torch.get_num_threads()
    # One thread: at this size, intra-op parallelism costs more than it gains (measured 25 ms
    # vs 170 ms per step on a busy 2-core machine), and one thread is bit-reproducible.
    torch.set_num_threads(1)
    try:
        _pretrain(out, settings, progress=progress, started=started)
    finally:
        torch.set_num_threads(threads)


def _pretrain(out: Path, settings: BaseModelSettings, *, progress: bool, started: float) -> None:
    import torch
    from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM

    tokenizer = build_tokenizer(settings)
    world = demo_world.build_world(settings.world_seed)
    docs = demo_world.pretrain_corpus(world, seed=settings.corpus_seed)
    encoded = [tokenizer(doc, add_special_tokens=False)["input_ids"] for doc in docs]
    encoded = [ids[: settings.max_length] for ids in encoded]
    unk = tokenizer.unk_token_id
    if any(unk in ids for ids in encoded):
        raise RuntimeError("the demo corpus has words missing from its vocabulary")

    torch.manual_seed(settings.seed)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=settings.hidden_size,
        intermediate_size=settings.intermediate_size,
        num_hidden_layers=settings.num_layers,
        num_attention_heads=settings.num_heads,
        num_key_value_heads=settings.num_heads,
        max_position_embeddings=settings.max_length,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        tie_word_embeddings=True,
    )
    model = LlamaForCausalLM(config)
    model.train()
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=settings.learning_rate, weight_decay=settings.weight_decay
    )
    total = settings.pretrain_steps

    def lr_at(step: int) -> float:
        if step < settings.warmup_steps:
            return (step + 1) / settings.warmup_steps
        import math

        frac = (step - settings.warmup_steps) / max(1, total - settings.warmup_steps)
        return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, frac)))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_at)
    generator = torch.Generator().manual_seed(settings.seed)
    pad = tokenizer.pad_token_id
    order: list[int] = []
    losses: list[float] = []

    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    bar = Progress(
        TextColumn("[bold]building the demo base model[/bold]"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total} steps · loss {task.fields[loss]:.3f}"),
        TimeElapsedColumn(),
        disable=not progress,
        transient=False,
        console=Console(stderr=True),
    )
    with bar:
        task = bar.add_task("pretrain", total=total, loss=float("nan"))
        for _step in range(total):
            if len(order) < settings.batch_size:
                order.extend(torch.randperm(len(encoded), generator=generator).tolist())
            batch_ids = [encoded[i] for i in order[: settings.batch_size]]
            del order[: settings.batch_size]
            width = max(len(ids) for ids in batch_ids)
            input_ids = torch.full((len(batch_ids), width), pad, dtype=torch.long)
            attention = torch.zeros((len(batch_ids), width), dtype=torch.long)
            for row, ids in enumerate(batch_ids):
                input_ids[row, : len(ids)] = torch.tensor(ids)
                attention[row, : len(ids)] = 1
            labels = input_ids.masked_fill(attention == 0, -100)
            loss = model(input_ids=input_ids, attention_mask=attention, labels=labels).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            losses.append(float(loss.detach()))
            bar.update(task, advance=1, loss=sum(losses[-20:]) / len(losses[-20:]))

    model.eval()
    model.generation_config = GenerationConfig(
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        do_sample=False,
        max_new_tokens=32,
    )
    from transformers.utils import logging as hf_logging

    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        model.save_pretrained(out)
        tokenizer.save_pretrained(out)
    finally:
        if bars:
            hf_logging.enable_progress_bar()
    info = {
        "settings": asdict(settings),
        "key": settings.key(),
        "build_version": BUILD_VERSION,
        "world_version": demo_world.WORLD_VERSION,
        "parameters": sum(p.numel() for p in model.parameters()),
        "final_loss": sum(losses[-50:]) / max(1, len(losses[-50:])),
        "build_seconds": round(time.monotonic() - started, 2),
        "torch_threads": torch.get_num_threads(),
    }
    (out / MARKER).write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")


def main() -> int:
    path = ensure_base_model()
    print(path)
    print((path / MARKER).read_text(encoding="utf-8"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
