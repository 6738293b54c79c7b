//! Injected time: the app state holds a [`Clock`]; tests use a mock one and move it forward.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

/// Wall-clock time in Unix seconds.
#[derive(Clone, Debug)]
pub enum Clock {
    System,
    /// A settable clock for tests.
    Mock(Arc<AtomicI64>),
}

impl Clock {
    pub fn mock(start: i64) -> Clock {
        Clock::Mock(Arc::new(AtomicI64::new(start)))
    }

    /// Seconds since the Unix epoch.
    pub fn now(&self) -> i64 {
        match self {
            Clock::System => time::OffsetDateTime::now_utc().unix_timestamp(),
            Clock::Mock(t) => t.load(Ordering::SeqCst),
        }
    }

    /// Moves a mock clock forward; a system clock ignores this.
    pub fn advance(&self, secs: i64) {
        if let Clock::Mock(t) = self {
            t.fetch_add(secs, Ordering::SeqCst);
        }
    }
}

/// Formats Unix seconds as RFC 3339, for people.
pub fn rfc3339(secs: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(secs)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| secs.to_string())
}
