//! Starting and stopping the services under test (`signaling`, `sfu`) as child processes.
//!
//! Generic on purpose: a [`ServiceSpec`] names a program, its arguments and environment, and a
//! health URL; [`ServiceProcess::spawn`] starts it and returns once the URL answers 2xx (or
//! fails if the process exits or the URL stays silent past the timeout). [`ServiceProcess::stop`]
//! sends SIGTERM, waits for a graceful exit and only then kills. A handle dropped without `stop`
//! kills its process, so no service outlives the load test.

use std::ffi::OsString;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use thiserror::Error;

use crate::process_usage::{ProcessUsage, ProcessUsageError, read_process_usage};

/// How often the health URL is polled while a service starts.
const HEALTH_POLL: Duration = Duration::from_millis(50);

/// What to run and how to tell it is ready.
#[derive(Debug, Clone)]
pub struct ServiceSpec {
    /// A short name for messages (`"sfu"`).
    pub name: String,
    /// The executable.
    pub program: PathBuf,
    /// Its arguments.
    pub args: Vec<OsString>,
    /// Extra environment variables (the rest is inherited).
    pub env: Vec<(OsString, OsString)>,
    /// An `http://127.0.0.1:...` URL that answers 2xx once the service is ready.
    pub health_url: String,
    /// How long to wait for the health URL.
    pub startup_timeout: Duration,
    /// File that receives the service's stdout and stderr; `None` discards them.
    pub log: Option<PathBuf>,
}

/// Why a service could not be started or stopped.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ServiceError {
    /// The executable could not be started (missing, not executable).
    #[error("starting {name} ({program}): {source}")]
    Spawn {
        /// The service.
        name: String,
        /// The executable.
        program: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The log file could not be created.
    #[error("log file for {name}: {source}")]
    Log {
        /// The service.
        name: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The process exited before its health URL answered.
    #[error("{name} exited during start-up ({status})")]
    ExitedEarly {
        /// The service.
        name: String,
        /// How it exited.
        status: ExitStatus,
    },
    /// The health URL did not answer 2xx in time (the process was killed).
    #[error("{name} not healthy at {url} after {timeout:?}")]
    NotHealthy {
        /// The service.
        name: String,
        /// The health URL.
        url: String,
        /// The start-up timeout.
        timeout: Duration,
    },
    /// Waiting for or signalling the process failed.
    #[error("controlling {name}: {source}")]
    Control {
        /// The service.
        name: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// Reading the process' usage failed.
    #[error(transparent)]
    Usage(#[from] ProcessUsageError),
    /// No binary of that name next to the running executable.
    #[error("no {0} binary next to this executable (build it: cargo build -p {0})")]
    NoSibling(String),
}

/// How a stopped service ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopOutcome {
    /// It exited on SIGTERM within the grace period.
    Graceful(ExitStatus),
    /// It had already exited before `stop`.
    AlreadyExited(ExitStatus),
    /// It ignored SIGTERM for the whole grace period and was killed.
    Killed(ExitStatus),
}

/// A running service; dropping it kills the process.
#[derive(Debug)]
pub struct ServiceProcess {
    name: String,
    child: Option<Child>,
}

impl ServiceProcess {
    /// Starts `spec.program` and waits until `spec.health_url` answers 2xx.
    pub fn spawn(spec: &ServiceSpec) -> Result<Self, ServiceError> {
        let mut command = Command::new(&spec.program);
        command.args(&spec.args).stdin(Stdio::null());
        for (k, v) in &spec.env {
            command.env(k, v);
        }
        match &spec.log {
            Some(path) => {
                let log_err = |source| ServiceError::Log {
                    name: spec.name.clone(),
                    source,
                };
                let out = File::create(path).map_err(log_err)?;
                let err = out.try_clone().map_err(log_err)?;
                command.stdout(out).stderr(err);
            }
            None => {
                command.stdout(Stdio::null()).stderr(Stdio::null());
            }
        }
        let child = command.spawn().map_err(|source| ServiceError::Spawn {
            name: spec.name.clone(),
            program: spec.program.display().to_string(),
            source,
        })?;
        let mut service = ServiceProcess {
            name: spec.name.clone(),
            child: Some(child),
        };
        service.wait_healthy(&spec.health_url, spec.startup_timeout)?;
        Ok(service)
    }

    fn wait_healthy(&mut self, url: &str, timeout: Duration) -> Result<(), ServiceError> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.try_wait()? {
                return Err(ServiceError::ExitedEarly {
                    name: self.name.clone(),
                    status,
                });
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                self.kill_now();
                return Err(ServiceError::NotHealthy {
                    name: self.name.clone(),
                    url: url.to_owned(),
                    timeout,
                });
            }
            let attempt = left.min(Duration::from_secs(1));
            if crate::metrics_scrape::http_get_text(url, attempt).is_ok() {
                return Ok(());
            }
            std::thread::sleep(HEALTH_POLL.min(left));
        }
    }

    fn try_wait(&mut self) -> Result<Option<ExitStatus>, ServiceError> {
        match self.child.as_mut() {
            Some(child) => child.try_wait().map_err(|source| ServiceError::Control {
                name: self.name.clone(),
                source,
            }),
            None => Ok(None),
        }
    }

    fn kill_now(&mut self) {
        if let Some(mut child) = self.child.take() {
            // Best effort during cleanup: the process may have exited on its own already.
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// The service's process id.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The service's CPU time and memory now.
    pub fn usage(&self) -> Result<ProcessUsage, ServiceError> {
        let pid = self.pid().ok_or_else(|| ServiceError::Control {
            name: self.name.clone(),
            source: std::io::Error::other("already stopped"),
        })?;
        Ok(read_process_usage(pid)?)
    }

    /// Sends SIGTERM and waits up to `grace` for the process to exit, then kills it.
    pub fn stop(mut self, grace: Duration) -> Result<StopOutcome, ServiceError> {
        let name = self.name.clone();
        let control = |source: std::io::Error| ServiceError::Control {
            name: name.clone(),
            source,
        };
        let Some(mut child) = self.child.take() else {
            return Err(control(std::io::Error::other("already stopped")));
        };
        if let Some(status) = child.try_wait().map_err(control)? {
            return Ok(StopOutcome::AlreadyExited(status));
        }
        let pid = i32::try_from(child.id()).map_err(|_| control(std::io::Error::other("pid")))?;
        kill(Pid::from_raw(pid), Signal::SIGTERM).map_err(|e| control(std::io::Error::from(e)))?;
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if let Some(status) = child.try_wait().map_err(control)? {
                return Ok(StopOutcome::Graceful(status));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        child.kill().map_err(control)?;
        Ok(StopOutcome::Killed(child.wait().map_err(control)?))
    }
}

impl Drop for ServiceProcess {
    fn drop(&mut self) {
        self.kill_now();
    }
}

/// The path of binary `name` in the same directory as the running executable (how `loadtest`
/// finds `signaling` and `sfu` built into the same target directory).
pub fn sibling_binary(name: &str) -> Result<PathBuf, ServiceError> {
    let exe = std::env::current_exe().map_err(|source| ServiceError::Control {
        name: name.to_owned(),
        source,
    })?;
    let dir = exe.parent().map(Path::to_path_buf).unwrap_or_default();
    // Test binaries live in target/<profile>/deps; the service binaries one level up.
    for candidate in [dir.join(name), dir.join("..").join(name)] {
        if candidate.is_file() {
            return Ok(candidate);
        }
    }
    Err(ServiceError::NoSibling(name.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::TcpListener;
    use std::os::unix::process::ExitStatusExt;

    /// A real HTTP health endpoint answering 200 to `n` requests.
    fn health_server(n: usize) -> (String, std::thread::JoinHandle<()>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/healthz", listener.local_addr().unwrap());
        let handle = std::thread::spawn(move || {
            for _ in 0..n {
                let (mut conn, _) = listener.accept().unwrap();
                let mut req = [0u8; 1024];
                let _ = conn.read(&mut req);
                let _ = conn.write_all(
                    b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok",
                );
            }
        });
        (url, handle)
    }

    fn spec(program: &str, args: &[&str], url: &str, timeout: Duration) -> ServiceSpec {
        ServiceSpec {
            name: "test-service".into(),
            program: program.into(),
            args: args.iter().map(OsString::from).collect(),
            env: vec![("LOADTEST_SERVICE_TEST".into(), "1".into())],
            health_url: url.into(),
            startup_timeout: timeout,
            log: None,
        }
    }

    #[test]
    fn waits_for_health_then_stops_with_sigterm() {
        let (url, server) = health_server(1);
        let service =
            ServiceProcess::spawn(&spec("sleep", &["30"], &url, Duration::from_secs(10))).unwrap();
        server.join().unwrap();
        let pid = service.pid().unwrap();
        assert!(service.usage().unwrap().peak_rss_bytes > 0);
        let outcome = service.stop(Duration::from_secs(5)).unwrap();
        match outcome {
            StopOutcome::Graceful(status) => assert_eq!(status.signal(), Some(15)),
            other => panic!("expected a graceful SIGTERM exit, got {other:?} (pid {pid})"),
        }
    }

    #[test]
    fn process_ignoring_sigterm_is_killed_after_grace() {
        let (url, server) = health_server(1);
        let service = ServiceProcess::spawn(&spec(
            "sh",
            &["-c", "trap '' TERM; sleep 30"],
            &url,
            Duration::from_secs(10),
        ))
        .unwrap();
        server.join().unwrap();
        // Give the shell a moment to install its trap before signalling it.
        std::thread::sleep(Duration::from_millis(200));
        match service.stop(Duration::from_millis(300)).unwrap() {
            StopOutcome::Killed(status) => assert_eq!(status.signal(), Some(9)),
            other => panic!("expected a kill, got {other:?}"),
        }
    }

    #[test]
    fn early_exit_and_silence_are_errors() {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let url = format!("http://127.0.0.1:{port}/healthz");
        let err = ServiceProcess::spawn(&spec(
            "sh",
            &["-c", "exit 3"],
            &url,
            Duration::from_secs(10),
        ))
        .unwrap_err();
        match err {
            ServiceError::ExitedEarly { status, .. } => assert_eq!(status.code(), Some(3)),
            other => panic!("{other}"),
        }
        let err = ServiceProcess::spawn(&spec("sleep", &["30"], &url, Duration::from_millis(400)))
            .unwrap_err();
        assert!(matches!(err, ServiceError::NotHealthy { .. }), "{err}");
        let err = ServiceProcess::spawn(&spec(
            "/nonexistent/loadtest-service",
            &[],
            &url,
            Duration::from_secs(1),
        ))
        .unwrap_err();
        assert!(matches!(err, ServiceError::Spawn { .. }), "{err}");
    }
}
