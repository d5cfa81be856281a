//! The no-file mode: records become structured tracing events, without secrets.

use super::*;

type CapturedEvent = (tracing::Level, String, Vec<(String, String)>);

/// A subscriber that keeps every event's level, target and fields.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<CapturedEvent>>>);

struct Fields(Vec<(String, String)>);

impl tracing::field::Visit for Fields {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn fmt::Debug) {
        self.0.push((field.name().to_owned(), format!("{value:?}")));
    }
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        self.0.push((field.name().to_owned(), value.to_owned()));
    }
}

impl tracing::Subscriber for Capture {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        let mut fields = Fields(Vec::new());
        event.record(&mut fields);
        let metadata = event.metadata();
        self.0
            .lock()
            .unwrap()
            .push((*metadata.level(), metadata.target().to_owned(), fields.0));
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

#[tokio::test]
async fn without_a_file_records_become_structured_tracing_events_without_secrets() {
    let capture = Capture::default();
    let _guard = tracing::subscriber::set_default(capture.clone());
    let log = AuditLog::disabled();
    assert_eq!(log.path(), None);
    log.record(context(), with_secret()).await.unwrap();

    let events = capture.0.lock().unwrap().clone();
    assert_eq!(events.len(), 1);
    let (level, target, fields) = &events[0];
    assert_eq!(*level, tracing::Level::INFO);
    assert_eq!(target, "hostmcp::audit");
    let field = |name: &str| {
        fields
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    };
    assert_eq!(field("event"), Some("command_started"));
    assert_eq!(field("principal"), Some("alice"));
    assert_eq!(field("command_id"), Some("c-1"));
    assert_eq!(field("job_id"), Some("j-1"));
    assert_eq!(field("env"), Some("API_KEY=[redacted] MODE=[redacted]"));
    assert_eq!(field("message"), None);
    assert!(
        fields.iter().all(|(_, value)| !value.contains(SECRET)),
        "{fields:?}"
    );
}
