"""Cases, the scripted reference doctor, the rule-based patient, and MedDG-like dialogues.

- :func:`sample_case` draws a patient from the knowledge graph: a disease, its present symptoms
  (each with its probability; defining ones always), attribute values, patient factors (allergy,
  pregnancy, ...) and the gold treatment those factors allow.
- :class:`Findings` is what a doctor knows so far; :func:`next_doctor_move` is the scripted
  doctor's policy on it: ask the time course (and site of pain), ask the symptom that rules out
  the most candidate diseases, order the test that splits the rest, diagnose and ask about
  allergies and conditions, prescribe, advise, close. It only uses what the dialogue revealed, so
  an agent that reads the dialogue (:func:`read_findings`) can replay it.
- :class:`Patient` answers only what is asked (symptoms, attributes, tests and history matched by
  entity names and synonyms), denies absent symptoms, and has a ``plain``, ``vague`` or
  ``distracting`` persona; patient wording varies (synonyms, templates).
- :func:`generate_dialogue` plays the two against each other into a MedDG-style dialogue: a list
  of :class:`Utterance` with speaker, text, acts and entities.

Example:
    >>> import numpy as np
    >>> from arenagym.envs.meddialog.knowledge import load_knowledge_graph
    >>> kg = load_knowledge_graph()
    >>> case = sample_case(kg, np.random.default_rng(0), "en", disease="gerd")
    >>> "heartburn" in case.present, case.treatment
    (True, ('esomeprazole', 'mosapride'))
    >>> dialogue = generate_dialogue(kg, case, np.random.default_rng(1))
    >>> [u.speaker for u in dialogue[:3]], dialogue[-3].acts
    (['patient', 'doctor', 'patient'], ('precaution',))
    >>> [u.entities for u in dialogue if "diagnosis" in u.acts]
    [('gerd',)]
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np

from arenagym.envs.meddialog.knowledge import KnowledgeGraph

#: MedDG's doctor acts.
ACTS: tuple[str, ...] = (
    "inquire", "diagnosis", "treatment", "test", "precaution", "inform", "chitchat"
)  # fmt: skip
ACT_NAMES_ZH: dict[str, str] = {
    "询问": "inquire", "诊断": "diagnosis", "治疗": "treatment", "用药": "treatment",
    "检查": "test", "注意事项": "precaution", "告知": "inform", "闲聊": "chitchat",
}  # fmt: skip
PERSONAS: tuple[str, ...] = ("plain", "vague", "distracting")


def check_language_and_persona(language: str, persona: str) -> None:
    """Raise ``ValueError`` naming the choices unless both arguments are supported."""
    if language not in ("zh", "en"):
        raise ValueError(f"language must be 'zh' or 'en', got {language!r}")
    if persona not in PERSONAS:
        raise ValueError(f"persona must be one of {PERSONAS}, got {persona!r}")


#: Symptoms whose site the doctor asks about.
PAIN_SYMPTOMS: frozenset[str] = frozenset(
    {"abdominal_pain", "epigastric_pain", "rlq_pain", "ruq_pain", "periumbilical_pain"}
)
#: How many symptom questions the doctor asks before it prefers a test.
MAX_SYMPTOM_QUESTIONS = 4

_NEGATION = {
    "zh": re.compile(r"没有|没|不|无"),
    "en": re.compile(r"\b(?:no|not|never|don't|haven't|hasn't|didn't|none|nothing)\b"),
}
_HISTORY_QUESTION = {
    "zh": re.compile(r"过敏|病史|其他疾病|别的疾病|基础病"),
    "en": re.compile(r"allerg|medical condition|other condition|medical history", re.IGNORECASE),
}
_RESULT = {"zh": re.compile(r"“([^”]+)”"), "en": re.compile(r'"([^"]+)"')}
_CLAUSE = re.compile(r"[，。！？；,.!?;]\s*")

_T: dict[str, dict[str, tuple[str, ...]]] = {
    "zh": {
        "open1": ("医生你好，我最近{a}。", "你好医生，这几天老是{a}。", "医生，我{a}，怎么回事？"),
        "open2": ("医生你好，我最近{a}，还有点{b}。", "你好医生，我{a}，而且{b}。"),
        "duration": ("这种情况持续多久了？", "有多长时间了？", "大概多久了？"),
        "location": ("具体是哪个部位？", "哪里疼得最明显？"),
        "ask": ("有没有{s}？", "会{s}吗？", "平时有{s}吗？"),
        "test": ("建议做个{t}检查。", "先去查一下{t}吧。", "需要做{t}看看。"),
        "diagnose": (
            "考虑是{d}。你有没有药物过敏或其他病史？",
            "从目前情况看是{d}。平时有药物过敏或者其他疾病吗？",
        ),
        "treat": ("可以吃{m}。", "建议用{m}治疗。", "给你开{m}。"),
        "advise": ("{p}。", "平时注意{p}。"),
        "close": ("不客气，祝你早日康复。", "不用谢，有问题再来咨询。"),
        "yes": ("有，{s}。", "对，会{s}。", "有的，{s}挺明显的。"),
        "yes_vague": ("好像有点{s}吧。", "感觉偶尔会{s}。"),
        "no": ("没有{s}。", "不会{s}。", "没有，{s}倒是没有。"),
        "attr_location": ("在{v}。", "主要是{v}。"),
        "attr_duration": ("有{v}了。", "差不多{v}了。"),
        "attr_nature": ("是{v}。", "感觉{v}。"),
        "attr_inducement": ("一般是{v}以后明显。", "好像跟{v}有关。"),
        "attr_vague": ("大概吧，{x}", "说不太准，{x}"),
        "result": ("做了，{t}结果是“{r}”。", "查了{t}，报告上写着“{r}”。"),
        "history_none": ("没有药物过敏，也没有别的病。",),
        "history": ("我有{f}。", "对了，我有{f}。"),
        "unclear": ("您是想问哪方面？能具体一点吗？",),
        "ask_advice": ("好的，平时需要注意什么？", "明白了，还要注意些什么？"),
        "thanks": ("好的，谢谢医生！", "知道了，谢谢。"),
        "chatter": ("对了，我最近工作特别忙。", "我家孩子这两天也在考试。", "最近天气变化挺大的。"),
    },
    "en": {
        "open1": ("Hello doctor, I've had {a} recently.", "Hi doctor, I keep getting {a}."),
        "open2": ("Hello doctor, I've had {a} and some {b} recently.", "Hi doctor, I have {a}, and also {b}."),
        "duration": ("How long has this been going on?", "How long have you had it?"),
        "location": ("Where exactly is it?", "Which part of your belly is it?"),
        "ask": ("Do you have any {s}?", "Have you noticed {s}?", "Any {s}?"),
        "test": ("I'd suggest a test: {t}.", "Please get this test done: {t}.", "Let's check with {t}."),
        "diagnose": (
            "It looks like {d}. Do you have any drug allergies or other medical conditions?",
            "This is most likely {d}. Any allergies or medical history I should know about?",
        ),
        "treat": ("You can take {m}.", "I'll prescribe {m}.", "Please start {m}."),
        "advise": ("Please {p}.", "In daily life, {p}."),
        "close": ("You're welcome, get well soon.", "Glad to help, come back if anything changes."),
        "yes": ("Yes, I have {s}.", "Yes, some {s}.", "Yes, quite a bit of {s}."),
        "yes_vague": ("I think I get a bit of {s}, maybe.", "Possibly some {s} now and then."),
        "no": ("No, no {s}.", "I haven't had any {s}.", "Not really, no {s}."),
        "attr_location": ("It's in {v}.", "Mostly {v}."),
        "attr_duration": ("For {v}.", "About {v} now."),
        "attr_nature": ("It's {v}.", "It feels {v}."),
        "attr_inducement": ("It's worse after {v}.", "It seems linked to {v}."),
        "attr_vague": ("Hard to say, {x}", "I guess, {x}"),
        "result": ('I had it: the {t} report says "{r}".', 'Done. The {t} result: "{r}".'),
        "history_none": ("I have no drug allergies and no other conditions.",),
        "history": ("I should mention {f}.", "Yes, {f}."),
        "unclear": ("Sorry, what would you like to know? Could you be more specific?",),
        "ask_advice": ("OK. Anything I should watch out for?", "Got it. What else should I do?"),
        "thanks": ("OK, thank you, doctor!", "Thanks a lot."),
        "chatter": ("By the way, work has been really busy lately.", "My kids have exams this week too.", "The weather has been all over the place."),
    },
}  # fmt: skip


@dataclass(frozen=True)
class Case:
    """A simulated patient: everything the doctor may find out, and the gold answer."""

    disease: str
    language: str
    present: tuple[str, ...]  # present symptoms, the chief complaint first
    complaint: tuple[str, ...]  # the symptoms the patient opens with
    attributes: dict[str, str]  # attribute id -> the patient's value (in ``language``)
    factors: tuple[str, ...]  # patient factors (allergies, pregnancy, ...)
    treatment: tuple[str, ...]  # gold medicines for this disease and these factors


@dataclass(frozen=True)
class Utterance:
    """One MedDG-style turn: speaker, text, acts (doctor turns) and the entities it mentions."""

    speaker: str  # "patient" or "doctor"
    text: str
    acts: tuple[str, ...] = ()
    entities: tuple[str, ...] = ()


@dataclass
class Findings:
    """What the doctor knows so far (built from the dialogue only)."""

    present: set[str] = field(default_factory=set)
    absent: set[str] = field(default_factory=set)
    attributes_asked: set[str] = field(default_factory=set)
    tests: dict[str, str] = field(default_factory=dict)  # test id -> result text
    history_asked: bool = False
    factors: set[str] = field(default_factory=set)
    diagnosis: str | None = None
    treated: bool = False
    advised: bool = False
    closed: bool = False
    symptom_questions: int = 0


@dataclass(frozen=True)
class Move:
    """A doctor move: acts and entities (symptoms, attributes, test, disease or medicines)."""

    acts: tuple[str, ...]
    entities: tuple[str, ...]


def sample_case(
    kg: KnowledgeGraph, rng: np.random.Generator, language: str, disease: str | None = None
) -> Case:
    """Draw a patient (see the module docstring)."""
    diseases = kg.by_category["disease"]
    disease = disease or str(diseases[int(rng.integers(len(diseases)))])
    symptoms = kg.symptoms_of(disease)
    present = [s for s, p in symptoms.items() if p >= 1.0 or rng.random() < p]
    for s, _p in sorted(symptoms.items(), key=lambda item: -item[1]):
        if len(present) >= 2:
            break
        if s not in present:
            present.append(s)
    present.sort(key=lambda s: -symptoms[s])
    complaint = tuple(present[: 1 + int(rng.random() < 0.6)])
    attributes = {}
    for attribute, values in kg.attribute_values[disease].items():
        options = values[language]
        attributes[attribute] = options[int(rng.integers(len(options)))]
    factors = tuple(
        f for f, item in kg.patient_factors.items() if rng.random() < item["probability"]
    )
    return Case(
        disease, language, tuple(present), complaint, attributes, factors,
        kg.gold_treatment(disease, factors),
    )  # fmt: skip


# ------------------------------------------------------------------------ doctor policy
def candidates(kg: KnowledgeGraph, findings: Findings, language: str) -> list[str]:
    """The diseases consistent with the findings (graph order)."""
    out = []
    for disease in kg.by_category["disease"]:
        symptoms = kg.symptoms_of(disease)
        if any(s not in symptoms for s in findings.present):
            continue
        if any(symptoms.get(s, 0.0) >= 1.0 for s in findings.absent):
            continue
        if any(kg.test_result(disease, t, language) != r for t, r in findings.tests.items()):
            continue
        out.append(disease)
    return out


def _likeliest(kg: KnowledgeGraph, findings: Findings) -> str:
    def score(disease: str) -> float:
        symptoms = kg.symptoms_of(disease)
        value = sum(np.log(symptoms.get(s, 1e-3)) for s in findings.present)
        return float(
            value + sum(np.log(1 - min(symptoms.get(s, 0), 0.999)) for s in findings.absent)
        )

    return max(kg.by_category["disease"], key=score)


def _best_symptom(kg: KnowledgeGraph, findings: Findings, pool: list[str]) -> str | None:
    best, best_score = None, 0.0
    for symptom in kg.by_category["symptom"]:
        if symptom in findings.present or symptom in findings.absent:
            continue
        probabilities = [kg.symptoms_of(d).get(symptom, 0.0) for d in pool]
        p_yes = float(np.mean(probabilities))
        score = p_yes * sum(p == 0 for p in probabilities) + (1 - p_yes) * sum(
            p >= 1.0 for p in probabilities
        )
        if score > best_score + 1e-12:
            best, best_score = symptom, score
    return best


def _best_test(
    kg: KnowledgeGraph, findings: Findings, pool: list[str], language: str
) -> str | None:
    best, best_key = None, (1, 0)
    for test in kg.by_category["test"]:
        if test in findings.tests:
            continue
        groups: dict[str, int] = {}
        for disease in pool:
            result = kg.test_result(disease, test, language)
            groups[result] = groups.get(result, 0) + 1
        key = (len(groups), -max(groups.values()))
        if key > best_key:
            best, best_key = test, key
    return best


def next_doctor_move(kg: KnowledgeGraph, findings: Findings, language: str) -> Move:
    """The scripted reference doctor's next move (a pure function of the findings)."""
    if not findings.attributes_asked:
        asked = ["duration"] + (["location"] if findings.present & PAIN_SYMPTOMS else [])
        return Move(("inquire",), tuple(asked))
    if findings.diagnosis is None:
        pool = candidates(kg, findings, language)
        if len(pool) > 1:
            symptom = _best_symptom(kg, findings, pool)
            test = _best_test(kg, findings, pool, language)
            if symptom and (findings.symptom_questions < MAX_SYMPTOM_QUESTIONS or test is None):
                return Move(("inquire",), (symptom,))
            if test:
                return Move(("test",), (test,))
        disease = pool[0] if len(pool) == 1 else _likeliest(kg, findings)
        return Move(("diagnosis", "inquire"), (disease,))
    if not findings.treated:
        return Move(("treatment",), kg.gold_treatment(findings.diagnosis, findings.factors))
    if not findings.advised:
        return Move(("precaution",), ())
    return Move(("chitchat",), ())


def apply_move(findings: Findings, move: Move, kg: KnowledgeGraph) -> None:
    """Record in ``findings`` that the doctor made ``move``."""
    acts = set(move.acts)
    if "diagnosis" in acts:
        findings.diagnosis = move.entities[0]
        findings.history_asked = True
    elif "treatment" in acts:
        findings.treated = True
    elif "precaution" in acts:
        findings.advised = True
    elif "chitchat" in acts:
        findings.closed = True
    elif "inquire" in acts:
        for entity in move.entities:
            if kg.category(entity) == "attribute":
                findings.attributes_asked.add(entity)
            elif kg.category(entity) == "symptom":
                findings.symptom_questions += 1


def _pick(rng: np.random.Generator | None, options: tuple[str, ...]) -> str:
    return options[0] if rng is None else options[int(rng.integers(len(options)))]


def _join(names: list[str], language: str) -> str:
    if language == "zh":
        return "、".join(names[:-1]) + ("和" if len(names) > 1 else "") + names[-1]
    return ", ".join(names[:-1]) + (" and " if len(names) > 1 else "") + names[-1]


def doctor_text(
    kg: KnowledgeGraph,
    move: Move,
    language: str,
    rng: np.random.Generator | None,
    disease_for_advice: str | None = None,
) -> str:
    """Words for a doctor move (``rng=None``: always the first template)."""
    t = _T[language]
    name = lambda e: kg.name(e, language)  # noqa: E731
    acts = set(move.acts)
    if "diagnosis" in acts:
        return _pick(rng, t["diagnose"]).format(d=name(move.entities[0]))
    if "treatment" in acts:
        if not move.entities:
            return _pick(rng, t["advise"]).format(
                p=kg.precautions[disease_for_advice or ""][language]
            )
        return _pick(rng, t["treat"]).format(m=_join([name(m) for m in move.entities], language))
    if "precaution" in acts:
        return _pick(rng, t["advise"]).format(p=kg.precautions[disease_for_advice or ""][language])
    if "chitchat" in acts:
        return _pick(rng, t["close"])
    if "test" in acts:
        return _pick(rng, t["test"]).format(t=name(move.entities[0]))
    parts = []
    for entity in move.entities:
        if entity in ("duration", "location"):
            parts.append(_pick(rng, t[entity]))
        else:
            parts.append(_pick(rng, t["ask"]).format(s=name(entity)))
    return ("" if language == "zh" else " ").join(parts)


# ------------------------------------------------------------------------------ patient
class Patient:
    """A rule-based patient who answers only what is asked.

    Args:
        kg: the knowledge graph.
        case: who the patient is.
        persona: ``plain``, ``vague`` (hedged wording) or ``distracting`` (adds chatter).
        rng: varies wording; ``None`` always uses the first template.
    """

    def __init__(
        self, kg: KnowledgeGraph, case: Case, persona: str = "plain",
        rng: np.random.Generator | None = None,
    ) -> None:  # fmt: skip
        if persona not in PERSONAS:
            raise ValueError(f"persona must be one of {PERSONAS}, got {persona!r}")
        self.kg, self.case, self.persona, self.rng = kg, case, persona, rng
        self.language = case.language
        self._t = _T[self.language]

    def _surface(self, entity: str) -> str:
        names = self.kg.entities[entity].names[self.language]
        return _pick(self.rng, names) if self.rng is not None else names[0]

    def opening(self) -> Utterance:
        """The chief complaint, in the patient's words."""
        names = [self._surface(s) for s in self.case.complaint]
        if len(names) == 1:
            text = _pick(self.rng, self._t["open1"]).format(a=names[0])
        else:
            text = _pick(self.rng, self._t["open2"]).format(a=names[0], b=names[1])
        return self._utterance(text, ())

    def reply(self, doctor_text: str) -> Utterance:
        """Answer the questions in ``doctor_text`` (and nothing else)."""
        asked = self.kg.extract(doctor_text, self.language)
        order = {e: i for i, e in enumerate(self.kg.entities)}
        clauses: list[str] = []
        attributes: list[str] = []
        sep = "" if self.language == "zh" else " "
        for entity in sorted(asked, key=order.__getitem__):
            category = self.kg.category(entity)
            if category == "symptom":
                surface = self._surface(entity)
                if entity in self.case.present:
                    key = "yes_vague" if self.persona == "vague" else "yes"
                else:
                    key = "no"
                clauses.append(_pick(self.rng, self._t[key]).format(s=surface))
            elif category == "attribute":
                value = self.case.attributes[entity]
                text = _pick(self.rng, self._t[f"attr_{entity}"]).format(v=value)
                if self.persona == "vague":
                    inner = text if self.language == "zh" else text[0].lower() + text[1:]
                    text = _pick(self.rng, self._t["attr_vague"]).format(x=inner)
                clauses.append(text)
                attributes.append(entity)
            elif category == "test":
                result = self.kg.test_result(self.case.disease, entity, self.language)
                name = self.kg.name(entity, self.language)
                clauses.append(_pick(self.rng, self._t["result"]).format(t=name, r=result))
        if _HISTORY_QUESTION[self.language].search(doctor_text):
            if self.case.factors:
                names = [self.kg.name(f, self.language) for f in self.case.factors]
                text = _pick(self.rng, self._t["history"]).format(f=_join(names, self.language))
                clauses.append(text)
            else:
                clauses.append(self._t["history_none"][0])
        if not clauses:
            clauses.append(self._t["unclear"][0])
        if self.persona == "distracting" and self.rng is not None and self.rng.random() < 0.5:
            clauses.append(_pick(self.rng, self._t["chatter"]))
        return self._utterance(sep.join(clauses), tuple(attributes))

    def _utterance(self, text: str, attributes: tuple[str, ...]) -> Utterance:
        found = self.kg.extract(text, self.language) | set(attributes)
        order = {e: i for i, e in enumerate(self.kg.entities)}
        return Utterance("patient", text, (), tuple(sorted(found, key=order.__getitem__)))


# ------------------------------------------------------------------------- reading text
def read_patient_turn(
    kg: KnowledgeGraph, findings: Findings, text: str, language: str, asked: set[str]
) -> None:
    """Update ``findings`` from a patient turn (polarity per clause; quoted test results)."""
    for clause in _CLAUSE.split(text):
        found = kg.extract(clause, language)
        masked = kg.mask(clause, language)  # names like "不想吃饭" are not negations
        negative = bool(_NEGATION[language].search(masked))
        for entity in found:
            if kg.category(entity) == "symptom":
                (findings.absent if negative else findings.present).add(entity)
    for entity in asked:
        if kg.category(entity) == "test":
            match = _RESULT[language].search(text)
            if match:
                findings.tests[entity] = match.group(1)
    if findings.history_asked:
        for factor, item in kg.patient_factors.items():
            if str(item[language]).lower() in text.lower():
                findings.factors.add(factor)


def read_findings(kg: KnowledgeGraph, turns: list[tuple[str, str]], language: str) -> Findings:
    """Rebuild the scripted doctor's findings from ``(speaker, text)`` turns of a dialogue."""
    findings = Findings()
    asked: set[str] = set()
    for speaker, text in turns:
        if speaker == "doctor":
            asked = kg.extract(text, language)
            move = _classify(kg, text, asked, language, findings)
            apply_move(findings, move, kg)
        else:
            read_patient_turn(kg, findings, text, language, asked)
            asked = set()
    return findings


def _classify(
    kg: KnowledgeGraph, text: str, asked: set[str], language: str, findings: Findings
) -> Move:
    categories = {kg.category(e) for e in asked}
    if findings.treated:
        return Move(("chitchat",) if findings.advised else ("precaution",), ())
    if "disease" in categories:
        disease = next(e for e in kg.by_category["disease"] if e in asked)
        return Move(("diagnosis", "inquire"), (disease,))
    if "medicine" in categories:
        return Move(("treatment",), tuple(e for e in asked if kg.category(e) == "medicine"))
    if "test" in categories:
        return Move(("test",), tuple(e for e in asked if kg.category(e) == "test"))
    if asked & set(kg.by_category["attribute"]) or "symptom" in categories:
        return Move(("inquire",), tuple(sorted(asked)))
    return Move(("chitchat",), ())


# --------------------------------------------------------------------------- dialogues
def generate_dialogue(
    kg: KnowledgeGraph,
    case: Case,
    rng: np.random.Generator,
    persona: str = "plain",
    max_doctor_turns: int = 14,
) -> list[Utterance]:
    """A full scripted consultation for ``case``, tagged MedDG-style."""
    patient = Patient(kg, case, persona, rng)
    findings = Findings()
    dialogue = [patient.opening()]
    read_patient_turn(kg, findings, dialogue[0].text, case.language, set())
    for _ in range(max_doctor_turns):
        move = next_doctor_move(kg, findings, case.language)
        text = doctor_text(kg, move, case.language, rng, findings.diagnosis)
        order = {e: i for i, e in enumerate(kg.entities)}
        entities = tuple(sorted(kg.extract(text, case.language), key=order.__getitem__))
        dialogue.append(Utterance("doctor", text, move.acts, entities))
        apply_move(findings, move, kg)
        if findings.closed:
            break
        if findings.advised:
            reply = Utterance("patient", _pick(rng, _T[case.language]["thanks"]))
        elif findings.treated:
            reply = Utterance("patient", _pick(rng, _T[case.language]["ask_advice"]))
        else:
            reply = patient.reply(text)
        dialogue.append(reply)
        read_patient_turn(kg, findings, reply.text, case.language, set(move.entities))
    return dialogue
