//! The run diagram in a real browser: headless Chromium loads the page,
//! runs its check script, and takes a screenshot. The page must render the
//! lanes and arrows `paxos-sim draw` says it drew, with a real size.
//!
//! Without Chromium the test says why and passes locally; in CI (CI=true)
//! Chromium is required (`.ci/run` installs it), so it never skips there.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn browser() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    for name in [
        "chromium",
        "chromium-browser",
        "google-chrome",
        "google-chrome-stable",
        "chromium-headless-shell",
    ] {
        for dir in std::env::split_paths(&path) {
            let candidate = dir.join(name);
            if candidate.is_file() {
                return Some(candidate);
            }
        }
    }
    None
}

/// Runs the browser headless on `page` with `args`, bounded in time.
fn headless(browser: &Path, page: &Path, args: &[&str]) -> String {
    let mut child = Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--hide-scrollbars",
        ])
        .args(args)
        .arg(format!("file://{}", page.display()))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the browser");
    let mut out = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut out, &mut s);
        s
    });
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the browser did not finish within 120 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    reader.join().unwrap()
}

fn number_after(text: &str, key: &str) -> u64 {
    text.split(key)
        .nth(1)
        .and_then(|r| {
            r.trim_start()
                .split(|c: char| !c.is_ascii_digit())
                .next()
                .and_then(|n| n.parse().ok())
        })
        .unwrap_or_else(|| panic!("no {key} in {text}"))
}

#[test]
fn the_diagram_renders_in_headless_chromium() {
    let Some(browser) = browser() else {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI must run the browser check, but no chromium is installed (.ci/run installs it)"
        );
        eprintln!(
            "SKIPPED the_diagram_renders_in_headless_chromium: no chromium, chromium-browser or \
             google-chrome on PATH (apt-get install chromium); CI installs it and runs this"
        );
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("run.html");
    let out = Command::new(env!("CARGO_BIN_EXE_paxos-sim"))
        .args(["draw", "--seed", "3", "--nodes", "3", "--clients", "2"])
        .args(["--faults", "drop", "--heal-tick", "30", "--defaults", "-o"])
        .arg(&page)
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{said}");
    let lanes = number_after(&said, "events (");
    let arrows = number_after(&said, "lanes,");
    assert_eq!(lanes, 4, "three nodes and the clients: {said}");
    assert!(arrows > 0, "{said}");

    // The DOM after the page's script ran: what the browser laid out.
    let dom = headless(
        &browser,
        &page,
        &["--dump-dom", "--virtual-time-budget=5000"],
    );
    let rendered = dom
        .split("id=\"rendered\">")
        .nth(1)
        .and_then(|r| r.split('<').next())
        .unwrap_or_else(|| panic!("no #rendered in the DOM: {}", &dom[..dom.len().min(500)]));
    assert_eq!(number_after(rendered, "lanes="), lanes, "{rendered}");
    assert_eq!(number_after(rendered, "arrows="), arrows, "{rendered}");
    assert!(number_after(rendered, "width=") > 300, "{rendered}");
    assert!(number_after(rendered, "height=") > 300, "{rendered}");

    let shot = dir.path().join("run.png");
    headless(
        &browser,
        &page,
        &[
            &format!("--screenshot={}", shot.display()),
            "--window-size=1400,1000",
        ],
    );
    let png = std::fs::read(&shot).expect("a screenshot");
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG");
    // A blank 1400x1000 page compresses to a few KB; a drawn one does not.
    assert!(
        png.len() > 20_000,
        "the screenshot is nearly empty ({} bytes)",
        png.len()
    );
    if let Ok(keep) = std::env::var("PAXOS_SIM_SCREENSHOT") {
        std::fs::copy(&shot, keep).unwrap();
    }
}
