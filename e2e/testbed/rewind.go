package testbed

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/kubernetes"
)

// etcdPrefix is where kube-apiserver keeps objects (its --etcd-prefix default).
const etcdPrefix = "/registry/"

// notRewound are the keys the API server itself keeps up to date and that no test
// owns: leases and events churn on their own, and the aggregator's APIService objects
// follow the CRDs (kube-apiserver adds and removes them when a CRD comes or goes), so
// rewinding them would only fight that controller.
var notRewound = []string{
	etcdPrefix + "leases/",
	etcdPrefix + "masterleases/",
	etcdPrefix + "events/",
	etcdPrefix + "events.k8s.io/",
	etcdPrefix + "apiregistration.k8s.io/",
	etcdPrefix + "flowschemas/",
	etcdPrefix + "prioritylevelconfigurations/",
}

// checkpoint is the control plane as the bed started it: CRDs installed and the
// OpenShift singletons seeded.
type checkpoint struct {
	etcd     *clientv3.Client
	revision int64
	// groups are the API groups served at the checkpoint; a rewind waits until the API
	// server serves exactly these again (CRDs a test added are gone from discovery).
	groups []string
}

// takeCheckpoint remembers etcd's current revision. The API server is started with
// compaction off, so etcd keeps every revision since and Reset can read the
// checkpoint's values back.
func (b *Bed) takeCheckpoint(ctx context.Context) error {
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:   []string{b.kube.env.ControlPlane.Etcd.URL.String()},
		DialTimeout: 10 * time.Second,
		Logger:      zap.NewNop(),
		Context:     context.Background(),
	})
	if err != nil {
		return fmt.Errorf("connecting to etcd: %w", err)
	}
	groups, err := b.servedGroups()
	if err != nil {
		cli.Close()
		return err
	}
	resp, err := cli.Get(ctx, etcdPrefix, clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil {
		cli.Close()
		return fmt.Errorf("reading etcd's revision: %w", err)
	}
	b.checkpoint = &checkpoint{etcd: cli, revision: resp.Header.Revision, groups: groups}
	b.closers = append(b.closers, cli.Close)
	return nil
}

func (b *Bed) servedGroups() ([]string, error) {
	dc, err := discovery.NewDiscoveryClientForConfig(b.config)
	if err != nil {
		return nil, err
	}
	list, err := dc.ServerGroups()
	if err != nil {
		return nil, fmt.Errorf("listing API groups: %w", err)
	}
	var out []string
	for _, g := range list.Groups {
		out = append(out, g.Name)
	}
	slices.Sort(out)
	return out, nil
}

// RewindStats says what a Reset did.
type RewindStats struct {
	Restored, Deleted int
	Took              time.Duration
}

// Reset puts the bed back as it started, so that the next test can use it instead of
// starting a bed of its own (~5 s of CPU each, 13 s without the CRD snapshot): every object a test created, changed
// or deleted is put back to the checkpoint directly in etcd — the API server watches
// etcd, so its caches and the CRDs it serves follow — and moto, the fake quotas and the
// hosted zone are reset. Nothing must be using the bed meanwhile (stop the simulator
// first). Reset returns once the API server shows the rewound state.
func (b *Bed) Reset(ctx context.Context) (RewindStats, error) {
	start := time.Now()
	var st RewindStats
	cp := b.checkpoint
	if cp == nil {
		return st, fmt.Errorf("the bed has no checkpoint to rewind to")
	}
	// Its informers would not survive etcd going back in time (nor would a real
	// cluster's ever have to): a new one starts on the rewound state.
	if err := b.stopControllerManager(); err != nil {
		return st, err
	}
	now, err := cp.etcd.Get(ctx, etcdPrefix, clientv3.WithPrefix(), clientv3.WithKeysOnly())
	if err != nil {
		return st, fmt.Errorf("listing etcd keys: %w", err)
	}
	then, err := cp.etcd.Get(ctx, etcdPrefix, clientv3.WithPrefix(), clientv3.WithKeysOnly(), clientv3.WithRev(cp.revision))
	if err != nil {
		return st, fmt.Errorf("listing etcd keys at the checkpoint (revision %d): %w", cp.revision, err)
	}
	existed := map[string]bool{}
	for _, kv := range then.Kvs {
		existed[string(kv.Key)] = true
	}
	var touched []string
	for _, kv := range now.Kvs {
		k := string(kv.Key)
		delete(existed, k) // what is left afterwards was deleted since
		if kv.ModRevision > cp.revision && rewound(k) {
			touched = append(touched, k)
		}
	}
	for k := range existed {
		if rewound(k) {
			touched = append(touched, k)
		}
	}
	for _, k := range touched {
		old, err := cp.etcd.Get(ctx, k, clientv3.WithRev(cp.revision))
		if err != nil {
			return st, fmt.Errorf("reading %s at the checkpoint: %w", k, err)
		}
		if len(old.Kvs) == 0 {
			if _, err := cp.etcd.Delete(ctx, k); err != nil {
				return st, fmt.Errorf("deleting %s: %w", k, err)
			}
			st.Deleted++
			continue
		}
		if _, err := cp.etcd.Put(ctx, k, string(old.Kvs[0].Value)); err != nil {
			return st, fmt.Errorf("restoring %s: %w", k, err)
		}
		st.Restored++
	}
	if err := b.waitRewound(ctx); err != nil {
		return st, err
	}
	if err := b.startControllerManager(ctx); err != nil {
		return st, err
	}
	if err := b.ResetAWS(ctx); err != nil {
		return st, err
	}
	st.Took = time.Since(start)
	return st, nil
}

func rewound(key string) bool {
	return !slices.ContainsFunc(notRewound, func(p string) bool { return strings.HasPrefix(key, p) })
}

// waitRewound waits until the API server's caches have caught up with etcd (a list is
// served from the watch cache once it has seen etcd's current revision) and it serves
// the checkpoint's API groups again.
func (b *Bed) waitRewound(ctx context.Context) error {
	cs, err := kubernetes.NewForConfig(b.config)
	if err != nil {
		return err
	}
	var last string
	err = wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		if _, err := cs.CoreV1().Namespaces().List(ctx, metav1.ListOptions{}); err != nil {
			last = err.Error()
			return false, nil
		}
		groups, err := b.servedGroups()
		if err != nil {
			last = err.Error()
			return false, nil
		}
		if !slices.Equal(groups, b.checkpoint.groups) {
			last = fmt.Sprintf("API groups %v, want %v", groups, b.checkpoint.groups)
			return false, nil
		}
		return true, nil
	})
	if err != nil {
		return fmt.Errorf("waiting for the API server to show the rewound state (%s): %w", last, err)
	}
	return nil
}
