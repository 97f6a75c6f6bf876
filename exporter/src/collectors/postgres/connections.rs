//! The connections the PostgreSQL targets hold, bounded per server.
//!
//! Many targets often share one server (one target per database is a common
//! layout), and a connection belongs to one database, so targets cannot
//! share connections. What they share is a [`ServerGate`], keyed by the
//! `server` label (`host:port`): a semaphore whose permits are the
//! connections all targets on that server may hold together, idle or busy —
//! `connection_share` × the server's `max_connections`, learnt on the first
//! connection (until then one). Each target keeps at most one idle connection
//! between scrapes ([`Slot`]); a target that finds every permit taken closes
//! the server's least recently used idle connection and waits, under its
//! scrape deadline, for the permit that frees; while anyone waits, a
//! connection given back is closed instead of kept, passing its permit on.
//! A reaper closes connections idle longer than `idle_timeout`. A hung server
//! therefore stalls only the targets on it: nothing here waits on another
//! server's gate.
//!
//! The gate also keeps what is the same for every target on the server and
//! expensive to measure: the database sizes (`pg_database_size` stats every
//! file of every database), so 100 targets on one cluster measure them once
//! per interval, not 100 times; and the areas' statements (a few KiB of SQL),
//! so 100 targets reading the same tables hold one copy.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant as StdInstant};

use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, Connection, PgConnection};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

use super::areas::AreaStatements;

use crate::collectors::collector::lock;

/// How long closing a connection may take before its socket is just dropped.
const CLOSE_DEADLINE: Duration = Duration::from_secs(1);

/// The most connections one server's gate hands out, whatever the share says:
/// far more than any number of concurrent scrapes needs.
pub const MAX_SERVER_CONNECTIONS: usize = 256;

/// The gates of every server the configured targets use, one per `server` label.
#[derive(Debug)]
pub struct ServerGates {
    share: f64,
    idle_timeout: Duration,
    gates: Mutex<HashMap<String, Arc<ServerGate>>>,
}

impl ServerGates {
    /// Gates giving each server `share` of its `max_connections` and closing
    /// connections idle for `idle_timeout`.
    pub fn new(share: f64, idle_timeout: Duration) -> Self {
        Self { share, idle_timeout, gates: Mutex::default() }
    }

    /// The gate of `server`, created (with its reaper task, which needs a
    /// tokio runtime) on first use.
    pub fn gate(&self, server: &str) -> Arc<ServerGate> {
        let mut gates = lock(&self.gates);
        if let Some(gate) = gates.get(server) {
            return Arc::clone(gate);
        }
        let gate = Arc::new(ServerGate {
            server: server.to_owned(),
            permits: Arc::new(Semaphore::new(1)),
            share: self.share,
            learnt: AtomicBool::new(false),
            capacity: AtomicUsize::new(1),
            waiting: AtomicUsize::new(0),
            idle_timeout: self.idle_timeout,
            slots: Mutex::default(),
            sizes: Mutex::default(),
            statements: Mutex::default(),
            server_version_num: AtomicU32::new(0),
        });
        spawn_reaper(Arc::downgrade(&gate), self.idle_timeout);
        gates.insert(server.to_owned(), Arc::clone(&gate));
        gate
    }
}

/// Closes idle connections past their idle timeout until the gate is dropped
/// (a reload builds new gates and drops the old ones).
fn spawn_reaper(gate: Weak<ServerGate>, idle_timeout: Duration) {
    let period = (idle_timeout / 4).clamp(Duration::from_millis(250), Duration::from_secs(15));
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(period);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            let Some(gate) = gate.upgrade() else { return };
            gate.close_idle(|kept| kept.last_used.elapsed() >= gate.idle_timeout);
        }
    });
}

/// The connections every target on one server may hold together.
#[derive(Debug)]
pub struct ServerGate {
    server: String,
    permits: Arc<Semaphore>,
    share: f64,
    learnt: AtomicBool,
    /// Permits in the semaphore, held or free.
    capacity: AtomicUsize,
    /// Leases waiting for a permit: a connection given back then is closed
    /// rather than kept idle, so its permit goes to a waiter.
    waiting: AtomicUsize,
    idle_timeout: Duration,
    /// Every target's slot on this server, for eviction and the reaper.
    slots: Mutex<Vec<Weak<Slot>>>,
    /// Database sizes by the role that measured them, and when.
    sizes: Mutex<HashMap<String, (StdInstant, Arc<DatabaseSizes>)>>,
    /// The areas' statements, one per list of tables the targets read.
    statements: Mutex<Vec<Arc<AreaStatements>>>,
    /// The server's `server_version_num` as its last new session reported
    /// it; 0 until a session has.
    server_version_num: AtomicU32,
}

/// `(datname, bytes)` of every database on a server.
pub type DatabaseSizes = Vec<(String, f64)>;

/// One target's idle connection between scrapes.
#[derive(Debug, Default)]
pub struct Slot {
    kept: Mutex<Option<Kept>>,
}

impl Drop for Slot {
    // A target dropped by a reload: end its session politely rather than
    // leaving the server to find the socket gone.
    fn drop(&mut self) {
        let kept = self.kept.get_mut().unwrap_or_else(std::sync::PoisonError::into_inner).take();
        if let Some(kept) = kept
            && tokio::runtime::Handle::try_current().is_ok()
        {
            close_later(kept.connection, kept.permit);
        }
    }
}

/// An idle connection and the permit it holds.
struct Kept {
    connection: PgConnection,
    permit: OwnedSemaphorePermit,
    last_used: StdInstant,
}

impl std::fmt::Debug for Kept {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Kept").field("last_used", &self.last_used).finish_non_exhaustive()
    }
}

/// A connection lent to one scrape; give it back with [`ServerGate::give_back`]
/// to keep it, or drop it to close it.
pub struct Lease {
    connection: PgConnection,
    permit: OwnedSemaphorePermit,
    /// Opened for this scrape rather than kept from an earlier one.
    pub fresh: bool,
}

impl std::fmt::Debug for Lease {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lease").field("fresh", &self.fresh).finish_non_exhaustive()
    }
}

impl Lease {
    /// The connection.
    pub fn connection(&mut self) -> &mut PgConnection {
        &mut self.connection
    }

    /// Closes the connection (politely, bounded) and then frees its permit.
    pub fn close(self) {
        close_later(self.connection, self.permit);
    }
}

/// Why no connection could be lent.
#[derive(Debug)]
pub enum LeaseError {
    /// Every permit of the server stayed taken until the deadline.
    Busy { server: String, held: usize },
    /// Connecting failed (refused, authentication, TLS…).
    Connect(sqlx::Error),
    /// Connecting missed the deadline.
    ConnectTimeout,
}

/// Closes `connection` in the background, then frees `permit`: the server
/// has forgotten the session before another target may open one.
fn close_later(connection: PgConnection, permit: OwnedSemaphorePermit) {
    tokio::spawn(async move {
        let _ = tokio::time::timeout(CLOSE_DEADLINE, connection.close()).await;
        drop(permit);
    });
}

impl ServerGate {
    /// The `server` label this gate is for.
    pub fn server(&self) -> &str {
        &self.server
    }

    /// A new target slot on this server.
    pub fn slot(&self) -> Arc<Slot> {
        let slot = Arc::new(Slot::default());
        let mut slots = lock(&self.slots);
        slots.retain(|s| s.strong_count() > 0);
        slots.push(Arc::downgrade(&slot));
        slot
    }

    /// How many connections the targets on this server may hold: one until
    /// the server's `max_connections` is known.
    pub fn capacity(&self) -> usize {
        self.capacity.load(Ordering::Acquire)
    }

    /// The share of `max_connections` this gate may use, from a connection
    /// that read it; only the first call counts.
    pub fn learn(&self, max_connections: f64) {
        if self.learnt.swap(true, Ordering::AcqRel) {
            return;
        }
        let capacity = connections_for(self.share, max_connections);
        if capacity > 1 {
            self.permits.add_permits(capacity - 1);
        }
        self.capacity.store(capacity, Ordering::Release);
        tracing::debug!(server = %self.server, max_connections, capacity, "postgres connection share learnt");
    }

    /// Notes the version a new session of this server reported (0: unknown
    /// again).
    pub fn learn_version(&self, server_version_num: u32) {
        self.server_version_num.store(server_version_num, Ordering::Release);
    }

    /// The server's version, once a session has reported it.
    pub fn server_version(&self) -> Option<u32> {
        Some(self.server_version_num.load(Ordering::Acquire)).filter(|v| *v > 0)
    }

    /// Whether [`learn`](Self::learn) has run.
    pub fn has_learnt(&self) -> bool {
        self.learnt.load(Ordering::Acquire)
    }

    /// A connection for one scrape of the target owning `slot`: its kept one
    /// if fresh enough, else a new one under a permit, closing another
    /// target's idle connection when every permit is held. Waits at most
    /// until `connect_deadline`.
    pub async fn lease(
        &self,
        slot: &Slot,
        options: &PgConnectOptions,
        connect_deadline: Instant,
    ) -> Result<Lease, LeaseError> {
        if let Some(kept) = lock(&slot.kept).take() {
            if kept.last_used.elapsed() < self.idle_timeout {
                return Ok(Lease { connection: kept.connection, permit: kept.permit, fresh: false });
            }
            close_later(kept.connection, kept.permit);
        }
        let permit = match Arc::clone(&self.permits).try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => {
                self.waiting.fetch_add(1, Ordering::AcqRel);
                self.close_idle_oldest();
                let waited =
                    tokio::time::timeout_at(connect_deadline, Arc::clone(&self.permits).acquire_owned())
                        .await;
                self.waiting.fetch_sub(1, Ordering::AcqRel);
                waited
                    .map_err(|_| LeaseError::Busy { server: self.server.clone(), held: self.capacity() })?
                    .map_err(|_| LeaseError::Busy { server: self.server.clone(), held: self.capacity() })?
            }
        };
        match tokio::time::timeout_at(connect_deadline, options.connect()).await {
            Ok(Ok(connection)) => Ok(Lease { connection, permit, fresh: true }),
            Ok(Err(error)) => Err(LeaseError::Connect(error)),
            Err(_) => Err(LeaseError::ConnectTimeout),
        }
    }

    /// Keeps `lease`'s connection idle in `slot` for the next scrape; closes
    /// it instead when another target waits for a permit, or when the slot
    /// already holds one (two scrapes of one target at once).
    pub fn give_back(&self, slot: &Slot, lease: Lease) {
        let mut kept = lock(&slot.kept);
        if kept.is_some() || self.waiting.load(Ordering::Acquire) > 0 {
            drop(kept);
            lease.close();
            return;
        }
        *kept =
            Some(Kept { connection: lease.connection, permit: lease.permit, last_used: StdInstant::now() });
    }

    /// Closes the least recently used idle connection on this server, if any.
    fn close_idle_oldest(&self) {
        let slots: Vec<Arc<Slot>> = lock(&self.slots).iter().filter_map(Weak::upgrade).collect();
        let oldest = slots
            .iter()
            .filter_map(|slot| lock(&slot.kept).as_ref().map(|kept| (kept.last_used, slot)))
            .min_by_key(|(last_used, _)| *last_used)
            .map(|(_, slot)| slot);
        if let Some(kept) = oldest.and_then(|slot| lock(&slot.kept).take()) {
            close_later(kept.connection, kept.permit);
        }
    }

    /// Closes every idle connection `expired` says so of.
    fn close_idle(&self, expired: impl Fn(&Kept) -> bool) {
        let slots: Vec<Arc<Slot>> = lock(&self.slots).iter().filter_map(Weak::upgrade).collect();
        for slot in slots {
            let mut kept = lock(&slot.kept);
            if kept.as_ref().is_some_and(&expired)
                && let Some(kept) = kept.take()
            {
                close_later(kept.connection, kept.permit);
            }
        }
    }

    /// The database sizes `role` measured less than `max_age` ago, if any.
    pub fn sizes(&self, role: &str, max_age: Duration) -> Option<Arc<DatabaseSizes>> {
        lock(&self.sizes)
            .get(role)
            .filter(|(at, _)| at.elapsed() < max_age)
            .map(|(_, sizes)| Arc::clone(sizes))
    }

    /// Keeps sizes `role` just measured for the other targets on this server.
    pub fn store_sizes(&self, role: &str, sizes: Arc<DatabaseSizes>) {
        lock(&self.sizes).insert(role.to_owned(), (StdInstant::now(), sizes));
    }

    /// The areas' statements for this server's `server_version_num` and a
    /// target reading `tables`, built once and shared by every target on the
    /// server that reads the same tables: a hundred targets hold one copy.
    pub fn area_statements(&self, server_version_num: u32, tables: &[String]) -> Arc<AreaStatements> {
        let mut built = lock(&self.statements);
        // A server upgraded under a running exporter: its old statements go.
        built.retain(|statements| statements.server_version_num == server_version_num);
        if let Some(statements) = built.iter().find(|statements| statements.tables == tables) {
            return Arc::clone(statements);
        }
        let statements = Arc::new(AreaStatements::new(server_version_num, tables));
        built.push(Arc::clone(&statements));
        statements
    }

    /// Idle connections kept on this server right now.
    pub fn idle(&self) -> usize {
        lock(&self.slots).iter().filter_map(Weak::upgrade).filter(|s| lock(&s.kept).is_some()).count()
    }
}

/// Connections a gate may hold: `share` of `max_connections`, rounded down,
/// at least one and at most [`MAX_SERVER_CONNECTIONS`]. A non-finite or
/// negative `max_connections` (never from a real server) gives one.
pub fn connections_for(share: f64, max_connections: f64) -> usize {
    let wanted = (share * max_connections).floor();
    if wanted.is_finite() && wanted >= 1.0 { (wanted as usize).min(MAX_SERVER_CONNECTIONS) } else { 1 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn share_of_max_connections_is_bounded() {
        assert_eq!(connections_for(0.1, 100.0), 10);
        assert_eq!(connections_for(0.1, 15.0), 1, "rounded down");
        assert_eq!(connections_for(0.05, 10.0), 1, "never zero");
        assert_eq!(connections_for(0.5, 100_000.0), MAX_SERVER_CONNECTIONS);
        assert_eq!(connections_for(0.1, f64::NAN), 1);
        assert_eq!(connections_for(0.1, -5.0), 1);
    }

    #[tokio::test]
    async fn targets_reading_the_same_tables_share_their_statements() {
        let gates = ServerGates::new(0.1, Duration::from_secs(60));
        let gate = gates.gate("127.0.0.1:5432");
        let events = vec!["analytics_events".to_owned()];
        let first = gate.area_statements(150_020, &events);
        assert!(Arc::ptr_eq(&first, &gate.area_statements(150_020, &events)), "one copy for both targets");
        let none = gate.area_statements(150_020, &[]);
        assert!(!Arc::ptr_eq(&first, &none), "other tables, other statements");
        assert_eq!(lock(&gate.statements).len(), 2);
        // The server was upgraded: statements for the old version are dropped.
        let upgraded = gate.area_statements(170_002, &events);
        assert_eq!(upgraded.server_version_num, 170_002);
        assert_eq!(lock(&gate.statements).len(), 1);
    }
}
