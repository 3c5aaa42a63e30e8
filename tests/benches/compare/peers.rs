//! The frameworks we compare with (cqrs-es 0.5, postgres-es 0.5) run in a process of their
//! own: the `bench-peers` binary, a cargo project outside this workspace (see its Cargo.toml
//! for why), built here on first use and run once per measurement.
//!
//! When it cannot be built or a run fails, the figure's "other" column stays empty and its
//! note says why; the bench goes on with ours.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

/// The peers binary, built on first use.
#[derive(Debug)]
pub struct Peers {
    target: PathBuf,
    binary: OnceLock<Result<PathBuf, String>>,
}

/// What one run printed: `value` and whatever else the measurement reports.
#[derive(Debug)]
pub struct Measured(serde_json::Value);

impl Measured {
    pub fn value(&self) -> Result<f64, String> {
        self.number("value")
    }

    pub fn number(&self, name: &str) -> Result<f64, String> {
        self.0
            .get(name)
            .and_then(serde_json::Value::as_f64)
            .ok_or_else(|| format!("bench-peers printed no number `{name}`: {}", self.0))
    }
}

impl Peers {
    /// Peers built into `target` (a directory of their own: they have their own lockfile).
    pub fn new(target: PathBuf) -> Self {
        Peers {
            target,
            binary: OnceLock::new(),
        }
    }

    /// Runs `measurement` with `--name value` options; its JSON line, or why there is none.
    pub fn run(&self, measurement: &str, options: &[(&str, String)]) -> Result<Measured, String> {
        let binary = self
            .binary
            .get_or_init(|| build(&self.target))
            .as_ref()
            .map_err(Clone::clone)?;
        let mut command = Command::new(binary);
        command.arg(measurement);
        for (name, value) in options {
            command.arg(format!("--{name}")).arg(value);
        }
        // Blocks the bench's main task while the peer runs: nothing of ours runs meanwhile,
        // as when the peers ran in this process.
        let output = command
            .stdin(Stdio::null())
            .output()
            .map_err(|error| format!("could not run {}: {error}", binary.display()))?;
        if !output.status.success() {
            let stderr = String::from_utf8_lossy(&output.stderr);
            let reason = stderr.lines().rev().find(|line| !line.trim().is_empty());
            return Err(format!(
                "bench-peers {measurement} failed ({}): {}",
                output.status,
                reason.unwrap_or("no message")
            ));
        }
        let stdout = String::from_utf8_lossy(&output.stdout);
        let line = stdout.lines().rev().find(|line| line.starts_with('{'));
        line.and_then(|line| serde_json::from_str(line).ok())
            .map(Measured)
            .ok_or_else(|| format!("bench-peers {measurement} printed no result"))
    }
}

/// Builds bench-peers in release mode with the cargo running this bench; the binary's path.
fn build(target: &Path) -> Result<PathBuf, String> {
    // bench-peers/ sits beside tests/, at the workspace's root.
    let tests = Path::new(env!("CARGO_MANIFEST_DIR"));
    let manifest = tests
        .parent()
        .unwrap_or(tests)
        .join("bench-peers")
        .join("Cargo.toml");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    eprintln!(
        "building the peers (cqrs-es, postgres-es) from {} into {}",
        manifest.display(),
        target.display()
    );
    // `--quiet`: a finished build says nothing; errors and warnings still reach stderr.
    let status = Command::new(&cargo)
        .args(["build", "--release", "--quiet", "--manifest-path"])
        .arg(&manifest)
        .arg("--target-dir")
        .arg(target)
        .stdin(Stdio::null())
        .status()
        .map_err(|error| {
            format!(
                "peers not measured: could not run {}: {error}",
                Path::new(&cargo).display()
            )
        })?;
    if !status.success() {
        eprintln!("could not build the peers; their columns stay empty");
        return Err(format!(
            "peers not measured: building bench-peers failed ({status}; cargo's errors above)"
        ));
    }
    Ok(target
        .join("release")
        .join(format!("bench-peers{}", std::env::consts::EXE_SUFFIX)))
}

/// The median of a figure's peer runs, or the first reason one failed.
pub fn median(runs: Vec<Result<f64, String>>) -> Result<f64, String> {
    runs.into_iter()
        .collect::<Result<Vec<f64>, String>>()
        .map(crate::report::median)
}
