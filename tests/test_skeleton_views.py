"""handx_robot.render.SkeletonRenderer: custom (camera) projections and hand labels."""

from __future__ import annotations

import numpy as np
import pytest

from handx_robot.errors import ConfigError
from handx_robot.render import HAND_COLOURS, SkeletonRenderer


def _joints():
    off = np.random.default_rng(0).uniform(-0.03, 0.03, (21, 3)).astype(np.float32)
    j = np.zeros((2, 21, 3), np.float32)
    j[0] = np.array([-0.15, 0.3, 0.0], np.float32) + off  # left hand at -x (Y-up frame)
    j[1] = np.array([0.15, 0.3, 0.0], np.float32) + off
    return j


def _centroid_x(img, side):
    rgb = np.array([int(HAND_COLOURS[side][i : i + 2], 16) for i in (1, 3, 5)])
    mask = np.abs(img.astype(int) - rgb).sum(axis=2) < 60
    assert mask.sum() > 20
    return np.nonzero(mask)[1].mean()


def test_custom_projection_sets_the_viewpoint():
    j = _joints()
    # seen from -z (x to the right) and from +z (x to the left): the hands swap sides
    views = {"from_front": np.array([[1.0, 0, 0], [0, 1, 0]]), "from_back": np.array([[-1.0, 0, 0], [0, 1, 0]])}
    r = SkeletonRenderer(200, 120, views=("from_front", "from_back"), projections=views)
    r.fit(j[None])
    img = r.draw(j)
    r.close()
    a, b = img[:, :100], img[:, 100:]
    assert _centroid_x(a, "left") < _centroid_x(a, "right")
    assert _centroid_x(b, "left") > _centroid_x(b, "right")


def test_labels_are_drawn_and_projections_are_validated():
    j = _joints()
    imgs = []
    for labels in (False, True):
        r = SkeletonRenderer(160, 120, views=("front",), labels=labels)
        r.fit(j[None])
        imgs.append(r.draw(j))
        r.close()
    assert (np.abs(imgs[0].astype(int) - imgs[1].astype(int)).sum(axis=2) > 0).sum() > 30
    with pytest.raises(ConfigError, match="orthonormal"):
        SkeletonRenderer(160, 120, views=("bad",), projections={"bad": np.ones((2, 3))})
    with pytest.raises(ConfigError, match="available"):
        SkeletonRenderer(160, 120, views=("nope",))
