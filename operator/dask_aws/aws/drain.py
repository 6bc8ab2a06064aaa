"""What a worker does with SIGTERM: leave through the scheduler, so its data moves first.

ECS stops a task with SIGTERM to the container's main process and SIGKILL after the
container's stopTimeout (at most 120 s on Fargate). A Fargate Spot interruption is such
a stop. `dask worker` answers SIGTERM by closing its nanny at once, and whatever the
worker held is recomputed elsewhere. This preload runs in the nanny (`--preload-nanny`,
as script text, so the image needs nothing of ours) and replaces that answer: it asks the
scheduler to retire this worker (close_workers=True, which moves its data to the other
workers and then closes worker and nanny), trying again every 2 s while no other worker
can take the data yet (the replacement is starting), and closes as `dask worker` would
once `deadline` seconds have passed, before the SIGKILL, or at once when the scheduler
does not answer (it is stopping too, as when the cluster is deleted: nobody to hand to).
"""

from __future__ import annotations

DRAIN_MARGIN = 10  # seconds kept between giving up and ECS's SIGKILL

_SCRIPT = """
import asyncio, logging, signal, time

logger = logging.getLogger("dask_aws.drain")


async def _leave(nanny, deadline):
    loop = asyncio.get_running_loop()
    end = loop.time() + deadline
    while loop.time() < end:
        address = nanny.worker_address
        if address is None:
            break
        try:
            retired = await asyncio.wait_for(
                nanny.scheduler.retire_workers(
                    workers=[address], close_workers=True, remove=True,
                    stimulus_id=f"dask-aws-sigterm-{time.time()}",
                ),
                max(1.0, end - loop.time()),
            )
        except Exception as exc:
            logger.info("dask-aws: retiring %s failed: %s", address, exc)
            break
        if retired:
            logger.info("dask-aws: %s retired through the scheduler, data moved", address)
            return
        await asyncio.sleep(2)
    logger.info("dask-aws: could not retire the worker in time; closing")
    await nanny.close(timeout=10, reason="signal-15")


async def dask_setup(nanny):
    loop = asyncio.get_running_loop()
    state = {}

    def on_term(signum, frame):
        signal.signal(signal.SIGTERM, signal.SIG_DFL)  # a second SIGTERM ends it at once
        loop.call_soon_threadsafe(
            lambda: state.setdefault("task", loop.create_task(_leave(nanny, DEADLINE)))
        )

    signal.signal(signal.SIGTERM, on_term)
"""


def script(stop_timeout: int) -> str:
    """The preload's text for a container whose stopTimeout is `stop_timeout` seconds."""
    return _SCRIPT.replace("DEADLINE", str(max(1, stop_timeout - DRAIN_MARGIN)))
