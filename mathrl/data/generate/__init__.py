"""Skill-pair problem generation (MATH^2 style): skills, generator backends, majority filtering, outputs."""

from mathrl.data.generate.backends import CallableBackend, OpenAIBackend, TransformersBackend, build_backend
from mathrl.data.generate.pipeline import (
    MATCHERS,
    GenerationSettings,
    generate_problems,
    majority_answer,
    parse_generated_problem,
    write_generated,
)
from mathrl.data.generate.skills import sample_skill_pairs, skills_from_labels, skills_from_model

__all__ = [
    "MATCHERS",
    "CallableBackend",
    "GenerationSettings",
    "OpenAIBackend",
    "TransformersBackend",
    "build_backend",
    "generate_problems",
    "majority_answer",
    "parse_generated_problem",
    "sample_skill_pairs",
    "skills_from_labels",
    "skills_from_model",
    "write_generated",
]
