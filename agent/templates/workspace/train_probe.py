#!/usr/bin/env python
"""An example trainer for autoresearch. Read it, then replace the training with your own.

autoresearch runs it once per training (see `trainer.argv` in search_space.yaml):

    python train_probe.py --config CONFIG.json --out OUT_DIR

CONFIG.json says what to train: "params" (the recipe, with this run's change applied),
"steps" (train exactly this many optimizer steps), "seed", and "eval_prompts" (a JSONL file,
one prompt per line with "id", "category", "prompt" and "reference") and "eval_repeats". The
script must score every prompt that many times and write OUT_DIR/scores.jsonl, a line each:

    {"prompt_id": "facts-03", "category": "facts", "repeat": 0, "score": 7.5}

A non-zero exit, or a missing or malformed scores.jsonl, marks the run as crashed (the session
goes on). OUT_DIR/metrics.json is optional ({"train_loss": 0.21}).

This one trains a tiny word-level language model from scratch on the question/answer pairs in
data/sft/*.jsonl, then scores each eval prompt by how many words of its reference answer the
model predicts, word after word (0 to 10). It needs only torch and runs in seconds on a CPU.

Recipe keys it reads (any other key is an error, so a misspelt knob never does nothing):
    learning_rate, batch_size, hidden_size, warmup_ratio   how it optimizes
    weight_<name>   how often the examples of data/sft/<name>.jsonl are used
                    (1.0 as they are, 2.0 twice, 0.5 half of them, 0 none)
    mixture         natural (as weighted) or stratified (each category equally often)
    curriculum      shuffle, easy_to_hard or hard_to_easy (by each example's "difficulty"),
                    or category_blocks (one category after another)
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
from pathlib import Path

import torch
from torch import nn

DATA = Path(__file__).resolve().parent / "data" / "sft"
KEYS = {"learning_rate", "batch_size", "hidden_size", "warmup_ratio", "mixture", "curriculum"}


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def training_examples(params: dict, rng: random.Random) -> list[dict]:
    """One pass over the data: each file weighted, mixed, and ordered by the curriculum."""
    examples = []
    for path in sorted(DATA.glob("*.jsonl")):
        rows = read_jsonl(path)
        weight = float(params.get(f"weight_{path.stem}", 1.0))
        whole, part = int(weight), weight - int(weight)
        examples += rows * whole + rng.sample(rows, round(part * len(rows)))
    if params.get("mixture", "natural") == "stratified":
        by_category: dict[str, list[dict]] = {}
        for ex in examples:
            by_category.setdefault(ex["category"], []).append(ex)
        most = max(len(rows) for rows in by_category.values())
        examples = [rows[i % len(rows)] for rows in by_category.values() for i in range(most)]
    rng.shuffle(examples)
    order = params.get("curriculum", "shuffle")
    if order == "easy_to_hard":
        examples.sort(key=lambda ex: ex.get("difficulty", 0))
    elif order == "hard_to_easy":
        examples.sort(key=lambda ex: -ex.get("difficulty", 0))
    elif order == "category_blocks":
        examples.sort(key=lambda ex: ex["category"])
    return examples


def words(text: str) -> list[str]:
    return text.lower().split()


class TinyLM(nn.Module):
    """Embeddings, one GRU layer, and a prediction of the next word."""

    def __init__(self, vocab: int, hidden: int):
        super().__init__()
        self.embed = nn.Embedding(vocab, hidden)
        self.rnn = nn.GRU(hidden, hidden, batch_first=True)
        self.out = nn.Linear(hidden, vocab)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        hidden, _ = self.rnn(self.embed(ids))
        return self.out(hidden)


def encode(prompt: str, answer: str, vocab: dict[str, int]) -> tuple[list[int], int]:
    """Word ids of `prompt <sep> answer <end>`, and where the answer starts."""
    ids = [vocab[w] for w in words(prompt)] + [vocab["<sep>"]]
    return ids + [vocab[w] for w in words(answer)] + [vocab["<end>"]], len(ids)


def batch_loss(model: TinyLM, batch: list[tuple[list[int], int]]) -> torch.Tensor:
    """Mean cross-entropy on the answer words only (the question is given, not learned)."""
    width = max(len(ids) for ids, _ in batch)
    inputs = torch.zeros(len(batch), width - 1, dtype=torch.long)
    targets = torch.full((len(batch), width - 1), -100, dtype=torch.long)
    for row, (ids, start) in enumerate(batch):
        inputs[row, : len(ids) - 1] = torch.tensor(ids[:-1])
        targets[row, start - 1 : len(ids) - 1] = torch.tensor(ids[start:])
    logits = model(inputs)
    return nn.functional.cross_entropy(logits.transpose(1, 2), targets, ignore_index=-100)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True, type=Path)
    parser.add_argument("--out", required=True, type=Path)
    args = parser.parse_args()
    config = json.loads(args.config.read_text(encoding="utf-8"))
    params = config["params"]
    unknown = sorted(k for k in params if k not in KEYS and not k.startswith("weight_"))
    if unknown:
        print(f"error: recipe key {unknown[0]!r} is not one this trainer reads", file=sys.stderr)
        return 2
    rng = random.Random(config["seed"])
    torch.manual_seed(config["seed"])
    torch.set_num_threads(1)  # a model this small runs fastest on one thread

    prompts = read_jsonl(Path(config["eval_prompts"]))
    examples = training_examples(params, rng)
    texts = [m["content"] for ex in examples for m in ex["messages"]]
    texts += [p["prompt"] for p in prompts] + [p["reference"] for p in prompts]
    vocab = {
        w: i
        for i, w in enumerate(["<sep>", "<end>", *sorted({w for t in texts for w in words(t)})])
    }
    data = [
        encode(ex["messages"][0]["content"], ex["messages"][-1]["content"], vocab)
        for ex in examples
    ]

    model = TinyLM(len(vocab), int(params.get("hidden_size", 64)))
    optimizer = torch.optim.AdamW(model.parameters(), lr=float(params.get("learning_rate", 0.01)))
    steps, size = int(config["steps"]), int(params.get("batch_size", 8))
    warmup = max(1, int(float(params.get("warmup_ratio", 0.0)) * steps))
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: min(1.0, (s + 1) / warmup))
    loss = torch.tensor(math.nan)
    for step in range(steps):  # the examples in their curriculum order, over and over
        batch = [data[(step * size + i) % len(data)] for i in range(size)]
        loss = batch_loss(model, batch)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()

    args.out.mkdir(parents=True, exist_ok=True)
    repeats = int(config.get("eval_repeats", 1))  # this scoring is deterministic: copies
    with torch.no_grad(), (args.out / "scores.jsonl").open("w", encoding="utf-8") as out:
        for p in prompts:
            ids, start = encode(p["prompt"], p["reference"], vocab)
            guess = model(torch.tensor([ids[:-1]]))[0].argmax(-1)
            right = (guess[start - 1 :] == torch.tensor(ids[start:])).float().mean().item()
            for repeat in range(repeats):
                line = {"prompt_id": p["id"], "category": p["category"], "repeat": repeat}
                out.write(json.dumps({**line, "score": round(10 * right, 3)}) + "\n")
    (args.out / "metrics.json").write_text(json.dumps({"train_loss": float(loss)}))
    print(f"{config['kind']} {config['probe_id']}: {steps} steps, final loss {float(loss):.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
