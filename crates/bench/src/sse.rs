//! A lean SSE subscriber: one raw TCP connection, an HTTP/1.1 request, a chunked
//! decoder and a frame splitter, so that ten thousand of them cost the load
//! generator little (a small buffer and a task each) and what is measured is the
//! server, not the client.

use std::net::SocketAddr;

use anyhow::{Context, bail};
use memchr::memmem;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Bytes read from the socket at a time.
const READ_SIZE: usize = 4096;
/// The longest response head accepted.
const MAX_HEAD: usize = 16 * 1024;

/// Finders built once: building one costs more than a search of a frame.
static HEAD_END: std::sync::LazyLock<memmem::Finder<'static>> =
    std::sync::LazyLock::new(|| memmem::Finder::new(b"\r\n\r\n"));
static FRAME_END: std::sync::LazyLock<memmem::Finder<'static>> =
    std::sync::LazyLock::new(|| memmem::Finder::new(b"\n\n"));

/// One SSE frame as it arrived.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Frame<'a> {
    /// The `id:` field: the event's seq.
    pub(crate) seq: u64,
    /// The `event:` field: the event's type.
    pub(crate) event: &'a [u8],
    /// The `data:` field: the event as JSON.
    pub(crate) data: &'a [u8],
}

/// An open event stream.
#[derive(Debug)]
pub(crate) struct Stream {
    socket: TcpStream,
    decoder: Decoder,
}

impl Stream {
    /// Opens `GET /v1/sessions/{session}/events?after={after}` as `token`, and reads
    /// the response head: an error unless it is `200` and chunked.
    pub(crate) async fn open(
        addr: SocketAddr,
        session: &str,
        token: &str,
        after: u64,
    ) -> anyhow::Result<Self> {
        let mut socket = TcpStream::connect(addr)
            .await
            .with_context(|| format!("cannot connect to {addr}"))?;
        socket.set_nodelay(true)?;
        let request = format!(
            "GET /v1/sessions/{session}/events?after={after} HTTP/1.1\r\nHost: {addr}\r\n\
             Authorization: Bearer {token}\r\nAccept: text/event-stream\r\n\r\n"
        );
        socket.write_all(request.as_bytes()).await?;
        let mut raw = Vec::with_capacity(READ_SIZE);
        let head_end = loop {
            if let Some(at) = HEAD_END.find(&raw) {
                break at + 4;
            }
            if raw.len() > MAX_HEAD {
                bail!("the response head is longer than {MAX_HEAD} bytes");
            }
            if socket.read_buf(&mut raw).await? == 0 {
                bail!("the server closed the connection before answering");
            }
        };
        let head = String::from_utf8_lossy(&raw[..head_end]).to_ascii_lowercase();
        if !head.starts_with("http/1.1 200") {
            let status = head.lines().next().unwrap_or_default().to_owned();
            bail!("the stream was refused: {status}");
        }
        if !head.contains("transfer-encoding: chunked") {
            bail!("the stream is not chunked");
        }
        raw.drain(..head_end);
        Ok(Self {
            socket,
            decoder: Decoder::new(raw),
        })
    }

    /// Waits for more of the stream and hands every whole frame to `each`. False
    /// once the stream has ended (the server ended it or closed the connection).
    pub(crate) async fn next(&mut self, mut each: impl FnMut(Frame<'_>)) -> anyhow::Result<bool> {
        self.decoder.raw.reserve(READ_SIZE);
        let read = self.socket.read_buf(&mut self.decoder.raw).await?;
        let open = self.decoder.drain(&mut each)?;
        Ok(open && read > 0)
    }
}

/// Where the chunked decoder is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Chunk {
    /// Expecting a chunk-size line.
    Size,
    /// Inside a chunk, with this many bytes left.
    Data(usize),
    /// Expecting the CRLF after a chunk's data.
    End,
    /// The last (empty) chunk arrived: the stream is over.
    Done,
}

/// Chunked transfer decoding and SSE frame splitting over the bytes read so far.
#[derive(Debug)]
struct Decoder {
    /// Bytes read and not yet decoded.
    raw: Vec<u8>,
    /// Decoded body bytes not yet a whole frame.
    text: Vec<u8>,
    chunk: Chunk,
}

impl Decoder {
    fn new(raw: Vec<u8>) -> Self {
        Self {
            raw,
            text: Vec::new(),
            chunk: Chunk::Size,
        }
    }

    /// Decodes what was read and hands every whole frame to `each`; false once the
    /// last chunk has arrived.
    fn drain(&mut self, each: &mut impl FnMut(Frame<'_>)) -> anyhow::Result<bool> {
        let mut at = 0;
        loop {
            match self.chunk {
                Chunk::Size => {
                    let Some(newline) = memchr::memchr(b'\n', &self.raw[at..]) else {
                        break;
                    };
                    let line = &self.raw[at..at + newline];
                    let size = line.split(|b| *b == b';').next().unwrap_or_default();
                    let size = std::str::from_utf8(size)
                        .ok()
                        .and_then(|size| usize::from_str_radix(size.trim(), 16).ok())
                        .context("a malformed chunk size")?;
                    at += newline + 1;
                    self.chunk = if size == 0 {
                        Chunk::Done
                    } else {
                        Chunk::Data(size)
                    };
                }
                Chunk::Data(left) => {
                    let take = left.min(self.raw.len() - at);
                    self.text.extend_from_slice(&self.raw[at..at + take]);
                    at += take;
                    if take < left {
                        self.chunk = Chunk::Data(left - take);
                        break;
                    }
                    self.chunk = Chunk::End;
                }
                Chunk::End => {
                    if self.raw.len() - at < 2 {
                        break;
                    }
                    at += 2;
                    self.chunk = Chunk::Size;
                }
                Chunk::Done => break,
            }
        }
        self.raw.drain(..at);
        let mut start = 0;
        while let Some(end) = FRAME_END.find(&self.text[start..]) {
            if let Some(frame) = parse(&self.text[start..start + end]) {
                each(frame);
            }
            start += end + 2;
        }
        self.text.drain(..start);
        Ok(self.chunk != Chunk::Done)
    }
}

/// One frame's fields; `None` for a frame without an id (`retry:`, a comment).
fn parse(block: &[u8]) -> Option<Frame<'_>> {
    let mut seq = None;
    let mut event: &[u8] = b"message";
    let mut data: &[u8] = b"";
    for line in block.split(|b| *b == b'\n') {
        if let Some(value) = line.strip_prefix(b"id: ") {
            seq = std::str::from_utf8(value).ok()?.parse().ok();
        } else if let Some(value) = line.strip_prefix(b"event: ") {
            event = value;
        } else if let Some(value) = line.strip_prefix(b"data: ") {
            data = value;
        }
    }
    Some(Frame {
        seq: seq?,
        event,
        data,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The frames the decoder finds in `wire` read `step` bytes at a time, and
    /// whether the stream is still open at the end.
    fn frames(wire: &[u8], step: usize) -> (Vec<(u64, String, String)>, bool) {
        let mut decoder = Decoder::new(Vec::new());
        let mut out = Vec::new();
        let mut open = true;
        for piece in wire.chunks(step) {
            decoder.raw.extend_from_slice(piece);
            open = decoder
                .drain(&mut |frame: Frame<'_>| {
                    out.push((
                        frame.seq,
                        String::from_utf8_lossy(frame.event).into_owned(),
                        String::from_utf8_lossy(frame.data).into_owned(),
                    ));
                })
                .expect("well-formed");
        }
        (out, open)
    }

    /// `body` in chunks of the given sizes (cycled).
    fn chunked(body: &str, sizes: &[usize]) -> Vec<u8> {
        let mut wire = Vec::new();
        let mut rest = body.as_bytes();
        for size in sizes.iter().copied().cycle() {
            if rest.is_empty() {
                break;
            }
            let (piece, tail) = rest.split_at(size.min(rest.len()));
            wire.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
            wire.extend_from_slice(piece);
            wire.extend_from_slice(b"\r\n");
            rest = tail;
        }
        wire
    }

    #[test]
    fn frames_survive_any_split_of_chunks_and_reads() {
        let body = "retry: 2000\n\nid: 1\nevent: comment.posted\ndata: {\"a\":1}\n\n\
                    : keep-alive\n\nid: 2\nevent: session.closed\ndata: {}\n\n";
        for sizes in [&[1][..], &[3, 7], &[1000]] {
            let wire = chunked(body, sizes);
            for step in [1, 2, 5, 64, wire.len()] {
                let (out, open) = frames(&wire, step);
                assert!(open);
                assert_eq!(
                    out,
                    vec![
                        (1, "comment.posted".into(), "{\"a\":1}".into()),
                        (2, "session.closed".into(), "{}".into()),
                    ],
                    "chunks {sizes:?}, reads of {step}"
                );
            }
        }
    }

    #[test]
    fn the_last_chunk_ends_the_stream() {
        let mut wire = chunked("id: 7\nevent: x\ndata: {}\n\n", &[4]);
        wire.extend_from_slice(b"0\r\n\r\n");
        let (out, open) = frames(&wire, 3);
        assert_eq!(out.len(), 1);
        assert!(!open);
    }
}
