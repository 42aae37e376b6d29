"""The command trainer: run the user's own training script as a subprocess (DESIGN.md §5.2).

The script gets `{config}` (a JSON file with the resolved probe) and `{out_dir}`, and writes
`scores.jsonl` (required) and `metrics.json` (optional) there. A non-zero exit, a timeout or
bad output becomes a `crash` result with the reason and the tail of the log.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from probes.redaction import child_environment, environment_secrets, redact, redact_file
from probes.spec import (
    ProbeResult,
    ProbeSpec,
    ProbeStatus,
    PromptFileError,
    ScoresFileError,
    load_prompts,
    parse_scores,
)
from probes.textfiles import write_text_whole
from probes.trainers.base import Trainer
from probes.trainers.config import CommandTrainerConfig

LOG_NAME = "train.log"
SCORES_NAME = "scores.jsonl"
METRICS_NAME = "metrics.json"
LOG_TAIL_LINES = 40


def _die_with_parent() -> None:
    """In the child: get SIGKILL when the loop dies (kill -9), so no orphan keeps a GPU busy."""
    os.setsid()
    if sys.platform.startswith("linux"):
        import ctypes

        try:
            libc = ctypes.CDLL("libc.so.6", use_errno=True)
            libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        except OSError:
            pass


def log_tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    """The last `lines` lines of a log file ('' if absent)."""
    try:
        with path.open("rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - 16384))
            data = fh.read().decode("utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(data.splitlines()[-lines:])


def read_metrics(path: Path) -> dict[str, float]:
    """metrics.json's finite numbers (the file is optional)."""
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ScoresFileError(f"{path}: not valid JSON ({exc.msg})") from None
    if not isinstance(data, dict):
        raise ScoresFileError(f"{path}: expected a JSON object of numbers")
    return {
        k: float(v)
        for k, v in data.items()
        if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
    }


def write_config(spec: ProbeSpec) -> Path:
    """Write the resolved spec as `config.json` in the run folder; return its path."""
    spec.out_dir.mkdir(parents=True, exist_ok=True)
    path = spec.out_dir / "config.json"
    write_text_whole(path, json.dumps(spec.to_config(), indent=2, sort_keys=True))
    return path


def run_probe_process(
    argv: list[str],
    spec: ProbeSpec,
    *,
    timeout_s: float | None,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    pass_env: Sequence[str] = (),
    secret_names: Sequence[str] = (),
) -> ProbeResult:
    """Run one probe as a subprocess honouring the command contract and collect its result.

    The child inherits the environment without the secret variables (the loop's own and
    `secret_names`) unless `pass_env` names them; whatever secret it prints anyway is masked
    in its log file, the log tail and the error."""
    started = time.monotonic()
    config_path = write_config(spec)
    values = {"config": str(config_path), "out_dir": str(spec.out_dir), "python": sys.executable}
    args = [a.format(**values) for a in argv]
    log_path = spec.out_dir / LOG_NAME
    child_env = child_environment(
        os.environ, {"PYTHONUNBUFFERED": "1", **(env or {})}, pass_env, secret_names
    )
    # A trainer that prints its environment (or a key it was passed) must not put it into
    # the log, the log tail or the error the loop stores and shows.
    secrets = environment_secrets(secret_names)

    def crash(reason: str) -> ProbeResult:
        redact_file(log_path, secrets)
        return ProbeResult(
            probe_id=spec.probe_id,
            status=ProbeStatus.CRASH,
            error=redact(reason, secrets),
            log_tail=redact(log_tail(log_path), secrets),
            runtime_s=time.monotonic() - started,
        )

    if shutil.which(args[0], path=child_env.get("PATH")) is None and not Path(args[0]).exists():
        return crash(f"executable not found: {args[0]!r}")
    with log_path.open("ab") as log:
        try:
            proc = subprocess.Popen(
                args,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=cwd,
                env=child_env,
                preexec_fn=_die_with_parent,
            )
        except OSError as exc:
            return crash(f"cannot start {args[0]!r}: {exc.strerror}")
        try:
            code = proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            _kill_group(proc)
            return crash(f"timed out after {timeout_s:.0f}s")
        except BaseException:
            # Ctrl-C or the loop being stopped: never leave the training running.
            _kill_group(proc)
            raise
    # The run folder keeps what the script wrote: mask the contract's files too (a judge
    # error quoting a key lands in scores.jsonl).
    for name in (LOG_NAME, SCORES_NAME, METRICS_NAME):
        redact_file(spec.out_dir / name, secrets)
    if code != 0:
        how = f"killed by signal {-code}" if code < 0 else f"exited with code {code}"
        return crash(f"trainer {how}")
    try:
        prompts = load_prompts(spec.eval_prompts)
        scores = parse_scores(spec.out_dir / SCORES_NAME, prompts)
        metrics = read_metrics(spec.out_dir / METRICS_NAME)
    except (ScoresFileError, PromptFileError) as exc:
        return crash(str(exc))
    return ProbeResult(
        probe_id=spec.probe_id,
        status=ProbeStatus.OK,
        scores=tuple(scores),
        metrics=metrics,
        log_tail=redact(log_tail(log_path), secrets),
        runtime_s=time.monotonic() - started,
    )


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    except ProcessLookupError:
        pass


class CommandTrainer(Trainer):
    """Runs `trainer.argv` for every probe."""

    def __init__(
        self, config: CommandTrainerConfig, workspace: Path, secret_names: Sequence[str] = ()
    ):
        self.config = config
        self.workspace = workspace
        self.secret_names = tuple(secret_names)
        """The campaign's `secrets:` (withheld from the script, masked in what it prints)."""

    @property
    def cwd(self) -> Path:
        return (self.workspace / self.config.cwd) if self.config.cwd else self.workspace

    def preflight(self) -> list[str]:
        exe = self.config.argv[0].replace("{python}", sys.executable)
        if "/" in exe:
            path = Path(exe) if Path(exe).is_absolute() else self.cwd / exe
            if not path.exists():
                return [f"trainer.argv[0]: {exe!r} does not exist (looked in {self.cwd})"]
            if not os.access(path, os.X_OK):
                return [f"trainer.argv[0]: {exe!r} is not executable"]
        elif shutil.which(exe) is None:
            return [f"trainer.argv[0]: {exe!r} is not on PATH"]
        for arg in self.config.argv[1:]:
            # A script argument that looks like a local file should exist (e.g. train.py).
            if arg.endswith((".py", ".sh")) and "{" not in arg:
                p = Path(arg) if Path(arg).is_absolute() else self.cwd / arg
                if not p.exists():
                    return [f"trainer.argv: script {arg!r} does not exist (looked in {self.cwd})"]
        return [
            f"trainer.inputs[{i}]: {name!r} does not exist (looked in {self.workspace})"
            for i, name in enumerate(self.config.inputs)
            if not (self.workspace / name).exists()
        ]

    def run(self, spec: ProbeSpec) -> ProbeResult:
        argv = list(self.config.argv)
        if "/" in argv[0] and not Path(argv[0]).is_absolute():
            argv[0] = str(self.cwd / argv[0])
        return run_probe_process(
            argv,
            spec,
            timeout_s=spec.timeout_s,
            env=self.config.env,
            cwd=self.cwd,
            pass_env=self.config.pass_env,
            secret_names=self.secret_names,
        )
