"""Progress bars that both switches turn off: a function's ``progress=False`` and tqdm's own
``TQDM_DISABLE=1``.

tqdm reads ``TQDM_*`` environment variables as defaults only, so a bar created with an explicit
``disable=False`` shows even when ``TQDM_DISABLE=1`` is set. :func:`progress_bar` passes ``disable``
only to turn a bar off, so that the environment still can.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from tqdm.auto import tqdm

__all__ = ["progress_bar"]


def progress_bar(progress: bool, iterable: Iterable | None = None, **kwargs: Any) -> tqdm:
    """``tqdm(iterable, **kwargs)``, off when ``progress`` is false or ``TQDM_DISABLE`` is set.

    Args:
        progress: the calling function's ``progress`` argument.
        iterable: what to iterate over (``None``: a manual bar, updated with ``.update``).
        **kwargs: tqdm's arguments (``total``, ``desc``, ``leave``, …), not ``disable``.
    """
    if not progress:
        kwargs["disable"] = True
    return tqdm(iterable, **kwargs)
