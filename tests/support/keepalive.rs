//! A keep-alive HTTP/1.1 load on loopback: connections held open across requests, as browsers and apps do,
//! counting every socket error, every non-2xx answer and every order the shop acknowledged.

pub use super::load::Load;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// What one request is.
#[derive(Debug, Clone)]
pub enum Request {
    Get(String),
    /// `POST path` with a JSON body.
    Post(String, String),
}

/// What the load saw.
#[derive(Debug, Default, Clone)]
pub struct Stats {
    pub ok: u64,
    pub non_2xx: u64,
    /// Reads or writes that failed on an open connection, and connections that could not be opened.
    pub socket_errors: u64,
    /// Connections nginx closed after a complete answer (`Connection: close`, e.g. at `keepalive_requests`).
    pub closed_by_server: u64,
    /// The first few failures, for the test's message.
    pub failures: Vec<String>,
    /// Every request's time, in microseconds.
    pub latencies_us: Vec<u64>,
    /// The bodies of 2xx answers to POSTs (what the shop acknowledged).
    pub acknowledged: Vec<String>,
}

impl super::load::Tally for Stats {
    fn add(&mut self, other: Stats) {
        self.ok += other.ok;
        self.non_2xx += other.non_2xx;
        self.socket_errors += other.socket_errors;
        self.closed_by_server += other.closed_by_server;
        self.latencies_us.extend(other.latencies_us);
        self.acknowledged.extend(other.acknowledged);
        for f in other.failures {
            if self.failures.len() < 10 {
                self.failures.push(f);
            }
        }
    }
}

impl Stats {
    fn fail(&mut self, what: String) {
        if self.failures.len() < 10 {
            self.failures.push(what);
        }
    }

    /// How many requests took longer than `d`.
    pub fn slower_than(&self, d: Duration) -> usize {
        let us = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        self.latencies_us.iter().filter(|&&l| l > us).count()
    }

    /// The `q` quantile of the request times (`0.99`: p99).
    pub fn quantile(&self, q: f64) -> Duration {
        let mut v = self.latencies_us.clone();
        if v.is_empty() {
            return Duration::ZERO;
        }
        v.sort_unstable();
        #[allow(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            clippy::cast_precision_loss
        )]
        let i = ((v.len() - 1) as f64 * q).round() as usize;
        Duration::from_micros(v[i])
    }
}

/// Opens `connections` keep-alive connections to `127.0.0.1:port`, each sending `request` `rate` times a second.
pub fn start(
    port: u16,
    request: &Request,
    connections: usize,
    rate: u32,
    limit: Duration,
) -> Load<Stats> {
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().expect("address");
    let request = request.clone();
    super::load::spawn(connections, move |stop| {
        run(addr, &request, rate, limit, stop)
    })
}

fn run(
    addr: SocketAddr,
    request: &Request,
    rate: u32,
    limit: Duration,
    stop: &AtomicBool,
) -> Stats {
    let mut stats = Stats::default();
    let started = Instant::now();
    let period = Duration::from_secs_f64(1.0 / f64::from(rate.max(1)));
    let mut next = Instant::now();
    let mut conn: Option<BufReader<TcpStream>> = None;
    while !stop.load(Ordering::Relaxed) && started.elapsed() < limit {
        let t0 = Instant::now();
        if conn.is_none() {
            match connect(addr) {
                Ok(c) => conn = Some(c),
                Err(e) => {
                    stats.socket_errors += 1;
                    stats.fail(format!("connect: {e}"));
                    std::thread::sleep(period);
                    continue;
                }
            }
        }
        let c = conn.as_mut().expect("connected");
        match exchange(c, request) {
            Ok(answer) => {
                #[allow(clippy::cast_possible_truncation)]
                stats.latencies_us.push(t0.elapsed().as_micros() as u64);
                if (200..300).contains(&answer.status) {
                    stats.ok += 1;
                    if matches!(request, Request::Post(..)) {
                        stats.acknowledged.push(answer.body);
                    }
                } else {
                    stats.non_2xx += 1;
                    stats.fail(format!("HTTP {}: {}", answer.status, answer.body));
                }
                if answer.close {
                    stats.closed_by_server += 1;
                    conn = None;
                }
            }
            Err(e) => {
                stats.socket_errors += 1;
                stats.fail(format!("on an open connection: {e}"));
                conn = None;
            }
        }
        super::load::pace(&mut next, period);
    }
    stats
}

fn connect(addr: SocketAddr) -> std::io::Result<BufReader<TcpStream>> {
    let s = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    s.set_read_timeout(Some(Duration::from_secs(15)))?;
    s.set_nodelay(true)?;
    Ok(BufReader::new(s))
}

struct Answer {
    status: u16,
    body: String,
    close: bool,
}

/// One request and its answer on an open connection.
fn exchange(c: &mut BufReader<TcpStream>, request: &Request) -> std::io::Result<Answer> {
    let text = match request {
        Request::Get(path) => format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n"),
        Request::Post(path, body) => format!(
            "POST {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        ),
    };
    c.get_mut().write_all(text.as_bytes())?;
    let mut line = String::new();
    if c.read_line(&mut line)? == 0 {
        return Err(std::io::Error::other(
            "the connection was closed before an answer",
        ));
    }
    let status = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("not an HTTP status line: {line:?}")))?;
    let (mut length, mut chunked, mut close) = (None, false, false);
    loop {
        line.clear();
        if c.read_line(&mut line)? == 0 {
            return Err(std::io::Error::other(
                "the connection was closed inside the headers",
            ));
        }
        let header = line.trim_end();
        if header.is_empty() {
            break;
        }
        let Some((name, value)) = header.split_once(':') else {
            continue;
        };
        let (name, value) = (name.trim().to_ascii_lowercase(), value.trim());
        match name.as_str() {
            "content-length" => length = value.parse::<usize>().ok(),
            "transfer-encoding" => chunked = value.eq_ignore_ascii_case("chunked"),
            "connection" => close = value.eq_ignore_ascii_case("close"),
            _ => {}
        }
    }
    let mut body = Vec::new();
    if chunked {
        loop {
            line.clear();
            c.read_line(&mut line)?;
            let size = usize::from_str_radix(line.trim().split(';').next().unwrap_or(""), 16)
                .map_err(|_| std::io::Error::other(format!("a bad chunk size: {line:?}")))?;
            let mut chunk = vec![0; size + 2];
            c.read_exact(&mut chunk)?;
            if size == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..size]);
        }
    } else if let Some(n) = length {
        body.resize(n, 0);
        c.read_exact(&mut body)?;
    } else {
        c.read_to_end(&mut body)?;
        close = true;
    }
    Ok(Answer {
        status,
        body: String::from_utf8_lossy(&body).into_owned(),
        close,
    })
}
