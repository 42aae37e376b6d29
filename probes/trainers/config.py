"""Configuration of the built-in trainers (the `trainer:` section of search_space.yaml).

Light on purpose: importing this never imports torch or trl.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
)

from probes.durations import parse_duration

Seconds = Annotated[float, BeforeValidator(parse_duration)]
EnvName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")]
"""The name of an environment variable."""


class _Strict(BaseModel):
    # Every number is finite: NaN or infinity would silently switch a check off (a timeout of
    # .inf, critical_below .nan) or write invalid JSON into a probe's config.
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class CommandTrainerConfig(_Strict):
    """Run the user's own script as a subprocess, without a shell (DESIGN.md §5.2)."""

    kind: Literal["command"] = "command"
    argv: list[str] = Field(min_length=1)
    """The command; `{config}` and `{out_dir}` are replaced with absolute paths, `{python}`
    with the interpreter autoresearch runs in."""
    timeout: Seconds | None = None
    """Kill the run after this long (`90s`, `30m`, `2h`); overrides `probe.timeout`."""
    env: dict[str, str] = Field(default_factory=dict)
    """Extra environment variables for the script (never secrets: use the environment)."""
    pass_env: list[EnvName] = Field(default_factory=list)
    """Secret variables the script may see: the loop's (`ANTHROPIC_API_KEY`,
    `ANTHROPIC_AUTH_TOKEN`, e.g. for a script that calls a judge itself) or any the campaign
    names in `secrets:`. By default the script inherits the environment without them."""
    cwd: str | None = None
    """Working folder, relative to the workspace; default the workspace."""
    inputs: list[str] = Field(default_factory=list)
    """Files or folders the script reads (its data, its code), relative to the workspace:
    their contents go into every training's content key, so an identical earlier training is
    reused only while they are unchanged. The script named in argv is always included."""

    @field_validator("argv")
    @classmethod
    def _placeholders_known(cls, argv: list[str]) -> list[str]:
        for arg in argv:
            for name in _placeholders(arg):
                if name not in {"config", "out_dir", "python"}:
                    raise ValueError(
                        f"unknown placeholder {{{name}}} in argv; use {{config}}, {{out_dir}} "
                        "or {python}"
                    )
        return argv


def _placeholders(arg: str) -> list[str]:
    """The placeholders of one argv entry; a conversion or format spec (`{config!r}`,
    `{config:>300}`) is refused: argv takes exactly `{config}`, `{out_dir}`, `{python}`."""
    import string

    names = []
    for _, name, spec, conversion in string.Formatter().parse(arg):
        if name is None:
            continue
        if spec or conversion:
            shown = name + (f"!{conversion}" if conversion else "") + (f":{spec}" if spec else "")
            raise ValueError(
                f"placeholder {{{shown}}} in argv: write exactly {{config}}, {{out_dir}} or "
                "{python}, with no conversion or format"
            )
        names.append(name)
    return names


class TrlTrainerConfig(_Strict):
    """The built-in TRL/PEFT LoRA trainer (probes/trainers/trl.py)."""

    kind: Literal["trl"] = "trl"
    model: str = "demo"
    """A local model folder, or `demo` for the demo lab's tiny Llama (built offline, cached)."""
    objective: Literal["sft", "dpo", "orpo"] = "sft"
    """Training objective."""
    data: str = "data/manifest.yaml"
    """The data manifest (sources, categories, weights), relative to the workspace."""
    timeout: Seconds | None = None
    """Kill the run after this long; overrides `probe.timeout`."""
    report_to: list[str] = Field(default_factory=list)
    """Passed to TRL: e.g. ["tensorboard"]; empty logs nowhere but the run folder."""
    device: Literal["auto", "cpu", "cuda"] = "auto"
    """Where to train and evaluate."""
    extra: dict[str, Any] = Field(default_factory=dict)
    """Further TRL config fields passed through unchanged."""
    logging_steps: int = Field(default=10, gt=0)
    """Steps between two entries of the loss curve (train_history.jsonl)."""
    threads: int | None = Field(default=None, gt=0)
    """CPU threads for torch in the worker; default one per 10M parameters, up to all cores."""
    dtype: Literal["auto", "bf16", "fp16", "fp32"] = "auto"
    """Precision of the base weights and of training: `auto` is bf16 on a GPU that supports
    it (fp16 on one that does not) and fp32 on the CPU. fp16 needs a GPU."""
    gradient_checkpointing: bool = False
    """Recompute activations in the backward pass: far less memory, about 30% more time."""
    attn_implementation: Literal["auto", "sdpa", "eager", "flash_attention_2"] = "auto"
    """Attention kernel: `auto` is flash_attention_2 on a GPU where the flash-attn package is
    installed, else sdpa."""
    optim: str = "adamw_torch"
    """The transformers optimizer name, e.g. `adamw_torch`, `adamw_bnb_8bit` (bitsandbytes)."""
    load_in_4bit: bool = False
    """QLoRA: the base in 4-bit NF4 through bitsandbytes (a GPU and `pip install
    bitsandbytes`), the LoRA adapters in the compute precision."""
    load_in_8bit: bool = False
    """The base in 8-bit through bitsandbytes."""
    device_map: Literal["single", "auto"] = "single"
    """`single`: the whole model on one device (one GPU per probe); `auto`: shard a model larger
    than one GPU over every visible GPU (accelerate)."""

    @field_validator("load_in_8bit")
    @classmethod
    def _one_quantization(cls, value: bool, info: Any) -> bool:
        if value and info.data.get("load_in_4bit"):
            raise ValueError("load_in_4bit and load_in_8bit are both set: choose one")
        return value


TrainerConfig = Annotated[CommandTrainerConfig | TrlTrainerConfig, Field(discriminator="kind")]
