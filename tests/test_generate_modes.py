"""Generation modes (HandX's), the generator interface and registry, bad input, CLI, downstream use."""

from __future__ import annotations

import sys
import textwrap

import numpy as np
import pytest

from handx_robot import features
from handx_robot.app.cli import main as cli_main
from handx_robot.errors import ConfigError, HandXError
from handx_robot.generate import (
    ComposerGenerator,
    ContactKeyframe,
    GenerationConstraints,
    MotionGenerator,
    available_generators,
    generate,
    get_generator,
    stitch,
)
from handx_robot.generate.composer import REST_WRIST_POS
from handx_robot.generate.geometry import interpenetration
from handx_robot.motion import BimanualMotion, load_motion, save_motion

GEN = ComposerGenerator(self_check="raise", open_vocabulary=False)


def _pinches(motion, side="right", finger="index"):
    return [
        e
        for e in features.contact_events(motion)
        if e.kind == "pinch" and e.participants == frozenset((f"{side}_thumb_tip", f"{side}_{finger}_tip"))
    ]


def _bone_lengths(hand: np.ndarray) -> np.ndarray:
    from handx_robot.keypoints import FINGER_CHAINS

    idx = [(0, c[0]) for c in FINGER_CHAINS.values()] + [
        (c[i], c[i + 1]) for c in FINGER_CHAINS.values() for i in range(3)
    ]
    a, b = np.array(idx).T
    return np.linalg.norm(hand[..., a, :] - hand[..., b, :], axis=-1)


# -- text to motion: output contract --------------------------------------------------------------
def test_output_is_a_valid_motion_in_the_canonical_frame(tmp_path) -> None:
    m = GEN.generate("pinch twice then clap", seed=0)
    assert isinstance(m, BimanualMotion) and m.frame == "handx_yup" and m.fps == 30.0
    assert m.present.all() and m.joints.dtype == np.float32
    # realistic size: wrist to middle fingertip with the hand open ~0.185 m
    open_hand = GEN.generate("open the right hand").hand("right")[-1]
    assert 0.18 <= np.linalg.norm(open_hand[18] - open_hand[0]) <= 0.19
    # placement: wrists ~0.26 m apart, 0.25-0.45 m in front of the chest (forward = -z)
    first = m.joints[0]
    assert 0.2 <= np.linalg.norm(first[0, 0] - first[1, 0]) <= 0.32
    assert -0.45 <= first[1, 0, 2] <= -0.25 and first[1, 0, 0] > 0 > first[0, 0, 0]  # right hand at +x
    # rigid bones: FK never stretches a bone
    bl = _bone_lengths(m.joints.astype(np.float64))
    np.testing.assert_allclose(bl, np.broadcast_to(bl[0], bl.shape), atol=1e-5)
    path = save_motion(m, tmp_path / "m.npz")
    back = load_motion(path)
    np.testing.assert_array_equal(back.joints, m.joints)
    assert back.text == "pinch twice then clap"


def test_left_hand_is_anatomically_left() -> None:
    """The mirrored model must give a left hand a left-hand palm normal (else retargeting flips it)."""
    from handx_robot.readers import handedness_score

    m = GEN.generate("open both hands")
    for side in ("left", "right"):
        score, _ = handedness_score(m.hand(side), side)
        assert score > 0.5, (side, score)


def test_joint_angles_stay_anatomical() -> None:
    m = GEN.generate("make a fist then count to five then pinch with the pinky twice")
    flex = features.finger_flexion(m.joints)  # (T, 2, 5) radians, summed over a finger's joints
    assert flex.min() >= 0.0 and flex.max() < np.deg2rad(250)


def test_seeds_vary_but_stay_valid() -> None:
    a = GEN.generate("clap twice", seed=1)
    b = GEN.generate("clap twice", seed=2)
    c = GEN.generate("clap twice", seed=1)
    np.testing.assert_array_equal(a.joints, c.joints)  # deterministic per seed
    assert a.num_frames != b.num_frames or np.abs(a.joints - b.joints).max() > 0.005
    for m in (a, b):
        ev = features.contact_events(m)
        assert sum(e.kind == "palm_palm" for e in ev) == 2


def test_minimum_jerk_transitions_are_smooth() -> None:
    m = GEN.generate("make a fist then open the hand then wave", seed=0)
    wrist = m.joints[:, 1, 0].astype(np.float64)
    acc = np.diff(wrist, n=2, axis=0) * m.fps**2
    assert np.linalg.norm(acc, axis=-1).max() < 15.0  # m/s^2: no teleports


def test_seconds_stretches_or_pads_and_rejects_impossible() -> None:
    natural = GEN.generate("clap twice")
    m = GEN.generate("clap twice", seconds=5.0)
    assert m.num_frames == 151
    assert sum(e.kind == "palm_palm" for e in features.contact_events(m)) == 2
    long = GEN.generate("clap twice", seconds=20.0)  # stretched 1.5x then held
    assert abs(long.duration - 20.0) < 1e-6
    with pytest.raises(ConfigError, match="needs at least"):
        GEN.generate("clap 10 times", seconds=natural.duration / 2)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"prompt": ""}, "prompt is"),
        ({"prompt": "   "}, "prompt is"),
        ({"prompt": "bake a cake"}, "no action I know"),
        ({"prompt": "clap", "seconds": 0}, "seconds is"),
        ({"prompt": "clap", "seconds": -3}, "seconds is"),
        ({"prompt": "clap", "seconds": 601}, "maximum is 600"),
        ({"prompt": "clap", "seconds": float("nan")}, "seconds is"),
        ({"prompt": "clap 31 times"}, "repetitions: allowed 1..10"),
        ({"prompt": "clap", "seed": -1}, "seed"),
        ({"prompt": []}, "empty"),
    ],
)
def test_bad_input_gives_clear_errors(kwargs, match) -> None:
    with pytest.raises(ConfigError, match=match):
        GEN.generate(**kwargs)


def test_unknown_action_error_lists_supported_actions() -> None:
    with pytest.raises(ConfigError) as exc:
        GEN.generate("juggle three balls")  # keyword-only generator: no embedding fallback
    assert "juggle" in str(exc.value) and "Closest phrasings I can perform" in str(exc.value)
    assert exc.value.suggestions


def test_unknown_generator_lists_available() -> None:
    with pytest.raises(ConfigError, match="available generators: composer, library"):
        get_generator("diffusion-xl")


# -- in-betweening ----------------------------------------------------------------------------------
def test_in_betweening_hits_keyframes_exactly() -> None:
    start = GEN.generate("open both hands", seed=3).joints[-1]
    end = GEN.generate("hold still", seed=4).joints[-1] + np.array([0.0, 0.05, 0.0], dtype=np.float32)
    c = GenerationConstraints(start_pose=start, end_pose=end)
    m = GEN.generate("pinch twice", seed=0, constraints=c)
    np.testing.assert_allclose(m.joints[0], start, atol=1e-6)
    np.testing.assert_allclose(m.joints[-1], end, atol=1e-6)
    assert len(_pinches(m)) == 2  # the prompted events survive the blend
    step = np.linalg.norm(np.diff(m.joints, axis=0), axis=-1).max()
    assert step < 0.05  # no jump at the keyframes


def test_in_betweening_rejects_bad_keyframes() -> None:
    with pytest.raises(ConfigError, match=r"\(2, 21, 3\)"):
        GenerationConstraints(start_pose=np.zeros((21, 3)))
    bad = np.zeros((2, 21, 3))
    bad[0, 0, 0] = np.nan
    with pytest.raises(ConfigError, match="NaN"):
        GenerationConstraints(end_pose=bad)


# -- wrist trajectory ----------------------------------------------------------------------------------
def test_wrist_trajectory_is_followed() -> None:
    t = np.arange(91) / 30.0
    traj = np.stack([0.13 + 0.05 * np.sin(2 * np.pi * t / 3), -0.05 + 0.03 * t, np.full_like(t, -0.32)], -1)
    m = GEN.generate("pinch twice", constraints=GenerationConstraints(wrist_trajectory={"right": traj}))
    assert m.num_frames == 91
    np.testing.assert_allclose(m.hand("right")[:, 0], traj, atol=1e-6)
    assert len(_pinches(m)) == 2  # finger motion is kept relative to the wrist
    with pytest.raises(ConfigError, match="shape"):
        GenerationConstraints(wrist_trajectory={"right": np.zeros((10, 2))})
    with pytest.raises(ConfigError, match="left, right"):
        GenerationConstraints(wrist_trajectory={"middle": np.zeros((10, 3))})


# -- contact keyframes ----------------------------------------------------------------------------------
def test_contact_keyframes_place_contacts_at_their_times() -> None:
    kfs = (
        ContactKeyframe(1.5, ("right_thumb_tip", "right_index_tip")),
        ContactKeyframe(3.0, ("right_thumb_tip", "right_middle_tip")),
        ContactKeyframe(5.0, ("left_palm", "right_palm")),
    )
    m = GEN.generate("pinch then pinch then clap", constraints=GenerationConstraints(contact_keyframes=kfs))
    ev = features.contact_events(m)
    idx = _pinches(m)
    mid = _pinches(m, finger="middle")
    clap = [e for e in ev if e.kind == "palm_palm"]
    assert len(idx) == len(mid) == len(clap) == 1
    # contact is made within 2 frames (plus the detector's 2 cm threshold lead) of the keyframe time
    for e, t in ((idx[0], 1.5), (mid[0], 3.0), (clap[0], 5.0)):
        assert t - 0.25 <= e.start <= t + 2 / 30, (e, t)
        assert e.start <= t < e.end


def test_contact_keyframes_errors() -> None:
    with pytest.raises(ConfigError, match="side_finger_tip"):
        ContactKeyframe(1.0, ("right_thumb", "right_index_tip"))
    with pytest.raises(ConfigError, match="too early"):
        GEN.generate("pinch", constraints=GenerationConstraints(contact_keyframes=(
            ContactKeyframe(1.5, ("right_thumb_tip", "right_index_tip")),
            ContactKeyframe(1.6, ("right_thumb_tip", "right_index_tip")),
        )))  # fmt: skip
    with pytest.raises(ConfigError, match="not supported"):
        GEN.generate("touch fingertips", constraints=GenerationConstraints(contact_keyframes=(
            ContactKeyframe(1.0, ("right_index_tip", "left_palm")),
        )))  # fmt: skip


# -- hand reaction ----------------------------------------------------------------------------------
def test_reaction_mirrors_a_clapping_hand() -> None:
    given = GEN.generate("clap three times", seed=5)
    left_only = given.replace(present=np.array([True, False]))
    c = GenerationConstraints(reaction_to=left_only, reaction_side="right")
    m = GEN.generate("clap three times", seed=9, constraints=c)
    np.testing.assert_allclose(m.hand("left"), given.hand("left"), atol=1e-6)  # the given hand is untouched
    assert m.num_frames == given.num_frames
    assert sum(e.kind == "palm_palm" for e in features.contact_events(m)) == 3
    assert interpenetration(m.joints).max() < 0.005


def test_reaction_one_handed_action_keeps_given_hand() -> None:
    given = GEN.generate("wave with the left hand", seed=2)
    c = GenerationConstraints(reaction_to=given, reaction_side="right")
    m = GEN.generate("pinch twice with the right hand", constraints=c)
    np.testing.assert_allclose(m.hand("left"), given.hand("left"), atol=1e-6)
    assert len(_pinches(m)) == 2
    with pytest.raises(ConfigError, match="go together"):
        GenerationConstraints(reaction_to=given)


# -- long horizon ----------------------------------------------------------------------------------
def test_long_horizon_list_of_prompts() -> None:
    prompts = ["pinch twice", "clap three times", "make a fist with the left hand", "wave"]
    m = GEN.generate(prompts, seed=0)
    ev = features.contact_events(m)
    assert len(_pinches(m)) == 2 and sum(e.kind == "palm_palm" for e in ev) == 3
    assert m.text == " then ".join(prompts)
    step = np.linalg.norm(np.diff(m.joints, axis=0), axis=-1).max()
    assert step < 0.05


def test_generic_stitch_is_continuous() -> None:
    a = GEN.generate("clap")
    b = GEN.generate("wave", seed=3)
    s = stitch([a, b], transition_s=0.4)
    assert s.num_frames == a.num_frames + b.num_frames - 1
    np.testing.assert_allclose(s.joints[: a.num_frames], a.joints)
    np.testing.assert_allclose(s.joints[-1], b.joints[-1], atol=1e-6)


# -- registry and entry points -------------------------------------------------------------------------
class _Still(MotionGenerator):
    """A tiny real generator for the interface tests: both hands resting."""

    name = "still"

    def _generate(self, prompt, seconds, seed, constraints):
        n = int(round((seconds or 1.0) * self.fps)) + 1
        rest = GEN.generate("hold still").joints[0]
        return BimanualMotion(joints=np.repeat(rest[None], n, axis=0), fps=self.fps, text=prompt)


def test_interface_applies_generic_modes_for_any_generator() -> None:
    g = _Still()
    target = GEN.generate("open both hands").joints[-1]
    m = g.generate("anything", seconds=2.0, constraints=GenerationConstraints(end_pose=target))
    np.testing.assert_allclose(m.joints[-1], target, atol=1e-6)
    seq = g.generate(["a", "b"], seconds=2.0)
    assert abs(seq.duration - 2.0) < 0.05
    with pytest.raises(ConfigError, match="contact keyframes"):
        g.generate("x", constraints=GenerationConstraints(contact_keyframes=(ContactKeyframe(0.5, ("left_palm", "right_palm")),)))


def test_entry_point_plugin_is_found(tmp_path, monkeypatch) -> None:
    pkg = tmp_path / "handx_still_plugin.py"
    pkg.write_text(textwrap.dedent(
        """
        from handx_robot.generate import ComposerGenerator

        class Plugin(ComposerGenerator):
            name = "still-plugin"
        """
    ))  # fmt: skip
    dist = tmp_path / "handx_still_plugin-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: handx-still-plugin\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[handx_robot.generators]\nstill-plugin = handx_still_plugin:Plugin\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert available_generators()["still-plugin"] == "handx_still_plugin:Plugin"
    gen = get_generator("still-plugin", self_check="off", open_vocabulary=False)
    assert gen.generate("clap").num_frames > 10
    sys.modules.pop("handx_still_plugin", None)


def test_module_level_generate_helper() -> None:
    m = generate("clap twice", generator="composer", open_vocabulary=False, variation=0.0)
    assert sum(e.kind == "palm_palm" for e in features.contact_events(m)) == 2


# -- CLI ----------------------------------------------------------------------------------
def test_cli_generate_writes_a_motion(tmp_path, capsys) -> None:
    out = tmp_path / "motion.npz"
    rc = cli_main(["generate", "pinch with the right thumb and index finger twice, then clap",
                   "--seed", "2", "--fps", "30", "--no-open-vocabulary", "-o", str(out)])  # fmt: skip
    assert rc == 0
    text = capsys.readouterr().out
    assert "wrote" in text and "ok   2 contact(s) right_thumb_tip" in text
    m = load_motion(out)
    assert len(_pinches(m)) == 2


def test_cli_errors_are_one_line(tmp_path, capsys) -> None:
    assert cli_main(["generate", "clap", "--seconds", "-1", "-o", str(tmp_path / "x.npz")]) == 1
    assert "seconds is -1" in capsys.readouterr().err
    assert cli_main(["generate", "clap", "--generator", "nope", "-o", str(tmp_path / "x.npz")]) == 1
    assert "available generators" in capsys.readouterr().err
    assert not (tmp_path / "x.npz").exists()


def test_cli_list(capsys) -> None:
    assert cli_main(["generate", "--list"]) == 0
    out = capsys.readouterr().out
    assert "composer" in out and "touch_fingertips" in out


# -- downstream: the retargeting stage accepts the output -----------------------------------------------
@pytest.mark.assets
def test_retargeting_accepts_generated_motion(dex_urdf_dir) -> None:
    from handx_robot.retarget.bimanual import retarget_motion

    m = ComposerGenerator(fps=10, self_check="off", open_vocabulary=False).generate("pinch then clap")
    robot, report = retarget_motion(m, left_robot="allegro_left", right_robot="allegro_right", assets=dex_urdf_dir)
    assert robot.fps == 10
    for side in ("left", "right"):
        traj = robot.hands[side]
        assert traj.qpos.shape[0] == m.num_frames and np.isfinite(traj.qpos).all()


def test_rest_pose_constant_is_in_front_of_the_chest() -> None:
    assert REST_WRIST_POS[2] < -0.25 and 0.1 < REST_WRIST_POS[0] < 0.16


def test_handx_errors_are_handx_errors() -> None:
    with pytest.raises(HandXError):
        GEN.generate("clap", seconds=10_000)


def test_hold_duration_in_words() -> None:
    short = GEN.generate("make a fist", seed=0)
    long = GEN.generate("make a fist for 3 seconds", seed=0)
    assert 2.0 < long.duration - short.duration < 3.0
    assert features.hand_openness(long.hand("right")[-1]) < 0.55


@pytest.mark.parametrize(
    "kwargs",
    [{"hand_scale": 0.85}, {"hand_scale": 1.15}, {"variation": 2.0}, {"variation": 0.0}, {"fps": 60.0}, {"fps": 20.0}],
)
def test_events_hold_across_settings(kwargs) -> None:
    gen = ComposerGenerator(self_check="raise", open_vocabulary=False, **kwargs)
    for seed in (0, 1):
        m = gen.generate("pinch with the right thumb and index finger twice, then clap three times", seed=seed)
        assert m.fps == kwargs.get("fps", 30.0)
        ev = features.contact_events(m)
        assert len(_pinches(m)) == 2 and sum(e.kind == "palm_palm" for e in ev) == 3
        assert interpenetration(m.joints).max() < 0.005


def test_every_primitive_has_exactly_one_composer_entry() -> None:
    from handx_robot.generate.bimanual import BIMANUAL
    from handx_robot.generate.compositional import COMPOSITIONAL
    from handx_robot.generate.parser import BIMANUAL_PRIMITIVES, PRIMITIVES
    from handx_robot.generate.primitives import ONE_HANDED

    tables = [set(ONE_HANDED), set(BIMANUAL), set(COMPOSITIONAL), {"keep"}]  # keep: applied by the composer
    assert sum(len(t) for t in tables) == len(set().union(*tables))
    assert set().union(*tables) == set(PRIMITIVES)
    two = set(BIMANUAL) | {k for k, (kind, _) in COMPOSITIONAL.items() if kind == "two"}
    assert two - {"touch"} == BIMANUAL_PRIMITIVES


def test_one_handed_primitive_on_a_two_handed_action_is_an_error() -> None:
    from handx_robot.generate.composer import compose
    from handx_robot.generate.parser import Action, Plan, Step

    plan = Plan(prompt="clap", steps=(Step((Action("clap", ("right",)),)),))
    with pytest.raises(ConfigError, match="not one-handed; one-handed primitives: pinch"):
        compose(plan)
