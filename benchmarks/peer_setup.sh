#!/usr/bin/env bash
# Create benchmarks/.venv-peer with dask-cloudprovider[aws] (the peer), idempotently.
# Pins dask/distributed to the versions of the project's .venv when pip can resolve them
# together with dask-cloudprovider; otherwise lets pip pick (the run prints what it got).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$here")"
venv="$here/.venv-peer"
py="${PYTHON:-python3}"

if [ -x "$venv/bin/python" ] && "$venv/bin/python" -c "import dask_cloudprovider.aws" 2>/dev/null; then
  echo "peer venv ready: $venv"
  exit 0
fi

"$py" -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --upgrade pip

pins=()
if [ -x "$root/.venv/bin/python" ]; then
  dask_v="$("$root/.venv/bin/python" -c 'import dask; print(dask.__version__)' 2>/dev/null || true)"
  dist_v="$("$root/.venv/bin/python" -c 'import distributed; print(distributed.__version__)' 2>/dev/null || true)"
  [ -n "$dask_v" ] && pins+=("dask==$dask_v")
  [ -n "$dist_v" ] && pins+=("distributed==$dist_v")
fi

if ! "$venv/bin/python" -m pip install "dask-cloudprovider[aws]" "${pins[@]}"; then
  echo "peer_setup: could not pin ${pins[*]} with dask-cloudprovider[aws]; installing unpinned" >&2
  "$venv/bin/python" -m pip install "dask-cloudprovider[aws]"
fi
"$venv/bin/python" -c "import dask_cloudprovider.aws, dask, distributed; print('peer venv ready:', dask.__version__, distributed.__version__)"
