"""Operator-edited policy: one loader that validates YAML and reports file:line."""

from kefu.domain.policy.loader import PolicyError, load_policy

__all__ = ["PolicyError", "load_policy"]
