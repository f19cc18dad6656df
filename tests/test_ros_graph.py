"""The whole text-to-hand graph over real DDS: prompt in -> safe commands on the controller topic
-> the MuJoCo sim node's /joint_states follow them. Real robot model (dex-urdf Shadow hand), real
human keypoints (DexMV), real rclpy; the motion comes from a motion file (parameter motion_file)."""

from __future__ import annotations

import time

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy")

from handx_robot.ros.common import LATCHED_QOS, STATE_QOS, STREAM_QOS  # noqa: E402
from handx_robot.ros.graph import GraphConfig, build_graph  # noqa: E402
from ros_harness import RosGraph, dexmv_motion_file, wait_for  # noqa: E402
from sensor_msgs.msg import JointState  # noqa: E402
from std_msgs.msg import String  # noqa: E402
from trajectory_msgs.msg import JointTrajectory  # noqa: E402

from handx_robot.safety import limits_from_model  # noqa: E402

pytestmark = [pytest.mark.ros, pytest.mark.assets, pytest.mark.timeout(120)]

FRAMES = 45  # 1.5 s at 30 fps


@pytest.fixture(scope="module")
def motion_file(dexmv_npz, tmp_path_factory):
    """The real DexMV right hand as a HandX motion file (left hand absent)."""
    return dexmv_motion_file(dexmv_npz, tmp_path_factory.mktemp("motion") / "dexmv.npz", FRAMES)


def _start(g: RosGraph, cfg: GraphConfig) -> dict:
    nodes = {}
    for spec in reversed(build_graph(cfg)):  # sinks first
        nodes[spec.name] = g.add(spec.load_factory(), dict(spec.parameters), name=spec.name)
    return nodes


def test_prompt_to_safe_commands_and_sim_follows(motion_file, dex_urdf_dir):
    from handx_robot.retarget.robots import get_robot

    spec = get_robot("shadow_right", str(dex_urdf_dir))
    limits = {lim.name: lim for lim in limits_from_model(spec.model_path, spec.model_format)}
    cfg = GraphConfig(robot="shadow_right", mode="sim", motion_file=motion_file, assets=str(dex_urdf_dir))
    with RosGraph() as g:
        nodes = _start(g, cfg)
        out = g.probe(JointTrajectory, "/right_hand_controller/joint_trajectory", STREAM_QOS)
        states = g.probe(JointState, "/joint_states", STATE_QOS)
        prompt_pub = g.node("user").create_publisher(String, "/handx/prompt", LATCHED_QOS)
        assert wait_for(lambda: len(states) > 0, 10.0), "the sim node publishes no /joint_states"
        t_prompt = time.monotonic()
        prompt_pub.publish(String(data="relocate the mustard bottle"))
        first = out.wait(1, timeout=10.0)
        assert first, "no command reached the controller topic"
        latency = first[0][0] - t_prompt
        assert latency < 2.0, f"prompt -> first safe command took {latency:.2f} s"

        streamer = nodes["safety_streamer_right"]
        t2m = nodes["text_to_motion"]
        assert wait_for(lambda: t2m.status.startswith("done"), 10.0), t2m.status
        assert wait_for(lambda: streamer.filter.state.value == "stopped", 5.0), streamer.filter.state
        cmds = [m for _, m in out.snapshot() if m.points]
        assert len(cmds) >= FRAMES // 2, (f"only {len(cmds)} commands for {FRAMES} frames", streamer.filter.counters, nodes["text_to_motion"].frames_published, nodes["retarget"].hands["right"].frames)
        for m in cmds:
            assert tuple(m.joint_names) == spec.joint_names
            q = np.array(m.points[0].positions)
            lo = np.array([limits[n].lower for n in m.joint_names])
            hi = np.array([limits[n].upper for n in m.joint_names])
            assert np.all(np.isfinite(q)) and np.all(q >= lo - 1e-9) and np.all(q <= hi + 1e-9)
        assert streamer.filter.counters["rejected"] == 0

        # the sim follows: after the stop, its joints settle near the last safe command
        time.sleep(0.5)
        target = dict(zip(cmds[-1].joint_names, cmds[-1].points[0].positions))
        t_last, js = states.snapshot()[-1]
        measured = dict(zip(js.name, js.position))
        err = np.array([abs(measured[n] - q) for n, q in target.items()])
        moved = np.array([abs(q) for q in target.values()])
        assert np.median(err) < 0.05 and np.percentile(err, 90) < 0.15, f"sim joint errors (rad): {np.round(err, 3)}"
        assert moved.max() > 0.1, "the commands never moved the hand: the test would prove nothing"

        # 100 Hz joint states over the run: the nominal period (median interval) within 5 %, and the
        # overall rate >= 80 Hz. One stall of the shared 2-core machine (up to ~0.3 s in 2 s) may
        # pass; a starved loop may not (rclpy's MultiThreadedExecutor took it to 31-50 Hz here).
        times = np.array([t for t, _ in states.snapshot()])
        window = times[(times > t_prompt) & (times < t_last)]
        rate = (len(window) - 1) / (window[-1] - window[0])
        period = float(np.median(np.diff(window)))
        assert period <= 1.05 / 100.0, f"/joint_states median period {period * 1e3:.2f} ms (nominal 10 ms)"
        assert rate >= 80.0, f"/joint_states at {rate:.1f} Hz over the run"
        assert nodes["text_to_motion"].status.startswith("done")


def test_graph_rejects_bad_arguments():
    from handx_robot.errors import ConfigError

    with pytest.raises(ConfigError, match="mode"):
        GraphConfig(mode="hardware")
    with pytest.raises(ConfigError, match="rate"):
        GraphConfig(rate="fast")
    with pytest.raises(ConfigError, match="controller"):
        GraphConfig(controller="effort")
    with pytest.raises(ConfigError, match="realtime_priority"):
        GraphConfig(realtime_priority="high")
    with pytest.raises(ConfigError, match="realtime_priority"):
        GraphConfig(realtime_priority=120)
    with pytest.raises(ConfigError, match="unknown graph arguments"):
        GraphConfig.from_strings({"robots": "x"})


def test_graph_declares_nodes_and_parameters(dex_urdf_dir):
    assets = str(dex_urdf_dir)  # mode real needs the hands' real models
    cfg = GraphConfig.from_strings({"robot": "inspire", "mode": "real", "controller": "forward_command",
                                    "rate": "500", "dry_run": "true", "assets": assets})
    specs = {s.name: s for s in build_graph(cfg)}
    assert set(specs) == {"text_to_motion", "retarget", "safety_streamer_left", "safety_streamer_right"}
    right = specs["safety_streamer_right"].parameters
    assert right["robot"] == "inspire_right" and right["unit_mapping"] == "inspire"
    assert right["controller"] == "forward_command" and right["control_rate_hz"] == 500.0 and right["dry_run"] is True
    assert right["state_topic"] == "/joint_states"
    assert right["realtime_priority"] == 50  # auto in mode:=real: SCHED_FIFO like ros2_control's loop
    sim_specs = {s.name: s for s in build_graph(GraphConfig(robot="shadow_right"))}
    assert "sim" in sim_specs and "safety_streamer_left" not in sim_specs
    assert sim_specs["safety_streamer_right"].parameters["state_topic"] == "/handx/right/joint_states"
    assert sim_specs["safety_streamer_right"].parameters["realtime_priority"] == 0
    real0 = build_graph(GraphConfig.from_strings({"mode": "real", "realtime_priority": "0", "assets": assets}))
    assert {s.name: s for s in real0}["safety_streamer_right"].parameters["realtime_priority"] == 0
    # every parameter the graph sets is one the node declares
    from handx_robot.ros import retarget_node, safety_streamer_node, sim_node, text_to_motion_node

    declared = {
        "text_to_motion": text_to_motion_node.PARAMS,
        "retarget": retarget_node.PARAMS,
        "safety_streamer_left": safety_streamer_node.PARAMS,
        "safety_streamer_right": safety_streamer_node.PARAMS,
        "sim": sim_node.PARAMS,
    }
    for specs_ in (specs, sim_specs):
        for name, spec in specs_.items():
            names = {p.name for p in declared[name]}
            assert set(spec.parameters) <= names, (name, set(spec.parameters) - names)
            for p in declared[name]:
                if p.name in spec.parameters:
                    p.validate(spec.parameters[p.name], name)  # values pass the node's own checks


def test_dex_urdf_robot_without_assets_is_simulated_by_the_builtin_hand_and_refused_for_real(monkeypatch, caplog):
    """README: ``robot:=shadow_right mode:=sim`` works without an asset directory (the built-in
    Shadow hand, said in one warning); ``mode:=real`` refuses with the fix."""
    from handx_robot.errors import ModelLoadError

    monkeypatch.delenv("HANDX_ROBOT_ASSETS", raising=False)
    with caplog.at_level("WARNING"):
        nodes = build_graph(GraphConfig(robot="shadow_right", mode="sim"))
    streamer = next(n for n in nodes if n.name == "safety_streamer_right")
    assert streamer.parameters["robot"] == "shadow_builtin_right"
    assert any("shadow_builtin_right" in r.getMessage() for r in caplog.records)
    with pytest.raises(ModelLoadError, match="--assets"):
        build_graph(GraphConfig(robot="shadow_right", mode="real"))
