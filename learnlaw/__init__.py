"""learnlaw: optimal learning policies for language models, as an executable book."""

from learnlaw.task import ParamSpec, Task

__version__ = "0.1.0"

__all__ = ["ParamSpec", "Task", "__version__"]
