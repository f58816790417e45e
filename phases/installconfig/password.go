package installconfig

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"

	"github.com/rhoai-bootstrap/rhoai-bootstrap/installer"
)

// PasswordFile is where openshift-install keeps the kubeadmin password in its asset folder.
var PasswordFile = filepath.Join("auth", "kubeadmin-password")

// passwordLine finds the password openshift-install prints when a cluster is ready.
// Today's installer (cmd/openshift-install/command/waitfor.go, logComplete, used by
// `create cluster` and `wait-for install-complete`) logs
//
//	logrus.Infof("Login to the console with user: %q, and password: %q", "kubeadmin", pw)
//
// so the value is Go-quoted; releases before 4.6 (cmd/openshift-install/create.go,
// logComplete) printed it bare: "Login to the console with user: kubeadmin, password: %s"
// and "'oc login -u kubeadmin -p %s'". Both shapes are matched. Compiled on first use,
// not at start-up (guarded by cmd/rhoai-bootstrap's TestOwnPackagesDoNoWorkAtInit).
var passwordLine = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`(?:password: |oc login -u kubeadmin -p )("(?:[^"\\]|\\.)*"|[^\s"',]+)`)
})

// redactPassword registers the kubeadmin password with the redactor, from the asset
// folder's auth/kubeadmin-password (once it exists) and from the installer's output line
// that prints it — before that line becomes an event. It keeps no copy of the value.
type redactPassword struct {
	r    *installer.Redactor
	file string
	seen bool // the file was read and registered
}

func newRedactPassword(r *installer.Redactor, dir string) *redactPassword {
	w := &redactPassword{r: r, file: filepath.Join(dir, PasswordFile)}
	w.readFile()
	return w
}

// readFile registers the password file's content once the installer has written it.
func (w *redactPassword) readFile() {
	if w.seen || w.r == nil {
		return
	}
	b, err := os.ReadFile(w.file)
	if err != nil || len(bytes.TrimSpace(b)) == 0 {
		return // not written yet: the line itself is still parsed
	}
	w.add(strings.TrimSpace(string(b)))
	w.seen = true
}

// line registers any password printed in one raw output line.
func (w *redactPassword) line(text string) {
	w.readFile()
	if w.r == nil || !strings.Contains(text, "password") && !strings.Contains(text, "oc login") {
		return
	}
	for _, m := range passwordLine().FindAllStringSubmatch(text, -1) {
		v := m[1]
		if strings.HasPrefix(v, `"`) {
			// The quoted form as printed, its inner part, and the value itself: the line
			// is redacted whichever of them an event carries.
			w.r.Add(v)
			w.r.Add(strings.TrimSuffix(strings.TrimPrefix(v, `"`), `"`))
			if u, err := strconv.Unquote(v); err == nil {
				w.add(u)
			}
			continue
		}
		w.add(v)
	}
}

// add registers a password and the escaped forms it takes when quoted again (logrus
// quotes a message that holds quotes), so none of them leaves the process.
func (w *redactPassword) add(pw string) {
	w.r.Add(pw)
	q := strconv.Quote(pw)
	w.r.Add(q[1 : len(q)-1])
	qq := strconv.Quote(q)
	w.r.Add(qq[1 : len(qq)-1])
}
