"""Heavy dependencies load only where the configuration selects them."""

from __future__ import annotations

import subprocess
import sys

HEAVY = ["torch", "transformers", "trl", "peft", "anthropic", "optuna", "ray", "vllm", "pandas"]


def test_cli_status_and_report_paths_stay_light() -> None:
    code = (
        "import sys\n"
        "import agent.cli, agent.session, agent.runtime, agent.store.store, agent.report.render\n"
        "import agent.policies.sweep, probes.trainers.command, probes.trainers.trl\n"
        f"print([m for m in {HEAVY!r} if m in sys.modules])\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
