//! A scripted HTTP server on 127.0.0.1 for the fault tests: the n-th request gets the n-th
//! reply of the script (the last one repeats), and every request is recorded. It stops when
//! dropped, and by itself after a minute.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What the server does with one request.
#[derive(Clone, Debug)]
pub enum Reply {
    /// Answers with a status, extra headers and a body.
    Status(u16, Vec<(&'static str, String)>, String),
    /// Waits, then answers 200 with the body.
    Slow(Duration, String),
    /// Reads the request and never answers (until the server stops).
    Hang,
    /// Announces `Content-Length` of the whole body but sends only its first half, then
    /// closes the connection.
    Truncated(String),
}

/// A 200 with a JSON body.
pub fn ok(body: &str) -> Reply {
    Reply::Status(200, vec![], body.to_string())
}

/// A recorded request.
#[derive(Clone, Debug)]
pub struct Seen {
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

pub struct Stub {
    pub url: String,
    seen: Arc<Mutex<Vec<Seen>>>,
    stop: Arc<AtomicBool>,
    /// Most requests in progress at once.
    pub peak: Arc<AtomicUsize>,
}

impl Stub {
    pub fn start(script: Vec<Reply>) -> Stub {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let peak = Arc::new(AtomicUsize::new(0));
        let live = Arc::new(AtomicUsize::new(0));
        let script = Arc::new(script);
        let (seen2, stop2, peak2) = (seen.clone(), stop.clone(), peak.clone());
        std::thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(60);
            let n = Arc::new(AtomicUsize::new(0));
            while !stop2.load(Ordering::Relaxed) && Instant::now() < deadline {
                match listener.accept() {
                    Ok((stream, _)) => {
                        let (script, seen, stop, n, live, peak) = (
                            script.clone(),
                            seen2.clone(),
                            stop2.clone(),
                            n.clone(),
                            live.clone(),
                            peak2.clone(),
                        );
                        std::thread::spawn(move || {
                            let now = live.fetch_add(1, Ordering::SeqCst) + 1;
                            peak.fetch_max(now, Ordering::SeqCst);
                            serve(stream, &script, &seen, &stop, &n);
                            live.fetch_sub(1, Ordering::SeqCst);
                        });
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(2)),
                }
            }
        });
        Stub {
            url,
            seen,
            stop,
            peak,
        }
    }

    /// Requests received so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

impl Drop for Stub {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn serve(
    stream: TcpStream,
    script: &[Reply],
    seen: &Mutex<Vec<Seen>>,
    stop: &AtomicBool,
    n: &AtomicUsize,
) {
    stream.set_nonblocking(false).unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut line = String::new();
    if reader.read_line(&mut line).unwrap_or(0) == 0 {
        return;
    }
    let path = line.split_whitespace().nth(1).unwrap_or("").to_string();
    let mut headers = Vec::new();
    let mut len = 0usize;
    loop {
        let mut h = String::new();
        reader.read_line(&mut h).unwrap();
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            if k.eq_ignore_ascii_case("content-length") {
                len = v.trim().parse().unwrap();
            }
            headers.push((k.to_lowercase(), v.trim().to_string()));
        }
    }
    let mut body = vec![0; len];
    reader.read_exact(&mut body).unwrap();
    seen.lock().unwrap().push(Seen {
        path,
        headers,
        body: String::from_utf8(body).unwrap(),
    });
    let i = n.fetch_add(1, Ordering::SeqCst);
    let reply = script[i.min(script.len() - 1)].clone();
    let mut out = stream;
    let head = |status: u16, extra: &[(&str, String)], len: usize| {
        let mut h = format!(
            "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {len}\r\nConnection: close\r\n"
        );
        for (k, v) in extra {
            h.push_str(&format!("{k}: {v}\r\n"));
        }
        h + "\r\n"
    };
    match reply {
        Reply::Status(status, extra, body) => {
            let _ = out.write_all((head(status, &extra, body.len()) + &body).as_bytes());
        }
        Reply::Slow(d, body) => {
            std::thread::sleep(d);
            let _ = out.write_all((head(200, &[], body.len()) + &body).as_bytes());
        }
        Reply::Hang => {
            let until = Instant::now() + Duration::from_secs(30);
            while !stop.load(Ordering::Relaxed) && Instant::now() < until {
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        Reply::Truncated(body) => {
            let half = &body[..body.len() / 2];
            let _ = out.write_all((head(200, &[], body.len()) + half).as_bytes());
            let _ = out.flush();
        }
    }
}
