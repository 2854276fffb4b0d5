"""IAM policy evaluation: identity and resource policies decided as AWS documents it. Pure
Python, no aws_cdk: the emulator enforces with it and the template tests check policies with it."""

from audit_stack.iam.errors import UnsupportedPolicyError
from audit_stack.iam.evaluation import (
    Decision,
    Evaluation,
    Policy,
    Request,
    evaluate,
    statements,
    validate,
)

__all__ = [
    "Decision",
    "Evaluation",
    "Policy",
    "Request",
    "UnsupportedPolicyError",
    "evaluate",
    "statements",
    "validate",
]
