"""The local AWS: a Dask cluster on "ECS" without an AWS account.

`dask-aws local up --port PORT` (or `LocalAws` from Python) serves an AWS endpoint on
127.0.0.1:PORT (moto's server) together with a data plane that does what Fargate does: each
ECS task's containers run as local processes.

Conventions of the data plane (what differs from a real Fargate task):

- Each task gets its own loopback address 127.x.y.z (from 127.1.0.1 upward, never 127.0.0.1;
  a freed address is reused only after a quarantine). DescribeTasks (attachment
  `privateIPv4Address`, `containers[].networkInterfaces[].privateIpv4Address`) and
  DescribeNetworkInterfaces report it. As on AWS, the attachment names only its subnet
  while PRECREATED (RunTask's reply, PROVISIONING); the address and the interface appear
  when it is ATTACHED (PENDING).
- The image is not pulled: the local Python environment stands in for it. Containers run
  `entryPoint + command` (with the run's `containerOverrides`) with the directory of
  `sys.executable` first on PATH, in a scratch working directory per task.
- All tasks share one network namespace, so Dask commands are bound to the task's address:
  for `dask scheduler`, `dask worker`, `dask-scheduler`, `dask-worker` and
  `dask cuda worker` the data plane appends `--host <task ip>` when the command has no
  `--host`, and for the scheduler also `--dashboard-address <task ip>:8787` when absent.
  Many schedulers therefore coexist on port 8786 (dashboards on 8787). Other commands
  (e.g. `sh -c ...`) are not rewritten; they can use `$DASK_AWS_TASK_IP`.
- Environment of every container: a minimal host environment (PATH, HOME, LANG, ...), then
  `DASK_AWS_TASK_IP`, `HOSTNAME`, `AWS_EXECUTION_ENV`, `AWS_REGION`/`AWS_DEFAULT_REGION`,
  `AWS_ENDPOINT_URL` (AWS calls from a task reach the local AWS), no host credentials (the
  AWS config and credentials files point into the task's directory), and the ECS agent's
  variables (local/agent.py): `ECS_CONTAINER_METADATA_URI_V4`/`ECS_CONTAINER_METADATA_URI`
  and, when the task has a task role, `AWS_CONTAINER_CREDENTIALS_FULL_URI` with
  `AWS_CONTAINER_AUTHORIZATION_TOKEN`, serving that role's credentials from the local STS;
  then the task definition's `environment`, its `secrets` (resolved from the local Secrets
  Manager / SSM) and the run's environment overrides.
- cpu and memory are not enforced.
- Nothing outlives the server: a watchdog in its own session (local/reaper.py) kills every
  container's process group, and any process carrying the server's `DASK_AWS_LOCAL_REAPER`
  marker (set in every container), once the server is gone, even by SIGKILL.
- Output goes to the awslogs group/stream of the container's `logConfiguration`.
- Start-up is instant by default (`--latency none`). `--latency aws` (`LocalAws(latency=
  "aws")`) keeps each task PROVISIONING (ENI PRECREATED), then PENDING (ENI ATTACHED, image
  pull) as long as Fargate does: lognormal draws, PROVISIONING median 10 s (clamped 3-45 s),
  PENDING median 30 s (10-90 s), about 41 s to RUNNING at the median, from public
  measurements listed in local/latency.py; seeded per task by `--latency-seed` and the
  task's ordinal, so runs reproduce; `aws:0.1` scales every draw. Simulated mode too.

Simulated mode (`--simulated`) runs no processes: tasks become RUNNING on loopback addresses
where nothing listens, and StopTask stops them at once. Made for scale tests.
"""

from dask_aws.local.api import LocalAws, LocalAwsError

__all__ = ["LocalAws", "LocalAwsError"]
