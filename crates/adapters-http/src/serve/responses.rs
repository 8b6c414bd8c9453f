//! Follows the responses hyper writes on a connection, to find the one it writes
//! on its own.
//!
//! hyper answers a request head it cannot parse (bad syntax, a bad
//! `Content-Length`, a head over its limits) itself, with a bare status and no
//! body, then closes the connection. Every other response head it writes
//! answers a request it handed to the service first. So a response head that
//! begins while no dispatched request awaits one is hyper's own rejection, and
//! the wire replaces it with a problem document. To know where heads begin,
//! this follows each response's framing (RFC 9112 §6.3) over the bytes hyper
//! writes, which are well-formed: it is hyper's own encoding of our responses.
//! Anything it does not understand makes it step aside for the rest of the
//! connection (bytes pass untouched).

use super::exchange::Exchanges;

/// The largest response head followed; ours are far smaller.
const MAX_HEAD: usize = 64 * 1024;

/// Where the bytes written so far leave the current response.
#[derive(Debug)]
pub(crate) struct Responses {
    state: Out,
}

#[derive(Debug, PartialEq, Eq)]
enum Out {
    /// Between responses (empty), or inside a response head.
    Head(Vec<u8>),
    /// Inside a body of known length: bytes left.
    Length(u64),
    /// Inside a chunked body.
    Chunked(Chunked),
    /// Everything from here passes untouched: a body that lasts until the
    /// connection closes, a protocol switch, or bytes not understood.
    Through,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Chunked {
    /// Reading a chunk's size (hex digits so far).
    Size {
        size: u64,
        digits: bool,
    },
    /// Skipping a chunk extension up to the end of the size line.
    Extension {
        size: u64,
    },
    /// After the size line's CR.
    SizeLf {
        size: u64,
    },
    /// Inside a chunk's data: bytes left.
    Data {
        left: u64,
    },
    /// After a chunk's data: its CR, then its LF.
    DataCr,
    DataLf,
    /// After the last chunk: trailer lines up to an empty one.
    Trailer {
        line_empty: bool,
    },
    TrailerLf {
        line_empty: bool,
    },
}

/// The bytes written until hyper's own response begins.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tracked {
    /// Every byte belongs to an answer of a dispatched request (or passes through).
    All,
    /// hyper's own response begins after this many bytes.
    RejectionAt(usize),
}

impl Default for Responses {
    fn default() -> Self {
        Self {
            state: Out::Head(Vec::new()),
        }
    }
}

impl Responses {
    /// Follows `bytes`, the next ones hyper writes, stopping before its own
    /// response if one begins there (a later call with those bytes stops again).
    pub(crate) fn track(&mut self, mut bytes: &[u8], exchanges: &Exchanges) -> Tracked {
        let total = bytes.len();
        while let Some(&first) = bytes.first() {
            let consumed = match &mut self.state {
                Out::Through => return Tracked::All,
                Out::Head(head) => {
                    if head.is_empty() && !exchanges.any_awaiting() {
                        return Tracked::RejectionAt(total - bytes.len());
                    }
                    self.head(bytes, exchanges)
                }
                Out::Length(left) => {
                    let taken = usize::try_from(*left)
                        .unwrap_or(usize::MAX)
                        .min(bytes.len());
                    *left -= taken as u64;
                    if *left == 0 {
                        self.state = Out::Head(Vec::new());
                        exchanges.finished();
                    }
                    taken
                }
                Out::Chunked(Chunked::Data { left }) => {
                    let taken = usize::try_from(*left)
                        .unwrap_or(usize::MAX)
                        .min(bytes.len());
                    *left -= taken as u64;
                    if *left == 0 {
                        self.state = Out::Chunked(Chunked::DataCr);
                    }
                    taken
                }
                Out::Chunked(chunked) => {
                    self.state = step(*chunked, first);
                    if self.state == Out::Head(Vec::new()) {
                        exchanges.finished();
                    }
                    1
                }
            };
            bytes = &bytes[consumed..];
        }
        Tracked::All
    }

    /// Reads head bytes; once the head is whole, moves to its body.
    fn head(&mut self, bytes: &[u8], exchanges: &Exchanges) -> usize {
        let Out::Head(head) = &mut self.state else {
            return 0;
        };
        for (at, &byte) in bytes.iter().enumerate() {
            head.push(byte);
            if head.ends_with(b"\r\n\r\n") {
                let head = std::mem::take(head);
                self.state = body_of(&head, exchanges);
                return at + 1;
            }
            if head.len() > MAX_HEAD {
                self.state = Out::Through;
                return at + 1;
            }
        }
        bytes.len()
    }
}

/// One byte of chunked framing.
fn step(state: Chunked, byte: u8) -> Out {
    let next = match (state, byte) {
        (Chunked::Size { size, .. }, digit) if digit.is_ascii_hexdigit() => {
            let value = u64::from(char::from(digit).to_digit(16).unwrap_or(0));
            match size
                .checked_mul(16)
                .and_then(|size| size.checked_add(value))
            {
                Some(size) => Chunked::Size { size, digits: true },
                None => return Out::Through,
            }
        }
        (Chunked::Size { size, digits: true } | Chunked::Extension { size }, b'\r') => {
            Chunked::SizeLf { size }
        }
        (Chunked::Size { size, digits: true }, b';' | b' ' | b'\t')
        | (Chunked::Extension { size }, _) => Chunked::Extension { size },
        (Chunked::SizeLf { size: 0 } | Chunked::TrailerLf { line_empty: false }, b'\n') => {
            Chunked::Trailer { line_empty: true }
        }
        (Chunked::SizeLf { size }, b'\n') => Chunked::Data { left: size },
        (Chunked::DataCr, b'\r') => Chunked::DataLf,
        (Chunked::DataLf, b'\n') => Chunked::Size {
            size: 0,
            digits: false,
        },
        (Chunked::Trailer { line_empty }, b'\r') => Chunked::TrailerLf { line_empty },
        (Chunked::Trailer { .. }, _) => Chunked::Trailer { line_empty: false },
        (Chunked::TrailerLf { line_empty: true }, b'\n') => return Out::Head(Vec::new()),
        (
            Chunked::Size { .. }
            | Chunked::SizeLf { .. }
            | Chunked::Data { .. }
            | Chunked::DataCr
            | Chunked::DataLf
            | Chunked::TrailerLf { .. },
            _,
        ) => return Out::Through,
    };
    Out::Chunked(next)
}

/// What follows a whole response head: its body's framing (RFC 9112 §6.3).
fn body_of(head: &[u8], exchanges: &Exchanges) -> Out {
    let Ok(text) = std::str::from_utf8(head) else {
        return Out::Through;
    };
    let mut lines = text.split("\r\n");
    let status = lines
        .next()
        .and_then(|line| line.strip_prefix("HTTP/1."))
        .and_then(|rest| rest.get(2..5))
        .and_then(|code| code.parse::<u16>().ok());
    let Some(status) = status else {
        return Out::Through;
    };
    if (100..200).contains(&status) && status != 101 {
        // Informational (`100 Continue`): the final answer is still to come.
        return Out::Head(Vec::new());
    }
    let head_request = exchanges.oldest_is_head();
    if exchanges.answered().is_none() {
        return Out::Through;
    }
    if status == 101 {
        return Out::Through;
    }
    if head_request || status == 204 || status == 304 {
        exchanges.finished();
        return Out::Head(Vec::new());
    }
    let mut length = None;
    let mut chunked = false;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let name = name.trim();
        if name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = value
                .rsplit(',')
                .next()
                .is_some_and(|last| last.trim().eq_ignore_ascii_case("chunked"));
        } else if name.eq_ignore_ascii_case("content-length") {
            length = value.trim().parse::<u64>().ok();
        }
    }
    match (chunked, length) {
        (true, _) => Out::Chunked(Chunked::Size {
            size: 0,
            digits: false,
        }),
        (false, Some(0)) => {
            exchanges.finished();
            Out::Head(Vec::new())
        }
        (false, Some(length)) => Out::Length(length),
        (false, None) => Out::Through,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dispatched(heads: &[bool]) -> Exchanges {
        let exchanges = Exchanges::default();
        for &head in heads {
            exchanges.dispatched(head, false);
        }
        exchanges
    }

    const REJECTION: &[u8] =
        b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\ndate: Thu, 01 Jan 2026 00:00:00 GMT\r\n\r\n";

    #[test]
    fn a_head_while_no_request_waits_is_hyper_s_own() {
        let mut responses = Responses::default();
        assert_eq!(
            responses.track(REJECTION, &Exchanges::default()),
            Tracked::RejectionAt(0)
        );
    }

    #[test]
    fn answers_of_every_framing_are_followed_to_their_end() {
        let exchanges = dispatched(&[false, false, true, false, false]);
        let mut responses = Responses::default();
        let mut wire = Vec::new();
        wire.extend_from_slice(b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nHTTP/");
        wire.extend_from_slice(
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nHTTP/\r\n1a;x=y\r\n",
        );
        wire.extend_from_slice(&[b'z'; 26]);
        wire.extend_from_slice(b"\r\n0\r\ntrailer: yes\r\n\r\n");
        // HEAD: a length, but no body.
        wire.extend_from_slice(b"HTTP/1.1 200 OK\r\ncontent-length: 99\r\n\r\n");
        wire.extend_from_slice(b"HTTP/1.1 100 Continue\r\n\r\n");
        wire.extend_from_slice(b"HTTP/1.1 204 No Content\r\n\r\n");
        wire.extend_from_slice(b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n");
        let answers = wire.len();
        wire.extend_from_slice(REJECTION);
        // Byte by byte and all at once alike.
        for size in [1, 7, wire.len()] {
            let exchanges = dispatched(&[false, false, true, false, false]);
            let mut responses = Responses::default();
            let mut at = 0;
            let mut rejection = None;
            for piece in wire.chunks(size) {
                if let Tracked::RejectionAt(offset) = responses.track(piece, &exchanges) {
                    rejection = Some(at + offset);
                    break;
                }
                at += piece.len();
            }
            assert_eq!(rejection, Some(answers), "pieces of {size}");
        }
        assert_eq!(responses.track(&wire[..answers], &exchanges), Tracked::All);
        assert_eq!(
            responses.track(&wire[answers..], &exchanges),
            Tracked::RejectionAt(0)
        );
    }

    #[test]
    fn a_body_to_the_end_of_the_connection_or_garbage_passes_through() {
        let exchanges = dispatched(&[false]);
        let mut responses = Responses::default();
        responses.track(b"HTTP/1.0 200 OK\r\n\r\nstreamed until close", &exchanges);
        assert_eq!(responses.track(REJECTION, &exchanges), Tracked::All);

        let exchanges = dispatched(&[false]);
        let mut responses = Responses::default();
        responses.track(
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nnot hex\r\n",
            &exchanges,
        );
        assert_eq!(responses.state, Out::Through);
    }
}
