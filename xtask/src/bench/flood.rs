//! Figure 14, a real user's login during a password flood (issue 18): the real user logs in
//! with the right password (`POST /auth/login`, from 127.0.0.3, four times a second, each on a
//! new connection), first in a quiet phase, then while a flood of wrong passwords keeps
//! [`FLOOD_IN_FLIGHT`] logins in flight from 250 other loopback addresses
//! (127.0.1.1–127.0.1.250, taking turns): half guess the real user's own account, half spray
//! made-up user names (each a fresh account, so every one of them costs a hash). The figure
//! gives the real user's login p50, p99 and failures in each phase, and what the flood got
//! (401 wrong password, 429 throttled, 503 hashing saturated, per second).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::chart::{self, Caption, Chart};
use super::loopback::{self, USER};
use super::stats::{median, percentile};
use super::target::{Result, Target as _};
use super::wssh::WsshTarget;

/// Flood logins in flight at any time.
pub(crate) const FLOOD_IN_FLIGHT: usize = 64;
/// The flood's client addresses.
const FLOOD_ADDRESSES: usize = 250;
/// The real user's logins per second.
const USER_PERIOD: Duration = Duration::from_millis(250);

/// One phase of a run.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Phase {
    /// Whether the flood was on.
    pub(crate) flood: bool,
    /// The real user's successful logins, in microseconds.
    pub(crate) login_us: Vec<f64>,
    /// The real user's logins that failed, by status (`error` for no answer).
    pub(crate) user_failures: BTreeMap<String, usize>,
    /// The flood's answers by status (`error` for no answer).
    pub(crate) flood_answers: BTreeMap<String, usize>,
    /// The phase's length, in seconds.
    pub(crate) seconds: f64,
}

/// The figure.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Figure {
    /// The target's name.
    pub(crate) target: String,
    /// Every phase of every run.
    pub(crate) phases: Vec<Phase>,
}

/// Runs the figure: `runs` runs, each on a fresh server, a quiet then a flood phase of
/// `seconds` each (quiet first: the real user's address has then signed in before, as a real
/// user's has).
pub(crate) async fn measure(target: &WsshTarget, runs: usize, seconds: u64) -> Result<Figure> {
    let mut phases = Vec::with_capacity(runs * 2);
    for round in 0..runs {
        let (_instance, access) = target.start_with_api().await?;
        for flood in [false, true] {
            let length = Duration::from_secs(seconds);
            let started = Instant::now();
            let deadline = started + length;
            let user = async {
                let mut ticker = tokio::time::interval(USER_PERIOD);
                ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                let (mut login_us, mut failures) = (Vec::new(), BTreeMap::<String, usize>::new());
                while Instant::now() < deadline {
                    ticker.tick().await;
                    match loopback::login(access.addr, USER, "admin", &access.password).await {
                        Ok((200, took)) => login_us.push(took.as_secs_f64() * 1e6),
                        Ok((status, _)) => *failures.entry(status.to_string()).or_default() += 1,
                        Err(_) => *failures.entry("error".to_owned()).or_default() += 1,
                    }
                }
                (login_us, failures)
            };
            let attackers = async {
                let mut answers = BTreeMap::<String, usize>::new();
                if !flood {
                    return answers;
                }
                let next = std::cell::Cell::new(0_usize);
                let workers = (0..FLOOD_IN_FLIGHT).map(|_| async {
                    let mut answers = BTreeMap::<String, usize>::new();
                    while Instant::now() < deadline {
                        let attempt = next.get();
                        next.set(attempt + 1);
                        let source = loopback::address(1, attempt % FLOOD_ADDRESSES);
                        let username = if attempt.is_multiple_of(2) {
                            "admin".to_owned()
                        } else {
                            format!("flood-{round}-{attempt}")
                        };
                        let key = match loopback::login(access.addr, source, &username, "wrong-password").await {
                            Ok((status, _)) => status.to_string(),
                            Err(_) => "error".to_owned(),
                        };
                        *answers.entry(key).or_default() += 1;
                    }
                    answers
                });
                for worker in futures_util::future::join_all(workers).await {
                    for (status, count) in worker {
                        *answers.entry(status).or_default() += count;
                    }
                }
                answers
            };
            let ((login_us, user_failures), flood_answers) = futures_util::future::join(user, attackers).await;
            let phase =
                Phase { flood, login_us, user_failures, flood_answers, seconds: started.elapsed().as_secs_f64() };
            eprintln!(
                "  password flood {}/{runs} {} {:<5} login p50 {:.1} ms, p99 {:.1} ms, user failures {:?}, flood {:?}",
                round + 1,
                target.name(),
                if flood { "flood" } else { "quiet" },
                percentile(&phase.login_us, 50.0) / 1e3,
                percentile(&phase.login_us, 99.0) / 1e3,
                phase.user_failures,
                phase.flood_answers
            );
            phases.push(phase);
        }
    }
    Ok(Figure { target: target.name().to_owned(), phases })
}

impl Figure {
    /// The median over the phases (flood or not) of `value`.
    fn of(&self, flood: bool, value: impl Fn(&Phase) -> f64) -> f64 {
        median(&self.phases.iter().filter(|phase| phase.flood == flood).map(value).collect::<Vec<_>>())
    }

    /// The figure's table, appended to `out`.
    pub(crate) fn table(&self, out: &mut String) {
        let _ = writeln!(
            out,
            "\n### 14. A real user's password login during a flood of wrong passwords ({FLOOD_IN_FLIGHT} in flight \
             from {FLOOD_ADDRESSES} addresses; median of {} runs)\n",
            self.phases.len() / 2
        );
        let _ = writeln!(
            out,
            "| target | phase | user login p50 ms | user login p99 ms | user logins ok | user failures | flood answers/s \
             (401 / 429 / 503 / other) |"
        );
        let _ = writeln!(out, "|---|---|---:|---:|---:|---|---|");
        for flood in [false, true] {
            let mut failures = BTreeMap::<String, usize>::new();
            let mut answers = BTreeMap::<String, usize>::new();
            let mut seconds = 0.0;
            for phase in self.phases.iter().filter(|phase| phase.flood == flood) {
                for (status, count) in &phase.user_failures {
                    *failures.entry(status.clone()).or_default() += count;
                }
                for (status, count) in &phase.flood_answers {
                    *answers.entry(status.clone()).or_default() += count;
                }
                seconds += phase.seconds;
            }
            let failures = if failures.is_empty() {
                "0".to_owned()
            } else {
                failures.iter().map(|(status, count)| format!("{count}× {status}")).collect::<Vec<_>>().join(", ")
            };
            let per_second = |key: &str| answers.get(key).copied().unwrap_or(0) as f64 / seconds.max(1e-9);
            let other: usize =
                answers.iter().filter(|(key, _)| !["401", "429", "503"].contains(&key.as_str())).map(|(_, n)| n).sum();
            let flood_text = if flood {
                format!(
                    "{:.0} / {:.0} / {:.0} / {:.0}",
                    per_second("401"),
                    per_second("429"),
                    per_second("503"),
                    other as f64 / seconds.max(1e-9)
                )
            } else {
                "–".to_owned()
            };
            let _ = writeln!(
                out,
                "| {} | {} | {:.1} | {:.1} | {} | {} | {} |",
                self.target,
                if flood { "flood" } else { "quiet" },
                self.of(flood, |phase| percentile(&phase.login_us, 50.0)) / 1e3,
                self.of(flood, |phase| percentile(&phase.login_us, 99.0)) / 1e3,
                self.phases
                    .iter()
                    .filter(|phase| phase.flood == flood)
                    .map(|phase| phase.login_us.len())
                    .sum::<usize>(),
                failures,
                flood_text
            );
        }
        let _ = writeln!(out, "\ntarget: the real user's login completes within 2 s during the flood");
    }

    /// The figure's chart.
    pub(crate) fn chart(&self, caption: Caption<'_>) -> Chart {
        let row = |flood: bool| {
            vec![
                self.of(flood, |phase| percentile(&phase.login_us, 50.0)) / 1e3,
                self.of(flood, |phase| percentile(&phase.login_us, 99.0)) / 1e3,
            ]
        };
        chart::bars(
            "14-password-flood.svg",
            "12. A real user's password login, quiet and during a flood (lower is better)",
            caption,
            "ms",
            &["p50", "p99"],
            &[("quiet".to_owned(), row(false)), ("flood".to_owned(), row(true))],
        )
    }
}
