// Command peer_go is the Go peer for spindle's benchmark comparison.
//
// Usage: peer_go --workload NAME --workers N [--quick]
// Prints one line `RESULT {json}` on stdout and exits 0.
//
// Written the way Go's own docs and the Go community write these things:
// goroutines, channels, sync.WaitGroup, sync.Mutex; standard library only.
// Goroutines start on 2 KiB stacks that the runtime grows by copying, so a
// goroutine is a stackful task, like spindle's fibers. --workers N sets
// runtime.GOMAXPROCS(N) (Ps running Go code at once) before the clock starts.
// The main goroutine is the root task and times only the workload itself.
//
// Workloads (full size / --quick size):
//
//	skynet          10-ary tree of goroutines, 1M leaves (1,111,111 goroutines)
//	                / 100K. Each node makes a chan int of capacity 10 and sums
//	                the ten replies from its children: the classic Go skynet.
//	spawn_join      one goroutine starts N empty goroutines, each with its own
//	                "handle": a chan struct{} that the goroutine closes when it
//	                returns; then receives from every handle in spawn order.
//	                (A sync.WaitGroup is cheaper but is not a per-task join.)
//	                N = 1M / 100K. Value: ns per task.
//	yield           2*workers goroutines each call runtime.Gosched() Y times,
//	                WaitGroup for all. Y = 1M / 100K. Value: ns per yield.
//	pingpong        two goroutines, two chans of capacity 1 (one each way);
//	                R round trips. R = 200K / 20K. Value: ns per round trip.
//	sleepers        N goroutines each time.Sleep(1s) (quick: 0.2s), all
//	                started first, WaitGroup. N = 1M / 100K. Value: wall ms.
//	sleepers_event  N goroutines increment an atomic counter then block on one
//	                chan struct{}; main waits for the counter to reach N, closes
//	                the channel once, WaitGroup. N = 1M / 100K. Value: wall ms.
//	gather_10k      G rounds of 10,000 goroutines, goroutine i stores i into
//	                results[i] (Go's way to "return" from a goroutine), WaitGroup,
//	                then sum in order. G = 50 / 5. Value: ns per task.
//	queue_mpmc      buffered chan int of capacity 1024, `workers` producers and
//	                `workers` consumers; producers send M ints in total, the
//	                channel is closed when all producers are done, consumers
//	                range over it and sum. M = 1M / 100K. Value: ns per item.
//	mutex_contended 4*workers goroutines each Lock/Unlock one sync.Mutex K
//	                times incrementing a shared counter. K = 100K / 10K.
//	                Value: ns per lock.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

type result struct {
	Runtime     string  `json:"runtime"`
	Workload    string  `json:"workload"`
	Workers     int     `json:"workers"`
	Value       float64 `json:"value,omitempty"`
	Unit        string  `json:"unit,omitempty"`
	N           int64   `json:"n,omitempty"`
	Check       string  `json:"check,omitempty"`
	Unsupported bool    `json:"unsupported,omitempty"`
	Reason      string  `json:"reason,omitempty"`
}

// outcome is what one workload reports: its wall time, its item count
// (tasks, yields, round trips, ...) and its self-check.
type outcome struct {
	wall  time.Duration
	n     int64
	unit  string // "ms" (wall) or "ns" (wall / perItems)
	per   int64  // divisor for "ns" units
	check string
}

func okOr(cond bool, format string, args ...any) string {
	if cond {
		return "ok"
	}
	return "FAIL: " + fmt.Sprintf(format, args...)
}

// ---- skynet ----

func skynet(c chan<- int64, num, size int64) {
	if size == 1 {
		c <- num
		return
	}
	rc := make(chan int64, 10)
	for i := int64(0); i < 10; i++ {
		go skynet(rc, num+i*(size/10), size/10)
	}
	var sum int64
	for i := 0; i < 10; i++ {
		sum += <-rc
	}
	c <- sum
}

func runSkynet(quick bool) outcome {
	leaves := int64(1_000_000)
	if quick {
		leaves = 100_000
	}
	want := leaves * (leaves - 1) / 2
	start := time.Now()
	c := make(chan int64, 1)
	go skynet(c, 0, leaves)
	sum := <-c
	wall := time.Since(start)
	return outcome{wall, (leaves*10 - 1) / 9, "ms", 0, okOr(sum == want, "sum %d != %d", sum, want)}
}

// ---- spawn_join ----

func runSpawnJoin(quick bool) outcome {
	n := 1_000_000
	if quick {
		n = 100_000
	}
	start := time.Now()
	handles := make([]chan struct{}, n)
	for i := range handles {
		done := make(chan struct{})
		handles[i] = done
		go func() { close(done) }() // the empty task; closing is its "return"
	}
	joined := 0
	for _, h := range handles {
		<-h
		joined++
	}
	wall := time.Since(start)
	return outcome{wall, int64(n), "ns", int64(n), okOr(joined == n, "joined %d of %d", joined, n)}
}

// ---- yield ----

func runYield(quick bool, workers int) outcome {
	y := 1_000_000
	if quick {
		y = 100_000
	}
	tasks := 2 * workers
	var wg sync.WaitGroup
	var total atomic.Int64
	start := time.Now()
	wg.Add(tasks)
	for t := 0; t < tasks; t++ {
		go func() {
			defer wg.Done()
			for i := 0; i < y; i++ {
				runtime.Gosched()
			}
			total.Add(int64(y))
		}()
	}
	wg.Wait()
	wall := time.Since(start)
	n := int64(tasks) * int64(y)
	return outcome{wall, n, "ns", n, okOr(total.Load() == n, "yields %d != %d", total.Load(), n)}
}

// ---- pingpong ----

func runPingPong(quick bool) outcome {
	r := 200_000
	if quick {
		r = 20_000
	}
	ping := make(chan int, 1)
	pong := make(chan int, 1)
	start := time.Now()
	go func() { // B: echoes each token back, incremented.
		for v := range ping {
			pong <- v + 1
		}
		close(pong)
	}()
	token := 0
	for i := 0; i < r; i++ { // A
		ping <- token
		token = <-pong
	}
	close(ping)
	<-pong // B has finished
	wall := time.Since(start)
	return outcome{wall, int64(r), "ns", int64(r), okOr(token == r, "token %d != %d", token, r)}
}

// ---- sleepers ----

func runSleepers(quick bool) outcome {
	n := 1_000_000
	d := time.Second
	if quick {
		n = 100_000
		d = 200 * time.Millisecond
	}
	var wg sync.WaitGroup
	var woke atomic.Int64
	start := time.Now()
	wg.Add(n)
	for i := 0; i < n; i++ {
		go func() {
			defer wg.Done()
			time.Sleep(d)
			woke.Add(1)
		}()
	}
	wg.Wait()
	wall := time.Since(start)
	check := okOr(woke.Load() == int64(n) && wall >= d, "woke %d of %d in %v", woke.Load(), n, wall)
	return outcome{wall, int64(n), "ms", 0, check}
}

// ---- sleepers_event ----

func runSleepersEvent(quick bool) outcome {
	n := 1_000_000
	if quick {
		n = 100_000
	}
	var wg sync.WaitGroup
	var waiting, woke atomic.Int64
	event := make(chan struct{})
	start := time.Now()
	wg.Add(n)
	for i := 0; i < n; i++ {
		go func() {
			defer wg.Done()
			waiting.Add(1)
			<-event
			woke.Add(1)
		}()
	}
	for waiting.Load() < int64(n) {
		runtime.Gosched()
	}
	close(event)
	wg.Wait()
	wall := time.Since(start)
	return outcome{wall, int64(n), "ms", 0, okOr(woke.Load() == int64(n), "woke %d of %d", woke.Load(), n)}
}

// ---- gather_10k ----

func runGather(quick bool) outcome {
	g := 50
	if quick {
		g = 5
	}
	const k = 10_000
	results := make([]int64, k)
	check := "ok"
	var wg sync.WaitGroup
	start := time.Now()
	for round := 0; round < g; round++ {
		wg.Add(k)
		for i := 0; i < k; i++ {
			go func(i int) {
				defer wg.Done()
				results[i] = int64(i)
			}(i)
		}
		wg.Wait()
		var sum int64
		for _, v := range results {
			sum += v
		}
		if sum != 49_995_000 && check == "ok" {
			check = fmt.Sprintf("FAIL: round %d sum %d != 49995000", round, sum)
		}
		for i := range results {
			results[i] = -1 // a round that forgot a task cannot pass on stale data
		}
	}
	wall := time.Since(start)
	n := int64(g) * k
	return outcome{wall, n, "ns", n, check}
}

// ---- queue_mpmc ----

func runQueue(quick bool, workers int) outcome {
	m := int64(1_000_000)
	if quick {
		m = 100_000
	}
	producers, consumers := max1(workers), max1(workers)
	q := make(chan int64, 1024)
	var prodWG, consWG sync.WaitGroup
	sums := make([]int64, consumers)
	start := time.Now()
	consWG.Add(consumers)
	for c := 0; c < consumers; c++ {
		go func(c int) {
			defer consWG.Done()
			var s int64
			for v := range q {
				s += v
			}
			sums[c] = s
		}(c)
	}
	prodWG.Add(producers)
	per := m / int64(producers)
	for p := 0; p < producers; p++ {
		lo := int64(p) * per
		hi := lo + per
		if p == producers-1 {
			hi = m
		}
		go func() {
			defer prodWG.Done()
			for v := lo; v < hi; v++ {
				q <- v
			}
		}()
	}
	prodWG.Wait()
	close(q)
	consWG.Wait()
	wall := time.Since(start)
	var total int64
	for _, s := range sums {
		total += s
	}
	want := m * (m - 1) / 2
	return outcome{wall, m, "ns", m, okOr(total == want, "sum %d != %d", total, want)}
}

func max1(x int) int {
	if x < 1 {
		return 1
	}
	return x
}

// ---- mutex_contended ----

func runMutex(quick bool, workers int) outcome {
	k := 100_000
	if quick {
		k = 10_000
	}
	tasks := 4 * workers
	var mu sync.Mutex
	var counter int64
	var wg sync.WaitGroup
	start := time.Now()
	wg.Add(tasks)
	for t := 0; t < tasks; t++ {
		go func() {
			defer wg.Done()
			for i := 0; i < k; i++ {
				mu.Lock()
				counter++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	wall := time.Since(start)
	n := int64(tasks) * int64(k)
	return outcome{wall, n, "ns", n, okOr(counter == n, "counter %d != %d", counter, n)}
}

func main() {
	workload := flag.String("workload", "", "workload name")
	workers := flag.Int("workers", 1, "GOMAXPROCS")
	quick := flag.Bool("quick", false, "small sizes")
	flag.Parse()
	if *workers < 1 {
		fmt.Fprintln(os.Stderr, "--workers must be >= 1")
		os.Exit(2)
	}
	runtime.GOMAXPROCS(*workers)

	var o outcome
	switch *workload {
	case "skynet":
		o = runSkynet(*quick)
	case "spawn_join":
		o = runSpawnJoin(*quick)
	case "yield":
		o = runYield(*quick, *workers)
	case "pingpong":
		o = runPingPong(*quick)
	case "sleepers":
		o = runSleepers(*quick)
	case "sleepers_event":
		o = runSleepersEvent(*quick)
	case "gather_10k":
		o = runGather(*quick)
	case "queue_mpmc":
		o = runQueue(*quick, *workers)
	case "mutex_contended":
		o = runMutex(*quick, *workers)
	default:
		emit(result{Runtime: "go", Workload: *workload, Workers: *workers,
			Unsupported: true, Reason: "unknown workload"})
		return
	}
	r := result{Runtime: "go", Workload: *workload, Workers: *workers, Unit: o.unit, N: o.n, Check: o.check}
	if o.unit == "ms" {
		r.Value = float64(o.wall.Nanoseconds()) / 1e6
	} else {
		r.Value = float64(o.wall.Nanoseconds()) / float64(o.per)
	}
	emit(r)
}

func emit(r result) {
	b, err := json.Marshal(r)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Printf("RESULT %s\n", b)
}
