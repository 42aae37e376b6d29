"""Shared fixtures: a workspace driven by tests/fake_trainer.py (whole sessions in seconds)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from hypothesis import Phase
from hypothesis import settings as hypothesis_settings

# `--hypothesis-profile=mutation` (benchmarks/mutation.py): report the first failing example
# without shrinking it, so a killed mutant costs seconds, not the minutes shrinking takes.
hypothesis_settings.register_profile(
    "mutation", phases=[Phase.explicit, Phase.reuse, Phase.generate], database=None
)

TESTS = Path(__file__).parent

@pytest.fixture(scope="session", autouse=True)
def _private_cache(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """Tests never write to the user's real cache (~/.cache/autoresearch): AUTORESEARCH_CACHE
    points at a folder of this test run (the demo model is built there once per run). A
    developer may reuse one across runs with AUTORESEARCH_TEST_CACHE=DIR."""
    import os

    before = os.environ.get("AUTORESEARCH_CACHE")
    chosen = os.environ.get("AUTORESEARCH_TEST_CACHE") or str(tmp_path_factory.mktemp("cache"))
    os.environ["AUTORESEARCH_CACHE"] = chosen
    try:
        yield Path(chosen)
    finally:
        if before is None:
            os.environ.pop("AUTORESEARCH_CACHE", None)
        else:
            os.environ["AUTORESEARCH_CACHE"] = before


FAKE_TRAINER = TESTS / "fake_trainer.py"

CATEGORIES = {"facts": 24, "voice": 24, "offtask": 24}

CAMPAIGN = """\
# A test campaign: tests/fake_trainer.py knows the true effects.
objective:
  target: facts
  guards: [voice, offtask]
  min_improvement: 0.3
  max_mde: 1.5                # the world's real effect is +1.5: the gate lets it be seen
  guard_tolerance: 1.0
  critical_below: 1.0
probe:
  steps: 30
  baseline_seeds: 3
  eval_repeats: 1
  timeout: 60s
recipe:
  learning_rate: 1.0e-3
  lora_r: 16
  mixture: natural
  curriculum: shuffle
lanes:
  hyperparameters:
    learning_rate: {{type: float, low: 1.0e-4, high: 1.0e-2, log: true}}
    lora_r: {{type: int, low: 4, high: 64, log: true}}
  data_mixture:
    mixture: {{type: categorical, choices: [natural, stratified]}}
  curriculum:
    curriculum: {{type: categorical, choices: [shuffle, reverse]}}
trainer:
  kind: command
  argv: ["{python}", "{trainer}", "--config", "{{config}}", "--out", "{{out_dir}}"]
  timeout: {timeout}
eval:
  prompts: probe-prompts.jsonl
agent:
  policy: sweep
  brief: program.md
"""


def write_prompts(path: Path, categories: dict[str, int] = CATEGORIES) -> None:
    lines = []
    for category, n in categories.items():
        for i in range(n):
            lines.append(
                json.dumps(
                    {
                        "id": f"{category}-{i:02d}",
                        "category": category,
                        "prompt": f"question {i} about {category}",
                    }
                )
            )
    path.write_text("\n".join(lines) + "\n")


def make_workspace(root: Path, *, timeout: str = "60s", campaign: str | None = None) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    text = campaign or CAMPAIGN.format(python=sys.executable, trainer=FAKE_TRAINER, timeout=timeout)
    (root / "search_space.yaml").write_text(text)
    write_prompts(root / "probe-prompts.jsonl")
    (root / "program.md").write_text("# Brief\nImprove facts without hurting voice.\n")
    return root


def finished_fake_session(root: Path, *args: str) -> Path:
    """A workspace at `root` where one `start --budget 8` of the fake trainer has run (a keep,
    a discard, a guard_fail); `args` are more `start` options."""
    from typer.testing import CliRunner

    from agent.cli import app

    text = CAMPAIGN.format(python=sys.executable, trainer=FAKE_TRAINER, timeout="60s")
    workspace = make_workspace(root, campaign=text)
    result = CliRunner().invoke(app, ["start", "--budget", "8", *args, "-w", str(workspace)])
    assert result.exit_code == 0, result.output
    return workspace


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    return make_workspace(tmp_path / "ws")


# ---- PostgreSQL (the store's second backend), started by the tests on loopback -----------

PG_BIN = Path("/usr/lib/postgresql")


def _pg_bin() -> Path | None:
    import shutil

    if PG_BIN.exists():
        versions = sorted(PG_BIN.iterdir(), reverse=True)
        for v in versions:
            if (v / "bin" / "initdb").exists():
                return v / "bin"
    found = shutil.which("initdb")
    return Path(found).parent if found else None


@pytest.fixture(scope="session")
def postgres_url(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """A throwaway PostgreSQL server on 127.0.0.1 for this test run."""
    import os
    import socket
    import subprocess

    bin_dir = _pg_bin()
    if bin_dir is None:
        message = "PostgreSQL server binaries not found (apt-get install postgresql)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    import shutil
    import tempfile

    as_user: list[str] = []
    if os.geteuid() == 0:  # postgres refuses to run as root
        as_user = ["runuser", "-u", "postgres", "--"]
        # Not under pytest's basetemp: every pytest run (a concurrent one too) makes
        # /tmp/pytest-of-root private again, which would lock the postgres user out.
        root = Path(tempfile.mkdtemp(prefix="autoresearch-pg-"))
        os.chmod(root, 0o777)
    else:
        root = tmp_path_factory.mktemp("pg")
    data = root / "data"
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    subprocess.run(
        [*as_user, str(bin_dir / "initdb"), "-D", str(data), "--auth=trust", "-U", "postgres",
         "--no-sync"],
        check=True, capture_output=True,
    )
    subprocess.run(
        [*as_user, str(bin_dir / "pg_ctl"), "-D", str(data), "-w", "-l", str(root / "log"),
         "-o", f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off", "start"],
        check=True, capture_output=True,
    )
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(
            [*as_user, str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
            capture_output=True,
        )
        if as_user:
            shutil.rmtree(root, ignore_errors=True)
