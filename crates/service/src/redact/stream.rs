//! Text that arrives in pieces (an agent's message chunks), redacted as it comes.

use tandem_domain::Redactions;

use super::Redactor;

/// The most text a stream holds back: a candidate secret still open past this
/// is judged as if the text ended there. Far above any real credential (a PEM
/// RSA 8192 key is under 7 KiB).
pub const MAX_HELD_BYTES: usize = 16 * 1024;

/// Redacts a text that arrives in pieces, giving out as much as is decided.
///
/// What [`TextStream::release`] gives out, followed by what
/// [`TextStream::finish`] gives out, is exactly the whole text redacted at once
/// (unless a candidate outgrew [`MAX_HELD_BYTES`]), however the text was cut.
#[derive(Debug, Default)]
pub struct TextStream {
    /// The character before the pending text (context for `\b`), then the text
    /// not given out yet.
    text: String,
    /// The length of that context character (0 at the start).
    context: usize,
}

impl TextStream {
    pub(super) fn new() -> Self {
        Self::default()
    }

    /// Adds the next piece.
    pub fn push(&mut self, piece: &str) {
        self.text.push_str(piece);
    }

    /// How many bytes wait to be given out.
    pub fn held(&self) -> usize {
        self.text.len() - self.context
    }

    /// The redacted text that is decided: everything but a tail that could still
    /// become a secret with more text.
    pub fn release(&mut self, redactor: &Redactor) -> (String, Redactions) {
        let Some(scanner) = redactor.scanner() else {
            return self.take_all(redactor);
        };
        let redacted = scanner.redact(&self.text, self.context, true);
        if self.text.len() - redacted.cut > MAX_HELD_BYTES {
            // An open candidate this long is no credential format we know of
            // (or the lazy DFA thrashed): judge it now rather than hold more.
            return self.take_all(redactor);
        }
        self.keep_from(redacted.cut);
        (redacted.text, redacted.redactions)
    }

    /// Everything left, the text having ended. The stream can start over.
    pub fn finish(&mut self, redactor: &Redactor) -> (String, Redactions) {
        let released = self.take_all(redactor);
        self.text.clear();
        self.context = 0;
        released
    }

    fn take_all(&mut self, redactor: &Redactor) -> (String, Redactions) {
        let (text, redactions) = match redactor.scanner() {
            Some(scanner) => {
                let redacted = scanner.redact(&self.text, self.context, false);
                (redacted.text, redacted.redactions)
            }
            None => (self.text[self.context..].to_owned(), Redactions::none()),
        };
        let end = self.text.len();
        self.keep_from(end);
        (text, redactions)
    }

    /// Drops the text before `cut`, keeping its last character as context.
    fn keep_from(&mut self, cut: usize) {
        let context = self.text[..cut]
            .char_indices()
            .next_back()
            .map_or(cut, |(at, _)| at);
        self.text.drain(..context);
        self.context = cut - context;
    }
}
