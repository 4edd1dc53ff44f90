"""From your model and data to trained parameters and a trust score per example, in one call.

:func:`reweight` is the entry point for a user who brings an ``nn.Module``, a per-example loss,
training data that may hold bad examples (noisy labels, off-distribution text) and a small
clean *desired* set. It

1. builds a :class:`~learnlaw.Task` (numpy arrays and tensors accepted; float inputs cast to
   the model's dtype, data moved to its device);
2. chooses η on a validation part of the desired set (:func:`~learnlaw.select_lr`), twice on the
   same grid and the same split: for an online Learning-Law rule
   (:func:`~learnlaw.online_policy`) and for plain uniform training, the tuned baseline;
3. trains both at their chosen η with every desired example, and returns θ_T of the rule's run,
   its policy γ and the *trust score* of every training example,

   trust_n = N · (1/T) Σ_t γ_{t,n},

   its mean weight over the run relative to the uniform share 1/N: 1 is what uniform training
   gives every example, 0 an example the rule never used, 3 one it weighed three times the
   uniform share on average. With ``kinds`` (boolean masks of planted or suspected kinds of
   example) the mean trust of each kind is reported too.

Cost: (2·G + 2) training runs of T full-batch steps for a grid of G step sizes, each online run
costing about one plain run plus the per-step contributions (one desired gradient and N
per-example dot products per step). A progress bar counts the runs.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Callable, Mapping, Sequence

import torch
from torch import Tensor, nn

from learnlaw.core import checks
from learnlaw.core.policy import uniform_policy
from learnlaw.core.progress import progress_bar
from learnlaw.core.task import Task
from learnlaw.core.training import Run, train
from learnlaw.policies.online import ONLINE_RULES, online_policy
from learnlaw.policies.tuning import LrChoice, select_lr

__all__ = ["DEFAULT_LRS", "Reweighted", "reweight"]

DEFAULT_LRS = (0.01, 0.03, 0.1, 0.3, 1.0, 3.0)
"""The default step-size grid of :func:`reweight`: half-decades over 2.5 decades."""


@dataclass(frozen=True, eq=False)
class Reweighted:
    """What :func:`reweight` returns.

    Attributes:
        policy: ``(T, N)`` γ of the rule's run at its chosen η on every desired example.
        choice, baseline_choice: the two step-size searches (grid, scores, split).
        run, baseline: the two runs at their chosen η (their ``test_loss`` is the desired
            set's curve: the call has no test split of its own; measure yours with ``train``).
        task: the task that was built (to train, compare or search further).

    The rest is read off these: :attr:`params`, :attr:`trust`, :attr:`kind_trust`, :attr:`lr`,
    :attr:`baseline_lr`, :attr:`validation_ratio`.
    """

    policy: Tensor
    choice: LrChoice
    baseline_choice: LrChoice
    run: Run
    baseline: Run
    task: Task

    @property
    def params(self) -> dict[str, Tensor]:
        """θ_T of the rule's run."""
        return self.run.final_params

    @property
    def trust(self) -> Tensor:
        """``(N,)`` trust_n = N · mean_t γ_{t,n} (1: the uniform share; 0: never used)."""
        return self.policy.mean(0) * self.policy.shape[1]

    @property
    def kind_trust(self) -> dict[str, float]:
        """Mean trust of each kind mask the task holds (``{}`` without ``kinds``)."""
        trust = self.trust
        return {k: float(trust[m.to(trust.device)].mean()) for k, m in self.task.kinds.items()}

    @property
    def lr(self) -> float:
        """η chosen on validation for the rule."""
        return self.choice.lr

    @property
    def baseline_lr(self) -> float:
        """η chosen on validation for uniform training."""
        return self.baseline_choice.lr

    @property
    def validation_ratio(self) -> float:
        """The tuned baseline's validation score over the rule's (> 1: the rule does better).

        Both are the validation part's AUC (or final loss, with ``criterion="final"``), each
        method at its own chosen η: the speed-up with a tuned baseline beside it.
        """
        return self.baseline_choice.score / self.choice.score


def _as_pair(data, name: str, dtype: torch.dtype, device: torch.device) -> tuple[Tensor, Tensor]:
    """``(inputs, targets)`` as tensors on ``device``; floating ones cast to ``dtype``."""
    if not (isinstance(data, (tuple, list)) and len(data) == 2):
        raise checks.ArgumentTypeError(
            f"{name} must be an (inputs, targets) pair of tensors or numpy arrays, got "
            f"{type(data).__name__}; pass e.g. {name}=(x, y)"
        )
    out = []
    for part, what in zip(data, ("inputs", "targets")):
        try:
            t = torch.as_tensor(part)
        except (TypeError, ValueError, RuntimeError) as e:
            raise checks.ArgumentTypeError(
                f"the {what} of {name} cannot become a tensor ({type(part).__name__}: {e}); "
                "pass a torch.Tensor or a numpy array"
            ) from None
        out.append(t.to(device=device, dtype=dtype if t.is_floating_point() else None))
    return out[0], out[1]


def _warn_at_edge(name: str, choice: LrChoice, lrs: Sequence[float]) -> None:
    """Warn when the chosen η is the grid's smallest or largest: the best may lie beyond it."""
    if len(lrs) > 1 and choice.lr in (min(lrs), max(lrs)):
        side = "largest" if choice.lr == max(lrs) else "smallest"
        warnings.warn(
            f"reweight: η = {choice.lr:g} for {name} is the {side} of the grid {tuple(lrs)}; "
            "the best step size may lie beyond it: extend lrs past it",
            stacklevel=3,
        )


def reweight(
    model: nn.Module,
    loss_fn: Callable[[Tensor, Tensor], Tensor],
    train_data,
    desired,
    *,
    steps: int,
    lrs: Sequence[float] = DEFAULT_LRS,
    rule: str = "relu",
    n_holdout: int | None = None,
    holdout_seed: int = 0,
    criterion: str = "auc",
    vocab_size: int | None = None,
    kinds: Mapping[str, Tensor] | None = None,
    progress: bool = True,
) -> Reweighted:
    """Train ``model`` under an online Learning-Law rule with η chosen on validation.

    Args:
        model: maps a batch of inputs to outputs (logits); deterministic (call ``.eval()`` on a
            model with dropout or batch norm). Its parameters are θ₀; it is not modified.
        loss_fn: ``loss_fn(outputs, targets) → (B,)`` per-example losses in nats
            (``reduction="none"``).
        train_data: ``(inputs, targets)`` of the N training examples (tensors or numpy arrays).
        desired: ``(inputs, targets)`` of the K clean examples whose loss the rule lowers;
            ``n_holdout`` of them are held out to choose η (default K // 4, at least 2).
        steps: T, full-batch gradient steps.
        lrs: the step-size grid, shared by the rule and the uniform baseline.
        rule: an online rule of :data:`~learnlaw.policies.ONLINE_RULES`.
        n_holdout, holdout_seed: the validation part's size and draw.
        criterion: ``"auc"`` (the validation AUC, fast and low) or ``"final"`` (the final loss).
        vocab_size: |V| for compression ratios (default: the model's output width, or 2 for
            one output).
        kinds: boolean masks ``(N,)`` naming kinds of training example (e.g. ``"noisy"``).
        progress: a progress bar over the runs.

    Returns:
        A :class:`Reweighted` with θ_T, the trust score of every training example, both chosen
        step sizes and both runs.

    Raises:
        LearnlawError: a bad argument (the message names the fix), or no η of the grid that
            trains without diverging.
    """
    if not isinstance(model, nn.Module):
        raise checks.ArgumentTypeError(
            f"model must be a torch.nn.Module, got {type(model).__name__}"
        )
    if not callable(loss_fn):
        raise checks.ArgumentTypeError(
            f"loss_fn must be callable (outputs, targets) → (B,) losses, got "
            f"{type(loss_fn).__name__}"
        )
    steps = checks.check_steps(steps)
    checks.check_choice(rule, "rule", ONLINE_RULES)
    checks.check_bool(progress, "progress")
    checks.check_int(vocab_size, "vocab_size", minimum=2, allow_none=True)
    params0 = {k: v.detach().clone() for k, v in model.named_parameters()}
    if not params0:
        raise checks.ArgumentValueError("model has no parameters to train")
    first = next(iter(params0.values()))
    dtype, device = first.dtype, first.device
    x, y = _as_pair(train_data, "train_data", dtype, device)
    desired = _as_pair(desired, "desired", dtype, device)
    if vocab_size is None:
        with torch.no_grad():
            out = model(x[:1])
        vocab_size = max(2, int(out.shape[-1]) if out.ndim > 1 else 2)
    task = Task(
        model, params0, (x, y), desired, desired, loss_fn, vocab_size,
        name="reweight", kinds=dict(kinds or {}),
    )  # fmt: skip
    bar = progress_bar(progress, total=2 * len(lrs) + 2, desc="reweight: runs")

    def counted(method):
        def run(t: Task, lr: float):
            try:
                return method(t, lr)
            finally:
                bar.update(1)

        return run

    def uniform(t: Task, lr: float) -> Run:
        return train(t, uniform_policy(steps, t.n_train, dtype=dtype, device=device), lr)

    def online(t: Task, lr: float):
        return online_policy(t, steps, lr, rule)

    common = dict(n_holdout=n_holdout, holdout_seed=holdout_seed, criterion=criterion)
    choice = select_lr(task, counted(online), lrs, **common)
    base_choice = select_lr(task, counted(uniform), lrs, **common)
    result = counted(online)(task, choice.lr)
    baseline = counted(uniform)(task, base_choice.lr)
    bar.close()
    for name, c in (("the rule", choice), ("uniform training", base_choice)):
        _warn_at_edge(name, c, lrs)
    return Reweighted(result.policy, choice, base_choice, result.run, baseline, task)
