"""The Learning Law along a run: contributions, their similarity, and what they say.

The per-step contributions ⟨∇L_dsr, ∇l_n⟩ and their similarity SIM are at the top level
(:func:`learnlaw.contributions`, :func:`learnlaw.sim`); this namespace reads them along a run:

* :func:`run_contributions`, :func:`contribution_trajectory`: contributions at every (checkpointed)
  step of a run;
* :func:`learning_speeds`, :func:`learned_weight_ratios`, :func:`zero_weight_fraction`: the
  learning speed −dL_dsr/dt, and how the weights of a policy are spread;
* :func:`law_diagnostics` → :class:`LawDiagnostics`: the Law's checks on a searched policy;
  :func:`kind_weight_shares`: the weight each planted kind of example receives;
* :func:`fit_sim_cr` → :class:`SimFit`: the fit of compression ratio against SIM.
"""

from learnlaw.analysis.diagnostics import LawDiagnostics, kind_weight_shares, law_diagnostics
from learnlaw.analysis.sim_fit import SimFit, fit_sim_cr
from learnlaw.core.law import (
    contribution_trajectory,
    learned_weight_ratios,
    learning_speeds,
    run_contributions,
    zero_weight_fraction,
)

__all__ = [
    "LawDiagnostics",
    "SimFit",
    "contribution_trajectory",
    "fit_sim_cr",
    "kind_weight_shares",
    "law_diagnostics",
    "learned_weight_ratios",
    "learning_speeds",
    "run_contributions",
    "zero_weight_fraction",
]
