//! Sans-IO routing: a Babel-style distance vector (RFC 8966) whose routes are labels
//! (DESIGN §1 "Routing").
//!
//! A [`Router`] is one node's routing state. The caller owns clocks and links: it reports
//! links coming up ([`Router::link_up`]), anything authenticated heard on them
//! ([`Router::link_heard`]), the routing messages they carry ([`Router::handle_message`]) and
//! the ways back learned from routed frames ([`Router::learn_return_path`]). After each call it
//! drains [`Router::poll_transmit`] (messages to send on a link) and [`Router::poll_event`]
//! (route and link changes to apply to the forwarding table), then sleeps until
//! [`Router::poll_timeout`] and calls [`Router::handle_timeout`]. Time is `now`, a monotonic
//! [`Duration`] since an arbitrary origin; the wall clock is read once, by the caller, at
//! construction. The same calls drive a control loop and an in-memory simulator.
//!
//! Loop freedom follows RFC 8966 §3.5: every node keeps, per destination key, the smallest
//! metric it has announced for the key's newest seqno, and accepts only routes from
//! neighbours that are strictly closer (or carry a newer seqno). A node left with unfeasible
//! offers only asks the origin for a newer seqno.

mod deadlines;
pub mod label;
pub mod message;
pub mod origin;
mod query;
mod router;
pub mod sim;
pub mod slots;
mod table;
#[cfg(test)]
mod tests;
mod transmit;

use std::time::Duration;

use rovy_dataplane::DropReason;

pub use label::{Label, MAX_ANNOUNCED_LABEL_LEN, MAX_LABEL_LEN, Slot, first_hop};
pub use message::{METRIC_INFINITY, MessageError};
pub use origin::{Origins, Proof, SimulatedOrigins, XeddsaOrigins};
pub use query::{Alternate, RouteInfo};
pub use router::Router;
pub use slots::{SLOT_QUARANTINE, SlotAllocator, SlotError};

/// A node's X25519 public key: its identity and the destination routes lead to.
pub type NodeKey = [u8; 32];

/// An idle link gets a HELLO this often.
pub const HELLO_INTERVAL: Duration = Duration::from_secs(1);
/// A link silent this long is dead.
pub const LINK_DEAD_AFTER: Duration = Duration::from_millis(3500);
/// Every link gets the full table this often.
pub const FULL_UPDATE_INTERVAL: Duration = Duration::from_secs(8);
/// A retraction is sent this many times ...
pub const RETRACTION_SENDS: u8 = 3;
/// ... this far apart.
pub const RETRACTION_INTERVAL: Duration = Duration::from_millis(200);
/// A route not refreshed for this long expires.
pub const ROUTE_EXPIRY: Duration = Duration::from_secs(28);
/// The origin raises its own seqno at most this often.
pub const SEQNO_RAISE_INTERVAL: Duration = Duration::from_secs(1);
/// A starving node repeats its SEQNO_REQ this often, and a node forwards the same request at
/// most this often.
pub const SEQNO_REQUEST_INTERVAL: Duration = Duration::from_secs(1);
/// Hops a SEQNO_REQ may travel: more than the longest label.
pub const SEQNO_REQUEST_HOPS: u8 = MAX_LABEL_LEN as u8 + 2;
/// A destination that lost every route keeps its feasibility distance this long, well past
/// the life of any stale route a neighbour could still announce.
pub const FEASIBILITY_HOLD: Duration = Duration::from_secs(90);
/// Most destinations one node tracks; more are refused and counted.
pub const MAX_DESTINATIONS: usize = 65_536;
/// Routes kept per destination, each through a different first hop.
pub const MAX_ROUTES_PER_DESTINATION: usize = 3;
/// Metric added per hop.
pub const LINK_COST: u16 = 1;
/// Requests (SEQNO_REQ forwards, answers to ROUTE_REQ) waiting per link; more are dropped.
pub const MAX_LINK_REQUESTS: usize = 256;
/// Smallest buffer [`Router::poll_transmit`] writes into: the largest single message.
pub const MIN_TRANSMIT_BUF: usize = message::UPDATE_HEADER_LEN + message::ENTRY_MAX_LEN;

/// A route replaces the selected one only if `new * DEN <= old * NUM` (at least 10 % better).
const HYSTERESIS_NUM: u32 = 9;
const HYSTERESIS_DEN: u32 = 10;

/// The route traffic to a destination takes, as the forwarding table needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InstalledRoute {
    /// The full label from this node to the destination.
    pub label: Label,
    /// Hop count (the link cost sum).
    pub metric: u16,
    /// The link the label starts on.
    pub next_hop: Slot,
    /// Announced, or only the way back a frame came.
    pub source: RouteSource,
}

/// Where an installed route came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteSource {
    /// Announced by a neighbour (feasible, loop-free): the route traffic keeps to.
    Announced,
    /// Learned from a frame the destination sent here, used while nothing is announced.
    ReturnPath,
}

/// What [`Router::poll_event`] reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteEvent {
    /// A destination became reachable.
    Installed {
        /// The destination.
        key: NodeKey,
        /// How to reach it.
        route: InstalledRoute,
    },
    /// A reachable destination's route changed.
    Changed {
        /// The destination.
        key: NodeKey,
        /// How to reach it now.
        route: InstalledRoute,
    },
    /// A destination is no longer reachable.
    Removed {
        /// The destination.
        key: NodeKey,
    },
    /// A link was silent for [`LINK_DEAD_AFTER`]: its slot is freed and its routes are gone.
    LinkDead {
        /// The slot it had.
        slot: Slot,
    },
}

/// Why [`Router::handle_message`] refused a message; the caller counts it as a drop.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum HandleError {
    /// The bytes are not a valid routing message.
    #[error(transparent)]
    Message(#[from] MessageError),
    /// No live link has this slot.
    #[error("no live link on slot {0}")]
    UnknownLink(Slot),
}

impl HandleError {
    /// The drop counter a refused message is counted under: a message cut short is
    /// [`DropReason::FrameTruncated`] like any other frame shorter than its layout, so the
    /// counters tell a truncated HELLO from a kind byte nobody knows.
    pub fn drop_reason(self) -> DropReason {
        match self {
            HandleError::Message(MessageError::Empty | MessageError::Truncated) => {
                DropReason::FrameTruncated
            }
            HandleError::Message(MessageError::TrailingBytes) => DropReason::BadLength,
            HandleError::Message(MessageError::LabelTooLong) => DropReason::BadLabel,
            HandleError::Message(
                MessageError::NotRouting(_) | MessageError::EchoTimeWithoutEcho,
            ) => DropReason::UnknownFrame,
            HandleError::UnknownLink(_) => DropReason::DeadSlot,
        }
    }
}

/// Counters of input the router refused or could not keep.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RouterStats {
    /// New destinations refused because [`MAX_DESTINATIONS`] were tracked.
    pub destinations_refused: u64,
    /// UPDATE entries refused: a label too long to extend, or a neighbour announcing another
    /// key with the empty label (which only the neighbour itself may use).
    pub entries_refused: u64,
    /// Requests dropped because a link's queue held [`MAX_LINK_REQUESTS`].
    pub requests_dropped: u64,
    /// UPDATE entries whose origin proof did not verify: a forged seqno (the entry is
    /// dropped).
    pub proofs_invalid: u64,
    /// UPDATE entries for a seqno newer than any proof this node holds, without a proof
    /// (dropped; the proof is asked for with a ROUTE_REQ).
    pub entries_unproven: u64,
    /// Proofs not verified because their link used up its verification budget
    /// ([`origin::VERIFY_BURST`], [`origin::VERIFY_RATE`]); their entries are dropped.
    pub proofs_deferred: u64,
}
