//! The PostgreSQL server of the bench's PostgreSQL figures (issue 16): the one named by
//! `$WSSH_BENCH_DATABASE_URL` when set, else a throwaway cluster the bench starts itself
//! (`initdb` and `pg_ctl` from `/usr/lib/postgresql/*/bin`, a temporary folder, a free
//! loopback port, run as the `postgres` user when the bench is root, as `.ci/run` does),
//! stopped and removed at the end. Every server gets a fresh database on it
//! ([`Postgres::database`]), dropped after the server stopped.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use wssh_store_postgres::scratch::ScratchDatabase;

use super::target::Result;

/// The variable naming a PostgreSQL server the bench may create databases on.
pub(crate) const DATABASE_URL: &str = "WSSH_BENCH_DATABASE_URL";

/// A PostgreSQL server the bench may create databases on.
pub(crate) struct Postgres {
    /// A URL of the server (its database is only used to create others).
    admin_url: String,
    /// The throwaway cluster, when the bench started one; stopped on drop.
    cluster: Option<Cluster>,
}

impl std::fmt::Debug for Postgres {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.debug_struct("Postgres").field("throwaway", &self.cluster.is_some()).finish_non_exhaustive()
    }
}

impl Postgres {
    /// The server of `$WSSH_BENCH_DATABASE_URL`, else a throwaway cluster in a folder under
    /// `work`; an error says why neither is possible.
    pub(crate) fn provide(work: &Path) -> Result<Postgres> {
        if let Some(url) = std::env::var(DATABASE_URL).ok().filter(|url| !url.is_empty()) {
            let postgres = Postgres { admin_url: url, cluster: None };
            // Fails early (and the figures are skipped) when the server cannot be used.
            drop(postgres.database("wssh_bench_probe")?);
            return Ok(postgres);
        }
        let cluster = Cluster::start(work)?;
        let admin_url = format!("postgres://wssh@127.0.0.1:{}/postgres", cluster.port);
        let postgres = Postgres { admin_url, cluster: Some(cluster) };
        drop(postgres.database("wssh_bench_probe")?);
        Ok(postgres)
    }

    /// Where the databases are, for messages: the URL, or "a throwaway cluster".
    pub(crate) fn describe(&self) -> String {
        match &self.cluster {
            Some(cluster) => format!("a throwaway cluster on 127.0.0.1:{} ({})", cluster.port, cluster.version),
            None => format!("${DATABASE_URL}"),
        }
    }

    /// A fresh database, dropped when the value is.
    pub(crate) fn database(&self, prefix: &str) -> Result<ScratchDatabase> {
        ScratchDatabase::create(&self.admin_url, prefix)
            .map_err(|error| format!("cannot create a database on {}: {error}", self.describe()).into())
    }
}

/// A PostgreSQL cluster in a temporary folder, stopped (`pg_ctl -m immediate stop`) and
/// removed when dropped.
struct Cluster {
    /// `/usr/lib/postgresql/N/bin`.
    bin: PathBuf,
    /// The folder: `data/`, `log`, the socket.
    dir: PathBuf,
    /// The loopback port.
    port: u16,
    /// `N` of the binaries' folder.
    version: String,
    /// Whether the commands run as the `postgres` user (the bench is root).
    as_postgres: bool,
}

impl Cluster {
    /// `initdb` (user `wssh`, trust on loopback) and `pg_ctl start` on a free loopback port.
    fn start(work: &Path) -> Result<Cluster> {
        let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
            .map_err(|_| "no PostgreSQL installed (/usr/lib/postgresql) and $WSSH_BENCH_DATABASE_URL not set")?
            .filter_map(std::result::Result::ok)
            .map(|entry| entry.path().join("bin"))
            .filter(|bin| bin.join("pg_ctl").exists() && bin.join("initdb").exists())
            .collect();
        versions.sort_by_key(|bin| {
            bin.parent().and_then(|dir| dir.file_name()?.to_str()?.parse::<u32>().ok()).unwrap_or(0)
        });
        let bin = versions.pop().ok_or("no initdb/pg_ctl under /usr/lib/postgresql/*/bin")?;
        let version = bin
            .parent()
            .and_then(|dir| dir.file_name())
            .map_or_else(String::new, |name| format!("PostgreSQL {}", name.to_string_lossy()));
        // /proc/self belongs to the process's effective user.
        let as_postgres = std::os::unix::fs::MetadataExt::uid(&std::fs::metadata("/proc/self")?) == 0;
        let dir = work.join("postgres");
        std::fs::create_dir_all(&dir)?;
        if as_postgres {
            // The work folder is the bench's; the cluster's folder must be the postgres user's,
            // and it must be able to reach it.
            use std::os::unix::fs::PermissionsExt as _;
            std::fs::set_permissions(work, std::fs::Permissions::from_mode(0o755))?;
            run(Command::new("chown").arg("postgres:").arg(&dir), "chown postgres:")?;
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let cluster = Cluster { bin, dir, port, version, as_postgres };
        let data = cluster.dir.join("data");
        let mut initdb = cluster.command("initdb");
        initdb.arg("-D").arg(&data).args(["-U", "wssh", "--auth=trust", "-E", "UTF8"]);
        run(&mut initdb, "initdb")?;
        let options = format!(
            "-c listen_addresses=127.0.0.1 -c port={port} -k {} -c max_connections=300 -c fsync=off",
            cluster.dir.display()
        );
        let mut start = cluster.command("pg_ctl");
        start.arg("-D").arg(&data).arg("-l").arg(cluster.dir.join("log")).args(["-w", "-o", &options, "start"]);
        if let Err(error) = run(&mut start, "pg_ctl start") {
            let log = std::fs::read_to_string(cluster.dir.join("log")).unwrap_or_default();
            return Err(format!("{error}; its log: {}", log.trim()).into());
        }
        Ok(cluster)
    }

    /// One of the cluster's binaries, run as the `postgres` user when the bench is root.
    fn command(&self, program: &str) -> Command {
        let binary = self.bin.join(program);
        if self.as_postgres {
            let mut command = Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(binary);
            command
        } else {
            Command::new(binary)
        }
    }
}

/// Runs `command` (its output captured), failing with `what` and its error output.
fn run(command: &mut Command, what: &str) -> Result<()> {
    let output = command.stdin(Stdio::null()).output().map_err(|error| format!("{what}: {error}"))?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        return Err(format!("{what} failed ({}): {}", output.status, stderr.trim()).into());
    }
    Ok(())
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let mut stop = self.command("pg_ctl");
        stop.arg("-D").arg(self.dir.join("data")).args(["-m", "immediate", "stop"]);
        let _ = stop.stdout(Stdio::null()).stderr(Stdio::null()).status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
