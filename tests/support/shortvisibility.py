"""`python -m tests.support.shortvisibility SECONDS --queues cpu --concurrency N`: a real worker, short Redis
visibility timeout.

The service derives its visibility timeout from the job time limit (trainyard.worker.app.broker_transport_options).
This wrapper shortens it to SECONDS and has kombu look for overdue messages every second — the
setting under which Celery runs a long job twice (celery#5935) — then runs `trainyard.worker.main` as is.
"""

import sys

import trainyard.worker.app
from trainyard.worker.main import main


def shorten_visibility_timeout(seconds: float) -> None:
    derived = trainyard.worker.app.broker_transport_options

    def options(settings):
        return {**derived(settings), "visibility_timeout": seconds, "unacked_restore_interval": 1,
                "unacked_restore_throttle": 1}

    trainyard.worker.app.broker_transport_options = options


if __name__ == "__main__":
    shorten_visibility_timeout(float(sys.argv[1]))
    sys.exit(main(sys.argv[2:]))
