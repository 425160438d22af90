"""Text-generation backends for problem generation: a transformers model, or an OpenAI-compatible HTTP
endpoint that the user runs (vLLM, llama.cpp server, TGI, ...).

A backend has ``complete(conversations, n, temperature, max_tokens) -> list[list[str]]``: ``n``
replies for each chat conversation, in order.
"""

from __future__ import annotations

import json
import logging
import os
import urllib.error
import urllib.request
from typing import Any, Callable, Protocol

__all__ = ["Backend", "CallableBackend", "OpenAIBackend", "TransformersBackend", "build_backend"]

logger = logging.getLogger(__name__)


class Backend(Protocol):
    def complete(
        self, conversations: list[list[dict]], n: int = 1, temperature: float = 1.0, max_tokens: int = 512
    ) -> list[list[str]]: ...


class TransformersBackend:
    """Generate with a transformers causal LM given as a preset name, a local folder or a hub id."""

    def __init__(self, model: str, dtype: str = "float32", batch_size: int = 16, seed: int = 0):
        from mathrl.models import load_model, load_tokenizer

        self.name = model
        self.tokenizer = load_tokenizer(model)
        self.model = load_model(model, dtype=dtype, seed=seed, tokenizer=self.tokenizer)
        self.batch_size = batch_size

    def complete(
        self, conversations: list[list[dict]], n: int = 1, temperature: float = 1.0, max_tokens: int = 512
    ) -> list[list[str]]:
        from mathrl.eval.sampling import generate_completions

        if n > 1 and temperature == 0:
            raise ValueError(f"n={n} replies need temperature > 0; greedy decoding gives identical replies")
        return generate_completions(
            self.model,
            self.tokenizer,
            conversations,
            samples=n,
            temperature=temperature,
            max_new_tokens=max_tokens,
            batch_size=self.batch_size,
            progress=False,
            description=f"generating with {self.name}",
        )


class OpenAIBackend:
    """POST ``/chat/completions`` requests to an OpenAI-compatible server with the standard library.

    ``base_url`` is the API root, e.g. ``http://127.0.0.1:8000/v1``. The API key is read from the
    environment variable named by ``api_key_env`` when given; no key is sent otherwise. A server
    that returns fewer than ``n`` choices is asked again for the rest.
    """

    def __init__(
        self,
        base_url: str,
        model: str,
        api_key_env: str | None = None,
        timeout_s: float = 120.0,
        max_retries: int = 2,
    ):
        if not base_url.startswith(("http://", "https://")):
            raise ValueError(f"invalid endpoint URL {base_url!r}; expected http://host:port/v1")
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.name = model
        self.timeout_s = timeout_s
        self.max_retries = max_retries
        self.headers = {"Content-Type": "application/json"}
        if api_key_env:
            key = os.environ.get(api_key_env)
            if not key:
                raise ValueError(
                    f"environment variable {api_key_env} is not set; export the endpoint's API key"
                )
            self.headers["Authorization"] = f"Bearer {key}"

    def _post(self, body: dict) -> dict:
        data = json.dumps(body).encode()
        last_error: Exception | None = None
        for attempt in range(self.max_retries + 1):
            request = urllib.request.Request(self.url, data=data, headers=self.headers, method="POST")
            try:
                with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                    return json.loads(response.read().decode())
            except urllib.error.HTTPError as error:
                detail = error.read().decode(errors="replace")[:200]
                if error.code < 500:
                    raise RuntimeError(
                        f"endpoint {self.url} rejected the request (HTTP {error.code}): {detail}"
                    ) from None
                last_error = error
            except (urllib.error.URLError, TimeoutError, json.JSONDecodeError) as error:
                last_error = error
            logger.warning(
                "request to %s failed (attempt %d of %d): %s",
                self.url,
                attempt + 1,
                self.max_retries + 1,
                last_error,
            )
        raise ConnectionError(
            f"endpoint {self.url} failed after {self.max_retries + 1} attempts: {last_error}"
        )

    def complete(
        self, conversations: list[list[dict]], n: int = 1, temperature: float = 1.0, max_tokens: int = 512
    ) -> list[list[str]]:
        results = []
        for messages in conversations:
            replies: list[str] = []
            while len(replies) < n:
                body = {
                    "model": self.name,
                    "messages": messages,
                    "n": n - len(replies),
                    "temperature": temperature,
                    "max_tokens": max_tokens,
                }
                choices = self._post(body).get("choices") or []
                if not choices:
                    raise RuntimeError(f"endpoint {self.url} returned no choices for model {self.name!r}")
                replies += [(choice.get("message") or {}).get("content") or "" for choice in choices]
            results.append(replies[:n])
        return results


class CallableBackend:
    """Adapt ``fn(messages, n) -> list[str]`` into a backend (for scripted generators and tests)."""

    def __init__(self, fn: Callable[[list[dict], int], list[str]], name: str = "callable"):
        self.fn = fn
        self.name = name

    def complete(
        self, conversations: list[list[dict]], n: int = 1, temperature: float = 1.0, max_tokens: int = 512
    ) -> list[list[str]]:
        results = []
        for messages in conversations:
            replies = list(self.fn(messages, n))
            if len(replies) != n:
                raise ValueError(f"backend {self.name!r} returned {len(replies)} replies, expected {n}")
            results.append(replies)
        return results


def build_backend(model: str | None = None, endpoint: str | None = None, **options: Any) -> Backend:
    """Return an OpenAIBackend when ``endpoint`` is given (``model`` names the served model), else a
    TransformersBackend for ``model``."""
    if endpoint:
        if not model:
            raise ValueError("an endpoint needs the served model's name; pass --generator-model NAME")
        return OpenAIBackend(endpoint, model, **options)
    if not model:
        raise ValueError("no generator given; pass a model (preset, folder or hub id) or an endpoint URL")
    return TransformersBackend(model, **options)
