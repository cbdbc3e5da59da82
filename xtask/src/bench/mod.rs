//! `cargo xtask bench [--quick]`: wssh measured side by side with the web terminals people
//! use (ttyd, terminado, wetty) and with the raw-PTY ceiling, on this machine.
//!
//! Builds the release server, installs the peers into a cache folder when missing
//! ([`install`]; a peer that cannot be had is skipped with the reason) and measures eleven
//! figures. Every figure starts its own instance of each target (for wssh, a new server on a
//! loopback port with a fresh configuration and data directory), so that no figure inherits
//! another's state, and the targets take turns (A B A B …) so that drift in the machine's
//! state spreads evenly:
//!
//! 1. output throughput ([`throughput`]): MB/s, server CPU seconds per GB, frames per MB,
//!    wire bytes per payload byte;
//! 2. keystroke echo round trip ([`echo`]): p50 and p99;
//! 3. server memory per idle shell ([`memory`]);
//! 4. 1,000 concurrent shells typing once a second ([`shells`]): errors, echo p99;
//! 5. the token-authenticated API ([`api`]): requests per second and p99 (wssh only);
//! 6. a login storm ([`storm`]): the shells' echo p99 with and without 20 password logins a
//!    second (wssh only);
//! 7. connect time to the first output byte ([`connect`]): p50 and p99;
//! 8. reattaching to a live shell ([`reattach`]): time to the first resumed byte, idle and busy;
//! 9. one controller and 20 observers on a shell ([`observers`]): every byte to every
//!    observer, the controller's echo;
//! 10. server memory per idle detached shell ([`detached`]);
//! 11. recording's cost ([`recording`]): throughput and echo with and without, and the server's
//!     memory during a 1 GB `cat` into a recorded shell.
//! 12. revocation propagation across two nodes on one PostgreSQL ([`propagation`]): p50, p99
//!     (figures 5 and 6 also run wssh on PostgreSQL, [`postgres`]);
//! 13. `/healthz` and a real user while one address holds 10,000 idle connections ([`idle`]);
//! 14. a real user's password login during a flood of wrong passwords ([`flood`]);
//! 15. teardown of 500 shells dropped at once, and `/healthz` meanwhile ([`teardown`]).
//!
//! Prints the results as tables, writes `target/bench/report.json` ([`report`]) and one SVG
//! chart per figure ([`chart`]). `docs/performance.md` explains the numbers. A target is
//! anything implementing [`target::Target`]: wssh in each framing ([`wssh`]), the raw PTY
//! ([`raw_pty`]), [`ttyd`], [`terminado`] and [`wetty`].

mod api;
mod chart;
mod connect;
mod detached;
mod echo;
mod flood;
mod framing;
mod http;
mod idle;
mod install;
mod live;
mod live_report;
mod loopback;
mod memory;
mod observers;
mod postgres;
mod process;
mod propagation;
mod raw_pty;
mod reattach;
mod recording;
mod report;
mod shells;
mod stats;
mod storm;
mod system;
mod target;
mod teardown;
mod terminado;
mod throughput;
mod ttyd;
mod wetty;
mod ws;
mod wssh;

use std::path::PathBuf;
use std::process::{Command, ExitCode};
use std::sync::Arc;

use self::framing::Framing;
use self::raw_pty::RawPty;
use self::report::{Parameters, Report};
use self::system::Machine;
use self::target::{Programs, Result, Target};
use self::wssh::{Auth, Launch, WsshTarget};

/// Connections of the API figure.
const API_CONNECTIONS: usize = 64;

/// Every figure's number.
const FIGURES: [u8; 15] = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15];

/// A figure number of `--figures`.
fn figure_number(text: &str) -> std::result::Result<u8, String> {
    let number: u8 = text.trim().parse().map_err(|_| format!("{text:?} is not a figure number"))?;
    if FIGURES.contains(&number) { Ok(number) } else { Err(format!("no figure {number} (figures: {FIGURES:?})")) }
}

/// `cargo xtask bench`'s options.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Smaller sizes, 3 runs of the light figures and 1 of the heavy ones (memory, many shells,
    /// API, login storm) instead of 5: a smoke run of every figure.
    #[arg(long)]
    quick: bool,
    /// Runs per figure, instead of 5 (with --quick: 3, and 1 for the heavy figures).
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..=100))]
    runs: Option<u16>,
    /// Measure wssh and the raw PTY only: no ttyd, terminado or wetty.
    #[arg(long)]
    no_peers: bool,
    /// Concurrent shells of figure 4, instead of 1,000 (100 with --quick).
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..=10_000))]
    shells: Option<u16>,
    /// Run only these figures, e.g. `--figures 3,5` (default: all; 1 to 15).
    #[arg(long, value_delimiter = ',', value_parser = figure_number)]
    figures: Vec<u8>,
    /// Also measure wssh started with these extra `serve` arguments, as targets of their own
    /// in every figure, taking turns with the others: an A/B of a setting in one run, e.g.
    /// `--compare "--workers 2"`.
    #[arg(long, allow_hyphen_values = true)]
    compare: Option<String>,
    /// Also measure this other wssh binary (an older build, say) as targets of their own in
    /// every figure, with `--compare`'s arguments if given: an A/B of two builds in one run.
    #[arg(long)]
    compare_binary: Option<std::path::PathBuf>,
}

impl Args {
    /// The sizes of a run.
    fn parameters(&self) -> Parameters {
        let mut parameters = self.default_parameters();
        if let Some(runs) = self.runs {
            parameters.runs = usize::from(runs);
            parameters.heavy_runs = usize::from(runs);
        }
        if let Some(shells) = self.shells {
            parameters.many_shells = usize::from(shells);
        }
        parameters.figures = if self.figures.is_empty() { FIGURES.to_vec() } else { self.figures.clone() };
        parameters.figures.sort_unstable();
        parameters.figures.dedup();
        parameters
    }

    /// The sizes of a run, before `--runs`.
    fn default_parameters(&self) -> Parameters {
        if self.quick {
            Parameters {
                quick: true,
                runs: 3,
                heavy_runs: 1,
                file_bytes: 8 << 20,
                echo_samples: 600,
                idle_shells: 30,
                connects: 20,
                many_shells: 100,
                many_seconds: 3,
                api_seconds: 1.0,
                storm_seconds: 2,
                propagation_samples: 20,
                idle_connections: 10_000,
                idle_seconds: 2,
                flood_seconds: 3,
                teardown_shells: 500,
                reattaches: 30,
                observer_samples: 300,
                big_cat_bytes: 64 << 20,
                figures: Vec::new(),
            }
        } else {
            Parameters {
                quick: false,
                runs: 5,
                heavy_runs: 5,
                file_bytes: 256 << 20,
                echo_samples: 10_000,
                idle_shells: 200,
                connects: 50,
                many_shells: 1_000,
                many_seconds: 30,
                api_seconds: 10.0,
                storm_seconds: 10,
                propagation_samples: 200,
                idle_connections: 10_000,
                idle_seconds: 5,
                flood_seconds: 10,
                teardown_shells: 500,
                reattaches: 200,
                observer_samples: 2_000,
                big_cat_bytes: 1_000_000_000,
                figures: Vec::new(),
            }
        }
    }
}

/// Runs the benchmark; reports failure on standard error.
///
/// `cargo xtask` builds this tool unoptimised, and an unoptimised client (gzip, WebSocket
/// framing) would be the bottleneck of what it measures: a debug build only builds the release
/// server and the release xtask and runs `target/release/xtask bench` in its place.
pub(crate) fn run(args: &Args) -> ExitCode {
    if cfg!(debug_assertions) {
        return run_release(args);
    }
    match bench(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: bench: {error}");
            ExitCode::FAILURE
        }
    }
}

/// Builds the release server and xtask, and runs the release xtask's `bench`.
fn run_release(args: &Args) -> ExitCode {
    let root = crate::project_root();
    eprintln!("bench: building the release server and bench client");
    if let Err(error) = wssh::build(&root) {
        eprintln!("error: bench: {error}");
        return ExitCode::FAILURE;
    }
    let mut release = Command::new(root.join("target/release/xtask"));
    release.arg("bench").current_dir(&root);
    if args.quick {
        release.arg("--quick");
    }
    if let Some(runs) = args.runs {
        release.arg("--runs").arg(runs.to_string());
    }
    if args.no_peers {
        release.arg("--no-peers");
    }
    if let Some(shells) = args.shells {
        release.arg("--shells").arg(shells.to_string());
    }
    if !args.figures.is_empty() {
        let figures: Vec<String> = args.figures.iter().map(u8::to_string).collect();
        release.arg("--figures").arg(figures.join(","));
    }
    if let Some(compare) = &args.compare {
        release.arg("--compare").arg(compare);
    }
    if let Some(binary) = &args.compare_binary {
        release.arg("--compare-binary").arg(binary);
    }
    match release.status() {
        Ok(status) if status.success() => ExitCode::SUCCESS,
        Ok(status) => status.code().and_then(|code| u8::try_from(code).ok()).map_or(ExitCode::FAILURE, ExitCode::from),
        Err(error) => {
            eprintln!("error: bench: cannot run target/release/xtask: {error}");
            ExitCode::FAILURE
        }
    }
}

/// A scratch folder under the system's temporary folder, removed when dropped.
struct WorkDir(PathBuf);

impl WorkDir {
    /// Creates `wssh-bench-PID` in the temporary folder.
    fn create() -> Result<WorkDir> {
        let path = std::env::temp_dir().join(format!("wssh-bench-{}", std::process::id()));
        std::fs::create_dir_all(&path)?;
        Ok(WorkDir(path))
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The whole run: build, prepare, measure, report.
fn bench(args: &Args) -> Result<()> {
    let mut parameters = args.parameters();
    let root = crate::project_root();
    eprintln!("bench: building the release server (if it changed)");
    let binary = wssh::build(&root)?;
    let work = WorkDir::create()?;
    let file = work.0.join("lines.txt");
    eprintln!("bench: writing {} MiB of lines to {}", parameters.file_bytes >> 20, file.display());
    parameters.file_bytes = throughput::generate_file(&file, parameters.file_bytes)?;
    let programs = Arc::new(Programs { file });
    match shells::raise_open_files() {
        Ok(limit) => eprintln!("bench: open-files limit {limit} (servers inherit it)"),
        Err(error) => eprintln!("bench: cannot raise the open-files limit: {error}"),
    }
    let machine = Machine::describe();
    let date = time::OffsetDateTime::now_utc().format(&time::format_description::well_known::Rfc3339)?;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let peers = if args.no_peers { Peers::default() } else { Peers::install(&work.0, &programs) };
    let compare: Vec<String> =
        args.compare.iter().flat_map(|compare| compare.split_whitespace()).map(str::to_owned).collect();
    let launch = Launch::new(binary, work.0.clone(), programs, Vec::new());
    // PostgreSQL, for the figures that have a PostgreSQL target (5, 6) or need one (10).
    let mut skipped_postgres = None;
    let mut postgres = None;
    if [5, 6, 10].iter().any(|figure| parameters.figures.contains(figure)) {
        match postgres::Postgres::provide(&work.0) {
            Ok(server) => {
                eprintln!("bench: PostgreSQL: {}", server.describe());
                postgres = Some(Arc::new(server));
            }
            Err(error) => {
                eprintln!("bench: skipping the PostgreSQL targets and figure 10: {error}");
                skipped_postgres =
                    Some(report::Skipped { target: "wssh on PostgreSQL".to_owned(), reason: error.to_string() });
            }
        }
    }
    let mut peers = peers;
    peers.skipped.extend(skipped_postgres);
    let on_postgres = postgres.map(|postgres| launch.on_postgres(postgres));
    // Another build (named by its path), or this one with other arguments.
    let compared_binary = args.compare_binary.as_deref().map(std::path::absolute).transpose()?;
    let compared = (compared_binary.is_some() || !compare.is_empty()).then(|| {
        let binary = compared_binary.clone().unwrap_or_else(|| launch.binary.clone());
        let label = compared_binary.as_ref().map_or_else(String::new, |binary| format!(" [{}]", binary.display()));
        Launch::new(binary, work.0.clone(), launch.programs.clone(), compare).labelled(&label)
    });
    let report = runtime.block_on(measure(launch, compared, on_postgres, peers, parameters, machine, date))?;
    // The throwaway PostgreSQL cluster (if any) is stopped when the last launch goes.
    println!("{}", report.table());
    let folder = root.join("target/bench");
    let path = folder.join("report.json");
    report.write(&path)?;
    eprintln!("bench: wrote {}", path.display());
    for chart in report.charts() {
        let path = folder.join(&chart.file);
        std::fs::write(&path, chart.svg)?;
        eprintln!("bench: wrote {}", path.display());
    }
    Ok(())
}

/// The peers that could be installed, and why the others are missing.
#[derive(Default)]
struct Peers {
    /// ttyd, terminado and wetty, those that are there.
    targets: Vec<Arc<dyn Target>>,
    /// Peers skipped, with the reason.
    skipped: Vec<report::Skipped>,
    /// terminado, when it is there: its named terminals reattach (figure 8).
    terminado: Option<Arc<terminado::Terminado>>,
}

impl Peers {
    /// Installs (or finds in the cache) each peer; a peer that cannot be had is skipped with
    /// its reason printed.
    fn install(work: &std::path::Path, programs: &Arc<Programs>) -> Peers {
        let mut peers = Peers::default();
        let mut add = |name: &str, target: Result<Arc<dyn Target>>| match target {
            Ok(target) => peers.targets.push(target),
            Err(error) => {
                eprintln!("bench: skipping {name}: {error}");
                peers.skipped.push(report::Skipped { target: name.to_owned(), reason: error.to_string() });
            }
        };
        let work = work.to_owned();
        add(
            "ttyd",
            install::ttyd()
                .map(|binary| -> Arc<dyn Target> { Arc::new(ttyd::Ttyd::new(binary, work.clone(), programs.clone())) }),
        );
        let terminado = install::terminado()
            .map(|python| Arc::new(terminado::Terminado::new(python, work.clone(), programs.clone())));
        let named_terminals = terminado.as_ref().ok().cloned();
        add("terminado", terminado.map(|terminado| -> Arc<dyn Target> { terminado }));
        add(
            "wetty",
            install::wetty()
                .map(|main| -> Arc<dyn Target> { Arc::new(wetty::Wetty::new(main, work.clone(), programs.clone())) }),
        );
        peers.terminado = named_terminals;
        peers
    }

    /// Starts each peer once and opens a terminal on it; a peer that fails (for example wetty
    /// when not run as root, or a missing `node`) is skipped with the reason printed.
    async fn probe(&mut self) {
        let mut kept = Vec::with_capacity(self.targets.len());
        for target in self.targets.drain(..) {
            let check = async {
                let instance = target.start().await?;
                let mut terminal = instance.open(target::Program::Ready).await?;
                terminal.recv_until(Programs::READY, PROBE_LIMIT).await?;
                terminal.close().await;
                Ok::<(), target::Error>(())
            };
            let outcome = tokio::time::timeout(PROBE_LIMIT * 2, check)
                .await
                .unwrap_or_else(|_| Err(format!("no `ready` within {:?}", PROBE_LIMIT * 2).into()));
            match outcome {
                Ok(()) => kept.push(target),
                Err(error) => {
                    if target.name() == "terminado" {
                        self.terminado = None;
                    }
                    eprintln!("bench: skipping {}: {error}", target.name());
                    self.skipped.push(report::Skipped { target: target.name().to_owned(), reason: error.to_string() });
                }
            }
        }
        self.targets = kept;
    }
}

/// How long a peer may take to start and print `ready` when probed.
const PROBE_LIMIT: std::time::Duration = std::time::Duration::from_secs(60);

/// Measures every figure. The client runs on one thread.
async fn measure(
    launch: Arc<Launch>,
    compared: Option<Arc<Launch>>,
    on_postgres: Option<Arc<Launch>>,
    mut peers: Peers,
    parameters: Parameters,
    machine: Machine,
    date: String,
) -> Result<Report> {
    let raw: Arc<dyn Target> = Arc::new(RawPty::new(launch.programs.clone()));
    let wssh = |framing, auth| -> Arc<dyn Target> { Arc::new(WsshTarget::new(launch.clone(), framing, auth)) };
    let native = wssh(Framing::Native, Auth::Basic);
    let go_ws_sh = wssh(Framing::GoWsSh, Auth::Basic);
    let native_token = wssh(Framing::Native, Auth::Token);
    let go_ws_sh_token = wssh(Framing::GoWsSh, Auth::Token);
    let ticks = system::clock_ticks();
    let runs = parameters.runs;
    let clock = std::time::Instant::now();
    // The commit measured is the one built at the start, whatever changes during the run.
    let measured_commit = commit();
    peers.probe().await;

    let wanted = |figure: u8| parameters.figures.contains(&figure);
    // A figure's targets: `own`, then those of them `--compare` starts again with other
    // arguments (`compared`), then the peers.
    let line_up = |own: &[&Arc<dyn Target>], compared_as: &[(Framing, Auth)]| -> Vec<Arc<dyn Target>> {
        let again = compared.iter().flat_map(|compared| {
            compared_as.iter().map(|&(framing, auth)| -> Arc<dyn Target> {
                Arc::new(WsshTarget::new(compared.clone(), framing, auth))
            })
        });
        own.iter().map(|&target| target.clone()).chain(again).chain(peers.targets.iter().cloned()).collect()
    };
    let streams =
        line_up(&[&raw, &native, &go_ws_sh], &[(Framing::Native, Auth::Basic), (Framing::GoWsSh, Auth::Basic)]);
    let heavy = parameters.heavy_runs;
    let mut throughput = Vec::new();
    if wanted(1) {
        eprintln!("bench: [{:>5.1} s] output throughput", clock.elapsed().as_secs_f64());
        throughput = throughput::measure(&streams, runs, parameters.file_bytes, ticks).await?;
    }
    let mut echo = Vec::new();
    if wanted(2) {
        eprintln!("bench: [{:>5.1} s] keystroke echo", clock.elapsed().as_secs_f64());
        echo = echo::measure(&streams, runs, parameters.echo_samples).await?;
    }
    let mut memory = Vec::new();
    if wanted(3) {
        eprintln!("bench: [{:>5.1} s] memory per idle shell", clock.elapsed().as_secs_f64());
        let shells = line_up(&[&native_token, &go_ws_sh_token, &native], &[(Framing::Native, Auth::Token)]);
        memory = memory::measure(&shells, heavy, parameters.idle_shells).await?;
    }
    let mut connect = Vec::new();
    if wanted(7) {
        eprintln!("bench: [{:>5.1} s] connect time", clock.elapsed().as_secs_f64());
        let connects = line_up(
            &[&raw, &native, &go_ws_sh, &native_token, &go_ws_sh_token],
            &[(Framing::Native, Auth::Basic), (Framing::Native, Auth::Token)],
        );
        connect = connect::measure(&connects, runs, parameters.connects).await?;
    }
    let mut shells = Vec::new();
    if wanted(4) {
        eprintln!("bench: [{:>5.1} s] {} concurrent shells", clock.elapsed().as_secs_f64(), parameters.many_shells);
        let many = line_up(&[&native_token, &go_ws_sh_token], &[(Framing::Native, Auth::Token)]);
        shells = shells::measure(&many, heavy, parameters.many_shells, parameters.many_seconds).await?;
    }
    let api_targets: Vec<WsshTarget> = std::iter::once(&launch)
        .chain(&compared)
        .chain(&on_postgres)
        .map(|launch| WsshTarget::new(launch.clone(), Framing::Native, Auth::Token))
        .collect();
    let api_targets: Vec<&WsshTarget> = api_targets.iter().collect();
    let mut api = Vec::new();
    if wanted(5) {
        eprintln!("bench: [{:>5.1} s] token-authenticated API", clock.elapsed().as_secs_f64());
        api = api::measure(&api_targets, heavy, API_CONNECTIONS, parameters.api_seconds, ticks).await?;
    }
    let mut storm = Vec::new();
    if wanted(6) {
        eprintln!("bench: [{:>5.1} s] login storm", clock.elapsed().as_secs_f64());
        storm = storm::measure(&api_targets, heavy, parameters.storm_seconds).await?;
    }
    // The live-shell figures: servers with the default detach timeout (300 s), and the busy
    // program of figure 8.
    let live_targets: Vec<WsshTarget> = std::iter::once(&launch)
        .chain(&compared)
        .map(|launch| {
            let live = launch.variant(
                "",
                serde_json::json!({ "shell_detach_timeout_seconds": null }),
                vec![reattach::busy_session()],
            );
            WsshTarget::new(live, Framing::Native, Auth::Token)
        })
        .collect();
    let live_targets: Vec<&WsshTarget> = live_targets.iter().collect();
    let mut reattach = Vec::new();
    if wanted(8) {
        eprintln!("bench: [{:>5.1} s] reattach", clock.elapsed().as_secs_f64());
        reattach = reattach::measure(&live_targets, peers.terminado.as_deref(), runs, parameters.reattaches).await?;
    }
    let mut observers = Vec::new();
    if wanted(9) {
        eprintln!("bench: [{:>5.1} s] controller and observers", clock.elapsed().as_secs_f64());
        observers = observers::measure(&live_targets, runs, parameters.observer_samples).await?;
    }
    let mut detached = Vec::new();
    if wanted(10) {
        eprintln!("bench: [{:>5.1} s] memory per detached shell", clock.elapsed().as_secs_f64());
        detached = detached::measure(&live_targets, heavy, parameters.idle_shells).await?;
    }
    let mut recording = None;
    if wanted(11) {
        eprintln!("bench: [{:>5.1} s] recording", clock.elapsed().as_secs_f64());
        let plain = WsshTarget::new(launch.clone(), Framing::Native, Auth::Basic);
        let times = recording::times(parameters.big_cat_bytes, parameters.file_bytes);
        let recorded = launch.variant(
            ", recorded",
            serde_json::json!({ "record_all_shells": true }),
            vec![recording::big_cat_session(&launch.programs.file, times)],
        );
        let recorded = WsshTarget::new(recorded, Framing::Native, Auth::Basic);
        let sizes = recording::Sizes {
            runs,
            heavy_runs: heavy,
            file_bytes: parameters.file_bytes,
            echo_samples: parameters.echo_samples,
            ticks,
        };
        recording = Some(recording::measure(&plain, &recorded, sizes).await?);
    }
    let mut propagation = None;
    if wanted(12)
        && let Some(on_postgres) = &on_postgres
    {
        eprintln!("bench: [{:>5.1} s] revocation propagation across nodes", clock.elapsed().as_secs_f64());
        propagation = Some(propagation::measure(on_postgres, heavy, parameters.propagation_samples).await?);
    }
    // The hardening figures (issue 18), on wssh as deployed.
    let hardened = WsshTarget::new(launch.clone(), Framing::Native, Auth::Token);
    let mut idle = None;
    if wanted(13) {
        eprintln!(
            "bench: [{:>5.1} s] {} idle connections from one address",
            clock.elapsed().as_secs_f64(),
            parameters.idle_connections
        );
        let hold = std::time::Duration::from_secs(parameters.idle_seconds);
        idle = Some(idle::measure(&hardened, heavy, parameters.idle_connections, hold).await?);
    }
    let mut flood = None;
    if wanted(14) {
        eprintln!("bench: [{:>5.1} s] password flood", clock.elapsed().as_secs_f64());
        flood = Some(flood::measure(&hardened, heavy, parameters.flood_seconds).await?);
    }
    let mut teardown = None;
    if wanted(15) {
        eprintln!(
            "bench: [{:>5.1} s] teardown of {} shells",
            clock.elapsed().as_secs_f64(),
            parameters.teardown_shells
        );
        // A shell ends with its last connection (no detach timeout), as issue 18 measured it.
        let ending = launch.variant("", serde_json::json!({ "shell_detach_timeout_seconds": 0 }), Vec::new());
        let ending = WsshTarget::new(ending, Framing::Native, Auth::Token);
        teardown = Some(teardown::measure(&ending, heavy, parameters.teardown_shells).await?);
    }
    eprintln!("bench: [{:>5.1} s] done", clock.elapsed().as_secs_f64());

    Ok(Report {
        machine,
        date,
        commit: measured_commit,
        parameters,
        skipped: peers.skipped,
        throughput,
        echo,
        memory,
        connect,
        shells,
        api,
        storm,
        reattach,
        observers,
        detached,
        recording,
        propagation,
        idle,
        flood,
        teardown,
    })
}

/// `git describe --always --dirty` of the project, when git is there.
fn commit() -> Option<String> {
    let output = Command::new("git")
        .args(["describe", "--always", "--dirty"])
        .current_dir(crate::project_root())
        .output()
        .ok()?;
    output.status.success().then(|| String::from_utf8_lossy(&output.stdout).trim().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figure_numbers_are_the_figures_that_exist() {
        assert_eq!(figure_number("10"), Ok(10));
        assert_eq!(figure_number(" 15"), Ok(15));
        assert!(figure_number("16").is_err());
        assert!(figure_number("0").is_err());
        assert!(figure_number("x").is_err());
    }
}
