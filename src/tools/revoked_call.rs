//! Cancelling a tool call in flight when its caller's token is revoked under
//! `on_revoke = "kill"` (see [`crate::auth::revocation`]): the same on every transport,
//! stateless ones included, since it wraps the call where every transport runs it.

use std::future::Future;

use tokio_util::sync::CancellationToken;

use crate::{
    audit::{AuditContext, AuditEvent, AuditLog, EndedWork},
    auth::Principal,
};

/// A call in flight, as a revocation of its token cancels it (on every transport).
pub(super) struct RevokedCall {
    pub cancel: CancellationToken,
    pub id: String,
    pub trail: AuditContext,
}

impl RevokedCall {
    /// Run `work`; if the principal's lease ends first, cancel the call (its command is
    /// killed), record that, and let `work` answer as a cancelled call does.
    pub async fn cancel_on_end<T>(
        self,
        principal: &Principal,
        audit: &AuditLog,
        work: impl Future<Output = T>,
    ) -> T {
        tokio::pin!(work);
        tokio::select! {
            result = &mut work => result,
            reason = principal.lease().ended() => {
                self.cancel.cancel();
                tracing::warn!(principal = principal.name(), id = %crate::log_excerpt::log_excerpt(&self.id), %reason, "call cancelled: its token was revoked");
                let event = AuditEvent::EndedByRevocation {
                    ended: EndedWork::Call,
                    id: self.id,
                    reason,
                };
                audit.record_or_log(self.trail, event).await;
                work.await
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::{sync::Arc, time::Duration};

    use super::*;
    use crate::auth::{
        OnRevoke, Role, TokenDigest, TokenEntry, TokenSet, authenticator::Authenticator,
        revocation::Revoker,
    };

    fn login(auth: &Authenticator, secret: &'static str) -> Principal {
        let header = axum::http::HeaderValue::from_str(&format!("Bearer {secret}")).unwrap();
        auth.authenticate(Some(&header)).unwrap()
    }

    /// A call that runs until its token is cancelled, and says whether it was.
    fn call(principal: &Principal) -> (RevokedCall, impl Future<Output = bool> + use<>) {
        let cancel = CancellationToken::new();
        let revoked = RevokedCall {
            cancel: cancel.clone(),
            id: "7".to_owned(),
            trail: AuditContext::new().with_principal(principal.name()),
        };
        let work = async move {
            tokio::select! {
                () = cancel.cancelled() => true,
                () = tokio::time::sleep(Duration::from_millis(600)) => false,
            }
        };
        (revoked, work)
    }

    #[tokio::test]
    async fn a_revoked_tokens_call_is_cancelled_and_another_tokens_call_is_not() {
        let entry = |name: &str| TokenEntry::new(name, TokenDigest::of_token(name), Role::Operator);
        let auth = Arc::new(Authenticator::tokens(TokenSet::new(vec![
            entry("gone"),
            entry("kept"),
        ])));
        let (gone, kept) = (login(&auth, "gone"), login(&auth, "kept"));
        let audit = AuditLog::disabled();
        let (gone_call, gone_work) = call(&gone);
        let (kept_call, kept_work) = call(&kept);
        let revoke = async {
            tokio::time::sleep(Duration::from_millis(50)).await;
            let revoked = auth
                .replace_tokens(TokenSet::new(vec![entry("kept")]))
                .unwrap();
            Revoker::new(OnRevoke::Kill, audit.clone())
                .enforce(revoked)
                .await;
        };
        let (gone_cancelled, kept_cancelled, ()) = tokio::join!(
            gone_call.cancel_on_end(&gone, &audit, gone_work),
            kept_call.cancel_on_end(&kept, &audit, kept_work),
            revoke,
        );
        assert!(gone_cancelled, "the revoked token's call was cancelled");
        assert!(!kept_cancelled, "the other token's call ran to its end");
    }
}
