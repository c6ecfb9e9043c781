"""A miniature of "The Climb Carves Wisdom Deeper Than the Summit" (noisy rewards in RL for
reasoning): a small model learns Math-v0 arithmetic with GRPO under flipped rewards.

1. A randomly initialised chat model (``--model-size``; no download) is warm-started by
   supervised fine-tuning on the built-in ``math-solver`` agent's replies to Math-v0 arithmetic
   problems (difficulty 1), so that it answers in ``\\boxed{}`` some of the time.
2. From that checkpoint, one GRPO run per setting: ``flip_prob`` 0, 0.2, 0.4 (Math-v0's symmetric
   flips: every reward flipped independently, drawn anew at every step from the trainer's noise
   keys) and the reasoning-pattern reward only (``mode="rpr"``). Every run has the same seed,
   steps and batches.
3. The clean reward (the verifier's, whatever the training reward was) per step is written to
   ``curves.json``, plotted to ``curves.png`` when matplotlib is installed, and summarised as a
   Markdown table (mean clean reward of the first and last ``--window`` steps).

It shows whatever trend there is; nothing is tuned to produce one. Its successor, with seeds,
error bars, a held-out split, p = 0.5 and a SmolLM2 check, is
``python -m arenagym.benchmarks.experiments.noisy_rewards``.

Run (CPU smoke test, then the GPU default)::

    python benchmarks/noisy_reward_miniature.py --model-size tiny --sft-steps 2 --steps 2 \\
        --prompts-per-step 2 --group-size 2 --max-tokens 16 --output /tmp/mini
    python benchmarks/noisy_reward_miniature.py --device cuda --output runs/noisy-miniature
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

SIZES: dict[str, dict[str, int]] = {
    "tiny": {},
    "small": {  # ~30M parameters with the 2k vocabulary
        "hidden_size": 512,
        "intermediate_size": 1536,
        "num_hidden_layers": 8,
        "num_attention_heads": 8,
        "num_key_value_heads": 2,
    },
}
TASK = {"difficulty": 1, "categories": ["arithmetic"]}
SETTINGS: dict[str, dict[str, Any]] = {
    "flip 0.0": {"flip_prob": 0.0},
    "flip 0.2": {"flip_prob": 0.2},
    "flip 0.4": {"flip_prob": 0.4},
    "RPR only": {"mode": "rpr"},
}


def sft_warm_start(
    model_dir: Path, out: Path, steps: int, batch: int, lr: float, device: str
) -> Path:
    """Fine-tune on math-solver replies (prompt tokens masked out); save to ``out``.

    (The warm start now lives in :func:`arenagym.benchmarks.experiments.noisy_rewards.sft_warm_start`;
    this is it on Math-v0 :data:`TASK` with its own prompt, seed 0.)
    """
    from arenagym.benchmarks.experiments.noisy_rewards import sft_warm_start as warm_start

    return warm_start(model_dir, out, steps, batch, lr, device, env_id="Math-v0", tasks=[TASK])


def _run_dir(setting: str) -> str:
    return setting.replace(" ", "-")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-size", choices=sorted(SIZES), default="small")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--output", default="runs/noisy-miniature")
    parser.add_argument("--sft-steps", type=int, default=300)
    parser.add_argument("--sft-batch", type=int, default=32)
    parser.add_argument("--sft-lr", type=float, default=5e-4)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--prompts-per-step", type=int, default=32)
    parser.add_argument("--group-size", type=int, default=8)
    parser.add_argument("--max-tokens", type=int, default=96)
    parser.add_argument("--lr", type=float, default=1e-5)
    parser.add_argument("--window", type=int, default=10)
    parser.add_argument("--settings", nargs="+", default=list(SETTINGS), choices=list(SETTINGS))
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="replace the training runs an earlier invocation left in --output",
    )
    args = parser.parse_args(argv)

    from arenagym.agents.tiny_model import build_tiny_model
    from arenagym.trainers.config import TaskConfig, load_config
    from arenagym.trainers.trainer import Trainer

    out = Path(args.output)
    from arenagym.trainers.runs import run_files

    used = [str(out / _run_dir(n)) for n in args.settings if run_files(out / _run_dir(n))]
    if used and not args.overwrite:
        parser.error(
            f"{', '.join(used)}: training runs of an earlier invocation; pass --overwrite to "
            "replace them, or choose another --output"
        )
    out.mkdir(parents=True, exist_ok=True)
    base = build_tiny_model(out / "random-init", **SIZES[args.model_size])
    warm = sft_warm_start(
        base, out / "sft", args.sft_steps, args.sft_batch, args.sft_lr, args.device
    )
    curves: dict[str, list[float]] = {}
    for name in args.settings:
        config = load_config(
            "grpo",
            [
                f'model.path="{warm}"',
                f'model.device="{args.device}"',
                f'run.output_dir="{out / _run_dir(name)}"',
                f"run.steps={args.steps}",
                "run.checkpoint_every=0",
                f"rollout.prompts_per_step={args.prompts_per_step}",
                f"rollout.group_size={args.group_size}",
                f"rollout.max_tokens={args.max_tokens}",
                f"optim.lr={args.lr}",
                f"optim.micro_batch_size={min(32, args.prompts_per_step * args.group_size)}",
            ],
        )
        config.tasks = [TaskConfig("Math-v0", {**TASK, **SETTINGS[name]})]
        records = Trainer(config, overwrite=args.overwrite).train()
        curves[name] = [r["clean_reward_mean"] for r in records]
        print(
            f"{name}: clean reward {curves[name][0]:.3f} -> {curves[name][-1]:.3f}", file=sys.stderr
        )
    (out / "curves.json").write_text(json.dumps(curves, indent=2) + "\n")
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print(
            "matplotlib is not installed: curves.json only (pip install matplotlib)",
            file=sys.stderr,
        )
    else:
        figure, axis = plt.subplots(figsize=(6, 4))
        for name, values in curves.items():
            axis.plot(range(1, len(values) + 1), values, label=name)
        axis.set_xlabel("step")
        axis.set_ylabel("clean reward (verifier)")
        axis.legend()
        figure.tight_layout()
        figure.savefig(out / "curves.png", dpi=120)
    window = max(1, min(args.window, args.steps))
    print(f"| setting | clean reward, first {window} steps | last {window} steps |")
    print("| --- | ---: | ---: |")
    for name, values in curves.items():
        first = sum(values[:window]) / len(values[:window])
        last = sum(values[-window:]) / len(values[-window:])
        print(f"| {name} | {first:.3f} | {last:.3f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
