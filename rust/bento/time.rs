// SPDX-License-Identifier: GPL-2.0
//! Wall-clock time for timestamps.

use crate::types::Timespec;

/// The current wall-clock time (`ktime_get_real_ts64` in the kernel, the system clock in
/// userspace).
pub fn now() -> Timespec {
    crate::backend::now()
}

/// Sleeps for at least `ms` milliseconds (`msleep` in the kernel: uninterruptible, so
/// keep it short).
pub fn sleep_ms(ms: u32) {
    crate::backend::sleep_ms(ms)
}
