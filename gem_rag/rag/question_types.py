"""What a question asks for, read from its words: its kind (how-to, definition, why, fact), the term a definition
asks about, and the kind of answer a number or place question needs, so the sentence reader can check that its
best sentence holds it ("How fast ...?" wants a speed, "Where ...?" a place, "What is X called?" a name).

Example:
    >>> question_kind("How do I create a virtual environment?"), definition_term("What is albedo?")
    ('howto', 'albedo')
    >>> holds_asked_number("How long do aardvarks live?", "Aardvarks live for up to 23 years.")
    True
"""

from __future__ import annotations

import re
from collections.abc import Callable

from gem_rag.rag.answer_text import NUMBER, NUMBER_WORDS

_HOWTO = re.compile(r"^\s*(?:how\s+(?:do|can|should|would|could|does|is|are)\b|how\s+to\b|what(?:'s| is)\s+the\s+"
                    r"(?:best\s+|right\s+)?(?:way|command|syntax|function|method)\b|which\s+(?:command|function|method|module)\b|"
                    r"(?:show|tell)\s+me\s+how\b|is\s+there\s+a\s+way\b)", re.IGNORECASE)
_WHAT_IS = r"(?:what|who)(?:'s|(?:\s+(?:exactly|actually|really))?\s+(?:is|are|was|were))"  # "what (exactly) is"
_DEFINITION = re.compile(rf"^\s*(?:{_WHAT_IS}\s+(?:an?\s+|the\s+)?[\w\s.'()-]{{1,40}}\??\s*$|"
                         r"define\b|what\s+does\s+.{1,40}\s+mean\b|what\s+is\s+meant\s+by\b|meaning\s+of\b)",
                         re.IGNORECASE)
_ASKS_VERSION = r"(?:since\s+|in\s+)?(?:what|which)\s+(?:\w+\s+)?version\b"  # "Which Python version ...?"
_NUMBER_QUESTION = re.compile(r"^\s*(?:how\s+(?:many|much|long|old|far|fast|big|large|tall|high|often|deep|heavy)\b|"
                              r"(?:in\s+)?(?:what|which)\s+year\b|when\s+(?:did|was|were|will)\b|"
                              rf"what\s+(?:percentage|proportion)\b|{_ASKS_VERSION})", re.IGNORECASE)
_VERSION_QUESTION = re.compile(rf"^\s*{_ASKS_VERSION}", re.IGNORECASE)
_VERSION = re.compile(r"\b\d+\.\d+|\bversion\s+\d", re.IGNORECASE)  # "3.10", "version 3"
_TIME_QUESTION = re.compile(r"^\s*(?:(?:in\s+)?(?:what|which)\s+year\b|when\s+(?:did|was|were|will)\b)", re.IGNORECASE)
_TIME = re.compile(r"\b\d{3,4}\b|\b\d{1,2}(?:st|nd|rd|th)[\s-]+century\b|\b(?:BCE?|AD|CE)\b|\b(?:January|February|March|"
                   r"April|May|June|July|August|September|October|November|December)\b")
_HOW_MANY = re.compile(r"^\s*how\s+many\s+(\w+)", re.IGNORECASE)
_MEASURE_QUESTION = re.compile(r"^\s*how\s+(long|old|far|fast|big|large|tall|high|deep|heavy)\b", re.IGNORECASE)
_TIME_UNIT = r"(?:(?:nano|micro|milli)?seconds?|minutes?|hours?|days?|weeks?|months?|years?|decades?|centur(?:y|ies)|ms)"
_LENGTH_UNIT = r"(?:(?:kilo|centi|milli)?(?:metres?|meters?)|km|cm|mm|m|inch(?:es)?|foot|feet|ft|miles?|yards?)"
_MASS_UNIT = r"(?:(?:kilo)?grams?|kg|g|tonnes?|tons?|pounds?|lbs?|ounces?|oz)"
_SIZE_UNIT = rf"(?:{_LENGTH_UNIT}|{_MASS_UNIT}|square|hectares?|acres?)"
_MEASURE_UNITS = {  # the units that answer "how <word> ...?"
    "long": rf"(?:{_TIME_UNIT}|{_LENGTH_UNIT}|characters?|lines?|bytes?)", "old": _TIME_UNIT, "far": _LENGTH_UNIT,
    "tall": _LENGTH_UNIT, "high": _LENGTH_UNIT, "deep": _LENGTH_UNIT, "heavy": _MASS_UNIT, "big": _SIZE_UNIT,
    "large": _SIZE_UNIT, "fast": rf"(?:km/h|mph|kph|knots?|{_LENGTH_UNIT}\s*(?:per|/|an?\s+hour))"}
_WHERE = re.compile(r"^\s*where\b", re.IGNORECASE)
_ASKS_EXCEPTION = re.compile(r"^\s*(?:what|which)\s+(?:\w+\s+)?(?:exception|error|warning)s?\b", re.IGNORECASE)
_EXCEPTION_NAME = re.compile(r"\b[A-Z]\w*(?:Error|Exception|Warning)\b")  # "JSONDecodeError", "ValueError"
_ASKS_NAME = re.compile(r"^\s*what\s+(?:is|are|was|were)\s+.{1,60}\s+called\s*\??\s*$|"
                        r"^\s*what(?:'s|\s+is)\s+the\s+name\s+(?:of|for)\b", re.IGNORECASE)
_NAMING = re.compile(r"\b(?:called|known\s+as|named|termed)\b", re.IGNORECASE)
_YES_NO = re.compile(r"^\s*(?:is|are|was|were|does|do|did|can|could|should|will|would|has|have)\s+"
                     r"(?:an?\s+|the\s+|my\s+|your\s+)?[`*]?([\w.-]*\w)", re.IGNORECASE)  # "Is self ...?" -> "self"
_PRONOUNS = frozenset("i you we it he she they there this that these those".split())
_ASKS_WORD = re.compile(r"\bthe\s+(?:word|name|term)\s+[`*\"']?\w", re.IGNORECASE)  # "the word aardvark"
_WHAT_DOES = re.compile(r"^\s*what\s+does\b", re.IGNORECASE)  # "what does X mean?": "mean" is not part of X
_MONTHS = "January|February|March|April|May|June|July|August|September|October|November|December"
_PLACE = re.compile(rf"\b(?:in|at|to|from|near|across|throughout|around|within|on)\s+(?:the\s+|[a-z]+-)?"
                    rf"(?!(?:{_MONTHS})\b)[A-Z][a-z]|`[^`]+`")  # "found in sub-Saharan Africa", "`__pycache__`"
_NAME_WORD = re.compile(r"(?<=\s)[A-Z][\w-]*")  # a capitalised word after the question's first: "Mars", "TAI"
_HOWTO_VERB = re.compile(r"^\s*(?:how\s+(?:do|can|should|would|could)\s+(?:i|you|we|one)|how\s+to|what(?:'s|\s+is)\s+"
                         r"the\s+(?:best\s+|right\s+|easiest\s+)?way\s+to|is\s+there\s+a\s+way\s+to)\s+([a-z]+)",
                         re.IGNORECASE)  # "How do I shuffle ...?", "what's the way to pick ..." -> "shuffle", "pick"
_GETTING_VERBS = frozenset("get pick choose select find obtain compute calculate count generate produce make create "
                           "build".split())  # an API entry "Return ..." does these
_PLATFORMS = {"windows": r"Windows", "linux": r"Linux", "unix": r"Unix|POSIX", "posix": r"Unix|POSIX",
              "macos": r"macOS|Mac\s*OS|OS\s*X", "mac": r"macOS|Mac\s*OS|OS\s*X"}
_ASKS_PLATFORM = re.compile(r"\b(?:on|in|for|under)\s+(windows|linux|unix|posix|macos|mac)\b", re.IGNORECASE)
_WHY = re.compile(r"^\s*(?:why\b|what\s+is\s+the\s+(?:reason|point|purpose)\b|what\s+for\b)", re.IGNORECASE)


def question_kind(question: str) -> str:
    """"howto", "definition", "why" or "fact"."""
    if _HOWTO.match(question):
        return "howto"
    if _WHY.match(question):
        return "why"
    if _DEFINITION.match(question) and len(asked_term(question).split()) <= 3 and " of " not in f" {asked_term(question)} ":
        return "definition"  # "what is albedo?", not "what is the capital of France?"
    return "fact"


def asks_for_number(question: str) -> bool:
    """True for questions a number answers: "How many ...?", "In what year ...?", "When did ...?", "Which
    version ...?"."""
    return bool(_NUMBER_QUESTION.match(question))


def holds_asked_number(question: str, text: str) -> bool:
    """True when ``text`` holds the kind of number ``question`` asks for: a year, century or month for "when
    did ...?" / "in what year ...?"; a count of the thing counted for "how many X ...?" (a number, then X within
    three words: "36 seconds", "over 400 atomic clocks", "4-space"); a number with a unit of the measure for "how
    long / old / far / fast ...?" ("23 years", "40 km/h"); a version number for "which version ...?"; else any
    number."""
    if _TIME_QUESTION.match(question):
        return bool(_TIME.search(text))
    if _VERSION_QUESTION.match(question):
        return bool(_VERSION.search(text))
    measure = _MEASURE_QUESTION.match(question)
    if measure:  # "How long ...?" wants "23 years", not "1971"; "How fast ...?" not "all four feet"
        asked = measure.group(1).lower()
        unit = _MEASURE_UNITS[asked]
        if asked == "old" and _TIME.search(text):
            return True  # "How old is it?" is answered by "it dates back to 300 BC" too
        return bool(re.search(rf"(?:\d[\d,.]*|\b(?:{NUMBER_WORDS})\b)\W*(?:\w+\W+){{0,2}}?{unit}\b", text, re.IGNORECASE))
    counted = _HOW_MANY.match(question)
    if counted:
        word = counted.group(1).lower()
        forms = "|".join(re.escape(word[:len(word) - len(end)]) for end in ("", "s", "es")
                         if word.endswith(end) and len(word) - len(end) > 2)  # "classes": also "class", "classe(s)"
        return bool(re.search(rf"(?:\d[\d,.]*|\b(?:{NUMBER_WORDS}))\W+(?:\w+\W+){{0,2}}(?:{forms})(?:e?s)?\b", text,
                              re.IGNORECASE))  # the word itself: "atomic" is not counted by "1956, using an Atomichron"
    return bool(NUMBER.search(text))


def names_place(text: str) -> bool:
    """True when ``text`` could say where: a capitalised word other than a month after a locative preposition
    ("native to Africa", "found in sub-Saharan Africa"; not "born during May"), or code in backticks (a directory,
    a path); for "where ...?" questions."""
    return bool(_PLACE.search(text))


def answer_test(question: str) -> Callable[[str], bool] | None:
    """What a sentence must hold to answer ``question`` when its words ask for one kind of answer: a place for
    "where ...?" (:func:`names_place`), an exception class for "what/which exception ...?" ("a `JSONDecodeError`
    will be raised"), a name for "what is X called?" ("The Chinese abacus, known as the suanpan"), the subject of a
    yes/no question ("Is self a reserved keyword?": a sentence about `self`), a count of the thing a "how many X"
    question counts ("Use 4-space indentation" for "How many spaces ...?"); else None. (A year or a measure is no
    such test: many sentences near an unanswerable "when ...?" hold some year.)"""
    if _HOW_MANY.match(question):
        return lambda text: holds_asked_number(question, text)
    if _WHERE.match(question):
        return names_place
    if _ASKS_EXCEPTION.match(question):
        return lambda text: bool(_EXCEPTION_NAME.search(text))
    if _ASKS_NAME.match(question):
        return lambda text: bool(_NAMING.search(text))
    yes_no = _YES_NO.match(question)
    if yes_no and yes_no.group(1).lower() not in _PRONOUNS:
        subject = re.compile(r"(?<!\w)" + re.escape(yes_no.group(1)) + r"(?!\w)", re.IGNORECASE)
        return lambda text: bool(subject.search(text))
    return None


def howto_verb(question: str) -> str | None:
    """The verb a how-to question asks how to do, lower-case ("How do I shuffle a list in place?" -> "shuffle",
    "how to throw an error" -> "throw"), else None."""
    match = _HOWTO_VERB.match(question)
    return match.group(1).lower() if match else None


def does_asked_verb(question: str) -> Callable[[str, bool], bool] | None:
    """For a how-to question, a test ``(unit text, under an API signature?) -> bool`` of whether a unit says how to do
    its verb, in the two forms documentation states it: an API entry's description opening with the verb under its
    signature ("shuffle(x)" / "Shuffle the sequence x in place."), or an instruction "Use `X` [up to 3 words] to
    <verb>" ("Use `isinstance` to check an instance's type"); verbs match on their first 5 letters, and an entry
    opening "Return ..." does a getting verb (get, pick, choose, find, compute, ...). None when the question names no
    verb."""
    verb = howto_verb(question)
    if verb is None:
        return None
    stem = re.escape(verb[:5])
    opens_with_verb = re.compile(rf"^\W*{stem}\w*\b", re.IGNORECASE)
    use_to = re.compile(rf"^\W*use\s+(?:the\s+)?`[^`]+`(?:\s+[\w-]+){{0,3}}\s+to\s+{stem}\w*\b", re.IGNORECASE)
    returns = re.compile(r"^\W*returns?\b", re.IGNORECASE) if verb in _GETTING_VERBS else None
    asked = _object_words(question, verb)

    def does(text: str, under_signature: bool) -> bool:
        if under_signature and returns is not None and returns.match(text):  # "Return a random element ..."
            return bool(asked & _object_words(text, "return"))
        return bool(under_signature and opens_with_verb.match(text) or use_to.match(text))
    return does


_OBJECT_STOPWORDS = frozenset("the and for from with into that this its all any new non".split())


def _object_words(text: str, verb: str) -> set[str]:
    """The 5-letter stems of the words of ``text`` after its first ``verb`` ("pick a random element" -> {"rando",
    "eleme"}), stop words aside."""
    at = re.search(rf"\b{re.escape(verb[:5])}\w*\s+", text, re.IGNORECASE)
    words = re.findall(r"[a-z]{3,}", text[at.end():].lower()) if at else []
    return {word[:5] for word in words if word not in _OBJECT_STOPWORDS}



def asked_platform(question: str) -> re.Pattern | None:
    """For a question about one operating system ("how do i activate my venv on windows"), a pattern (for ``search``)
    for texts that name it ("On Windows, run:"); else None."""
    match = _ASKS_PLATFORM.search(question)
    return re.compile(rf"\b(?:{_PLATFORMS[match.group(1).lower()]})\b", re.IGNORECASE) if match else None


def named_words(question: str) -> list[str]:
    """The capitalised words of ``question`` after its first ("What is the albedo of Mars?" -> ["Mars"]; "I" aside):
    names a text must mention to answer it. None in a question written in title case (most words capitalised)."""
    names = [word for word in _NAME_WORD.findall(question) if word != "I"]
    return names if 2 * len(names) <= len(question.split()) - 1 else []


def definition_term(question: str) -> str | None:
    """The term a definition question asks about ("What is albedo?" -> "albedo"), else None."""
    return asked_term(question) if question_kind(question) == "definition" else None


def asked_term(question: str) -> str:
    """The term a definition question asks about: "What is an aardvark?" -> "aardvark"."""
    term = re.sub(rf"^\s*(?:{_WHAT_IS}|define|what\s+does)\s+(?:an?\s+|the\s+)?"
                  r"(?:(?:word|term)\s+(?=\S))?", "", question.strip().rstrip("?").lower())
    tail = r"\s+(?:mean|in python.*|exactly|actually|really)$" if _WHAT_DOES.match(question) else \
        r"\s+(?:in python.*|exactly|actually|really)$"  # "What is the arithmetic mean?" asks about "arithmetic mean"
    while (shorter := re.sub(tail, "", term)) != term:
        term = shorter  # "the word aardvark actually mean" -> "aardvark"
    return term.strip(" `'\"")


# "Name mangling is helpful for ...", "Albedo is an important concept in ...": they judge X, they define nothing
_NOT_EVALUATION = (r"(?!\s+(?:an?\s+)?(?:very\s+|also\s+|especially\s+|particularly\s+)?(?:helpful|useful|handy|"
                   r"convenient|important|necessary|possible|common|recommended|required|optional|needed|good|bad|"
                   r"better|best|preferred|similar|faster|slower|easier)\b)")


def defining_pattern(question: str) -> re.Pattern | None:
    """A pattern (for ``search``) for sentences that define the term a definition question asks about: "X is/are/
    refers to ..." at the start, the term possibly marked up ("A *namespace* is"), after a field ("In statistics,
    the mean ... is"), or followed by a parenthesis or an aside between commas ("The mean (or average) is"); or
    "... is called (an) X", or the term followed by an apposition anywhere ("... create a virtual environment, a
    self-contained directory tree that ..."). Other words between the term and its verb make it no definition ("The
    namespace containing the built-in names is created ..."), and so does a judgement after the verb ("Name mangling is helpful
    for ..."). A possessive term is found either way round ("an element's atomic number": "the atomic number of a
    chemical element (...) is ..."). A question about a word ("what does the word aardvark mean?") is answered by
    what the word means: the term, then within 80 characters "means / meaning / literally / comes from / derived
    from / named after" ('The name "aardvark" comes from earlier Afrikaans and means "earth pig"')."""
    term = asked_term(question)
    if not term:
        return None
    if _ASKS_WORD.search(question):  # "what does the word aardvark mean": what the word means, not what the thing is
        return re.compile(r"[`*\"']?" + re.escape(term) + r"[`*\"']?(?!\w)[^.]{0,80}?\b(?:means?|meaning|literally|lit\.|"
                          r"comes?\s+from|derived\s+from|named\s+after)", re.IGNORECASE)
    marked = r"[`*]?" + re.escape(term) + r"s?[`*]?"
    possessive = re.match(r"^([\w-]+)'s\s+(.+)$", term)  # "element's atomic number": "the atomic number of an element"
    if possessive:
        owner, thing = (re.escape(part) for part in possessive.groups())
        marked = rf"(?:{marked}|{thing}\s+of\s+(?:an?\s+|the\s+)?(?:[\w-]+\s+)?{owner}s?)"
    return re.compile(r"^\W*(?:in\s[^,.]{1,50},\s*)?(?:an?\s+|the\s+)?" + marked + r"(?:\s*\([^)]{0,80}\))?"
                      r"(?:,[^,.]{0,80},)?\s+(?:(?:is|are|was|were)\b" + _NOT_EVALUATION +
                      r"|refers?\s+to|means?|describes?)\b"
                      r"|\b(?:is|are)\s+(?:called|known\s+as|termed|named)\s+(?:an?\s+|the\s+)?" + marked
                      + r"(?:\W|$)"
                      r"|(?<!\w)" + marked + r",\s+an?\s+(?:[\w-]+\s+){0,6}(?:that|which|who|of|for|with|used)\b",
                      re.IGNORECASE)


_OF_QUESTION = re.compile(r"^\s*(?:what|which)(?:'s|\s+(?:is|was|are|were))\s+the\s+((?:[\w-]+\s+){0,3}[\w-]+)\s+of\s+"
                          r"(?:the\s+)?((?:[\w-]+\s+){0,4}[\w-]+)\s*\??\s*$", re.IGNORECASE)


def stating_pattern(question: str) -> re.Pattern | None:
    """For "what is the X of Y?" questions, a pattern (for ``search``) for sentences that state it: "X of [the] Y
    [, aside,] is/was/are/were ..." or "Y's X is ...", one more word allowed between X's words ("What's the average
    albedo of the earth?": "The average overall albedo of Earth, its planetary albedo, is 30 to 35%", not "Earth's
    average surface temperature due to its albedo ... is about 15 °C"); None for other questions."""
    match = _OF_QUESTION.match(question)
    if not match:
        return None
    thing = r"\s+(?:[\w-]+\s+)?".join(re.escape(word) for word in match.group(1).split())
    owner = r"\s+".join(re.escape(word) for word in match.group(2).split())
    verb = r"\s+(?:is|was|are|were)\b"
    return re.compile(rf"\b{thing}\s+of\s+(?:the\s+)?{owner}\b(?:,[^,.]{{0,60}},)?{verb}|\b{owner}'s\s+{thing}{verb}",
                      re.IGNORECASE)
