package reliability

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

// faultFront is an HTTP reverse proxy in front of a backend's server
// that, while told to, answers every request itself the way that server
// does when it is sealed or throttling.
type faultFront struct {
	srv    *httptest.Server
	caFile string // the front's certificate, for a TLS client to trust

	mu     sync.Mutex
	answer func(http.ResponseWriter) // nil: pass the request on
	hits   int                       // requests answered by answer
}

func newFaultFront(t testing.TB, dir, upstream string) *faultFront {
	t.Helper()
	u, err := url.Parse(upstream)
	if err != nil {
		t.Fatal(err)
	}
	f := &faultFront{}
	rp := httputil.NewSingleHostReverseProxy(u)
	if u.Scheme == "https" {
		pool := x509.NewCertPool()
		ca, err := os.ReadFile(os.Getenv("VAULT_CACERT"))
		if err != nil || !pool.AppendCertsFromPEM(ca) {
			t.Fatalf("read VAULT_CACERT: %v", err)
		}
		rp.Transport = &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}
	}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		answer := f.answer
		if answer != nil {
			f.hits++
		}
		f.mu.Unlock()
		if answer != nil {
			answer(w)
			return
		}
		rp.ServeHTTP(w, r)
	})
	if u.Scheme == "https" {
		f.srv = httptest.NewTLSServer(h)
		f.caFile = filepath.Join(dir, "front-ca.pem")
		pemData := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE",
			Bytes: f.srv.Certificate().Raw})
		if err := os.WriteFile(f.caFile, pemData, 0o644); err != nil {
			t.Fatal(err)
		}
	} else {
		f.srv = httptest.NewServer(h)
	}
	t.Cleanup(f.srv.Close)
	return f
}

// set makes the front answer every request with answer (nil: pass on),
// and returns how many requests it answered since the last set.
func (f *faultFront) set(answer func(http.ResponseWriter)) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := f.hits
	f.answer, f.hits = answer, 0
	return n
}

// sealedVault answers as Vault does while sealed.
func sealedVault(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusServiceUnavailable)
	w.Write([]byte(`{"errors":["Vault is sealed"]}` + "\n"))
}

// throttledAWS answers as AWS Secrets Manager does when throttling.
func throttledAWS(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	w.Header().Set("X-Amzn-ErrorType", "ThrottlingException")
	w.WriteHeader(http.StatusBadRequest)
	w.Write([]byte(`{"__type":"ThrottlingException","message":"Rate exceeded"}`))
}
