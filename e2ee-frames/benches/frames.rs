//! SFrame encrypt/decrypt for 160-, 1,200- and 30,000-byte frames with suites 0x0004 and 0x0005,
//! next to the raw `aes-gcm` AEAD on the same buffers (the baseline), plus HPKE seal and open.
//!
//! `cargo bench -p e2ee-frames -- --warm-up-time 1 --measurement-time 3`
//!
//! Times are the benchmark thread's CPU time (`CLOCK_THREAD_CPUTIME_ID`), not wall time: the
//! machines this runs on are shared, and CPU time is what "on one core" means even when other
//! processes take turns on that core.

use std::hint::black_box;
use std::time::{Duration, Instant};

use aes_gcm::aead::{AeadInOut, KeyInit};
use aes_gcm::{Aes128Gcm, Aes256Gcm, Nonce};
use cpu_time::ThreadTime;
use criterion::measurement::{Measurement, ValueFormatter, WallTime};
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use e2ee_frames::hpke_base::{self, AesGcm256};
use e2ee_frames::{
    BaseKey, CipherSuite, DeviceId, DeviceKeys, KeyEnvelope, KeyGrant, KeyStore, Sender, SframeKey,
    Stream,
};

/// Criterion measurement: CPU time of the benchmark thread.
struct ThreadCpuTime {
    wall: WallTime,
}

impl Measurement for ThreadCpuTime {
    type Intermediate = ThreadTime;
    type Value = Duration;

    fn start(&self) -> ThreadTime {
        ThreadTime::now()
    }

    fn end(&self, start: ThreadTime) -> Duration {
        start.elapsed()
    }

    fn add(&self, a: &Duration, b: &Duration) -> Duration {
        *a + *b
    }

    fn zero(&self) -> Duration {
        Duration::ZERO
    }

    fn to_f64(&self, d: &Duration) -> f64 {
        d.as_nanos() as f64
    }

    fn formatter(&self) -> &dyn ValueFormatter {
        // Values are nanoseconds, exactly as for wall time.
        self.wall.formatter()
    }
}

type Crit = Criterion<ThreadCpuTime>;

const SIZES: [usize; 3] = [160, 1_200, 30_000];
const SUITES: [CipherSuite; 2] = [
    CipherSuite::Aes128GcmSha256_128,
    CipherSuite::Aes256GcmSha512_128,
];

/// The raw AEAD of a GCM suite, keyed once, as a baseline.
enum RawGcm {
    A128(Aes128Gcm),
    A256(Aes256Gcm),
}

impl RawGcm {
    fn new(suite: CipherSuite) -> Self {
        match suite {
            CipherSuite::Aes128GcmSha256_128 => RawGcm::A128(Aes128Gcm::new(&[7u8; 16].into())),
            _ => RawGcm::A256(Aes256Gcm::new(&[7u8; 32].into())),
        }
    }

    fn seal(&self, aad: &[u8], buf: &mut [u8]) -> [u8; 16] {
        let nonce = Nonce::from([1u8; 12]);
        let tag = match self {
            RawGcm::A128(c) => c.encrypt_inout_detached(&nonce, aad, buf.into()),
            RawGcm::A256(c) => c.encrypt_inout_detached(&nonce, aad, buf.into()),
        };
        tag.expect("frame within GCM limits").into()
    }

    fn open(&self, aad: &[u8], buf: &mut [u8], tag: &[u8; 16]) {
        let nonce = Nonce::from([1u8; 12]);
        let tag = (*tag).into();
        match self {
            RawGcm::A128(c) => c.decrypt_inout_detached(&nonce, aad, buf.into(), &tag),
            RawGcm::A256(c) => c.decrypt_inout_detached(&nonce, aad, buf.into(), &tag),
        }
        .expect("own ciphertext opens");
    }
}

fn frames(c: &mut Crit) {
    for suite in SUITES {
        for size in SIZES {
            let mut group = c.benchmark_group(format!("0x{:04x}/{size}", suite.id()));
            group.throughput(Throughput::Bytes(size as u64));
            let plaintext = vec![0xa5u8; size];
            // A typical header (KID with slot/generation, 3-byte counter) as the raw AAD.
            let aad = [0x9d_u8, 0, 0, 1, 0x11, 0, 0x12, 0x34, 0x56];

            let raw = RawGcm::new(suite);
            let mut buf = Vec::with_capacity(size + 32);
            group.bench_function("raw_aead_encrypt", |b| {
                b.iter(|| {
                    buf.clear();
                    buf.extend_from_slice(black_box(&plaintext));
                    black_box(raw.seal(&aad, &mut buf))
                })
            });
            let mut ct = plaintext.clone();
            let tag = raw.seal(&aad, &mut ct);
            // Like SFrame decrypt below: a fresh input buffer per iteration (made in the untimed
            // setup), copied into a reused output buffer and opened there.
            group.bench_function("raw_aead_decrypt", |b| {
                b.iter_batched_ref(
                    || ct.clone(),
                    |input| {
                        buf.clear();
                        buf.extend_from_slice(input);
                        raw.open(&aad, &mut buf, &tag);
                    },
                    BatchSize::SmallInput,
                )
            });

            let base = BaseKey::from_bytes(&[3u8; 32]).expect("32 bytes");
            let mut sender = Sender::new(suite, 17, 1, base.clone()).expect("valid slot");
            let mut out = Vec::with_capacity(size + 64);
            group.bench_function("sframe_encrypt", |b| {
                b.iter(|| {
                    out.clear();
                    sender
                        .encrypt(Stream::Camera, b"", black_box(&plaintext), &mut out)
                        .expect("counter far from exhausted");
                })
            });

            // SFrame decryption alone (cached key, no key store), on a fresh frame copy like
            // the raw baseline.
            let sframe_key = SframeKey::derive(suite, &base, 0x0101_1100);
            let mut wire = Vec::new();
            sframe_key
                .encrypt_into(5, b"", &plaintext, &mut wire)
                .expect("encrypts");
            let mut plain = Vec::with_capacity(size);
            group.bench_function("sframe_key_decrypt", |b| {
                b.iter_batched_ref(
                    || wire.clone(),
                    |input| {
                        plain.clear();
                        sframe_key
                            .decrypt_into(input, b"", &mut plain)
                            .expect("own frame");
                    },
                    BatchSize::SmallInput,
                )
            });

            // The full receive path (KID lookup, replay window, cached key). Each iteration
            // needs a fresh counter, so frames are made in the untimed setup.
            let now = Instant::now();
            let mut store = KeyStore::new();
            store
                .install(now, 17, 1, 0, suite, base)
                .expect("fresh store");
            group.bench_function("sframe_decrypt", |b| {
                b.iter_batched_ref(
                    || {
                        let mut wire = Vec::with_capacity(size + 64);
                        sender
                            .encrypt(Stream::Camera, b"", &plaintext, &mut wire)
                            .expect("counter far from exhausted");
                        wire
                    },
                    |wire| {
                        plain.clear();
                        store
                            .decrypt(now, wire, b"", &mut plain)
                            .expect("fresh frame");
                    },
                    BatchSize::SmallInput,
                )
            });
            group.finish();
        }
    }
}

fn hpke(c: &mut Crit) {
    let mut group = c.benchmark_group("hpke");
    let mut rng = rand::rng();
    let (sk, pk) = hpke_base::derive_keypair(&[9u8; 32]);
    let info = [0u8; 64];
    let aad = [1u8; 27];
    let key = [2u8; 32];
    group.bench_function("seal", |b| {
        b.iter(|| hpke_base::seal::<AesGcm256>(&pk, &info, &aad, &key, &mut rng).expect("seal"))
    });
    let (enc, ct) = hpke_base::seal::<AesGcm256>(&pk, &info, &aad, &key, &mut rng).expect("seal");
    group.bench_function("open", |b| {
        b.iter(|| hpke_base::open::<AesGcm256>(&sk, &enc, &info, &aad, &ct).expect("open"))
    });
    group.bench_function("seal_then_open", |b| {
        b.iter(|| {
            let (enc, ct) =
                hpke_base::seal::<AesGcm256>(&pk, &info, &aad, &key, &mut rng).expect("seal");
            hpke_base::open::<AesGcm256>(&sk, &enc, &info, &aad, &ct).expect("open")
        })
    });

    // The floor under HPKE: seal does one X25519 key generation and one DH, open one DH and
    // one public-key computation (the `hpke` crate re-derives pkR from skR in Decap).
    let a = x25519_dalek::StaticSecret::from([7u8; 32]);
    let b_pub = x25519_dalek::PublicKey::from(&x25519_dalek::StaticSecret::from([9u8; 32]));
    group.bench_function("x25519_dh", |b| {
        b.iter(|| a.diffie_hellman(black_box(&b_pub)))
    });
    group.bench_function("x25519_public_key", |b| {
        b.iter(|| x25519_dalek::PublicKey::from(black_box(&a)))
    });

    // Whole key envelopes: HPKE plus Ed25519 sign / verify.
    let alice = DeviceKeys::generate(DeviceId::new("dev-A").expect("valid"), &mut rng);
    let bob = DeviceKeys::generate(DeviceId::new("dev-B").expect("valid"), &mut rng);
    let (alice_b, bob_b) = (
        alice.bundle().verify().expect("own"),
        bob.bundle().verify().expect("own"),
    );
    let base = BaseKey::random(&mut rng);
    let grant = KeyGrant {
        slot: 3,
        generation: 7,
        step: 0,
        suite: CipherSuite::DEFAULT,
    };
    group.bench_function("envelope_seal", |b| {
        b.iter(|| {
            KeyEnvelope::seal(&alice, &bob_b, "standup", "c-1", grant, &base, &mut rng)
                .expect("seal")
        })
    });
    let env =
        KeyEnvelope::seal(&alice, &bob_b, "standup", "c-1", grant, &base, &mut rng).expect("seal");
    group.bench_function("envelope_open", |b| {
        b.iter(|| env.open(&bob, &alice_b, "standup", "c-1").expect("open"))
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .with_measurement(ThreadCpuTime { wall: WallTime })
        .warm_up_time(Duration::from_secs(1));
    targets = frames, hpke
}
criterion_main!(benches);
