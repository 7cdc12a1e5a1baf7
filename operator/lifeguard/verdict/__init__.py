"""Observation → Verdict: why a running job is (or is not) moving. Pure and table-tested.

The rules, their order and the reasons for it are in `lifeguard.verdict.rules`.
"""

from lifeguard.verdict.rules import RULES, decide
from lifeguard.verdict.types import Verdict

__all__ = ["RULES", "Verdict", "decide"]
