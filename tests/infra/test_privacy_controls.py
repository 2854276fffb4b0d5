"""Personal data on the template: what masks an address that reaches a function's logs anyway."""

from __future__ import annotations

from typing import Any

import pytest

pytestmark = pytest.mark.synth  # reads the synthesized app: `make test`, not `make unit`


def _log_groups_of_functions(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    resources = template["Resources"]
    groups = {}
    for function in resources.values():
        if function["Type"] != "AWS::Lambda::Function":
            continue
        reference = function["Properties"]["LoggingConfig"]["LogGroup"]["Ref"]
        groups[reference] = resources[reference]["Properties"]
    return groups


def test_every_function_log_group_masks_email_addresses(template_json: dict[str, Any]) -> None:
    """A CloudWatch Logs data protection policy (docs.aws.amazon.com/AmazonCloudWatch/latest/
    logs/mask-sensitive-log-data.html) with the EmailAddress managed identifier, audited and
    de-identified, on each function's own log group: a backstop behind the code's own rule."""
    groups = _log_groups_of_functions(template_json)

    assert len(groups) == 3  # publisher, recorder, sealer
    for properties in groups.values():
        statements = properties["DataProtectionPolicy"]["Statement"]
        identifiers = {
            _joined(identifier)
            for statement in statements
            for identifier in statement["DataIdentifier"]
        }
        operations = {key for statement in statements for key in statement["Operation"]}
        assert identifiers == {"arn:aws:dataprotection::aws:data-identifier/EmailAddress"}
        assert operations == {"Audit", "Deidentify"}


def _joined(value: Any) -> str:
    """An ``Fn::Join`` of the partition and literals, in the aws partition."""
    if isinstance(value, str):
        return value
    separator, parts = value["Fn::Join"]
    return str(separator).join(
        "aws" if part == {"Ref": "AWS::Partition"} else str(part) for part in parts
    )
