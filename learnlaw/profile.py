"""Devices and costs: precision, host synchronisations, counted FLOPs and memory.

* :func:`matmul_precision`: TF32 on or off for a block of code (also ``tf32=`` on training and
  search);
* :class:`DeviceAudit`: counts mixed-device ops and host synchronisations inside a block;
* :func:`count_flops`, :func:`meta_peak_bytes`, :func:`meta_transformer_task`,
  :func:`transformer_costs`, :func:`task_costs`: FLOPs counted by torch's dispatcher and peak memory
  measured on the meta device, without running anything;
* :func:`project_seconds` with :data:`GPU_FP32_PEAK_TFLOPS`, :data:`GPU_TF32_PEAK_TFLOPS` and
  :data:`DEFAULT_SUSTAINED_FRACTION`: a run's time on a device, from its counted FLOPs.
"""

from learnlaw.analysis.cost import (
    DEFAULT_SUSTAINED_FRACTION,
    GPU_FP32_PEAK_TFLOPS,
    GPU_TF32_PEAK_TFLOPS,
    count_flops,
    meta_peak_bytes,
    meta_transformer_task,
    project_seconds,
    task_costs,
    transformer_costs,
)
from learnlaw.analysis.device_audit import DeviceAudit
from learnlaw.core.precision import matmul_precision

__all__ = [
    "DEFAULT_SUSTAINED_FRACTION",
    "GPU_FP32_PEAK_TFLOPS",
    "GPU_TF32_PEAK_TFLOPS",
    "DeviceAudit",
    "count_flops",
    "matmul_precision",
    "meta_peak_bytes",
    "meta_transformer_task",
    "project_seconds",
    "task_costs",
    "transformer_costs",
]
