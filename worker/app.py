"""`create_celery(settings)`: the Celery app every process builds (publishers and workers alike).

Messages carry only a job id (JSON, never pickle). Queues are named after the job's
device (`cpu`, `gpu`). On Redis, workers consume without acknowledgements (kombu's no_ack):
a message leaves the broker when a worker takes it, and a worker fetches a message only
when a pool process is free (prefetch 1); the filesystem broker acknowledges as a task
starts. Correctness rests on the database (claims, leases, the reconciler, which sends a
queued job's message again when it was not claimed in time), not on the broker giving
messages back: a late ack is what wedged workers and killed trainings when Redis went away
— an ack that fails while Redis is down leaves kombu counting the message as
unacknowledged, so the worker never fetches again (celery#9054, #10302), and Celery cancels
late-acked tasks on a lost broker connection — and it is what Redis's visibility timeout
redelivers to a second worker (celery#5935). An early ack still cost the worker's main
process two Redis transactions per message (kombu's unacked index, written and then
cleared); without acks a message is one BRPOP (issue 11).
"""

from __future__ import annotations

from celery import Celery
from celery.app.amqp import AMQP
from celery.worker.request import Request
from kombu import Exchange, Queue

from trainyard.store.private import private_folder
from trainyard.store.settings import Settings

TRAIN_TASK = "trainyard.train"
DEVICES = ("cpu", "gpu")


def job_queue(device: str) -> Queue:
    """The queue (and its direct exchange) of jobs for `device`."""
    if device not in DEVICES:
        raise ValueError(f"unknown device {device!r}; valid: {', '.join(DEVICES)}")
    return Queue(device, Exchange(device, type="direct", durable=True), routing_key=device, durable=True)


def broker_transport_options(settings: Settings) -> dict:
    """Transport options: the filesystem broker's folders, or Redis's visibility timeout and key prefix."""
    if settings.uses_filesystem_broker:
        folder = settings.broker_folder
        for path in (folder, folder / "queue", folder / "processed", folder / "control"):
            private_folder(path)  # messages name jobs: owner-only
        return {"data_folder_in": str(folder / "queue"), "data_folder_out": str(folder / "queue"),
                "processed_folder": str(folder / "processed"), "store_processed": False,
                "control_folder": str(folder / "control"), "polling_interval": 0.2}
    # A message not acknowledged within the visibility timeout is delivered again. Workers take
    # messages without acknowledgements (NoAckAMQP), so none is ever left unacknowledged; the
    # timeout is kept above the longest a job may run all the same (a second delivery's claim would fail).
    # Publishing must fail fast when the broker is down (the API answers; the reconciler resends later).
    options: dict = {"visibility_timeout": int(settings.job_timeout_seconds + 4 * settings.lease_seconds + 60),
                     "max_retries": 1, "interval_start": 0, "interval_step": 0.5, "interval_max": 0.5,
                     "socket_connect_timeout": settings.db_connect_timeout_seconds}
    if settings.broker_namespace:
        options["global_keyprefix"] = settings.broker_namespace
    return options


class NoAckAMQP(AMQP):
    """Celery's AMQP helpers, but the worker's task consumer takes messages without acknowledgements (see the
    module docstring): kombu writes no unacked index entry for them."""

    def TaskConsumer(self, channel, queues=None, accept=None, **kw):  # noqa: N802 (Celery's name)
        return super().TaskConsumer(channel, queues=queues, accept=accept, no_ack=True, **kw)


class NoAckRequest(Request):
    """The train task's request when its message was taken without acknowledgement (NoAckAMQP): nothing to
    acknowledge. (Celery would still ack it, and kombu's Redis channel spend a transaction clearing an unacked
    index entry that was never written.)"""

    def acknowledge(self) -> None:
        self.acknowledged = True


def create_celery(settings: Settings) -> Celery:
    """A Celery app for `settings` with the train task registered; connects to nothing until used."""
    # No acks on Redis only: its consumer is limited to free pool processes (worker_disable_prefetch, Redis only)
    # whatever it has acknowledged; kombu's prefetch limit, which other brokers rely on, counts unacknowledged ones.
    no_ack = settings.uses_redis_broker
    app = Celery("trainyard", set_as_current=False, amqp=NoAckAMQP if no_ack else None)
    app.conf.update(
        broker_url=settings.broker_url,
        broker_transport="trainyard.worker.fsbroker:Transport" if settings.uses_filesystem_broker else None,
        broker_transport_options=broker_transport_options(settings),
        broker_connection_retry_on_startup=True,
        broker_connection_timeout=settings.db_connect_timeout_seconds,
        task_serializer="json",
        accept_content=["json"],
        task_ignore_result=True,
        result_backend=None,
        task_acks_late=False,  # (on Redis no acks at all) a lost worker's job is requeued by the reconciler
        worker_prefetch_multiplier=1,
        worker_disable_prefetch=settings.uses_redis_broker,  # (Redis only) no message waits on a busy worker
        worker_cancel_long_running_tasks_on_connection_loss=True,  # cancels late-acked tasks only: none (no warning)
        # Workers report in through the database (store.workers); Celery's remote control and events (celery
        # inspect, Flower) only where an operator turns them on: a pidbox subscription per worker, and events.
        worker_enable_remote_control=settings.celery_monitoring,
        worker_send_task_events=settings.celery_monitoring,
        worker_hijack_root_logger=False,
        task_queues=[job_queue(d) for d in DEVICES],
        task_default_queue="cpu",
        task_create_missing_queues=False,
        task_publish_retry_policy={"max_retries": 2, "interval_start": 0, "interval_step": 0.5, "interval_max": 1},
    )

    @app.task(name=TRAIN_TASK, bind=True, ignore_result=True,
              Request=NoAckRequest if no_ack else Request)
    def train(self, job_id: str) -> str:
        from trainyard.worker.publish import publish_job
        from trainyard.worker.runner import run_job_in_worker  # imported in the pool child, at task time

        queue = (self.request.delivery_info or {}).get("routing_key")  # queues are bound by their device's name
        return run_job_in_worker(settings=settings, job_id=job_id, worker=self.request.hostname,
                                 queue=queue if queue in DEVICES else None,
                                 signal=lambda held, device: publish_job(celery=app, job_id=held, device=device))

    return app
