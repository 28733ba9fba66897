//! Calling the real-time functions: the typed request in, the guest's answer checked and
//! turned into a [`Verdict`], every failure logged and, for hooks, a denial.

use std::sync::Arc;

use super::{Caller, SessionFunctions};
use crate::{
    auth::token::MAX_INFO_LEN,
    runtime::{
        Entry, Function, FunctionRuntime, InvocationError, bindings::session_types as st,
        pubsub_host::PubsubContext,
    },
};

/// Longest reason a refusal carries, in bytes (a close frame has room for 123).
pub const MAX_REASON: usize = 123;
/// Longest user name a connect hook may give, in bytes.
const MAX_USER: usize = 256;
/// Most headers a connect hook is shown.
const MAX_HEADERS: usize = 64;

/// Why a hook or handler refused, as the client will see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// A deny's error code (400 to 1999; 0: the protocol's "permission denied"), or a
    /// disconnect's close code (4000 to 4999).
    pub code: u32,
    /// Why, at most [`MAX_REASON`] bytes.
    pub reason: String,
}

/// A decision: go ahead with `T`, refuse, or refuse and close the connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict<T> {
    /// Go ahead.
    Allow(T),
    /// Refuse; the connection stays.
    Deny(Refusal),
    /// Refuse and close the connection.
    Disconnect(Refusal),
}

/// What a connect hook changed of a connection.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Admission {
    /// Its user from now on, if the hook named one.
    pub user: Option<Arc<str>>,
    /// Its connection info (JSON text), if the hook gave one.
    pub info: Option<Arc<str>>,
}

impl Refusal {
    /// A denial for `reason` with the default code.
    pub fn denied(reason: impl Into<String>) -> Self {
        Self { code: 0, reason: reason.into() }
    }

    fn checked(r: st::Refusal, disconnect: bool, function: &str) -> Self {
        let ok = if disconnect {
            (4000..=4999).contains(&r.code)
        } else {
            r.code == 0 || (400..=1999).contains(&r.code)
        };
        let code = if ok {
            r.code
        } else {
            crate::throttled_warn!(
                function,
                code = r.code,
                "a hook answered a code outside its range (deny: 400-1999, disconnect: 4000-4999): replaced"
            );
            if disconnect { 4500 } else { 0 }
        };
        Self { code, reason: truncate(r.reason, MAX_REASON) }
    }
}

fn truncate(mut text: String, max: usize) -> String {
    if text.len() > max {
        let mut end = max;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
    text
}

impl Caller {
    fn to_wit(&self) -> st::Client {
        st::Client {
            id: self.id.to_string(),
            user: self.user.as_deref().map(str::to_owned),
            protocol: self.protocol.to_owned(),
            info: self.info.as_deref().map(str::to_owned),
            address: self.address.to_string(),
        }
    }
}

/// Runs `function` on `input`; logs a failure, naming what it was doing.
async fn run<E: Entry>(
    runtime: &FunctionRuntime,
    pubsub: &Option<Arc<crate::runtime::pubsub_host::Pubsub>>,
    function: &Function<E>,
    input: &E::Input,
    doing: &str,
) -> Result<E::Output, InvocationError> {
    let Some(pubsub) = pubsub else {
        return Err(InvocationError::Trap("no pub/sub layer in this host".into()));
    };
    let origin = pubsub.public_origin.clone();
    let context = PubsubContext::new(pubsub.clone(), origin, Arc::from([function.name.clone()]));
    let result = runtime.call(function, input, context).await;
    if let Err(e) = &result {
        crate::throttled_warn!(function = %function.name, error = %e, "{doing} failed");
    }
    result
}

/// A failed hook's verdict: closed.
fn failed<T>(kind: &str) -> Verdict<T> {
    Verdict::Deny(Refusal::denied(format!("the {kind} hook failed")))
}

/// A hook's deny (or, with `disconnect`, its disconnect), its code checked.
fn refused<U>(r: st::Refusal, disconnect: bool, function: &str) -> Verdict<U> {
    let r = Refusal::checked(r, disconnect, function);
    if disconnect { Verdict::Disconnect(r) } else { Verdict::Deny(r) }
}

impl SessionFunctions {
    /// Asks the connect hooks of a connection by `caller`: the project's, then `config`'s
    /// (the messaging config of a raw-bridge channel), each seeing the other's changes.
    pub async fn connect(
        &self,
        runtime: &FunctionRuntime,
        caller: &Caller,
        (data, headers): (&[u8], &http::HeaderMap),
        config: Option<&str>,
    ) -> Verdict<Admission> {
        // A config naming a hook that is not there (it cannot be: the generation would not
        // have built) fails closed like a failing one.
        let mut hooks = Vec::new();
        if let Some(hook) = &self.project_connect {
            hooks.push(Some(hook.clone()));
        }
        if let Some(name) = config {
            hooks.push(self.connect.get(name).cloned());
        }
        let mut admission = Admission::default();
        let mut caller = caller.clone();
        let headers: Vec<(String, String)> = headers
            .iter()
            .take(MAX_HEADERS)
            .map(|(k, v)| (k.as_str().to_owned(), String::from_utf8_lossy(v.as_bytes()).into()))
            .collect();
        for hook in hooks {
            let Some(hook) = hook else { return failed("connect") };
            let input = st::ConnectRequest {
                client: caller.to_wit(),
                data: data.to_vec(),
                headers: headers.clone(),
            };
            let Ok(answer) = run(runtime, &self.pubsub, &hook, &input, "connect hook").await else {
                return failed("connect");
            };
            let changes = match answer {
                st::ConnectDecision::Allow(c) => c,
                st::ConnectDecision::Deny(r) => {
                    return refused(r, false, &hook.name);
                }
                st::ConnectDecision::Disconnect(r) => {
                    return refused(r, true, &hook.name);
                }
            };
            if let Some(user) = changes.user {
                if user.len() > MAX_USER {
                    tracing::warn!(function = %hook.name, "connect hook named a user longer than {MAX_USER} bytes: denied");
                    return failed("connect");
                }
                let user: Arc<str> = user.into();
                caller.user = (!user.is_empty()).then(|| user.clone());
                admission.user = Some(user);
            }
            if let Some(info) = changes.info {
                if info.len() > MAX_INFO_LEN
                    || serde_json::from_str::<&serde_json::value::RawValue>(&info).is_err()
                {
                    tracing::warn!(function = %hook.name, "connect hook gave info that is not a JSON document of at most {MAX_INFO_LEN} bytes: denied");
                    return failed("connect");
                }
                let info: Arc<str> = info.into();
                caller.info = Some(info.clone());
                admission.info = Some(info);
            }
        }
        Verdict::Allow(admission)
    }

    /// Asks the subscribe hook `hook` whether `caller` may subscribe to `channel`; an
    /// allow may carry the channel info others see of the subscriber.
    pub async fn subscribe(
        &self,
        runtime: &FunctionRuntime,
        hook: &str,
        caller: &Caller,
        (channel, data): (&str, &[u8]),
    ) -> Verdict<Option<Arc<str>>> {
        let Some(f) = self.subscribe.get(hook) else { return failed("subscribe") };
        let input = st::SubscribeRequest {
            client: caller.to_wit(),
            channel: channel.to_owned(),
            data: data.to_vec(),
        };
        match run(runtime, &self.pubsub, f, &input, "subscribe hook").await {
            Err(_) => failed("subscribe"),
            Ok(st::SubscribeDecision::Allow(c)) => match c.info {
                None => Verdict::Allow(None),
                Some(info)
                    if info.len() <= MAX_INFO_LEN
                        && serde_json::from_str::<&serde_json::value::RawValue>(&info).is_ok() =>
                {
                    Verdict::Allow(Some(info.into()))
                }
                Some(_) => {
                    tracing::warn!(function = %f.name, "subscribe hook gave info that is not a JSON document of at most {MAX_INFO_LEN} bytes: denied");
                    failed("subscribe")
                }
            },
            Ok(st::SubscribeDecision::Deny(r)) => refused(r, false, &f.name),
            Ok(st::SubscribeDecision::Disconnect(r)) => refused(r, true, &f.name),
        }
    }

    /// Asks the publish hook `hook` whether `caller` may publish `data` on `channel`; an
    /// allow may carry a rewritten payload, at most `max_len` bytes, a JSON document when
    /// `json` (the client protocol's JSON format), UTF-8 when not `binary`.
    pub async fn publish(
        &self,
        runtime: &FunctionRuntime,
        hook: &str,
        caller: &Caller,
        (channel, data, binary): (&str, &[u8], bool),
        (max_len, json): (usize, bool),
    ) -> Verdict<Option<Vec<u8>>> {
        let Some(f) = self.publish.get(hook) else { return failed("publish") };
        let input = st::PublishRequest {
            client: caller.to_wit(),
            channel: channel.to_owned(),
            data: data.to_vec(),
            binary,
        };
        match run(runtime, &self.pubsub, f, &input, "publish hook").await {
            Err(_) => failed("publish"),
            Ok(st::PublishDecision::Allow(None)) => Verdict::Allow(None),
            Ok(st::PublishDecision::Allow(Some(data))) => {
                let fits = data.len() <= max_len && !data.is_empty();
                let text_ok = binary || std::str::from_utf8(&data).is_ok();
                let json_ok =
                    !json || serde_json::from_slice::<&serde_json::value::RawValue>(&data).is_ok();
                if fits && text_ok && json_ok {
                    Verdict::Allow(Some(data))
                } else {
                    tracing::warn!(
                        function = %f.name,
                        len = data.len(),
                        "publish hook rewrote the message into something that cannot be published (empty, over the message limit, not UTF-8 text, or not JSON on a JSON connection): denied"
                    );
                    failed("publish")
                }
            }
            Ok(st::PublishDecision::Deny(r)) => refused(r, false, &f.name),
            Ok(st::PublishDecision::Disconnect(r)) => refused(r, true, &f.name),
        }
    }

    /// Calls the RPC handler of `method` for `caller`: its data, or the error the caller
    /// gets (None: no function takes the method).
    pub async fn rpc(
        &self,
        runtime: &FunctionRuntime,
        caller: &Caller,
        method: &str,
        data: &[u8],
    ) -> Option<Result<Vec<u8>, Refusal>> {
        let f = self.rpc_handler(method)?;
        let input = st::RpcRequest {
            client: caller.to_wit(),
            method: method.to_owned(),
            data: data.to_vec(),
        };
        Some(match run(runtime, &self.pubsub, &f, &input, "rpc handler").await {
            Ok(Ok(data)) => Ok(data),
            Ok(Err(r)) => Err(Refusal::checked(r, false, &f.name)),
            Err(e) => Err(Refusal { code: 100, reason: format!("the rpc handler {}", short(&e)) }),
        })
    }

    /// Hands `data` that `caller` sent to the `send` handler; nobody waits for it.
    pub async fn send(&self, runtime: &FunctionRuntime, caller: &Caller, data: &[u8]) {
        let Some(f) = &self.send else { return };
        let input = st::SendRequest { client: caller.to_wit(), data: data.to_vec() };
        let _ = run(runtime, &self.pubsub, f, &input, "send handler").await;
    }
}

/// What a caller may learn of a failure: its kind, not the trap's text.
fn short(e: &InvocationError) -> &'static str {
    match e {
        InvocationError::Timeout(_) => "timed out",
        InvocationError::MemoryExceeded(_) => "ran out of memory",
        InvocationError::Trap(_) => "failed",
    }
}
