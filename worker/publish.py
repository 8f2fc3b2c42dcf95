"""`publish_job`: send a job id to its device's queue, declaring the queue every time."""

from __future__ import annotations

from celery import Celery

from trainyard.worker.app import TRAIN_TASK, job_queue


def publish_job(*, celery: Celery, job_id: str, device: str) -> None:
    """Send `job_id` to the `device` queue. Call after the job's row is committed.

    The queue, exchange and binding are declared on every call, bypassing kombu's
    "already declared" cache: a broker that lost its state (Redis restart, FLUSHDB)
    would otherwise drop the message silently. Raises on broker errors; the job stays
    queued and the reconciler sends it again.
    """
    queue = job_queue(device)
    with celery.producer_pool.acquire(block=True) as producer:
        queue.bind(producer.channel).declare()
        celery.send_task(TRAIN_TASK, args=[job_id], queue=queue, producer=producer, declare=[],
                         retry=True, retry_policy=celery.conf.task_publish_retry_policy)
