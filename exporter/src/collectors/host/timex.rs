//! The kernel clock discipline (node_exporter's timex collector): offset,
//! maximum error and synchronisation status from adjtimex(2), for the
//! node-mixin's clock-skew and not-synchronising alerts.
//!
//! This is the workspace's one use of `unsafe`: neither rustix nor another
//! dependency wraps adjtimex, so the call is made through libc here, read-only
//! (`modes = 0`), on a zeroed buffer this function owns.

use opsmon_catalog::host;

use crate::collectors::collector::CollectError;
use crate::metrics::MetricSet;

/// adjtimex's return value when the clock is not synchronised.
const TIME_ERROR: libc::c_int = 5;
/// `status` bit: `offset` and `jitter` are in nanoseconds, not microseconds.
const STA_NANO: libc::c_int = 0x2000;
/// `freq`, `ppsfreq` and `stabil` are ppm with a 16-bit binary fraction.
const SCALED_PPM: f64 = 1_000_000.0 * 65_536.0;
const MICROS: f64 = 1_000_000.0;
const NANOS: f64 = 1_000_000_000.0;

/// What the families are computed from: the kernel's fields, as integers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClockState {
    /// adjtimex's return value (clock state, `TIME_OK` … `TIME_ERROR`).
    pub state: libc::c_int,
    /// `status` bits.
    pub status: libc::c_int,
    /// Offset from the reference clock, µs or ns per `STA_NANO`.
    pub offset: libc::c_long,
    /// Frequency adjustment, scaled ppm.
    pub freq: libc::c_long,
    /// Maximum error, µs.
    pub maxerror: libc::c_long,
    /// Estimated error, µs.
    pub esterror: libc::c_long,
    /// PLL time constant.
    pub constant: libc::c_long,
    /// Microseconds between clock ticks.
    pub tick: libc::c_long,
    /// TAI offset, seconds.
    pub tai: libc::c_int,
}

/// Reads the clock state without changing it.
#[allow(unsafe_code)]
pub fn read() -> std::io::Result<ClockState> {
    // SAFETY: `libc::timex` is a plain C struct of integers, for which all-zero
    // bytes are a valid value. `modes == 0` makes adjtimex(2) read-only: it
    // only writes into `buffer`, which lives on this stack frame for the whole
    // call and is passed as a unique, properly aligned pointer.
    let mut buffer: libc::timex = unsafe { std::mem::zeroed() };
    buffer.modes = 0;
    // SAFETY: see above; the pointer is valid for writes of one `libc::timex`.
    let state = unsafe { libc::adjtimex(&mut buffer) };
    if state < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(ClockState {
        state,
        status: buffer.status,
        offset: buffer.offset,
        freq: buffer.freq,
        maxerror: buffer.maxerror,
        esterror: buffer.esterror,
        constant: buffer.constant,
        tick: buffer.tick,
        tai: buffer.tai,
    })
}

/// Adds the timex families for `clock` to `out`, in node_exporter's units.
pub fn add(clock: &ClockState, out: &mut MetricSet) {
    let offset_unit = if clock.status & STA_NANO != 0 { NANOS } else { MICROS };
    out.single(&host::TIMEX_SYNC_STATUS, if clock.state == TIME_ERROR { 0.0 } else { 1.0 });
    out.single(&host::TIMEX_OFFSET, clock.offset as f64 / offset_unit);
    // maxerror and esterror are microseconds whatever STA_NANO says.
    out.single(&host::TIMEX_MAXERROR, clock.maxerror as f64 / MICROS);
    out.single(&host::TIMEX_ESTERROR, clock.esterror as f64 / MICROS);
    out.single(&host::TIMEX_FREQUENCY, 1.0 + clock.freq as f64 / SCALED_PPM);
    out.single(&host::TIMEX_STATUS, f64::from(clock.status));
    out.single(&host::TIMEX_LOOP_TIME_CONSTANT, clock.constant as f64);
    out.single(&host::TIMEX_TICK, clock.tick as f64 / MICROS);
    out.single(&host::TIMEX_TAI_OFFSET, f64::from(clock.tai));
}

/// Reads the clock and adds its families; a kernel that refuses (a seccomp
/// profile without adjtimex) leaves them out with the reason.
pub fn collect(out: &mut MetricSet) -> Result<(), CollectError> {
    let clock = read().map_err(|e| CollectError::io("adjtimex(2)", e))?;
    add(&clock, out);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(text: &str, name: &str) -> f64 {
        let line = text.lines().find(|l| l.starts_with(&format!("{name} "))).unwrap_or_default();
        line.rsplit(' ').next().and_then(|v| v.parse().ok()).unwrap_or(f64::NAN)
    }

    #[test]
    fn microsecond_kernel_fields_in_node_exporters_units() {
        let clock = ClockState {
            state: 0,
            status: 0x0001, // STA_PLL
            offset: -1_500,
            freq: 65_536 * 12, // +12 ppm
            maxerror: 250_000,
            esterror: 16,
            constant: 7,
            tick: 10_000,
            tai: 37,
        };
        let mut out = MetricSet::new();
        add(&clock, &mut out);
        let text = out.encode_text();
        assert_eq!(value(&text, "node_timex_sync_status"), 1.0, "{text}");
        assert_eq!(value(&text, "node_timex_offset_seconds"), -0.0015, "{text}");
        assert_eq!(value(&text, "node_timex_maxerror_seconds"), 0.25, "{text}");
        assert_eq!(value(&text, "node_timex_estimated_error_seconds"), 0.000016, "{text}");
        assert!((value(&text, "node_timex_frequency_adjustment_ratio") - 1.000_012).abs() < 1e-12, "{text}");
        assert_eq!(value(&text, "node_timex_status"), 1.0, "{text}");
        assert_eq!(value(&text, "node_timex_loop_time_constant"), 7.0, "{text}");
        assert_eq!(value(&text, "node_timex_tick_seconds"), 0.01, "{text}");
        assert_eq!(value(&text, "node_timex_tai_offset_seconds"), 37.0, "{text}");
    }

    #[test]
    fn nanosecond_offset_and_an_unsynchronised_clock() {
        let clock = ClockState {
            state: TIME_ERROR,
            status: STA_NANO | 0x0040, // STA_UNSYNC
            offset: 2_000_000,
            maxerror: 16_000_000,
            ..ClockState::default()
        };
        let mut out = MetricSet::new();
        add(&clock, &mut out);
        let text = out.encode_text();
        assert_eq!(value(&text, "node_timex_sync_status"), 0.0, "{text}");
        assert_eq!(value(&text, "node_timex_offset_seconds"), 0.002, "nanoseconds under STA_NANO: {text}");
        assert_eq!(value(&text, "node_timex_maxerror_seconds"), 16.0, "maxerror stays in µs: {text}");
    }

    #[test]
    fn this_kernel_answers() {
        let clock = read().expect("adjtimex with modes 0 needs no privilege");
        assert!((0..=5).contains(&clock.state), "{clock:?}");
        assert!(clock.tick > 0, "{clock:?}");
    }
}
