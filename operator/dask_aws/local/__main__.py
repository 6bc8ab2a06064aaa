"""`python -m dask_aws.local` is `dask-aws local up`."""

import sys

from dask_aws.local.cli import main

sys.exit(main())
