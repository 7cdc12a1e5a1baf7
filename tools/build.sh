#!/usr/bin/env bash
# Builds the project's Go tools from their published modules, once.
#
#   tools/build.sh [TOOL...]      (default: every tool under tools/)
#
# Each tool lives in tools/<name>/ as a wrapper module pinning the upstream
# version. Binaries go to $LIFEGUARD_CACHE/tools/<name>-<version>-<go version>/,
# a folder outside the work tree keyed by everything that changes the binary,
# so a second run (and CI on the same machine) rebuilds nothing.
# Prints the bin directory of each tool, one per line, on stdout.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
cache=${LIFEGUARD_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/river-lifeguard}
export GOTOOLCHAIN=local GOWORK=off CGO_ENABLED=0 GOFLAGS=-mod=mod

command -v go >/dev/null || { echo "tools/build.sh: go is not installed (need Go >= 1.26)" >&2; exit 1; }
goversion=$(go env GOVERSION)

# module_version DIR MODULE: the version of MODULE that DIR's go.mod pins.
module_version() {
	awk -v m="$2" '$1 == m && $2 ~ /^v/ { print $2; exit } $1 == "require" && $2 == m { print $3; exit }' "$1/go.mod"
}

# spec NAME: prints "<package> <version> <ldflags>" for a tool.
spec() {
	local name=$1 dir=$here/$1 v
	case $name in
	kube-apiserver | kube-controller-manager | kube-scheduler | kubectl)
		v=$(module_version "$dir" k8s.io/kubernetes)
		local minor=${v#v1.}; minor=${minor%%.*}
		local x="" p
		for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
			x+=" -X $p.gitVersion=$v -X $p.gitMajor=1 -X $p.gitMinor=$minor"
			x+=" -X $p.gitTreeState=clean -X $p.buildDate=1970-01-01T00:00:00Z"
		done
		echo "k8s.io/kubernetes/cmd/$name $v -s -w$x"
		;;
	etcd)
		v=$(module_version "$dir" go.etcd.io/etcd/server/v3)
		echo "go.etcd.io/etcd/server/v3 $v -s -w"
		;;
	helm)
		v=$(module_version "$dir" helm.sh/helm/v3)
		local kv; kv=$(module_version "$dir" k8s.io/client-go)
		local kminor=${kv#v0.}; kminor=${kminor%%.*}
		local x=" -X helm.sh/helm/v3/internal/version.version=$v -X helm.sh/helm/v3/internal/version.gitTreeState=clean"
		local p
		for p in helm.sh/helm/v3/pkg/lint/rules helm.sh/helm/v3/pkg/chartutil; do
			x+=" -X $p.k8sVersionMajor=1 -X $p.k8sVersionMinor=$kminor"
		done
		echo "helm.sh/helm/v3/cmd/helm $v -s -w$x"
		;;
	river)
		v=$(module_version "$dir" github.com/riverqueue/river)
		echo ". $v -s -w"
		;;
	*)
		echo "tools/build.sh: unknown tool $name" >&2
		return 1
		;;
	esac
}

build() {
	local name=$1 pkg version ldflags
	read -r pkg version ldflags < <(spec "$name")
	local out=$cache/tools/$name-$version-$goversion
	if [[ -x $out/$name ]]; then
		echo "$out"
		return
	fi
	echo "building $name $version with $goversion (first run only; this can take several minutes)" >&2
	local start=$SECONDS
	mkdir -p "$out.tmp"
	(cd "$here/$name" && go build -trimpath -ldflags "$ldflags" -o "$out.tmp/$name" "$pkg")
	rm -rf "$out" && mv "$out.tmp" "$out"
	echo "built $name in $((SECONDS - start))s -> $out" >&2
	echo "$out"
}

names=("$@")
if [[ ${#names[@]} -eq 0 ]]; then
	names=(etcd kube-apiserver kube-controller-manager kube-scheduler kubectl helm river)
fi
for name in "${names[@]}"; do
	build "$name"
done
