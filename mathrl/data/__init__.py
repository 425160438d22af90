"""Problem records, dataset loaders (shipped sets, local files, Big-Math, synthetic arithmetic) and prompts.

>>> from mathrl.data import load_problems, to_trl_rows
>>> rows = to_trl_rows(load_problems("aime24", limit=2))
>>> sorted(rows[0])[:3], rows[0]["answer"]
(['answer', 'domain', 'id'], '204')
"""

from mathrl.data.arithmetic import LEVELS, generate_arithmetic
from mathrl.data.claims import claim_record, generate_claims, read_countermath
from mathrl.data.loaders import DATASETS, DatasetSpec, load_problem_set, load_problems, register_dataset
from mathrl.data.prompts import PROMPT_TEMPLATES, format_prompt, register_prompt_template, to_trl_rows
from mathrl.data.record import RECORD_FIELDS, ProblemSet, answer_to_str, last_boxed, make_record

__all__ = [
    "DATASETS",
    "LEVELS",
    "PROMPT_TEMPLATES",
    "RECORD_FIELDS",
    "DatasetSpec",
    "ProblemSet",
    "answer_to_str",
    "claim_record",
    "format_prompt",
    "generate_arithmetic",
    "generate_claims",
    "last_boxed",
    "load_problem_set",
    "load_problems",
    "make_record",
    "read_countermath",
    "register_dataset",
    "register_prompt_template",
    "to_trl_rows",
]
