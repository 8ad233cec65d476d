//! A steady, bounded HTTP load on loopback: a few threads, each at a fixed rate, counting every failure.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// What the load saw.
#[derive(Debug, Default, Clone)]
pub struct Stats {
    pub ok: u64,
    pub non_2xx: u64,
    pub errors: u64,
    /// The first few failures, for the test's message.
    pub failures: Vec<String>,
    pub max_latency: Duration,
}

/// What each thread of a load counts, added up when the load stops.
pub trait Tally: Default + Send + 'static {
    fn add(&mut self, other: Self);
}

/// A running load: `threads` threads, each running one closure until told to stop. `stop` ends it and adds up
/// what the threads counted.
pub struct Load<S: Tally = Stats> {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<S>>,
}

/// Starts `threads` threads, each running `run` with the flag that tells it to stop.
pub fn spawn<S: Tally>(
    threads: usize,
    run: impl Fn(&AtomicBool) -> S + Send + Sync + Clone + 'static,
) -> Load<S> {
    let stop = Arc::new(AtomicBool::new(false));
    let threads = (0..threads)
        .map(|_| {
            let stop = stop.clone();
            let run = run.clone();
            std::thread::spawn(move || run(&stop))
        })
        .collect();
    Load { stop, threads }
}

impl<S: Tally> Load<S> {
    pub fn stop(self) -> S {
        self.stop.store(true, Ordering::Relaxed);
        let mut total = S::default();
        for t in self.threads {
            if let Ok(s) = t.join() {
                total.add(s);
            }
        }
        total
    }
}

/// Sleeps until the next request is due (`period` after the last one was due), or not at all when the load is
/// behind, which then starts counting again from now.
pub fn pace(next: &mut Instant, period: Duration) {
    *next += period;
    if let Some(wait) = next.checked_duration_since(Instant::now()) {
        std::thread::sleep(wait);
    } else {
        *next = Instant::now();
    }
}

impl Tally for Stats {
    fn add(&mut self, other: Stats) {
        self.ok += other.ok;
        self.non_2xx += other.non_2xx;
        self.errors += other.errors;
        self.max_latency = self.max_latency.max(other.max_latency);
        for f in other.failures {
            if self.failures.len() < 10 {
                self.failures.push(f);
            }
        }
    }
}

/// Starts `threads` threads, each sending `GET path` (one connection per request) `rate` times a second.
pub fn start(port: u16, path: &str, threads: usize, rate: u32, limit: Duration) -> Load {
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().expect("address");
    let path = path.to_string();
    spawn(threads, move |stop| {
        let mut stats = Stats::default();
        let started = Instant::now();
        let period = Duration::from_secs_f64(1.0 / f64::from(rate.max(1)));
        let mut next = Instant::now();
        while !stop.load(Ordering::Relaxed) && started.elapsed() < limit {
            let t0 = Instant::now();
            match request(addr, &path) {
                Ok(code) if (200..300).contains(&code) => stats.ok += 1,
                Ok(code) => {
                    stats.non_2xx += 1;
                    if stats.failures.len() < 10 {
                        stats.failures.push(format!("HTTP {code}"));
                    }
                }
                Err(e) => {
                    stats.errors += 1;
                    if stats.failures.len() < 10 {
                        stats.failures.push(e.to_string());
                    }
                }
            }
            stats.max_latency = stats.max_latency.max(t0.elapsed());
            pace(&mut next, period);
        }
        stats
    })
}

fn request(addr: SocketAddr, path: &str) -> std::io::Result<u16> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    s.set_read_timeout(Some(Duration::from_secs(15)))?;
    s.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").as_bytes(),
    )?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf)?;
    let head = String::from_utf8_lossy(&buf[..buf.len().min(64)]).into_owned();
    head.split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("not an HTTP response: {head:?}")))
}
