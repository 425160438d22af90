"""Model-based problem classification as a filter: any callable by import path, or a causal LM prompt.

The callable receives a batch of records and returns one label per record; rows whose label is in
``remove`` are dropped with the label as the reason.
"""

from __future__ import annotations

import inspect
import re
from typing import Callable

from rewards.registry import import_object

from mathrl.data.filters.base import Filter, FilterResult, Removal, register_filter

__all__ = ["PROBLEM_LABELS", "ModelClassifier", "ProblemClassifier", "import_object"]

PROBLEM_LABELS = ("closed_form", "multiple_choice", "true_false", "multi_part", "proof")


@register_filter
class ProblemClassifier(Filter):
    """Remove rows that a classifier labels with one of ``remove``.

    ``classifier`` is an import path to ``fn(records) -> list[str | None]`` or to a class that is
    constructed with ``classifier_options`` and then called the same way; ``None`` keeps the row.
    """

    name = "classifier"

    def __init__(
        self,
        classifier: str | Callable,
        classifier_options: dict | None = None,
        remove: list[str] | tuple[str, ...] = PROBLEM_LABELS[1:],
        batch_size: int = 32,
    ):
        if batch_size < 1:
            raise ValueError(f"classifier batch_size={batch_size} must be >= 1")
        self.classifier = classifier
        self.classifier_options = dict(classifier_options or {})
        self.remove = list(remove)
        self.batch_size = batch_size
        self._fn: Callable | None = None

    def _resolve(self) -> Callable:
        if self._fn is None:
            target = import_object(self.classifier) if isinstance(self.classifier, str) else self.classifier
            if inspect.isclass(target):
                target = target(**self.classifier_options)
            elif self.classifier_options:
                raise ValueError("classifier_options are only used when the classifier is a class")
            self._fn = target
        return self._fn

    def apply(self, records: list[dict]) -> FilterResult:
        fn = self._resolve()
        kept, removed = [], []
        for start in range(0, len(records), self.batch_size):
            batch = records[start : start + self.batch_size]
            labels = list(fn(batch))
            if len(labels) != len(batch):
                raise ValueError(f"classifier returned {len(labels)} labels for {len(batch)} records")
            for record, label in zip(batch, labels):
                if label is not None and label in self.remove:
                    removed.append(Removal(record, str(label), {"classifier": str(self.classifier)}))
                else:
                    kept.append(record)
        return FilterResult(kept, removed)

    def options(self) -> dict:
        return {
            "classifier": str(self.classifier),
            "classifier_options": self.classifier_options,
            "remove": self.remove,
            "batch_size": self.batch_size,
        }


_CLASSIFY_PROMPT = (
    "Classify the math problem below by the kind of answer it asks for. Reply with exactly one of: "
    "{labels}.\n\nProblem:\n{problem}"
)


class ModelClassifier:
    """Ask a transformers causal LM (preset, folder or hub id) to label each problem with one of PROBLEM_LABELS.

    The first label named in the greedy reply wins; a reply naming none gives None (the row is kept).
    """

    def __init__(self, model: str, max_new_tokens: int = 8, batch_size: int = 16, dtype: str = "float32"):
        from mathrl.models import load_model, load_tokenizer

        self.tokenizer = load_tokenizer(model)
        self.model = load_model(model, dtype=dtype, tokenizer=self.tokenizer)
        self.max_new_tokens = max_new_tokens
        self.batch_size = batch_size
        self._label_pattern = re.compile(
            "|".join(label.replace("_", r"[_ -]?") for label in PROBLEM_LABELS), re.I
        )
        self._canonical = {label.replace("_", ""): label for label in PROBLEM_LABELS}

    def __call__(self, records: list[dict]) -> list[str | None]:
        from mathrl.eval.sampling import generate_completions

        prompts = [
            [
                {
                    "role": "user",
                    "content": _CLASSIFY_PROMPT.format(
                        labels=", ".join(PROBLEM_LABELS), problem=record.get("problem") or ""
                    ),
                }
            ]
            for record in records
        ]
        replies = generate_completions(
            self.model,
            self.tokenizer,
            prompts,
            max_new_tokens=self.max_new_tokens,
            batch_size=self.batch_size,
            progress=False,
            description="classifying",
        )
        labels = []
        for (reply,) in replies:
            match = self._label_pattern.search(reply)
            labels.append(self._canonical[re.sub(r"[_ -]", "", match.group(0).lower())] if match else None)
        return labels
