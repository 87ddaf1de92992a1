//! Kill test: a child process rewrites the env file in a loop and is SIGKILLed at random
//! moments, hundreds of times. After every kill the file must be exactly one complete version,
//! never torn, never empty.
//!
//! The child is this test binary itself, re-run with `kill::child_writer --exact` and the
//! environment variable `SHIPLINE_ENVFILE_KILL_CHILD` naming the file.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use shipline_envfile::{read_document, set_keys, WriteOptions};

const CHILD_VAR: &str = "SHIPLINE_ENVFILE_KILL_CHILD";

/// The padding of version `n`: lengths vary so a torn or truncated write cannot match.
fn pad(n: u64) -> String {
    let c = (b'a' + (n % 26) as u8) as char;
    c.to_string().repeat(1000 + (n as usize * 7919) % 60_000)
}

/// The exact file content of version `n`.
fn version_text(n: u64) -> String {
    format!("# kill test\nIMAGE_TAG=v{n}\nPAD={}\n", pad(n))
}

/// Which version a file holds, if it is exactly one complete version.
fn version_of(text: &str) -> Option<u64> {
    let n: u64 = text
        .lines()
        .nth(1)?
        .strip_prefix("IMAGE_TAG=v")?
        .parse()
        .ok()?;
    (text == version_text(n)).then_some(n)
}

fn write_version(path: &Path, n: u64) {
    let opts = WriteOptions {
        lock_timeout: None,
        ..WriteOptions::default()
    };
    set_keys(
        path,
        &[("IMAGE_TAG", format!("v{n}")), ("PAD", pad(n))],
        &opts,
    )
    .expect("write version");
}

/// Child side (does its job only when re-run by `kill_mid_write_never_tears`); run directly,
/// it checks that a few sequential versions read back exactly.
#[test]
fn child_writer() {
    match std::env::var_os(CHILD_VAR) {
        Some(path) => {
            let path = Path::new(&path);
            let text = std::fs::read_to_string(path).expect("read");
            let mut n = version_of(&text).expect("start from a complete version");
            let mut announced = false;
            loop {
                n += 1;
                write_version(path, n);
                if !announced {
                    println!("ready");
                    announced = true;
                }
            }
        }
        None => {
            let dir = tempfile::tempdir().expect("tempdir");
            let path = dir.path().join(".env");
            std::fs::write(&path, version_text(0)).expect("write");
            for n in 1..=5 {
                write_version(&path, n);
                let text = std::fs::read_to_string(&path).expect("read");
                assert_eq!(version_of(&text), Some(n));
            }
        }
    }
}

/// A small xorshift generator; the seed is printed so a failure can be replayed.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

#[test]
fn kill_mid_write_never_tears() {
    let iterations: u32 = std::env::var("SHIPLINE_KILL_ITERATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300);
    let seed = std::env::var("SHIPLINE_KILL_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64 | 1)
        });
    eprintln!("kill test: {iterations} iterations, seed {seed}");
    let mut rng = Rng(seed);
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join(".env.local");
    std::fs::write(&path, version_text(0)).expect("write");
    let exe = std::env::current_exe().expect("test binary");
    let budget = Instant::now();
    let mut last = 0;
    let mut advanced = 0;
    let mut done: u32 = 0;
    for i in 0..iterations {
        // Keep the suite fast on a loaded machine: never spend more than ~15 s here.
        if budget.elapsed() > Duration::from_secs(15) && i >= 100 {
            break;
        }
        let mut child = Command::new(&exe)
            .args([
                "kill::child_writer",
                "--exact",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_VAR, &path)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn child");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let ready = lines.any(|l| l.is_ok_and(|l| l.trim_end().ends_with("ready")));
        assert!(ready, "child never became ready");
        // A random moment in the following writes (one write with its fsyncs takes a few to
        // a few tens of milliseconds): 0..30 ms, in microseconds.
        std::thread::sleep(Duration::from_micros(rng.next() % 30_000));
        child.kill().expect("kill");
        child.wait().expect("wait");
        let text = std::fs::read_to_string(&path).expect("read after kill");
        let Some(n) = version_of(&text) else {
            panic!(
                "iteration {i} (seed {seed}): torn file of {} bytes: {:?}...",
                text.len(),
                &text[..text.len().min(80)]
            );
        };
        assert!(n > last, "iteration {i}: version went from {last} to {n}");
        advanced += n - last;
        last = n;
        // Temp files of a killed writer are cleaned up by the next one: never more than one.
        let temps = std::fs::read_dir(dir.path())
            .expect("ls")
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().contains(".tmp-"))
            .count();
        assert!(temps <= 1, "iteration {i}: {temps} temp files left");
        done += 1;
    }
    eprintln!("kill test: {done} kills, {advanced} versions written");
    assert!(done >= 100, "only {done} kills");
    assert!(advanced >= u64::from(done), "children must have written");
    // The next writer starts from the last complete version and leaves no temp file behind.
    write_version(&path, last + 1);
    assert_eq!(
        read_document(&path).expect("read").get("IMAGE_TAG"),
        Some(format!("v{}", last + 1))
    );
    let temps = std::fs::read_dir(dir.path())
        .expect("ls")
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().contains(".tmp-"))
        .count();
    assert_eq!(temps, 0);
}
