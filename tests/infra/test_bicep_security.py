"""Security properties of the templates: no keys where an identity will do, hardened storage,
Key Vault in RBAC mode, App Insights without local auth. Each check returns its findings, so it
is also run against a deliberately bad snippet to prove it can fail."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.infra import bicep

KEY_VAULT_REFERENCE = "@Microsoft.KeyVault(SecretUri="
SECRET_SETTINGS = (
    "MEDIA_STORAGE_ACCOUNT_KEY", "CARRIER_GATEWAY_SECRET", "CARRIER_WEBHOOK_SECRET",
    "TWILIO_AUTH_TOKEN", "TELNYX_API_KEY", "BANDWIDTH_CLIENT_SECRET", "BANDWIDTH_CALLBACK_PASSWORD",
)  # fmt: skip
# The documented exceptions: the media account key copied into Key Vault, and the blob
# extension's system key that authenticates Event Grid to the host's webhook.
ALLOWED_LIST_KEYS = {
    ("app/keyvault.bicep", "Microsoft.KeyVault/vaults/secrets"),
    ("app/eventgrid.bicep", "Microsoft.EventGrid/systemTopics/eventSubscriptions"),
}
KEY_MARKERS = (
    "AccountKey=",
    "DefaultEndpointsProtocol=",
    "SharedAccessSignature=",
    "InstrumentationKey=",
)


def templates() -> list[bicep.Template]:
    return [bicep.load(p) for p in bicep.bicep_files()]


def main() -> bicep.Template:
    return bicep.load(bicep.INFRA / "main.bicep")


def module(name: str) -> bicep.Template:
    return bicep.load(bicep.INFRA / "app" / name)


def app_settings() -> dict[str, Any]:
    """Settings as deployed: main.bicep's app settings merged with those function.bicep adds. A
    setting under a condition is included with its value (the condition is checked elsewhere)."""
    settings = module("function.bicep").resource("settings").body["properties"]
    assert isinstance(settings, bicep.Call) and settings.name == "union"
    return merged(main(), settings, {"appSettings": api_settings()})


def api_settings() -> dict[str, Any]:
    value = main().modules["api"][1]["params"]["appSettings"]
    assert isinstance(value, bicep.Expr), "appSettings should be the apiSettings variable"
    return merged(main(), main().variables[value.text], {})


def merged(template: bicep.Template, value: Any, names: dict[str, Any]) -> dict[str, Any]:
    """The object `value` builds from literals, union(), `?:`, variables, parameters given in
    `names` and other modules' outputs."""
    if isinstance(value, dict):
        return value
    if isinstance(value, bicep.Call) and value.name == "union":
        result: dict[str, Any] = {}
        for part in value.args:
            result.update(merged(template, part, names))
        return result
    if isinstance(value, bicep.Conditional):
        return merged(template, value.then, names) | merged(template, value.otherwise, names)
    assert isinstance(value, bicep.Expr), value
    if value.text in names:
        return dict(names[value.text])
    if value.text in template.variables:
        return merged(template, template.variables[value.text], names)
    symbol, outputs, output = value.text.split(".")
    assert outputs == "outputs", value.text
    path, _ = template.modules[symbol]
    source = bicep.load((template.path.parent / path).resolve())
    return merged(source, source.outputs[output], {})


def list_key_calls(template: bicep.Template) -> list[tuple[str, str]]:
    found = []
    for _node, symbol in bicep.calls(template, "listKeys"):
        owner = next((r for r in template.resources if r.symbol == symbol), None)
        found.append((template.name, owner.type if owner else f"<{symbol}>"))
    return found


def storage_problems(template: bicep.Template) -> list[str]:
    problems = []
    for account in template.resources_of("Microsoft.Storage/storageAccounts"):
        props = account.properties
        where = f"{template.name}:{account.symbol}"
        if props.get("minimumTlsVersion") != "TLS1_2":
            problems.append(f"{where}: minimumTlsVersion is not TLS1_2")
        if props.get("supportsHttpsTrafficOnly") is not True:
            problems.append(f"{where}: supportsHttpsTrafficOnly is not true")
        if props.get("allowBlobPublicAccess") is not False:
            problems.append(f"{where}: allowBlobPublicAccess is not false")
        # Only the media account may keep shared keys: its key signs the SAS URLs.
        if (
            template.name != "app/storage-media.bicep"
            and props.get("allowSharedKeyAccess") is not False
        ):
            problems.append(f"{where}: allowSharedKeyAccess is not false")
    for container in template.resources_of(
        "Microsoft.Storage/storageAccounts/blobServices/containers"
    ):
        if container.properties.get("publicAccess") != "None":
            problems.append(f"{template.name}:{container.symbol}: container is not private")
    return problems


def test_list_keys_appears_only_in_the_documented_places() -> None:
    found = {call for t in templates() for call in list_key_calls(t)}
    assert found == ALLOWED_LIST_KEYS, f"unexpected listKeys(): {found - ALLOWED_LIST_KEYS}"


def test_list_keys_check_catches_a_key_in_app_settings() -> None:
    snippet = bicep.parse(
        b"""resource st 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: 'st'
}
resource settings 'Microsoft.Web/sites/config@2024-04-01' = {
  name: 'app/appsettings'
  properties: {
    KEY: st.listKeys().keys[0].value
  }
}
"""
    )
    assert list_key_calls(snippet) == [("", "Microsoft.Web/sites/config")]


@pytest.mark.parametrize("name", ["main.bicep", "app/function.bicep"])
def test_app_settings_templates_call_no_list_function(name: str) -> None:
    template = bicep.load(bicep.INFRA / name)
    for function in ("listKeys", "listAccountSas", "listServiceSas", "listConnectionStrings"):
        assert list(bicep.calls(template, function)) == [], f"{name} calls {function}()"


def test_no_template_writes_a_connection_string_or_key_literal() -> None:
    for template in templates():
        text = template.source.decode()
        for marker in KEY_MARKERS:
            assert marker not in text, f"{template.name} contains {marker}"


def test_runtime_storage_is_reached_by_identity() -> None:
    settings = app_settings()
    assert settings["AzureWebJobsStorage__credential"] == "managedidentity"
    assert settings["AzureWebJobsStorage__accountName"] == bicep.Expr("runtimeStorage.name")
    assert settings["AzureWebJobsStorage__clientId"] == bicep.Expr("identityClientId")
    assert "AzureWebJobsStorage" not in settings
    assert not any(k.startswith("AzureWebJobsStorage__connectionString") for k in settings)


def test_media_trigger_connection_is_identity_based() -> None:
    settings = app_settings()
    assert settings["MediaStorage__credential"] == "managedidentity"
    assert settings["MediaStorage__clientId"] == bicep.Expr("identity.outputs.clientId")
    assert "MediaStorage" not in settings


@pytest.mark.parametrize("name", SECRET_SETTINGS)
def test_secret_settings_are_key_vault_references(name: str) -> None:
    value = app_settings()[name]
    assert isinstance(value, str) and value.startswith(KEY_VAULT_REFERENCE) and value.endswith(")")


def test_app_resolves_key_vault_references_with_its_identity() -> None:
    site = module("function.bicep").resource("functionApp")
    assert site.properties["keyVaultReferenceIdentity"] == bicep.Expr("identityId")
    assert site.body["identity"]["type"] == "UserAssigned"


def test_app_settings_name_everything_the_app_reads() -> None:
    settings = app_settings()
    for name in (
        "MEDIA_STORAGE_ACCOUNT_NAME",
        "MEDIA_STORAGE_ACCOUNT_KEY",
        "MANAGED_IDENTITY_CLIENT_ID",
        "SAS_POLICY_ID",
        "CARRIER_GATEWAY_URL",
        "CARRIER_GATEWAY_SECRET",
        "CARRIER_WEBHOOK_SECRET",
        "APPLICATIONINSIGHTS_CONNECTION_STRING",
    ):
        assert name in settings, name
    assert main().params["sasPolicyId"].default == "media-read-v1"


def test_app_insights_ingestion_uses_the_identity() -> None:
    settings = app_settings()
    assert settings["APPLICATIONINSIGHTS_AUTHENTICATION_STRING"] == (
        "ClientId=${identityClientId};Authorization=AAD"
    )


def test_secrets_come_from_secure_parameters_or_the_media_key() -> None:
    template = module("keyvault.bicep")
    for secret in template.resources_of("Microsoft.KeyVault/vaults/secrets"):
        value = secret.properties["value"]
        if secret.symbol == "mediaStorageAccountKey":
            assert "listKeys()" in value.text
            continue
        assert isinstance(value, bicep.Expr) and value.text in template.params, secret.symbol
        assert "secure" in template.params[value.text].decorators, value.text


@pytest.mark.parametrize("path", bicep.bicep_files(), ids=lambda p: p.name)
def test_storage_accounts_and_containers_are_hardened(path: Path) -> None:
    assert storage_problems(bicep.load(path)) == []


def test_storage_check_catches_a_public_tls10_account() -> None:
    snippet = bicep.parse(
        b"""resource st 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  name: 'st'
  properties: {
    minimumTlsVersion: 'TLS1_0'
    allowBlobPublicAccess: true
  }
  resource blobs 'blobServices' = {
    name: 'default'
    resource c 'containers' = {
      name: 'c'
      properties: {
        publicAccess: 'Blob'
      }
    }
  }
}
"""
    )
    assert len(storage_problems(snippet)) == 5


def test_both_storage_accounts_are_checked() -> None:
    accounts = [r for t in templates() for r in t.resources_of("Microsoft.Storage/storageAccounts")]
    assert len(accounts) == 2


def test_media_account_protects_blobs_against_deletion_and_overwrite() -> None:
    (blob_service,) = module("storage-media.bicep").resources_of(
        "Microsoft.Storage/storageAccounts/blobServices"
    )
    props = blob_service.properties
    assert props["isVersioningEnabled"] is True
    assert props["deleteRetentionPolicy"]["enabled"] is True
    assert props["containerDeleteRetentionPolicy"]["enabled"] is True


def test_key_vault_uses_rbac_not_access_policies() -> None:
    (vault,) = module("keyvault.bicep").resources_of("Microsoft.KeyVault/vaults")
    assert vault.properties["enableRbacAuthorization"] is True
    assert "accessPolicies" not in vault.properties


def test_app_insights_refuses_local_auth() -> None:
    (component,) = module("monitoring.bicep").resources_of("Microsoft.Insights/components")
    flags = {k.lower(): v for k, v in component.properties.items()}
    assert flags["disablelocalauth"] is True


def test_site_is_https_only_and_refuses_basic_publishing() -> None:
    # TLS 1.2 is the platform default; siteConfig stays unset on Flex (test_flex_consumption.py).
    site = module("function.bicep").resource("functionApp")
    assert site.properties["httpsOnly"] is True
    assert "siteConfig" not in site.properties
    for policy in module("function.bicep").resources_of(
        "Microsoft.Web/sites/basicPublishingCredentialsPolicies"
    ):
        assert policy.properties["allow"] is False
