//! The rows callers record: one struct per kind of fact. Times are microseconds since the Unix
//! epoch (UTC) so that what is hashed, journaled and stored in Parquet is exactly the same value.

/// Microseconds since the Unix epoch, the time unit of every row.
pub type Micros = i64;

/// The current time in [`Micros`].
pub fn now_micros() -> Micros {
    chrono::Utc::now().timestamp_micros()
}

/// One account-entry attempt (table `entries`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EntryRow {
    /// When the attempt finished.
    pub time: Micros,
    /// The identity the client claimed (not proven when `result` is not `ok`).
    pub identity: String,
    /// Client address, e.g. `203.0.113.7:51234`.
    pub source: String,
    /// `postgres` or `ssh`.
    pub protocol: String,
    /// How the client tried to prove itself, e.g. `scram`, `publickey`, `token`.
    pub method: String,
    /// `ok`, `fail` or `locked`.
    pub result: String,
    /// Why the attempt failed, if it did.
    pub reason: Option<String>,
    /// The session the entry opened, when it succeeded.
    pub session_id: Option<String>,
}

/// A session opened (table `sessions`, start columns).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SessionStart {
    /// Unique session id.
    pub session_id: String,
    /// When the session started.
    pub time: Micros,
    /// The proven identity.
    pub identity: String,
    /// `human`, `service` or `agent`.
    pub identity_kind: String,
    /// The target name.
    pub target: String,
    /// `postgres` or `ssh`.
    pub protocol: String,
    /// Client address.
    pub source: String,
    /// Client software, e.g. the `application_name` or the SSH version string.
    pub client: Option<String>,
    /// Path of the asciicast recording, for interactive sessions.
    pub recording: Option<String>,
}

/// A session closed (table `sessions`, end columns).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SessionEnd {
    /// The session that ended.
    pub session_id: String,
    /// When it ended.
    pub time: Micros,
    /// Why, e.g. `client_closed`, `killed`, `bastion_restart`, `bastion_shutdown`.
    pub end_reason: String,
    /// Bytes received from the client.
    pub bytes_in: i64,
    /// Bytes sent to the client.
    pub bytes_out: i64,
}

/// One decided action: a statement, command line, file operation or forward (table `actions`).
/// Recorded before the action is forwarded; the hash chain columns are computed by the recorder.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ActionRow {
    /// When the action was decided.
    pub time: Micros,
    /// The session it belongs to.
    pub session_id: String,
    /// Position within the session; orders a session (times may go backwards).
    pub seq: i64,
    /// The node that handled it; left empty, the recorder fills in its own node name.
    pub node: String,
    /// The proven identity.
    pub identity: String,
    /// `human`, `service` or `agent`.
    pub identity_kind: String,
    /// The target name.
    pub target: String,
    /// `postgres` or `ssh`.
    pub protocol: String,
    /// `sql`, `shell`, `exec`, `sftp`, `forward`, ...
    pub kind: String,
    /// The action's text with secrets redacted.
    pub text: String,
    /// Normalised fingerprint of the text (literals removed).
    pub fingerprint: Option<String>,
    /// Statement or command class, e.g. `select`, `ddl`, `shell:run`.
    pub statement_class: Option<String>,
    /// Tables, files or hosts the action touches.
    pub objects: Vec<String>,
    /// Risk tags the policy facts raised, e.g. `no_where`, `sudo`.
    pub risk_tags: Vec<String>,
    /// `allow`, `deny` or `step_up`.
    pub decision: String,
    /// Ids of the policies that decided.
    pub policy_ids: Vec<String>,
    /// What a shadow (dry-run) policy set would have decided.
    pub shadow_decision: Option<String>,
    /// `approval`, `mfa` or `approval+mfa` when a step-up was asked.
    pub step_up: Option<String>,
    /// Who approved, when already known at decision time.
    pub approver: Option<String>,
    /// When it was approved.
    pub approved_at: Option<Micros>,
}

/// What happened to an action (table `outcomes`, joined into `actions` on `(session_id, seq)`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ActionOutcome {
    /// The session of the action.
    pub session_id: String,
    /// The action's `seq`.
    pub seq: i64,
    /// When the outcome was known.
    pub time: Micros,
    /// `ok`, `error`, `denied`, `cancelled` or `unknown`.
    pub outcome: String,
    /// Rows returned or affected.
    pub rows: Option<i64>,
    /// PostgreSQL SQLSTATE of an error.
    pub sqlstate: Option<String>,
    /// Exit status of a command.
    pub exit_status: Option<i32>,
    /// How long the action ran.
    pub duration_us: Option<i64>,
    /// Bytes from client to target for this action.
    pub bytes_in: i64,
    /// Bytes from target to client for this action.
    pub bytes_out: i64,
    /// Who approved a step-up, when it was approved after the action row was written.
    pub approver: Option<String>,
    /// When it was approved.
    pub approved_at: Option<Micros>,
    /// Error or notice text shown to the user.
    pub message: Option<String>,
}
