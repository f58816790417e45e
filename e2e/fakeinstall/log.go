package fakeinstall

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// level mirrors logrus levels (lower is more severe), because the real
// installer logs through logrus and callers parse "level=<name>".
type level int

const (
	levelFatal level = iota + 1
	levelError
	levelWarn
	levelInfo
	levelDebug
	levelTrace
)

var levelNames = map[level]string{
	levelFatal: "fatal", levelError: "error", levelWarn: "warning",
	levelInfo: "info", levelDebug: "debug", levelTrace: "trace",
}

// parseLevel accepts what logrus.ParseLevel accepts for the levels we use.
func parseLevel(s string) (level, error) {
	switch strings.ToLower(s) {
	case "fatal":
		return levelFatal, nil
	case "error":
		return levelError, nil
	case "warn", "warning":
		return levelWarn, nil
	case "info":
		return levelInfo, nil
	case "debug":
		return levelDebug, nil
	case "trace":
		return levelTrace, nil
	}
	return levelInfo, fmt.Errorf("not a valid logrus Level: %q", s)
}

// logger writes what the real installer writes: on stderr, one
// `level=<l> msg=<text>` line per message line at or above --log-level
// (logrus TextFormatter without timestamps or quoting, split at newlines);
// in DIR/.openshift_install.log every level, with a timestamp and quoting.
type logger struct {
	mu        sync.Mutex
	stderr    io.Writer
	threshold level
	file      *os.File
	now       func() time.Time
}

func newLogger(stderr io.Writer, threshold level, now func() time.Time) *logger {
	return &logger{stderr: stderr, threshold: threshold, now: now}
}

// openFile starts appending to DIR/.openshift_install.log, creating dir like
// the real installer's file hook does.
func (l *logger) openFile(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("failed to create base directory for logs: %w", err)
	}
	f, err := os.OpenFile(filepath.Join(dir, ".openshift_install.log"), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return fmt.Errorf("failed to open log file: %w", err)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.file != nil {
		l.file.Close()
	}
	l.file = f
	return nil
}

func (l *logger) close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.file != nil {
		l.file.Close()
		l.file = nil
	}
}

// entry logs msg with optional key/value fields (kv pairs), like
// logrus.WithFields(...).Info(msg).
func (l *logger) entry(lv level, msg string, kv ...string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	name := levelNames[lv]
	if lv <= l.threshold {
		var fields strings.Builder
		for i := 0; i+1 < len(kv); i += 2 {
			fmt.Fprintf(&fields, " %s=%s", kv[i], kv[i+1])
		}
		for line := range strings.SplitSeq(msg, "\n") {
			fmt.Fprintf(l.stderr, "level=%s msg=%s%s\n", name, line, fields.String())
		}
	}
	if l.file != nil {
		var b strings.Builder
		fmt.Fprintf(&b, "time=%q level=%s msg=%s", l.now().Format(time.RFC3339), name, quoteIfNeeded(msg))
		for i := 0; i+1 < len(kv); i += 2 {
			fmt.Fprintf(&b, " %s=%s", kv[i], quoteIfNeeded(kv[i+1]))
		}
		b.WriteByte('\n')
		_, _ = l.file.WriteString(b.String())
	}
}

// quoteIfNeeded quotes like logrus.TextFormatter: values made only of
// letters, digits and -._/@^+ stay bare.
func quoteIfNeeded(s string) string {
	if s == "" {
		return `""`
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-._/@^+", r)) {
			return strconv.Quote(s)
		}
	}
	return s
}

func (l *logger) Debugf(format string, a ...any) { l.entry(levelDebug, fmt.Sprintf(format, a...)) }
func (l *logger) Infof(format string, a ...any)  { l.entry(levelInfo, fmt.Sprintf(format, a...)) }
func (l *logger) Warnf(format string, a ...any)  { l.entry(levelWarn, fmt.Sprintf(format, a...)) }
func (l *logger) Errorf(format string, a ...any) { l.entry(levelError, fmt.Sprintf(format, a...)) }
func (l *logger) Fatalf(format string, a ...any) { l.entry(levelFatal, fmt.Sprintf(format, a...)) }

// until renders the "(until 10:32AM UTC)" part of the installer's waits.
func until(now time.Time, d time.Duration) string {
	t := now.Add(d)
	zone, _ := t.Zone()
	return t.Format(time.Kitchen) + " " + zone
}
