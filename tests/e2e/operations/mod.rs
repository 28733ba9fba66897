//! Running tern for real: reloads under load, deploys and rollbacks, the author's loop.

mod deploy;
mod reload;
mod scaffold;
