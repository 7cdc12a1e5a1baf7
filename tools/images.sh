#!/usr/bin/env bash
# Builds the images the real node runs, with buildah: no Docker engine, no registry.
#
#   tools/images.sh [IMAGE...]   (base operator worker pause; default: all four)
#
#   base      a minimal Debian bookworm with Python 3.11 (debootstrap), the operator's
#             PYTHON_IMAGE here, because the official python:3.11-slim-bookworm cannot be pulled
#   operator  the repository's own Dockerfile, built FROM base
#   worker    the example River worker (examples/worker), a static Go binary FROM scratch
#   pause     the pod sandbox: tools/pause, a static Go binary FROM scratch
#
# Each image is written once to $LIFEGUARD_CACHE/images/<name>-<key>.tar (an OCI archive that
# `ctr images import` reads), where <key> is a digest of everything that goes into it, so a
# second run builds nothing and a source change builds only what it touches.
# Prints "<name> <reference> <archive>" for each image on stdout; progress goes to stderr.
#
# Archives of other keys (older sources) are pruned when an image is built: those no run has
# used for LIFEGUARD_IMAGE_KEEP_HOURS hours (default 24; every run that uses an archive touches
# it), so worktrees of other versions that are in use keep theirs; the current one never goes.
# Needs root (debootstrap, buildah's chroot isolation); `make node-packages` installs buildah
# and debootstrap.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
cache=${LIFEGUARD_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/river-lifeguard}
images=$cache/images
export GOTOOLCHAIN=local GOWORK=off CGO_ENABLED=0 GOFLAGS=-mod=mod
# Debian's buildah runs crun by default, and crun refuses hybrid cgroup hierarchies; chroot
# isolation needs no cgroups for RUN steps.
export BUILDAH_ISOLATION=chroot

BASE_SUITE=bookworm
BASE_MIRROR=${LIFEGUARD_DEBIAN_MIRROR:-http://deb.debian.org/debian}
# python-is-python3: the Dockerfile runs `python`, as on the official image.
# python3.11-venv (+ python3-distutils, which provides its virtual python3.11-distutils): ensurepip,
# for the Dockerfile's build virtualenv.
BASE_PACKAGES=python3.11,python3.11-venv,python3-distutils,python-is-python3,ca-certificates
KEEP_HOURS=${LIFEGUARD_IMAGE_KEEP_HOURS:-24}

for tool in buildah debootstrap go; do
	command -v $tool >/dev/null || {
		echo "tools/images.sh: $tool is missing (run 'make node-packages' as root)" >&2
		exit 1
	}
done

# digest FILE...: a short digest of the files' names and contents (plus extra words on stdin).
digest() {
	{
		cat
		local f
		for f in "$@"; do
			printf '\0%s\0' "${f#"$root"/}"
			cat "$f"
		done
	} | sha256sum | cut -c1-16
}

# go_sources DIR...: a module's files that go into its binary.
go_sources() {
	find "$@" -type f \( -name go.mod -o -name go.sum -o \( -name '*.go' ! -name '*_test.go' \) \) | sort
}

# publish NAME REF ARCHIVE: pushes a committed image to its OCI archive (atomically).
publish() {
	local ref=$2 archive=$3
	rm -f "$archive.tmp"
	buildah push --quiet "$ref" "oci-archive:$archive.tmp:$ref" >/dev/null
	mv "$archive.tmp" "$archive"
}

# ensure_in_store REF ARCHIVE: a later build's FROM finds REF in buildah's store.
ensure_in_store() {
	buildah inspect --type image "$1" >/dev/null 2>&1 || buildah pull --quiet "oci-archive:$2" >/dev/null
}

build_base() {
	local ref=$1 archive=$2 rootfs=$images/base-rootfs.tmp
	rm -rf "$rootfs"
	debootstrap --variant=minbase --include="$BASE_PACKAGES" "$BASE_SUITE" "$rootfs" "$BASE_MIRROR" >&2
	# What an image does not need: package lists, caches, docs.
	rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/* "$rootfs"/usr/share/doc/* \
		"$rootfs"/usr/share/man/* "$rootfs"/usr/share/locale/*
	local c
	c=$(buildah from scratch)
	buildah copy --quiet "$c" "$rootfs" / >/dev/null
	buildah config --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
		--env LANG=C.UTF-8 --cmd python3 "$c"
	buildah commit --quiet --rm "$c" "$ref" >/dev/null
	rm -rf "$rootfs"
	publish base "$ref" "$archive"
}

build_operator() {
	local ref=$1 archive=$2 base_ref base_archive
	read -r _ base_ref base_archive < <(image base)
	ensure_in_store "$base_ref" "$base_archive"
	# pip inside the build verifies package downloads with this machine's CA bundle: mount it
	# read-only with a pip.conf that names it (nothing enters the image, the Dockerfile is
	# unchanged).
	local ca=${SSL_CERT_FILE:-/etc/ssl/certs/ca-certificates.crt} conf=$images/pip.conf
	printf '[global]\ncert = /run/lifeguard-build/ca.crt\n' >"$conf"
	buildah bud --quiet --layers=false --pull=never --build-arg "PYTHON_IMAGE=$base_ref" \
		-v "$ca:/run/lifeguard-build/ca.crt:ro" -v "$conf:/etc/pip.conf:ro" \
		-f "$root/Dockerfile" -t "$ref" "$root" >&2
	publish operator "$ref" "$archive"
}

# build_static NAME REF ARCHIVE DIR ENTRYPOINT: a static Go binary from DIR, FROM scratch.
build_static() {
	local name=$1 ref=$2 archive=$3 dir=$4 work
	work=$(mktemp -d)
	(cd "$dir" && go build -trimpath -ldflags "-s -w" -o "$work/$name" .)
	local c
	c=$(buildah from scratch)
	buildah copy --quiet --chmod 0755 "$c" "$work/$name" "/$name" >/dev/null
	# The nonroot uid of distroless images: the restricted Pod Security Standard accepts it.
	buildah config --entrypoint "[\"/$name\"]" --user 65532:65532 "$c"
	buildah commit --quiet --rm "$c" "$ref" >/dev/null
	rm -rf "$work"
	publish "$name" "$ref" "$archive"
}

# key NAME: the digest of NAME's inputs.
key() {
	case $1 in
	base) echo "$BASE_SUITE $BASE_PACKAGES" | digest ;;
	operator)
		local base_key
		base_key=$(key base)
		# shellcheck disable=SC2046
		echo "$base_key" | digest "$root/Dockerfile" "$root/pyproject.toml" "$root/README.md" \
			"$root"/docker/*.lock $(cd "$root" && git ls-files -co --exclude-standard operator | sed "s|^|$root/|" | sort)
		;;
	worker) go env GOVERSION | digest $(go_sources "$root/examples/worker" "$root/heartbeat") ;;
	pause) go env GOVERSION | digest $(go_sources "$here/pause") ;;
	*)
		echo "tools/images.sh: unknown image $1 (base, operator, worker, pause)" >&2
		return 1
		;;
	esac
}

# base_ref KEY: the base image's reference (it stays in buildah's store for the FROM of the
# operator's build).
base_ref() {
	echo "localhost/lifeguard-python:3.11-$BASE_SUITE-$1"
}

# prune NAME CURRENT: removes NAME's archives other than CURRENT unused for KEEP_HOURS (and an
# old base from buildah's store with its archive).
prune() {
	local name=$1 current=$2 old
	for old in "$images/$name"-*.tar; do
		[[ -f $old && $old != "$current" ]] || continue
		[[ -n $(find "$old" -maxdepth 0 -mmin +$((KEEP_HOURS * 60))) ]] || continue
		rm -f "$old"
		echo "pruned $old (unused for ${KEEP_HOURS}h)" >&2
		if [[ $name == base ]]; then
			local k=${old##*/base-}
			buildah rmi "$(base_ref "${k%.tar}")" >/dev/null 2>&1 || true
		fi
	done
}

# image NAME: builds NAME unless its archive is cached; prints "<name> <ref> <archive>".
image() {
	local name=$1 k ref archive
	k=$(key "$name")
	case $name in
	base) ref=$(base_ref "$k") ;;
	operator) ref=localhost/river-lifeguard:dev-$k ;;
	*) ref=localhost/lifeguard-$name:$k ;;
	esac
	archive=$images/$name-$k.tar
	if [[ ! -f $archive ]]; then
		mkdir -p "$images"
		echo "building image $name ($ref; first run only)" >&2
		local start=$SECONDS
		case $name in
		base) build_base "$ref" "$archive" ;;
		operator) build_operator "$ref" "$archive" ;;
		worker) build_static worker "$ref" "$archive" "$root/examples/worker" ;;
		pause) build_static pause "$ref" "$archive" "$here/pause" ;;
		esac
		echo "built image $name in $((SECONDS - start))s -> $archive ($(du -h "$archive" | cut -f1))" >&2
		# The archive is the cache; buildah's store keeps only the base (a later FROM).
		[[ $name == base ]] || buildah rmi "$ref" >/dev/null 2>&1 || true
		prune "$name" "$archive"
	else
		touch "$archive" # used: kept by other versions' prunes
	fi
	echo "$name $ref $archive"
}

names=("$@")
[[ ${#names[@]} -gt 0 ]] || names=(base operator worker pause)
for name in "${names[@]}"; do
	image "$name"
done
