"""The data cache location and quick network checks.

Anything that needs the network asks ``reachable()`` first (a single TCP connect with a short
timeout), so an offline machine fails in seconds with a message that says what to do, instead
of sitting through minutes of retries. Tests monkeypatch ``reachable`` to simulate no network.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from urllib.parse import urlparse

CACHE_ENV = "LIT_ALGOS_CACHE"
HF_HOST = "huggingface.co"
TIMEOUT_S = 3.0
NO_WAIT_ENV = "LIT_ALGOS_NO_HUB_CHECK_WAIT"


def cache_root(cache_dir: str | os.PathLike | None = None) -> Path:
    """The data cache: ``cache_dir``, else $LIT_ALGOS_CACHE, else ~/.cache/lit_algos."""
    if cache_dir:
        return Path(cache_dir).expanduser()
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    return Path.home() / ".cache" / "lit_algos"


def _truthy(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


def hf_offline() -> bool:
    """True when the user asked Hugging Face libraries to stay offline."""
    return _truthy("HF_HUB_OFFLINE") or _truthy("HF_DATASETS_OFFLINE")


def hf_host() -> str:
    endpoint = os.environ.get("HF_ENDPOINT")
    return (urlparse(endpoint).hostname or HF_HOST) if endpoint else HF_HOST


def reachable(host: str, port: int = 443, timeout: float = TIMEOUT_S) -> bool:
    """Whether a TCP connection to ``host`` (or the HTTPS proxy, when one is set) opens within ``timeout``.

    With $LIT_ALGOS_NO_HUB_CHECK_WAIT set (the test suite sets it) the answer is False at once: no
    test ever waits on, or reaches, the network.
    """
    if _truthy(NO_WAIT_ENV):
        return False
    proxy = os.environ.get("HTTPS_PROXY") or os.environ.get("https_proxy")
    if proxy:
        parsed = urlparse(proxy if "://" in proxy else f"http://{proxy}")
        host, port = parsed.hostname or host, parsed.port or 80
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def hub_reachable() -> bool:
    """Whether the Hugging Face hub can be used now (False at once when HF_HUB_OFFLINE is set)."""
    return not hf_offline() and reachable(hf_host())
