//! A get that waits, and every connect, leave a `tracing` span with the
//! pool's name, how long it took and how it ended, so a slow request's
//! trace shows the time spent waiting for a connection.
mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::quiet;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;

/// A closed span: its name and its fields as text.
type Closed = (String, HashMap<String, String>);

#[derive(Clone, Default)]
struct Spans(Arc<Mutex<Vec<Closed>>>);

#[derive(Default)]
struct Fields(HashMap<String, String>);

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }
}

impl<S: tracing::Subscriber + for<'a> LookupSpan<'a>> Layer<S> for Spans {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let mut fields = Fields::default();
        attrs.record(&mut fields);
        ctx.span(id).unwrap().extensions_mut().insert(fields);
    }
    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        if let Some(fields) = ctx.span(id).unwrap().extensions_mut().get_mut::<Fields>() {
            values.record(fields);
        }
    }
    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        let span = ctx.span(&id).unwrap();
        let fields = span.extensions_mut().remove::<Fields>().unwrap_or_default();
        self.0
            .lock()
            .unwrap()
            .push((span.name().to_owned(), fields.0));
    }
}

#[tokio::test(start_paused = true)]
async fn waits_and_connects_leave_spans_with_pool_duration_and_outcome() {
    let spans = Spans::default();
    let subscriber = tracing_subscriber::registry().with(spans.clone());
    let _guard = tracing::subscriber::set_default(subscriber);

    let fake = common::Fake::new().slow(Duration::from_millis(30));
    let pool = common::pool_with(fake, quiet(1));
    let held = pool.get().await.unwrap();
    assert!(pool.get_timeout(Duration::from_millis(50)).await.is_err());
    drop(held);
    drop(pool.get().await.unwrap()); // a hit: no span

    let closed = spans.0.lock().unwrap().clone();
    let of = |name: &str| -> Vec<&HashMap<String, String>> {
        closed
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, f)| f)
            .collect()
    };
    let connects = of("tidepool.connect");
    assert_eq!(connects.len(), 1, "{closed:?}");
    assert_eq!(connects[0]["pool"], "default");
    assert_eq!(connects[0]["outcome"], "ok");
    assert_eq!(connects[0]["took_ms"], "30.0");
    let waits = of("tidepool.wait");
    assert_eq!(
        waits.len(),
        2,
        "the first get and the one that timed out: {closed:?}"
    );
    assert_eq!(waits[0]["outcome"], "served");
    assert_eq!(waits[0]["waited_ms"], "30.0");
    assert_eq!(waits[1]["outcome"], "timed_out");
    assert_eq!(waits[1]["waited_ms"], "50.0");
}
