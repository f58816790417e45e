package main

import (
	"flag"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aws/smithy-go/logging"
	legolog "github.com/go-acme/lego/v5/log"
	"k8s.io/klog/v2"

	"github.com/rhoai-bootstrap/rhoai-bootstrap/installer"
)

// libraryLogs is the process's one libraryLog: klog and lego have process-wide loggers.
var libraryLogs = &libraryLog{}

// maxHeld bounds the lines kept while no debug log is open.
const maxHeld = 256

// libraryLog takes what libraries log — the AWS SDK (IMDS fallbacks, retries), client-go
// through klog (throttling, discovery), lego (ACME steps) — and writes it to the debug log
// of the command that runs, redacted like every event there. None of it reaches the
// terminal: it is written for the libraries' developers, it would tear through the TUI and
// break `-o json`, and our own events already say what matters (`SDK … WARN falling back
// to IMDSv1: …` was the first thing a user without AWS credentials read).
type libraryLog struct {
	mu sync.Mutex
	// to are the open debug logs, one per cluster running (several with several cluster
	// files); none while no run is.
	to []attachment
	// held are lines logged before a debug log was opened (the AWS configuration for an
	// S3 state is loaded first); the debug log gets them when it opens.
	held []installer.Event
}

// line records text from source, one debug line per line of text.
func (l *libraryLog) line(source, text string) {
	now := time.Now().UTC()
	l.mu.Lock()
	defer l.mu.Unlock()
	for s := range strings.SplitSeq(strings.TrimRight(text, "\n"), "\n") {
		e := installer.Event{Schema: installer.EventSchema, Time: now, Type: installer.Progress, Debug: true, Message: source + ": " + s}
		switch {
		case len(l.to) > 0:
			l.deliver(e)
		case len(l.held) < maxHeld:
			l.held = append(l.held, e)
		}
	}
}

// attachment is one run's debug log and the redactor of its run.
type attachment struct {
	log *debugLog
	r   *installer.Redactor
}

// deliver writes e to every open debug log. A library's line does not say which
// cluster's run it comes from (klog and lego are process-wide), so with several runs it
// goes to each one's log, through every run's redactor: a secret of one cluster never
// reaches another's log. The caller holds l.mu.
func (l *libraryLog) deliver(e installer.Event) {
	for _, a := range l.to {
		e = a.r.Event(e)
	}
	for _, a := range l.to {
		a.log.Event(e)
	}
}

// attach sends the lines to a debug log, through the redactor of its run, until detach.
func (l *libraryLog) attach(log *debugLog, r *installer.Redactor) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.to = append(l.to, attachment{log: log, r: r})
	for _, e := range l.held {
		l.deliver(e)
	}
	l.held = nil
}

// detach stops sending lines to log.
func (l *libraryLog) detach(log *debugLog) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.to = slices.DeleteFunc(l.to, func(a attachment) bool { return a.log == log })
}

type writerFunc func(p []byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// writer is an io.Writer whose lines are recorded as coming from source.
func (l *libraryLog) writer(source string) io.Writer {
	return writerFunc(func(p []byte) (int, error) {
		l.line(source, string(p))
		return len(p), nil
	})
}

// aws is the logger for AWS SDK configurations (the SDK has no process-wide one: see
// phases.Env.AWSLogger).
func (l *libraryLog) aws() logging.Logger {
	return logging.LoggerFunc(func(c logging.Classification, format string, v ...any) {
		l.line("aws-sdk", strings.TrimSpace(string(c)+" "+fmt.Sprintf(format, v...)))
	})
}

// route points klog's and lego's process-wide loggers here.
func (l *libraryLog) route() {
	// klog writes ERROR lines to stderr even when it writes elsewhere, unless
	// -stderrthreshold says otherwise; only FATAL, just before it exits, still does.
	fs := flag.NewFlagSet("klog", flag.ContinueOnError)
	klog.InitFlags(fs)
	for name, value := range map[string]string{"logtostderr": "false", "alsologtostderr": "false", "stderrthreshold": "FATAL"} {
		if err := fs.Set(name, value); err != nil {
			panic(fmt.Sprintf("klog flag %s: %v", name, err)) // a klog that renamed its flags
		}
	}
	klog.LogToStderr(false)
	klog.SetOutput(l.writer("client-go"))
	// lego logs to stdout unless told otherwise; the certificates phase sends its own
	// calls' lines to its events, this catches any other.
	legolog.SetDefault(slog.New(slog.NewTextHandler(l.writer("lego"), &slog.HandlerOptions{Level: slog.LevelDebug})))
}
