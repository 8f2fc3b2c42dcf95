"""The embedded broker's message files appear whole: a consumer polling the folder never finds one half-written."""

from __future__ import annotations

import os

import pytest
from kombu import Connection
from kombu.transport import filesystem

from trainyard.worker import fsbroker


def _channel(folder, transport):
    options = {"data_folder_in": str(folder), "data_folder_out": str(folder)}
    return Connection("filesystem://", transport=transport, transport_options=options).channel()


def _seen_while_writing(monkeypatch, module, folder, transport) -> list[tuple[str, int]]:
    """The `cpu` message files a consumer could pick up at the moment the payload is being serialised."""
    seen: list[tuple[str, int]] = []
    real = module.dumps

    def spying_dumps(value):
        seen.extend((name, os.path.getsize(folder / name)) for name in os.listdir(folder)
                    if name.partition(".")[2] == "cpu.msg")
        return real(value)

    monkeypatch.setattr(module, "dumps", spying_dumps)
    _channel(folder, transport)._put("cpu", {"body": "job-1"})
    return seen


def test_kombus_own_transport_shows_a_consumer_an_empty_message_file(tmp_path, monkeypatch):
    """Why fsbroker exists: this is the window in which a consumer read b'' and stopped."""
    assert _seen_while_writing(monkeypatch, filesystem, tmp_path, filesystem.Transport) == [
        (name, 0) for name in os.listdir(tmp_path)]


def test_a_message_appears_only_once_written_and_is_consumed_whole(tmp_path, monkeypatch):
    assert _seen_while_writing(monkeypatch, fsbroker, tmp_path, fsbroker.Transport) == []
    names = os.listdir(tmp_path)
    assert len(names) == 1 and names[0].endswith(".cpu.msg")  # no .part left behind
    assert _channel(tmp_path, fsbroker.Transport)._get("cpu") == {"body": "job-1"}
    assert os.listdir(tmp_path) == []


def test_the_celery_app_uses_it_only_for_the_filesystem_broker(sqlite_settings, postgres_settings):
    from trainyard.worker.app import create_celery

    assert create_celery(sqlite_settings).connection_for_write().transport_cls == "trainyard.worker.fsbroker:Transport"
    assert create_celery(postgres_settings).conf.broker_transport is None


def test_an_unwritable_folder_is_a_channel_error(tmp_path):
    with pytest.raises(Exception, match="cannot add a message"):
        _channel(tmp_path / "missing", fsbroker.Transport)._put("cpu", {"body": "x"})
