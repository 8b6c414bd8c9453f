#![doc = include_str!("../echo_agent.md")]

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), agent_client_protocol::Error> {
    tandem_agent::echo_agent::serve_stdio().await
}
