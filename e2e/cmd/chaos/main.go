// Command chaos is `make chaos`: on a test bed of its own it kills `rhoai-bootstrap
// install` with SIGKILL at seeded random moments, then runs it once more and checks that
// the run converged with nothing duplicated: no cluster created twice, exactly the GPU
// pools' MachineSets, one ACME order. It prints the seed (replay with -seed) and
//
//	chaos: N kills, M resumed, 0 duplicates, K ACME orders
//
// and exits 1 when anything was duplicated or the last run failed.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"

	"github.com/rhoai-bootstrap/rhoai-bootstrap/e2e/harness"
	"github.com/rhoai-bootstrap/rhoai-bootstrap/e2e/testbed"
)

func main() {
	kills := flag.Int("kills", 20, "how many runs to kill")
	seed := flag.Int64("seed", time.Now().UnixNano(), "random seed for the kill moments")
	step := flag.Duration("step", 750*time.Millisecond, "how much later each next kill may land")
	flag.StringVar(&overlay, "overlay", "", "the payload overlay the root application syncs (default the dev overlay; "+testbed.BedOverlay+": the bed's small one)")
	flag.Parse()
	if err := run(*kills, *seed, *step); err != nil {
		fmt.Fprintln(os.Stderr, "chaos:", err)
		os.Exit(1)
	}
}

// overlay is -overlay: the kill-and-resume subject does not need the dev overlay's whole
// hand-off, which the bed cannot finish while it issues no certificate (README).
var overlay string

func run(kills int, seed int64, step time.Duration) error {
	fmt.Printf("chaos: seed %d (replay with -seed %d), %d kills\n", seed, seed, kills)
	ctx := context.Background()
	start := time.Now()
	r, err := harness.Start(ctx, harness.Options{Overlay: overlay})
	if err != nil {
		return err
	}
	defer r.Stop()
	fmt.Printf("chaos: test bed up in %s\n", time.Since(start).Round(100*time.Millisecond))
	state := filepath.Join(r.WorkDir, "state")
	res, err := r.Chaos(ctx, state, harness.ChaosOptions{Kills: kills, Seed: seed, Step: step})
	fmt.Printf("chaos: kills landed in (phase last heard from): %v\n", res.Where)
	if err != nil {
		return err
	}
	final := r.Run(ctx, r.Env(), append([]string{"install", "-f", r.Config()}, r.Flags(state)...)...)
	if final.Code != 0 {
		return fmt.Errorf("the run after the kills exited %d: %s", final.Code, final.Stderr)
	}
	dups := 0
	creates, err := harness.CreatesPerCluster(r.Registry())
	if err != nil {
		return err
	}
	for id, n := range creates {
		if n > 1 {
			fmt.Printf("chaos: DUPLICATE: create cluster ran %d times for %s\n", n, id)
			dups += n - 1
		}
	}
	d, err := dynamic.NewForConfig(r.Bed.Config())
	if err != nil {
		return err
	}
	ms, err := d.Resource(schema.GroupVersionResource{Group: "machine.openshift.io", Version: "v1beta1", Resource: "machinesets"}).
		Namespace("openshift-machine-api").List(ctx, metav1.ListOptions{LabelSelector: "rhoai-bootstrap.io/gpu-pool"})
	if err != nil {
		return err
	}
	const wantMS = 5 // local.yaml: t4-shared and l40-shared in 2 zones each, l40s-private in 1
	if len(ms.Items) != wantMS {
		fmt.Printf("chaos: DUPLICATE: %d GPU MachineSets, want %d\n", len(ms.Items), wantMS)
		dups += max(0, len(ms.Items)-wantMS)
	}
	left, err := harness.BootstrapLeft(r.Registry())
	if err != nil {
		return err
	}
	for id, res := range left {
		fmt.Printf("chaos: BOOTSTRAP LEFT: cluster %s still has %s\n", id, strings.Join(res, ", "))
	}
	orders, err := harness.LedgerOrders(state)
	if err != nil {
		return err
	}
	if orders != 1 {
		fmt.Printf("chaos: DUPLICATE: %d ACME orders, want 1\n", orders)
		dups += max(0, orders-1)
	}
	fmt.Printf("chaos: %d kills, %d resumed, %d duplicates, %d ACME orders, %d bootstrap resources left (%s)\n",
		res.Kills, res.Kills+res.Completed, dups, orders, countLeft(left), time.Since(start).Round(time.Second))
	if dups > 0 || orders != 1 || len(ms.Items) != wantMS || len(left) > 0 {
		return fmt.Errorf("not converged cleanly (seed %d)", seed)
	}
	return nil
}

func countLeft(left map[string][]string) int {
	n := 0
	for _, res := range left {
		n += len(res)
	}
	return n
}
