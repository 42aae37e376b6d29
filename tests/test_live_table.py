"""The live results table fits an 80-column terminal, one line a probe; `status` keeps the
full ids."""

from __future__ import annotations

import io
import sys
from pathlib import Path

from rich.console import Console
from typer.testing import CliRunner

from agent.cli import app, results_table, short_id
from agent.store.store import Store
from tests.conftest import CAMPAIGN, FAKE_TRAINER, make_workspace


def render(table: object, width: int) -> list[str]:
    out = io.StringIO()
    Console(file=out, width=width, color_system=None).print(table)
    return out.getvalue().splitlines()


def test_the_live_table_fits_80_columns_with_a_line_per_probe(tmp_path: Path) -> None:
    text = CAMPAIGN.format(python=sys.executable, trainer=FAKE_TRAINER, timeout="60s")
    workspace = make_workspace(tmp_path / "ws", campaign=text)
    result = CliRunner().invoke(app, ["start", "--budget", "8", "-w", str(workspace)])
    assert result.exit_code == 0, result.output
    store = Store(workspace)
    session = store.latest_session()
    assert session is not None
    probes = store.probes(session.id)
    lines = render(results_table(store, session.id, last=20, compact=True), 80)
    assert max(len(line) for line in lines) <= 80, "\n".join(lines)
    body = [line for line in lines if line.strip().startswith(tuple(
        short_id(p.id)[:8] for p in probes))]
    assert len(body) == len(probes), "\n".join(lines)  # one line a probe: nothing wrapped
    for probe, line in zip(probes, body, strict=True):
        verdict = probe.verdict or {}
        if verdict.get("target_delta") is not None:  # numbers are never cut
            assert f"{verdict['target_delta']:+.2f}" in line
            assert f"[{verdict['ci_low']:+.2f}, {verdict['ci_high']:+.2f}]" in line
        assert (probe.status or probe.state) in line
    # Outside the live view the ids are whole (and `show` takes them).
    full = "\n".join(render(results_table(store, session.id), 200))
    assert all(p.id in full for p in probes)


def test_short_ids_drop_only_the_session_stamp() -> None:
    assert short_id("probe-20261202-143735-baseline-s1") == "baseline-s1"
    assert short_id("probe-20261202-143735-confirm-learning-rate-0.002") == (
        "confirm-learning-rate-0.002"
    )
    assert short_id("probe-2026-custom") == "probe-2026-custom"
