// Package tui is the interactive front-end of rhoai-bootstrap: the live progress view of
// install and destroy, and the `init` wizard.
//
// The progress view holds no logic of its own: it renders the same installer.Event stream
// that the text logger and `--output json` print, so what a person sees on a terminal and
// what CI sees never disagree. The wizard builds its answers into a configs.Cluster and
// checks them with the config API's own defaulting and validation, so it can never write a
// file that `validate` would reject.
package tui
