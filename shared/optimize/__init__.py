"""Carrier-ready media optimisation: turn an oversized upload into bytes a carrier will deliver.

Pure and storage-free: `optimize(data, content_type)` returns a `Result` and never raises for a bad
file. The blob trigger decides where bytes and records go.
"""

from shared.optimize.optimizer import SUPPORTED_TYPES, optimize
from shared.optimize.result import FailureCode, Result, State

__all__ = ["SUPPORTED_TYPES", "FailureCode", "Result", "State", "optimize"]
