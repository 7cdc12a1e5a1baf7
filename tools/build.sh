#!/usr/bin/env bash
# Builds the project's Go tools from their published modules, once.
#
#   tools/build.sh [TOOL...]      (default: the control plane's tools, helm and river)
#
# The real node's tools (kubelet, containerd, runc, cni) are built on request
# (`make node-tools`); runc needs cgo and Debian's libseccomp-dev.
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

# k8s_ldflags VERSION: the version stamp every Kubernetes binary here carries.
k8s_ldflags() {
	local v=$1 minor=${1#v1.} x="" p
	minor=${minor%%.*}
	for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
		x+=" -X $p.gitVersion=$v -X $p.gitMajor=1 -X $p.gitMinor=$minor"
		x+=" -X $p.gitTreeState=clean -X $p.buildDate=1970-01-01T00:00:00Z"
	done
	echo "$x"
}

# spec NAME: prints "<packages> <version> <cgo> <tags> <ldflags>" for a tool.
# <packages> is one package, or several joined by commas (each binary is named
# after its package's last element); <cgo> is 0 or 1; <tags> is "-" for none.
spec() {
	local name=$1 dir=$here/$1 v
	case $name in
	kube-apiserver | kube-controller-manager | kube-scheduler | kubectl | kubelet)
		v=$(module_version "$dir" k8s.io/kubernetes)
		echo "k8s.io/kubernetes/cmd/$name $v 0 - -s -w$(k8s_ldflags "$v")"
		;;
	etcd)
		v=$(module_version "$dir" go.etcd.io/etcd/server/v3)
		echo "go.etcd.io/etcd/server/v3 $v 0 - -s -w"
		;;
	containerd)
		# The btrfs, devmapper and zfs snapshotters need cgo; the node uses overlayfs.
		v=$(module_version "$dir" github.com/containerd/containerd/v2)
		local m=github.com/containerd/containerd/v2
		echo "$m/cmd/containerd,$m/cmd/containerd-shim-runc-v2,$m/cmd/ctr $v 0" \
			"no_btrfs,no_devmapper,no_zfs -s -w -X $m/version.Version=$v"
		;;
	runc)
		# cgo and libseccomp: the restricted profile's RuntimeDefault seccomp needs them.
		v=$(module_version "$dir" github.com/opencontainers/runc)
		echo "github.com/opencontainers/runc $v 1 seccomp -s -w -X main.version=${v#v}"
		;;
	cni)
		v=$(module_version "$dir" github.com/containernetworking/plugins)
		local m=github.com/containernetworking/plugins
		echo "$m/plugins/main/bridge,$m/plugins/main/loopback,$m/plugins/ipam/host-local $v 0 -" \
			"-s -w -X $m/pkg/utils/buildversion.BuildVersion=$v"
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
		echo "helm.sh/helm/v3/cmd/helm $v 0 - -s -w$x"
		;;
	river)
		v=$(module_version "$dir" github.com/riverqueue/river)
		echo ". $v 0 - -s -w"
		;;
	*)
		echo "tools/build.sh: unknown tool $name" >&2
		return 1
		;;
	esac
}

build() {
	local name=$1 pkgs version cgo tags ldflags
	read -r pkgs version cgo tags ldflags < <(spec "$name")
	local out=$cache/tools/$name-$version-$goversion
	# The folder appears only once every binary in it is built (see the mv below).
	if [[ -d $out ]]; then
		echo "$out"
		return
	fi
	echo "building $name $version with $goversion (first run only; this can take several minutes)" >&2
	local start=$SECONDS
	mkdir -p "$out.tmp"
	local target=$out.tmp/$name
	[[ $pkgs == *,* ]] && target=$out.tmp/
	[[ $tags == - ]] && tags=""
	(cd "$here/$name" && CGO_ENABLED=$cgo go build -trimpath -tags "$tags" -ldflags "$ldflags" \
		-o "$target" ${pkgs//,/ })
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
