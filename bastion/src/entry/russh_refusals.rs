//! User certificates that russh refuses before the bastion's handler sees them. russh 0.65
//! checks a certificate's validity window in `server_read_auth_request_pk` and, outside it,
//! answers USERAUTH_FAILURE at once: neither `auth_publickey_offered` nor
//! `auth_openssh_certificate` is called, so the bastion never sees the certificate. All russh
//! leaves is a `log::warn!("Certificate is expired or not yet valid")` with no connection, user
//! or certificate in it (so expired and not yet valid cannot be told apart).
//!
//! [`CertWindowRefusals`] is a tracing layer that notices that warning (bridged from `log` by
//! tracing-log) and notes it under the tokio task it happened in. russh runs one connection's
//! reads and its handler calls in one task, so the handler's next attempt on that connection
//! takes the note ([`take_current`]) and writes the `entries` row the refusal deserves. A
//! refusal after which the client gives up without another attempt leaves no row, and one made
//! while logging is filtered below `warn` for russh is not seen at all.
use std::collections::HashMap;
use std::fmt;
use std::sync::{LazyLock, Mutex};
use tokio::task::Id;
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::Context;
use tracing_subscriber::Layer;

/// The text russh logs when it refuses a certificate outside its validity window.
const RUSSH_WINDOW_MESSAGE: &str = "Certificate is expired or not yet valid";

/// Notes kept for connections that never ask again; beyond this the oldest are forgotten.
const MAX_PENDING: usize = 4096;

/// The reason an `entries` row gives for such a refusal.
pub const REASON: &str = "certificate expired or not yet valid (refused inside russh before the bastion's checks, which cannot tell which)";

static PENDING: LazyLock<Mutex<HashMap<Id, u32>>> = LazyLock::new(Default::default);

/// The layer; add it to the subscriber `bastion serve` installs.
#[derive(Debug, Default, Clone, Copy)]
pub struct CertWindowRefusals;

#[derive(Default)]
struct Fields {
    message: String,
    log_target: String,
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            "message" => self.message = value.to_string(),
            "log.target" => self.log_target = value.to_string(),
            _ => {}
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if field.name() == "message" {
            self.message = format!("{value:?}");
        }
    }
}

/// True for russh's validity-window refusal.
fn is_window_refusal(fields: &Fields) -> bool {
    fields.message == RUSSH_WINDOW_MESSAGE && fields.log_target.starts_with("russh::server")
}

impl<S: Subscriber> Layer<S> for CertWindowRefusals {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        if *event.metadata().level() != Level::WARN {
            return;
        }
        let mut fields = Fields::default();
        event.record(&mut fields);
        if !is_window_refusal(&fields) {
            return;
        }
        if let Some(task) = tokio::task::try_id() {
            note(task);
        }
    }
}

fn note(task: Id) {
    let mut pending = PENDING.lock().unwrap_or_else(|e| e.into_inner());
    if pending.len() >= MAX_PENDING && !pending.contains_key(&task) {
        pending.clear();
    }
    *pending.entry(task).or_default() += 1;
}

/// How many certificates russh refused for its window in the current task since the last call
/// (0 outside a task).
pub fn take_current() -> u32 {
    let Some(task) = tokio::task::try_id() else {
        return 0;
    };
    PENDING
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .remove(&task)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing_subscriber::layer::SubscriberExt;

    #[tokio::test]
    async fn a_russh_window_warning_is_noted_for_its_task_only() {
        let subscriber = tracing_subscriber::registry().with(CertWindowRefusals);
        let _guard = tracing::subscriber::set_default(subscriber);
        // What tracing-log makes of russh's `log::warn!`, and look-alikes that must not count.
        tracing::warn!(
            log.target = "russh::server::encrypted",
            "{RUSSH_WINDOW_MESSAGE}"
        );
        assert_eq!(take_current(), 0, "outside a task nothing is noted");
        let in_task = tokio::task::spawn(async {
            tracing::warn!(
                log.target = "russh::server::encrypted",
                "{RUSSH_WINDOW_MESSAGE}"
            );
            tracing::warn!(
                log.target = "russh::server::encrypted",
                "{RUSSH_WINDOW_MESSAGE}"
            );
            tracing::warn!(log.target = "elsewhere", "{RUSSH_WINDOW_MESSAGE}");
            tracing::info!(
                log.target = "russh::server::encrypted",
                "{RUSSH_WINDOW_MESSAGE}"
            );
            tracing::warn!(
                log.target = "russh::server::encrypted",
                "Certificate signature is invalid"
            );
            (take_current(), take_current())
        });
        let other = tokio::task::spawn(async { take_current() });
        assert_eq!(other.await.unwrap(), 0);
        assert_eq!(in_task.await.unwrap(), (2, 0));
    }
}
