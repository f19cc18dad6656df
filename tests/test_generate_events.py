"""The prompt event suite: generated motions contain exactly the events their words promise.

Events are read by the motion-data feature extractor (handx_robot.features), never by the generator.
Keyword prompts only (no embedding model), so the whole suite runs in seconds.
"""

from __future__ import annotations

import numpy as np
import pytest

from handx_robot import features
from handx_robot.generate import ComposerGenerator
from handx_robot.generate.geometry import interpenetration
from handx_robot.generate.parser import PRIMITIVES, parse_prompt
from handx_robot.handframe import palm_normal
from handx_robot.motion import SIDES

GEN = ComposerGenerator(self_check="raise", open_vocabulary=False)

# (prompt, checks); checks are tuples interpreted by _check below.
SUITE: list[tuple[str, list[tuple]]] = [
    ("pinch with the right thumb and index finger twice, then clap", [("pinch", "right", "index", 2), ("clap", 1)]),
    ("pinch", [("pinch", "right", "index", 1)]),
    ("pinch twice", [("pinch", "right", "index", 2)]),
    ("pinch 3 times with the left hand", [("pinch", "left", "index", 3)]),
    ("pinch the right thumb and middle finger four times", [("pinch", "right", "middle", 4)]),
    ("pinch the thumb and ring finger of the left hand twice", [("pinch", "left", "ring", 2)]),
    ("pinch with the little finger once", [("pinch", "right", "pinky", 1)]),
    ("quickly pinch the index finger five times", [("pinch", "right", "index", 5)]),
    ("slowly pinch with the left pinky twice", [("pinch", "left", "pinky", 2)]),
    ("tap the right thumb and middle finger 3 times", [("pinch", "right", "middle", 3)]),
    ("pinch with both hands twice", [("pinch", "left", "index", 2), ("pinch", "right", "index", 2)]),
    ("clap", [("clap", 1)]),
    ("clap twice", [("clap", 2)]),
    ("clap three times", [("clap", 3)]),
    ("clap your hands 5 times quickly", [("clap", 5)]),
    ("slowly clap twice", [("clap", 2)]),
    ("applaud 4 times", [("clap", 4)]),
    ("clap once then pinch with the left hand", [("clap", 1), ("pinch", "left", "index", 1)]),
    ("make a fist with the left hand", [("flexed", "left"), ("pinch", "left", "index", 0)]),
    ("make a fist", [("flexed", "right")]),
    ("make fists with both hands", [("flexed", "left"), ("flexed", "right")]),
    ("open your right hand", [("extended", "right")]),
    ("spread the fingers of both hands", [("extended", "left"), ("extended", "right")]),
    ("make a fist then open the hand", [("extended", "right")]),
    ("open the left hand then make a fist with it", [("flexed", "left")]),
    ("put your palms together", [("clap", 1), ("close", 0.03)]),
    ("press the palms together then clap twice", [("clap", 3)]),
    ("touch the fingertips of both hands", [("tips", 1)]),
    ("touch the fingertips together twice", [("tips", 2)]),
    ("steeple your fingers then clap", [("tips", 1), ("clap", 1)]),
    ("make the ok sign", [("pinch", "right", "index", 1)]),
    ("make an ok sign with the left hand", [("pinch", "left", "index", 1)]),
    ("rub your fingers", [("pinch", "right", "index", 4), ("pinch", "right", "middle", 3)]),
    ("rub the fingers of the left hand twice", [("pinch", "left", "index", 3), ("pinch", "left", "middle", 2)]),
    ("give a thumbs up", [("thumb_up", "right")]),
    ("thumbs up with the left hand", [("thumb_up", "left")]),
    ("point with the right index finger", [("point", "right")]),
    ("point forward with the left hand", [("point", "left")]),
    ("count to three", [("count", "right", 3)]),
    ("count to five with the left hand", [("count", "left", 5)]),
    ("show two fingers", [("count", "right", 2)]),
    ("hold up four fingers with the left hand", [("count", "left", 4)]),
    ("wave", [("wave", "right", 3)]),
    ("wave goodbye with the left hand twice", [("wave", "left", 2)]),
    ("wave with the left hand while making a fist with the right", [("wave", "left", 3), ("flexed", "right")]),
    ("flip the right hand", [("flip", "right")]),
    ("turn the palms up", [("palm_up", "left"), ("palm_up", "right")]),
    ("rotate the wrist twice", [("roll", "right")]),
    ("play the piano with the right hand", [("moves", "right")]),
    ("draw a circle in the air", [("moves", "right")]),
    ("write your name in the air with the left hand", [("moves", "left")]),
    ("grab a bottle with the right hand", [("grasp", "right")]),
    ("pick up a ball with the left hand", [("grasp", "left")]),
    ("interlock the fingers", [("tips", 1)]),
    ("hand the cup over to the left hand", [("grasp", "left"), ("close", 0.20)]),
    ("hold still for 2 seconds", [("still", None)]),
    ("pinch twice while waving with the left hand", [("pinch", "right", "index", 2), ("wave", "left", 3)]),
    ("move the right hand up, then down", [("moves", "right")]),
    ("shake the left hand", [("moves", "left")]),
    ("hold a box with both hands", [("moves", "right"), ("moves", "left")]),
    ("rub the palms together", [("clap", 1)]),
    ("cross the wrists", [("moves", "right")]),
    ("the right hand waves while the left thumb stays extended", [("wave", "right", 3)]),
]


def _events(motion):
    return features.contact_events(motion)


def _count(events, kind, a, b):
    return sum(1 for e in events if e.kind == kind and e.participants == frozenset((a, b)))


def _extended_fingers(hand: np.ndarray) -> int:
    flex = features.finger_flexion(hand)  # (5,) thumb, index, middle, ring, pinky
    return int(np.sum(flex < np.deg2rad(40)))


def _check_pinch(motion, ev, side, finger, n) -> None:
    got = _count(ev, "pinch", f"{side}_thumb_tip", f"{side}_{finger}_tip")
    assert got == n, f"{side} thumb–{finger} pinches: {got}, expected {n}"


def _check_clap(motion, ev, n) -> None:
    got = _count(ev, "palm_palm", "left_palm", "right_palm")
    assert got == n, f"palm–palm contacts: {got}, expected {n}"
    assert "palms touch" in "\n".join(features.describe_events(ev))


def _check_tips(motion, ev, n) -> None:
    claps = [(e.start, e.end) for e in ev if e.kind == "palm_palm"]
    spans = sorted(
        (e.start, e.end)
        for e in ev
        if e.kind == "inter_tip_tip" and not any(s <= e.start <= t for s, t in claps)  # a clap's tips meet too
    )
    merged: list[list[float]] = []
    for s, e in spans:
        if merged and s <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], e)
        else:
            merged.append([s, e])
    assert len(merged) == n, f"fingertip touches between hands: {len(merged)}, expected {n}"


def _check_flexed(motion, ev, side) -> None:
    op = float(features.hand_openness(motion.joints[-1, SIDES.index(side)]))
    assert op < 0.55, f"{side} openness at the end {op:.2f}"


def _check_extended(motion, ev, side) -> None:
    op = float(features.hand_openness(motion.joints[-1, SIDES.index(side)]))
    assert op > 0.85, f"{side} openness at the end {op:.2f}"


def _check_thumb_up(motion, ev, side) -> None:
    hand = motion.joints[-1, SIDES.index(side)]
    d = hand[16] - hand[14]
    assert d[1] / np.linalg.norm(d) > 0.6, f"thumb direction {d}"
    assert float(features.hand_openness(hand)) < 0.75


def _check_point(motion, ev, side) -> None:
    flex = features.finger_flexion(motion.joints[-1, SIDES.index(side)])
    assert flex[1] < np.deg2rad(30) and np.all(flex[2:] > np.deg2rad(150)), np.rad2deg(flex)


def _check_count(motion, ev, side, n) -> None:
    assert _extended_fingers(motion.joints[-1, SIDES.index(side)]) == n


def _swings(x: np.ndarray, min_excursion_m: float) -> int:
    """Direction reversals of ``x`` (metres) that move more than ``min_excursion_m`` on both sides."""
    turns, direction, hi, lo = 0, 0, x[0], x[0]
    for v in x[1:]:
        hi, lo = max(hi, v), min(lo, v)
        if direction != -1 and v < hi - min_excursion_m:
            turns += direction == 1
            direction, lo = -1, v
        elif direction != 1 and v > lo + min_excursion_m:
            turns += direction == -1
            direction, hi = 1, v
    return turns


def _check_wave(motion, ev, side, n) -> None:
    h = SIDES.index(side)
    J = motion.joints
    assert J[:, h, 0, 1].max() > 0.05, "a waving hand is raised above the chest"
    x = J[:, h, 18, 0] - J[:, h, 0, 0]  # middle tip sideways relative to the wrist
    dx = np.diff(x)
    # frame-to-frame reversals, ignoring float32 jitter (< 10 µm per frame) of a still hand
    turns = int(np.sum((np.sign(dx[1:]) * np.sign(dx[:-1]) < 0) & (np.abs(dx[1:]) > 1e-5)))
    assert turns >= 2 * n - 1, f"{turns} reversals for {n} waves"
    # n waves = 2n swings of several cm: 2n - 1 reversals between them, one more back to the middle
    swings = _swings(x, 0.01)
    assert swings == 2 * n, f"{swings} reversals of more than 1 cm for {n} waves"


def _check_flip(motion, ev, side) -> None:
    n = palm_normal(motion.joints[:, SIDES.index(side)].astype(np.float64), side)
    assert n[:, 1].max() > 0.7, "the palm never faces up"


def _check_palm_up(motion, ev, side) -> None:
    n = palm_normal(motion.joints[:, SIDES.index(side)].astype(np.float64), side)
    assert n[:, 1].min() < -0.7 and n[-1, 1] > 0.7, "the palm turns from down to up"


def _check_roll(motion, ev, side) -> None:
    n = palm_normal(motion.joints[:, SIDES.index(side)].astype(np.float64), side)
    ang = np.degrees(np.arccos(np.clip(n @ n[0], -1, 1)))
    assert ang.max() > 40, f"wrist rotates only {ang.max():.0f} deg"


def _check_moves(motion, ev, side) -> None:
    tips = motion.joints[:, SIDES.index(side), 17:21]
    path = np.linalg.norm(np.diff(tips, axis=0), axis=-1).sum(axis=0).max()
    assert path > 0.15, f"fingertips travel only {path:.3f} m"


def _check_grasp(motion, ev, side) -> None:
    op = features.hand_openness(motion.joints[:, SIDES.index(side)])
    assert op.max() > 0.9 and op[-1] < op.max() - 0.05, "the hand opens, then closes on the object"


def _check_close(motion, ev, dist_m) -> None:
    J = motion.joints
    d = np.linalg.norm(features.palm_centre(J[:, 0]) - features.palm_centre(J[:, 1]), axis=-1)
    assert d.min() < dist_m, f"palms come within {d.min():.3f} m"


def _check_still(motion, ev, _) -> None:
    speed = features.wrist_speed(motion.joints, motion.fps)
    assert motion.duration >= 2.0 and speed.max() < 0.05


#: Check kind -> ``fn(motion, contact events, *arguments of the check)``.
CHECKS = {
    "pinch": _check_pinch,
    "clap": _check_clap,
    "tips": _check_tips,
    "flexed": _check_flexed,
    "extended": _check_extended,
    "thumb_up": _check_thumb_up,
    "point": _check_point,
    "count": _check_count,
    "wave": _check_wave,
    "flip": _check_flip,
    "palm_up": _check_palm_up,
    "roll": _check_roll,
    "moves": _check_moves,
    "grasp": _check_grasp,
    "close": _check_close,
    "still": _check_still,
}


@pytest.mark.parametrize(("prompt", "checks"), SUITE, ids=[p for p, _ in SUITE])
def test_prompt_events(prompt: str, checks: list[tuple]) -> None:
    comp = GEN.compose(prompt, seed=1)
    report = GEN.check(comp)  # the generator's own self-check, through handx_robot.features
    assert report.ok, report.summary()
    motion = comp.motion
    assert motion.joints.shape[1:] == (2, 21, 3) and motion.fps == 30.0 and motion.text == prompt
    assert np.isfinite(motion.joints).all()
    pen = interpenetration(motion.joints).max()
    assert pen < 0.005, f"hands interpenetrate by {pen * 1000:.1f} mm"
    ev = _events(motion)
    for kind, *args in checks:
        CHECKS[kind](motion, ev, *args)


def test_suite_is_distinct_and_covers_every_primitive_and_check() -> None:
    prompts = [p for p, _ in SUITE]
    assert len(set(prompts)) == len(prompts), sorted(p for p in prompts if prompts.count(p) > 1)
    primitives = {a.primitive for p in prompts for a in parse_prompt(p).actions}
    assert primitives == set(PRIMITIVES), f"no suite prompt for {sorted(set(PRIMITIVES) - primitives)}"
    kinds = [c[0] for _, checks in SUITE for c in checks]
    assert set(kinds) == set(CHECKS), f"unused checks {sorted(set(CHECKS) - set(kinds))}, unknown {sorted(set(kinds) - set(CHECKS))}"


@pytest.mark.parametrize("seed", [0, 7, 123])
def test_events_hold_for_other_seeds(seed: int) -> None:
    motion = GEN.generate("pinch with the right thumb and index finger twice, then clap three times", seed=seed)
    ev = _events(motion)
    assert _count(ev, "pinch", "right_thumb_tip", "right_index_tip") == 2
    assert _count(ev, "palm_palm", "left_palm", "right_palm") == 3


def test_describe_mentions_prompted_contacts() -> None:
    text = features.describe(GEN.generate("pinch twice with the left hand, then clap"))
    lines = text.splitlines()[2:]  # skip the summary and the caption
    assert any("left thumb and index pinch" in ln for ln in lines)
    assert any("palms touch (clap)" in ln for ln in lines)
