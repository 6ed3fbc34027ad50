package secret

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

const canary = "CANARY-sk-7c0ffee-4242-do-not-leak"

func TestValueNeverPrints(t *testing.T) {
	v := New(canary)
	type wrapper struct {
		S Value
		P *Value
	}
	w := wrapper{S: v, P: &v}

	var outs []string
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d", "%T", "%10s", "%-8v"} {
		outs = append(outs, fmt.Sprintf(verb, v), fmt.Sprintf(verb, w))
	}
	outs = append(outs, v.String(), v.GoString(), fmt.Sprint(v), fmt.Sprintln(&v))

	js, err := json.Marshal(w)
	if err != nil {
		t.Fatal(err)
	}
	outs = append(outs, string(js))
	txt, _ := v.MarshalText()
	outs = append(outs, string(txt))

	var buf bytes.Buffer
	for _, h := range []slog.Handler{slog.NewJSONHandler(&buf, nil), slog.NewTextHandler(&buf, nil)} {
		l := slog.New(h)
		l.Info("x", "secret", v, "w", w, "p", &v)
	}
	outs = append(outs, buf.String())
	err = fmt.Errorf("wrapping %v: %w", v, fmt.Errorf("inner %s", v))
	outs = append(outs, err.Error())

	for _, o := range outs {
		if strings.Contains(o, canary) || strings.Contains(o, "434e415259") {
			t.Errorf("secret leaked: %q", o)
		}
	}
	if v.Reveal() != canary {
		t.Fatalf("Reveal = %q", v.Reveal())
	}
}

func TestFingerprint(t *testing.T) {
	a, b := New("alpha-secret"), New("beta-secret")
	tests := []struct {
		name string
		got  Fingerprint
		want Fingerprint
	}{
		{"stable", a.Fingerprint(), New("alpha-secret").Fingerprint()},
		{"bytes", FingerprintOf([]byte("alpha-secret")), a.Fingerprint()},
		{"empty", Value{}.Fingerprint(), ""},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%s: got %q, want %q", tt.name, tt.got, tt.want)
		}
	}
	if a.Fingerprint() == b.Fingerprint() {
		t.Error("different secrets share a fingerprint")
	}
	if fp := string(a.Fingerprint()); len(fp) != 19 || !strings.HasPrefix(fp, "fp_") {
		t.Errorf("fingerprint shape %q", fp)
	}
	if got := a.Fingerprint().Short(); len(got) != 8 {
		t.Errorf("Short = %q", got)
	}
}

func TestEqual(t *testing.T) {
	if !New("x").Equal(New("x")) || New("x").Equal(New("y")) || !(Value{}).IsZero() {
		t.Fatal("Equal/IsZero wrong")
	}
}
