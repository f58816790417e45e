package testbed

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"time"
)

// AuditEvent is the part of a Kubernetes audit event (audit.k8s.io/v1) that
// tests read to count mutating requests per actor.
type AuditEvent struct {
	Verb           string          `json:"verb"`
	RequestURI     string          `json:"requestURI"`
	UserAgent      string          `json:"userAgent"`
	User           AuditUser       `json:"user"`
	ObjectRef      *AuditObjectRef `json:"objectRef,omitempty"`
	ResponseStatus *struct {
		Code int `json:"code"`
	} `json:"responseStatus,omitempty"`
	StageTimestamp time.Time `json:"stageTimestamp"`
}

// AuditUser is who made a request.
type AuditUser struct {
	Username string   `json:"username"`
	Groups   []string `json:"groups"`
}

// AuditObjectRef is what a request touched.
type AuditObjectRef struct {
	Resource    string `json:"resource"`
	Namespace   string `json:"namespace"`
	Name        string `json:"name"`
	APIGroup    string `json:"apiGroup"`
	Subresource string `json:"subresource"`
}

// Code is the HTTP status of the response (0 if unknown).
func (e AuditEvent) Code() int {
	if e.ResponseStatus == nil {
		return 0
	}
	return e.ResponseStatus.Code
}

// AuditEvents reads the audit log: one event per create, update, patch,
// delete or deletecollection request, in the order they completed. An event
// is written when its response completes, a moment after the client has
// it: poll (wait.PollUntilContextTimeout) rather than read once.
func (b *Bed) AuditEvents() ([]AuditEvent, error) {
	f, err := os.Open(b.auditLog)
	if err != nil {
		return nil, fmt.Errorf("opening the audit log: %w", err)
	}
	defer f.Close()
	var events []AuditEvent
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64*1024), 16*1024*1024)
	for sc.Scan() {
		var e AuditEvent
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			// The last line may be half-written while we read.
			continue
		}
		events = append(events, e)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading the audit log: %w", err)
	}
	return events, nil
}
