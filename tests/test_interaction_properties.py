"""Property-based tests of the bimanual solve's non-penetration guarantee
(:mod:`handx_robot.retarget.interaction.refine`): once a result is free of penetration, every later one
is, within half the clearance, whatever the human hands do; streamed one frame at a time and offline.

Hostile input: a generated clap with the right wrist pushed onto the left one (to within a random 3 cm),
turned about itself (both ramped in over a random number of frames, or at once), and random sudden jumps of both
hands; streamed with and without a time budget per frame (down to 0.1 ms: about no iteration). Checked
by MuJoCo's own distances on the robots' collision geometry (:func:`measure_frames`), on
the built-in Shadow hands (shipped with gymnasium-robotics) and, where ../shared has dex-urdf, the LEAP
hands (134 box geoms, the hand where the SQP's linear model is worst).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from handx_robot.retarget.bimanual import retarget_hand
from handx_robot.retarget.interaction import (
    BimanualRefiner,
    BimanualStream,
    InteractionOptions,
    human_contact_mask,
    measure_frames,
)
from handx_robot.retarget.robots import get_robot
from handx_robot.retarget.solver import HandProblem
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from handx_robot.frames import FRAME_WORLD_ZUP
from handx_robot.generate import generate
from handx_robot.rotations import rotvec_to_matrix

FRAMES = 40  # the approach and the first clap
PROPERTY_SETTINGS = settings(max_examples=12, deadline=None, derandomize=True, database=None,
                             suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module")
def clap_kp() -> np.ndarray:
    """(T, 2, 21, 3) world Z-up keypoints of a generated clap, the hands apart at frame 0."""
    return generate("clap twice", seed=0).in_frame(FRAME_WORLD_ZUP).joints[:FRAMES]


@pytest.fixture(scope="module")
def streams(request) -> dict:
    """robot -> BimanualStream: the built-in Shadow always; LEAP and the dex-urdf Shadow (its palm on wrist joints,
    its base turned about the palm) where ../shared has dex-urdf."""
    out = {"shadow_builtin": BimanualStream({s: HandProblem(get_robot(f"shadow_builtin_{s}")) for s in ("left", "right")})}
    try:
        assets = str(request.getfixturevalue("dex_urdf_dir"))
    except pytest.skip.Exception:
        return out
    out["leap"] = BimanualStream({s: HandProblem(get_robot(f"leap_{s}", assets)) for s in ("left", "right")})
    out["shadow"] = BimanualStream({s: HandProblem(get_robot(f"shadow_{s}", assets)) for s in ("left", "right")})
    return out


vec = st.tuples(*[st.floats(-1.0, 1.0)] * 3)
push = st.fixed_dictionaries({
    "offset": vec,  # x 3 cm: where the right wrist ends up, from the left wrist
    "rotation": vec,  # x 0.8 rad about the right wrist
    "ramp": st.integers(0, 20),  # frames over which the push comes in (0: at once, at its start)
    "start": st.integers(1, FRAMES - 5),
    "jumps": st.lists(st.tuples(st.integers(1, FRAMES - 1), vec), max_size=3),  # both hands, x 3 cm
    "budget": st.sampled_from([None, None, 1e-4, 2e-3]),  # the stream's time budget per frame (s)
})


def _hostile(kp: np.ndarray, p: dict) -> np.ndarray:
    kp = kp.copy()
    T = kp.shape[0]
    gain = np.clip((np.arange(T) - p["start"] + 1) / max(p["ramp"], 1), 0.0, 1.0)
    towards_left = kp[:, 0, 0] - kp[:, 1, 0]  # right wrist -> left wrist
    for t in range(T):
        R = rotvec_to_matrix(gain[t] * 0.8 * np.asarray(p["rotation"]))
        wrist = kp[t, 1, 0].copy()
        kp[t, 1] = (kp[t, 1] - wrist) @ R.T + wrist
        kp[t, 1] += gain[t] * (towards_left[t] + 0.03 * np.asarray(p["offset"]))
    for t, v in p["jumps"]:
        kp[t:] += 0.03 * np.asarray(v)
    return kp


@pytest.mark.parametrize("robot", ["shadow_builtin", "leap", "shadow"])
@PROPERTY_SETTINGS
@given(p=push)
def test_once_free_of_penetration_the_stream_stays_free(streams, clap_kp, robot, p):
    if robot not in streams:
        pytest.skip("no ../shared/assets/dex-urdf")
    stream = streams[robot]
    stream.refiner.options = dataclasses.replace(stream.refiner.options, stream_budget_s=p["budget"])
    stream.refiner.reset_stream()
    for r in stream.retargeters.values():
        r.reset()
    kp = _hostile(clap_kp, p)
    frames = [stream.step({"left": kp[t, 0], "right": kp[t, 1]}) for t in range(kp.shape[0])]
    sides = stream.refiner.world.sides
    m = measure_frames(stream.refiner, {s: np.array([f.T[s] for f in frames]) for s in sides},
                       {s: np.array([f.q[s] for f in frames]) for s in sides})
    per_hand = measure_frames(stream.refiner, {s: np.array([f.per_hand_T[s] for f in frames]) for s in sides},
                              {s: np.array([f.per_hand_q[s] for f in frames]) for s in sides})
    depth = np.maximum(m["hand_hand"], m["self"])
    tolerance = 0.5 * InteractionOptions().clearance_m + 1e-6
    assert depth[0] <= tolerance, "the hands start apart: the property would be vacuous otherwise"
    assert per_hand["hand_hand"].max() > 0.005, "per hand the pushed hands should collide: it would prove nothing"
    bad = np.flatnonzero(depth > tolerance)
    assert len(bad) == 0, f"frames {bad.tolist()} penetrate up to {depth.max() * 1e3:.1f} mm"


def _after_first_clean(depth: np.ndarray) -> np.ndarray:
    """Frames after the first result free of penetration that penetrate beyond the tolerance."""
    tolerance = 0.5 * InteractionOptions().clearance_m + 1e-6
    clean = np.flatnonzero(depth <= tolerance)
    assert len(clean), "no result free of penetration: the property would be vacuous"
    return clean[0] + np.flatnonzero(depth[clean[0] :] > tolerance)


def _offline_inputs(streams, robot: str, kp: np.ndarray):
    """The offline solve's inputs for keypoints ``kp`` (T, 2, 21, 3): per-hand results, a refiner on the stream's
    world, the human's contacts, the shape references; skips where the robot's models are missing."""
    if robot not in streams:
        pytest.skip("no ../shared/assets/dex-urdf")
    problems = streams[robot].problems
    hands = {s: retarget_hand(kp[:, h], s, problems[s].spec, problem=problems[s]) for h, s in enumerate(("left", "right"))}
    refiner = BimanualRefiner(problems, world=streams[robot].refiner.world)
    touching, _ = human_contact_mask({s: hr.kp_world for s, hr in hands.items()}, refiner.pairs, 30.0)
    refs = {s: hr.problem.reference(hr.kp_wrist)[:2] for s, hr in hands.items()}
    return hands, refiner, touching, refs


@pytest.mark.parametrize("robot", ["shadow_builtin", "shadow"])
@PROPERTY_SETTINGS
@given(p=push)
def test_once_free_of_penetration_the_offline_solve_stays_free(streams, clap_kp, robot, p):
    """The same on the offline path (``refine_sequence``, as ``handx-robot retarget`` runs it), measured
    in its own pass at each result; the built-in Shadow and the dex-urdf one."""
    hands, refiner, touching, refs = _offline_inputs(streams, robot, _hostile(clap_kp, p))
    _, _, info = refiner.refine_sequence({s: hr.T_world_base for s, hr in hands.items()},
                                         {s: hr.result.q for s, hr in hands.items()}, refs, touching)
    per_hand = measure_frames(refiner, {s: hr.T_world_base for s, hr in hands.items()},
                              {s: hr.result.q for s, hr in hands.items()})
    assert per_hand["hand_hand"].max() > 0.005, "per hand the pushed hands should collide: it would prove nothing"
    depth = np.maximum(info["measured"]["hand_hand"], info["measured"]["self"])
    bad = _after_first_clean(depth)
    assert len(bad) == 0, f"frames {bad.tolist()} penetrate up to {depth.max() * 1e3:.1f} mm"


@PROPERTY_SETTINGS
@given(p=push)
def test_the_forearms_turn_keeps_palms_fingers_and_limits_and_the_solve_from_it_stays_free(streams, clap_kp, p):
    """The dex-urdf Shadow offline as ``solve_bimanual`` runs it: the forearms turned out of each other's way first
    (:mod:`.forearm`). Whatever the push, the turned start keeps both palms' poses and the fingers' joints, every joint
    within its limits, and the solve from it keeps the guarantee."""
    from handx_robot.retarget.interaction import forearm
    from handx_robot.retarget.interaction.palm import wrist_poses

    hands, refiner, touching, refs = _offline_inputs(streams, "shadow", _hostile(clap_kp, p))
    T0 = {s: hr.T_world_base for s, hr in hands.items()}
    q0 = {s: hr.result.q for s, hr in hands.items()}
    T1, q1 = forearm.turn_forearms(refiner, T0, q0, 30.0)
    for s, hr in hands.items():
        prob, wj = hr.problem, refiner._wrist[s]
        assert np.isfinite(T1[s]).all() and np.isfinite(q1[s]).all()
        np.testing.assert_allclose(wrist_poses(prob, T1[s], q1[s]), wrist_poses(prob, T0[s], q0[s]), atol=1e-9)
        fingers = np.setdiff1d(np.arange(q0[s].shape[1]), refiner.world.dofs[s][wj.pos])
        np.testing.assert_array_equal(q1[s][:, fingers], q0[s][:, fingers])
        assert (q1[s] >= prob.lower - 1e-12).all() and (q1[s] <= prob.upper + 1e-12).all()
    _, _, info = refiner.refine_sequence(T1, q1, forearm.turned_references(refiner, refs, q0, q1), touching)
    depth = np.maximum(info["measured"]["hand_hand"], info["measured"]["self"])
    bad = _after_first_clean(depth)
    assert len(bad) == 0, f"frames {bad.tolist()} penetrate up to {depth.max() * 1e3:.1f} mm"


@pytest.mark.parametrize("robot", ["shadow_builtin", "shadow"])
@PROPERTY_SETTINGS
@given(p=push)
def test_once_free_of_penetration_a_chunked_solve_stays_free(streams, clap_kp, robot, p, monkeypatch):
    """The same across the splices of a motion solved in chunks (:mod:`.chunks`, as ``handx-robot retarget`` solves
    a long motion), chunks shrunk to 12 frames (each warmed up over 6) so that the 40 frames have three, each
    starting cold from the per-hand solution; measured again on the spliced result."""
    from handx_robot.retarget.interaction import chunks

    monkeypatch.setattr(chunks, "CHUNK_FRAMES", 12)
    monkeypatch.setattr(chunks, "WARMUP_FRAMES", 6)
    monkeypatch.setattr(chunks, "LEAD_FRAMES", 4)
    hands, refiner, touching, refs = _offline_inputs(streams, robot, _hostile(clap_kp, p))
    T1, q1, info = chunks.refine_chunked(refiner, {s: hr.T_world_base for s, hr in hands.items()},
                                         {s: hr.result.q for s, hr in hands.items()}, refs, touching, 30.0)
    assert len(info["splices"]) == 2
    m = measure_frames(refiner, T1, q1)
    depth = np.maximum(m["hand_hand"], m["self"])
    np.testing.assert_allclose(depth, np.maximum(info["measured"]["hand_hand"], info["measured"]["self"]), atol=1e-9)
    bad = _after_first_clean(depth)
    assert len(bad) == 0, f"frames {bad.tolist()} penetrate up to {depth.max() * 1e3:.1f} mm (splices {info['splices']})"


def test_a_streamed_frame_past_its_time_budget_stops_there(streams, clap_kp, monkeypatch):
    """With a 0.1 ms budget every solved frame after the first stops at its deadline (``late``); the first
    (no previous result to fall back on) does not. The property above holds with such budgets."""
    stream = streams["shadow_builtin"]
    stream.refiner.options = dataclasses.replace(stream.refiner.options, stream_budget_s=1e-4)
    stream.refiner.reset_stream()
    for r in stream.retargeters.values():
        r.reset()
    seen = []
    step = stream.refiner.step

    def spy(*a):
        out = step(*a)
        seen.append(out[2])
        return out

    monkeypatch.setattr(stream.refiner, "step", spy)
    kp = _hostile(clap_kp, {"offset": (0.0, 0.0, 0.0), "rotation": (0.0, 0.0, 0.0), "ramp": 10, "start": 5, "jumps": []})
    for t in range(kp.shape[0]):
        stream.step({"left": kp[t, 0], "right": kp[t, 1]})
    assert seen[0] is None or not seen[0]["late"]
    later = [s for s in seen[1:] if s is not None]
    assert len(later) > 10 and all(s["late"] for s in later)
