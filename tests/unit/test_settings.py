from pathlib import Path

import pytest

from shared.errors import ConfigurationError
from shared.settings import Settings, load_settings
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
