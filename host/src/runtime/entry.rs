//! The exports tern calls, one per world, behind one trait so that every kind of function
//! is invoked by the same code path.

use std::future::Future;

use wasmtime::Store;

use super::{
    bindings::{
        connect::ConnectHookPre, http::HttpFunctionPre, message::PubsubFunctionPre,
        publish::PublishHookPre, rpc::RpcFunctionPre, send::SendFunctionPre, session_types as st,
        subscribe::SubscribeHookPre, types,
    },
    component::{self, RequiredExport},
    state::InvocationState,
};

/// A world's pre-instantiated component and how to call its export.
pub trait Entry: Send + Sync + Sized + 'static {
    /// What the export takes.
    type Input: Send + Sync;
    /// What it returns.
    type Output: Send;
    /// The export the component must have.
    const EXPORT: RequiredExport;

    /// Checks the instance-pre has this world's export.
    fn new(pre: wasmtime::component::InstancePre<InvocationState>) -> wasmtime::Result<Self>;

    /// Instantiates into `store` and calls the export.
    fn call<'a>(
        &'a self,
        store: &'a mut Store<InvocationState>,
        input: &'a Self::Input,
    ) -> impl Future<Output = wasmtime::Result<Self::Output>> + Send + 'a;
}

impl Entry for HttpFunctionPre<InvocationState> {
    type Input = types::Request;
    type Output = types::Response;
    const EXPORT: RequiredExport = component::HTTP_EXPORT;

    fn new(pre: wasmtime::component::InstancePre<InvocationState>) -> wasmtime::Result<Self> {
        HttpFunctionPre::new(pre)
    }

    async fn call(
        &self,
        store: &mut Store<InvocationState>,
        input: &types::Request,
    ) -> wasmtime::Result<types::Response> {
        let instance = self.instantiate_async(&mut *store).await?;
        instance.call_handle_http(&mut *store, input).await
    }
}

impl Entry for PubsubFunctionPre<InvocationState> {
    type Input = types::Message;
    type Output = ();
    const EXPORT: RequiredExport = component::MESSAGE_EXPORT;

    fn new(pre: wasmtime::component::InstancePre<InvocationState>) -> wasmtime::Result<Self> {
        PubsubFunctionPre::new(pre)
    }

    async fn call(
        &self,
        store: &mut Store<InvocationState>,
        input: &types::Message,
    ) -> wasmtime::Result<()> {
        let instance = self.instantiate_async(&mut *store).await?;
        instance.call_handle_message(&mut *store, input).await
    }
}

/// Implements [`Entry`] for a world whose export takes one record and returns a value.
macro_rules! entry {
    ($pre:ident, $input:ty, $output:ty, $export:expr, $call:ident) => {
        impl Entry for $pre<InvocationState> {
            type Input = $input;
            type Output = $output;
            const EXPORT: RequiredExport = $export;

            fn new(
                pre: wasmtime::component::InstancePre<InvocationState>,
            ) -> wasmtime::Result<Self> {
                $pre::new(pre)
            }

            async fn call(
                &self,
                store: &mut Store<InvocationState>,
                input: &$input,
            ) -> wasmtime::Result<$output> {
                let instance = self.instantiate_async(&mut *store).await?;
                instance.$call(&mut *store, input).await
            }
        }
    };
}

entry!(
    RpcFunctionPre,
    st::RpcRequest,
    Result<Vec<u8>, st::Refusal>,
    component::RPC_EXPORT,
    call_handle_rpc
);
entry!(SendFunctionPre, st::SendRequest, (), component::SEND_EXPORT, call_handle_send);
entry!(
    ConnectHookPre,
    st::ConnectRequest,
    st::ConnectDecision,
    component::CONNECT_EXPORT,
    call_on_connect
);
entry!(
    SubscribeHookPre,
    st::SubscribeRequest,
    st::SubscribeDecision,
    component::SUBSCRIBE_EXPORT,
    call_on_subscribe
);
entry!(
    PublishHookPre,
    st::PublishRequest,
    st::PublishDecision,
    component::PUBLISH_EXPORT,
    call_on_publish
);
