package reliability

import (
	"fmt"
	"testing"
	"time"

	"github.com/keyturn/keyturn/audit"
	"github.com/keyturn/keyturn/notify"
)

// TestFaultNotifyChannel makes the owners' webhook fail: first with 503
// answers, then with connection resets through a fault proxy. Each
// message is tried once more after a jittered pause, then given up, and
// the other owner channel is told that the first one is failing; when
// the receiver heals, a test message goes through again.
func TestFaultNotifyChannel(t *testing.T) {
	t.Parallel()
	backup := newReceiver()
	t.Cleanup(backup.srv.Close)
	r := newRig(t, rigOptions{proxyHook: true, owners: "[hook, backup]",
		notify: fmt.Sprintf("  - {name: backup, type: webhook, url: %q, "+
			"signing_key_file: %s/secret-hook.key, retries: 1, timeout: 2s}\n",
			backup.srv.URL, "{dir}")})
	r.start()

	r.rc.fail(2)
	if res := r.kt("", "rotate", "demo"); res.code != 0 {
		t.Fatalf("rotate: %v", res)
	}
	poll(t, 15*time.Second, "the first channel_failing notice", func() bool {
		return len(backup.accepted(notify.KindChannelFailing)) == 1
	})
	prompt := backup.accepted(notify.KindPromptCreate)
	if len(prompt) != 1 {
		t.Fatalf("the backup channel got %d prompts, want 1", len(prompt))
	}
	tries := r.rc.tries(prompt[0].ID)
	if len(tries) != 2 {
		t.Fatalf("the failing channel saw %d tries of the prompt, want 2 (retries: 1)",
			len(tries))
	}
	// notify.DefaultBackoff waits 0.5 s to 1 s before the second try.
	if g := tries[1].Sub(tries[0]); g < 450*time.Millisecond || g > 1300*time.Millisecond {
		t.Errorf("the retry came %s after the first try, want 0.5 s to 1 s", g)
	}
	if ev := backup.accepted(notify.KindChannelFailing)[0]; ev.Channel != "hook" {
		t.Errorf("the notice names channel %q, want hook", ev.Channel)
	}

	r.hookProxy.toxic("reset", "reset_peer", "upstream", map[string]int{"timeout": 0})
	if res := r.kt("", "abort", "demo"); res.code != 0 {
		t.Fatalf("abort: %v", res)
	}
	poll(t, 15*time.Second, "the second channel_failing notice", func() bool {
		return len(backup.accepted(notify.KindChannelFailing)) == 2
	})
	r.hookProxy.clear()
	if res := r.kt("", "notify", "test", "hook"); res.code != 0 {
		t.Errorf("notify test after the receiver healed: %v", res)
	}
	poll(t, 10*time.Second, "the test message", func() bool {
		return len(r.rc.accepted(notify.KindTest)) == 1
	})

	var outcomes []string
	for _, rec := range r.auditRecords() {
		// Deliveries name the channel as actor; a test names the operator.
		if rec.Kind == audit.KindNotification && (rec.Actor == "channel:hook" ||
			rec.Detail == "channel hook") {
			outcomes = append(outcomes, rec.Step+":"+rec.Outcome)
		}
	}
	want := []string{"prompt_create:retry", "prompt_create:failed", "prompt_create:retry",
		"prompt_create:failed", "test:ok"}
	if fmt.Sprint(outcomes) != fmt.Sprint(want) {
		t.Errorf("audited deliveries to hook: %v, want %v", outcomes, want)
	}
}
