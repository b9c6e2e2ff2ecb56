//! The recorder obeys only the admin keys it is told to trust (default deny), every part real
//! and separate: `signaling policy keygen|sign`, `signaling dev --recording-policy` as a
//! process, the recorder's binary, a native load-test caller.
//! - A room whose policy (naming this recorder) an admin key it does not trust signed is refused
//!   by `serve` from the event stream without joining, and by `record` at join; it is logged with
//!   the room, counted, and nothing is archived.
//! - Without a trusted admin key, or with one that is not a key, `record` and `serve` do not
//!   start (exit 2, before touching the archive or the network).

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use loadtest::participant::{LiveCounters, ParticipantSpec, Role as CallerRole, run_participant};
use tokio::sync::watch;

use crate::common::recorder;
use crate::meeting_e2e::{
    DEV_API_KEY, DEV_API_SECRET, ServeSetup, caller_token, metric_sum, run_ok, scrape, sign_policy,
    signaling, start_recorder_serve, start_recording_service,
};

const ROOM: &str = "rogue-review";

/// What `command` printed on stdout, trimmed.
fn printed(cmd: &mut Command, what: &str) -> String {
    String::from_utf8(run_ok(cmd, what).stdout)
        .expect("utf-8")
        .trim()
        .to_owned()
}

/// An enrolled recorder and an organization key in `dir`: (state dir, `age1…` recipient); the
/// bundle `enroll` printed is in `dir/bundle.json`.
fn recorder_host(dir: &Path) -> (PathBuf, String) {
    let state = dir.join("state");
    let enrolled = run_ok(
        recorder()
            .args(["enroll", "--device", "rec-trust", "--state-dir"])
            .arg(&state),
        "recorder enroll",
    );
    std::fs::write(dir.join("bundle.json"), &enrolled.stdout).expect("bundle saved");
    let org = printed(
        recorder()
            .args(["org-keygen", "--out"])
            .arg(dir.join("org.key")),
        "recorder org-keygen",
    );
    (state, org)
}

/// The archive holds nothing: `list` shows its header only, and no session folder exists.
fn assert_nothing_archived(archive: &Path) {
    if archive.exists() {
        let listed = printed(
            recorder().args(["list", "--archive-dir"]).arg(archive),
            "recorder list",
        );
        assert_eq!(listed.lines().count(), 1, "no session listed:\n{listed}");
        let sessions = archive.join("sessions");
        assert!(
            !sessions.exists()
                || std::fs::read_dir(&sessions)
                    .expect("sessions folder")
                    .next()
                    .is_none(),
            "no session folder"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn recorder_refuses_a_policy_signed_by_an_untrusted_admin_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = |name: &str| -> PathBuf { dir.path().join(name) };
    let archive = path("archive");
    // Two admins: A signs the room's policy, the recorder is told to trust only B.
    run_ok(
        signaling()
            .args(["policy", "keygen", "--out"])
            .arg(path("admin-a.key")),
        "signaling policy keygen (A)",
    );
    let admin_b = printed(
        signaling()
            .args(["policy", "keygen", "--out"])
            .arg(path("admin-b.key")),
        "signaling policy keygen (B)",
    );
    let (state, org) = recorder_host(dir.path());
    // The policy names this very recorder, signed by A.
    sign_policy(
        &path("admin-a.key"),
        ROOM,
        &path("bundle.json"),
        &path("policy.json"),
    );
    let (_service, http, ws_url) = start_recording_service(&path("policy.json")).await;

    // `serve`, trusting B only.
    let (mut rec, metrics_addr) = start_recorder_serve(&ServeSetup {
        ws_url: &ws_url,
        state: &state,
        archive: &archive,
        org_public: &org,
        trusted_admin_keys: &admin_b,
    })
    .await;

    // A caller makes the room active: signaling announces it to the recorder its policy names.
    let counters = Arc::new(LiveCounters::default());
    let (stop_caller, stop_rx) = watch::channel(false);
    let caller = tokio::spawn(run_participant(
        ParticipantSpec {
            index: 0,
            role: CallerRole::Caller,
            room: ROOM.into(),
            ws_url: ws_url.clone(),
            token: caller_token(ROOM, "caller-0"),
            epoch: Instant::now(),
            seed: 3,
            media_via: None,
            miss_keys_until_request: false,
        },
        counters,
        stop_rx,
    ));
    let refusal = rec
        .wait_for(Duration::from_secs(30), |l| {
            (l.contains("room refused") && l.contains(ROOM)).then(|| l.to_owned())
        })
        .await;
    assert!(
        refusal.contains("does not trust") && refusal.contains("WARN"),
        "logged as a warning with the room and why: {refusal}"
    );
    let page = scrape(&metrics_addr).await;
    assert!(
        metric_sum(
            &page,
            "recorder_rooms_refused_total{reason=\"untrusted_policy\"}"
        ) >= 1.0,
        "counted:\n{page}"
    );
    assert!(
        metric_sum(&page, "recorder_sessions_total{outcome=\"refused_policy\"}") >= 1.0,
        "{page}"
    );
    assert_eq!(metric_sum(&page, "recorder_active_sessions"), 0.0, "{page}");
    // Let the caller publish a while: the recorder stays out.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let page = scrape(&metrics_addr).await;
    assert_eq!(metric_sum(&page, "recorder_active_sessions"), 0.0, "{page}");
    assert_eq!(
        metric_sum(&page, "recorder_frames_decrypted_total"),
        0.0,
        "{page}"
    );
    assert_eq!(
        metric_sum(&page, "recorder_sessions_total{outcome=\"failed\"}"),
        0.0,
        "{page}"
    );
    // Signaling saw one join, the caller's: the recorder never tried.
    let service_page = reqwest::get(format!("http://{http}/metrics"))
        .await
        .expect("signaling's metrics")
        .text()
        .await
        .expect("body");
    assert_eq!(
        metric_sum(&service_page, "signaling_joins_total{result=\"ok\"}"),
        1.0,
        "{service_page}"
    );
    assert_eq!(
        metric_sum(&service_page, "signaling_joins_total{result=\"refused\"}"),
        0.0,
        "{service_page}"
    );
    rec.signal("-TERM");
    assert!(
        rec.wait_exit(Duration::from_secs(20)).await,
        "serve exits 0 on SIGTERM:\n{}",
        rec.log()
    );

    // `record` has no event: it joins, checks the room's policy, refuses and leaves.
    let mut record = recorder();
    record
        .args(["record", "--room", ROOM, "--signaling", &ws_url])
        .args(["--api-key", DEV_API_KEY, "--state-dir"])
        .arg(&state)
        .arg("--archive-dir")
        .arg(&archive)
        .args(["--archive-recipient", &org, "--trusted-admin-key", &admin_b])
        .env("RECORDER_API_SECRET", DEV_API_SECRET)
        .env("NO_COLOR", "1");
    let out = output_within(record, Duration::from_secs(30)).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "refused:\n{stderr}");
    assert!(
        stderr.contains("recorder: the recording policy is signed by admin key")
            && stderr.contains("does not trust"),
        "{stderr}"
    );
    let log = String::from_utf8_lossy(&out.stdout);
    assert!(
        log.lines()
            .any(|l| l.contains("room not recorded") && l.contains(ROOM) && l.contains("WARN")),
        "the log names the room:\n{log}"
    );

    stop_caller.send(true).expect("caller runs");
    let outcome = caller.await.expect("caller task");
    assert!(outcome.joined, "caller failed: {:?}", outcome.failure);
    assert_nothing_archived(&archive);
}

/// Runs `cmd` to its end, killed (and the test failed) after `limit`.
async fn output_within(mut cmd: Command, limit: Duration) -> Output {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the recorder starts");
    let deadline = Instant::now() + limit;
    while child.try_wait().expect("wait").is_none() {
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{cmd:?} still running after {limit:?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    child.wait_with_output().expect("its output")
}

/// The `record` and `serve` command lines, complete but for a trusted admin key.
fn without_key(dir: &Path, state: &Path, org: &str, command: &str) -> Command {
    let mut cmd = recorder();
    cmd.arg(command);
    if command == "record" {
        cmd.args(["--room", "standup"]);
    }
    cmd.args(["--signaling", "ws://127.0.0.1:9/v1/rtc", "--api-key", "k"])
        .arg("--state-dir")
        .arg(state)
        .arg("--archive-dir")
        .arg(dir.join(format!("archive-{command}")))
        .args(["--archive-recipient", org])
        .env_remove("RECORDER_TRUSTED_ADMIN_KEYS")
        .env("RECORDER_API_SECRET", "s");
    cmd
}

fn finished(cmd: &mut Command) -> (Option<i32>, String) {
    let out: Output = cmd.output().expect("recorder runs");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn recorder_without_a_trusted_admin_key_does_not_start() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (state, org) = recorder_host(dir.path());
    for command in ["record", "serve"] {
        let archive = dir.path().join(format!("archive-{command}"));
        // No key at all.
        let (code, stderr) = finished(&mut without_key(dir.path(), &state, &org, command));
        assert_eq!(code, Some(2), "{command}: a usage error:\n{stderr}");
        assert!(
            stderr.contains("--trusted-admin-key"),
            "{command}: says what is missing:\n{stderr}"
        );
        // An empty variable is no key either.
        let (code, stderr) = finished(
            without_key(dir.path(), &state, &org, command).env("RECORDER_TRUSTED_ADMIN_KEYS", ""),
        );
        assert_eq!(code, Some(2), "{command}, empty variable:\n{stderr}");
        // Something that is not a key (a key's 31 bytes, padding) is refused, not skipped.
        for bad in [
            "not-a-key",
            "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
            "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
        ] {
            let (code, stderr) = finished(
                without_key(dir.path(), &state, &org, command).args(["--trusted-admin-key", bad]),
            );
            assert_eq!(code, Some(2), "{command} {bad}:\n{stderr}");
            assert!(stderr.contains("base64url of 32 bytes"), "{stderr}");
        }
        // One bad key among good ones in the variable spoils the set.
        let good = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
        let (code, stderr) = finished(
            without_key(dir.path(), &state, &org, command)
                .env("RECORDER_TRUSTED_ADMIN_KEYS", format!("{good},x")),
        );
        assert_eq!(code, Some(2), "{command}, a bad key in the list:\n{stderr}");
        assert!(
            !archive.exists(),
            "{command}: nothing opened before the refusal"
        );
    }
    // With a key the same command line starts, and fails only later: at the service, which is
    // not there (`record` cannot join; the archive was opened by then).
    let (code, stderr) = finished(without_key(dir.path(), &state, &org, "record").env(
        "RECORDER_TRUSTED_ADMIN_KEYS",
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA,AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE",
    ));
    assert_eq!(code, Some(1), "started, then failed to join:\n{stderr}");
    assert!(stderr.contains("join"), "{stderr}");
}
