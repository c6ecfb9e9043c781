r"""Divide-Fuse-Conquer in miniature: specialists -> fused -> conquered vs one model on the mixture.

What the paper reports (Zhang et al. 2025, "Divide-Fuse-Conquer: Eliciting 'Aha Moments' in
Multi-Scenario Games", arXiv:2505.16401; from its abstract and public reviews, as
:mod:`arenagym.trainers.dfc` explains): reinforcement learning of one model on many TextArena
games at once generalises poorly across games and trains unstably; dividing the games into
groups, training a specialist per group, fusing the specialists' parameters progressively and
training the fused model on the groups so far gives a stronger multi-game player.

What this script measures: two groups of two-player TextArena games (the paper's first
criterion, the initial state: ``fixed`` and ``random``), run through the DFC driver
(:func:`arenagym.trainers.dfc.run_dfc`, the machinery of ``arenagym dfc``) with ``[[groups]]``
given:

* **DFC**: specialist 1 = ``S`` GRPO steps on group 1 from the base; specialist 2 = ``S`` steps
  on group 2 from specialist 1; fused 2 = 1/2 specialist 1 + 1/2 specialist 2; conquer 2 = ``C``
  steps of the fused model on both groups (the DFC result);
* **mixture**: the base trained on both groups (every game, equal weight) for the same total,
  ``2 S + C`` steps, with the same batch per step (the same driver: one group, no fusion).

Both arms use the same training config (the ``grpo`` preset: token-mean PPO-clip, no KL, with
the preset's sizes), the same ``run.seed`` per seed, and are evaluated on the same seeded
episodes: every game against each of the built-in opponents of
:mod:`arenagym.envs.textarena.opponents` (``RandomLegalOpponent``, ``FirstLegalOpponent``,
``SearchOpponent`` at depth 4; in both seats as the episode seed draws them),
``eval_episodes`` episodes per game and opponent. The win rate is the share of episodes that end
``won``. The env, its rules, its opponents and its scoring are untouched; only the policy is
trained. Nothing is tuned to produce a result: the sizes were set from the time budget before
the first full run, and the script reports whatever comes out, including no effect.

Every seed trains its own runs (``run.seed``) and evaluates on its own episodes
(``eval_seed = 10000 + 1000 * seed``); DFC and mixture share them, so each seed is a paired
comparison. Tables give mean ± std over seeds (95% t-intervals in the JSON); plots draw ±1 std
error bars.

Presets:

- ``--preset cpu``: the ``tiny`` random-init Qwen2 (2 layers, width 128, ~0.4M parameters, the
  ~1k-token vocabulary of :func:`~arenagym.agents.tiny_model.build_tiny_model`), first
  warm-started by supervised fine-tuning on transcripts of ``RandomLegalOpponent`` playing the
  games (the AEC envs' text, which is what the single-agent envs show; 48 steps x 4
  conversations), so that it writes moves in the games' format and wins some games: a random-init
  model writes no legal move, loses every episode and gives GRPO nothing to learn from. The warm
  start (seed 0) is the common base of every seed and both arms. One game per group, Nim
  (fixed) and KuhnPoker (random), because the tiny model's tokenizer makes a TextArena game
  transcript 900-1900 tokens long and every turn is a training row with the whole history as its
  prompt: with 4 games per step the budget would allow only a step or two per stage. ``S = C =
  3`` steps of 2 prompts x 4 rollouts, 6 tokens a turn, at most 3 turns while training, learning
  rate 1e-3 (a 0.4M-parameter model barely moves in 9 steps at the 1e-6 of the ``grpo``
  preset; set before any run, not tuned), the sampler's log-probabilities as old log-probs
  (``algorithm.use_rollout_logprobs``: one forward less per step; the runs are on-policy).
  Evaluation: 4 episodes per game and opponent, sampled at temperature 1 with the episode's
  seed (an imitation of a uniformly random player decodes greedily to the same move every turn
  and loses on illegal repeats). After the warm start the base wins KuhnPoker about 60% of the
  time against ``RandomLegalOpponent`` and no game of Nim (it writes pile moves that are not
  legal); a few GRPO steps on a 0.4M-parameter model are not expected to show the paper's
  effect, and the table says what they do show.
- ``--preset gpu``: SmolLM2-135M-Instruct (or ``--model DIR``), no warm start, two games per
  group (fixed: TicTacToe, Nim; random: KuhnPoker, SimpleNegotiation), ``S = C = 50`` steps of
  8 x 8 rollouts, 64 tokens a turn, greedy evaluation with 32 episodes per game and opponent.
- ``--preset smoke``: ``tiny``, two SFT steps, Nim | KuhnPoker, one GRPO step per stage, one
  episode per game against one opponent: plumbing only (the tests run it).

``--group-a`` / ``--group-b`` (two-player games), ``--specialist-steps``, ``--conquer-steps``,
``--eval-episodes`` and ``--sft-steps`` change a preset; ``--seeds``, ``--model`` and
``--device`` too.

Time (2-core AMD EPYC VM, AVX2, 24 GiB, shared with other timing work while measured; one
thread, ``OMP_NUM_THREADS=1``): the smoke preset takes about 40 s, mostly imports and model
loading. The cpu preset is sized from per-step times measured on the same machine: SFT ~100 s
(2 s a step), a GRPO step 10-35 s (2 prompts x 4 rollouts of up to 3 turns; the update over
~24 rows of 300-1000 tokens dominates), an evaluation of one model (2 games x 3 opponents x 4
episodes) ~10-20 s. Per seed 2 x 9 steps and 6 evaluations: ~4-10 min; 3 seeds and the warm
start: about 15-30 minutes, under the 40-minute budget (two threads on an idle machine are
faster than the one contended thread measured). The script prints its seconds per step and the
total.

Outputs in ``--out``: ``results.md`` / ``results.json`` (win rate per game, per group and overall
for base, every DFC stage and the mixture, mean ± std over seeds, and DFC - mixture per seed),
``per_opponent.md`` / ``per_opponent.json`` (base, DFC and mixture per game and opponent),
``win_rate_by_game.png`` (bars with error bars), ``win_rate_by_stage.png`` (win rate per group
along the DFC stages, the mixture beside them), ``raw.json`` (every score of every seed, the
evaluations per opponent, the seconds), the base model under ``models/`` and the driver's run
folders under ``runs/seed-N/`` (``dfc/`` and ``mixture/``, each with the driver's ``report.md``
and the trainer's ``metrics.jsonl`` per stage).

Run::

    python -m arenagym.benchmarks.experiments.dfc_games --preset smoke --out /tmp/dfc-smoke
    python -m arenagym.benchmarks.experiments.dfc_games --preset cpu --out runs/dfc-games
    python -m arenagym.benchmarks.experiments.dfc_games --preset gpu --out runs/dfc-games-gpu \
        --seeds 0,1,2                      # --model DIR for another model than SmolLM2
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import random
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from arenagym.benchmarks.experiments.common import (
    add_common_arguments,
    matplotlib_pyplot,
    non_negative_int,
    positive_int,
    summarize,
    write_json,
    write_table,
)

__all__ = [
    "BUILT_SIZES",
    "MIXTURE",
    "OPPONENTS",
    "PRESETS",
    "CachedEvaluator",
    "Preset",
    "arm_configs",
    "main",
    "play_transcripts",
    "run_seed",
    "sft_on_legal_moves",
    "summarize_runs",
    "total_steps",
    "write_outputs",
]

#: The built-in opponents of the evaluation, by short name: (agent spec, kwargs).
OPPONENTS: dict[str, tuple[str, dict[str, Any]]] = {
    "random": ("arenagym.envs.textarena.opponents:RandomLegalOpponent", {"seed": 0}),
    "first": ("arenagym.envs.textarena.opponents:FirstLegalOpponent", {}),
    "search": ("arenagym.envs.textarena.opponents:SearchOpponent", {"depth": 4, "seed": 0}),
}

#: Models built here (random init, then the SFT warm start): ``build_tiny_model`` arguments.
BUILT_SIZES: dict[str, dict[str, int]] = {
    "tiny": {},  # 2 layers, width 128 (build_tiny_model's defaults)
    "mini": {  # ~3M parameters
        "hidden_size": 256,
        "intermediate_size": 768,
        "num_hidden_layers": 4,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
    },
}

MIXTURE = "mixture"
DFC_FINAL = "DFC"


@dataclass(frozen=True)
class Preset:
    """One size of the experiment (see the module docstring)."""

    model: str
    device: str
    groups: dict[str, tuple[str, ...]]
    seeds: tuple[int, ...]
    specialist_steps: int
    conquer_steps: int
    prompts_per_step: int
    group_size: int
    max_tokens: int
    max_turns: int
    lr: float
    micro_batch_size: int
    eval_episodes: int
    eval_max_tokens: int
    eval_max_turns: int | None
    eval_temperature: float
    opponents: tuple[str, ...]
    sft_steps: int = 0
    sft_batch: int = 8
    sft_lr: float = 3e-3
    extra_overrides: tuple[str, ...] = field(default_factory=tuple)


PRESETS: dict[str, Preset] = {
    "smoke": Preset(
        model="tiny",
        device="cpu",
        groups={"fixed": ("Nim",), "random": ("KuhnPoker",)},
        seeds=(0,),
        specialist_steps=1,
        conquer_steps=1,
        prompts_per_step=1,
        group_size=2,
        max_tokens=4,
        max_turns=2,
        lr=1e-3,
        micro_batch_size=8,
        eval_episodes=1,
        eval_max_tokens=4,
        eval_max_turns=3,
        eval_temperature=1.0,
        opponents=("random",),
        sft_steps=2,
        sft_batch=2,
        extra_overrides=("algorithm.use_rollout_logprobs=true",),
    ),
    "cpu": Preset(
        model="tiny",
        device="cpu",
        groups={"fixed": ("Nim",), "random": ("KuhnPoker",)},
        seeds=(0, 1, 2),
        specialist_steps=3,
        conquer_steps=3,
        prompts_per_step=2,
        group_size=4,
        max_tokens=6,
        max_turns=3,
        lr=1e-3,
        micro_batch_size=8,
        eval_episodes=4,
        eval_max_tokens=6,
        eval_max_turns=12,
        eval_temperature=1.0,
        opponents=("random", "first", "search"),
        sft_steps=48,
        sft_batch=4,
        extra_overrides=("algorithm.use_rollout_logprobs=true",),
    ),
    "gpu": Preset(
        model="smollm2-135m-instruct",
        device="cuda",
        groups={"fixed": ("TicTacToe", "Nim"), "random": ("KuhnPoker", "SimpleNegotiation")},
        seeds=(0, 1, 2),
        specialist_steps=50,
        conquer_steps=50,
        prompts_per_step=8,
        group_size=8,
        max_tokens=64,
        max_turns=20,
        lr=1e-6,
        micro_batch_size=16,
        eval_episodes=32,
        eval_max_tokens=32,
        eval_max_turns=None,
        eval_temperature=0.0,
        opponents=("random", "first", "search"),
    ),
}


def _log(message: str) -> None:
    print(f"[dfc_games {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# ------------------------------------------------------------------------------ the warm start


def play_transcripts(game: str, episodes: int, seed: int) -> list[list[dict[str, str]]]:
    """Chat conversations of ``RandomLegalOpponent`` playing ``game`` against itself: per episode
    one seat's system prompt, every observation it got at its turn and every move it made."""
    from arenagym.agents.specs import load_agent
    from arenagym.envs.core.registration import make_multi_agent
    from arenagym.envs.textarena.aec import system_prompt

    spec, _ = OPPONENTS["random"]
    rng = random.Random(f"{game}:{seed}")
    conversations = []
    for _ in range(episodes):
        env = make_multi_agent(f"TextArena/{game}-AEC-v0")
        try:
            env.reset(seed=rng.randrange(2**31))
            players = {a: load_agent(spec, seed=rng.randrange(2**31)) for a in env.possible_agents}
            recorded = env.possible_agents[rng.randrange(len(env.possible_agents))]
            seat = env.possible_agents.index(recorded)
            messages = [{"role": "system", "content": system_prompt(game, seat, 2)}]
            for agent in env.agent_iter():
                observation, _, terminated, truncated, _ = env.last()
                if terminated or truncated:
                    env.step(None)
                    continue
                players[agent].observe_game(env.game_view(agent))
                move = players[agent].act(observation)
                if agent == recorded:
                    messages += [
                        {"role": "user", "content": observation},
                        {"role": "assistant", "content": move},
                    ]
                env.step(move)
        finally:
            env.close()
        if len(messages) > 1:
            conversations.append(messages)
    return conversations


def sft_on_legal_moves(
    model_dir: Path,
    out: Path,
    games: Sequence[str],
    *,
    steps: int,
    batch: int,
    lr: float,
    device: str,
    seed: int = 0,
    log: Callable[[str], None] = _log,
) -> Path:
    """Fine-tune ``model_dir`` on ``RandomLegalOpponent``'s moves in ``games`` (every move of the
    recorded seat is a target; system prompt and observations are context) and save to ``out``.

    Conversations longer than the model's context are cut to their first turns that fit.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir).to(device)
    context = int(getattr(model.config, "max_position_embeddings", 2048))
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    conversations = [
        c for g in games for c in play_transcripts(g, max(1, steps * batch // len(games)), seed)
    ]
    random.Random(seed).shuffle(conversations)

    def encode(messages: list[dict[str, str]]) -> tuple[list[int], list[int]]:
        def ids(upto: int, prompt: bool) -> list[int]:
            text = tokenizer.apply_chat_template(
                messages[:upto], tokenize=False, add_generation_prompt=prompt
            )
            return list(tokenizer(text, add_special_tokens=False)["input_ids"])

        tokens = ids(len(messages), False)
        labels = [-100] * len(tokens)
        for i, message in enumerate(messages):
            if message["role"] == "assistant":
                start, end = len(ids(i, True)), len(ids(i + 1, False))
                labels[start:end] = tokens[start:end]
        cut = min(len(tokens), context)
        return tokens[:cut], labels[:cut]

    encoded = [encode(c) for c in conversations]
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr)
    model.train()
    for step in range(steps):
        rows = [encoded[(step * batch + i) % len(encoded)] for i in range(batch)]
        width = max(len(t) for t, _ in rows)
        ids = torch.full((len(rows), width), pad)
        labels = torch.full((len(rows), width), -100)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for i, (t, lab) in enumerate(rows):
            ids[i, : len(t)] = torch.tensor(t)
            labels[i, : len(t)] = torch.tensor(lab)
            mask[i, : len(t)] = 1
        loss = model(
            input_ids=ids.to(device), attention_mask=mask.to(device), labels=labels.to(device)
        ).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if (step + 1) % max(1, steps // 5) == 0:
            log(f"SFT step {step + 1}/{steps}: loss {float(loss.detach()):.3f}")
    model.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
    return out


def prepare_model(
    name: str, out: Path, preset: Preset, games: Sequence[str], device: str
) -> tuple[Path, str]:
    """The base model's directory and how it was made (built + SFT, or given as it is)."""
    if name in BUILT_SIZES:
        from arenagym.agents.tiny_model import build_tiny_model

        started = time.perf_counter()
        model = build_tiny_model(out / "random-init", seed=0, **BUILT_SIZES[name])
        if preset.sft_steps > 0:
            model = sft_on_legal_moves(
                model,
                out / "sft",
                games,
                steps=preset.sft_steps,
                batch=preset.sft_batch,
                lr=preset.sft_lr,
                device=device,
            )
        took = time.perf_counter() - started
        how = (
            f"{name} (random init, seed 0) + {preset.sft_steps} SFT steps x {preset.sft_batch} "
            f"RandomLegalOpponent transcripts ({took:.0f} s)"
        )
        _log(f"base model: {how}")
        return model.absolute(), how
    from arenagym.agents.models import resolve_model

    return resolve_model(name).absolute(), f"{name} as it is (no warm start)"


# ------------------------------------------------------------------------------ evaluation


class CachedEvaluator:
    """The driver's evaluation (:func:`~arenagym.trainers.dfc.evaluate_model`), one opponent at a
    time so that the win rate per opponent is kept, cached by model directory and seed (the base
    model is evaluated once per seed for both arms)."""

    def __init__(self, preset: Preset, opponents: Sequence[str], device: str, seed: int) -> None:
        self.preset = preset
        self.opponents = list(opponents)
        self.device = device
        self.seed = seed
        self.cache: dict[tuple[str, tuple[str, ...]], dict[str, Any]] = {}
        self.seconds = 0.0
        self.count = 0

    def __call__(self, name: str, model: Path, tasks: list[Any]) -> dict[str, dict[str, float]]:
        from arenagym.trainers.dfc import task_label

        key = (str(Path(model).resolve()), tuple(task_label(t) for t in tasks))
        if key not in self.cache:
            self.cache[key] = self._evaluate(name, Path(model), tasks)
        return self.cache[key]["scores"]

    def per_opponent(self, model: Path, tasks: list[Any]) -> dict[str, dict[str, float]]:
        """``{game label: {opponent: win rate}}`` of an evaluated model."""
        from arenagym.trainers.dfc import task_label

        key = (str(Path(model).resolve()), tuple(task_label(t) for t in tasks))
        return self.cache[key]["per_opponent"]

    def _evaluate(self, name: str, model: Path, tasks: list[Any]) -> dict[str, Any]:
        from arenagym.trainers.config import TaskConfig
        from arenagym.trainers.dfc import evaluate_model, task_label

        started = time.perf_counter()
        variants: list[TaskConfig] = []
        where: dict[str, tuple[str, str]] = {}
        for task in tasks:
            for opponent in self.opponents:
                spec, kwargs = OPPONENTS[opponent]
                variant = TaskConfig(
                    task.env_id,
                    {**task.kwargs, "opponent": spec, "opponent_kwargs": dict(kwargs)},
                )
                variants.append(variant)
                where[task_label(variant)] = (task_label(task), opponent)
        p = self.preset
        raw = evaluate_model(
            model,
            variants,
            episodes=p.eval_episodes,
            seed=10_000 + 1000 * self.seed,
            max_tokens=p.eval_max_tokens,
            temperature=p.eval_temperature,
            device=self.device,
            max_turns=p.eval_max_turns,
        )
        per_opponent: dict[str, dict[str, float]] = {}
        sums: dict[str, list[float]] = {}
        for label, score in raw.items():
            game, opponent = where[label]
            per_opponent.setdefault(game, {})[opponent] = score["win_rate"]
            entry = sums.setdefault(game, [0.0, 0.0, 0.0])
            entry[0] += score["win_rate"]
            entry[1] += score["reward"]
            entry[2] += 1
        scores = {g: {"win_rate": w / n, "reward": r / n} for g, (w, r, n) in sums.items()}
        took = time.perf_counter() - started
        self.seconds += took
        self.count += 1
        mean = sum(s["win_rate"] for s in scores.values()) / max(len(scores), 1)
        _log(f"seed {self.seed}: evaluated {name}: mean win rate {mean:.3f} ({took:.0f} s)")
        return {"scores": scores, "per_opponent": per_opponent}


# ------------------------------------------------------------------------------ the two arms


def train_overrides(preset: Preset, device: str, seed: int) -> list[str]:
    """The ``--set`` overrides of the ``grpo`` preset that both arms train with."""
    return [
        f"model.device={device}",
        f"rollout.prompts_per_step={preset.prompts_per_step}",
        f"rollout.group_size={preset.group_size}",
        f"rollout.max_tokens={preset.max_tokens}",
        f"rollout.max_turns={preset.max_turns}",
        f"optim.lr={preset.lr}",
        f"optim.micro_batch_size={preset.micro_batch_size}",
        f"run.seed={seed}",
        *preset.extra_overrides,
    ]


def arm_configs(preset: Preset, base: Path, out: Path, device: str, seed: int) -> tuple[Any, Any]:
    """The DFC driver configs of both arms: DFC over the groups, and the mixture (one group of
    every game, ``groups x S + (groups - 1) x C`` steps, no fusion)."""
    from arenagym.trainers.dfc import DFCConfig

    def task(game: str) -> dict[str, Any]:
        return {"env_id": f"TextArena/{game}-v0"}

    common = {
        "base_model": str(base),
        "train": "grpo",
        "overrides": train_overrides(preset, device, seed),
        "eval_episodes": preset.eval_episodes,
        "eval_max_tokens": preset.eval_max_tokens,
        "eval_temperature": preset.eval_temperature,
    }
    groups = [
        {"name": name, "tasks": [task(g) for g in games]} for name, games in preset.groups.items()
    ]
    dfc = DFCConfig.from_dict(
        {
            **common,
            "output_dir": str(out / "dfc"),
            "groups": groups,
            "specialist_steps": preset.specialist_steps,
            "conquer_steps": preset.conquer_steps,
            "eval_models": ["specialist", "fused", "conquer"],
        },
        "dfc_games (DFC arm)",
    )
    total = total_steps(preset)
    mixture = DFCConfig.from_dict(
        {
            **common,
            "output_dir": str(out / MIXTURE),
            "groups": [{"name": MIXTURE, "tasks": [t for g in groups for t in g["tasks"]]}],
            "specialist_steps": total,
            "conquer_steps": 0,
            "eval_models": ["specialist"],
        },
        "dfc_games (mixture arm)",
    )
    return dfc, mixture


def total_steps(preset: Preset) -> int:
    """Training steps of the DFC arm (and so of the mixture): ``K x S + (K - 1) x C``."""
    k = len(preset.groups)
    return k * preset.specialist_steps + (k - 1) * preset.conquer_steps


def _step_seconds(folder: Path) -> list[float]:
    seconds = []
    for metrics in sorted(folder.rglob("metrics.jsonl")):
        for line in metrics.read_text(encoding="utf-8").splitlines():
            if line.strip():
                seconds.append(float(json.loads(line).get("step_s", 0.0)))
    return seconds


def run_seed(
    preset: Preset, base: Path, out: Path, device: str, seed: int, overwrite: bool
) -> dict[str, Any]:
    """Both arms of one seed; every model's scores, per opponent too, and the seconds."""
    from arenagym.trainers.dfc import run_dfc

    dfc_config, mixture_config = arm_configs(preset, base, out, device, seed)
    evaluate = CachedEvaluator(preset, preset.opponents, device, seed)
    started = time.perf_counter()
    dfc_report = run_dfc(dfc_config, evaluate=evaluate, overwrite=overwrite)
    dfc_s = time.perf_counter() - started
    started = time.perf_counter()
    mixture_report = run_dfc(mixture_config, evaluate=evaluate, overwrite=overwrite)
    mixture_s = time.perf_counter() - started
    tasks = dfc_config.all_tasks
    scores: dict[str, dict[str, dict[str, float]]] = {}
    per_opponent: dict[str, dict[str, dict[str, float]]] = {}
    stages: list[str] = []
    for name, model in dfc_report["models"].items():
        shown = f"{name} ({DFC_FINAL})" if name == dfc_report["final"] else name
        stages.append(shown)
        scores[shown] = dfc_report["scores"][name]
        per_opponent[shown] = evaluate.per_opponent(Path(model), tasks)
    final = mixture_report["final"]
    scores[MIXTURE] = mixture_report["scores"][final]
    per_opponent[MIXTURE] = evaluate.per_opponent(Path(mixture_report["models"][final]), tasks)
    steps = _step_seconds(out / "dfc") + _step_seconds(out / MIXTURE)
    return {
        "seed": seed,
        "models": [*stages, MIXTURE],
        "dfc_final": f"{dfc_report['final']} ({DFC_FINAL})",
        "scores": scores,
        "per_opponent": per_opponent,
        "seconds": {
            "dfc_arm": dfc_s,
            "mixture_arm": mixture_s,
            "evaluations": evaluate.seconds,
            "evaluated_models": evaluate.count,
            "training_steps": len(steps),
            "per_training_step": sum(steps) / len(steps) if steps else None,
        },
    }


# ------------------------------------------------------------------------------ tables and plots


def game_labels(preset: Preset) -> dict[str, list[str]]:
    """``{group: [task label, ...]}`` (the labels of the driver's scores)."""
    return {name: [f"TextArena/{g}-v0" for g in games] for name, games in preset.groups.items()}


def _short(label: str) -> str:
    return label.removeprefix("TextArena/").removesuffix("-v0")


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else float("nan")


def summarize_runs(preset: Preset, runs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Per model: the per-seed win rates per game, per group and overall, and their Stats."""
    groups = game_labels(preset)
    games = [g for labels in groups.values() for g in labels]
    models = list(runs[0]["models"])
    values: dict[str, dict[str, list[float]]] = {}
    for model in models:
        rows: dict[str, list[float]] = {}
        for run in runs:
            rates = {g: run["scores"][model][g]["win_rate"] for g in games}
            for g in games:
                rows.setdefault(_short(g), []).append(rates[g])
            for name, labels in groups.items():
                rows.setdefault(f"group {name}", []).append(_mean([rates[g] for g in labels]))
            rows.setdefault("all", []).append(_mean(list(rates.values())))
        values[model] = rows
    final = runs[0]["dfc_final"]
    diff = {
        row: [a - b for a, b in zip(values[final][row], values[MIXTURE][row], strict=True)]
        for row in values[final]
    }
    return {"models": models, "final": final, "values": values, "dfc_minus_mixture": diff}


def write_outputs(
    out: Path,
    preset: Preset,
    runs: Sequence[dict[str, Any]],
    meta: Mapping[str, Any],
) -> list[Path]:
    """``results.*``, ``per_opponent.*``, the two plots and ``raw.json``; the written paths."""
    summary = summarize_runs(preset, runs)
    models: list[str] = summary["models"]
    values: dict[str, dict[str, list[float]]] = summary["values"]
    seeds = [run["seed"] for run in runs]
    row_names = list(values[models[0]])
    rows: list[dict[str, Any]] = []
    for row in row_names:
        cells: dict[str, Any] = {"game": row}
        for model in models:
            cells[model] = summarize(values[model][row])
        cells["DFC - mixture"] = summarize(summary["dfc_minus_mixture"][row])
        rows.append(cells)
    columns = ["game", *models, "DFC - mixture"]
    steps = total_steps(preset)
    decoding = (
        "greedy"
        if preset.eval_temperature == 0
        else f"sampled at temperature {preset.eval_temperature:g}, seeded"
    )
    notes = [
        f"Win rate (share of episodes won) against the built-in opponents "
        f"({', '.join(preset.opponents)}), {preset.eval_episodes} episode(s) per game and "
        f"opponent ({decoding}); mean ± std over seeds {seeds} (one value: one seed).",
        f"DFC: {preset.specialist_steps} steps per specialist, {preset.conquer_steps} conquer "
        f"steps; mixture: {steps} steps on every game; {preset.prompts_per_step} prompts x "
        f"{preset.group_size} rollouts per step, {preset.max_tokens} tokens a turn, at most "
        f"{preset.max_turns} turns while training.",
        f"Base model: {meta.get('base_model_how', '')}.",
    ]
    written = list(
        write_table(
            out,
            "results",
            columns,
            rows,
            title="DFC vs mixture: win rate per game",
            notes=notes,
            meta=meta,
        )
    )
    opp_rows: list[dict[str, Any]] = []
    final = summary["final"]
    shown = {"base": "base", final: DFC_FINAL, MIXTURE: MIXTURE}
    for label in [g for labels in game_labels(preset).values() for g in labels]:
        for opponent in preset.opponents:
            cells = {"game": _short(label), "opponent": opponent}
            for model, name in shown.items():
                cells[name] = summarize(
                    [run["per_opponent"][model][label][opponent] for run in runs]
                )
            opp_rows.append(cells)
    written += write_table(
        out,
        "per_opponent",
        ["game", "opponent", *shown.values()],
        opp_rows,
        title="Win rate per game and opponent",
        notes=notes[:1],
        meta=meta,
    )
    written.append(plot_by_game(out / "win_rate_by_game.png", summary, seeds))
    written.append(plot_by_stage(out / "win_rate_by_stage.png", summary, preset, seeds))
    written.append(write_json(out / "raw.json", {"meta": dict(meta), "runs": list(runs)}))
    return written


def plot_by_game(path: Path, summary: Mapping[str, Any], seeds: Sequence[int]) -> Path:
    """Grouped bars: base, DFC and mixture per game (and per group, all), ±1 std error bars."""
    plt = matplotlib_pyplot()
    values = summary["values"]
    final = summary["final"]
    shown = {"base": "base", final: "DFC (conquered)", MIXTURE: "mixture"}
    rows = list(values["base"])
    figure, axis = plt.subplots(figsize=(max(6.4, 0.9 * len(rows) + 2), 4.2))
    try:
        width = 0.8 / len(shown)
        for i, (model, label) in enumerate(shown.items()):
            stats = [summarize(values[model][row]) for row in rows]
            xs = [j + (i - (len(shown) - 1) / 2) * width for j in range(len(rows))]
            axis.bar(
                xs,
                [s.mean for s in stats],
                width,
                yerr=[s.std if s.n > 1 else 0.0 for s in stats],
                capsize=3,
                label=label,
            )
        axis.set_xticks(range(len(rows)))
        axis.set_xticklabels(rows, rotation=20, ha="right", fontsize=8)
        axis.set_ylabel("win rate")
        axis.set_ylim(0, 1)
        axis.set_title(f"DFC vs mixture (seeds {list(seeds)}, ±1 std)", fontsize=10)
        axis.grid(alpha=0.3, axis="y")
        axis.legend(fontsize=8)
        figure.tight_layout()
        figure.savefig(path, dpi=120)
    finally:
        plt.close(figure)
    return path


def plot_by_stage(
    path: Path, summary: Mapping[str, Any], preset: Preset, seeds: Sequence[int]
) -> Path:
    """Win rate per group and overall along base -> specialists -> fused -> conquered, with the
    mixture (same total steps) last; ±1 std error bars."""
    plt = matplotlib_pyplot()
    values = summary["values"]
    models: list[str] = summary["models"]
    series = [f"group {name}" for name in preset.groups] + ["all"]
    figure, axis = plt.subplots(figsize=(7.2, 4.2))
    try:
        xs = list(range(len(models)))
        for k, row in enumerate(series):
            stats = [summarize(values[m][row]) for m in models]
            offset = (k - (len(series) - 1) / 2) * 0.06
            axis.errorbar(
                [x + offset for x in xs[:-1]],
                [s.mean for s in stats[:-1]],
                yerr=[s.std if s.n > 1 else 0.0 for s in stats[:-1]],
                marker="o",
                capsize=3,
                label=row,
            )
            color = axis.get_lines()[-1].get_color()
            axis.errorbar(
                [xs[-1] + offset],
                [stats[-1].mean],
                yerr=[stats[-1].std if stats[-1].n > 1 else 0.0],
                marker="s",
                capsize=3,
                color=color,
                linestyle="none",
            )
        axis.axvline(len(models) - 1.5, color="grey", linestyle=":", linewidth=1)
        axis.set_xticks(xs)
        axis.set_xticklabels(models, rotation=20, ha="right", fontsize=8)
        axis.set_ylabel("win rate")
        axis.set_ylim(0, 1)
        axis.set_title(
            f"Along the DFC stages; mixture = {total_steps(preset)} steps on all games "
            f"(seeds {list(seeds)}, ±1 std)",
            fontsize=9,
        )
        axis.grid(alpha=0.3)
        axis.legend(fontsize=8)
        figure.tight_layout()
        figure.savefig(path, dpi=120)
    finally:
        plt.close(figure)
    return path


# ------------------------------------------------------------------------------ the command


def _games(text: str) -> tuple[str, ...]:
    from arenagym.envs.textarena.games import GAMES

    names = tuple(n.strip() for n in text.split(",") if n.strip())
    if not names:
        raise argparse.ArgumentTypeError("give at least one game, e.g. TicTacToe,Nim")
    for name in names:
        spec = GAMES.get(name)
        if spec is None:
            raise argparse.ArgumentTypeError(
                f"unknown game {name!r}; the TextArena games are: {', '.join(GAMES)}"
            )
        if spec.num_players != 2:
            two = [n for n, g in GAMES.items() if g.num_players == 2]
            raise argparse.ArgumentTypeError(
                f"{name} is a one-player game; the experiment plays against the built-in "
                f"opponents, so use two-player games: {', '.join(two)}"
            )
    if len(set(names)) != len(names):
        raise argparse.ArgumentTypeError(f"a game is listed twice in {text!r}")
    return names


def build_parser() -> argparse.ArgumentParser:
    """The command line (see the module docstring)."""
    parser = argparse.ArgumentParser(
        prog="python -m arenagym.benchmarks.experiments.dfc_games",
        description=(__doc__ or "").splitlines()[0],
        epilog="See the module docstring for what is measured and how long it takes.",
    )
    add_common_arguments(parser, "runs/dfc-games")
    parser.add_argument(
        "--group-a", type=_games, help="games of the first group (default: the preset's)"
    )
    parser.add_argument(
        "--group-b", type=_games, help="games of the second group (default: the preset's)"
    )
    parser.add_argument(
        "--specialist-steps", type=non_negative_int, help="GRPO steps per specialist"
    )
    parser.add_argument(
        "--conquer-steps", type=non_negative_int, help="GRPO steps per conquer stage"
    )
    parser.add_argument(
        "--eval-episodes", type=positive_int, help="evaluation episodes per game and opponent"
    )
    parser.add_argument(
        "--sft-steps", type=non_negative_int, help="warm-start SFT steps (built models)"
    )
    return parser


def resolve_preset(args: argparse.Namespace, parser: argparse.ArgumentParser) -> Preset:
    """The preset with the command line's overrides; ``parser.error`` on a bad combination."""
    preset = PRESETS[args.preset]
    changes: dict[str, Any] = {}
    if args.group_a or args.group_b:
        names = list(preset.groups)
        a = args.group_a or preset.groups[names[0]]
        b = args.group_b or preset.groups[names[1]]
        both = sorted(set(a) & set(b))
        if both:
            parser.error(f"--group-a and --group-b share {', '.join(both)}: a game is in one group")
        changes["groups"] = {"A": tuple(a), "B": tuple(b)}
    for name in ("specialist_steps", "conquer_steps", "eval_episodes", "sft_steps"):
        if getattr(args, name) is not None:
            changes[name] = getattr(args, name)
    if args.seeds is not None:
        changes["seeds"] = tuple(args.seeds)
    if args.model is not None:
        changes["model"] = args.model
    if args.device is not None:
        changes["device"] = args.device
    preset = dataclasses.replace(preset, **changes)
    if preset.specialist_steps + preset.conquer_steps == 0:
        parser.error("--specialist-steps and --conquer-steps are both 0: nothing would train")
    return preset


def _quiet_libraries() -> None:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    import transformers

    transformers.utils.logging.disable_progress_bar()
    transformers.utils.logging.set_verbosity_error()


def _device(name: str) -> str:
    if name != "auto":
        return name
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def _earlier_runs(out: Path, seeds: Sequence[int]) -> list[Path]:
    from arenagym.trainers.dfc import RUN_FILES

    found = []
    for seed in seeds:
        for arm in ("dfc", MIXTURE):
            folder = out / "runs" / f"seed-{seed}" / arm
            found += [folder / name for name in RUN_FILES if (folder / name).exists()]
    return found


def main(argv: Sequence[str] | None = None) -> int:
    """Run the experiment; the exit status (2: a usage error)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    preset = resolve_preset(args, parser)
    out = Path(args.out)
    earlier = _earlier_runs(out, preset.seeds)
    if earlier and not args.overwrite:
        parser.error(
            f"{earlier[0].parent} already holds a run of an earlier invocation; pass "
            "--overwrite to replace the runs of these seeds, or choose another --out"
        )
    device = _device(preset.device)
    if device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            parser.error("--device cuda (the gpu preset's) needs a GPU; use --device cpu")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    _quiet_libraries()
    started = time.perf_counter()
    games = [g for group in preset.groups.values() for g in group]
    out.mkdir(parents=True, exist_ok=True)
    base, how = prepare_model(preset.model, out / "models", preset, games, device)
    runs = []
    for seed in preset.seeds:
        _log(f"seed {seed}: DFC arm, then the mixture arm ({total_steps(preset)} steps each)")
        runs.append(
            run_seed(preset, base, out / "runs" / f"seed-{seed}", device, seed, args.overwrite)
        )
        seconds = runs[-1]["seconds"]
        per_step = seconds["per_training_step"]
        _log(
            f"seed {seed}: DFC arm {seconds['dfc_arm']:.0f} s, mixture arm "
            f"{seconds['mixture_arm']:.0f} s, {seconds['evaluated_models']} evaluations "
            f"{seconds['evaluations']:.0f} s, "
            + (f"{per_step:.2f} s per training step" if per_step else "no training step")
        )
    total = time.perf_counter() - started
    meta = {
        "preset": args.preset,
        "preset_values": dataclasses.asdict(preset),
        "base_model": str(base),
        "base_model_how": how,
        "device": device,
        "seeds": list(preset.seeds),
        "total_training_steps_per_arm": total_steps(preset),
        "seconds_total": total,
    }
    written = write_outputs(out, preset, runs, meta)
    print((out / "results.md").read_text(encoding="utf-8"), end="")
    _log(f"done in {total:.0f} s; wrote {', '.join(p.name for p in written)} to {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
