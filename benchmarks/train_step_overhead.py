"""Probe training step time vs a minimal hand-written PyTorch + PEFT loop, side by side.

    python benchmarks/train_step_overhead.py [--model DIR] [--steps 200] [--batch 8]

Both train the same LoRA (same rank, alpha, target modules) on the same model, with the same
batch size and the same tokenized examples, on the CPU. The probe side is the trl trainer's
own `train_probe` (SFTTrainer, checkpoints off, as in a demo probe); the bare side is
`get_peft_model` + AdamW + a plain loop over pre-padded batches. Printed: steady-state time
per step (median over the steps after a warm-up) of both, their ratio (target <= 1.3x), and
the probe's end-to-end time (data, model load, trainer setup, training, adapter save).

Without --model it uses the demo lab's base model (built offline on first use), or, without the
demo module, a random Llama of its size (4 layers, 128 wide) with a word-level tokenizer built
in a temporary folder: nothing is downloaded. The data are synthetic facts written for the run.
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

SUBJECTS = [f"entity{i}" for i in range(60)]
ATTRS = ["colour", "home", "food", "friend", "job", "age"]
VALUES = [f"value{i}" for i in range(40)]


def build_model(folder: Path, layers: int = 4, hidden: int = 128) -> Path:
    """A random demo-sized Llama and a word-level tokenizer (no download)."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    words = ["what", "is", "the", "of", "?", "it", ".", *SUBJECTS, *ATTRS, *VALUES]
    vocab = {t: i for i, t in enumerate(["<pad>", "<unk>", "<s>", "</s>", *words])}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok.decoder = decoders.WordPiece(prefix="##")
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        pad_token="<pad>",
        unk_token="<unk>",
        bos_token="<s>",
        eos_token="</s>",
    )
    fast.save_pretrained(folder)
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(vocab),
        hidden_size=hidden,
        intermediate_size=hidden * 4,
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=4,
        max_position_embeddings=256,
        pad_token_id=0,
        bos_token_id=2,
        eos_token_id=3,
    )
    LlamaForCausalLM(config).save_pretrained(folder)
    return folder


def demo_model() -> Path | None:
    """The demo lab's base model (built on first use), or None without the demo module."""
    try:
        from probes.demo.base_model import ensure_base_model
    except ImportError:
        return None
    return Path(ensure_base_model(progress=False))


def demo_data(folder: Path) -> Path:
    """The demo world's data (its sft sources train), for the demo model's vocabulary."""
    from probes.demo.world import write_world

    write_world(folder)
    return folder / "manifest.yaml"


def write_data(folder: Path, n: int = 240) -> Path:
    import random

    rng = random.Random(0)
    (folder / "sft").mkdir(parents=True, exist_ok=True)
    with (folder / "sft" / "facts.jsonl").open("w") as fh:
        for i in range(n):
            s, a, v = rng.choice(SUBJECTS), rng.choice(ATTRS), rng.choice(VALUES)
            fh.write(
                json.dumps(
                    {
                        "id": f"f{i}",
                        "messages": [
                            {"role": "user", "content": f"what is the {a} of {s} ?"},
                            {"role": "assistant", "content": f"the {a} of {s} is {v} ."},
                        ],
                        "category": "facts",
                    }
                )
                + "\n"
            )
    manifest = folder / "manifest.yaml"
    manifest.write_text(
        "sources:\n  - {name: facts, path: sft/facts.jsonl, kind: sft, categories: [facts]}\n"
    )
    return manifest


def run_probe(
    model: Path, manifest: Path, out: Path, steps: int, params: dict[str, Any], threads: int | None
) -> dict:
    from transformers import TrainerCallback

    from probes.spec import ProbeKind, ProbeSpec
    from probes.trainers.trl_worker import train_probe

    class Clock(TrainerCallback):
        def __init__(self) -> None:
            self.times: list[float] = []

        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            self.times.append(time.perf_counter())

    clock = Clock()
    spec = ProbeSpec(
        probe_id="bench",
        session_id="bench",
        kind=ProbeKind.PROBE,
        steps=steps,
        seed=0,
        lane=None,
        changes={},
        params=params,
        eval_prompts=out / "none.jsonl",
        out_dir=out,
        trainer={
            "model": str(model),
            "objective": "sft",
            "manifest": str(manifest),
            "device": "cpu",
            "logging_steps": 10,
            "checkpoint_every": None,
            "threads": threads,
        },
    )
    started = time.perf_counter()
    outcome = train_probe(spec, callbacks=[clock])
    total = time.perf_counter() - started
    steps_dt = [b - a for a, b in itertools.pairwise(clock.times)]
    return {"total_s": total, "step_s": steps_dt, "loss": outcome.train_loss}


def run_bare(model_dir: Path, manifest: Path, steps: int, params: dict[str, Any]) -> dict:
    """The minimal loop: same examples (prompt + completion, completion-only labels)."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from probes.data import DataSettings, build_training_set, load_manifest

    torch.manual_seed(0)
    bs = params["per_device_train_batch_size"]
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    ts = build_training_set(
        load_manifest(manifest), DataSettings(), kind="sft", seed=0, total=steps * bs
    )
    batches = []
    for i in range(0, len(ts.examples), bs):
        ids, labels = [], []
        for ex in ts.examples[i : i + bs]:
            if tokenizer.chat_template:  # as the probe formats it: prompt turns + answer turn
                msgs = [{"role": r, "content": t} for r, t in ex.messages]
                p = list(
                    tokenizer.apply_chat_template(
                        msgs[:-1], add_generation_prompt=True, tokenize=True, return_dict=False
                    )
                )
                full = list(tokenizer.apply_chat_template(msgs, tokenize=True, return_dict=False))
                c = full[len(p) :]
            else:
                p = tokenizer(ex.prompt, add_special_tokens=False)["input_ids"]
                c = tokenizer(" " + ex.completion, add_special_tokens=False)["input_ids"]
                c = [*c, tokenizer.eos_token_id]
            ids.append(p + c)
            labels.append([-100] * len(p) + c)
        width = max(len(x) for x in ids)
        pad = tokenizer.pad_token_id
        batches.append(
            (
                torch.tensor([x + [pad] * (width - len(x)) for x in ids]),
                torch.tensor([[1] * len(x) + [0] * (width - len(x)) for x in ids]),
                torch.tensor([y + [-100] * (width - len(y)) for y in labels]),
            )
        )
    base = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    model = get_peft_model(
        base,
        LoraConfig(
            r=params["lora_r"],
            lora_alpha=params["lora_alpha"],
            lora_dropout=0.0,
            target_modules="all-linear",
            task_type="CAUSAL_LM",
        ),
    )
    model.train()
    opt = torch.optim.AdamW(
        [p for p in model.parameters() if p.requires_grad], lr=params["learning_rate"]
    )
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1 - s / steps)
    times = [time.perf_counter()]
    for input_ids, mask, target in batches[:steps]:
        loss = model(input_ids=input_ids, attention_mask=mask, labels=target).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        opt.zero_grad()
        times.append(time.perf_counter())
    return {"step_s": [b - a for a, b in itertools.pairwise(times)], "loss": loss.item()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, help="a local model folder (default: demo-sized)")
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=2, help="bare/probe pairs, alternated")
    parser.add_argument("--warmup", type=int, default=10, help="steps left out of the median")
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads of both (1: the probe's default for a model this small)",
    )
    args = parser.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    params = {
        "learning_rate": 1e-3,
        "per_device_train_batch_size": args.batch,
        "lora_r": 8,
        "lora_alpha": 16,
        "max_length": 64,
        "curriculum": "shuffle",
    }
    bare_medians, probe_medians, totals = [], [], []
    with tempfile.TemporaryDirectory() as tmp_str:
        tmp = Path(tmp_str)
        demo = None if args.model else demo_model()
        built = args.model is None and demo is None
        model = args.model or demo or build_model(tmp / "model")
        is_demo = (Path(model) / "autoresearch-demo.json").exists()
        manifest = demo_data(tmp / "data") if is_demo and not built else None
        manifest = manifest or write_data(tmp / "data")
        # Alternate the two so a busy machine slows both alike; the best round of each counts.
        for r in range(args.rounds):
            bare = run_bare(model, manifest, args.steps, params)
            probe = run_probe(model, manifest, tmp / f"probe{r}", args.steps, params, args.threads)
            b = statistics.median(bare["step_s"][args.warmup :])
            p = statistics.median(probe["step_s"][args.warmup :])
            bare_medians.append(b)
            probe_medians.append(p)
            totals.append(probe["total_s"])
            print(
                f"round {r + 1}: bare {b * 1e3:7.2f} ms/step  probe {p * 1e3:7.2f} ms/step  "
                f"ratio {p / b:4.2f}x  probe end to end {probe['total_s']:.1f} s",
                flush=True,
            )
    b, p = min(bare_medians), min(probe_medians)
    print(
        f"model: {model}; batch {args.batch}; "
        f"{args.steps} steps; torch threads {torch.get_num_threads()}"
    )
    print(f"bare PyTorch+PEFT loop : {b * 1e3:7.2f} ms/step (median, best round)")
    print(f"probe (TRL SFTTrainer) : {p * 1e3:7.2f} ms/step (median, best round)")
    print(f"ratio probe / bare     : {p / b:5.2f}x  (target <= 1.3x)")
    print(f"probe end to end       : {min(totals):.1f} s for {args.steps} steps (best round)")


if __name__ == "__main__":
    main()
