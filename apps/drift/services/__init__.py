"""Drift writes, one module per concern.

* ``state``: the baseline state blob, its detector object, the provider key;
* ``baselines``: request, fit, pin, the active baseline, intent names, scheduled refits;
* ``monitors``: one monitor per project, claims, release, janitor;
* ``checks``: a window tested against the baseline and stored;
* ``stream``: the streaming detector's feed;
* ``windows``: stable window ends.
"""
