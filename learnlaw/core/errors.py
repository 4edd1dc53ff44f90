"""The one base of every error learnlaw raises on purpose.

``except learnlaw.LearnlawError`` catches any of them; each also keeps the built-in base it had
(``ValueError`` for a bad argument or file, ``TypeError`` for a wrong type, ``FloatingPointError``
for a diverged run, ``MemoryError`` for an exceeded memory budget, ``ImportError`` for a missing
optional package), so code written against those keeps working::

    LearnlawError
    ├── ArgumentValueError (ValueError)        learnlaw.core.checks
    ├── ArgumentTypeError (TypeError, ValueError)
    ├── MissingFileError (FileNotFoundError)   learnlaw.core.checks
    ├── UnsupportedError (NotImplementedError) learnlaw.core.checks (e.g. in a process group)
    ├── PolicyError (ValueError)               learnlaw.core.policy
    ├── CheckpointError (ValueError)           learnlaw.core.checkpoint
    ├── DivergenceError (FloatingPointError)   learnlaw.core.training
    ├── CompressionError (ValueError)          learnlaw.analysis.compress
    ├── MemoryBudgetError (MemoryError)        learnlaw.analysis.unrolled
    ├── SweepError (ValueError)                learnlaw.sweep
    ├── MeasurementError (RuntimeError)        learnlaw.bench (a measurement process failed)
    └── MissingDependencyError (ImportError)   learnlaw.core.optional (an extra not installed)
"""

from __future__ import annotations

__all__ = ["LearnlawError"]


class LearnlawError(Exception):
    """Base of every exception learnlaw raises: what was received, what was expected, the fix."""
