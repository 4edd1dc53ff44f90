"""The maths: tasks as functions, policies, policy-weighted training, the adjoint policy
gradient, policy search, metrics of a run and the Learning Law's contributions."""
