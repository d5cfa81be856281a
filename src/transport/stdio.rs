//! MCP over stdin/stdout: newline-delimited JSON-RPC; logs go to stderr only. Every
//! request that comes in carries the one [`Caller`] of the process (its owner): stdio has
//! no authentication, and the handler reads the caller as on every other transport.

use rmcp::{
    RoleServer, ServerHandler, ServiceExt,
    model::{ClientJsonRpcMessage, GetExtensions},
    service::{RxJsonRpcMessage, TxJsonRpcMessage},
    transport::{Transport, async_rw::AsyncRwTransport},
};

use crate::caller::Caller;

/// Serve `handler` until the client closes stdin; every request comes from `caller`.
pub async fn serve<H>(handler: H, caller: Caller) -> anyhow::Result<()>
where
    H: ServerHandler,
{
    let (stdin, stdout) = rmcp::transport::io::stdio();
    let transport = WithCaller {
        inner: AsyncRwTransport::new_server(stdin, stdout),
        caller,
    };
    let service = handler.serve(transport).await?;
    service.waiting().await?;
    Ok(())
}

/// A transport whose incoming requests and notifications all carry `caller`.
pub struct WithCaller<T> {
    pub inner: T,
    pub caller: Caller,
}

impl<T> Transport<RoleServer> for WithCaller<T>
where
    T: Transport<RoleServer>,
{
    type Error = T::Error;

    fn send(
        &mut self,
        item: TxJsonRpcMessage<RoleServer>,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send + 'static {
        self.inner.send(item)
    }

    async fn receive(&mut self) -> Option<RxJsonRpcMessage<RoleServer>> {
        let mut message = self.inner.receive().await?;
        match &mut message {
            ClientJsonRpcMessage::Request(request) => {
                request.request.extensions_mut().insert(self.caller.clone());
            }
            ClientJsonRpcMessage::Notification(notification) => {
                let extensions = notification.notification.extensions_mut();
                extensions.insert(self.caller.clone());
            }
            _ => {}
        }
        Some(message)
    }

    async fn close(&mut self) -> Result<(), Self::Error> {
        self.inner.close().await
    }
}

#[cfg(test)]
mod tests {
    use rmcp::model::ClientRequest;
    use tokio::io::AsyncWriteExt;

    use super::*;
    use crate::caller::Transport as CallerTransport;

    #[tokio::test]
    async fn every_incoming_request_and_notification_carries_the_local_caller() {
        let (client, server) = tokio::io::duplex(4096);
        let (server_read, server_write) = tokio::io::split(server);
        let mut transport = WithCaller {
            inner: AsyncRwTransport::<RoleServer, _, _>::new_server(server_read, server_write),
            caller: Caller::stdio(crate::auth::danger::stdio_owner()),
        };
        let (_client_read, mut client_write) = tokio::io::split(client);
        client_write
            .write_all(
                b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}\n\
                  {\"jsonrpc\":\"2.0\",\"method\":\"notifications/initialized\"}\n",
            )
            .await
            .unwrap();
        let Some(ClientJsonRpcMessage::Request(mut request)) = transport.receive().await else {
            panic!("a request");
        };
        assert!(matches!(request.request, ClientRequest::PingRequest(_)));
        let caller = request.request.extensions_mut().remove::<Caller>().unwrap();
        assert_eq!(caller.principal.name(), "stdio");
        assert_eq!(caller.transport, CallerTransport::Stdio);
        let Some(ClientJsonRpcMessage::Notification(mut notification)) = transport.receive().await
        else {
            panic!("a notification");
        };
        let extensions = notification.notification.extensions_mut();
        assert!(extensions.get::<Caller>().is_some());
    }
}
