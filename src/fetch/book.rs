//! What the service knows of its `url` sources' fetching, by source name: the last results,
//! the origins' confirmations, and the sources a policy waiting to load needs fetched first.
//! One lock, as the schedule updates these together.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

use jiff::Timestamp;
use serde::Serialize;

use editgate_core::policy::SourceDef;

use super::{FetchOutcome, Fetched, label};

/// What the health endpoint shows of a `url` source's fetching.
#[derive(Debug, Clone, Default, Serialize)]
pub struct FetchStatus {
    /// When the last fetch finished.
    pub last_attempt: Option<Timestamp>,
    /// When a fetch last succeeded (updated or not modified).
    pub last_success: Option<Timestamp>,
    /// `updated`, `not_modified`, `rejected` or `failed`.
    pub last_result: Option<&'static str>,
    /// Why the last fetch failed or was rejected.
    pub last_error: Option<String>,
    /// Failed or rejected fetches in a row.
    pub consecutive_failures: u32,
}

/// See the module documentation.
#[derive(Debug, Default)]
pub struct FetchBook(Mutex<Pages>);

#[derive(Debug, Default)]
struct Pages {
    status: HashMap<String, FetchStatus>,
    /// When each origin last confirmed its copy unchanged: the snapshot stays as built, and a
    /// "not modified" answer moves freshness forward here.
    confirmed: HashMap<String, Timestamp>,
    /// `url` sources of a policy that could not load because they have no copy yet.
    pending: Vec<SourceDef>,
}

impl FetchBook {
    fn pages(&self) -> MutexGuard<'_, Pages> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Records a fetch of `source` that finished at `at`; returns the failures in a row (0
    /// after a success). A "not modified" answer also confirms the copy.
    pub fn record(&self, source: &str, outcome: &FetchOutcome, at: Timestamp) -> u32 {
        let mut pages = self.pages();
        if let Ok(Fetched::NotModified) = outcome {
            let t = pages.confirmed.entry(source.to_owned()).or_insert(at);
            *t = (*t).max(at);
        }
        let st = pages.status.entry(source.to_owned()).or_default();
        st.last_attempt = Some(at);
        st.last_result = Some(label(outcome));
        match outcome {
            Ok(_) => {
                st.last_success = Some(at);
                st.last_error = None;
                st.consecutive_failures = 0;
            }
            Err(why) => {
                st.last_error = Some(why.to_string());
                st.consecutive_failures += 1;
            }
        }
        st.consecutive_failures
    }

    /// The fetch status of a `url` source, if it was fetched since start.
    pub fn status(&self, source: &str) -> Option<FetchStatus> {
        self.pages().status.get(source).cloned()
    }

    /// The last confirmation of `url` source `name` by its origin since start, if any.
    pub fn confirmed(&self, name: &str) -> Option<Timestamp> {
        self.pages().confirmed.get(name).copied()
    }

    /// `url` sources that a policy waiting to load needs fetched first.
    pub fn pending(&self) -> Vec<SourceDef> {
        self.pages().pending.clone()
    }

    /// Sets the `url` sources a waiting policy needs fetched first (none once it loaded).
    pub fn set_pending(&self, pending: Vec<SourceDef>) {
        self.pages().pending = pending;
    }
}
