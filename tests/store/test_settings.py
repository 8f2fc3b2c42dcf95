"""trainyard.store.settings: defaults of DESIGN §3/§5/§7 and parsing of TRAINYARD_* variables."""

from pathlib import Path

import pytest

from trainyard.store.settings import Settings, SettingsError, load_settings


def test_embedded_defaults_live_under_home(tmp_path):
    s = load_settings({"TRAINYARD_HOME": str(tmp_path)})
    assert s.home == tmp_path
    assert s.database_url == f"sqlite:///{tmp_path}/trainyard.db"
    assert s.uses_filesystem_broker and s.broker_folder == tmp_path / "broker"
    assert s.token_file == tmp_path / "token"
    assert s.auth is True


def test_default_home_is_var_in_the_working_directory(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    assert load_settings({}).home == tmp_path / "var"


def test_lifecycle_and_limit_defaults():
    s = Settings()
    assert (s.lease_seconds, s.reconcile_interval_seconds, s.max_attempts, s.job_timeout_seconds) == (30, 5, 3, 3600)
    assert (s.max_request_bytes, s.max_upload_bytes) == (16 * 2**20, 256 * 2**20)
    assert (s.max_parameters, s.max_samples_x_features, s.max_epochs) == (50_000_000, 200_000_000, 1_000_000)
    assert (s.max_predict_rows, s.max_queued_per_user, s.rate_limit_per_second) == (100_000, 1000, 100)


def test_variables_are_parsed_by_type():
    s = load_settings({
        "TRAINYARD_DATABASE_URL": "postgresql+psycopg://u@h/db", "TRAINYARD_BROKER_URL": "redis://h:6379/0",
        "TRAINYARD_AUTH": "off", "TRAINYARD_MAX_EPOCHS": "1_000", "TRAINYARD_LEASE_SECONDS": "12.5",
        "TRAINYARD_MNIST_DIR": "", "TRAINYARD_HOME": "/srv/ty", "OTHER": "x",
    })
    assert s.database_url == "postgresql+psycopg://u@h/db" and not s.is_sqlite
    assert s.broker_url == "redis://h:6379/0" and not s.uses_filesystem_broker
    assert s.auth is False and s.max_epochs == 1000 and s.lease_seconds == 12.5
    assert s.mnist_dir is None and s.home == Path("/srv/ty")


@pytest.mark.parametrize("name, value, needle", [
    ("LEASE_SECONDS", "abc", "TRAINYARD_LEASE_SECONDS='abc'"),
    ("AUTH", "maybe", "TRAINYARD_AUTH"),
    ("MAX_ATTEMPTS", "0", "TRAINYARD_MAX_ATTEMPTS must be > 0"),
    ("JOB_TIMEOUT_SECONDS", "nan", "finite"),
    ("HEARTBEAT_SECONDS", "20", "a third of TRAINYARD_LEASE_SECONDS"),
    ("DATABASE_URL", "mysql://x", "sqlite:// or postgresql"),
])
def test_bad_values_name_the_variable(name, value, needle):
    with pytest.raises(SettingsError, match=needle.replace("(", r"\(")):
        load_settings({f"TRAINYARD_{name}": value})


def test_settings_are_frozen():
    with pytest.raises(AttributeError):
        Settings().max_epochs = 3  # type: ignore[misc]


def test_to_env_round_trips(tmp_path):
    s = Settings(home=tmp_path, auth=False, broker_url="redis://h/1", broker_namespace="ns:", max_epochs=7,
                 lease_seconds=9.5, metrics_token="m")
    assert load_settings(s.to_env()) == s
