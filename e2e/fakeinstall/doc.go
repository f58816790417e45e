// Package fakeinstall is a fake of openshift-install 4.19/4.20 for the
// end-to-end tests (its command is e2e/cmd/openshift-install). It honours
// the real CLI contract closely enough that rhoai-bootstrap cannot tell the
// difference, except that the "cluster" is the test bed's kube-apiserver.
// It deliberately shares no code with the product: it plays a separate
// vendor binary.
//
// # Commands (all take --dir, default ".", and --log-level, default info)
//
//   - version: the real four lines (version, commit, release image,
//     architecture).
//   - create install-config: fails (exit 1) for want of a terminal unless
//     install-config.yaml exists, which it then only validates.
//   - create manifests: validates install-config.yaml (exit 3 with field
//     paths, as the real one), writes manifests/ and openshift/ (worker
//     MachineSets per zone, master Machines), records the infraID in
//     .openshift_install_state.json and deletes install-config.yaml. Without
//     install-config.yaml but with a state it is a no-op.
//   - create cluster: generates the manifests first if install-config.yaml
//     is there, consumes manifests/ and openshift/ into the state file, then
//     runs the stages infrastructure, bootstrap, install, operators.
//   - wait-for bootstrap-complete | install-complete: finishes the stages a
//     killed or failed create cluster left, from the registry's record.
//   - destroy bootstrap: needs metadata.json; removes the bootstrap resources
//     (see below). Fails when they are already gone, as the real one does.
//   - destroy cluster: needs metadata.json; deletes from the bed what dies
//     with the cluster, marks it destroyed, removes auth/, metadata.json and
//     the state file.
//
// # Stages and files
//
// Before the infrastructure stage create cluster writes metadata.json,
// auth/kubeadmin-password and auth/kubeconfig pointing at a closed port on
// 127.0.0.1 (the API is not up); FAKE_OPENSHIFT_INSTALL_KUBEADMIN_PASSWORD, when set,
// is the password written there (and printed at the end), so tests can look for
// it in every output. The bootstrap stage rewrites
// auth/kubeconfig with the bed's API server (cluster entry named after the
// cluster, user and context "admin"), applies server-side (field manager
// "openshift-install") every consumed manifest whose kind the bed serves, and
// sets ClusterVersion "version" Progressing; install makes it Available;
// operators only takes time. Each stage lasts FAKE_OPENSHIFT_INSTALL_STAGE_DELAY.
//
// The infrastructure stage makes the bootstrap resources (instance, SSH
// rule, ignition bucket; the registry's Cluster.Bootstrap). Only create
// cluster removes them, right after bootstrapping, unless
// OPENSHIFT_INSTALL_PRESERVE_BOOTSTRAP is set; the waits never do. When
// bootstrapping fails, create cluster writes log-bundle-<time>.tar.gz into
// --dir and names it. docs/fake-installer.md lists each behaviour with the
// real source it follows, and what is not reproduced.
//
// Injected failures (FAKE_OPENSHIFT_INSTALL_FAIL) happen where real ones do:
// manifests exits 3 before anything is written; infrastructure exits 4 with
// metadata.json written and the API down; bootstrap exits 5 with the
// infrastructure up but the API never reachable (auth/kubeconfig still names
// the closed port), so the cure is destroy and re-create; install exits 6
// with the API up and ClusterVersion Failing; operators exits 7 with the
// cluster Available; interrupted exits 8 during the install stage,
// interrupted-bootstrap while bootstrapping, interrupted-bootstrap-complete
// after bootstrapping and before the bootstrap resources are removed.
//
// # Registry
//
// FAKE_OPENSHIFT_INSTALL_REGISTRY (default DIR/../.fake-aws) plays the AWS
// account: <infraID>.json (a Cluster), invocations.jsonl (one Invocation per
// run) and fail-once/ markers. Every file is written atomically or appended
// with one fsynced write, so kill -9 never leaves a torn file.
package fakeinstall
