//! Concurrency limits: how many commands may run at once, server-wide and per principal.
//! A [`CommandSlot`] is taken before a command starts and given back when it is dropped.

use std::{collections::HashMap, sync::Arc};

use parking_lot::{Mutex, MutexGuard};

/// The limits, from the `[limits]` config table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlotLimits {
    pub max_total: usize,
    pub max_per_principal: usize,
}

/// Why no slot was given.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SlotError {
    #[error(
        "the server is already running its maximum of {0} commands; try again when one finishes"
    )]
    ServerFull(usize),
    #[error(
        "you are already running your maximum of {0} commands; wait for one to finish or kill a job"
    )]
    PrincipalFull(usize),
}

/// Counts running commands.
#[derive(Debug)]
pub struct CommandSlots {
    /// Changed by a reload ([`CommandSlots::set_limits`]).
    limits: Mutex<SlotLimits>,
    running: Mutex<Counts>,
}

#[derive(Debug, Default)]
struct Counts {
    total: usize,
    per_principal: HashMap<Arc<str>, usize>,
}

/// One running command's place; dropping it frees the place.
#[derive(Debug)]
pub struct CommandSlot {
    slots: Arc<CommandSlots>,
    principal: Arc<str>,
}

impl CommandSlots {
    pub fn new(limits: SlotLimits) -> Arc<Self> {
        Arc::new(Self {
            limits: Mutex::new(limits),
            running: Mutex::default(),
        })
    }

    /// Take a slot for `principal`, or say which limit is reached. Never waits.
    pub fn try_acquire(self: &Arc<Self>, principal: &str) -> Result<CommandSlot, SlotError> {
        let limits = *self.limits.lock();
        let mut counts = self.lock();
        if counts.total >= limits.max_total {
            return Err(SlotError::ServerFull(limits.max_total));
        }
        let principal: Arc<str> = Arc::from(principal);
        let mine = counts.per_principal.entry(principal.clone()).or_default();
        if *mine >= limits.max_per_principal {
            return Err(SlotError::PrincipalFull(limits.max_per_principal));
        }
        *mine += 1;
        counts.total += 1;
        Ok(CommandSlot {
            slots: self.clone(),
            principal,
        })
    }

    /// Give the following acquisitions `limits`; slots already taken stay taken, so for a
    /// while more commands than a lowered limit may run.
    pub fn set_limits(&self, limits: SlotLimits) {
        *self.limits.lock() = limits;
    }

    /// Commands running now.
    pub fn running(&self) -> usize {
        self.lock().total
    }

    fn lock(&self) -> MutexGuard<'_, Counts> {
        self.running.lock()
    }
}

impl Drop for CommandSlot {
    fn drop(&mut self) {
        let mut counts = self.slots.lock();
        counts.total -= 1;
        if let Some(mine) = counts.per_principal.get_mut(&self.principal) {
            *mine -= 1;
            if *mine == 0 {
                counts.per_principal.remove(&self.principal);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_principal_and_total_limits_hold_and_free_on_drop() {
        let slots = CommandSlots::new(SlotLimits {
            max_total: 3,
            max_per_principal: 2,
        });
        let a1 = slots.try_acquire("a").unwrap();
        let _a2 = slots.try_acquire("a").unwrap();
        assert_eq!(
            slots.try_acquire("a").unwrap_err(),
            SlotError::PrincipalFull(2)
        );
        let _b1 = slots.try_acquire("b").unwrap();
        assert_eq!(
            slots.try_acquire("b").unwrap_err(),
            SlotError::ServerFull(3)
        );
        drop(a1);
        assert_eq!(slots.running(), 2);
        assert!(slots.try_acquire("b").is_ok());
    }
}
