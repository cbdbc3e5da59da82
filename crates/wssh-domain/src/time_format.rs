//! Points in time as the domain stores them: whole seconds since the Unix epoch, UTC.

use std::time::{SystemTime, UNIX_EPOCH};

/// A point in time with one-second resolution, UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(pub i64);

impl Timestamp {
    /// The current time.
    pub fn now() -> Self {
        let seconds = SystemTime::now().duration_since(UNIX_EPOCH).map(|elapsed| elapsed.as_secs() as i64).unwrap_or(0);
        Timestamp(seconds)
    }

    /// The end of a lifetime of `lifetime` starting now, rounded up to the next whole second:
    /// something that works until then (`now < end`, in whole seconds) works for at least
    /// `lifetime`, never a fraction of a second less.
    pub fn end_of(lifetime: std::time::Duration) -> Self {
        let end = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().saturating_add(lifetime);
        let seconds = i64::try_from(end.as_secs()).unwrap_or(i64::MAX);
        Timestamp(if end.subsec_nanos() > 0 { seconds.saturating_add(1) } else { seconds })
    }

    /// Seconds since the Unix epoch.
    pub const fn unix_seconds(self) -> i64 {
        self.0
    }

    /// This time plus `seconds` (saturating).
    #[must_use]
    pub const fn plus_seconds(self, seconds: i64) -> Self {
        Timestamp(self.0.saturating_add(seconds))
    }

    /// RFC 3339 in UTC, e.g. `2026-11-23T15:30:00Z`.
    pub fn to_rfc3339(self) -> String {
        time::OffsetDateTime::from_unix_timestamp(self.0)
            .ok()
            .and_then(|moment| moment.format(&time::format_description::well_known::Rfc3339).ok())
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::Timestamp;

    #[test]
    fn a_lifetime_ends_no_earlier_than_it_says() {
        use std::time::{Duration, SystemTime, UNIX_EPOCH};
        for _ in 0..50 {
            let before = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs_f64();
            let end = Timestamp::end_of(Duration::from_secs(2));
            let after = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs_f64();
            assert!(end.0 as f64 >= before + 2.0, "{} ends before {before} + 2 s", end.0);
            assert!((end.0 as f64) < after + 3.0, "{} ends a second or more late", end.0);
            std::thread::sleep(Duration::from_millis(7));
        }
    }

    #[test]
    fn formats_rfc3339() {
        assert_eq!(Timestamp(0).to_rfc3339(), "1970-01-01T00:00:00Z");
        assert_eq!(Timestamp(1_795_000_000).to_rfc3339(), "2026-11-18T11:06:40Z");
    }
}
