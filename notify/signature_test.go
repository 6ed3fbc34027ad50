package notify

import (
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestSignKnownVector(t *testing.T) {
	// Computed independently with:
	// printf '1741080600.{"a":1}' | openssl dgst -sha256 -hmac k3y
	got := Sign([]byte("k3y"), t0, []byte(`{"a":1}`))
	want := "t=1741080600,v1=" +
		"b63acf6506cf89b38d5723b65194c9e9234d21bcfd6b9939cc92416055052f9d"
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Sign (-want +got):\n%s", diff)
	}
}

func TestVerifySignature(t *testing.T) {
	key := []byte("whsec-test-key")
	body := []byte(`{"version":1,"kind":"prompt_create"}`)
	good := Sign(key, t0, body)
	_, mac, _ := strings.Cut(good, ",v1=")
	other := Sign([]byte("another key"), t0, body)
	_, otherMAC, _ := strings.Cut(other, ",v1=")

	tests := []struct {
		name   string
		key    []byte
		header string
		body   []byte
		now    time.Time
		want   error
	}{
		{"valid", key, good, body, t0, nil},
		{"valid within tolerance", key, good, body, t0.Add(4 * time.Minute), nil},
		{"receiver clock behind", key, good, body, t0.Add(-4 * time.Minute), nil},
		{"replay after tolerance", key, good, body, t0.Add(6 * time.Minute),
			ErrSignatureExpired},
		{"signed in the future", key, good, body, t0.Add(-6 * time.Minute),
			ErrSignatureExpired},
		{"tampered body", key, good, []byte(`{"version":1,"kind":"test"}`), t0,
			ErrSignatureMismatch},
		{"wrong key", []byte("guess"), good, body, t0, ErrSignatureMismatch},
		{"time changed", key, "t=1741080601,v1=" + mac, body, t0, ErrSignatureMismatch},
		{"old key then new key", key, "t=1741080600,v1=" + otherMAC + ",v1=" + mac,
			body, t0, nil},
		{"unknown entries skipped", key, good + ",v0=abc", body, t0, nil},
		{"spaces allowed", key, "t=1741080600, v1=" + mac, body, t0, nil},
		{"empty", key, "", body, t0, ErrSignatureFormat},
		{"no mac", key, "t=1741080600", body, t0, ErrSignatureFormat},
		{"no time", key, "v1=" + mac, body, t0, ErrSignatureFormat},
		{"two times", key, "t=1,t=2,v1=" + mac, body, t0, ErrSignatureFormat},
		{"time not a number", key, "t=soon,v1=" + mac, body, t0, ErrSignatureFormat},
		{"mac not hex", key, "t=1741080600,v1=zz", body, t0, ErrSignatureFormat},
		{"mac too short", key, "t=1741080600,v1=" + mac[:10], body, t0,
			ErrSignatureFormat},
		{"no equals", key, "t1741080600", body, t0, ErrSignatureFormat},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := VerifySignature(tt.key, tt.header, tt.body, tt.now,
				DefaultSignatureTolerance)
			if !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
				t.Errorf("VerifySignature = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestSignRoundTrip(t *testing.T) {
	key := []byte("k")
	for _, body := range []string{"", "{}", strings.Repeat("x", 1<<16)} {
		h := Sign(key, t0, []byte(body))
		if err := VerifySignature(key, h, []byte(body), t0, 0); err != nil {
			t.Errorf("body of %d bytes: %v", len(body), err)
		}
	}
	// The header is the documented shape, nothing more.
	got := strings.Split(Sign(key, t0, nil), ",")
	if diff := cmp.Diff(2, len(got)); diff != "" || got[0] != "t=1741080600" {
		t.Errorf("header %q", got)
	}
}

// FuzzVerifySignature checks that the parser never panics and that no
// header is accepted without the MAC of its own time and the body.
func FuzzVerifySignature(f *testing.F) {
	f.Add("t=1741080600,v1=00", []byte("{}"))
	f.Add("t=,v1=,", []byte(""))
	f.Add(Sign([]byte("k"), t0, []byte("{}")), []byte("{}"))
	f.Fuzz(func(t *testing.T, header string, body []byte) {
		if VerifySignature([]byte("k"), header, body, t0, time.Minute) != nil {
			return
		}
		ts, _, err := parseSignature(header)
		if err != nil {
			t.Fatalf("accepted unparsable %q", header)
		}
		n, _ := strconv.ParseInt(ts, 10, 64)
		_, mac, _ := strings.Cut(Sign([]byte("k"), time.Unix(n, 0), body), ",v1=")
		if !strings.Contains(strings.ToLower(header), mac) {
			t.Errorf("accepted %q without the right MAC", header)
		}
	})
}
