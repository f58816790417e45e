#!/usr/bin/env bash
# Builds the local test bed's binaries from the Go module proxy, once, into a
# versioned cache folder outside the repository:
#   kube-apiserver, kubectl, etcd, kube-controller-manager (Kubernetes $K8S_VERSION, version-stamped)
#   pebble, pebble-challtestsrv     (Pebble $PEBBLE_VERSION)
#   cmjudge                         (cert-manager $CERT_MANAGER_VERSION's own policies and
#                                    certificates controllers, built inside a copy of its
#                                    library module: _cmjudge/main.go)
#   argocd, kustomize               (Argo CD $ARGOCD_VERSION, kustomize $KUSTOMIZE_VERSION)
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
ARGOCD_VERSION=${ARGOCD_VERSION:-v3.6.1}
KUSTOMIZE_VERSION=${KUSTOMIZE_VERSION:-v5.8.3}
KUSTOMIZE_KUBE_OPENAPI=${KUSTOMIZE_KUBE_OPENAPI:-v0.0.0-20260721132016-d427ff9ee9ad}
# Argo CD v3.6 declares `go 1.27.0`; only its build uses that toolchain (fetched by the go
# command), the project itself stays on the machine's Go.
ARGOCD_GOTOOLCHAIN=${ARGOCD_GOTOOLCHAIN:-go1.27.3}
ARGOCD_DIR="$CACHE/argocd-$ARGOCD_VERSION"

log() { echo "testbin: $*" >&2; }

# k8s_module turns the current (empty) folder into a throw-away module requiring
# k8s.io/kubernetes $K8S_VERSION, with the main packages given as arguments fetched.
k8s_module() {
  go mod init testbin.local/k8s >/dev/null 2>&1
  # The kubernetes module requires its staging repos at v0.0.0; point each at the
  # published staging version of the same release.
  local gomod m
  gomod=$(go mod download -json "k8s.io/kubernetes@$K8S_VERSION" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",$/\1/p')
  go mod edit -require="k8s.io/kubernetes@$K8S_VERSION"
  for m in $(awk '$1 ~ /^k8s\.io\// && $2 == "v0.0.0" {print $1}' "$gomod" | sort -u); do
    go mod edit -replace="$m=$m@$STAGING_VERSION"
  done
  {
    printf '//go:build tools\n\npackage tools\n\nimport (\n'
    for m in "$@"; do printf '\t_ "%s"\n' "$m"; done
    printf ')\n'
  } >tools.go
  go mod tidy -e >/dev/null 2>&1 || true
  go get "$@" >&2
}

# k8s_ldflags stamps the version, or discovery breaks.
k8s_ldflags() {
  local minor=${K8S_VERSION#v1.} ldflags="-s -w" v
  minor=${minor%%.*}
  for v in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldflags+=" -X $v.gitVersion=$K8S_VERSION -X $v.gitMajor=1 -X $v.gitMinor=$minor -X $v.gitTreeState=clean"
  done
  echo "$ldflags"
}

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
    k8s_module go.etcd.io/etcd/server/v3 k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kubectl
    ldflags=$(k8s_ldflags)
    mkdir -p "$K8S_DIR.tmp"
    go build -trimpath -ldflags "$ldflags" -o "$K8S_DIR.tmp/kube-apiserver" k8s.io/kubernetes/cmd/kube-apiserver
    go build -trimpath -ldflags "$ldflags" -o "$K8S_DIR.tmp/kubectl" k8s.io/kubernetes/cmd/kubectl
    go build -trimpath -ldflags "-s -w" -o "$K8S_DIR.tmp/etcd" go.etcd.io/etcd/server/v3
    # Keep a kube-controller-manager built earlier into the same folder.
    if [[ -x "$K8S_DIR/kube-controller-manager" ]]; then
      mv "$K8S_DIR/kube-controller-manager" "$K8S_DIR.tmp/"
    fi
  )
  rm -rf "$K8S_DIR"
  mv "$K8S_DIR.tmp" "$K8S_DIR"
  log "kubernetes binaries built in $((SECONDS - start)) s"
}

# build_kcm builds kube-controller-manager of the same release, for its garbage collector
# and workload controllers (the bed runs only those). Separate from build_k8s so a cache
# made before it was needed gains it without rebuilding the rest.
build_kcm() {
  if [[ -x "$K8S_DIR/kube-controller-manager" ]]; then
    return
  fi
  local start=$SECONDS work
  work=$(mktemp -d)
  trap 'rm -rf "$work"' RETURN
  log "building kube-controller-manager $K8S_VERSION"
  (
    cd "$work"
    k8s_module k8s.io/kubernetes/cmd/kube-controller-manager
    go build -trimpath -ldflags "$(k8s_ldflags)" -o "$K8S_DIR/kube-controller-manager.tmp" k8s.io/kubernetes/cmd/kube-controller-manager
  )
  mv "$K8S_DIR/kube-controller-manager.tmp" "$K8S_DIR/kube-controller-manager"
  log "kube-controller-manager built in $((SECONDS - start)) s"
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

# build_argocd builds Argo CD's multi-call binary (argocd-application-controller,
# argocd-repo-server, ... chosen by the name it is started under) and the kustomize binary
# its repo-server runs. Each binary is moved into place when built, so a failure of one
# does not cost the other's build again.
build_argocd() {
  if [[ -x "$ARGOCD_DIR/argocd" && -x "$ARGOCD_DIR/kustomize" && -x "$ARGOCD_DIR/git-verify-wrapper.sh" ]]; then
    return
  fi
  mkdir -p "$ARGOCD_DIR"
  [[ -x "$ARGOCD_DIR/argocd" ]] || build_argocd_binary
  [[ -x "$ARGOCD_DIR/kustomize" ]] || build_kustomize
  [[ -x "$ARGOCD_DIR/git-verify-wrapper.sh" ]] || install_argocd_scripts
}

# install_argocd_scripts puts the helper scripts Argo CD's image has in /usr/local/bin (its
# Dockerfile: COPY hack/gpg-wrapper.sh hack/git-verify-wrapper.sh) next to the binary: the
# repo-server runs git-verify-wrapper.sh on every revision it generates manifests for.
install_argocd_scripts() {
  local src
  src=$(GOTOOLCHAIN=$ARGOCD_GOTOOLCHAIN GOFLAGS=-mod=mod go mod download -json "github.com/argoproj/argo-cd/v3@$ARGOCD_VERSION" |
    sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
  for f in gpg-wrapper.sh git-verify-wrapper.sh; do
    install -m 0755 "$src/hack/$f" "$ARGOCD_DIR/$f.tmp"
    mv "$ARGOCD_DIR/$f.tmp" "$ARGOCD_DIR/$f"
  done
}

# build_argocd_binary: Argo CD's go.mod replaces github.com/argoproj/argo-cd/gitops-engine/v3
# with ./gitops-engine, a folder its module zip leaves out, so the build happens in a
# writable copy of the extracted module with the gitops-engine module of the same version
# copied into place. The version stamp follows Argo CD's own Makefile (LDFLAGS, PACKAGE).
build_argocd_binary() {
  local start=$SECONDS work
  work=$(mktemp -d)
  trap 'chmod -R u+w "${work:-}" 2>/dev/null; rm -rf "${work:-}"; trap - RETURN' RETURN
  log "building argocd $ARGOCD_VERSION (cold: about 11 CPU-minutes)"
  (
    export GOTOOLCHAIN=$ARGOCD_GOTOOLCHAIN GOFLAGS=-mod=mod
    cd "$work"
    moddir() { go mod download -json "$1" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p'; }
    src=$(moddir "github.com/argoproj/argo-cd/v3@$ARGOCD_VERSION")
    engine=$(moddir "github.com/argoproj/argo-cd/gitops-engine/v3@$ARGOCD_VERSION")
    cp -r "$src" argo-cd
    chmod -R u+w argo-cd
    cp -r "$engine" argo-cd/gitops-engine
    chmod -R u+w argo-cd/gitops-engine
    cd argo-cd
    pkg=github.com/argoproj/argo-cd/v3/common
    kubectl=$(go list -m -f '{{.Version}}' k8s.io/client-go)
    ldflags="-s -w -X $pkg.version=${ARGOCD_VERSION#v} -X $pkg.gitTag=$ARGOCD_VERSION"
    ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.kubectlVersion=$kubectl"
    CGO_ENABLED=0 go build -trimpath -ldflags "$ldflags" -o "$ARGOCD_DIR/argocd.tmp" ./cmd
  )
  mv "$ARGOCD_DIR/argocd.tmp" "$ARGOCD_DIR/argocd"
  log "argocd built in $((SECONDS - start)) s"
}

# build_kustomize: `go install sigs.k8s.io/kustomize/kustomize/v5@v5.8.3` fails here, because
# its go.mod requires a k8s.io/kube-openapi pseudo-version the module proxy refuses (403);
# a throw-away module builds it with the kube-openapi that Kubernetes 1.37 and Argo CD
# v3.6 use. kustomize v5.8 also declares go 1.27.
build_kustomize() {
  local start=$SECONDS work
  work=$(mktemp -d)
  trap 'rm -rf "${work:-}"; trap - RETURN' RETURN
  log "building kustomize $KUSTOMIZE_VERSION"
  (
    export GOTOOLCHAIN=$ARGOCD_GOTOOLCHAIN GOFLAGS=-mod=mod
    cd "$work"
    go mod init testbin.local/kustomize >/dev/null 2>&1
    go mod edit -replace="k8s.io/kube-openapi=k8s.io/kube-openapi@$KUSTOMIZE_KUBE_OPENAPI"
    cat >tools.go <<'GO'
//go:build tools

package tools

import _ "sigs.k8s.io/kustomize/kustomize/v5"
GO
    go get "sigs.k8s.io/kustomize/kustomize/v5@$KUSTOMIZE_VERSION" >&2
    CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$ARGOCD_DIR/kustomize.tmp" sigs.k8s.io/kustomize/kustomize/v5
  )
  mv "$ARGOCD_DIR/kustomize.tmp" "$ARGOCD_DIR/kustomize"
  log "kustomize built in $((SECONDS - start)) s"
}

mkdir -p "$CACHE"
# One builder per binary set at a time: concurrent `make` invocations wait for each other.
# Argo CD has its own lock so its long build does not hold up the others' cache checks.
(
  exec 8>"$CACHE/.lock-argocd"
  flock 8
  build_argocd
)
exec 9>"$CACHE/.lock"
flock 9
build_pebble
build_k8s
build_cmjudge
build_kcm
echo "$CACHE"
