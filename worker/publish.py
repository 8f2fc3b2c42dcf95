"""`publish_job`: send a job id to its device's queue."""

from __future__ import annotations

from celery import Celery

from trainyard.worker.app import TRAIN_TASK, job_queue


def publish_job(*, celery: Celery, job_id: str, device: str) -> None:
    """Send `job_id` to the `device` queue. Call after the job's row is committed.

    The exchange and the queue's binding are declared (kombu sends them once per process and channel, and keeps
    them in its state); the queue itself is not: on Redis a queue declaration only counts its messages (a MULTI
    with one LLEN per priority), a third of a publish's CPU (issue 11). A Redis that lost its state (restart,
    FLUSHDB) still routes the message: kombu's Redis transport routes a direct exchange to the queue of its name
    (tests/worker/test_publish.py). Raises on broker errors; the job stays queued and the reconciler sends it again.
    """
    queue = job_queue(device)
    with celery.producer_pool.acquire(block=True) as producer:
        bound = queue.bind(producer.channel)
        bound.exchange.declare()
        bound.queue_bind()
        celery.send_task(TRAIN_TASK, args=[job_id], queue=queue, producer=producer, declare=[],
                         retry=True, retry_policy=celery.conf.task_publish_retry_policy)
