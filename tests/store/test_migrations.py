"""migrations/: empty → head on SQLite and PostgreSQL, idempotent, and in step with the models."""

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from trainyard.store.db import make_engine
from trainyard.store.migrate import upgrade
from trainyard.store.models import Base


def test_upgrade_from_empty_creates_every_table_and_matches_the_models(db_settings):
    upgrade(db_settings)
    upgrade(db_settings)  # a second run is a no-op
    engine = make_engine(db_settings)
    try:
        with engine.connect() as conn:
            assert set(Base.metadata.tables) <= set(inspect(conn).get_table_names())
            diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata)
    finally:
        engine.dispose()
    assert diff == []


def test_0002_moves_the_confusion_matrices_of_earlier_jobs_into_artifacts_and_back(db_settings):
    from alembic import command
    from sqlalchemy import column, func, insert, select, table

    from trainyard.store.db import make_sessionmaker, session_scope
    from trainyard.store.jobs import get_confusion_matrix, get_job
    from trainyard.store.migrate import alembic_config
    from trainyard.store.models import Artifact, Blob, Job, User, utcnow

    def migrate(revision: str, step=command.upgrade) -> None:
        config = alembic_config(db_settings)
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            step(config, revision)

    engine = make_engine(db_settings)
    sessions = make_sessionmaker(engine)
    before = {"loss": 0.25, "accuracy": 0.75, "confusion_matrix": [[2, 1], [0, 1]],
              "test_loss": 0.5, "test_accuracy": 0.5, "test_confusion_matrix": [[1, 0], [1, 0]]}
    try:
        migrate("0001")
        with session_scope(sessions) as s:  # a job finished by a version that kept its matrices in the row
            s.add(User(id="u1", name="alice"))
            s.flush()
            # Only the columns revision 0001 has: later revisions add columns that store.models.Job would write.
            now = utcnow()
            jobs_0001 = table("jobs", *(column(name, Job.__table__.c[name].type) for name in (
                "id", "owner_id", "backend", "device", "spec", "status", "attempts", "cancel_requested", "epoch",
                "epochs", "metrics", "stopped_early", "created_at", "published_at")))
            common = dict(owner_id="u1", backend="numpy", device="cpu", spec={}, status="succeeded", attempts=0,
                          cancel_requested=False, epoch=0, epochs=1, stopped_early=False, created_at=now,
                          published_at=now)
            s.execute(insert(jobs_0001), [
                {**common, "id": "j1", "metrics": before},
                {**common, "id": "j2", "metrics": {"loss": 0.1, "mean_absolute_error": 0.2}}])
        migrate("head")
        with session_scope(sessions) as s:
            assert get_job(session=s, owner="u1", job_id="j1").metrics == {
                "loss": 0.25, "accuracy": 0.75, "test_loss": 0.5, "test_accuracy": 0.5}
            assert get_confusion_matrix(session=s, owner="u1", job_id="j1", split="train").tolist() == [[2, 1], [0, 1]]
            assert get_confusion_matrix(session=s, owner="u1", job_id="j1", split="test").tolist() == [[1, 0], [1, 0]]
            assert get_job(session=s, owner="u1", job_id="j2").metrics == {"loss": 0.1, "mean_absolute_error": 0.2}
            assert s.scalar(select(func.count()).select_from(Artifact)) == 2
        migrate("0001", command.downgrade)
        with session_scope(sessions) as s:
            assert s.scalar(select(jobs_0001.c.metrics).where(jobs_0001.c.id == "j1")) == before  # 0001's columns
            assert s.scalar(select(func.count()).select_from(Artifact)) == 0
            assert s.scalar(select(func.count()).select_from(Blob)) == 0
        migrate("head")
    finally:
        engine.dispose()
