package kube

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The counter tells reads, watches and mutating requests apart.
func TestCounterCountsReadsWatchesAndWrites(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer srv.Close()
	var c Counter
	client := &http.Client{Transport: &guardTransport{next: http.DefaultTransport, counter: &c}}
	do := func(ctx context.Context, method, path string) {
		req, err := http.NewRequestWithContext(ctx, method, srv.URL+path, nil)
		require.NoError(t, err)
		resp, err := client.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
	}
	ctx := context.Background()
	do(ctx, http.MethodGet, "/api/v1/namespaces/a/secrets/b")
	do(ctx, http.MethodGet, "/api/v1/namespaces/a/secrets")
	do(ctx, http.MethodGet, "/api/v1/namespaces/a/secrets?watch=true&fieldSelector=metadata.name%3Db")
	do(recorded(ctx), http.MethodPatch, "/api/v1/namespaces/a/secrets/b")
	assert.EqualValues(t, 2, c.Reads())
	assert.EqualValues(t, 1, c.Watches())
	assert.EqualValues(t, 1, c.Count())
}
