//! Text a program wrote for a terminal (an agent's stderr, git's messages), made
//! fit to quote in an error: escape sequences and control characters removed,
//! the size bounded.

/// One line as a terminal would show it, in plain text: what follows the last
/// carriage return (progress bars redraw the line), without ANSI escape
/// sequences (colours, cursor moves, titles) or control characters; a tab
/// becomes a space; surrounding whitespace trimmed.
pub(super) fn plain_line(line: &str) -> String {
    let shown = line
        .rsplit('\r')
        .find(|part| !part.trim().is_empty())
        .unwrap_or_default();
    let mut plain = String::with_capacity(shown.len());
    let mut chars = shown.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\u{1b}' => skip_escape(&mut chars),
            '\u{9b}' => skip_control_sequence(&mut chars),
            '\t' => plain.push(' '),
            c if c.is_control() => {}
            c => plain.push(c),
        }
    }
    plain.trim().to_owned()
}

/// Every line of `text` in plain text (see [`plain_line`]), blank ones left
/// out, joined with ` | `, and cut to at most `max_bytes` bytes.
pub(super) fn plain(text: &str, max_bytes: usize) -> String {
    let joined = text
        .lines()
        .map(plain_line)
        .filter(|line| !line.is_empty())
        .collect::<Vec<_>>()
        .join(" | ");
    bounded(&joined, max_bytes)
}

/// `text` cut to at most `max_bytes` bytes (on a character boundary), with `…`
/// in place of what was cut.
pub(super) fn bounded(text: &str, max_bytes: usize) -> String {
    if text.len() <= max_bytes {
        return text.to_owned();
    }
    let ellipsis = '…';
    let mut end = max_bytes.saturating_sub(ellipsis.len_utf8());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}{ellipsis}", &text[..end])
}

/// Skips what follows an ESC: a control sequence (`ESC [`), a string (OSC,
/// DCS, SOS, PM, APC: up to BEL or `ESC \`), a character set designation
/// (`ESC ( B`), or a single character.
fn skip_escape(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) {
    match chars.next() {
        Some('[') => skip_control_sequence(chars),
        Some(']' | 'P' | 'X' | '^' | '_') => {
            while let Some(c) = chars.next() {
                if c == '\u{7}' || (c == '\u{1b}' && chars.next_if_eq(&'\\').is_some()) {
                    break;
                }
            }
        }
        Some('(' | ')' | '*' | '+' | '-' | '.' | '/' | '#' | '%') => {
            chars.next();
        }
        Some(_) | None => {}
    }
}

/// Skips a control sequence's parameters and intermediates, up to and with its
/// final byte (`@` to `~`).
fn skip_control_sequence(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) {
    for c in chars.by_ref() {
        if ('@'..='~').contains(&c) {
            break;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colours_cursor_moves_and_titles_are_removed() {
        assert_eq!(
            plain_line("\u{1b}[1;31merror\u{1b}[0m: \u{1b}[2Kmodel \u{1b}]0;codex\u{7}overloaded"),
            "error: model overloaded"
        );
        assert_eq!(
            plain_line("\u{1b}]8;;https://x.test\u{1b}\\link\u{1b}]8;;\u{1b}\\ text"),
            "link text"
        );
        assert_eq!(
            plain_line("\u{1b}(Bplain\u{1b}7 \u{9b}32mgreen"),
            "plain green"
        );
    }

    #[test]
    fn control_characters_go_and_a_redrawn_line_shows_its_last_state() {
        assert_eq!(plain_line("a\u{0}b\u{8}c\td"), "abc d");
        assert_eq!(plain_line("10%\r50%\r100% done\r"), "100% done");
        assert_eq!(plain_line("\u{1b}[31m\u{1b}[0m"), "");
    }

    #[test]
    fn excerpts_are_bounded_on_a_character_boundary() {
        assert_eq!(bounded("short", 10), "short");
        let cut = bounded(&"é".repeat(100), 11);
        assert!(cut.len() <= 11, "{cut}");
        assert!(cut.ends_with('…'));
        assert_eq!(plain("one\n\n\u{1b}[1mtwo\u{1b}[0m\n", 100), "one | two");
        assert!(plain(&"x\n".repeat(1000), 50).len() <= 50);
    }
}
