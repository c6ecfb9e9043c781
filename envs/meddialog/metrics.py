"""MedDG's evaluation metrics, reproduced: character-level BLEU-1/2/4, ROUGE-1/2/L, Distinct-1/2
and micro entity precision/recall/F1 — and :func:`evaluate`, the corpus table.

What MedDG's released evaluation does, and what this module therefore does:

- **Tokens.** Chinese text is split into characters (whitespace dropped), exactly as MedDG's
  script does (``[x for x in text.strip()]``). English text, which MedDG has none of, is split
  into lower-cased words and punctuation marks.
- **BLEU-n** is NLTK's ``sentence_bleu`` against the one reference with
  ``SmoothingFunction().method7`` and weights ``(1,0,0,0)``, ``(1/2,1/2)``, ``(1/4,)*4``,
  averaged over responses (macro); a hypothesis of fewer than 2 tokens scores 0 (MedDG's later
  evaluation script; its first release zeroed hypotheses of up to 4 tokens). NLTK's method7 (and
  therefore MedDG's BLEU) can exceed 1 for a near-copy: an exact copy of a 6-character reference
  scores BLEU-2 = 1.217. We keep this so that numbers line up with published MedDG tables.
  sacrebleu was not used: it scores corpus BLEU with other smoothing, not this average.
- **ROUGE-1/2/L** follow the ``rouge`` package (pltrdy, 1.0.x) that MedDG-style evaluation calls
  on space-separated characters: its default ``exclusive=True`` counts *distinct* n-grams (sets,
  not multisets) and ROUGE-L uses the distinct tokens of one reconstructed LCS; F = 2PR/(P+R).
  Empty pairs are skipped in the average, as in that script. ``rouge-score`` was not used: its
  default tokenizer deletes every non-ASCII character (Chinese scores 0), and with a custom
  tokenizer it counts n-gram multisets, which gives different numbers.
- **Distinct-n** is corpus level: distinct n-grams over all responses / all n-grams (responses
  shorter than n add nothing), as MedDG's ``Distinct1``/``Distinct2`` metrics.
- **Entity P/R/F1** are micro-averaged over responses: entities are found in the response and in
  the reference by dictionary matching (:meth:`KnowledgeGraph.extract`), precision = correct /
  predicted, recall = correct / reference, as MedDG's ``KD_Metric``.

Example:
    >>> round(bleu("头痛多久了", "头痛多久了呢", n=1), 4), round(rouge_l("abcd", "acbd"), 4)
    (1.0916, 0.75)
    >>> distinct(["aab", "ab"], n=1), distinct(["aab", "ab"], n=2)
    (0.4, 0.6667)
    >>> scores = evaluate(["胃痛多久了？"], ["胃疼有多久了？"], language="zh")
    >>> scores["Entity-F1"], scores["ROUGE-1"]
    (1.0, 0.7692)
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterable, Sequence

from nltk.translate.bleu_score import SmoothingFunction, sentence_bleu

from arenagym.envs.meddialog.knowledge import KnowledgeGraph, load_knowledge_graph

#: The columns of MedDG's results table, in its order.
MEDDG_COLUMNS: tuple[str, ...] = (
    "BLEU-1",
    "BLEU-2",
    "BLEU-4",
    "ROUGE-1",
    "ROUGE-2",
    "ROUGE-L",
    "Distinct-1",
    "Distinct-2",
    "Entity-P",
    "Entity-R",
    "Entity-F1",
)
_BLEU_WEIGHTS: dict[int, tuple[float, ...]] = {
    1: (1.0, 0.0, 0.0, 0.0),
    2: (0.5, 0.5),
    4: (0.25, 0.25, 0.25, 0.25),
}
_SMOOTHING = SmoothingFunction().method7
_EN_TOKEN = re.compile(r"[a-z0-9]+(?:'[a-z]+)?|[^\sa-z0-9]")


def tokenize(text: str | Sequence[str], language: str = "zh") -> list[str]:
    """Characters (``zh``, whitespace dropped) or lower-cased words and punctuation (``en``).

    A list of tokens is returned unchanged, so every metric accepts text or tokens.
    """
    if not isinstance(text, str):
        return list(text)
    if language == "zh":
        return [char for char in text if not char.isspace()]
    if language == "en":
        return _EN_TOKEN.findall(text.lower())
    raise ValueError(f"language must be 'zh' or 'en', got {language!r}")


def bleu(
    hypothesis: str | Sequence[str],
    reference: str | Sequence[str],
    n: int = 2,
    language: str = "zh",
) -> float:
    """MedDG's sentence BLEU-``n`` (n in 1, 2, 4): NLTK with smoothing method7 (may exceed 1)."""
    if n not in _BLEU_WEIGHTS:
        raise ValueError(f"n must be 1, 2 or 4 (MedDG's BLEU-1/2/4), got {n!r}")
    hyp, ref = tokenize(hypothesis, language), tokenize(reference, language)
    if len(hyp) < 2 or not ref:
        return 0.0
    with warnings.catch_warnings():  # NLTK warns about zero n-gram counts; 0 is the answer
        warnings.simplefilter("ignore")
        return float(
            sentence_bleu([ref], hyp, weights=_BLEU_WEIGHTS[n], smoothing_function=_SMOOTHING)
        )


def _f1(precision: float, recall: float) -> float:
    return 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)


def rouge_n(
    hypothesis: str | Sequence[str],
    reference: str | Sequence[str],
    n: int = 1,
    language: str = "zh",
) -> float:
    """ROUGE-N F1 over *distinct* n-grams (the ``rouge`` package's exclusive mode)."""
    hyp, ref = tokenize(hypothesis, language), tokenize(reference, language)
    hyp_grams = {tuple(hyp[i : i + n]) for i in range(len(hyp) - n + 1)}
    ref_grams = {tuple(ref[i : i + n]) for i in range(len(ref) - n + 1)}
    if not hyp_grams or not ref_grams:
        return 0.0
    overlap = len(hyp_grams & ref_grams)
    return _f1(overlap / len(hyp_grams), overlap / len(ref_grams))


def _lcs_tokens(x: Sequence[str], y: Sequence[str]) -> list[str]:
    """One longest common subsequence of ``x`` and ``y``, reconstructed as ``rouge`` does."""
    table = [[0] * (len(y) + 1) for _ in range(len(x) + 1)]
    for i in range(1, len(x) + 1):
        for j in range(1, len(y) + 1):
            if x[i - 1] == y[j - 1]:
                table[i][j] = table[i - 1][j - 1] + 1
            else:
                table[i][j] = max(table[i - 1][j], table[i][j - 1])
    out: list[str] = []
    i, j = len(x), len(y)
    while i and j:
        if x[i - 1] == y[j - 1]:
            out.append(x[i - 1])
            i, j = i - 1, j - 1
        elif table[i - 1][j] > table[i][j - 1]:
            i -= 1
        else:
            j -= 1
    return out[::-1]


def rouge_l(
    hypothesis: str | Sequence[str], reference: str | Sequence[str], language: str = "zh"
) -> float:
    """ROUGE-L F1 as the ``rouge`` package computes it for one sentence pair (exclusive mode):
    distinct LCS tokens over distinct reference / hypothesis tokens."""
    hyp, ref = tokenize(hypothesis, language), tokenize(reference, language)
    if not hyp or not ref:
        return 0.0
    common = len(set(_lcs_tokens(ref, hyp)))
    return _f1(common / len(set(hyp)), common / len(set(ref)))


def distinct(responses: Iterable[str | Sequence[str]], n: int = 1, language: str = "zh") -> float:
    """Corpus Distinct-``n``: distinct n-grams / all n-grams over ``responses`` (4 decimals)."""
    seen: set[tuple[str, ...]] = set()
    total = 0
    for response in responses:
        tokens = tokenize(response, language)
        grams = [tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]
        total += len(grams)
        seen.update(grams)
    return round(len(seen) / total, 4) if total else 0.0


def entity_counts(predicted: Iterable[str], gold: Iterable[str]) -> tuple[int, int, int]:
    """``(correct, predicted, gold)`` counts of two entity sets."""
    predicted, gold = set(predicted), set(gold)
    return len(predicted & gold), len(predicted), len(gold)


def prf(correct: int, predicted: int, gold: int, empty: float = 0.0) -> tuple[float, float, float]:
    """Precision, recall, F1 from counts; ``empty`` is returned for all three when nothing was
    predicted and nothing was expected."""
    if predicted == 0 and gold == 0:
        return empty, empty, empty
    precision = correct / predicted if predicted else 0.0
    recall = correct / gold if gold else 0.0
    return precision, recall, _f1(precision, recall)


def evaluate(
    responses: Sequence[str],
    references: Sequence[str],
    language: str = "zh",
    *,
    reference_entities: Sequence[Iterable[str]] | None = None,
    knowledge_graph: KnowledgeGraph | None = None,
) -> dict[str, float]:
    """The MedDG table for generated ``responses`` against ``references`` (fractions, 4 dp).

    Entities are extracted from both texts with the knowledge graph, as MedDG does; pass
    ``reference_entities`` to score against gold tags instead.
    """
    if len(responses) != len(references):
        raise ValueError(
            f"evaluate needs one reference per response: {len(responses)} responses, "
            f"{len(references)} references"
        )
    if reference_entities is not None and len(reference_entities) != len(references):
        raise ValueError("reference_entities needs one entity list per reference")
    kg = knowledge_graph or load_knowledge_graph()
    scores: dict[str, float] = {}
    count = max(len(responses), 1)
    for n in (1, 2, 4):
        total = sum(bleu(h, r, n, language) for h, r in zip(responses, references, strict=True))
        scores[f"BLEU-{n}"] = total / count
    pairs = [(h, r) for h, r in zip(responses, references, strict=True) if h.strip() and r.strip()]
    for name, metric in (
        ("ROUGE-1", lambda h, r: rouge_n(h, r, 1, language)),
        ("ROUGE-2", lambda h, r: rouge_n(h, r, 2, language)),
        ("ROUGE-L", lambda h, r: rouge_l(h, r, language)),
    ):
        scores[name] = sum(metric(h, r) for h, r in pairs) / len(pairs) if pairs else 0.0
    scores["Distinct-1"] = distinct(responses, 1, language)
    scores["Distinct-2"] = distinct(responses, 2, language)
    correct = predicted = gold = 0
    for index, (response, reference) in enumerate(zip(responses, references, strict=True)):
        truth = (
            set(reference_entities[index])
            if reference_entities is not None
            else kg.extract(reference, language)
        )
        c, p, g = entity_counts(kg.extract(response, language), truth)
        correct, predicted, gold = correct + c, predicted + p, gold + g
    scores["Entity-P"], scores["Entity-R"], scores["Entity-F1"] = prf(correct, predicted, gold)
    return {column: round(scores[column], 4) for column in MEDDG_COLUMNS}


def format_table(rows: dict[str, dict[str, float]]) -> str:
    """A Markdown table of :func:`evaluate` results (one row per system), in percent like MedDG.

    >>> print(format_table({"copy": dict.fromkeys(MEDDG_COLUMNS, 0.5)}).splitlines()[2])
    | copy | 50.00 | 50.00 | 50.00 | 50.00 | 50.00 | 50.00 | 50.00 | 50.00 | 50.00 | 50.00 | 50.00 |
    """
    lines = [
        "| system | " + " | ".join(MEDDG_COLUMNS) + " |",
        "|---|" + "---:|" * len(MEDDG_COLUMNS),
    ]
    for name, scores in rows.items():
        cells = " | ".join(f"{100 * scores[column]:.2f}" for column in MEDDG_COLUMNS)
        lines.append(f"| {name} | {cells} |")
    return "\n".join(lines)
