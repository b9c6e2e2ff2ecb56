//! Serial-number arithmetic (RFC 1982) for 16-bit sequence numbers and modular counters.

/// Whether `a` comes after `b` in 16-bit serial order.
pub(crate) fn seq_newer(a: u16, b: u16) -> bool {
    a != b && a.wrapping_sub(b) < 0x8000
}

/// Signed distance from `b` to `a` modulo `modulus` (a power of two), in
/// `-modulus/2 .. modulus/2`.
pub(crate) fn signed_diff(a: u16, b: u16, modulus: u16) -> i32 {
    let m = i32::from(modulus);
    let d = (i32::from(a) - i32::from(b)).rem_euclid(m);
    if d >= m / 2 { d - m } else { d }
}
