//! Atomic policy switches through the generation slots.
//!
//! The new policy is written into the slot that is neither active nor the
//! fallback, then the config word is switched with one map write. The slot
//! left behind keeps its entries: the next policy is written into it as a
//! difference, so a small change writes few entries and an unchanged policy
//! none. A slot is written only once packets that read the config word
//! before it was switched away from are done ([`GRACE`]); the daemon waits
//! only when two switches come that close together.
//!
//! A trial keeps the confirmed slot as the fallback and arms a deadline in
//! the config word: past it, the datapath itself uses the fallback.

use std::time::{Duration, Instant};

use hostfw_common::config::{Config, GENERATIONS};

use super::{Datapath, DatapathError, boot_ns};
use crate::mapstate::MapState;

/// Time given to packets that read the previous config word before the
/// slot they may be looking at is written again. BPF programs run to
/// completion in microseconds; this is generous.
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
    /// The policy was the one in force: nothing was written or switched.
    pub unchanged: bool,
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
    /// fails before the switch (a capacity error, say). A confirmed policy
    /// whose entries and settings are those in force is left as it is: no
    /// write, same revision.
    pub fn apply(&mut self, state: MapState, switch: Switch) -> Result<Applied, DatapathError> {
        let start = Instant::now();
        let slot_state = self.slot_state()?;
        if let (Switch::Confirmed, SlotState::Confirmed { generation }) = (switch, slot_state) {
            let meta = self.gen_meta(generation)?;
            let same_meta = state.meta.gen_meta(meta.revision, meta.rule_stats_base) == meta;
            if same_meta && self.slot(generation)?.same_entries(&state) {
                return Ok(Applied {
                    generation,
                    revision: meta.revision,
                    changes: 0,
                    took: start.elapsed(),
                    unchanged: true,
                });
            }
        }
        // A pending trial is reverted first: a new policy replaces it.
        let (active, confirmed) = match slot_state {
            SlotState::Empty => (self.config()?.active(), None),
            SlotState::Confirmed { generation } => (generation, Some(generation)),
            SlotState::Trial { confirmed, .. } | SlotState::Expired { confirmed, .. } => {
                self.rollback()?;
                (confirmed, Some(confirmed))
            }
        };
        let target = 1 - active;
        let kept = match confirmed {
            Some(c) => self.slot(c)?.counts(),
            None => MapState::default().counts(),
        };
        state.check_fits(&kept, &self.capacity())?;
        self.wait_retired(target);
        let meta = state.meta;
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
            meta.gen_meta(revision, target * self.sizes().rule_ids),
        )?;
        match switch {
            Switch::Confirmed => self.switch_to(Config::confirmed(target), active)?,
            Switch::Trial { duration } => {
                let deadline_ms = (boot_ns()? + duration_ns(duration)) / 1_000_000;
                // With nothing confirmed yet, the fallback is the slot in
                // force, which was never written: the trial reverts to no
                // filtering at all.
                self.switch_to(Config::trial(target, active, deadline_ms), active)?;
            }
        }
        Ok(Applied {
            generation: target,
            revision,
            changes,
            took: start.elapsed(),
            unchanged: false,
        })
    }

    /// The policy the next one is compiled after
    /// ([`crate::mapstate::compile_after`]), for its identity numbers: the
    /// confirmed one (a pending trial is replaced by the next apply), or
    /// none.
    pub fn enforced_state(&mut self) -> Result<Option<&MapState>, DatapathError> {
        let generation = match self.slot_state()? {
            SlotState::Empty => return Ok(None),
            SlotState::Confirmed { generation } => generation,
            SlotState::Trial { confirmed, .. } | SlotState::Expired { confirmed, .. } => confirmed,
        };
        self.slot(generation).map(Some)
    }

    /// Makes a pending trial the confirmed policy.
    pub fn confirm(&mut self) -> Result<bool, DatapathError> {
        match self.slot_state()? {
            SlotState::Trial {
                trial, confirmed, ..
            } => {
                self.switch_to(Config::confirmed(trial), confirmed)?;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    /// Reverts a pending (or expired) trial to the confirmed policy.
    pub fn rollback(&mut self) -> Result<bool, DatapathError> {
        match self.slot_state()? {
            // (Past the deadline the kernel already left the trial, but a
            // packet that read the config word just before may still read
            // it: the trial's slot is retired now either way.)
            SlotState::Trial {
                trial, confirmed, ..
            }
            | SlotState::Expired { trial, confirmed } => {
                self.switch_to(Config::confirmed(confirmed), trial)?;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    /// Writes the config word; `left` is the slot packets stop reading
    /// (unless `cfg` still names it as a trial's fallback).
    fn switch_to(&mut self, cfg: Config, left: u32) -> Result<(), DatapathError> {
        self.set_config(cfg)?;
        if cfg.active() != left {
            self.retired[super::slots::slot_index(left)] = Some(Instant::now());
        }
        Ok(())
    }

    /// Waits until packets that may still read `generation`, because they
    /// read the config word just before it was switched away from, are done.
    /// No wait unless that switch was less than [`GRACE`] ago.
    fn wait_retired(&mut self, generation: u32) {
        if let Some(at) = self.retired[super::slots::slot_index(generation)].take() {
            let left = GRACE.saturating_sub(at.elapsed());
            if !left.is_zero() {
                std::thread::sleep(left);
            }
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
