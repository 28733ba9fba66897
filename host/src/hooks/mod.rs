//! Functions in the real-time path: RPC and `send` handlers, and the connect, subscribe
//! and publish hooks messaging configs name. Each is a component of its own WIT world,
//! compiled with the generation it belongs to; the protocols ask [`SessionFunctions`] and
//! get a [`Verdict`] in tern's terms, whatever the guest did. A hook that traps, runs out
//! of time or memory, or answers nonsense denies: hooks fail closed.

pub mod cache;
mod call;

use std::{collections::HashMap, net::IpAddr, sync::Arc};

pub use call::{Refusal, Verdict};

use crate::{
    broker::ClientInfo,
    config::{FunctionSpec, HookKind, Project, Trigger},
    runtime::{
        Function, FunctionRuntime, LoadError,
        bindings::{
            connect::ConnectHookPre, publish::PublishHookPre, rpc::RpcFunctionPre,
            send::SendFunctionPre, subscribe::SubscribeHookPre,
        },
        pubsub_host::Pubsub,
        state::InvocationState,
    },
};

/// An RPC handler.
pub type RpcFunction = Function<RpcFunctionPre<InvocationState>>;
/// A `send` handler.
pub type SendFunction = Function<SendFunctionPre<InvocationState>>;
/// A connect hook.
pub type ConnectHook = Function<ConnectHookPre<InvocationState>>;
/// A subscribe hook.
pub type SubscribeHook = Function<SubscribeHookPre<InvocationState>>;
/// A publish hook.
pub type PublishHook = Function<PublishHookPre<InvocationState>>;

/// Who a call is about, as a hook or handler sees them.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The connection's id.
    pub id: Arc<str>,
    /// Its user; None when anonymous.
    pub user: Option<Arc<str>>,
    /// The door: `centrifuge`, `realtime` or `raw`.
    pub protocol: &'static str,
    /// Its connection info, as JSON text.
    pub info: Option<Arc<str>>,
    /// The peer's address.
    pub address: IpAddr,
}

impl Caller {
    /// The caller a client-protocol connection described by `info` is.
    pub fn of(info: &ClientInfo, protocol: &'static str, address: IpAddr) -> Self {
        Self {
            id: info.client.clone(),
            user: (!info.user.is_empty()).then(|| info.user.clone()),
            protocol,
            info: info.conn_info.clone(),
            address,
        }
    }
}

/// The real-time functions of one generation.
#[derive(Default)]
pub struct SessionFunctions {
    /// What their invocations reach of pub/sub; None in a host without functions.
    pubsub: Option<Arc<Pubsub>>,
    rpc: HashMap<String, Arc<RpcFunction>>,
    /// The `*` method's handler.
    rpc_any: Option<Arc<RpcFunction>>,
    send: Option<Arc<SendFunction>>,
    connect: HashMap<String, Arc<ConnectHook>>,
    subscribe: HashMap<String, Arc<SubscribeHook>>,
    publish: HashMap<String, Arc<PublishHook>>,
    /// `tern.yaml`'s `hooks.connect`, asked of every connection.
    project_connect: Option<Arc<ConnectHook>>,
}

impl SessionFunctions {
    /// Compiles the RPC, send and hook functions of `project` with `runtime`; the
    /// functions of other triggers are left to their own code. Returns the problems of
    /// those that do not load.
    pub fn build(
        project: &Project,
        runtime: &FunctionRuntime,
        pubsub: Arc<Pubsub>,
    ) -> (Self, Vec<(FunctionSpec, LoadError)>) {
        let mut this = Self { pubsub: Some(pubsub), ..Self::default() };
        let mut problems = Vec::new();
        for spec in project.functions.iter().filter(|f| f.source.is_file()) {
            let name = spec.name.clone();
            let loaded = match &spec.trigger {
                Trigger::Rpc { method } => runtime.load(spec).map(|f| {
                    let f = Arc::new(f);
                    if method == "*" {
                        this.rpc_any = Some(f);
                    } else {
                        this.rpc.insert(method.clone(), f);
                    }
                }),
                Trigger::Send => runtime.load(spec).map(|f| this.send = Some(Arc::new(f))),
                Trigger::Hook(HookKind::Connect) => {
                    runtime.load(spec).map(|f| _ = this.connect.insert(name, Arc::new(f)))
                }
                Trigger::Hook(HookKind::Subscribe) => {
                    runtime.load(spec).map(|f| _ = this.subscribe.insert(name, Arc::new(f)))
                }
                Trigger::Hook(HookKind::Publish) => {
                    runtime.load(spec).map(|f| _ = this.publish.insert(name, Arc::new(f)))
                }
                Trigger::Http { .. } | Trigger::Pubsub { .. } => Ok(()),
            };
            if let Err(e) = loaded {
                problems.push((spec.clone(), e));
            }
        }
        if let Some(name) = &project.settings.hooks.connect {
            this.project_connect = this.connect.get(name).cloned();
        }
        (this, problems)
    }

    /// The handler of RPC `method`: its own, else the `*` one.
    pub fn rpc_handler(&self, method: &str) -> Option<Arc<RpcFunction>> {
        self.rpc.get(method).or(self.rpc_any.as_ref()).cloned()
    }

    /// Whether a `send` handler exists.
    pub fn has_send(&self) -> bool {
        self.send.is_some()
    }

    /// Whether the project has a connect hook for every connection.
    pub fn has_project_connect(&self) -> bool {
        self.project_connect.is_some()
    }
}
