"""Throughput of one GRPO update, its MFU, and the rollout's share of a full RL step.

A randomly initialised Qwen2-shaped causal LM (no download) trains on a batch of random token
sequences exactly as the trainer does it: completion log-probabilities
(:func:`~arenagym.trainers.batch.completion_logprobs`), GRPO advantages over groups, the token-mean
PPO-clip loss, backward over micro-batches, gradient clipping and an AdamW step, with bf16
autocast on CUDA. It prints training tokens per second and the model-FLOPs utilisation
``6 * parameters * tokens/s / peak`` against the chip's dense bf16 peak (H100/H200 SXM: 989
TFLOP/s), then times a rollout (the transformers backend generating the same completion length
for the same batch) and prints its share of rollout + update.

- ``--model-size tiny`` (default, CPU): the test model's shape (~0.4M parameters); the figures
  are only ratios on a CPU.
- ``--model-size 0.5b``: Qwen2-0.5B's shape (24 layers, hidden 896, MLP 4864, 14 heads, 2 KV
  heads, vocabulary 151,936; about 494M parameters), for a GPU.

Run::

    python -m arenagym.benchmarks.perf.train_step --batch 4 --prompt-len 16 --completion-len 16
    python -m arenagym.benchmarks.perf.train_step --model-size 0.5b --device cuda --batch 32 \\
        --micro-batch 8 --prompt-len 256 --completion-len 768
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from collections.abc import Sequence
from typing import Any

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


def peak_flops(device: Any) -> float | None:
    """The chip's dense bf16 peak, or ``None`` (CPU, unknown GPU)."""
    import torch

    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    return next((peak for key, peak in PEAK_BF16.items() if key in name), None)


def build_model(size: str, device: Any, gradient_checkpointing: bool) -> Any:
    """A random Qwen2 of ``size``, float32 master weights, SDPA attention."""
    import torch
    from transformers import AutoModelForCausalLM, Qwen2Config

    config = Qwen2Config(
        **SIZES[size],
        max_position_embeddings=4096,
        tie_word_embeddings=True,
        initializer_range=0.02,
        pad_token_id=0,
        eos_token_id=1,
        bos_token_id=None,
    )
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(config, attn_implementation="sdpa").to(device)
    if gradient_checkpointing:
        model.gradient_checkpointing_enable()
    return model


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-size", choices=sorted(SIZES), default="tiny")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch", type=int, default=4, help="sequences per update")
    parser.add_argument("--group-size", type=int, default=4)
    parser.add_argument("--micro-batch", type=int, default=4)
    parser.add_argument("--prompt-len", type=int, default=16)
    parser.add_argument("--completion-len", type=int, default=16)
    parser.add_argument("--steps", type=int, default=3, help="timed updates")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--gradient-checkpointing", action="store_true")
    parser.add_argument("--no-rollout", action="store_true", help="skip the rollout timing")
    args = parser.parse_args(argv)

    import torch

    from arenagym.trainers.algorithms import GroupNormalized, PolicyLoss, token_weights
    from arenagym.trainers.batch import Sample, collate, completion_logprobs

    device = torch.device(args.device)
    model = build_model(args.model_size, device, args.gradient_checkpointing)
    params = sum(p.numel() for p in model.parameters())
    vocab = SIZES[args.model_size]["vocab_size"]
    generator = torch.Generator().manual_seed(0)
    samples = [
        Sample(
            torch.randint(3, vocab, (args.prompt_len,), generator=generator).tolist(),
            torch.randint(3, vocab, (args.completion_len,), generator=generator).tolist(),
            [],
            float(i % 2),
            float(i % 2),
            i // args.group_size,
        )
        for i in range(args.batch)
    ]
    full = collate(samples, pad_id=0)
    advantages = GroupNormalized().compute(full.rewards, full.groups, full.mask)
    weights = token_weights(full.mask, "token-mean")
    loss_fn = PolicyLoss()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-6)
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else None
    model.train()

    def update() -> None:
        optimizer.zero_grad(set_to_none=True)
        for start in range(0, args.batch, args.micro_batch):
            rows = slice(start, start + args.micro_batch)
            batch = collate(samples[rows], pad_id=0).to(device)
            if autocast is not None:
                with autocast:
                    logprobs, entropy = completion_logprobs(model, batch, with_entropy=True)
            else:
                logprobs, entropy = completion_logprobs(model, batch, with_entropy=True)
            out = loss_fn(
                logprobs,
                logprobs.detach(),
                advantages[rows].to(device),
                weights[rows].to(device),
                entropy=entropy.detach() if entropy is not None else None,
            )
            out.loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    for _ in range(args.warmup):
        update()
    sync()
    started = time.perf_counter()
    for _ in range(args.steps):
        update()
    sync()
    update_s = (time.perf_counter() - started) / args.steps
    tokens = full.tokens
    tokens_per_s = tokens / update_s
    peak = peak_flops(device)
    result: dict[str, Any] = {
        "machine": platform.platform(),
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "torch": torch.__version__,
        "model_size": args.model_size,
        "parameters": params,
        "batch": args.batch,
        "tokens_per_update": tokens,
        "update_s": update_s,
        "train_tokens_per_s": tokens_per_s,
        "mfu": 6 * params * tokens_per_s / peak if peak else None,
    }
    if not args.no_rollout:
        from arenagym.agents.backends.base import SamplingParams
        from arenagym.agents.backends.hf import TransformersBackend

        class _Tokenizer:  # generate_from_ids needs no chat template; the backend wants one
            chat_template = "ids only"
            pad_token_id = 0
            eos_token_id = 1

            def decode(self, ids: Sequence[int], skip_special_tokens: bool = True) -> str:
                return " ".join(map(str, ids))

        backend = TransformersBackend(model, _Tokenizer())
        prompts = [s.prompt_ids for s in samples]
        params_ = SamplingParams(
            max_tokens=args.completion_len, temperature=1.0, seed=0, stop_token_ids=()
        )
        dtype_context = autocast if autocast is not None else None
        sync()
        started = time.perf_counter()
        if dtype_context is not None:
            with dtype_context:
                completions = backend.generate_from_ids(prompts, params_)
        else:
            completions = backend.generate_from_ids(prompts, params_)
        sync()
        rollout_s = time.perf_counter() - started
        model.train()
        generated = sum(len(c.completion_token_ids) for c in completions)
        result.update(
            rollout_s=rollout_s,
            rollout_tokens_per_s=generated / rollout_s,
            rollout_share=rollout_s / (rollout_s + update_s),
        )
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
