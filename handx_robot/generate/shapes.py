"""Named hand shapes (joint-angle vectors of :mod:`handx_robot.generate.handmodel`).

Plain shapes are written in degrees; shapes defined by a contact (pinches, OK sign, lateral grasp,
finger rubbing) are solved once by inverse kinematics on the hand model and cached, so the
contact holds for the model's bone lengths: thumb tip to fingertip :data:`PINCH_GAP_M` apart.
"""

from __future__ import annotations

import functools

import numpy as np

from handx_robot.errors import ConfigError, SolverError
from handx_robot.generate.handmodel import (
    LIMITS_HIGH,
    LIMITS_LOW,
    LONG_FINGERS,
    NUM_ANGLES,
    angle_index,
    clip_angles,
    forward_kinematics,
)

__all__ = [
    "PINCH_GAP_M",
    "PINCH_OPEN_MIN_M",
    "SHAPE_NAMES",
    "derive_contact_shapes",
    "hand_shape",
    "shape_from_degrees",
]

#: Thumb tip to fingertip keypoint distance of a closed pinch (pads touching), metres.
PINCH_GAP_M = 0.008
#: Thumb tip to fingertip distance of an opened pinch, at least, metres.
PINCH_OPEN_MIN_M = 0.055

_TIP = {"thumb": 16, "index": 17, "middle": 18, "ring": 19, "pinky": 20}


def shape_from_degrees(fingers: dict[str, tuple[float, float, float, float]], thumb: tuple[float, ...]) -> np.ndarray:
    """Angles ``(20,)`` radians from per-finger ``(abd, mcp, pip, dip)`` and thumb ``(opp, abd, mcp, ip)`` degrees."""
    out = np.zeros(NUM_ANGLES)
    for k, f in enumerate(LONG_FINGERS):
        out[4 * k : 4 * k + 4] = np.deg2rad(fingers[f])
    out[16:20] = np.deg2rad(thumb)
    return clip_angles(out)


def _same(dofs: tuple[float, float, float, float], spread: float = 0.0) -> dict[str, tuple[float, ...]]:
    """All long fingers with flexion ``dofs[1:]``; abduction fanned by ``spread`` degrees."""
    fan = {"index": 1.0, "middle": 0.2, "ring": -0.6, "pinky": -1.2}
    return {f: (dofs[0] + spread * fan[f], *dofs[1:]) for f in LONG_FINGERS}


_FIST_FINGER = (0.0, 85.0, 100.0, 55.0)
_FIST_THUMB = (30.0, 0.0, 50.0, 55.0)

_PLAIN: dict[str, np.ndarray] = {
    "relaxed": shape_from_degrees(_same((0.0, 22.0, 28.0, 12.0), spread=4.0), (5.0, 15.0, 5.0, 5.0)),
    "open": shape_from_degrees(_same((0.0, 0.0, 2.0, 2.0), spread=12.0), (0.0, 10.0, 0.0, 0.0)),
    "flat": shape_from_degrees(_same((0.0, 0.0, 2.0, 2.0), spread=-3.0), (25.0, -10.0, -10.0, -10.0)),
    "fist": shape_from_degrees(_same(_FIST_FINGER), _FIST_THUMB),
    "point": shape_from_degrees(
        {**_same(_FIST_FINGER), "index": (2.0, 2.0, 3.0, 2.0)}, (30.0, 0.0, 50.0, 55.0)
    ),
    "thumbs_up": shape_from_degrees(_same(_FIST_FINGER), (-5.0, 15.0, 0.0, 0.0)),
    "count_2": shape_from_degrees(
        {**_same(_FIST_FINGER), "index": (8.0, 0.0, 2.0, 2.0), "middle": (-6.0, 0.0, 2.0, 2.0)},
        (50.0, 20.0, 40.0, 35.0),
    ),
    "count_3": shape_from_degrees(
        {
            **_same(_FIST_FINGER),
            "index": (8.0, 0.0, 2.0, 2.0),
            "middle": (0.0, 0.0, 2.0, 2.0),
            "ring": (-8.0, 0.0, 2.0, 2.0),
        },
        (60.0, 25.0, 40.0, 35.0),
    ),
    "count_4": shape_from_degrees(_same((0.0, 0.0, 2.0, 2.0), spread=10.0), (60.0, 15.0, 40.0, 35.0)),
    "steeple": shape_from_degrees(_same((0.0, 12.0, 10.0, 5.0), spread=8.0), (5.0, 30.0, 5.0, 5.0)),
    "interlock": shape_from_degrees(_same((0.0, 72.0, 45.0, 20.0), spread=14.0), (10.0, 30.0, 10.0, 10.0)),
    "piano": shape_from_degrees(_same((0.0, 25.0, 35.0, 15.0), spread=4.0), (0.0, 12.0, 5.0, 5.0)),
    "grasp_cylindrical": shape_from_degrees(_same((0.0, 45.0, 50.0, 25.0)), (5.0, 35.0, 5.0, 5.0)),
    "grasp_spherical": shape_from_degrees(_same((0.0, 38.0, 42.0, 25.0), spread=12.0), (-5.0, 30.0, 0.0, 0.0)),
    "write": shape_from_degrees(
        {**_same((0.0, 60.0, 75.0, 40.0)), "index": (2.0, 20.0, 20.0, 10.0)}, (40.0, 30.0, 25.0, 20.0)
    ),
}
_PLAIN["count_1"] = _PLAIN["point"]
_PLAIN["count_5"] = _PLAIN["open"]

#: Contact shapes solved by :func:`derive_contact_shapes` (degrees, :data:`ANGLE_NAMES` order), stored so
#: that generation does not run an optimiser; ``tests/test_generate_handmodel.py`` re-derives them.
_SOLVED_DEG: dict[str, tuple[float, ...]] = {
    "pinch_index": (0.0, 22.93, 51.59, 31.82, 0.4, 25.0, 30.0, 12.0, -1.2, 25.0, 30.0, 12.0, -2.4, 25.0, 30.0, 12.0, 6.16, 37.04, 5.39, 6.53),
    "pinch_middle": (2.0, 25.0, 30.0, 12.0, 0.0, 26.17, 64.84, 39.89, -1.2, 25.0, 30.0, 12.0, -2.4, 25.0, 30.0, 12.0, 13.49, 43.69, 8.1, 7.59),
    "pinch_ring": (2.0, 25.0, 30.0, 12.0, 0.4, 25.0, 30.0, 12.0, 0.0, 31.41, 60.09, 35.76, -2.4, 25.0, 30.0, 12.0, 24.05, 46.58, 9.54, 8.26),
    "pinch_pinky": (2.0, 25.0, 30.0, 12.0, 0.4, 25.0, 30.0, 12.0, -1.2, 25.0, 30.0, 12.0, 0.0, 39.0, 38.64, 20.1, 41.17, 40.86, 9.66, 9.51),
    "ok": (0.0, 22.93, 51.59, 31.82, 2.0, 5.0, 5.0, 3.0, -8.0, 5.0, 5.0, 3.0, -16.0, 5.0, 5.0, 3.0, 6.16, 37.04, 5.39, 6.53),
    "rub_index": (0.0, 22.93, 51.59, 31.82, 0.4, 40.0, 45.0, 20.0, -1.2, 40.0, 45.0, 20.0, -2.4, 40.0, 45.0, 20.0, 6.16, 37.04, 5.39, 6.53),
    "rub_middle": (2.0, 40.0, 45.0, 20.0, 0.0, 26.17, 64.84, 39.89, -1.2, 40.0, 45.0, 20.0, -2.4, 40.0, 45.0, 20.0, 13.49, 43.69, 8.1, 7.59),
    "grasp_lateral": (0.0, 48.54, 73.26, 40.0, 0.0, 65.0, 80.0, 40.0, 0.0, 65.0, 80.0, 40.0, 0.0, 65.0, 80.0, 40.0, 10.98, 12.96, 31.61, 17.88),
}  # fmt: skip
_SOLVED = tuple(_SOLVED_DEG) + tuple(f"pinch_open_{f}" for f in LONG_FINGERS)
SHAPE_NAMES: tuple[str, ...] = tuple(sorted(set(_PLAIN) | set(_SOLVED)))


def _solve(nominal: np.ndarray, free: tuple[str, ...], residual_fn, reg: float = 0.02) -> np.ndarray:
    """Least-squares IK over the angles named in ``free``, regularised toward ``nominal``."""
    from scipy.optimize import least_squares

    idx = np.array([angle_index(n) for n in free])
    x0 = nominal[idx]

    def full(x: np.ndarray) -> np.ndarray:
        q = nominal.copy()
        q[idx] = x
        return q

    def fun(x: np.ndarray) -> np.ndarray:
        return np.concatenate([residual_fn(forward_kinematics(full(x))), reg * (x - x0)])

    def jac(x: np.ndarray) -> np.ndarray:  # forward differences, all perturbations in one batched FK
        eps = 1e-7
        X = np.concatenate([x[None], x[None] + eps * np.eye(len(x))])
        Q = np.repeat(nominal[None], len(X), axis=0)
        Q[:, idx] = X
        K = forward_kinematics(Q)
        R = np.stack([residual_fn(k) for k in K])
        J = (R[1:] - R[0]).T / eps
        return np.concatenate([J, reg * np.eye(len(x))])

    lo, hi = LIMITS_LOW[idx], LIMITS_HIGH[idx]
    res = least_squares(fun, np.clip(x0, lo + 1e-6, hi - 1e-6), jac=jac, bounds=(lo, hi), xtol=1e-8, ftol=1e-8)
    q = full(res.x)
    err = np.abs(residual_fn(forward_kinematics(q))).max()
    if err > 1e-2:  # residuals are 10x metres: 1 mm
        raise SolverError(
            f"hand shape IK did not converge (max residual {err * 100:.1f} mm over angles {free}); "
            "this is a bug in the shape definitions of handx_robot.generate.shapes"
        )
    return q


def _tip_distance(a: str, b: str, dist: float):
    return lambda k: np.array([10.0 * (np.linalg.norm(k[_TIP[a]] - k[_TIP[b]]) - dist)])


def _pinch(finger: str, gap: float, others: tuple[float, float, float, float]) -> np.ndarray:
    fingers = _same(others, spread=2.0)
    fingers[finger] = (0.0, 35.0, 35.0, 18.0)
    nominal = shape_from_degrees(fingers, (40.0, 40.0, 10.0, 10.0))
    free = (
        f"{finger}_mcp",
        f"{finger}_pip",
        f"{finger}_dip",
        "thumb_cmc_opp",
        "thumb_cmc_abd",
        "thumb_mcp",
        "thumb_ip",
    )
    return _solve(nominal, free, _tip_distance("thumb", finger, gap))


def derive_contact_shapes() -> dict[str, np.ndarray]:
    """Solve the contact shapes by IK on the hand model (radians); the source of ``_SOLVED_DEG``."""
    out = {}
    for finger in LONG_FINGERS:
        out[f"pinch_{finger}"] = _pinch(finger, PINCH_GAP_M, (0.0, 25.0, 30.0, 12.0))
    q = _pinch("index", PINCH_GAP_M, (0.0, 5.0, 5.0, 3.0))
    for f, a in (("middle", 2.0), ("ring", -8.0), ("pinky", -16.0)):  # the OK sign fans its other fingers
        q[angle_index(f"{f}_abd")] = np.deg2rad(a)
    out["ok"] = q
    for finger in ("index", "middle"):
        out[f"rub_{finger}"] = _pinch(finger, PINCH_GAP_M, (0.0, 40.0, 45.0, 20.0))
    # key pinch: curled fingers, thumb pad on the radial side of the index middle phalanx
    nominal = shape_from_degrees(_same((0.0, 65.0, 80.0, 40.0)), (10.0, 10.0, 20.0, 10.0))

    def residual(k: np.ndarray) -> np.ndarray:
        side = 0.5 * (k[2] + k[3])  # middle of the index middle phalanx
        return np.array([10.0 * (np.linalg.norm(k[_TIP["thumb"]] - side) - 0.012)])

    free = ("index_mcp", "index_pip", "thumb_cmc_opp", "thumb_cmc_abd", "thumb_mcp", "thumb_ip")
    out["grasp_lateral"] = _solve(nominal, free, residual)
    return out


@functools.cache
def _solved(name: str) -> np.ndarray:
    if name.startswith("pinch_open_"):
        # the pinch relaxed: thumb and finger extend, the other fingers stay where they are
        finger = name.removeprefix("pinch_open_")
        q = _solved(f"pinch_{finger}").copy()
        for n in ("thumb_cmc_opp", "thumb_cmc_abd", "thumb_mcp", "thumb_ip"):
            q[angle_index(n)] *= 0.35
        for n in (f"{finger}_mcp", f"{finger}_pip", f"{finger}_dip"):
            q[angle_index(n)] *= 0.4
        return q
    return np.deg2rad(np.asarray(_SOLVED_DEG[name], dtype=np.float64))


def hand_shape(name: str) -> np.ndarray:
    """Joint angles ``(20,)`` radians of the named shape (a copy). Names: :data:`SHAPE_NAMES`."""
    if name in _PLAIN:
        return _PLAIN[name].copy()
    if name in _SOLVED:
        return _solved(name).copy()
    raise ConfigError(f"unknown hand shape {name!r}; known shapes: {', '.join(SHAPE_NAMES)}")

