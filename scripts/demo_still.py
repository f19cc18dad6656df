#!/usr/bin/env python
"""Regenerate the README still ``docs/demo.png``: one frame of the ``handx-robot run`` demo video.

Runs the whole pipeline (prompt -> motion -> retargeting -> MuJoCo replay video, robot view left,
human skeleton from the same viewpoint right), then picks the frame in the middle of the first contact
event of a kind in the generated human motion (default: the first right thumb-index ``pinch``;
``--event palm_palm`` for the clap) or ``--frame K``, and writes it as a PNG (palette-quantised when needed to stay under
``--max-kb``, default 300 KB).

    MUJOCO_GL=egl .venv/bin/python scripts/demo_still.py                 # -> docs/demo.png (first pinch)
    MUJOCO_GL=egl .venv/bin/python scripts/demo_still.py --event palm_palm --out /tmp/clap.png

Prints the frame index, its time and the event it shows.
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_PROMPT = "pinch with the right thumb and index finger twice, then clap"


def pick_frame(motion, event_kind: str) -> tuple[int, str]:
    """Frame index in the middle of the first ``event_kind`` contact event of ``motion`` and a description."""
    from handx_robot.features import contact_events

    events = [e for e in contact_events(motion) if e.kind == event_kind]
    if not events:
        raise SystemExit(f"demo_still: the generated motion has no {event_kind!r} contact event; give --frame K")
    e = events[0]
    k = int(round((e.start + e.end) / 2 * motion.fps))
    return min(k, motion.num_frames - 1), f"{e.kind} {e.a} - {e.b}, {e.start:.2f}-{e.end:.2f} s"


def encode_png(frame, max_kb: float) -> bytes:
    """PNG bytes of an RGB ``(H, W, 3)`` uint8 frame; palette-quantised (256 colours) if it exceeds ``max_kb``."""
    from PIL import Image

    img = Image.fromarray(frame)
    buf = io.BytesIO()
    img.save(buf, format="PNG", optimize=True)
    if buf.tell() > max_kb * 1024:
        buf = io.BytesIO()
        img.quantize(colors=256, method=Image.Quantize.MEDIANCUT).save(buf, format="PNG", optimize=True)
    if buf.tell() > max_kb * 1024:
        raise SystemExit(f"demo_still: the PNG is {buf.tell() / 1024:.0f} KB even quantised; lower --width/--height")
    return buf.getvalue()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--prompt", default=DEFAULT_PROMPT)
    p.add_argument("--out", default=str(ROOT / "docs" / "demo.png"), help="PNG to write (default docs/demo.png)")
    p.add_argument("--event", default="pinch", help="contact event kind to show: pinch (default), palm_palm (clap), ...")
    p.add_argument("--frame", type=int, default=None, help="frame index instead of --event")
    p.add_argument("--camera", default="front")
    p.add_argument("--width", type=int, default=640)
    p.add_argument("--height", type=int, default=480)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workdir", default=None, help="pipeline output folder (default: a temporary one)")
    p.add_argument("--max-kb", type=float, default=300.0)
    args = p.parse_args(argv)

    os.environ.setdefault("MUJOCO_GL", "egl")
    sys.path.insert(0, str(ROOT))
    import imageio.v2 as imageio

    from handx_robot.app.cli import main as cli_main
    from handx_robot.motion import atomic_write, load_motion

    with tempfile.TemporaryDirectory(prefix="handx_demo_") as tmp:
        work = Path(args.workdir or tmp)
        rc = cli_main(["run", args.prompt, "--out", str(work), "--camera", args.camera, "--width", str(args.width),
                       "--height", str(args.height), "--seed", str(args.seed), "--no-progress"])  # fmt: skip
        if rc:
            return rc
        motion = load_motion(work / "motion.npz")
        if args.frame is not None:
            k, what = args.frame, "frame chosen with --frame"
        else:
            k, what = pick_frame(motion, args.event)
        reader = imageio.get_reader(str(work / "replay.mp4"))
        try:
            n = reader.count_frames()
            if not 0 <= k < n:
                raise SystemExit(f"demo_still: --frame {k} out of range; the video has {n} frames")
            frame = reader.get_data(k)
        finally:
            reader.close()
    data = encode_png(frame, args.max_kb)
    out = atomic_write(Path(args.out), lambda t: Path(t).write_bytes(data))
    print(f"{out}: frame {k} of {n} (t = {k / motion.fps:.2f} s; {what}), {frame.shape[1]}x{frame.shape[0]}, "
          f"{len(data) / 1024:.0f} KB")  # fmt: skip
    print(f"rerun: MUJOCO_GL=egl .venv/bin/python scripts/demo_still.py {' '.join(argv or sys.argv[1:])}".rstrip())
    return 0


if __name__ == "__main__":
    sys.exit(main())
