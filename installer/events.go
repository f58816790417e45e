package installer

import (
	"sync"
	"time"
)

// EventSchema is the version of the event format that `--output json` prints. It changes
// only when a field changes meaning or disappears; new fields may appear within a version.
//
// Version 2 added Cluster. A field alone would not need a new number, but with it one
// stream may interleave several clusters' runs (install -f a.yaml -f b.yaml): a consumer
// of version 1, which could take every event of a stream as one run's, must now look at
// cluster, so the stream's meaning changed.
const EventSchema = 2

// EventType says what happened.
type EventType string

// Event types.
const (
	RunStarted   EventType = "run-started"
	PhaseStarted EventType = "phase-started"
	Progress     EventType = "progress"
	WaitingOn    EventType = "waiting"
	PhaseDone    EventType = "phase-done"
	PhaseSkipped EventType = "phase-skipped"
	PhaseFailed  EventType = "phase-failed"
	PhasePlanned EventType = "phase-planned"
	RunFinished  EventType = "run-finished"
	// CostEstimated carries the hourly cost of the file's machines (Event.Cost): `plan`
	// emits it before its phases, `install` before run-started.
	CostEstimated EventType = "cost"
)

// Event is one entry of the stream every front-end renders: the text logger, the JSON
// lines of `--output json`, the TUI and the debug log.
type Event struct {
	Schema int       `json:"schema"`
	Time   time.Time `json:"time"`
	Type   EventType `json:"type"`
	// Cluster is the metadata.name of the cluster whose run emitted the event (Bus.Cluster);
	// several clusters' events share one stream when a command is given several files.
	Cluster string `json:"cluster,omitempty"`
	// Action is install, destroy or plan.
	Action  string `json:"action,omitempty"`
	Phase   string `json:"phase,omitempty"`
	Message string `json:"message,omitempty"`
	// Waiting names what the phase waits on now, and until when at most.
	Waiting *Waiting `json:"waiting,omitempty"`
	// Outcome is set on phase-done/-skipped/-failed and run-finished.
	Outcome Outcome `json:"outcome,omitempty"`
	Error   string  `json:"error,omitempty"`
	// Problems is, on phase-failed, how many problems Error lists (preflight reports every
	// one it finds): a summary points at them rather than repeating them.
	Problems int `json:"problems,omitempty"`
	// DurationMS is the phase's (or run's) wall time, on terminal events.
	DurationMS int64 `json:"durationMs,omitempty"`
	// Changes are a plan's would-be changes (phase-planned), or what Apply changed.
	Changes []Change `json:"changes,omitempty"`
	// Inventory is, on phase-planned, what the phase's inventory holds now: the objects
	// it created, adopted or modified, which destroy deletes, leaves or restores.
	Inventory []InventoryEntry `json:"inventory,omitempty"`
	// Summary is set on run-finished.
	Summary *Summary `json:"summary,omitempty"`
	// Cost is set on cost events.
	Cost *Cost `json:"cost,omitempty"`
	// Debug marks chatty lines the text front-end hides unless -v.
	Debug bool `json:"debug,omitempty"`
}

// Waiting is what a phase is blocked on.
type Waiting struct {
	On    string    `json:"on"`
	Until time.Time `json:"until,omitzero"`
}

// Summary closes a run.
type Summary struct {
	Action   string             `json:"action"`
	Outcome  Outcome            `json:"outcome"`
	Phases   map[string]Outcome `json:"phases"`
	State    string             `json:"state"`
	Failed   []string           `json:"failed,omitempty"`
	Mutating int64              `json:"mutatingRequests"`
	// Reads and Watches count the run's other API requests: GETs, and watches.
	Reads   int64 `json:"readRequests"`
	Watches int64 `json:"watchRequests"`
	// Extra carries front-end facts phases publish (console URL, kubeconfig path).
	Extra map[string]string `json:"extra,omitempty"`
}

// Sink receives events. Sinks are called one event at a time, in order.
type Sink interface{ Event(Event) }

// SinkFunc adapts a function to a Sink.
type SinkFunc func(Event)

// Event implements Sink.
func (f SinkFunc) Event(e Event) { f(e) }

// Bus fans events out to sinks, redacting secrets from every text field first.
type Bus struct {
	mu       sync.Mutex
	sinks    []Sink
	Redactor *Redactor
	// Cluster, when set, is stamped on every event that names no cluster.
	Cluster string
	now     func() time.Time
}

// NewBus returns a bus with the given sinks.
func NewBus(r *Redactor, sinks ...Sink) *Bus {
	if r == nil {
		r = &Redactor{}
	}
	return &Bus{sinks: sinks, Redactor: r, now: time.Now}
}

// Add attaches another sink.
func (b *Bus) Add(s Sink) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.sinks = append(b.sinks, s)
}

// Emit stamps, redacts and delivers an event. Every string the event holds — its message
// and error, what it waits on, each change, the summary and its extra facts, and any field
// added later — reaches the sinks with registered secrets replaced (see Redactor.Event).
// Sinks (the text and JSON writers, the TUI, the debug log) get nothing else.
func (b *Bus) Emit(e Event) {
	if b == nil {
		return
	}
	e.Schema = EventSchema
	if e.Cluster == "" {
		e.Cluster = b.Cluster
	}
	if e.Time.IsZero() {
		e.Time = b.now().UTC()
	}
	e = b.Redactor.Event(e)
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, s := range b.sinks {
		s.Event(e)
	}
}
