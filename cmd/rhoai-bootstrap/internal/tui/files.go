package tui

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/rhoai-bootstrap/rhoai-bootstrap/configs"
	ic "github.com/rhoai-bootstrap/rhoai-bootstrap/configs/installconfig"
)

// The files a cluster file names are read only when the bootstrap runs, on whatever
// machine runs it, so a path that does not resolve here is not an error of the file. But
// a pull secret that is not there, or a private key given for the public one, is usually
// a slip: the wizard says so when the answer is given and lets the user keep it anyway.

// onDisk resolves a path as the cluster file will (relative to its folder, ~ expanded).
func onDisk(path, base string) string {
	p := configs.ExpandHome(path)
	if !filepath.IsAbs(p) {
		p = filepath.Join(base, p)
	}
	return p
}

// readProblem says in words why a file cannot be read.
func readProblem(path string, err error) string {
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return path + " does not exist"
	case errors.Is(err, fs.ErrPermission):
		return path + " cannot be read (permission denied)"
	}
	return path + " cannot be read (" + err.Error() + ")"
}

// pullSecretProblem is what is wrong with the pull secret file, or "".
func pullSecretProblem(path, base string) string {
	if path == "" {
		return ""
	}
	b, err := os.ReadFile(onDisk(path, base))
	if err != nil {
		return readProblem(path, err) + ": download it from console.redhat.com/openshift/install/pull-secret"
	}
	if err := ic.CheckPullSecret(b); err != nil {
		return path + ": " + err.Error()
	}
	return ""
}

// sshKeyProblem is what is wrong with the SSH public key file, or "".
func sshKeyProblem(path, base string) string {
	if path == "" {
		return ""
	}
	b, err := os.ReadFile(onDisk(path, base))
	if err != nil {
		return readProblem(path, err) + ": create a key with ssh-keygen -t ed25519, or leave this empty"
	}
	if bytes.Contains(b, []byte("PRIVATE KEY")) {
		return path + " is a private key: give its public half (" + path + ".pub); the private key must never leave this machine"
	}
	if err := ic.CheckSSHPublicKey(b); err != nil {
		return path + ": " + err.Error()
	}
	return ""
}
