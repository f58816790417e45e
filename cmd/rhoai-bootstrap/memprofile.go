package main

import (
	"bytes"
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
	"time"
)

// profileHeapPeak samples the heap every 250 ms and keeps a heap profile taken whenever
// the heap in use grew by a tenth over the highest seen: what a profile written at exit
// would miss (the peak is mid-run, not at the end). The returned func stops sampling
// and writes the kept profile to path. For `make bench` (the hidden --memprofile flag).
func profileHeapPeak(path string) (stop func()) {
	done := make(chan struct{})
	finished := make(chan struct{})
	var kept bytes.Buffer
	go func() {
		defer close(finished)
		var peak uint64
		t := time.NewTicker(250 * time.Millisecond)
		defer t.Stop()
		for {
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > peak+peak/10 {
				peak = ms.HeapInuse
				kept.Reset()
				_ = pprof.Lookup("heap").WriteTo(&kept, 0)
			}
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	}()
	return func() {
		close(done)
		<-finished
		if err := os.WriteFile(path, kept.Bytes(), 0o600); err != nil {
			fmt.Fprintf(os.Stderr, "writing the heap profile: %v\n", err)
		}
	}
}
