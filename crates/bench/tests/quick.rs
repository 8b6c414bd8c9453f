//! The benchmark itself works: every scenario runs at small sizes against the
//! real server binary and passes its correctness checks (every event delivered
//! once and in order, agent text intact). Nothing here is timed: speed is what
//! the full run measures (docs/BENCHMARKS.md).

use std::path::PathBuf;
use std::process::Command;

#[test]
fn every_scenario_runs_and_checks_out_at_small_sizes() {
    let bench = PathBuf::from(env!("CARGO_BIN_EXE_tandem-bench"));
    let server = bench.with_file_name("tandem");
    assert!(
        server.exists(),
        "no server binary at {} (cargo test --workspace builds it; alone, run \
         `cargo build -p tandem` first)",
        server.display()
    );
    let output = Command::new(&bench)
        .arg("--quick")
        .arg("--server")
        .arg(&server)
        .output()
        .expect("tandem-bench runs");
    let table = String::from_utf8_lossy(&output.stdout);
    let log = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "tandem-bench --quick failed:\n{table}\n{log}"
    );
    for scenario in [
        "fan-out 1 × 100",
        "fan-out 10 × 5",
        "memory",
        "writes Postgres",
        "writes SQLite",
        "resume after 500",
        "agent storm",
        "redaction (in process)",
        "start-up (SQLite)",
    ] {
        assert!(table.contains(scenario), "no {scenario} row in:\n{table}");
    }
    // On PostgreSQL, the writes are measured against the database's own ceiling.
    for measure in ["PostgreSQL's ceiling", "Tandem ÷ ceiling"] {
        assert!(table.contains(measure), "no {measure} row in:\n{table}");
    }
    assert!(!table.contains("BROKEN"), "{table}");
}
