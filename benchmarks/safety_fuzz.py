"""Hostile command streams against the safety filter, checked by an audit written apart from it.

Streams (seeded, reproducible) mix smooth motions with what breaks filters: targets far outside the
limits and in other units, NaN / inf, permuted, missing, duplicate and extra joint names, wrong
lengths, ``time_from_start`` from 0 to 1e300 (1e-12 included), clocks that jitter, burst, stall and
go back, e-stops (and resets while engaged) and watchdog gaps, on every interface and mode at
30 / 100 / 500 Hz, on the built-in Shadow hand, Allegro and Inspire (those two from dex-urdf in
../shared, or --assets). :class:`handx_robot.safety.audit.SafetyAudit` checks every answer against
limits it reads from the robot model itself. Printed: violations by kind (all must be 0) and
commands/s; the filter's own cost per command in a 500 Hz Shadow stream (p50 / p99 us; budget
p99 <= 100 us); and, with ``--reference COMMIT``, the same streams through that commit's filter: its
violations (the bugs this filter fixes) and its cost, for the ratio.

    .venv/bin/python benchmarks/safety_fuzz.py [--commands 1000000] [--workers 2] [--reference ee18fd6]
"""

from __future__ import annotations

import argparse
import collections
import math
import multiprocessing as mp
import os
import subprocess
import sys
import time
import types
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
RERUN = ".venv/bin/python benchmarks/safety_fuzz.py"
ROBOTS = ("shadow_builtin_right", "allegro_right", "inspire_right")
RATES = (30.0, 100.0, 500.0)
DEFAULT_VELOCITY = 2.0  # rad/s for joints whose model has none (the streamer's default)

from handx_robot.safety import (  # noqa: E402
    SafetyConfig,
    SafetyFilter,
    limits_from_model,
    make_unit_mapping,
)
from handx_robot.safety.audit import VIOLATION_KINDS, SafetyAudit, read_limits  # noqa: E402


def robot_model(robot: str, assets: str | None) -> tuple[str, list[str]] | None:
    """(model path, controller joints) of a registry robot, None when its assets are missing."""
    from handx_robot.retarget.robots import get_robot

    try:
        spec = get_robot(robot, assets)
    except Exception as exc:  # noqa: BLE001 - reported, the robot is skipped
        print(f"  {robot}: skipped ({exc})")
        return None
    limited = {lim.name for lim in limits_from_model(spec.model_path, getattr(spec, "model_format", None))}
    return str(spec.model_path), [n for n in spec.joint_names if n in limited]


def episode_config(rng: np.random.Generator, robot: str, model: str, names: list[str]):
    """A random filter configuration and the matching independent audit."""
    interface = str(rng.choice(["trajectory", "position_stream"]))
    rate = float(rng.choice(RATES))
    amax = 50.0 if rng.random() < 0.5 else float(np.exp(rng.uniform(np.log(1.0), np.log(2000.0))))
    vscale = 1.0 if rng.random() < 0.7 else float(rng.uniform(0.05, 1.0))
    limits = tuple(
        lim.__class__(lim.name, lim.lower, lim.upper, lim.max_velocity * vscale, lim.max_acceleration)
        for lim in limits_from_model(model, default_velocity=DEFAULT_VELOCITY, default_acceleration=amax)
    )
    config = SafetyConfig(
        joint_names=tuple(names),
        limits=limits,
        position_mode=str(rng.choice(["clamp", "reject"], p=[0.8, 0.2])),
        velocity_mode=str(rng.choice(["scale", "reject"], p=[0.8, 0.2])),
        interface=interface,
        control_period_s=1.0 / rate,
        watchdog_periods=float(rng.choice([1.5, rng.uniform(0.5, 4.0)])),
        watchdog_stop_s=float(rng.choice([0.5, rng.uniform(0.0, 0.3)])),
        first_move_duration_s=float(rng.uniform(0.2, 1.5)),
        allow_partial=bool(rng.random() < 0.15),
        unit_mapping=make_unit_mapping("inspire" if robot.startswith("inspire") else "identity", limits),
    )
    lower, upper, vmax, amax_arr = read_limits(model, names, DEFAULT_VELOCITY, amax)
    audit = SafetyAudit(names, lower, upper, vmax * vscale, amax_arr, interface=interface,
                        control_period_s=config.control_period_s, watchdog_timeout_s=config.watchdog_timeout_s,
                        watchdog_stop_s=config.watchdog_stop_s, allow_partial=config.allow_partial)
    return config, audit, (lower, upper)


class HostileStream:
    """Commands, ticks and e-stops of one episode; independent of the filter's answers."""

    def __init__(self, rng: np.random.Generator, names: list[str], lower, upper, period: float) -> None:
        self.rng, self.names, self.period = rng, names, period
        self.lower, self.upper = lower, upper
        self.span = upper - lower
        n = len(names)
        self.center = rng.uniform(lower, upper)
        self.amp = rng.uniform(0.0, 0.8, n) * self.span
        self.freq = rng.uniform(0.05, 4.0, n)
        self.phase = rng.uniform(0, 2 * np.pi, n)
        self.jitter = float(rng.choice([0.0, 0.02, 0.2, 0.5]))
        self.t = float(rng.uniform(10.0, 1e5))  # a monotonic clock

    def start(self) -> np.ndarray:
        return self.rng.uniform(self.lower, self.upper)

    def next_time(self) -> tuple[float, float]:
        """(time of the command passed to the filter, the clock after it)."""
        r, p = self.rng.random(), self.period
        if r < 0.80:
            dt = p * max(0.0, 1.0 + self.rng.normal(0.0, self.jitter))
        elif r < 0.90:
            dt = float(self.rng.choice([0.0, 1e-12, 1e-9, 1e-6, 1e-4, 0.3 * p]))
        elif r < 0.97:
            dt = p * float(self.rng.uniform(1.2, 30.0))
        else:
            dt = 0.0
            back = float(self.rng.choice([1e-9, 1e-3, 1.0, 1e6]))
            return self.t - back, self.t  # the clock went back for this command only
        self.t += dt
        return self.t, self.t

    def target(self, t: float) -> np.ndarray:
        r, rng = self.rng.random(), self.rng
        smooth = self.center + self.amp * np.sin(2 * np.pi * self.freq * (t % 1000.0) + self.phase)
        if r < 0.55:
            return smooth
        if r < 0.70:
            return rng.uniform(self.lower - 0.5 * self.span, self.upper + 0.5 * self.span)
        if r < 0.82:
            return np.where(rng.random(len(self.names)) < 0.5, self.lower, self.upper) + rng.normal(0, 1e-3, len(self.names))
        if r < 0.86:
            return smooth * float(rng.choice([57.29577951308232, 1000.0, -1e6, 1e308]))
        if r < 0.92:
            q = smooth.copy()
            q[rng.integers(len(q))] = float(rng.choice([np.nan, np.inf, -np.inf]))
            return q
        return smooth + rng.normal(0.0, 0.05, len(self.names)) * self.span

    def duration(self) -> float | None:
        r, p = self.rng.random(), self.period
        if r < 0.6:
            return p
        choices = [None, 0.0, -1.0, 1e-12, 1e-9, 1e-6, 1e-3, 0.5 * p, 2 * p, 0.5, 10.0, 1e5, 1e300,
                   np.nan, np.inf, -np.inf]
        return choices[int(self.rng.integers(len(choices)))]

    def names_and_values(self, q: np.ndarray) -> tuple[list[str], list[float]]:
        r, rng, names = self.rng.random(), self.rng, list(self.names)
        if r < 0.85:
            return names, list(q)
        k = len(names)
        if r < 0.90:  # permuted: valid
            order = rng.permutation(k)
            return [names[i] for i in order], [float(q[i]) for i in order]
        if r < 0.93:  # a subset (valid only with allow_partial)
            keep = sorted(rng.choice(k, size=int(rng.integers(1, k)), replace=False))
            return [names[i] for i in keep], [float(q[i]) for i in keep]
        if r < 0.95:
            return names + [names[0]], list(q) + [float(q[0])]
        if r < 0.97:
            return names + ["not_a_joint"], list(q) + [0.0]
        if r < 0.99:
            return names, list(q)[: int(rng.integers(0, k))]
        return names, ["x"] * k


def run_episode(flt, audit, stream: HostileStream, n_commands: int, seed_state: bool) -> int:
    """Drive one episode through ``flt`` and ``audit``; returns the commands sent."""
    rng = stream.rng
    if seed_state:
        q0 = stream.start()
        audit.measured(stream.names, q0, flt.set_measured(stream.names, q0))
    engaged, reset_at = False, None
    for _ in range(n_commands):
        before = stream.t
        t_cmd, t_now = stream.next_time()
        tick = before + 0.5 * stream.period
        while tick < t_now:  # the watchdog thread wakes within gaps
            audit.tick(tick, flt.tick(tick))
            tick += 0.5 * stream.period
        audit.tick(t_now, flt.tick(t_now))
        if not engaged and rng.random() < 0.003:
            engaged, reset_at = True, int(rng.integers(1, 30))
            audit.estop(t_now, True, flt.estop(True, t_now))
        elif engaged:
            reset_at -= 1
            if rng.random() < 0.1:  # a reset while still engaged must be refused
                audit.reset(t_now, flt.reset(t_now)[0])
            if reset_at <= 0:
                engaged = False
                audit.estop(t_now, False, flt.estop(False, t_now))
                audit.reset(t_now, flt.reset(t_now)[0])
        names, values = stream.names_and_values(stream.target(t_cmd))
        duration = stream.duration()
        audit.command(t_cmd, names, values, duration, flt.filter(names, values, t_cmd, duration_s=duration))
    return n_commands


def worker(args: tuple) -> dict:
    seed, n_commands, robots, reference_source = args
    rng = np.random.default_rng(seed)
    ref = load_reference(reference_source) if reference_source else None
    stats = {"commands": 0, "seconds": 0.0, "violations": collections.Counter(), "examples": {},
             "ref_violations": collections.Counter(), "ref_examples": {}, "ref_errors": collections.Counter(),
             "per_config": collections.Counter()}
    while stats["commands"] < n_commands:
        robot, model, names = robots[int(rng.integers(len(robots)))]
        episode_seed = int(rng.integers(2**63))
        n = int(min(n_commands - stats["commands"], rng.integers(100, 2000)))
        erng = np.random.default_rng(episode_seed)
        config, audit, (lower, upper) = episode_config(erng, robot, model, names)
        seed_state = bool(erng.random() < 0.9)
        stream_seed = int(erng.integers(2**63))
        t0 = time.perf_counter()
        stream = HostileStream(np.random.default_rng(stream_seed), names, lower, upper, config.control_period_s)
        stats["commands"] += run_episode(SafetyFilter(config), audit, stream, n, seed_state)
        stats["seconds"] += time.perf_counter() - t0
        stats["per_config"][(robot, config.interface, config.position_mode, config.velocity_mode,
                             round(1 / config.control_period_s))] += n
        stats["violations"].update(audit.violations)
        for k, v in audit.examples.items():
            stats["examples"].setdefault(k, f"{robot} {config.interface} seed {episode_seed}: {v}")
        if ref is not None:  # the same stream through the reference filter
            _, ref_audit, _ = episode_config(np.random.default_rng(episode_seed), robot, model, names)
            ref_stream = HostileStream(np.random.default_rng(stream_seed), names, lower, upper, config.control_period_s)
            try:
                run_episode(ref.SafetyFilter(reference_config(ref, config)), ref_audit, ref_stream, n, seed_state)
            except Exception as exc:  # noqa: BLE001 - an exception is one of the reference's failures
                stats["ref_errors"][type(exc).__name__] += 1
            stats["ref_violations"].update(ref_audit.violations)
            for k, v in ref_audit.examples.items():
                stats["ref_examples"].setdefault(k, f"{robot} {config.interface} seed {episode_seed}: {v}")
    return stats


def dataclass_values(obj) -> list:
    return [getattr(obj, f) for f in obj.__dataclass_fields__]


def reference_config(ref: types.ModuleType, config: SafetyConfig):
    """``config`` in the reference module's types (fields it does not know are left out)."""
    fields = {f: getattr(config, f) for f in ref.SafetyConfig.__dataclass_fields__ if hasattr(config, f)}
    fields["limits"] = tuple(ref.JointLimit(*dataclass_values(lim)) for lim in config.limits)
    fields["unit_mapping"] = ref.UnitMapping(*dataclass_values(config.unit_mapping))
    return ref.SafetyConfig(**fields)


def reference_source(commit: str) -> str | None:
    """The reference commit's filter source (``handx_robot/safety.py``), or None where git cannot show it."""
    for path in ("handx_robot/safety.py", "handx_robot/safety/filter.py"):
        out = subprocess.run(["git", "-C", str(REPO), "show", f"{commit}:{path}"], capture_output=True, text=True)
        if out.returncode == 0:
            return out.stdout
    print(f"  reference {commit}: not found in git ({out.stderr.strip()}); comparison skipped")
    return None


def load_reference(source: str) -> types.ModuleType:
    module = types.ModuleType("reference_safety")
    module.__dict__["__name__"] = "reference_safety"
    sys.modules["reference_safety"] = module
    exec(compile(source, "reference_safety.py", "exec"), module.__dict__)  # noqa: S102 - our own git history
    return module


def cost_per_command(filter_cls, config_cls, limits, names, horizon: float, interface: str = "trajectory",
                     n: int = 4000, repeats: int = 5):
    """Per-call time of ``filter`` in a smooth 500 Hz stream inside the position limits whose
    commands ask to be reached in ``horizon`` control periods: (p50, p99) in us, each the median
    over ``repeats`` runs of ``n`` commands (the first tenth of each run not counted)."""
    config = config_cls.from_limits(limits, names, control_period_s=1 / 500, interface=interface)
    lower = np.array([lim.lower for lim in config.limits])
    upper = np.array([lim.upper for lim in config.limits])
    runs = []
    for _ in range(repeats):
        flt = filter_cls(config)
        flt.set_measured(names, (lower + upper) / 2)
        out = np.empty(n)
        for k in range(n):
            t = 100.0 + k / 500.0
            q = (lower + upper) / 2 + 0.3 * (upper - lower) * np.sin(2 * np.pi * 0.5 * t)
            t0 = time.perf_counter_ns()
            flt.filter(names, q, t, duration_s=horizon / 500)
            out[k] = (time.perf_counter_ns() - t0) / 1e3
        runs.append(np.percentile(out[n // 10:], [50, 99]))
    return tuple(np.median(np.array(runs), axis=0))


def noise_floor(n: int = 4000, repeats: int = 5) -> tuple[float, float]:
    """(p50, p99) in us of a fixed piece of numpy work (40 small multiplications): how much this
    machine alone stretches a p99 over its p50."""
    a = np.random.default_rng(0).random(20)
    runs = []
    for _ in range(repeats):
        out = np.empty(n)
        for k in range(n):
            t0 = time.perf_counter_ns()
            for _ in range(40):
                a * 2.0
            out[k] = (time.perf_counter_ns() - t0) / 1e3
        runs.append(np.percentile(out[n // 10:], [50, 99]))
    return tuple(np.median(np.array(runs), axis=0))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--commands", type=int, default=1_000_000)
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--assets", default=os.environ.get("HANDX_ROBOT_ASSETS") or str(REPO.parent / "shared/assets/dex-urdf"))
    ap.add_argument("--reference", default="", help="git commit whose filter runs the same streams (e.g. ee18fd6)")
    args = ap.parse_args()

    print(f"safety fuzz: {args.commands} commands, {args.workers} workers, seed {args.seed}")
    robots = []
    for robot in ROBOTS:
        found = robot_model(robot, args.assets)
        if found:
            robots.append((robot, *found))
            print(f"  {robot}: {len(found[1])} joints, limits from {found[0]}")
    source = reference_source(args.reference) if args.reference else None
    per_worker = math.ceil(args.commands / args.workers)
    jobs = [(args.seed * 1000 + i, per_worker, robots, source) for i in range(args.workers)]
    t0 = time.perf_counter()
    with mp.get_context("fork").Pool(args.workers) as pool:
        results = pool.map(worker, jobs)
    wall = time.perf_counter() - t0
    total = collections.Counter()
    for key in ("commands", "seconds"):
        total[key] = sum(r[key] for r in results)
    violations, ref_violations, ref_errors, per_config = (collections.Counter() for _ in range(4))
    examples, ref_examples = {}, {}
    for r in results:
        violations.update(r["violations"])
        ref_violations.update(r["ref_violations"])
        ref_errors.update(r["ref_errors"])
        per_config.update(r["per_config"])
        examples.update(r["examples"])
        ref_examples.update(r["ref_examples"])

    print(f"\n[1] {total['commands']} commands in {wall:.1f} s wall ({total['commands'] / wall:,.0f} commands/s with "
          f"the audit and the stream generator, {args.workers} workers)")
    configs = collections.Counter()
    for (robot, interface, *_), n in per_config.items():
        configs[(robot, interface)] += n
    for (robot, interface), n in sorted(configs.items()):
        print(f"    {robot:22s} {interface:16s} {n:9d} commands")
    print("    violations by kind (this filter):")
    for kind in VIOLATION_KINDS:
        print(f"      {kind:16s} {violations.get(kind, 0)}" + (f"   e.g. {examples[kind]}" if kind in examples else ""))
    print(f"    total violations: {sum(violations.values())}")

    if source:
        print(f"\n[2] the same streams through the filter of {args.reference}:")
        for kind in VIOLATION_KINDS:
            line = f"      {kind:16s} {ref_violations.get(kind, 0)}"
            print(line + (f"   e.g. {ref_examples[kind]}" if kind in ref_examples else ""))
        print(f"    episodes ended by an exception: {dict(ref_errors) or 0}")

    print("\n[3] cost of one command in a 500 Hz trajectory stream (us per filter() call, median of 5 runs; "
          "budget p99 <= 100)")
    robot, model, names = robots[0]
    limits = limits_from_model(model, default_velocity=DEFAULT_VELOCITY, default_acceleration=50.0)
    ref = load_reference(source) if source else None
    for interface, horizon, what in (
            ("trajectory", 3.0, "trajectory, time_from_start 3 periods (moves replaced while under way)"),
            ("trajectory", 1.0, "trajectory, time_from_start 1 period (moves end as the next comes: time-scaled)"),
            ("position_stream", 1.0, "position stream")):
        p50, p99 = cost_per_command(SafetyFilter, SafetyConfig, limits, names, horizon, interface)
        line = f"    {what}, {robot} ({len(names)} joints): this filter p50 {p50:.1f} p99 {p99:.1f}"
        if ref is not None:
            ref_limits = tuple(ref.JointLimit(*dataclass_values(lim)) for lim in limits)
            r50, r99 = cost_per_command(ref.SafetyFilter, ref.SafetyConfig, ref_limits, names, horizon, interface)
            line += f"; {args.reference} p50 {r50:.1f} p99 {r99:.1f} (p50 ratio this/reference {p50 / r50:.2f})"
        print(line)
    f50, f99 = noise_floor()
    print(f"    machine noise floor: fixed numpy work p50 {f50:.1f} p99 {f99:.1f} (p99/p50 {f99 / f50:.2f})")
    print(f"\nrerun: {RERUN} --commands {args.commands} --workers {args.workers} --seed {args.seed}"
          + (f" --reference {args.reference}" if args.reference else ""))
    return 1 if sum(violations.values()) else 0


if __name__ == "__main__":
    raise SystemExit(main())
