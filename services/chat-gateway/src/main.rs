//! `careline-chat-gateway`: runs the chat gateway until SIGTERM or ctrl-c.

use careline_chat_gateway::ChatGatewayConfig;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    careline_kit::service::run_binary::<ChatGatewayConfig, _, _, _>(
        "careline-chat-gateway",
        careline_chat_gateway::serve,
    )
    .await
}
