"""The bundled gastro-intestinal knowledge graph: entities in MedDG's five categories, relations,
and bilingual entity extraction.

MedDG (Liu et al., 2022) tags every utterance with entities from 160 names in five categories
(disease, symptom, attribute, examination, medicine). This module loads a small graph in the same
categories (12 diseases, 40 symptoms, the 4 attributes, 15 examinations, 30 medicines, each named
in Chinese and English with synonyms) from ``data/knowledge_graph.json``, validates it (errors name
the file and the field), and answers the questions the case sampler, the simulated patient and the
metrics ask: which entities a text mentions, which symptoms a disease has and how often, which
tests find it, which drugs treat it and which are contraindicated.

Entity extraction follows MedDG's evaluation (dictionary matching of every name and synonym,
normalised to one entity) with one fix: the longest name wins and matches do not overlap, so
"胃肠炎" (gastroenteritis) is not also counted as "肠炎" (enteritis). English matching is
case-insensitive and respects word boundaries.

Example:
    >>> kg = load_knowledge_graph()
    >>> len(kg.by_category["disease"]), len(kg.by_category["symptom"]), len(kg.by_category["test"])
    (12, 40, 15)
    >>> sorted(kg.extract("最近拉肚子，还有点恶心，是胃肠炎吗？", "zh"))
    ['diarrhea', 'gastroenteritis', 'nausea']
    >>> sorted(kg.extract("Any heartburn? How long has it been?", "en"))
    ['duration', 'heartburn']
    >>> kg.name("omeprazole", "zh"), kg.gold_treatment("peptic_ulcer", {"penicillin_allergy"})
    ('奥美拉唑', ('rabeprazole', 'bismuth', 'metronidazole', 'clarithromycin'))
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

#: MedDG's five entity categories, in its order.
CATEGORIES: tuple[str, ...] = ("disease", "symptom", "attribute", "test", "medicine")
#: The languages every name is given in.
LANGUAGES: tuple[str, ...] = ("zh", "en")
#: Relations every graph file must have (each with a ``source`` note and ``facts``).
RELATIONS: tuple[str, ...] = (
    "has_symptom",
    "diagnosed_by",
    "treated_by",
    "precaution",
    "attribute_value",
    "contraindicated",
)
DEFAULT_PATH = Path(__file__).parent / "data" / "knowledge_graph.json"


class KnowledgeGraphError(ValueError):
    """A knowledge-graph file that cannot be used; the message names the file and the field."""


@dataclass(frozen=True)
class Entity:
    """One entity: its id, category, and names (first the preferred one) per language."""

    id: str
    category: str
    names: dict[str, tuple[str, ...]]
    normal_result: dict[str, str] = field(default_factory=dict)  # tests only

    def name(self, language: str) -> str:
        """The preferred name in ``language``."""
        return self.names[language][0]


@dataclass(frozen=True)
class Triplet:
    """A knowledge triplet ``(head, relation, tail)`` between entity ids."""

    head: str
    relation: str
    tail: str

    def render(self, kg: KnowledgeGraph, language: str) -> str:
        """``(胃炎, 检查, 胃镜)``-style text in ``language``."""
        label = RELATION_LABELS[self.relation][language]
        return f"({kg.name(self.head, language)}, {label}, {kg.name(self.tail, language)})"


#: How relations read in triplets shown to agents.
RELATION_LABELS: dict[str, dict[str, str]] = {
    "has_symptom": {"zh": "症状", "en": "has symptom"},
    "diagnosed_by": {"zh": "检查", "en": "diagnosed by"},
    "treated_by": {"zh": "用药", "en": "treated by"},
    "has_attribute": {"zh": "属性", "en": "has attribute"},
    "contraindicated": {"zh": "禁忌", "en": "contraindicated with"},
}


@dataclass
class KnowledgeGraph:
    """The loaded graph. Build it with :func:`load_knowledge_graph`."""

    entities: dict[str, Entity]
    by_category: dict[str, tuple[str, ...]]
    symptom_probability: dict[str, dict[str, float]]  # disease -> symptom -> probability
    test_findings: dict[str, dict[str, dict[str, str]]]  # disease -> test -> language -> text
    treatments: dict[str, list[tuple[str, str]]]  # disease -> [(medicine, role)]
    precautions: dict[str, dict[str, str]]  # disease -> language -> text
    attribute_values: dict[str, dict[str, dict[str, tuple[str, ...]]]]  # disease->attr->lang
    contraindications: tuple[tuple[str, str], ...]  # (medicine, "kind:target")
    patient_factors: dict[str, dict[str, Any]]
    sources: dict[str, str]
    _patterns: dict[str, re.Pattern[str]] = field(default_factory=dict, repr=False)
    _surface: dict[str, dict[str, str]] = field(default_factory=dict, repr=False)
    _triplet_cache: tuple[Triplet, ...] = field(default=(), repr=False)

    # ----------------------------------------------------------------------- names
    def name(self, entity_id: str, language: str) -> str:
        """The preferred name of an entity (or patient factor) in ``language``."""
        if entity_id in self.patient_factors:
            return str(self.patient_factors[entity_id][language])
        return self.entities[entity_id].name(language)

    def category(self, entity_id: str) -> str:
        """The MedDG category of an entity."""
        return self.entities[entity_id].category

    # ------------------------------------------------------------------- extraction
    def extract(self, text: str, language: str) -> set[str]:
        """The ids of the entities ``text`` mentions (longest names first, no overlaps)."""
        pattern = self._pattern(language)
        haystack = text.lower() if language == "en" else text
        return {self._surface[language][m.group(0)] for m in pattern.finditer(haystack)}

    def mask(self, text: str, language: str) -> str:
        """``text`` with every entity name removed (to read the words around them)."""
        haystack = text.lower() if language == "en" else text
        return self._pattern(language).sub(" ", haystack)

    def _pattern(self, language: str) -> re.Pattern[str]:
        if language not in self._patterns:
            surface: dict[str, str] = {}
            for entity in self.entities.values():
                for name in entity.names[language]:
                    surface[name.lower() if language == "en" else name] = entity.id
            ordered = sorted(surface, key=lambda s: (-len(s), s))
            body = "|".join(re.escape(s) for s in ordered)
            if language == "en":
                body = rf"(?<![a-z0-9])(?:{body})(?![a-z0-9])"
            self._surface[language] = surface
            self._patterns[language] = re.compile(body)
        return self._patterns[language]

    # ------------------------------------------------------------------ relations
    def symptoms_of(self, disease: str) -> dict[str, float]:
        """Symptom id -> probability for ``disease`` (absent symptoms are not listed)."""
        return self.symptom_probability[disease]

    def test_result(self, disease: str, test: str, language: str) -> str:
        """What ``test`` shows in a patient with ``disease`` (the normal finding if nothing)."""
        finding = self.test_findings[disease].get(test)
        return finding[language] if finding else self.entities[test].normal_result[language]

    def is_contraindicated(
        self, medicine: str, disease: str | None, factors: Iterable[str], others: Iterable[str]
    ) -> bool:
        """Whether ``medicine`` is contraindicated for this disease, these patient factors, or
        together with any of the ``others`` medicines."""
        targets = {f"factor:{f}" for f in factors} | {f"medicine:{m}" for m in others}
        if disease is not None:
            targets.add(f"disease:{disease}")
        for drug, target in self.contraindications:
            if drug == medicine and target in targets:
                return True
            if target == f"medicine:{medicine}" and drug in set(others):
                return True
        return False

    def contraindicated_in(
        self, medicines: Iterable[str], disease: str | None, factors: Iterable[str]
    ) -> list[str]:
        """The medicines of a prescription that are contraindicated (sorted ids)."""
        chosen = sorted(set(medicines))
        factors = tuple(factors)
        return [
            m
            for m in chosen
            if self.is_contraindicated(m, disease, factors, [o for o in chosen if o != m])
        ]

    def gold_treatment(self, disease: str, factors: Iterable[str] = ()) -> tuple[str, ...]:
        """The first-line drugs for ``disease``, each replaced by its first alternative the
        patient can take when it is contraindicated (dropped when there is none)."""
        factors = tuple(factors)
        chosen: list[str] = []
        roles = self.treatments[disease]
        for medicine, role in roles:
            if role != "first_line":
                continue
            picks = [medicine] + [m for m, r in roles if r == f"alternative_to:{medicine}"]
            for pick in picks:
                if pick not in chosen and not self.is_contraindicated(
                    pick, disease, factors, chosen
                ):
                    chosen.append(pick)
                    break
        return tuple(chosen)

    def triplets(self) -> tuple[Triplet, ...]:
        """Every triplet of the graph, in file order."""
        return _triplets(self)

    def neighbourhood(self, entity_ids: Iterable[str]) -> list[Triplet]:
        """The one-hop triplets that touch any of ``entity_ids`` (graph order)."""
        wanted = set(entity_ids)
        return [t for t in self.triplets() if t.head in wanted or t.tail in wanted]


def _triplets(kg: KnowledgeGraph) -> tuple[Triplet, ...]:
    if not kg._triplet_cache:
        items: list[Triplet] = []
        for disease, symptoms in kg.symptom_probability.items():
            items += [Triplet(disease, "has_symptom", s) for s in symptoms]
        for disease, findings in kg.test_findings.items():
            items += [Triplet(disease, "diagnosed_by", t) for t in findings]
        for disease, roles in kg.treatments.items():
            seen: set[str] = set()
            for medicine, _role in roles:
                if medicine not in seen:
                    seen.add(medicine)
                    items.append(Triplet(disease, "treated_by", medicine))
        for disease, attributes in kg.attribute_values.items():
            items += [Triplet(disease, "has_attribute", a) for a in attributes]
        for medicine, target in kg.contraindications:
            kind, _, other = target.partition(":")
            if kind in ("disease", "medicine"):
                items.append(Triplet(medicine, "contraindicated", other))
        kg._triplet_cache = tuple(items)
    return kg._triplet_cache


# --------------------------------------------------------------------------- loading
@cache
def load_knowledge_graph(path: str | Path | None = None) -> KnowledgeGraph:
    """Load and validate a knowledge-graph JSON file (default: the bundled one); cached."""
    source = Path(path) if path is not None else DEFAULT_PATH
    try:
        data = json.loads(source.read_text(encoding="utf-8"))
    except OSError as error:
        raise KnowledgeGraphError(f"{source}: cannot read ({error.strerror})") from None
    except json.JSONDecodeError as error:
        raise KnowledgeGraphError(
            f"{source}: line {error.lineno}: not valid JSON ({error.msg})"
        ) from None
    except (ValueError, RecursionError) as error:  # nested too deeply, or too long a number
        raise KnowledgeGraphError(f"{source}: not valid JSON ({error})") from None
    return _parse(data, str(source))


def _fail(source: str, where: str, message: str) -> KnowledgeGraphError:
    return KnowledgeGraphError(f"{source}: field {where}: {message}")


def _parse(data: Any, source: str) -> KnowledgeGraph:
    if not isinstance(data, dict):
        raise _fail(source, "(top level)", "must be a JSON object")
    raw_entities = data.get("entities")
    if not isinstance(raw_entities, dict):
        raise _fail(source, "entities", "must be an object of categories")
    entities: dict[str, Entity] = {}
    by_category: dict[str, tuple[str, ...]] = {}
    for category in CATEGORIES:
        items = raw_entities.get(category)
        if not isinstance(items, list) or not items:
            raise _fail(source, f"entities.{category}", "must be a non-empty list")
        ids = []
        for index, item in enumerate(items):
            where = f"entities.{category}[{index}]"
            entity = _parse_entity(item, category, source, where)
            if entity.id in entities:
                raise _fail(source, f"{where}.id", f"duplicate id {entity.id!r}")
            entities[entity.id] = entity
            ids.append(entity.id)
        by_category[category] = tuple(ids)
    for language in LANGUAGES:
        seen: dict[str, str] = {}
        for entity in entities.values():
            for name in entity.names[language]:
                key = name.lower() if language == "en" else name
                if key in seen and seen[key] != entity.id:
                    raise _fail(
                        source,
                        f"entities ({entity.id})",
                        f"the {language} name {name!r} is also a name of {seen[key]!r}",
                    )
                seen[key] = entity.id

    factors: dict[str, dict[str, Any]] = {}
    for index, item in enumerate(data.get("patient_factors", [])):
        where = f"patient_factors[{index}]"
        if not isinstance(item, dict) or not isinstance(item.get("id"), str):
            raise _fail(source, where, "must be an object with an 'id'")
        for key in LANGUAGES:
            if not isinstance(item.get(key), str) or not item[key]:
                raise _fail(source, f"{where}.{key}", "must be a non-empty string")
        probability = item.get("probability")
        if not isinstance(probability, (int, float)) or not 0 <= probability <= 1:
            raise _fail(source, f"{where}.probability", "must be a number in [0, 1]")
        factors[item["id"]] = item

    relations = data.get("relations")
    if not isinstance(relations, dict):
        raise _fail(source, "relations", "must be an object")
    sources: dict[str, str] = {}
    facts: dict[str, list[Any]] = {}
    for relation in RELATIONS:
        block = relations.get(relation)
        where = f"relations.{relation}"
        if not isinstance(block, dict):
            raise _fail(source, where, "is missing (an object with 'source' and 'facts')")
        if not isinstance(block.get("source"), str) or not block["source"].strip():
            raise _fail(source, f"{where}.source", "every relation needs a source note")
        if not isinstance(block.get("facts"), list):
            raise _fail(source, f"{where}.facts", "must be a list")
        sources[relation] = block["source"]
        facts[relation] = block["facts"]

    def need(value: Any, category: str, where: str) -> str:
        if not isinstance(value, str) or value not in entities:
            raise _fail(source, where, f"unknown entity {value!r}")
        if entities[value].category != category:
            raise _fail(
                source, where, f"{value!r} is a {entities[value].category}, not a {category}"
            )
        return value

    def texts(value: Any, where: str) -> dict[str, str]:
        if not isinstance(value, dict) or not all(
            isinstance(value.get(k), str) and value[k] for k in LANGUAGES
        ):
            raise _fail(source, where, "must be an object with non-empty 'zh' and 'en' texts")
        return {k: value[k] for k in LANGUAGES}

    diseases = by_category["disease"]
    symptom_probability: dict[str, dict[str, float]] = {d: {} for d in diseases}
    for index, fact in enumerate(facts["has_symptom"]):
        where = f"relations.has_symptom.facts[{index}]"
        if not isinstance(fact, list) or len(fact) != 3:
            raise _fail(source, where, "must be [disease, symptom, probability]")
        disease, symptom = need(fact[0], "disease", where), need(fact[1], "symptom", where)
        if not isinstance(fact[2], (int, float)) or not 0 < fact[2] <= 1:
            raise _fail(source, f"{where}[2]", f"probability must be in (0, 1], got {fact[2]!r}")
        symptom_probability[disease][symptom] = float(fact[2])
    test_findings: dict[str, dict[str, dict[str, str]]] = {d: {} for d in diseases}
    for index, fact in enumerate(facts["diagnosed_by"]):
        where = f"relations.diagnosed_by.facts[{index}]"
        if not isinstance(fact, list) or len(fact) != 3:
            raise _fail(source, where, "must be [disease, test, {zh, en}]")
        disease, test = need(fact[0], "disease", where), need(fact[1], "test", where)
        test_findings[disease][test] = texts(fact[2], f"{where}[2]")
    treatments: dict[str, list[tuple[str, str]]] = {d: [] for d in diseases}
    for index, fact in enumerate(facts["treated_by"]):
        where = f"relations.treated_by.facts[{index}]"
        if not isinstance(fact, list) or len(fact) != 3 or not isinstance(fact[2], str):
            raise _fail(source, where, "must be [disease, medicine, role]")
        disease, medicine = need(fact[0], "disease", where), need(fact[1], "medicine", where)
        role = fact[2]
        if role not in ("first_line", "adjunct"):
            kind, _, replaced = role.partition(":")
            if kind != "alternative_to":
                raise _fail(source, f"{where}[2]", f"unknown role {role!r}")
            need(replaced, "medicine", f"{where}[2]")
        treatments[disease].append((medicine, role))
    precautions = {}
    for index, fact in enumerate(facts["precaution"]):
        where = f"relations.precaution.facts[{index}]"
        if not isinstance(fact, list) or len(fact) != 2:
            raise _fail(source, where, "must be [disease, {zh, en}]")
        precautions[need(fact[0], "disease", where)] = texts(fact[1], f"{where}[1]")
    attribute_values: dict[str, dict[str, dict[str, tuple[str, ...]]]] = {d: {} for d in diseases}
    for index, fact in enumerate(facts["attribute_value"]):
        where = f"relations.attribute_value.facts[{index}]"
        if not isinstance(fact, list) or len(fact) != 3 or not isinstance(fact[2], dict):
            raise _fail(source, where, "must be [disease, attribute, {zh: [...], en: [...]}]")
        disease, attribute = need(fact[0], "disease", where), need(fact[1], "attribute", where)
        values = {}
        for language in LANGUAGES:
            options = fact[2].get(language)
            if not isinstance(options, list) or not options:
                raise _fail(source, f"{where}[2].{language}", "must be a non-empty list")
            values[language] = tuple(str(o) for o in options)
        attribute_values[disease][attribute] = values
    contraindications = []
    for index, fact in enumerate(facts["contraindicated"]):
        where = f"relations.contraindicated.facts[{index}]"
        if not isinstance(fact, list) or len(fact) != 2 or not isinstance(fact[1], str):
            raise _fail(source, where, "must be [medicine, 'kind:target']")
        medicine = need(fact[0], "medicine", where)
        kind, _, target = fact[1].partition(":")
        if kind == "factor":
            if target not in factors:
                raise _fail(source, f"{where}[1]", f"unknown patient factor {target!r}")
        elif kind in ("disease", "medicine"):
            need(target, kind, f"{where}[1]")
        else:
            raise _fail(source, f"{where}[1]", "must start with factor:, disease: or medicine:")
        contraindications.append((medicine, fact[1]))
    for disease in diseases:
        if not symptom_probability[disease] or not test_findings[disease]:
            raise _fail(source, "relations", f"disease {disease!r} needs symptoms and tests")
        if not any(role == "first_line" for _, role in treatments[disease]):
            raise _fail(source, "relations.treated_by", f"{disease!r} has no first-line drug")
        if disease not in precautions or set(attribute_values[disease]) != set(
            by_category["attribute"]
        ):
            raise _fail(source, "relations", f"{disease!r} needs a precaution and every attribute")
    return KnowledgeGraph(
        entities=entities,
        by_category=by_category,
        symptom_probability=symptom_probability,
        test_findings=test_findings,
        treatments=treatments,
        precautions=precautions,
        attribute_values=attribute_values,
        contraindications=tuple(contraindications),
        patient_factors=factors,
        sources=sources,
    )


def _parse_entity(item: Any, category: str, source: str, where: str) -> Entity:
    if not isinstance(item, dict):
        raise _fail(source, where, "must be an object")
    entity_id = item.get("id")
    if not isinstance(entity_id, str) or not re.fullmatch(r"[a-z][a-z0-9_]*", entity_id):
        raise _fail(source, f"{where}.id", f"must be a lower_snake_case string, got {entity_id!r}")
    names = {}
    for language in LANGUAGES:
        name = item.get(language)
        synonyms = item.get(f"{language}_synonyms", [])
        if not isinstance(name, str) or not name.strip():
            raise _fail(source, f"{where}.{language}", "must be a non-empty name")
        if not isinstance(synonyms, list) or not all(isinstance(s, str) and s for s in synonyms):
            raise _fail(source, f"{where}.{language}_synonyms", "must be a list of names")
        names[language] = (name, *synonyms)
    normal: dict[str, str] = {}
    if category == "test":
        raw = item.get("normal")
        if not isinstance(raw, dict) or not all(isinstance(raw.get(k), str) for k in LANGUAGES):
            raise _fail(source, f"{where}.normal", "a test needs its normal finding in zh and en")
        normal = {k: raw[k] for k in LANGUAGES}
    return Entity(entity_id, category, names, normal)
