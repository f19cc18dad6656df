"""``handx-robot robots`` and ``handx-robot retarget`` subcommands (heavy imports inside ``run_*``)."""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sys

__all__ = ["add_arguments_robots", "run_robots", "add_arguments_retarget", "run_retarget", "add_robot_arguments",
           "robot_settings", "retarget_with", "check_robot_settings", "ROBOT_OPTIONS"]

log = logging.getLogger(__name__)


def add_arguments_robots(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--assets", metavar="DIR", help="robot asset directory (dex-urdf layout); "
                        "default $HANDX_ROBOT_ASSETS")  # fmt: skip
    parser.add_argument("--json", action="store_true", help="machine-readable output")


def run_robots(args: argparse.Namespace) -> int:
    import dataclasses

    from handx_robot.retarget.robots import list_robots

    infos = list_robots(args.assets)
    if args.json:
        print(json.dumps([dataclasses.asdict(i) for i in infos], indent=2))
        return 0
    width = max(len(i.id) for i in infos)
    for i in infos:
        state = "available  " if i.available else "unavailable"
        extra = i.model_path if i.available else i.reason
        print(f"{i.id:<{width}}  {i.side:<5}  {state}  {i.source:<32}  {extra}")
    from handx_robot.retarget.humanoid import humanoid_ids

    print("\nvariants: ID@position (dex offline config), ID@dexpilot; a YAML config path also works as an id")
    print(f"humanoids (arms + hands, --robot ID): {', '.join(humanoid_ids())}; a humanoid YAML path also works")
    return 0


def add_arguments_retarget(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("motion", metavar="MOTION", help="human motion file (our .npz or any format `convert` reads)")
    add_robot_arguments(parser)
    parser.add_argument("--metrics", metavar="JSON", help="write the fidelity report here")
    parser.add_argument("--plot", metavar="PNG",
                        help="draw the result's contacts pair by pair (robot against human) and its penetration over "
                        "time here (robot hands; measured on the written result, one collision query a frame)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("-o", "--output", required=True, metavar="NPZ", help="robot motion file to write")
    from handx_robot.cli_data import add_input_options

    parser.add_argument("--workers", type=int, default=None, metavar="N",
                        help="processes that solve a long motion's bimanual stage in chunks side by side (default: the "
                        "CPUs available; the result is the same for any number)")
    add_input_options(parser.add_argument_group("reading MOTION (as `convert`: a one-hand file needs --hand)"))


#: The options of :func:`add_robot_arguments`, as :func:`retarget_with` reads them (``settings[name]``).
ROBOT_OPTIONS = ("robot", "left_robot", "right_robot", "assets", "solver", "method", "temporal_weight", "low_pass",
                 "interaction", "wrist_budget", "approach", "workspace_scale", "workspace_center", "workspace_yaw")  # fmt: skip


def robot_settings(args: argparse.Namespace) -> dict:
    """The :data:`ROBOT_OPTIONS` of parsed arguments, as a JSON-ready dict."""
    return {name: getattr(args, name) for name in ROBOT_OPTIONS}


def add_robot_arguments(parser: argparse.ArgumentParser) -> None:
    """Robots, solver and humanoid workspace options (shared by ``retarget`` and ``dataset retarget``)."""
    g = parser.add_argument_group("robots")
    g.add_argument("--robot", help="robot id for both hands, or a family shorthand (shadow -> shadow_left + "
                   "shadow_right; without --assets: the built-in Shadow). Default: shadow")  # fmt: skip
    g.add_argument("--left-robot", metavar="ID", help="robot id for the left hand")
    g.add_argument("--right-robot", metavar="ID", help="robot id for the right hand")
    g.add_argument("--assets", metavar="DIR", help="robot asset directory; default $HANDX_ROBOT_ASSETS")
    parser.add_argument("--solver", choices=("handx", "dex-retargeting"), default="handx",
                        help="handx (batched, default) or the dex-retargeting reference")  # fmt: skip
    parser.add_argument("--method", choices=("sequential", "coupled", "segments"), default=None,
                        help="the handx solver's offline method: sequential (default: the frames one after the other, "
                        "dex-retargeting's objective) or coupled (the whole clip's temporal term solved jointly: "
                        "smoother, slower; benchmarks/RESULTS.md); segments: an old name of sequential")  # fmt: skip
    parser.add_argument("--temporal-weight", type=float, default=None,
                        help="lambda of lambda*|q_t - q_{t-1}|^2 (default: the config's normal_delta)")  # fmt: skip
    parser.add_argument("--low-pass", action="store_true", help="apply the config's low_pass_alpha filter")
    parser.add_argument("--interaction", choices=("auto", "off"), default="auto",
                        help="auto (default): with two hands, solve the frames where they interact bimanually "
                             "(contacts kept, no hand-hand or finger-finger penetration, wrists may adapt); "
                             "off: each hand on its own")
    parser.add_argument("--wrist-budget", type=float, default=None, metavar="M",
                        help="wrist adaptation the bimanual solve pays for at the base rate, metres (default 0.04)")
    parser.add_argument("--approach", type=float, default=None, metavar="S",
                        help="how long before a contact the robot pair starts closing in on it where it would be apart "
                        "when the contact begins, seconds (default 0.3; 0: the contact is reached at its first frame)")
    h = parser.add_argument_group("humanoids (--robot gr1_inspire, gr1_fourier or a humanoid YAML)")
    h.add_argument("--workspace-scale", type=float, metavar="S", help="scale of the hands' shared trajectory "
                   "(default: the humanoid's; 'auto' there = the largest <= 1 the arms reach)")  # fmt: skip
    h.add_argument("--workspace-center", type=float, nargs=3, metavar=("X", "Y", "Z"),
                   help="where the motion's mean hand midpoint goes, world metres (default: fitted near the humanoid's)")
    h.add_argument("--workspace-yaw", type=float, metavar="RAD", help="extra rotation of the motion about world z")


def interaction_table(sec: dict) -> str:
    """The ``interaction`` report section as a plain-text table (contact F1 per type, penetration, wrists)."""
    rows = ["contact type       F1     precision recall  human robot"]
    cf = sec["contact_f1"]
    two = len(sec.get("sides", ("left", "right"))) == 2  # one hand: nothing across the hands to report
    groups = [("inter-hand (all)", cf["inter_hand"])] if two else []
    for name, r in groups + [("intra-hand (all)", cf["intra_hand"])] + [(f"  {k}", v) for k, v in cf["by_kind"].items()]:
        rows.append(f"{name:<18} {r['f1']:.2f}   {r['precision']:.2f}      {r['recall']:.2f}    "
                    f"{r['human_events']:>5} {r['robot_events']:>5}")  # fmt: skip
    pens = (("hand-hand penetration", "hand_hand_penetration_m"),) if two else ()
    for name, key in (*pens, ("finger-finger penetration", "self_penetration_m")):
        p = sec[key]
        rows.append(f"{name}: max {p['max'] * 1000:.1f} mm, p95 {p['p95'] * 1000:.1f} mm, {p['frames']} frames "
                    f"({p['frames_over_2mm']} over 2 mm)")  # fmt: skip
    if "wrist_deviation_m" in sec:
        rows.append(f"wrist deviation from the scaled human wrist: mean {sec['wrist_deviation_m']['mean'] * 1000:.1f} mm, "
                    f"max {sec['wrist_deviation_m']['max'] * 1000:.1f} mm, max {sec['wrist_deviation_rad']['max']:.3f} rad")
    bf = sec["bimanual_frames"]
    why = ", ".join(f"{n} {r}" for r, n in bf.get("by_reason", {}).items() if n)
    rows.append(f"{'bimanual solve' if two else 'solve (one hand)'}: {bf['count']} frames ({bf['fraction'] * 100:.0f} %{': ' + why if why else ''}), "
                f"{bf['non_converged']} not converged, {bf.get('second_starts', 0)} from a second start, "
                f"{bf.get('pulled_back', 0)} solved again before a second start or ramped into a step, "
                f"{bf.get('faded', 0)} fading a correction without a solve, "
                f"{bf.get('untangled', 0)} fading with one step for fingers that would cross, "
                f"{sec['frames_per_second']:.0f} frames/s")  # fmt: skip
    chunks = sec.get("chunks") or {}
    if chunks.get("count", 1) > 1:
        at = ", ".join(map(str, chunks["splices"])) if len(chunks["splices"]) <= 4 else "(the report's chunks.splices)"
        rows[-1] += f", in {chunks['count']} chunks on {min(sec['options']['workers'], chunks['count'])} process(es), spliced at {at}"
    return "\n".join(rows)


def _read(args: argparse.Namespace):
    """The human motion ``args.motion``, read with the reader options (those of ``convert``)."""
    from pathlib import Path

    from handx_robot.cli_data import read_input
    from handx_robot.errors import MotionFormatError

    p = Path(args.motion)
    if not p.is_file():
        raise MotionFormatError(f"{p}: motion file not found")
    return read_input(args, p)


def humanoid_table(sec: dict) -> str:
    """The ``humanoid`` report section as plain text: per side hand-pose tracking, clearances, limits, speed."""
    ws = sec["workspace"]
    reach = ws.get("reach_fraction") or {}
    rows = [f"{sec['robot']}: workspace scale {ws['scale']:.2f}, centre {[round(c, 3) for c in ws['center_m']]} m"
            f"{' (fitted)' if ws['automatic'] else ''}, targets in reach {100 * reach.get('all', float('nan')):.1f} %",
            "side   within 1 cm/0.1 rad  pos err mean/p95/max (mm)   rot err mean/p95/max (rad)  unreachable"]
    for side, v in sec["sides"].items():
        p, r = v["position_error_m"], v["rotation_error_rad"]
        rows.append(f"{side:<6} {100 * v['within_1cm_0.1rad']:>6.1f} %             "
                    f"{p['mean'] * 1e3:5.1f} / {p['p95'] * 1e3:5.1f} / {p['max'] * 1e3:5.1f}     "
                    f"{r['mean']:.3f} / {r['p95']:.3f} / {r['max']:.3f}       {v['unreachable_frames']}")  # fmt: skip
    for pair, c in sec["clearance"].items():
        rows.append(f"clearance {pair:<9}: min {c['min_distance_m'] * 1e3:6.1f} mm, {c['frames_deeper_than_2mm']} frames deeper than 2 mm")
    js, lm = sec["joint_speed"], sec["joint_limit_margin_rad"]
    rows.append(f"arm joint speed: max {js['max_fraction_of_limit']:.2f} of the limit ({js['joint']}), "
                f"{js['frames_over_limit']} frames over; joint-limit margin min {lm['min']:.3f} rad ({lm['joint']})")
    fps = sec["frames_per_second"]
    rows.append(f"frames/s: arms {fps['arms']:.0f}, upper body {fps['upper_body']:.0f}; IK iterations/frame "
                f"{sec['ik_iterations_mean']:.1f}, global replans {sec['ik_replans']}")
    return "\n".join(rows)


def check_robot_settings(settings: dict) -> None:
    """Refuse option combinations that cannot work (before any file is read)."""
    from handx_robot.retarget.humanoid import is_humanoid

    from handx_robot.errors import ConfigError

    if is_humanoid(settings["robot"]):
        if settings["left_robot"] or settings["right_robot"]:
            raise ConfigError(f"--robot {settings['robot']} is a humanoid: its hands come with it; "
                              "drop --left-robot/--right-robot")  # fmt: skip
        if settings["solver"] != "handx":
            raise ConfigError("humanoids are retargeted with --solver handx only")
        if settings.get("method"):
            raise ConfigError("--method is not taken for a humanoid (its hands use the default method); drop it")
    if settings.get("method") and settings["solver"] != "handx":
        raise ConfigError(f"--method is the handx solver's; drop it with --solver {settings['solver']}")


def retarget_with(motion, settings: dict, progress=None, log_robots: bool = False, workers: int = 1):
    """Retarget ``motion`` as the options of :func:`add_robot_arguments` (``settings``, see
    :func:`robot_settings`) ask: onto a humanoid or onto robot hands. ``workers``: the processes of a long motion's
    bimanual stage (:mod:`.interaction.chunks`; not a setting: the result is the same for any number). Returns
    ``(RobotMotion, report)``."""
    from handx_robot.retarget.bimanual import retarget_motion
    from handx_robot.retarget.humanoid import is_humanoid
    from handx_robot.retarget.interaction import InteractionOptions
    from handx_robot.retarget.robots import resolve_robot_specs
    from handx_robot.retarget.solver import SolverOptions

    check_robot_settings(settings)
    if is_humanoid(settings["robot"]):
        from handx_robot.retarget.humanoid.retarget import retarget_humanoid

        return retarget_humanoid(motion, settings["robot"], interaction=settings["interaction"],
                                 scale=settings["workspace_scale"], center=settings["workspace_center"],
                                 yaw=settings["workspace_yaw"], progress=progress)  # fmt: skip
    # without assets a dex-urdf hand is simulated by the built-in hand of its family (one warning)
    specs = resolve_robot_specs(settings["robot"], settings["left_robot"], settings["right_robot"], settings["assets"],
                                motion.present_sides)  # fmt: skip
    if log_robots:
        for s in ("left", "right"):
            if s in specs:
                log.info("%s hand -> %s (%s, %s)", s, specs[s].id, specs[s].model_path, specs[s].source)
    opts = SolverOptions(temporal_weight=settings["temporal_weight"], low_pass=settings["low_pass"],
                         method=settings.get("method") or "sequential")  # fmt: skip
    inter = InteractionOptions(mode=settings["interaction"])
    if settings["wrist_budget"] is not None:
        inter = dataclasses.replace(inter, wrist_budget_m=settings["wrist_budget"])
    if settings.get("approach") is not None:
        inter = dataclasses.replace(inter, approach_s=settings["approach"])
    inter = dataclasses.replace(inter, workers=workers)
    return retarget_motion(
        motion, specs.get("left"), specs.get("right"), assets=settings["assets"], solver=settings["solver"],
        options=opts, metrics=True, progress=progress, interaction=inter,
    )  # fmt: skip


def _write_metrics(path: str | None, report: dict) -> None:
    if path:
        from pathlib import Path

        from handx_robot.motion import atomic_write

        text = json.dumps(report, indent=1, default=float)
        atomic_write(path, lambda tmp: Path(tmp).write_text(text))


def run_retarget(args: argparse.Namespace) -> int:
    from handx_robot.retarget.humanoid import is_humanoid
    from handx_robot.retarget.interaction.chunks import default_workers
    from handx_robot.retarget.robot_motion import save_robot_motion

    settings = robot_settings(args)
    workers = default_workers() if args.workers is None else args.workers
    check_robot_settings(settings)
    if args.plot and is_humanoid(args.robot):
        from handx_robot.errors import ConfigError

        raise ConfigError("--plot draws robot hands' contacts; a humanoid's report has its own figures (drop --plot)")
    motion = _read(args)
    if is_humanoid(args.robot):
        rm, report = retarget_with(motion, settings)
        out = save_robot_motion(rm, args.output)
        print(humanoid_table(report["humanoid"]))
        if "interaction" in report:
            print(interaction_table(report["interaction"]))
        _write_metrics(args.metrics, report)
        print(f"wrote {out}")
        return 0
    one_robot_only = bool(args.left_robot) != bool(args.right_robot)  # the other hand is not retargeted
    total = motion.num_frames * (1 if one_robot_only else len(motion.present_sides))
    bar = None
    if not args.no_progress and total >= 2000 and sys.stderr.isatty():
        from tqdm import tqdm

        bar = tqdm(total=total, unit="frame", desc="retarget", file=sys.stderr)
    try:
        robot_motion, report = retarget_with(motion, settings, progress=bar.update if bar is not None else None,
                                             log_robots=True, workers=workers)  # fmt: skip
    finally:
        if bar is not None:
            bar.close()
    out = save_robot_motion(robot_motion, args.output)
    for side, h in report["hands"].items():
        nc = h["non_converged_frames"]
        print(
            f"{side}: {h['robot']}  {h['num_frames']} frames  {h['frames_per_second']:.0f} frames/s  "
            f"objective {h['objective']['mean']:.3g}  tip shape err {h['fingertip_shape_error_m']['mean'] * 1000:.1f} mm  "
            f"non-converged {nc['count']}  limit violations {h['joint_limit_violations']['count']}"
        )
    if "bimanual" in report:
        pen = report["bimanual"].get("interpenetration", {})
        if "max_depth_m" in pen:
            print(f"interpenetration: max {pen['max_depth_m'] * 1000:.1f} mm in {pen['frames_with_penetration']} "
                  f"of {pen['frames_checked']} frames checked")  # fmt: skip
    if "interaction" in report:
        print(interaction_table(report["interaction"]))
    _write_metrics(args.metrics, report)
    print(f"wrote {out}")
    if args.plot:
        print(f"wrote {_plot(robot_motion, args, settings)}")
    return 0


def _plot(robot_motion, args: argparse.Namespace, settings: dict):
    """``--plot``: the result's interaction timeline (:mod:`.interaction.timeline`), with a progress bar on a long
    motion."""
    from handx_robot.retarget.interaction.timeline import interaction_timeline, plot_interaction_timeline

    bar = None
    if not args.no_progress and robot_motion.num_frames >= 2000 and sys.stderr.isatty():
        from tqdm import tqdm

        bar = tqdm(total=robot_motion.num_frames, unit="frame", desc="plot", file=sys.stderr)
    try:
        tl = interaction_timeline(robot_motion, settings["assets"], progress=bar.update if bar is not None else None)
    finally:
        if bar is not None:
            bar.close()
    robots = " + ".join(h.robot for h in robot_motion.hands.values())
    return plot_interaction_timeline(tl, args.plot, title=f"{robots}, interaction {settings['interaction']}")
