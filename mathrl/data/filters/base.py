"""The filter contract, the filter registry and construction of filters from names and options.

A filter takes the whole list of records (so that set-level steps such as deduplication fit the same
contract) and returns the rows it keeps and, for every row it drops, a ``Removal`` with a short
reason that the report counts and a detail dict that the side file stores.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Any, ClassVar

from mathrl.registry import Registry

__all__ = ["FILTERS", "Filter", "FilterResult", "Removal", "RowFilter", "build_filter", "register_filter"]


@dataclass
class Removal:
    """One dropped record: ``reason`` is a short category counted in the report, ``detail`` is free-form."""

    record: dict
    reason: str
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass
class FilterResult:
    kept: list[dict]
    removed: list[Removal]


class Filter:
    """Base class of curation steps; subclasses set ``name`` and implement ``apply``."""

    name: ClassVar[str] = ""

    def apply(self, records: list[dict]) -> FilterResult:
        raise NotImplementedError

    def options(self) -> dict[str, Any]:
        """Return the constructor options this filter was built with, for the report."""
        signature = inspect.signature(type(self).__init__)
        return {
            key: getattr(self, key) for key in signature.parameters if key != "self" and hasattr(self, key)
        }


class RowFilter(Filter):
    """A filter that judges each row on its own through ``check``."""

    def check(self, record: dict) -> tuple[str, dict] | None:
        """Return ``(reason, detail)`` to remove ``record``, or None to keep it."""
        raise NotImplementedError

    def apply(self, records: list[dict]) -> FilterResult:
        kept, removed = [], []
        for record in records:
            verdict = self.check(record)
            if verdict is None:
                kept.append(record)
            else:
                removed.append(Removal(record, verdict[0], verdict[1]))
        return FilterResult(kept, removed)


FILTERS: Registry[type[Filter]] = Registry("filter")


def register_filter(cls: type[Filter]) -> type[Filter]:
    """Class decorator that registers a filter under its ``name``."""
    if not cls.name:
        raise ValueError(f"filter class {cls.__name__} has no name; set the class attribute 'name'")
    FILTERS.add(cls.name, cls)
    return cls


def build_filter(name: str, options: dict[str, Any] | None = None) -> Filter:
    """Construct the registered filter ``name`` with keyword ``options``; unknown options raise ValueError."""
    cls = FILTERS.get(name)
    options = dict(options or {})
    parameters = [key for key in inspect.signature(cls.__init__).parameters if key != "self"]
    unknown = sorted(set(options) - set(parameters))
    if unknown:
        valid = ", ".join(parameters) if parameters else "none"
        raise ValueError(f"unknown options {unknown} for filter {name!r}; valid options: {valid}")
    try:
        return cls(**options)
    except TypeError as error:
        raise ValueError(f"invalid options {options} for filter {name!r}: {error}") from None
