"""mathrl: reinforcement-learning fine-tuning of math language models, Mixture-of-Experts first.

Importing this package does not import torch, so light tools (`rewards`, the recipe loader) stay
cheap. The trainers live in `mathrl.rl`, the expert runtime in `mathrl.moe`.

Dimension letters used in shape comments across the code base::

    B  prompts in a batch            G  completions per prompt
    T  tokens                        N  routed tokens (real tokens that reach the router)
    E  experts                       K  experts per token (top-k)
    H  hidden size                   I  expert intermediate size
    C  expert capacity               W  expert-parallel world size

Shapes are written as trailing comments, e.g. ``# (B*G, T)``, on the lines where they change.
"""

__version__ = "0.1.0"
