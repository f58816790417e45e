#!/usr/bin/env bash
# Builds the local test bed's binaries from the Go module proxy, once, into a
# versioned cache folder outside the repository:
#   kube-apiserver, kubectl, etcd  (Kubernetes $K8S_VERSION, version-stamped)
#   pebble, pebble-challtestsrv     (Pebble $PEBBLE_VERSION)
#   cmjudge                         (cert-manager $CERT_MANAGER_VERSION's own policies,
#                                    built inside a copy of its module: _cmjudge/main.go)
# A warm run finds every binary and returns at once. Nothing is downloaded
# prebuilt: everything is compiled from modules.
#
# Prints the folder on stdout (last line), progress on stderr.
set -euo pipefail

K8S_VERSION=${K8S_VERSION:-v1.37.2}
STAGING_VERSION=${STAGING_VERSION:-v0.${K8S_VERSION#v1.}}
PEBBLE_VERSION=${PEBBLE_VERSION:-v2.10.3}
CACHE=${RHOAI_TESTBIN_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/rhoai-bootstrap/testbin}
K8S_DIR="$CACHE/$K8S_VERSION"
PEBBLE_DIR="$CACHE/pebble-$PEBBLE_VERSION"
# cert-manager as the cert-manager Operator for Red Hat OpenShift ships it
# (openshift/cert-manager-operator Makefile CERT_MANAGER_VERSION).
CERT_MANAGER_VERSION=${CERT_MANAGER_VERSION:-v1.20.3}
CMJUDGE_SRC="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/_cmjudge/main.go"
# The folder names the judge's source hash: editing it rebuilds (e2e tests compute the same).
CMJUDGE_DIR="$CACHE/cmjudge-$CERT_MANAGER_VERSION-$(sha256sum "$CMJUDGE_SRC" | cut -c1-12)"

log() { echo "testbin: $*" >&2; }

build_k8s() {
  if [[ -x "$K8S_DIR/kube-apiserver" && -x "$K8S_DIR/etcd" && -x "$K8S_DIR/kubectl" ]]; then
    return
  fi
  local start=$SECONDS work
  work=$(mktemp -d)
  trap 'rm -rf "$work"' RETURN
  log "building kube-apiserver, kubectl, etcd $K8S_VERSION (cold: about 10 minutes on 2 cores)"
  (
    cd "$work"
    go mod init testbin.local/k8s >/dev/null 2>&1
    # The kubernetes module requires its staging repos at v0.0.0; point each at the
    # published staging version of the same release.
    gomod=$(go mod download -json "k8s.io/kubernetes@$K8S_VERSION" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",$/\1/p')
    go mod edit -require="k8s.io/kubernetes@$K8S_VERSION"
    for m in $(awk '$1 ~ /^k8s\.io\// && $2 == "v0.0.0" {print $1}' "$gomod" | sort -u); do
      go mod edit -replace="$m=$m@$STAGING_VERSION"
    done
    cat >tools.go <<'GO'
//go:build tools

package tools

import (
	_ "go.etcd.io/etcd/server/v3"
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kubectl"
)
GO
    go mod tidy -e >/dev/null 2>&1 || true
    go get go.etcd.io/etcd/server/v3 k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kubectl >&2
    minor=${K8S_VERSION#v1.}; minor=${minor%%.*}
    ldflags="-s -w"
    for v in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
      ldflags+=" -X $v.gitVersion=$K8S_VERSION -X $v.gitMajor=1 -X $v.gitMinor=$minor -X $v.gitTreeState=clean"
    done
    mkdir -p "$K8S_DIR.tmp"
    go build -trimpath -ldflags "$ldflags" -o "$K8S_DIR.tmp/kube-apiserver" k8s.io/kubernetes/cmd/kube-apiserver
    go build -trimpath -ldflags "$ldflags" -o "$K8S_DIR.tmp/kubectl" k8s.io/kubernetes/cmd/kubectl
    go build -trimpath -ldflags "-s -w" -o "$K8S_DIR.tmp/etcd" go.etcd.io/etcd/server/v3
  )
  rm -rf "$K8S_DIR"
  mv "$K8S_DIR.tmp" "$K8S_DIR"
  log "kubernetes binaries built in $((SECONDS - start)) s"
}

build_pebble() {
  if [[ -x "$PEBBLE_DIR/pebble" && -x "$PEBBLE_DIR/pebble-challtestsrv" ]]; then
    return
  fi
  local start=$SECONDS
  log "building pebble $PEBBLE_VERSION"
  mkdir -p "$PEBBLE_DIR.tmp"
  GOBIN="$PEBBLE_DIR.tmp" GOFLAGS=-trimpath go install \
    "github.com/letsencrypt/pebble/v2/cmd/pebble@$PEBBLE_VERSION" \
    "github.com/letsencrypt/pebble/v2/cmd/pebble-challtestsrv@$PEBBLE_VERSION"
  rm -rf "$PEBBLE_DIR"
  mv "$PEBBLE_DIR.tmp" "$PEBBLE_DIR"
  log "pebble built in $((SECONDS - start)) s"
}

# build_cmjudge compiles e2e/testbin/_cmjudge inside a writable copy of the cert-manager
# module: its internal policies package can only be imported from there. The shipped
# binary never imports cert-manager.
build_cmjudge() {
  if [[ -x "$CMJUDGE_DIR/cmjudge" ]]; then
    return
  fi
  local start=$SECONDS work src
  work=$(mktemp -d)
  trap 'rm -rf "$work"' RETURN
  log "building cmjudge from cert-manager $CERT_MANAGER_VERSION"
  src=$(cd "$work" && GOFLAGS=-mod=mod go mod download -json "github.com/cert-manager/cert-manager@$CERT_MANAGER_VERSION" |
    sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
  cp -r "$src" "$work/cert-manager"
  chmod -R u+w "$work/cert-manager"
  mkdir -p "$work/cert-manager/internal/rhoaicmjudge" "$CMJUDGE_DIR.tmp"
  cp "$CMJUDGE_SRC" "$work/cert-manager/internal/rhoaicmjudge/main.go"
  (cd "$work/cert-manager" && GOWORK=off go build -trimpath -ldflags "-s -w" -o "$CMJUDGE_DIR.tmp/cmjudge" ./internal/rhoaicmjudge)
  rm -rf "$CMJUDGE_DIR"
  mv "$CMJUDGE_DIR.tmp" "$CMJUDGE_DIR"
  log "cmjudge built in $((SECONDS - start)) s"
}

mkdir -p "$CACHE"
# One builder at a time: concurrent `make` invocations wait for each other.
exec 9>"$CACHE/.lock"
flock 9
build_pebble
build_k8s
build_cmjudge
echo "$CACHE"
