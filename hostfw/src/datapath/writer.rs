//! Atomic policy switches through the generation slots.
//!
//! The new policy is written into the slot that is neither active nor the
//! fallback, then the config word is switched with one map write. After a
//! confirmed switch the old slot is cleared, once in-flight packets that
//! read the old config word are done ([`GRACE`]).
//!
//! A trial keeps the confirmed slot as the fallback and arms a deadline in
//! the config word: past it, the datapath itself uses the fallback.

use std::time::{Duration, Instant};

use hostfw_common::config::{Config, GENERATIONS};

use super::{Datapath, DatapathError, boot_ns};
use crate::mapstate::MapState;

/// Time given to packets that read the previous config word before the
/// slot they may be looking at is cleared. BPF programs run to completion
/// in microseconds; this is generous.
pub const GRACE: Duration = Duration::from_millis(20);

/// How to switch to a new policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Switch {
    /// The new policy becomes the confirmed one.
    Confirmed,
    /// The new policy is a trial that reverts by itself after `duration`.
    Trial {
        /// Time until the kernel falls back.
        duration: Duration,
    },
}

/// What an apply did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Applied {
    /// The slot now active.
    pub generation: u32,
    /// The new revision.
    pub revision: u32,
    /// Map entries written or removed.
    pub changes: usize,
    /// Wall time of the write and switch.
    pub took: Duration,
}

/// The state of the generation switch, as userspace sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SlotState {
    /// Nothing was ever applied.
    Empty,
    /// One confirmed generation.
    Confirmed {
        /// Its slot.
        generation: u32,
    },
    /// A trial is active and the confirmed generation is its fallback.
    Trial {
        /// Trial slot.
        trial: u32,
        /// Confirmed slot.
        confirmed: u32,
        /// Boot-clock deadline in milliseconds.
        deadline_ms: u64,
    },
    /// A trial's deadline passed: the kernel already uses the fallback.
    Expired {
        /// The expired trial's slot.
        trial: u32,
        /// The confirmed slot, in force.
        confirmed: u32,
    },
}

impl Datapath {
    /// Where the switch stands now.
    pub fn slot_state(&self) -> Result<SlotState, DatapathError> {
        let cfg = self.config()?;
        let active = cfg.active();
        if self.gen_meta(active)?.revision == 0 {
            return Ok(SlotState::Empty);
        }
        Ok(match cfg.deadline_ms() {
            None => SlotState::Confirmed { generation: active },
            Some(deadline_ms) => {
                if boot_ns()? / 1_000_000 >= deadline_ms {
                    SlotState::Expired {
                        trial: active,
                        confirmed: cfg.fallback(),
                    }
                } else {
                    SlotState::Trial {
                        trial: active,
                        confirmed: cfg.fallback(),
                        deadline_ms,
                    }
                }
            }
        })
    }

    /// Writes `state` and switches to it. Nothing in force changes if this
    /// fails before the switch (a capacity error, say).
    pub fn apply(&mut self, state: &MapState, switch: Switch) -> Result<Applied, DatapathError> {
        let start = Instant::now();
        // A pending trial is reverted first: a new policy replaces it.
        let confirmed = match self.slot_state()? {
            SlotState::Empty => None,
            SlotState::Confirmed { generation } => Some(generation),
            SlotState::Trial {
                trial, confirmed, ..
            }
            | SlotState::Expired { trial, confirmed } => {
                self.set_config(Config::confirmed(confirmed))?;
                std::thread::sleep(GRACE);
                self.clear_generation(trial)?;
                Some(confirmed)
            }
        };
        let target = confirmed.map_or(0, |c| 1 - c);
        let kept = match confirmed {
            Some(c) => self.slot(c)?.counts(),
            None => MapState::default().counts(),
        };
        state.check_fits(&kept, &self.capacity())?;
        let changes = self.write_state(target, state)?;
        let revision = (0..GENERATIONS)
            .map(|g| self.gen_meta(g).map(|m| m.revision))
            .collect::<Result<Vec<_>, _>>()?
            .into_iter()
            .max()
            .unwrap_or(0)
            .wrapping_add(1)
            .max(1);
        self.set_gen_meta(
            target,
            state
                .meta
                .gen_meta(revision, target * self.sizes().rule_ids),
        )?;
        match switch {
            Switch::Confirmed => {
                self.set_config(Config::confirmed(target))?;
                if let Some(old) = confirmed {
                    std::thread::sleep(GRACE);
                    self.clear_generation(old)?;
                }
            }
            Switch::Trial { duration } => {
                let deadline_ms = (boot_ns()? + duration_ns(duration)) / 1_000_000;
                // With nothing confirmed yet, the fallback is the empty slot:
                // the trial reverts to no filtering at all.
                let fallback = confirmed.unwrap_or(1 - target);
                self.set_config(Config::trial(target, fallback, deadline_ms))?;
            }
        }
        Ok(Applied {
            generation: target,
            revision,
            changes,
            took: start.elapsed(),
        })
    }

    /// Makes a pending trial the confirmed policy.
    pub fn confirm(&mut self) -> Result<bool, DatapathError> {
        match self.slot_state()? {
            SlotState::Trial {
                trial, confirmed, ..
            } => {
                self.set_config(Config::confirmed(trial))?;
                if confirmed != trial {
                    std::thread::sleep(GRACE);
                    self.clear_generation(confirmed)?;
                }
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    /// Reverts a pending (or expired) trial to the confirmed policy.
    pub fn rollback(&mut self) -> Result<bool, DatapathError> {
        match self.slot_state()? {
            SlotState::Trial {
                trial, confirmed, ..
            }
            | SlotState::Expired { trial, confirmed } => {
                self.set_config(Config::confirmed(confirmed))?;
                if confirmed != trial {
                    std::thread::sleep(GRACE);
                    self.clear_generation(trial)?;
                }
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    /// What the maps can hold.
    #[must_use]
    pub fn capacity(&self) -> crate::mapstate::Capacity {
        let s = self.sizes();
        crate::mapstate::Capacity {
            ident_v4: s.ident_v4,
            ident_v6: s.ident_v6,
            policy: s.policy,
            rule_ids: s.rule_ids,
        }
    }
}

fn duration_ns(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX / 2)
}
