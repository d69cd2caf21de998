//! Who an upstream login is made for, and the trail row naming the just-in-time credential a
//! session used (an ephemeral PostgreSQL role, an SSH certificate). The row is an `actions` row
//! of kind `upstream_credential` with sequence number 0 (the session's own actions start at 1),
//! written before the credential exists, with its outcome once the login succeeded or failed —
//! so `bastion audit query "SELECT text, message FROM actions WHERE seq = 0"` answers "which
//! role / which certificate did this session use".
use crate::config::Target;

/// The `seq` of the credential row: before every action of the session.
pub const CREDENTIAL_SEQ: i64 = 0;

/// The `kind` of the credential row.
pub const CREDENTIAL_KIND: &str = "upstream_credential";

/// The session an upstream login is for.
#[derive(Clone, Copy)]
pub struct SessionLogin<'a> {
    recorder: &'a recorder::Recorder,
    /// The session id.
    pub session_id: &'a str,
    /// The proven identity.
    pub identity: &'a str,
    /// `human`, `service` or `agent`.
    pub identity_kind: &'a str,
}

/// The trail refused the credential row; the credential is then not issued (fail closed).
#[derive(Debug, thiserror::Error)]
#[error("the audit trail cannot record the session's upstream credential: {0}")]
pub struct TrailError(#[from] recorder::RecorderError);

impl<'a> SessionLogin<'a> {
    /// A login for `session_id` of `identity`.
    pub fn new(
        recorder: &'a recorder::Recorder,
        session_id: &'a str,
        identity: &'a str,
        identity_kind: &'a str,
    ) -> SessionLogin<'a> {
        SessionLogin {
            recorder,
            session_id,
            identity,
            identity_kind,
        }
    }

    /// Records, before it exists, the credential about to be issued: `class` is
    /// `ephemeral_role` or `certificate`, `object` the role or principal, `text` a description.
    pub async fn record_issue(
        &self,
        target: &Target,
        class: &str,
        object: &str,
        text: String,
    ) -> Result<(), TrailError> {
        self.recorder
            .action(recorder::ActionRow {
                time: recorder::now_micros(),
                session_id: self.session_id.to_string(),
                seq: CREDENTIAL_SEQ,
                identity: self.identity.to_string(),
                identity_kind: self.identity_kind.to_string(),
                target: target.name.clone(),
                protocol: target.protocol.as_str().to_string(),
                kind: CREDENTIAL_KIND.to_string(),
                text,
                statement_class: Some(class.to_string()),
                objects: vec![object.to_string()],
                decision: "allow".to_string(),
                ..Default::default()
            })
            .await?;
        Ok(())
    }

    /// Records how the login with the issued credential went (`Ok(details)` or `Err(why)`).
    /// A failure to record is logged: the row it completes is already in the trail.
    pub async fn record_outcome(&self, result: Result<String, String>) {
        let (outcome, message) = match result {
            Ok(m) => ("ok", m),
            Err(m) => ("error", m),
        };
        let row = recorder::ActionOutcome {
            session_id: self.session_id.to_string(),
            seq: CREDENTIAL_SEQ,
            time: recorder::now_micros(),
            outcome: outcome.to_string(),
            message: Some(message),
            ..Default::default()
        };
        if let Err(e) = self.recorder.outcome(row).await {
            tracing::error!(session = %self.session_id, error = %e, "cannot record the upstream credential's outcome");
        }
    }
}
