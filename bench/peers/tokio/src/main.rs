//! peer_tokio: the Tokio peer for spindle's benchmark comparison.
//!
//! Usage: `peer_tokio --workload NAME --workers N [--quick]`
//! Prints one line `RESULT {json}` on stdout and exits 0.
//!
//! Written the way Tokio's own docs and tutorial write these things:
//! `tokio::spawn` + `JoinHandle`, `tokio::sync` primitives, `tokio::time`.
//! Tokio tasks are stackless: each is a heap-allocated state machine
//! (the `async` block's future) sized at compile time, with no stack of its
//! own, so a task costs one allocation of its future's size; recursion needs
//! a spawn or a `Box::pin` to break the type cycle. `--workers N` builds
//! `Builder::new_multi_thread().worker_threads(N).enable_all()` before the
//! clock starts. Every workload runs inside one spawned root task (so its
//! spawns go to a worker's local queue, as in a real Tokio program, not
//! through the injection queue that `block_on`'s thread would use), and the
//! root task times only the workload itself.
//!
//! Workloads (full size / --quick size):
//!   skynet          10-ary tree of tasks, 1M leaves (1,111,111 tasks) / 100K;
//!                   each node spawns 10 children and awaits their JoinHandles
//!                   in order, summing the results.
//!   spawn_join      one task spawns N `async {}` tasks, keeps every
//!                   JoinHandle in a Vec, awaits them in spawn order.
//!                   N = 1M / 100K. Value: ns per task.
//!   yield           2*workers tasks each `tokio::task::yield_now().await`
//!                   Y times; root awaits their JoinHandles.
//!                   Y = 1M / 100K. Value: ns per yield.
//!   pingpong        two tasks, two `tokio::sync::mpsc::channel(1)` (one each
//!                   way): mpsc is what Tokio's tutorial uses for a stream of
//!                   messages between two tasks (oneshot is for a single
//!                   reply). R round trips, R = 200K / 20K. Value: ns per trip.
//!   sleepers        N tasks each `tokio::time::sleep(1 s)` (quick: 0.2 s), all
//!                   spawned first, then their JoinHandles awaited.
//!                   N = 1M / 100K. Value: wall ms.
//!   sleepers_event  N tasks wait on one `tokio::sync::Notify`: each creates
//!                   its `notified()` future (Tokio guarantees a Notified
//!                   receives `notify_waiters()` from creation on), bumps an
//!                   atomic counter, awaits. Root waits (yield_now loop) for
//!                   the counter to reach N, calls `notify_waiters()` once,
//!                   awaits all JoinHandles. Notify is Tokio's event primitive;
//!                   a watch channel would add a Receiver clone per task.
//!                   N = 1M / 100K. Value: wall ms.
//!   gather_10k      G rounds: spawn 10,000 tasks returning their index, await
//!                   the JoinHandles in order, check the sum.
//!                   G = 50 / 5. Value: ns per task.
//!   queue_mpmc      Tokio has no MPMC channel; uses `async_channel::bounded(1024)`
//!                   (smol-rs async-channel, runtime-agnostic, the usual choice
//!                   with Tokio). `workers` producers, `workers` consumers;
//!                   M items in total. M = 1M / 100K. Value: ns per item.
//!   mutex_contended 4*workers tasks each lock one `tokio::sync::Mutex<u64>`
//!                   K times and increment it. (Tokio's docs note a std Mutex
//!                   is often preferable for short critical sections; the
//!                   async mutex is used because the comparison is of async
//!                   mutexes.) K = 100K / 10K. Value: ns per lock.

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::task::JoinHandle;

/// What one workload reports: wall time, item count and self-check.
struct Outcome {
    wall: Duration,
    n: u64,
    /// `None`: value is wall ms. `Some(d)`: value is wall ns / d.
    per: Option<u64>,
    check: String,
}

fn ok_or(cond: bool, why: impl FnOnce() -> String) -> String {
    if cond {
        "ok".to_string()
    } else {
        format!("FAIL: {}", why())
    }
}

// ---- skynet ----

// Not `async fn`: spawning a recursive `async fn` cannot prove the future is
// `Send` (E0283); naming `+ Send + 'static` in the signature breaks the cycle.
// No extra Box: each child future lives only in its spawned task.
#[allow(clippy::manual_async_fn)]
fn skynet(num: u64, size: u64) -> impl Future<Output = u64> + Send + 'static {
    async move {
        if size == 1 {
            return num;
        }
        let step = size / 10;
        let children: [JoinHandle<u64>; 10] =
            std::array::from_fn(|i| tokio::spawn(skynet(num + i as u64 * step, step)));
        let mut sum = 0;
        for child in children {
            sum += child.await.expect("skynet child panicked");
        }
        sum
    }
}

async fn run_skynet(quick: bool) -> Outcome {
    let leaves: u64 = if quick { 100_000 } else { 1_000_000 };
    let want = leaves * (leaves - 1) / 2;
    let start = Instant::now();
    let sum = skynet(0, leaves).await;
    let wall = start.elapsed();
    Outcome {
        wall,
        n: (leaves * 10 - 1) / 9,
        per: None,
        check: ok_or(sum == want, || format!("sum {sum} != {want}")),
    }
}

// ---- spawn_join ----

async fn run_spawn_join(quick: bool) -> Outcome {
    let n: usize = if quick { 100_000 } else { 1_000_000 };
    let start = Instant::now();
    let mut handles = Vec::with_capacity(n);
    for _ in 0..n {
        handles.push(tokio::spawn(async {}));
    }
    let mut joined = 0usize;
    for h in handles {
        h.await.expect("empty task panicked");
        joined += 1;
    }
    let wall = start.elapsed();
    Outcome {
        wall,
        n: n as u64,
        per: Some(n as u64),
        check: ok_or(joined == n, || format!("joined {joined} of {n}")),
    }
}

// ---- yield ----

async fn run_yield(quick: bool, workers: usize) -> Outcome {
    let y: u64 = if quick { 100_000 } else { 1_000_000 };
    let tasks = 2 * workers as u64;
    let start = Instant::now();
    let handles: Vec<JoinHandle<u64>> = (0..tasks)
        .map(|_| {
            tokio::spawn(async move {
                for _ in 0..y {
                    tokio::task::yield_now().await;
                }
                y
            })
        })
        .collect();
    let mut total = 0;
    for h in handles {
        total += h.await.expect("yield task panicked");
    }
    let wall = start.elapsed();
    let n = tasks * y;
    Outcome {
        wall,
        n,
        per: Some(n),
        check: ok_or(total == n, || format!("yields {total} != {n}")),
    }
}

// ---- pingpong ----

async fn run_pingpong(quick: bool) -> Outcome {
    let r: u64 = if quick { 20_000 } else { 200_000 };
    let (ping_tx, mut ping_rx) = tokio::sync::mpsc::channel::<u64>(1);
    let (pong_tx, mut pong_rx) = tokio::sync::mpsc::channel::<u64>(1);
    let start = Instant::now();
    // B: echoes each token back, incremented. A is this (root) task.
    let b = tokio::spawn(async move {
        while let Some(v) = ping_rx.recv().await {
            if pong_tx.send(v + 1).await.is_err() {
                break;
            }
        }
    });
    let mut token = 0u64;
    for _ in 0..r {
        ping_tx.send(token).await.expect("B hung up");
        token = pong_rx.recv().await.expect("B hung up");
    }
    drop(ping_tx);
    b.await.expect("B panicked");
    let wall = start.elapsed();
    Outcome {
        wall,
        n: r,
        per: Some(r),
        check: ok_or(token == r, || format!("token {token} != {r}")),
    }
}

// ---- sleepers ----

async fn run_sleepers(quick: bool) -> Outcome {
    let (n, d) = if quick {
        (100_000usize, Duration::from_millis(200))
    } else {
        (1_000_000usize, Duration::from_secs(1))
    };
    let start = Instant::now();
    let handles: Vec<JoinHandle<()>> = (0..n)
        .map(|_| tokio::spawn(async move { tokio::time::sleep(d).await }))
        .collect();
    let mut woke = 0usize;
    for h in handles {
        h.await.expect("sleeper panicked");
        woke += 1;
    }
    let wall = start.elapsed();
    Outcome {
        wall,
        n: n as u64,
        per: None,
        check: ok_or(woke == n && wall >= d, || {
            format!("woke {woke} of {n} in {wall:?}")
        }),
    }
}

// ---- sleepers_event ----

async fn run_sleepers_event(quick: bool) -> Outcome {
    let n: usize = if quick { 100_000 } else { 1_000_000 };
    let event = Arc::new(tokio::sync::Notify::new());
    let waiting = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let handles: Vec<JoinHandle<()>> = (0..n)
        .map(|_| {
            let event = event.clone();
            let waiting = waiting.clone();
            tokio::spawn(async move {
                let notified = event.notified();
                waiting.fetch_add(1, Ordering::Release);
                notified.await;
            })
        })
        .collect();
    while waiting.load(Ordering::Acquire) < n {
        tokio::task::yield_now().await;
    }
    event.notify_waiters();
    let mut woke = 0usize;
    for h in handles {
        h.await.expect("waiter panicked");
        woke += 1;
    }
    let wall = start.elapsed();
    Outcome {
        wall,
        n: n as u64,
        per: None,
        check: ok_or(woke == n, || format!("woke {woke} of {n}")),
    }
}

// ---- gather_10k ----

async fn run_gather(quick: bool) -> Outcome {
    let g: u64 = if quick { 5 } else { 50 };
    const K: u64 = 10_000;
    let mut check = "ok".to_string();
    let start = Instant::now();
    for round in 0..g {
        let handles: Vec<JoinHandle<u64>> =
            (0..K).map(|i| tokio::spawn(async move { i })).collect();
        let mut sum = 0u64;
        for h in handles {
            sum += h.await.expect("gather task panicked");
        }
        if sum != 49_995_000 && check == "ok" {
            check = format!("FAIL: round {round} sum {sum} != 49995000");
        }
    }
    let wall = start.elapsed();
    Outcome {
        wall,
        n: g * K,
        per: Some(g * K),
        check,
    }
}

// ---- queue_mpmc ----

async fn run_queue(quick: bool, workers: usize) -> Outcome {
    let m: u64 = if quick { 100_000 } else { 1_000_000 };
    let producers = workers.max(1) as u64;
    let consumers = workers.max(1);
    let (tx, rx) = async_channel::bounded::<u64>(1024);
    let start = Instant::now();
    let cons: Vec<JoinHandle<u64>> = (0..consumers)
        .map(|_| {
            let rx = rx.clone();
            tokio::spawn(async move {
                let mut s = 0u64;
                while let Ok(v) = rx.recv().await {
                    s += v;
                }
                s
            })
        })
        .collect();
    drop(rx);
    let per = m / producers;
    let prods: Vec<JoinHandle<()>> = (0..producers)
        .map(|p| {
            let tx = tx.clone();
            let lo = p * per;
            let hi = if p == producers - 1 { m } else { lo + per };
            tokio::spawn(async move {
                for v in lo..hi {
                    tx.send(v).await.expect("consumers hung up");
                }
            })
        })
        .collect();
    drop(tx); // the channel closes when the last producer's Sender drops
    for p in prods {
        p.await.expect("producer panicked");
    }
    let mut total = 0u64;
    for c in cons {
        total += c.await.expect("consumer panicked");
    }
    let wall = start.elapsed();
    let want = m * (m - 1) / 2;
    Outcome {
        wall,
        n: m,
        per: Some(m),
        check: ok_or(total == want, || format!("sum {total} != {want}")),
    }
}

// ---- mutex_contended ----

async fn run_mutex(quick: bool, workers: usize) -> Outcome {
    let k: u64 = if quick { 10_000 } else { 100_000 };
    let tasks = 4 * workers as u64;
    let counter = Arc::new(tokio::sync::Mutex::new(0u64));
    let start = Instant::now();
    let handles: Vec<JoinHandle<()>> = (0..tasks)
        .map(|_| {
            let counter = counter.clone();
            tokio::spawn(async move {
                for _ in 0..k {
                    *counter.lock().await += 1;
                }
            })
        })
        .collect();
    for h in handles {
        h.await.expect("mutex task panicked");
    }
    let wall = start.elapsed();
    let n = tasks * k;
    let got = *counter.lock().await;
    Outcome {
        wall,
        n,
        per: Some(n),
        check: ok_or(got == n, || format!("counter {got} != {n}")),
    }
}

// ---- driver ----

fn json_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

const WORKLOADS: &[&str] = &[
    "skynet",
    "spawn_join",
    "yield",
    "pingpong",
    "sleepers",
    "sleepers_event",
    "gather_10k",
    "queue_mpmc",
    "mutex_contended",
];

fn usage() -> ! {
    eprintln!("usage: peer_tokio --workload NAME --workers N [--quick]");
    std::process::exit(2);
}

fn main() {
    let mut workload = String::new();
    let mut workers = 1usize;
    let mut quick = false;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--workload" => workload = args.next().unwrap_or_else(|| usage()),
            "--workers" => {
                workers = args
                    .next()
                    .and_then(|v| v.parse().ok())
                    .filter(|&w| w >= 1)
                    .unwrap_or_else(|| usage())
            }
            "--quick" => quick = true,
            _ => usage(),
        }
    }
    let head = format!(
        "\"runtime\":\"tokio\",\"workload\":{},\"workers\":{}",
        json_str(&workload),
        workers
    );
    if !WORKLOADS.contains(&workload.as_str()) {
        println!("RESULT {{{head},\"unsupported\":true,\"reason\":\"unknown workload\"}}");
        return;
    }

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let name = workload.clone();
    let o = rt.block_on(async move {
        tokio::spawn(async move {
            match name.as_str() {
                "skynet" => run_skynet(quick).await,
                "spawn_join" => run_spawn_join(quick).await,
                "yield" => run_yield(quick, workers).await,
                "pingpong" => run_pingpong(quick).await,
                "sleepers" => run_sleepers(quick).await,
                "sleepers_event" => run_sleepers_event(quick).await,
                "gather_10k" => run_gather(quick).await,
                "queue_mpmc" => run_queue(quick, workers).await,
                "mutex_contended" => run_mutex(quick, workers).await,
                _ => unreachable!(),
            }
        })
        .await
        .expect("root task panicked")
    });
    let (value, unit) = match o.per {
        None => (o.wall.as_nanos() as f64 / 1e6, "ms"),
        Some(d) => (o.wall.as_nanos() as f64 / d as f64, "ns"),
    };
    println!(
        "RESULT {{{head},\"value\":{value:.3},\"unit\":\"{unit}\",\"n\":{},\"check\":{}}}",
        o.n,
        json_str(&o.check)
    );
    // Exiting without dropping `rt` skips the shutdown of a runtime that may
    // still hold a million completed-task allocations; that is not workload.
    std::process::exit(0);
}
