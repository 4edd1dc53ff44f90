"""Former home of the experiments' helpers, kept as a re-export for the chapters that import it.

The helpers now live in one module per concept; import them from there in new code:

* :mod:`learnlaw.analysis.penalties`: :func:`smoothness_penalty`, :func:`entropy_penalty`;
* :mod:`learnlaw.analysis.evaluation`: :func:`holdout_split`, :func:`evaluate_policy`;
* :mod:`learnlaw.analysis.diagnostics`: :class:`LawDiagnostics`, :func:`law_diagnostics`,
  :func:`kind_weight_shares`;
* :mod:`learnlaw.analysis.sim_fit`: :class:`SimFit`, :func:`fit_sim_cr`.

The chapters ``book/perceptron.ipynb``, ``book/howto.ipynb`` and ``book/transformer.ipynb``
import from this module.
"""

from __future__ import annotations

from learnlaw.analysis.diagnostics import LawDiagnostics, kind_weight_shares, law_diagnostics
from learnlaw.analysis.evaluation import evaluate_policy, holdout_split
from learnlaw.analysis.penalties import Penalty, entropy_penalty, smoothness_penalty
from learnlaw.analysis.sim_fit import SimFit, fit_sim_cr

__all__ = [
    "Penalty",
    "smoothness_penalty",
    "entropy_penalty",
    "holdout_split",
    "evaluate_policy",
    "LawDiagnostics",
    "law_diagnostics",
    "SimFit",
    "fit_sim_cr",
    "kind_weight_shares",
]
