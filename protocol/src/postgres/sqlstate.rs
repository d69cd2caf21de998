//! The SQLSTATE codes the bastion itself sends, in one table (PostgreSQL Appendix A).

/// `00000` successful_completion (used in notices).
pub const SUCCESSFUL_COMPLETION: &str = "00000";
/// `08006` connection_failure: the upstream connection broke.
pub const CONNECTION_FAILURE: &str = "08006";
/// `08001` sqlclient_unable_to_establish_sqlconnection: the upstream could not be reached.
pub const UNABLE_TO_ESTABLISH_CONNECTION: &str = "08001";
/// `08004` sqlserver_rejected_establishment_of_sqlconnection.
pub const SERVER_REJECTED_CONNECTION: &str = "08004";
/// `08P01` protocol_violation: malformed or unexpected message.
pub const PROTOCOL_VIOLATION: &str = "08P01";
/// `0A000` feature_not_supported.
pub const FEATURE_NOT_SUPPORTED: &str = "0A000";
/// `22023` invalid_parameter_value (e.g. a refused startup option).
pub const INVALID_PARAMETER_VALUE: &str = "22023";
/// `25P02` in_failed_sql_transaction.
pub const IN_FAILED_SQL_TRANSACTION: &str = "25P02";
/// `28000` invalid_authorization_specification: login refused (not a password problem).
pub const INVALID_AUTHORIZATION_SPECIFICATION: &str = "28000";
/// `28P01` invalid_password: authentication failed.
pub const INVALID_PASSWORD: &str = "28P01";
/// `3D000` invalid_catalog_name: unknown database.
pub const INVALID_CATALOG_NAME: &str = "3D000";
/// `42501` insufficient_privilege: a policy denied the action.
pub const INSUFFICIENT_PRIVILEGE: &str = "42501";
/// `42601` syntax_error: the statement could not be parsed.
pub const SYNTAX_ERROR: &str = "42601";
/// `53300` too_many_connections.
pub const TOO_MANY_CONNECTIONS: &str = "53300";
/// `54000` program_limit_exceeded: message or statement over a configured size.
pub const PROGRAM_LIMIT_EXCEEDED: &str = "54000";
/// `57014` query_canceled (also for step-up timeouts).
pub const QUERY_CANCELED: &str = "57014";
/// `57P01` admin_shutdown: session killed by an admin or bastion shutdown.
pub const ADMIN_SHUTDOWN: &str = "57P01";
/// `57P05` idle_session_timeout.
pub const IDLE_SESSION_TIMEOUT: &str = "57P05";
/// `XX000` internal_error.
pub const INTERNAL_ERROR: &str = "XX000";
