//! Independent pieces of work spread over the machine's cores: the alerts'
//! own checks and promtool scenarios, and the generated files. Results keep
//! the input order, so the output is the same byte for byte whatever the
//! number of threads.

use std::num::NonZeroUsize;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Below this many items the threads cost more than they save.
const SEQUENTIAL_BELOW: usize = 32;

/// At most this many threads: rulegen runs beside other work in CI.
const MAX_THREADS: usize = 8;

/// `work` applied to every item, on up to one thread per core. Threads take
/// the next item as they finish one, so a few large items (a dashboard, the
/// rule test file) do not leave the other cores idle. Results may borrow
/// from the items.
pub fn map<'a, T, R, F>(items: &'a [T], work: F) -> Vec<R>
where
    T: Sync,
    R: Send,
    F: Fn(&'a T) -> R + Sync,
{
    let threads = std::thread::available_parallelism().map_or(1, NonZeroUsize::get).min(MAX_THREADS);
    map_on(threads, items, work)
}

/// [`map`] on `threads` threads (the caller's included).
fn map_on<'a, T, R, F>(threads: usize, items: &'a [T], work: F) -> Vec<R>
where
    T: Sync,
    R: Send,
    F: Fn(&'a T) -> R + Sync,
{
    if threads < 2 || items.len() < SEQUENTIAL_BELOW {
        return items.iter().map(work).collect();
    }
    let next = AtomicUsize::new(0);
    let done: Mutex<Vec<(usize, R)>> = Mutex::new(Vec::with_capacity(items.len()));
    let worker = || {
        let mut mine = Vec::new();
        loop {
            let index = next.fetch_add(1, Ordering::Relaxed);
            let Some(item) = items.get(index) else { break };
            mine.push((index, work(item)));
        }
        done.lock().unwrap_or_else(std::sync::PoisonError::into_inner).extend(mine);
    };
    std::thread::scope(|scope| {
        for _ in 1..threads {
            scope.spawn(worker);
        }
        worker();
    });
    let mut done = done.into_inner().unwrap_or_else(std::sync::PoisonError::into_inner);
    done.sort_unstable_by_key(|(index, _)| *index);
    done.into_iter().map(|(_, result)| result).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Four threads whatever the machine has, so a one-core runner tests
    /// the threaded path too.
    #[test]
    fn keeps_the_input_order() {
        let items: Vec<u64> = (0..1000).collect();
        let threads_used = Mutex::new(std::collections::HashSet::new());
        let squares = map_on(4, &items, |n| {
            threads_used.lock().expect("not poisoned").insert(std::thread::current().id());
            // Uneven work, so threads finish out of order.
            if n % 7 == 0 {
                std::thread::sleep(std::time::Duration::from_micros(50));
            }
            n * n
        });
        assert_eq!(squares, items.iter().map(|n| n * n).collect::<Vec<_>>());
        assert!(threads_used.into_inner().expect("not poisoned").len() > 1, "the work was shared");
    }

    #[test]
    fn small_and_empty_inputs() {
        assert_eq!(map(&[1, 2, 3], |n| n + 1), vec![2, 3, 4]);
        assert!(map(&[] as &[u8], |n| *n).is_empty());
    }
}
