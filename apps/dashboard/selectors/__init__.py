"""UI-only reads, one module per concern.

* ``overview``: KPI cards and filter facets (the series and totals come from
  ``apps.traces.metrics`` / ``apps.traces.rollup_selectors``);
* ``calls``: the call page: trace tree, signal badges, de-duplicated neighbours;
* ``review``: the review queue, its progress, and the reviewer-label export rows.
"""
