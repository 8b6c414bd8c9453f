//! Hostile and broken clients over raw TCP: connections that send nothing, half
//! a head, or half a body are closed in time while everyone else is served;
//! the connection cap holds the surplus back; every rejection, down to the
//! ones the HTTP parser makes itself, is a problem document.

mod support;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use futures::future::join_all;
use serde_json::{Value, json};
use support::{Client, TestServer, code, next, open, text};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// What came back on a raw connection, and when the server closed it.
struct Raw {
    bytes: Vec<u8>,
    closed_after: Option<Duration>,
}

/// Sends `request` on a new connection, then reads until the server closes it
/// or `within` passed (both counted from the connection's opening: a few
/// hundred at once may wait for the kernel to take them). Writing may fail once
/// the server has answered and closed; what it answered is still read.
async fn raw(addr: SocketAddr, request: &[u8], within: Duration) -> Raw {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    let started = Instant::now();
    let _ = stream.write_all(request).await;
    read_to_close(&mut stream, started, within).await
}

async fn read_to_close(stream: &mut TcpStream, started: Instant, within: Duration) -> Raw {
    let mut bytes = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    let closed_after = loop {
        let left = within.saturating_sub(started.elapsed());
        match tokio::time::timeout(left, stream.read(&mut chunk)).await {
            Ok(Ok(0) | Err(_)) => break Some(started.elapsed()),
            Ok(Ok(n)) => bytes.extend_from_slice(&chunk[..n]),
            Err(_) => break None,
        }
    };
    Raw {
        bytes,
        closed_after,
    }
}

/// One response read off a raw connection.
#[derive(Debug)]
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(known, _)| known.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    /// The problem document this answer carries, checked as one.
    fn problem(&self) -> Value {
        assert_eq!(
            self.header("content-type"),
            Some("application/problem+json"),
            "{self:?}"
        );
        let problem: Value = serde_json::from_slice(&self.body).expect("a JSON problem");
        assert_eq!(problem["status"], self.status, "{problem}");
        for field in ["type", "title", "detail", "code"] {
            assert!(problem[field].is_string(), "{field} in {problem}");
        }
        problem
    }
}

/// The responses in `bytes`, in order (bodies framed by length or chunks;
/// `HEAD` answers carry none).
fn answers(mut bytes: &[u8], heads: &[bool]) -> Vec<Answer> {
    let mut answers = Vec::new();
    let mut heads = heads.iter();
    while !bytes.is_empty() {
        let end = bytes
            .windows(4)
            .position(|window| window == b"\r\n\r\n")
            .unwrap_or_else(|| panic!("a whole head in {:?}", String::from_utf8_lossy(bytes)));
        let head = std::str::from_utf8(&bytes[..end]).expect("an ASCII head");
        bytes = &bytes[end + 4..];
        let mut lines = head.split("\r\n");
        let status = lines.next().expect("a status line")[9..12]
            .parse()
            .expect("a status");
        let headers: Vec<(String, String)> = lines
            .filter_map(|line| line.split_once(':'))
            .map(|(name, value)| (name.trim().to_owned(), value.trim().to_owned()))
            .collect();
        let mut answer = Answer {
            status,
            headers,
            body: Vec::new(),
        };
        let head_request = heads.next().copied().unwrap_or(false);
        if head_request {
        } else if answer.header("transfer-encoding") == Some("chunked") {
            loop {
                let line_end = bytes.windows(2).position(|w| w == b"\r\n").expect("size");
                let size = usize::from_str_radix(
                    std::str::from_utf8(&bytes[..line_end]).expect("hex"),
                    16,
                )
                .expect("a chunk size");
                bytes = &bytes[line_end + 2..];
                if size == 0 {
                    bytes = &bytes[2..];
                    break;
                }
                answer.body.extend_from_slice(&bytes[..size]);
                bytes = &bytes[size + 2..];
            }
        } else {
            let length: usize = answer
                .header("content-length")
                .map_or(0, |length| length.parse().expect("a length"));
            answer.body = bytes[..length].to_vec();
            bytes = &bytes[length..];
        }
        answers.push(answer);
    }
    answers
}

fn header_lines(count: usize) -> Vec<u8> {
    (0..count)
        .flat_map(|n| format!("x-filler-{n}: v\r\n").into_bytes())
        .collect()
}

#[tokio::test]
async fn every_rejection_is_a_problem_document_even_the_parser_s_own() {
    let server = TestServer::sqlite().await;
    let addr = server.addr;
    let long = |n: usize| "a".repeat(n);
    let mut cases: Vec<(&str, Vec<u8>, u16, &str)> = vec![
        (
            "a negative Content-Length",
            b"POST /v1/join HTTP/1.1\r\nhost: x\r\ncontent-length: -1\r\n\r\n".to_vec(),
            400,
            "MALFORMED_REQUEST",
        ),
        (
            "a Content-Length that is no number",
            b"POST /v1/join HTTP/1.1\r\nhost: x\r\ncontent-length: ten\r\n\r\n".to_vec(),
            400,
            "MALFORMED_REQUEST",
        ),
        (
            "two Content-Lengths that disagree",
            b"POST /v1/join HTTP/1.1\r\nhost: x\r\ncontent-length: 1\r\ncontent-length: 2\r\n\r\n"
                .to_vec(),
            400,
            "MALFORMED_REQUEST",
        ),
        (
            "a body coding that is not chunked",
            b"POST /v1/join HTTP/1.1\r\nhost: x\r\ntransfer-encoding: gzip\r\n\r\n".to_vec(),
            400,
            "MALFORMED_REQUEST",
        ),
        (
            "an unknown HTTP version",
            b"GET /healthz HTTP/9.9\r\nhost: x\r\n\r\n".to_vec(),
            400,
            "MALFORMED_REQUEST",
        ),
        (
            "a header line without a colon",
            b"GET /healthz HTTP/1.1\r\nhost x\r\n\r\n".to_vec(),
            400,
            "MALFORMED_REQUEST",
        ),
        (
            "a request line that is not one",
            b"\x01\x02\x03 nonsense\r\n\r\n".to_vec(),
            400,
            "MALFORMED_REQUEST",
        ),
    ];
    let mut thousand_headers = b"GET /healthz HTTP/1.1\r\nhost: x\r\n".to_vec();
    thousand_headers.extend(header_lines(1000));
    thousand_headers.extend_from_slice(b"\r\n");
    cases.push((
        "a thousand headers",
        thousand_headers,
        431,
        "HEADERS_TOO_LARGE",
    ));
    let mut many_headers = b"GET /healthz HTTP/1.1\r\nhost: x\r\n".to_vec();
    many_headers.extend(header_lines(150));
    many_headers.extend_from_slice(b"\r\n");
    cases.push(("150 short headers", many_headers, 431, "HEADERS_TOO_LARGE"));
    for (what, size) in [
        ("a 1 MiB Authorization", 1 << 20),
        ("a 100 KiB header", 100 * 1024),
    ] {
        cases.push((
            what,
            format!(
                "GET /healthz HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {}\r\n\r\n",
                long(size)
            )
            .into_bytes(),
            431,
            "HEADERS_TOO_LARGE",
        ));
    }
    cases.push((
        "a 20 KiB header, over the limit but within the parser's buffer",
        format!(
            "GET /healthz HTTP/1.1\r\nhost: x\r\nconnection: close\r\nx-big: {}\r\n\r\n",
            long(20 * 1024)
        )
        .into_bytes(),
        431,
        "HEADERS_TOO_LARGE",
    ));
    cases.push((
        "a 100 KiB URL",
        format!("GET /{} HTTP/1.1\r\nhost: x\r\n\r\n", long(100 * 1024)).into_bytes(),
        414,
        "URI_TOO_LONG",
    ));
    cases.push((
        "a 10 KiB URL, within the parser's buffer",
        format!(
            "GET /v1/sessions?after={} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n",
            long(10 * 1024)
        )
        .into_bytes(),
        414,
        "URI_TOO_LONG",
    ));
    cases.push((
        "a path no route matches",
        b"GET /nowhere HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n".to_vec(),
        404,
        "NOT_FOUND",
    ));
    cases.push((
        "a method the resource does not support",
        b"PUT /healthz HTTP/1.1\r\nhost: x\r\nconnection: close\r\ncontent-length: 0\r\n\r\n"
            .to_vec(),
        405,
        "METHOD_NOT_ALLOWED",
    ));
    let replies = join_all(
        cases
            .iter()
            .map(|(_, request, _, _)| raw(addr, request, Duration::from_secs(10))),
    )
    .await;
    for ((what, _, status, expected), reply) in cases.iter().zip(replies) {
        assert!(
            reply.closed_after.is_some(),
            "{what}: the connection closes"
        );
        let answers = answers(&reply.bytes, &[]);
        let [answer] = answers.as_slice() else {
            panic!("{what}: one answer, got {answers:?}");
        };
        assert_eq!(answer.status, *status, "{what}: {answer:?}");
        let problem = answer.problem();
        assert_eq!(code(&problem), *expected, "{what}: {problem}");
    }
}

#[tokio::test]
async fn the_parser_s_rejection_follows_answers_of_every_framing_on_one_connection() {
    let server = TestServer::sqlite().await;
    let api = server.client();
    let created = api
        .post("/v1/sessions", &server.admin_key, json!({}), 201)
        .await;
    let path = format!("/v1/sessions/{}", text(&created, "/session/id"));
    let host = text(&created, "/host/token");
    api.post(&format!("{path}/close"), host, json!({}), 200)
        .await;
    // Pipelined: a JSON answer, a HEAD answer (a length, no body), a whole
    // event stream of a closed session (chunked, until its end), then a head
    // the parser refuses.
    let request = format!(
        "GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n\
         HEAD /healthz HTTP/1.1\r\nhost: x\r\n\r\n\
         GET {path}/events HTTP/1.1\r\nhost: x\r\naccept: text/event-stream\r\nauthorization: Bearer {host}\r\n\r\n\
         GET /healthz HTTP/1.1\r\nhost: x\r\ncontent-length: -1\r\n\r\n"
    );
    let reply = raw(server.addr, request.as_bytes(), Duration::from_secs(10)).await;
    assert!(reply.closed_after.is_some());
    let answers = answers(&reply.bytes, &[false, true, false, false]);
    let statuses: Vec<u16> = answers.iter().map(|answer| answer.status).collect();
    assert_eq!(statuses, [200, 200, 200, 400], "{answers:?}");
    assert_eq!(answers[0].body, br#"{"status":"ok"}"#);
    let stream = String::from_utf8_lossy(&answers[2].body);
    assert!(stream.contains("event: session.closed"), "{stream}");
    assert_eq!(code(&answers[3].problem()), "MALFORMED_REQUEST");
    assert_eq!(answers[3].header("connection"), Some("close"));
    server.stop().await;
}

/// The next `comment.posted` of a stream (other events are skipped).
async fn comment(stream: &mut support::Events) -> eventsource_stream::Event {
    loop {
        let event = next(stream).await.expect("the stream is open");
        if event.event == "comment.posted" {
            return event;
        }
    }
}

/// Deadlines short enough for a test.
fn quick(config: &mut tandem::Config) {
    config.connections.header_timeout = Duration::from_secs(1);
    config.connections.keep_alive_timeout = Duration::from_secs(2);
    config.connections.body_timeout = Duration::from_secs(1);
}

#[tokio::test]
async fn silent_and_half_sent_connections_close_in_time_while_others_are_served() {
    // Hundreds of sockets on both ends of each connection, in this process.
    tandem::raise_open_file_limit();
    let server = TestServer::sqlite_with(quick).await;
    let api = server.client();
    let created = api
        .post("/v1/sessions", &server.admin_key, json!({}), 201)
        .await;
    let path = format!("/v1/sessions/{}", text(&created, "/session/id"));
    let host = text(&created, "/host/token").to_owned();
    let mut stream = open(&api.base, &format!("{path}/events"), Some(&host), None).await;

    let addr = server.addr;
    let attacks = [
        Vec::new(),
        b"GET /healthz HTTP/1.1\r\nhost: x\r\n".to_vec(),
        b"POST /v1/join HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{\"inviteToken\"".to_vec(),
    ];
    let hostile: Vec<_> = (0..300)
        .map(|n| {
            let request = attacks[n % 3].clone();
            tokio::spawn(async move { (n % 3, raw(addr, &request, Duration::from_secs(10)).await) })
        })
        .collect();

    // Meanwhile everyone else is served, streams included.
    for n in 0..5 {
        api.post(
            &format!("{path}/comments"),
            &host,
            json!({ "text": format!("still here {n}") }),
            201,
        )
        .await;
        let event = comment(&mut stream).await;
        assert!(
            event.data.contains(&format!("still here {n}")),
            "{}",
            event.data
        );
    }

    for task in hostile {
        let (kind, reply) = task.await.expect("task");
        let closed = reply
            .closed_after
            .unwrap_or_else(|| panic!("attack {kind}: the connection is still open after 10 s"));
        assert!(
            closed >= Duration::from_millis(900) && closed < Duration::from_secs(4),
            "attack {kind}: closed after {closed:?}, the deadline is 1 s"
        );
        if kind == 2 {
            // The half-sent body's request is answered: too late.
            let answers = answers(&reply.bytes, &[]);
            assert_eq!(answers.len(), 1, "{answers:?}");
            assert_eq!(answers[0].status, 408);
            assert_eq!(code(&answers[0].problem()), "REQUEST_TIMEOUT");
        } else {
            assert!(reply.bytes.is_empty(), "attack {kind}: {:?}", reply.bytes);
        }
    }

    // A kept-alive connection may go quiet for the keep-alive time, then it
    // is closed; a next request that begins must be whole within the header
    // time of its first byte.
    let quiet = async {
        let mut idle = TcpStream::connect(addr).await.expect("connect");
        idle.write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n")
            .await
            .expect("write");
        let reply = read_to_close(&mut idle, Instant::now(), Duration::from_secs(10)).await;
        let closed = reply.closed_after.expect("an idle connection is closed");
        assert!(
            closed >= Duration::from_millis(1900) && closed < Duration::from_secs(5),
            "closed after {closed:?}; the keep-alive time is 2 s"
        );
        assert_eq!(answers(&reply.bytes, &[])[0].status, 200);
    };
    let half_next = async {
        let mut half = TcpStream::connect(addr).await.expect("connect");
        half.write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n")
            .await
            .expect("write");
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let began = Instant::now();
        half.write_all(b"GET /healthz HTTP/1.1\r\n")
            .await
            .expect("write");
        let reply = read_to_close(&mut half, began, Duration::from_secs(10)).await;
        let closed = reply.closed_after.expect("a half-sent head is closed");
        assert!(
            closed >= Duration::from_millis(900) && closed < Duration::from_secs(3),
            "closed {closed:?} after the head began; the header time is 1 s"
        );
        assert_eq!(
            answers(&reply.bytes, &[]).len(),
            1,
            "the first request was answered"
        );
    };
    tokio::join!(quiet, half_next);

    // A body that trickles in within its deadline is read.
    let body = json!({ "title": "trickled" }).to_string();
    let mut slow = TcpStream::connect(addr).await.expect("connect");
    slow.write_all(
        format!(
            "POST /v1/sessions HTTP/1.1\r\nhost: x\r\nconnection: close\r\nauthorization: Bearer {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
            server.admin_key,
            body.len()
        )
        .as_bytes(),
    )
    .await
    .expect("head");
    for piece in body.as_bytes().chunks(body.len() / 3 + 1) {
        tokio::time::sleep(Duration::from_millis(200)).await;
        slow.write_all(piece).await.expect("piece");
    }
    let reply = read_to_close(&mut slow, Instant::now(), Duration::from_secs(10)).await;
    assert_eq!(answers(&reply.bytes, &[])[0].status, 201);

    // The stream outlived every deadline and still delivers.
    api.post(
        &format!("{path}/comments"),
        &host,
        json!({ "text": "after the deadlines" }),
        201,
    )
    .await;
    let event = comment(&mut stream).await;
    assert!(event.data.contains("after the deadlines"), "{}", event.data);
    server.stop().await;
}

#[tokio::test]
async fn connections_over_the_cap_wait_until_one_closes() {
    let server = TestServer::sqlite_with(|config| {
        config.connections.header_timeout = Duration::from_secs(2);
        config.connections.max_connections = Some(20);
    })
    .await;
    let addr = server.addr;
    // Twenty silent connections take every slot...
    let silent: Vec<TcpStream> = join_all((0..20).map(|_| TcpStream::connect(addr)))
        .await
        .into_iter()
        .map(|connected| connected.expect("connect"))
        .collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    // ...so the next client waits for them to time out, then is served.
    let started = Instant::now();
    let api = Client::new(&format!("http://{addr}"));
    tokio::time::timeout(
        Duration::from_secs(10),
        api.get("/v1/sessions", &server.admin_key, 200),
    )
    .await
    .expect("served within 10 s");
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(1200) && waited < Duration::from_secs(8),
        "served after {waited:?}; the silent connections held every slot for 2 s"
    );
    let metrics = support::http_client()
        .get(format!("http://{addr}/metrics"))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    let reached: f64 = metrics
        .lines()
        .find_map(|line| line.strip_prefix("tandem_http_connection_limit_reached_total "))
        .expect("the limit is counted")
        .parse()
        .expect("a count");
    assert!(reached >= 1.0, "{metrics}");
    drop(silent);
    server.stop().await;
}
