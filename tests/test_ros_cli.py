"""``handx-robot ros-run`` end to end in a subprocess: motion file -> retarget -> safety streamer -> sim."""

from __future__ import annotations

import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("rclpy")

from ros_harness import dexmv_motion_file  # noqa: E402

pytestmark = [pytest.mark.ros, pytest.mark.assets, pytest.mark.timeout(120)]


def test_ros_run_sim_end_to_end(dexmv_npz, dex_urdf_dir, tmp_path):
    motion = dexmv_motion_file(dexmv_npz, tmp_path / "m.npz", 30)
    exe = Path(sys.executable).with_name("handx-robot")
    env = dict(os.environ, ROS_DOMAIN_ID=str(random.SystemRandom().randint(1, 100)),
               ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST")
    proc = subprocess.run(
        [str(exe), "ros-run", "--prompt", "relocate the mustard bottle", "--motion-file", str(motion),
         "--robot", "shadow_right", "--mode", "sim", "--assets", str(dex_urdf_dir), "--duration", "15",
         "--until-done"],
        capture_output=True, text=True, timeout=90, env=env,
    )
    out = proc.stdout
    assert proc.returncode == 0, out[-2000:] + proc.stderr[-3000:]
    assert "text_to_motion:" in out and "status done" in out, out
    line = next(ln for ln in out.splitlines() if "safety_streamer_right:" in ln)
    forwarded = int(line.split(":")[1].split()[0])
    assert forwarded >= 15, line
    assert " 0 rejected" in line, line
    sim = next(ln for ln in out.splitlines() if ln.strip().startswith("sim:"))
    assert int(sim.split(":")[1].split()[0]) > 100, sim  # joint_states published


def test_ros_run_needs_something_to_perform():
    exe = Path(sys.executable).with_name("handx-robot")
    proc = subprocess.run([str(exe), "ros-run", "--robot", "shadow_right"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1 and "--prompt" in proc.stderr


def test_ros_run_real_mode_dry_run_keeps_normal_scheduling(dexmv_npz, dex_urdf_dir, tmp_path):
    """mode real (dry run: nothing reaches a controller): the streamer filters the motion; the
    realtime priority real mode asks for is not applied in ros-run's single process, and it says so."""
    motion = dexmv_motion_file(dexmv_npz, tmp_path / "m.npz", 20)
    exe = Path(sys.executable).with_name("handx-robot")
    env = dict(os.environ, ROS_DOMAIN_ID=str(random.SystemRandom().randint(1, 100)),
               ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST")
    proc = subprocess.run(
        [str(exe), "ros-run", "--motion-file", str(motion), "--robot", "shadow_right", "--mode", "real",
         "--dry-run", "--assets", str(dex_urdf_dir), "--duration", "15", "--until-done"],
        capture_output=True, text=True, timeout=90, env=env,
    )
    text = proc.stdout + proc.stderr
    assert proc.returncode == 0, text[-3000:]
    assert "realtime_priority 50 ignored" in text and "SCHED_FIFO priority" not in text, text[-3000:]
    line = next(ln for ln in proc.stdout.splitlines() if "safety_streamer_right:" in ln)
    assert int(line.split(":")[1].split()[0]) >= 10 and " 0 rejected" in line, line


@pytest.mark.timeout(90)
def test_ros_run_refused_prompt_stops_with_exit_1():
    """A prompt the grammar refuses ends ``--until-done`` at once (status 'refused: ...'), exit code 1."""
    exe = Path(sys.executable).with_name("handx-robot")
    env = dict(os.environ, ROS_DOMAIN_ID=str(random.SystemRandom().randint(1, 100)),
               ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST")
    proc = subprocess.run(
        [str(exe), "ros-run", "--prompt", "touch the nose with the right index finger", "--robot", "shadow_builtin_right",
         "--mode", "sim", "--duration", "40", "--until-done"],
        capture_output=True, text=True, timeout=80, env=env,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out[-3000:]
    assert "refused" in out, out[-3000:]
