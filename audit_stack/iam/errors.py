"""Errors of the policy evaluator."""

from __future__ import annotations


class UnsupportedPolicyError(ValueError):
    """A policy uses an element or operator the evaluator does not implement: refusing it beats
    guessing an answer that AWS would not give."""
