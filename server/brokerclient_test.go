package server

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/keyturn/keyturn/config"
)

func TestListenURL(t *testing.T) {
	tests := []struct {
		listen string
		tls    bool
		want   string
	}{
		{"127.0.0.1:9271", false, "http://127.0.0.1:9271"},
		{"0.0.0.0:9271", false, "http://127.0.0.1:9271"},
		{":9271", true, "https://127.0.0.1:9271"},
		{"[::]:9271", false, "http://[::1]:9271"},
		{"keyturn.internal:443", true, "https://keyturn.internal:443"},
	}
	var got, want []string
	for _, tt := range tests {
		cfg := &config.Config{Listen: tt.listen}
		if tt.tls {
			cfg.TLS = config.TLS{CertFile: "c.pem", KeyFile: "k.pem"}
		}
		u, err := listenURL(cfg)
		if err != nil {
			u = "error: " + err.Error()
		}
		got, want = append(got, u), append(want, tt.want)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("listen URLs (-want +got):\n%s", diff)
	}
}
