//! End-to-end media encryption: SFrame (RFC 9605), HPKE key envelopes (RFC 9180) and identity
//! verification. Pure logic, no I/O.
