// Command broker measures the token broker against a bare net/http
// handler that returns a constant token, in the same run, on loopback.
//
// It starts itself a second time as the server process (a whole keyturn
// daemon with its audit log on disk, the Smartcar emulator, and the bare
// handler), then drives both with the same number of concurrent
// consumers from this process and reports throughput, p50 and p99 for
// each and the broker's ratios to the bare handler.
//
//	go run ./bench/broker -consumers 64 -duration 10s
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"
)

// addrs is what the server process tells the load process.
type addrs struct {
	Broker  string `json:"broker"`
	Bare    string `json:"bare"`
	KeyFile string `json:"key_file"`
	Dir     string `json:"dir"`
}

// result is one measured target.
type result struct {
	name     string
	requests int
	errors   int
	elapsed  time.Duration
	p50, p99 time.Duration
}

func (r result) rps() float64 { return float64(r.requests) / r.elapsed.Seconds() }

func main() {
	serve := flag.Bool("serve", false, "run as the server process (internal)")
	dir := flag.String("dir", "", "state and audit folder (default: a new temp folder)")
	consumers := flag.Int("consumers", 64, "concurrent consumers")
	duration := flag.Duration("duration", 10*time.Second, "measuring time per target")
	warmup := flag.Duration("warmup", 2*time.Second, "unmeasured time per target")
	rounds := flag.Int("rounds", 2, "alternating rounds of bare and broker")
	profile := flag.String("cpuprofile", "", "write the server process's CPU profile here")
	rate := flag.Float64("rate", 0, "open loop: total requests per second, spread over "+
		"the consumers, latency counted from each request's scheduled time "+
		"(default: closed loop, each consumer sends as soon as it has an answer)")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	if *serve {
		err = runServer(ctx, *dir, *profile)
	} else {
		err = runLoad(ctx, *dir, *profile, plan{consumers: *consumers, duration: *duration,
			warmup: *warmup, rounds: *rounds, rate: *rate})
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "broker bench: error:", err)
		os.Exit(1)
	}
}

// runLoad starts the server process, measures both targets and prints
// the report.
// plan is how to load each target.
type plan struct {
	consumers        int
	duration, warmup time.Duration
	rounds           int
	rate             float64 // total per second; 0 is closed loop
}

func runLoad(ctx context.Context, dir, profile string, p plan) error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, self, "-serve", "-dir", dir, "-cpuprofile", profile)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start server process: %w", err)
	}
	defer func() { cmd.Process.Signal(syscall.SIGTERM); cmd.Wait() }()
	var a addrs
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || json.Unmarshal([]byte(line), &a) != nil {
		return fmt.Errorf("server process did not say where it listens: %v", err)
	}
	key, err := os.ReadFile(a.KeyFile)
	if err != nil {
		return err
	}
	fmt.Printf("server pid %d, audit and state in %s\n", cmd.Process.Pid, a.Dir)
	mode := "closed loop"
	if p.rate > 0 {
		mode = fmt.Sprintf("open loop at %.0f req/s", p.rate)
	}
	fmt.Printf("%d consumers, %s, %v per target per round, %d rounds\n\n", p.consumers,
		mode, p.duration, p.rounds)
	targets := []target{
		{name: "bare", url: a.Bare + "/v1/apps/demo/token"},
		{name: "broker", url: a.Broker + "/v1/apps/demo/token",
			key: strings.TrimSpace(string(key))},
	}
	res := map[string][]result{}
	for range p.rounds {
		for _, t := range targets {
			load(ctx, t, p, p.warmup)
			r := load(ctx, t, p, p.duration)
			res[t.name] = append(res[t.name], r)
			report(r)
		}
	}
	summary(res["bare"], res["broker"])
	return nil
}

// target is one URL under load, with the bearer key it needs.
type target struct {
	name, url, key string
}

// load drives t with p's consumers for d and measures every request.
func load(ctx context.Context, t target, p plan, d time.Duration) result {
	n := p.consumers
	var every time.Duration // between one consumer's requests, open loop
	if p.rate > 0 {
		every = time.Duration(float64(n) / p.rate * float64(time.Second))
	}
	tr := &http.Transport{MaxIdleConns: n, MaxIdleConnsPerHost: n, MaxConnsPerHost: n}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()

	lat := make([][]time.Duration, n)
	errs := make([]int, n)
	start := time.Now()
	var wg sync.WaitGroup
	for i := range n {
		lat[i] = make([]time.Duration, 0, 1<<16)
		wg.Go(func() { lat[i], errs[i] = consume(ctx, hc, t, every, lat[i]) })
	}
	wg.Wait()
	elapsed := time.Since(start)

	all := slices.Concat(lat...)
	slices.Sort(all)
	r := result{name: t.name, requests: len(all), elapsed: elapsed}
	for _, e := range errs {
		r.errors += e
	}
	if len(all) > 0 {
		r.p50, r.p99 = all[len(all)/2], all[len(all)*99/100]
	}
	return r
}

// consume sends requests until ctx ends, recording the latency of each
// successful one: back to back, or one per every when every is set, with
// latency counted from the time the request was due so that a slow
// answer is not hidden by the requests it delayed.
func consume(ctx context.Context, hc *http.Client, t target, every time.Duration,
	lat []time.Duration) ([]time.Duration, int) {
	errs := 0
	due := time.Now().Add(time.Duration(rand.Int64N(int64(max(every, 1)))))
	for ctx.Err() == nil {
		req, _ := http.NewRequest("GET", t.url, nil)
		if t.key != "" {
			req.Header.Set("Authorization", "Bearer "+t.key)
		}
		begin := time.Now()
		if every > 0 {
			time.Sleep(time.Until(due))
			begin, due = due, due.Add(every)
		}
		resp, err := hc.Do(req)
		if err != nil {
			errs++
			continue
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		took := time.Since(begin)
		if resp.StatusCode != http.StatusOK {
			errs++
			continue
		}
		lat = append(lat, took)
	}
	return lat, errs
}

func report(r result) {
	fmt.Printf("%-7s %8.0f req/s  p50 %7s  p99 %7s  (%d requests, %d errors)\n", r.name,
		r.rps(), r.p50.Round(time.Microsecond), r.p99.Round(time.Microsecond),
		r.requests, r.errors)
}

// summary prints the best round of each target and the broker's ratios.
func summary(bare, broker []result) {
	best := func(rs []result) result {
		return slices.MaxFunc(rs, func(a, b result) int {
			return int(a.rps() - b.rps())
		})
	}
	b, k := best(bare), best(broker)
	fmt.Printf("\nbest rounds:\n")
	report(b)
	report(k)
	fmt.Printf("\nbroker/bare throughput %.2f (goal >= 0.60), "+
		"broker p99 %s (goal <= 2ms), p99 ratio %.1fx\n", k.rps()/b.rps(),
		k.p99.Round(time.Microsecond), float64(k.p99)/float64(b.p99))
}
