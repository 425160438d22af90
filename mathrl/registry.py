"""A small name -> object registry shared by every pluggable part of mathrl.

It imports nothing heavy, so `rewards` (which must not import torch) can use it too.
"""

from __future__ import annotations

from typing import Callable, Generic, Iterator, TypeVar

__all__ = ["Registry"]

T = TypeVar("T")


class Registry(Generic[T]):
    """Map names to objects; registering a name twice or looking up an unknown one raises.

    >>> losses = Registry("loss")
    >>> @losses.register("clip")
    ... def clip_loss(): ...
    >>> losses.get("clip") is clip_loss
    True
    >>> losses.get("clipp")
    Traceback (most recent call last):
    ...
    ValueError: unknown loss 'clipp'; valid names: clip
    """

    def __init__(self, kind: str):
        self.kind = kind
        self._items: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        def decorator(obj: T) -> T:
            self.add(name, obj)
            return obj

        return decorator

    def add(self, name: str, obj: T) -> None:
        if name in self._items:
            raise ValueError(f"{self.kind} {name!r} is already registered")
        self._items[name] = obj

    def get(self, name: str) -> T:
        try:
            return self._items[name]
        except KeyError:
            raise ValueError(f"unknown {self.kind} {name!r}; valid names: {', '.join(self.names())}") from None

    def names(self) -> list[str]:
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())
