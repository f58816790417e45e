#!/usr/bin/env bash
# make demo: a full bootstrap rehearsal on the local test bed. Starts the bed (real
# kube-apiserver + etcd, Pebble, moto, a Git server with this checkout's payload, the
# cluster simulator, whose GitOps operator starts the real Argo CD), runs
#   rhoai-bootstrap install -f configs/examples/local.yaml
# with the fake openshift-install, shows the status, and stops everything it started.
# Keep the bed running afterwards with DEMO_KEEP=1 (Ctrl-C stops it).
set -euo pipefail
cd "$(dirname "$0")/.."
out=${DEMO_DIR:-$PWD/_out/demo}
rm -rf "$out"
mkdir -p "$out"
go build -o bin/testbed ./e2e/cmd/testbed

bed_pid=
cleanup() {
  if [[ -n $bed_pid ]] && kill -0 "$bed_pid" 2>/dev/null; then
    kill -TERM "$bed_pid" 2>/dev/null || true
    wait "$bed_pid" 2>/dev/null || true
  fi
}
trap cleanup EXIT INT TERM

echo "demo: starting the test bed (log: $out/testbed.log)"
start=$SECONDS
bin/testbed --env-file "$out/bed.env" --work-dir "$out/bed" >"$out/testbed.log" 2>&1 &
bed_pid=$!
until grep -q '^ready$' "$out/testbed.log" 2>/dev/null; do
  if ! kill -0 "$bed_pid" 2>/dev/null; then
    echo "demo: the test bed failed to start:"; tail -20 "$out/testbed.log"; exit 1
  fi
  sleep 0.5
done
echo "demo: test bed ready in $((SECONDS - start)) s"

# shellcheck disable=SC1091
source "$out/bed.env"
export RHOAI_BED_OPENSHIFT_INSTALL=$PWD/bin/openshift-install
export FAKE_OPENSHIFT_INSTALL_KUBECONFIG=$KUBECONFIG
export FAKE_OPENSHIFT_INSTALL_REGISTRY=$out/fake-aws
export GOOGLE_CLIENT_SECRET=rehearsal-client-secret
state=$out/state
# Every wait but the hand-off ends in seconds on the bed; the real Argo CD syncing the dev
# overlay's waves takes minutes on a loaded 2-core machine: 0.4 gives it 12 (as the e2e
# tests, harness.HandOffTimeoutFactor).
flags=(--state-dir "$state" --timeout-factor 0.4 --poll-interval 250ms)

start=$SECONDS
# The install must end green: every child of the dev overlay Synced/Healthy by the real
# Argo CD (the simulated cert-manager issues the MaaS gateway's certificate through Pebble).
rc=0
bin/rhoai-bootstrap install -f configs/examples/local.yaml "${flags[@]}" || rc=$?
echo "demo: install took $((SECONDS - start)) s, exit code $rc"
echo
bin/rhoai-bootstrap status -f configs/examples/local.yaml "${flags[@]}"
echo
kubectl=$(./e2e/testbin/build.sh 2>/dev/null | tail -1)/${K8S_VERSION:-v1.37.2}/kubectl
echo "demo: the applications as the real Argo CD reports them:"
"$kubectl" get applications.argoproj.io -n openshift-gitops \
  -o custom-columns='NAME:.metadata.name,SYNC:.status.sync.status,HEALTH:.status.health.status,REVISION:.status.sync.revision,SYNCED AT:.status.operationState.finishedAt'
ctrl_log=$(ls "$out"/bed/argocd-openshift-gitops-*/argocd-application-controller.log 2>/dev/null | head -1)
if [[ -n $ctrl_log ]]; then
  echo "demo: Argo CD's application controller log: $ctrl_log"
  echo "demo: sync operations it completed: $(grep -c 'Sync operation to .* succeeded' "$ctrl_log" || true)"
  grep -m 5 'Sync operation to .* succeeded' "$ctrl_log" | sed 's/^/  /' || true
fi
echo
if [[ $rc -ne 0 ]]; then
  echo "demo: the install failed (exit $rc); the bed's logs are in $out"
  exit "$rc"
fi
echo "demo: a second run changes nothing:"
bin/rhoai-bootstrap install -f configs/examples/local.yaml "${flags[@]}" --non-interactive 2>&1 | tail -4
echo
echo "demo: state      $state/state.json"
echo "demo: kubeconfig $state/installer/auth/kubeconfig (the bed's API server)"
echo "demo: debug log  $state/rhoai-bootstrap.log"
if [[ ${DEMO_KEEP:-} == 1 ]]; then
  echo "demo: the bed keeps running (env: $out/bed.env); Ctrl-C stops it"
  wait "$bed_pid"
fi
