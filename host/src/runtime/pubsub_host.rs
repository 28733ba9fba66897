//! The host side of the WIT `pubsub` interface: what a function's `Channel` calls do.

use wasmtime::component::Resource;

use super::{
    bindings::pubsub::{Error, Host, HostChannel},
    state::InvocationState,
};
use crate::channel_name::ChannelName;

/// A channel a guest has opened: the row behind its `channel` resource handle.
#[derive(Debug)]
pub struct ChannelHandle {
    name: ChannelName,
}

/// What an invocation may do with pub/sub.
#[derive(Debug, Default)]
pub struct PubsubContext {}

impl Host for InvocationState {}

impl HostChannel for InvocationState {
    fn open(&mut self, name: String) -> wasmtime::Result<Result<Resource<ChannelHandle>, Error>> {
        let name = match ChannelName::parse(&name) {
            Ok(n) => n,
            Err(e) => return Ok(Err(Error::InvalidName(e.to_string()))),
        };
        let _ = self.table.push(ChannelHandle { name: name.clone() })?;
        Ok(Err(Error::NotConfigured(name.to_string())))
    }

    fn name(&mut self, channel: Resource<ChannelHandle>) -> wasmtime::Result<String> {
        Ok(self.table.get(&channel)?.name.to_string())
    }

    fn websocket_url(
        &mut self,
        channel: Resource<ChannelHandle>,
    ) -> wasmtime::Result<Result<String, Error>> {
        let _ = self.table.get(&channel)?;
        Ok(Err(Error::Unavailable(
            "pub/sub is not enabled in this host".into(),
        )))
    }

    fn publish(
        &mut self,
        channel: Resource<ChannelHandle>,
        _data: Vec<u8>,
    ) -> wasmtime::Result<Result<(), Error>> {
        let _ = self.table.get(&channel)?;
        Ok(Err(Error::Unavailable(
            "pub/sub is not enabled in this host".into(),
        )))
    }

    fn publish_text(
        &mut self,
        channel: Resource<ChannelHandle>,
        _text: String,
    ) -> wasmtime::Result<Result<(), Error>> {
        let _ = self.table.get(&channel)?;
        Ok(Err(Error::Unavailable(
            "pub/sub is not enabled in this host".into(),
        )))
    }

    fn subscribers(
        &mut self,
        channel: Resource<ChannelHandle>,
    ) -> wasmtime::Result<Result<u32, Error>> {
        let _ = self.table.get(&channel)?;
        Ok(Err(Error::Unavailable(
            "pub/sub is not enabled in this host".into(),
        )))
    }

    fn drop(&mut self, channel: Resource<ChannelHandle>) -> wasmtime::Result<()> {
        self.table.delete(channel)?;
        Ok(())
    }
}

impl super::bindings::types::Host for InvocationState {}
