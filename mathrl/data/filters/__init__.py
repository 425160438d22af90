"""Curation filters: each is a named step that returns the kept rows and every removed row with a reason.

>>> from mathrl.data.filters import run_filters
>>> rows = [{"problem": "What is 1 + 1?", "answer": "2"}, {"problem": "What  is 1 + 1?", "answer": "2"}]
>>> result = run_filters(rows, ["exact_dedup"])
>>> len(result.kept), result.removed[0]["removed_by"]["reason"]
(1, 'exact duplicate')
"""

from mathrl.data.filters import answers, classifier, content, decontaminate, dedup, rules  # noqa: F401 - registers
from mathrl.data.filters.base import (
    FILTERS,
    Filter,
    FilterResult,
    Removal,
    RowFilter,
    build_filter,
    register_filter,
)
from mathrl.data.filters.decontaminate import SHIPPED_EVAL_SETS, load_eval_problems
from mathrl.data.filters.pipeline import (
    BIG_MATH_FILTERS,
    PipelineResult,
    build_filters,
    run_filters,
    write_outputs,
)

__all__ = [
    "BIG_MATH_FILTERS",
    "FILTERS",
    "SHIPPED_EVAL_SETS",
    "Filter",
    "FilterResult",
    "PipelineResult",
    "Removal",
    "RowFilter",
    "build_filter",
    "build_filters",
    "load_eval_problems",
    "register_filter",
    "run_filters",
    "write_outputs",
]
