// Command openshift-install is a fake of the OpenShift installer for the
// end-to-end tests: it honours the real CLI contract (sub-commands, files,
// log lines, exit codes) while its "cluster" is the test bed's API server.
// See package github.com/rhoai-bootstrap/rhoai-bootstrap/e2e/fakeinstall.
package main

import (
	"os"

	"github.com/rhoai-bootstrap/rhoai-bootstrap/e2e/fakeinstall"
)

func main() {
	os.Exit(fakeinstall.Main())
}
