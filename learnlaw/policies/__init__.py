"""Learning-policy families beyond the searched (T, N) policy (issue 12).

* :mod:`learnlaw.policies.online`: online rules that read γ_t off the contributions at θ_t during
  one training run (``relu``, ``power``, ``quadratic``);
* :mod:`learnlaw.policies.tuning`: the step-size tuner, which picks η on a validation part of the
  desired set for any method;
* :mod:`learnlaw.policies.baselines`: uniform, desired-only, train ∪ desired and
  importance-weighting baselines;
* :mod:`learnlaw.policies.parametric`: policies with few parameters fitted by the adjoint.
"""
