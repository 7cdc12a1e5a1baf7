"""Observation → Verdict: why a running job is (or is not) moving. Pure and table-tested."""

from lifeguard.verdict.rules import RULES, decide
from lifeguard.verdict.types import Verdict

__all__ = ["RULES", "Verdict", "decide"]
