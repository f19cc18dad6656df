"""The text-to-motion node says what it understood and never moves on a refused prompt (real DDS, one process).

After generating it publishes ``parsed: {json}`` on /handx/status before the motion streams; a prompt
the composer cannot perform gives ``refused: ...; try: ...`` and leaves the motion being streamed (or
none) exactly as it was; parameter ``lenient`` performs what was understood instead.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy")

from geometry_msgs.msg import PoseArray  # noqa: E402
from handx_robot.ros.common import LATCHED_QOS, TOPIC_PROMPT  # noqa: E402
from handx_robot.ros.text_to_motion_node import (  # noqa: E402
    PARAMS,
    TOPIC_STATUS,
    TextToMotionNode,
    make_motion,
    parsed_status,
    refused_status,
)
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy  # noqa: E402
from ros_harness import RosGraph, wait_for  # noqa: E402
from std_msgs.msg import String  # noqa: E402

from handx_robot.frames import FRAME_WORLD_ZUP  # noqa: E402
from handx_robot.generate.grammar import PromptRefused  # noqa: E402

pytestmark = [pytest.mark.ros, pytest.mark.timeout(180)]

GOOD = "clap twice"
REFUSED = ["touch the nose with the right index finger", "juggle three balls"]
DEEP = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=2000, reliability=ReliabilityPolicy.RELIABLE,
                  durability=DurabilityPolicy.VOLATILE)  # fmt: skip
#: every status, not only the latest (the node's publisher is latched, depth 1)
STATUS_LOG = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=200, reliability=ReliabilityPolicy.RELIABLE,
                        durability=DurabilityPolicy.TRANSIENT_LOCAL)  # fmt: skip


def _record_statuses(node) -> list[str]:
    """Every status the node sets from now on, in order (wraps the instance's ``_set_status``)."""
    said: list[str] = []
    original = node._set_status

    def record(status: str) -> None:
        said.append(status)
        original(status)

    node._set_status = record
    return said


def _frame(msg: PoseArray) -> np.ndarray:
    return np.array([[p.position.x, p.position.y, p.position.z] for p in msg.poses]).reshape(2, 21, 3)


# -- without ROS traffic -------------------------------------------------------------------------
def test_lenient_is_a_declared_parameter_off_by_default():
    spec = {p.name: p for p in PARAMS}["lenient"]
    assert spec.default is False


def test_make_motion_carries_the_parse_and_refuses():
    motion = make_motion(GOOD)
    parse = motion.meta["parse"]
    assert parse["prompt"] == GOOD and parse["unused"] == []
    status = parsed_status(motion)
    assert status.startswith("parsed: {") and "\n" not in status
    assert json.loads(status.removeprefix("parsed: ")) == parse
    with pytest.raises(PromptRefused):
        make_motion(REFUSED[0])
    with pytest.raises(PromptRefused):
        make_motion("clap twice loudly")
    lenient = make_motion("clap twice loudly", lenient=True)
    assert lenient.meta["parse"]["unused"] == ["loudly"]


def test_a_motion_file_or_a_motion_without_parse_has_no_parsed_status():
    motion = make_motion(GOOD).replace(meta={})
    assert parsed_status(motion) is None


def test_refused_status_names_the_reason_and_the_suggestions():
    exc = PromptRefused("juggle", ["'juggle' is not a hand action I know"], ["juggle"], ["clap twice", "wave"])
    assert refused_status(exc) == "refused: cannot perform 'juggle': 'juggle' is not a hand action I know; " \
                                  "try: clap twice | wave"  # fmt: skip
    with pytest.raises(PromptRefused) as info:
        make_motion(REFUSED[0])
    status = refused_status(info.value)
    assert status.startswith("refused: cannot perform") and "; try: " in status and "\n" not in status


# -- over DDS ------------------------------------------------------------------------------------
def test_the_parse_is_published_before_the_motion_streams():
    with RosGraph() as g:
        status = g.probe(String, TOPIC_STATUS, STATUS_LOG)
        t2m = g.add(TextToMotionNode, {"start_delay_s": 0.3})
        said = _record_statuses(t2m)
        t2m.start_prompt(GOOD)
        assert wait_for(lambda: t2m.status.startswith("done"), 30.0), said
        parsed = [s for s in said if s.startswith("parsed: ")]
        assert len(parsed) == 1, said
        i_parsed = said.index(parsed[0])
        assert said[:i_parsed] == ["generating"], said
        assert said[i_parsed + 1].startswith("streaming"), said
        assert said[-1].startswith("done"), said
        parse = json.loads(parsed[0].removeprefix("parsed: "))
        assert parse["prompt"] == GOOD
        assert {side for step in parse["steps"] for side in step["hands"]} == {"left", "right"}
        assert wait_for(lambda: any(m.data.startswith("parsed: ") for _, m in status.snapshot()), 5.0)


@pytest.mark.parametrize("prompt", REFUSED)
def test_a_refused_prompt_at_start_never_moves(prompt):
    with RosGraph() as g:
        status = g.probe(String, TOPIC_STATUS, STATUS_LOG)
        keypoints = g.probe(PoseArray, "/handx/keypoints", DEEP)
        t2m = g.add(TextToMotionNode, {"prompt": prompt})
        assert wait_for(lambda: t2m.status.startswith("refused"), 60.0), t2m.status
        assert "; try: " in t2m.status and prompt in t2m.status, t2m.status
        assert wait_for(lambda: any(m.data.startswith("refused: ") for _, m in status.snapshot()), 5.0)
        assert wait_for(lambda: len(keypoints) > 0, 1.0) is False, "a refused prompt moved the hands"
        assert t2m._motion is None and t2m.frames_published == 0
        assert not any(m.data.startswith(("parsed", "streaming")) for _, m in status.snapshot())


def test_a_refused_prompt_after_a_good_one_leaves_the_motion_unchanged():
    expected = make_motion(GOOD).in_frame(FRAME_WORLD_ZUP)
    with RosGraph() as g:
        keypoints = g.probe(PoseArray, "/handx/keypoints", DEEP)
        prompts = g.node("prompter").create_publisher(String, TOPIC_PROMPT, LATCHED_QOS)
        t2m = g.add(TextToMotionNode, {"start_delay_s": 0.3})
        said = _record_statuses(t2m)
        t2m.start_prompt(GOOD)
        assert wait_for(lambda: t2m.status.startswith("streaming"), 30.0), said
        streaming = t2m._motion
        assert streaming is not None and streaming.num_frames == expected.num_frames
        prompts.publish(String(data=REFUSED[0]))  # through the topic, as a user would
        assert wait_for(lambda: t2m.status.startswith("refused"), 30.0), said
        assert t2m._motion is streaming, "a refused prompt replaced the motion being streamed"
        assert wait_for(lambda: t2m.status.startswith("done"), 30.0), said
        assert said[-1] == f"done {expected.num_frames} frames", said
        assert not any(s.startswith("parsed") for s in said[said.index("generating", 1):]), said
        frames = [_frame(m) for _, m in keypoints.wait(expected.num_frames, 5.0)]
        assert wait_for(lambda: len(keypoints) > expected.num_frames, 1.0) is False, "frames beyond the old motion"
        assert len(frames) == expected.num_frames and t2m.frames_skipped == 0
        np.testing.assert_allclose(np.stack(frames), expected.joints, atol=1e-5)


def test_lenient_performs_what_was_understood():
    prompt = "clap twice loudly"
    with RosGraph() as g:
        strict = g.add(TextToMotionNode, {"prompt": prompt}, name="strict")
        lenient = g.add(TextToMotionNode, {"prompt": prompt, "lenient": True}, name="lenient")
        assert wait_for(lambda: strict.status.startswith("refused"), 30.0), strict.status
        assert "'loudly'" in strict.status
        assert wait_for(lambda: lenient.status.startswith("done"), 30.0), lenient.status
        assert lenient.frames_published > 0 and strict.frames_published == 0
