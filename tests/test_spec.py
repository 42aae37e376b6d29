"""The scores.jsonl contract: every line validated, every prompt scored or marked unscorable."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from probes.spec import EvalPrompt, ScoresFileError, parse_scores, scored

PROMPTS = [EvalPrompt("a-1", "a", "q1"), EvalPrompt("a-2", "a", "q2")]


def _write(tmp_path: Path, *rows: dict) -> Path:
    path = tmp_path / "scores.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_valid_lines_with_an_unscorable_prompt(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        {"prompt_id": "a-1", "category": "a", "score": 7.5, "repeat": 0, "critical": True,
         "meta": {"rubric_hash": "abc"}},
        {"prompt_id": "a-2", "category": "a", "score": None, "error": "judge_error: no JSON"},
    )
    scores = parse_scores(path, PROMPTS)
    assert scores[0].score == 7.5 and scores[0].critical and scores[0].ok
    assert scores[0].meta == {"rubric_hash": "abc"}
    assert math.isnan(scores[1].score) and scores[1].error == "judge_error: no JSON"
    assert [s.prompt_id for s in scored(scores)] == ["a-1"]
    assert scores[1].to_dict()["score"] is None


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([{"prompt_id": "a-1", "score": 1}], "1 eval prompt(s) were not scored: a-2"),
        ([{"prompt_id": "a-1", "score": 1}, {"prompt_id": "a-2", "score": 2, "error": "x"}],
         ":2: a line with an error must have score null"),
        ([{"prompt_id": "a-1", "score": 1}, {"prompt_id": "a-2", "score": None, "error": ""}],
         ":2: error must be a non-empty string"),
        ([{"prompt_id": "a-1", "score": "7"}], ":1: score must be a finite number, got '7'"),
        ([{"prompt_id": "a-1", "score": 1}, {"prompt_id": "a-1", "score": 1}],
         ":2: prompt 'a-1' repeat 0 scored twice"),
        ([{"prompt_id": "a-1", "score": 1, "repeat": -1}], ":1: repeat must be a non-negative"),
    ],
)
def test_bad_lines_name_file_and_line(tmp_path: Path, rows: list, message: str) -> None:
    path = _write(tmp_path, *rows)
    with pytest.raises(ScoresFileError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_scores(path, PROMPTS)


def test_not_json(tmp_path: Path) -> None:
    path = tmp_path / "scores.jsonl"
    path.write_text('{"prompt_id": "a-1", "score": 1}\n{oops\n')
    with pytest.raises(ScoresFileError, match=r"scores.jsonl:2: not valid JSON"):
        parse_scores(path, PROMPTS)


def test_prompt_groups_are_read(tmp_path: Path) -> None:
    from probes.spec import load_prompts

    path = tmp_path / "p.jsonl"
    path.write_text(
        '{"id": "a", "category": "c", "prompt": "q", "group": "g1"}\n'
        '{"id": "b", "category": "c", "prompt": "q2"}\n'
    )
    a, b = load_prompts(path)
    assert (a.group, b.group) == ("g1", None)
    assert a.to_dict()["group"] == "g1" and "group" not in b.to_dict()
