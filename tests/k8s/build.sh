#!/usr/bin/env bash
# Build the pinned Kubernetes test control plane: kube-apiserver, etcd,
# kubectl and kube-controller-manager from this Go module (versions pinned in
# go.mod / go.sum), and helm 3 via `go install helm.sh/helm/v3/cmd/helm@...`.
# Also kstatus (cmd/kstatus), which tells how kstatus, an Argo CD health script
# and Flux healthCheckExprs judge objects.
#
# The binaries land in ${DASK_AWS_CACHE:-$HOME/.cache/dask-aws}/k8s/<key>/bin,
# where <key> names the pinned versions plus a hash of every build input, so a
# second run with the same inputs does nothing. Go's module and build caches
# live under ${DASK_AWS_CACHE:-$HOME/.cache/dask-aws}/go so rebuilds are warm.
#
# Progress goes to stderr; the LAST line of stdout is the bin directory.
set -euo pipefail

HELM_VERSION=v3.19.5

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cache=${DASK_AWS_CACHE:-$HOME/.cache/dask-aws}

log() { printf '[k8s build] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

if [[ -n ${GO:-} ]]; then
    go_bin=$GO
elif command -v go >/dev/null 2>&1; then
    go_bin=$(command -v go)
elif [[ -x /usr/local/go/bin/go ]]; then
    go_bin=/usr/local/go/bin/go
else
    die "no Go toolchain found (set GO=/path/to/go or put go on PATH)"
fi
[[ -x $go_bin ]] || die "Go toolchain $go_bin is not executable"

# Versions come from go.mod, the single source of truth for the Go module.
mod_version() {
    awk -v m="$1" '$1 == m && $2 ~ /^v/ { print $2; exit }' "$here/go.mod"
}
K8S_VERSION=$(mod_version k8s.io/kubernetes)
ETCD_VERSION=$(mod_version go.etcd.io/etcd/server/v3)
[[ -n $K8S_VERSION && -n $ETCD_VERSION ]] || die "cannot read pinned versions from $here/go.mod"
[[ $K8S_VERSION =~ ^v([0-9]+)\.([0-9]+)\.[0-9]+$ ]] || die "unexpected Kubernetes version $K8S_VERSION"
k8s_major=${BASH_REMATCH[1]}
k8s_minor=${BASH_REMATCH[2]}

go_version=$("$go_bin" env GOVERSION)
inputs_hash=$(
    {
        printf '%s\n' "$go_version" "$HELM_VERSION" "$(uname -m)"
        cd "$here"
        find go.mod go.sum build.sh cmd -type f \( -name '*.go' -o -name 'go.*' -o -name '*.sh' \) \
            -print0 | LC_ALL=C sort -z | xargs -0 sha256sum
    } | sha256sum | cut -c1-12
)
key="k8s-${K8S_VERSION}_etcd-${ETCD_VERSION}_helm-${HELM_VERSION}_${inputs_hash}"
root="$cache/k8s"
final="$root/$key"
binaries=(kube-apiserver etcd kubectl kube-controller-manager kstatus helm)

is_done() {
    [[ -f $final/.complete ]] || return 1
    local b
    for b in "${binaries[@]}"; do
        [[ -x $final/bin/$b ]] || return 1
    done
}

if is_done; then
    log "up to date: $final/bin"
    printf '%s\n' "$final/bin"
    exit 0
fi

mkdir -p "$root" "$cache/go"
# One build at a time per cache (parallel pytest sessions, xdist workers).
exec 9>"$root/.lock"
if command -v flock >/dev/null 2>&1 && ! flock -n 9; then
    log "waiting for another build to finish (lock $root/.lock)"
    flock 9
fi
if is_done; then
    log "built by another process: $final/bin"
    printf '%s\n' "$final/bin"
    exit 0
fi
# We hold the lock: anything half-built is from a killed run.
rm -rf "$root"/.tmp.* "$final"

tmp=$(mktemp -d "$root/.tmp.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/bin"

export GOMODCACHE="$cache/go/mod"
export GOCACHE="$cache/go/build"
export GOFLAGS="-buildvcs=false ${GOFLAGS:-}"
export CGO_ENABLED=${CGO_ENABLED:-0}

start=$SECONDS
log "Kubernetes $K8S_VERSION, etcd $ETCD_VERSION, helm $HELM_VERSION with $go_version"
log "GOMODCACHE=$GOMODCACHE GOCACHE=$GOCACHE"
log "building into $final (minutes when cold, seconds when only relinking)"

ldflags="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldflags+=" -X $pkg.gitVersion=$K8S_VERSION"
    ldflags+=" -X $pkg.gitMajor=$k8s_major"
    ldflags+=" -X $pkg.gitMinor=$k8s_minor"
    ldflags+=" -X $pkg.gitTreeState=clean"
done

(
    cd "$here"
    "$go_bin" build -trimpath -ldflags "$ldflags" -o "$tmp/bin/" \
        ./cmd/kube-apiserver ./cmd/etcd ./cmd/kubectl ./cmd/kube-controller-manager ./cmd/kstatus
)
log "Kubernetes binaries built after $((SECONDS - start))s"

# Helm stamps its own version and the Kubernetes version that `helm lint` and
# `helm template` assume (otherwise 1.20) the way helm's Makefile does.
helm_mod=$(cd "$tmp" && GOWORK=off "$go_bin" mod download -json "helm.sh/helm/v3@$HELM_VERSION" |
    sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",\{0,1\}$/\1/p')
[[ -f $helm_mod ]] || die "cannot find helm's go.mod via go mod download"
helm_client_go=$(awk '$1 == "k8s.io/client-go" { print $2; exit }' "$helm_mod")
[[ $helm_client_go =~ ^v0\.([0-9]+)\. ]] || die "cannot read k8s.io/client-go version from $helm_mod"
helm_k8s_minor=${BASH_REMATCH[1]}
hv=helm.sh/helm/v3/internal/version
helm_ldflags="-s -w -X $hv.version=$HELM_VERSION -X $hv.metadata= -X $hv.gitTreeState=clean"
helm_ldflags+=" -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMajor=1"
helm_ldflags+=" -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor=$helm_k8s_minor"
helm_ldflags+=" -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=1"
helm_ldflags+=" -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=$helm_k8s_minor"
(
    cd "$tmp"
    GOWORK=off GOBIN="$tmp/bin" "$go_bin" install -trimpath -ldflags "$helm_ldflags" \
        "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
)
log "helm built after $((SECONDS - start))s"

for b in "${binaries[@]}"; do
    [[ -x $tmp/bin/$b ]] || die "missing $b after the build"
done
"$tmp/bin/kube-apiserver" --version >&2
"$tmp/bin/kubectl" version --client >&2
"$tmp/bin/etcd" --version >&2
"$tmp/bin/helm" version >&2

cat >"$tmp/versions.txt" <<EOF
kubernetes=$K8S_VERSION
etcd=$ETCD_VERSION
helm=$HELM_VERSION
go=$go_version
EOF
touch "$tmp/.complete"
chmod 755 "$tmp"
mv "$tmp" "$final"
trap - EXIT
# Keep the three newest builds (a session still running may use an older one).
find "$root" -mindepth 2 -maxdepth 2 -path "$root/k8s-*/.complete" -printf '%T@ %h\n' |
    sort -rn | tail -n +4 | cut -d' ' -f2- | while IFS= read -r old; do
    log "removing old build $old"
    rm -rf "$old"
done
log "done in $((SECONDS - start))s: $final/bin"
printf '%s\n' "$final/bin"
