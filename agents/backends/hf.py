"""Hugging Face transformers backend: real batched generation in-process, on CPU or GPU.

:class:`TransformersBackend` renders each conversation with the tokenizer's chat template
(``add_generation_prompt=True``), left-pads the batch, and decodes with its own loop over the model's
KV cache — one forward pass per generated token for the whole batch. Why its own loop rather than
``model.generate``: the log-probability of every sampled token is taken from the very logits that the
token was sampled from (``log_softmax`` of the raw logits, in float32, before temperature / top-p /
top-k — vLLM's ``raw_logprobs``), each row can have its own sampling parameters, stop strings and
token budget, finished rows leave the batch (their KV cache rows are dropped), and it does not
depend on ``generate``'s changing keyword arguments across transformers releases.

What a row returns (:class:`~arenagym.agents.backends.interface.Completion`):

- ``prompt_token_ids``: the rendered chat template, tokenised without extra special tokens;
- ``completion_token_ids``: every sampled token, including the final stop token (EOS,
  ``params.stop_token_ids``) or the token that completed a stop string — exactly what was sampled,
  so a trainer can score it;
- ``text``: the completion decoded with special tokens skipped, without the stop token, cut right
  before the first stop string (``decode(completion_token_ids)`` starts with ``text + stop``);
- ``logprobs[i]``: log-probability of ``completion_token_ids[i]``;
- ``finish_reason``: ``"stop"`` (EOS / stop token / stop string) or ``"length"`` (``max_tokens``
  reached, or the model's context is full).

Sampling: temperature 0 is greedy (argmax). Otherwise logits / temperature, then top-k, then top-p
(nucleus, always keeping the most likely token), then one draw. :meth:`TransformersBackend.generate`
draws the whole batch from one ``torch.Generator`` seeded with ``params.seed`` (reproducible for the
same batch), or from torch's global RNG when the seed is ``None``.
:meth:`TransformersBackend.generate_each` takes one :class:`SamplingParams` per row and gives every
seeded row its own generator, so a seeded row samples the same whatever else is in the batch (up to
floating-point differences from padding) — what ``arenagym serve`` uses to batch independent requests.

Example (``# doctest: +SKIP``: needs the ``hf`` extra and builds a model):
    >>> from arenagym.agents.tiny_model import build_tiny_model
    >>> from arenagym.agents.backends import SamplingParams, TransformersBackend
    >>> backend = TransformersBackend(build_tiny_model("/tmp/tiny"))  # doctest: +SKIP
    >>> [c] = backend.generate([[{"role": "user", "content": "2+2?"}]],
    ...                        SamplingParams(max_tokens=8, temperature=0))  # doctest: +SKIP
    >>> len(c.completion_token_ids) == len(c.logprobs) <= 8  # doctest: +SKIP
    True
"""

from __future__ import annotations

import inspect
import threading
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from arenagym.agents.backends.interface import (
    Completion,
    ContextLengthError,
    Conversation,
    FinishReason,
    SamplingParams,
    chat_prompt_ids,
)
from arenagym.agents.backends.transformers_compat import dtype_kwarg

if TYPE_CHECKING:
    import torch


class TransformersBackend:
    """A :class:`~arenagym.agents.backends.interface.GenerationBackend` over a transformers causal LM.

    Args:
        model_path_or_model: a directory (or hub id, when online) in Hugging Face format, or an
            already loaded ``PreTrainedModel`` (then ``tokenizer`` is required) — e.g. the policy a
            trainer is updating, so that generation always uses the current weights.
        tokenizer: a tokenizer or a path to one; defaults to ``model_path_or_model``. Must have a
            chat template.
        device: ``"cpu"``, ``"cuda"``, ``"cuda:1"``…; default CUDA when available, else CPU. Ignored
            for a model object (it stays where it is).
        dtype: a ``torch.dtype`` or its name (``"bfloat16"``); default bfloat16 on CUDA, float32 on
            CPU. Ignored for a model object.
        max_context: the context length; default the model config's ``max_position_embeddings``.
        max_batch_size: the most rows decoded together; larger batches run in chunks.

    Attributes ``model`` and ``tokenizer`` are the underlying objects; ``weights_version`` counts
    weight updates made through :meth:`load_state_dict` / :meth:`update_weights`.
    """

    def __init__(
        self,
        model_path_or_model: str | Path | Any,
        tokenizer: str | Path | Any | None = None,
        device: str | None = None,
        dtype: str | Any | None = None,
        *,
        max_context: int | None = None,
        max_batch_size: int | None = None,
    ) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        if isinstance(model_path_or_model, str | Path):
            device = device or ("cuda" if torch.cuda.is_available() else "cpu")
            if dtype is None:
                dtype = torch.bfloat16 if str(device).startswith("cuda") else torch.float32
            elif isinstance(dtype, str):
                dtype = getattr(torch, dtype)
            model = AutoModelForCausalLM.from_pretrained(
                str(model_path_or_model), **dtype_kwarg(dtype)
            )
            model.to(device)
            tokenizer = tokenizer if tokenizer is not None else model_path_or_model
        else:
            model = model_path_or_model
            if tokenizer is None:
                raise ValueError("pass tokenizer= when giving a model object")
        if isinstance(tokenizer, str | Path):
            tokenizer = AutoTokenizer.from_pretrained(str(tokenizer))
        if not getattr(tokenizer, "chat_template", None):
            raise ValueError("the tokenizer has no chat template")
        model.eval()
        self.model = model
        self.tokenizer = tokenizer
        self.weights_version = 0
        self.max_batch_size = max_batch_size
        self._max_context = int(
            max_context or getattr(model.config, "max_position_embeddings", None) or 2048
        )
        self._lock = threading.Lock()
        self._pad_id = _pad_token_id(model, tokenizer)
        self._eos_ids = _eos_token_ids(model, tokenizer)
        forward_params = inspect.signature(model.forward).parameters
        # transformers 5 renamed ``past_key_values`` to ``cache`` (argument and output field).
        self._cache_kwarg = "cache" if "cache" in forward_params else "past_key_values"
        self._keep_kwarg = next(
            (k for k in ("logits_to_keep", "num_logits_to_keep") if k in forward_params), None
        )

    # -- the GenerationBackend interface -------------------------------------------------------

    @property
    def max_context(self) -> int:
        """The model's context length in tokens (prompt + completion)."""
        return self._max_context

    @property
    def device(self) -> torch.device:
        """Where the model's parameters live."""
        return next(self.model.parameters()).device

    def prompt_ids(self, conversation: Conversation) -> list[int]:
        """The token ids of ``conversation`` rendered with the chat template plus generation prompt."""
        return chat_prompt_ids(self.tokenizer, conversation)

    def count_tokens(self, conversation: Conversation) -> int:
        """The prompt length of ``conversation`` in tokens (chat template applied)."""
        return len(self.prompt_ids(conversation))

    def generate(
        self, conversations: Sequence[Conversation], params: SamplingParams
    ) -> list[Completion]:
        """One completion per conversation, in order, decoded as one batch.

        Seeded sampling draws the batch from one generator seeded with ``params.seed``.
        Raises :class:`ContextLengthError` when a prompt does not fit the context.
        """
        prompts = [self.prompt_ids(c) for c in conversations]
        shared = _make_generator(params.seed, self.device)
        return self._generate_chunks(prompts, [params] * len(prompts), [shared] * len(prompts))

    def generate_each(
        self, conversations: Sequence[Conversation], params: Sequence[SamplingParams]
    ) -> list[Completion]:
        """Like :meth:`generate` with one :class:`SamplingParams` per row, decoded as one batch.

        Every row with a seed gets its own generator, so its sample does not depend on the other rows.
        """
        if len(params) != len(conversations):
            raise ValueError(f"{len(conversations)} conversations but {len(params)} params")
        prompts = [self.prompt_ids(c) for c in conversations]
        generators = [_make_generator(p.seed, self.device) for p in params]
        return self._generate_chunks(prompts, list(params), generators)

    def generate_from_ids(
        self, prompts: Sequence[Sequence[int]], params: SamplingParams
    ) -> list[Completion]:
        """Decode from already tokenised prompts (no chat template applied)."""
        shared = _make_generator(params.seed, self.device)
        rows = [list(p) for p in prompts]
        return self._generate_chunks(rows, [params] * len(rows), [shared] * len(rows))

    # -- weights -------------------------------------------------------------------------------

    def load_state_dict(self, state_dict: Mapping[str, Any], strict: bool = True) -> Any:
        """Load new weights into the model (``nn.Module.load_state_dict``); bumps ``weights_version``.

        Not needed when a trainer updates ``backend.model`` in place — the backend always generates
        with the model's current parameters.
        """
        with self._lock:
            result = self.model.load_state_dict(dict(state_dict), strict=strict)
            self.weights_version += 1
        return result

    def update_weights(self, weights: Mapping[str, Any] | Iterable[tuple[str, Any]]) -> None:
        """Copy the given named tensors (all or some parameters/buffers) into the model in place.

        The same call exists on the vLLM backend, so a trainer can push weights either way.
        """
        import torch

        items = weights.items() if isinstance(weights, Mapping) else weights
        state = self.model.state_dict(keep_vars=True)
        with self._lock, torch.no_grad():
            for name, tensor in items:
                if name not in state:
                    raise KeyError(f"the model has no parameter or buffer named {name!r}")
                state[name].copy_(tensor)
            self.weights_version += 1

    # -- decoding ------------------------------------------------------------------------------

    def generate_ids(
        self, prompts: Sequence[Sequence[int]], params: Sequence[SamplingParams]
    ) -> list[Completion]:
        """Like :meth:`generate_each` for prompts already rendered to token ids (e.g. a chat
        template rendered with ``tools=`` by ``arenagym serve``)."""
        if len(params) != len(prompts):
            raise ValueError(f"{len(prompts)} prompts but {len(params)} params")
        generators = [_make_generator(p.seed, self.device) for p in params]
        return self._generate_chunks([list(p) for p in prompts], list(params), generators)

    def _generate_chunks(
        self,
        prompts: list[list[int]],
        params: list[SamplingParams],
        generators: list[torch.Generator | None],
    ) -> list[Completion]:
        for row, ids in enumerate(prompts):
            if len(ids) >= self._max_context:
                raise ContextLengthError(len(ids), self._max_context, row=row)
        if not prompts:
            return []
        size = self.max_batch_size or len(prompts)
        results: list[Completion] = []
        with self._lock:
            for start in range(0, len(prompts), size):
                stop = start + size
                results += self._decode(
                    prompts[start:stop], params[start:stop], generators[start:stop]
                )
        return results

    def _forward(self, **kwargs: Any) -> tuple[torch.Tensor, Any]:
        cache = kwargs.pop("cache", None)
        if cache is not None:
            kwargs[self._cache_kwarg] = cache
        if self._keep_kwarg is not None:
            kwargs[self._keep_kwarg] = 1
        out = self.model(use_cache=True, **kwargs)
        new_cache = getattr(out, "cache", None)
        if new_cache is None:
            new_cache = out.past_key_values
        return out.logits[:, -1, :], new_cache

    def _decode(
        self,
        prompts: list[list[int]],
        params: list[SamplingParams],
        generators: list[torch.Generator | None],
    ) -> list[Completion]:
        import torch
        from transformers import DynamicCache

        device = self.device
        batch = len(prompts)
        width = max(len(p) for p in prompts)
        input_ids = torch.full((batch, width), self._pad_id, dtype=torch.long)
        attention_mask = torch.zeros((batch, width), dtype=torch.long)
        for row, ids in enumerate(prompts):
            input_ids[row, width - len(ids) :] = torch.tensor(ids, dtype=torch.long)
            attention_mask[row, width - len(ids) :] = 1
        input_ids, attention_mask = input_ids.to(device), attention_mask.to(device)
        positions = (attention_mask.cumsum(-1) - 1).clamp(min=0)

        rows = [
            _Row(prompt, p, g, self._eos_ids)
            for prompt, p, g in zip(prompts, params, generators, strict=True)
        ]
        active = list(range(batch))  # original row index of each row still in the batch
        budget = [min(r.params.max_tokens, self._max_context - len(r.prompt)) for r in rows]
        with torch.inference_mode():
            # An explicit DynamicCache: transformers 4.x returns legacy tuples when given none.
            logits, cache = self._forward(
                input_ids=input_ids,
                attention_mask=attention_mask,
                position_ids=positions,
                cache=DynamicCache(),
            )
            last_position = positions[:, -1]
            while True:
                tokens, token_logprobs, top = self._sample(logits, [rows[i] for i in active])
                finished = []
                for slot, index in enumerate(active):
                    row = rows[index]
                    row.append(tokens[slot], token_logprobs[slot], top[slot], self.tokenizer)
                    if row.finish_reason is None and len(row.ids) >= budget[index]:
                        row.finish_reason = "length"
                    if row.finish_reason is not None:
                        finished.append(slot)
                if len(finished) == len(active):
                    break
                next_tokens = torch.tensor(tokens, dtype=torch.long, device=device)
                if finished:
                    done = set(finished)
                    keep = [s for s in range(len(active)) if s not in done]
                    keep_t = torch.tensor(keep, dtype=torch.long, device=device)
                    cache.batch_select_indices(keep_t)
                    active = [active[s] for s in keep]
                    next_tokens = next_tokens[keep_t]
                    attention_mask = attention_mask[keep_t]
                    last_position = last_position[keep_t]
                attention_mask = torch.cat(
                    [attention_mask, attention_mask.new_ones((len(active), 1))], dim=1
                )
                last_position = last_position + 1
                logits, cache = self._forward(
                    input_ids=next_tokens[:, None],
                    attention_mask=attention_mask,
                    position_ids=last_position[:, None],
                    cache=cache,
                )
        return [row.completion(self.tokenizer) for row in rows]

    def _sample(
        self, logits: torch.Tensor, rows: list[_Row]
    ) -> tuple[list[int], list[float], list[dict[int, float] | None]]:
        """Pick one token per row; return the tokens, their raw log-probabilities, top alternatives."""
        import torch

        logits = logits.float()
        logprobs = torch.log_softmax(logits, dim=-1)
        chosen = torch.argmax(logits, dim=-1)
        sampling = [slot for slot, r in enumerate(rows) if not r.params.greedy]
        if sampling:
            index = torch.tensor(sampling, dtype=torch.long, device=logits.device)
            probs = _filtered_probs(logits[index], [rows[s].params for s in sampling])
            groups: dict[int, list[int]] = {}
            for position, slot in enumerate(sampling):
                groups.setdefault(id(rows[slot].generator), []).append(position)
            for positions in groups.values():
                generator = rows[sampling[positions[0]]].generator
                picked = torch.tensor(positions, dtype=torch.long, device=logits.device)
                draws = torch.multinomial(probs[picked], 1, generator=generator).squeeze(1)
                chosen[index[picked]] = draws
        token_logprobs = logprobs.gather(1, chosen[:, None]).squeeze(1)
        alternatives: list[dict[int, float] | None] = [None] * len(rows)
        most = max(r.params.top_logprobs for r in rows)
        if most:
            values, ids = torch.topk(logprobs, most, dim=-1)
            values_l, ids_l = values.tolist(), ids.tolist()
            for slot, row in enumerate(rows):
                n = row.params.top_logprobs
                if n:
                    alternatives[slot] = dict(zip(ids_l[slot][:n], values_l[slot][:n], strict=True))
        return chosen.tolist(), token_logprobs.tolist(), alternatives


def _filtered_probs(logits: torch.Tensor, params: list[SamplingParams]) -> torch.Tensor:
    """Temperature, then top-k, then top-p, per row; returns probabilities."""
    import torch

    device = logits.device
    temperature = torch.tensor([p.temperature for p in params], device=device)[:, None]
    logits = logits / temperature
    vocab = logits.shape[-1]
    top_k = [p.top_k if 0 < p.top_k < vocab else vocab for p in params]
    top_p = [p.top_p for p in params]
    if min(top_k) < vocab or min(top_p) < 1.0:
        sorted_logits, order = torch.sort(logits, dim=-1, descending=True)
        ranks = torch.arange(vocab, device=device)[None, :]
        remove = ranks >= torch.tensor(top_k, device=device)[:, None]
        sorted_logits = sorted_logits.masked_fill(remove, float("-inf"))
        sorted_probs = torch.softmax(sorted_logits, dim=-1)
        before = sorted_probs.cumsum(dim=-1) - sorted_probs  # mass strictly before each token
        remove = before >= torch.tensor(top_p, device=device)[:, None]
        remove[:, 0] = False
        sorted_logits = sorted_logits.masked_fill(remove, float("-inf"))
        logits = torch.full_like(logits, float("-inf")).scatter(1, order, sorted_logits)
    return torch.softmax(logits, dim=-1)


class _Row:
    """One conversation's decoding state."""

    def __init__(
        self,
        prompt: list[int],
        params: SamplingParams,
        generator: torch.Generator | None,
        eos_ids: frozenset[int],
    ) -> None:
        self.prompt = prompt
        self.params = params
        self.generator = generator
        self.stop_ids = eos_ids | frozenset(params.stop_token_ids)
        self.ids: list[int] = []
        self.logprobs: list[float] = []
        self.top_logprobs: list[dict[int, float]] = []
        self.finish_reason: FinishReason | None = None
        self.text: str | None = None

    def append(
        self, token: int, logprob: float, top: dict[int, float] | None, tokenizer: Any
    ) -> None:
        self.ids.append(int(token))
        self.logprobs.append(float(logprob))
        if top is not None:
            self.top_logprobs.append(top)
        if token in self.stop_ids:
            self.finish_reason = "stop"
            self.text = tokenizer.decode(self.ids[:-1], skip_special_tokens=True)
        elif self.params.stop:
            decoded = tokenizer.decode(self.ids, skip_special_tokens=True)
            hits = [i for i in (decoded.find(s) for s in self.params.stop) if i >= 0]
            if hits:
                self.finish_reason = "stop"
                self.text = decoded[: min(hits)]

    def completion(self, tokenizer: Any) -> Completion:
        text = self.text
        if text is None:
            text = tokenizer.decode(self.ids, skip_special_tokens=True)
        return Completion(
            text=text,
            prompt_token_ids=list(self.prompt),
            completion_token_ids=list(self.ids),
            logprobs=list(self.logprobs) if self.params.logprobs else [],
            finish_reason=self.finish_reason or "length",
            top_logprobs=list(self.top_logprobs),
        )


def _make_generator(seed: int | None, device: Any) -> torch.Generator | None:
    import torch

    if seed is None:
        return None
    generator = torch.Generator(device=device)
    generator.manual_seed(int(seed))
    return generator


def _pad_token_id(model: Any, tokenizer: Any) -> int:
    for candidate in (
        getattr(tokenizer, "pad_token_id", None),
        getattr(getattr(model, "generation_config", None), "pad_token_id", None),
        getattr(tokenizer, "eos_token_id", None),
    ):
        if isinstance(candidate, int):
            return candidate
    return 0


def _eos_token_ids(model: Any, tokenizer: Any) -> frozenset[int]:
    ids: set[int] = set()
    for source in (getattr(model, "generation_config", None), model.config, tokenizer):
        value = getattr(source, "eos_token_id", None)
        if isinstance(value, int):
            ids.add(value)
        elif isinstance(value, list | tuple):
            ids.update(int(v) for v in value)
    return frozenset(ids)
