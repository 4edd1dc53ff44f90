"""Learning as lossless compression: the prequential code of a training run, for real.

* :func:`prequential_code_length`: the code length of a data stream under a model trained on it
  step by step (the area under its loss curve, in bits);
* :func:`compress` / :func:`decompress`: an arithmetic coder driven by that model, bytes in and
  bytes out → :class:`Encoded`; :func:`encode` the coding step alone; :class:`CoderConfig` its
  settings; :data:`HEADER_BYTES` the fixed header; :func:`compressed_bits_bound` what the code
  length promises; :class:`CompressionError` a stream that does not decode.

Needs the ``coding`` extra (``pip install "learnlaw[coding]"``) for the arithmetic coder.
"""

from learnlaw.analysis.compress import (
    HEADER_BYTES,
    CoderConfig,
    CompressionError,
    Encoded,
    compress,
    compressed_bits_bound,
    decompress,
    encode,
    prequential_code_length,
)

__all__ = [
    "HEADER_BYTES",
    "CoderConfig",
    "CompressionError",
    "Encoded",
    "compress",
    "compressed_bits_bound",
    "decompress",
    "encode",
    "prequential_code_length",
]
