package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/smithy-go/logging"
	legolog "github.com/go-acme/lego/v5/log"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/klog/v2"

	"github.com/rhoai-bootstrap/rhoai-bootstrap/installer"
)

// TestLibraryLogsGoToTheDebugLogOnly: what klog (client-go), lego and the AWS SDK log
// lands in the debug log, redacted, and nothing of it on stderr or stdout — klog's ERROR
// lines included, which it writes to stderr unless told otherwise.
func TestLibraryLogsGoToTheDebugLogOnly(t *testing.T) {
	r, w, err := os.Pipe()
	require.NoError(t, err)
	stderr, stdout := os.Stderr, os.Stdout
	os.Stderr, os.Stdout = w, w
	t.Cleanup(func() { os.Stderr, os.Stdout = stderr, stdout })

	l := &libraryLog{}
	l.aws().Logf(logging.Warn, "held until a debug log opens")
	l.route()
	path := filepath.Join(t.TempDir(), "rhoai-bootstrap.log")
	log, err := openDebugLog(path)
	require.NoError(t, err)
	red := &installer.Redactor{}
	red.Add("s3cr3t-token-value")
	l.attach(log, red)
	klog.Error("throttling request with s3cr3t-token-value")
	klog.Info("discovery retry")
	klog.Flush()
	legolog.Warn("lego line")
	l.aws().Logf(logging.Warn, "falling back to IMDSv1: %s", "403")
	l.detach(log)
	klog.Error("after the run: dropped, not printed")
	klog.Flush()
	require.NoError(t, log.Close())

	os.Stderr, os.Stdout = stderr, stdout
	require.NoError(t, w.Close())
	printed, err := io.ReadAll(r)
	require.NoError(t, err)
	assert.Empty(t, string(printed), "nothing reaches the terminal")

	b, err := os.ReadFile(path)
	require.NoError(t, err)
	got := string(b)
	for _, want := range []string{
		`"message":"aws-sdk: WARN held until a debug log opens"`,
		`client-go: E`, `throttling request with [REDACTED]`, `client-go: I`, `discovery retry`,
		`"message":"lego: time=`, `lego line`,
		`"message":"aws-sdk: WARN falling back to IMDSv1: 403"`,
	} {
		assert.Contains(t, got, want)
	}
	assert.NotContains(t, got, "s3cr3t-token-value")
	assert.NotContains(t, got, "after the run")
}

// With several clusters running, a library's line goes to every cluster's debug log, and
// through every cluster's redactor: a secret of one run never lands in another's log.
func TestLibraryLogsOfAFleet(t *testing.T) {
	l := &libraryLog{}
	dir := t.TempDir()
	var paths []string
	var logs []*debugLog
	for i, secret := range []string{"dev-s3cr3t-value", "prod-s3cr3t-value"} {
		p := filepath.Join(dir, fmt.Sprint(i), "rhoai-bootstrap.log")
		log, err := openDebugLog(p)
		require.NoError(t, err)
		red := &installer.Redactor{}
		red.Add(secret)
		l.attach(log, red)
		paths, logs = append(paths, p), append(logs, log)
	}
	l.line("client-go", "request with dev-s3cr3t-value and prod-s3cr3t-value")
	l.detach(logs[0])
	l.line("client-go", "only prod's log is open")
	for _, log := range logs {
		require.NoError(t, log.Close())
	}
	for i, p := range paths {
		b, err := os.ReadFile(p)
		require.NoError(t, err)
		assert.Contains(t, string(b), "request with [REDACTED] and [REDACTED]")
		assert.NotContains(t, string(b), "s3cr3t")
		assert.Equal(t, i == 1, strings.Contains(string(b), "only prod's log is open"))
	}
}
