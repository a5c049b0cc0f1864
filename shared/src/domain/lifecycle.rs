//! The one profile lifecycle every provider's vocabulary maps onto.
//!
//! ```text
//! accepted -> provisioning -> provisioned -> downloaded -> installed -> activated
//!                         \-> failed                                   \-> depleted -> expired
//! provisioned --(QR validity passed, never installed)--> qr_expired --(reissue)--> replaced
//! ```
//!
//! States are totally ordered by how far a profile has got, and a transition only moves
//! forward: an event naming a state at or behind the current one is a no-op. Providers deliver
//! webhooks late, twice and out of order, and under this rule the state a profile ends in is
//! the furthest state any of its events named, whatever order they came in. A forward jump
//! (provisioned straight to activated, when the intermediate webhooks were lost) is allowed.
//!
//! `failed` ranks below `provisioned`: when a provider reports a profile after we gave up on
//! it, the profile exists, and saying otherwise would hide a live profile from its owner.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// Where a profile is in its life. The derive order is the lifecycle order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProfileState {
    /// The order was accepted and charged; provisioning has not started.
    Accepted,
    /// A provider is creating the profile.
    Provisioning,
    /// Provisioning failed and the charge is refunded.
    Failed,
    /// The profile exists and can be downloaded (SM-DP+ "released").
    Provisioned,
    /// The QR code's validity passed before the profile was installed.
    QrExpired,
    /// The device downloaded the profile.
    Downloaded,
    /// The profile is installed on the device.
    Installed,
    /// The profile is enabled and has used the network: the plan is running.
    Activated,
    /// The plan's data is used up.
    Depleted,
    /// The plan's validity ended.
    Expired,
    /// A reissued profile took this one's place.
    Replaced,
}

impl ProfileState {
    /// Every state, in lifecycle order.
    pub const ALL: [ProfileState; 11] = [
        ProfileState::Accepted,
        ProfileState::Provisioning,
        ProfileState::Failed,
        ProfileState::Provisioned,
        ProfileState::QrExpired,
        ProfileState::Downloaded,
        ProfileState::Installed,
        ProfileState::Activated,
        ProfileState::Depleted,
        ProfileState::Expired,
        ProfileState::Replaced,
    ];

    /// The stable word used in the API and in stored records.
    pub fn as_str(self) -> &'static str {
        match self {
            ProfileState::Accepted => "accepted",
            ProfileState::Provisioning => "provisioning",
            ProfileState::Failed => "failed",
            ProfileState::Provisioned => "provisioned",
            ProfileState::QrExpired => "qr_expired",
            ProfileState::Downloaded => "downloaded",
            ProfileState::Installed => "installed",
            ProfileState::Activated => "activated",
            ProfileState::Depleted => "depleted",
            ProfileState::Expired => "expired",
            ProfileState::Replaced => "replaced",
        }
    }

    /// What the end user should do next, in a sentence an app can show as it is.
    pub fn next_step(self) -> &'static str {
        match self {
            ProfileState::Accepted | ProfileState::Provisioning => {
                "Your eSIM is being prepared. This usually takes under a minute; there is \
                 nothing to do yet."
            }
            ProfileState::Failed => {
                "We could not prepare this eSIM and you have not been charged for it. Try \
                 again or choose another plan."
            }
            ProfileState::Provisioned => {
                "Install the eSIM: scan the QR code in Settings > Mobile Data > Add eSIM, \
                 or use the install link, while you have Wi-Fi."
            }
            ProfileState::QrExpired => {
                "This QR code has expired before it was used. Ask for a new one: you will \
                 not be charged again."
            }
            ProfileState::Downloaded => {
                "The eSIM is downloading to your phone. Keep Wi-Fi on until the phone shows \
                 the new line."
            }
            ProfileState::Installed => {
                "The eSIM is installed. When you arrive, turn the line on and enable data \
                 roaming for it in Settings > Mobile Data."
            }
            ProfileState::Activated => {
                "Your eSIM is active. Keep data roaming on for this line; you can check \
                 your remaining data here."
            }
            ProfileState::Depleted => {
                "Your data is used up. Top up to keep using this eSIM without installing \
                 a new one."
            }
            ProfileState::Expired => {
                "This plan has ended. Buy a new plan to get connected again; you can remove \
                 the old eSIM from Settings."
            }
            ProfileState::Replaced => {
                "This eSIM was replaced by a new one. Use the new eSIM's QR code instead."
            }
        }
    }

    /// True when no event can move the profile any further.
    pub fn is_terminal(self) -> bool {
        self == ProfileState::Replaced
    }
}

/// What applying an event did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    /// The profile moved forward.
    Advanced {
        /// The state before.
        from: ProfileState,
        /// The state after.
        to: ProfileState,
    },
    /// The event named the current state again: a duplicate.
    Duplicate,
    /// The event named a state behind the current one: late, ignored.
    Stale,
}

/// An observation that a profile reached a state, with when it happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProfileEvent {
    /// The state the event says the profile reached.
    pub state: ProfileState,
    /// When it was reached, by the provider's clock where the provider says.
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
}

/// A profile's state and when each state was first reached.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lifecycle {
    /// The current state.
    pub state: ProfileState,
    /// When each state the profile passed through was first reached.
    pub reached_at: BTreeMap<ProfileState, ReachedAt>,
}

/// A timestamp in a lifecycle's history.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReachedAt(#[serde(with = "time::serde::rfc3339")] pub OffsetDateTime);

impl Lifecycle {
    /// A new lifecycle in `state`, reached at `at`.
    pub fn new(state: ProfileState, at: OffsetDateTime) -> Self {
        Self {
            state,
            reached_at: BTreeMap::from([(state, ReachedAt(at))]),
        }
    }

    /// Applies an event: moves forward, or does nothing for a duplicate or late event.
    pub fn apply(&mut self, event: ProfileEvent) -> Transition {
        let from = self.state;
        if event.state == from {
            return Transition::Duplicate;
        }
        if event.state < from {
            // A late event still tells us when an earlier state was reached, which time to
            // activation needs; keep the earliest report of each state.
            self.record(event);
            return Transition::Stale;
        }
        self.state = event.state;
        self.record(event);
        Transition::Advanced {
            from,
            to: event.state,
        }
    }

    /// When `state` was reached, if it was.
    pub fn reached(&self, state: ProfileState) -> Option<OffsetDateTime> {
        self.reached_at.get(&state).map(|r| r.0)
    }

    fn record(&mut self, event: ProfileEvent) {
        let entry = self
            .reached_at
            .entry(event.state)
            .or_insert(ReachedAt(event.at));
        if event.at < entry.0 {
            entry.0 = event.at;
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use time::macros::datetime;

    use super::*;

    fn at(minute: i64) -> OffsetDateTime {
        datetime!(2026-01-01 00:00 UTC) + time::Duration::minutes(minute)
    }

    fn event(state: ProfileState, minute: i64) -> ProfileEvent {
        ProfileEvent {
            state,
            at: at(minute),
        }
    }

    #[test]
    fn every_forward_transition_advances_and_every_backward_one_is_stale() {
        for from in ProfileState::ALL {
            for to in ProfileState::ALL {
                let mut lifecycle = Lifecycle::new(from, at(0));

                let transition = lifecycle.apply(event(to, 1));

                let expected = match to.cmp(&from) {
                    std::cmp::Ordering::Greater => Transition::Advanced { from, to },
                    std::cmp::Ordering::Equal => Transition::Duplicate,
                    std::cmp::Ordering::Less => Transition::Stale,
                };
                assert_eq!(transition, expected, "{from:?} -> {to:?}");
                assert_eq!(lifecycle.state, from.max(to), "{from:?} -> {to:?}");
            }
        }
    }

    #[test]
    fn a_duplicate_event_changes_nothing() {
        let mut lifecycle = Lifecycle::new(ProfileState::Provisioned, at(0));
        lifecycle.apply(event(ProfileState::Downloaded, 5));
        let before = lifecycle.clone();

        let transition = lifecycle.apply(event(ProfileState::Downloaded, 5));

        assert_eq!(transition, Transition::Duplicate);
        assert_eq!(lifecycle, before);
    }

    #[test]
    fn a_late_event_records_when_the_earlier_state_was_reached() {
        let mut lifecycle = Lifecycle::new(ProfileState::Provisioned, at(0));
        lifecycle.apply(event(ProfileState::Activated, 30));

        let transition = lifecycle.apply(event(ProfileState::Installed, 20));

        assert_eq!(transition, Transition::Stale);
        assert_eq!(lifecycle.state, ProfileState::Activated);
        assert_eq!(lifecycle.reached(ProfileState::Installed), Some(at(20)));
    }

    #[test]
    fn every_state_has_a_next_step_sentence() {
        for state in ProfileState::ALL {
            let sentence = state.next_step();
            assert!(sentence.ends_with('.'), "{state:?}");
            assert!(!sentence.contains("  "), "{state:?}");
        }
    }

    #[test]
    fn state_words_round_trip_through_serde() {
        for state in ProfileState::ALL {
            let json = serde_json::to_string(&state).expect("serialises");
            assert_eq!(json, format!("\"{}\"", state.as_str()));
            let back: ProfileState = serde_json::from_str(&json).expect("parses");
            assert_eq!(back, state);
        }
    }

    /// The reference model, written independently of `Lifecycle::apply`: walk the happy path
    /// and the side branches in lifecycle order and keep the last one any event named.
    fn reference_final_state(start: ProfileState, events: &[ProfileState]) -> ProfileState {
        let order = [
            "accepted",
            "provisioning",
            "failed",
            "provisioned",
            "qr_expired",
            "downloaded",
            "installed",
            "activated",
            "depleted",
            "expired",
            "replaced",
        ];
        let position = |s: ProfileState| order.iter().position(|w| *w == s.as_str());
        std::iter::once(start)
            .chain(events.iter().copied())
            .max_by_key(|s| position(*s))
            .unwrap_or(start)
    }

    fn any_state() -> impl Strategy<Value = ProfileState> {
        proptest::sample::select(ProfileState::ALL.to_vec())
    }

    proptest! {
        #[test]
        fn any_order_and_duplication_ends_in_the_reference_state(
            events in proptest::collection::vec(any_state(), 0..24),
            seed in any::<u64>(),
        ) {
            let mut shuffled = events.clone();
            // Duplicate some events and shuffle deterministically from the seed.
            let extra: Vec<_> = shuffled.iter().copied().step_by(3).collect();
            shuffled.extend(extra);
            let mut state = seed;
            for i in (1..shuffled.len()).rev() {
                state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                let j = (state >> 33) as usize % (i + 1);
                shuffled.swap(i, j);
            }
            let mut lifecycle = Lifecycle::new(ProfileState::Accepted, at(0));

            for (minute, s) in shuffled.iter().enumerate() {
                lifecycle.apply(event(*s, minute as i64 + 1));
            }

            let expected = reference_final_state(ProfileState::Accepted, &events);
            prop_assert_eq!(lifecycle.state, expected);
        }

        #[test]
        fn the_state_never_moves_backward(
            events in proptest::collection::vec(any_state(), 1..24),
        ) {
            let mut lifecycle = Lifecycle::new(ProfileState::Accepted, at(0));
            for (minute, s) in events.iter().enumerate() {
                let before = lifecycle.state;
                lifecycle.apply(event(*s, minute as i64 + 1));
                prop_assert!(lifecycle.state >= before);
            }
        }
    }
}
