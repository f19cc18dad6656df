"""The words of the prompt grammar (:mod:`handx_robot.generate.grammar`): the lexicon, tokens,
normalization, clause splitting and the canonical phrasings a refusal suggests.

Tags of a :class:`Token`: SIDE (left, right, both, other), FINGER, FINGERWORD (finger / fingers), PART
(tip, pad, palm, back, knuckles, wrist), HAND, SHAPE, STATE (E / H / C), VERB (its lemma; the category
in :data:`VERBS`), OBJ (:data:`OBJECTS`), DIR, COUNT, NUM, DUR (seconds), SPEED, SIZE, OTHERS
("remaining"), EACHOTHER, NUMBERWORD, STOP (function words) and WORD (anything else: unused content).
"""

from __future__ import annotations

import dataclasses
import difflib
import re

__all__ = ["CANONICAL", "CONTENT_EXEMPT", "FINGERS", "MAX_COUNT", "NUMBER_SHAPES", "OBJECTS", "SHAPES", "STATE_NAMES",
           "STOPWORDS", "VERBS", "Token", "normalize",
           "split", "suggestions", "tokenize"]  # fmt: skip

#: Imagined objects: name -> (size in metres, grip). Grip ``hand`` = one-hand power grasp whose
#: aperture follows the size, ``pinch`` = a precision pinch, ``two_hands`` = held between both palms.
OBJECTS: dict[str, tuple[float, str]] = {
    "cup": (0.08, "hand"), "mug": (0.085, "hand"), "glass": (0.07, "hand"), "bottle": (0.07, "hand"),
    "can": (0.066, "hand"), "ball": (0.07, "hand"), "tennisball": (0.067, "hand"), "apple": (0.075, "hand"),
    "orange": (0.075, "hand"), "egg": (0.045, "hand"), "phone": (0.07, "hand"),
    "pen": (0.01, "pinch"), "pencil": (0.008, "pinch"), "marker": (0.015, "pinch"), "coin": (0.003, "pinch"),
    "key": (0.003, "pinch"), "card": (0.002, "pinch"),
    "box": (0.25, "two_hands"), "bigball": (0.22, "two_hands"), "basketball": (0.24, "two_hands"),
}  # fmt: skip
_OBJECT_WORDS = {"tennisball": "tennis ball", "bigball": "big ball"}

#: Named shapes: name -> finger states (thumb, index, middle, ring, pinky), E extended, H half, C curled.
SHAPES: dict[str, str] = {
    "fist": "CCCCC", "open": "EEEEE", "flat": "EEEEE", "point": "CECCC", "peace": "CEECC",
    "three": "CEEEC", "four": "CEEEE", "horns": "CECCE", "call_me": "ECCCE", "l_shape": "EECCC",
    "thumbs_up": "ECCCC", "thumbs_down": "ECCCC", "ok": "??EEE", "claw": "?HHHH", "cupped": "?HHHH",
}  # fmt: skip
NUMBER_SHAPES = {1: "point", 2: "peace", 3: "three", 4: "four", 5: "open"}
FINGERS = ("thumb", "index", "middle", "ring", "pinky")
STATE_NAMES = {"E": "extended", "H": "half", "C": "curled"}
MAX_COUNT = 10


# -- lexicon ------------------------------------------------------------------------------------
def _forms(base: str, *extra: str) -> set[str]:
    """Inflections of a regular verb: base, -s/-es, -ing, -ed (+ irregular ``extra``)."""
    out = {base, *extra}
    if re.search(r"(s|sh|ch|x|z)$", base):
        out.add(base + "es")
    else:
        out.add(base + "s")
    stem = base[:-1] if base.endswith("e") and not base.endswith("ee") else base
    if re.search(r"[^aeiou][aeiou][bdgmnpt]$", base) and len(base) <= 4:
        stem = base + base[-1]
    out.update({stem + "ing", stem + "ed" if not stem.endswith("e") else stem + "d"})
    return out


#: Verb lemma -> category; irregular forms in :data:`_IRREGULAR`.
VERBS: dict[str, str] = {
    # shapes and finger states
    "make": "shape", "form": "shape", "show": "shape", "do": "shape", "give": "give", "holdup": "shape",
    "sign": "shape", "display": "shape", "present": "shape", "flash": "shape",
    "extend": "state_e", "raise": "raise", "straighten": "state_e", "stretch": "state_e", "spread": "spread",
    "curl": "state_c", "bend": "state_c", "fold": "state_c", "tuck": "state_c", "flex": "state_c",
    "close": "close", "open": "open", "clench": "close", "lift": "raise", "lower": "lower",
    "keep": "keep", "stay": "keep", "remain": "keep", "hold": "hold", "be": "keep",
    # contacts
    "tap": "tap", "poke": "tap", "touch": "touch", "meet": "touch", "contact": "touch", "press": "press",
    "push": "push", "rub": "rub", "stroke": "rub", "brush": "rub", "slide": "slide", "pinch": "pinch",
    "squeeze": "grasp",
    # hand motion
    "move": "move", "bring": "move", "pull": "move", "shift": "move", "draw": "draw", "circle": "circle",
    "trace": "draw", "write": "write", "wave": "wave", "shake": "shake", "turn": "turn", "rotate": "rotate",
    "twist": "twist", "flip": "flip", "point": "point", "count": "count",
    # two hands
    "clap": "clap", "applaud": "clap", "interlock": "interlock", "interlace": "interlock", "clasp": "interlock",
    "steeple": "steeple", "cross": "cross", "join": "join", "put": "put", "place": "put",
    # objects
    "grasp": "grasp", "grab": "grasp", "grip": "grasp", "pickup": "grasp", "take": "grasp", "seize": "grasp",
    "pass": "pass", "handover": "pass", "transfer": "pass", "hand": "pass",
    # rest
    "play": "play", "drum": "play", "type": "play",
    "holdstill": "still", "pause": "still", "rest": "still", "wait": "still", "freeze": "still",
}  # fmt: skip
_IRREGULAR = {
    "make": ("made",), "hold": ("held",), "give": ("gave", "given"), "take": ("took", "taken"),
    "bring": ("brought",), "draw": ("drew", "drawn"), "shake": ("shook", "shaken"), "show": ("shown",),
    "spread": ("spread",), "do": ("does", "did", "done"), "meet": ("met",), "bend": ("bent",),
    "put": ("put", "putting"), "be": ("is", "are", "was", "were", "being"), "write": ("wrote", "written", "writing"),
    "slide": ("slid", "sliding"), "seize": ("seizing",), "rub": ("rubbing", "rubbed"), "tap": ("tapping", "tapped"),
    "grab": ("grabbing", "grabbed"), "clap": ("clapping", "clapped"), "grip": ("gripping", "gripped"),
    "flip": ("flipping", "flipped"), "stay": ("stays", "stayed"),
}  # fmt: skip
_VERB_FORMS: dict[str, str] = {}
for _lemma in VERBS:
    for _f in _forms(_lemma, *_IRREGULAR.get(_lemma, ())):
        _VERB_FORMS.setdefault(_f, _lemma)

_FINGER_WORDS = {
    "thumb": "thumb", "thumbs": "thumb", "index": "index", "pointer": "index", "forefinger": "index",
    "forefingers": "index", "middle": "middle", "ring": "ring", "pinky": "pinky", "pinkie": "pinky",
    "pinkies": "pinky", "pinkys": "pinky",
}  # fmt: skip
_PART_WORDS = {
    "fingertip": "tip", "fingertips": "tip", "tip": "tip", "tips": "tip", "pad": "pad", "pads": "pad",
    "palm": "palm", "palms": "palm", "backhand": "back", "knuckle": "knuckles", "knuckles": "knuckles",
    "wrist": "wrist", "wrists": "wrist",
}  # fmt: skip
_STATE_WORDS = {
    "extended": "E", "straight": "E", "stretched": "E", "raised": "E", "outstretched": "E", "open": "E",
    "spread": "E", "upright": "E", "curled": "C", "bent": "C", "folded": "C", "tucked": "C", "closed": "C",
    "flexed": "C", "clenched": "C", "halfbent": "H",
}  # fmt: skip
_SHAPE_WORDS = {
    "fist": "fist", "fists": "fist", "peacesign": "peace", "horns": "horns", "callme": "call_me",
    "lshape": "l_shape", "thumbsup": "thumbs_up", "thumbsdown": "thumbs_down", "oksign": "ok", "claw": "claw",
    "claws": "claw", "cupped": "cupped", "flat": "flat", "openhand": "open", "point": "point", "pointing": "point",
}  # fmt: skip
_DIRECTIONS = {
    "up": "up", "upward": "up", "upwards": "up", "down": "down", "downward": "down", "downwards": "down",
    "leftward": "left", "rightward": "right", "forward": "forward", "forwards": "forward", "ahead": "forward",
    "out": "forward", "back": "back", "backward": "back", "backwards": "back", "bodyward": "back",
    "inward": "inward", "outward": "outward", "apart": "outward", "circle": "circle", "circles": "circle",
    "over": "over", "together": "together",
}  # fmt: skip
_NUMBERS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9,
            "ten": 10, "a": 1, "an": 1}  # fmt: skip
_SPEED = {"slowly": 0.6, "slow": 0.6, "gently": 0.75, "softly": 0.75, "calmly": 0.7, "quickly": 1.6,
          "fast": 1.6, "rapidly": 1.8, "briskly": 1.5, "firmly": 1.0, "lightly": 1.0, "smoothly": 0.85}  # fmt: skip
_SIZE = {"wide": 1.4, "widely": 1.4, "big": 1.4, "large": 1.4, "broadly": 1.4, "small": 0.6, "slightly": 0.6,
         "little": 0.6, "tiny": 0.5, "bit": 1.0}  # fmt: skip
_REPEAT = {"once": 1, "twice": 2, "thrice": 3, "repeatedly": 3, "again": 1}
#: Words that carry no content of their own (articles, prepositions, pronouns, auxiliaries).
STOPWORDS = frozenset(
    "the a an with of on onto to into against at from in by its his her their my your this that it them "
    "they he she one and then so is are be very both each other others another finger fingers hand hands "
    "using use uses used same time all while as also just well please s up off along across about around "
    "for which who so slightly there together between behind motion movement gesture way".split()
)
CONTENT_EXEMPT = frozenset({"finger", "fingers", "hand", "hands", "up", "over", "together", "back", "out"})

# Multi-word phrases rewritten to single tokens before the word scan.
_REWRITES: tuple[tuple[str, str], ...] = (
    (r"\bthumbs?[ -]?ups?\b", "thumbsup"),
    (r"\bthumbs?[ -]?downs?\b", "thumbsdown"),
    (r"\b(?:peace|v|victory)[ -](?:sign|gesture)s?\b|\bpeace\b", "peacesign"),
    (r"\b(?:rock|devil)[ -]?(?:horns|sign)\b|\bhorns[ -]sign\b", "horns"),
    (r"\bcall[ -]me(?:[ -](?:sign|gesture))?\b|\bshaka(?:[ -]sign)?\b", "callme"),
    (r"\b(?:an? )?l[ -]?(?:shape|sign)\b|\bthe letter l\b", "lshape"),
    (r"\b(?:ok|okay)[ -]?(?:sign|gesture)?\b", "oksign"),
    (r"\b(?:half|partly|partially|slightly)[ -](?:bent|curled|closed|flexed)\b", "halfbent"),
    (r"\bopen (?:palm|hand)s?\b", "openhand"),
    (r"\bflat (?:palm|hand)s?\b", "flat"),
    (r"\bcupped (?:palm|hand)s?\b", "cupped"),
    (r"(?<!left )(?<!right )(?<!the )(?<!both )(?<!other )(?<!each )(?<!his )(?<!her )(?<!its )"
     r"\bhands? (?:it |the \w+ |an? \w+ )?over\b", "handover"),
    (r"\bin front of (?:the |his |her |their )?(?:body|chest|torso|face)\b|\bin the air\b|\bin mid-?air\b", " "),
    (r"\bpick(?:s|ed|ing)? up\b", "pickup"),
    (r"\bhold(?:s|ing)? up\b", "holdup"),
    (r"\b(?:hold|stay|keep|remain)(?:s|ing)? (?:the hands? )?still\b|\bdo(?:es)? nothing\b", "holdstill"),
    (r"\bto (?:the|his|her|their) left\b(?! ?(?:hand|palm|thumb|index|middle|ring|pinky|wrist|knuckle|finger|pad|backhand|side|one))|\bleftwards?\b",
     "leftward"),
    (r"\bto (?:the|his|her|their) right\b(?! ?(?:hand|palm|thumb|index|middle|ring|pinky|wrist|knuckle|finger|pad|backhand|side|one))|\brightwards?\b",
     "rightward"),
    (r"\btowards? (?:the body|the chest|the torso|himself|herself|themselves|oneself|the self|me)\b|\bcloser\b",
     "bodyward"),
    (r"\baway from (?:the body|the chest|the torso|himself|herself|themselves|oneself|me)\b", "forward"),
    (r"\btowards? each other\b|\btowards? one another\b|\btowards? the other hand\b|\binwards?\b", "inward"),
    (r"\baway from each other\b|\baway from one another\b|\boutwards?\b", "outward"),
    (r"\bin (?:a )?(?:small |big |wide |large )?circ(?:le|les|ular motion|ular path)\b", "circle"),
    (r"\bback of (?:the |his |her |its |each |their |one's |my |your )?((?:left|right|other) )?hands?\b",
     r"\1backhand"),
    (r"\bbacks of (?:the |his |her |their |both )?hands\b", "both backhand"),
    (r"\b(?:tip|tips) of (?:the |his |her |its |each |their )?((?:left|right|other) )?(\w+ )?fingers?\b",
     r"\1\2fingertip"),
    (r"\b(?:tip|tips) of (?:the |his |her |its |each |their )?((?:left|right|other) )?thumbs?\b",
     r"\1thumb tip"),
    (r"\b(?:pad|pads) of (?:the |his |her |its |each |their )?((?:left|right|other) )?(\w+ )?(fingers?|thumbs?)\b",
     r"\1\2\3 pad"),
    (r"\bfinger ?pads?\b", "pad"),
    (r"\bfinger ?tips\b", "fingertips"),
    (r"\bfinger ?tip\b", "fingertip"),
    (r"\blittle fingers?\b", "pinky"),
    (r"\bpointer fingers?\b|\bfirst fingers?\b", "index"),
    (r"\btennis ball\b", "tennisball"),
    (r"\b(?:big|large|huge) ball\b|\bbeach ball\b", "bigball"),
    (r"\beach other\b|\bone another\b", "eachother"),
    (r"\bthe rest of the fingers\b", "the remaining fingers"),
    (r"\beach hand\b|\bevery hand\b", "both hands"),
    (r"\bx\s*(\d+)\b", r"\1 times"),
    (r"\bthe other hand's\b", "the other"),
    (r"\b(left|right)-hand(ed)?\b", r"\1"),
)
_DURATION = re.compile(
    r"\bfor (?:about |roughly |around )?(\d+(?:\.\d+)?|one|two|three|four|five|six|seven|eight|nine|ten|a|an|half a)"
    r"(?: and a half)? (?:s|sec|secs|seconds?)\b|\bfor a (?:moment|while)\b|\bbriefly\b"
)
_TIMES = re.compile(r"\b(\d+|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|[1-9]\d*)\s*(?:times|x)\b")


@dataclasses.dataclass
class Token:
    """One word of a clause: ``tag`` (what it is), ``value`` and whether the plan used it."""

    word: str
    tag: str
    value: object = None
    used: bool = False


def _num(word: str) -> float:
    if word in ("a", "an"):
        return 1.0
    if word == "half a":
        return 0.5
    return float(word) if re.fullmatch(r"\d+(?:\.\d+)?", word) else float(_NUMBERS.get(word, 0))


def normalize(text: str) -> str:
    """Lower case, unified quotes and spaces, phrase rewrites (``thumbs up`` -> ``thumbsup`` ...)."""
    t = str(text).lower().replace("’", "'").replace("‘", "'").replace("–", " ").replace("—", " ")
    t = re.sub(r"'s\b", "", t)
    t = re.sub(r"[\"()\[\]!?]", " ", t)
    for pattern, repl in _REWRITES:
        t = re.sub(pattern, repl, t)
    return re.sub(r"\s+", " ", t).strip()


def tokenize(clause: str) -> list[Token]:
    """Tokens of one (normalized) clause, tagged from the lexicon; durations and counts pre-read."""
    text = clause
    pre: list[Token] = []
    m = _DURATION.search(text)
    if m:
        secs = 1.0 if m.group(1) is None else _num(m.group(1)) + (0.5 if "and a half" in m.group(0) else 0.0)
        pre.append(Token(m.group(0), "DUR", max(secs, 0.1)))
        text = text[: m.start()] + " " + text[m.end() :]
    for m in list(_TIMES.finditer(text))[:1]:
        pre.append(Token(m.group(0), "COUNT", int(_num(m.group(1)))))
        text = text[: m.start()] + " " + text[m.end() :]
    tokens: list[Token] = []
    for word in re.findall(r"[a-z]+(?:\.\d+)?|\d+(?:\.\d+)?", text):
        tokens.append(_tag(word))
    return pre + tokens


def _tag(w: str) -> Token:
    if w in ("left", "right", "both", "other"):
        return Token(w, "SIDE", w)
    if w in _FINGER_WORDS:
        return Token(w, "FINGER", _FINGER_WORDS[w])
    if w in _PART_WORDS:
        return Token(w, "PART", _PART_WORDS[w])
    if w in ("hand", "hands"):
        return Token(w, "HAND", w)
    if w in ("remaining", "others"):
        return Token(w, "OTHERS", w)
    if w in _SHAPE_WORDS and w not in ("point", "pointing"):
        return Token(w, "SHAPE", _SHAPE_WORDS[w])
    if w in _OBJECT_WORDS or w in OBJECTS or w.rstrip("s") in OBJECTS:
        name = w if w in OBJECTS else w.rstrip("s")
        return Token(w, "OBJ", name)
    if w in _STATE_WORDS and w not in ("open", "spread"):
        return Token(w, "STATE", _STATE_WORDS[w])
    if w in _VERB_FORMS:
        return Token(w, "VERB", _VERB_FORMS[w])
    if w in _DIRECTIONS:
        return Token(w, "DIR", _DIRECTIONS[w])
    if w in _REPEAT:
        return Token(w, "COUNT", _REPEAT[w])
    if w in _SPEED:
        return Token(w, "SPEED", _SPEED[w])
    if w in _SIZE:
        return Token(w, "SIZE", _SIZE[w])
    if w in _NUMBERS and w not in ("a", "an", "one") or re.fullmatch(r"\d+", w):
        return Token(w, "NUM", int(_num(w)))
    if w in ("hand", "hands"):
        return Token(w, "HAND", w)
    if w in ("finger", "fingers"):
        return Token(w, "FINGERWORD", w)
    if w in ("remaining", "rest", "others"):
        return Token(w, "OTHERS", w)
    if w == "eachother":
        return Token(w, "EACHOTHER", w)
    if w in ("number", "numbers"):
        return Token(w, "NUMBERWORD", w)
    if w in STOPWORDS or w in ("one",):
        return Token(w, "STOP", w)
    return Token(w, "WORD", w)


# -- suggestions -------------------------------------------------------------------------------
#: Canonical phrasings, one per construction: the suggestions of a refusal are the closest of these.
CANONICAL: tuple[str, ...] = (
    "make a fist with the right hand", "open the left hand", "show a peace sign with the left hand",
    "make horns with the right hand", "show the call-me sign with the left hand", "make an L shape with the right hand",
    "give a thumbs up with the right hand", "give a thumbs down with the left hand", "make the OK sign",
    "make a claw with the right hand", "show a cupped hand", "show three fingers with the left hand",
    "count to five on the right hand", "extend the index and middle fingers of the right hand",
    "curl the right pinky", "the left thumb stays extended",
    "pinch the right thumb and index finger twice", "the right index fingertip taps the left palm three times",
    "press the right palm against the back of the left hand for two seconds",
    "rub the left thumb against the right knuckles", "slide the right index fingertip along the left palm",
    "the right middle fingertip touches its own palm", "clap three times", "put the palms together",
    "rub the palms together", "interlock the fingers", "touch the fingertips of both hands together",
    "cross the wrists", "wave hello with the right hand", "shake both hands", "move the left hand up",
    "move the right hand to the left", "push the right hand forward", "pull the left hand toward the body",
    "move the right hand in a circle", "turn the palms up", "flip the left hand over", "twist the right wrist twice",
    "point forward with the right index finger", "grasp a cup with the right hand", "pick up a pen with the left hand",
    "hold a box with both hands", "pass a ball from the left hand to the right hand", "write in the air",
    "hold still for two seconds",
)  # fmt: skip


def suggestions(text: str, k: int = 3) -> tuple[str, ...]:
    """The ``k`` canonical phrasings closest to ``text`` (word overlap, then character similarity)."""
    words = set(re.findall(r"[a-z]+", text.lower())) - STOPWORDS

    def score(c: str) -> float:
        cw = set(re.findall(r"[a-z]+", c)) - STOPWORDS
        overlap = len(words & cw) / max(1, len(words | cw))
        return overlap + 0.3 * difflib.SequenceMatcher(None, text.lower(), c).ratio()

    return tuple(sorted(CANONICAL, key=score, reverse=True)[:k])


# -- clause splitting --------------------------------------------------------------------------
_SEQ = re.compile(
    r"\s*(?:;|\.(?!\d)|,?\s*\band then\b|,?\s*\bthen\b|,?\s*\bafter that\b|,?\s*\bafterwards\b|,?\s*\bafterward\b|"
    r",?\s*\bnext\b|,?\s*\band finally\b|,?\s*\bfinally\b|,?\s*\bbefore\b|,?\s*\bfollowed by\b|,\s*(?:and\s+)?)\s*"
)
_PAR = re.compile(
    r"\s*(?:\bwhile\b|\bwhilst\b|\band at the same time\b|\bat the same time as\b|\bat the same time\b|"
    r"\bmeanwhile\b|\bsimultaneously\b|,?\s*\bas\b(?= (?:the|his|her|its|both|each) ))\s*"
)
_KEEP_LEAD = re.compile(r"^(?:keeping|holding|with)\b")


_HAND_ONLY = re.compile(r"^(?:with|using) (?:the |his |her |their |your )?(?:left|right|both) hands?$")


def split(prompt: str) -> list[list[str]]:
    """Normalized prompt -> sequential steps of parallel clause strings."""
    steps: list[list[str]] = []
    pending = ""
    for part in _SEQ.split(prompt):
        part = part.strip(" ,.")
        if not part:
            continue
        if _HAND_ONLY.match(part):  # "with the left hand, pinch twice"
            pending = part
            continue
        if pending:
            part, pending = f"{part} {pending}", ""
        pars = [p.strip(" ,.") for p in _PAR.split(part) if p.strip(" ,.")]
        # a trailing "keeping the other fingers curled" / "with the thumb extended" runs with its clause
        if steps and pars and _KEEP_LEAD.match(pars[0]) and not re.match(r"^with (?:the|his|her) (?:left|right) hand\b", pars[0]):
            steps[-1].extend(pars)
            continue
        if pars:
            steps.append(pars)
    return steps
