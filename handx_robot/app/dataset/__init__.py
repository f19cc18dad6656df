"""Whole datasets onto a robot: ``handx-robot dataset retarget`` (Ray, resumable) and ``dataset report``.

Modules: :mod:`.tasks` (inputs and task identity), :mod:`.worker` (one task), :mod:`.runner` (the Ray
driver), :mod:`.manifest` (the JSONL record, row and metric tables), :mod:`.report` and :mod:`.keep`
(summary, plots, curated clip lists), :mod:`.cli`. Ray is imported only when a run starts.
"""
