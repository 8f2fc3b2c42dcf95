"""trainyard.store.datasets and store.tokens on SQLite and PostgreSQL."""

import pytest
from sqlalchemy import func, select

from trainyard.core.spec import parse_spec
from trainyard.store.db import session_scope
from trainyard.store.errors import DatasetInUse, NotFound
from trainyard.store.datasets import create_dataset, dataset_bytes, delete_dataset, get_dataset, list_datasets
from trainyard.store.jobs import create_job, get_job, request_cancel
from trainyard.store.models import Blob
from trainyard.store.tokens import create_token, get_or_create_user, revoke_tokens, verify_token

CSV = b"a,b,y\n0,0,0\n0,1,1\n1,0,1\n1,1,0\n"


def upload(session, owner, data=CSV, name="xor.csv"):
    return create_dataset(session=session, owner=owner, name=name, format="csv", data=data, task="classification",
                          n_samples=4, n_features=2, n_classes=2, target="y")


def test_dataset_round_trip_and_owner_scoping(session_factory, user_id):
    with session_scope(session_factory) as s:
        ds = upload(s, user_id)
        bob = get_or_create_user(session=s, name="bob").id
    with session_scope(session_factory) as s:
        got = get_dataset(session=s, owner=user_id, dataset_id=ds.id)
        assert (got.name, got.n_samples, got.size_bytes, got.task) == ("xor.csv", 4, len(CSV), "classification")
        assert dataset_bytes(session=s, dataset=got) == (CSV, None)
        assert [d.id for d in list_datasets(session=s, owner=user_id)] == [ds.id]
        assert list_datasets(session=s, owner=bob) == []
        with pytest.raises(NotFound):
            get_dataset(session=s, owner=bob, dataset_id=ds.id)


def test_dataset_in_use_cannot_be_deleted_until_its_job_finishes(session_factory, user_id):
    with session_scope(session_factory) as s:
        ds = upload(s, user_id)
        twin = upload(s, user_id, name="copy.csv")  # same bytes: one blob
        spec = parse_spec({"dataset": {"id": ds.id}, "model": {"layers": [{"type": "dense", "units": 1}]}})
        job, _ = create_job(session=s, owner=user_id, spec=spec)
    with session_scope(session_factory) as s, pytest.raises(DatasetInUse):
        delete_dataset(session=s, owner=user_id, dataset_id=ds.id)
    with session_scope(session_factory) as s:
        request_cancel(session=s, owner=user_id, job_id=job.id)
        delete_dataset(session=s, owner=user_id, dataset_id=ds.id)
    with session_scope(session_factory) as s:
        assert get_job(session=s, owner=user_id, job_id=job.id).dataset_id is None
        assert s.scalar(select(func.count()).select_from(Blob)) == 1  # still used by the twin
        delete_dataset(session=s, owner=user_id, dataset_id=twin.id)
    with session_scope(session_factory) as s:
        assert s.scalar(select(func.count()).select_from(Blob)) == 0


def test_tokens_verify_until_revoked(session_factory):
    with session_scope(session_factory) as s:
        t1, user = create_token(session=s, user_name="carol")
        t2, _ = create_token(session=s, user_name="carol")
        t3, _ = create_token(session=s, user_name="dave")
    assert t1.startswith("ty_") and len({t1, t2, t3}) == 3
    with session_scope(session_factory) as s:
        assert verify_token(session=s, token=t1).name == "carol"
        assert verify_token(session=s, token=t1 + "x") is None
        assert revoke_tokens(session=s, token=t1) == 1
    with session_scope(session_factory) as s:
        assert verify_token(session=s, token=t1) is None and verify_token(session=s, token=t2).id == user.id
        assert revoke_tokens(session=s, user_name="carol") == 1
        assert verify_token(session=s, token=t2) is None and verify_token(session=s, token=t3).name == "dave"


def test_token_cli_prints_the_token_last_and_revokes(sqlite_settings, monkeypatch, capsys):
    from trainyard.store.token_commands import create_token_cli, revoke_token_cli

    monkeypatch.setenv("TRAINYARD_HOME", str(sqlite_settings.home))
    assert create_token_cli("erin", create_database=True) == 0
    token = capsys.readouterr().out.strip().splitlines()[-1]
    assert token.startswith("ty_")
    assert revoke_token_cli(token, None) == 0
    assert revoke_token_cli(token, None) == 1  # nothing live matched
    assert revoke_token_cli(None, None) == 2
