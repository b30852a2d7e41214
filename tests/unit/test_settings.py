import logging
from pathlib import Path
from typing import Any

import pytest

from shared.errors import ConfigurationError
from shared.settings import Settings, load_settings, secret_settings
from tools.azurite import connection_string


def test_missing_storage_is_named_in_one_clear_message() -> None:
    with pytest.raises(ConfigurationError) as caught:
        load_settings(media_storage_connection_string=None, media_storage_account_name=None)
    assert "MEDIA_STORAGE_CONNECTION_STRING" in str(caught.value)


def test_bad_value_names_the_setting() -> None:
    with pytest.raises(ConfigurationError) as caught:
        load_settings(media_storage_account_name="acct", max_media_bytes=-1)
    assert "MAX_MEDIA_BYTES" in str(caught.value)


def test_emulator_is_recognised_only_on_loopback() -> None:
    local = Settings(media_storage_connection_string=connection_string(1, 2, 3))
    assert local.storage_is_emulator
    remote = Settings(
        media_storage_connection_string="DefaultEndpointsProtocol=https;AccountName=devstoreaccount1;"
        "AccountKey=a2V5;BlobEndpoint=https://example.net/devstoreaccount1;"
    )
    assert not remote.storage_is_emulator
    assert not Settings(media_storage_account_name="prod").storage_is_emulator


def test_local_settings_json_values_are_read_below_explicit_arguments(tmp_path: Path) -> None:
    file = tmp_path / "local.settings.json"
    file.write_text(
        '{"Values": {"MEDIA_STORAGE_ACCOUNT_NAME": "fromfile", "SAS_POLICY_ID": "p-file"}}'
    )
    settings = load_settings(file, sas_policy_id="explicit")
    assert settings.media_storage_account_name == "fromfile"
    assert settings.sas_policy_id == "explicit"


def test_environment_storage_choice_overrides_the_files_emulator(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    file = tmp_path / "local.settings.json"
    file.write_text('{"Values": {"MEDIA_STORAGE_CONNECTION_STRING": "UseDevelopmentStorage=true"}}')
    monkeypatch.setenv("MEDIA_STORAGE_ACCOUNT_NAME", "prodaccount")
    settings = load_settings(file)
    assert settings.media_storage_connection_string is None
    assert settings.media_storage_account_name == "prodaccount"


UNRESOLVED = "@Microsoft.KeyVault(SecretUri=https://kv-abc123.vault.azure.net/secrets/carrier-webhook-secret/)"
SIGNING_SECRETS = ("carrier_webhook_secret", "carrier_gateway_secret", "media_storage_account_key")
# Provider credentials (docs/carriers.md): refused by the same rules, so an unresolved Key Vault
# reference never reaches a provider or verifies a callback.
CARRIER_SECRETS = (
    "twilio_auth_token", "telnyx_api_key", "bandwidth_client_secret", "bandwidth_callback_password"
)  # fmt: skip


def with_secret(name: str, value: str) -> Settings:
    """Settings given `value` for the secret setting `name` (chosen at run time)."""
    values: dict[str, Any] = {"media_storage_account_name": "acct", name: value}
    return Settings(**values)


def test_every_secret_setting_is_covered_by_the_secret_rules() -> None:
    assert set(secret_settings()) == {
        "media_storage_connection_string", *SIGNING_SECRETS, *CARRIER_SECRETS
    }  # fmt: skip


@pytest.mark.parametrize("name", SIGNING_SECRETS + CARRIER_SECRETS)
def test_signing_secret_of_31_bytes_is_refused_and_32_accepted(name: str) -> None:
    short = with_secret(name, "é" + "x" * 29)  # 31 bytes
    assert getattr(short, name) is None
    assert short.refused_secrets == {name.upper(): "is shorter than 32 bytes"}
    enough = with_secret(name, "x" * 32)
    assert getattr(enough, name).get_secret_value() == "x" * 32
    assert enough.refused_secrets == {}


@pytest.mark.parametrize("name", secret_settings())
def test_unresolved_key_vault_reference_is_refused_for_every_secret(name: str) -> None:
    settings = with_secret(name, UNRESOLVED)
    assert getattr(settings, name) is None
    assert "unresolved Key Vault reference" in settings.refused_secrets[name.upper()]


def test_empty_secret_is_refused_rather_than_used_as_a_key() -> None:
    settings = Settings(media_storage_account_name="acct", carrier_webhook_secret="")
    assert settings.carrier_webhook_secret is None
    assert "CARRIER_WEBHOOK_SECRET" in settings.refused_secrets


def test_refused_secret_is_a_start_up_configuration_error_naming_the_setting(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.ERROR, logger="shared.settings"):
        settings = load_settings(
            media_storage_account_name="acct", carrier_webhook_secret=UNRESOLVED
        )
    assert settings.carrier_webhook_secret is None
    (record,) = caplog.records
    assert record.levelno == logging.ERROR
    assert "configuration error: CARRIER_WEBHOOK_SECRET is an unresolved Key Vault reference" in (
        record.getMessage()
    )
    assert "kv-abc123" not in record.getMessage()


def test_refused_gateway_secret_with_a_gateway_url_stops_start_up_naming_it() -> None:
    with pytest.raises(ConfigurationError) as caught:
        load_settings(
            media_storage_account_name="acct",
            carrier_gateway_url="https://gateway.example.net",
            carrier_gateway_secret=UNRESOLVED,
        )
    assert "CARRIER_GATEWAY_SECRET is an unresolved Key Vault reference" in str(caught.value)


def test_secrets_in_local_settings_example_are_accepted() -> None:
    example = Path(__file__).parents[2] / "local.settings.json.example"
    settings = load_settings(example)
    assert settings.refused_secrets == {}
    assert settings.carrier_webhook_secret is not None
