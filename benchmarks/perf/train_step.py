"""Time of one GRPO update step, ours vs TRL's ``GRPOTrainer``, with peak memory and MFU.

Both sides train the same model (a randomly initialised Qwen2 of ``--model-size``, seed 0, or
the model in ``--model DIR``), float32 master weights, SDPA attention, bf16 autocast on CUDA
only, on the same batch shape: ``--batch`` sequences per optimizer step in groups of
``--group-size``, ``--micro-batch`` sequences per forward/backward, prompts of exactly
``--prompt-len`` tokens and completions of exactly ``--completion-len`` tokens, rewards 0/1
alternating inside each group, GRPO advantages (group mean and std), the token-mean PPO-clip loss
(clip 0.2, no KL term, no reference model), gradient clipping at 1.0 and one AdamW step
(lr 1e-6, constant schedule). Each side runs in a subprocess of its own (so that peak memory is
its own), one after the other in the same invocation; ``--warmup`` steps are run and dropped,
then the median of ``--steps`` timed steps is reported (every step's time is printed too).

What is timed (the **update**, generation excluded on both sides):

- **ours** (``update_s``): :meth:`arenagym.trainers.trainer.Trainer._update` — the real
  trainer's update, from training samples to the optimizer step: collation, old log-probs
  recomputed by a no-grad forward over the batch (the trainer's default,
  ``algorithm.use_rollout_logprobs = false``), advantages, forward + backward per micro-batch
  (:func:`~arenagym.trainers.batch.completion_logprobs` with entropies), clipping, AdamW. The
  ``ours_rollout_lp`` row is the same with ``use_rollout_logprobs = true`` (the sampler's
  log-probs serve as old log-probs, no extra forward).
- **TRL** (``update_s``): ``GRPOTrainer.train()`` with a ``TrainerCallback`` that times every
  optimizer step from ``on_step_begin`` to ``on_step_end`` (all micro-batches' forward +
  backward, clipping, AdamW, scheduler, the ``Trainer`` loop's own work), minus the time spent in
  ``GRPOTrainer._generate_and_score_completions`` inside that step (prompt tokenisation,
  ``model.generate``, rewards, advantages), which is measured by wrapping that method. With
  ``num_iterations = 1`` and generation aligned with the optimizer step (the defaults used here)
  TRL computes no old log-probs: it uses the detached current ones. Generation uses
  transformers' ``generate`` (``use_vllm = False``) with ``min_new_tokens`` =
  ``max_completion_length`` = ``--completion-len``, so every completion has exactly that many
  tokens; ``loss_type = "dapo"`` (token-mean over the accumulated batch, as ours),
  ``beta = 0``, ``epsilon = 0.2``, ``scale_rewards = "group"``, ``optim = "adamw_torch"``.
  TRL's full step (``step_s``, generation included) and its generation time (``generation_s``)
  are printed too.

Generation is reported beside, not compared like for like: ours (``rollout_s``) is
:class:`~arenagym.agents.backends.hf.TransformersBackend` generating the batch's completions
from its prompts; TRL's is its ``generate`` inside ``_generate_and_score_completions``.

Printed: one JSON object with the machine, the settings and both sides (``update_s``,
``train_tokens_per_s``, ``peak_memory_mib`` and, on a GPU of known peak, ``mfu`` = ``6 *
parameters * tokens/s / peak`` with the chip's dense bf16 peak, H100/H200 SXM 989 TFLOP/s), and
``ratio_update_ours_over_trl`` (< 1: ours is faster) and ``ratio_memory_ours_over_trl``. Memory
is measured over the timed steps, after warm-up (weights, gradients and AdamW state are already
allocated): on CUDA ``torch.cuda.max_memory_allocated``; on CPU the peak RSS (Linux ``VmHWM``,
reset when the timed steps start) and its rise over the RSS at that start
(``peak_memory_over_start_mib``: activations and temporaries; the memory ratio is of these).
TRL's peak includes its generation inside the step; ours does not. Install TRL with
``pip install 'trl>=1.0'``; without it (or with ``--no-trl``) only our side runs.

- ``--model-size tiny`` (default, CPU): the test model's shape (~0.4M parameters, vocabulary
  2048); the figures are ratios on a CPU.
- ``--model-size 0.5b``: Qwen2-0.5B's shape (24 layers, hidden 896, MLP 4864, 14 heads, 2 KV
  heads, vocabulary 151,936; about 494M parameters), for a GPU.
- ``--model DIR``: a Hugging Face model directory (weights and tokenizer), e.g. SmolLM2.

TRL tokenises text prompts, so its prompts are a word repeated to exactly ``--prompt-len`` tokens
of the tokenizer (the tiny model's trained tokenizer for the built shapes; its ids are valid in
both vocabularies); ours gets random token ids of the same length. Token values do not change
the time.

Run::

    python -m arenagym.benchmarks.perf.train_step --batch 8 --group-size 4 --micro-batch 4 \\
        --prompt-len 64 --completion-len 32
    python -m arenagym.benchmarks.perf.train_step --model-size 0.5b --device cuda --batch 32 \\
        --micro-batch 8 --prompt-len 256 --completion-len 768
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

MODULE = "arenagym.benchmarks.perf.train_step"

SIZES: dict[str, dict[str, Any]] = {
    "tiny": {
        "vocab_size": 2048,
        "hidden_size": 128,
        "intermediate_size": 256,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
    },
    "0.5b": {
        "vocab_size": 151_936,
        "hidden_size": 896,
        "intermediate_size": 4864,
        "num_hidden_layers": 24,
        "num_attention_heads": 14,
        "num_key_value_heads": 2,
    },
}

#: Dense bf16 peak FLOP/s by device-name fragment.
PEAK_BF16 = {"H200": 989e12, "H100": 989e12, "A100": 312e12}

SIDES = ("ours", "ours_rollout_lp", "trl")


def peak_flops(device: Any) -> float | None:
    """The chip's dense bf16 peak, or ``None`` (CPU, unknown GPU)."""
    import torch

    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    return next((peak for key, peak in PEAK_BF16.items() if key in name), None)


def build_model(
    size: str, device: Any, gradient_checkpointing: bool, model_dir: str | None = None
) -> Any:
    """A random Qwen2 of ``size`` (seed 0), or the model in ``model_dir``; float32 master
    weights, SDPA attention."""
    import torch
    from transformers import AutoModelForCausalLM, Qwen2Config

    torch.manual_seed(0)
    if model_dir:
        model = AutoModelForCausalLM.from_pretrained(
            model_dir, dtype=torch.float32, attn_implementation="sdpa"
        )
    else:
        config = Qwen2Config(
            **SIZES[size],
            max_position_embeddings=4096,
            tie_word_embeddings=True,
            initializer_range=0.02,
            pad_token_id=0,
            eos_token_id=1,
            bos_token_id=None,
        )
        model = AutoModelForCausalLM.from_config(config, attn_implementation="sdpa")
    model = model.to(device)
    if gradient_checkpointing:
        model.gradient_checkpointing_enable()
        model.config.use_cache = False
    return model


def _proc_status_mib(field: str) -> float | None:
    """A memory field of ``/proc/self/status`` (``VmRSS``, ``VmHWM``) in MiB (Linux only)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) / 1024  # kB
    except (OSError, ValueError, IndexError):
        return None
    return None


def _reset_peak_rss() -> bool:
    """Reset the process's RSS high-water mark (``VmHWM``; Linux >= 4.0); whether it worked."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


class Memory:
    """Peak memory of the timed steps (after warm-up, so weights, gradients and AdamW state are
    already allocated): CUDA: the allocator's peak; CPU: the peak RSS (``VmHWM``, reset at the
    start) and its rise over the RSS at the start, i.e. activations and temporaries."""

    def __init__(self, device: Any) -> None:
        self.device = device
        self.rss_start = 0.0
        self.reset = False

    def start(self) -> None:
        import torch

        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
        else:
            self.reset = _reset_peak_rss()
            self.rss_start = _proc_status_mib("VmRSS") or 0.0

    def result(self) -> dict[str, Any]:
        import torch

        if self.device.type == "cuda":
            return {"peak_memory_mib": torch.cuda.max_memory_allocated(self.device) / 2**20}
        peak = _proc_status_mib("VmHWM") if self.reset else None
        if peak is None:  # no resettable high-water mark: the whole process's peak
            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        return {
            "peak_memory_mib": peak,
            "peak_memory_over_start_mib": max(peak - self.rss_start, 0.0),
            "peak_memory_kind": "VmHWM of the timed steps" if self.reset else "ru_maxrss",
        }


def _sync(device: Any) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _figures(
    args: argparse.Namespace, device: Any, params: int, update_s: float, tokens: int
) -> dict[str, Any]:
    tokens_per_s = tokens / update_s
    peak = peak_flops(device)
    return {
        "update_s": update_s,
        "tokens_per_update": tokens,
        "train_tokens_per_s": tokens_per_s,
        "mfu": 6 * params * tokens_per_s / peak if peak else None,
    }


# ---------------------------------------------------------------------------------- ours


class _Tokenizer:
    """What the trainer and the backend need of a tokenizer when ids are given."""

    chat_template = "ids only"
    pad_token_id = 0
    eos_token_id = 1

    def decode(self, ids: Sequence[int], skip_special_tokens: bool = True) -> str:
        return " ".join(map(str, ids))


class _NoGenerator:
    """The trainer's generator seam, unused: the update is timed on given samples."""

    def rollout(self, episodes: Any, config: Any) -> list[Any]:  # pragma: no cover
        raise RuntimeError("the perf script times the update only")

    def sync_weights(self, model: Any) -> None:
        pass


def run_ours(args: argparse.Namespace, rollout_logprobs: bool) -> dict[str, Any]:
    """Time :meth:`Trainer._update` on random samples of the requested shape."""
    import torch

    from arenagym.trainers.batch import Sample, collate, completion_logprobs
    from arenagym.trainers.config import load_config
    from arenagym.trainers.trainer import Trainer

    device = torch.device(args.device)
    memory = Memory(device)
    model = build_model(args.model_size, device, args.gradient_checkpointing, args.model)
    params = sum(p.numel() for p in model.parameters())
    vocab = int(model.config.vocab_size)
    generator = torch.Generator().manual_seed(0)
    samples = [
        Sample(
            torch.randint(3, vocab, (args.prompt_len,), generator=generator).tolist(),
            torch.randint(3, vocab, (args.completion_len,), generator=generator).tolist(),
            [],
            float(i % 2),
            float(i % 2),
            i // args.group_size,
            i,
        )
        for i in range(args.batch)
    ]
    if rollout_logprobs:  # as if sampled by this very policy: ratio 1, as on-policy
        with torch.no_grad():
            for start in range(0, args.batch, args.micro_batch):
                chunk = samples[start : start + args.micro_batch]
                logprobs, _ = completion_logprobs(model, collate(chunk, 0).to(device))
                for row, sample in enumerate(chunk):
                    sample.rollout_logprobs = logprobs[row].float().cpu().tolist()
    with tempfile.TemporaryDirectory() as tmp:
        config = load_config(
            "grpo",
            [
                f"model.device={args.device}",
                f"rollout.prompts_per_step={max(args.batch // args.group_size, 1)}",
                f"rollout.group_size={args.group_size}",
                f"rollout.max_tokens={args.completion_len}",
                f"optim.micro_batch_size={args.micro_batch}",
                "optim.lr=1e-6",
                f"algorithm.use_rollout_logprobs={json.dumps(rollout_logprobs)}",
                f"run.output_dir={tmp}",
                "run.checkpoint_every=0",
                f"run.steps={args.warmup + args.steps}",
            ],
        )
        config.model.gradient_checkpointing = args.gradient_checkpointing
        trainer = Trainer(config, model=model, tokenizer=_Tokenizer(), generator=_NoGenerator())
        for step in range(args.warmup):
            trainer._update(samples, args.completion_len, step)
        _sync(device)
        memory.start()
        times = []
        for step in range(args.warmup, args.warmup + args.steps):
            started = time.perf_counter()
            stats = trainer._update(samples, args.completion_len, step)
            _sync(device)
            times.append(time.perf_counter() - started)
        update_s = statistics.median(times)
    result = {
        "side": "ours" + ("_rollout_lp" if rollout_logprobs else ""),
        "parameters": params,
        **_figures(args, device, params, update_s, int(stats["train_tokens"])),
        **memory.result(),
        "update_s_each": times,
        "what": "Trainer._update: "
        + ("" if rollout_logprobs else "old log-probs by a no-grad forward, ")
        + "forward+backward per micro-batch, clip, AdamW",
    }
    if not args.no_rollout and not rollout_logprobs:
        result.update(_time_rollout(args, model, samples, device))
    return result


def _time_rollout(
    args: argparse.Namespace, model: Any, samples: Sequence[Any], device: Any
) -> dict[str, Any]:
    """Ours: the transformers backend generating the batch's completions."""
    import torch

    from arenagym.agents.backends.hf import TransformersBackend
    from arenagym.agents.backends.interface import SamplingParams

    backend = TransformersBackend(model, _Tokenizer())
    prompts = [s.prompt_ids for s in samples]
    params = SamplingParams(
        max_tokens=args.completion_len, temperature=1.0, seed=0, stop_token_ids=()
    )
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else None
    _sync(device)
    started = time.perf_counter()
    if autocast is not None:
        with autocast:
            completions = backend.generate_from_ids(prompts, params)
    else:
        completions = backend.generate_from_ids(prompts, params)
    _sync(device)
    rollout_s = time.perf_counter() - started
    model.train()
    generated = sum(len(c.completion_token_ids) for c in completions)
    return {"rollout_s": rollout_s, "rollout_tokens_per_s": generated / rollout_s}


# ---------------------------------------------------------------------------------- TRL


def prompt_text(tokenizer: Any, length: int) -> str:
    """A text that ``tokenizer`` turns into exactly ``length`` tokens (a word repeated)."""
    for word in (" the", " a", " and", " x", "a"):
        text = word * length
        if len(tokenizer(text, add_special_tokens=True)["input_ids"]) == length:
            return text
    raise SystemExit(
        f"no repeated word gives exactly {length} tokens with this tokenizer; "
        "pass another --prompt-len or --model"
    )


def run_trl(args: argparse.Namespace) -> dict[str, Any]:
    """Time ``GRPOTrainer``'s optimizer steps, its generation subtracted."""
    import torch
    from datasets import Dataset
    from transformers import AutoTokenizer, TrainerCallback
    from trl import GRPOConfig, GRPOTrainer

    device = torch.device(args.device)
    memory = Memory(device)
    model = build_model(args.model_size, device, args.gradient_checkpointing, args.model)
    params = sum(p.numel() for p in model.parameters())
    with tempfile.TemporaryDirectory() as tmp:
        if args.model:
            tokenizer = AutoTokenizer.from_pretrained(args.model)
        else:
            from arenagym.agents.tiny_model import build_tiny_model

            tokenizer = AutoTokenizer.from_pretrained(build_tiny_model(Path(tmp) / "tok"))
        text = prompt_text(tokenizer, args.prompt_len)
        steps = args.warmup + args.steps
        prompts = max(args.batch // args.group_size, 1) * steps
        dataset = Dataset.from_dict({"prompt": [text] * prompts})

        def reward(completions: list[Any], **kwargs: Any) -> list[float]:
            return [float(i % 2) for i in range(len(completions))]

        config = GRPOConfig(
            output_dir=str(Path(tmp) / "out"),
            per_device_train_batch_size=args.micro_batch,
            gradient_accumulation_steps=max(args.batch // args.micro_batch, 1),
            num_generations=args.group_size,
            max_completion_length=args.completion_len,
            generation_kwargs={"min_new_tokens": args.completion_len},
            temperature=1.0,
            learning_rate=1e-6,
            lr_scheduler_type="constant",
            warmup_steps=0,
            weight_decay=0.0,
            max_grad_norm=1.0,
            optim="adamw_torch",
            beta=0.0,
            epsilon=0.2,
            loss_type="dapo",
            scale_rewards="group",
            num_iterations=1,
            max_steps=steps,
            logging_steps=10**6,
            save_strategy="no",
            report_to="none",
            bf16=device.type == "cuda",
            use_cpu=device.type == "cpu",
            use_vllm=False,
            seed=0,
            shuffle_dataset=False,
            dataloader_num_workers=0,
            gradient_checkpointing=args.gradient_checkpointing,
            disable_tqdm=True,
        )
        trainer = GRPOTrainer(
            model=model,
            reward_funcs=reward,
            args=config,
            train_dataset=dataset,
            processing_class=tokenizer,
        )
        generation: list[float] = []
        generate = trainer._generate_and_score_completions

        def timed_generate(*a: Any, **k: Any) -> Any:
            _sync(device)
            started = time.perf_counter()
            out = generate(*a, **k)
            _sync(device)
            generation.append(time.perf_counter() - started)
            return out

        trainer._generate_and_score_completions = timed_generate  # type: ignore[method-assign]

        class StepTimer(TrainerCallback):
            def __init__(self) -> None:
                self.steps: list[tuple[float, float]] = []  # (step_s, generation_s)
                self.started = 0.0
                self.generated = 0

            def on_step_begin(self, *a: Any, **k: Any) -> None:
                if len(self.steps) == args.warmup:
                    memory.start()
                _sync(device)
                self.generated = len(generation)
                self.started = time.perf_counter()

            def on_step_end(self, *a: Any, **k: Any) -> None:
                _sync(device)
                step_s = time.perf_counter() - self.started
                self.steps.append((step_s, sum(generation[self.generated :])))

        timer = StepTimer()
        trainer.add_callback(timer)
        trainer.train()
        timed = timer.steps[args.warmup :]
        if len(timed) != args.steps:
            raise RuntimeError(f"TRL ran {len(timed)} timed steps, expected {args.steps}")
        step_s = statistics.median(s for s, _ in timed)
        generation_s = statistics.median(g for _, g in timed)
        update_each = [s - g for s, g in timed]
    tokens = args.batch * (args.prompt_len + args.completion_len)
    import trl

    return {
        "side": "trl",
        "trl": trl.__version__,
        "parameters": params,
        **_figures(args, device, params, statistics.median(update_each), tokens),
        **memory.result(),
        "update_s_each": update_each,
        "step_s": step_s,
        "generation_s": generation_s,
        "what": "GRPOTrainer step (on_step_begin..on_step_end) minus "
        "_generate_and_score_completions; no old log-probs (on-policy)",
    }


# ---------------------------------------------------------------------------------- driver


def build_parser() -> argparse.ArgumentParser:
    """The command line (see the module docstring)."""
    parser = argparse.ArgumentParser(
        prog=f"python -m {MODULE}", description=(__doc__ or "").splitlines()[0]
    )
    parser.add_argument("--model-size", choices=sorted(SIZES), default="tiny")
    parser.add_argument("--model", default=None, help="a model directory instead of a shape")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch", type=int, default=8, help="sequences per optimizer step")
    parser.add_argument("--group-size", type=int, default=4)
    parser.add_argument("--micro-batch", type=int, default=4)
    parser.add_argument("--prompt-len", type=int, default=64)
    parser.add_argument("--completion-len", type=int, default=32)
    parser.add_argument("--steps", type=int, default=5, help="timed updates (median)")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--gradient-checkpointing", action="store_true")
    parser.add_argument("--no-rollout", action="store_true", help="skip our rollout timing")
    parser.add_argument("--no-trl", action="store_true", help="time our side only")
    parser.add_argument("--side", choices=SIDES, help=argparse.SUPPRESS)  # a child process
    return parser


def _check(args: argparse.Namespace, parser: argparse.ArgumentParser) -> None:
    for name in ("batch", "group_size", "micro_batch", "prompt_len", "completion_len", "steps"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1")
    if args.warmup < 0:
        parser.error("--warmup must be >= 0")
    if args.batch % args.group_size or args.batch % args.micro_batch:
        parser.error(
            f"--batch ({args.batch}) must be a multiple of --group-size ({args.group_size}) "
            f"and of --micro-batch ({args.micro_batch}) (TRL's batch arithmetic needs both)"
        )


def _child(args: argparse.Namespace, side: str, argv: Sequence[str]) -> dict[str, Any]:
    command = [sys.executable, "-m", MODULE, *argv, "--side", side]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        tail = "\n".join(done.stderr.strip().splitlines()[-15:])
        return {"side": side, "error": f"exit status {done.returncode}: {tail}"}
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: Sequence[str] | None = None) -> int:
    """Run both sides (each in a subprocess) and print the comparison as JSON."""
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(argv)
    _check(args, parser)
    if args.side is not None:  # a child: one side, one JSON line
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        import transformers

        transformers.utils.logging.set_verbosity_error()
        if args.side == "trl":
            result = run_trl(args)
        else:
            result = run_ours(args, rollout_logprobs=args.side == "ours_rollout_lp")
        print(json.dumps(result))
        return 0

    import torch

    sides = ["ours", "ours_rollout_lp"]
    trl_version: str | None = None
    if not args.no_trl:
        try:
            import trl

            trl_version = trl.__version__
            sides.append("trl")
        except ImportError:
            print("TRL is not installed (pip install 'trl>=1.0'): our side only", file=sys.stderr)
    results = {side: _child(args, side, argv) for side in sides}
    device = torch.device(args.device)
    report: dict[str, Any] = {
        "machine": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpus": os.cpu_count(),
        "threads": torch.get_num_threads(),
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "torch": torch.__version__,
        "trl_version": trl_version,
        "model": args.model or args.model_size,
        "batch": args.batch,
        "group_size": args.group_size,
        "micro_batch": args.micro_batch,
        "prompt_len": args.prompt_len,
        "completion_len": args.completion_len,
        "steps": args.steps,
        "warmup": args.warmup,
        **results,
    }
    trl_side = results.get("trl", {})
    for side in ("ours", "ours_rollout_lp"):
        ours = results[side]
        if "update_s" in ours and "update_s" in trl_side:
            report[f"ratio_update_{side}_over_trl"] = ours["update_s"] / trl_side["update_s"]
            if trl_side.get("peak_memory_over_start_mib"):
                report[f"ratio_memory_{side}_over_trl"] = (
                    ours["peak_memory_over_start_mib"] / trl_side["peak_memory_over_start_mib"]
                )
            elif device.type == "cuda":
                report[f"ratio_memory_{side}_over_trl"] = (
                    ours["peak_memory_mib"] / trl_side["peak_memory_mib"]
                )
    print(json.dumps(report, indent=2))
    failed = [side for side, result in results.items() if "error" in result]
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
