//! The results table: one row per measure, next to its target in DESIGN.md §8.

use std::fmt::Write as _;

/// How a measure compares with its target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// The target is met.
    Met,
    /// The target is missed.
    Missed,
    /// A correctness check passed.
    Correct,
    /// A correctness check failed: events lost, doubled or out of order, text
    /// changed. The benchmark exits non-zero.
    Broken,
    /// A figure without a target.
    Info,
}

impl Verdict {
    /// `Met` when `ok`, else `Missed`.
    pub(crate) fn target(ok: bool) -> Self {
        if ok { Self::Met } else { Self::Missed }
    }

    /// `Correct` when `ok`, else `Broken`.
    pub(crate) fn check(ok: bool) -> Self {
        if ok { Self::Correct } else { Self::Broken }
    }

    fn label(self) -> &'static str {
        match self {
            Self::Met => "met",
            Self::Missed => "MISSED",
            Self::Correct => "ok",
            Self::Broken => "BROKEN",
            Self::Info => "",
        }
    }
}

/// One measure.
#[derive(Debug, Clone)]
pub(crate) struct Row {
    pub(crate) scenario: String,
    pub(crate) measure: String,
    pub(crate) target: String,
    pub(crate) result: String,
    pub(crate) verdict: Verdict,
}

/// Everything measured in one run.
#[derive(Debug, Default)]
pub(crate) struct Report {
    rows: Vec<Row>,
}

impl Report {
    /// Adds a measure and prints it at once (a long run shows progress).
    pub(crate) fn add(
        &mut self,
        scenario: &str,
        measure: &str,
        target: &str,
        result: String,
        verdict: Verdict,
    ) {
        let row = Row {
            scenario: scenario.to_owned(),
            measure: measure.to_owned(),
            target: target.to_owned(),
            result,
            verdict,
        };
        eprintln!(
            "  {} · {}: {} {}",
            row.scenario,
            row.measure,
            row.result,
            row.verdict.label()
        );
        self.rows.push(row);
    }

    /// Whether any correctness check failed.
    pub(crate) fn broken(&self) -> bool {
        self.rows.iter().any(|row| row.verdict == Verdict::Broken)
    }

    /// The table, in Markdown.
    pub(crate) fn table(&self) -> String {
        let header = ["scenario", "measure", "target", "result", ""];
        let cells: Vec<[&str; 5]> = self
            .rows
            .iter()
            .map(|row| {
                [
                    row.scenario.as_str(),
                    row.measure.as_str(),
                    row.target.as_str(),
                    row.result.as_str(),
                    row.verdict.label(),
                ]
            })
            .collect();
        let mut widths = header.map(|cell| cell.chars().count());
        for row in &cells {
            for (width, cell) in widths.iter_mut().zip(row) {
                *width = (*width).max(cell.chars().count());
            }
        }
        let mut out = String::new();
        let line = |out: &mut String, row: &[&str; 5]| {
            out.push('|');
            for (cell, width) in row.iter().zip(widths) {
                let _ = write!(out, " {cell:width$} |");
            }
            out.push('\n');
        };
        line(&mut out, &header);
        out.push('|');
        for width in widths {
            let _ = write!(out, "{}|", "-".repeat(width + 2));
        }
        out.push('\n');
        for row in &cells {
            line(&mut out, row);
        }
        out
    }
}
