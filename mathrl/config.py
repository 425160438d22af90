"""Recipe dataclasses, YAML loading with strict key checks, and ``--set key.sub=value`` overrides.

A recipe is one YAML file that describes a whole run. Every section maps to a dataclass below; a key
that no field declares is an error naming the key and the valid ones. Imports no torch.
"""

from __future__ import annotations

import dataclasses
import enum
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from mathrl.moe.config import MoEConfig

__all__ = [
    "RecipeError", "DatasetSpec", "FilterSpec", "DifficultyConfig", "AdaptivePassRateConfig",
    "RewardSpec", "ModelConfig", "LoraConfig", "DataConfig", "SFTConfig",
    "GRPOConfig", "PPOConfig", "GenerationConfig", "TrainingConfig", "LoggingConfig", "EvalConfig", "Recipe",
    "load_recipe", "apply_overrides", "recipe_to_dict", "from_dict",
]


class RecipeError(ValueError):
    """A recipe file or override is invalid; the message names the key and what to do."""


@dataclass
class DatasetSpec:
    name: str
    """Registered dataset name (gsm8k, math500, arithmetic, ...) or a path to a .jsonl/.json/.parquet file."""
    split: str | None = None
    """Split to load (train or test); None takes the dataset's default."""
    limit: int | None = None
    """Keep at most this many rows (after shuffling with the run seed when shuffle is true)."""
    shuffle: bool = False
    """Shuffle before applying limit."""
    options: dict[str, Any] = field(default_factory=dict)
    """Loader options, e.g. arithmetic's n and levels."""


@dataclass
class RewardSpec:
    name: str
    """Registered reward name (accuracy, format, soft_overlong, ...) or an import path 'pkg.mod:fn' / 'file.py:fn'."""
    weight: float = 1.0
    """Weight of this reward in the sum that forms the training reward."""
    options: dict[str, Any] = field(default_factory=dict)
    """Keyword options passed to the reward (its class constructor, or bound to the function)."""
    timeout_s: float | None = 60.0
    """Wall-time limit for one batch call; rows of a call that overruns get None. None waits forever."""


@dataclass
class LoraConfig:
    enable: bool = False
    """Train a peft LoRA adapter instead of all weights."""
    r: int = 16
    """Adapter rank."""
    alpha: int = 32
    """LoRA scaling numerator (scale = alpha / r)."""
    dropout: float = 0.0
    """Dropout on the adapter input."""
    target_modules: list[str] = field(default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj"])
    """Linear module names that get adapters."""
    target_parameters: list[str] = field(default_factory=list)
    """Parameter names (e.g. fused expert weights 'mlp.experts.gate_up_proj') adapted through peft."""


@dataclass
class ModelConfig:
    name_or_path: str = "tiny-qwen3-moe"
    """A preset name, a local model folder or a hub id."""
    dtype: str = "float32"
    """float32, bfloat16, float16 or auto."""
    lora: LoraConfig = field(default_factory=LoraConfig)


@dataclass
class FilterSpec:
    name: str
    """Registered filter name (exact_dedup, near_dedup, multiple_choice, decontaminate, ...; see mathrl.data.filters)."""
    options: dict[str, Any] = field(default_factory=dict)
    """Keyword options of the filter, e.g. near_dedup's threshold."""


@dataclass
class DifficultyConfig:
    column: str = "llama8b_solve_rate"
    """Record column that measures difficulty; solution_steps is computed from the worked solution when absent."""
    easier: str = "high"
    """Which end of the column is easier: 'high' (solve or pass rates) or 'low' (solution_steps)."""
    min: float | None = None
    """Keep rows whose column value is at least this (inclusive); None sets no lower bound."""
    max: float | None = None
    """Keep rows whose column value is at most this (inclusive); None sets no upper bound."""
    missing: str = "drop"
    """Rows without a value when min or max is set: 'drop' (into the side file) or 'keep'."""
    order: str = "none"
    """Training order: none, easy_to_hard or hard_to_easy (needs an unshuffled GRPO sampler to take effect)."""
    bands: list[float] = field(default_factory=list)
    """Band edges for band_weights and for ordering band by band, e.g. [0.0, 0.3, 0.7, 1.0]."""
    band_weights: list[float] = field(default_factory=list)
    """Relative sampling weight per band (one per interval of bands); the set is resampled to its size."""

    def __post_init__(self):
        from mathrl.data.curriculum import validate_difficulty

        validate_difficulty(self)


@dataclass
class AdaptivePassRateConfig:
    enable: bool = False
    """Track each problem's pass rate from the groups generated in training and skip problems at 0 or 1."""
    min_observations: int = 8
    """Completions of a problem that must be scored before its pass rate can exclude it."""
    reward: str = "accuracy"
    """Reward (by name in the recipe's rewards) whose values count as solved (>= success_threshold)."""
    success_threshold: float = 1.0
    """Reward value at or above which a completion counts as a solve."""

    def __post_init__(self):
        if self.min_observations < 1:
            raise ValueError(f"adaptive_pass_rate.min_observations={self.min_observations} must be >= 1")


@dataclass
class DataConfig:
    train: DatasetSpec = field(default_factory=lambda: DatasetSpec("arithmetic", split="train"))
    """Training problems."""
    dev: DatasetSpec | None = None
    """Problems for the SFT warm start's accuracy check and for picking the best GRPO checkpoint."""
    prompt_template: str = "boxed"
    """Prompt template name (see mathrl.data.prompts)."""
    filters: list[FilterSpec] = field(default_factory=list)
    """Curation steps applied in order to the training set; removed rows go to <output_dir>/data/removed.jsonl."""
    difficulty: DifficultyConfig = field(default_factory=DifficultyConfig)
    """Difficulty band and training order of the training set (after filters)."""
    adaptive_pass_rate: AdaptivePassRateConfig = field(default_factory=AdaptivePassRateConfig)
    """Online pass-rate tracking that drops problems the policy always or never solves."""


@dataclass
class SFTConfig:
    enable: bool = False
    """Run a supervised warm start (TRL's SFTTrainer) before RL."""
    max_steps: int = 500
    """Upper bound on warm-start optimizer steps."""
    learning_rate: float = 1e-3
    batch_size: int = 64
    """Examples per optimizer step on each process."""
    stop_at_accuracy: float | None = 0.3
    """Stop once greedy accuracy on data.dev reaches this; None trains for max_steps."""
    eval_every: int = 50
    """Steps between dev-accuracy checks."""
    target: str = "answer"
    """What the model imitates: 'answer' (just \\boxed{answer}) or 'solution' (the worked solution)."""


@dataclass
class GRPOConfig:
    loss_type: str = "dapo"
    """TRL loss type: grpo, dr_grpo, dapo, bnpo, cispo, ..."""
    importance_sampling_level: str = "token"
    """'token' (GRPO) or 'sequence' (GSPO)."""
    num_generations: int = 8
    """Completions sampled per prompt (G)."""
    beta: float = 0.0
    """KL coefficient to the reference model; 0 loads no reference."""
    epsilon: float = 0.2
    """Lower clip range of the importance ratio."""
    epsilon_high: float | None = None
    """Upper clip range (clip-higher); None uses epsilon."""
    num_iterations: int = 1
    """Policy updates per generation batch."""
    scale_rewards: str = "group"
    """Advantage scaling: group, batch or none."""
    mask_truncated_completions: bool = False
    """Exclude completions cut at max_completion_length from the loss."""
    dynamic_sampling: bool = False
    """DAPO dynamic sampling: replace groups whose rewards all agree with newly generated groups."""
    dynamic_sampling_max_rounds: int = 3
    """Extra generation rounds per batch at most; a batch still short of informative groups is used as is."""


@dataclass
class PPOConfig:
    num_generations: int = 4
    """Completions sampled per prompt; PPO needs no group, so 1 is allowed."""
    epochs: int = 2
    """Passes over each rollout batch."""
    minibatch_size: int = 16
    """Completions per optimizer step on each process; must divide prompts_per_step * num_generations."""
    gamma: float = 1.0
    """Discount factor of the per-token returns."""
    lam: float = 0.95
    """GAE lambda: 1 gives Monte-Carlo returns minus the value, 0 the one-step TD error."""
    epsilon: float = 0.2
    """Lower clip range of the importance ratio."""
    epsilon_high: float | None = None
    """Upper clip range (clip-higher); None uses epsilon."""
    value_clip: float | None = 0.2
    """New values stay within this distance of the rollout values in the clipped value loss; None turns clipping off."""
    vf_coef: float = 0.5
    """Weight of the value loss (with a shared critic it is added to the policy loss)."""
    kl_coef: float = 0.0
    """Weight of the KL divergence to the reference model; 0 loads no reference."""
    kl_mode: str = "reward"
    """'reward': a per-token penalty in the reward; 'loss': a term in the policy loss."""
    kl_estimator: str = "k3"
    """Per-token KL estimator: k1 (log ratio), k2 (half squared log ratio) or k3 (non-negative, low variance)."""
    entropy_coef: float = 0.0
    """Weight of the entropy bonus subtracted from the policy loss."""
    whiten_advantages: bool = True
    """Normalise advantages to mean 0 and standard deviation 1 over the batch's scored tokens (all processes)."""
    critic: str = "separate"
    """'separate': a value head on a copy of the backbone; 'shared': a value head on the policy's backbone."""
    critic_learning_rate: float | None = None
    """Learning rate of the critic (of the value head alone with a shared critic); None uses training.learning_rate."""
    critic_warmup_steps: int = 0
    """Rollout steps at the start that train only the critic, so the first policy updates see useful values."""


@dataclass
class GenerationConfig:
    max_prompt_length: int | None = 512
    """Prompts are left-truncated to this many tokens; None keeps them whole."""
    max_completion_length: int = 64
    """Maximum new tokens per completion."""
    temperature: float = 0.7
    top_p: float = 1.0


@dataclass
class TrainingConfig:
    max_steps: int = 100
    """RL optimizer steps."""
    learning_rate: float = 5e-5
    prompts_per_step: int = 8
    """Prompts per optimizer step on each process; completions per step = prompts_per_step * num_generations."""
    gradient_accumulation_steps: int = 1
    warmup_steps: int = 0
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0
    lr_scheduler: str = "constant"
    save_steps: int = 50
    """Steps between checkpoints; 0 saves only the final model."""
    save_total_limit: int | None = 2
    """Checkpoints kept on disk."""
    eval_steps: int = 0
    """Steps between dev-accuracy checks that keep the best checkpoint; 0 turns it off."""
    keep_best: bool = True
    """With eval_steps > 0, the final model is the one with the best dev accuracy: a dev check, the
    last step, or the starting model, scored as step 0 (except with LoRA or when resuming)."""
    max_bad_steps: int = 3
    """Consecutive steps with a NaN/infinite loss, or with every reward None, before the run stops."""


@dataclass
class LoggingConfig:
    logging_steps: int = 1
    tensorboard: bool = True
    """Write TensorBoard events under <output>/tensorboard."""
    wandb: bool = False
    """Also report to Weights & Biases (needs wandb installed and configured)."""
    progress: bool = True
    """Show progress bars."""


@dataclass
class EvalConfig:
    datasets: list[DatasetSpec] = field(default_factory=list)
    """Held-out sets evaluated at the end of training."""
    samples: int = 1
    """Completions per problem (k in pass@k and maj@k)."""
    temperature: float = 0.0
    """0 decodes greedily (then samples must be 1)."""
    max_new_tokens: int = 64
    batch_size: int = 64
    """Prompts per generate call."""
    before_rl: bool = True
    """Also evaluate the model RL starts from (after any warm start), for a before/after table."""


@dataclass
class Recipe:
    output_dir: str = "runs/default"
    """Run folder: resolved recipe, metrics, TensorBoard events, checkpoints, final model, eval reports."""
    seed: int = 0
    num_threads: int | None = None
    """CPU threads per process; None uses OMP_NUM_THREADS when set, else the cores divided by the local processes."""
    algorithm: str = "grpo"
    """Trainer to run: grpo (TRL's GRPOTrainer and its loss variants) or ppo (mathrl's PPO with a critic)."""
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    rewards: list[RewardSpec] = field(default_factory=lambda: [RewardSpec("accuracy")])
    sft: SFTConfig = field(default_factory=SFTConfig)
    grpo: GRPOConfig = field(default_factory=GRPOConfig)
    ppo: PPOConfig = field(default_factory=PPOConfig)
    generation: GenerationConfig = field(default_factory=GenerationConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)
    moe: MoEConfig = field(default_factory=MoEConfig)
    logging: LoggingConfig = field(default_factory=LoggingConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)

    def __post_init__(self):
        if self.algorithm not in ("grpo", "ppo"):
            raise RecipeError(f"algorithm: invalid value {self.algorithm!r}; valid values: grpo, ppo")
        if self.algorithm == "ppo":
            self._check_ppo()
        elif self.grpo.num_generations < 2:
            raise RecipeError(f"grpo.num_generations must be >= 2 for a group baseline, got {self.grpo.num_generations}")
        if self.eval.temperature == 0 and self.eval.samples > 1:
            raise RecipeError(f"eval.samples={self.eval.samples} needs eval.temperature > 0 (0 decodes greedily)")
        if self.sft.enable and self.sft.stop_at_accuracy is not None and self.data.dev is None:
            raise RecipeError("sft.stop_at_accuracy needs a data.dev set; set data.dev or sft.stop_at_accuracy: null")
        if self.training.eval_steps and self.data.dev is None:
            raise RecipeError("training.eval_steps needs a data.dev set; set data.dev or training.eval_steps: 0")

    def _check_ppo(self) -> None:
        p = self.ppo
        for key, valid in (("kl_mode", ("reward", "loss")), ("kl_estimator", ("k1", "k2", "k3")),
                           ("critic", ("separate", "shared"))):
            if getattr(p, key) not in valid:
                raise RecipeError(f"ppo.{key}: invalid value {getattr(p, key)!r}; valid values: {', '.join(valid)}")
        for key in ("num_generations", "epochs", "minibatch_size"):
            if getattr(p, key) < 1:
                raise RecipeError(f"ppo.{key} must be >= 1, got {getattr(p, key)}")
        rollout = self.training.prompts_per_step * p.num_generations
        if rollout % p.minibatch_size:
            raise RecipeError(f"ppo.minibatch_size={p.minibatch_size} must divide training.prompts_per_step * "
                              f"ppo.num_generations = {rollout}; change one of them")
        if not 0 <= p.gamma <= 1 or not 0 <= p.lam <= 1:
            raise RecipeError(f"ppo.gamma and ppo.lam must lie in [0, 1], got {p.gamma} and {p.lam}")
        if p.epsilon <= 0 or (p.epsilon_high is not None and p.epsilon_high <= 0):
            raise RecipeError(f"ppo.epsilon and ppo.epsilon_high must be > 0, got {p.epsilon} and {p.epsilon_high}")
        if p.value_clip is not None and p.value_clip <= 0:
            raise RecipeError(f"ppo.value_clip must be > 0 or null (no clipping), got {p.value_clip}")
        if p.kl_coef < 0 or p.vf_coef < 0 or p.entropy_coef < 0:
            raise RecipeError("ppo.kl_coef, ppo.vf_coef and ppo.entropy_coef must be >= 0")


# ---------------------------------------------------------------------------------------------
# Loading


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _convert(value: Any, tp: Any, key: str) -> Any:
    """Check and convert a YAML value to the annotated type ``tp``; ``key`` is the dotted path for errors."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)

    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for option in (a for a in args if a is not type(None)):
            try:
                return _convert(value, option, key)
            except RecipeError as error:
                errors.append(str(error))
        raise RecipeError(f"{key}: invalid value {value!r}; expected {' or '.join(_type_name(a) for a in args)}")
    if dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return value
        if isinstance(value, str) and tp is DatasetSpec:
            return DatasetSpec(value)
        if not isinstance(value, dict):
            raise RecipeError(f"{key}: expected a mapping for {tp.__name__}, got {value!r}")
        return from_dict(tp, value, key)
    if origin is list:
        if not isinstance(value, list):
            raise RecipeError(f"{key}: expected a list, got {value!r}")
        return [_convert(item, args[0], f"{key}[{i}]") for i, item in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise RecipeError(f"{key}: expected a mapping, got {value!r}")
        return dict(value)
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        try:
            return tp(value)
        except ValueError:
            valid = ", ".join(member.value for member in tp)
            raise RecipeError(f"{key}: invalid value {value!r}; valid values: {valid}") from None
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if tp is float and isinstance(value, str):
        try:
            return float(value)  # YAML reads 1e-3 without a dot as a string
        except ValueError:
            pass
    if tp in (int, float, str, bool):
        if isinstance(value, bool) and tp is not bool:
            raise RecipeError(f"{key}: expected {tp.__name__}, got {value!r}")
        if not isinstance(value, tp):
            raise RecipeError(f"{key}: expected {tp.__name__}, got {value!r}")
        return value
    return value


def from_dict(cls: type, data: dict, prefix: str = "") -> Any:
    """Build dataclass ``cls`` from ``data``, rejecting unknown keys with the list of valid ones."""
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = [key for key in data if key not in fields]
    if unknown:
        where = f"{prefix}." if prefix else ""
        raise RecipeError(
            f"unknown recipe key {where + unknown[0]!r}; valid keys{' in ' + prefix if prefix else ''}: "
            f"{', '.join(fields)}"
        )
    kwargs = {}
    for name, value in data.items():
        key = f"{prefix}.{name}" if prefix else name
        kwargs[name] = _convert(value, hints[name], key)
    try:
        return cls(**kwargs)
    except RecipeError:
        raise
    except (ValueError, TypeError) as error:
        message = str(error)
        if prefix and not message.startswith(prefix):
            message = f"{prefix}: {message}"
        raise RecipeError(message) from error


def recipe_to_dict(recipe: Recipe) -> dict:
    """Return the recipe as plain YAML-ready data (enums as their values)."""

    def plain(value):
        if dataclasses.is_dataclass(value):
            return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
        if isinstance(value, enum.Enum):
            return value.value
        if isinstance(value, list):
            return [plain(v) for v in value]
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        return value

    return plain(recipe)


def apply_overrides(data: dict, overrides: list[str]) -> dict:
    """Apply ``key.sub=value`` overrides to raw recipe data; values are parsed as YAML scalars."""
    for override in overrides:
        key, sep, raw = override.partition("=")
        if not sep or not key:
            raise RecipeError(f"invalid override {override!r}; expected key.sub=value, e.g. training.max_steps=10")
        value = yaml.safe_load(raw) if raw else ""
        node = data
        parts = key.split(".")
        for part in parts[:-1]:
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            if not isinstance(child, dict):
                raise RecipeError(f"invalid override {override!r}: {part!r} is not a section")
            node = child
        node[parts[-1]] = value
    return data


def load_recipe(path: str | Path | None, overrides: list[str] | None = None, output_dir: str | None = None) -> Recipe:
    """Load a recipe YAML file (or the defaults when ``path`` is None), apply overrides, validate."""
    data: dict = {}
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise RecipeError(f"recipe file not found: {path}")
        try:
            data = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as error:
            raise RecipeError(f"recipe {path} is not valid YAML: {error}") from error
        if not isinstance(data, dict):
            raise RecipeError(f"recipe {path} must be a mapping of sections, got {type(data).__name__}")
    data = apply_overrides(data, overrides or [])
    if output_dir is not None:
        data["output_dir"] = output_dir
    return from_dict(Recipe, data)
