"""The campaign across sessions: `history` lists every session with its best confirmed
finding; `status --session` and `report --session` take any past session by id or prefix."""

from __future__ import annotations

import sys
from pathlib import Path

from typer.testing import CliRunner

from agent.cli import app, best_keep
from agent.store.store import Store
from tests.conftest import CAMPAIGN, FAKE_TRAINER, make_workspace

runner = CliRunner()


def start(workspace: Path, *args: str) -> None:
    result = runner.invoke(app, ["start", *args, "-w", str(workspace)])
    assert result.exit_code == 0, result.output


def test_history_status_and_report_of_any_session(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("COLUMNS", "200")
    text = CAMPAIGN.format(python=sys.executable, trainer=FAKE_TRAINER, timeout="60s")
    workspace = make_workspace(tmp_path / "ws", campaign=text)
    start(workspace, "--budget", "8")
    start(workspace, "--budget", "4")
    store = Store(workspace)
    first, second = store.all_sessions()
    keep = best_keep(store, first.id)
    assert keep is not None and keep.changes == {"learning_rate": 0.002}

    out = runner.invoke(app, ["history", "-w", str(workspace)]).output
    lines = [line for line in out.splitlines() if first.id in line or second.id in line]
    assert len(lines) == 2 and first.id in lines[0] and second.id in lines[1]
    v = keep.verdict
    assert f"learning_rate=0.002: facts {v['target_delta']:+.2f}" in lines[0]
    assert f"[{v['ci_low']:+.2f}, {v['ci_high']:+.2f}]" in lines[0]
    # The second session reused the first's trainings: counted here from the database.
    import sqlite3

    db = sqlite3.connect(workspace / "runs" / "autoresearch.db")
    reused, charged, probes = db.execute(
        "select sum(reused_from is not null), sum(counted and in_budget), "
        "sum(kind != 'baseline') from probes where session_id = ?",
        (second.id,),
    ).fetchone()
    db.close()
    assert reused >= 3  # the baseline at least
    cells = [c.strip() for c in lines[1].split("│") if c.strip()]
    assert cells[1:5] == ["finished", str(charged), str(reused), str(probes)]
    assert "recipe" not in out  # one recipe across the campaign

    # status of the older session, by a unique prefix of its id.
    prefix = first.id[: len(first.id) - 2]
    if all(not s.id.startswith(prefix) or s.id == first.id for s in (first, second)):
        status = runner.invoke(app, ["status", "--session", prefix, "-w", str(workspace)])
        assert status.exit_code == 0, status.output
        assert f"session {first.id}" in status.output
    status = runner.invoke(app, ["status", "--session", "nope", "-w", str(workspace)])
    assert status.exit_code == 2 and "no session 'nope'" in status.output
    report = runner.invoke(app, ["report", "--session", first.id, "-w", str(workspace)])
    assert report.exit_code == 0, report.output


def test_a_second_session_builds_on_the_first(tmp_path: Path) -> None:
    """The offline policy never proposes a change the campaign already judged under the same
    conditions; after the recipe changes, the earlier findings are not this baseline's."""
    import yaml

    from agent.campaign import load_campaign
    from agent.runtime import open_session
    from agent.session import BudgetSpec, WorkspaceLock

    text = CAMPAIGN.format(python=sys.executable, trainer=FAKE_TRAINER, timeout="60s")
    workspace = make_workspace(tmp_path / "ws", campaign=text)
    start(workspace, "--budget", "8")
    start(workspace, "--budget", "8")
    store = Store(workspace)
    first, second = store.all_sessions()
    judged = [p.changes for p in store.probes(first.id) if p.kind == "probe"]
    again = [p.changes for p in store.probes(second.id) if p.kind == "probe"]
    assert judged and again and not [c for c in again if c in judged], (judged, again)
    # The earlier probes are the second session's memory, with their verdicts.
    with WorkspaceLock(workspace / "runs"):
        session = open_session(workspace, budget=BudgetSpec(runs=8), resume=False, new=True)
        earlier = session.context().earlier
    assert [r.probe_id for r in earlier] == [
        p.id for s in (first, second) for p in store.probes(s.id) if p.kind == "probe"
    ]
    # Another objective on the same baseline is another question: nothing earlier applies.
    path = workspace / "search_space.yaml"
    original = path.read_text()
    campaign = yaml.safe_load(original)
    campaign["objective"]["target"], campaign["objective"]["guards"] = "voice", ["facts", "offtask"]
    path.write_text(yaml.safe_dump(campaign, sort_keys=False))
    with WorkspaceLock(workspace / "runs"):
        session = open_session(workspace, budget=BudgetSpec(runs=8), resume=False, new=True)
        assert session.context().earlier == ()
    # A changed recipe is another baseline: nothing earlier is comparable any more.
    campaign = yaml.safe_load(original)
    campaign["recipe"]["learning_rate"] = 0.002
    path.write_text(yaml.safe_dump(campaign, sort_keys=False))
    assert load_campaign(path).recipe["learning_rate"] == 0.002
    with WorkspaceLock(workspace / "runs"):
        session = open_session(workspace, budget=BudgetSpec(runs=8), resume=False, new=True)
        assert session.context().earlier == ()


def test_adopt_writes_the_kept_change_keeping_comments_and_layout(tmp_path: Path) -> None:
    text = CAMPAIGN.format(python=sys.executable, trainer=FAKE_TRAINER, timeout="60s")
    workspace = make_workspace(tmp_path / "ws", campaign=text)
    path = workspace / "search_space.yaml"
    before = path.read_text()
    start(workspace, "--budget", "8")
    store = Store(workspace)
    (session,) = store.all_sessions()
    probes = store.probes(session.id)
    keep = best_keep(store, session.id)
    assert keep is not None and keep.kind == "confirm"
    candidate = next(p for p in probes if p.id == keep.parent_id)
    discard = next(p for p in probes if p.status == "discard")

    refused = runner.invoke(app, ["adopt", discard.id, "-w", str(workspace)])
    assert refused.exit_code == 2 and "only a confirmed change (a keep) is adopted" in " ".join(
        refused.output.split()
    )
    assert path.read_text() == before  # a refused adopt writes nothing

    done = runner.invoke(app, ["adopt", candidate.id, "-w", str(workspace)])  # the candidate
    assert done.exit_code == 0, done.output
    after = path.read_text()
    v = keep.verdict
    effect = f"facts {v['target_delta']:+.2f} [{v['ci_low']:+.2f}, {v['ci_high']:+.2f}]"
    changed = [(a, b) for a, b in zip(before.splitlines(), after.splitlines(), strict=True)
               if a != b]  # fmt: skip
    assert changed == [(
        "  learning_rate: 1.0e-3",
        f"  learning_rate: 0.002  # adopted from {keep.id} (session {session.id}): {effect}; "
        "was 0.001",
    )]  # fmt: skip
    from agent.campaign import load_campaign

    assert load_campaign(path).recipe["learning_rate"] == 0.002
    again = runner.invoke(app, ["adopt", keep.id, "-w", str(workspace)])
    assert again.exit_code == 2 and "already the recipe" in again.output
    # Stacking a change confirmed against another recipe is refused.
    recipe_edit = path.read_text().replace("  lora_r: 16\n", "  lora_r: 32\n")
    path.write_text(recipe_edit)
    stacked = runner.invoke(app, ["adopt", keep.id, "-w", str(workspace)])
    assert stacked.exit_code == 2
    assert "the recipe changed since session" in " ".join(stacked.output.split())
    assert "lora_r" in stacked.output and path.read_text() == recipe_edit
    path.write_text(recipe_edit.replace("  lora_r: 32\n", "  lora_r: 16\n"))
    # The next session measures a new baseline: history labels the two recipes.
    start(workspace, "--budget", "4")
    out = runner.invoke(app, ["history", "-w", str(workspace)]).output
    assert "(recipe 1)" in out and "(recipe 2)" in out and "2 recipes" in out


def test_optuna_continues_from_the_earlier_sessions_trials(tmp_path: Path) -> None:
    """The second session's optuna studies hold the first session's probes as finished
    trials (so TPE learns from them), and it proposes none of them again."""
    import optuna

    text = CAMPAIGN.format(python=sys.executable, trainer=FAKE_TRAINER, timeout="60s")
    text = text.replace("policy: sweep", "policy: optuna")
    assert "policy: optuna" in text
    workspace = make_workspace(tmp_path / "ws", campaign=text)
    start(workspace, "--budget", "8")
    start(workspace, "--budget", "7")
    store = Store(workspace)
    first, second = store.all_sessions()
    judged = {p.id: p.changes for p in store.probes(first.id) if p.kind == "probe"}
    again = [p.changes for p in store.probes(second.id) if p.kind == "probe"]
    assert judged and again and not [c for c in again if c in judged.values()]
    storage = f"sqlite:///{workspace / 'runs' / 'optuna.db'}"
    told = set()
    for summary in optuna.get_all_study_summaries(storage):
        if f":{second.id}:" in summary.study_name:
            study = optuna.load_study(study_name=summary.study_name, storage=storage)
            told |= {t.user_attrs.get("probe_id") for t in study.get_trials(deepcopy=False)}
    assert set(judged) <= told


def test_adopt_touches_only_the_adopted_lines_and_writes_values_that_read_back(
    tmp_path: Path,
) -> None:
    """Comment lines and blank lines after the key, wrapped flow lists elsewhere, an old
    end-of-line comment: all kept. 3e-05 is written so PyYAML reads a float (not a string)."""
    from agent.adopt import adopt, yaml_scalar
    from agent.campaign import load_campaign
    from agent.store.tables import ProbeRow

    text = CAMPAIGN.format(python=sys.executable, trainer=FAKE_TRAINER, timeout="60s")
    text = text.replace("  guards: [voice, offtask]\n", "  guards: [voice,\n           offtask]\n")
    text = text.replace(
        "  learning_rate: 1.0e-3\n",
        "  learning_rate: 1.0e-3   # production value\n\n  # the LoRA shape\n",
    )
    text = text.replace(
        "    learning_rate: {{type: float, low: 1.0e-4, high: 1.0e-2, log: true}}",
        "    learning_rate: {{type: float, low: 1.0e-5, high: 1.0e-2, log: true}}",
    ) if "{{" in text else text.replace(
        "    learning_rate: {type: float, low: 1.0e-4, high: 1.0e-2, log: true}",
        "    learning_rate: {type: float, low: 1.0e-5, high: 1.0e-2, log: true}",
    )
    workspace = make_workspace(tmp_path / "ws", campaign=text)
    path = workspace / "search_space.yaml"
    before = path.read_text()
    row = ProbeRow(id="probe-x-confirm", session_id="s0", seq=5, kind="confirm", status="keep",
                   changes={"learning_rate": 3e-05, "warmup_ratio": 0.1}, steps=30, seed=5,
                   verdict={"target": "facts", "target_delta": 0.6, "ci_low": 0.2,
                            "ci_high": 1.0})  # fmt: skip
    done = adopt(None, row, path)  # type: ignore[arg-type]  # a keep needs no store lookup
    after = path.read_text()
    assert done.previous == {"learning_rate": 0.001, "warmup_ratio": None}
    old_lines, new_lines = before.splitlines(), after.splitlines()
    changed = [i for i, line in enumerate(old_lines) if line not in new_lines]
    assert [old_lines[i] for i in changed] == ["  learning_rate: 1.0e-3   # production value"]
    assert (
        "  learning_rate: 3.0e-05  # adopted from probe-x-confirm (session s0): facts +0.60 "
        "[+0.20, +1.00]; was 0.001 (production value)" in new_lines
    )
    assert "  # the LoRA shape" in new_lines and "           offtask]" in new_lines
    added = [line for line in new_lines if line not in old_lines and "warmup_ratio" in line]
    assert added == ["  warmup_ratio: 0.1  # adopted from probe-x-confirm (session s0): facts "
                     "+0.60 [+0.20, +1.00]; was not set"]  # fmt: skip
    import yaml

    assert yaml.safe_load(after)["recipe"]["learning_rate"] == 3e-05  # a float to PyYAML too
    assert load_campaign(path).recipe["warmup_ratio"] == 0.1
    assert yaml_scalar(1e-05) == "1.0e-05" and yaml.safe_load(yaml_scalar(2e-05)) == 2e-05
    assert yaml_scalar("natural") == "natural" and yaml_scalar("yes") == '"yes"'


def test_adopt_moves_a_continued_comment_with_the_value_it_described(tmp_path: Path) -> None:
    """A key's comment continued on the lines below (`#` in the same column) described the old
    value: it goes into the adopted line's note, not left under the new value. A comment line
    at the key's own indent (about the next key) stays, and a key added after the last one
    goes below that key's continued comment, not between the key and it."""
    from agent.adopt import adopt
    from agent.store.tables import ProbeRow

    text = CAMPAIGN.format(python=sys.executable, trainer=FAKE_TRAINER, timeout="60s")
    text = text.replace(
        "  learning_rate: 1.0e-3\n  lora_r: 16\n",
        "  learning_rate: 1.0e-3   # halved last spring:\n"
        "                          # the loss spiked at 2e-3\n"
        "  # the LoRA shape\n"
        "  lora_r: 16\n",
    )
    text = text.replace(
        "  curriculum: shuffle\n",
        "  curriculum: shuffle      # easy first did not help\n"
        "                           # (two seeds)\n",
    )
    workspace = make_workspace(tmp_path / "ws", campaign=text)
    path = workspace / "search_space.yaml"
    row = ProbeRow(id="probe-y-confirm", session_id="s0", seq=5, kind="confirm", status="keep",
                   changes={"learning_rate": 0.002, "warmup_ratio": 0.1}, steps=30, seed=5,
                   verdict={"target": "facts", "target_delta": 0.6, "ci_low": 0.2,
                            "ci_high": 1.0})  # fmt: skip
    adopt(None, row, path)  # type: ignore[arg-type]  # a keep needs no store lookup
    recipe = path.read_text().split("recipe:\n", 1)[1].split("lanes:", 1)[0].splitlines()
    note = "adopted from probe-y-confirm (session s0): facts +0.60 [+0.20, +1.00]"
    assert recipe == [
        f"  learning_rate: 0.002  # {note}; was 0.001 (halved last spring: the loss spiked at "
        "2e-3)",
        "  # the LoRA shape",
        "  lora_r: 16",
        "  mixture: natural",
        "  curriculum: shuffle      # easy first did not help",
        "                           # (two seeds)",
        f"  warmup_ratio: 0.1  # {note}; was not set",
    ]


def test_the_effect_adopt_and_history_print_has_no_negative_zero() -> None:
    from agent.verdict import target_effect

    v = {"target": "facts", "target_delta": -0.004, "ci_low": -0.5, "ci_high": 0.001}
    assert target_effect(v) == "facts +0.00 [-0.50, +0.00]"
    assert target_effect({"target": "facts", "target_delta": None}) is None
