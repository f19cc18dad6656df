"""``handx-robot convert | describe | show`` end to end (handx_robot.cli_data through the CLI router)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from test_features import make_motion

from handx_robot import cli_data
from handx_robot.app.cli import main
from handx_robot.motion import load_motion
from handx_robot.readers import FORMATS


@pytest.fixture
def pinch_npy(tmp_path):
    m = make_motion(T=45)
    J = m.joints.copy()
    J[9:30, 1, 16] = J[9:30, 1, 17] + np.float32([0.005, 0, 0])
    p = tmp_path / "pinch.npy"
    np.save(p, J)
    return p


def test_convert_then_describe(tmp_path, pinch_npy, capsys):
    out = tmp_path / "m.npz"
    assert main(["convert", str(pinch_npy), "-o", str(out), "--text", "pinch once"]) == 0
    assert "wrote" in capsys.readouterr().out
    m = load_motion(out)
    assert m.num_frames == 45 and m.text == "pinch once"
    assert main(["describe", str(out)]) == 0
    text = capsys.readouterr().out
    assert "right thumb and index pinch 0.30–1.00 s" in text and "caption: pinch once" in text
    assert main(["describe", str(out), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["events"][0]["kind"] == "pinch" and data["hands"] == ["left", "right"]


def test_convert_resample_and_trim(tmp_path, pinch_npy):
    out = tmp_path / "m.npz"
    assert main(["convert", str(pinch_npy), "-o", str(out), "--trim", "0.5", "1.0", "--resample", "60"]) == 0
    m = load_motion(out)
    assert m.fps == 60.0 and m.duration == pytest.approx(0.5)


def test_show_writes_video_and_timeline(tmp_path, pinch_npy, capsys):
    video, plot = tmp_path / "v.mp4", tmp_path / "t.png"
    rc = main(["show", str(pinch_npy), "-o", str(video), "--plot", str(plot), "--size", "320", "160", "--no-progress"])
    assert rc == 0
    assert video.stat().st_size > 1000 and plot.read_bytes()[:4] == b"\x89PNG"
    assert "1 contact events" in capsys.readouterr().out
    assert main(["show", str(pinch_npy)]) == 1
    assert "nothing to do" in capsys.readouterr().err


def _nan(J):
    J[4, 1, 3, 0] = np.nan
    return J


@pytest.mark.parametrize(
    ("make", "extra", "message"),
    [
        (_nan, [], "NaN/inf"),
        (lambda J: J * 1000.0, [], "--units mm"),
        (lambda J: J, ["--hand", "left"], "no left hand data"),
        (lambda J: J[:, :1], [], "(10, 1, 21, 3) is neither a HandX skeleton"),
        (lambda J: J[:1], [], "at least 2 frames"),
        (lambda J: make_motion(T=10).joints[:, ::-1], [], "--swap-hands"),
    ],
)
def test_bad_input_fails_in_one_line_and_writes_nothing(tmp_path, capsys, make, extra, message):
    J = make_motion(T=10).joints.copy()
    J[:, 0] = 0.0  # right hand only
    src = tmp_path / "in.npy"
    np.save(src, make(J))
    out = tmp_path / "out.npz"
    assert main(["convert", str(src), "-o", str(out), *extra]) == 1
    err = capsys.readouterr().err
    assert err.startswith("handx-robot convert: error:") and message in err and err.count("\n") == 1
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.npy"]


def test_mm_input_converts_with_units_option(tmp_path):
    src = tmp_path / "mm.npy"
    m = make_motion(T=5)
    np.save(src, m.joints * 1000.0)
    assert main(["convert", str(src), "-o", str(tmp_path / "o.npz"), "--units", "mm"]) == 0
    np.testing.assert_allclose(load_motion(tmp_path / "o.npz").joints, m.joints, atol=1e-6)


def test_unknown_format_and_bad_output_name(tmp_path, capsys, pinch_npy):
    (tmp_path / "x.csv").write_text("1,2\n")
    assert main(["convert", str(tmp_path / "x.csv"), "-o", str(tmp_path / "o.npz")]) == 1
    err = capsys.readouterr().err
    assert "unknown extension" in err and "handx-mano-pkl" in err
    assert main(["convert", str(pinch_npy), "-o", str(tmp_path / "o.json")]) == 1
    assert "must end in .npz" in capsys.readouterr().err


def test_cli_format_choices_match_readers():
    assert set(cli_data._FORMAT_NAMES) == set(FORMATS)


def test_dexmv_convert_and_describe(tmp_path, dexmv_npz, capsys):
    out = tmp_path / "dexmv.npz"
    assert main(["convert", str(dexmv_npz), "-o", str(out), "--hand", "right", "--frame", "camera"]) == 0
    m = load_motion(out)
    assert m.num_frames == 122 and m.present_sides == ("right",)
    capsys.readouterr()
    assert main(["describe", str(out)]) == 0
    text = capsys.readouterr().out
    assert text.startswith("4.03 s, 122 frames at 30 fps; hands: right")
    assert main(["convert", str(dexmv_npz), "-o", str(out)]) == 1
    assert "--hand left or --hand right" in capsys.readouterr().err


def test_mano_file_without_model_says_what_to_provide(tmp_path, capsys, monkeypatch):
    import pickle

    monkeypatch.delenv("HANDX_MANO_DIR", raising=False)
    src = tmp_path / "sim.pkl"
    src.write_bytes(pickle.dumps({"left": {"pose": np.zeros((4, 48)), "shape": np.zeros((4, 10)),
                                           "trans": np.zeros((4, 3))}}))  # fmt: skip
    out = tmp_path / "o.npz"
    assert main(["convert", str(src), "-o", str(out)]) == 1
    err = capsys.readouterr().err
    assert "MANO_LEFT.pkl" in err and "--mano-dir" in err and "never shipped" in err
    assert not out.exists()
