package smartcar

import (
	"errors"
	"fmt"
	"net/http"
	"testing"
	"time"
)

func TestParseRetryAfter(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
	}{
		{"", 0},
		{"0", 0},
		{" 30 ", 30 * time.Second},
		{"-5", 0},
		{"1.5", 0},
		{"soon", 0},
		{"99999999999999999999", maxRetryAfter},
		{"86401", maxRetryAfter},
		{fixedNow.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second},
		{fixedNow.Add(-time.Hour).Format(http.TimeFormat), 0},
		{fixedNow.Add(48 * time.Hour).Format(http.TimeFormat), maxRetryAfter},
	}
	for _, tc := range tests {
		if got := parseRetryAfter(tc.in, fixedNow); got != tc.want {
			t.Errorf("parseRetryAfter(%q) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

func TestClass(t *testing.T) {
	tests := []struct {
		err  error
		want string
	}{
		{nil, ClassOK},
		{ErrInvalidClient, ClassInvalidClient},
		{fmt.Errorf("outer: %w", &RequestError{Err: ErrInvalidRequest}),
			ClassInvalidRequest},
		{&RateLimitError{RetryAfter: time.Second}, ClassRateLimited},
		{fmt.Errorf("%w: x", ErrTransient), ClassTransient},
		{errors.New("boom"), ClassOther},
	}
	for _, tc := range tests {
		if got := Class(tc.err); got != tc.want {
			t.Errorf("Class(%v) = %q, want %q", tc.err, got, tc.want)
		}
	}
}

func TestScrub(t *testing.T) {
	tests := []struct {
		in   string
		n    int
		want string
	}{
		{"short", 10, "short"},
		{"a SECRET b", 100, "a [redacted] b"},
		{"xxSECRET", 4, "xx[r…"},
		{"héllo", 2, "h…"},
	}
	for _, tc := range tests {
		if got := scrub(tc.in, tc.n, "SECRET"); got != tc.want {
			t.Errorf("scrub(%q, %d) = %q, want %q", tc.in, tc.n, got, tc.want)
		}
	}
}

func TestRateLimitErrorText(t *testing.T) {
	err := &RateLimitError{RetryAfter: 30 * time.Second, Detail: "slow"}
	want := `rate_limited: too many token requests, retry after 30s: server said "slow"`
	if got := err.Error(); got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}

func TestDashboardURL(t *testing.T) {
	tests := []struct {
		template, id, want string
	}{
		{"", "client_abc123", "https://dashboard.smartcar.com/team/" +
			"applications/client_abc123/configuration"},
		{"https://x.test/apps/{client_id}?tab=creds", "a b/c",
			"https://x.test/apps/a%20b%2Fc?tab=creds"},
		{"https://x.test/static", "id", "https://x.test/static"},
	}
	for _, tc := range tests {
		if got := DashboardURL(tc.template, tc.id); got != tc.want {
			t.Errorf("DashboardURL(%q, %q) = %q, want %q",
				tc.template, tc.id, got, tc.want)
		}
	}
}
