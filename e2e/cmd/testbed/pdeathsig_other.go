//go:build !linux

package main

// stopWithParent is a no-op outside Linux, which has no parent-death signal.
func stopWithParent() error { return nil }
