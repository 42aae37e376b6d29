"""A campaign's `secrets:` (issue 10 item 3): trainers do not inherit them unless
`trainer.pass_env` names them, and no secret value reaches a record, a file or a command's
output — checked by scanning the bytes of everything a session writes (the canary scan)."""

from __future__ import annotations

import json
import sqlite3
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from agent.campaign import CampaignError, parse_campaign
from agent.cli import SafeConsole, app
from agent.store.store import Store
from agent.store.tables import DecisionRow, ProbeRow, SessionRow
from probes.spec import ProbeResult, ProbeStatus, Score
from tests.conftest import CAMPAIGN, FAKE_TRAINER, make_workspace

# No sk-ant- shape: only the values layer (the store's, the trainer's) can hide them.
CANARY_KEY = "canary-anthropic-4f1d9b2c7e"
CANARY_TOKEN = "canary-wandb-93ab61f0d2"


def campaign_text(extra: str = "", trainer_extra: str = "") -> str:
    text = CAMPAIGN.format(python=sys.executable, trainer=FAKE_TRAINER, timeout="60s")
    text = text.replace("  timeout: 60s\neval:", f"  timeout: 60s\n{trainer_extra}eval:")
    return text + extra


# ---- the campaign keys ------------------------------------------------------------------


def test_pass_env_must_name_a_secret_and_env_must_not_hold_one(tmp_path: Path) -> None:
    path = tmp_path / "search_space.yaml"
    ok = parse_campaign(
        campaign_text("secrets: [WANDB_API_KEY]\n", "  pass_env: [WANDB_API_KEY]\n"), path
    )
    assert ok.secrets == ["WANDB_API_KEY"]
    assert ok.trainer.pass_env == ["WANDB_API_KEY"]  # type: ignore[union-attr]

    # A variable that is not a secret: the trainer inherits it anyway, so naming it in
    # pass_env is a mistake (usually a secret missing from `secrets:`).
    text = campaign_text("secrets: [WANDB_API_KEY]\n", "  pass_env: [WANDB_API_KY]\n")
    with pytest.raises(CampaignError) as info:
        parse_campaign(text, path)
    message = str(info.value)
    line = text.splitlines().index("  pass_env: [WANDB_API_KY]") + 1
    assert message.startswith(f"{path}:{line}: trainer.pass_env.0: 'WANDB_API_KY' is not a")
    assert "did you mean 'WANDB_API_KEY'?" in message

    # A secret's value written into the file is refused, naming the key.
    text = campaign_text("secrets: [WANDB_API_KEY]\n", "  env: {WANDB_API_KEY: abc}\n")
    with pytest.raises(CampaignError) as info:
        parse_campaign(text, path)
    assert "trainer.env.WANDB_API_KEY: 'WANDB_API_KEY' is a secret" in str(info.value)

    with pytest.raises(CampaignError) as info:
        parse_campaign(campaign_text("secrets: ['not a name']\n"), path)
    assert "secrets.0: " in str(info.value)


# ---- the trainer: withheld unless passed, masked in what it prints ------------------------

ENV_PRINTER = """\
import os, sys
print("token is", os.environ.get("CANARY_TOKEN", "absent"))
sys.exit(2)
"""


@pytest.mark.parametrize("passed", [False, True])
def test_a_campaign_secret_is_withheld_unless_passed_and_masked_in_the_log(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, passed: bool
) -> None:
    from probes.spec import ProbeKind, ProbeSpec
    from probes.trainers.command import CommandTrainer
    from probes.trainers.config import CommandTrainerConfig

    monkeypatch.setenv("CANARY_TOKEN", CANARY_TOKEN)
    script = tmp_path / "print_token.py"
    script.write_text(ENV_PRINTER)
    (tmp_path / "prompts.jsonl").write_text("")
    config = CommandTrainerConfig(
        argv=[sys.executable, str(script)], pass_env=["CANARY_TOKEN"] if passed else []
    )
    out = tmp_path / "probe"
    spec = ProbeSpec(
        probe_id="p-1", session_id="s-1", kind=ProbeKind.PROBE, steps=1, seed=0, lane=None,
        changes={}, params={}, eval_prompts=tmp_path / "prompts.jsonl", out_dir=out,
    )  # fmt: skip
    result = CommandTrainer(config, tmp_path, secret_names=["CANARY_TOKEN"]).run(spec)
    assert not result.ok and "exited with code 2" in (result.error or "")
    log = (out / "train.log").read_text()
    assert ("token is [redacted]" in log) == passed
    assert ("token is absent" in log) == (not passed)
    assert CANARY_TOKEN not in log + result.log_tail


# ---- the store: every text and JSON column of every table is masked on its way in ---------


def test_the_store_masks_secrets_in_every_record_and_view(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", CANARY_KEY)
    monkeypatch.setenv("CANARY_TOKEN", CANARY_TOKEN)
    store = Store(tmp_path)
    store.protect(["CANARY_TOKEN"])
    leak = f"key {CANARY_KEY} token {CANARY_TOKEN}"
    store.create_session(
        SessionRow(
            id="s-1", status="running", started_at=datetime.now(UTC), budget_runs=2,
            policy="sweep", campaign={"objective": {"target": "facts"}, "note": leak},
            campaign_path=str(tmp_path / "search_space.yaml"),
        )
    )  # fmt: skip
    row = store.add_probe(
        ProbeRow(
            id="p-1", session_id="s-1", kind="probe", lane="hp", changes={"lr": leak},
            hypothesis=leak, steps=3, seed=0,
        ),
        DecisionRow(
            session_id="s-1", created_at=datetime.now(UTC), policy="claude", action="propose",
            proposal={"rationale": leak, "nested": [leak, {"k": leak}]}, accepted=True,
        ),
    )  # fmt: skip
    store.mark_running(row.id, tmp_path / "runs" / "p-1", {"params": {"x": leak}})
    store.finish_probe(
        row.id,
        ProbeResult(
            probe_id=row.id, status=ProbeStatus.CRASH, error=leak, log_tail=leak,
            scores=(Score(prompt_id="a", category="facts", score=0.0, error=leak),),
        ),
        {"reason": leak},
        "crash",
    )  # fmt: skip
    store.event("s-1", "crash", leak, row.id)
    store.update_session("s-1", narrative=leak, error=leak)
    store.sync_views()
    store.close()

    # Every cell of every table, read with sqlite3 (not through the store).
    db = sqlite3.connect(tmp_path / "runs" / "autoresearch.db")
    cells = []
    for (table,) in db.execute("select name from sqlite_master where type='table'"):
        for values in db.execute(f"select * from {table}"):
            cells += [str(v) for v in values]
    db.close()
    dump = "\n".join(cells)
    assert CANARY_KEY not in dump and CANARY_TOKEN not in dump
    # The texts were kept, masked, not dropped.
    assert dump.count("key [redacted] token [redacted]") >= 12
    for path in tmp_path.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert CANARY_KEY.encode() not in data and CANARY_TOKEN.encode() not in data, path


def test_the_console_masks_what_it_prints(monkeypatch: pytest.MonkeyPatch) -> None:
    import io

    from rich.text import Text

    monkeypatch.setenv("CANARY_TOKEN", CANARY_TOKEN)
    monkeypatch.setattr(SafeConsole, "secret_names", ("CANARY_TOKEN",))
    buf = io.StringIO()
    console = SafeConsole(file=buf, markup=False, width=200)
    console.print(f"error: {CANARY_TOKEN}")
    console.print(Text(f"styled {CANARY_TOKEN}", style="bold"))
    assert buf.getvalue().splitlines() == ["error: [redacted]", "styled [redacted]"]


# ---- the canary scan: a whole session, everything it writes and prints --------------------

LEAKY_TRAINER = """\
import json, os, runpy, sys
print("environment:", json.dumps(dict(os.environ)))
cfg = json.load(open(sys.argv[sys.argv.index("--config") + 1]))
if cfg["changes"].get("curriculum"):
    print("crashing with", os.environ["ANTHROPIC_API_KEY"], file=sys.stderr)
    sys.exit(9)
sys.argv = [{fake!r}] + sys.argv[1:]
try:
    runpy.run_path({fake!r}, run_name="__main__")
except SystemExit:
    pass
out = sys.argv[sys.argv.index("--out") + 1]
path = os.path.join(out, "scores.jsonl")
rows = [json.loads(line) for line in open(path)]
rows[0] = {{"prompt_id": rows[0]["prompt_id"], "category": rows[0]["category"], "score": None,
           "error": "judge_error: 401 invalid x-api-key " + os.environ["ANTHROPIC_API_KEY"]
           + " token " + os.environ["CANARY_TOKEN"]}}
open(path, "w").write("\\n".join(json.dumps(r) for r in rows) + "\\n")
"""


def test_canary_scan_no_secret_in_any_file_or_output(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", CANARY_KEY)
    monkeypatch.setenv("CANARY_TOKEN", CANARY_TOKEN)
    trainer = tmp_path / "leaky_trainer.py"
    trainer.write_text(LEAKY_TRAINER.format(fake=str(FAKE_TRAINER)))
    text = campaign_text(
        "secrets: [CANARY_TOKEN]\n", "  pass_env: [ANTHROPIC_API_KEY, CANARY_TOKEN]\n"
    ).replace(str(FAKE_TRAINER), str(trainer))
    ws = make_workspace(tmp_path / "ws", campaign=text)
    runner = CliRunner()
    outputs = []

    def run(*args: str) -> str:
        result = runner.invoke(app, [*args, "-w", str(ws)])
        outputs.append(result.output)
        assert result.exception is None or isinstance(result.exception, SystemExit), result
        return result.output

    run("start", "--budget", "7")
    store = Store(ws)
    session = store.latest_session()
    assert session is not None and session.status == "finished"
    probes = store.probes(session.id)
    crashed = [p for p in probes if p.status == "crash"]
    judged = [p for p in probes if p.status != "crash"]
    assert crashed and judged  # both leak paths were exercised
    # The leaks reached the records, masked: the trainer's environment dump, its crash
    # message, the judge error.
    assert "crashing with [redacted]" in (crashed[0].log_tail or "")
    assert any(
        s.error and "x-api-key [redacted] token [redacted]" in s.error
        for s in store.scores(judged[0].id, include_errors=True)
    )
    store.close()
    run("status")
    for probe in probes:
        run("show", probe.id)
    run("replay", crashed[0].id)
    run("report")

    hits = [
        str(path.relative_to(tmp_path))
        for path in tmp_path.rglob("*")
        if path.is_file()
        and path != trainer
        and (CANARY_KEY.encode() in path.read_bytes() or CANARY_TOKEN.encode() in path.read_bytes())
    ]
    hits += [f"output of command {i}" for i, out in enumerate(outputs) if CANARY_KEY in out]
    hits += [f"output of command {i}" for i, out in enumerate(outputs) if CANARY_TOKEN in out]
    files = sum(1 for p in tmp_path.rglob("*") if p.is_file())
    print(f"canary scan: {files} files, {len(outputs)} command outputs, {len(hits)} hits")
    assert hits == []
    assert json.loads((Path(probes[0].run_dir or "") / "config.json").read_text())
