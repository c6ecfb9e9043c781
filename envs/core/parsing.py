r"""Helpers that pull structured parts out of free model text.

Example:
    >>> last_boxed(r"so \boxed{\frac{1}{2}} and finally \boxed{\sqrt{x^{2}}}")
    '\\sqrt{x^{2}}'
    >>> last_tag("<answer>a</answer> <answer> b </answer>", "answer")
    'b'
    >>> last_boxed(r"\boxed{1} then \boxed{unclosed") is None
    True
"""

from __future__ import annotations

import re

_BOXED = re.compile(r"\\(?:boxed|fbox)\s*\{")


def last_boxed(text: str) -> str | None:
    r"""The contents of the last complete ``\boxed{...}`` (or ``\fbox{...}``), braces balanced.

    Boxes nested in a box belong to it. Returns ``None`` when there is no box, or when the last
    one is never closed (a cut-off response is not graded on an answer it went on to replace).
    """
    answer = None
    position = 0
    while match := _BOXED.search(text, position):
        depth = 1
        for index in range(match.end(), len(text)):
            char = text[index]
            if char in "{}" and text[index - 1] != "\\":
                depth += 1 if char == "{" else -1
                if depth == 0:
                    answer = text[match.end() : index].strip()
                    position = index + 1
                    break
        else:
            return None
    return answer


def last_tag(text: str, tag: str) -> str | None:
    """The stripped contents of the last ``<tag>...</tag>`` block, or ``None``."""
    pattern = re.compile(rf"<{re.escape(tag)}>(.*?)</{re.escape(tag)}>", re.DOTALL | re.IGNORECASE)
    matches = pattern.findall(text)
    return matches[-1].strip() if matches else None


_ANSWER_IS = re.compile(
    r"(?:final\s+answer|the\s+answer)\s*(?:is|:|=)\s*:?\s*(.+?)(?:\n|$)",
    re.IGNORECASE,
)


def answer_is_phrase(text: str) -> str | None:
    """What follows the last "the answer is" / "final answer:" on its line, without the end dot."""
    matches = _ANSWER_IS.findall(text)
    if not matches:
        return None
    answer = matches[-1].strip().rstrip(".").strip()
    if answer.startswith("$") and answer.endswith("$") and len(answer) > 1:
        answer = answer.strip("$").strip()
    return answer or None
