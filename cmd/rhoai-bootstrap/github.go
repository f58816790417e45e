package main

import (
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"sync"

	"github.com/rhoai-bootstrap/rhoai-bootstrap/installer"
)

// onGitHubActions reports whether the command runs as a GitHub Actions step: the runner
// sets GITHUB_ACTIONS=true in every step's environment.
func onGitHubActions() bool { return os.Getenv("GITHUB_ACTIONS") == "true" }

// githubSink prints failures and warnings a second time as GitHub Actions workflow
// commands (`::error title=…::message`, `::warning …`), so they show on the run's
// summary page and as annotations, whatever the output format. It writes to stderr: the
// runner reads workflow commands from a step's stderr as well as its stdout (actions/runner
// src/Runner.Worker/Handlers/ScriptHandler.cs gives both streams an OutputManager with
// the ActionCommandManager), and stdout stays JSON lines only with `-o json`.
//
// It is a sink of the event bus, so every event it sees was redacted first: no secret
// can reach an annotation.
type githubSink struct {
	mu sync.Mutex
	w  io.Writer
	// cluster, set when the command runs several clusters, is named in every title.
	cluster string
}

func (g *githubSink) Event(e installer.Event) {
	g.mu.Lock()
	defer g.mu.Unlock()
	tool := "rhoai-bootstrap"
	if g.cluster != "" {
		tool += " [" + g.cluster + "]"
	}
	switch e.Type {
	case installer.PhaseFailed:
		if e.Outcome == installer.OutcomeInterrupted {
			workflowCommand(g.w, "warning", tool+" "+e.Phase+" interrupted", e.Error+": run the same command again to resume")
			return
		}
		workflowCommand(g.w, "error", tool+" "+e.Phase+" failed", e.Error)
	case installer.Progress:
		if w, ok := strings.CutPrefix(e.Message, "warning: "); ok {
			workflowCommand(g.w, "warning", tool+" "+e.Phase, w)
		}
	case installer.PhasePlanned:
		switch e.Outcome {
		case "would-change":
			var b strings.Builder
			b.WriteString(e.Message)
			for _, c := range e.Changes {
				b.WriteString("\n" + c.String())
			}
			workflowCommand(g.w, "warning", tool+" plan: "+e.Phase+" would change", b.String())
		case "failed":
			workflowCommand(g.w, "error", tool+" plan: "+e.Phase+" failed", e.Message)
		}
	case installer.RunFinished:
		// A run that failed outside any phase (the state lock, a final save): no phase
		// event said it.
		if e.Outcome == installer.OutcomeFailed && e.Error != "" && (e.Summary == nil || len(e.Summary.Failed) == 0) {
			workflowCommand(g.w, "error", tool+" "+e.Action+" failed", e.Error)
		}
	}
}

// workflowCommand writes one workflow command line, escaped as GitHub documents
// (https://docs.github.com/en/actions/reference/workflows-and-actions/workflow-commands)
// and as actions/toolkit writes them (packages/core/src/command.ts, escapeData and
// escapeProperty): in the message %, CR and LF become %25, %0D, %0A; in a property
// value also : and , become %3A and %2C.
func workflowCommand(w io.Writer, command, title, message string) {
	props := map[string]string{}
	if title != "" {
		props["title"] = title
	}
	keys := make([]string, 0, len(props))
	for k := range props {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var p []string
	for _, k := range keys {
		p = append(p, k+"="+escapeProperty(props[k]))
	}
	line := "::" + command
	if len(p) > 0 {
		line += " " + strings.Join(p, ",")
	}
	fmt.Fprintf(w, "%s::%s\n", line, escapeData(message))
}

var (
	dataEscaper     = strings.NewReplacer("%", "%25", "\r", "%0D", "\n", "%0A")
	propertyEscaper = strings.NewReplacer("%", "%25", "\r", "%0D", "\n", "%0A", ":", "%3A", ",", "%2C")
)

func escapeData(s string) string     { return dataEscaper.Replace(s) }
func escapeProperty(s string) string { return propertyEscaper.Replace(s) }
