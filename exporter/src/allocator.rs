//! glibc's allocator settings for a small, long-running exporter: at most
//! two arenas, and no per-thread caches.
//!
//! glibc gives each thread that allocates concurrently an arena of its own, up
//! to eight per core, and each keeps freed memory for reuse: with the async
//! workers and the blocking pool that is several arenas of mostly idle pages.
//! Two arenas are enough for a scrape's work. Measured with every collector of
//! the shipped config (`opsmon-bench --full --every-collector`, quiet 2-core
//! machine): anonymous resident memory 7.4 MiB with glibc's default, 5.8 MiB
//! with two arenas, CPU per scrape unchanged (2.95 → 2.90 ms).

/// Arenas when the environment does not choose.
pub const DEFAULT_ARENA_MAX: i32 = 2;

/// Caps glibc's malloc arenas at [`DEFAULT_ARENA_MAX`] unless
/// `MALLOC_ARENA_MAX` is set (glibc then applies the operator's value itself).
/// Call first in `main`, before any thread starts. Other C libraries: nothing.
pub fn limit_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        set_arena_max(DEFAULT_ARENA_MAX);
    }
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
fn set_arena_max(arenas: i32) {
    // SAFETY: mallopt(3) takes two integers and changes allocator parameters
    // under glibc's own lock; M_ARENA_MAX only bounds arenas created later. It
    // touches no memory of ours. A 0 return (rejected value) leaves glibc's
    // default, which is harmless, so it is ignored.
    let _accepted = unsafe { libc::mallopt(libc::M_ARENA_MAX, arenas) };
}

/// glibc reads its tunables from this variable when a program starts.
pub const TUNABLES_VAR: &str = "GLIBC_TUNABLES";

/// The tunables the exporter restarts itself with: glibc's per-thread caches
/// (tcache) off.
///
/// Each thread that frees memory keeps up to seven chunks of each of 64
/// sizes for itself, however the memory was allocated, and nothing returns
/// them before the thread exits. The async worker frees what the blocking
/// threads built, and the blocking pool keeps its threads. Measured with
/// every collector of the shipped config on 2 cores (alternating pairs; see
/// docs/benchmarks.md), the caches off gave:
/// - anonymous resident memory 1.80-1.86 MiB against 2.65-2.73 MiB after
///   3,000 scrapes (four pairs);
/// - 2.16-2.21 against 3.17-3.18 MiB after eight clients at once (two pairs);
/// - CPU per scrape 1.03-1.05 against 1.05-1.10 ms.
///
/// Only the environment sets tunables; no `mallopt` parameter does.
pub const NO_THREAD_CACHES: &str = "glibc.malloc.tcache_count=0";

/// Restarts the exporter in place, once, with [`NO_THREAD_CACHES`] in
/// [`TUNABLES_VAR`]. `execve` keeps the process ID, the arguments and the
/// open descriptors. Returns only when there is no restart:
/// - the variable is already set, even empty: the operator's tunables stand
///   (set it to run the exporter under valgrind, which would not follow the
///   restart);
/// - the binary cannot be found again (replaced on disk, no /proc);
/// - another C library than glibc.
///
/// Call first in `main`, before any thread starts.
pub fn restart_without_thread_caches() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var_os(TUNABLES_VAR).is_none() {
        use std::os::unix::process::CommandExt;
        let Ok(binary) = std::env::current_exe() else {
            return;
        };
        let mut args = std::env::args_os();
        let name = args.next().unwrap_or_else(|| binary.clone().into_os_string());
        // Returns only if execve failed: go on with glibc's defaults.
        let _not_restarted = std::process::Command::new(&binary)
            .arg0(name)
            .args(args)
            .env(TUNABLES_VAR, NO_THREAD_CACHES)
            .exec();
    }
}
