"""`show`'s training log: the loss curve and a log tail without printed Python dicts."""

from __future__ import annotations

import json
from pathlib import Path

from agent.training_log import (
    log_dict,
    number,
    read_history,
    readable_entry,
    readable_log_tail,
    sample_rows,
)

TAIL = """\
{'loss': '2.994', 'grad_norm': '1.216', 'learning_rate': '0.002947', 'epoch': '0.12'}
UserWarning: something the user should see
{'train_runtime': '9.916', 'train_loss': '1.844', 'epoch': '1'}
trained 250 steps in 16.5s (loss 1.8440)
{not a dict}
"""


def test_a_printed_log_dict_becomes_one_readable_line_and_other_lines_stay() -> None:
    assert log_dict("{'loss': '2.994', 'epoch': '0.12'}") == {"loss": 2.994, "epoch": 0.12}
    assert log_dict('{"loss": 1.5, "step": 10}') == {"loss": 1.5, "step": 10}
    assert log_dict("{not a dict}") is None and log_dict("loss 2.9") is None
    assert log_dict("{1: 2}") is None  # not a log: keys are names
    lines = readable_log_tail(TAIL).splitlines()
    assert lines == [
        "epoch 0.12  loss 2.994  lr 0.002947  grad norm 1.216",
        "UserWarning: something the user should see",
        "epoch 1  train_runtime 9.916  train_loss 1.844",
        "trained 250 steps in 16.5s (loss 1.8440)",
        "{not a dict}",
    ]
    assert readable_log_tail(TAIL, omit_log_dicts=True).splitlines() == [
        "UserWarning: something the user should see",
        "trained 250 steps in 16.5s (loss 1.8440)",
        "{not a dict}",
    ]


def test_fields_in_reading_order_and_numbers_as_written() -> None:
    entry = {"grad_norm": 0.5, "entropy": 2.0, "loss": 1.25, "step": 10, "learning_rate": 1e-05}
    assert readable_entry(entry) == "step 10  loss 1.25  lr 1e-05  grad norm 0.5  entropy 2"
    assert [number(v) for v in (250.0, 3, 0.0026801, 1.333e-05, "x")] == [
        "250", "3", "0.00268", "1.333e-05", "x",
    ]  # fmt: skip


def test_history_keeps_logging_steps_in_order_and_samples_first_and_last(
    tmp_path: Path,
) -> None:
    rows = [{"step": s, "loss": 10.0 / s} for s in range(26, 0, -1)]
    summary = {"step": 26, "train_loss": 1.0}  # the end-of-training entry: no loss
    text = "\n".join([*(json.dumps(r) for r in rows), json.dumps(summary), "not json"])
    (tmp_path / "train_history.jsonl").write_text(text)
    history = read_history(tmp_path)
    assert [e["step"] for e in history] == list(range(1, 27))
    picked = sample_rows(history, 12)
    steps = [e["step"] for e in picked]
    assert len(picked) == 12 and steps[0] == 1 and steps[-1] == 26 and steps == sorted(steps)
    assert sample_rows(history[:5], 12) == history[:5]
    assert read_history(tmp_path / "missing") == [] and read_history(None) == []
