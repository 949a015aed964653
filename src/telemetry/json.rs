//! `LOG_FORMAT=json`: one flat JSON object per line, as log pipelines ingest them without a
//! parsing rule: `timestamp`, `level`, `message`, then the fields of the request's span
//! (`request_id`, `user_id`, `method`, `path`) and of the event, all at the top level.
//!
//! tracing-subscriber's own JSON format nests span fields under `"span"` and lets the `log.*`
//! bookkeeping fields of dependencies that log through the `log` crate (reqwest, rustls) through;
//! this format does neither.

use std::fmt;

use serde_json::{Map, Value};
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_log::NormalizeEvent;
use tracing_subscriber::fmt::format::{JsonFields, Writer};
use tracing_subscriber::fmt::time::{FormatTime, SystemTime};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormattedFields};
use tracing_subscriber::registry::LookupSpan;

/// The event format; pair it with [`JsonFields`], which stores each span's fields as JSON.
pub struct FlatJson;

impl<S> FormatEvent<S, JsonFields> for FlatJson
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, JsonFields>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        // Events from the `log` crate carry their real target in `log.target`.
        let normalized = event.normalized_metadata();
        let metadata = normalized.as_ref().unwrap_or_else(|| event.metadata());

        let mut fields = Map::new();
        // Outer spans first, so an inner span's field of the same name wins.
        if let Some(scope) = ctx.event_scope() {
            for span in scope.from_root() {
                let extensions = span.extensions();
                let Some(recorded) = extensions.get::<FormattedFields<JsonFields>>() else {
                    continue;
                };
                if let Ok(Value::Object(span_fields)) = serde_json::from_str(recorded) {
                    fields.extend(span_fields);
                }
            }
        }
        event.record(&mut FieldVisitor(&mut fields));
        let message = fields
            .remove("message")
            .unwrap_or(Value::String(String::new()));
        fields.insert("target".into(), metadata.target().into());

        let mut timestamp = String::new();
        SystemTime.format_time(&mut Writer::new(&mut timestamp))?;
        // Written by hand so the three fields a person scans for come first.
        write!(
            writer,
            "{{\"timestamp\":{},\"level\":{},\"message\":{}",
            Value::String(timestamp),
            Value::String(metadata.level().as_str().to_owned()),
            message,
        )?;
        for (name, value) in &fields {
            write!(writer, ",{}:{value}", Value::String(name.clone()))?;
        }
        writeln!(writer, "}}")
    }
}

/// Collects an event's fields as JSON values, without the `log.*` fields of `log` records.
struct FieldVisitor<'a>(&'a mut Map<String, Value>);

impl FieldVisitor<'_> {
    fn insert(&mut self, field: &Field, value: Value) {
        let name = field.name();
        if name.starts_with("log.") {
            return;
        }
        let name = name.strip_prefix("r#").unwrap_or(name);
        self.0.insert(name.to_owned(), value);
    }
}

impl Visit for FieldVisitor<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.insert(field, value.into());
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.insert(field, value.into());
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.insert(field, value.into());
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.insert(field, value.into());
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        self.insert(field, value.into());
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.insert(field, value.to_string().into());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.insert(field, format!("{value:?}").into());
    }
}

#[cfg(test)]
mod tests {
    use std::io;
    use std::sync::{Arc, Mutex};

    use serde_json::json;
    use tracing::field::Empty;
    use tracing_subscriber::fmt::MakeWriter;

    use super::*;

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl io::Write for Captured {
        fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl<'a> MakeWriter<'a> for Captured {
        type Writer = Captured;

        fn make_writer(&'a self) -> Self::Writer {
            self.clone()
        }
    }

    fn output_of(emit: impl FnOnce()) -> String {
        let captured = Captured::default();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(captured.clone())
            .with_max_level(tracing::Level::TRACE)
            .fmt_fields(JsonFields::new())
            .event_format(FlatJson)
            .finish();
        tracing::subscriber::with_default(subscriber, emit);
        String::from_utf8(captured.0.lock().unwrap().clone()).unwrap()
    }

    fn lines_of(emit: impl FnOnce()) -> Vec<Value> {
        output_of(emit)
            .lines()
            .map(|line| serde_json::from_str(line).expect("every line is one JSON object"))
            .collect()
    }

    #[test]
    fn span_and_event_fields_sit_at_the_top_level() {
        let lines = lines_of(|| {
            let span = tracing::info_span!("request", request_id = "req-1", user_id = Empty);
            let _entered = span.enter();
            span.record("user_id", "user-1");
            tracing::info!(
                status = 200u64,
                latency_ms = 1.5,
                cached = false,
                "finished"
            );
        });
        let line = &lines[0];
        let timestamp = line["timestamp"].as_str().unwrap();
        assert!(
            timestamp.ends_with('Z') && timestamp.contains('T'),
            "{line}"
        );
        let mut line = line.clone();
        line.as_object_mut().unwrap().remove("timestamp");
        assert_eq!(
            line,
            json!({
                "level": "INFO",
                "message": "finished",
                "request_id": "req-1",
                "user_id": "user-1",
                "status": 200,
                "latency_ms": 1.5,
                "cached": false,
                "target": "telnyx_webrtc_credentials::telemetry::json::tests",
            })
        );
    }

    #[test]
    fn timestamp_level_and_message_lead_and_log_bookkeeping_is_dropped() {
        let raw = output_of(|| {
            tracing::debug!(
                log.target = "dependency::module",
                log.line = 7u64,
                "from a dependency"
            );
        });
        let (timestamp, rest) = raw
            .strip_prefix("{\"timestamp\":\"")
            .and_then(|rest| rest.split_once('"'))
            .unwrap_or_else(|| panic!("{raw}"));
        assert!(timestamp.ends_with('Z'), "{raw}");
        assert!(
            rest.starts_with(",\"level\":\"DEBUG\",\"message\":\"from a dependency\","),
            "{raw}"
        );
        assert!(!raw.contains("log."), "{raw}");
        assert!(raw.ends_with("}\n") && raw.lines().count() == 1, "{raw}");
    }
}
