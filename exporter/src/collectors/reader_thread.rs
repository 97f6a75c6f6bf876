//! Where the collectors' blocking reads run: tokio's blocking pool, on
//! threads marked as batch work (`SCHED_BATCH`), so that a reader woken by
//! the async worker never preempts it.
//!
//! Why: a scrape's one async worker writes the backends' requests and reads
//! their answers; the readers of /proc, the mounts and the log files wake
//! alongside it on a 2-core machine. Woken as ordinary threads, they took the
//! worker's core, and the scheduler kept the just-run (cache-hot) worker
//! waiting behind them even while the other core idled: a PostgreSQL answer
//! then sat unread for the reader's whole slice, about 0.4 ms. A batch thread
//! has the same share of CPU time (same nice) and only gives up wakeup
//! preemption. Measured in docs/benchmarks.md.

use tokio::task::JoinHandle;

/// `tokio::task::spawn_blocking`, with the thread marked as batch work
/// first (once per thread; the pool's threads are reused).
pub fn spawn_reader<T, F>(work: F) -> JoinHandle<T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    tokio::task::spawn_blocking(move || {
        mark_as_batch();
        work()
    })
}

fn mark_as_batch() {
    thread_local! {
        static MARKED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    }
    if MARKED.get() {
        return;
    }
    MARKED.set(true);
    #[cfg(target_os = "linux")]
    if let Err(error) = set_batch_policy() {
        // A sandbox may forbid it: the reads still run, only as before.
        tracing::debug!(%error, "cannot mark a blocking thread as SCHED_BATCH");
    }
}

#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
fn set_batch_policy() -> std::io::Result<()> {
    let param = libc::sched_param { sched_priority: 0 };
    // SAFETY: sched_setscheduler(2) with pid 0 changes the calling thread's
    // policy; it reads `param`, which lives across the call, and writes no
    // memory of ours. Moving between SCHED_OTHER and SCHED_BATCH needs no
    // privilege.
    let status = unsafe { libc::sched_setscheduler(0, libc::SCHED_BATCH, &param) };
    if status == 0 { Ok(()) } else { Err(std::io::Error::last_os_error()) }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    /// The calling thread's policy, field 41 of /proc/thread-self/stat
    /// (0 SCHED_OTHER, 3 SCHED_BATCH).
    fn policy() -> u32 {
        let stat = std::fs::read_to_string("/proc/thread-self/stat").expect("/proc/thread-self/stat");
        let after_name = &stat[stat.rfind(')').expect("a ')' after the thread's name") + 2..];
        after_name.split(' ').nth(38).expect("41 fields").parse().expect("a number")
    }

    #[test]
    fn readers_run_as_batch_work_and_the_async_worker_does_not() {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .max_blocking_threads(2)
            .build()
            .expect("a runtime");
        let (worker, readers) = runtime.block_on(async {
            tokio::spawn(async {
                let mut readers = Vec::new();
                for _ in 0..4 {
                    readers.push(spawn_reader(policy).await.expect("the read"));
                }
                (policy(), readers)
            })
            .await
            .expect("the task")
        });
        assert_eq!(worker, libc::SCHED_OTHER as u32, "the async worker keeps the ordinary policy");
        assert_eq!(readers, vec![libc::SCHED_BATCH as u32; 4], "every read ran on a batch thread");
    }
}
