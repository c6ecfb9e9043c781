"""vLLM in-process backend: ``vllm.LLM`` + ``SamplingParams`` + ``LLM.chat`` (``vllm`` extra, GPU).

Written against vLLM's documented offline API of the V1 engine, **vLLM 0.10–0.11** (``vllm>=0.10``):

- ``LLM(model=path, **engine_kwargs)``; ``LLM.chat(messages=[conversation, ...],
  sampling_params=[one per row], use_tqdm=False, add_generation_prompt=True)`` renders each
  conversation with the model's chat template and decodes the batch with continuous batching.
- ``SamplingParams(n=1, temperature, top_p, top_k (-1 = off), max_tokens, stop, stop_token_ids,
  seed, logprobs=top_logprobs)``: ``logprobs=0`` returns the sampled token's log-probability only;
  ``RequestOutput.prompt_token_ids``, ``CompletionOutput.token_ids / text / logprobs /
  finish_reason``. vLLM's default ``logprobs_mode`` is ``"raw_logprobs"`` (log-softmax of the raw
  logits, before temperature / top-k / top-p) — the same definition as the transformers backend.
- Stop strings: vLLM cuts ``text`` before the stop string and keeps the ids up to the token that
  completed it — the same contract as :mod:`arenagym.agents.backends.hf`.

Weight updates (what an RL trainer needs to push new weights into the running engine): the engine is
created with ``worker_extension_cls=`` :class:`WeightSyncWorkerExtension` (vLLM's documented
mechanism for RLHF, ``examples/offline_inference/rlhf_utils.py``), and :meth:`VLLMBackend.update_weights`
calls ``LLM.collective_rpc("arenagym_load_weights", args=(named_tensors,))``, which runs
``self.model_runner.model.load_weights(weights=...)`` on every worker, then
``LLM.reset_prefix_cache()`` so no KV computed with old weights is reused. Tensors travel to the
worker processes by serialisation (CPU copies); for large models co-located on one GPU, set
``VLLM_ENABLE_V1_MULTIPROCESSING=0`` (tensors are then passed by reference) or use vLLM's
NCCL/IPC recipes. :meth:`VLLMBackend.sleep` / :meth:`VLLMBackend.wake_up` expose sleep mode
(``enable_sleep_mode=True``) to free GPU memory while the trainer runs.

vLLM needs a GPU and is not a dependency of arenagym's tests: it is imported only when a
:class:`VLLMBackend` is created, and its tests skip when it is absent.

Example (``# doctest: +SKIP``: needs vLLM and a GPU):
    >>> from arenagym.agents.backends import SamplingParams, VLLMBackend
    >>> backend = VLLMBackend("/tmp/tiny", gpu_memory_utilization=0.3)  # doctest: +SKIP
    >>> backend.generate([[{"role": "user", "content": "hi"}]], SamplingParams(max_tokens=4))  # doctest: +SKIP
    [Completion(...)]
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from arenagym.agents.backends.base import (
    Completion,
    ContextLengthError,
    Conversation,
    SamplingParams,
    chat_prompt_ids,
)

#: vLLM releases this module is written against (the V1 engine's offline ``LLM`` API).
TARGET_VLLM_VERSIONS = ">=0.10,<0.12"
WORKER_EXTENSION = "arenagym.agents.backends.vllm.WeightSyncWorkerExtension"


class WeightSyncWorkerExtension:
    """Mixed into every vLLM worker (``worker_extension_cls``); called via ``collective_rpc``.

    Runs inside the worker process, where ``self.model_runner.model`` is vLLM's model.
    """

    model_runner: Any

    def arenagym_load_weights(self, weights: list[tuple[str, Any]]) -> int:
        """Load named tensors (Hugging Face parameter names) into the worker's model."""
        self.model_runner.model.load_weights(weights=weights)
        return len(weights)


def _import_vllm() -> Any:
    try:
        import vllm
    except ImportError as error:
        raise ImportError(
            "VLLMBackend needs vLLM (pip install 'arenagym[vllm]') and a GPU; "
            "use TransformersBackend on CPU"
        ) from error
    return vllm


class VLLMBackend:
    """A :class:`~arenagym.agents.backends.base.GenerationBackend` on an in-process ``vllm.LLM``.

    Args:
        model_path: a model directory in Hugging Face format (or a hub id when online).
        **engine_kwargs: passed to ``vllm.LLM`` (``dtype``, ``gpu_memory_utilization``,
            ``max_model_len``, ``tensor_parallel_size``, ``enable_sleep_mode``, ``seed`` …).
            ``worker_extension_cls`` defaults to :class:`WeightSyncWorkerExtension`.
    """

    def __init__(self, model_path: str | Path, **engine_kwargs: Any) -> None:
        self._vllm = _import_vllm()
        engine_kwargs.setdefault("worker_extension_cls", WORKER_EXTENSION)
        self.llm = self._vllm.LLM(model=str(model_path), **engine_kwargs)
        self.tokenizer = self.llm.get_tokenizer()
        self.weights_version = 0

    @property
    def max_context(self) -> int:
        """The engine's ``max_model_len``."""
        return int(self.llm.llm_engine.model_config.max_model_len)

    def prompt_ids(self, conversation: Conversation) -> list[int]:
        """The token ids of ``conversation`` rendered with the chat template plus generation prompt."""
        return chat_prompt_ids(self.tokenizer, conversation)

    def count_tokens(self, conversation: Conversation) -> int:
        """The prompt length of ``conversation`` in tokens (chat template applied)."""
        return len(self.prompt_ids(conversation))

    def sampling_params(self, params: SamplingParams, seed: int | None) -> Any:
        """vLLM's ``SamplingParams`` for ours (``seed`` per row)."""
        return self._vllm.SamplingParams(
            n=1,
            temperature=params.temperature,
            top_p=params.top_p,
            top_k=params.top_k if params.top_k > 0 else -1,
            max_tokens=params.max_tokens,
            stop=list(params.stop) or None,
            stop_token_ids=list(params.stop_token_ids) or None,
            seed=seed,
            logprobs=params.top_logprobs if params.logprobs else None,
        )

    def generate(
        self, conversations: Sequence[Conversation], params: SamplingParams
    ) -> list[Completion]:
        """One completion per conversation, in order; row ``i`` is seeded with ``params.seed + i``."""
        seeds = [
            None if params.seed is None else params.seed + i for i in range(len(conversations))
        ]
        return self._chat(conversations, [dataclasses.replace(params, seed=s) for s in seeds])

    def generate_each(
        self, conversations: Sequence[Conversation], params: Sequence[SamplingParams]
    ) -> list[Completion]:
        """One :class:`SamplingParams` per row (each with its own seed), decoded as one batch."""
        if len(params) != len(conversations):
            raise ValueError(f"{len(conversations)} conversations but {len(params)} params")
        return self._chat(conversations, list(params))

    def _chat(
        self, conversations: Sequence[Conversation], params: list[SamplingParams]
    ) -> list[Completion]:
        if not conversations:
            return []
        for row, conversation in enumerate(conversations):
            length = self.count_tokens(conversation)
            if length >= self.max_context:
                raise ContextLengthError(length, self.max_context, row=row)
        outputs = self.llm.chat(
            messages=[list(c) for c in conversations],
            sampling_params=[self.sampling_params(p, p.seed) for p in params],
            use_tqdm=False,
            add_generation_prompt=True,
        )
        return [_completion(out, p) for out, p in zip(outputs, params, strict=True)]

    # -- weights -------------------------------------------------------------------------------

    def update_weights(self, weights: Mapping[str, Any] | Iterable[tuple[str, Any]]) -> None:
        """Push named tensors (Hugging Face names, e.g. a trainer's ``state_dict()``) into vLLM."""
        items = weights.items() if isinstance(weights, Mapping) else weights
        named = [(name, tensor.detach().to("cpu").contiguous()) for name, tensor in items]
        self.llm.collective_rpc("arenagym_load_weights", args=(named,))
        self.llm.reset_prefix_cache()
        self.weights_version += 1

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        """Same as :meth:`update_weights` (for symmetry with the transformers backend)."""
        self.update_weights(state_dict)

    def sleep(self, level: int = 1) -> None:
        """vLLM sleep mode: free GPU memory (level 1 keeps weights in CPU RAM, 2 drops them)."""
        self.llm.sleep(level=level)

    def wake_up(self, tags: list[str] | None = None) -> None:
        """Leave sleep mode (``tags=["weights"]`` first to update weights before the KV cache)."""
        self.llm.wake_up(tags=tags)


def _completion(output: Any, params: SamplingParams) -> Completion:
    choice = output.outputs[0]
    ids = [int(t) for t in choice.token_ids]
    logprobs: list[float] = []
    top: list[dict[int, float]] = []
    if params.logprobs and choice.logprobs:
        for token, entries in zip(ids, choice.logprobs, strict=False):
            logprobs.append(float(entries[token].logprob))
            if params.top_logprobs:
                ranked = sorted(
                    (e.rank, t, e.logprob) for t, e in entries.items() if e.rank is not None
                )
                top.append({t: float(lp) for _, t, lp in ranked[: params.top_logprobs]})
    return Completion(
        text=choice.text,
        prompt_token_ids=[int(t) for t in output.prompt_token_ids or []],
        completion_token_ids=ids,
        logprobs=logprobs,
        finish_reason="length" if choice.finish_reason == "length" else "stop",
        top_logprobs=top,
    )
