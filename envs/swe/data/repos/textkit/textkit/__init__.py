"""Text wrapping, justification, edit distance and line diffs."""

from textkit.diff import diff_lines, levenshtein, similarity, unified_diff
from textkit.layout import fill, indent, justify, slugify, truncate, wrap

__all__ = [
    "diff_lines",
    "fill",
    "indent",
    "justify",
    "levenshtein",
    "similarity",
    "slugify",
    "truncate",
    "unified_diff",
    "wrap",
]
__version__ = "0.4.0"
