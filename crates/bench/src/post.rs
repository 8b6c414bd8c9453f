//! A lean writer: one keep-alive TCP connection sending JSON `POST`s one after
//! another, with just enough HTTP/1.1 to read each answer's status and skip its
//! body. The durable-write scenarios use it so that the load
//! generator's own cost stays small next to the server's.

use std::net::SocketAddr;

use anyhow::{Context, bail};
use memchr::memmem;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

static HEAD_END: std::sync::LazyLock<memmem::Finder<'static>> =
    std::sync::LazyLock::new(|| memmem::Finder::new(b"\r\n\r\n"));

/// One keep-alive connection.
#[derive(Debug)]
pub(crate) struct Poster {
    socket: TcpStream,
    addr: SocketAddr,
    request: Vec<u8>,
    answer: Vec<u8>,
}

impl Poster {
    pub(crate) async fn connect(addr: SocketAddr) -> anyhow::Result<Self> {
        let socket = TcpStream::connect(addr)
            .await
            .with_context(|| format!("cannot connect to {addr}"))?;
        socket.set_nodelay(true)?;
        Ok(Self {
            socket,
            addr,
            request: Vec::with_capacity(512),
            answer: Vec::with_capacity(2048),
        })
    }

    /// Posts `body` to `path` as `token`; the answer's status once the whole
    /// answer is read.
    pub(crate) async fn post(
        &mut self,
        path: &str,
        token: &str,
        body: &str,
    ) -> anyhow::Result<u16> {
        use std::io::Write as _;
        self.request.clear();
        write!(
            self.request,
            "POST {path} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {token}\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            self.addr,
            body.len()
        )?;
        self.socket.write_all(&self.request).await?;
        self.answer.clear();
        let head_end = loop {
            if let Some(at) = HEAD_END.find(&self.answer) {
                break at + 4;
            }
            if self.socket.read_buf(&mut self.answer).await? == 0 {
                bail!("the server closed the connection");
            }
        };
        let head = std::str::from_utf8(&self.answer[..head_end]).context("a non-UTF-8 head")?;
        let status = head
            .get(9..12)
            .and_then(|code| code.parse().ok())
            .context("no status in the answer")?;
        let length: usize = head
            .lines()
            .find_map(|line| {
                let (name, value) = line.split_once(':')?;
                name.eq_ignore_ascii_case("content-length")
                    .then(|| value.trim().parse().ok())?
            })
            .context("an answer without Content-Length")?;
        while self.answer.len() < head_end + length {
            if self.socket.read_buf(&mut self.answer).await? == 0 {
                bail!("the server closed the connection mid-answer");
            }
        }
        Ok(status)
    }
}
