"""Rollout speed against its peers: the engine on each backend vs the raw library call, one run.

What: the same Math-v0 episodes (``--episodes``, difficulty 1, seeds 0..N-1) on the same real
model (SmolLM2-135M-Instruct by default), greedy, ``--max-tokens`` completion tokens at most,
generated four ways in one process, interleaved over ``--repeats`` timed rounds after a warm-up:

(a) ``engine/hf``: the :class:`~arenagym.agents.rollout.RolloutEngine` playing the episodes on
    :class:`~arenagym.agents.backends.hf.TransformersBackend` — env creation, reset, the chat
    agent, the batching queue, generation with log-probabilities, the env step (math-verify
    scoring) and closing, all timed;
(b) ``raw generate``: the first-turn conversations (system prompt + observation, built exactly as
    the engine's chat agent builds them) rendered with the same chat template, tokenised with left
    padding and decoded by plain ``model.generate`` — the same model object and dtype, greedy, the
    same ``max_new_tokens`` and EOS ids — then ``batch_decode``;
(c) ``engine/vllm``: the engine on :class:`~arenagym.agents.backends.vllm.VLLMBackend`;
(d) ``raw LLM.chat``: ``vllm.LLM.chat`` on the same conversations, on the very ``LLM`` the
    backend of (c) wraps (so the same engine settings), greedy, the same ``max_tokens``.

Why: the engine exists to batch generation across episodes; it earns its place only if it costs
next to nothing on top of the library it drives. The goals are (a) >= 0.95 x (b) and
(c) >= 0.95 x (d) in completion tokens per second.

It prints the machine, tokens/s of each path (best round, median, every round), the ratios
(a)/(b) and (c)/(d) — best-of (the goal's figure) and the median of per-round ratios, which holds
up better on a shared machine — how much of each engine run was spent outside the backend's
``generate`` (envs, queue, agent, threads), and checks the tokens. Every path must see the same
prompt token ids. On CPU (float32) (a) and (b) must produce exactly the same greedy completion
ids, and so must (c) and (d), in every round: a mismatch fails the run. On CUDA the kernels are
not batch-invariant (cuBLAS chooses them by batch shape, the transformers backend drops finished
rows, vLLM's prefix cache shortens the later prefills), so a near-tie may part two greedy
continuations in bfloat16: there mismatches are reported (first divergent position per episode)
unless ``--strict``. HF vs vLLM use different kernels, so their agreement is always reported, not
asserted.

(b) and (d) are called from a fresh worker thread, as the engine's :class:`BatchingQueue
<arenagym.agents.batching.BatchingQueue>` calls its backend from a generation thread of its own:
on a shared two-core machine, whether torch's two OpenMP threads were driven from the main thread
or from another thread changed their speed by up to several times, one way or the other
depending on the load, so all paths run alike (``--raw-in-main-thread`` calls (b) and (d) from
the main thread instead).

vLLM is optional (``--skip-vllm``, or simply not installed: then only (a) and (b) run). Its ``LLM``
starts an engine process, so it is created only when this file runs as a script (``main()``
is called under ``if __name__ == "__main__"``).

Run (CPU: float32 for both libraries, so that their tokens can be compared)::

    python -m arenagym.benchmarks.perf.rollout
    python -m arenagym.benchmarks.perf.rollout --episodes 16 --max-tokens 64 --repeats 5
    python -m arenagym.benchmarks.perf.rollout --device cuda --episodes 256 --max-tokens 256

``--device cuda`` runs both libraries on the GPU in bfloat16 by default (``--dtype`` overrides;
``--gpu-memory-utilization`` sizes vLLM's KV cache). On CPU, vLLM's KV cache is
``VLLM_CPU_KVCACHE_SPACE`` GiB (1 unless set) and its worker binds its own OpenMP threads;
``--threads`` sets torch's threads in this process (the transformers paths).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

#: The env, its arguments and how many turns: the same first-turn conversations for every path.
ENV_ID = "Math-v0"
ENV_KWARGS = {"difficulty": 1}


@dataclass
class Run:
    """One timed pass of one path: completion ids per episode and how long it took."""

    prompt_ids: list[list[int]]
    completion_ids: list[list[int]]
    seconds: float
    batch_sizes: list[int] = field(default_factory=list)
    #: Seconds spent inside the backend's ``generate``/``generate_each`` (engine runs only).
    generating: float = 0.0

    @property
    def tokens(self) -> int:
        return sum(len(ids) for ids in self.completion_ids)


# --------------------------------------------------------------------------- the episodes


def first_turn_conversations(episodes: int) -> list[list[dict[str, str]]]:
    """Each episode's first request, built as the engine's chat agent builds it: the env
    family's prompt template (:func:`~arenagym.agents.chat.template_for_env`) applied to the
    reset info's system prompt and the first observation."""
    import gymnasium as gym

    import arenagym.envs  # noqa: F401  (registers the ids)
    from arenagym.agents.chat import template_for_env

    template = template_for_env(ENV_ID)
    conversations = []
    for seed in range(episodes):
        env = gym.make(ENV_ID, **ENV_KWARGS)
        try:
            observation, info = env.reset(seed=seed)
        finally:
            env.close()
        system_prompt = str(info.get("system_prompt", ""))
        messages = template.start(system_prompt)
        messages.append(template.user_message(observation, first=True, system_prompt=system_prompt))
        conversations.append(messages)
    return conversations


# --------------------------------------------------------------------------- the four paths


class TimedBackend:
    """Forwards everything to ``backend`` and adds up the seconds spent in its generate calls,
    so that the engine's own share of a run (envs, queue, chat agent, threads) can be told apart
    from generation."""

    def __init__(self, backend: Any) -> None:
        self.backend = backend
        self.seconds = 0.0
        if callable(getattr(backend, "generate_each", None)):
            self.generate_each = self._timed(backend.generate_each)

    def _timed(self, function: Callable[..., Any]) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                self.seconds += time.perf_counter() - started

        return call

    def generate(self, *args: Any, **kwargs: Any) -> Any:
        return self._timed(self.backend.generate)(*args, **kwargs)

    def count_tokens(self, conversation: Any) -> int:
        return self.backend.count_tokens(conversation)

    @property
    def max_context(self) -> int:
        return self.backend.max_context


def engine_run(backend: Any, episodes: int, max_tokens: int) -> tuple[Run, list[Any]]:
    """(a)/(c): the rollout engine plays the episodes (one turn each) on ``backend``."""
    from arenagym.agents.backends.interface import SamplingParams
    from arenagym.agents.rollout import EpisodeSpec, RolloutConfig, RolloutEngine

    specs = [EpisodeSpec(ENV_ID, ENV_KWARGS, seed=seed) for seed in range(episodes)]
    config = RolloutConfig(
        SamplingParams(max_tokens=max_tokens, temperature=0.0),
        max_turns=1,
        max_batch_size=episodes,
    )
    timed = TimedBackend(backend)
    engine = RolloutEngine(timed, config)  # type: ignore[arg-type]
    started = time.perf_counter()
    trajectories = engine.run(specs)
    seconds = time.perf_counter() - started
    failed = [t for t in trajectories if not t.steps]
    if failed:
        raise RuntimeError(
            f"{len(failed)} episodes ended without a turn, e.g. {failed[0].stop_reason}: "
            f"{failed[0].error or failed[0].info.get('stop_message')}"
        )
    run = Run(
        [list(t.steps[0].prompt_token_ids) for t in trajectories],
        [list(t.steps[0].completion_token_ids) for t in trajectories],
        seconds,
        list(engine.batch_sizes),
        timed.seconds,
    )
    return run, trajectories


def raw_generate_run(
    model: Any,
    tokenizer: Any,
    conversations: Sequence[Sequence[dict[str, str]]],
    max_tokens: int,
    eos_ids: Sequence[int],
    pad_id: int,
) -> Run:
    """(b): chat template, left-padded batch, ``model.generate`` (greedy), ``batch_decode``."""
    import torch
    from transformers import GenerationConfig

    config = GenerationConfig(
        max_new_tokens=max_tokens,
        do_sample=False,
        eos_token_id=list(eos_ids),
        pad_token_id=pad_id,
    )
    started = time.perf_counter()
    texts = [
        tokenizer.apply_chat_template(list(c), tokenize=False, add_generation_prompt=True)
        for c in conversations
    ]
    batch = tokenizer(
        texts, add_special_tokens=False, padding=True, padding_side="left", return_tensors="pt"
    ).to(model.device)
    with torch.inference_mode():
        output = model.generate(**batch, generation_config=config)
    width = batch["input_ids"].shape[1]
    completions = []
    for row in output[:, width:].tolist():
        end = next((i + 1 for i, token in enumerate(row) if token in eos_ids), len(row))
        completions.append(row[:end])
    tokenizer.batch_decode(completions, skip_special_tokens=True)
    seconds = time.perf_counter() - started
    prompts = [
        ids[-int(n) :]
        for ids, n in zip(
            batch["input_ids"].tolist(), batch["attention_mask"].sum(-1).tolist(), strict=True
        )
    ]
    return Run(prompts, completions, seconds, [len(conversations)])


def raw_chat_run(
    vllm: Any, llm: Any, conversations: Sequence[Sequence[dict[str, str]]], max_tokens: int
) -> Run:
    """(d): ``LLM.chat`` on the conversations, greedy, one ``SamplingParams`` for the batch."""
    params = vllm.SamplingParams(temperature=0.0, max_tokens=max_tokens)
    started = time.perf_counter()
    outputs = llm.chat([list(c) for c in conversations], params, use_tqdm=False)
    seconds = time.perf_counter() - started
    return Run(
        [list(o.prompt_token_ids) for o in outputs],
        [list(o.outputs[0].token_ids) for o in outputs],
        seconds,
        [len(conversations)],
    )


# --------------------------------------------------------------------------- reporting


def first_divergence(a: Sequence[int], b: Sequence[int]) -> int | None:
    """The first position where ``a`` and ``b`` differ (a length difference counts); ``None``
    when they are equal.

    >>> first_divergence([1, 2, 3], [1, 2, 3]), first_divergence([1, 2, 3], [1, 5, 3])
    (None, 1)
    >>> first_divergence([1, 2], [1, 2, 3])
    2
    """
    for index, (x, y) in enumerate(zip(a, b, strict=False)):
        if x != y:
            return index
    return None if len(a) == len(b) else min(len(a), len(b))


def check_same(name: str, first: Run, second: Run, strict: bool = True) -> str:
    """Check that two paths generated exactly the same ids for every episode: raise when
    ``strict``, else return the disagreement as text (empty when they agree)."""
    for index, (x, y) in enumerate(zip(first.completion_ids, second.completion_ids, strict=True)):
        where = first_divergence(x, y)
        if where is not None:
            message = (
                f"{name}: episode {index} differs at completion token {where}: "
                f"{x[where : where + 5]} vs {y[where : where + 5]}"
            )
            if strict:
                raise AssertionError(message)
            return f"{name}: {agreement(first, second)}"
    return ""


def agreement(first: Run, second: Run) -> str:
    """How many episodes agree token for token, and where the others diverge first."""
    positions = [
        first_divergence(x, y)
        for x, y in zip(first.completion_ids, second.completion_ids, strict=True)
    ]
    same = sum(p is None for p in positions)
    text = f"{same}/{len(positions)} episodes identical"
    if same < len(positions):
        text += "; first divergence at token " + ", ".join(
            f"{p}" if p is not None else "-" for p in positions
        )
    return text


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine(device: str, vllm: Any) -> str:
    import torch
    import transformers

    parts = [
        f"{cpu_model()}, {os.cpu_count()} cores, torch threads {torch.get_num_threads()}",
        f"load average {os.getloadavg()[0]:.1f}",
    ]
    if device.startswith("cuda"):
        parts.insert(0, torch.cuda.get_device_name(torch.device(device)))
    versions = f"Python {platform.python_version()}, torch {torch.__version__}, "
    versions += f"transformers {transformers.__version__}"
    versions += f", vllm {vllm.__version__}" if vllm is not None else ", vllm -"
    return "; ".join(parts) + "\n" + versions


def in_fresh_thread(function: Callable[[], Run]) -> Run:
    """Run ``function`` in a new thread, as the engine runs each run's generation (its
    :class:`~arenagym.agents.batching.BatchingQueue` makes one generation thread per run)."""
    with ThreadPoolExecutor(1, thread_name_prefix="rollout-bench-raw") as executor:
        return executor.submit(function).result()


def timed_rounds(paths: dict[str, Callable[[], Run]], repeats: int) -> dict[str, list[Run]]:
    """Run every path ``repeats`` times, interleaved, rotating the order each round (so that
    no path always runs right after another one's threads stop spinning)."""
    runs: dict[str, list[Run]] = {name: [] for name in paths}
    names = list(paths)
    for round_ in range(repeats):
        shift = round_ % len(names)
        for name in names[shift:] + names[:shift]:
            runs[name].append(paths[name]())
    return runs


def rate(run: Run) -> float:
    return run.tokens / run.seconds


# --------------------------------------------------------------------------- main


def report(
    args: argparse.Namespace, model: Any, paths: dict[str, Callable[[], Run]], vllm: Any
) -> None:
    """Warm up, time the paths in interleaved rounds, check their tokens, print the figures."""
    dtype = args.dtype or ("bfloat16" if args.device.startswith("cuda") else "float32")
    parameters = sum(p.numel() for p in model.parameters())
    print(machine(args.device, vllm))
    print(
        f"model: {args.model} ({parameters / 1e6:.1f}M parameters, {dtype}) on {args.device}; "
        f"{args.episodes} {ENV_ID} episodes (difficulty {ENV_KWARGS['difficulty']}), greedy, "
        f"max_tokens={args.max_tokens}; {args.repeats} timed rounds after a warm-up"
    )

    # Warm-up: every path once (math-verify's worker processes, vLLM's first steps, allocator).
    warm = {name: run() for name, run in paths.items()}
    runs = timed_rounds(paths, args.repeats)

    # The same tokens: prompts everywhere, completions within each library.
    reference = warm["(a) engine/hf"]
    for name, run in warm.items():
        assert run.prompt_ids == reference.prompt_ids, f"{name} saw other prompt ids than (a)"
    # Exact: on CPU in float32 both libraries are batch-invariant here (measured). On CUDA the
    # kernels are not (cuBLAS picks them by batch shape, the transformers backend drops finished
    # rows, vLLM's prefix cache shortens prefills), so a near-tie may part greedy continuations:
    # there the differences are reported unless --strict.
    strict = args.strict or not args.device.startswith("cuda")
    notes = [
        check_same(f"{n} (timed) vs its warm-up", warm[n], r, strict) for n in runs for r in runs[n]
    ]
    notes.append(
        check_same(
            "(a) engine/hf vs (b) raw generate",
            warm["(a) engine/hf"],
            warm["(b) raw generate"],
            strict,
        )
    )
    if vllm is not None:
        notes.append(
            check_same(
                "(c) engine/vllm vs (d) raw LLM.chat",
                warm["(c) engine/vllm"],
                warm["(d) raw LLM.chat"],
                strict,
            )
        )
    notes = [note for note in notes if note]

    print(
        f"\n{'path':<18} {'tokens':>7} {'best s':>8} {'best tok/s':>11} {'median tok/s':>13}  rounds"
    )
    for name, timed in runs.items():
        best = min(timed, key=lambda r: r.seconds)
        median = statistics.median(rate(r) for r in timed)
        every = " ".join(f"{rate(r):,.0f}" for r in timed)
        print(
            f"{name:<18} {best.tokens:>7} {best.seconds:>8.2f} {rate(best):>11,.0f} {median:>13,.0f}"
            f"  {every}"
        )
    for name in [n for n in runs if "engine" in n]:
        best = min(runs[name], key=lambda r: r.seconds)
        calls = " or ".join(
            str(list(b)) for b in sorted({tuple(r.batch_sizes) for r in runs[name]})
        )
        print(
            f"{name}: backend calls of {calls} conversations; of its best "
            f"{best.seconds:.2f} s, {best.generating:.2f} s in the backend's generate, "
            f"{best.seconds - best.generating:.2f} s in the engine (envs, queue, agent, threads)"
        )

    print()
    pairs = [("(a) engine/hf", "(b) raw generate")]
    if vllm is not None:
        pairs.append(("(c) engine/vllm", "(d) raw LLM.chat"))
    for engine_name, raw_name in pairs:
        best = max(map(rate, runs[engine_name])) / max(map(rate, runs[raw_name]))
        paired = statistics.median(
            rate(x) / rate(y) for x, y in zip(runs[engine_name], runs[raw_name], strict=True)
        )
        verdict = "met" if best >= 0.95 else "NOT met"
        print(
            f"{engine_name[:3]}/{raw_name[:3]}: {best:.3f} best-of, {paired:.3f} median of rounds "
            f"(goal >= 0.95: {verdict})"
        )
    if notes:
        print("greedy tokens (not batch-invariant on this device, see above):")
        for note in notes:
            print(f"  {note}")
    else:
        same = "(a) == (b)" + (", (c) == (d)" if vllm is not None else "")
        print(f"greedy tokens: {same} exactly, in every round")
    if vllm is not None:
        print(f"HF vs vLLM: {agreement(warm['(a) engine/hf'], warm['(c) engine/vllm'])}")
    print(f"load average after: {os.getloadavg()[0]:.1f}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cpu", help="cpu or cuda (cuda:1 ...)")
    parser.add_argument(
        "--model",
        default="smollm2-135m-instruct",
        help="a registry name (arenagym models list) or a Hugging Face model directory",
    )
    parser.add_argument("--dtype", default=None, help="default: float32 on CPU, bfloat16 on CUDA")
    parser.add_argument("--episodes", type=int, default=16)
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3, help="timed rounds (interleaved)")
    parser.add_argument("--skip-vllm", action="store_true", help="only (a) and (b)")
    parser.add_argument(
        "--gpu-memory-utilization", type=float, default=0.5, help="vLLM on CUDA (default 0.5)"
    )
    parser.add_argument(
        "--threads", type=int, default=None, help="torch threads here (default: torch's)"
    )
    parser.add_argument(
        "--strict",
        action="store_true",
        help="fail on any token difference within a library also on CUDA (always on CPU)",
    )
    parser.add_argument(
        "--raw-in-main-thread",
        action="store_true",
        help="call (b) and (d) from the main thread instead of a fresh worker thread",
    )
    args = parser.parse_args(argv)
    cuda = args.device.startswith("cuda")
    dtype = args.dtype or ("bfloat16" if cuda else "float32")

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)

    from arenagym.agents.backends.hf import TransformersBackend
    from arenagym.agents.models import resolve_model

    vllm: Any = None
    if not args.skip_vllm:
        try:
            import vllm
        except ImportError as error:
            print(f"vLLM is not installed ({error}): only (a) and (b) run")

    path = resolve_model(args.model)
    conversations = first_turn_conversations(args.episodes)
    hf = TransformersBackend(path, device=args.device, dtype=dtype)
    model, tokenizer = hf.model, hf.tokenizer
    eos_ids = sorted(hf._eos_ids)  # the backend's stop ids: the model's and the tokenizer's EOS
    pad_id = hf._pad_id

    def raw(function: Callable[[], Run]) -> Callable[[], Run]:
        return function if args.raw_in_main_thread else lambda: in_fresh_thread(function)

    paths: dict[str, Callable[[], Run]] = {
        "(a) engine/hf": lambda: engine_run(hf, args.episodes, args.max_tokens)[0],
        "(b) raw generate": raw(
            lambda: raw_generate_run(
                model, tokenizer, conversations, args.max_tokens, eos_ids, pad_id
            )
        ),
    }
    backend: Any = None
    if vllm is not None:
        from arenagym.agents.backends.vllm import VLLMBackend

        engine_kwargs: dict[str, Any] = {"dtype": dtype, "seed": 0, "max_model_len": 2048}
        if cuda:
            engine_kwargs["gpu_memory_utilization"] = args.gpu_memory_utilization
        else:
            os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")  # GiB: plenty for 16 x 2k
        backend = VLLMBackend(str(path), **engine_kwargs)
        paths["(c) engine/vllm"] = lambda: engine_run(backend, args.episodes, args.max_tokens)[0]
        paths["(d) raw LLM.chat"] = raw(
            lambda: raw_chat_run(vllm, backend.llm, conversations, args.max_tokens)
        )

    try:
        report(args, model, paths, vllm)
    finally:
        if backend is not None:
            backend.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
