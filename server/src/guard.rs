//! Open streams end when their caller loses access: a reload that revokes
//! its certificate or withdraws its grant ends a Tail, Query, Export,
//! Download or AppendStream with PERMISSION_DENIED at once (docs/SECURITY.md
//! "Revocation").
//!
//! Owns: the stream wrapper and the watch that fires it. Must not: decide
//! access itself (it asks `auth::Access::recheck`).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio_stream::Stream;
use tonic::Status;

use crate::auth::{AccessCell, Caller};
use crate::config::Role;

/// A boxed response stream.
pub type Boxed<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

/// Also checked without a reload: a certificate that expires while its
/// stream is open.
const RECHECK_EVERY: Duration = Duration::from_secs(60);

/// Resolves, with the refusal, when `caller` no longer holds one of `roles`
/// on `log` (`None`: on any hosted log) under the access table in force.
pub fn access_lost(
    cell: &Arc<AccessCell>,
    caller: &Caller,
    log: Option<&str>,
    roles: &[Role],
) -> impl Future<Output = Status> + Send + 'static {
    let (cell, caller, log, roles) = (cell.clone(), caller.clone(), log.map(str::to_owned), roles.to_vec());
    let mut changes = cell.changes();
    async move {
        if !cell.current().enforced() {
            // Without TLS every caller has every role, whatever a reload says.
            return std::future::pending().await;
        }
        loop {
            tokio::select! {
                changed = changes.changed() => if changed.is_err() { std::future::pending::<()>().await },
                () = tokio::time::sleep(RECHECK_EVERY) => {}
            }
            if let Err(s) = cell.current().recheck(&caller, log.as_deref(), &roles) {
                return s;
            }
        }
    }
}

/// `inner`, ended by the refusal `lost` resolves to.
pub fn until_lost<T: 'static>(inner: Boxed<T>, lost: impl Future<Output = Status> + Send + 'static) -> Boxed<T> {
    Box::pin(Guarded { inner: Some(inner), lost: Box::pin(lost) })
}

struct Guarded<T> {
    inner: Option<Boxed<T>>,
    lost: Pin<Box<dyn Future<Output = Status> + Send>>,
}

impl<T> Stream for Guarded<T> {
    type Item = Result<T, Status>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        let Some(inner) = this.inner.as_mut() else { return Poll::Ready(None) };
        if let Poll::Ready(refusal) = this.lost.as_mut().poll(cx) {
            this.inner = None;
            return Poll::Ready(Some(Err(refusal)));
        }
        let next = inner.as_mut().poll_next(cx);
        if matches!(next, Poll::Ready(None)) {
            this.inner = None;
        }
        next
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio_stream::StreamExt as _;

    #[tokio::test]
    async fn the_stream_ends_with_the_refusal_and_nothing_after_it() {
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<u32, Status>>(4);
        let (fire, fired) = tokio::sync::oneshot::channel::<()>();
        let lost = async move {
            let _ = fired.await;
            Status::permission_denied("revoked")
        };
        let mut s = until_lost(Box::pin(tokio_stream::wrappers::ReceiverStream::new(rx)), lost);
        tx.send(Ok(1)).await.unwrap();
        assert_eq!(s.next().await.unwrap().unwrap(), 1);
        fire.send(()).unwrap();
        tx.send(Ok(2)).await.unwrap();
        let end = s.next().await.unwrap().unwrap_err();
        assert_eq!(end.code(), tonic::Code::PermissionDenied);
        assert!(s.next().await.is_none(), "nothing follows the refusal");
    }
}
