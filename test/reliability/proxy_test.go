package reliability

import (
	"bytes"
	"context"
	"encoding/json"
	"sync"
	"testing"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

// toxiServer holds the package's fault proxies; it serves no API.
var toxiServer = sync.OnceValue(func() *toxiproxy.ApiServer {
	return toxiproxy.NewServer(toxiproxy.NewMetricsContainer(prometheus.NewRegistry()),
		zerolog.Nop())
})

// faultProxy is a TCP proxy on loopback whose connections can be given
// latency, stalls and resets while keyturn uses them.
type faultProxy struct {
	t    testing.TB
	p    *toxiproxy.Proxy
	addr string
}

func newFaultProxy(t testing.TB, name, upstream string) *faultProxy {
	t.Helper()
	p := toxiproxy.NewProxy(toxiServer(), name, "127.0.0.1:0", upstream)
	if err := p.Start(); err != nil {
		t.Fatalf("start fault proxy %s: %v", name, err)
	}
	t.Cleanup(p.Stop)
	return &faultProxy{t: t, p: p, addr: p.Listen}
}

// toxic adds a toxic; typ is latency, timeout or reset_peer, and attrs
// its attributes (in milliseconds). It applies to open connections too.
func (f *faultProxy) toxic(name, typ, stream string, attrs map[string]int) {
	f.t.Helper()
	body, _ := json.Marshal(map[string]any{"name": name, "type": typ, "stream": stream,
		"toxicity": 1.0, "attributes": attrs})
	if _, err := f.p.Toxics.AddToxicJson(bytes.NewReader(body)); err != nil {
		f.t.Fatalf("add toxic %s: %v", name, err)
	}
}

// clear removes every toxic.
func (f *faultProxy) clear() {
	f.p.Toxics.ResetToxics(context.Background())
}
