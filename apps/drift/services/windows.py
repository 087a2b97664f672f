"""Check windows: stable window ends (floored to the monitor's interval) and the window type."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


def floor_to_interval(moment: datetime, minutes: int) -> datetime:
    """``moment`` floored to a multiple of ``minutes`` since the epoch (stable window ends)."""
    step = max(minutes, 1) * 60
    return datetime.fromtimestamp(int(moment.timestamp()) // step * step, tz=moment.tzinfo)


@dataclass
class Window:
    start: datetime
    end: datetime
