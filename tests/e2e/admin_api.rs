//! The admin listener: metrics after known traffic, health, the key, hostile deploy
//! bundles, JSON logs.
