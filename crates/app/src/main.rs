//! `tandem`: the server binary. It will hold configuration, the CLI (`serve`,
//! `migrate`, `api-key create`, `openapi`), the wiring of every adapter, start-up
//! and graceful shutdown. Until the HTTP API lands it only says so.

fn main() {
    println!(
        "tandem {}: the storage and domain layers are in place; the HTTP server arrives with the API (issue 4).",
        env!("CARGO_PKG_VERSION")
    );
}
