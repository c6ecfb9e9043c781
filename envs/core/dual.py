"""The inverse of an episode's task, for self-rewards that score an output by how well the input
can be recovered from it (SUDER's dual self-reward).

Why: understanding and generation are inverse tasks. An env whose task maps an input ``x`` (an
instruction, a word problem) to an output ``y`` (an edit program, an equation) can say how to ask
the inverse question ("which instruction did this edit carry out?"). A trainer then rewards each
sampled ``y`` with the policy's own mean log-likelihood of ``x`` given ``y`` under that inverse
prompt, with no external judge. The env only describes the inverse task; scoring is the
trainer's (``arenagym.trainers``), since it needs the policy.

An env declares the inverse task by implementing :class:`HasInverseTask` on its unwrapped class:
``inverse_task()`` after ``reset`` returns the current episode's :class:`InverseTask`, or ``None``
when the episode has none.

Example:
    >>> task = InverseTask(
    ...     system_prompt="Write the instruction that the edit carried out.",
    ...     question="Scene: a red apple, a blue cup.\\nEdit: {output}\\nInstruction:",
    ...     target="Make the fruit green.",
    ... )
    >>> [m["role"] for m in task.messages('[{"op": "recolour", "id": 0, "colour": "green"}]')]
    ['system', 'user']
    >>> task.messages("X")[1]["content"].splitlines()[1]
    'Edit: X'
    >>> task.target
    'Make the fruit green.'
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

__all__ = ["HasInverseTask", "InverseTask"]


@dataclass(frozen=True)
class InverseTask:
    """How to ask for an episode's input back from one of its outputs.

    Attributes:
        system_prompt: the inverse task's system message ("" for none).
        question: the user message, with ``{output}`` where the forward output goes (the only
            placeholder; other braces are kept as they are).
        target: the forward input the inverse answer should reproduce, exactly the text whose
            likelihood is scored (the model's reply to :meth:`messages`).
    """

    system_prompt: str
    question: str
    target: str

    def __post_init__(self) -> None:
        if "{output}" not in self.question:
            raise ValueError("InverseTask.question must hold the placeholder {output}")
        if not self.target:
            raise ValueError("InverseTask.target must not be empty")

    def messages(self, output: str) -> list[dict[str, str]]:
        """The inverse prompt for ``output``: chat messages whose reply should be :attr:`target`."""
        question = self.question.replace("{output}", output)
        system = [{"role": "system", "content": self.system_prompt}] if self.system_prompt else []
        return [*system, {"role": "user", "content": question}]


@runtime_checkable
class HasInverseTask(Protocol):
    """An env whose episodes declare their inverse task (call after ``reset``)."""

    def inverse_task(self) -> InverseTask | None: ...
