//! The chat's connect hook: a client of the Centrifugo protocol that connects without a
//! token is let in as `guest-<8 characters of its client id>`, so the others see a name in
//! presence, joins and leaves. Everyone else comes in as they are.

use tern_sdk::session::{ConnectDecision, ConnectRequest};

fn greet(req: ConnectRequest) -> ConnectDecision {
    if req.client.user.is_some() || req.client.protocol != "centrifuge" {
        return ConnectDecision::allow();
    }
    let short: String = req.client.id.chars().filter(char::is_ascii_alphanumeric).take(8).collect();
    ConnectDecision::allow_as(&format!("guest-{short}"), None)
}

tern_sdk::connect_hook!(greet);
