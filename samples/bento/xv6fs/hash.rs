// SPDX-License-Identifier: GPL-2.0
//! The directory hash: SipHash-1-3 keyed with the file system's UUID, so names cannot be
//! chosen to collide without knowing the key (hash flooding would only slow a directory
//! down, never corrupt it).

/// SipHash-1-3 of `data` with `key`.
pub fn siphash13(key: &[u8; 16], data: &[u8]) -> u64 {
    let (k0, k1) = split_key(key);
    let mut v = [
        k0 ^ 0x736f_6d65_7073_6575,
        k1 ^ 0x646f_7261_6e64_6f6d,
        k0 ^ 0x6c79_6765_6e65_7261,
        k1 ^ 0x7465_6462_7974_6573,
    ];
    let mut chunks = data.chunks_exact(8);
    for c in &mut chunks {
        let m = u64::from_le_bytes(c.try_into().unwrap_or([0; 8]));
        v[3] ^= m;
        round(&mut v);
        v[0] ^= m;
    }
    let mut last = [0u8; 8];
    for (d, s) in last.iter_mut().zip(chunks.remainder()) {
        *d = *s;
    }
    // The length's low byte goes in the top byte of the last word.
    last[7] = (data.len() & 0xff) as u8;
    let m = u64::from_le_bytes(last);
    v[3] ^= m;
    round(&mut v);
    v[0] ^= m;
    v[2] ^= 0xff;
    for _ in 0..3 {
        round(&mut v);
    }
    v[0] ^ v[1] ^ v[2] ^ v[3]
}

fn split_key(key: &[u8; 16]) -> (u64, u64) {
    let (a, b) = key.split_at(8);
    (
        u64::from_le_bytes(a.try_into().unwrap_or([0; 8])),
        u64::from_le_bytes(b.try_into().unwrap_or([0; 8])),
    )
}

fn round(v: &mut [u64; 4]) {
    let [mut v0, mut v1, mut v2, mut v3] = *v;
    v0 = v0.wrapping_add(v1);
    v1 = v1.rotate_left(13) ^ v0;
    v0 = v0.rotate_left(32);
    v2 = v2.wrapping_add(v3);
    v3 = v3.rotate_left(16) ^ v2;
    v0 = v0.wrapping_add(v3);
    v3 = v3.rotate_left(21) ^ v0;
    v2 = v2.wrapping_add(v1);
    v1 = v1.rotate_left(17) ^ v2;
    v2 = v2.rotate_left(32);
    *v = [v0, v1, v2, v3];
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_std_siphash13() {
        // std's DefaultHasher is SipHash-1-3 with a zero key (fixed by the pinned 1.85).
        use std::hash::Hasher;
        for data in [&b""[..], b"a", b"hello world", b"0123456789abcdef0"] {
            let mut h = std::collections::hash_map::DefaultHasher::new();
            h.write(data);
            assert_eq!(siphash13(&[0; 16], data), h.finish(), "{data:?}");
        }
    }

    #[test]
    fn deterministic_keyed_and_length_sensitive() {
        let k = [1u8; 16];
        assert_eq!(siphash13(&k, b"hello"), siphash13(&k, b"hello"));
        assert_ne!(siphash13(&k, b"hello"), siphash13(&[2u8; 16], b"hello"));
        assert_ne!(siphash13(&k, b"a"), siphash13(&k, b"a\0"));
        assert_ne!(siphash13(&k, b"12345678"), siphash13(&k, b"123456789"));
    }
}
