"""``completion_logprobs`` scores only the positions that predict completion tokens.

The output layer runs over the last positions of the batch (transformers' ``logits_to_keep``);
the log-probabilities, entropies and gradients must equal those of the full forward pass.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from transformers import AutoModelForCausalLM

from arenagym.trainers.batch import Sample, TokenBatch, collate, completion_logprobs


def _full_pass(model: Any, batch: TokenBatch) -> tuple[torch.Tensor, torch.Tensor]:
    """The reference: logits over every position, gathered afterwards."""
    logits = model(input_ids=batch.input_ids, attention_mask=batch.attention_mask).logits
    rows = torch.arange(batch.input_ids.shape[0])[:, None]
    logits = logits[rows, batch.positions].float()
    log_norm = torch.logsumexp(logits, dim=-1)
    chosen = logits.gather(-1, batch.targets[..., None]).squeeze(-1)
    probs = torch.softmax(logits, dim=-1)
    entropy = (log_norm - (probs * logits).sum(-1)) * batch.mask
    return (chosen - log_norm) * batch.mask, entropy


def _samples() -> list[Sample]:
    """Prompts of different lengths (so rows start scoring at different columns) and a
    completion that is empty-padded relative to the longest."""
    return [
        Sample(list(range(5, 25)), [30, 31, 32, 33], [], 1.0, 1.0, 0, 0),
        Sample(list(range(40, 43)), [50, 51], [], 0.0, 0.0, 0, 1),
        Sample(list(range(60, 71)), [70, 71, 72, 73, 74, 75], [], 1.0, 1.0, 1, 2),
    ]


def test_scored_positions_match_the_full_forward_pass(tiny_model_dir: Path) -> None:
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir).float()
    batch = collate(_samples(), pad_id=0)

    logprobs, entropy = completion_logprobs(model, batch, with_entropy=True)
    loss = -(logprobs.sum() + entropy.sum())  # type: ignore[union-attr]
    loss.backward()
    fast_grads = [p.grad.clone() for p in model.parameters() if p.grad is not None]
    model.zero_grad()

    ref_logprobs, ref_entropy = _full_pass(model, batch)
    (-(ref_logprobs.sum() + ref_entropy.sum())).backward()
    ref_grads = [p.grad.clone() for p in model.parameters() if p.grad is not None]

    assert logprobs.shape == (3, 6)
    assert torch.allclose(logprobs, ref_logprobs, atol=1e-5)
    assert torch.allclose(entropy, ref_entropy, atol=1e-5)  # type: ignore[arg-type]
    assert (logprobs[1, 2:] == 0).all() and (logprobs[0, :4] != 0).all()
    assert len(fast_grads) == len(ref_grads) > 0
    for fast, ref in zip(fast_grads, ref_grads, strict=True):
        assert torch.allclose(fast, ref, atol=1e-5)


def test_a_model_without_logits_to_keep_is_scored_in_full(tiny_model_dir: Path) -> None:
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir).float()

    class PlainForward(torch.nn.Module):
        """A causal LM whose forward takes no ``logits_to_keep`` (an older or custom model)."""

        def __init__(self) -> None:
            super().__init__()
            self.inner = model

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, **_: Any) -> Any:
            return self.inner(input_ids=input_ids, attention_mask=attention_mask)

    batch = collate(_samples(), pad_id=0)
    with torch.no_grad():
        plain, _ = completion_logprobs(PlainForward(), batch)
        fast, _ = completion_logprobs(model, batch)
    assert torch.allclose(plain, fast, atol=1e-5)
    assert plain.abs().sum() > 0


@pytest.mark.parametrize("temperature", [0.7, 1.3])
def test_temperature_divides_the_kept_logits(tiny_model_dir: Path, temperature: float) -> None:
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir).float()
    batch = collate(_samples(), pad_id=0)
    with torch.no_grad():
        scaled, _ = completion_logprobs(model, batch, temperature=temperature)
        plain, _ = completion_logprobs(model, batch)
    assert not torch.allclose(scaled, plain)
    assert (scaled * batch.mask <= 0).all()
