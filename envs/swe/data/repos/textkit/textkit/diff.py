"""Edit distance and LCS-based line diffs with unified-diff output."""

from __future__ import annotations

from collections.abc import Sequence


def levenshtein(a: str, b: str) -> int:
    """Insertions, deletions and substitutions needed to turn ``a`` into ``b``."""
    if len(a) < len(b):
        a, b = b, a
    previous = list(range(len(b) + 1))
    for i, char_a in enumerate(a, start=1):
        current = [i]
        for j, char_b in enumerate(b, start=1):
            cost = 0 if char_a == char_b else 1
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost))
        previous = current
    return previous[-1]


def similarity(a: str, b: str) -> float:
    """``1 - distance / max(len)``: 1.0 for equal strings, 0.0 for nothing in common."""
    longest = max(len(a), len(b))
    if longest == 0:
        return 1.0
    return 1.0 - levenshtein(a, b) / longest


def diff_lines(a: Sequence[str], b: Sequence[str]) -> list[tuple[str, str]]:
    """An edit script from ``a`` to ``b``: ``(" ", line)`` kept, ``("-", line)`` removed,
    ``("+", line)`` added, built from a longest common subsequence (removals first)."""
    rows, cols = len(a), len(b)
    table = [[0] * (cols + 1) for _ in range(rows + 1)]
    for i in range(rows - 1, -1, -1):
        for j in range(cols - 1, -1, -1):
            if a[i] == b[j]:
                table[i][j] = table[i + 1][j + 1] + 1
            else:
                table[i][j] = max(table[i + 1][j], table[i][j + 1])
    script: list[tuple[str, str]] = []
    i = j = 0
    while i < rows and j < cols:
        if a[i] == b[j]:
            script.append((" ", a[i]))
            i += 1
            j += 1
        elif table[i + 1][j] >= table[i][j + 1]:
            script.append(("-", a[i]))
            i += 1
        else:
            script.append(("+", b[j]))
            j += 1
    script.extend(("-", line) for line in a[i:])
    script.extend(("+", line) for line in b[j:])
    return script


def unified_diff(a: Sequence[str], b: Sequence[str], context: int = 3) -> list[str]:
    """Hunks in unified-diff format (``@@ -start,count +start,count @@``), no file headers."""
    script = diff_lines(a, b)
    changed = [index for index, (tag, _) in enumerate(script) if tag != " "]
    if not changed:
        return []
    groups: list[tuple[int, int]] = []
    start, end = changed[0], changed[0]
    for index in changed[1:]:
        if index - end > 2 * context:
            groups.append((start, end))
            start = index
        end = index
    groups.append((start, end))
    positions = []
    line_a = line_b = 1
    for tag, _ in script:
        positions.append((line_a, line_b))
        if tag != "+":
            line_a += 1
        if tag != "-":
            line_b += 1
    output: list[str] = []
    for first, last in groups:
        low = max(first - context, 0)
        high = min(last + context, len(script) - 1)
        hunk = script[low : high + 1]
        count_a = sum(1 for tag, _ in hunk if tag != "+")
        count_b = sum(1 for tag, _ in hunk if tag != "-")
        start_a, start_b = positions[low]
        if count_a == 0:
            start_a -= 1
        if count_b == 0:
            start_b -= 1
        output.append(f"@@ -{start_a},{count_a} +{start_b},{count_b} @@")
        output.extend(tag + line for tag, line in hunk)
    return output
