//! Builds the dashboard (web/) into web/dist when its sources are newer than
//! the bundle, so that the assets `include_bytes!` embeds are always current.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

fn newest(dir: &Path) -> SystemTime {
    let mut latest = SystemTime::UNIX_EPOCH;
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            let path = entry.path();
            let time = if path.is_dir() { newest(&path) } else { entry.metadata().and_then(|m| m.modified()).unwrap_or(SystemTime::UNIX_EPOCH) };
            latest = latest.max(time);
        }
    }
    latest
}

fn main() {
    let web: PathBuf = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../web");
    for input in ["src", "build.mjs", "package-lock.json"] {
        println!("cargo:rerun-if-changed={}", web.join(input).display());
    }
    println!("cargo:rerun-if-changed={}", web.join("dist").display());
    let bundle = web.join("dist/app.js");
    let built = std::fs::metadata(&bundle).and_then(|m| m.modified()).ok();
    let sources = newest(&web.join("src")).max(std::fs::metadata(web.join("build.mjs")).and_then(|m| m.modified()).unwrap_or(SystemTime::UNIX_EPOCH));
    if built.is_some_and(|built| built >= sources) {
        return;
    }
    let script = web.join("../scripts/build-web.sh");
    let status = std::process::Command::new("bash").arg(&script).status();
    match status {
        Ok(status) if status.success() => {}
        Ok(status) => panic!("building the dashboard failed ({status}): run scripts/build-web.sh to see why (it needs Node and npm)"),
        Err(error) => panic!("could not run scripts/build-web.sh to build the dashboard: {error}"),
    }
}
