"""Tokens per second of the rollout engine: batched generation vs one conversation at a time.

Same model, same episodes, same run: the :class:`~arenagym.agents.rollout.RolloutEngine` plays
``--episodes`` Math-v0 episodes on the transformers backend twice — once batching every waiting
request into one ``generate`` call (``max_batch_size = episodes``), once with
``max_batch_size = 1`` — after a warm-up pass, and prints completion tokens per second of each
and their ratio. Greedy decoding, so both modes generate the same tokens.

Models are randomly initialised and built on the spot (no download):

- ``--model-size tiny`` (default): the test model of :mod:`arenagym.agents.tiny_model` (CPU).
- ``--model-size 0.5b``: Qwen2-0.5B's shape (24 layers, hidden 896, MLP 4864, 14 heads, 2 KV
  heads) with the tiny model's 2k-token vocabulary instead of 152k — about 0.36B parameters;
  for a GPU, e.g. ``--dtype bfloat16 --device cuda``.

Run::

    python -m arenagym.benchmarks.perf.rollout
    python -m arenagym.benchmarks.perf.rollout --model-size 0.5b --dtype bfloat16 --device cuda \\
        --episodes 64 --max-tokens 128
"""

from __future__ import annotations

import argparse
import platform
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

_SIZES = {
    "tiny": {},
    "0.5b": {
        "hidden_size": 896,
        "intermediate_size": 4864,
        "num_hidden_layers": 24,
        "num_attention_heads": 14,
        "num_key_value_heads": 2,
        "max_position_embeddings": 4096,
        "initializer_range": 0.02,
    },
}


def measure(backend: object, episodes: int, max_tokens: int, batch: int) -> tuple[int, float]:
    """(completion tokens, seconds) of one engine run over ``episodes`` Math-v0 episodes."""
    from arenagym.agents.backends.base import SamplingParams
    from arenagym.agents.rollout import EpisodeSpec, RolloutConfig, RolloutEngine

    specs = [EpisodeSpec("Math-v0", {"difficulty": 1}, seed=seed) for seed in range(episodes)]
    config = RolloutConfig(
        SamplingParams(max_tokens=max_tokens, temperature=0.0),
        max_batch_size=batch,
        max_wait_s=0.05,
    )
    engine = RolloutEngine(backend, config)  # type: ignore[arg-type]
    started = time.perf_counter()
    trajectories = engine.run(specs)
    elapsed = time.perf_counter() - started
    errors = [t.error for t in trajectories if t.stop_reason == "env_error"]
    if errors:
        raise RuntimeError(f"{len(errors)} episodes failed, e.g. {errors[0]}")
    return sum(t.completion_tokens for t in trajectories), elapsed


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model-size", choices=sorted(_SIZES), default="tiny")
    parser.add_argument("--dtype", default=None, help="e.g. float32, bfloat16 (default: backend's)")
    parser.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1 ...")
    parser.add_argument("--episodes", type=int, default=16)
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=2, help="timed runs per mode (best kept)")
    args = parser.parse_args(argv)

    import torch

    from arenagym.agents.backends.hf import TransformersBackend
    from arenagym.agents.tiny_model import build_tiny_model

    with tempfile.TemporaryDirectory() as directory:
        path = build_tiny_model(Path(directory) / args.model_size, **_SIZES[args.model_size])
        backend = TransformersBackend(path, device=args.device, dtype=args.dtype)
    parameters = sum(p.numel() for p in backend.model.parameters())
    device = args.device
    if device.startswith("cuda"):
        device += f" ({torch.cuda.get_device_name(torch.device(device))})"
    print(
        f"model: {args.model_size} ({parameters / 1e6:.1f}M parameters, "
        f"{next(backend.model.parameters()).dtype}) on {device}; torch {torch.__version__}, "
        f"{platform.machine()} with {torch.get_num_threads()} threads"
    )
    print(f"episodes: {args.episodes} Math-v0 (difficulty 1), greedy, max_tokens={args.max_tokens}")
    measure(backend, min(args.episodes, 4), 8, args.episodes)  # warm-up

    rates = {}
    for mode, batch in (("one at a time", 1), ("batched", args.episodes)):
        best = None
        for _ in range(args.repeats):
            tokens, seconds = measure(backend, args.episodes, args.max_tokens, batch)
            if best is None or seconds < best[1]:
                best = (tokens, seconds)
        assert best is not None
        rates[mode] = best[0] / best[1]
        print(f"{mode:>14}: {best[0]} tokens in {best[1]:.2f} s = {rates[mode]:,.0f} tokens/s")
    print(f"batched / one at a time: {rates['batched'] / rates['one at a time']:.1f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
