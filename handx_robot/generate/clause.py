"""Clauses of a prompt: the noun phrases that name hands, fingers and parts (:func:`mentions`), the
:class:`Clause` being read, and the helpers every action builder uses (which hands, modifiers, counts,
finger states). Part of the prompt grammar (:mod:`handx_robot.generate.grammar`)."""

from __future__ import annotations

import dataclasses

from handx_robot.generate.lexicon import FINGERS, MAX_COUNT, STATE_NAMES, VERBS, Token, tokenize

# -- mentions of hands, fingers and parts ------------------------------------------------------
_MENTION_TAGS = frozenset({"SIDE", "FINGER", "PART", "HAND", "FINGERWORD", "OTHERS"})
_POSSESSIVE = frozenset({"its", "his", "her", "their", "own", "my", "your"})


@dataclasses.dataclass
class Mention:
    """A noun phrase naming a hand, fingers or a part: ``the tip of the left index finger``."""

    side: str | None = None  # left, right, both, other, self (its / own), or None
    fingers: list[str] = dataclasses.field(default_factory=list)
    part: str | None = None  # tip, pad, palm, back, knuckles, wrist
    hand: bool = False
    others: bool = False  # "the other / remaining fingers"
    plural: bool = False
    all_fingers: bool = False  # "the fingers"
    start: int = 0
    end: int = 0
    after_with: bool = False
    tokens: list[Token] = dataclasses.field(default_factory=list)

    def use(self) -> None:
        for t in self.tokens:
            t.used = True


def mentions(tokens: list[Token]) -> list[Mention]:
    """The noun phrases of a clause, in order."""
    out: list[Mention] = []
    i, n = 0, len(tokens)
    while i < n:
        t = tokens[i]
        if t.tag not in _MENTION_TAGS:
            i += 1
            continue
        m = Mention(start=i)
        if i > 0 and tokens[i - 1].word in _POSSESSIVE:
            m.side = "self"
            m.tokens.append(tokens[i - 1])
        j = i
        while j < n:
            u = tokens[j]
            if u.tag == "SIDE":
                k = j + 1
                while k < n and tokens[k].tag == "NUM":  # "the other three fingers"
                    k += 1
                nxt = tokens[k] if k < n else None
                if u.value == "other" and nxt is not None and nxt.tag in ("FINGERWORD", "FINGER") and not m.fingers:
                    m.others = True
                elif u.value == "both" and m.side in ("left", "right"):
                    pass
                else:
                    m.side = u.value if m.side in (None, "self") or u.value != "other" else m.side
            elif u.tag == "FINGER":
                m.fingers.append(u.value)
                m.plural = m.plural or u.word.endswith("s")
            elif u.tag == "PART":
                m.part = u.value
                m.plural = m.plural or u.word.endswith("s") and u.word not in ("backhand",)
            elif u.tag == "HAND":
                m.hand = True
                m.plural = m.plural or u.word == "hands"
            elif u.tag == "FINGERWORD":
                if not m.fingers:
                    m.all_fingers = True
                m.plural = m.plural or u.word == "fingers"
            elif u.tag == "OTHERS":
                m.others = True
            elif u.word in ("and", ",") and j + 1 < n and tokens[j + 1].tag == "FINGER" and m.fingers:
                pass
            elif u.word == "of" and j + 1 < n and any(
                tokens[k].tag in ("SIDE", "HAND") for k in range(j + 1, min(n, j + 4))
            ) and (m.fingers or m.part or m.all_fingers or m.others):
                pass
            elif u.word in ("the", "each", "his", "her", "its", "their") and j + 1 < n and tokens[j + 1].tag in _MENTION_TAGS and j > i:
                pass
            else:
                break
            m.tokens.append(u)
            j += 1
        m.end = j
        if m.others and m.fingers:
            m.others = False
        m.after_with = i > 0 and tokens[i - 1].word in ("with", "using") or (
            i > 1 and tokens[i - 1].word in ("the", "his", "her", "its", "their") and tokens[i - 2].word in ("with", "using")
        )
        if m.side == "self" and m.plural and not m.fingers and (m.hand or m.part in ("palm", "back", "wrist", "knuckles", "tip")):
            m.side = "both" if (i < 2 or tokens[i - 1].word in ("your", "my", "their")) else m.side
        if m.side == "both" or (m.plural and m.side is None and (m.hand or m.part in ("palm", "back", "wrist", "knuckles"))
                                and not m.fingers):
            m.side = "both"
        out.append(m)
        i = max(j, i + 1)
    return out


# -- the clause being read, and the helpers of every action builder ------------------------------
@dataclasses.dataclass
class Clause:
    text: str
    tokens: list[Token]
    mentions: list[Mention]
    notes: list[str]
    problems: list[str]
    context: dict = dataclasses.field(default_factory=dict)

    def first(self, tag: str) -> Token | None:
        return next((t for t in self.tokens if t.tag == tag), None)

    def all(self, tag: str) -> list[Token]:
        return [t for t in self.tokens if t.tag == tag]

    def take(self, tag: str):
        t = self.first(tag)
        if t is None:
            return None
        t.used = True
        return t.value

    def word(self, *words: str) -> Token | None:
        return next((t for t in self.tokens if t.word in words), None)

    def take_word(self, *words: str) -> bool:
        t = self.word(*words)
        if t is not None:
            t.used = True
        return t is not None


def has_known_verb(clause: str) -> bool:
    """Whether a (normalized) clause has a verb the grammar knows; only clauses without one may be read
    by the open-vocabulary matcher."""
    toks = tokenize(clause)
    return verb_of(Clause(clause, toks, mentions(toks), [], [])) is not None


def verb_of(c: Clause) -> Token | None:
    verbs = [t for t in c.tokens if t.tag == "VERB"]
    if not verbs and c.tokens and c.tokens[0].word in ("hand", "hands") and (
        c.first("OBJ") is not None or (len(c.tokens) > 1 and c.tokens[1].word in ("it", "them"))
    ):
        c.tokens[0].tag, c.tokens[0].value = "VERB", "pass"  # "hand the cup to the left hand"
        verbs = [c.tokens[0]]
    for i in range(1, len(c.tokens)):
        if not verbs and c.tokens[i].tag == "HAND" and c.tokens[i - 1].tag == "HAND":
            c.tokens[i].tag, c.tokens[i].value = "VERB", "pass"  # "the left hand hands a pen to ..."
            verbs = [c.tokens[i]]
    # a keep-verb is the main verb only when nothing else is
    main = [t for t in verbs if VERBS[t.value] not in ("keep",)] or verbs
    return main[0] if main else None


def subject_side(c: Clause, verb: Token | None) -> str | None:
    vi = c.tokens.index(verb) if verb is not None else len(c.tokens)
    for m in c.mentions:
        if m.start < vi and m.side in ("left", "right", "both"):
            return m.side
    for m in c.mentions:
        if m.hand and m.side in ("left", "right", "both"):
            return m.side
    for m in c.mentions:
        if m.side in ("left", "right", "both"):
            return m.side
    return None


def hand_sides(c: Clause, verb: Token | None, default_note: str) -> tuple[str, ...]:
    side = subject_side(c, verb)
    for m in c.mentions:
        if m.side in ("left", "right", "both") and (m.hand or m.side == side or m.part or m.fingers or m.all_fingers):
            for t in m.tokens:
                if t.tag in ("SIDE", "HAND"):
                    t.used = True
    for t in c.tokens:
        if t.tag == "HAND":
            t.used = True
    if side == "both":
        return ("left", "right")
    if side in ("left", "right"):
        return (side,)
    if any(m.plural and (m.hand or m.part) for m in c.mentions):
        return ("left", "right")
    if default_note != "keep":  # a keep clause takes the hand of the clause it runs with
        c.notes.append(f"{default_note}: no hand named, the right hand does it")
    return ("right",)


def modifiers(c: Clause) -> dict:
    speed, amp = 1.0, 1.0
    for t in c.all("SPEED"):
        speed *= t.value
        t.used = True
    very = c.word("very", "really", "extremely")
    if very is not None and speed != 1.0:
        speed = speed * speed
        very.used = True
    for t in c.all("SIZE"):
        amp *= t.value
        t.used = True
    dur = c.take("DUR")
    return {"speed": float(min(max(speed, 0.3), 3.0)), "amplitude": float(min(max(amp, 0.3), 2.5)), "hold_s": dur}


def take_count(c: Clause, default: int = 1) -> int:
    v = c.take("COUNT")
    if v is None:
        return default
    if not 1 <= int(v) <= MAX_COUNT:
        c.problems.append(f"{int(v)} repetitions: allowed 1..{MAX_COUNT}")
        return default
    return int(v)


def finger_states(c: Clause, state: str | None) -> tuple[tuple[str, str], ...]:
    """Finger states named in the clause: each finger mention gets the nearest state word after it."""
    out: dict[str, str] = {}
    st_tokens = c.all("STATE")
    for m in c.mentions:
        fingers = list(m.fingers)
        if m.all_fingers and not fingers:
            fingers = ["index", "middle", "ring", "pinky"]
        if m.others:
            fingers = [f for f in FINGERS if f not in out]
        if not fingers or m.part in ("palm", "back", "knuckles", "wrist"):
            continue
        s = state
        later = [t for t in st_tokens if c.tokens.index(t) >= m.end] or st_tokens
        if later:
            s = STATE_NAMES[later[0].value]
            later[0].used = True
        elif s is None:
            d = next((t for t in c.tokens[m.end :] if t.tag == "DIR" and t.value in ("up", "down", "forward")), None)
            if d is not None:
                s = "curled" if d.value == "down" else "extended"
                d.used = True
        for t in c.tokens[max(0, m.start - 1) : m.end]:
            if t.tag == "NUM":
                t.used = True
        if s is None:
            continue
        m.use()
        for f in fingers:
            out[f] = s
    return tuple((f, out[f]) for f in FINGERS if f in out)


def make_action(primitive: str, sides, c: Clause, **kw):
    from handx_robot.generate.parser import Action

    mods = modifiers(c)
    mods.update({k: kw.pop(k) for k in list(kw) if k in ("speed", "amplitude", "hold_s")})
    return Action(primitive=primitive, sides=tuple(sides), text=c.text, **mods, **kw)


def use_both(c: Clause) -> None:
    for m in c.mentions:
        if m.side in ("both", None) or m.hand:
            m.use()
    for t in c.tokens:
        if t.tag == "DIR" and t.value == "together" or t.tag == "EACHOTHER":
            t.used = True
        if t.tag == "FINGERWORD" or t.tag == "HAND":
            t.used = True


def finger_mentions(c: Clause) -> list[Mention]:
    return [m for m in c.mentions if (m.fingers or m.all_fingers or m.others) and m.part is None]


def contact_mentions(c: Clause) -> list[Mention]:
    return [m for m in c.mentions if m.part is not None or m.fingers]


def states_tuple(pattern: str) -> tuple[tuple[str, str], ...]:
    return tuple((f, STATE_NAMES[s]) for f, s in zip(FINGERS, pattern) if s in STATE_NAMES)


def resolve_part(m: Mention, subject: str | None) -> tuple[str | None, list[str], str | None]:
    side = m.side
    if side == "self":
        side = subject
    part = m.part
    fingers = list(m.fingers)
    if m.all_fingers and not fingers:
        fingers = []
        part = part or "tip"
    if fingers and part is None:
        part = "tip"
    if not fingers and part in ("tip", "pad"):
        fingers = ["index"]  # "a fingertip": the index
    if part is None and m.hand:
        part = "hand"
    return side, fingers, part


OTHER_SIDE = {"left": "right", "right": "left"}
