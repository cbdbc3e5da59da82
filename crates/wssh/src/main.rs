//! `wssh`: the server binary. It parses the command line, reads the configuration, opens the
//! store, seeds the first users and sessions, starts the listeners and stops them on
//! SIGTERM/SIGINT. Everything else lives in the library crates.

mod audit_log;
mod config;
mod connect;
mod database;
mod db;
mod hardening;
mod listen;
mod serve;
mod tls;

use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// wssh: shells in the browser and in your terminal, served from this machine.
///
/// `wssh serve` runs the server (a web page, an API, and shells over WebSocket);
/// `wssh connect URL` opens one of its shells in this terminal.
#[derive(Debug, Parser)]
#[command(
    name = "wssh",
    version,
    after_help = "Start here:\n  wssh serve                                    then open http://127.0.0.1:28080/\n  \
wssh connect http://127.0.0.1:28080/bash --user admin\n\nMore: `wssh help serve`, `man wssh` (`wssh man`), README.md."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the server: the web page, the API and the shells.
    Serve(ServeArgs),
    /// Open a shell on a wssh server in this terminal (or attach to a live one).
    Connect(connect::ConnectArgs),
    /// Manage the database: `wssh db copy --from PATH_OR_URL --to URL`.
    Db(db::DbArgs),
    /// Print a completion script for your shell, e.g. `wssh completions bash > /etc/bash_completion.d/wssh`.
    Completions {
        /// The shell to complete for.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff), e.g. `wssh man > /usr/local/share/man/man1/wssh.1`.
    Man,
    /// List the live shells you may attach to: wssh shells http://HOST:PORT
    Shells(connect::ShellsArgs),
}

/// Writes `bytes` to standard output.
fn print_bytes(bytes: &[u8]) -> ExitCode {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match out.write_all(bytes).and_then(|()| out.flush()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("wssh: cannot write: {error}");
            ExitCode::FAILURE
        }
    }
}

/// `wssh completions` and `wssh man`, from the command line's own definition.
fn generated(command: &Command) -> Option<ExitCode> {
    use clap::CommandFactory;
    match command {
        Command::Completions { shell } => {
            let mut out = Vec::new();
            clap_complete::generate(*shell, &mut Cli::command(), "wssh", &mut out);
            Some(print_bytes(&out))
        }
        Command::Man => {
            let mut out = Vec::new();
            if let Err(error) = clap_mangen::Man::new(Cli::command()).render(&mut out) {
                eprintln!("wssh: cannot render the manual page: {error}");
                return Some(ExitCode::FAILURE);
            }
            Some(print_bytes(&out))
        }
        Command::Serve(_) | Command::Connect(_) | Command::Shells(_) | Command::Db(_) => None,
    }
}

/// Options of `wssh serve`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  wssh serve                          127.0.0.1:28080, a generated admin, your login shell\n  \
wssh serve -p 7681 -c me:secret bash  serve bash on 127.0.0.1:7681 to the administrator `me`\n  \
wssh serve --config server-config.json\n  wssh serve --config server-config.json --check"
)]
pub(crate) struct ServeArgs {
    /// Configuration file: go_ws_sh's server-config.json plus wssh's own keys. Every key can
    /// also be set with a WSSH_<KEY> environment variable. Without any: 127.0.0.1:28080, a
    /// generated administrator and, on the first start, a session for your login shell.
    #[arg(long, value_name = "FILE")]
    pub(crate) config: Option<PathBuf>,
    /// Where the database lives (default: $XDG_DATA_HOME/wssh or ~/.local/share/wssh).
    #[arg(long, env = "WSSH_DATA_DIR", value_name = "DIR")]
    pub(crate) data_dir: Option<PathBuf>,
    /// A PostgreSQL database shared by several wssh nodes (postgres://USER@HOST/DB), instead of
    /// the SQLite file in the data directory. Also the `database` key and WSSH_DATABASE.
    #[arg(long, value_name = "URL")]
    pub(crate) database: Option<String>,
    /// Listen on this address instead of the configured listeners: PORT (127.0.0.1), :PORT
    /// (every interface), HOST:PORT (an address or host name) or [IPV6]:PORT.
    #[arg(long, value_name = "ADDRESS")]
    pub(crate) listen: Option<String>,
    /// Listen on 127.0.0.1:PORT (the same as --listen PORT).
    #[arg(short = 'p', long, value_name = "PORT")]
    pub(crate) port: Option<u16>,
    /// An administrator, created when missing. On a shared machine prefer the WSSH_CREDENTIAL
    /// variable: other users can read command lines.
    #[arg(short = 'c', long, value_name = "USER:PASSWORD", env = "WSSH_CREDENTIAL", hide_env_values = true)]
    pub(crate) credential: Option<String>,
    /// A reverse proxy (address or CIDR range) whose Forwarded or X-Forwarded-For header is
    /// believed for the client's address and scheme; repeat or separate with commas. Adds to
    /// the configuration's `trusted_proxies`.
    #[arg(long = "trusted-proxy", value_name = "ADDRESS", value_delimiter = ',')]
    pub(crate) trusted_proxies: Vec<String>,
    /// Serve the page, the API and the shells under this path (e.g. /wssh), as a reverse proxy
    /// forwards them. Replaces the configuration's `base_path`.
    #[arg(long, value_name = "PATH")]
    pub(crate) base_path: Option<String>,
    /// Serve Prometheus metrics at GET /metrics on a listener of their own (same forms as
    /// --listen; keep it private). Replaces the configuration's `metrics_listen`.
    #[arg(long, value_name = "ADDRESS")]
    pub(crate) metrics_listen: Option<String>,
    /// Log lines as text (default) or as JSON objects, one per line.
    #[arg(long, value_enum, env = "WSSH_LOG_FORMAT", default_value_t = LogFormat::Text)]
    pub(crate) log_format: LogFormat,
    /// Check the configuration (keys, values, certificates, addresses), print what would be
    /// served, and exit without writing anything.
    #[arg(long)]
    pub(crate) check: bool,
    /// Async worker threads (default: half the cores, at least one).
    #[arg(long, env = "WSSH_WORKERS", value_name = "N")]
    pub(crate) workers: Option<NonZeroUsize>,
    /// Serve this program as a session named after it (`wssh serve htop` serves `/htop`),
    /// started in the current directory with the arguments that follow it.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, value_name = "COMMAND")]
    pub(crate) command: Vec<String>,
    /// Also write the audit log as JSON lines to this file, or to standard error with `-`.
    #[arg(long, value_name = "PATH|-")]
    pub(crate) audit_log: Option<PathBuf>,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Async worker threads unless told otherwise: half the cores, at least one. The workers move
/// bytes between sockets and terminals; the other cores are for the programs they serve, the
/// kernel's terminal work behind every read, and the password-hashing pool. On two cores one
/// worker measured as good or better in every figure compared with `cargo xtask bench
/// --compare "--workers 2"` (`docs/performance.md`): a second one mostly woke up to find
/// nothing to do.
fn default_workers() -> usize {
    std::thread::available_parallelism().map_or(1, |cores| (cores.get() / 2).max(1))
}

/// Allocations from this size up get their own memory mapping, returned to the system when
/// freed. glibc's default threshold grows with the largest block freed (up to 32 MiB), after
/// which each login's 19 MiB argon2 buffer would stay in an arena for good.
const MMAP_THRESHOLD_BYTES: libc::c_int = 1024 * 1024;

/// Free memory at the top of an arena is returned to the system only beyond this. Fixing the
/// mmap threshold also fixes this one at glibc's 128 KiB, which a shell's output frames (up to
/// 64 KiB) and go_ws_sh's per-frame deflate state (about 300 KiB) cross on every frame: each
/// frame then paid for a trim and for faulting the same pages back in. Two blocks of the
/// largest size an arena serves is enough to stop that.
const TRIM_THRESHOLD_BYTES: libc::c_int = 2 * MMAP_THRESHOLD_BYTES;

fn main() -> ExitCode {
    // SAFETY: called first, before any other thread exists; mallopt only sets tunables.
    #[cfg(target_env = "gnu")]
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES);
        libc::mallopt(libc::M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES);
    }
    let cli = Cli::parse();
    if let Some(code) = generated(&cli.command) {
        return code;
    }
    let filter = || {
        tracing_subscriber::EnvFilter::try_from_default_env()
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"))
    };
    let json = matches!(&cli.command, Command::Serve(args) if args.log_format == LogFormat::Json);
    if json {
        tracing_subscriber::fmt().json().with_writer(std::io::stderr).with_env_filter(filter()).init();
    } else {
        tracing_subscriber::fmt()
            .with_writer(std::io::stderr)
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .with_env_filter(filter())
            .init();
    }
    let workers = match &cli.command {
        Command::Serve(args) => args.workers.map(NonZeroUsize::get),
        // The copy runs on this thread, outside any runtime (the PostgreSQL client is blocking).
        Command::Db(args) => return db::run(args),
        Command::Connect(_) | Command::Shells(_) | Command::Completions { .. } | Command::Man => None,
    }
    .unwrap_or_else(default_workers);
    let runtime = match tokio::runtime::Builder::new_multi_thread().worker_threads(workers).enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("wssh: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let result = match cli.command {
        Command::Serve(args) => runtime.block_on(serve::run(args)),
        Command::Connect(args) => return runtime.block_on(connect::run(args)),
        // `db` returned before the runtime started.
        Command::Completions { .. } | Command::Man | Command::Db(_) => return ExitCode::SUCCESS,
        Command::Shells(args) => return runtime.block_on(connect::list_shells(args)),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("wssh: {error}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::{Cli, Command};

    #[test]
    fn a_shell_id_that_begins_with_a_dash_is_taken_as_the_attach_value() {
        let cli = Cli::try_parse_from(["wssh", "connect", "http://127.0.0.1:1/bash", "--attach", "-rTb7", "--observe"])
            .expect("parsed");
        let Command::Connect(args) = cli.command else { panic!("not connect") };
        assert_eq!(args.attach.as_deref(), Some("-rTb7"));
        assert!(args.observe);
    }
}
