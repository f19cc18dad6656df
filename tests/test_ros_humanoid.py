"""The humanoid graph over real DDS (issue 19): a prompt in -> the retarget node's hand and arm commands
-> four safety streamers (two hands, two arms) -> the sim node's kinematic humanoid. Real rclpy, the
shipped Fourier GR1 with Inspire hands (their models ship in the robosuite wheel)."""

from __future__ import annotations

import importlib.util
import time

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy")
if importlib.util.find_spec("robosuite") is None:
    pytest.skip("the humanoid models ship in robosuite (pip install robosuite)", allow_module_level=True)

from geometry_msgs.msg import PoseStamped  # noqa: E402
from handx_robot.ros.common import LATCHED_QOS, SIDES, STATE_QOS, STREAM_QOS  # noqa: E402
from handx_robot.ros.convert import duration_to_s, joint_state, joint_trajectory  # noqa: E402
from handx_robot.ros.graph import GraphConfig, build_graph  # noqa: E402
from ros_harness import RosGraph, wait_for  # noqa: E402
from sensor_msgs.msg import JointState  # noqa: E402
from std_msgs.msg import Bool  # noqa: E402
from std_srvs.srv import Trigger  # noqa: E402
from trajectory_msgs.msg import JointTrajectory  # noqa: E402

from handx_robot.errors import ConfigError  # noqa: E402

pytestmark = [pytest.mark.ros, pytest.mark.timeout(120)]

HUMANOID = "gr1_inspire"
PROMPT = "clap twice"


@pytest.fixture(scope="module")
def humanoid():
    """(HumanoidSpec, {side: {arm joint: (lower, upper) rad}}) from the composed model."""
    from handx_robot.retarget.humanoid import get_humanoid
    from handx_robot.retarget.humanoid.model import load_humanoid_model

    spec = get_humanoid(HUMANOID)
    m = load_humanoid_model(spec).model
    ranges = {side: {j: tuple(float(v) for v in m.jnt_range[m.joint(j).id]) for j in arm.arm_joints}
              for side, arm in spec.arms.items()}  # fmt: skip
    return spec, ranges


def _within(msg: JointTrajectory, ranges: dict[str, tuple[float, float]]) -> bool:
    q = np.array(msg.points[0].positions)
    lo = np.array([ranges[n][0] for n in msg.joint_names])
    hi = np.array([ranges[n][1] for n in msg.joint_names])
    return bool(np.all(np.isfinite(q)) and np.all(q >= lo - 1e-9) and np.all(q <= hi + 1e-9))


def test_graph_of_a_humanoid_declares_arm_streamers():
    from handx_robot.ros import retarget_node, safety_streamer_node, sim_node, text_to_motion_node

    for mode in ("sim", "real"):
        specs = {s.name: s for s in build_graph(GraphConfig(robot=HUMANOID, mode=mode, controller="forward_command"))}
        streamers = {f"safety_streamer_{n}" for n in ("left", "right", "left_arm", "right_arm")}
        assert set(specs) == {"text_to_motion", "retarget"} | streamers | ({"sim"} if mode == "sim" else set())
        assert specs["retarget"].parameters["humanoid"] == HUMANOID
        arm = specs["safety_streamer_right_arm"].parameters
        assert (arm["limb"], arm["robot"], arm["side"], arm["unit_mapping"]) == ("arm", HUMANOID, "right", "identity")
        hand = specs["safety_streamer_left"].parameters
        assert (hand["limb"], hand["robot"], hand["unit_mapping"]) == ("hand", "inspire_builtin_left", "inspire")
        assert arm["state_topic"] == ("/handx/right_arm/joint_states" if mode == "sim" else "/joint_states")
        declared = {"text_to_motion": text_to_motion_node.PARAMS, "retarget": retarget_node.PARAMS,
                    "sim": sim_node.PARAMS, **{n: safety_streamer_node.PARAMS for n in streamers}}  # fmt: skip
        for name, spec in specs.items():
            params = {p.name: p for p in declared[name]}
            assert set(spec.parameters) <= set(params), (name, set(spec.parameters) - set(params))
            for key, value in spec.parameters.items():
                params[key].validate(value, name)


def test_prompt_streams_arm_and_hand_commands_through_the_humanoid_graph(humanoid):
    spec, ranges = humanoid
    cfg = GraphConfig(robot=HUMANOID, mode="sim", prompt=PROMPT)
    with RosGraph() as g:
        arm_out = {s: g.probe(JointTrajectory, f"/{s}_arm_controller/joint_trajectory", STREAM_QOS) for s in SIDES}
        hand_out = {s: g.probe(JointTrajectory, f"/{s}_hand_controller/joint_trajectory", STREAM_QOS) for s in SIDES}
        arm_states = g.probe(JointState, "/handx/right_arm/joint_states", STATE_QOS)
        wrist = g.probe(PoseStamped, "/handx/right/wrist_pose", STREAM_QOS)
        retargeted = g.probe(JointTrajectory, "/handx/right_arm/command", STREAM_QOS)
        nodes = {}
        t0 = time.monotonic()
        for node_spec in reversed(build_graph(cfg)):  # sinks first; the prompt streams once all are ready
            nodes[node_spec.name] = g.add(node_spec.load_factory(), dict(node_spec.parameters), name=node_spec.name)
        t_built = time.monotonic()
        t2m, retarget = nodes["text_to_motion"], nodes["retarget"]
        assert wait_for(lambda: t2m.status.startswith(("done", "error")), 60.0), t2m.status
        assert t2m.status.startswith("done"), t2m.status
        streamers = {n: node for n, node in nodes.items() if n.startswith("safety_streamer_")}
        assert len(streamers) == 4
        assert wait_for(lambda: all(s.filter.state.value == "stopped" for s in streamers.values()), 10.0), \
            {n: s.filter.state for n, s in streamers.items()}
        frames = retarget.humanoid.frames
        assert frames >= t2m.frames_published // 2 > 0, (frames, t2m.frames_published)

        cmds_of = {}
        for side in SIDES:
            arm = streamers[f"safety_streamer_{side}_arm"]
            c = arm.filter.counters
            assert c["rejected"] == 0 and c["forwarded"] == frames, c  # every arm command reached the controller
            cmds = cmds_of[side] = [(t, m) for t, m in arm_out[side].snapshot() if m.points]
            assert len(cmds) >= frames, (len(cmds), frames)
            for _, m in cmds:
                assert tuple(m.joint_names) == spec.arms[side].arm_joints
                assert _within(m, ranges[side]), m.points[0].positions
            hands = [m for _, m in hand_out[side].snapshot() if m.points]
            assert len(hands) >= frames and tuple(hands[0].joint_names) == retarget.humanoid.joint_names[side]
            rate = (len(cmds) - 1) / (cmds[-1][0] - cmds[0][0])
            print(f"{side} arm: {len(cmds)} commands ({c['forwarded']} forwarded, {c['held']} holds, "
                  f"{c['time_scaled']} time-scaled) at {rate:.1f} Hz")

        # the kinematic sim put the right arm where its last command said, away from the rest pose
        last_cmd = cmds_of["right"][-1][1]
        last = dict(zip(last_cmd.joint_names, last_cmd.points[0].positions))
        time.sleep(0.1)
        measured = dict(zip(arm_states.snapshot()[-1][1].name, arm_states.snapshot()[-1][1].position))
        err = max(abs(measured[n] - q) for n, q in last.items())
        moved = max(abs(q - r) for q, r in zip(last.values(), spec.arms["right"].rest))
        assert err < 1e-6, f"sim arm off its last command by {err} rad"
        assert moved > 0.1, "the arm never left its rest pose: the test would prove nothing"
        # the sim's model reads arm commands as the retargeting meant them: the last one puts the hand
        # root where the last wrist pose (the pose the arm IK reached, same frame) says
        from handx_robot.ros.sim_humanoid import KinematicHumanoid

        kin = KinematicHumanoid(spec)
        kin.reset()
        arm_cmd = retargeted.snapshot()[-1][1]
        kin.set_targets("right_arm", dict(zip(arm_cmd.joint_names, arm_cmd.points[0].positions)))
        kin.step()
        p_wrist = wrist.snapshot()[-1][1].pose.position
        np.testing.assert_allclose(kin.data.body(kin.hm.hand_root["right"]).xpos, [p_wrist.x, p_wrist.y, p_wrist.z],
                                   atol=1e-6)
        print(f"graph built in {t_built - t0:.1f} s; {frames} frames, solve p95 "
              f"{np.percentile(retarget.solve_seconds, 95) * 1e3:.0f} ms, hand position error p95 "
              f"{np.percentile(retarget.position_errors, 95) * 1e3:.1f} mm")


def test_arm_streamer_clamps_to_the_humanoid_limits_and_obeys_the_estop(humanoid):
    from handx_robot.ros.safety_streamer_node import SafetyStreamerNode

    spec, ranges = humanoid
    names = list(spec.arms["right"].arm_joints)
    with RosGraph() as g:
        streamer = g.add(SafetyStreamerNode, {"side": "right", "limb": "arm", "robot": HUMANOID,
                                              "control_rate_hz": 50.0, "watchdog_periods": 50.0,
                                              "watchdog_stop_s": 10.0, "max_acceleration": 1e4,
                                              "state_topic": "/test/joint_states"})  # fmt: skip
        limits = {lim.name: lim for lim in streamer.config.limits}
        assert list(streamer.config.joint_names) == names
        for n in names:  # positions from the model, speeds from the humanoid spec
            assert (limits[n].lower, limits[n].upper) == pytest.approx(ranges["right"][n])
            assert limits[n].max_velocity == spec.velocity_limits[n]
        assert streamer.out_topic == "/right_arm_controller/joint_trajectory"
        out = g.probe(JointTrajectory, "/right_arm_controller/joint_trajectory", STREAM_QOS)
        drv = g.node("driver")
        state = drv.create_publisher(JointState, "/test/joint_states", STREAM_QOS)
        cmd = drv.create_publisher(JointTrajectory, "/handx/right_arm/command", STREAM_QOS)
        estop = drv.create_publisher(Bool, "/handx/estop", LATCHED_QOS)
        reset = drv.create_client(Trigger, "/handx/right_arm/estop_reset")
        for pub in (state, cmd, estop):
            assert wait_for(lambda pub=pub: pub.get_subscription_count() > 0, 5.0), pub.topic_name
        assert reset.wait_for_service(timeout_sec=5.0)
        rest = spec.arms["right"].rest
        state.publish(joint_state(names, rest))
        assert wait_for(lambda: streamer.filter.last_safe_position is not None, 3.0)

        roll = names.index("r_shoulder_roll")
        q = rest.copy()
        q[roll] = ranges["right"]["r_shoulder_roll"][1] + 0.5  # past the upper limit
        cmd.publish(joint_trajectory(names, q, 0.02))
        (_, msg), = out.wait(1)
        sent = np.array(msg.points[0].positions)
        assert sent[roll] == pytest.approx(ranges["right"]["r_shoulder_roll"][1])
        np.testing.assert_allclose(np.delete(sent, roll), np.delete(rest, roll), atol=1e-12)
        # time-scaled to the arm's speed limit (the humanoid spec's, not the model's default): not 0.02 s
        step = abs(ranges["right"]["r_shoulder_roll"][1] - rest[roll])
        assert duration_to_s(msg.points[0].time_from_start) >= step / spec.velocity_limits["r_shoulder_roll"] - 1e-9
        assert streamer.filter.counters["clamped"] == 1

        estop.publish(Bool(data=True))
        assert [len(m.points) for _, m in out.wait(3)] == [1, 1, 0]  # the move, the hold, the stop
        n_out = len(out)
        for _ in range(3):
            cmd.publish(joint_trajectory(names, rest, 0.02))
            time.sleep(0.01)
        assert wait_for(lambda: streamer.filter.counters["blocked_estop"] >= 3, 3.0)
        time.sleep(0.05)
        assert len(out) == n_out, "an arm command got through while the e-stop was latched"
        estop.publish(Bool(data=False))
        time.sleep(0.05)
        fut = reset.call_async(Trigger.Request())
        assert wait_for(fut.done, 5.0) and fut.result().success, fut.result()
        cmd.publish(joint_trajectory(names, rest, 0.02))
        assert wait_for(lambda: len(out) > n_out, 3.0)


def test_humanoid_with_other_hands_or_an_arm_of_a_hand_is_a_clear_error():
    from handx_robot.ros.retarget_node import RetargetNode
    from handx_robot.ros.safety_streamer_node import SafetyStreamerNode
    from handx_robot.ros.sim_node import SimNode

    with RosGraph() as g:
        expected = r"'left_robot' is 'shadow_builtin_left', but humanoid 'gr1_inspire' carries 'inspire_builtin_left'"
        with pytest.raises(ConfigError, match=expected):
            g.add(RetargetNode, {"humanoid": HUMANOID, "left_robot": "shadow_builtin_left"})
        with pytest.raises(ConfigError, match=expected):
            g.add(SimNode, {"humanoid": HUMANOID, "left_robot": "shadow_builtin_left"}, name="sim2")
        with pytest.raises(ConfigError, match="must be a humanoid.*gr1_inspire"):
            g.add(SafetyStreamerNode, {"limb": "arm", "robot": "shadow_builtin_right"}, name="s2")
        with pytest.raises(ConfigError, match="limb"):
            g.add(SafetyStreamerNode, {"limb": "leg", "robot": HUMANOID}, name="s3")
