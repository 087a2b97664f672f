"""Wrappers for provider clients: ``wrap_openai`` and ``wrap_anthropic``."""

from __future__ import annotations

from ._anthropic import wrap_anthropic
from ._openai import wrap_openai

__all__ = ["wrap_anthropic", "wrap_openai"]
