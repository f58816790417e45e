package tui

import (
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"charm.land/bubbles/v2/textinput"
	"charm.land/bubbles/v2/viewport"
	tea "charm.land/bubbletea/v2"
)

type snapshot struct {
	step string
	a    answers
}

// wizardModel is the step-by-step form of `init`.
type wizardModel struct {
	steps   map[string]*step
	cur     *step
	a       answers
	history []snapshot
	// flagSet reports whether a flag was given (its question is then not asked).
	flagSet func(name string) bool
	// write stores the file; it returns where it went.
	write  func(data []byte) (string, error)
	target string

	input  textinput.Model
	cursor int
	filter string
	marked map[string]bool
	errs   []string
	// kept is the answer (step and value) whose file problem was shown: entering it again
	// keeps it anyway.
	kept string

	review viewport.Model
	data   []byte

	st            styles
	width, height int

	written  string
	aborted  bool
	finished bool
}

func newWizard(a answers, target string, flagSet func(string) bool, write func([]byte) (string, error), noColor bool) *wizardModel {
	if flagSet == nil {
		flagSet = func(string) bool { return false }
	}
	w := &wizardModel{
		steps: wizardSteps(), a: a, flagSet: flagSet, write: write, target: target,
		input: textinput.New(), review: viewport.New(), st: newStyles(noColor), width: 80, height: 24,
	}
	w.input.Prompt = "> "
	if noColor {
		// Keep only the cursor (reverse video): no colours.
		st := w.input.Styles()
		st.Focused, st.Blurred = textinput.StyleState{}, textinput.StyleState{}
		w.input.SetStyles(st)
	}
	w.input.Focus()
	w.goTo("name")
	return w
}

func (w *wizardModel) Init() tea.Cmd { return textinput.Blink }

// problems is what validation says about this step's answer.
func (w *wizardModel) problems(a *answers, s *step) []string {
	var out []string
	for _, e := range under(a.validate(), s.paths(a)...) {
		out = append(out, e.Error())
	}
	return out
}

// goTo shows step id, passing over questions that flags already answered validly.
func (w *wizardModel) goTo(id string) {
	w.errs, w.filter = nil, ""
	for id != reviewStep {
		s := w.steps[id]
		given := slices.ContainsFunc(s.flags, w.flagSet)
		if !given || len(w.problems(&w.a, s)) > 0 {
			w.cur = s
			w.enter()
			return
		}
		id = s.next(&w.a)
	}
	w.cur = nil
	w.enterReview()
}

func (w *wizardModel) enter() {
	s := w.cur
	switch s.kind {
	case textStep:
		w.input.SetValue(s.get(&w.a))
		w.input.CursorEnd()
		w.input.SetWidth(max(10, w.width-4))
	default:
		opts := s.options(&w.a)
		sel := s.selected(&w.a)
		w.marked = map[string]bool{}
		for _, v := range sel {
			w.marked[v] = true
		}
		w.cursor = 0
		for i, o := range opts {
			if len(sel) > 0 && o.value == sel[0] {
				w.cursor = i
				break
			}
		}
	}
	// Show straight away why a value that came from a flag was not taken.
	if slices.ContainsFunc(s.flags, w.flagSet) {
		w.errs = w.problems(&w.a, s)
	}
}

func (w *wizardModel) enterReview() {
	data, err := w.a.render()
	if err != nil {
		w.errs = []string{err.Error()}
	}
	w.data = data
	w.review.SetContent(string(data) + "\n" + w.a.cost())
	w.review.GotoTop()
	w.layoutReview()
	// Everything at once, as `validate` would print it: catches what no single question
	// owns.
	for _, e := range w.a.validate() {
		w.errs = append(w.errs, e.Error())
	}
}

func (w *wizardModel) layoutReview() {
	w.review.SetWidth(w.width)
	w.review.SetHeight(max(3, w.height-7-len(w.errs)))
}

// visible filters the current options by what was typed.
func (w *wizardModel) visible() []option {
	var out []option
	for _, o := range w.cur.options(&w.a) {
		if w.filter == "" || strings.Contains(strings.ToLower(o.label), strings.ToLower(w.filter)) {
			out = append(out, o)
		}
	}
	return out
}

// submit applies an answer to a copy of the answers and moves on only if it validates.
func (w *wizardModel) submit(apply func(a *answers) error) {
	next := w.a.clone()
	if err := apply(&next); err != nil {
		w.errs = []string{err.Error()}
		return
	}
	if errs := w.problems(&next, w.cur); len(errs) > 0 {
		w.errs = errs
		return
	}
	if w.cur.check != nil {
		answer := w.cur.id + "\x00" + w.cur.get(&next)
		if problem := w.cur.check(&next, filepath.Dir(w.target)); problem != "" && w.kept != answer {
			// Like a wrong e-mail, said when given; unlike it, maybe right on the machine
			// that will run the bootstrap, so the user may keep it.
			w.kept = answer
			w.errs = []string{problem + " (enter again to keep it anyway, or change it)"}
			return
		}
	}
	w.kept = ""
	w.history = append(w.history, snapshot{step: w.cur.id, a: w.a})
	w.a = next
	w.goTo(w.cur.next(&w.a))
}

func (w *wizardModel) back() {
	if len(w.history) == 0 {
		return
	}
	last := w.history[len(w.history)-1]
	w.history = w.history[:len(w.history)-1]
	w.a = last.a
	w.errs, w.filter = nil, ""
	w.cur = w.steps[last.step]
	w.enter()
	w.errs = nil
}

func (w *wizardModel) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	switch msg := msg.(type) {
	case tea.WindowSizeMsg:
		if msg.Width <= 0 || msg.Height <= 0 {
			return w, nil
		}
		w.width, w.height = msg.Width, msg.Height
		w.input.SetWidth(max(10, w.width-4))
		w.layoutReview()
		return w, nil
	case tea.KeyPressMsg:
		if w.finished {
			return w, nil
		}
		switch msg.String() {
		case "ctrl+c":
			w.aborted, w.finished = true, true
			return w, tea.Quit
		case "esc":
			w.back()
			return w, nil
		}
		if w.cur == nil {
			return w, w.updateReview(msg)
		}
		switch w.cur.kind {
		case textStep:
			if msg.String() == "enter" {
				v := w.input.Value()
				w.submit(func(a *answers) error { return w.cur.set(a, v) })
				return w, nil
			}
			var cmd tea.Cmd
			w.input, cmd = w.input.Update(msg)
			return w, cmd
		default:
			w.updateChoice(msg)
			return w, nil
		}
	}
	if w.cur != nil && w.cur.kind == textStep {
		var cmd tea.Cmd
		w.input, cmd = w.input.Update(msg)
		return w, cmd
	}
	return w, nil
}

func (w *wizardModel) updateChoice(k tea.KeyPressMsg) {
	opts := w.visible()
	switch k.String() {
	case "up", "ctrl+p":
		if w.cursor > 0 {
			w.cursor--
		}
	case "down", "ctrl+n", "tab":
		if w.cursor < len(opts)-1 {
			w.cursor++
		}
	case "space":
		if w.cur.kind == multiStep && w.cursor < len(opts) {
			v := opts[w.cursor].value
			w.marked[v] = !w.marked[v]
		}
	case "backspace":
		if w.filter != "" {
			w.filter = w.filter[:len(w.filter)-1]
			w.cursor = 0
		}
	case "enter":
		var vals []string
		if w.cur.kind == multiStep {
			for _, o := range w.cur.options(&w.a) {
				if w.marked[o.value] {
					vals = append(vals, o.value)
				}
			}
		} else if w.cursor < len(opts) {
			vals = []string{opts[w.cursor].value}
		} else {
			w.errs = []string{"nothing matches " + strconv.Quote(w.filter) + ": backspace to change the filter"}
			return
		}
		w.submit(func(a *answers) error { w.cur.choose(a, vals); return nil })
	default:
		if k.Text != "" && w.cur.kind == choiceStep {
			w.filter += k.Text
			w.cursor = 0
		}
	}
}

func (w *wizardModel) updateReview(k tea.KeyPressMsg) tea.Cmd {
	if k.String() != "enter" {
		var cmd tea.Cmd
		w.review, cmd = w.review.Update(k)
		return cmd
	}
	if len(w.errs) > 0 || w.data == nil {
		return nil
	}
	where, err := w.write(w.data)
	if err != nil {
		w.errs = []string{err.Error()}
		w.layoutReview()
		return nil
	}
	w.written, w.finished = where, true
	return tea.Sequence(tea.Tick(frameClear, func(time.Time) tea.Msg { return nil }), tea.Println(w.doneText()), tea.Quit)
}

// doneText stays in the scrollback: the file, what it warns about, and what to run next.
func (w *wizardModel) doneText() string {
	var b strings.Builder
	b.WriteString(strings.TrimRight(string(w.data), "\n"))
	b.WriteString("\n\n" + writtenText(w.a, w.written))
	return b.String()
}

// writtenText is the closing note of both the wizard and the non-interactive path.
func writtenText(a answers, where string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Wrote %s (%d GPU pool", where, len(a.Pools))
	if len(a.Pools) != 1 {
		b.WriteString("s")
	}
	b.WriteString(").\n")
	c := a.cluster()
	c.Default()
	for _, warn := range c.Warnings() {
		b.WriteString("warning: " + warn + "\n")
	}
	if a.SecretEnv != "" {
		fmt.Fprintf(&b, "Export %s before running install.\n", a.SecretEnv)
	}
	fmt.Fprintf(&b, "Next: rhoai-bootstrap validate -f %s\n      rhoai-bootstrap install -f %s", where, where)
	return b.String()
}

func (w *wizardModel) View() tea.View {
	if w.finished {
		// One blank line: the closing text is printed above it (see Progress.View).
		return tea.NewView(" ")
	}
	var b strings.Builder
	b.WriteString(w.st.title.Render("rhoai-bootstrap init → "+w.target) + "\n\n")
	if w.cur == nil {
		b.WriteString(w.st.title.Render("Review") + w.st.faint.Render(" — the file to be written") + "\n")
		b.WriteString(w.review.View() + "\n")
		b.WriteString(w.errorLines())
		if len(w.errs) > 0 {
			b.WriteString(w.st.faint.Render("esc back to fix · ↑/↓ scroll · ctrl+c quit"))
		} else {
			b.WriteString(w.st.faint.Render("enter write " + w.target + " · esc back · ↑/↓ scroll · ctrl+c quit"))
		}
		return w.frame(b.String())
	}
	s := w.cur
	b.WriteString(w.st.title.Render(s.title) + "\n")
	if s.help != "" {
		b.WriteString(w.st.faint.Render(wrap(s.help, w.width)) + "\n")
	}
	if s.id == "poolGPU" && len(w.a.Pools) > 0 {
		for _, p := range w.a.Pools {
			spot := ""
			if p.Spot {
				spot = ", spot"
			}
			b.WriteString(fmt.Sprintf("  pool %s: %s, %s, %d–%d%s\n", p.Name, p.GPU, p.Access, p.Min, p.Max, spot))
		}
	}
	b.WriteString("\n")
	switch s.kind {
	case textStep:
		b.WriteString(w.input.View() + "\n")
	default:
		b.WriteString(w.optionLines())
	}
	b.WriteString("\n" + w.errorLines())
	help := "enter accept · esc back · ctrl+c quit"
	switch s.kind {
	case choiceStep:
		help = "↑/↓ move · type to filter · " + help
	case multiStep:
		help = "↑/↓ move · space toggle · " + help
	}
	b.WriteString(w.st.faint.Render(help))
	return w.frame(b.String())
}

// frame gives every step the same height, one line short of the terminal, with the key
// help on the last line: inline frames that change height or fill the whole screen leave
// copies of themselves in the scrollback.
func (w *wizardModel) frame(s string) tea.View {
	lines := strings.Split(fit(strings.TrimRight(s, "\n"), w.width), "\n")
	n := max(w.height-1, 3)
	body, foot := lines[:len(lines)-1], lines[len(lines)-1]
	if len(body) > n-1 {
		body = body[:n-1]
	}
	for len(body) < n-1 {
		body = append(body, "")
	}
	return tea.NewView(strings.Join(append(body, foot), "\n"))
}

func (w *wizardModel) optionLines() string {
	var b strings.Builder
	if w.filter != "" {
		b.WriteString(w.st.faint.Render("filter: "+w.filter) + "\n")
	}
	opts := w.visible()
	// A window around the cursor, so long lists (regions) fit on a small terminal.
	room := max(3, w.height-12)
	start := 0
	if len(opts) > room {
		start = min(max(0, w.cursor-room/2), len(opts)-room)
	}
	end := min(len(opts), start+room)
	if start > 0 {
		b.WriteString(w.st.faint.Render(fmt.Sprintf("  ↑ %d more", start)) + "\n")
	}
	for i := start; i < end; i++ {
		o := opts[i]
		mark := ""
		if w.cur.kind == multiStep {
			mark = "[ ] "
			if w.marked[o.value] {
				mark = "[x] "
			}
		}
		line := "  " + mark + o.label
		if i == w.cursor {
			line = w.st.active.Render("> " + mark + o.label)
		}
		b.WriteString(line + "\n")
	}
	if end < len(opts) {
		b.WriteString(w.st.faint.Render(fmt.Sprintf("  ↓ %d more", len(opts)-end)) + "\n")
	}
	return b.String()
}

func (w *wizardModel) errorLines() string {
	var b strings.Builder
	for _, e := range w.errs {
		b.WriteString(w.st.bad.Render(wrap("✗ "+e, w.width)) + "\n")
	}
	return b.String()
}
