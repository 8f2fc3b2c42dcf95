"""trainyard.worker.app / worker.publish without a worker: configuration, routing by device, failing fast, imports."""

import subprocess
import sys
import time

import pytest
from kombu.exceptions import OperationalError

from trainyard.store.settings import Settings
from trainyard.worker.app import TRAIN_TASK, NoAckAMQP, create_celery, job_queue
from trainyard.worker.publish import publish_job

from tests.support.cluster import RedisServer


def test_celery_is_configured_for_at_least_once_delivery_of_json_ids(tmp_path):
    settings = Settings(home=tmp_path, job_timeout_seconds=7200)
    conf = create_celery(settings).conf
    assert (conf.task_serializer, conf.accept_content) == ("json", ["json"])
    # Never redelivered by the broker (the database's claims and leases retry jobs): on Redis taken without acks,
    # elsewhere acked when the task starts.
    assert not conf.task_acks_late and conf.worker_prefetch_multiplier == 1 and not conf.worker_disable_prefetch
    assert (tmp_path / "broker" / "queue").is_dir()
    redis = create_celery(settings.replace(broker_url="redis://127.0.0.1:6379/9"))
    assert redis.conf.worker_disable_prefetch  # a busy worker holds no message another worker could run
    assert redis.conf.broker_transport_options["visibility_timeout"] > 7200
    assert isinstance(redis.amqp, NoAckAMQP)  # (a real worker: tests/reliability/test_broker_loss.py)
    for url in ("filesystem://", "amqp://guest@127.0.0.1//"):  # their prefetch limit counts unacknowledged messages
        assert not isinstance(create_celery(settings.replace(broker_url=url)).amqp, NoAckAMQP)


def test_queues_are_named_after_devices():
    assert (job_queue("cpu").name, job_queue("gpu").routing_key) == ("cpu", "gpu")
    with pytest.raises(ValueError, match="unknown device 'tpu'"):
        job_queue("tpu")


def test_publish_puts_the_job_id_on_its_device_queue(tmp_path):
    celery = create_celery(Settings(home=tmp_path))
    publish_job(celery=celery, job_id="j1", device="gpu")
    with celery.connection_for_read() as conn:
        message = conn.SimpleQueue(job_queue("gpu")).get(timeout=2)
        assert conn.SimpleQueue(job_queue("cpu")).qsize() == 0
    assert message.headers["task"] == TRAIN_TASK and message.headers["argsrepr"] == "['j1']"
    assert message.content_type == "application/json"


def test_publish_routes_after_redis_lost_its_state(postgres_settings):
    """A Redis restart without persistence (or FLUSHDB) drops the bindings kombu believes it declared.

    (kombu 5.7's Redis transport happens to route a same-named exchange without its
    binding too; publish_job declares anyway, so this holds whatever the transport does.)
    """
    import redis

    celery = create_celery(postgres_settings)
    client = redis.Redis.from_url(postgres_settings.broker_url)
    prefix = postgres_settings.broker_namespace
    try:
        publish_job(celery=celery, job_id="j1", device="cpu")
        assert client.llen(f"{prefix}cpu") == 1
        client.delete(*client.scan_iter(match=f"{prefix}*"))
        publish_job(celery=celery, job_id="j2", device="cpu")
        assert client.llen(f"{prefix}cpu") == 1
    finally:
        client.close()


def test_a_publish_is_one_redis_command(tmp_path):
    """Issue 11: declaring the queue on Redis only counted its messages (MULTI, an LLEN per priority, EXEC) — a third
    of a publish's CPU; the exchange and binding are still declared (kombu skips what its channel already did)."""
    server = RedisServer(tmp_path / "redis")
    server.start()
    try:
        celery = create_celery(Settings(home=tmp_path, broker_url=server.url))
        publish_job(celery=celery, job_id="first", device="cpu")
        with server.client() as client:
            assert client.smembers("_kombu.binding.cpu") == {b"cpu\x06\x16\x06\x16cpu"}  # declared, routed by key
            client.config_resetstat()
            for n in range(5):
                publish_job(celery=celery, job_id=f"j{n}", device="cpu")
            stats = client.info("commandstats")
            calls = {name.removeprefix("cmdstat_"): command["calls"] for name, command in stats.items()}
            assert calls == {"config|resetstat": 1, "lpush": 5}, calls
            assert client.llen("cpu") == 6
    finally:
        server.stop()


def test_publish_fails_fast_when_the_broker_is_down(tmp_path):
    celery = create_celery(Settings(home=tmp_path, broker_url="redis://127.0.0.1:1/0"))
    started = time.monotonic()
    with pytest.raises(OperationalError):
        publish_job(celery=celery, job_id="j1", device="cpu")
    assert time.monotonic() - started < 3


def test_worker_modules_do_not_import_tensorflow(tmp_path):
    """The worker's main process forks its pool: TensorFlow must load only in a child, at task time."""
    code = ("import sys, trainyard.worker.main, trainyard.worker.reconciler, trainyard.worker.runner, trainyard.store.db; "
            "from trainyard.store.settings import Settings; from trainyard.worker.app import create_celery; "
            f"create_celery(Settings(home={str(tmp_path)!r})); "
            "print(sorted(m for m in ('tensorflow', 'keras') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == "[]"


@pytest.mark.timeout(90)
def test_worker_registers_and_leaves_the_workers_table_on_sigterm(sqlite_settings):
    import os
    import signal

    from trainyard.store.db import make_engine, make_sessionmaker, session_scope
    from trainyard.store.migrate import upgrade
    from trainyard.store.workers import list_live_workers

    upgrade(sqlite_settings)
    engine = make_engine(sqlite_settings)
    factory = make_sessionmaker(engine)
    proc = subprocess.Popen([sys.executable, "-m", "trainyard.worker.main", "--queues", "cpu,gpu", "--concurrency", "2"],
                            env={**os.environ, **sqlite_settings.to_env()}, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while True:
            with session_scope(factory) as session:
                workers = list_live_workers(session=session, live_seconds=60)
            if workers or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert [(w.queues, w.device, w.concurrency) for w in workers] == [(["cpu", "gpu"], "gpu", 2)]
        time.sleep(1)  # let Celery install its signal handlers
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
        with session_scope(factory) as session:
            assert list_live_workers(session=session, live_seconds=60) == []
    finally:
        if proc.poll() is None:
            proc.kill()
        engine.dispose()


def test_worker_refuses_unknown_queues(capsys):
    from trainyard.worker.main import run_worker

    assert run_worker(queues=["tpu"], concurrency=1) == 2
    assert "queues must be among cpu, gpu" in capsys.readouterr().err
