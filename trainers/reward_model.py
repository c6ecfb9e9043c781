r"""Bradley-Terry reward models (Skywork-Reward-V2 style): a scorer, a trainer, pairwise accuracy.

A BT reward model is a causal LM loaded as ``AutoModelForSequenceClassification`` with one label:
the scalar on the last token of a conversation rendered with the chat template is its reward.
Training minimises ``-log sigmoid(r_chosen - r_rejected)`` over preference pairs; the benchmark
is pairwise accuracy (the share of pairs whose chosen response scores higher; ties count half).

Pair files are JSONL, one pair per line, in either layout::

    {"prompt": "2+2?", "chosen": "4", "rejected": "5"}
    {"chosen": [{"role": "user", "content": "2+2?"}, {"role": "assistant", "content": "4"}],
     "rejected": [{"role": "user", "content": "2+2?"}, {"role": "assistant", "content": "5"}]}

(``prompt`` may also be a message list; then ``chosen``/``rejected`` are the assistant replies.)
Errors name the file, the line and the field.

Example:
    >>> import io
    >>> pairs = read_pairs(io.StringIO('{"prompt": "2+2?", "chosen": "4", "rejected": "5"}\n'))
    >>> pairs[0].chosen
    [{'role': 'user', 'content': '2+2?'}, {'role': 'assistant', 'content': '4'}]
    >>> pairwise_accuracy([2.0, 0.0, 1.0], [1.0, 1.0, 1.0])
    0.5
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

__all__ = [
    "Pair",
    "PairsError",
    "RewardModelScorer",
    "evaluate_pairs",
    "pairwise_accuracy",
    "read_pairs",
    "train_reward_model",
]

Conversation = list[dict[str, str]]


class PairsError(ValueError):
    """A malformed pair file; the message names the file, line and field."""


@dataclass(frozen=True)
class Pair:
    """One preference: two whole conversations that differ in the last reply."""

    chosen: Conversation
    rejected: Conversation


def _messages(value: Any, where: str, field: str) -> Conversation:
    if not isinstance(value, list) or not value:
        raise PairsError(f"{where}: {field!r} must be a non-empty list of messages or a string")
    for i, message in enumerate(value):
        if (
            not isinstance(message, dict)
            or not isinstance(message.get("role"), str)
            or not isinstance(message.get("content"), str)
        ):
            raise PairsError(
                f"{where}: {field}[{i}] must be {{'role': str, 'content': str}}, got {message!r}"
            )
    return [{"role": m["role"], "content": m["content"]} for m in value]


def read_pairs(file: str | Path | IO[str]) -> list[Pair]:
    """The pairs of a JSONL file (see the module docstring for the layouts)."""
    if isinstance(file, str | Path):
        path = Path(file)
        if not path.is_file():
            raise PairsError(f"{path}: no such pair file")
        with open(path, encoding="utf-8") as handle:
            return _read_pairs(handle, str(path))
    return _read_pairs(file, getattr(file, "name", "<pairs>"))


def _read_pairs(handle: IO[str], name: str) -> list[Pair]:
    pairs = []
    for number, line in enumerate(handle, 1):
        if not line.strip():
            continue
        where = f"{name}:{number}"
        try:
            row = json.loads(line)
        except json.JSONDecodeError as error:
            raise PairsError(f"{where}: not valid JSON ({error.msg})") from None
        if not isinstance(row, dict):
            raise PairsError(f"{where}: each line must be a JSON object")
        for field in ("chosen", "rejected"):
            if field not in row:
                raise PairsError(f"{where}: missing field {field!r}")
        prompt = row.get("prompt")
        sides = []
        for field in ("chosen", "rejected"):
            value = row[field]
            if isinstance(value, str):
                if prompt is None:
                    raise PairsError(f"{where}: {field!r} is a string, so 'prompt' is required")
                if isinstance(prompt, str):
                    head = [{"role": "user", "content": prompt}]
                else:
                    head = _messages(prompt, where, "prompt")
                sides.append([*head, {"role": "assistant", "content": value}])
            else:
                sides.append(_messages(value, where, field))
        pairs.append(Pair(sides[0], sides[1]))
    if not pairs:
        raise PairsError(f"{name}: no pairs")
    return pairs


def pairwise_accuracy(chosen: Sequence[float], rejected: Sequence[float]) -> float:
    """Share of pairs with ``chosen > rejected``; ties count 0.5."""
    if len(chosen) != len(rejected) or not chosen:
        raise ValueError("need the same, non-zero number of chosen and rejected scores")
    wins = sum(
        1.0 if c > r else 0.5 if c == r else 0.0 for c, r in zip(chosen, rejected, strict=True)
    )
    return wins / len(chosen)


def _load_classifier(path_or_model: Any, tokenizer: Any, device: str) -> tuple[Any, Any]:
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from arenagym.agents.backends.transformers_compat import dtype_kwarg

    if isinstance(path_or_model, str | Path):
        import transformers

        verbosity = transformers.logging.get_verbosity()
        transformers.logging.set_verbosity_error()  # "score.weight newly initialised" is expected
        try:
            model = AutoModelForSequenceClassification.from_pretrained(
                str(path_or_model), num_labels=1, **dtype_kwarg(torch.float32)
            )
        finally:
            transformers.logging.set_verbosity(verbosity)
        tokenizer = tokenizer or AutoTokenizer.from_pretrained(str(path_or_model))
    else:
        model = path_or_model
        if tokenizer is None:
            raise ValueError("pass tokenizer= with a model object")
    if getattr(model.config, "pad_token_id", None) is None:
        model.config.pad_token_id = tokenizer.pad_token_id or tokenizer.eos_token_id
    return model.to(device), tokenizer


class RewardModelScorer:
    """Scores conversations with a BT reward model; usable as a trainer reward source.

    Args:
        model_or_path: a directory (a trained reward model, or any causal LM: its score head
            is then new) or a loaded ``AutoModelForSequenceClassification``.
        tokenizer: required with a model object; must have a chat template.
        device: where to run.
        normalize: ``"sigmoid"`` maps scores to (0, 1); ``"raw"`` keeps them.
        batch_size: conversations per forward pass.
        max_length: truncate longer conversations from the left (keeping the last reply).
    """

    def __init__(
        self,
        model_or_path: Any,
        tokenizer: Any = None,
        *,
        device: str = "cpu",
        normalize: str = "sigmoid",
        batch_size: int = 16,
        max_length: int | None = None,
    ) -> None:
        if normalize not in ("sigmoid", "raw"):
            raise ValueError(f"normalize must be 'sigmoid' or 'raw', got {normalize!r}")
        self.model, self.tokenizer = _load_classifier(model_or_path, tokenizer, device)
        self.device = device
        self.normalize = normalize
        self.batch_size = batch_size
        self.max_length = max_length

    def encode(self, conversations: Sequence[Conversation]) -> tuple[Any, Any]:
        """Right-padded ``input_ids`` and ``attention_mask`` of the rendered conversations."""
        import torch

        rows = []
        for conversation in conversations:
            text = self.tokenizer.apply_chat_template(list(conversation), tokenize=False)
            ids = list(self.tokenizer(text, add_special_tokens=False)["input_ids"])
            if self.max_length and len(ids) > self.max_length:
                ids = ids[-self.max_length :]
            rows.append(ids)
        pad = int(self.model.config.pad_token_id)
        width = max(len(r) for r in rows)
        input_ids = torch.full((len(rows), width), pad, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for i, ids in enumerate(rows):
            input_ids[i, : len(ids)] = torch.tensor(ids)
            mask[i, : len(ids)] = 1
        return input_ids.to(self.device), mask.to(self.device)

    def forward(self, conversations: Sequence[Conversation]) -> Any:
        """Raw scores as a tensor (with gradients when the model trains)."""
        input_ids, mask = self.encode(conversations)
        logits = self.model(input_ids=input_ids, attention_mask=mask).logits
        return logits[:, 0].float()

    def raw_scores(self, conversations: Sequence[Conversation]) -> list[float]:
        """Unnormalised scores, batched, without gradients."""
        import torch

        was_training = self.model.training
        self.model.eval()
        out: list[float] = []
        try:
            with torch.no_grad():
                for start in range(0, len(conversations), self.batch_size):
                    out += self.forward(conversations[start : start + self.batch_size]).tolist()
        finally:
            self.model.train(was_training)
        return out

    def score(self, conversations: Sequence[Conversation]) -> list[float]:
        """Scores, mapped to (0, 1) by a sigmoid unless ``normalize="raw"``."""
        raw = self.raw_scores(conversations)
        if self.normalize == "raw":
            return raw
        return [1.0 / (1.0 + math.exp(-r)) if r > -700 else 0.0 for r in raw]


def evaluate_pairs(scorer: RewardModelScorer, pairs: Sequence[Pair]) -> dict[str, float]:
    """Pairwise accuracy, mean margin ``r_chosen - r_rejected`` and the number of pairs."""
    chosen = scorer.raw_scores([p.chosen for p in pairs])
    rejected = scorer.raw_scores([p.rejected for p in pairs])
    margins = [c - r for c, r in zip(chosen, rejected, strict=True)]
    return {
        "accuracy": pairwise_accuracy(chosen, rejected),
        "margin_mean": sum(margins) / len(margins),
        "pairs": float(len(pairs)),
    }


def train_reward_model(
    pairs: Sequence[Pair],
    base: str | Path,
    output_dir: str | Path | None = None,
    *,
    epochs: int = 1,
    lr: float = 1e-5,
    batch_size: int = 8,
    weight_decay: float = 0.0,
    max_grad_norm: float = 1.0,
    seed: int = 0,
    device: str = "cpu",
    max_length: int | None = None,
) -> tuple[RewardModelScorer, list[float]]:
    """Train a BT reward model from ``base`` on ``pairs``; save it to ``output_dir`` if given.

    Returns the scorer on the trained model and the loss of every optimizer step.
    """
    import torch
    import torch.nn.functional as F

    if epochs < 1 or batch_size < 1 or lr <= 0:
        raise ValueError("epochs and batch_size must be >= 1 and lr > 0")
    torch.manual_seed(seed)
    scorer = RewardModelScorer(base, device=device, normalize="raw", max_length=max_length)
    model = scorer.model
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    order = list(range(len(pairs)))
    shuffle = random.Random(seed)
    losses: list[float] = []
    for _ in range(epochs):
        shuffle.shuffle(order)
        for start in range(0, len(order), batch_size):
            batch = [pairs[i] for i in order[start : start + batch_size]]
            scores = scorer.forward([p.chosen for p in batch] + [p.rejected for p in batch])
            chosen, rejected = scores[: len(batch)], scores[len(batch) :]
            loss = -F.logsigmoid(chosen - rejected).mean()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), max_grad_norm)
            optimizer.step()
            losses.append(float(loss.detach()))
    model.eval()
    if output_dir is not None:
        out = Path(output_dir)
        out.mkdir(parents=True, exist_ok=True)
        model.save_pretrained(out, safe_serialization=True)
        scorer.tokenizer.save_pretrained(out)
        summary = {"pairs": len(pairs), "epochs": epochs, "lr": lr, "final_loss": losses[-1]}
        (out / "reward_model.json").write_text(json.dumps(summary, indent=2) + "\n")
    return scorer, losses
