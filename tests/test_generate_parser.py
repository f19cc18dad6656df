"""Prompt parser: sides, repetitions, speed, amplitude, sequencing ('then') and simultaneity ('while')."""

from __future__ import annotations

import pytest

from handx_robot.errors import ConfigError
from handx_robot.generate.parser import PRIMITIVES, Action, parse_prompt, split_clauses


def _one(prompt: str) -> Action:
    plan = parse_prompt(prompt)
    assert len(plan.actions) == 1, plan
    return plan.actions[0]


def test_issue_example() -> None:
    plan = parse_prompt("pinch with the right thumb and index finger twice, then clap")
    pinch, clap = plan.actions
    assert (pinch.primitive, pinch.sides, pinch.reps, pinch.finger) == ("pinch", ("right",), 2, "index")
    assert (clap.primitive, clap.sides, clap.reps) == ("clap", ("left", "right"), 1)
    assert len(plan.steps) == 2


@pytest.mark.parametrize(
    ("prompt", "sides"),
    [
        ("make a fist with the left hand", ("left",)),
        ("make a fist", ("right",)),
        ("make fists with both hands", ("left", "right")),
        ("open your hands", ("left", "right")),
        ("wave with each hand", ("left", "right")),
        ("clap", ("left", "right")),
    ],
)
def test_sides(prompt, sides) -> None:
    assert _one(prompt).sides == sides


@pytest.mark.parametrize(
    ("prompt", "reps"),
    [("clap once", 1), ("clap twice", 2), ("clap thrice", 3), ("clap 4 times", 4), ("clap seven times", 7),
     ("pinch x3", 3), ("clap", 1), ("wave", 3)],
)  # fmt: skip
def test_repetitions(prompt, reps) -> None:
    assert _one(prompt).reps == reps


def test_speed_and_amplitude() -> None:
    assert _one("slowly wave").speed < 1 < _one("wave quickly").speed
    assert _one("very quickly clap").speed > _one("quickly clap").speed
    assert _one("wave with a big motion").amplitude > 1 > _one("slightly rotate the wrist").amplitude
    assert _one("pinch with the little finger").amplitude == 1.0  # 'little' names a finger here


def test_details() -> None:
    assert _one("pinch the thumb and pinky").finger == "pinky"
    assert _one("grab a ball").variant == "spherical"
    assert _one("pick up the bottle").variant == "cylindrical"
    assert _one("hold a key").variant == "pinch"  # a thin object: a thumb-index pinch
    assert _one("hold a key").obj == "key"
    assert _one("count to three").variant == "3"
    assert (_one("show two fingers").primitive, _one("show two fingers").variant) == ("shape", "peace")
    assert _one("draw a square in the air").variant == "square"
    assert _one("pass the cup from the left hand to the right").sides == ("left", "right")
    assert _one("hand the cup over to the left hand").sides == ("right", "left")


def test_while_assigns_different_hands() -> None:
    step = parse_prompt("wave with the left hand while making a fist").steps[0]
    assert [(a.primitive, a.sides) for a in step.actions] == [("wave", ("left",)), ("fist", ("right",))]
    step = parse_prompt("pinch twice while waving").steps[0]
    assert {a.sides for a in step.actions} == {("left",), ("right",)}
    with pytest.raises(ConfigError, match="both use the right hand"):
        parse_prompt("wave with the right hand while pinching with the right hand")
    with pytest.raises(ConfigError, match="one per hand"):
        parse_prompt("clap while waving")


def test_sequencing_and_modifier_pieces() -> None:
    assert split_clauses("Wave; then clap. Finally, make a fist!") == [["wave"], ["clap"], ["make a fist"]]
    a = _one("with the left hand, pinch twice")
    assert (a.sides, a.reps) == (("left",), 2)
    plan = parse_prompt("pinch with the left hand then make a fist")
    assert plan.actions[1].sides == ("left",)  # no hand named: the previous one


def test_every_primitive_has_a_keyword_phrase() -> None:
    phrases = {
        "open_hand": "open the hand", "fist": "make a fist", "point": "point forward", "pinch": "pinch",
        "grasp": "grasp a cup", "thumbs_up": "thumbs up", "ok_sign": "make the ok sign", "count": "count to 4",
        "wave": "wave", "piano": "play the piano", "rub_fingers": "rub the fingers", "flip": "flip the hands",
        "rotate_wrist": "rotate the wrist", "write": "write in the air", "palms_together": "put the palms together",
        "clap": "clap", "touch_fingertips": "touch fingertips together", "interlock": "interlock the fingers",
        "handover": "hand the ball over", "hold_still": "hold still", "shape": "show a peace sign",
        "fingers": "extend the index finger", "touch": "tap the left palm with the right index finger",
        "move": "move the right hand up", "circle": "move the hand in a circle", "turn": "turn the palm up",
        "shake": "shake the hand", "hold_object": "hold a box with both hands", "rub_palms": "rub the palms together",
        "cross_wrists": "cross the wrists",
    }  # fmt: skip
    # 'keep' only rides along another clause ("..., keeping the other fingers curled")
    assert set(phrases) == set(PRIMITIVES) - {"keep"}
    for primitive, phrase in phrases.items():
        assert _one(phrase).primitive == primitive, phrase


@pytest.mark.parametrize("prompt", ["", "   ", None])
def test_empty_prompt(prompt) -> None:
    with pytest.raises(ConfigError, match="empty"):
        parse_prompt(prompt)


def test_unrecognised_without_matcher_lists_actions() -> None:
    with pytest.raises(ConfigError, match="no action I know.*Closest phrasings"):
        parse_prompt("juggle")


def test_matcher_is_used_only_for_unknown_clauses() -> None:
    calls = []

    def matcher(clause: str):
        calls.append(clause)
        return "wave", 0.7

    plan = parse_prompt("clap then greet the audience", matcher=matcher)
    assert calls == ["greet the audience"]
    assert [a.primitive for a in plan.actions] == ["clap", "wave"]
    assert plan.actions[1].matched_by == "embedding" and plan.actions[1].score == 0.7


def test_action_validation() -> None:
    with pytest.raises(ConfigError, match="known primitives"):
        Action("moonwalk", ("right",))
    with pytest.raises(ConfigError, match="sides"):
        Action("clap", ("middle",))
    with pytest.raises(ConfigError, match="repetitions"):
        parse_prompt("clap 99 times")


def test_and_joins_two_actions_only_when_both_are_actions() -> None:
    assert [a.primitive for a in parse_prompt("clap and wave").actions] == ["clap", "wave"]
    assert [a.primitive for a in parse_prompt("open and close the left hand").actions] == ["open_hand", "fist"]
    assert [a.sides for a in parse_prompt("open and close the left hand").actions] == [("left",), ("left",)]
    assert len(parse_prompt("pinch the thumb and index finger").actions) == 1


def test_a_decimal_point_does_not_split_a_clause():
    from handx_robot.generate.parser import split_clauses

    clauses = [c for group in split_clauses("hold still for 1.5 seconds, then clap twice") for c in group]
    assert any("1.5 seconds" in c for c in clauses), clauses
    assert len(split_clauses("clap. then wave")) == 2
