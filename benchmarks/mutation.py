"""Mutation testing of the modules whose bugs cost users most (run by hand, not in CI).

    python benchmarks/mutation.py                 # every module below, then the score
    python benchmarks/mutation.py --only stats    # one module
    python benchmarks/mutation.py --only stats --sample 200   # 200 mutants drawn at random

mutmut 3 (`pip install mutmut`) mutates each function of a module and runs, per mutant, only
the tests of the fast selection that called that function. The run happens in a scratch copy
of the working tree (`--workdir`, default /tmp/autoresearch-mutation), so the checkout never
holds mutated code or mutmut's config. The score is killed / (killed + survived + timeouts
counted as killed + no tests); the target is 90% per module, and each survivor is either killed
by a new test or named, with why it is equivalent, in docs/design.md ("Mutation testing").
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# module -> the fast tests that should catch its bugs (SLOW below are deselected).
MODULES: dict[str, tuple[str, list[str]]] = {
    "verdict": (
        "agent/verdict.py",
        ["tests/test_verdict.py", "tests/test_guard_tolerance.py", "tests/test_verdict_edges.py"],
    ),
    "stats": (
        "agent/stats.py",
        ["tests/test_stats.py", "tests/test_verdict.py", "tests/test_stats_edges.py"],
    ),
    "findings": (
        "agent/findings.py",
        ["tests/test_findings.py", "tests/test_report_words.py", "tests/test_findings_edges.py"],
    ),
    "session": (
        "agent/session.py",
        [
            "tests/test_budget_properties.py",
            "tests/test_power_gate.py",
            "tests/test_session_edges.py",
            "tests/test_preflight.py",
        ],
    ),
    "store": (
        "agent/store/store.py",
        [
            "tests/test_store.py",
            "tests/test_tsv_contract.py",
            "tests/test_power_gate.py",
            "tests/test_store_records.py",
            "tests/test_store_hold.py",
            "tests/test_secrets.py",
        ],
    ),
    "metrics": ("probes/evaluation/metrics.py", ["tests/test_metrics.py"]),
    "redaction": ("probes/redaction.py", ["tests/test_redaction.py"]),
}
TARGET = 0.90
# Simulations that take seconds each (power at 80%, worlds, the 5% null rate): they check
# calibration, not wiring, and would make every mutant of the stats core cost minutes.
SLOW = "not test_world and not 80_percent and not null_world and not test_guard_test_size"


def copy_tree(workdir: Path) -> None:
    """The working tree as git sees it (tracked and untracked, not ignored) into `workdir`."""
    if workdir.exists():
        shutil.rmtree(workdir)
    files = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard"],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.splitlines()
    for name in files:
        source = ROOT / name
        if source.is_file():
            target = workdir / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)


def configure(workdir: Path, module: str, tests: list[str]) -> None:
    tests = [t for t in tests if (workdir / t).exists()]
    config = "\n".join(
        [
            "",
            "[tool.mutmut]",
            'source_paths = ["agent/", "probes/"]',
            f'only_mutate = ["{module}"]',
            "pytest_add_cli_args_test_selection = [" + ", ".join(f'"{t}"' for t in tests) + "]",
            'pytest_add_cli_args = ["-q", "-p", "no:cacheprovider", '
            f'"--hypothesis-profile=mutation", "-k", "{SLOW}"]',
            "use_git_change_detection = false",
            f"debug = {'true' if os.environ.get('MUTATION_VERBOSE') else 'false'}",
            "",
        ]
    )
    pyproject = workdir / "pyproject.toml"
    pyproject.write_text(pyproject.read_text() + config)


def results(workdir: Path) -> dict[str, list[str]]:
    """Mutant names by status, as `mutmut results --all true` prints them."""
    out = subprocess.run(
        [sys.executable, "-m", "mutmut", "results", "--all", "true"],
        cwd=workdir,
        capture_output=True,
        text=True,
    ).stdout
    by_status: dict[str, list[str]] = {}
    for line in out.splitlines():
        name, _, status = line.strip().rpartition(": ")
        if name:
            by_status.setdefault(status, []).append(name)
    return by_status


def score(by_status: dict[str, list[str]]) -> tuple[int, int]:
    """(killed, judged): a timeout counts as killed (the mutant hung the tests); mutants with
    no test reaching them count as survivors; skipped ones are not judged."""
    killed = len(by_status.get("killed", [])) + len(by_status.get("timeout", []))
    judged = killed + sum(
        len(by_status.get(s, [])) for s in ("survived", "no tests", "suspicious", "segfault")
    )
    return killed, judged


def mutmut_run(workdir: Path, max_children: int, names: list[str]) -> None:
    subprocess.run(
        [sys.executable, "-m", "mutmut", "run", "--max-children", str(max_children), *names],
        cwd=workdir,
        stdout=subprocess.DEVNULL if not os.environ.get("MUTATION_VERBOSE") else None,
        stderr=subprocess.DEVNULL if not os.environ.get("MUTATION_VERBOSE") else None,
        check=False,
    )


def sampled(workdir: Path, max_children: int, size: int, seed: int) -> dict[str, list[str]]:
    """Run a uniform random sample of the module's mutants (for modules whose full run takes
    hours on a laptop). Mutants whose function no test reaches are classed "no tests" without
    a run (mutmut would fail looking their tests up)."""
    # A name that matches nothing: mutmut generates the mutants and collects which tests reach
    # which function, then stops on its own "nothing matches" assertion.
    mutmut_run(workdir, max_children, ["__generate_only__"])
    every = sorted(n for names in results(workdir).values() for n in names)
    chosen = random.Random(seed).sample(every, min(size, len(every)))
    stats = json.loads((workdir / "mutants" / "mutmut-stats.json").read_text())
    reached = stats["tests_by_mangled_function_name"]
    untested = [n for n in chosen if not reached.get(n.partition("__mutmut_")[0])]
    to_run = [n for n in chosen if n not in untested]
    if to_run:
        mutmut_run(workdir, max_children, to_run)
    by_status: dict[str, list[str]] = {}
    chosen_set = set(to_run)
    for status, names in results(workdir).items():
        kept = [n for n in names if n in chosen_set]
        if kept:
            by_status[status] = kept
    if untested:
        by_status.setdefault("no tests", []).extend(untested)
    return by_status


def wilson(killed: int, judged: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson interval of the kill rate (a sampled score is an estimate)."""
    if judged == 0:
        return 0.0, 1.0
    p = killed / judged
    centre = (p + z * z / (2 * judged)) / (1 + z * z / judged)
    spread = math.sqrt(p * (1 - p) / judged + z * z / (4 * judged * judged))
    half = z * spread / (1 + z * z / judged)
    return max(0.0, centre - half), min(1.0, centre + half)


def run_module(
    name: str, workdir: Path, max_children: int, sample: int | None, seed: int
) -> dict[str, list[str]]:
    module, tests = MODULES[name]
    copy_tree(workdir)
    configure(workdir, module, tests)
    started = time.monotonic()
    if sample:
        by_status = sampled(workdir, max_children, sample, seed)
    else:
        mutmut_run(workdir, max_children, [])
        by_status = results(workdir)
    killed, judged = score(by_status)
    low, high = wilson(killed, judged)
    print(
        f"{name:10s} {module:32s} {killed:4d}/{judged:<4d} killed "
        f"{killed / max(judged, 1):6.1%} [95% {low:.1%}, {high:.1%}]"
        f"{' (sample)' if sample else ''}  ({time.monotonic() - started:.0f} s)",
        flush=True,
    )
    return by_status


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", action="append", choices=sorted(MODULES))
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/autoresearch-mutation"))
    parser.add_argument("--max-children", type=int, default=os.cpu_count() or 2)
    parser.add_argument(
        "--sample", type=int, help="run only this many mutants per module, drawn at random"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the --sample draw")
    args = parser.parse_args()
    names = args.only or list(MODULES)
    total_killed = total_judged = 0
    survivors: list[str] = []
    for name in names:
        by_status = run_module(name, args.workdir / name, args.max_children, args.sample, args.seed)
        killed, judged = score(by_status)
        total_killed += killed
        total_judged += judged
        for status in ("survived", "no tests", "suspicious", "segfault"):
            survivors += [f"{n}  ({status})" for n in by_status.get(status, [])]
    print(
        f"\nmutation score: {total_killed}/{total_judged} = "
        f"{total_killed / max(total_judged, 1):.1%} (target {TARGET:.0%})"
    )
    if survivors:
        print("survivors (`python -m mutmut show NAME` in the module's workdir shows the diff):")
        for line in survivors:
            print("  " + line)
    return 0 if total_killed >= TARGET * total_judged else 1


if __name__ == "__main__":
    sys.exit(main())
