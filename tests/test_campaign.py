"""search_space.yaml validation: every error names the file, the line and the key path."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from agent.campaign import CampaignError, load_campaign, parse_campaign
from probes.durations import parse_duration
from tests.conftest import CAMPAIGN, FAKE_TRAINER

GOOD = CAMPAIGN.format(python=sys.executable, trainer=FAKE_TRAINER, timeout="60s")


def _line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


def _error(text: str, tmp_path: Path) -> CampaignError:
    path = tmp_path / "search_space.yaml"
    with pytest.raises(CampaignError) as info:
        parse_campaign(text, path)
    return info.value


def test_valid_campaign_loads(tmp_path: Path) -> None:
    path = tmp_path / "search_space.yaml"
    path.write_text(GOOD)
    campaign = load_campaign(path)
    assert campaign.objective.target == "facts"
    assert campaign.probe.timeout == 60.0
    assert campaign.lanes["hyperparameters"]["learning_rate"].log
    assert campaign.objective.tolerance_for("voice") == 1.0
    assert campaign.workspace == tmp_path.resolve()


def test_broken_yaml_names_the_line(tmp_path: Path) -> None:
    text = GOOD.replace("  steps: 30", "  steps: [30")
    e = _error(text, tmp_path)
    assert "not valid YAML" in str(e)
    assert e.problems[0][0] is not None and e.problems[0][0] >= _line_of(GOOD, "steps: 30")


def test_unknown_key_names_line_and_path(tmp_path: Path) -> None:
    text = GOOD.replace("  eval_repeats: 1", "  eval_repeat: 1")
    e = _error(text, tmp_path)
    line, key, message = e.problems[0]
    assert key == "probe.eval_repeat"
    assert line == _line_of(text, "eval_repeat:")
    assert "unknown key" in message
    assert f"{tmp_path / 'search_space.yaml'}:{line}: probe.eval_repeat" in str(e)


def test_wrong_type_says_what_was_expected(tmp_path: Path) -> None:
    text = GOOD.replace("steps: 30", "steps: thirty")
    e = _error(text, tmp_path)
    line, key, message = e.problems[0]
    assert key == "probe.steps"
    assert line == _line_of(text, "steps: thirty")
    assert "integer" in message and "thirty" in message


def test_recipe_value_outside_knob_range(tmp_path: Path) -> None:
    text = GOOD.replace("learning_rate: 1.0e-3", "learning_rate: 5.0e-2")
    e = _error(text, tmp_path)
    line, key, message = e.problems[0]
    assert key == "lanes.hyperparameters.learning_rate"
    assert line == _line_of(text, "learning_rate: {type")
    assert "outside" in message and "0.05" in message


def test_knob_missing_from_recipe(tmp_path: Path) -> None:
    text = GOOD.replace("  lora_r: 16\n", "")
    e = _error(text, tmp_path)
    assert e.problems[0][1] == "lanes.hyperparameters.lora_r"
    assert "not in 'recipe'" in e.problems[0][2]


def test_single_baseline_seed_is_refused(tmp_path: Path) -> None:
    e = _error(GOOD.replace("baseline_seeds: 3", "baseline_seeds: 1"), tmp_path)
    assert e.problems[0][1] == "probe.baseline_seeds"
    assert "greater than or equal to 2" in e.problems[0][2]


def test_target_cannot_be_a_guard(tmp_path: Path) -> None:
    e = _error(GOOD.replace("guards: [voice, offtask]", "guards: [voice, facts]"), tmp_path)
    assert "cannot also be a guard" in str(e)
    assert e.problems[0][1] == "objective"


def test_bad_duration(tmp_path: Path) -> None:
    e = _error(GOOD.replace("timeout: 60s", "timeout: soon", 1), tmp_path)
    assert e.problems[0][1] == "probe.timeout"
    assert "'90s'" in e.problems[0][2]


def test_unknown_trainer_kind(tmp_path: Path) -> None:
    e = _error(GOOD.replace("kind: command", "kind: magic"), tmp_path)
    assert e.problems[0][1].startswith("trainer")
    assert e.problems[0][0] == _line_of(GOOD, "kind: command")


def test_unknown_argv_placeholder(tmp_path: Path) -> None:
    e = _error(GOOD.replace("{out_dir}", "{outdir}"), tmp_path)
    assert "unknown placeholder {outdir}" in str(e)


def test_categorical_needs_choices(tmp_path: Path) -> None:
    text = GOOD.replace(
        "{type: categorical, choices: [natural, stratified]}", "{type: categorical}"
    )
    e = _error(text, tmp_path)
    assert e.problems[0][1] == "lanes.data_mixture.mixture"
    assert "choices" in e.problems[0][2]


def test_missing_file_points_to_init(tmp_path: Path) -> None:
    with pytest.raises(CampaignError, match="autoresearch init"):
        load_campaign(tmp_path / "nope.yaml")


@pytest.mark.parametrize(
    ("text", "seconds"), [("90s", 90), ("30m", 1800), ("2h", 7200), ("1.5h", 5400), (45, 45)]
)
def test_durations(text: str | int, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "2 hours", "-5m", "0s", "h"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


def test_a_key_given_twice_is_refused_with_both_lines(tmp_path: Path) -> None:
    text = GOOD.replace("  steps: 30\n", "  steps: 30\n  eval_repeats: 1\n  steps: 99999\n", 1)
    lines = text.splitlines()
    first = lines.index("  steps: 30") + 1
    again = lines.index("  steps: 99999") + 1
    with pytest.raises(CampaignError) as info:
        parse_campaign(text, tmp_path / "search_space.yaml")
    message = str(info.value)
    assert f"search_space.yaml:{again}: probe.steps: key given twice (first on line {first})" in (
        message
    )
    # eval_repeats is repeated too (once from the template): both duplicates are named.
    assert "probe.eval_repeats: key given twice" in message


def test_a_manifest_key_given_twice_is_refused(tmp_path: Path) -> None:
    from probes.data.manifest import ManifestError, parse_manifest

    text = "sources:\n  - name: a\n    path: a.jsonl\n    name: b\n"
    with pytest.raises(ManifestError, match=r"manifest.yaml:4: sources.0.name: key given twice "
                       r"\(first on line 2\)"):
        parse_manifest(text, tmp_path / "manifest.yaml")


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        # A misspelt required key is one problem (the unknown key), not also "missing".
        ("objective:", "objectiv:", ":2: objectiv: unknown key (check the spelling; see "
         "docs/usage.md for the keys); did you mean 'objective'?"),
        ("  steps: 30", "  stpes: 30", "probe.stpes: unknown key"),
        ("  policy: sweep", "  polcy: sweep", "agent.polcy: unknown key"),
        ("  kind: command", "  kind: command\n  argvv: [x]", "trainer.argvv: unknown key"),
        ("    learning_rate: {type", "    learning_rate: {tpye: float, type",
         "lanes.hyperparameters.learning_rate.tpye: unknown key"),
    ],
)
def test_misspelt_keys_get_a_did_you_mean(old: str, new: str, expected: str) -> None:
    with pytest.raises(CampaignError) as info:
        parse_campaign(GOOD.replace(old, new, 1), Path("search_space.yaml"))
    message = str(info.value)
    assert expected in message
    wanted = {"objectiv": "objective", "stpes": "steps", "polcy": "policy", "argvv": "argv",
              "tpye": "type"}
    typo = next(t for t in wanted if t in new)
    assert message.endswith(f"did you mean {wanted[typo]!r}?")
    assert "required key is missing" not in message


def test_an_unknown_key_far_from_any_suggests_nothing() -> None:
    with pytest.raises(CampaignError) as info:
        parse_campaign(GOOD.replace("  steps: 30", "  steps: 30\n  zzzz: 1", 1), Path("s.yaml"))
    assert "probe.zzzz: unknown key" in str(info.value)
    assert "did you mean" not in str(info.value)


def test_a_bad_duration_names_its_value_once() -> None:
    with pytest.raises(CampaignError) as info:
        parse_campaign(GOOD.replace("  timeout: 60s\nrecipe", "  timeout: 60x\nrecipe", 1),
                       Path("s.yaml"))
    assert str(info.value).count("'60x'") == 1


@pytest.mark.parametrize(
    ("old", "new", "suggestion"),
    [
        ("  mixture: natural", "  mixture: natrual", "natural"),  # a choice
        ("    lora_r: {", "    lora_rr: {", "lora_r"),  # a knob not in the recipe
    ],
)
def test_misspelt_values_get_a_did_you_mean(old: str, new: str, suggestion: str) -> None:
    with pytest.raises(CampaignError) as info:
        parse_campaign(GOOD.replace(old, new, 1), Path("search_space.yaml"))
    assert str(info.value).endswith(f"did you mean {suggestion!r}?")
