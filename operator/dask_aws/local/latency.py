"""Start-up latency of the local AWS: how long a task stays PROVISIONING and PENDING.

`dask-aws local up --latency aws` (`LocalAws(latency="aws")`) makes every task wait as a
Fargate task does before RUNNING; the default, `none`, starts it at once. `aws:F` scales
every draw by F (`aws:0.05` for tests). `--latency-seed N` (`latency_seed=N`) picks the seed.

The two phases, each a lognormal draw clamped to [low, high] seconds:

- PROVISIONING (RunTask -> ENI created and attached; AWS's createdAt -> pullStartedAt):
  median 10 s, sigma 0.5 (5th-95th percentile 4.4-22.8 s), clamped to [3, 45] s.
- PENDING (image pull + container start; pullStartedAt -> startedAt): median 30 s, sigma
  0.35 (5th-95th percentile 16.9-53.4 s), clamped to [10, 90] s, for an image the size of
  the Dask images (a few hundred MB compressed) pulled from a registry in the region.

So a task is RUNNING about 41 s after RunTask (median; 5th-95th percentile about 26-68 s).
The figures, from public measurements (there is no official number; they vary with region,
subnet, image size and time):

- AWS, "Optimize Amazon ECS task launch time"
  (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/task-recommendations.html):
  awsvpc mode (all of Fargate) provisions and attaches an ENI per task, which "adds an
  overhead of several seconds"; the image pull is the other large part.
- opensearch-project/opensearch-migrations PR #2116 (2026-01): Fargate createdAt ->
  pullStartedAt of 11 s and of 44 s for two tasks of one test run (the ENI provisioning).
- CloudKeeper, "Addressing network bottlenecks while scaling Amazon ECS": ENI attachment
  under 10 s per task is the normal case.
- aws/containers-roadmap #358 (2019-12): Fargate tasks take 20-40 s to start when pulling
  images from within the VPC, over a minute from docker.io.
- ElasticScale, "Reduce AWS Fargate pull times with SOCI" (2024-04-10): a 413 MB image,
  private subnet with NAT, createdAt -> startedAt 53-62 s over 10 tasks (mean 57 s).
- aws/containers-roadmap #696 (2022-01): a 250 MB image starts in about 60 s on Fargate.
- Vlad Ionescu, "Scaling containers on AWS in 2022": ECS on Fargate's first containers run
  about 30 s after the scaling starts (a small image).

Seekable OCI (lazy loading, 2023) shortens PENDING for large images only; it is not modelled.

Deterministic: the k-th task the server adopts (k = 1, 2, ...) draws from
`random.Random(f"{seed}/{k}")`. Task ARNs are random on every run, so a seed by ARN would not
reproduce a run; by ordinal it does, and two clients that start their tasks in the same order
(a scheduler first, then N workers) wait the same.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import math
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

logger = logging.getLogger(__name__)

NONE = "none"
AWS = "aws"
PROFILES = (NONE, AWS)


@dataclass(frozen=True)
class Phase:
    """One lognormal phase: `median` seconds, log-space spread `sigma`, clamped."""

    name: str
    median: float
    sigma: float
    low: float
    high: float

    def draw(self, rng: random.Random) -> float:
        value = rng.lognormvariate(math.log(self.median), self.sigma)
        return min(self.high, max(self.low, value))


PROVISIONING = Phase("PROVISIONING", median=10.0, sigma=0.5, low=3.0, high=45.0)
PENDING = Phase("PENDING", median=30.0, sigma=0.35, low=10.0, high=90.0)


@dataclass(frozen=True)
class Delays:
    provisioning: float
    pending: float

    @property
    def total(self) -> float:
        return self.provisioning + self.pending


@dataclass(frozen=True)
class LatencyProfile:
    """`none`, or `aws` with a scale factor (`aws:0.1`) and a seed."""

    name: str = NONE
    scale: float = 1.0
    seed: int = 0

    @classmethod
    def parse(cls, spec: str | None, seed: int = 0) -> LatencyProfile:
        """`none`, `aws` or `aws:SCALE` (SCALE > 0, a float)."""
        text = (spec or NONE).strip().lower()
        name, _, scale_text = text.partition(":")
        if name not in PROFILES:
            raise ValueError(f"latency profile {spec!r}: expected one of none, aws, aws:SCALE")
        scale = 1.0
        if scale_text:
            try:
                scale = float(scale_text)
            except ValueError:
                raise ValueError(f"latency profile {spec!r}: SCALE must be a number") from None
            if not math.isfinite(scale) or scale <= 0:
                raise ValueError(f"latency profile {spec!r}: SCALE must be > 0")
            if name == NONE:
                raise ValueError(f"latency profile {spec!r}: none takes no scale")
        return cls(name=name, scale=scale, seed=int(seed))

    @property
    def active(self) -> bool:
        return self.name != NONE

    def __str__(self) -> str:
        if not self.active:
            return NONE
        return AWS if self.scale == 1.0 else f"{AWS}:{self.scale:g}"

    def delays(self, ordinal: int) -> Delays | None:
        """The waits of the `ordinal`-th task (1-based); None for `none`."""
        if not self.active:
            return None
        rng = random.Random(f"{self.seed}/{ordinal}")
        provisioning = PROVISIONING.draw(rng)
        pending = PENDING.draw(rng)
        return Delays(provisioning * self.scale, pending * self.scale)


class Timers:
    """Callbacks at deadlines on one daemon thread (thousands of waiting tasks, one thread).

    Started on the first `call_later`; `close()` drops what is left and joins the thread."""

    def __init__(self, name: str = "local-aws-latency") -> None:
        self._name = name
        self._heap: list[tuple[float, int, Callable[[], None]]] = []
        self._counter = itertools.count()
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._closed = False

    def call_later(self, delay: float, callback: Callable[[], None]) -> None:
        with self._cond:
            if self._closed:
                return
            deadline = time.monotonic() + max(0.0, delay)
            heapq.heappush(self._heap, (deadline, next(self._counter), callback))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
                self._thread.start()
            self._cond.notify()

    def pending(self) -> int:
        with self._cond:
            return len(self._heap)

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._closed:
                    now = time.monotonic()
                    if self._heap and self._heap[0][0] <= now:
                        break
                    timeout = self._heap[0][0] - now if self._heap else None
                    self._cond.wait(timeout)
                if self._closed:
                    return
                _, _, callback = heapq.heappop(self._heap)
            try:
                callback()
            except Exception:
                logger.exception("latency timer callback failed")

    def close(self, timeout: float = 5.0) -> None:
        with self._cond:
            self._closed = True
            self._heap.clear()
            self._cond.notify_all()
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
