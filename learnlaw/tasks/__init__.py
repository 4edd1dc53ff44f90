"""Tasks: a model, its per-example loss and its data splits, as :class:`learnlaw.Task` holds them.

The paper's two tasks are at the top level (:func:`learnlaw.perceptron_task`,
:func:`learnlaw.transformer_task`); this namespace holds the rest:

* :func:`causal_lm_task`: your own Hugging Face causal language model (``pip install
  "learnlaw[hf]"``); :func:`mlp_task`: a small MLP classifier;
* the Transformer and its corpus: :class:`Transformer`, :class:`TransformerConfig`,
  :func:`count_params`, :func:`sequence_loss`; the presets :data:`PRESETS` (:data:`PAPER_SCALE`,
  :data:`COLAB_SCALE`, :data:`CPU_SCALE`) and the keys :data:`TASK_KEYS` a preset may set;
  :func:`generate_stories`, :func:`load_tinystories`, :func:`train_tokenizer`,
  :func:`encode_sequences`, :func:`decode_sequences`; label noise :func:`perturb`,
  :func:`perturb_fraction`;
* :class:`ParamSpec`: the name, shape and dtype of one parameter of a task's model.
"""

from learnlaw.core.task import ParamSpec
from learnlaw.tasks.hf import causal_lm_task
from learnlaw.tasks.lm_task import (
    COLAB_SCALE,
    CPU_SCALE,
    PAPER_SCALE,
    PRESETS,
    TASK_KEYS,
)
from learnlaw.tasks.stories import generate_stories
from learnlaw.tasks.text import (
    decode_sequences,
    encode_sequences,
    load_tinystories,
    perturb,
    perturb_fraction,
    train_tokenizer,
)
from learnlaw.tasks.toy import mlp_task
from learnlaw.tasks.transformer import Transformer, TransformerConfig, count_params, sequence_loss

__all__ = [
    "COLAB_SCALE",
    "CPU_SCALE",
    "PAPER_SCALE",
    "PRESETS",
    "TASK_KEYS",
    "ParamSpec",
    "Transformer",
    "TransformerConfig",
    "causal_lm_task",
    "count_params",
    "decode_sequences",
    "encode_sequences",
    "generate_stories",
    "load_tinystories",
    "mlp_task",
    "perturb",
    "perturb_fraction",
    "sequence_loss",
    "train_tokenizer",
]
