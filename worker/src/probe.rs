//! What answers at the coordinator's address when registering fails: a plain HTTP/1.1 server
//! (the coordinator's web view, `--http`, is the usual one) is told apart from a coordinator that
//! is not up yet, so the worker says what is wrong at once instead of retrying for its whole
//! patience.

use std::io::{Read as _, Write as _};
use std::net::{TcpStream, ToSocketAddrs as _};
use std::time::Duration;

/// How long each step of the probe may take (connecting, writing, reading).
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);
/// Longest status line kept for the message.
const MAX_LINE: usize = 80;

/// The status line (`HTTP/1.1 200 OK`) of a plain HTTP/1 server at the `http://` URL `url`, or
/// `None` when nothing answers, something else answers (a gRPC server), or the URL is not plain
/// `http://`.
pub async fn http1_status_line(url: &str) -> Option<String> {
    let url = url.to_owned();
    tokio::task::spawn_blocking(move || probe(&url))
        .await
        .ok()
        .flatten()
}

fn probe(url: &str) -> Option<String> {
    let uri: tonic::codegen::http::Uri = url.parse().ok()?;
    if uri.scheme_str() != Some("http") {
        return None;
    }
    let host = uri.host()?;
    let port = uri.port_u16().unwrap_or(80);
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    let addr = (bare, port).to_socket_addrs().ok()?.next()?;
    let mut stream = TcpStream::connect_timeout(&addr, PROBE_TIMEOUT).ok()?;
    stream.set_read_timeout(Some(PROBE_TIMEOUT)).ok()?;
    stream.set_write_timeout(Some(PROBE_TIMEOUT)).ok()?;
    let request = format!("GET / HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).ok()?;
    let mut buf = vec![0u8; 256];
    let mut len = 0;
    while len < buf.len() {
        let n = stream.read(&mut buf[len..]).ok()?;
        if n == 0 {
            break;
        }
        len += n;
        if buf[..len].contains(&b'\n') {
            break;
        }
    }
    let text = String::from_utf8_lossy(&buf[..len]);
    let line = text.lines().next()?.trim();
    line.starts_with("HTTP/1.").then(|| {
        line.chars()
            .filter(|c| !c.is_control())
            .take(MAX_LINE)
            .collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tells_a_plain_http_server_from_silence() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            let mut buf = [0u8; 512];
            let _ = s.read(&mut buf).unwrap();
            s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
                .unwrap();
        });
        let line = probe(&format!("http://{addr}"));
        assert_eq!(line.as_deref(), Some("HTTP/1.1 200 OK"));
        server.join().unwrap();
        // Nothing listening there any more; https is not probed.
        assert_eq!(probe(&format!("http://{addr}")), None);
        assert_eq!(probe(&format!("https://{addr}")), None);
    }
}
