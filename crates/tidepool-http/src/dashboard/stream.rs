//! `GET /api/v1/stream`: the dashboard's live updates, one `snapshot`
//! server-sent event per `stream_interval`, authenticated like the JSON API
//! (the `Monitor` extractor: a token when `monitoring_requires_token` is
//! set, and any token sent must be valid).
//!
//! # Implementation notes
//! One sampling task takes a [`Frame`] of every pool per interval and
//! broadcasts it (a `tokio::sync::broadcast` of `stream_buffer` frames, each
//! an `Arc` shared by every client); it starts with the first client and
//! stops when the last one leaves. Each client filters the frame by what
//! its caller may see, exactly as the JSON API does.
//!
//! A client is bounded: the channel keeps at most `stream_buffer` frames in
//! all, so a client that reads slower than frames are made falls behind,
//! and the first time it is polled after falling behind it is dropped — its
//! response ends with an error, which closes the connection — instead of
//! being buffered for without limit. At most `max_streams` streams are open
//! at once (more answer 503), so the memory streams hold is bounded as a
//! whole. [`Streams::close`] ends them all for graceful shutdown.

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::sse::{Event, Sse};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::value::RawValue;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, broadcast};

use super::frames::{Frame, Sampler};
use crate::auth::Monitor;
use crate::error::ApiError;
use crate::sessions::SessionStats;
use crate::state::AppState;
use crate::tenants::{Caller, Role};

/// The open streams and the task that feeds them.
pub(crate) struct Streams {
    hub: Mutex<Option<Hub>>,
    slots: Arc<Semaphore>,
    max: usize,
    closed: AtomicBool,
    dropped: AtomicU64,
    generation: AtomicU64,
}

impl fmt::Debug for Streams {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Streams")
            .field("open", &self.open())
            .field("dropped", &self.dropped())
            .finish_non_exhaustive()
    }
}

/// The running sampling task's channel and its latest frame.
struct Hub {
    tx: broadcast::Sender<Arc<Frame>>,
    latest: Option<Arc<Frame>>,
    generation: u64,
}

/// The latest frame, if any, and a receiver of the next ones.
type Subscription = (Option<Arc<Frame>>, broadcast::Receiver<Arc<Frame>>);

/// Why a client's stream ended with an error.
#[derive(Debug)]
pub(crate) struct Dropped {
    missed: u64,
}

impl fmt::Display for Dropped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "stream client dropped: it fell {} snapshot(s) behind",
            self.missed
        )
    }
}

impl std::error::Error for Dropped {}

impl Streams {
    pub(crate) fn new(max_streams: usize) -> Self {
        Self {
            hub: Mutex::new(None),
            slots: Arc::new(Semaphore::new(max_streams)),
            max: max_streams,
            closed: AtomicBool::new(false),
            dropped: AtomicU64::new(0),
            generation: AtomicU64::new(0),
        }
    }

    fn hub(&self) -> MutexGuard<'_, Option<Hub>> {
        self.hub.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Streams open now.
    pub(crate) fn open(&self) -> usize {
        self.max.saturating_sub(self.slots.available_permits())
    }

    /// Streams dropped because their client fell behind, since start.
    pub(crate) fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Ends every stream and refuses new ones.
    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
        self.slots.close();
        // Dropping the only sender ends every receiver once it has read
        // what it was sent.
        self.hub().take();
    }

    /// The latest frame (if the task has taken one) and a receiver of the
    /// next ones; starts the sampling task if none runs.
    fn subscribe(&self, state: &AppState) -> Result<Subscription, ApiError> {
        let mut hub = self.hub();
        if self.closed.load(Ordering::SeqCst) {
            return Err(shutting_down());
        }
        if let Some(h) = hub.as_ref() {
            return Ok((h.latest.clone(), h.tx.subscribe()));
        }
        let settings = state.settings();
        let (tx, rx) = broadcast::channel(settings.stream_buffer.max(1));
        let generation = self.generation.fetch_add(1, Ordering::Relaxed);
        *hub = Some(Hub {
            tx,
            latest: None,
            generation,
        });
        tokio::spawn(sample(state.clone(), generation));
        Ok((None, rx))
    }
}

/// 503 for a stream that cannot be opened now.
fn unavailable(detail: impl Into<String>) -> ApiError {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "stream_unavailable",
        detail,
    )
}

fn shutting_down() -> ApiError {
    unavailable("the server is shutting down; streams are closed")
}

/// The sampling task: a frame per interval, until no client is left or the
/// streams are closed.
async fn sample(state: AppState, generation: u64) {
    let mut sampler = Sampler::default();
    let mut ticker = tokio::time::interval(state.settings().stream_interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        let frame = Arc::new(sampler.frame(&state));
        let streams = &state.inner.streams;
        let mut hub = streams.hub();
        let Some(h) = hub.as_mut().filter(|h| h.generation == generation) else {
            return;
        };
        if h.tx.receiver_count() == 0 {
            hub.take();
            return;
        }
        h.latest = Some(Arc::clone(&frame));
        // Cannot fail: there is a receiver.
        let _ = h.tx.send(frame);
    }
}

/// One client's stream.
struct Client {
    state: AppState,
    caller: Option<Caller>,
    first: Option<Arc<Frame>>,
    rx: broadcast::Receiver<Arc<Frame>>,
    done: bool,
    /// Held for as long as the stream is open.
    _slot: OwnedSemaphorePermit,
}

#[derive(Serialize)]
struct Who<'a> {
    tenant: &'a str,
    role: Role,
}

#[derive(Serialize)]
struct ClientPool<'a> {
    view: &'a RawValue,
    #[serde(skip_serializing_if = "Option::is_none")]
    advice: Option<&'a RawValue>,
}

#[derive(Serialize)]
struct ClientFrame<'a> {
    at_ms: u64,
    interval_ms: u128,
    caller: Option<Who<'a>>,
    pools: Vec<ClientPool<'a>>,
    sessions: Option<SessionStats>,
}

impl Client {
    async fn next(&mut self) -> Option<Result<Event, Dropped>> {
        if self.done {
            return None;
        }
        let frame = match self.first.take() {
            Some(f) => f,
            None => match self.rx.recv().await {
                Ok(f) => f,
                Err(RecvError::Closed) => return None,
                Err(RecvError::Lagged(missed)) => {
                    self.done = true;
                    self.state
                        .inner
                        .streams
                        .dropped
                        .fetch_add(1, Ordering::Relaxed);
                    tracing::info!(missed, "dropped a stream client that fell behind");
                    return Some(Err(Dropped { missed }));
                }
            },
        };
        Some(Ok(Event::default()
            .event("snapshot")
            .data(self.render(&frame).await)))
    }

    /// The frame as this caller may see it.
    async fn render(&self, frame: &Frame) -> String {
        let state = &self.state;
        let tenant = self.caller.map(|c| state.tenant(c));
        let admin = tenant.is_some_and(|t| t.role == Role::Admin);
        let sessions = match tenant {
            Some(t) => {
                let scope = (!admin).then_some(t.name.as_str());
                Some(state.inner.sessions.stats(scope).await)
            }
            None => None,
        };
        let out = ClientFrame {
            at_ms: frame.at_ms,
            interval_ms: state.settings().stream_interval.as_millis(),
            caller: tenant.map(|t| Who {
                tenant: &t.name,
                role: t.role,
            }),
            pools: frame
                .pools
                .iter()
                .filter(|p| state.visible(self.caller, &p.name))
                .map(|p| ClientPool {
                    view: &p.view,
                    advice: admin.then_some(&*p.advice),
                })
                .collect(),
            sessions,
        };
        serde_json::to_string(&out).unwrap_or_else(|e| {
            tracing::warn!(error = %e, "could not serialize a stream frame");
            String::from("{}")
        })
    }
}

/// `GET /api/v1/stream`
pub(crate) async fn stream(
    State(state): State<AppState>,
    Monitor(caller): Monitor,
) -> Result<Response, ApiError> {
    let streams = &state.inner.streams;
    let slot = Arc::clone(&streams.slots)
        .try_acquire_owned()
        .map_err(|_| {
            if streams.closed.load(Ordering::SeqCst) {
                shutting_down()
            } else {
                unavailable(format!(
                    "{} streams are open, this server's max_streams; try again later",
                    streams.max
                ))
                .retry_after(5)
            }
        })?;
    let (first, rx) = streams.subscribe(&state)?;
    let client = Client {
        state: state.clone(),
        caller,
        first,
        rx,
        done: false,
        _slot: slot,
    };
    let events = futures_util::stream::unfold(client, |mut c| async move {
        c.next().await.map(|item| (item, c))
    });
    Ok(Sse::new(events).into_response())
}
