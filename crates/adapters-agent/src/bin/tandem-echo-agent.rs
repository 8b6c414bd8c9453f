#![doc = include_str!("../echo_agent.md")]

use tandem_agent::echo_agent::{EchoOptions, serve_stdio};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), agent_client_protocol::Error> {
    let options = match EchoOptions::parse(std::env::args().skip(1)) {
        Ok(options) => options,
        Err(error) => {
            eprintln!("tandem-echo-agent: {error}");
            std::process::exit(2);
        }
    };
    serve_stdio(options).await
}
