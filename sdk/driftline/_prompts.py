"""The prompt registry, client side: ``register_prompt(name, template, version=None)``.

The version is known at once, offline: the one given, else the first 12 hex digits of the
template's SHA-256 (what the server computes too), so calls can carry it before the server has
answered. The template is sent in a background thread (once per process and text); a failure is
logged, never raised: the calls still carry the name and version, and registering again later
(at the next start) fills the registry.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import threading
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

from ._client import active_client

logger = logging.getLogger("driftline")

_VAR = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_.]*)\s*\}\}")
_sent: set[tuple[str, str]] = set()
_sent_lock = threading.Lock()


@dataclass(frozen=True)
class Prompt:
    """A registered template; pass ``name``/``version`` to ``@observe`` or
    ``update_current_call`` (or use :meth:`bind`) so calls link to it."""

    name: str
    version: str
    template: str

    def format(self, **variables: Any) -> str:
        """The template with ``{{name}}`` placeholders filled (unknown ones left as they are)."""

        def fill(match: re.Match[str]) -> str:
            key = match.group(1)
            return str(variables[key]) if key in variables else match.group(0)

        return _VAR.sub(fill, self.template)

    def bind(self) -> None:
        """Mark the running call as rendered from this prompt version."""
        from ._client import update_current_call

        update_current_call(prompt_name=self.name, prompt_version=self.version)


def prompt_version_of(template: str) -> str:
    return hashlib.sha256(template.encode("utf-8", "surrogatepass")).hexdigest()[:12]


def register_prompt(name: str, template: str, version: str | None = None) -> Prompt:
    """Register one version of a prompt template; returns it with its version at once."""
    prompt = Prompt(name=str(name), version=str(version or prompt_version_of(template)),
                    template=str(template))  # fmt: skip
    try:
        client = active_client()
        if client is None or not client.cfg.api_key:
            return prompt
        key = (prompt.name, hashlib.sha256(prompt.template.encode("utf-8", "replace")).hexdigest())
        with _sent_lock:
            if key in _sent:
                return prompt
            _sent.add(key)
        body: dict[str, Any] = {"name": prompt.name, "template": prompt.template}
        if version:
            body["version"] = prompt.version
        url = client.cfg.host.rstrip("/") + "/api/v1/prompts"
        thread = threading.Thread(
            target=_send, args=(url, client.cfg.api_key, body, client.cfg.timeout, key),
            name="driftline-prompt", daemon=True,
        )  # fmt: skip
        thread.start()
    except Exception:
        logger.exception("driftline: register_prompt failed")
    return prompt


def _send(url: str, api_key: str, body: dict[str, Any], timeout: float, key: Any) -> None:
    request = urllib.request.Request(  # noqa: S310 - the host the app configured
        url,
        data=json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {api_key}", "Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as resp:  # noqa: S310
            resp.read()
    except urllib.error.HTTPError as exc:
        detail = exc.read()[:300].decode("utf-8", "replace")
        logger.warning("driftline: prompt %r not registered: %s %s", body["name"], exc.code, detail)
        if exc.code >= 500:
            with _sent_lock:
                _sent.discard(key)  # a later call may try again
    except Exception as exc:
        logger.warning("driftline: prompt %r not registered: %s", body["name"], exc)
        with _sent_lock:
            _sent.discard(key)
