// SPDX-License-Identifier: GPL-2.0
//! CRC32C (Castagnoli), as the kernel's `crc32c(crc, data, len)` and jbd2's
//! `jbd2_chksum(crc, data)`: the raw reflected register update, without initial or final
//! inversion (callers seed with `!0` or a derived seed themselves).
//!
//! In the kernel this is the kernel's own `crc32c` (lib/libcrc32c.c, which the crypto API
//! serves with the CPU's CRC32 instruction when it has one, `crc32c-intel`, and with
//! slicing-by-8 otherwise); in userspace, slicing-by-8 here.
//!
//! ```
//! // The standard check value uses initial and final inversion.
//! assert_eq!(!bento::crc32c::crc32c(!0, b"123456789"), 0xe306_9283);
//! ```

/// Updates `crc` with `data`, without pre- or post-inversion.
#[cfg(kernel)]
#[inline]
pub fn crc32c(crc: u32, data: &[u8]) -> u32 {
    crate::kernel_backend::crc32c(crc, data)
}

/// Updates `crc` with `data`, without pre- or post-inversion.
#[cfg(not(kernel))]
pub fn crc32c(crc: u32, data: &[u8]) -> u32 {
    soft::crc32c(crc, data)
}

#[cfg(not(kernel))]
mod soft {
    const POLY: u32 = 0x82f6_3b78; // reflected 0x1edc6f41

    const fn make_tables() -> [[u32; 256]; 8] {
        let mut t = [[0u32; 256]; 8];
        let mut i = 0;
        while i < 256 {
            let mut c = i as u32;
            let mut k = 0;
            while k < 8 {
                c = if c & 1 != 0 { (c >> 1) ^ POLY } else { c >> 1 };
                k += 1;
            }
            t[0][i] = c;
            i += 1;
        }
        let mut i = 0;
        while i < 256 {
            let mut s = 1;
            while s < 8 {
                let prev = t[s - 1][i];
                t[s][i] = (prev >> 8) ^ t[0][(prev & 0xff) as usize];
                s += 1;
            }
            i += 1;
        }
        t
    }

    static TABLES: [[u32; 256]; 8] = make_tables();

    #[inline]
    fn t(table: usize, byte: u32) -> u32 {
        // Both indices are in bounds: `table < 8` at every call site, `byte` is masked.
        TABLES
            .get(table)
            .and_then(|t| t.get((byte & 0xff) as usize))
            .copied()
            .unwrap_or(0)
    }

    /// Updates `crc` with `data` (slicing-by-8).
    pub(super) fn crc32c(mut crc: u32, data: &[u8]) -> u32 {
        let mut chunks = data.chunks_exact(8);
        for c in &mut chunks {
            let w = crate::bytes::Reader::new(c);
            let lo = w.u32(0) ^ crc;
            let hi = w.u32(4);
            crc = t(7, lo)
                ^ t(6, lo >> 8)
                ^ t(5, lo >> 16)
                ^ t(4, lo >> 24)
                ^ t(3, hi)
                ^ t(2, hi >> 8)
                ^ t(1, hi >> 16)
                ^ t(0, hi >> 24);
        }
        for &b in chunks.remainder() {
            crc = t(0, crc ^ u32::from(b)) ^ (crc >> 8);
        }
        crc
    }
}

#[cfg(test)]
mod tests {
    use super::crc32c;

    #[test]
    fn standard_check_value() {
        // CRC-32C("123456789") = 0xe3069283 with the usual inversions.
        assert_eq!(!crc32c(!0, b"123456789"), 0xe306_9283);
    }

    #[test]
    fn slicing_matches_bytewise() {
        let data: Vec<u8> = (0..1000u32).map(|i| (i * 7 + 3) as u8).collect();
        let mut crc = 0x1234_5678;
        for b in &data {
            crc = crc32c(crc, core::slice::from_ref(b));
        }
        assert_eq!(crc32c(0x1234_5678, &data), crc);
    }
}
