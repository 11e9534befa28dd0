//! The adapter's half of a request's session: the commit it owes once the
//! handler is done, and the plan for the response that comes of it.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use futures_util::lock::Mutex;

use super::{Plan, RequestState};

/// A request's state, shared by its [`Session`](crate::Session) handles and
/// its [`Pending`] commit.
pub(crate) type SharedState = Arc<Mutex<RequestState>>;

/// The commit a request owes after its handler.
pub(crate) struct Pending {
    state: SharedState,
}

/// What [`Pending::finish`] gives the adapter.
pub(crate) enum Finish {
    /// The plan for the response, decided without a store call.
    Now(Plan),
    /// The commit, which then gives the plan.
    Later(Pin<Box<dyn Future<Output = Plan> + Send>>),
}

impl Pending {
    pub(crate) fn new(state: SharedState) -> Pending {
        Pending { state }
    }

    /// Commits after the handler; what the response gets: at once when
    /// there is nothing to write, so that a request that only reads carries
    /// no commit future, else once the commit is done.
    pub(crate) fn finish(self) -> Finish {
        if let Some(mut state) = self.state.try_lock()
            && let Some(plan) = state.settled()
        {
            return Finish::Now(plan);
        }
        Finish::Later(Box::pin(async move { self.state.lock().await.finish().await }))
    }
}

impl Finish {
    /// The plan, once there is one.
    #[cfg(any(feature = "actix", test, fuzzing))]
    pub(crate) async fn plan(self) -> Plan {
        match self {
            Finish::Now(plan) => plan,
            Finish::Later(commit) => commit.await,
        }
    }
}
