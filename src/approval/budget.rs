//! The approval page's budget of failed submissions: a wrong, the requester's own or a
//! non-approver's token typed into the form counts against the client's address and
//! against the approval id. Once either is over `[approval] page_failures` in its
//! `page_failure_window_secs`, every submission from that address or for that approval is
//! refused with 429 and `Retry-After` before its token is even looked at, so a guess made
//! while over budget tells nothing; after the window a correct submission works again.
//!
//! Two keys, because each alone has a hole: by address only, a guesser rotating addresses
//! hammers one approval; by approval only, one address sweeps every pending approval. The
//! approval key can only be spent by someone holding the URL's one-time secret (a wrong
//! secret answers 404 first), that is the requester or an approver, so at worst the model
//! delays its own command. Built on [`crate::ratelimit::RateLimiter`].

use std::{net::IpAddr, time::Duration};

use crate::ratelimit::{Limited, RateLimiter};

/// Failed submissions allowed per key and window, unless `[approval]` says otherwise.
pub const DEFAULT_FAILURES: u32 = 5;
/// The window, unless `[approval] page_failure_window_secs` says otherwise.
pub const DEFAULT_WINDOW: Duration = Duration::from_secs(60);

/// Failed page submissions per client address and per approval id.
#[derive(Debug)]
pub struct PageBudget {
    failures: u32,
    window: Duration,
    by_address: RateLimiter<IpAddr>,
    by_approval: RateLimiter<String>,
}

/// Which key is over budget, and until when.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OverBudget {
    pub key: BudgetKey,
    pub limited: Limited,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BudgetKey {
    Address,
    Approval,
}

impl BudgetKey {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Address => "this address",
            Self::Approval => "this approval",
        }
    }
}

impl PageBudget {
    pub fn new(failures: u32, window: Duration) -> Self {
        Self {
            failures,
            window,
            by_address: RateLimiter::new(failures, window),
            by_approval: RateLimiter::new(failures, window),
        }
    }

    /// Counts `failures` per `window`: a reload that keeps both keeps this budget's counts.
    pub fn counts(&self, failures: u32, window: Duration) -> bool {
        self.failures == failures && self.window == window
    }

    /// `Err` while `address` (when known) or `approval_id` is over budget; counts nothing.
    pub fn check(&self, address: Option<IpAddr>, approval_id: &str) -> Result<(), OverBudget> {
        if let Some(address) = address {
            self.by_address
                .check(&address)
                .map_err(|limited| OverBudget {
                    key: BudgetKey::Address,
                    limited,
                })?;
        }
        self.by_approval
            .check(&approval_id.to_owned())
            .map_err(|limited| OverBudget {
                key: BudgetKey::Approval,
                limited,
            })
    }

    /// Count one failed submission against both keys.
    pub fn failed(&self, address: Option<IpAddr>, approval_id: &str) {
        if let Some(address) = address {
            let _ = self.by_address.hit(&address);
        }
        let _ = self.by_approval.hit(&approval_id.to_owned());
    }
}

impl Default for PageBudget {
    fn default() -> Self {
        Self::new(DEFAULT_FAILURES, DEFAULT_WINDOW)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ONE: Option<IpAddr> = Some(IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 1)));
    const TWO: Option<IpAddr> = Some(IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 2)));

    #[test]
    fn an_address_over_budget_is_refused_for_every_approval_and_others_are_not() {
        let budget = PageBudget::new(2, Duration::from_secs(60));
        budget.failed(ONE, "ap-1");
        assert!(budget.check(ONE, "ap-2").is_ok(), "one failure of two");
        budget.failed(ONE, "ap-2");
        let over = budget.check(ONE, "ap-3").unwrap_err();
        assert_eq!(over.key, BudgetKey::Address);
        assert!(over.limited.retry_after <= Duration::from_secs(60));
        // Near miss: another address, on an approval with one failure.
        assert!(budget.check(TWO, "ap-1").is_ok());
    }

    #[test]
    fn an_approval_over_budget_is_refused_from_every_address_and_others_are_not() {
        let budget = PageBudget::new(2, Duration::from_secs(60));
        budget.failed(ONE, "ap-1");
        budget.failed(TWO, "ap-1");
        assert_eq!(
            budget.check(None, "ap-1").unwrap_err().key,
            BudgetKey::Approval
        );
        let fresh = Some(IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 3)));
        assert_eq!(
            budget.check(fresh, "ap-1").unwrap_err().key,
            BudgetKey::Approval
        );
        // Near miss: another approval from an address with one failure.
        assert!(budget.check(ONE, "ap-2").is_ok());
    }

    #[test]
    fn the_budget_comes_back_after_its_window() {
        let budget = PageBudget::new(1, Duration::from_millis(100));
        budget.failed(ONE, "ap-1");
        assert!(budget.check(ONE, "ap-1").is_err());
        std::thread::sleep(Duration::from_millis(120));
        assert!(budget.check(ONE, "ap-1").is_ok());
    }
}
