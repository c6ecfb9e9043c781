"""Greedy wrapping, full justification, indentation, truncation and slugs."""

from __future__ import annotations

import re
import unicodedata


def wrap(text: str, width: int) -> list[str]:
    """Split ``text`` into lines of at most ``width`` characters, breaking at spaces.

    Runs of whitespace collapse to one space; a word longer than ``width`` is cut into
    ``width``-sized pieces.
    """
    if width < 1:
        raise ValueError(f"width must be at least 1, not {width}")
    lines: list[str] = []
    current = ""
    for word in text.split():
        while len(word) > width:
            if current:
                lines.append(current)
                current = ""
            lines.append(word[:width])
            word = word[width:]
        if not word:
            continue
        if not current:
            current = word
        elif len(current) + 1 + len(word) <= width:
            current += " " + word
        else:
            lines.append(current)
            current = word
    if current:
        lines.append(current)
    return lines


def justify(line: str, width: int) -> str:
    """Pad the gaps between words so that the line is exactly ``width`` long.

    Extra spaces go to the leftmost gaps first; a one-word line is left-aligned.
    """
    words = line.split()
    if not words:
        return " " * width
    if len(words) == 1:
        return words[0].ljust(width)
    letters = sum(len(word) for word in words)
    gaps = len(words) - 1
    spaces = width - letters
    if spaces < gaps:
        raise ValueError(f"{line!r} does not fit in {width} columns")
    base, extra = divmod(spaces, gaps)
    parts = []
    for index, word in enumerate(words[:-1]):
        parts.append(word)
        parts.append(" " * (base + (1 if index < extra else 0)))
    parts.append(words[-1])
    return "".join(parts)


def fill(text: str, width: int, *, justified: bool = False) -> str:
    """Wrap ``text`` and join the lines; ``justified`` justifies every line but the last."""
    lines = wrap(text, width)
    if justified:
        lines = [justify(line, width) for line in lines[:-1]] + lines[-1:]
    return "\n".join(lines)


def indent(text: str, prefix: str, *, first: str | None = None, skip_blank: bool = True) -> str:
    """Prefix every line (``first`` replaces ``prefix`` on the first line); blank lines stay
    empty unless ``skip_blank`` is False."""
    result = []
    for number, line in enumerate(text.split("\n")):
        lead = first if number == 0 and first is not None else prefix
        if skip_blank and not line.strip():
            result.append(line)
        else:
            result.append(lead + line)
    return "\n".join(result)


def truncate(text: str, width: int, placeholder: str = "...") -> str:
    """Cut ``text`` to ``width`` characters, ending with ``placeholder`` when it was cut; cuts
    at a word boundary when one exists in the kept part."""
    if len(text) <= width:
        return text
    if width <= len(placeholder):
        return placeholder[:width]
    kept = text[: width - len(placeholder)]
    boundary = kept.rfind(" ")
    if boundary > 0 and text[len(kept)] != " ":
        kept = kept[:boundary]
    return kept.rstrip() + placeholder


def slugify(text: str, separator: str = "-", max_length: int = 0) -> str:
    """Lower-case ASCII words joined by ``separator`` (accents are stripped)."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    words = re.findall(r"[a-z0-9]+", ascii_text.lower())
    slug = separator.join(words)
    if max_length > 0 and len(slug) > max_length:
        slug = slug[:max_length].rstrip(separator)
    return slug
