"""Answer generation for evaluation: transformers (CPU/GPU) and vLLM (GPU), adapters unmerged.

The LoRA adapter is always served on top of the base model (``PeftModel`` for transformers, a
``LoRARequest`` for vLLM) and never merged into it: seed 003 lost its signal to merging.

Prompts are rendered with the tokenizer's chat template (one user turn plus the generation
prompt), so evaluation sees exactly the format training used.
"""

from __future__ import annotations

import hashlib
import math
from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from probes.evaluation.config import GenerationConfig


class BackendUnavailable(RuntimeError):
    """The configured generation backend cannot run here (missing package or GPU)."""


class GenerationBackend(ABC):
    """Generates ``repeats`` answers per prompt and scores reference likelihoods."""

    @abstractmethod
    def generate(self, prompts: Sequence[str], *, repeats: int, seed: int) -> list[list[str]]:
        """For each user prompt, ``repeats`` answers (identical when decoding is greedy)."""

    @abstractmethod
    def reference_nll(self, pairs: Sequence[tuple[str, str]]) -> list[float]:
        """Mean negative log-likelihood (nats/token) of each reference answer given its prompt,
        over the assistant tokens (the answer and its end-of-turn token)."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release the model."""


def _render(tokenizer: Any, prompt: str) -> str:
    return str(
        tokenizer.apply_chat_template(
            [{"role": "user", "content": prompt}], tokenize=False, add_generation_prompt=True
        )
    )


def _require_local(base_model: Path, adapter: Path | None) -> None:
    """Evaluation never downloads: both folders must exist locally."""
    if not (Path(base_model) / "config.json").is_file():
        raise FileNotFoundError(f"{base_model}: not a model folder (no config.json)")
    if adapter is not None and not (Path(adapter) / "adapter_config.json").is_file():
        raise FileNotFoundError(f"{adapter}: not a LoRA adapter folder (no adapter_config.json)")


def _render_pair(tokenizer: Any, prompt: str, reference: str) -> str:
    messages = [{"role": "user", "content": prompt}, {"role": "assistant", "content": reference}]
    return str(tokenizer.apply_chat_template(messages, tokenize=False))


class HFBackend(GenerationBackend):
    """transformers generation: batched, left-padded, greedy or sampled; PEFT adapter on top."""

    def __init__(
        self,
        base_model: Path,
        adapter: Path | None,
        settings: GenerationConfig,
        *,
        device: str = "cpu",
    ) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        _require_local(base_model, adapter)
        self.settings = settings
        self.device = device
        self.tokenizer = AutoTokenizer.from_pretrained(str(base_model), local_files_only=True)
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        dtype = torch.float32 if device == "cpu" else "auto"
        model: Any = AutoModelForCausalLM.from_pretrained(
            str(base_model), dtype=dtype, local_files_only=True
        )
        if adapter is not None:
            from peft import PeftModel

            # Served on the base model, never merged (DESIGN.md §8).
            model = PeftModel.from_pretrained(
                model, str(adapter), is_trainable=False, local_files_only=True
            )
        self.model = model.to(device)
        self.model.eval()

    def generate(self, prompts: Sequence[str], *, repeats: int, seed: int) -> list[list[str]]:
        import torch

        s = self.settings
        sample = s.temperature > 0
        tok = self.tokenizer
        tok.padding_side = "left"
        texts = [_render(tok, p) for p in prompts]
        outputs: list[list[str]] = []
        for start in range(0, len(texts), s.batch_size):
            batch = texts[start : start + s.batch_size]
            enc = tok(batch, return_tensors="pt", padding=True, add_special_tokens=False)
            enc = {k: v.to(self.device) for k, v in enc.items()}
            kwargs: dict[str, Any] = {
                "max_new_tokens": s.max_new_tokens,
                "pad_token_id": tok.pad_token_id,
                "eos_token_id": tok.eos_token_id,
            }
            if sample:
                # One seed per batch, derived from the evaluation seed: reproducible runs.
                torch.manual_seed(seed * 1_000_003 + start)
                kwargs.update(
                    do_sample=True,
                    temperature=s.temperature,
                    top_p=s.top_p,
                    num_return_sequences=repeats,
                )
            else:
                kwargs.update(do_sample=False)
            with torch.inference_mode():
                out = self.model.generate(**enc, **kwargs)
            new = out[:, enc["input_ids"].shape[1] :]
            decoded = tok.batch_decode(new, skip_special_tokens=True)
            n = repeats if sample else 1
            for i in range(len(batch)):
                answers = [d.strip() for d in decoded[i * n : (i + 1) * n]]
                outputs.append(answers if sample else answers * repeats)
        return outputs

    def reference_nll(self, pairs: Sequence[tuple[str, str]]) -> list[float]:
        import torch

        tok = self.tokenizer
        tok.padding_side = "right"
        results: list[float] = []
        for start in range(0, len(pairs), self.settings.batch_size):
            rows = []
            for prompt, reference in pairs[start : start + self.settings.batch_size]:
                prefix = tok(_render(tok, prompt), add_special_tokens=False)["input_ids"]
                full = tok(_render_pair(tok, prompt, reference), add_special_tokens=False)
                rows.append((prefix, full["input_ids"][len(prefix) :]))
            width = max(len(p) + len(a) for p, a in rows)
            ids = torch.full((len(rows), width), tok.pad_token_id, dtype=torch.long)
            mask = torch.zeros_like(ids)
            labels = torch.full_like(ids, -100)
            for r, (p, a) in enumerate(rows):
                seq = p + a
                ids[r, : len(seq)] = torch.tensor(seq)
                mask[r, : len(seq)] = 1
                labels[r, len(p) : len(seq)] = torch.tensor(a)
            ids, mask, labels = ids.to(self.device), mask.to(self.device), labels.to(self.device)
            with torch.inference_mode():
                logits = self.model(input_ids=ids, attention_mask=mask).logits.float()
            logp = torch.log_softmax(logits[:, :-1], dim=-1)
            target = labels[:, 1:]
            valid = target != -100
            picked = logp.gather(-1, target.clamp(min=0).unsqueeze(-1)).squeeze(-1)
            nll = -(picked * valid).sum(-1) / valid.sum(-1).clamp(min=1)
            results.extend(float(x) for x in nll.cpu())
        return results

    def close(self) -> None:
        del self.model


class VLLMBackend(GenerationBackend):
    """vLLM on a GPU, the adapter served with ``enable_lora`` and one LoRARequest per probe."""

    def __init__(
        self,
        base_model: Path,
        adapter: Path | None,
        settings: GenerationConfig,
        *,
        device: str = "cuda",
        max_lora_rank: int = 64,
    ) -> None:
        try:
            from vllm import LLM
            from vllm.lora.request import LoRARequest
        except ImportError as exc:
            raise BackendUnavailable(
                "eval.generation.backend 'vllm' needs the vllm package and a CUDA GPU: "
                "pip install 'autoresearch[vllm]', or use backend: hf"
            ) from exc
        if device == "cpu":
            raise BackendUnavailable("eval.generation.backend 'vllm' runs on a GPU; use 'hf'")
        self.settings = settings
        self.llm = LLM(
            model=str(base_model),
            enable_lora=adapter is not None,
            max_lora_rank=max_lora_rank,
            seed=0,
        )
        self.tokenizer = self.llm.get_tokenizer()
        self.lora = None
        if adapter is not None:
            # A stable id per adapter folder (vLLM caches adapters by id).
            digest = hashlib.sha256(str(Path(adapter).resolve()).encode()).hexdigest()
            lora_id = int(digest[:8], 16) % (2**31 - 1) + 1
            self.lora = LoRARequest(Path(adapter).name, lora_id, str(adapter))

    def generate(self, prompts: Sequence[str], *, repeats: int, seed: int) -> list[list[str]]:
        from vllm import SamplingParams

        s = self.settings
        sample = s.temperature > 0
        params = SamplingParams(
            n=repeats if sample else 1,
            temperature=s.temperature,
            top_p=s.top_p if sample else 1.0,
            max_tokens=s.max_new_tokens,
            seed=seed,
        )
        texts = [_render(self.tokenizer, p) for p in prompts]
        results = self.llm.generate(texts, params, lora_request=self.lora)
        outputs = []
        for res in results:
            answers = [c.text.strip() for c in res.outputs]
            outputs.append(answers if sample else answers * repeats)
        return outputs

    def reference_nll(self, pairs: Sequence[tuple[str, str]]) -> list[float]:
        from vllm import SamplingParams

        params = SamplingParams(max_tokens=1, prompt_logprobs=0)
        results = []
        for prompt, reference in pairs:
            prefix = _render(self.tokenizer, prompt)
            n_prefix = len(self.tokenizer(prefix, add_special_tokens=False)["input_ids"])
            full = prefix + " " + reference + " " + str(self.tokenizer.eos_token)
            res = self.llm.generate([full], params, lora_request=self.lora)[0]
            logprobs = [
                next(iter(lp.values())).logprob
                for lp in (res.prompt_logprobs or [])[n_prefix:]
                if lp
            ]
            results.append(-sum(logprobs) / len(logprobs) if logprobs else math.nan)
        return results


def make_backend(
    settings: GenerationConfig, base_model: Path, adapter: Path | None, *, device: str = "cpu"
) -> GenerationBackend:
    """The configured backend (``hf`` or ``vllm``); vllm is imported only when selected."""
    if settings.backend == "hf":
        return HFBackend(base_model, adapter, settings, device=device)
    if settings.backend == "vllm":
        return VLLMBackend(base_model, adapter, settings, device=device)
    raise BackendUnavailable(f"unknown generation backend {settings.backend!r}")
