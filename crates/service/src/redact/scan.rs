//! The scanner: finds secrets in text and replaces them, in one left-to-right
//! pass, with the same result whether the text comes whole or in pieces.
//!
//! Two engines find candidates: the rules' regular expressions (one multi-pattern
//! search; at one position the earliest rule wins) and the known secret values
//! (Aho-Corasick, longest value wins). The leftmost candidate of either is taken
//! (a known value first when both start at one position); a kept candidate (on
//! the allowlist, or too little entropy) is passed over and the search goes on
//! one character later; a redacted one is replaced and the search goes on after
//! it.
//!
//! Streaming: text that may still grow is redacted up to the first position
//! where a candidate is still *open*, that is, where what follows could still
//! turn into a match with more text. Each engine answers that by running its
//! anchored automaton from every position of the text at once (one state per
//! start, starts with the same state merged, dead ones dropped). Everything
//! before that position is decided: the same candidates are found there as in
//! the whole text. So streamed redaction equals redaction of the whole text, and
//! only a tail that could still become a secret waits for more.

use std::sync::{Arc, Mutex, PoisonError};

use aho_corasick::automaton::Automaton as _;
use aho_corasick::nfa::contiguous::NFA as ExactNfa;
use regex_automata::hybrid::LazyStateID;
use regex_automata::hybrid::dfa::{Cache as DfaCache, DFA};
use regex_automata::util::start;
use regex_automata::{Anchored, Input, MatchKind, meta};
use tandem_domain::Redactions;

/// A rule of the pattern engine, by pattern id.
#[derive(Debug)]
pub(super) struct Rule {
    pub(super) kind: Arc<str>,
    /// The rule alone, to find its `secret` group once it matched.
    pub(super) capture: Option<meta::Regex>,
    /// The least entropy (bits per character) of a redacted value; 0 for any.
    pub(super) min_entropy: f64,
    /// A redacted value must hold an ASCII letter and a digit.
    pub(super) letters_and_digits: bool,
}

/// The rules' regular expressions.
#[derive(Debug)]
pub(super) struct Patterns {
    /// All rules together, leftmost-first: finds the next match and its rule.
    pub(super) search: meta::Regex,
    /// The same rules as a lazy DFA, run anchored to tell open candidates.
    pub(super) live: DFA,
    pub(super) rules: Vec<Rule>,
}

/// The known secret values and their encoded forms.
#[derive(Debug)]
pub(super) struct Exact {
    pub(super) automaton: ExactNfa,
    /// The kind of each value, by pattern id.
    pub(super) kinds: Vec<Arc<str>>,
}

/// Finds and replaces secrets.
#[derive(Debug)]
pub(super) struct Scanner {
    pub(super) patterns: Option<Patterns>,
    pub(super) exact: Option<Exact>,
    /// Values that look like secrets but are not (each pattern matches a whole
    /// value).
    pub(super) allow: Option<meta::Regex>,
    /// Caches of the lazy DFA, reused across calls.
    pub(super) caches: Mutex<Vec<DfaCache>>,
}

/// What `redact` made of a text.
#[derive(Debug, Default)]
pub(super) struct Redacted {
    /// The redacted text up to `cut`.
    pub(super) text: String,
    pub(super) redactions: Redactions,
    /// Where the redacted part of the input ends: the input's end, or (when
    /// streaming) the start of the first candidate still open.
    pub(super) cut: usize,
}

/// A candidate found by one of the engines.
#[derive(Debug, Clone)]
struct Found {
    start: usize,
    end: usize,
    /// The part replaced (all of the match unless the rule marks a `secret`).
    secret: (usize, usize),
    kind: Arc<str>,
    /// Passed over: allowlisted, or too little entropy.
    kept: bool,
}

/// Which candidate each engine found last, reused while it lies ahead.
#[derive(Debug, Default)]
struct Lookahead {
    pattern: Option<(usize, Option<Found>)>,
    exact: Option<(usize, Option<Found>)>,
}

impl Scanner {
    /// Redacts `hay[from..]`; `hay[..from]` is context only (what came before,
    /// for `\b` and the like). With `streaming`, stops at the first candidate still
    /// open at the end of `hay`.
    pub(super) fn redact(&self, hay: &str, from: usize, streaming: bool) -> Redacted {
        let mut out = Redacted {
            text: String::new(),
            redactions: Redactions::none(),
            cut: hay.len(),
        };
        let mut open = if streaming {
            self.first_open(hay.as_bytes(), from)
        } else {
            hay.len()
        };
        let mut copied = from;
        let mut search_at = from;
        let mut ahead = Lookahead::default();
        while search_at < hay.len() {
            let Some(found) = self.next(hay, search_at, &mut ahead) else {
                break;
            };
            if found.start >= open {
                break;
            }
            if found.kept {
                search_at = found.start + char_len(hay, found.start);
                continue;
            }
            let (secret_start, secret_end) = found.secret;
            out.text.push_str(&hay[copied..secret_start]);
            out.text.push_str("[REDACTED:");
            out.text.push_str(&found.kind);
            out.text.push(']');
            out.text.push_str(&hay[secret_end..found.end]);
            out.redactions.add(&found.kind, 1);
            metrics::counter!("tandem_redactions_total", "kind" => found.kind.to_string())
                .increment(1);
            copied = found.end;
            search_at = found.end;
            if streaming && found.end > open {
                // Decided, it overlaps the open candidate, which the whole text's
                // scan never reaches: look for the first open one after it.
                open = self.first_open(hay.as_bytes(), found.end);
            }
        }
        let cut = open.max(copied);
        out.text.push_str(&hay[copied..cut]);
        out.cut = cut;
        out
    }

    /// Whether `text` holds a secret that would be redacted.
    pub(super) fn finds_any(&self, text: &str) -> bool {
        let mut ahead = Lookahead::default();
        let mut at = 0;
        while at < text.len() {
            match self.next(text, at, &mut ahead) {
                Some(found) if found.kept => at = found.start + char_len(text, found.start),
                Some(_) => return true,
                None => return false,
            }
        }
        false
    }

    /// The leftmost candidate starting at `at` or later.
    fn next(&self, hay: &str, at: usize, ahead: &mut Lookahead) -> Option<Found> {
        let pattern = match &ahead.pattern {
            Some((searched, found))
                if *searched <= at && found.as_ref().is_none_or(|f| f.start >= at) =>
            {
                found.clone()
            }
            _ => {
                let found = self.next_pattern(hay, at);
                ahead.pattern = Some((at, found.clone()));
                found
            }
        };
        let exact = match &ahead.exact {
            Some((searched, found))
                if *searched <= at && found.as_ref().is_none_or(|f| f.start >= at) =>
            {
                found.clone()
            }
            _ => {
                let found = self.next_exact(hay, at);
                ahead.exact = Some((at, found.clone()));
                found
            }
        };
        match (pattern, exact) {
            (Some(pattern), Some(exact)) => Some(if exact.start <= pattern.start {
                exact
            } else {
                pattern
            }),
            (found, None) | (None, found) => found,
        }
    }

    fn next_pattern(&self, hay: &str, at: usize) -> Option<Found> {
        let patterns = self.patterns.as_ref()?;
        let found = patterns.search.search(&Input::new(hay).range(at..))?;
        let rule = &patterns.rules[found.pattern().as_usize()];
        let mut secret = (found.start(), found.end());
        if let Some(capture) = &rule.capture {
            let input = Input::new(hay)
                .range(found.start()..found.end())
                .anchored(Anchored::Yes);
            let mut captures = capture.create_captures();
            capture.search_captures(&input, &mut captures);
            if let Some(span) = captures.get_group_by_name("secret") {
                secret = (span.start, span.end);
            }
        }
        let value = &hay[secret.0..secret.1];
        let kept = self.allowed(value)
            || entropy(value) < rule.min_entropy
            || (rule.letters_and_digits
                && !(value.bytes().any(|b| b.is_ascii_alphabetic())
                    && value.bytes().any(|b| b.is_ascii_digit())));
        let kind = if rule.capture.is_some() {
            // `AWS_ACCESS_KEY_ID=AKIA...`: the value itself is a known value or
            // format, which says more than the assignment around it.
            self.kind_of_whole(hay, secret)
                .unwrap_or_else(|| Arc::clone(&rule.kind))
        } else {
            Arc::clone(&rule.kind)
        };
        Some(Found {
            start: found.start(),
            end: found.end(),
            secret,
            kind,
            kept,
        })
    }

    /// The kind of a known value, or else of a rule, that is exactly
    /// `hay[span]`.
    fn kind_of_whole(&self, hay: &str, (start, end): (usize, usize)) -> Option<Arc<str>> {
        if let Some(exact) = &self.exact {
            let input = aho_corasick::Input::new(hay)
                .range(start..end)
                .anchored(aho_corasick::Anchored::Yes);
            if let Ok(Some(found)) = exact.automaton.try_find(&input)
                && found.end() == end
            {
                return Some(Arc::clone(&exact.kinds[found.pattern().as_usize()]));
            }
        }
        let patterns = self.patterns.as_ref()?;
        let input = Input::new(hay).range(start..end).anchored(Anchored::Yes);
        let found = patterns.search.search(&input)?;
        (found.end() == end).then(|| Arc::clone(&patterns.rules[found.pattern().as_usize()].kind))
    }

    fn next_exact(&self, hay: &str, at: usize) -> Option<Found> {
        let exact = self.exact.as_ref()?;
        let input = aho_corasick::Input::new(hay).range(at..);
        // The automaton supports unanchored searches, the only ones asked of it.
        let found = exact.automaton.try_find(&input).ok().flatten()?;
        let value = &hay[found.start()..found.end()];
        Some(Found {
            start: found.start(),
            end: found.end(),
            secret: (found.start(), found.end()),
            kind: Arc::clone(&exact.kinds[found.pattern().as_usize()]),
            kept: self.allowed(value),
        })
    }

    fn allowed(&self, value: &str) -> bool {
        self.allow
            .as_ref()
            .is_some_and(|allow| allow.is_match(Input::new(value).anchored(Anchored::Yes)))
    }

    /// Where the first candidate that more text could still complete starts,
    /// looking at starts from `from` on; `hay.len()` if none is open.
    pub(super) fn first_open(&self, hay: &[u8], from: usize) -> usize {
        let patterns = self.patterns.as_ref().map_or(hay.len(), |patterns| {
            self.first_open_pattern(patterns, hay, from)
        });
        let exact = self
            .exact
            .as_ref()
            .map_or(hay.len(), |exact| first_open_exact(exact, hay, from));
        patterns.min(exact)
    }

    fn first_open_pattern(&self, patterns: &Patterns, hay: &[u8], from: usize) -> usize {
        let mut cache = self
            .caches
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop()
            .unwrap_or_else(|| patterns.live.create_cache());
        let open = first_open_dfa(&patterns.live, &mut cache, hay, from);
        self.caches
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(cache);
        open
    }
}

/// How many times the liveness scan starts over after the lazy DFA's cache was
/// cleared under it (its state ids are then stale); past that, everything from
/// `from` is held, which only delays (the held text's bound releases it).
const CLEARED_RETRIES: usize = 3;

/// The first start from `from` on whose anchored run through the rules' DFA is
/// still alive at the end of `hay`.
fn first_open_dfa(dfa: &DFA, cache: &mut DfaCache, hay: &[u8], from: usize) -> usize {
    'attempt: for _ in 0..CLEARED_RETRIES {
        let clears = cache.clear_count();
        // (start, state), starts in increasing order; a state reached from two
        // starts is kept for the earlier one only.
        let mut open: Vec<(usize, LazyStateID)> = Vec::new();
        for at in from..hay.len() {
            if is_char_boundary(hay, at) {
                let config = start::Config::new()
                    .anchored(Anchored::Yes)
                    .look_behind(at.checked_sub(1).map(|before| hay[before]));
                let Ok(state) = dfa.start_state(cache, &config) else {
                    return open.first().map_or(at, |(start, _)| *start);
                };
                if cache.clear_count() != clears {
                    continue 'attempt;
                }
                if !state.is_dead() {
                    open.push((at, state));
                }
            }
            let byte = hay[at];
            let mut kept = 0;
            for index in 0..open.len() {
                let (start, state) = open[index];
                let Ok(next) = dfa.next_state(cache, state, byte) else {
                    return open.first().map_or(at, |(start, _)| *start);
                };
                if cache.clear_count() != clears {
                    continue 'attempt;
                }
                if next.is_dead() || open[..kept].iter().any(|(_, seen)| *seen == next) {
                    continue;
                }
                open[kept] = (start, next);
                kept += 1;
            }
            open.truncate(kept);
        }
        return open.first().map_or(hay.len(), |(start, _)| *start);
    }
    from
}

/// The first start from `from` on that is a prefix of a known value still open
/// at the end of `hay`.
fn first_open_exact(exact: &Exact, hay: &[u8], from: usize) -> usize {
    let automaton = &exact.automaton;
    let Ok(start_state) = automaton.start_state(aho_corasick::Anchored::Yes) else {
        return from;
    };
    let mut open: Vec<(usize, aho_corasick::automaton::StateID)> = Vec::new();
    for at in from..hay.len() {
        if is_char_boundary(hay, at) {
            open.push((at, start_state));
        }
        let byte = hay[at];
        let mut kept = 0;
        for index in 0..open.len() {
            let (start, state) = open[index];
            let next = automaton.next_state(aho_corasick::Anchored::Yes, state, byte);
            if automaton.is_dead(next) || open[..kept].iter().any(|(_, seen)| *seen == next) {
                continue;
            }
            open[kept] = (start, next);
            kept += 1;
        }
        open.truncate(kept);
    }
    open.first().map_or(hay.len(), |(start, _)| *start)
}

/// Whether a UTF-8 text's byte `at` starts a character.
const fn is_char_boundary(hay: &[u8], at: usize) -> bool {
    // Continuation bytes are 0b10xx_xxxx.
    (hay[at] & 0xc0) != 0x80
}

/// The length in bytes of the character at `at`.
fn char_len(hay: &str, at: usize) -> usize {
    hay[at..].chars().next().map_or(1, char::len_utf8)
}

/// Shannon entropy of `value`, in bits per character.
pub(super) fn entropy(value: &str) -> f64 {
    let mut counts: std::collections::HashMap<char, u32> = std::collections::HashMap::new();
    let mut total = 0u32;
    for c in value.chars() {
        *counts.entry(c).or_default() += 1;
        total += 1;
    }
    if total == 0 {
        return 0.0;
    }
    let total = f64::from(total);
    counts
        .values()
        .map(|&count| {
            let p = f64::from(count) / total;
            -p * p.log2()
        })
        .sum()
}

/// The match semantics of every engine: at one position, the earliest rule.
pub(super) const MATCH_KIND: MatchKind = MatchKind::LeftmostFirst;
