//! End-to-end tests: the real `tern` binary, real compiled functions, real clients.

mod admin_api;
mod cache;
mod centrifuge;
mod check;
mod cluster;
mod harness;
mod hostile_functions;
mod http_functions;
mod limits;
mod newcomer;
mod node_clients;
mod operations;
mod python_clients;
mod raw_frames;
mod realtime;
mod security;
mod shutdown;
mod storm;
mod triggers;
mod websites;
mod websocket;
mod wscat;
