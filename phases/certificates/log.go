package certificates

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	legolog "github.com/go-acme/lego/v5/log"

	"github.com/rhoai-bootstrap/rhoai-bootstrap/installer"
)

// scopeHandler sends lego's log records to the event stream as debug lines: lego logs to
// stdout by default, which would break `--output json` and the TUI.
type scopeHandler struct {
	s     *installer.Scope
	attrs []slog.Attr
}

func (h scopeHandler) Enabled(context.Context, slog.Level) bool { return true }

func (h scopeHandler) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	b.WriteString(r.Message)
	add := func(a slog.Attr) bool {
		fmt.Fprintf(&b, " %s=%v", a.Key, a.Value)
		return true
	}
	for _, a := range h.attrs {
		add(a)
	}
	r.Attrs(add)
	h.s.Debugf("lego: %s", b.String())
	return nil
}

func (h scopeHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return scopeHandler{s: h.s, attrs: append(append([]slog.Attr{}, h.attrs...), attrs...)}
}

func (h scopeHandler) WithGroup(string) slog.Handler { return h }

// routeLegoLogs points lego's (process-wide) logger at this phase's events.
func routeLegoLogs(s *installer.Scope) { legolog.SetDefault(slog.New(scopeHandler{s: s})) }
