//! Cross-implementation fixtures (docs/e2ee.md §5): the file format, a generator with fresh
//! random keys, and a checker that runs every case through the crate's public API.
//!
//! Shared by `examples/cross_fixtures.rs` (writes the Rust-made file) and the tests (open the
//! JS-made file, and round-trip the Rust-made one).

use std::time::Instant;

use e2ee_frames::{
    BaseKey, CipherSuite, Codec, DeviceBundle, DeviceId, DeviceIdentity, DeviceKeys, KeyEnvelope,
    KeyGrant, KeyStore, Kid, RosterEntry, Sender, SframeKey, Stream, safety_number, security_code,
};
use rand::{CryptoRng, RngExt as _};
use serde::{Deserialize, Serialize};

#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Fixtures {
    pub(crate) generator: String,
    pub(crate) sframe: Vec<SframeCase>,
    pub(crate) media: Vec<MediaCase>,
    pub(crate) ratchet: Vec<RatchetCase>,
    pub(crate) kid: Vec<KidCase>,
    pub(crate) bundles: Vec<BundleCase>,
    pub(crate) envelopes: Vec<EnvelopeCase>,
    pub(crate) safety_numbers: Vec<SafetyCase>,
    pub(crate) security_codes: Vec<CodeCase>,
}

#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct SframeCase {
    suite: u16,
    base_key: String,
    kid: u64,
    ctr: u64,
    metadata: String,
    plaintext: String,
    ciphertext: String,
}

#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct MediaCase {
    codec: String,
    suite: u16,
    base_key: String,
    kid: u64,
    ctr: u64,
    frame: String,
    wire: String,
}

#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct RatchetCase {
    suite: u16,
    base_key: String,
    steps: u32,
    ratcheted: String,
}

#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct KidCase {
    slot: u16,
    stream: u8,
    generation: u16,
    step: u8,
    kid: u64,
}

#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct BundleCase {
    bundle: DeviceBundle,
}

#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct EnvelopeCase {
    room: String,
    call: String,
    sender_bundle: DeviceBundle,
    recipient_bundle: DeviceBundle,
    recipient_hpke_private: String,
    envelope: KeyEnvelope,
    base_key: String,
}

#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Side {
    device: String,
    identity_key: String,
}

#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct SafetyCase {
    a: Side,
    b: Side,
    number: String,
}

#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct RosterCase {
    device: String,
    identity_key: String,
    role: String,
    slot: u16,
}

#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct CodeCase {
    room: String,
    call: String,
    roster: Vec<RosterCase>,
    code: String,
}

fn random_bytes(rng: &mut impl CryptoRng, len: usize) -> Vec<u8> {
    let mut v = vec![0; len];
    rng.fill_bytes(&mut v);
    v
}

fn random_kid(rng: &mut impl CryptoRng, stream: Stream) -> Kid {
    // Slots are drawn below 4096, so the KID is valid.
    Kid::new(
        rng.random_range(0..=4095),
        stream,
        rng.random(),
        rng.random(),
    )
    .expect("slot below 4096")
}

fn vp8_frame(rng: &mut impl CryptoRng, keyframe: bool, len: usize) -> Vec<u8> {
    let mut f = random_bytes(rng, len);
    if let Some(first) = f.first_mut() {
        *first = if keyframe { *first & 0xfe } else { *first | 1 };
    }
    f
}

/// Makes a fixture set with fresh random keys.
pub(crate) fn generate(rng: &mut impl CryptoRng) -> Fixtures {
    let mut sframe = Vec::new();
    for suite in CipherSuite::ALL {
        let layout_kid = random_kid(rng, Stream::Camera).to_u64();
        let small = (rng.random_range(0..8), rng.random_range(0..8));
        for (kid, ctr) in [
            small,
            (layout_kid, rng.random_range(0..1 << 30)),
            (rng.random(), rng.random()),
        ] {
            let base_len = [16, 32, 64][rng.random_range(0..3)];
            let base = random_bytes(rng, base_len);
            let (meta_len, plain_len) = (rng.random_range(0..12), rng.random_range(0..200));
            let metadata = random_bytes(rng, meta_len);
            let plaintext = random_bytes(rng, plain_len);
            let key = SframeKey::derive(suite, &BaseKey::from_bytes(&base).expect("16-64"), kid);
            let mut ct = Vec::new();
            key.encrypt_into(ctr, &metadata, &plaintext, &mut ct)
                .expect("small frame encrypts");
            sframe.push(SframeCase {
                suite: suite.id(),
                base_key: hex::encode(base),
                kid,
                ctr,
                metadata: hex::encode(metadata),
                plaintext: hex::encode(plaintext),
                ciphertext: hex::encode(ct),
            });
        }
    }

    let frames: Vec<(Codec, Stream, CipherSuite, Vec<u8>)> = vec![
        (
            Codec::Vp8,
            Stream::Camera,
            CipherSuite::DEFAULT,
            vp8_frame(rng, true, 300),
        ),
        (
            Codec::Vp8,
            Stream::Camera,
            CipherSuite::DEFAULT,
            vp8_frame(rng, false, 120),
        ),
        (
            Codec::Vp8,
            Stream::ScreenVideo,
            CipherSuite::Aes128GcmSha256_128,
            vp8_frame(rng, true, 10),
        ),
        (
            Codec::Opus,
            Stream::Audio,
            CipherSuite::DEFAULT,
            random_bytes(rng, 80),
        ),
        (
            Codec::Opus,
            Stream::ScreenAudio,
            CipherSuite::Aes128CtrHmacSha256_80,
            random_bytes(rng, 1),
        ),
        // Shorter than the prefix: sent whole as prefix, empty plaintext (docs/e2ee.md §1.2).
        (
            Codec::Vp8,
            Stream::Camera,
            CipherSuite::Aes128CtrHmacSha256_64,
            vp8_frame(rng, true, 6),
        ),
        (
            Codec::Vp8,
            Stream::Camera,
            CipherSuite::Aes128CtrHmacSha256_32,
            vp8_frame(rng, false, 2),
        ),
    ];
    let mut media = Vec::new();
    for (codec, stream, suite, frame) in frames {
        let kid = random_kid(rng, stream);
        let mut sender = Sender::new(suite, kid.slot(), kid.generation(), BaseKey::random(rng))
            .expect("slot below 4096");
        for _ in 0..kid.step() {
            sender.ratchet().expect("at most 255 steps");
        }
        let ctr = rng.random_range(0..100_000);
        sender
            .advance_counter(stream, ctr)
            .expect("fresh counter moves forward");
        let mut wire = Vec::new();
        sender
            .encrypt_media(stream, codec, &frame, &mut wire)
            .expect("small frame encrypts");
        media.push(MediaCase {
            codec: codec.name().to_owned(),
            suite: suite.id(),
            base_key: hex::encode(sender.base_key().as_bytes()),
            kid: kid.to_u64(),
            ctr,
            frame: hex::encode(frame),
            wire: hex::encode(wire),
        });
    }

    let ratchet = CipherSuite::ALL
        .into_iter()
        .map(|suite| {
            let base = BaseKey::random(rng);
            let steps = rng.random_range(1..=5);
            RatchetCase {
                suite: suite.id(),
                base_key: hex::encode(base.as_bytes()),
                steps,
                ratcheted: hex::encode(base.ratchet_by(suite, steps).as_bytes()),
            }
        })
        .collect();

    let mut kids = vec![
        Kid::new(0, Stream::Audio, 0, 0).expect("valid"),
        Kid::new(4095, Stream::ScreenAudio, u16::MAX, u8::MAX).expect("valid"),
    ];
    for stream in Stream::ALL {
        kids.push(random_kid(rng, stream));
    }
    let kid = kids
        .into_iter()
        .map(|k| KidCase {
            slot: k.slot(),
            stream: k.stream().number(),
            generation: k.generation(),
            step: k.step(),
            kid: k.to_u64(),
        })
        .collect();

    let devices: Vec<DeviceKeys> = ["dev-alice", "dev-bob", "dev-carol"]
        .into_iter()
        .map(|name| {
            let id =
                DeviceId::new(format!("{name}-{}", rng.random_range(0..10_000))).expect("valid id");
            DeviceKeys::generate(id, rng)
        })
        .collect();
    let bundles: Vec<DeviceBundle> = devices.iter().map(DeviceKeys::bundle).collect();

    let mut envelopes = Vec::new();
    for (s, r, suite) in [
        (0, 1, CipherSuite::DEFAULT),
        (1, 2, CipherSuite::DEFAULT),
        (2, 0, CipherSuite::Aes128GcmSha256_128),
    ] {
        let room = "standup".to_owned();
        let call = format!("c-{}", hex::encode(random_bytes(rng, 4)));
        let grant = KeyGrant {
            slot: rng.random_range(0..=4095),
            generation: rng.random(),
            step: rng.random(),
            suite,
        };
        // The key of (slot, generation, step): drawn at step 0, ratcheted up to `step`
        // (32 bytes at step 0, Nh after).
        let base = BaseKey::random(rng).ratchet_by(suite, u32::from(grant.step));
        let recipient = bundles[r].verify().expect("own bundle verifies");
        let envelope = KeyEnvelope::seal(&devices[s], &recipient, &room, &call, grant, &base, rng)
            .expect("valid envelope inputs");
        envelopes.push(EnvelopeCase {
            room,
            call,
            sender_bundle: bundles[s].clone(),
            recipient_bundle: bundles[r].clone(),
            recipient_hpke_private: hex::encode(devices[r].hpke_secret()),
            envelope,
            base_key: hex::encode(base.as_bytes()),
        });
    }

    let side = |d: &DeviceKeys| Side {
        device: d.device().to_string(),
        identity_key: hex::encode(d.identity_key()),
    };
    let ident = |d: &DeviceKeys| (d.device().to_string(), d.identity_key());
    let safety_numbers = [(0, 1), (2, 0)]
        .into_iter()
        .map(|(a, b)| {
            let ((da, ka), (db, kb)) = (ident(&devices[a]), ident(&devices[b]));
            let number = safety_number(
                DeviceIdentity {
                    device: &da,
                    identity_key: &ka,
                },
                DeviceIdentity {
                    device: &db,
                    identity_key: &kb,
                },
            );
            SafetyCase {
                a: side(&devices[a]),
                b: side(&devices[b]),
                number: number.digits().to_owned(),
            }
        })
        .collect();

    let roles = ["caller", "presenter", "viewer", "recorder"];
    let mut security_codes = Vec::new();
    for members in [vec![0, 1, 2], vec![1, 0]] {
        let roster: Vec<RosterCase> = members
            .iter()
            .enumerate()
            .map(|(i, &m)| RosterCase {
                device: devices[m].device().to_string(),
                identity_key: hex::encode(devices[m].identity_key()),
                role: roles[(m + i) % roles.len()].to_owned(),
                slot: rng.random_range(0..=4095),
            })
            .collect();
        let room = format!("room-{}", rng.random_range(0..1000));
        let call = format!("c-{}", hex::encode(random_bytes(rng, 4)));
        let code = code_of(&room, &call, &roster).expect("valid roster");
        security_codes.push(CodeCase {
            room,
            call,
            roster,
            code,
        });
    }

    Fixtures {
        generator: "rust".to_owned(),
        sframe,
        media,
        ratchet,
        kid,
        bundles: bundles
            .into_iter()
            .map(|bundle| BundleCase { bundle })
            .collect(),
        envelopes,
        safety_numbers,
        security_codes,
    }
}

fn unhex(s: &str) -> Result<Vec<u8>, String> {
    hex::decode(s).map_err(|e| format!("bad hex {s:?}: {e}"))
}

fn key32(s: &str) -> Result<[u8; 32], String> {
    unhex(s)?
        .try_into()
        .map_err(|_| format!("{s:?} is not 32 bytes"))
}

fn suite(id: u16) -> Result<CipherSuite, String> {
    CipherSuite::try_from(id).map_err(|e| e.to_string())
}

fn base_key(s: &str) -> Result<BaseKey, String> {
    BaseKey::from_bytes(&unhex(s)?).map_err(|e| e.to_string())
}

fn ensure(ok: bool, what: impl FnOnce() -> String) -> Result<(), String> {
    if ok { Ok(()) } else { Err(what()) }
}

fn code_of(room: &str, call: &str, roster: &[RosterCase]) -> Result<String, String> {
    let keys = roster
        .iter()
        .map(|r| key32(&r.identity_key))
        .collect::<Result<Vec<_>, _>>()?;
    let entries: Vec<RosterEntry<'_>> = roster
        .iter()
        .zip(&keys)
        .map(|(r, k)| RosterEntry {
            device: &r.device,
            identity_key: k,
            role: &r.role,
            slot: r.slot,
        })
        .collect();
    security_code(room, call, &entries)
        .map(|c| c.digits().to_owned())
        .map_err(|e| e.to_string())
}

fn check_sframe(c: &SframeCase) -> Result<(), String> {
    let suite = suite(c.suite)?;
    let key = SframeKey::derive(suite, &base_key(&c.base_key)?, c.kid);
    let (metadata, plaintext, ct) = (
        unhex(&c.metadata)?,
        unhex(&c.plaintext)?,
        unhex(&c.ciphertext)?,
    );
    let mut out = Vec::new();
    let header = key
        .decrypt_into(&ct, &metadata, &mut out)
        .map_err(|e| e.to_string())?;
    ensure(header.ctr == c.ctr, || {
        format!("ctr {} != {}", header.ctr, c.ctr)
    })?;
    ensure(out == plaintext, || "plaintext differs".into())?;
    // Encryption is deterministic: this side makes the same bytes.
    out.clear();
    key.encrypt_into(c.ctr, &metadata, &plaintext, &mut out)
        .map_err(|e| e.to_string())?;
    ensure(out == ct, || "re-encryption differs".into())
}

fn check_media(c: &MediaCase) -> Result<(), String> {
    let suite = suite(c.suite)?;
    let codec = Codec::from_name(&c.codec).ok_or_else(|| format!("codec {}", c.codec))?;
    let kid = Kid::from_u64(c.kid).map_err(|e| e.to_string())?;
    let now = Instant::now();
    let mut store = KeyStore::new();
    store
        .install(
            now,
            kid.slot(),
            kid.generation(),
            kid.step(),
            suite,
            base_key(&c.base_key)?,
        )
        .map_err(|e| e.to_string())?;
    let mut frame = Vec::new();
    let got = store
        .decrypt_media(now, codec, &unhex(&c.wire)?, &mut frame)
        .map_err(|e| e.to_string())?;
    ensure(got.kid == kid && got.ctr == c.ctr, || {
        format!("kid/ctr {got:?}")
    })?;
    ensure(frame == unhex(&c.frame)?, || "frame differs".into())
}

fn check_ratchet(c: &RatchetCase) -> Result<(), String> {
    let got = base_key(&c.base_key)?.ratchet_by(suite(c.suite)?, c.steps);
    ensure(got.as_bytes() == unhex(&c.ratcheted)?, || {
        "ratcheted key differs".into()
    })
}

fn check_kid(c: &KidCase) -> Result<(), String> {
    let stream = Stream::try_from(c.stream).map_err(|e| e.to_string())?;
    let kid = Kid::new(c.slot, stream, c.generation, c.step).map_err(|e| e.to_string())?;
    ensure(kid.to_u64() == c.kid, || {
        format!("encodes to {}", kid.to_u64())
    })?;
    ensure(Kid::from_u64(c.kid) == Ok(kid), || {
        "decodes differently".into()
    })
}

fn check_envelope(c: &EnvelopeCase) -> Result<(), String> {
    let sender = c.sender_bundle.verify().map_err(|e| e.to_string())?;
    let recipient = c.recipient_bundle.verify().map_err(|e| e.to_string())?;
    // Opening needs only the recipient's device id and HPKE private key; the identity seed here
    // is a placeholder that plays no part in opening.
    let me = DeviceKeys::from_secrets(
        recipient.device().clone(),
        &[7; 32],
        &key32(&c.recipient_hpke_private)?,
    )
    .map_err(|e| e.to_string())?;
    ensure(me.hpke_public_key() == c.recipient_bundle.hpke_key, || {
        "HPKE private key does not match the recipient bundle".into()
    })?;
    // The JSON form survives a round trip through this side's types.
    let envelope = KeyEnvelope::from_json(&c.envelope.to_json()).map_err(|e| e.to_string())?;
    let (grant, key) = envelope
        .open(&me, &sender, &c.room, &c.call)
        .map_err(|e| e.to_string())?;
    ensure(key.as_bytes() == unhex(&c.base_key)?, || {
        "base key differs".into()
    })?;
    ensure(
        grant.slot == envelope.slot
            && grant.generation == envelope.generation
            && grant.step == envelope.step
            && grant.suite.id() == envelope.suite,
        || "grant differs".into(),
    )
}

fn check_safety(c: &SafetyCase) -> Result<(), String> {
    let (ka, kb) = (key32(&c.a.identity_key)?, key32(&c.b.identity_key)?);
    let a = DeviceIdentity {
        device: &c.a.device,
        identity_key: &ka,
    };
    let b = DeviceIdentity {
        device: &c.b.device,
        identity_key: &kb,
    };
    let n1 = safety_number(a, b);
    let n2 = safety_number(b, a);
    ensure(n1 == n2, || "not symmetric".into())?;
    ensure(n1.digits() == c.number, || {
        format!("{} != {}", n1.digits(), c.number)
    })
}

/// Checks every case; returns how many were checked, or every failure.
pub(crate) fn check(f: &Fixtures) -> Result<usize, Vec<String>> {
    let mut failures = Vec::new();
    let mut count = 0;
    let mut run = |name: String, r: Result<(), String>| {
        count += 1;
        if let Err(e) = r {
            failures.push(format!("{name}: {e}"));
        }
    };
    for (i, c) in f.sframe.iter().enumerate() {
        run(format!("sframe[{i}] suite {}", c.suite), check_sframe(c));
    }
    for (i, c) in f.media.iter().enumerate() {
        run(
            format!("media[{i}] {} suite {}", c.codec, c.suite),
            check_media(c),
        );
    }
    for (i, c) in f.ratchet.iter().enumerate() {
        run(format!("ratchet[{i}] suite {}", c.suite), check_ratchet(c));
    }
    for (i, c) in f.kid.iter().enumerate() {
        run(format!("kid[{i}]"), check_kid(c));
    }
    for (i, c) in f.bundles.iter().enumerate() {
        run(
            format!("bundles[{i}]"),
            c.bundle.verify().map(drop).map_err(|e| e.to_string()),
        );
    }
    for (i, c) in f.envelopes.iter().enumerate() {
        run(format!("envelopes[{i}]"), check_envelope(c));
    }
    for (i, c) in f.safety_numbers.iter().enumerate() {
        run(format!("safety_numbers[{i}]"), check_safety(c));
    }
    for (i, c) in f.security_codes.iter().enumerate() {
        let r = code_of(&c.room, &c.call, &c.roster)
            .and_then(|got| ensure(got == c.code, || format!("{got} != {}", c.code)));
        run(format!("security_codes[{i}]"), r);
    }
    // Coverage the format requires.
    let suites: Vec<u16> = f.sframe.iter().map(|c| c.suite).collect();
    for s in CipherSuite::ALL {
        run(
            format!("coverage: sframe suite {}", s.id()),
            ensure(suites.contains(&s.id()), || "missing".into()),
        );
    }
    let has_media = |codec: &str, key: Option<bool>| {
        f.media.iter().any(|c| {
            c.codec == codec
                && key.is_none_or(|k| {
                    unhex(&c.frame)
                        .ok()
                        .and_then(|fr| fr.first().copied())
                        .is_some_and(|b| (b & 1 == 0) == k)
                })
        })
    };
    run(
        "coverage: media vp8 keyframe, vp8 delta, opus".into(),
        ensure(
            has_media("vp8", Some(true))
                && has_media("vp8", Some(false))
                && has_media("opus", None),
            || "missing".into(),
        ),
    );
    run(
        "coverage: at least two envelopes".into(),
        ensure(f.envelopes.len() >= 2, || "fewer".into()),
    );
    for (name, n) in [
        ("ratchet", f.ratchet.len()),
        ("kid", f.kid.len()),
        ("bundles", f.bundles.len()),
        ("safety_numbers", f.safety_numbers.len()),
        ("security_codes", f.security_codes.len()),
    ] {
        run(
            format!("coverage: {name} not empty"),
            ensure(n > 0, || "empty".into()),
        );
    }
    if failures.is_empty() {
        Ok(count)
    } else {
        Err(failures)
    }
}
