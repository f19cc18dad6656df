"""The application layer, on top of every other: the ``handx-robot`` command router
(:mod:`handx_robot.app.cli`) and the ``run`` pipeline (:mod:`handx_robot.app.pipeline`). Nothing
below imports it (``tests/test_layers.py``)."""
