//! Per-invocation cost: a fresh instance of `hello` created and called in-process, the way
//! the host runs every request (store, WASI context, instantiate, call, drop).
//!
//! Needs the example functions built (`scripts/setup.sh` or `bench/run`).

use std::{path::Path, sync::Arc};

use criterion::{Criterion, criterion_group, criterion_main};
use tern::{
    broker::Broker,
    config::{Settings, function, messaging::ChannelRules},
    runtime::{
        FunctionRuntime, HttpFunction,
        bindings::types,
        pubsub_host::{Pubsub, PubsubContext},
    },
};

/// The example `hello` function, loaded as the host loads it.
fn hello(runtime: &FunctionRuntime) -> HttpFunction {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/hello/functions/hello.yaml");
    let text = std::fs::read_to_string(&file).expect("examples/hello/functions/hello.yaml");
    let spec = function::parse(&file, &text).expect("hello.yaml is valid");
    runtime.load(&spec).expect("hello.wasm is built: run scripts/setup.sh")
}

fn request() -> types::Request {
    types::Request {
        method: "GET".into(),
        path: "/hello".into(),
        query: "name=tern".into(),
        headers: vec![("host".into(), "127.0.0.1".into())],
        body: Vec::new(),
    }
}

fn invocation(c: &mut Criterion) {
    let runtime = FunctionRuntime::new(16, 64 << 20, None).expect("engine");
    let function = hello(&runtime);
    let rules = Arc::new(ChannelRules::new(Vec::new()));
    let tokens = tern::auth::TokenAuthority::none();
    let sessions = tern::gateway::control::SessionRegistry::new();
    let pubsub =
        Arc::new(Pubsub::new(Broker::new(16), rules, &Settings::default(), (tokens, sessions)));
    let input = request();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("tokio");
    let call = || {
        let context = PubsubContext::new(pubsub.clone(), None, Arc::from([function.name.clone()]));
        let response = rt.block_on(runtime.call(&function, &input, context)).expect("hello runs");
        assert_eq!(response.status, 200);
        response
    };
    assert_eq!(call().body, b"hello, tern");
    c.bench_function("hello_invocation", |b| b.iter(call));
}

criterion_group!(benches, invocation);
criterion_main!(benches);
