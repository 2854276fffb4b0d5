"""Deploys Secrets Manager secrets, generating their values as the template asks."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from audit_stack.local.deploy.context import DeployContext, template_bool
from audit_stack.local.deploy.template import DeploymentError, PhysicalResource, TemplateResource

_GENERATE_KEYS: Mapping[str, str] = {
    "PasswordLength": "PasswordLength",
    "ExcludeCharacters": "ExcludeCharacters",
    "ExcludeNumbers": "ExcludeNumbers",
    "ExcludePunctuation": "ExcludePunctuation",
    "ExcludeUppercase": "ExcludeUppercase",
    "ExcludeLowercase": "ExcludeLowercase",
    "IncludeSpace": "IncludeSpace",
    "RequireEachIncludedType": "RequireEachIncludedType",
}


def deploy_secret(ctx: DeployContext, resource: TemplateResource) -> PhysicalResource:
    properties = ctx.properties(
        resource,
        reproduced={"Name", "Description", "SecretString", "GenerateSecretString", "Tags"},
        no_local_effect={
            "KmsKeyId": "encryption at rest is not emulated",
            "ReplicaRegions": "replicas in other regions are not emulated",
        },
    )
    if "SecretString" in properties and "GenerateSecretString" in properties:
        raise DeploymentError(
            f"AWS::SecretsManager::Secret {resource.logical_id}: SecretString and "
            "GenerateSecretString exclude each other"
        )
    generate = properties.get("GenerateSecretString")
    if generate is not None:
        unknown = sorted(set(generate) - set(_GENERATE_KEYS))
        if unknown:
            # SecretStringTemplate/GenerateStringKey (a JSON secret) are not needed here.
            raise DeploymentError(
                f"AWS::SecretsManager::Secret {resource.logical_id}: GenerateSecretString "
                f"option(s) {', '.join(unknown)} cannot be reproduced by the local emulator"
            )
        options = {
            _GENERATE_KEYS[key]: (int(value) if key == "PasswordLength" else template_bool(value))
            if key != "ExcludeCharacters"
            else str(value)
            for key, value in generate.items()
        }
        value = ctx.client("secretsmanager").get_random_password(**options)
        secret_string = str(value["RandomPassword"])
    else:
        secret_string = str(properties.get("SecretString", ""))
    # Secrets Manager appends 6 random characters to a generated name, as the ARN shows.
    name = ctx.name(resource, properties.get("Name"), max_length=256)
    request: dict[str, Any] = {"Name": name, "SecretString": secret_string}
    if "Description" in properties:
        request["Description"] = str(properties["Description"])
    if properties.get("Tags"):
        request["Tags"] = properties["Tags"]
    arn = str(ctx.client("secretsmanager").create_secret(**request)["ARN"])
    return PhysicalResource(arn, {"Id": arn})
